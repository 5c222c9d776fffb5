/*
 * fuzz_tmpl - libFuzzer target for lib/tmpl.
 *
 * The input is a template; if it holds a 0xff byte, what follows is the
 * source of the partial/parent "p" (else the input serves as both). It is
 * compiled and rendered against a small fixed context in both escape modes,
 * with a bounded output buffer. Only crashes and sanitizer reports matter.
 *
 *   clang -std=c11 -D_GNU_SOURCE -g -fsanitize=fuzzer,address,undefined \
 *       -Ilib lib/buf.c lib/tmpl.c tests/fuzz/fuzz_tmpl.c \
 *       $(pkg-config --cflags --libs jansson) -o fuzz_tmpl
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <jansson.h>

#include "buf.h"
#include "tmpl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static json_t *ctx;

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *src = (const char *)data, *cut;
	size_t len = size, plen = size;
	struct tmpl_set *set;
	struct tmpl *t;
	struct buf out;

	if (!ctx)
		ctx = json_loads("{\"a\": [{\"b\": 1, \"c\": \"<&>\"}, "
		    "{\"b\": 2.5, \"a\": []}], \"b\": true, \"c\": null, "
		    "\"p\": {\"a\": {\"b\": \"x\"}}, \"s\": \"\"}", 0, NULL);
	if ((cut = memchr(src, 0xff, size)) != NULL) {
		len = (size_t)(cut - src);
		plen = size - len - 1;
	}
	if (!(set = tmpl_set_new()))
		return 0;
	tmpl_set_add(set, "p", cut ? cut + 1 : src, plen, NULL);
	tmpl_set_add(set, "a", "{{>p}}", 6, NULL);
	if (tmpl_compile("fuzz", src, len, &t, NULL) == 0) {
		buf_init(&out, 1 << 16);
		tmpl_render(t, ctx, set, TMPL_ESCAPE_HTML, &out);
		buf_free(&out);
		buf_init(&out, 1 << 16);
		tmpl_render(t, ctx, set, TMPL_ESCAPE_NONE, &out);
		buf_free(&out);
		tmpl_free(t);
	}
	tmpl_set_free(set);
	return 0;
}
