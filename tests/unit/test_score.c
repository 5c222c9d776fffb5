/*
 * Unit tests for lib/score.c: loading scoring.conf (every error with its
 * file:line:col, including inside quoted conditions), profile rules,
 * behavior rules (once and always, caps per window with events at fixed
 * times), decay, grades and threshold crossings.
 *
 * Configurations are given as strings (score_load_string, file name
 * "t.conf"), except the shipped example, $TOP_SRCDIR/conf/scoring.conf
 * (./conf/scoring.conf when TOP_SRCDIR is unset), and the include test,
 * which writes files to a temporary directory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cond.h"
#include "score.h"

#define DAY 86400
#define T0 1767225600           /* 2026-01-01 00:00:00 UTC */

/* ---- helpers ----------------------------------------------------------- */

static void
dump(const struct cfgfile_errors *e)
{
	for (size_t i = 0; i < e->n; i++)
		print_message("# %s\n", e->msgs[i]);
}

static struct score_conf *
load_ok(const char *text)
{
	struct cfgfile_errors e = { NULL, 0 };
	struct score_conf *c = score_load_string("t.conf", text, strlen(text),
	    &e);

	dump(&e);
	assert_int_equal(e.n, 0);
	assert_non_null(c);
	cfgfile_errors_free(&e);
	return c;
}

/* Loading text fails with an error that starts with "t.conf:LINE:COL: "
 * and contains want. */
static void
expect_error(const char *text, int line, int col, const char *want)
{
	struct cfgfile_errors e = { NULL, 0 };
	struct score_conf *c = score_load_string("t.conf", text, strlen(text),
	    &e);
	char prefix[64];
	int found = 0;

	assert_null(c);
	snprintf(prefix, sizeof(prefix), "t.conf:%d:%d: ", line, col);
	for (size_t i = 0; i < e.n; i++)
		if (strncmp(e.msgs[i], prefix, strlen(prefix)) == 0 &&
		    strstr(e.msgs[i], want))
			found = 1;
	if (!found) {
		print_message("# wanted %s...%s, got:\n", prefix, want);
		dump(&e);
	}
	cfgfile_errors_free(&e);
	assert_true(found);
}

static json_t *
lead_of(const char *json)
{
	json_error_t je;
	json_t *j = json_loads(json, 0, &je);

	assert_non_null(j);
	return j;
}

/* Apply one event at time t to history (which grows); returns the points
 * awarded in total. */
static int
event_at(const struct score_conf *c, const json_t *lead, const char *ev,
    time_t t, struct score_earned *history, size_t *nhistory)
{
	struct cond_env env = { t, NULL };
	struct score_change ch[8];
	json_t *event = lead_of(ev);
	int n, sum = 0;

	n = score_event(c, lead, event, history, *nhistory, &env, ch, 8);
	assert_true(n >= 0);
	for (int i = 0; i < n; i++) {
		assert_int_not_equal(ch[i].points, 0);
		history[*nhistory].rule = ch[i].rule;
		history[*nhistory].kind = SCORE_BEHAVIOR;
		history[*nhistory].points = ch[i].points;
		history[*nhistory].earned_at = t;
		(*nhistory)++;
		sum += ch[i].points;
	}
	json_decref(event);
	return sum;
}

/* ---- the example ------------------------------------------------------- */

static void
example_loads(void **state)
{
	const char *top = getenv("TOP_SRCDIR");
	struct cfgfile_errors e = { NULL, 0 };
	const struct score_threshold *t;
	const struct score_grade *g;
	struct score_conf *c;
	char path[1024];
	size_t n;

	(void)state;
	snprintf(path, sizeof(path), "%s/conf/scoring.conf", top ? top : ".");
	c = score_load(path, &e);
	dump(&e);
	assert_int_equal(e.n, 0);
	assert_non_null(c);
	t = score_thresholds(c, &n);
	assert_int_equal(n, 2);
	assert_string_equal(t[0].name, "heating-up");
	assert_int_equal(t[0].action, SCORE_NOTIFY_OWNER);
	assert_string_equal(t[0].team, "");
	assert_string_equal(t[1].name, "sales-ready");
	assert_int_equal(t[1].min, 70);
	assert_int_equal(t[1].action, SCORE_ROUTE);
	assert_string_equal(t[1].team, "east");
	assert_string_equal(t[1].team_pos.file, path);
	assert_true(t[1].team_pos.line > 1);
	g = score_grades(c, &n);
	assert_int_equal(n, 3);
	assert_string_equal(g[0].name, "hot");
	assert_string_equal(g[2].name, "cold");
	assert_true(score_wants_event(c, "click"));
	assert_true(score_wants_event(c, "hot_page"));
	assert_false(score_wants_event(c, "webinar"));
	assert_false(score_wants_event(NULL, "click"));
	score_free(c);
	cfgfile_errors_free(&e);
}

/* ---- profile rules ----------------------------------------------------- */

static const char profile_conf[] =
	"profile \"director\" { when = \"title matches '*director*'\"; "
	"points = 20 }\n"
	"profile \"budget\" { when = \"budget >= 10000\"; points = 15 }\n"
	"profile \"enterprise\" { when = \"fields.plan == 'enterprise'\"; "
	"points = 10 }\n"
	"profile \"free-mail\" { when = \"email matches '*@gmail.com'\"; "
	"points = -10 }\n"
	"profile \"office-hours\" { when = \"hour >= 9 and hour < 17\"; "
	"points = 1 }\n";

