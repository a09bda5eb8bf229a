-- 0009 jobs_status without processing: a SQLite change only.  There, every
-- change of a job's status rewrote two entries of jobs_status at once, and
-- taking the jobs in flight out of it saved a b-tree change per claim and
-- per report.  PostgreSQL removes dead index entries lazily (vacuum), so
-- the same change would save one insert per job in about thirteen, and a
-- page of processing jobs would have to be planned onto
-- jobs_processing_bot without a way to insist on it (generic plans are made
-- on whatever statistics the first call sees).  Nothing changes here; the
-- version exists so that both engines keep the same numbering.
SELECT 1;
