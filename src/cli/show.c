/*
 * show.c - the subcommands that fetch one server document and print it:
 * `jobctl get ID` (the job with its history), `jobctl explain ID`, `jobctl stats` and
 * `jobctl health` (which exits 1 when the server reports 503).
 */
#include "cli.h"

/* get and explain: one job id, one document. */
static int fetch_job_doc(struct cli *cli, const struct cli_command *cmd, int argc, char **argv,
                         int (*call)(jobd_client_t *c, const char *id, json_t **out))
{
    const char *pos[1];
    json_t *doc;
    size_t n;
    int rc = cli_parse(cmd, argc, argv, NULL, 0, pos, 1, 1, &n);

    if (rc != CLI_OK)
        return rc;
    if (call(cli->client, pos[0], &doc) != JOBD_CLIENT_OK)
        return cli_fail(cli);
    return cli_print(doc);
}

int cmd_get(struct cli *cli, const struct cli_command *cmd, int argc, char **argv)
{
    return fetch_job_doc(cli, cmd, argc, argv, jobd_client_get_job);
}

int cmd_explain(struct cli *cli, const struct cli_command *cmd, int argc, char **argv)
{
    return fetch_job_doc(cli, cmd, argc, argv, jobd_client_explain);
}

/* stats and health: no arguments, one document. */
static int fetch_and_print(struct cli *cli, const struct cli_command *cmd, int argc, char **argv,
                           int (*call)(jobd_client_t *c, json_t **out))
{
    json_t *doc;
    size_t n;
    int rc = cli_parse(cmd, argc, argv, NULL, 0, NULL, 0, 0, &n);

    if (rc != CLI_OK)
        return rc;
    if (call(cli->client, &doc) != JOBD_CLIENT_OK)
        return cli_fail(cli);
    return cli_print(doc);
}

int cmd_stats(struct cli *cli, const struct cli_command *cmd, int argc, char **argv)
{
    return fetch_and_print(cli, cmd, argc, argv, jobd_client_stats);
}

int cmd_health(struct cli *cli, const struct cli_command *cmd, int argc, char **argv)
{
    return fetch_and_print(cli, cmd, argc, argv, jobd_client_health);
}
