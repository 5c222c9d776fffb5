/*
 * cli_csv - CSV records with their line numbers, header mapping, rows as
 * lead objects, and the batch loop of the CLI's imports. See cli_csv.h.
 *
 * Records are found by a small scanner that follows the quoting the way
 * libcsv does in strict mode (a quote opens a quoted field only at the
 * start of a field; "" inside one is a quote), so a record's first line is
 * known exactly even when quoted fields hold newlines, a record is bounded
 * before it is parsed, and a badly quoted line spoils only itself. Each
 * record is then split into fields by libcsv.
 */
#include "config.h"
#include "cli_csv.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lead.h"

static const struct { const char *alias, *field; } aliases[] = {
	{ "e_mail", "email" }, { "email_address", "email" }, { "mail", "email" },
	{ "e_mail_address", "email" }, { "mail_address", "email" },
	{ "emailaddress", "email" }, { "work_email", "email" },
	{ "first", "first_name" }, { "firstname", "first_name" },
	{ "given_name", "first_name" }, { "forename", "first_name" },
	{ "last", "last_name" }, { "lastname", "last_name" },
	{ "surname", "last_name" }, { "family_name", "last_name" },
	{ "zip", "postal_code" }, { "zipcode", "postal_code" },
	{ "zip_code", "postal_code" }, { "postcode", "postal_code" },
	{ "post_code", "postal_code" }, { "postal", "postal_code" },
	{ "state", "region" }, { "province", "region" },
	{ "organization", "company" }, { "organisation", "company" },
	{ "company_name", "company" }, { "account", "company" },
	{ "account_name", "company" }, { "job_title", "title" },
	{ "position", "title" }, { "mobile", "phone" }, { "telephone", "phone" },
	{ "phone_number", "phone" }, { "tel", "phone" }, { "cell", "phone" },
	{ "mobile_phone", "phone" }, { "mobile_number", "phone" },
	{ "cell_phone", "phone" }, { "phone_no", "phone" },
	{ "employees", "company_size" }, { "number_of_employees", "company_size" },
	{ "lang", "language" }, { "timezone", "time_zone" }, { "tz", "time_zone" },
	{ "lead_source", "source" }, { "utm_campaign", "campaign" },
};

void
cli_csv_normalize(const char *in, char *out, size_t n)
{
	size_t o = 0;
	int sep = 0;

	if (n == 0)
		return;
	for (; *in && o + 1 < n; in++) {
		unsigned char c = (unsigned char)*in;

		if (isalnum(c)) {
			if (sep && o)
				out[o++] = '_';
			sep = 0;
			if (o + 1 < n)
				out[o++] = (char)tolower(c);
		} else {
			sep = 1;
		}
	}
	out[o] = '\0';
}

/* A normalized name as a standard field or alias, or NULL. */
static const char *
standard(const char *norm)
{
	const struct lead_field *lf = lead_field(norm);

	if (lf)
		return lf->name;
	for (size_t k = 0; k < sizeof(aliases) / sizeof(aliases[0]); k++)
		if (strcmp(aliases[k].alias, norm) == 0)
			return aliases[k].field;
	return NULL;
}

/* "fields.NAME" for a usable custom field name (normalized), else "". */
static void
custom(const char *norm, char *out, size_t n)
{
	if (*norm && isalpha((unsigned char)norm[0]) &&
	    strlen(norm) <= LEAD_MAX_CUSTOM_NAME)
		snprintf(out, n, "fields.%s", norm);
	else
		snprintf(out, n, "%s", "");
}

void
cli_csv_map_column(const char *header, char *out, size_t n)
{
	char norm[CLI_CSV_FIELD_MAX];
	const char *f;

	cli_csv_normalize(header, norm, sizeof(norm));
	if ((f = standard(norm)))
		snprintf(out, n, "%s", f);
	else if (strcmp(norm, "fields") == 0)
		snprintf(out, n, "%s", "fields");
	else
		custom(norm, out, n);
}

int
cli_csv_map_target(const char *target, char *out, size_t n)
{
	char norm[CLI_CSV_FIELD_MAX];
	const char *f;

	while (isspace((unsigned char)*target))
		target++;
	if (!*target || !strcmp(target, "-")) {
		snprintf(out, n, "%s", "");
		return 0;
	}
	if (!strncmp(target, "fields.", 7)) {
		cli_csv_normalize(target + 7, norm, sizeof(norm));
		custom(norm, out, n);
		return *out ? 0 : -1;
	}
	cli_csv_normalize(target, norm, sizeof(norm));
	if ((f = standard(norm))) {
		snprintf(out, n, "%s", f);
		return 0;
	}
	if (!strcmp(norm, "fields")) {
		snprintf(out, n, "%s", "fields");
		return 0;
	}
	return -1;
}

