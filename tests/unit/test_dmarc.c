/*
 * Unit tests for lib/dmarc.c: tag-lists, DMARC records (a table of
 * records that parse, with what they say, and of records that do not,
 * with the words the error must hold), organizational domains from the
 * Public Suffix List, and relaxed and strict alignment.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "dmarc.h"

static void
test_tags(void **state)
{
	struct dmarc_tags t;
	char err[256];

	(void)state;
	assert_int_equal(dmarc_tags_parse(" v = DKIM1 ; k=rsa;\r\n\tp=MIIB AQAB;",
	    &t, err, sizeof(err)), 0);
	assert_int_equal(t.n, 3);
	assert_string_equal(dmarc_tags_get(&t, "v"), "DKIM1");
	assert_string_equal(dmarc_tags_get(&t, "K"), "rsa");
	assert_string_equal(dmarc_tags_get(&t, "p"), "MIIB AQAB");
	assert_null(dmarc_tags_get(&t, "h"));
	dmarc_tags_free(&t);
	assert_int_equal(dmarc_tags_parse("p=", &t, err, sizeof(err)), 0);
	assert_string_equal(dmarc_tags_get(&t, "p"), "");
	dmarc_tags_free(&t);
	assert_int_equal(dmarc_tags_parse("", &t, err, sizeof(err)), 0);
	assert_int_equal(t.n, 0);

	static const struct { const char *txt, *words; } bad[] = {
		{ "v=DKIM1; p", "needs \"=value\"" },
		{ "v=DKIM1; 9p=x", "tag name" },
		{ "v=DKIM1; p=a; p=b", "twice" },
		{ "v=DKIM1; p=\x01", "printable" },
		{ "=x", "tag name" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (dmarc_tags_parse(bad[i].txt, &t, err, sizeof(err)) == 0)
			fail_msg("%s: parsed", bad[i].txt);
		if (!strstr(err, bad[i].words))
			fail_msg("%s: \"%s\" lacks \"%s\"", bad[i].txt, err,
			    bad[i].words);
		assert_int_equal(t.n, 0);
	}
}

static void
test_too_many_tags(void **state)
{
	char txt[1024] = "v=DMARC1";
	struct dmarc_tags t;
	char err[256];

	(void)state;
	for (int i = 0; i < DMARC_MAX_TAGS; i++)
		snprintf(txt + strlen(txt), sizeof(txt) - strlen(txt), "; x%d=1", i);
	assert_int_equal(dmarc_tags_parse(txt, &t, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "more than"));
}

static const struct {
	const char *txt;
	enum dmarc_policy p, sp;
	int pct;
	char adkim, aspf;
	const char *rua;
	int rua_count;
} good[] = {
	{ "v=DMARC1; p=none", DMARC_P_NONE, DMARC_P_NONE, 100, 'r', 'r', "", 0 },
	{ "v=DMARC1; p=reject; rua=mailto:d@example.com", DMARC_P_REJECT,
	    DMARC_P_REJECT, 100, 'r', 'r', "mailto:d@example.com", 1 },
	{ "v=DMARC1;p=Quarantine;sp=none;pct=25;adkim=s;aspf=S;", 
	    DMARC_P_QUARANTINE, DMARC_P_NONE, 25, 's', 's', "", 0 },
	{ "v=DMARC1; p=reject; rua=mailto:a@x.example!10m, "
	    "mailto:b@y.example; ruf=mailto:f@x.example; fo=0:d:s; ri=3600; "
	    "future=yes", DMARC_P_REJECT, DMARC_P_REJECT, 100, 'r', 'r',
	    "mailto:a@x.example!10m, mailto:b@y.example", 2 },
	{ "v=DMARC1; p=none; pct=0", DMARC_P_NONE, DMARC_P_NONE, 0, 'r', 'r',
	    "", 0 },
};

static const struct { const char *txt, *words; } bad[] = {
	{ "p=reject; v=DMARC1", "first tag" },
	{ "v=DMARC2; p=reject", "first tag" },
	{ "v=dmarc1; p=reject", "first tag" },
	{ "v=DMARC1", "no p=" },
	{ "v=DMARC1; rua=mailto:a@b.example", "no p=" },
	{ "v=DMARC1; p=block", "p=block" },
	{ "v=DMARC1; p=none; sp=all", "sp=all" },
	{ "v=DMARC1; p=none; pct=101", "pct=101" },
	{ "v=DMARC1; p=none; pct=-1", "pct=-1" },
	{ "v=DMARC1; p=none; pct=50%", "pct=50%" },
	{ "v=DMARC1; p=none; adkim=x", "adkim=x" },
	{ "v=DMARC1; p=none; aspf=relaxed", "aspf=relaxed" },
	{ "v=DMARC1; p=none; rua=dmarc@example.com", "not a URI" },
	{ "v=DMARC1; p=none; rua=", "empty" },
	{ "v=DMARC1; p=none; ruf=mailto:", "not a URI" },
	{ "v=DMARC1; p=none; fo=2", "fo=2" },
	{ "v=DMARC1; p=none; ri=daily", "ri=daily" },
	{ "v=DMARC1; p=none; p=reject", "twice" },
};

static void
test_records(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		struct dmarc_record r;
		char err[256] = "";

		assert_true(dmarc_is_record(good[i].txt));
		if (dmarc_parse(good[i].txt, &r, err, sizeof(err)) != 0)
			fail_msg("%s: %s", good[i].txt, err);
		assert_int_equal(r.p, good[i].p);
		assert_int_equal(r.sp, good[i].sp);
		assert_int_equal(r.pct, good[i].pct);
		assert_int_equal(r.adkim, good[i].adkim);
		assert_int_equal(r.aspf, good[i].aspf);
		assert_string_equal(r.rua, good[i].rua);
		assert_int_equal(r.rua_count, good[i].rua_count);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct dmarc_record r;
		char err[256] = "";

		if (dmarc_parse(bad[i].txt, &r, err, sizeof(err)) == 0)
			fail_msg("%s: parsed", bad[i].txt);
		if (!strstr(err, bad[i].words))
			fail_msg("%s: \"%s\" lacks \"%s\"", bad[i].txt, err,
			    bad[i].words);
	}
	assert_false(dmarc_is_record("v=spf1 -all"));
	assert_false(dmarc_is_record("v=DMARC10; p=none"));
	assert_true(dmarc_is_record(" v = DMARC1 ;p=none"));
}

static void
test_org_domain(void **state)
{
	static const struct { const char *in, *want; } t[] = {
		{ "example.com", "example.com" },
		{ "Mail.News.Example.COM.", "example.com" },
		{ "shop.example.co.uk", "example.co.uk" },
		{ "co.uk", "co.uk" },
		{ "a.b.good.test", "good.test" },
	};
	char out[256];

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		assert_int_equal(dmarc_org_domain(t[i].in, out, sizeof(out)), 0);
		assert_string_equal(out, t[i].want);
	}
	assert_int_equal(dmarc_org_domain("example.com", out, 5), -1);
}

static void
test_alignment(void **state)
{
	(void)state;
	assert_true(dmarc_aligned("example.com", "EXAMPLE.com.", 's'));
	assert_false(dmarc_aligned("example.com", "bounce.example.com", 's'));
	assert_true(dmarc_aligned("example.com", "bounce.example.com", 'r'));
	assert_true(dmarc_aligned("news.example.co.uk", "example.co.uk", 'r'));
	assert_false(dmarc_aligned("example.co.uk", "other.co.uk", 'r'));
	assert_false(dmarc_aligned("example.com", "example.net", 'r'));
	assert_false(dmarc_aligned("example.com", "esp-mail.net", 'r'));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tags),
		cmocka_unit_test(test_too_many_tags),
		cmocka_unit_test(test_records),
		cmocka_unit_test(test_org_domain),
		cmocka_unit_test(test_alignment),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
