/*
 * Unit tests for lib/capture.c: event checks (type, data members, bounds,
 * the keys left out), the score of a new lead (profile row with its
 * reasons, behavior rows, thresholds crossed from 0), rescoring a stored
 * lead from its history (profile deltas, once and caps against the
 * history, decay, bots, thresholds crossed from the stored score, the
 * highest route team).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "capture.h"
#include "cfgfile.h"
#include "score.h"

static const char conf_text[] =
    "profile \"director\" { when = \"title matches '*director*'\"; "
    "points = 20 }\n"
    "profile \"budget\" { when = \"budget >= 10000\"; points = 15 }\n"
    "profile \"new\" { when = \"age < 1d\"; points = 1 }\n"
    "behavior \"click\" { event = click; points = 3; cap = 6; window = 7d }\n"
    "behavior \"demo\" { event = form; when = \"event.form == 'demo'\"; "
    "points = 30; repeat = once }\n"
    "decay { half_life = 10d; applies_to = behavior }\n"
    "grade \"hot\" { min = 70 }\n"
    "threshold \"warm\" { min = 30; action = notify_owner }\n"
    "threshold \"ready\" { min = 50; action = route; team = \"east\" }\n"
    "threshold \"hot\" { min = 60; action = route; team = \"senior\" }\n";

static struct score_conf *
conf(void)
{
	struct cfgfile_errors errs;
	struct score_conf *c;

	memset(&errs, 0, sizeof(errs));
	c = score_load_string("t.conf", conf_text, strlen(conf_text), &errs);
	if (!c)
		fail_msg("scoring.conf: %s", errs.n ? errs.msgs[0] : "?");
	return c;
}

static json_t *
J(const char *s)
{
	json_error_t e;
	json_t *v = json_loads(s, JSON_ALLOW_NUL, &e);

	if (!v)
		fail_msg("bad test JSON %s: %s", s, e.text);
	return v;
}

static const char *
rowstr(const json_t *rows, size_t i, const char *k)
{
	return json_string_value(json_object_get(json_array_get(rows, i), k));
}

static int
rowint(const json_t *rows, size_t i, const char *k)
{
	return (int)json_integer_value(json_object_get(json_array_get(rows, i),
	    k));
}

/* ---- events --------------------------------------------------------------- */

static char field[96], msg[256];

static void
event_ok(void **state)
{
	static const char *const skip[] = { "lead", "email", "phone", NULL };
	json_t *in = J("{\"lead\": 5, \"email\": \"a@b.c\", \"type\": \"visit\","
	    " \"url\": \"https://x.example/pricing\", \"n\": 2, \"bot\": false,"
	    " \"x-y_z\": null, \"ok\": true}");
	json_t *out = capture_event_clean(in, skip, field, sizeof(field), msg,
	    sizeof(msg));

	(void)state;
	assert_non_null(out);
	assert_string_equal(field, "");
	assert_string_equal(json_string_value(json_object_get(out, "type")),
	    "visit");
	assert_null(json_object_get(out, "lead"));
	assert_null(json_object_get(out, "email"));
	assert_int_equal(json_object_size(out), 6);
	json_decref(out);
	json_decref(in);
	assert_true(capture_type_valid("page.view"));
	assert_true(capture_type_valid("hot_page-2"));
	assert_false(capture_type_valid(""));
	assert_false(capture_type_valid("a b"));
	assert_false(capture_type_valid("caf\xc3\xa9"));
	assert_false(capture_type_valid(NULL));
}

static void
bad_event(const char *src, const char *wfield, const char *wmsg)
{
	json_t *in = J(src);
	json_t *out = capture_event_clean(in, NULL, field, sizeof(field), msg,
	    sizeof(msg));

	json_decref(in);
	if (out) {
		json_decref(out);
		fail_msg("accepted %s", src);
	}
	if (strcmp(field, wfield) != 0 || !strstr(msg, wmsg))
		fail_msg("%s: got %s: %s, want %s: ...%s...", src, field, msg,
		    wfield, wmsg);
}

