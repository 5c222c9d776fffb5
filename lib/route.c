/*
 * route - load conf/routing.conf and make routing decisions. See route.h.
 *
 * Loading turns every team, rep and rule into its struct, compiles what
 * the decisions need (conditions, a minute-of-week bitmap per rep, time
 * zones interned, team member lists, tiers) and checks every reference,
 * reporting each problem with its position. Decisions read the lead's JSON
 * once per call, look the local time up once per zone per call, and touch
 * only the team's members. Nothing here does I/O after loading, logs, or
 * keeps state between calls.
 */
#include "route.h"
#include "cond.h"
#include "lead.h"
#include "mime.h"

#include <ctype.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WEEK_MINUTES    (7 * 1440)

static const char *const method_names[] = { "round_robin", "least_loaded",
	"score_tiers", "broadcast", "manual", "pull", NULL };

#define T(f) offsetof(struct route_team, f)
static const struct conf_key team_keys[] = {
	{ "method", CONF_ENUM, T(method_src), "round_robin", 0, 0,
	    method_names, 0 },
	{ "offer_window", CONF_DURATION, T(offer_window_ms), "5m", 10000,
	    7LL * 86400 * 1000, NULL, 0 },
	{ "max_offers", CONF_INT, T(max_offers), "3", 0, 100, NULL, 0 },
	{ "broadcast_round", CONF_BOOL, T(broadcast_round), "true", 0, 0,
	    NULL, 0 },
	{ "catch_all", CONF_STR, T(catch_all_id), "", 0, 0, NULL, 0 },
	{ "manager", CONF_STR, T(manager_id), "", 0, 0, NULL, 0 },
	{ "tiers", CONF_STRLIST, T(tiers_src), "", 0, 0, NULL, 0 },
	{ NULL, 0, 0, NULL, 0, 0, NULL, 0 }
};
#undef T

#define R(f) offsetof(struct route_rep, f)
static const struct conf_key rep_keys[] = {
	{ "name", CONF_STR, R(name), "", 0, 0, NULL, 0 },
	{ "email", CONF_STR, R(email), "", 0, 0, NULL, 0 },
	{ "phone", CONF_STR, R(phone), "", 0, 0, NULL, 0 },
	{ "time_zone", CONF_STR, R(time_zone), "", 0, 0, NULL, 0 },
	{ "hours", CONF_STRLIST, R(hours), "", 0, 0, NULL, 0 },
	{ "weight", CONF_STR, R(weight_src), "1", 0, 0, NULL, 0 },
	{ "capacity", CONF_INT, R(capacity), "20", 0, 1000000, NULL, 0 },
	{ "skills", CONF_STRLIST, R(skills), "", 0, 0, NULL, 0 },
	{ "territories", CONF_STRLIST, R(territories), "", 0, 0, NULL, 0 },
	{ "products", CONF_STRLIST, R(products), "", 0, 0, NULL, 0 },
	{ "languages", CONF_STRLIST, R(languages), "", 0, 0, NULL, 0 },
	{ "teams", CONF_STRLIST, R(teams), "", 0, 0, NULL, 0 },
	{ "tier", CONF_STR, R(tier), "", 0, 0, NULL, 0 },
	{ "notify", CONF_STRLIST, R(notify_src), "", 0, 0, NULL, 0 },
	{ "manager", CONF_STR, R(manager_id), "", 0, 0, NULL, 0 },
	{ NULL, 0, 0, NULL, 0, 0, NULL, 0 }
};
#undef R

#define U(f) offsetof(struct route_rule, f)
static const struct conf_key rule_keys[] = {
	{ "when", CONF_STR, U(when_src), "", 0, 0, NULL, 0 },
	{ "team", CONF_STR, U(team_name), "", 0, 0, NULL, 0 },
	{ "require", CONF_STRLIST, U(require_src), "", 0, 0, NULL, 0 },
	{ "skills", CONF_STRLIST, U(skills), "", 0, 0, NULL, 0 },
	{ "priority", CONF_INT, U(priority), "50", 0, 100, NULL, 0 },
	{ NULL, 0, 0, NULL, 0, 0, NULL, 0 }
};
#undef U

static const struct conf_key root_keys[] = {
	{ "time_zone", CONF_STR, offsetof(struct route_conf, time_zone), "UTC",
	    0, 0, NULL, 0 },
	{ NULL, 0, 0, NULL, 0, 0, NULL, 0 }
};

/* ---- small helpers ------------------------------------------------------- */

static int
lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

/* ASCII case-insensitive equality. */
static int
eq_nocase(const char *a, const char *b)
{
	while (*a && lower((unsigned char)*a) == lower((unsigned char)*b))
		a++, b++;
	return *a == '\0' && *b == '\0';
}

/* Does s start with prefix (ASCII case-insensitively)? */
static int
starts_nocase(const char *s, const char *prefix)
{
	for (; *prefix; s++, prefix++)
		if (lower((unsigned char)*s) != lower((unsigned char)*prefix))
			return 0;
	return 1;
}

int
route_valid_id(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > ROUTE_NAME_MAX)
		return 0;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr("._-@+", *s))
			return 0;
	return 1;
}

static struct cfgfile_node *
child(struct cfgfile_node *sec, const char *key)
{
	return cfgfile_child(sec, key);
}

/* Where key's value is written in sec (the section when it is absent). */
static struct cfgfile_pos
at_key(struct cfgfile_node *sec, const char *key)
{
	return cfgfile_key_pos(sec, key);
}

/* Where item i of the list key is written. */
static struct cfgfile_pos
at_item(struct cfgfile_node *sec, const char *key, size_t i)
{
	return cfgfile_item_pos(sec, key, i);
}

/*
 * Where byte off of item i of key's value is: exact for a single value
 * (cfgfile_value_pos counts quotes and escapes); for a list item, counted
 * from its opening quote.
 */
static struct cfgfile_pos
at_offset(struct cfgfile_node *sec, const char *key, size_t i, size_t off)
{
	struct cfgfile_node *n = child(sec, key);
	struct cfgfile_pos p;

	if (n && n->kind == CFGFILE_VALUE)
		return cfgfile_value_pos(n, off);
	p = at_item(sec, key, i);
	if (n && n->kind == CFGFILE_LIST)
		p.col += 1 + (int)off;
	return p;
}

static int
is_always(const char *when)
{
	while (isspace((unsigned char)*when))
		when++;
	if (!*when)
		return 1;
	if (strncasecmp(when, "true", 4) != 0)
		return 0;
	for (when += 4; isspace((unsigned char)*when); when++)
		;
	return *when == '\0';
}

