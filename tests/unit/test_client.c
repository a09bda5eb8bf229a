/*
 * test_client.c - the client library against a scripted HTTP server
 * (libmicrohttpd in this process): each test sets the next reply, makes one
 * call, and checks both the request the library sent (method, path, body,
 * headers) and what it made of the reply, as docs/api.md defines them.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "jobd/jobd.h"

#include <microhttpd.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- the scripted server ------------------------------------------------- */

static struct fake {
    struct MHD_Daemon *daemon;
    char url[64];
    pthread_mutex_t lock;
    /* the next reply */
    unsigned status;
    char body[2048];
    int delay_ms;          /* hold the reply this long (a long poll) */
    volatile int released; /* ends a delay early */
    /* the last request */
    char method[16];
    char path[512];
    char query[512];
    char request[4096];
    char auth[256];
    char request_id[128];
    char prefer[128];
    int connections;
} fake;

struct upload {
    char data[4096];
    size_t len;
};

static void reply_with(unsigned status, const char *body)
{
    pthread_mutex_lock(&fake.lock);
    fake.status = status;
    snprintf(fake.body, sizeof fake.body, "%s", body);
    fake.delay_ms = 0;
    pthread_mutex_unlock(&fake.lock);
}

static enum MHD_Result collect_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
    size_t n = strlen(fake.query);
    snprintf(fake.query + n, sizeof fake.query - n, "%s%s=%s", n ? "&" : "", key,
             value ? value : "");
    return MHD_YES;
}

static void hold_reply(void)
{
    for (int waited = 0; waited < fake.delay_ms && !fake.released; waited += 10) {
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    struct upload *up = *con_cls;
    struct MHD_Response *resp;
    const char *h;
    enum MHD_Result ret;

    if (!up) {
        *con_cls = calloc(1, sizeof *up);
        return *con_cls ? MHD_YES : MHD_NO;
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        if (up->len + n >= sizeof up->data)
            n = sizeof up->data - 1 - up->len;
        memcpy(up->data + up->len, upload_data, n);
        up->len += n;
        *upload_data_size = 0;
        return MHD_YES;
    }
    pthread_mutex_lock(&fake.lock);
    snprintf(fake.method, sizeof fake.method, "%s", method);
    snprintf(fake.path, sizeof fake.path, "%s", url);
    snprintf(fake.request, sizeof fake.request, "%.*s", (int)up->len, up->data);
    h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    snprintf(fake.auth, sizeof fake.auth, "%s", h ? h : "");
    h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Request-Id");
    snprintf(fake.request_id, sizeof fake.request_id, "%s", h ? h : "");
    h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Prefer");
    snprintf(fake.prefer, sizeof fake.prefer, "%s", h ? h : "");
    fake.query[0] = '\0';
    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, collect_arg, NULL);
    pthread_mutex_unlock(&fake.lock);
    hold_reply();
    resp = MHD_create_response_from_buffer(strlen(fake.body), fake.body, MHD_RESPMEM_MUST_COPY);
    MHD_add_response_header(resp, "Content-Type", "application/json");
    ret = MHD_queue_response(conn, fake.status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    free(*con_cls);
    *con_cls = NULL;
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        pthread_mutex_lock(&fake.lock);
        fake.connections++;
        pthread_mutex_unlock(&fake.lock);
    }
}

static int start_fake(void **state)
{
    const union MHD_DaemonInfo *info;

    memset(&fake, 0, sizeof fake);
    pthread_mutex_init(&fake.lock, NULL);
    fake.daemon =
        MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, 0, NULL,
                         NULL, on_request, NULL, MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
                         MHD_OPTION_NOTIFY_CONNECTION, on_connection, NULL, MHD_OPTION_END);
    if (!fake.daemon)
        return -1;
    info = MHD_get_daemon_info(fake.daemon, MHD_DAEMON_INFO_BIND_PORT);
    snprintf(fake.url, sizeof fake.url, "http://127.0.0.1:%u", (unsigned)info->port);
    return 0;
}

