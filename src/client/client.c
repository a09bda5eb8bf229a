/*
 * client.c - the client handle and its transport: one libcurl easy handle per
 * client (so the connection is kept alive), one request function, and the
 * translation of every failure - network, HTTP error body, bad reply - into
 * the client's last error.
 */
#include "client_int.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define DEFAULT_TIMEOUT_MS 10000
/* A reply larger than this is not something the API sends; refuse it rather
 * than let a broken peer grow the buffer without bound. */
#define MAX_REPLY_BYTES (64u << 20)

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc = CURLE_FAILED_INIT;

/* curl_global_init is not guaranteed thread-safe on every libcurl build, so
 * it runs exactly once whichever thread makes the first client. */
static void global_init(void)
{
    global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

jobd_client_t *jobd_client_new(const jobd_client_options_t *opts)
{
    jobd_client_t *c;
    size_t n;

    if (!opts || !opts->base_url || !opts->base_url[0])
        return NULL;
    pthread_once(&global_once, global_init);
    if (global_rc != CURLE_OK)
        return NULL;
    c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->base_url = strdup(opts->base_url);
    if (!c->base_url)
        goto out_free_client;
    n = strlen(c->base_url);
    while (n > 0 && c->base_url[n - 1] == '/')
        c->base_url[--n] = '\0';
    if (opts->admin_token && opts->admin_token[0]) {
        c->admin_token = strdup(opts->admin_token);
        if (!c->admin_token)
            goto out_free_url;
    }
    c->timeout_ms = opts->timeout_ms > 0 ? opts->timeout_ms : DEFAULT_TIMEOUT_MS;
    c->minimal = opts->minimal != 0;
    c->curl = curl_easy_init();
    if (!c->curl)
        goto out_free_token;
    return c;

out_free_token:
    free(c->admin_token);
out_free_url:
    free(c->base_url);
out_free_client:
    free(c);
    return NULL;
}

void jobd_client_free(jobd_client_t *c)
{
    if (!c)
        return;
    curl_easy_cleanup(c->curl);
    if (c->admin_token) /* do not leave the secret in freed memory */
        memset(c->admin_token, 0, strlen(c->admin_token));
    free(c->admin_token);
    free(c->base_url);
    free(c->reply.data);
    free(c);
}

const jobd_error_t *jobd_client_last_error(const jobd_client_t *c)
{
    return &c->err;
}

const char *jobd_client_error_format(const jobd_client_t *c, char *buf, size_t len)
{
    const jobd_error_t *e = &c->err;
    const char *rid = e->request_id[0] ? e->request_id : "none";

    if (e->rc == JOBD_CLIENT_EHTTP)
        snprintf(buf, len, "%ld %s: %s (request %s)", e->status, e->code[0] ? e->code : "(no code)",
                 e->message, rid);
    else
        snprintf(buf, len, "%s (request %s)", e->message, rid);
    return buf;
}

int jobd_client_error_is_transient(const jobd_client_t *c)
{
    return c->err.rc == JOBD_CLIENT_ENET ||
           (c->err.rc == JOBD_CLIENT_EHTTP && c->err.status >= 500);
}

int jobd__fail(jobd_client_t *c, int rc, const char *fmt, ...)
{
    va_list ap;

    c->err.rc = rc;
    va_start(ap, fmt);
    vsnprintf(c->err.message, sizeof c->err.message, fmt, ap);
    va_end(ap);
    return rc;
}

int jobd__path(jobd_client_t *c, char *out, size_t len, const char *prefix, const char *id,
               const char *suffix)
{
    char *esc;
    int n;

    if (!id || !id[0])
        return jobd__fail(c, JOBD_CLIENT_EINVAL, "an id is required");
    esc = curl_easy_escape(c->curl, id, 0);
    if (!esc)
        return jobd__fail(c, JOBD_CLIENT_ENOMEM, "out of memory");
    n = snprintf(out, len, "%s%s%s", prefix, esc, suffix);
    curl_free(esc);
    if (n < 0 || (size_t)n >= len)
        return jobd__fail(c, JOBD_CLIENT_EINVAL, "id is too long: %.40s...", id);
    return JOBD_CLIENT_OK;
}

static size_t on_reply_data(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct reply_buf *b = userdata;
    size_t n = size * nmemb;

    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        char *p;
        while (cap < b->len + n + 1)
            cap *= 2;
        if (cap > MAX_REPLY_BYTES)
            return 0; /* makes curl fail with CURLE_WRITE_ERROR */
        p = realloc(b->data, cap);
        if (!p)
            return 0;
        b->data = p;
        b->cap = cap;
    }
    memcpy(b->data + b->len, ptr, n);
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

/* Called by curl about once a second and on every wakeup: a non-zero return
 * aborts the transfer, which is how a long poll is interrupted. */
static int on_progress(void *clientp, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    const volatile sig_atomic_t *cancel = clientp;
    return *cancel ? 1 : 0;
}

/* A fresh id for X-Request-Id, so that even a request whose reply was lost
 * can be found in the server's log. */
static void new_request_id(char *out, size_t len)
{
    unsigned char raw[8];
    static const char hex[] = "0123456789abcdef";
    size_t i;

    if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw)
        memset(raw, 0, sizeof raw);
    for (i = 0; i < sizeof raw && 2 * i + 2 < len; i++) {
        out[2 * i] = hex[raw[i] >> 4];
        out[2 * i + 1] = hex[raw[i] & 15];
    }
    out[2 * i] = '\0';
}

