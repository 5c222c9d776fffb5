/*
 * Unit tests for lib/dkim.c.
 *
 * Every signature is checked with libopendkim's verifier, the public keys
 * given to it through a key-lookup callback (no DNS): the records are
 * taken from the TXT text dkim_keygen() prints, so the published record
 * itself is what verifies. Keys are generated at run time in a temporary
 * directory. tests/data/dkim/rfc8463.eml (found under $TOP_SRCDIR, else
 * the current directory) is RFC 8463's signed example.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "dkim.h"
#include <opendkim/dkim.h>
#if !defined(LEADCAST_DKIM_H) || !defined(DKIM_SIGN_ED25519SHA256)
#error "needs lib/dkim.h and libopendkim's <opendkim/dkim.h>"
#endif

#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#define DOMAIN "example.com"

static char tmpdir[256];
static char rsa_path[320], ed_path[320];
static char *rsa_txt, *ed_txt;		/* dkim_keygen() output */
static char *rsa_rec, *ed_rec;		/* the record text in it */
static struct dkim_keys *keys;		/* example.com dual; rsa.example,
					 * ed.example one key each */
static DKIM_LIB *vlib;

/* Key records the verifier finds, by selector. */
static struct { const char *sel, *rec; } vkeys[8];
static size_t nvkeys;

/* ---- helpers ----------------------------------------------------------- */

static void
vkey_set(const char *sel, const char *rec)
{
	for (size_t i = 0; i < nvkeys; i++)
		if (strcmp(vkeys[i].sel, sel) == 0) {
			vkeys[i].rec = rec;
			return;
		}
	assert_true(nvkeys < sizeof(vkeys) / sizeof(vkeys[0]));
	vkeys[nvkeys].sel = sel;
	vkeys[nvkeys++].rec = rec;
}

static DKIM_CBSTAT
lookup(DKIM *d, DKIM_SIGINFO *sig, unsigned char *buf, size_t buflen)
{
	const char *sel = (const char *)dkim_sig_getselector(sig);

	(void)d;
	for (size_t i = 0; sel && i < nvkeys; i++) {
		if (strcmp(vkeys[i].sel, sel) != 0)
			continue;
		if (strlen(vkeys[i].rec) >= buflen)
			return DKIM_CBSTAT_ERROR;
		strcpy((char *)buf, vkeys[i].rec);
		return DKIM_CBSTAT_CONTINUE;
	}
	return DKIM_CBSTAT_NOTFOUND;
}

/*
 * Verify sigs (prepended header fields, may be "") + msg with libopendkim.
 * Returns how many signatures pass (crypto, body hash, no error); *nsig
 * gets how many there are, *last_err the error of the last failing one.
 */
static int
verify(const char *sigs, const char *msg, size_t len, int *nsig,
    int *last_err)
{
	DKIM_SIGINFO **sl = NULL;
	DKIM_STAT st;
	DKIM *v;
	int ns = 0, ok = 0;

	v = dkim_verify(vlib, (const unsigned char *)"test", NULL, &st);
	assert_non_null(v);
	/* A zero-length chunk would mean the end of the message. */
	st = *sigs ? dkim_chunk(v, (unsigned char *)sigs, strlen(sigs)) :
	    DKIM_STAT_OK;
	if (st == DKIM_STAT_OK)
		st = dkim_chunk(v, (unsigned char *)msg, len);
	if (st == DKIM_STAT_OK)
		st = dkim_chunk(v, NULL, 0);
	if (st == DKIM_STAT_OK)
		(void)dkim_eom(v, NULL);
	if (dkim_getsiglist(v, &sl, &ns) != DKIM_STAT_OK)
		ns = 0;
	for (int i = 0; i < ns; i++) {
		if ((dkim_sig_getflags(sl[i]) & DKIM_SIGFLAG_PASSED) &&
		    dkim_sig_getbh(sl[i]) == DKIM_SIGBH_MATCH &&
		    dkim_sig_geterror(sl[i]) == DKIM_SIGERROR_OK)
			ok++;
		else if (last_err)
			*last_err = dkim_sig_geterror(sl[i]);
	}
	if (nsig)
		*nsig = ns;
	dkim_free(v);
	return ok;
}

/* Sign msg for domain (expecting want signatures) and return the fields. */
static char *
sign(const char *domain, const char *msg, size_t len, int want)
{
	struct buf out = BUF_INIT;
	char err[512] = "";
	int rc = dkim_keys_sign(keys, domain, msg, len, &out, err,
	    sizeof(err));

	if (rc != 0)
		fail_msg("dkim_keys_sign: %d %s", rc, err);
	for (const char *p = buf_str(&out); (p = strstr(p,
	    "DKIM-Signature:")) != NULL; p++)
		want--;
	assert_int_equal(want, 0);
	return buf_steal(&out);
}

/*
 * Sign msg for example.com and require both signatures to verify. A body
 * without a final CRLF is verified as SMTP delivers it: the CRLF that
 * starts the terminating CRLF.CRLF ends it (RFC 5321 4.1.1.4; libopendkim
 * refuses a message without it, "CRLF at end of body missing").
 */
static void
sign_verify(const char *msg, size_t len)
{
	char *sigs = sign(DOMAIN, msg, len, 2);
	struct buf sent = BUF_INIT;
	int ns = 0, e = 0, ok;

	buf_append(&sent, msg, len);
	if (len < 2 || memcmp(msg + len - 2, "\r\n", 2) != 0)
		buf_puts(&sent, "\r\n");
	ok = verify(sigs, sent.data, sent.len, &ns, &e);
	if (ok != 2)
		fail_msg("%d of %d signatures verify (error %d: %s)\n%s%s", ok,
		    ns, e, dkim_sig_geterrorstr(e), sigs, msg);
	buf_free(&sent);
	free(sigs);
}

static char *
slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	struct buf b = BUF_INIT;
	char tmp[4096];
	size_t n;

	if (f == NULL)
		return NULL;
	while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0)
		buf_append(&b, tmp, n);
	fclose(f);
	*len = b.len;
	return buf_steal(&b);
}

/* Bare LF -> CRLF (the file may have either line ending). */
static char *
crlf(const char *s, size_t *len)
{
	struct buf b = BUF_INIT;

	for (const char *p = s; *p; p++) {
		if (*p == '\n' && (p == s || p[-1] != '\r'))
			buf_putc(&b, '\r');
		buf_putc(&b, *p);
	}
	*len = b.len;
	return buf_steal(&b);
}