static int stop_fake(void **state)
{
    fake.released = 1;
    MHD_stop_daemon(fake.daemon);
    pthread_mutex_destroy(&fake.lock);
    return 0;
}

static jobd_client_t *client_for(const char *url, const char *token)
{
    jobd_client_options_t opts = {.base_url = url, .admin_token = token, .timeout_ms = 3000};
    jobd_client_t *c = jobd_client_new(&opts);
    assert_non_null(c);
    return c;
}

/* The request body as JSON, for field checks independent of key order. */
static json_t *sent_body(void)
{
    json_t *doc = json_loads(fake.request, 0, NULL);
    if (!doc)
        fail_msg("request body is not JSON: '%s'", fake.request);
    return doc;
}

static const char *const ops[] = {"sum", "product"};

/* ---- tests ---------------------------------------------------------------- */

static void test_register(void **state)
{
    jobd_client_t *c = client_for(fake.url, NULL);
    char id[JOBD_ID_MAX];
    json_t *body;

    reply_with(201, "{\"bot_id\": \"0193-bot\", \"bot\": {\"id\": \"0193-bot\"}}");
    assert_int_equal(jobd_client_register(c, "bot-1", ops, 2, id), JOBD_CLIENT_OK);
    assert_string_equal(id, "0193-bot");
    assert_string_equal(fake.method, "POST");
    assert_string_equal(fake.path, "/bots/register");
    body = sent_body();
    assert_string_equal(json_string_value(json_object_get(body, "name")), "bot-1");
    assert_int_equal(json_array_size(json_object_get(body, "operations")), 2);
    assert_string_equal(fake.auth, ""); /* the token is for admin calls only */
    json_decref(body);

    reply_with(201, "{\"bot\": {}}");
    assert_int_equal(jobd_client_register(c, "bot-1", ops, 2, id), JOBD_CLIENT_EPROTO);
    assert_int_equal(jobd_client_register(c, "", ops, 2, id), JOBD_CLIENT_EINVAL);
    assert_int_equal(jobd_client_register(c, "bot-1", ops, 0, id), JOBD_CLIENT_EINVAL);
    jobd_client_free(c);
}

static void test_claim(void **state)
{
    jobd_client_t *c = client_for(fake.url, NULL);
    jobd_claim_request_t req = {
        .bot_id = "b1", .operations = ops, .n_operations = 2, .wait_ms = 100, .max = 2};
    jobd_job_t *jobs = NULL;
    size_t n = 99;
    json_t *body;

    reply_with(200, "{\"jobs\": [{\"id\": \"j1\", \"operation\": \"sum\", \"input\": {\"a\": 613, "
                    "\"b\": 342}, \"status\": \"processing\", \"lease\": \"L1\"}, {\"id\": \"j2\", "
                    "\"operation\": \"product\", \"input\": {}, \"lease\": \"L2\"}]}");
    assert_int_equal(jobd_client_claim(c, &req, &jobs, &n), JOBD_CLIENT_OK);
    assert_int_equal(n, 2);
    assert_string_equal(jobs[0].id, "j1");
    assert_string_equal(jobs[0].operation, "sum");
    assert_string_equal(jobs[0].lease, "L1");
    assert_int_equal(json_integer_value(json_object_get(jobs[0].input, "a")), 613);
    assert_string_equal(jobs[1].lease, "L2");
    jobd_client_jobs_free(jobs, n);
    assert_string_equal(fake.path, "/jobs/claim");
    body = sent_body();
    assert_string_equal(json_string_value(json_object_get(body, "bot_id")), "b1");
    assert_int_equal(json_integer_value(json_object_get(body, "wait_ms")), 100);
    assert_int_equal(json_integer_value(json_object_get(body, "max")), 2);
    assert_null(json_object_get(body, "lease_ms"));
    json_decref(body);

    reply_with(204, "");
    assert_int_equal(jobd_client_claim(c, &req, &jobs, &n), JOBD_CLIENT_OK);
    assert_int_equal(n, 0);
    assert_null(jobs);

    reply_with(200, "{\"jobs\": [{\"id\": \"j1\", \"operation\": \"sum\", \"input\": {}}]}");
    assert_int_equal(jobd_client_claim(c, &req, &jobs, &n), JOBD_CLIENT_EPROTO);
    jobd_client_free(c);
}

