/*
 * main.c - jobd's entry point: configuration, the `migrate` subcommand, the
 * start-up checks that refuse to run on a schema the code does not fit, the
 * ticker thread (long-poll deadlines, lease expiry, retention), and the
 * orderly stop on SIGTERM.
 */
#include "claimnote.h"
#include "clock.h"
#include "datalake.h"
#include "http.h"
#include "id.h"
#include "log.h"
#include "server.h"
#include "waitq.h"

#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define EXIT_REFUSED 2

static const char usage[] =
    "usage: jobd [options]\n"
    "       jobd migrate status|up|down [--data-dir DIR | --db URL]\n"
    "\n"
    "options (environment variable in brackets):\n"
    "  --listen HOST:PORT   address to serve on, default 127.0.0.1:3001 [JOBD_LISTEN]\n"
    "  --data-dir DIR       database and datalake, default ./jobd-data [JOBD_DATA_DIR]\n"
    "  --db URL             PostgreSQL instead of <data-dir>/jobd.db: postgresql://user@host/db\n"
    "                       or a libpq key=value string [JOBD_DB]; put a password in\n"
    "                       JOBD_DB, PGPASSWORD or ~/.pgpass, not on the command line\n"
    "  --server-id NAME     names this server's datalake files, default the host name\n"
    "  --lease-ms N         default lease of a claim, default 30000\n"
    "  --heartbeat-ms N     heartbeat period expected of bots, default 5000\n"
    "  --unhealthy-after N  missed heartbeats before a bot is unhealthy and its jobs go\n"
    "                       back to pending (worker_lost), default 3\n"
    "  --offline-after N    missed heartbeats before a bot is offline, default 12\n"
    "  --retry-base-ms N    backoff of the first retry of a retryable failure, default 1000\n"
    "  --retry-max-ms N     longest backoff between retries, default 300000\n"
    "  --retention-ms N     keep a finished job in the database for N ms after it finished,\n"
    "                       then delete it once it is in the datalake (0: as soon as it is);\n"
    "                       GET /jobs/{id} then answers 404. Default 86400000 (24 h)\n"
    "                       [JOBD_RETENTION_MS]\n"
    "  --threads N          requests handled at once (each may wait for the disk while\n"
    "                       the others go on), 1-256, default 64\n"
    "  --max-body BYTES     largest request body, default 1048576\n"
    "  --max-input BYTES    largest job input as JSON, default 65536\n"
    "  --sync MODE          full: every reply waits until its change is on disk (fsync);\n"
    "                       normal: survives a crash of jobd, not of the machine, and is\n"
    "                       faster; default full [JOBD_SYNC]\n"
    "  --no-migrate         refuse to start on an older schema instead of migrating\n"
    "  --log-level LEVEL    debug, info, warn or error, default info\n"
    "  admin token: set JOBD_ADMIN_TOKEN; without it admin endpoints answer 403\n";

static void config_defaults(server_config_t *cfg)
{
    const char *v;
    memset(cfg, 0, sizeof *cfg);
    snprintf(cfg->listen, sizeof cfg->listen, "%s",
             (v = getenv("JOBD_LISTEN")) ? v : "127.0.0.1:3001");
    snprintf(cfg->data_dir, sizeof cfg->data_dir, "%s",
             (v = getenv("JOBD_DATA_DIR")) ? v : "./jobd-data");
    snprintf(cfg->db, sizeof cfg->db, "%s", (v = getenv("JOBD_DB")) ? v : "");
    snprintf(cfg->admin_token, sizeof cfg->admin_token, "%s",
             (v = getenv("JOBD_ADMIN_TOKEN")) ? v : "");
    if (gethostname(cfg->server_id, sizeof cfg->server_id) != 0 || !cfg->server_id[0])
        snprintf(cfg->server_id, sizeof cfg->server_id, "jobd");
    cfg->lease_ms = 30000;
    cfg->heartbeat_ms = 5000;
    cfg->unhealthy_after = 3;
    cfg->offline_after = 12;
    cfg->retry.base_ms = 1000;
    cfg->retry.max_ms = 300000;
    cfg->retention_ms = 86400000;
    cfg->threads = 64;
    cfg->max_body = 1 << 20;
    cfg->max_input = 64 << 10;
    cfg->migrate = true;
    cfg->sync_name = (v = getenv("JOBD_SYNC")) ? v : "full";
}

