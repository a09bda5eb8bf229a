/*
 * jobs.c - the /jobs resource: submit, read, explain, list, claim (with
 * long-poll), complete, fail, and the admin's release, retry and cancel.
 * Each handler validates its input,
 * makes one store call, logs the state change in words, and wakes waiting
 * claims or the datalake writer when its change concerns them.
 */
#include "claimnote.h"
#include "clock.h"
#include "datalake.h"
#include "id.h"
#include "log.h"
#include "record.h"
#include "server.h"
#include "validate.h"
#include "waitq.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ID          64
#define MAX_LEASE       128
#define MAX_ERROR       16384
#define MAX_WAIT_MS     30000
#define MAX_CLAIM       100
#define MAX_BATCH       10000 /* jobs in one POST /jobs */
#define MAX_REPORTS     1000  /* reports in one POST /jobs/complete */
#define MAX_DURATION_MS (INT64_C(365) * 24 * 3600 * 1000)
#define MAX_ATTEMPTS    100
#define MAX_REASON      1024
#define MAX_KEY         128 /* bytes of an idempotency key */

/* "613 sum 342" for the usual {"a","b"} input, else "sum {...}", for logs. */
static void describe(const char *operation, const json_t *input, char *buf, size_t len)
{
    json_t *a = json_object_get(input, "a"), *b = json_object_get(input, "b");
    if (json_is_integer(a) && json_is_integer(b)) {
        snprintf(buf, len, "%lld %s %lld", (long long)json_integer_value(a), operation,
                 (long long)json_integer_value(b));
    } else {
        char *text = json_dumps(input, JSON_COMPACT);
        snprintf(buf, len, "%s %.200s", operation, text ? text : "?");
        free(text);
    }
}

static const char *str_field(const json_t *obj, const char *name)
{
    const char *s = json_string_value(json_object_get(obj, name));
    return s ? s : "?";
}

/* Log a finished job the way the seed's operators read it:
 * "job 4b1de16e succeeded: 792 sum 943 = 1735 by bot-1 in 3 ms"; `what`
 * describes its input (describe()), `result` is NULL for a failure. */
static void log_finish_line(const char *id, const char *status, const char *what,
                            const json_t *result, const char *error, const char *bot_name,
                            long long duration_ms)
{
    char *text = result ? json_dumps(result, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;

    log_info("job %s %s: %s %s %.200s by %s in %lld ms", id_short(id), status, what,
             text ? "=" : "failed with", text ? text : error, bot_name, duration_ms);
    free(text);
}

/* The line of a job read back after its finish. */
static void log_finished(const json_t *job)
{
    char what[256];
    const char *status = str_field(job, "status");

    if (!log_enabled(LOG_INFO)) /* spare the description and the dump of the result */
        return;
    describe(str_field(job, "operation"), json_object_get(job, "input"), what, sizeof what);
    log_finish_line(str_field(job, "id"), status, what,
                    strcmp(status, "succeeded") == 0 ? json_object_get(job, "result") : NULL,
                    str_field(job, "error"), str_field(job, "bot_name"),
                    (long long)json_integer_value(json_object_get(job, "duration_ms")));
}

/* The line of a successful report whose job was not read back
 * (claimnote.h): the input and bot from the claim's note, the result and
 * duration from the report itself, as the job now records them. */
static void log_finished_noted(const job_report_t *r, const claimnote_t *note)
{
    log_finish_line(r->id, str_field(r->job, "status"), note->what,
                    r->result ? r->result : json_null(), NULL, note->bot_name,
                    (long long)r->duration_ms);
}

/* Admin endpoints compare the bearer token in constant time, so that the
 * reply time says nothing about how much of a guess was right. */
int require_admin(const server_t *srv, const req_t *req, err_t *e)
{
    const char *tok = srv->cfg.admin_token;
    const char *got;
    size_t n = strlen(tok), m;
    unsigned diff = 0;

    if (!tok[0])
        return err_set(e, JOBD_EADMINOFF,
                       "admin endpoints are disabled: start jobd with JOBD_ADMIN_TOKEN set");
    if (!req->authorization || strncmp(req->authorization, "Bearer ", 7) != 0)
        return err_set(e, JOBD_EUNAUTH, "admin endpoint: send 'Authorization: Bearer <token>'");
    got = req->authorization + 7;
    m = strlen(got);
    diff = (unsigned)(n ^ m);
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned)(tok[i] ^ got[i < m ? i : 0]);
    if (diff)
        return err_set(e, JOBD_EFORBIDDEN, "the admin token is wrong");
    return JOBD_OK;
}

