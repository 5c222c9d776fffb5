/*
 * Unit tests for lib/drip.c: parsing and checking drip definitions (each
 * error with its line), time windows in a zone (weekdays, wrap past
 * midnight, DST), triggers and goals, and drip_run (waits, branches on
 * opened/clicked, set steps seen by later branches, quiet hours, exit,
 * the step counter).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "campaign.h"
#include "cfgfile.h"
#include "drip.h"
#include "tmpl.h"

static struct tmpl_set *templates;

#define FROM "from = \"Acme <hello@acme.example>\"\n"

static struct drip_def *
parse(const char *text, struct cfgfile_errors *errs)
{
	return drip_parse("t", "t.conf", text, strlen(text), templates, NULL,
	    errs);
}

/* text must fail with an error on line whose message contains want. */
static void
fails(const char *text, int line, const char *want)
{
	struct cfgfile_errors errs = { NULL, 0 };
	struct drip_def *d = parse(text, &errs);
	char at[32];
	int found = 0;

	snprintf(at, sizeof(at), "t.conf:%d:", line);
	for (size_t i = 0; i < errs.n; i++)
		found |= strncmp(errs.msgs[i], at, strlen(at)) == 0 &&
		    strstr(errs.msgs[i], want) != NULL;
	if (!found) {
		for (size_t i = 0; i < errs.n; i++)
			print_message("  %s\n", errs.msgs[i]);
		fail_msg("no error '%s' at line %d", want, line);
	}
	assert_null(d);
	cfgfile_errors_free(&errs);
}

static struct drip_def *
ok(const char *text)
{
	struct cfgfile_errors errs = { NULL, 0 };
	struct drip_def *d = parse(text, &errs);

	for (size_t i = 0; i < errs.n; i++)
		print_message("  %s\n", errs.msgs[i]);
	assert_int_equal(errs.n, 0);
	assert_non_null(d);
	return d;
}

static int
setup(void **state)
{
	struct tmpl_error te;

	(void)state;
	templates = tmpl_set_new();
	assert_int_equal(tmpl_set_add(templates, "a", "<p>{{first_name}}</p>",
	    21, &te), 0);
	assert_int_equal(tmpl_set_add(templates, "sms/s", "Hi {{first_name}}",
	    17, &te), 0);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	tmpl_set_free(templates);
	return 0;
}

/* ---- parsing ----------------------------------------------------------- */

static void
full_definition(void **state)
{
	struct drip_def *d;

	(void)state;
	d = ok(FROM
	    "quiet_hours = \"21:00-08:00\"\n"
	    "time_zone = \"America/New_York\"\n"
	    "reentry = \"after 30d\"\n"
	    "goals = { replied, clicked }\n"
	    "goal_link = \"https://acme.example/pricing*\"\n"
	    "trigger \"captured\" { if = \"source == 'trial'\" }\n"
	    "trigger \"status\" { to = lost; from = contacted }\n"
	    "trigger \"score\" { above = 50 }\n"
	    "step \"hi\" { type = email; subject = \"Hi\"; html = \"a\" }\n"
	    "step \"w\" { type = wait; duration = 2d; until = \"mon-fri "
	    "09:00-11:00\" }\n"
	    "step \"b\" { type = branch; if = \"clicked contains 'hi'\"; "
	    "then = \"x\" }\n"
	    "step \"s\" { type = sms; template = \"sms/s\" }\n"
	    "step \"x\" { type = set; tag = \"t\"; field = \"plan\"; value = 5;"
	    " score = -3 }\n");
	assert_int_equal(d->nsteps, 5);
	assert_int_equal(d->ntriggers, 3);
	assert_int_equal(d->reentry, DRIP_RE_AFTER);
	assert_int_equal(d->reentry_after_s, 30 * 86400);
	assert_true(d->has_quiet);
	assert_int_equal(d->quiet.from, 21 * 60);
	assert_int_equal(d->quiet.to, 8 * 60);
	assert_int_equal(d->goals, DRIP_G_REPLIED | DRIP_G_CLICKED |
	    DRIP_G_UNSUBSCRIBED | DRIP_G_HARD_BOUNCE);
	assert_int_equal(d->steps[1].wait_s, 2 * 86400);
	assert_int_equal(d->steps[1].until.days, 0x1f);
	assert_int_equal(d->steps[2].then_i, 4);
	assert_int_equal(d->steps[2].else_i, 3);   /* the next by default */
	assert_int_equal(d->steps[4].next, -1);
	assert_true(json_is_integer(d->steps[4].value));
	assert_int_equal(d->steps[4].score, -3);
	assert_string_equal(d->steps[0].email->from_src,
	    "Acme <hello@acme.example>");
	drip_set_version(d, 3);
	assert_string_equal(d->steps[0].email->name, "drip/t/3/hi");
	drip_def_free(d);
}

