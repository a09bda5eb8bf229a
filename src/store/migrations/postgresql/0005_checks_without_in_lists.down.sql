-- 0005 checks without IN lists, rolled back: nothing to undo on PostgreSQL.
SELECT 1;
