/*
 * backend.c - the pieces every backend of store.h shares (see backend.h):
 * SQL column lists, records, fencing refusals and stats counters.  Nothing
 * here touches a database.
 */
#include "backend.h"
#include "clock.h"
#include "id.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const job_statuses[] = {"pending", "scheduled", "processing", "succeeded",
                                           "failed",  "cancelled", NULL};
static const char *const bot_states[] = {"ready", "processing", "unhealthy", "offline", NULL};

const record_field_t *backend_fields(enum rec_kind k, size_t *n)
{
    switch (k) {
    case REC_KIND_JOB_SUMMARY:
        *n = record_job_summary_nfields;
        return record_job_summary_fields;
    case REC_KIND_BOT:
        *n = record_bot_nfields;
        return record_bot_fields;
    case REC_KIND_ATTEMPT:
        *n = record_attempt_nfields;
        return record_attempt_fields;
    case REC_KIND_EVENT:
        *n = record_event_nfields;
        return record_event_fields;
    case REC_KIND_JOB:
        break;
    }
    *n = record_job_nfields;
    return record_job_fields;
}

char *backend_sql(const char *sql)
{
    static const struct {
        const char *key;
        const char *(*cols)(void);
    } subst[] = {
        {"{job}", record_job_columns},     {"{summary}", record_job_summary_columns},
        {"{bot}", record_bot_columns},     {"{attempt}", record_attempt_columns},
        {"{event}", record_event_columns}, {"{job_json}", record_job_json_sqlite},
    };
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);

    if (!f)
        abort();
    while (*sql) {
        size_t i;
        for (i = 0; i < sizeof subst / sizeof subst[0]; i++)
            if (strncmp(sql, subst[i].key, strlen(subst[i].key)) == 0)
                break;
        if (i < sizeof subst / sizeof subst[0]) {
            fputs(subst[i].cols(), f);
            sql += strlen(subst[i].key);
        } else {
            fputc(*sql++, f);
        }
    }
    if (fclose(f) != 0)
        abort();
    return out;
}

store_export_t *backend_export_new(void)
{
    store_export_t *b = calloc(1, sizeof *b);
    if (!b)
        abort();
    return b;
}

void backend_export_add(store_export_t *b, const char *id, bool finished, int64_t finished_at,
                        const char *line, size_t len)
{
    store_export_job_t *j;

    if (b->n == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 64;
        b->jobs = realloc(b->jobs, b->cap * sizeof *b->jobs);
        if (!b->jobs)
            abort();
    }
    j = &b->jobs[b->n++];
    j->id = strdup(id);
    j->line = strndup(line, len);
    if (!j->id || !j->line)
        abort();
    j->finished = finished;
    j->finished_at = finished_at;
    j->len = len;
}

void backend_export_add_record(store_export_t *b, const json_t *job)
{
    const char *finished = json_string_value(json_object_get(job, "finished_at"));
    long long ms = 0;
    bool has_finished = finished && record_parse_time(finished, &ms);
    char *line = json_dumps(job, JSON_COMPACT);

    if (!line)
        abort();
    backend_export_add(b, json_string_value(json_object_get(job, "id")), has_finished, ms, line,
                       strlen(line));
    free(line);
}

const char *backend_when(int64_t ms, char buf[32])
{
    clock_format_ms(ms, buf, 32, 'T');
    return buf;
}

json_t *backend_time_json(int64_t ms)
{
    char text[24];
    snprintf(text, sizeof text, "%lld", (long long)ms);
    return record_value(REC_TIME, text);
}

int backend_deliver(int rc, json_t **r, json_t **out)
{
    if (rc == JOBD_OK)
        *out = *r;
    else
        json_decref(*r);
    return rc;
}

int backend_refuse(const struct backend_finish *a, const struct backend_attempt *r,
                   const char *status, err_t *e)
{
    const char *want = a->ok ? "succeeded" : "failed";
    bool done = strcmp(status, "succeeded") == 0 || strcmp(status, "failed") == 0;
    char t[32];

    if (strcmp(r->outcome, "succeeded") == 0 || strcmp(r->outcome, "failed") == 0) {
        if (strcmp(r->outcome, want) == 0)
            return 0;
        return err_set(
            e, JOBD_EFINISHED, "job %s already %s at %s under lease %s; it cannot also %s", a->id,
            r->outcome, backend_when(r->ended_at, t), a->lease, a->ok ? "succeed" : "fail");
    }
    if (strcmp(r->outcome, "cancelled") == 0)
        return err_set(e, JOBD_ECANCELLED, "job %s was cancelled at %s: %s; lease %s is void",
                       a->id, backend_when(r->ended_at, t),
                       r->error[0] ? r->error : "no reason given", a->lease);
    if (done || strcmp(status, "cancelled") == 0)
        return err_set(e, done ? JOBD_EFINISHED : JOBD_ECANCELLED,
                       "job %s was already %s after lease %s was %s at %s", a->id, status, a->lease,
                       r->outcome, backend_when(r->ended_at, t));
    /* released by an admin, or taken from a bot that stopped heartbeating */
    if (strcmp(r->outcome, "released") == 0 || strcmp(r->outcome, "worker_lost") == 0)
        return err_set(e, JOBD_ERELEASED, "lease %s of job %s was released at %s: %s", a->lease,
                       a->id, backend_when(r->ended_at, t),
                       r->error[0] ? r->error : "no reason given");
    return err_set(e, JOBD_EEXPIRED,
                   "lease %s of job %s expired at %s without a heartbeat renewing it, and the job "
                   "went back to pending",
                   a->lease, a->id, backend_when(r->ended_at, t));
}

