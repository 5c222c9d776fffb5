/* Unit tests for lib/chart.c: axes, labels, escaping, geometry, bad input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "chart.h"

static void
axis_is_round(void **state)
{
	static const struct {
		double max;
		double top, step;
	} cases[] = {
		{ 0, 1, 0.25 }, { 1, 1, 0.25 }, { 7, 8, 2 }, { 10, 10, 2.5 },
		{ 37, 40, 10 }, { 99, 100, 25 }, { 101, 150, 50 },
		{ 1234, 1500, 500 }, { 0.3, 0.3, 0.1 }, { 100000, 100000, 25000 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		double top, step;

		chart_axis(cases[i].max, 4, &top, &step);
		assert_true(fabs(top - cases[i].top) < 1e-9);
		assert_true(fabs(step - cases[i].step) < 1e-9);
		assert_true(top >= cases[i].max);
	}
}

static void
numbers_are_short(void **state)
{
	char s[32];

	(void)state;
	chart_fmt(0, s, sizeof(s));
	assert_string_equal(s, "0");
	chart_fmt(950, s, sizeof(s));
	assert_string_equal(s, "950");
	chart_fmt(12000, s, sizeof(s));
	assert_string_equal(s, "12k");
	chart_fmt(3500000, s, sizeof(s));
	assert_string_equal(s, "3.5M");
	chart_fmt(0.25, s, sizeof(s));
	assert_string_equal(s, "0.25");
}

static size_t
count(const char *s, const char *needle)
{
	size_t n = 0;

	for (const char *p = s; (p = strstr(p, needle)) != NULL; p++)
		n++;
	return n;
}

/* Every element opened is closed (or self-closed), in order. */
static void
assert_well_formed(const char *s)
{
	char stack[64][16];
	int depth = 0;

	for (const char *p = s; (p = strchr(p, '<')) != NULL; p++) {
		const char *e = strchr(p, '>');
		size_t n;

		assert_non_null(e);
		if (p[1] == '/') {
			n = strcspn(p + 2, " >");
			assert_true(depth > 0);
			depth--;
			assert_int_equal(strlen(stack[depth]), n);
			assert_memory_equal(stack[depth], p + 2, n);
		} else if (e[-1] != '/') {
			n = strcspn(p + 1, " >/");
			assert_true(n < 16 && depth < 64);
			memcpy(stack[depth], p + 1, n);
			stack[depth++][n] = '\0';
		}
	}
	assert_int_equal(depth, 0);
}

static void
line_chart_geometry(void **state)
{
	static const char *const labels[] = { "00:00", "01:00", "02:00",
	    "03:00" };
	static const double opens[] = { 0, 40, 20, 10 };
	static const double clicks[] = { 0, 5, 8, 2 };
	const struct chart_series series[] = { { "Opens", opens },
	    { "Clicks <all>", clicks } };
	struct chart c = { "Opens & clicks", NULL, labels, 4, series, 2, 400,
	    200, 0 };
	struct buf b;
	const char *s, *pts;
	double x, y, ymax = 1e9, ybase = 0;

	(void)state;
	buf_init(&b, 0);
	assert_int_equal(chart_line(&b, &c), 0);
	s = buf_str(&b);
	assert_well_formed(s);
	assert_non_null(strstr(s, "viewBox=\"0 0 400 200\""));
	assert_non_null(strstr(s, "Opens &amp; clicks"));
	assert_non_null(strstr(s, "Clicks &lt;all&gt;"));
	assert_null(strstr(s, "<all>"));
	assert_int_equal(count(s, "<polyline"), 2);
	/* the axis goes to 40 in steps of 10: five grid labels */
	assert_non_null(strstr(s, ">40</text>"));
	assert_non_null(strstr(s, ">30</text>"));
	/* the first series: 0 on the baseline, 40 (the top) highest */
	pts = strstr(s, "points=\"") + 8;
	for (int i = 0; i < 4; i++) {
		assert_int_equal(sscanf(pts, "%lf,%lf", &x, &y), 2);
		if (i == 0)
			ybase = y;
		if (y < ymax)
			ymax = y;
		pts = strchr(pts, ' ') + 1;
	}
	assert_true(ybase > ymax);
	assert_true(fabs(ybase - (200 - 34)) < 0.1);
	buf_free(&b);
}

