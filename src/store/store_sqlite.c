/*
 * store_sqlite.c - the SQLite backend of store.h.  One connection in WAL
 * mode, guarded by a mutex; every statement is prepared once by
 * store_prepare, so a statement that no longer fits the schema stops jobd at
 * start-up instead of failing one request at a time.  Every SQLite error
 * leaves here as a JOBD_E* code carrying SQLite's own message.
 */
#include "store_int.h"
#include "backend.h"
#include "clock.h"
#include "id.h"
#include "log.h"
#include "migrations.h"
#include "park.h"
#include "record.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* How long a call waits for another process's write lock before it gives
 * up with JOBD_EDBDOWN. */
#define BUSY_TIMEOUT_MS 5000

/* How long a group's caller waits for the next group to commit, so that one
 * fsync covers both (tx_write): a group's work takes well under this. */
#define HEIR_WAIT_NS 2000000L

/* Random bytes in a lease token (shown as twice as many hex digits). */
#define LEASE_BYTES 16

/* The jobs one retention purge deletes: finished before ?1, not waiting for
 * the datalake (in export_queue), oldest finish first, at most ?2, through
 * the jobs_finished index.  The walk stops at the finish time of the oldest
 * job still queued: when the export lags, it would otherwise step over every
 * unexported job on each purge.  (Unexported jobs are never deleted; the
 * foreign key of export_queue would refuse to anyway.)  The order is total (id
 * is unique), so the three statements of one purge, in one transaction, name
 * the same jobs: the attempts and events first, then the jobs they
 * reference. */
#define PURGE_IDS                                                                                  \
    "SELECT id FROM jobs INDEXED BY jobs_finished"                                                 \
    " WHERE (status = 'succeeded' OR status = 'failed' OR status = 'cancelled')"                   \
    " AND finished_at < ?1"                                                                        \
    " AND finished_at <= coalesce((SELECT min(finished_at) FROM export_queue), ?1)"                \
    " AND NOT EXISTS (SELECT 1 FROM export_queue WHERE job_id = jobs.id)"                          \
    " ORDER BY finished_at, id LIMIT ?2"

/*
 * Every statement the backend runs: X(name, sql).  In the SQL, {job}, {bot},
 * {attempt} and {event} stand for the column lists of record.h, so that what a
 * SELECT reads is exactly what the API shows.  The name is what an error
 * names, e.g. "statement job_get does not fit the database schema".
 *
 * Checklist: claim_candidates, queue_ahead, schedule_due, bots_stale,
 * export_pending, job_list_status, job_list_processing and the purge_*
 * statements (PURGE_IDS) name their indexes (INDEXED BY) so that their cost
 * cannot silently grow with finished jobs; the other statements that read
 * by status, bot or lease rely on the indexes of migrations/sqlite too.
 * Change them together.  PURGE_IDS and bots_stale repeat their partial
 * index's condition word for word, as a chain of ORs, not an IN list
 * (migration 0005 says why), and job_list_status repeats jobs_status's
 * (0009).
 *
 * A job is in export_queue exactly while it is finished and not yet in the
 * datalake: every statement that finishes a job (job_finish, job_cancel) is
 * followed by export_enqueue; a retry and the export's mark are
 * export_dequeue (migration 0004 says why this is not a trigger).
 */
#define STATEMENTS(X)                                                                              \
    X(begin_read, "BEGIN")                                                                         \
    X(begin_write, "BEGIN IMMEDIATE")                                                              \
    X(commit, "COMMIT")                                                                            \
    X(rollback, "ROLLBACK")                                                                        \
    X(savepoint, "SAVEPOINT call")                                                                 \
    X(savepoint_release, "RELEASE call")                                                           \
    X(savepoint_undo, "ROLLBACK TO call")                                                          \
    X(ping, "SELECT max(version) FROM schema_version")                                             \
    X(job_insert,                                                                                  \
      "INSERT INTO jobs (id, operation, input, priority, status, attempts, created_at,"            \
      " max_attempts, run_at, idempotency_key)"                                                    \
      " VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6, ?7, nullif(?8, 0), ?9)"                                 \
      " ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING")               \
    X(job_get, "SELECT {job} FROM jobs WHERE id = ?1")                                             \
    X(job_summary, "SELECT {summary} FROM jobs WHERE id = ?1")                                     \
    X(job_by_key, "SELECT {job} FROM jobs WHERE idempotency_key = ?1")                             \
    X(job_history, "SELECT {attempt} FROM attempts WHERE job_id = ?1 ORDER BY attempt")            \
    X(job_events, "SELECT {event} FROM job_events WHERE job_id = ?1 ORDER BY seq")                 \
    X(event_insert, "INSERT INTO job_events (job_id, at, action, reason) VALUES (?1, ?2, ?3, ?4)") \
    X(job_order, "SELECT operation, priority, created_at, failures, max_attempts,"                 \
                 " lease_expires_at FROM jobs WHERE id = ?1")                                      \
    X(live_bots, "SELECT count(DISTINCT bots.id) FROM bots, json_each(bots.operations)"            \
                 " WHERE bots.state IN ('ready', 'processing') AND json_each.value = ?1")          \
    X(job_list, "SELECT {job} FROM jobs WHERE id > ?1 AND (?2 IS NULL OR operation = ?2)"          \
                " ORDER BY id LIMIT ?3")                                                           \
    X(job_list_status, "SELECT {job} FROM jobs INDEXED BY jobs_status"                             \
                       " WHERE status = ?4 AND status <> 'processing' AND id > ?1"                 \
                       " AND (?2 IS NULL OR operation = ?2) ORDER BY id LIMIT ?3")                 \
    X(job_list_processing, "SELECT {job} FROM jobs INDEXED BY jobs_processing_bot"                 \
                           " WHERE status = 'processing' AND id > ?1"                              \
                           " AND (?2 IS NULL OR operation = ?2) ORDER BY id LIMIT ?3")             \
    X(job_state, "SELECT status, lease, bot_id FROM jobs WHERE id = ?1")                           \
    X(claim_candidates, "SELECT id, priority, created_at FROM jobs INDEXED BY jobs_claim"          \
                        " WHERE status = 'pending' AND operation = ?1"                             \
                        " ORDER BY priority DESC, created_at, id LIMIT ?2")                        \
    X(queue_ahead, "SELECT count(*) FROM jobs INDEXED BY jobs_claim"                               \
                   " WHERE status = 'pending' AND operation = ?1 AND (priority > ?2"               \
                   " OR (priority = ?2 AND (created_at < ?3 OR (created_at = ?3 AND id < ?4))))")  \
    X(job_claim,                                                                                   \
      "UPDATE jobs SET status = 'processing', attempts = attempts + 1,"                            \
      " claimed_at = ?2, bot_id = ?3, bot_name = ?4, lease = ?5, lease_expires_at = ?6,"           \
      " progress = NULL WHERE id = ?1 AND status = 'pending'")                                     \
    X(attempt_start, "INSERT INTO attempts (job_id, attempt, lease, bot_id, bot_name, started_at," \
                     " outcome) SELECT id, attempts, lease, bot_id, bot_name, claimed_at,"         \
                     " 'running' FROM jobs WHERE id = ?1")                                         \
    X(attempt_by_lease, "SELECT job_id, bot_id, outcome, ended_at, error FROM attempts"            \
                        " WHERE job_id = ?1 AND lease = ?2")                                       \
    X(attempt_end, "UPDATE attempts SET outcome = ?3, ended_at = ?4, error = ?5"                   \
                   " WHERE job_id = ?1 AND lease = ?2 AND outcome = 'running'")                    \
    X(job_finish,                                                                                  \
      "UPDATE jobs SET status = ?3, result = ?4, error = ?5, duration_ms = ?6,"                    \
      " finished_at = ?7, failures = failures + ?8, lease = NULL,"                                 \
      " lease_expires_at = NULL WHERE id = ?1 AND lease = ?2 AND status = 'processing'"            \
      " AND bot_id = ?9")                                                                          \
    X(job_reschedule, "UPDATE jobs SET status = 'scheduled', run_at = ?3, error = ?4,"             \
                      " duration_ms = ?5, failures = failures + 1, claimed_at = NULL,"             \
                      " bot_id = NULL, bot_name = NULL, lease = NULL, lease_expires_at = NULL,"    \
                      " progress = NULL WHERE id = ?1 AND lease = ?2 AND status = 'processing'")   \
    X(job_takeback, "UPDATE jobs SET status = 'pending', claimed_at = NULL, bot_id = NULL,"        \
                    " bot_name = NULL, lease = NULL, lease_expires_at = NULL, progress = NULL,"    \
                    " lost = lost + 1 WHERE id = ?1 AND status = 'processing'")                    \
    X(job_cancel, "UPDATE jobs SET status = 'cancelled', finished_at = ?2, error = ?3,"            \
                  " lease = NULL, lease_expires_at = NULL"                                         \
                  " WHERE id = ?1 AND status IN ('pending', 'scheduled', 'processing')")           \
    X(job_retry, "UPDATE jobs SET status = 'pending', failures = 0, run_at = NULL,"                \
                 " finished_at = NULL, result = NULL, error = NULL, duration_ms = NULL,"           \
                 " claimed_at = NULL, bot_id = NULL, bot_name = NULL, progress = NULL"             \
                 " WHERE id = ?1 AND status IN ('failed', 'cancelled')")                           \
    X(schedule_due, "UPDATE jobs INDEXED BY jobs_scheduled SET status = 'pending'"                 \
                    " WHERE status = 'scheduled' AND run_at <= ?1")                                \
    X(bot_done, "UPDATE bots SET jobs_succeeded = jobs_succeeded + ?2,"                            \
                " jobs_failed = jobs_failed + ?3 WHERE id = ?1")                                   \
    X(bot_lost, "UPDATE bots SET jobs_lost = jobs_lost + 1"                                        \
                " WHERE id = (SELECT bot_id FROM attempts WHERE job_id = ?1 AND lease = ?2)")      \
    X(lease_expired, "SELECT id, lease, lease_expires_at FROM jobs"                                \
                     " WHERE status = 'processing' AND lease_expires_at < ?1")                     \
    X(lease_renew, "UPDATE jobs SET lease_expires_at = ?2"                                         \
                   " WHERE bot_id = ?1 AND status = 'processing'")                                 \
    X(lease_renew_one, "UPDATE jobs SET lease_expires_at = ?3, progress = coalesce(?4, progress)"  \
                       " WHERE id = ?1 AND bot_id = ?2 AND status = 'processing'")                 \
    X(my_attempt, "SELECT outcome FROM attempts WHERE job_id = ?1 AND bot_id = ?2"                 \
                  " ORDER BY attempt DESC LIMIT 1")                                                \
    X(bot_jobs, "SELECT id, lease FROM jobs WHERE bot_id = ?1 AND status = 'processing'"           \
                " ORDER BY id")                                                                    \
    X(bots_stale, "SELECT id, name, last_seen_at, state FROM bots INDEXED BY bots_live"            \
                  " WHERE (state = 'ready' OR state = 'processing' OR state = 'unhealthy')"        \
                  " AND last_seen_at < ?1")                                                        \
    X(bot_set_state, "UPDATE bots SET state = ?2 WHERE id = ?1")                                   \
    X(purge_attempts, "DELETE FROM attempts WHERE job_id IN (" PURGE_IDS ")")                      \
    X(purge_events, "DELETE FROM job_events WHERE job_id IN (" PURGE_IDS ")")                      \
    X(purge_jobs, "DELETE FROM jobs WHERE id IN (" PURGE_IDS ")")                                  \
    X(stats_jobs, "SELECT operation, status, count(*) FROM jobs GROUP BY operation, status")       \
    X(stats_bots, "SELECT state, count(*) FROM bots GROUP BY state")                               \
    X(bot_insert, "INSERT INTO bots (id, name, operations, state, registered_at, last_seen_at)"    \
                  " VALUES (?1, ?2, ?3, 'ready', ?4, ?4)")                                         \
    X(bot_name, "SELECT name FROM bots WHERE id = ?1")                                             \
    X(bot_seen, "UPDATE bots SET last_seen_at = ?2 WHERE id = ?1 AND last_seen_at < ?2 - 1000")    \
    X(bot_heartbeat, "UPDATE bots SET state = ?2, last_seen_at = ?3 WHERE id = ?1")                \
    X(bot_get, "SELECT {bot} FROM bots WHERE id = ?1")                                             \
    X(bot_list, "SELECT {bot} FROM bots ORDER BY registered_at, id")                               \
    X(export_pending, "SELECT id, finished_at, {job_json} FROM jobs WHERE id IN (SELECT job_id"    \
                      "  FROM export_queue"                                                        \
                      "  INDEXED BY export_queue_order ORDER BY finished_at, job_id LIMIT ?1)"     \
                      " ORDER BY finished_at, id")                                                 \
    X(export_enqueue, "INSERT INTO export_queue (job_id, finished_at) VALUES (?1, ?2)")            \
    X(export_dequeue, "DELETE FROM export_queue WHERE job_id = ?1")                                \
    X(export_file_set, "INSERT INTO datalake_files (path, size) VALUES (?1, ?2)"                   \
                       " ON CONFLICT (path) DO UPDATE SET size = excluded.size")                   \
    X(export_files, "SELECT path, size FROM datalake_files ORDER BY path")

enum stmt_id {
#define ST_ENUM(name, sql) ST_##name,
    STATEMENTS(ST_ENUM)
#undef ST_ENUM
        ST_COUNT
};