static void
errors_have_lines(void **state)
{
	(void)state;
	fails(FROM "step \"a\" { type = email; subject = \"x\"; html = \"no\" }\n",
	    2, "html: no template 'no'");
	fails(FROM "step \"a\" { type = branch; if = \"score > 1\"; "
	    "then = \"zz\" }\n", 2, "then: no step 'zz'");
	fails(FROM "step \"a\" { type = set; tag = \"t\"; next = \"b\" }\n"
	    "step \"b\" { type = set; tag = \"u\"; next = \"a\" }\n", 3,
	    "loops back to 'a' without a wait");
	fails(FROM "step \"a\" { type = exit }\nstep \"b\" { type = exit }\n",
	    3, "step 'b' is unreachable");
	fails(FROM "step \"a\" { type = wait; until = \"mon 09:00-09:00\" }\n",
	    2, "empty");
	fails(FROM "step \"a\" { type = wait }\n", 2, "a wait step needs");
	fails(FROM "step \"a\" { type = sms; template = \"sms/none\" }\n", 2,
	    "template: no template 'sms/none'");
	fails(FROM "step \"a\" { type = notify; notification = \"n\" }\n", 2,
	    "no notification 'n'");
	fails(FROM "step \"a\" { type = branch; if = \"nosuch > 1\"; "
	    "then = \"a\" }\n", 2, "no lead field 'nosuch'");
	fails(FROM "trigger \"list\" { }\nstep \"a\" { type = exit }\n", 2,
	    "say which list");
	fails(FROM "goals = { replied, nope }\nstep \"a\" { type = exit }\n", 2,
	    "'nope' is not a goal");
	fails(FROM "reentry = sometimes\nstep \"a\" { type = exit }\n", 2,
	    "reentry: never, always");
	fails(FROM "step \"a\" { type = wait; duration = 1d; subject = \"x\" }\n",
	    2, "subject: only email steps take it");
	fails(FROM "step \"a\" { type = exit; color = red }\n", 2,
	    "unknown key 'color'");
	fails(FROM, 1, "at least one step");
	/* a loop with a wait in it is fine */
	drip_def_free(ok(FROM "step \"a\" { type = set; tag = \"t\" }\n"
	    "step \"w\" { type = wait; duration = 1h; next = \"a\" }\n"));
}

/* ---- windows ------------------------------------------------------------ */

static time_t
utc(int y, int mo, int d, int h, int mi)
{
	struct tm tm = { 0 };

	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	return timegm(&tm);
}