/* The optional "run_at" of a submit: RFC 3339 text as the API writes times.
 * OUT: *ms, 0 when absent. */
static int read_run_at(const json_t *body, int64_t *ms, err_t *e)
{
    const char *text;
    long long t;
    int rc = validate_string(body, "run_at", false, 64, &text, e);

    if (rc != JOBD_OK)
        return rc;
    *ms = 0;
    if (!text)
        return JOBD_OK;
    if (!record_parse_time(text, &t))
        return err_set(
            e, JOBD_EFIELD,
            "field 'run_at' must be a time like \"2026-11-28T20:07:01.123Z\", not '%.64s'", text);
    *ms = t;
    return JOBD_OK;
}

/* Read one job to submit from obj into spec (borrowing from obj). */
static int parse_spec(const server_t *srv, const json_t *obj, job_spec_t *spec, err_t *e)
{
    size_t input_len;
    int rc;

    memset(spec, 0, sizeof *spec);
    if (!json_is_object(obj))
        return err_set(e, JOBD_EFIELD, "a job must be a JSON object");
    if ((rc = validate_string(obj, "operation", true, 64, &spec->operation, e)) != JOBD_OK)
        return rc;
    if (!validate_name(spec->operation))
        return err_set(e, JOBD_EFIELD,
                       "field 'operation' must be 1 to 64 characters of A-Z a-z 0-9 _ . -");
    spec->input = json_object_get(obj, "input");
    if (!json_is_object(spec->input))
        return err_set(e, JOBD_EFIELD, "field 'input' is required and must be an object");
    /* Written once, here: its size is checked, and the store keeps the text
     * (spec->input_text, freed by the caller). */
    spec->input_text = json_dumps(spec->input, JSON_COMPACT);
    if (!spec->input_text)
        return err_set(e, JOBD_EFIELD, "field 'input' cannot be written as JSON");
    input_len = strlen(spec->input_text);
    if (input_len > srv->cfg.max_input)
        return err_set(
            e, JOBD_EINPUTSIZE,
            "field 'input' is %zu bytes as JSON; the limit is %zu (the server's --max-input)",
            input_len, srv->cfg.max_input);
    if ((rc = validate_int(obj, "priority", false, -1000000000, 1000000000, 0, &spec->priority,
                           e)) != JOBD_OK ||
        (rc = validate_int(obj, "max_attempts", false, 1, MAX_ATTEMPTS, 3, &spec->max_attempts,
                           e)) != JOBD_OK ||
        (rc = validate_string(obj, "idempotency_key", false, MAX_KEY, &spec->idempotency_key, e)) !=
            JOBD_OK)
        return rc;
    return read_run_at(obj, &spec->run_at, e);
}

static void log_created(const json_t *job, const job_spec_t *spec)
{
    char what[256], run_at[32] = "";

    if (!log_enabled(LOG_INFO))
        return;
    describe(spec->operation, spec->input, what, sizeof what);
    if (spec->run_at)
        clock_format_ms(spec->run_at, run_at, sizeof run_at, 'T');
    log_info("job %s created: %s (priority %lld%s%s)", id_short(str_field(job, "id")), what,
             (long long)spec->priority, spec->run_at ? ", run at " : "", run_at);
}

/* Free n specs and the input texts parse_spec wrote for them. */
static void specs_free(job_spec_t *specs, size_t n)
{
    for (size_t i = 0; specs && i < n; i++)
        free((char *)specs[i].input_text);
    free(specs);
}

/* The hand-off (waitq.h): a job submitted alone, to run now, while a bot
 * waits for its operation is inserted and claimed for that bot in one
 * transaction.  Returns JOBD_OK with *jobs (the array of the one job the
 * reply shows) and *pending (whether the job is left pending for another
 * claim: another job came first, or the bot went away); 1 if no bot waits
 * (nothing done); or a JOBD_E* code. */
