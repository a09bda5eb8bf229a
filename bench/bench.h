/*
 * bench.h - what the parts of jobd-bench share: the monotonic clock, latency
 * samples and their percentiles, the result lines that bench/run turns into
 * the table, and the peak-RSS probe of the server under test.
 * The measuring code of each target (jobd, beanstalkd, libpq, SQLite) lives
 * in its own file and reports only through bench_emit().
 */
#ifndef JOBD_BENCH_H
#define JOBD_BENCH_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What one run of jobd-bench measures; filled from the command line. */
typedef struct bench_opts {
    const char *target;   /* "jobd", "beanstalkd", "pgloop", "sqliteloop" */
    const char *label;    /* the column name in results, e.g. "jobd-sqlite" */
    const char *workload; /* "e2e", "enqueue", "latency", "depth", "conns" */
    const char *variant;  /* e2e, enqueue: "single" or "batched"; NULL: both */
    char urls[4][256];    /* jobd: base URLs (several servers share the bots) */
    int n_urls;
    char addr[256];      /* beanstalkd: host:port */
    char conninfo[1024]; /* pgloop: libpq connection string */
    char path[1024];     /* sqliteloop: database file */
    int pids[4];         /* servers whose peak RSS is reported */
    int n_pids;
    long jobs;       /* e2e: jobs preloaded */
    long depth;      /* depth: pending jobs before the measured phase */
    long depth_work; /* depth: jobs claimed+completed in the measured phase */
    int bots;        /* e2e, depth, latency: concurrent bots */
    int batch;       /* e2e batched: jobs per claim */
    double seconds;  /* latency: producing time; enqueue and conns: per variant */
    double budget;   /* seconds: a preload or drain is cut off here (and says so) */
    int conns[16];   /* conns: the connection counts to try */
    int n_conns;
    double stall_s; /* conns: a request unanswered this long is a stall */
    bool no_chain;  /* jobd: report and claim in separate requests even where the server
                     * takes both in one (POST /jobs/complete with "claim") */
    bool whole;     /* jobd: no "Prefer: return=minimal": whole job objects in every reply */
} bench_opts_t;

/* Nanoseconds on CLOCK_MONOTONIC. */
int64_t bench_now_ns(void);

/* Sleep until the monotonic time t_ns (returns at once if it has passed). */
void bench_sleep_until(int64_t t_ns);

/* A growable set of latency samples in microseconds, safe to add to from
 * several threads. */
typedef struct samples {
    pthread_mutex_t mu;
    double *v;
    size_t n, cap;
} samples_t;

void samples_init(samples_t *s);
void samples_cleanup(samples_t *s);
void samples_add(samples_t *s, double us);
/* Merge src into dst (src is left as it was). */
void samples_merge(samples_t *dst, samples_t *src);
/* The p-th percentile (0..100) by nearest rank; sorts the samples.  0 when
 * there are none. */
double samples_pct(samples_t *s, double p);

/* One result line for bench/run, on stdout:
 *   R <label> <row> <metric> <value> [note...]
 * `value` is a number, or "n/a" with the reason in note.  Flushed at once
 * so that a run cut short keeps what it measured. */
void bench_emit(const bench_opts_t *o, const char *row, const char *metric, double value,
                const char *note_fmt, ...) __attribute__((format(printf, 5, 6)));
void bench_emit_na(const bench_opts_t *o, const char *row, const char *metric, const char *why_fmt,
                   ...) __attribute__((format(printf, 4, 5)));

/* One thread's share of a conns level: its connections repeat one request
 * until `end` and count what they saw. */
typedef struct conns_part {
    const bench_opts_t *o;
    void *arg;         /* the target's own: what to request, and where */
    int first, n;      /* this thread's connections are [first, first + n) */
    int64_t warm, end; /* requests sent before warm are not counted; stop at end */
    samples_t lat;     /* reply times (us) of counted requests */
    long counted;      /* replies after the warm-up */
    long stalls;       /* requests unanswered for longer than --stall (late or still missing) */
    long silent;       /* of those, the ones on a connection that never got a reply */
    long errors;       /* failed requests or bad replies */
} conns_part_t;

/* One conns level: n connections split over a few threads each running
 * fn(conns_part_t *), then the row conns-N (rate, p99, stalls, errors,
 * rss_kb).  `what` names the request, e.g. "GET /jobs/{id}". */
void bench_conns_level(const bench_opts_t *o, int n, void *(*fn)(void *), void *arg,
                       const char *what);

/* The latency producer's connections, the same for every target so that each
 * server is offered the schedule the same way. */
#define BENCH_PRODUCERS 4

/* The latency workload's producer, the same for every target: `producers`
 * threads, each with its own connection (open/close), share one schedule in
 * which job k (0 <= k < scheduled) is due at start + k ms; whichever thread
 * is free takes the next job, so one slow reply does not hold the rest back.
 * submit() stamps job k with `due`, the time it was due (not when it was
 * sent: a server that takes submits slower than the schedule makes the
 * producer fall behind, and that wait is part of every later job's latency),
 * and returns whether it went in.
 * Stops early when *stop becomes non-zero, and at twice the scheduled time
 * when the server cannot keep up (bounded runs).  Returns the count submitted;
 * OUT: *seconds from the first slot to the last reply. */
typedef struct producer_ops {
    void *(*open)(void *arg, int index); /* NULL: this thread submits nothing */
    bool (*submit)(void *conn, long k, int64_t due);
    void (*close)(void *conn);
} producer_ops_t;

long bench_produce(const producer_ops_t *ops, void *arg, int producers, long scheduled,
                   const atomic_int *stop, double *seconds);

/* Wait until *count reaches want, *stop is set or max_s seconds pass. */
void bench_wait_count(const atomic_long *count, long want, const atomic_int *stop, double max_s);

/* A latency row ("latency", or a variant's) every target reports the same
 * way: submit_rate, p50, p99 and max of lat, errors, rss_kb.  `what` names
 * a submit, e.g. "puts". */
void bench_report_latency(const bench_opts_t *o, const char *row, samples_t *lat, long sent,
                          long scheduled, double seconds, int producers, long errors,
                          const char *what);

/* Progress for people, on stderr. */
void bench_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Peak RSS: bench_rss_reset() restarts the kernel's high-water mark of each
 * server (/proc/PID/clear_refs "5"), bench_rss_emit() reports the largest
 * VmHWM among them in KiB as metric "rss_kb" of row. */
void bench_rss_reset(const bench_opts_t *o);
void bench_rss_emit(const bench_opts_t *o, const char *row);

/* The workloads of each target; each returns 0, or 1 after saying why it
 * could not run at all. */
int jobd_run(const bench_opts_t *o);
int bs_run(const bench_opts_t *o);
int pgloop_run(const bench_opts_t *o);
int sqliteloop_run(const bench_opts_t *o);

#endif
