/*
 * fuzz_dmarc - libFuzzer target for lib/dmarc (tag-lists, DMARC records,
 * organizational domains and alignment).
 *
 * The input is a TXT record. The tag-list parser must accept it with at
 * most DMARC_MAX_TAGS tags, no two alike, every value without surrounding
 * white space, or refuse it with a message; a DMARC record it accepts
 * must have a policy with a name, pct 0..100, adkim and aspf r or s. The
 * input is then taken as two domain names split at its first space:
 * alignment must be symmetric, strict alignment must imply relaxed, and
 * a name must align with itself. Crashes and sanitizer reports are
 * failures too.
 *
 *   clang -std=c11 -D_GNU_SOURCE -g -fsanitize=fuzzer,address,undefined \
 *       -Ilib lib/dmarc.c tests/fuzz/fuzz_dmarc.c -lpsl -o fuzz_dmarc
 *   ./fuzz_dmarc -max_total_time=300 -max_len=4200 corpus/
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dmarc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
wsp(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dmarc_tags t;
	struct dmarc_record r;
	char *s, err[256], *sp;

	if (size > DMARC_MAX_RECORD + 64 || memchr(data, 0, size))
		return 0;
	if (!(s = malloc(size + 1)))
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	err[0] = '\0';
	if (dmarc_tags_parse(s, &t, err, sizeof(err)) == 0) {
		if (t.n > DMARC_MAX_TAGS)
			abort();
		for (size_t i = 0; i < t.n; i++) {
			size_t len = strlen(t.v[i].value);

			if (len && (wsp(t.v[i].value[0]) ||
			    wsp(t.v[i].value[len - 1])))
				abort();
			for (size_t j = 0; j < i; j++)
				if (strcasecmp(t.v[i].name, t.v[j].name) == 0)
					abort();
			if (dmarc_tags_get(&t, t.v[i].name) != t.v[i].value)
				abort();
		}
		dmarc_tags_free(&t);
	} else if (!err[0] || t.n != 0) {
		abort();
	}
	if (dmarc_parse(s, &r, err, sizeof(err)) == 0) {
		if (!dmarc_is_record(s) || r.pct < 0 || r.pct > 100 ||
		    (r.adkim != 'r' && r.adkim != 's') ||
		    (r.aspf != 'r' && r.aspf != 's') ||
		    !*dmarc_policy_name(r.p) || !*dmarc_policy_name(r.sp) ||
		    memchr(r.rua, 0, sizeof(r.rua)) == NULL)
			abort();
	}
	if ((sp = strchr(s, ' ')) && size < 600) {
		const char *a = s, *b = sp + 1;
		char org[256];

		*sp = '\0';
		if (dmarc_aligned(a, b, 'r') != dmarc_aligned(b, a, 'r') ||
		    dmarc_aligned(a, b, 's') != dmarc_aligned(b, a, 's') ||
		    (dmarc_aligned(a, b, 's') && !dmarc_aligned(a, b, 'r')))
			abort();
		if (strlen(a) < 250 && !dmarc_aligned(a, a, 's'))
			abort();
		if (dmarc_org_domain(a, org, sizeof(org)) == 0 && strlen(org) >
		    strlen(a))
			abort();
	}
	free(s);
	return 0;
}
