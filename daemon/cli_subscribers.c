/*
 * cli_subscribers - `leadcast subscribers import FILE.csv --list LIST` and
 * `leadcast subscribers export --list LIST`.
 *
 * Import reads the CSV with libcsv, maps the header to lead fields
 * (common spellings understood, --map to say more, other columns become
 * custom fields), sends rows to the daemon 1000 at a time and reports each
 * rejected row as FILE:LINE: field: message; the good rows are imported.
 * A progress bar is drawn on a terminal. Export pages through the API and
 * writes CSV (custom fields as one JSON column, which import reads back).
 * Exit status: 0 all done, 2 some rows rejected, 1 nothing done.
 */
#include "config.h"
#include "cli.h"

#include <csv.h>
#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf.h"
#include "lead.h"

#define BATCH     1000
#define MAX_LINE  (64 * 1024)           /* bytes of one CSV record */
#define MAX_COLS  256

static const struct { const char *alias, *field; } aliases[] = {
	{ "e_mail", "email" }, { "email_address", "email" }, { "mail", "email" },
	{ "e_mail_address", "email" }, { "mail_address", "email" },
	{ "first", "first_name" }, { "firstname", "first_name" },
	{ "given_name", "first_name" }, { "forename", "first_name" },
	{ "last", "last_name" }, { "lastname", "last_name" },
	{ "surname", "last_name" }, { "family_name", "last_name" },
	{ "zip", "postal_code" }, { "zipcode", "postal_code" },
	{ "zip_code", "postal_code" }, { "postcode", "postal_code" },
	{ "state", "region" }, { "province", "region" },
	{ "organization", "company" }, { "organisation", "company" },
	{ "company_name", "company" }, { "job_title", "title" },
	{ "position", "title" }, { "mobile", "phone" }, { "telephone", "phone" },
	{ "phone_number", "phone" }, { "tel", "phone" },
	{ "employees", "company_size" }, { "lang", "language" },
	{ "timezone", "time_zone" }, { "tz", "time_zone" },
};