static void
profile_sum_and_reasons(void **state)
{
	struct score_conf *c = load_ok(profile_conf);
	json_t *lead = lead_of("{\"title\": \"IT Director\", \"budget\": "
	    "20000, \"email\": \"a@gmail.com\", \"fields\": {\"plan\": "
	    "\"enterprise\"}}");
	struct cond_env night = { T0 + 2 * 3600, "UTC" };
	struct score_reason r[8];

	(void)state;
	assert_int_equal(score_profile(c, lead, &night, r, 8), 35);
	assert_string_equal(r[0].rule, "director");
	assert_int_equal(r[0].points, 20);
	assert_string_equal(r[1].rule, "budget");
	assert_string_equal(r[2].rule, "enterprise");
	assert_string_equal(r[3].rule, "free-mail");
	assert_int_equal(r[3].points, -10);
	assert_null(r[4].rule);
	/* fewer slots than rules: the sum is still complete */
	assert_int_equal(score_profile(c, lead, &night, r, 2), 35);
	assert_string_equal(r[1].rule, "budget");
	assert_int_equal(score_profile(c, lead, &night, NULL, 0), 35);
	json_decref(lead);
	score_free(c);
}

static void
profile_recomputed_when_lead_changes(void **state)
{
	struct score_conf *c = load_ok(profile_conf);
	json_t *lead = lead_of("{\"title\": \"Director\", \"budget\": 500}");
	struct cond_env env = { T0, NULL };
	struct score_reason r[8];

	(void)state;
	assert_int_equal(score_profile(c, lead, &env, r, 8), 20);
	json_object_set_new(lead, "title", json_string("Intern"));
	json_object_set_new(lead, "budget", json_integer(50000));
	assert_int_equal(score_profile(c, lead, &env, r, 8), 15);
	assert_string_equal(r[0].rule, "budget");
	assert_null(r[1].rule);
	json_object_clear(lead);
	assert_int_equal(score_profile(c, lead, &env, r, 8), 0);
	assert_null(r[0].rule);
	assert_int_equal(score_profile(NULL, lead, &env, r, 8), 0);
	assert_null(r[0].rule);
	json_decref(lead);
	score_free(c);
}

static void
profile_time_of_day(void **state)
{
	struct score_conf *c = load_ok(profile_conf);
	json_t *lead = lead_of("{}");
	/* 14:00 UTC is 09:00 in New York (EST) and 06:00 in Los Angeles */
	struct cond_env ny = { T0 + 14 * 3600, "America/New_York" };
	struct cond_env la = { T0 + 14 * 3600, "America/Los_Angeles" };
	struct cond_env bad = { T0, "Nowhere/Nothing" };
	struct score_reason r[8];

	(void)state;
	assert_int_equal(score_profile(c, lead, &ny, r, 8), 1);
	assert_string_equal(r[0].rule, "office-hours");
	assert_int_equal(score_profile(c, lead, &la, r, 8), 0);
	/* an unknown zone: the rule does not match, nothing breaks */
	assert_int_equal(score_profile(c, lead, &bad, r, 8), 0);
	json_decref(lead);
	score_free(c);
}

/* ---- behavior rules ---------------------------------------------------- */

static const char behavior_conf[] =
	"behavior \"open\" { event = open; points = 1 }\n"
	"behavior \"pricing\" {\n"
	"\tevent = { visit, hot_page }\n"
	"\twhen = \"event.url contains '/pricing' and country == 'US'\"\n"
	"\tpoints = 10\n"
	"}\n"
	"behavior \"demo\" { event = form; when = \"event.form == 'demo'\"; "
	"points = 30; repeat = once }\n"
	"behavior \"webinar\" { event = webinar-attended; points = 25 }\n"
	"behavior \"tagged\" { event = click; when = \"event.tag == 'promo' "
	"and event.position < 3\"; points = 2 }\n";

static int
award(const struct score_conf *c, const char *lead, const char *event,
    struct score_change *ch, size_t max)
{
	struct cond_env env = { T0, NULL };
	json_t *l = lead_of(lead), *e = lead_of(event);
	int n = score_event(c, l, e, NULL, 0, &env, ch, max);

	json_decref(l);
	json_decref(e);
	return n;
}

