/*
 * cli.h - what jobctl's subcommands share: the client they talk through,
 * one option parser (so that negative numbers are arguments, not options),
 * and one way to print a server document or an error.
 */
#ifndef JOBD_CLI_H
#define JOBD_CLI_H

#include "jobd/jobd.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Exit statuses: 0 done, 1 the server (or the network) said no, 2 usage. */
#define CLI_OK     0
#define CLI_FAILED 1
#define CLI_USAGE  2

struct cli {
    jobd_client_t *client;
    const char *server;
};

/* A subcommand: its name, its usage line and its entry point, which gets
 * the arguments after its name and returns an exit status. */
struct cli_command {
    const char *name;
    const char *usage;
    int (*run)(struct cli *cli, const struct cli_command *cmd, int argc, char **argv);
};

/* An option that takes a value: "--name VALUE" or "--name=VALUE". */
struct cli_option {
    const char *name; /* without the dashes */
    const char **value;
};

/* Sort argv into the options in opts (all taking a value) and at most
 * max_pos positional arguments (a lone "--" ends the options).  Requires
 * exactly min_pos..max_pos positionals.  Returns CLI_OK, or prints a usage
 * error for cmd and returns CLI_USAGE. */
int cli_parse(const struct cli_command *cmd, int argc, char **argv, const struct cli_option *opts,
              size_t n_opts, const char **pos, size_t min_pos, size_t max_pos, size_t *n_pos);

/* Parse a whole decimal int64 in [lo, hi]; on failure prints a usage error
 * naming `what` and returns false. */
bool cli_int(const struct cli_command *cmd, const char *what, const char *text, int64_t lo,
             int64_t hi, int64_t *out);

/* Print "jobctl <cmd> usage..." and return CLI_USAGE. */
int cli_usage(const struct cli_command *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Print doc pretty (2-space indent) on stdout and release it.  Returns CLI_OK. */
int cli_print(json_t *doc);

/* Print the client's last error on stderr as
 * "jobctl: 404 not_found: <message> (request <id>)" and return CLI_FAILED. */
int cli_fail(struct cli *cli);

/* The subcommands, one file each (show.c holds get, stats and health). */
int cmd_submit(struct cli *cli, const struct cli_command *cmd, int argc, char **argv);
int cmd_get(struct cli *cli, const struct cli_command *cmd, int argc, char **argv);
int cmd_list(struct cli *cli, const struct cli_command *cmd, int argc, char **argv);
int cmd_stats(struct cli *cli, const struct cli_command *cmd, int argc, char **argv);
int cmd_health(struct cli *cli, const struct cli_command *cmd, int argc, char **argv);
int cmd_admin(struct cli *cli, const struct cli_command *cmd, int argc, char **argv);
int cmd_explain(struct cli *cli, const struct cli_command *cmd, int argc, char **argv);
int cmd_demo(struct cli *cli, const struct cli_command *cmd, int argc, char **argv);

#endif
