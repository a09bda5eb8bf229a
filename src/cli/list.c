/*
 * list.c - `jobctl list [--status S] [--operation O] [--limit N] [--after ID]`:
 * one page of jobs in creation order, printed as the server sent it; its
 * "next" is the --after of the following page.
 */
#include "cli.h"

int cmd_list(struct cli *cli, const struct cli_command *cmd, int argc, char **argv)
{
    jobd_list_query_t q = {0};
    const char *limit_text = NULL;
    const struct cli_option opts[] = {
        {"status", &q.status},
        {"operation", &q.operation},
        {"limit", &limit_text},
        {"after", &q.after},
    };
    int64_t limit;
    json_t *page;
    size_t n;
    int rc = cli_parse(cmd, argc, argv, opts, sizeof opts / sizeof opts[0], NULL, 0, 0, &n);

    if (rc != CLI_OK)
        return rc;
    if (limit_text) {
        if (!cli_int(cmd, "--limit", limit_text, 1, 1000, &limit))
            return CLI_USAGE;
        q.limit = (int)limit;
    }
    if (jobd_client_list_jobs(cli->client, &q, &page) != JOBD_CLIENT_OK)
        return cli_fail(cli);
    return cli_print(page);
}
