/*
 * test_log.c - log records, alone and in batches (log.h): a batch writes
 * nothing until it ends, a warning goes out at once after the records kept
 * before it, a batch larger than its buffer loses no record and cuts none,
 * and a record outside a batch is written at once.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "log.h"

static char path[] = "/tmp/jobd-test-log-XXXXXX";

/* What has been written to stderr (a file) so far; the caller frees it. */
static char *written(void)
{
    FILE *f = fopen(path, "r");
    char *text;
    long n;

    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    text = calloc(1, (size_t)n + 1);
    assert_non_null(text);
    assert_int_equal(fread(text, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    return text;
}

static int lines(const char *text)
{
    int n = 0;
    for (; *text; text++)
        n += *text == '\n';
    return n;
}

static int setup(void **state)
{
    int fd = mkstemp(path);
    (void)state;
    if (fd < 0 || dup2(fd, STDERR_FILENO) < 0)
        return -1;
    close(fd);
    log_set_level(LOG_INFO);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unlink(path);
    return 0;
}

static void test_batch_waits_for_its_end(void **state)
{
    char *text;
    (void)state;

    assert_int_equal(ftruncate(STDERR_FILENO, 0), 0);
    lseek(STDERR_FILENO, 0, SEEK_SET);
    log_info("alone");
    text = written();
    assert_non_null(strstr(text, "INFO  alone\n"));
    free(text);

    log_batch_begin();
    log_info("first");
    log_debug("dropped: below the level");
    log_info("second");
    text = written();
    assert_int_equal(lines(text), 1);
    free(text);

    /* A warning goes out at once, after what the batch held. */
    log_warn("third");
    text = written();
    assert_int_equal(lines(text), 4);
    assert_true(strstr(text, "first") < strstr(text, "second"));
    assert_true(strstr(text, "second") < strstr(text, "WARN  third"));
    free(text);

    log_info("fourth");
    log_batch_end();
    text = written();
    assert_int_equal(lines(text), 5);
    assert_null(strstr(text, "dropped"));
    assert_true(strstr(text, "third") < strstr(text, "fourth"));
    free(text);
}

/* Four times the buffer: every record is there, whole and in order. */
static void test_batch_larger_than_its_buffer(void **state)
{
    char pad[200], want[64], *text, *at;
    int n = 4 * LOG_BATCH_MAX / 220;
    (void)state;

    assert_int_equal(ftruncate(STDERR_FILENO, 0), 0);
    lseek(STDERR_FILENO, 0, SEEK_SET);
    memset(pad, 'x', sizeof pad - 1);
    pad[sizeof pad - 1] = '\0';
    log_batch_begin();
    for (int i = 0; i < n; i++)
        log_info("record %d %s end", i, pad);
    log_batch_end();
    text = written();
    assert_int_equal(lines(text), n);
    at = text;
    for (int i = 0; i < n; i++) {
        snprintf(want, sizeof want, "record %d x", i);
        at = strstr(at, want);
        assert_non_null(at);
        at = strchr(at, '\n');
        assert_non_null(at);
        assert_memory_equal(at - 4, " end", 4);
    }
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batch_waits_for_its_end),
        cmocka_unit_test(test_batch_larger_than_its_buffer),
    };
    return cmocka_run_group_tests_name("log", tests, setup, teardown);
}
