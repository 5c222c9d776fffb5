/*
 * drip - load and check conf/drips/NAME.conf; triggers, goals, windows and
 * the step runner. See drip.h. Pure but for reading files.
 */
#include "drip.h"

#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "campaign.h"
#include "cond.h"
#include "conf.h"
#include "lead.h"
#include "quiet.h"
#include "tmpl.h"

#define DRIP_MAX_FILE   (256 * 1024)

/* ---- names ------------------------------------------------------------- */

static const char *const kind_names[] = { "email", "sms", "wait", "branch",
	"set", "notify", "route", "exit", NULL };
static const char *const trig_names[] = { "captured", "list", "score", "tag",
	"form", "routed", "status", "api", NULL };
static const struct { const char *name; unsigned bit; } goal_names[] = {
	{ "replied", DRIP_G_REPLIED }, { "clicked", DRIP_G_CLICKED },
	{ "qualified", DRIP_G_QUALIFIED }, { "won", DRIP_G_WON },
	{ "accepted", DRIP_G_ACCEPTED }, { "unsubscribed", DRIP_G_UNSUBSCRIBED },
	{ "hard_bounce", DRIP_G_HARD_BOUNCE },
};
static const char *const day_names[] = { "mon", "tue", "wed", "thu", "fri",
	"sat", "sun" };

const char *
drip_kind_name(enum drip_kind k)
{
	return kind_names[k];
}

const char *
drip_goal_name(unsigned g)
{
	for (size_t i = 0; i < sizeof(goal_names) / sizeof(goal_names[0]); i++)
		if (goal_names[i].bit == g)
			return goal_names[i].name;
	return "goal";
}

/* ---- windows ----------------------------------------------------------- */

static int
day_index(const char *s, size_t len)
{
	for (int i = 0; i < 7; i++)
		if (len == 3 && strncasecmp(s, day_names[i], 3) == 0)
			return i;
	return -1;
}

int
drip_window_parse(const char *s, struct drip_window *w, char *err, size_t n)
{
	const char *sp = strrchr(s, ' ');
	const char *times = sp ? sp + 1 : s;
	const char *dash;

	memset(w, 0, sizeof(*w));
	w->days = 0x7f;
	if (sp) {               /* days: mon-fri, sat,sun, mon */
		const char *p = s;

		w->days = 0;
		while (p < sp) {
			const char *e = p;
			int d0, d1;

			while (e < sp && *e != ',')
				e++;
			dash = memchr(p, '-', (size_t)(e - p));
			if (dash) {
				d0 = day_index(p, (size_t)(dash - p));
				d1 = day_index(dash + 1, (size_t)(e - dash - 1));
			} else {
				d0 = d1 = day_index(p, (size_t)(e - p));
			}
			if (d0 < 0 || d1 < 0) {
				snprintf(err, n, "'%.*s' is not a day or a range of "
				    "days (mon..sun, e.g. mon-fri or sat,sun)",
				    (int)(e - p), p);
				return -1;
			}
			for (int d = d0;; d = (d + 1) % 7) {
				w->days |= 1u << d;
				if (d == d1)
					break;
			}
			p = e < sp ? e + 1 : e;
		}
	}
	{
		struct quiet q;

		if (quiet_parse(times, &q, err, n) < 0)
			return -1;
		w->start = q.from;
		w->end = q.to;
	}
	if (w->start == w->end) {
		snprintf(err, n, "the window %s is empty: it would never come",
		    times);
		return -1;
	}
	return 0;
}

/* Local weekday (0 = monday) and minute of day at t. */
static int
local_at(const char *tz, time_t t, int *wday, int *min, int *sec)
{
	struct tm tm;

	if (cond_localtime(tz, t, &tm, NULL) < 0)
		return -1;
	*wday = (tm.tm_wday + 6) % 7;
	*min = tm.tm_hour * 60 + tm.tm_min;
	*sec = tm.tm_sec;
	return 0;
}

static int
in_window(const struct drip_window *w, int wday, int min)
{
	if (w->start < w->end)
		return (w->days >> wday & 1) && min >= w->start && min < w->end;
	/* wraps: the evening part on the day itself, the morning part
	 * belongs to the day before */
	if (min >= w->start)
		return w->days >> wday & 1;
	if (min < w->end)
		return w->days >> ((wday + 6) % 7) & 1;
	return 0;
}

int
drip_in_window(const struct drip_window *w, const char *tz, time_t t)
{
	int wday, min, sec;

	if (local_at(tz, t, &wday, &min, &sec) < 0)
		return 0;
	return in_window(w, wday, min);
}

time_t
drip_window_next(const struct drip_window *w, const char *tz, time_t t)
{
	if (!w->days)
		return -1;
	/* jump to the next window start until inside (a few jumps; a DST
	 * change may need one more) */
	for (int i = 0; i < 24; i++) {
		int wday, min, sec;
		long delta;

		if (local_at(tz, t, &wday, &min, &sec) < 0)
			return -1;
		if (in_window(w, wday, min))
			return t;
		if (min < w->start)
			delta = (long)(w->start - min) * 60 - sec;
		else
			delta = (long)(1440 - min + w->start) * 60 - sec;
		t += delta > 0 ? delta : 60;
	}
	return t;
}

/* ---- loading ----------------------------------------------------------- */

struct step_conf {
	char *type, *next, *until, *cond, *then, *els, *tmpl, *field, *value,
	    *tag, *notification, *team;
	long duration_ms, score;
};

