/*
 * dkim - DKIM signing with keys parsed once per configuration load. See
 * dkim.h for what it does and does not do.
 *
 * Why not libopendkim's dkim_sign(): it takes the private key as text and
 * its signing handle parses it (PEM_read_bio_PrivateKey, or
 * d2i_PrivateKey_bio for base64 DER) for every message; libopendkim 2.11
 * has no way to hand it an already parsed key. Under OpenSSL 3 that parse
 * goes through the generic decoder and costs more than the RSA-2048
 * signature (tests/bench/dkim_keyload.c). So this module does the small
 * part of RFC 6376 a signer needs (relaxed canonicalization, sections
 * 3.4.2 and 3.4.4; the hash of section 3.7) and signs with an EVP_PKEY
 * parsed when the key was added; libopendkim's verifier checks a probe
 * signature of every key as it is added, and the unit tests check every
 * signature with it.
 *
 * Signature algorithms: rsa-sha256 is RSASSA-PKCS1-v1_5 over SHA-256 of the
 * header data; ed25519-sha256 (RFC 8463) is PureEd25519 over the SHA-256
 * digest of the same data. Both algorithms use relaxed canonicalization and
 * SHA-256, so a dual signature hashes the body and the signed header fields
 * once.
 */
#include "dkim.h"
#include "dmarc.h"

/* libopendkim's own header, which "dkim.h" above shadows on -Ilib. */
#include <opendkim/dkim.h>

#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#if !defined(DKIM_SIGN_ED25519SHA256) || !defined(LEADCAST_DKIM_H)
#error "lib/dkim.h and libopendkim's <opendkim/dkim.h> are both needed"
#endif

#define DKIM_KEYFILE_MAX (64 * 1024)	/* bytes of a PEM key file */
#define DKIM_SIG_MAX	1024		/* signature bytes: RSA-8192 */
#define DKIM_RSA_MIN	1024		/* RFC 8301: less is refused */
#define DKIM_RSA_GOOD	2048		/* RFC 8301: recommended */
#define DKIM_MAXFIELDS	32		/* signed fields in a message */
#define DKIM_LINE	78		/* header line width, tab = 8 */
#define DKIM_TAB	8

/* The header fields we sign, in h= order, lowercase as written there. */
static const char *const dkim_signed[] = {
	"from", "to", "subject", "date", "message-id", "mime-version",
	"content-type", "list-unsubscribe", "list-unsubscribe-post",
};
#define DKIM_NSIGNED	(sizeof(dkim_signed) / sizeof(dkim_signed[0]))

struct dkim_key {
	char *domain;		/* lowercase */
	char *selector;
	enum dkim_alg alg;
	EVP_PKEY *pkey;		/* parsed once, then only read */
};

struct dkim_keys {
	struct dkim_key *v;
	size_t n, cap;
	EVP_MD *sha256;		/* fetched once, not per use */
};

/* A signed header field found in the message. */
struct dkim_field {
	const char *p;		/* "Name: value", without the CRLF */
	size_t len;
	size_t name;		/* index into dkim_signed */
};

struct dkim_msg {
	struct dkim_field f[DKIM_MAXFIELDS];	/* in message order */
	size_t nf;
	size_t count[DKIM_NSIGNED];
	size_t bodyoff;		/* offset of the body in the message */
};

/* The reason of the last OpenSSL error, and an empty queue afterwards (a
 * stale error would be blamed on the next OpenSSL user of this thread). */
static const char *
dkim_ssl_reason(void)
{
	unsigned long e = ERR_peek_last_error();
	const char *r = e ? ERR_reason_error_string(e) : NULL;

	ERR_clear_error();
	return r ? r : "unknown OpenSSL error";
}

const char *
dkim_alg_name(enum dkim_alg alg)
{
	switch (alg) {
	case DKIM_ALG_RSA_SHA256:
		return "rsa-sha256";
	case DKIM_ALG_ED25519_SHA256:
		return "ed25519-sha256";
	}
	return "?";
}

static int
dkim_lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

static int
dkim_is_alnum(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9');
}

/* A DNS name as RFC 6376 allows for d= and s=: dot-separated labels of
 * letters, digits and inner hyphens (IDNs in their xn-- form). */
static int
dkim_valid_name(const char *s)
{
	size_t len = strlen(s), lab = 0;

	if (len == 0 || len > 253)
		return 0;
	for (size_t i = 0; i <= len; i++) {
		if (s[i] == '.' || s[i] == '\0') {
			if (lab == 0 || s[i - 1] == '-')
				return 0;
			lab = 0;
			continue;
		}
		if (!dkim_is_alnum((unsigned char)s[i]) &&
		    (s[i] != '-' || lab == 0))
			return 0;
		if (++lab > 63)
			return 0;
	}
	return 1;
}

static int
dkim_check_names(const char *domain, const char *selector, char *err,
    size_t n)
{
	if (!dkim_valid_name(domain)) {
		errf(err, n, "invalid DKIM domain \"%s\" (letters, digits, "
		    "hyphens and dots; IDNs in xn-- form)", domain);
		return -1;
	}
	if (!dkim_valid_name(selector)) {
		errf(err, n, "invalid DKIM selector \"%s\" for %s "
		    "(letters, digits, hyphens and dots)", selector, domain);
		return -1;
	}
	if (strlen(selector) + strlen("._domainkey.") + strlen(domain) > 253) {
		errf(err, n, "DKIM selector \"%s\" makes the DNS name of "
		    "its key too long for %s", selector, domain);
		return -1;
	}
	return 0;
}

static int
dkim_b64(struct buf *b, const unsigned char *p, size_t len)
{
	size_t need = 4 * ((len + 2) / 3);
	unsigned char tmp[4 * ((DKIM_SIG_MAX + 2) / 3) + 1];
	unsigned char *out = need < sizeof(tmp) ? tmp : malloc(need + 1);
	int rc;

	if (out == NULL || len > INT32_MAX)
		rc = -1;
	else {
		EVP_EncodeBlock(out, p, (int)len);
		rc = buf_append(b, out, need);
	}
	if (out != tmp)
		free(out);
	return rc;
}

