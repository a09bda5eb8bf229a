/*
 * store_pg.c - the PostgreSQL backend of store.h, on libpq, for several jobd
 * servers sharing one database.  Claims take rows with FOR UPDATE SKIP LOCKED
 * and every other change to a job locks its row first, so that no job is
 * held by two bots; the datalake export is claimed per server.  Every SQLite
 * rule holds here too: migrations are versioned and embedded, and every
 * statement is prepared against the live schema before the first call.
 *
 * Connections: a pool of up to POOL_MAX, opened on demand, each with every
 * statement prepared.  A pool rather than one connection under a mutex: a
 * call waits on the network and on row locks held by other servers, and one
 * slow call (a stats scan, a claim waiting for a lock) must not stall every
 * other thread.  A connection PostgreSQL dropped (a restart) is re-opened and
 * re-prepared by the next call that takes it, so jobd reconnects by itself;
 * until the database answers, calls fail with JOBD_EDBDOWN and libpq's
 * reason.  The connection string is never logged or put in a message: it may
 * hold a password.
 *
 * Round trips: a transaction's statements go in libpq pipelines (pipe_run),
 * its BEGIN with the first and, where the caller knows them to be the last,
 * its COMMIT with the last.  A submit, a claim, a report with its next claim,
 * a read (a job, a page of jobs, the bots, the stats) is one round trip; a
 * heartbeat two.  They are most of a request's time when PostgreSQL is a
 * network hop away.  New
 * pending jobs are announced to the other servers after the commit, from a
 * connection of the announcer's own (announce(); migration 0007).
 */
#include "store_int.h"
#include "backend.h"
#include "clock.h"
#include "id.h"
#include "log.h"
#include "migrations.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Connections a store opens at most: one per HTTP worker (4 by default),
 * the ticker, the datalake writer and spares.  store_watch's LISTEN
 * connection and the announcer's come on top. */
#define POOL_MAX 8

/* Random bytes in a lease token (shown as twice as many hex digits). */
#define LEASE_BYTES 16

/* Key of the advisory lock taken while migrating ("jobd" in ASCII), so that
 * servers starting together apply each migration once. */
#define MIGRATE_LOCK 0x6a6f6264

/* An export claimed longer ago than this by a server that has not marked it
 * may be taken by another: the first one went away for good.  Its own late
 * mark is then refused (export_mark counts), so the job is still written by
 * one server only. */
#define EXPORT_TAKEOVER_MS (10 * 60 * 1000)

/* Most parameters of a statement. */
#define MAX_PARAMS 12

/* The channel of cross-server wake-ups: migration 0001's trigger notifies
 * it, with the job's operation, whenever a job becomes pending. */
#define CHANNEL "jobd_jobs"

/*
 * Every statement the backend runs: X(name, sql).  {job}, {bot} and
 * {attempt} stand for the column lists of record.h (backend_sql).  The name
 * is what an error names.
 *
 * Locking: every statement that changes a job either locks its row first
 * (job_lock, FOR UPDATE), picks rows with FOR UPDATE SKIP LOCKED
 * (job_claim, lease_expired, export_claim), or changes only rows whose
 * lease it matches after their lock (job_finish_many, in id order), so that
 * two servers never act on one job at once and a claim never waits for
 * another.  A transaction that waits for rows locks jobs before bots
 * (finish: the job, then the bot's counts; heartbeat and sweep: the bot's
 * jobs, then the bot), so that no two wait for each other.  A claim locks
 * its bot first, but never waits for a job (SKIP LOCKED).  The datalake's
 * export_queue holds a job exactly while it is finished and not yet in the
 * datalake: the statements that finish a job (job_finish, job_finish_many,
 * job_cancel) insert its row, job_retry deletes it, each under the job's
 * lock; export_claim and export_mark lock only export_queue rows, never a
 * job.
 *
 * Checklist: job_claim and queue_ahead walk jobs_claim, lease_expired and
 * processing_jobs jobs_processing_bot, export_claim export_queue_order, schedule_due
 * jobs_scheduled, job_purge jobs_finished and bots_stale bots_live
 * (migrations/postgresql,
 * docs/operations.md "Indexes"); their WHERE clauses repeat the indexes'
 * predicates so that the planner can use them.  Change them together, and
 * check with EXPLAIN.  job_claim's UPDATE finds the jobs it picked by
 * primary key (id = ANY) and repeats no status test: they are locked and
 * pending, and a test on status would let the planner walk the whole queue
 * (jobs_claim) for every claim when its statistics say the queue is short.
 * job_finish_many likewise tests no status: a job with a lease is
 * processing (the CHECK on jobs), and a test on status would let it walk
 * every processing job (jobs_status) for each batch.
 *
 * Plans: every statement is an index walk by design, so jobd's sessions
 * plan each statement once (plan_cache_mode = force_generic_plan) with
 * sequential scans off (enable_seqscan = off; prepare_all).  Both measured
 * on bench/run's e2e workload on a new database, whose tables are empty
 * when the first plans are made and hold 100,000 jobs a second later:
 * - PostgreSQL's default re-planned the CTE statements on every call
 *   (their custom plans look cheaper than a generic one), 13 % of its CPU;
 * - and a plan made while a table looked empty walked the whole table long
 *   after it had grown, until autovacuum analyzed it: job_finish_many's
 *   check of the attempt (EXISTS) and export_claim's read of the jobs
 *   (IN) became hash joins over every attempt and every job, ~1 ms per
 *   report and 22 ms per export batch with 10,000 jobs done.
 * stats_jobs, which counts every job, is the exception: do_stats runs it
 * with sequential scans on.
 * Rows picked by a subquery are then found by key, `= ANY (ARRAY(...))`,
 * not with IN, EXISTS or a join: a key lookup stays one whatever the
 * statistics say.  A job's own lease and bot fence a report (the lease is
 * set while its attempt runs and cleared when the attempt ends), and
 * job_finish_many locks the reported jobs in id order (l) before it
 * changes them, whatever order its plan visits them in.
 */
/* job_finish_many's statement, answering `out` for each job it finished. */
#define FINISH_MANY(out)                                                                           \
    "WITH v AS (SELECT r->>'id' AS r_id, r->>'lease' AS r_lease, (r->>'ok')::boolean AS r_ok,"     \
    "  r->>'result' AS r_result, r->>'error' AS r_error, (r->>'duration_ms')::bigint AS r_ms"      \
    "  FROM jsonb_array_elements($3::jsonb) AS r),"                                                \
    " l AS (SELECT id FROM jobs WHERE id = ANY (ARRAY(SELECT r_id FROM v)) AND bot_id = $1"        \
    "  ORDER BY id FOR UPDATE),"                                                                   \
    " j AS (UPDATE jobs SET status = CASE WHEN r_ok THEN 'succeeded' ELSE 'failed' END,"           \
    "  result = r_result::json, error = r_error, duration_ms = r_ms, finished_at = $2,"            \
    "  failures = failures + CASE WHEN r_ok THEN 0 ELSE 1 END, lease = NULL,"                      \
    "  lease_expires_at = NULL FROM v WHERE id = ANY (ARRAY(SELECT id FROM l)) AND id = r_id"      \
    "  AND lease = r_lease AND bot_id = $1 RETURNING {job}, r_lease, r_ok, r_error),"              \
    " a AS (UPDATE attempts SET outcome = CASE WHEN j.r_ok THEN 'succeeded' ELSE 'failed' END,"    \
    "  ended_at = $2, error = CASE WHEN j.r_ok THEN NULL ELSE j.r_error END FROM j"                \
    "  WHERE attempts.job_id = j.id AND attempts.lease = j.r_lease"                                \
    "  AND attempts.outcome = 'running'),"                                                         \
    " q AS (INSERT INTO export_queue (job_id, finished_at) SELECT id, $2 FROM j),"                 \
    " b AS (UPDATE bots SET jobs_succeeded = jobs_succeeded + s.ok,"                               \
    "  jobs_failed = jobs_failed + s.failed FROM (SELECT count(*) FILTER (WHERE r_ok) AS ok,"      \
    "  count(*) FILTER (WHERE NOT r_ok) AS failed FROM j) AS s"                                    \
    "  WHERE bots.id = $1 AND s.ok + s.failed > 0)"                                                \
    " SELECT " out " FROM j"

/* The claim: see STATEMENTS' comment on locking.  `out` is the columns it
 * answers with for each job, before the job's lease. */
#define CLAIM(out)                                                                                 \
    "WITH p AS (SELECT c.id AS pick, row_number() OVER (ORDER BY c.priority DESC, c.created_at,"   \
    "  c.id) AS n FROM (SELECT DISTINCT op FROM unnest($1::text[]) AS u (op)"                      \
    "   WHERE EXISTS (SELECT FROM bots WHERE id = $4)) AS o,"                                      \
    "  LATERAL (SELECT id, priority, created_at FROM jobs"                                         \
    "   WHERE status = 'pending' AND operation = o.op"                                             \
    "   ORDER BY priority DESC, created_at, id LIMIT $2 FOR UPDATE SKIP LOCKED) AS c"              \
    "  ORDER BY n LIMIT $2),"                                                                      \
    " b AS (SELECT name FROM bots WHERE id = $4),"                                                 \
    " j AS (UPDATE jobs SET status = 'processing', attempts = attempts + 1, claimed_at = $3,"      \
    "  bot_id = $4, bot_name = (SELECT name FROM b), lease_expires_at = $6, progress = NULL,"      \
    "  lease = ($5::text[])[(SELECT n FROM p WHERE pick = id)::integer]"                           \
    "  WHERE id = ANY (ARRAY(SELECT pick FROM p)) RETURNING {job}, lease AS claim_lease),"         \
    " a AS (INSERT INTO attempts (job_id, attempt, lease, bot_id, bot_name, started_at,"           \
    "  outcome) SELECT id, attempts, claim_lease, $4, (SELECT name FROM b), $3, 'running'"         \
    "  FROM j)"                                                                                    \
    " SELECT " out ", claim_lease FROM j ORDER BY priority DESC, created_at, id"

