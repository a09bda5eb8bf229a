/*
 * store_sqlite_test.c - what only the SQLite backend can be asked: that its
 * migrations undo cleanly, that store_prepare refuses a schema that drifted
 * from the code (the bug jobd exists to prevent), and that SQLite's errors
 * arrive translated with SQLite's own words.  A second, raw sqlite3
 * connection plays the operator or the other process.
 */
#include "testdb.h"
#include "clock.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *fresh_path(void)
{
    static int n;
    char name[32];
    snprintf(name, sizeof name, "sqlite-%d.db", n++);
    return testdb_path(name);
}

static sqlite3 *raw_open(const char *path)
{
    sqlite3 *db;
    if (sqlite3_open(path, &db) != SQLITE_OK)
        fail_msg("open %s: %s", path, sqlite3_errmsg(db));
    return db;
}

static void raw_exec(sqlite3 *db, const char *sql)
{
    if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
        fail_msg("%s: %s", sql, sqlite3_errmsg(db));
}

/* Every schema object's SQL, in name order, as one string (caller frees). */
static char *schema_text(const char *path)
{
    sqlite3 *db = raw_open(path);
    sqlite3_stmt *st;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);

    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT type, name, tbl_name, coalesce(sql, '')"
                                        " FROM sqlite_master ORDER BY type, name",
                                        -1, &st, NULL),
                     SQLITE_OK);
    while (sqlite3_step(st) == SQLITE_ROW)
        fprintf(f, "%s %s %s: %s\n", sqlite3_column_text(st, 0), sqlite3_column_text(st, 1),
                sqlite3_column_text(st, 2), sqlite3_column_text(st, 3));
    sqlite3_finalize(st);
    sqlite3_close(db);
    fclose(f);
    return text;
}

/* A migrated, prepared store on a fresh file, and a raw connection to the
 * same file for the test to act behind the store's back. */
struct fixture {
    char *path;
    store_t *s;
    sqlite3 *raw;
};

static void fixture_open(struct fixture *x)
{
    x->path = fresh_path();
    x->s = testdb_open(x->path);
    x->raw = raw_open(x->path);
}

static void fixture_close(struct fixture *x)
{
    sqlite3_close(x->raw);
    store_free(x->s);
    free(x->path);
}

static int setup(void **state)
{
    struct fixture *x = calloc(1, sizeof *x);
    fixture_open(x);
    *state = x;
    return 0;
}

static int teardown(void **state)
{
    fixture_close(*state);
    free(*state);
    return 0;
}

static int latest_version(store_t *s)
{
    int current, latest;
    err_t e;
    assert_ok(store_schema_version(s, &current, &latest, &e), &e);
    return latest;
}

/* Fail unless e's message names schema versions `have` and `want`. */
static void assert_names_versions(const err_t *e, int have, int want)
{
    char a[32], b[32];
    snprintf(a, sizeof a, "version %d", have);
    snprintf(b, sizeof b, "version %d", want);
    assert_contains(e->msg, a);
    assert_contains(e->msg, b);
}

static void test_up_down_up_identical(void **state)
{
    struct fixture *x = *state;
    char *up1 = schema_text(x->path), *down, *up2;
    int current, latest;
    err_t e;

    assert_contains(up1, "table jobs jobs");
    assert_contains(up1, "index jobs_claim jobs");
    for (latest = latest_version(x->s); latest > 0; latest--)
        assert_ok(store_migrate_down(x->s, &e), &e);
    assert_ok(store_schema_version(x->s, &current, &latest, &e), &e);
    assert_int_equal(current, 0);
    down = schema_text(x->path);
    assert_null(strstr(down, "table jobs"));
    assert_ok(store_migrate_down(x->s, &e), &e); /* nothing left: a no-op */
    assert_ok(store_migrate_up(x->s, &e), &e);
    assert_ok(store_prepare(x->s, &e), &e);
    up2 = schema_text(x->path);
    assert_string_equal(up1, up2);
    free(up1);
    free(down);
    free(up2);
}

/* The --no-migrate case: a binary newer than its database refuses to start. */
static void test_prepare_refuses_old_schema(void **state)
{
    char *path = fresh_path();
    store_t *s;
    json_t *job;
    int latest;
    err_t e;

    assert_ok(store_open(path, &s, &e), &e);
    latest = latest_version(s);
    assert_rc(store_prepare(s, &e), JOBD_ESCHEMA, &e);
    assert_names_versions(&e, 0, latest);
    assert_rc(store_job_get(s, "x", &job, &e), JOBD_ESCHEMA, &e);
    assert_rc(store_ping(s, &e), JOBD_ESCHEMA, &e);

    assert_ok(store_migrate_up(s, &e), &e);
    assert_ok(store_migrate_down(s, &e), &e);
    assert_rc(store_prepare(s, &e), JOBD_ESCHEMA, &e);
    assert_names_versions(&e, latest - 1, latest);
    store_free(s);
    free(path);
}

