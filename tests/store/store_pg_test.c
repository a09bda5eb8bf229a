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
                              &jobs, &e),
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
        assert_ok(store_export_pending(s, server, 500, &jobs, &e), &e);
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
    assert_ok(store_export_pending(s, "server-a", 1, &a, &e), &e);
    assert_int_equal(json_array_size(a), 1);
    assert_ok(store_export_pending(s, "server-b", 10, &b, &e), &e);
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
    assert_ok(store_export_pending(s, "server-a", 10, &a, &e), &e);
    assert_int_equal(json_array_size(a), 0);
    json_decref(a);
    json_decref(b);
    assert_ok(store_export_pending(s, "server-b", 10, &b, &e), &e);
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
 * and the watch survives its connection being killed. */
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
    raw_exec(raw, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                  " WHERE application_name = 'jobd' AND datname = current_database()");
    assert_true(heard(&h, "(any)", 5000));
    assert_ok(create(a, "pg-watch-2", &job, &e), &e);
    json_decref(job);
    assert_true(heard(&h, "pg-watch-2", 500));
    PQfinish(raw);
    store_free(b);
    store_free(a);
}

/* A pooled connection PostgreSQL dropped is re-made by the next call, which
 * succeeds: nothing was done on it yet. */
static void test_reconnect(void **state)
{
    store_t *s = testdb_open(db_url());
    PGconn *raw = raw_open();
    json_t *bots;
    err_t e;

    assert_ok(store_ping(s, &e), &e);
    raw_exec(raw, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                  " WHERE application_name = 'jobd' AND datname = current_database()");
    assert_ok(store_bot_list(s, &bots, &e), &e);
    json_decref(bots);
    assert_ok(store_ping(s, &e), &e);
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
        cmocka_unit_test(test_reconnect),
        cmocka_unit_test(test_concurrent_migrate),
    };
    return cmocka_run_group_tests_name("store on PostgreSQL", tests, NULL, NULL);
}