static const struct {
    const char *name;
    const char *sql;
} stmts[] = {
#define ST_DEF(name, sql) {#name, sql},
    STATEMENTS(ST_DEF)
#undef ST_DEF
};

/* A write call waiting for the group commit (see tx_write). */
typedef struct pending_write pending_write_t;

typedef struct sq {
    store_t base; /* first: store.c sees only this */
    sqlite3 *db;
    pthread_mutex_t mu; /* one call at a time on db and st[] */
    bool prepared;      /* st[] holds every statement, checked against the schema */
    /* While a batch of reports runs (do_report_many), the bot's counters
     * add up here and are written once, not once per report. */
    bool batch_counts;
    int64_t batch_ok, batch_failed;
    sqlite3_stmt *st[ST_COUNT];

    /* Group commit: write calls queue here; one of them at a time leads,
     * running everything queued in one transaction. */
    pthread_mutex_t group_mu;
    pending_write_t *queue, **queue_tail;
    bool leading;
    uint64_t groups_ended;      /* groups run so far */
    pthread_cond_t group_ended; /* groups_ended advanced */

    /* Checkpoints run here, off the commit path (see checkpointer()). */
    sqlite3 *ckpt_db;
    pthread_t ckpt_thread;
    pthread_mutex_t ckpt_mu;
    pthread_cond_t ckpt_cond;
    bool ckpt_wanted, ckpt_stop;
    atomic_bool ckpt_busy;  /* a checkpoint is wanted or running: commits need not ask */
    atomic_int ckpt_frames; /* WAL frames the last checkpoint copied back */

    /* Durability with STORE_SYNC_FULL (see wal_sync): the connection commits
     * with synchronous=NORMAL, and each caller fsyncs the WAL itself after
     * the commit, outside s->mu, so that the next group runs while this
     * one's fsync is in flight. */
    atomic_bool pipelined;          /* STORE_SYNC_FULL, done by wal_sync */
    int wal_fd;                     /* the WAL file, opened by us; -1 if none */
    char *wal_path;                 /* for messages (sqlite3_mprintf) */
    atomic_uint_fast64_t committed; /* commits so far; advanced under s->mu */
    atomic_uint_fast64_t synced;    /* commits known to be on the disk */
    atomic_uint_fast64_t fsyncs;    /* fdatasyncs done by wal_sync */
    pthread_mutex_t sync_mu;        /* one fsync at a time */
    atomic_bool sync_broken;        /* an fsync failed: every later call fails */
    char sync_cause[512];           /* why; written once, before sync_broken */
} sq_t;

#define LATEST (store_sqlite_migrations_count)

/* ---- errors -------------------------------------------------------------- */

/* Translate SQLite result code rc, raised while doing `what`, to JOBD_EDBDOWN
 * when the database cannot be used at all (locked past the busy timeout,
 * unreadable, full) or JOBD_EDB when it refused this statement. */
static int dberr(sq_t *s, int rc, err_t *e, const char *what)
{
    int code = JOBD_EDB;
    const char *msg = sqlite3_errmsg(s->db);

    switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_CANTOPEN:
    case SQLITE_IOERR:
    case SQLITE_FULL:
        code = JOBD_EDBDOWN;
        break;
    }
    /* errmsg describes the connection's latest failure, which is rc unless
     * a later call (a reset, a rollback) replaced it. */
    if ((sqlite3_extended_errcode(s->db) & 0xff) != (rc & 0xff))
        msg = sqlite3_errstr(rc);
    return err_set(e, code, "%s: %s", what, msg);
}

static const char *str(const char *v)
{
    return v ? v : "";
}

/* ---- statements ---------------------------------------------------------- */

/* Reset statement id and bind its parameters ?1, ?2, ... from the variadic
 * arguments, one per character of types: 't' const char * (NULL binds SQL
 * NULL), 'i' int64_t, 'j' const json_t * stored as JSON text (NULL binds
 * SQL NULL). */
static int vbind(sq_t *s, enum stmt_id id, err_t *e, const char *types, va_list ap)
{
    sqlite3_stmt *st = s->st[id];

    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    for (int i = 0; types[i]; i++) {
        int rc = SQLITE_MISUSE;
        const char *text;
        const json_t *json;
        char *dump;

        switch (types[i]) {
        case 't':
            text = va_arg(ap, const char *);
            rc = text ? sqlite3_bind_text(st, i + 1, text, -1, SQLITE_TRANSIENT)
                      : sqlite3_bind_null(st, i + 1);
            break;
        case 'i':
            rc = sqlite3_bind_int64(st, i + 1, va_arg(ap, int64_t));
            break;
        case 'j':
            json = va_arg(ap, const json_t *);
            if (!json) {
                rc = sqlite3_bind_null(st, i + 1);
                break;
            }
            dump = json_dumps(json, JSON_ENCODE_ANY | JSON_COMPACT);
            if (!dump)
                return err_set(e, JOBD_EINTERNAL, "%s: parameter %d cannot be encoded as JSON",
                               stmts[id].name, i + 1);
            rc = sqlite3_bind_text(st, i + 1, dump, -1, free);
            break;
        }
        if (rc != SQLITE_OK)
            return dberr(s, rc, e, stmts[id].name);
    }
    return JOBD_OK;
}

/* Bind statement id (see vbind) for reading its rows with step(). */
static int query(sq_t *s, enum stmt_id id, err_t *e, const char *types, ...)
{
    va_list ap;
    int rc;

    va_start(ap, types);
    rc = vbind(s, id, e, types, ap);
    va_end(ap);
    return rc;
}

/* Step statement id: 1 with a row to read, 0 when done (the statement is
 * then reset), or a JOBD_E* code. */
static int step(sq_t *s, enum stmt_id id, err_t *e)
{
    sqlite3_stmt *st = s->st[id];
    int rc = sqlite3_step(st);

    if (rc == SQLITE_ROW)
        return 1;
    if (rc == SQLITE_DONE) {
        sqlite3_reset(st);
        return 0;
    }
    rc = dberr(s, rc, e, stmts[id].name);
    sqlite3_reset(st);
    return rc;
}

/* Bind (see vbind) and run statement id to its end.  Returns how many rows
 * it changed, or a JOBD_E* code. */
static int run(sq_t *s, enum stmt_id id, err_t *e, const char *types, ...)
{
    va_list ap;
    int rc;

    va_start(ap, types);
    rc = vbind(s, id, e, types, ap);
    va_end(ap);
    while (rc >= 0 && (rc = step(s, id, e)) == 1)
        ;
    return rc < 0 ? rc : sqlite3_changes(s->db);
}

/* Text of column i of the current row of id, copied into buf. */
static void col_text(sq_t *s, enum stmt_id id, int i, char *buf, size_t len)
{
    const unsigned char *t = sqlite3_column_text(s->st[id], i);
    snprintf(buf, len, "%s", t ? (const char *)t : "");
}

/* ---- rows as records ----------------------------------------------------- */

/* The current row of id, whose columns are those of kind k, as a new JSON
 * object.  Each column goes through record_value() so that every backend
 * shows a value the same way. */
static int row_record(sq_t *s, enum stmt_id id, enum rec_kind k, json_t **out, err_t *e)
{
    size_t n;
    const record_field_t *f = backend_fields(k, &n);
    json_t *obj = json_object();

    for (size_t i = 0; i < n; i++) {
        sqlite3_stmt *st = s->st[id];
        const char *text = NULL;
        json_t *v;

        /* An integer is read as one, sparing it a trip to text and back. */
        if (sqlite3_column_type(st, (int)i) == SQLITE_INTEGER) {
            v = record_value_int(f[i].type, (long long)sqlite3_column_int64(st, (int)i));
            text = "an integer";
        } else {
            text = (const char *)sqlite3_column_text(st, (int)i);
            v = record_value(f[i].type, text);
        }
        if (!v) {
            json_decref(obj);
            return err_set(e, JOBD_EDB, "%s: column %s holds a value of the wrong type: %.100s",
                           stmts[id].name, f[i].name, text);
        }
        json_object_set_new_nocheck(obj, f[i].name, v); /* names of record.h: ASCII */
    }
    *out = obj;
    return JOBD_OK;
}

/* Run statement id, bound from the variadic arguments (see vbind), and read
 * its rows as records of kind k: with `one` the first row as an object,
 * otherwise every row into an array.  Returns how many rows it read or a
 * JOBD_E* code; *out is written unless `one` found no row. */
static int fetch(sq_t *s, enum stmt_id id, enum rec_kind k, bool one, json_t **out, err_t *e,
                 const char *types, ...)
{
    json_t *rows = json_array(), *row = NULL;
    size_t n;
    va_list ap;
    int rc;

    va_start(ap, types);
    rc = vbind(s, id, e, types, ap);
    va_end(ap);
    while (rc >= 0 && (rc = step(s, id, e)) == 1 && (rc = row_record(s, id, k, &row, e)) == 0) {
        json_array_append_new(rows, row);
        if (one)
            break;
    }
    sqlite3_reset(s->st[id]);
    if (rc < 0) {
        json_decref(rows);
        return rc;
    }
    n = json_array_size(rows);
    if (!one)
        *out = rows;
    else if (n)
        *out = json_incref(json_array_get(rows, 0));
    if (one)
        json_decref(rows);
    return (int)n;
}

static int get_job(sq_t *s, const char *id, json_t **job, err_t *e)
{
    int rc = fetch(s, ST_job_get, REC_KIND_JOB, true, job, e, "t", id);
    if (rc == 0)
        return err_set(e, JOBD_ENOTFOUND, "no job with id %s", str(id));
    return rc < 0 ? rc : JOBD_OK;
}

/* The jobs bot_id holds: an array of ids, or with `leases` of [id, lease]
 * pairs.  OUT: *out. */
static int bot_jobs(sq_t *s, const char *bot_id, bool leases, json_t **out, err_t *e)
{
    sqlite3_stmt *st = s->st[ST_bot_jobs];
    json_t *jobs = json_array();
    int rc = query(s, ST_bot_jobs, e, "t", bot_id);

    while (rc >= 0 && (rc = step(s, ST_bot_jobs, e)) == 1) {
        const char *id = (const char *)sqlite3_column_text(st, 0);
        json_array_append_new(jobs, leases ? json_pack("[ss]", id, sqlite3_column_text(st, 1))
                                           : json_string(id));
    }
    if (rc < 0) {
        json_decref(jobs);
        return rc;
    }
    *out = jobs;
    return JOBD_OK;
}

/* Add "jobs", the ids of the jobs it holds, to a bot object. */
static int add_bot_jobs(sq_t *s, json_t *bot, err_t *e)
{
    json_t *jobs;
    int rc = bot_jobs(s, json_string_value(json_object_get(bot, "id")), false, &jobs, e);

    if (rc == JOBD_OK)
        json_object_set_new(bot, "jobs", jobs);
    return rc;
}

static int get_bot(sq_t *s, const char *id, json_t **bot, err_t *e)
{
    json_t *b;
    int rc = fetch(s, ST_bot_get, REC_KIND_BOT, true, &b, e, "t", id);

    if (rc == 0)
        return err_set(e, JOBD_EUNKNOWNBOT, "no bot with id %s: register again", str(id));
    if (rc < 0)
        return rc;
    rc = add_bot_jobs(s, b, e);
    if (rc < 0) {
        json_decref(b);
        return rc;
    }
    *bot = b;
    return JOBD_OK;
}

/* ---- transactions -------------------------------------------------------- */

typedef int (*tx_fn)(sq_t *s, void *arg, err_t *e);

/* Reset every statement still holding a row, so that COMMIT or ROLLBACK
 * ends a transaction with no statement in progress. */
static void reset_all(sq_t *s)
{
    for (int i = 0; i < ST_COUNT; i++)
        if (s->st[i] && sqlite3_stmt_busy(s->st[i]))
            sqlite3_reset(s->st[i]);
}

/* ---- durability ------------------------------------------------------------
 *
 * With synchronous=FULL, SQLite fsyncs the WAL inside COMMIT, holding the
 * connection: the next group of calls cannot even start until the disk has
 * answered, so the disk's latency and the calls' own work add up.  Instead
 * the connection commits with synchronous=NORMAL (the commit is written to
 * the WAL, not yet fsynced), each commit takes a number, and a caller whose
 * commit is number n calls wal_sync(n) after releasing the connection: it
 * fsyncs the WAL unless a fsync that started after commit n has already
 * finished.  The calls are answered only then, so a reply still means "on
 * the disk"; meanwhile the next group runs, and one fsync covers every
 * commit written before it started.
 *
 * The WAL is appended to in order, so a crash keeps a prefix of the commits;
 * SQLite's own header syncs (NORMAL still fsyncs the WAL header when the log
 * starts over, and the WAL before each checkpoint) keep it consistent.  Reads
 * wait the same way for the commits they saw (tx_read), so nothing is shown
 * that a crash could take back.  A failed fsync may have dropped the pages
 * it was writing, so it is not retried: the store refuses every later call,
 * with the cause, until jobd is restarted and SQLite recovers from the WAL
 * (what PostgreSQL does too). */

/* The sticky failure of an earlier fsync, if any. */
static int sync_failed(sq_t *s, err_t *e)
{
    if (!atomic_load(&s->sync_broken))
        return JOBD_OK;
    return err_set(e, JOBD_EDBDOWN,
                   "%s: changes may not be on the disk, so the store refuses every call until "
                   "jobd is restarted",
                   s->sync_cause);
}