static int hand_off(server_t *srv, const req_t *req, reply_t *rep, const job_spec_t *spec,
                    json_t **jobs, bool *pending, err_t *e)
{
    json_t *job, *claimed;
    const char *got;
    waiter_t *w;

    if (spec->run_at > clock_now_ms() || !(w = waitq_take(srv->waitq, spec->operation)))
        return 1;
    if (store_job_create_claim(srv->store, spec, req->minimal, w->bot_id, w->lease_ms, &job,
                               &claimed, e) != JOBD_OK) {
        waitq_give(srv->waitq, w, NULL);
        return e->rc;
    }
    got = json_string_value(json_object_get(json_array_get(claimed, 0), "id"));
    *pending = !got || strcmp(got, str_field(job, "id")) != 0;
    /* The submitter sees the job as it now is, processing, but not its
     * lease: the fencing token is the bot's alone. */
    if (!*pending) {
        json_t *now = json_deep_copy(json_array_get(claimed, 0));
        json_object_del(now, "lease");
        json_object_del(now, "lease_expires_at");
        json_decref(job);
        job = reply_job(req, rep, now);
    }
    if (json_array_size(claimed) == 0) {
        json_decref(claimed);
        claimed = NULL;
    }
    waitq_give(srv->waitq, w, claimed);
    *jobs = json_array();
    json_array_append_new(*jobs, job);
    return JOBD_OK;
}

/* POST /jobs takes one job (an object) or a batch (an array of up to
 * MAX_BATCH objects), which is inserted in one transaction, all or nothing;
 * an error names the first bad item as "jobs[i]". */
void jobs_submit(server_t *srv, req_t *req, reply_t *rep)
{
    json_t *body = NULL, *jobs = NULL, *item;
    job_spec_t *specs = NULL;
    size_t n = 0, i, run_end;
    bool batch, pending = true;
    err_t e;
    int rc;

    if (validate_json(req->body, req->body_len, &body, &e) != JOBD_OK)
        goto out_error;
    batch = json_is_array(body);
    if (!batch && !json_is_object(body)) {
        err_set(&e, JOBD_EFIELD, "the request body must be a job (an object) or an array of jobs");
        goto out_error;
    }
    n = batch ? json_array_size(body) : 1;
    if (n < 1 || n > MAX_BATCH) {
        err_set(&e, JOBD_EFIELD, "a batch holds 1 to %d jobs, not %zu", MAX_BATCH, n);
        goto out_error;
    }
    specs = calloc(n, sizeof *specs);
    if (!specs)
        abort();
    for (i = 0; i < n; i++) {
        if (parse_spec(srv, batch ? json_array_get(body, i) : body, &specs[i], &e) != JOBD_OK) {
            if (batch)
                err_prefix(&e, "jobs[%zu]: ", i);
            goto out_error;
        }
    }
    rc = batch ? 1 : hand_off(srv, req, rep, &specs[0], &jobs, &pending, &e);
    if (rc < 0 || (rc == 1 &&
                   store_job_create_many(srv->store, specs, n, req->minimal, &jobs, &e) != JOBD_OK))
        goto out_error;
    rep->minimal = req->minimal;

    json_array_foreach(jobs, i, item) log_created(item, &specs[i]);
    /* One wake per job left pending, a run of one operation at a time. */
    for (i = 0; pending && i < n; i = run_end) {
        for (run_end = i + 1;
             run_end < n && strcmp(specs[run_end].operation, specs[i].operation) == 0; run_end++)
            ;
        waitq_announce(srv->waitq, specs[i].operation, (int)(run_end - i));
    }
    if (batch)
        reply_json(rep, 201, json_pack("{s:o}", "jobs", jobs));
    else {
        reply_json(rep, 201, json_incref(json_array_get(jobs, 0)));
        json_decref(jobs);
    }
    specs_free(specs, n);
    json_decref(body);
    return;

out_error:
    reply_err(rep, &e);
    specs_free(specs, n);
    json_decref(body);
}

/* Reply e to a read of one job.  A job that is not found may well have
 * existed: finished jobs leave the database after --retention-ms, so the
 * message says where they went. */
