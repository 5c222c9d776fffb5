/*
 * score - load conf/scoring.conf and compute scores. See score.h.
 *
 * Loading binds each section with conf_bind() and parses conditions with
 * cond_parse(); a condition's error is placed at its character in the
 * file with cfgfile_value_pos(). The arithmetic avoids libm: 0.5^x is
 * computed here.
 * It does not know what the daemon does with thresholds (teams are checked
 * by the router) nor how history is stored.
 */
#include "score.h"
#include "conf.h"
#include "cond.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EVENT_KEYS_MAX  64      /* event members exposed to conditions */
#define EVENT_KEY_MAX   48      /* bytes of an exposed member's name */

struct rule {
	char *name;
	enum score_kind kind;
	char *when_src;                 /* as written; "" = always */
	struct cond *when;              /* NULL = always */
	long points;
	/* behavior */
	struct conf_strlist events;     /* types it listens to */
	char *repeat;
	int once;
	long cap;                       /* 0 = none */
	long window_ms;                 /* 0 = all time */
};

struct score_conf {
	struct rule *profile, *behavior;
	size_t nprofile, nbehavior;
	struct score_grade *grades;     /* descending min */
	size_t ngrades;
	struct score_threshold *thresholds;     /* ascending min */
	size_t nthresholds;
	int decay;                      /* a decay section exists */
	long half_life_ms;
	int decay_all;                  /* applies_to = all */
	char **files;                   /* copies of the tree's file names */
	size_t nfiles;
};

static const char *const standard_events[] = { "open", "click", "visit",
	"hot_page", "form", "forward", "reply", "unsubscribe", "bounce",
	"complaint", NULL };

/* ---- key tables ---------------------------------------------------------- */

static const char *const repeats[] = { "always", "once", NULL };
static const char *const appliers[] = { "behavior", "all", NULL };
static const char *const actions[] = { "route", "notify_owner", NULL };

#define R(f) offsetof(struct rule, f)
static const struct conf_key profile_keys[] = {
	{ "when", CONF_STR, R(when_src), "", 0, 0, NULL, 0 },
	{ "points", CONF_INT, R(points), "0", -SCORE_MAX_POINTS,
	    SCORE_MAX_POINTS, NULL, 0 },
	{ NULL, 0, 0, NULL, 0, 0, NULL, 0 }
};

static const struct conf_key behavior_keys[] = {
	{ "event", CONF_STRLIST, R(events), "", 0, 0, NULL, 0 },
	{ "when", CONF_STR, R(when_src), "", 0, 0, NULL, 0 },
	{ "points", CONF_INT, R(points), "0", -SCORE_MAX_POINTS,
	    SCORE_MAX_POINTS, NULL, 0 },
	{ "repeat", CONF_ENUM, R(repeat), "always", 0, 0, repeats, 0 },
	{ "cap", CONF_INT, R(cap), "0", 0, 1000000, NULL, 0 },
	{ "window", CONF_DURATION, R(window_ms), "0", 0,
	    3650LL * 86400 * 1000, NULL, 0 },
	{ NULL, 0, 0, NULL, 0, 0, NULL, 0 }
};
#undef R

struct decay_src {
	long half_life_ms;
	char *applies_to;
};

static const struct conf_key decay_keys[] = {
	{ "half_life", CONF_DURATION, offsetof(struct decay_src, half_life_ms),
	    "30d", 3600LL * 1000, 3650LL * 86400 * 1000, NULL, 0 },
	{ "applies_to", CONF_ENUM, offsetof(struct decay_src, applies_to),
	    "behavior", 0, 0, appliers, 0 },
	{ NULL, 0, 0, NULL, 0, 0, NULL, 0 }
};

struct limit_src {
	long min;
	char *action;
	char *team;
};

#define L(f) offsetof(struct limit_src, f)
static const struct conf_key grade_keys[] = {
	{ "min", CONF_INT, L(min), "0", -1000000, 1000000, NULL, 0 },
	{ NULL, 0, 0, NULL, 0, 0, NULL, 0 }
};

static const struct conf_key threshold_keys[] = {
	{ "min", CONF_INT, L(min), "0", -1000000, 1000000, NULL, 0 },
	{ "action", CONF_ENUM, L(action), "notify_owner", 0, 0, actions, 0 },
	{ "team", CONF_STR, L(team), "", 0, 0, NULL, 0 },
	{ NULL, 0, 0, NULL, 0, 0, NULL, 0 }
};
#undef L

