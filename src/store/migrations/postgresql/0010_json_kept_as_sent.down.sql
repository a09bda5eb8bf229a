-- 0010 json kept as sent, rolled back: the columns are jsonb again (numbers
-- and key order as jsonb writes them).
ALTER TABLE jobs
    ALTER COLUMN input TYPE jsonb USING input::jsonb,
    ALTER COLUMN result TYPE jsonb USING result::jsonb,
    ALTER COLUMN progress TYPE jsonb USING progress::jsonb;