/* --sync's words: false for anything else. */
static bool sync_parse(const char *name, store_sync_t *out)
{
    if (strcmp(name, "full") == 0)
        *out = STORE_SYNC_FULL;
    else if (strcmp(name, "normal") == 0)
        *out = STORE_SYNC_NORMAL;
    else
        return false;
    return true;
}

static bool parse_size(const char *s, long long min, long long max, long long *out)
{
    char *end;
    errno = 0;
    *out = strtoll(s, &end, 10);
    return errno == 0 && end != s && !*end && *out >= min && *out <= max;
}

/* The longest --retention-ms: ten years. */
#define RETENTION_MAX_MS (3650 * 86400000LL)

/* Parse options into cfg; returns the index of the first non-option
 * argument, or -1 after printing why. */
static int parse_args(int argc, char **argv, server_config_t *cfg)
{
    enum {
        O_LISTEN = 1,
        O_DATA,
        O_ID,
        O_LEASE,
        O_THREADS,
        O_BODY,
        O_INPUT,
        O_NOMIG,
        O_LOG,
        O_HEARTBEAT,
        O_UNHEALTHY,
        O_OFFLINE,
        O_RETRY_BASE,
        O_RETRY_MAX,
        O_DB,
        O_SYNC,
        O_RETENTION, /* in the order of opts[]: out_bad names opts[c - 1] */
    };
    static const struct option opts[] = {{"listen", required_argument, 0, O_LISTEN},
                                         {"data-dir", required_argument, 0, O_DATA},
                                         {"server-id", required_argument, 0, O_ID},
                                         {"lease-ms", required_argument, 0, O_LEASE},
                                         {"threads", required_argument, 0, O_THREADS},
                                         {"max-body", required_argument, 0, O_BODY},
                                         {"max-input", required_argument, 0, O_INPUT},
                                         {"no-migrate", no_argument, 0, O_NOMIG},
                                         {"log-level", required_argument, 0, O_LOG},
                                         {"heartbeat-ms", required_argument, 0, O_HEARTBEAT},
                                         {"unhealthy-after", required_argument, 0, O_UNHEALTHY},
                                         {"offline-after", required_argument, 0, O_OFFLINE},
                                         {"retry-base-ms", required_argument, 0, O_RETRY_BASE},
                                         {"retry-max-ms", required_argument, 0, O_RETRY_MAX},
                                         {"db", required_argument, 0, O_DB},
                                         {"sync", required_argument, 0, O_SYNC},
                                         {"retention-ms", required_argument, 0, O_RETENTION},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *env = getenv("JOBD_RETENTION_MS");
    long long n;
    int c, level;

    /* Here rather than in config_defaults, so that a bad value is refused
     * like a bad option instead of silently replaced by the default. */
    if (env) {
        if (!parse_size(env, 0, RETENTION_MAX_MS, &n)) {
            fprintf(stderr, "jobd: bad value '%s' for JOBD_RETENTION_MS\n%s", env, usage);
            return -1;
        }
        cfg->retention_ms = n;
    }
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case O_LISTEN:
            snprintf(cfg->listen, sizeof cfg->listen, "%s", optarg);
            break;
        case O_DATA:
            snprintf(cfg->data_dir, sizeof cfg->data_dir, "%s", optarg);
            break;
        case O_DB:
            snprintf(cfg->db, sizeof cfg->db, "%s", optarg);
            break;
        case O_ID:
            snprintf(cfg->server_id, sizeof cfg->server_id, "%s", optarg);
            break;
        case O_LEASE:
            if (!parse_size(optarg, 1000, 86400000, &n))
                goto out_bad;
            cfg->lease_ms = n;
            break;
        case O_THREADS:
            if (!parse_size(optarg, 1, 256, &n))
                goto out_bad;
            cfg->threads = (unsigned)n;
            break;
        case O_BODY:
            if (!parse_size(optarg, 1024, 1LL << 30, &n))
                goto out_bad;
            cfg->max_body = (size_t)n;
            break;
        case O_INPUT:
            if (!parse_size(optarg, 16, 1LL << 30, &n))
                goto out_bad;
            cfg->max_input = (size_t)n;
            break;
        case O_SYNC:
            cfg->sync_name = optarg;
            break;
        case O_NOMIG:
            cfg->migrate = false;
            break;
        case O_LOG:
            if ((level = log_level_parse(optarg)) < 0)
                goto out_bad;
            log_set_level((enum log_level)level);
            break;
        case O_HEARTBEAT:
            if (!parse_size(optarg, 100, 3600000, &n))
                goto out_bad;
            cfg->heartbeat_ms = n;
            break;
        case O_UNHEALTHY:
            if (!parse_size(optarg, 1, 1000, &n))
                goto out_bad;
            cfg->unhealthy_after = (int)n;
            break;
        case O_OFFLINE:
            if (!parse_size(optarg, 1, 100000, &n))
                goto out_bad;
            cfg->offline_after = (int)n;
            break;
        case O_RETRY_BASE:
            if (!parse_size(optarg, 1, 86400000, &n))
                goto out_bad;
            cfg->retry.base_ms = n;
            break;
        case O_RETRY_MAX:
            if (!parse_size(optarg, 1, 7 * 86400000LL, &n))
                goto out_bad;
            cfg->retry.max_ms = n;
            break;
        case O_RETENTION:
            if (!parse_size(optarg, 0, RETENTION_MAX_MS, &n))
                goto out_bad;
            cfg->retention_ms = n;
            break;
        case 'h':
            fputs(usage, stdout);
            exit(0);
        default:
            fputs(usage, stderr);
            return -1;
        }
    }
    if (!sync_parse(cfg->sync_name, &cfg->sync)) {
        fprintf(stderr, "jobd: bad value '%s' for --sync (or JOBD_SYNC): full or normal\n",
                cfg->sync_name);
        return -1;
    }
    if (cfg->offline_after < cfg->unhealthy_after) {
        fprintf(stderr, "jobd: --offline-after (%d) must not be less than --unhealthy-after (%d)\n",
                cfg->offline_after, cfg->unhealthy_after);
        return -1;
    }
    return optind;