/* Make the store refuse every call from now on; the caller holds sync_mu. */
static void sync_break(sq_t *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->sync_cause, sizeof s->sync_cause, fmt, ap);
    va_end(ap);
    atomic_store(&s->sync_broken, true);
    log_error("sqlite: %s; refusing every call until a restart", s->sync_cause);
}

/* Make commits up to number seq durable (see above).  Fails only if an
 * fsync failed, this one or an earlier one. */
static int wal_sync(sq_t *s, uint_fast64_t seq, err_t *e)
{
    int rc = JOBD_OK;
    struct stat st;

    if (!s->pipelined || seq == 0 || atomic_load(&s->synced) >= seq)
        return sync_failed(s, e);
    pthread_mutex_lock(&s->sync_mu);
    if ((rc = sync_failed(s, e)) == JOBD_OK && atomic_load(&s->synced) < seq) {
        /* Every commit numbered up to here has been written to the WAL. */
        uint_fast64_t upto = atomic_load(&s->committed);
        if (fdatasync(s->wal_fd) != 0) {
            sync_break(s, "an fsync of %s failed: %s", s->wal_path, strerror(errno));
            rc = sync_failed(s, e);
        } else if (fstat(s->wal_fd, &st) != 0 || st.st_nlink == 0) {
            /* The WAL was deleted under us (by hand: SQLite keeps it while
             * a connection is open), so this fsync proved nothing. */
            sync_break(s, "%s was removed while jobd had it open", s->wal_path);
            rc = sync_failed(s, e);
        } else {
            atomic_store(&s->synced, upto);
            atomic_fetch_add(&s->fsyncs, 1);
        }
    }
    pthread_mutex_unlock(&s->sync_mu);
    return rc;
}

/* Number a commit just made on s->db; the caller holds s->mu. */
static uint_fast64_t note_commit(sq_t *s)
{
    return atomic_fetch_add(&s->committed, 1) + 1;
}

/* Run fn(s, arg, e) in one transaction opened by statement `begin`: commit
 * if fn returns >= 0, roll back otherwise.  *seen is the number of the
 * latest commit the transaction could see (itself, if it committed). */
static int transact(sq_t *s, enum stmt_id begin, tx_fn fn, void *arg, err_t *e, uint_fast64_t *seen)
{
    int rc;

    pthread_mutex_lock(&s->mu);
    *seen = 0;
    if ((rc = sync_failed(s, e)) < 0)
        goto out_unlock;
    if (!s->prepared) {
        rc =
            err_set(e, JOBD_ESCHEMA, "the store is not prepared: store_prepare must succeed first");
        goto out_unlock;
    }
    rc = run(s, begin, e, "");
    if (rc < 0)
        goto out_unlock;
    rc = fn(s, arg, e);
    reset_all(s);
    *seen = atomic_load(&s->committed);
    if (rc >= 0) {
        rc = run(s, ST_commit, e, "");
        if (rc >= 0 && begin != ST_begin_read)
            *seen = note_commit(s);
        if (rc >= 0)
            goto out_unlock;
    }
    /* A failed statement may already have ended the transaction
     * (SQLITE_FULL, SQLITE_IOERR); roll back only if one is open. */
    if (!sqlite3_get_autocommit(s->db))
        run(s, ST_rollback, NULL, "");
out_unlock:
    pthread_mutex_unlock(&s->mu);
    return rc < 0 ? rc : JOBD_OK;
}

/* What a queued call is waiting for (pending_write.state). */
enum { WRITE_QUEUED, WRITE_LEAD, WRITE_DONE };

struct pending_write {
    tx_fn fn;
    void *arg;
    err_t err; /* the call's failure, copied to the caller's err_t */
    int rc;
    atomic_int state; /* WRITE_*: parked on until it leaves WRITE_QUEUED */
    pending_write_t *next;
};

/* A failure that ends the whole group: every call in it fails with it. */
static void fail_group(pending_write_t *batch, int rc, const err_t *err)
{
    for (pending_write_t *w = batch; w; w = w->next) {
        w->rc = rc;
        w->err = *err;
    }
}

/* Run a batch of writes in one transaction, each inside a savepoint so that
 * one call's failure undoes only that call, then commit once: one fsync for
 * the whole batch instead of one per call.  Returns the commit's number for
 * wal_sync, 0 if nothing was committed. */
static uint_fast64_t run_group(sq_t *s, pending_write_t *batch)
{
    bool single = batch->next == NULL;
    uint_fast64_t seq = 0;
    sqlite3_int64 changes;
    err_t err;
    int rc;

    pthread_mutex_lock(&s->mu);
    if ((rc = sync_failed(s, &err)) < 0) {
        fail_group(batch, rc, &err);
        goto out_unlock;
    }
    if (!s->prepared) {
        err_set(&err, JOBD_ESCHEMA, "the store is not prepared: store_prepare must succeed first");
        fail_group(batch, JOBD_ESCHEMA, &err);
        goto out_unlock;
    }
    changes = sqlite3_total_changes64(s->db);
    if ((rc = run(s, ST_begin_write, &err, "")) < 0) {
        fail_group(batch, rc, &err);
        goto out_unlock;
    }
    for (pending_write_t *w = batch; w; w = w->next) {
        if (!single && (rc = run(s, ST_savepoint, &err, "")) < 0) {
            fail_group(batch, rc, &err);
            goto out_rollback;
        }
        w->rc = w->fn(s, w->arg, &w->err);
        reset_all(s);
        if (w->rc >= 0) {
            w->rc = JOBD_OK;
            if (!single && (rc = run(s, ST_savepoint_release, &err, "")) < 0) {
                fail_group(batch, rc, &err);
                goto out_rollback;
            }
            continue;
        }
        /* Some errors (SQLITE_FULL, SQLITE_IOERR) end the transaction
         * itself, taking the earlier calls' changes with them. */
        if (sqlite3_get_autocommit(s->db)) {
            err = w->err;
            fail_group(batch, w->rc, &err);
            goto out_unlock;
        }
        /* A call alone in its group has no savepoint: undo it whole. */
        if (single)
            goto out_rollback;
        if ((rc = run(s, ST_savepoint_undo, &err, "")) < 0 ||
            (rc = run(s, ST_savepoint_release, &err, "")) < 0) {
            fail_group(batch, rc, &err);
            goto out_rollback;
        }
    }
    if ((rc = run(s, ST_commit, &err, "")) < 0) {
        for (pending_write_t *w = batch; w; w = w->next)
            if (w->rc == JOBD_OK) {
                w->rc = rc;
                w->err = err;
            }
        goto out_rollback;
    }
    /* A group that changed nothing (a claim that found no job, a sweep with
     * nothing due) wrote nothing to the WAL: it needs no fsync of its own,
     * only, like a read, the commits it saw. */
    seq = sqlite3_total_changes64(s->db) != changes ? note_commit(s) : atomic_load(&s->committed);
    goto out_unlock;

out_rollback:
    if (!sqlite3_get_autocommit(s->db))
        run(s, ST_rollback, NULL, "");
out_unlock:
    pthread_mutex_unlock(&s->mu);
    return seq;
}

/* Every change goes through here, and here the changes of concurrent calls
 * are grouped into one commit.  The caller queues its call; if no call is
 * leading, it leads: it takes everything queued, runs it as one transaction
 * (run_group), hands the lead to the first call queued meanwhile, which takes
 * everything queued by the time it runs, and while that group runs makes its
 * own commit durable (wal_sync) and wakes the callers whose calls it
 * committed.  Each caller returns only after its own call is on the disk, so
 * a reply sent after store_* returns is durable.
 *
 * Waiters are parked on a word of their own (park.h) and woken after
 * group_mu is released: a wake-up is a context switch, and one under the
 * lock costs a second one when the woken thread blocks on the lock. */
static int tx_write(sq_t *s, tx_fn fn, void *arg, err_t *e)
{
    pending_write_t w = {.fn = fn, .arg = arg, .state = WRITE_QUEUED};
    pending_write_t *batch, *heir;
    uint64_t ended;
    uint_fast64_t seq;
    err_t err;
    int rc;

    pthread_mutex_lock(&s->group_mu);
    *s->queue_tail = &w;
    s->queue_tail = &w.next;
    if (s->leading) {
        pthread_mutex_unlock(&s->group_mu);
        park_wait(&w.state, WRITE_QUEUED);
        if (atomic_load(&w.state) == WRITE_DONE)
            goto out;
        pthread_mutex_lock(&s->group_mu); /* WRITE_LEAD: s->leading was kept for us */
    }
    s->leading = true;
    batch = s->queue;
    s->queue = NULL;
    s->queue_tail = &s->queue;
    pthread_mutex_unlock(&s->group_mu);

    seq = run_group(s, batch);

    pthread_mutex_lock(&s->group_mu);
    ended = ++s->groups_ended;
    pthread_cond_broadcast(&s->group_ended);
    heir = s->queue;
    s->leading = heir != NULL;
    pthread_mutex_unlock(&s->group_mu);
    if (heir)
        park_wake(&heir->state, WRITE_LEAD);
    /* The heir's group runs now, and would otherwise find the disk busy with
     * our fsync and need one of its own right after: let it commit first
     * (one group's work, much less than an fsync) and cover both; but not
     * for long, should it wait for another process's lock. */
    if (heir && seq > atomic_load(&s->synced) && atomic_load(&s->pipelined)) {
        struct timespec until = clock_deadline(CLOCK_MONOTONIC, HEIR_WAIT_NS);
        pthread_mutex_lock(&s->group_mu);
        while (s->groups_ended == ended)
            if (pthread_cond_timedwait(&s->group_ended, &s->group_mu, &until) != 0)
                break;
        pthread_mutex_unlock(&s->group_mu);
    }
    if (seq && (rc = wal_sync(s, seq, &err)) < 0)
        for (pending_write_t *b = batch; b; b = b->next)
            if (b->rc == JOBD_OK) {
                b->rc = rc;
                b->err = err;
            }
    for (pending_write_t *b = batch, *next; b; b = next) {
        next = b->next; /* read first: once woken, b's caller returns */
        if (b != &w)
            park_wake(&b->state, WRITE_DONE);
    }
out:
    if (w.rc < 0 && e)
        *e = w.err;
    return w.rc;
}

/* Reads see one snapshot, e.g. a job and its history together, and return
 * only once what they saw is on the disk (wal_sync). */
static int tx_read(sq_t *s, tx_fn fn, void *arg, err_t *e)
{
    uint_fast64_t seen;
    int rc = transact(s, ST_begin_read, fn, arg, e, &seen);
    /* A refusal (not found, say) is an answer about what was seen too. */
    int synced = wal_sync(s, seen, rc >= 0 ? e : NULL);
    return rc < 0 ? rc : synced;
}

/* ---- lifecycle ----------------------------------------------------------- */

/* Run the SQL text `sql` (any number of statements) outside the prepared set. */
static int exec(sq_t *s, const char *sql, const char *what, err_t *e)
{
    int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? JOBD_OK : dberr(s, rc, e, what);
}

/* The integer in the first column of the first row of `sql`, 0 if no row
 * or NULL. */
static int scalar(sq_t *s, const char *sql, const char *what, int64_t *v, err_t *e)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);

    if (rc != SQLITE_OK)
        return dberr(s, rc, e, what);
    rc = sqlite3_step(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        rc = dberr(s, rc, e, what);
        goto out_finalize;
    }
    *v = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    rc = JOBD_OK;
out_finalize:
    sqlite3_finalize(st);
    return rc;
}

/* Finalize the prepared statements: the schema changed, or the store is
 * closing. */
static void unprepare(sq_t *s)
{
    for (int i = 0; i < ST_COUNT; i++) {
        sqlite3_finalize(s->st[i]);
        s->st[i] = NULL;
    }
    s->prepared = false;
}

/* SQLite's automatic checkpoint runs inside the commit that crosses its
 * threshold, and showed up as millisecond latency spikes.  Instead, after
 * each commit the WAL hook tells this thread when the log has grown by
 * CHECKPOINT_PAGES since the last checkpoint, and it copies the log back into
 * the database on its own connection; PASSIVE never blocks the writer.
 *
 * The log only starts over from its beginning when a write begins after a
 * checkpoint has copied all of it, which a steady stream of commits can put
 * off indefinitely.  So the hook counts growth since the last checkpoint, not
 * the log's length (one checkpoint, and one fsync of the database, per
 * CHECKPOINT_PAGES written, not one per commit once the log is long), and
 * when the log passes WAL_LIMIT_PAGES a RESTART checkpoint holds writers
 * back briefly until the log can start over: the bound on its size. */
#define CHECKPOINT_PAGES 1000
#define WAL_LIMIT_PAGES  20000 /* 80 MB of 4 KiB pages */

static void *checkpointer(void *arg)
{
    sq_t *s = arg;
    int64_t warned_at = 0;
    int restarts = 0;

    pthread_setname_np(pthread_self(), "jobd-checkpoint");
    pthread_mutex_lock(&s->ckpt_mu);
    for (;;) {
        int log = 0, copied = 0;

        while (!s->ckpt_wanted && !s->ckpt_stop)
            pthread_cond_wait(&s->ckpt_cond, &s->ckpt_mu);
        if (s->ckpt_stop)
            break;
        s->ckpt_wanted = false;
        pthread_mutex_unlock(&s->ckpt_mu);
        sqlite3_wal_checkpoint_v2(s->ckpt_db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &copied);
        if (log > WAL_LIMIT_PAGES) {
            /* Routine under a steady heavy load (every few seconds), so said
             * once a minute with a count rather than each time. */
            int64_t now = clock_now_ms();
            restarts++;
            if (now - warned_at >= 60000) {
                log_warn("sqlite: the WAL reached %d pages; writes are held back until it "
                         "starts over (%d time%s since this was last logged)",
                         log, restarts, restarts == 1 ? "" : "s");
                warned_at = now;
                restarts = 0;
            }
            sqlite3_wal_checkpoint_v2(s->ckpt_db, NULL, SQLITE_CHECKPOINT_RESTART, &log, &copied);
        }
        atomic_store(&s->ckpt_frames, copied > 0 ? copied : 0);
        atomic_store(&s->ckpt_busy, false);
        pthread_mutex_lock(&s->ckpt_mu);
    }
    pthread_mutex_unlock(&s->ckpt_mu);
    return NULL;
}

