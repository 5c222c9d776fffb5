/*
 * cond - the one condition language of leadcast.
 *
 * Routing rules, scoring rules, campaign audiences and drip conditions all
 * use it. A condition is parsed once (cond_parse) into an immutable
 * struct cond, then evaluated against a lead (cond_eval) or compiled into
 * a parameterized SQL WHERE fragment (cond_to_sql) that selects the same
 * leads. The module does no I/O except reading time zone files from the
 * system tz database (TZDIR or /usr/share/zoneinfo), does no logging, and
 * knows nothing of which lead fields exist: cond_fields() lists the names
 * a condition uses so that config loading can check them.
 *
 * Syntax
 *     country in ["US", "CA"] and budget >= 10000
 *     score > 50 and not (source == "partner")
 *     email matches "*@acme.com" or fields.plan == "enterprise"
 *     exists phone and title contains "director"
 *     hour >= 9 and hour < 17 and weekday in ["mon", "tue", "wed"]
 *     created_at < now - 7d          (same as: age > 7d)
 *
 *   expr     := expr or expr | expr and expr | not expr | ( expr )
 *             | exists FIELD | true | false | comparison
 *   comparison := SUBJECT (== | != | < | <= | > | >=) VALUE
 *             | SUBJECT in [ LITERAL, ... ] | FIELD contains STRING
 *             | FIELD matches GLOB       (the sides of ==..>= may be swapped)
 *   FIELD    := name | fields.name | fields["any name"]
 *   SUBJECT  := FIELD | hour | weekday | now - FIELD | age
 *   VALUE    := number | string | true | false | TIME | now [(+|-) DURATION]...
 *   TIME     := 2024-05-01 | 2024-05-01T09:30:00Z | ...T09:30:00-04:00
 *
 * Precedence: not > and > or. Keywords are case-insensitive, field names
 * are not. Strings use "..." or '...' with escapes \\ \" \' \n \t.
 * Numbers: 10000, -2.5, 1e6. Durations: a whole number and a unit s, m,
 * h, d or w, possibly combined (1h30m). Whitespace includes newlines.
 *
 * Names. `name` is the lead's top-level key `name` (a standard field such
 * as email, country, score, created_at); `fields.name` is the key under the
 * lead's "fields" object (custom fields). `hour` (0-23) and `weekday` (mon
 * .. sun, full names accepted) are the current local time in the
 * environment's time zone. `now` is the environment's current time; `age`
 * means `now - created_at`. Reserved: and or not in contains matches exists
 * now age hour weekday true false null fields.
 *
 * Types and comparisons. Values are numbers, strings, booleans, times
 * (seconds since the epoch) and durations (seconds). A lead field is
 * missing when absent or JSON null: then every comparison is false
 * (including !=), `exists` is false, and `not` inverts as usual. `exists x`
 * is also false for an empty string. Comparisons between mismatched types
 * are false, never errors. Where a value's type is known at parse time,
 * nonsense is a parse error (hour == "x", weekday == "funday", x > true,
 * x == 7d, x contains 5, comparing two fields with each other).
 *   - Strings compare case-insensitively in ASCII (a-z = A-Z; other
 *     characters exactly, byte order for < and >). `contains` is a
 *     case-insensitive substring test; on a JSON array it is true when some
 *     string element equals the value (case-insensitively).
 *   - `matches` is a case-insensitive glob over the whole string: * any run,
 *     ? one character (code point), [abc] [a-z] [!abc] (or [^abc]) a set,
 *     \x a literal x (in a condition string that is "\\x", or use [*]).
 *   - A number against a string: the string is converted when it is a plain
 *     decimal number (-?D+(.D+)?(e[+-]?D{1,2})?, at most 30 digits each
 *     side of the point, no spaces), else the comparison is false.
 *   - A time value (now, now - 7d, a TIME literal) against a field: the
 *     field is a time when it holds a number (epoch seconds) or a string in
 *     the TIME form, where a space may stand for the T. A date alone is
 *     00:00 UTC, a time without an offset is UTC, seconds may have up to 9
 *     decimals, and days past a month's end roll over (02-30 is 03-01).
 *   - `now - FIELD op DURATION` is rewritten `FIELD op' now - DURATION`.
 *   - `x in [a, b]` is `x == a or x == b`.
 *   - `hour` is a whole number 0-23 and `weekday` a day name (mon .. sun,
 *     ordered so); both take == != < <= > >= and in.
 *
 * Limits: COND_MAX_SRC bytes of source, COND_MAX_DEPTH nested parentheses
 * or `not`, COND_MAX_LIST list items.
 *
 * Thread safety: a struct cond is immutable; cond_eval and cond_to_sql may
 * run on it from several threads at once. Local time is computed from the
 * tz database files read and cached by this module (under a mutex, loaded
 * once per zone and process: a tzdata upgrade needs a restart), never
 * through setenv("TZ")/tzset/localtime. A zone name must be a file under
 * the tz directory ("America/Detroit", "UTC"); POSIX TZ strings are not
 * accepted. LC_NUMERIC must be "C" (numbers use strtod and printf).
 */