static void
bars_and_histogram(void **state)
{
	static const char *const buckets[] = { "<1m", "1-5m", "5-15m" };
	static const double a[] = { 3, 0, 7 };
	const struct chart_series series[] = { { "Team A", a } };
	struct chart c = { "Speed to lead", "leads", buckets, 3, series, 1, 0,
	    0, 0 };
	struct buf b;

	(void)state;
	buf_init(&b, 0);
	assert_int_equal(chart_bars(&b, &c), 0);
	assert_well_formed(buf_str(&b));
	/* one bar per bucket, each titled with its value */
	assert_int_equal(count(buf_str(&b), "<rect"), 3);
	assert_non_null(strstr(buf_str(&b), "Team A, 5-15m: 7</title>"));
	assert_non_null(strstr(buf_str(&b), "&lt;1m"));
	/* the y label, rotated */
	assert_non_null(strstr(buf_str(&b), "rotate(-90"));
	/* one series: no legend */
	assert_null(strstr(buf_str(&b), "width=\"10\" height=\"10\""));
	buf_free(&b);
}

static void
hbars_keep_the_end_of_long_labels(void **state)
{
	static const char *const links[] = {
	    "https://www.example.com/a/very/long/path/to/the/pricing-page",
	    "https://x.example/"
	};
	static const double v[] = { 12, 3 };
	static const double pct[] = { 55.5, 20 };
	const struct chart_series series[] = { { "Clicks", v }, { "Rate", pct } };
	struct chart c = { "Top links", NULL, links, 2, series, 1, 300, 120, 0 };
	struct buf b;

	(void)state;
	buf_init(&b, 0);
	assert_int_equal(chart_hbars(&b, &c), 0);
	assert_well_formed(buf_str(&b));
	/* shortened with an ellipsis, the end kept; the whole in <title> */
	assert_non_null(strstr(buf_str(&b), "\xe2\x80\xa6"));
	assert_non_null(strstr(buf_str(&b), "pricing-page</text>"));
	assert_non_null(strstr(buf_str(&b), "<title>https://www.example.com/a/"));
	buf_reset(&b);
	c.series = series + 1;
	c.percent = 1;
	assert_int_equal(chart_hbars(&b, &c), 0);
	assert_non_null(strstr(buf_str(&b), ">55.5%</text>"));
	buf_free(&b);
}

static void
bad_input_is_refused(void **state)
{
	static const char *const l[] = { "a", "b" };
	static const double neg[] = { 1, -1 };
	double nan_[2] = { 1, NAN };
	const struct chart_series s1[] = { { "x", neg } };
	const struct chart_series s2[] = { { "x", nan_ } };
	struct chart c = { "t", NULL, l, 2, s1, 1, 0, 0, 0 };
	struct buf b;

	(void)state;
	buf_init(&b, 0);
	assert_int_equal(chart_line(&b, &c), -1);
	c.series = s2;
	assert_int_equal(chart_bars(&b, &c), -1);
	c.nseries = 0;
	assert_int_equal(chart_hbars(&b, &c), -1);
	assert_int_equal(b.len, 0);
	/* no points at all is a valid, empty chart */
	c.nseries = 1;
	c.n = 0;
	assert_int_equal(chart_line(&b, &c), 0);
	assert_well_formed(buf_str(&b));
	buf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(axis_is_round),
		cmocka_unit_test(numbers_are_short),
		cmocka_unit_test(line_chart_geometry),
		cmocka_unit_test(bars_and_histogram),
		cmocka_unit_test(hbars_keep_the_end_of_long_labels),
		cmocka_unit_test(bad_input_is_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
