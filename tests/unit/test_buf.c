/* Unit tests for lib/buf.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

static void
grows_and_formats(void **state)
{
	struct buf b = BUF_INIT;

	(void)state;
	assert_string_equal(buf_str(&b), "");
	for (int i = 0; i < 1000; i++)
		assert_int_equal(buf_printf(&b, "%d,", i), 0);
	assert_int_equal(b.len, strlen(b.data));
	assert_true(strncmp(b.data, "0,1,2,", 6) == 0);
	assert_non_null(strstr(b.data, "999,"));
	buf_free(&b);
}

static void
limit_refuses_and_marks(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b, 8);
	assert_int_equal(buf_puts(&b, "12345678"), 0);
	assert_int_equal(buf_putc(&b, '9'), -1);
	assert_true(b.overflow);
	assert_int_equal(b.len, 8);
	assert_int_equal(buf_puts(&b, ""), -1);       /* stays refused */
	buf_reset(&b);
	assert_false(b.overflow);
	assert_int_equal(buf_puts(&b, "ok"), 0);
	buf_free(&b);
}

static void
steal_gives_ownership(void **state)
{
	struct buf b = BUF_INIT;
	char *s;

	(void)state;
	s = buf_steal(&b);
	assert_string_equal(s, "");
	free(s);
	buf_puts(&b, "abc");
	s = buf_steal(&b);
	assert_string_equal(s, "abc");
	assert_null(b.data);
	free(s);
}

static void
grow_exact_fits(void **state)
{
	struct buf b = BUF_INIT, l;

	(void)state;
	assert_int_equal(buf_grow_exact(&b, 20000), 0);
	assert_int_equal(b.cap, 20001);         /* the bytes and a NUL */
	assert_int_equal(buf_puts(&b, "abc"), 0);
	assert_int_equal(buf_grow_exact(&b, 100), 0);
	assert_int_equal(b.cap, 20001);         /* it had room */
	buf_reset(&b);
	assert_int_equal(buf_grow_exact(&b, 30000), 0);
	assert_int_equal(b.cap, 30001);
	assert_string_equal(buf_str(&b), "");
	buf_free(&b);
	buf_init(&l, 8);
	assert_int_equal(buf_grow_exact(&l, 9), -1);
	assert_true(l.overflow);
	buf_free(&l);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(grows_and_formats),
		cmocka_unit_test(limit_refuses_and_marks),
		cmocka_unit_test(steal_gives_ownership),
		cmocka_unit_test(grow_exact_fits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
