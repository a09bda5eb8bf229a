/*
 * process.c - one leased job, from computation to a report the server has
 * accepted.  The computed outcome stays in memory until the server answers:
 * network errors and 5xx replies are retried with backoff (a restart of
 * jobd must not lose a result), while a 4xx refusal is logged with the
 * server's code, message and request id and the job is let go.
 */
#include "bot.h"

#include "clock.h"
#include "id.h"
#include "log.h"
#include "retry.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

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

static int send_report(jobd_client_t *c, const char *bot_id, const jobd_job_t *job,
                       const struct outcome *out)
{
    json_t *result;
    int rc;

    if (!out->ok)
        return jobd_client_fail(c, bot_id, job->id, job->lease, out->error.msg, out->duration_ms,
                                NULL);
    result = json_integer((json_int_t)out->value);
    if (!result)
        abort(); /* out of memory: the programs do not limp on */
    rc = jobd_client_complete(c, bot_id, job->id, job->lease, result, out->duration_ms, NULL);
    json_decref(result);
    return rc;
}

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

/* Report until the server accepts or refuses.  Transient failures are retried
 * for as long as the bot runs; once it is asked to stop, for at most
 * report_grace_ms more, after which the lease will expire on the server and
 * the job will run again elsewhere. */
static void report(struct bot *b, jobd_client_t *c, const char *bot_id, const jobd_job_t *job,
                   const struct outcome *out)
{
    const char *verb = out->ok ? "complete" : "fail";
    struct backoff bo;
    int64_t deadline = 0;
    char why[1400];
    int tries = 0;

    backoff_init(&bo, REPORT_BACKOFF_FIRST_MS, REPORT_BACKOFF_MAX_MS);
    for (;;) {
        int rc;
        int64_t wait, now;

        if (dropped(b, job, out))
            return;
        rc = send_report(c, bot_id, job, out);
        tries++;
        if (rc == JOBD_CLIENT_OK) {
            log_accepted(job, out);
            if (tries > 1)
                log_info("Job %s: %s accepted after %d tries", id_short(job->id), verb, tries);
            return;
        }
        jobd_client_error_format(c, why, sizeof why);
        if (!jobd_client_error_is_transient(c)) {
            /* The server (or this bot's own request) says no, and asking
             * again will not change that: keep what the server said. */
            log_error("Job %s: server refused %s: %s; dropping the job (it was %s)",
                      id_short(job->id), verb, why, out->what);
            return;
        }
        if (tries == 1)
            log_warn("Job %s: cannot report %s yet, keeping the result and retrying: %s",
                     id_short(job->id), verb, why);
        now = clock_mono_ms();
        if (*b->stop && deadline == 0) {
            deadline = now + b->cfg->report_grace_ms;
            log_info("Job %s: stop requested; trying to report %s for %d ms more",
                     id_short(job->id), verb, b->cfg->report_grace_ms);
        }
        if (deadline && now >= deadline) {
            log_error("Job %s: stopping, and %s was not accepted within %d ms (%d tries): %s; "
                      "the lease will expire and the job will run again",
                      id_short(job->id), verb, b->cfg->report_grace_ms, tries, why);
            return;
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

void job_process(struct bot *b, jobd_client_t *client, const char *bot_id, const jobd_job_t *job)
{
    struct outcome out = {0};
    int64_t start;

    if (bot_job_gone(b, job->id)) {
        log_info("Job %s: not starting it: the server says it was %s", id_short(job->id),
                 bot_job_gone(b, job->id));
        bot_unhold(b, job->id);
        return;
    }
    bot_busy_add(b, +1);
    /* Log lines name the job by its first 8 characters, as the server's do;
     * this one ties them to the whole id. */
    log_debug("Job %s: claimed %s, lease %s", id_short(job->id), job->id, job->lease);
    operation_describe(job->operation, job->input, out.what, sizeof out.what);
    start = clock_mono_ms();
    if (b->cfg->work_ms > 0)
        work(b, job);
    out.ok = operation_run(job->operation, job->input, &out.value, &out.error) == JOBD_OK;
    out.duration_ms = clock_mono_ms() - start;
    report(b, client, bot_id, job, &out);
    bot_unhold(b, job->id);
    bot_busy_add(b, -1);
}
