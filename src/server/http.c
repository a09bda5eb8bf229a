/*
 * http.c - libmicrohttpd glue.  Each connection gets a conn_t that gathers
 * the body, carries the request id and the reply's status for the log, and
 * holds the waiter of a parked long-poll.  Handlers are called only once the
 * whole body is in; their reply_t becomes a response here, in one place, so
 * every error has the same shape.
 *
 * libmicrohttpd's few threads only read requests and write replies.  A
 * handler may wait for the disk (a commit's fsync), and a connection's
 * thread serves many connections, so a handler run there would hold up every
 * other request of that thread: a bot's claim queued behind an unrelated
 * submit's fsync.  So each complete request is handed to the request threads
 * (the pool below, --threads) with its connection suspended, and the reply
 * is sent when the handler is done and has resumed it.
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
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* libmicrohttpd's own threads, which only move bytes: a few are enough. */
#define IO_THREADS 4

typedef struct conn conn_t;

struct http {
    struct MHD_Daemon *daemon;
    server_t *srv;

    /* The request threads and the requests waiting for one, in order. */
    pthread_t *threads;
    unsigned nthreads;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    conn_t *head, **tail;
    bool stop;

    /* Connections per libmicrohttpd thread (alone_on_thread). */
    pthread_mutex_t io_mu;
    struct {
        const void *daemon;
        atomic_int conns;
    } io[IO_THREADS + 1];
    int nio;
    atomic_int busy_here; /* handlers running on libmicrohttpd's threads now */
};

/* Requests between their first byte and the end of their reply, so that a
 * stop can wait for them: a claim whose reply never left would leave its
 * job leased to a bot that does not know it. */
static atomic_int active_requests;

/* Where a connection's request is (conn.phase).  Only the thread that moved
 * it to a phase touches the conn until the next move: libmicrohttpd's thread
 * while READING or ANSWERED, a request thread while RUNNING; a PARKED conn
 * belongs to the wait queue until its wake resumes the connection. */
enum conn_phase {
    CONN_READING,  /* the body is arriving */
    CONN_RUNNING,  /* queued for or run by a request thread; connection suspended */
    CONN_PARKED,   /* a long-poll in the wait queue; connection suspended */
    CONN_ANSWERED, /* reply is ready to be sent */
};

struct conn {
    http_t *http;
    server_t *srv;
    struct MHD_Connection *mc;
    enum conn_phase phase;
    conn_t *next; /* in http.head */
    req_t req;    /* what the handler is given, gathered by libmicrohttpd's thread */
    reply_t reply;
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
    char *wait_bot;
    json_t *carry; /* the handler's state across wake-ups (reply.carry) */
};

static conn_t *conn_new(http_t *h, struct MHD_Connection *mc, const char *method, const char *url)
{
    server_t *srv = h->srv;
    conn_t *cn = calloc(1, sizeof *cn);
    const char *rid = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, "X-Request-Id");
    const char *clen = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, "Content-Length");

    if (!cn)
        abort();
    cn->http = h;
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
    json_decref(cn->waiter.handed);
    json_decref(cn->wait_ops);
    free(cn->wait_bot);
    json_decref(cn->carry);
    json_decref(cn->reply.body);
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
    req_t *req = cls; /* key and value live as long as the request */
    (void)kind;
    if (req->nargs < REQ_MAX_ARGS) {
        req->arg_names[req->nargs] = key;
        req->arg_values[req->nargs] = value ? value : "";
        req->nargs++;
    }
    return MHD_YES;
}

/* Whether a Prefer header (RFC 7240: comma-separated preferences, each
 * maybe with parameters after ';') holds return=minimal. */
static bool prefers_minimal(const char *prefer)
{
    static const char want[] = "return=minimal";
    const char *p = prefer;

    while (p && *p) {
        size_t n;
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        n = strcspn(p, ",;");
        while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
            n--;
        if (n == sizeof want - 1 && strncasecmp(p, want, n) == 0)
            return true;
        p = strchr(p, ',');
    }
    return false;
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
    if (rep->minimal && rep->err.rc == JOBD_OK)
        MHD_add_response_header(resp, "Preference-Applied", "return=minimal");
    cn->status = status;
    ret = MHD_queue_response(cn->mc, (unsigned)status, resp);
    MHD_destroy_response(resp);
    json_decref(rep->body);
    rep->body = NULL;
    return ret;
}

/* The connection count of the libmicrohttpd thread serving mc: each of its
 * threads is a daemon of its own, and serves the connections it accepted to
 * their end. */
static atomic_int *io_conns(http_t *h, struct MHD_Connection *mc)
{
    const union MHD_ConnectionInfo *info = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_DAEMON);
    const void *daemon = info ? (const void *)info->daemon : NULL;
    atomic_int *n = NULL;

    pthread_mutex_lock(&h->io_mu);
    for (int i = 0; i < h->nio && !n; i++)
        if (h->io[i].daemon == daemon)
            n = &h->io[i].conns;
    if (!n && h->nio < IO_THREADS + 1) {
        h->io[h->nio].daemon = daemon;
        n = &h->io[h->nio++].conns;
    }
    pthread_mutex_unlock(&h->io_mu);
    return n;
}

