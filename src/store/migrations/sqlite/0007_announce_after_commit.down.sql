-- 0007 announce after commit, rolled back: nothing to undo on SQLite.
SELECT 1;
