/*
 * test_mime - unit tests for lib/mime.
 *
 * Golden files: each case renders a message with a fixed Date, Message-ID
 * and boundary and compares it byte for byte with
 * $TOP_SRCDIR/tests/data/mime/NAME.eml. With MIME_UPDATE_GOLDEN=1 the
 * files are written instead (then read the diff before keeping it).
 * The encoders are checked by decoding their output with the small
 * decoders below (and base64 against OpenSSL), and every message is
 * checked for CRLF-only lines of at most 998 octets.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "buf.h"
#include "mime.h"

#define DATE    "Sun, 22 Nov 2026 21:30:46 +0000"
#define MSGID   "<0123456789abcdef0123456789abcdef@example.com>"
#define BOUNDARY "=_lc_test_boundary"

/* ---- helpers ---- */

/* Every line ends in CRLF (no bare CR or LF) and has at most max octets. */
static void
check_lines(const char *s, size_t n, size_t max)
{
	size_t col = 0;

	assert_true(n >= 2 && s[n - 2] == '\r' && s[n - 1] == '\n');
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\r') {
			assert_true(i + 1 < n && s[i + 1] == '\n');
			i++;
			col = 0;
			continue;
		}
		assert_int_not_equal(s[i], '\n');
		if (++col > max)
			fail_msg("line longer than %zu at offset %zu", max, i);
	}
}

/* Lines as above, and the header section is printable ASCII in lines that
 * are either "Name:..." or a continuation starting with a space. */
static void
check_message(const char *s, size_t n)
{
	const char *end = strstr(s, "\r\n\r\n"), *p, *q;

	check_lines(s, n, 998);
	assert_non_null(end);
	for (p = s; p < end + 2; p = q + 2) {
		q = strstr(p, "\r\n");
		for (const char *c = p; c < q; c++)
			assert_true(*c == ' ' || (*c > 32 && *c < 127));
		if (memmem(p, (size_t)(q - p), "=?utf-8?", 8))
			assert_true(q - p <= 76);       /* RFC 2047 */
		if (*p != ' ')
			assert_true(strcspn(p, ": \r") > 0 &&
			    p[strcspn(p, ": \r")] == ':');
		else
			assert_true(q > p + 1 && p[1] != ' ');
	}
}

static char *
slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	struct buf b = BUF_INIT;
	char chunk[4096];
	size_t r;

	if (!f)
		return NULL;
	while ((r = fread(chunk, 1, sizeof(chunk), f)) > 0)
		buf_append(&b, chunk, r);
	fclose(f);
	*len = b.len;
	return buf_steal(&b);
}

/* Render m (freeing it) and compare with the golden file NAME.eml. */
static void
golden(struct mime_msg *m, const char *name)
{
	const char *top = getenv("TOP_SRCDIR"), *upd = getenv("MIME_UPDATE_GOLDEN");
	char path[1024], err[256];
	struct buf out = BUF_INIT;
	char *want;
	size_t wlen = 0;

	snprintf(path, sizeof(path), "%s/tests/data/mime/%s.eml",
	    top ? top : ".", name);
	assert_int_equal(mime_render(m, 0, &out, err, sizeof(err)), 0);
	mime_free(m);
	check_message(out.data, out.len);
	if (upd && *upd == '1') {
		FILE *f = fopen(path, "wb");

		assert_non_null(f);
		assert_int_equal(fwrite(out.data, 1, out.len, f), out.len);
		assert_int_equal(fclose(f), 0);
		print_message("wrote %s\n", path);
	}
	want = slurp(path, &wlen);
	if (!want)
		fail_msg("cannot read %s (set TOP_SRCDIR)", path);
	if (wlen != out.len || memcmp(want, out.data, wlen) != 0) {
		print_message("--- got ---\n%s--- want (%s) ---\n%s", out.data,
		    path, want);
		fail_msg("%s differs from the golden file", name);
	}
	free(want);
	buf_free(&out);
}

/* A message with the fixed Date and Message-ID after the given headers. */
static struct mime_msg *
fixed(struct mime_msg *m)
{
	assert_int_equal(mime_header(m, "Date", DATE), 0);
	assert_int_equal(mime_header(m, "Message-ID", MSGID), 0);
	assert_int_equal(mime_set_boundary(m, BOUNDARY), 0);
	return m;
}

static int
hexval(int c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ?
	    c - 'A' + 10 : -1;
}

/* RFC 2045 quoted-printable decoder (strict: uppercase hex). */
static int
qp_decode(const char *s, size_t n, struct buf *out)
{
	for (size_t i = 0; i < n; i++) {
		if (s[i] != '=') {
			buf_putc(out, s[i]);
			continue;
		}
		if (i + 2 < n && s[i + 1] == '\r' && s[i + 2] == '\n') {
			i += 2;
			continue;
		}
		if (i + 2 >= n || hexval(s[i + 1]) < 0 || hexval(s[i + 2]) < 0)
			return -1;
		buf_putc(out, (char)(hexval(s[i + 1]) << 4 | hexval(s[i + 2])));
		i += 2;
	}
	return 0;
}

/* Base64 decoder; CRLF skipped, anything else not in the alphabet fails. */
static int
b64_decode(const char *s, size_t n, struct buf *out)
{
	static const char tab[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	uint32_t v = 0;
	int bits = 0, pad = 0;
	const char *p;

	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\r' || s[i] == '\n')
			continue;
		if (s[i] == '=') {
			pad++;
			continue;
		}
		if (pad || !(p = strchr(tab, s[i])) || !s[i])
			return -1;
		v = v << 6 | (uint32_t)(p - tab);
		if ((bits += 6) >= 8) {
			bits -= 8;
			buf_putc(out, (char)(v >> bits & 0xff));
		}
	}
	return 0;
}