static void
write_file(const char *path, const void *p, size_t len, mode_t mode)
{
	FILE *f;

	unlink(path);
	f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(p, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(path, mode), 0);
}

static void
write_pkey(const char *path, EVP_PKEY *pkey, int encrypt, mode_t mode)
{
	BIO *mem = BIO_new(BIO_s_mem());
	char *p;
	long len;

	assert_int_equal(PEM_write_bio_PrivateKey(mem, pkey,
	    encrypt ? EVP_aes_256_cbc() : NULL, NULL, 0, NULL,
	    encrypt ? "secret" : NULL), 1);
	len = BIO_get_mem_data(mem, &p);
	write_file(path, p, (size_t)len, mode);
	BIO_free(mem);
}

static void
tmp_path(char *out, size_t n, const char *name)
{
	snprintf(out, n, "%s/%s", tmpdir, name);
}

/* The record text of a TXT zone line: its quoted strings, concatenated;
 * each must be at most 255 characters. */
static char *
txt_record(const char *txt)
{
	struct buf b = BUF_INIT;
	const char *p = strstr(txt, "IN TXT (");

	assert_non_null(p);
	while ((p = strchr(p, '"')) != NULL) {
		const char *q = strchr(p + 1, '"');

		assert_non_null(q);
		assert_true(q - p - 1 <= 255);
		buf_append(&b, p + 1, (size_t)(q - p - 1));
		p = q + 1;
	}
	return buf_steal(&b);
}

/* The record dkim_keygen() should print for the key in path. */
static char *
expected_record(const char *path)
{
	FILE *f = fopen(path, "r");
	EVP_PKEY *pkey;
	unsigned char raw[32], *der = NULL, b64[1024];
	size_t rawlen = sizeof(raw);
	struct buf b = BUF_INIT;
	int len;

	assert_non_null(f);
	pkey = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	assert_non_null(pkey);
	if (EVP_PKEY_is_a(pkey, "RSA")) {
		len = i2d_PUBKEY(pkey, &der);
		assert_true(len > 0);
		EVP_EncodeBlock(b64, der, len);
		OPENSSL_free(der);
		buf_printf(&b, "v=DKIM1; k=rsa; p=%s", b64);
	} else {
		assert_int_equal(EVP_PKEY_get_raw_public_key(pkey, raw,
		    &rawlen), 1);
		EVP_EncodeBlock(b64, raw, (int)rawlen);
		buf_printf(&b, "v=DKIM1; k=ed25519; p=%s", b64);
	}
	EVP_PKEY_free(pkey);
	return buf_steal(&b);
}

/* Add a key expecting rc; err must name path when rc is not 0. */
static void
add_expect(struct dkim_keys *k, const char *domain, const char *sel,
    enum dkim_alg alg, const char *path, int rc, const char *needle)
{
	char err[512] = "";
	int got = dkim_keys_add(k, domain, sel, alg, path, err, sizeof(err));

	if (got != rc)
		fail_msg("dkim_keys_add(%s): %d, want %d: %s", path, got, rc,
		    err);
	if (rc != 0 && strstr(err, path) == NULL && strstr(err, domain) ==
	    NULL)
		fail_msg("error does not name the file or domain: %s", err);
	if (needle != NULL && strstr(err, needle) == NULL)
		fail_msg("error lacks \"%s\": %s", needle, err);
}

static const char basic[] =
    "From: Leadcast <news@example.com>\r\n"
    "To: Ann Lead <ann@example.org>\r\n"
    "Subject: Spring offer\r\n"
    "Date: Mon, 2 Mar 2026 10:00:00 +0000\r\n"
    "Message-ID: <1.2@example.com>\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "List-Unsubscribe: <https://t.example.com/u/abc>\r\n"
    "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
    "\r\n"
    "Hello Ann,\r\n"
    "\r\n"
    "our spring offer.\r\n";

/* ---- setup ------------------------------------------------------------- */

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)flag;
	(void)f;
	return remove(path);
}

static int
group_setup(void **state)
{
	struct buf txt = BUF_INIT;
	char err[512];

	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "%s/test_dkim.XXXXXX",
	    getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	tmp_path(rsa_path, sizeof(rsa_path), "rsa.pem");
	tmp_path(ed_path, sizeof(ed_path), "ed.pem");
	if (dkim_keygen(DOMAIN, "rsa2026", DKIM_ALG_RSA_SHA256, rsa_path,
	    &txt, err, sizeof(err)) != 0) {
		fprintf(stderr, "keygen: %s\n", err);
		return -1;
	}
	rsa_txt = buf_steal(&txt);
	if (dkim_keygen(DOMAIN, "ed2026", DKIM_ALG_ED25519_SHA256, ed_path,
	    &txt, err, sizeof(err)) != 0) {
		fprintf(stderr, "keygen: %s\n", err);
		return -1;
	}
	ed_txt = buf_steal(&txt);
	rsa_rec = txt_record(rsa_txt);
	ed_rec = txt_record(ed_txt);
	vkey_set("rsa2026", rsa_rec);
	vkey_set("ed2026", ed_rec);

	keys = dkim_keys_new();
	if (keys == NULL ||
	    dkim_keys_add(keys, DOMAIN, "rsa2026", DKIM_ALG_RSA_SHA256,
	    rsa_path, err, sizeof(err)) != 0 ||
	    dkim_keys_add(keys, DOMAIN, "ed2026", DKIM_ALG_ED25519_SHA256,
	    ed_path, err, sizeof(err)) != 0 ||
	    dkim_keys_add(keys, "rsa.example", "rsa2026", DKIM_ALG_RSA_SHA256,
	    rsa_path, err, sizeof(err)) != 0 ||
	    dkim_keys_add(keys, "ed.example", "ed2026",
	    DKIM_ALG_ED25519_SHA256, ed_path, err, sizeof(err)) != 0) {
		fprintf(stderr, "dkim_keys_add: %s\n", err);
		return -1;
	}
	if ((vlib = dkim_init(NULL, NULL)) == NULL ||
	    dkim_set_key_lookup(vlib, lookup) != DKIM_STAT_OK)
		return -1;
	return 0;
}

