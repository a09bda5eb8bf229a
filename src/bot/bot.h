/*
 * bot.h - the stock bot's parts: its configuration and shared state, the
 * claim loop, the processing of one leased job, and the heartbeat thread.
 * Processing takes its client and bot id as arguments, so that a later
 * --concurrency N can run it on N workers, each with its own client.
 */
#ifndef JOBD_BOT_H
#define JOBD_BOT_H

#include "jobd/jobd.h"
#include "operations.h"

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>

struct bot_config {
    const char *server;
    const char *name;
    const char *operations[OPERATION_COUNT];
    size_t n_operations;
    int wait_ms;
    int heartbeat_ms;
    int report_grace_ms; /* after a stop request, how long to keep trying to report */
    int work_ms;         /* each job takes at least this long (simulated work) */
    int batch;           /* jobs leased per claim, worked through one by one */
    int concurrency;     /* claim loops at once, each with its own connection */
};

/* Room for the jobs of one claim (the server's "max" is 1..100). */
#define BOT_MAX_HELD 100

/* A job the bot holds, as the heartbeat thread and the claim loop see it. */
struct held_job {
    char id[JOBD_ID_MAX];
    const char *gone; /* NULL while it is ours; "cancelled" or "lost" once the server says */
};

struct bot {
    const struct bot_config *cfg;
    jobd_client_t *client;             /* the first claim loop's; not thread-safe */
    const volatile sig_atomic_t *stop; /* set by SIGTERM/SIGINT */

    /* Shared with the heartbeat thread. */
    pthread_mutex_t lock;
    char bot_id[JOBD_ID_MAX];      /* "" until registered */
    int busy;                      /* jobs in hand: state is "processing" while > 0 */
    bool offline;                  /* set when the bot is leaving */
    pthread_mutex_t register_lock; /* one registration at a time among the loops */
    struct held_job held[BOT_MAX_HELD];
    size_t n_held;
};

/* Initialise b (caller-allocated) for cfg; b->client is made here.
 * Returns JOBD_OK, or JOBD_EINTERNAL if the client cannot be created. */
int bot_init(struct bot *b, const struct bot_config *cfg, const volatile sig_atomic_t *stop);

/* Free what bot_init made. */
void bot_cleanup(struct bot *b);

/* The state the server should see: "ready", "processing" or "offline". */
const char *bot_state(struct bot *b);

/* Copy the current bot id ("" if not registered) into out. */
void bot_get_id(struct bot *b, char out[JOBD_ID_MAX]);

/* Count a job taken in hand (+1) or let go (-1), logging a change of state
 * ("Bot state changed: ready -> processing"). */
void bot_busy_add(struct bot *b, int delta);

/* Mark the bot as leaving: its state becomes "offline" (logged). */
void bot_set_offline(struct bot *b);

/* The jobs of a claim reply are held until jobs_process lets each go; the
 * heartbeat names them so that the server renews exactly these leases. */
void bot_hold(struct bot *b, const char *id);
void bot_unhold(struct bot *b, const char *id);

/* The held jobs as a heartbeat's "jobs" array.  A new reference. */
json_t *bot_held_json(struct bot *b);

/* The server said job id was cancelled or taken back (`why` is "cancelled"
 * or "lost", a static string): returns true if the bot held it and did not
 * know yet. */
bool bot_mark_gone(struct bot *b, const char *id, const char *why);

/* NULL while job id is still the bot's, else why it is not ("cancelled" or
 * "lost"). */
const char *bot_job_gone(struct bot *b, const char *id);

/* Register, claim and process until *stop; returns when stopped, with any
 * job in hand reported (or given up after cfg->report_grace_ms). */
void bot_run(struct bot *b);

/* The n jobs of one claim (held with bot_hold): computed one after another,
 * then reported through `client` under `bot_id` (the id they were claimed
 * with) in one request, POST /jobs/complete, each job accepted or refused on
 * its own; transient failures are retried (see process.c).  With `claim`
 * (may be NULL), the same request leases the next jobs, unless the bot is
 * asked to stop meanwhile.  OUT: *next and *n_next, the jobs it leased
 * (NULL and 0 if none), already held; the caller processes them in turn
 * and frees them with jobd_client_jobs_free().  The jobs of this claim are
 * let go before it returns. */
void jobs_process(struct bot *b, jobd_client_t *client, const char *bot_id, const jobd_job_t *jobs,
                  size_t n, const jobd_claim_request_t *claim, jobd_job_t **next, size_t *n_next);

/* The heartbeat thread, with its own client. */
struct heartbeat {
    struct bot *bot;
    jobd_client_t *client;
    pthread_t thread;
    pthread_cond_t wake;
    bool quit; /* guarded by bot->lock */
};

/* Start the thread.  Returns JOBD_OK or JOBD_EINTERNAL. */
int heartbeat_start(struct heartbeat *h, struct bot *b);

/* Stop and join the thread, then send one last heartbeat with the bot's
 * final state (offline) so that the server need not wait for it to age out. */
void heartbeat_stop(struct heartbeat *h);

#endif