#define S(f) offsetof(struct step_conf, f)
static const struct conf_key step_keys[] = {
	{ "type", CONF_ENUM, S(type), "email", 0, 0, kind_names, 0 },
	{ "next", CONF_STR, S(next), "", 0, 0, NULL, 0 },
	{ "duration", CONF_DURATION, S(duration_ms), "0", 0,
	  366LL * 86400 * 1000, NULL, 0 },
	{ "until", CONF_STR, S(until), "", 0, 0, NULL, 0 },
	{ "if", CONF_STR, S(cond), "", 0, 0, NULL, 0 },
	{ "then", CONF_STR, S(then), "", 0, 0, NULL, 0 },
	{ "else", CONF_STR, S(els), "", 0, 0, NULL, 0 },
	{ "template", CONF_STR, S(tmpl), "", 0, 0, NULL, 0 },
	{ "field", CONF_STR, S(field), "", 0, 0, NULL, 0 },
	{ "value", CONF_STR, S(value), "", 0, 0, NULL, 0 },
	{ "tag", CONF_STR, S(tag), "", 0, 0, NULL, 0 },
	{ "score", CONF_INT, S(score), "0", -100000, 100000, NULL, 0 },
	{ "notification", CONF_STR, S(notification), "", 0, 0, NULL, 0 },
	{ "team", CONF_STR, S(team), "", 0, 0, NULL, 0 },
	{ NULL, 0, 0, NULL, 0, 0, NULL, 0 }
};
#undef S

/* keys only email steps take (campaign_load_step binds them) */
static const char *const email_only[] = { "from", "reply_to", "subject",
	"preheader", "html", "text", "lists", "audience", "schedule", "rate",
	NULL };

struct top_conf {
	char *description, *from, *reply_to, *time_zone, *quiet, *reentry,
	    *goal_link;
	struct conf_strlist goals;
};

#define T(f) offsetof(struct top_conf, f)
static const struct conf_key top_keys[] = {
	{ "description", CONF_STR, T(description), "", 0, 0, NULL, 0 },
	{ "from", CONF_STR, T(from), "", 0, 0, NULL, 0 },
	{ "reply_to", CONF_STR, T(reply_to), "", 0, 0, NULL, 0 },
	{ "time_zone", CONF_STR, T(time_zone), "", 0, 0, NULL, 0 },
	{ "quiet_hours", CONF_STR, T(quiet), "", 0, 0, NULL, 0 },
	{ "reentry", CONF_STR, T(reentry), "never", 0, 0, NULL, 0 },
	{ "goals", CONF_STRLIST, T(goals), "", 0, 0, NULL, 0 },
	{ "goal_link", CONF_STR, T(goal_link), "", 0, 0, NULL, 0 },
	{ NULL, 0, 0, NULL, 0, 0, NULL, 0 }
};
#undef T

struct trig_conf {
	char *list, *tag, *form, *team, *to, *from, *cond;
	long above;
};

#define G(f) offsetof(struct trig_conf, f)
static const struct conf_key trig_keys[] = {
	{ "list", CONF_STR, G(list), "", 0, 0, NULL, 0 },
	{ "tag", CONF_STR, G(tag), "", 0, 0, NULL, 0 },
	{ "form", CONF_STR, G(form), "", 0, 0, NULL, 0 },
	{ "team", CONF_STR, G(team), "", 0, 0, NULL, 0 },
	{ "to", CONF_STR, G(to), "", 0, 0, NULL, 0 },
	{ "from", CONF_STR, G(from), "", 0, 0, NULL, 0 },
	{ "if", CONF_STR, G(cond), "", 0, 0, NULL, 0 },
	{ "above", CONF_INT, G(above), "0", -1000000, 1000000, NULL, 0 },
	{ NULL, 0, 0, NULL, 0, 0, NULL, 0 }
};
#undef G

static const char *const lead_statuses[] = { "new", "routing", "offered",
	"assigned", "contacted", "qualified", "won", "lost", "recycled", NULL };

static char *
xstrdup(const char *s)
{
	char *d = s ? strdup(s) : NULL;

	if (s && !d)
		abort();
	return d;
}

static struct cfgfile_pos
key_pos(struct cfgfile_node *sec, const char *key, const char *file)
{
	struct cfgfile_pos p = cfgfile_key_pos(sec, key);

	if (!p.file)
		p.file = file;
	return p;
}

struct fcheck {
	struct cfgfile_pos at;
	struct cfgfile_errors *errs;
	const char *what;
	int extra;              /* drip facts allowed: opened clicked sent */
};

static void
check_field(void *arg, const char *name)
{
	struct fcheck *fc = arg;

	if (strncmp(name, "fields.", 7) == 0)
		return;
	if (fc->extra && (!strcmp(name, "opened") || !strcmp(name, "clicked") ||
	    !strcmp(name, "sent")))
		return;
	for (size_t i = 0; i < lead_sqlmap.ncols; i++)
		if (strcmp(lead_sqlmap.cols[i].name, name) == 0)
			return;
	cfgfile_error(fc->errs, &fc->at, "%s: no lead field '%s' (custom fields "
	    "are written fields.%s%s)", fc->what, name, name, fc->extra ?
	    "; a lead's behavior in this drip: opened, clicked, sent" : "");
}

