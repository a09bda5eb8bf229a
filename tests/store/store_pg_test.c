/*
 * store_pg_test.c - what only the PostgreSQL backend can be asked: that its
 * migrations agree with SQLite's, that store_prepare refuses a drifted
 * schema, that servers sharing the database each get their own datalake
 * exports and hear each other's jobs, that migrations serialize, and that a
 * dropped connection is re-made by itself.  Runs on $JOBD_TEST_DB (a fresh
 * database from with_pg_db.sh); a raw libpq connection plays the operator.
 */
#include "testdb.h"
#include "migrations.h"

#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"

static const char *db_url(void)
{
    const char *db = getenv("JOBD_TEST_DB");
    if (!db || !*db)
        fail_msg("JOBD_TEST_DB is not set: run through with_pg_db.sh");
    return db;
}

static PGconn *raw_open(void)
{
    PGconn *pg = PQconnectdb(db_url());
    if (PQstatus(pg) != CONNECTION_OK)
        fail_msg("connect: %s", PQerrorMessage(pg));
    return pg;
}

static void raw_exec(PGconn *pg, const char *sql)
{
    PGresult *r = PQexec(pg, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQerrorMessage(pg));
    PQclear(r);
}

/* End every jobd session on the test database, as a restart or an admin's
 * pg_terminate_backend would. */
static void kill_jobd_sessions(PGconn *raw)
{
    raw_exec(raw, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                  " WHERE application_name = 'jobd' AND datname = current_database()");
}

/* Submit a job of `op` with an empty input. */
static int create(store_t *s, const char *op, json_t **job, err_t *e)
{
    json_t *input = json_object();
    job_spec_t spec = {.operation = op, .input = input, .max_attempts = 3};
    int rc = store_job_create(s, &spec, job, e);

    json_decref(input);
    return rc;
}

static json_t *ops1(const char *op)
{
    return json_pack("[s]", op);
}

/* A job of `op` created, claimed by a new bot and completed. */
static void finished_job(store_t *s, const char *op, char id[64])
{
    json_t *ops = ops1(op), *bot, *job, *jobs, *result = json_integer(1);
    const char *o[] = {op};
    bool repeated;
    err_t e;

    assert_ok(store_bot_register(s, "pg-bot", ops, &bot, &e), &e);
    assert_ok(create(s, op, &job, &e), &e);
    json_decref(job);
    assert_ok(store_job_claim(s, json_string_value(json_object_get(bot, "id")), o, 1, 1, 30000,
                              false, &jobs, &e),
              &e);
    assert_int_equal(json_array_size(jobs), 1);
    job = json_array_get(jobs, 0);
    snprintf(id, 64, "%s", json_string_value(json_object_get(job, "id")));
    assert_ok(store_job_complete(s, id, json_string_value(json_object_get(bot, "id")),
                                 json_string_value(json_object_get(job, "lease")), result, 1, &job,
                                 &repeated, &e),
              &e);
    json_decref(job);
    json_decref(jobs);
    json_decref(bot);
    json_decref(ops);
    json_decref(result);
}

/* Export, under server `server`, everything the outbox holds. */
static void drain(store_t *s, const char *server)
{
    json_t *jobs, *ids, *job;
    size_t i;
    err_t e;

    do {
        jobs = testdb_export(s, server, 500);
        ids = json_array();
        json_array_foreach(jobs, i, job) json_array_append(ids, json_object_get(job, "id"));
        assert_ok(store_export_mark(s, server, ids, NULL, &e), &e);
        json_decref(ids);
        i = json_array_size(jobs);
        json_decref(jobs);
    } while (i > 0);
}

/* ---- tests ------------------------------------------------------------------ */

/* Checklist of migrations.h: the two sets carry the same versions and names,
 * so that `jobd migrate status` means the same on both. */
static void test_migration_sets_agree(void **state)
{
    assert_int_equal(store_pg_migrations_count, store_sqlite_migrations_count);
    for (int i = 0; i < store_pg_migrations_count; i++) {
        assert_int_equal(store_pg_migrations[i].version, store_sqlite_migrations[i].version);
        assert_string_equal(store_pg_migrations[i].name, store_sqlite_migrations[i].name);
    }
}

