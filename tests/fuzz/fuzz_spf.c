/*
 * fuzz_spf - libFuzzer target for lib/spf (the SPF record parser, macro
 * expansion and check_host).
 *
 * The input is a TXT record. The parser must accept it or refuse it with
 * a message and an empty record; what it accepts must print back
 * (spf_term_str) and parse again to the same terms; every domain-spec it
 * kept must expand to at most 253 characters. check_host then runs over a
 * small DNS in memory where every name answers with the input itself (so
 * includes and redirect recurse into it): it must end, within the lookup
 * limits, with a result that has a name. Crashes, timeouts and sanitizer
 * reports are failures too.
 *
 *   clang -std=c11 -D_GNU_SOURCE -g -fsanitize=fuzzer,address,undefined \
 *       -Ilib lib/spf.c tests/fuzz/fuzz_spf.c -o fuzz_spf
 *   ./fuzz_spf -max_total_time=300 -max_len=4200 corpus/
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *record;
static char addr4[] = "192.0.2.1", addr6[] = "2001:db8::1",
    mxhost[] = "mx.example.com";

static enum spf_dns
answer(void *ctx, const char *name, int type, char *const **rr, size_t *n,
    const char **err)
{
	static char *one[1];

	(void)ctx;
	if (strlen(name) > 253)
		abort();
	*n = 1;
	*rr = one;
	switch (type) {
	case 16: one[0] = record; break;
	case 1: one[0] = addr4; break;
	case 28: one[0] = addr6; break;
	case 15: case 12: one[0] = mxhost; break;
	default: abort();
	}
	if (name[0] == 'x') {   /* some names time out, some do not exist */
		*err = "timed out";
		return SPF_DNS_TEMP;
	}
	return name[0] == 'n' ? SPF_DNS_NXDOMAIN : SPF_DNS_OK;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct spf_dns_ops ops = { answer, NULL };
	struct spf_record r, again;
	struct spf_check out;
	char err[256], out1[300];

	if (size > SPF_MAX_RECORD + 64 || memchr(data, 0, size))
		return 0;
	if (!(record = malloc(size + 1)))
		return 0;
	memcpy(record, data, size);
	record[size] = '\0';
	err[0] = '\0';
	if (spf_parse(record, &r, err, sizeof(err)) == 0) {
		char *txt = malloc(size * 2 + 64);
		size_t k;

		if (!txt)
			abort();
		k = (size_t)sprintf(txt, "v=spf1");
		for (size_t i = 0; i < r.n; i++) {
			static char t[SPF_MAX_RECORD + 200];

			spf_term_str(&r.terms[i], t, sizeof(t));
			k += (size_t)sprintf(txt + k, " %s", t);
			if (r.terms[i].domain && spf_expand(r.terms[i].domain,
			    "192.0.2.1", "example.com", NULL, NULL, out1,
			    sizeof(out1)) == 0 && strlen(out1) > 253)
				abort();
		}
		if (spf_parse(txt, &again, err, sizeof(err)) != 0 ||
		    again.n != r.n)
			abort();
		for (size_t i = 0; i < r.n; i++)
			if (again.terms[i].mech != r.terms[i].mech ||
			    again.terms[i].qual != r.terms[i].qual ||
			    again.terms[i].cidr4 != r.terms[i].cidr4 ||
			    again.terms[i].cidr6 != r.terms[i].cidr6)
				abort();
		spf_record_free(&again);
		spf_record_free(&r);
		free(txt);
	} else if (!err[0] || r.n != 0 || r.terms) {
		abort();
	}
	spf_check_host(&ops, "192.0.2.1", "example.com", NULL, NULL, &out);
	if (out.lookups > SPF_MAX_LOOKUPS + 1 || out.voids > SPF_MAX_VOID + 1 ||
	    strcmp(spf_result_name(out.result), "?") == 0)
		abort();
	spf_check_host(&ops, NULL, "example.com", NULL, NULL, &out);
	spf_check_host(&ops, "2001:db8::1", "example.com", NULL, NULL, &out);
	free(record);
	return 0;
}
