/*
 * token - random tokens, constant-time comparison, signed URL tokens.
 * See token.h.
 */
#include "token.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define MAC_LEN 10

static const char b64url[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int
token_equal(const void *a, size_t alen, const void *b, size_t blen)
{
	unsigned char da[SHA256_DIGEST_LENGTH], db[SHA256_DIGEST_LENGTH];

	SHA256(a, alen, da);
	SHA256(b, blen, db);
	return CRYPTO_memcmp(da, db, sizeof(da)) == 0;
}

/*
 * Per thread: randomness drawn from the CSPRNG 512 bytes at a time (one
 * RAND_bytes call costs about what 500 bytes of output do: a message
 * takes 32 bytes for its Message-ID and boundary), and an HMAC-SHA256
 * context keyed once with the last key used (re-initialized per token
 * from the key's precomputed state instead of fetched, keyed and freed
 * each time).
 */
struct tls {
	unsigned char pool[512];
	size_t avail;           /* unused bytes at the end of pool */
	EVP_MAC_CTX *mac;
	unsigned char key[TOKEN_KEY_LEN];
};

static pthread_key_t tls_key;
static pthread_once_t tls_once = PTHREAD_ONCE_INIT;
static EVP_MAC *hmac_alg;

static void
tls_free(void *p)
{
	struct tls *t = p;

	EVP_MAC_CTX_free(t->mac);
	OPENSSL_cleanse(t, sizeof(*t));
	free(t);
}

static void
tls_init(void)
{
	pthread_key_create(&tls_key, tls_free);
	hmac_alg = EVP_MAC_fetch(NULL, "HMAC", NULL);
}

static struct tls *
tls_get(void)
{
	struct tls *t;

	pthread_once(&tls_once, tls_init);
	if ((t = pthread_getspecific(tls_key)) == NULL &&
	    (t = calloc(1, sizeof(*t))) != NULL &&
	    pthread_setspecific(tls_key, t) != 0) {
		free(t);
		t = NULL;
	}
	return t;
}

static int
random_bytes(unsigned char *out, size_t n)
{
	struct tls *t = tls_get();

	if (!t || n > sizeof(t->pool))
		return RAND_bytes(out, (int)n) == 1 ? 0 : -1;
	if (t->avail < n) {
		if (RAND_bytes(t->pool, (int)sizeof(t->pool)) != 1)
			return -1;
		t->avail = sizeof(t->pool);
	}
	t->avail -= n;
	memcpy(out, t->pool + t->avail, n);
	OPENSSL_cleanse(t->pool + t->avail, n);
	return 0;
}

int
token_random_hex(char *out, size_t outlen, size_t nbytes)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char raw[256];

	if (nbytes > sizeof(raw) || outlen < 2 * nbytes + 1 ||
	    random_bytes(raw, nbytes) < 0)
		return -1;
	for (size_t i = 0; i < nbytes; i++) {
		out[2 * i] = hex[raw[i] >> 4];
		out[2 * i + 1] = hex[raw[i] & 15];
	}
	out[2 * nbytes] = '\0';
	OPENSSL_cleanse(raw, sizeof(raw));
	return 0;
}

int
token_key_from_hex(struct token_key *key, const char *hex)
{
	if (strlen(hex) != 2 * TOKEN_KEY_LEN)
		return -1;
	for (size_t i = 0; i < TOKEN_KEY_LEN; i++) {
		int v = 0;

		for (int j = 0; j < 2; j++) {
			char c = hex[2 * i + (size_t)j];

			v <<= 4;
			if (c >= '0' && c <= '9')
				v |= c - '0';
			else if (c >= 'a' && c <= 'f')
				v |= c - 'a' + 10;
			else if (c >= 'A' && c <= 'F')
				v |= c - 'A' + 10;
			else
				return -1;
		}
		key->k[i] = (unsigned char)v;
	}
	return 0;
}

static size_t
put_varint(unsigned char *p, uint64_t v)
{
	size_t n = 0;

	do {
		unsigned char b = v & 0x7f;

		v >>= 7;
		p[n++] = (unsigned char)(b | (v ? 0x80 : 0));
	} while (v);
	return n;
}