static void
event_bad(void **state)
{
	char big[1200], many[2000], *p;

	(void)state;
	bad_event("[]", "", "a JSON object");
	bad_event("{}", "type", "the event's type");
	bad_event("{\"type\": 5}", "type", "the event's type");
	bad_event("{\"type\": \"\"}", "type", "the event's type");
	bad_event("{\"type\": \"a b\"}", "type", "the event's type");
	bad_event("{\"type\": \"a\\u0000b\"}", "type", "the event's type");
	bad_event("{\"type\": \"x\", \"url\": [1]}", "url", "text, numbers");
	bad_event("{\"type\": \"x\", \"url\": {}}", "url", "text, numbers");
	bad_event("{\"type\": \"x\", \"bot\": \"yes\"}", "bot", "true or false");
	bad_event("{\"type\": \"x\", \"a b\": 1}", "a b", "names are");
	bad_event("{\"type\": \"x\", \"s\": \"a\\u0000b\"}", "s", "NUL");
	p = big + sprintf(big, "{\"type\": \"x\", \"s\": \"");
	memset(p, 'a', 1025);
	strcpy(p + 1025, "\"}");
	bad_event(big, "s", "longer than 1024 bytes");
	p = many + sprintf(many, "{\"type\": \"x\"");
	for (int i = 0; i < 33; i++)
		p += sprintf(p, ", \"k%d\": %d", i, i);
	strcpy(p, "}");
	bad_event(many, "k32", "more than 32");
	/* a type of 65 bytes */
	p = big + sprintf(big, "{\"type\": \"");
	memset(p, 't', 65);
	strcpy(p + 65, "\"}");
	bad_event(big, "type", "1 to 64");
}

/* ---- scoring a new lead ------------------------------------------------------ */

static void
new_lead_profile(void **state)
{
	struct score_conf *c = conf();
	json_t *lead = J("{\"title\": \"Sales Director\", \"budget\": 20000}");
	struct capture_score s;

	(void)state;
	assert_int_equal(capture_score_new(c, lead, NULL, 1700000000, &s), 0);
	assert_int_equal(s.before, 0);
	assert_int_equal(s.after, 36);         /* + "new": created_at = now */
	assert_int_equal(json_array_size(s.rows), 1);
	assert_string_equal(rowstr(s.rows, 0, "kind"), "profile");
	assert_null(rowstr(s.rows, 0, "rule"));
	assert_int_equal(rowint(s.rows, 0, "points"), 36);
	assert_string_equal(rowstr(s.rows, 0, "reason"),
	    "director +20, budget +15, new +1");
	assert_int_equal(json_array_size(s.changes), 0);
	assert_int_equal(s.crossed, 1);        /* warm: notify, no owner yet */
	assert_null(s.route_team);
	capture_score_free(&s);
	json_decref(lead);
	score_free(c);
}

static void
new_lead_with_event(void **state)
{
	struct score_conf *c = conf();
	json_t *lead = J("{\"title\": \"Director\", \"budget\": 20000}");
	json_t *ev = J("{\"type\": \"form\", \"form\": \"demo\"}");
	struct capture_score s;

	(void)state;
	assert_int_equal(capture_score_new(c, lead, ev, 1700000000, &s), 0);
	assert_int_equal(s.after, 66);
	assert_int_equal(json_array_size(s.rows), 2);
	assert_string_equal(rowstr(s.rows, 1, "kind"), "behavior");
	assert_string_equal(rowstr(s.rows, 1, "rule"), "demo");
	assert_int_equal(rowint(s.rows, 1, "points"), 30);
	assert_int_equal(json_array_size(s.changes), 1);
	assert_int_equal(rowint(s.changes, 0, "points"), 30);
	assert_non_null(rowstr(s.changes, 0, "reason"));
	assert_int_equal(s.crossed, 3);
	assert_string_equal(s.route_team, "senior");    /* the highest */
	capture_score_free(&s);
	/* nothing matches: no row, score 0 */
	json_decref(lead);
	lead = J("{\"title\": \"Intern\", \"created_at\": 0}");
	assert_int_equal(capture_score_new(c, lead, NULL, 1700000000, &s), 0);
	assert_int_equal(s.after, 0);
	assert_int_equal(json_array_size(s.rows), 0);
	assert_int_equal(s.crossed, 0);
	capture_score_free(&s);
	/* a bad event */
	json_decref(ev);
	ev = J("{\"form\": \"demo\"}");
	assert_int_equal(capture_score_new(c, lead, ev, 1700000000, &s), -1);
	assert_null(s.rows);
	json_decref(ev);
	json_decref(lead);
	score_free(c);
}

