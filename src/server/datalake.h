/*
 * datalake.h - the export of finished jobs to JSON-lines files under
 * <data-dir>/datalake/results/date=YYYY-MM-DD/part-<server>.jsonl.
 *
 * The export is driven from the database (store.h, "datalake outbox"): a
 * background thread writes unexported jobs, fsyncs, then marks them exported
 * together with each file's new size.  At open, every file is cut back to
 * its recorded size, which removes both a torn last line and any records
 * written but not marked before a crash; those jobs are still unexported and
 * are written again.  So each finished job appears exactly once.
 *
 * Each line is the job record of record.h: the same definition as the jobs
 * table and the API.
 */
#ifndef JOBD_DATALAKE_H
#define JOBD_DATALAKE_H

#include "err.h"
#include "store.h"

typedef struct datalake datalake_t;

/* Repair the files under data_dir/datalake against their recorded sizes
 * and start the writer thread.  `store` is borrowed and must outlive the
 * datalake.  OUT: *out. */
int datalake_open(const char *data_dir, const char *server_id, store_t *store, datalake_t **out,
                  err_t *e);

/* A job finished: wake the writer.  Thread-safe; NULL is a no-op. */
void datalake_notify(datalake_t *d);

/* Write what is unexported now, in the caller's thread, in batches until one
 * is not full: jobs finishing meanwhile may be left for the next flush.
 * Returns the first error; *n is how many records were written. */
int datalake_flush(datalake_t *d, int *n, err_t *e);

/* Counters since open: appends (one write and fsync of one file) and the
 * records they carried.  Thread-safe; NULL gives zeros. */
void datalake_stats(datalake_t *d, long long *appends, long long *records);

/* Stop the writer after a last flush, and free d.  NULL is a no-op. */
void datalake_close(datalake_t *d);

#endif
