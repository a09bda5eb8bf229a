/*
 * store.h - the storage interface of jobd: every read and write of jobs,
 * bots, attempts and the datalake outbox.  The server calls only this; no
 * SQL exists outside src/store.  Each backend (store_sqlite.c,
 * store_pg.c) implements it, and tests/store runs one contract suite on all.
 *
 * Conventions:
 *  - Every function returns JOBD_OK or a negative JOBD_E* code (err.h) and,
 *    on failure, fills `e` with the real cause (for database errors, the
 *    database's own message).  `e` may be NULL.
 *  - OUT parameters are written only on success; JSON results are new
 *    references the caller owns and must json_decref().
 *  - A store_t is thread-safe: any thread may call any function at any time.
 *    Each call is its own transaction; the HTTP layer never holds one open,
 *    so that a backend may group the changes of concurrent calls into one
 *    commit.
 *  - Jobs and bots are returned as JSON objects whose fields are exactly
 *    JOB_FIELDS / BOT_FIELDS (record.h).
 */
#ifndef JOBD_STORE_H
#define JOBD_STORE_H

#include "err.h"
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct store store_t;

/* ---- lifecycle and schema ------------------------------------------------ */

/* Open the database named by `db`: a "postgresql://" or "postgres://" URL or
 * a libpq "key=value" string (PostgreSQL, connected at once), or else a file
 * path (SQLite, created if missing).  Does not migrate or prepare.  No
 * message ever repeats `db`: it may hold a password.
 * OUT: *out, freed with store_free(). */
int store_open(const char *db, store_t **out, err_t *e);

/* Which database s is, for the log, never with a password: "SQLite database
 * /var/lib/jobd/jobd.db" or "PostgreSQL database jobd on db1:5432 as jobd".
 * Valid while s is. */
const char *store_where(const store_t *s);

/* Close the database and free s.  store_free(NULL) is a no-op. */
void store_free(store_t *s);

/* Schema version recorded in the database (0 for an empty database) and the
 * latest version this binary knows. */
int store_schema_version(store_t *s, int *current /* OUT */, int *latest /* OUT */, err_t *e);

/* Name of migration `version` (1..latest), e.g. "initial schema"; NULL if
 * out of range. */
const char *store_migration_name(int version);

/* Apply every pending migration, each in its own transaction, in order.
 * Fails with JOBD_ESCHEMA if the database is newer than this binary. */
int store_migrate_up(store_t *s, err_t *e);

/* Roll back the latest applied migration (one version); nothing to do at
 * version 0.  Fails with JOBD_ESCHEMA if the database is newer than this
 * binary, whose down scripts cannot undo what it does not know. */
int store_migrate_down(store_t *s, err_t *e);

/* Prepare every statement the backend uses against the live schema.  Fails
 * with JOBD_ESCHEMA naming the statement and the database's error if any
 * does not fit, or if the schema version is not the latest.  Must succeed
 * before any other call below (they fail with JOBD_ESCHEMA until it does);
 * a migration that changes the schema undoes it, so call it again after
 * store_migrate_up/down. */
int store_prepare(store_t *s, err_t *e);

/* How far a commit has gone when a call returns.  STORE_SYNC_FULL, the
 * default: to the disk (SQLite: the WAL fsync'd after every commit, see
 * store_sqlite.c "durability"; PostgreSQL synchronous_commit=on).  STORE_SYNC_NORMAL: to the
 * operating system (SQLite synchronous=NORMAL in WAL mode) or to
 * PostgreSQL's memory (synchronous_commit=off, written within about
 * 3 x wal_writer_delay): it survives a crash of jobd, and PostgreSQL's
 * process too, but a crash of the machine may take back the latest
 * commits.  Neither mode can corrupt the database. */
typedef enum { STORE_SYNC_FULL, STORE_SYNC_NORMAL } store_sync_t;

int store_set_sync(store_t *s, store_sync_t sync, err_t *e);

/* Cheap round trip to the database, for /health. */
int store_ping(store_t *s, err_t *e);

