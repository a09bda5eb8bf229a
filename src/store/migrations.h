/*
 * migrations.h - the schema migrations compiled into the binary (private to
 * src/store).  Each backend's set is generated at build time from its
 * migrations/<backend>/NNNN_name.{up,down}.sql by embed_migrations.cmake.
 */
#ifndef JOBD_MIGRATIONS_H
#define JOBD_MIGRATIONS_H

typedef struct store_migration {
    int version;      /* 1..count, in order */
    const char *name; /* from the file name, e.g. "initial schema" */
    const char *up;   /* SQL script applying it */
    const char *down; /* SQL script undoing it */
} store_migration_t;

/* SQLite: store_sqlite_migrations[i].version == i + 1. */
extern const store_migration_t store_sqlite_migrations[];
extern const int store_sqlite_migrations_count;

/* PostgreSQL: the same versions with the same names, in its dialect
 * (tests/store/store_pg_test.c checks that the two sets agree). */
extern const store_migration_t store_pg_migrations[];
extern const int store_pg_migrations_count;

#endif
