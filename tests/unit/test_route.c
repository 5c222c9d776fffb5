/*
 * Unit tests for lib/route.c: loading routing.conf (defaults, every
 * error with its position, the default rule), rule matching, stride
 * fairness and no burst for reps returning from absence, eligibility
 * (working hours in several zones across midnight and DST, capacity, the
 * declined set, required attributes), least-loaded ties, score tiers with
 * fallback, and the offer chain (broadcast, catch-all, queues).
 *
 * Configurations are written to a temporary directory at run time; the
 * example conf/routing.conf is read from $TOP_SRCDIR (or the current
 * directory when TOP_SRCDIR is unset). Times are fixed time_t values;
 * their local readings are given beside them.
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
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "cond.h"
#include "route.h"

/* 2024-03-04T12:00:00Z, a Monday (Detroit 07:00 EST). */
#define NOW     1709553600

static char tmpdir[256];
static int nfiles;

/* ---- helpers ----------------------------------------------------------- */

static int
setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/lc-test-route-XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int
teardown(void **state)
{
	char path[512];

	(void)state;
	for (int i = 1; i <= nfiles; i++) {
		snprintf(path, sizeof(path), "%s/r%d.conf", tmpdir, i);
		unlink(path);
	}
	return rmdir(tmpdir);
}

/* Write text to a new file; its path (static until the next call). */
static const char *
write_conf(const char *text)
{
	static char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/r%d.conf", tmpdir, ++nfiles);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
	return path;
}

static struct route_conf *
load_ok(const char *text)
{
	struct cfgfile_errors errs = { NULL, 0 };
	struct route_conf *rc = route_load(write_conf(text), &errs);

	for (size_t i = 0; i < errs.n; i++)
		print_message("# unexpected: %s\n", errs.msgs[i]);
	assert_int_equal(errs.n, 0);
	assert_non_null(rc);
	cfgfile_errors_free(&errs);
	return rc;
}

/*
 * Load text, which must fail; the errors, each on its own line with the
 * file's path replaced by "F". Caller frees.
 */
static char *
load_errors(const char *text)
{
	struct cfgfile_errors errs = { NULL, 0 };
	const char *path = write_conf(text);
	struct route_conf *rc = route_load(path, &errs);
	size_t plen = strlen(path), len = 1;
	char *out, *o;

	assert_null(rc);
	assert_true(errs.n > 0);
	for (size_t i = 0; i < errs.n; i++)
		len += strlen(errs.msgs[i]) + 1;
	o = out = malloc(len);
	assert_non_null(out);
	for (size_t i = 0; i < errs.n; i++) {
		const char *m = errs.msgs[i];

		if (strncmp(m, path, plen) == 0) {
			*o++ = 'F';
			m += plen;
		}
		o += sprintf(o, "%s\n", m);
	}
	*o = '\0';
	cfgfile_errors_free(&errs);
	return out;
}

/* Does the error list hold this line (a whole line)? */
static void
expect_line(const char *all, const char *line)
{
	size_t n = strlen(line);

	for (const char *p = all; (p = strstr(p, line)) != NULL; p++) {
		if ((p == all || p[-1] == '\n') && p[n] == '\n')
			return;
	}
	print_message("# missing: %s\n", line);
	for (const char *p = all; *p; ) {
		const char *nl = strchr(p, '\n');

		print_message("#   have: %.*s\n", (int)(nl - p), p);
		p = nl + 1;
	}
	fail();
}

static json_t *
lead(const char *json)
{
	json_error_t je;
	json_t *j = json_loads(json, 0, &je);

	if (!j)
		print_message("# bad test JSON: %s\n", je.text);
	assert_non_null(j);
	return j;
}

static struct route_rep_state *
states_new(const struct route_conf *rc)
{
	struct route_rep_state *s = calloc(rc->nreps + 1, sizeof(*s));

	assert_non_null(s);
	for (size_t i = 0; i < rc->nreps; i++) {
		route_state_init(&s[i]);
		s[i].away = 0;          /* present from the start */
	}
	return s;
}

static size_t
rep(const struct route_conf *rc, const char *id)
{
	size_t r = route_rep_find(rc, id);

	assert_true(r != ROUTE_NONE);
	return r;
}

/* One offer in team for lead; the rep id (static) or the action. */
static const char *
pick(const struct route_conf *rc, const char *team, const char *rule,
    const json_t *l, struct route_rep_state *st,
    const struct route_history *h, time_t now)
{
	static char buf[64];
	const struct route_team *t = route_team_find(rc, team);
	struct route_result out;
	size_t set[64];

	assert_non_null(t);
	assert_true(t->nmembers <= 64);
	memset(&out, 0, sizeof(out));
	out.set = set;
	out.setcap = 64;
	assert_int_equal(route_pick(rc, t, rule ? route_rule_find(rc, rule) :
	    NULL, l, st, h, now, &out), 0);
	switch (out.action) {
	case ROUTE_OFFER_ONE:
		return rc->reps[out.rep].id;
	case ROUTE_ASSIGN:
		snprintf(buf, sizeof(buf), "assign:%s", rc->reps[out.rep].id);
		return buf;
	case ROUTE_QUEUE:
		return "queue";
	case ROUTE_OFFER_ALL:
		return "broadcast";
	}
	return "?";
}

/* ---- loading ----------------------------------------------------------- */

static void
example_loads(void **state)
{
	const char *top = getenv("TOP_SRCDIR");
	struct cfgfile_errors errs = { NULL, 0 };
	struct route_conf *rc;
	char path[1024];

	(void)state;
	snprintf(path, sizeof(path), "%s/conf/routing.conf", top ? top : ".");
	rc = route_load(path, &errs);
	for (size_t i = 0; i < errs.n; i++)
		print_message("# %s\n", errs.msgs[i]);
	assert_int_equal(errs.n, 0);
	assert_non_null(rc);
	assert_true(rc->nteams >= 2);
	assert_true(rc->nreps >= 3);
	assert_null(rc->rules[rc->nrules - 1].when);
	route_conf_free(rc);
	cfgfile_errors_free(&errs);
}

static void
defaults(void **state)
{
	struct route_conf *rc = load_ok(
	    "team \"east\" {\n"
	    "}\n"
	    "rep \"ann\" {\n"
	    "\temail = \"ann@example.com\"\n"
	    "\tteams = { \"east\" }\n"
	    "}\n"
	    "rep \"bob\" {\n"
	    "\tname = \"Bob B.\"\n"
	    "\tphone = \"+15555550123\"\n"
	    "\temail = \"bob@example.com\"\n"
	    "\tnotify = { \"sms\" }\n"
	    "\tweight = 2.5\n"
	    "\tcapacity = 0\n"
	    "\tmanager = \"ann\"\n"
	    "\ttime_zone = \"America/Detroit\"\n"
	    "\tteams = { \"east\" }\n"
	    "}\n"
	    "rule \"default\" {\n"
	    "\tteam = \"east\"\n"
	    "}\n");
	const struct route_team *t = route_team_find(rc, "east");
	const struct route_rep *ann = &rc->reps[rep(rc, "ann")];
	const struct route_rep *bob = &rc->reps[rep(rc, "bob")];
	const struct route_rule *u = route_rule_find(rc, "default");

	(void)state;
	assert_non_null(t);
	assert_int_equal(t->method, ROUTE_ROUND_ROBIN);
	assert_string_equal(route_method_name(t->method), "round_robin");
	assert_int_equal(t->offer_window_ms, 5 * 60 * 1000);
	assert_int_equal(t->max_offers, 3);
	assert_int_equal(t->broadcast_round, 1);
	assert_true(t->catch_all == ROUTE_NONE && t->manager == ROUTE_NONE);
	assert_int_equal(t->nmembers, 2);
	assert_int_equal(t->members[0], rep(rc, "ann"));

	assert_string_equal(ann->name, "ann");
	assert_true(ann->weight == 1.0);
	assert_int_equal(ann->capacity, 20);
	assert_int_equal(ann->notify, ROUTE_NOTIFY_EMAIL);
	assert_null(ann->week);
	assert_null(rc->zones[ann->zone]);      /* UTC */
	assert_true(ann->manager == ROUTE_NONE);

	assert_string_equal(bob->name, "Bob B.");
	assert_true(bob->weight == 2.5 && bob->stride == 0.4);
	assert_int_equal(bob->capacity, 0);
	assert_int_equal(bob->notify, ROUTE_NOTIFY_SMS);
	assert_int_equal(bob->manager, rep(rc, "ann"));
	assert_string_equal(rc->zones[bob->zone], "America/Detroit");

	assert_non_null(u);
	assert_null(u->when);
	assert_ptr_equal(u->team, t);
	assert_int_equal(u->priority, 50);
	assert_int_equal(u->require, 0);
	assert_true(route_rep_find(rc, "nobody") == ROUTE_NONE);
	assert_null(route_team_find(rc, "west"));
	assert_null(route_rule_find(rc, "x"));
	route_conf_free(rc);
}

