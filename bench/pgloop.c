/*
 * pgloop.c - the bare-PostgreSQL baseline: no server in between, just libpq
 * bots on a table of their own, each claiming with FOR UPDATE SKIP LOCKED
 * and completing, every statement its own durable commit.  "single" claims
 * and completes one job per statement; "batched" claims --batch jobs (10) per
 * statement and completes them in one UPDATE.  What jobd on PostgreSQL is
 * measured against.
 * "latency" is the latency workload done the bare way: each job is inserted
 * in a durable commit of its own, then announced with a NOTIFY in a commit
 * that does not wait for its flush (as jobd announces, and for the same
 * reason: PostgreSQL holds one lock from a NOTIFY's commit until its flush
 * is done, so a NOTIFY inside the insert's transaction puts every submit's
 * flush in a row); bots that find the queue empty wait on LISTEN, and each
 * claim and complete is again its own commit.  It shows what this database
 * on this machine does with one submit a millisecond and one-job bots: what
 * jobd on PostgreSQL can be held to.
 */
#include "bench.h"

#include <libpq-fe.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct ctx {
    const bench_opts_t *o;
    int batch;
    atomic_long done, errors;
    int64_t deadline;
    atomic_int stop; /* latency: the producers are done and every job was claimed */
} ctx_t;

static const char schema[] =
    "DROP TABLE IF EXISTS bench_jobs;"
    "CREATE TABLE bench_jobs (id bigserial PRIMARY KEY, status text NOT NULL DEFAULT 'pending',"
    " priority int NOT NULL DEFAULT 0, input jsonb NOT NULL, result jsonb,"
    " created_at timestamptz NOT NULL DEFAULT now(), claimed_at timestamptz,"
    " finished_at timestamptz, lease uuid);"
    "CREATE INDEX bench_jobs_queue ON bench_jobs (priority DESC, id) WHERE status = 'pending';";

/* Claim up to $1 jobs; the lease is a fresh UUID per claim. */
static const char claim_sql[] =
    "UPDATE bench_jobs SET status = 'processing', claimed_at = now(), lease = gen_random_uuid()"
    " WHERE id IN (SELECT id FROM bench_jobs WHERE status = 'pending'"
    "  ORDER BY priority DESC, id LIMIT $1 FOR UPDATE SKIP LOCKED)"
    " RETURNING id, (input->>'a')::bigint, (input->>'b')::bigint";

/* Complete the jobs $1 with the results $2 (arrays), if still processing. */
static const char complete_sql[] =
    "UPDATE bench_jobs j SET status = 'succeeded', result = to_jsonb(v.r), finished_at = now()"
    " FROM unnest($1::bigint[], $2::bigint[]) AS v(id, r)"
    " WHERE j.id = v.id AND j.status = 'processing'";

/* latency: one job, due at $3 (bench_now_ns); then its announcement. */
static const char submit_sql[] =
    "INSERT INTO bench_jobs (input)"
    " VALUES (jsonb_build_object('a', $1::bigint, 'b', $2::bigint, 't', $3::bigint))";
static const char announce_sql[] =
    "BEGIN; SET LOCAL synchronous_commit = off; NOTIFY bench_jobs; COMMIT";

/* latency: the claim, with the due time. */
static const char claim_due_sql[] =
    "UPDATE bench_jobs SET status = 'processing', claimed_at = now(), lease = gen_random_uuid()"
    " WHERE id IN (SELECT id FROM bench_jobs WHERE status = 'pending'"
    "  ORDER BY priority DESC, id LIMIT 1 FOR UPDATE SKIP LOCKED)"
    " RETURNING id, (input->>'a')::bigint, (input->>'b')::bigint, (input->>'t')::bigint";

static PGconn *connect_db(const char *conninfo)
{
    PGconn *db = PQconnectdb(conninfo);
    if (PQstatus(db) != CONNECTION_OK) {
        bench_say("pgloop: cannot connect: %s", PQerrorMessage(db));
        PQfinish(db);
        return NULL;
    }
    return db;
}

static bool exec_ok(PGconn *db, const char *sql)
{
    PGresult *r = PQexec(db, sql);
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
    if (!ok)
        bench_say("pgloop: %s: %s", sql, PQerrorMessage(db));
    PQclear(r);
    return ok;
}

/* Complete the jobs `ids` with `sums` (array literals) in one commit and
 * count them done; false (counted as an error) if the statement failed. */
static bool complete(ctx_t *x, PGconn *db, const char *ids, const char *sums)
{
    const char *params[2] = {ids, sums};
    PGresult *r = PQexecParams(db, complete_sql, 2, NULL, params, NULL, NULL, 0);
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;

    if (ok) {
        atomic_fetch_add(&x->done, atol(PQcmdTuples(r)));
    } else {
        bench_say("pgloop: complete: %s", PQerrorMessage(db));
        atomic_fetch_add(&x->errors, 1);
    }
    PQclear(r);
    return ok;
}

typedef struct bot {
    ctx_t *x;
    pthread_t thread;
    samples_t lat; /* latency: submit-to-claim times (us) */
} bot_t;

