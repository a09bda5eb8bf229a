/*
 * test_operations.c - the bot's arithmetic at its edges: INT64_MIN/MAX,
 * division by zero, every overflow, 0^0, negative bases and exponents, and
 * inputs that are not two integers.  A wrong answer here would be reported
 * to the server as a job's result, so each case checks the exact value or
 * the exact reason.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "operations.h"

#include <string.h>

/* Run name on {"a": a, "b": b}; returns rc and fills *out and e. */
static int run(const char *name, int64_t a, int64_t b, int64_t *out, err_t *e)
{
    json_t *input = json_pack("{s:I, s:I}", "a", (json_int_t)a, "b", (json_int_t)b);
    int rc;

    assert_non_null(input);
    memset(e, 0, sizeof *e);
    rc = operation_run(name, input, out, e);
    json_decref(input);
    return rc;
}

static void check_value(const char *name, int64_t a, int64_t b, int64_t want)
{
    int64_t got = 0;
    err_t e;

    if (run(name, a, b, &got, &e) != JOBD_OK)
        fail_msg("%s(%lld, %lld): unexpected error: %s", name, (long long)a, (long long)b, e.msg);
    if (got != want)
        fail_msg("%s(%lld, %lld) = %lld, want %lld", name, (long long)a, (long long)b,
                 (long long)got, (long long)want);
}

static void check_error(const char *name, int64_t a, int64_t b, const char *needle)
{
    int64_t got = 12345;
    err_t e;

    if (run(name, a, b, &got, &e) != JOBD_EFIELD)
        fail_msg("%s(%lld, %lld): want an error with '%s', got %lld", name, (long long)a,
                 (long long)b, needle, (long long)got);
    if (!strstr(e.msg, needle))
        fail_msg("%s(%lld, %lld): error '%s' lacks '%s'", name, (long long)a, (long long)b, e.msg,
                 needle);
    assert_int_equal(got, 12345); /* OUT untouched on failure */
}

static void test_sum(void **state)
{
    check_value("sum", 613, 342, 955);
    check_value("sum", -5, 3, -2);
    check_value("sum", INT64_MAX, 0, INT64_MAX);
    check_value("sum", INT64_MIN, INT64_MAX, -1);
    check_value("sum", INT64_MAX - 1, 1, INT64_MAX);
    check_error("sum", INT64_MAX, 1, "overflow");
    check_error("sum", INT64_MIN, -1, "overflow");
}

static void test_difference(void **state)
{
    check_value("difference", 3, 5, -2);
    check_value("difference", INT64_MIN, INT64_MIN, 0);
    check_value("difference", -1, INT64_MAX, INT64_MIN);
    check_error("difference", INT64_MIN, 1, "overflow");
    check_error("difference", 0, INT64_MIN, "overflow");
    check_error("difference", INT64_MAX, -1, "overflow");
}

static void test_product(void **state)
{
    check_value("product", -7, 6, -42);
    check_value("product", INT64_MIN, 1, INT64_MIN);
    check_value("product", INT64_MAX, -1, -INT64_MAX);
    check_value("product", 0, INT64_MIN, 0);
    check_value("product", 3037000499, 3037000499, INT64_C(9223372030926249001));
    check_error("product", INT64_MIN, -1, "overflow");
    check_error("product", 3037000500, 3037000500, "overflow");
    check_error("product", INT64_MAX, 2, "overflow");
}

static void test_quotient(void **state)
{
    check_value("quotient", 7, 2, 3);
    check_value("quotient", -7, 2, -3); /* truncates toward zero */
    check_value("quotient", 7, -2, -3);
    check_value("quotient", -7, -2, 3);
    check_value("quotient", INT64_MIN, 1, INT64_MIN);
    check_value("quotient", INT64_MAX, -1, -INT64_MAX);
    check_value("quotient", 0, -5, 0);
    check_error("quotient", 7, 0, "division by zero");
    check_error("quotient", 0, 0, "division by zero");
    check_error("quotient", INT64_MIN, -1, "overflow");
}