static void
no_scoring(void **state)
{
	json_t *lead = J("{\"title\": \"Director\"}");
	json_t *ev = J("{\"type\": \"click\"}");
	json_t *hist = J("[{\"kind\": \"manual\", \"rule\": null, \"points\": 7,"
	    " \"earned_at\": 1}]");
	struct capture_score s;

	(void)state;
	assert_int_equal(capture_score_new(NULL, lead, ev, 1700000000, &s), 0);
	assert_int_equal(s.after, 0);
	assert_int_equal(json_array_size(s.rows), 0);
	capture_score_free(&s);
	/* the history still counts (no decay without a configuration) */
	assert_int_equal(capture_rescore(NULL, lead, hist, ev, 1700000000, &s),
	    0);
	assert_int_equal(s.after, 7);
	capture_score_free(&s);
	json_decref(hist);
	json_decref(ev);
	json_decref(lead);
}

/* ---- rescoring -------------------------------------------------------------------- */

#define NOW 1700000000
#define DAY 86400

static void
rescore_profile_delta(void **state)
{
	struct score_conf *c = conf();
	/* stored: director (20) a week ago; now the budget holds too */
	json_t *lead = J("{\"title\": \"Director\", \"budget\": 50000, "
	    "\"score\": 20, \"created_at\": \"2023-11-01T00:00:00+00:00\"}");
	json_t *hist = J("[{\"kind\": \"profile\", \"rule\": null, \"points\": "
	    "20, \"earned_at\": 1699395200}]");
	struct capture_score s;

	(void)state;
	assert_int_equal(capture_rescore(c, lead, hist, NULL, NOW, &s), 0);
	assert_int_equal(s.before, 20);
	assert_int_equal(s.after, 35);
	assert_int_equal(json_array_size(s.rows), 1);
	assert_int_equal(rowint(s.rows, 0, "points"), 15);
	assert_string_equal(rowstr(s.rows, 0, "reason"),
	    "director +20, budget +15");
	assert_int_equal(s.crossed, 1);
	capture_score_free(&s);
	/* the same again: nothing changed, no row */
	json_decref(hist);
	hist = J("[{\"kind\": \"profile\", \"points\": 20, \"earned_at\": 1},"
	    "{\"kind\": \"profile\", \"points\": 15, \"earned_at\": 2}]");
	json_object_set_new(lead, "score", json_integer(35));
	assert_int_equal(capture_rescore(c, lead, hist, NULL, NOW, &s), 0);
	assert_int_equal(json_array_size(s.rows), 0);
	assert_int_equal(s.after, 35);
	assert_int_equal(s.crossed, 0);
	capture_score_free(&s);
	/* the title changed: the director points go */
	json_object_set_new(lead, "title", json_string("Intern"));
	assert_int_equal(capture_rescore(c, lead, hist, NULL, NOW, &s), 0);
	assert_int_equal(rowint(s.rows, 0, "points"), -20);
	assert_string_equal(rowstr(s.rows, 0, "reason"), "budget +15");
	assert_int_equal(s.after, 15);
	capture_score_free(&s);
	json_object_set_new(lead, "budget", json_integer(1));
	assert_int_equal(capture_rescore(c, lead, hist, NULL, NOW, &s), 0);
	assert_string_equal(rowstr(s.rows, 0, "reason"),
	    "no profile rule holds");
	assert_int_equal(s.after, 0);
	capture_score_free(&s);
	json_decref(hist);
	json_decref(lead);
	score_free(c);
}

