/*
 * beanstalk.c - the baseline: a minimal client of beanstalkd's text protocol
 * (put, use, watch, ignore, reserve, reserve-with-timeout, delete, peek; see
 * doc/protocol.txt of beanstalkd) and the same workloads as jobd.c, so the
 * two servers are measured by the same clock, threads and schedule.
 */
#include "bench.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define PIPELINE   64 /* puts written before their replies are read */
#define MAX_ERRORS 100

typedef struct bs {
    int fd;
    char buf[65536];
    size_t start, end; /* unread bytes are buf[start, end) */
} bs_t;

typedef struct ctx {
    const bench_opts_t *o;
    char tube[64]; /* one per run, so no job of an earlier run is reserved */
    atomic_long errors, done, next;
    long limit;
    int64_t deadline;
    atomic_int stop;
} ctx_t;

static int dial(const char *addr)
{
    char host[256];
    const char *colon = strrchr(addr, ':');
    struct sockaddr_in sa = {.sin_family = AF_INET};
    int fd, one = 1;

    if (!colon || (size_t)(colon - addr) >= sizeof host)
        return -1;
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = '\0';
    sa.sin_port = htons((uint16_t)atoi(colon + 1));
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
        return -1;
    if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
        return -1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Connect; aborts when out of memory, returns NULL when the server is not
 * there. */
static bs_t *bs_connect(const char *addr)
{
    bs_t *b = calloc(1, sizeof *b);
    if (!b)
        abort();
    if ((b->fd = dial(addr)) < 0) {
        free(b);
        return NULL;
    }
    return b;
}

static void bs_close(bs_t *b)
{
    if (!b)
        return;
    close(b->fd);
    free(b);
}

static bool send_all(bs_t *b, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(b->fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

static bool fill(bs_t *b)
{
    ssize_t r;
    if (b->start > 0) {
        memmove(b->buf, b->buf + b->start, b->end - b->start);
        b->end -= b->start;
        b->start = 0;
    }
    if (b->end == sizeof b->buf)
        return false;
    do
        r = recv(b->fd, b->buf + b->end, sizeof b->buf - b->end, 0);
    while (r < 0 && errno == EINTR);
    if (r <= 0)
        return false;
    b->end += (size_t)r;
    return true;
}

/* Read one reply line without its "\r\n" into line.  Returns false when the
 * connection failed. */
static bool read_line(bs_t *b, char *line, size_t len)
{
    for (;;) {
        char *nl = memmem(b->buf + b->start, b->end - b->start, "\r\n", 2);
        if (nl) {
            size_t n = (size_t)(nl - (b->buf + b->start));
            snprintf(line, len, "%.*s", (int)n, b->buf + b->start);
            b->start += n + 2;
            return true;
        }
        if (!fill(b))
            return false;
    }
}

/* Read a job body of n bytes and its "\r\n" into out (at most len - 1
 * bytes are kept). */
static bool read_body(bs_t *b, size_t n, char *out, size_t len)
{
    while (b->end - b->start < n + 2)
        if (!fill(b))
            return false;
    snprintf(out, len, "%.*s", (int)n, b->buf + b->start);
    b->start += n + 2;
    return true;
}

static bool command(bs_t *b, const char *cmd, const char *expect_prefix)
{
    char line[256];
    return send_all(b, cmd, strlen(cmd)) && read_line(b, line, sizeof line) &&
           strncmp(line, expect_prefix, strlen(expect_prefix)) == 0;
}

/* A connection that puts to and reserves from the bench tube. */
static bs_t *bs_open(ctx_t *x)
{
    bs_t *b = bs_connect(x->o->addr);
    char use[128], watch[128];

    if (!b)
        return NULL;
    snprintf(use, sizeof use, "use %s\r\n", x->tube);
    snprintf(watch, sizeof watch, "watch %s\r\n", x->tube);
    if (!command(b, use, "USING") || !command(b, watch, "WATCHING") ||
        !command(b, "ignore default\r\n", "WATCHING")) {
        bs_close(b);
        return NULL;
    }
    return b;
}

static int put_cmd(char *out, size_t len, long i, int64_t due)
{
    char body[96];
    int n = snprintf(body, sizeof body, "%ld %ld %lld", i, 2 * i,
                     (long long)(due ? due : bench_now_ns()));
    return snprintf(out, len, "put 0 0 60 %d\r\n%s\r\n", n, body);
}

/* Put n jobs, stamped with `due` (0: now; see producer_ops_t), `pipeline`
 * commands written before their replies are read.
 * Returns how many were INSERTED.  OUT (optional): *last_id. */
static long put_jobs(bs_t *b, long first, long n, int pipeline, unsigned long long *last_id,
                     int64_t due)
{
    char cmds[PIPELINE * 128], line[128];
    long ok = 0;

    for (long i = 0; i < n; i += pipeline) {
        long k = n - i < pipeline ? n - i : pipeline;
        size_t len = 0;
        for (long j = 0; j < k; j++)
            len += (size_t)put_cmd(cmds + len, sizeof cmds - len, first + i + j, due);
        if (!send_all(b, cmds, len))
            return ok;
        for (long j = 0; j < k; j++) {
            if (!read_line(b, line, sizeof line))
                return ok;
            if (strncmp(line, "INSERTED ", 9) == 0) {
                ok++;
                if (last_id)
                    *last_id = strtoull(line + 9, NULL, 10);
            }
        }
    }
    return ok;
}

/* reserve (timeout < 0) or reserve-with-timeout.  OUT: id and the body's
 * numbers.  Returns 1 for a job, 0 for TIMED_OUT, -1 on failure. */
static int reserve(bs_t *b, int timeout, unsigned long long *id, long long abt[3])
{
    char cmd[64], line[128], body[128];
    size_t bytes;

    if (timeout < 0)
        snprintf(cmd, sizeof cmd, "reserve\r\n");
    else
        snprintf(cmd, sizeof cmd, "reserve-with-timeout %d\r\n", timeout);
    if (!send_all(b, cmd, strlen(cmd)) || !read_line(b, line, sizeof line))
        return -1;
    if (strcmp(line, "TIMED_OUT") == 0 || strcmp(line, "DEADLINE_SOON") == 0)
        return 0;
    if (sscanf(line, "RESERVED %llu %zu", id, &bytes) != 2 ||
        !read_body(b, bytes, body, sizeof body))
        return -1;
    if (sscanf(body, "%lld %lld %lld", &abt[0], &abt[1], &abt[2]) != 3)
        return -1;
    return 1;
}

static bool delete_job(bs_t *b, unsigned long long id)
{
    char cmd[64];
    snprintf(cmd, sizeof cmd, "delete %llu\r\n", id);
    return command(b, cmd, "DELETED");
}

static void note_error(ctx_t *x, const char *what)
{
    long n = atomic_fetch_add(&x->errors, 1) + 1;
    if (n == 1)
        bench_say("beanstalkd: first error: %s", what);
    if (n >= MAX_ERRORS)
        atomic_store(&x->stop, 1);
}

static bool stopped(ctx_t *x)
{
    return atomic_load(&x->stop) || bench_now_ns() >= x->deadline;
}

/* ---- workers: reserve, compute, delete ---- */

typedef struct worker {
    ctx_t *x;
    pthread_t thread;
    int timeout;      /* reserve-with-timeout seconds; 0 polls */
    bool until_empty; /* e2e: TIMED_OUT with timeout 0 means empty */
    bool tickets;
    bool latency;
    samples_t lat;
    volatile long long sink; /* the sums, so the compute is not optimised away */
} worker_t;

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    ctx_t *x = w->x;
    bs_t *b = bs_open(x);
    unsigned long long id;
    long long abt[3];
    int r;

    if (!b) {
        note_error(x, "connect");
        return NULL;
    }
    while (!stopped(x)) {
        if (w->tickets && atomic_fetch_add(&x->next, 1) >= x->limit)
            break;
        r = reserve(b, w->timeout, &id, abt);
        if (r == 0 && w->until_empty)
            break;
        if (r < 0) {
            note_error(x, "reserve");
            break;
        }
        if (r == 0)
            continue;
        if (w->latency)
            samples_add(&w->lat, (double)(bench_now_ns() - abt[2]) / 1e3);
        w->sink += abt[0] + abt[1];
        if (delete_job(b, id))
            atomic_fetch_add(&x->done, 1);
        else
            note_error(x, "delete");
    }
    bs_close(b);
    return NULL;
}

static void workers_run(ctx_t *x, int n, const worker_t *proto, samples_t *all)
{
    worker_t w[256];
    for (int i = 0; i < n; i++) {
        w[i] = *proto;
        w[i].x = x;
        samples_init(&w[i].lat);
        pthread_create(&w[i].thread, NULL, worker_main, &w[i]);
    }
    for (int i = 0; i < n; i++) {
        pthread_join(w[i].thread, NULL);
        if (all)
            samples_merge(all, &w[i].lat);
        samples_cleanup(&w[i].lat);
    }
}

static long preload(ctx_t *x, const char *row, long n)
{
    bs_t *b = bs_open(x);
    int64_t t0 = bench_now_ns();
    double s;

    int64_t deadline = t0 + (int64_t)(x->o->budget * 1e9);
    long got = 0, put;

    if (!b)
        return 0;
    while (got < n && bench_now_ns() < deadline) {
        long k = n - got < 100 * PIPELINE ? n - got : 100 * PIPELINE;
        if ((put = put_jobs(b, got, k, PIPELINE, NULL, 0)) < k) {
            note_error(x, "put");
            break;
        }
        got += put;
    }
    s = (double)(bench_now_ns() - t0) / 1e9;
    bench_emit(x->o, row, "preload_rate", (double)got / s, "%ld jobs in %.1f s, %d pipelined%s",
               got, s, PIPELINE, got < n ? ", CUT at budget" : "");
    bs_close(b);
    return got;
}

static void e2e(ctx_t *x)
{
    const bench_opts_t *o = x->o;
    worker_t proto = {.timeout = 0, .until_empty = true};
    long loaded, done;
    int64_t t0;
    double s;

    if (o->variant && strcmp(o->variant, "batched") == 0) {
        bench_emit_na(o, "e2e-batched", "rate", "beanstalkd has no batch reserve");
        return;
    }
    loaded = preload(x, "e2e-single", o->jobs);
    bench_rss_reset(o);
    x->deadline = bench_now_ns() + (int64_t)(o->budget * 1e9);
    t0 = bench_now_ns();
    workers_run(x, o->bots, &proto, NULL);
    s = (double)(bench_now_ns() - t0) / 1e9;
    done = atomic_load(&x->done);
    bench_emit(o, "e2e-single", "rate", (double)done / s,
               "%d workers reserve+delete one at a time; %ld of %ld jobs in %.1f s%s", o->bots,
               done, loaded, s, done < loaded ? " CUT at budget" : "");
    bench_emit(o, "e2e-single", "errors", (double)atomic_load(&x->errors), NULL);
    bench_rss_emit(o, "e2e-single");
}

static void enqueue(ctx_t *x, const char *row, int pipeline)
{
    const bench_opts_t *o = x->o;
    bs_t *b = bs_open(x);
    int64_t t0, end;
    long n = 0;
    double s;

    if (!b) {
        bench_emit_na(o, row, "rate", "cannot connect to %s", o->addr);
        return;
    }
    bench_rss_reset(o);
    t0 = bench_now_ns();
    end = t0 + (int64_t)(o->seconds * 1e9);
    while (bench_now_ns() < end)
        n += put_jobs(b, n, pipeline, pipeline, NULL, 0);
    s = (double)(bench_now_ns() - t0) / 1e9;
    bench_emit(o, row, "rate", (double)n / s, "1 connection, %s; %ld jobs in %.1f s",
               pipeline > 1 ? "64 puts pipelined" : "one put at a time", n, s);
    bench_rss_emit(o, row);
    bs_close(b);
}

static void *producer_open(void *arg, int index)
{
    (void)index;
    bs_t *b = bs_open(arg);
    if (!b)
        note_error(arg, "connect");
    return b;
}

static bool producer_submit(void *conn, long k, int64_t due)
{
    return put_jobs(conn, k, 1, 1, NULL, due) == 1;
}

static void producer_close(void *conn)
{
    bs_close(conn);
}

typedef struct latency_workers {
    ctx_t *x;
    samples_t *all;
} latency_workers_t;

static void *latency_workers_main(void *arg)
{
    latency_workers_t *lw = arg;
    worker_t proto = {.timeout = 1, .latency = true};
    workers_run(lw->x, lw->x->o->bots, &proto, lw->all);
    return NULL;
}

static void latency(ctx_t *x)
{
    static const producer_ops_t ops = {producer_open, producer_submit, producer_close};
    const bench_opts_t *o = x->o;
    latency_workers_t lw = {.x = x};
    pthread_t workers;
    samples_t all;
    long total = (long)(o->seconds * 1000), sent;
    double s;

    samples_init(&all);
    lw.all = &all;
    x->deadline = INT64_MAX;
    bench_rss_reset(o);
    pthread_create(&workers, NULL, latency_workers_main, &lw);
    bench_sleep_until(bench_now_ns() + 500000000); /* every worker waits in reserve */
    sent = bench_produce(&ops, x, BENCH_PRODUCERS, total, &x->stop, &s);
    bench_wait_count(&x->done, sent, &x->stop, 30); /* the last jobs reach a bot */
    atomic_store(&x->stop, 1);
    pthread_join(workers, NULL);
    bench_report_latency(o, "latency", &all, sent, total, s, BENCH_PRODUCERS,
                         atomic_load(&x->errors), "puts");
    samples_cleanup(&all);
}

static void depth(ctx_t *x)
{
    const bench_opts_t *o = x->o;
    worker_t proto = {.timeout = 0, .tickets = true};
    char row[64];
    long loaded, done;
    int64_t t0;
    double s;

    snprintf(row, sizeof row, "depth-%ld", o->depth);
    loaded = preload(x, row, o->depth);
    bench_emit(o, row, "pending", (double)loaded, NULL);
    bench_rss_reset(o);
    x->limit = o->depth_work < loaded ? o->depth_work : loaded;
    x->deadline = bench_now_ns() + (int64_t)(o->budget * 1e9);
    t0 = bench_now_ns();
    workers_run(x, o->bots, &proto, NULL);
    s = (double)(bench_now_ns() - t0) / 1e9;
    done = atomic_load(&x->done);
    bench_emit(o, row, "rate", (double)done / s,
               "%d workers, %ld reserve+delete with %ld ready, %.2f s", o->bots, done, loaded, s);
    bench_rss_emit(o, row);
}

/* ---- conns: many connections each repeating `peek <id>` ---- */

typedef struct pconn {
    int fd;
    int64_t start;
    long replies;
    char buf[512];
    size_t len;
} pconn_t;

/* What the connections of a conns level ask for. */
typedef struct conns_target {
    ctx_t *x;
    unsigned long long id;
} conns_target_t;

/* A whole "FOUND <id> <bytes>\r\n<body>\r\n" (or another one-line reply)
 * is in c->buf: returns its length, or 0 if more is needed. */
static size_t reply_length(const pconn_t *c)
{
    const char *nl = memmem(c->buf, c->len, "\r\n", 2);
    unsigned long long id;
    size_t bytes, head;

    if (!nl)
        return 0;
    head = (size_t)(nl - c->buf) + 2;
    if (sscanf(c->buf, "FOUND %llu %zu", &id, &bytes) != 2)
        return head;
    return c->len >= head + bytes + 2 ? head + bytes + 2 : 0;
}

static void *conns_main(void *arg)
{
    conns_part_t *t = arg;
    conns_target_t *target = t->arg;
    ctx_t *x = target->x;
    int64_t stall_ns = (int64_t)(x->o->stall_s * 1e9), now;
    pconn_t *c = calloc((size_t)t->n, sizeof *c);
    struct pollfd *pfd = calloc((size_t)t->n, sizeof *pfd);
    char cmd[64];
    int cmdlen = snprintf(cmd, sizeof cmd, "peek %llu\r\n", target->id);

    if (!c || !pfd)
        abort();
    for (int i = 0; i < t->n; i++) {
        c[i].fd = dial(x->o->addr);
        pfd[i] = (struct pollfd){.fd = c[i].fd, .events = POLLIN};
        c[i].start = bench_now_ns();
        if (c[i].fd < 0 || send(c[i].fd, cmd, (size_t)cmdlen, MSG_NOSIGNAL) != cmdlen)
            t->errors++;
    }
    while ((now = bench_now_ns()) < t->end) {
        if (poll(pfd, (nfds_t)t->n, 50) <= 0)
            continue;
        for (int i = 0; i < t->n; i++) {
            size_t rl;
            ssize_t r;
            if (!(pfd[i].revents & (POLLIN | POLLERR | POLLHUP)))
                continue;
            r = recv(c[i].fd, c[i].buf + c[i].len, sizeof c[i].buf - c[i].len, MSG_DONTWAIT);
            if (r <= 0) {
                t->errors++;
                pfd[i].fd = -1; /* poll ignores it from now on */
                continue;
            }
            c[i].len += (size_t)r;
            if (!(rl = reply_length(&c[i])))
                continue;
            now = bench_now_ns();
            if (now - c[i].start > stall_ns)
                t->stalls++;
            if (strncmp(c[i].buf, "FOUND ", 6) != 0)
                t->errors++;
            c[i].replies++;
            if (c[i].start >= t->warm) {
                samples_add(&t->lat, (double)(now - c[i].start) / 1e3);
                t->counted++;
            }
            memmove(c[i].buf, c[i].buf + rl, c[i].len - rl);
            c[i].len -= rl;
            c[i].start = now;
            if (send(c[i].fd, cmd, (size_t)cmdlen, MSG_NOSIGNAL) != cmdlen)
                t->errors++;
        }
    }
    for (int i = 0; i < t->n; i++) {
        if (now - c[i].start > stall_ns) { /* still waiting for a reply */
            t->stalls++;
            t->silent += c[i].replies == 0;
        }
        if (c[i].fd >= 0)
            close(c[i].fd);
    }
    free(pfd);
    free(c);
    return NULL;
}

static void conns(ctx_t *x)
{
    const bench_opts_t *o = x->o;
    bs_t *b = bs_open(x);
    unsigned long long id = 0;

    if (!b || put_jobs(b, 1, 1, 1, &id, 0) != 1) {
        bench_say("beanstalkd: cannot put the job to peek");
        bs_close(b);
        return;
    }
    bs_close(b);
    for (int k = 0; k < o->n_conns; k++)
        bench_conns_level(o, o->conns[k], conns_main, &(conns_target_t){.x = x, .id = id},
                          "peek <id>");
}

int bs_run(const bench_opts_t *o)
{
    ctx_t x = {.o = o, .deadline = INT64_MAX};
    bs_t *probe = bs_connect(o->addr);
    const char *w = o->workload;

    if (!probe) {
        bench_say("cannot connect to beanstalkd at %s", o->addr);
        return 1;
    }
    bs_close(probe);
    snprintf(x.tube, sizeof x.tube, "bench-%s-%d", w, (int)getpid());
    if (strcmp(w, "e2e") == 0) {
        e2e(&x);
    } else if (strcmp(w, "enqueue") == 0) {
        if (!o->variant || strcmp(o->variant, "single") == 0)
            enqueue(&x, "enqueue-single", 1);
        if (!o->variant || strcmp(o->variant, "batched") == 0)
            enqueue(&x, "enqueue-batched", PIPELINE);
    } else if (strcmp(w, "latency") == 0) {
        latency(&x);
    } else if (strcmp(w, "depth") == 0) {
        depth(&x);
    } else if (strcmp(w, "conns") == 0) {
        conns(&x);
    } else {
        bench_say("beanstalkd has no workload '%s'", w);
        return 2;
    }
    return 0;
}
