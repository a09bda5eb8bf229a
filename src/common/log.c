/*
 * log.c - formatting of log records.  The record is built in a local buffer
 * and written with one stdio call so that lines from different threads
 * never interleave; inside a batch (log.h), a thread's records wait in a
 * buffer of its own and go out together, each still whole.
 */
#include "log.h"
#include "clock.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static enum log_level min_level = LOG_INFO;

void log_set_level(enum log_level level)
{
    min_level = level;
}

bool log_enabled(enum log_level level)
{
    return level >= min_level;
}

int log_level_parse(const char *name)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};
    for (int i = 0; i < 4; i++)
        if (strcasecmp(name, names[i]) == 0)
            return i;
    return -1;
}

/* The records of this thread's current batch (log_batch_begin), not
 * written yet.  Thread-local: no lock, and one thread's records stay in
 * their order. */
static _Thread_local struct {
    bool on;
    size_t len;
    char buf[LOG_BATCH_MAX];
} batch;

static void batch_flush(void)
{
    if (batch.len > 0)
        fwrite(batch.buf, 1, batch.len, stderr);
    batch.len = 0;
}

void log_batch_begin(void)
{
    batch.on = true;
}

void log_batch_end(void)
{
    batch_flush();
    batch.on = false;
}

void log_write(enum log_level level, const char *fmt, ...)
{
    static const char *const tags[] = {"DEBUG", "INFO ", "WARN ", "ERROR"};
    char line[4096];
    char ts[32];
    va_list ap;
    size_t n;

    if (!log_enabled(level))
        return;
    clock_format_ms(clock_now_ms(), ts, sizeof ts, ' ');
    n = (size_t)snprintf(line, sizeof line, "%s %s ", ts, tags[level]);
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof line - n - 1, fmt, ap);
    va_end(ap);
    n = strlen(line);
    line[n++] = '\n';
    /* A warning or an error goes out at once, after what came before it. */
    if (!batch.on || level >= LOG_WARN) {
        batch_flush();
        fwrite(line, 1, n, stderr);
        return;
    }
    if (batch.len + n > sizeof batch.buf)
        batch_flush();
    memcpy(batch.buf + batch.len, line, n);
    batch.len += n;
}
