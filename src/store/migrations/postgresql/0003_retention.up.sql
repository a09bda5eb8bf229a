-- 0003 retention (PostgreSQL): the same change as migrations/sqlite/0003,
-- where it says why.  A finished job leaves the database once it is in the
-- datalake and its retention (--retention-ms after finished_at) has passed;
-- every server's ticker deletes such jobs, with their attempts and events, in
-- small batches, oldest finish first, skipping rows another server holds.
--
-- The purge walks this index from its oldest end and stops at the cutoff, so
-- it never scans the table.  Partial on exported finished jobs, so it holds
-- only what retention keeps; unexported jobs are never deleted.
CREATE INDEX jobs_exported ON jobs (finished_at, id)
    WHERE exported AND status IN ('succeeded', 'failed', 'cancelled');
