-- 0010 json kept as sent: a PostgreSQL change only.  There, a job's input,
-- result and progress were jsonb, which writes numbers out in full (1e20 as
-- 21 digits, unreadable as a number by jansson) and sorts keys.  SQLite
-- stores them as the text jobd wrote, which is what 0010 makes PostgreSQL
-- do.  Nothing changes here; the version exists so that both engines keep
-- the same numbering.
SELECT 1;
