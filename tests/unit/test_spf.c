/*
 * Unit tests for lib/spf.c: the record parser (a table of records that
 * parse, with the terms they give, and of records that do not, with the
 * words the error must hold), macro expansion (RFC 7208 7.4's examples),
 * and check_host() over a DNS table: includes and redirect followed, the
 * 10-lookup and 2-void-lookup limits, two records, a, mx, ptr, exists,
 * IPv6, temporary errors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "spf.h"

/* ---- parsing ------------------------------------------------------------------ */

static const struct {
	const char *txt;
	size_t nterms;
	const char *terms;      /* spf_term_str of each, joined by spaces */
	const char *redirect;
} good[] = {
	{ "v=spf1", 0, "", NULL },
	{ "v=spf1 -all", 1, "-all", NULL },
	{ "V=SPF1   ip4:192.0.2.1  ~ALL ", 2, "ip4:192.0.2.1 ~all", NULL },
	{ "v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 -all", 3,
	    "ip4:192.0.2.0/24 ip6:2001:db8::/32 -all", NULL },
	{ "v=spf1 a mx a:mail.example.com/28 mx:example.com//64 ?all", 5,
	    "a mx a:mail.example.com/28 mx:example.com//64 ?all", NULL },
	{ "v=spf1 a/24//48 -all", 2, "a/24//48 -all", NULL },
	{ "v=spf1 include:_spf.google.com include:spf.example.net. -all", 3,
	    "include:_spf.google.com include:spf.example.net. -all", NULL },
	{ "v=spf1 exists:%{i}._spf.%{d} -all", 2,
	    "exists:%{i}._spf.%{d} -all", NULL },
	{ "v=spf1 exists:%{ir}.%{l1r+-}._spf.%{d2} -all", 2,
	    "exists:%{ir}.%{l1r+-}._spf.%{d2} -all", NULL },
	{ "v=spf1 ptr ptr:example.com +all", 3, "ptr ptr:example.com all",
	    NULL },
	{ "v=spf1 redirect=_spf.example.com", 0, "", "_spf.example.com" },
	{ "v=spf1 exp=explain.example.com foo-bar=baz%{d} -all", 1, "-all",
	    NULL },
};

static const struct {
	const char *txt;
	const char *words;      /* in the error */
} bad[] = {
	{ "v=spf2 -all", "v=spf1" },
	{ "v=spf1x -all", "v=spf1" },
	{ "v=spf1 ip4:192.0.2.300 -all", "192.0.2.300" },
	{ "v=spf1 ip4:192.0.2.0/33 -all", "CIDR" },
	{ "v=spf1 ip6:2001:db8::/129 -all", "CIDR" },
	{ "v=spf1 ip4:2001:db8::1 -all", "IPv4" },
	{ "v=spf1 ip6:192.0.2.1 -all", "IPv6" },
	{ "v=spf1 ip4 -all", "ip4" },
	{ "v=spf1 include -all", "needs a domain" },
	{ "v=spf1 include: -all", "not a valid domain" },
	{ "v=spf1 include:localhost -all", "not a valid domain" },
	{ "v=spf1 include:example.123 -all", "not a valid domain" },
	{ "v=spf1 exists:%{x}.example.com -all", "not a valid domain" },
	{ "v=spf1 exists:%{d0}.example.com -all", "not a valid domain" },
	{ "v=spf1 exists:%example.com -all", "not a valid domain" },
	{ "v=spf1 ipv4:192.0.2.1 -all", "unknown mechanism" },
	{ "v=spf1 mx:example.com/ -all", "CIDR" },
	{ "v=spf1 all:example.com", "syntax" },
	{ "v=spf1 *all", "unknown mechanism" },
	{ "v=spf1 redirect=a.example.com redirect=b.example.com", "twice" },
	{ "v=spf1 exp=a.example.com exp=b.example.com -all", "twice" },
	{ "v=spf1 redirect=nodot", "not a valid domain" },
	{ "v=spf1 foo=%{z} -all", "modifier" },
};

