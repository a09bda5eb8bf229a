/*
 * store_int.h - what a storage backend implements (private to src/store).
 * store.c checks nothing and adds nothing: it forwards each store_* call to
 * the backend that opened the store.  The semantics of each entry are those
 * of the function of the same name in store.h.
 *
 * Checklist: a function added to store.h needs an entry here, a forwarder in
 * store.c, an implementation in every backend, and a case in
 * tests/store/store_contract.c.
 */
#ifndef JOBD_STORE_INT_H
#define JOBD_STORE_INT_H

#include "store.h"

typedef struct store_backend store_backend_t;

/* The head of every backend's own store struct. */
struct store {
    const store_backend_t *backend;
    char where[512]; /* store_where(): set by the backend's open */
};

struct store_backend {
    const char *name; /* "sqlite", "postgresql" */
    int (*open)(const char *db, store_t **out, err_t *e);
    void (*free)(store_t *s);
    int (*schema_version)(store_t *s, int *current, int *latest, err_t *e);
    int (*migrate_up)(store_t *s, err_t *e);
    int (*migrate_down)(store_t *s, err_t *e);
    int (*prepare)(store_t *s, err_t *e);
    int (*set_sync)(store_t *s, store_sync_t sync, err_t *e);
    int (*ping)(store_t *s, err_t *e);
    int (*watch)(store_t *s, store_watch_fn fn, void *arg, err_t *e);
    int (*job_create)(store_t *s, const job_spec_t *specs, size_t n, bool brief, json_t **jobs,
                      err_t *e);
    int (*job_create_claim)(store_t *s, const job_spec_t *spec, bool brief, const char *bot_id,
                            int64_t lease_ms, json_t **job, json_t **claimed, err_t *e);
    int (*job_get)(store_t *s, const char *id, json_t **job, err_t *e);
    int (*job_list)(store_t *s, const job_filter_t *f, json_t **jobs, err_t *e);
    int (*job_claim)(store_t *s, const char *bot_id, const char *const *ops, size_t nops, int max,
                     int64_t lease_ms, bool brief, json_t **jobs, err_t *e);
    int (*job_complete)(store_t *s, const char *id, const char *bot_id, const char *lease,
                        const json_t *result, int64_t duration_ms, json_t **job, bool *repeated,
                        err_t *e);
    int (*job_fail)(store_t *s, const char *id, const char *bot_id, const char *lease,
                    const char *error, const store_retry_t *retry, int64_t duration_ms,
                    json_t **job, bool *repeated, err_t *e);
    int (*job_report_many)(store_t *s, const char *bot_id, job_report_t *reports, size_t n,
                           job_claim_t *claim, err_t *e);
    int (*job_release)(store_t *s, const char *id, const char *reason, json_t **job, err_t *e);
    int (*job_retry)(store_t *s, const char *id, const char *reason, json_t **job, err_t *e);
    int (*job_cancel)(store_t *s, const char *id, const char *reason, json_t **job, err_t *e);
    int (*job_explain)(store_t *s, const char *id, json_t **facts, err_t *e);
    int (*schedule_due)(store_t *s, int64_t now_ms, int *n, err_t *e);
    int (*lease_expire)(store_t *s, int64_t now_ms, int *n, err_t *e);
    int (*job_purge)(store_t *s, int64_t finished_before_ms, int limit, int *n, err_t *e);
    int (*stats)(store_t *s, json_t **stats, err_t *e);
    int (*bot_register)(store_t *s, const char *name, const json_t *operations, json_t **bot,
                        err_t *e);
    int (*bot_heartbeat)(store_t *s, const char *id, const char *state, int64_t lease_ms,
                         const json_t *jobs, json_t **reply, err_t *e);
    int (*bot_sweep)(store_t *s, int64_t unhealthy_before, int64_t offline_before, json_t **changes,
                     err_t *e);
    int (*bot_get)(store_t *s, const char *id, json_t **bot, err_t *e);
    int (*bot_list)(store_t *s, json_t **bots, err_t *e);
    int (*export_pending)(store_t *s, const char *server_id, int limit, store_export_t **batch,
                          err_t *e);
    int (*export_mark)(store_t *s, const char *server_id, const json_t *ids, const json_t *files,
                       err_t *e);
    int (*export_files)(store_t *s, json_t **files, err_t *e);
};

extern const store_backend_t store_sqlite_backend;
extern const store_backend_t store_pg_backend;

#endif
