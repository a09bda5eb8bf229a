/*
 * validate.h - turning request bodies into typed values, with the errors a
 * client can act on: 400 invalid_json with line and column, 422
 * invalid_field naming the field.  Every handler reads its input through
 * these, so every bad input gets the same treatment.
 */
#ifndef JOBD_VALIDATE_H
#define JOBD_VALIDATE_H

#include "err.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Parse body (not empty) as any JSON value.  OUT: *v, a new reference. */
int validate_json(const char *body, size_t len, json_t **v, err_t *e);

/* Parse body (may be NULL/empty) as a JSON object.  With optional set, an
 * empty body gives an empty object.  OUT: *obj, a new reference. */
int validate_body(const char *body, size_t len, bool optional, json_t **obj, err_t *e);

/* A string field of 1..maxlen bytes.  When absent: an error if required,
 * else *out = NULL.  OUT: *out, borrowed from obj. */
int validate_string(const json_t *obj, const char *field, bool required, size_t maxlen,
                    const char **out, err_t *e);

/* An integer field within [min, max]; `def` when absent and not required. */
int validate_int(const json_t *obj, const char *field, bool required, int64_t min, int64_t max,
                 int64_t def, int64_t *out, err_t *e);

/* A non-empty array of at most maxn names (see validate_name).
 * OUT: *out, borrowed from obj. */
int validate_names(const json_t *obj, const char *field, size_t maxn, json_t **out, err_t *e);

/* True if s is 1..64 characters of A-Z a-z 0-9 _ . - (operation names). */
bool validate_name(const char *s);

#endif
