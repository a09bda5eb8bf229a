/*
 * err.c - code strings, HTTP statuses and constructors for err_t.
 */
#include "err.h"

#include <stdio.h>
#include <string.h>

const char *err_code_str(int rc)
{
    switch (rc) {
#define JOBD_ERR_STR(name, value, code, status)                                                    \
    case value:                                                                                    \
        return code;
        JOBD_ERRORS(JOBD_ERR_STR)
#undef JOBD_ERR_STR
    }
    return "unknown_error";
}

int err_http_status(int rc)
{
    switch (rc) {
#define JOBD_ERR_STATUS(name, value, code, status)                                                 \
    case value:                                                                                    \
        return status;
        JOBD_ERRORS(JOBD_ERR_STATUS)
#undef JOBD_ERR_STATUS
    }
    return 500;
}

void err_prefix(err_t *e, const char *fmt, ...)
{
    char msg[JOBD_ERR_MSG_MAX];
    va_list ap;
    int n;

    if (!e)
        return;
    memcpy(msg, e->msg, sizeof msg);
    va_start(ap, fmt);
    n = vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n < sizeof e->msg)
        snprintf(e->msg + n, sizeof e->msg - (size_t)n, "%s", msg);
}

int err_set(err_t *e, int rc, const char *fmt, ...)
{
    if (e) {
        va_list ap;
        va_start(ap, fmt);
        e->rc = rc;
        vsnprintf(e->msg, sizeof e->msg, fmt, ap);
        va_end(ap);
    }
    return rc;
}