static struct cond *
compile_cond(struct cfgfile_node *sec, const char *key, const char *src,
    const char *file, int extra, struct cfgfile_errors *errs)
{
	struct cond *c = NULL;
	struct cond_error ce;

	if (cond_parse(src, &c, &ce) < 0) {
		struct cfgfile_node *n = cfgfile_child(sec, key);
		struct cfgfile_pos p = n && n->kind == CFGFILE_VALUE ?
		    cfgfile_value_pos(n, (size_t)ce.offset) :
		    key_pos(sec, key, file);

		if (!p.file)
			p.file = file;
		cfgfile_error(errs, &p, "%s: %s", key, ce.msg);
		return NULL;
	}
	{
		struct fcheck fc = { key_pos(sec, key, file), errs, key, extra };

		cond_fields(c, check_field, &fc);
	}
	return c;
}

static json_t *
parse_value(const char *s)
{
	json_t *v = json_loads(s, JSON_DECODE_ANY, NULL);

	if (v && (json_is_number(v) || json_is_boolean(v) || json_is_null(v)))
		return v;
	json_decref(v);
	return json_string(s);
}

static void
step_free(struct drip_step *s)
{
	free(s->name);
	campaign_def_free(s->email);
	free(s->sms_name);
	cond_free(s->cond);
	free(s->field);
	json_decref(s->value);
	free(s->tag);
	free(s->notification);
	free(s->team);
}

void
drip_def_free(struct drip_def *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->nsteps; i++)
		step_free(&d->steps[i]);
	free(d->steps);
	for (size_t i = 0; i < d->ntriggers; i++) {
		free(d->triggers[i].arg);
		free(d->triggers[i].from);
		cond_free(d->triggers[i].cond);
	}
	free(d->triggers);
	free(d->goal_link);
	free(d->time_zone);
	free(d->description);
	free(d->name);
	free(d->file);
	free(d->source);
	free(d);
}

int
drip_step_index(const struct drip_def *d, const char *name)
{
	for (size_t i = 0; i < d->nsteps; i++)
		if (strcmp(d->steps[i].name, name) == 0)
			return (int)i;
	return -1;
}

/* A step reference: "" = the default, else a step name; -2 if unknown. */
static int
resolve(const struct drip_def *d, struct cfgfile_node *sec, const char *key,
    const char *ref, int dflt, struct cfgfile_errors *errs)
{
	int i;

	if (!*ref)
		return dflt;
	if ((i = drip_step_index(d, ref)) < 0) {
		struct cfgfile_pos p = key_pos(sec, key, d->file);

		cfgfile_error(errs, &p, "%s: no step '%s' in this drip", key, ref);
		return -2;
	}
	return i;
}

/* Flow checks: every step reachable from the first, no cycle without a
 * wait. */
static void
check_flow(struct drip_def *d, struct cfgfile_errors *errs)
{
	size_t n = d->nsteps;
	char *seen = calloc(n ? n : 1, 1), *state = calloc(n ? n : 1, 1);
	int *stack = calloc(n ? n * 3 + 1 : 1, sizeof(int)), sp = 0;

	if (!seen || !state || !stack)
		abort();
	if (n) {
		stack[sp++] = 0;
		seen[0] = 1;
	}
	while (sp > 0) {
		const struct drip_step *s = &d->steps[stack[--sp]];
		int out[2] = { s->kind == DRIP_BRANCH ? s->then_i : s->next,
		    s->kind == DRIP_BRANCH ? s->else_i : -1 };

		if (s->kind == DRIP_EXIT)
			continue;
		for (int k = 0; k < 2; k++)
			if (out[k] >= 0 && !seen[out[k]]) {
				seen[out[k]] = 1;
				stack[sp++] = out[k];
			}
	}
	for (size_t i = 0; i < n; i++)
		if (!seen[i])
			cfgfile_error(errs, &d->steps[i].pos, "step '%s' is "
			    "unreachable: no step leads to it", d->steps[i].name);
	/* cycles among steps that take no time: DFS over non-wait steps,
	 * state 1 = on the path, 2 = done */
	for (size_t root = 0; root < n; root++) {
		int path[DRIP_MAX_STEPS + 1], edge[DRIP_MAX_STEPS + 1], depth = 0;

		if (state[root] || d->steps[root].kind == DRIP_WAIT)
			continue;
		path[0] = (int)root;
		edge[0] = 0;
		state[root] = 1;
		while (depth >= 0) {
			const struct drip_step *s = &d->steps[path[depth]];
			int out[2] = { s->kind == DRIP_BRANCH ? s->then_i : s->next,
			    s->kind == DRIP_BRANCH ? s->else_i : -1 };
			int to = -1;

			if (s->kind == DRIP_EXIT)
				out[0] = out[1] = -1;
			while (edge[depth] < 2 && to < 0) {
				int t = out[edge[depth]++];

				if (t < 0 || d->steps[t].kind == DRIP_WAIT ||
				    state[t] == 2)
					continue;
				if (state[t] == 1) {
					cfgfile_error(errs, &s->pos, "step '%s' "
					    "loops back to '%s' without a wait "
					    "between: it would run forever",
					    s->name, d->steps[t].name);
					continue;
				}
				to = t;
			}
			if (to < 0) {
				state[path[depth]] = 2;
				depth--;
				continue;
			}
			state[to] = 1;
			path[++depth] = to;
			edge[depth] = 0;
		}
	}
	free(seen);
	free(state);
	free(stack);
}

