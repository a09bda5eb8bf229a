/*
 * demo.c - `jobctl demo [--count N] [--rate PER_SEC]`: submit a stream of
 * random jobs over the six operations, about one in twenty a quotient or
 * remainder by zero so that failures show too, printing each job and, every
 * ten jobs and at the end, the server's counts.
 */
#include "cli.h"

#include "clock.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>
#include <time.h>

static const char *const demo_ops[] = {"sum",      "difference", "product",
                                       "quotient", "remainder",  "power"};

/* SIGTERM or SIGINT ends the stream after the job in flight, with the
 * summary and exit status 0: stopping a demo is not a failure. */
static volatile sig_atomic_t stop_requested;

static void on_stop(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static uint64_t rnd(uint64_t *state)
{
    /* xorshift64*: enough for a demo, and no global state to share. */
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    return *state * UINT64_C(2685821657736338717);
}

/* A random job; about 1 in 20 divides by zero on purpose. */
static void pick(uint64_t *state, const char **op, int64_t *a, int64_t *b)
{
    if (rnd(state) % 20 == 0) {
        *op = rnd(state) % 2 ? "quotient" : "remainder";
        *a = (int64_t)(rnd(state) % 1000);
        *b = 0;
        return;
    }
    *op = demo_ops[rnd(state) % 6];
    if (*op == demo_ops[5]) { /* power: keep results readable */
        *a = (int64_t)(rnd(state) % 13) - 3;
        *b = (int64_t)(rnd(state) % 11);
    } else {
        *a = (int64_t)(rnd(state) % 1000);
        *b = (int64_t)(rnd(state) % 999) + 1;
    }
}

static void print_counts(struct cli *cli)
{
    json_t *stats;
    json_int_t p = 0, r = 0, s = 0, f = 0;

    if (jobd_client_stats(cli->client, &stats) != JOBD_CLIENT_OK)
        return; /* progress only: a failed look is not worth stopping for */
    json_unpack(stats, "{s:{s?I, s?I, s?I, s?I}}", "jobs", "pending", &p, "processing", &r,
                "succeeded", &s, "failed", &f);
    printf("  server: %" JSON_INTEGER_FORMAT " pending, %" JSON_INTEGER_FORMAT
           " processing, %" JSON_INTEGER_FORMAT " succeeded, %" JSON_INTEGER_FORMAT " failed\n",
           p, r, s, f);
    json_decref(stats);
}

static void pace(int64_t start_ms, int64_t i, double rate)
{
    int64_t due, now = clock_mono_ms();
    struct timespec ts;

    if (rate <= 0)
        return;
    due = start_ms + (int64_t)((double)i * 1000.0 / rate);
    if (due <= now)
        return;
    ts.tv_sec = (due - now) / 1000;
    ts.tv_nsec = (long)((due - now) % 1000) * 1000000L;
    nanosleep(&ts, NULL);
}

int cmd_demo(struct cli *cli, const struct cli_command *cmd, int argc, char **argv)
{
    const char *count_text = NULL, *rate_text = NULL;
    const struct cli_option opts[] = {{"count", &count_text}, {"rate", &rate_text}};
    int64_t count = 50, start, zero_div = 0;
    double rate = 10;
    uint64_t state = 0;
    size_t n;
    int rc = cli_parse(cmd, argc, argv, opts, 2, NULL, 0, 0, &n);

    if (rc != CLI_OK)
        return rc;
    if (count_text && !cli_int(cmd, "--count", count_text, 1, 10000000, &count))
        return CLI_USAGE;
    if (rate_text) {
        char *end;
        rate = strtod(rate_text, &end);
        if (end == rate_text || *end || !(rate >= 0))
            return cli_usage(cmd, "--rate must be a number >= 0 (0: as fast as possible)");
    }
    if (getrandom(&state, sizeof state, 0) != (ssize_t)sizeof state || state == 0)
        state = (uint64_t)clock_now_ms() | 1;

    struct sigaction sa = {.sa_handler = on_stop};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    printf("demo: submitting %lld jobs to %s at %g per second\n", (long long)count, cli->server,
           rate);
    start = clock_mono_ms();
    int64_t i;
    for (i = 0; i < count && !stop_requested; i++) {
        const char *op;
        int64_t a, b;
        json_t *input, *job = NULL;

        pace(start, i, rate);
        pick(&state, &op, &a, &b);
        zero_div += b == 0 && (op == demo_ops[3] || op == demo_ops[4]);
        input = json_pack("{s:I, s:I}", "a", (json_int_t)a, "b", (json_int_t)b);
        if (!input)
            return CLI_FAILED;
        rc = jobd_client_submit(cli->client, op, input, 0, &job);
        json_decref(input);
        if (rc != JOBD_CLIENT_OK)
            return cli_fail(cli);
        printf("[%lld/%lld] %s %lld %s %lld\n", (long long)(i + 1), (long long)count,
               json_string_value(json_object_get(job, "id")), (long long)a, op, (long long)b);
        json_decref(job);
        if ((i + 1) % 10 == 0)
            print_counts(cli);
        fflush(stdout);
    }
    printf("demo: submitted %lld jobs%s, %lld of them dividing by zero (these should fail)\n",
           (long long)i, stop_requested ? " (stopped)" : "", (long long)zero_div);
    print_counts(cli);
    return CLI_OK;
}
