/*
 * submit.c - `jobctl submit OPERATION A B [--priority N] [--key KEY]`:
 * submit one job with input {"a": A, "b": B} and print the new job.  With
 * --key, the same command run again (its reply lost, say) prints the job
 * the first made instead of making another.  The operation name is left for
 * the server to judge, so its invalid_field reply is what is shown.
 */
#include "cli.h"

#include <stdio.h>

int cmd_submit(struct cli *cli, const struct cli_command *cmd, int argc, char **argv)
{
    const char *priority_text = NULL, *key = NULL, *pos[3];
    const struct cli_option opts[] = {{"priority", &priority_text}, {"key", &key}};
    int64_t a, b, priority = 0;
    json_t *input, *job;
    size_t n;
    int rc;

    rc = cli_parse(cmd, argc, argv, opts, 2, pos, 3, 3, &n);
    if (rc != CLI_OK)
        return rc;
    if (!cli_int(cmd, "A", pos[1], INT64_MIN, INT64_MAX, &a) ||
        !cli_int(cmd, "B", pos[2], INT64_MIN, INT64_MAX, &b) ||
        (priority_text &&
         !cli_int(cmd, "--priority", priority_text, INT64_MIN, INT64_MAX, &priority)))
        return CLI_USAGE;
    input = json_pack("{s:I, s:I}", "a", (json_int_t)a, "b", (json_int_t)b);
    if (!input)
        return CLI_FAILED;
    rc = jobd_client_submit_keyed(cli->client, pos[0], input, priority, key, &job);
    json_decref(input);
    return rc == JOBD_CLIENT_OK ? cli_print(job) : cli_fail(cli);
}