static void test_server_error(void **state)
{
    jobd_client_t *c = client_for(fake.url, NULL);
    const jobd_error_t *e;
    json_t *result = json_integer(955), *body;
    char buf[512];

    reply_with(409, "{\"error\": {\"code\": \"lease_released\", \"message\": \"job j1 lease L1 "
                    "was released\", \"request_id\": \"a1b2c3\"}}");
    assert_int_equal(jobd_client_complete(c, "b1", "j1", "L1", result, 3, NULL), JOBD_CLIENT_EHTTP);
    assert_string_equal(fake.path, "/jobs/j1/complete");
    body = sent_body();
    assert_int_equal(json_integer_value(json_object_get(body, "result")), 955);
    assert_int_equal(json_integer_value(json_object_get(body, "duration_ms")), 3);
    assert_string_equal(json_string_value(json_object_get(body, "lease")), "L1");
    json_decref(body);
    e = jobd_client_last_error(c);
    assert_int_equal(e->rc, JOBD_CLIENT_EHTTP);
    assert_int_equal(e->status, 409);
    assert_string_equal(e->code, "lease_released");
    assert_string_equal(e->message, "job j1 lease L1 was released");
    assert_string_equal(e->request_id, "a1b2c3");
    assert_false(jobd_client_error_is_transient(c));
    assert_string_equal(jobd_client_error_format(c, buf, sizeof buf),
                        "409 lease_released: job j1 lease L1 was released (request a1b2c3)");

    /* A reply that is not our error shape (a proxy's page) still says what came. */
    reply_with(502, "<html>Bad Gateway</html>");
    assert_int_equal(jobd_client_fail(c, "b1", "j1", "L1", "division by zero", 0, NULL),
                     JOBD_CLIENT_EHTTP);
    e = jobd_client_last_error(c);
    assert_int_equal(e->status, 502);
    assert_string_equal(e->code, "");
    assert_non_null(strstr(e->message, "Bad Gateway"));
    assert_string_equal(e->request_id, fake.request_id); /* the id the client sent */
    assert_true(jobd_client_error_is_transient(c));

    reply_with(200, "not json");
    assert_int_equal(jobd_client_stats(c, NULL), JOBD_CLIENT_EPROTO);
    json_decref(result);
    jobd_client_free(c);
}

static void test_network_error(void **state)
{
    /* Port 1 on localhost: nothing listens there, the connect is refused. */
    jobd_client_t *c = client_for("http://127.0.0.1:1", NULL);
    const jobd_error_t *e;

    assert_int_equal(jobd_client_heartbeat(c, "b1", "ready"), JOBD_CLIENT_ENET);
    e = jobd_client_last_error(c);
    assert_int_equal(e->status, 0);
    assert_true(strlen(e->message) > 0);
    assert_true(strlen(e->request_id) > 0);
    assert_true(jobd_client_error_is_transient(c));
    jobd_client_free(c);
}

static volatile sig_atomic_t cancel_flag;

static void *cancel_soon(void *arg)
{
    struct timespec ts = {0, 200 * 1000000L};
    nanosleep(&ts, NULL);
    cancel_flag = 1;
    return NULL;
}

/* Around a call that waits on the fake: cancel it after 200 ms from another
 * thread (start), then (check, right after the call returned) insist that
 * it stopped within 2 s, and let the fake's held reply go. */
static void cancel_timer_start(pthread_t *t, struct timespec *t0)
{
    clock_gettime(CLOCK_MONOTONIC, t0);
    pthread_create(t, NULL, cancel_soon, NULL);
}

