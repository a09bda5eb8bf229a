/*
 * retry.h - how the bot waits out a server it cannot reach: exponential
 * backoff with full jitter (so a fleet of bots does not reconnect in step
 * after a restart), sleeps that a stop request cuts short, and an outage
 * record so that an outage is logged once when it starts and once when it
 * ends rather than once per try.
 */
#ifndef JOBD_BOT_RETRY_H
#define JOBD_BOT_RETRY_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

struct backoff {
    int64_t first_ms; /* the ceiling of the first wait */
    int64_t max_ms;   /* the ceiling never grows past this */
    int64_t ceil_ms;  /* the current ceiling */
};

/* Start at first_ms, doubling up to max_ms. */
void backoff_init(struct backoff *b, int64_t first_ms, int64_t max_ms);

/* Back to the first ceiling, after a success. */
void backoff_reset(struct backoff *b);

/* The next wait: uniformly random in [1, ceiling]; then doubles the ceiling. */
int64_t backoff_next(struct backoff *b);

/* Sleep ms milliseconds, or less if stop (may be NULL) becomes non-zero.
 * Returns false if it was cut short by stop. */
bool retry_sleep(int64_t ms, const volatile sig_atomic_t *stop);

/* An outage of one kind of request ("claim", "heartbeat"). */
struct outage {
    const char *what;
    bool down;
    int64_t since_ms;
    int tries;
};

/* A try failed with `why`: logs a warning on the first failure only. */
void outage_failed(struct outage *o, const char *why);

/* A try succeeded: logs the end of the outage if there was one. */
void outage_over(struct outage *o);

#endif