/* ---- working hours --------------------------------------------------------
 *
 *     "mon-fri 09:00-17:30"   "sat 10:00-14:00"   "daily 08:00-20:00"
 *     "mon,wed,fri 09:00-12:00 13:00-17:00"       "fri-sun 22:00-02:00"
 *
 * Days: mon .. sun (or full names), ranges wrap (fri-mon), "daily". Times
 * are H:MM or HH:MM, 00:00 to 24:00; a range ending before it starts runs
 * past midnight into the next day. Several ranges may follow the days.
 */

static const char *const day_names[7][2] = {
	{ "mon", "monday" }, { "tue", "tuesday" }, { "wed", "wednesday" },
	{ "thu", "thursday" }, { "fri", "friday" }, { "sat", "saturday" },
	{ "sun", "sunday" }
};

/* 0 (Monday) .. 6, 7 for "daily", -1 if unknown. */
static int
day_word(const char *s, size_t n)
{
	char w[16];

	if (n == 0 || n >= sizeof(w))
		return -1;
	for (size_t i = 0; i < n; i++)
		w[i] = (char)lower((unsigned char)s[i]);
	w[n] = '\0';
	for (int d = 0; d < 7; d++)
		if (strcmp(w, day_names[d][0]) == 0 ||
		    strcmp(w, day_names[d][1]) == 0)
			return d;
	return strcmp(w, "daily") == 0 ? 7 : -1;
}

/* H:MM or HH:MM at *pp into minutes of the day (0 .. 1440). */
static int
parse_hhmm(const char **pp, int *min)
{
	const char *p = *pp;
	int h = 0, m;

	if (!isdigit((unsigned char)*p))
		return -1;
	h = *p++ - '0';
	if (isdigit((unsigned char)*p))
		h = h * 10 + (*p++ - '0');
	if (*p++ != ':' || !isdigit((unsigned char)p[0]) ||
	    !isdigit((unsigned char)p[1]))
		return -1;
	m = (p[0] - '0') * 10 + (p[1] - '0');
	p += 2;
	if (h > 24 || m > 59 || (h == 24 && m != 0))
		return -1;
	*min = h * 60 + m;
	*pp = p;
	return 0;
}

static void
week_set(uint64_t *week, int from, int len)
{
	for (int k = 0; k < len; k++) {
		int m = (from + k) % WEEK_MINUTES;

		week[m >> 6] |= (uint64_t)1 << (m & 63);
	}
}

static int
week_has(const uint64_t *week, int m)
{
	return (int)(week[m >> 6] >> (m & 63) & 1);
}

/* Add the hours in s to week. 0, or -1 with *off (byte offset into s) and
 * a message in err. */
static int
hours_parse(const char *s, uint64_t *week, int *off, char *err, size_t n)
{
	const char *p = s, *w;
	unsigned days = 0;
	int nranges = 0;

	while (*p == ' ' || *p == '\t')
		p++;
	for (;;) {
		int d1, d2;

		for (w = p; isalpha((unsigned char)*p); p++)
			;
		if ((d1 = day_word(w, (size_t)(p - w))) < 0) {
			*off = (int)(w - s);
			snprintf(err, n, "expected a day (mon, tue, wed, thu, "
			    "fri, sat, sun, a range like mon-fri, or daily)");
			return -1;
		}
		if (d1 == 7) {
			days = 0x7f;
		} else if (*p == '-' && isalpha((unsigned char)p[1])) {
			for (w = ++p; isalpha((unsigned char)*p); p++)
				;
			d2 = day_word(w, (size_t)(p - w));
			if (d2 < 0 || d2 == 7) {
				*off = (int)(w - s);
				snprintf(err, n, "expected a day to end the "
				    "range (mon .. sun)");
				return -1;
			}
			for (int d = d1;; d = (d + 1) % 7) {
				days |= 1u << d;
				if (d == d2)
					break;
			}
		} else {
			days |= 1u << d1;
		}
		if (*p != ',')
			break;
		p++;
		while (*p == ' ')
			p++;
		if (!isalpha((unsigned char)*p)) {
			*off = (int)(p - s);
			snprintf(err, n, "expected a day after ','");
			return -1;
		}
	}
	if (*p != ' ' && *p != '\t') {
		*off = (int)(p - s);
		snprintf(err, n, "expected a space, then a time range such as "
		    "09:00-17:30");
		return -1;
	}
	for (;;) {
		const char *start;
		int t1, t2, len;

		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (!*p)
			break;
		start = p;
		if (parse_hhmm(&p, &t1) < 0 || *p++ != '-' ||
		    parse_hhmm(&p, &t2) < 0 ||
		    (*p && *p != ' ' && *p != '\t' && *p != ',')) {
			*off = (int)(start - s);
			snprintf(err, n, "expected a time range HH:MM-HH:MM "
			    "(00:00 to 24:00), such as 09:00-17:30");
			return -1;
		}
		if (t1 == t2 || t1 == 1440) {
			*off = (int)(start - s);
			snprintf(err, n, "empty time range (write "
			    "00:00-24:00 for the whole day)");
			return -1;
		}
		len = t2 > t1 ? t2 - t1 : 1440 - t1 + t2;
		for (int d = 0; d < 7; d++)
			if (days & (1u << d))
				week_set(week, d * 1440 + t1, len);
		nranges++;
	}
	if (nranges == 0) {
		*off = (int)(p - s);
		snprintf(err, n, "expected a time range such as 09:00-17:30 "
		    "after the days");
		return -1;
	}
	return 0;
}

/* ---- loading ------------------------------------------------------------- */

struct loader {
	struct route_conf *rc;
	struct cfgfile_errors *errs;
	struct cfgfile_node **team_node, **rep_node, **rule_node;
	struct cfgfile_pos file;
};

/* The index of zone tz in rc->zones (index 0 is UTC, interned first). */
static size_t
zone_intern(struct loader *L, const char *tz)
{
	struct route_conf *rc = L->rc;
	char **v;

	if (strcmp(tz, "UTC") == 0)
		tz = NULL;
	for (size_t i = 0; i < rc->nzones; i++)
		if ((!tz && !rc->zones[i]) ||
		    (tz && rc->zones[i] && strcmp(tz, rc->zones[i]) == 0))
			return i;
	if (!(v = realloc(rc->zones, (rc->nzones + 1) * sizeof(*v))))
		goto nomem;
	rc->zones = v;
	v[rc->nzones] = NULL;
	if (tz && !(v[rc->nzones] = strdup(tz)))
		goto nomem;
	return rc->nzones++;
nomem:
	cfgfile_error(L->errs, &L->file, "out of memory");
	return 0;
}

/* Check a section header: kind, title, name syntax. 0 if usable. */
static int
check_header(struct loader *L, struct cfgfile_node *n, const char *what)
{
	if (n->kind != CFGFILE_SECTION || !n->title) {
		cfgfile_error(L->errs, &n->pos, "write %s \"NAME\" { ... }",
		    what);
		return -1;
	}
	if (!route_valid_id(n->title)) {
		cfgfile_error(L->errs, &n->pos, "%s \"%s\": names use letters, "
		    "digits and . _ - @ + (at most %d)", what, n->title,
		    ROUTE_NAME_MAX);
		return -1;
	}
	return 0;
}

