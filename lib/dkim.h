/*
 * dkim - DKIM signing (RFC 6376, RFC 8463) with keys loaded once per
 * configuration load, and key generation for `leadcast dkim-keygen`.
 *
 * A key set holds, per From-domain, one RSA and/or one Ed25519 key (both
 * = dual signature), each parsed from its PEM file once, when the
 * configuration is loaded. Signing canonicalizes (relaxed/relaxed), hashes
 * and signs with OpenSSL using those parsed keys: libopendkim's dkim_sign()
 * takes the key as text and parses it again for every message, which under
 * OpenSSL 3 costs more than the RSA signature itself (tests/bench/
 * dkim_keyload.c measures it). libopendkim is the reference: when a key
 * is added, a probe message signed with it must pass libopendkim's
 * verifier, and the unit tests verify every signature with it.
 *
 * It does not find the From domain (the caller passes it), does no DNS
 * (`leadcast check-dns` fetches the published key record and
 * dkim_keys_check_record() compares it with the key), never modifies the
 * message (the caller prepends the returned header fields) and does not log:
 * problems come back as text for the caller to log.
 *
 * Names: libopendkim owns the dkim_* namespace and exports dkim_sign(), so
 * the functions here are dkim_keys_* and dkim_keygen(); and this header
 * shadows libopendkim's <dkim.h> on our include path, so code that needs
 * libopendkim itself includes <opendkim/dkim.h>.
 */
#ifndef LEADCAST_DKIM_H
#define LEADCAST_DKIM_H

#include <stddef.h>

#include "buf.h"

/* All signing keys of one configuration: immutable once loaded, so worker
 * threads may sign with one set concurrently. A reload builds a new set;
 * free the old one when no worker uses it any more. */
struct dkim_keys;

enum dkim_alg {
	DKIM_ALG_RSA_SHA256 = 1,
	DKIM_ALG_ED25519_SHA256 = 2
};

/* "rsa-sha256", "ed25519-sha256" (the a= value); "?" if unknown. */
const char *dkim_alg_name(enum dkim_alg alg);

/* An empty key set, or NULL if out of memory. Caller frees with
 * dkim_keys_free(). */
struct dkim_keys *dkim_keys_new(void);
/* Frees the set and its keys; NULL is a no-op. */
void dkim_keys_free(struct dkim_keys *k);

/*
 * Load key_file (PEM, unencrypted PKCS#8 or traditional) to sign mail from
 * domain with selector and alg. A domain may have one key per algorithm
 * (an RSA and an Ed25519 key under two selectors give a dual signature).
 * The key is parsed here, once; the file is not read again.
 *
 * Returns 0 when loaded; 1 when loaded but err holds a warning for the
 * caller to log (the file is group-readable; the RSA key is under 2048
 * bits); -1 when not loaded, err saying why, naming the file where the
 * file is the problem: missing or unreadable, not a regular file, not a
 * PEM private key, encrypted, a key of the wrong type for alg, an RSA key
 * under 1024 bits (RFC 8301), readable or writable by others, or writable
 * by the group; an invalid domain or selector; a second key for the same
 * domain and algorithm or selector; or a failed self-test (a probe
 * message signed with the key did not pass libopendkim's verifier).
 * Not thread-safe: call while loading, before the set is shared.
 */
int dkim_keys_add(struct dkim_keys *k, const char *domain,
    const char *selector, enum dkim_alg alg, const char *key_file,
    char *err, size_t n);

/* Number of keys in the set. */
size_t dkim_keys_count(const struct dkim_keys *k);

/*
 * Sign a complete RFC 5322 message (header fields, empty line, body; CRLF
 * line endings only) with the keys of domain (matched without regard to
 * case), normally the domain of its From: address. Appends one
 * DKIM-Signature header field per key (rsa-sha256 first), each ending in
 * CRLF, to out: the caller prepends them to the message unchanged.
 *
 * Signs From, To, Subject, Date, Message-ID, MIME-Version, Content-Type,
 * List-Unsubscribe and List-Unsubscribe-Post where present, each listed in
 * h= once more than it occurs ("oversigned"), so a copy with another such
 * field added (a second From: shown by the mail reader, a different
 * List-Unsubscribe) fails verification. c=relaxed/relaxed, t= now, no l=
 * and no x=; lines folded at 78 columns. A body not ending in CRLF is
 * signed as SMTP delivers it, with the CRLF that ends the DATA (RFC 5321
 * 4.1.1.4): the sender must add that CRLF (OpenDKIM verifiers refuse a
 * message without it).
 *
 * Returns 0 (signed), 1 (no key for domain: nothing appended), or -1 with
 * err (no From: field or two, a bare CR or LF, a NUL in the header, a
 * malformed header field, white space before a field's colon (obsolete
 * syntax OpenDKIM cannot verify), out of memory or out's size limit, a
 * failing OpenSSL call); out is then as it was. Thread-safe.
 */
int dkim_keys_sign(const struct dkim_keys *k, const char *domain,
    const char *msg, size_t len, struct buf *out, char *err, size_t n);

/*
 * The selectors and algorithms of domain's keys (matched without regard to
 * case), at most max, into sel (pointers owned by the set) and alg.
 * Returns how many there are.
 */
size_t dkim_keys_selectors(const struct dkim_keys *k, const char *domain,
    const char **sel, enum dkim_alg *alg, size_t max);

/* What a published key record (RFC 6376 3.6.1) says. */
struct dkim_pubkey {
	enum dkim_alg alg;      /* from k= (rsa when not given) */
	int bits;               /* RSA modulus bits; 256 for Ed25519 */
	int testing;            /* t=y: verifiers may treat failures as
	                         * unsigned */
};

enum dkim_pubcheck {
	DKIM_PUB_MATCH = 0,     /* the configured key's public half */
	DKIM_PUB_MISMATCH = 1,  /* another key */
	DKIM_PUB_UNCONFIGURED = 2 /* no key configured for domain+selector */
};

/*
 * Check the TXT record published at selector._domainkey.domain: it must
 * parse (a tag-list, v=DKIM1 first when present, k= rsa or ed25519, h=
 * naming sha256, a p= that decodes to a public key of k='s type, an RSA
 * key of at least 1024 bits) and is then compared with the key of k's
 * algorithm configured for domain and selector. Returns an enum
 * dkim_pubcheck with info filled, or -1 with err saying what is wrong
 * with the record (an empty p= is a revoked key). When a key is
 * configured for domain and selector, the record to publish for it is
 * appended to want (may be NULL), whatever txt holds ("" too).
 * Thread-safe.
 */
int dkim_keys_check_record(const struct dkim_keys *k, const char *domain,
    const char *selector, const char *txt, struct dkim_pubkey *info,
    struct buf *want, char *err, size_t n);

/*
 * Generate a key (RSA 2048 bits or Ed25519) for selector._domainkey.domain
 * and write it as PEM (PKCS#8) to path, created with mode 0600; an existing
 * path is never overwritten (-1). Appends the DNS record to publish to txt,
 * in zone-file syntax, its text split into strings of at most 255
 * characters:
 *
 *   sel._domainkey.example.com. IN TXT ( "v=DKIM1; k=rsa; p=MIIB..."
 *   	"..." )
 *
 * Returns 0, or -1 with err (path is then not created).
 */
int dkim_keygen(const char *domain, const char *selector, enum dkim_alg alg,
    const char *path, struct buf *txt, char *err, size_t n);

#endif
