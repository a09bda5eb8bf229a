/*
 * release.c - `jobctl release ID [--reason R]`, the admin call that puts a
 * processing job back to pending and voids its lease.  It needs the admin
 * token (--token or JOBD_ADMIN_TOKEN), which is sent only on this call.
 */
#include "cli.h"

int cmd_release(struct cli *cli, const struct cli_command *cmd, int argc, char **argv)
{
    const char *reason = NULL, *pos[1];
    const struct cli_option opts[] = {{"reason", &reason}};
    json_t *job;
    size_t n;
    int rc = cli_parse(cmd, argc, argv, opts, 1, pos, 1, 1, &n);

    if (rc != CLI_OK)
        return rc;
    if (jobd_client_release(cli->client, pos[0], reason, &job) != JOBD_CLIENT_OK)
        return cli_fail(cli);
    return cli_print(job);
}
