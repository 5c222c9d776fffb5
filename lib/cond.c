/*
 * cond - the condition language: lexer, parser, evaluator, SQL compiler and
 * the time zone reader they need. See cond.h for the language itself.
 *
 * It does not log and does not talk to the database: cond_to_sql only
 * writes text and parameters. Its only I/O is reading TZif files from the
 * tz database, each once, into a process-wide cache guarded by a mutex.
 * The evaluator and the SQL it generates implement the same semantics;
 * where that needs care (numeric strings, ISO-8601 times, case folding,
 * globs) the C code and the SQL text sit next to each other below and must
 * change together. Numbers go through strtod/printf, so LC_NUMERIC must be
 * "C" (leadcast never calls setlocale).
 */
#include "cond.h"
#include "utf8.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define NAME_MAX_LEN    128             /* field names */
#define ZONE_CACHE_MAX  512
#define ZONE_FILE_MAX   (256 * 1024)
#define DUR_MAX         (36500.0 * 86400)      /* 100 years */
#define PARAM_MAX       65535           /* PostgreSQL's limit */

/* ---- small helpers ------------------------------------------------------ */

static int is_digit(int c) { return c >= '0' && c <= '9'; }
static int is_alpha(int c) { return (c | 32) >= 'a' && (c | 32) <= 'z'; }
static int is_ident(int c) { return is_alpha(c) || is_digit(c) || c == '_'; }
static int fold(int c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

static int64_t
floordiv(int64_t a, int64_t b)
{
	int64_t q = a / b;

	return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* One code point of already validated text; a stray byte counts as one. */
static size_t
cp_at(const char *s, size_t n, uint32_t *cp)
{
	size_t k = utf8_decode((const unsigned char *)s, n, cp);

	if (k == 0) {
		*cp = (unsigned char)s[0];
		k = 1;
	}
	return k;
}

/* Compare a (folded on the fly) with b (already folded): <0, 0, >0. */
static int
fold_cmp(const char *a, size_t an, const char *b, size_t bn)
{
	size_t i;

	for (i = 0; i < an && i < bn; i++) {
		int ca = fold((unsigned char)a[i]), cb = (unsigned char)b[i];

		if (ca != cb)
			return ca < cb ? -1 : 1;
	}
	return an < bn ? -1 : an > bn;
}

/* Is folded needle nd a substring of h, ignoring ASCII case? */
static int
fold_find(const char *h, size_t hn, const char *nd, size_t nn)
{
	char sbuf[512], *f = sbuf;
	size_t i;
	int r;

	if (nn == 0)
		return 1;
	if (nn > hn)
		return 0;
	if (hn > sizeof(sbuf) && !(f = malloc(hn)))
		return 0;
	for (i = 0; i < hn; i++)
		f[i] = (char)fold((unsigned char)h[i]);
	r = memmem(f, hn, nd, nn) != NULL;
	if (f != sbuf)
		free(f);
	return r;
}

/* ---- the compiled form -------------------------------------------------- */

enum op { OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE, OP_IN, OP_CONTAINS,
	OP_MATCHES };
static const char *const op_names[] = { "==", "!=", "<", "<=", ">", ">=",
	"in", "contains", "matches" };
static const char *const op_sql[] = { "=", "<>", "<", "<=", ">", ">=" };

enum subj_kind { SUBJ_FIELD, SUBJ_CUSTOM, SUBJ_HOUR, SUBJ_WEEKDAY };

struct subject {
	enum subj_kind kind;
	const char *name;       /* FIELD: top-level key; CUSTOM: key in "fields" */
	size_t idx;             /* FIELD, CUSTOM: index in cond->names */
};

enum vkind { V_NUM, V_STR, V_BOOL, V_TIME, V_NOW, V_DUR, V_LIST };

struct value {
	enum vkind kind;
	double num;     /* NUM; BOOL 0/1; TIME epoch; NOW offset; DUR seconds */
	char *str;      /* STR: ASCII-folded (a glob for `matches`) */
	size_t len;
	int isnum;      /* STR: a numeric string, worth strnum */
	double strnum;
	struct value *items;    /* LIST */
	size_t nitems;
	int pos;        /* source offset, for errors */
};

enum node_kind { N_CONST, N_AND, N_OR, N_NOT, N_EXISTS, N_CMP };

struct node {
	enum node_kind kind;
	struct node *kid;       /* AND, OR: first operand; NOT: the operand */
	struct node *next;      /* next operand of the parent AND/OR */
	int truth;              /* CONST */
	struct subject subj;    /* EXISTS, CMP */
	enum op op;             /* CMP */
	struct value val;       /* CMP */
};

struct block {
	struct block *next;
	size_t used, cap;
	max_align_t mem[];
};

struct cond {
	struct node *root;
	char **names;           /* as cond_fields reports them; in the arena */
	size_t nnames;
	int uses_local;         /* hour or weekday */
	struct block *blocks;   /* arena holding nodes, values and strings */
};

/* Zeroed memory from c's arena, freed with c. NULL on ENOMEM. */
static void *
c_alloc(struct cond *c, size_t n)
{
	struct block *b = c->blocks;
	void *p;

	n = (n + sizeof(max_align_t) - 1) / sizeof(max_align_t) *
	    sizeof(max_align_t);
	if (!b || b->cap - b->used < n) {
		size_t cap = n > 4096 ? n : 4096;

		if (!(b = malloc(sizeof(*b) + cap)))
			return NULL;
		b->used = 0;
		b->cap = cap;
		b->next = c->blocks;
		c->blocks = b;
	}
	p = (char *)b->mem + b->used;
	b->used += n;
	memset(p, 0, n);
	return p;
}

void
cond_free(struct cond *c)
{
	struct block *b, *nb;

	if (!c)
		return;
	for (b = c->blocks; b; b = nb) {
		nb = b->next;
		free(b);
	}
	free(c->names);
	free(c);
}

/* ---- times -------------------------------------------------------------- */

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant). */
static int64_t
days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static void
civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
	int64_t era, doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*m <= 2);
}

/* Two digits at s within [lo, hi], else -1. */
static int
dig2(const char *s, int lo, int hi)
{
	int v;

	if (!is_digit(s[0]) || !is_digit(s[1]))
		return -1;
	v = (s[0] - '0') * 10 + (s[1] - '0');
	return v >= lo && v <= hi ? v : -1;
}

/*
 * The TIME form, in C and as the regular expression the SQL applies to text
 * (keep them in step): a date, optionally a time, optionally an offset.
 * Days 29-31 of short months roll over into the next month in both.
 */
#define RE_ISO "^([1-9][0-9]{3})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])" \
	"(?:[T ]([01][0-9]|2[0-3]):([0-5][0-9])(?::([0-5][0-9]|60)" \
	"([.][0-9]{1,9})?)?(Z|([-+])([0-9]{2})(?::?([0-9]{2}))?)?)?$"

/*
 * Parse a TIME at s (n bytes; ' ' may stand for 'T' if allow_space).
 * Returns the bytes used (0: none) and the epoch time in *out.
 */
static size_t
iso_parse(const char *s, size_t n, int allow_space, double *out)
{
	int y, mo, d, h = 0, mi = 0, sec = 0, off = 0, v, w;
	double frac = 0;
	size_t i = 10, j;
	char tmp[16];

	if (n < 10 || s[0] < '1' || s[0] > '9' || !is_digit(s[1]) ||
	    !is_digit(s[2]) || !is_digit(s[3]) || s[4] != '-' || s[7] != '-' ||
	    (mo = dig2(s + 5, 1, 12)) < 0 || (d = dig2(s + 8, 1, 31)) < 0)
		return 0;
	y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 +
	    (s[3] - '0');
	if (n >= 16 && (s[10] == 'T' || (allow_space && s[10] == ' ')) &&
	    (v = dig2(s + 11, 0, 23)) >= 0 && s[13] == ':' &&
	    (w = dig2(s + 14, 0, 59)) >= 0) {
		h = v, mi = w, i = 16;
		if (i + 3 <= n && s[i] == ':' && (v = dig2(s + i + 1, 0, 60)) >= 0) {
			sec = v, i += 3;
			if (i + 1 < n && s[i] == '.' && is_digit(s[i + 1])) {
				for (j = i + 1; j < n && is_digit(s[j]) && j - i <= 9; j++)
					;
				memcpy(tmp, s + i, j - i);
				tmp[j - i] = '\0';
				frac = strtod(tmp, NULL);
				i = j;
			}
		}
		if (i < n && s[i] == 'Z') {
			i++;
		} else if (i + 3 <= n && (s[i] == '+' || s[i] == '-') &&
		    (v = dig2(s + i + 1, 0, 99)) >= 0) {
			int sign = s[i] == '-' ? -1 : 1;

			off = v * 3600, i += 3;
			if (i + 3 <= n && s[i] == ':' && (v = dig2(s + i + 1, 0, 99)) >= 0)
				off += v * 60, i += 3;
			else if (i + 2 <= n && (v = dig2(s + i, 0, 99)) >= 0)
				off += v * 60, i += 2;
			off *= sign;
		}
	}
	*out = (double)((days_from_civil(y, mo, 1) + d - 1) * 86400 +
	    h * 3600 + mi * 60 + sec - off) + frac;
	return i;
}

int
cond_parse_time(const char *s, time_t *t)
{
	size_t n = s ? strlen(s) : 0;
	double v;

	if (n == 0 || iso_parse(s, n, 1, &v) != n)
		return -1;
	*t = (time_t)floor(v);
	return 0;
}

/* A number in a string, in C and as the SQL's regular expression. */
#define RE_NUM "^-?[0-9]{1,30}([.][0-9]{1,30})?([eE][-+]?[0-9]{1,2})?$"

