/*
 * httpc.c - libcurl easy handles for jobd-bench (httpc.h).  Options are set
 * once per handle and only the URL and body change per request, so a request
 * costs one round trip on a kept-alive connection and no option churn.
 */
#include "httpc.h"

#include <curl/curl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct httpc {
    CURL *h;
    struct curl_slist *headers;
    char base[256];
    char url[1024];
    sb_t reply;
    char err[CURL_ERROR_SIZE];
};

static void grow(sb_t *b, size_t need)
{
    if (b->len + need + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 1024;
    while (cap < b->len + need + 1)
        cap *= 2;
    b->s = realloc(b->s, cap);
    if (!b->s)
        abort();
    b->cap = cap;
}

void sb_printf(sb_t *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        abort();
    grow(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void sb_clear(sb_t *b)
{
    b->len = 0;
    if (b->s)
        b->s[0] = '\0';
}

void sb_free(sb_t *b)
{
    free(b->s);
    memset(b, 0, sizeof *b);
}

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    sb_t *b = userdata;
    size_t n = size * nmemb;
    grow(b, n);
    memcpy(b->s + b->len, ptr, n);
    b->len += n;
    b->s[b->len] = '\0';
    return n;
}

httpc_t *httpc_new(const char *base)
{
    httpc_t *c = calloc(1, sizeof *c);
    if (!c || !(c->h = curl_easy_init()))
        abort();
    snprintf(c->base, sizeof c->base, "%s", base);
    c->headers = curl_slist_append(NULL, "Content-Type: application/json");
    c->headers = curl_slist_append(c->headers, "Expect:");
    if (!c->headers)
        abort();
    curl_easy_setopt(c->h, CURLOPT_HTTPHEADER, c->headers);
    curl_easy_setopt(c->h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c->h, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(c->h, CURLOPT_TIMEOUT_MS, 60000L);
    curl_easy_setopt(c->h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c->h, CURLOPT_WRITEDATA, &c->reply);
    curl_easy_setopt(c->h, CURLOPT_ERRORBUFFER, c->err);
    return c;
}

void httpc_header(httpc_t *c, const char *line)
{
    struct curl_slist *h = curl_slist_append(c->headers, line);
    if (!h)
        abort();
    c->headers = h;
    curl_easy_setopt(c->h, CURLOPT_HTTPHEADER, c->headers);
}

void httpc_free(httpc_t *c)
{
    if (!c)
        return;
    curl_easy_cleanup(c->h);
    curl_slist_free_all(c->headers);
    sb_free(&c->reply);
    free(c);
}

long httpc_request(httpc_t *c, const char *path, const char *body, size_t len)
{
    long status = 0;

    snprintf(c->url, sizeof c->url, "%s%s", c->base, path);
    curl_easy_setopt(c->h, CURLOPT_URL, c->url);
    if (body) {
        curl_easy_setopt(c->h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c->h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    } else {
        curl_easy_setopt(c->h, CURLOPT_HTTPGET, 1L);
    }
    sb_clear(&c->reply);
    c->err[0] = '\0';
    if (curl_easy_perform(c->h) != CURLE_OK)
        return -1;
    curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, &status);
    return status;
}

const char *httpc_reply(const httpc_t *c, size_t *len)
{
    if (len)
        *len = c->reply.len;
    return c->reply.s ? c->reply.s : "";
}

const char *httpc_error(const httpc_t *c)
{
    return c->err[0] ? c->err : "transport error";
}