/* Called when a job of `operation` (NULL: of any operation) may have become
 * pending through another server sharing the database. */
typedef void (*store_watch_fn)(void *arg, const char *operation);

/* Call fn(arg, operation) from a thread of the store's own whenever another
 * server makes a job pending, until store_free(); arg must outlive the
 * store.  Not for this store's own changes: the caller announces those to
 * its waiting claims itself, as each call that can make a job pending
 * returns (submit, release, retry, the sweeps, an offline heartbeat).  After
 * losing and regaining the database it calls fn(arg, NULL), since it may
 * have missed some.  Once per store.  SQLite (one server per database) has
 * nothing to watch and returns JOBD_OK. */
int store_watch(store_t *s, store_watch_fn fn, void *arg, err_t *e);

/* ---- jobs -------------------------------------------------------------- */

/* A job to submit (store_job_create). */
typedef struct job_spec {
    const char *operation;
    const json_t *input;         /* any JSON object, borrowed */
    const char *input_text;      /* input as compact JSON text if the caller has it already
                                  * (borrowed); NULL: the store writes it */
    int64_t priority;            /* higher is claimed first */
    int64_t max_attempts;        /* >= 1: how many failed attempts end the job */
    int64_t run_at;              /* ms since the epoch; 0 for now */
    const char *idempotency_key; /* NULL for none; else a second submit with this key makes
                                  * no job and gets the first one's (while it exists) */
} job_spec_t;

/* Insert a job: "pending", or "scheduled" when spec->run_at is in the
 * future (store_schedule_due makes it pending then).  OUT: *job. */
int store_job_create(store_t *s, const job_spec_t *spec, json_t **job, err_t *e);

/* Insert n jobs (n >= 1) as store_job_create does, in one transaction, all
 * or nothing: if one is refused none is inserted, and for n > 1 the message
 * starts with "jobs[i]: " naming the first refused item.
 * OUT: *jobs, an array of the n new jobs in order; with `brief`, each only
 * {"id", "status"}, which a backend may know without reading the row back
 * (a client that asked for a minimal reply needs no more). */
int store_job_create_many(store_t *s, const job_spec_t *specs, size_t n, bool brief, json_t **jobs,
                          err_t *e);

/* The job with its "history" array (ATTEMPT_FIELDS objects, oldest first;
 * "attempts" is the job's claim count) and its "events" array (EVENT_FIELDS
 * objects, oldest first: the admin actions on it).  JOBD_ENOTFOUND if there
 * is no such job.  OUT: *job. */
int store_job_get(store_t *s, const char *id, json_t **job, err_t *e);

typedef struct job_filter {
    const char *status;    /* NULL for any */
    const char *operation; /* NULL for any */
    const char *after;     /* keyset cursor: only ids greater than this; NULL for start */
    int limit;             /* 1..1000 */
} job_filter_t;

/* Jobs matching f in id order (creation order, ids are UUIDv7).
 * OUT: *jobs, an array. */
int store_job_list(store_t *s, const job_filter_t *f, json_t **jobs, err_t *e);

/* Lease up to `max` pending jobs whose operation is one of ops[0..nops),
 * highest priority first, then oldest, to bot `bot_id` for lease_ms.  Each
 * returned job carries two extra fields, "lease" (the fencing token to
 * present on complete/fail) and "lease_expires_at"; with `brief`, its other
 * fields are only its summary (record.h JOB_SUMMARY_FIELDS).  An empty
 * array when nothing is pending.  JOBD_EUNKNOWNBOT if the bot is not
 * registered.  OUT: *jobs. */
int store_job_claim(store_t *s, const char *bot_id, const char *const *ops, size_t nops, int max,
                    int64_t lease_ms, bool brief, json_t **jobs, err_t *e);