static void
load_team(struct loader *L, struct cfgfile_node *n)
{
	struct route_conf *rc = L->rc;
	struct route_team *t;

	if (check_header(L, n, "team") < 0)
		return;
	for (size_t i = 0; i < rc->nteams; i++) {
		if (strcmp(rc->teams[i].name, n->title) == 0) {
			cfgfile_error(L->errs, &n->pos, "team \"%s\" is "
			    "declared twice (first at line %d)", n->title,
			    L->team_node[i]->pos.line);
			return;
		}
	}
	t = &rc->teams[rc->nteams];
	if (!(t->name = strdup(n->title)))
		return;
	L->team_node[rc->nteams++] = n;
	conf_bind(team_keys, n, t, NULL, L->errs);
	conf_check_unknown(n, L->errs);
	for (int m = 0; t->method_src && method_names[m]; m++)
		if (strcmp(t->method_src, method_names[m]) == 0)
			t->method = (enum route_method)m;
	t->catch_all = t->manager = ROUTE_NONE;
}

static int
by_min_desc(const void *a, const void *b)
{
	const struct route_tier *x = a, *y = b;

	return x->min_score < y->min_score ? 1 :
	    x->min_score > y->min_score ? -1 : 0;
}

/* tiers = { "senior:70", "junior:0" } */
static void
team_tiers(struct loader *L, struct route_team *t, struct cfgfile_node *n)
{
	size_t k = t->tiers_src.n;

	if (t->method != ROUTE_SCORE_TIERS) {
		struct cfgfile_pos p = at_key(n, "tiers");

		if (k)
			cfgfile_error(L->errs, &p, "tiers: only for method = "
			    "score_tiers");
		return;
	}
	if (k == 0) {
		struct cfgfile_pos p = at_key(n, "method");

		cfgfile_error(L->errs, &p, "team \"%s\": method score_tiers "
		    "needs tiers, e.g. tiers = { \"senior:70\", \"junior:0\" }",
		    t->name);
		return;
	}
	if (!(t->tiers = calloc(k, sizeof(*t->tiers))))
		return;
	for (size_t i = 0; i < k; i++) {
		const char *s = t->tiers_src.v[i], *colon = strrchr(s, ':');
		struct cfgfile_pos p = at_item(n, "tiers", i);
		char *end, name[ROUTE_NAME_MAX + 1];
		double min;

		if (!colon || (size_t)(colon - s) > ROUTE_NAME_MAX) {
			cfgfile_error(L->errs, &p, "tiers: expected "
			    "\"NAME:MIN\" (a tier name and the lowest score it "
			    "takes), got \"%s\"", s);
			continue;
		}
		snprintf(name, sizeof(name), "%.*s", (int)(colon - s), s);
		min = strtod(colon + 1, &end);
		if (!route_valid_id(name) || end == colon + 1 || *end ||
		    !isfinite(min) || min < 0 || min > 1e9) {
			cfgfile_error(L->errs, &p, "tiers: expected "
			    "\"NAME:MIN\" with MIN a score from 0, got \"%s\"",
			    s);
			continue;
		}
		for (size_t j = 0; j < t->ntiers; j++) {
			if (strcmp(t->tiers[j].name, name) == 0 ||
			    t->tiers[j].min_score == min) {
				cfgfile_error(L->errs, &p, "tiers: \"%s\" "
				    "repeats the tier name or minimum of "
				    "\"%s:%g\"", s,
				    t->tiers[j].name, t->tiers[j].min_score);
				goto next;
			}
		}
		t->tiers[t->ntiers].name = strdup(name);
		t->tiers[t->ntiers++].min_score = min;
next:		;
	}
	qsort(t->tiers, t->ntiers, sizeof(*t->tiers), by_min_desc);
}

static int
valid_phone(const char *s)
{
	size_t digits = 0;

	if (*s++ != '+')
		return 0;
	for (; *s; s++, digits++)
		if (!isdigit((unsigned char)*s))
			return 0;
	return digits >= 7 && digits <= 15;
}

static void
load_rep(struct loader *L, struct cfgfile_node *n)
{
	struct route_conf *rc = L->rc;
	struct route_rep *r;
	struct cfgfile_pos p;
	const char *tz, *why = NULL;
	char err[256], *end;

	if (check_header(L, n, "rep") < 0)
		return;
	r = &rc->reps[rc->nreps];
	if (!(r->id = strdup(n->title)))
		return;
	L->rep_node[rc->nreps++] = n;
	r->manager = ROUTE_NONE;
	conf_bind(rep_keys, n, r, NULL, L->errs);
	conf_check_unknown(n, L->errs);
	if (!r->name || !r->weight_src || !r->time_zone ||
	    !r->email || !r->phone || !r->tier || !r->manager_id)
		return;         /* out of memory: freed with the conf */
	if (!*r->name) {
		free(r->name);
		r->name = strdup(r->id);
	}

	/* weight */
	r->weight = strtod(r->weight_src, &end);
	if (end == r->weight_src || *end || !isfinite(r->weight) ||
	    r->weight < 0.1 || r->weight > 100) {
		p = at_key(n, "weight");
		cfgfile_error(L->errs, &p, "weight: expected a number from 0.1 "
		    "to 100, got '%s'", r->weight_src);
		r->weight = 1;
	}
	r->stride = 1.0 / r->weight;

	/* contact and notification channels */
	if (*r->email && !mime_addr_valid(r->email, &why)) {
		p = at_key(n, "email");
		cfgfile_error(L->errs, &p, "email: '%s' is not a valid "
		    "address%s%s", r->email, why ? ": " : "", why ? why : "");
	}
	if (*r->phone && !valid_phone(r->phone)) {
		p = at_key(n, "phone");
		cfgfile_error(L->errs, &p, "phone: '%s' is not an E.164 number "
		    "(+ and 7 to 15 digits, e.g. +15555550123)", r->phone);
	}
	for (size_t i = 0; i < r->notify_src.n; i++) {
		const char *c = r->notify_src.v[i];

		p = at_item(n, "notify", i);
		if (strcmp(c, "email") == 0 && *r->email)
			r->notify |= ROUTE_NOTIFY_EMAIL;
		else if (strcmp(c, "sms") == 0 && *r->phone)
			r->notify |= ROUTE_NOTIFY_SMS;
		else if (strcmp(c, "email") == 0 || strcmp(c, "sms") == 0)
			cfgfile_error(L->errs, &p, "notify: %s needs the "
			    "rep's %s", c, *c == 'e' ? "email" : "phone");
		else
			cfgfile_error(L->errs, &p, "notify: '%s' is not one "
			    "of: email, sms", c);
	}
	if (r->notify_src.n == 0) {
		r->notify = (*r->email ? ROUTE_NOTIFY_EMAIL : 0) |
		    (*r->phone ? ROUTE_NOTIFY_SMS : 0);
		if (!r->notify)
			cfgfile_error(L->errs, &n->pos, "rep \"%s\": give an "
			    "email or a phone, so that offers reach the rep",
			    r->id);
	}

	/* time zone and hours */
	tz = *r->time_zone ? r->time_zone : rc->time_zone;
	if (cond_tz_check(tz, err, sizeof(err)) < 0) {
		p = *r->time_zone ? at_key(n, "time_zone") : n->pos;
		cfgfile_error(L->errs, &p, "time_zone: %s (a name such as "
		    "\"America/Detroit\" from the tz database)", err);
		tz = "UTC";
	}
	r->zone = zone_intern(L, tz);
	if (r->hours.n && !(r->week = calloc(ROUTE_WEEK_WORDS,
	    sizeof(*r->week))))
		return;
	for (size_t i = 0; i < r->hours.n; i++) {
		int off = 0;

		if (hours_parse(r->hours.v[i], r->week, &off, err,
		    sizeof(err)) < 0) {
			p = at_offset(n, "hours", i, (size_t)off);
			cfgfile_error(L->errs, &p, "hours: %s", err);
		}
	}
}