static void
windows(void **state)
{
	struct drip_window w;
	char err[200];

	(void)state;
	assert_int_equal(drip_window_parse("mon-fri 09:00-11:00", &w, err,
	    sizeof(err)), 0);
	/* Saturday 2026-11-21 12:00 UTC -> Monday 09:00 UTC */
	assert_int_equal(drip_window_next(&w, NULL, utc(2026, 11, 21, 12, 0)),
	    utc(2026, 11, 23, 9, 0));
	/* inside: unchanged */
	assert_int_equal(drip_window_next(&w, NULL, utc(2026, 11, 23, 10, 30)),
	    utc(2026, 11, 23, 10, 30));
	/* in New York (UTC-5 in November): Monday 09:00 EST = 14:00 UTC */
	assert_int_equal(drip_window_next(&w, "America/New_York",
	    utc(2026, 11, 23, 12, 0)), utc(2026, 11, 23, 14, 0));
	/* across the DST change (2026-03-08 in New York): Monday 09:00 EDT */
	assert_int_equal(drip_window_next(&w, "America/New_York",
	    utc(2026, 3, 7, 12, 0)), utc(2026, 3, 9, 13, 0));
	/* wrapping past midnight: 21:00-08:00 */
	assert_int_equal(drip_window_parse("21:00-08:00", &w, err,
	    sizeof(err)), 0);
	assert_true(drip_in_window(&w, NULL, utc(2026, 11, 23, 23, 0)));
	assert_true(drip_in_window(&w, NULL, utc(2026, 11, 23, 7, 59)));
	assert_false(drip_in_window(&w, NULL, utc(2026, 11, 23, 8, 0)));
	assert_int_equal(drip_window_parse("sat,sun 10:00-12:00", &w, err,
	    sizeof(err)), 0);
	assert_int_equal(w.days, 0x60);
	assert_int_equal(drip_window_parse("fri-mon 10:00-12:00", &w, err,
	    sizeof(err)), 0);
	assert_int_equal(w.days, 0x71);
	assert_int_equal(drip_window_parse("funday 10:00-12:00", &w, err,
	    sizeof(err)), -1);
	assert_int_equal(drip_window_parse("10:00-25:00", &w, err,
	    sizeof(err)), -1);
}

/* ---- triggers and goals -------------------------------------------------- */

static void
triggers_and_goals(void **state)
{
	struct drip_def *d;
	json_t *lead = json_pack("{s:s, s:i}", "source", "trial", "score", 1);
	json_t *other = json_pack("{s:s}", "source", "web");
	json_t *data;

	(void)state;
	d = ok(FROM "goals = { clicked, won }\n"
	    "goal_link = \"https://acme.example/pricing*\"\n"
	    "trigger \"captured\" { if = \"source == 'trial'\" }\n"
	    "trigger \"list\" { list = news }\n"
	    "trigger \"score\" { above = 50 }\n"
	    "trigger \"status\" { to = lost }\n"
	    "step \"a\" { type = exit }\n");
	assert_int_equal(drip_trigger_match(d, "captured", NULL, lead, 0), 0);
	assert_int_equal(drip_trigger_match(d, "captured", NULL, other, 0), -1);
	data = json_pack("{s:s}", "list", "news");
	assert_int_equal(drip_trigger_match(d, "subscribed", data, other, 0), 1);
	json_decref(data);
	data = json_pack("{s:i, s:i}", "from", 40, "to", 55);
	assert_int_equal(drip_trigger_match(d, "score", data, other, 0), 2);
	json_decref(data);
	data = json_pack("{s:i, s:i}", "from", 55, "to", 60);
	assert_int_equal(drip_trigger_match(d, "score", data, other, 0), -1);
	json_decref(data);
	data = json_pack("{s:s, s:s}", "from", "contacted", "to", "lost");
	assert_int_equal(drip_trigger_match(d, "status", data, other, 0), 3);
	json_decref(data);

	data = json_pack("{s:s}", "url", "https://acme.example/pricing/pro");
	assert_int_equal(drip_goal_match(d, "click", data), DRIP_G_CLICKED);
	json_decref(data);
	data = json_pack("{s:s}", "url", "https://acme.example/blog");
	assert_int_equal(drip_goal_match(d, "click", data), 0);
	json_decref(data);
	data = json_pack("{s:s, s:s}", "url", "https://acme.example/pricing",
	    "class", "scanner");
	assert_int_equal(drip_goal_match(d, "click", data), 0);
	json_decref(data);
	data = json_pack("{s:s}", "to", "won");
	assert_int_equal(drip_goal_match(d, "status", data), DRIP_G_WON);
	json_decref(data);
	data = json_pack("{s:b}", "hard", 1);
	assert_int_equal(drip_goal_match(d, "bounce", data),
	    DRIP_G_HARD_BOUNCE);
	json_decref(data);
	assert_int_equal(drip_goal_match(d, "reply", NULL), 0);  /* not a goal */
	assert_int_equal(drip_goal_match(d, "unsubscribe", NULL),
	    DRIP_G_UNSUBSCRIBED);
	json_decref(lead);
	json_decref(other);
	drip_def_free(d);
}