static void
rescore_once_cap_decay_bot(void **state)
{
	struct score_conf *c = conf();
	json_t *lead = J("{\"score\": 30, \"created_at\": 0}");
	json_t *hist = J("[{\"kind\": \"behavior\", \"rule\": \"demo\", "
	    "\"points\": 30, \"earned_at\": 1700000000},"
	    "{\"kind\": \"behavior\", \"rule\": \"click\", \"points\": 3, "
	    "\"earned_at\": 1699999000},"
	    "{\"kind\": \"bogus\", \"points\": 100, \"earned_at\": 1},"
	    "{\"kind\": \"manual\", \"points\": \"x\", \"earned_at\": 1}]");
	json_t *demo = J("{\"type\": \"form\", \"form\": \"demo\"}");
	json_t *click = J("{\"type\": \"click\"}");
	json_t *bot = J("{\"type\": \"click\", \"bot\": true}");
	struct capture_score s;

	(void)state;
	/* once: the demo already scored */
	assert_int_equal(capture_rescore(c, lead, hist, demo, NOW, &s), 0);
	assert_int_equal(json_array_size(s.changes), 0);
	assert_int_equal(s.after, 33);
	capture_score_free(&s);
	/* cap 6: 3 earned, 3 more */
	assert_int_equal(capture_rescore(c, lead, hist, click, NOW, &s), 0);
	assert_int_equal(json_array_size(s.changes), 1);
	assert_int_equal(rowint(s.changes, 0, "points"), 3);
	assert_int_equal(s.after, 36);
	capture_score_free(&s);
	/* a bot scores nothing */
	assert_int_equal(capture_rescore(c, lead, hist, bot, NOW, &s), 0);
	assert_int_equal(json_array_size(s.rows), 0);
	capture_score_free(&s);
	/* ten days later (one half-life) the behavior points halve */
	assert_int_equal(capture_rescore(c, lead, hist, NULL, NOW + 10 * DAY,
	    &s), 0);
	assert_int_equal(s.after, 16);          /* 15 + 3 * 0.5^1.001 */
	capture_score_free(&s);
	json_decref(bot);
	json_decref(click);
	json_decref(demo);
	json_decref(hist);
	json_decref(lead);
	score_free(c);
}

static void
rescore_thresholds(void **state)
{
	struct score_conf *c = conf();
	json_t *lead = J("{\"score\": 45, \"title\": \"Director\", \"budget\": "
	    "20000, \"created_at\": 0}");
	json_t *hist = J("[{\"kind\": \"profile\", \"points\": 35, "
	    "\"earned_at\": 1699999999},"
	    "{\"kind\": \"behavior\", \"rule\": \"click\", \"points\": 3, "
	    "\"earned_at\": 1699999999},"
	    "{\"kind\": \"manual\", \"points\": 7, \"earned_at\": 1}]");
	json_t *click = J("{\"type\": \"click\"}");
	json_t *demo = J("{\"type\": \"form\", \"form\": \"demo\"}");
	struct capture_score s;

	(void)state;
	/* 45 -> 48: nothing crossed */
	assert_int_equal(capture_rescore(c, lead, hist, click, NOW, &s), 0);
	assert_int_equal(s.after, 48);
	assert_int_equal(s.crossed, 0);
	assert_null(s.route_team);
	capture_score_free(&s);
	/* 45 -> 75: ready (50) and hot (60): the highest team */
	assert_int_equal(capture_rescore(c, lead, hist, demo, NOW, &s), 0);
	assert_int_equal(s.after, 75);
	assert_int_equal(s.crossed, 2);
	assert_string_equal(s.route_team, "senior");
	capture_score_free(&s);
	/* the stored score was already above: nothing fires again */
	json_object_set_new(lead, "score", json_integer(70));
	assert_int_equal(capture_rescore(c, lead, hist, demo, NOW, &s), 0);
	assert_int_equal(s.crossed, 0);
	capture_score_free(&s);
	json_decref(demo);
	json_decref(click);
	json_decref(hist);
	json_decref(lead);
	score_free(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(event_ok),
		cmocka_unit_test(event_bad),
		cmocka_unit_test(new_lead_profile),
		cmocka_unit_test(new_lead_with_event),
		cmocka_unit_test(no_scoring),
		cmocka_unit_test(rescore_profile_delta),
		cmocka_unit_test(rescore_once_cap_decay_bot),
		cmocka_unit_test(rescore_thresholds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
