/*
 * jobd-bench.c - the command line of jobd-bench and the pieces every target
 * shares: the clock, latency samples, the result lines and the peak-RSS
 * probe.  One run measures one workload against one target; bench/run starts
 * the servers, calls this once per cell of the table and prints the table.
 */
#include "bench.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static const char usage[] =
    "usage: jobd-bench --target T --workload W [options]\n"
    "\n"
    "targets: jobd (--url, repeatable), beanstalkd (--addr HOST:PORT),\n"
    "         pgloop (--conninfo STR), sqliteloop (--path FILE)\n"
    "workloads: e2e, enqueue, latency, depth, conns (not every target has every one)\n"
    "\n"
    "  --variant V       e2e, enqueue, latency (jobd): single or batched, default both\n"
    "  --label NAME      column name in the result lines, default the target\n"
    "  --pid PID         a server whose peak RSS is reported (repeatable)\n"
    "  --jobs N          e2e: jobs preloaded, default 100000\n"
    "  --depth N         depth: pending jobs, default 1000\n"
    "  --depth-work N    depth: jobs claimed+completed while measuring, default 500\n"
    "  --bots N          bots, default 4\n"
    "  --batch N         e2e batched: jobs per claim, default 100 (pgloop 10)\n"
    "  --seconds S       latency: producing time (default 10); enqueue, conns: per variant (5)\n"
    "  --budget S        a preload or drain stops here and says so, default 300\n"
    "  --conns LIST      conns: connection counts, default 1,8,64,128,256,1000\n"
    "  --stall S         conns: a request unanswered this long is a stall, default 2\n"
    "  --no-chain        jobd: e2e and latency bots claim in a request of its own, not in\n"
    "                    the one that reports their last jobs\n"
    "  --whole           jobd: no 'Prefer: return=minimal': whole jobs in every reply\n"
    "\n"
    "Output: lines 'R <label> <row> <metric> <value> [note]' on stdout.\n";

int64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void bench_sleep_until(int64_t t_ns)
{
    struct timespec ts = {.tv_sec = t_ns / 1000000000, .tv_nsec = t_ns % 1000000000};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

void samples_init(samples_t *s)
{
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->mu, NULL);
}

void samples_cleanup(samples_t *s)
{
    free(s->v);
    pthread_mutex_destroy(&s->mu);
}

static void add_locked(samples_t *s, double us)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 4096;
        s->v = realloc(s->v, s->cap * sizeof *s->v);
        if (!s->v)
            abort();
    }
    s->v[s->n++] = us;
}

void samples_add(samples_t *s, double us)
{
    pthread_mutex_lock(&s->mu);
    add_locked(s, us);
    pthread_mutex_unlock(&s->mu);
}

