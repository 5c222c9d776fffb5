/*
 * cli_fmt - text for people and values for URLs in the leadcast CLI:
 * aligned tables, JSON scalars and times as text, human durations (850ms,
 * 12s, 4m), --since arguments (a date or a duration back from now) as
 * ISO 8601 UTC, and query-string escaping. Pure: no network, no
 * configuration (tests/unit/test_cli_fmt.c).
 */
#ifndef LEADCAST_CLI_FMT_H
#define LEADCAST_CLI_FMT_H

#include <jansson.h>
#include <stdio.h>
#include <time.h>

#define CLI_TABLE_MAX_COLS 16

/* A table printed with each column as wide as its widest cell. */
struct cli_table {
	int ncols;
	const char *head[CLI_TABLE_MAX_COLS];
	int right[CLI_TABLE_MAX_COLS];  /* right-aligned (numbers) */
	char **cells;                   /* nrows * ncols, owned */
	size_t nrows, cap;
};

/* head: ncols column titles (borrowed: they must outlive the table);
 * align: one letter a column, 'l' or 'r'. */
void cli_table_init(struct cli_table *t, int ncols, const char *const *head,
    const char *align);
/* A row of ncols cells (copied; NULL shows as "-"). 0, or -1 out of
 * memory. */
int cli_table_add(struct cli_table *t, const char *const *cells);
/* Columns two spaces apart, no spaces at the ends of lines. */
void cli_table_print(const struct cli_table *t, FILE *f);
void cli_table_free(struct cli_table *t);

/* A JSON scalar as text: strings as they are, numbers (integers without a
 * decimal point), true/false as yes/no; null or missing as dash (which may
 * be NULL, giving ""). Returns out. */
const char *cli_fmt_scalar(const json_t *v, const char *dash, char *out,
    size_t n);

/* A time from the API (ISO 8601 text or Unix seconds) as "YYYY-MM-DD
 * HH:MM:SS" (UTC kept as the API said it, fractions dropped); dash when
 * missing. Returns out. */
const char *cli_fmt_time(const json_t *v, const char *dash, char *out,
    size_t n);

/* Seconds as a person reads them: 850ms, 1.5s, 12s, 4m30s, 4m, 2h15m,
 * 3d4h; "-" for a negative or non-finite value. Returns out. */
const char *cli_fmt_duration(double seconds, char *out, size_t n);

/*
 * Seconds from a duration: a number and a unit (s, m, h, d, w), several
 * of them in a row ("1d12h"). -1 if it is not one, or is 0 or longer than
 * ten years.
 */
long long cli_fmt_parse_duration(const char *s);

/*
 * A --since argument as ISO 8601 UTC ("2025-03-01T05:00:00Z") in out: a
 * duration back from now ("7d", "24h"), a date (YYYY-MM-DD, midnight
 * local time), a local date and time ("YYYY-MM-DD HH:MM[:SS]"), or ISO
 * 8601 with T and a zone (Z or +HH:MM). 0, or -1 with err filled.
 */
int cli_fmt_since(const char *in, time_t now, char *out, size_t n, char *err,
    size_t en);

/* s escaped for a URL query value (RFC 3986 unreserved characters kept),
 * in out; truncated at a whole escape when out is short. Returns out. */
const char *cli_fmt_query(const char *s, char *out, size_t n);

#endif
