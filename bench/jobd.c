/*
 * jobd.c - the workloads against jobd over its HTTP API (docs/api.md): e2e,
 * enqueue, latency, depth and conns.  It first probes what the server offers
 * (batch submit, claim `max`, batch complete) and measures with what is
 * there; a variant whose API is missing is reported as n/a, never estimated.
 */
#include "bench.h"
#include "httpc.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PRELOAD_BATCH 1000 /* jobs per POST /jobs array when the server takes arrays */
#define MAX_ERRORS    100  /* a workload gives up after this many failed requests */
#define LATENCY_WAIT  2000 /* ms a latency bot long-polls before asking again */
#define LATENCY_BATCH 10   /* jobs a latency-batched bot claims at most */

/* What the server offers, found by trying it (probe()). */
typedef struct features {
    bool batch_submit;      /* POST /jobs takes an array */
    bool claim_max;         /* POST /jobs/claim takes max > 1 */
    int complete_shape;     /* 0: no batch complete; 1: array body; 2: {bot_id, results} */
    char complete_why[256]; /* why batch complete is not used */
    bool chain;             /* shape 2 takes a "claim" and answers with "jobs" */
} features_t;

typedef struct ctx {
    const bench_opts_t *o;
    features_t f;
    const char *op;
    atomic_long errors;
    atomic_long done;
    atomic_long next; /* next ticket (preload index, depth work item) */
    long limit;       /* tickets to hand out */
    int64_t deadline; /* ns; work stops here */
    atomic_int stop;
    char last_error[512];
    pthread_mutex_t mu;
} ctx_t;

static const char *url_of(const ctx_t *x, int i)
{
    return x->o->urls[i % x->o->n_urls];
}

/* A connection to server i.  Unless --whole, it asks for minimal replies to
 * changes (RFC 7240 Prefer: return=minimal), as a client that only needs
 * the ids and statuses of what it submitted and reported would. */
static httpc_t *conn_new(const ctx_t *x, int i)
{
    httpc_t *c = httpc_new(url_of(x, i));
    if (!x->o->whole)
        httpc_header(c, "Prefer: return=minimal");
    return c;
}

static void note_error(ctx_t *x, const char *what, long status, httpc_t *c)
{
    long n = atomic_fetch_add(&x->errors, 1) + 1;
    pthread_mutex_lock(&x->mu);
    snprintf(x->last_error, sizeof x->last_error, "%s: %ld %.300s", what, status,
             status < 0 ? httpc_error(c) : httpc_reply(c, NULL));
    pthread_mutex_unlock(&x->mu);
    if (n == 1 || n == MAX_ERRORS)
        bench_say("%s: %s", n == 1 ? "first error" : "too many errors, stopping", x->last_error);
    if (n >= MAX_ERRORS)
        atomic_store(&x->stop, 1);
}

static bool stopped(ctx_t *x)
{
    return atomic_load(&x->stop) || bench_now_ns() >= x->deadline;
}

static json_t *reply_json(httpc_t *c)
{
    size_t len;
    const char *s = httpc_reply(c, &len);
    return json_loadb(s, len, 0, NULL);
}

/* POST /bots/register for op.  OUT: bot_id.  Returns false after noting why. */
static bool register_bot(ctx_t *x, httpc_t *c, const char *name, char bot_id[128])
{
    char body[256];
    json_t *doc;
    const char *id;
    long st;

    snprintf(body, sizeof body, "{\"name\":\"%s\",\"operations\":[\"%s\"]}", name, x->op);
    st = httpc_request(c, "/bots/register", body, strlen(body));
    if (st != 201 && st != 200) {
        note_error(x, "register", st, c);
        return false;
    }
    doc = reply_json(c);
    id = json_string_value(json_object_get(doc, "bot_id"));
    snprintf(bot_id, 128, "%s", id ? id : "");
    json_decref(doc);
    return id != NULL;
}

/* Job i of op, stamped with t for the latency workload. */
static void job_body(sb_t *b, const char *op, long i, int64_t t)
{
    sb_printf(b, "{\"operation\":\"%s\",\"input\":{\"a\":%ld,\"b\":%ld,\"t\":%lld}}", op, i, 2 * i,
              (long long)t);
}