static int
valid_utf8(const unsigned char *s, size_t n)
{
	for (size_t i = 0; i < n; ) {
		size_t l = s[i] < 0x80 ? 1 : s[i] >= 0xc2 && s[i] < 0xe0 ? 2 :
		    s[i] >= 0xe0 && s[i] < 0xf0 ? 3 : s[i] >= 0xf0 &&
		    s[i] < 0xf5 ? 4 : 0;

		if (!l || i + l > n)
			return 0;
		for (size_t j = 1; j < l; j++)
			if ((s[i + j] & 0xc0) != 0x80)
				return 0;
		i += l;
	}
	return 1;
}

/* Decode one encoded-word w (n chars) into out; -1 if malformed, longer
 * than 75 characters, or its text is not whole UTF-8 characters. */
static int
ew_decode(const char *w, size_t n, struct buf *out)
{
	struct buf t = BUF_INIT;
	int rc = -1;

	if (n > 75 || n < 12 || strncmp(w, "=?utf-8?", 8) != 0 ||
	    w[9] != '?' || w[n - 2] != '?' || w[n - 1] != '=')
		return -1;
	if (w[8] == 'B')
		rc = b64_decode(w + 10, n - 12, &t);
	else if (w[8] == 'Q') {
		rc = 0;
		for (size_t i = 10; i < n - 2; i++) {
			if (w[i] == '_')
				buf_putc(&t, ' ');
			else if (w[i] == '=' && i + 2 < n - 1 &&
			    hexval(w[i + 1]) >= 0 && hexval(w[i + 2]) >= 0) {
				buf_putc(&t, (char)(hexval(w[i + 1]) << 4 |
				    hexval(w[i + 2])));
				i += 2;
			} else if (w[i] > ' ' && w[i] < 127 && w[i] != '?' &&
			    w[i] != '=')
				buf_putc(&t, w[i]);
			else
				rc = -1;
		}
	}
	if (rc == 0 && !valid_utf8((unsigned char *)buf_str(&t), t.len))
		rc = -1;
	if (rc == 0)
		buf_append(out, buf_str(&t), t.len);
	buf_free(&t);
	return rc;
}

/* Unfold the header value v and decode its encoded-words (RFC 2047: the
 * space between two encoded-words is dropped). */
static int
header_decode(const char *v, struct buf *out)
{
	struct buf u = BUF_INIT;
	const char *w, *e;
	int prev = -1, rc = 0;

	for (; *v; v++)
		if (*v != '\r' && *v != '\n')
			buf_putc(&u, *v);
	for (w = buf_str(&u) + (u.len > 0); *w && rc == 0; w = *e ? e + 1 : e) {
		size_t n;
		int isew;

		if ((e = strchr(w, ' ')) == NULL)
			e = w + strlen(w);
		n = (size_t)(e - w);
		isew = n >= 4 && strncmp(w, "=?", 2) == 0 &&
		    strncmp(e - 2, "?=", 2) == 0;
		if (prev >= 0 && !(prev && isew))
			buf_putc(out, ' ');
		if (isew)
			rc = ew_decode(w, n, out);
		else
			buf_append(out, w, n);
		prev = isew;
	}
	buf_free(&u);
	return rc;
}

/* ---- golden files ---- */

static void
golden_ascii_text(void **state)
{
	struct mime_msg *m = mime_new();
	const char *text = "Hi Bob,\n\nYour quote #1234 is ready:\n"
	    "https://example.com/q/1234\n\n-- \nLeadcast Sales\n";

	(void)state;
	assert_int_equal(mime_address_header(m, "From", "Leadcast Sales",
	    "sales@example.com"), 0);
	assert_int_equal(mime_address_header(m, "To", NULL,
	    "bob@example.org"), 0);
	assert_int_equal(mime_header(m, "Subject", "Your quote is ready"), 0);
	assert_int_equal(mime_set_text(m, text, strlen(text)), 0);
	golden(fixed(m), "ascii_text");
}

static void
golden_utf8_multipart(void **state)
{
	struct mime_msg *m = mime_new();
	const char *text = "Héllo Zoë,\n\nThe café opens at 9 — see you "
	    "there.\n\nJosé\n";
	const char *html = "<p>Héllo <b>Zoë</b>,</p>\n<p>The café opens at 9 "
	    "&mdash; see you there.</p>\n<p>José</p>\n";

	(void)state;
	assert_int_equal(mime_address_header(m, "From", "José García",
	    "jose@example.com"), 0);
	assert_int_equal(mime_address_header(m, "To", "Zoë",
	    "zoe@example.net"), 0);
	assert_int_equal(mime_header(m, "Subject",
	    "Ünïcödé test: café & crème"), 0);
	assert_int_equal(mime_set_text(m, text, strlen(text)), 0);
	assert_int_equal(mime_set_html(m, html, strlen(html)), 0);
	golden(fixed(m), "utf8_multipart");
}

