/*
 * quiet - quiet hours: a daily window of local time ("21:00-08:00") in
 * which nothing is sent to a person, and when the window ends for a
 * person in a given time zone. Shared by SMS campaigns and drip steps:
 * a message due in quiet hours is deferred to the window's end, never
 * dropped.
 *
 * It does no I/O except what cond_localtime() does (reading the system's
 * tz database, cached), no allocation and no logging; thread-safe.
 */
#ifndef LEADCAST_QUIET_H
#define LEADCAST_QUIET_H

#include <stddef.h>
#include <time.h>

struct quiet {
	int from, to;           /* minutes after local midnight; from == to:
	                         * no quiet hours */
};

/*
 * Parse "HH:MM-HH:MM" (a window that may wrap midnight, such as
 * "21:00-08:00"), or "" for none, into *q. 0, or -1 with the reason in
 * err (size n).
 */
int quiet_parse(const char *s, struct quiet *q, char *err, size_t n);

/* 1 if q is a window (not "none"). */
int quiet_active(const struct quiet *q);

/*
 * Is now inside q's window in zone tz (NULL or "" = UTC)? 0 if not; 1 if
 * so, with *until set to the first moment after the window (the local
 * wall-clock end, read through the zone's offset then, so a change of
 * daylight saving time inside the window is taken into account); -1 if
 * tz is not a zone (then nothing is said about now).
 */
int quiet_check(const struct quiet *q, const char *tz, time_t now,
    time_t *until);

#endif