#define STATEMENTS(X)                                                                              \
    X(ping, "SELECT max(version) FROM schema_version")                                             \
    X(job_get, "SELECT {job} FROM jobs WHERE id = $1")                                             \
    X(job_by_key, "SELECT {job} FROM jobs WHERE idempotency_key = $1")                             \
    X(job_insert,                                                                                  \
      "INSERT INTO jobs (id, operation, input, priority, status, attempts, created_at,"            \
      " max_attempts, run_at, idempotency_key) VALUES ($1, $2, $3::json, $4, $5, 0, $6, $7,"       \
      " nullif($8::bigint, 0), $9)"                                                                \
      " ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING"                \
      " RETURNING {job}")                                                                          \
    X(job_insert_many,                                                                             \
      "WITH n AS (INSERT INTO jobs (id, operation, input, priority, status, attempts, created_at," \
      "  max_attempts, run_at) SELECT s->>'id', s->>'operation', (s->>'input')::json,"             \
      "  (s->>'priority')::bigint, s->>'status', 0, $2, (s->>'max_attempts')::bigint,"             \
      "  nullif((s->>'run_at')::bigint, 0) FROM jsonb_array_elements($1::jsonb) AS s"              \
      "  RETURNING {job})"                                                                         \
      " SELECT {job} FROM n ORDER BY id")                                                          \
    X(job_history, "SELECT {attempt} FROM attempts WHERE job_id = $1 ORDER BY attempt")            \
    X(job_events, "SELECT {event} FROM job_events WHERE job_id = $1 ORDER BY seq")                 \
    X(event_insert, "INSERT INTO job_events (job_id, at, action, reason) VALUES ($1, $2, $3, $4)") \
    X(job_order, "SELECT operation, priority, created_at, failures, max_attempts,"                 \
                 " lease_expires_at FROM jobs WHERE id = $1")                                      \
    X(live_bots, "SELECT count(*) FROM bots WHERE state IN ('ready', 'processing')"                \
                 " AND operations @> jsonb_build_array($1::text)")                                 \
    X(job_list, "SELECT {job} FROM jobs WHERE id > $1 AND ($2::text IS NULL OR operation = $2)"    \
                " ORDER BY id LIMIT $3")                                                           \
    X(job_list_status, "SELECT {job} FROM jobs WHERE status = $4 AND id > $1"                      \
                       " AND ($2::text IS NULL OR operation = $2) ORDER BY id LIMIT $3")           \
    X(job_lock, "SELECT status, lease FROM jobs WHERE id = $1 FOR UPDATE")                         \
    X(bot_seen, "WITH u AS (UPDATE bots SET last_seen_at = $2"                                     \
                " WHERE id = $1 AND last_seen_at < $2::bigint - 1000 RETURNING name)"              \
                " SELECT name FROM u UNION ALL SELECT name FROM bots"                              \
                " WHERE id = $1 AND NOT EXISTS (SELECT FROM u)")                                   \
    X(queue_ahead, "SELECT count(*) FROM jobs WHERE status = 'pending' AND operation = $1"         \
                   " AND (priority > $2 OR (priority = $2 AND (created_at < $3"                    \
                   " OR (created_at = $3 AND id < $4))))")                                         \
    X(job_claim, CLAIM("{job}"))                                                                   \
    X(job_claim_brief, CLAIM("{summary}"))                                                         \
    X(attempt_by_lease, "SELECT job_id, bot_id, outcome, ended_at, error FROM attempts"            \
                        " WHERE job_id = $1 AND lease = $2")                                       \
    X(attempt_end, "UPDATE attempts SET outcome = $3, ended_at = $4, error = $5"                   \
                   " WHERE job_id = $1 AND lease = $2 AND outcome = 'running'")                    \
    X(job_finish,                                                                                  \
      "WITH j AS (UPDATE jobs SET status = $3, result = $4::json, error = $5, duration_ms = $6,"   \
      "  finished_at = $7, failures = failures + $8, lease = NULL, lease_expires_at = NULL"        \
      "  WHERE id = $1 AND lease = $2 AND status = 'processing' RETURNING id, finished_at)"        \
      " INSERT INTO export_queue (job_id, finished_at) SELECT id, finished_at FROM j")             \
    X(job_finish_many, FINISH_MANY("{job}"))                                                       \
    X(job_finish_many_brief, FINISH_MANY("id, status"))                                            \
    X(job_finish_many_summary, FINISH_MANY("{summary}"))                                           \
    X(job_reschedule, "UPDATE jobs SET status = 'scheduled', run_at = $3, error = $4,"             \
                      " duration_ms = $5, failures = failures + 1, claimed_at = NULL,"             \
                      " bot_id = NULL, bot_name = NULL, lease = NULL, lease_expires_at = NULL,"    \
                      " progress = NULL WHERE id = $1 AND lease = $2 AND status = 'processing'")   \
    X(job_takeback, "UPDATE jobs SET status = 'pending', claimed_at = NULL, bot_id = NULL,"        \
                    " bot_name = NULL, lease = NULL, lease_expires_at = NULL, progress = NULL,"    \
                    " lost = lost + 1 WHERE id = $1 AND status = 'processing'")                    \
    X(job_cancel,                                                                                  \
      "WITH j AS (UPDATE jobs SET status = 'cancelled', finished_at = $2, error = $3,"             \
      "  lease = NULL, lease_expires_at = NULL"                                                    \
      "  WHERE id = $1 AND status IN ('pending', 'scheduled', 'processing') RETURNING id)"         \
      " INSERT INTO export_queue (job_id, finished_at) SELECT id, $2 FROM j")                      \
    X(job_retry, "WITH q AS (DELETE FROM export_queue WHERE job_id = $1)"                          \
                 " UPDATE jobs SET status = 'pending', failures = 0, run_at = NULL,"               \
                 " finished_at = NULL, result = NULL, error = NULL, duration_ms = NULL,"           \
                 " claimed_at = NULL, bot_id = NULL, bot_name = NULL, progress = NULL"             \
                 " WHERE id = $1 AND status IN ('failed', 'cancelled')")                           \
    X(schedule_due, "UPDATE jobs SET status = 'pending' WHERE id = ANY (ARRAY(SELECT id FROM jobs" \
                    " WHERE status = 'scheduled' AND run_at <= $1 FOR UPDATE SKIP LOCKED))")       \
    X(bot_done, "UPDATE bots SET jobs_succeeded = jobs_succeeded + $2,"                            \
                " jobs_failed = jobs_failed + $3 WHERE id = $1")                                   \
    X(bot_lost, "UPDATE bots SET jobs_lost = jobs_lost + 1"                                        \
                " WHERE id = (SELECT bot_id FROM attempts WHERE job_id = $1 AND lease = $2)")      \
    X(lease_expired, "SELECT id, lease, lease_expires_at FROM jobs"                                \
                     " WHERE status = 'processing' AND lease_expires_at < $1"                      \
                     " FOR UPDATE SKIP LOCKED")                                                    \
    X(lease_renew, "UPDATE jobs SET lease_expires_at = $2"                                         \
                   " WHERE bot_id = $1 AND status = 'processing'")                                 \
    X(lease_renew_one, "UPDATE jobs SET lease_expires_at = $3,"                                    \
                       " progress = coalesce($4::json, progress)"                                  \
                       " WHERE id = $1 AND bot_id = $2 AND status = 'processing'")                 \
    X(lease_renew_many,                                                                            \
      "UPDATE jobs SET lease_expires_at = $3, progress = coalesce(h_progress::json, progress)"     \
      " FROM (SELECT h->>'id' AS h_id, h->>'progress' AS h_progress"                               \
      "  FROM jsonb_array_elements($2::jsonb) AS h ORDER BY 1) AS h"                               \
      " WHERE id = h_id AND bot_id = $1 AND status = 'processing' RETURNING id")                   \
    X(my_attempt, "SELECT outcome FROM attempts WHERE job_id = $1 AND bot_id = $2"                 \
                  " ORDER BY attempt DESC LIMIT 1")                                                \
    X(bot_jobs, "SELECT id, lease FROM jobs WHERE bot_id = $1 AND status = 'processing'"           \
                " ORDER BY id")                                                                    \
    X(processing_jobs, "SELECT bot_id, id FROM jobs WHERE status = 'processing'"                   \
                       " ORDER BY bot_id, id")                                                     \
    X(bot_jobs_lock, "SELECT id, lease FROM jobs WHERE bot_id = $1 AND status = 'processing'"      \
                     " ORDER BY id FOR UPDATE")                                                    \
    X(bots_stale, "SELECT id, name, last_seen_at, state FROM bots"                                 \
                  " WHERE state IN ('ready', 'processing', 'unhealthy') AND last_seen_at < $1")    \
    X(bot_set_state, "UPDATE bots SET state = $2 WHERE id = $1")                                   \
    X(job_purge, "WITH p AS (SELECT id FROM jobs"                                                  \
                 "  WHERE status IN ('succeeded', 'failed', 'cancelled')"                          \
                 "  AND finished_at < $1"                                                          \
                 "  AND finished_at <= coalesce((SELECT min(finished_at) FROM export_queue), $1)"  \
                 "  AND NOT EXISTS (SELECT 1 FROM export_queue WHERE job_id = jobs.id)"            \
                 "  ORDER BY finished_at, id LIMIT $2 FOR UPDATE SKIP LOCKED),"                    \
                 " a AS (DELETE FROM attempts WHERE job_id = ANY (ARRAY(SELECT id FROM p))),"      \
                 " v AS (DELETE FROM job_events WHERE job_id = ANY (ARRAY(SELECT id FROM p)))"     \
                 " DELETE FROM jobs WHERE id = ANY (ARRAY(SELECT id FROM p))")                     \
    X(stats_jobs, "SELECT operation, status, count(*) FROM jobs GROUP BY operation, status")       \
    X(stats_bots, "SELECT state, count(*) FROM bots GROUP BY state")                               \
    X(bot_insert, "INSERT INTO bots (id, name, operations, state, registered_at, last_seen_at)"    \
                  " VALUES ($1, $2, $3::jsonb, 'ready', $4, $4)")                                  \
    X(bot_heartbeat, "UPDATE bots SET state = $2, last_seen_at = $3 WHERE id = $1")                \
    X(bot_get, "SELECT {bot} FROM bots WHERE id = $1")                                             \
    X(bot_list, "SELECT {bot} FROM bots ORDER BY registered_at, id")                               \
    X(export_claim,                                                                                \
      "WITH c AS (UPDATE export_queue SET owner = $1, claimed_at = $3 WHERE job_id = ANY (ARRAY("  \
      "  SELECT job_id FROM export_queue"                                                          \
      "   WHERE owner IS NULL OR owner = $1 OR claimed_at < $4"                                    \
      "   ORDER BY finished_at, job_id LIMIT $2 FOR UPDATE SKIP LOCKED)) RETURNING job_id)"        \
      " SELECT {job} FROM jobs WHERE id = ANY (ARRAY(SELECT job_id FROM c))"                       \
      " ORDER BY finished_at, id")                                                                 \
    X(export_mark, "DELETE FROM export_queue WHERE job_id = ANY ($1::text[]) AND owner = $2")      \
    X(export_file_set, "INSERT INTO datalake_files (path, size) VALUES ($1, $2)"                   \
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

/* One connection of the pool. */
typedef struct conn {
    PGconn *pg;       /* NULL until first needed */
    struct pg *owner; /* the store whose pool it is in */
    unsigned gen;     /* the pool generation its statements were prepared for; 0: none */
    unsigned want;    /* the generation the current call needs; 0: no statements */
    bool busy;        /* taken by a call */
    /* The current transaction (transact()): */
    const char *begin; /* its BEGIN, until sent with its first statements; NULL: sent */
    bool sync_off;     /* with SET LOCAL synchronous_commit = off */
    bool writes;       /* may change something (tx_write), so never sent twice with its commit */
    bool committed;    /* its last statements carried its commit (pipe_run) */
    char *pending;     /* the operations its commit made pending (pipe_run), or NULL */
} conn_t;

/* The LISTEN side of store_watch. */
typedef struct watch {
    pthread_t thread;
    bool running;
    int stop[2]; /* a pipe: a byte written to stop[1] ends the thread */
    PGconn *pg;
    store_watch_fn fn;
    void *arg;
} watch_t;

/* The sender of cross-server wake-ups.  A commit of jobd's that made jobs
 * pending hands their operations here (announce()), and this thread sends
 * one NOTIFY per operation from a connection of its own, in transactions
 * that do not wait for their WAL flush: a notification is not durable
 * anyway, and a NOTIFY inside the job's own transaction made PostgreSQL
 * serialize every such commit with its flush (migration 0007).  Operations
 * handed over while it sends go out together in its next round. */
typedef struct announcer {
    pthread_mutex_t mu; /* guards everything below but the inside of pg */
    pthread_cond_t cond;
    pthread_t thread;
    bool running; /* the thread was started (on the first announcement) */
    bool stop;
    char *ops; /* operations to announce, each once and '\n'-terminated; NULL: none */
    size_t len;
    PGconn *pg;     /* the thread's own; NULL until connected */
    atomic_int pid; /* pg's backend process id, 0 while not connected: the listener
                     * skips what this server announced itself (see listener()) */
} announcer_t;

typedef struct pg {
    store_t base; /* first: store.c sees only this */
    char *conninfo;
    pthread_mutex_t mu; /* guards everything below but the inside of a busy conn */
    pthread_cond_t freed;
    bool prepared;        /* store_prepare succeeded on the current schema */
    unsigned gen;         /* bumped by each store_prepare: connections re-prepare */
    atomic_bool sync_off; /* STORE_SYNC_NORMAL: commits do not wait for the WAL flush */
    conn_t conns[POOL_MAX];
    watch_t watch;
    announcer_t announce;
} pg_t;

#define LATEST (store_pg_migrations_count)

/* ---- errors -------------------------------------------------------------- */

/* True for the SQLSTATEs after which the database cannot be used at all:
 * connection failures (08), operator intervention such as an admin shutdown
 * (57P01) or crash (57P02), and insufficient resources (53: disk full, too
 * many connections).  NULL means libpq failed before the server answered. */
static bool state_down(const char *state)
{
    return !state || strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0 ||
           strncmp(state, "53", 2) == 0;
}

/* libpq's message `msg` on one line, in buf: its messages end with a
 * newline and indent a hint on the next. */
static const char *one_line(const char *msg, char *buf, size_t len)
{
    size_t n = 0;
    bool space = false;

    for (; msg && *msg && n + 1 < len; msg++) {
        if (isspace((unsigned char)*msg)) {
            space = n > 0;
            continue;
        }
        if (space && n + 2 < len)
            buf[n++] = ' ';
        space = false;
        buf[n++] = *msg;
    }
    buf[n] = '\0';
    return n ? buf : "no reason given";
}

/* Translate the failure of `what` on c (r: its result, NULL if libpq had
 * none) to JOBD_EDBDOWN when the database cannot be used, with libpq's
 * reason, or JOBD_EDB when it refused the statement, with its message and
 * the column or constraint it names. */
static int pgerr(conn_t *c, const PGresult *r, const char *what, err_t *e)
{
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    const char *primary = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    const char *column, *constraint;
    char buf[400];

    if (PQstatus(c->pg) != CONNECTION_OK || state_down(state))
        return err_set(e, JOBD_EDBDOWN, "%s: %s", what,
                       one_line(primary ? primary : PQerrorMessage(c->pg), buf, sizeof buf));
    column = PQresultErrorField(r, PG_DIAG_COLUMN_NAME);
    constraint = PQresultErrorField(r, PG_DIAG_CONSTRAINT_NAME);
    return err_set(e, JOBD_EDB, "%s: %s%s%s%s%s (SQLSTATE %s)", what,
                   one_line(primary ? primary : PQresultErrorMessage(r), buf, sizeof buf),
                   column ? ", column " : "", column ? column : "",
                   constraint ? ", constraint " : "", constraint ? constraint : "", state);
}

static const char *str(const char *v)
{
    return v ? v : "";
}

/* ---- statements ---------------------------------------------------------- */

/* The parameters of one statement in libpq's text format. */
typedef struct params {
    int n;
    const char *v[MAX_PARAMS];
    char *owned[MAX_PARAMS]; /* what v points to that was built here */
    char num[MAX_PARAMS][24];
} params_t;

static void params_free(params_t *p)
{
    for (int i = 0; i < p->n; i++)
        free(p->owned[i]);
    p->n = 0; /* freed: a second call frees nothing */
}

/* The array of strings `arr` as a PostgreSQL array literal, {"a","b"}: each
 * element quoted, with " and \ escaped.  A new string. */
static char *array_literal(const json_t *arr)
{
    char *out = NULL;
    size_t len = 0, i;
    const json_t *v;
    FILE *f = open_memstream(&out, &len);

    if (!f)
        abort();
    fputc('{', f);
    json_array_foreach(arr, i, v)
    {
        const char *t = str(json_string_value(v));
        fputs(i ? ",\"" : "\"", f);
        for (; *t; t++) {
            if (*t == '"' || *t == '\\')
                fputc('\\', f);
            fputc(*t, f);
        }
        fputc('"', f);
    }
    fputc('}', f);
    if (fclose(f) != 0)
        abort();
    return out;
}

/* Fill p from the variadic arguments, one per character of types: 't'
 * const char * (NULL is SQL NULL), 'i' int64_t, 'j' const json_t * as JSON
 * text (NULL is SQL NULL), 'a' const json_t * array of strings as a text[]. */
static int vparams(params_t *p, enum stmt_id id, err_t *e, const char *types, va_list ap)
{
    memset(p, 0, sizeof *p);
    for (; types[p->n]; p->n++) {
        int i = p->n;
        const json_t *json;

        if (i == MAX_PARAMS)
            abort();
        switch (types[i]) {
        case 't':
            p->v[i] = va_arg(ap, const char *);
            break;
        case 'i':
            snprintf(p->num[i], sizeof p->num[i], "%lld", (long long)va_arg(ap, int64_t));
            p->v[i] = p->num[i];
            break;
        case 'j':
            json = va_arg(ap, const json_t *);
            if (!json)
                break;
            p->v[i] = p->owned[i] = json_dumps(json, JSON_ENCODE_ANY | JSON_COMPACT);
            if (!p->owned[i]) {
                p->n++;
                params_free(p);
                return err_set(e, JOBD_EINTERNAL, "%s: parameter %d cannot be encoded as JSON",
                               stmts[id].name, i + 1);
            }
            break;
        case 'a':
            p->v[i] = p->owned[i] = array_literal(va_arg(ap, const json_t *));
            break;
        default:
            abort();
        }
    }
    return JOBD_OK;
}

/* ---- pipelines ------------------------------------------------------------ */

/* One statement of a pipeline (pipe_run): a prepared statement with its
 * parameters, or SQL text without any. */
typedef struct step {
    enum stmt_id id;
    const char *sql; /* instead of id, when not NULL */
    params_t p;
    PGresult *r; /* OUT: its result (PQclear() it), or NULL if it did not run */
} step_t;

/* Statement id with parameters from the variadic arguments (see vparams). */
static int step_set(step_t *st, enum stmt_id id, err_t *e, const char *types, ...)
{
    va_list ap;
    int rc;

    *st = (step_t){.id = id};
    va_start(ap, types);
    rc = vparams(&st->p, id, e, types, ap);
    va_end(ap);
    return rc;
}

static void steps_free(step_t *steps, int n)
{
    for (int i = 0; i < n; i++) {
        params_free(&steps[i].p);
        PQclear(steps[i].r);
        steps[i].r = NULL;
    }
}

/* libpq failed in the middle of a pipeline: the connection's state is
 * unknown, so it is closed, and the next call that takes it connects again
 * (ready()). */
static int pipe_broken(conn_t *c, const char *what, err_t *e)
{
    char buf[400];
    int rc =
        err_set(e, JOBD_EDBDOWN, "%s: %s", what, one_line(PQerrorMessage(c->pg), buf, sizeof buf));

    PQfinish(c->pg);
    c->pg = NULL;
    c->gen = 0;
    return rc;
}

/* Send one query of a pipeline. */
static bool pipe_send(conn_t *c, const char *sql, const step_t *st)
{
    if (sql)
        return PQsendQueryParams(c->pg, sql, 0, NULL, NULL, NULL, NULL, 0);
    return PQsendQueryPrepared(c->pg, stmts[st->id].name, st->p.n, st->p.v, NULL, NULL, 0);
}

/* Read the result of the next query of a pipeline: *r, the first one (NULL
 * if libpq had none: the connection failed), read up to the NULL that ends
 * the query. */
static void pipe_result(conn_t *c, PGresult **r)
{
    PGresult *more;

    *r = PQgetResult(c->pg);
    if (*r)
        while ((more = PQgetResult(c->pg)))
            PQclear(more);
}

/* The query of a commit that also reads which operations the transaction
 * made pending: migration 0007's trigger notes them in jobd.pending, for a
 * session that set jobd.announce (prepare_all). */
static const char read_pending[] = "SELECT current_setting('jobd.pending', true)";

/* The BEGIN of a write transaction: READ COMMITTED with the row locks of
 * each statement (see STATEMENTS), which is what keeps two servers apart. */
static const char begin_write[] = "BEGIN ISOLATION LEVEL READ COMMITTED";

/* Note the '\n'-terminated operations in `lines` as made pending by c's
 * commits (a call may commit more than once: do_report_many). */
static void pending_add(conn_t *c, const char *lines)
{
    size_t had = c->pending ? strlen(c->pending) : 0, more = strlen(lines);

    if (!(c->pending = realloc(c->pending, had + more + 1)))
        abort();
    memcpy(c->pending + had, lines, more + 1);
}

/* Run the n steps on c in one round trip, preceded by the transaction's
 * BEGIN if it is not sent yet (c->begin), and followed with `commit` by its
 * commit (then c->committed, and c->pending).  Returns JOBD_OK, or the
 * failure of the first step that failed; the steps after it did not run,
 * and the transaction is then aborted: transact() rolls it back.
 *
 * A pooled connection PostgreSQL dropped (a restart) fails the first round
 * trip of a transaction, when nothing is done yet: it is made again and the
 * round trip sent once more, so that the first call after a restart does
 * not fail. */
static int ready(pg_t *s, conn_t *c, err_t *e);

static int pipe_run(conn_t *c, step_t *steps, int n, bool commit, err_t *e)
{
    const char *begin = c->begin;
    int rc = JOBD_OK, first = 1;
    PGresult *r;

again:
    if (!PQenterPipelineMode(c->pg))
        return pipe_broken(c, "pipeline", e);
    if (begin && (!pipe_send(c, begin, NULL) ||
                  (c->sync_off && !pipe_send(c, "SET LOCAL synchronous_commit = off", NULL))))
        goto out_broken;
    for (int i = 0; i < n; i++)
        if (!pipe_send(c, steps[i].sql, &steps[i]))
            goto out_broken;
    if (commit && (!pipe_send(c, read_pending, NULL) || !pipe_send(c, "COMMIT", NULL)))
        goto out_broken;
    if (!PQpipelineSync(c->pg))
        goto out_broken;

    for (int i = 0; begin && i < 1 + c->sync_off; i++) {
        pipe_result(c, &r);
        if (!r)
            goto out_broken;
        if (PQresultStatus(r) != PGRES_COMMAND_OK && rc == JOBD_OK)
            rc = pgerr(c, r, "begin", e);
        PQclear(r);
    }
    for (int i = 0; i < n; i++) {
        ExecStatusType st;
        pipe_result(c, &steps[i].r);
        if (!steps[i].r)
            goto out_broken;
        st = PQresultStatus(steps[i].r);
        if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
            if (rc == JOBD_OK)
                rc = pgerr(c, steps[i].r, steps[i].sql ? steps[i].sql : stmts[steps[i].id].name, e);
            PQclear(steps[i].r);
            steps[i].r = NULL;
        }
    }
    for (int i = 0; commit && i < 2; i++) {
        pipe_result(c, &r);
        if (!r)
            goto out_broken;
        if (i == 0 && PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 &&
            *PQgetvalue(r, 0, 0))
            pending_add(c, PQgetvalue(r, 0, 0));
        if (PQresultStatus(r) != PGRES_TUPLES_OK && PQresultStatus(r) != PGRES_COMMAND_OK &&
            rc == JOBD_OK)
            rc = pgerr(c, r, "commit", e);
        PQclear(r);
    }
    r = PQgetResult(c->pg);
    if (!r || PQresultStatus(r) != PGRES_PIPELINE_SYNC || !PQexitPipelineMode(c->pg)) {
        PQclear(r);
        goto out_broken;
    }
    PQclear(r);
    c->begin = NULL;
    c->committed = commit && rc == JOBD_OK;
    return rc;

out_broken:
    rc = pipe_broken(c, "round trip", e);
    for (int i = 0; i < n; i++) {
        PQclear(steps[i].r);
        steps[i].r = NULL;
    }
    free(c->pending);
    c->pending = NULL;
    /* Not a write with the commit on board: PostgreSQL may have committed
     * before the connection failed (ready() drops a connection it closed
     * first).  A read's commit changes nothing and may be sent again. */
    if (begin && (!commit || !c->writes) && first-- > 0 && ready(c->owner, c, e) == JOBD_OK) {
        rc = JOBD_OK;
        goto again;
    }
    return rc;
}

