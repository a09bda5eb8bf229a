/*
 * main.c - jobd-bot: parse the command line, install the stop signals, and
 * run the claim loop next to the heartbeat thread.  SIGTERM or SIGINT stops
 * claiming (aborting a long poll at once), lets a job in hand be finished
 * and reported, and exits 0.
 */
#include "bot.h"

#include "log.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_SERVER "http://127.0.0.1:3001"

static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int sig)
{
    stop_requested = 1;
}

static void usage(FILE *to)
{
    fprintf(to,
            "usage: jobd-bot [--server URL] [--name NAME] [--operations OP,OP,...]\n"
            "                [--wait-ms MS] [--heartbeat-ms MS] [--batch N] [--concurrency N]\n"
            "                [--work-ms MS]\n"
            "                [--log-level LEVEL]\n"
            "\n"
            "  --server URL        jobd to work for (env JOBD_SERVER; default %s)\n"
            "  --name NAME         this bot's name (env JOBD_BOT_NAME; default bot-<host>-<pid>)\n"
            "  --operations LIST   comma-separated, from: sum difference product quotient\n"
            "                      remainder power (default: all six)\n"
            "  --wait-ms MS        long-poll time of each claim, 0-30000 (default 25000)\n"
            "  --heartbeat-ms MS   heartbeat period, >= 100 (default 5000)\n"
            "  --batch N           jobs leased per claim, worked one after another, 1-100\n"
            "                      (default 1)\n"
            "  --concurrency N     claim loops at once, each with its own connection; N x batch\n"
            "                      jobs can be in hand (N x batch <= 100; default 1)\n"
            "  --work-ms MS        make each job take at least this long, for demos and\n"
            "                      tests of slow work (default 0)\n"
            "  --log-level LEVEL   debug, info, warn or error (default info)\n",
            DEFAULT_SERVER);
}

/* Parse an integer option in [lo, hi]; exits with a usage error otherwise. */
static int int_option(const char *name, const char *text, long lo, long hi)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(text, &end, 10);
    if (errno || end == text || *end || v < lo || v > hi) {
        fprintf(stderr, "jobd-bot: --%s must be an integer from %ld to %ld, not '%s'\n", name, lo,
                hi, text);
        exit(2);
    }
    return (int)v;
}

/* Fill cfg->operations from "sum,product"; names must be known, duplicates
 * are dropped. */
static void parse_operations(struct bot_config *cfg, const char *list)
{
    char *copy = strdup(list), *save = NULL;

    if (!copy)
        abort();
    cfg->n_operations = 0;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        int i;
        for (i = 0; i < OPERATION_COUNT; i++)
            if (strcmp(tok, operation_names[i]) == 0)
                break;
        if (i == OPERATION_COUNT) {
            fprintf(stderr, "jobd-bot: unknown operation '%s' in --operations\n", tok);
            exit(2);
        }
        bool seen = false;
        for (size_t j = 0; j < cfg->n_operations; j++)
            seen = seen || cfg->operations[j] == operation_names[i];
        if (!seen)
            cfg->operations[cfg->n_operations++] = operation_names[i];
    }
    free(copy);
    if (cfg->n_operations == 0) {
        fprintf(stderr, "jobd-bot: --operations names no operation\n");
        exit(2);
    }
}

