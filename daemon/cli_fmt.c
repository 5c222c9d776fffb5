/*
 * cli_fmt - tables, values, durations and dates for the CLI. See cli_fmt.h.
 */
#include "config.h"
#include "cli_fmt.h"

#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- tables ---------------------------------------------------------------- */

void
cli_table_init(struct cli_table *t, int ncols, const char *const *head,
    const char *align)
{
	memset(t, 0, sizeof(*t));
	t->ncols = ncols > CLI_TABLE_MAX_COLS ? CLI_TABLE_MAX_COLS : ncols;
	for (int i = 0; i < t->ncols; i++) {
		t->head[i] = head[i];
		t->right[i] = align && align[i] == 'r';
	}
}

int
cli_table_add(struct cli_table *t, const char *const *cells)
{
	size_t need = (t->nrows + 1) * (size_t)t->ncols;

	if (need > t->cap) {
		size_t cap = t->cap ? t->cap * 2 : (size_t)t->ncols * 16;
		char **c;

		while (cap < need)
			cap *= 2;
		if (!(c = realloc(t->cells, cap * sizeof(*c))))
			return -1;
		t->cells = c;
		t->cap = cap;
	}
	for (int i = 0; i < t->ncols; i++) {
		char *s = strdup(cells[i] ? cells[i] : "-");

		if (!s) {
			for (int j = 0; j < i; j++)
				free(t->cells[t->nrows * (size_t)t->ncols + (size_t)j]);
			return -1;
		}
		/* one line a row: control characters shown as spaces */
		for (char *p = s; *p; p++)
			if ((unsigned char)*p < 0x20 || *p == 0x7f)
				*p = ' ';
		t->cells[t->nrows * (size_t)t->ncols + (size_t)i] = s;
	}
	t->nrows++;
	return 0;
}