out_bad:
    fprintf(stderr, "jobd: bad value '%s' for --%s\n%s", optarg, opts[c - 1].name, usage);
    return -1;
}

static int open_store(const server_config_t *cfg, store_t **out, err_t *e)
{
    char path[1100];
    if (mkdir(cfg->data_dir, 0755) != 0 && errno != EEXIST)
        return err_set(e, JOBD_EIO, "cannot create data dir %s: %s", cfg->data_dir,
                       strerror(errno));
    if (cfg->db[0])
        return store_open(cfg->db, out, e);
    snprintf(path, sizeof path, "%s/jobd.db", cfg->data_dir);
    return store_open(path, out, e);
}

static int cmd_migrate(const server_config_t *cfg, const char *what)
{
    store_t *store = NULL;
    int cur, latest, rc = 1;
    err_t e;

    if (open_store(cfg, &store, &e) != JOBD_OK ||
        store_schema_version(store, &cur, &latest, &e) != JOBD_OK)
        goto out_error;
    if (strcmp(what, "status") == 0) {
        printf("schema version %d, latest %d%s\n", cur, latest,
               cur == latest  ? " (up to date)"
               : cur < latest ? " (run: jobd migrate up)"
                              : " (the database is newer than this jobd)");
        for (int v = 1; v <= latest; v++)
            printf("  %s %4d  %s\n", v <= cur ? "applied" : "pending", v, store_migration_name(v));
    } else if (strcmp(what, "up") == 0) {
        if (store_migrate_up(store, &e) != JOBD_OK)
            goto out_error;
        printf("schema version %d -> %d\n", cur, latest);
    } else if (strcmp(what, "down") == 0) {
        if (cur == 0) {
            printf("schema version 0: nothing to roll back\n");
        } else {
            if (store_migrate_down(store, &e) != JOBD_OK)
                goto out_error;
            printf("schema version %d -> %d (rolled back: %s)\n", cur, cur - 1,
                   store_migration_name(cur));
        }
    } else {
        fprintf(stderr, "jobd: migrate takes status, up or down, not '%s'\n", what);
        goto out_close;
    }
    rc = 0;
    goto out_close;

out_error:
    fprintf(stderr, "jobd: migrate %s: %s (%s)\n", what, e.msg, err_code_str(e.rc));
out_close:
    store_free(store);
    return rc;
}

