-- 0005 checks without IN lists, rolled back: the same rebuild, with the IN
-- lists of 0001-0004.

CREATE TABLE bots_new (
    id             TEXT    NOT NULL PRIMARY KEY,
    name           TEXT    NOT NULL,
    operations     TEXT    NOT NULL CHECK (json_valid(operations)),
    state          TEXT    NOT NULL
                   CHECK (state IN ('ready', 'processing', 'unhealthy', 'offline')),
    registered_at  INTEGER NOT NULL,
    last_seen_at   INTEGER NOT NULL,
    jobs_succeeded INTEGER NOT NULL DEFAULT 0,
    jobs_failed    INTEGER NOT NULL DEFAULT 0,
    jobs_lost      INTEGER NOT NULL DEFAULT 0
) STRICT;
INSERT INTO bots_new SELECT * FROM bots;

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
    bot_id           TEXT    REFERENCES bots_new (id),
    bot_name         TEXT,
    result           TEXT    CHECK (result IS NULL OR json_valid(result)),
    error            TEXT,
    duration_ms      INTEGER,
    max_attempts     INTEGER NOT NULL DEFAULT 3 CHECK (max_attempts >= 1),
    failures         INTEGER NOT NULL DEFAULT 0 CHECK (failures >= 0),
    lost             INTEGER NOT NULL DEFAULT 0 CHECK (lost >= 0),
    run_at           INTEGER,
    progress         TEXT    CHECK (progress IS NULL OR json_valid(progress)),
    lease            TEXT,
    lease_expires_at INTEGER,
    CHECK ((status = 'processing') = (lease IS NOT NULL AND lease_expires_at IS NOT NULL)),
    CHECK (status <> 'scheduled' OR run_at IS NOT NULL)
) STRICT;
INSERT INTO jobs_new SELECT * FROM jobs;

CREATE TABLE attempts_new (
    job_id     TEXT    NOT NULL REFERENCES jobs_new (id),
    attempt    INTEGER NOT NULL CHECK (attempt >= 1),
    lease      TEXT    NOT NULL UNIQUE,
    bot_id     TEXT    NOT NULL REFERENCES bots_new (id),
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

CREATE TABLE job_events_new (
    seq    INTEGER PRIMARY KEY,
    job_id TEXT    NOT NULL REFERENCES jobs_new (id),
    at     INTEGER NOT NULL,
    action TEXT    NOT NULL CHECK (action IN ('release', 'retry', 'cancel')),
    reason TEXT    NOT NULL
) STRICT;
INSERT INTO job_events_new SELECT * FROM job_events;

CREATE TABLE export_queue_new (
    job_id      TEXT    NOT NULL PRIMARY KEY REFERENCES jobs_new (id),
    finished_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
INSERT INTO export_queue_new SELECT * FROM export_queue;

-- Children before their parents: nothing refers to a table when it goes.
DROP TABLE export_queue;
DROP TABLE job_events;
DROP TABLE attempts;
DROP TABLE jobs;
DROP TABLE bots;
-- Each rename rewrites the references to it (bots_new in jobs_new and
-- attempts_new, jobs_new in the three tables that refer to it).
ALTER TABLE bots_new RENAME TO bots;
ALTER TABLE jobs_new RENAME TO jobs;
ALTER TABLE attempts_new RENAME TO attempts;
ALTER TABLE job_events_new RENAME TO job_events;
ALTER TABLE export_queue_new RENAME TO export_queue;

CREATE INDEX jobs_claim ON jobs (operation, priority DESC, created_at, id)
    WHERE status = 'pending';
CREATE INDEX jobs_status ON jobs (status, id);
CREATE INDEX jobs_processing_bot ON jobs (bot_id) WHERE status = 'processing';
CREATE INDEX jobs_scheduled ON jobs (run_at) WHERE status = 'scheduled';
CREATE INDEX jobs_finished ON jobs (finished_at, id)
    WHERE status IN ('succeeded', 'failed', 'cancelled');
CREATE INDEX job_events_job ON job_events (job_id, seq);
CREATE INDEX bots_live ON bots (last_seen_at)
    WHERE state IN ('ready', 'processing', 'unhealthy');
CREATE INDEX export_queue_order ON export_queue (finished_at, job_id);