/* s without the spaces around it, in out. */
static void
trim(const char *s, size_t len, char *out, size_t n)
{
	while (len && isspace((unsigned char)*s))
		s++, len--;
	while (len && isspace((unsigned char)s[len - 1]))
		len--;
	snprintf(out, n, "%.*s", (int)len, s);
}

int
cli_csv_header_map(struct cli_csv_header *h, char *const *names, int n,
    const char *map, char *warn, size_t wn, char *err, size_t en)
{
	int mapped[CLI_CSV_MAX_COLS] = { 0 };
	size_t wo = 0;

	if (warn && wn)
		*warn = '\0';
	if (n > CLI_CSV_MAX_COLS) {
		snprintf(err, en, "more than %d columns", CLI_CSV_MAX_COLS);
		return -1;
	}
	h->ncols = n;
	for (int i = 0; i < n; i++)
		cli_csv_map_column(names[i], h->field[i], sizeof(h->field[i]));
	/* --map "Column=field,Other=field" */
	for (const char *p = map; p && *p;) {
		const char *end = strchr(p, ','), *eq;
		char col[256], colnorm[CLI_CSV_FIELD_MAX], tgt[256];
		char f[CLI_CSV_FIELD_MAX];
		size_t len = end ? (size_t)(end - p) : strlen(p);
		int found = 0;

		eq = memchr(p, '=', len);
		trim(p, eq ? (size_t)(eq - p) : len, col, sizeof(col));
		if (!eq || !*col) {
			trim(p, len, col, sizeof(col));
			snprintf(err, en, "--map: '%s' is not Column=field", col);
			return -1;
		}
		trim(eq + 1, len - (size_t)(eq + 1 - p), tgt, sizeof(tgt));
		if (cli_csv_map_target(tgt, f, sizeof(f)) < 0) {
			snprintf(err, en, "--map: '%s' is no lead field (a custom "
			    "field is fields.NAME: letters, digits, _)", tgt);
			return -1;
		}
		cli_csv_normalize(col, colnorm, sizeof(colnorm));
		for (int i = 0; i < n; i++) {
			char hn[CLI_CSV_FIELD_MAX];

			cli_csv_normalize(names[i], hn, sizeof(hn));
			if (strcmp(hn, colnorm) == 0) {
				snprintf(h->field[i], sizeof(h->field[i]), "%s", f);
				mapped[i] = 1;
				found = 1;
			}
		}
		if (!found) {
			snprintf(err, en, "--map: the file has no column '%s'", col);
			return -1;
		}
		p = end ? end + 1 : p + len;
	}
	for (int i = 0; i < n; i++) {
		if (!*h->field[i]) {
			if (!mapped[i] && warn && wo < wn)
				wo += (size_t)snprintf(warn + wo, wn - wo, "column %d "
				    "('%.64s') is skipped: no usable name\n", i + 1,
				    names[i]);
			if (wo >= wn)
				wo = wn;
			continue;
		}
		for (int j = 0; j < i; j++) {
			if (strcmp(h->field[i], h->field[j]) == 0) {
				snprintf(err, en, "columns %d ('%.64s') and %d "
				    "('%.64s') both map to %s: say which with --map "
				    "'Column=field'", j + 1, names[j], i + 1, names[i],
				    h->field[i]);
				return -1;
			}
		}
	}
	return 0;
}

int
cli_csv_header_has(const struct cli_csv_header *h, const char *field)
{
	for (int i = 0; i < h->ncols; i++)
		if (!strcmp(h->field[i], field))
			return 1;
	return 0;
}

json_t *
cli_csv_row(const struct cli_csv_header *h, char *const *vals, int n,
    char *field, size_t fn, char *msg, size_t mn)
{
	json_t *row = json_object(), *fields = NULL;

	for (int i = 0; i < n && i < h->ncols; i++) {
		const char *f = h->field[i], *v = vals[i];
		json_t *s;

		if (!*f || !*v)
			continue;
		if (!strcmp(f, "fields")) {
			json_t *o = json_loads(v, JSON_REJECT_DUPLICATES, NULL);

			if (!json_is_object(o)) {
				json_decref(o);
				snprintf(field, fn, "%s", "fields");
				snprintf(msg, mn, "%s", "not a JSON object");
				goto bad;
			}
			if (!fields)
				fields = json_object();
			json_object_update_missing(fields, o);
			json_decref(o);
			continue;
		}
		if (!(s = json_string(v))) {
			snprintf(field, fn, "%s", f);
			snprintf(msg, mn, "%s", "not valid UTF-8");
			goto bad;
		}
		if (!strncmp(f, "fields.", 7)) {
			if (!fields)
				fields = json_object();
			json_object_set_new(fields, f + 7, s);
		} else {
			json_object_set_new(row, f, s);
		}
	}
	if (fields)
		json_object_set_new(row, "fields", fields);
	return row;
bad:
	json_decref(fields);
	json_decref(row);
	return NULL;
}