/* "v=DKIM1; k=rsa; p=..." for the public half of pkey. */
static int
dkim_record(EVP_PKEY *pkey, enum dkim_alg alg, struct buf *b)
{
	unsigned char raw[32], *der = NULL;
	size_t rawlen = sizeof(raw);
	int len, rc = -1;

	if (alg == DKIM_ALG_RSA_SHA256) {
		if ((len = i2d_PUBKEY(pkey, &der)) > 0 &&
		    buf_puts(b, "v=DKIM1; k=rsa; p=") == 0)
			rc = dkim_b64(b, der, (size_t)len);
		OPENSSL_free(der);
	} else if (EVP_PKEY_get_raw_public_key(pkey, raw, &rawlen) == 1 &&
	    buf_puts(b, "v=DKIM1; k=ed25519; p=") == 0)
		rc = dkim_b64(b, raw, rawlen);
	if (rc < 0)
		ERR_clear_error();
	return rc;
}

/* ---- message parsing and canonicalization ------------------------------ */

/* Find the header fields we sign and the start of the body. Header fields
 * are "Name: value" lines, continued by lines starting with SP or HTAB; the
 * first empty line ends them. A message without one is all header. */
static int
dkim_parse(const char *msg, size_t len, struct dkim_msg *m, char *err,
    size_t n)
{
	size_t pos = 0;

	memset(m, 0, sizeof(*m));
	m->bodyoff = len;
	while (pos < len) {
		size_t start = pos, end, colon = 0, nl;

		if (msg[pos] == '\r' && pos + 1 < len && msg[pos + 1] == '\n') {
			m->bodyoff = pos + 2;
			break;
		}
		if (msg[pos] == ' ' || msg[pos] == '\t') {
			errf(err, n, "message: continuation line without "
			    "a header field at byte %zu", pos);
			return -1;
		}
		for (end = pos; end < len; end++) {
			char c = msg[end];

			if (c == '\r' && end + 1 < len &&
			    msg[end + 1] == '\n') {
				if (end + 2 < len && (msg[end + 2] == ' ' ||
				    msg[end + 2] == '\t')) {
					end += 2;
					continue;
				}
				break;
			}
			if (c == '\r' || c == '\n' || c == '\0') {
				errf(err, n, "message: %s in the header at "
				    "byte %zu (lines must end in CRLF)",
				    c == '\0' ? "NUL" : c == '\r' ? "bare CR" :
				    "bare LF", end);
				return -1;
			}
			if (c == ':' && colon == 0)
				colon = end;
		}
		/* RFC 5322 field names: printable ASCII right up to the
		 * colon. Its obsolete syntax (WSP before the colon) is
		 * refused: libopendkim, thus OpenDKIM verifiers, fail it. */
		for (nl = start; nl < colon; nl++)
			if ((unsigned char)msg[nl] < 33 ||
			    (unsigned char)msg[nl] > 126)
				break;
		if (colon == 0 || nl != colon || nl == start) {
			errf(err, n, "message: malformed header field at "
			    "byte %zu (not \"Name: value\")", start);
			return -1;
		}
		for (size_t i = 0; i < DKIM_NSIGNED; i++) {
			if (strlen(dkim_signed[i]) != nl - start ||
			    strncasecmp(dkim_signed[i], msg + start,
			    nl - start) != 0)
				continue;
			if (m->nf == DKIM_MAXFIELDS) {
				errf(err, n, "message: more than %d From, "
				    "To, Subject, ... header fields",
				    DKIM_MAXFIELDS);
				return -1;
			}
			m->f[m->nf].p = msg + start;
			m->f[m->nf].len = end - start;
			m->f[m->nf].name = i;
			m->nf++;
			m->count[i]++;
			break;
		}
		pos = end < len ? end + 2 : len;
	}
	if (m->count[0] == 0) {
		errf(err, n, "message: no From: header field");
		return -1;
	}
	if (m->count[0] > 1) {
		errf(err, n, "message: %zu From: header fields (RFC 5322 "
		    "allows one)", m->count[0]);
		return -1;
	}
	return 0;
}

/* Relaxed header canonicalization (RFC 6376 3.4.2) of one field, "Name:
 * value" with its folds, without the final CRLF: name lowercased, folds
 * unfolded, WSP runs made one SP, WSP after the colon and at the end
 * removed (dkim_parse() refused WSP before the colon). */
static void
dkim_canon_header(struct buf *b, const char *f, size_t len)
{
	const char *colon = memchr(f, ':', len), *end = f + len;
	int ws = 0, started = 0;

	for (size_t i = 0; i < (size_t)(colon - f); i++)
		buf_putc(b, (char)dkim_lower((unsigned char)f[i]));
	buf_putc(b, ':');
	for (const char *p = colon + 1; p < end; p++) {
		if (*p == '\r' || *p == '\n')
			continue;
		if (*p == ' ' || *p == '\t') {
			ws = 1;
			continue;
		}
		if (ws && started)
			buf_putc(b, ' ');
		buf_putc(b, *p);
		ws = 0;
		started = 1;
	}
}

/* Append line s (n bytes, no CRLF, not only WSP) canonicalized to b:
 * each WSP run one SP, none at the end. */
static void
dkim_canon_line(struct buf *b, const char *s, size_t n)
{
	int ws = 0;

	for (size_t i = 0; i < n; i++) {
		if (s[i] == ' ' || s[i] == '\t') {
			ws = 1;
			continue;
		}
		if (ws)
			buf_putc(b, ' ');
		ws = 0;
		buf_putc(b, s[i]);
	}
}

/* Offset of the first two spaces in a row in s (n bytes), n if none.
 * Eight bytes at a time: a byte is a space where its bit 7 is set in t
 * (exact, no carries between bytes), two in a row where t and t shifted
 * by a byte share a bit; the place is then found byte by byte. */
