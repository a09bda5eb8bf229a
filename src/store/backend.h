/*
 * backend.h - what the backends of store.h share (private to src/store): the
 * column lists of their SQL, rows read as records, the fencing refusals of
 * complete/fail and the counters of store_stats.  Kept in one place so that a
 * job, a refusal or a count reads the same from SQLite and PostgreSQL.
 */
#ifndef JOBD_BACKEND_H
#define JOBD_BACKEND_H

#include "err.h"
#include "record.h"
#include "store.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

/* The records a row can be read as. */
enum rec_kind {
    REC_KIND_JOB,
    REC_KIND_JOB_SUMMARY,
    REC_KIND_BOT,
    REC_KIND_ATTEMPT,
    REC_KIND_EVENT
};

/* The fields of kind k, in column order.  OUT: *n, how many. */
const record_field_t *backend_fields(enum rec_kind k, size_t *n);

/* The SQL text `sql` with {job}, {summary}, {bot}, {attempt} and {event}
 * replaced by the column lists of record.h, so that what a SELECT reads is
 * exactly what the API shows, and {job_json} by a job's record as SQLite's
 * json_object() expression (record_job_json_sqlite).  A new string the
 * caller frees with free(). */
char *backend_sql(const char *sql);

/* A new, empty export batch (store_export_pending; store_export_free). */
store_export_t *backend_export_new(void);

/* Add one job to an export batch, copying id and line (len bytes, no NUL
 * needed). */
void backend_export_add(store_export_t *b, const char *id, bool finished, int64_t finished_at,
                        const char *line, size_t len);

/* The same for a job read as a whole record (REC_KIND_JOB): written as
 * compact JSON here, by the backend that cannot have its database write
 * it. */
void backend_export_add_record(store_export_t *b, const json_t *job);

/* RFC 3339 text of ms, written into buf and returned. */
const char *backend_when(int64_t ms, char buf[32]);

/* The JSON form of a time in ms, as record_value shows a REC_TIME column.
 * A new reference. */
json_t *backend_time_json(int64_t ms);

/* Hand *r to *out on success; drop it otherwise, so that OUT parameters are
 * written only on success.  r is a pointer so that it is read after the
 * call that fills it, in backend_deliver(tx(...), &a.job, out).  Returns rc. */
int backend_deliver(int rc, json_t **r, json_t **out);

/* What an attempt row says about a lease. */
struct backend_attempt {
    char job_id[64], bot_id[64], outcome[16], error[256];
    int64_t ended_at;
};

/* One store_job_complete or store_job_fail call. */
struct backend_finish {
    const char *id, *bot_id, *lease;
    bool ok; /* complete (succeeded) rather than fail */
    const json_t *result;
    const char *error;
    int64_t duration_ms;
    json_t *job;                /* OUT: the job as it now is */
    bool repeated;              /* OUT: the call repeated the one that finished the job */
    const store_retry_t *retry; /* fail: retryable with this backoff; NULL: not */
    bool brief;                 /* job is only {"id", "status"} (job_report_t.brief) */
    bool summary;               /* with brief, job is its summary (job_report_t.summary) */
};

/* Why finish call a, under attempt r which is no longer running, of a job
 * now in `status`, is refused (a JOBD_E* code, e filled); or 0 if it repeats
 * the very call that finished the job and is to be answered again. */
int backend_refuse(const struct backend_finish *a, const struct backend_attempt *r,
                   const char *status, err_t *e);

/* The argument of the sweeps that take a time and count what they changed
 * (store_schedule_due, store_lease_expire, store_job_purge). */
struct backend_count {
    int64_t now; /* ms since the epoch (store_job_purge: the finish cutoff) */
    int limit;   /* the most jobs to change; 0: no limit */
    int n;       /* OUT: how many jobs changed */
};

/* The reports of store_job_report_many, run in the caller's open
 * transaction on connection `conn` by `finish` (the backend's complete/fail
 * step).  A refusal is that report's answer; any other failure is returned
 * and ends the batch. */
int backend_report_each(void *conn, int (*finish)(void *conn, struct backend_finish *f, err_t *e),
                        const char *bot_id, job_report_t *reports, size_t n, err_t *e);

/* After a failed batch: drop every job a report had got, so that no OUT
 * field is set.  Returns rc. */
int backend_report_undo(int rc, job_report_t *reports, size_t n);

/* The input of spec as JSON text: the caller's (spec->input_text), or a
 * new one left in *owned for the caller to free.  NULL when spec has no
 * input, or it cannot be written (then *owned is NULL too). */
const char *backend_input_text(const job_spec_t *spec, char **owned);

/* A brief job (store_job_create_many): {"id": id, "status": status}, both
 * ASCII.  A new reference. */
json_t *backend_brief(const char *id, const char *status);

/* The brief form of a whole job: its id and status.  A new reference. */
json_t *backend_brief_of(const json_t *job);

/* The summary of a whole job (record.h JOB_SUMMARY_FIELDS).  A new
 * reference. */
json_t *backend_summary_of(const json_t *job);

/* Cut the job of each report that asked to be brief down to its summary
 * if it asked for that (job_report_t.summary), else to its id and
 * status, for a backend that reads whole rows back anyway. */
void backend_report_brief(job_report_t *reports, size_t n);

/* The same for the claim made with them (NULL: none): drop its jobs. */
int backend_claim_undo(int rc, job_claim_t *claim);

/* True for the codes that refuse one report of a batch (fencing, unknown
 * job) without failing the rest, as opposed to database failures. */
bool backend_is_refusal(int rc);

/* The backoff before the retry that follows a job's `failures`-th failed
 * attempt (store.h, store_retry_t), with its random part. */
int64_t backend_retry_delay(const store_retry_t *retry, int64_t failures);

/* A store_stats object with every count at 0, so that a count the database
 * does not report reads 0.  A new reference. */
json_t *backend_stats_new(void);

/* Add n jobs of `operation` in `status` to stats. */
void backend_stats_add_jobs(json_t *stats, const char *operation, const char *status, int64_t n);

/* Add n bots in `state` to stats. */
void backend_stats_add_bots(json_t *stats, const char *state, int64_t n);

#endif