/* Bring the schema to this binary's version (or refuse), then prepare every
 * statement: the seed's "INSERT INTO results (... sum ...)" is caught here,
 * at start, instead of as a 500 on the first completed job. */
static int check_schema(server_t *srv, err_t *e)
{
    int cur, latest, rc;

    if ((rc = store_schema_version(srv->store, &cur, &latest, e)) != JOBD_OK)
        return rc;
    if (cur > latest)
        return err_set(e, JOBD_ESCHEMA,
                       "the database schema is version %d, newer than this jobd knows (%d): "
                       "run a newer jobd",
                       cur, latest);
    if (cur < latest) {
        if (!srv->cfg.migrate)
            return err_set(e, JOBD_ESCHEMA,
                           "the database schema is version %d but this jobd needs version %d; "
                           "run 'jobd migrate up' or start without --no-migrate",
                           cur, latest);
        if ((rc = store_migrate_up(srv->store, e)) != JOBD_OK)
            return rc;
        log_info("schema migrated from version %d to %d", cur, latest);
    }
    if ((rc = store_prepare(srv->store, e)) != JOBD_OK)
        return rc;
    srv->schema_version = latest;
    return JOBD_OK;
}

/* store_watch's callback: a job became pending through another server. */
static void on_job(void *arg, const char *operation)
{
    waitq_announce(arg, operation, 1); /* passed on while claims fill (waitq.h) */
}

static pthread_mutex_t tick_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t tick_cond = PTHREAD_COND_INITIALIZER;
static bool tick_stop;

/* Log a failed sweep step once per distinct cause, not twice a second. */
static void sweep_failed(char last_error[JOBD_ERR_MSG_MAX], const char *what, const err_t *e)
{
    if (strcmp(last_error, e->msg) != 0)
        log_error("%s failed, will retry: %s", what, e->msg);
    snprintf(last_error, JOBD_ERR_MSG_MAX, "%s", e->msg);
}

/* Log what the bot-health sweep changed; returns how many jobs went back. */
static int log_bot_changes(const json_t *changes)
{
    json_t *c, *id;
    size_t i, j;
    int n = 0;

    json_array_foreach(changes, i, c)
    {
        const json_t *jobs = json_object_get(c, "jobs");
        log_warn("bot %s is %s: last seen %s; %zu job%s back to pending (worker_lost)",
                 json_string_value(json_object_get(c, "name")),
                 json_string_value(json_object_get(c, "state")),
                 json_string_value(json_object_get(c, "last_seen_at")), json_array_size(jobs),
                 json_array_size(jobs) == 1 ? "" : "s");
        json_array_foreach(jobs, j, id)
        {
            log_info("job %s back to pending: its bot %s was lost", id_short(json_string_value(id)),
                     json_string_value(json_object_get(c, "name")));
        }
        n += (int)json_array_size(jobs);
    }
    return n;
}

/* Jobs a retention purge deletes per transaction: small enough that one
 * batch holds the write lock (SQLite) or its row locks (PostgreSQL) for
 * milliseconds, so that claims and reports queued meanwhile barely wait. */
#define PURGE_BATCH 1000

/* How long one sweep may go on purging before the ticker turns back to
 * long-poll deadlines and leases; a larger backlog (retention just turned
 * on, or shortened) goes over the next sweeps. */
#define PURGE_ROUND_MS 200

/* Retention: delete the finished jobs that are in the datalake and finished
 * more than --retention-ms ago, batch after batch while there are more, and
 * log once what went. */
