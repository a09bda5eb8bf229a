/*
 * waitq.c - the parked long-poll claims: a doubly linked list under one
 * mutex.  Lists stay short (one entry per waiting bot connection), so a
 * linear scan on announce is cheaper than any index.
 */
#include "waitq.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct waitq {
    pthread_mutex_t lock;
    uint64_t seq;
    waiter_t head; /* sentinel */
    int count;
    long long wakes;    /* waiters woken by announcements, since the start */
    long long handoffs; /* waiters handed a job, since the start */
    bool closed;        /* stopping: nothing parks any more */
};

waitq_t *waitq_new(void)
{
    waitq_t *q = calloc(1, sizeof *q);
    if (!q)
        abort();
    pthread_mutex_init(&q->lock, NULL);
    q->head.next = q->head.prev = &q->head;
    return q;
}

void waitq_free(waitq_t *q)
{
    if (!q)
        return;
    pthread_mutex_destroy(&q->lock);
    free(q);
}

uint64_t waitq_seq(waitq_t *q)
{
    uint64_t s;
    pthread_mutex_lock(&q->lock);
    s = q->seq;
    pthread_mutex_unlock(&q->lock);
    return s;
}

static void unlink_waiter(waitq_t *q, waiter_t *w)
{
    w->prev->next = w->next;
    w->next->prev = w->prev;
    w->next = w->prev = NULL;
    w->parked = false;
    q->count--;
}

bool waitq_park(waitq_t *q, waiter_t *w, uint64_t seen, void (*suspend)(waiter_t *w))
{
    pthread_mutex_lock(&q->lock);
    if (q->seq != seen || q->closed) {
        pthread_mutex_unlock(&q->lock);
        return false;
    }
    w->prev = q->head.prev;
    w->next = &q->head;
    q->head.prev->next = w;
    q->head.prev = w;
    w->parked = true;
    w->announced = false;
    q->count++;
    suspend(w);
    pthread_mutex_unlock(&q->lock);
    return true;
}

static bool wants(const waiter_t *w, const char *operation)
{
    size_t i;
    json_t *op;
    if (!operation)
        return true;
    json_array_foreach(w->ops, i, op)
    {
        if (strcmp(json_string_value(op), operation) == 0)
            return true;
    }
    return false;
}

/* Wake up to n waiters that want operation (all of them if operation is
 * NULL), oldest first.  Under q->lock. */
static void announce_locked(waitq_t *q, const char *operation, int n)
{
    waiter_t *w, *next;

    q->seq++;
    for (w = q->head.next; w != &q->head && (!operation || n > 0); w = next) {
        next = w->next;
        if (wants(w, operation)) {
            unlink_waiter(q, w);
            w->announced = true;
            q->wakes++;
            w->wake(w);
            n--;
        }
    }
}

void waitq_announce(waitq_t *q, const char *operation, int n)
{
    pthread_mutex_lock(&q->lock);
    announce_locked(q, operation, n);
    pthread_mutex_unlock(&q->lock);
}

/* Under q->lock. */
static void pass_locked(waitq_t *q, const json_t *ops)
{
    size_t i;
    json_t *op;

    json_array_foreach(ops, i, op) announce_locked(q, json_string_value(op), 1);
}

void waitq_pass(waitq_t *q, const json_t *ops)
{
    pthread_mutex_lock(&q->lock);
    pass_locked(q, ops);
    pthread_mutex_unlock(&q->lock);
}

waiter_t *waitq_take(waitq_t *q, const char *operation)
{
    waiter_t *w;

    pthread_mutex_lock(&q->lock);
    for (w = q->head.next; w != &q->head; w = w->next)
        if (w->bot_id && wants(w, operation))
            break;
    if (w == &q->head)
        w = NULL;
    else
        unlink_waiter(q, w);
    pthread_mutex_unlock(&q->lock);
    return w;
}

void waitq_give(waitq_t *q, waiter_t *w, json_t *jobs)
{
    pthread_mutex_lock(&q->lock);
    w->handed = jobs;
    w->announced = jobs == NULL;
    if (jobs)
        q->handoffs++;
    else
        q->wakes++;
    w->wake(w);
    pthread_mutex_unlock(&q->lock);
}

bool waitq_rerun(waitq_t *q, waiter_t *w)
{
    bool announced;

    pthread_mutex_lock(&q->lock);
    announced = w->announced;
    w->announced = false;
    pthread_mutex_unlock(&q->lock);
    return announced;
}

int waitq_expire(waitq_t *q, int64_t now, bool everyone)
{
    waiter_t *w, *next;
    int n = 0;
    pthread_mutex_lock(&q->lock);
    for (w = q->head.next; w != &q->head; w = next) {
        next = w->next;
        if (everyone || w->deadline <= now) {
            unlink_waiter(q, w);
            w->wake(w);
            n++;
        }
    }
    pthread_mutex_unlock(&q->lock);
    return n;
}

void waitq_close(waitq_t *q)
{
    pthread_mutex_lock(&q->lock);
    q->closed = true;
    pthread_mutex_unlock(&q->lock);
    waitq_expire(q, 0, true);
}

void waitq_cancel(waitq_t *q, waiter_t *w)
{
    pthread_mutex_lock(&q->lock);
    if (w->parked)
        unlink_waiter(q, w);
    else if (w->announced && w->ops) /* woken for a job it will never claim */
        pass_locked(q, w->ops);
    w->announced = false;
    pthread_mutex_unlock(&q->lock);
}

long long waitq_wakes(waitq_t *q)
{
    long long n;
    pthread_mutex_lock(&q->lock);
    n = q->wakes;
    pthread_mutex_unlock(&q->lock);
    return n;
}

long long waitq_handoffs(waitq_t *q)
{
    long long n;
    pthread_mutex_lock(&q->lock);
    n = q->handoffs;
    pthread_mutex_unlock(&q->lock);
    return n;
}

int waitq_count(waitq_t *q)
{
    int n;
    pthread_mutex_lock(&q->lock);
    n = q->count;
    pthread_mutex_unlock(&q->lock);
    return n;
}