#ifndef LEADCAST_COND_H
#define LEADCAST_COND_H

#include <stddef.h>
#include <time.h>

#include <jansson.h>

#include "buf.h"

#define COND_MAX_SRC    8192    /* bytes of condition source */
#define COND_MAX_DEPTH  32      /* nested parentheses and `not` */
#define COND_MAX_LIST   256     /* items in one [ ] list */

struct cond;            /* a compiled condition, immutable */

struct cond_error {
	int offset;             /* 0-based byte offset into the source */
	int line;               /* 1-based */
	int col;                /* 1-based, in bytes */
	char msg[200];          /* ends with " at LINE:COL" */
};

/*
 * Parse src (NUL-terminated). Returns 0 and sets *out, which the caller
 * frees with cond_free(); or -1 with *err filled (err may be NULL).
 */
int cond_parse(const char *src, struct cond **out, struct cond_error *err);
void cond_free(struct cond *c);

/*
 * Call fn once for each distinct lead field the condition reads, in order
 * of first use: standard fields by name ("country"), custom fields as
 * "fields.NAME". `age` reads "created_at".
 */
void cond_fields(const struct cond *c,
    void (*fn)(void *arg, const char *name), void *arg);

/*
 * Write src's line holding the error and a caret under the column into out
 * (two lines, each ending in "\n"), for messages shown to people.
 */
void cond_error_show(const char *src, const struct cond_error *err,
    struct buf *out);

/* The environment of an evaluation: the current time and time zone. */
struct cond_env {
	time_t now;
	const char *tz;         /* zone name such as "America/Detroit"; NULL = UTC */
};

/*
 * Evaluate c against lead, a JSON object: standard fields at the top level,
 * custom fields in the object "fields", timestamps as epoch seconds or
 * ISO-8601 strings (see above). env NULL means now = time(NULL), UTC.
 * Returns 1 (true) or 0 (false); -1 only when c uses hour or weekday and
 * env->tz cannot be loaded (check zones beforehand with cond_tz_check).
 */
int cond_eval(const struct cond *c, const json_t *lead,
    const struct cond_env *env);

/*
 * Parse s, the whole of it, in the TIME form of conditions ("2024-05-01",
 * "2024-05-01T09:30:00Z", "2024-05-01 09:30:00.5+02:00", see above) into
 * seconds since the epoch (fractions dropped). For times given in API
 * parameters, so that they read as in conditions. 0, or -1 if s is not a
 * TIME.
 */
int cond_parse_time(const char *s, time_t *t);

/* 0 if tz names a usable zone (NULL and "UTC" always are); else -1 and a
 * message in err. */
int cond_tz_check(const char *tz, char *err, size_t n);

/*
 * Thread-safe localtime: fill *tm (tm_year .. tm_isdst; not tm_gmtoff or
 * tm_zone) for t in zone tz (NULL = UTC), and *utoff (may be NULL) with
 * the offset from UTC in seconds. Returns 0, or -1 for an unknown zone
 * (or t beyond 3 million years).
 */
int cond_localtime(const char *tz, time_t t, struct tm *tm, long *utoff);

/*
 * SQL. The map names, for each standard field, the SQL expression holding
 * it and its type; custom fields come from the jsonb expression custom_expr
 * (NULL: custom fields are an error). For cond_eval to agree with the SQL,
 * the lead JSON must hold TEXT columns as strings, NUMERIC as numbers, TIME
 * as epoch-second numbers and BOOL as true/false, and `fields` as the
 * jsonb object. Expressions are trusted SQL and spliced as given.
 */
enum cond_sqltype { COND_SQL_TEXT, COND_SQL_NUMERIC, COND_SQL_TIME,
	COND_SQL_BOOL };

struct cond_sqlcol {
	const char *name;       /* field name in conditions: "country" */
	const char *expr;       /* SQL expression: "l.country" */
	enum cond_sqltype type; /* text, a number type, timestamptz, boolean */
};

struct cond_sqlmap {
	const struct cond_sqlcol *cols;
	size_t ncols;
	const char *custom_expr;        /* jsonb expression, e.g. "l.fields" */
};

/* Query parameters in text form, $1 = v[0] when starting at 1. Zero-
 * initialize; the caller frees with cond_params_free(). */
struct cond_params {
	char **v;
	size_t n, cap;
};

/*
 * Append to sql a boolean SQL expression (never NULL-valued) that is true
 * for exactly the rows whose lead cond_eval(c, lead, env) finds true.
 * Placeholders are numbered from *next_param, which is advanced; their
 * values are appended to params. No value, custom field name or time zone
 * of the condition is ever spliced into the text. env NULL as in
 * cond_eval; env->now is a parameter (the SQL does not use now()).
 * Returns 0; or -1 with a message in err (unknown field, custom fields
 * unavailable, unknown time zone, output limit of sql), sql, params and
 * *next_param then being as they were.
 */
int cond_to_sql(const struct cond *c, const struct cond_sqlmap *map,
    const struct cond_env *env, int *next_param, struct buf *sql,
    struct cond_params *params, char *err, size_t n);
void cond_params_free(struct cond_params *p);

#endif