static void copy_str(char *dst, size_t len, const char *src)
{
    snprintf(dst, len, "%s", src ? src : "");
}

/* Fill c->err from a non-2xx reply: the documented error body if there is
 * one, else the start of whatever text came back (a proxy's HTML page). */
static int fail_http(jobd_client_t *c, long status)
{
    json_t *doc = c->reply.len ? json_loadb(c->reply.data, c->reply.len, 0, NULL) : NULL;
    const char *code = NULL, *message = NULL, *rid = NULL;

    c->err.rc = JOBD_CLIENT_EHTTP;
    c->err.status = status;
    if (doc && json_unpack(doc, "{s:{s?s, s?s, s?s}}", "error", "code", &code, "message", &message,
                           "request_id", &rid) == 0) {
        copy_str(c->err.code, sizeof c->err.code, code);
        copy_str(c->err.message, sizeof c->err.message, message);
        if (rid)
            copy_str(c->err.request_id, sizeof c->err.request_id, rid);
    } else {
        c->err.code[0] = '\0';
        snprintf(c->err.message, sizeof c->err.message, "HTTP %ld with %s body: %.200s", status,
                 c->reply.len ? "a non-JSON-error" : "an empty", c->reply.len ? c->reply.data : "");
    }
    json_decref(doc);
    return JOBD_CLIENT_EHTTP;
}

static int fail_transport(jobd_client_t *c, CURLcode cc, const struct client_call *call)
{
    const char *text = c->curl_err[0] ? c->curl_err : curl_easy_strerror(cc);

    if (cc == CURLE_ABORTED_BY_CALLBACK && call->cancel && *call->cancel)
        return jobd__fail(c, JOBD_CLIENT_ECANCELED, "%s %s canceled", call->method, call->path);
    if (cc == CURLE_WRITE_ERROR)
        return jobd__fail(c, JOBD_CLIENT_EPROTO, "%s %s: reply too large or out of memory",
                          call->method, call->path);
    if (cc == CURLE_OUT_OF_MEMORY)
        return jobd__fail(c, JOBD_CLIENT_ENOMEM, "out of memory");
    return jobd__fail(c, JOBD_CLIENT_ENET, "%s %s%s: %s", call->method, c->base_url, call->path,
                      text);
}

/* Set every option of one exchange.  curl_easy_reset keeps the live
 * connection, so resetting per request costs no reconnect and no option of
 * the previous call (a body, a long timeout) can leak into this one. */
static int prepare(jobd_client_t *c, const struct client_call *call, const char *url,
                   const char *body, struct curl_slist *headers)
{
    CURL *h = c->curl;
    CURLcode cc = CURLE_OK;

    curl_easy_reset(h);
    c->curl_err[0] = '\0';
#define SET(opt, val)                                                                              \
    if (cc == CURLE_OK)                                                                            \
    cc = curl_easy_setopt(h, opt, val)
    SET(CURLOPT_URL, url);
    SET(CURLOPT_HTTPHEADER, headers);
    SET(CURLOPT_ERRORBUFFER, c->curl_err);
    SET(CURLOPT_NOSIGNAL, 1L); /* no SIGALRM: clients live in threads */
    SET(CURLOPT_TCP_KEEPALIVE, 1L);
    SET(CURLOPT_USERAGENT, "jobd-client/1");
    SET(CURLOPT_CONNECTTIMEOUT_MS, c->timeout_ms);
    SET(CURLOPT_TIMEOUT_MS, c->timeout_ms + call->extra_ms);
    SET(CURLOPT_WRITEFUNCTION, on_reply_data);
    SET(CURLOPT_WRITEDATA, &c->reply);
    if (body) {
        SET(CURLOPT_POSTFIELDS, body);
        SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
    } else if (strcmp(call->method, "POST") == 0) {
        SET(CURLOPT_POSTFIELDS, "");
    } else {
        SET(CURLOPT_HTTPGET, 1L);
    }
    if (call->cancel) {
        SET(CURLOPT_NOPROGRESS, 0L);
        SET(CURLOPT_XFERINFOFUNCTION, on_progress);
        SET(CURLOPT_XFERINFODATA, (void *)call->cancel);
    }
#undef SET
    if (cc != CURLE_OK)
        return jobd__fail(c, JOBD_CLIENT_EINVAL, "libcurl refused an option: %s",
                          curl_easy_strerror(cc));
    return JOBD_CLIENT_OK;
}

