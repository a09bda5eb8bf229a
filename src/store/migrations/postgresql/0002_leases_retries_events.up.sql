-- 0002 leases, retries, events (PostgreSQL): the same change as
-- migrations/sqlite/0002, where it says why.  Delayed and retried jobs wait
-- as 'scheduled' until run_at; an admin may cancel a job ('cancelled'); a job
-- counts the attempts that failed (its budget, max_attempts) apart from those
-- taken back (lost); heartbeats may carry per-job progress; bots count what
-- they did; admin actions are kept with their reason in job_events.
-- PostgreSQL changes CHECK constraints and adds columns in place, so no table
-- is rebuilt.  The jobs_pending trigger of 0001 announces every job that
-- becomes pending by the new paths too (a scheduled job's time comes, a
-- retry).
--
-- Checklist: the new columns are JOB_FIELDS / BOT_FIELDS / EVENT_FIELDS in
-- src/store/record.h; the SQLite set has the same migration.

ALTER TABLE jobs DROP CONSTRAINT jobs_status_check;
ALTER TABLE jobs ADD CONSTRAINT jobs_status_check
    CHECK (status IN ('pending', 'scheduled', 'processing', 'succeeded', 'failed', 'cancelled'));
ALTER TABLE jobs
    -- The retry budget: a job that failed max_attempts times stays failed.
    ADD COLUMN max_attempts INTEGER NOT NULL DEFAULT 3 CHECK (max_attempts >= 1),
    -- Attempts that ended failed (they use the budget) and attempts taken
    -- back from their bot (released, expired, worker lost: they do not).
    ADD COLUMN failures     INTEGER NOT NULL DEFAULT 0 CHECK (failures >= 0),
    ADD COLUMN lost         INTEGER NOT NULL DEFAULT 0 CHECK (lost >= 0),
    -- Not before: set for a delayed submit and for a retry's backoff.
    ADD COLUMN run_at       BIGINT,
    -- What the holder's latest heartbeat said about this job.
    ADD COLUMN progress     JSONB,
    ADD CONSTRAINT jobs_scheduled_run_at CHECK (status <> 'scheduled' OR run_at IS NOT NULL);

ALTER TABLE attempts DROP CONSTRAINT attempts_outcome_check;
ALTER TABLE attempts ADD CONSTRAINT attempts_outcome_check
    CHECK (outcome IN ('running', 'succeeded', 'failed', 'released', 'expired', 'worker_lost',
                       'cancelled'));

-- The old counts: every taken-back attempt of an existing job was lost.
UPDATE jobs SET lost = (SELECT count(*) FROM attempts a
                        WHERE a.job_id = jobs.id AND a.outcome IN ('released', 'expired')),
                failures = (SELECT count(*) FROM attempts a
                            WHERE a.job_id = jobs.id AND a.outcome = 'failed');

-- What each bot did, for GET /bots.
ALTER TABLE bots
    ADD COLUMN jobs_succeeded INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN jobs_failed    INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN jobs_lost      INTEGER NOT NULL DEFAULT 0;

-- Admin actions on a job (release, retry, cancel) and why.
CREATE TABLE job_events (
    seq    BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id TEXT   COLLATE "C" NOT NULL REFERENCES jobs (id),
    at     BIGINT NOT NULL,
    action TEXT   NOT NULL CHECK (action IN ('release', 'retry', 'cancel')),
    reason TEXT   NOT NULL
);

-- Cancelled jobs are finished too, and go to the datalake like the others.
DROP INDEX jobs_unexported;
CREATE INDEX jobs_unexported ON jobs (finished_at, id)
    WHERE NOT exported AND status IN ('succeeded', 'failed', 'cancelled');

-- The ticker moves scheduled jobs whose time has come to pending.  Partial,
-- so it holds only the jobs waiting for their time.
CREATE INDEX jobs_scheduled ON jobs (run_at) WHERE status = 'scheduled';

-- A job's events in order, for GET /jobs/{id}.
CREATE INDEX job_events_job ON job_events (job_id, seq);

-- The bot-health sweep looks at the bots that may still hold work.  Partial
-- on their states, so it stays as small as the live fleet while the
-- registrations of bots long gone pile up.
CREATE INDEX bots_live ON bots (last_seen_at) WHERE state IN ('ready', 'processing', 'unhealthy');