static void cancel_timer_check(pthread_t t, const struct timespec *t0)
{
    struct timespec t1;
    double secs;

    clock_gettime(CLOCK_MONOTONIC, &t1);
    pthread_join(t, NULL);
    fake.released = 1;
    secs = (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
    if (secs > 2.0)
        fail_msg("cancel took %.2f s", secs);
}

static void test_claim_cancel(void **state)
{
    jobd_client_t *c = client_for(fake.url, NULL);
    jobd_claim_request_t req = {.bot_id = "b1",
                                .operations = ops,
                                .n_operations = 1,
                                .wait_ms = 20000,
                                .cancel = &cancel_flag};
    jobd_job_t *jobs;
    size_t n;
    pthread_t t;
    struct timespec t0;

    reply_with(204, "");
    fake.delay_ms = 20000;
    cancel_flag = 0;
    cancel_timer_start(&t, &t0);
    assert_int_equal(jobd_client_claim(c, &req, &jobs, &n), JOBD_CLIENT_ECANCELED);
    cancel_timer_check(t, &t0);
    /* Already canceled: nothing is sent. */
    assert_int_equal(jobd_client_claim(c, &req, &jobs, &n), JOBD_CLIENT_ECANCELED);
    jobd_client_free(c);
}

/* The minimal option asks for minimal replies on every request; without
 * it, nothing is asked. */
static void test_minimal_option(void **state)
{
    jobd_client_options_t opts = {.base_url = fake.url, .timeout_ms = 3000, .minimal = 1};
    jobd_client_t *c = jobd_client_new(&opts), *plain = client_for(fake.url, NULL);
    json_t *value = json_integer(1), *results = NULL;
    jobd_report_t r = {.job_id = "j1", .lease = "L1", .result = value};
    (void)state;

    assert_non_null(c);
    reply_with(200, "{\"results\": [{\"id\": \"j1\", \"job\": {\"id\": \"j1\", "
                    "\"status\": \"succeeded\"}}]}");
    assert_int_equal(jobd_client_report_many(c, "b1", &r, 1, &results), JOBD_CLIENT_OK);
    assert_string_equal(fake.prefer, "return=minimal");
    json_decref(results);
    assert_int_equal(jobd_client_report_many(plain, "b1", &r, 1, &results), JOBD_CLIENT_OK);
    assert_string_equal(fake.prefer, "");
    json_decref(results);
    json_decref(value);
    jobd_client_free(plain);
    jobd_client_free(c);
}

static void test_report_claim(void **state)
{
    jobd_client_t *c = client_for(fake.url, NULL);
    json_t *value = json_integer(955), *results = NULL, *body, *items, *claim;
    jobd_report_t r[2] = {
        {.job_id = "j1", .lease = "L1", .result = value, .duration_ms = 3},
        {.job_id = "j2", .lease = "L2", .error = "busy", .duration_ms = 4, .retryable = 1},
    };
    jobd_claim_request_t next = {
        .operations = ops, .n_operations = 2, .max = 2, .wait_ms = 0, .lease_ms = 5000};
    jobd_job_t *jobs = NULL, unset;
    size_t n = 99;

    reply_with(200, "{\"results\": [{\"id\": \"j1\", \"job\": {\"status\": \"succeeded\"}}, "
                    "{\"id\": \"j2\", \"job\": {\"status\": \"scheduled\"}}], "
                    "\"jobs\": [{\"id\": \"j3\", \"operation\": \"sum\", \"input\": {\"a\": 1}, "
                    "\"lease\": \"L3\"}]}");
    assert_int_equal(jobd_client_report_claim(c, "b1", r, 2, &next, &results, &jobs, &n),
                     JOBD_CLIENT_OK);
    assert_int_equal(json_array_size(results), 2);
    json_decref(results);
    assert_int_equal(n, 1);
    assert_string_equal(jobs[0].id, "j3");
    assert_string_equal(jobs[0].lease, "L3");
    assert_int_equal(json_integer_value(json_object_get(jobs[0].input, "a")), 1);
    jobd_client_jobs_free(jobs, n);
    assert_string_equal(fake.method, "POST");
    assert_string_equal(fake.path, "/jobs/complete");
    body = sent_body();
    assert_string_equal(json_string_value(json_object_get(body, "bot_id")), "b1");
    items = json_object_get(body, "results");
    assert_int_equal(json_array_size(items), 2);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(items, 0), "result")), 955);
    assert_null(json_object_get(json_array_get(items, 0), "retryable"));
    assert_string_equal(json_string_value(json_object_get(json_array_get(items, 1), "error")),
                        "busy");
    assert_true(json_is_true(json_object_get(json_array_get(items, 1), "retryable")));
    assert_int_equal(json_integer_value(json_object_get(json_array_get(items, 1), "duration_ms")),
                     4);
    claim = json_object_get(body, "claim");
    assert_int_equal(json_array_size(json_object_get(claim, "operations")), 2);
    assert_int_equal(json_integer_value(json_object_get(claim, "max")), 2);
    assert_int_equal(json_integer_value(json_object_get(claim, "wait_ms")), 0);
    assert_int_equal(json_integer_value(json_object_get(claim, "lease_ms")), 5000);
    assert_null(json_object_get(claim, "bot_id")); /* the body's bot_id claims */
    json_decref(body);

    /* Nothing pending: an empty "jobs" is success with no job. */
    reply_with(200, "{\"results\": [{\"id\": \"j1\", \"job\": {}}], \"jobs\": []}");
    jobs = &unset;
    assert_int_equal(jobd_client_report_claim(c, "b1", r, 1, &next, &results, &jobs, &n),
                     JOBD_CLIENT_OK);
    assert_null(jobs);
    assert_int_equal(n, 0);
    json_decref(results);

    /* A server that predates the claim answers without "jobs": no job either. */
    reply_with(200, "{\"results\": [{\"id\": \"j1\", \"job\": {}}]}");
    n = 99;
    assert_int_equal(jobd_client_report_claim(c, "b1", r, 1, &next, &results, &jobs, &n),
                     JOBD_CLIENT_OK);
    assert_int_equal(n, 0);
    json_decref(results);

    /* Replies that break the API; OUT parameters are left alone. */
    results = NULL;
    reply_with(200, "{\"results\": [{\"id\": \"j1\", \"job\": {}}], \"jobs\": [{\"id\": 1}]}");
    assert_int_equal(jobd_client_report_claim(c, "b1", r, 1, &next, &results, &jobs, &n),
                     JOBD_CLIENT_EPROTO);
    reply_with(200, "{\"results\": [], \"jobs\": []}");
    assert_int_equal(jobd_client_report_claim(c, "b1", r, 1, &next, &results, &jobs, &n),
                     JOBD_CLIENT_EPROTO);
    assert_null(results);

    /* A refusal of the whole request is the call's error. */
    reply_with(422, "{\"error\": {\"code\": \"invalid_field\", \"message\": \"claim: field "
                    "'max' must be from 1 to 100\"}}");
    assert_int_equal(jobd_client_report_claim(c, "b1", r, 1, &next, &results, &jobs, &n),
                     JOBD_CLIENT_EHTTP);
    assert_string_equal(jobd_client_last_error(c)->code, "invalid_field");

    /* Bad arguments send nothing. */
    fake.request[0] = '\0';
    next.bot_id = "b2";
    assert_int_equal(jobd_client_report_claim(c, "b1", r, 1, &next, &results, &jobs, &n),
                     JOBD_CLIENT_EINVAL);
    next.bot_id = "b1"; /* the same id is fine */
    r[0].retryable = 1; /* retryable is for failures */
    assert_int_equal(jobd_client_report_claim(c, "b1", r, 1, &next, &results, &jobs, &n),
                     JOBD_CLIENT_EINVAL);
    r[0].retryable = 0;
    assert_int_equal(jobd_client_report_claim(c, "b1", r, 1, &next, &results, NULL, NULL),
                     JOBD_CLIENT_EINVAL);
    assert_string_equal(fake.request, "");

    /* report_many is the same request without a claim. */
    reply_with(200, "{\"results\": [{\"id\": \"j1\", \"job\": {}}, {\"id\": \"j2\", "
                    "\"error\": {\"code\": \"lease_expired\", \"message\": \"late\"}}]}");
    assert_int_equal(jobd_client_report_many(c, "b1", r, 2, &results), JOBD_CLIENT_OK);
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(json_array_get(results, 1), "error"), "code")),
                        "lease_expired");
    json_decref(results);
    body = sent_body();
    assert_null(json_object_get(body, "claim"));
    assert_true(json_is_true(
        json_object_get(json_array_get(json_object_get(body, "results"), 1), "retryable")));
    json_decref(body);
    json_decref(value);
    jobd_client_free(c);
}

