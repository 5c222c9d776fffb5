/*
 * Unit tests for lib/phone.c: phone numbers as people type them, in 30
 * countries, normalized to E.164 or refused with a reason.
 *
 * Each row of the table is a test of its own (its name is the input and
 * the default country), so a failure names the case. The expected E.164
 * forms of the good cases were checked against libphonenumber.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "phone.h"

struct phone_case {
	const char *in;
	const char *country;    /* default country, NULL for none */
	const char *e164;       /* expected; NULL when refused */
	const char *region;     /* expected country (good cases) */
	const char *ext;        /* expected extension, NULL for "" */
	const char *err;        /* refused: a part of the reason */
};

#define OK(in, dc, e164, region) { in, dc, e164, region, NULL, NULL }
#define EXT(in, dc, e164, region, ext) { in, dc, e164, region, ext, NULL }
#define BAD(in, dc, err) { in, dc, NULL, NULL, NULL, err }

static const struct phone_case cases[] = {
	/* United States, Canada, the Caribbean: +1 */
	OK("+1 (313) 555-0142", NULL, "+13135550142", "US"),
	OK("(313) 555-0142", "US", "+13135550142", "US"),
	OK("313.555.0142", "US", "+13135550142", "US"),
	OK("313-555-0142", "us", "+13135550142", "US"),
	OK("1 313 555 0142", "US", "+13135550142", "US"),
	OK("1-800-555-0199", "US", "+18005550199", "US"),
	OK("  +1 313 555 0142  ", NULL, "+13135550142", "US"),
	OK("tel:+1-313-555-0142", NULL, "+13135550142", "US"),
	OK("011 44 20 7946 0958", "US", "+442079460958", "GB"),
	OK("+1 416 555 0199", NULL, "+14165550199", "CA"),
	OK("(416) 555-0199", "CA", "+14165550199", "CA"),
	OK("212 555 0142", "CA", "+12125550142", "US"),
	OK("+1 876 555 0142", NULL, "+18765550142", "JM"),
	OK("+1 787 555 0142", NULL, "+17875550142", "PR"),
	EXT("+1 313 555 0142 x123", NULL, "+13135550142", "US", "123"),
	EXT("313 555 0142 ext. 123", "US", "+13135550142", "US", "123"),
	EXT("313-555-0142 extension 7", "US", "+13135550142", "US", "7"),
	EXT("313 555 0142 #45", "US", "+13135550142", "US", "45"),
	EXT("tel:+1-313-555-0142;ext=12", NULL, "+13135550142", "US", "12"),
	EXT("(313) 555-0142 EXT:9", "US", "+13135550142", "US", "9"),
	/* United Kingdom and the Crown dependencies: +44 */
	OK("0044 20 7946 0958", NULL, "+442079460958", "GB"),
	OK("+44 (0)20 7946 0958", NULL, "+442079460958", "GB"),
	OK("+44 020 7946 0958", NULL, "+442079460958", "GB"),
	OK("020 7946 0958", "GB", "+442079460958", "GB"),
	OK("020 7946 0958", "gb", "+442079460958", "GB"),
	OK("07700 900123", "GB", "+447700900123", "GB"),
	OK("44 7700 900123", "GB", "+447700900123", "GB"),
	OK("+44 1534 123456", NULL, "+441534123456", "JE"),
	OK("01481 256789", "GB", "+441481256789", "GG"),
	/* France */
	OK("06 12 34 56 78", "FR", "+33612345678", "FR"),
	OK("00 33 6 12 34 56 78", NULL, "+33612345678", "FR"),
	OK("+33 (0)1 23 45 67 89", NULL, "+33123456789", "FR"),
	OK("01.23.45.67.89", "FR", "+33123456789", "FR"),
	/* Germany, Austria, Switzerland */
	OK("+49 (0)30 1234567", NULL, "+49301234567", "DE"),
	OK("030 1234567", "DE", "+49301234567", "DE"),
	OK("0151 23456789", "DE", "+4915123456789", "DE"),
	OK("0664 1234567", "AT", "+436641234567", "AT"),
	OK("044 668 18 00", "CH", "+41446681800", "CH"),
	/* Italy keeps its 0 */
	OK("06 1234 5678", "IT", "+390612345678", "IT"),
	OK("+39 347 123 4567", NULL, "+393471234567", "IT"),
	OK("+39 (0)6 1234 5678", NULL, "+390612345678", "IT"),
	/* Elsewhere in Europe */
	OK("912 345 678", "ES", "+34912345678", "ES"),
	OK("06 12345678", "NL", "+31612345678", "NL"),
	OK("0470 12 34 56", "BE", "+32470123456", "BE"),
	OK("070-123 45 67", "SE", "+46701234567", "SE"),
	OK("512 345 678", "PL", "+48512345678", "PL"),
	OK("06 1 234 5678", "HU", "+3612345678", "HU"),
	OK("087 123 4567", "IE", "+353871234567", "IE"),
	OK("8 612 34567", "LT", "+37061234567", "LT"),
	OK("0 612 34567", "LT", "+37061234567", "LT"),
	/* Russia and Kazakhstan: +7, trunk prefix 8 */
	OK("8 (912) 345-67-89", "RU", "+79123456789", "RU"),
	OK("8 812 123 45 67", "RU", "+78121234567", "RU"),
	OK("812 123 45 67", "RU", "+78121234567", "RU"),
	OK("810 44 20 7946 0958", "RU", "+442079460958", "GB"),
	OK("8 701 123 45 67", "KZ", "+77011234567", "KZ"),
	OK("+7 701 123 4567", NULL, "+77011234567", "KZ"),
	/* Asia and Oceania */
	OK("03-1234-5678", "JP", "+81312345678", "JP"),
	OK("090-1234-5678", "JP", "+819012345678", "JP"),
	OK("010 1 212 555 0142", "JP", "+12125550142", "US"),
	OK("138 0013 8000", "CN", "+8613800138000", "CN"),
	OK("010 1234 5678", "CN", "+861012345678", "CN"),
	OK("+91 98765 43210", NULL, "+919876543210", "IN"),
	OK("098765 43210", "IN", "+919876543210", "IN"),
	OK("(02) 9876 5432", "AU", "+61298765432", "AU"),
	OK("0412 345 678", "AU", "+61412345678", "AU"),
	OK("0011 44 20 7946 0958", "AU", "+442079460958", "GB"),
	OK("010-1234-5678", "KR", "+821012345678", "KR"),
	OK("021 123 4567", "NZ", "+64211234567", "NZ"),
	OK("9123 4567", "SG", "+6591234567", "SG"),
	OK("0912 345 678", "TW", "+886912345678", "TW"),
	OK("0917 123 4567", "PH", "+639171234567", "PH"),
	OK("0812 3456 789", "ID", "+628123456789", "ID"),
	OK("0300 1234567", "PK", "+923001234567", "PK"),
	/* Middle East, Africa, Latin America */
	OK("050 123 4567", "AE", "+971501234567", "AE"),
	OK("050-123-4567", "IL", "+972501234567", "IL"),
	OK("+20 10 1234 5678", NULL, "+201012345678", "EG"),
	OK("082 123 4567", "ZA", "+27821234567", "ZA"),
	OK("0901 234 5678", "NG", "+2349012345678", "NG"),
	OK("(11) 91234-5678", "BR", "+5511912345678", "BR"),
	OK("55 1234 5678", "MX", "+525512345678", "MX"),
	OK("(01) 234 5678", "PE", "+5112345678", "PE"),
	/* Unicode separators and fullwidth digits */
	OK("+44\xc2\xa0" "20\xc2\xa0" "7946\xc2\xa0" "0958", NULL,
	    "+442079460958", "GB"),
	OK("313\xe2\x80\x93" "555\xe2\x80\x93" "0142", "US", "+13135550142",
	    "US"),
	OK("\xef\xbc\x90\xef\xbc\x93\xef\xbc\x8d\xef\xbc\x91\xef\xbc\x92"
	    "\xef\xbc\x93\xef\xbc\x94\xef\xbc\x8d\xef\xbc\x95\xef\xbc\x96"
	    "\xef\xbc\x97\xef\xbc\x98", "JP", "+81312345678", "JP"),
	/* Refused */
	BAD("1-800-FLOWERS", "US", "letters in the number"),
	BAD("313 555 0142 x", "US", "letters in the number"),
	BAD("313 555 0142 x12345678901", "US", "letters in the number"),
	BAD("313 555 0142 ext 12 34", "US", "letters in the number"),
	BAD("x123", "US", "letters in the number"),
	BAD("+44 (0)20 7946 0958 ext", NULL, "letters in the number"),
	BAD("+999 1234 5678", NULL, "unknown country code +999"),
	BAD("+28 1234 5678", NULL, "unknown country code +28"),
	BAD("+800 1234 5678", NULL, "+800 is a global service code"),
	BAD("+0044 20 7946 0958", NULL, "cannot start with 0"),
	BAD("020 7946", "GB", "too short for GB"),
	BAD("+44 20 7946 0958 123", NULL, "too long for GB"),
	BAD("06 12 34 56", "FR", "too short for FR"),
	BAD("+33 6 12 34 56 78 9", NULL, "too long for FR"),
	BAD("+7 912 345 67", NULL, "too short for RU"),
	BAD("+49 30 12", NULL, "too short for DE"),
	BAD("555 0142", "US", "too short for US"),
	BAD("+1 313 555 01423", NULL, "too long for US"),
	BAD("9876 543", "IN", "too short for IN"),
	BAD("+61 2 9876", NULL, "too short for AU"),
	BAD("020 7946 0958", NULL, "no country code"),
	BAD("020 7946 0958", "", "no country code"),
	BAD("313 555 0142", "ZZ", "unknown default country 'ZZ'"),
	BAD("+1 313 555 0142", "USA", "unknown default country"),
	BAD("+1 (013) 555-0142", NULL, "area code cannot start with 0"),
	BAD("+1 313 155 0142", NULL, "exchange after the area code"),
	BAD("+1 411 555 0142", NULL, "411 is a service code"),
	BAD("313+555+0142", "US", "'+' is only allowed before the country"),
	BAD("++44 20 7946 0958", NULL, "'+' is only allowed"),
	BAD("313*555*0142", "US", "unexpected character '*'"),
	BAD("313\t555\n0142", "US", "control character"),
	BAD("313 555 0142 \xe2\x98\x8e", "US", "non-ASCII"),
	BAD("", "US", "no digits"),
	BAD("   ", "US", "no digits"),
	BAD("+", NULL, "no digits"),
	BAD("+44", NULL, "no number after the country code +44"),
	BAD("00", NULL, "no country code"),
	BAD("1234567890123456789012345", "US", "too many digits"),
	BAD("+1 313 555 0142                                                   "
	    "      ", NULL, "longer than 64 characters"),
};