static void test_remainder(void **state)
{
    check_value("remainder", 7, 3, 1);
    check_value("remainder", -7, 2, -1); /* sign of a */
    check_value("remainder", 7, -2, 1);
    check_value("remainder", INT64_MIN, -1, 0);
    check_value("remainder", INT64_MIN, INT64_MAX, -1);
    check_value("remainder", INT64_MAX, INT64_MIN, INT64_MAX);
    check_error("remainder", 7, 0, "division by zero");
    check_error("remainder", INT64_MIN, 0, "division by zero");
}

static void test_power(void **state)
{
    check_value("power", 0, 0, 1);
    check_value("power", 5, 0, 1);
    check_value("power", 0, 5, 0);
    check_value("power", 2, 10, 1024);
    check_value("power", 2, 62, INT64_C(1) << 62);
    check_value("power", -2, 63, INT64_MIN);
    check_value("power", -2, 3, -8);
    check_value("power", -3, 4, 81);
    check_value("power", 1, INT64_MAX, 1);
    check_value("power", -1, INT64_MAX, -1);
    check_value("power", -1, INT64_MAX - 1, 1);
    check_value("power", 10, 18, INT64_C(1000000000000000000));
    check_value("power", 3, 39, INT64_C(4052555153018976267));
    check_error("power", 2, 63, "overflow");
    check_error("power", -2, 64, "overflow");
    check_error("power", 10, 19, "overflow");
    check_error("power", 3, 40, "overflow");
    check_error("power", 2, INT64_MAX, "overflow");
    check_error("power", INT64_MIN, 2, "overflow");
    check_error("power", 2, -1, "negative exponent");
    check_error("power", 0, INT64_MIN, "negative exponent");
}

static void check_input_error(const char *name, const char *input_json, const char *needle)
{
    json_t *input = json_loads(input_json, JSON_DECODE_ANY, NULL);
    int64_t got = 0;
    err_t e = {0};

    assert_int_equal(operation_run(name, input, &got, &e), JOBD_EFIELD);
    if (!strstr(e.msg, needle))
        fail_msg("%s %s: error '%s' lacks '%s'", name, input_json, e.msg, needle);
    json_decref(input);
}

static void test_bad_input(void **state)
{
    check_input_error("sum", "{\"b\": 1}", "'a' is missing");
    check_input_error("sum", "{\"a\": 1}", "'b' is missing");
    check_input_error("sum", "{\"a\": 1.5, \"b\": 1}", "'a' must be an integer");
    check_input_error("sum", "{\"a\": 1, \"b\": \"2\"}", "'b' must be an integer");
    check_input_error("sum", "{\"a\": null, \"b\": 2}", "'a' must be an integer");
    check_input_error("sum", "{\"a\": true, \"b\": 2}", "'a' must be an integer");
    check_input_error("sum", "[1, 2]", "input must be an object");
    check_input_error("modulo", "{\"a\": 1, \"b\": 2}", "unknown operation 'modulo'");
}

static void test_names_and_describe(void **state)
{
    char buf[256];
    json_t *input = json_pack("{s:i, s:i}", "a", 613, "b", 342);

    for (int i = 0; i < OPERATION_COUNT; i++)
        assert_true(operation_known(operation_names[i]));
    assert_false(operation_known("Sum"));
    assert_false(operation_known(NULL));
    assert_string_equal(operation_describe("sum", input, buf, sizeof buf), "613 sum 342");
    json_object_set_new(input, "b", json_string("x"));
    assert_string_equal(operation_describe("sum", input, buf, sizeof buf),
                        "sum {\"a\":613,\"b\":\"x\"}");
    json_decref(input);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sum),       cmocka_unit_test(test_difference),
        cmocka_unit_test(test_product),   cmocka_unit_test(test_quotient),
        cmocka_unit_test(test_remainder), cmocka_unit_test(test_power),
        cmocka_unit_test(test_bad_input), cmocka_unit_test(test_names_and_describe),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
