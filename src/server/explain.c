/*
 * explain.c - GET /jobs/{id}/explain in words: why a job is where it is, as
 * an operator would ask it ("why is this job not running?").  The store
 * gathers the facts in one snapshot (store_job_explain); this file only
 * turns them into a sentence and the fields the sentence is made of, so
 * that a program can act on the fields and a person can read the reason.
 */
#include "server.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "record.h"

static const char *sfield(const json_t *obj, const char *name)
{
    const char *s = json_string_value(json_object_get(obj, name));
    return s ? s : "?";
}

static int64_t ifield(const json_t *obj, const char *name)
{
    return (int64_t)json_integer_value(json_object_get(obj, name));
}

/* ms of an RFC 3339 field, or 0 when absent. */
static int64_t tfield(const json_t *obj, const char *name)
{
    long long ms;
    const char *s = json_string_value(json_object_get(obj, name));
    return s && record_parse_time(s, &ms) ? (int64_t)ms : 0;
}

/* Whole seconds of a span, rounded, for "4 s ago". */
static long long secs(int64_t ms)
{
    return (long long)((ms >= 0 ? ms + 500 : ms - 500) / 1000);
}

static void say(json_t *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Append a sentence part to out's "reason". */
static void say(json_t *out, const char *fmt, ...)
{
    char part[1024], all[4096];
    const char *before = json_string_value(json_object_get(out, "reason"));
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(part, sizeof part, fmt, ap);
    va_end(ap);
    snprintf(all, sizeof all, "%s%s", before ? before : "", part);
    json_object_set_new(out, "reason", json_string(all));
}

/* The errors of the attempts that failed, oldest first. */
static json_t *failure_errors(const json_t *job)
{
    json_t *errors = json_array(), *h;
    size_t i;

    json_array_foreach(json_object_get(job, "history"), i, h)
    {
        if (strcmp(sfield(h, "outcome"), "failed") == 0)
            json_array_append(errors, json_object_get(h, "error"));
    }
    return errors;
}

/* The reason of the latest admin event of kind `action`, or NULL. */
static const json_t *last_event(const json_t *job, const char *action)
{
    const json_t *found = NULL, *ev;
    size_t i;

    json_array_foreach(json_object_get(job, "events"), i, ev)
    {
        if (strcmp(sfield(ev, "action"), action) == 0)
            found = ev;
    }
    return found;
}

static void pending(json_t *out, const json_t *facts, const json_t *job)
{
    int64_t ahead = ifield(facts, "ahead"), live = ifield(facts, "live_bots");
    const char *op = sfield(job, "operation");

    json_object_set_new(out, "ahead", json_integer(ahead));
    json_object_set_new(out, "live_bots", json_integer(live));
    if (ahead > 0)
        say(out,
            "waiting behind %lld job%s of operation '%s' with higher priority or older at "
            "the same priority",
            (long long)ahead, ahead == 1 ? "" : "s", op);
    else
        say(out, "next in line for operation '%s'", op);
    if (live == 0)
        say(out,
            "; no live bot offers operation '%s', so nothing will claim it until one "
            "registers or comes back",
            op);
    else
        say(out, "; %lld live bot%s offer%s '%s'", (long long)live, live == 1 ? "" : "s",
            live == 1 ? "s" : "", op);
}

static void scheduled(json_t *out, const json_t *job, int64_t now)
{
    int64_t run_at = tfield(job, "run_at"), failures = ifield(job, "failures");

    json_object_set(out, "run_at", json_object_get(job, "run_at"));
    json_object_set_new(out, "runs_in_ms", json_integer(run_at - now));
    say(out, "scheduled for %s (in %lld s)", sfield(job, "run_at"), secs(run_at - now));
    if (failures > 0) {
        json_object_set_new(out, "errors", failure_errors(job));
        say(out, ": retry after failure %lld of at most %lld: %s", (long long)failures,
            (long long)ifield(job, "max_attempts"), sfield(job, "error"));
    }
}

static void processing(json_t *out, const json_t *facts, const json_t *job, int64_t now)
{
    const json_t *bot = json_object_get(facts, "bot");
    int64_t seen = tfield(bot, "last_seen_at"), expires = tfield(facts, "lease_expires_at");
    const json_t *progress = json_object_get(job, "progress");

    json_object_set(out, "bot_id", json_object_get(job, "bot_id"));
    json_object_set(out, "bot_name", json_object_get(job, "bot_name"));
    json_object_set(out, "bot_state", json_object_get(bot, "state"));
    json_object_set(out, "bot_last_seen_at", json_object_get(bot, "last_seen_at"));
    json_object_set(out, "lease_expires_at", json_object_get(facts, "lease_expires_at"));
    json_object_set_new(out, "lease_expires_in_ms", json_integer(expires - now));
    say(out, "leased by %s (attempt %lld, bot %s), last seen %lld s ago, lease expires in %lld s",
        sfield(job, "bot_name"), (long long)ifield(job, "attempts"), sfield(bot, "state"),
        secs(now - seen), secs(expires - now));
    if (progress && !json_is_null(progress)) {
        char *text = json_dumps(progress, JSON_COMPACT | JSON_ENCODE_ANY);
        json_object_set(out, "progress", (json_t *)progress);
        say(out, "; progress %.200s", text ? text : "?");
        free(text);
    }
}

static void failed(json_t *out, const json_t *job)
{
    json_object_set_new(out, "errors", failure_errors(job));
    say(out, "failed after %lld attempt%s (%lld failed, at most %lld allowed): %s",
        (long long)ifield(job, "attempts"), ifield(job, "attempts") == 1 ? "" : "s",
        (long long)ifield(job, "failures"), (long long)ifield(job, "max_attempts"),
        sfield(job, "error"));
}

json_t *explain_job(const json_t *facts, int64_t now_ms)
{
    const json_t *job = json_object_get(facts, "job"), *ev;
    const char *status = sfield(job, "status");
    json_t *out = json_pack("{s:O,s:s,s:s}", "id", json_object_get(job, "id"), "status", status,
                            "reason", "");

    if (strcmp(status, "pending") == 0) {
        pending(out, facts, job);
    } else if (strcmp(status, "scheduled") == 0) {
        scheduled(out, job, now_ms);
    } else if (strcmp(status, "processing") == 0) {
        processing(out, facts, job, now_ms);
    } else if (strcmp(status, "succeeded") == 0) {
        say(out, "succeeded at %s by %s after %lld attempt%s", sfield(job, "finished_at"),
            sfield(job, "bot_name"), (long long)ifield(job, "attempts"),
            ifield(job, "attempts") == 1 ? "" : "s");
    } else if (strcmp(status, "failed") == 0) {
        failed(out, job);
    } else if (strcmp(status, "cancelled") == 0) {
        ev = last_event(job, "cancel");
        say(out, "cancelled by an admin at %s: %s", sfield(ev, "at"), sfield(ev, "reason"));
    } else {
        say(out, "in status %s", status);
    }
    if (ifield(job, "lost") > 0 && strcmp(status, "processing") != 0)
        say(out, " (%lld earlier attempt%s taken back from %s bot)", (long long)ifield(job, "lost"),
            ifield(job, "lost") == 1 ? " was" : "s were",
            ifield(job, "lost") == 1 ? "its" : "their");
    json_object_set(out, "attempts", json_object_get(job, "attempts"));
    json_object_set(out, "failures", json_object_get(job, "failures"));
    json_object_set(out, "lost", json_object_get(job, "lost"));
    json_object_set(out, "max_attempts", json_object_get(job, "max_attempts"));
    return out;
}