/* A submit that meets a bot waiting for its operation (the hand-off):
 * insert one job as store_job_create_many does and, in the same
 * transaction, claim for bot `bot_id` as store_job_claim does with
 * operations {spec->operation} and max 1, so that the job reaches the bot
 * with one commit, not two.  The claim takes the job any claim would take
 * first: the new one, unless another pending job of the operation comes
 * before it (higher priority, or as high and older), which it then takes
 * instead, leaving the new one pending.  A bot that is not registered
 * claims nothing; the job is created all the same.
 * OUT: *job, as store_job_create_many's one item (brief or whole);
 * *claimed, an array of 0 or 1 jobs as store_job_claim's. */
int store_job_create_claim(store_t *s, const job_spec_t *spec, bool brief, const char *bot_id,
                           int64_t lease_ms, json_t **job, json_t **claimed, err_t *e);

/* The backoff of a retryable failure: the k-th failure of a job waits
 * min(max_ms, base_ms * 2^(k-1)), less a random part of up to half of it
 * (jitter, so that jobs failed together do not come back together). */
typedef struct store_retry {
    int64_t base_ms, max_ms;
} store_retry_t;

/* Finish a job the bot holds under `lease`: succeeded with `result` (any
 * JSON value, borrowed) for complete, or failed with `error` for fail.
 * Fencing: the job must be processing under exactly this lease and bot,
 * else JOBD_EFINISHED / JOBD_ERELEASED / JOBD_EEXPIRED / JOBD_ECANCELLED /
 * JOBD_EMISMATCH with a message saying when and why; nothing is recorded.
 * Repeating the call that finished the attempt succeeds, records nothing,
 * and sets *repeated.
 * A fail with `retry` (NULL: not retryable) counts against the job's
 * max_attempts: while the budget lasts the job becomes "scheduled" with
 * run_at after the backoff, otherwise "failed".  OUT: *job, *repeated. */
int store_job_complete(store_t *s, const char *id, const char *bot_id, const char *lease,
                       const json_t *result, int64_t duration_ms, json_t **job, bool *repeated,
                       err_t *e);
int store_job_fail(store_t *s, const char *id, const char *bot_id, const char *lease,
                   const char *error, const store_retry_t *retry, int64_t duration_ms, json_t **job,
                   bool *repeated, err_t *e);

/* One result in a store_job_report_many() batch. */
typedef struct job_report {
    const char *id, *lease;
    bool ok;                    /* complete with result, rather than fail with error */
    const json_t *result;       /* complete: any JSON value (borrowed) */
    const char *error;          /* fail */
    const store_retry_t *retry; /* fail: retryable with this backoff; NULL: not */
    int64_t duration_ms;
    bool brief;    /* the job OUT is only {"id", "status"}: nothing else is read back */
    bool summary;  /* with brief, the job OUT is its summary (record.h JOB_SUMMARY_FIELDS),
                    * for a log line: what is read back is no more than that */
    int rc;        /* OUT: JOBD_OK, or why this one was refused (fencing, not found) */
    err_t err;     /* OUT: when rc != JOBD_OK */
    json_t *job;   /* OUT: when rc == JOBD_OK, the job as it now is; the caller owns it */
    bool repeated; /* OUT: as for store_job_complete */
} job_report_t;

/* A claim made in the same transaction as a batch of reports: the
 * arguments of store_job_claim, for the reporting bot. */
typedef struct job_claim {
    const char *const *ops;
    size_t nops;
    int max;
    int64_t lease_ms;
    bool brief;   /* as store_job_claim's */
    json_t *jobs; /* OUT: when the call returns JOBD_OK, as store_job_claim's; the caller owns it */
} job_claim_t;

/* Report n results of bot `bot_id` in one transaction.  Each is fenced on
 * its own exactly as store_job_complete / store_job_fail: a refused one gets
 * its rc and err and changes nothing, the others are recorded.
 * With `claim` (NULL: none), the same transaction then leases jobs to the
 * bot as store_job_claim does, after the reports: a bot that is done with
 * its jobs and wants more waits for one commit, not two.
 * Fails as a whole (recording nothing, leasing nothing, no OUT fields set)
 * only when the database does, or the claim does (JOBD_EUNKNOWNBOT). */
