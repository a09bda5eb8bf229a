-- 0007 announce after commit: a PostgreSQL change only (how jobd servers
-- sharing one database wake each other's waiting claims).  SQLite has one
-- server per database and no notifications, so there is nothing to change;
-- the version exists so that both engines keep the same numbering.
SELECT 1;