/* The seed's bug, caught at start: a statement that no longer fits. */
static void test_prepare_names_drifted_statement(void **state)
{
    store_t *s = testdb_open(db_url());
    PGconn *raw = raw_open();
    err_t e;

    raw_exec(raw, "ALTER TABLE jobs RENAME COLUMN result TO sum");
    assert_rc(store_prepare(s, &e), JOBD_ESCHEMA, &e);
    assert_contains(e.msg, "statement job_get");
    assert_contains(e.msg, "column \"result\" does not exist");
    raw_exec(raw, "ALTER TABLE jobs RENAME COLUMN sum TO result");
    assert_ok(store_prepare(s, &e), &e);
    PQfinish(raw);
    store_free(s);
}

/* An older binary refuses a newer schema, naming both versions. */
static void test_newer_schema_refused(void **state)
{
    store_t *s = testdb_open(db_url());
    PGconn *raw = raw_open();
    char sql[160], want[96];
    err_t e;

    snprintf(sql, sizeof sql,
             "INSERT INTO schema_version (version, name, applied_at) VALUES (%d, 'future', 0)",
             store_pg_migrations_count + 1);
    raw_exec(raw, sql);
    assert_rc(store_prepare(s, &e), JOBD_ESCHEMA, &e);
    snprintf(want, sizeof want, "version %d is newer than this binary's latest version %d",
             store_pg_migrations_count + 1, store_pg_migrations_count);
    assert_contains(e.msg, want);
    assert_rc(store_migrate_up(s, &e), JOBD_ESCHEMA, &e);
    snprintf(sql, sizeof sql, "DELETE FROM schema_version WHERE version = %d",
             store_pg_migrations_count + 1);
    raw_exec(raw, sql);
    PQfinish(raw);
    store_free(s);
}

/* A database that cannot be reached is "unavailable" with libpq's reason,
 * and the password of the URL appears nowhere. */
static void test_unreachable(void **state)
{
    store_t *s = NULL;
    err_t e;

    assert_rc(store_open("postgresql://jobd:s3cret-pw@127.0.0.1:1/jobd", &s, &e), JOBD_EDBDOWN, &e);
    assert_null(s);
    assert_contains(e.msg, "cannot connect to PostgreSQL");
    assert_contains(e.msg, "refused");
    assert_null(strstr(e.msg, "s3cret-pw"));
    assert_rc(store_open("host=127.0.0.1 port=1 password=s3cret-pw", &s, &e), JOBD_EDBDOWN, &e);
    assert_null(strstr(e.msg, "s3cret-pw"));
}

/* Two servers: what one claimed for export the other never gets, and may
 * not mark. */
static void test_export_claimed_per_server(void **state)
{
    store_t *s = testdb_open(db_url());
    json_t *a, *b, *ids;
    char id1[64], id2[64];
    err_t e;

    drain(s, "server-a");
    finished_job(s, "pg-export", id1);
    finished_job(s, "pg-export", id2);
    a = testdb_export(s, "server-a", 1);
    assert_int_equal(json_array_size(a), 1);
    b = testdb_export(s, "server-b", 10);
    assert_int_equal(json_array_size(b), 1);
    assert_string_not_equal(json_string_value(json_object_get(json_array_get(a, 0), "id")),
                            json_string_value(json_object_get(json_array_get(b, 0), "id")));

    /* b may not mark a's job; a may, and a's file size is recorded. */
    ids = json_pack("[O]", json_object_get(json_array_get(a, 0), "id"));
    assert_rc(store_export_mark(s, "server-b", ids, NULL, &e), JOBD_EDB, &e);
    assert_contains(e.msg, "another server");
    assert_ok(store_export_mark(s, "server-a", ids, NULL, &e), &e);
    json_decref(ids);

    /* Claimed by b and not marked: b gets it again, a does not. */
    json_decref(a);
    a = testdb_export(s, "server-a", 10);
    assert_int_equal(json_array_size(a), 0);
    json_decref(a);
    json_decref(b);
    b = testdb_export(s, "server-b", 10);
    assert_int_equal(json_array_size(b), 1);
    json_decref(b);
    store_free(s);
}