/* Submit n jobs as single requests or one array, stamped with `due` (0:
 * now; see producer_ops_t); returns the status. */
static long submit_due(httpc_t *c, sb_t *b, const char *op, long first, long n, bool array,
                       int64_t due)
{
    sb_clear(b);
    if (array)
        sb_printf(b, "[");
    for (long i = 0; i < n; i++) {
        if (i)
            sb_printf(b, ",");
        job_body(b, op, first + i, due ? due : bench_now_ns());
    }
    if (array)
        sb_printf(b, "]");
    return httpc_request(c, "/jobs", b->s, b->len);
}

static long submit(httpc_t *c, sb_t *b, const char *op, long first, long n, bool array)
{
    return submit_due(c, b, op, first, n, array, 0);
}

/* A leased job as the bench needs it. */
typedef struct leased {
    char id[128];
    char lease[160];
    long long a, b, t;
} leased_t;

static const char *str_of(const json_t *obj, const char *name)
{
    const char *v = json_string_value(json_object_get(obj, name));
    return v ? v : "";
}

/* The "jobs" of a reply document.  OUT: up to max jobs in out.  Returns
 * the count. */
static int parse_jobs(const json_t *doc, int max, leased_t *out)
{
    json_t *job;
    size_t i;
    int n = 0;

    json_array_foreach(json_object_get(doc, "jobs"), i, job)
    {
        json_t *in = json_object_get(job, "input");
        if (n == max)
            break;
        snprintf(out[n].id, sizeof out[n].id, "%s", str_of(job, "id"));
        snprintf(out[n].lease, sizeof out[n].lease, "%s", str_of(job, "lease"));
        out[n].a = json_integer_value(json_object_get(in, "a"));
        out[n].b = json_integer_value(json_object_get(in, "b"));
        out[n].t = json_integer_value(json_object_get(in, "t"));
        n++;
    }
    return n;
}

/* The jobs of a 200 claim reply, as parse_jobs. */
static int parse_claim(httpc_t *c, int max, leased_t *out)
{
    json_t *doc = reply_json(c);
    int n = parse_jobs(doc, max, out);
    json_decref(doc);
    return n;
}

/* POST /jobs/claim.  OUT: up to max jobs in out.  Returns the count, 0 for
 * a 204, -1 on an error (noted). */
static int claim(ctx_t *x, httpc_t *c, const char *bot_id, int max, int wait_ms, leased_t *out)
{
    char body[512];
    long st;
    int n;

    snprintf(body, sizeof body,
             "{\"bot_id\":\"%s\",\"operations\":[\"%s\"],\"max\":%d,\"wait_ms\":%d}", bot_id, x->op,
             max, wait_ms);
    st = httpc_request(c, "/jobs/claim", body, strlen(body));
    if (st == 204)
        return 0;
    if (st != 200) {
        note_error(x, "claim", st, c);
        return -1;
    }
    n = parse_claim(c, max, out);
    if (n == 0) {
        note_error(x, "claim reply without jobs", st, c);
        return -1;
    }
    return n;
}

/* How many reports of a 200 batch-complete reply went through: a reply
 * {"results": [...]} may refuse single items ({"id", "error"}); any other
 * 200 is taken as all n.  With `next`, the jobs the reply leased (chain)
 * go there, at most max, and *got says how many. */
static int batch_done(ctx_t *x, httpc_t *c, int n, leased_t *next, int max, int *got)
{
    json_t *doc = reply_json(c), *results = json_object_get(doc, "results"), *item;
    size_t i;
    int ok = 0;

    if (next)
        *got = parse_jobs(doc, max, next);
    if (!json_is_array(results)) {
        json_decref(doc);
        return n;
    }
    json_array_foreach(results, i, item)
    {
        if (!json_object_get(item, "error"))
            ok++;
        else
            note_error(x, "batch complete item", 200, c);
    }
    json_decref(doc);
    return ok;
}

/* The "claim" object of a chained report: the same claim as claim() asks. */
static void claim_fields(sb_t *b, const ctx_t *x, int max, int wait_ms)
{
    sb_printf(b, "\"claim\":{\"operations\":[\"%s\"],\"max\":%d,\"wait_ms\":%d}", x->op, max,
              wait_ms);
}

