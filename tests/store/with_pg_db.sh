#!/bin/sh
# with_pg_db.sh - runs a test program on a PostgreSQL database of its own: made
# in the server that $JOBD_TEST_PG names (a postgresql:// URL ending in
# /dbname; scripts/test starts a throwaway server and sets it), handed to the
# program as $JOBD_TEST_DB, and dropped afterwards.  Without $JOBD_TEST_PG it
# exits 77, which CTest reports as skipped.
# Usage: with_pg_db.sh PROGRAM [ARGS...]
set -u
if [ -z "${JOBD_TEST_PG:-}" ]; then
    echo "skipped: JOBD_TEST_PG is not set (scripts/test starts a PostgreSQL and sets it)"
    exit 77
fi
db="jobd_test_$$_$(od -An -N4 -tx4 /dev/urandom | tr -d ' ')"
psql -qX -v ON_ERROR_STOP=1 "$JOBD_TEST_PG" -c "CREATE DATABASE $db" || exit 1
JOBD_TEST_DB="${JOBD_TEST_PG%/*}/$db" "$@"
rc=$?
psql -qX "$JOBD_TEST_PG" -c "DROP DATABASE $db WITH (FORCE)" >/dev/null 2>&1
exit $rc
