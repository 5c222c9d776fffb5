/*
 * score - lead scoring: the rules of conf/scoring.conf and the arithmetic
 * of points, decay, grades and thresholds.
 *
 *     profile "director" { when = "title matches '*director*'"; points = 15 }
 *     behavior "pricing-click" {
 *             event = click; when = "event.url contains \"/pricing\""
 *             points = 10; repeat = always; cap = 30; window = 7d
 *     }
 *     decay { half_life = 30d; applies_to = behavior }
 *     grade "hot" { min = 70 }
 *     threshold "sales-ready" { min = 70; action = route; team = "east" }
 *
 * Semantics (conf/scoring.conf documents every key):
 *   - A lead's score is its profile points plus its behavior points after
 *     decay, rounded to the nearest integer (halves away from zero). There
 *     is no floor or ceiling: rules may give negative points.
 *   - Profile points: the sum of the points of every profile rule whose
 *     condition holds for the lead now. They are recomputed whenever the
 *     lead changes; they are not earned once and kept.
 *   - Behavior points are earned by events. Each behavior rule whose event
 *     type matches and whose optional condition holds (over the lead and
 *     the event, see score_event) awards its points, unless: with repeat =
 *     once, the rule already awarded points within the window (ever when
 *     window = 0); with a cap, the points it awarded within the window
 *     (ever when window = 0) already reach the cap, in which case only the
 *     room left is awarded. Caps count absolute points as earned, before
 *     decay. Events flagged as bots ("bot": true) score nothing.
 *   - Decay: each behavior point halves every half_life after it was
 *     earned (0.5 ^ (age / half_life)); with applies_to = all, profile
 *     points decay too, from the time each profile rule began to hold.
 *     Without a decay section nothing decays. Manual adjustments never do.
 *   - Grade: the grade with the highest min not above the score; none (NULL)
 *     below the lowest.
 *   - Threshold: fires when the score crosses its min upward: before < min
 *     <= after. Staying above does not fire again; falling below (decay)
 *     and rising again does.
 *
 * What the daemon stores: one score history row per change, (lead, kind:
 * profile|behavior|manual, rule, points, reason, earned_at). Behavior rows
 * are the struct score_earned items given back to score_event (for once
 * and caps) and score_decayed. Profile rows record changes of the profile
 * total (the new reasons, the delta in points). Rules are matched to
 * history by name: renaming a behavior rule starts its once/cap afresh.
 * The score kept on the lead is a cache of the formula above at the time
 * of the last change; a reader recomputes it at its own time when decay
 * matters (scores only go down with time between events).
 *
 * Thread safety: a loaded struct score_conf is immutable; every function
 * may be called on it from several threads at once. Nothing here does I/O
 * except score_load reading the configuration (and its includes), nor
 * logging, nor database access.
 */
#ifndef LEADCAST_SCORE_H
#define LEADCAST_SCORE_H

#include <stddef.h>
#include <time.h>

#include <jansson.h>

#include "cfgfile.h"

struct cond_env;
struct score_conf;              /* a loaded scoring.conf, immutable */

#define SCORE_NAME_MAX          64      /* bytes of a rule, grade... name */
#define SCORE_REASON_MAX        256     /* bytes of a reason, with the NUL */
#define SCORE_MAX_RULES         1000    /* of each kind */
#define SCORE_MAX_POINTS        1000    /* |points| of one rule */

enum score_kind {
	SCORE_PROFILE,          /* from a profile rule */
	SCORE_BEHAVIOR,         /* from a behavior rule and an event */
	SCORE_MANUAL,           /* an adjustment by hand: never decays */
};

enum score_action {
	SCORE_ROUTE,            /* route (or re-route) the lead to team */
	SCORE_NOTIFY_OWNER,     /* tell the lead's owner */
};

/* A threshold of the configuration. Strings and pos.file live as long as
 * the configuration. */
struct score_threshold {
	const char *name;
	int min;
	enum score_action action;
	const char *team;               /* SCORE_ROUTE: the team; else "" */
	struct cfgfile_pos pos;         /* of the section */
	struct cfgfile_pos team_pos;    /* of the team value (or the section) */
};