static void purge(server_t *srv, char last_error[JOBD_ERR_MSG_MAX])
{
    int64_t cutoff = clock_now_ms() - srv->cfg.retention_ms;
    int64_t until = clock_mono_ms() + PURGE_ROUND_MS;
    long long total = 0;
    char when[32];
    int n;
    err_t e;

    do {
        if (store_job_purge(srv->store, cutoff, PURGE_BATCH, &n, &e) != JOBD_OK) {
            sweep_failed(last_error, "retention purge", &e);
            break;
        }
        last_error[0] = '\0';
        total += n;
    } while (n == PURGE_BATCH && clock_mono_ms() < until);
    if (total > 0) {
        clock_format_ms(cutoff, when, sizeof when, 'T');
        log_info("retention: deleted %lld finished job%s that finished before %s and are in "
                 "the datalake (--retention-ms %lld)",
                 total, total > 1 ? "s" : "", when, (long long)srv->cfg.retention_ms);
    }
}

/* One round of the state that changes with time alone: scheduled jobs whose
 * time came, leases that ran out, bots that stopped heartbeating, finished
 * jobs past their retention.  Right after a start, bots have had no chance
 * to heartbeat to this process yet: leases are left alone for one heartbeat
 * period and bots for the unhealthy threshold, so that a restart does not
 * take every job back. */
static void sweep(server_t *srv, char errors[4][JOBD_ERR_MSG_MAX])
{
    const server_config_t *cfg = &srv->cfg;
    int64_t now = clock_now_ms(), up = now - srv->started_ms;
    int64_t unhealthy = cfg->heartbeat_ms * cfg->unhealthy_after;
    json_t *changes;
    int n, back = 0;
    err_t e;

    if (store_schedule_due(srv->store, now, &n, &e) != JOBD_OK) {
        sweep_failed(errors[0], "scheduling", &e);
    } else {
        errors[0][0] = '\0';
        if (n > 0)
            log_info("%d scheduled job%s now pending", n, n > 1 ? "s" : "");
        back += n;
    }
    if (up >= cfg->heartbeat_ms) {
        if (store_lease_expire(srv->store, now, &n, &e) != JOBD_OK) {
            sweep_failed(errors[1], "lease expiry", &e);
        } else {
            errors[1][0] = '\0';
            if (n > 0)
                log_warn("%d job%s went back to pending: lease expired", n, n > 1 ? "s" : "");
            back += n;
        }
    }
    if (up >= unhealthy) {
        if (store_bot_sweep(srv->store, now - unhealthy,
                            now - cfg->heartbeat_ms * cfg->offline_after, &changes,
                            &e) != JOBD_OK) {
            sweep_failed(errors[2], "bot health check", &e);
        } else {
            errors[2][0] = '\0';
            back += log_bot_changes(changes);
            json_decref(changes);
        }
    }
    if (back > 0)
        waitq_announce(srv->waitq, NULL, 0);
    purge(srv, errors[3]);
}

/* Every 100 ms: answer long-polls whose time is up; every 500 ms: sweep(),
 * so that no job stays stuck with a dead bot and a scheduled job starts
 * within half a second of its time. */
static void *ticker(void *arg)
{
    server_t *srv = arg;
    int64_t next_sweep = 0;
    char errors[4][JOBD_ERR_MSG_MAX] = {"", "", "", ""};

    pthread_setname_np(pthread_self(), "jobd-ticker");
    pthread_mutex_lock(&tick_lock);
    while (!tick_stop) {
        struct timespec until;
        int64_t now = clock_mono_ms();

        pthread_mutex_unlock(&tick_lock);
        waitq_expire(srv->waitq, now, false);
        if (now >= next_sweep) {
            next_sweep = now + 500;
            sweep(srv, errors);
        }
        pthread_mutex_lock(&tick_lock);
        until = clock_deadline(CLOCK_REALTIME, 100 * 1000000LL);
        if (!tick_stop)
            pthread_cond_timedwait(&tick_cond, &tick_lock, &until);
    }
    pthread_mutex_unlock(&tick_lock);
    return NULL;
}

