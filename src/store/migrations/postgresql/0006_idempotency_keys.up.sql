-- 0006 idempotency keys: a submit may carry a key of its own; a second
-- submit with the same key makes no second job and is answered with the
-- first one's.  A producer that lost the reply to a submit (the connection
-- dropped after the commit) can then send it again without making a
-- duplicate.  The key lives as long as its job: once retention deletes the
-- job, the key can be used again.
--
-- Adding a column is instant; the index is partial, so it holds only the
-- jobs that have a key (none yet) and costs nothing to submits without one.
ALTER TABLE jobs ADD COLUMN idempotency_key text;
CREATE UNIQUE INDEX jobs_idempotency_key ON jobs (idempotency_key)
    WHERE idempotency_key IS NOT NULL;