static void
golden_long_lines(void **state)
{
	struct mime_msg *m = mime_new();
	struct buf text = BUF_INIT, html = BUF_INIT;

	(void)state;
	buf_puts(&text, "A long paragraph:");
	for (int i = 0; i < 30; i++)
		buf_printf(&text, " word%02d", i);
	buf_puts(&text, "\nTrailing spaces and a tab  \t\nEquals: a=b, "
	    "x==y\n\n");
	for (int i = 0; i < 90; i++)
		buf_putc(&text, (char)('a' + i % 26));
	buf_puts(&text, "\nno newline at the end");
	buf_puts(&html, "<html><body><p>");
	for (int i = 0; i < 60; i++)
		buf_printf(&html, "<a href=\"https://example.com/%d\">l%d</a> ",
		    i, i);
	buf_puts(&html, "</p></body></html>");
	assert_int_equal(mime_address_header(m, "From", NULL,
	    "news@example.com"), 0);
	assert_int_equal(mime_address_header(m, "To", NULL,
	    "reader@example.org"), 0);
	assert_int_equal(mime_header(m, "Subject", "This subject is long "
	    "enough that it has to be folded over more than one line, at "
	    "whitespace, so that no line of the header passes seventy-eight "
	    "characters"), 0);
	assert_int_equal(mime_header(m, "List-Unsubscribe",
	    "<https://example.com/u/0123456789abcdef0123456789abcdef"
	    "0123456789abcdef0123456789abcdef0123456789abcdef>, "
	    "<mailto:unsubscribe@example.com?subject=unsubscribe>"), 0);
	assert_int_equal(mime_header(m, "List-Unsubscribe-Post",
	    "List-Unsubscribe=One-Click"), 0);
	assert_int_equal(mime_set_text(m, text.data, text.len), 0);
	assert_int_equal(mime_set_html(m, html.data, html.len), 0);
	buf_free(&text);
	buf_free(&html);
	golden(fixed(m), "long_lines");
}

static void
golden_subject_emoji(void **state)
{
	struct mime_msg *m = mime_new();
	const char *text = "See you at the cafe.\n";

	(void)state;
	assert_int_equal(mime_address_header(m, "From", "Café Events",
	    "events@example.com"), 0);
	assert_int_equal(mime_address_header(m, "To", NULL,
	    "guest@example.org"), 0);
	assert_int_equal(mime_header(m, "Subject", "🎉 Big news: Crème brûlée "
	    "— 20% off at the naïve café 🍰 this weekend only, über-deal for "
	    "everyone"), 0);
	assert_int_equal(mime_set_text(m, text, strlen(text)), 0);
	golden(fixed(m), "subject_emoji");
}

static void
golden_display_names(void **state)
{
	struct mime_msg *m = mime_new();
	const char *text = "Names.\n";

	(void)state;
	assert_int_equal(mime_address_header(m, "From", "Doe, John \"JD\"",
	    "john@example.com"), 0);
	assert_int_equal(mime_address_header(m, "To", "Müller, Jürgen",
	    "j.mueller@example.de"), 0);
	assert_int_equal(mime_address_header(m, "To", "O'Brien",
	    "ob@example.ie"), 0);
	assert_int_equal(mime_address_header(m, "To", "",
	    "\"first last\"@example.com"), 0);
	assert_int_equal(mime_address_header(m, "Reply-To", "John Q. Public",
	    "jqp@example.com"), 0);
	assert_int_equal(mime_address_header(m, "Cc", "A very long display "
	    "name, with a comma, that is too long for a quoted string on one "
	    "line", "long@example.com"), 0);
	assert_int_equal(mime_address_header(m, "Cc", "back\\slash",
	    "bs@example.com"), 0);
	assert_int_equal(mime_header(m, "Subject", "Names"), 0);
	assert_int_equal(mime_set_text(m, text, strlen(text)), 0);
	golden(fixed(m), "display_names");
}

static void
golden_header_injection(void **state)
{
	struct mime_msg *m = mime_new();
	const char *text = "Body\r\n\r\nBcc: not-a-header@example.com\n";
	const char *why;

	(void)state;
	assert_int_equal(mime_address_header(m, "From",
	    "Eve\r\nBcc: victim@example.com", "eve@example.com"), 0);
	assert_int_equal(mime_address_header(m, "To", NULL,
	    "bob@example.com\r\nBcc: x@y.com"), -1);
	assert_int_equal(mime_address_header(m, "To", NULL,
	    "bob@example.com\nBcc: x@y.com"), -1);
	assert_false(mime_addr_valid("bob@example.com\r\n", &why));
	assert_string_equal(why, "address contains CR or LF");
	assert_int_equal(mime_address_header(m, "To", NULL,
	    "bob@example.com"), 0);
	assert_int_equal(mime_header(m, "Subject", "Hi\r\nBcc: x@y"), 0);
	assert_int_equal(mime_header(m, "X-Lead-Source",
	    "web\nform\r\n\r\n<b>x</b>\r\rend\xc2\x85" "bad\xff\xe2\x80\xa8."), 0);
	assert_int_equal(mime_header(m, "Bcc:\r\nX", "x"), -1);
	assert_int_equal(mime_header(m, "X-Bad\n", "x"), -1);
	assert_int_equal(mime_set_text(m, text, strlen(text)), 0);
	golden(fixed(m), "header_injection");
}

static void
golden_japanese(void **state)
{
	struct mime_msg *m = mime_new();
	const char *text = "お問い合わせいただき、ありがとうございます。\n"
	    "担当者より二営業日以内にご連絡いたします。\n"
	    "今しばらくお待ちくださいますよう、よろしくお願い申し上げます。\n";

	(void)state;
	assert_int_equal(mime_address_header(m, "From", "営業部",
	    "sales@example.jp"), 0);
	assert_int_equal(mime_address_header(m, "To", "山田 太郎",
	    "yamada@example.jp"), 0);
	assert_int_equal(mime_header(m, "Subject", "お問い合わせありがとうござい"
	    "ます。担当者より折り返しご連絡いたします"), 0);
	assert_int_equal(mime_set_text(m, text, strlen(text)), 0);
	golden(fixed(m), "japanese");
}