/* ---- loading ------------------------------------------------------------- */

struct loader {
	struct score_conf *c;
	struct cfgfile_errors *errs;
	struct cfgfile_tree *tree;
	const char *text;               /* score_load_string: the text */
	size_t len;
};

static struct cfgfile_node *
child(struct cfgfile_node *section, const char *key)
{
	for (struct cfgfile_node *n = section->child; n; n = n->next)
		if (strcmp(n->key, key) == 0)
			return n;
	return NULL;
}

/* Where the value of key is in section, else where the section is. */
static struct cfgfile_pos
value_at(struct cfgfile_node *section, const char *key)
{
	struct cfgfile_node *n = child(section, key);

	if (!n)
		return section->pos;
	return n->kind == CFGFILE_VALUE ? n->vpos : n->pos;
}

static int
valid_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > SCORE_NAME_MAX)
		return 0;
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 0;
	return 1;
}

/* Is c a character of a condition identifier? */
static int
ident_char(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '_';
}

/*
 * Rewrite event.NAME into event_NAME in place, outside string literals:
 * the same length, so positions in errors stay right. The condition
 * language has no dotted names other than fields.NAME.
 */
static void
rewrite_event_refs(char *s)
{
	char quote = 0;

	for (size_t i = 0; s[i]; i++) {
		if (quote) {
			if (s[i] == '\\' && s[i + 1])
				i++;
			else if (s[i] == quote)
				quote = 0;
			continue;
		}
		if (s[i] == '"' || s[i] == '\'') {
			quote = s[i];
			continue;
		}
		if (strncmp(s + i, "event.", 6) == 0 && ident_char(
		    (unsigned char)s[i + 6]) && (i == 0 || (!ident_char(
		    (unsigned char)s[i - 1]) && s[i - 1] != '.')))
			s[i + 5] = '_';
	}
}

/* Byte offset of the first reference to word (a whole identifier, outside
 * strings) in s, or 0. */
static size_t
find_word(const char *s, const char *word)
{
	size_t wl = strlen(word);
	char quote = 0;

	for (size_t i = 0; s[i]; i++) {
		if (quote) {
			if (s[i] == '\\' && s[i + 1])
				i++;
			else if (s[i] == quote)
				quote = 0;
			continue;
		}
		if (s[i] == '"' || s[i] == '\'') {
			quote = s[i];
			continue;
		}
		if (strncmp(s + i, word, wl) != 0 ||
		    ident_char((unsigned char)s[i + wl]))
			continue;
		if (i == 0 || (!ident_char((unsigned char)s[i - 1]) &&
		    s[i - 1] != '.'))
			return i;
	}
	return 0;
}

struct field_check {
	const struct loader *ld;
	const struct rule *r;
	const char *src;                /* the condition, event.X rewritten */
	const struct cfgfile_node *when;        /* its VALUE node */
};

static void
check_field(void *arg, const char *name)
{
	struct field_check *fc = arg;
	const struct rule *r = fc->r;
	struct cfgfile_pos p;

	if (r->kind == SCORE_PROFILE) {
		if (strcmp(name, "score") == 0) {
			p = cfgfile_value_pos(fc->when, find_word(fc->src,
			    name));
			cfgfile_error(fc->ld->errs, &p, "when: a profile rule "
			    "cannot use score (it is part of the score)");
		} else if (strcmp(name, "event") == 0 ||
		    strncmp(name, "event_", 6) == 0) {
			p = cfgfile_value_pos(fc->when, find_word(fc->src,
			    name));
			cfgfile_error(fc->ld->errs, &p, "when: event fields "
			    "exist only in behavior rules");
		}
	} else if (strcmp(name, "event") == 0) {
		p = cfgfile_value_pos(fc->when, find_word(fc->src, name));
		cfgfile_error(fc->ld->errs, &p, "when: name a field of the "
		    "event, e.g. event.url, event.tag, event.page");
	}
}

/* Drop the " at LINE:COL" that cond adds: the file position replaces it. */
static void
strip_at(char *msg)
{
	char *at = strstr(msg, " at ");
	char *next;

	while (at && (next = strstr(at + 4, " at ")) != NULL)
		at = next;
	if (at && strspn(at + 4, "0123456789:") == strlen(at + 4))
		*at = '\0';
}

static void
compile_when(const struct loader *ld, struct rule *r,
    struct cfgfile_node *section)
{
	struct cfgfile_node *when = child(section, "when");
	struct field_check fc;
	struct cond_error ce;
	char *src;

