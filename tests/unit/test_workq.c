/* Unit tests for lib/workq.c: jobs run on workers, results on the loop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "workq.h"

struct job {
	struct event_base *base;
	pthread_t loop_thread, ran_on;
	int input, output;
	int *done_count, total;
	int *order, *order_len;
};

static void
square(void *arg)
{
	struct job *j = arg;

	j->ran_on = pthread_self();
	j->output = j->input * j->input;
	if (j->input % 7 == 0)
		usleep(100);    /* make completions interleave */
}

static void
collect(void *arg)
{
	struct job *j = arg;

	/* done() runs on the loop thread, never on a worker */
	assert_true(pthread_equal(pthread_self(), j->loop_thread));
	assert_false(pthread_equal(j->ran_on, j->loop_thread));
	assert_int_equal(j->output, j->input * j->input);
	if (j->order)
		j->order[(*j->order_len)++] = j->input;
	if (++*j->done_count == j->total)
		event_base_loopbreak(j->base);
}

static void
results_come_back_on_the_loop(void **state)
{
	enum { N = 2000 };
	struct event_base *base = event_base_new();
	struct workq *q = workq_new(base, 4);
	static struct job jobs[N];
	int done = 0;

	(void)state;
	assert_non_null(q);
	assert_int_equal(workq_threads(q), 4);
	for (int i = 0; i < N; i++) {
		jobs[i] = (struct job){ base, pthread_self(), 0, i, -1, &done, N,
		    NULL, NULL };
		assert_int_equal(workq_post(q, square, collect, &jobs[i]), 0);
	}
	event_base_dispatch(base);
	assert_int_equal(done, N);
	assert_int_equal(workq_completed(q), N);
	assert_int_equal(workq_depth(q), 0);
	workq_free(q);
	event_base_free(base);
}

static void
one_worker_keeps_order(void **state)
{
	enum { N = 200 };
	struct event_base *base = event_base_new();
	struct workq *q = workq_new(base, 1);
	static struct job jobs[N];
	int done = 0, order[N], len = 0;

	(void)state;
	for (int i = 0; i < N; i++) {
		jobs[i] = (struct job){ base, pthread_self(), 0, i, -1, &done, N,
		    order, &len };
		workq_post(q, square, collect, &jobs[i]);
	}
	event_base_dispatch(base);
	for (int i = 0; i < N; i++)
		assert_int_equal(order[i], i);
	workq_free(q);
	event_base_free(base);
}

static void
bounded_queue_refuses(void **state)
{
	struct event_base *base = event_base_new();
	struct workq *q = workq_new(base, 1);
	static struct job jobs[64];
	int done = 0, accepted = 0;

	(void)state;
	workq_set_limit(q, 8);
	for (int i = 0; i < 64; i++) {
		jobs[i] = (struct job){ base, pthread_self(), 0, 7, -1, &done,
		    1 << 30, NULL, NULL };
		if (workq_post(q, square, collect, &jobs[i]) == 0)
			accepted++;
	}
	assert_true(accepted < 64);
	assert_true(accepted >= 8);
	/* free drains: every accepted job's done() still runs */
	workq_free(q);
	assert_int_equal(done, accepted);
	event_base_free(base);
}

static void
refuses_after_free_starts(void **state)
{
	struct event_base *base = event_base_new();

	(void)state;
	assert_null(workq_new(base, 0));
	event_base_free(base);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(results_come_back_on_the_loop),
		cmocka_unit_test(one_worker_keeps_order),
		cmocka_unit_test(bounded_queue_refuses),
		cmocka_unit_test(refuses_after_free_starts),
	};
	evthread_use_pthreads();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