static void
test_parse_good(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		struct spf_record r;
		char err[256] = "", all[512] = "", t[300];

		if (spf_parse(good[i].txt, &r, err, sizeof(err)) != 0)
			fail_msg("%s: %s", good[i].txt, err);
		assert_int_equal(r.n, good[i].nterms);
		for (size_t j = 0; j < r.n; j++) {
			spf_term_str(&r.terms[j], t, sizeof(t));
			snprintf(all + strlen(all), sizeof(all) - strlen(all), "%s%s",
			    j ? " " : "", t);
		}
		assert_string_equal(all, good[i].terms);
		if (good[i].redirect)
			assert_string_equal(r.redirect, good[i].redirect);
		else
			assert_null(r.redirect);
		spf_record_free(&r);
	}
}

static void
test_parse_bad(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct spf_record r;
		char err[256] = "";

		if (spf_parse(bad[i].txt, &r, err, sizeof(err)) == 0)
			fail_msg("%s: parsed", bad[i].txt);
		if (!strstr(err, bad[i].words))
			fail_msg("%s: error \"%s\" lacks \"%s\"", bad[i].txt, err,
			    bad[i].words);
		assert_int_equal(r.n, 0);
		assert_null(r.terms);
	}
}

static void
test_parse_long(void **state)
{
	static char txt[SPF_MAX_RECORD + 100];
	struct spf_record r;
	char err[256];

	(void)state;
	strcpy(txt, "v=spf1");
	while (strlen(txt) <= SPF_MAX_RECORD)
		strcat(txt, " a");
	assert_int_equal(spf_parse(txt, &r, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "at most"));
}

