/*
 * store_contract.c - the storage contract: what every backend of store.h must
 * do, written against store.h alone so that it runs unchanged on SQLite and
 * PostgreSQL.  The database is $JOBD_TEST_DB if set, else a fresh SQLite file
 * per test; tests use their own operation names, so they also pass on a
 * shared database that holds other jobs.
 */
#include "testdb.h"
#include "record.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "id.h"

struct fixture {
    store_t *s;
    char op[40];  /* an operation name no other test uses */
    char bot[40]; /* a bot registered for it */
    char bot2[40];
};

/* A pause long enough that the next job or bot is strictly younger (times are ms). */
static void tick(void)
{
    struct timespec ts = {0, 3 * 1000 * 1000};
    nanosleep(&ts, NULL);
}

static int setup(void **state)
{
    static int n;
    struct fixture *f = calloc(1, sizeof *f);
    const char *db = getenv("JOBD_TEST_DB");
    char name[32], *path = NULL;
    char tag[9];
    json_t *bot, *ops;
    err_t e;

    if (!db || !*db) {
        snprintf(name, sizeof name, "contract-%d.db", n++);
        db = path = testdb_path(name);
    }
    f->s = testdb_open(db);
    free(path);
    id_hex(tag, 4);
    snprintf(f->op, sizeof f->op, "op-%s", tag);
    ops = json_pack("[s]", f->op);
    assert_ok(store_bot_register(f->s, "bot-1", ops, &bot, &e), &e);
    snprintf(f->bot, sizeof f->bot, "%s", json_string_value(json_object_get(bot, "id")));
    json_decref(bot);
    tick(); /* registered strictly later: bots are listed oldest first */
    assert_ok(store_bot_register(f->s, "bot-2", ops, &bot, &e), &e);
    snprintf(f->bot2, sizeof f->bot2, "%s", json_string_value(json_object_get(bot, "id")));
    json_decref(bot);
    json_decref(ops);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    store_free(f->s);
    free(f);
    return 0;
}

