/*
 * fuzz_form_multipart - libFuzzer target for form_parse_multipart() in
 * lib/form.
 *
 * The input up to the first newline is the Content-Type's boundary
 * parameter as written (say `boundary=xyz` or `boundary="a b"`), the rest
 * is the body; the input is also parsed whole with a fixed boundary, each
 * with the default limits and small ones. Every result must pass the
 * checks of fuzz_form.h; crashes and sanitizer reports are failures too.
 *
 * Built like fuzz_form_urlencoded:
 *
 *   clang -std=c11 -D_GNU_SOURCE -g -fsanitize=fuzzer,address,undefined \
 *       -I../lib ../tests/fuzz/fuzz_form_multipart.c lib/libleadcast.a \
 *       -lopendkim -lesmtp -lldns -lpq -levent -lssl -lcrypto -ljansson -lm \
 *       -o fuzz_form_multipart
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "fuzz_form.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
one(const char *ct, const char *body, size_t len,
    const struct form_limits *lim)
{
	struct form_error err;
	json_t *out = NULL;
	int rc;

	memset(&err, 0, sizeof(err));
	rc = form_parse_multipart(ct, body, len, lim, &out, &err);
	fuzz_form_check(rc, out, &err, lim);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct form_limits lims[2] = {
		FORM_LIMITS_DEFAULT, { 1024, 4, 32 }
	};
	const char *nl = memchr(data, '\n', size);
	char ct[300];

	for (int i = 0; i < 2; i++) {
		one("multipart/form-data; boundary=XyZ", (const char *)data,
		    size, &lims[i]);
		if (nl && (size_t)(nl - (const char *)data) < 200) {
			snprintf(ct, sizeof(ct), "multipart/form-data; %.*s",
			    (int)(nl - (const char *)data), (const char *)data);
			one(ct, nl + 1, size - (size_t)(nl + 1 -
			    (const char *)data), &lims[i]);
		}
	}
	return 0;
}
