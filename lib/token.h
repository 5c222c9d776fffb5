/*
 * token - secrets and tokens: random tokens and constant-time comparison.
 *
 * Random tokens come from OpenSSL's CSPRNG. Comparison hashes both sides
 * with SHA-256 and compares the digests with CRYPTO_memcmp, so neither the
 * contents nor the length of the secret leak through timing.
 * It does not store tokens anywhere.
 */
#ifndef LEADCAST_TOKEN_H
#define LEADCAST_TOKEN_H

#include <stddef.h>

/* 1 if a (alen bytes) equals b (blen bytes), in time independent of both. */
int token_equal(const void *a, size_t alen, const void *b, size_t blen);
/* Fill out with 2*nbytes lowercase hex characters of randomness plus NUL;
 * outlen must be at least 2*nbytes+1. 0, or -1 if the CSPRNG failed. */
int token_random_hex(char *out, size_t outlen, size_t nbytes);

#endif