struct field_check {
	struct cfgfile_errors *errs;
	struct cfgfile_node *rule;
	const char *src;
};

/* Rule conditions read the lead's standard fields and its custom ones. */
static void
check_field(void *arg, const char *name)
{
	struct field_check *fc = arg;
	const char *at;
	struct cfgfile_pos p;

	if (strncmp(name, "fields.", 7) == 0)
		return;
	for (size_t i = 0; i < lead_sqlmap.ncols; i++)
		if (strcmp(lead_sqlmap.cols[i].name, name) == 0)
			return;
	at = strstr(fc->src, name);
	p = at_offset(fc->rule, "when", 0, at ? (size_t)(at - fc->src) : 0);
	cfgfile_error(fc->errs, &p, "when: no lead field '%s' (custom fields "
	    "are written fields.%s)", name, name);
}

static void
load_rule(struct loader *L, struct cfgfile_node *n)
{
	struct route_conf *rc = L->rc;
	struct route_rule *u;
	struct cond_error ce;
	struct cfgfile_pos p;

	if (check_header(L, n, "rule") < 0)
		return;
	for (size_t i = 0; i < rc->nrules; i++) {
		if (strcmp(rc->rules[i].name, n->title) == 0) {
			cfgfile_error(L->errs, &n->pos, "rule \"%s\" is "
			    "declared twice (first at line %d)", n->title,
			    L->rule_node[i]->pos.line);
			return;
		}
	}
	u = &rc->rules[rc->nrules];
	if (!(u->name = strdup(n->title)))
		return;
	L->rule_node[rc->nrules++] = n;
	conf_bind(rule_keys, n, u, NULL, L->errs);
	conf_check_unknown(n, L->errs);
	if (!u->when_src || !u->team_name)
		return;
	if (!is_always(u->when_src)) {
		if (cond_parse(u->when_src, &u->when, &ce) < 0) {
			p = at_offset(n, "when", 0, (size_t)ce.offset);
			cfgfile_error(L->errs, &p, "when: %s", ce.msg);
		} else {
			struct field_check fc = { L->errs, n, u->when_src };

			cond_fields(u->when, check_field, &fc);
		}
	}
	for (size_t i = 0; i < u->require_src.n; i++) {
		const char *s = u->require_src.v[i];

		if (strcmp(s, "territory") == 0) {
			u->require |= ROUTE_REQ_TERRITORY;
		} else if (strcmp(s, "product") == 0) {
			u->require |= ROUTE_REQ_PRODUCT;
		} else if (strcmp(s, "language") == 0) {
			u->require |= ROUTE_REQ_LANGUAGE;
		} else {
			p = at_item(n, "require", i);
			cfgfile_error(L->errs, &p, "require: '%s' is not one "
			    "of: territory, product, language (skills go in "
			    "skills = { ... })", s);
		}
	}
}

static int
add_member(struct route_team *t, size_t rep)
{
	size_t *v = realloc(t->members, (t->nmembers + 1) * sizeof(*v));

	if (!v)
		return -1;
	t->members = v;
	v[t->nmembers++] = rep;
	return 0;
}

static size_t
team_index(const struct route_conf *rc, const char *name)
{
	for (size_t i = 0; i < rc->nteams; i++)
		if (strcmp(rc->teams[i].name, name) == 0)
			return i;
	return ROUTE_NONE;
}

struct id_idx {
	const char *id;
	size_t i;
};

static int
by_id(const void *a, const void *b)
{
	const struct id_idx *x = a, *y = b;
	int c = strcmp(x->id, y->id);

	return c ? c : x->i < y->i ? -1 : x->i > y->i;
}

/* Sort the id index; report duplicate ids (at the later declaration). */
static void
index_reps(struct loader *L)
{
	struct route_conf *rc = L->rc;
	struct id_idx *v = calloc(rc->nreps + 1, sizeof(*v));

	if (!v || !(rc->rep_by_id = calloc(rc->nreps + 1, sizeof(size_t)))) {
		free(v);
		return;
	}
	for (size_t i = 0; i < rc->nreps; i++) {
		v[i].id = rc->reps[i].id;
		v[i].i = i;
	}
	qsort(v, rc->nreps, sizeof(*v), by_id);
	for (size_t i = 0; i < rc->nreps; i++) {
		rc->rep_by_id[i] = v[i].i;
		if (i > 0 && strcmp(v[i - 1].id, v[i].id) == 0)
			cfgfile_error(L->errs, &L->rep_node[v[i].i]->pos, "rep "
			    "\"%s\" is declared twice (first at line %d)",
			    v[i].id, L->rep_node[v[i - 1].i]->pos.line);
	}
	free(v);
}

static size_t
rep_ref(struct loader *L, const char *id, struct cfgfile_pos p,
    const char *what)
{
	size_t r;

	if (!*id)
		return ROUTE_NONE;
	if ((r = route_rep_find(L->rc, id)) == ROUTE_NONE)
		cfgfile_error(L->errs, &p, "%s: no rep \"%s\" (declare it with "
		    "rep \"%s\" { ... })", what, id, id);
	return r;
}