/* Complete jobs one request each, or in one request in the probed shape.
 * The result is the sum the bot computed.  Returns how many completed.
 * With `next` (chain, shape 2), the same request claims up to max jobs
 * (waiting up to wait_ms), which go to next, their count to *got. */
static int complete(ctx_t *x, httpc_t *c, sb_t *b, const char *bot_id, leased_t *jobs, int n,
                    int shape, leased_t *next, int max, int wait_ms, int *got)
{
    char path[256];
    long st;
    int ok = 0;

    if (shape == 0) {
        for (int i = 0; i < n; i++) {
            sb_clear(b);
            sb_printf(b, "{\"bot_id\":\"%s\",\"lease\":\"%s\",\"result\":%lld,\"duration_ms\":0}",
                      bot_id, jobs[i].lease, jobs[i].a + jobs[i].b);
            snprintf(path, sizeof path, "/jobs/%s/complete", jobs[i].id);
            st = httpc_request(c, path, b->s, b->len);
            if (st == 200)
                ok++;
            else
                note_error(x, "complete", st, c);
        }
        return ok;
    }
    sb_clear(b);
    sb_printf(b, shape == 1 ? "[" : "{\"bot_id\":\"%s\",\"results\":[", bot_id);
    for (int i = 0; i < n; i++) {
        sb_printf(b, "%s{", i ? "," : "");
        if (shape == 1)
            sb_printf(b, "\"bot_id\":\"%s\",", bot_id);
        sb_printf(b, "\"id\":\"%s\",\"lease\":\"%s\",\"result\":%lld,\"duration_ms\":0}",
                  jobs[i].id, jobs[i].lease, jobs[i].a + jobs[i].b);
    }
    sb_printf(b, shape == 1 ? "]" : "]");
    if (next) {
        sb_printf(b, ",");
        claim_fields(b, x, max, wait_ms);
    }
    if (shape == 2)
        sb_printf(b, "}");
    st = httpc_request(c, "/jobs/complete", b->s, b->len);
    if (st != 200) {
        note_error(x, "batch complete", st, c);
        return 0;
    }
    return batch_done(x, c, n, next, max, got);
}

/* Find out what the server offers by using it on a few probe jobs (op
 * "bench.probe", which no workload claims). */