static size_t
dkim_two_spaces(const char *s, size_t n)
{
	const uint64_t low7 = 0x7f7f7f7f7f7f7f7fULL;
	size_t i = 0;

	for (; i + 8 <= n; i += 8) {
		uint64_t x, t;

		memcpy(&x, s + i, 8);
		x ^= 0x2020202020202020ULL;
		t = ~(((x & low7) + low7) | x | low7);
		if ((t & (t >> 8)) || (i + 8 < n && s[i + 7] == ' ' &&
		    s[i + 8] == ' '))
			break;
	}
	for (; i + 1 < n; i++)
		if (s[i] == ' ' && s[i + 1] == ' ')
			return i;
	return n;
}

/*
 * SHA-256 of the relaxed canonical body (RFC 6376 3.4.4): WSP runs become
 * one SP, WSP at line ends goes, empty lines at the end go, a last line
 * without CRLF gets one; an empty body stays empty. A line that is
 * already canonical (no tab, no two spaces in a row, no space before its
 * CRLF: nearly every line of a MIME-encoded body) is hashed in place,
 * with its neighbours, in one run; only the others are rewritten.
 */
static int
dkim_body_hash(const EVP_MD *sha256, const char *msg, size_t len,
    size_t off, unsigned char dig[32], char *err, size_t n)
{
	const char *t = memchr(msg + off, '\t', len - off);
	size_t region = off, done = off, empty = 0, i = off;
	/* where the next tab and the next two spaces are, at or after i
	 * (len: none); found again only once i has passed them */
	size_t tab = t ? (size_t)(t - msg) : len;
	size_t twosp = off + dkim_two_spaces(msg + off, len - off);
	struct buf line = BUF_INIT;
	EVP_MD_CTX *md;
	int ok, rc = -1;

	if ((md = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestInit_ex2(md, sha256, NULL) != 1) {
		errf(err, n, "SHA-256: %s", dkim_ssl_reason());
		goto out;
	}
	ok = 1;
	while (i < len) {
		const char *nl = memchr(msg + i, '\n', len - i), *cr;
		size_t k = nl ? (size_t)(nl - msg) : len, le, next, j;
		int clean;

		/* the line is msg[i, le), its CRLF (if any) up to next */
		cr = memchr(msg + i, '\r', k - i);
		if (cr && (!nl || cr != nl - 1)) {
			errf(err, n, "message: bare CR in the body at byte %zu "
			    "(lines must end in CRLF)", (size_t)(cr - msg));
			goto out;
		}
		if (nl && !cr) {
			errf(err, n, "message: bare LF in the body at byte %zu "
			    "(lines must end in CRLF)", k);
			goto out;
		}
		le = nl ? k - 1 : len;
		next = nl ? k + 1 : len;
		for (j = i; j < le && (msg[j] == ' ' || msg[j] == '\t'); j++)
			;
		if (j == le) {          /* empty once canonical: kept only if
					 * a line with text follows */
			empty++;
			i = next;
			continue;
		}
		if (tab < i) {
			t = memchr(msg + i, '\t', len - i);
			tab = t ? (size_t)(t - msg) : len;
		}
		if (twosp < i)
			twosp = i + dkim_two_spaces(msg + i, len - i);
		clean = nl && msg[le - 1] != ' ' && tab >= le && twosp >= le;
		if (clean && i - done == 2 * empty) {
			done = next;    /* the run goes on over it */
			empty = 0;
			i = next;
			continue;
		}
		ok &= EVP_DigestUpdate(md, msg + region, done - region) == 1;
		for (; empty > 0; empty--)
			ok &= EVP_DigestUpdate(md, "\r\n", 2) == 1;
		if (clean) {
			region = i;
			done = next;
		} else {
			buf_reset(&line);
			dkim_canon_line(&line, msg + i, le - i);
			buf_append(&line, "\r\n", 2);
			if (line.overflow) {
				errf(err, n, "out of memory");
				goto out;
			}
			ok &= EVP_DigestUpdate(md, line.data, line.len) == 1;
			region = done = next;
		}
		i = next;
	}
	ok &= EVP_DigestUpdate(md, msg + region, done - region) == 1;
	if (!ok || EVP_DigestFinal_ex(md, dig, NULL) != 1) {
		errf(err, n, "SHA-256: %s", dkim_ssl_reason());
		goto out;
	}
	rc = 0;
out:
	EVP_MD_CTX_free(md);
	buf_free(&line);
	return rc;
}

/* ---- the DKIM-Signature field ------------------------------------------ */

/* A header field being built, folded before a token that would not fit. */
struct dkim_hdr {
	struct buf *b;
	size_t col;
};

static void
dkim_hdr_tok(struct dkim_hdr *h, const char *tok, int space, size_t keep)
{
	size_t len = strlen(tok);

	if (h->col + (space ? 1 : 0) + len + keep > DKIM_LINE &&
	    h->col > DKIM_TAB) {
		buf_puts(h->b, "\r\n\t");
		h->col = DKIM_TAB;
	} else if (space) {
		buf_putc(h->b, ' ');
		h->col++;
	}
	buf_puts(h->b, tok);
	h->col += len;
}

/*
 * The RSA signing context of the key this thread signed with last. Making
 * one (the provider's lookup, the padding and digest parameters) costs
 * 5-10 us of a 260 us signature, so a worker keeps its context and signs
 * with it again while the key is the same. The context holds a reference
 * to its key, so an EVP_PKEY at the same address is the same key; a
 * reload's new keys get new contexts, and the old key is released with
 * its context. The context is freed when its thread ends.
 */
static pthread_key_t rsa_ctx_key;
static pthread_once_t rsa_ctx_once = PTHREAD_ONCE_INIT;

static void
rsa_ctx_free(void *pc)
{
	EVP_PKEY_CTX_free(pc);
}

static void
rsa_ctx_init(void)
{
	(void)pthread_key_create(&rsa_ctx_key, rsa_ctx_free);
}

static EVP_PKEY_CTX *
rsa_context(const EVP_MD *sha256, EVP_PKEY *pkey)
{
	EVP_PKEY_CTX *pc;

	(void)pthread_once(&rsa_ctx_once, rsa_ctx_init);
	pc = pthread_getspecific(rsa_ctx_key);
	if (pc && EVP_PKEY_CTX_get0_pkey(pc) == pkey)
		return pc;
	EVP_PKEY_CTX_free(pc);
	(void)pthread_setspecific(rsa_ctx_key, NULL);
	pc = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
	if (!pc || EVP_PKEY_sign_init(pc) != 1 ||
	    EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PADDING) != 1 ||
	    EVP_PKEY_CTX_set_signature_md(pc, sha256) != 1) {
		EVP_PKEY_CTX_free(pc);
		return NULL;
	}
	(void)pthread_setspecific(rsa_ctx_key, pc);
	return pc;
}