/* Resolve references between teams, reps and rules. */
static void
link_all(struct loader *L)
{
	struct route_conf *rc = L->rc;

	for (size_t i = 0; i < rc->nteams; i++) {
		struct route_team *t = &rc->teams[i];
		struct cfgfile_node *n = L->team_node[i];

		t->catch_all = rep_ref(L, t->catch_all_id,
		    at_key(n, "catch_all"), "catch_all");
		t->manager = rep_ref(L, t->manager_id, at_key(n, "manager"),
		    "manager");
		team_tiers(L, t, n);
	}
	for (size_t i = 0; i < rc->nreps; i++) {
		struct route_rep *r = &rc->reps[i];
		struct cfgfile_node *n = L->rep_node[i];

		r->manager = rep_ref(L, r->manager_id, at_key(n, "manager"),
		    "manager");
		if (r->manager == i) {
			struct cfgfile_pos p = at_key(n, "manager");

			cfgfile_error(L->errs, &p, "manager: a rep cannot be "
			    "its own manager");
		}
		for (size_t k = 0; k < r->teams.n; k++) {
			size_t ti = team_index(rc, r->teams.v[k]);
			struct cfgfile_pos p = at_item(n, "teams", k);
			struct route_team *t;

			if (ti == ROUTE_NONE) {
				cfgfile_error(L->errs, &p, "teams: no team "
				    "\"%s\" (declare it with team \"%s\" "
				    "{ ... })", r->teams.v[k], r->teams.v[k]);
				continue;
			}
			t = &rc->teams[ti];
			if (t->nmembers && t->members[t->nmembers - 1] == i) {
				cfgfile_error(L->errs, &p, "teams: \"%s\" is "
				    "listed twice", t->name);
				continue;
			}
			add_member(t, i);
		}
	}
	for (size_t i = 0; i < rc->nteams; i++) {
		struct route_team *t = &rc->teams[i];

		if (t->method != ROUTE_SCORE_TIERS || !t->ntiers ||
		    !(t->member_tier = calloc(t->nmembers + 1, sizeof(int))))
			continue;
		for (size_t m = 0; m < t->nmembers; m++) {
			const struct route_rep *r = &rc->reps[t->members[m]];
			struct cfgfile_node *n = L->rep_node[t->members[m]];
			struct cfgfile_pos p = *r->tier ? at_key(n, "tier") :
			    n->pos;
			char all[512] = "";

			t->member_tier[m] = -1;
			for (size_t k = 0; k < t->ntiers; k++) {
				if (strcmp(t->tiers[k].name, r->tier) == 0)
					t->member_tier[m] = (int)k;
				snprintf(all + strlen(all), sizeof(all) -
				    strlen(all), "%s%s", k ? ", " : "",
				    t->tiers[k].name);
			}
			if (t->member_tier[m] < 0)
				cfgfile_error(L->errs, &p, "rep \"%s\" is in "
				    "team \"%s\" (method score_tiers), so its "
				    "tier must be one of: %s", r->id, t->name,
				    all);
		}
	}
	for (size_t i = 0; i < rc->nrules; i++) {
		struct route_rule *u = &rc->rules[i];
		struct cfgfile_node *n = L->rule_node[i];
		struct cfgfile_pos p = at_key(n, "team");
		size_t ti;

		if (!*u->team_name)
			cfgfile_error(L->errs, &p, "rule \"%s\": name the team "
			    "its leads go to, e.g. team = \"sales\"", u->name);
		else if ((ti = team_index(rc, u->team_name)) == ROUTE_NONE)
			cfgfile_error(L->errs, &p, "team: no team \"%s\" "
			    "(declare it with team \"%s\" { ... })",
			    u->team_name, u->team_name);
		else
			u->team = &rc->teams[ti];
	}
}

/* The last rule must be a default rule, and only the last. */
static void
check_default(struct loader *L)
{
	struct route_conf *rc = L->rc;
	size_t first = ROUTE_NONE;

	if (rc->nrules == 0) {
		cfgfile_error(L->errs, &L->file, "no rules: every lead needs a "
		    "team, so end with a default rule, e.g. rule \"default\" "
		    "{ team = \"sales\" }");
		return;
	}
	for (size_t i = 0; i < rc->nrules; i++) {
		if (!is_always(rc->rules[i].when_src ? rc->rules[i].when_src :
		    "x"))
			continue;
		if (first == ROUTE_NONE) {
			first = i;
			continue;
		}
		cfgfile_error(L->errs, &L->rule_node[i]->pos, "rule \"%s\" is "
		    "never used: the default rule \"%s\" (line %d) before it "
		    "takes every lead", rc->rules[i].name,
		    rc->rules[first].name, L->rule_node[first]->pos.line);
	}
	if (first == ROUTE_NONE) {
		size_t last = rc->nrules - 1;

		cfgfile_error(L->errs, &L->rule_node[last]->pos, "the last "
		    "rule must be a default rule (no `when`, or when = "
		    "\"true\") so that every lead finds a team; \"%s\" has a "
		    "condition", rc->rules[last].name);
	} else if (first != rc->nrules - 1) {
		cfgfile_error(L->errs, &L->rule_node[first]->pos, "rule \"%s\" "
		    "takes every lead, so the rules after it are never used: "
		    "move it last", rc->rules[first].name);
	}
}

static struct route_conf *
load_tree(struct cfgfile_tree *tree, const char *name,
    struct cfgfile_errors *errs)
{
	struct loader L;
	struct route_conf *rc;
	size_t before = errs->n, nteam = 0, nrep = 0, nrule = 0;
	char err[256];

	memset(&L, 0, sizeof(L));
	if (!(rc = calloc(1, sizeof(*rc))) || !(rc->path = strdup(name)))
		goto nomem;
	L.rc = rc;
	L.errs = errs;
	L.file.file = tree->nfiles ? tree->files[0] : name;
	for (struct cfgfile_node *n = tree->root->child; n; n = n->next) {
		nteam += strcmp(n->key, "team") == 0;
		nrep += strcmp(n->key, "rep") == 0;
		nrule += strcmp(n->key, "rule") == 0;
	}
	if (!(rc->teams = calloc(nteam + 1, sizeof(*rc->teams))) ||
	    !(rc->reps = calloc(nrep + 1, sizeof(*rc->reps))) ||
	    !(rc->rules = calloc(nrule + 1, sizeof(*rc->rules))) ||
	    !(L.team_node = calloc(nteam + 1, sizeof(*L.team_node))) ||
	    !(L.rep_node = calloc(nrep + 1, sizeof(*L.rep_node))) ||
	    !(L.rule_node = calloc(nrule + 1, sizeof(*L.rule_node))))
		goto nomem;
	zone_intern(&L, "UTC");
	conf_bind(root_keys, tree->root, rc, NULL, errs);
	if (!rc->time_zone || rc->nzones != 1)
		goto nomem;
	if (cond_tz_check(rc->time_zone, err, sizeof(err)) < 0) {
		struct cfgfile_pos p = at_key(tree->root, "time_zone");

		cfgfile_error(errs, &p, "time_zone: %s (a name such as "
		    "\"America/Detroit\" from the tz database)", err);
		free(rc->time_zone);
		if (!(rc->time_zone = strdup("UTC")))
			goto nomem;
	}
	for (struct cfgfile_node *n = tree->root->child; n; n = n->next) {
		if (strcmp(n->key, "team") == 0)
			load_team(&L, n);
		else if (strcmp(n->key, "rep") == 0)
			load_rep(&L, n);
		else if (strcmp(n->key, "rule") == 0)
			load_rule(&L, n);
		else
			continue;
		n->used = 1;
	}
	conf_check_unknown(tree->root, errs);
	index_reps(&L);
	if (!rc->rep_by_id)
		goto nomem;
	link_all(&L);
	check_default(&L);
	if (errs->n > before)
		goto fail;
	free(L.team_node);
	free(L.rep_node);
	free(L.rule_node);
	return rc;
nomem:
	cfgfile_error(errs, &L.file, "out of memory");
fail:
	free(L.team_node);
	free(L.rep_node);
	free(L.rule_node);
	route_conf_free(rc);
	return NULL;
}

