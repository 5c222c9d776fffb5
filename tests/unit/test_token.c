/* Unit tests for lib/token.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "token.h"

static void
equal_compares_content_and_length(void **state)
{
	(void)state;
	assert_true(token_equal("secret-token-123", 16, "secret-token-123", 16));
	assert_false(token_equal("secret-token-123", 16, "secret-token-124", 16));
	assert_false(token_equal("secret-token-123", 16, "secret-token-12", 15));
	assert_false(token_equal("", 0, "x", 1));
	assert_true(token_equal("", 0, "", 0));
}

static void
random_hex_is_hex_and_differs(void **state)
{
	char a[49], b[49], small[10];

	(void)state;
	assert_int_equal(token_random_hex(a, sizeof(a), 24), 0);
	assert_int_equal(token_random_hex(b, sizeof(b), 24), 0);
	assert_int_equal(strlen(a), 48);
	assert_int_equal(strspn(a, "0123456789abcdef"), 48);
	assert_string_not_equal(a, b);
	assert_int_equal(token_random_hex(small, sizeof(small), 24), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(equal_compares_content_and_length),
		cmocka_unit_test(random_hex_is_hex_and_differs),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
