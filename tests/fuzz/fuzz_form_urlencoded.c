/*
 * fuzz_form_urlencoded - libFuzzer target for form_parse_urlencoded() in
 * lib/form.
 *
 * The input is the body, parsed with the default limits and with small
 * ones (so the limit paths are reached). Every result must pass the
 * checks of fuzz_form.h; crashes and sanitizer reports are failures too.
 *
 * form.c is linked from an instrumented libleadcast.a (it needs lead,
 * conf and tmpl):
 *
 *   mkdir build-fuzz && cd build-fuzz && ../configure CC=clang \
 *       CFLAGS='-g -O1 -fsanitize=fuzzer-no-link,address,undefined' && \
 *       make lib/libleadcast.a
 *   clang -std=c11 -D_GNU_SOURCE -g -fsanitize=fuzzer,address,undefined \
 *       -I../lib ../tests/fuzz/fuzz_form_urlencoded.c lib/libleadcast.a \
 *       -lopendkim -lesmtp -lldns -lpq -levent -lssl -lcrypto -ljansson -lm \
 *       -o fuzz_form_urlencoded
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fuzz_form.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct form_limits lims[2] = {
		FORM_LIMITS_DEFAULT, { 512, 5, 16 }
	};

	for (int i = 0; i < 2; i++) {
		struct form_error err;
		json_t *out = NULL;
		int rc;

		memset(&err, 0, sizeof(err));
		rc = form_parse_urlencoded((const char *)data, size, &lims[i],
		    &out, &err);
		fuzz_form_check(rc, out, &err, &lims[i]);
	}
	return 0;
}