static int
numstr(const char *s, size_t n, double *out)
{
	size_t i = 0, k;
	char tmp[80];

	if (i < n && s[i] == '-')
		i++;
	for (k = i; i < n && is_digit(s[i]); i++)
		;
	if (i == k || i - k > 30)
		return 0;
	if (i < n && s[i] == '.') {
		for (k = ++i; i < n && is_digit(s[i]); i++)
			;
		if (i == k || i - k > 30)
			return 0;
	}
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		if (++i < n && (s[i] == '+' || s[i] == '-'))
			i++;
		for (k = i; i < n && is_digit(s[i]); i++)
			;
		if (i == k || i - k > 2)
			return 0;
	}
	if (i != n)
		return 0;
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	*out = strtod(tmp, NULL);
	return 1;
}

/* ---- time zones ----------------------------------------------------------
 *
 * TZif files (RFC 8536) are parsed here rather than going through TZ and
 * localtime: setenv/tzset race with every other thread reading the
 * environment. Loaded zones are immutable and cached for the process's
 * life (bounded by ZONE_CACHE_MAX; beyond it they are loaded per use).
 */

struct tzrule {
	char kind;              /* 'J' Julian 1-365, 'N' 0-365, 'M' month.week.day */
	int a, b, c;
	long secs;              /* local time of day of the change */
};

struct zone {
	struct zone *next;
	char *name;
	int ok;
	int64_t *trans;         /* transition times, ascending */
	unsigned char *tidx;    /* type index of each transition */
	size_t ntrans;
	long *utoff;            /* per type */
	unsigned char *isdst;
	size_t ntypes;
	int has_rule, has_dst;  /* the footer: times after the last transition */
	long std_off, dst_off;
	struct tzrule start, end;
};

static pthread_mutex_t zone_mu = PTHREAD_MUTEX_INITIALIZER;
static struct zone *zone_list;
static size_t zone_count;

static void
zone_free(struct zone *z)
{
	if (!z)
		return;
	free(z->name);
	free(z->trans);
	free(z->tidx);
	free(z->utoff);
	free(z->isdst);
	free(z);
}

static int64_t
be(const unsigned char *p, size_t n)
{
	uint64_t v = 0;
	size_t i;

	for (i = 0; i < n; i++)
		v = v << 8 | p[i];
	if (n == 4)
		return (int32_t)(uint32_t)v;
	return (int64_t)v;
}

static const char *
tz_abbr(const char *s)
{
	const char *k = s;

	if (*s == '<')
		return (s = strchr(s, '>')) ? s + 1 : NULL;
	while (is_alpha(*s))
		s++;
	return s - k >= 3 ? s : NULL;
}

/* [+-]h[h..][:mm[:ss]] in seconds, hours at most maxh. */
static const char *
tz_secs(const char *s, long maxh, long *out)
{
	long sign = 1, h = 0, m = 0, sec = 0;

	if (*s == '+' || *s == '-')
		sign = *s++ == '-' ? -1 : 1;
	if (!is_digit(*s))
		return NULL;
	while (is_digit(*s))
		if ((h = h * 10 + (*s++ - '0')) > maxh)
			return NULL;
	if (*s == ':' && (m = dig2(s + 1, 0, 59)) >= 0) {
		s += 3;
		if (*s == ':' && (sec = dig2(s + 1, 0, 59)) >= 0)
			s += 3;
	}
	if (m < 0 || sec < 0)
		return NULL;
	*out = sign * (h * 3600 + m * 60 + sec);
	return s;
}

static const char *
tz_num(const char *s, int lo, int hi, int *out)
{
	long v = 0;

	if (!is_digit(*s))
		return NULL;
	while (is_digit(*s))
		if ((v = v * 10 + (*s++ - '0')) > hi)
			return NULL;
	*out = (int)v;
	return v >= lo ? s : NULL;
}

static const char *
tz_rule(const char *s, struct tzrule *r)
{
	r->secs = 7200;
	if (*s == 'J') {
		r->kind = 'J';
		s = tz_num(s + 1, 1, 365, &r->a);
	} else if (*s == 'M') {
		r->kind = 'M';
		if ((s = tz_num(s + 1, 1, 12, &r->a)) && *s == '.' &&
		    (s = tz_num(s + 1, 1, 5, &r->b)) && *s == '.')
			s = tz_num(s + 1, 0, 6, &r->c);
		else
			s = NULL;
	} else {
		r->kind = 'N';
		s = tz_num(s, 0, 365, &r->a);
	}
	if (s && *s == '/')
		s = tz_secs(s + 1, 167, &r->secs);
	return s;
}

/* The POSIX TZ string of the footer, e.g. "EST5EDT,M3.2.0,M11.1.0". */
static int
tz_footer(struct zone *z, const char *s)
{
	long v;

	if (!*s)
		return 0;
	if (!(s = tz_abbr(s)) || !(s = tz_secs(s, 24, &v)))
		return -1;
	z->std_off = -v;
	z->has_rule = 1;
	if (!*s)
		return 0;
	if (!(s = tz_abbr(s)))
		return -1;
	z->dst_off = z->std_off + 3600;
	if (*s && *s != ',') {
		if (!(s = tz_secs(s, 24, &v)))
			return -1;
		z->dst_off = -v;
	}
	z->has_dst = 1;
	if (!*s) {
		z->start = (struct tzrule){ 'M', 3, 2, 0, 7200 };
		z->end = (struct tzrule){ 'M', 11, 1, 0, 7200 };
		return 0;
	}
	if (*s != ',' || !(s = tz_rule(s + 1, &z->start)) || *s != ',' ||
	    !(s = tz_rule(s + 1, &z->end)) || *s)
		return -1;
	return 0;
}

static int
tzif_parse(struct zone *z, const unsigned char *d, size_t n)
{
	size_t cnt[6], off = 0, tsz = 4, body, i, p;
	int version = 0, pass;

	for (pass = 0; pass < 2; pass++) {
		if (n - off < 44 || memcmp(d + off, "TZif", 4) != 0)
			return -1;
		version = d[off + 4];
		for (i = 0; i < 6; i++)
			cnt[i] = (uint32_t)be(d + off + 20 + 4 * i, 4);
		off += 44;
		/* isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt */
		body = cnt[3] * tsz + cnt[3] + cnt[4] * 6 + cnt[5] +
		    cnt[2] * (tsz + 4) + cnt[1] + cnt[0];
		if (body > n - off)
			return -1;
		if (pass == 1 || version < '2')
			break;
		off += body;
		tsz = 8;
	}
	if (cnt[4] == 0 || cnt[4] > 256 || cnt[3] > 100000)
		return -1;
	z->ntrans = cnt[3];
	z->ntypes = cnt[4];
	if (!(z->trans = calloc(z->ntrans + 1, sizeof(*z->trans))) ||
	    !(z->tidx = calloc(z->ntrans + 1, 1)) ||
	    !(z->utoff = calloc(z->ntypes, sizeof(*z->utoff))) ||
	    !(z->isdst = calloc(z->ntypes, 1)))
		return -1;
	for (i = 0, p = off; i < z->ntrans; i++, p += tsz) {
		z->trans[i] = be(d + p, tsz);
		if (i > 0 && z->trans[i] <= z->trans[i - 1])
			return -1;
	}
	for (i = 0; i < z->ntrans; i++, p++)
		if ((z->tidx[i] = d[p]) >= z->ntypes)
			return -1;
	for (i = 0; i < z->ntypes; i++, p += 6) {
		z->utoff[i] = (long)be(d + p, 4);
		z->isdst[i] = d[p + 4] != 0;
		if (z->utoff[i] < -93600 || z->utoff[i] > 93600)
			return -1;
	}
	off += body;
	if (tsz == 8 && off < n && d[off] == '\n') {
		const unsigned char *e = memchr(d + off + 1, '\n', n - off - 1);
		char foot[256];

		if (!e || (size_t)(e - d) - off - 1 >= sizeof(foot))
			return -1;
		memcpy(foot, d + off + 1, (size_t)(e - d) - off - 1);
		foot[(size_t)(e - d) - off - 1] = '\0';
		if (tz_footer(z, foot) < 0)
			return -1;
	}
	return 0;
}

static int
zone_name_ok(const char *s)
{
	size_t n = strlen(s), i;

	if (n == 0 || n > 64 || s[0] == '/' || s[0] == '.')
		return 0;
	for (i = 0; i < n; i++) {
		if (!is_ident(s[i]) && !strchr("/+-.", s[i]))
			return 0;
		if (s[i] == '/' && (s[i + 1] == '.' || s[i + 1] == '/'))
			return 0;
	}
	return 1;
}

/* A new zone (caller frees with zone_free); ok says whether it loaded. */
static struct zone *
zone_load(const char *name)
{
	const char *dir = getenv("TZDIR");
	struct zone *z;
	unsigned char *data = NULL;
	char path[512];
	size_t n = 0;
	FILE *f;

	if (!(z = calloc(1, sizeof(*z))) || !(z->name = strdup(name))) {
		free(z);
		return NULL;
	}
	if (!zone_name_ok(name))
		return z;
	snprintf(path, sizeof(path), "%s/%s", dir && *dir ? dir :
	    "/usr/share/zoneinfo", name);
	if (!(f = fopen(path, "rb")))
		return z;
	if ((data = malloc(ZONE_FILE_MAX)) != NULL)
		n = fread(data, 1, ZONE_FILE_MAX, f);
	fclose(f);
	if (data && n < ZONE_FILE_MAX && tzif_parse(z, data, n) == 0)
		z->ok = 1;
	free(data);
	return z;
}

/* The cached zone for name, loading it if needed; *tmp is set when the
 * zone did not fit the cache and must be freed by the caller. */
static const struct zone *
zone_get(const char *name, struct zone **tmp)
{
	struct zone *z;

	*tmp = NULL;
	pthread_mutex_lock(&zone_mu);
	for (z = zone_list; z; z = z->next)
		if (strcmp(z->name, name) == 0)
			break;
	if (!z && (z = zone_load(name)) != NULL) {
		if (zone_count < ZONE_CACHE_MAX) {
			z->next = zone_list;
			zone_list = z;
			zone_count++;
		} else {
			*tmp = z;
		}
	}
	pthread_mutex_unlock(&zone_mu);
	return z && z->ok ? z : NULL;
}

