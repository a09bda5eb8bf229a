/*
 * datalake.c - the datalake writer.  See datalake.h for the exactly-once
 * argument; the order of operations in write_batch() is what makes it hold:
 * append, fsync, then mark in the database, and on any failure cut the
 * files back to the size the database knows.
 */
#include "datalake.h"
#include "clock.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BATCH     1000
#define MAX_FILES 8 /* distinct files one batch may touch (dates x 1 server) */

struct datalake {
    store_t *store;
    char root[PATH_MAX]; /* .../datalake/results */
    char server_id[128];
    char last_dir[PATH_MAX]; /* the directory part_write last made sure of */
    json_t *sizes;           /* {"date=.../part-x.jsonl": recorded size} */
    pthread_t thread;
    pthread_mutex_t lock; /* stop, and the waits on cond */
    pthread_cond_t cond;
    pthread_mutex_t flush_lock; /* one flush at a time: two would both read the same
                                   unexported jobs and write them twice */
    bool stop;
    /* A job finished since the writer's last flush began.  Only the notice
     * that sets it wakes the writer (datalake_notify). */
    atomic_bool dirty;
    atomic_llong appends, records; /* datalake_stats() */
};

/* One file touched by a batch: its lines gathered before the write. */
typedef struct part {
    char rel[256];
    char *buf;
    size_t len, cap;
    off_t base; /* recorded size before this batch */
} part_t;

/* root is at most 1024 + 17 bytes and rel at most 255, so this fits. */
static void full_path(const datalake_t *d, const char *rel, char out[PATH_MAX])
{
    int n = snprintf(out, PATH_MAX, "%s/%s", d->root, rel);
    if (n < 0 || n >= PATH_MAX)
        abort();
}

static int mkdirs(const char *path, err_t *e)
{
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
            return err_set(e, JOBD_EIO, "mkdir %s: %s", tmp, strerror(errno));
        *p = '/';
    }
    if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
        return err_set(e, JOBD_EIO, "mkdir %s: %s", tmp, strerror(errno));
    return JOBD_OK;
}

static void fsync_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

/* Keep in d->sizes only this server's files: servers sharing a database
 * (and perhaps the datalake directory) each repair only what they wrote, so
 * that one starting never cuts a file another is appending to. */
static void own_files(datalake_t *d)
{
    char suffix[160];
    size_t n;
    const char *rel;
    json_t *size;
    void *tmp;

    n = (size_t)snprintf(suffix, sizeof suffix, "/part-%s.jsonl", d->server_id);
    json_object_foreach_safe(d->sizes, tmp, rel, size)
    {
        size_t len = strlen(rel);
        if (len < n || strcmp(rel + len - n, suffix) != 0)
            json_object_del(d->sizes, rel);
    }
}

/* Cut each recorded file back to its recorded size (see datalake.h). */
static int repair(datalake_t *d, err_t *e)
{
    const char *rel;
    json_t *size;
    char full[PATH_MAX];
    struct stat st;

    own_files(d);
    json_object_foreach(d->sizes, rel, size)
    {
        off_t want = (off_t)json_integer_value(size);
        full_path(d, rel, full);
        if (stat(full, &st) != 0) {
            log_error("datalake: %s is missing (%lld bytes recorded): its records were lost "
                      "outside jobd",
                      full, (long long)want);
            continue;
        }
        if (st.st_size < want) {
            log_error("datalake: %s is %lld bytes, shorter than the %lld recorded: records were "
                      "lost outside jobd",
                      full, (long long)st.st_size, (long long)want);
        } else if (st.st_size > want) {
            if (truncate(full, want) != 0)
                return err_set(e, JOBD_EIO, "truncate %s: %s", full, strerror(errno));
            log_warn("datalake: cut %s from %lld to %lld bytes (records written but not "
                     "committed before a stop; they will be written again)",
                     full, (long long)st.st_size, (long long)want);
        }
    }
    return JOBD_OK;
}

static part_t *part_for(datalake_t *d, part_t *parts, int *nparts, const store_export_job_t *job)
{
    char rel[256], finished[32] = "unknown";

    /* The first 10 characters of the RFC 3339 time are the date. */
    if (job->finished)
        clock_format_ms(job->finished_at, finished, sizeof finished, 'T');
    snprintf(rel, sizeof rel, "date=%.10s/part-%s.jsonl", finished, d->server_id);
    for (int i = 0; i < *nparts; i++)
        if (strcmp(parts[i].rel, rel) == 0)
            return &parts[i];
    if (*nparts == MAX_FILES)
        return NULL;
    part_t *p = &parts[(*nparts)++];
    memset(p, 0, sizeof *p);
    snprintf(p->rel, sizeof p->rel, "%s", rel);
    p->base = (off_t)json_integer_value(json_object_get(d->sizes, rel));
    return p;
}

