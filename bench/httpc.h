/*
 * httpc.h - the HTTP side of jobd-bench: one libcurl easy handle per thread,
 * set up once and reused, so every request rides the same keep-alive
 * connection, plus a growable string for request bodies.  Thin on purpose:
 * the client's own cost is part of every figure the bench prints.
 */
#ifndef JOBD_BENCH_HTTPC_H
#define JOBD_BENCH_HTTPC_H

#include <stddef.h>

typedef struct httpc httpc_t;

/* A client of the server at base ("http://127.0.0.1:3001").  Aborts when
 * out of memory.  Free with httpc_free(). */
httpc_t *httpc_new(const char *base);
void httpc_free(httpc_t *c);

/* Send the header line `line` ("Name: value") with every request of c. */
void httpc_header(httpc_t *c, const char *line);

/* One request; body NULL means GET.  Returns the HTTP status, or -1 on a
 * transport failure (then httpc_error() says why).  The reply body is
 * readable with httpc_reply() until the next request. */
long httpc_request(httpc_t *c, const char *path, const char *body, size_t len);
const char *httpc_reply(const httpc_t *c, size_t *len);
const char *httpc_error(const httpc_t *c);

/* A string that grows; sb_printf appends, aborting when out of memory. */
typedef struct sb {
    char *s;
    size_t len, cap;
} sb_t;

void sb_printf(sb_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sb_clear(sb_t *b);
void sb_free(sb_t *b);

#endif
