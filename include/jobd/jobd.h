/*
 * jobd.h - the jobd client library: one C call per endpoint of the HTTP API
 * (docs/api.md), for the stock bot, jobctl and users' own programs.
 * A client owns one libcurl handle, so its connection to the server is kept
 * alive between calls; a client is not thread-safe (use one per thread).
 *
 * Conventions:
 *  - Every call returns JOBD_CLIENT_OK (0) or a negative JOBD_CLIENT_E* code,
 *    never aborts, and on failure records why in the client, readable with
 *    jobd_client_last_error() until the next call on that client.
 *  - OUT parameters are written only on success.  JSON results are new
 *    references (jansson) that the caller owns and must json_decref().
 *  - String and JSON arguments are borrowed: the library copies what it keeps.
 *
 * Link with the static library jobd_client, libcurl and jansson.
 */
#ifndef JOBD_JOBD_H
#define JOBD_JOBD_H

#include <jansson.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define JOBD_API __attribute__((visibility("default")))

/* Return codes.  Branch on these, or for JOBD_CLIENT_EHTTP on the server's
 * stable error code (jobd_error_t.code), never on message text. */
enum {
    JOBD_CLIENT_OK = 0,
    JOBD_CLIENT_EINVAL = -1,   /* a bad argument; nothing was sent */
    JOBD_CLIENT_ENOMEM = -2,   /* out of memory */
    JOBD_CLIENT_ENET = -3,     /* transport failure (connect, timeout, reset): status 0 */
    JOBD_CLIENT_EHTTP = -4,    /* the server answered with a non-2xx status */
    JOBD_CLIENT_EPROTO = -5,   /* a 2xx reply that is not what docs/api.md promises */
    JOBD_CLIENT_ECANCELED = -6 /* the caller's cancel flag stopped the call */
};

/* Room for an id (UUID text is 36 characters) and a lease token. */
#define JOBD_ID_MAX 128

/* Why the last call on a client failed. */
typedef struct jobd_error {
    int rc;              /* the JOBD_CLIENT_E* code the call returned */
    long status;         /* HTTP status; 0 when no reply came (network error) */
    char code[64];       /* the server's stable code ("lease_released"); "" if none */
    char message[1024];  /* the server's message, or curl's text for transport errors */
    char request_id[80]; /* the request's X-Request-Id: always set once a request was made */
} jobd_error_t;

typedef struct jobd_client jobd_client_t;

/* Settings for jobd_client_new().  Zero-initialise and set what you need. */
typedef struct jobd_client_options {
    const char *base_url;    /* required, e.g. "http://127.0.0.1:3001" */
    const char *admin_token; /* optional; sent only to admin endpoints */
    long timeout_ms;         /* per request, excluding a claim's wait; 0 means 10000 */
    int minimal;             /* non-zero: send "Prefer: return=minimal", so that the jobs
                              * in the replies of submits and reports are only their id and
                              * status, and leased jobs only what a bot needs (id, status,
                              * operation, input, attempts, lease, lease_expires_at;
                              * docs/api.md); reads stay whole */
} jobd_client_options_t;

/* One job leased by jobd_client_claim().  `job` is the object as the
 * server sent it (whole, or lean with `minimal`; owned by this struct); the other pointers borrow
 * from it and live as long as it does. */
typedef struct jobd_job {
    json_t *job;
    const char *id;
    const char *operation;
    const char *lease;
    const json_t *input;
} jobd_job_t;

/* A claim request (POST /jobs/claim). */
typedef struct jobd_claim_request {
    const char *bot_id;
    const char *const *operations; /* 1..64 names */
    size_t n_operations;
    int wait_ms;  /* long-poll time, 0..30000 */
    int max;      /* 1..100; 0 means 1 */
    int lease_ms; /* 0 means the server's default */
    /* Optional: when *cancel becomes non-zero (e.g. from a signal handler) the
     * call stops within about a second and returns JOBD_CLIENT_ECANCELED. */
    const volatile sig_atomic_t *cancel;
} jobd_claim_request_t;

/* Filters for jobd_client_list_jobs(); NULL or 0 leaves one out. */
typedef struct jobd_list_query {
    const char *status;
    const char *operation;
    int limit;
    const char *after; /* the `next` of the previous page */
} jobd_list_query_t;

