-- 0006 idempotency keys, rolled back: the keys are forgotten.
DROP INDEX jobs_idempotency_key;
ALTER TABLE jobs DROP COLUMN idempotency_key;
