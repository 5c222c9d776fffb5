/*
 * drip - drip (nurture) definitions, conf/drips/NAME.conf, and the pure
 * part of running them: which trigger an event fires, which goal ends an
 * enrollment, and what the steps of an enrollment do from its current
 * step until it has to wait (drip_run).
 *
 * A definition is parsed from its file's text (so that an older version
 * kept in the database parses the same way) and checked: unknown
 * templates, notifications and steps, unreachable steps, loops without a
 * wait, waits that never end, bad conditions; every error names
 * file:line:col. Definitions are immutable once loaded.
 *
 * It does no I/O besides reading the file (drip_load_dir), knows nothing
 * of the database or the event loop: daemon/drip.c claims enrollments,
 * calls drip_run and writes what it decided.
 */
#ifndef LEADCAST_DRIP_H
#define LEADCAST_DRIP_H

#include <stddef.h>
#include <time.h>

#include <jansson.h>

#include "cfgfile.h"
#include "quiet.h"

struct cond;
struct tmpl;
struct tmpl_set;
struct campaign_def;
struct campaign_set;

#define DRIP_NAME_MAX   64
#define DRIP_MAX_STEPS  200
#define DRIP_RUN_MAX    64      /* steps run in one go (no wait between) */

enum drip_kind { DRIP_EMAIL, DRIP_SMS, DRIP_WAIT, DRIP_BRANCH, DRIP_SET,
	DRIP_NOTIFY, DRIP_ROUTE, DRIP_EXIT };

/* A daily time window on some weekdays, in minutes after midnight;
 * start > end wraps past midnight. */
struct drip_window {
	unsigned days;          /* bit 0 = monday .. bit 6 = sunday */
	int start, end;
};

struct drip_step {
	char *name;
	enum drip_kind kind;
	struct cfgfile_pos pos;         /* file points into the def */
	int next;                       /* index, -1 = the end */
	/* email: a campaign definition (owned) named drip/DRIP/VERSION/STEP
	 * once the version is known (drip_set_version) */
	struct campaign_def *email;
	/* sms */
	char *sms_name;                 /* template, e.g. "sms/welcome" */
	const struct tmpl *sms;         /* in the template set */
	/* wait */
	long wait_s;
	int has_until;
	struct drip_window until;
	/* branch */
	struct cond *cond;              /* owned */
	int then_i, else_i;
	/* set */
	char *field;                    /* "plan" = fields.plan, or NULL */
	json_t *value;                  /* owned */
	char *tag;                      /* or NULL */
	long score;                     /* points added (may be < 0) */
	/* notify */
	char *notification;
	/* route */
	char *team;
};

enum drip_trig { DRIP_T_CAPTURED, DRIP_T_LIST, DRIP_T_SCORE, DRIP_T_TAG,
	DRIP_T_FORM, DRIP_T_ROUTED, DRIP_T_STATUS, DRIP_T_API };

struct drip_trigger {
	enum drip_trig type;
	char *arg;                      /* list, tag, form, team, status to */
	char *from;                     /* status: from (or NULL) */
	long above;                     /* score: crosses this */
	struct cond *cond;              /* `if`, owned, or NULL */
};

/* goals: why an enrollment ends early */
#define DRIP_G_REPLIED       0x01
#define DRIP_G_CLICKED       0x02
#define DRIP_G_QUALIFIED     0x04
#define DRIP_G_WON           0x08
#define DRIP_G_ACCEPTED      0x10
#define DRIP_G_UNSUBSCRIBED  0x20   /* always */
#define DRIP_G_HARD_BOUNCE   0x40   /* always */
#define DRIP_G_CONVERTED     0x1f   /* the goals that count as converted */

enum drip_reentry { DRIP_RE_NEVER, DRIP_RE_ALWAYS, DRIP_RE_AFTER };