static int
group_teardown(void **state)
{
	(void)state;
	dkim_keys_free(keys);
	dkim_close(vlib);
	free(rsa_txt);
	free(ed_txt);
	free(rsa_rec);
	free(ed_rec);
	if (tmpdir[0])
		nftw(tmpdir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	return 0;
}

/* ---- key generation ---------------------------------------------------- */

static void
check_keygen_output(const char *path, const char *txt, const char *rec,
    const char *sel, const char *k)
{
	struct stat st;
	char prefix[128], *want;

	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	snprintf(prefix, sizeof(prefix), "%s._domainkey.%s. IN TXT ( \"", sel,
	    DOMAIN);
	assert_int_equal(strncmp(txt, prefix, strlen(prefix)), 0);
	assert_non_null(strstr(txt, " )\n"));
	snprintf(prefix, sizeof(prefix), "v=DKIM1; k=%s; p=", k);
	assert_int_equal(strncmp(rec, prefix, strlen(prefix)), 0);
	want = expected_record(path);
	assert_string_equal(rec, want);
	free(want);
}

static void
keygen_rsa_writes_0600_key_and_txt(void **state)
{
	(void)state;
	check_keygen_output(rsa_path, rsa_txt, rsa_rec, "rsa2026", "rsa");
	/* 2048-bit SPKI: longer than one string, so split. */
	assert_true(strlen(rsa_rec) > 255);
	assert_non_null(strstr(rsa_txt, "\"\n\t\""));
}

static void
keygen_ed25519_writes_0600_key_and_txt(void **state)
{
	(void)state;
	check_keygen_output(ed_path, ed_txt, ed_rec, "ed2026", "ed25519");
	/* RFC 8463: the bare 32-byte key, 44 base64 characters. */
	assert_int_equal(strlen(strstr(ed_rec, "p=") + 2), 44);
}

static void
keygen_refuses_overwrite_and_bad_names(void **state)
{
	struct buf txt = BUF_INIT;
	char err[512], path[400], *before, *after;
	size_t blen, alen;
	mode_t old;

	(void)state;
	before = slurp(ed_path, &blen);
	assert_int_equal(dkim_keygen(DOMAIN, "again", DKIM_ALG_ED25519_SHA256,
	    ed_path, &txt, err, sizeof(err)), -1);
	assert_non_null(strstr(err, ed_path));
	assert_non_null(strstr(err, "exists"));
	after = slurp(ed_path, &alen);
	assert_int_equal(alen, blen);
	assert_memory_equal(after, before, blen);
	assert_int_equal(txt.len, 0);
	free(before);
	free(after);

	tmp_path(path, sizeof(path), "bad.pem");
	assert_int_equal(dkim_keygen("exa mple.com", "s", DKIM_ALG_RSA_SHA256,
	    path, &txt, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "domain"));
	assert_int_equal(dkim_keygen(DOMAIN, "s;x=1", DKIM_ALG_RSA_SHA256,
	    path, &txt, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "selector"));
	assert_int_equal(dkim_keygen("example.com.", "s",
	    DKIM_ALG_ED25519_SHA256, path, &txt, err, sizeof(err)), -1);
	assert_int_equal(access(path, F_OK), -1);

	/* A missing directory: an error naming the path, nothing left. */
	tmp_path(path, sizeof(path), "no/such/dir.pem");
	assert_int_equal(dkim_keygen(DOMAIN, "s", DKIM_ALG_ED25519_SHA256,
	    path, &txt, err, sizeof(err)), -1);
	assert_non_null(strstr(err, path));

	/* 0600 whatever the umask. */
	tmp_path(path, sizeof(path), "umask.pem");
	old = umask(0);
	assert_int_equal(dkim_keygen(DOMAIN, "s", DKIM_ALG_ED25519_SHA256,
	    path, &txt, err, sizeof(err)), 0);
	umask(old);
	{
		struct stat st;

		assert_int_equal(stat(path, &st), 0);
		assert_int_equal(st.st_mode & 07777, 0600);
	}
	buf_free(&txt);
}

/* ---- signing ----------------------------------------------------------- */

static void
sign_rsa_verifies(void **state)
{
	char *sigs;
	int ns = 0;

	(void)state;
	sigs = sign("rsa.example", basic, strlen(basic), 1);
	assert_non_null(strstr(sigs, "a=rsa-sha256;"));
	assert_int_equal(verify(sigs, basic, strlen(basic), &ns, NULL), 1);
	assert_int_equal(ns, 1);
	free(sigs);
}

static void
sign_ed25519_verifies(void **state)
{
	char *sigs;
	int ns = 0;

	(void)state;
	sigs = sign("ed.example", basic, strlen(basic), 1);
	assert_non_null(strstr(sigs, "a=ed25519-sha256;"));
	assert_int_equal(verify(sigs, basic, strlen(basic), &ns, NULL), 1);
	assert_int_equal(ns, 1);
	free(sigs);
}

static void
dual_signature_both_verify(void **state)
{
	char *sigs, *second;
	int ns = 0;

	(void)state;
	/* Domains match without regard to case. */
	sigs = sign("Example.COM", basic, strlen(basic), 2);
	/* rsa-sha256 first, then ed25519-sha256, each its own field. */
	assert_int_equal(strncmp(sigs, "DKIM-Signature: v=1; a=rsa-sha256;",
	    34), 0);
	second = strstr(sigs + 1, "\r\nDKIM-Signature:");
	assert_non_null(second);
	assert_non_null(strstr(second, "a=ed25519-sha256;"));
	assert_non_null(strstr(sigs, "s=rsa2026;"));
	assert_non_null(strstr(second, "s=ed2026;"));
	assert_int_equal(verify(sigs, basic, strlen(basic), &ns, NULL), 2);
	assert_int_equal(ns, 2);
	free(sigs);
}

static void
tricky_messages_verify(void **state)
{
	static const char *const msgs[] = {
		/* folded headers, tabs and runs of WSP */
		"From: \"Leadcast News\"\r\n <news@example.com>\r\n"
		"To: a@example.org,\r\n\tb@example.org,\r\n   c@example.org\r\n"
		"Subject: a  very\r\n\t long \t subject\r\n"
		"Content-Type: multipart/alternative;\r\n"
		"\tboundary=\"=_b1\"\r\n\r\nbody\r\n",
		/* trailing whitespace in header fields and body lines */
		"From: news@example.com  \r\nSubject: hi \t \r\nTo:\t x@y \r\n"
		"\r\nline one   \r\n\tindented\t\r\n  \r\nend \t\r\n",
		/* empty body */
		"From: news@example.com\r\nSubject: nothing\r\n\r\n",
		/* body of empty lines only */
		"From: news@example.com\r\n\r\n\r\n\r\n\r\n",
		/* body without a final CRLF */
		"From: news@example.com\r\nSubject: x\r\n\r\nfirst\r\nlast",
		/* body without a final CRLF, ending in WSP */
		"From: news@example.com\r\n\r\nfirst\r\nlast  \t",
		/* trailing empty lines and WSP-only lines at the end */
		"From: news@example.com\r\n\r\na\r\n\r\n \r\n\t\r\n\r\n",
		/* leading empty lines, WSP inside lines */
		"From: news@example.com\r\n\r\n\r\n\r\n  a \t\t b  c\r\n",
		/* quoted-printable, encoded words, non-ASCII */
		"From: =?UTF-8?Q?Caf=C3=A9_Z=C3=BCrich?= <news@example.com>\r\n"
		"Subject: =?UTF-8?B?w4ljb2xlIGV0IGNhZsOp?=\r\n"
		"MIME-Version: 1.0\r\n"
		"Content-Type: text/plain; charset=utf-8\r\n"
		"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
		"Caf=C3=A9 cr=C3=A8me br=C3=BBl=C3=A9e, un tr=C3=A8s lo=\r\n"
		"ng mot qui continue =3D soft break   \r\n=E2=82=AC 10\r\n",
		/* raw 8-bit UTF-8 (8BITMIME) */
		"From: Zoë <zoe@example.com>\r\nSubject: Crème brûlée\r\n"
		"Content-Type: text/plain; charset=utf-8\r\n"
		"Content-Transfer-Encoding: 8bit\r\n\r\n"
		"Grüße aus Köln — €10 ½ 🍰\r\n",
		/* header names in any case, unsigned fields between */
		"FROM: news@example.com\r\nX-Campaign: 7\r\nsubject: lower\r\n"
		"Received: by x; Mon, 2 Mar 2026 10:00:00 +0000\r\n"
		"MESSAGE-ID: <a@b>\r\nmime-version: 1.0\r\n\r\nbody\r\n",
		/* two instances of a field: signed bottom-up */
		"From: news@example.com\r\nTo: first@example.org\r\n"
		"Subject: s\r\nTo: second@example.org\r\n\r\nbody\r\n",
		/* empty header value, value with only WSP */
		"From: news@example.com\r\nSubject:\r\nTo:   \r\n\r\nb\r\n",
		/* no empty line: all header, no body */
		"From: news@example.com\r\nSubject: no body\r\n",
		/* a continuation line of WSP only */
		"From: news@example.com\r\nSubject: x\r\n \r\n\r\nb\r\n",
		/* all nine signed fields plus common others */
		basic,
	};
	struct buf b = BUF_INIT;
	size_t len;

	(void)state;
	for (size_t i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++)
		sign_verify(msgs[i], strlen(msgs[i]));

	/* Long lines: a 5000-byte body line, a 900-byte folded header. */
	buf_puts(&b, "From: news@example.com\r\nList-Unsubscribe: "
	    "<https://t.example.com/u/");
	for (int i = 0; i < 900; i++)
		buf_putc(&b, (char)('a' + i % 26));
	buf_puts(&b, ">,\r\n <mailto:u@example.com?subject=x>\r\n\r\n");
	for (int i = 0; i < 5000; i++)
		buf_putc(&b, i % 97 == 0 ? ' ' : (char)('A' + i % 26));
	buf_puts(&b, "\r\n");
	sign_verify(b.data, b.len);

	/* A 300 KB body of many lines. */
	buf_reset(&b);
	buf_puts(&b, basic);
	for (int i = 0; i < 4000; i++)
		buf_printf(&b, "Line %d of the body,  with  some  text.\t\r\n",
		    i);
	len = b.len;
	sign_verify(b.data, len);
	buf_free(&b);
}

/* Random bodies of words, spaces, tabs, runs of them, empty and WSP-only
 * lines, with and without a final CRLF: the relaxed body hash (canonical
 * lines hashed in place, the others rewritten) agrees with libopendkim. */
static void
random_bodies_verify(void **state)
{
	static const char *const piece[] = { "word", "x", "=3D", " ", " ",
	    "  ", "\t", " \t ", "\r\n", "\r\n", "\r\n\r\n", " \r\n",
	    "\t\r\n", "\r\n  \r\n", "\r\n\r\n\r\n", "." };
	unsigned seed = 4242;
	struct buf b = BUF_INIT;

	(void)state;
	for (int round = 0; round < 300; round++) {
		int n = round % 50;

		buf_reset(&b);
		buf_puts(&b, "From: news@example.com\r\nSubject: r\r\n\r\n");
		for (int i = 0; i < n; i++) {
			seed = seed * 1103515245u + 12345u;
			buf_puts(&b, piece[(seed >> 16) %
			    (sizeof(piece) / sizeof(piece[0]))]);
		}
		if (round % 3)
			buf_puts(&b, "\r\n");
		sign_verify(b.data, b.len);
	}
	buf_free(&b);
}

static void
body_hash_matches_rfc8463(void **state)
{
	static const char ed_pub[] = "v=DKIM1; k=ed25519; "
	    "p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";
	static const char rsa_pub[] = "v=DKIM1; k=rsa; "
	    "p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWR"
	    "iGs5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQiY/J16JYi0Qvx/b"
	    "yYzCNb3W91y3FutACDfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqMKr"
	    "M3rG4hstT5QjvHO9PzoxZyVYLzBfO2EeC3Ip3G+2kryOTIKT+l/K"
	    "4w3QIDAQAB";
	static const char seed64[] =
	    "nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=";
	const char *top = getenv("TOP_SRCDIR");
	char path[1024], keypath[400], err[512];
	unsigned char seed[33];
	struct dkim_keys *k;
	struct buf out = BUF_INIT;
	char *raw, *msg, *unsigned_msg;
	size_t rawlen, len;
	EVP_PKEY *pkey;
	int ns = 0;

	(void)state;
	snprintf(path, sizeof(path), "%s/tests/data/dkim/rfc8463.eml",
	    top ? top : ".");
	raw = slurp(path, &rawlen);
	if (raw == NULL)
		fail_msg("cannot read %s (set TOP_SRCDIR)", path);
	msg = crlf(raw, &len);

	/* The verifier we trust implements RFC 8463 and RFC 6376. */
	vkey_set("brisbane", ed_pub);
	vkey_set("test", rsa_pub);
	assert_int_equal(verify("", msg, len, &ns, NULL), 2);
	assert_int_equal(ns, 2);

	/* Our body hash of the same message is the RFC's. Sign the message
	 * without its signatures with the RFC's Ed25519 key. */
	unsigned_msg = strstr(msg, "\r\nFrom:") + 2;
	assert_int_equal(EVP_DecodeBlock(seed, (const unsigned char *)seed64,
	    44), 33);
	pkey = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, 32);
	assert_non_null(pkey);
	tmp_path(keypath, sizeof(keypath), "brisbane.pem");
	write_pkey(keypath, pkey, 0, 0600);
	EVP_PKEY_free(pkey);
	k = dkim_keys_new();
	assert_non_null(k);
	assert_int_equal(dkim_keys_add(k, "football.example.com", "brisbane",
	    DKIM_ALG_ED25519_SHA256, keypath, err, sizeof(err)), 0);
	assert_int_equal(dkim_keys_sign(k, "football.example.com",
	    unsigned_msg, len - (size_t)(unsigned_msg - msg), &out, err,
	    sizeof(err)), 0);
	assert_non_null(strstr(out.data,
	    "bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;"));
	assert_int_equal(verify(out.data, unsigned_msg,
	    len - (size_t)(unsigned_msg - msg), &ns, NULL), 1);
	buf_free(&out);
	dkim_keys_free(k);
	free(raw);
	free(msg);
}

