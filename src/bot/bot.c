/*
 * bot.c - the bot's shared state and its claim loop: register, long-poll
 * POST /jobs/claim for the configured operations, hand the leased jobs to
 * jobs_process(), whose report claims the next ones, and long-poll again
 * only when a report brings none.  Network trouble is waited out with
 * backoff; a server that has forgotten the bot (404 unknown_bot, e.g. after
 * its database was reset) gets a fresh registration.
 */
#include "bot.h"

#include "err.h"
#include "log.h"
#include "retry.h"

#include <stdio.h>
#include <string.h>

#define CLAIM_BACKOFF_FIRST_MS 100
#define CLAIM_BACKOFF_MAX_MS   5000

int bot_init(struct bot *b, const struct bot_config *cfg, const volatile sig_atomic_t *stop)
{
    /* The bot reads nothing of a report's reply but each job's error, if
     * any: minimal replies spare the server reading the jobs back. */
    jobd_client_options_t opts = {.base_url = cfg->server, .minimal = 1};

    memset(b, 0, sizeof *b);
    b->cfg = cfg;
    b->stop = stop;
    b->client = jobd_client_new(&opts);
    if (!b->client)
        return JOBD_EINTERNAL;
    pthread_mutex_init(&b->lock, NULL);
    pthread_mutex_init(&b->register_lock, NULL);
    return JOBD_OK;
}

void bot_cleanup(struct bot *b)
{
    jobd_client_free(b->client);
    pthread_mutex_destroy(&b->lock);
    pthread_mutex_destroy(&b->register_lock);
}

/* Called with b->lock held. */
static const char *state_locked(const struct bot *b)
{
    if (b->offline)
        return "offline";
    return b->busy > 0 ? "processing" : "ready";
}

const char *bot_state(struct bot *b)
{
    const char *s;

    pthread_mutex_lock(&b->lock);
    s = state_locked(b);
    pthread_mutex_unlock(&b->lock);
    return s;
}

void bot_get_id(struct bot *b, char out[JOBD_ID_MAX])
{
    pthread_mutex_lock(&b->lock);
    memcpy(out, b->bot_id, JOBD_ID_MAX);
    pthread_mutex_unlock(&b->lock);
}

static void set_id(struct bot *b, const char *id)
{
    pthread_mutex_lock(&b->lock);
    snprintf(b->bot_id, sizeof b->bot_id, "%s", id);
    pthread_mutex_unlock(&b->lock);
}

/* Apply change under the lock and log the state change it made, if any. */
static void change_state(struct bot *b, int busy_delta, bool offline)
{
    const char *before, *after;

    pthread_mutex_lock(&b->lock);
    before = state_locked(b);
    b->busy += busy_delta;
    b->offline = b->offline || offline;
    after = state_locked(b);
    pthread_mutex_unlock(&b->lock);
    if (strcmp(before, after) != 0)
        log_info("Bot state changed: %s -> %s", before, after);
}

void bot_busy_add(struct bot *b, int delta)
{
    change_state(b, delta, false);
}

void bot_set_offline(struct bot *b)
{
    change_state(b, 0, true);
}

/* Index of job id in b->held, or b->n_held.  Called with b->lock held. */
static size_t find_held(const struct bot *b, const char *id)
{
    size_t i;
    for (i = 0; i < b->n_held; i++)
        if (strcmp(b->held[i].id, id) == 0)
            break;
    return i;
}

void bot_hold(struct bot *b, const char *id)
{
    pthread_mutex_lock(&b->lock);
    if (find_held(b, id) == b->n_held && b->n_held < BOT_MAX_HELD) {
        snprintf(b->held[b->n_held].id, JOBD_ID_MAX, "%s", id);
        b->held[b->n_held++].gone = NULL;
    }
    pthread_mutex_unlock(&b->lock);
}

void bot_unhold(struct bot *b, const char *id)
{
    size_t i;

    pthread_mutex_lock(&b->lock);
    i = find_held(b, id);
    if (i < b->n_held)
        b->held[i] = b->held[--b->n_held];
    pthread_mutex_unlock(&b->lock);
}

json_t *bot_held_json(struct bot *b)
{
    json_t *jobs = json_array();

    pthread_mutex_lock(&b->lock);
    for (size_t i = 0; i < b->n_held; i++)
        if (!b->held[i].gone)
            json_array_append_new(jobs, json_pack("{s:s}", "id", b->held[i].id));
    pthread_mutex_unlock(&b->lock);
    return jobs;
}

bool bot_mark_gone(struct bot *b, const char *id, const char *why)
{
    bool news = false;
    size_t i;

    pthread_mutex_lock(&b->lock);
    i = find_held(b, id);
    if (i < b->n_held && !b->held[i].gone) {
        b->held[i].gone = why;
        news = true;
    }
    pthread_mutex_unlock(&b->lock);
    return news;
}

const char *bot_job_gone(struct bot *b, const char *id)
{
    const char *gone = NULL;
    size_t i;

    pthread_mutex_lock(&b->lock);
    i = find_held(b, id);
    if (i < b->n_held)
        gone = b->held[i].gone;
    pthread_mutex_unlock(&b->lock);
    return gone;
}

/* How to react to a failed register or claim: wait and try again (false),
 * unless the stop flag ends the wait (true). */
static bool wait_after_failure(struct bot *b, jobd_client_t *c, struct backoff *bo,
                               struct outage *o)
{
    char why[1400];

    jobd_client_error_format(c, why, sizeof why);
    if (jobd_client_error_is_transient(c)) {
        outage_failed(o, why);
    } else {
        /* A 4xx (or a reply that breaks the API) will not go away by itself;
         * say so every time, but at the slowest retry rate. */
        log_error("%s %s: %s", o->what,
                  jobd_client_last_error(c)->rc == JOBD_CLIENT_EHTTP ? "refused" : "failed", why);
        bo->ceil_ms = bo->max_ms;
    }
    return !retry_sleep(backoff_next(bo), b->stop);
}