static void
behavior_event_types_and_conditions(void **state)
{
	struct score_conf *c = load_ok(behavior_conf);
	struct score_change ch[4];
	const char *us = "{\"country\": \"US\"}";

	(void)state;
	assert_int_equal(award(c, us, "{\"type\": \"open\"}", ch, 4), 1);
	assert_string_equal(ch[0].rule, "open");
	assert_int_equal(ch[0].points, 1);
	assert_int_equal(ch[0].rule_points, 1);
	assert_int_equal(ch[0].capped, 0);
	/* types compare without regard to case */
	assert_int_equal(award(c, us, "{\"type\": \"OPEN\"}", ch, 4), 1);
	/* a list of types; a condition over the lead and the event */
	assert_int_equal(award(c, us, "{\"type\": \"visit\", \"url\": "
	    "\"https://acme.example/pricing\"}", ch, 4), 1);
	assert_string_equal(ch[0].rule, "pricing");
	assert_int_equal(ch[0].points, 10);
	assert_int_equal(award(c, us, "{\"type\": \"hot_page\", \"url\": "
	    "\"https://acme.example/pricing#team\"}", ch, 4), 1);
	assert_int_equal(award(c, us, "{\"type\": \"visit\", \"url\": "
	    "\"https://acme.example/about\"}", ch, 4), 0);
	assert_int_equal(award(c, "{\"country\": \"FR\"}", "{\"type\": "
	    "\"visit\", \"url\": \"https://acme.example/pricing\"}", ch, 4), 0);
	/* a missing event member makes the condition false */
	assert_int_equal(award(c, us, "{\"type\": \"visit\"}", ch, 4), 0);
	/* numbers and custom types */
	assert_int_equal(award(c, us, "{\"type\": \"click\", \"tag\": "
	    "\"promo\", \"position\": 1}", ch, 4), 1);
	assert_string_equal(ch[0].rule, "tagged");
	assert_int_equal(award(c, us, "{\"type\": \"click\", \"tag\": "
	    "\"promo\", \"position\": 5}", ch, 4), 0);
	assert_int_equal(award(c, us, "{\"type\": \"webinar-attended\"}", ch,
	    4), 1);
	assert_int_equal(ch[0].points, 25);
	assert_int_equal(award(c, us, "{\"type\": \"reply\"}", ch, 4), 0);
	/* bots score nothing */
	assert_int_equal(award(c, us, "{\"type\": \"open\", \"bot\": true}",
	    ch, 4), 0);
	assert_int_equal(award(c, us, "{\"type\": \"open\", \"bot\": false}",
	    ch, 4), 1);
	/* malformed events */
	assert_int_equal(award(c, us, "{\"url\": \"x\"}", ch, 4), -1);
	assert_int_equal(award(c, us, "{\"type\": \"\"}", ch, 4), -1);
	assert_int_equal(award(c, us, "{\"type\": 5}", ch, 4), -1);
	assert_int_equal(award(c, us, "[\"open\"]", ch, 4), -1);
	assert_int_equal(award(NULL, us, "{\"type\": \"open\"}", ch, 4), 0);
	/* max 0 stores nothing */
	assert_int_equal(award(c, us, "{\"type\": \"open\"}", ch, 0), 0);
	score_free(c);
}

/* An event may not leak into the lead: the caller's lead is unchanged. */
static void
behavior_lead_untouched(void **state)
{
	struct score_conf *c = load_ok(behavior_conf);
	struct cond_env env = { T0, NULL };
	json_t *lead = lead_of("{\"country\": \"US\"}");
	json_t *ev = lead_of("{\"type\": \"visit\", \"url\": \"/pricing\"}");
	struct score_change ch[4];

	(void)state;
	assert_int_equal(score_event(c, lead, ev, NULL, 0, &env, ch, 4), 1);
	assert_int_equal(json_object_size(lead), 1);
	assert_null(json_object_get(lead, "event_url"));
	/* a NULL lead is an empty one */
	assert_int_equal(score_event(c, NULL, ev, NULL, 0, &env, ch, 4), 0);
	json_decref(lead);
	json_decref(ev);
	score_free(c);
}

static void
behavior_several_rules_one_event(void **state)
{
	struct score_conf *c = load_ok(
	    "behavior \"a\" { event = click; points = 3 }\n"
	    "behavior \"b\" { event = { open, click }; points = 4 }\n"
	    "behavior \"c\" { event = click; points = 0 }\n"
	    "behavior \"d\" { event = click; points = -2 }\n");
	struct score_change ch[4];

	(void)state;
	assert_int_equal(award(c, "{}", "{\"type\": \"click\"}", ch, 4), 3);
	assert_string_equal(ch[0].rule, "a");
	assert_string_equal(ch[1].rule, "b");
	assert_string_equal(ch[2].rule, "d");   /* 0 points: no change */
	assert_int_equal(ch[2].points, -2);
	/* at most max, in file order */
	assert_int_equal(award(c, "{}", "{\"type\": \"click\"}", ch, 2), 2);
	assert_string_equal(ch[1].rule, "b");
	score_free(c);
}

static void
behavior_once(void **state)
{
	struct score_conf *c = load_ok(
	    "behavior \"demo\" { event = form; points = 30; repeat = once }\n"
	    "behavior \"monthly\" { event = visit; points = 5; repeat = once; "
	    "window = 30d }\n");
	json_t *lead = lead_of("{}");
	struct score_earned h[16];
	size_t nh = 0;

	(void)state;
	assert_int_equal(event_at(c, lead, "{\"type\": \"form\"}", T0, h, &nh),
	    30);
	assert_int_equal(event_at(c, lead, "{\"type\": \"form\"}", T0 + 1, h,
	    &nh), 0);
	assert_int_equal(event_at(c, lead, "{\"type\": \"form\"}", T0 + 400 *
	    DAY, h, &nh), 0);                  /* once means ever */
	/* once per window */
	assert_int_equal(event_at(c, lead, "{\"type\": \"visit\"}", T0, h,
	    &nh), 5);
	assert_int_equal(event_at(c, lead, "{\"type\": \"visit\"}", T0 + 29 *
	    DAY, h, &nh), 0);
	assert_int_equal(event_at(c, lead, "{\"type\": \"visit\"}", T0 + 30 *
	    DAY, h, &nh), 5);                  /* the first has left */
	assert_int_equal(event_at(c, lead, "{\"type\": \"visit\"}", T0 + 31 *
	    DAY, h, &nh), 0);
	assert_int_equal(nh, 3);
	json_decref(lead);
	score_free(c);
}