#define NCASES (sizeof(cases) / sizeof(cases[0]))

static void
run_case(void **state)
{
	const struct phone_case *c = *state;
	struct phone_number pn;
	char err[200] = "", out[PHONE_E164_MAX];
	int r = phone_parse(c->in, c->country, &pn, err, sizeof(err));

	if (c->e164) {
		if (r != 0)
			print_message("# refused: %s\n", err);
		assert_int_equal(r, 0);
		assert_string_equal(pn.e164, c->e164);
		assert_string_equal(pn.country, c->region);
		assert_string_equal(pn.extension, c->ext ? c->ext : "");
		/* e164 is + code national */
		{
			char joined[40];

			snprintf(joined, sizeof(joined), "+%d%s",
			    pn.calling_code, pn.national);
			assert_string_equal(joined, c->e164);
		}
		/* phone_normalize gives the same, without the extension */
		assert_int_equal(phone_normalize(c->in, c->country, out,
		    sizeof(out), err, sizeof(err)), 0);
		assert_string_equal(out, c->e164);
		/* and it is a fixed point */
		assert_int_equal(phone_normalize(out, NULL, out, sizeof(out),
		    err, sizeof(err)), 0);
		assert_string_equal(out, c->e164);
	} else {
		if (r == 0)
			print_message("# accepted as %s\n", pn.e164);
		assert_int_equal(r, -1);
		if (!strstr(err, c->err))
			print_message("# reason: %s\n", err);
		assert_non_null(strstr(err, c->err));
		assert_string_equal(pn.e164, "");
		assert_int_equal(phone_normalize(c->in, c->country, out,
		    sizeof(out), err, sizeof(err)), -1);
	}
}