/* What a watch callback heard. */
struct heard {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    char ops[16][64];
    int n;
};

static void on_job(void *arg, const char *operation)
{
    struct heard *h = arg;
    pthread_mutex_lock(&h->mu);
    if (h->n < 16)
        snprintf(h->ops[h->n++], sizeof h->ops[0], "%s", operation ? operation : "(any)");
    pthread_cond_broadcast(&h->cond);
    pthread_mutex_unlock(&h->mu);
}

/* Wait up to ms for `op` among what h heard; true if it was. */
static bool heard(struct heard *h, const char *op, int ms)
{
    int64_t deadline = clock_mono_ms() + ms;
    bool found = false;

    pthread_mutex_lock(&h->mu);
    while (!found) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        for (int i = 0; i < h->n && !found; i++)
            found = strcmp(h->ops[i], op) == 0;
        if (found || clock_mono_ms() >= deadline)
            break;
        pthread_mutex_unlock(&h->mu);
        nanosleep(&ts, NULL);
        pthread_mutex_lock(&h->mu);
    }
    pthread_mutex_unlock(&h->mu);
    return found;
}

/* A job submitted through one server is heard by another within 500 ms,
 * and the watch survives its connection being killed; a server does not
 * hear its own. */
static void test_watch(void **state)
{
    store_t *a = testdb_open(db_url()), *b = testdb_open(db_url());
    struct heard h = {.mu = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
    json_t *job;
    PGconn *raw = raw_open();
    err_t e;

    assert_ok(store_watch(b, on_job, &h, &e), &e);
    assert_rc(store_watch(b, on_job, &h, &e), JOBD_EINTERNAL, &e);
    assert_ok(create(a, "pg-watch-1", &job, &e), &e);
    json_decref(job);
    assert_true(heard(&h, "pg-watch-1", 500));

    /* Every jobd connection dropped, as an admin shutdown would: the
     * listener reconnects and says it may have missed something. */
    kill_jobd_sessions(raw);
    assert_true(heard(&h, "(any)", 5000));
    assert_ok(create(a, "pg-watch-2", &job, &e), &e);
    json_decref(job);
    assert_true(heard(&h, "pg-watch-2", 500));

    /* Its own jobs, b announces to its waiting claims itself: hearing them
     * again would wake a second claim for each. */
    assert_ok(create(b, "pg-watch-own", &job, &e), &e);
    json_decref(job);
    assert_false(heard(&h, "pg-watch-own", 300));
    assert_ok(create(a, "pg-watch-3", &job, &e), &e);
    json_decref(job);
    assert_true(heard(&h, "pg-watch-3", 500));
    assert_false(heard(&h, "pg-watch-own", 0));
    PQfinish(raw);
    store_free(b);
    store_free(a);
}

/* A job handed to a bot that waits on server a (store_job_create_claim) was
 * never pending for anyone else: server b hears nothing, where a wake-up
 * would cost one of its bots a claim that finds nothing.  A job the
 * hand-off leaves pending (its bot is gone) is heard as any other. */
static void test_handoff_not_announced(void **state)
{
    store_t *a = testdb_open(db_url()), *b = testdb_open(db_url());
    struct heard h = {.mu = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
    json_t *ops = ops1("pg-handoff"), *input = json_object(), *bot, *job, *claimed;
    job_spec_t spec = {.operation = "pg-handoff", .input = input, .max_attempts = 3};
    err_t e;

    assert_ok(store_watch(b, on_job, &h, &e), &e);
    assert_ok(store_bot_register(a, "pg-waiter", ops, &bot, &e), &e);
    assert_ok(store_job_create_claim(a, &spec, false, json_string_value(json_object_get(bot, "id")),
                                     30000, &job, &claimed, &e),
              &e);
    assert_int_equal(json_array_size(claimed), 1);
    json_decref(claimed);
    json_decref(job);
    assert_false(heard(&h, "pg-handoff", 500));

    assert_ok(store_job_create_claim(a, &spec, false, "01937000-0000-7000-8000-000000000000", 30000,
                                     &job, &claimed, &e),
              &e);
    assert_int_equal(json_array_size(claimed), 0);
    json_decref(claimed);
    json_decref(job);
    assert_true(heard(&h, "pg-handoff", 500));
    json_decref(bot);
    json_decref(input);
    json_decref(ops);
    store_free(b);
    store_free(a);
}

/* Wait up to ms for a notification on raw's LISTEN; its payload, or NULL. */
static char *raw_notified(PGconn *raw, int ms)
{
    int64_t deadline = clock_mono_ms() + ms;
    PGnotify *n;

    while (clock_mono_ms() < deadline) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        PQconsumeInput(raw);
        if ((n = PQnotifies(raw))) {
            char *payload = strdup(n->extra);
            PQfreemem(n);
            return payload;
        }
        nanosleep(&ts, NULL);
    }
    return NULL;
}

static const char raw_insert[] =
    "INSERT INTO jobs (id, operation, input, priority, status, attempts, created_at,"
    " max_attempts) VALUES (gen_random_uuid()::text, 'pg-raw', '{}', 0, 'pending', 0, 0, 1)";

/* Migration 0007's trigger: a session that announces after commit (as every
 * jobd session does) gets the operations it made pending in jobd.pending,
 * each once, and no notification from the trigger, whose lock would hold
 * every such commit in line behind the others' WAL flushes; any other
 * session (psql) still notifies when it commits.  And a job submitted
 * through the store is heard all the same, from its announcer. */
static void test_announce_after_commit(void **state)
{
    store_t *s = testdb_open(db_url());
    PGconn *listen = raw_open(), *writer = raw_open();
    PGresult *r;
    json_t *job;
    char *heard;
    err_t e;

    raw_exec(listen, "LISTEN jobd_jobs");
    raw_exec(writer, "SET jobd.announce = 'after-commit'");
    raw_exec(writer, "BEGIN");
    raw_exec(writer, raw_insert);
    raw_exec(writer, raw_insert);
    r = PQexec(writer, "SELECT current_setting('jobd.pending', true)");
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    assert_string_equal(PQgetvalue(r, 0, 0), "pg-raw\n");
    PQclear(r);
    raw_exec(writer, "COMMIT");
    heard = raw_notified(listen, 300);
    assert_null(heard);

    raw_exec(writer, "RESET jobd.announce");
    raw_exec(writer, raw_insert);
    heard = raw_notified(listen, 2000);
    assert_non_null(heard);
    assert_string_equal(heard, "pg-raw");
    free(heard);

    assert_ok(create(s, "pg-announced", &job, &e), &e);
    json_decref(job);
    heard = raw_notified(listen, 2000);
    assert_non_null(heard);
    assert_string_equal(heard, "pg-announced");
    free(heard);
    raw_exec(writer, "DELETE FROM jobs WHERE operation = 'pg-raw'");
    PQfinish(writer);
    PQfinish(listen);
    store_free(s);
}

/* Whole-table scans started on jobd's tables, per table, in `out`. */
static const char *const walked_tables[] = {"jobs", "attempts", "bots", "export_queue",
                                            "job_events"};
#define N_WALKED (sizeof walked_tables / sizeof walked_tables[0])

static void seq_scans(PGconn *raw, long long out[N_WALKED])
{
    PGresult *r;

    raw_exec(raw, "SELECT pg_stat_clear_snapshot()");
    for (size_t i = 0; i < N_WALKED; i++) {
        const char *p[1] = {walked_tables[i]};
        r = PQexecParams(raw, "SELECT seq_scan FROM pg_stat_user_tables WHERE relname = $1", 1,
                         NULL, p, NULL, NULL, 0);
        if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
            fail_msg("seq_scan of %s: %s", walked_tables[i], PQerrorMessage(raw));
        out[i] = atoll(PQgetvalue(r, 0, 0));
        PQclear(r);
    }
}

/* Wait until no jobd session is left: a backend reports its statistics as
 * it exits. */
static void jobd_sessions_gone(PGconn *raw)
{
    for (int i = 0; i < 500; i++) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        PGresult *r = PQexec(raw, "SELECT count(*) FROM pg_stat_activity"
                                  " WHERE application_name = 'jobd'"
                                  " AND datname = current_database()");
        bool gone = PQresultStatus(r) == PGRES_TUPLES_OK && atoi(PQgetvalue(r, 0, 0)) == 0;
        PQclear(r);
        if (gone)
            return;
        nanosleep(&ts, NULL);
    }
    fail_msg("jobd's sessions did not end");
}