static void
behavior_always(void **state)
{
	struct score_conf *c = load_ok(
	    "behavior \"open\" { event = open; points = 2 }\n");
	json_t *lead = lead_of("{}");
	struct score_earned h[64];
	size_t nh = 0;
	int total = 0;

	(void)state;
	for (int i = 0; i < 50; i++)
		total += event_at(c, lead, "{\"type\": \"open\"}", T0 + i * 60,
		    h, &nh);
	assert_int_equal(total, 100);
	assert_int_equal(nh, 50);
	json_decref(lead);
	score_free(c);
}

/* points 5, cap 12 per 7 days, events at fixed times */
static void
behavior_cap_per_window(void **state)
{
	struct score_conf *c = load_ok(
	    "behavior \"click\" { event = click; points = 5; cap = 12; "
	    "window = 7d }\n"
	    "behavior \"other\" { event = open; points = 5 }\n");
	json_t *lead = lead_of("{}");
	struct cond_env env = { T0 + 2 * DAY, NULL };
	json_t *ev = lead_of("{\"type\": \"click\", \"url\": \"https://x/y\"}");
	struct score_earned h[16];
	struct score_change ch[4];
	size_t nh = 0;

	(void)state;
	assert_int_equal(event_at(c, lead, "{\"type\": \"click\"}", T0, h,
	    &nh), 5);
	assert_int_equal(event_at(c, lead, "{\"type\": \"click\"}", T0 + DAY,
	    h, &nh), 5);
	/* the third reaches the cap: only the room left, 2 */
	assert_int_equal(score_event(c, lead, ev, h, nh, &env, ch, 4), 1);
	assert_int_equal(ch[0].points, 2);
	assert_int_equal(ch[0].rule_points, 5);
	assert_int_equal(ch[0].capped, 1);
	assert_string_equal(ch[0].reason, "click https://x/y (behavior "
	    "\"click\", cap 12 per 7d reached)");
	assert_int_equal(event_at(c, lead, "{\"type\": \"click\"}", T0 + 2 *
	    DAY, h, &nh), 2);
	assert_int_equal(event_at(c, lead, "{\"type\": \"click\"}", T0 + 3 *
	    DAY, h, &nh), 0);
	/* other rules' points and other kinds do not count */
	assert_int_equal(event_at(c, lead, "{\"type\": \"open\"}", T0 + 3 *
	    DAY, h, &nh), 5);
	h[nh].rule = "click";
	h[nh].kind = SCORE_MANUAL;
	h[nh].points = 50;
	h[nh].earned_at = T0 + 3 * DAY;
	nh++;
	assert_int_equal(event_at(c, lead, "{\"type\": \"click\"}", T0 + 6 *
	    DAY, h, &nh), 0);
	/* day 7: the day-0 click (5) has left the window: room 5 */
	assert_int_equal(event_at(c, lead, "{\"type\": \"click\"}", T0 + 7 *
	    DAY, h, &nh), 5);
	/* day 8: the day-1 click has left too, but day 7 used its room */
	assert_int_equal(event_at(c, lead, "{\"type\": \"click\"}", T0 + 8 *
	    DAY, h, &nh), 5);
	/* day 9: the window (day 2, day 9] holds 5 + 5: room 2 */
	assert_int_equal(event_at(c, lead, "{\"type\": \"click\"}", T0 + 9 *
	    DAY, h, &nh), 2);
	assert_int_equal(event_at(c, lead, "{\"type\": \"click\"}", T0 + 9 *
	    DAY + 3600, h, &nh), 0);
	json_decref(ev);
	json_decref(lead);
	score_free(c);
}

static void
behavior_cap_lifetime_and_negative(void **state)
{
	struct score_conf *c = load_ok(
	    "behavior \"reply\" { event = reply; points = 15; cap = 40 }\n"
	    "behavior \"bounce\" { event = bounce; points = -8; cap = 20 }\n");
	json_t *lead = lead_of("{}");
	struct score_earned h[16];
	size_t nh = 0;

	(void)state;
	assert_int_equal(event_at(c, lead, "{\"type\": \"reply\"}", T0, h,
	    &nh), 15);
	assert_int_equal(event_at(c, lead, "{\"type\": \"reply\"}", T0 + 100 *
	    DAY, h, &nh), 15);
	assert_int_equal(event_at(c, lead, "{\"type\": \"reply\"}", T0 + 900 *
	    DAY, h, &nh), 10);
	assert_int_equal(event_at(c, lead, "{\"type\": \"reply\"}", T0 + 901 *
	    DAY, h, &nh), 0);
	/* a cap on a negative rule bounds the deduction */
	assert_int_equal(event_at(c, lead, "{\"type\": \"bounce\"}", T0, h,
	    &nh), -8);
	assert_int_equal(event_at(c, lead, "{\"type\": \"bounce\"}", T0, h,
	    &nh), -8);
	assert_int_equal(event_at(c, lead, "{\"type\": \"bounce\"}", T0, h,
	    &nh), -4);
	assert_int_equal(event_at(c, lead, "{\"type\": \"bounce\"}", T0, h,
	    &nh), 0);
	json_decref(lead);
	score_free(c);
}

