/*
 * clock.h - wall-clock milliseconds and their text form.
 *
 * jobd stores every time as integer milliseconds since the Unix epoch (UTC)
 * and shows it as RFC 3339 text ("2026-11-28T20:07:01.123Z").
 */
#ifndef JOBD_CLOCK_H
#define JOBD_CLOCK_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Milliseconds since the epoch, wall clock. */
int64_t clock_now_ms(void);

/* Milliseconds from a monotonic clock, for durations and deadlines. */
int64_t clock_mono_ms(void);

/* Microseconds from a monotonic clock, for request timings. */
int64_t clock_mono_us(void);

/* The time ns nanoseconds from now on `clock`: a deadline for
 * pthread_cond_timedwait (CLOCK_REALTIME unless the condition variable was
 * made for another clock). */
struct timespec clock_deadline(clockid_t clock, int64_t ns);

/* Format ms as "YYYY-MM-DD<sep>HH:MM:SS.mmm" (UTC), adding "Z" when sep is
 * 'T'.  buf should hold 32 bytes. */
void clock_format_ms(int64_t ms, char *buf, size_t len, char sep);

#endif