/* Run prepared statement id on c with parameters from the variadic
 * arguments (see vparams).  On success *r is its result, which the caller
 * PQclear()s; returns JOBD_OK or a JOBD_E* code. */
static int vquery(conn_t *c, enum stmt_id id, PGresult **r, err_t *e, const char *types, va_list ap)
{
    step_t st = {.id = id};
    int rc = vparams(&st.p, id, e, types, ap);

    if (rc < 0)
        return rc;
    rc = pipe_run(c, &st, 1, false, e);
    params_free(&st.p);
    if (rc == JOBD_OK)
        *r = st.r;
    else
        PQclear(st.r);
    return rc;
}

static int query(conn_t *c, enum stmt_id id, PGresult **r, err_t *e, const char *types, ...)
{
    va_list ap;
    int rc;

    va_start(ap, types);
    rc = vquery(c, id, r, e, types, ap);
    va_end(ap);
    return rc;
}

/* Run statement id (see vquery).  Returns how many rows it changed or
 * returned, or a JOBD_E* code. */
static int run(conn_t *c, enum stmt_id id, err_t *e, const char *types, ...)
{
    PGresult *r;
    va_list ap;
    int rc;

    va_start(ap, types);
    rc = vquery(c, id, &r, e, types, ap);
    va_end(ap);
    if (rc < 0)
        return rc;
    rc = PQresultStatus(r) == PGRES_TUPLES_OK ? PQntuples(r) : atoi(PQcmdTuples(r));
    PQclear(r);
    return rc;
}

/* Text of column i of row `row` of r (NULL for SQL NULL). */
static const char *col(const PGresult *r, int row, int i)
{
    return PQgetisnull(r, row, i) ? NULL : PQgetvalue(r, row, i);
}

static int64_t col_int(const PGresult *r, int row, int i)
{
    return strtoll(str(col(r, row, i)), NULL, 10);
}

/* Row `row` of r, whose first columns are those of kind k, as a new JSON
 * object.  Each column goes through record_value() so that every backend
 * shows a value the same way. */
static int row_record(const PGresult *r, int row, enum stmt_id id, enum rec_kind k, json_t **out,
                      err_t *e)
{
    size_t n;
    const record_field_t *f = backend_fields(k, &n);
    json_t *obj = json_object();

    for (size_t i = 0; i < n; i++) {
        const char *text = col(r, row, (int)i);
        json_t *v = record_value(f[i].type, text);
        if (!v) {
            json_decref(obj);
            return err_set(e, JOBD_EDB, "%s: column %s holds a value of the wrong type: %.100s",
                           stmts[id].name, f[i].name, str(text));
        }
        json_object_set_new_nocheck(obj, f[i].name, v); /* names of record.h: ASCII */
    }
    *out = obj;
    return JOBD_OK;
}

/* Run statement id (see vquery) and read its rows as records of kind k:
 * with `one` the first row as an object, otherwise every row into an array.
 * Returns how many rows it read or a JOBD_E* code; *out is written unless
 * `one` found no row. */
/* Every row of r as records of kind k (see row_record), in a new array. */
static int rows_record(const PGresult *r, enum stmt_id id, enum rec_kind k, json_t **out, err_t *e)
{
    json_t *rows = json_array(), *row;
    int rc = JOBD_OK;

    for (int i = 0; i < PQntuples(r) && rc >= 0; i++)
        if ((rc = row_record(r, i, id, k, &row, e)) == JOBD_OK)
            json_array_append_new(rows, row);
    if (rc < 0) {
        json_decref(rows);
        return rc;
    }
    *out = rows;
    return JOBD_OK;
}

static int fetch(conn_t *c, enum stmt_id id, enum rec_kind k, bool one, json_t **out, err_t *e,
                 const char *types, ...)
{
    PGresult *r;
    va_list ap;
    int rc, n;

    va_start(ap, types);
    rc = vquery(c, id, &r, e, types, ap);
    va_end(ap);
    if (rc < 0)
        return rc;
    n = PQntuples(r);
    if (one) {
        if (n)
            rc = row_record(r, 0, id, k, out, e);
    } else {
        rc = rows_record(r, id, k, out, e);
    }
    PQclear(r);
    return rc < 0 ? rc : one ? (n > 0) : n;
}

static int get_job(conn_t *c, const char *id, json_t **job, err_t *e)
{
    int rc = fetch(c, ST_job_get, REC_KIND_JOB, true, job, e, "t", id);
    if (rc == 0)
        return err_set(e, JOBD_ENOTFOUND, "no job with id %s", str(id));
    return rc < 0 ? rc : JOBD_OK;
}

/* The jobs bot_id holds, as [id, lease] pairs whose rows stay locked until
 * the transaction ends (to take them back).  OUT: *out, an array. */
static int bot_jobs_lock(conn_t *c, const char *bot_id, json_t **out, err_t *e)
{
    PGresult *r;
    int rc = query(c, ST_bot_jobs_lock, &r, e, "t", bot_id);

    if (rc < 0)
        return rc;
    *out = json_array();
    for (int i = 0; i < PQntuples(r); i++)
        json_array_append_new(*out, json_pack("[ss]", PQgetvalue(r, i, 0), PQgetvalue(r, i, 1)));
    PQclear(r);
    return JOBD_OK;
}

/* The bot of bot_get's result r (no row: JOBD_EUNKNOWNBOT), with "jobs"
 * the ids of the jobs it holds, from bot_jobs' result `jobs`. */
static int bot_of(const PGresult *r, const PGresult *jobs, const char *id, json_t **bot, err_t *e)
{
    json_t *ids;
    int rc;

    if (PQntuples(r) == 0)
        return err_set(e, JOBD_EUNKNOWNBOT, "no bot with id %s: register again", str(id));
    if ((rc = row_record(r, 0, ST_bot_get, REC_KIND_BOT, bot, e)) < 0)
        return rc;
    ids = json_array();
    for (int i = 0; i < PQntuples(jobs); i++)
        json_array_append_new(ids, json_string(PQgetvalue(jobs, i, 0)));
    json_object_set_new(*bot, "jobs", ids);
    return JOBD_OK;
}

/* Bot id with the jobs it holds: after the caller's `n` steps (whose results
 * it reads itself), both statements in one round trip, and with `last` (it
 * has nothing more to do in the transaction) the commit too.  steps[n] and
 * steps[n + 1] are this function's; the caller frees all n + 2. */
static int get_bot_after(conn_t *c, const char *id, step_t *steps, int n, bool last, json_t **bot,
                         err_t *e)
{
    int rc = step_set(&steps[n], ST_bot_get, e, "t", id);

    if (rc == JOBD_OK)
        rc = step_set(&steps[n + 1], ST_bot_jobs, e, "t", id);
    if (rc == JOBD_OK)
        rc = pipe_run(c, steps, n + 2, last, e);
    if (rc == JOBD_OK)
        rc = bot_of(steps[n].r, steps[n + 1].r, id, bot, e);
    return rc;
}

static int get_bot(conn_t *c, const char *id, bool last, json_t **bot, err_t *e)
{
    step_t st[2] = {{0}};
    int rc = get_bot_after(c, id, st, 0, last, bot, e);

    steps_free(st, 2);
    return rc;
}

/* The job with its history and events, as store_job_get shows it: three
 * statements in one round trip, and with `last` (the caller has nothing
 * more to do in its transaction) the transaction's commit in it too. */
static int get_job_full(conn_t *c, const char *id, bool last, json_t **out, err_t *e)
{
    json_t *job = NULL, *history = NULL, *events = NULL;
    step_t st[3] = {{0}};
    int rc = step_set(&st[0], ST_job_get, e, "t", id);

    if (rc == JOBD_OK)
        rc = step_set(&st[1], ST_job_history, e, "t", id);
    if (rc == JOBD_OK)
        rc = step_set(&st[2], ST_job_events, e, "t", id);
    if (rc == JOBD_OK)
        rc = pipe_run(c, st, 3, last, e);
    if (rc == JOBD_OK && PQntuples(st[0].r) == 0)
        rc = err_set(e, JOBD_ENOTFOUND, "no job with id %s", str(id));
    if (rc == JOBD_OK)
        rc = row_record(st[0].r, 0, ST_job_get, REC_KIND_JOB, &job, e);
    if (rc == JOBD_OK)
        rc = rows_record(st[1].r, ST_job_history, REC_KIND_ATTEMPT, &history, e);
    if (rc == JOBD_OK)
        rc = rows_record(st[2].r, ST_job_events, REC_KIND_EVENT, &events, e);
    steps_free(st, 3);
    if (rc < 0) {
        json_decref(events);
        json_decref(history);
        json_decref(job);
        return rc;
    }
    json_object_set_new(job, "history", history);
    json_object_set_new(job, "events", events);
    *out = job;
    return JOBD_OK;
}

/* Run SQL text `sql` (any number of statements, no parameters) on c. */
static int exec_sql(conn_t *c, const char *sql, const char *what, err_t *e)
{
    PGresult *r;
    int rc = c->begin ? pipe_run(c, NULL, 0, false, e) : JOBD_OK;

    if (rc < 0)
        return rc;
    r = PQexec(c->pg, sql);

    if (!r || (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK))
        rc = pgerr(c, r, what, e);
    PQclear(r);
    return rc;
}

/* ---- connections --------------------------------------------------------- */

/* Notices (e.g. "relation already exists, skipping") are not errors; jobd
 * says what it does in its own log. */
static void quiet(void *arg, const char *message)
{
}

/* Open a connection with `conninfo` (a URL or key=value string).  Defaults
 * come first so that the user's string overrides them: a bounded connect
 * and TCP keepalives, so that a database host that vanished fails a call
 * within seconds instead of hanging it. */
static int pg_connect(const char *conninfo, PGconn **out, err_t *e)
{
    static const char *const keys[] = {"connect_timeout",
                                       "application_name",
                                       "keepalives_idle",
                                       "keepalives_interval",
                                       "keepalives_count",
                                       "dbname",
                                       NULL};
    const char *vals[] = {"5", "jobd", "10", "5", "3", conninfo, NULL};
    PGconn *pg = PQconnectdbParams(keys, vals, 1);
    char buf[400];

    if (!pg)
        abort();
    if (PQstatus(pg) != CONNECTION_OK) {
        int rc = err_set(e, JOBD_EDBDOWN, "cannot connect to PostgreSQL: %s",
                         one_line(PQerrorMessage(pg), buf, sizeof buf));
        PQfinish(pg);
        return rc;
    }
    PQsetNoticeProcessor(pg, quiet, NULL);
    *out = pg;
    return JOBD_OK;
}

/* Prepare every statement on c.  Fails with JOBD_ESCHEMA naming the first
 * that does not fit the schema (or JOBD_EDBDOWN if the database went away). */
static int prepare_all(conn_t *c, err_t *e)
{
    /* Start from none: an earlier set, or the part of one that failed.
     * Announce new jobs after commit (transact), not inside the transaction
     * (migration 0007); plan each statement once, on its indexes (see
     * STATEMENTS). */
    int rc = exec_sql(c,
                      "DEALLOCATE ALL; SET jobd.announce = 'after-commit';"
                      " SET plan_cache_mode = force_generic_plan; SET enable_seqscan = off",
                      "drop prepared statements", e);

    c->gen = 0;
    for (int i = 0; i < ST_COUNT && rc == JOBD_OK; i++) {
        char *sql = backend_sql(stmts[i].sql);
        PGresult *r = PQprepare(c->pg, stmts[i].name, sql, 0, NULL);
        free(sql);
        if (!r || PQresultStatus(r) != PGRES_COMMAND_OK) {
            char buf[400];
            rc = pgerr(c, r, stmts[i].name, e);
            if (rc == JOBD_EDB)
                rc = err_set(
                    e, JOBD_ESCHEMA, "statement %s does not fit the database schema: %s",
                    stmts[i].name,
                    one_line(PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY), buf, sizeof buf));
        }
        PQclear(r);
    }
    return rc;
}

/* Make c usable: connected (re-connecting one PostgreSQL dropped), and with
 * every statement prepared for generation c->want if that is not 0. */
