/*
 * client_int.h - private to src/client: the client handle and the one
 * request function that every endpoint call goes through.  Nothing outside
 * src/client includes this file.  Its non-static names start with "jobd__"
 * so that they cannot clash with a user program linking the static library.
 */
#ifndef JOBD_CLIENT_INT_H
#define JOBD_CLIENT_INT_H

#include "jobd/jobd.h"

#include <curl/curl.h>
#include <stdbool.h>

#define HIDDEN __attribute__((visibility("hidden")))

/* A reply body as it arrives. */
struct reply_buf {
    char *data;
    size_t len;
    size_t cap;
};

struct jobd_client {
    CURL *curl;
    char *base_url; /* without a trailing slash */
    char *admin_token;
    long timeout_ms;
    bool minimal; /* send Prefer: return=minimal */
    struct reply_buf reply;
    jobd_error_t err;
    char curl_err[CURL_ERROR_SIZE];
};

/* One HTTP exchange.  `path` is already URL-escaped and starts with '/'. */
struct client_call {
    const char *method; /* "GET" or "POST" */
    const char *path;
    const json_t *body; /* borrowed; NULL sends no body */
    bool admin;         /* send the Authorization header */
    long extra_ms;      /* added to the timeout, for a long poll */
    const volatile sig_atomic_t *cancel;
};

/* Perform call.  On a 2xx reply writes *out: the parsed body, or NULL when the
 * body is empty (204).  On failure fills c->err and returns its rc. */
HIDDEN int jobd__request(jobd_client_t *c, const struct client_call *call, json_t **out);

/* Record a failure that happened before or after the exchange; returns rc. */
HIDDEN int jobd__fail(jobd_client_t *c, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Write "<prefix><escaped id><suffix>" into out (len bytes). */
HIDDEN int jobd__path(jobd_client_t *c, char *out, size_t len, const char *prefix, const char *id,
                      const char *suffix);

#endif