/* The reason is valid UTF-8, without control characters, and always ends
 * with the rule. */
static void
behavior_reason_text(void **state)
{
	struct score_conf *c = load_ok(
	    "behavior \"v\" { event = visit; points = 1 }\n"
	    "behavior \"f\" { event = form; points = 1 }\n");
	struct score_change ch[2];
	char ev[2048], url[1500];
	size_t len;

	(void)state;
	assert_int_equal(award(c, "{}", "{\"type\": \"visit\", \"page\": "
	    "\"/a\\nb\"}", ch, 2), 1);
	assert_string_equal(ch[0].reason, "visit /a b (behavior \"v\")");
	assert_int_equal(award(c, "{}", "{\"type\": \"form\"}", ch, 2), 1);
	assert_string_equal(ch[0].reason, "form (behavior \"f\")");
	/* a long URL of 2-byte characters is cut on a character boundary */
	strcpy(url, "https://x/");
	for (len = strlen(url); len + 2 < 1400; len += 2)
		memcpy(url + len, "\xc3\xa9", 2);
	url[len] = '\0';
	snprintf(ev, sizeof(ev), "{\"type\": \"visit\", \"url\": \"%s\"}", url);
	for (int shift = 0; shift < 2; shift++) {
		size_t i = 0, n;
		const char *r;

		if (shift)
			snprintf(ev, sizeof(ev), "{\"type\": \"visit\", \"url\": "
			    "\"h%s\"}", url);
		assert_int_equal(award(c, "{}", ev, ch, 2), 1);
		r = ch[0].reason;
		n = strlen(r);
		assert_true(n < SCORE_REASON_MAX);
		assert_non_null(strstr(r, " (behavior \"v\")"));
		assert_string_equal(r + n - strlen(" (behavior \"v\")"),
		    " (behavior \"v\")");
		/* every multi-byte sequence is complete */
		while (i < n) {
			unsigned char b = (unsigned char)r[i];

			if (b < 0x80) {
				i++;
				continue;
			}
			assert_int_equal(b, 0xc3);
			assert_true(i + 1 < n);
			assert_int_equal((unsigned char)r[i + 1], 0xa9);
			i += 2;
		}
	}
	score_free(c);
}

/* event.NAME is rewritten only outside strings, and fields.event.x stays. */
static void
behavior_event_names_in_strings(void **state)
{
	struct score_conf *c = load_ok(
	    "behavior \"s\" { event = click; when = \"event.url == "
	    "'event.url' or event.tag == \\\"event.x\\\"\"; points = 1 }\n");
	struct score_change ch[2];

	(void)state;
	assert_int_equal(award(c, "{}", "{\"type\": \"click\", \"url\": "
	    "\"event.url\"}", ch, 2), 1);
	assert_int_equal(award(c, "{}", "{\"type\": \"click\", \"tag\": "
	    "\"event.x\"}", ch, 2), 1);
	assert_int_equal(award(c, "{}", "{\"type\": \"click\", \"url\": "
	    "\"event_url\"}", ch, 2), 0);
	score_free(c);
}

/* ---- decay ------------------------------------------------------------- */

static void
decay_half_life(void **state)
{
	struct score_conf *c = load_ok("decay { half_life = 30d }\n");
	struct score_earned one = { "x", SCORE_BEHAVIOR, 100, T0 };
	struct score_earned mix[] = {
		{ "b", SCORE_BEHAVIOR, 40, T0 },
		{ "p", SCORE_PROFILE, 20, T0 },
		{ "m", SCORE_MANUAL, 10, T0 },
		{ "f", SCORE_BEHAVIOR, 8, T0 + 90 * DAY },      /* future */
	};

	(void)state;
	/* exactly half after one half-life, a quarter after two */
	assert_true(score_decayed(c, &one, 1, T0 + 30 * DAY) == 50.0);
	assert_true(score_decayed(c, &one, 1, T0 + 60 * DAY) == 25.0);
	assert_true(score_decayed(c, &one, 1, T0 + 300 * DAY) ==
	    100.0 / 1024);
	assert_true(score_decayed(c, &one, 1, T0) == 100.0);
	assert_true(score_decayed(c, &one, 1, T0 - DAY) == 100.0);
	/* between: 100 * 2^-0.5 */
	assert_true(score_decayed(c, &one, 1, T0 + 15 * DAY) > 70.7106781);
	assert_true(score_decayed(c, &one, 1, T0 + 15 * DAY) < 70.7106782);
	/* monotonic */
	for (int d = 0; d < 100; d++)
		assert_true(score_decayed(c, &one, 1, T0 + d * DAY) >
		    score_decayed(c, &one, 1, T0 + (d + 1) * DAY));
	/* profile and manual points do not decay (applies_to = behavior) */
	assert_true(score_decayed(c, mix, 4, T0 + 30 * DAY) ==
	    20 + 20 + 10 + 8);
	/* very old points vanish, without trouble */
	assert_true(score_decayed(c, &one, 1, T0 + 400000 * (time_t)DAY) ==
	    0.0);
	score_free(c);
}

