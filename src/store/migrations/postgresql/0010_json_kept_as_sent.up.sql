-- 0010 json kept as sent: a job's input, result and progress are stored as
-- json (the text jobd wrote), not jsonb.
--
-- Why: jsonb keeps a number as numeric and writes it out in full, so the
-- input {"x": 1e20} came back as {"x": 100000000000000000000}, which jansson
-- (like most JSON readers) cannot read as a number: the submit failed with
-- database_error, and so did a result or progress holding such a number.
-- jsonb also sorted an object's keys, so a job read back differently from
-- the same job on SQLite.  jobd never queries inside these columns, so
-- nothing needs jsonb's parsed form; json still refuses text that is not
-- JSON.  bots.operations stays jsonb: it is queried (@>), and holds strings.
--
-- Cost: the table is rewritten under an exclusive lock (about the time of a
-- full copy of it; see docs/operations.md).
ALTER TABLE jobs
    ALTER COLUMN input TYPE json USING input::json,
    ALTER COLUMN result TYPE json USING result::json,
    ALTER COLUMN progress TYPE json USING progress::json;
