-- 0001 initial schema: jobs, bots, the attempts behind each job's history,
-- and the datalake outbox.  Times are INTEGER milliseconds since the epoch.
--
-- Checklist: the columns of jobs, bots and attempts that the API shows are
-- JOB_FIELDS, BOT_FIELDS and ATTEMPT_FIELDS in src/store/record.h; a column
-- added there needs a new migration here (and in the PostgreSQL set).
-- Tables are STRICT so that a value of the wrong type is refused instead of
-- being stored and discovered later.

CREATE TABLE bots (
    id            TEXT    NOT NULL PRIMARY KEY,
    name          TEXT    NOT NULL,
    operations    TEXT    NOT NULL CHECK (json_valid(operations)),
    state         TEXT    NOT NULL
                  CHECK (state IN ('ready', 'processing', 'unhealthy', 'offline')),
    registered_at INTEGER NOT NULL,
    last_seen_at  INTEGER NOT NULL
) STRICT;

CREATE TABLE jobs (
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
    -- Internal: the fencing token of the current attempt and when it lapses.
    -- Only a processing job holds a lease; the CHECK keeps it that way.
    lease            TEXT,
    lease_expires_at INTEGER,
    -- Internal: 1 once the finished job is written to the datalake.
    exported         INTEGER NOT NULL DEFAULT 0 CHECK (exported IN (0, 1)),
    CHECK ((status = 'processing') = (lease IS NOT NULL AND lease_expires_at IS NOT NULL))
) STRICT;

-- Every claim of a job, and how it ended.  The lease is unique across all
-- jobs, so complete/fail can tell a stale lease (released, expired, finished)
-- from one that never existed.
CREATE TABLE attempts (
    job_id     TEXT    NOT NULL REFERENCES jobs (id),
    attempt    INTEGER NOT NULL CHECK (attempt >= 1),
    lease      TEXT    NOT NULL UNIQUE,
    bot_id     TEXT    NOT NULL REFERENCES bots (id),
    bot_name   TEXT    NOT NULL,
    started_at INTEGER NOT NULL,
    ended_at   INTEGER,
    outcome    TEXT    NOT NULL DEFAULT 'running'
               CHECK (outcome IN ('running', 'succeeded', 'failed', 'released', 'expired')),
    error      TEXT,
    -- The key doubles as the index for a job's history, oldest first.
    PRIMARY KEY (job_id, attempt)
) STRICT;

-- The size of every datalake file as of the last export commit; after a
-- crash the writer truncates each file back to this size.
CREATE TABLE datalake_files (
    path TEXT    NOT NULL PRIMARY KEY,
    size INTEGER NOT NULL CHECK (size >= 0)
) STRICT;

-- Claiming: one index walk per operation yields its best pending jobs in
-- claim order (priority, then age).  Partial on pending, so it holds only
-- the queue and the cost of a claim does not grow with finished jobs.
-- store_sqlite.c names it (INDEXED BY), so that without it jobd refuses to
-- start rather than claim by scanning the table.
CREATE INDEX jobs_claim ON jobs (operation, priority DESC, created_at, id)
    WHERE status = 'pending';

-- GET /jobs?status=...: the keyset page of one status in id order.  The
-- lease sweeper also finds the processing jobs through it: they are only
-- the work in flight, so it needs no index of its own on lease_expires_at.
CREATE INDEX jobs_status ON jobs (status, id);

-- Heartbeats, every few seconds from every bot, renew the leases of that
-- bot's processing jobs.  Partial, so it is as small as the work in flight.
CREATE INDEX jobs_processing_bot ON jobs (bot_id) WHERE status = 'processing';

-- The datalake outbox: finished jobs not yet exported, oldest finish first.
-- Partial, so it holds only the backlog of the exporter, not every job;
-- named by store_sqlite.c (INDEXED BY) like jobs_claim.
CREATE INDEX jobs_unexported ON jobs (finished_at, id)
    WHERE exported = 0 AND status IN ('succeeded', 'failed');
