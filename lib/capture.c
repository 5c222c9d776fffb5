/*
 * capture - event checks and scoring decisions on capture.
 * See capture.h.
 */
#include "capture.h"
#include "cond.h"
#include "score.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_REASONS     64      /* profile rules named in a reason */
#define MAX_CHANGES     64      /* behavior rules awarding for one event */
#define MAX_CROSSED     32

static int
name_char(int c, int dot)
{
	return isalnum((unsigned char)c) || c == '_' || c == '-' ||
	    (dot && c == '.');
}

static int
name_valid(const char *s, size_t max, int dot)
{
	size_t n = 0;

	for (; s[n]; n++)
		if (n >= max || !name_char(s[n], dot))
			return 0;
	return n > 0;
}

int
capture_type_valid(const char *s)
{
	return s && name_valid(s, CAPTURE_TYPE_MAX, 1);
}

static int
skipped(const char *k, const char *const *skip)
{
	for (; skip && *skip; skip++)
		if (strcmp(k, *skip) == 0)
			return 1;
	return 0;
}

json_t *
capture_event_clean(const json_t *in, const char *const *skip, char *field,
    size_t fn, char *msg, size_t mn)
{
	const json_t *type;
	json_t *out, *v;
	const char *k;
	size_t ndata = 0;

	field[0] = msg[0] = '\0';
	if (!json_is_object(in)) {
		snprintf(msg, mn, "an event is a JSON object");
		return NULL;
	}
	type = json_object_get(in, "type");
	if (!json_is_string(type) || !capture_type_valid(json_string_value(
	    type)) || strlen(json_string_value(type)) != json_string_length(
	    type)) {
		snprintf(field, fn, "type");
		snprintf(msg, mn, "the event's type: 1 to %d letters, digits, "
		    "_ - or .", CAPTURE_TYPE_MAX);
		return NULL;
	}
	out = json_pack("{s:O}", "type", type);
	json_object_foreach((json_t *)in, k, v) {
		if (strcmp(k, "type") == 0 || skipped(k, skip))
			continue;
		snprintf(field, fn, "%s", k);
		if (!name_valid(k, CAPTURE_KEY_MAX, 0)) {
			snprintf(msg, mn, "event data names are 1 to %d letters, "
			    "digits, _ or -", CAPTURE_KEY_MAX);
			goto bad;
		}
		if (++ndata > CAPTURE_DATA_MAX) {
			snprintf(msg, mn, "more than %d data members",
			    CAPTURE_DATA_MAX);
			goto bad;
		}
		if (strcmp(k, "bot") == 0 && !json_is_boolean(v)) {
			snprintf(msg, mn, "true or false");
			goto bad;
		}
		if (json_is_string(v)) {
			if (json_string_length(v) > CAPTURE_STRING_MAX) {
				snprintf(msg, mn, "longer than %d bytes",
				    CAPTURE_STRING_MAX);
				goto bad;
			}
			if (strlen(json_string_value(v)) != json_string_length(v)) {
				snprintf(msg, mn, "contains a NUL character");
				goto bad;
			}
		} else if (!json_is_number(v) && !json_is_boolean(v) &&
		    !json_is_null(v)) {
			snprintf(msg, mn, "event data are text, numbers, true, "
			    "false or null");
			goto bad;
		}
		json_object_set(out, k, v);
	}
	field[0] = '\0';
	return out;
bad:
	json_decref(out);
	return NULL;
}

/* ---- scoring ---------------------------------------------------------------- */

static int
kind_of(const char *s, enum score_kind *k)
{
	if (!s)
		return -1;
	if (strcmp(s, "profile") == 0)
		*k = SCORE_PROFILE;
	else if (strcmp(s, "behavior") == 0)
		*k = SCORE_BEHAVIOR;
	else if (strcmp(s, "manual") == 0)
		*k = SCORE_MANUAL;
	else
		return -1;
	return 0;
}

/* The profile row's reason: "decision-maker +20, budget +15". */
static void
profile_reason(const struct score_reason *r, size_t n, char *out,
    size_t size)
{
	size_t len = 0;

	out[0] = '\0';
	if (n == 0 || !r[0].rule) {
		snprintf(out, size, "no profile rule holds");
		return;
	}
	for (size_t i = 0; i < n && r[i].rule; i++) {
		int w = snprintf(out + len, size - len, "%s%s %+d", i ? ", " : "",
		    r[i].rule, r[i].points);

		if (w < 0 || (size_t)w >= size - len) {
			/* cut at a whole entry, say there is more */
			out[len] = '\0';
			if (len + 5 < size)
				memcpy(out + len, ", ...", 6);
			return;
		}
		len += (size_t)w;
	}
}