static void *bot_main(void *arg)
{
    bot_t *bot = arg;
    ctx_t *x = bot->x;
    PGconn *db = connect_db(x->o->conninfo);
    char limit[16], *ids = NULL, *sums = NULL;
    size_t cap = 0;

    if (!db) {
        atomic_fetch_add(&x->errors, 1);
        return NULL;
    }
    snprintf(limit, sizeof limit, "%d", x->batch);
    if (!exec_ok(db, "SET synchronous_commit = on"))
        goto out;
    while (bench_now_ns() < x->deadline) {
        const char *params[1] = {limit};
        PGresult *r = PQexecParams(db, claim_sql, 1, NULL, params, NULL, NULL, 0);
        int n;
        size_t li = 0, ls = 0;

        if (PQresultStatus(r) != PGRES_TUPLES_OK) {
            bench_say("pgloop: claim: %s", PQerrorMessage(db));
            atomic_fetch_add(&x->errors, 1);
            PQclear(r);
            break;
        }
        if ((n = PQntuples(r)) == 0) { /* the queue is empty */
            PQclear(r);
            break;
        }
        if (cap < (size_t)n * 24 + 4) {
            cap = (size_t)n * 24 + 4;
            ids = realloc(ids, cap);
            sums = realloc(sums, cap);
            if (!ids || !sums)
                abort();
        }
        /* compute each sum; build the arrays "{1,2}" and "{s1,s2}" */
        ids[li++] = '{';
        sums[ls++] = '{';
        for (int i = 0; i < n; i++) {
            long long sum = atoll(PQgetvalue(r, i, 1)) + atoll(PQgetvalue(r, i, 2));
            li += (size_t)snprintf(ids + li, cap - li, "%s%s", i ? "," : "", PQgetvalue(r, i, 0));
            ls += (size_t)snprintf(sums + ls, cap - ls, "%s%lld", i ? "," : "", sum);
        }
        snprintf(ids + li, cap - li, "}");
        snprintf(sums + ls, cap - ls, "}");
        PQclear(r);
        if (!complete(x, db, ids, sums))
            break;
    }
out:
    free(ids);
    free(sums);
    PQfinish(db);
    return NULL;
}

static void run_variant(ctx_t *x, PGconn *db, const char *row, int batch)
{
    const bench_opts_t *o = x->o;
    bot_t bots[256];
    char sql[256];
    int64_t t0;
    double s;
    long done;

    bench_say("pgloop %s: loading %ld jobs", row, o->jobs);
    snprintf(sql, sizeof sql,
             "INSERT INTO bench_jobs (input) SELECT jsonb_build_object('a', g, 'b', 2 * g)"
             " FROM generate_series(1, %ld) g",
             o->jobs);
    if (!exec_ok(db, schema) || !exec_ok(db, sql) || !exec_ok(db, "VACUUM ANALYZE bench_jobs"))
        return;
    x->batch = batch;
    atomic_store(&x->done, 0);
    atomic_store(&x->errors, 0);
    bench_rss_reset(o);
    x->deadline = bench_now_ns() + (int64_t)(o->budget * 1e9);
    t0 = bench_now_ns();
    for (int i = 0; i < o->bots; i++) {
        bots[i] = (bot_t){.x = x};
        pthread_create(&bots[i].thread, NULL, bot_main, &bots[i]);
    }
    for (int i = 0; i < o->bots; i++)
        pthread_join(bots[i].thread, NULL);
    s = (double)(bench_now_ns() - t0) / 1e9;
    done = atomic_load(&x->done);
    bench_emit(o, row, "rate", (double)done / s,
               "%d libpq bots, claims of %d (SKIP LOCKED), %s; %ld of %ld jobs in %.1f s%s",
               o->bots, batch,
               batch > 1 ? "one UPDATE completes the batch" : "one complete per job", done, o->jobs,
               s, done < o->jobs ? " CUT at budget" : "");
    bench_emit(o, row, "errors", (double)atomic_load(&x->errors), NULL);
    bench_rss_emit(o, row);
}

/* ---- latency: producers insert, then announce; idle bots LISTEN ---- */

static void *producer_open(void *arg, int index)
{
    ctx_t *x = arg;
    PGconn *db = connect_db(x->o->conninfo);
    (void)index;
    if (!db || !exec_ok(db, "SET synchronous_commit = on")) {
        atomic_fetch_add(&x->errors, 1);
        PQfinish(db);
        return NULL;
    }
    return db;
}

static bool producer_submit(void *conn, long k, int64_t due)
{
    char a[24], b[24], t[24];
    const char *params[3] = {a, b, t};
    PGresult *r;
    bool ok;

    snprintf(a, sizeof a, "%ld", k);
    snprintf(b, sizeof b, "%ld", 2 * k);
    snprintf(t, sizeof t, "%lld", (long long)due);
    r = PQexecParams(conn, submit_sql, 3, NULL, params, NULL, NULL, 0);
    ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    if (ok) {
        r = PQexec(conn, announce_sql);
        ok = PQresultStatus(r) == PGRES_COMMAND_OK;
        PQclear(r);
    }
    if (!ok)
        bench_say("pgloop: submit: %s", PQerrorMessage(conn));
    return ok;
}