	if (!*r->when_src || !when || when->kind != CFGFILE_VALUE)
		return;
	if (!(src = strdup(r->when_src))) {
		cfgfile_error(ld->errs, &when->vpos, "when: out of memory");
		return;
	}
	rewrite_event_refs(src);        /* profile rules: refused below */
	if (cond_parse(src, &r->when, &ce) < 0) {
		struct cfgfile_pos p = cfgfile_value_pos(when, ce.offset < 0 ?
		    0 : (size_t)ce.offset);

		strip_at(ce.msg);
		cfgfile_error(ld->errs, &p, "when: %s", ce.msg);
		free(src);
		return;
	}
	fc.ld = ld;
	fc.r = r;
	fc.src = src;                   /* positions are those of when_src */
	fc.when = when;
	cond_fields(r->when, check_field, &fc);
	free(src);
}

static int
ascii_ieq(const char *a, const char *b)
{
	for (; *a && *b; a++, b++) {
		int x = (unsigned char)*a, y = (unsigned char)*b;

		if (x >= 'A' && x <= 'Z')
			x += 'a' - 'A';
		if (y >= 'A' && y <= 'Z')
			y += 'a' - 'A';
		if (x != y)
			return 0;
	}
	return *a == *b;
}

/* Are a and b one edit apart (substitution, insertion, deletion or the
 * swap of two neighbours)? */
static int
one_edit(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), i = 0;

	if (la < lb) {
		const char *t = a;
		size_t tl = la;

		a = b;
		b = t;
		la = lb;
		lb = tl;
	}
	if (la - lb > 1)
		return 0;
	while (i < lb && a[i] == b[i])
		i++;
	if (i == la)
		return 0;                       /* equal */
	if (la == lb)
		return strcmp(a + i + 1, b + i + 1) == 0 || (i + 1 < la &&
		    a[i] == b[i + 1] && a[i + 1] == b[i] &&
		    strcmp(a + i + 2, b + i + 2) == 0);
	return strcmp(a + i + 1, b + i) == 0;
}

static void
check_event(const struct loader *ld, const char *ev,
    const struct cfgfile_pos *at)
{
	size_t n = strlen(ev);

	for (const char *const *s = standard_events; *s; s++)
		if (ascii_ieq(ev, *s))
			return;
	if (n == 0 || n > SCORE_NAME_MAX || !((ev[0] >= 'a' && ev[0] <= 'z') ||
	    (ev[0] >= 'A' && ev[0] <= 'Z')) ||
	    strspn(ev, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "0123456789_-.:") != n) {
		cfgfile_error(ld->errs, at, "event: '%s' is not an event type "
		    "(open, click, visit, hot_page, form, forward, reply, "
		    "unsubscribe, bounce, complaint, or a custom name of "
		    "letters, digits and _ - . :)", ev);
		return;
	}
	for (const char *const *s = standard_events; *s; s++)
		if (one_edit(ev, *s)) {
			cfgfile_error(ld->errs, at, "event: '%s': did you mean "
			    "'%s'? (a custom event name must differ from the "
			    "standard types by more than one letter)", ev, *s);
			return;
		}
}

/* Names must be unique within a kind: report the second. */
static int
check_unique(const struct loader *ld, const char *what, const char *name,
    struct cfgfile_node *section, struct cfgfile_node *first)
{
	for (struct cfgfile_node *n = first; n && n != section; n = n->next)
		if (n->kind == CFGFILE_SECTION && strcmp(n->key, what) == 0 &&
		    n->title && strcmp(n->title, name) == 0) {
			cfgfile_error(ld->errs, &section->pos, "%s \"%s\" is "
			    "defined twice (first at %s:%d)", what, name,
			    n->pos.file ? n->pos.file : "?", n->pos.line);
			return -1;
		}
	return 0;
}

/* Make room for item n of *pv (items of size bytes): at most
 * SCORE_MAX_RULES of each, so growing one by one is cheap enough. */
static int
grow(void *pv, size_t n, size_t size)
{
	void **p = pv;
	void *q;

	if (!(q = realloc(*p, (n + 1) * size)))
		return -1;
	*p = q;
	return 0;
}

