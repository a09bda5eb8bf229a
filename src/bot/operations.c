/*
 * operations.c - the six integer operations of the stock bot.  Overflow is
 * detected with the compiler's checked-arithmetic builtins, so a result is
 * either the exact mathematical answer or an error naming why there is none.
 */
#include "operations.h"

#include <inttypes.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

/* An operation writes *out only on success: the builtins store the wrapped
 * value even when they report an overflow, so results go through a local. */
typedef int (*operation_fn)(int64_t a, int64_t b, int64_t *out, err_t *e);

static int overflow(err_t *e, int64_t a, const char *op, int64_t b)
{
    return err_set(e, JOBD_EFIELD,
                   "overflow: %" PRId64 " %s %" PRId64 " does not fit in a 64-bit integer", a, op,
                   b);
}

static int op_sum(int64_t a, int64_t b, int64_t *out, err_t *e)
{
    int64_t r;

    if (__builtin_add_overflow(a, b, &r))
        return overflow(e, a, "sum", b);
    *out = r;
    return JOBD_OK;
}

static int op_difference(int64_t a, int64_t b, int64_t *out, err_t *e)
{
    int64_t r;

    if (__builtin_sub_overflow(a, b, &r))
        return overflow(e, a, "difference", b);
    *out = r;
    return JOBD_OK;
}

static int op_product(int64_t a, int64_t b, int64_t *out, err_t *e)
{
    int64_t r;

    if (__builtin_mul_overflow(a, b, &r))
        return overflow(e, a, "product", b);
    *out = r;
    return JOBD_OK;
}

static int op_quotient(int64_t a, int64_t b, int64_t *out, err_t *e)
{
    if (b == 0)
        return err_set(e, JOBD_EFIELD, "division by zero");
    if (a == INT64_MIN && b == -1) /* 2^63 is one past INT64_MAX */
        return overflow(e, a, "quotient", b);
    *out = a / b;
    return JOBD_OK;
}

static int op_remainder(int64_t a, int64_t b, int64_t *out, err_t *e)
{
    if (b == 0)
        return err_set(e, JOBD_EFIELD, "division by zero");
    /* Mathematically 0, but C's % computes the overflowing quotient first
     * and traps on x86. */
    *out = b == -1 ? 0 : a % b;
    return JOBD_OK;
}

/* Exponentiation by squaring.  Squaring the base only when more bits of
 * the exponent remain means a squaring overflows only if the final answer
 * would too (|base|^(2^k) divides into it), so no false overflow. */
static int op_power(int64_t a, int64_t b, int64_t *out, err_t *e)
{
    int64_t base = a, acc = 1;
    uint64_t exp;

    if (b < 0)
        return err_set(e, JOBD_EFIELD,
                       "negative exponent: %" PRId64 " power %" PRId64
                       " is not an integer (exponent must be >= 0)",
                       a, b);
    exp = (uint64_t)b;
    while (exp) {
        if ((exp & 1) && __builtin_mul_overflow(acc, base, &acc))
            return overflow(e, a, "power", b);
        exp >>= 1;
        if (exp && __builtin_mul_overflow(base, base, &base))
            return overflow(e, a, "power", b);
    }
    *out = acc;
    return JOBD_OK;
}

/* Checklist: operation_names and this table list the same operations in
 * the same order, and operations.h describes each. */
static const operation_fn operation_fns[OPERATION_COUNT] = {
    op_sum, op_difference, op_product, op_quotient, op_remainder, op_power,
};
const char *const operation_names[OPERATION_COUNT] = {
    "sum", "difference", "product", "quotient", "remainder", "power",
};

static int find(const char *name)
{
    for (int i = 0; i < OPERATION_COUNT; i++)
        if (name && strcmp(name, operation_names[i]) == 0)
            return i;
    return -1;
}

bool operation_known(const char *name)
{
    return find(name) >= 0;
}

static int get_operand(const json_t *input, const char *field, int64_t *out, err_t *e)
{
    const json_t *v = json_object_get(input, field);

    if (!v)
        return err_set(e, JOBD_EFIELD, "field '%s' is missing", field);
    if (!json_is_integer(v))
        return err_set(e, JOBD_EFIELD, "field '%s' must be an integer", field);
    *out = (int64_t)json_integer_value(v);
    return JOBD_OK;
}

int operation_run(const char *name, const json_t *input, int64_t *result, err_t *e)
{
    int i = find(name);
    int64_t a = 0, b = 0; /* set by get_operand(); gcc -O3 cannot see it */
    int rc;

    if (i < 0)
        return err_set(e, JOBD_EFIELD, "unknown operation '%s'", name ? name : "(none)");
    if (!json_is_object(input))
        return err_set(e, JOBD_EFIELD, "input must be an object {\"a\": ..., \"b\": ...}");
    rc = get_operand(input, "a", &a, e);
    if (rc == JOBD_OK)
        rc = get_operand(input, "b", &b, e);
    if (rc == JOBD_OK)
        rc = operation_fns[i](a, b, result, e);
    return rc;
}

const char *operation_describe(const char *name, const json_t *input, char *buf, size_t len)
{
    const json_t *a = json_object_get(input, "a"), *b = json_object_get(input, "b");
    char *text;

    if (json_is_integer(a) && json_is_integer(b)) {
        snprintf(buf, len, "%" JSON_INTEGER_FORMAT " %s %" JSON_INTEGER_FORMAT,
                 json_integer_value(a), name, json_integer_value(b));
        return buf;
    }
    text = input ? json_dumps(input, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    snprintf(buf, len, "%s %.200s", name, text ? text : "null");
    free(text);
    return buf;
}
