/*
 * retry.c - backoff, stoppable sleeps and outage logging for the bot.
 * Sleeps are cut into short slices so that SIGTERM, which only sets a flag,
 * is noticed within one slice.
 */
#include "retry.h"

#include "clock.h"
#include "log.h"

#include <stdlib.h>
#include <sys/random.h>
#include <time.h>

#define SLICE_MS 50

void backoff_init(struct backoff *b, int64_t first_ms, int64_t max_ms)
{
    b->first_ms = first_ms;
    b->max_ms = max_ms;
    b->ceil_ms = first_ms;
}

void backoff_reset(struct backoff *b)
{
    b->ceil_ms = b->first_ms;
}

int64_t backoff_next(struct backoff *b)
{
    uint64_t r = 0;
    int64_t wait;

    if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r)
        r = (uint64_t)clock_mono_ms();
    wait = 1 + (int64_t)(r % (uint64_t)b->ceil_ms);
    b->ceil_ms = b->ceil_ms * 2 > b->max_ms ? b->max_ms : b->ceil_ms * 2;
    return wait;
}

bool retry_sleep(int64_t ms, const volatile sig_atomic_t *stop)
{
    int64_t end = clock_mono_ms() + ms;

    for (;;) {
        int64_t left = end - clock_mono_ms();
        struct timespec ts;
        if (stop && *stop)
            return false;
        if (left <= 0)
            return true;
        if (left > SLICE_MS)
            left = SLICE_MS;
        ts.tv_sec = 0;
        ts.tv_nsec = (long)left * 1000000L;
        nanosleep(&ts, NULL); /* EINTR just ends the slice early */
    }
}

void outage_failed(struct outage *o, const char *why)
{
    o->tries++;
    if (o->down)
        return;
    o->down = true;
    o->since_ms = clock_mono_ms();
    log_warn("%s: server unavailable, retrying with backoff: %s", o->what, why);
}

void outage_over(struct outage *o)
{
    if (o->down)
        log_info("%s: server available again after %.1f s (%d failed tries)", o->what,
                 (double)(clock_mono_ms() - o->since_ms) / 1000.0, o->tries);
    o->down = false;
    o->tries = 0;
}