static void reply_read_err(const server_t *srv, reply_t *rep, err_t *e)
{
    static const struct {
        int64_t ms;
        const char *unit;
    } units[] = {{3600000, "h"}, {60000, "min"}, {1000, "s"}, {1, "ms"}};
    int64_t keep = srv->cfg.retention_ms;
    char cause[JOBD_ERR_MSG_MAX];
    size_t u = 0;

    if (e->rc == JOBD_ENOTFOUND) {
        while (u < 3 && (keep == 0 || keep % units[u].ms != 0))
            u++;
        snprintf(cause, sizeof cause, "%s", e->msg);
        err_set(e, JOBD_ENOTFOUND,
                "%s; finished jobs are kept for the retention period (--retention-ms %lld: "
                "%lld %s) and then live only in the datalake",
                cause, (long long)keep, (long long)(keep / units[u].ms), units[u].unit);
    }
    reply_err(rep, e);
}

void jobs_get(server_t *srv, req_t *req, reply_t *rep)
{
    json_t *job;
    err_t e;
    if (store_job_get(srv->store, req->params[0], &job, &e) != JOBD_OK) {
        reply_read_err(srv, rep, &e);
        return;
    }
    reply_json(rep, 200, job);
}

static bool known_status(const char *s)
{
    static const char *const all[] = {"pending",   "scheduled", "processing",
                                      "succeeded", "failed",    "cancelled"};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (strcmp(s, all[i]) == 0)
            return true;
    return false;
}

void jobs_list(server_t *srv, req_t *req, reply_t *rep)
{
    job_filter_t f = {.limit = 100};
    const char *limit = req_arg(req, "limit");
    json_t *jobs, *last;
    err_t e;

    f.status = req_arg(req, "status");
    f.operation = req_arg(req, "operation");
    f.after = req_arg(req, "after");
    if (f.status && !known_status(f.status)) {
        err_set(&e, JOBD_EFIELD,
                "query 'status' must be pending, scheduled, processing, succeeded, failed or "
                "cancelled, not '%.64s'",
                f.status);
        goto out_error;
    }
    if (f.operation && !validate_name(f.operation)) {
        err_set(&e, JOBD_EFIELD, "query 'operation' must be an operation name");
        goto out_error;
    }
    if (limit) {
        char *end;
        long n = strtol(limit, &end, 10);
        if (*end || end == limit || n < 1 || n > 1000) {
            err_set(&e, JOBD_EFIELD, "query 'limit' must be an integer from 1 to 1000, not '%.64s'",
                    limit);
            goto out_error;
        }
        f.limit = (int)n;
    }
    if (store_job_list(srv->store, &f, &jobs, &e) != JOBD_OK)
        goto out_error;
    last = json_array_get(jobs, json_array_size(jobs) - 1);
    reply_json(rep, 200,
               json_pack("{s:o,s:O}", "jobs", jobs, "next",
                         json_array_size(jobs) == (size_t)f.limit ? json_object_get(last, "id")
                                                                  : json_null()));
    return;

out_error:
    reply_err(rep, &e);
}

/* A claim's fields: the body of POST /jobs/claim, or the "claim" object of
 * POST /jobs/complete.  ops and names are borrowed from the object. */
typedef struct claim_req {
    json_t *ops;
    const char *names[64];
    int64_t wait_ms, max, lease_ms;
} claim_req_t;

static int parse_claim(const server_t *srv, const json_t *obj, claim_req_t *c, err_t *e)
{
    json_t *op;
    size_t i;
    int rc;

    if ((rc = validate_names(obj, "operations", 64, &c->ops, e)) != JOBD_OK ||
        (rc = validate_int(obj, "wait_ms", false, 0, MAX_WAIT_MS, 0, &c->wait_ms, e)) != JOBD_OK ||
        (rc = validate_int(obj, "max", false, 1, MAX_CLAIM, 1, &c->max, e)) != JOBD_OK ||
        (rc = validate_int(obj, "lease_ms", false, 1000, 3600000, srv->cfg.lease_ms, &c->lease_ms,
                           e)) != JOBD_OK)
        return rc;
    json_array_foreach(c->ops, i, op) c->names[i] = json_string_value(op);
    return JOBD_OK;
}

