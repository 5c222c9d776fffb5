/*
 * cli_csv - what the CLI's CSV imports (`subscribers import`, `leads
 * import`) share: reading CSV records with the file line each one starts
 * on, mapping a header row to lead fields, turning a record into a lead
 * JSON object, a progress bar, and the loop that sends rows in batches and
 * reports each rejected row as FILE:LINE: field: message.
 *
 * It knows no API: the caller posts a batch (a callback) and counts the
 * answer. It does not print summaries. Nothing here touches the network,
 * so all of it is unit-tested (tests/unit/test_cli_csv.c).
 */
#ifndef LEADCAST_CLI_CSV_H
#define LEADCAST_CLI_CSV_H

#include <csv.h>
#include <jansson.h>
#include <stdio.h>
#include <sys/types.h>

#define CLI_CSV_MAX_RECORD (64 * 1024)  /* bytes of one record, newlines in */
#define CLI_CSV_MAX_COLS   256
#define CLI_CSV_BATCH      1000         /* rows per request */
#define CLI_CSV_FIELD_MAX  80           /* "fields.NAME" */

/* "E-Mail Address" -> "e_mail_address": letters and digits lowercased, any
 * run of other characters one '_', none at the ends. */
void cli_csv_normalize(const char *in, char *out, size_t n);

/*
 * The lead field a column header names, in out: a standard field, through
 * the alias table ("E-mail", "First Name", "Phone Number", "Zip", ...);
 * "fields" (a column of JSON objects, as export writes); "fields.NAME" for
 * any other name starting with a letter; "" (the column is skipped) for a
 * header with no usable name.
 */
void cli_csv_map_column(const char *header, char *out, size_t n);

/*
 * What a --map target ("email", "E-Mail", "fields.plan", "" or "-" to skip
 * the column) means, in out. -1 if it names no lead field.
 */
int cli_csv_map_target(const char *target, char *out, size_t n);

/* The columns of a file, mapped. */
struct cli_csv_header {
	char field[CLI_CSV_MAX_COLS][CLI_CSV_FIELD_MAX];
	int ncols;
};

/*
 * Map a header row (names[0..n-1]) with --map ("Column=field,...", may be
 * NULL). Columns with no usable name are skipped, each with a warning in
 * warn (one line per column, may be NULL). -1 with err filled when --map
 * is malformed, names a column the file does not have or a field that
 * does not exist, or two columns map to one field.
 */
int cli_csv_header_map(struct cli_csv_header *h, char *const *names, int n,
    const char *map, char *warn, size_t wn, char *err, size_t en);
/* Whether some column maps to field. */
int cli_csv_header_has(const struct cli_csv_header *h, const char *field);

/*
 * The lead object of one record (vals[0..n-1], n == h->ncols): empty
 * values left out, "fields.X" columns gathered into "fields". NULL with
 * field and msg filled when a value is unusable (not UTF-8, a "fields"
 * column that is not a JSON object). Caller owns the result.
 */
json_t *cli_csv_row(const struct cli_csv_header *h, char *const *vals, int n,
    char *field, size_t fn, char *msg, size_t mn);

/* ---- reading records ----------------------------------------------------- */

struct cli_csv_reader {
	FILE *f;
	long line;                      /* line terminators read */
	off_t done;                     /* bytes read */
	int state;                      /* where the scanner is in a record */
	char *rec;                      /* the raw record (CLI_CSV_MAX_RECORD) */
	size_t len;
	struct csv_parser p;
	char *vals[CLI_CSV_MAX_COLS];   /* the record's fields, NUL-terminated */
	int nvals, extra_cols;
	int nrec;                       /* records libcsv found in one */
	int started;                    /* the BOM was looked for */
};

/* Read f (the caller opens and closes it). 0, or -1 out of memory. */
int cli_csv_open(struct cli_csv_reader *r, FILE *f);
void cli_csv_close(struct cli_csv_reader *r);

enum cli_csv_result {
	CLI_CSV_RECORD = 1,             /* r->vals[0..r->nvals-1] */
	CLI_CSV_EOF = 0,
	CLI_CSV_BAD = -1,               /* this record is unusable (err); go on */
	CLI_CSV_IOERR = -2,             /* errno */
};

/*
 * The next record, and the line it starts on in *line. Blank lines are
 * skipped. A record may span lines (quoted newlines); one longer than
 * CLI_CSV_MAX_RECORD, with more than CLI_CSV_MAX_COLS fields, a NUL byte
 * or bad quoting is CLI_CSV_BAD and reading goes on after it.
 */
enum cli_csv_result cli_csv_read(struct cli_csv_reader *r, long *line,
    char *err, size_t en);

/* ---- the import loop ----------------------------------------------------- */

struct cli_import {
	/* set by the caller */
	const char *file;               /* the name in messages */
	const char *map;                /* --map, may be NULL */
	const char *const *need;        /* the header must map one of these
	                                   fields (NULL-terminated) */
	/* Send one batch of rows (a JSON array, borrowed): the HTTP status
	 * with the parsed answer in *answer (the loop frees it), or -1 if
	 * there was no answer (message printed). */
	int (*post)(struct cli_import *im, json_t *rows, json_t **answer);
	/* On a status other than 200: print the API error. */
	void (*refused)(struct cli_import *im, int status, json_t *answer);
	const char *error_key;          /* the row index key of the answer's
	                                   errors: "row", "index" */
	const char *count_keys[4];      /* numbers in a 200 answer to add up
	                                   ("created", "merged"), NULL-ended */
	void *arg;                      /* the post callback's */
	FILE *out;                      /* rejected lines, warnings (stderr) */
	int quiet;                      /* no rejected lines on out (--json) */
	int tty;                        /* draw the progress bar on out */
	off_t size;                     /* the file's size, for the bar */
	/* results */
	long records;                   /* data records read */
	long rejected;                  /* lines rejected, here or by the API */
	long counts[4];                 /* the sums of count_keys */
	int stopped;                    /* the run ended early (why printed) */
	json_t *errors;                 /* [{"line","field","message"}] */
	/* private */
	json_t *rows;
	long *lines;
	size_t n;
};

/*
 * Read f to the end (the header row first), sending batches of
 * CLI_CSV_BATCH rows. Returns 0 when the whole file was read and sent, -1
 * when it stopped (a bad header, a read error, a batch refused).
 * im->errors holds every rejected line; the caller frees it
 * (cli_import_free).
 */
int cli_import_run(struct cli_import *im, FILE *f);
void cli_import_free(struct cli_import *im);

#endif
