/* Unit tests for lib/token.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

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

/* What token_sign() must give, computed here with OpenSSL's one-shot
 * HMAC(): kind, varint ids, the first 10 bytes of HMAC-SHA256, base64url
 * of all but the kind byte. */
static void
expected_token(const struct token_key *key, char kind, uint64_t id,
    uint64_t id2, char *out)
{
	static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrst"
	    "uvwxyz0123456789-_";
	unsigned char raw[64], mac[EVP_MAX_MD_SIZE];
	unsigned int mlen = 0;
	uint64_t v[2] = { id, id2 };
	size_t n = 0, o = 0;
	uint32_t acc = 0;
	int bits = 0;

	raw[n++] = (unsigned char)kind;
	for (int k = 0; k < 2; k++) {
		uint64_t x = v[k];

		do {
			raw[n++] = (unsigned char)((x & 0x7f) | (x >> 7 ? 0x80 : 0));
			x >>= 7;
		} while (x);
	}
	HMAC(EVP_sha256(), key->k, TOKEN_KEY_LEN, raw, n, mac, &mlen);
	memcpy(raw + n, mac, 10);
	n += 10;
	for (size_t i = 1; i < n; i++) {
		acc = (acc << 8) | raw[i];
		for (bits += 8; bits >= 6; bits -= 6)
			out[o++] = b64[(acc >> (bits - 6)) & 63];
	}
	if (bits)
		out[o++] = b64[(acc << (6 - bits)) & 63];
	out[o] = '\0';
}

/* Tokens under alternating keys (the per-thread keyed HMAC context is
 * re-keyed each time) and on another thread are the HMAC-SHA256 ones. */
static void *
sign_alternating(void *arg)
{
	struct token_key k[2];
	char tok[TOKEN_MAX], want[TOKEN_MAX];

	(void)arg;
	memset(&k[0], 0x11, sizeof(k[0]));
	memset(&k[1], 0x22, sizeof(k[1]));
	for (uint64_t i = 0; i < 200; i++) {
		const struct token_key *key = &k[i % 3 == 0];

		token_sign(key, "cuob"[i % 4], i * 7919, i % 5 ? i : 0, tok);
		expected_token(key, "cuob"[i % 4], i * 7919, i % 5 ? i : 0, want);
		if (strcmp(tok, want) != 0)
			return (void *)sign_alternating;     /* a mismatch */
	}
	return NULL;
}

static void
tokens_are_hmac_sha256(void **state)
{
	pthread_t t;
	void *r = (void *)1;

	(void)state;
	assert_null(sign_alternating(NULL));
	assert_int_equal(pthread_create(&t, NULL, sign_alternating, NULL), 0);
	assert_int_equal(pthread_join(t, &r), 0);
	assert_null(r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(equal_compares_content_and_length),
		cmocka_unit_test(random_hex_is_hex_and_differs),
		cmocka_unit_test(signed_tokens_round_trip_and_resist_tampering),
		cmocka_unit_test(tokens_are_hmac_sha256),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