static int
valid_name(const char *s, size_t len)
{
	if (len == 0 || len > DRIP_NAME_MAX)
		return 0;
	for (size_t i = 0; i < len; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_')
			return 0;
	return 1;
}

static void
load_trigger(struct drip_def *d, struct cfgfile_node *sec,
    struct cfgfile_errors *errs)
{
	struct trig_conf tc;
	struct drip_trigger *t;
	int type = -1;

	memset(&tc, 0, sizeof(tc));
	for (int i = 0; trig_names[i]; i++)
		if (sec->title && !strcmp(sec->title, trig_names[i]))
			type = i;
	sec->used = 1;
	conf_bind(trig_keys, sec, &tc, NULL, errs);
	conf_check_unknown(sec, errs);
	if (type < 0) {
		cfgfile_error(errs, &sec->pos, "trigger \"%s\": unknown trigger "
		    "(captured, list, score, tag, form, routed, status, api)",
		    sec->title ? sec->title : "");
		goto out;
	}
	if (!(t = realloc(d->triggers, (d->ntriggers + 1) * sizeof(*t))))
		abort();
	d->triggers = t;
	t = &d->triggers[d->ntriggers++];
	memset(t, 0, sizeof(*t));
	t->type = (enum drip_trig)type;
	t->above = tc.above;
	switch (t->type) {
	case DRIP_T_LIST: t->arg = xstrdup(tc.list); break;
	case DRIP_T_TAG: t->arg = xstrdup(tc.tag); break;
	case DRIP_T_FORM: t->arg = xstrdup(tc.form); break;
	case DRIP_T_ROUTED: t->arg = xstrdup(tc.team); break;
	case DRIP_T_STATUS: t->arg = xstrdup(tc.to); break;
	default: break;
	}
	if ((t->type == DRIP_T_LIST || t->type == DRIP_T_TAG ||
	    t->type == DRIP_T_FORM || t->type == DRIP_T_STATUS) && !*t->arg)
		cfgfile_error(errs, &sec->pos, "trigger \"%s\": say which %s",
		    sec->title, t->type == DRIP_T_LIST ? "list (list = NAME)" :
		    t->type == DRIP_T_TAG ? "tag (tag = NAME)" : t->type ==
		    DRIP_T_FORM ? "form (form = NAME)" : "status (to = lost, "
		    "...)");
	if (t->type == DRIP_T_SCORE && !cfgfile_child(sec, "above"))
		cfgfile_error(errs, &sec->pos, "trigger \"score\": say the score "
		    "it crosses (above = 50)");
	if (t->type == DRIP_T_STATUS) {
		for (int k = 0; k < 2; k++) {
			const char *v = k ? tc.from : tc.to;
			int ok = !*v;

			for (int i = 0; lead_statuses[i] && !ok; i++)
				ok = !strcmp(v, lead_statuses[i]);
			if (!ok) {
				struct cfgfile_pos p = key_pos(sec, k ? "from" :
				    "to", d->file);

				cfgfile_error(errs, &p, "%s: '%s' is not a lead "
				    "status (new, routing, offered, assigned, "
				    "contacted, qualified, won, lost, recycled)",
				    k ? "from" : "to", v);
			}
		}
		if (*tc.from)
			t->from = xstrdup(tc.from);
	}
	if (*tc.cond)
		t->cond = compile_cond(sec, "if", tc.cond, d->file, 0, errs);
out:
	conf_unbind(trig_keys, &tc);
}

/* First pass over a step section: name, kind, non-reference keys. */
static void
load_step(struct drip_def *d, struct drip_step *s, struct cfgfile_node *sec,
    struct step_conf *sc, const struct top_conf *top,
    const struct tmpl_set *templates,
    const struct campaign_set *notifications, struct cfgfile_errors *errs)
{
	char err[256];

	sec->used = 1;
	s->name = xstrdup(sec->title ? sec->title : "");
	s->pos = sec->pos;
	s->pos.file = d->file;
	s->next = -1;
	s->then_i = s->else_i = -1;
	conf_bind(step_keys, sec, sc, NULL, errs);
	for (int i = 0; kind_names[i]; i++)
		if (!strcmp(sc->type, kind_names[i]))
			s->kind = (enum drip_kind)i;
	if (s->kind == DRIP_EMAIL) {
		char cname[2 * DRIP_NAME_MAX + 32];

		snprintf(cname, sizeof(cname), "drip/%s/0/%s", d->name, s->name);
		s->email = campaign_load_step(sec, d->file, cname, templates,
		    top->from, top->reply_to, errs);
	} else {
		for (int i = 0; email_only[i]; i++)
			if (cfgfile_child(sec, email_only[i])) {
				struct cfgfile_pos p = key_pos(sec, email_only[i],
				    d->file);

				cfgfile_error(errs, &p, "%s: only email steps "
				    "take it (this step is type = %s)",
				    email_only[i], sc->type);
				cfgfile_child(sec, email_only[i])->used = 1;
			}
	}
	conf_check_unknown(sec, errs);
#define NEEDS(cond, key, msg) do { if (!(cond)) { struct cfgfile_pos p_ = \
	key_pos(sec, key, d->file); cfgfile_error(errs, &p_, "%s", msg); } \
	} while (0)
