-- 0002 leases, retries, events, rolled back to the tables of 0001.  Lossy
-- where 0001 has no words for it, as in SQLite: a scheduled job becomes
-- pending, a cancelled one failed; attempts that ended worker_lost become
-- released and cancelled ones failed; progress, counts and admin events are
-- dropped.

DROP INDEX bots_live;
DROP INDEX job_events_job;
DROP INDEX jobs_scheduled;
DROP TABLE job_events;
ALTER TABLE bots DROP COLUMN jobs_lost, DROP COLUMN jobs_failed, DROP COLUMN jobs_succeeded;

ALTER TABLE attempts DROP CONSTRAINT attempts_outcome_check;
UPDATE attempts SET outcome = 'released' WHERE outcome = 'worker_lost';
UPDATE attempts SET outcome = 'failed' WHERE outcome = 'cancelled';
ALTER TABLE attempts ADD CONSTRAINT attempts_outcome_check
    CHECK (outcome IN ('running', 'succeeded', 'failed', 'released', 'expired'));

ALTER TABLE jobs DROP CONSTRAINT jobs_scheduled_run_at, DROP CONSTRAINT jobs_status_check;
UPDATE jobs SET status = 'pending' WHERE status = 'scheduled';
UPDATE jobs SET status = 'failed' WHERE status = 'cancelled';
ALTER TABLE jobs ADD CONSTRAINT jobs_status_check
    CHECK (status IN ('pending', 'processing', 'succeeded', 'failed'));
ALTER TABLE jobs DROP COLUMN progress, DROP COLUMN run_at, DROP COLUMN lost,
    DROP COLUMN failures, DROP COLUMN max_attempts;

DROP INDEX jobs_unexported;
CREATE INDEX jobs_unexported ON jobs (finished_at, id)
    WHERE NOT exported AND status IN ('succeeded', 'failed');