/* The regression behind jobd's plan settings (store_pg.c, STATEMENTS): on a
 * new database, a plan made while a table is empty scanned the whole table
 * long after it had grown.  Through a bot's whole life on a database whose
 * tables are still small, and whatever the statistics say, no statement
 * starts a scan of a whole table: every one walks an index. */
static void test_statements_walk_indexes(void **state)
{
    PGconn *raw = raw_open();
    long long before[N_WALKED], after[N_WALKED];
    const char *o[] = {"pg-walk"};
    json_t *ops = ops1("pg-walk"), *bot, *jobs, *job, *result = json_integer(2), *v;
    json_t *input = json_object();
    job_spec_t specs[20];
    job_report_t reports[4] = {{0}};
    const char *bot_id;
    bool repeated;
    int n;
    err_t e;
    store_t *s = testdb_open(db_url());

    /* Sessions of the other tests have ended: their scans are counted. */
    store_free(s);
    jobd_sessions_gone(raw);
    seq_scans(raw, before);
    s = testdb_open(db_url());

    for (int i = 0; i < 20; i++)
        specs[i] = (job_spec_t){.operation = "pg-walk", .input = input, .max_attempts = 2};
    for (int round = 0; round < 8; round++) {
        assert_ok(store_job_create_many(s, specs, 20, false, &jobs, &e), &e);
        json_decref(jobs);
        assert_ok(create(s, "pg-walk", &job, &e), &e);
        json_decref(job);
    }
    assert_ok(store_bot_register(s, "pg-walker", ops, &bot, &e), &e);
    bot_id = json_string_value(json_object_get(bot, "id"));
    for (int round = 0; round < 8; round++) {
        json_t *claimed;
        assert_ok(store_job_claim(s, bot_id, o, 1, 4, 30000, false, &claimed, &e), &e);
        assert_int_equal(json_array_size(claimed), 4);
        for (int i = 0; i < 4; i++) {
            job = json_array_get(claimed, (size_t)i);
            reports[i] = (job_report_t){.id = json_string_value(json_object_get(job, "id")),
                                        .lease = json_string_value(json_object_get(job, "lease")),
                                        .ok = i != 3,
                                        .result = result,
                                        .error = "no"};
        }
        assert_ok(store_job_report_many(s, bot_id, reports, 4, NULL, &e), &e);
        for (int i = 0; i < 4; i++) {
            assert_int_equal(reports[i].rc, JOBD_OK);
            json_decref(reports[i].job);
        }
        json_decref(claimed);
    }
    assert_ok(store_job_claim(s, bot_id, o, 1, 2, 30000, false, &jobs, &e), &e);
    job = json_array_get(jobs, 0);
    assert_ok(store_job_complete(s, json_string_value(json_object_get(job, "id")), bot_id,
                                 json_string_value(json_object_get(job, "lease")), result, 1, &v,
                                 &repeated, &e),
              &e);
    json_decref(v);
    job = json_array_get(jobs, 1);
    assert_ok(store_job_release(s, json_string_value(json_object_get(job, "id")), "walk", &v, &e),
              &e);
    json_decref(v);
    assert_ok(store_job_get(s, json_string_value(json_object_get(job, "id")), &v, &e), &e);
    json_decref(v);
    json_decref(jobs);
    assert_ok(store_bot_heartbeat(s, bot_id, "ready", 30000, NULL, &v, &e), &e);
    json_decref(v);
    assert_ok(store_bot_list(s, &v, &e), &e);
    json_decref(v);
    assert_ok(store_lease_expire(s, clock_now_ms(), &n, &e), &e);
    assert_ok(store_schedule_due(s, clock_now_ms(), &n, &e), &e);
    drain(s, "server-walk");
    assert_ok(store_job_purge(s, clock_now_ms() + 1000, 100, &n, &e), &e);
    assert_true(n > 0);
    store_free(s);
    jobd_sessions_gone(raw);

    seq_scans(raw, after);
    for (size_t i = 0; i < N_WALKED; i++) {
        /* The list of every bot reads every bot, as it should (bot_list);
         * each bot's jobs in it come from an index (processing_jobs). */
        long long listed = strcmp(walked_tables[i], "bots") == 0;
        if (after[i] - before[i] != listed)
            fail_msg("%lld whole-table scans of %s", after[i] - before[i], walked_tables[i]);
    }
    json_decref(input);
    json_decref(result);
    json_decref(ops);
    json_decref(bot);
    PQfinish(raw);
}