struct drip_def {
	char *name;
	char *file;
	char *source;                   /* the file's text, as versioned */
	char hash[17];                  /* of source, hex */
	int version;                    /* set by drip_set_version, 0 before */
	struct drip_trigger *triggers;
	size_t ntriggers;
	struct drip_step *steps;
	size_t nsteps;
	unsigned goals;
	char *goal_link;                /* clicked: a glob over the URL, or NULL */
	enum drip_reentry reentry;
	long reentry_after_s;
	int has_quiet;
	struct quiet quiet;             /* sends wait until it ends */
	char *time_zone;                /* when the lead has none; NULL = UTC */
	char *description;
};

struct drip_set {
	struct drip_def **v;
	size_t n;
};

/*
 * Load every NAME.conf in dir (missing: an empty set). Templates and
 * notifications are looked up to check references (notifications may be
 * NULL: then notify steps are errors). Errors go to errs; returns their
 * number. Free the set with drip_set_free.
 */
int drip_load_dir(const char *dir, const struct tmpl_set *templates,
    const struct campaign_set *notifications, struct drip_set *out,
    struct cfgfile_errors *errs);
/* Parse one definition from text (a file's content, or a version kept in
 * the database). NULL on errors (in errs) or ENOMEM. Free with
 * drip_def_free. */
struct drip_def *drip_parse(const char *name, const char *file,
    const char *text, size_t len, const struct tmpl_set *templates,
    const struct campaign_set *notifications, struct cfgfile_errors *errs);
void drip_def_free(struct drip_def *d);
void drip_set_free(struct drip_set *s);
const struct drip_def *drip_find(const struct drip_set *s, const char *name);
/* Give def its version: names its email steps' campaigns
 * "drip/NAME/VERSION/STEP". Call before sharing def with other threads. */
void drip_set_version(struct drip_def *d, int version);
/* The step called name, or -1. */
int drip_step_index(const struct drip_def *d, const char *name);
const char *drip_kind_name(enum drip_kind k);

/*
 * Triggers. An event (type and data as in the events table; "subscribed"
 * {"list"}, "score" {"from","to"}, "tagged" {"tag"}, ...) on lead: the
 * index of the first trigger of d it fires, or -1. env: now and the
 * time zone, for conditions.
 */
int drip_trigger_match(const struct drip_def *d, const char *type,
    const json_t *data, const json_t *lead, time_t now);
/* The goal (DRIP_G_*) an event reaches for an enrollment in d, or 0. A
 * click counts when data's "class" is absent or "human". */
unsigned drip_goal_match(const struct drip_def *d, const char *type,
    const json_t *data);
const char *drip_goal_name(unsigned g);

/*
 * Window arithmetic in zone tz (NULL = UTC): the first time >= t inside
 * w. -1 if w is empty.
 */
time_t drip_window_next(const struct drip_window *w, const char *tz, time_t t);
int drip_in_window(const struct drip_window *w, const char *tz, time_t t);
/* Parse "mon-fri 09:00-17:00", "sat,sun 10:00-12:00", "21:00-08:00" (all
 * days; the times as lib/quiet reads them). 0, or -1 with a message in
 * err. */
int drip_window_parse(const char *s, struct drip_window *w, char *err,
    size_t n);

/* What running an enrollment decided: actions in order, each one step. */
struct drip_action {
	int step;                       /* index */
	int seq;                        /* the enrollment's step counter */
};

struct drip_result {
	struct drip_action acts[DRIP_RUN_MAX + 1];
	int nacts;
	int next;                       /* the step to run next, -1 = done */
	time_t next_at;                 /* when (next >= 0) */
	int exited;                     /* an exit step ended it */
	int tz_error;                   /* a condition could not be evaluated */
};

/*
 * Run enrollment from step `from` (its counter at seq) at time now: steps
 * that take no time follow each other; a wait, or a send falling in quiet
 * hours, stops the run with next/next_at. lead is the lead's JSON with
 * "opened", "clicked" and "sent" arrays of step names added; set steps
 * change it (later branches see their effect). tz: the lead's time zone
 * (NULL: the definition's, else UTC). Pure.
 */
void drip_run(const struct drip_def *d, int from, int seq, json_t *lead,
    const char *tz, time_t now, struct drip_result *out);

#endif