int store_job_report_many(store_t *s, const char *bot_id, job_report_t *reports, size_t n,
                          job_claim_t *claim, err_t *e);

/* Admin: put a processing job back to pending, ending its attempt with
 * outcome "released" and `reason`, and record the event.  JOBD_ENOTPROC if
 * it is not processing.  OUT: *job. */
int store_job_release(store_t *s, const char *id, const char *reason, json_t **job, err_t *e);

/* Admin: give a failed or cancelled job a fresh retry budget and make it
 * pending again (it will be exported to the datalake again when it
 * finishes), recording the event.  JOBD_ENOTRETRY for any other status.
 * OUT: *job. */
int store_job_retry(store_t *s, const char *id, const char *reason, json_t **job, err_t *e);

/* Admin: cancel a pending, scheduled or processing job, recording the
 * event; a processing job's attempt ends "cancelled" and its lease is void
 * (JOBD_ECANCELLED for a later complete/fail).  JOBD_EFINISHED if it
 * already succeeded or failed, JOBD_ECANCELLED if already cancelled.
 * OUT: *job. */
int store_job_cancel(store_t *s, const char *id, const char *reason, json_t **job, err_t *e);

/* The facts behind GET /jobs/{id}/explain: {"job": the job as store_job_get
 * shows it, "ahead": pending jobs of its operation claimed before it (0
 * unless pending), "live_bots": bots in state ready or processing that
 * offer its operation, "bot": the holder's bot object while processing,
 * else null, "lease_expires_at": the lease's end while processing, else
 * null}.  JOBD_ENOTFOUND if there is no such job.  OUT: *facts. */
int store_job_explain(store_t *s, const char *id, json_t **facts, err_t *e);

/* Make every scheduled job whose run_at is at or before now_ms pending.
 * OUT: *n, how many. */
int store_schedule_due(store_t *s, int64_t now_ms, int *n, err_t *e);

/* Put every processing job whose lease ended before now_ms back to pending
 * (attempt outcome "expired").  OUT: *n, how many. */
int store_lease_expire(store_t *s, int64_t now_ms, int *n, err_t *e);

/* Retention: delete up to `limit` (>= 1) jobs that are finished
 * (succeeded, failed or cancelled), exported to the datalake
 * (store_export_mark), and finished before finished_before_ms, oldest finish
 * first, with their attempts and events, in one transaction.  A job not yet
 * exported is never deleted, nor is a pending, scheduled or processing one,
 * and jobs that finished after the oldest one still waiting for the
 * datalake wait for it (the purge goes in finish order, as the export does);
 * afterwards store_job_get answers JOBD_ENOTFOUND for a deleted job.  Walks
 * an index, so its cost does not grow with the number of jobs kept.
 * OUT: *n, how many were deleted (< limit: none is left to delete now). */
int store_job_purge(store_t *s, int64_t finished_before_ms, int limit, int *n, err_t *e);

/* Counts: {"jobs":{"pending":n,...,"total":n},"operations":{"sum":{"pending":n,...}},
 * "bots":{"ready":n,...}}, and on SQLite {"sqlite":{"commits":n,"fsyncs":n}}
 * since the store was opened.  OUT: *stats. */
int store_stats(store_t *s, json_t **stats, err_t *e);

/* ---- bots -------------------------------------------------------------- */

/* Register a bot in state "ready".  `operations` is an array of strings
 * (borrowed).  OUT: *bot. */
int store_bot_register(store_t *s, const char *name, const json_t *operations, json_t **bot,
                       err_t *e);