/* The copy of file name f kept in the configuration. */
static const char *
keep_file(struct score_conf *c, const struct cfgfile_tree *tree,
    const char *f)
{
	for (size_t i = 0; f && i < tree->nfiles && i < c->nfiles; i++)
		if (tree->files[i] == f || strcmp(tree->files[i], f) == 0)
			return c->files[i];
	return NULL;
}

static int
section_title(const struct loader *ld, struct cfgfile_node *n,
    const char *example)
{
	if (!n->title) {
		cfgfile_error(ld->errs, &n->pos, "%s needs a name: %s \"NAME\" "
		    "{ %s }", n->key, n->key, example);
		return -1;
	}
	if (!valid_name(n->title)) {
		cfgfile_error(ld->errs, &n->pos, "%s \"%s\": a name has 1 to "
		    "%d bytes and no control characters", n->key, n->title,
		    SCORE_NAME_MAX);
		return -1;
	}
	return 0;
}

static void
load_rule(struct loader *ld, struct cfgfile_node *n, enum score_kind kind)
{
	struct score_conf *c = ld->c;
	struct rule **v = kind == SCORE_PROFILE ? &c->profile : &c->behavior;
	size_t *nv = kind == SCORE_PROFILE ? &c->nprofile : &c->nbehavior;
	const struct conf_key *keys = kind == SCORE_PROFILE ? profile_keys :
	    behavior_keys;
	struct rule *r;

	if (section_title(ld, n, kind == SCORE_PROFILE ? "when = \"...\"; "
	    "points = 10" : "event = click; points = 5") < 0 ||
	    check_unique(ld, n->key, n->title, n, ld->tree->root->child) < 0)
		return;
	if (*nv == SCORE_MAX_RULES) {
		cfgfile_error(ld->errs, &n->pos, "more than %d %s rules",
		    SCORE_MAX_RULES, n->key);
		return;
	}
	if (grow(v, *nv, sizeof(**v)) < 0) {
		cfgfile_error(ld->errs, &n->pos, "out of memory");
		return;
	}
	r = &(*v)[(*nv)++];
	memset(r, 0, sizeof(*r));
	r->kind = kind;
	conf_bind(keys, n, r, NULL, ld->errs);
	conf_check_unknown(n, ld->errs);
	if (!(r->name = strdup(n->title)))
		cfgfile_error(ld->errs, &n->pos, "out of memory");
	if (!child(n, "points"))
		cfgfile_error(ld->errs, &n->pos, "%s \"%s\": points is "
		    "required", n->key, n->title);
	if (kind == SCORE_PROFILE) {
		if (!*r->when_src)
			cfgfile_error(ld->errs, &n->pos, "profile \"%s\": when "
			    "is required (the condition on the lead)",
			    n->title);
	} else {
		struct cfgfile_node *e = child(n, "event");

		if (!e || r->events.n == 0)
			cfgfile_error(ld->errs, &n->pos, "behavior \"%s\": "
			    "event is required, e.g. event = click",
			    n->title);
		for (size_t i = 0; e && i < r->events.n; i++)
			check_event(ld, r->events.v[i],
			    e->kind == CFGFILE_LIST && i < e->nitems ?
			    &e->item_pos[i] : &e->vpos);
		r->once = r->repeat && strcmp(r->repeat, "once") == 0;
		if (r->once && child(n, "cap")) {
			struct cfgfile_pos p = value_at(n, "cap");

			cfgfile_error(ld->errs, &p, "cap: a rule with repeat = "
			    "once awards its points once per window; a cap "
			    "does not apply");
		}
		if (!r->once && !r->cap && child(n, "window")) {
			struct cfgfile_pos p = value_at(n, "window");

			cfgfile_error(ld->errs, &p, "window: applies to a cap "
			    "or to repeat = once; set one of them");
		}
		if (r->window_ms > 0 && r->window_ms < 1000) {
			struct cfgfile_pos p = value_at(n, "window");

			cfgfile_error(ld->errs, &p, "window: at least 1s");
		}
	}
	compile_when(ld, r, n);
}

static int
by_grade(const void *a, const void *b)
{
	const struct score_grade *x = a, *y = b;

	return x->min < y->min ? 1 : x->min > y->min ? -1 : 0;
}

