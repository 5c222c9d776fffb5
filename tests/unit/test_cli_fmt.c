/*
 * Unit tests for daemon/cli_fmt.c: human durations (850ms, 12s, 4m),
 * duration and --since parsing (dates in two time zones, ISO 8601 with
 * offsets, impossible dates), query escaping, JSON scalars and times as
 * text, and aligned tables.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli_fmt.h"

static void
durations(void **state)
{
	static const struct { double s; const char *want; } cases[] = {
		{ 0, "0ms" }, { 0.0004, "0ms" }, { 0.85, "850ms" },
		{ 0.9994, "999ms" }, { 0.9996, "1s" }, { 1, "1s" }, { 1.25, "1.3s" },
		{ 1.5, "1.5s" }, { 9.94, "9.9s" }, { 9.96, "10s" }, { 12, "12s" },
		{ 12.4, "12s" }, { 59.4, "59s" }, { 59.6, "1m" }, { 60, "1m" },
		{ 90, "1m30s" }, { 240, "4m" }, { 270, "4m30s" }, { 599, "9m59s" },
		{ 600, "10m" }, { 629, "10m" }, { 631, "11m" }, { 3569, "59m" },
		{ 3570, "1h" }, { 3600, "1h" }, { 8100, "2h15m" },
		{ 36000, "10h" }, { 37800, "11h" }, { 86400, "1d" },
		{ 86400 * 3 + 3600 * 4, "3d4h" }, { 86400 * 10, "10d" },
		{ -1, "-" }, { NAN, "-" }, { INFINITY, "-" },
	};
	char out[32];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cli_fmt_duration(cases[i].s, out, sizeof(out));
		if (strcmp(out, cases[i].want) != 0)
			fail_msg("%g s gave '%s', not '%s'", cases[i].s, out,
			    cases[i].want);
	}
}

static void
parse_durations(void **state)
{
	(void)state;
	assert_int_equal(cli_fmt_parse_duration("30s"), 30);
	assert_int_equal(cli_fmt_parse_duration("15m"), 900);
	assert_int_equal(cli_fmt_parse_duration("24h"), 86400);
	assert_int_equal(cli_fmt_parse_duration("7d"), 7 * 86400);
	assert_int_equal(cli_fmt_parse_duration("2w"), 14 * 86400);
	assert_int_equal(cli_fmt_parse_duration("1d12h"), 36 * 3600);
	assert_int_equal(cli_fmt_parse_duration("0d"), -1);
	assert_int_equal(cli_fmt_parse_duration("7"), -1);
	assert_int_equal(cli_fmt_parse_duration("d"), -1);
	assert_int_equal(cli_fmt_parse_duration("7y"), -1);
	assert_int_equal(cli_fmt_parse_duration("-7d"), -1);
	assert_int_equal(cli_fmt_parse_duration(""), -1);
	assert_int_equal(cli_fmt_parse_duration("3651d"), -1);
	assert_int_equal(cli_fmt_parse_duration("99999999999999999999d"), -1);
}

static void
since_zone(const char *tz, const char *in, const char *want)
{
	time_t now = 1741000000;        /* 2025-03-03T11:06:40Z */
	char out[64], err[256];

	setenv("TZ", tz, 1);
	tzset();
	if (want) {
		if (cli_fmt_since(in, now, out, sizeof(out), err, sizeof(err)) < 0)
			fail_msg("%s [%s]: %s", in, tz, err);
		if (strcmp(out, want) != 0)
			fail_msg("%s [%s] gave %s, not %s", in, tz, out, want);
	} else if (cli_fmt_since(in, now, out, sizeof(out), err,
	    sizeof(err)) == 0) {
		fail_msg("%s [%s] was taken as %s", in, tz, out);
	} else {
		assert_non_null(strstr(err, "neither a date"));
	}
}