static int
dkim_sign_digest(const EVP_MD *sha256, const struct dkim_key *key,
    const unsigned char dig[32], unsigned char *sig, size_t *siglen)
{
	int ok;

	if (key->alg == DKIM_ALG_RSA_SHA256) {
		EVP_PKEY_CTX *pc = rsa_context(sha256, key->pkey);

		ok = pc != NULL && EVP_PKEY_sign(pc, sig, siglen, dig, 32) == 1;
	} else {
		EVP_MD_CTX *mc = EVP_MD_CTX_new();

		ok = mc != NULL && EVP_DigestSignInit_ex(mc, NULL, NULL, NULL,
		    NULL, key->pkey, NULL) == 1 &&
		    EVP_DigestSign(mc, sig, siglen, dig, 32) == 1;
		EVP_MD_CTX_free(mc);
	}
	return ok ? 0 : -1;
}

/*
 * Sign msg with each of keys[0..nkeys), appending the DKIM-Signature
 * fields to out (restored on failure).
 */
static int
dkim_sign_with(const EVP_MD *sha256, const struct dkim_key *const *keys,
    size_t nkeys, const char *msg, size_t len, time_t now, struct buf *out,
    char *err, size_t n)
{
	struct dkim_msg msgi, *m = &msgi;
	struct buf hdrs = BUF_INIT, field = BUF_INIT, canon = BUF_INIT;
	unsigned char bh[32], dig[32], sig[DKIM_SIG_MAX];
	char bh64[45], tok[300];
	size_t outlen = out->len;
	int outov = out->overflow, rc = -1;
	EVP_MD_CTX *mc = NULL;

	if (dkim_parse(msg, len, m, err, n) < 0 ||
	    dkim_body_hash(sha256, msg, len, m->bodyoff, bh, err, n) < 0)
		goto out;
	EVP_EncodeBlock((unsigned char *)bh64, bh, 32);

	/* The signed fields, canonical, each name's instances bottom-up
	 * (RFC 6376 5.4.2): the data every signature of msg shares. */
	for (size_t i = 0; i < DKIM_NSIGNED; i++) {
		for (size_t j = m->nf; j-- > 0;) {
			if (m->f[j].name != i)
				continue;
			dkim_canon_header(&hdrs, m->f[j].p, m->f[j].len);
			buf_puts(&hdrs, "\r\n");
		}
	}
	if ((mc = EVP_MD_CTX_new()) == NULL)
		goto ssl;

	for (size_t k = 0; k < nkeys; k++) {
		const struct dkim_key *key = keys[k];
		struct dkim_hdr h = { &field, 0 };
		size_t siglen = sizeof(sig), hashed, last = 0;
		char sig64[4 * ((DKIM_SIG_MAX + 2) / 3) + 1];
		int first = 1;

		buf_reset(&field);
		buf_reset(&canon);
		dkim_hdr_tok(&h, "DKIM-Signature:", 0, 0);
		dkim_hdr_tok(&h, "v=1;", 1, 0);
		snprintf(tok, sizeof(tok), "a=%s;", dkim_alg_name(key->alg));
		dkim_hdr_tok(&h, tok, 1, 0);
		dkim_hdr_tok(&h, "c=relaxed/relaxed;", 1, 0);
		snprintf(tok, sizeof(tok), "d=%s;", key->domain);
		dkim_hdr_tok(&h, tok, 1, 0);
		snprintf(tok, sizeof(tok), "s=%s;", key->selector);
		dkim_hdr_tok(&h, tok, 1, 0);
		snprintf(tok, sizeof(tok), "t=%lld;", (long long)now);
		dkim_hdr_tok(&h, tok, 1, 0);
		/* Each present name once more than it occurs: oversigned. */
		for (size_t i = 0; i < DKIM_NSIGNED; i++)
			if (m->count[i])
				last = i;
		for (size_t i = 0; i < DKIM_NSIGNED; i++) {
			for (size_t j = 0; m->count[i] && j <= m->count[i];
			    j++) {
				snprintf(tok, sizeof(tok), "%s%s%c",
				    first ? "h=" : "", dkim_signed[i],
				    i == last && j == m->count[i] ? ';' : ':');
				dkim_hdr_tok(&h, tok, first, 0);
				first = 0;
			}
		}
		snprintf(tok, sizeof(tok), "bh=%s;", bh64);
		dkim_hdr_tok(&h, tok, 1, 0);
		/* Some of the signature on the b= line, not b= alone. */
		dkim_hdr_tok(&h, "b=", 1, 16);
		hashed = field.len;

		/* The hash: signed fields, then this field with b= empty,
		 * canonical, without its CRLF (RFC 6376 3.7). */
		dkim_canon_header(&canon, field.data, hashed);
		if (hdrs.overflow || field.overflow || canon.overflow)
			goto nomem;
		if (EVP_DigestInit_ex2(mc, sha256, NULL) != 1 ||
		    EVP_DigestUpdate(mc, hdrs.data ? hdrs.data : "",
		    hdrs.len) != 1 ||
		    EVP_DigestUpdate(mc, canon.data, canon.len) != 1 ||
		    EVP_DigestFinal_ex(mc, dig, NULL) != 1)
			goto ssl;
		if (dkim_sign_digest(sha256, key, dig, sig, &siglen) < 0) {
			errf(err, n, "%s signature for %s (selector %s): "
			    "%s", dkim_alg_name(key->alg), key->domain,
			    key->selector, dkim_ssl_reason());
			goto out;
		}
		EVP_EncodeBlock((unsigned char *)sig64, sig, (int)siglen);
		for (size_t i = 0, slen = strlen(sig64); i < slen;) {
			size_t room = h.col < DKIM_LINE ? DKIM_LINE - h.col : 0;

			if (room == 0) {
				buf_puts(&field, "\r\n\t");
				h.col = DKIM_TAB;
				continue;
			}
			if (room > slen - i)
				room = slen - i;
			buf_append(&field, sig64 + i, room);
			h.col += room;
			i += room;
		}
		buf_puts(&field, "\r\n");
		if (field.overflow || buf_append(out, field.data,
		    field.len) < 0)
			goto nomem;
	}
	rc = 0;
	goto out;
ssl:
	errf(err, n, "SHA-256: %s", dkim_ssl_reason());
	goto out;
nomem:
	errf(err, n, "signing: out of memory%s", out->overflow ?
	    " or past the size limit of the output buffer" : "");
out:
	if (rc < 0 && out->data != NULL) {
		out->len = outlen;
		out->data[outlen] = '\0';
		out->overflow = outov;
	}
	EVP_MD_CTX_free(mc);
	buf_free(&hdrs);
	buf_free(&field);
	buf_free(&canon);
	return rc;
}