static int ready(pg_t *s, conn_t *c, err_t *e)
{
    struct pollfd idle = {c->pg ? PQsocket(c->pg) : -1, POLLIN, 0};
    char buf[400];
    int rc;

    /* A connection idle in the pool receives nothing but its end (a
     * restart, an admin's pg_terminate_backend: a last message, then the
     * close, which may not have come yet) or, rarely, a changed setting
     * after a reload: make it again before a call sends anything on it,
     * as a transaction sent whole with its commit cannot be sent twice. */
    if (c->pg && idle.fd >= 0 && poll(&idle, 1, 0) > 0) {
        PQfinish(c->pg);
        c->pg = NULL;
    }
    if (c->pg && PQstatus(c->pg) != CONNECTION_OK) {
        PQreset(c->pg);
        c->gen = 0; /* a new session has no prepared statements */
        if (PQstatus(c->pg) != CONNECTION_OK)
            return err_set(e, JOBD_EDBDOWN, "cannot connect to PostgreSQL: %s",
                           one_line(PQerrorMessage(c->pg), buf, sizeof buf));
    }
    if (!c->pg) {
        if ((rc = pg_connect(s->conninfo, &c->pg, e)) < 0)
            return rc;
        c->gen = 0;
    }
    if (c->want && c->gen != c->want) {
        if ((rc = prepare_all(c, e)) < 0)
            return rc;
        c->gen = c->want;
    }
    return JOBD_OK;
}

static void release(pg_t *s, conn_t *c)
{
    pthread_mutex_lock(&s->mu);
    c->busy = false;
    pthread_cond_signal(&s->freed);
    pthread_mutex_unlock(&s->mu);
}

/* Take a connection for one call, made ready (see ready()); with
 * `statements`, only once store_prepare has succeeded.  Waits while all
 * POOL_MAX connections are in use.  OUT: *out, given back with release(). */
static int acquire(pg_t *s, bool statements, conn_t **out, err_t *e)
{
    conn_t *c = NULL;
    int rc;

    pthread_mutex_lock(&s->mu);
    if (statements && !s->prepared) {
        pthread_mutex_unlock(&s->mu);
        return err_set(e, JOBD_ESCHEMA,
                       "the store is not prepared: store_prepare must succeed first");
    }
    for (;;) {
        /* An open connection first; a new one only when all are busy. */
        for (int i = 0; i < POOL_MAX && !c; i++)
            if (!s->conns[i].busy && s->conns[i].pg)
                c = &s->conns[i];
        for (int i = 0; i < POOL_MAX && !c; i++)
            if (!s->conns[i].busy)
                c = &s->conns[i];
        if (c)
            break;
        pthread_cond_wait(&s->freed, &s->mu);
    }
    c->busy = true;
    c->owner = s;
    c->want = statements ? s->gen : 0;
    pthread_mutex_unlock(&s->mu);
    if ((rc = ready(s, c, e)) < 0) {
        release(s, c);
        return rc;
    }
    *out = c;
    return JOBD_OK;
}

/* ---- announcements -------------------------------------------------------- */

/* Add the '\n'-terminated operation names in `lines` to a->ops, each once. */
static void ops_merge(announcer_t *a, const char *lines)
{
    for (const char *p = lines; *p;) {
        const char *end = strchr(p, '\n');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        bool seen = false;

        for (const char *q = a->ops; q && *q && !seen; q = strchr(q, '\n') + 1)
            seen = strncmp(q, p, n) == 0 && q[n] == '\n';
        if (n > 0 && !seen) {
            char *grown = realloc(a->ops, a->len + n + 2);
            if (!grown)
                abort();
            memcpy(grown + a->len, p, n);
            a->len += n;
            grown[a->len++] = '\n';
            grown[a->len] = '\0';
            a->ops = grown;
        }
        p += n + (end != NULL);
    }
}

/* Send one NOTIFY per line of `ops` on a's connection, (re)connecting it
 * first if needed.  A failure leaves the connection to be made again. */
static int announce_send(pg_t *s, announcer_t *a, const char *ops, err_t *e)
{
    const char *params[1] = {ops};
    PGresult *r;
    conn_t c = {0};
    int rc;

    if (a->pg && PQstatus(a->pg) != CONNECTION_OK) {
        PQfinish(a->pg);
        a->pg = NULL;
    }
    if (!a->pg) {
        if ((rc = pg_connect(s->conninfo, &c.pg, e)) < 0)
            return rc;
        /* Each NOTIFY commits on its own without waiting for the flush. */
        if ((rc = exec_sql(&c, "SET synchronous_commit = off", "announce", e)) < 0) {
            PQfinish(c.pg);
            return rc;
        }
        a->pg = c.pg;
        atomic_store(&a->pid, PQbackendPID(c.pg));
    }
    c.pg = a->pg;
    r = PQexecParams(a->pg,
                     "SELECT pg_notify('" CHANNEL "', o)"
                     " FROM unnest(string_to_array(rtrim($1, E'\\n'), E'\\n')) AS o",
                     1, NULL, params, NULL, NULL, 0);
    rc = r && PQresultStatus(r) == PGRES_TUPLES_OK ? JOBD_OK : pgerr(&c, r, "announce", e);
    PQclear(r);
    if (rc < 0) {
        atomic_store(&a->pid, 0);
        PQfinish(a->pg);
        a->pg = NULL;
    }
    return rc;
}

/* The announcer thread: send what was handed over, retrying with backoff
 * while the database cannot be reached (the operations wait meanwhile). */
static void *announcer_main(void *arg)
{
    pg_t *s = arg;
    announcer_t *a = &s->announce;
    int backoff = 100;
    bool failing = false;
    err_t e;

    pthread_setname_np(pthread_self(), "jobd-announce");
    pthread_mutex_lock(&a->mu);
    while (!a->stop) {
        char *ops = a->ops;
        int rc;

        if (!ops) {
            pthread_cond_wait(&a->cond, &a->mu);
            continue;
        }
        a->ops = NULL;
        a->len = 0;
        pthread_mutex_unlock(&a->mu);
        rc = announce_send(s, a, ops, &e);
        pthread_mutex_lock(&a->mu);
        if (rc == JOBD_OK) {
            if (failing)
                log_info("announcing new jobs to other servers again");
            failing = false;
            backoff = 100;
            free(ops);
            continue;
        }
        if (!failing)
            log_warn("cannot announce new jobs to other servers (%s); retrying", e.msg);
        failing = true;
        ops_merge(a, ops);
        free(ops);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += backoff / 1000;
        until.tv_nsec += (long)(backoff % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        if (!a->stop)
            pthread_cond_timedwait(&a->cond, &a->mu, &until);
        backoff = backoff * 2 > 2000 ? 2000 : backoff * 2;
    }
    pthread_mutex_unlock(&a->mu);
    return NULL;
}

/* Hand the '\n'-terminated operations in `lines`, just committed as
 * pending, to the announcer, starting it on first use. */
static void announce(pg_t *s, const char *lines)
{
    announcer_t *a = &s->announce;

    pthread_mutex_lock(&a->mu);
    if (!a->running) {
        if (pthread_create(&a->thread, NULL, announcer_main, s) != 0)
            abort();
        a->running = true;
    }
    ops_merge(a, lines);
    pthread_cond_signal(&a->cond);
    pthread_mutex_unlock(&a->mu);
}

/* Stop the announcer.  What it still holds is sent once more first: jobs
 * committed just before a shutdown are announced like any other. */
static void announcer_stop(pg_t *s)
{
    announcer_t *a = &s->announce;
    err_t e;

    pthread_mutex_lock(&a->mu);
    a->stop = true;
    pthread_cond_signal(&a->cond);
    pthread_mutex_unlock(&a->mu);
    if (a->running)
        pthread_join(a->thread, NULL);
    a->running = false;
    if (a->ops && announce_send(s, a, a->ops, &e) < 0)
        log_warn("could not announce new jobs to other servers at shutdown (%s); their claims "
                 "find them when their waits end",
                 e.msg);
    free(a->ops);
    a->ops = NULL;
    if (a->pg)
        PQfinish(a->pg);
    a->pg = NULL;
}

/* ---- transactions -------------------------------------------------------- */

typedef int (*tx_fn)(conn_t *c, void *arg, err_t *e);

/* Run fn(c, arg, e) in one transaction opened by `begin` (sync_off: with
 * synchronous_commit off): commit if fn returns >= 0, roll back otherwise.
 *
 * Round trips: the BEGIN goes with fn's first statements (pipe_run), and
 * fn may send its last ones with the commit; a transaction of one
 * statement is then one round trip, as an autocommit would be.  A `write`
 * transaction that made jobs pending announces them once committed (or
 * once its commit's fate is unknown: a wake-up too many only costs a claim
 * that finds nothing). */
static int transact(pg_t *s, const char *begin, bool sync_off, bool write, tx_fn fn, void *arg,
                    err_t *e)
{
    conn_t *c;
    int rc = acquire(s, true, &c, e);

    if (rc < 0)
        return rc;
    c->begin = begin;
    c->sync_off = sync_off;
    c->writes = write;
    c->committed = false;
    rc = fn(c, arg, e);
    /* Not sent with fn's last statements: the commit alone (for a write,
     * with its read of jobd.pending), one round trip. */
    if (rc >= 0 && !c->begin && !c->committed)
        rc = write ? pipe_run(c, NULL, 0, true, e) : exec_sql(c, "COMMIT", "commit", e);
    /* Committed, even if fn then failed reading the answers, or maybe
     * committed (the connection failed during the commit). */
    if (c->pending && (rc >= 0 || c->committed || rc == JOBD_EDBDOWN))
        announce(s, c->pending);
    free(c->pending);
    c->pending = NULL;
    c->begin = NULL;
    /* Still open after a failure (fn's, or a failed read before COMMIT). */
    if (PQstatus(c->pg) == CONNECTION_OK && PQtransactionStatus(c->pg) != PQTRANS_IDLE)
        exec_sql(c, "ROLLBACK", "roll back", NULL);
    release(s, c);
    return rc < 0 ? rc : JOBD_OK;
}

/* Changes (begin_write). */
static int tx_write(pg_t *s, tx_fn fn, void *arg, err_t *e)
{
    return transact(s, begin_write, atomic_load(&s->sync_off), true, fn, arg, e);
}

/* Reads see one snapshot, e.g. a job and its history together. */
static int tx_read(pg_t *s, tx_fn fn, void *arg, err_t *e)
{
    return transact(s, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", false, false, fn, arg, e);
}

/* ---- lifecycle ----------------------------------------------------------- */

static void watch_stop(watch_t *w);

static int pg_open(const char *db, store_t **out, err_t *e)
{
    pg_t *s = calloc(1, sizeof *s);
    int rc;

    if (!s)
        abort();
    s->base.backend = &store_pg_backend;
    s->conninfo = strdup(db);
    if (!s->conninfo)
        abort();
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->freed, NULL);
    pthread_mutex_init(&s->announce.mu, NULL);
    pthread_cond_init(&s->announce.cond, NULL);
    s->watch.stop[0] = s->watch.stop[1] = -1;
    /* Connect now, so that a wrong address or password stops jobd at start
     * with libpq's reason. */
    if ((rc = pg_connect(s->conninfo, &s->conns[0].pg, e)) < 0) {
        store_pg_backend.free(&s->base);
        return rc;
    }
    /* What the connection reached (defaults and PG* variables filled in),
     * not the conninfo, which may hold a password. */
    snprintf(s->base.where, sizeof s->base.where, "PostgreSQL database %s on %s:%s as %s",
             PQdb(s->conns[0].pg), PQhost(s->conns[0].pg), PQport(s->conns[0].pg),
             PQuser(s->conns[0].pg));
    *out = &s->base;
    return JOBD_OK;
}

static void pg_free(store_t *base)
{
    pg_t *s = (pg_t *)base;

    if (!s)
        return;
    watch_stop(&s->watch);
    announcer_stop(s);
    for (int i = 0; i < POOL_MAX; i++)
        if (s->conns[i].pg)
            PQfinish(s->conns[i].pg);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->freed);
    pthread_mutex_destroy(&s->announce.mu);
    pthread_cond_destroy(&s->announce.cond);
    free(s->conninfo);
    free(s);
}

/* ---- schema and migrations ----------------------------------------------- */

/* The integer in the first column of the first row of `sql` (run with
 * parameter p1 as $1 if not NULL), 0 if no row or NULL. */
static int scalar(conn_t *c, const char *sql, const char *p1, const char *what, int64_t *v,
                  err_t *e)
{
    PGresult *r = PQexecParams(c->pg, sql, p1 ? 1 : 0, NULL, &p1, NULL, NULL, 0);
    int rc = JOBD_OK;

    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK)
        rc = pgerr(c, r, what, e);
    else
        *v = PQntuples(r) ? col_int(r, 0, 0) : 0;
    PQclear(r);
    return rc;
}

/* The applied schema version, 0 for a database that was never migrated.
 * schema_version is the migration machinery's own table, created by the
 * first migrate_up rather than by a migration (as in SQLite). */
