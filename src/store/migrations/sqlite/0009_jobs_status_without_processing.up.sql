-- 0009 jobs_status without processing: the index of GET /jobs?status= pages
-- leaves out the jobs in flight (on SQLite only; see the PostgreSQL file).
--
-- Why: every change of a job's status rewrote two entries of it, and the
-- jobs in flight went in at their claim and out again at their report, on
-- the busiest pages of the index: one b-tree change per claim and per report
-- that nothing needed, and about one more page per commit for bots that
-- report one job at a time.  The jobs in flight are few (what the bots
-- hold) and already in jobs_processing_bot, which a page of processing jobs
-- now walks (and sorts), named with INDEXED BY.  The statement for the other statuses
-- repeats the predicate (status <> 'processing'), so that SQLite can tell
-- the index applies.
DROP INDEX jobs_status;
CREATE INDEX jobs_status ON jobs (status, id) WHERE status <> 'processing';