/* "E-Mail Address" -> "e_mail_address" */
static void
normalize(const char *in, char *out, size_t n)
{
	size_t o = 0;
	int sep = 0;

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

struct column {
	char field[80];                 /* lead field, "fields.X", "fields", "" */
};

struct importer {
	const char *file;
	struct conf *conf;
	const struct cli_sub_opts *o;
	struct column cols[MAX_COLS];
	int ncols;
	int header_done;
	/* the record being read */
	char *vals[MAX_COLS];
	int nvals;
	size_t record_bytes;
	long line, record_line;
	int record_too_long;
	/* the batch */
	json_t *rows;
	long *lines;
	size_t n;
	/* totals */
	long imported, created, rejected, records;
	int failed;                     /* the daemon could not be reached */
	/* progress */
	off_t size, done;
	int tty;
};

static void
progress(struct importer *im, int final)
{
	int pct, w = 30;

	if (!im->tty || im->size <= 0)
		return;
	pct = (int)(100 * im->done / im->size);
	fprintf(stderr, "\r[%-*.*s] %3d%%  %ld rows", w, pct * w / 100,
	    "##############################", pct, im->records);
	if (final)
		fputc('\n', stderr);
}

static int
map_header(struct importer *im)
{
	char maps[2048] = "";

	if (im->o->map)
		snprintf(maps, sizeof(maps), "%s", im->o->map);
	im->ncols = im->nvals;
	for (int i = 0; i < im->nvals; i++) {
		char norm[80], *m, *save = NULL;
		const char *f = NULL;

		normalize(im->vals[i], norm, sizeof(norm));
		/* --map "Column=field,Other=field" */
		{
			char copy[2048];

			snprintf(copy, sizeof(copy), "%s", maps);
			for (m = strtok_r(copy, ",", &save); m;
			    m = strtok_r(NULL, ",", &save)) {
				char *eq = strchr(m, '='), a[80];

				if (!eq)
					continue;
				*eq = '\0';
				normalize(m, a, sizeof(a));
				if (strcmp(a, norm) == 0) {
					snprintf(im->cols[i].field,
					    sizeof(im->cols[i].field), "%s", eq + 1);
					f = im->cols[i].field;
				}
			}
		}
		if (f)
			continue;
		if (lead_field(norm)) {
			f = norm;
		} else if (strcmp(norm, "fields") == 0) {
			f = "fields";
		} else {
			for (size_t k = 0; k < sizeof(aliases) / sizeof(aliases[0]);
			    k++)
				if (strcmp(aliases[k].alias, norm) == 0)
					f = aliases[k].field;
		}
		if (!f && *norm && isalpha((unsigned char)norm[0])) {
			snprintf(im->cols[i].field, sizeof(im->cols[i].field),
			    "fields.%.64s", norm);
			continue;
		}
		if (!f) {
			fprintf(stderr, "%s:1: column %d ('%s') is skipped: no "
			    "usable name\n", im->file, i + 1, im->vals[i]);
			f = "";
		}
		snprintf(im->cols[i].field, sizeof(im->cols[i].field), "%s", f);
	}
	for (int i = 0; i < im->ncols; i++)
		if (!strcmp(im->cols[i].field, "email"))
			return 0;
	fprintf(stderr, "%s:1: no email column (name one with --map "
	    "'Column=email')\n", im->file);
	return -1;
}

static void
flush(struct importer *im)
{
	json_t *body, *doc = NULL, *e;
	char url[256], *s;
	size_t i;
	int status;

	if (im->n == 0 || im->failed)
		return;
	body = json_pack("{s:O, s:s}", "rows", im->rows, "status",
	    im->o->unconfirmed ? "unconfirmed" : "confirmed");
	s = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	snprintf(url, sizeof(url), "/api/v1/lists/%s/import", im->o->list);
	status = api_call(im->conf, "POST", url, s, 120000, &doc);
	free(s);
	if (status != 200) {
		if (status > 0)
			api_error(status, doc);
		im->failed = 1;
		json_decref(doc);
		return;
	}
	im->imported += (long)json_integer_value(json_object_get(doc,
	    "imported"));
	im->created += (long)json_integer_value(json_object_get(doc,
	    "new_leads"));
	json_array_foreach(json_object_get(doc, "errors"), i, e) {
		size_t idx = (size_t)json_integer_value(json_object_get(e,
		    "index"));

		if (im->tty)
			fputc('\r', stderr);
		fprintf(stderr, "%s:%ld: %s: %s\n", im->file, idx < im->n ?
		    im->lines[idx] : 0L, json_string_value(json_object_get(e,
		    "field")), json_string_value(json_object_get(e, "message")));
		im->rejected++;
	}
	json_decref(doc);
	json_array_clear(im->rows);
	im->n = 0;
}

static void
reject(struct importer *im, const char *field, const char *msg)
{
	if (im->tty)
		fputc('\r', stderr);
	fprintf(stderr, "%s:%ld: %s%s%s\n", im->file, im->record_line, field,
	    *field ? ": " : "", msg);
	im->rejected++;
}

/* libcsv: a field ended */
static void
on_field(void *s, size_t len, void *data)
{
	struct importer *im = data;

	if (im->nvals == 0)
		im->record_line = im->line;
	if (im->nvals < MAX_COLS)
		im->vals[im->nvals++] = strndup(s ? s : "", s ? len : 0);
	im->record_bytes += len;
}

/* libcsv: a record ended */
static void
on_record(int c, void *data)
{
	struct importer *im = data;
	json_t *row;

	(void)c;
	if (!im->header_done) {
		im->header_done = 1;
		if (map_header(im) < 0)
			im->failed = 1;
		goto done;
	}
	im->records++;
	if (im->record_too_long || im->record_bytes > MAX_LINE) {
		reject(im, "", "record longer than 64 KiB");
		goto done;
	}
	if (im->nvals != im->ncols && !(im->nvals == 1 && !*im->vals[0])) {
		char msg[96];

		snprintf(msg, sizeof(msg), "%d columns, the header has %d",
		    im->nvals, im->ncols);
		reject(im, "", msg);
		goto done;
	}
	if (im->nvals == 1 && !*im->vals[0] && im->ncols > 1)
		goto done;      /* a blank line */
	row = json_object();
	for (int i = 0; i < im->nvals; i++) {
		const char *f = im->cols[i].field, *v = im->vals[i];

		if (!*f || !*v)
			continue;
		if (!strcmp(f, "fields")) {
			json_t *o = json_loads(v, 0, NULL);

			if (!json_is_object(o)) {
				json_decref(o);
				json_decref(row);
				reject(im, "fields", "not a JSON object");
				goto done;
			}
			json_object_set_new(row, "fields", o);
		} else if (!strncmp(f, "fields.", 7)) {
			json_t *fo = json_object_get(row, "fields");

			if (!fo) {
				fo = json_object();
				json_object_set_new(row, "fields", fo);
			}
			json_object_set_new(fo, f + 7, json_string(v));
		} else {
			json_object_set_new(row, f, json_string(v));
		}
	}
	im->lines[im->n++] = im->record_line;
	json_array_append_new(im->rows, row);
	if (im->n == BATCH)
		flush(im);
done:
	for (int i = 0; i < im->nvals; i++)
		free(im->vals[i]);
	im->nvals = 0;
	im->record_bytes = 0;
	im->record_too_long = 0;
}

static int
import(const char *path, const char *file, const struct cli_sub_opts *o)
{
	struct importer im;
	struct csv_parser p;
	struct stat st;
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	FILE *f;
	int rc;

	memset(&im, 0, sizeof(im));
	im.file = file;
	im.o = o;
	if (!(f = fopen(file, "r"))) {
		fprintf(stderr, "cannot open %s: %s\n", file, strerror(errno));
		return 1;
	}
	if (!(im.conf = cli_load(path))) {
		fclose(f);
		return 1;
	}
	if (!conf_list_find(im.conf, o->list)) {
		fprintf(stderr, "no list %s in %s\n", o->list, im.conf->path);
		conf_free(im.conf);
		fclose(f);
		return 1;
	}
	im.size = fstat(fileno(f), &st) == 0 ? st.st_size : 0;
	im.tty = isatty(STDERR_FILENO) && !json_out;
	im.rows = json_array();
	im.lines = calloc(BATCH, sizeof(*im.lines));
	csv_init(&p, CSV_STRICT | CSV_APPEND_NULL);
	while (!im.failed && (len = getline(&line, &cap, f)) > 0) {
		im.line++;
		im.done += len;
		if (im.record_bytes > MAX_LINE)
			im.record_too_long = 1;
		if (im.line == 1 && len >= 3 && !memcmp(line, "\xef\xbb\xbf", 3))
			memmove(line, line + 3, (size_t)(len -= 3) + 1);  /* BOM */
		if (csv_parse(&p, line, (size_t)len, on_field, on_record, &im) !=
		    (size_t)len) {
			fprintf(stderr, "%s:%ld: %s\n", file, im.line,
			    csv_strerror(csv_error(&p)));
			im.failed = 1;
			break;
		}
		if (im.line % 1000 == 0)
			progress(&im, 0);
	}
	if (!im.failed)
		csv_fini(&p, on_field, on_record, &im);
	flush(&im);
	progress(&im, 1);
	csv_free(&p);
	free(line);
	fclose(f);
	if (json_out)
		print_json(json_pack("{s:s, s:I, s:I, s:I, s:I, s:b}", "file", file,
		    "rows", (json_int_t)im.records, "imported",
		    (json_int_t)im.imported, "new_leads", (json_int_t)im.created,
		    "rejected", (json_int_t)im.rejected, "complete", !im.failed));
	else
		printf("%s: %ld rows, %ld imported into %s (%ld new leads), %ld "
		    "rejected%s\n", file, im.records, im.imported, o->list,
		    im.created, im.rejected, im.failed ? "; STOPPED early" : "");
	rc = im.failed ? 1 : im.rejected ? 2 : 0;
	json_decref(im.rows);
	free(im.lines);
	conf_free(im.conf);
	return rc;
}

/* ---- export ------------------------------------------------------------------- */

static void
csv_put(FILE *f, const char *s, int last)
{
	if (strpbrk(s, ",\"\r\n")) {
		fputc('"', f);
		for (; *s; s++) {
			if (*s == '"')
				fputc('"', f);
			fputc(*s, f);
		}
		fputc('"', f);
	} else {
		fputs(s, f);
	}
	fputs(last ? "\r\n" : ",", f);
}

static int
export(const char *path, const struct cli_sub_opts *o)
{
	static const char *const extra[] = { "subscription", "subscribed_at",
	    "created_at", "fields" };
	const struct lead_field *lf;
	struct conf *c;
	long long after = 0, count = 0;
	size_t nf;
	FILE *f = stdout;
	int rc = 0;

	if (!(c = cli_load(path)))
		return 1;
	if (o->out && !(f = fopen(o->out, "w"))) {
		fprintf(stderr, "cannot write %s: %s\n", o->out, strerror(errno));
		conf_free(c);
		return 1;
	}
	lf = lead_fields(&nf);
	for (size_t i = 0; i < nf; i++)
		csv_put(f, lf[i].name, 0);
	for (size_t i = 0; i < 4; i++)
		csv_put(f, extra[i], i == 3);
	do {
		char url[512];
		json_t *doc = NULL, *s;
		size_t i;
		int status;

		snprintf(url, sizeof(url), "/api/v1/lists/%s/subscribers?after="
		    "%lld&limit=5000%s%s", o->list, after, o->status ?
		    "&status=" : "", o->status ? o->status : "");
		status = api_call(c, "GET", url, NULL, 60000, &doc);
		if (status != 200) {
			rc = status < 0 ? 1 : api_error(status, doc);
			json_decref(doc);
			break;
		}
		json_array_foreach(json_object_get(doc, "subscribers"), i, s) {
			for (size_t k = 0; k < nf; k++) {
				json_t *v = json_object_get(s, lf[k].name);
				char num[64] = "";

				if (json_is_string(v))
					csv_put(f, json_string_value(v), 0);
				else {
					if (json_is_integer(v))
						snprintf(num, sizeof(num), "%lld",
						    (long long)json_integer_value(v));
					else if (json_is_real(v))
						snprintf(num, sizeof(num), "%.15g",
						    json_real_value(v));
					csv_put(f, num, 0);
				}
			}
			for (size_t k = 0; k < 3; k++) {
				const char *v = json_string_value(json_object_get(s,
				    extra[k]));

				csv_put(f, v ? v : "", 0);
			}
			{
				char *js = json_dumps(json_object_get(s, "fields"),
				    JSON_COMPACT | JSON_SORT_KEYS);

				csv_put(f, js ? js : "{}", 1);
				free(js);
			}
			count++;
		}
		after = json_integer_value(json_object_get(doc, "next"));
		json_decref(doc);
	} while (after > 0);
	if (o->out) {
		if (fclose(f) != 0) {
			fprintf(stderr, "writing %s: %s\n", o->out, strerror(errno));
			rc = 1;
		} else if (!rc) {
			printf("%lld subscribers of %s written to %s\n", count,
			    o->list, o->out);
		}
	}
	conf_free(c);
	return rc;
}

int
cli_subscribers(const char *path, char **args, int nargs,
    const struct cli_sub_opts *o)
{
	if (nargs == 2 && !strcmp(args[0], "import") && o->list)
		return import(path, args[1], o);
	if (nargs == 1 && !strcmp(args[0], "export") && o->list)
		return export(path, o);
	fprintf(stderr, "usage: leadcast subscribers import FILE.csv --list LIST "
	    "[--unconfirmed] [--map 'Column=field,...']\n"
	    "       leadcast subscribers export --list LIST [--status S] "
	    "[--out FILE.csv]\n");
	return 1;
}
