-- 0004 export queue, rolled back (PostgreSQL): a job still in export_queue
-- becomes unexported again, with its claim; every other finished job is
-- exported.  The indexes of 0002 and 0003 come back.
DROP INDEX jobs_finished;

ALTER TABLE jobs ADD COLUMN exported BOOLEAN NOT NULL DEFAULT false,
                 ADD COLUMN export_owner TEXT,
                 ADD COLUMN export_claimed_at BIGINT;
UPDATE jobs SET exported = true
    WHERE status IN ('succeeded', 'failed', 'cancelled')
      AND id NOT IN (SELECT job_id FROM export_queue);
UPDATE jobs SET export_owner = q.owner, export_claimed_at = q.claimed_at
    FROM export_queue AS q WHERE jobs.id = q.job_id AND q.owner IS NOT NULL;

CREATE INDEX jobs_unexported ON jobs (finished_at, id)
    WHERE NOT exported AND status IN ('succeeded', 'failed', 'cancelled');
CREATE INDEX jobs_exported ON jobs (finished_at, id)
    WHERE exported AND status IN ('succeeded', 'failed', 'cancelled');

DROP TABLE export_queue;