#define ONLY(k_, key) do { if (s->kind != (k_) && \
	cfgfile_child(sec, key)) { struct cfgfile_pos p_ = key_pos(sec, key, \
	d->file); cfgfile_error(errs, &p_, "%s: only %s steps take it", key, \
	kind_names[k_]); } } while (0)
	ONLY(DRIP_WAIT, "duration");
	ONLY(DRIP_WAIT, "until");
	ONLY(DRIP_BRANCH, "if");
	ONLY(DRIP_BRANCH, "then");
	ONLY(DRIP_BRANCH, "else");
	ONLY(DRIP_SMS, "template");
	ONLY(DRIP_SET, "field");
	ONLY(DRIP_SET, "value");
	ONLY(DRIP_SET, "tag");
	ONLY(DRIP_SET, "score");
	ONLY(DRIP_NOTIFY, "notification");
	ONLY(DRIP_ROUTE, "team");
	if (s->kind == DRIP_BRANCH || s->kind == DRIP_EXIT)
		NEEDS(!*sc->next, "next", "next: a branch goes to then or else; "
		    "an exit step ends the drip");
	switch (s->kind) {
	case DRIP_EMAIL:
		break;
	case DRIP_SMS:
		NEEDS(*sc->tmpl, "type", "an sms step names its template "
		    "(template = \"sms/NAME\")");
		if (*sc->tmpl && !(s->sms = tmpl_set_get(templates, sc->tmpl))) {
			struct cfgfile_pos p = key_pos(sec, "template", d->file);

			cfgfile_error(errs, &p, "template: no template '%s' (a "
			    "file %s.mustache in the templates directory)",
			    sc->tmpl, sc->tmpl);
		}
		s->sms_name = xstrdup(sc->tmpl);
		break;
	case DRIP_WAIT:
		s->wait_s = sc->duration_ms / 1000;
		if (*sc->until) {
			if (drip_window_parse(sc->until, &s->until, err,
			    sizeof(err)) < 0) {
				struct cfgfile_pos p = key_pos(sec, "until",
				    d->file);

				cfgfile_error(errs, &p, "until: %s", err);
			} else {
				s->has_until = 1;
			}
		}
		NEEDS(sc->duration_ms >= 1000 || *sc->until, "type",
		    "a wait step needs a duration of at least 1s (duration = "
		    "2d) or a window (until = \"mon-fri 09:00-11:00\"), or both");
		break;
	case DRIP_BRANCH:
		NEEDS(*sc->cond, "type", "a branch step needs a condition (if = "
		    "\"clicked contains 'welcome'\")");
		NEEDS(*sc->then, "type", "a branch step needs then = STEP");
		if (*sc->cond)
			s->cond = compile_cond(sec, "if", sc->cond, d->file, 1,
			    errs);
		break;
	case DRIP_SET:
		NEEDS(*sc->field || *sc->tag || sc->score, "type", "a set step "
		    "sets a field (field = NAME value = V), a tag (tag = NAME) "
		    "or adds to the score (score = 10)");
		if (*sc->field) {
			const char *f = sc->field;

			if (!strncmp(f, "fields.", 7))
				f += 7;
			if (!valid_name(f, strlen(f)))
				NEEDS(0, "field", "field: a custom field's name "
				    "(letters, digits, - and _; stored in "
				    "fields.NAME)");
			s->field = xstrdup(f);
			s->value = parse_value(sc->value);
		}
		NEEDS(!*sc->value || *sc->field, "value", "value: say which "
		    "field it goes in (field = NAME)");
		if (*sc->tag)
			s->tag = xstrdup(sc->tag);
		s->score = sc->score;
		break;
	case DRIP_NOTIFY:
		NEEDS(*sc->notification, "type", "a notify step names a "
		    "notification (notification = NAME, a file in "
		    "conf/notifications)");
		if (*sc->notification && (!notifications ||
		    !campaign_find(notifications, sc->notification))) {
			struct cfgfile_pos p = key_pos(sec, "notification",
			    d->file);

			cfgfile_error(errs, &p, "notification: no notification "
			    "'%s' (a file %s.conf in the notifications "
			    "directory)", sc->notification, sc->notification);
		}
		s->notification = xstrdup(sc->notification);
		break;
	case DRIP_ROUTE:
		NEEDS(*sc->team, "type", "a route step names a team (team = "
		    "NAME)");
		s->team = xstrdup(sc->team);
		break;
	case DRIP_EXIT:
		break;
	}
#undef NEEDS
#undef ONLY
}

static uint64_t
fnv64(const char *s, size_t n)
{
	uint64_t h = 1469598103934665603ULL;

	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
	return h;
}