/* A database migrated by a newer jobd is left alone, and the message says
 * which versions met. */
static void test_newer_schema_refused(void **state)
{
    struct fixture *x = *state;
    int latest = latest_version(x->s);
    err_t e;

    raw_exec(x->raw,
             "INSERT INTO schema_version (version, name, applied_at) VALUES (99, 'future', 0)");
    assert_rc(store_migrate_up(x->s, &e), JOBD_ESCHEMA, &e);
    assert_names_versions(&e, 99, latest);
    assert_rc(store_migrate_down(x->s, &e), JOBD_ESCHEMA, &e);
    assert_names_versions(&e, 99, latest);
    assert_rc(store_prepare(x->s, &e), JOBD_ESCHEMA, &e);
    assert_names_versions(&e, 99, latest);
}

/* Change a migrated database's schema behind the store's back with
 * `alter`, and expect store_prepare to name `statement` and SQLite's
 * `reason`. */
static void check_drift(const char *alter, const char *statement, const char *reason)
{
    struct fixture x;
    err_t e;

    fixture_open(&x);
    raw_exec(x.raw, alter);
    assert_rc(store_prepare(x.s, &e), JOBD_ESCHEMA, &e);
    assert_contains(e.msg, statement);
    assert_contains(e.msg, reason);
    fixture_close(&x);
}

/* The seed's bug: code and schema disagree on a column's name. */
static void test_prepare_names_drifted_statement(void **state)
{
    check_drift("ALTER TABLE jobs RENAME COLUMN result TO sum", "statement job_get",
                "no such column: result");
    check_drift("ALTER TABLE jobs DROP COLUMN duration_ms", "statement job_get",
                "no such column: duration_ms");
    check_drift("ALTER TABLE attempts RENAME COLUMN outcome TO how", "statement job_history",
                "no such column: outcome");
}

/* Claims and the export outbox must not scan every finished job: without
 * their index jobd does not start. */
static void test_prepare_needs_indexes(void **state)
{
    check_drift("DROP INDEX jobs_claim", "statement claim_candidates", "no such index: jobs_claim");
    check_drift("DROP INDEX export_queue_order", "statement export_pending",
                "no such index: export_queue_order");
    check_drift("DROP INDEX jobs_finished", "statement purge_attempts",
                "no such index: jobs_finished");
    check_drift("DROP INDEX jobs_scheduled", "statement schedule_due",
                "no such index: jobs_scheduled");
    check_drift("DROP INDEX bots_live", "statement bots_stale", "no such index: bots_live");
}

/* A failing migration leaves nothing behind: it ran in one transaction. */
static void test_failed_migration_rolls_back(void **state)
{
    char *path = fresh_path(), *schema;
    sqlite3 *db = raw_open(path);
    store_t *s;
    int current, latest;
    err_t e;

    raw_exec(db, "CREATE TABLE datalake_files (path TEXT)");
    sqlite3_close(db);
    assert_ok(store_open(path, &s, &e), &e);
    assert_rc(store_migrate_up(s, &e), JOBD_EDB, &e);
    assert_contains(e.msg, "migration 1");
    assert_contains(e.msg, "table datalake_files already exists");
    assert_ok(store_schema_version(s, &current, &latest, &e), &e);
    assert_int_equal(current, 0);
    schema = schema_text(path);
    assert_null(strstr(schema, "table jobs"));
    free(schema);
    store_free(s);
    free(path);
}

static void test_open_errors(void **state)
{
    char *path = fresh_path();
    FILE *f = fopen(path, "w");
    store_t *s = NULL;
    err_t e;

    assert_rc(store_open("/nonexistent-jobd-dir/x.db", &s, &e), JOBD_EDBDOWN, &e);
    assert_contains(e.msg, "cannot open database /nonexistent-jobd-dir/x.db");
    assert_rc(store_open("postgresql://u:secret@h/db", &s, &e), JOBD_EDBDOWN, &e);
    assert_null(strstr(e.msg, "secret"));

    fputs("this is not a database, but it is long enough to look like a header of one", f);
    fclose(f);
    assert_rc(store_open(path, &s, &e), JOBD_EDB, &e);
    assert_contains(e.msg, "file is not a database");
    assert_null(s);
    free(path);
}