/* RFC 7208 7.4, sender strong-bad@email.example.com, IP 192.0.2.3 */
static void
test_expand(void **state)
{
	static const struct { const char *spec, *ip, *want; } t[] = {
		{ "%{s}.example", "192.0.2.3", "strong-bad@email.example.com."
		    "example" },
		{ "%{o}.x.example", "192.0.2.3", "email.example.com.x.example" },
		{ "%{d}.x.example", "192.0.2.3", "email.example.com.x.example" },
		{ "%{d4}.x.example", "192.0.2.3", "email.example.com.x.example" },
		{ "%{d3}.x.example", "192.0.2.3", "email.example.com.x.example" },
		{ "%{d2}.x.example", "192.0.2.3", "example.com.x.example" },
		{ "%{d1}.x.example", "192.0.2.3", "com.x.example" },
		{ "%{dr}.x.example", "192.0.2.3", "com.example.email.x.example" },
		{ "%{d2r}.x.example", "192.0.2.3", "example.email.x.example" },
		{ "%{l}.x.example", "192.0.2.3", "strong-bad.x.example" },
		{ "%{l-}.x.example", "192.0.2.3", "strong.bad.x.example" },
		{ "%{lr}.x.example", "192.0.2.3", "strong-bad.x.example" },
		{ "%{lr-}.x.example", "192.0.2.3", "bad.strong.x.example" },
		{ "%{l1r-}.x.example", "192.0.2.3", "strong.x.example" },
		{ "%{ir}.%{v}._spf.%{d2}", "192.0.2.3",
		    "3.2.0.192.in-addr._spf.example.com" },
		{ "%{lr-}.lp._spf.%{d2}", "192.0.2.3",
		    "bad.strong.lp._spf.example.com" },
		{ "%{ir}.%{v}._spf.%{d2}", "2001:db8::cb01",
		    "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2"
		    ".ip6._spf.example.com" },
		{ "a%%b%_c%-d.example.com", "192.0.2.3", "a%b c%20d.example.com" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		char out[300];

		assert_int_equal(spf_expand(t[i].spec, t[i].ip, "email.example.com",
		    "strong-bad@email.example.com", NULL, out, sizeof(out)), 0);
		assert_string_equal(out, t[i].want);
	}
}

/* ---- check_host over a table --------------------------------------------------- */

struct rr { const char *name; int type; const char *val; };

static const struct rr zone[] = {
	{ "good.example", 16, "v=spf1 ip4:192.0.2.10 include:relay.example "
	    "-all" },
	{ "good.example", 16, "google-site-verification=abc" },
	{ "relay.example", 16, "v=spf1 ip4:198.51.100.0/24 ip6:2001:db8::/32 "
	    "~all" },
	{ "soft.example", 16, "v=spf1 a mx ~all" },
	{ "soft.example", 1, "192.0.2.20" },
	{ "soft.example", 15, "mx.soft.example" },
	{ "mx.soft.example", 1, "192.0.2.30" },
	{ "neutral.example", 16, "v=spf1 ip4:192.0.2.1" },
	{ "plus.example", 16, "v=spf1 include:open.example -all" },
	{ "open.example", 16, "v=spf1 +all" },
	{ "redir.example", 16, "v=spf1 redirect=relay.example" },
	{ "two.example", 16, "v=spf1 -all" },
	{ "two.example", 16, "v=spf1 ip4:192.0.2.10 -all" },
	{ "syntax.example", 16, "v=spf1 ip4:192.0.2.300 -all" },
	{ "inclbad.example", 16, "v=spf1 include:syntax.example -all" },
	{ "inclnone.example", 16, "v=spf1 include:nothing.example -all" },
	{ "many.example", 16, "v=spf1 include:l1.example -all" },
	{ "l1.example", 16, "v=spf1 a:x1.example a:x2.example include:l2.example "
	    "?all" },
	{ "l2.example", 16, "v=spf1 mx:x3.example mx:x4.example "
	    "include:l3.example ?all" },
	{ "l3.example", 16, "v=spf1 a:x5.example exists:x6.example "
	    "a:x7.example a:x8.example include:l4.example ?all" },
	{ "l4.example", 16, "v=spf1 ip4:203.0.113.1 ?all" },
	{ "x1.example", 1, "203.0.113.50" },
	{ "x2.example", 1, "203.0.113.50" },
	{ "x3.example", 15, "x1.example" },
	{ "x4.example", 15, "x1.example" },
	{ "x5.example", 1, "203.0.113.50" },
	{ "x7.example", 1, "203.0.113.50" },
	{ "x8.example", 1, "203.0.113.50" },
	{ "voids.example", 16, "v=spf1 a:v1.example a:v2.example a:v3.example "
	    "-all" },
	{ "ex.example", 16, "v=spf1 exists:%{i}.allow.ex.example -all" },
	{ "192.0.2.77.allow.ex.example", 1, "127.0.0.2" },
	{ "ptr.example", 16, "v=spf1 ptr -all" },
	{ "77.2.0.192.in-addr.arpa", 12, "host.ptr.example" },
	{ "host.ptr.example", 1, "192.0.2.77" },
	{ "temp.example", 16, "v=spf1 include:dead.example -all" },
	{ NULL, 0, NULL }
};

static char *answer[16];

static enum spf_dns
table_query(void *ctx, const char *name, int type, char *const **rr,
    size_t *n, const char **err)
{
	int exists = 0;

	(void)ctx;
	*n = 0;
	*rr = answer;
	if (strcmp(name, "dead.example") == 0) {
		*err = "dead.example: timed out";
		return SPF_DNS_TEMP;
	}
	for (const struct rr *z = zone; z->name; z++) {
		if (strcasecmp(z->name, name) != 0)
			continue;
		exists = 1;
		if (z->type == type && *n < 16)
			answer[(*n)++] = (char *)z->val;
	}
	return *n ? SPF_DNS_OK : exists ? SPF_DNS_NODATA : SPF_DNS_NXDOMAIN;
}

static const struct spf_dns_ops ops = { table_query, NULL };

static const struct {
	const char *domain, *ip;
	enum spf_result want;
	const char *match;      /* in out.match */
	unsigned lookups;
} checks[] = {
	{ "good.example", "192.0.2.10", SPF_R_PASS, "ip4:192.0.2.10", 0 },
	{ "good.example", "198.51.100.7", SPF_R_PASS,
	    "ip4:198.51.100.0/24 (in the record of relay.example)", 1 },
	{ "good.example", "2001:db8::5", SPF_R_PASS, "ip6:2001:db8::/32", 1 },
	{ "good.example", "203.0.113.9", SPF_R_FAIL, "-all", 1 },
	{ "good.example", NULL, SPF_R_FAIL, "-all", 1 },
	{ "soft.example", "192.0.2.20", SPF_R_PASS, "a", 1 },
	{ "soft.example", "192.0.2.30", SPF_R_PASS, "mx", 2 },
	{ "soft.example", "192.0.2.99", SPF_R_SOFTFAIL, "~all", 2 },
	{ "neutral.example", "203.0.113.9", SPF_R_NEUTRAL, "neutral", 0 },
	{ "plus.example", NULL, SPF_R_PASS,
	    "all (in the record of open.example)", 1 },
	{ "redir.example", "198.51.100.1", SPF_R_PASS, "ip4:198.51.100.0/24",
	    1 },
	{ "redir.example", "203.0.113.9", SPF_R_SOFTFAIL, "~all", 1 },
	{ "two.example", "192.0.2.10", SPF_R_PERMERROR, "2 SPF records", 0 },
	{ "syntax.example", "192.0.2.10", SPF_R_PERMERROR, "192.0.2.300", 0 },
	{ "inclbad.example", "192.0.2.10", SPF_R_PERMERROR, "included by", 1 },
	{ "inclnone.example", "192.0.2.10", SPF_R_PERMERROR,
	    "include:nothing.example has no SPF record", 1 },
	{ "nothing.example", "192.0.2.10", SPF_R_NONE, "no SPF record", 0 },
	{ "many.example", "203.0.113.1", SPF_R_PERMERROR, "more than 10 DNS "
	    "lookups", 11 },
	{ "many.example", "203.0.113.50", SPF_R_PASS, "a:x1.example", 2 },
	{ "voids.example", "192.0.2.1", SPF_R_PERMERROR, "v3.example", 3 },
	{ "ex.example", "192.0.2.77", SPF_R_PASS, "exists:", 1 },
	{ "ex.example", "192.0.2.78", SPF_R_FAIL, "-all", 1 },
	{ "ptr.example", "192.0.2.77", SPF_R_PASS, "ptr", 1 },
	{ "ptr.example", "192.0.2.78", SPF_R_FAIL, "-all", 1 },
	{ "temp.example", "192.0.2.1", SPF_R_TEMPERROR, "timed out", 1 },
	{ "good.example", "not-an-ip", SPF_R_PERMERROR, "not an IP", 0 },
};

static void
test_check_host(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(checks) / sizeof(checks[0]); i++) {
		struct spf_check out;

		spf_check_host(&ops, checks[i].ip, checks[i].domain, NULL, NULL,
		    &out);
		if (out.result != checks[i].want || !strstr(out.match,
		    checks[i].match) || out.lookups != checks[i].lookups)
			fail_msg("%s for %s: %s (%s), %u lookups; want %s (%s), %u",
			    checks[i].domain, checks[i].ip ? checks[i].ip : "-",
			    spf_result_name(out.result), out.match, out.lookups,
			    spf_result_name(checks[i].want), checks[i].match,
			    checks[i].lookups);
	}
}

static void
test_flags(void **state)
{
	struct spf_check out;

	(void)state;
	spf_check_host(&ops, NULL, "plus.example", NULL, NULL, &out);
	assert_true(out.plus_all);
	spf_check_host(&ops, "192.0.2.1", "ptr.example", NULL, NULL, &out);
	assert_true(out.uses_ptr);
	spf_check_host(&ops, "192.0.2.1", "good.example", NULL, NULL, &out);
	assert_false(out.uses_ptr);
	assert_false(out.plus_all);
	spf_check_host(&ops, "192.0.2.1", "voids.example", NULL, NULL, &out);
	assert_int_equal(out.voids, 3);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_good),
		cmocka_unit_test(test_parse_bad),
		cmocka_unit_test(test_parse_long),
		cmocka_unit_test(test_expand),
		cmocka_unit_test(test_check_host),
		cmocka_unit_test(test_flags),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