static void
decay_applies_to_all(void **state)
{
	struct score_conf *c = load_ok("decay { half_life = 12h; applies_to = "
	    "all }\n");
	struct score_earned mix[] = {
		{ "b", SCORE_BEHAVIOR, 40, T0 },
		{ "p", SCORE_PROFILE, 20, T0 },
		{ "m", SCORE_MANUAL, 10, T0 },
	};

	(void)state;
	assert_true(score_decayed(c, mix, 3, T0 + DAY) == 10 + 5 + 10);
	score_free(c);
}

static void
no_decay_without_section(void **state)
{
	struct score_conf *c = load_ok("grade \"hot\" { min = 70 }\n");
	struct score_earned one = { "x", SCORE_BEHAVIOR, 100, T0 };

	(void)state;
	assert_true(score_decayed(c, &one, 1, T0 + 3000 * DAY) == 100.0);
	assert_true(score_decayed(NULL, &one, 1, T0 + 3000 * DAY) == 100.0);
	assert_true(score_decayed(c, NULL, 0, T0) == 0.0);
	score_free(c);
}

static void
rounding(void **state)
{
	(void)state;
	assert_int_equal(score_round(0.0), 0);
	assert_int_equal(score_round(2.5), 3);
	assert_int_equal(score_round(2.4999), 2);
	assert_int_equal(score_round(-2.5), -3);
	assert_int_equal(score_round(-2.4), -2);
	assert_int_equal(score_round(1e12), 1000000000);
	assert_int_equal(score_round(-1e12), -1000000000);
	assert_int_equal(score_round(0.0 / 0.0), 0);
}

/* ---- grades and thresholds --------------------------------------------- */

static void
grades(void **state)
{
	struct score_conf *c = load_ok(
	    "grade \"warm\" { min = 40 }\n"
	    "grade \"hot\" { min = 70 }\n"
	    "grade \"cold\" { min = 0 }\n"
	    "grade \"toxic\" { min = -50 }\n");

	(void)state;
	assert_string_equal(score_grade(c, 100), "hot");
	assert_string_equal(score_grade(c, 70), "hot");
	assert_string_equal(score_grade(c, 69), "warm");
	assert_string_equal(score_grade(c, 40), "warm");
	assert_string_equal(score_grade(c, 39), "cold");
	assert_string_equal(score_grade(c, 0), "cold");
	assert_string_equal(score_grade(c, -1), "toxic");
	assert_string_equal(score_grade(c, -50), "toxic");
	assert_null(score_grade(c, -51));
	assert_null(score_grade(NULL, 100));
	score_free(c);
}

static void
thresholds_cross_upward_only(void **state)
{
	struct score_conf *c = load_ok(
	    "threshold \"ready\" { min = 70; action = route; team = east }\n"
	    "threshold \"warm\" { min = 40; action = notify_owner }\n"
	    "threshold \"ready-too\" { min = 70; action = notify_owner }\n");
	const struct score_threshold *t[4];
	size_t n;

	(void)state;
	assert_int_equal(score_crossed(c, 60, 75, t, 4), 2);
	assert_string_equal(t[0]->name, "ready");       /* file order */
	assert_string_equal(t[0]->team, "east");
	assert_int_equal(t[0]->action, SCORE_ROUTE);
	assert_string_equal(t[1]->name, "ready-too");
	/* landing exactly on min crosses; from min does not */
	assert_int_equal(score_crossed(c, 69, 70, t, 4), 2);
	assert_int_equal(score_crossed(c, 70, 90, t, 4), 0);
	/* staying above, staying below, going down */
	assert_int_equal(score_crossed(c, 75, 80, t, 4), 0);
	assert_int_equal(score_crossed(c, 10, 30, t, 4), 0);
	assert_int_equal(score_crossed(c, 90, 10, t, 4), 0);
	assert_int_equal(score_crossed(c, 50, 50, t, 4), 0);
	/* several at once, ascending */
	assert_int_equal(score_crossed(c, 0, 100, t, 4), 3);
	assert_string_equal(t[0]->name, "warm");
	assert_string_equal(t[2]->name, "ready-too");
	assert_int_equal(score_crossed(c, 0, 100, t, 1), 1);
	assert_string_equal(t[0]->name, "warm");
	/* down through decay, then up again: fires again */
	assert_int_equal(score_crossed(c, 75, 65, t, 4), 0);
	assert_int_equal(score_crossed(c, 65, 72, t, 4), 2);
	assert_int_equal(score_crossed(NULL, 0, 100, t, 4), 0);
	score_thresholds(c, &n);
	assert_int_equal(n, 3);
	score_free(c);
}

