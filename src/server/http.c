/*
 * http.c - libmicrohttpd glue.  Each connection gets a conn_t that gathers
 * the body, carries the request id and the reply's status for the log, and
 * holds the waiter of a parked long-poll.  Handlers are called only once the
 * whole body is in; their reply_t becomes a response here, in one place, so
 * every error has the same shape.
 */
#include "http.h"
#include "clock.h"
#include "id.h"
#include "log.h"
#include "validate.h"
#include "waitq.h"

#include <arpa/inet.h>
#include <stdatomic.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct http {
    struct MHD_Daemon *daemon;
};

/* Requests between their first byte and the end of their reply, so that a
 * stop can wait for them: a claim whose reply never left would leave its
 * job leased to a bot that does not know it. */
static atomic_int active_requests;

typedef struct conn {
    server_t *srv;
    struct MHD_Connection *mc;
    char request_id[65];
    char method[16];
    char *path;
    int64_t start_us;
    char *body;
    size_t len, cap;
    bool too_large;
    int status;      /* of the reply, for the log */
    char code[32];   /* error code of the reply, for the log */
    waiter_t waiter; /* parked long-poll */
    int64_t wait_deadline;
    json_t *wait_ops;
} conn_t;

static conn_t *conn_new(server_t *srv, struct MHD_Connection *mc, const char *method,
                        const char *url)
{
    conn_t *cn = calloc(1, sizeof *cn);
    const char *rid = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, "X-Request-Id");
    const char *clen = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, "Content-Length");

    if (!cn)
        abort();
    cn->srv = srv;
    cn->mc = mc;
    atomic_fetch_add(&active_requests, 1);
    cn->start_us = clock_mono_us();
    snprintf(cn->method, sizeof cn->method, "%s", method);
    cn->path = strdup(url);
    if (!cn->path)
        abort();
    /* A client's own X-Request-Id is kept when it is short and plain (the
     * characters of a name), so that a caller can follow its id through our
     * log; anything else is replaced. */
    if (rid && validate_name(rid))
        snprintf(cn->request_id, sizeof cn->request_id, "%s", rid);
    else
        id_hex(cn->request_id, 8);
    if (clen && strtoull(clen, NULL, 10) > srv->cfg.max_body)
        cn->too_large = true;
    return cn;
}

static void conn_free(conn_t *cn)
{
    waitq_cancel(cn->srv->waitq, &cn->waiter);
    json_decref(cn->wait_ops);
    free(cn->body);
    free(cn->path);
    free(cn);
}

static void gather(conn_t *cn, const char *data, size_t n)
{
    if (cn->too_large)
        return;
    if (cn->len + n > cn->srv->cfg.max_body) {
        /* Keep reading (and dropping) the rest so that the 413 can be sent
         * on a connection that is still in a sane state. */
        cn->too_large = true;
        free(cn->body);
        cn->body = NULL;
        cn->len = cn->cap = 0;
        return;
    }
    if (cn->len + n + 1 > cn->cap) {
        size_t cap = cn->cap ? cn->cap : 1024;
        while (cap < cn->len + n + 1)
            cap *= 2;
        cn->body = realloc(cn->body, cap);
        if (!cn->body)
            abort();
        cn->cap = cap;
    }
    memcpy(cn->body + cn->len, data, n);
    cn->len += n;
    cn->body[cn->len] = '\0';
}

static enum MHD_Result collect_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
    req_t *req = cls;
    (void)kind;
    if (req->nargs < REQ_MAX_ARGS) {
        req->arg_names[req->nargs] = key;
        req->arg_values[req->nargs] = value ? value : "";
        req->nargs++;
    }
    return MHD_YES;
}

static enum MHD_Result send_reply(conn_t *cn, reply_t *rep)
{
    struct MHD_Response *resp;
    enum MHD_Result ret;
    char *text = NULL;
    int status = rep->status;

    if (rep->err.rc != JOBD_OK) {
        status = err_http_status(rep->err.rc);
        snprintf(cn->code, sizeof cn->code, "%s", err_code_str(rep->err.rc));
        json_decref(rep->body);
        rep->body = json_pack("{s:{s:s,s:s,s:s}}", "error", "code", cn->code, "message",
                              rep->err.msg, "request_id", cn->request_id);
        if (status >= 500)
            log_error("request %s %s: %s", cn->request_id, cn->code, rep->err.msg);
    }
    if (rep->body)
        text = json_dumps(rep->body, JSON_COMPACT | JSON_ENCODE_ANY);
    resp = MHD_create_response_from_buffer(text ? strlen(text) : 0, text, MHD_RESPMEM_MUST_FREE);
    if (!resp)
        abort();
    if (text)
        MHD_add_response_header(resp, "Content-Type", "application/json");
    MHD_add_response_header(resp, "X-Request-Id", cn->request_id);
    if (cn->srv->stopping)
        MHD_add_response_header(resp, "Connection", "close");
    if (rep->allow[0])
        MHD_add_response_header(resp, "Allow", rep->allow);
    cn->status = status;
    ret = MHD_queue_response(cn->mc, (unsigned)status, resp);
    MHD_destroy_response(resp);
    json_decref(rep->body);
    rep->body = NULL;
    return ret;
}

static void suspend_conn(waiter_t *w)
{
    conn_t *cn = w->data;
    MHD_suspend_connection(cn->mc);
}

