/*
 * test_clock.c - clock_format_ms against the C library: the hand-written
 * calendar arithmetic must give exactly what gmtime_r and snprintf give, on
 * the days where calendars go wrong (leap days, century years, the ends of
 * months and years) and on a spread of ordinary ones.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "clock.h"

/* What clock_format_ms printed before it was written by hand. */
static void reference(int64_t ms, char buf[128], char sep)
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    snprintf(buf, 128, "%04d-%02d-%02d%c%02d:%02d:%02d.%03d%s", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, sep, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000),
             sep == 'T' ? "Z" : "");
}

static void assert_same(int64_t ms)
{
    char want[128], got[40];
    for (int i = 0; i < 2; i++) {
        char sep = i ? ' ' : 'T';
        reference(ms, want, sep);
        memset(got, 'x', sizeof got);
        clock_format_ms(ms, got, sizeof got, sep);
        if (strcmp(want, got) != 0)
            fail_msg("%lld ms: want %s, got %s", (long long)ms, want, got);
    }
}

static void test_known_times(void **state)
{
    char buf[32];
    (void)state;
    clock_format_ms(0, buf, sizeof buf, 'T');
    assert_string_equal(buf, "1970-01-01T00:00:00.000Z");
    clock_format_ms(1795896421123LL, buf, sizeof buf, 'T');
    assert_string_equal(buf, "2026-11-28T20:07:01.123Z");
    clock_format_ms(951782400000LL, buf, sizeof buf, ' ');
    assert_string_equal(buf, "2000-02-29 00:00:00.000");
    clock_format_ms(253402300799999LL, buf, sizeof buf, 'T');
    assert_string_equal(buf, "9999-12-31T23:59:59.999Z");
}

/* Around midnight of every day from 1970 to 2110, and 200,000 random
 * instants up to the year 9999. */
static void test_agrees_with_libc(void **state)
{
    (void)state;
    for (int64_t day = 0; day < 51500; day++) {
        assert_same(day * 86400000);
        assert_same(day * 86400000 + 86399999);
        assert_same(day * 86400000 + 43200123);
    }
    srand(42);
    for (int i = 0; i < 200000; i++) {
        int64_t ms = ((int64_t)rand() << 31 | rand()) % 253402300800000LL;
        assert_same(ms);
    }
}

/* A short buffer is cut as snprintf would cut it. */
static void test_short_buffer(void **state)
{
    char buf[11];
    (void)state;
    clock_format_ms(1795896421123LL, buf, sizeof buf, 'T');
    assert_string_equal(buf, "2026-11-28");
    clock_format_ms(1795896421123LL, buf, 1, 'T');
    assert_string_equal(buf, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_times),
        cmocka_unit_test(test_agrees_with_libc),
        cmocka_unit_test(test_short_buffer),
    };
    return cmocka_run_group_tests_name("clock", tests, NULL, NULL);
}