static int read_version(conn_t *c, int *version, err_t *e)
{
    int64_t v = 0;
    int rc = scalar(c,
                    "SELECT count(*) FROM pg_catalog.pg_tables WHERE tablename = 'schema_version'"
                    " AND schemaname = ANY (current_schemas(false))",
                    NULL, "read schema version", &v, e);
    if (rc == JOBD_OK && v)
        rc = scalar(c, "SELECT coalesce(max(version), 0) FROM schema_version", NULL,
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

static int pg_schema_version(store_t *base, int *current, int *latest, err_t *e)
{
    pg_t *s = (pg_t *)base;
    conn_t *c;
    int rc, v;

    if ((rc = acquire(s, false, &c, e)) < 0)
        return rc;
    rc = read_version(c, &v, e);
    release(s, c);
    if (rc < 0)
        return rc;
    *current = v;
    *latest = LATEST;
    return JOBD_OK;
}

/* Every prepared statement was checked against the schema a migration just
 * changed: store_prepare must check them again before the next call. */
static void unprepare(pg_t *s)
{
    pthread_mutex_lock(&s->mu);
    s->prepared = false;
    pthread_mutex_unlock(&s->mu);
}

/* One step of migrate up or down in its own transaction, reading the
 * version inside it.  Returns 1 if a migration was applied or undone, 0 if
 * there was nothing to do, or a JOBD_E* code. */
static int migrate_step(pg_t *s, conn_t *c, bool up, err_t *e)
{
    const store_migration_t *m;
    char what[128], version[16];
    PGresult *r;
    int rc, v;

    if ((rc = exec_sql(c, "BEGIN", "begin migration", e)) < 0)
        return rc;
    if ((rc = read_version(c, &v, e)) < 0)
        goto out_rollback;
    if (v > LATEST) {
        rc = newer(v, e);
        goto out_rollback;
    }
    if (up ? v == LATEST : v == 0) {
        exec_sql(c, "ROLLBACK", "end migration", NULL);
        return 0;
    }
    m = &store_pg_migrations[up ? v : v - 1];
    unprepare(s);
    snprintf(what, sizeof what, "migration %d (%s) %s", m->version, m->name, up ? "up" : "down");
    if ((rc = exec_sql(c, up ? m->up : m->down, what, e)) < 0)
        goto out_rollback;
    snprintf(version, sizeof version, "%d", m->version);
    if (up) {
        char now[24];
        const char *p[] = {version, m->name, now};
        snprintf(now, sizeof now, "%lld", (long long)clock_now_ms());
        r = PQexecParams(c->pg,
                         "INSERT INTO schema_version (version, name, applied_at)"
                         " VALUES ($1, $2, $3)",
                         3, NULL, p, NULL, NULL, 0);
    } else {
        const char *p[] = {version};
        r = PQexecParams(c->pg, "DELETE FROM schema_version WHERE version = $1", 1, NULL, p, NULL,
                         NULL, 0);
    }
    if (!r || PQresultStatus(r) != PGRES_COMMAND_OK)
        rc = pgerr(c, r, what, e);
    PQclear(r);
    if (rc < 0)
        goto out_rollback;
    if ((rc = exec_sql(c, "COMMIT", "commit migration", e)) < 0)
        return rc;
    return 1;
out_rollback:
    if (PQstatus(c->pg) == CONNECTION_OK)
        exec_sql(c, "ROLLBACK", "roll back migration", NULL);
    return rc;
}

/* Run migrate_step(up) until done (all) or once, holding the migration
 * lock: a second server starting at the same moment waits here, then finds
 * nothing left to do.  The lock is the session's, so it goes with the
 * connection if jobd dies mid-way. */
static int migrate(pg_t *s, bool up, bool all, err_t *e)
{
    conn_t *c;
    char lock[64];
    int rc;

    if ((rc = acquire(s, false, &c, e)) < 0)
        return rc;
    snprintf(lock, sizeof lock, "SELECT pg_advisory_lock(%d)", MIGRATE_LOCK);
    if ((rc = exec_sql(c, lock, "take the migration lock", e)) < 0)
        goto out_release;
    rc = exec_sql(c,
                  "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY,"
                  " name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
                  "create schema_version", e);
    while (rc >= 0 && (rc = migrate_step(s, c, up, e)) == 1 && all)
        ;
    snprintf(lock, sizeof lock, "SELECT pg_advisory_unlock(%d)", MIGRATE_LOCK);
    if (PQstatus(c->pg) == CONNECTION_OK)
        exec_sql(c, lock, "release the migration lock", NULL);
out_release:
    release(s, c);
    return rc < 0 ? rc : JOBD_OK;
}

static int pg_migrate_up(store_t *base, err_t *e)
{
    return migrate((pg_t *)base, true, true, e);
}

static int pg_migrate_down(store_t *base, err_t *e)
{
    return migrate((pg_t *)base, false, false, e);
}

static int pg_prepare(store_t *base, err_t *e)
{
    pg_t *s = (pg_t *)base;
    conn_t *c;
    int rc, v;

    unprepare(s);
    if ((rc = acquire(s, false, &c, e)) < 0)
        return rc;
    if ((rc = read_version(c, &v, e)) < 0)
        goto out_release;
    if (v > LATEST) {
        rc = newer(v, e);
        goto out_release;
    }
    if (v < LATEST) {
        rc = err_set(e, JOBD_ESCHEMA,
                     "database schema version %d is older than this binary's version %d: "
                     "run `jobd migrate up`",
                     v, LATEST);
        goto out_release;
    }
    if ((rc = prepare_all(c, e)) < 0)
        goto out_release;
    /* A new generation: every other connection prepares again on its next
     * use, against this schema. */
    pthread_mutex_lock(&s->mu);
    c->gen = ++s->gen;
    s->prepared = true;
    pthread_mutex_unlock(&s->mu);
out_release:
    release(s, c);
    return rc;
}

static int do_ping(conn_t *c, void *arg, err_t *e)
{
    return run(c, ST_ping, e, "");
}

static int pg_set_sync(store_t *base, store_sync_t sync, err_t *e)
{
    (void)e;
    atomic_store(&((pg_t *)base)->sync_off, sync == STORE_SYNC_NORMAL);
    return JOBD_OK;
}

static int pg_ping(store_t *base, err_t *e)
{
    return tx_read((pg_t *)base, do_ping, NULL, e);
}

/* ---- jobs ---------------------------------------------------------------- */

struct create_args {
    const job_spec_t *specs;
    size_t n;
    json_t *jobs;
};

/* The insert of job spec under a new id as a step, whose parameters
 * borrow id and *owned (the input's text, if the store wrote it: free it
 * once the step ran); index names the job in errors of a batch. */
static int insert_step(const job_spec_t *spec, size_t index, char id[ID_UUID_LEN], char **owned,
                       step_t *st, err_t *e)
{
    int64_t now = clock_now_ms();
    bool later = spec->run_at > now;
    const char *input = backend_input_text(spec, owned);

    if (spec->input && !input)
        return err_set(e, JOBD_EINTERNAL, "jobs[%zu]: the input cannot be written as JSON", index);
    id_uuid7(id);
    return step_set(st, ST_job_insert, e, "tttitiiit", id, spec->operation, input, spec->priority,
                    later ? "scheduled" : "pending", now, spec->max_attempts,
                    later ? spec->run_at : (int64_t)0, spec->idempotency_key);
}

/* Insert one job of a batch; index names it in errors of a batch. */
static int create_one(conn_t *c, const job_spec_t *spec, size_t index, size_t n, json_t *jobs,
                      err_t *e)
{
    char id[ID_UUID_LEN], *owned = NULL;
    json_t *job;
    step_t st = {0};
    int rc = insert_step(spec, index, id, &owned, &st, e);

    /* A job alone without a key is the whole transaction, a statement that
     * cannot conflict: sent with the BEGIN and the commit, one round trip. */
    if (rc == JOBD_OK)
        rc = pipe_run(c, &st, 1, n == 1 && !spec->idempotency_key, e);
    /* 1 inserted, 0 not (see below). */
    if (rc == JOBD_OK && (rc = PQntuples(st.r)) == 1 &&
        (rc = row_record(st.r, 0, ST_job_insert, REC_KIND_JOB, &job, e)) == JOBD_OK)
        rc = 1;
    steps_free(&st, 1);
    free(owned);
    /* Not inserted: the key is taken (by a committed job, or one of this
     * batch).  The answer is the job that holds it. */
    if (rc == 0 && spec->idempotency_key) {
        rc = fetch(c, ST_job_by_key, REC_KIND_JOB, true, &job, e, "t", spec->idempotency_key);
        if (rc == 0)
            rc =
                err_set(e, JOBD_EINTERNAL, "no job holds idempotency key %s after a conflict on it",
                        spec->idempotency_key);
    }
    if (rc < 0) {
        if (n > 1)
            err_prefix(e, "jobs[%zu]: ", index);
        return rc;
    }
    json_array_append_new(jobs, job);
    return rc;
}

/* spec as an element of job_insert_many's batch, with its new id; NULL if
 * a string of it is not UTF-8 or its input cannot be encoded.  The input
 * goes as its JSON text, which the statement parses as job_insert does. */
static json_t *spec_item(const job_spec_t *spec, int64_t now)
{
    bool later = spec->run_at > now;
    char id[ID_UUID_LEN], *owned;
    const char *input = backend_input_text(spec, &owned);
    json_t *item;

    if (spec->input && !input)
        return NULL;
    id_uuid7(id);
    item =
        json_pack("{s:s,s:s?,s:s?,s:I,s:s,s:I,s:I}", "id", id, "operation", spec->operation,
                  "input", input, "priority", (json_int_t)spec->priority, "status",
                  later ? "scheduled" : "pending", "max_attempts", (json_int_t)spec->max_attempts,
                  "run_at", (json_int_t)(later ? spec->run_at : 0));
    free(owned);
    return item;
}

/* Insert a batch of n > 1 jobs in one statement (job_insert_many), their
 * ids in the order of the specs so that its result, in id order, is in
 * theirs.  Returns 0 when done, 1 if the batch is for create_one to insert
 * one by one, as it is when the database refuses one of the jobs: only the
 * one-by-one statements can say which with the database's own message. */
static int create_many(conn_t *c, struct create_args *a, err_t *e)
{
    int64_t now = clock_now_ms();
    json_t *batch = json_array(), *item;
    err_t refused;
    int rc = JOBD_OK;

    /* Keys go one by one: a job of the batch may be answered with another
     * job, which breaks the statement's one-row-per-spec order. */
    for (size_t i = 0; i < a->n && rc == JOBD_OK; i++)
        if (a->specs[i].idempotency_key)
            rc = 1;
    for (size_t i = 0; i < a->n && rc == JOBD_OK; i++)
        if ((item = spec_item(&a->specs[i], now)))
            json_array_append_new(batch, item);
        else
            rc = 1;
    if (rc == JOBD_OK) {
        /* One round trip: BEGIN, the savepoint, the statement and the
         * commit, which does not happen if the statement fails. */
        step_t st[2] = {{.sql = "SAVEPOINT create_many"}};
        if ((rc = step_set(&st[1], ST_job_insert_many, e, "ji", batch, now)) == JOBD_OK)
            rc = pipe_run(c, st, 2, true, &refused);
        if (rc == JOBD_OK)
            rc = rows_record(st[1].r, ST_job_insert_many, REC_KIND_JOB, &a->jobs, &refused);
        steps_free(st, 2);
        if (rc == JOBD_EDB) {
            rc = exec_sql(c, "ROLLBACK TO SAVEPOINT create_many", "roll back to savepoint", e);
            if (rc == JOBD_OK)
                rc = 1;
        } else if (rc < 0) {
            if (e)
                *e = refused;
        } else {
            rc = 0;
        }
    }
    json_decref(batch);
    return rc;
}

static int do_create(conn_t *c, void *arg, err_t *e)
{
    struct create_args *a = arg;
    int rc = a->n > 1 ? create_many(c, a, e) : 1;

    if (rc != 1)
        return rc;
    a->jobs = json_array();
    for (size_t i = 0; i < a->n && rc >= 0; i++)
        rc = create_one(c, &a->specs[i], i, a->n, a->jobs, e);
    return rc;
}

/* brief: the rows come back whole from RETURNING either way; the reply is
 * cut to what was asked for. */
static int pg_job_create(store_t *base, const job_spec_t *specs, size_t n, bool brief,
                         json_t **jobs, err_t *e)
{
    struct create_args a = {specs, n, NULL};
    int rc = backend_deliver(tx_write((pg_t *)base, do_create, &a, e), &a.jobs, jobs);

    if (rc == JOBD_OK && brief) {
        json_t *job;
        size_t i;
        json_array_foreach(*jobs, i, job)
        {
            json_array_set_new(*jobs, i, backend_brief_of(job));
        }
    }
    return rc;
}

struct get_args {
    const char *id;
    json_t *job;
};

static int do_get(conn_t *c, void *arg, err_t *e)
{
    struct get_args *a = arg;
    return get_job_full(c, a->id, true, &a->job, e);
}

static int pg_job_get(store_t *base, const char *id, json_t **job, err_t *e)
{
    struct get_args a = {id, NULL};
    return backend_deliver(tx_read((pg_t *)base, do_get, &a, e), &a.job, job);
}

struct list_args {
    const job_filter_t *f;
    json_t *jobs;
};

static int do_list(conn_t *c, void *arg, err_t *e)
{
    struct list_args *a = arg;
    const job_filter_t *f = a->f;
    /* "" sorts before every id (ids are COLLATE "C"), so the first page
     * needs no statement of its own. */
    const char *after = f->after ? f->after : "";
    step_t st;
    int rc = f->status
                 ? step_set(&st, ST_job_list_status, e, "ttit", after, f->operation,
                            (int64_t)f->limit, f->status)
                 : step_set(&st, ST_job_list, e, "tti", after, f->operation, (int64_t)f->limit);

    /* With the commit: one round trip. */
    if (rc == JOBD_OK)
        rc = pipe_run(c, &st, 1, true, e);
    if (rc == JOBD_OK)
        rc = rows_record(st.r, st.id, REC_KIND_JOB, &a->jobs, e);
    steps_free(&st, 1);
    return rc;
}

static int pg_job_list(store_t *base, const job_filter_t *f, json_t **jobs, err_t *e)
{
    struct list_args a = {f, NULL};
    return backend_deliver(tx_read((pg_t *)base, do_list, &a, e), &a.jobs, jobs);
}

/* ---- claim ---------------------------------------------------------------- */

struct claim_args {
    const char *bot_id;
    const char *const *ops;
    size_t nops;
    int max;
    int64_t lease_ms;
    bool brief; /* each job is its summary (job_claim_brief) */
    json_t *jobs;
};

/* Lease the jobs of job_claim's result r to the bot, each with the lease
 * of its row, and append them in claim order to a->jobs. */
static int claimed(const PGresult *r, struct claim_args *a, int64_t expires, err_t *e)
{
    enum rec_kind kind = a->brief ? REC_KIND_JOB_SUMMARY : REC_KIND_JOB;
    size_t nfields;
    json_t *job;
    int rc;

    backend_fields(kind, &nfields);
    for (int i = 0; i < PQntuples(r); i++) {
        if ((rc = row_record(r, i, a->brief ? ST_job_claim_brief : ST_job_claim, kind, &job, e)) <
            0)
            return rc;
        json_object_set_new(job, "lease", json_string(PQgetvalue(r, i, (int)nfields)));
        json_object_set_new(job, "lease_expires_at", backend_time_json(expires));
        json_array_append_new(a->jobs, job);
    }
    return JOBD_OK;
}

/* The claim's two statements, bot_seen then job_claim, as steps of a
 * pipeline: job_claim needs nothing bot_seen answers (it reads the bot's
 * name itself, and claims nothing for a bot that does not exist), so both
 * go in one round trip.  Nothing to send for an empty claim but bot_seen. */
static int claim_steps(struct claim_args *a, int64_t now, step_t steps[2], int *n, err_t *e)
{
    char lease[2 * LEASE_BYTES + 1];
    json_t *ops, *leases;
    int rc;

    a->jobs = json_array();
    if ((rc = step_set(&steps[0], ST_bot_seen, e, "ti", a->bot_id, now)) < 0)
        return rc;
    *n = 1;
    if (a->max <= 0 || a->nops == 0)
        return JOBD_OK;
    ops = json_array();
    for (size_t i = 0; i < a->nops; i++)
        if (a->ops[i])
            json_array_append_new(ops, json_string(a->ops[i]));
    /* One statement for the whole claim, whatever max is: a lease for each
     * job it may take, the n-th claimed job getting the n-th. */
    leases = json_array();
    for (int i = 0; i < a->max; i++) {
        id_hex(lease, LEASE_BYTES);
        json_array_append_new(leases, json_string(lease));
    }
    rc = step_set(&steps[1], a->brief ? ST_job_claim_brief : ST_job_claim, e, "aiitai", ops,
                  (int64_t)a->max, now, a->bot_id, leases, now + a->lease_ms);
    json_decref(leases);
    json_decref(ops);
    if (rc == JOBD_OK)
        *n = 2;
    return rc;
}

/* What the claim's steps answered: the leased jobs in a->jobs. */
static int claim_result(struct claim_args *a, int64_t now, step_t steps[2], int n, err_t *e)
{
    /* A claim, even an empty one, shows that the bot is alive, to the
     * second: a bot row written at most once a second keeps frequent empty
     * claims from costing a WAL flush each, and claims of one bot's loops
     * (jobd-bot --concurrency) from queueing on its row lock. */
    if (PQntuples(steps[0].r) == 0)
        return err_set(e, JOBD_EUNKNOWNBOT, "no bot with id %s: register again", str(a->bot_id));
    return n > 1 ? claimed(steps[1].r, a, now + a->lease_ms, e) : JOBD_OK;
}

/* A claim in a transaction of its own: one round trip with its BEGIN and
 * its commit.  Committing before looking at the answers is safe: for a bot
 * that does not exist the statements change nothing. */
static int do_claim(conn_t *c, void *arg, err_t *e)
{
    struct claim_args *a = arg;
    int64_t now = clock_now_ms();
    step_t steps[2] = {{0}};
    int n = 0, rc = claim_steps(a, now, steps, &n, e);

    if (rc == JOBD_OK)
        rc = pipe_run(c, steps, n, true, e);
    if (rc == JOBD_OK)
        rc = claim_result(a, now, steps, n, e);
    steps_free(steps, n);
    return rc;
}

static int pg_job_claim(store_t *base, const char *bot_id, const char *const *ops, size_t nops,
                        int max, int64_t lease_ms, bool brief, json_t **jobs, err_t *e)
{
    struct claim_args a = {bot_id, ops, ops ? nops : 0, max, lease_ms, brief, NULL};
    return backend_deliver(tx_write((pg_t *)base, do_claim, &a, e), &a.jobs, jobs);
}

struct create_claim_args {
    const job_spec_t *spec;
    struct claim_args claim;
    json_t *job;
};

/* The hand-off: the insert, then the claim's steps, in one round trip with
 * the BEGIN and the commit.  A keyed job may be answered with the key's
 * holder instead (create_one), which costs a round trip of its own first. */
static int do_create_claim(conn_t *c, void *arg, err_t *e)
{
    struct create_claim_args *a = arg;
    int64_t now = clock_now_ms();
    char id[ID_UUID_LEN], *owned = NULL;
    step_t steps[3] = {{0}};
    const char *got;
    json_t *jobs;
    int n = 0, rc;

    if (a->spec->idempotency_key) {
        jobs = json_array();
        rc = create_one(c, a->spec, 0, 1, jobs, e);
        a->job = json_incref(json_array_get(jobs, 0));
        json_decref(jobs);
        if (rc >= 0)
            rc = do_claim(c, &a->claim, e);
    } else {
        rc = insert_step(a->spec, 0, id, &owned, &steps[0], e);
        if (rc == JOBD_OK)
            rc = claim_steps(&a->claim, now, steps + 1, &n, e);
        if (rc == JOBD_OK)
            rc = pipe_run(c, steps, 1 + n, true, e);
        if (rc == JOBD_OK && PQntuples(steps[0].r) != 1)
            rc = err_set(e, JOBD_EINTERNAL, "job_insert inserted no job");
        if (rc == JOBD_OK)
            rc = row_record(steps[0].r, 0, ST_job_insert, REC_KIND_JOB, &a->job, e);
        if (rc == JOBD_OK)
            rc = claim_result(&a->claim, now, steps + 1, n, e);
        steps_free(steps, 1 + n);
        free(owned);
    }
    /* Committed: a bot that went away while it waited claims nothing, and
     * the job stays pending. */
    if (rc == JOBD_EUNKNOWNBOT)
        rc = JOBD_OK;
    /* Handed over, the job was never pending for the other servers: no
     * wake-up for them. */
    got = json_string_value(json_object_get(json_array_get(a->claim.jobs, 0), "id"));
    if (rc == JOBD_OK && got &&
        strcmp(got, json_string_value(json_object_get(a->job, "id"))) == 0) {
        free(c->pending);
        c->pending = NULL;
    }
    return rc;
}

static int pg_job_create_claim(store_t *base, const job_spec_t *spec, bool brief,
                               const char *bot_id, int64_t lease_ms, json_t **job, json_t **claimed,
                               err_t *e)
{
    struct create_claim_args a = {
        spec, {bot_id, &spec->operation, 1, 1, lease_ms, false, NULL}, NULL};
    int rc = tx_write((pg_t *)base, do_create_claim, &a, e);

    if (rc < 0 || !a.job || !a.claim.jobs) {
        json_decref(a.job);
        json_decref(a.claim.jobs);
        return rc < 0 ? rc : err_set(e, JOBD_EINTERNAL, "the hand-off made no job");
    }
    *job = brief ? backend_brief_of(a.job) : json_incref(a.job);
    json_decref(a.job);
    *claimed = a.claim.jobs;
    return JOBD_OK;
}

/* ---- complete, fail, release, expire -------------------------------------- */

/* The attempt of job `id` that holds `lease`: 1 if found, 0 if not, or a
 * JOBD_E* code. */
static int read_attempt(conn_t *c, const char *id, const char *lease, struct backend_attempt *r,
                        err_t *e)
{
    PGresult *res;
    int rc = query(c, ST_attempt_by_lease, &res, e, "tt", id, lease);

    if (rc < 0)
        return rc;
    if (PQntuples(res) == 0) {
        PQclear(res);
        return 0;
    }
    snprintf(r->job_id, sizeof r->job_id, "%s", str(col(res, 0, 0)));
    snprintf(r->bot_id, sizeof r->bot_id, "%s", str(col(res, 0, 1)));
    snprintf(r->outcome, sizeof r->outcome, "%s", str(col(res, 0, 2)));
    r->ended_at = col_int(res, 0, 3);
    snprintf(r->error, sizeof r->error, "%s", str(col(res, 0, 4)));
    PQclear(res);
    return 1;
}

/* Lock job id's row until the transaction ends, and read its status and
 * lease; JOBD_ENOTFOUND if there is none.  Every change to one job takes
 * this lock first, so that two servers cannot both finish, release, cancel
 * or expire it. */
static int lock_job(conn_t *c, const char *id, char status[16], char lease[72], err_t *e)
{
    PGresult *r;
    int rc = query(c, ST_job_lock, &r, e, "t", id);

    if (rc < 0)
        return rc;
    if (PQntuples(r) == 0) {
        PQclear(r);
        return err_set(e, JOBD_ENOTFOUND, "no job with id %s", str(id));
    }
    snprintf(status, 16, "%s", str(col(r, 0, 0)));
    snprintf(lease, 72, "%s", str(col(r, 0, 1)));
    PQclear(r);
    return JOBD_OK;
}

/* The job_order row of job id (operation, priority, created_at, failures,
 * max_attempts, lease_expires_at).  OUT: *r, which the caller PQclear()s. */
static int job_order(conn_t *c, const char *id, PGresult **r, err_t *e)
{
    int rc = query(c, ST_job_order, r, e, "t", id);

    if (rc == JOBD_OK && PQntuples(*r) == 0) {
        PQclear(*r);
        return err_set(e, JOBD_ENOTFOUND, "no job with id %s", id);
    }
    return rc;
}

/* Record the outcome on the job: succeeded, failed for good, or - a
 * retryable failure within the budget - scheduled after the backoff.
 * Returns how many rows changed (0 if the job is not processing under the
 * lease) or a JOBD_E* code. */
static int finish_job(conn_t *c, const struct backend_finish *a, int64_t now, err_t *e)
{
    PGresult *r;
    int64_t failures, max;
    int rc;

    if (a->ok)
        return run(c, ST_job_finish, e, "tttjtiii", a->id, a->lease, "succeeded", a->result, NULL,
                   a->duration_ms, now, (int64_t)0);
    if (a->retry) {
        if ((rc = job_order(c, a->id, &r, e)) < 0)
            return rc;
        failures = col_int(r, 0, 3);
        max = col_int(r, 0, 4);
        PQclear(r);
        if (failures + 1 < max)
            return run(c, ST_job_reschedule, e, "ttiti", a->id, a->lease,
                       now + backend_retry_delay(a->retry, failures + 1), a->error, a->duration_ms);
    }
    return run(c, ST_job_finish, e, "tttjtiii", a->id, a->lease, "failed", NULL, a->error,
               a->duration_ms, now, (int64_t)1);
}

static int do_finish(conn_t *c, void *arg, err_t *e)
{
    struct backend_finish *a = arg;
    const char *outcome = a->ok ? "succeeded" : "failed";
    struct backend_attempt r;
    char status[16], lease[72];
    int64_t now = clock_now_ms();
    int rc;

    if ((rc = lock_job(c, a->id, status, lease, e)) < 0)
        return rc;
    if ((rc = read_attempt(c, a->id, a->lease, &r, e)) < 0)
        return rc;
    if (rc == 0 || strcmp(r.job_id, a->id) != 0)
        return err_set(e, JOBD_EMISMATCH, "job %s was never leased under lease %s", a->id,
                       a->lease);
    if (strcmp(r.bot_id, a->bot_id) != 0)
        return err_set(e, JOBD_EMISMATCH, "lease %s of job %s is held by bot %s, not by bot %s",
                       a->lease, a->id, r.bot_id, a->bot_id);
    if (strcmp(r.outcome, "running") != 0) {
        if ((rc = backend_refuse(a, &r, status, e)) < 0)
            return rc;
        a->repeated = true;
        return get_job(c, a->id, &a->job, e);
    }
    rc = finish_job(c, a, now, e);
    if (rc == 0)
        return err_set(e, JOBD_EINTERNAL,
                       "job %s is %s, not processing under lease %s, although that attempt is "
                       "still running",
                       a->id, status, a->lease);
    if (rc >= 0)
        rc = run(c, ST_attempt_end, e, "tttit", a->id, a->lease, outcome, now,
                 a->ok ? NULL : a->error);
    if (rc >= 0)
        rc = run(c, ST_bot_done, e, "tii", a->bot_id, (int64_t)a->ok, (int64_t)!a->ok);
    return rc < 0 ? rc : get_job(c, a->id, &a->job, e);
}

static int finish(pg_t *s, struct backend_finish *a, json_t **job, bool *repeated, err_t *e)
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
    return do_finish((conn_t *)conn, f, e);
}

/* Report r as an element of job_finish_many's batch; NULL if a string of
 * it is not UTF-8 or its result cannot be encoded, for the per-job path to
 * answer as it does (the database refuses the first, the second fails it).
 * The result goes as its JSON text, parsed by the statement only for a job
 * it finishes, as job_finish parses it. */
static json_t *report_item(const job_report_t *r)
{
    char *result = NULL;
    json_t *item;

    if (r->ok && r->result && !(result = json_dumps(r->result, JSON_ENCODE_ANY | JSON_COMPACT)))
        return NULL;
    item = json_pack("{s:s,s:s,s:b,s:s?,s:s?,s:I}", "id", str(r->id), "lease", str(r->lease), "ok",
                     r->ok, "result", result, "error", r->ok ? NULL : r->error, "duration_ms",
                     (json_int_t)r->duration_ms);
    free(result);
    return item;
}

/* The common case of a batch in one statement (job_finish_many): the first
 * report of each job, a complete or a fail that is not retryable (the
 * backoff depends on the job's failures), finishes its job if the job is
 * processing under its lease and bot, exactly as do_finish would.  The
 * others (a refusal to find out, a repeat, a retryable failure, a later
 * report of the same job) are left to do_finish, in order and after these,
 * which is the order in which one-by-one reports would have seen them: only
 * reports of the same job affect each other.
 *
 * finish_many_step makes the statement's step (fb->st is then not ST_COUNT)
 * and finish_many_read reads its answers into the reports, setting
 * answered[i] for each one it answered. */
struct finish_batch {
    enum stmt_id st; /* the statement; ST_COUNT: none (no report for it) */
    json_t *first;   /* job id -> the index of its first report */
    bool whole;      /* every report is in the statement: only a refusal is left */
};

static int finish_many_step(struct report_args *a, struct finish_batch *fb, step_t *step, err_t *e)
{
    json_t *batch = json_array(), *item;
    /* A bot id that is not UTF-8 holds no lease, and do_finish refuses its
     * reports without sending it to the database, which would refuse it. */
    json_t *bot = json_string(str(a->bot_id));
    bool utf8 = bot != NULL;
    bool brief = true;    /* every report of the batch wants {id, status} at most */
    bool summary = false; /* ... or its summary */
    int rc = JOBD_OK;

    json_decref(bot);
    fb->first = json_object();
    fb->st = ST_COUNT;
    fb->whole = utf8;
    for (size_t i = 0; utf8 && i < a->n; i++) {
        const job_report_t *rep = &a->reports[i];
        if (json_object_get(fb->first, str(rep->id))) {
            fb->whole = false;
            continue;
        }
        json_object_set_new(fb->first, str(rep->id), json_integer((json_int_t)i));
        if ((rep->ok || !rep->retry) && (item = report_item(rep))) {
            json_array_append_new(batch, item);
            brief = brief && rep->brief;
            summary = summary || rep->summary;
        } else {
            fb->whole = false;
        }
    }
    /* The least every report of the batch needs; backend_report_brief cuts
     * each one's down to what it asked for. */
    if (json_array_size(batch) > 0) {
        fb->st = !brief    ? ST_job_finish_many
                 : summary ? ST_job_finish_many_summary
                           : ST_job_finish_many_brief;
        rc = step_set(step, fb->st, e, "tij", str(a->bot_id), clock_now_ms(), batch);
    }
    json_decref(batch);
    return rc;
}

static int finish_many_read(struct report_args *a, struct finish_batch *fb, const PGresult *r,
                            bool *answered, err_t *e)
{
    enum stmt_id st = fb->st;
    json_t *job;
    int rc = JOBD_OK;

    for (int row = 0; r && row < PQntuples(r) && rc >= 0; row++) {
        if (st == ST_job_finish_many_brief)
            job = backend_brief(PQgetvalue(r, row, 0), PQgetvalue(r, row, 1));
        if (st == ST_job_finish_many_brief ||
            (rc = row_record(r, row, st,
                             st == ST_job_finish_many ? REC_KIND_JOB : REC_KIND_JOB_SUMMARY, &job,
                             e)) == 0) {
            json_int_t i = json_integer_value(json_object_get(fb->first, PQgetvalue(r, row, 0)));
            a->reports[i].rc = JOBD_OK;
            a->reports[i].job = job;
            a->reports[i].repeated = false;
            answered[i] = true;
        }
    }
    return rc;
}

/* Reports, then the claim if there is one, in one transaction.  When the
 * statement takes every report (fb.whole: no retryable failure, no job
 * twice), the claim and the commit go with it: one round trip, where a bot's
 * report and its next claim took two (and a report alone two as well),
 * and PostgreSQL is often a network hop away.  What the statement then
 * leaves unanswered can only be a refusal or a repeat, which changes
 * nothing: do_finish finds it out in a transaction after the commit, seeing
 * what it would have seen a moment later.  Should that transaction fail
 * (the database went away just then), the call fails though the first one
 * committed, as when a reply is lost on its way: the bot's reports are
 * answered as repeats when it sends them again, and the jobs it was leased
 * but never told of go back to pending when their leases run out. */
static int do_report_many(conn_t *c, void *arg, err_t *e)
{
    struct report_args *a = arg;
    bool *answered = calloc(a->n + 1, sizeof *answered);
    struct claim_args cl = {a->bot_id, NULL, 0, 0, 0, false, NULL};
    struct finish_batch fb;
    step_t steps[3] = {{0}};
    int64_t now = clock_now_ms();
    int n = 0, nclaim = 0, rc;
    bool trip, claim_too; /* one round trip; the claim in it */

    if (!answered)
        abort();
    if (a->claim)
        cl = (struct claim_args){
            a->bot_id,     a->claim->ops,      a->claim->ops ? a->claim->nops : 0,
            a->claim->max, a->claim->lease_ms, a->claim->brief,
            NULL};
    rc = finish_many_step(a, &fb, &steps[0], e);
    n = fb.st != ST_COUNT;
    trip = n && fb.whole;
    claim_too = trip && a->claim;
    if (rc == JOBD_OK && claim_too)
        rc = claim_steps(&cl, now, steps + n, &nclaim, e);
    if (rc == JOBD_OK && n + nclaim > 0)
        rc = pipe_run(c, steps, n + nclaim, trip, e);
    if (rc == JOBD_OK && n)
        rc = finish_many_read(a, &fb, steps[0].r, answered, e);
    if (rc == JOBD_OK && claim_too)
        rc = claim_result(&cl, now, steps + n, nclaim, e);
    steps_free(steps, n + nclaim);
    json_decref(fb.first);
    for (size_t i = 0; i < a->n && rc >= 0; i++) {
        if (answered[i])
            continue;
        if (c->committed) { /* the round trip above committed: a new transaction */
            c->begin = begin_write;
            c->committed = false;
        }
        rc = backend_report_each(c, finish_step, a->bot_id, &a->reports[i], 1, e);
    }
    free(answered);
    if (rc >= 0 && a->claim && !trip)
        rc = do_claim(c, &cl, e);
    if (a->claim)
        a->claim->jobs = cl.jobs;
    else
        json_decref(cl.jobs);
    return rc;
}

static int pg_job_report_many(store_t *base, const char *bot_id, job_report_t *reports, size_t n,
                              job_claim_t *claim, err_t *e)
{
    struct report_args a = {bot_id, reports, n, claim};
    int rc = tx_write((pg_t *)base, do_report_many, &a, e);

    if (rc == JOBD_OK)
        backend_report_brief(reports, n);
    return backend_claim_undo(backend_report_undo(rc, reports, n), claim);
}

static int pg_job_complete(store_t *base, const char *id, const char *bot_id, const char *lease,
                           const json_t *result, int64_t duration_ms, json_t **job, bool *repeated,
                           err_t *e)
{
    struct backend_finish a = {id,          bot_id, lease, true, result, NULL,
                               duration_ms, NULL,   false, NULL, false,  false};
    return finish((pg_t *)base, &a, job, repeated, e);
}

static int pg_job_fail(store_t *base, const char *id, const char *bot_id, const char *lease,
                       const char *error, const store_retry_t *retry, int64_t duration_ms,
                       json_t **job, bool *repeated, err_t *e)
{
    struct backend_finish a = {id,          bot_id, lease, false, NULL,  error,
                               duration_ms, NULL,   false, retry, false, false};
    return finish((pg_t *)base, &a, job, repeated, e);
}

/* Put processing job `id` (locked) back to pending, ending the attempt
 * under `lease` with `outcome` (released, expired or worker_lost) at `at`,
 * because of `why`.  The attempt counts as lost for the job and its bot, not
 * as a failure.  The jobs_pending trigger announces the job to every
 * server. */
static int takeback(conn_t *c, const char *id, const char *lease, const char *outcome, int64_t at,
                    const char *why, err_t *e)
{
    int rc = run(c, ST_attempt_end, e, "tttit", id, lease, outcome, at, why);
    if (rc >= 0)
        rc = run(c, ST_bot_lost, e, "tt", id, lease);
    return rc < 0 ? rc : run(c, ST_job_takeback, e, "t", id);
}

/* Record an admin action on job id. */
static int add_event(conn_t *c, const char *id, int64_t at, const char *action, const char *reason,
                     err_t *e)
{
    return run(c, ST_event_insert, e, "titt", id, at, action, reason);
}

struct release_args {
    const char *id, *reason;
    json_t *job;
};

static int do_release(conn_t *c, void *arg, err_t *e)
{
    struct release_args *a = arg;
    char status[16], lease[72];
    int64_t now = clock_now_ms();
    int rc = lock_job(c, a->id, status, lease, e);

    if (rc < 0)
        return rc;
    if (strcmp(status, "processing") != 0)
        return err_set(e, JOBD_ENOTPROC, "job %s is %s, not processing", str(a->id), status);
    rc = takeback(c, a->id, lease, "released", now, a->reason, e);
    if (rc >= 0)
        rc = add_event(c, a->id, now, "release", a->reason, e);
    return rc < 0 ? rc : get_job_full(c, a->id, true, &a->job, e);
}

static int pg_job_release(store_t *base, const char *id, const char *reason, json_t **job, err_t *e)
{
    struct release_args a = {id, str(reason), NULL};
    return backend_deliver(tx_write((pg_t *)base, do_release, &a, e), &a.job, job);
}

static int do_retry(conn_t *c, void *arg, err_t *e)
{
    struct release_args *a = arg;
    char status[16], lease[72];
    int rc = lock_job(c, a->id, status, lease, e);

    if (rc < 0)
        return rc;
    if (strcmp(status, "failed") != 0 && strcmp(status, "cancelled") != 0)
        return err_set(e, JOBD_ENOTRETRY,
                       "job %s is %s; only a failed or cancelled job can be retried", a->id,
                       status);
    rc = run(c, ST_job_retry, e, "t", a->id);
    if (rc >= 0)
        rc = add_event(c, a->id, clock_now_ms(), "retry", a->reason, e);
    return rc < 0 ? rc : get_job_full(c, a->id, true, &a->job, e);
}

static int pg_job_retry(store_t *base, const char *id, const char *reason, json_t **job, err_t *e)
{
    struct release_args a = {str(id), str(reason), NULL};
    return backend_deliver(tx_write((pg_t *)base, do_retry, &a, e), &a.job, job);
}

static int do_cancel(conn_t *c, void *arg, err_t *e)
{
    struct release_args *a = arg;
    char status[16], lease[72], why[1100];
    int64_t now = clock_now_ms();
    int rc = lock_job(c, a->id, status, lease, e);

    if (rc < 0)
        return rc;
    if (strcmp(status, "cancelled") == 0)
        return err_set(e, JOBD_ECANCELLED, "job %s is already cancelled", a->id);
    if (strcmp(status, "succeeded") == 0 || strcmp(status, "failed") == 0)
        return err_set(e, JOBD_EFINISHED, "job %s already %s; it cannot be cancelled", a->id,
                       status);
    snprintf(why, sizeof why, "cancelled by an admin: %s", a->reason);
    if (strcmp(status, "processing") == 0)
        rc = run(c, ST_attempt_end, e, "tttit", a->id, lease, "cancelled", now, a->reason);
    if (rc >= 0)
        rc = run(c, ST_job_cancel, e, "tit", a->id, now, why);
    if (rc >= 0)
        rc = add_event(c, a->id, now, "cancel", a->reason, e);
    return rc < 0 ? rc : get_job_full(c, a->id, true, &a->job, e);
}

static int pg_job_cancel(store_t *base, const char *id, const char *reason, json_t **job, err_t *e)
{
    struct release_args a = {str(id), str(reason), NULL};
    return backend_deliver(tx_write((pg_t *)base, do_cancel, &a, e), &a.job, job);
}

/* Run counting statement id (see vquery) and read its one integer. */
static int count(conn_t *c, enum stmt_id id, int64_t *n, err_t *e, const char *types, ...)
{
    PGresult *r;
    va_list ap;
    int rc;

    va_start(ap, types);
    rc = vquery(c, id, &r, e, types, ap);
    va_end(ap);
    if (rc < 0)
        return rc;
    *n = PQntuples(r) ? col_int(r, 0, 0) : 0;
    PQclear(r);
    return JOBD_OK;
}

struct explain_args {
    const char *id;
    json_t *facts;
};

static int do_explain(conn_t *c, void *arg, err_t *e)
{
    struct explain_args *a = arg;
    json_t *job, *bot = NULL;
    const char *status;
    PGresult *order;
    int64_t expires, ahead = 0, live = 0;
    int rc = get_job_full(c, a->id, false, &job, e);

    if (rc < 0)
        return rc;
    a->facts = json_pack("{s:o}", "job", job);
    status = json_string_value(json_object_get(job, "status"));
    if ((rc = job_order(c, a->id, &order, e)) < 0)
        return rc;
    if (strcmp(status, "pending") == 0)
        rc = count(c, ST_queue_ahead, &ahead, e, "tiit", PQgetvalue(order, 0, 0),
                   col_int(order, 0, 1), col_int(order, 0, 2), a->id);
    if (rc >= 0)
        rc = count(c, ST_live_bots, &live, e, "t", PQgetvalue(order, 0, 0));
    expires = col_int(order, 0, 5);
    PQclear(order);
    if (rc >= 0 && strcmp(status, "processing") == 0)
        rc = get_bot(c, json_string_value(json_object_get(job, "bot_id")), false, &bot, e);
    if (rc < 0)
        return rc;
    json_object_set_new(a->facts, "ahead", json_integer(ahead));
    json_object_set_new(a->facts, "live_bots", json_integer(live));
    json_object_set_new(a->facts, "bot", bot ? bot : json_null());
    json_object_set_new(a->facts, "lease_expires_at",
                        bot ? backend_time_json(expires) : json_null());
    return JOBD_OK;
}

static int pg_job_explain(store_t *base, const char *id, json_t **facts, err_t *e)
{
    struct explain_args a = {str(id), NULL};
    return backend_deliver(tx_read((pg_t *)base, do_explain, &a, e), &a.facts, facts);
}

/* A sweep at a given time, in one write transaction, changing at most
 * `limit` jobs (0: no limit); *n is how many jobs it changed. */
static int count_write(pg_t *s, tx_fn fn, int64_t now_ms, int limit, int *n, err_t *e)
{
    struct backend_count a = {now_ms, limit, 0};
    int rc = tx_write(s, fn, &a, e);

    if (rc == JOBD_OK)
        *n = a.n;
    return rc;
}

/* SKIP LOCKED: the jobs another server is making pending right now are
 * left to it.  The jobs_pending trigger announces each. */
static int do_schedule_due(conn_t *c, void *arg, err_t *e)
{
    struct backend_count *a = arg;
    int rc = run(c, ST_schedule_due, e, "i", a->now);
    if (rc >= 0)
        a->n = rc;
    return rc;
}

static int pg_schedule_due(store_t *base, int64_t now_ms, int *n, err_t *e)
{
    return count_write((pg_t *)base, do_schedule_due, now_ms, 0, n, e);
}

static int do_expire(conn_t *c, void *arg, err_t *e)
{
    struct backend_count *a = arg;
    PGresult *r;
    int rc = query(c, ST_lease_expired, &r, e, "i", a->now);

    if (rc < 0)
        return rc;
    /* SKIP LOCKED: a job another server is expiring, or its bot finishing,
     * right now is left to that transaction. */
    for (int i = 0; rc >= 0 && i < PQntuples(r); i++) {
        int64_t at = col_int(r, i, 2);
        char t[32], why[64];
        snprintf(why, sizeof why, "lease expired at %s", backend_when(at, t));
        rc = takeback(c, PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), "expired", at, why, e);
    }
    a->n = PQntuples(r);
    PQclear(r);
    return rc;
}