static void producer_close(void *conn)
{
    PQfinish(conn);
}

/* Wait until a notification arrives on db or ms pass; false if the
 * connection broke. */
static bool await_notify(PGconn *db, int ms)
{
    struct pollfd pfd = {.fd = PQsocket(db), .events = POLLIN};
    PGnotify *n;
    bool got = false;

    while ((n = PQnotifies(db)) != NULL) { /* already read with an earlier reply */
        PQfreemem(n);
        got = true;
    }
    if (got)
        return true;
    if (poll(&pfd, 1, ms) < 0)
        return true;
    if (!PQconsumeInput(db))
        return false;
    while ((n = PQnotifies(db)) != NULL)
        PQfreemem(n);
    return true;
}

static void *lat_bot_main(void *arg)
{
    bot_t *bot = arg;
    ctx_t *x = bot->x;
    PGconn *db = connect_db(x->o->conninfo);

    if (!db || !exec_ok(db, "SET synchronous_commit = on") || !exec_ok(db, "LISTEN bench_jobs")) {
        atomic_fetch_add(&x->errors, 1);
        PQfinish(db);
        return NULL;
    }
    while (!atomic_load(&x->stop)) {
        PGresult *r = PQexecParams(db, claim_due_sql, 0, NULL, NULL, NULL, NULL, 0);
        char id[24], sum[24];

        if (PQresultStatus(r) != PGRES_TUPLES_OK) {
            bench_say("pgloop: claim: %s", PQerrorMessage(db));
            atomic_fetch_add(&x->errors, 1);
            PQclear(r);
            break;
        }
        if (PQntuples(r) == 0) { /* idle: wait for the next announcement */
            PQclear(r);
            if (!await_notify(db, 100)) {
                atomic_fetch_add(&x->errors, 1);
                break;
            }
            continue;
        }
        samples_add(&bot->lat, (double)(bench_now_ns() - atoll(PQgetvalue(r, 0, 3))) / 1e3);
        snprintf(id, sizeof id, "{%s}", PQgetvalue(r, 0, 0));
        snprintf(sum, sizeof sum, "{%lld}",
                 atoll(PQgetvalue(r, 0, 1)) + atoll(PQgetvalue(r, 0, 2)));
        PQclear(r);
        if (!complete(x, db, id, sum))
            break;
    }
    PQfinish(db);
    return NULL;
}

static void latency(ctx_t *x, PGconn *db)
{
    static const producer_ops_t ops = {producer_open, producer_submit, producer_close};
    const bench_opts_t *o = x->o;
    bot_t bots[64];
    int nbots = o->bots < 64 ? o->bots : 64;
    long total = (long)(o->seconds * 1000), sent;
    samples_t all;
    double s;

    if (!exec_ok(db, schema) || !exec_ok(db, "VACUUM ANALYZE bench_jobs"))
        return;
    samples_init(&all);
    atomic_store(&x->done, 0);
    atomic_store(&x->errors, 0);
    bench_rss_reset(o);
    for (int i = 0; i < nbots; i++) {
        bots[i] = (bot_t){.x = x};
        samples_init(&bots[i].lat);
        pthread_create(&bots[i].thread, NULL, lat_bot_main, &bots[i]);
    }
    bench_sleep_until(bench_now_ns() + 500000000); /* every bot waits on LISTEN */
    sent = bench_produce(&ops, x, BENCH_PRODUCERS, total, &x->stop, &s);
    bench_wait_count(&x->done, sent, &x->stop, 30); /* the last jobs reach a bot */
    atomic_store(&x->stop, 1);
    for (int i = 0; i < nbots; i++) {
        pthread_join(bots[i].thread, NULL);
        samples_merge(&all, &bots[i].lat);
        samples_cleanup(&bots[i].lat);
    }
    bench_report_latency(o, "latency", &all, sent, total, s, BENCH_PRODUCERS,
                         atomic_load(&x->errors), "inserts, each announced");
    samples_cleanup(&all);
}

int pgloop_run(const bench_opts_t *o)
{
    ctx_t x = {.o = o};
    PGconn *db;

    if (strcmp(o->workload, "e2e") != 0 && strcmp(o->workload, "latency") != 0) {
        bench_say("pgloop has only the e2e and latency workloads");
        return 2;
    }
    if (!(db = connect_db(o->conninfo)))
        return 1;
    exec_ok(db, "SET client_min_messages = warning");
    if (strcmp(o->workload, "latency") == 0) {
        latency(&x, db);
    } else {
        if (!o->variant || strcmp(o->variant, "single") == 0)
            run_variant(&x, db, "e2e-single", 1);
        if (!o->variant || strcmp(o->variant, "batched") == 0)
            run_variant(&x, db, "e2e-batched", o->batch);
    }
    exec_ok(db, "DROP TABLE IF EXISTS bench_jobs");
    PQfinish(db);
    return 0;
}