static int probe(ctx_t *x)
{
    httpc_t *c = conn_new(x, 0);
    const char *saved = x->op;
    char bot_id[128];
    leased_t jobs[2];
    sb_t b = {0};
    long st;
    int n, rc = 1;

    x->op = "bench.probe";
    if (!register_bot(x, c, "bench-probe", bot_id))
        goto out;
    st = submit(c, &b, x->op, 0, 2, true);
    x->f.batch_submit = st == 200 || st == 201;
    if (!x->f.batch_submit &&
        (submit(c, &b, x->op, 0, 1, false) != 201 || submit(c, &b, x->op, 1, 1, false) != 201)) {
        note_error(x, "probe submit", -2, c);
        goto out;
    }
    sb_clear(&b);
    sb_printf(&b, "{\"bot_id\":\"%s\",\"operations\":[\"%s\"],\"max\":2}", bot_id, x->op);
    st = httpc_request(c, "/jobs/claim", b.s, b.len);
    x->f.claim_max = st == 200 || st == 204;
    n = 0;
    if (x->f.claim_max) {
        n = st == 200 ? parse_claim(c, 2, jobs) : 0;
    } else {
        for (int i = 0; i < 2; i++)
            if (claim(x, c, bot_id, 1, 0, &jobs[n]) == 1)
                n++;
    }
    if (n < 1) {
        snprintf(x->f.complete_why, sizeof x->f.complete_why, "probe claim found no job");
        goto out_ok;
    }
    for (int shape = 1; shape <= 2; shape++) {
        sb_clear(&b);
        sb_printf(&b, shape == 1 ? "[" : "{\"bot_id\":\"%s\",\"results\":[", bot_id);
        for (int i = 0; i < n; i++)
            sb_printf(&b, "%s{%s%s%s\"id\":\"%s\",\"lease\":\"%s\",\"result\":0,\"duration_ms\":0}",
                      i ? "," : "", shape == 1 ? "\"bot_id\":\"" : "", shape == 1 ? bot_id : "",
                      shape == 1 ? "\"," : "", jobs[i].id, jobs[i].lease);
        sb_printf(&b, "]");
        /* Shape 2 asks for a claim too: a server that takes it answers with
         * "jobs" (none: nothing else of the probe's operation is pending). */
        if (shape == 2) {
            sb_printf(&b, ",");
            claim_fields(&b, x, 1, 0);
        }
        sb_printf(&b, shape == 1 ? "" : "}");
        st = httpc_request(c, "/jobs/complete", b.s, b.len);
        if (st == 200) {
            json_t *doc = reply_json(c);
            x->f.complete_shape = shape;
            x->f.chain = shape == 2 && json_is_array(json_object_get(doc, "jobs"));
            json_decref(doc);
            break;
        }
        if (st == 404 || st == 405) {
            snprintf(x->f.complete_why, sizeof x->f.complete_why,
                     "not supported (POST /jobs/complete: %ld)", st);
            break;
        }
        snprintf(x->f.complete_why, sizeof x->f.complete_why,
                 "POST /jobs/complete refused the bench's request shapes: %ld %.150s", st,
                 httpc_reply(c, NULL));
    }
out_ok:
    rc = 0;
    bench_say("%s offers: batch submit %s, claim max>1 %s, batch complete %s, claim with the "
              "report %s%s",
              url_of(x, 0), x->f.batch_submit ? "yes" : "no", x->f.claim_max ? "yes" : "no",
              x->f.complete_shape ? "yes" : x->f.complete_why, x->f.chain ? "yes" : "no",
              x->f.chain && x->o->no_chain ? " (not used: --no-chain)" : "");
    if (x->o->no_chain)
        x->f.chain = false;
    atomic_store(&x->errors, 0);
out:
    x->op = saved;
    sb_free(&b);
    httpc_free(c);
    return rc;
}

/* ---- preload ---- */

typedef struct worker {
    ctx_t *x;
    int index;
    pthread_t thread;
    samples_t lat;
    long count;
} worker_t;

static void *preload_main(void *arg)
{
    worker_t *w = arg;
    ctx_t *x = w->x;
    httpc_t *c = conn_new(x, w->index);
    long step = x->f.batch_submit ? PRELOAD_BATCH : 1, i, n, st;
    sb_t b = {0};

    while (!stopped(x) && (i = atomic_fetch_add(&x->next, step)) < x->limit) {
        n = i + step > x->limit ? x->limit - i : step;
        st = submit(c, &b, x->op, i, n, x->f.batch_submit);
        if (st == 201 || st == 200)
            atomic_fetch_add(&x->done, n);
        else
            note_error(x, "preload submit", st, c);
    }
    sb_free(&b);
    httpc_free(c);
    return NULL;
}

/* Submit n jobs of x->op with a few connections, stopping at the budget.
 * Returns how many went in; emits the preload rate as metric `preload_rate`. */
static long preload(ctx_t *x, const char *row, long n)
{
    int threads = x->f.batch_submit ? 2 : 4;
    worker_t w[4];
    int64_t t0 = bench_now_ns();
    double s;

    atomic_store(&x->done, 0);
    atomic_store(&x->next, 0);
    x->limit = n;
    x->deadline = t0 + (int64_t)(x->o->budget * 1e9);
    bench_say("preloading %ld jobs (%s, %d connections)", n,
              x->f.batch_submit ? "arrays of 1000" : "one per request", threads);
    for (int i = 0; i < threads; i++) {
        w[i] = (worker_t){.x = x, .index = i};
        pthread_create(&w[i].thread, NULL, preload_main, &w[i]);
    }
    for (int i = 0; i < threads; i++)
        pthread_join(w[i].thread, NULL);
    s = (double)(bench_now_ns() - t0) / 1e9;
    n = atomic_load(&x->done);
    bench_emit(x->o, row, "preload_rate", (double)n / s, "%ld jobs in %.1f s, %s", n, s,
               x->f.batch_submit ? "arrays of 1000" : "one per request, 4 connections");
    return n;
}

/* ---- bots: claim, compute, complete ---- */