struct route_conf *
route_load(const char *path, struct cfgfile_errors *errs)
{
	struct cfgfile_tree tree;
	struct route_conf *rc = NULL;

	/* after a syntax error, the checks would report what is missing
	 * from the broken part: stop at the syntax errors */
	if (cfgfile_parse(path, &tree, errs) == 0)
		rc = load_tree(&tree, path, errs);
	cfgfile_tree_free(&tree);
	return rc;
}

struct route_conf *
route_load_string(const char *name, const char *text, size_t len,
    struct cfgfile_errors *errs)
{
	struct cfgfile_tree tree;
	struct route_conf *rc = NULL;

	if (cfgfile_parse_string(name, text, len, &tree, errs) == 0)
		rc = load_tree(&tree, name, errs);
	cfgfile_tree_free(&tree);
	return rc;
}

struct route_conf *
route_load_overlay(const char *path, const char *name, const char *text,
    size_t len, struct cfgfile_errors *errs)
{
	struct cfgfile_tree tree, over;
	struct route_conf *rc = NULL;
	int bad = cfgfile_parse(path, &tree, errs) < 0;

	bad |= cfgfile_parse_string(name, text, len, &over, errs) < 0;
	if (!bad && cfgfile_overlay(&tree, &over, "rep") < 0) {
		struct cfgfile_pos p = { path, 0, 0 };

		cfgfile_error(errs, &p, "out of memory");
		bad = 1;
	}
	if (!bad)
		rc = load_tree(&tree, path, errs);
	cfgfile_tree_free(&over);
	cfgfile_tree_free(&tree);
	return rc;
}

void
route_conf_free(struct route_conf *rc)
{
	if (!rc)
		return;
	for (size_t i = 0; i < rc->nteams; i++) {
		struct route_team *t = &rc->teams[i];

		conf_unbind(team_keys, t);
		for (size_t k = 0; k < t->ntiers; k++)
			free(t->tiers[k].name);
		free(t->tiers);
		free(t->members);
		free(t->member_tier);
		free(t->name);
	}
	for (size_t i = 0; i < rc->nreps; i++) {
		conf_unbind(rep_keys, &rc->reps[i]);
		free(rc->reps[i].id);
		free(rc->reps[i].week);
	}
	for (size_t i = 0; i < rc->nrules; i++) {
		conf_unbind(rule_keys, &rc->rules[i]);
		cond_free(rc->rules[i].when);
		free(rc->rules[i].name);
	}
	for (size_t i = 0; i < rc->nzones; i++)
		free(rc->zones[i]);
	conf_unbind(root_keys, rc);
	free(rc->zones);
	free(rc->teams);
	free(rc->reps);
	free(rc->rules);
	free(rc->rep_by_id);
	free(rc->path);
	free(rc);
}

/* ---- lookups ------------------------------------------------------------- */

const struct route_team *
route_team_find(const struct route_conf *rc, const char *name)
{
	size_t i = team_index(rc, name);

	return i == ROUTE_NONE ? NULL : &rc->teams[i];
}

