/*
 * workq - worker threads with results handed back to the loop through an
 * eventfd. See workq.h.
 */
#include "workq.h"
#include "log.h"

#include <errno.h>
#include <event2/event.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct job {
	workq_fn *work, *done;
	void *arg;
	struct job *next;
};

struct jobq {
	struct job *head, **tail;
	size_t len;
};

struct workq {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct jobq todo;               /* waiting for a worker */
	struct jobq finished;           /* waiting for the loop */
	size_t running;
	size_t max_queued;
	int stopping;
	unsigned long long completed;
	int efd;
	struct event *ev;
	pthread_t *threads;
	size_t nthreads;
};

static void
jobq_push(struct jobq *q, struct job *j)
{
	j->next = NULL;
	*q->tail = j;
	q->tail = &j->next;
	q->len++;
}

static struct job *
jobq_pop(struct jobq *q)
{
	struct job *j = q->head;

	if (j) {
		q->head = j->next;
		if (!q->head)
			q->tail = &q->head;
		q->len--;
	}
	return j;
}

static void *
worker_main(void *arg)
{
	struct workq *q = arg;
	uint64_t one = 1;

	pthread_mutex_lock(&q->lock);
	for (;;) {
		struct job *j;

		while (!q->todo.head && !q->stopping)
			pthread_cond_wait(&q->cond, &q->lock);
		if (!(j = jobq_pop(&q->todo)))
			break;          /* stopping and nothing left */
		q->running++;
		pthread_mutex_unlock(&q->lock);
		j->work(j->arg);
		pthread_mutex_lock(&q->lock);
		q->running--;
		q->completed++;
		jobq_push(&q->finished, j);
		/* A failed write can only mean the counter is already huge. */
		(void)!write(q->efd, &one, sizeof(one));
	}
	pthread_mutex_unlock(&q->lock);
	return NULL;
}

/* On the loop: run done() for every finished job. */
static void
workq_drain_finished(struct workq *q)
{
	struct jobq batch;
	struct job *j;

	pthread_mutex_lock(&q->lock);
	batch = q->finished;
	if (!batch.head)
		batch.tail = &batch.head;
	q->finished.head = NULL;
	q->finished.tail = &q->finished.head;
	q->finished.len = 0;
	pthread_mutex_unlock(&q->lock);
	while ((j = jobq_pop(&batch)) != NULL) {
		if (j->done)
			j->done(j->arg);
		free(j);
	}
}

static void
workq_on_wake(evutil_socket_t fd, short what, void *arg)
{
	uint64_t n;

	(void)what;
	if (read(fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		log_warn("workq: eventfd read: %s", strerror(errno));
	workq_drain_finished(arg);
}

struct workq *
workq_new(struct event_base *base, int nthreads)
{
	struct workq *q;

	if (nthreads < 1 || !(q = calloc(1, sizeof(*q))))
		return NULL;
	q->todo.tail = &q->todo.head;
	q->finished.tail = &q->finished.head;
	pthread_mutex_init(&q->lock, NULL);
	pthread_cond_init(&q->cond, NULL);
	q->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	q->threads = calloc((size_t)nthreads, sizeof(*q->threads));
	if (q->efd < 0 || !q->threads)
		goto fail;
	q->ev = event_new(base, q->efd, EV_READ | EV_PERSIST, workq_on_wake, q);
	if (!q->ev || event_add(q->ev, NULL) < 0)
		goto fail;
	for (; q->nthreads < (size_t)nthreads; q->nthreads++) {
		if (pthread_create(&q->threads[q->nthreads], NULL, worker_main,
		    q) != 0)
			goto fail;
	}
	return q;
fail:
	workq_free(q);
	return NULL;
}

int
workq_post(struct workq *q, workq_fn *work, workq_fn *done, void *arg)
{
	struct job *j;

	if (!(j = malloc(sizeof(*j))))
		return -1;
	j->work = work;
	j->done = done;
	j->arg = arg;
	pthread_mutex_lock(&q->lock);
	if (q->stopping || (q->max_queued && q->todo.len >= q->max_queued)) {
		pthread_mutex_unlock(&q->lock);
		free(j);
		return -1;
	}
	jobq_push(&q->todo, j);
	pthread_cond_signal(&q->cond);
	pthread_mutex_unlock(&q->lock);
	return 0;
}

void
workq_set_limit(struct workq *q, size_t max_queued)
{
	pthread_mutex_lock(&q->lock);
	q->max_queued = max_queued;
	pthread_mutex_unlock(&q->lock);
}

size_t
workq_depth(struct workq *q)
{
	size_t n;

	pthread_mutex_lock(&q->lock);
	n = q->todo.len + q->running + q->finished.len;
	pthread_mutex_unlock(&q->lock);
	return n;
}

size_t
workq_threads(const struct workq *q)
{
	return q->nthreads;
}

unsigned long long
workq_completed(struct workq *q)
{
	unsigned long long n;

	pthread_mutex_lock(&q->lock);
	n = q->completed;
	pthread_mutex_unlock(&q->lock);
	return n;
}

void
workq_free(struct workq *q)
{
	if (!q)
		return;
	pthread_mutex_lock(&q->lock);
	q->stopping = 1;
	pthread_cond_broadcast(&q->cond);
	pthread_mutex_unlock(&q->lock);
	for (size_t i = 0; i < q->nthreads; i++)
		pthread_join(q->threads[i], NULL);
	workq_drain_finished(q);
	if (q->ev)
		event_free(q->ev);
	if (q->efd >= 0)
		close(q->efd);
	pthread_cond_destroy(&q->cond);
	pthread_mutex_destroy(&q->lock);
	free(q->threads);
	free(q);
}