static void
load_grade(struct loader *ld, struct cfgfile_node *n)
{
	struct score_conf *c = ld->c;
	struct limit_src s = { 0, NULL, NULL };

	if (section_title(ld, n, "min = 70") < 0 ||
	    check_unique(ld, n->key, n->title, n, ld->tree->root->child) < 0)
		return;
	conf_bind(grade_keys, n, &s, NULL, ld->errs);
	conf_check_unknown(n, ld->errs);
	conf_unbind(grade_keys, &s);
	if (!child(n, "min")) {
		cfgfile_error(ld->errs, &n->pos, "grade \"%s\": min is "
		    "required", n->title);
		return;
	}
	for (size_t i = 0; i < c->ngrades; i++)
		if (c->grades[i].min == (int)s.min) {
			struct cfgfile_pos p = value_at(n, "min");

			cfgfile_error(ld->errs, &p, "grade \"%s\": grade "
			    "\"%s\" has the same min (%ld)", n->title,
			    c->grades[i].name, s.min);
			return;
		}
	if (grow(&c->grades, c->ngrades, sizeof(*c->grades)) < 0) {
		cfgfile_error(ld->errs, &n->pos, "out of memory");
		return;
	}
	c->grades[c->ngrades].min = (int)s.min;
	if (!(c->grades[c->ngrades].name = strdup(n->title))) {
		cfgfile_error(ld->errs, &n->pos, "out of memory");
		return;
	}
	c->ngrades++;
}

static void
load_threshold(struct loader *ld, struct cfgfile_node *n)
{
	struct score_conf *c = ld->c;
	struct limit_src s = { 0, NULL, NULL };
	struct score_threshold *t;
	char *name = NULL, *team = NULL;

	if (section_title(ld, n, "min = 70; action = route; team = \"east\"") <
	    0 || check_unique(ld, n->key, n->title, n, ld->tree->root->child) <
	    0)
		return;
	conf_bind(threshold_keys, n, &s, NULL, ld->errs);
	conf_check_unknown(n, ld->errs);
	if (!child(n, "min"))
		cfgfile_error(ld->errs, &n->pos, "threshold \"%s\": min is "
		    "required", n->title);
	if (!child(n, "action"))
		cfgfile_error(ld->errs, &n->pos, "threshold \"%s\": action is "
		    "required (route or notify_owner)", n->title);
	if (s.action && strcmp(s.action, "route") == 0 && s.team && !*s.team)
		cfgfile_error(ld->errs, &n->pos, "threshold \"%s\": team is "
		    "required with action = route", n->title);
	if (s.action && strcmp(s.action, "route") != 0 && child(n, "team")) {
		struct cfgfile_pos p = value_at(n, "team");

		cfgfile_error(ld->errs, &p, "team: only for action = route");
	}
	if (grow(&c->thresholds, c->nthresholds, sizeof(*c->thresholds)) < 0 ||
	    !(name = strdup(n->title)) || !(team = strdup(s.team ? s.team :
	    ""))) {
		cfgfile_error(ld->errs, &n->pos, "out of memory");
		free(name);
		conf_unbind(threshold_keys, &s);
		return;
	}
	t = &c->thresholds[c->nthresholds++];
	t->name = name;
	t->team = team;
	t->min = (int)s.min;
	t->action = s.action && strcmp(s.action, "route") == 0 ? SCORE_ROUTE :
	    SCORE_NOTIFY_OWNER;
	t->pos = n->pos;
	t->pos.file = keep_file(c, ld->tree, n->pos.file);
	t->team_pos = value_at(n, "team");
	t->team_pos.file = keep_file(c, ld->tree, t->team_pos.file);
	conf_unbind(threshold_keys, &s);
}

static void
load_decay(struct loader *ld, struct cfgfile_node *n, int *seen)
{
	struct decay_src s = { 0, NULL };

	if (n->title)
		cfgfile_error(ld->errs, &n->pos, "decay takes no name: "
		    "decay { half_life = 30d }");
	if (*seen) {
		cfgfile_error(ld->errs, &n->pos, "decay is set twice");
		return;
	}
	*seen = 1;
	conf_bind(decay_keys, n, &s, NULL, ld->errs);
	conf_check_unknown(n, ld->errs);
	ld->c->decay = 1;
	ld->c->half_life_ms = s.half_life_ms;
	ld->c->decay_all = s.applies_to && strcmp(s.applies_to, "all") == 0;
	conf_unbind(decay_keys, &s);
}

/* Thresholds by ascending min, keeping file order for equal mins. */
static void
sort_thresholds(struct score_conf *c)
{
	for (size_t i = 1; i < c->nthresholds; i++) {
		struct score_threshold t = c->thresholds[i];
		size_t j = i;

		for (; j > 0 && c->thresholds[j - 1].min > t.min; j--)
			c->thresholds[j] = c->thresholds[j - 1];
		c->thresholds[j] = t;
	}
}

