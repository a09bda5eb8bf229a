/*
 * cli.c - jobctl's shared pieces: argument parsing, integer parsing and
 * output.  Every error a subcommand reports goes through cli_fail(), so
 * they all look alike and carry the server's code and request id.
 */
#include "cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cli_usage(const struct cli_command *cmd, const char *fmt, ...)
{
    va_list ap;

    fputs("jobctl: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nusage: jobctl [--server URL] [--token T] %s %s\n", cmd->name, cmd->usage);
    return CLI_USAGE;
}

/* Find the option `arg` ("--name" or "--name=value") names; NULL if none.
 * *inline_value is set to the text after '=' if there is one. */
static const struct cli_option *find_option(const char *arg, const struct cli_option *opts,
                                            size_t n_opts, const char **inline_value)
{
    const char *eq = strchr(arg + 2, '=');
    size_t len = eq ? (size_t)(eq - (arg + 2)) : strlen(arg + 2);

    for (size_t i = 0; i < n_opts; i++) {
        if (strlen(opts[i].name) == len && strncmp(arg + 2, opts[i].name, len) == 0) {
            *inline_value = eq ? eq + 1 : NULL;
            return &opts[i];
        }
    }
    return NULL;
}

int cli_parse(const struct cli_command *cmd, int argc, char **argv, const struct cli_option *opts,
              size_t n_opts, const char **pos, size_t min_pos, size_t max_pos, size_t *n_pos)
{
    bool options_done = false;

    *n_pos = 0;
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i], *value;
        const struct cli_option *opt;

        if (!options_done && strcmp(arg, "--") == 0) {
            options_done = true;
            continue;
        }
        /* Only "--word" is an option, so "-5" stays a number. */
        if (!options_done && strncmp(arg, "--", 2) == 0) {
            opt = find_option(arg, opts, n_opts, &value);
            if (!opt)
                return cli_usage(cmd, "%s: unknown option '%s'", cmd->name, arg);
            if (!value) {
                if (i + 1 >= argc)
                    return cli_usage(cmd, "%s: option '%s' needs a value", cmd->name, arg);
                value = argv[++i];
            }
            *opt->value = value;
            continue;
        }
        if (*n_pos >= max_pos)
            return cli_usage(cmd, "%s: unexpected argument '%s'", cmd->name, arg);
        pos[(*n_pos)++] = arg;
    }
    if (*n_pos < min_pos)
        return cli_usage(cmd, "%s: missing arguments", cmd->name);
    return CLI_OK;
}

bool cli_int(const struct cli_command *cmd, const char *what, const char *text, int64_t lo,
             int64_t hi, int64_t *out)
{
    char *end;
    long long v;

    errno = 0;
    v = strtoll(text, &end, 10);
    if (errno || end == text || *end || v < lo || v > hi) {
        cli_usage(cmd, "%s must be an integer from %lld to %lld, not '%s'", what, (long long)lo,
                  (long long)hi, text);
        return false;
    }
    *out = v;
    return true;
}

int cli_print(json_t *doc)
{
    json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_ENCODE_ANY);
    fputc('\n', stdout);
    json_decref(doc);
    return CLI_OK;
}

int cli_fail(struct cli *cli)
{
    const jobd_error_t *e = jobd_client_last_error(cli->client);
    char buf[1600];

    jobd_client_error_format(cli->client, buf, sizeof buf);
    if (e->rc == JOBD_CLIENT_ENET)
        fprintf(stderr, "jobctl: cannot reach the server: %s\n", buf);
    else
        fprintf(stderr, "jobctl: %s\n", buf);
    return CLI_FAILED;
}
