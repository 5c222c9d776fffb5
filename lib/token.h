/*
 * token - secrets and tokens: random tokens, constant-time comparison, and
 * the signed tokens that appear in public URLs (/c/, /o/, /u/, /r/ ...).
 *
 * A signed token carries a kind letter and one or two numeric ids (say a
 * delivery and a link) and an 80-bit HMAC-SHA256 tag over them, encoded
 * base64url without padding: about 20 characters. Anyone can read the ids;
 * nobody without the key can make or alter one, so a tampered token is
 * simply unknown. Random tokens come from OpenSSL's CSPRNG. Comparison
 * hashes both sides with SHA-256 and compares the digests with
 * CRYPTO_memcmp, so neither content nor length leaks through timing.
 * It does not store tokens or keys anywhere.
 */
#ifndef LEADCAST_TOKEN_H
#define LEADCAST_TOKEN_H

#include <stddef.h>
#include <stdint.h>

#define TOKEN_KEY_LEN 32
#define TOKEN_MAX     48      /* longest signed token, with its NUL */

struct token_key {
	unsigned char k[TOKEN_KEY_LEN];
};

/* 1 if a (alen bytes) equals b (blen bytes), in time independent of both. */
int token_equal(const void *a, size_t alen, const void *b, size_t blen);
/* Fill out with 2*nbytes lowercase hex characters of randomness plus NUL;
 * outlen must be at least 2*nbytes+1. 0, or -1 if the CSPRNG failed. */
int token_random_hex(char *out, size_t outlen, size_t nbytes);
/* Parse a key from 64 hex characters. 0 or -1. */
int token_key_from_hex(struct token_key *key, const char *hex);

/* Sign (kind, id, id2) into out (size >= TOKEN_MAX). Returns the length. */
size_t token_sign(const struct token_key *key, char kind, uint64_t id,
    uint64_t id2, char *out);
/* Verify tok (len bytes) for kind: 0 and the ids, or -1 (malformed,
 * tampered, other kind). */
int token_verify(const struct token_key *key, char kind, const char *tok,
    size_t len, uint64_t *id, uint64_t *id2);

#endif