static void
errors_with_positions(void **state)
{
	char *e = load_errors(
	    /*  1 */ "time_zone = \"Mars/Olympus\"\n"
	    /*  2 */ "team \"east\" {\n"
	    /*  3 */ "\tcatch_all = \"ghost\"\n"
	    /*  4 */ "\tmanager = \"boss\"\n"
	    /*  5 */ "\tcolour = red\n"
	    /*  6 */ "\tmethod = random\n"
	    /*  7 */ "}\n"
	    /*  8 */ "team \"east\" {\n"
	    /*  9 */ "}\n"
	    /* 10 */ "rep \"boss\" {\n"
	    /* 11 */ "\temail = \"boss@example.com\"\n"
	    /* 12 */ "\tteams = { \"east\", \"west\" }\n"
	    /* 13 */ "\ttime_zone = \"Nowhere/Land\"\n"
	    /* 14 */ "\thours = { \"mon-fri 09:00-17:00\", "
		"\"mon-fry 09:00-17:00\", \"sat 9-12\" }\n"
	    /* 15 */ "\tweight = 0\n"
	    /* 16 */ "\tmanager = \"boss\"\n"
	    /* 17 */ "}\n"
	    /* 18 */ "rep \"boss\" {\n"
	    /* 19 */ "\temail = \"not-an-address\"\n"
	    /* 20 */ "\tphone = \"555-1234\"\n"
	    /* 21 */ "\tnotify = { \"email\", \"pigeon\" }\n"
	    /* 22 */ "}\n"
	    /* 23 */ "rule \"r1\" {\n"
	    /* 24 */ "\twhen = \"country == 'US' and\"\n"
	    /* 25 */ "\tteam = \"west\"\n"
	    /* 26 */ "\trequire = { \"territory\", \"zodiac\" }\n"
	    /* 27 */ "}\n"
	    /* 28 */ "rule \"r1\" {\n"
	    /* 29 */ "\tteam = \"east\"\n"
	    /* 30 */ "}\n"
	    /* 31 */ "rule \"r2\" {\n"
	    /* 32 */ "\twhen = \"contry == 'US'\"\n"
	    /* 33 */ "\tteam = \"east\"\n"
	    /* 34 */ "\tpriority = 101\n"
	    /* 35 */ "}\n"
	    /* 36 */ "rule \"default\" {\n"
	    /* 37 */ "\tteam = \"east\"\n"
	    /* 38 */ "}\n"
	    /* 39 */ "rep \"bad id!\" {\n"
	    /* 40 */ "}\n"
	    /* 41 */ "queue \"x\" {\n"
	    /* 42 */ "}\n");

	(void)state;
	expect_line(e, "F:1:13: time_zone: unknown time zone 'Mars/Olympus' "
	    "(a name such as \"America/Detroit\" from the tz database)");
	expect_line(e, "F:3:14: catch_all: no rep \"ghost\" (declare it with "
	    "rep \"ghost\" { ... })");
	expect_line(e, "F:5:2: unknown key 'colour' in section team");
	expect_line(e, "F:6:11: method: 'random' is not one of: round_robin, "
	    "least_loaded, score_tiers, broadcast, manual, pull");
	expect_line(e, "F:8:1: team \"east\" is declared twice (first at "
	    "line 2)");
	expect_line(e, "F:12:20: teams: no team \"west\" (declare it with "
	    "team \"west\" { ... })");
	expect_line(e, "F:13:14: time_zone: unknown time zone 'Nowhere/Land' "
	    "(a name such as \"America/Detroit\" from the tz database)");
	/* inside the quoted items: "mon-fry" at its 'fry', "9-12" */
	expect_line(e, "F:14:40: hours: expected a day to end the range "
	    "(mon .. sun)");
	expect_line(e, "F:14:63: hours: expected a time range HH:MM-HH:MM "
	    "(00:00 to 24:00), such as 09:00-17:30");
	expect_line(e, "F:15:11: weight: expected a number from 0.1 to 100, "
	    "got '0'");
	expect_line(e, "F:16:12: manager: a rep cannot be its own manager");
	expect_line(e, "F:18:1: rep \"boss\" is declared twice (first at "
	    "line 10)");
	expect_line(e, "F:19:10: email: 'not-an-address' is not a valid "
	    "address: no @");
	expect_line(e, "F:20:10: phone: '555-1234' is not an E.164 number "
	    "(+ and 7 to 15 digits, e.g. +15555550123)");
	expect_line(e, "F:21:22: notify: 'pigeon' is not one of: email, sms");
	/* the condition's error at its place inside the quotes */
	expect_line(e, "F:24:29: when: expected a condition after 'and', "
	    "found the end of the condition at 1:20");
	expect_line(e, "F:25:9: team: no team \"west\" (declare it with team "
	    "\"west\" { ... })");
	expect_line(e, "F:26:27: require: 'zodiac' is not one of: territory, "
	    "product, language (skills go in skills = { ... })");
	expect_line(e, "F:28:1: rule \"r1\" is declared twice (first at "
	    "line 23)");
	expect_line(e, "F:32:10: when: no lead field 'contry' (custom fields "
	    "are written fields.contry)");
	expect_line(e, "F:34:13: priority: expected an integer from 0 to 100, "
	    "got '101'");
	expect_line(e, "F:39:1: rep \"bad id!\": names use letters, digits "
	    "and . _ - @ + (at most 64)");
	expect_line(e, "F:41:1: unknown section 'queue'");
	free(e);
}