typedef struct bot_cfg {
    int max;        /* jobs per claim */
    int shape;      /* batch complete shape, 0 for one request per job */
    int wait_ms;    /* long-poll */
    bool until_204; /* e2e: a 204 means the queue is empty: stop */
    bool tickets;   /* depth: take a ticket per job, stop when x->limit is reached */
    bool latency;   /* record now - input.t */
    bool chain;     /* claim the next jobs in the request that reports the last (shape 2) */
} bot_cfg_t;

typedef struct bot {
    worker_t w;
    const bot_cfg_t *cfg;
} bot_t;

static void *bot_main(void *arg)
{
    bot_t *bot = arg;
    ctx_t *x = bot->w.x;
    const bot_cfg_t *cfg = bot->cfg;
    httpc_t *c = conn_new(x, bot->w.index);
    leased_t *jobs = calloc((size_t)cfg->max, sizeof *jobs);
    leased_t *next = calloc((size_t)cfg->max, sizeof *next);
    char bot_id[128], name[64];
    sb_t b = {0};
    int n;

    if (!jobs || !next)
        abort();
    snprintf(name, sizeof name, "bench-bot-%d", bot->w.index);
    if (!register_bot(x, c, name, bot_id))
        goto out;
    n = 0;
    while (!stopped(x)) {
        if (n == 0) {
            if (cfg->tickets && atomic_fetch_add(&x->next, 1) >= x->limit)
                break;
            n = claim(x, c, bot_id, cfg->max, cfg->wait_ms, jobs);
            if (n == 0 && cfg->until_204)
                break;
            if (n <= 0) {
                n = 0;
                continue;
            }
        }
        if (cfg->latency) {
            int64_t now = bench_now_ns();
            for (int i = 0; i < n; i++)
                samples_add(&bot->w.lat, (double)(now - jobs[i].t) / 1e3);
        }
        if (cfg->chain) {
            /* The reply brings the next jobs; none (after wait_ms) is
             * what a 204 to a claim would have said. */
            int got = 0;
            atomic_fetch_add(&x->done, complete(x, c, &b, bot_id, jobs, n, 2, next, cfg->max,
                                                cfg->wait_ms, &got));
            memcpy(jobs, next, (size_t)got * sizeof *jobs);
            n = got;
            if (n == 0 && cfg->until_204)
                break;
        } else {
            atomic_fetch_add(&x->done,
                             complete(x, c, &b, bot_id, jobs, n, cfg->shape, NULL, 0, 0, NULL));
            n = 0;
        }
    }
out:
    sb_free(&b);
    free(next);
    free(jobs);
    httpc_free(c);
    return NULL;
}

static void bots_start(ctx_t *x, bot_t *bots, int n, const bot_cfg_t *cfg)
{
    for (int i = 0; i < n; i++) {
        bots[i] = (bot_t){.w = {.x = x, .index = i}, .cfg = cfg};
        samples_init(&bots[i].w.lat);
        pthread_create(&bots[i].w.thread, NULL, bot_main, &bots[i]);
    }
}

static void bots_join(bot_t *bots, int n, samples_t *all)
{
    for (int i = 0; i < n; i++) {
        pthread_join(bots[i].w.thread, NULL);
        if (all)
            samples_merge(all, &bots[i].w.lat);
        samples_cleanup(&bots[i].w.lat);
    }
}

static bool want(const bench_opts_t *o, const char *variant)
{
    return !o->variant || strcmp(o->variant, variant) == 0;
}

/* ---- e2e ---- */

