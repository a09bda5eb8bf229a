/*
 * heartbeat.c - the bot's heartbeat thread.  It has its own client, so a
 * long poll in the claim loop never delays it.  Every heartbeat names the
 * jobs in hand, which renews their leases, and learns from the reply which
 * of them an admin cancelled or the server took back (this bot was silent
 * too long, or a lease ran out): those are marked, and jobs_process drops
 * them instead of reporting.  It sleeps on a condition variable so that
 * stopping it is immediate.
 */
#include "bot.h"

#include "id.h"
#include "log.h"
#include "retry.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* Mark the jobs the reply lists under `kind`, logging each once. */
static void mark_gone(struct bot *b, const json_t *reply, const char *kind, const char *news)
{
    json_t *ids = json_object_get(json_object_get(reply, "jobs"), kind), *id;
    size_t i;

    json_array_foreach(ids, i, id)
    {
        const char *job = json_string_value(id);
        if (job && bot_mark_gone(b, job, kind))
            log_warn("Job %s %s; dropping it, its result will not be reported", id_short(job),
                     news);
    }
}

static void beat(struct heartbeat *h, struct outage *o)
{
    const jobd_error_t *e;
    char id[JOBD_ID_MAX], why[1400];
    json_t *jobs, *reply = NULL;
    int rc;

    bot_get_id(h->bot, id);
    if (!id[0])
        return; /* not registered yet: the claim loop is on it */
    jobs = bot_held_json(h->bot);
    rc = jobd_client_heartbeat_jobs(h->client, id, bot_state(h->bot), jobs, &reply);
    json_decref(jobs);
    if (rc == JOBD_CLIENT_OK) {
        outage_over(o);
        mark_gone(h->bot, reply, "cancelled", "was cancelled by an admin");
        mark_gone(h->bot, reply, "lost",
                  "was taken back by the server (this bot was silent too long or its lease ran "
                  "out)");
        json_decref(reply);
        return;
    }
    jobd_client_error_format(h->client, why, sizeof why);
    e = jobd_client_last_error(h->client);
    if (jobd_client_error_is_transient(h->client))
        outage_failed(o, why);
    else if (e->status == 404)
        log_debug("heartbeat: bot %s unknown to the server; the claim loop will register again",
                  id);
    else
        log_warn("heartbeat refused: %s", why);
}

static void *heartbeat_main(void *arg)
{
    struct heartbeat *h = arg;
    struct outage o = {.what = "heartbeat"};
    struct bot *b = h->bot;

    pthread_setname_np(pthread_self(), "bot-heartbeat");
    pthread_mutex_lock(&b->lock);
    while (!h->quit) {
        struct timespec until;
        int64_t ns;

        pthread_mutex_unlock(&b->lock);
        beat(h, &o);
        pthread_mutex_lock(&b->lock);
        clock_gettime(CLOCK_MONOTONIC, &until);
        ns = until.tv_nsec + (int64_t)b->cfg->heartbeat_ms % 1000 * 1000000;
        until.tv_sec += b->cfg->heartbeat_ms / 1000 + ns / 1000000000;
        until.tv_nsec = ns % 1000000000;
        while (!h->quit && pthread_cond_timedwait(&h->wake, &b->lock, &until) != ETIMEDOUT)
            ;
    }
    pthread_mutex_unlock(&b->lock);
    return NULL;
}

int heartbeat_start(struct heartbeat *h, struct bot *b)
{
    jobd_client_options_t opts = {.base_url = b->cfg->server,
                                  .timeout_ms =
                                      b->cfg->heartbeat_ms > 1000 ? b->cfg->heartbeat_ms : 1000};
    pthread_condattr_t attr;
    sigset_t block, old;
    int rc;

    memset(h, 0, sizeof *h);
    h->bot = b;
    h->client = jobd_client_new(&opts);
    if (!h->client)
        return JOBD_EINTERNAL;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&h->wake, &attr);
    pthread_condattr_destroy(&attr);
    /* Signals go to the main thread, whose long poll they must interrupt. */
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    rc = pthread_create(&h->thread, NULL, heartbeat_main, h);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        log_error("cannot start the heartbeat thread: %s", strerror(rc));
        pthread_cond_destroy(&h->wake);
        jobd_client_free(h->client);
        return JOBD_EINTERNAL;
    }
    return JOBD_OK;
}

void heartbeat_stop(struct heartbeat *h)
{
    struct bot *b = h->bot;
    char id[JOBD_ID_MAX], why[1400];

    pthread_mutex_lock(&b->lock);
    h->quit = true;
    pthread_cond_signal(&h->wake);
    pthread_mutex_unlock(&b->lock);
    pthread_join(h->thread, NULL);

    bot_get_id(b, id);
    if (id[0] && jobd_client_heartbeat(h->client, id, bot_state(b)) != JOBD_CLIENT_OK)
        log_warn("could not tell the server this bot is %s: %s", bot_state(b),
                 jobd_client_error_format(h->client, why, sizeof why));
    pthread_cond_destroy(&h->wake);
    jobd_client_free(h->client);
}
