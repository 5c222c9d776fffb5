/*
 * fuzz_htmlrw - libFuzzer target for lib/htmlrw.
 *
 * The input is HTML. It is rewritten (a callback that checks what it is
 * given and rewrites every other link, aborting on a link whose text starts
 * with "ABORT") with and without a pixel, into an unlimited and into a
 * small bounded buffer, then converted to text; the text must keep the
 * module's promises (newline-terminated, no trailing blanks, never two
 * blank lines in a row). Rewriting with a callback that changes nothing
 * must give the input back byte for byte (unless it has data-notrack
 * attributes, which always go).
 *
 *   clang -std=c11 -D_GNU_SOURCE -g -fsanitize=fuzzer,address,undefined \
 *       -Ilib lib/buf.c lib/htmlrw.c tests/fuzz/fuzz_htmlrw.c -o fuzz_htmlrw
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "htmlrw.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
link_cb(void *arg, const struct htmlrw_link *l, struct buf *out)
{
	int *mode = arg;

	if (strlen(l->url) != l->url_len || strlen(l->text) != l->text_len ||
	    l->text_len > HTMLRW_LINK_TEXT_MAX ||
	    (strncasecmp(l->url, "http:", 5) != 0 &&
	    strncasecmp(l->url, "https:", 6) != 0))
		abort();
	if (*mode == 0)
		return 1;
	if (strncmp(l->text, "ABORT", 5) == 0)
		return -1;
	if (l->index % 2)
		return 1;
	buf_printf(out, "https://t.example/c/%d?u=%s&t=%s", l->index, l->url,
	    l->tag ? l->tag : "");
	return 0;
}

static int
has_notrack(const char *s, size_t n)
{
	for (size_t i = 0; i + 12 <= n; i++)
		if (strncasecmp(s + i, "data-notrack", 12) == 0)
			return 1;
	return 0;
}

static void
check_text(const struct buf *b)
{
	const char *s = buf_str(b);
	size_t i;

	if (b->len == 0)
		return;
	if (s[b->len - 1] != '\n' || s[0] == '\n')
		abort();
	for (i = 0; i + 1 < b->len; i++) {
		if (s[i + 1] == '\n' && (s[i] == ' ' || s[i] == '\t'))
			abort();
		if (i + 2 < b->len && s[i] == '\n' && s[i + 1] == '\n' &&
		    s[i + 2] == '\n')
			abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *html = (const char *)data;
	struct buf out;
	int mode = 0;

	buf_init(&out, 0);
	if (htmlrw_rewrite(html, size, link_cb, &mode, NULL, &out) != 0 ||
	    (!has_notrack(html, size) && (out.len != size ||
	    (size && memcmp(out.data, html, size) != 0))))
		abort();
	buf_free(&out);

	mode = 1;
	buf_init(&out, 0);
	htmlrw_rewrite(html, size, link_cb, &mode, "https://t.example/o/x.gif",
	    &out);
	buf_free(&out);
	buf_init(&out, 256);
	htmlrw_rewrite(html, size, link_cb, &mode, "P", &out);
	buf_free(&out);

	buf_init(&out, 0);
	if (htmlrw_to_text(html, size, &out) != 0)
		abort();
	check_text(&out);
	buf_free(&out);
	buf_init(&out, 128);
	htmlrw_to_text(html, size, &out);
	buf_free(&out);
	return 0;
}