/* WAL is in the file itself, so another connection sees it. */
static void test_wal_mode(void **state)
{
    struct fixture *x = *state;
    sqlite3_stmt *st;

    assert_int_equal(sqlite3_prepare_v2(x->raw, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
}

/* A row the code cannot read is reported, naming the column, not shown. */
static void test_corrupt_row(void **state)
{
    struct fixture *x = *state;
    json_t *job, *input = json_object();
    err_t e;

    assert_ok(
        store_job_create(
            x->s,
            &(job_spec_t){.operation = "sum", .input = input, .priority = 0, .max_attempts = 3},
            &job, &e),
        &e);
    raw_exec(x->raw, "PRAGMA ignore_check_constraints = ON; UPDATE jobs SET input = '{bad'");
    assert_rc(store_job_get(x->s, json_string_value(json_object_get(job, "id")), &job, &e),
              JOBD_EDB, &e);
    assert_contains(e.msg, "column input");
    json_decref(job);
    json_decref(input);
}

/* Another process holding the write lock past the busy timeout makes the
 * database unavailable (503), not a generic failure. */
static void test_busy_is_unavailable(void **state)
{
    struct fixture *x = *state;
    json_t *job = NULL, *input = json_object();
    err_t e;

    raw_exec(x->raw, "BEGIN IMMEDIATE");
    assert_rc(
        store_job_create(
            x->s,
            &(job_spec_t){.operation = "sum", .input = input, .priority = 0, .max_attempts = 3},
            &job, &e),
        JOBD_EDBDOWN, &e);
    assert_contains(e.msg, "locked");
    assert_null(job);
    raw_exec(x->raw, "ROLLBACK");
    /* The store recovers once the lock is gone. */
    assert_ok(
        store_job_create(
            x->s,
            &(job_spec_t){.operation = "sum", .input = input, .priority = 0, .max_attempts = 3},
            &job, &e),
        &e);
    json_decref(job);
    json_decref(input);
}

/* The WAL is copied back into the database while jobd runs, not only when
 * it closes: a regression test for a checkpointer whose own connection had
 * never read the database, so that every checkpoint it ran was a no-op and
 * the log grew without bound. */
static void test_checkpoint_keeps_up(void **state)
{
    struct fixture *x = *state;
    enum { BATCH = 100, BATCHES = 30, PAD = 3000 };
    char *pad = malloc(PAD + 1);
    json_t *input, *jobs;
    job_spec_t specs[BATCH];
    struct stat st = {0};
    err_t e;

    memset(pad, 'x', PAD);
    pad[PAD] = '\0';
    input = json_pack("{ss}", "pad", pad);
    for (int i = 0; i < BATCH; i++)
        specs[i] = (job_spec_t){.operation = "sum", .input = input, .max_attempts = 3};
    /* About 9 MB of jobs: several checkpoints' worth of log. */
    for (int b = 0; b < BATCHES; b++) {
        assert_ok(store_job_create_many(x->s, specs, BATCH, false, &jobs, &e), &e);
        json_decref(jobs);
    }
    for (int waited = 0; waited < 5000; waited += 50) {
        assert_int_equal(stat(x->path, &st), 0);
        if (st.st_size >= 4 << 20)
            break;
        usleep(50 * 1000);
    }
    if (st.st_size < 4 << 20)
        fail_msg("%s is %lld bytes after 9 MB of jobs: the WAL was not checkpointed", x->path,
                 (long long)st.st_size);
    json_decref(input);
    free(pad);
}

/* A reply means "on the disk" only while jobd can fsync the WAL it writes to
 * (store_sqlite.c, "durability").  Once it cannot (here the file was deleted
 * behind its back, so an fsync proves nothing) every call fails with the
 * cause, reads too, instead of answering as if durable. */
static void test_lost_wal_refuses_calls(void **state)
{
    struct fixture *x = *state;
    json_t *job = NULL, *got = NULL, *input = json_object();
    job_spec_t spec = {.operation = "sum", .input = input, .max_attempts = 3};
    char wal[1100], id[64];
    err_t e;

    assert_ok(store_job_create(x->s, &spec, &job, &e), &e);
    snprintf(id, sizeof id, "%s", json_string_value(json_object_get(job, "id")));
    json_decref(job);
    job = NULL;
    snprintf(wal, sizeof wal, "%s-wal", x->path);
    assert_int_equal(unlink(wal), 0);

    assert_rc(store_job_create(x->s, &spec, &job, &e), JOBD_EDBDOWN, &e);
    assert_contains(e.msg, "removed");
    assert_null(job);
    assert_rc(store_job_get(x->s, id, &got, &e), JOBD_EDBDOWN, &e);
    assert_contains(e.msg, "until jobd is restarted");
    assert_null(got);
    json_decref(input);
}

/* The group commit's fsyncs, as /stats shows them. */
static int64_t fsyncs(store_t *s)
{
    json_t *stats;
    int64_t n;
    err_t e;
    assert_ok(store_stats(s, &stats, &e), &e);
    n = json_integer_value(json_object_get(json_object_get(stats, "sqlite"), "fsyncs"));
    json_decref(stats);
    return n;
}

/* An fsync is paid by a group of calls that changed something, not by one
 * that changed nothing: a claim that finds no job, a sweep with nothing due
 * (a regression test: once jobd fsynced the WAL itself, every empty group
 * paid one, and long-poll claims make many).  Reads pay none either. */
static void test_fsync_only_for_changes(void **state)
{
    struct fixture *x = *state;
    json_t *ops = json_pack("[s]", "sum"), *bot, *jobs, *job, *input = json_object();
    const char *names[] = {"sum"};
    char bot_id[64];
    int64_t before;
    int n;
    err_t e;

    assert_ok(store_bot_register(x->s, "bot-1", ops, &bot, &e), &e);
    snprintf(bot_id, sizeof bot_id, "%s", json_string_value(json_object_get(bot, "id")));
    json_decref(bot);
    before = fsyncs(x->s);
    assert_true(before >= 1);
    for (int i = 0; i < 20; i++) {
        assert_ok(store_job_claim(x->s, bot_id, names, 1, 1, 30000, false, &jobs, &e), &e);
        assert_int_equal(json_array_size(jobs), 0);
        json_decref(jobs);
        assert_ok(store_lease_expire(x->s, clock_now_ms(), &n, &e), &e);
        assert_rc(store_job_get(x->s, "no-such-job", &job, &e), JOBD_ENOTFOUND, &e);
    }
    assert_int_equal(fsyncs(x->s), before);
    assert_ok(store_job_create(x->s,
                               &(job_spec_t){.operation = "sum", .input = input, .max_attempts = 3},
                               &job, &e),
              &e);
    json_decref(job);
    assert_int_equal(fsyncs(x->s), before + 1);
    json_decref(input);
    json_decref(ops);
}

/* How many temporary b-trees (OpenEphemeral) `sql` builds when it runs,
 * by its EXPLAIN listing on the raw connection. */
static int ephemeral_tables(sqlite3 *db, const char *sql)
{
    char *explain = sqlite3_mprintf("EXPLAIN %s", sql);
    sqlite3_stmt *st;
    int n = 0;

    if (sqlite3_prepare_v2(db, explain, -1, &st, NULL) != SQLITE_OK)
        fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    while (sqlite3_step(st) == SQLITE_ROW)
        n += strcmp((const char *)sqlite3_column_text(st, 1), "OpenEphemeral") == 0;
    sqlite3_finalize(st);
    sqlite3_free(explain);
    return n;
}

/* Migration 0005's regression test: SQLite builds a temporary b-tree for an
 * IN list of more than two values each time a CHECK or a partial index's
 * condition runs, which cost every job about ten of them.  Writing every
 * table's checked columns must build none. */
static void test_checks_build_no_temporary_tables(void **state)
{
    struct fixture *x = *state;
    const char *writes[] = {
        "INSERT INTO jobs (id, operation, input, status, created_at, finished_at)"
        " VALUES ('j', 'sum', '{}', ?1, 0, ?2)",
        "UPDATE jobs SET status = ?1, finished_at = ?2, lease = ?3, lease_expires_at = ?4"
        " WHERE id = ?5",
        "INSERT INTO attempts (job_id, attempt, lease, bot_id, bot_name, started_at, outcome)"
        " VALUES ('j', 1, 'l', 'b', 'b', 0, ?1)",
        "UPDATE attempts SET outcome = ?1 WHERE lease = ?2",
        "INSERT INTO bots (id, name, operations, state, registered_at, last_seen_at)"
        " VALUES ('b', 'b', '[]', ?1, 0, 0)",
        "UPDATE bots SET state = ?1, last_seen_at = ?2, jobs_succeeded = jobs_succeeded + 1"
        " WHERE id = ?3",
        "INSERT INTO job_events (job_id, at, action, reason) VALUES ('j', 0, ?1, '')",
        "INSERT INTO export_queue (job_id, finished_at) VALUES ('j', 0)",
    };

    for (size_t i = 0; i < sizeof writes / sizeof writes[0]; i++)
        if (ephemeral_tables(x->raw, writes[i]) != 0)
            fail_msg("builds a temporary b-tree each time it runs: %s", writes[i]);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_up_down_up_identical),
        cmocka_unit_test(test_prepare_refuses_old_schema),
        T(test_newer_schema_refused),
        cmocka_unit_test(test_prepare_names_drifted_statement),
        cmocka_unit_test(test_prepare_needs_indexes),
        cmocka_unit_test(test_failed_migration_rolls_back),
        cmocka_unit_test(test_open_errors),
        T(test_wal_mode),
        T(test_corrupt_row),
        T(test_busy_is_unavailable),
        T(test_checkpoint_keeps_up),
        T(test_lost_wal_refuses_calls),
        T(test_fsync_only_for_changes),
        T(test_checks_build_no_temporary_tables),
    };
#undef T
    return cmocka_run_group_tests_name("store sqlite", tests, NULL, NULL);
}
