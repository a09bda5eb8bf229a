/*
 * process.c - the jobs of one claim, from computation to a report the
 * server has accepted.  The computed outcomes stay in memory until the
 * server answers: network errors and 5xx replies are retried with backoff
 * (a restart of jobd must not lose a result), while a 4xx refusal is logged
 * with the server's code, message and request id and the job is let go.
 * Every report goes through POST /jobs/complete, which also leases the
 * claim loop its next jobs, so that a busy bot makes one request per claim.
 */
#include "bot.h"

#include "clock.h"
#include "id.h"
#include "log.h"
#include "retry.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REPORT_BACKOFF_FIRST_MS 100
#define REPORT_BACKOFF_MAX_MS   5000

/* What the computation gave, kept until it is reported. */
struct outcome {
    bool ok;
    int64_t value;       /* when ok */
    err_t error;         /* when !ok */
    int64_t duration_ms; /* measured around the computation only */
    char what[320];      /* "613 sum 342", for the log */
};

static void log_accepted(const jobd_job_t *job, const struct outcome *out)
{
    if (out->ok)
        log_info("Job %s completed: %s = %" PRId64, id_short(job->id), out->what, out->value);
    else
        log_info("Job %s failed: %s: %s", id_short(job->id), out->what, out->error.msg);
}

/* True (and logged) when the server said the job is no longer ours. */
static bool dropped(struct bot *b, const jobd_job_t *job, const struct outcome *out)
{
    const char *gone = bot_job_gone(b, job->id);

    if (gone)
        log_info("Job %s: not reporting %s (%s): the server says it was %s", id_short(job->id),
                 out->ok ? "completion" : "failure", out->what, gone);
    return gone != NULL;
}

/* What deliver() sends: one attempt at a time, until the server answers. */
struct sender {
    int (*send)(void *ctx, jobd_client_t *c); /* a client rc */
    bool (*nothing_left)(void *ctx);          /* every job was taken away meanwhile */
    void *ctx;
};

#define DELIVER_GAVE_UP 1 /* stopping, and the grace period ran out */
#define DELIVER_DROPPED 2 /* nothing left to report */

/* Send until the server accepts (JOBD_CLIENT_OK) or refuses (a non-transient
 * client error, left in c for the caller to log).  Transient failures are
 * retried for as long as the bot runs; once it is asked to stop, for at most
 * report_grace_ms more, after which the leases will expire on the server and
 * the jobs will run again elsewhere.  `who` and `verb` name what is reported
 * in the log ("Job 2a4b8e90", "complete"). */
static int deliver(struct bot *b, jobd_client_t *c, const char *who, const char *verb,
                   const struct sender *snd)
{
    struct backoff bo;
    int64_t deadline = 0;
    char why[1400];
    int tries = 0;

    backoff_init(&bo, REPORT_BACKOFF_FIRST_MS, REPORT_BACKOFF_MAX_MS);
    for (;;) {
        int rc;
        int64_t wait, now;

        if (snd->nothing_left(snd->ctx))
            return DELIVER_DROPPED;
        rc = snd->send(snd->ctx, c);
        tries++;
        if (rc == JOBD_CLIENT_OK) {
            if (tries > 1)
                log_info("%s: %s accepted after %d tries", who, verb, tries);
            return rc;
        }
        if (!jobd_client_error_is_transient(c))
            return rc;
        jobd_client_error_format(c, why, sizeof why);
        if (tries == 1)
            log_warn("%s: cannot report %s yet, keeping the result and retrying: %s", who, verb,
                     why);
        now = clock_mono_ms();
        if (*b->stop && deadline == 0) {
            deadline = now + b->cfg->report_grace_ms;
            log_info("%s: stop requested; trying to report %s for %d ms more", who, verb,
                     b->cfg->report_grace_ms);
        }
        if (deadline && now >= deadline) {
            log_error("%s: stopping, and %s was not accepted within %d ms (%d tries): %s; "
                      "the lease will expire and the job will run again",
                      who, verb, b->cfg->report_grace_ms, tries, why);
            return DELIVER_GAVE_UP;
        }
        wait = backoff_next(&bo);
        if (deadline && wait > deadline - now)
            wait = deadline - now;
        retry_sleep(wait, NULL);
    }
}