int
dkim_keys_sign(const struct dkim_keys *k, const char *domain,
    const char *msg, size_t len, struct buf *out, char *err, size_t n)
{
	const struct dkim_key *use[2] = { NULL, NULL };
	size_t nuse = 0;

	for (size_t i = 0; i < k->n; i++) {
		if (strcasecmp(k->v[i].domain, domain) != 0)
			continue;
		/* rsa-sha256 first: the topmost signature is the one a
		 * verifier without Ed25519 support sees first. */
		use[k->v[i].alg == DKIM_ALG_RSA_SHA256 ? 0 : 1] = &k->v[i];
	}
	if (use[0] == NULL && use[1] == NULL)
		return 1;
	nuse = use[0] && use[1] ? 2 : 1;
	return dkim_sign_with(k->sha256, use[0] ? use : use + 1, nuse, msg,
	    len, time(NULL), out, err, n);
}

/* ---- keys -------------------------------------------------------------- */

struct dkim_keys *
dkim_keys_new(void)
{
	struct dkim_keys *k = calloc(1, sizeof(*k));

	if (k == NULL)
		return NULL;
	if ((k->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL)) == NULL) {
		ERR_clear_error();
		free(k);
		return NULL;
	}
	return k;
}

void
dkim_keys_free(struct dkim_keys *k)
{
	if (k == NULL)
		return;
	for (size_t i = 0; i < k->n; i++) {
		free(k->v[i].domain);
		free(k->v[i].selector);
		EVP_PKEY_free(k->v[i].pkey);
	}
	free(k->v);
	EVP_MD_free(k->sha256);
	free(k);
}

size_t
dkim_keys_count(const struct dkim_keys *k)
{
	return k->n;
}

/* Refuse to prompt on the terminal for the passphrase of a key. */
static int
dkim_nopass(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;
}

