/* Unit tests for lib/quiet.c: parsing windows, inside/outside, the end
 * of a window across midnight and across a daylight-saving change. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "quiet.h"

static time_t
utc(int y, int mo, int d, int h, int mi)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	return timegm(&tm);
}

static void
test_parse(void **state)
{
	struct quiet q;
	char err[200];

	(void)state;
	assert_int_equal(quiet_parse("21:00-08:00", &q, err, sizeof(err)), 0);
	assert_int_equal(q.from, 21 * 60);
	assert_int_equal(q.to, 8 * 60);
	assert_true(quiet_active(&q));
	assert_int_equal(quiet_parse(" 12:30 - 13:45 ", &q, err, sizeof(err)),
	    0);
	assert_int_equal(q.from, 12 * 60 + 30);
	assert_int_equal(q.to, 13 * 60 + 45);
	assert_int_equal(quiet_parse("", &q, err, sizeof(err)), 0);
	assert_false(quiet_active(&q));
	assert_int_equal(quiet_parse("21:00-24:00", &q, err, sizeof(err)), 0);
	assert_int_equal(quiet_parse("9-17", &q, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "HH:MM-HH:MM"));
	assert_int_equal(quiet_parse("25:00-08:00", &q, err, sizeof(err)), -1);
	assert_int_equal(quiet_parse("21:00-21:00", &q, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "empty"));
	assert_int_equal(quiet_parse("21:00", &q, err, sizeof(err)), -1);
	assert_int_equal(quiet_parse("21:00-08:00x", &q, err, sizeof(err)), -1);
}

static void
test_check_utc(void **state)
{
	struct quiet q;
	char err[200];
	time_t until;

	(void)state;
	assert_int_equal(quiet_parse("21:00-08:00", &q, err, sizeof(err)), 0);
	/* 12:00 UTC: not quiet */
	assert_int_equal(quiet_check(&q, NULL, utc(2026, 3, 2, 12, 0), &until),
	    0);
	/* 22:30: quiet until 08:00 the next day */
	assert_int_equal(quiet_check(&q, "UTC", utc(2026, 3, 2, 22, 30),
	    &until), 1);
	assert_int_equal(until, utc(2026, 3, 3, 8, 0));
	/* 07:59: one minute left */
	assert_int_equal(quiet_check(&q, "", utc(2026, 3, 3, 7, 59), &until), 1);
	assert_int_equal(until, utc(2026, 3, 3, 8, 0));
	/* 08:00 and 20:59: open */
	assert_int_equal(quiet_check(&q, NULL, utc(2026, 3, 3, 8, 0), &until), 0);
	assert_int_equal(quiet_check(&q, NULL, utc(2026, 3, 3, 20, 59), &until),
	    0);
	/* a window inside one day */
	assert_int_equal(quiet_parse("12:00-13:00", &q, err, sizeof(err)), 0);
	assert_int_equal(quiet_check(&q, NULL, utc(2026, 3, 3, 12, 10), &until),
	    1);
	assert_int_equal(until, utc(2026, 3, 3, 13, 0));
	assert_int_equal(quiet_check(&q, NULL, utc(2026, 3, 3, 23, 10), &until),
	    0);
	/* an unknown zone says so */
	assert_int_equal(quiet_check(&q, "Nowhere/Atlantis", utc(2026, 3, 3, 12,
	    10), &until), -1);
}

static void
test_check_zone_and_dst(void **state)
{
	struct quiet q;
	char err[200];
	time_t until;

	(void)state;
	assert_int_equal(quiet_parse("21:00-08:00", &q, err, sizeof(err)), 0);
	/* 03:00 UTC is 22:00 in Detroit (EST, -5): quiet until 08:00 EST =
	 * 13:00 UTC; the same instant is 04:00 in Berlin: quiet too */
	assert_int_equal(quiet_check(&q, "America/Detroit", utc(2026, 1, 15, 3,
	    0), &until), 1);
	assert_int_equal(until, utc(2026, 1, 15, 13, 0));
	assert_int_equal(quiet_check(&q, "Europe/Berlin", utc(2026, 1, 15, 3, 0),
	    &until), 1);
	assert_int_equal(until, utc(2026, 1, 15, 7, 0));
	/* 15:00 UTC: 10:00 in Detroit, open */
	assert_int_equal(quiet_check(&q, "America/Detroit", utc(2026, 1, 15, 15,
	    0), &until), 0);
	/* the night of 2026-03-08 (US clocks go forward at 02:00): 22:00
	 * EST on the 7th = 03:00 UTC on the 8th; 08:00 EDT = 12:00 UTC */
	assert_int_equal(quiet_check(&q, "America/Detroit", utc(2026, 3, 8, 3,
	    0), &until), 1);
	assert_int_equal(until, utc(2026, 3, 8, 12, 0));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_check_utc),
		cmocka_unit_test(test_check_zone_and_dst),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