/* Register until it works or the bot is stopped; returns true if registered.
 * The claim loops share one registration: whichever finds none registers,
 * the others find it done when they get the lock. */
static bool register_bot(struct bot *b, jobd_client_t *c)
{
    const struct bot_config *cfg = b->cfg;
    struct outage o = {.what = "register"};
    struct backoff bo;
    char id[JOBD_ID_MAX];
    bool ok = false;

    pthread_mutex_lock(&b->register_lock);
    backoff_init(&bo, CLAIM_BACKOFF_FIRST_MS, CLAIM_BACKOFF_MAX_MS);
    while (!*b->stop) {
        bot_get_id(b, id);
        if (id[0]) {
            ok = true;
            break;
        }
        if (jobd_client_register(c, cfg->name, cfg->operations, cfg->n_operations, id) ==
            JOBD_CLIENT_OK) {
            outage_over(&o);
            set_id(b, id);
            log_info("Registered as %s (bot id %s) at %s", cfg->name, id, cfg->server);
            ok = true;
            break;
        }
        if (wait_after_failure(b, c, &bo, &o))
            break;
    }
    pthread_mutex_unlock(&b->register_lock);
    return ok;
}

/* Forget the bot id `stale` (the server does not know it), unless another
 * claim loop already replaced it with a fresh registration. */
static void forget_id(struct bot *b, const char *stale)
{
    pthread_mutex_lock(&b->lock);
    if (strcmp(b->bot_id, stale) == 0)
        b->bot_id[0] = '\0';
    pthread_mutex_unlock(&b->lock);
}

static bool is_unknown_bot(const jobd_client_t *c)
{
    const jobd_error_t *e = jobd_client_last_error(c);
    return e->rc == JOBD_CLIENT_EHTTP && e->status == 404 && strcmp(e->code, "unknown_bot") == 0;
}

/* One claim loop on its own connection c. */
static void claim_loop(struct bot *b, jobd_client_t *c)
{
    const struct bot_config *cfg = b->cfg;
    struct outage o = {.what = "claim"};
    struct backoff bo;
    char id[JOBD_ID_MAX];
    jobd_claim_request_t req = {
        .bot_id = id,
        .operations = cfg->operations,
        .n_operations = cfg->n_operations,
        .wait_ms = cfg->wait_ms,
        .max = cfg->batch,
        .cancel = b->stop,
    };

    /* The claim that a report makes for the next jobs, under the same bot
     * id.  It does not wait (wait_ms 0): the same reply answers the
     * reports, which should be logged when the server takes them, not up to
     * wait_ms later; and a stop could not cut a waiting report short without
     * leaving the bot unsure whether its reports were recorded.  When the
     * reply brings no job, the loop long-polls with a plain claim. */
    jobd_claim_request_t next = req;
    jobd_job_t *jobs = NULL;
    size_t n = 0;

    next.wait_ms = 0;
    next.cancel = NULL;
    backoff_init(&bo, CLAIM_BACKOFF_FIRST_MS, CLAIM_BACKOFF_MAX_MS);
    for (;;) {
        int rc;

        if (n > 0) {
            /* Jobs in hand are finished and reported even if a stop request
             * arrives meanwhile: jobs_process bounds its own retries, and
             * claims nothing more once the bot is stopping. */
            jobd_job_t *done = jobs;
            size_t n_done = n;

            jobs_process(b, c, id, done, n_done, &next, &jobs, &n);
            jobd_client_jobs_free(done, n_done);
            continue;
        }
        if (*b->stop)
            break;
        bot_get_id(b, id);
        if (!id[0]) {
            if (!register_bot(b, c))
                break;
            continue;
        }
        rc = jobd_client_claim(c, &req, &jobs, &n);
        if (rc == JOBD_CLIENT_ECANCELED)
            break;
        if (rc != JOBD_CLIENT_OK) {
            if (is_unknown_bot(c)) {
                log_warn("The server does not know bot %s (was its database reset?); "
                         "registering again",
                         id);
                forget_id(b, id);
                continue;
            }
            if (wait_after_failure(b, c, &bo, &o))
                break;
            continue;
        }
        outage_over(&o);
        backoff_reset(&bo);
        for (size_t i = 0; i < n; i++)
            bot_hold(b, jobs[i].id);
    }
}

struct loop {
    struct bot *b;
    jobd_client_t *client;
    pthread_t thread;
};

static void *loop_thread(void *arg)
{
    struct loop *l = arg;

    pthread_setname_np(pthread_self(), "bot-claim");
    claim_loop(l->b, l->client);
    return NULL;
}

void bot_run(struct bot *b)
{
    jobd_client_options_t opts = {.base_url = b->cfg->server, .minimal = 1};
    struct loop loops[BOT_MAX_HELD];
    int n = 0;

    /* Loops 1..N-1 run in threads with connections of their own (a client
     * is not thread-safe); loop 0 runs here on b->client. */
    for (int i = 1; i < b->cfg->concurrency; i++) {
        loops[n] = (struct loop){.b = b, .client = jobd_client_new(&opts)};
        if (!loops[n].client) {
            log_error("cannot create an HTTP client for claim loop %d; running %d", i, n + 1);
            break;
        }
        if (pthread_create(&loops[n].thread, NULL, loop_thread, &loops[n]) != 0)
            abort();
        n++;
    }
    claim_loop(b, b->client);
    for (int i = 0; i < n; i++) {
        pthread_join(loops[i].thread, NULL);
        jobd_client_free(loops[i].client);
    }
}
