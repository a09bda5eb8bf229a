-- 0001 initial schema (PostgreSQL): jobs, bots, the attempts behind each job's
-- history, and the datalake outbox.  The same tables and columns as
-- migrations/sqlite/0001, in PostgreSQL's types; times are BIGINT milliseconds
-- since the epoch, ids TEXT (a malformed id is then "not found", not a type
-- error) in the "C" collation, so that they sort by their bytes as in SQLite
-- and UUIDv7 ids sort by creation whatever the database's locale.
--
-- Checklist: the columns of jobs, bots and attempts that the API shows are
-- JOB_FIELDS, BOT_FIELDS and ATTEMPT_FIELDS in src/store/record.h; a column
-- added there needs a new migration here and in migrations/sqlite, with the
-- same number and name.  store_pg.c's statements name these indexes' columns
-- in the order the indexes hold them; change them together.

CREATE TABLE bots (
    id            TEXT   COLLATE "C" NOT NULL PRIMARY KEY,
    name          TEXT   NOT NULL,
    operations    JSONB  NOT NULL,
    state         TEXT   NOT NULL
                  CHECK (state IN ('ready', 'processing', 'unhealthy', 'offline')),
    registered_at BIGINT NOT NULL,
    last_seen_at  BIGINT NOT NULL
);

CREATE TABLE jobs (
    id               TEXT    COLLATE "C" NOT NULL PRIMARY KEY,
    operation        TEXT    NOT NULL,
    input            JSONB   NOT NULL,
    priority         BIGINT  NOT NULL DEFAULT 0,
    status           TEXT    NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'processing', 'succeeded', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    created_at       BIGINT  NOT NULL,
    claimed_at       BIGINT,
    finished_at      BIGINT,
    bot_id           TEXT    COLLATE "C" REFERENCES bots (id),
    bot_name         TEXT,
    result           JSONB,
    error            TEXT,
    duration_ms      BIGINT,
    -- Internal: the fencing token of the current attempt and when it lapses.
    -- Only a processing job holds a lease; the CHECK keeps it that way.
    lease            TEXT,
    lease_expires_at BIGINT,
    -- Internal: true once the finished job is written to the datalake.
    exported         BOOLEAN NOT NULL DEFAULT false,
    -- Internal, PostgreSQL only (several servers share the database): the
    -- server (--server-id) that claimed the job's export and when.  Only that
    -- server marks it exported, so a job is written by one server only; a
    -- claim older than store_pg.c's EXPORT_TAKEOVER_MS may be taken over
    -- from a server that went away.
    export_owner      TEXT,
    export_claimed_at BIGINT,
    CHECK ((status = 'processing') = (lease IS NOT NULL AND lease_expires_at IS NOT NULL))
);

-- Every claim of a job, and how it ended.  The lease is unique across all
-- jobs, so complete/fail can tell a stale lease (released, expired, finished)
-- from one that never existed.
CREATE TABLE attempts (
    job_id     TEXT    COLLATE "C" NOT NULL REFERENCES jobs (id),
    attempt    INTEGER NOT NULL CHECK (attempt >= 1),
    lease      TEXT    NOT NULL UNIQUE,
    bot_id     TEXT    COLLATE "C" NOT NULL REFERENCES bots (id),
    bot_name   TEXT    NOT NULL,
    started_at BIGINT  NOT NULL,
    ended_at   BIGINT,
    outcome    TEXT    NOT NULL DEFAULT 'running'
               CHECK (outcome IN ('running', 'succeeded', 'failed', 'released', 'expired')),
    error      TEXT,
    -- The key doubles as the index for a job's history, oldest first.
    PRIMARY KEY (job_id, attempt)
);

-- The size of every datalake file as of the last export commit; after a
-- crash the writer truncates each of its own files back to this size.  The
-- path names the server (part-<server-id>.jsonl), so servers never share a row.
CREATE TABLE datalake_files (
    path TEXT   NOT NULL PRIMARY KEY,
    size BIGINT NOT NULL CHECK (size >= 0)
);

-- Claiming: one index walk per operation yields its best pending jobs in
-- claim order (priority, then age), and FOR UPDATE SKIP LOCKED passes over
-- those another server is claiming.  Partial on pending, so it holds only
-- the queue and the cost of a claim does not grow with finished jobs.
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
-- Partial, so it holds only the backlog of the exporters, not every job.
CREATE INDEX jobs_unexported ON jobs (finished_at, id)
    WHERE NOT exported AND status IN ('succeeded', 'failed');

-- Cross-server wake-up: whenever a job becomes pending (submitted, released,
-- expired, or put back by any later path), every jobd LISTENing on
-- jobd_jobs hears its operation when the transaction commits, and wakes the
-- long-poll claims that wait for it.  A trigger, so that no statement that
-- makes a job pending can forget to announce it.
CREATE FUNCTION jobs_notify_pending() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('jobd_jobs', NEW.operation);
    RETURN NULL;
END
$$;

CREATE TRIGGER jobs_pending AFTER INSERT OR UPDATE OF status ON jobs
    FOR EACH ROW WHEN (NEW.status = 'pending') EXECUTE FUNCTION jobs_notify_pending();