static void part_append(part_t *p, const char *line, size_t n)
{
    if (p->len + n + 1 > p->cap) {
        size_t cap = p->cap ? p->cap : 65536;
        while (cap < p->len + n + 1)
            cap *= 2;
        p->buf = realloc(p->buf, cap);
        if (!p->buf)
            abort();
        p->cap = cap;
    }
    memcpy(p->buf + p->len, line, n);
    p->len += n;
    p->buf[p->len++] = '\n';
}

static int part_write(datalake_t *d, part_t *p, err_t *e)
{
    char full[PATH_MAX], dir[PATH_MAX];
    size_t done = 0;
    struct stat st;
    bool created;
    int fd, rc;

    full_path(d, p->rel, full);
    snprintf(dir, sizeof dir, "%s", full);
    *strrchr(dir, '/') = '\0';
    /* A day's directory is made once, not at every flush; a failure below
     * forgets it, so that a directory removed meanwhile is made again. */
    if (strcmp(dir, d->last_dir) != 0) {
        if ((rc = mkdirs(dir, e)) != JOBD_OK)
            return rc;
        snprintf(d->last_dir, sizeof d->last_dir, "%s", dir);
    }
    created = stat(full, &st) != 0;
    fd = open(full, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) {
        d->last_dir[0] = '\0';
        return err_set(e, JOBD_EIO, "open %s: %s", full, strerror(errno));
    }
    while (done < p->len) {
        ssize_t w = write(fd, p->buf + done, p->len - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            err_set(e, JOBD_EIO, "write %s: %s", full, strerror(errno));
            goto out_truncate;
        }
        done += (size_t)w;
    }
    if (fsync(fd) != 0) {
        err_set(e, JOBD_EIO, "fsync %s: %s", full, strerror(errno));
        goto out_truncate;
    }
    close(fd);
    if (created)
        fsync_dir(dir);
    return JOBD_OK;

out_truncate:
    /* Leave the file as the database knows it, so a retry appends cleanly. */
    if (ftruncate(fd, p->base) != 0)
        log_error("datalake: cannot cut %s back to %lld bytes: %s", full, (long long)p->base,
                  strerror(errno));
    close(fd);
    return e ? e->rc : JOBD_EIO;
}

static void parts_truncate(datalake_t *d, part_t *parts, int n)
{
    char full[PATH_MAX];
    for (int i = 0; i < n; i++) {
        full_path(d, parts[i].rel, full);
        if (truncate(full, parts[i].base) != 0 && errno != ENOENT)
            log_error("datalake: cannot cut %s back to %lld bytes: %s", full,
                      (long long)parts[i].base, strerror(errno));
    }
}

/* Export up to BATCH jobs.  *n is how many were written; *more says whether
 * unexported jobs may remain (a full batch, or one cut short by its dates). */
static int write_batch(datalake_t *d, int *n, bool *more, err_t *e)
{
    part_t parts[MAX_FILES];
    int nparts = 0, written = 0, rc;
    size_t fetched = 0;
    store_export_t *batch = NULL;
    json_t *ids = json_array(), *files = json_object();

    if ((rc = store_export_pending(d->store, d->server_id, BATCH, &batch, e)) != JOBD_OK)
        goto out_free;
    fetched = batch->n;
    for (size_t i = 0; i < batch->n; i++) {
        const store_export_job_t *job = &batch->jobs[i];
        part_t *p = part_for(d, parts, &nparts, job);
        if (!p)
            break; /* too many dates in one batch; the rest go next time */
        part_append(p, job->line, job->len);
        json_array_append_new(ids, json_string(job->id));
    }
    for (int k = 0; k < nparts; k++) {
        if ((rc = part_write(d, &parts[k], e)) != JOBD_OK) {
            parts_truncate(d, parts, k);
            goto out_free_parts;
        }
        json_object_set_new(files, parts[k].rel,
                            json_integer((json_int_t)(parts[k].base + (off_t)parts[k].len)));
        atomic_fetch_add(&d->appends, 1);
    }
    if (nparts && (rc = store_export_mark(d->store, d->server_id, ids, files, e)) != JOBD_OK) {
        parts_truncate(d, parts, nparts);
        goto out_free_parts;
    }
    json_object_update(d->sizes, files);
    written = (int)json_array_size(ids);
    atomic_fetch_add(&d->records, written);

out_free_parts:
    for (int k = 0; k < nparts; k++)
        free(parts[k].buf);
    store_export_free(batch);
out_free:
    json_decref(ids);
    json_decref(files);
    if (rc == JOBD_OK) {
        *n = written;
        *more = fetched == BATCH || (size_t)written < fetched;
    }
    return rc;
}

int datalake_flush(datalake_t *d, int *n, err_t *e)
{
    int total = 0, got, rc;
    bool more;
    pthread_mutex_lock(&d->flush_lock);
    /* Go on while there is a backlog, not while jobs keep finishing: under a
     * steady stream each pass would find the one or two jobs that finished
     * during the last one's fsync, and export them at an fsync and a database
     * write each instead of coalescing them (the writer's COALESCE_MS). */
    do {
        if ((rc = write_batch(d, &got, &more, e)) != JOBD_OK)
            break;
        total += got;
    } while (more && got > 0);
    pthread_mutex_unlock(&d->flush_lock);
    if (rc == JOBD_OK)
        *n = total;
    return rc;
}