/* The injection attempt came out as one line each, and no Bcc field. */
static void
injection_is_one_line(void **state)
{
	struct mime_msg *m = mime_new();
	struct buf out = BUF_INIT;
	char err[128];

	(void)state;
	assert_int_equal(mime_header(m, "Subject", "Hi\r\nBcc: x@y"), 0);
	assert_int_equal(mime_header(m, "X-A", "\r\n\r\nbody?"), 0);
	assert_int_equal(mime_address_header(m, "From", "x\r\nBcc: y@z.com",
	    "a@example.com"), 0);
	assert_int_equal(mime_render(m, 0, &out, err, sizeof(err)), 0);
	check_message(out.data, out.len);
	assert_int_equal(strncmp(out.data, "Subject: Hi Bcc: x@y\r\n", 22), 0);
	assert_non_null(strstr(out.data, "\r\nX-A: body?\r\n"));
	assert_non_null(strstr(out.data, "\r\nFrom: \"x Bcc: y@z.com\" "
	    "<a@example.com>\r\n"));
	assert_null(strstr(out.data, "\r\nBcc"));
	assert_int_not_equal(strncmp(out.data, "Bcc", 3), 0);
	buf_free(&out);
	mime_free(m);
}

/* ---- quoted-printable and base64 ---- */

static void
qp_check_roundtrip(const char *in, size_t len)
{
	struct buf enc = BUF_INIT, dec = BUF_INIT;
	size_t col = 0;

	mime_qp_encode(in, len, &enc);
	assert_false(enc.overflow);
	for (size_t i = 0; i < enc.len; i++) {
		char c = enc.data[i];

		if (c == '\r') {
			assert_true(enc.data[i + 1] == '\n');
			/* no whitespace before a line break */
			assert_true(i == 0 || (enc.data[i - 1] != ' ' &&
			    enc.data[i - 1] != '\t'));
			i++;
			col = 0;
			continue;
		}
		assert_true(c == ' ' || c == '\t' || (c > 32 && c < 127));
		assert_true(++col <= 76);
	}
	if (enc.len)
		assert_true(enc.data[enc.len - 1] != ' ' &&
		    enc.data[enc.len - 1] != '\t');
	assert_int_equal(qp_decode(buf_str(&enc), enc.len, &dec), 0);
	assert_int_equal(dec.len, len);
	assert_memory_equal(buf_str(&dec), len ? in : "", len);
	buf_free(&enc);
	buf_free(&dec);
}

static void
qp_roundtrip(void **state)
{
	static const char *cases[] = {
		"", "=", "a ", "a\t", "a \r\nb", "tab\t\r\n", " \r\n \r\n",
		"bare\nLF and bare\rCR", "caf\xc3\xa9 = 100%\r\n",
		"\r\n\r\n", "x\r", "=\r\n=",
	};
	char line[300];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		qp_check_roundtrip(cases[i], strlen(cases[i]));
	/* a long line of each length near the limit, of '=' and of spaces */
	for (size_t n = 70; n < 160; n++) {
		memset(line, 'x', n);
		qp_check_roundtrip(line, n);
		memset(line, '=', n);
		qp_check_roundtrip(line, n);
		memset(line, ' ', n);
		qp_check_roundtrip(line, n);
		line[n - 1] = '\xff';
		qp_check_roundtrip(line, n);
	}
	srand(42);
	for (int r = 0; r < 300; r++) {
		size_t n = (size_t)rand() % sizeof(line);

		for (size_t i = 0; i < n; i++)
			line[i] = r % 2 ? (char)(rand() & 0xff) :
			    " \t\r\naZ=.\xc3\xa9"[rand() % 11];
		qp_check_roundtrip(line, n);
	}
}

static void
b64_roundtrip(void **state)
{
	unsigned char in[400], ref[600];
	struct buf enc = BUF_INIT, dec = BUF_INIT, want = BUF_INIT;

	(void)state;
	srand(7);
	for (size_t n = 0; n <= sizeof(in); n++) {
		int rl;

		for (size_t i = 0; i < n; i++)
			in[i] = (unsigned char)rand();
		buf_reset(&enc);
		buf_reset(&dec);
		buf_reset(&want);
		mime_b64_encode(in, n, &enc);
		/* same as OpenSSL's, in lines of 76 with CRLF */
		rl = EVP_EncodeBlock(ref, in, (int)n);
		for (int i = 0; i < rl; i += 76) {
			buf_append(&want, ref + i, rl - i < 76 ? (size_t)(rl - i) :
			    76);
			buf_puts(&want, "\r\n");
		}
		assert_int_equal(enc.len, want.len);
		assert_memory_equal(buf_str(&enc), buf_str(&want), enc.len);
		if (n)
			check_lines(enc.data, enc.len, 76);
		assert_int_equal(b64_decode(buf_str(&enc), enc.len, &dec), 0);
		assert_int_equal(dec.len, n);
		assert_memory_equal(buf_str(&dec), n ? in : (unsigned char *)"",
		    n);
	}
	buf_free(&enc);
	buf_free(&dec);
	buf_free(&want);
}

/* Bodies: bare CR and LF become CRLF, in every encoding. */
static void
body_line_ends_normalized(void **state)
{
	struct mime_msg *m = mime_new();
	struct buf out = BUF_INIT;
	const char *body;
	char err[128];

	(void)state;
	assert_int_equal(mime_set_text(m, "a\nb\rc\r\nd\n\re", 11), 0);
	assert_int_equal(mime_render(m, 0, &out, err, sizeof(err)), 0);
	check_message(out.data, out.len);
	assert_non_null(strstr(out.data, "Content-Transfer-Encoding: 7bit\r\n"));
	body = strstr(out.data, "\r\n\r\n") + 4;
	assert_string_equal(body, "a\r\nb\r\nc\r\nd\r\n\r\ne\r\n");
	buf_free(&out);
	mime_free(m);
}