/* Whether a long-poll claim must answer now without looking: a stopping
 * server leases nothing (the reply might not reach the bot before the
 * connection closes), and a woken claim past its deadline is done. */
static bool claim_over(const server_t *srv, const req_t *req)
{
    return srv->stopping || (req->wait_deadline && clock_mono_ms() >= req->wait_deadline);
}

/* Answer a claim of bot_id that leased `jobs` (stolen).  `results`
 * (stolen) are the answers to the reports made with it, NULL for a plain
 * claim, which answers 204 where a claim with reports answers 200 with no
 * jobs.  With nothing leased and wait_ms, the request waits instead, from
 * the waitq sequence `seq` read before the store looked, and keeps
 * `results` for its next run (reply.carry); a submit may hand it a job
 * meanwhile (req.handed). */
static void reply_claim(server_t *srv, const req_t *req, reply_t *rep, const claim_req_t *c,
                        const char *bot_id, json_t *jobs, json_t *results, uint64_t seq)
{
    json_t *job;
    size_t i;

    if (json_array_size(jobs) == 0 && c->wait_ms > 0 && !claim_over(srv, req)) {
        json_decref(jobs);
        rep->wait_until = req->wait_deadline ? req->wait_deadline : clock_mono_ms() + c->wait_ms;
        rep->wait_ops = json_deep_copy(c->ops);
        rep->wait_bot = strdup(bot_id);
        if (!rep->wait_bot)
            abort();
        rep->wait_lease_ms = c->lease_ms;
        rep->wait_seq = seq;
        rep->carry = results;
        return;
    }
    json_array_foreach(jobs, i, job)
    {
        char what[256]; /* as log_finished's: a longer one is not noted (claimnote_put) */

        if (!log_enabled(LOG_INFO))
            break;
        log_info("job %s claimed by %s (attempt %lld)", id_short(str_field(job, "id")),
                 str_field(job, "bot_name"),
                 (long long)json_integer_value(json_object_get(job, "attempts")));
        if (srv->notes) {
            describe(str_field(job, "operation"), json_object_get(job, "input"), what, sizeof what);
            claimnote_put(srv->notes, str_field(job, "id"), what, str_field(job, "bot_name"));
        }
    }
    /* A claim that took a wake and filled its max passes a wake on: more
     * may be pending (waitq.h). */
    if (req->woken && json_array_size(jobs) == (size_t)c->max)
        waitq_pass(srv->waitq, c->ops);
    jobs = reply_claimed(req, rep, jobs);
    if (results)
        reply_json(rep, 200, json_pack("{s:o,s:o}", "results", results, "jobs", jobs));
    else if (json_array_size(jobs) > 0)
        reply_json(rep, 200, json_pack("{s:o}", "jobs", jobs));
    else {
        json_decref(jobs);
        reply_json(rep, 204, NULL);
    }
}

void jobs_claim(server_t *srv, req_t *req, reply_t *rep)
{
    json_t *body = NULL, *jobs = NULL;
    const char *bot_id;
    claim_req_t c;
    uint64_t seq;
    err_t e;

    /* A job handed over is leased already: it goes to the bot even now. */
    if (claim_over(srv, req) && !req->handed) {
        reply_json(rep, 204, NULL);
        return;
    }
    if (validate_body(req->body, req->body_len, false, &body, &e) != JOBD_OK ||
        validate_string(body, "bot_id", true, MAX_ID, &bot_id, &e) != JOBD_OK ||
        parse_claim(srv, body, &c, &e) != JOBD_OK)
        goto out_error;

    /* Read the sequence before looking, so that a job submitted between the
     * look and the park wakes us (waitq.h). */
    seq = waitq_seq(srv->waitq);
    if (req->handed)
        jobs = json_incref(req->handed);
    else if (store_job_claim(srv->store, bot_id, c.names, json_array_size(c.ops), (int)c.max,
                             c.lease_ms, req->minimal, &jobs, &e) != JOBD_OK)
        goto out_error;
    reply_claim(srv, req, rep, &c, bot_id, jobs, NULL, seq);
    json_decref(body);
    return;

out_error:
    reply_err(rep, &e);
    json_decref(body);
}

