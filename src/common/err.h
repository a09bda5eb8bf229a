/*
 * err.h - the one error convention of jobd.
 *
 * Every fallible function returns an int: JOBD_OK (0) on success or a
 * negative JOBD_E* code.  Where the caller needs the real cause (a database
 * message, the field that was wrong), it passes an err_t that the callee fills
 * on failure only.  The HTTP layer turns an err_t into the single JSON error
 * shape; the code strings below are stable API and listed in docs/api.md.
 *
 * Checklist: if you add or rename a code here, update docs/api.md.
 */
#ifndef JOBD_ERR_H
#define JOBD_ERR_H

#include <stdarg.h>

/* X(enum suffix, value, stable code, HTTP status) */
#define JOBD_ERRORS(X)                                                                             \
    X(OK, 0, "ok", 200)                                                                            \
    X(EJSON, -1, "invalid_json", 400)                                                              \
    X(EFIELD, -2, "invalid_field", 422)                                                            \
    X(ENOTFOUND, -3, "not_found", 404)                                                             \
    X(ENOROUTE, -4, "no_such_route", 404)                                                          \
    X(EMETHOD, -5, "method_not_allowed", 405)                                                      \
    X(EUNAUTH, -6, "unauthorized", 401)                                                            \
    X(EFORBIDDEN, -7, "forbidden", 403)                                                            \
    X(EADMINOFF, -8, "admin_disabled", 403)                                                        \
    X(EBODYSIZE, -9, "body_too_large", 413)                                                        \
    X(EINPUTSIZE, -10, "input_too_large", 413)                                                     \
    X(EFINISHED, -11, "already_finished", 409)                                                     \
    X(ERELEASED, -12, "lease_released", 409)                                                       \
    X(EEXPIRED, -13, "lease_expired", 409)                                                         \
    X(EMISMATCH, -14, "lease_mismatch", 409)                                                       \
    X(ENOTPROC, -15, "not_processing", 409)                                                        \
    X(EDB, -16, "database_error", 500)                                                             \
    X(EDBDOWN, -17, "database_unavailable", 503)                                                   \
    X(ESCHEMA, -18, "schema_mismatch", 500)                                                        \
    X(EIO, -19, "io_error", 500)                                                                   \
    X(EINTERNAL, -20, "internal_error", 500)                                                       \
    X(EUNKNOWNBOT, -21, "unknown_bot", 404)                                                        \
    X(ESHUTDOWN, -22, "shutting_down", 503)                                                        \
    X(ECANCELLED, -23, "job_cancelled", 409)                                                       \
    X(ENOTRETRY, -24, "not_retryable", 409)

enum {
#define JOBD_ERR_ENUM(name, value, code, status) JOBD_##name = value,
    JOBD_ERRORS(JOBD_ERR_ENUM)
#undef JOBD_ERR_ENUM
};

#define JOBD_ERR_MSG_MAX 512

/* A failure with its cause.  Caller-allocated; filled only on failure. */
typedef struct err {
    int rc;                     /* a JOBD_E* code */
    char msg[JOBD_ERR_MSG_MAX]; /* human message with the real cause */
} err_t;

/* Stable snake_case code for rc ("lease_expired"); "unknown_error" if none. */
const char *err_code_str(int rc);

/* HTTP status that rc maps to (500 for unknown codes). */
int err_http_status(int rc);

/* Set e (if not NULL) to rc with a printf-style message; returns rc so that
 * callers can write `return err_set(e, JOBD_EFIELD, "...")`. */
int err_set(err_t *e, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Put a printf-style prefix before e's message (e.g. "jobs[3]: "), keeping
 * the prefix when the whole does not fit.  NULL e is a no-op. */
void err_prefix(err_t *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