/* The simulated work of --work-ms: sleep in short steps, ending early when
 * the job is taken away or the bot is asked to stop. */
static void work(struct bot *b, const jobd_job_t *job)
{
    int64_t until = clock_mono_ms() + b->cfg->work_ms;

    while (!*b->stop && !bot_job_gone(b, job->id) && clock_mono_ms() < until)
        retry_sleep(until - clock_mono_ms() < 50 ? until - clock_mono_ms() : 50, b->stop);
}

/* Compute one job into out; false (logged) if the server took it back
 * before it started. */
static bool compute(struct bot *b, const jobd_job_t *job, struct outcome *out)
{
    int64_t start;

    if (bot_job_gone(b, job->id)) {
        log_info("Job %s: not starting it: the server says it was %s", id_short(job->id),
                 bot_job_gone(b, job->id));
        return false;
    }
    /* Log lines name the job by a short piece of its id, as the server's
     * do; this one ties them to the whole id. */
    log_debug("Job %s: claimed %s, lease %s", id_short(job->id), job->id, job->lease);
    operation_describe(job->operation, job->input, out->what, sizeof out->what);
    start = clock_mono_ms();
    if (b->cfg->work_ms > 0)
        work(b, job);
    out->ok = operation_run(job->operation, job->input, &out->value, &out->error) == JOBD_OK;
    out->duration_ms = clock_mono_ms() - start;
    return true;
}

/* The jobs of one claim, reported in one POST /jobs/complete that may also
 * lease the next ones. */
struct batch {
    struct bot *b;
    const char *bot_id;
    const jobd_job_t *jobs;
    struct outcome *out;
    bool *skip; /* not started, or taken away since */
    size_t n;
    size_t *index; /* results[k] answers jobs[index[k]] */
    size_t sent;
    json_t *results;
    const jobd_claim_request_t *claim; /* asked with the report; NULL: no claim */
    jobd_job_t *next;                  /* what the accepted report leased */
    size_t n_next;
    bool handed_over; /* jobs let go and next held, at the reply */
};

/* The report was accepted: the batch's jobs are no longer ours to renew,
 * and the ones the reply leased are, from now on.  The old ones are let go
 * first: the claim may have leased one of them again (its report was
 * refused, its lease had run out), and held[] has room for one claim per
 * loop only. */
static void hand_over(struct batch *bt)
{
    for (size_t i = 0; i < bt->n; i++)
        bot_unhold(bt->b, bt->jobs[i].id);
    for (size_t i = 0; i < bt->n_next; i++)
        bot_hold(bt->b, bt->next[i].id);
    bt->handed_over = true;
}

static int send_batch(void *ctx, jobd_client_t *c)
{
    struct batch *bt = ctx;
    jobd_report_t r[BOT_MAX_HELD] = {0};
    json_t *values[BOT_MAX_HELD];
    const jobd_claim_request_t *claim;
    size_t k = 0;
    int rc;

    for (size_t i = 0; i < bt->n; i++) {
        const struct outcome *o = &bt->out[i];
        if (bt->skip[i])
            continue;
        values[k] = o->ok ? json_integer((json_int_t)o->value) : NULL;
        if (o->ok && !values[k])
            abort(); /* out of memory: the programs do not limp on */
        r[k] = (jobd_report_t){.job_id = bt->jobs[i].id,
                               .lease = bt->jobs[i].lease,
                               .result = values[k],
                               .error = o->ok ? NULL : o->error.msg,
                               .duration_ms = o->duration_ms};
        bt->index[k++] = i;
    }
    bt->sent = k;
    json_decref(bt->results);
    bt->results = NULL;
    /* A stopping bot reports without a claim, so that nothing new is leased
     * to it.  A try that failed on the way (network, 5xx) may still have
     * leased jobs whose reply was lost: the heartbeat never names them, so
     * their leases run out and they run again elsewhere; the retry's own
     * claim leases others. */
    claim = *bt->b->stop ? NULL : bt->claim;
    rc = jobd_client_report_claim(c, bt->bot_id, r, k, claim, &bt->results, &bt->next, &bt->n_next);
    for (size_t i = 0; i < k; i++)
        json_decref(values[i]);
    if (rc == JOBD_CLIENT_OK)
        hand_over(bt);
    return rc;
}

