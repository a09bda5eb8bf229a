-- 0004 export queue (PostgreSQL): the same change as migrations/sqlite/0004,
-- where it says why, plus the export's claim: the server (--server-id) that
-- claimed a queued job's export, and when, move from jobs to export_queue.
-- Claiming and marking an export then touch only the small queue row (the
-- claim is a HOT update: no indexed column changes) instead of updating the
-- job row, and every index entry of it, twice.  As on SQLite, the statements
-- that finish or retry a job fill and empty the queue (store_pg.c).

CREATE TABLE export_queue (
    job_id      TEXT   COLLATE "C" NOT NULL PRIMARY KEY REFERENCES jobs (id),
    finished_at BIGINT NOT NULL,
    -- Only the claiming server deletes the row (marks the job exported), so a
    -- job is written by one server only; a claim older than store_pg.c's
    -- EXPORT_TAKEOVER_MS may be taken over from a server that went away.
    owner       TEXT,
    claimed_at  BIGINT
);

-- The exporters' walk, oldest finish first.
CREATE INDEX export_queue_order ON export_queue (finished_at, job_id);

INSERT INTO export_queue (job_id, finished_at, owner, claimed_at)
    SELECT id, finished_at, export_owner, export_claimed_at FROM jobs
    WHERE NOT exported AND status IN ('succeeded', 'failed', 'cancelled');

DROP INDEX jobs_unexported;
DROP INDEX jobs_exported;
ALTER TABLE jobs DROP COLUMN exported, DROP COLUMN export_owner, DROP COLUMN export_claimed_at;

-- Retention: see migrations/sqlite/0004.
CREATE INDEX jobs_finished ON jobs (finished_at, id)
    WHERE status IN ('succeeded', 'failed', 'cancelled');