/* Create a client.  Returns NULL when out of memory, when base_url is NULL or
 * when libcurl cannot be initialised.  Free with jobd_client_free(). */
JOBD_API jobd_client_t *jobd_client_new(const jobd_client_options_t *opts);

/* Free a client and close its connection.  jobd_client_free(NULL) is a no-op. */
JOBD_API void jobd_client_free(jobd_client_t *c);

/* Why the last failed call failed; borrowed, valid until the next call on c. */
JOBD_API const jobd_error_t *jobd_client_last_error(const jobd_client_t *c);

/* Format the last error for a person into buf:
 * "409 lease_released: <message> (request <id>)" for a server reply, and
 * "<message> (request <id>)" for anything else.  Returns buf. */
JOBD_API const char *jobd_client_error_format(const jobd_client_t *c, char *buf, size_t len);

/* True if the last failure may go away by itself and the call is worth
 * repeating unchanged: a network error or a 5xx reply. */
JOBD_API int jobd_client_error_is_transient(const jobd_client_t *c);

/* POST /bots/register.  OUT: bot_id (JOBD_ID_MAX bytes, caller's buffer). */
JOBD_API int jobd_client_register(jobd_client_t *c, const char *name, const char *const *operations,
                                  size_t n_operations, char bot_id[JOBD_ID_MAX]);

/* POST /bots/{id}/heartbeat with state "ready", "processing", "unhealthy" or
 * "offline".  Renews the bot's leases. */
JOBD_API int jobd_client_heartbeat(jobd_client_t *c, const char *bot_id, const char *state);

/* POST /bots/{id}/heartbeat naming the jobs the bot believes it holds:
 * `jobs` is an array of {"id": "...", "progress": any (optional)}.  Only
 * those leases are renewed.  OUT (optional): *reply, {"bot": {...}, "jobs":
 * {"held": [...], "cancelled": [...], "lost": [...]}}: stop working on the
 * cancelled and lost ones and do not report them. */
JOBD_API int jobd_client_heartbeat_jobs(jobd_client_t *c, const char *bot_id, const char *state,
                                        const json_t *jobs, json_t **reply);

/* POST /jobs/claim.  OUT: *jobs (an array of *count jobs, free with
 * jobd_client_jobs_free()) and *count.  A 204 (nothing within wait_ms) is
 * success with *jobs NULL and *count 0. */
JOBD_API int jobd_client_claim(jobd_client_t *c, const jobd_claim_request_t *req, jobd_job_t **jobs,
                               size_t *count);

/* Free what jobd_client_claim() returned.  NULL is a no-op. */
JOBD_API void jobd_client_jobs_free(jobd_job_t *jobs, size_t count);

/* POST /jobs/{id}/complete with any JSON result.  OUT (optional, may be
 * NULL): *job, the finished job. */
JOBD_API int jobd_client_complete(jobd_client_t *c, const char *bot_id, const char *job_id,
                                  const char *lease, const json_t *result, int64_t duration_ms,
                                  json_t **job);

/* POST /jobs/{id}/fail with an error text.  OUT (optional): *job. */
JOBD_API int jobd_client_fail(jobd_client_t *c, const char *bot_id, const char *job_id,
                              const char *lease, const char *error, int64_t duration_ms,
                              json_t **job);

/* POST /jobs/{id}/fail with "retryable": true: a failure that may go away
 * (a timeout, a busy resource); the job runs again after a backoff while
 * its max_attempts lasts.  OUT (optional): *job. */
JOBD_API int jobd_client_fail_retryable(jobd_client_t *c, const char *bot_id, const char *job_id,
                                        const char *lease, const char *error, int64_t duration_ms,
                                        json_t **job);

/* One item of jobd_client_report_many() and jobd_client_report_claim(): a
 * complete (result != NULL) or a fail (error != NULL) of one leased job.
 * All pointers are borrowed. */
typedef struct jobd_report {
    const char *job_id;
    const char *lease;
    const json_t *result; /* complete: any JSON value */
    const char *error;    /* fail */
    int64_t duration_ms;
    /* With error only: non-zero sends "retryable": true, a failure that may
     * go away (as jobd_client_fail_retryable); the job runs again after a
     * backoff while its max_attempts lasts.  Zero is a final failure. */
    int retryable;
} jobd_report_t;

