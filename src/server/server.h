/*
 * server.h - the jobd server's shared state and the request/reply types that
 * connect the HTTP layer (http.c) to the resource handlers (jobs.c, bots.c,
 * service.c).  Handlers see a parsed request and fill a reply; they never
 * touch libmicrohttpd, so they can be driven by tests without a socket.
 */
#ifndef JOBD_SERVER_H
#define JOBD_SERVER_H

#include "err.h"
#include "store.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct waitq waitq_t;
typedef struct datalake datalake_t;
typedef struct claimnotes claimnotes_t;

typedef struct server_config {
    char listen[256];      /* "host:port"; port 0 picks a free one */
    char data_dir[1024];   /* holds jobd.db (unless db is set) and datalake/ */
    char db[2048];         /* --db: a PostgreSQL URL or conninfo; empty for SQLite */
    char server_id[128];   /* names this server's datalake files */
    char admin_token[256]; /* empty: admin endpoints disabled */
    int64_t lease_ms;      /* default lease of a claim */
    int64_t heartbeat_ms;  /* the heartbeat period bots are expected to keep */
    int unhealthy_after;   /* missed heartbeats before a bot is unhealthy and loses its jobs */
    int offline_after;     /* missed heartbeats before it is offline */
    store_retry_t retry;   /* backoff of retryable failures */
    int64_t retention_ms;  /* a finished job in the datalake leaves the database this long
                            * after it finished (0: once exported) */
    size_t max_body;       /* bytes of a request body */
    size_t max_input;      /* bytes of a job's input as JSON */
    unsigned threads;      /* request threads (http.c) */
    bool migrate;          /* apply pending migrations at start */
    const char *sync_name; /* --sync as given: "full" or "normal" */
    store_sync_t sync;     /* how far a commit goes before its reply */
} server_config_t;

typedef struct server {
    server_config_t cfg;
    store_t *store;
    waitq_t *waitq;
    datalake_t *datalake;
    claimnotes_t *notes; /* claimnote.h; NULL: every report reads its job for the log */
    int schema_version;
    volatile int stopping; /* set once by the signal path; read by handlers */
    int64_t started_ms;    /* wall clock at start: bots get time to heartbeat after a restart */
} server_t;

#define REQ_MAX_ARGS 16

/* A request as the handlers see it.  All strings are borrowed from the HTTP
 * layer and live until the reply is sent. */
typedef struct req {
    const char *method;
    const char *path;      /* without the query string */
    const char *params[4]; /* ":id" segments of the route, in order */
    const char *arg_names[REQ_MAX_ARGS];
    const char *arg_values[REQ_MAX_ARGS];
    size_t nargs;
    const char *authorization; /* the Authorization header or NULL */
    bool minimal;              /* "Prefer: return=minimal" (RFC 7240): the client needs
                                * no job objects in the reply of a change, only ids and
                                * statuses */
    const char *body;          /* NUL-terminated; NULL when empty */
    size_t body_len;
    const char *request_id;
    int64_t wait_deadline; /* long-poll deadline (mono ms) kept across wake-ups; 0 at first */
    bool woken;            /* this run follows a wake by an announcement (waitq_rerun) */
    json_t *handed;        /* the jobs a submit handed this waiting claim (waitq_give), or
                            * NULL; owned by the caller: a handler keeps a reference */
    const json_t *carry;   /* what the handler's previous run kept (reply.carry), or NULL */
} req_t;

/* What a handler produces: a JSON body with a status, an error, or (for a
 * long-poll) a request to wait until `wait_until` (mono ms) for a job of one
 * of `wait_ops` and then run the handler again. */
typedef struct reply {
    int status;   /* 2xx; 0 when err is set */
    json_t *body; /* owned; NULL for no body (204) */
    err_t err;    /* err.rc != 0: an error reply */
    int64_t wait_until;
    json_t *wait_ops;      /* owned; array of operation names */
    char *wait_bot;        /* owned: the waiting bot, to whom a submit may hand a job */
    int64_t wait_lease_ms; /* the lease such a job gets */
    uint64_t wait_seq;     /* waitq sequence seen before the handler looked */
    json_t *carry;         /* owned: a waiting handler's state for its next run (req.carry);
                            * NULL keeps what the last run kept */
    char allow[64];        /* Allow header of a 405 */
    bool minimal;          /* the reply honours req.minimal (Preference-Applied) */
} reply_t;

/* Query argument `name` of req, or NULL. */
const char *req_arg(const req_t *req, const char *name);

/* Fill rep with status and body (ownership of body passes to rep).
 * Returns 0. */
int reply_json(reply_t *rep, int status, json_t *body);

/* What a reply shows of `job` (a job object): the whole of it, or, for a
 * request that prefers a minimal reply, {"id", "status"} (and rep says the
 * preference was applied).  Takes the reference to job; returns a new one. */
json_t *reply_job(const req_t *req, reply_t *rep, json_t *job);

/* What a reply shows of the jobs a claim leased (an array): whole jobs, or,
 * for a request that prefers a minimal reply, only what a bot needs to run
 * and report each one (CLAIMED_FIELDS in router.c).  Takes the reference to
 * jobs; returns a new one. */
json_t *reply_claimed(const req_t *req, reply_t *rep, json_t *jobs);

/* Fill rep with the error in e.  Returns e->rc. */
int reply_err(reply_t *rep, const err_t *e);

/* Check the request's admin bearer token (constant time): JOBD_OK, or
 * JOBD_EADMINOFF / JOBD_EUNAUTH / JOBD_EFORBIDDEN with e filled. */
int require_admin(const server_t *srv, const req_t *req, err_t *e);

/* The words of GET /jobs/{id}/explain for the facts of store_job_explain,
 * as of now_ms: {"status", "reason": "...", plus the fields the reason is
 * made of}.  A new reference. */
json_t *explain_job(const json_t *facts, int64_t now_ms);

/* Route one request to its handler and fill rep.  Thread-safe. */
void router_dispatch(server_t *srv, req_t *req, reply_t *rep);

/* Handlers, one per endpoint (router.c holds the table). */
void jobs_submit(server_t *srv, req_t *req, reply_t *rep);
void jobs_get(server_t *srv, req_t *req, reply_t *rep);
void jobs_list(server_t *srv, req_t *req, reply_t *rep);
void jobs_claim(server_t *srv, req_t *req, reply_t *rep);
void jobs_complete(server_t *srv, req_t *req, reply_t *rep);
void jobs_fail(server_t *srv, req_t *req, reply_t *rep);
void jobs_report_batch(server_t *srv, req_t *req, reply_t *rep);
void jobs_release(server_t *srv, req_t *req, reply_t *rep);
void jobs_retry(server_t *srv, req_t *req, reply_t *rep);
void jobs_cancel(server_t *srv, req_t *req, reply_t *rep);
void jobs_explain(server_t *srv, req_t *req, reply_t *rep);
void bots_register(server_t *srv, req_t *req, reply_t *rep);
void bots_heartbeat(server_t *srv, req_t *req, reply_t *rep);
void bots_get(server_t *srv, req_t *req, reply_t *rep);
void bots_list(server_t *srv, req_t *req, reply_t *rep);
void service_health(server_t *srv, req_t *req, reply_t *rep);
void service_stats(server_t *srv, req_t *req, reply_t *rep);

#endif
