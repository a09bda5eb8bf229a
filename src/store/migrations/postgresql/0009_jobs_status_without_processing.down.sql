-- 0009 jobs_status without processing, rolled back: nothing to undo on PostgreSQL.
SELECT 1;
