/*
 * test_server_parts.c - unit tests for the server's pieces that need no
 * database: request validation, the error table, routing of unknown paths
 * and methods, the long-poll wait queue, and the record definitions.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "claimnote.h"
#include "err.h"
#include "id.h"
#include "log.h"
#include "record.h"
#include "server.h"
#include "validate.h"
#include "waitq.h"

#include <stdio.h>
#include <string.h>

static void test_body_malformed_names_line_and_column(void **state)
{
    json_t *obj = NULL;
    err_t e;
    const char *body = "{\"operation\": \"sum\",\n \"input\": {\"a\": 1,, }}";
    (void)state;
    assert_int_equal(validate_body(body, strlen(body), false, &obj, &e), JOBD_EJSON);
    assert_null(obj);
    assert_non_null(strstr(e.msg, "line 2"));
    assert_non_null(strstr(e.msg, "column"));
    assert_int_equal(err_http_status(e.rc), 400);
}

static void test_body_must_be_object(void **state)
{
    json_t *obj = NULL;
    err_t e;
    (void)state;
    assert_int_equal(validate_body("[1,2]", 5, false, &obj, &e), JOBD_EFIELD);
    assert_non_null(strstr(e.msg, "an array"));
    assert_int_equal(validate_body("", 0, false, &obj, &e), JOBD_EJSON);
    assert_int_equal(validate_body("", 0, true, &obj, &e), JOBD_OK);
    assert_true(json_is_object(obj));
    json_decref(obj);
    /* duplicate keys are ambiguous: refuse them */
    assert_int_equal(validate_body("{\"a\":1,\"a\":2}", 13, false, &obj, &e), JOBD_EJSON);
}

static void test_fields_name_the_field(void **state)
{
    json_t *o = json_pack("{s:s,s:i,s:f,s:[s,i]}", "s", "x", "n", 5, "f", 1.5, "ops", "sum", 3);
    const char *s;
    int64_t n;
    json_t *ops;
    err_t e;
    (void)state;

    assert_int_equal(validate_string(o, "missing", true, 10, &s, &e), JOBD_EFIELD);
    assert_non_null(strstr(e.msg, "'missing' is required"));
    assert_int_equal(validate_string(o, "missing", false, 10, &s, &e), JOBD_OK);
    assert_null(s);
    assert_int_equal(validate_string(o, "n", true, 10, &s, &e), JOBD_EFIELD);
    assert_non_null(strstr(e.msg, "'n' must be a string, not an integer"));
    assert_int_equal(validate_int(o, "f", true, 0, 10, 0, &n, &e), JOBD_EFIELD);
    assert_non_null(strstr(e.msg, "'f' must be an integer"));
    assert_int_equal(validate_int(o, "n", true, 0, 4, 0, &n, &e), JOBD_EFIELD);
    assert_non_null(strstr(e.msg, "between 0 and 4"));
    assert_int_equal(validate_int(o, "absent", false, 0, 4, 3, &n, &e), JOBD_OK);
    assert_int_equal(n, 3);
    assert_int_equal(validate_names(o, "ops", 8, &ops, &e), JOBD_EFIELD);
    assert_non_null(strstr(e.msg, "item 1"));
    json_decref(o);
}

static void test_names(void **state)
{
    (void)state;
    assert_true(validate_name("sum"));
    assert_true(validate_name("image.resize-v2_x"));
    assert_false(validate_name(""));
    assert_false(validate_name("has space"));
    assert_false(validate_name("semi;colon"));
    assert_false(
        validate_name("0123456789012345678901234567890123456789012345678901234567890123x"));
}

static void test_error_table(void **state)
{
    (void)state;
    assert_string_equal(err_code_str(JOBD_ERELEASED), "lease_released");
    assert_int_equal(err_http_status(JOBD_ERELEASED), 409);
    assert_int_equal(err_http_status(JOBD_EDBDOWN), 503);
    assert_int_equal(err_http_status(JOBD_EUNAUTH), 401);
    assert_int_equal(err_http_status(JOBD_EINPUTSIZE), 413);
    assert_string_equal(err_code_str(-999), "unknown_error");
    assert_int_equal(err_http_status(-999), 500);
}

static void dispatch(const char *method, const char *path, reply_t *rep)
{
    server_t srv;
    req_t req;
    memset(&srv, 0, sizeof srv);
    memset(&req, 0, sizeof req);
    memset(rep, 0, sizeof *rep);
    req.method = method;
    req.path = path;
    router_dispatch(&srv, &req, rep);
}