static void
tampering_fails(void **state)
{
	char *sigs = sign(DOMAIN, basic, strlen(basic), 2), *m;
	struct buf b = BUF_INIT;
	size_t len = strlen(basic);
	int ns;

	(void)state;
	assert_int_equal(verify(sigs, basic, len, &ns, NULL), 2);

	/* A signed header field changed. */
	m = strdup(basic);
	memcpy(strstr(m, "Spring"), "Summer", 6);
	assert_int_equal(verify(sigs, m, len, &ns, NULL), 0);
	assert_int_equal(ns, 2);
	free(m);

	/* The body changed. */
	m = strdup(basic);
	memcpy(strstr(m, "offer."), "offer!", 6);
	assert_int_equal(verify(sigs, m, len, &ns, NULL), 0);
	free(m);

	/* A second From: on top (what a mail reader may show): oversigned. */
	buf_puts(&b, "From: CEO <ceo@example.com>\r\n");
	buf_puts(&b, basic);
	assert_int_equal(verify(sigs, b.data, b.len, &ns, NULL), 0);

	/* Another List-Unsubscribe added. */
	buf_reset(&b);
	buf_puts(&b, "List-Unsubscribe: <https://evil.example/u>\r\n");
	buf_puts(&b, basic);
	assert_int_equal(verify(sigs, b.data, b.len, &ns, NULL), 0);

	/* A body appended. */
	buf_reset(&b);
	buf_puts(&b, basic);
	buf_puts(&b, "P.S. click here\r\n");
	assert_int_equal(verify(sigs, b.data, b.len, &ns, NULL), 0);

	/* What relaxed/relaxed and the signed set let pass: an unsigned
	 * field added on top, refolding, WSP at line ends. */
	buf_reset(&b);
	buf_puts(&b, "Received: from a by b; Mon, 2 Mar 2026 10:00:01 +0000"
	    "\r\n");
	for (const char *p = basic; *p; p++) {
		if (strncmp(p, "Subject: Spring", 15) == 0) {
			buf_puts(&b, "Subject:   Spring\r\n\t");
			p += 15;
		}
		if (strncmp(p, "offer.\r\n", 8) == 0) {
			buf_puts(&b, "offer.  \t\r\n\r\n\r\n");
			break;
		}
		buf_putc(&b, *p);
	}
	assert_int_equal(verify(sigs, b.data, b.len, &ns, NULL), 2);
	buf_free(&b);
	free(sigs);
}

