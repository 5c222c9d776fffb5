/* Unit tests for lib/hit.c: ids, the spool line form, the bounded queue. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "hit.h"

static void
ids_unique_and_uuid_shaped(void **state)
{
	struct hit a, b;

	(void)state;
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	hit_stamp(&a);
	hit_stamp(&b);
	assert_int_equal(strlen(a.id), 36);
	assert_string_not_equal(a.id, b.id);
	assert_int_equal(a.id[8], '-');
	assert_int_equal(a.id[23], '-');
	assert_memory_equal(a.id, b.id, 18);    /* one process: one prefix */
	assert_true(a.at_us > 1700000000LL * 1000000);
}

static void
line_round_trip(void **state)
{
	struct hit h, back;
	struct buf b;

	(void)state;
	memset(&h, 0, sizeof(h));
	h.type = HIT_CLICK;
	h.cls = HIT_MACHINE;
	h.delivery = 123456789012ULL;
	h.link = 42;
	hit_stamp(&h);
	strcpy(h.ip, "2001:db8::1");
	strcpy(h.reason, "agent:GoogleImageProxy");
	hit_clean(h.ua, sizeof(h.ua), "Mozilla/5.0\t(evil)\nX-Injected: 1 \xc3\xa9");
	strcpy(h.url, "https://example.com/pricing?a=1");
	strcpy(h.page, "pricing");
	buf_init(&b, 0);
	assert_int_equal(hit_format(&h, &b), 0);
	assert_int_equal(b.data[b.len - 1], '\n');
	assert_int_equal(hit_parse(b.data, b.len - 1, &back), 0);
	assert_string_equal(back.id, h.id);
	assert_int_equal(back.type, HIT_CLICK);
	assert_int_equal(back.cls, HIT_MACHINE);
	assert_true(back.delivery == h.delivery && back.link == 42);
	assert_true(back.at_us == h.at_us);
	assert_string_equal(back.ua, "Mozilla/5.0?(evil)?X-Injected: 1 \xc3\xa9");
	assert_string_equal(back.url, h.url);
	assert_string_equal(back.page, "pricing");
	assert_string_equal(back.ip, "2001:db8::1");
	buf_free(&b);
}

static void
bad_lines_refused(void **state)
{
	static const char *const bad[] = {
		"",
		"garbage",
		"2\t00000000-0000-0000-0000-000000000000\topen\thuman\t1\t0\t0\t1\t\t\t\t\t\t",
		"1\t00000000-0000-0000-0000-00000000000g\topen\thuman\t1\t0\t0\t1\t\t\t\t\t\t",
		"1\t00000000-0000-0000-0000-000000000000\tsend\thuman\t1\t0\t0\t1\t\t\t\t\t\t",
		"1\t00000000-0000-0000-0000-000000000000\topen\trobot\t1\t0\t0\t1\t\t\t\t\t\t",
		"1\t00000000-0000-0000-0000-000000000000\topen\thuman\t-1\t0\t0\t1\t\t\t\t\t\t",
		"1\t00000000-0000-0000-0000-000000000000\topen\thuman\t1\t0\t0\t1\t\t\t\t\t",
		"1\t00000000-0000-0000-0000-000000000000\topen\thuman\t1\t0\t0\t1\t\t\t\t\t\t\t\t",
	};
	struct hit h;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(hit_parse(bad[i], strlen(bad[i]), &h), -1);
	{
		const char *ok = "1\t00000000-0000-0000-0000-000000000000\t"
		    "open\thuman\t1\t0\t0\t1\t\t\t\t\t\t";

		assert_int_equal(hit_parse(ok, strlen(ok), &h), 0);
	}
}

static void
clean_bounds_and_utf8(void **state)
{
	char out[8];

	(void)state;
	hit_clean(out, sizeof(out), "abc\xff\x01" "def");
	assert_string_equal(out, "abc??de");
	hit_clean(out, sizeof(out), "abcdef\xc3\xa9");    /* not cut inside */
	assert_string_equal(out, "abcdef");
	hit_clean(out, sizeof(out), NULL);
	assert_string_equal(out, "");
}

static void
queue_bounded_fifo(void **state)
{
	struct hitq *q = hitq_new(4);
	struct hit h, out[8];

	(void)state;
	memset(&h, 0, sizeof(h));
	for (int i = 0; i < 6; i++) {
		h.delivery = (uint64_t)i;
		assert_int_equal(hitq_push(q, &h), i < 4 ? 0 : -1);
	}
	assert_int_equal(hitq_len(q), 4);
	assert_int_equal(hitq_refused(q), 2);
	assert_int_equal(hitq_pop(q, out, 3), 3);
	assert_true(out[0].delivery == 0 && out[2].delivery == 2);
	h.delivery = 9;
	assert_int_equal(hitq_push(q, &h), 0);  /* wraps around */
	assert_int_equal(hitq_pop(q, out, 8), 2);
	assert_true(out[0].delivery == 3 && out[1].delivery == 9);
	assert_int_equal(hitq_pop(q, out, 8), 0);
	hitq_free(q);
}

static void *
pusher(void *arg)
{
	struct hitq *q = arg;
	struct hit h;

	memset(&h, 0, sizeof(h));
	for (int i = 0; i < 5000; i++) {
		hit_stamp(&h);
		while (hitq_push(q, &h) < 0)
			;
	}
	return NULL;
}

static void
queue_threads_nothing_lost(void **state)
{
	struct hitq *q = hitq_new(64);
	pthread_t t[3];
	static struct hit out[64];
	size_t got = 0;

	(void)state;
	for (int i = 0; i < 3; i++)
		pthread_create(&t[i], NULL, pusher, q);
	while (got < 15000)
		got += hitq_pop(q, out, 64);
	for (int i = 0; i < 3; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(got, 15000);
	hitq_free(q);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(ids_unique_and_uuid_shaped),
		cmocka_unit_test(line_round_trip),
		cmocka_unit_test(bad_lines_refused),
		cmocka_unit_test(clean_bounds_and_utf8),
		cmocka_unit_test(queue_bounded_fifo),
		cmocka_unit_test(queue_threads_nothing_lost),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