static void
null_input(void **state)
{
	struct phone_number pn;
	char err[100];

	(void)state;
	assert_int_equal(phone_parse(NULL, "US", &pn, err, sizeof(err)), -1);
	assert_string_equal(err, "no number");
	/* err may be NULL */
	assert_int_equal(phone_parse("abc", "US", &pn, NULL, 0), -1);
}

static void
normalize_buffer_too_small(void **state)
{
	char out[13], err[100];

	(void)state;
	assert_int_equal(phone_normalize("+1 313 555 0142", NULL, out, 12,
	    err, sizeof(err)), -1);
	assert_string_equal(err, "output buffer too small");
	assert_int_equal(phone_normalize("+1 313 555 0142", NULL, out, 13,
	    err, sizeof(err)), 0);
	assert_string_equal(out, "+13135550142");
}

static void
err_truncated_safely(void **state)
{
	char err[8];
	struct phone_number pn;

	(void)state;
	assert_int_equal(phone_parse("+999 1", NULL, &pn, err, sizeof(err)),
	    -1);
	assert_int_equal(strlen(err), 7);
}

static void
country_valid(void **state)
{
	(void)state;
	assert_true(phone_country_valid("US"));
	assert_true(phone_country_valid("us"));
	assert_true(phone_country_valid("Gb"));
	assert_true(phone_country_valid("AQ"));
	assert_true(phone_country_valid("ZW"));
	assert_false(phone_country_valid("ZZ"));
	assert_false(phone_country_valid("UK"));        /* it is GB */
	assert_false(phone_country_valid("XK"));        /* not ISO */
	assert_false(phone_country_valid("USA"));
	assert_false(phone_country_valid("U"));
	assert_false(phone_country_valid(""));
	assert_false(phone_country_valid(NULL));
	assert_false(phone_country_valid("1A"));
}