static void
no_key_for_domain_returns_1(void **state)
{
	struct buf out = BUF_INIT;
	char err[256] = "";

	(void)state;
	buf_puts(&out, "kept");
	assert_int_equal(dkim_keys_sign(keys, "other.example", basic,
	    strlen(basic), &out, err, sizeof(err)), 1);
	assert_int_equal(dkim_keys_sign(keys, "sub.example.com", basic,
	    strlen(basic), &out, err, sizeof(err)), 1);
	assert_int_equal(dkim_keys_sign(keys, "", basic, strlen(basic), &out,
	    err, sizeof(err)), 1);
	assert_string_equal(buf_str(&out), "kept");
	buf_free(&out);
}

static void
bad_messages_fail_and_change_nothing(void **state)
{
	static const struct { const char *msg, *needle; } bad[] = {
		{ "Subject: no from\r\n\r\nbody\r\n", "no From" },
		{ "From: a@example.com\r\nFrom: b@example.com\r\n\r\nb\r\n",
		  "2 From" },
		{ "From: a@example.com\nSubject: x\r\n\r\nb\r\n", "bare LF" },
		{ "From: a@example.com\r\nSubject: x\ry\r\n\r\nb\r\n",
		  "bare CR" },
		{ "From: a@example.com\r\n\r\nline\nline\r\n", "bare LF" },
		{ "From: a@example.com\r\n\r\nline\r", "bare CR" },
		{ "From: a@example.com\r\nno colon here\r\n\r\nb\r\n",
		  "malformed" },
		{ " From: a@example.com\r\n\r\nb\r\n", "continuation" },
		{ "From: a@example.com\r\n: empty name\r\n\r\nb\r\n",
		  "malformed" },
		/* obsolete WSP before the colon: OpenDKIM cannot verify it */
		{ "From: a@example.com\r\nSubject : x\r\n\r\nb\r\n",
		  "malformed" },
		{ "From\t: a@example.com\r\n\r\nb\r\n", "malformed" },
	};
	struct buf out = BUF_INIT;
	char err[256];

	(void)state;
	buf_puts(&out, "kept");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		assert_int_equal(dkim_keys_sign(keys, DOMAIN, bad[i].msg,
		    strlen(bad[i].msg), &out, err, sizeof(err)), -1);
		if (strstr(err, bad[i].needle) == NULL)
			fail_msg("case %zu: \"%s\" lacks \"%s\"", i, err,
			    bad[i].needle);
		assert_string_equal(buf_str(&out), "kept");
	}
	/* A NUL inside the header. */
	assert_int_equal(dkim_keys_sign(keys, DOMAIN, "From: a\0b\r\n\r\n",
	    13, &out, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "NUL"));
	/* An output limit: -1, and the buffer as it was. */
	buf_free(&out);
	buf_init(&out, 100);
	buf_puts(&out, "kept");
	assert_int_equal(dkim_keys_sign(keys, DOMAIN, basic, strlen(basic),
	    &out, err, sizeof(err)), -1);
	assert_string_equal(buf_str(&out), "kept");
	assert_int_equal(out.overflow, 0);
	buf_free(&out);
}

