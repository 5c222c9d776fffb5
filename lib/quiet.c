/*
 * quiet - quiet hours in a time zone. See quiet.h.
 */
#include "quiet.h"
#include "cond.h"

#include <stdio.h>
#include <string.h>

static int
hhmm(const char *s, int *min)
{
	int h, m, used = 0;

	if (strlen(s) != 5 || sscanf(s, "%2d:%2d%n", &h, &m, &used) != 2 ||
	    used != 5 ||
	    h < 0 || h > 24 || m < 0 || m > 59 || (h == 24 && m != 0))
		return -1;
	*min = h * 60 + m;
	return 0;
}

int
quiet_parse(const char *s, struct quiet *q, char *err, size_t n)
{
	char a[10], b[10];
	const char *dash;

	q->from = q->to = 0;
	while (*s == ' ')
		s++;
	if (!*s)
		return 0;
	dash = strchr(s, '-');
	if (!dash || dash - s > 7 || strlen(dash + 1) > 7)
		goto bad;
	snprintf(a, sizeof(a), "%.*s", (int)(dash - s), s);
	snprintf(b, sizeof(b), "%s", dash + 1);
	/* " 21:00 - 08:00 " */
	for (char *p = a + strlen(a); p > a && p[-1] == ' '; )
		*--p = '\0';
	{
		char *p = b;

		while (*p == ' ')
			p++;
		memmove(b, p, strlen(p) + 1);
		for (p = b + strlen(b); p > b && p[-1] == ' '; )
			*--p = '\0';
	}
	if (hhmm(a, &q->from) < 0 || hhmm(b, &q->to) < 0)
		goto bad;
	if (q->from == q->to) {
		snprintf(err, n, "quiet hours from %s to %s are empty (write \"\" "
		    "for none)", a, b);
		return -1;
	}
	return 0;
bad:
	q->from = q->to = 0;
	snprintf(err, n, "expected \"HH:MM-HH:MM\" (local time, e.g. "
	    "\"21:00-08:00\"), or \"\" for none");
	return -1;
}

int
quiet_active(const struct quiet *q)
{
	return q->from != q->to;
}

int
quiet_check(const struct quiet *q, const char *tz, time_t now, time_t *until)
{
	struct tm tm;
	long off, off_end;
	int min, left;

	if (!quiet_active(q))
		return 0;
	if (tz && !*tz)
		tz = NULL;
	if (cond_localtime(tz, now, &tm, &off) < 0)
		return -1;
	min = tm.tm_hour * 60 + tm.tm_min;
	if (q->from < q->to ? !(min >= q->from && min < q->to) :
	    !(min >= q->from || min < q->to))
		return 0;
	/* minutes of wall-clock time left in the window */
	left = q->to - min;
	if (left <= 0)
		left += 24 * 60;
	*until = now - tm.tm_sec + (time_t)left * 60;
	/* the offset in force at the end may differ (DST): the same wall
	 * clock is then that much earlier or later in UTC */
	if (cond_localtime(tz, *until, &tm, &off_end) == 0 && off_end != off)
		*until -= off_end - off;
	if (*until <= now)
		*until = now + 60;
	return 1;
}