int backend_report_each(void *conn, int (*finish)(void *conn, struct backend_finish *f, err_t *e),
                        const char *bot_id, job_report_t *reports, size_t n, err_t *e)
{
    for (size_t i = 0; i < n; i++) {
        job_report_t *r = &reports[i];
        struct backend_finish f = {r->id ? r->id : "",
                                   bot_id ? bot_id : "",
                                   r->lease ? r->lease : "",
                                   r->ok,
                                   r->result,
                                   r->error,
                                   r->duration_ms,
                                   NULL,
                                   false,
                                   r->retry,
                                   r->brief,
                                   r->summary};
        r->rc = finish(conn, &f, &r->err);
        r->job = f.job;
        r->repeated = f.repeated;
        if (r->rc >= 0) {
            r->rc = JOBD_OK;
        } else if (!backend_is_refusal(r->rc)) {
            *e = r->err;
            return r->rc;
        }
    }
    return JOBD_OK;
}

int backend_report_undo(int rc, job_report_t *reports, size_t n)
{
    if (rc != JOBD_OK) {
        for (size_t i = 0; i < n; i++) {
            json_decref(reports[i].job);
            reports[i].job = NULL;
        }
    }
    return rc;
}

const char *backend_input_text(const job_spec_t *spec, char **owned)
{
    *owned = NULL;
    if (spec->input_text || !spec->input)
        return spec->input_text;
    return *owned = json_dumps(spec->input, JSON_ENCODE_ANY | JSON_COMPACT);
}

json_t *backend_brief(const char *id, const char *status)
{
    json_t *job = json_object();
    json_object_set_new_nocheck(job, "id", json_string_nocheck(id));
    json_object_set_new_nocheck(job, "status", json_string_nocheck(status));
    return job;
}

json_t *backend_brief_of(const json_t *job)
{
    return backend_brief(json_string_value(json_object_get(job, "id")),
                         json_string_value(json_object_get(job, "status")));
}

json_t *backend_summary_of(const json_t *job)
{
    json_t *out = json_object(), *v;

    for (size_t i = 0; i < record_job_summary_nfields; i++) {
        const char *name = record_job_summary_fields[i].name;
        v = json_object_get(job, name);
        json_object_set_new_nocheck(out, name, v ? json_incref(v) : json_null());
    }
    return out;
}

void backend_report_brief(job_report_t *reports, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        json_t *job = reports[i].job;
        if (!reports[i].brief || !job)
            continue;
        reports[i].job = reports[i].summary ? backend_summary_of(job) : backend_brief_of(job);
        json_decref(job);
    }
}

int backend_claim_undo(int rc, job_claim_t *claim)
{
    if (rc != JOBD_OK && claim) {
        json_decref(claim->jobs);
        claim->jobs = NULL;
    }
    return rc;
}

bool backend_is_refusal(int rc)
{
    switch (rc) {
    case JOBD_ENOTFOUND:
    case JOBD_EFINISHED:
    case JOBD_ERELEASED:
    case JOBD_EEXPIRED:
    case JOBD_EMISMATCH:
    case JOBD_ECANCELLED:
        return true;
    }
    return false;
}

int64_t backend_retry_delay(const store_retry_t *retry, int64_t failures)
{
    int64_t delay = retry->base_ms;
    char hex[17];

    for (int64_t k = 1; k < failures && delay < retry->max_ms; k++)
        delay *= 2;
    if (delay > retry->max_ms)
        delay = retry->max_ms;
    /* "Equal jitter": at least half the delay, so a retry never comes
     * back at once, and a random rest, so failures do not stay in step. */
    id_hex(hex, 8);
    return delay - (int64_t)(strtoull(hex, NULL, 16) % (uint64_t)(delay / 2 + 1));
}

/* {"name": 0, ...} for every name. */
static json_t *zeros(const char *const *names)
{
    json_t *obj = json_object();
    for (; *names; names++)
        json_object_set_new(obj, *names, json_integer(0));
    return obj;
}

static void add(json_t *obj, const char *key, json_int_t n)
{
    json_object_set_new(obj, key, json_integer(json_integer_value(json_object_get(obj, key)) + n));
}

json_t *backend_stats_new(void)
{
    json_t *jobs = zeros(job_statuses);

    json_object_set_new(jobs, "total", json_integer(0));
    return json_pack("{s:o,s:o,s:o}", "jobs", jobs, "operations", json_object(), "bots",
                     zeros(bot_states));
}

void backend_stats_add_jobs(json_t *stats, const char *operation, const char *status, int64_t n)
{
    json_t *jobs = json_object_get(stats, "jobs"), *ops = json_object_get(stats, "operations");
    json_t *per_op = json_object_get(ops, operation);

    if (!per_op) {
        per_op = zeros(job_statuses);
        json_object_set_new(ops, operation, per_op);
    }
    add(per_op, status, n);
    add(jobs, status, n);
    add(jobs, "total", n);
}

void backend_stats_add_bots(json_t *stats, const char *state, int64_t n)
{
    add(json_object_get(stats, "bots"), state, n);
}