static int
add_row(json_t *rows, const char *kind, const char *rule, int points,
    const char *reason)
{
	json_t *o = json_pack("{s:s, s:s?, s:i, s:s}", "kind", kind, "rule",
	    rule, "points", points, "reason", reason);

	return o ? json_array_append_new(rows, o) : -1;
}

static int
score(const struct score_conf *c, const json_t *lead, const json_t *history,
    const json_t *event, time_t now, int before, struct capture_score *out)
{
	struct score_reason reasons[MAX_REASONS + 1];
	struct score_change *ch = NULL;
	const struct score_threshold *crossed[MAX_CROSSED];
	struct score_earned *items = NULL;
	struct cond_env env = { now, NULL };
	size_t nhist = json_array_size(history), n = 0, i;
	long stored_profile = 0;
	int profile, nch = 0, ncross;
	char reason[SCORE_REASON_MAX];
	json_t *h;

	memset(out, 0, sizeof(*out));
	out->before = before;
	out->rows = json_array();
	out->changes = json_array();
	items = calloc(nhist + MAX_CHANGES + 1, sizeof(*items));
	ch = calloc(MAX_CHANGES, sizeof(*ch));
	if (!out->rows || !out->changes || !items || !ch)
		goto fail;
	json_array_foreach(history, i, h) {
		struct score_earned *e = &items[n];
		const json_t *at = json_object_get(h, "earned_at");

		if (kind_of(json_string_value(json_object_get(h, "kind")),
		    &e->kind) < 0 || !json_is_integer(json_object_get(h,
		    "points")) || !json_is_number(at))
			continue;
		e->rule = json_string_value(json_object_get(h, "rule"));
		e->points = (int)json_integer_value(json_object_get(h,
		    "points"));
		e->earned_at = (time_t)json_number_value(at);
		if (e->kind == SCORE_PROFILE)
			stored_profile += e->points;
		n++;
	}
	/* behavior first, on the history as it was */
	if (event) {
		if ((nch = score_event(c, lead, event, items, n, &env, ch,
		    MAX_CHANGES)) < 0)
			goto fail;
	}
	profile = score_profile(c, lead, &env, reasons, MAX_REASONS);
	reasons[MAX_REASONS].rule = NULL;
	if (profile != stored_profile) {
		profile_reason(reasons, MAX_REASONS, reason, sizeof(reason));
		if (add_row(out->rows, "profile", NULL, (int)(profile -
		    stored_profile), reason) < 0)
			goto fail;
		items[n].kind = SCORE_PROFILE;
		items[n].points = (int)(profile - stored_profile);
		items[n].earned_at = now;
		n++;
	}
	for (int k = 0; k < nch; k++) {
		if (add_row(out->rows, "behavior", ch[k].rule, ch[k].points,
		    ch[k].reason) < 0 || json_array_append_new(out->changes,
		    json_pack("{s:s, s:i, s:s}", "rule", ch[k].rule, "points",
		    ch[k].points, "reason", ch[k].reason)) < 0)
			goto fail;
		items[n].kind = SCORE_BEHAVIOR;
		items[n].rule = ch[k].rule;
		items[n].points = ch[k].points;
		items[n].earned_at = now;
		n++;
	}
	out->after = score_round(score_decayed(c, items, n, now));
	ncross = score_crossed(c, out->before, out->after, crossed,
	    MAX_CROSSED);
	out->crossed = ncross;
	for (int k = 0; k < ncross; k++)
		if (crossed[k]->action == SCORE_ROUTE)
			out->route_team = crossed[k]->team;     /* the highest */
	free(items);
	free(ch);
	return 0;
fail:
	free(items);
	free(ch);
	capture_score_free(out);
	return -1;
}

int
capture_score_new(const struct score_conf *c, const json_t *lead,
    const json_t *event, time_t now, struct capture_score *out)
{
	json_t *l = json_copy((json_t *)lead), *hist = json_array();
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if (l && hist) {
		if (!json_object_get(l, "created_at"))
			json_object_set_new(l, "created_at",
			    json_integer((json_int_t)now));
		rc = score(c, l, hist, event, now, 0, out);
	}
	json_decref(l);
	json_decref(hist);
	return rc;
}

int
capture_rescore(const struct score_conf *c, const json_t *lead,
    const json_t *history, const json_t *event, time_t now,
    struct capture_score *out)
{
	const json_t *s = json_object_get(lead, "score");

	return score(c, lead, history, event, now, json_is_integer(s) ?
	    (int)json_integer_value(s) : 0, out);
}

void
capture_score_free(struct capture_score *s)
{
	json_decref(s->rows);
	json_decref(s->changes);
	s->rows = s->changes = NULL;
}
