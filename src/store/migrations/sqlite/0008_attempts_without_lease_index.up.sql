-- 0008 attempts without a lease index: an attempt is found by its job and
-- lease, through the key (job_id, attempt), no longer by the lease alone,
-- and the table is clustered on that key (WITHOUT ROWID).
--
-- Why: every claim inserted its lease, 32 random hex digits, into a unique
-- index of its own, each at a random page of a b-tree as large as the
-- history, and its row into the table and into the key's index besides:
-- three b-trees, one of them touched at random, so about one more page for
-- each commit to write to the WAL.  Now one b-tree, in job order.  Every
-- statement that looks an attempt up by its lease (a report's, a
-- takeback's, a cancel's) knows the job, and a job has a few attempts, so
-- the key finds it as well.  The lease stays a fencing token: a job's own
-- lease and bot fence its reports, and 128 random bits do not repeat.
--
-- SQLite cannot drop a column constraint, so the table is rebuilt, with the
-- foreign keys on (see 0002); nothing refers to attempts.
CREATE TABLE attempts_new (
    job_id     TEXT    NOT NULL REFERENCES jobs (id),
    attempt    INTEGER NOT NULL CHECK (attempt >= 1),
    lease      TEXT    NOT NULL,
    bot_id     TEXT    NOT NULL REFERENCES bots (id),
    bot_name   TEXT    NOT NULL,
    started_at INTEGER NOT NULL,
    ended_at   INTEGER,
    outcome    TEXT    NOT NULL DEFAULT 'running'
               CHECK (outcome = 'running' OR outcome = 'succeeded' OR outcome = 'failed'
                      OR outcome = 'released' OR outcome = 'expired'
                      OR outcome = 'worker_lost' OR outcome = 'cancelled'),
    error      TEXT,
    PRIMARY KEY (job_id, attempt)
) STRICT, WITHOUT ROWID;
INSERT INTO attempts_new SELECT * FROM attempts;
DROP TABLE attempts;
ALTER TABLE attempts_new RENAME TO attempts;
