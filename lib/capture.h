/*
 * capture - the pure part of capturing leads and behavior events: the
 * checks of an event sent to the API, the score of a new lead and the
 * rescoring of a known one (the score history rows to store, the new
 * score, the thresholds crossed).
 *
 * The arithmetic is score.c's; this module decides what to store. A
 * lead's score history holds one row per change: a profile row when the
 * total of the profile rules that hold changes (points: the difference,
 * reason: the rules that hold now), a behavior row per award of a
 * behavior rule, manual rows made by hand. The profile total stored so
 * far is the sum of the profile rows, so a rescore compares the rules
 * that hold now with that sum.
 *
 * It does no I/O, no logging and knows nothing of the database: the
 * daemon (daemon/leads.c) reads the lead and its history, calls this and
 * writes what comes back.
 */
#ifndef LEADCAST_CAPTURE_H
#define LEADCAST_CAPTURE_H

#include <stddef.h>
#include <time.h>

#include <jansson.h>

struct score_conf;

#define CAPTURE_TYPE_MAX        64      /* bytes of an event type */
#define CAPTURE_DATA_MAX        32      /* data members of an event */
#define CAPTURE_STRING_MAX      1024    /* bytes of a data string */
#define CAPTURE_KEY_MAX         64      /* bytes of a data member's name */

/* 1 if s is an event type: 1 to CAPTURE_TYPE_MAX letters, digits, _ - . */
int capture_type_valid(const char *s);

/*
 * Check an event from outside: an object with "type" (see
 * capture_type_valid) and data members, at most CAPTURE_DATA_MAX, each
 * named with letters, digits, _ and - (at most CAPTURE_KEY_MAX bytes) and
 * holding a scalar: a string (at most CAPTURE_STRING_MAX bytes, no NUL),
 * a number, true, false or null; "bot" must be true or false. Members
 * named in skip (a NULL-terminated list, may be NULL), such as the keys
 * that identify the lead, are left out. Returns a new object {"type",
 * ...data} (caller owns), or NULL with field and msg filled.
 */
json_t *capture_event_clean(const json_t *in, const char *const *skip,
    char *field, size_t fn, char *msg, size_t mn);

/* What scoring a lead decided. */
struct capture_score {
	int before;             /* the score stored before */
	int after;              /* the score to store */
	json_t *rows;           /* new history rows: [{kind, rule, points,
	                         * reason}], kind "profile" or "behavior" */
	json_t *changes;        /* the behavior awards: [{rule, points,
	                         * reason}] */
	int crossed;            /* thresholds crossed upward */
	const char *route_team; /* the team of the highest route threshold
	                         * crossed, else NULL (the configuration's) */
};

/*
 * Score a new lead (a cleaned lead, not stored yet) at now: its profile
 * points and, when event is not NULL, the event's behavior points (no
 * history). before is 0. Profile conditions see created_at = now when the
 * lead has none. c NULL scores 0. Returns 0, or -1 (out zeroed) when
 * event is not a valid event or memory ran out. Free out with
 * capture_score_free().
 */
int capture_score_new(const struct score_conf *c, const json_t *lead,
    const json_t *event, time_t now, struct capture_score *out);

/*
 * Rescore a stored lead (its row as JSON, "score" the score stored) from
 * its score history (a JSON array of {kind, rule, points, earned_at}:
 * earned_at in seconds since the epoch; other items are skipped) at now:
 * a profile row for the difference when the profile total changed, the
 * event's awards (event may be NULL), and the score after decay over the
 * whole history with the new rows. Returns 0 or -1 as capture_score_new.
 */
int capture_rescore(const struct score_conf *c, const json_t *lead,
    const json_t *history, const json_t *event, time_t now,
    struct capture_score *out);

void capture_score_free(struct capture_score *s);

#endif
