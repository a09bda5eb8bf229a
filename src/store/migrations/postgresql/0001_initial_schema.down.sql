-- 0001 initial schema, rolled back: drops every object the up script made,
-- referencing tables before the tables they reference.
DROP TRIGGER jobs_pending ON jobs;
DROP FUNCTION jobs_notify_pending();
DROP INDEX jobs_unexported;
DROP INDEX jobs_processing_bot;
DROP INDEX jobs_status;
DROP INDEX jobs_claim;
DROP TABLE datalake_files;
DROP TABLE attempts;
DROP TABLE jobs;
DROP TABLE bots;