static void
more_errors(void **state)
{
	char *e = load_errors(
	    /*  1 */ "team \"t\" {\n"
	    /*  2 */ "\tmethod = score_tiers\n"
	    /*  3 */ "}\n"
	    /*  4 */ "team \"u\" {\n"
	    /*  5 */ "\tmethod = score_tiers\n"
	    /*  6 */ "\ttiers = { \"senior:70\", \"junior\", \"mid:70\", "
		"\"x:-1\" }\n"
	    /*  7 */ "\tmanager = \"nobody\"\n"
	    /*  8 */ "}\n"
	    /*  9 */ "team \"v\" {\n"
	    /* 10 */ "\ttiers = { \"a:1\" }\n"
	    /* 11 */ "\toffer_window = 1s\n"
	    /* 12 */ "}\n"
	    /* 13 */ "rep \"r\" {\n"
	    /* 14 */ "\tteams = { \"u\", \"u\" }\n"
	    /* 15 */ "\ttier = \"junior\"\n"
	    /* 16 */ "\thours = \"mon 09:00-09:00\"\n"
	    /* 17 */ "}\n"
	    /* 18 */ "rep \"s\" {\n"
	    /* 19 */ "\temail = \"s@example.com\"\n"
	    /* 20 */ "\tnotify = { \"sms\" }\n"
	    /* 21 */ "\thours = { \"weekdays 09:00-17:00\", "
		"\"mon 9:00-25:00\", \"mon\" }\n"
	    /* 22 */ "}\n"
	    /* 23 */ "rule \"first\" {\n"
	    /* 24 */ "\tteam = \"u\"\n"
	    /* 25 */ "}\n"
	    /* 26 */ "rule \"last\" {\n"
	    /* 27 */ "\twhen = \"score > 10\"\n"
	    /* 28 */ "}\n");

	(void)state;
	expect_line(e, "F:2:11: team \"t\": method score_tiers needs tiers, "
	    "e.g. tiers = { \"senior:70\", \"junior:0\" }");
	expect_line(e, "F:6:25: tiers: expected \"NAME:MIN\" (a tier name and "
	    "the lowest score it takes), got \"junior\"");
	expect_line(e, "F:6:35: tiers: \"mid:70\" repeats the tier name or "
	    "minimum of \"senior:70\"");
	expect_line(e, "F:6:45: tiers: expected \"NAME:MIN\" with MIN a score "
	    "from 0, got \"x:-1\"");
	expect_line(e, "F:7:12: manager: no rep \"nobody\" (declare it with "
	    "rep \"nobody\" { ... })");
	expect_line(e, "F:10:2: tiers: only for method = score_tiers");
	expect_line(e, "F:11:17: offer_window: expected a duration from "
	    "10000ms to 604800s (like 30s, 5m, 2h), got '1s'");
	expect_line(e, "F:13:1: rep \"r\": give an email or a phone, so that "
	    "offers reach the rep");
	expect_line(e, "F:14:17: teams: \"u\" is listed twice");
	expect_line(e, "F:16:15: hours: empty time range (write 00:00-24:00 "
	    "for the whole day)");
	expect_line(e, "F:20:13: notify: sms needs the rep's phone");
	expect_line(e, "F:21:13: hours: expected a day (mon, tue, wed, thu, "
	    "fri, sat, sun, a range like mon-fri, or daily)");
	expect_line(e, "F:21:41: hours: expected a time range HH:MM-HH:MM "
	    "(00:00 to 24:00), such as 09:00-17:30");
	expect_line(e, "F:21:58: hours: expected a space, then a time range "
	    "such as 09:00-17:30");
	expect_line(e, "F:23:1: rule \"first\" takes every lead, so the rules "
	    "after it are never used: move it last");
	expect_line(e, "F:26:1: rule \"last\": name the team its leads go to, "
	    "e.g. team = \"sales\"");
	free(e);
}

static void
tier_membership_error(void **state)
{
	char *e = load_errors(
	    /*  1 */ "team \"t\" {\n"
	    /*  2 */ "\tmethod = score_tiers\n"
	    /*  3 */ "\ttiers = { \"senior:70\", \"junior:0\" }\n"
	    /*  4 */ "}\n"
	    /*  5 */ "rep \"a\" {\n"
	    /*  6 */ "\temail = \"a@example.com\"\n"
	    /*  7 */ "\tteams = { \"t\" }\n"
	    /*  8 */ "\ttier = \"mid\"\n"
	    /*  9 */ "}\n"
	    /* 10 */ "rep \"b\" {\n"
	    /* 11 */ "\temail = \"b@example.com\"\n"
	    /* 12 */ "\tteams = { \"t\" }\n"
	    /* 13 */ "}\n"
	    /* 14 */ "rule \"default\" {\n"
	    /* 15 */ "\tteam = \"t\"\n"
	    /* 16 */ "\twhen = \"true\"\n"
	    /* 17 */ "}\n");

	(void)state;
	expect_line(e, "F:8:9: rep \"a\" is in team \"t\" (method "
	    "score_tiers), so its tier must be one of: senior, junior");
	expect_line(e, "F:10:1: rep \"b\" is in team \"t\" (method "
	    "score_tiers), so its tier must be one of: senior, junior");
	free(e);
}

static void
default_rule_required(void **state)
{
	static const char base[] =
	    "team \"t\" {\n"
	    "}\n"
	    "rep \"a\" {\n"
	    "\temail = \"a@example.com\"\n"
	    "\tteams = { \"t\" }\n"
	    "}\n";
	char text[1024], *e;

	(void)state;
	e = load_errors(base);
	expect_line(e, "F: no rules: every lead needs a team, so end with a "
	    "default rule, e.g. rule \"default\" { team = \"sales\" }");
	free(e);

	snprintf(text, sizeof(text), "%s"
	    "rule \"us\" {\n"           /* line 7 */
	    "\twhen = \"country == 'US'\"\n"
	    "\tteam = \"t\"\n"
	    "}\n", base);
	e = load_errors(text);
	expect_line(e, "F:7:1: the last rule must be a default rule (no "
	    "`when`, or when = \"true\") so that every lead finds a team; "
	    "\"us\" has a condition");
	free(e);

	snprintf(text, sizeof(text), "%s"
	    "rule \"all\" {\n"          /* line 7 */
	    "\tteam = \"t\"\n"
	    "}\n"
	    "rule \"us\" {\n"           /* line 10 */
	    "\twhen = \"country == 'US'\"\n"
	    "\tteam = \"t\"\n"
	    "}\n"
	    "rule \"default\" {\n"      /* line 14 */
	    "\twhen = \" TRUE \"\n"
	    "\tteam = \"t\"\n"
	    "}\n", base);
	e = load_errors(text);
	expect_line(e, "F:14:1: rule \"default\" is never used: the default "
	    "rule \"all\" (line 7) before it takes every lead");
	expect_line(e, "F:7:1: rule \"all\" takes every lead, so the rules "
	    "after it are never used: move it last");
	free(e);
}

static void
syntax_errors_stop_loading(void **state)
{
	char *e = load_errors(
	    "team \"t\" {\n"
	    "\tmethod = = round_robin\n"
	    "}\n");

	(void)state;
	/* the syntax error alone: not also "no rules" and the like */
	assert_non_null(strstr(e, "F:2:"));
	assert_null(strstr(e, "no rules"));
	free(e);
}

/* ---- matching ---------------------------------------------------------- */

static const char match_conf[] =
    "time_zone = \"America/Detroit\"\n"
    "team \"east\" {\n"
    "}\n"
    "team \"west\" {\n"
    "}\n"
    "team \"big\" {\n"
    "}\n"
    "team \"night\" {\n"
    "}\n"
    "rep \"a\" {\n"
    "\temail = \"a@example.com\"\n"
    "\tteams = { \"east\", \"west\", \"big\", \"night\" }\n"
    "}\n"
    "rule \"big-deal\" {\n"
    "\twhen = \"budget >= 100000\"\n"
    "\tteam = \"big\"\n"
    "}\n"
    "rule \"us-east\" {\n"
    "\twhen = \"country == 'US' and region in ['NY', 'MI', 'MA']\"\n"
    "\tteam = \"east\"\n"
    "}\n"
    "rule \"us\" {\n"
    "\twhen = \"country == 'US'\"\n"
    "\tteam = \"west\"\n"
    "}\n"
    "rule \"after-hours\" {\n"
    "\twhen = \"hour < 9 or hour >= 17\"\n"
    "\tteam = \"night\"\n"
    "}\n"
    "rule \"default\" {\n"
    "\tteam = \"east\"\n"
    "}\n";

static const char *
match(const struct route_conf *rc, const char *json, time_t now,
    const char *tz)
{
	struct cond_env env = { now, tz };
	json_t *l = lead(json);
	const struct route_rule *u = route_match(rc, l, &env);

	json_decref(l);
	assert_non_null(u);
	return u->name;
}