void samples_merge(samples_t *dst, samples_t *src)
{
    pthread_mutex_lock(&dst->mu);
    for (size_t i = 0; i < src->n; i++)
        add_locked(dst, src->v[i]);
    pthread_mutex_unlock(&dst->mu);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double samples_pct(samples_t *s, double p)
{
    size_t rank;
    double v;

    pthread_mutex_lock(&s->mu);
    if (s->n == 0) {
        pthread_mutex_unlock(&s->mu);
        return 0;
    }
    qsort(s->v, s->n, sizeof *s->v, cmp_double);
    rank = (size_t)ceil(p / 100.0 * (double)s->n);
    v = s->v[rank ? rank - 1 : 0];
    pthread_mutex_unlock(&s->mu);
    return v;
}

static void emit(const bench_opts_t *o, const char *row, const char *metric, const char *value,
                 const char *fmt, va_list ap) __attribute__((format(printf, 5, 0)));

static void emit(const bench_opts_t *o, const char *row, const char *metric, const char *value,
                 const char *fmt, va_list ap)
{
    char note[512] = "";
    if (fmt)
        vsnprintf(note, sizeof note, fmt, ap);
    for (char *p = note; *p; p++) /* one record per line */
        if (*p == '\n')
            *p = ' ';
    printf("R %s %s %s %s%s%s\n", o->label, row, metric, value, note[0] ? " " : "", note);
    fflush(stdout);
}

void bench_emit(const bench_opts_t *o, const char *row, const char *metric, double value,
                const char *note_fmt, ...)
{
    char v[64];
    va_list ap;
    snprintf(v, sizeof v, "%.6g", value);
    va_start(ap, note_fmt);
    emit(o, row, metric, v, note_fmt, ap);
    va_end(ap);
}

void bench_emit_na(const bench_opts_t *o, const char *row, const char *metric, const char *why_fmt,
                   ...)
{
    va_list ap;
    va_start(ap, why_fmt);
    emit(o, row, metric, "n/a", why_fmt, ap);
    va_end(ap);
}

void bench_say(const char *fmt, ...)
{
    va_list ap;
    fputs("jobd-bench: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

void bench_rss_reset(const bench_opts_t *o)
{
    char path[64];
    for (int i = 0; i < o->n_pids; i++) {
        FILE *f;
        snprintf(path, sizeof path, "/proc/%d/clear_refs", o->pids[i]);
        if ((f = fopen(path, "w"))) {
            fputs("5", f);
            fclose(f);
        }
    }
}

void bench_rss_emit(const bench_opts_t *o, const char *row)
{
    char path[64], line[256];
    long best = -1;

    for (int i = 0; i < o->n_pids; i++) {
        FILE *f;
        long kb;
        snprintf(path, sizeof path, "/proc/%d/status", o->pids[i]);
        if (!(f = fopen(path, "r")))
            continue;
        while (fgets(line, sizeof line, f))
            if (sscanf(line, "VmHWM: %ld kB", &kb) == 1 && kb > best)
                best = kb;
        fclose(f);
    }
    if (best >= 0)
        bench_emit(o, row, "rss_kb", (double)best, o->n_pids > 1 ? "largest of %d servers" : NULL,
                   o->n_pids);
}

typedef struct producer {
    const producer_ops_t *ops;
    void *arg;
    int index;
    int64_t t0, cutoff;
    long scheduled;
    atomic_long *slot, *sent;
    const atomic_int *stop;
} producer_t;

static void *producer_main(void *p_)
{
    producer_t *p = p_;
    void *conn = p->ops->open(p->arg, p->index);
    long k;

    if (!conn)
        return NULL;
    while (!atomic_load(p->stop) && bench_now_ns() < p->cutoff &&
           (k = atomic_fetch_add(p->slot, 1)) < p->scheduled) {
        bench_sleep_until(p->t0 + k * 1000000);
        if (p->ops->submit(conn, k, p->t0 + k * 1000000))
            atomic_fetch_add(p->sent, 1);
    }
    p->ops->close(conn);
    return NULL;
}

long bench_produce(const producer_ops_t *ops, void *arg, int producers, long scheduled,
                   const atomic_int *stop, double *seconds)
{
    producer_t p[16];
    pthread_t tid[16];
    atomic_long slot = 0, sent = 0;
    int64_t t0 = bench_now_ns() + 1000000;

    if (producers > 16)
        producers = 16;
    for (int i = 0; i < producers; i++) {
        p[i] = (producer_t){.ops = ops,
                            .arg = arg,
                            .index = i,
                            .t0 = t0,
                            .cutoff = t0 + 2 * scheduled * 1000000,
                            .scheduled = scheduled,
                            .slot = &slot,
                            .sent = &sent,
                            .stop = stop};
        pthread_create(&tid[i], NULL, producer_main, &p[i]);
    }
    for (int i = 0; i < producers; i++)
        pthread_join(tid[i], NULL);
    *seconds = (double)(bench_now_ns() - t0) / 1e9;
    return atomic_load(&sent);
}

void bench_wait_count(const atomic_long *count, long want, const atomic_int *stop, double max_s)
{
    int64_t until = bench_now_ns() + (int64_t)(max_s * 1e9);
    while (atomic_load(count) < want && !atomic_load(stop) && bench_now_ns() < until)
        bench_sleep_until(bench_now_ns() + 10000000);
}

void bench_report_latency(const bench_opts_t *o, const char *row, samples_t *lat, long sent,
                          long scheduled, double seconds, int producers, long errors,
                          const char *what)
{
    bench_emit(o, row, "submit_rate", (double)sent / seconds,
               "%ld of %ld scheduled %s (1 per ms) in %.1f s over %d connections", sent, scheduled,
               what, seconds, producers);
    bench_emit(o, row, "p50_ms", samples_pct(lat, 50) / 1e3,
               "%zu of %ld jobs reached one of %d idle bots%s", lat->n, sent, o->bots,
               (long)lat->n < sent ? " (the rest did not within 30 s: not in the percentiles)"
                                   : "");
    bench_emit(o, row, "p99_ms", samples_pct(lat, 99) / 1e3, NULL);
    bench_emit(o, row, "max_ms", samples_pct(lat, 100) / 1e3, NULL);
    bench_emit(o, row, "errors", (double)errors, NULL);
    bench_rss_emit(o, row);
}

#define CONNS_THREADS  2   /* client threads of a conns level */
#define CONNS_WARMUP_S 0.5 /* start of each conns level not counted in rate and p99 */

void bench_conns_level(const bench_opts_t *o, int n, void *(*fn)(void *), void *arg,
                       const char *what)
{
    conns_part_t part[CONNS_THREADS];
    int threads = n < CONNS_THREADS ? n : CONNS_THREADS, first = 0;
    long counted = 0, stalls = 0, errors = 0, silent = 0;
    int64_t start = bench_now_ns();
    pthread_t tid[CONNS_THREADS];
    samples_t all;
    char row[32];
    double s = o->seconds - CONNS_WARMUP_S;

    snprintf(row, sizeof row, "conns-%d", n);
    samples_init(&all);
    bench_rss_reset(o);
    for (int i = 0; i < threads; i++) {
        int share = n / threads + (i < n % threads);
        part[i] = (conns_part_t){.o = o,
                                 .arg = arg,
                                 .first = first,
                                 .n = share,
                                 .warm = start + (int64_t)(CONNS_WARMUP_S * 1e9),
                                 .end = start + (int64_t)(o->seconds * 1e9)};
        samples_init(&part[i].lat);
        first += share;
        pthread_create(&tid[i], NULL, fn, &part[i]);
    }
    for (int i = 0; i < threads; i++) {
        pthread_join(tid[i], NULL);
        samples_merge(&all, &part[i].lat);
        samples_cleanup(&part[i].lat);
        counted += part[i].counted;
        stalls += part[i].stalls;
        errors += part[i].errors;
        silent += part[i].silent;
    }
    bench_emit(o, row, "rate", (double)counted / s, "%d connections, %s, %.1f s", n, what, s);
    bench_emit(o, row, "p99_ms", samples_pct(&all, 99) / 1e3, NULL);
    bench_emit(o, row, "stalls", (double)stalls,
               "requests unanswered for more than %.1f s (late or still missing at the end); "
               "%ld of them on connections that never got a reply",
               o->stall_s, silent);
    bench_emit(o, row, "errors", (double)errors, NULL);
    bench_rss_emit(o, row);
    samples_cleanup(&all);
}

static bool parse_long(const char *s, long min, long max, long *out)
{
    char *end;
    errno = 0;
    *out = strtol(s, &end, 10);
    return errno == 0 && end != s && !*end && *out >= min && *out <= max;
}

static bool parse_double(const char *s, double min, double max, double *out)
{
    char *end;
    errno = 0;
    *out = strtod(s, &end);
    return errno == 0 && end != s && !*end && *out >= min && *out <= max;
}

static bool parse_conns(const char *s, bench_opts_t *o)
{
    char buf[256], *save = NULL, *tok;
    long n;
    snprintf(buf, sizeof buf, "%s", s);
    o->n_conns = 0;
    for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (o->n_conns == 16 || !parse_long(tok, 1, 10000, &n))
            return false;
        o->conns[o->n_conns++] = (int)n;
    }
    return o->n_conns > 0;
}

/* Many connections need many descriptors: raise the soft limit to the hard. */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

#ifdef JOBD_BENCH_NO_PGLOOP
int pgloop_run(const bench_opts_t *o)
{
    bench_say("this jobd-bench was built without libpq: no pgloop");
    return 1;
}
#endif

int main(int argc, char **argv)
{
    enum {
        O_TARGET = 1,
        O_LABEL,
        O_WORKLOAD,
        O_URL,
        O_ADDR,
        O_CONNINFO,
        O_PATH,
        O_PID,
        O_JOBS,
        O_DEPTH,
        O_DEPTH_WORK,
        O_BOTS,
        O_BATCH,
        O_SECONDS,
        O_BUDGET,
        O_CONNS,
        O_STALL,
        O_VARIANT,
        O_NO_CHAIN,
        O_WHOLE
    };
    static const struct option opts[] = {{"target", required_argument, 0, O_TARGET},
                                         {"label", required_argument, 0, O_LABEL},
                                         {"workload", required_argument, 0, O_WORKLOAD},
                                         {"url", required_argument, 0, O_URL},
                                         {"addr", required_argument, 0, O_ADDR},
                                         {"conninfo", required_argument, 0, O_CONNINFO},
                                         {"path", required_argument, 0, O_PATH},
                                         {"pid", required_argument, 0, O_PID},
                                         {"jobs", required_argument, 0, O_JOBS},
                                         {"depth", required_argument, 0, O_DEPTH},
                                         {"depth-work", required_argument, 0, O_DEPTH_WORK},
                                         {"bots", required_argument, 0, O_BOTS},
                                         {"batch", required_argument, 0, O_BATCH},
                                         {"seconds", required_argument, 0, O_SECONDS},
                                         {"budget", required_argument, 0, O_BUDGET},
                                         {"conns", required_argument, 0, O_CONNS},
                                         {"stall", required_argument, 0, O_STALL},
                                         {"variant", required_argument, 0, O_VARIANT},
                                         {"no-chain", no_argument, 0, O_NO_CHAIN},
                                         {"whole", no_argument, 0, O_WHOLE},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    bench_opts_t o = {.jobs = 100000,
                      .depth = 1000,
                      .depth_work = 500,
                      .bots = 4,
                      .seconds = -1,
                      .budget = 300,
                      .stall_s = 2};
    long n;
    int c;

    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        bool ok = true;
        switch (c) {
        case O_TARGET:
            o.target = optarg;
            break;
        case O_LABEL:
            o.label = optarg;
            break;
        case O_WORKLOAD:
            o.workload = optarg;
            break;
        case O_URL:
            if ((ok = o.n_urls < 4))
                snprintf(o.urls[o.n_urls++], sizeof o.urls[0], "%s", optarg);
            break;
        case O_ADDR:
            snprintf(o.addr, sizeof o.addr, "%s", optarg);
            break;
        case O_CONNINFO:
            snprintf(o.conninfo, sizeof o.conninfo, "%s", optarg);
            break;
        case O_PATH:
            snprintf(o.path, sizeof o.path, "%s", optarg);
            break;
        case O_PID:
            if ((ok = o.n_pids < 4 && parse_long(optarg, 1, 1L << 30, &n)))
                o.pids[o.n_pids++] = (int)n;
            break;
        case O_JOBS:
            ok = parse_long(optarg, 1, 100000000, &o.jobs);
            break;
        case O_DEPTH:
            ok = parse_long(optarg, 1, 100000000, &o.depth);
            break;
        case O_DEPTH_WORK:
            ok = parse_long(optarg, 1, 100000000, &o.depth_work);
            break;
        case O_BOTS:
            if ((ok = parse_long(optarg, 1, 256, &n)))
                o.bots = (int)n;
            break;
        case O_BATCH:
            if ((ok = parse_long(optarg, 1, 10000, &n)))
                o.batch = (int)n;
            break;
        case O_SECONDS:
            ok = parse_double(optarg, 0.1, 3600, &o.seconds);
            break;
        case O_BUDGET:
            ok = parse_double(optarg, 1, 36000, &o.budget);
            break;
        case O_CONNS:
            ok = parse_conns(optarg, &o);
            break;
        case O_STALL:
            ok = parse_double(optarg, 0.01, 60, &o.stall_s);
            break;
        case O_VARIANT:
            o.variant = optarg;
            ok = strcmp(optarg, "single") == 0 || strcmp(optarg, "batched") == 0;
            break;
        case O_NO_CHAIN:
            o.no_chain = true;
            break;
        case O_WHOLE:
            o.whole = true;
            break;
        case 'h':
            fputs(usage, stdout);
            return 0;
        default:
            fputs(usage, stderr);
            return 2;
        }
        if (!ok) {
            fprintf(stderr, "jobd-bench: bad value '%s' for --%s\n", optarg, opts[c - 1].name);
            return 2;
        }
    }
    if (!o.target || !o.workload || optind != argc) {
        fputs(usage, stderr);
        return 2;
    }
    if (!o.label)
        o.label = o.target;
    if (o.seconds < 0)
        o.seconds = strcmp(o.workload, "latency") == 0 ? 10 : 5;
    if (o.n_conns == 0)
        parse_conns("1,8,64,128,256,1000", &o);
    raise_fd_limit();

    if (strcmp(o.target, "jobd") == 0) {
        if (o.n_urls == 0)
            snprintf(o.urls[o.n_urls++], sizeof o.urls[0], "http://127.0.0.1:3001");
        if (!o.batch)
            o.batch = 100;
        return jobd_run(&o);
    }
    if (strcmp(o.target, "beanstalkd") == 0) {
        if (!o.addr[0])
            snprintf(o.addr, sizeof o.addr, "127.0.0.1:11300");
        return bs_run(&o);
    }
    if (strcmp(o.target, "pgloop") == 0) {
        if (!o.batch)
            o.batch = 10;
        return pgloop_run(&o);
    }
    if (strcmp(o.target, "sqliteloop") == 0) {
        if (!o.batch)
            o.batch = 64;
        return sqliteloop_run(&o);
    }
    fprintf(stderr, "jobd-bench: unknown target '%s'\n%s", o.target, usage);
    return 2;
}