/* complete and fail share everything but the field they carry. */
/* Read one report from obj: lease, duration_ms, and the result (complete)
 * or the error and retryable flag (fail).  With ok < 0 (a batch item), the
 * kind is whichever of "error" and "result" the item has.  Strings are
 * borrowed from obj. */
static int parse_report(const server_t *srv, const json_t *obj, int ok, job_report_t *r, err_t *e)
{
    json_t *retryable;
    int rc;

    if (ok < 0)
        ok = json_object_get(obj, "error") == NULL;
    r->ok = ok;
    if ((rc = validate_string(obj, "lease", true, MAX_LEASE, &r->lease, e)) != JOBD_OK ||
        (rc = validate_int(obj, "duration_ms", true, 0, MAX_DURATION_MS, 0, &r->duration_ms, e)) !=
            JOBD_OK)
        return rc;
    if (ok) {
        r->result = json_object_get(obj, "result");
        if (!r->result)
            return err_set(e, JOBD_EFIELD, "field 'result' is required (any JSON value)");
        return JOBD_OK;
    }
    if ((rc = validate_string(obj, "error", true, MAX_ERROR, &r->error, e)) != JOBD_OK)
        return rc;
    retryable = json_object_get(obj, "retryable");
    if (retryable && !json_is_boolean(retryable))
        return err_set(e, JOBD_EFIELD, "field 'retryable' must be true or false");
    r->retry = json_is_true(retryable) ? &srv->cfg.retry : NULL;
    return JOBD_OK;
}

/* How much of its job the store answers a report with: a minimal reply
 * shows only the job's id and status, and a log line of info its summary
 * (record.h): neither needs the whole job read back. */
/* How much of its job a report reads back: under `Prefer: return=minimal`
 * only the id and status, plus the summary for its log line, unless the
 * claim left a note of what the line needs (*noted; a failure always reads
 * the summary, whose attempts and retry time its line shows). */
static void report_shape(server_t *srv, const req_t *req, job_report_t *r, claimnote_t *note,
                         bool *noted)
{
    bool info = log_enabled(LOG_INFO);

    *noted = req->minimal && info && r->ok && srv->notes && claimnote_take(srv->notes, r->id, note);
    r->brief = req->minimal;
    r->summary = req->minimal && info && !*noted;
}

/* Log what a report did; true if it finished the job (for the datalake).
 * `note`: the claim's note when the job was not read back (noted). */
static bool log_report(const job_report_t *r, const claimnote_t *note, bool noted)
{
    const json_t *job = r->job;

    if (r->rc != JOBD_OK) {
        log_info("job %s: %s refused: %s", id_short(r->id), r->ok ? "complete" : "fail",
                 r->err.msg);
        return false;
    }
    if (r->repeated) {
        log_info("job %s: repeated %s from %s ignored (already recorded)",
                 id_short(str_field(job, "id")), r->ok ? "complete" : "fail",
                 noted ? note->bot_name : str_field(job, "bot_name"));
        return false;
    }
    if (strcmp(str_field(job, "status"), "scheduled") == 0) {
        log_info("job %s failed (attempt %lld), retrying at %s: %.200s",
                 id_short(str_field(job, "id")),
                 (long long)json_integer_value(json_object_get(job, "attempts")),
                 str_field(job, "run_at"), r->error);
        return false;
    }
    if (noted)
        log_finished_noted(r, note);
    else
        log_finished(job);
    return true;
}

/* complete and fail share everything but the field they carry. */
static void finish(server_t *srv, req_t *req, reply_t *rep, bool ok)
{
    json_t *body = NULL;
    const char *bot_id;
    job_report_t r = {.id = req->params[0]};
    claimnote_t note;
    bool noted = false;
    err_t e;

    if (validate_body(req->body, req->body_len, false, &body, &e) != JOBD_OK ||
        validate_string(body, "bot_id", true, MAX_ID, &bot_id, &e) != JOBD_OK ||
        parse_report(srv, body, ok, &r, &e) != JOBD_OK)
        goto out_error;
    report_shape(srv, req, &r, &note, &noted);
    if (store_job_report_many(srv->store, bot_id, &r, 1, NULL, &e) != JOBD_OK)
        goto out_error;
    if (log_report(&r, &note, noted))
        datalake_notify(srv->datalake);
    if (r.rc != JOBD_OK)
        reply_err(rep, &r.err);
    else
        reply_json(rep, 200, reply_job(req, rep, r.job));
    json_decref(body);
    return;

out_error:
    reply_err(rep, &e);
    json_decref(body);
}