/*
 * The body encoder (one pass over the caller's text, line ends normalized
 * on the way) writes exactly what normalizing first and then
 * mime_qp_encode() or mime_b64_encode() would, and picks the encoding by
 * the same rule (7bit if it can, else the shorter): checked on random
 * text rich in line ends, blanks, '=' and 8-bit bytes, of every length
 * around the line limits.
 */
static void
ref_encode(const char *s, size_t len, struct buf *out, const char **cte)
{
	struct buf norm = BUF_INIT, qp = BUF_INIT, b64 = BUF_INIT;
	size_t col = 0;
	int is7 = 1;

	for (size_t i = 0; i < len; i++) {
		if (s[i] == '\r' || s[i] == '\n') {
			buf_append(&norm, "\r\n", 2);
			i += s[i] == '\r' && i + 1 < len && s[i + 1] == '\n';
			col = 0;
			continue;
		}
		buf_putc(&norm, s[i]);
		if (((unsigned char)s[i] < ' ' && s[i] != '\t') ||
		    (unsigned char)s[i] >= 0x7f || ++col > 78)
			is7 = 0;
	}
	mime_qp_encode(buf_str(&norm), norm.len, &qp);
	mime_b64_encode(buf_str(&norm), norm.len, &b64);
	*cte = is7 ? "7bit" : b64.len < qp.len ? "base64" : "quoted-printable";
	if (is7)
		buf_append(out, buf_str(&norm), norm.len);
	else if (b64.len < qp.len)
		buf_append(out, buf_str(&b64), b64.len);
	else
		buf_append(out, buf_str(&qp), qp.len);
	if (out->len < 2 || memcmp(out->data + out->len - 2, "\r\n", 2) != 0)
		buf_append(out, "\r\n", 2);
	buf_free(&norm);
	buf_free(&qp);
	buf_free(&b64);
}

static void
body_encoding_matches_reference(void **state)
{
	static const char alphabet[] = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "bcdefghijklmnopqrstuvwxyz0123456789.,;:<>\"'&%   \t\t==\r\n\n\n"
	    "\r\x01\x7f\xc3\xa9\xe2\x82\xac\xff";
	unsigned seed = 12345;
	char text[700];
	int n7 = 0, nqp = 0, nb64 = 0;

	(void)state;
	for (int round = 0; round < 3000; round++) {
		struct mime_msg *m = mime_new();
		struct buf out = BUF_INIT, want = BUF_INIT;
		size_t len = (size_t)(round % 7 == 0 ? round % 170 : round % 700);
		const char *cte, *body;
		char hdr[128], err[128];
		int kind = round % 3;   /* 7bit-able, mixed, mostly 8-bit */

		for (size_t i = 0; i < len; i++) {
			unsigned r;

			seed = seed * 1103515245u + 12345u;
			r = seed >> 16;
			text[i] = kind == 0 ? "abcd efgh\n"[r % 10] : kind == 1 ?
			    alphabet[r % (sizeof(alphabet) - 1)] :
			    r % 9 == 0 ? '\n' : (char)(0x80 + r % 128);
		}
		assert_int_equal(mime_set_text(m, text, len), 0);
		assert_int_equal(mime_render(m, 0, &out, err, sizeof(err)), 0);
		check_message(out.data, out.len);
		ref_encode(text, len, &want, &cte);
		n7 += cte[0] == '7';
		nqp += cte[0] == 'q';
		nb64 += cte[0] == 'b';
		snprintf(hdr, sizeof(hdr), "Content-Transfer-Encoding: %s\r\n",
		    cte);
		assert_non_null(strstr(out.data, hdr));
		body = strstr(out.data, "\r\n\r\n") + 4;
		assert_int_equal(out.len - (size_t)(body - out.data), want.len);
		assert_memory_equal(body, want.data, want.len);
		buf_free(&out);
		buf_free(&want);
		mime_free(m);
	}
	/* every encoding was chosen, many times */
	assert_true(n7 > 100 && nqp > 100 && nb64 > 100);
}

/* ---- RFC 2047 ---- */

static void
ew_case(const char *value, const char *want, size_t maxline)
{
	struct buf enc = BUF_INIT, dec = BUF_INIT, line = BUF_INIT;
	const char *p;

	buf_puts(&line, "Subject:");
	assert_int_equal(mime_encode_header_value(value, 7, &enc), 0);
	buf_append(&line, buf_str(&enc), enc.len);
	buf_puts(&line, "\r\n");
	check_lines(line.data, line.len, maxline);
	/* each encoded-word at most 75 characters */
	for (p = buf_str(&enc); (p = strstr(p, "=?utf-8?")) != NULL; p += 2) {
		const char *e = strstr(p + 10, "?=");

		assert_non_null(e);
		assert_true(e + 2 - p <= 75);
		p = e;
	}
	assert_int_equal(header_decode(buf_str(&enc), &dec), 0);
	assert_string_equal(buf_str(&dec), want);
	buf_free(&enc);
	buf_free(&dec);
	buf_free(&line);
}