/* A pooled connection PostgreSQL dropped is re-made by the next call, which
 * succeeds: nothing was done on it yet. */
static void test_reconnect(void **state)
{
    store_t *s = testdb_open(db_url());
    PGconn *raw = raw_open();
    json_t *bots, *job;
    err_t e;

    assert_ok(store_ping(s, &e), &e);
    kill_jobd_sessions(raw);
    assert_ok(store_bot_list(s, &bots, &e), &e);
    json_decref(bots);
    assert_ok(store_ping(s, &e), &e);

    /* A read sends its commit with its statements, and may send them
     * again: it changes nothing (a regression test: after 42144bd, the bot
     * list failed when the closed connection was found only by sending). */
    kill_jobd_sessions(raw);
    assert_rc(store_job_get(s, "01937000-0000-7000-8000-000000000000", &job, &e), JOBD_ENOTFOUND,
              &e);
    kill_jobd_sessions(raw);
    assert_ok(store_job_list(s, &(job_filter_t){.limit = 10}, &bots, &e), &e);
    json_decref(bots);
    kill_jobd_sessions(raw);
    assert_ok(store_stats(s, &bots, &e), &e);
    json_decref(bots);

    /* A submit is one round trip with its commit, which is never sent
     * twice: the closed connection is noticed before it is used. */
    kill_jobd_sessions(raw);
    jobd_sessions_gone(raw);
    assert_ok(create(s, "pg-reconnect", &job, &e), &e);
    json_decref(job);
    PQfinish(raw);
    store_free(s);
}