static void test_routes_unknown_and_wrong_method(void **state)
{
    reply_t rep;
    (void)state;
    dispatch("GET", "/nope", &rep);
    assert_int_equal(rep.err.rc, JOBD_ENOROUTE);
    dispatch("GET", "/jobs/", &rep);
    assert_int_equal(rep.err.rc, JOBD_ENOROUTE);
    dispatch("GET", "//jobs", &rep);
    assert_int_equal(rep.err.rc, JOBD_ENOROUTE);
    dispatch("DELETE", "/jobs", &rep);
    assert_int_equal(rep.err.rc, JOBD_EMETHOD);
    assert_string_equal(rep.allow, "POST, GET");
    dispatch("GET", "/jobs/abc/complete", &rep);
    assert_int_equal(rep.err.rc, JOBD_EMETHOD);
    assert_string_equal(rep.allow, "POST");
}

static int woken;
static void wake(waiter_t *w)
{
    (void)w;
    woken++;
}
static void suspend(waiter_t *w)
{
    (void)w;
}

static void test_waitq_wakes_matching_waiters(void **state)
{
    waitq_t *q = waitq_new();
    json_t *sum = json_pack("[s]", "sum"), *prod = json_pack("[s,s]", "product", "power");
    waiter_t a = {.ops = sum, .deadline = 100, .wake = wake};
    waiter_t b = {.ops = prod, .deadline = 200, .wake = wake};
    (void)state;

    woken = 0;
    assert_true(waitq_park(q, &a, waitq_seq(q), suspend));
    assert_true(waitq_park(q, &b, waitq_seq(q), suspend));
    assert_int_equal(waitq_count(q), 2);
    waitq_announce(q, "power", 1);
    assert_int_equal(woken, 1);
    assert_false(b.parked);
    assert_true(a.parked);
    /* a job announced between looking and parking must not be missed */
    {
        uint64_t seen = waitq_seq(q);
        waitq_announce(q, "other", 1);
        assert_false(waitq_park(q, &b, seen, suspend));
    }
    assert_int_equal(waitq_expire(q, 99, false), 0);
    assert_int_equal(waitq_expire(q, 100, false), 1);
    assert_int_equal(waitq_count(q), 0);
    assert_true(waitq_park(q, &a, waitq_seq(q), suspend));
    waitq_cancel(q, &a);
    assert_int_equal(waitq_expire(q, 0, true), 0);
    /* once closed (stopping), parked waiters are woken and nothing parks */
    assert_true(waitq_park(q, &a, waitq_seq(q), suspend));
    woken = 0;
    waitq_close(q);
    assert_int_equal(woken, 1);
    assert_false(waitq_park(q, &a, waitq_seq(q), suspend));
    waitq_free(q);
    json_decref(sum);
    json_decref(prod);
}

/* The hand-off: a submit takes the oldest waiter of its operation that
 * has a bot (not woken: its deadline and a close no longer see it), and
 * gives it the jobs, or, with none, wakes it as an announcement would. */
static void test_waitq_take_and_give(void **state)
{
    waitq_t *q = waitq_new();
    json_t *sum = json_pack("[s]", "sum"), *jobs = json_pack("[{s:s}]", "id", "j1");
    waiter_t nobot = {.ops = sum, .deadline = 100, .wake = wake};
    waiter_t a = {.ops = sum, .deadline = 100, .bot_id = "bot-a", .lease_ms = 5000, .wake = wake};
    waiter_t b = {.ops = sum, .deadline = 100, .bot_id = "bot-b", .wake = wake};
    (void)state;

    woken = 0;
    assert_true(waitq_park(q, &nobot, waitq_seq(q), suspend));
    assert_true(waitq_park(q, &a, waitq_seq(q), suspend));
    assert_true(waitq_park(q, &b, waitq_seq(q), suspend));
    assert_null(waitq_take(q, "product"));
    assert_ptr_equal(waitq_take(q, "sum"), &a);
    assert_int_equal(woken, 0);
    assert_false(a.parked);
    assert_int_equal(waitq_count(q), 2);
    assert_int_equal(waitq_expire(q, 100, false), 2); /* not a: it is taken */
    waitq_give(q, &a, jobs);
    assert_int_equal(woken, 3);
    assert_ptr_equal(a.handed, jobs);
    assert_false(waitq_rerun(q, &a)); /* handed, not announced */
    assert_int_equal(waitq_handoffs(q), 1);

    a.handed = NULL;
    assert_true(waitq_park(q, &a, waitq_seq(q), suspend));
    assert_ptr_equal(waitq_take(q, "sum"), &a);
    waitq_give(q, &a, NULL);
    assert_null(a.handed);
    assert_true(waitq_rerun(q, &a)); /* claims again, as if announced */
    assert_int_equal(waitq_handoffs(q), 1);
    waitq_free(q);
    json_decref(jobs);
    json_decref(sum);
}