/* The unfolded value of tag name in the first signature of sigs. */
static char *
tag_value(const char *sigs, const char *name)
{
	struct buf b = BUF_INIT;
	const char *end = strstr(sigs, "\r\nDKIM-Signature:");
	char *u, *p, *q, want[16];

	if (end == NULL)
		end = sigs + strlen(sigs);
	for (const char *s = sigs; s < end; s++)
		if (*s != '\r' && *s != '\n' && *s != '\t')
			buf_putc(&b, *s);
	u = buf_steal(&b);
	snprintf(want, sizeof(want), " %s=", name);
	p = strstr(u, want);
	if (p == NULL) {
		free(u);
		return NULL;
	}
	p += strlen(want);
	q = strchr(p, ';');
	if (q != NULL)
		*q = '\0';
	memmove(u, p, strlen(p) + 1);
	return u;
}

static void
header_format(void **state)
{
	char *sigs = sign(DOMAIN, basic, strlen(basic), 2), *v;
	const char *p, *nl;
	size_t lines = 0;
	long long t;

	(void)state;
	/* CRLF lines of at most 78 octets; continuations start with a tab;
	 * the fields end in CRLF. */
	for (p = sigs; *p; p = nl + 2) {
		nl = strstr(p, "\r\n");
		assert_non_null(nl);
		assert_true(nl - p <= 78);
		assert_null(memchr(p, '\n', (size_t)(nl - p)));
		assert_null(memchr(p, '\r', (size_t)(nl - p)));
		assert_true(*p == '\t' || strncmp(p, "DKIM-Signature: ", 16) ==
		    0);
		lines++;
	}
	assert_true(lines >= 4);

	v = tag_value(sigs, "h");
	assert_string_equal(v, "from:from:to:to:subject:subject:date:date:"
	    "message-id:message-id:mime-version:mime-version:content-type:"
	    "content-type:list-unsubscribe:list-unsubscribe:"
	    "list-unsubscribe-post:list-unsubscribe-post");
	free(v);
	v = tag_value(sigs, "c");
	assert_string_equal(v, "relaxed/relaxed");
	free(v);
	v = tag_value(sigs, "d");
	assert_string_equal(v, DOMAIN);
	free(v);
	v = tag_value(sigs, "t");
	t = atoll(v);
	assert_true(llabs(t - (long long)time(NULL)) < 60);
	free(v);
	/* No l= (a body length lets anyone append), no x=, no i=. */
	assert_null(tag_value(sigs, "l"));
	assert_null(tag_value(sigs, "x"));
	assert_null(tag_value(sigs, "i"));
	free(sigs);

	/* Only fields present are listed. */
	sigs = sign(DOMAIN, "From: a@example.com\r\n\r\n", 23, 2);
	v = tag_value(sigs, "h");
	assert_string_equal(v, "from:from");
	free(v);
	free(sigs);
}

/* ---- key loading ------------------------------------------------------- */

static void
bad_key_files_fail_naming_the_file(void **state)
{
	struct dkim_keys *k = dkim_keys_new();
	char path[400];
	EVP_PKEY *pkey;
	BIO *mem;
	char *pem;
	long pemlen;

	(void)state;
	assert_non_null(k);
	tmp_path(path, sizeof(path), "missing.pem");
	add_expect(k, DOMAIN, "s", DKIM_ALG_RSA_SHA256, path, -1,
	    "No such file");

	add_expect(k, DOMAIN, "s", DKIM_ALG_RSA_SHA256, tmpdir, -1,
	    "not a regular file");

	tmp_path(path, sizeof(path), "junk.pem");
	write_file(path, "hello\n", 6, 0600);
	add_expect(k, DOMAIN, "s", DKIM_ALG_RSA_SHA256, path, -1,
	    "not a PEM private key");

	/* The public key instead of the private one. */
	pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	assert_non_null(pkey);
	mem = BIO_new(BIO_s_mem());
	assert_int_equal(PEM_write_bio_PUBKEY(mem, pkey), 1);
	pemlen = BIO_get_mem_data(mem, &pem);
	tmp_path(path, sizeof(path), "public.pem");
	write_file(path, pem, (size_t)pemlen, 0600);
	BIO_free(mem);
	add_expect(k, DOMAIN, "s", DKIM_ALG_ED25519_SHA256, path, -1,
	    "public key");

	/* Encrypted: an error, never a passphrase prompt. */
	tmp_path(path, sizeof(path), "encrypted.pem");
	write_pkey(path, pkey, 1, 0600);
	add_expect(k, DOMAIN, "s", DKIM_ALG_ED25519_SHA256, path, -1,
	    "encrypted");
	EVP_PKEY_free(pkey);

	/* Wrong type for the algorithm, both ways. */
	add_expect(k, DOMAIN, "s", DKIM_ALG_RSA_SHA256, ed_path, -1,
	    "ED25519 key, not the RSA key");
	add_expect(k, DOMAIN, "s", DKIM_ALG_ED25519_SHA256, rsa_path, -1,
	    "RSA key, not the Ed25519 key");

	/* RSA under 1024 bits. */
	pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)768);
	assert_non_null(pkey);
	tmp_path(path, sizeof(path), "rsa768.pem");
	write_pkey(path, pkey, 0, 0600);
	EVP_PKEY_free(pkey);
	add_expect(k, DOMAIN, "s", DKIM_ALG_RSA_SHA256, path, -1, "768 bits");

	/* Readable by others, writable by the group. */
	tmp_path(path, sizeof(path), "open.pem");
	pem = slurp(ed_path, (size_t[]){ 0 });
	write_file(path, pem, strlen(pem), 0644);
	add_expect(k, DOMAIN, "s", DKIM_ALG_ED25519_SHA256, path, -1,
	    "chmod 600");
	assert_int_equal(chmod(path, 0620), 0);
	add_expect(k, DOMAIN, "s", DKIM_ALG_ED25519_SHA256, path, -1,
	    "writable");
	free(pem);

	/* Unreadable (root reads anything: checked as others only). */
	if (geteuid() != 0) {
		assert_int_equal(chmod(path, 0200), 0);
		add_expect(k, DOMAIN, "s", DKIM_ALG_ED25519_SHA256, path, -1,
		    "Permission denied");
	}
	assert_int_equal(dkim_keys_count(k), 0);
	dkim_keys_free(k);
}