static void *migrate_up(void *arg)
{
    err_t e;
    return (void *)(intptr_t)store_migrate_up(arg, &e);
}

/* Two servers starting together on an empty database: the advisory lock
 * makes one apply each migration and the other find nothing to do. */
static void test_concurrent_migrate(void **state)
{
    store_t *a = testdb_open(db_url()), *b = testdb_open(db_url());
    pthread_t t[2];
    void *rc[2];
    int cur, latest;
    err_t e;

    do
        assert_ok(store_migrate_down(a, &e), &e);
    while (store_schema_version(a, &cur, &latest, &e) == JOBD_OK && cur > 0);
    assert_int_equal(cur, 0);
    assert_int_equal(pthread_create(&t[0], NULL, migrate_up, a), 0);
    assert_int_equal(pthread_create(&t[1], NULL, migrate_up, b), 0);
    for (int i = 0; i < 2; i++) {
        pthread_join(t[i], &rc[i]);
        assert_int_equal((intptr_t)rc[i], JOBD_OK);
    }
    assert_ok(store_schema_version(b, &cur, &latest, &e), &e);
    assert_int_equal(cur, latest);
    assert_ok(store_prepare(a, &e), &e);
    assert_ok(store_prepare(b, &e), &e);
    store_free(b);
    store_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_migration_sets_agree),
        cmocka_unit_test(test_prepare_names_drifted_statement),
        cmocka_unit_test(test_newer_schema_refused),
        cmocka_unit_test(test_unreachable),
        cmocka_unit_test(test_export_claimed_per_server),
        cmocka_unit_test(test_watch),
        cmocka_unit_test(test_handoff_not_announced),
        cmocka_unit_test(test_announce_after_commit),
        cmocka_unit_test(test_statements_walk_indexes),
        cmocka_unit_test(test_reconnect),
        cmocka_unit_test(test_concurrent_migrate),
    };
    return cmocka_run_group_tests_name("store on PostgreSQL", tests, NULL, NULL);
}
