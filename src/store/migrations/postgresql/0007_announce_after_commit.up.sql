-- 0007 announce after commit: jobd's own sessions no longer NOTIFY inside
-- the transaction that makes a job pending.
--
-- Why: PostgreSQL serializes the commits of every transaction that has
-- queued a notification (the notify queue's lock is held until the commit
-- is flushed), so with synchronous_commit = on each submit waited for its
-- own WAL flush in turn instead of sharing one with the submits beside it.
-- Measured on the latency workload of bench/run: 455 submits/s with the
-- NOTIFY in the transaction, 814 without.
--
-- Now a session that sets jobd.announce = 'after-commit' (every jobd
-- connection that changes jobs does) only notes the job's operation in the
-- transaction-local setting jobd.pending, one line per operation; jobd reads
-- it as it commits and, once committed, sends the notifications from a
-- connection of their own whose commits do not wait for a flush.  Any other
-- session (psql, an older jobd) still notifies here, as 0001 did, so no
-- writer can make a job pending unannounced.
CREATE OR REPLACE FUNCTION jobs_notify_pending() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    seen text;
BEGIN
    IF current_setting('jobd.announce', true) IS DISTINCT FROM 'after-commit' THEN
        PERFORM pg_notify('jobd_jobs', NEW.operation);
        RETURN NULL;
    END IF;
    seen := coalesce(current_setting('jobd.pending', true), '');
    IF position(E'\n' || NEW.operation || E'\n' IN E'\n' || seen) = 0 THEN
        PERFORM set_config('jobd.pending', seen || NEW.operation || E'\n', true);
    END IF;
    RETURN NULL;
END
$$;