static struct score_conf *
load(struct loader *ld, const char *path)
{
	struct cfgfile_tree tree;
	struct score_conf *c;
	size_t before = ld->errs->n;
	int decay_seen = 0;

	memset(&tree, 0, sizeof(tree));
	if (!(c = calloc(1, sizeof(*c)))) {
		struct cfgfile_pos p = { path, 0, 0 };

		cfgfile_error(ld->errs, &p, "out of memory");
		return NULL;
	}
	ld->c = c;
	ld->tree = &tree;
	if (ld->text)
		cfgfile_parse_string(path, ld->text, ld->len, &tree, ld->errs);
	else
		cfgfile_parse(path, &tree, ld->errs);
	if (tree.nfiles && (c->files = calloc(tree.nfiles,
	    sizeof(*c->files))) != NULL) {
		for (size_t i = 0; i < tree.nfiles; i++)
			if ((c->files[i] = strdup(tree.files[i])) != NULL)
				c->nfiles = i + 1;
			else
				break;
	}
	for (struct cfgfile_node *n = tree.root ? tree.root->child : NULL; n;
	    n = n->next) {
		if (n->kind != CFGFILE_SECTION)
			continue;       /* reported as unknown keys below */
		if (strcmp(n->key, "profile") == 0) {
			n->used = 1;
			load_rule(ld, n, SCORE_PROFILE);
		} else if (strcmp(n->key, "behavior") == 0) {
			n->used = 1;
			load_rule(ld, n, SCORE_BEHAVIOR);
		} else if (strcmp(n->key, "grade") == 0) {
			n->used = 1;
			load_grade(ld, n);
		} else if (strcmp(n->key, "threshold") == 0) {
			n->used = 1;
			load_threshold(ld, n);
		} else if (strcmp(n->key, "decay") == 0) {
			n->used = 1;
			load_decay(ld, n, &decay_seen);
		}
	}
	if (tree.root)
		conf_check_unknown(tree.root, ld->errs);
	cfgfile_tree_free(&tree);
	if (ld->errs->n > before) {
		score_free(c);
		return NULL;
	}
	if (c->ngrades > 1)
		qsort(c->grades, c->ngrades, sizeof(*c->grades), by_grade);
	sort_thresholds(c);
	return c;
}

struct score_conf *
score_load(const char *path, struct cfgfile_errors *errs)
{
	struct loader ld;

	memset(&ld, 0, sizeof(ld));
	ld.errs = errs;
	return load(&ld, path);
}

struct score_conf *
score_load_string(const char *name, const char *text, size_t len,
    struct cfgfile_errors *errs)
{
	struct loader ld;

	memset(&ld, 0, sizeof(ld));
	ld.errs = errs;
	ld.text = text;
	ld.len = len;
	return load(&ld, name);
}

static void
rules_free(struct rule *v, size_t n, const struct conf_key *keys)
{
	for (size_t i = 0; i < n; i++) {
		conf_unbind(keys, &v[i]);
		cond_free(v[i].when);
		free(v[i].name);
	}
	free(v);
}

void
score_free(struct score_conf *c)
{
	if (!c)
		return;
	rules_free(c->profile, c->nprofile, profile_keys);
	rules_free(c->behavior, c->nbehavior, behavior_keys);
	for (size_t i = 0; i < c->ngrades; i++)
		free((char *)c->grades[i].name);
	free(c->grades);
	for (size_t i = 0; i < c->nthresholds; i++) {
		free((char *)c->thresholds[i].name);
		free((char *)c->thresholds[i].team);
	}
	free(c->thresholds);
	for (size_t i = 0; i < c->nfiles; i++)
		free(c->files[i]);
	free(c->files);
	free(c);
}

/* ---- scoring ------------------------------------------------------------- */

int
score_profile(const struct score_conf *c, const json_t *lead,
    const struct cond_env *env, struct score_reason *out, size_t max)
{
	size_t nout = 0;
	long sum = 0;

	for (size_t i = 0; c && i < c->nprofile; i++) {
		const struct rule *r = &c->profile[i];

		if (!r->when || cond_eval(r->when, lead, env) != 1)
			continue;
		sum += r->points;
		if (nout < max) {
			out[nout].rule = r->name;
			out[nout].points = (int)r->points;
			nout++;
		}
	}
	if (nout < max) {
		out[nout].rule = NULL;
		out[nout].points = 0;
	}
	return (int)sum;
}