static void
dkim_warn(char *err, size_t n, int *warned, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Append a warning to err, "; "-separated. */
static void
dkim_warn(char *err, size_t n, int *warned, const char *fmt, ...)
{
	size_t used;
	va_list ap;

	if (err == NULL || n == 0)
		return;
	if (!*warned)
		err[0] = '\0';
	used = strlen(err);
	if (*warned && used + 2 < n) {
		memcpy(err + used, "; ", 3);
		used += 2;
	}
	*warned = 1;
	va_start(ap, fmt);
	vsnprintf(err + used, n - used, fmt, ap);
	va_end(ap);
}

/* Read and parse the PEM private key in path, checking the file's mode
 * and the key's type and size. */
static EVP_PKEY *
dkim_load(const char *path, enum dkim_alg alg, int *warned, char *err,
    size_t n)
{
	struct stat st;
	EVP_PKEY *pkey = NULL;
	BIO *bio = NULL;
	char *text = NULL;
	size_t len = 0;
	ssize_t r;
	int fd, bits;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		errf(err, n, "%s: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) < 0) {
		errf(err, n, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		errf(err, n, "%s: not a regular file", path);
		goto out;
	}
	if (st.st_mode & (S_IROTH | S_IWOTH | S_IXOTH | S_IWGRP)) {
		errf(err, n, "%s: private key is %s by others (mode %04o); "
		    "chmod 600 it", path, st.st_mode & (S_IROTH | S_IWOTH) ?
		    "accessible" : "writable", (unsigned)(st.st_mode & 07777));
		goto out;
	}
	if ((text = malloc(DKIM_KEYFILE_MAX + 1)) == NULL) {
		errf(err, n, "%s: out of memory", path);
		goto out;
	}
	while (len <= DKIM_KEYFILE_MAX && (r = read(fd, text + len,
	    DKIM_KEYFILE_MAX + 1 - len)) != 0) {
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			errf(err, n, "%s: %s", path, strerror(errno));
			goto out;
		}
		len += (size_t)r;
	}
	if (len > DKIM_KEYFILE_MAX) {
		errf(err, n, "%s: larger than %d bytes: not a key file",
		    path, DKIM_KEYFILE_MAX);
		goto out;
	}
	text[len] = '\0';
	if ((bio = BIO_new_mem_buf(text, (int)len)) == NULL) {
		errf(err, n, "%s: %s", path, dkim_ssl_reason());
		goto out;
	}
	pkey = PEM_read_bio_PrivateKey(bio, NULL, dkim_nopass, NULL);
	if (pkey == NULL) {
		const char *why = dkim_ssl_reason();

		if (strstr(text, "ENCRYPTED") != NULL)
			errf(err, n, "%s: private key is encrypted; "
			    "leadcast needs it unencrypted (mode 0600)", path);
		else if (strstr(text, "-----BEGIN PUBLIC KEY-----") != NULL)
			errf(err, n, "%s: holds a public key, not the "
			    "private key", path);
		else
			errf(err, n, "%s: not a PEM private key (%s)",
			    path, why);
		goto out;
	}
	if (alg == DKIM_ALG_RSA_SHA256 ? !EVP_PKEY_is_a(pkey, "RSA") :
	    !EVP_PKEY_is_a(pkey, "ED25519")) {
		const char *t = EVP_PKEY_get0_type_name(pkey);

		errf(err, n, "%s: holds a%s %s key, not the %s key %s "
		    "needs", path, t && strchr("AEIOU", t[0]) ? "n" : "",
		    t ? t : "unknown", alg == DKIM_ALG_RSA_SHA256 ? "RSA" :
		    "Ed25519", dkim_alg_name(alg));
		goto bad;
	}
	if (EVP_PKEY_get_size(pkey) > DKIM_SIG_MAX) {
		errf(err, n, "%s: key too large (%d bits)", path,
		    EVP_PKEY_get_bits(pkey));
		goto bad;
	}
	bits = EVP_PKEY_get_bits(pkey);
	if (alg == DKIM_ALG_RSA_SHA256 && bits < DKIM_RSA_MIN) {
		errf(err, n, "%s: RSA key has %d bits; verifiers reject "
		    "keys under %d (RFC 8301): use 2048", path, bits,
		    DKIM_RSA_MIN);
		goto bad;
	}
	if (st.st_mode & S_IRGRP)
		dkim_warn(err, n, warned, "%s: private key is readable by its "
		    "group (mode %04o)", path, (unsigned)(st.st_mode & 07777));
	if (alg == DKIM_ALG_RSA_SHA256 && bits < DKIM_RSA_GOOD)
		dkim_warn(err, n, warned, "%s: RSA key has %d bits; %d are "
		    "recommended (RFC 8301)", path, bits, DKIM_RSA_GOOD);
	goto out;
bad:
	EVP_PKEY_free(pkey);
	pkey = NULL;
out:
	if (text != NULL) {
		OPENSSL_cleanse(text, len);
		free(text);
	}
	BIO_free(bio);
	close(fd);
	return pkey;
}

/* Give the libopendkim verifier the key record of the self-test. */
static DKIM_CBSTAT
dkim_selftest_key(DKIM *d, DKIM_SIGINFO *sig, unsigned char *buf,
    size_t buflen)
{
	const char *rec = dkim_get_user_context(d);

	(void)sig;
	if (rec == NULL || strlen(rec) >= buflen)
		return DKIM_CBSTAT_ERROR;
	memcpy(buf, rec, strlen(rec) + 1);
	return DKIM_CBSTAT_CONTINUE;
}

/*
 * Sign a probe message with key and verify it with libopendkim against
 * the key's public record: catches a key that cannot sign and any
 * disagreement between our canonicalization and the reference's.
 */
static int
dkim_selftest(const EVP_MD *sha256, const struct dkim_key *key,
    const char *path, char *err, size_t n)
{
	struct buf probe = BUF_INIT, msg = BUF_INIT, rec = BUF_INIT;
	const char *d = key->domain;
	char why[256] = "out of memory";
	DKIM_LIB *lib = NULL;
	DKIM *v = NULL;
	DKIM_SIGINFO *si;
	DKIM_STAT st = DKIM_STAT_INTERNAL;
	int rc = -1;

	/* Folds, WSP runs, trailing WSP, unsigned fields, trailing empty
	 * lines: what relaxed canonicalization is about. */
	buf_printf(&probe, "From: Leadcast <probe@%s>\r\nTo: probe@%s\r\n"
	    "Subject:  DKIM\r\n\tself-test \r\nDate: Thu, 1 Jan 2026 "
	    "00:00:00 +0000\r\nMessage-ID: <probe@%s>\r\nMIME-Version: "
	    "1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
	    "List-Unsubscribe: <https://%s/u/x>\r\nList-Unsubscribe-Post: "
	    "List-Unsubscribe=One-Click\r\nX-Unsigned: x\r\n\r\n"
	    "Dear  lead,\t \r\n \r\nthis probe is never sent.  \r\n\r\n",
	    d, d, d, d);
	if (probe.overflow)
		goto out;
	if (dkim_sign_with(sha256, &key, 1, probe.data, probe.len, time(NULL),
	    &msg, why, sizeof(why)) < 0)
		goto out;
	if (buf_append(&msg, probe.data, probe.len) < 0 ||
	    dkim_record(key->pkey, key->alg, &rec) < 0 || rec.overflow)
		goto out;
	if ((lib = dkim_init(NULL, NULL)) == NULL ||
	    dkim_set_key_lookup(lib, dkim_selftest_key) != DKIM_STAT_OK ||
	    (v = dkim_verify(lib, (const unsigned char *)"dkim-selftest", NULL,
	    &st)) == NULL ||
	    dkim_set_user_context(v, rec.data) != DKIM_STAT_OK) {
		snprintf(why, sizeof(why), "libopendkim: %s",
		    dkim_getresultstr(st));
		goto out;
	}
	if ((st = dkim_chunk(v, (unsigned char *)msg.data, msg.len)) ==
	    DKIM_STAT_OK && (st = dkim_chunk(v, NULL, 0)) == DKIM_STAT_OK)
		st = dkim_eom(v, NULL);
	si = dkim_getsignature(v);
	if (st == DKIM_STAT_OK && si != NULL &&
	    (dkim_sig_getflags(si) & DKIM_SIGFLAG_PASSED) &&
	    dkim_sig_getbh(si) == DKIM_SIGBH_MATCH)
		rc = 0;
	else
		snprintf(why, sizeof(why), "libopendkim: %s%s%s",
		    dkim_getresultstr(st), si ? ", " : "",
		    si ? dkim_sig_geterrorstr(dkim_sig_geterror(si)) : "");
out:
	if (rc < 0)
		errf(err, n, "%s: self-test of the %s key for %s failed: "
		    "%s", path, dkim_alg_name(key->alg), d, why);
	if (v != NULL)
		dkim_free(v);
	if (lib != NULL)
		dkim_close(lib);
	buf_free(&probe);
	buf_free(&msg);
	buf_free(&rec);
	ERR_clear_error();
	return rc;
}

int
dkim_keys_add(struct dkim_keys *k, const char *domain, const char *selector,
    enum dkim_alg alg, const char *key_file, char *err, size_t n)
{
	struct dkim_key key = { NULL, NULL, alg, NULL };
	int warned = 0;

	if (alg != DKIM_ALG_RSA_SHA256 && alg != DKIM_ALG_ED25519_SHA256) {
		errf(err, n, "%s: unknown DKIM algorithm %d", key_file,
		    (int)alg);
		return -1;
	}
	if (dkim_check_names(domain, selector, err, n) < 0)
		return -1;
	for (size_t i = 0; i < k->n; i++) {
		if (strcasecmp(k->v[i].domain, domain) != 0)
			continue;
		if (k->v[i].alg == alg) {
			errf(err, n, "%s: %s already has an %s key "
			    "(selector %s)", key_file, domain,
			    dkim_alg_name(alg), k->v[i].selector);
			return -1;
		}
		if (strcasecmp(k->v[i].selector, selector) == 0) {
			errf(err, n, "%s: selector %s of %s already names "
			    "its %s key: each key needs its own selector",
			    key_file, selector, domain,
			    dkim_alg_name(k->v[i].alg));
			return -1;
		}
	}
	if (k->n == k->cap) {
		size_t ncap = k->cap ? 2 * k->cap : 8;
		struct dkim_key *nv = realloc(k->v, ncap * sizeof(*nv));

		if (nv == NULL) {
			errf(err, n, "%s: out of memory", key_file);
			return -1;
		}
		k->v = nv;
		k->cap = ncap;
	}
	if ((key.pkey = dkim_load(key_file, alg, &warned, err, n)) == NULL)
		return -1;
	if ((key.domain = strdup(domain)) == NULL ||
	    (key.selector = strdup(selector)) == NULL) {
		errf(err, n, "%s: out of memory", key_file);
		goto fail;
	}
	for (char *p = key.domain; *p; p++)
		*p = (char)dkim_lower((unsigned char)*p);
	if (dkim_selftest(k->sha256, &key, key_file, err, n) < 0)
		goto fail;
	k->v[k->n++] = key;
	return warned ? 1 : 0;
fail:
	EVP_PKEY_free(key.pkey);
	free(key.domain);
	free(key.selector);
	return -1;
}

/* ---- published key records ---------------------------------------------- */

size_t
dkim_keys_selectors(const struct dkim_keys *k, const char *domain,
    const char **sel, enum dkim_alg *alg, size_t max)
{
	size_t cnt = 0;

	for (size_t i = 0; i < k->n; i++) {
		if (strcasecmp(k->v[i].domain, domain) != 0)
			continue;
		if (cnt < max) {
			sel[cnt] = k->v[i].selector;
			alg[cnt] = k->v[i].alg;
		}
		cnt++;
	}
	return cnt;
}

/* The published p= value (base64 with folding white space) decoded into a
 * public key of alg. NULL with err. */
static EVP_PKEY *
dkim_pub_decode(const char *p, enum dkim_alg alg, char *err, size_t n)
{
	size_t len = strlen(p), k = 0, pad = 0;
	unsigned char *b64, *der = NULL;
	const unsigned char *q;
	EVP_PKEY *pkey = NULL;
	int dlen;

	if (len > 16384) {
		errf(err, n, "p= is %zu characters long", len);
		return NULL;
	}
	if (!(b64 = malloc(len + 1)) || !(der = malloc(len + 1))) {
		free(b64);
		errf(err, n, "out of memory");
		return NULL;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
			continue;
		if (!dkim_is_alnum(c) && c != '+' && c != '/' && c != '=') {
			errf(err, n, "p= holds '%c', which is not base64", c);
			goto out;
		}
		b64[k++] = c;
	}
	b64[k] = '\0';
	while (pad < k && pad < 2 && b64[k - 1 - pad] == '=')
		pad++;
	if (k % 4 != 0 || (dlen = EVP_DecodeBlock(der, b64, (int)k)) < 0) {
		errf(err, n, "p= is not valid base64");
		goto out;
	}
	dlen -= (int)pad;
	q = der;
	if (alg == DKIM_ALG_ED25519_SHA256) {
		if (dlen != 32)
			errf(err, n, "p= holds %d bytes, an Ed25519 key is 32",
			    dlen);
		else
			pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL,
			    der, 32);
	} else if (!(pkey = d2i_PUBKEY(NULL, &q, dlen))) {
		/* some publish the bare RSAPublicKey (PKCS#1) */
		q = der;
		pkey = d2i_PublicKey(EVP_PKEY_RSA, NULL, &q, dlen);
	}
	if (pkey && alg == DKIM_ALG_RSA_SHA256 &&
	    EVP_PKEY_get_base_id(pkey) != EVP_PKEY_RSA) {
		EVP_PKEY_free(pkey);
		pkey = NULL;
		errf(err, n, "p= is not an RSA key, and k= says rsa");
	} else if (!pkey && !(err && *err)) {
		errf(err, n, "p= does not hold an %s public key",
		    alg == DKIM_ALG_RSA_SHA256 ? "RSA" : "Ed25519");
	}
out:
	ERR_clear_error();
	free(b64);
	free(der);
	return pkey;
}

