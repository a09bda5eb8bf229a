/*
 * main.c - jobctl, the operator's command line for jobd: global options
 * (server, admin token), then one subcommand.  Exit status 0 on success, 1
 * when the server or the network said no (the reason on stderr), 2 on a
 * usage error.
 */
#include "cli.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_SERVER "http://127.0.0.1:3001"

static const struct cli_command commands[] = {
    {"submit", "OPERATION A B [--priority N] [--key KEY]", cmd_submit},
    {"get", "ID", cmd_get},
    {"list", "[--status S] [--operation O] [--limit N] [--after ID]", cmd_list},
    {"stats", "", cmd_stats},
    {"explain", "ID", cmd_explain},
    {"release", "ID [--reason R]", cmd_admin},
    {"retry", "ID [--reason R]", cmd_admin},
    {"cancel", "ID [--reason R]", cmd_admin},
    {"health", "", cmd_health},
    {"demo", "[--count N] [--rate PER_SEC]", cmd_demo},
};
#define N_COMMANDS (sizeof commands / sizeof commands[0])

static int usage(FILE *to, int status)
{
    fprintf(to, "usage: jobctl [--server URL] [--token T] COMMAND [ARGS]\n"
                "\n"
                "  --server URL  jobd to talk to (env JOBD_SERVER; default " DEFAULT_SERVER ")\n"
                "  --token T     admin token for release, retry, cancel (better: env "
                "JOBD_ADMIN_TOKEN, which\n"
                "                other users cannot see in the process list)\n"
                "\n"
                "commands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(to, "  %s %s\n", commands[i].name, commands[i].usage);
    return status;
}

int main(int argc, char **argv)
{
    const char *token = getenv("JOBD_ADMIN_TOKEN");
    struct cli cli = {.server = getenv("JOBD_SERVER")};
    jobd_client_options_t opts = {0};
    const struct cli_command *cmd = NULL;
    int i, rc;

    if (!cli.server || !cli.server[0])
        cli.server = DEFAULT_SERVER;
    for (i = 1; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
        const char *arg = argv[i];
        const char **target = NULL;
        if (strcmp(arg, "--help") == 0)
            return usage(stdout, 0);
        if (strcmp(arg, "--server") == 0)
            target = &cli.server;
        else if (strcmp(arg, "--token") == 0)
            target = &token;
        else if (strncmp(arg, "--server=", 9) == 0)
            cli.server = arg + 9;
        else if (strncmp(arg, "--token=", 8) == 0)
            token = arg + 8;
        else {
            fprintf(stderr, "jobctl: unknown option '%s'\n", arg);
            return usage(stderr, 2);
        }
        if (target) {
            if (++i >= argc) {
                fprintf(stderr, "jobctl: option '%s' needs a value\n", arg);
                return usage(stderr, 2);
            }
            *target = argv[i];
        }
    }
    if (i >= argc) {
        fprintf(stderr, "jobctl: no command given\n");
        return usage(stderr, 2);
    }
    for (size_t k = 0; k < N_COMMANDS; k++)
        if (strcmp(argv[i], commands[k].name) == 0)
            cmd = &commands[k];
    if (!cmd) {
        fprintf(stderr, "jobctl: unknown command '%s'\n", argv[i]);
        return usage(stderr, 2);
    }

    signal(SIGPIPE, SIG_IGN); /* libcurl runs with CURLOPT_NOSIGNAL */
    opts.base_url = cli.server;
    opts.admin_token = token;
    cli.client = jobd_client_new(&opts);
    if (!cli.client) {
        fprintf(stderr, "jobctl: cannot create an HTTP client for '%s'\n", cli.server);
        return CLI_FAILED;
    }
    rc = cmd->run(&cli, cmd, argc - i - 1, argv + i + 1);
    jobd_client_free(cli.client);
    return rc;
}