struct score_grade {
	const char *name;
	int min;
};

/* A profile rule that holds for a lead. */
struct score_reason {
	const char *rule;               /* its name, in the configuration */
	int points;
};

/* Points earned before: a behavior row of the lead's score history. */
struct score_earned {
	const char *rule;               /* the rule's name as stored */
	enum score_kind kind;
	int points;                     /* as earned, before decay */
	time_t earned_at;
};

/* Points a behavior rule awards for an event. */
struct score_change {
	const char *rule;               /* its name, in the configuration */
	int points;                     /* awarded now, never 0 */
	int rule_points;                /* the rule's points (before a cap) */
	int capped;                     /* 1 if the cap cut the award */
	char reason[SCORE_REASON_MAX];  /* for the history row, valid UTF-8:
					 * click https://acme.example/pricing
					 * (behavior "pricing-click") */
};

/*
 * Load path and check everything: syntax, unknown keys, required keys,
 * bounds, duplicate names, conditions (an error inside a quoted condition
 * points at the offending character: file:line:col), event names. Returns
 * a new configuration, freed with score_free(), or NULL with every problem
 * appended to errs.
 */
struct score_conf *score_load(const char *path, struct cfgfile_errors *errs);
/* The same from memory; name is the file name used in positions. */
struct score_conf *score_load_string(const char *name, const char *text,
    size_t len, struct cfgfile_errors *errs);
void score_free(struct score_conf *c);

/*
 * The profile points of lead (a JSON object as cond_eval takes it) under
 * env (NULL: now, UTC). Stores the matching rules in out (at most max, in
 * file order); when fewer than max, the entry after the last has rule ==
 * NULL. A condition that cannot be evaluated (unknown time zone in env)
 * does not match. c NULL scores 0.
 */
int score_profile(const struct score_conf *c, const json_t *lead,
    const struct cond_env *env, struct score_reason *out, size_t max);

/*
 * The points that the behavior rules award for event, a JSON object with
 * at least "type" (open, click, visit, hot_page, form, forward, reply,
 * unsubscribe, bounce, complaint or a custom name) and whatever else the
 * event carries, e.g. "tag", "url", "page", "campaign", "form", "channel";
 * "bot": true makes it score nothing. Conditions see the lead's fields
 * and the event's scalar members as event.NAME (written event_NAME in the
 * JSON they are evaluated on). history holds the lead's earlier behavior
 * rows (other kinds are ignored; the order does not matter). env->now is
 * when the event happened (the earned_at of the awards) and env->tz the
 * zone for hour/weekday (env NULL: now, UTC).
 *
 * Stores one change per rule that awards points, in file order, at most
 * max, and returns their number: 0 when none; -1 when event is not an
 * object with a non-empty string "type".
 */
int score_event(const struct score_conf *c, const json_t *lead,
    const json_t *event, const struct score_earned *history, size_t nhistory,
    const struct cond_env *env, struct score_change *out, size_t max);

/*
 * The sum of items' points at time now after decay (see above): behavior
 * items decay, profile items too when applies_to = all, manual items
 * never; items earned after now count in full. c NULL: no decay.
 */
double score_decayed(const struct score_conf *c,
    const struct score_earned *items, size_t n, time_t now);

/* v rounded to the nearest integer, halves away from zero, clamped to
 * +-1000000000. */
int score_round(double v);

/* The name of the grade of score, or NULL below every grade. */
const char *score_grade(const struct score_conf *c, int score);

/*
 * The thresholds crossed upward from before to after (before < min <=
 * after), in ascending order of min (file order for equal mins), at most
 * max stored in out. Returns how many were stored.
 */
int score_crossed(const struct score_conf *c, int before, int after,
    const struct score_threshold **out, size_t max);

/* Every threshold (ascending min) and grade (descending min); *n set to
 * their number. For the router to check teams, and for reports. */
const struct score_threshold *score_thresholds(const struct score_conf *c,
    size_t *n);
const struct score_grade *score_grades(const struct score_conf *c, size_t *n);

/* 1 if some behavior rule listens to events of this type, else 0. */
int score_wants_event(const struct score_conf *c, const char *type);

#endif
