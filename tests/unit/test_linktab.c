/* Unit tests for lib/linktab.c: the in-memory link table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "linktab.h"

static void
add_get_grow_bound(void **state)
{
	struct linktab *t = linktab_new(1000);
	char url[64], tag[16], want[64];

	(void)state;
	assert_int_equal(linktab_get(t, 1, url, sizeof(url), tag, sizeof(tag)),
	    0);
	for (uint64_t i = 1; i <= 1000; i++) {
		snprintf(want, sizeof(want), "https://x.example/%llu",
		    (unsigned long long)i * 7);
		assert_int_equal(linktab_add(t, i * 7, want, i % 2 ? "t" : ""),
		    0);
	}
	assert_int_equal(linktab_count(t), 1000);
	assert_int_equal(linktab_max_id(t), 7000);
	assert_int_equal(linktab_add(t, 7001, "https://x/", ""), -1);  /* full */
	assert_int_equal(linktab_add(t, 7, "https://other/", ""), 0);  /* kept */
	assert_int_equal(linktab_get(t, 7, url, sizeof(url), tag, sizeof(tag)),
	    1);
	assert_string_equal(url, "https://x.example/7");
	assert_string_equal(tag, "t");
	assert_int_equal(linktab_get(t, 14, url, sizeof(url), tag,
	    sizeof(tag)), 1);
	assert_string_equal(tag, "");
	assert_int_equal(linktab_get(t, 8, url, sizeof(url), tag, sizeof(tag)),
	    0);
	/* a destination longer than the caller's buffer is a miss */
	assert_int_equal(linktab_get(t, 7000, url, 10, tag, sizeof(tag)), 0);
	linktab_free(t);
}

static void
only_http_links(void **state)
{
	struct linktab *t = linktab_new(10);

	(void)state;
	assert_int_equal(linktab_add(t, 1, "javascript:alert(1)", ""), -1);
	assert_int_equal(linktab_add(t, 2, "//evil.example/", ""), -1);
	assert_int_equal(linktab_add(t, 0, "https://x/", ""), -1);
	assert_int_equal(linktab_add(t, 3, "HTTPS://X/", ""), 0);
	assert_int_equal(linktab_count(t), 1);
	linktab_free(t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(add_get_grow_bound),
		cmocka_unit_test(only_http_links),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