static void
rule_order_and_default(void **state)
{
	struct route_conf *rc = load_ok(match_conf);
	/* Monday 2024-03-11 13:30Z = 09:30 EDT in Detroit (routing time
	 * zone); 12:30Z = 08:30 EDT */
	time_t day = 1710163800, early = 1710160200;

	(void)state;
	assert_string_equal(match(rc, "{\"country\":\"US\",\"region\":\"MI\","
	    "\"budget\":250000}", day, NULL), "big-deal");
	assert_string_equal(match(rc, "{\"country\":\"US\",\"region\":\"mi\"}",
	    day, NULL), "us-east");
	assert_string_equal(match(rc, "{\"country\":\"US\",\"region\":\"CA\"}",
	    day, NULL), "us");
	assert_string_equal(match(rc, "{\"country\":\"FR\"}", day, NULL),
	    "default");
	assert_string_equal(match(rc, "{}", day, NULL), "default");
	/* hour in routing.conf's zone, or in the zone the caller names */
	assert_string_equal(match(rc, "{\"country\":\"FR\"}", early, NULL),
	    "after-hours");
	assert_string_equal(match(rc, "{\"country\":\"FR\"}", early, "UTC"),
	    "default");
	assert_string_equal(match(rc, "{\"country\":\"FR\"}", day,
	    "Asia/Tokyo"), "after-hours");
	route_conf_free(rc);
}

static void
decide_matches_then_picks(void **state)
{
	struct route_conf *rc = load_ok(match_conf);
	struct route_rep_state *st = states_new(rc);
	struct cond_env env = { 1710163800, NULL };
	struct route_result out;
	json_t *l = lead("{\"country\":\"US\",\"region\":\"NY\"}");

	(void)state;
	memset(&out, 0, sizeof(out));
	assert_int_equal(route_decide(rc, l, &env, st, NULL, &out), 0);
	assert_string_equal(out.rule->name, "us-east");
	assert_string_equal(out.team->name, "east");
	assert_int_equal(out.action, ROUTE_OFFER_ONE);
	assert_string_equal(rc->reps[out.rep].id, "a");
	assert_true(st[out.rep].pass == 1.0 && st[out.rep].changed);
	json_decref(l);
	free(st);
	route_conf_free(rc);
}

/* ---- stride scheduling ------------------------------------------------- */

static const char stride_conf[] =
    "team \"t\" {\n"
    "}\n"
    "rep \"a\" {\n"
    "\temail = \"a@example.com\"\n"
    "\tweight = 1\n"
    "\tcapacity = 0\n"
    "\tteams = { \"t\" }\n"
    "}\n"
    "rep \"b\" {\n"
    "\temail = \"b@example.com\"\n"
    "\tweight = 2\n"
    "\tcapacity = 0\n"
    "\tteams = { \"t\" }\n"
    "}\n"
    "rep \"c\" {\n"
    "\temail = \"c@example.com\"\n"
    "\tweight = 3\n"
    "\tcapacity = 0\n"
    "\tteams = { \"t\" }\n"
    "}\n"
    "rule \"default\" {\n"
    "\tteam = \"t\"\n"
    "}\n";

/* n picks; counts per rep index added to count[], the longest run of
 * consecutive wins of rep `watch` in *run. */
static void
run_picks(const struct route_conf *rc, struct route_rep_state *st, int n,
    int *count, size_t watch, int *run)
{
	const struct route_team *t = &rc->teams[0];
	json_t *l = lead("{}");
	int cur = 0;

	if (run)
		*run = 0;
	for (int i = 0; i < n; i++) {
		struct route_result out;

		memset(&out, 0, sizeof(out));
		assert_int_equal(route_pick(rc, t, NULL, l, st, NULL, NOW,
		    &out), 0);
		assert_int_equal(out.action, ROUTE_OFFER_ONE);
		count[out.rep]++;
		cur = out.rep == watch ? cur + 1 : 0;
		if (run && cur > *run)
			*run = cur;
	}
	json_decref(l);
}

static void
stride_fairness(void **state)
{
	struct route_conf *rc = load_ok(stride_conf);
	struct route_rep_state *st = states_new(rc);
	int count[3] = { 0, 0, 0 };
	static const char *const first[] = { "a", "b", "c", "c", "b", "c" };
	json_t *l = lead("{}");

	(void)state;
	/* ties go to file order; then by pass */
	for (size_t i = 0; i < 6; i++)
		assert_string_equal(pick(rc, "t", NULL, l, st, NULL, NOW),
		    first[i]);
	json_decref(l);
	free(st);
	st = states_new(rc);
	run_picks(rc, st, 10000, count, ROUTE_NONE, NULL);
	print_message("# stride 10000 leads over weights 1:2:3: %d %d %d\n",
	    count[0], count[1], count[2]);
	for (int i = 0; i < 3; i++) {
		double want = 10000.0 * (i + 1) / 6;

		assert_true(count[i] >= want * 0.99 && count[i] <= want * 1.01);
	}
	assert_int_equal(count[0] + count[1] + count[2], 10000);
	free(st);
	route_conf_free(rc);
}

static void
no_burst_after_absence(void **state)
{
	struct route_conf *rc = load_ok(stride_conf);
	struct route_rep_state *st = states_new(rc);
	size_t a = rep(rc, "a");
	int count[3] = { 0, 0, 0 }, run;

	(void)state;
	run_picks(rc, st, 60, count, ROUTE_NONE, NULL);
	st[a].on_duty = 0;              /* away while the others take 1000 */
	memset(count, 0, sizeof(count));
	run_picks(rc, st, 1000, count, ROUTE_NONE, NULL);
	assert_int_equal(count[a], 0);
	assert_int_equal(st[a].away, 1);
	st[a].on_duty = 1;
	memset(count, 0, sizeof(count));
	run_picks(rc, st, 600, count, a, &run);
	print_message("# after 1000 leads away, a (weight 1) took %d of 600, "
	    "at most %d in a row\n", count[a], run);
	assert_true(count[a] >= 95 && count[a] <= 105);
	assert_true(run <= 1);
	assert_int_equal(st[a].away, 0);
	free(st);
	route_conf_free(rc);
}

static void
no_burst_for_new_rep_or_capacity(void **state)
{
	struct route_conf *rc = load_ok(stride_conf);
	struct route_rep_state *st = states_new(rc);
	size_t c = rep(rc, "c");
	int count[3] = { 0, 0, 0 }, run;

	(void)state;
	/* c is new: joins with route_state_init() after 1000 leads */
	st[c].on_duty = 0;
	run_picks(rc, st, 1000, count, ROUTE_NONE, NULL);
	route_state_init(&st[c]);
	assert_true(st[c].away && st[c].pass == 0);
	memset(count, 0, sizeof(count));
	run_picks(rc, st, 600, count, c, &run);
	assert_true(count[c] >= 295 && count[c] <= 305);
	assert_true(run <= 2);

	/* at capacity counts as absence too */
	rc->reps[c].capacity = 5;       /* test-only change of the conf */
	st[c].open = 5;
	memset(count, 0, sizeof(count));
	run_picks(rc, st, 1000, count, ROUTE_NONE, NULL);
	assert_int_equal(count[c], 0);
	st[c].open = 0;
	memset(count, 0, sizeof(count));
	run_picks(rc, st, 5, count, c, &run);
	assert_true(run <= 2);
	rc->reps[c].capacity = 0;

	/* the daemon's explicit rejoin, e.g. on POST .../availability */
	st[c].changed = 0;
	route_rep_rejoin(&st[c]);
	assert_true(st[c].away && st[c].changed);
	route_charge(rc, st, c);
	assert_true(st[c].pass > 0);
	free(st);
	route_conf_free(rc);
}