/* A report whose claim waits: the wait lengthens the request's timeout as a
 * claim's does, and the cancel flag cuts it short. */
static void test_report_claim_waits(void **state)
{
    jobd_client_options_t opts = {.base_url = fake.url, .timeout_ms = 300};
    jobd_client_t *c = jobd_client_new(&opts);
    json_t *value = json_integer(1), *results = NULL;
    jobd_report_t r = {.job_id = "j1", .lease = "L1", .result = value, .duration_ms = 0};
    jobd_claim_request_t next = {
        .operations = ops, .n_operations = 1, .wait_ms = 2000, .cancel = &cancel_flag};
    jobd_job_t *jobs = NULL;
    size_t n = 99;
    pthread_t t;
    struct timespec t0;

    assert_non_null(c);
    cancel_flag = 0;
    reply_with(200, "{\"results\": [{\"id\": \"j1\", \"job\": {}}], \"jobs\": []}");
    fake.delay_ms = 800; /* longer than timeout_ms, within timeout_ms + wait_ms */
    assert_int_equal(jobd_client_report_claim(c, "b1", &r, 1, &next, &results, &jobs, &n),
                     JOBD_CLIENT_OK);
    assert_int_equal(n, 0);
    json_decref(results);

    reply_with(200, "{\"results\": [{\"id\": \"j1\", \"job\": {}}], \"jobs\": []}");
    fake.delay_ms = 20000;
    next.wait_ms = 20000;
    cancel_timer_start(&t, &t0);
    assert_int_equal(jobd_client_report_claim(c, "b1", &r, 1, &next, &results, &jobs, &n),
                     JOBD_CLIENT_ECANCELED);
    cancel_timer_check(t, &t0);
    cancel_flag = 0;
    json_decref(value);
    jobd_client_free(c);
}

