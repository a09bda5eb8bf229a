/*
 * http.h - the HTTP front of jobd on libmicrohttpd: a few poll-mode threads
 * that read requests and write replies, a pool of request threads that run
 * the handlers which may wait for the disk (http.c says which run where),
 * request bodies gathered into one buffer, request ids, the request log, and
 * suspension of long-poll claims (a waiting bot holds a parked connection,
 * not a thread).
 */
#ifndef JOBD_HTTP_H
#define JOBD_HTTP_H

#include "server.h"

typedef struct http http_t;

/* Start listening on srv->cfg.listen, with srv->cfg.threads request
 * threads.  OUT: *out; *port is the port bound (useful with port 0). */
int http_start(server_t *srv, http_t **out, int *port, err_t *e);

/* Stop accepting connections; requests in flight go on. */
void http_quiesce(http_t *h);

/* Wait until no request is in progress (each has sent its reply), for at
 * most timeout_ms.  Call after http_quiesce() with srv->stopping set, so
 * that no new work starts.  Returns false on timeout. */
bool http_drain(http_t *h, int64_t timeout_ms);

/* Let the request threads finish what is queued and join them, close every
 * connection, then free h.  NULL is a no-op. */
void http_stop(http_t *h);

#endif