/* The summary is a part of the job: each of its fields is a job field of
 * the same type, named once. */
static void test_summary_is_part_of_the_job(void **state)
{
    (void)state;
    for (size_t i = 0; i < record_job_summary_nfields; i++) {
        const record_field_t *s = &record_job_summary_fields[i];
        size_t found = 0;
        for (size_t j = 0; j < record_job_nfields; j++)
            if (strcmp(record_job_fields[j].name, s->name) == 0) {
                found++;
                assert_int_equal(record_job_fields[j].type, s->type);
            }
        if (found != 1)
            fail_msg("summary field %s is in JOB_FIELDS %zu times", s->name, found);
        for (size_t k = 0; k < i; k++)
            assert_string_not_equal(record_job_summary_fields[k].name, s->name);
    }
}

static void test_record_values(void **state)
{
    json_t *v;
    long long ms;
    (void)state;
    v = record_value(REC_TIME, "1787947621123");
    assert_string_equal(json_string_value(v), "2026-08-28T20:07:01.123Z");
    assert_true(record_parse_time(json_string_value(v), &ms));
    assert_int_equal(ms, 1787947621123LL);
    json_decref(v);
    v = record_value(REC_JSON, "{\"a\":1}");
    assert_true(json_is_object(v));
    json_decref(v);
    assert_true(json_is_null(record_value(REC_INT, NULL)));
    assert_null(record_value(REC_INT, "12x"));
    assert_null(record_value(REC_JSON, "{bad"));
    /* An integer handed over as one shows as its text form would. */
    v = record_value_int(REC_TIME, 1787947621123LL);
    assert_string_equal(json_string_value(v), "2026-08-28T20:07:01.123Z");
    json_decref(v);
    v = record_value_int(REC_INT, -42);
    assert_int_equal(json_integer_value(v), -42);
    json_decref(v);
    assert_null(record_value_int(REC_TEXT, 7));
    assert_null(record_value_int(REC_JSON, 7));
    assert_non_null(strstr(record_job_columns(), "id, operation, input"));
    assert_int_equal(record_job_nfields, 20);
}

static void test_ids(void **state)
{
    char a[ID_UUID_LEN], b[ID_UUID_LEN], h[33];
    (void)state;
    id_uuid7(a);
    id_uuid7(b);
    assert_true(id_is_uuid(a));
    assert_int_equal(strlen(a), 36);
    assert_int_equal(a[14], '7');           /* version 7 */
    assert_non_null(strchr("89ab", a[19])); /* variant 10 */
    assert_true(strcmp(a, b) != 0);
    /* ids made in a burst (same millisecond) still sort in creation order */
    for (int i = 0; i < 10000; i++) {
        id_uuid7(b);
        assert_true(strcmp(a, b) < 0);
        memcpy(a, b, sizeof a);
    }
    id_hex(h, 16);
    assert_int_equal(strlen(h), 32);
    assert_false(id_is_uuid("not-a-uuid"));
}

/* One job wakes one of several idle waiters, oldest first, not all of them;
 * a wake whose connection went away before its claim ran again is passed on;
 * a claim that filled its max passes one on; work of unknown kind wakes all. */