static void parse_args(int argc, char **argv, struct bot_config *cfg, char *default_name,
                       size_t name_len)
{
    static const struct option longopts[] = {
        {"server", required_argument, NULL, 's'},
        {"name", required_argument, NULL, 'n'},
        {"operations", required_argument, NULL, 'o'},
        {"wait-ms", required_argument, NULL, 'w'},
        {"heartbeat-ms", required_argument, NULL, 'b'},
        {"log-level", required_argument, NULL, 'l'},
        {"batch", required_argument, NULL, 'B'},
        {"concurrency", required_argument, NULL, 'C'},
        {"work-ms", required_argument, NULL, 'W'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    char host[64] = "host";
    int c, level;

    gethostname(host, sizeof host - 1);
    snprintf(default_name, name_len, "bot-%s-%ld", host, (long)getpid());
    cfg->server = getenv("JOBD_SERVER") ? getenv("JOBD_SERVER") : DEFAULT_SERVER;
    cfg->name = getenv("JOBD_BOT_NAME") ? getenv("JOBD_BOT_NAME") : default_name;
    for (int i = 0; i < OPERATION_COUNT; i++)
        cfg->operations[i] = operation_names[i];
    cfg->n_operations = OPERATION_COUNT;
    cfg->wait_ms = 25000;
    cfg->heartbeat_ms = 5000;
    cfg->report_grace_ms = 30000;
    cfg->batch = 1;
    cfg->concurrency = 1;
    cfg->work_ms = 0;

    while ((c = getopt_long(argc, argv, "s:n:o:h", longopts, NULL)) != -1) {
        switch (c) {
        case 's':
            cfg->server = optarg;
            break;
        case 'n':
            cfg->name = optarg;
            break;
        case 'o':
            parse_operations(cfg, optarg);
            break;
        case 'w':
            cfg->wait_ms = int_option("wait-ms", optarg, 0, 30000);
            break;
        case 'b':
            cfg->heartbeat_ms = int_option("heartbeat-ms", optarg, 100, 3600000);
            break;
        case 'B':
            cfg->batch = int_option("batch", optarg, 1, BOT_MAX_HELD);
            break;
        case 'C':
            cfg->concurrency = int_option("concurrency", optarg, 1, BOT_MAX_HELD);
            break;
        case 'W':
            cfg->work_ms = int_option("work-ms", optarg, 0, 3600000);
            break;
        case 'l':
            level = log_level_parse(optarg);
            if (level < 0) {
                fprintf(stderr, "jobd-bot: unknown log level '%s'\n", optarg);
                exit(2);
            }
            log_set_level((enum log_level)level);
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            exit(2);
        }
    }
    if (optind < argc) {
        fprintf(stderr, "jobd-bot: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        exit(2);
    }
    if (!cfg->name[0] || !cfg->server[0]) {
        fprintf(stderr, "jobd-bot: --server and --name must not be empty\n");
        exit(2);
    }
    /* Every job in hand needs a slot in the bot's held list. */
    if (cfg->concurrency * cfg->batch > BOT_MAX_HELD) {
        fprintf(stderr, "jobd-bot: --concurrency x --batch must be at most %d, not %d\n",
                BOT_MAX_HELD, cfg->concurrency * cfg->batch);
        exit(2);
    }
}

static void install_signals(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    /* No SA_RESTART: a blocking call should see EINTR and notice the flag. */
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    /* libcurl runs with CURLOPT_NOSIGNAL, so a peer closing a socket must
     * not kill the process. */
    signal(SIGPIPE, SIG_IGN);
}

int main(int argc, char **argv)
{
    struct bot_config cfg;
    struct heartbeat hb;
    struct bot b;
    char default_name[128];

    parse_args(argc, argv, &cfg, default_name, sizeof default_name);
    install_signals();
    if (bot_init(&b, &cfg, &stop_requested) != JOBD_OK) {
        log_error("cannot create an HTTP client for %s", cfg.server);
        return 1;
    }
    if (heartbeat_start(&hb, &b) != JOBD_OK) {
        bot_cleanup(&b);
        return 1;
    }
    log_info("jobd-bot %s starting: server %s, %zu operations, wait %d ms, heartbeat %d ms, "
             "%d claim loop%s of up to %d jobs",
             cfg.name, cfg.server, cfg.n_operations, cfg.wait_ms, cfg.heartbeat_ms, cfg.concurrency,
             cfg.concurrency > 1 ? "s" : "", cfg.batch);
    bot_run(&b);
    log_info("Stop requested: no more claims");
    bot_set_offline(&b);
    heartbeat_stop(&hb);
    bot_cleanup(&b);
    log_info("jobd-bot %s stopped", cfg.name);
    return 0;
}
