/*
 * fuzz_api.c - fuzzes the whole request path a client controls: method,
 * path, query arguments, headers and body, through the router into every
 * handler and a real SQLite store.  The input is
 *   "METHOD PATH?QUERY\nAuthorization-value\nBODY..."
 * and the property is simply that nothing crashes, leaks or trips a
 * sanitizer, and that every reply is either a 2xx/204 with a body as
 * documented or an error with a known code.
 *
 * Built two ways: with clang -fsanitize=fuzzer (tests/fuzz/run) for
 * coverage-guided runs, and with a plain main() (standalone.c) that replays
 * the committed corpus as a CTest regression test.
 */
#include "err.h"
#include "server.h"
#include "store.h"
#include "waitq.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Checked in every build (CHECK() is compiled out in release builds). */
#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_api: check failed: %s\n", #cond);                                \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static server_t srv;

static void setup(void)
{
    static char dir[] = "/tmp/jobd-fuzz-XXXXXX";
    char path[64];
    err_t e;

    if (!mkdtemp(dir))
        abort();
    snprintf(path, sizeof path, "%s/jobd.db", dir);
    if (store_open(path, &srv.store, &e) != JOBD_OK || store_migrate_up(srv.store, &e) != JOBD_OK ||
        store_prepare(srv.store, &e) != JOBD_OK) {
        fprintf(stderr, "fuzz setup: %s\n", e.msg);
        abort();
    }
    srv.waitq = waitq_new();
    srv.cfg.lease_ms = 30000;
    srv.cfg.max_input = 4096;
    srv.cfg.max_body = 65536;
    snprintf(srv.cfg.admin_token, sizeof srv.cfg.admin_token, "fuzz-token");
}

/* Split "a=b&c=d" into the request's argument arrays (in place). */
static void parse_query(char *q, req_t *req)
{
    while (q && *q && req->nargs < REQ_MAX_ARGS) {
        char *next = strchr(q, '&');
        char *eq;
        if (next)
            *next++ = '\0';
        eq = strchr(q, '=');
        if (eq)
            *eq++ = '\0';
        req->arg_names[req->nargs] = q;
        req->arg_values[req->nargs] = eq ? eq : "";
        req->nargs++;
        q = next;
    }
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    char *buf, *line1, *line2, *body, *sp, *query;
    req_t req;
    reply_t rep;

    if (!srv.store)
        setup();
    buf = malloc(size + 1);
    if (!buf)
        abort();
    memcpy(buf, data, size);
    buf[size] = '\0';

    line1 = buf;
    line2 = strchr(line1, '\n');
    if (line2)
        *line2++ = '\0';
    body = line2 ? strchr(line2, '\n') : NULL;
    if (body)
        *body++ = '\0';
    sp = strchr(line1, ' ');
    if (!sp)
        goto out_free;
    *sp = '\0';
    query = strchr(sp + 1, '?');
    if (query)
        *query++ = '\0';

    memset(&req, 0, sizeof req);
    memset(&rep, 0, sizeof rep);
    req.method = line1;
    req.path = sp + 1;
    req.authorization = line2 && *line2 ? line2 : NULL;
    req.body = body;
    req.body_len = body ? size - (size_t)(body - buf) : 0;
    req.request_id = "fuzz";
    /* Both reply shapes (Prefer: return=minimal), chosen by the input. */
    req.minimal = size % 2 == 1;
    parse_query(query, &req);

    router_dispatch(&srv, &req, &rep);
    if (rep.err.rc != JOBD_OK) {
        /* every error maps to a documented code */
        CHECK(strcmp(err_code_str(rep.err.rc), "unknown_error") != 0);
        CHECK(rep.body == NULL);
    } else if (rep.wait_until == 0) {
        CHECK(rep.status >= 200 && rep.status < 300);
        CHECK(rep.status == 204 || rep.body != NULL);
    }
    json_decref(rep.body);
    json_decref(rep.wait_ops);
    json_decref(rep.carry);

out_free:
    free(buf);
    return 0;
}