/* ---- running ------------------------------------------------------------- */

static void
run_sequence(void **state)
{
	struct drip_def *d;
	struct drip_result r;
	json_t *lead = json_pack("{s:s, s:[], s:[s], s:i}", "first_name", "Al",
	    "opened", "clicked", "hi", "score", 10);
	time_t now = utc(2026, 11, 23, 12, 0);

	(void)state;
	d = ok(FROM
	    "step \"hi\" { type = email; subject = \"Hi\"; html = \"a\" }\n"
	    "step \"w\" { type = wait; duration = 1h }\n"
	    "step \"b\" { type = branch; if = \"clicked contains 'hi'\"; "
	    "then = \"hot\"; else = \"cold\" }\n"
	    "step \"hot\" { type = set; score = 50; next = \"b2\" }\n"
	    "step \"cold\" { type = email; subject = \"C\"; html = \"a\"; "
	    "next = \"end\" }\n"
	    "step \"b2\" { type = branch; if = \"score >= 60\"; then = \"end\"; "
	    "else = \"cold\" }\n"
	    "step \"end\" { type = exit }\n");
	drip_run(d, 0, 0, lead, NULL, now, &r);
	assert_int_equal(r.nacts, 2);           /* hi, w */
	assert_int_equal(r.acts[0].seq, 0);
	assert_int_equal(r.acts[1].step, 1);
	assert_int_equal(r.next, 2);
	assert_int_equal(r.next_at, now + 3600);
	drip_run(d, 2, 2, lead, NULL, now + 3600, &r);
	/* b -> hot (clicked) -> b2 sees the score set by hot -> end */
	assert_int_equal(r.nacts, 4);
	assert_int_equal(r.acts[1].step, 3);
	assert_int_equal(r.acts[2].step, 5);
	assert_int_equal(r.acts[3].step, 6);
	assert_int_equal(r.acts[3].seq, 5);
	assert_true(r.exited);
	assert_int_equal(r.next, -1);
	json_decref(lead);
	drip_def_free(d);
}

static void
run_quiet_hours(void **state)
{
	struct drip_def *d;
	struct drip_result r;
	json_t *lead = json_object();

	(void)state;
	d = ok(FROM "quiet_hours = \"21:00-08:00\"\n"
	    "step \"hi\" { type = email; subject = \"Hi\"; html = \"a\" }\n");
	/* 23:00 in New York (04:00 UTC next day): waits until 08:00 there */
	drip_run(d, 0, 0, lead, "America/New_York", utc(2026, 11, 24, 4, 0),
	    &r);
	assert_int_equal(r.nacts, 0);
	assert_int_equal(r.next, 0);
	assert_int_equal(r.next_at, utc(2026, 11, 24, 13, 0));
	/* at 09:00 there it goes */
	drip_run(d, 0, 0, lead, "America/New_York", utc(2026, 11, 24, 14, 0),
	    &r);
	assert_int_equal(r.nacts, 1);
	assert_int_equal(r.next, -1);
	json_decref(lead);
	drip_def_free(d);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(full_definition),
		cmocka_unit_test(errors_have_lines),
		cmocka_unit_test(windows),
		cmocka_unit_test(triggers_and_goals),
		cmocka_unit_test(run_sequence),
		cmocka_unit_test(run_quiet_hours),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