static const char *sget(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

static json_int_t iget(const json_t *obj, const char *key)
{
    return json_integer_value(json_object_get(obj, key));
}

/* Fail unless obj has exactly the fields f[0..n) plus the `extra` ones. */
static void assert_fields(const json_t *obj, const record_field_t *f, size_t n,
                          const char *const *extra)
{
    size_t want = n;
    for (size_t i = 0; i < n; i++)
        if (!json_object_get(obj, f[i].name))
            fail_msg("field %s is missing", f[i].name);
    for (; extra && *extra; extra++, want++)
        if (!json_object_get(obj, *extra))
            fail_msg("field %s is missing", *extra);
    assert_int_equal(json_object_size(obj), want);
}

/* Fail unless obj has exactly the keys names[] and, if `total`, "total". */
static void assert_keys(const json_t *obj, const char *const *names, bool total)
{
    size_t n = 0;
    assert_true(json_is_object(obj));
    for (; names[n]; n++)
        if (!json_is_integer(json_object_get(obj, names[n])))
            fail_msg("count %s is missing", names[n]);
    if (total && !json_is_integer(json_object_get(obj, "total")))
        fail_msg("count total is missing");
    assert_int_equal(json_object_size(obj), n + total);
}

/* What a bot object has besides its columns, and a job as store_job_get
 * shows it. */
static const char *const bot_extra[] = {"jobs", NULL};
static const char *const with_history[] = {"history", "events", NULL};

static json_t *create(struct fixture *f, const char *op, int64_t priority)
{
    json_t *job, *input = json_pack("{s:i,s:i}", "a", 613, "b", 342);
    err_t e;

    assert_ok(
        store_job_create(
            f->s,
            &(job_spec_t){.operation = op, .input = input, .priority = priority, .max_attempts = 3},
            &job, &e),
        &e);
    json_decref(input);
    return job;
}

/* Claim up to max jobs of f->op for bot. */
static json_t *claim(struct fixture *f, const char *bot, int max, int64_t lease_ms)
{
    const char *ops[] = {f->op};
    json_t *jobs;
    err_t e;

    assert_ok(store_job_claim(f->s, bot, ops, 1, max, lease_ms, false, &jobs, &e), &e);
    assert_true(json_is_array(jobs));
    return jobs;
}

/* Create one job of f->op and claim it for bot with a lease of lease_ms;
 * returns the claimed job. */
static json_t *create_leased(struct fixture *f, const char *bot, int64_t lease_ms)
{
    json_t *jobs, *job;

    json_decref(create(f, f->op, 0));
    jobs = claim(f, bot, 1, lease_ms);
    assert_int_equal(json_array_size(jobs), 1);
    job = json_incref(json_array_get(jobs, 0));
    json_decref(jobs);
    return job;
}

static json_t *create_claimed(struct fixture *f, const char *bot)
{
    return create_leased(f, bot, 30000);
}

static json_t *get(struct fixture *f, const char *id)
{
    json_t *job;
    err_t e;
    assert_ok(store_job_get(f->s, id, &job, &e), &e);
    return job;
}

static int complete(struct fixture *f, const json_t *claimed, const char *bot, bool *repeated,
                    err_t *e)
{
    json_t *job = NULL, *result = json_integer(955);
    int rc = store_job_complete(f->s, sget(claimed, "id"), bot, sget(claimed, "lease"), result, 3,
                                &job, repeated, e);
    json_decref(result);
    json_decref(job);
    return rc;
}

/* ---- schema and lifecycle ------------------------------------------------ */

static void test_schema(void **state)
{
    struct fixture *f = *state;
    int current = -1, latest = -1;
    err_t e;

    assert_ok(store_schema_version(f->s, &current, &latest, &e), &e);
    assert_true(latest >= 1);
    assert_int_equal(current, latest);
    assert_non_null(store_migration_name(1));
    assert_non_null(store_migration_name(latest));
    assert_null(store_migration_name(0));
    assert_null(store_migration_name(latest + 1));
    assert_ok(store_ping(f->s, &e), &e);
    store_free(NULL);
}

/* Rolling the latest migration back leaves an unprepared store one version
 * behind; applying it again gives a working store. */
static void test_migrate_down_up(void **state)
{
    struct fixture *f = *state;
    int current, latest;
    json_t *job;
    err_t e;

    assert_ok(store_migrate_down(f->s, &e), &e);
    assert_ok(store_schema_version(f->s, &current, &latest, &e), &e);
    assert_int_equal(current, latest - 1);
    assert_rc(
        store_job_create(
            f->s,
            &(job_spec_t){.operation = f->op, .input = NULL, .priority = 0, .max_attempts = 3},
            &job, &e),
        JOBD_ESCHEMA, &e);
    assert_rc(store_prepare(f->s, &e), JOBD_ESCHEMA, &e);
    assert_ok(store_migrate_up(f->s, &e), &e);
    assert_ok(store_migrate_up(f->s, &e), &e); /* nothing left to apply */
    assert_ok(store_prepare(f->s, &e), &e);
    assert_ok(store_schema_version(f->s, &current, &latest, &e), &e);
    assert_int_equal(current, latest);
    json_decref(create(f, f->op, 0));
}

/* ---- jobs ---------------------------------------------------------------- */

static void test_job_create_get(void **state)
{
    struct fixture *f = *state;
    json_t *job = create(f, f->op, 7), *got;
    const char *const history[] = {"history", "events", NULL};
    long long ms;
    err_t e;

    assert_fields(job, record_job_fields, record_job_nfields, NULL);
    assert_true(id_is_uuid(sget(job, "id")));
    assert_string_equal(sget(job, "operation"), f->op);
    assert_int_equal(iget(json_object_get(job, "input"), "a"), 613);
    assert_int_equal(iget(job, "priority"), 7);
    assert_string_equal(sget(job, "status"), "pending");
    assert_int_equal(iget(job, "attempts"), 0);
    assert_true(record_parse_time(sget(job, "created_at"), &ms));
    assert_true(llabs(ms - (long long)clock_now_ms()) < 60000);
    assert_true(json_is_null(json_object_get(job, "claimed_at")));
    assert_true(json_is_null(json_object_get(job, "result")));
    assert_true(json_is_null(json_object_get(job, "bot_id")));

    got = get(f, sget(job, "id"));
    assert_fields(got, record_job_fields, record_job_nfields, history);
    assert_int_equal(json_array_size(json_object_get(got, "history")), 0);
    assert_int_equal(json_array_size(json_object_get(got, "events")), 0);
    json_object_del(got, "history");
    json_object_del(got, "events");
    assert_true(json_equal(got, job));
    json_decref(got);
    json_decref(job);

    assert_rc(store_job_get(f->s, "01937000-0000-7000-8000-000000000000", &got, &e), JOBD_ENOTFOUND,
              &e);
}

/* A refused write reports the database's own reason, naming the column. */
static void test_job_create_db_error(void **state)
{
    struct fixture *f = *state;
    json_t *job = NULL, *input = json_object();
    err_t e;

    assert_rc(
        store_job_create(
            f->s,
            &(job_spec_t){.operation = f->op, .input = NULL, .priority = 0, .max_attempts = 3},
            &job, &e),
        JOBD_EDB, &e);
    assert_contains(e.msg, "input");
    assert_null(job);
    assert_rc(
        store_job_create(
            f->s,
            &(job_spec_t){.operation = NULL, .input = input, .priority = 0, .max_attempts = 3},
            &job, &e),
        JOBD_EDB, &e);
    assert_contains(e.msg, "operation");
    json_decref(input);
}

static void test_job_list_pagination(void **state)
{
    struct fixture *f = *state;
    const char *ids[5];
    json_t *made[5], *page, *claimed;
    job_filter_t flt = {.operation = f->op, .limit = 2};
    size_t seen = 0;
    err_t e;

    /* A tick apart: UUIDv7 orders ids by millisecond only. */
    for (int i = 0; i < 5; i++) {
        tick();
        made[i] = create(f, f->op, 0);
        ids[i] = sget(made[i], "id");
    }
    /* Pages of two follow id order and end with an empty page. */
    for (;;) {
        json_t *job;
        size_t i;
        assert_ok(store_job_list(f->s, &flt, &page, &e), &e);
        if (json_array_size(page) == 0) {
            json_decref(page);
            break;
        }
        assert_true(json_array_size(page) <= 2);
        json_array_foreach(page, i, job)
        {
            assert_fields(job, record_job_fields, record_job_nfields, NULL);
            assert_string_equal(sget(job, "operation"), f->op);
            assert_true(seen < 5);
            assert_string_equal(sget(job, "id"), ids[seen]);
            seen++;
        }
        json_decref(page);
        flt.after = ids[seen - 1];
    }
    assert_int_equal(seen, 5);

    claimed = claim(f, f->bot, 1, 30000);
    flt = (job_filter_t){.status = "processing", .operation = f->op, .limit = 1000};
    assert_ok(store_job_list(f->s, &flt, &page, &e), &e);
    assert_int_equal(json_array_size(page), 1);
    assert_string_equal(sget(json_array_get(page, 0), "id"), ids[0]);
    json_decref(page);
    flt.status = "pending";
    assert_ok(store_job_list(f->s, &flt, &page, &e), &e);
    assert_int_equal(json_array_size(page), 4);
    assert_string_equal(sget(json_array_get(page, 0), "id"), ids[1]);
    json_decref(page);
    flt = (job_filter_t){.status = "pending", .after = ids[2], .limit = 1000};
    assert_ok(store_job_list(f->s, &flt, &page, &e), &e);
    assert_true(json_array_size(page) >= 2);
    assert_string_equal(sget(json_array_get(page, 0), "id"), ids[3]);
    json_decref(page);

    /* The jobs in flight page by id too (through jobs_processing_bot since
     * 0009 left them out of jobs_status). */
    json_decref(claim(f, f->bot, 2, 30000));
    flt = (job_filter_t){.status = "processing", .operation = f->op, .limit = 2};
    assert_ok(store_job_list(f->s, &flt, &page, &e), &e);
    assert_int_equal(json_array_size(page), 2);
    assert_string_equal(sget(json_array_get(page, 0), "id"), ids[0]);
    assert_string_equal(sget(json_array_get(page, 1), "id"), ids[1]);
    json_decref(page);
    flt.after = ids[1];
    assert_ok(store_job_list(f->s, &flt, &page, &e), &e);
    assert_int_equal(json_array_size(page), 1);
    assert_string_equal(sget(json_array_get(page, 0), "id"), ids[2]);
    json_decref(page);

    json_decref(claimed);
    for (int i = 0; i < 5; i++)
        json_decref(made[i]);
}

/* ---- claim --------------------------------------------------------------- */

static void test_claim_order(void **state)
{
    struct fixture *f = *state;
    json_t *low_old = create(f, f->op, 0);
    json_t *high_old = (tick(), create(f, f->op, 5));
    json_t *low_new = (tick(), create(f, f->op, 0));
    json_t *high_new = (tick(), create(f, f->op, 5));
    const json_t *order[] = {high_old, high_new, low_old, low_new};
    int64_t before = clock_now_ms();
    json_t *jobs = claim(f, f->bot, 10, 30000), *job;
    const char *const lease_fields[] = {"lease", "lease_expires_at", NULL};
    size_t i;

    assert_int_equal(json_array_size(jobs), 4);
    json_array_foreach(jobs, i, job)
    {
        long long ms;
        const char *lease = sget(job, "lease");

        assert_string_equal(sget(job, "id"), sget(order[i], "id"));
        assert_fields(job, record_job_fields, record_job_nfields, lease_fields);
        assert_string_equal(sget(job, "status"), "processing");
        assert_int_equal(iget(job, "attempts"), 1);
        assert_string_equal(sget(job, "bot_id"), f->bot);
        assert_string_equal(sget(job, "bot_name"), "bot-1");
        assert_true(json_is_string(json_object_get(job, "claimed_at")));
        assert_non_null(lease);
        assert_int_equal(strlen(lease), 32);
        assert_int_equal(strspn(lease, "0123456789abcdef"), 32);
        assert_true(record_parse_time(sget(job, "lease_expires_at"), &ms));
        assert_true(ms >= before + 30000 && ms <= clock_now_ms() + 30000);
    }
    json_decref(jobs);
    json_decref(low_old);
    json_decref(high_old);
    json_decref(low_new);
    json_decref(high_new);
}

static void test_claim_filter_and_max(void **state)
{
    struct fixture *f = *state;
    char other[48];
    const char *only_other[] = {other};
    const char *both[] = {other, f->op, other};
    json_t *jobs, *job, *urgent;
    size_t i;
    err_t e;

    snprintf(other, sizeof other, "%s-other", f->op);
    for (int k = 0; k < 3; k++)
        json_decref(create(f, f->op, 0));
    json_decref(create(f, other, 0));
    json_decref(create(f, other, 0));

    /* Only the operations asked for. */
    assert_ok(store_job_claim(f->s, f->bot, only_other, 1, 10, 30000, false, &jobs, &e), &e);
    assert_int_equal(json_array_size(jobs), 2);
    json_array_foreach(jobs, i, job) assert_string_equal(sget(job, "operation"), other);
    json_decref(jobs);

    /* At most max, until the queue is empty; then an empty array. */
    jobs = claim(f, f->bot, 2, 30000);
    assert_int_equal(json_array_size(jobs), 2);
    json_decref(jobs);
    jobs = claim(f, f->bot, 2, 30000);
    assert_int_equal(json_array_size(jobs), 1);
    json_decref(jobs);
    jobs = claim(f, f->bot, 2, 30000);
    assert_int_equal(json_array_size(jobs), 0);
    json_decref(jobs);

    /* Across operations, priority decides; a repeated operation is harmless. */
    json_decref(create(f, other, 1));
    urgent = create(f, f->op, 9);
    assert_ok(store_job_claim(f->s, f->bot, both, 3, 1, 30000, false, &jobs, &e), &e);
    assert_int_equal(json_array_size(jobs), 1);
    assert_string_equal(sget(json_array_get(jobs, 0), "id"), sget(urgent, "id"));
    json_decref(jobs);
    assert_ok(store_job_claim(f->s, f->bot, both, 3, 5, 30000, false, &jobs, &e), &e);
    assert_int_equal(json_array_size(jobs), 1);
    assert_string_equal(sget(json_array_get(jobs, 0), "operation"), other);
    json_decref(jobs);
    json_decref(urgent);
}

/* A claim of k is k jobs, each with a lease of its own that finishes it and
 * an attempt row of its own, as k claims of one would give. */
static void test_claim_batch(void **state)
{
    struct fixture *f = *state;
    json_t *jobs, *rest, *job, *got, *res = json_integer(1), *leases = json_object();
    job_report_t r[3];
    size_t i;
    err_t e;

    for (int k = 0; k < 5; k++)
        json_decref(create(f, f->op, 0));
    jobs = claim(f, f->bot, 3, 30000);
    assert_int_equal(json_array_size(jobs), 3);
    json_array_foreach(jobs, i, job)
    {
        const json_t *attempt;

        assert_null(json_object_get(leases, sget(job, "lease")));
        json_object_set_new(leases, sget(job, "lease"), json_true());
        got = get(f, sget(job, "id"));
        assert_string_equal(sget(got, "status"), "processing");
        assert_int_equal(json_array_size(json_object_get(got, "history")), 1);
        attempt = json_array_get(json_object_get(got, "history"), 0);
        assert_int_equal(iget(attempt, "attempt"), 1);
        assert_string_equal(sget(attempt, "outcome"), "running");
        assert_string_equal(sget(attempt, "bot_id"), f->bot);
        assert_string_equal(sget(attempt, "bot_name"), "bot-1");
        assert_string_equal(sget(attempt, "started_at"), sget(job, "claimed_at"));
        json_decref(got);
        r[i] = (job_report_t){
            .id = sget(job, "id"), .lease = sget(job, "lease"), .ok = true, .result = res};
    }
    /* Each lease is its own job's: all three finish. */
    assert_ok(store_job_report_many(f->s, f->bot, r, 3, NULL, &e), &e);
    for (i = 0; i < 3; i++) {
        assert_int_equal(r[i].rc, JOBD_OK);
        assert_string_equal(sget(r[i].job, "id"), r[i].id);
        assert_string_equal(sget(r[i].job, "status"), "succeeded");
        json_decref(r[i].job);
    }

    /* The rest, none of those again. */
    rest = claim(f, f->bot2, 5, 30000);
    assert_int_equal(json_array_size(rest), 2);
    json_array_foreach(rest, i, job)
    {
        assert_string_equal(sget(job, "bot_name"), "bot-2");
        for (size_t k = 0; k < 3; k++)
            assert_string_not_equal(sget(job, "id"), r[k].id);
    }
    json_decref(rest);
    json_decref(jobs);
    json_decref(leases);
    json_decref(res);
}

static void test_claim_unknown_bot(void **state)
{
    struct fixture *f = *state;
    const char *ops[] = {f->op};
    json_t *jobs = NULL, *job = create(f, f->op, 0), *got;
    err_t e;

    assert_rc(store_job_claim(f->s, "01937000-0000-7000-8000-000000000000", ops, 1, 1, 30000, false,
                              &jobs, &e),
              JOBD_EUNKNOWNBOT, &e);
    assert_null(jobs);
    got = get(f, sget(job, "id"));
    assert_string_equal(sget(got, "status"), "pending");
    json_decref(got);
    json_decref(job);
}

/* store_job_create_claim of a job of f->op for bot, with priority and key;
 * returns the array of claimed jobs, and the created job in *job. */
static json_t *create_claim(struct fixture *f, const char *bot, int64_t priority, const char *key,
                            bool brief, json_t **job)
{
    json_t *claimed = NULL, *input = json_pack("{s:i,s:i}", "a", 1, "b", 2);
    job_spec_t spec = {.operation = f->op,
                       .input = input,
                       .priority = priority,
                       .max_attempts = 3,
                       .idempotency_key = key};
    err_t e;

    assert_ok(store_job_create_claim(f->s, &spec, brief, bot, 30000, job, &claimed, &e), &e);
    json_decref(input);
    assert_true(json_is_array(claimed));
    return claimed;
}

/* The hand-off: a job submitted while a bot waits is claimed for it in
 * the transaction that inserts it, unless the queue has a job to give
 * first; a bot gone away claims nothing, and the job stays. */
static void test_create_claim(void **state)
{
    struct fixture *f = *state;
    json_t *job, *claimed, *got, *history, *older, *done;
    bool repeated;
    err_t e;

    /* Nothing pending: the new job is the one claimed, leased, with its
     * attempt, and its lease completes it. */
    claimed = create_claim(f, f->bot, 0, NULL, false, &job);
    assert_fields(job, record_job_fields, record_job_nfields, NULL);
    assert_int_equal(json_array_size(claimed), 1);
    got = json_array_get(claimed, 0);
    assert_string_equal(sget(got, "id"), sget(job, "id"));
    assert_string_equal(sget(got, "status"), "processing");
    assert_string_equal(sget(got, "bot_id"), f->bot);
    assert_int_equal(iget(got, "attempts"), 1);
    assert_int_equal(strlen(sget(got, "lease")), 32);
    assert_true(json_is_string(json_object_get(got, "lease_expires_at")));
    done = get(f, sget(job, "id"));
    assert_string_equal(sget(done, "status"), "processing");
    history = json_object_get(done, "history");
    assert_int_equal(json_array_size(history), 1);
    assert_string_equal(sget(json_array_get(history, 0), "outcome"), "running");
    json_decref(done);
    assert_int_equal(complete(f, got, f->bot, &repeated, &e), JOBD_OK);
    assert_false(repeated);
    json_decref(claimed);
    json_decref(job);

    /* An older pending job of the same priority goes first; the new one
     * stays pending.  A new one of higher priority goes before it. */
    older = create(f, f->op, 0);
    tick();
    claimed = create_claim(f, f->bot, 0, NULL, false, &job);
    assert_int_equal(json_array_size(claimed), 1);
    assert_string_equal(sget(json_array_get(claimed, 0), "id"), sget(older, "id"));
    got = get(f, sget(job, "id"));
    assert_string_equal(sget(got, "status"), "pending");
    json_decref(got);
    json_decref(claimed);
    json_decref(older);
    older = job;
    claimed = create_claim(f, f->bot, 5, NULL, true, &job);
    assert_int_equal(json_object_size(job), 2); /* brief: id and status */
    assert_int_equal(json_array_size(claimed), 1);
    assert_string_equal(sget(json_array_get(claimed, 0), "id"), sget(job, "id"));
    json_decref(claimed);
    json_decref(job);

    /* A bot that is gone: the job is made all the same, and stays pending
     * with the one before it. */
    claimed = create_claim(f, "01937000-0000-7000-8000-000000000000", 0, NULL, false, &job);
    assert_int_equal(json_array_size(claimed), 0);
    got = get(f, sget(job, "id"));
    assert_string_equal(sget(got, "status"), "pending");
    json_decref(got);
    json_decref(claimed);
    json_decref(job);
    json_decref(older);

    /* A key already taken makes no job: the answer is the key's job, and
     * the claim takes the queue's first. */
    claimed = create_claim(f, f->bot, 9, "handoff-key", false, &job);
    assert_int_equal(json_array_size(claimed), 1);
    assert_string_equal(sget(json_array_get(claimed, 0), "id"), sget(job, "id"));
    json_decref(claimed);
    older = job;
    claimed = create_claim(f, f->bot, 9, "handoff-key", false, &job);
    assert_string_equal(sget(job, "id"), sget(older, "id"));
    assert_int_equal(json_array_size(claimed), 1);
    assert_string_not_equal(sget(json_array_get(claimed, 0), "id"), sget(job, "id"));
    json_decref(claimed);
    json_decref(job);
    json_decref(older);
}

struct racer {
    store_t *s;
    const char *bot, *op;
    int claimed;
    char ids[40][ID_UUID_LEN];
    int rc;
};

static void *race(void *arg)
{
    struct racer *r = arg;
    const char *ops[] = {r->op};
    err_t e;

    for (;;) {
        json_t *jobs;
        r->rc = store_job_claim(r->s, r->bot, ops, 1, 1, 30000, false, &jobs, &e);
        if (r->rc != JOBD_OK)
            return NULL;
        if (json_array_size(jobs) == 0) {
            json_decref(jobs);
            return NULL;
        }
        snprintf(r->ids[r->claimed++], ID_UUID_LEN, "%s", sget(json_array_get(jobs, 0), "id"));
        json_decref(jobs);
    }
}

/* Threads claiming at once never get the same job. */
static void test_claim_concurrent(void **state)
{
    struct fixture *f = *state;
    struct racer r[4];
    pthread_t t[4];
    json_t *seen = json_object();
    int total = 0;

    for (int i = 0; i < 40; i++)
        json_decref(create(f, f->op, 0));
    for (int i = 0; i < 4; i++) {
        r[i] = (struct racer){.s = f->s, .bot = i % 2 ? f->bot : f->bot2, .op = f->op};
        assert_int_equal(pthread_create(&t[i], NULL, race, &r[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(r[i].rc, JOBD_OK);
        for (int j = 0; j < r[i].claimed; j++) {
            assert_null(json_object_get(seen, r[i].ids[j]));
            json_object_set_new(seen, r[i].ids[j], json_true());
        }
        total += r[i].claimed;
    }
    assert_int_equal(total, 40);
    json_decref(seen);
}

/* Writers at once: each call stands or falls alone.  A backend may group
 * concurrent calls into one transaction (SQLite does); a call the database
 * refuses must undo only itself, and every call that returned OK must be
 * there afterwards. */
struct writer {
    store_t *s;
    const char *op;
    int created, refused, rc;
};

static void *write_mixed(void *arg)
{
    struct writer *w = arg;
    json_t *input = json_pack("{s:i}", "a", 1), *job;
    err_t e;

    for (int i = 0; i < 40; i++) {
        bool bad = i % 3 == 0;
        int rc = store_job_create(w->s,
                                  &(job_spec_t){.operation = w->op,
                                                .input = bad ? NULL : input, /* NOT NULL */
                                                .max_attempts = 3},
                                  &job, &e);
        if (rc == JOBD_OK) {
            w->created++;
            json_decref(job);
        } else if (rc == JOBD_EDB && bad) {
            w->refused++;
        } else {
            w->rc = rc;
            break;
        }
    }
    json_decref(input);
    return NULL;
}

static void test_concurrent_writes_stand_alone(void **state)
{
    struct fixture *f = *state;
    struct writer w[8];
    pthread_t t[8];
    json_t *jobs;
    job_filter_t filter = {.operation = f->op, .limit = 1000};
    int created = 0;
    err_t e;

    for (int i = 0; i < 8; i++) {
        w[i] = (struct writer){.s = f->s, .op = f->op};
        assert_int_equal(pthread_create(&t[i], NULL, write_mixed, &w[i]), 0);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(w[i].rc, JOBD_OK);
        assert_int_equal(w[i].refused, 14); /* i = 0, 3, ..., 39 */
        assert_int_equal(w[i].created, 26);
        created += w[i].created;
    }
    assert_ok(store_job_list(f->s, &filter, &jobs, &e), &e);
    assert_int_equal(json_array_size(jobs), created);
    json_decref(jobs);
}

/* --sync normal changes how far a commit goes, not what it does: writes
 * and reads behave the same in both modes, from one call to the next. */
static void test_sync_modes(void **state)
{
    struct fixture *f = *state;
    json_t *job, *got;
    err_t e;

    assert_ok(store_set_sync(f->s, STORE_SYNC_NORMAL, &e), &e);
    job = create(f, f->op, 0);
    assert_ok(store_job_get(f->s, json_string_value(json_object_get(job, "id")), &got, &e), &e);
    assert_string_equal(json_string_value(json_object_get(got, "status")), "pending");
    json_decref(got);
    assert_ok(store_set_sync(f->s, STORE_SYNC_FULL, &e), &e);
    json_decref(job);
    job = create(f, f->op, 0);
    assert_ok(store_job_get(f->s, json_string_value(json_object_get(job, "id")), &got, &e), &e);
    assert_string_equal(json_string_value(json_object_get(got, "status")), "pending");
    json_decref(got);
    json_decref(job);
}

/* A batch of jobs is one transaction: all in, in order, or none. */
static void test_create_many(void **state)
{
    struct fixture *f = *state;
    json_t *input = json_pack("{s:i}", "a", 1), *jobs = NULL, *listed, *job, *got;
    job_spec_t specs[5];
    job_filter_t filter = {.operation = f->op, .limit = 100};
    int64_t later = clock_now_ms() + 3600 * 1000;
    char want[JOBD_ERR_MSG_MAX + 16];
    size_t i;
    err_t e, one;

    for (int k = 0; k < 5; k++)
        specs[k] =
            (job_spec_t){.operation = f->op, .input = input, .priority = k, .max_attempts = 3};
    specs[2].run_at = later;
    specs[4].max_attempts = 7;
    assert_ok(store_job_create_many(f->s, specs, 5, false, &jobs, &e), &e);
    assert_int_equal(json_array_size(jobs), 5);
    json_array_foreach(jobs, i, job)
    {
        assert_int_equal(iget(job, "priority"), (json_int_t)i);
        assert_string_equal(sget(job, "status"), i == 2 ? "scheduled" : "pending");
        assert_int_equal(iget(job, "max_attempts"), i == 4 ? 7 : 3);
        assert_true(json_equal(json_object_get(job, "input"), input));
        if (i > 0) /* in order, and ids sort by creation */
            assert_true(strcmp(sget(job, "id"), sget(json_array_get(jobs, i - 1), "id")) > 0);
        got = get(f, sget(job, "id"));
        json_object_del(got, "history");
        json_object_del(got, "events");
        assert_true(json_equal(got, job));
        json_decref(got);
    }
    json_decref(jobs);

    /* Brief: each job is its id and status alone, as stored. */
    assert_ok(store_job_create_many(f->s, specs, 5, true, &jobs, &e), &e);
    assert_int_equal(json_array_size(jobs), 5);
    json_array_foreach(jobs, i, job)
    {
        assert_int_equal(json_object_size(job), 2);
        assert_string_equal(sget(job, "status"), i == 2 ? "scheduled" : "pending");
        got = get(f, sget(job, "id"));
        assert_string_equal(sget(got, "status"), sget(job, "status"));
        assert_int_equal(iget(got, "priority"), (json_int_t)i);
        json_decref(got);
    }
    json_decref(jobs);

    /* A refused item is named, with the database's message for it alone. */
    specs[3].input = NULL; /* refused by the database: NOT NULL */
    jobs = NULL;
    assert_rc(store_job_create(f->s, &specs[3], &job, &one), JOBD_EDB, &one);
    assert_rc(store_job_create_many(f->s, specs, 5, false, &jobs, &e), JOBD_EDB, &e);
    assert_null(jobs);
    snprintf(want, sizeof want, "jobs[3]: %s", one.msg);
    assert_string_equal(e.msg, want);
    assert_ok(store_job_list(f->s, &filter, &listed, &e), &e);
    assert_int_equal(json_array_size(listed), 10); /* the first two batches only */
    json_decref(listed);
    json_decref(input);
}

/* A submit whose idempotency key is taken makes no job: it is answered
 * with the job that holds the key, whole or brief, alone or in a batch,
 * and whatever has become of that job since. */
static void test_idempotency_key(void **state)
{
    struct fixture *f = *state;
    json_t *input = json_pack("{s:i}", "a", 1), *other = json_pack("{s:i}", "a", 2);
    json_t *first, *again, *jobs, *listed, *claimed;
    job_spec_t spec = {
        .operation = f->op, .input = input, .max_attempts = 3, .idempotency_key = "order-42"};
    job_spec_t batch[3] = {
        {.operation = f->op, .input = other, .max_attempts = 3, .idempotency_key = "order-42"},
        {.operation = f->op, .input = other, .max_attempts = 3, .idempotency_key = "order-43"},
        {.operation = f->op, .input = other, .max_attempts = 3, .idempotency_key = "order-43"},
    };
    job_filter_t filter = {.operation = f->op, .limit = 100};
    err_t e;

    assert_ok(store_job_create(f->s, &spec, &first, &e), &e);
    assert_string_equal(sget(first, "idempotency_key"), "order-42");
    spec.input = other; /* the rest of a repeat does not matter */
    assert_ok(store_job_create(f->s, &spec, &again, &e), &e);
    assert_true(json_equal(first, again));
    json_decref(again);

    /* In a batch: the taken key answers with the first job, and a key used
     * twice in the batch makes one job. */
    assert_ok(store_job_create_many(f->s, batch, 3, false, &jobs, &e), &e);
    assert_string_equal(sget(json_array_get(jobs, 0), "id"), sget(first, "id"));
    assert_string_equal(sget(json_array_get(jobs, 1), "id"), sget(json_array_get(jobs, 2), "id"));
    assert_string_not_equal(sget(json_array_get(jobs, 1), "id"), sget(first, "id"));
    json_decref(jobs);
    assert_ok(store_job_list(f->s, &filter, &listed, &e), &e);
    assert_int_equal(json_array_size(listed), 2);
    json_decref(listed);

    /* Claimed since: a repeat shows the job as it is now; brief too. */
    claimed = claim(f, f->bot, 1, 30000);
    assert_int_equal(json_array_size(claimed), 1);
    assert_ok(store_job_create_many(f->s, batch, 1, true, &jobs, &e), &e);
    assert_int_equal(json_object_size(json_array_get(jobs, 0)), 2);
    assert_string_equal(sget(json_array_get(jobs, 0), "id"), sget(first, "id"));
    assert_string_equal(sget(json_array_get(jobs, 0), "status"), "processing");
    json_decref(jobs);

    /* No key: every submit is a job of its own. */
    spec.idempotency_key = NULL;
    assert_ok(store_job_create(f->s, &spec, &again, &e), &e);
    assert_true(json_is_null(json_object_get(again, "idempotency_key")));
    json_decref(again);
    json_decref(claimed);
    json_decref(first);
    json_decref(other);
    json_decref(input);
}

/* Reports in one batch are fenced one by one. */
static void test_report_many(void **state)
{
    struct fixture *f = *state;
    json_t *a = create_claimed(f, f->bot), *b = create_claimed(f, f->bot), *res = json_integer(7);
    job_report_t r[3] = {
        {.id = sget(a, "id"), .lease = sget(a, "lease"), .ok = true, .result = res},
        {.id = sget(b, "id"), .lease = "no-such-lease", .ok = true, .result = res},
        {.id = sget(b, "id"), .lease = sget(b, "lease"), .ok = false, .error = "bad"},
    };
    err_t e;

    assert_ok(store_job_report_many(f->s, f->bot, r, 3, NULL, &e), &e);
    assert_int_equal(r[0].rc, JOBD_OK);
    assert_string_equal(sget(r[0].job, "status"), "succeeded");
    assert_int_equal(r[1].rc, JOBD_EMISMATCH);
    assert_null(r[1].job);
    assert_int_equal(r[2].rc, JOBD_OK);
    assert_string_equal(sget(r[2].job, "status"), "failed");
    for (int i = 0; i < 3; i++) {
        json_decref(r[i].job);
        r[i].job = NULL;
    }
    /* again: the finished ones repeat, nothing is recorded twice */
    assert_ok(store_job_report_many(f->s, f->bot, r, 3, NULL, &e), &e);
    assert_true(r[0].repeated);
    assert_true(r[2].repeated);
    for (int i = 0; i < 3; i++)
        json_decref(r[i].job);
    json_decref(res);
    json_decref(a);
    json_decref(b);
}

/* Reports with a claim: one transaction records the reports, then leases
 * the bot what is pending; a claim that fails (an unknown bot) fails the
 * whole call, which then sets no OUT field. */
static void test_report_many_with_claim(void **state)
{
    struct fixture *f = *state;
    const char *ops[] = {f->op, "no.such.op"};
    json_t *a = create_claimed(f, f->bot), *b = create_claimed(f, f->bot), *res = json_integer(7);
    json_t *c = create(f, f->op, 0), *got;
    job_report_t r[2] = {
        {.id = sget(a, "id"), .lease = sget(a, "lease"), .ok = true, .result = res},
        {.id = sget(b, "id"), .lease = "no-such-lease", .ok = true, .result = res},
    };
    job_claim_t claim = {.ops = ops, .nops = 2, .max = 5, .lease_ms = 30000};
    char c_lease[128];
    err_t e;

    assert_ok(store_job_report_many(f->s, f->bot, r, 2, &claim, &e), &e);
    assert_int_equal(r[0].rc, JOBD_OK);
    assert_string_equal(sget(r[0].job, "status"), "succeeded");
    assert_int_equal(r[1].rc, JOBD_EMISMATCH);
    /* c was pending; b is still this bot's, so it is not leased again. */
    assert_int_equal(json_array_size(claim.jobs), 1);
    got = json_array_get(claim.jobs, 0);
    assert_string_equal(sget(got, "id"), sget(c, "id"));
    assert_string_equal(sget(got, "status"), "processing");
    assert_string_equal(sget(got, "bot_id"), f->bot);
    assert_non_null(json_object_get(got, "lease_expires_at"));
    snprintf(c_lease, sizeof c_lease, "%s", sget(got, "lease"));
    json_decref(r[0].job);
    json_decref(claim.jobs);

    /* Nothing pending: the report is recorded, the claim is empty. */
    r[0] =
        (job_report_t){.id = sget(b, "id"), .lease = sget(b, "lease"), .ok = true, .result = res};
    assert_ok(store_job_report_many(f->s, f->bot, r, 1, &claim, &e), &e);
    assert_int_equal(r[0].rc, JOBD_OK);
    assert_string_equal(sget(r[0].job, "status"), "succeeded");
    assert_true(json_is_array(claim.jobs));
    assert_int_equal(json_array_size(claim.jobs), 0);
    json_decref(r[0].job);
    json_decref(claim.jobs);

    /* An unknown bot: the whole call fails and c is untouched. */
    r[0] = (job_report_t){.id = sget(c, "id"), .lease = c_lease, .ok = true, .result = res};
    assert_rc(store_job_report_many(f->s, "no-such-bot", r, 1, &claim, &e), JOBD_EUNKNOWNBOT, &e);
    assert_null(claim.jobs);
    assert_null(r[0].job);
    got = get(f, sget(c, "id"));
    assert_string_equal(sget(got, "status"), "processing");
    json_decref(got);

    json_decref(res);
    json_decref(a);
    json_decref(b);
    json_decref(c);
}

/* Brief reports answer with the job's id and the status it is in now,
 * whichever way it went: succeeded, failed, scheduled for a retry, or a
 * repeat. */
static void test_report_many_brief(void **state)
{
    struct fixture *f = *state;
    json_t *a = create_claimed(f, f->bot), *b = create_claimed(f, f->bot);
    json_t *c = create_claimed(f, f->bot), *res = json_integer(7), *got;
    store_retry_t later = {.base_ms = 3600000, .max_ms = 3600000};
    job_report_t r[4] = {
        {.id = sget(a, "id"), .lease = sget(a, "lease"), .ok = true, .result = res},
        {.id = sget(b, "id"), .lease = sget(b, "lease"), .error = "bad"},
        {.id = sget(c, "id"), .lease = sget(c, "lease"), .error = "busy", .retry = &later},
        {.id = sget(a, "id"), .lease = sget(a, "lease"), .ok = true, .result = res},
    };
    const char *want[4] = {"succeeded", "failed", "scheduled", "succeeded"};
    err_t e;

    for (int i = 0; i < 4; i++)
        r[i].brief = true;
    assert_ok(store_job_report_many(f->s, f->bot, r, 4, NULL, &e), &e);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(r[i].rc, JOBD_OK);
        assert_int_equal(json_object_size(r[i].job), 2);
        assert_string_equal(sget(r[i].job, "id"), r[i].id);
        assert_string_equal(sget(r[i].job, "status"), want[i]);
        got = get(f, r[i].id);
        assert_string_equal(sget(got, "status"), want[i]);
        json_decref(got);
        json_decref(r[i].job);
    }
    assert_true(r[3].repeated);
    json_decref(res);
    json_decref(a);
    json_decref(b);
    json_decref(c);
}

/* Fail unless `part` has exactly the summary fields (and `extra`), each as
 * in `whole`, the same job read whole. */
static void assert_summary(const json_t *part, const json_t *whole, const char *const *extra)
{
    assert_fields(part, record_job_summary_fields, record_job_summary_nfields, extra);
    for (size_t i = 0; i < record_job_summary_nfields; i++) {
        const char *name = record_job_summary_fields[i].name;
        if (!json_equal(json_object_get(part, name), json_object_get(whole, name)))
            fail_msg("summary field %s differs from the whole job's", name);
    }
}

/* A brief claim answers with each job's summary and its lease; a brief
 * report that asks for a summary (a log line at info) gets the summary of
 * the job as it now is, whatever became of it. */
static void test_claim_and_report_summaries(void **state)
{
    struct fixture *f = *state;
    const char *ops[] = {f->op};
    const char *const lease_fields[] = {"lease", "lease_expires_at", NULL};
    json_t *jobs, *job, *whole, *res = json_integer(7);
    store_retry_t later = {.base_ms = 3600000, .max_ms = 3600000};
    job_report_t r[4] = {{.ok = true, .result = res},
                         {.error = "bad"},
                         {.error = "busy", .retry = &later},
                         {.ok = true, .result = res}};
    const char *want[4] = {"succeeded", "failed", "scheduled", "succeeded"};
    size_t i;
    err_t e;

    for (i = 0; i < 3; i++)
        json_decref(create(f, f->op, (int64_t)i));
    assert_ok(store_job_claim(f->s, f->bot, ops, 1, 3, 30000, true, &jobs, &e), &e);
    assert_int_equal(json_array_size(jobs), 3);
    json_array_foreach(jobs, i, job)
    {
        whole = get(f, sget(job, "id"));
        assert_summary(job, whole, lease_fields);
        assert_string_equal(sget(job, "status"), "processing");
        assert_string_equal(sget(job, "bot_name"), "bot-1");
        assert_int_equal(strlen(sget(job, "lease")), 32);
        json_decref(whole);
        r[i].id = sget(job, "id");
        r[i].lease = sget(job, "lease");
        r[i].brief = r[i].summary = true;
    }
    r[3].id = r[0].id; /* a repeat: answered from the attempt it repeats */
    r[3].lease = r[0].lease;
    r[3].brief = r[3].summary = true;
    assert_ok(store_job_report_many(f->s, f->bot, r, 4, NULL, &e), &e);
    assert_true(r[3].repeated);
    assert_int_equal(iget(r[0].job, "result"), 7);
    for (i = 0; i < 4; i++) {
        assert_int_equal(r[i].rc, JOBD_OK);
        whole = get(f, r[i].id);
        assert_summary(r[i].job, whole, NULL);
        assert_string_equal(sget(r[i].job, "status"), want[i]);
        json_decref(whole);
        json_decref(r[i].job);
    }
    json_decref(jobs);
    json_decref(res);
}

/* Every kind of report in one batch gets the answer it would get alone,
 * in batch order: reports of the same job see those before them. */
static void test_report_many_mixed(void **state)
{
    struct fixture *f = *state;
    const store_retry_t retry = {60000, 60000};
    json_t *ok = create_claimed(f, f->bot), *done = create_claimed(f, f->bot);
    json_t *released = create_claimed(f, f->bot), *retried = create_claimed(f, f->bot);
    json_t *other = create_claimed(f, f->bot2), *failed = create_claimed(f, f->bot);
    json_t *expired, *late;
    json_t *res = json_integer(5), *job, *bot;
    bool repeated;
    int n;
    err_t e;
    job_report_t r[] = {
        {.id = sget(ok, "id"), .lease = sget(ok, "lease"), .ok = true, .result = res},
        {.id = sget(done, "id"), .lease = sget(done, "lease"), .ok = true, .result = res},
        {.id = sget(released, "id"), .lease = sget(released, "lease"), .ok = true, .result = res},
        {.id = sget(retried, "id"),
         .lease = sget(retried, "lease"),
         .error = "busy",
         .retry = &retry,
         .duration_ms = 4},
        {.id = sget(other, "id"), .lease = sget(other, "lease"), .ok = true, .result = res},
        {.id = sget(ok, "id"), .lease = sget(ok, "lease"), .ok = true, .result = res},
        {.id = sget(failed, "id"),
         .lease = sget(failed, "lease"),
         .error = "bad",
         .duration_ms = 2},
        {.id = sget(ok, "id"), .lease = sget(ok, "lease"), .error = "late"},
        {.id = "01937000-0000-7000-8000-000000000000", .lease = "x", .ok = true, .result = res},
        {.ok = true, .result = res},  /* expired, below */
        {.ok = true, .result = NULL}, /* late, below */
    };
    const size_t nr = sizeof r / sizeof r[0];
    const int want[] = {JOBD_OK,        JOBD_OK,       JOBD_ERELEASED, JOBD_OK,
                        JOBD_EMISMATCH, JOBD_OK,       JOBD_OK,        JOBD_EFINISHED,
                        JOBD_ENOTFOUND, JOBD_EEXPIRED, JOBD_OK};

    assert_ok(complete(f, done, f->bot, &repeated, &e), &e);
    assert_ok(store_job_release(f->s, sget(released, "id"), "rebalance", &job, &e), &e);
    json_decref(job);
    expired = create_leased(f, f->bot, 1);
    late = create_leased(f, f->bot, 500);
    tick(); /* the 1 ms lease has ended, the 500 ms one not yet: the sweep takes back one */
    assert_ok(store_lease_expire(f->s, clock_now_ms(), &n, &e), &e);
    nanosleep(&(struct timespec){0, 600 * 1000 * 1000}, NULL); /* a lease ended, not swept */
    r[9].id = sget(expired, "id");
    r[9].lease = sget(expired, "lease");
    r[10].id = sget(late, "id");
    r[10].lease = sget(late, "lease");

    assert_ok(store_job_report_many(f->s, f->bot, r, nr, NULL, &e), &e);
    for (size_t i = 0; i < nr; i++) {
        if (r[i].rc != want[i])
            fail_msg("report %zu: rc %d, want %d: %s", i, r[i].rc, want[i], r[i].err.msg);
        assert_true((r[i].rc == JOBD_OK) == (r[i].job != NULL));
    }
    assert_false(r[0].repeated);
    assert_string_equal(sget(r[0].job, "status"), "succeeded");
    assert_int_equal(iget(r[0].job, "result"), 5);
    assert_true(r[1].repeated);
    assert_contains(r[2].err.msg, "released");
    assert_contains(r[2].err.msg, "rebalance");
    assert_false(r[3].repeated);
    assert_string_equal(sget(r[3].job, "status"), "scheduled");
    assert_int_equal(iget(r[3].job, "failures"), 1);
    assert_contains(r[4].err.msg, "held by bot");
    assert_true(r[5].repeated);
    assert_true(json_equal(r[5].job, r[0].job));
    assert_false(r[6].repeated);
    assert_string_equal(sget(r[6].job, "status"), "failed");
    assert_string_equal(sget(r[6].job, "error"), "bad");
    assert_int_equal(iget(r[6].job, "duration_ms"), 2);
    assert_int_equal(iget(r[6].job, "failures"), 1);
    assert_true(json_is_null(json_object_get(r[6].job, "result")));
    assert_contains(r[7].err.msg, "cannot also fail");
    assert_contains(r[9].err.msg, "expired");
    assert_string_equal(sget(r[10].job, "status"), "succeeded");
    assert_true(json_is_null(json_object_get(r[10].job, "result")));

    /* What is recorded is what the one-by-one calls record. */
    job = get(f, sget(ok, "id"));
    assert_int_equal(json_array_size(json_object_get(job, "history")), 1);
    assert_string_equal(sget(json_array_get(json_object_get(job, "history"), 0), "outcome"),
                        "succeeded");
    assert_string_equal(sget(json_array_get(json_object_get(job, "history"), 0), "ended_at"),
                        sget(r[0].job, "finished_at"));
    json_object_del(job, "history");
    json_object_del(job, "events");
    assert_true(json_equal(job, r[0].job));
    json_decref(job);
    job = get(f, sget(failed, "id"));
    assert_string_equal(sget(json_array_get(json_object_get(job, "history"), 0), "outcome"),
                        "failed");
    assert_string_equal(sget(json_array_get(json_object_get(job, "history"), 0), "error"), "bad");
    json_decref(job);
    job = get(f, sget(other, "id"));
    assert_string_equal(sget(job, "status"), "processing");
    json_decref(job);
    assert_ok(store_bot_get(f->s, f->bot, &bot, &e), &e);
    assert_int_equal(iget(bot, "jobs_succeeded"), 3); /* done, ok, late */
    assert_int_equal(iget(bot, "jobs_failed"), 2);    /* retried, failed */
    json_decref(bot);

    for (size_t i = 0; i < nr; i++)
        json_decref(r[i].job);
    json_decref(res);
    json_decref(ok);
    json_decref(done);
    json_decref(released);
    json_decref(retried);
    json_decref(other);
    json_decref(failed);
    json_decref(expired);
    json_decref(late);
}

/* ---- complete, fail and fencing ------------------------------------------ */

static void test_complete_and_repeat(void **state)
{
    struct fixture *f = *state;
    json_t *claimed = create_claimed(f, f->bot), *done, *again, *result = json_integer(955);
    json_t *history, *attempt;
    const char *id = sget(claimed, "id"), *lease = sget(claimed, "lease");
    bool repeated = true;
    err_t e;

    assert_ok(store_job_complete(f->s, id, f->bot, lease, result, 3, &done, &repeated, &e), &e);
    assert_false(repeated);
    assert_fields(done, record_job_fields, record_job_nfields, NULL);
    assert_string_equal(sget(done, "status"), "succeeded");
    assert_int_equal(iget(done, "result"), 955);
    assert_int_equal(iget(done, "duration_ms"), 3);
    assert_true(json_is_string(json_object_get(done, "finished_at")));
    assert_true(json_is_null(json_object_get(done, "error")));
    assert_string_equal(sget(done, "bot_name"), "bot-1");

    /* The same call again: success, repeated, and nothing written. */
    tick();
    assert_ok(store_job_complete(f->s, id, f->bot, lease, result, 99, &again, &repeated, &e), &e);
    assert_true(repeated);
    assert_true(json_equal(again, done));
    json_decref(again);

    again = get(f, id);
    history = json_object_get(again, "history");
    assert_int_equal(json_array_size(history), 1);
    attempt = json_array_get(history, 0);
    assert_fields(attempt, record_attempt_fields, record_attempt_nfields, NULL);
    assert_int_equal(iget(attempt, "attempt"), 1);
    assert_string_equal(sget(attempt, "outcome"), "succeeded");
    assert_string_equal(sget(attempt, "bot_id"), f->bot);
    assert_string_equal(sget(attempt, "ended_at"), sget(done, "finished_at"));
    json_object_del(again, "history");
    json_object_del(again, "events");
    assert_true(json_equal(again, done));
    json_decref(again);

    /* A fail under the lease that completed it is refused. */
    assert_rc(store_job_fail(f->s, id, f->bot, lease, "late", NULL, 1, &again, &repeated, &e),
              JOBD_EFINISHED, &e);
    assert_contains(e.msg, id);

    json_decref(result);
    json_decref(done);
    json_decref(claimed);
}

static void test_fail_and_repeat(void **state)
{
    struct fixture *f = *state;
    json_t *claimed = create_claimed(f, f->bot), *done, *again, *attempt;
    const char *id = sget(claimed, "id"), *lease = sget(claimed, "lease");
    bool repeated = true;
    err_t e;

    assert_ok(
        store_job_fail(f->s, id, f->bot, lease, "division by zero", NULL, 0, &done, &repeated, &e),
        &e);
    assert_false(repeated);
    assert_string_equal(sget(done, "status"), "failed");
    assert_string_equal(sget(done, "error"), "division by zero");
    assert_true(json_is_null(json_object_get(done, "result")));
    assert_int_equal(iget(done, "duration_ms"), 0);

    assert_ok(
        store_job_fail(f->s, id, f->bot, lease, "division by zero", NULL, 0, &again, &repeated, &e),
        &e);
    assert_true(repeated);
    assert_true(json_equal(again, done));
    json_decref(again);
    assert_rc(complete(f, claimed, f->bot, &repeated, &e), JOBD_EFINISHED, &e);

    again = get(f, id);
    assert_int_equal(json_array_size(json_object_get(again, "history")), 1);
    attempt = json_array_get(json_object_get(again, "history"), 0);
    assert_string_equal(sget(attempt, "outcome"), "failed");
    assert_string_equal(sget(attempt, "error"), "division by zero");
    json_decref(again);
    json_decref(done);
    json_decref(claimed);
}

static void test_fencing_mismatch(void **state)
{
    struct fixture *f = *state;
    json_t *claimed = create_claimed(f, f->bot), *other = create_claimed(f, f->bot), *job;
    json_t *forged = json_deep_copy(claimed);
    bool repeated;
    err_t e;

    /* The right lease from the wrong bot. */
    assert_rc(complete(f, claimed, f->bot2, &repeated, &e), JOBD_EMISMATCH, &e);
    assert_contains(e.msg, f->bot2);
    /* A lease this job never had, and another job's lease. */
    json_object_set_new(forged, "lease", json_string("00000000000000000000000000000000"));
    assert_rc(complete(f, forged, f->bot, &repeated, &e), JOBD_EMISMATCH, &e);
    json_object_set(forged, "lease", json_object_get(other, "lease"));
    assert_rc(complete(f, forged, f->bot, &repeated, &e), JOBD_EMISMATCH, &e);
    assert_rc(
        store_job_fail(f->s, sget(claimed, "id"), f->bot, NULL, "x", NULL, 0, &job, &repeated, &e),
        JOBD_EMISMATCH, &e);
    /* No such job. */
    json_object_set_new(forged, "id", json_string("01937000-0000-7000-8000-000000000000"));
    assert_rc(complete(f, forged, f->bot, &repeated, &e), JOBD_ENOTFOUND, &e);

    /* Nothing was recorded: the holder can still finish. */
    job = get(f, sget(claimed, "id"));
    assert_string_equal(sget(job, "status"), "processing");
    json_decref(job);
    assert_ok(complete(f, claimed, f->bot, &repeated, &e), &e);
    assert_false(repeated);

    json_decref(forged);
    json_decref(other);
    json_decref(claimed);
}

/* ---- release, expiry, heartbeat ------------------------------------------ */

static void test_release_and_history(void **state)
{
    struct fixture *f = *state;
    json_t *first = create_claimed(f, f->bot), *job, *second, *history, *attempt;
    const char *id = sget(first, "id");
    bool repeated;
    err_t e;

    assert_ok(store_job_release(f->s, id, "admin release", &job, &e), &e);
    assert_fields(job, record_job_fields, record_job_nfields, with_history);
    assert_string_equal(sget(job, "status"), "pending");
    assert_int_equal(iget(job, "attempts"), 1);
    assert_int_equal(iget(job, "lost"), 1);
    assert_int_equal(iget(job, "failures"), 0);
    attempt = json_array_get(json_object_get(job, "events"), 0);
    assert_fields(attempt, record_event_fields, record_event_nfields, NULL);
    assert_string_equal(sget(attempt, "action"), "release");
    assert_string_equal(sget(attempt, "reason"), "admin release");
    assert_true(json_is_null(json_object_get(job, "bot_id")));
    assert_true(json_is_null(json_object_get(job, "claimed_at")));
    json_decref(job);

    /* The released lease is void, and says when and why. */
    assert_rc(complete(f, first, f->bot, &repeated, &e), JOBD_ERELEASED, &e);
    assert_contains(e.msg, "released at");
    assert_contains(e.msg, "admin release");
    assert_contains(e.msg, sget(first, "lease"));

    assert_rc(store_job_release(f->s, id, "again", &job, &e), JOBD_ENOTPROC, &e);
    assert_rc(store_job_release(f->s, "01937000-0000-7000-8000-000000000000", NULL, &job, &e),
              JOBD_ENOTFOUND, &e);

    /* Another bot takes it and finishes it; the first lease now meets a
     * finished job. */
    job = claim(f, f->bot2, 1, 30000);
    assert_int_equal(json_array_size(job), 1);
    second = json_incref(json_array_get(job, 0));
    json_decref(job);
    assert_string_equal(sget(second, "id"), id);
    assert_int_equal(iget(second, "attempts"), 2);
    assert_ok(complete(f, second, f->bot2, &repeated, &e), &e);
    assert_rc(complete(f, first, f->bot, &repeated, &e), JOBD_EFINISHED, &e);
    assert_rc(store_job_release(f->s, id, NULL, &job, &e), JOBD_ENOTPROC, &e);

    job = get(f, id);
    history = json_object_get(job, "history");
    assert_int_equal(json_array_size(history), 2);
    attempt = json_array_get(history, 0);
    assert_int_equal(iget(attempt, "attempt"), 1);
    assert_string_equal(sget(attempt, "outcome"), "released");
    assert_string_equal(sget(attempt, "error"), "admin release");
    assert_string_equal(sget(attempt, "bot_name"), "bot-1");
    assert_true(json_is_string(json_object_get(attempt, "ended_at")));
    attempt = json_array_get(history, 1);
    assert_int_equal(iget(attempt, "attempt"), 2);
    assert_string_equal(sget(attempt, "outcome"), "succeeded");
    assert_string_equal(sget(attempt, "bot_name"), "bot-2");
    assert_true(json_is_null(json_object_get(attempt, "error")));
    assert_string_equal(sget(job, "bot_id"), f->bot2);
    json_decref(job);
    json_decref(second);
    json_decref(first);
}

static void test_lease_expiry(void **state)
{
    struct fixture *f = *state;
    json_t *jobs, *claimed, *job, *attempt;
    int64_t now = clock_now_ms();
    bool repeated;
    int n = -1;
    err_t e;

    json_decref(create(f, f->op, 0));
    jobs = claim(f, f->bot, 1, 1000);
    claimed = json_incref(json_array_get(jobs, 0));
    json_decref(jobs);

    /* Not yet expired. */
    assert_ok(store_lease_expire(f->s, now - 1000, &n, &e), &e);
    job = get(f, sget(claimed, "id"));
    assert_string_equal(sget(job, "status"), "processing");
    json_decref(job);

    assert_ok(store_lease_expire(f->s, now + 5000, &n, &e), &e);
    assert_true(n >= 1);
    job = get(f, sget(claimed, "id"));
    assert_string_equal(sget(job, "status"), "pending");
    assert_int_equal(iget(job, "attempts"), 1);
    attempt = json_array_get(json_object_get(job, "history"), 0);
    assert_string_equal(sget(attempt, "outcome"), "expired");
    assert_contains(sget(attempt, "error"), "lease expired at ");
    assert_string_equal(sget(attempt, "ended_at"), sget(claimed, "lease_expires_at"));
    json_decref(job);

    assert_rc(complete(f, claimed, f->bot, &repeated, &e), JOBD_EEXPIRED, &e);
    assert_contains(e.msg, "expired");
    assert_rc(store_job_fail(f->s, sget(claimed, "id"), f->bot, sget(claimed, "lease"), "x", NULL,
                             0, &job, &repeated, &e),
              JOBD_EEXPIRED, &e);
    json_decref(claimed);
}

static void test_heartbeat(void **state)
{
    struct fixture *f = *state;
    json_t *jobs, *claimed, *bot, *job, *reply;
    int64_t now = clock_now_ms();
    int n;
    err_t e;

    json_decref(create(f, f->op, 0));
    jobs = claim(f, f->bot, 1, 1000);
    claimed = json_incref(json_array_get(jobs, 0));
    json_decref(jobs);

    assert_ok(store_bot_heartbeat(f->s, f->bot, "processing", 600000, NULL, &reply, &e), &e);
    bot = json_object_get(reply, "bot");
    assert_fields(bot, record_bot_fields, record_bot_nfields, bot_extra);
    assert_string_equal(sget(bot, "state"), "processing");
    assert_int_equal(json_array_size(json_object_get(bot, "jobs")), 1);
    assert_string_equal(json_string_value(json_array_get(json_object_get(bot, "jobs"), 0)),
                        sget(claimed, "id"));
    json_decref(reply);

    /* Renewed: a sweep past the first lease leaves the job with its bot. */
    assert_ok(store_lease_expire(f->s, now + 5000, &n, &e), &e);
    job = get(f, sget(claimed, "id"));
    assert_string_equal(sget(job, "status"), "processing");
    json_decref(job);
    assert_ok(store_lease_expire(f->s, now + 700000, &n, &e), &e);
    job = get(f, sget(claimed, "id"));
    assert_string_equal(sget(job, "status"), "pending");
    json_decref(job);

    assert_rc(store_bot_heartbeat(f->s, "01937000-0000-7000-8000-000000000000", "ready", 1000, NULL,
                                  &bot, &e),
              JOBD_EUNKNOWNBOT, &e);
    /* A state the schema does not know is refused with the database's reason. */
    assert_rc(store_bot_heartbeat(f->s, f->bot, "sleeping", 1000, NULL, &bot, &e), JOBD_EDB, &e);
    assert_contains(e.msg, "state");
    json_decref(claimed);
}

/* ---- retries, scheduling, admin actions, bot health, explain ------------- */

/* A retryable failure within the budget schedules the job after a backoff;
 * the last one fails it; a taken-back attempt does not count. */
static void test_retry_budget(void **state)
{
    struct fixture *f = *state;
    const store_retry_t retry = {1000, 1500};
    json_t *claimed = create_claimed(f, f->bot), *job, *released, *none;
    char id[ID_UUID_LEN];
    int64_t before = clock_now_ms();
    long long run_at;
    bool repeated;
    int n;
    err_t e;

    snprintf(id, sizeof id, "%s", sget(claimed, "id"));
    assert_ok(store_job_release(f->s, id, "rebalance", &released, &e), &e);
    json_decref(released);
    json_decref(claimed);
    for (int k = 1; k <= 3; k++) {
        json_t *jobs = claim(f, f->bot, 1, 30000);
        assert_int_equal(json_array_size(jobs), 1);
        claimed = json_array_get(jobs, 0);
        assert_ok(store_job_fail(f->s, id, f->bot, sget(claimed, "lease"), "timeout", &retry, 1,
                                 &job, &repeated, &e),
                  &e);
        assert_int_equal(iget(job, "failures"), k);
        if (k < 3) {
            /* k-th failure: between half and all of min(1500, 1000 * 2^(k-1)) */
            int64_t ceiling = k == 1 ? 1000 : 1500;
            assert_string_equal(sget(job, "status"), "scheduled");
            assert_true(record_parse_time(sget(job, "run_at"), &run_at));
            assert_true(run_at >= before + ceiling / 2 && run_at <= clock_now_ms() + ceiling);
            none = claim(f, f->bot, 1, 30000);
            assert_int_equal(json_array_size(none), 0);
            json_decref(none);
            assert_ok(store_schedule_due(f->s, run_at - 1, &n, &e), &e);
            assert_ok(store_schedule_due(f->s, run_at, &n, &e), &e);
            assert_true(n >= 1);
            before = clock_now_ms();
        } else {
            assert_string_equal(sget(job, "status"), "failed");
        }
        json_decref(job);
        json_decref(jobs);
    }
    job = get(f, id);
    assert_int_equal(iget(job, "attempts"), 4);
    assert_int_equal(iget(job, "lost"), 1);
    assert_int_equal(iget(job, "max_attempts"), 3);
    json_decref(job);
}

static void test_cancel_and_admin_retry(void **state)
{
    struct fixture *f = *state;
    json_t *claimed = create_claimed(f, f->bot), *job, *pending = create(f, f->op, 0), *reply;
    const char *id = sget(claimed, "id");
    bool repeated;
    err_t e;

    assert_ok(store_job_cancel(f->s, id, "duplicate", &job, &e), &e);
    assert_string_equal(sget(job, "status"), "cancelled");
    assert_true(json_is_string(json_object_get(job, "finished_at")));
    assert_string_equal(sget(json_array_get(json_object_get(job, "history"), 0), "outcome"),
                        "cancelled");
    assert_string_equal(sget(json_array_get(json_object_get(job, "events"), 0), "action"),
                        "cancel");
    json_decref(job);
    assert_rc(complete(f, claimed, f->bot, &repeated, &e), JOBD_ECANCELLED, &e);
    assert_contains(e.msg, "duplicate");
    assert_rc(store_job_cancel(f->s, id, "again", &job, &e), JOBD_ECANCELLED, &e);

    /* The bot that held it learns it from a heartbeat that names it. */
    reply = json_pack("[{s:s}]", "id", id);
    assert_ok(store_bot_heartbeat(f->s, f->bot, "processing", 30000, reply, &job, &e), &e);
    json_decref(reply);
    reply = json_object_get(job, "jobs");
    assert_string_equal(json_string_value(json_array_get(json_object_get(reply, "cancelled"), 0)),
                        id);
    assert_int_equal(json_array_size(json_object_get(reply, "lost")), 0);
    json_decref(job);

    assert_ok(store_job_retry(f->s, id, "needed after all", &job, &e), &e);
    assert_string_equal(sget(job, "status"), "pending");
    assert_int_equal(json_array_size(json_object_get(job, "events")), 2);
    json_decref(job);
    assert_rc(store_job_retry(f->s, id, "x", &job, &e), JOBD_ENOTRETRY, &e);
    assert_ok(store_job_cancel(f->s, sget(pending, "id"), "not needed", &job, &e), &e);
    json_decref(job);
    json_decref(pending);
    json_decref(claimed);
}

/* A heartbeat naming jobs renews only those; the reply sorts what it named. */
static void test_heartbeat_verdicts(void **state)
{
    struct fixture *f = *state;
    json_t *a = create_claimed(f, f->bot), *b = create_claimed(f, f->bot), *named, *reply, *job;
    int64_t now = clock_now_ms();
    int n;
    err_t e;

    named = json_pack("[{s:s,s:{s:i}}]", "id", sget(a, "id"), "progress", "done", 40);
    assert_ok(store_bot_heartbeat(f->s, f->bot, "processing", 600000, named, &reply, &e), &e);
    assert_int_equal(json_array_size(json_object_get(json_object_get(reply, "jobs"), "held")), 2);
    json_decref(reply);
    json_decref(named);
    assert_ok(store_lease_expire(f->s, now + 60000, &n, &e), &e);
    job = get(f, sget(a, "id"));
    assert_string_equal(sget(job, "status"), "processing");
    assert_int_equal(iget(json_object_get(job, "progress"), "done"), 40);
    json_decref(job);
    job = get(f, sget(b, "id"));
    assert_string_equal(sget(job, "status"), "pending");
    json_decref(job);

    named = json_pack("[{s:s},{s:s}]", "id", sget(a, "id"), "id", sget(b, "id"));
    assert_ok(store_bot_heartbeat(f->s, f->bot, "processing", 600000, named, &reply, &e), &e);
    job = json_object_get(reply, "jobs");
    assert_string_equal(json_string_value(json_array_get(json_object_get(job, "held"), 0)),
                        sget(a, "id"));
    assert_string_equal(json_string_value(json_array_get(json_object_get(job, "lost"), 0)),
                        sget(b, "id"));
    json_decref(reply);
    json_decref(named);

    /* A job named twice keeps the later progress; a job never held is lost. */
    named = json_pack("[{s:s,s:i},{s:s},{s:s,s:i},{s:s}]", "id", sget(a, "id"), "progress", 1, "id",
                      "01937000-0000-7000-8000-000000000000", "id", sget(a, "id"), "progress", 2,
                      "id", sget(b, "id"));
    assert_ok(store_bot_heartbeat(f->s, f->bot, "processing", 600000, named, &reply, &e), &e);
    job = json_object_get(reply, "jobs");
    assert_int_equal(json_array_size(json_object_get(job, "held")), 1);
    assert_int_equal(json_array_size(json_object_get(job, "lost")), 2);
    assert_string_equal(json_string_value(json_array_get(json_object_get(job, "lost"), 0)),
                        "01937000-0000-7000-8000-000000000000");
    json_decref(reply);
    json_decref(named);
    job = get(f, sget(a, "id"));
    assert_int_equal(json_integer_value(json_object_get(job, "progress")), 2);
    json_decref(job);
    json_decref(a);
    json_decref(b);
}

/* A bot not seen since before the cut-offs turns unhealthy, then offline,
 * and loses its jobs at once. */
static void test_bot_sweep(void **state)
{
    struct fixture *f = *state;
    json_t *claimed = create_claimed(f, f->bot), *changes, *c, *job, *bot;
    int64_t now = clock_now_ms() + 1000;
    size_t i;
    bool found = false, repeated;
    err_t e;

    assert_ok(store_bot_sweep(f->s, now, now - 600000, &changes, &e), &e);
    json_array_foreach(changes, i, c)
    {
        if (strcmp(sget(c, "id"), f->bot) != 0)
            continue;
        found = true;
        assert_string_equal(sget(c, "state"), "unhealthy");
        assert_string_equal(sget(c, "name"), "bot-1");
        assert_int_equal(json_array_size(json_object_get(c, "jobs")), 1);
    }
    assert_true(found);
    json_decref(changes);
    job = get(f, sget(claimed, "id"));
    assert_string_equal(sget(job, "status"), "pending");
    assert_int_equal(iget(job, "lost"), 1);
    assert_string_equal(sget(json_array_get(json_object_get(job, "history"), 0), "outcome"),
                        "worker_lost");
    json_decref(job);
    assert_rc(complete(f, claimed, f->bot, &repeated, &e), JOBD_ERELEASED, &e);
    assert_contains(e.msg, "missed its heartbeats");

    assert_ok(store_bot_sweep(f->s, now, now, &changes, &e), &e);
    json_decref(changes);
    assert_ok(store_bot_get(f->s, f->bot, &bot, &e), &e);
    assert_string_equal(sget(bot, "state"), "offline");
    assert_int_equal(iget(bot, "jobs_lost"), 1);
    json_decref(bot);
    json_decref(claimed);
}

static void test_explain_facts(void **state)
{
    struct fixture *f = *state;
    json_t *first = create(f, f->op, 5), *second = (tick(), create(f, f->op, 0)), *facts;
    json_t *claimed;
    err_t e;

    assert_ok(store_job_explain(f->s, sget(second, "id"), &facts, &e), &e);
    assert_int_equal(iget(facts, "ahead"), 1);
    assert_int_equal(iget(facts, "live_bots"), 2);
    assert_true(json_is_null(json_object_get(facts, "bot")));
    assert_string_equal(sget(json_object_get(facts, "job"), "id"), sget(second, "id"));
    json_decref(facts);
    claimed = claim(f, f->bot, 1, 30000);
    assert_ok(store_job_explain(f->s, sget(first, "id"), &facts, &e), &e);
    assert_string_equal(sget(json_object_get(facts, "bot"), "name"), "bot-1");
    assert_string_equal(sget(facts, "lease_expires_at"),
                        sget(json_array_get(claimed, 0), "lease_expires_at"));
    json_decref(facts);
    assert_rc(store_job_explain(f->s, "01937000-0000-7000-8000-000000000000", &facts, &e),
              JOBD_ENOTFOUND, &e);
    json_decref(claimed);
    json_decref(first);
    json_decref(second);
}

/* ---- bots ---------------------------------------------------------------- */

static void test_bots(void **state)
{
    struct fixture *f = *state;
    json_t *bot, *bots, *ops = json_pack("[ss]", "sum", "product"), *item, *held[2], *job;
    size_t i, j;
    int found = 0;
    err_t e;

    assert_ok(store_bot_register(f->s, "bot-3", ops, &bot, &e), &e);
    assert_fields(bot, record_bot_fields, record_bot_nfields, bot_extra);
    assert_true(id_is_uuid(sget(bot, "id")));
    assert_string_equal(sget(bot, "name"), "bot-3");
    assert_string_equal(sget(bot, "state"), "ready");
    assert_true(json_equal(json_object_get(bot, "operations"), ops));
    assert_string_equal(sget(bot, "registered_at"), sget(bot, "last_seen_at"));
    json_decref(bot);

    assert_ok(store_bot_get(f->s, f->bot, &bot, &e), &e);
    assert_string_equal(sget(bot, "name"), "bot-1");
    json_decref(bot);
    assert_rc(store_bot_get(f->s, "01937000-0000-7000-8000-000000000000", &bot, &e),
              JOBD_EUNKNOWNBOT, &e);

    /* Oldest registration first, each with the jobs it holds. */
    held[0] = create_claimed(f, f->bot);
    held[1] = create_claimed(f, f->bot);
    assert_ok(store_bot_list(f->s, &bots, &e), &e);
    json_array_foreach(bots, i, item)
    {
        assert_fields(item, record_bot_fields, record_bot_nfields, bot_extra);
        if (strcmp(sget(item, "id"), f->bot) == 0) {
            assert_int_equal(found++, 0);
            assert_int_equal(json_array_size(json_object_get(item, "jobs")), 2);
            for (int k = 0; k < 2; k++) {
                const char *want = sget(held[k], "id");
                bool there = false;
                json_array_foreach(json_object_get(item, "jobs"), j, job)
                {
                    there = there || strcmp(json_string_value(job), want) == 0;
                }
                assert_true(there);
            }
        } else if (strcmp(sget(item, "id"), f->bot2) == 0) {
            assert_int_equal(found++, 1);
            assert_int_equal(json_array_size(json_object_get(item, "jobs")), 0);
        }
    }
    assert_int_equal(found, 2);
    json_decref(held[0]);
    json_decref(held[1]);
    json_decref(bots);
    json_decref(ops);
}

/* ---- stats --------------------------------------------------------------- */

static void test_stats(void **state)
{
    struct fixture *f = *state;
    static const char *const statuses[] = {"pending", "scheduled", "processing", "succeeded",
                                           "failed",  "cancelled", NULL};
    static const char *const states[] = {"ready", "processing", "unhealthy", "offline", NULL};
    json_t *stats, *jobs, *per_op, *claimed;
    bool repeated;
    json_int_t sum = 0;
    err_t e;

    json_decref(create(f, f->op, 0));
    claimed = create_claimed(f, f->bot);
    json_decref(create_claimed(f, f->bot));
    assert_ok(complete(f, claimed, f->bot, &repeated, &e), &e);

    assert_ok(store_stats(f->s, &stats, &e), &e);
    /* The three counts every backend gives, and SQLite's group commit. */
    assert_int_equal(json_object_size(stats), json_object_get(stats, "sqlite") ? 4 : 3);
    jobs = json_object_get(stats, "jobs");
    assert_keys(jobs, statuses, true);
    for (int i = 0; statuses[i]; i++)
        sum += iget(jobs, statuses[i]);
    assert_int_equal(iget(jobs, "total"), sum);
    assert_true(sum >= 3);
    per_op = json_object_get(json_object_get(stats, "operations"), f->op);
    assert_keys(per_op, statuses, false);
    assert_int_equal(iget(per_op, "pending"), 1);
    assert_int_equal(iget(per_op, "processing"), 1);
    assert_int_equal(iget(per_op, "succeeded"), 1);
    assert_int_equal(iget(per_op, "failed"), 0);
    assert_keys(json_object_get(stats, "bots"), states, false);
    assert_true(iget(json_object_get(stats, "bots"), "ready") >= 2);
    json_decref(stats);
    json_decref(claimed);
}

/* ---- datalake outbox ----------------------------------------------------- */

/* The server whose export these tests claim. */
#define SERVER "contract"

/* Mark every job the outbox holds exported, so that what follows sees only
 * this test's jobs even on a shared database. */
static void drain(struct fixture *f)
{
    json_t *jobs, *ids, *job;
    size_t i;
    err_t e;

    for (;;) {
        jobs = testdb_export(f->s, SERVER, 500);
        if (json_array_size(jobs) == 0) {
            json_decref(jobs);
            return;
        }
        ids = json_array();
        json_array_foreach(jobs, i, job) json_array_append(ids, json_object_get(job, "id"));
        assert_ok(store_export_mark(f->s, SERVER, ids, NULL, &e), &e);
        json_decref(ids);
        json_decref(jobs);
    }
}

/* Fail unless `got` is `want` written the same way: the same values, and
 * the same keys in the same order. */
static void assert_same_json(const json_t *got, const json_t *want, const char *what)
{
    char *a = json_dumps(got, JSON_COMPACT | JSON_ENCODE_ANY);
    char *b = json_dumps(want, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!a || !b || strcmp(a, b) != 0)
        fail_msg("%s is not kept as sent:\n  got  %s\n  sent %s", what, a ? a : "(null)",
                 b ? b : "(null)");
    free(a);
    free(b);
}

/* A job's input, result and progress come back as they were sent: numbers
 * past 64-bit integers (1e20 and 1.5e300 are JSON numbers like any other),
 * and keys in their order.  PostgreSQL's jsonb wrote 1e20 out as 21 digits,
 * which jansson cannot read as a number, so such a job could not be
 * submitted (regression, fixed by migration 0010); it also sorted the keys.
 * Each statement that writes one of them: the single and the batch
 * submit, the single and the batch report, a heartbeat's progress. */
static void test_json_kept_as_sent(void **state)
{
    struct fixture *f = *state;
    json_t *input = json_loads("{\"z\": 1e20, \"a\": -1.5e300, \"m\": [0.1, 9223372036854775807,"
                               " {\"y\": 2, \"b\": 1}], \"big\": 123456789012345678901234.5}",
                               0, NULL);
    const job_spec_t spec = {.operation = f->op, .input = input, .max_attempts = 1};
    const job_spec_t specs[] = {spec, spec};
    json_t *one, *many, *claimed, *got, *hb, *reply, *job;
    job_report_t report;
    bool repeated;
    size_t i;
    err_t e;

    assert_non_null(input);
    assert_ok(store_job_create(f->s, &spec, &one, &e), &e);
    assert_same_json(json_object_get(one, "input"), input, "a submitted job's input");
    assert_ok(store_job_create_many(f->s, specs, 2, false, &many, &e), &e);
    json_array_foreach(many, i, job)
        assert_same_json(json_object_get(job, "input"), input, "a batch-submitted job's input");

    claimed = claim(f, f->bot, 10, 30000);
    assert_int_equal(json_array_size(claimed), 3);
    hb = json_pack("[{s:O,s:O},{s:O,s:O}]", "id", json_object_get(json_array_get(claimed, 0), "id"),
                   "progress", input, "id", json_object_get(json_array_get(claimed, 1), "id"),
                   "progress", input);
    assert_ok(store_bot_heartbeat(f->s, f->bot, "processing", 30000, hb, &reply, &e), &e);
    json_decref(reply);
    for (i = 0; i < 2; i++) {
        assert_ok(store_job_get(f->s, sget(json_array_get(claimed, i), "id"), &got, &e), &e);
        assert_same_json(json_object_get(got, "progress"), input, "a heartbeat's progress");
        json_decref(got);
    }

    job = json_array_get(claimed, 0);
    assert_ok(store_job_complete(f->s, sget(job, "id"), f->bot, sget(job, "lease"), input, 1, &got,
                                 &repeated, &e),
              &e);
    assert_same_json(json_object_get(got, "result"), input, "a completed job's result");
    json_decref(got);
    job = json_array_get(claimed, 1);
    report = (job_report_t){
        .id = sget(job, "id"), .lease = sget(job, "lease"), .ok = true, .result = input};
    job = json_array_get(claimed, 2);
    job_report_t reports[] = {
        report, {.id = sget(job, "id"), .lease = sget(job, "lease"), .ok = true, .result = input}};
    assert_ok(store_job_report_many(f->s, f->bot, reports, 2, NULL, &e), &e);
    for (i = 0; i < 2; i++) {
        assert_int_equal(reports[i].rc, JOBD_OK);
        assert_same_json(json_object_get(reports[i].job, "result"), input,
                         "a batch-reported job's result");
        json_decref(reports[i].job);
    }
    json_decref(hb);
    json_decref(claimed);
    json_decref(many);
    json_decref(one);
    json_decref(input);
}

/* The datalake line is the record GET /jobs/{id} shows, value for value,
 * whoever writes it (SQLite's json_object, or jansson on PostgreSQL): text
 * that needs escaping, numbers at the edges, nested input, times before
 * 1970 and in year 1, and the null fields of each way a job ends. */
static void test_export_line_is_the_record(void **state)
{
    struct fixture *f = *state;
    const char *text = "quote\" back\\ nl\n tab\t bell\a del\x7f é 漢 😀 a/b <\\u0000>";
    json_t *input = json_pack("{s:s, s:I, s:I, s:f, s:f, s:{s:[i, n, b, b, {}, []]}, s:s}", "s",
                              text, "min", (json_int_t)INT64_MIN, "max", (json_int_t)INT64_MAX,
                              "tenth", 0.1, "huge", 1.5e300, "nested", "a", 1, 0, 1, "empty", "");
    const job_spec_t specs[] = {
        {.operation = f->op,
         .input = input,
         .priority = -5,
         .max_attempts = 1,
         .idempotency_key = "clé 漢 \"k\""},
        {.operation = f->op, .input = input, .max_attempts = 1, .run_at = -62135596800000},
        {.operation = f->op, .input = input, .max_attempts = 1, .run_at = -1},
    };
    json_t *jobs, *claimed, *pending, *line, *db,
        *result = json_pack("{s:s,s:[f]}", "r", text, "v", 1.25);
    bool repeated;
    size_t i;
    err_t e;

    drain(f);
    assert_ok(store_job_create_many(f->s, specs, 3, false, &jobs, &e), &e);
    claimed = claim(f, f->bot, 10, 30000);
    assert_int_equal(json_array_size(claimed), 3);
    json_array_foreach(claimed, i, line)
    {
        json_t *job = NULL;
        if (i == 0)
            assert_ok(store_job_complete(f->s, sget(line, "id"), f->bot, sget(line, "lease"),
                                         result, 7, &job, &repeated, &e),
                      &e);
        else if (i == 1)
            assert_ok(store_job_fail(f->s, sget(line, "id"), f->bot, sget(line, "lease"), text,
                                     NULL, 0, &job, &repeated, &e),
                      &e);
        else
            assert_ok(store_job_cancel(f->s, sget(line, "id"), text, &job, &e), &e);
        json_decref(job);
    }

    pending = testdb_export(f->s, SERVER, 10);
    assert_int_equal(json_array_size(pending), 3);
    json_array_foreach(pending, i, line)
    {
        assert_ok(store_job_get(f->s, sget(line, "id"), &db, &e), &e);
        json_object_del(db, "history");
        json_object_del(db, "events");
        if (!json_equal(line, db)) {
            char *a = json_dumps(line, JSON_SORT_KEYS), *b = json_dumps(db, JSON_SORT_KEYS);
            fail_msg("export line %zu is not the job's record:\n  line %s\n  job  %s", i, a, b);
        }
        json_decref(db);
    }
    json_decref(pending);
    json_decref(claimed);
    json_decref(jobs);
    json_decref(result);
    json_decref(input);
}

static void test_export(void **state)
{
    struct fixture *f = *state;
    json_t *a, *b, *pending, *ids, *files, *got, *unfinished;
    bool repeated;
    err_t e;

    drain(f);
    a = create_claimed(f, f->bot);
    b = create_claimed(f, f->bot);
    unfinished = create_claimed(f, f->bot);
    assert_ok(complete(f, b, f->bot, &repeated, &e), &e);
    tick();
    assert_ok(store_job_fail(f->s, sget(a, "id"), f->bot, sget(a, "lease"), "boom", NULL, 1, &got,
                             &repeated, &e),
              &e);
    json_decref(got);

    /* Finished jobs only, oldest finish first, as job objects. */
    pending = testdb_export(f->s, SERVER, 10);
    assert_int_equal(json_array_size(pending), 2);
    assert_string_equal(sget(json_array_get(pending, 0), "id"), sget(b, "id"));
    assert_string_equal(sget(json_array_get(pending, 1), "id"), sget(a, "id"));
    assert_fields(json_array_get(pending, 0), record_job_fields, record_job_nfields, NULL);
    json_decref(pending);
    pending = testdb_export(f->s, SERVER, 1);
    assert_int_equal(json_array_size(pending), 1);
    json_decref(pending);

    /* Marking records the jobs and the file sizes together. */
    ids = json_pack("[OO]", json_object_get(b, "id"), json_object_get(a, "id"));
    files = json_pack("{s:i,s:i}", "2026/11/28.jsonl", 120, "2026/11/27.jsonl", 40);
    assert_ok(store_export_mark(f->s, SERVER, ids, files, &e), &e);
    pending = testdb_export(f->s, SERVER, 10);
    assert_int_equal(json_array_size(pending), 0);
    json_decref(pending);
    assert_ok(store_export_files(f->s, &got, &e), &e);
    assert_int_equal(iget(got, "2026/11/28.jsonl"), 120);
    assert_int_equal(iget(got, "2026/11/27.jsonl"), 40);
    json_decref(got);
    json_decref(files);

    /* A later mark moves a file's size; an empty mark changes nothing. */
    files = json_pack("{s:i}", "2026/11/28.jsonl", 240);
    json_decref(ids);
    ids = json_array();
    assert_ok(store_export_mark(f->s, SERVER, ids, files, &e), &e);
    assert_ok(store_export_mark(f->s, SERVER, NULL, NULL, &e), &e);
    assert_ok(store_export_files(f->s, &got, &e), &e);
    assert_int_equal(iget(got, "2026/11/28.jsonl"), 240);
    assert_int_equal(iget(got, "2026/11/27.jsonl"), 40);
    json_decref(got);
    json_decref(files);

    json_decref(ids);
    json_decref(unfinished);
    json_decref(a);
    json_decref(b);
}

/* The export queue follows the job (migration 0004's triggers): a job
 * retried after it was written leaves the queue, so the mark of what was
 * written is refused (the writer cuts it back and writes again), and the
 * job is exported again, with its new outcome, when it finishes again.  A
 * job cancelled before any claim is exported too, and so is one finished in
 * a batch of reports: every path that finishes a job queues it. */
static void test_export_follows_retry(void **state)
{
    struct fixture *f = *state;
    json_t *job, *claimed, *pending, *ids, *cancelled, *batched;
    job_report_t report;
    bool repeated;
    err_t e;

    drain(f);
    claimed = create_claimed(f, f->bot);
    assert_ok(store_job_fail(f->s, sget(claimed, "id"), f->bot, sget(claimed, "lease"), "boom",
                             NULL, 1, &job, &repeated, &e),
              &e);
    assert_string_equal(sget(job, "status"), "failed");
    json_decref(job);
    pending = testdb_export(f->s, SERVER, 10);
    assert_int_equal(json_array_size(pending), 1);
    assert_string_equal(sget(json_array_get(pending, 0), "status"), "failed");
    json_decref(pending);

    /* Retried between the write and the mark. */
    assert_ok(store_job_retry(f->s, sget(claimed, "id"), "once more", &job, &e), &e);
    json_decref(job);
    ids = json_pack("[O]", json_object_get(claimed, "id"));
    assert_rc(store_export_mark(f->s, SERVER, ids, NULL, &e), JOBD_EDB, &e);
    assert_contains(e.msg, "retried");
    pending = testdb_export(f->s, SERVER, 10);
    assert_int_equal(json_array_size(pending), 0);
    json_decref(pending);

    /* Finished again: exported again, as it now is. */
    json_decref(claimed);
    claimed = claim(f, f->bot, 1, 30000);
    assert_int_equal(json_array_size(claimed), 1);
    assert_ok(complete(f, json_array_get(claimed, 0), f->bot, &repeated, &e), &e);
    cancelled = create(f, f->op, 0);
    tick();
    assert_ok(store_job_cancel(f->s, sget(cancelled, "id"), "not needed", &job, &e), &e);
    json_decref(job);
    /* A batch of reports enqueues its finished jobs too. */
    tick();
    batched = create_claimed(f, f->bot);
    report = (job_report_t){
        .id = sget(batched, "id"), .lease = sget(batched, "lease"), .ok = false, .error = "bad"};
    assert_ok(store_job_report_many(f->s, f->bot, &report, 1, NULL, &e), &e);
    assert_int_equal(report.rc, JOBD_OK);
    json_decref(report.job);

    pending = testdb_export(f->s, SERVER, 10);
    assert_int_equal(json_array_size(pending), 3);
    assert_string_equal(sget(json_array_get(pending, 0), "id"),
                        json_string_value(json_array_get(ids, 0)));
    assert_string_equal(sget(json_array_get(pending, 0), "status"), "succeeded");
    assert_string_equal(sget(json_array_get(pending, 1), "id"), sget(cancelled, "id"));
    assert_string_equal(sget(json_array_get(pending, 1), "status"), "cancelled");
    assert_string_equal(sget(json_array_get(pending, 2), "id"), sget(batched, "id"));
    assert_string_equal(sget(json_array_get(pending, 2), "status"), "failed");
    json_decref(pending);
    assert_ok(store_export_mark(f->s, SERVER, ids, NULL, &e), &e);
    drain(f);
    json_decref(batched);

    json_decref(ids);
    json_decref(cancelled);
    json_decref(claimed);
}

/* ---- retention ---------------------------------------------------------- */

/* A new job of f->op, claimed by f->bot and then finished as `how`:
 * "succeeded", "failed", or "cancelled" (which also records an event).
 * Returns the job as claimed (its id and lease). */
static json_t *finished(struct fixture *f, const char *how)
{
    json_t *claimed = create_claimed(f, f->bot), *job;
    const char *id = sget(claimed, "id");
    bool repeated;
    err_t e;

    if (strcmp(how, "succeeded") == 0) {
        assert_ok(complete(f, claimed, f->bot, &repeated, &e), &e);
    } else if (strcmp(how, "failed") == 0) {
        assert_ok(store_job_fail(f->s, id, f->bot, sget(claimed, "lease"), "boom", NULL, 1, &job,
                                 &repeated, &e),
                  &e);
        json_decref(job);
    } else {
        assert_ok(store_job_cancel(f->s, id, "not needed", &job, &e), &e);
        json_decref(job);
    }
    tick(); /* the next job finishes strictly later */
    return claimed;
}

/* Export (claim and mark) only the jobs of `jobs` (NULL-terminated): the
 * other finished jobs stay unexported. */
static void export_only(struct fixture *f, json_t *const *jobs)
{
    json_t *pending, *ids = json_array();
    err_t e;

    pending = testdb_export(f->s, SERVER, 1000);
    for (; *jobs; jobs++)
        json_array_append(ids, json_object_get(*jobs, "id"));
    assert_ok(store_export_mark(f->s, SERVER, ids, NULL, &e), &e);
    json_decref(ids);
    json_decref(pending);
}

static int purge(struct fixture *f, int64_t before, int limit)
{
    int n = -1;
    err_t e;
    assert_ok(store_job_purge(f->s, before, limit, &n, &e), &e);
    return n;
}

static void assert_gone(struct fixture *f, const json_t *job)
{
    json_t *got = NULL;
    err_t e;
    assert_rc(store_job_get(f->s, sget(job, "id"), &got, &e), JOBD_ENOTFOUND, &e);
    assert_null(got);
}

/* Fail unless the job is still there in `status`. */
static void assert_kept(struct fixture *f, const json_t *job, const char *status)
{
    json_t *got = get(f, sget(job, "id"));
    assert_string_equal(sget(got, "status"), status);
    json_decref(got);
}

/* Only exported finished jobs older than the cutoff go, oldest finish first,
 * at most `limit` at a time, with their attempts and events; nothing
 * unexported, recent or unfinished is touched, and nothing that finished
 * after a job still waiting for the datalake. */
static void test_purge(void **state)
{
    struct fixture *f = *state;
    json_t *old_ok, *old_failed, *old_cancelled, *unexported, *recent, *retried, *job;
    json_t *processing, *pending, *scheduled, *input = json_object();
    int64_t cutoff;
    bool repeated;
    err_t e;

    /* What earlier tests left finished goes first, so that the counts
     * below are this test's alone, also on a shared database. */
    drain(f);
    while (purge(f, clock_now_ms() + 1, 1000) == 1000)
        ;

    old_ok = finished(f, "succeeded");
    old_failed = finished(f, "failed");
    old_cancelled = finished(f, "cancelled"); /* an attempt and an event */
    unexported = finished(f, "succeeded");
    /* Exported, then retried by an admin: pending again, with history. */
    retried = finished(f, "failed");
    export_only(f, (json_t *[]){old_ok, old_failed, old_cancelled, retried, NULL});
    processing = create_claimed(f, f->bot);
    tick();
    cutoff = clock_now_ms();
    tick();
    recent = finished(f, "succeeded");
    export_only(f, (json_t *[]){recent, NULL});
    /* Made pending last, so that no claim above takes them. */
    assert_ok(store_job_retry(f->s, sget(retried, "id"), "once more", &job, &e), &e);
    json_decref(job);
    pending = create(f, f->op, 0);
    assert_ok(store_job_create(f->s,
                               &(job_spec_t){.operation = f->op,
                                             .input = input,
                                             .max_attempts = 3,
                                             .run_at = clock_now_ms() + 3600000},
                               &scheduled, &e),
              &e);

    /* The limit holds, and the oldest finish goes first. */
    assert_int_equal(purge(f, cutoff, 2), 2);
    assert_gone(f, old_ok);
    assert_gone(f, old_failed);
    assert_kept(f, old_cancelled, "cancelled");
    assert_int_equal(purge(f, cutoff, 2), 1);
    assert_gone(f, old_cancelled);
    assert_int_equal(purge(f, cutoff, 2), 0);

    /* The rest is untouched. */
    assert_kept(f, unexported, "succeeded");
    assert_kept(f, recent, "succeeded");
    assert_kept(f, retried, "pending");
    assert_kept(f, processing, "processing");
    assert_kept(f, pending, "pending");
    assert_kept(f, scheduled, "scheduled");
    /* The purged job's lease went with its attempts: a late report finds
     * no job, and the bot's held work is the processing job alone. */
    assert_rc(complete(f, old_ok, f->bot, &repeated, &e), JOBD_ENOTFOUND, &e);
    assert_ok(store_bot_get(f->s, f->bot, &job, &e), &e);
    assert_int_equal(json_array_size(json_object_get(job, "jobs")), 1);
    json_decref(job);

    /* The unexported job goes only once it is in the datalake, and the
     * purge goes in finish order: the recent job, exported and past a later
     * cutoff, waits for it. */
    assert_int_equal(purge(f, clock_now_ms() + 1, 1000), 0);
    assert_kept(f, recent, "succeeded");
    assert_kept(f, unexported, "succeeded");
    export_only(f, (json_t *[]){unexported, NULL});
    assert_int_equal(purge(f, clock_now_ms() + 1, 1000), 2);
    assert_gone(f, unexported);
    assert_gone(f, recent);
    assert_kept(f, retried, "pending");

    json_decref(input);
    json_decref(old_ok);
    json_decref(old_failed);
    json_decref(old_cancelled);
    json_decref(unexported);
    json_decref(recent);
    json_decref(retried);
    json_decref(processing);
    json_decref(pending);
    json_decref(scheduled);
}

/* Rolling the latest migration back and applying it again keeps what the
 * datalake still waits for, and what it already has (written when 0004,
 * the export queue, was the latest; it holds for each since). */
static void test_migrate_keeps_export_queue(void **state)
{
    struct fixture *f = *state;
    json_t *written, *waiting, *pending;
    err_t e;

    drain(f);
    while (purge(f, clock_now_ms() + 1, 1000) == 1000)
        ;
    written = finished(f, "succeeded");
    waiting = finished(f, "failed");
    export_only(f, (json_t *[]){written, NULL});

    assert_ok(store_migrate_down(f->s, &e), &e);
    assert_ok(store_migrate_up(f->s, &e), &e);
    assert_ok(store_prepare(f->s, &e), &e);

    pending = testdb_export(f->s, SERVER, 10);
    assert_int_equal(json_array_size(pending), 1);
    assert_string_equal(sget(json_array_get(pending, 0), "id"), sget(waiting, "id"));
    json_decref(pending);
    assert_int_equal(purge(f, clock_now_ms() + 1, 1000), 1);
    assert_gone(f, written);
    assert_kept(f, waiting, "failed");
    drain(f);

    json_decref(written);
    json_decref(waiting);
}

/* Rolling the latest migration back and applying it again keeps every
 * attempt, and the leases still fence: 0008 rebuilt attempts on SQLite and
 * took the index of their leases away on both engines. */
static void test_migrate_keeps_attempts(void **state)
{
    struct fixture *f = *state;
    json_t *first = create_claimed(f, f->bot), *second, *jobs, *job, *history;
    const char *id = sget(first, "id");
    bool repeated;
    err_t e;

    assert_ok(store_job_release(f->s, id, "before the migration", &job, &e), &e);
    json_decref(job);
    jobs = claim(f, f->bot2, 1, 30000);
    second = json_incref(json_array_get(jobs, 0));
    json_decref(jobs);
    assert_string_equal(sget(second, "id"), id);

    assert_ok(store_migrate_down(f->s, &e), &e);
    assert_ok(store_migrate_up(f->s, &e), &e);
    assert_ok(store_prepare(f->s, &e), &e);

    assert_rc(complete(f, first, f->bot, &repeated, &e), JOBD_ERELEASED, &e);
    assert_contains(e.msg, "before the migration");
    assert_rc(complete(f, second, f->bot, &repeated, &e), JOBD_EMISMATCH, &e);
    assert_ok(complete(f, second, f->bot2, &repeated, &e), &e);
    assert_false(repeated);
    assert_ok(complete(f, second, f->bot2, &repeated, &e), &e);
    assert_true(repeated);
    job = get(f, id);
    history = json_object_get(job, "history");
    assert_int_equal(json_array_size(history), 2);
    assert_string_equal(sget(json_array_get(history, 0), "outcome"), "released");
    assert_string_equal(sget(json_array_get(history, 1), "outcome"), "succeeded");
    assert_string_equal(sget(job, "status"), "succeeded");
    json_decref(job);
    json_decref(second);
    json_decref(first);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_schema),
        T(test_job_create_get),
        T(test_job_create_db_error),
        T(test_job_list_pagination),
        T(test_claim_order),
        T(test_claim_filter_and_max),
        T(test_claim_batch),
        T(test_claim_unknown_bot),
        T(test_create_claim),
        T(test_claim_concurrent),
        T(test_concurrent_writes_stand_alone),
        T(test_sync_modes),
        T(test_create_many),
        T(test_idempotency_key),
        T(test_report_many),
        T(test_report_many_with_claim),
        T(test_report_many_brief),
        T(test_claim_and_report_summaries),
        T(test_report_many_mixed),
        T(test_complete_and_repeat),
        T(test_fail_and_repeat),
        T(test_fencing_mismatch),
        T(test_release_and_history),
        T(test_lease_expiry),
        T(test_heartbeat),
        T(test_retry_budget),
        T(test_cancel_and_admin_retry),
        T(test_heartbeat_verdicts),
        T(test_bot_sweep),
        T(test_explain_facts),
        T(test_bots),
        T(test_stats),
        T(test_export),
        T(test_export_line_is_the_record),
        T(test_json_kept_as_sent),
        T(test_export_follows_retry),
        T(test_purge),
        T(test_migrate_keeps_export_queue),
        T(test_migrate_down_up),
        T(test_migrate_keeps_attempts),
    };
#undef T
    return cmocka_run_group_tests_name("store contract", tests, NULL, NULL);
}
