/*
 * operations.h - the arithmetic the stock bot knows: sum, difference,
 * product, quotient, remainder and power on 64-bit signed integers, taking
 * {"a": <integer>, "b": <integer>}.  Every result is exact or refused: an
 * answer that does not exist in int64 is an error, never a wrapped number.
 */
#ifndef JOBD_OPERATIONS_H
#define JOBD_OPERATIONS_H

#include "err.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The names, in a fixed order; OPERATION_COUNT of them. */
#define OPERATION_COUNT 6
extern const char *const operation_names[OPERATION_COUNT];

/* True if name is one of operation_names. */
bool operation_known(const char *name);

/* Compute operation `name` on `input`.  On success writes *result and returns
 * JOBD_OK.  Otherwise returns JOBD_EFIELD with e->msg saying why, in words a
 * job's submitter can act on: "division by zero", "overflow: ...",
 * "negative exponent: ...", "field 'b' is missing", "unknown operation ...".
 * (The input is outside the operation's domain, hence invalid_field.)
 *
 * quotient truncates toward zero and remainder takes the sign of a, as C's
 * / and % do: 7 quotient -2 = -3, -7 remainder 2 = -1.  INT64_MIN remainder
 * -1 is 0 (exact, although C's % would trap); INT64_MIN quotient -1 is an
 * overflow.  power(0, 0) is 1. */
int operation_run(const char *name, const json_t *input, int64_t *result, err_t *e);

/* Describe the computation for the log: "613 sum 342" when a and b are
 * integers, else "sum {...input as JSON...}".  Returns buf. */
const char *operation_describe(const char *name, const json_t *input, char *buf, size_t len);

#endif