static void e2e_variant(ctx_t *x, const char *row, bool batched)
{
    const bench_opts_t *o = x->o;
    bot_t bots[256];
    bot_cfg_t cfg = {.max = 1, .until_204 = true};
    char how[256];
    long loaded, done;
    int64_t t0;
    double s;

    if (batched) {
        if (!x->f.claim_max && !x->f.complete_shape) {
            bench_emit_na(o, row, "rate", "not supported (no claim max>1, no batch complete)");
            return;
        }
        cfg.max = x->f.claim_max ? o->batch : 1;
        cfg.shape = x->f.complete_shape;
    }
    cfg.chain = x->f.chain;
    snprintf(how, sizeof how, "%d bots, claim max=%d, %s%s", o->bots, cfg.max,
             cfg.shape
                 ? "batched complete"
                 : (batched ? "completes one by one (batch complete n/a)" : "one complete per job"),
             cfg.chain ? ", each claiming the next in the same request" : "");
    loaded = preload(x, row, o->jobs);
    if (loaded == 0) {
        bench_emit_na(o, row, "rate", "preload failed: %s", x->last_error);
        return;
    }
    bench_rss_reset(o);
    atomic_store(&x->done, 0);
    atomic_store(&x->stop, 0);
    x->deadline = bench_now_ns() + (int64_t)(o->budget * 1e9);
    bench_say("%s: draining %ld jobs: %s", row, loaded, how);
    t0 = bench_now_ns();
    bots_start(x, bots, o->bots, &cfg);
    bots_join(bots, o->bots, NULL);
    s = (double)(bench_now_ns() - t0) / 1e9;
    done = atomic_load(&x->done);
    if (done < loaded)
        bench_emit(o, row, "rate", (double)done / s, "%s; CUT at budget: %ld of %ld jobs in %.1f s",
                   how, done, loaded, s);
    else
        bench_emit(o, row, "rate", (double)done / s, "%s; %ld jobs in %.1f s", how, done, s);
    bench_emit(o, row, "errors", (double)atomic_load(&x->errors), NULL);
    bench_rss_emit(o, row);
}

/* ---- enqueue ---- */

static void enqueue_variant(ctx_t *x, const char *row, bool batched)
{
    const bench_opts_t *o = x->o;
    httpc_t *c = conn_new(x, 0);
    long n = 0, per = batched ? 1000 : 1, st;
    int64_t t0, end;
    sb_t b = {0};
    double s;

    if (batched && !x->f.batch_submit) {
        bench_emit_na(o, row, "rate", "not supported (POST /jobs takes no array)");
        goto out;
    }
    bench_rss_reset(o);
    t0 = bench_now_ns();
    end = t0 + (int64_t)(o->seconds * 1e9);
    while (bench_now_ns() < end && atomic_load(&x->errors) < MAX_ERRORS) {
        st = submit(c, &b, x->op, n, per, batched);
        if (st == 200 || st == 201)
            n += per;
        else
            note_error(x, "submit", st, c);
    }
    s = (double)(bench_now_ns() - t0) / 1e9;
    bench_emit(o, row, "rate", (double)n / s, "1 connection, %s; %ld jobs in %.1f s",
               batched ? "arrays of 1000" : "one job per request", n, s);
    bench_rss_emit(o, row);
out:
    sb_free(&b);
    httpc_free(c);
}

/* ---- latency ---- */

/* One producer connection of the latency workload (bench_produce). */
typedef struct producer_conn {
    ctx_t *x;
    httpc_t *c;
    sb_t b;
} producer_conn_t;

static void *producer_open(void *arg, int index)
{
    producer_conn_t *p = calloc(1, sizeof *p);
    if (!p)
        abort();
    p->x = arg;
    p->c = conn_new(p->x, index);
    return p;
}

static bool producer_submit(void *conn, long k, int64_t due)
{
    producer_conn_t *p = conn;
    long st = submit_due(p->c, &p->b, p->x->op, k, 1, false, due);
    if (st != 201)
        note_error(p->x, "submit", st, p->c);
    return st == 201;
}

static void producer_close(void *conn)
{
    producer_conn_t *p = conn;
    sb_free(&p->b);
    httpc_free(p->c);
    free(p);
}

/* Bots claim one job at a time (row "latency"), or up to LATENCY_BATCH jobs
 * and report them in one request, as jobd-bot --batch does (row
 * "latency-batched"): a claim returns what is pending at once and does not
 * wait to fill, so the batch bounds how much a bot takes, not when.  Where
 * the server offers it (chain), the report also claims, long-polling. */