static void
key_warnings_load_and_sign(void **state)
{
	struct dkim_keys *k = dkim_keys_new();
	char path[400], path2[400], err[512];
	EVP_PKEY *pkey;
	struct buf out = BUF_INIT;
	char *rec, *pem;
	int ns;

	(void)state;
	assert_non_null(k);
	/* Group-readable: loaded, with a warning. */
	tmp_path(path, sizeof(path), "group.pem");
	pem = slurp(ed_path, (size_t[]){ 0 });
	write_file(path, pem, strlen(pem), 0640);
	free(pem);
	add_expect(k, "g.example", "ed2026", DKIM_ALG_ED25519_SHA256, path, 1,
	    "readable by its group");

	/* RSA 1024: loaded, with a warning; both warnings at once. */
	pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
	assert_non_null(pkey);
	tmp_path(path2, sizeof(path2), "rsa1024.pem");
	write_pkey(path2, pkey, 0, 0640);
	EVP_PKEY_free(pkey);
	assert_int_equal(dkim_keys_add(k, "g.example", "old1024",
	    DKIM_ALG_RSA_SHA256, path2, err, sizeof(err)), 1);
	assert_non_null(strstr(err, "1024 bits"));
	assert_non_null(strstr(err, "group"));
	assert_int_equal(dkim_keys_count(k), 2);

	rec = expected_record(path2);
	vkey_set("old1024", rec);
	assert_int_equal(dkim_keys_sign(k, "g.example", basic, strlen(basic),
	    &out, err, sizeof(err)), 0);
	assert_int_equal(verify(out.data, basic, strlen(basic), &ns, NULL), 2);
	buf_free(&out);
	free(rec);
	dkim_keys_free(k);
}

static void
add_rejects_duplicates_and_bad_names(void **state)
{
	struct dkim_keys *k = dkim_keys_new();

	(void)state;
	assert_non_null(k);
	add_expect(k, DOMAIN, "rsa2026", DKIM_ALG_RSA_SHA256, rsa_path, 0,
	    NULL);
	/* A second key of the same algorithm for the domain. */
	add_expect(k, "EXAMPLE.com", "other", DKIM_ALG_RSA_SHA256, rsa_path,
	    -1, "already has an rsa-sha256 key");
	/* One selector names one DNS record: not two keys. */
	add_expect(k, DOMAIN, "rsa2026", DKIM_ALG_ED25519_SHA256, ed_path, -1,
	    "own selector");
	add_expect(k, "bad_domain.example", "s", DKIM_ALG_RSA_SHA256,
	    rsa_path, -1, "invalid DKIM domain");
	add_expect(k, "-x.example", "s", DKIM_ALG_RSA_SHA256, rsa_path, -1,
	    "invalid DKIM domain");
	add_expect(k, DOMAIN, "a b", DKIM_ALG_RSA_SHA256, rsa_path, -1,
	    "invalid DKIM selector");
	add_expect(k, DOMAIN, "", DKIM_ALG_ED25519_SHA256, ed_path, -1,
	    "invalid DKIM selector");
	add_expect(k, DOMAIN, "s", (enum dkim_alg)7, ed_path, -1,
	    "unknown DKIM algorithm");
	assert_int_equal(dkim_keys_count(k), 1);
	assert_string_equal(dkim_alg_name(DKIM_ALG_RSA_SHA256), "rsa-sha256");
	assert_string_equal(dkim_alg_name(DKIM_ALG_ED25519_SHA256),
	    "ed25519-sha256");
	dkim_keys_free(k);
	dkim_keys_free(NULL);
}

/* ---- threads ----------------------------------------------------------- */

#define NTHREADS	4
#define NPERTHREAD	25

struct job {
	int id;
	char *msg[NPERTHREAD], *sig[NPERTHREAD];
	int rc[NPERTHREAD];
};

static void *
signer(void *arg)
{
	struct job *j = arg;

	for (int i = 0; i < NPERTHREAD; i++) {
		struct buf m = BUF_INIT, out = BUF_INIT;
		char err[256];

		buf_printf(&m, "From: news@example.com\r\nTo: t%d@example.org"
		    "\r\nSubject: thread %d message %d\r\n\r\n", j->id, j->id,
		    i);
		for (int l = 0; l < 50 + i; l++)
			buf_printf(&m, "thread %d line %d  \r\n", j->id, l);
		j->rc[i] = dkim_keys_sign(keys, DOMAIN, m.data, m.len, &out,
		    err, sizeof(err));
		j->msg[i] = buf_steal(&m);
		j->sig[i] = buf_steal(&out);
	}
	return NULL;
}

static void
concurrent_signing_verifies(void **state)
{
	struct job jobs[NTHREADS];
	pthread_t th[NTHREADS];

	(void)state;
	for (int t = 0; t < NTHREADS; t++) {
		jobs[t].id = t;
		assert_int_equal(pthread_create(&th[t], NULL, signer,
		    &jobs[t]), 0);
	}
	for (int t = 0; t < NTHREADS; t++)
		assert_int_equal(pthread_join(th[t], NULL), 0);
	for (int t = 0; t < NTHREADS; t++) {
		for (int i = 0; i < NPERTHREAD; i++) {
			int ns = 0;

			assert_int_equal(jobs[t].rc[i], 0);
			assert_int_equal(verify(jobs[t].sig[i], jobs[t].msg[i],
			    strlen(jobs[t].msg[i]), &ns, NULL), 2);
			free(jobs[t].msg[i]);
			free(jobs[t].sig[i]);
		}
	}
}

/* ---- published key records (check-dns) --------------------------------- */

/* rec with text inserted after its "v=DKIM1; ": a new string. */
static char *
with_tag(const char *rec, const char *tag)
{
	struct buf b = BUF_INIT;

	buf_printf(&b, "v=DKIM1; %s%s", tag, rec + strlen("v=DKIM1; "));
	return buf_steal(&b);
}

