-- 0002 leases, retries, events, rolled back to the tables of 0001.  Lossy
-- where 0001 has no words for it: a scheduled job becomes pending, a
-- cancelled one failed; attempts that ended worker_lost become released and
-- cancelled ones failed; progress, counts and admin events are dropped.
-- The order follows the up script's, for the same foreign-key reasons.

DROP INDEX bots_live;
DROP INDEX job_events_job;
DROP TABLE job_events;
ALTER TABLE bots DROP COLUMN jobs_lost;
ALTER TABLE bots DROP COLUMN jobs_failed;
ALTER TABLE bots DROP COLUMN jobs_succeeded;

CREATE TABLE jobs_old (
    id               TEXT    NOT NULL PRIMARY KEY,
    operation        TEXT    NOT NULL,
    input            TEXT    NOT NULL CHECK (json_valid(input)),
    priority         INTEGER NOT NULL DEFAULT 0,
    status           TEXT    NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'processing', 'succeeded', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    created_at       INTEGER NOT NULL,
    claimed_at       INTEGER,
    finished_at      INTEGER,
    bot_id           TEXT    REFERENCES bots (id),
    bot_name         TEXT,
    result           TEXT    CHECK (result IS NULL OR json_valid(result)),
    error            TEXT,
    duration_ms      INTEGER,
    lease            TEXT,
    lease_expires_at INTEGER,
    exported         INTEGER NOT NULL DEFAULT 0 CHECK (exported IN (0, 1)),
    CHECK ((status = 'processing') = (lease IS NOT NULL AND lease_expires_at IS NOT NULL))
) STRICT;

INSERT INTO jobs_old
    SELECT id, operation, input, priority,
           CASE status WHEN 'scheduled' THEN 'pending' WHEN 'cancelled' THEN 'failed'
                       ELSE status END,
           attempts, created_at, claimed_at, finished_at, bot_id, bot_name, result, error,
           duration_ms, lease, lease_expires_at, exported
    FROM jobs;

CREATE TABLE attempts_old (
    job_id     TEXT    NOT NULL REFERENCES jobs_old (id),
    attempt    INTEGER NOT NULL CHECK (attempt >= 1),
    lease      TEXT    NOT NULL UNIQUE,
    bot_id     TEXT    NOT NULL REFERENCES bots (id),
    bot_name   TEXT    NOT NULL,
    started_at INTEGER NOT NULL,
    ended_at   INTEGER,
    outcome    TEXT    NOT NULL DEFAULT 'running'
               CHECK (outcome IN ('running', 'succeeded', 'failed', 'released', 'expired')),
    error      TEXT,
    PRIMARY KEY (job_id, attempt)
) STRICT;

INSERT INTO attempts_old
    SELECT job_id, attempt, lease, bot_id, bot_name, started_at, ended_at,
           CASE outcome WHEN 'worker_lost' THEN 'released' WHEN 'cancelled' THEN 'failed'
                        ELSE outcome END,
           error
    FROM attempts;

DROP TABLE attempts;
DROP TABLE jobs;
ALTER TABLE jobs_old RENAME TO jobs;
ALTER TABLE attempts_old RENAME TO attempts;

CREATE INDEX jobs_claim ON jobs (operation, priority DESC, created_at, id)
    WHERE status = 'pending';
CREATE INDEX jobs_status ON jobs (status, id);
CREATE INDEX jobs_processing_bot ON jobs (bot_id) WHERE status = 'processing';
CREATE INDEX jobs_unexported ON jobs (finished_at, id)
    WHERE exported = 0 AND status IN ('succeeded', 'failed');