/* Runs in the writer, under s->mu, after every commit: keep it cheap. */
static int on_wal_commit(void *arg, sqlite3 *db, const char *name, int pages)
{
    sq_t *s = arg;
    int copied = atomic_load(&s->ckpt_frames);
    (void)db;
    (void)name;
    /* A log shorter than what was copied has started over. */
    int grown = pages >= copied ? pages - copied : pages;
    if (grown >= CHECKPOINT_PAGES && !atomic_exchange(&s->ckpt_busy, true)) {
        pthread_mutex_lock(&s->ckpt_mu);
        s->ckpt_wanted = true;
        pthread_cond_signal(&s->ckpt_cond);
        pthread_mutex_unlock(&s->ckpt_mu);
    }
    return SQLITE_OK;
}

static int sq_set_sync(store_t *base, store_sync_t sync, err_t *e);

/* Open the WAL for wal_sync and commit with synchronous=NORMAL from now on.
 * An in-memory database has no file: it keeps synchronous=FULL, a no-op. */
static int open_wal(sq_t *s, err_t *e)
{
    const char *db = sqlite3_db_filename(s->db, "main");

    if (!db || !*db)
        return JOBD_OK;
    s->wal_path = sqlite3_mprintf("%s-wal", db);
    if (!s->wal_path)
        abort();
    /* The checkpointer's first read made the file (start_checkpointer). */
    s->wal_fd = open(s->wal_path, O_RDWR | O_CLOEXEC);
    if (s->wal_fd < 0)
        return err_set(e, JOBD_EDBDOWN, "cannot open %s: %s", s->wal_path, strerror(errno));
    return sq_set_sync(&s->base, STORE_SYNC_FULL, e);
}

static int start_checkpointer(sq_t *s, const char *db, err_t *e)
{
    int rc = sqlite3_open_v2(db, &s->ckpt_db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        rc = err_set(e, JOBD_EDBDOWN, "cannot open database %s for checkpoints: %s", db,
                     s->ckpt_db ? sqlite3_errmsg(s->ckpt_db) : sqlite3_errstr(rc));
        goto out_close;
    }
    sqlite3_busy_timeout(s->ckpt_db, BUSY_TIMEOUT_MS);
    /* A connection opens the WAL at its first read; until then a checkpoint
     * on it is a silent no-op (SQLite 3.40 reports -1 frames and SQLITE_OK). */
    rc = sqlite3_exec(s->ckpt_db, "SELECT count(*) FROM sqlite_master", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        rc = err_set(e, JOBD_EDBDOWN, "cannot read database %s for checkpoints: %s", db,
                     sqlite3_errmsg(s->ckpt_db));
        goto out_close;
    }
    if (pthread_create(&s->ckpt_thread, NULL, checkpointer, s) != 0)
        abort();
    /* Replaces SQLite's own automatic checkpoint (both use the WAL hook). */
    sqlite3_wal_hook(s->db, on_wal_commit, s);
    return JOBD_OK;

out_close:
    sqlite3_close(s->ckpt_db);
    s->ckpt_db = NULL;
    return rc;
}

static void stop_checkpointer(sq_t *s)
{
    if (!s->ckpt_db)
        return;
    pthread_mutex_lock(&s->ckpt_mu);
    s->ckpt_stop = true;
    pthread_cond_signal(&s->ckpt_cond);
    pthread_mutex_unlock(&s->ckpt_mu);
    pthread_join(s->ckpt_thread, NULL);
    sqlite3_close(s->ckpt_db);
    s->ckpt_db = NULL;
}

/* Process-wide SQLite settings, made once before its first use.  Memory
 * statistics (sqlite3_memory_used) are off: jobd never reads them, and
 * keeping them takes a process-wide mutex on every allocation SQLite makes,
 * which showed in profiles of the writer.  Should the library already be in
 * use (another user in the process), sqlite3_config refuses and nothing
 * changes. */
