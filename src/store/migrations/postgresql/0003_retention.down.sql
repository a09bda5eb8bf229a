-- 0003 retention, rolled back: jobs already purged stay in the datalake only;
-- the index goes.
DROP INDEX jobs_exported;