static void test_admin_and_queries(void **state)
{
    char slash_url[80];
    jobd_client_t *c = client_for(fake.url, "s3cret"), *anon;
    jobd_list_query_t q = {.status = "pending", .operation = "a b&c", .limit = 5};
    json_t *out = NULL, *body;

    /* A trailing slash on the base URL must not double the path's. */
    snprintf(slash_url, sizeof slash_url, "%s/", fake.url);
    anon = client_for(slash_url, NULL);
    reply_with(200, "{\"id\": \"j1\", \"status\": \"pending\"}");
    assert_int_equal(jobd_client_release(c, "j1", "bot-2 hung", &out), JOBD_CLIENT_OK);
    assert_string_equal(json_string_value(json_object_get(out, "status")), "pending");
    json_decref(out);
    assert_string_equal(fake.path, "/jobs/j1/release");
    assert_string_equal(fake.auth, "Bearer s3cret");
    body = sent_body();
    assert_string_equal(json_string_value(json_object_get(body, "reason")), "bot-2 hung");
    json_decref(body);

    /* Without a token the request goes out bare and the server decides. */
    reply_with(401, "{\"error\": {\"code\": \"unauthorized\", \"message\": \"no token\"}}");
    assert_int_equal(jobd_client_release(anon, "j1", NULL, NULL), JOBD_CLIENT_EHTTP);
    assert_string_equal(jobd_client_last_error(anon)->code, "unauthorized");
    assert_string_equal(fake.auth, "");
    assert_string_equal(fake.request, "");

    reply_with(200, "{\"jobs\": [], \"next\": null}");
    assert_int_equal(jobd_client_list_jobs(anon, &q, &out), JOBD_CLIENT_OK);
    json_decref(out);
    assert_string_equal(fake.method, "GET");
    assert_string_equal(fake.path, "/jobs");
    assert_string_equal(fake.query, "status=pending&operation=a b&c&limit=5");
    assert_string_equal(fake.auth, "");

    reply_with(201, "{\"id\": \"j9\"}");
    body = json_pack("{s:i, s:i}", "a", 1, "b", 2);
    assert_int_equal(jobd_client_submit(anon, "sum", body, -3, &out), JOBD_CLIENT_OK);
    json_decref(out);
    json_decref(body);
    body = sent_body();
    assert_int_equal(json_integer_value(json_object_get(body, "priority")), -3);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(body, "input"), "b")), 2);
    assert_null(json_object_get(body, "idempotency_key"));
    json_decref(body);
    body = json_pack("{s:i}", "a", 1);
    assert_int_equal(jobd_client_submit_keyed(anon, "sum", body, 0, "k-7", &out), JOBD_CLIENT_OK);
    json_decref(out);
    json_decref(body);
    body = sent_body();
    assert_string_equal(json_string_value(json_object_get(body, "idempotency_key")), "k-7");
    json_decref(body);

    reply_with(200, "{\"status\": \"ok\"}");
    assert_int_equal(jobd_client_health(anon, NULL), JOBD_CLIENT_OK);
    assert_string_equal(fake.path, "/health");
    assert_int_equal(jobd_client_get_job(anon, "j1", &out), JOBD_CLIENT_OK);
    json_decref(out);
    assert_string_equal(fake.path, "/jobs/j1");
    jobd_client_free(anon);
    jobd_client_free(c);
}

