/*
 * testdb.c - temporary directories and databases for the store tests.  Each
 * test process works in its own mkdtemp directory so that tests can run in
 * parallel and leave nothing behind.
 */
#include "testdb.h"
#include "record.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[256];

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(path);
}

static void remove_dir(void)
{
    if (dir[0] && !getenv("JOBD_TEST_KEEP"))
        nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

const char *testdb_dir(void)
{
    if (!dir[0]) {
        const char *tmp = getenv("TMPDIR");
        snprintf(dir, sizeof dir, "%s/jobd-store-test-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(dir)) {
            perror(dir);
            abort();
        }
        atexit(remove_dir);
    }
    return dir;
}

char *testdb_path(const char *name)
{
    char *path;
    if (asprintf(&path, "%s/%s", testdb_dir(), name) < 0)
        abort();
    return path;
}

store_t *testdb_open(const char *db)
{
    store_t *s = NULL;
    err_t e;

    assert_ok(store_open(db, &s, &e), &e);
    assert_ok(store_migrate_up(s, &e), &e);
    assert_ok(store_prepare(s, &e), &e);
    return s;
}

json_t *testdb_export(store_t *s, const char *server_id, int limit)
{
    store_export_t *batch = NULL;
    json_t *jobs = json_array();
    err_t e;

    assert_ok(store_export_pending(s, server_id, limit, &batch, &e), &e);
    for (size_t i = 0; i < batch->n; i++) {
        const store_export_job_t *j = &batch->jobs[i];
        json_error_t err;
        json_t *job = json_loadb(j->line, j->len, 0, &err);
        const char *finished;
        long long ms;

        if (!json_is_object(job))
            fail_msg("export line %zu is not a JSON object (%s): %.*s", i, err.text, (int)j->len,
                     j->line);
        if (strlen(j->line) != j->len || memchr(j->line, '\n', j->len))
            fail_msg("export line %zu: its length is not %zu, or it holds a newline", i, j->len);
        assert_string_equal(json_string_value(json_object_get(job, "id")), j->id);
        finished = json_string_value(json_object_get(job, "finished_at"));
        assert_int_equal(j->finished, finished != NULL);
        if (finished) {
            assert_true(record_parse_time(finished, &ms));
            assert_int_equal(ms, j->finished_at);
        }
        json_array_append_new(jobs, job);
    }
    store_export_free(batch);
    return jobs;
}