static void resume_conn(waiter_t *w)
{
    conn_t *cn = w->data;
    MHD_resume_connection(cn->mc);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *mc, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    server_t *srv = cls;
    conn_t *cn = *con_cls;
    req_t req;
    reply_t rep;
    (void)version;

    if (!cn) {
        *con_cls = conn_new(srv, mc, method, url);
        return MHD_YES;
    }
    if (*upload_data_size) {
        gather(cn, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return MHD_YES;
    }

    for (;;) {
        memset(&req, 0, sizeof req);
        memset(&rep, 0, sizeof rep);
        if (cn->too_large) {
            err_set(&rep.err, JOBD_EBODYSIZE,
                    "the request body is larger than %zu bytes (the server's --max-body)",
                    srv->cfg.max_body);
            return send_reply(cn, &rep);
        }
        req.method = method;
        req.path = url;
        req.body = cn->body;
        req.body_len = cn->len;
        req.request_id = cn->request_id;
        req.authorization = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, "Authorization");
        req.wait_deadline = cn->wait_deadline;
        MHD_get_connection_values(mc, MHD_GET_ARGUMENT_KIND, collect_arg, &req);

        router_dispatch(srv, &req, &rep);
        if (rep.wait_until == 0)
            break;

        /* The handler found nothing and wants to wait: park the connection
         * until a job is announced or the deadline passes, then run the
         * handler again from the top. */
        cn->wait_deadline = rep.wait_until;
        if (!cn->wait_ops)
            cn->wait_ops = rep.wait_ops;
        else
            json_decref(rep.wait_ops);
        cn->waiter.ops = cn->wait_ops;
        cn->waiter.deadline = cn->wait_deadline;
        cn->waiter.data = cn;
        cn->waiter.wake = resume_conn;
        if (waitq_park(srv->waitq, &cn->waiter, rep.wait_seq, suspend_conn))
            return MHD_YES;
    }
    return send_reply(cn, &rep);
}

static void on_completed(void *cls, struct MHD_Connection *mc, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    conn_t *cn = *con_cls;
    (void)cls;
    (void)mc;

    if (!cn)
        return;
    log_info("request %s %s %s %d%s%s %.2f ms%s", cn->request_id, cn->method, cn->path, cn->status,
             cn->code[0] ? " " : "", cn->code, (double)(clock_mono_us() - cn->start_us) / 1000.0,
             toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " (connection closed early)");
    conn_free(cn);
    *con_cls = NULL;
    atomic_fetch_sub(&active_requests, 1);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    char buf[1024];
    size_t n;
    (void)cls;
    vsnprintf(buf, sizeof buf, fmt, ap);
    n = strlen(buf);
    while (n && buf[n - 1] == '\n')
        buf[--n] = '\0';
    log_warn("http: %s", buf);
}

static int parse_listen(const char *listen, struct sockaddr_in *sa, err_t *e)
{
    char host[256];
    const char *colon = strrchr(listen, ':');
    char *end;
    long port;

    if (!colon || (size_t)(colon - listen) >= sizeof host)
        return err_set(e, JOBD_EFIELD, "--listen must be HOST:PORT, not '%s'", listen);
    memcpy(host, listen, (size_t)(colon - listen));
    host[colon - listen] = '\0';
    port = strtol(colon + 1, &end, 10);
    if (*end || end == colon + 1 || port < 0 || port > 65535)
        return err_set(e, JOBD_EFIELD, "--listen port must be 0..65535, not '%s'", colon + 1);
    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t)port);
    if (strcmp(host, "localhost") == 0)
        snprintf(host, sizeof host, "127.0.0.1");
    if (inet_pton(AF_INET, host[0] ? host : "0.0.0.0", &sa->sin_addr) != 1)
        return err_set(e, JOBD_EFIELD, "--listen host must be an IPv4 address, not '%s'", host);
    return JOBD_OK;
}

int http_start(server_t *srv, http_t **out, int *port, err_t *e)
{
    struct sockaddr_in sa;
    const union MHD_DaemonInfo *info;
    http_t *h;
    int rc;

    if ((rc = parse_listen(srv->cfg.listen, &sa, e)) != JOBD_OK)
        return rc;
    h = calloc(1, sizeof *h);
    if (!h)
        abort();
    /* Poll mode with a thread pool: no FD_SETSIZE limit, and unlike the
     * single-thread epoll mode it does not stall on bursts of clients. */
    h->daemon = MHD_start_daemon(
        MHD_USE_POLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG, 0, NULL, NULL,
        on_request, srv, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_THREAD_POOL_SIZE,
        srv->cfg.threads, MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120, MHD_OPTION_LISTENING_ADDRESS_REUSE,
        (unsigned)1, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_END);
    if (!h->daemon) {
        free(h);
        return err_set(e, JOBD_EIO, "cannot listen on %s (is the port in use?)", srv->cfg.listen);
    }
    info = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT);
    *port = info ? info->port : ntohs(sa.sin_port);
    *out = h;
    return JOBD_OK;
}

void http_quiesce(http_t *h)
{
    if (h)
        MHD_quiesce_daemon(h->daemon);
}

bool http_drain(http_t *h, int64_t timeout_ms)
{
    int64_t until = clock_mono_ms() + timeout_ms;
    (void)h;
    while (atomic_load(&active_requests) > 0) {
        if (clock_mono_ms() >= until)
            return false;
        usleep(10 * 1000);
    }
    return true;
}

void http_stop(http_t *h)
{
    if (!h)
        return;
    MHD_stop_daemon(h->daemon);
    free(h);
}