static int pg_lease_expire(store_t *base, int64_t now_ms, int *n, err_t *e)
{
    return count_write((pg_t *)base, do_expire, now_ms, 0, n, e);
}

/* ---- retention ------------------------------------------------------------- */

/* One batch in one statement: the jobs, locked with SKIP LOCKED so that
 * another server's purge, or a retry, holding one of them is passed over,
 * and their attempts and events.  The referencing rows go in the same
 * statement, so the foreign keys hold when it ends. */
static int do_purge(conn_t *c, void *arg, err_t *e)
{
    struct backend_count *a = arg;
    int rc = run(c, ST_job_purge, e, "ii", a->now, (int64_t)a->limit);
    if (rc >= 0)
        a->n = rc;
    return rc;
}

static int pg_job_purge(store_t *base, int64_t finished_before_ms, int limit, int *n, err_t *e)
{
    return count_write((pg_t *)base, do_purge, finished_before_ms, limit, n, e);
}

/* ---- stats ----------------------------------------------------------------- */

struct stats_args {
    json_t *stats;
};

static int do_stats(conn_t *c, void *arg, err_t *e)
{
    struct stats_args *a = arg;
    /* The one statement that reads whole tables: with sequential scans on
     * for it (see STATEMENTS), its plan, made the first time it runs here,
     * counts in parallel with a hash; off, a million jobs took 949 ms
     * against 264. */
    step_t st[3] = {
        {.sql = "SET LOCAL enable_seqscan = on"}, {.id = ST_stats_jobs}, {.id = ST_stats_bots}};
    int rc = pipe_run(c, st, 3, true, e); /* with the commit: one round trip */

    a->stats = backend_stats_new();
    for (int i = 0; rc == JOBD_OK && i < PQntuples(st[1].r); i++)
        backend_stats_add_jobs(a->stats, PQgetvalue(st[1].r, i, 0), PQgetvalue(st[1].r, i, 1),
                               col_int(st[1].r, i, 2));
    for (int i = 0; rc == JOBD_OK && i < PQntuples(st[2].r); i++)
        backend_stats_add_bots(a->stats, PQgetvalue(st[2].r, i, 0), col_int(st[2].r, i, 1));
    steps_free(st, 3);
    return rc;
}

