/*
 * record.h - the one definition of jobd's records.
 *
 * JOB_FIELDS is, at once, the column list of every SELECT on the jobs table,
 * the job object of the HTTP API and the line written to the datalake.  The
 * three cannot drift because they are all generated from this list, and the
 * start-up check (store_prepare) fails if a column named here is missing from
 * the live schema.
 *
 * Checklist: adding a field here needs a migration that adds the column, a
 * line in docs/api.md ("The job object"), and nothing else.
 */
#ifndef JOBD_RECORD_H
#define JOBD_RECORD_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

enum record_type {
    REC_TEXT, /* string or null */
    REC_INT,  /* 64-bit integer or null */
    REC_JSON, /* any JSON value, stored as JSON text; SQL NULL is JSON null */
    REC_TIME, /* integer ms since the epoch, shown as RFC 3339 text */
};

/* X(column, type) */
#define JOB_FIELDS(X)                                                                              \
    X(id, REC_TEXT)                                                                                \
    X(operation, REC_TEXT)                                                                         \
    X(input, REC_JSON)                                                                             \
    X(priority, REC_INT)                                                                           \
    X(status, REC_TEXT)                                                                            \
    X(attempts, REC_INT)                                                                           \
    X(created_at, REC_TIME)                                                                        \
    X(claimed_at, REC_TIME)                                                                        \
    X(finished_at, REC_TIME)                                                                       \
    X(bot_id, REC_TEXT)                                                                            \
    X(bot_name, REC_TEXT)                                                                          \
    X(result, REC_JSON)                                                                            \
    X(error, REC_TEXT)                                                                             \
    X(duration_ms, REC_INT)                                                                        \
    X(max_attempts, REC_INT)                                                                       \
    X(failures, REC_INT)                                                                           \
    X(lost, REC_INT)                                                                               \
    X(run_at, REC_TIME)                                                                            \
    X(progress, REC_JSON)                                                                          \
    X(idempotency_key, REC_TEXT)

/* A job's summary: the fields of JOB_FIELDS (with the same types; a unit
 * test holds them to it) that a bot needs of a job it claimed, and that the
 * server's log lines of a claim or a finish show.  A store call for a
 * client that asked for a minimal reply reads only these (store.h
 * `brief`), and the reply is cut from them. */
#define JOB_SUMMARY_FIELDS(X)                                                                      \
    X(id, REC_TEXT)                                                                                \
    X(operation, REC_TEXT)                                                                         \
    X(input, REC_JSON)                                                                             \
    X(status, REC_TEXT)                                                                            \
    X(attempts, REC_INT)                                                                           \
    X(bot_name, REC_TEXT)                                                                          \
    X(result, REC_JSON)                                                                            \
    X(error, REC_TEXT)                                                                             \
    X(duration_ms, REC_INT)                                                                        \
    X(run_at, REC_TIME)

#define BOT_FIELDS(X)                                                                              \
    X(id, REC_TEXT)                                                                                \
    X(name, REC_TEXT)                                                                              \
    X(operations, REC_JSON)                                                                        \
    X(state, REC_TEXT)                                                                             \
    X(registered_at, REC_TIME)                                                                     \
    X(last_seen_at, REC_TIME)                                                                      \
    X(jobs_succeeded, REC_INT)                                                                     \
    X(jobs_failed, REC_INT)                                                                        \
    X(jobs_lost, REC_INT)

/* One row of the attempts table: every claim of a job and how it ended. */
#define ATTEMPT_FIELDS(X)                                                                          \
    X(attempt, REC_INT)                                                                            \
    X(bot_id, REC_TEXT)                                                                            \
    X(bot_name, REC_TEXT)                                                                          \
    X(started_at, REC_TIME)                                                                        \
    X(ended_at, REC_TIME)                                                                          \
    X(outcome, REC_TEXT)                                                                           \
    X(error, REC_TEXT)

/* One row of job_events: an admin action on a job and its reason. */
#define EVENT_FIELDS(X)                                                                            \
    X(at, REC_TIME)                                                                                \
    X(action, REC_TEXT)                                                                            \
    X(reason, REC_TEXT)

typedef struct record_field {
    const char *name;
    enum record_type type;
} record_field_t;

extern const record_field_t record_job_fields[];
extern const size_t record_job_nfields;
extern const record_field_t record_job_summary_fields[];
extern const size_t record_job_summary_nfields;
extern const record_field_t record_bot_fields[];
extern const size_t record_bot_nfields;
extern const record_field_t record_attempt_fields[];
extern const size_t record_attempt_nfields;
extern const record_field_t record_event_fields[];
extern const size_t record_event_nfields;

/* Comma-separated column list of the fields, e.g. "id, operation, ...".
 * Returns a static string built on first use; thread-safe. */
const char *record_job_columns(void);
const char *record_job_summary_columns(void);
const char *record_bot_columns(void);
const char *record_attempt_columns(void);
const char *record_event_columns(void);

/* A job's record as one SQL expression of SQLite's: json_object() over
 * JOB_FIELDS, each value as record_value() shows it (a JSON column
 * embedded through json(), a time through the SQL function jobd_time(ms),
 * which the SQLite backend defines with clock_format_ms).  Its text is the
 * JSON of the same object a row read through record_value makes.  Static,
 * built on first use; thread-safe. */
const char *record_job_json_sqlite(void);

/* Convert one column, given as the database's text form (NULL for SQL
 * NULL), to its JSON value.  Returns a new reference, or NULL if the text
 * does not parse as the field's type (a corrupt row). */
json_t *record_value(enum record_type type, const char *text);

/* The same for a column the database hands over as an integer (SQLite
 * does, and converting it to text and back cost every record a dozen
 * strtoll calls): REC_INT and REC_TIME take it, any other type is a
 * corrupt row (NULL). */
json_t *record_value_int(enum record_type type, long long v);

/* Parse an RFC 3339 time as written by clock_format_ms(...,'T'). Returns
 * true and sets *ms on success. */
bool record_parse_time(const char *text, long long *ms);

#endif
