/*
 * sqliteloop.c - the bare-SQLite baseline: one connection on a WAL database
 * with synchronous=FULL (what jobd promises), claiming and completing jobs
 * with no server in between.  "single" commits each claim and each complete
 * on its own (two fsyncs a job); "batched" claims --batch jobs (64) in one
 * transaction and completes them in one: what group commit can reach.
 */
#include "bench.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static bool exec_ok(sqlite3 *db, const char *sql)
{
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) == SQLITE_OK)
        return true;
    bench_say("sqliteloop: %.80s: %s", sql, err ? err : "?");
    sqlite3_free(err);
    return false;
}

static sqlite3 *open_db(const char *path)
{
    sqlite3 *db = NULL;
    char wal[1100], shm[1100];

    snprintf(wal, sizeof wal, "%s-wal", path);
    snprintf(shm, sizeof shm, "%s-shm", path);
    unlink(path);
    unlink(wal);
    unlink(shm);
    if (sqlite3_open(path, &db) != SQLITE_OK) {
        bench_say("sqliteloop: cannot open %s", path);
        sqlite3_close(db);
        return NULL;
    }
    if (!exec_ok(db, "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;"
                     "CREATE TABLE jobs (id INTEGER PRIMARY KEY, status INTEGER NOT NULL,"
                     " priority INTEGER NOT NULL DEFAULT 0, a INTEGER, b INTEGER, result INTEGER);"
                     "CREATE INDEX jobs_queue ON jobs (priority DESC, id) WHERE status = 0;")) {
        sqlite3_close(db);
        return NULL;
    }
    return db;
}

static bool load(sqlite3 *db, long n)
{
    char sql[256];
    snprintf(sql, sizeof sql,
             "BEGIN; WITH RECURSIVE g(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM g WHERE i < %ld)"
             " INSERT INTO jobs (status, a, b) SELECT 0, i, 2 * i FROM g; COMMIT;",
             n);
    return exec_ok(db, sql);
}

static void run_variant(const bench_opts_t *o, const char *row, int batch)
{
    sqlite3 *db = open_db(o->path);
    sqlite3_stmt *claim = NULL, *done_st = NULL;
    long long ids[10000], sums[10000];
    long done = 0;
    int64_t t0, deadline;
    double s;

    if (!db || !load(db, o->jobs))
        goto out;
    if (sqlite3_prepare_v2(
            db,
            "UPDATE jobs SET status = 1 WHERE id IN (SELECT id FROM jobs"
            " WHERE status = 0 ORDER BY priority DESC, id LIMIT ?) RETURNING id, a, b",
            -1, &claim, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "UPDATE jobs SET status = 2, result = ? WHERE id = ? AND status = 1",
                           -1, &done_st, NULL) != SQLITE_OK) {
        bench_say("sqliteloop: prepare: %s", sqlite3_errmsg(db));
        goto out;
    }
    t0 = bench_now_ns();
    deadline = t0 + (int64_t)(o->budget * 1e9);
    while (bench_now_ns() < deadline) {
        int n = 0;
        exec_ok(db, "BEGIN IMMEDIATE");
        sqlite3_bind_int(claim, 1, batch);
        while (sqlite3_step(claim) == SQLITE_ROW && n < 10000) {
            ids[n] = sqlite3_column_int64(claim, 0);
            sums[n] = sqlite3_column_int64(claim, 1) + sqlite3_column_int64(claim, 2);
            n++;
        }
        sqlite3_reset(claim);
        exec_ok(db, "COMMIT");
        if (n == 0)
            break;
        exec_ok(db, "BEGIN IMMEDIATE");
        for (int i = 0; i < n; i++) {
            sqlite3_bind_int64(done_st, 1, sums[i]);
            sqlite3_bind_int64(done_st, 2, ids[i]);
            if (sqlite3_step(done_st) == SQLITE_DONE)
                done += sqlite3_changes(db);
            sqlite3_reset(done_st);
        }
        exec_ok(db, "COMMIT");
    }
    s = (double)(bench_now_ns() - t0) / 1e9;
    bench_emit(o, row, "rate", (double)done / s,
               "1 connection, WAL, synchronous=FULL, %d claim%s per commit then %d complete%s per "
               "commit; %ld jobs in %.1f s",
               batch, batch > 1 ? "s" : "", batch, batch > 1 ? "s" : "", done, s);
out:
    sqlite3_finalize(claim);
    sqlite3_finalize(done_st);
    sqlite3_close(db);
}

int sqliteloop_run(const bench_opts_t *o)
{
    if (strcmp(o->workload, "e2e") != 0) {
        bench_say("sqliteloop has only the e2e workload");
        return 2;
    }
    if (!o->path[0]) {
        bench_say("sqliteloop needs --path FILE");
        return 2;
    }
    if (o->batch > 10000) {
        bench_say("sqliteloop: --batch is at most 10000");
        return 2;
    }
    if (!o->variant || strcmp(o->variant, "single") == 0)
        run_variant(o, "e2e-single", 1);
    if (!o->variant || strcmp(o->variant, "batched") == 0)
        run_variant(o, "e2e-batched", o->batch);
    return 0;
}
