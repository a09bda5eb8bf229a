-- 0003 retention: a finished job leaves the database once it is in the
-- datalake and its retention (--retention-ms after finished_at) has passed;
-- the ticker deletes such jobs, with their attempts and events, in small
-- batches, oldest finish first (store_job_purge).
--
-- The purge walks this index from its oldest end and stops at the cutoff, so
-- it never scans the table: without it, every sweep would read every
-- finished job.  Partial on exported finished jobs, so it holds only what
-- retention keeps, and named by store_sqlite.c (INDEXED BY) like jobs_claim.
-- Unexported jobs are not in it: the datalake is their only long-term record,
-- so they are never deleted.
CREATE INDEX jobs_exported ON jobs (finished_at, id)
    WHERE exported = 1 AND status IN ('succeeded', 'failed', 'cancelled');