static void
since(void **state)
{
	(void)state;
	since_zone("UTC", "7d", "2025-02-24T11:06:40Z");
	since_zone("UTC", "24h", "2025-03-02T11:06:40Z");
	since_zone("America/New_York", "90m", "2025-03-03T09:36:40Z");
	since_zone("UTC", "2025-03-01", "2025-03-01T00:00:00Z");
	/* a date is midnight where the user is */
	since_zone("America/New_York", "2025-03-01", "2025-03-01T05:00:00Z");
	since_zone("America/New_York", "2025-07-01", "2025-07-01T04:00:00Z");
	since_zone("Asia/Kolkata", "2025-03-01", "2025-02-28T18:30:00Z");
	since_zone("America/New_York", "2025-03-01 09:30", "2025-03-01T14:30:00Z");
	since_zone("UTC", "2025-03-01 09:30:15", "2025-03-01T09:30:15Z");
	/* ISO 8601 with a zone is what it says, wherever the user is */
	since_zone("Asia/Kolkata", "2025-03-01T09:30:00Z", "2025-03-01T09:30:00Z");
	since_zone("UTC", "2025-03-01T09:30:00.250Z", "2025-03-01T09:30:00Z");
	since_zone("UTC", "2025-03-01T09:30:00+02:00", "2025-03-01T07:30:00Z");
	since_zone("UTC", "2025-03-01T09:30-05:30", "2025-03-01T15:00:00Z");
	since_zone("UTC", "2024-02-29", "2024-02-29T00:00:00Z");
	/* refused */
	since_zone("UTC", "2025-02-29", NULL);
	since_zone("UTC", "2025-13-01", NULL);
	since_zone("UTC", "2025-04-31", NULL);
	since_zone("UTC", "2025-3-1", NULL);
	since_zone("UTC", "03/01/2025", NULL);
	since_zone("UTC", "2025-03-01T09:30:00", NULL);     /* no zone */
	since_zone("UTC", "2025-03-01 25:00", NULL);
	since_zone("UTC", "2025-03-01x", NULL);
	since_zone("UTC", "yesterday", NULL);
	since_zone("UTC", "", NULL);
	since_zone("UTC", "1969-12-31", NULL);
	unsetenv("TZ");
	tzset();
}

static void
query(void **state)
{
	char out[64];

	(void)state;
	assert_string_equal(cli_fmt_query("web-form_2.x~", out, sizeof(out)),
	    "web-form_2.x~");
	assert_string_equal(cli_fmt_query("a b&c=d/é", out, sizeof(out)),
	    "a%20b%26c%3Dd%2F%C3%A9");
	assert_string_equal(cli_fmt_query("2025-03-01T00:00:00Z", out,
	    sizeof(out)), "2025-03-01T00%3A00%3A00Z");
	/* cut at a whole escape */
	assert_string_equal(cli_fmt_query("ab&", out, 5), "ab");
	assert_string_equal(cli_fmt_query("abcdef", out, 4), "abc");
}

static void
scalars(void **state)
{
	static const char *const cases[][3] = {
		/* key, dash, text */
		{ "s", "-", "x" }, { "i", "-", "42" }, { "r", "-", "2.5" },
		{ "t", "-", "yes" }, { "f", "-", "no" }, { "n", "-", "-" },
		{ "missing", NULL, "" }, { "l", "-", "east, west" },
		{ "e", "-", "-" }, { "o", "-", "-" },
	};
	json_t *doc = json_loads("{\"s\": \"x\", \"i\": 42, \"r\": 2.5, \"t\": "
	    "true, \"f\": false, \"n\": null, \"l\": [\"east\", \"west\"], "
	    "\"e\": [], \"o\": {}}", 0, NULL);
	char out[64];

	(void)state;
	assert_non_null(doc);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_string_equal(cli_fmt_scalar(json_object_get(doc,
		    cases[i][0]), cases[i][1], out, sizeof(out)), cases[i][2]);
	json_decref(doc);
}

static void
times(void **state)
{
	json_t *v;
	char out[64];

	(void)state;
	v = json_string("2025-03-01T10:00:05.123456+00:00");
	assert_string_equal(cli_fmt_time(v, "-", out, sizeof(out)),
	    "2025-03-01 10:00:05+00:00");
	json_decref(v);
	v = json_string("2025-03-01T10:00:05Z");
	assert_string_equal(cli_fmt_time(v, "-", out, sizeof(out)),
	    "2025-03-01 10:00:05Z");
	json_decref(v);
	v = json_integer(1741000000);
	assert_string_equal(cli_fmt_time(v, "-", out, sizeof(out)),
	    "2025-03-03 11:06:40Z");
	json_decref(v);
	assert_string_equal(cli_fmt_time(NULL, "-", out, sizeof(out)), "-");
}

static void
table(void **state)
{
	static const char *const head[] = { "ID", "NAME", "OPEN", "NOTE" };
	const char *r1[] = { "1", "Zoë", "3", "a" };
	const char *r2[] = { "12", "Al\tB", "10", NULL };
	struct cli_table t;
	FILE *f = tmpfile();
	char buf[512];
	size_t n;

	(void)state;
	assert_non_null(f);
	cli_table_init(&t, 4, head, "llrl");
	assert_int_equal(cli_table_add(&t, r1), 0);
	assert_int_equal(cli_table_add(&t, r2), 0);
	cli_table_print(&t, f);
	cli_table_free(&t);
	rewind(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	assert_string_equal(buf,
	    "ID  NAME  OPEN  NOTE\n"
	    "1   Zoë      3  a\n"
	    "12  Al B    10  -\n");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(durations),
		cmocka_unit_test(parse_durations),
		cmocka_unit_test(since),
		cmocka_unit_test(query),
		cmocka_unit_test(scalars),
		cmocka_unit_test(times),
		cmocka_unit_test(table),
	};

	return cmocka_run_group_tests_name("cli_fmt", tests, NULL, NULL);
}