/* After a job finishes, the writer waits this long before it flushes, so
 * that one append, one fsync and one database mark carry every job that
 * finished meanwhile instead of one each. */
#define COALESCE_MS 20

static void *writer(void *arg)
{
    datalake_t *d = arg;
    int64_t backoff = 0;
    char last_error[JOBD_ERR_MSG_MAX] = "";
    err_t e;
    int n;

    pthread_setname_np(pthread_self(), "jobd-datalake");
    for (;;) {
        struct timespec until;
        bool stop;

        pthread_mutex_lock(&d->lock);
        until = clock_deadline(CLOCK_REALTIME, 1000 * 1000000LL);
        while (!atomic_load(&d->dirty) && !d->stop)
            if (pthread_cond_timedwait(&d->cond, &d->lock, &until) != 0)
                break;
        /* Hold off (longer after a failure: the backoff), whatever more
         * finishes meanwhile; only a stop cuts it short. */
        until = clock_deadline(CLOCK_REALTIME, (backoff ? backoff : COALESCE_MS) * 1000000LL);
        while (!d->stop)
            if (pthread_cond_timedwait(&d->cond, &d->lock, &until) != 0)
                break;
        atomic_store(&d->dirty, false);
        stop = d->stop;
        pthread_mutex_unlock(&d->lock);
        if (stop)
            break;

        if (datalake_flush(d, &n, &e) != JOBD_OK) {
            /* A full disk or a busy database: retry with backoff, and log
             * each distinct cause once instead of once a second. */
            if (strcmp(last_error, e.msg) != 0)
                log_error("datalake: export failed, will retry: %s", e.msg);
            snprintf(last_error, sizeof last_error, "%s", e.msg);
            backoff = backoff ? (backoff * 2 > 30000 ? 30000 : backoff * 2) : 1000;
            continue;
        }
        if (last_error[0])
            log_info("datalake: export works again");
        last_error[0] = '\0';
        backoff = 0;
    }
    return NULL;
}

int datalake_open(const char *data_dir, const char *server_id, store_t *store, datalake_t **out,
                  err_t *e)
{
    datalake_t *d = calloc(1, sizeof *d);
    int rc;

    if (!d)
        abort();
    d->store = store;
    snprintf(d->root, sizeof d->root, "%s/datalake/results", data_dir);
    snprintf(d->server_id, sizeof d->server_id, "%s", server_id);
    pthread_mutex_init(&d->lock, NULL);
    pthread_mutex_init(&d->flush_lock, NULL);
    pthread_cond_init(&d->cond, NULL);
    if ((rc = mkdirs(d->root, e)) != JOBD_OK || (rc = store_export_files(store, &d->sizes, e)) ||
        (rc = repair(d, e)) != JOBD_OK)
        goto out_free;
    atomic_init(&d->dirty, true); /* export what a previous run left */
    if (pthread_create(&d->thread, NULL, writer, d) != 0) {
        rc = err_set(e, JOBD_EINTERNAL, "cannot start the datalake thread");
        goto out_free;
    }
    *out = d;
    return JOBD_OK;

out_free:
    json_decref(d->sizes);
    pthread_mutex_destroy(&d->lock);
    pthread_mutex_destroy(&d->flush_lock);
    pthread_cond_destroy(&d->cond);
    free(d);
    return rc;
}

void datalake_notify(datalake_t *d)
{
    if (!d)
        return;
    /* The first notice after a flush began wakes the writer; later ones,
     * which arrive while it holds off (COALESCE_MS) or flushes, are covered
     * by that flush or the next one and would each cost it a context switch
     * for nothing: with bots finishing one job at a time that was a switch
     * per job.  The lock orders the signal after the writer's check of
     * dirty, so that the wake-up cannot be lost. */
    if (atomic_exchange(&d->dirty, true))
        return;
    pthread_mutex_lock(&d->lock);
    pthread_cond_signal(&d->cond);
    pthread_mutex_unlock(&d->lock);
}

void datalake_stats(datalake_t *d, long long *appends, long long *records)
{
    *appends = d ? atomic_load(&d->appends) : 0;
    *records = d ? atomic_load(&d->records) : 0;
}

void datalake_close(datalake_t *d)
{
    err_t e;
    int n;

    if (!d)
        return;
    pthread_mutex_lock(&d->lock);
    d->stop = true;
    pthread_cond_signal(&d->cond);
    pthread_mutex_unlock(&d->lock);
    pthread_join(d->thread, NULL);
    if (datalake_flush(d, &n, &e) != JOBD_OK)
        log_error("datalake: last export failed (the jobs stay unexported and are written at "
                  "the next start): %s",
                  e.msg);
    json_decref(d->sizes);
    pthread_mutex_destroy(&d->lock);
    pthread_mutex_destroy(&d->flush_lock);
    pthread_cond_destroy(&d->cond);
    free(d);
}
