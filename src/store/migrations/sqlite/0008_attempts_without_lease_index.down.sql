-- 0008 attempts without a lease index, rolled back: the table of 0005, with
-- its unique lease, rebuilt the same way.
CREATE TABLE attempts_old (
    job_id     TEXT    NOT NULL REFERENCES jobs (id),
    attempt    INTEGER NOT NULL CHECK (attempt >= 1),
    lease      TEXT    NOT NULL UNIQUE,
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
) STRICT;
INSERT INTO attempts_old SELECT * FROM attempts;
DROP TABLE attempts;
ALTER TABLE attempts_old RENAME TO attempts;