static int64_t
rule_day(const struct tzrule *r, int64_t y)
{
	int64_t jan1 = days_from_civil(y, 1, 1), first, day, next;
	int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

	if (r->kind == 'J')
		return jan1 + r->a - 1 + (leap && r->a >= 60);
	if (r->kind == 'N')
		return jan1 + r->a;
	first = days_from_civil(y, r->a, 1);
	next = days_from_civil(r->a == 12 ? y + 1 : y, r->a == 12 ? 1 : r->a + 1, 1);
	day = first + ((r->c - (first + 4) % 7) % 7 + 14) % 7 + (r->b - 1) * 7;
	while (day >= next)
		day -= 7;
	return day;
}

static void
zone_offset(const struct zone *z, int64_t t, long *off, int *dst)
{
	size_t lo, hi, type = 0;

	if (z->has_rule && (z->ntrans == 0 || t >= z->trans[z->ntrans - 1])) {
		int64_t y, best = INT64_MIN, k, s, e;
		int m, d;

		*dst = 0;
		if (z->has_dst) {
			civil_from_days(floordiv(t, 86400), &y, &m, &d);
			for (k = y - 1; k <= y + 1; k++) {
				s = rule_day(&z->start, k) * 86400 + z->start.secs -
				    z->std_off;
				e = rule_day(&z->end, k) * 86400 + z->end.secs -
				    z->dst_off;
				if (s <= t && s >= best)
					best = s, *dst = 1;
				if (e <= t && e > best)
					best = e, *dst = 0;
			}
		}
		*off = *dst ? z->dst_off : z->std_off;
		return;
	}
	if (z->ntrans > 0 && t >= z->trans[0]) {
		lo = 0, hi = z->ntrans;         /* trans[lo] <= t < trans[hi] */
		while (hi - lo > 1) {
			size_t mid = lo + (hi - lo) / 2;

			if (z->trans[mid] <= t)
				lo = mid;
			else
				hi = mid;
		}
		type = z->tidx[lo];
	}
	*off = z->utoff[type];
	*dst = z->isdst[type];
}

int
cond_localtime(const char *tz, time_t t, struct tm *tm, long *utoff)
{
	const struct zone *z = NULL;
	struct zone *tmp = NULL;
	long off = 0;
	int dst = 0, m, d;
	int64_t local, days, secs, y;

	if (t < -100000000000000LL || t > 100000000000000LL)
		return -1;
	if (tz && strcmp(tz, "UTC") != 0) {
		if (!(z = zone_get(tz, &tmp))) {
			zone_free(tmp);
			return -1;
		}
		zone_offset(z, (int64_t)t, &off, &dst);
		zone_free(tmp);
	}
	local = (int64_t)t + off;
	days = floordiv(local, 86400);
	secs = local - days * 86400;
	civil_from_days(days, &y, &m, &d);
	memset(tm, 0, sizeof(*tm));
	tm->tm_year = (int)(y - 1900);
	tm->tm_mon = m - 1;
	tm->tm_mday = d;
	tm->tm_hour = (int)(secs / 3600);
	tm->tm_min = (int)(secs / 60 % 60);
	tm->tm_sec = (int)(secs % 60);
	tm->tm_wday = (int)((days % 7 + 11) % 7);       /* 1970-01-01: Thursday */
	tm->tm_yday = (int)(days - days_from_civil(y, 1, 1));
	tm->tm_isdst = dst;
	if (utoff)
		*utoff = off;
	return 0;
}

int
cond_tz_check(const char *tz, char *err, size_t n)
{
	struct tm tm;

	if (cond_localtime(tz, 0, &tm, NULL) == 0)
		return 0;
	if (err && n)
		snprintf(err, n, "unknown time zone '%s'", tz);
	return -1;
}

/* ---- globs ---------------------------------------------------------------
 *
 * Patterns are stored ASCII-folded and matched against folded text. In SQL
 * they become an anchored regular expression with every character that is
 * not an ASCII letter or digit written as \uXXXX, so nothing in a pattern
 * can act as regex syntax.
 */

/* The code point of the pattern element at p (a \ escapes), its length.
 * The pattern is NUL-terminated and utf8_decode stops at the NUL. */
static size_t
glob_cp(const char *p, uint32_t *cp)
{
	if (*p == '\\')
		return 1 + cp_at(p + 1, 4, cp);
	return cp_at(p, 4, cp);
}

/* The set at p (after '['): *hit says whether c is in it. Returns the byte
 * after ']', or NULL if malformed (unterminated, range high < low). */
static const char *
glob_set(const char *p, uint32_t c, int *hit, int emit, struct buf *re)
{
	uint32_t lo, hi;
	int neg = 0, first = 1;

	*hit = 0;
	if (*p == '!' || *p == '^')
		neg = 1, p++;
	if (emit)
		buf_puts(re, neg ? "[^" : "[");
	for (; *p && (first || *p != ']'); first = 0) {
		if (*p == '\\' && !p[1])
			return NULL;
		p += glob_cp(p, &lo);
		hi = lo;
		if (p[0] == '-' && p[1] && p[1] != ']') {
			if (p[1] == '\\' && !p[2])
				return NULL;
			p += 1 + glob_cp(p + 1, &hi);
			if (hi < lo)
				return NULL;
		}
		if (lo <= c && c <= hi)
			*hit = 1;
		if (emit) {
			buf_printf(re, lo > 0xffff ? "\\U%08x" : "\\u%04x", lo);
			if (hi != lo)
				buf_printf(re, hi > 0xffff ? "-\\U%08x" : "-\\u%04x", hi);
		}
	}
	if (!*p)
		return NULL;
	if (neg)
		*hit = !*hit;
	if (emit)
		buf_putc(re, ']');
	return p + 1;
}

static int
glob_valid(const char *p)
{
	int hit;

	while (*p) {
		if (*p == '[') {
			if (!(p = glob_set(p + 1, 0, &hit, 0, NULL)))
				return 0;
		} else if (*p == '\\') {
			if (!p[1])
				return 0;
			p += 2;
		} else {
			p++;
		}
	}
	return 1;
}

/* Does the single element at p match c? Returns the next element or NULL. */
static const char *
glob_step(const char *p, uint32_t c)
{
	uint32_t pc;
	int hit;

	if (*p == '?')
		return p + 1;
	if (*p == '[') {
		p = glob_set(p + 1, c, &hit, 0, NULL);
		return p && hit ? p : NULL;
	}
	p += glob_cp(p, &pc);
	return pc == c ? p : NULL;
}

/* Match the whole of s against valid pattern p; s is folded on the fly.
 * Iterative, backtracking only to the last '*': O(len(p) * len(s)). */
static int
glob_match(const char *p, const char *s, size_t n)
{
	const char *star = NULL, *np;
	size_t i = 0, mark = 0, k;
	uint32_t c;

	for (;;) {
		if (*p == '*') {
			while (*p == '*')
				p++;
			if (!*p)
				return 1;
			star = p, mark = i;
			continue;
		}
		if (i < n && *p) {
			k = cp_at(s + i, n - i, &c);
			if ((np = glob_step(p, c < 128 ? (uint32_t)fold((int)c) : c))) {
				p = np, i += k;
				continue;
			}
		}
		if (i == n && !*p)
			return 1;
		if (!star || mark >= n)
			return 0;
		mark += cp_at(s + mark, n - mark, &c);
		p = star, i = mark;
	}
}

static void
glob_regex(struct buf *re, const char *p)
{
	uint32_t c;
	int hit;

	buf_putc(re, '^');
	while (*p) {
		if (*p == '*') {
			buf_puts(re, ".*");
			while (*p == '*')
				p++;
		} else if (*p == '?') {
			buf_putc(re, '.');
			p++;
		} else if (*p == '[') {
			p = glob_set(p + 1, 0, &hit, 1, re);
		} else {
			p += glob_cp(p, &c);
			if (c < 128 && (is_alpha((int)c) || is_digit((int)c)))
				buf_putc(re, (char)c);
			else
				buf_printf(re, c > 0xffff ? "\\U%08x" : "\\u%04x", c);
		}
	}
	buf_putc(re, '$');
}

/* ---- lexer -------------------------------------------------------------- */

enum tok { T_END, T_IDENT, T_NUM, T_DUR, T_TIME, T_STR, T_CMP, T_LP, T_RP,
	T_LB, T_RB, T_COMMA, T_DOT, T_PLUS, T_MINUS };

struct token {
	enum tok kind;
	int pos, len;
	enum op op;             /* CMP */
	double num;             /* NUM; DUR seconds; TIME epoch */
	char *str;              /* STR: decoded, in the arena */
	size_t slen;
};

struct parser {
	struct cond *c;
	const char *src;
	size_t at;              /* lexer position */
	struct token t, prev;   /* current token, the one before */
	int ntok;
	int depth;
	struct cond_error *err;
	int failed;
};