/* Every ISO 3166-1 country is there (249 of them), each with a code. */
static void
all_countries(void **state)
{
	int n = 0;

	(void)state;
	for (char a = 'A'; a <= 'Z'; a++) {
		for (char b = 'A'; b <= 'Z'; b++) {
			char s[3] = { a, b, '\0' };

			if (!phone_country_valid(s))
				continue;
			n++;
			assert_true(phone_calling_code(s) >= 1);
			assert_true(phone_calling_code(s) <= 998);
		}
	}
	assert_int_equal(n, 249);
}

static void
calling_codes(void **state)
{
	static const struct { const char *a2; int cc; } t[] = {
		{ "US", 1 }, { "CA", 1 }, { "JM", 1 }, { "PR", 1 },
		{ "GB", 44 }, { "JE", 44 }, { "FR", 33 }, { "DE", 49 },
		{ "RU", 7 }, { "KZ", 7 }, { "CN", 86 }, { "IN", 91 },
		{ "JP", 81 }, { "BR", 55 }, { "IT", 39 }, { "VA", 39 },
		{ "FI", 358 }, { "AX", 358 }, { "AU", 61 }, { "ZA", 27 },
		{ "AE", 971 }, { "NG", 234 }, { "MX", 52 }, { "EG", 20 },
		{ "AQ", 672 }, { "UM", 1 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		assert_int_equal(phone_calling_code(t[i].a2), t[i].cc);
	assert_int_equal(phone_calling_code("ZZ"), 0);
	assert_int_equal(phone_calling_code(NULL), 0);
}

/* Non-ISO regions with numbers of their own are recognized. */
static void
non_iso_regions(void **state)
{
	struct phone_number pn;
	char err[100];

	(void)state;
	assert_int_equal(phone_parse("+383 44 123 456", NULL, &pn, err,
	    sizeof(err)), 0);
	assert_string_equal(pn.country, "XK");
	assert_int_equal(phone_parse("+247 6123", NULL, &pn, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "too short for AC"));
	assert_int_equal(phone_parse("+247 61234", NULL, &pn, err,
	    sizeof(err)), 0);
	assert_string_equal(pn.country, "AC");
}

int
main(void)
{
	static const struct CMUnitTest fixed[] = {
		cmocka_unit_test(null_input),
		cmocka_unit_test(normalize_buffer_too_small),
		cmocka_unit_test(err_truncated_safely),
		cmocka_unit_test(country_valid),
		cmocka_unit_test(all_countries),
		cmocka_unit_test(calling_codes),
		cmocka_unit_test(non_iso_regions),
	};
	static struct CMUnitTest tests[NCASES + sizeof(fixed) /
	    sizeof(fixed[0])];
	static char names[NCASES][120];
	size_t n = 0;

	for (size_t i = 0; i < NCASES; i++) {
		char shown[80];
		size_t o = 0;

		/* a readable, one-line name: control characters as '?' */
		for (const char *p = cases[i].in; *p && o + 1 < sizeof(shown);
		    p++)
			shown[o++] = (unsigned char)*p < 0x20 ? '?' : *p;
		shown[o] = '\0';
		snprintf(names[i], sizeof(names[i]), "%s [%s] %s",
		    cases[i].e164 ? "good" : "bad",
		    cases[i].country ? cases[i].country : "-", shown);
		memset(&tests[n], 0, sizeof(tests[n]));
		tests[n].name = names[i];
		tests[n].test_func = run_case;
		tests[n].initial_state = (void *)&cases[i];
		n++;
	}
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		tests[n++] = fixed[i];
	return _cmocka_run_group_tests("phone", tests, n, NULL, NULL);
}