static void latency_run(ctx_t *x, const char *row, bool batched)
{
    static const producer_ops_t ops = {producer_open, producer_submit, producer_close};
    const bench_opts_t *o = x->o;
    bot_t bots[256];
    bot_cfg_t cfg = {.max = 1, .wait_ms = LATENCY_WAIT, .latency = true};
    samples_t all;
    long total = (long)(o->seconds * 1000), sent;
    double s;

    if (batched) {
        if (!x->f.claim_max) {
            bench_emit_na(o, row, "p99_ms", "not supported (no claim max>1)");
            return;
        }
        cfg.max = LATENCY_BATCH;
        cfg.shape = x->f.complete_shape;
    }
    cfg.chain = x->f.chain;
    samples_init(&all);
    atomic_store(&x->done, 0);
    atomic_store(&x->stop, 0);
    atomic_store(&x->errors, 0);
    x->deadline = INT64_MAX;
    bench_rss_reset(o);
    bots_start(x, bots, o->bots, &cfg);
    bench_sleep_until(bench_now_ns() + 500000000); /* let every bot park its long poll */
    sent = bench_produce(&ops, x, BENCH_PRODUCERS, total, &x->stop, &s);
    bench_wait_count(&x->done, sent, &x->stop, 30); /* the last jobs reach a bot */
    atomic_store(&x->stop, 1);
    bots_join(bots, o->bots, &all);
    bench_report_latency(o, row, &all, sent, total, s, BENCH_PRODUCERS, atomic_load(&x->errors),
                         "submits");
    samples_cleanup(&all);
}

/* ---- depth ---- */

static void depth_run(ctx_t *x)
{
    const bench_opts_t *o = x->o;
    bot_t bots[256];
    bot_cfg_t cfg = {.max = 1, .tickets = true};
    char row[64];
    long loaded, done;
    int64_t t0;
    double s;

    snprintf(row, sizeof row, "depth-%ld", o->depth);
    loaded = preload(x, row, o->depth);
    if (loaded < o->depth)
        bench_say("%s: preload cut at budget: %ld of %ld", row, loaded, o->depth);
    bench_emit(o, row, "pending", (double)loaded,
               loaded < o->depth ? "preload CUT at budget" : NULL);
    bench_rss_reset(o);
    atomic_store(&x->done, 0);
    atomic_store(&x->next, 0);
    x->limit = o->depth_work < loaded ? o->depth_work : loaded;
    x->deadline = bench_now_ns() + (int64_t)(o->budget * 1e9);
    t0 = bench_now_ns();
    bots_start(x, bots, o->bots, &cfg);
    bots_join(bots, o->bots, NULL);
    s = (double)(bench_now_ns() - t0) / 1e9;
    done = atomic_load(&x->done);
    bench_emit(o, row, "rate", (double)done / s,
               "%d bots one at a time, %ld claim+complete with %ld pending, %.2f s", o->bots, done,
               loaded, s);
    bench_emit(o, row, "errors", (double)atomic_load(&x->errors), NULL);
    bench_rss_emit(o, row);
}

/* ---- conns: many keep-alive connections on GET /jobs/{id} ---- */

typedef struct slot {
    CURL *h;
    int64_t start;
    long replies;
} slot_t;

/* What the connections of a conns level ask for. */
typedef struct conns_target {
    ctx_t *x;
    const char *path;
} conns_target_t;

static size_t discard(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    (void)ptr;
    (void)userdata;
    return size * nmemb;
}

