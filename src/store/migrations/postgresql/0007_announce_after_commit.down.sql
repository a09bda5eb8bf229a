-- 0007 announce after commit, rolled back: every session notifies inside
-- its transaction again (0001's trigger function).
CREATE OR REPLACE FUNCTION jobs_notify_pending() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('jobd_jobs', NEW.operation);
    RETURN NULL;
END
$$;