/* Is type one of the events r listens to? */
static int
listens(const struct rule *r, const char *type)
{
	for (size_t i = 0; i < r->events.n; i++)
		if (ascii_ieq(r->events.v[i], type))
			return 1;
	return 0;
}

int
score_wants_event(const struct score_conf *c, const char *type)
{
	for (size_t i = 0; c && type && i < c->nbehavior; i++)
		if (listens(&c->behavior[i], type))
			return 1;
	return 0;
}

/* The lead with the event's scalar members as event_NAME. New reference. */
static json_t *
eval_object(const json_t *lead, const json_t *event)
{
	json_t *o, *v;
	const char *k;
	size_t n = 0;

	o = json_is_object(lead) ? json_copy((json_t *)lead) : json_object();
	if (!o)
		return NULL;
	json_object_foreach((json_t *)event, k, v) {
		char name[EVENT_KEY_MAX + 8];
		size_t kl = strlen(k), i;

		if (n == EVENT_KEYS_MAX)
			break;
		if (kl == 0 || kl > EVENT_KEY_MAX || !(json_is_string(v) ||
		    json_is_number(v) || json_is_boolean(v)))
			continue;
		for (i = 0; i < kl && ident_char((unsigned char)k[i]); i++)
			;
		if (i < kl)
			continue;
		snprintf(name, sizeof(name), "event_%s", k);
		if (json_object_set(o, name, v) < 0) {
			json_decref(o);
			return NULL;
		}
		n++;
	}
	return o;
}

/* Append s to out (size n, holding len bytes), control characters as
 * spaces, cut at a UTF-8 character boundary. Returns the new length. */
static size_t
append_clean(char *out, size_t n, size_t len, const char *s)
{
	size_t i, start = len;

	for (i = 0; s[i] && len + 1 < n; i++)
		out[len++] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? ' ' :
		    s[i];
	if (s[i] && len > start) {
		/* cut: drop a partial UTF-8 sequence at the end */
		size_t back = len;

		while (back > start && ((unsigned char)out[back - 1] & 0xc0) ==
		    0x80)
			back--;
		if (back > start && (unsigned char)out[back - 1] >= 0xc0) {
			unsigned char lead = (unsigned char)out[back - 1];
			size_t need = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : 2;

			if (len - (back - 1) < need)
				len = back - 1;
		}
	}
	out[len] = '\0';
	return len;
}

/* "7d", "12h", "90m", "30s" */
static void
fmt_duration(long ms, char *out, size_t n)
{
	long s = ms / 1000;

	if (s % 86400 == 0)
		snprintf(out, n, "%ldd", s / 86400);
	else if (s % 3600 == 0)
		snprintf(out, n, "%ldh", s / 3600);
	else if (s % 60 == 0)
		snprintf(out, n, "%ldm", s / 60);
	else
		snprintf(out, n, "%lds", s);
}

static void
make_reason(char *out, size_t n, const struct rule *r, const char *type,
    const json_t *event, int capped)
{
	static const char *const details[] = { "url", "page", "tag", "form",
		"campaign" };
	const char *detail = NULL;
	char tail[SCORE_NAME_MAX * 2 + 64], win[32];
	size_t len = 0, room;

	for (size_t i = 0; !detail && i < sizeof(details) / sizeof(*details);
	    i++) {
		const char *s = json_string_value(json_object_get(event,
		    details[i]));

		if (s && *s)
			detail = s;
	}
	if (capped) {
		if (r->window_ms)
			fmt_duration(r->window_ms, win, sizeof(win));
		snprintf(tail, sizeof(tail), " (behavior \"%s\", cap %ld%s%s "
		    "reached)", r->name, r->cap, r->window_ms ? " per " : "",
		    r->window_ms ? win : "");
	} else {
		snprintf(tail, sizeof(tail), " (behavior \"%s\")", r->name);
	}
	/* the tail always fits: cut the type and detail instead */
	room = n > strlen(tail) ? n - strlen(tail) : 1;
	len = append_clean(out, room, 0, type);
	if (detail) {
		len = append_clean(out, room, len, " ");
		len = append_clean(out, room, len, detail);
	}
	append_clean(out, n, len, tail);
}

