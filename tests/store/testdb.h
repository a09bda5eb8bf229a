/*
 * testdb.h - what the store test programs share: one temporary directory per
 * test process, a store opened on a migrated and prepared database, and
 * assertions that print the store's own error message when they fail.
 */
#ifndef JOBD_TESTDB_H
#define JOBD_TESTDB_H

#include "store.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

/* The process's temporary directory, made on first use and removed with
 * everything in it when the process exits. */
const char *testdb_dir(void);

/* A new path `name` inside testdb_dir(); the caller frees it. */
char *testdb_path(const char *name);

/* Open `db`, apply every migration and prepare; fails the test otherwise. */
store_t *testdb_open(const char *db);

/* store_export_pending's batch read back as records: an array of the job
 * objects its lines hold.  Fails the test unless every line is one JSON
 * object whose "id" is the job's, and the batch's finish time is the
 * record's.  A new reference. */
json_t *testdb_export(store_t *s, const char *server_id, int limit);

/* Fail the test unless `call` returned `want`, showing the message. */
#define assert_rc(call, want, e)                                                                   \
    do {                                                                                           \
        int rc_ = (call);                                                                          \
        if (rc_ != (want))                                                                         \
            fail_msg("%s returned %s, not %s: %s", #call, err_code_str(rc_), err_code_str(want),   \
                     rc_ ? (e)->msg : "");                                                         \
    } while (0)

#define assert_ok(call, e) assert_rc(call, JOBD_OK, e)

/* Fail the test unless string `hay` contains `needle`. */
#define assert_contains(hay, needle)                                                               \
    do {                                                                                           \
        const char *h_ = (hay);                                                                    \
        if (!h_ || !strstr(h_, (needle)))                                                          \
            fail_msg("\"%s\" does not contain \"%s\"", h_ ? h_ : "(null)", (needle));              \
    } while (0)

#endif
