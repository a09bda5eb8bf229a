-- 0010 json kept as sent, rolled back: nothing to undo on SQLite.
SELECT 1;