static void
lead_specific_exclusion_keeps_credit(void **state)
{
	/* a rep that could not take some leads (declined) is not "away": it
	 * keeps its pass and catches up on the next ones */
	struct route_conf *rc = load_ok(stride_conf);
	struct route_rep_state *st = states_new(rc);
	size_t a = rep(rc, "a");
	struct route_history h = { &a, 1, 0 };
	json_t *l = lead("{}");
	double before;

	(void)state;
	before = st[a].pass;
	for (int i = 0; i < 10; i++)
		assert_string_not_equal(pick(rc, "t", NULL, l, st, &h, NOW),
		    "a");
	assert_true(st[a].pass == before && !st[a].away);
	assert_string_equal(pick(rc, "t", NULL, l, st, NULL, NOW), "a");
	json_decref(l);
	free(st);
	route_conf_free(rc);
}

/* ---- eligibility ------------------------------------------------------- */

static const char hours_conf[] =
    "team \"t\" {\n"
    "\tcatch_all = \"boss\"\n"
    "}\n"
    "rep \"boss\" {\n"
    "\temail = \"boss@example.com\"\n"
    "}\n"
    "rep \"det\" {\n"
    "\temail = \"det@example.com\"\n"
    "\ttime_zone = \"America/Detroit\"\n"
    "\thours = { \"mon-fri 09:00-17:00\", \"fri 22:00-02:00\",\n"
    "\t    \"sun 01:00-04:00\" }\n"
    "\tteams = { \"t\" }\n"
    "}\n"
    "rep \"tyo\" {\n"
    "\temail = \"tyo@example.com\"\n"
    "\ttime_zone = \"Asia/Tokyo\"\n"
    "\thours = \"mon-fri 09:00-18:00\"\n"
    "\tteams = { \"t\" }\n"
    "}\n"
    "rep \"ber\" {\n"
    "\temail = \"ber@example.com\"\n"
    "\ttime_zone = \"Europe/Berlin\"\n"
    "\thours = { \"Sunday 08:00-09:00\", \"sun 23:00-01:00\",\n"
    "\t    \"mon,wed, fri 12:00-13:00 14:00-24:00\" }\n"
    "\tteams = { \"t\" }\n"
    "}\n"
    "rep \"any\" {\n"
    "\temail = \"any@example.com\"\n"
    "\thours = \"daily 00:00-24:00\"\n"
    "}\n"
    "rule \"default\" {\n"
    "\tteam = \"t\"\n"
    "}\n";