/* ---- reading records ----------------------------------------------------- */

enum { S_START, S_FIELD, S_UNQUOTED, S_QUOTED, S_QUOTE };

int
cli_csv_open(struct cli_csv_reader *r, FILE *f)
{
	memset(r, 0, sizeof(*r));
	r->f = f;
	if (!(r->rec = malloc(CLI_CSV_MAX_RECORD + 2)))
		return -1;
	if (csv_init(&r->p, CSV_STRICT | CSV_APPEND_NULL) != 0) {
		free(r->rec);
		r->rec = NULL;
		return -1;
	}
	return 0;
}

static void
free_vals(struct cli_csv_reader *r)
{
	for (int i = 0; i < r->nvals; i++)
		free(r->vals[i]);
	r->nvals = 0;
	r->extra_cols = 0;
}

void
cli_csv_close(struct cli_csv_reader *r)
{
	if (!r->rec)
		return;
	free_vals(r);
	csv_free(&r->p);
	free(r->rec);
	r->rec = NULL;
}

static void
on_field(void *s, size_t len, void *data)
{
	struct cli_csv_reader *r = data;

	if (r->nvals < CLI_CSV_MAX_COLS)
		r->vals[r->nvals++] = strndup(s ? s : "", s ? len : 0);
	else
		r->extra_cols = 1;
}

static void
on_record(int c, void *data)
{
	struct cli_csv_reader *r = data;

	(void)c;
	r->nrec++;
}

/* The next byte; a UTF-8 byte order mark at the start is dropped. */
static int
next_byte(struct cli_csv_reader *r)
{
	int c = getc(r->f);

	if (!r->started) {
		r->started = 1;
		if (c == 0xef) {
			int c2 = getc(r->f), c3 = c2 == 0xbb ? getc(r->f) : EOF;

			if (c2 == 0xbb && c3 == 0xbf) {
				r->done += 3;
				c = getc(r->f);
			} else {
				/* not a BOM: put back what can be put back; a lone
				 * 0xef 0xbb is no CSV anyone writes */
				if (c3 != EOF)
					ungetc(c3, r->f);
				else if (c2 != EOF && c2 != 0xbb)
					ungetc(c2, r->f);
			}
		}
	}
	if (c != EOF)
		r->done++;
	return c;
}

/* Split the raw record into r->vals with libcsv. 0, or -1 (err). */
static int
split(struct cli_csv_reader *r, char *err, size_t en)
{
	r->nrec = 0;
	if (csv_parse(&r->p, r->rec, r->len, on_field, on_record, r) != r->len ||
	    csv_fini(&r->p, on_field, on_record, r) != 0) {
		if (csv_error(&r->p) == CSV_EPARSE)
			snprintf(err, en, "%s", "malformed CSV: a quote out of place "
			    "(quote the whole field, and double the quotes in it)");
		else
			snprintf(err, en, "malformed CSV: %s", csv_strerror(
			    csv_error(&r->p)));
		csv_free(&r->p);
		csv_init(&r->p, CSV_STRICT | CSV_APPEND_NULL);
		return -1;
	}
	if (r->nrec != 1) {
		snprintf(err, en, "%s", "malformed CSV: a quote out of place "
		    "(quote the whole field, and double the quotes in it)");
		return -1;
	}
	if (r->extra_cols) {
		snprintf(err, en, "more than %d columns", CLI_CSV_MAX_COLS);
		return -1;
	}
	return 0;
}

