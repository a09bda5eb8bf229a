-- 0005 checks without IN lists: a SQLite change only (see
-- migrations/sqlite/0005: SQLite builds a temporary b-tree for an IN list
-- every time a CHECK runs; PostgreSQL does not).  Kept as a step here so
-- that both engines number their schema versions alike.
SELECT 1;