/* Columns a UTF-8 string takes (code points; no wide characters). */
static size_t
width(const char *s)
{
	size_t w = 0;

	for (; *s; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			w++;
	return w;
}

static void
print_row(const struct cli_table *t, const char *const *cells,
    const size_t *w, FILE *f)
{
	for (int i = 0; i < t->ncols; i++) {
		size_t cw = width(cells[i]), pad = w[i] > cw ? w[i] - cw : 0;
		int last = i == t->ncols - 1;

		if (i)
			fputs("  ", f);
		if (t->right[i])
			fprintf(f, "%*s", (int)pad, "");
		fputs(cells[i], f);
		if (!t->right[i] && !last)
			fprintf(f, "%*s", (int)pad, "");
	}
	fputc('\n', f);
}

void
cli_table_print(const struct cli_table *t, FILE *f)
{
	size_t w[CLI_TABLE_MAX_COLS];

	for (int i = 0; i < t->ncols; i++) {
		w[i] = width(t->head[i]);
		for (size_t r = 0; r < t->nrows; r++) {
			size_t cw = width(t->cells[r * (size_t)t->ncols + (size_t)i]);

			if (cw > w[i])
				w[i] = cw;
		}
	}
	print_row(t, t->head, w, f);
	for (size_t r = 0; r < t->nrows; r++)
		print_row(t, (const char *const *)&t->cells[r * (size_t)t->ncols],
		    w, f);
}

void
cli_table_free(struct cli_table *t)
{
	for (size_t i = 0; i < t->nrows * (size_t)t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	t->cells = NULL;
	t->nrows = t->cap = 0;
}

/* ---- values ---------------------------------------------------------------- */

const char *
cli_fmt_scalar(const json_t *v, const char *dash, char *out, size_t n)
{
	if (json_is_string(v))
		snprintf(out, n, "%s", json_string_value(v));
	else if (json_is_integer(v))
		snprintf(out, n, "%lld", (long long)json_integer_value(v));
	else if (json_is_real(v))
		snprintf(out, n, "%.15g", json_real_value(v));
	else if (json_is_boolean(v))
		snprintf(out, n, "%s", json_is_true(v) ? "yes" : "no");
	else if (json_is_array(v)) {
		/* a list of scalars: "a, b, c" */
		size_t i, o = 0;
		json_t *e;

		if (n)
			*out = '\0';
		json_array_foreach(v, i, e) {
			char one[256];

			cli_fmt_scalar(e, "", one, sizeof(one));
			if (o < n)
				o += (size_t)snprintf(out + o, n - o, "%s%s", i ? ", " :
				    "", one);
		}
		if (json_array_size(v) == 0)
			snprintf(out, n, "%s", dash ? dash : "");
	} else
		snprintf(out, n, "%s", dash ? dash : "");
	return out;
}

const char *
cli_fmt_time(const json_t *v, const char *dash, char *out, size_t n)
{
	if (json_is_integer(v) || json_is_real(v)) {
		time_t t = (time_t)json_number_value(v);
		struct tm tm;

		if (gmtime_r(&t, &tm))
			strftime(out, n, "%Y-%m-%d %H:%M:%SZ", &tm);
		else
			snprintf(out, n, "%s", dash ? dash : "");
	} else if (json_is_string(v)) {
		const char *s = json_string_value(v);
		size_t o = 0;

		/* 2025-03-01T10:00:00.123456+00:00 -> 2025-03-01 10:00:00+00:00 */
		for (size_t i = 0; s[i] && o + 1 < n; i++) {
			if (i == 10 && (s[i] == 'T' || s[i] == 't')) {
				out[o++] = ' ';
			} else if (s[i] == '.' && i >= 19) {
				while (isdigit((unsigned char)s[i + 1]))
					i++;
			} else {
				out[o++] = s[i];
			}
		}
		if (n)
			out[o] = '\0';
	} else {
		snprintf(out, n, "%s", dash ? dash : "");
	}
	return out;
}

/* v small units as "AxBy" (per small units a big one): the small unit
 * shown while A < keep_below, else A rounded. */
static void
two_units(char *out, size_t n, long long v, long long per, const char *big,
    const char *small, long long keep_below)
{
	long long a = v / per, b = v % per;

	if (b && a < keep_below)
		snprintf(out, n, "%lld%s%lld%s", a, big, b, small);
	else
		snprintf(out, n, "%lld%s", a + (a >= keep_below && 2 * b >= per),
		    big);
}

const char *
cli_fmt_duration(double s, char *out, size_t n)
{
	long long sec;

	if (!isfinite(s) || s < 0) {
		snprintf(out, n, "%s", "-");
	} else if (s < 0.9995) {
		snprintf(out, n, "%lldms", (long long)llround(s * 1000));
	} else if (s < 9.95) {
		double r = round(s * 10) / 10;

		snprintf(out, n, r == floor(r) ? "%.0fs" : "%.1fs", r);
	} else if ((sec = llround(s)) < 60) {
		snprintf(out, n, "%llds", sec);
	} else if (sec < 3600 - 30) {           /* 4m30s, 12m */
		two_units(out, n, sec, 60, "m", "s", 10);
	} else if (sec < 86400 - 30) {          /* 2h15m, 11h */
		two_units(out, n, (sec + 30) / 60, 60, "h", "m", 10);
	} else {                                /* 3d4h */
		two_units(out, n, (sec + 1800) / 3600, 24, "d", "h", LLONG_MAX);
	}
	return out;
}

long long
cli_fmt_parse_duration(const char *s)
{
	long long total = 0;

	if (!s || !*s)
		return -1;
	while (*s) {
		long long v = 0, unit;
		int digits = 0;

		while (isdigit((unsigned char)*s)) {
			v = v * 10 + (*s++ - '0');
			if (v > 100000000LL)
				return -1;
			digits++;
		}
		if (!digits)
			return -1;
		switch (*s++) {
		case 's': unit = 1; break;
		case 'm': unit = 60; break;
		case 'h': unit = 3600; break;
		case 'd': unit = 86400; break;
		case 'w': unit = 7 * 86400; break;
		default: return -1;
		}
		total += v * unit;
		if (total > 3650LL * 86400)
			return -1;
	}
	return total > 0 ? total : -1;
}

static int
days_in_month(int y, int m)
{
	static const int d[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

	if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return 29;
	return d[m - 1];
}

/* "YYYY-MM-DD" at s: 0 and the parts, or -1. */
static int
parse_date(const char *s, int *y, int *m, int *d)
{
	for (int i = 0; i < 10; i++)
		if (i == 4 || i == 7 ? s[i] != '-' : !isdigit((unsigned char)s[i]))
			return -1;
	*y = atoi(s), *m = atoi(s + 5), *d = atoi(s + 8);
	if (*y < 1970 || *y > 9999 || *m < 1 || *m > 12 || *d < 1 ||
	    *d > days_in_month(*y, *m))
		return -1;
	return 0;
}

/* "HH:MM[:SS]" at s: the characters used, or -1. */
static int
parse_clock(const char *s, int *h, int *mi, int *sec)
{
	int used = 5;

	if (!isdigit((unsigned char)s[0]) || !isdigit((unsigned char)s[1]) ||
	    s[2] != ':' || !isdigit((unsigned char)s[3]) ||
	    !isdigit((unsigned char)s[4]))
		return -1;
	*h = atoi(s), *mi = atoi(s + 3), *sec = 0;
	if (s[5] == ':') {
		if (!isdigit((unsigned char)s[6]) || !isdigit((unsigned char)s[7]))
			return -1;
		*sec = atoi(s + 6);
		used = 8;
	}
	if (*h > 23 || *mi > 59 || *sec > 59)
		return -1;
	return used;
}

int
cli_fmt_since(const char *in, time_t now, char *out, size_t n, char *err,
    size_t en)
{
	long long dur;
	int y, m, d, h = 0, mi = 0, sec = 0, used;
	time_t t;
	struct tm tm;
	const char *p;

	if ((dur = cli_fmt_parse_duration(in)) > 0) {
		t = now - (time_t)dur;
		goto done;
	}
	if (strlen(in) < 10 || parse_date(in, &y, &m, &d) < 0)
		goto bad;
	p = in + 10;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900, tm.tm_mon = m - 1, tm.tm_mday = d;
	if (*p == 'T' || *p == 't') {
		/* ISO 8601 with a zone */
		int off = 0;

		if ((used = parse_clock(p + 1, &h, &mi, &sec)) < 0)
			goto bad;
		p += 1 + used;
		if (*p == '.')
			for (p++; isdigit((unsigned char)*p); p++)
				;
		if ((*p == 'Z' || *p == 'z') && !p[1]) {
			off = 0;
		} else if ((*p == '+' || *p == '-') && strlen(p) == 6 &&
		    isdigit((unsigned char)p[1]) && isdigit((unsigned char)p[2]) &&
		    p[3] == ':' && isdigit((unsigned char)p[4]) &&
		    isdigit((unsigned char)p[5])) {
			off = (atoi(p + 1) * 60 + atoi(p + 4)) * 60;
			if (off > 18 * 3600)
				goto bad;
			if (*p == '-')
				off = -off;
		} else {
			goto bad;
		}
		tm.tm_hour = h, tm.tm_min = mi, tm.tm_sec = sec;
		t = timegm(&tm) - off;
		goto done;
	}
	if (*p == ' ') {
		if ((used = parse_clock(p + 1, &h, &mi, &sec)) < 0 || p[1 + used])
			goto bad;
	} else if (*p) {
		goto bad;
	}
	/* local wall-clock time */
	tm.tm_hour = h, tm.tm_min = mi, tm.tm_sec = sec;
	tm.tm_isdst = -1;
	if ((t = mktime(&tm)) == (time_t)-1)
		goto bad;
done:
	if (!gmtime_r(&t, &tm) || t < 0)
		goto bad;
	strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return 0;
bad:
	snprintf(err, en, "'%s' is neither a date (YYYY-MM-DD, YYYY-MM-DD HH:MM, "
	    "ISO 8601) nor a duration back from now (30m, 24h, 7d, 2w)", in);
	return -1;
}

const char *
cli_fmt_query(const char *s, char *out, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
			if (o + 1 >= n)
				break;
			out[o++] = (char)c;
		} else {
			if (o + 3 >= n)
				break;
			out[o++] = '%';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	if (n)
		out[o] = '\0';
	return out;
}