enum cli_csv_result
cli_csv_read(struct cli_csv_reader *r, long *line, char *err, size_t en)
{
	int c, too_long = 0, nul = 0;

	free_vals(r);
	r->len = 0;
	r->state = S_START;
	*line = r->line + 1;
	for (;;) {
		int end = 0;

		c = next_byte(r);
		if (c == EOF) {
			if (ferror(r->f))
				return CLI_CSV_IOERR;
			if (r->state == S_START)
				return CLI_CSV_EOF;
			if (r->state == S_QUOTED) {
				r->state = S_START;
				snprintf(err, en, "%s", "a quoted field is not closed "
				    "before the end of the file");
				return CLI_CSV_BAD;
			}
			break;
		}
		if (r->state == S_START) {
			if (c == '\n' || c == '\r') {
				if (c == '\r' && (c = next_byte(r)) != '\n' && c != EOF) {
					ungetc(c, r->f);
					r->done--;
				}
				r->line++;
				*line = r->line + 1;
				continue;
			}
			r->state = S_FIELD;
		}
		if (r->len < CLI_CSV_MAX_RECORD)
			r->rec[r->len++] = (char)c;
		else
			too_long = 1;
		if (c == '\0')
			nul = 1;
		switch (r->state) {
		case S_FIELD:
			if (c == '"')
				r->state = S_QUOTED;
			else if (c == '\n' || c == '\r')
				end = 1;
			else if (c != ' ' && c != '\t' && c != ',')
				r->state = S_UNQUOTED;
			break;
		case S_UNQUOTED:
			if (c == ',')
				r->state = S_FIELD;
			else if (c == '\n' || c == '\r')
				end = 1;
			break;
		case S_QUOTED:
			if (c == '"')
				r->state = S_QUOTE;
			break;
		case S_QUOTE:
			if (c == '"')
				r->state = S_QUOTED;
			else if (c == ',')
				r->state = S_FIELD;
			else if (c == '\n' || c == '\r')
				end = 1;
			else if (c != ' ' && c != '\t')
				r->state = S_UNQUOTED;  /* libcsv will say what */
			break;
		}
		if (c == '\n' || c == '\r') {
			if (c == '\r') {
				int c2 = next_byte(r);

				if (c2 == '\n') {
					if (r->len < CLI_CSV_MAX_RECORD)
						r->rec[r->len++] = '\n';
				} else if (c2 != EOF) {
					ungetc(c2, r->f);
					r->done--;
				}
			}
			r->line++;
		}
		if (end)
			break;
	}
	r->state = S_START;
	if (too_long) {
		snprintf(err, en, "record longer than %d KiB",
		    CLI_CSV_MAX_RECORD / 1024);
		return CLI_CSV_BAD;
	}
	if (nul) {
		snprintf(err, en, "%s", "a NUL byte in the record");
		return CLI_CSV_BAD;
	}
	if (split(r, err, en) < 0) {
		free_vals(r);
		return CLI_CSV_BAD;
	}
	return CLI_CSV_RECORD;
}

/* ---- the import loop ----------------------------------------------------- */

static void
progress(struct cli_import *im, const struct cli_csv_reader *r, int final)
{
	int pct, w = 30;

	if (!im->tty || im->size <= 0)
		return;
	pct = (int)(100 * (r->done < im->size ? r->done : im->size) / im->size);
	fprintf(im->out, "\r[%-*.*s] %3d%%  %ld rows", w, pct * w / 100,
	    "##############################", pct, im->records);
	if (final)
		fputc('\n', im->out);
	fflush(im->out);
}

static void
reject(struct cli_import *im, long line, const char *field, const char *msg)
{
	json_t *e = json_pack("{s:I, s:s, s:s}", "line", (json_int_t)line,
	    "field", field ? field : "", "message", msg ? msg : "rejected");

	if (e)
		json_array_append_new(im->errors, e);
	im->rejected++;
	if (im->quiet)
		return;
	if (im->tty && im->size > 0)
		fputs("\r\033[K", im->out);     /* over the progress bar */
	fprintf(im->out, "%s:%ld: %s%s%s\n", im->file, line,
	    field ? field : "", field && *field ? ": " : "",
	    msg ? msg : "rejected");
}

/* Send the batch. 0, or -1 when the daemon did not take it. */
static int
flush(struct cli_import *im)
{
	json_t *doc = NULL, *e;
	size_t i;
	int status;

	if (im->n == 0)
		return 0;
	status = im->post(im, im->rows, &doc);
	if (status != 200) {
		if (status > 0 && im->refused)
			im->refused(im, status, doc);
		json_decref(doc);
		return -1;
	}
	for (size_t k = 0; k < 4 && im->count_keys[k]; k++)
		im->counts[k] += (long)json_integer_value(json_object_get(doc,
		    im->count_keys[k]));
	json_array_foreach(json_object_get(doc, "errors"), i, e) {
		json_t *idx = json_object_get(e, im->error_key);
		json_int_t k = json_integer_value(idx);

		reject(im, json_is_integer(idx) && k >= 0 && (size_t)k < im->n ?
		    im->lines[k] : 0L, json_string_value(json_object_get(e,
		    "field")), json_string_value(json_object_get(e, "message")));
	}
	json_decref(doc);
	json_array_clear(im->rows);
	im->n = 0;
	return 0;
}