static void on_connection(void *cls, struct MHD_Connection *mc, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        *socket_context = io_conns(cls, mc);
        if (*socket_context)
            atomic_fetch_add((atomic_int *)*socket_context, 1);
    } else if (*socket_context) {
        atomic_fetch_sub((atomic_int *)*socket_context, 1);
    }
}

/* Whether mc is the only connection of its libmicrohttpd thread: then its
 * handler holds up no one by running on that thread. */
static bool alone_on_thread(struct MHD_Connection *mc)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(mc, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return info && info->socket_context && atomic_load((atomic_int *)info->socket_context) <= 1;
}

/* A parked long-poll's wake-up (a job announced, its deadline, a stop):
 * libmicrohttpd calls on_request again, which runs the handler again. */
static void resume_conn(waiter_t *w)
{
    conn_t *cn = w->data;
    MHD_resume_connection(cn->mc);
}

/* Parking from libmicrohttpd's thread: suspend the connection, under the
 * wait queue's lock so that a wake-up cannot overtake it. */
static void suspend_conn(waiter_t *w)
{
    conn_t *cn = w->data;
    MHD_suspend_connection(cn->mc);
}

/* Parking from a request thread: the connection is suspended already. */
static void stay_suspended(waiter_t *w)
{
    (void)w;
}

/* Run cn's handler into *rep, from the top again as long as it is a
 * long-poll that found nothing but could not park (a job was announced
 * meanwhile).  Returns true if it parked instead: the connection stays
 * suspended until the wait queue wakes it, and cn belongs to the queue. */
static bool dispatch(conn_t *cn, reply_t *rep, void (*suspend)(waiter_t *w))
{
    server_t *srv = cn->srv;
    bool parked = false;

    log_batch_begin(); /* the records of one request: one write (log.h) */
    for (;;) {
        req_t req = cn->req;
        memset(rep, 0, sizeof *rep);
        req.wait_deadline = cn->wait_deadline;
        req.woken = cn->wait_deadline && waitq_rerun(srv->waitq, &cn->waiter);
        req.handed = cn->waiter.handed;
        cn->waiter.handed = NULL;
        req.carry = cn->carry;
        router_dispatch(srv, &req, rep);
        json_decref(req.handed);
        if (rep->carry) {
            json_decref(cn->carry);
            cn->carry = rep->carry;
            rep->carry = NULL;
        }
        if (rep->wait_until == 0)
            break;

        /* The handler found nothing and wants to wait: park the connection
         * until a job is announced or the deadline passes, then run the
         * handler again from the top. */
        cn->wait_deadline = rep->wait_until;
        if (!cn->wait_ops)
            cn->wait_ops = rep->wait_ops;
        else
            json_decref(rep->wait_ops);
        if (!cn->wait_bot)
            cn->wait_bot = rep->wait_bot;
        else
            free(rep->wait_bot);
        cn->waiter.ops = cn->wait_ops;
        cn->waiter.bot_id = cn->wait_bot;
        cn->waiter.lease_ms = rep->wait_lease_ms;
        cn->waiter.deadline = cn->wait_deadline;
        cn->waiter.data = cn;
        cn->waiter.wake = resume_conn;
        cn->phase = CONN_PARKED; /* before: the wake may come at once */
        if (waitq_park(srv->waitq, &cn->waiter, rep->wait_seq, suspend)) {
            parked = true;
            break;
        }
    }
    log_batch_end();
    return parked;
}

/* A request thread's part: run the handler, then resume the connection so
 * that libmicrohttpd's thread sends the reply. */
static void run_request(conn_t *cn)
{
    reply_t rep;

    if (dispatch(cn, &rep, stay_suspended))
        return;
    cn->reply = rep;
    cn->phase = CONN_ANSWERED;
    MHD_resume_connection(cn->mc);
}

static void *request_thread(void *arg)
{
    http_t *h = arg;
    conn_t *cn;

    pthread_setname_np(pthread_self(), "jobd-request");
    pthread_mutex_lock(&h->mu);
    for (;;) {
        while (!h->head && !h->stop)
            pthread_cond_wait(&h->cond, &h->mu);
        if (!h->head)
            break; /* stopping, and nothing is left to run */
        cn = h->head;
        h->head = cn->next;
        if (!h->head)
            h->tail = &h->head;
        pthread_mutex_unlock(&h->mu);
        run_request(cn);
        pthread_mutex_lock(&h->mu);
    }
    pthread_mutex_unlock(&h->mu);
    return NULL;
}

/* Suspend cn's connection and queue its request for a request thread.
 * Runs in libmicrohttpd's thread: the only one allowed to suspend. */
