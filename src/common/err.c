/*
 * err.c - code strings, HTTP statuses and constructors for err_t.
 */
#include "err.h"

#include <stdio.h>

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
