-- 0002 leases, retries, events: delayed and retried jobs wait as
-- 'scheduled' until run_at; an admin may cancel a job ('cancelled'); a job
-- counts the attempts that failed (its retry budget, max_attempts) apart
-- from those taken back (lost: released, expired, worker lost); heartbeats
-- may carry per-job progress; bots count what they did; admin actions are
-- kept with their reason in job_events.
--
-- SQLite cannot change a CHECK constraint in place, so jobs and attempts are
-- rebuilt.  The migration runs inside one transaction with foreign keys on,
-- so the order matters: attempts_new refers to jobs_new, the old attempts
-- (the only child of jobs) is dropped before jobs, and renaming jobs_new to
-- jobs rewrites attempts_new's reference to "jobs".
--
-- Checklist: the new columns are JOB_FIELDS / BOT_FIELDS / EVENT_FIELDS in
-- src/store/record.h and lines in docs/api.md; the PostgreSQL set needs the
-- same migration.

CREATE TABLE jobs_new (
    id               TEXT    NOT NULL PRIMARY KEY,
    operation        TEXT    NOT NULL,
    input            TEXT    NOT NULL CHECK (json_valid(input)),
    priority         INTEGER NOT NULL DEFAULT 0,
    status           TEXT    NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'scheduled', 'processing', 'succeeded',
                                       'failed', 'cancelled')),
    attempts         INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    created_at       INTEGER NOT NULL,
    claimed_at       INTEGER,
    finished_at      INTEGER,
    bot_id           TEXT    REFERENCES bots (id),
    bot_name         TEXT,
    result           TEXT    CHECK (result IS NULL OR json_valid(result)),
    error            TEXT,
    duration_ms      INTEGER,
    -- The retry budget: a job that failed max_attempts times stays failed.
    max_attempts     INTEGER NOT NULL DEFAULT 3 CHECK (max_attempts >= 1),
    -- Attempts that ended failed (they use the budget) and attempts taken
    -- back from their bot (released, expired, worker lost: they do not).
    failures         INTEGER NOT NULL DEFAULT 0 CHECK (failures >= 0),
    lost             INTEGER NOT NULL DEFAULT 0 CHECK (lost >= 0),
    -- Not before: set for a delayed submit and for a retry's backoff.
    run_at           INTEGER,
    -- What the holder's latest heartbeat said about this job.
    progress         TEXT    CHECK (progress IS NULL OR json_valid(progress)),
    lease            TEXT,
    lease_expires_at INTEGER,
    exported         INTEGER NOT NULL DEFAULT 0 CHECK (exported IN (0, 1)),
    CHECK ((status = 'processing') = (lease IS NOT NULL AND lease_expires_at IS NOT NULL)),
    CHECK (status <> 'scheduled' OR run_at IS NOT NULL)
) STRICT;

INSERT INTO jobs_new (id, operation, input, priority, status, attempts, created_at, claimed_at,
                      finished_at, bot_id, bot_name, result, error, duration_ms, lease,
                      lease_expires_at, exported)
    SELECT id, operation, input, priority, status, attempts, created_at, claimed_at,
           finished_at, bot_id, bot_name, result, error, duration_ms, lease, lease_expires_at,
           exported
    FROM jobs;

CREATE TABLE attempts_new (
    job_id     TEXT    NOT NULL REFERENCES jobs_new (id),
    attempt    INTEGER NOT NULL CHECK (attempt >= 1),
    lease      TEXT    NOT NULL UNIQUE,
    bot_id     TEXT    NOT NULL REFERENCES bots (id),
    bot_name   TEXT    NOT NULL,
    started_at INTEGER NOT NULL,
    ended_at   INTEGER,
    outcome    TEXT    NOT NULL DEFAULT 'running'
               CHECK (outcome IN ('running', 'succeeded', 'failed', 'released', 'expired',
                                  'worker_lost', 'cancelled')),
    error      TEXT,
    PRIMARY KEY (job_id, attempt)
) STRICT;

INSERT INTO attempts_new SELECT * FROM attempts;

-- The old counts: every taken-back attempt of an existing job was lost.
UPDATE jobs_new SET lost = (SELECT count(*) FROM attempts_new a
                            WHERE a.job_id = jobs_new.id AND a.outcome IN ('released', 'expired')),
                    failures = (SELECT count(*) FROM attempts_new a
                                WHERE a.job_id = jobs_new.id AND a.outcome = 'failed');

DROP TABLE attempts;
DROP TABLE jobs;
ALTER TABLE jobs_new RENAME TO jobs;
ALTER TABLE attempts_new RENAME TO attempts;

-- What each bot did, for GET /bots.
ALTER TABLE bots ADD COLUMN jobs_succeeded INTEGER NOT NULL DEFAULT 0;
ALTER TABLE bots ADD COLUMN jobs_failed INTEGER NOT NULL DEFAULT 0;
ALTER TABLE bots ADD COLUMN jobs_lost INTEGER NOT NULL DEFAULT 0;

-- Admin actions on a job (release, retry, cancel) and why.
CREATE TABLE job_events (
    seq    INTEGER PRIMARY KEY,
    job_id TEXT    NOT NULL REFERENCES jobs (id),
    at     INTEGER NOT NULL,
    action TEXT    NOT NULL CHECK (action IN ('release', 'retry', 'cancel')),
    reason TEXT    NOT NULL
) STRICT;

-- The indexes of 0001 went with the old table; see 0001 for why each exists.
CREATE INDEX jobs_claim ON jobs (operation, priority DESC, created_at, id)
    WHERE status = 'pending';
CREATE INDEX jobs_status ON jobs (status, id);
CREATE INDEX jobs_processing_bot ON jobs (bot_id) WHERE status = 'processing';
-- Cancelled jobs are finished too, and go to the datalake like the others.
CREATE INDEX jobs_unexported ON jobs (finished_at, id)
    WHERE exported = 0 AND status IN ('succeeded', 'failed', 'cancelled');

-- The ticker moves scheduled jobs whose time has come to pending.  Partial,
-- so it holds only the jobs waiting for their time, and named by
-- store_sqlite.c (INDEXED BY) like jobs_claim.
CREATE INDEX jobs_scheduled ON jobs (run_at) WHERE status = 'scheduled';

-- A job's events in order, for GET /jobs/{id}.
CREATE INDEX job_events_job ON job_events (job_id, seq);

-- The bot-health sweep looks at the bots that may still hold work.  Partial
-- on their states, so it stays as small as the live fleet while the
-- registrations of bots long gone pile up.
CREATE INDEX bots_live ON bots (last_seen_at) WHERE state IN ('ready', 'processing', 'unhealthy');