static void *conns_main(void *arg)
{
    conns_part_t *t = arg;
    conns_target_t *target = t->arg;
    ctx_t *x = target->x;
    int64_t stall_ns = (int64_t)(x->o->stall_s * 1e9), now;
    slot_t *slots = calloc((size_t)t->n, sizeof *slots);
    CURLM *m = curl_multi_init();
    char url[512];
    int running;

    if (!slots || !m)
        abort();
    curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, (long)t->n + 16);
    for (int i = 0; i < t->n; i++) {
        slot_t *sl = &slots[i];
        snprintf(url, sizeof url, "%s%s", url_of(x, t->first + i), target->path);
        sl->h = curl_easy_init();
        curl_easy_setopt(sl->h, CURLOPT_URL, url);
        curl_easy_setopt(sl->h, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(sl->h, CURLOPT_TCP_NODELAY, 1L);
        curl_easy_setopt(sl->h, CURLOPT_WRITEFUNCTION, discard);
        curl_easy_setopt(sl->h, CURLOPT_PRIVATE, sl);
        /* long enough that a stall is seen as one, short enough to end */
        curl_easy_setopt(sl->h, CURLOPT_TIMEOUT_MS, (long)(2 * stall_ns / 1000000));
        sl->start = bench_now_ns();
        curl_multi_add_handle(m, sl->h);
    }
    while ((now = bench_now_ns()) < t->end) {
        CURLMsg *msg;
        int left;
        curl_multi_perform(m, &running);
        while ((msg = curl_multi_info_read(m, &left))) {
            slot_t *sl;
            long status = 0;
            if (msg->msg != CURLMSG_DONE)
                continue;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&sl);
            curl_easy_getinfo(sl->h, CURLINFO_RESPONSE_CODE, &status);
            now = bench_now_ns();
            if (now - sl->start > stall_ns)
                t->stalls++;
            if (msg->data.result != CURLE_OK || status != 200) {
                if (t->errors++ == 0)
                    bench_say("conns: first error: %s, status %ld",
                              curl_easy_strerror(msg->data.result), status);
            } else {
                sl->replies++;
                if (sl->start >= t->warm) {
                    samples_add(&t->lat, (double)(now - sl->start) / 1e3);
                    t->counted++;
                }
            }
            curl_multi_remove_handle(m, sl->h);
            sl->start = now;
            curl_multi_add_handle(m, sl->h);
        }
        curl_multi_poll(m, NULL, 0, 50, NULL);
    }
    now = bench_now_ns();
    for (int i = 0; i < t->n; i++) {
        if (now - slots[i].start > stall_ns) { /* still waiting for a reply */
            t->stalls++;
            t->silent += slots[i].replies == 0;
        }
        curl_multi_remove_handle(m, slots[i].h);
        curl_easy_cleanup(slots[i].h);
    }
    curl_multi_cleanup(m);
    free(slots);
    return NULL;
}

static void conns_run(ctx_t *x)
{
    httpc_t *c = conn_new(x, 0);
    char path[256];
    sb_t b = {0};
    json_t *doc;
    long st;

    st = submit(c, &b, x->op, 1, 1, false);
    doc = st == 201 ? reply_json(c) : NULL;
    if (!doc) {
        note_error(x, "submit", st, c);
        goto out;
    }
    snprintf(path, sizeof path, "/jobs/%s", str_of(doc, "id"));
    json_decref(doc);
    for (int i = 0; i < x->o->n_conns; i++)
        bench_conns_level(x->o, x->o->conns[i], conns_main, &(conns_target_t){.x = x, .path = path},
                          "GET /jobs/{id}");
out:
    sb_free(&b);
    httpc_free(c);
}

int jobd_run(const bench_opts_t *o)
{
    ctx_t x = {.o = o};
    const char *w = o->workload;
    int rc = 0;

    curl_global_init(CURL_GLOBAL_DEFAULT);
    pthread_mutex_init(&x.mu, NULL);
    if (probe(&x) != 0) {
        bench_say("cannot use %s: %s", o->urls[0], x.last_error);
        rc = 1;
        goto out;
    }
    if (strcmp(w, "e2e") == 0) {
        x.op = "bench.e2e";
        if (want(o, "single"))
            e2e_variant(&x, "e2e-single", false);
        if (want(o, "batched"))
            e2e_variant(&x, "e2e-batched", true);
    } else if (strcmp(w, "enqueue") == 0) {
        x.op = "bench.enqueue";
        if (want(o, "single"))
            enqueue_variant(&x, "enqueue-single", false);
        if (want(o, "batched"))
            enqueue_variant(&x, "enqueue-batched", true);
    } else if (strcmp(w, "latency") == 0) {
        x.op = "bench.latency";
        if (want(o, "single"))
            latency_run(&x, "latency", false);
        if (want(o, "batched"))
            latency_run(&x, "latency-batched", true);
    } else if (strcmp(w, "depth") == 0) {
        x.op = "bench.depth";
        depth_run(&x);
    } else if (strcmp(w, "conns") == 0) {
        x.op = "bench.conns";
        conns_run(&x);
    } else {
        bench_say("jobd has no workload '%s'", w);
        rc = 2;
    }
out:
    pthread_mutex_destroy(&x.mu);
    curl_global_cleanup();
    return rc;
}
