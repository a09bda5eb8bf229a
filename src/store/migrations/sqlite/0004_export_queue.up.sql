-- 0004 export queue: the datalake outbox becomes a table of its own.
--
-- Until 0003 a finished job waited for the datalake with jobs.exported = 0,
-- and the export set it to 1: one more rewrite of the whole job row (input,
-- result and all) and of its index entries for every job, on the hot path.
-- Now a finished job gets a small row in export_queue, and the export
-- deletes it.  A job is in the queue exactly while it is finished and not
-- yet in the datalake: the statement that finishes a job (complete, fail,
-- cancel) is followed in its transaction by export_enqueue, and a retry by
-- export_dequeue (store_sqlite.c).  Triggers would keep that rule in the
-- schema, but they make every update of a job's status (claims too)
-- dearer: a claim-finish-export cycle took 60 % longer with them in a
-- micro-benchmark.  The contract tests check each path instead.
--
-- The REFERENCES clause makes the database itself refuse to delete a job
-- that is still in the queue: retention can never purge an unexported job.

CREATE TABLE export_queue (
    job_id      TEXT    NOT NULL PRIMARY KEY REFERENCES jobs (id),
    -- The job's finished_at: the export goes oldest finish first, and the
    -- purge stops at the oldest job still queued (store_sqlite.c, PURGE_IDS).
    finished_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- The exporter's walk, oldest finish first; named by store_sqlite.c
-- (INDEXED BY) like jobs_claim.
CREATE INDEX export_queue_order ON export_queue (finished_at, job_id);

INSERT INTO export_queue (job_id, finished_at)
    SELECT id, finished_at FROM jobs
    WHERE exported = 0 AND status IN ('succeeded', 'failed', 'cancelled');

DROP INDEX jobs_unexported;
DROP INDEX jobs_exported;
ALTER TABLE jobs DROP COLUMN exported;

-- Retention: the purge walks this index from its oldest end and stops at the
-- cutoff, or at the oldest job still in export_queue, whichever is earlier,
-- so it never scans the table nor steps over unexported jobs.  Partial on
-- finished jobs; named by store_sqlite.c (INDEXED BY).
CREATE INDEX jobs_finished ON jobs (finished_at, id)
    WHERE status IN ('succeeded', 'failed', 'cancelled');
