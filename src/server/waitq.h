/*
 * waitq.h - long-poll claims waiting for work without holding a thread.
 *
 * A claim that finds nothing parks a waiter here and its connection is
 * suspended; submitting a job (or a lease going back to pending) announces
 * the operation and wakes as many waiters that want it as there are new
 * jobs, which then claim again.  A sequence number closes the race between
 * "looked and found nothing" and "parked": a waiter is only parked if
 * nothing was announced since it looked.
 *
 * Waking one waiter per job, not every waiter, is what keeps a fleet of idle
 * bots from all claiming each new job (all but one finding nothing, each in a
 * write transaction).  Its price is that a wake must not get lost, so it is
 * passed on: a woken claim that filled its `max` (more may be pending, and
 * a multi-operation claim may have taken other work) wakes one more waiter
 * (waitq_pass), and so does a woken connection that closes before its claim
 * ran again (waitq_cancel).
 *
 * A submit can do better than a wake when a bot waits for its operation:
 * it takes the waiter out of the queue (waitq_take), claims the new job for
 * that bot in the transaction that inserts it, and gives the waiter the
 * job (waitq_give): the bot has it after one commit instead of two, and no
 * other waiter is woken for it (the hand-off).
 *
 * The waiter is caller-allocated (it lives in the connection's state); the
 * queue only links it.  All functions are thread-safe.
 */
#ifndef JOBD_WAITQ_H
#define JOBD_WAITQ_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct waitq waitq_t;

typedef struct waiter {
    struct waiter *prev, *next;
    const json_t *ops; /* array of operation names; borrowed, must outlive parking */
    int64_t deadline;  /* mono ms */
    bool parked;
    bool announced;                 /* woken by an announcement; its claim has not run again yet */
    const char *bot_id;             /* the bot that waits (borrowed), NULL: no hand-off */
    int64_t lease_ms;               /* the lease its claim asks for */
    json_t *handed;                 /* owned: the jobs a hand-off gave it, until its rerun */
    void *data;                     /* the caller's (the connection) */
    void (*wake)(struct waiter *w); /* called once, under the queue lock, after unlinking */
} waiter_t;

waitq_t *waitq_new(void);
void waitq_free(waitq_t *q);

/* The current announcement sequence; read it before looking for work. */
uint64_t waitq_seq(waitq_t *q);

/* Park w unless something was announced since `seen`.  `suspend` is called
 * under the lock once w is linked, so that a wake cannot overtake it.
 * Returns true if parked, false if the caller should look again now (or,
 * after waitq_close(), answer at once). */
bool waitq_park(waitq_t *q, waiter_t *w, uint64_t seen, void (*suspend)(waiter_t *w));

/* n jobs of `operation` became available: wake up to n parked waiters that
 * want it, oldest first.  operation NULL (work of any kind, count unknown):
 * wake every waiter. */
void waitq_announce(waitq_t *q, const char *operation, int n);

/* A claim woken by an announcement (waitq_rerun said so) filled its max:
 * wake one more waiter for each of `ops` (an array of names). */
void waitq_pass(waitq_t *q, const json_t *ops);

/* Take the oldest parked waiter that wants `operation` and has a bot_id
 * out of the queue without waking it, for a hand-off; NULL if there is
 * none.  The caller must give it back with waitq_give, soon: its
 * connection stays suspended until then, and nothing else can wake it. */
waiter_t *waitq_take(waitq_t *q, const char *operation);

/* Wake w, taken by waitq_take, with `jobs` (stolen), the array its bot was
 * handed; with NULL (the hand-off failed, or claimed nothing) w is woken as
 * by an announcement, and its claim runs again. */
void waitq_give(waitq_t *q, waiter_t *w, json_t *jobs);

/* Called by w's connection before its claim runs again after a wake:
 * returns whether an announcement woke it, and forgets it. */
bool waitq_rerun(waitq_t *q, waiter_t *w);

/* Wake waiters whose deadline is at or before now (mono ms); with
 * everyone set, wake all (shutdown). Returns how many were woken. */
int waitq_expire(waitq_t *q, int64_t now, bool everyone);

/* Wake every waiter and refuse to park any more (the server is stopping):
 * a claim that was looking while this ran must not park after it, where no
 * one would wake it. */
void waitq_close(waitq_t *q);

/* Unlink w if parked, without waking it (its connection is going away).  If
 * an announcement woke w and its claim never ran again, the wake goes to
 * another waiter instead. */
void waitq_cancel(waitq_t *q, waiter_t *w);

/* How many waiters are parked. */
int waitq_count(waitq_t *q);

/* How many waiters announcements have woken since waitq_new (not counting
 * deadlines and shutdown): about one per job when claims wait. */
long long waitq_wakes(waitq_t *q);

/* How many waiters were handed a job since waitq_new. */
long long waitq_handoffs(waitq_t *q);

#endif