static void
encoded_words_decode(void **state)
{
	struct buf big = BUF_INIT, jp = BUF_INIT;

	(void)state;
	ew_case("plain ascii", "plain ascii", 76);
	ew_case("", "", 76);
	ew_case("Crème brûlée", "Crème brûlée", 76);
	ew_case("🎉🍰 party", "🎉🍰 party", 76);
	ew_case("a 🎉 b c 🍰 d", "a 🎉 b c 🍰 d", 76);
	ew_case("  lots   of\tspace\r\n and\x01" "controls ",
	    "lots of space and controls", 76);
	ew_case("looks =?utf-8?Q?like?= one", "looks =?utf-8?Q?like?= one", 76);
	ew_case("=?a?", "=?a?", 76);
	ew_case("bad \xff\xfe utf8 \xc3", "bad \xef\xbf\xbd\xef\xbf\xbd utf8 "
	    "\xef\xbf\xbd", 76);
	ew_case("ü_?=x (a) \"q\"", "ü_?=x (a) \"q\"", 76);
	for (int i = 0; i < 40; i++)
		buf_puts(&jp, "日本語");
	ew_case(jp.data, jp.data, 76);
	buf_reset(&jp);
	for (int i = 0; i < 50; i++)
		buf_puts(&jp, "é🎉x ");
	jp.data[--jp.len] = '\0';      /* no trailing space */
	ew_case(jp.data, jp.data, 76);
	buf_free(&jp);
	/* a word too long to fold is encoded in pieces; lines stay short */
	for (int i = 0; i < 1000; i++)
		buf_putc(&big, (char)('a' + i % 26));
	ew_case(big.data, big.data, 76);
	buf_free(&big);
}

/* ---- addresses ---- */

static void
addresses(void **state)
{
	static const char *ok[] = {
		"user@example.com", "first.last@example.com",
		"user+tag@example.com", "user+tag+more@mail.sub.example.co.uk",
		"\"john doe\"@example.com", "\"a@b\"@example.com",
		"\"quo\\\"te\"@example.com", "o'brien@example.ie",
		"x@a-b.example", "USER@EXAMPLE.COM", "user@xn--bcher-kva.example",
		"a@b.co", "!#$%&'*+-/=?^_`{|}~@example.com", "1234@123.example",
		"user@example.museum",
	};
	static const struct { const char *a, *why; } bad[] = {
		{ "", "empty address" },
		{ "plainaddress", "no @" },
		{ "a@b@example.com", "more than one @" },
		{ "@example.com", "empty local part" },
		{ ".user@example.com", "local part starts with a dot" },
		{ "user.@example.com", "local part ends with a dot" },
		{ "us..er@example.com", "local part has two dots in a row" },
		{ "user@", "empty domain" },
		{ "user@example", "domain needs at least two labels (like "
		    "example.com)" },
		{ "user@-example.com", "domain label starts with a hyphen" },
		{ "user@example-.com", "domain label ends with a hyphen" },
		{ "user@exa_mple.com", NULL },
		{ "user@example..com", NULL },
		{ "user@.example.com", NULL },
		{ "user@example.com.", "domain ends with a dot" },
		{ "user name@example.com", "address contains a space" },
		{ "user@exam ple.com", "domain contains a space" },
		{ "user@example.com\r\nBcc: x@y.com", "address contains CR or LF" },
		{ "user\n@example.com", "address contains CR or LF" },
		{ "us\ter@example.com", "address contains a control character" },
		{ "<user@example.com>", NULL },
		{ "user(comment)@example.com", NULL },
		{ "user@[192.168.0.1]", "address literals ([...]) are not "
		    "accepted" },
		{ "user@1.2.3.4", "top-level domain is numeric" },
		{ "jos\xc3\xa9@example.com", NULL },
		{ "user@b\xc3\xbc" "cher.example", NULL },
		{ "\"unterminated@example.com", "unterminated quoted local part" },
		{ "\"\"@example.com", "empty local part" },
		{ "\"a\"b@example.com", "quoted local part must be followed by @" },
	};
	char local[80], label[80], addr[400];
	const char *why;

	(void)state;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		why = "unset";
		if (!mime_addr_valid(ok[i], &why))
			fail_msg("%s rejected: %s", ok[i], why);
		assert_null(why);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why = NULL;
		if (mime_addr_valid(bad[i].a, &why))
			fail_msg("%s accepted", bad[i].a);
		assert_non_null(why);
		if (bad[i].why)
			assert_string_equal(why, bad[i].why);
	}
	assert_false(mime_addr_valid(NULL, NULL));
	/* length limits: local 64, label 63, domain 253, total 254 */
	memset(local, 'l', 64);
	local[64] = '\0';
	snprintf(addr, sizeof(addr), "%s@example.com", local);
	assert_true(mime_addr_valid(addr, NULL));
	snprintf(addr, sizeof(addr), "%sl@example.com", local);
	assert_false(mime_addr_valid(addr, &why));
	assert_string_equal(why, "local part longer than 64 octets");
	memset(label, 'd', 63);
	label[63] = '\0';
	snprintf(addr, sizeof(addr), "a@%s.com", label);
	assert_true(mime_addr_valid(addr, NULL));
	snprintf(addr, sizeof(addr), "a@%sd.com", label);
	assert_false(mime_addr_valid(addr, &why));
	assert_string_equal(why, "domain label longer than 63 octets");
	snprintf(addr, sizeof(addr), "%s@%s.%s.%s.com", local, label, label,
	    label);         /* 64 + 1 + 3*64 + 3 = 260 */
	assert_false(mime_addr_valid(addr, &why));
	assert_string_equal(why, "address longer than 254 octets");
	snprintf(addr, sizeof(addr), "%.60s@%s.%s.%s.com", local, label,
	    label, label);  /* 60 + 1 + 195 = 256 */
	assert_false(mime_addr_valid(addr, NULL));
	snprintf(addr, sizeof(addr), "%.58s@%s.%s.%s.com", local, label,
	    label, label);  /* 254 */
	assert_true(mime_addr_valid(addr, NULL));
	/* the address header refuses what the check refuses */
	{
		struct mime_msg *m = mime_new();

		assert_int_equal(mime_address_header(m, "To", "x", "nope"), -1);
		assert_int_equal(mime_address_header(m, "To", "x", NULL), -1);
		mime_free(m);
	}
}

/* ---- limits, encodings, generated fields ---- */

