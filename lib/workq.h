/*
 * workq - a pool of threads for blocking work (SMTP sessions and the
 * messages composed for them, libetpan, ldns, pg_ctl), whose results come
 * back to the event loop.
 *
 * The loop posts a job: work(arg) runs on a worker thread, then done(arg)
 * runs on the loop thread, woken through an eventfd (the memcached thread.c
 * shape). work() must not touch loop-owned state; done() may. Jobs run in
 * the order posted when there is one worker, in any order otherwise.
 * It does not cancel running jobs: workq_free() waits for them.
 */
#ifndef LEADCAST_WORKQ_H
#define LEADCAST_WORKQ_H

#include <stddef.h>

struct event_base;
struct workq;

typedef void workq_fn(void *arg);

/* Start nthreads workers reporting to base. NULL on failure (errno set). */
struct workq *workq_new(struct event_base *base, int nthreads);
/*
 * Post a job; done may be NULL. The queue is bounded (max_queued, 0 = no
 * bound): returns 0, or -1 if it is full or the pool is shutting down.
 * arg is owned by the caller; typically done() frees it.
 */
int workq_post(struct workq *q, workq_fn *work, workq_fn *done, void *arg);
void workq_set_limit(struct workq *q, size_t max_queued);
/* Jobs waiting to run, and results waiting for the loop. */
size_t workq_depth(struct workq *q);
size_t workq_threads(const struct workq *q);
/* Jobs completed since start. */
unsigned long long workq_completed(struct workq *q);
/*
 * Stop taking jobs, let queued and running ones finish, run their done()
 * callbacks on the calling (loop) thread, join the threads and free.
 */
void workq_free(struct workq *q);

#endif