/* Read and map the header row. 0, or -1 (said why). */
static int
header(struct cli_import *im, struct cli_csv_reader *r,
    struct cli_csv_header *h)
{
	char err[512], warn[4096];
	long line;
	enum cli_csv_result res;
	size_t k;

	res = cli_csv_read(r, &line, err, sizeof(err));
	if (res == CLI_CSV_EOF) {
		fprintf(im->out, "%s: empty file: a header row is needed\n",
		    im->file);
		return -1;
	}
	if (res == CLI_CSV_IOERR) {
		fprintf(im->out, "%s: %s\n", im->file, strerror(errno));
		return -1;
	}
	if (res == CLI_CSV_BAD) {
		fprintf(im->out, "%s:%ld: %s\n", im->file, line, err);
		return -1;
	}
	if (cli_csv_header_map(h, r->vals, r->nvals, im->map, warn,
	    sizeof(warn), err, sizeof(err)) < 0) {
		fprintf(im->out, "%s:%ld: %s\n", im->file, line, err);
		return -1;
	}
	for (char *p = warn, *nl; *p; p = nl + 1) {
		if (!(nl = strchr(p, '\n')))
			break;
		fprintf(im->out, "%s:%ld: %.*s\n", im->file, line, (int)(nl - p),
		    p);
	}
	for (k = 0; im->need && im->need[k]; k++)
		if (cli_csv_header_has(h, im->need[k]))
			return 0;
	if (k == 0)
		return 0;
	fprintf(im->out, "%s:%ld: no ", im->file, line);
	for (size_t j = 0; j < k; j++)
		fprintf(im->out, "%s%s", j ? " or " : "", im->need[j]);
	fprintf(im->out, " column (name one with --map 'Column=%s')\n",
	    im->need[0]);
	return -1;
}

int
cli_import_run(struct cli_import *im, FILE *f)
{
	struct cli_csv_reader r;
	struct cli_csv_header *h;
	char err[512], field[CLI_CSV_FIELD_MAX], msg[256];
	long line;

	im->records = im->rejected = 0;
	memset(im->counts, 0, sizeof(im->counts));
	im->stopped = 0;
	im->errors = json_array();
	im->rows = json_array();
	im->lines = calloc(CLI_CSV_BATCH, sizeof(*im->lines));
	im->n = 0;
	h = calloc(1, sizeof(*h));
	if (!im->errors || !im->rows || !im->lines || !h ||
	    cli_csv_open(&r, f) < 0) {
		fprintf(im->out, "%s: out of memory\n", im->file);
		free(h);
		im->stopped = 1;
		return -1;
	}
	if (header(im, &r, h) < 0) {
		im->stopped = 1;
		goto out;
	}
	for (;;) {
		enum cli_csv_result res = cli_csv_read(&r, &line, err,
		    sizeof(err));
		json_t *row;

		if (res == CLI_CSV_EOF)
			break;
		if (res == CLI_CSV_IOERR) {
			fprintf(im->out, "%s:%ld: %s\n", im->file, line,
			    strerror(errno));
			im->stopped = 1;
			break;
		}
		if (res == CLI_CSV_RECORD && r.nvals == 1 && !*r.vals[0] &&
		    h->ncols != 1)
			continue;       /* a line of spaces */
		im->records++;
		if (res == CLI_CSV_BAD) {
			reject(im, line, "", err);
		} else if (r.nvals != h->ncols) {
			snprintf(msg, sizeof(msg), "%d columns, the header has %d",
			    r.nvals, h->ncols);
			reject(im, line, "", msg);
		} else if (!(row = cli_csv_row(h, r.vals, r.nvals, field,
		    sizeof(field), msg, sizeof(msg)))) {
			reject(im, line, field, msg);
		} else {
			im->lines[im->n++] = line;
			json_array_append_new(im->rows, row);
			if (im->n == CLI_CSV_BATCH && flush(im) < 0) {
				im->stopped = 1;
				break;
			}
		}
		if (im->records % 250 == 0)
			progress(im, &r, 0);
	}
	if (!im->stopped && flush(im) < 0)
		im->stopped = 1;
	progress(im, &r, 1);
out:
	cli_csv_close(&r);
	free(h);
	json_decref(im->rows);
	im->rows = NULL;
	free(im->lines);
	im->lines = NULL;
	return im->stopped ? -1 : 0;
}

void
cli_import_free(struct cli_import *im)
{
	json_decref(im->errors);
	im->errors = NULL;
}
