/*
 * fuzz_mime - libFuzzer target for lib/mime.
 *
 * The input is split at 0xff bytes into a subject, a display name, an
 * address, a text body and an HTML body (missing pieces are left out).
 * The message is rendered and must keep the invariants that make header
 * injection impossible: every line ends in CRLF (no bare CR or LF) and has
 * at most 998 octets, the header section holds exactly the fields that
 * were added plus the generated ones, each a "Name:" line or a
 * continuation starting with one space, and lines with encoded-words have
 * at most 76 characters. Crashes and sanitizer reports are failures too.
 *
 *   clang -std=c11 -D_GNU_SOURCE -g -fsanitize=fuzzer,address,undefined \
 *       -Ilib lib/buf.c lib/token.c lib/mime.c tests/fuzz/fuzz_mime.c \
 *       $(pkg-config --cflags --libs libcrypto) -o fuzz_mime
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "mime.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check(const char *s, size_t n, size_t fields)
{
	const char *end = memmem(s, n, "\r\n\r\n", 4), *p, *q;
	size_t col = 0, seen = 0;

	if (n < 2 || s[n - 2] != '\r' || s[n - 1] != '\n' || !end)
		abort();
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\r' && s[i + 1] == '\n') {
			i++;
			col = 0;
		} else if (s[i] == '\r' || s[i] == '\n' || ++col > 998)
			abort();
	}
	for (p = s; p < end + 2; p = q + 2) {
		q = memmem(p, (size_t)(end + 2 - p), "\r\n", 2);
		for (const char *c = p; c < q; c++)
			if (*c < 32 || *c > 126)
				abort();
		if (memmem(p, (size_t)(q - p), "=?utf-8?", 8) && q - p > 76)
			abort();
		if (*p == ' ') {
			if (q == p + 1 || p[1] == ' ')
				abort();
		} else if (p == q || p[strcspn(p, ": \r")] != ':')
			abort();
		else
			seen++;
	}
	if (seen != fields)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *piece[5] = { NULL }, *copy, *p, *cut;
	size_t len[5] = { 0 }, fields = 4;      /* Date, Message-ID, MIME-V, C-T */
	struct mime_msg *m;
	struct buf out;

	if (!(copy = malloc(size + 1)))
		return 0;
	memcpy(copy, data, size);
	copy[size] = '\0';
	p = copy;
	for (int i = 0; i < 5 && p; i++) {
		piece[i] = p;
		if ((cut = memchr(p, 0xff, size - (size_t)(p - copy))) != NULL)
			*cut++ = '\0';
		len[i] = (cut ? (size_t)(cut - p) - 1 : size -
		    (size_t)(p - copy));
		p = cut;
	}
	if (!(m = mime_new())) {
		free(copy);
		return 0;
	}
	if (piece[0] && mime_header(m, "Subject", piece[0]) == 0)
		fields++;
	if (piece[2]) {         /* a second mailbox joins the same field */
		int to = mime_address_header(m, "To", piece[1], piece[2]) == 0;

		if (mime_address_header(m, "To", "x", "a@b.example") == 0)
			to = 1;
		fields += (size_t)to;
	}
	mime_set_text(m, piece[3], len[3]);
	mime_set_html(m, piece[4], len[4]);
	if (!piece[3] || !piece[4])
		fields++;       /* Content-Transfer-Encoding of a single part */
	buf_init(&out, 0);
	if (mime_render(m, 0, &out, NULL, 0) == 0)
		check(out.data, out.len, fields);
	buf_free(&out);
	mime_free(m);
	free(copy);
	return 0;
}
