-- 0009 jobs_status without processing, rolled back: the index of 0001 again.
DROP INDEX jobs_status;
CREATE INDEX jobs_status ON jobs (status, id);
