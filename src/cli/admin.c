/*
 * admin.c - the admin subcommands: `jobctl release|retry|cancel ID
 * [--reason R]` put a processing job back, retry a failed or cancelled one,
 * or cancel a pending or processing one.  They need the admin token
 * (--token or JOBD_ADMIN_TOKEN), which is sent only on these calls.
 */
#include "cli.h"

#include <string.h>

int cmd_admin(struct cli *cli, const struct cli_command *cmd, int argc, char **argv)
{
    const char *reason = NULL, *pos[1];
    const struct cli_option opts[] = {{"reason", &reason}};
    int (*call)(jobd_client_t * c, const char *id, const char *reason, json_t **job) =
        strcmp(cmd->name, "retry") == 0    ? jobd_client_retry
        : strcmp(cmd->name, "cancel") == 0 ? jobd_client_cancel
                                           : jobd_client_release;
    json_t *job;
    size_t n;
    int rc = cli_parse(cmd, argc, argv, opts, 1, pos, 1, 1, &n);

    if (rc != CLI_OK)
        return rc;
    if (call(cli->client, pos[0], reason, &job) != JOBD_CLIENT_OK)
        return cli_fail(cli);
    return cli_print(job);
}
