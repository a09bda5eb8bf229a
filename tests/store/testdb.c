/*
 * testdb.c - temporary directories and databases for the store tests.  Each
 * test process works in its own mkdtemp directory so that tests can run in
 * parallel and leave nothing behind.
 */
#include "testdb.h"

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
