/*
 * log.h - one-line log records on stderr: "2026-11-28 20:07:01.123 INFO  text".
 *
 * Thread-safe (each record, or batch of records, is one stdio call).  Callers must never pass
 * secrets (the admin token, database passwords) to these functions.
 */
#ifndef JOBD_LOG_H
#define JOBD_LOG_H

#include <stdbool.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

/* Records below `level` are dropped.  Default LOG_INFO. */
void log_set_level(enum log_level level);

/* Whether records of `level` are written: a caller that builds its text
 * with work of its own (a JSON dump, say) asks first. */
bool log_enabled(enum log_level level);

/* Parse "debug", "info", "warn", "error"; returns -1 if unknown. */
int log_level_parse(const char *name);

void log_write(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Bytes of records a batch holds before it writes them. */
#define LOG_BATCH_MAX 65536

/* Between these two calls, this thread's records below LOG_WARN are kept
 * and written together (at the latest by log_batch_end), one write rather
 * than one per record: a request that leases 100 jobs logs 100 lines.  A
 * warning or an error is written at once, after the records kept before
 * it.  For a stretch of work that ends soon, such as one request. */
void log_batch_begin(void);
void log_batch_end(void);

#define log_debug(...) log_write(LOG_DEBUG, __VA_ARGS__)
#define log_info(...)  log_write(LOG_INFO, __VA_ARGS__)
#define log_warn(...)  log_write(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_write(LOG_ERROR, __VA_ARGS__)

#endif