/* A report batch that also claims and waited for a job: its reports were
 * recorded by its first run, whose answers it kept (req->carry); now it
 * only claims. */
static void claim_after_reports(server_t *srv, const req_t *req, reply_t *rep, const json_t *body,
                                const char *bot_id)
{
    json_t *results = json_incref((json_t *)req->carry), *jobs = NULL;
    claim_req_t c;
    uint64_t seq = waitq_seq(srv->waitq);
    err_t e;

    /* The body was read whole by the first run. */
    if (parse_claim(srv, json_object_get(body, "claim"), &c, &e) != JOBD_OK)
        goto out_error;
    if (req->handed)
        jobs = json_incref(req->handed);
    /* Past the deadline (or stopping): the reports and no job, no look. */
    else if (claim_over(srv, req))
        jobs = json_array();
    else if (store_job_claim(srv->store, bot_id, c.names, json_array_size(c.ops), (int)c.max,
                             c.lease_ms, req->minimal, &jobs, &e) != JOBD_OK)
        goto out_error;
    reply_claim(srv, req, rep, &c, bot_id, jobs, results, seq);
    return;

out_error:
    /* The reports stay recorded; the bot sees the claim's error, and
     * sending its reports again is harmless (a repeat records nothing). */
    json_decref(results);
    reply_err(rep, &e);
}

/* POST /jobs/complete: many reports of one bot in one request and one
 * transaction, each fenced on its own; the reply has one entry per report,
 * in order, with the job or the error that refused it.  With a "claim"
 * object, the same transaction then leases the bot more jobs, which the
 * reply carries as "jobs": a bot's finish-and-fetch costs one commit. */
void jobs_report_batch(server_t *srv, req_t *req, reply_t *rep)
{
    json_t *body = NULL, *items, *results, *item, *claim_obj;
    job_report_t *r = NULL;
    struct {
        claimnote_t note;
        bool noted;
    } *notes = NULL; /* report_shape's, one per report */
    job_claim_t claim = {0};
    claim_req_t c;
    const char *bot_id;
    bool finished = false;
    size_t n = 0, i;
    uint64_t seq;
    err_t e;

    if (validate_body(req->body, req->body_len, false, &body, &e) != JOBD_OK ||
        validate_string(body, "bot_id", true, MAX_ID, &bot_id, &e) != JOBD_OK)
        goto out_error;
    if (req->carry) {
        claim_after_reports(srv, req, rep, body, bot_id);
        json_decref(body);
        return;
    }
    items = json_object_get(body, "results");
    n = json_array_size(items);
    if (!json_is_array(items) || n < 1 || n > MAX_REPORTS) {
        err_set(&e, JOBD_EFIELD, "field 'results' must be an array of 1 to %d reports",
                MAX_REPORTS);
        goto out_error;
    }
    claim_obj = json_object_get(body, "claim");
    if (claim_obj && !json_is_object(claim_obj)) {
        err_set(&e, JOBD_EFIELD,
                "field 'claim' must be an object (the fields of POST /jobs/claim)");
        goto out_error;
    }
    if (claim_obj) {
        if (parse_claim(srv, claim_obj, &c, &e) != JOBD_OK) {
            err_prefix(&e, "claim: ");
            goto out_error;
        }
        claim.ops = c.names;
        claim.nops = json_array_size(c.ops);
        claim.max = (int)c.max;
        claim.lease_ms = c.lease_ms;
        claim.brief = req->minimal;
    }
    r = calloc(n, sizeof *r);
    notes = calloc(n, sizeof *notes);
    if (!r || !notes)
        abort();
    json_array_foreach(items, i, item)
    {
        if (!json_is_object(item)) {
            err_set(&e, JOBD_EFIELD, "results[%zu]: a report must be a JSON object", i);
            goto out_error;
        }
        if (validate_string(item, "id", true, MAX_ID, &r[i].id, &e) != JOBD_OK ||
            parse_report(srv, item, -1, &r[i], &e) != JOBD_OK) {
            err_prefix(&e, "results[%zu]: ", i);
            goto out_error;
        }
    }
    /* Once every report is valid, so that no note is taken for nothing. */
    for (i = 0; i < n; i++)
        report_shape(srv, req, &r[i], &notes[i].note, &notes[i].noted);
    /* Read before the claim looks, as jobs_claim does. */
    seq = waitq_seq(srv->waitq);
    if (store_job_report_many(srv->store, bot_id, r, n, claim_obj ? &claim : NULL, &e) != JOBD_OK)
        goto out_error;

    results = json_array();
    for (i = 0; i < n; i++) {
        finished |= log_report(&r[i], &notes[i].note, notes[i].noted);
        if (r[i].rc == JOBD_OK)
            json_array_append_new(results, json_pack("{s:s,s:o}", "id", r[i].id, "job",
                                                     reply_job(req, rep, r[i].job)));
        else
            json_array_append_new(results,
                                  json_pack("{s:s,s:{s:s,s:s}}", "id", r[i].id, "error", "code",
                                            err_code_str(r[i].rc), "message", r[i].err.msg));
    }
    if (finished)
        datalake_notify(srv->datalake);
    if (claim_obj)
        reply_claim(srv, req, rep, &c, bot_id, claim.jobs, results, seq);
    else
        reply_json(rep, 200, json_pack("{s:o}", "results", results));
    free(notes);
    free(r);
    json_decref(body);
    return;

out_error:
    reply_err(rep, &e);
    free(notes);
    free(r);
    json_decref(body);
}