int
dkim_keys_check_record(const struct dkim_keys *k, const char *domain,
    const char *selector, const char *txt, struct dkim_pubkey *info,
    struct buf *want, char *err, size_t n)
{
	struct dmarc_tags t;
	const char *v;
	EVP_PKEY *pub = NULL;
	int rc = -1;
	const struct dkim_key *mine = NULL;

	memset(info, 0, sizeof(*info));
	info->alg = DKIM_ALG_RSA_SHA256;
	if (err && n)
		err[0] = '\0';
	for (size_t i = 0; i < k->n && !mine; i++)
		if (strcasecmp(k->v[i].domain, domain) == 0 &&
		    strcasecmp(k->v[i].selector, selector) == 0)
			mine = &k->v[i];
	if (mine && want && dkim_record(mine->pkey, mine->alg, want) < 0) {
		errf(err, n, "out of memory");
		return -1;
	}
	if (dmarc_tags_parse(txt, &t, err, n) < 0)
		return -1;
	if ((v = dmarc_tags_get(&t, "v")) && (strcmp(t.v[0].name, "v") != 0 ||
	    strcmp(v, "DKIM1") != 0)) {
		errf(err, n, "v= must be the first tag and say DKIM1");
		goto out;
	}
	if ((v = dmarc_tags_get(&t, "k"))) {
		if (strcasecmp(v, "ed25519") == 0)
			info->alg = DKIM_ALG_ED25519_SHA256;
		else if (strcasecmp(v, "rsa") != 0) {
			errf(err, n, "k=%.40s: unknown key type (rsa or "
			    "ed25519)", v);
			goto out;
		}
	}
	if ((v = dmarc_tags_get(&t, "h")) && !strstr(v, "sha256")) {
		errf(err, n, "h=%.40s: the key is not for sha256 signatures",
		    v);
		goto out;
	}
	if ((v = dmarc_tags_get(&t, "t")))
		for (const char *s = v; *s; s++)
			if ((*s == 'y' || *s == 'Y') && (s == v || s[-1] == ':' ||
			    s[-1] == ' ') && (!s[1] || s[1] == ':' || s[1] == ' '))
				info->testing = 1;
	if (!(v = dmarc_tags_get(&t, "p"))) {
		errf(err, n, "no p= tag (the public key)");
		goto out;
	}
	if (!*v) {
		errf(err, n, "the key is revoked (p= is empty)");
		goto out;
	}
	if (!(pub = dkim_pub_decode(v, info->alg, err, n)))
		goto out;
	info->bits = info->alg == DKIM_ALG_ED25519_SHA256 ? 256 :
	    EVP_PKEY_get_bits(pub);
	if (info->alg == DKIM_ALG_RSA_SHA256 && info->bits < DKIM_RSA_MIN) {
		errf(err, n, "an RSA key of %d bits: verifiers refuse keys "
		    "under %d bits (RFC 8301)", info->bits, DKIM_RSA_MIN);
		goto out;
	}
	rc = mine ? (mine->alg == info->alg && EVP_PKEY_eq(pub, mine->pkey) ==
	    1 ? DKIM_PUB_MATCH : DKIM_PUB_MISMATCH) : DKIM_PUB_UNCONFIGURED;
out:
	ERR_clear_error();
	EVP_PKEY_free(pub);
	dmarc_tags_free(&t);
	return rc;
}

