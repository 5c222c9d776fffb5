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

static void
signed_tokens_round_trip_and_resist_tampering(void **state)
{
	struct token_key key, other;
	char tok[TOKEN_MAX], bad[TOKEN_MAX];
	uint64_t a, b;
	size_t len;
	static const uint64_t ids[] = { 0, 1, 127, 128, 300, 1u << 31,
	    UINT64_MAX };

	(void)state;
	assert_int_equal(token_key_from_hex(&key, "000102030405060708090a0b0c0d"
	    "0e0f101112131415161718191a1b1c1d1e1f"), 0);
	assert_int_equal(token_key_from_hex(&other, "ff0102030405060708090a0b0c0d"
	    "0e0f101112131415161718191a1b1c1d1e1f"), 0);
	assert_int_equal(token_key_from_hex(&other, "xyz"), -1);
	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		len = token_sign(&key, 'c', ids[i], ids[(i + 3) % 7], tok);
		assert_int_equal(len, strlen(tok));
		assert_true(len < TOKEN_MAX);
		assert_int_equal(strspn(tok, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghij"
		    "klmnopqrstuvwxyz0123456789-_"), len);
		assert_int_equal(token_verify(&key, 'c', tok, len, &a, &b), 0);
		assert_true(a == ids[i] && b == ids[(i + 3) % 7]);
		/* another kind, another key, any changed character: unknown */
		assert_int_equal(token_verify(&key, 'o', tok, len, &a, &b), -1);
		assert_int_equal(token_verify(&other, 'c', tok, len, &a, &b), -1);
		for (size_t j = 0; j < len; j++) {
			memcpy(bad, tok, len + 1);
			bad[j] = bad[j] == 'A' ? 'B' : 'A';
			assert_int_equal(token_verify(&key, 'c', bad, len, &a,
			    &b), -1);
		}
		assert_int_equal(token_verify(&key, 'c', tok, len - 1, &a, &b),
		    -1);
	}
	len = token_sign(&key, 'o', 123456, 0, tok);
	assert_true(len <= 20);
	assert_int_equal(token_verify(&key, 'o', "", 0, &a, &b), -1);
	assert_int_equal(token_verify(&key, 'o', "../../etc/passwd", 16, &a, &b),
	    -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(equal_compares_content_and_length),
		cmocka_unit_test(random_hex_is_hex_and_differs),
		cmocka_unit_test(signed_tokens_round_trip_and_resist_tampering),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