static void configure_sqlite(void)
{
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

/* jobd_time(ms): the SQL function {job_json} shows a time with, so that a
 * line SQLite writes shows it as record_value does (clock_format_ms); NULL
 * stays NULL. */
static void sql_jobd_time(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    char text[32];

    (void)argc;
    if (sqlite3_value_type(argv[0]) == SQLITE_NULL)
        return; /* the result is NULL unless set */
    if (sqlite3_value_type(argv[0]) != SQLITE_INTEGER) {
        sqlite3_result_error(ctx, "jobd_time: a time column holds something else than an integer",
                             -1);
        return;
    }
    clock_format_ms(sqlite3_value_int64(argv[0]), text, sizeof text, 'T');
    sqlite3_result_text(ctx, text, -1, SQLITE_TRANSIENT);
}

static int sq_open(const char *db, store_t **out, err_t *e)
{
    static pthread_once_t configured = PTHREAD_ONCE_INIT;
    pthread_condattr_t cattr;
    sq_t *s;
    int64_t wal;
    int rc;

    if (!db || !*db)
        return err_set(e, JOBD_EDBDOWN, "no database given");
    pthread_once(&configured, configure_sqlite);
    s = calloc(1, sizeof *s);
    if (!s)
        abort();
    s->base.backend = &store_sqlite_backend;
    pthread_mutex_init(&s->mu, NULL);
    pthread_mutex_init(&s->group_mu, NULL);
    pthread_condattr_init(&cattr);
    pthread_condattr_setclock(&cattr, CLOCK_MONOTONIC);
    pthread_cond_init(&s->group_ended, &cattr);
    pthread_condattr_destroy(&cattr);
    s->queue_tail = &s->queue;
    pthread_mutex_init(&s->ckpt_mu, NULL);
    pthread_cond_init(&s->ckpt_cond, NULL);
    pthread_mutex_init(&s->sync_mu, NULL);
    s->wal_fd = -1;
    /* NOMUTEX: s->mu already serializes every use of the connection. */
    rc = sqlite3_open_v2(db, &s->db,
                         SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        rc = err_set(e, JOBD_EDBDOWN, "cannot open database %s: %s", db,
                     s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
        goto out_close_db;
    }
    sqlite3_extended_result_codes(s->db, 1);
    sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);
    rc = sqlite3_create_function(s->db, "jobd_time", 1,
                                 SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS, NULL,
                                 sql_jobd_time, NULL, NULL);
    if (rc != SQLITE_OK) {
        rc = err_set(e, JOBD_EDBDOWN, "cannot define SQL function jobd_time on %s: %s", db,
                     sqlite3_errmsg(s->db));
        goto out_close_db;
    }
    /* synchronous=FULL until open_wal below hands the fsync to wal_sync: a
     * call that returned has reached the disk, even in WAL mode, so a job
     * once acknowledged survives a power cut (unless store_set_sync relaxes
     * it).  temp_store = MEMORY keeps the savepoint journal of a group commit
     * (the old content of each page a call changes, so that its failure can
     * be undone alone) in memory: as a temporary file it cost more writes
     * than the WAL itself, and it is never needed after a crash. */
    rc = exec(s, "PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL; PRAGMA temp_store = MEMORY",
              "configure database", e);
    if (rc < 0)
        goto out_close_db;
    /* journal_mode answers with the mode now in force; a file that cannot
     * use WAL (some network filesystems) is refused, not silently kept in
     * rollback mode. */
    rc = exec(s, "PRAGMA journal_mode = WAL", "switch to WAL", e);
    if (rc < 0)
        goto out_close_db;
    rc = scalar(s,
                "SELECT count(*) FROM pragma_journal_mode WHERE journal_mode IN ('wal', 'memory')",
                "check journal mode", &wal, e);
    if (rc < 0)
        goto out_close_db;
    if (wal != 1) {
        rc = err_set(e, JOBD_EDB, "cannot switch database %s to WAL mode", db);
        goto out_close_db;
    }
    if ((rc = start_checkpointer(s, db, e)) < 0)
        goto out_close_db;
    if ((rc = open_wal(s, e)) < 0)
        goto out_stop_checkpointer;
    snprintf(s->base.where, sizeof s->base.where, "SQLite database %s",
             sqlite3_db_filename(s->db, "main") ? sqlite3_db_filename(s->db, "main") : db);
    *out = &s->base;
    return JOBD_OK;
out_stop_checkpointer:
    stop_checkpointer(s);
out_close_db:
    sqlite3_close(s->db);
    if (s->wal_fd >= 0)
        close(s->wal_fd);
    sqlite3_free(s->wal_path);
    pthread_mutex_destroy(&s->mu);
    free(s);
    return rc;
}

static void sq_free(store_t *base)
{
    sq_t *s = (sq_t *)base;
    if (!s)
        return;
    stop_checkpointer(s);
    unprepare(s);
    sqlite3_close(s->db);
    if (s->wal_fd >= 0)
        close(s->wal_fd);
    sqlite3_free(s->wal_path);
    pthread_mutex_destroy(&s->sync_mu);
    pthread_mutex_destroy(&s->mu);
    pthread_mutex_destroy(&s->group_mu);
    pthread_cond_destroy(&s->group_ended);
    pthread_mutex_destroy(&s->ckpt_mu);
    pthread_cond_destroy(&s->ckpt_cond);
    free(s);
}

/* ---- schema and migrations ----------------------------------------------- */

/* The applied schema version, 0 for a database that was never migrated.
 * schema_version is the migration machinery's own table: it is created by
 * the first store_migrate_up, not by a migration, so that rolling back
 * migration 1 still leaves the record of it. */
static int read_version(sq_t *s, int *version, err_t *e)
{
    int64_t v = 0; /* set by scalar(); gcc -O3 cannot see it */
    int rc = scalar(s,
                    "SELECT count(*) FROM sqlite_master"
                    " WHERE type = 'table' AND name = 'schema_version'",
                    "read schema version", &v, e);
    if (rc < 0)
        return rc;
    if (v)
        rc = scalar(s, "SELECT coalesce(max(version), 0) FROM schema_version",
                    "read schema version", &v, e);
    if (rc == JOBD_OK)
        *version = (int)v;
    return rc;
}

static int newer(int version, err_t *e)
{
    return err_set(e, JOBD_ESCHEMA,
                   "database schema version %d is newer than this binary's latest version %d: "
                   "run a newer jobd",
                   version, LATEST);
}

static int sq_schema_version(store_t *base, int *current, int *latest, err_t *e)
{
    sq_t *s = (sq_t *)base;
    int rc, v = 0;

    pthread_mutex_lock(&s->mu);
    rc = read_version(s, &v, e);
    pthread_mutex_unlock(&s->mu);
    if (rc < 0)
        return rc;
    *current = v;
    *latest = LATEST;
    return JOBD_OK;
}

const char *store_migration_name(int version)
{
    if (version < 1 || version > LATEST)
        return NULL;
    return store_sqlite_migrations[version - 1].name;
}

/* Apply (up) or undo (down) migration m and record it in schema_version,
 * inside the caller's transaction. */
static int migrate_one(sq_t *s, const store_migration_t *m, bool up, err_t *e)
{
    char what[128];
    char *record;
    int rc;

    /* The prepared statements were checked against the schema being
     * changed; store_prepare must check them again. */
    unprepare(s);
    snprintf(what, sizeof what, "migration %d (%s) %s", m->version, m->name, up ? "up" : "down");
    rc = exec(s, up ? m->up : m->down, what, e);
    if (rc < 0)
        return rc;
    record = up ? sqlite3_mprintf("INSERT INTO schema_version (version, name, applied_at)"
                                  " VALUES (%d, %Q, %lld)",
                                  m->version, m->name, (long long)clock_now_ms())
                : sqlite3_mprintf("DELETE FROM schema_version WHERE version = %d", m->version);
    if (!record)
        abort();
    rc = exec(s, record, what, e);
    sqlite3_free(record);
    return rc;
}

/* End the transaction that migrate_step opened: commit if rc >= 0. */
static int finish_tx(sq_t *s, int rc, err_t *e)
{
    if (rc >= 0)
        return exec(s, "COMMIT", "commit migration", e);
    if (!sqlite3_get_autocommit(s->db))
        exec(s, "ROLLBACK", "roll back migration", NULL);
    return rc;
}

/* One step of store_migrate_up or store_migrate_down in its own
 * transaction, reading the version inside it so that two processes
 * migrating at once do not both apply a step.  Returns 1 if a migration was
 * applied or undone, 0 if there was nothing to do, or a JOBD_E* code. */
static int migrate_step(sq_t *s, bool up, err_t *e)
{
    int rc, v;

    rc = exec(s, "BEGIN IMMEDIATE", "begin migration", e);
    if (rc < 0)
        return rc;
    rc = read_version(s, &v, e);
    if (rc < 0)
        return finish_tx(s, rc, e);
    if (v > LATEST)
        return finish_tx(s, newer(v, e), e);
    if (up ? v == LATEST : v == 0)
        return finish_tx(s, 0, e);
    rc = migrate_one(s, &store_sqlite_migrations[up ? v : v - 1], up, e);
    rc = finish_tx(s, rc, e);
    return rc < 0 ? rc : 1;
}

static int sq_migrate_up(store_t *base, err_t *e)
{
    sq_t *s = (sq_t *)base;
    int rc;

    pthread_mutex_lock(&s->mu);
    rc = exec(s,
              "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY,"
              " name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
              "create schema_version", e);
    while (rc >= 0 && (rc = migrate_step(s, true, e)) == 1)
        ;
    if (rc >= 0)
        rc = wal_sync(s, note_commit(s), e);
    pthread_mutex_unlock(&s->mu);
    return rc < 0 ? rc : JOBD_OK;
}

static int sq_migrate_down(store_t *base, err_t *e)
{
    sq_t *s = (sq_t *)base;
    int rc, v = 0;

    pthread_mutex_lock(&s->mu);
    rc = read_version(s, &v, e);
    if (rc >= 0 && v > 0)
        rc = migrate_step(s, false, e);
    if (rc >= 0)
        rc = wal_sync(s, note_commit(s), e);
    pthread_mutex_unlock(&s->mu);
    return rc < 0 ? rc : JOBD_OK;
}

static int sq_prepare(store_t *base, err_t *e)
{
    sq_t *s = (sq_t *)base;
    int rc, v;

    pthread_mutex_lock(&s->mu);
    unprepare(s);
    rc = read_version(s, &v, e);
    if (rc < 0)
        goto out_unlock;
    if (v > LATEST) {
        rc = newer(v, e);
        goto out_unlock;
    }
    if (v < LATEST) {
        rc = err_set(e, JOBD_ESCHEMA,
                     "database schema version %d is older than this binary's version %d: "
                     "run `jobd migrate up`",
                     v, LATEST);
        goto out_unlock;
    }
    for (int i = 0; i < ST_COUNT; i++) {
        char *sql = backend_sql(stmts[i].sql);
        rc = sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s->st[i], NULL);
        free(sql);
        if (rc != SQLITE_OK) {
            rc = err_set(e, JOBD_ESCHEMA, "statement %s does not fit the database schema: %s",
                         stmts[i].name, sqlite3_errmsg(s->db));
            unprepare(s);
            goto out_unlock;
        }
    }
    s->prepared = true;
    rc = JOBD_OK;
out_unlock:
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static int do_ping(sq_t *s, void *arg, err_t *e)
{
    return run(s, ST_ping, e, "");
}

/* FULL is done by wal_sync when jobd has the WAL open (a file database),
 * else by SQLite's own synchronous=FULL. */
static int sq_set_sync(store_t *base, store_sync_t sync, err_t *e)
{
    sq_t *s = (sq_t *)base;
    bool pipelined = sync == STORE_SYNC_FULL && s->wal_fd >= 0;
    int rc;

    pthread_mutex_lock(&s->mu);
    rc = exec(s,
              sync == STORE_SYNC_NORMAL || pipelined ? "PRAGMA synchronous = NORMAL"
                                                     : "PRAGMA synchronous = FULL",
              "set synchronous", e);
    if (rc >= 0)
        atomic_store(&s->pipelined, pipelined);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static int sq_ping(store_t *base, err_t *e)
{
    sq_t *s = (sq_t *)base;
    return tx_read(s, do_ping, NULL, e);
}

/* One server per SQLite database: every job it makes pending, it announces
 * itself, so there is nothing to watch. */
static int sq_watch(store_t *base, store_watch_fn fn, void *arg, err_t *e)
{
    return JOBD_OK;
}

/* ---- jobs ---------------------------------------------------------------- */

struct create_args {
    const job_spec_t *specs;
    size_t n;
    bool brief;
    json_t *jobs;
};

/* The job that holds idempotency key `key` (which exists), whole or brief. */
static int job_by_key(sq_t *s, const char *key, bool brief, json_t **job, err_t *e)
{
    json_t *whole;
    int rc = fetch(s, ST_job_by_key, REC_KIND_JOB, true, &whole, e, "t", key);

    if (rc == 0)
        return err_set(e, JOBD_EINTERNAL, "no job holds idempotency key %s after a conflict on it",
                       key);
    if (rc < 0)
        return rc;
    *job = brief ? backend_brief_of(whole) : json_incref(whole);
    json_decref(whole);
    return JOBD_OK;
}

/* Insert one job of a batch; index names it in errors of a batch.  A brief
 * job is made from what was inserted: reading the row back and building
 * the whole record was most of a batch submit's cost.  A job whose key is
 * taken is not inserted: the answer is the job that holds the key. */
static int create_one(sq_t *s, const job_spec_t *spec, size_t index, size_t n, bool brief,
                      json_t *jobs, err_t *e)
{
    int64_t now = clock_now_ms();
    bool later = spec->run_at > now;
    char id[ID_UUID_LEN], *owned;
    const char *input = backend_input_text(spec, &owned);
    json_t *job;
    int rc;

    if (spec->input && !input)
        return err_set(e, JOBD_EINTERNAL, "jobs[%zu]: the input cannot be written as JSON", index);
    id_uuid7(id);
    rc = run(s, ST_job_insert, e, "tttitiiit", id, spec->operation, input, spec->priority,
             later ? "scheduled" : "pending", now, spec->max_attempts,
             later ? spec->run_at : (int64_t)0, spec->idempotency_key);
    free(owned);
    if (rc == 0 && spec->idempotency_key)
        rc = job_by_key(s, spec->idempotency_key, brief, &job, e);
    else if (rc >= 0 && brief)
        job = backend_brief(id, later ? "scheduled" : "pending");
    else if (rc >= 0)
        rc = get_job(s, id, &job, e);
    if (rc < 0) {
        if (n > 1)
            err_prefix(e, "jobs[%zu]: ", index);
        return rc;
    }
    json_array_append_new(jobs, job);
    return rc;
}

static int do_create(sq_t *s, void *arg, err_t *e)
{
    struct create_args *a = arg;
    int rc = 0;

    a->jobs = json_array();
    for (size_t i = 0; i < a->n && rc >= 0; i++)
        rc = create_one(s, &a->specs[i], i, a->n, a->brief, a->jobs, e);
    return rc;
}

static int sq_job_create(store_t *base, const job_spec_t *specs, size_t n, bool brief,
                         json_t **jobs, err_t *e)
{
    sq_t *s = (sq_t *)base;
    struct create_args a = {specs, n, brief, NULL};
    return backend_deliver(tx_write(s, do_create, &a, e), &a.jobs, jobs);
}

struct get_args {
    const char *id;
    json_t *job;
};

/* The job with its history and events, as store_job_get shows it. */
static int get_job_full(sq_t *s, const char *id, json_t **out, err_t *e)
{
    json_t *job, *history = NULL, *events = NULL;
    int rc = get_job(s, id, &job, e);

    if (rc < 0)
        return rc;
    rc = fetch(s, ST_job_history, REC_KIND_ATTEMPT, false, &history, e, "t", id);
    if (rc >= 0)
        rc = fetch(s, ST_job_events, REC_KIND_EVENT, false, &events, e, "t", id);
    if (rc < 0) {
        json_decref(history);
        json_decref(job);
        return rc;
    }
    json_object_set_new(job, "history", history);
    json_object_set_new(job, "events", events);
    *out = job;
    return JOBD_OK;
}

static int do_get(sq_t *s, void *arg, err_t *e)
{
    struct get_args *a = arg;
    return get_job_full(s, a->id, &a->job, e);
}

static int sq_job_get(store_t *base, const char *id, json_t **job, err_t *e)
{
    sq_t *s = (sq_t *)base;
    struct get_args a = {id, NULL};
    return backend_deliver(tx_read(s, do_get, &a, e), &a.job, job);
}

struct list_args {
    const job_filter_t *f;
    json_t *jobs;
};

static int do_list(sq_t *s, void *arg, err_t *e)
{
    struct list_args *a = arg;
    const job_filter_t *f = a->f;
    /* "" sorts before every id, so the first page needs no statement of
     * its own; a status filter has its own so that it uses jobs_status, or
     * for the jobs in flight, which jobs_status leaves out (0009),
     * jobs_processing_bot. */
    const char *after = f->after ? f->after : "";

    if (f->status && strcmp(f->status, "processing") == 0)
        return fetch(s, ST_job_list_processing, REC_KIND_JOB, false, &a->jobs, e, "tti", after,
                     f->operation, (int64_t)f->limit);
    if (f->status)
        return fetch(s, ST_job_list_status, REC_KIND_JOB, false, &a->jobs, e, "ttit", after,
                     f->operation, (int64_t)f->limit, f->status);
    return fetch(s, ST_job_list, REC_KIND_JOB, false, &a->jobs, e, "tti", after, f->operation,
                 (int64_t)f->limit);
}

static int sq_job_list(store_t *base, const job_filter_t *f, json_t **jobs, err_t *e)
{
    sq_t *s = (sq_t *)base;
    struct list_args a = {f, NULL};
    return backend_deliver(tx_read(s, do_list, &a, e), &a.jobs, jobs);
}

/* ---- claim ---------------------------------------------------------------- */

struct candidate {
    char id[ID_UUID_LEN];
    int64_t priority, created_at;
};

/* Claim order: highest priority first, then oldest, then id. */
static int by_claim_order(const void *pa, const void *pb)
{
    const struct candidate *a = pa, *b = pb;
    if (a->priority != b->priority)
        return a->priority > b->priority ? -1 : 1;
    if (a->created_at != b->created_at)
        return a->created_at < b->created_at ? -1 : 1;
    return strcmp(a->id, b->id);
}

struct claim_args {
    const char *bot_id;
    const char *const *ops;
    size_t nops;
    int max;
    int64_t lease_ms;
    bool brief; /* each job is its summary */
    json_t *jobs;
};

static bool seen_before(const char *const *ops, size_t i)
{
    for (size_t j = 0; j < i; j++)
        if (ops[j] && strcmp(ops[j], ops[i]) == 0)
            return true;
    return false;
}

/* The best `max` pending jobs of each distinct operation, each list read
 * from the jobs_claim index in claim order, so that the cost depends on
 * max and nops only, never on how many jobs are queued or finished.
 * OUT: *out (malloc'd), *n. */
static int candidates(sq_t *s, const struct claim_args *a, struct candidate **out, size_t *n,
                      err_t *e)
{
    struct candidate *c = NULL;
    size_t len = 0, cap = 0;
    int rc = 0;

    for (size_t i = 0; i < a->nops && rc >= 0; i++) {
        if (!a->ops[i] || seen_before(a->ops, i))
            continue;
        rc = query(s, ST_claim_candidates, e, "ti", a->ops[i], (int64_t)a->max);
        while (rc >= 0 && (rc = step(s, ST_claim_candidates, e)) == 1) {
            if (len == cap) {
                cap = cap ? 2 * cap : 16;
                c = realloc(c, cap * sizeof *c);
                if (!c)
                    abort();
            }
            col_text(s, ST_claim_candidates, 0, c[len].id, sizeof c[len].id);
            c[len].priority = sqlite3_column_int64(s->st[ST_claim_candidates], 1);
            c[len].created_at = sqlite3_column_int64(s->st[ST_claim_candidates], 2);
            len++;
        }
    }
    if (rc < 0) {
        free(c);
        return rc;
    }
    if (len)
        qsort(c, len, sizeof *c, by_claim_order);
    *out = c;
    *n = len;
    return JOBD_OK;
}

/* Lease job `id` to the bot and append it, with its lease, to a->jobs. */
static int claim_one(sq_t *s, struct claim_args *a, const char *id, const char *bot_name,
                     int64_t now, err_t *e)
{
    char lease[2 * LEASE_BYTES + 1];
    int64_t expires = now + a->lease_ms;
    json_t *job;
    int rc;

    id_hex(lease, LEASE_BYTES);
    rc = run(s, ST_job_claim, e, "tittti", id, now, a->bot_id, bot_name, lease, expires);
    if (rc <= 0)
        return rc;
    rc = run(s, ST_attempt_start, e, "t", id);
    if (rc >= 0 && a->brief &&
        (rc = fetch(s, ST_job_summary, REC_KIND_JOB_SUMMARY, true, &job, e, "t", id)) == 0)
        rc = err_set(e, JOBD_EINTERNAL, "job %s was claimed and is gone", id);
    else if (rc >= 0 && !a->brief)
        rc = get_job(s, id, &job, e);
    if (rc < 0)
        return rc;
    json_object_set_new(job, "lease", json_string(lease));
    json_object_set_new(job, "lease_expires_at", backend_time_json(expires));
    json_array_append_new(a->jobs, job);
    return JOBD_OK;
}

static int do_claim(sq_t *s, void *arg, err_t *e)
{
    struct claim_args *a = arg;
    struct candidate *c = NULL;
    char bot_name[256];
    int64_t now = clock_now_ms();
    size_t n = 0;
    int rc;

    rc = query(s, ST_bot_name, e, "t", a->bot_id);
    if (rc >= 0)
        rc = step(s, ST_bot_name, e);
    if (rc == 0)
        return err_set(e, JOBD_EUNKNOWNBOT, "no bot with id %s: register again", str(a->bot_id));
    if (rc < 0)
        return rc;
    col_text(s, ST_bot_name, 0, bot_name, sizeof bot_name);
    sqlite3_reset(s->st[ST_bot_name]);

    /* A claim, even an empty one, shows that the bot is alive, to the
     * second: a row left alone is no write, so a claim that finds nothing
     * commits nothing and costs no fsync. */
    rc = run(s, ST_bot_seen, e, "ti", a->bot_id, now);
    if (rc < 0)
        return rc;
    a->jobs = json_array();
    if (a->max <= 0)
        return JOBD_OK;
    rc = candidates(s, a, &c, &n, e);
    for (size_t i = 0; rc >= 0 && i < n && json_array_size(a->jobs) < (size_t)a->max; i++)
        rc = claim_one(s, a, c[i].id, bot_name, now, e);
    free(c);
    return rc;
}

struct create_claim_args {
    struct create_args create;
    struct claim_args claim;
};

/* The hand-off: the job's insert and the bot's claim in one write call. */
static int do_create_claim(sq_t *s, void *arg, err_t *e)
{
    struct create_claim_args *a = arg;
    int rc = do_create(s, &a->create, e);

    if (rc >= 0)
        rc = do_claim(s, &a->claim, e);
    /* The bot went away while it waited: the job stays, pending. */
    if (rc == JOBD_EUNKNOWNBOT) {
        a->claim.jobs = json_array();
        rc = JOBD_OK;
    }
    return rc;
}

static int sq_job_create_claim(store_t *base, const job_spec_t *spec, bool brief,
                               const char *bot_id, int64_t lease_ms, json_t **job, json_t **claimed,
                               err_t *e)
{
    sq_t *s = (sq_t *)base;
    struct create_claim_args a = {{spec, 1, brief, NULL},
                                  {bot_id, &spec->operation, 1, 1, lease_ms, false, NULL}};
    int rc = tx_write(s, do_create_claim, &a, e);

    if (rc < 0) {
        json_decref(a.create.jobs);
        json_decref(a.claim.jobs);
        return rc;
    }
    *job = json_incref(json_array_get(a.create.jobs, 0));
    json_decref(a.create.jobs);
    *claimed = a.claim.jobs;
    return JOBD_OK;
}

static int sq_job_claim(store_t *base, const char *bot_id, const char *const *ops, size_t nops,
                        int max, int64_t lease_ms, bool brief, json_t **jobs, err_t *e)
{
    sq_t *s = (sq_t *)base;
    struct claim_args a = {bot_id, ops, ops ? nops : 0, max, lease_ms, brief, NULL};
    return backend_deliver(tx_write(s, do_claim, &a, e), &a.jobs, jobs);
}

/* ---- complete, fail, release, expire -------------------------------------- */

/* The attempt of job `id` that holds `lease`: 1 if found, 0 if not, or a
 * JOBD_E* code. */
static int read_attempt(sq_t *s, const char *id, const char *lease, struct backend_attempt *r,
                        err_t *e)
{
    int rc = query(s, ST_attempt_by_lease, e, "tt", id, lease);

    if (rc >= 0)
        rc = step(s, ST_attempt_by_lease, e);
    if (rc != 1)
        return rc;
    col_text(s, ST_attempt_by_lease, 0, r->job_id, sizeof r->job_id);
    col_text(s, ST_attempt_by_lease, 1, r->bot_id, sizeof r->bot_id);
    col_text(s, ST_attempt_by_lease, 2, r->outcome, sizeof r->outcome);
    r->ended_at = sqlite3_column_int64(s->st[ST_attempt_by_lease], 3);
    col_text(s, ST_attempt_by_lease, 4, r->error, sizeof r->error);
    sqlite3_reset(s->st[ST_attempt_by_lease]);
    return 1;
}

/* The status and lease of job id, and (bot != NULL) the bot that holds it;
 * JOBD_ENOTFOUND if there is none. */
static int read_holder(sq_t *s, const char *id, char status[16], char lease[72], char bot[64],
                       err_t *e)
{
    int rc = query(s, ST_job_state, e, "t", id);

    if (rc >= 0)
        rc = step(s, ST_job_state, e);
    if (rc == 0)
        return err_set(e, JOBD_ENOTFOUND, "no job with id %s", str(id));
    if (rc < 0)
        return rc;
    col_text(s, ST_job_state, 0, status, 16);
    col_text(s, ST_job_state, 1, lease, 72);
    if (bot)
        col_text(s, ST_job_state, 2, bot, 64);
    sqlite3_reset(s->st[ST_job_state]);
    return JOBD_OK;
}

static int read_state(sq_t *s, const char *id, char status[16], char lease[72], err_t *e)
{
    return read_holder(s, id, status, lease, NULL, e);
}

/* The failures and max_attempts of job id (which exists). */
static int read_budget(sq_t *s, const char *id, int64_t *failures, int64_t *max, err_t *e)
{
    int rc = query(s, ST_job_order, e, "t", id);

    if (rc >= 0)
        rc = step(s, ST_job_order, e);
    if (rc == 0)
        return err_set(e, JOBD_ENOTFOUND, "no job with id %s", id);
    if (rc < 0)
        return rc;
    *failures = sqlite3_column_int64(s->st[ST_job_order], 3);
    *max = sqlite3_column_int64(s->st[ST_job_order], 4);
    sqlite3_reset(s->st[ST_job_order]);
    return JOBD_OK;
}

/* A job that just finished (rc: the rows its finishing statement changed)
 * waits for the datalake from now on.  Returns rc or a JOBD_E* code. */
static int export_enqueue(sq_t *s, const char *id, int64_t finished_at, int rc, err_t *e)
{
    if (rc == 1) {
        int q = run(s, ST_export_enqueue, e, "ti", id, finished_at);
        if (q < 0)
            return q;
    }
    return rc;
}

/* Record the outcome on the job: succeeded, failed for good, or - a
 * retryable failure within the budget - scheduled after the backoff, which
 * *status says.  Returns how many rows changed (0 if the job is not
 * processing under the lease) or a JOBD_E* code. */
static int finish_job(sq_t *s, const struct backend_finish *a, int64_t now, const char **status,
                      err_t *e)
{
    int64_t failures = 0, max = 0;
    int rc;

    *status = a->ok ? "succeeded" : "failed";
    if (a->ok) {
        rc = run(s, ST_job_finish, e, "tttjtiiit", a->id, a->lease, "succeeded", a->result, NULL,
                 a->duration_ms, now, (int64_t)0, a->bot_id);
        return export_enqueue(s, a->id, now, rc, e);
    }
    if (a->retry) {
        rc = read_budget(s, a->id, &failures, &max, e);
        if (rc < 0)
            return rc;
        if (failures + 1 < max) {
            *status = "scheduled";
            return run(s, ST_job_reschedule, e, "ttiti", a->id, a->lease,
                       now + backend_retry_delay(a->retry, failures + 1), a->error, a->duration_ms);
        }
    }
    rc = run(s, ST_job_finish, e, "tttjtiiit", a->id, a->lease, "failed", NULL, a->error,
             a->duration_ms, now, (int64_t)1, a->bot_id);
    return export_enqueue(s, a->id, now, rc, e);
}

/* The job a finish call answers with: whole; or brief, its summary
 * (a->summary) or only its id and the status it is in now, which needs no
 * read. */
static int finished_job(sq_t *s, struct backend_finish *a, const char *status, err_t *e)
{
    int rc;

    if (!a->brief)
        return get_job(s, a->id, &a->job, e);
    if (a->summary) {
        rc = fetch(s, ST_job_summary, REC_KIND_JOB_SUMMARY, true, &a->job, e, "t", a->id);
        if (rc == 0)
            return err_set(e, JOBD_ENOTFOUND, "no job with id %s", str(a->id));
        return rc < 0 ? rc : JOBD_OK;
    }
    a->job = backend_brief(a->id, status);
    return JOBD_OK;
}

/* A report whose lease is not the job's own (status, lease: the job's):
 * answered from the attempt the lease names.  Returns 0 if that attempt
 * still runs after all, 1 for a repeat of the call that ended it (a->job
 * set), or a JOBD_E* code refusing it. */
static int settle_by_attempt(sq_t *s, struct backend_finish *a, const char *status, err_t *e)
{
    struct backend_attempt r;
    int rc = read_attempt(s, a->id, a->lease, &r, e);

    if (rc < 0)
        return rc;
    if (rc == 0 || strcmp(r.job_id, a->id) != 0)
        return err_set(e, JOBD_EMISMATCH, "job %s was never leased under lease %s", a->id,
                       a->lease);
    if (strcmp(r.bot_id, a->bot_id) != 0)
        return err_set(e, JOBD_EMISMATCH, "lease %s of job %s is held by bot %s, not by bot %s",
                       a->lease, a->id, r.bot_id, a->bot_id);
    if (strcmp(r.outcome, "running") == 0)
        return 0;
    rc = backend_refuse(a, &r, status, e);
    if (rc < 0)
        return rc;
    a->repeated = true;
    rc = finished_job(s, a, status, e);
    return rc < 0 ? rc : 1;
}

static int do_finish(sq_t *s, void *arg, err_t *e)
{
    struct backend_finish *a = arg;
    const char *outcome = a->ok ? "succeeded" : "failed", *now_status;
    char status[16], lease[72], holder[64];
    int64_t now = clock_now_ms();
    /* The usual report, of the attempt that runs, is settled by the job's
     * row alone: a job holds a lease exactly while its attempt under that
     * lease runs, so job_finish, which changes the row only while it is
     * processing under this lease for this bot, finishes it at once.  A
     * report it leaves alone (a repeat, a stale lease, another bot's), and
     * a retryable failure (which needs the job's budget), is looked into
     * first. */
    int rc = a->ok || !a->retry ? finish_job(s, a, now, &now_status, e) : 0;

    if (rc == 0) {
        if ((rc = read_holder(s, a->id, status, lease, holder, e)) < 0)
            return rc;
        if (strcmp(status, "processing") == 0 && strcmp(lease, a->lease) == 0) {
            if (strcmp(holder, a->bot_id) != 0)
                return err_set(e, JOBD_EMISMATCH,
                               "lease %s of job %s is held by bot %s, not by bot %s", a->lease,
                               a->id, holder, a->bot_id);
        } else if ((rc = settle_by_attempt(s, a, status, e)) != 0) {
            return rc < 0 ? rc : JOBD_OK;
        }
        rc = finish_job(s, a, now, &now_status, e);
        if (rc == 0)
            return err_set(e, JOBD_EINTERNAL,
                           "job %s is %s, not processing under lease %s, although that attempt is "
                           "still running",
                           a->id, status, a->lease);
    }
    if (rc >= 0)
        rc = run(s, ST_attempt_end, e, "tttit", a->id, a->lease, outcome, now,
                 a->ok ? NULL : a->error);
    if (rc >= 0 && s->batch_counts) {
        s->batch_ok += a->ok;
        s->batch_failed += !a->ok;
    } else if (rc >= 0) {
        rc = run(s, ST_bot_done, e, "tii", a->bot_id, (int64_t)a->ok, (int64_t)!a->ok);
    }
    return rc < 0 ? rc : finished_job(s, a, now_status, e);
}

static int finish(sq_t *s, struct backend_finish *a, json_t **job, bool *repeated, err_t *e)
{
    int rc;

    a->id = str(a->id);
    a->bot_id = str(a->bot_id);
    a->lease = str(a->lease);
    rc = backend_deliver(tx_write(s, do_finish, a, e), &a->job, job);
    if (rc == JOBD_OK)
        *repeated = a->repeated;
    return rc;
}

struct report_args {
    const char *bot_id;
    job_report_t *reports;
    size_t n;
    job_claim_t *claim; /* NULL: reports only */
};

static int finish_step(void *conn, struct backend_finish *f, err_t *e)
{
    return do_finish((sq_t *)conn, f, e);
}

static int do_report_many(sq_t *s, void *arg, err_t *e)
{
    struct report_args *a = arg;
    int rc;

    s->batch_counts = true;
    s->batch_ok = s->batch_failed = 0;
    rc = backend_report_each(s, finish_step, a->bot_id, a->reports, a->n, e);
    s->batch_counts = false;
    if (rc >= 0 && (s->batch_ok || s->batch_failed))
        rc = run(s, ST_bot_done, e, "tii", a->bot_id, s->batch_ok, s->batch_failed);

    if (rc >= 0 && a->claim) {
        struct claim_args c = {
            a->bot_id,     a->claim->ops,      a->claim->ops ? a->claim->nops : 0,
            a->claim->max, a->claim->lease_ms, a->claim->brief,
            NULL};
        rc = do_claim(s, &c, e);
        a->claim->jobs = c.jobs;
    }
    return rc;
}

static int sq_job_report_many(store_t *base, const char *bot_id, job_report_t *reports, size_t n,
                              job_claim_t *claim, err_t *e)
{
    struct report_args a = {bot_id, reports, n, claim};
    int rc = tx_write((sq_t *)base, do_report_many, &a, e);
    return backend_claim_undo(backend_report_undo(rc, reports, n), claim);
}

static int sq_job_complete(store_t *base, const char *id, const char *bot_id, const char *lease,
                           const json_t *result, int64_t duration_ms, json_t **job, bool *repeated,
                           err_t *e)
{
    sq_t *s = (sq_t *)base;
    struct backend_finish a = {id,          bot_id, lease, true, result, NULL,
                               duration_ms, NULL,   false, NULL, false,  false};
    return finish(s, &a, job, repeated, e);
}

static int sq_job_fail(store_t *base, const char *id, const char *bot_id, const char *lease,
                       const char *error, const store_retry_t *retry, int64_t duration_ms,
                       json_t **job, bool *repeated, err_t *e)
{
    sq_t *s = (sq_t *)base;
    struct backend_finish a = {id,          bot_id, lease, false, NULL,  error,
                               duration_ms, NULL,   false, retry, false, false};
    return finish(s, &a, job, repeated, e);
}

/* Put processing job `id` back to pending, ending the attempt under `lease`
 * with `outcome` (released, expired or worker_lost) at `at`, because of
 * `why`.  The job's attempts count stays: it counts claims; the attempt
 * counts as lost for the job and its bot, not as a failure. */
static int takeback(sq_t *s, const char *id, const char *lease, const char *outcome, int64_t at,
                    const char *why, err_t *e)
{
    int rc = run(s, ST_attempt_end, e, "tttit", id, lease, outcome, at, why);
    if (rc >= 0)
        rc = run(s, ST_bot_lost, e, "tt", id, lease);
    return rc < 0 ? rc : run(s, ST_job_takeback, e, "t", id);
}

/* Record an admin action on job id. */
static int add_event(sq_t *s, const char *id, int64_t at, const char *action, const char *reason,
                     err_t *e)
{
    return run(s, ST_event_insert, e, "titt", id, at, action, reason);
}

struct release_args {
    const char *id, *reason;
    json_t *job;
};

static int do_release(sq_t *s, void *arg, err_t *e)
{
    struct release_args *a = arg;
    char status[16], lease[72];
    int64_t now = clock_now_ms();
    int rc = read_state(s, a->id, status, lease, e);

    if (rc < 0)
        return rc;
    if (strcmp(status, "processing") != 0)
        return err_set(e, JOBD_ENOTPROC, "job %s is %s, not processing", str(a->id), status);
    rc = takeback(s, a->id, lease, "released", now, a->reason, e);
    if (rc >= 0)
        rc = add_event(s, a->id, now, "release", a->reason, e);
    return rc < 0 ? rc : get_job_full(s, a->id, &a->job, e);
}

static int sq_job_release(store_t *base, const char *id, const char *reason, json_t **job, err_t *e)
{
    sq_t *s = (sq_t *)base;
    struct release_args a = {id, str(reason), NULL};
    return backend_deliver(tx_write(s, do_release, &a, e), &a.job, job);
}

static int do_retry(sq_t *s, void *arg, err_t *e)
{
    struct release_args *a = arg;
    char status[16], lease[72];
    int rc = read_state(s, a->id, status, lease, e);

    if (rc < 0)
        return rc;
    if (strcmp(status, "failed") != 0 && strcmp(status, "cancelled") != 0)
        return err_set(e, JOBD_ENOTRETRY,
                       "job %s is %s; only a failed or cancelled job can be retried", a->id,
                       status);
    rc = run(s, ST_job_retry, e, "t", a->id);
    /* Not yet written to the datalake: the outcome that now ends is never
     * written (an export in flight is refused at its mark). */
    if (rc >= 0)
        rc = run(s, ST_export_dequeue, e, "t", a->id);
    if (rc >= 0)
        rc = add_event(s, a->id, clock_now_ms(), "retry", a->reason, e);
    return rc < 0 ? rc : get_job_full(s, a->id, &a->job, e);
}

static int sq_job_retry(store_t *base, const char *id, const char *reason, json_t **job, err_t *e)
{
    sq_t *s = (sq_t *)base;
    struct release_args a = {str(id), str(reason), NULL};
    return backend_deliver(tx_write(s, do_retry, &a, e), &a.job, job);
}

static int do_cancel(sq_t *s, void *arg, err_t *e)
{
    struct release_args *a = arg;
    char status[16], lease[72], why[1100];
    int64_t now = clock_now_ms();
    int rc = read_state(s, a->id, status, lease, e);

    if (rc < 0)
        return rc;
    if (strcmp(status, "cancelled") == 0)
        return err_set(e, JOBD_ECANCELLED, "job %s is already cancelled", a->id);
    if (strcmp(status, "succeeded") == 0 || strcmp(status, "failed") == 0)
        return err_set(e, JOBD_EFINISHED, "job %s already %s; it cannot be cancelled", a->id,
                       status);
    snprintf(why, sizeof why, "cancelled by an admin: %s", a->reason);
    if (strcmp(status, "processing") == 0)
        rc = run(s, ST_attempt_end, e, "tttit", a->id, lease, "cancelled", now, a->reason);
    if (rc >= 0)
        rc = export_enqueue(s, a->id, now, run(s, ST_job_cancel, e, "tit", a->id, now, why), e);
    if (rc >= 0)
        rc = add_event(s, a->id, now, "cancel", a->reason, e);
    return rc < 0 ? rc : get_job_full(s, a->id, &a->job, e);
}

static int sq_job_cancel(store_t *base, const char *id, const char *reason, json_t **job, err_t *e)
{
    sq_t *s = (sq_t *)base;
    struct release_args a = {str(id), str(reason), NULL};
    return backend_deliver(tx_write(s, do_cancel, &a, e), &a.job, job);
}

/* Run counting statement id, bound like vbind, and read its one integer. */
static int count(sq_t *s, enum stmt_id id, int64_t *n, err_t *e, const char *types, ...)
{
    va_list ap;
    int rc;

    va_start(ap, types);
    rc = vbind(s, id, e, types, ap);
    va_end(ap);
    if (rc >= 0)
        rc = step(s, id, e);
    if (rc < 0)
        return rc;
    *n = rc == 1 ? sqlite3_column_int64(s->st[id], 0) : 0;
    sqlite3_reset(s->st[id]);
    return JOBD_OK;
}

struct explain_args {
    const char *id;
    json_t *facts;
};

static int do_explain(sq_t *s, void *arg, err_t *e)
{
    struct explain_args *a = arg;
    json_t *job, *bot = NULL;
    const char *status;
    char op[128];
    int64_t priority, created, expires, ahead = 0, live = 0;
    int rc = get_job_full(s, a->id, &job, e);

    if (rc < 0)
        return rc;
    a->facts = json_pack("{s:o}", "job", job);
    status = json_string_value(json_object_get(job, "status"));
    rc = query(s, ST_job_order, e, "t", a->id);
    if (rc >= 0)
        rc = step(s, ST_job_order, e);
    if (rc <= 0)
        return rc < 0 ? rc : err_set(e, JOBD_ENOTFOUND, "no job with id %s", a->id);
    col_text(s, ST_job_order, 0, op, sizeof op);
    priority = sqlite3_column_int64(s->st[ST_job_order], 1);
    created = sqlite3_column_int64(s->st[ST_job_order], 2);
    expires = sqlite3_column_int64(s->st[ST_job_order], 5);
    sqlite3_reset(s->st[ST_job_order]);
    if (strcmp(status, "pending") == 0)
        rc = count(s, ST_queue_ahead, &ahead, e, "tiit", op, priority, created, a->id);
    if (rc >= 0)
        rc = count(s, ST_live_bots, &live, e, "t", op);
    if (rc >= 0 && strcmp(status, "processing") == 0)
        rc = get_bot(s, json_string_value(json_object_get(job, "bot_id")), &bot, e);
    if (rc < 0)
        return rc;
    json_object_set_new(a->facts, "ahead", json_integer(ahead));
    json_object_set_new(a->facts, "live_bots", json_integer(live));
    json_object_set_new(a->facts, "bot", bot ? bot : json_null());
    json_object_set_new(a->facts, "lease_expires_at",
                        bot ? backend_time_json(expires) : json_null());
    return JOBD_OK;
}

static int sq_job_explain(store_t *base, const char *id, json_t **facts, err_t *e)
{
    sq_t *s = (sq_t *)base;
    struct explain_args a = {str(id), NULL};
    return backend_deliver(tx_read(s, do_explain, &a, e), &a.facts, facts);
}

/* A sweep at a given time, in one write transaction, changing at most
 * `limit` jobs (0: no limit); *n is how many jobs it changed. */
static int count_write(sq_t *s, tx_fn fn, int64_t now_ms, int limit, int *n, err_t *e)
{
    struct backend_count a = {now_ms, limit, 0};
    int rc = tx_write(s, fn, &a, e);

    if (rc == JOBD_OK)
        *n = a.n;
    return rc;
}

static int do_schedule_due(sq_t *s, void *arg, err_t *e)
{
    struct backend_count *a = arg;
    int rc = run(s, ST_schedule_due, e, "i", a->now);
    if (rc >= 0)
        a->n = rc;
    return rc;
}

static int sq_schedule_due(store_t *base, int64_t now_ms, int *n, err_t *e)
{
    return count_write((sq_t *)base, do_schedule_due, now_ms, 0, n, e);
}

static int do_expire(sq_t *s, void *arg, err_t *e)
{
    struct backend_count *a = arg;
    json_t *lapsed = json_array(), *row;
    size_t i;
    int rc;

    /* Collect first: SQLite does not define what a SELECT sees of rows
     * changed while it is still stepping. */
    rc = query(s, ST_lease_expired, e, "i", a->now);
    while (rc >= 0 && (rc = step(s, ST_lease_expired, e)) == 1) {
        sqlite3_stmt *st = s->st[ST_lease_expired];
        json_array_append_new(lapsed, json_pack("[ssI]", sqlite3_column_text(st, 0),
                                                sqlite3_column_text(st, 1),
                                                (json_int_t)sqlite3_column_int64(st, 2)));
    }
    json_array_foreach(lapsed, i, row)
    {
        int64_t at = json_integer_value(json_array_get(row, 2));
        char t[32], why[64];
        if (rc < 0)
            break;
        snprintf(why, sizeof why, "lease expired at %s", backend_when(at, t));
        rc = takeback(s, json_string_value(json_array_get(row, 0)),
                      json_string_value(json_array_get(row, 1)), "expired", at, why, e);
    }
    a->n = (int)json_array_size(lapsed);
    json_decref(lapsed);
    return rc;
}

static int sq_lease_expire(store_t *base, int64_t now_ms, int *n, err_t *e)
{
    return count_write((sq_t *)base, do_expire, now_ms, 0, n, e);
}

/* ---- retention ------------------------------------------------------------- */

/* One batch: the jobs' attempts and events, then the jobs (foreign keys are
 * on, so a child left behind would fail the batch rather than be orphaned). */
static int do_purge(sq_t *s, void *arg, err_t *e)
{
    struct backend_count *a = arg;
    int rc = run(s, ST_purge_attempts, e, "ii", a->now, (int64_t)a->limit);

    if (rc >= 0)
        rc = run(s, ST_purge_events, e, "ii", a->now, (int64_t)a->limit);
    if (rc >= 0)
        rc = run(s, ST_purge_jobs, e, "ii", a->now, (int64_t)a->limit);
    if (rc >= 0)
        a->n = rc;
    return rc;
}

/* A write call like any other, so a batch takes its turn in the group
 * commit and claims are never held up by more than one batch. */
static int sq_job_purge(store_t *base, int64_t finished_before_ms, int limit, int *n, err_t *e)
{
    return count_write((sq_t *)base, do_purge, finished_before_ms, limit, n, e);
}

/* ---- stats ----------------------------------------------------------------- */

struct stats_args {
    json_t *stats;
};

static int do_stats(sq_t *s, void *arg, err_t *e)
{
    struct stats_args *a = arg;
    sqlite3_stmt *st;
    int rc;

    a->stats = backend_stats_new();
    rc = query(s, ST_stats_jobs, e, "");
    st = s->st[ST_stats_jobs];
    while (rc >= 0 && (rc = step(s, ST_stats_jobs, e)) == 1)
        backend_stats_add_jobs(a->stats, (const char *)sqlite3_column_text(st, 0),
                               (const char *)sqlite3_column_text(st, 1),
                               sqlite3_column_int64(st, 2));
    if (rc < 0)
        return rc;
    rc = query(s, ST_stats_bots, e, "");
    st = s->st[ST_stats_bots];
    while (rc >= 0 && (rc = step(s, ST_stats_bots, e)) == 1)
        backend_stats_add_bots(a->stats, (const char *)sqlite3_column_text(st, 0),
                               sqlite3_column_int64(st, 1));
    return rc;
}

static int sq_stats(store_t *base, json_t **stats, err_t *e)
{
    sq_t *s = (sq_t *)base;
    struct stats_args a = {NULL};
    int rc = tx_read(s, do_stats, &a, e);
    /* How well group commit does: calls per commit, commits per fsync. */
    if (rc >= 0)
        json_object_set_new(a.stats, "sqlite",
                            json_pack("{s:I,s:I}", "commits",
                                      (json_int_t)atomic_load(&s->committed), "fsyncs",
                                      (json_int_t)atomic_load(&s->fsyncs)));
    return backend_deliver(rc, &a.stats, stats);
}

/* ---- bots ------------------------------------------------------------------ */

struct bot_args {
    const char *id, *name, *state;
    const json_t *operations;
    const json_t *jobs; /* heartbeat: what the bot says it holds, or NULL */
    int64_t lease_ms;
    json_t *bot;
    json_t *bots;
    json_t *reply;
};

static int do_register(sq_t *s, void *arg, err_t *e)
{
    struct bot_args *a = arg;
    char id[ID_UUID_LEN];
    int rc;

    id_uuid7(id);
    rc = run(s, ST_bot_insert, e, "ttji", id, a->name, a->operations, clock_now_ms());
    return rc < 0 ? rc : get_bot(s, id, &a->bot, e);
}

static int sq_bot_register(store_t *base, const char *name, const json_t *operations, json_t **bot,
                           err_t *e)
{
    sq_t *s = (sq_t *)base;
    struct bot_args a = {.name = name, .operations = operations};
    return backend_deliver(tx_write(s, do_register, &a, e), &a.bot, bot);
}

/* Take back every job bot_id holds (outcome worker_lost, because of why).
 * OUT: *taken, the ids. */
static int takeback_bot(sq_t *s, const char *bot_id, int64_t now, const char *why, json_t **taken,
                        err_t *e)
{
    json_t *held, *pair;
    size_t i;
    int rc = bot_jobs(s, bot_id, true, &held, e);

    if (rc < 0)
        return rc;
    *taken = json_array();
    json_array_foreach(held, i, pair)
    {
        const char *id = json_string_value(json_array_get(pair, 0));
        rc =
            takeback(s, id, json_string_value(json_array_get(pair, 1)), "worker_lost", now, why, e);
        if (rc < 0)
            break;
        json_array_append_new(*taken, json_string(id));
    }
    json_decref(held);
    if (rc < 0) {
        json_decref(*taken);
        return rc;
    }
    return JOBD_OK;
}

/* Where a job the bot says it holds stands for this bot: "held" (renewed
 * now), "cancelled", "lost", or NULL when its own attempt finished it (a
 * report that crossed the heartbeat; nothing to tell). */
static int classify(sq_t *s, struct bot_args *a, const json_t *item, int64_t now,
                    const char **verdict, err_t *e)
{
    const char *id = json_string_value(json_object_get(item, "id"));
    const json_t *progress = json_object_get(item, "progress");
    char outcome[16];
    int rc = run(s, ST_lease_renew_one, e, "ttij", id, a->id, now + a->lease_ms,
                 json_is_null(progress) ? NULL : progress);

    if (rc < 0)
        return rc;
    if (rc > 0) {
        *verdict = "held";
        return JOBD_OK;
    }
    rc = query(s, ST_my_attempt, e, "tt", id, a->id);
    if (rc >= 0)
        rc = step(s, ST_my_attempt, e);
    if (rc < 0)
        return rc;
    outcome[0] = '\0';
    if (rc == 1)
        col_text(s, ST_my_attempt, 0, outcome, sizeof outcome);
    sqlite3_reset(s->st[ST_my_attempt]);
    if (strcmp(outcome, "succeeded") == 0 || strcmp(outcome, "failed") == 0)
        *verdict = NULL;
    else if (strcmp(outcome, "cancelled") == 0)
        *verdict = "cancelled";
    else
        *verdict = "lost";
    return JOBD_OK;
}

static int do_heartbeat(sq_t *s, void *arg, err_t *e)
{
    struct bot_args *a = arg;
    json_t *verdicts, *item, *held, *taken;
    int64_t now = clock_now_ms();
    char why[300];
    size_t i;
    int rc = run(s, ST_bot_heartbeat, e, "tti", a->id, a->state, now);

    if (rc == 0)
        return err_set(e, JOBD_EUNKNOWNBOT, "no bot with id %s: register again", str(a->id));
    if (rc >= 0 && !a->jobs)
        rc = run(s, ST_lease_renew, e, "ti", a->id, now + a->lease_ms);
    if (rc < 0)
        return rc;
    verdicts = json_pack("{s:[],s:[],s:[]}", "held", "cancelled", "lost");
    json_array_foreach(a->jobs, i, item)
    {
        const char *verdict;
        rc = classify(s, a, item, now, &verdict, e);
        if (rc < 0)
            goto out_verdicts;
        if (verdict && strcmp(verdict, "held") != 0)
            json_array_append(json_object_get(verdicts, verdict), json_object_get(item, "id"));
    }
    if (strcmp(a->state, "offline") == 0) {
        snprintf(why, sizeof why, "bot %s went offline while holding the job", a->id);
        rc = takeback_bot(s, a->id, now, why, &taken, e);
        if (rc < 0)
            goto out_verdicts;
        json_array_extend(json_object_get(verdicts, "lost"), taken);
        json_decref(taken);
    }
    rc = get_bot(s, a->id, &a->bot, e);
    if (rc < 0)
        goto out_verdicts;
    held = json_object_get(a->bot, "jobs");
    json_object_set(verdicts, "held", held);
    a->reply = json_pack("{s:o,s:o}", "bot", a->bot, "jobs", verdicts);
    a->bot = NULL;
    return JOBD_OK;

out_verdicts:
    json_decref(verdicts);
    return rc;
}

static int sq_bot_heartbeat(store_t *base, const char *id, const char *state, int64_t lease_ms,
                            const json_t *jobs, json_t **reply, err_t *e)
{
    sq_t *s = (sq_t *)base;
    struct bot_args a = {.id = str(id), .state = state, .lease_ms = lease_ms, .jobs = jobs};
    return backend_deliver(tx_write(s, do_heartbeat, &a, e), &a.reply, reply);
}

struct sweep_args {
    int64_t unhealthy_before, offline_before;
    json_t *changes;
};

static int do_sweep(sq_t *s, void *arg, err_t *e)
{
    struct sweep_args *a = arg;
    sqlite3_stmt *st = s->st[ST_bots_stale];
    json_t *stale = json_array(), *bot;
    int64_t now = clock_now_ms();
    size_t i;
    int rc = query(s, ST_bots_stale, e, "i", a->unhealthy_before);

    /* Collected first, as in do_expire. */
    while (rc >= 0 && (rc = step(s, ST_bots_stale, e)) == 1)
        json_array_append_new(stale,
                              json_pack("{s:s,s:s,s:I,s:s}", "id", sqlite3_column_text(st, 0),
                                        "name", sqlite3_column_text(st, 1), "last_seen_at",
                                        (json_int_t)sqlite3_column_int64(st, 2), "state",
                                        sqlite3_column_text(st, 3)));
    a->changes = json_array();
    json_array_foreach(stale, i, bot)
    {
        const char *id = json_string_value(json_object_get(bot, "id"));
        const char *was = json_string_value(json_object_get(bot, "state"));
        int64_t seen = json_integer_value(json_object_get(bot, "last_seen_at"));
        const char *state = seen < a->offline_before ? "offline" : "unhealthy";
        char why[400], t[32];
        json_t *taken;

        if (rc < 0)
            break;
        if (strcmp(was, state) == 0)
            continue;
        snprintf(why, sizeof why, "bot %s (%s) missed its heartbeats: last seen at %s",
                 json_string_value(json_object_get(bot, "name")), id, backend_when(seen, t));
        rc = run(s, ST_bot_set_state, e, "tt", id, state);
        if (rc >= 0)
            rc = takeback_bot(s, id, now, why, &taken, e);
        if (rc >= 0)
            json_array_append_new(a->changes, json_pack("{s:s,s:O,s:s,s:o,s:o}", "id", id, "name",
                                                        json_object_get(bot, "name"), "state",
                                                        state, "last_seen_at",
                                                        backend_time_json(seen), "jobs", taken));
    }
    json_decref(stale);
    return rc < 0 ? rc : JOBD_OK;
}

static int sq_bot_sweep(store_t *base, int64_t unhealthy_before, int64_t offline_before,
                        json_t **changes, err_t *e)
{
    sq_t *s = (sq_t *)base;
    struct sweep_args a = {unhealthy_before, offline_before, NULL};
    return backend_deliver(tx_write(s, do_sweep, &a, e), &a.changes, changes);
}

static int do_bot_get(sq_t *s, void *arg, err_t *e)
{
    struct bot_args *a = arg;
    return get_bot(s, a->id, &a->bot, e);
}

static int sq_bot_get(store_t *base, const char *id, json_t **bot, err_t *e)
{
    sq_t *s = (sq_t *)base;
    struct bot_args a = {.id = id};
    return backend_deliver(tx_read(s, do_bot_get, &a, e), &a.bot, bot);
}

static int do_bot_list(sq_t *s, void *arg, err_t *e)
{
    struct bot_args *a = arg;
    json_t *bot;
    size_t i;
    int rc = fetch(s, ST_bot_list, REC_KIND_BOT, false, &a->bots, e, "");

    json_array_foreach(a->bots, i, bot)
    {
        if (rc < 0)
            break;
        rc = add_bot_jobs(s, bot, e);
    }
    return rc < 0 ? rc : JOBD_OK;
}

static int sq_bot_list(store_t *base, json_t **bots, err_t *e)
{
    sq_t *s = (sq_t *)base;
    struct bot_args a = {0};
    return backend_deliver(tx_read(s, do_bot_list, &a, e), &a.bots, bots);
}

/* ---- datalake outbox -------------------------------------------------------- */

struct export_args {
    int limit;
    const json_t *ids, *files;
    json_t *out;
    store_export_t *batch;
};

/* Each job comes as the line SQLite's json_object() wrote ({job_json}):
 * building a jansson record and writing it out cost the writer more than
 * the rest of its work, all of it inside the connection's lock. */
static int do_export_pending(sq_t *s, void *arg, err_t *e)
{
    struct export_args *a = arg;
    sqlite3_stmt *st = s->st[ST_export_pending];
    int rc = query(s, ST_export_pending, e, "i", (int64_t)a->limit);

    while (rc >= 0 && (rc = step(s, ST_export_pending, e)) == 1) {
        const char *id = (const char *)sqlite3_column_text(st, 0);
        const char *line = (const char *)sqlite3_column_text(st, 2);
        if (!id || !line)
            return err_set(e, JOBD_EDB, "export_pending: a job without %s",
                           id ? "a record (json_object gave NULL)" : "an id");
        backend_export_add(a->batch, id, sqlite3_column_type(st, 1) == SQLITE_INTEGER,
                           sqlite3_column_int64(st, 1), line, (size_t)sqlite3_column_bytes(st, 2));
    }
    return rc;
}

static int sq_export_pending(store_t *base, const char *server_id, int limit,
                             store_export_t **batch, err_t *e)
{
    sq_t *s = (sq_t *)base;
    struct export_args a = {.limit = limit, .batch = backend_export_new()};
    int rc = tx_read(s, do_export_pending, &a, e);

    if (rc != JOBD_OK) {
        store_export_free(a.batch);
        return rc;
    }
    *batch = a.batch;
    return JOBD_OK;
}

static int do_export_mark(sq_t *s, void *arg, err_t *e)
{
    struct export_args *a = arg;
    const char *path;
    json_t *v;
    size_t i;
    int rc = 0;

    json_array_foreach(a->ids, i, v)
    {
        if (!json_is_string(v))
            return err_set(e, JOBD_EINTERNAL, "export_mark: ids[%zu] is not a string", i);
        rc = run(s, ST_export_dequeue, e, "t", json_string_value(v));
        if (rc < 0)
            return rc;
        /* Retried (do_retry took it out of the queue) after it was
         * written: what was written is stale, so refuse, and the writer cuts
         * its files back and exports again without it, as on PostgreSQL. */
        if (rc == 0)
            return err_set(e, JOBD_EDB,
                           "export_mark: job %s is no longer waiting for the datalake (it was "
                           "retried after it was written)",
                           json_string_value(v));
    }
    json_object_foreach((json_t *)a->files, path, v)
    {
        if (!json_is_integer(v))
            return err_set(e, JOBD_EINTERNAL, "export_file_set: size of %s is not an integer",
                           path);
        rc = run(s, ST_export_file_set, e, "ti", path, (int64_t)json_integer_value(v));
        if (rc < 0)
            return rc;
    }
    return rc;
}

static int sq_export_mark(store_t *base, const char *server_id, const json_t *ids,
                          const json_t *files, err_t *e)
{
    sq_t *s = (sq_t *)base;
    struct export_args a = {.ids = ids, .files = files};
    return tx_write(s, do_export_mark, &a, e);
}

static int do_export_files(sq_t *s, void *arg, err_t *e)
{
    struct export_args *a = arg;
    sqlite3_stmt *st = s->st[ST_export_files];
    int rc = query(s, ST_export_files, e, "");

    a->out = json_object();
    while (rc >= 0 && (rc = step(s, ST_export_files, e)) == 1)
        json_object_set_new(a->out, (const char *)sqlite3_column_text(st, 0),
                            json_integer(sqlite3_column_int64(st, 1)));
    return rc;
}

static int sq_export_files(store_t *base, json_t **files, err_t *e)
{
    sq_t *s = (sq_t *)base;
    struct export_args a = {0};
    return backend_deliver(tx_read(s, do_export_files, &a, e), &a.out, files);
}

const store_backend_t store_sqlite_backend = {
    .name = "sqlite",
    .open = sq_open,
    .free = sq_free,
    .schema_version = sq_schema_version,
    .migrate_up = sq_migrate_up,
    .migrate_down = sq_migrate_down,
    .prepare = sq_prepare,
    .set_sync = sq_set_sync,
    .ping = sq_ping,
    .watch = sq_watch,
    .job_create = sq_job_create,
    .job_get = sq_job_get,
    .job_list = sq_job_list,
    .job_claim = sq_job_claim,
    .job_create_claim = sq_job_create_claim,
    .job_complete = sq_job_complete,
    .job_fail = sq_job_fail,
    .job_report_many = sq_job_report_many,
    .job_release = sq_job_release,
    .job_retry = sq_job_retry,
    .job_cancel = sq_job_cancel,
    .job_explain = sq_job_explain,
    .schedule_due = sq_schedule_due,
    .lease_expire = sq_lease_expire,
    .job_purge = sq_job_purge,
    .stats = sq_stats,
    .bot_register = sq_bot_register,
    .bot_heartbeat = sq_bot_heartbeat,
    .bot_sweep = sq_bot_sweep,
    .bot_get = sq_bot_get,
    .bot_list = sq_bot_list,
    .export_pending = sq_export_pending,
    .export_mark = sq_export_mark,
    .export_files = sq_export_files,
};