size_t
route_rep_find(const struct route_conf *rc, const char *id)
{
	size_t lo = 0, hi = rc->nreps;

	if (!rc->rep_by_id)
		return ROUTE_NONE;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(rc->reps[rc->rep_by_id[mid]].id, id);

		if (c == 0) {
			/* the first declaration of a duplicate id */
			while (mid > 0 && strcmp(rc->reps[rc->rep_by_id[mid -
			    1]].id, id) == 0)
				mid--;
			return rc->rep_by_id[mid];
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return ROUTE_NONE;
}

const struct route_rule *
route_rule_find(const struct route_conf *rc, const char *name)
{
	for (size_t i = 0; i < rc->nrules; i++)
		if (strcmp(rc->rules[i].name, name) == 0)
			return &rc->rules[i];
	return NULL;
}

const char *
route_method_name(enum route_method m)
{
	return (unsigned)m < sizeof(method_names) / sizeof(*method_names) - 1 ?
	    method_names[m] : "?";
}

const char *
route_why_str(enum route_why w)
{
	switch (w) {
	case ROUTE_ELIGIBLE: return "eligible";
	case ROUTE_OFF_DUTY: return "off duty";
	case ROUTE_AT_CAPACITY: return "at capacity";
	case ROUTE_OFF_HOURS: return "outside working hours";
	case ROUTE_DECLINED: return "declined or let an offer expire";
	case ROUTE_LACKS_SKILL: return "lacks a required skill";
	case ROUTE_LACKS_TERRITORY: return "not in the lead's territory";
	case ROUTE_LACKS_PRODUCT: return "does not handle the lead's product";
	case ROUTE_LACKS_LANGUAGE: return "does not speak the lead's language";
	}
	return "?";
}

/* ---- state --------------------------------------------------------------- */

void
route_state_init(struct route_rep_state *s)
{
	memset(s, 0, sizeof(*s));
	s->on_duty = 1;
	s->away = 1;
	s->changed = 1;
}

void
route_rep_rejoin(struct route_rep_state *s)
{
	if (!s->away) {
		s->away = 1;
		s->changed = 1;
	}
}

void
route_charge(const struct route_conf *rc, struct route_rep_state *states,
    size_t rep)
{
	if (rep >= rc->nreps)
		return;
	states[rep].pass += rc->reps[rep].stride;
	states[rep].changed = 1;
}

/* ---- decisions ----------------------------------------------------------- */

/* The lead's fields the decision needs, read once. */
struct lead_view {
	const char *country, *region, *postal, *product, *language;
	double score;
	char postal_buf[32];
};

static const char *
text_field(const json_t *lead, const char *key, char *buf, size_t n)
{
	const json_t *v = json_object_get(lead, key);
	const char *s;

	if (json_is_string(v)) {
		s = json_string_value(v);
		return *s ? s : NULL;
	}
	if (buf && json_is_integer(v)) {
		snprintf(buf, n, "%" JSON_INTEGER_FORMAT,
		    json_integer_value(v));
		return buf;
	}
	return NULL;
}

static void
view_init(struct lead_view *v, const json_t *lead, unsigned need, int score)
{
	memset(v, 0, sizeof(*v));
	if (!json_is_object(lead))
		return;
	if (need & ROUTE_REQ_TERRITORY) {
		v->country = text_field(lead, "country", NULL, 0);
		v->region = text_field(lead, "region", NULL, 0);
		v->postal = text_field(lead, "postal_code", v->postal_buf,
		    sizeof(v->postal_buf));
	}
	if (need & ROUTE_REQ_PRODUCT)
		v->product = text_field(lead, "product", NULL, 0);
	if (need & ROUTE_REQ_LANGUAGE)
		v->language = text_field(lead, "language", NULL, 0);
	if (score) {
		const json_t *s = json_object_get(lead, "score");
		char *end;

		if (json_is_number(s)) {
			v->score = json_number_value(s);
		} else if (json_is_string(s)) {
			v->score = strtod(json_string_value(s), &end);
			if (*end || !isfinite(v->score))
				v->score = 0;
		}
	}
}

static int
list_has(const struct conf_strlist *l, const char *s, int wildcard)
{
	for (size_t i = 0; i < l->n; i++)
		if ((wildcard && strcmp(l->v[i], "*") == 0) ||
		    eq_nocase(l->v[i], s))
			return 1;
	return 0;
}

static int
territory_ok(const struct route_rep *r, const struct lead_view *v)
{
	if (!v->country && !v->region && !v->postal)
		return 1;       /* nothing to match: waived */
	for (size_t i = 0; i < r->territories.n; i++) {
		const char *t = r->territories.v[i];

		if (strcmp(t, "*") == 0)
			return 1;
		if (strncmp(t, "postal:", 7) == 0) {
			if (v->postal && t[7] &&
			    starts_nocase(v->postal, t + 7))
				return 1;
			continue;
		}
		if ((v->country && eq_nocase(t, v->country)) ||
		    (v->region && eq_nocase(t, v->region)))
			return 1;
	}
	return 0;
}

static int
language_ok(const struct route_rep *r, const char *lang)
{
	for (size_t i = 0; i < r->languages.n; i++) {
		const char *l = r->languages.v[i];
		size_t n = strlen(l);

		if (strcmp(l, "*") == 0 || eq_nocase(l, lang))
			return 1;
		if (!strchr(l, '-') && starts_nocase(lang, l) &&
		    (lang[n] == '-' || lang[n] == '_'))
			return 1;
	}
	return 0;
}

static enum route_why
lead_fit(const struct route_rule *u, const struct route_rep *r,
    const struct lead_view *v)
{
	for (size_t i = 0; i < u->skills.n; i++)
		if (!list_has(&r->skills, u->skills.v[i], 0))
			return ROUTE_LACKS_SKILL;
	if ((u->require & ROUTE_REQ_TERRITORY) && !territory_ok(r, v))
		return ROUTE_LACKS_TERRITORY;
	if ((u->require & ROUTE_REQ_PRODUCT) && v->product &&
	    !list_has(&r->products, v->product, 1))
		return ROUTE_LACKS_PRODUCT;
	if ((u->require & ROUTE_REQ_LANGUAGE) && v->language &&
	    !language_ok(r, v->language))
		return ROUTE_LACKS_LANGUAGE;
	return ROUTE_ELIGIBLE;
}

/* Local minute of the week per zone, looked up once per decision. */
#define CLOCK_SLOTS 8

struct clock {
	time_t now;
	int n;
	size_t zone[CLOCK_SLOTS];
	int mow[CLOCK_SLOTS];
};

static int
minute_of_week(const char *tz, time_t now)
{
	struct tm tm;

	if (cond_localtime(tz, now, &tm, NULL) < 0)
		return -1;
	return ((tm.tm_wday + 6) % 7) * 1440 + tm.tm_hour * 60 + tm.tm_min;
}

static int
clock_mow(const struct route_conf *rc, struct clock *c, size_t zone)
{
	int m;

	for (int i = 0; i < c->n; i++)
		if (c->zone[i] == zone)
			return c->mow[i];
	m = minute_of_week(rc->zones[zone], c->now);
	if (c->n < CLOCK_SLOTS) {
		c->zone[c->n] = zone;
		c->mow[c->n++] = m;
	}
	return m;
}

/* Why the rep cannot take any lead now, or ROUTE_ELIGIBLE. */
static enum route_why
absent(const struct route_conf *rc, const struct route_rep *r,
    const struct route_rep_state *st, struct clock *c)
{
	int m;

	if (!st->on_duty)
		return ROUTE_OFF_DUTY;
	if (r->capacity > 0 && st->open >= r->capacity)
		return ROUTE_AT_CAPACITY;
	if (r->week && ((m = clock_mow(rc, c, r->zone)) < 0 ||
	    !week_has(r->week, m)))
		return ROUTE_OFF_HOURS;
	return ROUTE_ELIGIBLE;
}

static int
declined(const struct route_history *h, size_t rep)
{
	for (size_t i = 0; i < h->ndeclined; i++)
		if (h->declined[i] == rep)
			return 1;
	return 0;
}

int
route_in_hours(const struct route_conf *rc, size_t rep, time_t now)
{
	const struct route_rep *r;
	int m;

	if (rep >= rc->nreps)
		return 0;
	r = &rc->reps[rep];
	if (!r->week)
		return 1;
	m = minute_of_week(rc->zones[r->zone], now);
	return m >= 0 && week_has(r->week, m);
}

enum route_why
route_eligible(const struct route_conf *rc, const struct route_rule *rule,
    size_t rep, const struct route_rep_state *st, const json_t *lead,
    const struct route_history *hist, time_t now)
{
	struct clock c = { .now = now };
	struct lead_view v;
	enum route_why w;

	if (rep >= rc->nreps)
		return ROUTE_OFF_DUTY;
	if ((w = absent(rc, &rc->reps[rep], st, &c)) != ROUTE_ELIGIBLE)
		return w;
	if (hist && declined(hist, rep))
		return ROUTE_DECLINED;
	if (!rule)
		return ROUTE_ELIGIBLE;
	view_init(&v, lead, rule->require, 0);
	return lead_fit(rule, &rc->reps[rep], &v);
}

/* No rep took it: the catch-all owner, else the manager, else the queue. */
static int
catch_all(const struct route_team *t, struct route_result *out)
{
	out->rep = t->catch_all != ROUTE_NONE ? t->catch_all : t->manager;
	out->action = out->rep != ROUTE_NONE ? ROUTE_ASSIGN : ROUTE_QUEUE;
	return 0;
}

/*
 * Eligible members (as member indexes, in e[0..ne)): raise returning
 * reps to the floor. The floor is the lowest pass among those who were
 * present, or, when all are returning, the highest pass among them.
 */
static void
rejoin(const struct route_team *t, struct route_rep_state *states,
    const size_t *e, size_t ne)
{
	double lo = 0, hi = 0;
	int any_present = 0, any_away = 0;

	for (size_t i = 0; i < ne; i++) {
		const struct route_rep_state *st = &states[t->members[e[i]]];

		if (st->away) {
			if (!any_away || st->pass > hi)
				hi = st->pass;
			any_away = 1;
		} else if (!any_present || st->pass < lo) {
			lo = st->pass;
			any_present = 1;
		}
	}
	if (!any_away)
		return;
	if (!any_present)
		lo = hi;
	for (size_t i = 0; i < ne; i++) {
		struct route_rep_state *st = &states[t->members[e[i]]];

		if (!st->away)
			continue;
		if (st->pass < lo)
			st->pass = lo;
		st->away = 0;
		st->changed = 1;
	}
}

/* The member (index into e) an offer goes to, or ROUTE_NONE. */
static size_t
choose(const struct route_team *t, const struct route_rep_state *states,
    const size_t *e, size_t ne, double score)
{
	size_t best = ROUTE_NONE;

	switch (t->method) {
	case ROUTE_LEAST_LOADED:
		for (size_t i = 0; i < ne; i++) {
			const struct route_rep_state *s, *b;

			s = &states[t->members[e[i]]];
			b = best == ROUTE_NONE ? NULL :
			    &states[t->members[e[best]]];
			if (!b || s->open < b->open ||
			    (s->open == b->open && s->pass < b->pass))
				best = i;
		}
		return best;
	case ROUTE_SCORE_TIERS: {
		size_t t0 = t->ntiers - 1;

		for (size_t k = 0; k < t->ntiers; k++) {
			if (score >= t->tiers[k].min_score) {
				t0 = k;
				break;
			}
		}
		/* t0, then lower tiers, then higher ones nearest first */
		for (size_t step = 0; step < t->ntiers; step++) {
			size_t k = t0 + step < t->ntiers ? t0 + step :
			    t0 - (step - (t->ntiers - 1 - t0));

			for (size_t i = 0; i < ne; i++) {
				if (t->member_tier[e[i]] != (int)k)
					continue;
				if (best == ROUTE_NONE ||
				    states[t->members[e[i]]].pass <
				    states[t->members[e[best]]].pass)
					best = i;
			}
			if (best != ROUTE_NONE)
				return best;
		}
		return best;
	}
	default:
		for (size_t i = 0; i < ne; i++)
			if (best == ROUTE_NONE ||
			    states[t->members[e[i]]].pass <
			    states[t->members[e[best]]].pass)
				best = i;
		return best;
	}
}

int
route_pick(const struct route_conf *rc, const struct route_team *team,
    const struct route_rule *rule, const json_t *lead,
    struct route_rep_state *states, const struct route_history *hist,
    time_t now, struct route_result *out)
{
	static const struct route_history none;
	enum { ONE, BROADCAST, CATCH } phase;
	size_t stackbuf[256], *e = stackbuf, ne = 0, w;
	struct clock clk = { .now = now };
	struct lead_view v;

	if (!hist)
		hist = &none;
	out->team = team;
	out->rep = ROUTE_NONE;
	out->nset = 0;
	switch (team->method) {
	case ROUTE_MANUAL:
	case ROUTE_PULL:
		out->action = ROUTE_QUEUE;
		return 0;
	case ROUTE_BROADCAST:
		phase = hist->broadcast_done ? CATCH : BROADCAST;
		break;
	default:
		phase = hist->ndeclined < (size_t)team->max_offers ? ONE :
		    team->broadcast_round && !hist->broadcast_done ? BROADCAST :
		    CATCH;
		break;
	}
	if (phase == CATCH)
		return catch_all(team, out);
	if (phase == BROADCAST && (!out->set || out->setcap < team->nmembers))
		return -1;
	if (team->nmembers > sizeof(stackbuf) / sizeof(*stackbuf) &&
	    !(e = malloc(team->nmembers * sizeof(*e))))
		return -1;
	view_init(&v, lead, rule ? rule->require : 0,
	    team->method == ROUTE_SCORE_TIERS);
	for (size_t i = 0; i < team->nmembers; i++) {
		size_t r = team->members[i];
		struct route_rep_state *st = &states[r];

		if (absent(rc, &rc->reps[r], st, &clk) != ROUTE_ELIGIBLE) {
			if (!st->away) {
				st->away = 1;
				st->changed = 1;
			}
			continue;
		}
		if (hist->ndeclined && declined(hist, r))
			continue;
		if (rule && lead_fit(rule, &rc->reps[r], &v) != ROUTE_ELIGIBLE)
			continue;
		e[ne++] = i;
	}
	rejoin(team, states, e, ne);
	out->nset = ne;
	for (size_t i = 0; out->set && i < ne && i < out->setcap; i++)
		out->set[i] = team->members[e[i]];
	if (ne == 0) {
		catch_all(team, out);
	} else if (phase == BROADCAST) {
		out->action = ROUTE_OFFER_ALL;
	} else {
		w = team->members[e[choose(team, states, e, ne, v.score)]];
		states[w].pass += rc->reps[w].stride;
		states[w].changed = 1;
		out->action = ROUTE_OFFER_ONE;
		out->rep = w;
	}
	if (e != stackbuf)
		free(e);
	return 0;
}

const struct route_rule *
route_match(const struct route_conf *rc, const json_t *lead,
    const struct cond_env *env)
{
	struct cond_env e;

	e.now = env ? env->now : time(NULL);
	e.tz = env && env->tz ? env->tz : rc->time_zone;
	for (size_t i = 0; i < rc->nrules; i++)
		if (!rc->rules[i].when || cond_eval(rc->rules[i].when, lead,
		    &e) == 1)
			return &rc->rules[i];
	return rc->nrules ? &rc->rules[rc->nrules - 1] : NULL;
}

int
route_decide(const struct route_conf *rc, const json_t *lead,
    const struct cond_env *env, struct route_rep_state *states,
    const struct route_history *hist, struct route_result *out)
{
	time_t now = env ? env->now : time(NULL);
	struct cond_env e = { now, env ? env->tz : NULL };
	const struct route_rule *u = route_match(rc, lead, &e);

	out->rule = u;
	if (!u)
		return -1;
	return route_pick(rc, u->team, u, lead, states, hist, now, out);
}