static int
get_varint(const unsigned char *p, size_t len, size_t *off, uint64_t *v)
{
	*v = 0;
	for (int shift = 0; shift < 64; shift += 7) {
		unsigned char b;

		if (*off >= len)
			return -1;
		b = p[(*off)++];
		*v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80))
			return (shift && b == 0) ? -1 : 0;     /* canonical only */
	}
	return -1;
}

static void
mac(const struct token_key *key, const unsigned char *msg, size_t len,
    unsigned char out[MAC_LEN])
{
	unsigned char full[EVP_MAX_MD_SIZE];
	unsigned int flen = 0;
	struct tls *t = tls_get();
	size_t n = 0;

	if (t && hmac_alg) {
		int fresh = t->mac == NULL ||
		    CRYPTO_memcmp(t->key, key->k, TOKEN_KEY_LEN) != 0;
		OSSL_PARAM params[2] = {
			OSSL_PARAM_construct_utf8_string("digest", "SHA256", 0),
			OSSL_PARAM_END
		};

		if (!t->mac)
			t->mac = EVP_MAC_CTX_new(hmac_alg);
		if (t->mac && EVP_MAC_init(t->mac, fresh ? key->k : NULL,
		    fresh ? TOKEN_KEY_LEN : 0, fresh ? params : NULL) == 1 &&
		    EVP_MAC_update(t->mac, msg, len) == 1 &&
		    EVP_MAC_final(t->mac, full, &n, sizeof(full)) == 1 &&
		    n == SHA256_DIGEST_LENGTH) {
			if (fresh)
				memcpy(t->key, key->k, TOKEN_KEY_LEN);
			memcpy(out, full, MAC_LEN);
			return;
		}
		EVP_MAC_CTX_free(t->mac);      /* start afresh next time */
		t->mac = NULL;
	}
	HMAC(EVP_sha256(), key->k, TOKEN_KEY_LEN, msg, len, full, &flen);
	memcpy(out, full, MAC_LEN);
}

size_t
token_sign(const struct token_key *key, char kind, uint64_t id, uint64_t id2,
    char *out)
{
	unsigned char raw[1 + 10 + 10 + MAC_LEN];
	size_t n = 0, o = 0;
	uint32_t acc = 0;
	int bits = 0;

	raw[n++] = (unsigned char)kind;
	n += put_varint(raw + n, id);
	n += put_varint(raw + n, id2);
	mac(key, raw, n, raw + n);
	n += MAC_LEN;
	/* the kind byte is implied by the URL; it is signed, not sent */
	for (size_t i = 1; i < n; i++) {
		acc = (acc << 8) | raw[i];
		bits += 8;
		while (bits >= 6) {
			bits -= 6;
			out[o++] = b64url[(acc >> bits) & 63];
		}
	}
	if (bits)
		out[o++] = b64url[(acc << (6 - bits)) & 63];
	out[o] = '\0';
	return o;
}

int
token_verify(const struct token_key *key, char kind, const char *tok,
    size_t len, uint64_t *id, uint64_t *id2)
{
	unsigned char raw[1 + 10 + 10 + MAC_LEN], want[MAC_LEN];
	size_t n = 1, off = 1;
	uint32_t acc = 0;
	int bits = 0;

	if (len < 4 || len > TOKEN_MAX - 1)
		return -1;
	raw[0] = (unsigned char)kind;
	for (size_t i = 0; i < len; i++) {
		const char *p = memchr(b64url, tok[i], 64);

		if (!p || !tok[i])
			return -1;
		acc = (acc << 6) | (uint32_t)(p - b64url);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (n >= sizeof(raw))
				return -1;
			raw[n++] = (unsigned char)(acc >> bits);
		}
	}
	if (bits >= 6 || (acc & ((1u << bits) - 1)))
		return -1;      /* non-canonical padding bits */
	if (n < 1 + 2 + MAC_LEN ||
	    get_varint(raw, n - MAC_LEN, &off, id) < 0 ||
	    get_varint(raw, n - MAC_LEN, &off, id2) < 0 ||
	    off != n - MAC_LEN)
		return -1;
	mac(key, raw, off, want);
	return CRYPTO_memcmp(want, raw + off, MAC_LEN) == 0 ? 0 : -1;
}
