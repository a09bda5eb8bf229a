-- 0004 export queue, rolled back: a job still in export_queue becomes
-- exported = 0 again, every other finished job exported = 1, and the
-- indexes of 0001-0003 come back.
DROP INDEX jobs_finished;

ALTER TABLE jobs ADD COLUMN exported INTEGER NOT NULL DEFAULT 0 CHECK (exported IN (0, 1));
UPDATE jobs SET exported = 1
    WHERE status IN ('succeeded', 'failed', 'cancelled')
      AND id NOT IN (SELECT job_id FROM export_queue);

CREATE INDEX jobs_unexported ON jobs (finished_at, id)
    WHERE exported = 0 AND status IN ('succeeded', 'failed', 'cancelled');
CREATE INDEX jobs_exported ON jobs (finished_at, id)
    WHERE exported = 1 AND status IN ('succeeded', 'failed', 'cancelled');

DROP INDEX export_queue_order;
DROP TABLE export_queue;