void jobs_complete(server_t *srv, req_t *req, reply_t *rep)
{
    finish(srv, req, rep, true);
}

void jobs_fail(server_t *srv, req_t *req, reply_t *rep)
{
    finish(srv, req, rep, false);
}

typedef int (*admin_fn)(store_t *s, const char *id, const char *reason, json_t **job, err_t *e);

/* release, retry and cancel: an admin action on one job with an optional
 * reason, which the store records with the job. */
static void admin_action(server_t *srv, req_t *req, reply_t *rep, admin_fn fn, const char *done,
                         const char *dflt)
{
    json_t *body = NULL, *job;
    const char *reason;
    err_t e;

    if (require_admin(srv, req, &e) != JOBD_OK ||
        validate_body(req->body, req->body_len, true, &body, &e) != JOBD_OK ||
        validate_string(body, "reason", false, MAX_REASON, &reason, &e) != JOBD_OK)
        goto out_error;
    if (!reason)
        reason = dflt;
    if (fn(srv->store, req->params[0], reason, &job, &e) != JOBD_OK)
        goto out_error;
    log_info("job %s %s by admin, now %s: %s", id_short(str_field(job, "id")), done,
             str_field(job, "status"), reason);
    if (strcmp(str_field(job, "status"), "pending") == 0)
        waitq_announce(srv->waitq, str_field(job, "operation"), 1);
    if (strcmp(str_field(job, "status"), "cancelled") == 0)
        datalake_notify(srv->datalake);
    reply_json(rep, 200, job);
    json_decref(body);
    return;

out_error:
    reply_err(rep, &e);
    json_decref(body);
}

void jobs_release(server_t *srv, req_t *req, reply_t *rep)
{
    admin_action(srv, req, rep, store_job_release, "released", "admin release");
}

void jobs_retry(server_t *srv, req_t *req, reply_t *rep)
{
    admin_action(srv, req, rep, store_job_retry, "retried", "admin retry");
}

void jobs_cancel(server_t *srv, req_t *req, reply_t *rep)
{
    admin_action(srv, req, rep, store_job_cancel, "cancelled", "admin cancel");
}

void jobs_explain(server_t *srv, req_t *req, reply_t *rep)
{
    json_t *facts;
    err_t e;

    if (store_job_explain(srv->store, req->params[0], &facts, &e) != JOBD_OK) {
        reply_read_err(srv, rep, &e);
        return;
    }
    reply_json(rep, 200, explain_job(facts, clock_now_ms()));
    json_decref(facts);
}