struct drip_def *
drip_parse(const char *name, const char *file, const char *text, size_t len,
    const struct tmpl_set *templates,
    const struct campaign_set *notifications, struct cfgfile_errors *errs)
{
	struct cfgfile_tree tree;
	struct drip_def *d = calloc(1, sizeof(*d));
	struct top_conf top;
	struct step_conf *sc = NULL;
	struct cfgfile_node **secs = NULL;
	struct cfgfile_pos fpos = { file, 1, 1 };
	size_t before = errs->n, nsec = 0;
	char err[256];

	if (!d)
		return NULL;
	d->name = xstrdup(name);
	d->file = xstrdup(file);
	if (!(d->source = malloc(len + 1)))
		abort();
	memcpy(d->source, text, len);
	d->source[len] = '\0';
	snprintf(d->hash, sizeof(d->hash), "%016llx",
	    (unsigned long long)fnv64(text, len));
	memset(&top, 0, sizeof(top));
	cfgfile_parse_string(file, text, len, &tree, errs);
	conf_bind(top_keys, tree.root, &top, NULL, errs);
	d->description = xstrdup(top.description);
	/* steps first (names), then their references */
	for (struct cfgfile_node *n = tree.root->child; n; n = n->next)
		if (n->kind == CFGFILE_SECTION && !strcmp(n->key, "step"))
			nsec++;
	if (nsec > DRIP_MAX_STEPS) {
		cfgfile_error(errs, &fpos, "at most %d steps in a drip",
		    DRIP_MAX_STEPS);
		nsec = 0;
	}
	d->steps = calloc(nsec ? nsec : 1, sizeof(*d->steps));
	sc = calloc(nsec ? nsec : 1, sizeof(*sc));
	secs = calloc(nsec ? nsec : 1, sizeof(*secs));
	if (!d->steps || !sc || !secs)
		abort();
	for (struct cfgfile_node *n = tree.root->child; n; n = n->next) {
		if (n->kind == CFGFILE_SECTION && !strcmp(n->key, "trigger")) {
			load_trigger(d, n, errs);
			continue;
		}
		if (n->kind != CFGFILE_SECTION || strcmp(n->key, "step") ||
		    d->nsteps >= nsec)
			continue;
		if (!n->title || !valid_name(n->title, strlen(n->title))) {
			cfgfile_error(errs, &n->pos, "step: give each step a name "
			    "(step \"welcome\" { ... }): letters, digits, - and _");
			n->used = 1;
			continue;
		}
		if (drip_step_index(d, n->title) >= 0) {
			cfgfile_error(errs, &n->pos, "step \"%s\" is defined twice",
			    n->title);
			n->used = 1;
			continue;
		}
		secs[d->nsteps] = n;
		load_step(d, &d->steps[d->nsteps], n, &sc[d->nsteps], &top,
		    templates, notifications, errs);
		d->nsteps++;
	}
	if (!d->nsteps)
		cfgfile_error(errs, &fpos, "a drip needs at least one step "
		    "(step \"welcome\" { type = email ... })");
	for (size_t i = 0; i < d->nsteps; i++) {
		struct drip_step *s = &d->steps[i];
		int dflt = i + 1 < d->nsteps ? (int)i + 1 : -1;

		s->next = resolve(d, secs[i], "next", sc[i].next, dflt, errs);
		if (s->kind == DRIP_BRANCH) {
			s->then_i = resolve(d, secs[i], "then", sc[i].then, -1,
			    errs);
			s->else_i = resolve(d, secs[i], "else", sc[i].els, dflt,
			    errs);
		}
		if (s->next < -1 || s->then_i < -1 || s->else_i < -1)
			s->next = s->then_i = s->else_i = -1;
		conf_unbind(step_keys, &sc[i]);
	}
	if (errs->n == before)
		check_flow(d, errs);
	/* the rest of the top level */
	for (size_t i = 0; i < top.goals.n; i++) {
		size_t k;

		for (k = 0; k < sizeof(goal_names) / sizeof(goal_names[0]); k++)
			if (!strcmp(top.goals.v[i], goal_names[k].name))
				break;
		if (k == sizeof(goal_names) / sizeof(goal_names[0])) {
			struct cfgfile_pos p = cfgfile_item_pos(tree.root, "goals",
			    i);

			cfgfile_error(errs, &p, "goals: '%s' is not a goal "
			    "(replied, clicked, qualified, won, accepted, "
			    "unsubscribed, hard_bounce)", top.goals.v[i]);
			continue;
		}
		d->goals |= goal_names[k].bit;
	}
	d->goals |= DRIP_G_UNSUBSCRIBED | DRIP_G_HARD_BOUNCE;
	if (*top.goal_link) {
		d->goal_link = xstrdup(top.goal_link);
		if (!(d->goals & DRIP_G_CLICKED)) {
			struct cfgfile_pos p = key_pos(tree.root, "goal_link",
			    file);

			cfgfile_error(errs, &p, "goal_link: add clicked to goals "
			    "for it to end the drip");
		}
	}
	if (!strcmp(top.reentry, "never")) {
		d->reentry = DRIP_RE_NEVER;
	} else if (!strcmp(top.reentry, "always")) {
		d->reentry = DRIP_RE_ALWAYS;
	} else {
		long ms;

		d->reentry = DRIP_RE_AFTER;
		if (strncmp(top.reentry, "after ", 6) ||
		    conf_parse_duration(top.reentry + 6, &ms) < 0 || ms < 1000) {
			struct cfgfile_pos p = key_pos(tree.root, "reentry", file);

			cfgfile_error(errs, &p, "reentry: never, always, or after "
			    "a time since the lead left (\"after 30d\")");
		} else {
			d->reentry_after_s = ms / 1000;
		}
	}
	if (quiet_parse(top.quiet, &d->quiet, err, sizeof(err)) < 0) {
		struct cfgfile_pos p = key_pos(tree.root, "quiet_hours", file);

		cfgfile_error(errs, &p, "quiet_hours: %s", err);
	} else {
		d->has_quiet = quiet_active(&d->quiet);
	}
	if (*top.time_zone) {
		if (cond_tz_check(top.time_zone, err, sizeof(err)) < 0) {
			struct cfgfile_pos p = key_pos(tree.root, "time_zone",
			    file);

			cfgfile_error(errs, &p, "time_zone: %s", err);
		}
		d->time_zone = xstrdup(top.time_zone);
	}
	conf_check_unknown(tree.root, errs);
	conf_unbind(top_keys, &top);
	free(sc);
	free(secs);
	cfgfile_tree_free(&tree);
	if (errs->n != before) {
		drip_def_free(d);
		return NULL;
	}
	return d;
}