static void hand_off(conn_t *cn)
{
    http_t *h = cn->http;

    cn->phase = CONN_RUNNING;
    cn->next = NULL;
    MHD_suspend_connection(cn->mc);
    pthread_mutex_lock(&h->mu);
    *h->tail = cn;
    h->tail = &cn->next;
    pthread_cond_signal(&h->cond);
    pthread_mutex_unlock(&h->mu);
}

/* Run cn's handler on libmicrohttpd's thread (see on_request). */
static enum MHD_Result run_here(conn_t *cn)
{
    reply_t rep;
    if (dispatch(cn, &rep, suspend_conn))
        return MHD_YES;
    return send_reply(cn, &rep);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *mc, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    http_t *h = cls;
    conn_t *cn = *con_cls;
    reply_t rep;
    (void)version;

    if (!cn) {
        *con_cls = conn_new(h, mc, method, url);
        return MHD_YES;
    }
    if (*upload_data_size) {
        gather(cn, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return MHD_YES;
    }

    switch (cn->phase) {
    case CONN_ANSWERED:
        return send_reply(cn, &cn->reply);
    case CONN_RUNNING: /* not called while suspended */
        return MHD_YES;
    case CONN_PARKED: /* woken: run the handler again */
        break;
    case CONN_READING:
        if (cn->too_large) {
            memset(&rep, 0, sizeof rep);
            err_set(&rep.err, JOBD_EBODYSIZE,
                    "the request body is larger than %zu bytes (the server's --max-body)",
                    h->srv->cfg.max_body);
            return send_reply(cn, &rep);
        }
        /* Everything the handler reads from the request, gathered here:
         * the strings stay valid until the request ends. */
        cn->req.method = cn->method;
        cn->req.path = cn->path;
        cn->req.body = cn->body;
        cn->req.body_len = cn->len;
        cn->req.request_id = cn->request_id;
        cn->req.authorization = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, "Authorization");
        cn->req.minimal =
            prefers_minimal(MHD_lookup_connection_value(mc, MHD_HEADER_KIND, "Prefer"));
        MHD_get_connection_values(mc, MHD_GET_ARGUMENT_KIND, collect_arg, &cn->req);
        break;
    }
    /* Run here what holds up no one else: a read (it never long-polls and
     * rarely waits; two thread switches would cost it more, about half of
     * GET /jobs/{id}'s requests per second), or a write of a connection
     * that has this thread to itself; but always leave one of these threads
     * free to accept new connections, which a thread waiting in a handler
     * does not do (with every thread waiting for a locked database, new
     * clients waited the whole busy timeout). */
    if (strcmp(cn->method, "GET") == 0 || alone_on_thread(mc)) {
        if (atomic_fetch_add(&h->busy_here, 1) < IO_THREADS - 1) {
            enum MHD_Result ret = run_here(cn);
            atomic_fetch_sub(&h->busy_here, 1);
            return ret;
        }
        atomic_fetch_sub(&h->busy_here, 1);
    }
    hand_off(cn);
    return MHD_YES;
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

/* Let the request threads run what is queued, then end them. */
static void stop_threads(http_t *h)
{
    pthread_mutex_lock(&h->mu);
    h->stop = true;
    pthread_cond_broadcast(&h->cond);
    pthread_mutex_unlock(&h->mu);
    for (unsigned i = 0; i < h->nthreads; i++)
        pthread_join(h->threads[i], NULL);
    free(h->threads);
    pthread_mutex_destroy(&h->mu);
    pthread_cond_destroy(&h->cond);
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
    h->srv = srv;
    h->tail = &h->head;
    pthread_mutex_init(&h->io_mu, NULL);
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->cond, NULL);
    h->threads = calloc(srv->cfg.threads, sizeof *h->threads);
    if (!h->threads)
        abort();
    for (h->nthreads = 0; h->nthreads < srv->cfg.threads; h->nthreads++)
        if (pthread_create(&h->threads[h->nthreads], NULL, request_thread, h) != 0)
            abort();
    /* Poll mode with a thread pool: no FD_SETSIZE limit, and unlike the
     * single-thread epoll mode it does not stall on bursts of clients.  The
     * logger comes first: libmicrohttpd warns (through it, at every start)
     * when it does not, since what the options before it say goes to its
     * own logger. */
    h->daemon = MHD_start_daemon(
        MHD_USE_POLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG, 0, NULL, NULL,
        on_request, h, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_SOCK_ADDR,
        (struct sockaddr *)&sa, MHD_OPTION_THREAD_POOL_SIZE, (unsigned)IO_THREADS,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv, MHD_OPTION_NOTIFY_CONNECTION, on_connection,
        h, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120, MHD_OPTION_LISTENING_ADDRESS_REUSE,
        (unsigned)1, MHD_OPTION_END);
    if (!h->daemon) {
        stop_threads(h);
        pthread_mutex_destroy(&h->io_mu);
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
    /* The request threads first: each request they finish resumes its
     * connection, and libmicrohttpd will not stop with one suspended. */
    stop_threads(h);
    MHD_stop_daemon(h->daemon);
    pthread_mutex_destroy(&h->io_mu);
    free(h);
}