static void
size_limit(void **state)
{
	struct mime_msg *m = mime_new();
	struct buf out = BUF_INIT;
	char err[128], want[128];
	size_t full;

	(void)state;
	assert_int_equal(mime_set_text(m, "hello\n", 6), 0);
	fixed(m);
	assert_int_equal(mime_render(m, 0, &out, err, sizeof(err)), 0);
	full = out.len;
	buf_reset(&out);
	buf_puts(&out, "prefix");
	assert_int_equal(mime_render(m, full, &out, err, sizeof(err)), 0);
	assert_int_equal(out.len, 6 + full);
	buf_reset(&out);
	buf_puts(&out, "prefix");
	assert_int_equal(mime_render(m, full - 1, &out, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "message is %zu bytes, over the limit of "
	    "%zu", full, full - 1);
	assert_string_equal(err, want);
	assert_string_equal(buf_str(&out), "prefix");     /* unchanged */
	/* an output buffer with a limit is an error too (overflow set) */
	buf_free(&out);
	buf_init(&out, 10);
	assert_int_equal(mime_render(m, 0, &out, err, sizeof(err)), -1);
	assert_int_equal(out.len, 0);
	assert_true(out.overflow);
	assert_non_null(strstr(err, "output buffer's limit"));
	/* both limits passed: max_size is the one told, out unchanged */
	buf_free(&out);
	buf_init(&out, full - 2);
	buf_puts(&out, "prefix");
	assert_int_equal(mime_render(m, full - 1, &out, err, sizeof(err)), -1);
	assert_string_equal(err, want);
	assert_string_equal(buf_str(&out), "prefix");
	assert_false(out.overflow);
	/* within its limit, out keeps it */
	buf_free(&out);
	buf_init(&out, full + 6);
	buf_puts(&out, "prefix");
	assert_int_equal(mime_render(m, 0, &out, err, sizeof(err)), 0);
	assert_int_equal(out.limit, full + 6);
	assert_int_equal(buf_append(&out, "x", 1), -1);
	buf_free(&out);
	mime_free(m);
}

static const char *
render_cte(const char *text, const char *html, struct buf *out)
{
	struct mime_msg *m = mime_new();
	char err[128];
	const char *p;

	if (text)
		assert_int_equal(mime_set_text(m, text, strlen(text)), 0);
	if (html)
		assert_int_equal(mime_set_html(m, html, strlen(html)), 0);
	buf_reset(out);
	assert_int_equal(mime_render(m, 0, out, err, sizeof(err)), 0);
	mime_free(m);
	check_message(out->data, out->len);
	p = strstr(out->data, "Content-Transfer-Encoding: ");
	assert_non_null(p);
	return p + 27;
}

static void
chooses_encoding(void **state)
{
	struct buf out = BUF_INIT, dec = BUF_INIT;
	const char *jp = "お問い合わせいただき、ありがとうございます。担当者より"
	    "二営業日以内にご連絡いたします。\n";
	const char *p;

	(void)state;
	p = render_cte("short ascii lines\n", NULL, &out);
	assert_int_equal(strncmp(p, "7bit\r\n", 6), 0);
	p = render_cte("Un café crème, s'il vous plaît.\n", NULL, &out);
	assert_int_equal(strncmp(p, "quoted-printable\r\n", 18), 0);
	/* mostly non-ASCII: base64 is shorter, and decodes back */
	p = render_cte(jp, NULL, &out);
	assert_int_equal(strncmp(p, "base64\r\n", 8), 0);
	p = strstr(p, "\r\n\r\n") + 4;
	assert_int_equal(b64_decode(p, strlen(p), &dec), 0);
	assert_int_equal(strncmp(buf_str(&dec), jp, strlen(jp) - 1), 0);
	assert_string_equal(buf_str(&dec) + strlen(jp) - 1, "\r\n");
	/* a long ASCII line is not 7bit */
	buf_reset(&dec);
	for (int i = 0; i < 100; i++)
		buf_putc(&dec, 'x');
	p = render_cte(dec.data, NULL, &out);
	assert_int_equal(strncmp(p, "quoted-printable\r\n", 18), 0);
	/* HTML only */
	p = render_cte(NULL, "<p>hi</p>", &out);
	assert_non_null(strstr(out.data, "Content-Type: text/html; "
	    "charset=utf-8\r\n"));
	assert_null(strstr(out.data, "multipart"));
	/* no body at all: an empty text/plain */
	p = render_cte(NULL, NULL, &out);
	assert_non_null(strstr(out.data, "Content-Type: text/plain; "
	    "charset=utf-8\r\n"));
	buf_free(&out);
	buf_free(&dec);
}

static void
generated_fields(void **state)
{
	struct mime_msg *m = mime_new(), *m2 = mime_new();
	struct buf a = BUF_INIT, b = BUF_INIT, c = BUF_INIT;
	char err[128], id[100], date[40];
	const char *p, *bnd;

	(void)state;
	mime_date(date, sizeof(date), 1795383046);
	assert_string_equal(date, DATE);
	mime_date(date, sizeof(date), 0);
	assert_string_equal(date, "Thu, 01 Jan 1970 00:00:00 +0000");
	assert_int_equal(mime_message_id(id, sizeof(id), "example.com"), 0);
	assert_int_equal(strlen(id), 46);
	assert_int_equal(strspn(id + 1, "0123456789abcdef"), 32);
	assert_string_equal(id + 33, "@example.com>");
	assert_int_equal(mime_message_id(id, 20, "example.com"), -1);
	assert_int_equal(mime_message_id(id, sizeof(id), "bad domain"), -1);
	assert_int_equal(mime_message_id(id, sizeof(id), "a\r\nb"), -1);

	assert_int_equal(mime_address_header(m, "From", NULL,
	    "me@mail.example.org"), 0);
	assert_int_equal(mime_set_text(m, "t", 1), 0);
	assert_int_equal(mime_set_html(m, "h", 1), 0);
	assert_int_equal(mime_render(m, 0, &a, err, sizeof(err)), 0);
	assert_int_equal(mime_render(m, 0, &b, err, sizeof(err)), 0);
	assert_string_equal(a.data, b.data);    /* fixed by the first render */
	p = strstr(a.data, "\r\nDate: ");
	assert_non_null(p);
	assert_int_equal(strcspn(p + 8, "\r"), strlen(DATE));
	assert_int_equal(strncmp(p + 8 + strlen(DATE) - 6, " +0000", 6), 0);
	p = strstr(a.data, "\r\nMessage-ID: <");
	assert_non_null(p);
	assert_int_equal(strncmp(p + 15 + 32, "@mail.example.org>\r\n", 20), 0);
	bnd = strstr(a.data, "boundary=\"=_lc_");
	assert_non_null(bnd);
	assert_int_equal(strspn(bnd + 15, "0123456789abcdef"), 32);
	check_message(a.data, a.len);

	/* another message gets another Message-ID and boundary */
	assert_int_equal(mime_set_id_domain(m2, "ids.example.net"), 0);
	assert_int_equal(mime_set_id_domain(m2, "bad_domain"), -1);
	assert_int_equal(mime_address_header(m2, "From", NULL,
	    "me@mail.example.org"), 0);
	assert_int_equal(mime_set_text(m2, "t", 1), 0);
	assert_int_equal(mime_set_html(m2, "h", 1), 0);
	assert_int_equal(mime_render(m2, 0, &c, err, sizeof(err)), 0);
	assert_non_null(strstr(c.data, "@ids.example.net>\r\n"));
	assert_int_not_equal(strncmp(strstr(c.data, "Message-ID: "),
	    strstr(a.data, "Message-ID: "), 47), 0);
	assert_int_not_equal(strncmp(strstr(c.data, "boundary="), bnd, 47), 0);
	buf_free(&a);
	buf_free(&b);
	buf_free(&c);
	mime_free(m);
	mime_free(m2);
}

static void
bad_input(void **state)
{
	struct mime_msg *m = mime_new();
	struct buf out = BUF_INIT;
	char err[128], *big;

	(void)state;
	assert_int_equal(mime_header(m, "", "x"), -1);
	assert_int_equal(mime_header(m, NULL, "x"), -1);
	assert_int_equal(mime_header(m, "Sub ject", "x"), -1);
	assert_int_equal(mime_header(m, "Sub:ject", "x"), -1);
	assert_int_equal(mime_header(m, "Subj\xc3\xa9", "x"), -1);
	assert_int_equal(mime_header(m, "content-type", "text/evil"), -1);
	assert_int_equal(mime_header(m, "MIME-Version", "2.0"), -1);
	assert_int_equal(mime_header(m, "Content-Transfer-Encoding", "8bit"),
	    -1);
	assert_int_equal(mime_set_boundary(m, ""), -1);
	assert_int_equal(mime_set_boundary(m, "ends in space "), -1);
	assert_int_equal(mime_set_boundary(m, "quote\"s"), -1);
	assert_int_equal(mime_set_boundary(m, "crlf\r\n"), -1);
	big = malloc(MIME_MAX_VALUE + 2);
	memset(big, 'x', MIME_MAX_VALUE + 1);
	big[MIME_MAX_VALUE + 1] = '\0';
	assert_int_equal(mime_header(m, "Subject", big), -1);
	big[MIME_MAX_VALUE] = '\0';
	assert_int_equal(mime_header(m, "Subject", big), 0);
	free(big);
	assert_int_equal(mime_header(m, "Empty", ""), 0);
	assert_int_equal(mime_header(m, "Null", NULL), 0);
	/* a fixed boundary that occurs in a body */
	assert_int_equal(mime_set_boundary(m, "abc"), 0);
	assert_int_equal(mime_set_text(m, "xxabcxx", 7), 0);
	assert_int_equal(mime_set_html(m, "<p>", 3), 0);
	buf_puts(&out, "kept");
	assert_int_equal(mime_render(m, 0, &out, err, sizeof(err)), -1);
	assert_string_equal(err, "the boundary occurs in the plain body");
	assert_string_equal(out.data, "kept");
	assert_int_equal(mime_set_boundary(m, "zzz"), 0);
	buf_reset(&out);
	assert_int_equal(mime_render(m, 0, &out, NULL, 0), 0);
	check_message(out.data, out.len);
	assert_non_null(strstr(out.data, "\r\nEmpty:\r\nNull:\r\n"));
	buf_free(&out);
	mime_free(m);
	mime_free(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(golden_ascii_text),
		cmocka_unit_test(golden_utf8_multipart),
		cmocka_unit_test(golden_long_lines),
		cmocka_unit_test(golden_subject_emoji),
		cmocka_unit_test(golden_display_names),
		cmocka_unit_test(golden_header_injection),
		cmocka_unit_test(golden_japanese),
		cmocka_unit_test(injection_is_one_line),
		cmocka_unit_test(qp_roundtrip),
		cmocka_unit_test(b64_roundtrip),
		cmocka_unit_test(body_line_ends_normalized),
		cmocka_unit_test(body_encoding_matches_reference),
		cmocka_unit_test(encoded_words_decode),
		cmocka_unit_test(addresses),
		cmocka_unit_test(size_limit),
		cmocka_unit_test(chooses_encoding),
		cmocka_unit_test(generated_fields),
		cmocka_unit_test(bad_input),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