static int serve(server_t *srv)
{
    http_t *http = NULL;
    pthread_t tick;
    sigset_t sigs;
    int port, sig, rc = EXIT_REFUSED;
    err_t e;

    /* Signals are taken by sigwait() in this thread only. */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (open_store(&srv->cfg, &srv->store, &e) != JOBD_OK || check_schema(srv, &e) != JOBD_OK ||
        store_set_sync(srv->store, srv->cfg.sync, &e) != JOBD_OK)
        goto out_refuse;
    srv->waitq = waitq_new();
    srv->notes = claimnote_new();
    if (store_watch(srv->store, on_job, srv->waitq, &e) != JOBD_OK)
        goto out_refuse;
    if (datalake_open(srv->cfg.data_dir, srv->cfg.server_id, srv->store, &srv->datalake, &e) !=
        JOBD_OK)
        goto out_refuse;
    srv->started_ms = clock_now_ms();
    if (http_start(srv, &http, &port, &e) != JOBD_OK)
        goto out_refuse;
    if (pthread_create(&tick, NULL, ticker, srv) != 0)
        abort();
    log_info("jobd listening on %.*s:%d (%s, schema version %d, datalake in %s, sync %s, "
             "admin %s)",
             (int)(strrchr(srv->cfg.listen, ':') - srv->cfg.listen), srv->cfg.listen, port,
             store_where(srv->store), srv->schema_version, srv->cfg.data_dir, srv->cfg.sync_name,
             srv->cfg.admin_token[0] ? "enabled" : "disabled");

    sigwait(&sigs, &sig);
    log_info("jobd stopping (%s): no new work, answering waiting claims", strsignal(sig));
    srv->stopping = 1;
    http_quiesce(http);
    waitq_close(srv->waitq);
    if (!http_drain(http, 10000))
        log_warn("requests still in progress after 10 s; closing them");
    http_stop(http);
    pthread_mutex_lock(&tick_lock);
    tick_stop = true;
    pthread_cond_signal(&tick_cond);
    pthread_mutex_unlock(&tick_lock);
    pthread_join(tick, NULL);
    datalake_close(srv->datalake);
    srv->datalake = NULL;
    log_info("jobd stopped");
    rc = 0;
    goto out_free;

out_refuse:
    log_error("jobd refuses to start: %s (%s)", e.msg, err_code_str(e.rc));
    fprintf(stderr, "jobd: refusing to start: %s\n", e.msg);
out_free:
    datalake_close(srv->datalake);
    store_free(srv->store); /* first: its watch thread wakes the wait queue */
    waitq_free(srv->waitq);
    claimnote_free(srv->notes);
    return rc;
}

int main(int argc, char **argv)
{
    server_t srv;
    int first;

    /* glibc gives each of up to 8 threads per CPU a malloc arena of its own,
     * and a batch of 1,000 jobs leaves a few MB behind in whichever request
     * thread parsed it: with 64 request threads the peak RSS of the bench's
     * e2e run went from 18 to 81 MiB.  Four arenas keep it near the old figure
     * and are plenty for two to four busy threads per CPU. */
    mallopt(M_ARENA_MAX, 4);
    memset(&srv, 0, sizeof srv);
    config_defaults(&srv.cfg);
    if (argc > 1 && strcmp(argv[1], "migrate") == 0) {
        if ((first = parse_args(argc - 1, argv + 1, &srv.cfg)) < 0)
            return EXIT_REFUSED;
        if (first + 1 != argc - 1) {
            fprintf(stderr, "usage: jobd migrate status|up|down [--data-dir DIR | --db URL]\n");
            return EXIT_REFUSED;
        }
        return cmd_migrate(&srv.cfg, argv[first + 1]);
    }
    if ((first = parse_args(argc, argv, &srv.cfg)) < 0)
        return EXIT_REFUSED;
    if (first != argc) {
        fprintf(stderr, "jobd: unexpected argument '%s'\n%s", argv[first], usage);
        return EXIT_REFUSED;
    }
    return serve(&srv);
}