static void
hours_in_zones(void **state)
{
	struct route_conf *rc = load_ok(hours_conf);
	static const struct {
		const char *rep;
		time_t t;
		int in;
		const char *why;
	} c[] = {
		/* Detroit: across midnight, Friday into Saturday */
		{ "det", 1709953140, 0, "Fri 21:59 EST" },
		{ "det", 1709958600, 1, "Fri 23:30 EST" },
		{ "det", 1709965800, 1, "Sat 01:30 EST (Friday's range)" },
		{ "det", 1709969400, 0, "Sat 02:30 EST" },
		/* Detroit, spring forward 2024-03-10 07:00Z */
		{ "det", 1710052200, 1, "Sun 01:30 EST" },
		{ "det", 1710055800, 1, "Sun 03:30 EDT" },
		{ "det", 1710059400, 0, "Sun 04:30 EDT (03:30 in EST)" },
		{ "det", 1710163800, 1, "Mon 09:30 EDT (08:30 in EST)" },
		{ "det", 1710160200, 0, "Mon 08:30 EDT" },
		{ "det", 1709559000, 0, "Mon 08:30 EST" },
		/* Detroit, fall back 2024-11-03 06:00Z: 01:30 happens twice */
		{ "det", 1730611800, 1, "Sun 01:30 EDT" },
		{ "det", 1730615400, 1, "Sun 01:30 EST" },
		{ "det", 1730619000, 1, "Sun 02:30 EST" },
		/* Tokyo: its Monday starts on Sunday in UTC */
		{ "tyo", 1710113400, 0, "Mon 08:30 JST (Sun 23:30Z)" },
		{ "tyo", 1710117000, 1, "Mon 09:30 JST (Mon 00:30Z)" },
		{ "tyo", 1709958600, 0, "Sat 13:30 JST" },
		/* Berlin, spring forward 2024-03-31 01:00Z */
		{ "ber", 1711866600, 1, "Sun 08:30 CEST (07:30 in CET)" },
		{ "ber", 1711870200, 0, "Sun 09:30 CEST (08:30 in CET)" },
		/* Berlin, Sunday night into Monday: the week wraps */
		{ "ber", 1710113400, 1, "Mon 00:30 CET (from sun 23:00)" },
		{ "ber", 1710117000, 0, "Mon 01:30 CET" },
		{ "ber", 1710160200, 0, "Mon 13:30 CET" },
		{ "ber", 1710163800, 1, "Mon 14:30 CET" },
		{ "ber", 1710197940, 1, "Mon 23:59 CET" },
		{ "ber", 1710198000, 0, "Tue 00:00 CET" },
		{ "any", 1710113400, 1, "any time" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		int got = route_in_hours(rc, rep(rc, c[i].rep), c[i].t);

		if (got != c[i].in)
			print_message("# %s at %lld (%s): got %d\n", c[i].rep,
			    (long long)c[i].t, c[i].why, got);
		assert_int_equal(got, c[i].in);
	}
	assert_int_equal(route_in_hours(rc, ROUTE_NONE, NOW), 0);
	route_conf_free(rc);
}

static void
hours_decide_the_pick(void **state)
{
	struct route_conf *rc = load_ok(hours_conf);
	struct route_rep_state *st = states_new(rc);
	json_t *l = lead("{}");

	(void)state;
	/* Mon 00:30Z: Tokyo 09:30 (in), Berlin 01:30 (out), Detroit Sun
	 * 20:30 (out) */
	assert_string_equal(pick(rc, "t", NULL, l, st, NULL, 1710117000),
	    "tyo");
	/* Mon 13:30Z: Detroit 09:30, Berlin 14:30, Tokyo 22:30 (out) */
	assert_string_equal(pick(rc, "t", NULL, l, st, NULL, 1710163800),
	    "det");
	assert_string_equal(pick(rc, "t", NULL, l, st, NULL, 1710163800),
	    "ber");
	assert_int_equal(st[rep(rc, "tyo")].away, 1);
	/* Sat 07:30Z: nobody works: the catch-all owner */
	assert_string_equal(pick(rc, "t", NULL, l, st, NULL, 1709969400),
	    "assign:boss");
	json_decref(l);
	free(st);
	route_conf_free(rc);
}

static const char attr_conf[] =
    "team \"t\" {\n"
    "\tmax_offers = 10\n"
    "}\n"
    "rep \"mi\" {\n"
    "\temail = \"mi@example.com\"\n"
    "\tteams = { \"t\" }\n"
    "\tterritories = { \"MI\", \"OH\" }\n"
    "\tproducts = { \"Widgets\" }\n"
    "\tlanguages = { \"en\" }\n"
    "\tskills = { \"enterprise\", \"saas\" }\n"
    "}\n"
    "rep \"ca\" {\n"
    "\temail = \"ca@example.com\"\n"
    "\tteams = { \"t\" }\n"
    "\tterritories = { \"CA\", \"postal:H3\" }\n"
    "\tproducts = { \"*\" }\n"
    "\tlanguages = { \"fr-CA\", \"en-CA\" }\n"
    "\tskills = { \"saas\" }\n"
    "}\n"
    "rep \"all\" {\n"
    "\temail = \"all@example.com\"\n"
    "\tteams = { \"t\" }\n"
    "\tterritories = { \"*\" }\n"
    "\tproducts = { \"gadgets\" }\n"
    "\tlanguages = { \"*\" }\n"
    "\tskills = { \"ENTERPRISE\" }\n"
    "}\n"
    "rule \"strict\" {\n"
    "\twhen = \"false\"\n"
    "\tteam = \"t\"\n"
    "\trequire = { \"territory\", \"product\", \"language\" }\n"
    "}\n"
    "rule \"ent\" {\n"
    "\twhen = \"false\"\n"
    "\tteam = \"t\"\n"
    "\tskills = { \"enterprise\" }\n"
    "}\n"
    "rule \"default\" {\n"
    "\tteam = \"t\"\n"
    "}\n";

static enum route_why
why(const struct route_conf *rc, const char *rule, const char *id,
    const char *json)
{
	struct route_rep_state s;
	json_t *l = lead(json);
	enum route_why w;

	route_state_init(&s);
	w = route_eligible(rc, route_rule_find(rc, rule), rep(rc, id), &s, l,
	    NULL, NOW);
	json_decref(l);
	return w;
}

static void
required_attributes(void **state)
{
	struct route_conf *rc = load_ok(attr_conf);
	const char *us = "{\"country\":\"US\",\"region\":\"mi\","
	    "\"product\":\"widgets\",\"language\":\"en-US\"}";

	(void)state;
	assert_int_equal(why(rc, "strict", "mi", us), ROUTE_ELIGIBLE);
	assert_int_equal(why(rc, "strict", "ca", us), ROUTE_LACKS_TERRITORY);
	assert_int_equal(why(rc, "strict", "all", us), ROUTE_LACKS_PRODUCT);
	/* country, region or postal prefix; "*" */
	assert_int_equal(why(rc, "strict", "ca", "{\"country\":\"ca\","
	    "\"language\":\"fr-ca\"}"), ROUTE_ELIGIBLE);
	assert_int_equal(why(rc, "strict", "ca", "{\"country\":\"XX\","
	    "\"postal_code\":\"h3z 2y7\"}"), ROUTE_ELIGIBLE);
	assert_int_equal(why(rc, "strict", "ca", "{\"country\":\"XX\","
	    "\"postal_code\":\"H4A\"}"), ROUTE_LACKS_TERRITORY);
	assert_int_equal(why(rc, "strict", "all", "{\"country\":\"JP\","
	    "\"language\":\"ja\"}"), ROUTE_ELIGIBLE);
	/* languages: "en" covers en-US; en-CA does not cover en-US or en */
	assert_int_equal(why(rc, "strict", "ca", "{\"country\":\"CA\","
	    "\"language\":\"en-US\"}"), ROUTE_LACKS_LANGUAGE);
	assert_int_equal(why(rc, "strict", "ca", "{\"country\":\"CA\","
	    "\"language\":\"en\"}"), ROUTE_LACKS_LANGUAGE);
	assert_int_equal(why(rc, "strict", "mi", "{\"region\":\"OH\","
	    "\"language\":\"EN\"}"), ROUTE_ELIGIBLE);
	assert_int_equal(why(rc, "strict", "mi", "{\"region\":\"OH\","
	    "\"language\":\"english\"}"), ROUTE_LACKS_LANGUAGE);
	/* a lead without the field: the requirement is waived */
	assert_int_equal(why(rc, "strict", "all", "{}"), ROUTE_ELIGIBLE);
	assert_int_equal(why(rc, "strict", "ca", "{\"product\":\"\"}"),
	    ROUTE_ELIGIBLE);
	/* skills: every one of the rule's, case-insensitively */
	assert_int_equal(why(rc, "ent", "mi", "{}"), ROUTE_ELIGIBLE);
	assert_int_equal(why(rc, "ent", "all", "{}"), ROUTE_ELIGIBLE);
	assert_int_equal(why(rc, "ent", "ca", "{}"), ROUTE_LACKS_SKILL);
	/* no rule: no requirement */
	assert_int_equal(why(rc, "default", "ca", us), ROUTE_ELIGIBLE);
	assert_string_equal(route_why_str(ROUTE_LACKS_LANGUAGE),
	    "does not speak the lead's language");
	route_conf_free(rc);
}

static void
required_attributes_in_pick(void **state)
{
	struct route_conf *rc = load_ok(attr_conf);
	struct route_rep_state *st = states_new(rc);
	json_t *l = lead("{\"country\":\"US\",\"region\":\"MI\"}");

	(void)state;
	/* territory only "mi" and "all"; round robin between the two */
	assert_string_equal(pick(rc, "t", "strict", l, st, NULL, NOW), "mi");
	assert_string_equal(pick(rc, "t", "strict", l, st, NULL, NOW), "all");
	assert_string_equal(pick(rc, "t", "strict", l, st, NULL, NOW), "mi");
	/* "ca" banked no absence: it takes the next unrestricted ones */
	assert_false(st[rep(rc, "ca")].away);
	assert_string_equal(pick(rc, "t", NULL, l, st, NULL, NOW), "ca");
	assert_string_equal(pick(rc, "t", NULL, l, st, NULL, NOW), "ca");
	json_decref(l);
	free(st);
	route_conf_free(rc);
}

static void
capacity_duty_declined(void **state)
{
	struct route_conf *rc = load_ok(stride_conf);
	struct route_rep_state *st = states_new(rc);
	size_t a = rep(rc, "a"), b = rep(rc, "b"), c = rep(rc, "c");
	size_t dec[] = { b };
	struct route_history h = { dec, 1, 0 };
	json_t *l = lead("{}");

	(void)state;
	rc->reps[a].capacity = 3;       /* test-only change of the conf */
	st[a].open = 3;
	assert_int_equal(route_eligible(rc, NULL, a, &st[a], l, NULL, NOW),
	    ROUTE_AT_CAPACITY);
	st[a].open = 2;
	assert_int_equal(route_eligible(rc, NULL, a, &st[a], l, NULL, NOW),
	    ROUTE_ELIGIBLE);
	st[c].on_duty = 0;
	assert_int_equal(route_eligible(rc, NULL, c, &st[c], l, NULL, NOW),
	    ROUTE_OFF_DUTY);
	assert_int_equal(route_eligible(rc, NULL, b, &st[b], l, &h, NOW),
	    ROUTE_DECLINED);
	assert_string_equal(route_why_str(ROUTE_DECLINED),
	    "declined or let an offer expire");
	/* a at capacity, c off duty, b declined: only a after a frees up */
	st[a].open = 3;
	assert_string_equal(pick(rc, "t", NULL, l, st, &h, NOW), "queue");
	st[a].open = 2;
	assert_string_equal(pick(rc, "t", NULL, l, st, &h, NOW), "a");
	json_decref(l);
	free(st);
	route_conf_free(rc);
}

/* ---- methods ----------------------------------------------------------- */

static void
least_loaded_ties(void **state)
{
	struct route_conf *rc = load_ok(
	    "team \"t\" {\n"
	    "\tmethod = least_loaded\n"
	    "}\n"
	    "rep \"a\" {\n"
	    "\temail = \"a@example.com\"\n"
	    "\tteams = { \"t\" }\n"
	    "}\n"
	    "rep \"b\" {\n"
	    "\temail = \"b@example.com\"\n"
	    "\tteams = { \"t\" }\n"
	    "}\n"
	    "rep \"c\" {\n"
	    "\temail = \"c@example.com\"\n"
	    "\tteams = { \"t\" }\n"
	    "}\n"
	    "rule \"default\" {\n"
	    "\tteam = \"t\"\n"
	    "}\n");
	struct route_rep_state *st = states_new(rc);
	size_t a = rep(rc, "a"), b = rep(rc, "b"), c = rep(rc, "c");
	json_t *l = lead("{}");

	(void)state;
	st[a].open = 3;
	st[b].open = 1;
	st[c].open = 1;
	/* b and c tie on open leads: the lower pass, then file order */
	assert_string_equal(pick(rc, "t", NULL, l, st, NULL, NOW), "b");
	/* the daemon has not counted b's offer as open yet: pass breaks
	 * the tie */
	assert_string_equal(pick(rc, "t", NULL, l, st, NULL, NOW), "c");
	assert_string_equal(pick(rc, "t", NULL, l, st, NULL, NOW), "b");
	st[b].open = 2;
	st[c].open = 2;
	st[a].open = 1;
	assert_string_equal(pick(rc, "t", NULL, l, st, NULL, NOW), "a");
	assert_string_equal(pick(rc, "t", NULL, l, st, NULL, NOW), "a");
	st[a].open = 2;
	/* all at 2: the lowest pass (a 2, b 2, c 1) */
	assert_string_equal(pick(rc, "t", NULL, l, st, NULL, NOW), "c");
	json_decref(l);
	free(st);
	route_conf_free(rc);
}

static const char tiers_conf[] =
    "team \"t\" {\n"
    "\tmethod = score_tiers\n"
    "\ttiers = { \"junior:0\", \"senior:70\", \"mid:40\" }\n"
    "\tcatch_all = \"boss\"\n"
    "}\n"
    "rep \"boss\" {\n"
    "\temail = \"boss@example.com\"\n"
    "}\n"
    "rep \"s1\" {\n"
    "\temail = \"s1@example.com\"\n"
    "\ttier = \"senior\"\n"
    "\tteams = { \"t\" }\n"
    "}\n"
    "rep \"m1\" {\n"
    "\temail = \"m1@example.com\"\n"
    "\ttier = \"mid\"\n"
    "\tteams = { \"t\" }\n"
    "}\n"
    "rep \"j1\" {\n"
    "\temail = \"j1@example.com\"\n"
    "\ttier = \"junior\"\n"
    "\tteams = { \"t\" }\n"
    "}\n"
    "rep \"j2\" {\n"
    "\temail = \"j2@example.com\"\n"
    "\ttier = \"junior\"\n"
    "\tweight = 2\n"
    "\tteams = { \"t\" }\n"
    "}\n"
    "rule \"default\" {\n"
    "\tteam = \"t\"\n"
    "}\n";

static void
score_tiers_with_fallback(void **state)
{
	struct route_conf *rc = load_ok(tiers_conf);
	struct route_rep_state *st = states_new(rc);
	const struct route_team *t = route_team_find(rc, "t");
	json_t *hot = lead("{\"score\":85}"), *warm = lead("{\"score\":40}"),
	    *cold = lead("{\"score\":12.5}"), *none = lead("{}"),
	    *str = lead("{\"score\":\"70\"}");
	int count[8] = { 0 };

	(void)state;
	/* sorted highest first */
	assert_string_equal(t->tiers[0].name, "senior");
	assert_string_equal(t->tiers[1].name, "mid");
	assert_string_equal(t->tiers[2].name, "junior");
	assert_string_equal(pick(rc, "t", NULL, hot, st, NULL, NOW), "s1");
	assert_string_equal(pick(rc, "t", NULL, hot, st, NULL, NOW), "s1");
	assert_string_equal(pick(rc, "t", NULL, str, st, NULL, NOW), "s1");
	assert_string_equal(pick(rc, "t", NULL, warm, st, NULL, NOW), "m1");
	assert_string_equal(pick(rc, "t", NULL, none, st, NULL, NOW), "j1");
	/* juniors by stride, weights 1 and 2 */
	for (int i = 0; i < 300; i++)
		count[rep(rc, pick(rc, "t", NULL, cold, st, NULL, NOW))]++;
	assert_int_equal(count[rep(rc, "j1")], 100);
	assert_int_equal(count[rep(rc, "j2")], 200);
	/* senior off: hot leads fall to mid, then junior */
	st[rep(rc, "s1")].on_duty = 0;
	assert_string_equal(pick(rc, "t", NULL, hot, st, NULL, NOW), "m1");
	st[rep(rc, "m1")].on_duty = 0;
	assert_string_equal(pick(rc, "t", NULL, hot, st, NULL, NOW), "j2");
	/* juniors off: cold leads go up to the nearest higher tier */
	st[rep(rc, "m1")].on_duty = 1;
	st[rep(rc, "s1")].on_duty = 1;
	st[rep(rc, "j1")].on_duty = 0;
	st[rep(rc, "j2")].on_duty = 0;
	assert_string_equal(pick(rc, "t", NULL, cold, st, NULL, NOW), "m1");
	st[rep(rc, "m1")].on_duty = 0;
	assert_string_equal(pick(rc, "t", NULL, cold, st, NULL, NOW), "s1");
	st[rep(rc, "s1")].on_duty = 0;
	assert_string_equal(pick(rc, "t", NULL, cold, st, NULL, NOW),
	    "assign:boss");
	json_decref(hot);
	json_decref(warm);
	json_decref(cold);
	json_decref(none);
	json_decref(str);
	free(st);
	route_conf_free(rc);
}

static const char chain_conf[] =
    "team \"rr\" {\n"
    "\tmax_offers = 2\n"
    "\tcatch_all = \"boss\"\n"
    "\tmanager = \"mgr\"\n"
    "}\n"
    "team \"mgr-only\" {\n"
    "\tmax_offers = 1\n"
    "\tbroadcast_round = false\n"
    "\tmanager = \"mgr\"\n"
    "}\n"
    "team \"nobody\" {\n"
    "\tmax_offers = 0\n"
    "}\n"
    "team \"bc\" {\n"
    "\tmethod = broadcast\n"
    "\tcatch_all = \"boss\"\n"
    "}\n"
    "team \"man\" {\n"
    "\tmethod = manual\n"
    "}\n"
    "team \"pl\" {\n"
    "\tmethod = pull\n"
    "}\n"
    "rep \"boss\" {\n"
    "\temail = \"boss@example.com\"\n"
    "}\n"
    "rep \"mgr\" {\n"
    "\temail = \"mgr@example.com\"\n"
    "}\n"
    "rep \"a\" {\n"
    "\temail = \"a@example.com\"\n"
    "\tteams = { \"rr\", \"mgr-only\", \"nobody\", \"bc\", \"pl\" }\n"
    "}\n"
    "rep \"b\" {\n"
    "\temail = \"b@example.com\"\n"
    "\tteams = { \"rr\", \"mgr-only\", \"nobody\", \"bc\", \"pl\" }\n"
    "}\n"
    "rep \"c\" {\n"
    "\temail = \"c@example.com\"\n"
    "\tteams = { \"rr\", \"mgr-only\", \"nobody\", \"bc\", \"pl\" }\n"
    "}\n"
    "rule \"default\" {\n"
    "\tteam = \"rr\"\n"
    "}\n";

static void
offer_chain(void **state)
{
	struct route_conf *rc = load_ok(chain_conf);
	struct route_rep_state *st = states_new(rc);
	const struct route_team *rr = route_team_find(rc, "rr");
	size_t a = rep(rc, "a"), b = rep(rc, "b"), c = rep(rc, "c");
	size_t dec[3], set[3];
	struct route_history h = { dec, 0, 0 };
	struct route_result out;
	json_t *l = lead("{}");

	(void)state;
	assert_string_equal(pick(rc, "rr", NULL, l, st, &h, NOW), "a");
	dec[h.ndeclined++] = a;
	assert_string_equal(pick(rc, "rr", NULL, l, st, &h, NOW), "b");
	dec[h.ndeclined++] = b;
	/* max_offers (2) tried: broadcast to the eligible rest */
	memset(&out, 0, sizeof(out));
	out.set = set;
	out.setcap = 3;
	assert_int_equal(route_pick(rc, rr, NULL, l, st, &h, NOW, &out), 0);
	assert_int_equal(out.action, ROUTE_OFFER_ALL);
	assert_int_equal(out.nset, 1);
	assert_int_equal(set[0], c);
	/* a broadcast needs room for the team */
	out.setcap = 2;
	assert_int_equal(route_pick(rc, rr, NULL, l, st, &h, NOW, &out), -1);
	out.set = NULL;
	assert_int_equal(route_pick(rc, rr, NULL, l, st, &h, NOW, &out), -1);
	/* nobody claimed: the catch-all owner */
	h.broadcast_done = 1;
	assert_string_equal(pick(rc, "rr", NULL, l, st, &h, NOW),
	    "assign:boss");
	/* no broadcast round: after max_offers straight to the catch-all,
	 * here the manager */
	h.broadcast_done = 0;
	h.ndeclined = 1;
	assert_string_equal(pick(rc, "mgr-only", NULL, l, st, &h, NOW),
	    "assign:mgr");
	/* with neither: the manual queue */
	h.ndeclined = 3;
	h.broadcast_done = 1;
	assert_string_equal(pick(rc, "nobody", NULL, l, st, &h, NOW), "queue");
	/* nobody eligible at all: no empty broadcast, straight on */
	h.ndeclined = 0;
	h.broadcast_done = 0;
	st[a].on_duty = st[b].on_duty = st[c].on_duty = 0;
	assert_string_equal(pick(rc, "rr", NULL, l, st, &h, NOW),
	    "assign:boss");
	assert_string_equal(pick(rc, "bc", NULL, l, st, &h, NOW),
	    "assign:boss");
	st[a].on_duty = st[b].on_duty = st[c].on_duty = 1;
	/* manual and pull teams queue */
	assert_string_equal(pick(rc, "man", NULL, l, st, &h, NOW), "queue");
	assert_string_equal(pick(rc, "pl", NULL, l, st, &h, NOW), "queue");
	json_decref(l);
	free(st);
	route_conf_free(rc);
}

static void
broadcast_set(void **state)
{
	struct route_conf *rc = load_ok(chain_conf);
	struct route_rep_state *st = states_new(rc);
	const struct route_team *bc = route_team_find(rc, "bc");
	size_t a = rep(rc, "a"), b = rep(rc, "b"), c = rep(rc, "c");
	size_t set[3], dec[] = { c };
	struct route_history h = { dec, 1, 0 };
	struct route_result out;
	json_t *l = lead("{}");
	double pa = st[a].pass;

	(void)state;
	memset(&out, 0, sizeof(out));
	out.set = set;
	out.setcap = bc->nmembers;
	assert_int_equal(route_pick(rc, bc, NULL, l, st, NULL, NOW, &out), 0);
	assert_int_equal(out.action, ROUTE_OFFER_ALL);
	assert_true(out.rep == ROUTE_NONE);
	assert_int_equal(out.nset, 3);
	assert_true(set[0] == a && set[1] == b && set[2] == c);
	assert_true(st[a].pass == pa);  /* nobody charged until a claim */
	st[b].on_duty = 0;
	assert_int_equal(route_pick(rc, bc, NULL, l, st, &h, NOW, &out), 0);
	assert_int_equal(out.action, ROUTE_OFFER_ALL);
	assert_int_equal(out.nset, 1);
	assert_int_equal(set[0], a);
	/* the claim: the daemon charges the winner */
	route_charge(rc, st, a);
	assert_true(st[a].pass == pa + 1);
	json_decref(l);
	free(st);
	route_conf_free(rc);
}

static void
offer_candidates_reported(void **state)
{
	struct route_conf *rc = load_ok(chain_conf);
	struct route_rep_state *st = states_new(rc);
	const struct route_team *rr = route_team_find(rc, "rr");
	size_t set[1];
	struct route_result out;
	json_t *l = lead("{}");

	(void)state;
	memset(&out, 0, sizeof(out));
	out.set = set;
	out.setcap = 1;         /* too small: fine for a single offer */
	assert_int_equal(route_pick(rc, rr, NULL, l, st, NULL, NOW, &out), 0);
	assert_int_equal(out.action, ROUTE_OFFER_ONE);
	assert_int_equal(out.nset, 3);
	assert_int_equal(set[0], rep(rc, "a"));
	json_decref(l);
	free(st);
	route_conf_free(rc);
}

/* Reps kept in the database laid over the file: a rep of both keeps the
 * file's settings except those given; a new rep is added; an error in
 * the overlay names its position there. */
static void
overlay_reps(void **state)
{
	static const char file[] =
	    "team \"t\" { method = round_robin }\n"
	    "rep \"ann\" { email = \"ann@x.example\"; weight = 2; teams = { \"t\" }\n"
	    "            skills = { \"a\" } }\n"
	    "rule \"all\" { team = \"t\" }\n";
	static const char over[] =
	    "rep \"ann\" { skills = { \"b\", \"c\" } }\n"
	    "rep \"zed\" { email = \"zed@x.example\"; teams = { \"t\" } }\n";
	static const char bad[] =
	    "rep \"zed\" {\n\temail = \"zed@x.example\"\n\tweight = 500\n}\n";
	struct cfgfile_errors errs = { NULL, 0 };
	const char *path = write_conf(file);
	struct route_conf *rc;
	const struct route_team *t;
	size_t ann, zed;

	(void)state;
	rc = route_load_overlay(path, "db", over, strlen(over), &errs);
	for (size_t i = 0; i < errs.n; i++)
		print_message("# unexpected: %s\n", errs.msgs[i]);
	assert_int_equal(errs.n, 0);
	assert_non_null(rc);
	assert_int_equal(rc->nreps, 2);
	ann = route_rep_find(rc, "ann");
	zed = route_rep_find(rc, "zed");
	assert_int_not_equal(ann, ROUTE_NONE);
	assert_int_not_equal(zed, ROUTE_NONE);
	assert_true(rc->reps[ann].weight == 2);         /* kept */
	assert_int_equal(rc->reps[ann].skills.n, 2);    /* replaced */
	assert_string_equal(rc->reps[ann].skills.v[1], "c");
	t = route_team_find(rc, "t");
	assert_int_equal(t->nmembers, 2);
	route_conf_free(rc);

	rc = route_load_overlay(path, "db", bad, strlen(bad), &errs);
	assert_null(rc);
	assert_true(errs.n > 0);
	assert_true(strncmp(errs.msgs[0], "db:3:", 5) == 0);
	assert_non_null(strstr(errs.msgs[0], "weight"));
	cfgfile_errors_free(&errs);
	assert_int_equal(route_valid_id("a.b-c_d@e+f"), 1);
	assert_int_equal(route_valid_id("bad id"), 0);
	assert_int_equal(route_valid_id(""), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(example_loads),
		cmocka_unit_test(defaults),
		cmocka_unit_test(errors_with_positions),
		cmocka_unit_test(more_errors),
		cmocka_unit_test(tier_membership_error),
		cmocka_unit_test(default_rule_required),
		cmocka_unit_test(syntax_errors_stop_loading),
		cmocka_unit_test(rule_order_and_default),
		cmocka_unit_test(decide_matches_then_picks),
		cmocka_unit_test(stride_fairness),
		cmocka_unit_test(no_burst_after_absence),
		cmocka_unit_test(no_burst_for_new_rep_or_capacity),
		cmocka_unit_test(lead_specific_exclusion_keeps_credit),
		cmocka_unit_test(hours_in_zones),
		cmocka_unit_test(hours_decide_the_pick),
		cmocka_unit_test(required_attributes),
		cmocka_unit_test(required_attributes_in_pick),
		cmocka_unit_test(capacity_duty_declined),
		cmocka_unit_test(least_loaded_ties),
		cmocka_unit_test(score_tiers_with_fallback),
		cmocka_unit_test(offer_chain),
		cmocka_unit_test(broadcast_set),
		cmocka_unit_test(offer_candidates_reported),
		cmocka_unit_test(overlay_reps),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