static void test_keep_alive(void **state)
{
    jobd_client_t *c = client_for(fake.url, NULL);
    int before;

    reply_with(200, "{\"status\": \"ok\"}");
    assert_int_equal(jobd_client_health(c, NULL), JOBD_CLIENT_OK);
    before = fake.connections;
    for (int i = 0; i < 5; i++)
        assert_int_equal(jobd_client_health(c, NULL), JOBD_CLIENT_OK);
    reply_with(404, "{\"error\": {\"code\": \"not_found\", \"message\": \"no job x\"}}");
    assert_int_equal(jobd_client_get_job(c, "x", NULL), JOBD_CLIENT_EHTTP);
    assert_int_equal(fake.connections, before);
    jobd_client_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_register, start_fake, stop_fake),
        cmocka_unit_test_setup_teardown(test_claim, start_fake, stop_fake),
        cmocka_unit_test_setup_teardown(test_server_error, start_fake, stop_fake),
        cmocka_unit_test(test_network_error),
        cmocka_unit_test_setup_teardown(test_claim_cancel, start_fake, stop_fake),
        cmocka_unit_test_setup_teardown(test_report_claim, start_fake, stop_fake),
        cmocka_unit_test_setup_teardown(test_minimal_option, start_fake, stop_fake),
        cmocka_unit_test_setup_teardown(test_report_claim_waits, start_fake, stop_fake),
        cmocka_unit_test_setup_teardown(test_admin_and_queries, start_fake, stop_fake),
        cmocka_unit_test_setup_teardown(test_keep_alive, start_fake, stop_fake),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