/* POST /jobs/complete: n reports of one bot in one request and one server
 * transaction.  Each is fenced on its own: OUT: *results, the server's array
 * of n entries in order, each {"id", "job"} or {"id", "error": {"code",
 * "message"}}.  A failure of the whole request (network, 4xx, 5xx) is this
 * call's error, and then nothing was recorded. */
JOBD_API int jobd_client_report_many(jobd_client_t *c, const char *bot_id,
                                     const jobd_report_t *reports, size_t n, json_t **results);

/* POST /jobs/complete with a "claim": the n reports as
 * jobd_client_report_many(), and then, in the same server transaction, a
 * claim of more jobs for bot_id as jobd_client_claim() makes it (its
 * operations, max, wait_ms, lease_ms and cancel; claim->bot_id must be NULL
 * or bot_id).  A bot that is done with its jobs and wants more makes one
 * request (and the server one commit) instead of two.  claim may be NULL:
 * then this is jobd_client_report_many() and no job is leased.
 *
 * OUT: *results as jobd_client_report_many(); *jobs and *count as
 * jobd_client_claim() (free with jobd_client_jobs_free()): *jobs NULL and
 * *count 0 when nothing was pending within claim->wait_ms, which the
 * request waits for like a claim, with its reports already recorded.  A
 * server older than this request ignores the claim and answers without
 * "jobs": that too is success with no job, so the caller claims as before.
 *
 * On a failure of the whole request the reports may have been recorded and
 * jobs leased anyway (a reply lost to the network, a 503 or a cancel while
 * waiting): sending the same reports again is harmless, the server accepts
 * a repeat without recording it twice.  Jobs leased by a reply that was
 * lost are unknown to the caller; their leases run out and they run again. */
JOBD_API int jobd_client_report_claim(jobd_client_t *c, const char *bot_id,
                                      const jobd_report_t *reports, size_t n,
                                      const jobd_claim_request_t *claim, json_t **results,
                                      jobd_job_t **jobs, size_t *count);

/* POST /jobs.  OUT (optional): *job, the new job. */
JOBD_API int jobd_client_submit(jobd_client_t *c, const char *operation, const json_t *input,
                                int64_t priority, json_t **job);

/* POST /jobs with an idempotency key (NULL: none): sending the same submit
 * again, say after a lost reply, makes no second job; *job is then the job
 * the key names (docs/api.md). */
JOBD_API int jobd_client_submit_keyed(jobd_client_t *c, const char *operation, const json_t *input,
                                      int64_t priority, const char *idempotency_key, json_t **job);

/* GET /jobs/{id}.  OUT: *job, with its history. */
JOBD_API int jobd_client_get_job(jobd_client_t *c, const char *id, json_t **job);

/* GET /jobs.  query may be NULL.  OUT: *page, {"jobs": [...], "next": ...}. */
JOBD_API int jobd_client_list_jobs(jobd_client_t *c, const jobd_list_query_t *query, json_t **page);

/* GET /stats.  OUT: *stats. */
JOBD_API int jobd_client_stats(jobd_client_t *c, json_t **stats);

/* POST /jobs/{id}/release, an admin call: sends admin_token.  Without one the
 * request goes out bare and the server answers 401 unauthorized (or 403
 * admin_disabled), so the caller learns the server's view.  reason may be
 * NULL.  OUT (optional): *job. */
JOBD_API int jobd_client_release(jobd_client_t *c, const char *id, const char *reason,
                                 json_t **job);

/* POST /jobs/{id}/retry and /cancel, admin calls like release: retry gives
 * a failed or cancelled job a fresh budget; cancel ends a pending or
 * processing job.  reason may be NULL.  OUT (optional): *job. */
JOBD_API int jobd_client_retry(jobd_client_t *c, const char *id, const char *reason, json_t **job);
JOBD_API int jobd_client_cancel(jobd_client_t *c, const char *id, const char *reason, json_t **job);

/* GET /jobs/{id}/explain: why the job is where it is.  OUT: *explanation. */
JOBD_API int jobd_client_explain(jobd_client_t *c, const char *id, json_t **explanation);

/* GET /health.  OUT (optional): *health.  A 503 is a JOBD_CLIENT_EHTTP error. */
JOBD_API int jobd_client_health(jobd_client_t *c, json_t **health);

#ifdef __cplusplus
}
#endif

#endif
