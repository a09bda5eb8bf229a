/*
 * router.c - the table of endpoints and the matching of a path to one.  The
 * table is the single list of what the server answers; docs/api.md
 * documents each entry.
 *
 * Checklist: a route added here needs a section in docs/api.md and an
 * end-to-end test.
 */
#include "server.h"

#include <stdio.h>
#include <string.h>

typedef void (*handler_fn)(server_t *srv, req_t *req, reply_t *rep);

static const struct route {
    const char *method;
    const char *pattern; /* "*" matches one non-empty segment */
    handler_fn fn;
} routes[] = {
    {"POST", "/jobs", jobs_submit},
    {"GET", "/jobs", jobs_list},
    {"POST", "/jobs/claim", jobs_claim},
    {"POST", "/jobs/complete", jobs_report_batch},
    {"GET", "/jobs/*", jobs_get},
    {"POST", "/jobs/*/complete", jobs_complete},
    {"POST", "/jobs/*/fail", jobs_fail},
    {"POST", "/jobs/*/release", jobs_release},
    {"POST", "/jobs/*/retry", jobs_retry},
    {"POST", "/jobs/*/cancel", jobs_cancel},
    {"GET", "/jobs/*/explain", jobs_explain},
    {"POST", "/bots/register", bots_register},
    {"GET", "/bots", bots_list},
    {"GET", "/bots/*", bots_get},
    {"POST", "/bots/*/heartbeat", bots_heartbeat},
    {"GET", "/health", service_health},
    {"GET", "/stats", service_stats},
};

#define MAX_SEGMENTS 8

/* Split a copy of path at '/' into segs; returns the count or -1 if there
 * are too many or an empty segment ("//", trailing "/"). */
static int split(char *path, char *segs[MAX_SEGMENTS])
{
    int n = 0;
    char *p = path;
    if (*p != '/')
        return -1;
    while (*p == '/') {
        *p++ = '\0';
        if (!*p || *p == '/' || n == MAX_SEGMENTS)
            return -1;
        segs[n++] = p;
        while (*p && *p != '/')
            p++;
    }
    return n;
}

/* Match the pattern against segs; on success fill params with the "*"
 * segments. */
static bool match(const char *pattern, char *segs[], int nsegs, const char *params[4])
{
    char pat[64];
    char *psegs[MAX_SEGMENTS];
    int np, nparams = 0;

    snprintf(pat, sizeof pat, "%s", pattern);
    np = split(pat, psegs);
    if (np != nsegs)
        return false;
    for (int i = 0; i < np; i++) {
        if (strcmp(psegs[i], "*") == 0) {
            if (nparams < 4)
                params[nparams++] = segs[i];
        } else if (strcmp(psegs[i], segs[i]) != 0) {
            return false;
        }
    }
    return true;
}

void router_dispatch(server_t *srv, req_t *req, reply_t *rep)
{
    char path[1024];
    char *segs[MAX_SEGMENTS];
    const char *params[4];
    const struct route *found = NULL;
    int nsegs;
    size_t used = 0;

    if (strlen(req->path) >= sizeof path) {
        err_set(&rep->err, JOBD_ENOROUTE, "no endpoint at a path of %zu bytes", strlen(req->path));
        return;
    }
    snprintf(path, sizeof path, "%s", req->path);
    nsegs = split(path, segs);
    for (size_t i = 0; nsegs > 0 && i < sizeof routes / sizeof routes[0]; i++) {
        if (!match(routes[i].pattern, segs, nsegs, params))
            continue;
        if (strcmp(routes[i].method, req->method) == 0) {
            found = &routes[i];
            memcpy(req->params, params, sizeof params);
            break;
        }
        used += (size_t)snprintf(rep->allow + used, sizeof rep->allow - used, "%s%s",
                                 used ? ", " : "", routes[i].method);
    }
    if (found) {
        rep->allow[0] = '\0';
        found->fn(srv, req, rep);
    } else if (used) {
        err_set(&rep->err, JOBD_EMETHOD, "%s is not allowed on %s; allowed: %s", req->method,
                req->path, rep->allow);
    } else {
        err_set(&rep->err, JOBD_ENOROUTE, "no endpoint %s %s (see docs/api.md)", req->method,
                req->path);
    }
}

const char *req_arg(const req_t *req, const char *name)
{
    for (size_t i = 0; i < req->nargs; i++)
        if (strcmp(req->arg_names[i], name) == 0)
            return req->arg_values[i];
    return NULL;
}

int reply_json(reply_t *rep, int status, json_t *body)
{
    rep->status = status;
    rep->body = body;
    return JOBD_OK;
}

/* What a minimal reply shows of a changed job. */
static const char *const BRIEF_FIELDS[] = {"id", "status"};

/* A leased job as a bot needs it: what to run, the lease that fences its
 * report, and when the lease ends.  The rest (its timestamps, the bot's own
 * name, the retry budget) is one GET /jobs/{id} away; leaving it out is
 * about half of a claim reply's bytes and of the server's time writing it. */
static const char *const CLAIMED_FIELDS[] = {
    "id", "status", "operation", "input", "attempts", "lease", "lease_expires_at",
};

/* A new object with the fields `names` of job (those it has).  The keys
 * are ASCII literals, so they need no UTF-8 check. */
static json_t *pick(const json_t *job, const char *const *names, size_t n)
{
    json_t *out = json_object();
    for (size_t k = 0; k < n; k++) {
        json_t *v = json_object_get(job, names[k]);
        if (v)
            json_object_set_nocheck(out, names[k], v);
    }
    return out;
}

json_t *reply_job(const req_t *req, reply_t *rep, json_t *job)
{
    json_t *brief;

    if (!req->minimal)
        return job;
    brief = pick(job, BRIEF_FIELDS, sizeof BRIEF_FIELDS / sizeof *BRIEF_FIELDS);
    json_decref(job);
    rep->minimal = true;
    return brief;
}

json_t *reply_claimed(const req_t *req, reply_t *rep, json_t *jobs)
{
    json_t *lean, *job;
    size_t i;

    if (!req->minimal)
        return jobs;
    lean = json_array();
    json_array_foreach(jobs, i, job)
    {
        json_array_append_new(
            lean, pick(job, CLAIMED_FIELDS, sizeof CLAIMED_FIELDS / sizeof *CLAIMED_FIELDS));
    }
    json_decref(jobs);
    rep->minimal = true;
    return lean;
}

int reply_err(reply_t *rep, const err_t *e)
{
    rep->err = *e;
    return e->rc;
}