static int perr(struct parser *p, int pos, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
linecol(const struct parser *p, int pos, int *line, int *col)
{
	int i;

	*line = *col = 1;
	for (i = 0; i < pos && p->src[i]; i++) {
		if (p->src[i] == '\n')
			++*line, *col = 1;
		else
			++*col;
	}
}

static int
perr(struct parser *p, int pos, const char *fmt, ...)
{
	char msg[sizeof(p->err->msg) - 16];
	va_list ap;
	int line, col;

	if (p->failed++ || !p->err)
		return -1;
	linecol(p, pos, &line, &col);
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	p->err->offset = pos;
	p->err->line = line;
	p->err->col = col;
	snprintf(p->err->msg, sizeof(p->err->msg), "%.170s at %d:%d", msg, line,
	    col);
	return -1;
}

static int
nomem(struct parser *p)
{
	return perr(p, p->t.pos, "out of memory");
}

/* "'text'" of a token, for messages. */
static const char *
tokdesc(const struct parser *p, const struct token *t, char *buf, size_t n)
{
	if (t->kind == T_END)
		return "the end of the condition";
	if (t->kind == T_STR)
		snprintf(buf, n, "%.*s%s", t->len > 30 ? 30 : t->len,
		    p->src + t->pos, t->len > 30 ? "..." : "");
	else
		snprintf(buf, n, "'%.*s%s'", t->len > 30 ? 30 : t->len,
		    p->src + t->pos, t->len > 30 ? "..." : "");
	return buf;
}

static int
lex_op(struct parser *p, size_t i)
{
	static const struct { const char *s; enum op op; } ops[] = {
		{ "==", OP_EQ }, { "!=", OP_NE }, { "<=", OP_LE },
		{ ">=", OP_GE }, { "<", OP_LT }, { ">", OP_GT },
	};
	static const struct { const char *s, *hint; } hints[] = {
		{ "=", "'=='" }, { "===", "'=='" }, { "=>", "'>='" },
		{ "=<", "'<='" }, { "<>", "'!='" }, { "!", "'not'" },
		{ "&&", "'and'" }, { "&", "'and'" }, { "||", "'or'" },
		{ "|", "'or'" },
	};
	const char *s = p->src;
	size_t j = i, k;

	while (s[j] && strchr("=!<>&|", s[j]))
		j++;
	for (k = 0; k < sizeof(ops) / sizeof(ops[0]); k++) {
		if (strlen(ops[k].s) == j - i && !strncmp(s + i, ops[k].s, j - i)) {
			p->t.kind = T_CMP;
			p->t.op = ops[k].op;
			return (int)j;
		}
	}
	for (k = 0; k < sizeof(hints) / sizeof(hints[0]); k++)
		if (strlen(hints[k].s) == j - i && !strncmp(s + i, hints[k].s, j - i))
			return perr(p, (int)i, "unknown operator '%.*s' (did you "
			    "mean %s?)", (int)(j - i), s + i, hints[k].hint);
	return perr(p, (int)i, "unknown operator '%.*s'", (int)(j - i), s + i);
}

static int
lex_number(struct parser *p, size_t i)
{
	const char *s = p->src;
	size_t j = i, k;
	char tmp[65];
	int real = 0;

	if (is_digit(s[i + 1]) && is_digit(s[i + 2]) && is_digit(s[i + 3]) &&
	    s[i + 4] == '-' && is_digit(s[i + 5])) {
		k = iso_parse(s + i, strlen(s + i), 0, &p->t.num);
		if (k == 0 || (s[i + k] && (is_ident(s[i + k]) ||
		    strchr(".:", s[i + k]))))
			return perr(p, (int)i, "malformed time (write 2024-05-01, "
			    "2024-05-01T09:30:00Z or 2024-05-01T09:30:00-04:00)");
		p->t.kind = T_TIME;
		return (int)(i + k);
	}
	while (is_digit(s[j]))
		j++;
	if (s[j] == '.' && is_digit(s[j + 1]))
		for (real = 1, j++; is_digit(s[j]); j++)
			;
	if ((s[j] == 'e' || s[j] == 'E') && (is_digit(s[j + 1]) ||
	    ((s[j + 1] == '+' || s[j + 1] == '-') && is_digit(s[j + 2]))))
		for (real = 1, j += 2; is_digit(s[j]); j++)
			;
	if (is_alpha(s[j])) {
		static const char units[] = "smhdw";
		static const double mult[] = { 1, 60, 3600, 86400, 604800 };
		double total = 0, v;
		const char *u;

		if (real)
			return perr(p, (int)i, "a duration is a whole number "
			    "and a unit (90m, not 1.5h)");
		for (j = i; is_digit(s[j]); ) {
			for (v = 0; is_digit(s[j]); j++)
				if ((v = v * 10 + (s[j] - '0')) > DUR_MAX)
					return perr(p, (int)i, "duration too long");
			for (k = j; is_alpha(s[k]); k++)
				;
			if (k - j != 1 || !(u = strchr(units, s[j])))
				return perr(p, (int)j, "unknown duration unit "
				    "'%.*s' (use s, m, h, d or w)",
				    (int)(k - j), s + j);
			if ((total += v * mult[u - units]) > DUR_MAX)
				return perr(p, (int)i, "duration too long");
			j = k;
		}
		p->t.kind = T_DUR;
		p->t.num = total;
		return (int)j;
	}
	if (j - i >= sizeof(tmp))
		return perr(p, (int)i, "number too long");
	memcpy(tmp, s + i, j - i);
	tmp[j - i] = '\0';
	errno = 0;
	p->t.num = strtod(tmp, NULL);
	if (errno == ERANGE || !isfinite(p->t.num))
		return perr(p, (int)i, "number out of range");
	p->t.kind = T_NUM;
	return (int)j;
}

static int
lex_string(struct parser *p, size_t i)
{
	const char *s = p->src;
	char q = s[i], *out;
	size_t j, k, o = 0, at;
	uint32_t cp;

	for (j = i + 1; s[j] && s[j] != q; j++)
		if (s[j] == '\\' && s[j + 1])
			j++;
	if (!s[j])
		return perr(p, (int)i, "unterminated string (no closing %c)", q);
	if (!(out = c_alloc(p->c, j - i)))
		return nomem(p);
	for (k = i + 1; k < j; k++) {
		if (s[k] != '\\') {
			out[o++] = s[k];
			continue;
		}
		switch (s[++k]) {
		case '\\': case '"': case '\'':
			out[o++] = s[k];
			break;
		case 'n':
			out[o++] = '\n';
			break;
		case 't':
			out[o++] = '\t';
			break;
		default:
			return perr(p, (int)k - 1, "unknown escape '\\%c' in string "
			    "(use \\\\ for a backslash)", s[k]);
		}
	}
	for (at = 0; at < o; at += k)
		if (!(k = utf8_decode((unsigned char *)out + at, o - at, &cp)))
			return perr(p, (int)i, "invalid UTF-8 in string");
	p->t.kind = T_STR;
	p->t.str = out;
	p->t.slen = o;
	return (int)j + 1;
}

/* Advance to the next token. */
static int
lex(struct parser *p)
{
	static const char single[] = "()[],.+-";
	static const enum tok skinds[] = { T_LP, T_RP, T_LB, T_RB, T_COMMA,
		T_DOT, T_PLUS, T_MINUS };
	const char *s = p->src, *k;
	size_t i = p->at;
	int r;
	unsigned char c;

	p->prev = p->t;
	p->ntok++;
	while (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')
		i++;
	memset(&p->t, 0, sizeof(p->t));
	p->t.pos = (int)i;
	c = (unsigned char)s[i];
	if (c == '\0') {
		r = (int)i;
		p->t.kind = T_END;
	} else if (is_alpha(c) || c == '_') {
		for (r = (int)i; is_ident(s[r]); r++)
			;
		p->t.kind = T_IDENT;
	} else if (is_digit(c)) {
		r = lex_number(p, i);
	} else if (c == '"' || c == '\'') {
		r = lex_string(p, i);
	} else if (strchr("=!<>&|", c)) {
		r = lex_op(p, i);
	} else if ((k = strchr(single, c)) != NULL) {
		p->t.kind = skinds[k - single];
		r = (int)i + 1;
	} else if (c >= 0x20 && c < 0x7f) {
		return perr(p, (int)i, "unexpected character '%c'", c);
	} else {
		return perr(p, (int)i, "unexpected byte 0x%02x", c);
	}
	if (r < 0)
		return -1;
	p->t.len = r - (int)i;
	p->at = (size_t)r;
	return 0;
}

/* ---- parser ------------------------------------------------------------- */

static const char *const reserved[] = { "and", "or", "not", "in", "contains",
	"matches", "exists", "now", "age", "hour", "weekday", "true", "false",
	"null", "fields" };

static int
is_kw(const struct parser *p, const char *kw)
{
	return p->t.kind == T_IDENT && (size_t)p->t.len == strlen(kw) &&
	    strncasecmp(p->src + p->t.pos, kw, (size_t)p->t.len) == 0;
}

static int
is_reserved(const struct parser *p)
{
	size_t i;

	for (i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++)
		if (is_kw(p, reserved[i]))
			return 1;
	return 0;
}

/* Record name (as cond_fields reports it) once; returns its index. */
static int
intern(struct parser *p, const char *prefix, const char *name, size_t n,
    size_t *idx)
{
	struct cond *c = p->c;
	size_t pl = strlen(prefix), i;
	char **nv, *s;

	for (i = 0; i < c->nnames; i++) {
		if (strlen(c->names[i]) == pl + n &&
		    !memcmp(c->names[i], prefix, pl) &&
		    !memcmp(c->names[i] + pl, name, n)) {
			*idx = i;
			return 0;
		}
	}
	if (!(s = c_alloc(c, pl + n + 1)) ||
	    !(nv = realloc(c->names, (c->nnames + 1) * sizeof(*nv))))
		return nomem(p);
	memcpy(s, prefix, pl);
	memcpy(s + pl, name, n);
	c->names = nv;
	c->names[c->nnames] = s;
	*idx = c->nnames++;
	return 0;
}

/* A lead field at the current token: name, fields.name or fields["name"]. */
static int
parse_field(struct parser *p, struct subject *sj, const char *what)
{
	const char *s = p->src;
	char buf[48];
	size_t i, j;

	if (p->t.kind != T_IDENT || (is_reserved(p) && !is_kw(p, "fields")))
		return perr(p, p->t.pos, "expected %s, found %s", what,
		    tokdesc(p, &p->t, buf, sizeof(buf)));
	if (!is_kw(p, "fields")) {
		if (p->t.len > NAME_MAX_LEN)
			return perr(p, p->t.pos, "field name too long");
		sj->kind = SUBJ_FIELD;
		if (intern(p, "", s + p->t.pos, (size_t)p->t.len, &sj->idx) < 0)
			return -1;
		sj->name = p->c->names[sj->idx];
		return lex(p);
	}
	sj->kind = SUBJ_CUSTOM;
	i = (size_t)(p->t.pos + p->t.len);
	if (s[i] == '.') {
		for (j = i + 1; is_ident(s[j]); j++)
			;
		if (j == i + 1)
			return perr(p, (int)i + 1, "expected a custom field name "
			    "after 'fields.'");
		if (j - i - 1 > NAME_MAX_LEN)
			return perr(p, (int)i + 1, "field name too long");
		if (intern(p, "fields.", s + i + 1, j - i - 1, &sj->idx) < 0)
			return -1;
		p->at = j;
		p->t.len = (int)j - p->t.pos;
	} else {
		if (lex(p) < 0)
			return -1;
		if (p->t.kind != T_LB)
			return perr(p, p->t.pos, "expected '.name' or "
			    "'[\"name\"]' after 'fields'");
		if (lex(p) < 0)
			return -1;
		if (p->t.kind != T_STR || p->t.slen == 0 ||
		    p->t.slen > NAME_MAX_LEN || memchr(p->t.str, 0, p->t.slen))
			return perr(p, p->t.pos, "expected a field name in "
			    "quotes after 'fields['");
		if (intern(p, "fields.", p->t.str, p->t.slen, &sj->idx) < 0 ||
		    lex(p) < 0)
			return -1;
		if (p->t.kind != T_RB)
			return perr(p, p->t.pos, "expected ']' after the field "
			    "name");
	}
	sj->name = p->c->names[sj->idx] + strlen("fields.");
	return lex(p);
}

/* One side of a comparison (before its types are checked). */
struct operand {
	int is_subj;
	int minus_now;          /* `now - FIELD` (or `age`) */
	struct subject subj;
	struct value val;
	int pos;
};

/* Durations added to a time: now - 7d + 2h. */
static int
parse_offsets(struct parser *p, struct operand *o)
{
	char buf[48];

	while (p->t.kind == T_PLUS || p->t.kind == T_MINUS) {
		int minus = p->t.kind == T_MINUS, first = o->val.num == 0;
		struct token sign = p->t;

		if (lex(p) < 0)
			return -1;
		if (p->t.kind == T_DUR) {
			o->val.num += minus ? -p->t.num : p->t.num;
			if (lex(p) < 0)
				return -1;
			continue;
		}
		if (minus && first && o->val.kind == V_NOW &&
		    p->t.kind == T_IDENT) {
			o->is_subj = o->minus_now = 1;
			return parse_field(p, &o->subj, "a field after 'now -'");
		}
		return perr(p, p->t.pos, "expected a duration (such as 7d) "
		    "after '%c', found %s", p->src[sign.pos],
		    tokdesc(p, &p->t, buf, sizeof(buf)));
	}
	return 0;
}

static int
parse_operand(struct parser *p, struct operand *o, const char *op)
{
	char buf[48], pb[48];

	memset(o, 0, sizeof(*o));
	o->pos = o->val.pos = p->t.pos;
	switch (p->t.kind) {
	case T_IDENT:
		if (is_kw(p, "now")) {
			o->val.kind = V_NOW;
			return lex(p) < 0 ? -1 : parse_offsets(p, o);
		}
		o->is_subj = 1;
		if (is_kw(p, "age")) {
			o->minus_now = 1;
			o->subj.kind = SUBJ_FIELD;
			if (intern(p, "", "created_at", 10, &o->subj.idx) < 0)
				return -1;
			o->subj.name = p->c->names[o->subj.idx];
			return lex(p);
		}
		if (is_kw(p, "hour") || is_kw(p, "weekday")) {
			o->subj.kind = is_kw(p, "hour") ? SUBJ_HOUR : SUBJ_WEEKDAY;
			return lex(p);
		}
		if (is_kw(p, "true") || is_kw(p, "false")) {
			o->is_subj = 0;
			o->val.kind = V_BOOL;
			o->val.num = is_kw(p, "true");
			return lex(p);
		}
		if (is_kw(p, "null"))
			return perr(p, p->t.pos, "null is not a value: test a "
			    "missing field with 'not exists x'");
		break;
	case T_NUM:
		o->val.kind = V_NUM;
		o->val.num = p->t.num;
		return lex(p);
	case T_MINUS:
		if (lex(p) < 0)
			return -1;
		if (p->t.kind != T_NUM)
			return perr(p, p->t.pos, "expected a number after '-'");
		o->val.kind = V_NUM;
		o->val.num = -p->t.num;
		return lex(p);
	case T_STR:
		o->val.kind = V_STR;
		o->val.str = p->t.str;
		o->val.len = p->t.slen;
		return lex(p);
	case T_DUR:
		o->val.kind = V_DUR;
		o->val.num = p->t.num;
		return lex(p);
	case T_TIME:
		o->val.kind = V_TIME;
		o->val.num = p->t.num;
		return lex(p) < 0 ? -1 : parse_offsets(p, o);
	case T_LB:
		return perr(p, p->t.pos, "a list [...] can only follow 'in'");
	default:
		break;
	}
	if (p->t.kind == T_IDENT && (!is_reserved(p) || is_kw(p, "fields"))) {
		o->is_subj = 1;
		return parse_field(p, &o->subj, "a field");
	}
	if (op)
		return perr(p, p->t.pos, "expected a value after '%s', found %s",
		    op, tokdesc(p, &p->t, buf, sizeof(buf)));
	if (p->ntok <= 1 && p->t.kind == T_END)
		return perr(p, p->t.pos, "empty condition");
	if (p->ntok <= 1)
		return perr(p, p->t.pos, "expected a condition, found %s",
		    tokdesc(p, &p->t, buf, sizeof(buf)));
	return perr(p, p->t.pos, "expected a condition after %s, found %s",
	    tokdesc(p, &p->prev, pb, sizeof(pb)),
	    tokdesc(p, &p->t, buf, sizeof(buf)));
}

static int
parse_list(struct parser *p, struct value *v)
{
	struct value items[COND_MAX_LIST];
	int open = p->t.pos, neg, line, col;
	char buf[48];
	size_t n = 0;

	v->kind = V_LIST;
	if (lex(p) < 0)
		return -1;
	while (p->t.kind != T_RB && p->t.kind != T_END) {
		struct value *it = &items[n];

		if (n == COND_MAX_LIST)
			return perr(p, p->t.pos, "list longer than %d items",
			    COND_MAX_LIST);
		memset(it, 0, sizeof(*it));
		it->pos = p->t.pos;
		if ((neg = p->t.kind == T_MINUS) && lex(p) < 0)
			return -1;
		if (p->t.kind == T_NUM) {
			it->kind = V_NUM;
			it->num = neg ? -p->t.num : p->t.num;
		} else if (p->t.kind == T_STR && !neg) {
			it->kind = V_STR;
			it->str = p->t.str;
			it->len = p->t.slen;
		} else if ((is_kw(p, "true") || is_kw(p, "false")) && !neg) {
			it->kind = V_BOOL;
			it->num = is_kw(p, "true");
		} else if (p->t.kind == T_END) {
			break;
		} else {
			return perr(p, p->t.pos, "a list holds numbers, strings, "
			    "true or false; found %s",
			    tokdesc(p, &p->t, buf, sizeof(buf)));
		}
		n++;
		if (lex(p) < 0)
			return -1;
		if (p->t.kind == T_COMMA) {
			if (lex(p) < 0)
				return -1;
		} else if (p->t.kind != T_RB && p->t.kind != T_END) {
			return perr(p, p->t.pos, "expected ',' or ']' in the "
			    "list, found %s", tokdesc(p, &p->t, buf, sizeof(buf)));
		}
	}
	if (p->t.kind == T_END) {
		linecol(p, open, &line, &col);
		return perr(p, p->t.pos, "expected ']' to close the '[' at "
		    "%d:%d, found the end of the condition", line, col);
	}
	if (n == 0)
		return perr(p, p->t.pos, "empty list");
	if (!(v->items = c_alloc(p->c, n * sizeof(*items))))
		return nomem(p);
	memcpy(v->items, items, n * sizeof(*items));
	v->nitems = n;
	return lex(p);
}

static enum op
flip(enum op op)
{
	switch (op) {
	case OP_LT: return OP_GT;
	case OP_LE: return OP_GE;
	case OP_GT: return OP_LT;
	case OP_GE: return OP_LE;
	default: return op;
	}
}

/* Check v (an item if in a list) against subject kind and operator. */
static int
check_value(struct parser *p, const struct subject *sj, enum op op,
    struct value *v)
{
	static const char *const days[] = { "mon", "tue", "wed", "thu", "fri",
		"sat", "sun", "monday", "tuesday", "wednesday", "thursday",
		"friday", "saturday", "sunday" };
	size_t i;

	if (v->kind == V_STR)
		for (i = 0; i < v->len; i++)
			v->str[i] = (char)fold((unsigned char)v->str[i]);
	if (v->kind == V_DUR)
		return perr(p, v->pos, "a duration is not a time: compare with "
		    "'now - 7d', or write 'now - x > 7d'");
	if (sj->kind == SUBJ_HOUR) {
		if (v->kind != V_NUM || op == OP_CONTAINS || op == OP_MATCHES)
			return perr(p, v->pos, "hour is a number 0-23");
		if ((op == OP_EQ || op == OP_NE || op == OP_IN) &&
		    (v->num < 0 || v->num > 23 || v->num != (int)v->num))
			return perr(p, v->pos, "hour is a whole number 0-23");
		return 0;
	}
	if (sj->kind == SUBJ_WEEKDAY) {
		if (v->kind != V_STR || op == OP_CONTAINS || op == OP_MATCHES)
			return perr(p, v->pos, "weekday is compared with a day "
			    "name: \"mon\" .. \"sun\"");
		for (i = 0; i < 14; i++)
			if (!strcmp(v->str, days[i]))
				break;
		if (i == 14)
			return perr(p, v->pos, "unknown weekday \"%s\" (use mon, "
			    "tue, wed, thu, fri, sat, sun)", v->str);
		v->kind = V_NUM;
		v->num = (double)(i % 7 + 1);
		return 0;
	}
	if ((op == OP_CONTAINS || op == OP_MATCHES) && v->kind != V_STR)
		return perr(p, v->pos, "'%s' needs a string", op_names[op]);
	if (op == OP_MATCHES && !glob_valid(v->str))
		return perr(p, v->pos, "bad pattern: unterminated '[', a "
		    "reversed range or a trailing '\\'");
	if (v->kind == V_BOOL && op != OP_EQ && op != OP_NE && op != OP_IN)
		return perr(p, v->pos, "'%s' does not apply to true or false",
		    op_names[op]);
	if (v->kind == V_STR)
		v->isnum = numstr(v->str, v->len, &v->strnum);
	return 0;
}

static struct node *
parse_cmp(struct parser *p)
{
	struct operand l, r, tmp;
	struct node *n;
	enum op op;
	int oppos;
	size_t i;
	char buf[48];

	if (parse_operand(p, &l, NULL) < 0)
		return NULL;
	oppos = p->t.pos;
	if (p->t.kind == T_CMP)
		op = p->t.op;
	else if (is_kw(p, "in"))
		op = OP_IN;
	else if (is_kw(p, "contains"))
		op = OP_CONTAINS;
	else if (is_kw(p, "matches"))
		op = OP_MATCHES;
	else if (!l.is_subj && l.val.kind == V_BOOL) {
		if (!(n = c_alloc(p->c, sizeof(*n))))
			return nomem(p), NULL;
		n->kind = N_CONST;
		n->truth = l.val.num != 0;
		return n;
	} else if (l.is_subj && !l.minus_now && l.subj.kind <= SUBJ_CUSTOM) {
		int w = p->prev.pos + p->prev.len - l.pos;

		w = w > 40 ? 40 : w;
		if (p->t.kind == T_END || p->t.kind == T_RP || is_kw(p, "and") ||
		    is_kw(p, "or"))
			return perr(p, p->t.pos, "expected an operator after "
			    "'%.*s', found %s (to test that it is set, write "
			    "'exists %.*s')", w, p->src + l.pos,
			    tokdesc(p, &p->t, buf, sizeof(buf)), w,
			    p->src + l.pos), NULL;
		return perr(p, p->t.pos, "expected an operator (==, !=, <, <=, "
		    ">, >=, in, contains, matches) after '%.*s', found %s", w,
		    p->src + l.pos, tokdesc(p, &p->t, buf, sizeof(buf))), NULL;
	} else {
		return perr(p, p->t.pos, "expected an operator (==, !=, <, <=, "
		    ">, >=, in, contains, matches), found %s",
		    tokdesc(p, &p->t, buf, sizeof(buf))), NULL;
	}
	if (lex(p) < 0)
		return NULL;
	if (op == OP_IN) {
		memset(&r, 0, sizeof(r));
		if (p->t.kind != T_LB)
			return perr(p, p->t.pos, "expected a list after 'in', "
			    "such as [\"a\", \"b\"]"), NULL;
		if (parse_list(p, &r.val) < 0)
			return NULL;
	} else if (parse_operand(p, &r, op_names[op]) < 0) {
		return NULL;
	}
	if (l.is_subj && r.is_subj)
		return perr(p, r.pos, "compare a field with a value, not with "
		    "another field"), NULL;
	if (!l.is_subj && !r.is_subj)
		return perr(p, l.pos, "one side of '%s' must be a field, hour or "
		    "weekday", op_names[op]), NULL;
	if (r.is_subj) {
		if (op >= OP_IN)
			return perr(p, l.pos, "the left side of '%s' must be a "
			    "field", op_names[op]), NULL;
		tmp = l, l = r, r = tmp;
		op = flip(op);
	}
	if (l.minus_now) {
		if (op >= OP_IN)
			return perr(p, oppos, "'%s' does not apply to a time "
			    "difference", op_names[op]), NULL;
		if (r.val.kind != V_DUR)
			return perr(p, r.pos, "a time difference compares with a "
			    "duration, such as 2h"), NULL;
		r.val.kind = V_NOW;
		r.val.num = -r.val.num;
		op = flip(op);
	}
	if (r.val.kind == V_LIST) {
		for (i = 0; i < r.val.nitems; i++)
			if (check_value(p, &l.subj, op, &r.val.items[i]) < 0)
				return NULL;
	} else if (check_value(p, &l.subj, op, &r.val) < 0) {
		return NULL;
	}
	if (!(n = c_alloc(p->c, sizeof(*n))))
		return nomem(p), NULL;
	if (l.subj.kind == SUBJ_HOUR || l.subj.kind == SUBJ_WEEKDAY)
		p->c->uses_local = 1;
	n->kind = N_CMP;
	n->subj = l.subj;
	n->op = op;
	n->val = r.val;
	return n;
}

static struct node *parse_expr(struct parser *p, int is_or);

static struct node *
parse_unary(struct parser *p)
{
	struct node *n, *kid;
	int open, line, col;
	char buf[48];

	if (is_kw(p, "not") || p->t.kind == T_LP) {
		if (++p->depth > COND_MAX_DEPTH)
			return perr(p, p->t.pos, "nested too deeply (more than "
			    "%d levels)", COND_MAX_DEPTH), NULL;
		open = p->t.pos;
		if (p->t.kind == T_LP) {
			if (lex(p) < 0 || !(n = parse_expr(p, 1)))
				return NULL;
			if (p->t.kind != T_RP) {
				linecol(p, open, &line, &col);
				return perr(p, p->t.pos, "expected ')' to close "
				    "the '(' at %d:%d, found %s", line, col,
				    tokdesc(p, &p->t, buf, sizeof(buf))), NULL;
			}
		} else {
			if (lex(p) < 0 || !(kid = parse_unary(p)))
				return NULL;
			if (!(n = c_alloc(p->c, sizeof(*n))))
				return nomem(p), NULL;
			n->kind = N_NOT;
			n->kid = kid;
			p->depth--;
			return n;
		}
		p->depth--;
		return lex(p) < 0 ? NULL : n;
	}
	if (is_kw(p, "exists")) {
		if (!(n = c_alloc(p->c, sizeof(*n))))
			return nomem(p), NULL;
		n->kind = N_EXISTS;
		if (lex(p) < 0 || parse_field(p, &n->subj,
		    "a field after 'exists'") < 0)
			return NULL;
		return n;
	}
	return parse_cmp(p);
}

/* An `or` chain of `and` chains (is_or), or an `and` chain of unaries. */
static struct node *
parse_expr(struct parser *p, int is_or)
{
	struct node *first, *n, *last, *k;
	const char *kw = is_or ? "or" : "and";

	if (!(first = is_or ? parse_expr(p, 0) : parse_unary(p)))
		return NULL;
	if (!is_kw(p, kw))
		return first;
	if (!(n = c_alloc(p->c, sizeof(*n))))
		return nomem(p), NULL;
	n->kind = is_or ? N_OR : N_AND;
	n->kid = last = first;
	while (is_kw(p, kw)) {
		if (lex(p) < 0 || !(k = is_or ? parse_expr(p, 0) : parse_unary(p)))
			return NULL;
		last->next = k;
		last = k;
	}
	return n;
}

int
cond_parse(const char *src, struct cond **out, struct cond_error *err)
{
	struct parser p;
	char buf[48];

	memset(&p, 0, sizeof(p));
	p.src = src;
	p.err = err;
	if (err)
		memset(err, 0, sizeof(*err));
	if (strlen(src) > COND_MAX_SRC) {
		p.src = "";
		return perr(&p, 0, "condition longer than %d bytes",
		    COND_MAX_SRC);
	}
	if (!(p.c = calloc(1, sizeof(*p.c))))
		return perr(&p, 0, "out of memory");
	if (lex(&p) == 0 && (p.c->root = parse_expr(&p, 1)) != NULL &&
	    p.t.kind != T_END) {
		if (p.t.kind == T_RP)
			perr(&p, p.t.pos, "unexpected ')' without a matching '('");
		else
			perr(&p, p.t.pos, "unexpected %s after a complete "
			    "condition (missing 'and' or 'or'?)",
			    tokdesc(&p, &p.t, buf, sizeof(buf)));
	}
	if (p.failed) {
		cond_free(p.c);
		return -1;
	}
	*out = p.c;
	return 0;
}

void
cond_fields(const struct cond *c, void (*fn)(void *arg, const char *name),
    void *arg)
{
	size_t i;

	for (i = 0; i < c->nnames; i++)
		fn(arg, c->names[i]);
}

void
cond_error_show(const char *src, const struct cond_error *err,
    struct buf *out)
{
	size_t start = 0, end, i, off = (size_t)err->offset;

	if (off > strlen(src))
		off = strlen(src);
	for (i = 0; i < off; i++)
		if (src[i] == '\n')
			start = i + 1;
	for (end = start; src[end] && src[end] != '\n'; end++)
		;
	buf_append(out, src + start, end - start);
	buf_putc(out, '\n');
	for (i = start; i < off; i++)
		buf_putc(out, src[i] == '\t' ? '\t' : ' ');
	buf_puts(out, "^\n");
}

/* ---- evaluation --------------------------------------------------------- */

struct ectx {
	const json_t *lead;
	double now;
	double hour, wday;      /* local time, if the condition uses it */
};

static const json_t *
field_get(const struct ectx *x, const struct subject *s)
{
	const json_t *o = x->lead, *v;

	if (s->kind == SUBJ_CUSTOM)
		o = json_object_get(o, "fields");
	if (!json_is_object(o) || !(v = json_object_get(o, s->name)))
		return NULL;
	return json_is_null(v) ? NULL : v;
}

/* Does op hold for a difference of sign d (2: incomparable)? */
static int
holds(enum op op, int d)
{
	if (d == 2)
		return 0;
	switch (op) {
	case OP_EQ: case OP_IN: return d == 0;
	case OP_NE: return d != 0;
	case OP_LT: return d < 0;
	case OP_LE: return d <= 0;
	case OP_GT: return d > 0;
	case OP_GE: return d >= 0;
	default: return 0;
	}
}

static int
num_diff(double a, double b)
{
	if (isnan(a) || isnan(b))
		return 2;
	return (a > b) - (a < b);
}

static int
field_time(const json_t *f, double *t)
{
	if (json_is_number(f))
		return *t = json_number_value(f), 1;
	return json_is_string(f) && json_string_length(f) > 0 &&
	    iso_parse(json_string_value(f), json_string_length(f), 1, t) ==
	    json_string_length(f);
}

static int
eval_cmp1(const struct ectx *x, const struct node *n, const json_t *f,
    const struct value *v)
{
	double a;

	if (n->subj.kind == SUBJ_HOUR || n->subj.kind == SUBJ_WEEKDAY)
		return holds(n->op, num_diff(n->subj.kind == SUBJ_HOUR ?
		    x->hour : x->wday, v->num));
	if (!f)
		return 0;
	switch (v->kind) {
	case V_NUM:
		if (json_is_number(f))
			a = json_number_value(f);
		else if (!json_is_string(f) || !numstr(json_string_value(f),
		    json_string_length(f), &a))
			return 0;
		return holds(n->op, num_diff(a, v->num));
	case V_STR:
		if (json_is_string(f))
			return holds(n->op, fold_cmp(json_string_value(f),
			    json_string_length(f), v->str, v->len));
		if (json_is_number(f) && v->isnum)
			return holds(n->op, num_diff(json_number_value(f),
			    v->strnum));
		return 0;
	case V_BOOL:
		return json_is_boolean(f) &&
		    holds(n->op, json_is_true(f) != (v->num != 0));
	case V_TIME:
	case V_NOW:
		return field_time(f, &a) && holds(n->op, num_diff(a,
		    v->kind == V_NOW ? x->now + v->num : v->num));
	default:
		return 0;
	}
}

static int
eval_node(const struct ectx *x, const struct node *n)
{
	const struct node *k;
	const json_t *f = NULL, *e;
	size_t i;

	switch (n->kind) {
	case N_CONST:
		return n->truth;
	case N_AND:
		for (k = n->kid; k; k = k->next)
			if (!eval_node(x, k))
				return 0;
		return 1;
	case N_OR:
		for (k = n->kid; k; k = k->next)
			if (eval_node(x, k))
				return 1;
		return 0;
	case N_NOT:
		return !eval_node(x, n->kid);
	case N_EXISTS:
		f = field_get(x, &n->subj);
		return f && !(json_is_string(f) && json_string_length(f) == 0);
	case N_CMP:
		break;
	}
	if (n->subj.kind == SUBJ_FIELD || n->subj.kind == SUBJ_CUSTOM)
		if (!(f = field_get(x, &n->subj)))
			return 0;
	switch (n->op) {
	case OP_IN:
		for (i = 0; i < n->val.nitems; i++)
			if (eval_cmp1(x, n, f, &n->val.items[i]))
				return 1;
		return 0;
	case OP_CONTAINS:
		if (json_is_string(f))
			return fold_find(json_string_value(f),
			    json_string_length(f), n->val.str, n->val.len);
		json_array_foreach(f, i, e)
			if (json_is_string(e) && fold_cmp(json_string_value(e),
			    json_string_length(e), n->val.str, n->val.len) == 0)
				return 1;
		return 0;
	case OP_MATCHES:
		return json_is_string(f) && glob_match(n->val.str,
		    json_string_value(f), json_string_length(f));
	default:
		return eval_cmp1(x, n, f, &n->val);
	}
}

int
cond_eval(const struct cond *c, const json_t *lead,
    const struct cond_env *env)
{
	struct ectx x;
	time_t now = env ? env->now : time(NULL);
	struct tm tm;

	memset(&x, 0, sizeof(x));
	x.lead = lead;
	x.now = (double)now;
	if (c->uses_local) {
		if (cond_localtime(env ? env->tz : NULL, now, &tm, NULL) < 0)
			return -1;
		x.hour = tm.tm_hour;
		x.wday = tm.tm_wday == 0 ? 7 : tm.tm_wday;
	}
	return eval_node(&x, c->root);
}

/* ---- SQL -----------------------------------------------------------------
 *
 * Every comparison becomes COALESCE(..., FALSE), so NULL (a missing field)
 * is false and NOT inverts exactly as in C. A field is read through a
 * "view" of the type the value asks for, which is NULL when the field holds
 * another type; strings are compared after lower(x COLLATE "C"), which
 * folds ASCII only, like fold(); numbers as float8, like double.
 */

enum want { W_STR, W_NUM, W_NUMONLY, W_TIME, W_BOOL };

struct sqlx {
	const struct cond *c;
	const struct cond_sqlmap *map;
	struct buf *b;
	struct cond_params *pr;
	int next;
	double now;
	const char *tz;
	int now_p, tz_p;
	int *key_p;             /* per name: parameter of a custom key */
	char *err;
	size_t errn;
};

static int sqlerr(struct sqlx *x, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int
sqlerr(struct sqlx *x, const char *fmt, ...)
{
	va_list ap;

	if (x->err && x->errn) {
		va_start(ap, fmt);
		vsnprintf(x->err, x->errn, fmt, ap);
		va_end(ap);
	}
	return -1;
}

static int param(struct sqlx *x, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Add a parameter; returns its number, or -1. */
static int
param(struct sqlx *x, const char *fmt, ...)
{
	struct buf tb = BUF_INIT;
	struct cond_params *pr = x->pr;
	va_list ap;
	char **nv;
	int r;

	if (x->next > PARAM_MAX)
		return sqlerr(x, "too many SQL parameters");
	if (pr->n == pr->cap) {
		size_t ncap = pr->cap ? pr->cap * 2 : 16;

		if (!(nv = realloc(pr->v, ncap * sizeof(*nv))))
			return sqlerr(x, "out of memory");
		pr->v = nv;
		pr->cap = ncap;
	}
	va_start(ap, fmt);
	r = buf_vprintf(&tb, fmt, ap);
	va_end(ap);
	if (r < 0 || !(pr->v[pr->n] = buf_steal(&tb))) {
		buf_free(&tb);
		return sqlerr(x, "out of memory");
	}
	pr->n++;
	return x->next++;
}

static const struct cond_sqlcol *
col_find(const struct cond_sqlmap *m, const char *name)
{
	size_t i;

	for (i = 0; i < m->ncols; i++)
		if (strcmp(m->cols[i].name, name) == 0)
			return &m->cols[i];
	return NULL;
}

/* Resolve a subject: its column (NULL for custom and local time), with the
 * parameters it needs allocated. */
static int
sql_subject(struct sqlx *x, const struct subject *s,
    const struct cond_sqlcol **col)
{
	*col = NULL;
	switch (s->kind) {
	case SUBJ_FIELD:
		if (!(*col = col_find(x->map, s->name)))
			return sqlerr(x, "unknown field '%s'", s->name);
		return 0;
	case SUBJ_CUSTOM:
		if (!x->map->custom_expr)
			return sqlerr(x, "custom field 'fields.%s' is not "
			    "available here", s->name);
		if (!x->key_p[s->idx] &&
		    (x->key_p[s->idx] = param(x, "%s", s->name)) < 0)
			return -1;
		return 0;
	default:
		if (!x->now_p && (x->now_p = param(x, "%.17g", x->now)) < 0)
			return -1;
		if (!x->tz_p && (x->tz_p = param(x, "%s", x->tz)) < 0)
			return -1;
		return 0;
	}
}

/* SQL turning text expression e into epoch seconds when it has the TIME
 * form, else NULL: the SQL twin of iso_parse(). */
static void
sql_iso(struct sqlx *x, const char *e, int key)
{
	buf_puts(x->b, "(SELECT ((make_date(m[1]::int, m[2]::int, 1) - "
	    "make_date(1970, 1, 1))::bigint * 86400 + (m[3]::int - 1) * 86400 "
	    "+ coalesce(m[4]::int, 0) * 3600 + coalesce(m[5]::int, 0) * 60 + "
	    "coalesce(m[6]::int, 0) - CASE m[9] WHEN '-' THEN -1 ELSE 1 END * "
	    "(coalesce(m[10]::int, 0) * 3600 + coalesce(m[11]::int, 0) * 60))"
	    "::float8 + coalesce(m[7]::float8, 0) FROM regexp_match(");
	if (key)
		buf_printf(x->b, "(%s ->> $%d::text)", e, key);
	else
		buf_printf(x->b, "(%s)", e);
	buf_puts(x->b, ", '" RE_ISO "') AS cond_iso(m))");
}

/* Can subject s (column col, NULL if custom) hold a value of type w? */
static int
view_ok(const struct subject *s, const struct cond_sqlcol *col, enum want w)
{
	if (s->kind == SUBJ_HOUR || s->kind == SUBJ_WEEKDAY)
		return w == W_NUM;
	if (!col)
		return 1;
	switch (col->type) {
	case COND_SQL_TEXT:
		return w == W_STR || w == W_NUM || w == W_TIME;
	case COND_SQL_NUMERIC:
	case COND_SQL_TIME:
		return w == W_NUM || w == W_NUMONLY || w == W_TIME;
	case COND_SQL_BOOL:
		return w == W_BOOL;
	}
	return 0;
}

/* Write the view of type w of subject s, for which view_ok() holds. */
static void
sql_view(struct sqlx *x, const struct subject *s,
    const struct cond_sqlcol *col, enum want w)
{
	static const char *const tname[] = { "string", "number", "number",
		"number", "boolean" };
	struct buf *b = x->b;
	const char *e = col ? col->expr : x->map->custom_expr;
	int k = col ? 0 : x->key_p[s->idx];

	if (s->kind == SUBJ_HOUR || s->kind == SUBJ_WEEKDAY) {
		buf_printf(b, "EXTRACT(%s FROM (to_timestamp($%d::float8) AT TIME "
		    "ZONE $%d::text))::float8", s->kind == SUBJ_HOUR ? "hour" :
		    "isodow", x->now_p, x->tz_p);
	} else if (!col) {
		if (w == W_NUM || w == W_TIME)
			buf_printf(b, "CASE jsonb_typeof(%s -> $%d::text) WHEN "
			    "'number' THEN (%s ->> $%d::text)::float8 WHEN "
			    "'string' THEN ", e, k, e, k);
		else
			buf_printf(b, "CASE WHEN jsonb_typeof(%s -> $%d::text) = "
			    "'%s' THEN ", e, k, tname[w]);
		if (w == W_STR)
			buf_printf(b, "lower((%s ->> $%d::text) COLLATE \"C\")", e, k);
		else if (w == W_NUM)
			buf_printf(b, "CASE WHEN (%s ->> $%d::text) ~ '" RE_NUM
			    "' THEN (%s ->> $%d::text)::float8 END", e, k, e, k);
		else if (w == W_TIME)
			sql_iso(x, e, k);
		else
			buf_printf(b, "(%s ->> $%d::text)::%s", e, k,
			    w == W_BOOL ? "boolean" : "float8");
		buf_puts(b, " END");
	} else if (col->type == COND_SQL_TEXT) {
		if (w == W_STR)
			buf_printf(b, "lower((%s) COLLATE \"C\")", e);
		else if (w == W_NUM)
			buf_printf(b, "CASE WHEN (%s) ~ '" RE_NUM "' THEN "
			    "(%s)::float8 END", e, e);
		else
			sql_iso(x, e, 0);
	} else if (col->type == COND_SQL_NUMERIC) {
		buf_printf(b, "(%s)::float8", e);
	} else if (col->type == COND_SQL_TIME) {
		buf_printf(b, "EXTRACT(epoch FROM (%s))::float8", e);
	} else {
		buf_printf(b, "(%s)", e);
	}
}

/* COALESCE((view) OP $p::cast, FALSE) with val as $p, or FALSE if the
 * subject cannot hold type w (then no parameter is added). */
static int
sql_leaf(struct sqlx *x, const struct subject *s,
    const struct cond_sqlcol *col, enum want w, const char *op,
    const char *val, const char *cast)
{
	int p;

	if (!view_ok(s, col, w))
		return buf_puts(x->b, "FALSE"), 0;
	if ((p = param(x, "%s", val)) < 0)
		return -1;
	buf_puts(x->b, "COALESCE((");
	sql_view(x, s, col, w);
	buf_printf(x->b, ")%s %s $%d::%s, FALSE)",
	    w == W_STR ? " COLLATE \"C\"" : "", op, p, cast);
	return 0;
}

static int
sql_cmp(struct sqlx *x, const struct node *n, const struct value *v)
{
	const struct cond_sqlcol *col;
	const struct subject *s = &n->subj;
	enum op o = n->op == OP_IN ? OP_EQ : n->op;
	struct buf re = BUF_INIT;
	char num[40];
	int p, r;

	if (sql_subject(x, s, &col) < 0)
		return -1;
	if (o == OP_CONTAINS && !col) {
		const char *e = x->map->custom_expr;
		int k = x->key_p[s->idx];

		if ((p = param(x, "%s", v->str)) < 0)
			return -1;
		buf_printf(x->b, "COALESCE(CASE jsonb_typeof(%s -> $%d::text) "
		    "WHEN 'string' THEN strpos(lower((%s ->> $%d::text) COLLATE "
		    "\"C\"), $%d::text) > 0 WHEN 'array' THEN EXISTS (SELECT 1 "
		    "FROM jsonb_array_elements(%s -> $%d::text) AS cond_e(v) "
		    "WHERE jsonb_typeof(cond_e.v) = 'string' AND lower((cond_e.v "
		    "#>> '{}') COLLATE \"C\") = $%d::text) END, FALSE)",
		    e, k, e, k, p, e, k, p);
		return 0;
	}
	if (o == OP_CONTAINS) {
		if (!view_ok(s, col, W_STR))
			return buf_puts(x->b, "FALSE"), 0;
		if ((p = param(x, "%s", v->str)) < 0)
			return -1;
		buf_puts(x->b, "COALESCE(strpos(");
		sql_view(x, s, col, W_STR);
		buf_printf(x->b, ", $%d::text) > 0, FALSE)", p);
		return 0;
	}
	if (o == OP_MATCHES) {
		glob_regex(&re, v->str);
		r = re.overflow ? sqlerr(x, "out of memory") :
		    sql_leaf(x, s, col, W_STR, "~", buf_str(&re), "text");
		buf_free(&re);
		return r;
	}
	switch (v->kind) {
	case V_NUM:
		snprintf(num, sizeof(num), "%.17g", v->num);
		return sql_leaf(x, s, col, W_NUM, op_sql[o], num, "float8");
	case V_BOOL:
		return sql_leaf(x, s, col, W_BOOL, op_sql[o],
		    v->num != 0 ? "true" : "false", "boolean");
	case V_TIME:
	case V_NOW:
		snprintf(num, sizeof(num), "%.17g", v->kind == V_NOW ?
		    x->now + v->num : v->num);
		if (!col || col->type != COND_SQL_TIME)
			return sql_leaf(x, s, col, W_TIME, op_sql[o], num, "float8");
		if ((p = param(x, "%s", num)) < 0)
			return -1;
		buf_printf(x->b, "COALESCE((%s) %s to_timestamp($%d::float8), "
		    "FALSE)", col->expr, op_sql[o], p);
		return 0;
	case V_STR:
		if (!v->isnum || (col && col->type == COND_SQL_TEXT))
			return sql_leaf(x, s, col, W_STR, op_sql[o], v->str, "text");
		snprintf(num, sizeof(num), "%.17g", v->strnum);
		if (col)
			return sql_leaf(x, s, col, W_NUMONLY, op_sql[o], num,
			    "float8");
		/* A custom field holding either the string or the number. */
		buf_putc(x->b, '(');
		if (sql_leaf(x, s, col, W_STR, op_sql[o], v->str, "text") < 0)
			return -1;
		buf_puts(x->b, " OR ");
		if (sql_leaf(x, s, col, W_NUMONLY, op_sql[o], num, "float8") < 0)
			return -1;
		buf_putc(x->b, ')');
		return 0;
	default:
		return sqlerr(x, "internal error: bad value");
	}
}

static int
sql_node(struct sqlx *x, const struct node *n)
{
	const struct cond_sqlcol *col;
	const struct node *k;
	const char *e;
	size_t i;

	switch (n->kind) {
	case N_CONST:
		buf_puts(x->b, n->truth ? "TRUE" : "FALSE");
		return 0;
	case N_AND:
	case N_OR:
		buf_putc(x->b, '(');
		for (k = n->kid; k; k = k->next) {
			if (k != n->kid)
				buf_puts(x->b, n->kind == N_AND ? " AND " : " OR ");
			if (sql_node(x, k) < 0)
				return -1;
		}
		buf_putc(x->b, ')');
		return 0;
	case N_NOT:
		buf_puts(x->b, "(NOT ");
		if (sql_node(x, n->kid) < 0)
			return -1;
		buf_putc(x->b, ')');
		return 0;
	case N_EXISTS:
		if (sql_subject(x, &n->subj, &col) < 0)
			return -1;
		e = col ? col->expr : x->map->custom_expr;
		if (!col)
			buf_printf(x->b, "COALESCE(jsonb_typeof(%s -> $%d::text) <> "
			    "'null' AND (jsonb_typeof(%s -> $%d::text) <> 'string' "
			    "OR length(%s ->> $%d::text) > 0), FALSE)", e,
			    x->key_p[n->subj.idx], e, x->key_p[n->subj.idx], e,
			    x->key_p[n->subj.idx]);
		else if (col->type == COND_SQL_TEXT)
			buf_printf(x->b, "COALESCE(length(%s) > 0, FALSE)", e);
		else
			buf_printf(x->b, "((%s) IS NOT NULL)", e);
		return 0;
	case N_CMP:
		if (n->op != OP_IN)
			return sql_cmp(x, n, &n->val);
		buf_putc(x->b, '(');
		for (i = 0; i < n->val.nitems; i++) {
			if (i)
				buf_puts(x->b, " OR ");
			if (sql_cmp(x, n, &n->val.items[i]) < 0)
				return -1;
		}
		buf_putc(x->b, ')');
		return 0;
	}
	return -1;
}

int
cond_to_sql(const struct cond *c, const struct cond_sqlmap *map,
    const struct cond_env *env, int *next_param, struct buf *sql,
    struct cond_params *params, char *err, size_t n)
{
	struct sqlx x;
	size_t mark = sql->len, pmark = params->n;
	int r = -1, overflow = sql->overflow;
	char tzerr[100];

	memset(&x, 0, sizeof(x));
	x.c = c;
	x.map = map;
	x.b = sql;
	x.pr = params;
	x.next = *next_param;
	x.now = (double)(env ? env->now : time(NULL));
	x.tz = env && env->tz ? env->tz : "UTC";
	x.err = err;
	x.errn = n;
	if (c->uses_local && cond_tz_check(x.tz, tzerr, sizeof(tzerr)) < 0)
		sqlerr(&x, "%s", tzerr);
	else if (!(x.key_p = calloc(c->nnames + 1, sizeof(*x.key_p))))
		sqlerr(&x, "out of memory");
	else if (sql_node(&x, c->root) < 0)
		;
	else if (sql->overflow)
		sqlerr(&x, "SQL text too long");
	else
		r = 0;
	free(x.key_p);
	if (r == 0) {
		*next_param = x.next;
		return 0;
	}
	if (sql->data) {
		sql->len = mark;
		sql->data[mark] = '\0';
	}
	sql->overflow = overflow;
	while (params->n > pmark)
		free(params->v[--params->n]);
	return -1;
}

void
cond_params_free(struct cond_params *p)
{
	size_t i;

	for (i = 0; i < p->n; i++)
		free(p->v[i]);
	free(p->v);
	p->v = NULL;
	p->n = p->cap = 0;
}
