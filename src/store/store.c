/*
 * store.c - choosing a backend by the database name, and forwarding every
 * store.h call to it.  A "postgresql://" or "postgres://" URL (or a libpq
 * "key=value" string) names PostgreSQL; anything else is a SQLite file.
 */
#include "store_int.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* A URL, or a conninfo string: it starts with a keyword (letters and _)
 * and "=", which no file path jobd would be given does. */
static bool is_postgres(const char *db)
{
    const char *p = db;

    if (strncmp(db, "postgresql://", 13) == 0 || strncmp(db, "postgres://", 11) == 0)
        return true;
    while (islower((unsigned char)*p) || *p == '_')
        p++;
    while (*p == ' ')
        p++;
    return p > db && *p == '=';
}

const char *store_where(const store_t *s)
{
    return s->where;
}

int store_open(const char *db, store_t **out, err_t *e)
{
    if (!db || !*db)
        return err_set(e, JOBD_EDBDOWN, "no database given");
    /* Never echo a URL here: it may carry a password. */
    if (is_postgres(db))
        return store_pg_backend.open(db, out, e);
    return store_sqlite_backend.open(db, out, e);
}

void store_free(store_t *s)
{
    if (s)
        s->backend->free(s);
}

int store_schema_version(store_t *s, int *current, int *latest, err_t *e)
{
    return s->backend->schema_version(s, current, latest, e);
}

int store_migrate_up(store_t *s, err_t *e)
{
    return s->backend->migrate_up(s, e);
}

int store_migrate_down(store_t *s, err_t *e)
{
    return s->backend->migrate_down(s, e);
}

int store_prepare(store_t *s, err_t *e)
{
    return s->backend->prepare(s, e);
}

int store_set_sync(store_t *s, store_sync_t sync, err_t *e)
{
    return s->backend->set_sync(s, sync, e);
}

int store_ping(store_t *s, err_t *e)
{
    return s->backend->ping(s, e);
}

int store_watch(store_t *s, store_watch_fn fn, void *arg, err_t *e)
{
    return s->backend->watch(s, fn, arg, e);
}

int store_job_create_many(store_t *s, const job_spec_t *specs, size_t n, bool brief, json_t **jobs,
                          err_t *e)
{
    return s->backend->job_create(s, specs, n, brief, jobs, e);
}

int store_job_create(store_t *s, const job_spec_t *spec, json_t **job, err_t *e)
{
    json_t *jobs;
    int rc = s->backend->job_create(s, spec, 1, false, &jobs, e);
    if (rc == JOBD_OK) {
        *job = json_incref(json_array_get(jobs, 0));
        json_decref(jobs);
    }
    return rc;
}

int store_job_create_claim(store_t *s, const job_spec_t *spec, bool brief, const char *bot_id,
                           int64_t lease_ms, json_t **job, json_t **claimed, err_t *e)
{
    return s->backend->job_create_claim(s, spec, brief, bot_id, lease_ms, job, claimed, e);
}

int store_job_get(store_t *s, const char *id, json_t **job, err_t *e)
{
    return s->backend->job_get(s, id, job, e);
}

int store_job_list(store_t *s, const job_filter_t *f, json_t **jobs, err_t *e)
{
    return s->backend->job_list(s, f, jobs, e);
}

int store_job_claim(store_t *s, const char *bot_id, const char *const *ops, size_t nops, int max,
                    int64_t lease_ms, bool brief, json_t **jobs, err_t *e)
{
    return s->backend->job_claim(s, bot_id, ops, nops, max, lease_ms, brief, jobs, e);
}

int store_job_complete(store_t *s, const char *id, const char *bot_id, const char *lease,
                       const json_t *result, int64_t duration_ms, json_t **job, bool *repeated,
                       err_t *e)
{
    return s->backend->job_complete(s, id, bot_id, lease, result, duration_ms, job, repeated, e);
}

int store_job_fail(store_t *s, const char *id, const char *bot_id, const char *lease,
                   const char *error, const store_retry_t *retry, int64_t duration_ms, json_t **job,
                   bool *repeated, err_t *e)
{
    return s->backend->job_fail(s, id, bot_id, lease, error, retry, duration_ms, job, repeated, e);
}

int store_job_report_many(store_t *s, const char *bot_id, job_report_t *reports, size_t n,
                          job_claim_t *claim, err_t *e)
{
    if (claim)
        claim->jobs = NULL;
    return s->backend->job_report_many(s, bot_id, reports, n, claim, e);
}

int store_job_release(store_t *s, const char *id, const char *reason, json_t **job, err_t *e)
{
    return s->backend->job_release(s, id, reason, job, e);
}

int store_job_retry(store_t *s, const char *id, const char *reason, json_t **job, err_t *e)
{
    return s->backend->job_retry(s, id, reason, job, e);
}

int store_job_cancel(store_t *s, const char *id, const char *reason, json_t **job, err_t *e)
{
    return s->backend->job_cancel(s, id, reason, job, e);
}

int store_job_explain(store_t *s, const char *id, json_t **facts, err_t *e)
{
    return s->backend->job_explain(s, id, facts, e);
}

int store_schedule_due(store_t *s, int64_t now_ms, int *n, err_t *e)
{
    return s->backend->schedule_due(s, now_ms, n, e);
}

int store_lease_expire(store_t *s, int64_t now_ms, int *n, err_t *e)
{
    return s->backend->lease_expire(s, now_ms, n, e);
}

int store_job_purge(store_t *s, int64_t finished_before_ms, int limit, int *n, err_t *e)
{
    return s->backend->job_purge(s, finished_before_ms, limit, n, e);
}

int store_stats(store_t *s, json_t **stats, err_t *e)
{
    return s->backend->stats(s, stats, e);
}

int store_bot_register(store_t *s, const char *name, const json_t *operations, json_t **bot,
                       err_t *e)
{
    return s->backend->bot_register(s, name, operations, bot, e);
}

int store_bot_heartbeat(store_t *s, const char *id, const char *state, int64_t lease_ms,
                        const json_t *jobs, json_t **reply, err_t *e)
{
    return s->backend->bot_heartbeat(s, id, state, lease_ms, jobs, reply, e);
}

int store_bot_sweep(store_t *s, int64_t unhealthy_before, int64_t offline_before, json_t **changes,
                    err_t *e)
{
    return s->backend->bot_sweep(s, unhealthy_before, offline_before, changes, e);
}

int store_bot_get(store_t *s, const char *id, json_t **bot, err_t *e)
{
    return s->backend->bot_get(s, id, bot, e);
}

int store_bot_list(store_t *s, json_t **bots, err_t *e)
{
    return s->backend->bot_list(s, bots, e);
}

int store_export_pending(store_t *s, const char *server_id, int limit, store_export_t **batch,
                         err_t *e)
{
    return s->backend->export_pending(s, server_id, limit, batch, e);
}

void store_export_free(store_export_t *batch)
{
    if (!batch)
        return;
    for (size_t i = 0; i < batch->n; i++) {
        free(batch->jobs[i].id);
        free(batch->jobs[i].line);
    }
    free(batch->jobs);
    free(batch);
}

int store_export_mark(store_t *s, const char *server_id, const json_t *ids, const json_t *files,
                      err_t *e)
{
    return s->backend->export_mark(s, server_id, ids, files, e);
}

int store_export_files(store_t *s, json_t **files, err_t *e)
{
    return s->backend->export_files(s, files, e);
}