/* ---- key generation ---------------------------------------------------- */

static int
dkim_write_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t w = write(fd, p, len);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

int
dkim_keygen(const char *domain, const char *selector, enum dkim_alg alg,
    const char *path, struct buf *txt, char *err, size_t n)
{
	struct buf rec = BUF_INIT, zone = BUF_INIT;
	EVP_PKEY *pkey = NULL;
	BIO *mem = NULL;
	char *pem = NULL;
	long pemlen = 0;
	int fd, rc = -1;

	if (alg != DKIM_ALG_RSA_SHA256 && alg != DKIM_ALG_ED25519_SHA256) {
		errf(err, n, "unknown DKIM algorithm %d", (int)alg);
		return -1;
	}
	if (dkim_check_names(domain, selector, err, n) < 0)
		return -1;
	/* O_EXCL: never overwrite a key (nor follow a planted symlink). */
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC |
	    O_NOCTTY, 0600);
	if (fd < 0) {
		if (errno == EEXIST)
			errf(err, n, "%s: already exists; not overwriting "
			    "a key (choose a new selector and file)", path);
		else
			errf(err, n, "%s: %s", path, strerror(errno));
		return -1;
	}
	pkey = alg == DKIM_ALG_RSA_SHA256 ?
	    EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048) :
	    EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	if (pkey == NULL || (mem = BIO_new(BIO_s_mem())) == NULL ||
	    PEM_write_bio_PrivateKey(mem, pkey, NULL, NULL, 0, NULL,
	    NULL) != 1 || (pemlen = BIO_get_mem_data(mem, &pem)) <= 0) {
		errf(err, n, "%s: generating the key: %s", path,
		    dkim_ssl_reason());
		goto out;
	}
	if (dkim_record(pkey, alg, &rec) < 0 || rec.overflow) {
		errf(err, n, "%s: encoding the public key failed", path);
		goto out;
	}
	buf_printf(&zone, "%s._domainkey.%s. IN TXT (", selector, domain);
	for (size_t i = 0; i < rec.len; i += 255) {
		size_t len = rec.len - i < 255 ? rec.len - i : 255;

		buf_printf(&zone, "%s\"%.*s\"", i ? "\n\t" : " ", (int)len,
		    rec.data + i);
	}
	buf_puts(&zone, " )\n");
	if (zone.overflow) {
		errf(err, n, "%s: out of memory", path);
		goto out;
	}
	/* Exactly 0600, whatever the umask. */
	if (fchmod(fd, 0600) < 0 || dkim_write_all(fd, pem,
	    (size_t)pemlen) < 0 || fsync(fd) < 0) {
		errf(err, n, "%s: %s", path, strerror(errno));
		goto out;
	}
	rc = 0;
out:
	if (close(fd) < 0 && rc == 0) {
		errf(err, n, "%s: %s", path, strerror(errno));
		rc = -1;
	}
	if (rc == 0 && buf_append(txt, zone.data, zone.len) < 0) {
		errf(err, n, "%s: out of memory", path);
		rc = -1;
	}
	if (rc < 0)
		unlink(path);
	if (pem != NULL)
		OPENSSL_cleanse(pem, (size_t)pemlen);
	BIO_free(mem);
	EVP_PKEY_free(pkey);
	buf_free(&rec);
	buf_free(&zone);
	return rc;
}