static void test_waitq_wakes_one_per_job(void **state)
{
    waitq_t *q = waitq_new();
    json_t *sum = json_pack("[s]", "sum");
    waiter_t w[4];
    (void)state;

    for (int i = 0; i < 4; i++) {
        w[i] = (waiter_t){.ops = sum, .deadline = 100, .wake = wake};
        assert_true(waitq_park(q, &w[i], waitq_seq(q), suspend));
    }
    woken = 0;
    waitq_announce(q, "sum", 1);
    assert_int_equal(woken, 1);
    assert_false(w[0].parked);
    assert_int_equal(waitq_count(q), 3);

    /* w[0]'s connection closes before its claim runs: w[1] gets the wake. */
    waitq_cancel(q, &w[0]);
    assert_int_equal(woken, 2);
    assert_false(w[1].parked);
    /* w[1] claims again (the wake is spent), fills its max and passes one on. */
    assert_true(waitq_rerun(q, &w[1]));
    assert_false(waitq_rerun(q, &w[1]));
    waitq_pass(q, sum);
    assert_int_equal(woken, 3);
    assert_false(w[2].parked);
    waitq_cancel(q, &w[1]); /* its claim ran: nothing to pass on */
    assert_int_equal(woken, 3);

    /* Three jobs for two parked waiters wake both; then nothing is left. */
    assert_true(waitq_rerun(q, &w[2]));
    assert_true(waitq_park(q, &w[2], waitq_seq(q), suspend));
    waitq_announce(q, "sum", 3);
    assert_int_equal(woken, 5);
    assert_int_equal(waitq_count(q), 0);

    /* Leases back to pending (kind unknown) wake everyone. */
    for (int i = 0; i < 4; i++) {
        waitq_rerun(q, &w[i]);
        assert_true(waitq_park(q, &w[i], waitq_seq(q), suspend));
    }
    waitq_announce(q, NULL, 0);
    assert_int_equal(woken, 9);
    waitq_free(q);
    json_decref(sum);
}

/* Callers that build a log line's text with work of their own ask first. */
/* A note is taken once; a later claim of the job replaces it; notes of
 * many jobs live side by side (up to slot collisions, which only drop a
 * note); a text that does not fit is not noted, rather than cut. */
static void test_claimnotes(void **state)
{
    claimnotes_t *t = claimnote_new();
    claimnote_t n;
    char id[64], what[32], long_what[CLAIMNOTE_WHAT + 1];
    int kept = 0;
    (void)state;

    assert_false(claimnote_take(t, "0193a000-0000-7000-8000-000000000001", &n));
    claimnote_put(t, "0193a000-0000-7000-8000-000000000001", "613 sum 342", "bot-1");
    claimnote_put(t, "0193a000-0000-7000-8000-000000000001", "613 sum 342", "bot-2");
    assert_true(claimnote_take(t, "0193a000-0000-7000-8000-000000000001", &n));
    assert_string_equal(n.what, "613 sum 342");
    assert_string_equal(n.bot_name, "bot-2");
    assert_false(claimnote_take(t, "0193a000-0000-7000-8000-000000000001", &n));

    for (int i = 0; i < 400; i++) {
        snprintf(id, sizeof id, "0193a000-0000-7000-8000-%012d", i);
        snprintf(what, sizeof what, "%d sum %d", i, i);
        claimnote_put(t, id, what, "bot-1");
    }
    for (int i = 0; i < 400; i++) {
        snprintf(id, sizeof id, "0193a000-0000-7000-8000-%012d", i);
        snprintf(what, sizeof what, "%d sum %d", i, i);
        if (claimnote_take(t, id, &n)) {
            assert_string_equal(n.what, what); /* a note is its own job's or none */
            kept++;
        }
    }
    assert_true(kept > 300); /* 400 jobs in 4096 slots: few collide */

    memset(long_what, 'x', sizeof long_what - 1);
    long_what[sizeof long_what - 1] = '\0';
    claimnote_put(t, "0193a000-0000-7000-8000-000000000002", long_what, "bot-1");
    assert_false(claimnote_take(t, "0193a000-0000-7000-8000-000000000002", &n));
    claimnote_free(t);
}

static void test_log_enabled(void **state)
{
    (void)state;
    log_set_level(LOG_WARN);
    assert_false(log_enabled(LOG_INFO));
    assert_true(log_enabled(LOG_WARN));
    assert_true(log_enabled(LOG_ERROR));
    log_set_level(LOG_INFO);
    assert_true(log_enabled(LOG_INFO));
    assert_false(log_enabled(LOG_DEBUG));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_body_malformed_names_line_and_column),
        cmocka_unit_test(test_body_must_be_object),
        cmocka_unit_test(test_fields_name_the_field),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_error_table),
        cmocka_unit_test(test_routes_unknown_and_wrong_method),
        cmocka_unit_test(test_waitq_wakes_matching_waiters),
        cmocka_unit_test(test_waitq_take_and_give),
        cmocka_unit_test(test_summary_is_part_of_the_job),
        cmocka_unit_test(test_waitq_wakes_one_per_job),
        cmocka_unit_test(test_record_values),
        cmocka_unit_test(test_ids),
        cmocka_unit_test(test_log_enabled),
        cmocka_unit_test(test_claimnotes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