static bool batch_dropped(void *ctx)
{
    struct batch *bt = ctx;
    bool any = false;

    for (size_t i = 0; i < bt->n; i++) {
        if (!bt->skip[i] && dropped(bt->b, &bt->jobs[i], &bt->out[i]))
            bt->skip[i] = true;
        any |= !bt->skip[i];
    }
    return !any;
}

/* The HTTP status the server gives code (err.h) when it refuses a whole
 * request, so that a refused report of one job is logged as it was when
 * it went to POST /jobs/{id}/complete: "409 lease_expired: ...". */
static int code_status(const char *code)
{
#define STATUS_OF(name, value, text, status)                                                       \
    if (strcmp(code, text) == 0)                                                                   \
        return status;
    JOBD_ERRORS(STATUS_OF)
#undef STATUS_OF
    return 0;
}

/* Log how the server took report k of an accepted request. */
static void log_answer(jobd_client_t *c, const struct batch *bt, size_t k)
{
    const jobd_job_t *job = &bt->jobs[bt->index[k]];
    const struct outcome *o = &bt->out[bt->index[k]];
    json_t *err = json_object_get(json_array_get(bt->results, k), "error");
    const char *code = json_string_value(json_object_get(err, "code"));
    const char *msg = json_string_value(json_object_get(err, "message"));

    if (!err)
        log_accepted(job, o);
    else if (bt->n == 1)
        log_error("Job %s: server refused %s: %d %s: %s (request %s); dropping the job (it was "
                  "%s)",
                  id_short(job->id), o->ok ? "complete" : "fail", code_status(code ? code : ""),
                  code ? code : "", msg ? msg : "", jobd_client_last_error(c)->request_id, o->what);
    else
        log_error("Job %s: server refused %s: %s: %s; dropping the job (it was %s)",
                  id_short(job->id), o->ok ? "complete" : "fail", code, msg, o->what);
}

/* Report the batch and log, per job, how the server took it.  One job is
 * named as itself in the log, a batch as a batch. */
static void report_batch(struct bot *b, jobd_client_t *c, struct batch *bt)
{
    struct sender snd = {send_batch, batch_dropped, bt};
    char who[48], why[1400];
    const char *verb = "report";
    int rc;

    if (bt->n == 1) {
        snprintf(who, sizeof who, "Job %s", id_short(bt->jobs[0].id));
        verb = bt->out[0].ok ? "complete" : "fail";
    } else {
        snprintf(who, sizeof who, "Batch of %zu jobs", bt->n);
    }
    rc = deliver(b, c, who, verb, &snd);
    if (rc < 0) {
        /* The server (or this bot's own request) says no, and asking again
         * will not change that: keep what the server said. */
        jobd_client_error_format(c, why, sizeof why);
        if (bt->n == 1)
            log_error("%s: server refused %s: %s; dropping the job (it was %s)", who, verb, why,
                      bt->out[0].what);
        else
            log_error("%s: server refused the report: %s; dropping the jobs", who, why);
    }
    for (size_t k = 0; rc == JOBD_CLIENT_OK && k < bt->sent; k++)
        log_answer(c, bt, k);
}

void jobs_process(struct bot *b, jobd_client_t *client, const char *bot_id, const jobd_job_t *jobs,
                  size_t n, const jobd_claim_request_t *claim, jobd_job_t **next, size_t *n_next)
{
    struct outcome out[BOT_MAX_HELD] = {0};
    bool skip[BOT_MAX_HELD] = {0};
    size_t index[BOT_MAX_HELD];
    struct batch bt = {
        .b = b,
        .bot_id = bot_id,
        .jobs = jobs,
        .out = out,
        .skip = skip,
        .n = n,
        .index = index,
        .claim = claim,
    };

    bot_busy_add(b, (int)n);
    for (size_t i = 0; i < n; i++)
        skip[i] = !compute(b, &jobs[i], &out[i]);
    report_batch(b, client, &bt);
    json_decref(bt.results);
    /* Not accepted (refused, given up, or every job taken away): let the
     * jobs go; nothing new was leased. */
    if (!bt.handed_over)
        for (size_t i = 0; i < n; i++)
            bot_unhold(b, jobs[i].id);
    bot_busy_add(b, -(int)n);
    *next = bt.next;
    *n_next = bt.n_next;
}