static int pg_stats(store_t *base, json_t **stats, err_t *e)
{
    struct stats_args a = {NULL};
    return backend_deliver(tx_read((pg_t *)base, do_stats, &a, e), &a.stats, stats);
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

static int do_register(conn_t *c, void *arg, err_t *e)
{
    struct bot_args *a = arg;
    char id[ID_UUID_LEN];
    int rc;

    id_uuid7(id);
    rc = run(c, ST_bot_insert, e, "ttji", id, a->name, a->operations, clock_now_ms());
    return rc < 0 ? rc : get_bot(c, id, true, &a->bot, e);
}

static int pg_bot_register(store_t *base, const char *name, const json_t *operations, json_t **bot,
                           err_t *e)
{
    struct bot_args a = {.name = name, .operations = operations};
    return backend_deliver(tx_write((pg_t *)base, do_register, &a, e), &a.bot, bot);
}

/* Take back every job bot_id holds (outcome worker_lost, because of why).
 * OUT: *taken, the ids. */
static int takeback_bot(conn_t *c, const char *bot_id, int64_t now, const char *why, json_t **taken,
                        err_t *e)
{
    json_t *held, *pair;
    size_t i;
    int rc = bot_jobs_lock(c, bot_id, &held, e);

    if (rc < 0)
        return rc;
    *taken = json_array();
    json_array_foreach(held, i, pair)
    {
        const char *id = json_string_value(json_array_get(pair, 0));
        rc =
            takeback(c, id, json_string_value(json_array_get(pair, 1)), "worker_lost", now, why, e);
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
static int classify(conn_t *c, struct bot_args *a, const json_t *item, int64_t now,
                    const char **verdict, err_t *e)
{
    const char *id = json_string_value(json_object_get(item, "id"));
    const json_t *progress = json_object_get(item, "progress");
    const char *outcome = "";
    PGresult *r;
    int rc = run(c, ST_lease_renew_one, e, "ttij", id, a->id, now + a->lease_ms,
                 json_is_null(progress) ? NULL : progress);

    if (rc < 0)
        return rc;
    if (rc > 0) {
        *verdict = "held";
        return JOBD_OK;
    }
    if ((rc = query(c, ST_my_attempt, &r, e, "tt", id, a->id)) < 0)
        return rc;
    if (PQntuples(r))
        outcome = PQgetvalue(r, 0, 0);
    if (strcmp(outcome, "succeeded") == 0 || strcmp(outcome, "failed") == 0)
        *verdict = NULL;
    else if (strcmp(outcome, "cancelled") == 0)
        *verdict = "cancelled";
    else
        *verdict = "lost";
    PQclear(r);
    return JOBD_OK;
}

/* Renew in one statement (lease_renew_many) the jobs the bot names in
 * a->jobs that it holds, keeping their progress as lease_renew_one does,
 * and set held[i] for each.  A job named twice is left to classify(), item
 * by item, so that the later progress wins as it would there; so is an
 * item that cannot go in the batch (an id that is not a string). */
static int renew_many(conn_t *c, struct bot_args *a, int64_t now, bool *held, err_t *e)
{
    json_t *batch = json_array(), *index = json_object(), *item;
    PGresult *r = NULL;
    size_t i;
    int rc = JOBD_OK;

    json_array_foreach(a->jobs, i, item)
    {
        const char *id = json_string_value(json_object_get(item, "id"));
        if (id)
            json_object_set_new(
                index, id, json_object_get(index, id) ? json_null() : json_integer((json_int_t)i));
    }
    json_array_foreach(a->jobs, i, item)
    {
        const char *id = json_string_value(json_object_get(item, "id"));
        const json_t *p = json_object_get(item, "progress");
        bool none = !p || json_is_null(p);
        char *progress = none ? NULL : json_dumps(p, JSON_ENCODE_ANY | JSON_COMPACT);

        if (id && json_is_integer(json_object_get(index, id)) && (none || progress))
            json_array_append_new(batch, json_pack("{s:s,s:s?}", "id", id, "progress", progress));
        free(progress);
    }
    if (json_array_size(batch) > 0)
        rc = query(c, ST_lease_renew_many, &r, e, "tji", a->id, batch, now + a->lease_ms);
    for (int row = 0; r && row < PQntuples(r); row++)
        held[json_integer_value(json_object_get(index, PQgetvalue(r, row, 0)))] = true;
    PQclear(r);
    json_decref(index);
    json_decref(batch);
    return rc;
}

/* The bot's jobs first, the bot's own row last (see STATEMENTS, locking);
 * an unknown bot, found out at the end, rolls everything back. */
static int do_heartbeat(conn_t *c, void *arg, err_t *e)
{
    struct bot_args *a = arg;
    json_t *verdicts, *item, *taken;
    int64_t now = clock_now_ms();
    step_t tail[3] = {{0}};
    bool *held;
    char why[300];
    size_t i;
    int rc = 0;

    if (!a->jobs && (rc = run(c, ST_lease_renew, e, "ti", a->id, now + a->lease_ms)) < 0)
        return rc;
    held = calloc(json_array_size(a->jobs) + 1, sizeof *held);
    if (!held)
        abort();
    if (a->jobs && (rc = renew_many(c, a, now, held, e)) < 0)
        goto out_held;
    verdicts = json_pack("{s:[],s:[],s:[]}", "held", "cancelled", "lost");
    json_array_foreach(a->jobs, i, item)
    {
        const char *verdict = "held";
        if (!held[i] && (rc = classify(c, a, item, now, &verdict, e)) < 0)
            goto out_verdicts;
        if (verdict && strcmp(verdict, "held") != 0)
            json_array_append(json_object_get(verdicts, verdict), json_object_get(item, "id"));
    }
    if (strcmp(a->state, "offline") == 0) {
        snprintf(why, sizeof why, "bot %s went offline while holding the job", a->id);
        if ((rc = takeback_bot(c, a->id, now, why, &taken, e)) < 0)
            goto out_verdicts;
        json_array_extend(json_object_get(verdicts, "lost"), taken);
        json_decref(taken);
    }
    /* The bot's new state, and the bot as it now is, with the commit: one
     * round trip.  A bot that does not exist changed nothing, and bot_get
     * finds no row (JOBD_EUNKNOWNBOT). */
    rc = step_set(&tail[0], ST_bot_heartbeat, e, "tti", a->id, a->state, now);
    if (rc == JOBD_OK)
        rc = get_bot_after(c, a->id, tail, 1, true, &a->bot, e);
    steps_free(tail, 3);
    if (rc < 0)
        goto out_verdicts;
    json_object_set(verdicts, "held", json_object_get(a->bot, "jobs"));
    a->reply = json_pack("{s:o,s:o}", "bot", a->bot, "jobs", verdicts);
    a->bot = NULL;
    free(held);
    return JOBD_OK;

out_verdicts:
    json_decref(verdicts);
out_held:
    free(held);
    return rc;
}

static int pg_bot_heartbeat(store_t *base, const char *id, const char *state, int64_t lease_ms,
                            const json_t *jobs, json_t **reply, err_t *e)
{
    struct bot_args a = {.id = str(id), .state = state, .lease_ms = lease_ms, .jobs = jobs};
    return backend_deliver(tx_write((pg_t *)base, do_heartbeat, &a, e), &a.reply, reply);
}

struct sweep_args {
    int64_t unhealthy_before, offline_before;
    json_t *changes;
};

/* The bots that missed their heartbeats become unhealthy or offline, and
 * their jobs go back to pending: each bot's jobs locked first, then the bot
 * (see STATEMENTS, locking).  Two servers sweeping at once may both set a
 * bot's state; only one finds its jobs still processing. */
static int do_sweep(conn_t *c, void *arg, err_t *e)
{
    struct sweep_args *a = arg;
    int64_t now = clock_now_ms();
    PGresult *r;
    int rc = query(c, ST_bots_stale, &r, e, "i", a->unhealthy_before);

    if (rc < 0)
        return rc;
    a->changes = json_array();
    for (int i = 0; rc >= 0 && i < PQntuples(r); i++) {
        const char *id = PQgetvalue(r, i, 0), *name = PQgetvalue(r, i, 1);
        int64_t seen = col_int(r, i, 2);
        const char *state = seen < a->offline_before ? "offline" : "unhealthy";
        char why[400], t[32];
        json_t *taken;

        if (strcmp(PQgetvalue(r, i, 3), state) == 0)
            continue;
        snprintf(why, sizeof why, "bot %s (%s) missed its heartbeats: last seen at %s", name, id,
                 backend_when(seen, t));
        rc = takeback_bot(c, id, now, why, &taken, e);
        if (rc >= 0 && (rc = run(c, ST_bot_set_state, e, "tt", id, state)) < 0)
            json_decref(taken);
        if (rc >= 0)
            json_array_append_new(a->changes, json_pack("{s:s,s:s,s:s,s:o,s:o}", "id", id, "name",
                                                        name, "state", state, "last_seen_at",
                                                        backend_time_json(seen), "jobs", taken));
    }
    PQclear(r);
    return rc < 0 ? rc : JOBD_OK;
}

static int pg_bot_sweep(store_t *base, int64_t unhealthy_before, int64_t offline_before,
                        json_t **changes, err_t *e)
{
    struct sweep_args a = {unhealthy_before, offline_before, NULL};
    return backend_deliver(tx_write((pg_t *)base, do_sweep, &a, e), &a.changes, changes);
}

static int do_bot_get(conn_t *c, void *arg, err_t *e)
{
    struct bot_args *a = arg;
    return get_bot(c, a->id, true, &a->bot, e);
}

static int pg_bot_get(store_t *base, const char *id, json_t **bot, err_t *e)
{
    struct bot_args a = {.id = id};
    return backend_deliver(tx_read((pg_t *)base, do_bot_get, &a, e), &a.bot, bot);
}

static int do_bot_list(conn_t *c, void *arg, err_t *e)
{
    struct bot_args *a = arg;
    json_t *by_bot = json_object(), *bot, *jobs;
    step_t st[2] = {{0}};
    size_t i;
    int rc = step_set(&st[0], ST_bot_list, e, "");

    /* Every bot's jobs in one statement, not one per bot: one round trip. */
    if (rc == JOBD_OK)
        rc = step_set(&st[1], ST_processing_jobs, e, "");
    if (rc == JOBD_OK)
        rc = pipe_run(c, st, 2, true, e);
    if (rc == JOBD_OK)
        rc = rows_record(st[0].r, ST_bot_list, REC_KIND_BOT, &a->bots, e);
    for (int row = 0; rc == JOBD_OK && row < PQntuples(st[1].r); row++) {
        const char *owner = PQgetvalue(st[1].r, row, 0);
        if (!(jobs = json_object_get(by_bot, owner)))
            json_object_set_new(by_bot, owner, jobs = json_array());
        json_array_append_new(jobs, json_string(PQgetvalue(st[1].r, row, 1)));
    }
    json_array_foreach(a->bots, i, bot)
    {
        if (rc < 0)
            break;
        jobs = json_object_get(by_bot, json_string_value(json_object_get(bot, "id")));
        json_object_set_new(bot, "jobs", jobs ? json_incref(jobs) : json_array());
    }
    steps_free(st, 2);
    json_decref(by_bot);
    return rc < 0 ? rc : JOBD_OK;
}

static int pg_bot_list(store_t *base, json_t **bots, err_t *e)
{
    struct bot_args a = {0};
    return backend_deliver(tx_read((pg_t *)base, do_bot_list, &a, e), &a.bots, bots);
}

/* ---- datalake outbox -------------------------------------------------------- */

struct export_args {
    const char *server_id;
    int limit;
    const json_t *ids, *files;
    json_t *out;
};

/* Claim the export of the oldest finished, unexported jobs for this server:
 * those nobody claimed, those it claimed before (a batch it wrote but could
 * not mark), and those whose claim went stale.  SKIP LOCKED: another
 * server's exporter claiming at the same moment takes other jobs. */
static int do_export_pending(conn_t *c, void *arg, err_t *e)
{
    struct export_args *a = arg;
    int64_t now = clock_now_ms();
    return fetch(c, ST_export_claim, REC_KIND_JOB, false, &a->out, e, "tiii", a->server_id,
                 (int64_t)a->limit, now, now - EXPORT_TAKEOVER_MS);
}

/* PostgreSQL's json_build_object would write its own spacing; the lines
 * are written from the records as the API shows them instead. */
static int pg_export_pending(store_t *base, const char *server_id, int limit,
                             store_export_t **batch, err_t *e)
{
    struct export_args a = {.server_id = str(server_id), .limit = limit};
    store_export_t *b;
    json_t *job;
    size_t i;
    int rc = tx_write((pg_t *)base, do_export_pending, &a, e);

    if (rc != JOBD_OK) {
        json_decref(a.out);
        return rc;
    }
    b = backend_export_new();
    json_array_foreach(a.out, i, job) backend_export_add_record(b, job);
    json_decref(a.out);
    *batch = b;
    return JOBD_OK;
}

static int do_export_mark(conn_t *c, void *arg, err_t *e)
{
    struct export_args *a = arg;
    json_t *distinct = json_object(), *v;
    const char *path;
    size_t i, want;
    int rc = 0;

    json_array_foreach(a->ids, i, v)
    {
        if (!json_is_string(v)) {
            json_decref(distinct);
            return err_set(e, JOBD_EINTERNAL, "export_mark: ids[%zu] is not a string", i);
        }
        json_object_set(distinct, json_string_value(v), json_true());
    }
    want = json_object_size(distinct);
    json_decref(distinct);
    if (want) {
        rc = run(c, ST_export_mark, e, "at", a->ids, a->server_id);
        if (rc >= 0 && (size_t)rc != want)
            return err_set(e, JOBD_EDB,
                           "export_mark: only %d of the %zu jobs written are still this "
                           "server's (%s) to export; another server took the rest over, or "
                           "they were retried",
                           rc, want, a->server_id);
    }
    json_object_foreach((json_t *)a->files, path, v)
    {
        if (!json_is_integer(v))
            return err_set(e, JOBD_EINTERNAL, "export_file_set: size of %s is not an integer",
                           path);
        if ((rc = run(c, ST_export_file_set, e, "ti", path, (int64_t)json_integer_value(v))) < 0)
            return rc;
    }
    return rc;
}

static int pg_export_mark(store_t *base, const char *server_id, const json_t *ids,
                          const json_t *files, err_t *e)
{
    struct export_args a = {.server_id = str(server_id), .ids = ids, .files = files};
    return tx_write((pg_t *)base, do_export_mark, &a, e);
}

static int do_export_files(conn_t *c, void *arg, err_t *e)
{
    struct export_args *a = arg;
    PGresult *r;
    int rc = query(c, ST_export_files, &r, e, "");

    if (rc < 0)
        return rc;
    a->out = json_object();
    for (int i = 0; i < PQntuples(r); i++)
        json_object_set_new(a->out, PQgetvalue(r, i, 0), json_integer(col_int(r, i, 1)));
    PQclear(r);
    return JOBD_OK;
}

static int pg_export_files(store_t *base, json_t **files, err_t *e)
{
    struct export_args a = {0};
    return backend_deliver(tx_read((pg_t *)base, do_export_files, &a, e), &a.out, files);
}

/* ---- cross-server wake-up --------------------------------------------------- */

/* Connect w->pg and LISTEN on the channel. */
static int listen_connect(pg_t *s, watch_t *w, err_t *e)
{
    conn_t c = {0};
    int rc = pg_connect(s->conninfo, &c.pg, e);

    if (rc == JOBD_OK && (rc = exec_sql(&c, "LISTEN " CHANNEL, "listen", e)) < 0)
        PQfinish(c.pg);
    if (rc == JOBD_OK)
        w->pg = c.pg;
    return rc;
}

/* Wait up to ms for the stop pipe; true if the thread is to stop. */
static bool stop_requested(watch_t *w, int ms)
{
    struct pollfd p = {w->stop[0], POLLIN, 0};
    return poll(&p, 1, ms) > 0;
}

/* The listener: hand every notification to w->fn; when the connection is
 * lost, reconnect with backoff and then call w->fn(NULL), since jobs may
 * have become pending while no one listened. */
static void *listener(void *arg)
{
    pg_t *s = arg;
    watch_t *w = &s->watch;
    int backoff = 100;
    err_t e;

    pthread_setname_np(pthread_self(), "jobd-listen");
    for (;;) {
        struct pollfd p[2];
        PGnotify *n;

        if (!w->pg) {
            if (stop_requested(w, backoff))
                break;
            if (listen_connect(s, w, &e) < 0) {
                backoff = backoff * 2 > 2000 ? 2000 : backoff * 2;
                continue;
            }
            log_info("listening for jobs of other servers again");
            backoff = 100;
            w->fn(w->arg, NULL);
        }
        p[0] = (struct pollfd){PQsocket(w->pg), POLLIN, 0};
        p[1] = (struct pollfd){w->stop[0], POLLIN, 0};
        if (poll(p, 2, -1) < 0 && errno != EINTR)
            break;
        if (p[1].revents)
            break;
        if (!PQconsumeInput(w->pg) || PQstatus(w->pg) != CONNECTION_OK) {
            char buf[400];
            log_warn("lost the database connection that listens for jobs of other servers "
                     "(%s); reconnecting",
                     one_line(PQerrorMessage(w->pg), buf, sizeof buf));
            PQfinish(w->pg);
            w->pg = NULL;
            continue;
        }
        /* What this server announced itself, it has already announced to
         * its own waiting claims (store_watch): a second wake-up would only
         * cost a claim that finds nothing. */
        while ((n = PQnotifies(w->pg))) {
            if (n->be_pid != atomic_load(&s->announce.pid))
                w->fn(w->arg, n->extra[0] ? n->extra : NULL);
            PQfreemem(n);
        }
    }
    return NULL;
}

static int pg_watch(store_t *base, store_watch_fn fn, void *arg, err_t *e)
{
    pg_t *s = (pg_t *)base;
    watch_t *w = &s->watch;
    int rc;

    if (w->running)
        return err_set(e, JOBD_EINTERNAL, "store_watch: already watching");
    /* LISTEN before returning, so that a job submitted on another server
     * once jobd answers /health is heard. */
    if ((rc = listen_connect(s, w, e)) < 0)
        return rc;
    if (pipe2(w->stop, O_CLOEXEC) != 0)
        abort();
    w->fn = fn;
    w->arg = arg;
    if (pthread_create(&w->thread, NULL, listener, s) != 0)
        abort();
    w->running = true;
    return JOBD_OK;
}

static void watch_stop(watch_t *w)
{
    if (w->running) {
        if (write(w->stop[1], "x", 1) != 1)
            abort();
        pthread_join(w->thread, NULL);
        w->running = false;
    }
    if (w->pg)
        PQfinish(w->pg);
    w->pg = NULL;
    for (int i = 0; i < 2; i++)
        if (w->stop[i] >= 0)
            close(w->stop[i]);
    w->stop[0] = w->stop[1] = -1;
}

const store_backend_t store_pg_backend = {
    .name = "postgresql",
    .open = pg_open,
    .free = pg_free,
    .schema_version = pg_schema_version,
    .migrate_up = pg_migrate_up,
    .migrate_down = pg_migrate_down,
    .prepare = pg_prepare,
    .set_sync = pg_set_sync,
    .ping = pg_ping,
    .watch = pg_watch,
    .job_create = pg_job_create,
    .job_get = pg_job_get,
    .job_list = pg_job_list,
    .job_claim = pg_job_claim,
    .job_create_claim = pg_job_create_claim,
    .job_complete = pg_job_complete,
    .job_fail = pg_job_fail,
    .job_report_many = pg_job_report_many,
    .job_release = pg_job_release,
    .job_retry = pg_job_retry,
    .job_cancel = pg_job_cancel,
    .job_explain = pg_job_explain,
    .schedule_due = pg_schedule_due,
    .lease_expire = pg_lease_expire,
    .job_purge = pg_job_purge,
    .stats = pg_stats,
    .bot_register = pg_bot_register,
    .bot_heartbeat = pg_bot_heartbeat,
    .bot_sweep = pg_bot_sweep,
    .bot_get = pg_bot_get,
    .bot_list = pg_bot_list,
    .export_pending = pg_export_pending,
    .export_mark = pg_export_mark,
    .export_files = pg_export_files,
};
