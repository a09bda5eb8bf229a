/*
 * record.c - field tables generated from record.h and the conversion of a
 * column's text to its JSON value, shared by every backend so that a job
 * reads the same from SQLite and PostgreSQL.
 */
#include "record.h"
#include "clock.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <errno.h>

#define REC_ENTRY(name, type) {#name, type},
const record_field_t record_job_fields[] = {JOB_FIELDS(REC_ENTRY)};
const size_t record_job_nfields = sizeof record_job_fields / sizeof record_job_fields[0];
const record_field_t record_job_summary_fields[] = {JOB_SUMMARY_FIELDS(REC_ENTRY)};
const size_t record_job_summary_nfields =
    sizeof record_job_summary_fields / sizeof record_job_summary_fields[0];
const record_field_t record_bot_fields[] = {BOT_FIELDS(REC_ENTRY)};
const size_t record_bot_nfields = sizeof record_bot_fields / sizeof record_bot_fields[0];
const record_field_t record_attempt_fields[] = {ATTEMPT_FIELDS(REC_ENTRY)};
const size_t record_attempt_nfields =
    sizeof record_attempt_fields / sizeof record_attempt_fields[0];
const record_field_t record_event_fields[] = {EVENT_FIELDS(REC_ENTRY)};
const size_t record_event_nfields = sizeof record_event_fields / sizeof record_event_fields[0];
#undef REC_ENTRY

static char job_cols[1024], summary_cols[512], bot_cols[512], attempt_cols[512], event_cols[256],
    job_json[2048];
static pthread_once_t cols_once = PTHREAD_ONCE_INIT;

/* The buffers are sized for record.h's lists; one that outgrows its buffer
 * is a bug to stop at, not SQL to cut short. */
static size_t fits(size_t used, size_t len)
{
    if (used >= len)
        abort();
    return used;
}

static void join(char *out, size_t len, const record_field_t *f, size_t n)
{
    size_t used = 0;
    for (size_t i = 0; i < n; i++)
        used = fits(
            used + (size_t)snprintf(out + used, len - used, "%s%s", i ? ", " : "", f[i].name), len);
}

/* json_object('name', value, ...) of the fields, each value written as
 * record_value shows it: a JSON column through json() so that it is
 * embedded rather than quoted, a time through jobd_time(). */
static void join_json(char *out, size_t len, const record_field_t *f, size_t n)
{
    size_t used = fits((size_t)snprintf(out, len, "json_object("), len);
    for (size_t i = 0; i < n; i++) {
        const char *wrap = f[i].type == REC_JSON   ? "json"
                           : f[i].type == REC_TIME ? "jobd_time"
                                                   : "";
        used = fits(used + (size_t)snprintf(out + used, len - used, "%s'%s', %s(%s)", i ? ", " : "",
                                            f[i].name, wrap, f[i].name),
                    len);
    }
    fits(used + (size_t)snprintf(out + used, len - used, ")"), len);
}

static void build_cols(void)
{
    join(job_cols, sizeof job_cols, record_job_fields, record_job_nfields);
    join(summary_cols, sizeof summary_cols, record_job_summary_fields, record_job_summary_nfields);
    join(bot_cols, sizeof bot_cols, record_bot_fields, record_bot_nfields);
    join(attempt_cols, sizeof attempt_cols, record_attempt_fields, record_attempt_nfields);
    join(event_cols, sizeof event_cols, record_event_fields, record_event_nfields);
    join_json(job_json, sizeof job_json, record_job_fields, record_job_nfields);
}

const char *record_job_columns(void)
{
    pthread_once(&cols_once, build_cols);
    return job_cols;
}

const char *record_job_summary_columns(void)
{
    pthread_once(&cols_once, build_cols);
    return summary_cols;
}

const char *record_bot_columns(void)
{
    pthread_once(&cols_once, build_cols);
    return bot_cols;
}

const char *record_attempt_columns(void)
{
    pthread_once(&cols_once, build_cols);
    return attempt_cols;
}

const char *record_event_columns(void)
{
    pthread_once(&cols_once, build_cols);
    return event_cols;
}

const char *record_job_json_sqlite(void)
{
    pthread_once(&cols_once, build_cols);
    return job_json;
}

static bool parse_int(const char *text, long long *out)
{
    char *end;
    errno = 0;
    *out = strtoll(text, &end, 10);
    return errno == 0 && end != text && *end == '\0';
}

json_t *record_value_int(enum record_type type, long long v)
{
    char buf[32];

    switch (type) {
    case REC_INT:
        return json_integer(v);
    case REC_TIME:
        clock_format_ms(v, buf, sizeof buf, 'T');
        return json_string_nocheck(buf); /* digits and punctuation: ASCII */
    case REC_TEXT:
    case REC_JSON:
        break;
    }
    return NULL;
}

json_t *record_value(enum record_type type, const char *text)
{
    long long v;

    if (!text)
        return json_null();
    switch (type) {
    case REC_TEXT:
        return json_string(text);
    case REC_INT:
    case REC_TIME:
        return parse_int(text, &v) ? record_value_int(type, v) : NULL;
    case REC_JSON:
        return json_loads(text, JSON_DECODE_ANY, NULL);
    }
    return NULL;
}

bool record_parse_time(const char *text, long long *ms)
{
    struct tm tm = {0};
    int msec = 0, n = 0;
    if (sscanf(text, "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
               &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &msec, &n) != 7 ||
        text[n] != '\0')
        return false;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    *ms = (long long)timegm(&tm) * 1000 + msec;
    return true;
}