int
score_event(const struct score_conf *c, const json_t *lead,
    const json_t *event, const struct score_earned *history, size_t nhistory,
    const struct cond_env *env, struct score_change *out, size_t max)
{
	struct cond_env now_env;
	const char *type;
	json_t *obj = NULL;
	size_t nout = 0;

	if (!json_is_object(event) || !(type = json_string_value(
	    json_object_get(event, "type"))) || !*type)
		return -1;
	if (!c || json_is_true(json_object_get(event, "bot")))
		return 0;
	if (!env) {
		now_env.now = time(NULL);
		now_env.tz = NULL;
		env = &now_env;
	}
	for (size_t i = 0; i < c->nbehavior && nout < max; i++) {
		const struct rule *r = &c->behavior[i];
		long sum = 0, award = r->points;
		time_t since;
		int count = 0, capped = 0;

		if (!listens(r, type) || r->points == 0)
			continue;
		if (r->when) {
			if (!obj && !(obj = eval_object(lead, event)))
				break;
			if (cond_eval(r->when, obj, env) != 1)
				continue;
		}
		since = env->now - (time_t)((r->window_ms + 999) / 1000);
		for (size_t h = 0; h < nhistory; h++) {
			const struct score_earned *e = &history[h];

			if (e->kind != SCORE_BEHAVIOR || !e->rule ||
			    strcmp(e->rule, r->name) != 0 ||
			    (r->window_ms && e->earned_at <= since))
				continue;
			count++;
			sum += e->points < 0 ? -(long)e->points : e->points;
		}
		if (r->once && count)
			continue;
		if (r->cap) {
			long room = r->cap - sum;

			if (room <= 0)
				continue;
			if ((award < 0 ? -award : award) > room) {
				award = award < 0 ? -room : room;
				capped = 1;
			}
		}
		out[nout].rule = r->name;
		out[nout].points = (int)award;
		out[nout].rule_points = (int)r->points;
		out[nout].capped = capped;
		make_reason(out[nout].reason, sizeof(out[nout].reason), r, type,
		    event, capped);
		nout++;
	}
	json_decref(obj);
	return (int)nout;
}

/* 0.5 ^ x for x >= 0, without libm: exact at whole x. */
static double
half_pow(double x)
{
	double y, term = 1, s = 1;
	unsigned k;

	if (!(x > 0))
		return 1;               /* also NaN */
	if (x >= 1100)
		return 0;
	k = (unsigned)x;
	y = (x - k) * 0.693147180559945309417;  /* ln 2 */
	for (int i = 1; i < 25 && y > 0; i++) {
		term *= -y / i;
		s += term;
	}
	for (; k; k--)
		s *= 0.5;
	return s;
}

double
score_decayed(const struct score_conf *c, const struct score_earned *items,
    size_t n, time_t now)
{
	double sum = 0, hl = c && c->decay ? (double)c->half_life_ms / 1000 : 0;

	for (size_t i = 0; i < n; i++) {
		const struct score_earned *e = &items[i];
		int decays = hl > 0 && (e->kind == SCORE_BEHAVIOR ||
		    (e->kind == SCORE_PROFILE && c->decay_all));

		if (decays && now > e->earned_at)
			sum += e->points * half_pow((double)(now -
			    e->earned_at) / hl);
		else
			sum += e->points;
	}
	return sum;
}

int
score_round(double v)
{
	if (!(v == v))
		return 0;
	if (v >= 1e9)
		return 1000000000;
	if (v <= -1e9)
		return -1000000000;
	return v >= 0 ? (int)(v + 0.5) : -(int)(-v + 0.5);
}

const char *
score_grade(const struct score_conf *c, int score)
{
	for (size_t i = 0; c && i < c->ngrades; i++)
		if (score >= c->grades[i].min)
			return c->grades[i].name;
	return NULL;
}

int
score_crossed(const struct score_conf *c, int before, int after,
    const struct score_threshold **out, size_t max)
{
	size_t n = 0;

	for (size_t i = 0; c && i < c->nthresholds && n < max; i++)
		if (before < c->thresholds[i].min &&
		    c->thresholds[i].min <= after)
			out[n++] = &c->thresholds[i];
	return (int)n;
}

const struct score_threshold *
score_thresholds(const struct score_conf *c, size_t *n)
{
	*n = c ? c->nthresholds : 0;
	return c ? c->thresholds : NULL;
}

const struct score_grade *
score_grades(const struct score_conf *c, size_t *n)
{
	*n = c ? c->ngrades : 0;
	return c ? c->grades : NULL;
}