static void
threshold_positions_outlive_load(void **state)
{
	const char *text = "# thresholds\n"
	    "threshold \"ready\" {\n"
	    "\tmin = 70\n"
	    "\taction = route\n"
	    "\tteam = \"east\"\n"
	    "}\n";
	struct score_conf *c = load_ok(text);
	const struct score_threshold *t;
	size_t n;

	(void)state;
	t = score_thresholds(c, &n);
	assert_int_equal(n, 1);
	assert_string_equal(t[0].pos.file, "t.conf");
	assert_int_equal(t[0].pos.line, 2);
	assert_int_equal(t[0].pos.col, 1);
	assert_int_equal(t[0].team_pos.line, 5);
	assert_int_equal(t[0].team_pos.col, 9);
	score_free(c);
}

/* ---- configuration errors ---------------------------------------------- */

static void
errors_in_conditions(void **state)
{
	(void)state;
	/* the column of the bad operator inside the quoted condition */
	expect_error("profile \"a\" { when = \"budget >> 5\"; points = 1 }\n",
	    1, 30, "when: unknown operator '>>'");
	/* escaped quotes take two columns in the file */
	expect_error("profile \"a\" { when = \"country == \\\"US\\\" and "
	    "budget >> 5\"; points = 1 }\n", 1, 52, "when:");
	/* on a later line, after a tab */
	expect_error("\n\nbehavior \"b\" {\n\tevent = click\n"
	    "\twhen = \"event.url contains 5\"\n\tpoints = 1\n}\n", 5, 29,
	    "when:");
	expect_error("profile \"a\" { when = \"score > 5\"; points = 1 }\n", 1,
	    23, "a profile rule cannot use score");
	expect_error("profile \"a\" { when = \"true and event.url == 'x'\"; "
	    "points = 1 }\n", 1, 32, "event fields exist only in behavior "
	    "rules");
	expect_error("behavior \"a\" { event = click; when = \"event == 'x'\"; "
	    "points = 1 }\n", 1, 39, "name a field of the event");
	expect_error("profile \"a\" { when = \"\"; points = 1 }\n", 1, 1,
	    "when is required");
}

static void
errors_in_rules(void **state)
{
	(void)state;
	expect_error("profile \"a\" { when = \"true\" }\n", 1, 1,
	    "points is required");
	expect_error("profile \"a\" { when = \"true\"; points = 5000 }\n", 1, 39,
	    "points: expected an integer from -1000 to 1000");
	expect_error("profile \"a\" { when = \"true\"; points = 1; bonus = 2 }\n",
	    1, 42, "unknown key 'bonus' in section profile");
	expect_error("profile { when = \"true\"; points = 1 }\n", 1, 1,
	    "profile needs a name");
	expect_error("profile \"a\" { when = \"true\"; points = 1 }\n"
	    "profile \"a\" { when = \"false\"; points = 2 }\n", 2, 1,
	    "profile \"a\" is defined twice (first at t.conf:1)");
	expect_error("behavior \"b\" { points = 1 }\n", 1, 1,
	    "event is required");
	expect_error("behavior \"b\" { event = clik; points = 1 }\n", 1, 24,
	    "did you mean 'click'?");
	expect_error("behavior \"b\" { event = { open, \"no spaces\" }; "
	    "points = 1 }\n", 1, 32, "'no spaces' is not an event type");
	expect_error("behavior \"b\" { event = open; points = 1; repeat = "
	    "twice }\n", 1, 51, "repeat: 'twice' is not one of: always, once");
	expect_error("behavior \"b\" { event = open; points = 1; repeat = "
	    "once; cap = 5 }\n", 1, 63, "cap: a rule with repeat = once");
	expect_error("behavior \"b\" { event = open; points = 1; window = "
	    "7d }\n", 1, 51, "window: applies to a cap or to repeat = once");
	expect_error("behavior \"b\" { event = open; points = 1; cap = 5; "
	    "window = 7 days }\n", 1, 62, "unexpected text after the value "
	    "of 'window'");
	expect_error("behavior \"b\" { event = open; points = 1; cap = -1 }\n",
	    1, 48, "cap: expected an integer from 0");
	expect_error("behavior \"b\" {\n event = open\n points = 1\n repeat = "
	    "once\n window = 500ms\n}\n", 5, 11, "window: at least 1s");
	/* a name with a control character */
	expect_error("profile \"a\\tb\" { when = \"true\"; points = 1 }\n", 1, 1,
	    "a name has 1 to 64 bytes");
}

