/*
 * token - random tokens and constant-time comparison. See token.h.
 */
#include "token.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

int
token_equal(const void *a, size_t alen, const void *b, size_t blen)
{
	unsigned char da[SHA256_DIGEST_LENGTH], db[SHA256_DIGEST_LENGTH];

	SHA256(a, alen, da);
	SHA256(b, blen, db);
	return CRYPTO_memcmp(da, db, sizeof(da)) == 0;
}

int
token_random_hex(char *out, size_t outlen, size_t nbytes)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char raw[256];

	if (nbytes > sizeof(raw) || outlen < 2 * nbytes + 1 ||
	    RAND_bytes(raw, (int)nbytes) != 1)
		return -1;
	for (size_t i = 0; i < nbytes; i++) {
		out[2 * i] = hex[raw[i] >> 4];
		out[2 * i + 1] = hex[raw[i] & 15];
	}
	out[2 * nbytes] = '\0';
	OPENSSL_cleanse(raw, sizeof(raw));
	return 0;
}