static void
published_records_are_checked(void **state)
{
	char *testing = with_tag(rsa_rec, "t=y; "), *sha1 = with_tag(rsa_rec,
	    "h=sha1; "), *folded = with_tag(rsa_rec, ""), small[1024];
	struct { const char *domain, *sel, *txt; int rc; const char *err;
	    enum dkim_alg alg; int bits, testing; } t[] = {
		{ DOMAIN, "rsa2026", rsa_rec, DKIM_PUB_MATCH, NULL,
		    DKIM_ALG_RSA_SHA256, 2048, 0 },
		{ "EXAMPLE.com", "RSA2026", rsa_rec, DKIM_PUB_MATCH, NULL,
		    DKIM_ALG_RSA_SHA256, 2048, 0 },
		{ DOMAIN, "ed2026", ed_rec, DKIM_PUB_MATCH, NULL,
		    DKIM_ALG_ED25519_SHA256, 256, 0 },
		{ "ed.example", "ed2026", ed_rec, DKIM_PUB_MATCH, NULL,
		    DKIM_ALG_ED25519_SHA256, 256, 0 },
		{ DOMAIN, "rsa2026", ed_rec, DKIM_PUB_MISMATCH, NULL,
		    DKIM_ALG_ED25519_SHA256, 256, 0 },
		{ "rsa.example", "rsa2026", ed_rec, DKIM_PUB_MISMATCH, NULL,
		    DKIM_ALG_ED25519_SHA256, 256, 0 },
		{ "other.example", "s1", rsa_rec, DKIM_PUB_UNCONFIGURED, NULL,
		    DKIM_ALG_RSA_SHA256, 2048, 0 },
		{ DOMAIN, "rsa2026", testing, DKIM_PUB_MATCH, NULL,
		    DKIM_ALG_RSA_SHA256, 2048, 1 },
		{ DOMAIN, "rsa2026", folded, DKIM_PUB_MATCH, NULL,
		    DKIM_ALG_RSA_SHA256, 2048, 0 },
		{ DOMAIN, "rsa2026", sha1, -1, "sha256", 0, 0, 0 },
		{ DOMAIN, "rsa2026", "v=DKIM1; k=rsa; p=", -1, "revoked", 0, 0,
		    0 },
		{ DOMAIN, "rsa2026", "v=DKIM1; k=rsa", -1, "no p=", 0, 0, 0 },
		{ DOMAIN, "rsa2026", "v=DKIM1; p=MII@", -1, "base64", 0, 0, 0 },
		{ DOMAIN, "rsa2026", "v=DKIM1; p=MIIB", -1, "RSA", 0, 0, 0 },
		{ DOMAIN, "rsa2026", "v=DKIM1; k=dsa; p=MIIB", -1, "key type",
		    0, 0, 0 },
		{ DOMAIN, "rsa2026", "k=rsa; v=DKIM1; p=MIIB", -1, "first", 0, 0,
		    0 },
		{ DOMAIN, "rsa2026", "v=DKIM2; p=MIIB", -1, "DKIM1", 0, 0, 0 },
		{ DOMAIN, "ed2026", "v=DKIM1; k=ed25519; p=AAAA", -1, "32", 0, 0,
		    0 },
		{ DOMAIN, "rsa2026", "v=DKIM1; p", -1, "=value", 0, 0, 0 },
		{ DOMAIN, "rsa2026", small, -1, "1024", 0, 0, 0 },
	};
	EVP_PKEY *weak = EVP_RSA_gen(768);
	unsigned char *der = NULL, b64[512];
	int len;

	(void)state;
	/* folding white space inside p= is allowed */
	memmove(folded + 30, folded + 29, strlen(folded + 29) + 1);
	folded[29] = ' ';
	assert_non_null(weak);
	len = i2d_PUBKEY(weak, &der);
	assert_true(len > 0);
	EVP_EncodeBlock(b64, der, len);
	snprintf(small, sizeof(small), "v=DKIM1; k=rsa; p=%s", b64);
	OPENSSL_free(der);
	EVP_PKEY_free(weak);
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct dkim_pubkey info;
		struct buf want = BUF_INIT;
		char err[256] = "";
		int rc = dkim_keys_check_record(keys, t[i].domain, t[i].sel,
		    t[i].txt, &info, &want, err, sizeof(err));

		if (rc != t[i].rc)
			fail_msg("case %zu (%.40s): %d, want %d: %s", i, t[i].txt, rc,
			    t[i].rc, err);
		if (t[i].err && !strstr(err, t[i].err))
			fail_msg("case %zu: \"%s\" lacks \"%s\"", i, err, t[i].err);
		if (rc >= 0) {
			assert_int_equal(info.alg, t[i].alg);
			assert_int_equal(info.bits, t[i].bits);
			assert_int_equal(info.testing, t[i].testing);
		}
		/* the configured key's record, whatever was published */
		if (rc == DKIM_PUB_UNCONFIGURED)
			assert_int_equal(want.len, 0);
		else if (!strcasecmp(t[i].domain, DOMAIN) &&
		    !strcasecmp(t[i].sel, "rsa2026"))
			assert_string_equal(buf_str(&want), rsa_rec);
		buf_free(&want);
	}
	free(testing);
	free(sha1);
	free(folded);
}

static void
selectors_are_listed(void **state)
{
	const char *sel[4];
	enum dkim_alg alg[4];

	(void)state;
	assert_int_equal(dkim_keys_selectors(keys, "Example.COM", sel, alg, 4),
	    2);
	assert_string_equal(sel[0], "rsa2026");
	assert_int_equal(alg[0], DKIM_ALG_RSA_SHA256);
	assert_string_equal(sel[1], "ed2026");
	assert_int_equal(dkim_keys_selectors(keys, DOMAIN, sel, alg, 1), 2);
	assert_int_equal(dkim_keys_selectors(keys, "none.example", sel, alg,
	    4), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(keygen_rsa_writes_0600_key_and_txt),
		cmocka_unit_test(keygen_ed25519_writes_0600_key_and_txt),
		cmocka_unit_test(keygen_refuses_overwrite_and_bad_names),
		cmocka_unit_test(sign_rsa_verifies),
		cmocka_unit_test(sign_ed25519_verifies),
		cmocka_unit_test(dual_signature_both_verify),
		cmocka_unit_test(tricky_messages_verify),
		cmocka_unit_test(random_bodies_verify),
		cmocka_unit_test(body_hash_matches_rfc8463),
		cmocka_unit_test(tampering_fails),
		cmocka_unit_test(no_key_for_domain_returns_1),
		cmocka_unit_test(bad_messages_fail_and_change_nothing),
		cmocka_unit_test(header_format),
		cmocka_unit_test(bad_key_files_fail_naming_the_file),
		cmocka_unit_test(key_warnings_load_and_sign),
		cmocka_unit_test(add_rejects_duplicates_and_bad_names),
		cmocka_unit_test(concurrent_signing_verifies),
		cmocka_unit_test(published_records_are_checked),
		cmocka_unit_test(selectors_are_listed),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