/* Record that the bot is alive in `state` (ready, processing, unhealthy,
 * offline) and renew leases by lease_ms.  `jobs` is NULL (renew every job
 * the bot holds) or an array of {"id": "...", "progress": any JSON
 * (optional)} naming the jobs the bot believes it holds: only those are
 * renewed (so a lease whose claim reply never reached the bot runs out),
 * and their progress is kept.  A bot that says "offline" loses what it
 * still holds (attempt outcome "worker_lost").
 * JOBD_EUNKNOWNBOT if not registered.
 * OUT: *reply, {"bot": the bot object, "jobs": {"held": [ids the bot
 * holds], "cancelled": [ids it sent whose job an admin cancelled], "lost":
 * [ids it sent that were taken back from it or never were its]}}. */
int store_bot_heartbeat(store_t *s, const char *id, const char *state, int64_t lease_ms,
                        const json_t *jobs, json_t **reply, err_t *e);

/* Bot health: a bot in state ready, processing or unhealthy last seen
 * before offline_before becomes "offline", one last seen before
 * unhealthy_before "unhealthy"; either way the jobs it holds go back to
 * pending at once (attempt outcome "worker_lost", not counted against their
 * retry budget).  OUT: *changes, an array of {"id", "name", "state" (the
 * new one), "last_seen_at", "jobs": [ids taken back]}. */
int store_bot_sweep(store_t *s, int64_t unhealthy_before, int64_t offline_before, json_t **changes,
                    err_t *e);

/* Bot objects (here and below) add "jobs": the ids of the jobs the bot
 * holds.  JOBD_EUNKNOWNBOT if not registered.  OUT: *bot. */
int store_bot_get(store_t *s, const char *id, json_t **bot, err_t *e);

/* Every bot, oldest registration first.  OUT: *bots, an array. */
int store_bot_list(store_t *s, json_t **bots, err_t *e);

/* ---- datalake outbox ----------------------------------------------------
 * The datalake is driven from the database: a finished job waits in the
 * export queue (a table of its own: the transaction that finishes a job
 * adds it, one that retries it takes it out) until store_export_mark()
 * records, in one transaction, that it was written and the new size of
 * every file written.  After a crash the writer
 * truncates each file back to its recorded size and exports again whatever
 * is still unexported, so every job is in the datalake exactly once.
 * Several servers sharing a database each export under their own
 * `server_id` (their files are named by it): a job goes to one of them. */

/* One job of an export batch, as the datalake writes it. */
typedef struct store_export_job {
    char *id;
    bool finished;       /* false only for a row without finished_at (a damaged one) */
    int64_t finished_at; /* ms since the epoch: the day's file it goes to */
    char *line;          /* the job's record (record.h JOB_FIELDS, the object GET
                            /jobs/{id} answers) as one line of JSON, without '\n' */
    size_t len;          /* strlen(line) */
} store_export_job_t;

/* A batch of jobs to export.  Owns every string in it; store_export_free. */
typedef struct store_export {
    store_export_job_t *jobs;
    size_t n, cap;
} store_export_t;

/* Up to `limit` finished, unexported jobs, oldest finish first, claimed for
 * server_id's export: no other server gets them while it may still mark
 * them (PostgreSQL; SQLite has one server per database and ignores
 * server_id).  Calling it again before marking returns the same jobs
 * first.  Each comes as its datalake line, written by the database
 * (SQLite's json_object) where it can, which spares the writer building
 * and freeing a JSON tree per job.  OUT: *batch, freed with
 * store_export_free(). */
int store_export_pending(store_t *s, const char *server_id, int limit, store_export_t **batch,
                         err_t *e);

/* Free a batch of store_export_pending (NULL is fine). */
void store_export_free(store_export_t *batch);

/* Mark the jobs whose ids are in `ids` (array of strings) exported and set
 * the recorded size of each file in `files` ({"relative/path": size}).
 * Fails, recording nothing, if a job is no longer server_id's to export
 * (another server took its claim over, or it was retried since it was
 * written): the caller then cuts its files back and exports again. */
int store_export_mark(store_t *s, const char *server_id, const json_t *ids, const json_t *files,
                      err_t *e);

/* Every datalake file's recorded size. OUT: *files, {"relative/path": size}. */
int store_export_files(store_t *s, json_t **files, err_t *e);

#endif