static void
errors_in_other_sections(void **state)
{
	(void)state;
	expect_error("grade \"hot\" { min = 70 }\ngrade \"warm\" { min = 70 }\n",
	    2, 22, "grade \"hot\" has the same min");
	expect_error("grade \"hot\" { }\n", 1, 1, "min is required");
	expect_error("threshold \"t\" { min = 70; action = route }\n", 1, 1,
	    "team is required with action = route");
	expect_error("threshold \"t\" { min = 70; team = east }\n", 1, 1,
	    "action is required");
	expect_error("threshold \"t\" { min = 70; action = notify_owner; "
	    "team = \"x\" }\n", 1, 57, "team: only for action = route");
	expect_error("threshold \"t\" { min = 70; action = call }\n", 1, 36,
	    "action: 'call' is not one of: route, notify_owner");
	expect_error("decay { half_life = 30d }\ndecay { half_life = 10d }\n",
	    2, 1, "decay is set twice");
	expect_error("decay \"x\" { half_life = 30d }\n", 1, 1,
	    "decay takes no name");
	expect_error("decay { half_life = 1s }\n", 1, 21, "half_life:");
	expect_error("decay { applies_to = profile }\n", 1, 22,
	    "applies_to: 'profile' is not one of: behavior, all");
	expect_error("score = 5\n", 1, 1, "unknown key 'score'");
	expect_error("rule \"x\" { }\n", 1, 1, "unknown section 'rule'");
	expect_error("profile \"a\" { when = \"true\"\n", 1, 1,
	    "section is not closed with '}'");
}

/* Every error is reported, not just the first. */
static void
errors_all_collected(void **state)
{
	const char *text =
	    "profile \"a\" { when = \"x >> 1\"; points = 1 }\n"
	    "behavior \"b\" { event = clik; points = 1 }\n"
	    "grade \"g\" { }\n";
	struct cfgfile_errors e = { NULL, 0 };

	(void)state;
	assert_null(score_load_string("t.conf", text, strlen(text), &e));
	assert_int_equal(e.n, 3);
	cfgfile_errors_free(&e);
}

static void
load_from_files_with_include(void **state)
{
	char dir[] = "/tmp/lc-test-score-XXXXXX", path[512], inc[512];
	struct cfgfile_errors e = { NULL, 0 };
	struct score_conf *c;
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/scoring.conf", dir);
	snprintf(inc, sizeof(inc), "%s/more.conf", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("grade \"hot\" { min = 70 }\ninclude \"more.conf\"\n", f);
	fclose(f);
	f = fopen(inc, "w");
	assert_non_null(f);
	fputs("# more\nprofile \"p\" {\n\twhen = \"budget > 'x' and\"\n"
	    "\tpoints = 1\n}\n", f);
	fclose(f);
	assert_null(score_load(path, &e));
	if (e.n != 1)
		dump(&e);
	assert_int_equal(e.n, 1);
	{
		char want[600];

		snprintf(want, sizeof(want), "%s:3:", inc);
		assert_memory_equal(e.msgs[0], want, strlen(want));
	}
	cfgfile_errors_free(&e);
	/* fixed, it loads, and the threshold file names are kept */
	f = fopen(inc, "w");
	assert_non_null(f);
	fputs("threshold \"t\" { min = 5; action = route; team = a }\n", f);
	fclose(f);
	c = score_load(path, &e);
	dump(&e);
	assert_non_null(c);
	{
		size_t n;
		const struct score_threshold *t = score_thresholds(c, &n);

		assert_int_equal(n, 1);
		assert_string_equal(t[0].pos.file, inc);
	}
	score_free(c);
	unlink(inc);
	unlink(path);
	rmdir(dir);
	/* a missing file is an error */
	assert_null(score_load("/nonexistent/scoring.conf", &e));
	assert_true(e.n >= 1);
	cfgfile_errors_free(&e);
}

static void
empty_configuration(void **state)
{
	struct score_conf *c = load_ok("# nothing yet\n");
	struct score_reason r[2];
	struct score_change ch[2];
	const struct score_threshold *t[2];
	json_t *lead = lead_of("{}"), *ev = lead_of("{\"type\": \"open\"}");

	(void)state;
	assert_int_equal(score_profile(c, lead, NULL, r, 2), 0);
	assert_int_equal(score_event(c, lead, ev, NULL, 0, NULL, ch, 2), 0);
	assert_null(score_grade(c, 50));
	assert_int_equal(score_crossed(c, 0, 100, t, 2), 0);
	json_decref(lead);
	json_decref(ev);
	score_free(c);
	score_free(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(example_loads),
		cmocka_unit_test(profile_sum_and_reasons),
		cmocka_unit_test(profile_recomputed_when_lead_changes),
		cmocka_unit_test(profile_time_of_day),
		cmocka_unit_test(behavior_event_types_and_conditions),
		cmocka_unit_test(behavior_lead_untouched),
		cmocka_unit_test(behavior_several_rules_one_event),
		cmocka_unit_test(behavior_once),
		cmocka_unit_test(behavior_always),
		cmocka_unit_test(behavior_cap_per_window),
		cmocka_unit_test(behavior_cap_lifetime_and_negative),
		cmocka_unit_test(behavior_reason_text),
		cmocka_unit_test(behavior_event_names_in_strings),
		cmocka_unit_test(decay_half_life),
		cmocka_unit_test(decay_applies_to_all),
		cmocka_unit_test(no_decay_without_section),
		cmocka_unit_test(rounding),
		cmocka_unit_test(grades),
		cmocka_unit_test(thresholds_cross_upward_only),
		cmocka_unit_test(threshold_positions_outlive_load),
		cmocka_unit_test(errors_in_conditions),
		cmocka_unit_test(errors_in_rules),
		cmocka_unit_test(errors_in_other_sections),
		cmocka_unit_test(errors_all_collected),
		cmocka_unit_test(load_from_files_with_include),
		cmocka_unit_test(empty_configuration),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