void
drip_set_version(struct drip_def *d, int version)
{
	d->version = version;
	for (size_t i = 0; i < d->nsteps; i++) {
		char cname[2 * DRIP_NAME_MAX + 32];

		if (!d->steps[i].email)
			continue;
		snprintf(cname, sizeof(cname), "drip/%s/%d/%s", d->name,
		    version, d->steps[i].name);
		if (campaign_def_rename(d->steps[i].email, cname) < 0)
			abort();
	}
}

static int
by_name(const void *a, const void *b)
{
	return strcmp((*(struct drip_def *const *)a)->name,
	    (*(struct drip_def *const *)b)->name);
}

static char *
read_file(const char *path, size_t *len, char *err, size_t n)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	size_t got;

	if (!f) {
		snprintf(err, n, "cannot read: %s", strerror(errno));
		return NULL;
	}
	if (!(buf = malloc(DRIP_MAX_FILE + 1)))
		abort();
	got = fread(buf, 1, DRIP_MAX_FILE + 1, f);
	fclose(f);
	if (got > DRIP_MAX_FILE) {
		free(buf);
		snprintf(err, n, "larger than %d KiB", DRIP_MAX_FILE / 1024);
		return NULL;
	}
	buf[got] = '\0';
	*len = got;
	return buf;
}

struct load_ctx {
	const struct tmpl_set *templates;
	const struct campaign_set *notifications;
	struct drip_set *out;
	struct cfgfile_errors *errs;
};

static void
load_file(const char *path, const char *name, void *arg)
{
	struct load_ctx *x = arg;
	struct drip_def *d, **v;
	char err[256], *text;
	size_t tlen;

	if (!(text = read_file(path, &tlen, err, sizeof(err)))) {
		struct cfgfile_pos p = { path, 0, 0 };

		cfgfile_error(x->errs, &p, "%s", err);
		return;
	}
	d = drip_parse(name, path, text, tlen, x->templates, x->notifications,
	    x->errs);
	free(text);
	if (!d)
		return;
	if (!(v = realloc(x->out->v, (x->out->n + 1) * sizeof(*v))))
		abort();
	x->out->v = v;
	x->out->v[x->out->n++] = d;
}

int
drip_load_dir(const char *dir, const struct tmpl_set *templates,
    const struct campaign_set *notifications, struct drip_set *out,
    struct cfgfile_errors *errs)
{
	struct load_ctx x = { templates, notifications, out, errs };
	int n;

	memset(out, 0, sizeof(*out));
	n = cfgfile_each_file(dir, "drip", DRIP_NAME_MAX, errs, load_file, &x);
	if (out->n > 1)
		qsort(out->v, out->n, sizeof(*out->v), by_name);
	return n;
}

void
drip_set_free(struct drip_set *s)
{
	for (size_t i = 0; i < s->n; i++)
		drip_def_free(s->v[i]);
	free(s->v);
	s->v = NULL;
	s->n = 0;
}

const struct drip_def *
drip_find(const struct drip_set *s, const char *name)
{
	for (size_t i = 0; s && i < s->n; i++)
		if (strcmp(s->v[i]->name, name) == 0)
			return s->v[i];
	return NULL;
}

/* ---- triggers and goals ------------------------------------------------ */

static int
str_is(const json_t *data, const char *key, const char *want)
{
	const char *v = json_string_value(json_object_get(data, key));

	return v && want && strcasecmp(v, want) == 0;
}

int
drip_trigger_match(const struct drip_def *d, const char *type,
    const json_t *data, const json_t *lead, time_t now)
{
	for (size_t i = 0; i < d->ntriggers; i++) {
		const struct drip_trigger *t = &d->triggers[i];
		int hit = 0;

		switch (t->type) {
		case DRIP_T_CAPTURED:
			hit = !strcmp(type, "captured");
			break;
		case DRIP_T_LIST:
			hit = !strcmp(type, "subscribed") &&
			    str_is(data, "list", t->arg);
			break;
		case DRIP_T_SCORE:
			if (!strcmp(type, "score")) {
				json_int_t from = json_integer_value(
				    json_object_get(data, "from"));
				json_int_t to = json_integer_value(
				    json_object_get(data, "to"));

				hit = from < t->above && to >= t->above;
			}
			break;
		case DRIP_T_TAG:
			hit = (!strcmp(type, "tagged") || !strcmp(type, "tag")) &&
			    str_is(data, "tag", t->arg);
			break;
		case DRIP_T_FORM:
			hit = !strcmp(type, "form") && str_is(data, "form",
			    t->arg);
			break;
		case DRIP_T_ROUTED:
			hit = (!strcmp(type, "routed") || !strcmp(type,
			    "queued") || !strcmp(type, "threshold")) &&
			    (!*t->arg || str_is(data, "team", t->arg));
			break;
		case DRIP_T_STATUS:
			hit = !strcmp(type, "status") && str_is(data, "to",
			    t->arg) && (!t->from || str_is(data, "from",
			    t->from));
			break;
		case DRIP_T_API:
			break;
		}
		if (!hit)
			continue;
		if (t->cond) {
			const char *tz = json_string_value(json_object_get(lead,
			    "time_zone"));
			struct cond_env env = { now, tz && cond_tz_check(tz, NULL,
			    0) == 0 ? tz : d->time_zone };

			if (cond_eval(t->cond, lead, &env) != 1)
				continue;
		}
		return (int)i;
	}
	return -1;
}

