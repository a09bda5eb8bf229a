/*
 * calls.c - one function per endpoint of docs/api.md.  Each builds its JSON
 * body, hands the exchange to jobd__request() and checks that a successful
 * reply has the shape the API promises, so callers get either what they
 * asked for or an error in the client - never half a result.
 */
#include "client_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PATH_MAX_LEN 512

/* One exchange whose successful reply must be a JSON object: hand it to
 * the caller's OUT parameter, or drop it when the caller passed NULL. */
static int exchange(jobd_client_t *c, const char *method, const char *path, const json_t *body,
                    bool admin, const char *what, json_t **out)
{
    struct client_call call = {.method = method, .path = path, .body = body, .admin = admin};
    json_t *doc = NULL;
    int rc = jobd__request(c, &call, &doc);

    if (rc != JOBD_CLIENT_OK)
        return rc;
    if (!json_is_object(doc)) {
        json_decref(doc);
        return jobd__fail(c, JOBD_CLIENT_EPROTO, "%s: the %ld reply %s, not a JSON object", what,
                          c->err.status, doc ? "is other JSON" : "has an empty body");
    }
    if (out)
        *out = doc;
    else
        json_decref(doc);
    return JOBD_CLIENT_OK;
}

static json_t *string_array(const char *const *items, size_t n)
{
    json_t *arr = json_array();

    for (size_t i = 0; arr && i < n; i++) {
        if (!items[i] || json_array_append_new(arr, json_string(items[i])) != 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

/* Shared by register and claim: both send a list of operation names. */
static int check_operations(jobd_client_t *c, const char *const *ops, size_t n)
{
    if (!ops || n == 0)
        return jobd__fail(c, JOBD_CLIENT_EINVAL, "at least one operation is required");
    for (size_t i = 0; i < n; i++)
        if (!ops[i] || !ops[i][0])
            return jobd__fail(c, JOBD_CLIENT_EINVAL, "operation %zu is empty", i);
    return JOBD_CLIENT_OK;
}

int jobd_client_register(jobd_client_t *c, const char *name, const char *const *operations,
                         size_t n_operations, char bot_id[JOBD_ID_MAX])
{
    json_t *body = NULL, *reply = NULL;
    const char *id = NULL;
    int rc;

    if (!name || !name[0])
        return jobd__fail(c, JOBD_CLIENT_EINVAL, "a bot name is required");
    rc = check_operations(c, operations, n_operations);
    if (rc != JOBD_CLIENT_OK)
        return rc;
    body = json_pack("{s:s, s:o*}", "name", name, "operations",
                     string_array(operations, n_operations));
    if (!body)
        return jobd__fail(c, JOBD_CLIENT_ENOMEM, "out of memory");
    rc = exchange(c, "POST", "/bots/register", body, false, "register", &reply);
    json_decref(body);
    if (rc != JOBD_CLIENT_OK)
        return rc;
    if (json_unpack(reply, "{s:s}", "bot_id", &id) != 0 || strlen(id) >= JOBD_ID_MAX)
        rc = jobd__fail(c, JOBD_CLIENT_EPROTO, "register: the reply has no usable bot_id");
    else
        memcpy(bot_id, id, strlen(id) + 1);
    json_decref(reply);
    return rc;
}

int jobd_client_heartbeat(jobd_client_t *c, const char *bot_id, const char *state)
{
    return jobd_client_heartbeat_jobs(c, bot_id, state, NULL, NULL);
}

int jobd_client_heartbeat_jobs(jobd_client_t *c, const char *bot_id, const char *state,
                               const json_t *jobs, json_t **reply)
{
    char path[PATH_MAX_LEN];
    json_t *body;
    int rc;

    if (!state)
        return jobd__fail(c, JOBD_CLIENT_EINVAL, "a state is required");
    if (jobs && !json_is_array(jobs))
        return jobd__fail(c, JOBD_CLIENT_EINVAL, "jobs must be an array");
    rc = jobd__path(c, path, sizeof path, "/bots/", bot_id, "/heartbeat");
    if (rc != JOBD_CLIENT_OK)
        return rc;
    body = json_pack("{s:s}", "state", state);
    if (body && jobs && json_object_set(body, "jobs", (json_t *)jobs) != 0) {
        json_decref(body);
        body = NULL;
    }
    if (!body)
        return jobd__fail(c, JOBD_CLIENT_ENOMEM, "out of memory");
    rc = exchange(c, "POST", path, body, false, "heartbeat", reply);
    json_decref(body);
    return rc;
}

void jobd_client_jobs_free(jobd_job_t *jobs, size_t count)
{
    if (!jobs)
        return;
    for (size_t i = 0; i < count; i++)
        json_decref(jobs[i].job);
    free(jobs);
}

/* Turn the "jobs" array of a claim reply into jobd_job_t, each holding a
 * reference to its object so the borrowed fields stay valid.  A plain
 * claim says "none" with a 204, so its 200 must lease something; a report
 * with a claim says it with an empty array (may_be_empty). */
static int take_jobs(jobd_client_t *c, const json_t *reply, bool may_be_empty, const char *what,
                     jobd_job_t **jobs, size_t *count)
{
    json_t *arr = json_object_get(reply, "jobs"), *job;
    jobd_job_t *out;
    size_t i, n;

    if (!json_is_array(arr) || (json_array_size(arr) == 0 && !may_be_empty))
        return jobd__fail(c, JOBD_CLIENT_EPROTO, "%s: a 200 reply without a jobs array", what);
    n = json_array_size(arr);
    if (n == 0) {
        *jobs = NULL;
        *count = 0;
        return JOBD_CLIENT_OK;
    }
    out = calloc(n, sizeof *out);
    if (!out)
        return jobd__fail(c, JOBD_CLIENT_ENOMEM, "out of memory");
    json_array_foreach(arr, i, job)
    {
        out[i].job = json_incref(job);
        if (json_unpack(job, "{s:s, s:s, s:s, s:o}", "id", &out[i].id, "operation",
                        &out[i].operation, "lease", &out[i].lease, "input", &out[i].input) != 0) {
            jobd_client_jobs_free(out, i + 1);
            return jobd__fail(c, JOBD_CLIENT_EPROTO,
                              "%s: job %zu lacks id, operation, lease or input", what, i);
        }
    }
    *jobs = out;
    *count = n;
    return JOBD_CLIENT_OK;
}

/* The fields of a claim other than bot_id, as POST /jobs/claim and the
 * "claim" object of POST /jobs/complete both take them.  Checks req;
 * OUT: *fields, a new object. */
static int claim_fields(jobd_client_t *c, const jobd_claim_request_t *req, json_t **fields)
{
    json_t *obj;
    int rc = check_operations(c, req->operations, req->n_operations);

    if (rc != JOBD_CLIENT_OK)
        return rc;
    if (req->wait_ms < 0)
        return jobd__fail(c, JOBD_CLIENT_EINVAL, "wait_ms must not be negative");
    obj = json_pack("{s:o*, s:i, s:i}", "operations",
                    string_array(req->operations, req->n_operations), "wait_ms", req->wait_ms,
                    "max", req->max > 0 ? req->max : 1);
    if (obj && req->lease_ms > 0 &&
        json_object_set_new(obj, "lease_ms", json_integer(req->lease_ms)) != 0) {
        json_decref(obj);
        obj = NULL;
    }
    if (!obj)
        return jobd__fail(c, JOBD_CLIENT_ENOMEM, "out of memory");
    *fields = obj;
    return JOBD_CLIENT_OK;
}

int jobd_client_claim(jobd_client_t *c, const jobd_claim_request_t *req, jobd_job_t **jobs,
                      size_t *count)
{
    struct client_call call = {.method = "POST", .path = "/jobs/claim"};
    json_t *body = NULL, *reply = NULL;
    int rc;

    if (!req || !req->bot_id || !req->bot_id[0])
        return jobd__fail(c, JOBD_CLIENT_EINVAL, "claim needs a bot_id");
    rc = claim_fields(c, req, &body);
    if (rc != JOBD_CLIENT_OK)
        return rc;
    if (json_object_set_new(body, "bot_id", json_string(req->bot_id)) != 0) {
        json_decref(body);
        return jobd__fail(c, JOBD_CLIENT_ENOMEM, "out of memory");
    }
    call.body = body;
    call.extra_ms = req->wait_ms;
    call.cancel = req->cancel;
    rc = jobd__request(c, &call, &reply);
    json_decref(body);
    if (rc != JOBD_CLIENT_OK)
        return rc;
    if (!reply) { /* 204: nothing came within wait_ms */
        *jobs = NULL;
        *count = 0;
        return JOBD_CLIENT_OK;
    }
    rc = take_jobs(c, reply, false, "claim", jobs, count);
    json_decref(reply);
    return rc;
}

/* complete and fail differ only in their last word and one field. */
static int finish(jobd_client_t *c, const char *verb, const char *job_id, json_t *body,
                  json_t **job)
{
    char path[PATH_MAX_LEN];
    int rc;

    if (!body)
        return jobd__fail(c, JOBD_CLIENT_ENOMEM, "out of memory or a missing bot_id/lease");
    rc = jobd__path(c, path, sizeof path, "/jobs/", job_id, verb);
    if (rc == JOBD_CLIENT_OK)
        rc = exchange(c, "POST", path, body, false, verb + 1, job);
    json_decref(body);
    return rc;
}

int jobd_client_complete(jobd_client_t *c, const char *bot_id, const char *job_id,
                         const char *lease, const json_t *result, int64_t duration_ms, json_t **job)
{
    if (!bot_id || !lease || !result || duration_ms < 0)
        return jobd__fail(c, JOBD_CLIENT_EINVAL,
                          "complete needs bot_id, lease, result and duration_ms >= 0");
    return finish(c, "/complete", job_id,
                  json_pack("{s:s, s:s, s:O, s:I}", "bot_id", bot_id, "lease", lease, "result",
                            result, "duration_ms", (json_int_t)duration_ms),
                  job);
}

/* One item of a POST /jobs/complete body.  Returns NULL when out of memory. */
static json_t *report_item(const jobd_report_t *r)
{
    json_t *item = json_pack("{s:s, s:s, s:I}", "id", r->job_id, "lease", r->lease, "duration_ms",
                             (json_int_t)r->duration_ms);

    if (item && r->result && json_object_set(item, "result", (json_t *)r->result) != 0)
        goto out_free_item;
    if (item && r->error &&
        (json_object_set_new(item, "error", json_string(r->error)) != 0 ||
         (r->retryable && json_object_set_new(item, "retryable", json_true()) != 0)))
        goto out_free_item;
    return item;

out_free_item:
    json_decref(item);
    return NULL;
}

/* The body {"bot_id", "results": [...], "claim"?: {...}}.  OUT: *body. */
static int report_body(jobd_client_t *c, const char *bot_id, const jobd_report_t *reports, size_t n,
                       const jobd_claim_request_t *claim, json_t **body)
{
    json_t *items, *doc, *fields = NULL;
    int rc;

    for (size_t i = 0; i < n; i++) {
        const jobd_report_t *r = &reports[i];
        if (!r->job_id || !r->lease || !r->result == !r->error || r->duration_ms < 0 ||
            (r->retryable && !r->error))
            return jobd__fail(c, JOBD_CLIENT_EINVAL,
                              "report %zu needs job_id, lease, duration_ms >= 0 and exactly one "
                              "of result and error (retryable only with error)",
                              i);
    }
    if (claim) {
        if (claim->bot_id && strcmp(claim->bot_id, bot_id) != 0)
            return jobd__fail(c, JOBD_CLIENT_EINVAL,
                              "the claim's bot_id differs from the reports' bot_id");
        rc = claim_fields(c, claim, &fields);
        if (rc != JOBD_CLIENT_OK)
            return rc;
    }
    items = json_array();
    for (size_t i = 0; items && i < n; i++) {
        if (json_array_append_new(items, report_item(&reports[i])) != 0) {
            json_decref(items);
            items = NULL;
        }
    }
    doc = items ? json_pack("{s:s, s:o, s:o*}", "bot_id", bot_id, "results", items, "claim", fields)
                : NULL;
    if (!items)
        json_decref(fields);
    if (!doc)
        return jobd__fail(c, JOBD_CLIENT_ENOMEM, "out of memory");
    *body = doc;
    return JOBD_CLIENT_OK;
}

int jobd_client_report_claim(jobd_client_t *c, const char *bot_id, const jobd_report_t *reports,
                             size_t n, const jobd_claim_request_t *claim, json_t **results,
                             jobd_job_t **jobs, size_t *count)
{
    struct client_call call = {.method = "POST", .path = "/jobs/complete"};
    json_t *body = NULL, *doc = NULL;
    jobd_job_t *leased = NULL;
    size_t n_leased = 0;
    int rc;

    if (!bot_id || !reports || n == 0 || !results || (claim && (!jobs || !count)))
        return jobd__fail(c, JOBD_CLIENT_EINVAL,
                          "report needs bot_id, 1 or more reports, results, and with a claim "
                          "jobs and count");
    rc = report_body(c, bot_id, reports, n, claim, &body);
    if (rc != JOBD_CLIENT_OK)
        return rc;
    call.body = body;
    if (claim) {
        call.extra_ms = claim->wait_ms;
        call.cancel = claim->cancel;
    }
    rc = jobd__request(c, &call, &doc);
    json_decref(body);
    if (rc != JOBD_CLIENT_OK)
        return rc;
    if (!json_is_object(doc) || json_array_size(json_object_get(doc, "results")) != n) {
        rc = jobd__fail(c, JOBD_CLIENT_EPROTO, "report: the %ld reply does not hold %zu results",
                        c->err.status, n);
        goto out_free_doc;
    }
    /* No "jobs" at all: a server that predates the claim ignored it. */
    if (claim && json_object_get(doc, "jobs")) {
        rc = take_jobs(c, doc, true, "report and claim", &leased, &n_leased);
        if (rc != JOBD_CLIENT_OK)
            goto out_free_doc;
    }
    *results = json_incref(json_object_get(doc, "results"));
    if (claim) {
        *jobs = leased;
        *count = n_leased;
    }

out_free_doc:
    json_decref(doc);
    return rc;
}

int jobd_client_report_many(jobd_client_t *c, const char *bot_id, const jobd_report_t *reports,
                            size_t n, json_t **results)
{
    return jobd_client_report_claim(c, bot_id, reports, n, NULL, results, NULL, NULL);
}

/* fail and fail_retryable differ only in the "retryable" flag. */
static int fail(jobd_client_t *c, const char *bot_id, const char *job_id, const char *lease,
                const char *error, int64_t duration_ms, bool retryable, json_t **job)
{
    if (!bot_id || !lease || !error || duration_ms < 0)
        return jobd__fail(c, JOBD_CLIENT_EINVAL,
                          "fail needs bot_id, lease, error and duration_ms >= 0");
    return finish(c, "/fail", job_id,
                  json_pack("{s:s, s:s, s:s, s:I, s:b}", "bot_id", bot_id, "lease", lease, "error",
                            error, "duration_ms", (json_int_t)duration_ms, "retryable", retryable),
                  job);
}

int jobd_client_fail(jobd_client_t *c, const char *bot_id, const char *job_id, const char *lease,
                     const char *error, int64_t duration_ms, json_t **job)
{
    return fail(c, bot_id, job_id, lease, error, duration_ms, false, job);
}

int jobd_client_fail_retryable(jobd_client_t *c, const char *bot_id, const char *job_id,
                               const char *lease, const char *error, int64_t duration_ms,
                               json_t **job)
{
    return fail(c, bot_id, job_id, lease, error, duration_ms, true, job);
}

int jobd_client_submit(jobd_client_t *c, const char *operation, const json_t *input,
                       int64_t priority, json_t **job)
{
    return jobd_client_submit_keyed(c, operation, input, priority, NULL, job);
}

int jobd_client_submit_keyed(jobd_client_t *c, const char *operation, const json_t *input,
                             int64_t priority, const char *idempotency_key, json_t **job)
{
    json_t *body;
    int rc;

    if (!operation || !json_is_object(input))
        return jobd__fail(c, JOBD_CLIENT_EINVAL, "submit needs an operation and an input object");
    body = json_pack("{s:s, s:O, s:I, s:s*}", "operation", operation, "input", input, "priority",
                     (json_int_t)priority, "idempotency_key", idempotency_key);
    if (!body)
        return jobd__fail(c, JOBD_CLIENT_ENOMEM, "out of memory");
    rc = exchange(c, "POST", "/jobs", body, false, "submit", job);
    json_decref(body);
    return rc;
}

/* GET /jobs/{id}<suffix>. */
static int get_job_doc(jobd_client_t *c, const char *id, const char *suffix, const char *what,
                       json_t **out)
{
    char path[PATH_MAX_LEN];
    int rc = jobd__path(c, path, sizeof path, "/jobs/", id, suffix);

    if (rc != JOBD_CLIENT_OK)
        return rc;
    return exchange(c, "GET", path, NULL, false, what, out);
}

int jobd_client_get_job(jobd_client_t *c, const char *id, json_t **job)
{
    return get_job_doc(c, id, "", "get job", job);
}

/* Append "&name=<escaped value>" (the first one with '?') to path. */
static int add_param(jobd_client_t *c, char *path, size_t len, const char *name, const char *value)
{
    size_t used = strlen(path);
    char *esc;
    int n;

    if (!value || !value[0])
        return JOBD_CLIENT_OK;
    esc = curl_easy_escape(c->curl, value, 0);
    if (!esc)
        return jobd__fail(c, JOBD_CLIENT_ENOMEM, "out of memory");
    n = snprintf(path + used, len - used, "%c%s=%s", strchr(path, '?') ? '&' : '?', name, esc);
    curl_free(esc);
    if (n < 0 || (size_t)n >= len - used)
        return jobd__fail(c, JOBD_CLIENT_EINVAL, "the %s filter is too long", name);
    return JOBD_CLIENT_OK;
}

int jobd_client_list_jobs(jobd_client_t *c, const jobd_list_query_t *query, json_t **page)
{
    char path[PATH_MAX_LEN] = "/jobs", limit[24] = "";
    int rc = JOBD_CLIENT_OK;

    if (query) {
        if (query->limit > 0)
            snprintf(limit, sizeof limit, "%d", query->limit);
        rc = add_param(c, path, sizeof path, "status", query->status);
        if (rc == JOBD_CLIENT_OK)
            rc = add_param(c, path, sizeof path, "operation", query->operation);
        if (rc == JOBD_CLIENT_OK)
            rc = add_param(c, path, sizeof path, "limit", limit);
        if (rc == JOBD_CLIENT_OK)
            rc = add_param(c, path, sizeof path, "after", query->after);
    }
    if (rc == JOBD_CLIENT_OK)
        rc = exchange(c, "GET", path, NULL, false, "list jobs", page);
    return rc;
}

int jobd_client_stats(jobd_client_t *c, json_t **stats)
{
    return exchange(c, "GET", "/stats", NULL, false, "stats", stats);
}

/* POST /jobs/{id}/<action> with an optional reason, sending the admin token. */
static int admin_action(jobd_client_t *c, const char *id, const char *action, const char *reason,
                        json_t **job)
{
    char path[PATH_MAX_LEN], suffix[32];
    json_t *body = NULL;
    int rc;

    snprintf(suffix, sizeof suffix, "/%s", action);
    if ((rc = jobd__path(c, path, sizeof path, "/jobs/", id, suffix)) != JOBD_CLIENT_OK)
        return rc;
    if (reason && !(body = json_pack("{s:s}", "reason", reason)))
        return jobd__fail(c, JOBD_CLIENT_ENOMEM, "out of memory");
    rc = exchange(c, "POST", path, body, true, action, job);
    json_decref(body);
    return rc;
}

int jobd_client_release(jobd_client_t *c, const char *id, const char *reason, json_t **job)
{
    return admin_action(c, id, "release", reason, job);
}

int jobd_client_retry(jobd_client_t *c, const char *id, const char *reason, json_t **job)
{
    return admin_action(c, id, "retry", reason, job);
}

int jobd_client_cancel(jobd_client_t *c, const char *id, const char *reason, json_t **job)
{
    return admin_action(c, id, "cancel", reason, job);
}

int jobd_client_explain(jobd_client_t *c, const char *id, json_t **explanation)
{
    return get_job_doc(c, id, "/explain", "explain", explanation);
}

int jobd_client_health(jobd_client_t *c, json_t **health)
{
    return exchange(c, "GET", "/health", NULL, false, "health", health);
}