/* The request headers; the token goes only to admin endpoints.  Returns
 * NULL when out of memory. */
static struct curl_slist *make_headers(jobd_client_t *c, const struct client_call *call)
{
    struct curl_slist *list = NULL, *next;
    char line[256];
    const char *fixed[] = {"Content-Type: application/json", "Accept: application/json",
                           "Expect:"}; /* no 100-continue round trip for large bodies */

    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
        next = curl_slist_append(list, fixed[i]);
        if (!next)
            goto out_free_list;
        list = next;
    }
    snprintf(line, sizeof line, "X-Request-Id: %s", c->err.request_id);
    next = curl_slist_append(list, line);
    if (!next)
        goto out_free_list;
    list = next;
    if (c->minimal) {
        next = curl_slist_append(list, "Prefer: return=minimal");
        if (!next)
            goto out_free_list;
        list = next;
    }
    if (call->admin && c->admin_token) {
        char *auth;
        if (asprintf(&auth, "Authorization: Bearer %s", c->admin_token) < 0)
            goto out_free_list;
        next = curl_slist_append(list, auth);
        memset(auth, 0, strlen(auth));
        free(auth);
        if (!next)
            goto out_free_list;
        list = next;
    }
    return list;

out_free_list:
    curl_slist_free_all(list);
    return NULL;
}

int jobd__request(jobd_client_t *c, const struct client_call *call, json_t **out)
{
    struct curl_slist *headers;
    char *url, *body = NULL;
    long status = 0;
    json_t *doc = NULL;
    json_error_t jerr;
    CURLcode cc;
    int rc;

    memset(&c->err, 0, sizeof c->err);
    new_request_id(c->err.request_id, sizeof c->err.request_id);
    c->reply.len = 0;
    if (call->cancel && *call->cancel)
        return jobd__fail(c, JOBD_CLIENT_ECANCELED, "%s %s canceled", call->method, call->path);
    headers = make_headers(c, call);
    if (!headers)
        return jobd__fail(c, JOBD_CLIENT_ENOMEM, "out of memory");
    if (asprintf(&url, "%s%s", c->base_url, call->path) < 0) {
        rc = jobd__fail(c, JOBD_CLIENT_ENOMEM, "out of memory");
        goto out_free_headers;
    }
    if (call->body && !(body = json_dumps(call->body, JSON_COMPACT))) {
        rc = jobd__fail(c, JOBD_CLIENT_ENOMEM, "out of memory");
        goto out_free_url;
    }
    rc = prepare(c, call, url, body, headers);
    if (rc != JOBD_CLIENT_OK)
        goto out_free_body;

    cc = curl_easy_perform(c->curl);
    if (cc != CURLE_OK) {
        rc = fail_transport(c, cc, call);
        goto out_free_body;
    }
    curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);
    c->err.status = status;
    if (status < 200 || status > 299) {
        rc = fail_http(c, status);
        goto out_free_body;
    }
    if (c->reply.len > 0) {
        doc = json_loadb(c->reply.data, c->reply.len, 0, &jerr);
        if (!doc) {
            rc = jobd__fail(c, JOBD_CLIENT_EPROTO, "%s %s: %ld reply is not JSON: %s", call->method,
                            call->path, status, jerr.text);
            goto out_free_body;
        }
    }
    *out = doc;
    rc = JOBD_CLIENT_OK;

out_free_body:
    free(body);
out_free_url:
    free(url);
out_free_headers:
    curl_slist_free_all(headers);
    return rc;
}