/* A case-insensitive glob of the whole string (cond's matches): * ? only. */
static int
glob_match(const char *p, const char *s)
{
	if (!*p)
		return !*s;
	if (*p == '*') {
		for (;; s++) {
			if (glob_match(p + 1, s))
				return 1;
			if (!*s)
				return 0;
		}
	}
	if (!*s)
		return 0;
	if (*p != '?' && tolower((unsigned char)*p) != tolower((unsigned char)*s))
		return 0;
	return glob_match(p + 1, s + 1);
}

unsigned
drip_goal_match(const struct drip_def *d, const char *type,
    const json_t *data)
{
	unsigned g = 0;

	/* an automatic reply (out of office: data.auto, daemon/bounces.c)
	 * is not the person replying */
	if ((!strcmp(type, "reply") && !json_is_true(json_object_get(data,
	    "auto"))) || !strcmp(type, "replied") || !strcmp(type, "sms_reply"))
		g = DRIP_G_REPLIED;
	else if (!strcmp(type, "click")) {
		const char *url = json_string_value(json_object_get(data, "url"));
		const char *cls = json_string_value(json_object_get(data,
		    "class"));

		/* people's clicks only: not link scanners' */
		if ((!cls || !strcmp(cls, "human")) && (!d->goal_link ||
		    (url && glob_match(d->goal_link, url))))
			g = DRIP_G_CLICKED;
	} else if (!strcmp(type, "status"))
		g = str_is(data, "to", "qualified") ? DRIP_G_QUALIFIED :
		    str_is(data, "to", "won") ? DRIP_G_WON : 0;
	else if (!strcmp(type, "accepted") || !strcmp(type, "claimed"))
		g = DRIP_G_ACCEPTED;
	else if (!strcmp(type, "unsubscribe") || !strcmp(type, "complaint"))
		g = DRIP_G_UNSUBSCRIBED;
	else if (!strcmp(type, "bounce") && json_is_true(json_object_get(data,
	    "hard")))
		g = DRIP_G_HARD_BOUNCE;
	return g & d->goals;
}

/* ---- running ----------------------------------------------------------- */

static void
apply_set(const struct drip_step *s, json_t *lead)
{
	if (s->field) {
		json_t *f = json_object_get(lead, "fields");

		if (!json_is_object(f)) {
			f = json_object();
			json_object_set_new(lead, "fields", f);
		}
		json_object_set(f, s->field, s->value);
	}
	if (s->tag) {
		json_t *f = json_object_get(lead, "fields"), *tags;

		if (!json_is_object(f)) {
			f = json_object();
			json_object_set_new(lead, "fields", f);
		}
		tags = json_object_get(f, "tags");
		if (!json_is_array(tags)) {
			tags = json_array();
			json_object_set_new(f, "tags", tags);
		}
		json_array_append_new(tags, json_string(s->tag));
	}
	if (s->score)
		json_object_set_new(lead, "score", json_integer(
		    json_integer_value(json_object_get(lead, "score")) + s->score));
}

void
drip_run(const struct drip_def *d, int from, int seq, json_t *lead,
    const char *tz, time_t now, struct drip_result *out)
{
	int i = from;

	memset(out, 0, sizeof(*out));
	if (!tz || cond_tz_check(tz, NULL, 0) < 0)
		tz = d->time_zone;
	while (i >= 0 && (size_t)i < d->nsteps && out->nacts < DRIP_RUN_MAX) {
		const struct drip_step *s = &d->steps[i];

		time_t until;

		if ((s->kind == DRIP_EMAIL || s->kind == DRIP_SMS) &&
		    d->has_quiet && quiet_check(&d->quiet, tz, now, &until) == 1) {
			out->next = i;
			out->next_at = until > now ? until : now + 60;
			return;
		}
		out->acts[out->nacts].step = i;
		out->acts[out->nacts++].seq = seq++;
		switch (s->kind) {
		case DRIP_WAIT: {
			time_t t = now + s->wait_s;

			if (s->has_until)
				t = drip_window_next(&s->until, tz, t);
			out->next = s->next;
			out->next_at = t < now ? now : t;
			if (out->next < 0) {
				out->next = -1;
				out->next_at = 0;
			}
			return;
		}
		case DRIP_BRANCH: {
			struct cond_env env = { now, tz };
			int r = cond_eval(s->cond, lead, &env);

			if (r < 0)
				out->tz_error = 1;
			i = r == 1 ? s->then_i : s->else_i;
			continue;
		}
		case DRIP_SET:
			apply_set(s, lead);
			break;
		case DRIP_EXIT:
			out->exited = 1;
			out->next = -1;
			return;
		default:
			break;
		}
		i = s->next;
	}
	if (i >= 0 && out->nacts >= DRIP_RUN_MAX) {
		/* a long run of instant steps: go on in a moment */
		out->next = i;
		out->next_at = now;
		return;
	}
	out->next = -1;
}
