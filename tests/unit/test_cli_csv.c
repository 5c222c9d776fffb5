/*
 * Unit tests for daemon/cli_csv.c: the CSV side of the CLI's imports.
 * Header names to lead fields (the alias table, --map), records to lead
 * objects, the record reader's line numbers (quoted newlines, CRLF, lone
 * CR, blank lines, a BOM) and bounds (64 KiB, 256 columns, NUL bytes, bad
 * quoting that spoils only its own line), and the batch loop with a fake
 * API: rejected rows reported as FILE:LINE: field: message with the line
 * of the row, across batches.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_csv.h"

/* ---- header names ------------------------------------------------------------ */

static void
normalize(void **state)
{
	char out[80];

	(void)state;
	cli_csv_normalize("E-Mail Address", out, sizeof(out));
	assert_string_equal(out, "e_mail_address");
	cli_csv_normalize("  First   Name ", out, sizeof(out));
	assert_string_equal(out, "first_name");
	cli_csv_normalize("ZIP/Postal-Code", out, sizeof(out));
	assert_string_equal(out, "zip_postal_code");
	cli_csv_normalize("--", out, sizeof(out));
	assert_string_equal(out, "");
	cli_csv_normalize("abcdefgh", out, 4);
	assert_string_equal(out, "abc");
}

static const char *const columns[][2] = {
	{ "email", "email" }, { "Email", "email" }, { "E-mail", "email" },
	{ "E-Mail Address", "email" }, { "EMAIL_ADDRESS", "email" },
	{ "Mail", "email" }, { "Work Email", "email" },
	{ "First Name", "first_name" }, { "firstname", "first_name" },
	{ "Given name", "first_name" }, { "Last Name", "last_name" },
	{ "Surname", "last_name" }, { "Phone", "phone" },
	{ "Phone Number", "phone" }, { "Mobile", "phone" },
	{ "Cell Phone", "phone" }, { "Tel.", "phone" }, { "Zip", "postal_code" },
	{ "ZIP Code", "postal_code" }, { "Postcode", "postal_code" },
	{ "Postal Code", "postal_code" }, { "State", "region" },
	{ "Province", "region" }, { "Organization", "company" },
	{ "Company Name", "company" }, { "Job Title", "title" },
	{ "Employees", "company_size" }, { "Company Size", "company_size" },
	{ "Timezone", "time_zone" }, { "Time Zone", "time_zone" },
	{ "Lead Source", "source" }, { "Country", "country" },
	{ "fields", "fields" }, { "Favourite Colour", "fields.favourite_colour" },
	{ "plan", "fields.plan" }, { "Plan (2024)", "fields.plan_2024" },
	{ "2fa", "" }, { "", "" }, { "***", "" },
};

static void
map_columns(void **state)
{
	char out[CLI_CSV_FIELD_MAX];

	(void)state;
	for (size_t i = 0; i < sizeof(columns) / sizeof(columns[0]); i++) {
		cli_csv_map_column(columns[i][0], out, sizeof(out));
		if (strcmp(out, columns[i][1]) != 0)
			fail_msg("'%s' mapped to '%s', not '%s'", columns[i][0], out,
			    columns[i][1]);
	}
}

static void
map_targets(void **state)
{
	char out[CLI_CSV_FIELD_MAX];

	(void)state;
	assert_int_equal(cli_csv_map_target("email", out, sizeof(out)), 0);
	assert_string_equal(out, "email");
	assert_int_equal(cli_csv_map_target("E-Mail", out, sizeof(out)), 0);
	assert_string_equal(out, "email");
	assert_int_equal(cli_csv_map_target(" phone_number ", out, sizeof(out)),
	    0);
	assert_string_equal(out, "phone");
	assert_int_equal(cli_csv_map_target("fields.Plan Type", out,
	    sizeof(out)), 0);
	assert_string_equal(out, "fields.plan_type");
	assert_int_equal(cli_csv_map_target("fields", out, sizeof(out)), 0);
	assert_string_equal(out, "fields");
	assert_int_equal(cli_csv_map_target("-", out, sizeof(out)), 0);
	assert_string_equal(out, "");
	assert_int_equal(cli_csv_map_target("", out, sizeof(out)), 0);
	assert_string_equal(out, "");
	assert_int_equal(cli_csv_map_target("emial", out, sizeof(out)), -1);
	assert_int_equal(cli_csv_map_target("fields.9lives", out, sizeof(out)),
	    -1);
	assert_int_equal(cli_csv_map_target("fields.", out, sizeof(out)), -1);
}

static void
header_defaults(void **state)
{
	char *names[] = { "E-mail", "First Name", "Phone Number", "Zip",
	    "Favorite Color", "#" };
	struct cli_csv_header h;
	char warn[512], err[256];

	(void)state;
	assert_int_equal(cli_csv_header_map(&h, names, 6, NULL, warn,
	    sizeof(warn), err, sizeof(err)), 0);
	assert_int_equal(h.ncols, 6);
	assert_string_equal(h.field[0], "email");
	assert_string_equal(h.field[1], "first_name");
	assert_string_equal(h.field[2], "phone");
	assert_string_equal(h.field[3], "postal_code");
	assert_string_equal(h.field[4], "fields.favorite_color");
	assert_string_equal(h.field[5], "");
	assert_string_equal(warn, "column 6 ('#') is skipped: no usable name\n");
	assert_true(cli_csv_header_has(&h, "email"));
	assert_false(cli_csv_header_has(&h, "company"));
}

static void
header_with_map(void **state)
{
	char *names[] = { "Contact", "Cell", "Notes", "Region Code", "Color" };
	struct cli_csv_header h;
	char warn[512], err[256];

	(void)state;
	assert_int_equal(cli_csv_header_map(&h, names, 5,
	    "Contact=email, cell = phone,Notes=-,region code=fields.territory,"
	    "COLOR=fields.colour", warn, sizeof(warn), err, sizeof(err)), 0);
	assert_string_equal(h.field[0], "email");
	assert_string_equal(h.field[1], "phone");
	assert_string_equal(h.field[2], "");
	assert_string_equal(h.field[3], "fields.territory");
	assert_string_equal(h.field[4], "fields.colour");
	assert_string_equal(warn, "");          /* skipped on purpose */
}

static void
header_errors(void **state)
{
	char *names[] = { "Email", "E-mail", "Name" };
	char *one[] = { "Email", "Name" };
	struct cli_csv_header h;
	char err[256];

	(void)state;
	assert_int_equal(cli_csv_header_map(&h, names, 3, NULL, NULL, 0, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "columns 1 ('Email') and 2 ('E-mail') both "
	    "map to email"));
	/* --map settles it */
	assert_int_equal(cli_csv_header_map(&h, names, 3, "E-mail=fields.other",
	    NULL, 0, err, sizeof(err)), 0);
	assert_string_equal(h.field[1], "fields.other");
	assert_int_equal(cli_csv_header_map(&h, one, 2, "Phone=phone", NULL, 0,
	    err, sizeof(err)), -1);
	assert_string_equal(err, "--map: the file has no column 'Phone'");
	assert_int_equal(cli_csv_header_map(&h, one, 2, "Name=nmae", NULL, 0,
	    err, sizeof(err)), -1);
	assert_non_null(strstr(err, "'nmae' is no lead field"));
	assert_int_equal(cli_csv_header_map(&h, one, 2, "Name", NULL, 0, err,
	    sizeof(err)), -1);
	assert_string_equal(err, "--map: 'Name' is not Column=field");
}

/* ---- rows -------------------------------------------------------------------- */

static void
rows(void **state)
{
	char *names[] = { "Email", "First Name", "Plan", "Seats", "fields" };
	char *vals[] = { "a@example.com", "", "gold", "12",
	    "{\"seats\": 3, \"tier\": \"b\"}" };
	char *bad_utf8[] = { "a@example.com", "J\xe9r\xf4me", "", "", "" };
	char *bad_json[] = { "a@example.com", "", "", "", "[1]" };
	struct cli_csv_header h;
	char err[256], field[80], msg[256], *s;
	json_t *row;

	(void)state;
	assert_int_equal(cli_csv_header_map(&h, names, 5, NULL, NULL, 0, err,
	    sizeof(err)), 0);
	row = cli_csv_row(&h, vals, 5, field, sizeof(field), msg, sizeof(msg));
	assert_non_null(row);
	s = json_dumps(row, JSON_COMPACT | JSON_SORT_KEYS);
	/* an empty value is left out; a column beats the JSON one */
	assert_string_equal(s, "{\"email\":\"a@example.com\",\"fields\":"
	    "{\"plan\":\"gold\",\"seats\":\"12\",\"tier\":\"b\"}}");
	free(s);
	json_decref(row);
	assert_null(cli_csv_row(&h, bad_utf8, 5, field, sizeof(field), msg,
	    sizeof(msg)));
	assert_string_equal(field, "first_name");
	assert_string_equal(msg, "not valid UTF-8");
	assert_null(cli_csv_row(&h, bad_json, 5, field, sizeof(field), msg,
	    sizeof(msg)));
	assert_string_equal(field, "fields");
	assert_string_equal(msg, "not a JSON object");
}

/* ---- the reader -------------------------------------------------------------- */

struct rec {
	int res;
	long line;
	const char *first;      /* the first field (records) or a part of err */
	int nvals;
};

static void
check_reader(const char *data, size_t len, const struct rec *want, size_t n)
{
	FILE *f = fmemopen((void *)data, len, "r");
	struct cli_csv_reader r;
	char err[256];
	long line;

	assert_non_null(f);
	assert_int_equal(cli_csv_open(&r, f), 0);
	for (size_t i = 0; i < n; i++) {
		int res = cli_csv_read(&r, &line, err, sizeof(err));

		if (res != want[i].res || line != want[i].line)
			fail_msg("record %zu: result %d at line %ld, wanted %d at "
			    "line %ld (%s)", i, res, line, want[i].res, want[i].line,
			    res == CLI_CSV_BAD ? err : "");
		if (res == CLI_CSV_RECORD) {
			assert_int_equal(r.nvals, want[i].nvals);
			assert_string_equal(r.vals[0], want[i].first);
		} else if (res == CLI_CSV_BAD) {
			if (!strstr(err, want[i].first))
				fail_msg("record %zu: '%s' lacks '%s'", i, err,
				    want[i].first);
		}
	}
	assert_int_equal(cli_csv_read(&r, &line, err, sizeof(err)), CLI_CSV_EOF);
	cli_csv_close(&r);
	fclose(f);
}

#define CHECK(data, ...) do { \
	static const struct rec w_[] = { __VA_ARGS__ }; \
	check_reader(data, sizeof(data) - 1, w_, sizeof(w_) / sizeof(w_[0])); \
} while (0)

static void
reader_lines(void **state)
{
	(void)state;
	CHECK("email,name\na@x.io,A\nb@x.io,B\n",
	    { 1, 1, "email", 2 }, { 1, 2, "a@x.io", 2 }, { 1, 3, "b@x.io", 2 });
	/* quoted newlines: the record's first line counts */
	CHECK("email,note\na@x.io,\"one\ntwo\nthree\"\nb@x.io,x\n"
	    "\"c@x.io\",\"\"\"q\"\"\n\"\n",
	    { 1, 1, "email", 2 }, { 1, 2, "a@x.io", 2 }, { 1, 5, "b@x.io", 2 },
	    { 1, 6, "c@x.io", 2 });
	/* CRLF, blank lines, no newline at the end */
	CHECK("email,n\r\n\r\na@x.io,\"1\r\n2\"\r\n\r\n\r\nb@x.io,2",
	    { 1, 1, "email", 2 }, { 1, 3, "a@x.io", 2 }, { 1, 7, "b@x.io", 2 });
	/* old Mac line ends */
	CHECK("email\ra@x.io\r\rb@x.io\r",
	    { 1, 1, "email", 1 }, { 1, 2, "a@x.io", 1 }, { 1, 4, "b@x.io", 1 });
	/* a byte order mark */
	CHECK("\xef\xbb\xbf" "email\na@x.io\n",
	    { 1, 1, "email", 1 }, { 1, 2, "a@x.io", 1 });
	/* an empty file */
	check_reader("", 0, NULL, 0);
}

static void
reader_bad(void **state)
{
	(void)state;
	/* a quote inside an unquoted field spoils only its line */
	CHECK("email,n\na@x.io,5\" screen\nb@x.io,ok\n",
	    { 1, 1, "email", 2 }, { -1, 2, "malformed CSV", 0 },
	    { 1, 3, "b@x.io", 2 });
	/* text after a closing quote */
	CHECK("email,n\na@x.io,\"x\"y\nb@x.io,ok\n",
	    { 1, 1, "email", 2 }, { -1, 2, "malformed CSV", 0 },
	    { 1, 3, "b@x.io", 2 });
	/* an unterminated quote at the end */
	CHECK("email,n\na@x.io,ok\nb@x.io,\"open\nstill open\n",
	    { 1, 1, "email", 2 }, { 1, 2, "a@x.io", 2 },
	    { -1, 3, "not closed", 0 });
	/* a NUL byte */
	CHECK("email,n\na@x.io,a\0b\nb@x.io,ok\n",
	    { 1, 1, "email", 2 }, { -1, 2, "NUL byte", 0 },
	    { 1, 3, "b@x.io", 2 });
}

static void
reader_bounds(void **state)
{
	size_t big = CLI_CSV_MAX_RECORD + 100, len = 0;
	char *data = malloc(big + 256);
	struct rec want[4] = {
		{ 1, 1, "email", 2 }, { -1, 2, "longer than 64 KiB", 0 },
		{ 1, 5, "b@x.io", 2 }, { -1, 6, "more than 256 columns", 0 },
	};
	char *more;

	(void)state;
	assert_non_null(data);
	len += (size_t)sprintf(data, "email,n\na@x.io,\"");
	/* a quoted field of 64 KiB over three lines */
	for (size_t i = 0; i < big; i++)
		data[len++] = i == 1000 || i == 2000 ? '\n' : 'x';
	len += (size_t)sprintf(data + len, "\"\nb@x.io,ok\n");
	more = malloc(len + 2000);
	assert_non_null(more);
	memcpy(more, data, len);
	for (int i = 0; i < 300; i++)
		len += (size_t)sprintf(more + len, "%s", i ? ",x" : "c@x.io");
	more[len++] = '\n';
	check_reader(more, len, want, 4);
	free(more);
	free(data);
}

/* ---- the import loop --------------------------------------------------------- */

struct fake {
	int calls;
	size_t sizes[8];
	int refuse_call;        /* answer 400 to this call (1-based), 0 never */
};

/* The fake API rejects every row whose email starts with "bad". */
static int
fake_post(struct cli_import *im, json_t *rows, json_t **answer)
{
	struct fake *fk = im->arg;
	json_t *errors, *row;
	size_t i;

	fk->sizes[fk->calls++] = json_array_size(rows);
	if (fk->calls == fk->refuse_call) {
		*answer = json_pack("{s:{s:s, s:s}}", "error", "field", "source",
		    "message", "unknown source");
		return 400;
	}
	errors = json_array();
	json_array_foreach(rows, i, row) {
		const char *e = json_string_value(json_object_get(row, "email"));

		if (e && !strncmp(e, "bad", 3))
			json_array_append_new(errors, json_pack("{s:i, s:s, s:s}",
			    "row", (int)i, "field", "email", "message",
			    "not an email address"));
	}
	*answer = json_pack("{s:i, s:i, s:o}", "created", 1, "merged", 0,
	    "errors", errors);
	return 200;
}

static int refused_status;

static void
fake_refused(struct cli_import *im, int status, json_t *answer)
{
	(void)im;
	(void)answer;
	refused_status = status;
}

static char *
run_import(const char *csv, struct fake *fk, const char *map,
    struct cli_import *im, int *rc)
{
	static const char *const need[] = { "email", "phone", NULL };
	FILE *f = fmemopen((void *)csv, strlen(csv), "r"), *out = tmpfile();
	char *text;
	long n;

	assert_non_null(f);
	assert_non_null(out);
	memset(im, 0, sizeof(*im));
	im->file = "leads.csv";
	im->map = map;
	im->need = need;
	im->post = fake_post;
	im->refused = fake_refused;
	im->error_key = "row";
	im->count_keys[0] = "created";
	im->count_keys[1] = "merged";
	im->arg = fk;
	im->out = out;
	*rc = cli_import_run(im, f);
	fclose(f);
	n = ftell(out);
	rewind(out);
	text = calloc(1, (size_t)n + 1);
	assert_int_equal(fread(text, 1, (size_t)n, out), (size_t)n);
	fclose(out);
	return text;
}

static void
import_lines(void **state)
{
	const char *csv =
	    "E-mail,First Name,Note\n"
	    "a@x.io,A,\"two\nlines\"\n"
	    "bad1@x.io,B,x\n"
	    "\n"
	    "c@x.io,C\n"
	    "bad2@x.io,D,\"more\nthan\none\"\n"
	    "e@x.io,E,\"x\"y\n"
	    "f@x.io,\xff,z\n"
	    "g@x.io,G,ok\n";
	struct fake fk = { 0, { 0 }, 0 };
	struct cli_import im;
	char *out;
	int rc;

	(void)state;
	out = run_import(csv, &fk, NULL, &im, &rc);
	assert_int_equal(rc, 0);
	assert_int_equal(fk.calls, 1);
	assert_int_equal(fk.sizes[0], 4);       /* a, bad1, bad2, g */
	assert_int_equal(im.records, 7);
	assert_int_equal(im.rejected, 5);
	assert_string_equal(out,
	    "leads.csv:6: 2 columns, the header has 3\n"
	    "leads.csv:10: malformed CSV: a quote out of place (quote the "
	    "whole field, and double the quotes in it)\n"
	    "leads.csv:11: first_name: not valid UTF-8\n"
	    "leads.csv:4: email: not an email address\n"
	    "leads.csv:7: email: not an email address\n");
	assert_int_equal(json_array_size(im.errors), 5);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(
	    im.errors, 3), "line")), 4);
	cli_import_free(&im);
	free(out);
}

static void
import_batches(void **state)
{
	size_t cap = 3000 * 40, len = 0;
	char *csv = malloc(cap);
	struct fake fk = { 0, { 0 }, 0 };
	struct cli_import im;
	char *out;
	int rc;

	(void)state;
	assert_non_null(csv);
	len += (size_t)sprintf(csv, "Email,Phone Number\n");
	/* 2500 rows on lines 2..2501; rows 1500 and 2500 are bad */
	for (int i = 1; i <= 2500; i++)
		len += (size_t)sprintf(csv + len, "%s%d@x.io,+1555%07d\n",
		    i % 1000 == 500 && i > 1000 ? "bad" : "r", i, i);
	out = run_import(csv, &fk, NULL, &im, &rc);
	assert_int_equal(rc, 0);
	assert_int_equal(fk.calls, 3);
	assert_int_equal(fk.sizes[0], 1000);
	assert_int_equal(fk.sizes[1], 1000);
	assert_int_equal(fk.sizes[2], 500);
	assert_string_equal(out,
	    "leads.csv:1501: email: not an email address\n"
	    "leads.csv:2501: email: not an email address\n");
	assert_int_equal(im.records, 2500);
	assert_int_equal(im.rejected, 2);
	assert_int_equal(im.counts[0], 3);      /* "created": 1 a batch */
	assert_int_equal(im.counts[1], 0);
	cli_import_free(&im);
	free(out);
	free(csv);
}

static void
import_stops(void **state)
{
	size_t cap = 1500 * 30, len = 0;
	char *csv = malloc(cap);
	struct fake fk = { 0, { 0 }, 2 };
	struct cli_import im;
	char *out;
	int rc;

	(void)state;
	assert_non_null(csv);
	len += (size_t)sprintf(csv, "email\n");
	for (int i = 1; i <= 2500; i++)
		len += (size_t)sprintf(csv + len, "r%d@x.io\n", i);
	(void)cap;
	out = run_import(csv, &fk, NULL, &im, &rc);
	assert_int_equal(rc, -1);
	assert_true(im.stopped);
	assert_int_equal(refused_status, 400);
	assert_int_equal(fk.calls, 2);          /* not a third batch */
	free(out);
	cli_import_free(&im);
	free(csv);
}

static void
import_progress(void **state)
{
	size_t len = 0;
	char *csv = malloc(600 * 24);
	struct fake fk = { 0, { 0 }, 0 };
	struct cli_import im;
	FILE *f, *out = tmpfile();
	char text[8192];
	size_t n;

	(void)state;
	assert_non_null(csv);
	assert_non_null(out);
	len += (size_t)sprintf(csv, "email\n");
	for (int i = 1; i <= 600; i++)
		len += (size_t)sprintf(csv + len, "%s%d@x.io\n", i == 300 ? "bad" :
		    "r", i);
	f = fmemopen(csv, len, "r");
	memset(&im, 0, sizeof(im));
	im.file = "p.csv";
	im.post = fake_post;
	im.error_key = "row";
	im.arg = &fk;
	im.out = out;
	im.tty = 1;
	im.size = (off_t)len;
	assert_int_equal(cli_import_run(&im, f), 0);
	fclose(f);
	n = (size_t)ftell(out);
	rewind(out);
	assert_true(n < sizeof(text));
	assert_int_equal(fread(text, 1, n, out), n);
	text[n] = '\0';
	fclose(out);
	/* the bar at 250 and 500 rows, the rejected line over it, the end */
	assert_non_null(strstr(text, "\r["));
	assert_non_null(strstr(text, "250 rows"));
	assert_non_null(strstr(text, "\r\033[Kp.csv:301: email: not an email "
	    "address\n"));
	assert_non_null(strstr(text, "[##############################] 100%  "
	    "600 rows\n"));
	assert_int_equal(text[n - 1], '\n');
	cli_import_free(&im);
	free(csv);
}

static void
import_header_problems(void **state)
{
	struct fake fk = { 0, { 0 }, 0 };
	struct cli_import im;
	char *out;
	int rc;

	(void)state;
	out = run_import("Name,Company\nA,B\n", &fk, NULL, &im, &rc);
	assert_int_equal(rc, -1);
	assert_string_equal(out, "leads.csv:1: no email or phone column (name "
	    "one with --map 'Column=email')\n");
	free(out);
	cli_import_free(&im);
	out = run_import("Name,Contact\nA,a@x.io\n", &fk, "Contact=email", &im,
	    &rc);
	assert_int_equal(rc, 0);
	assert_string_equal(out, "");
	assert_int_equal(fk.calls, 1);
	free(out);
	cli_import_free(&im);
	out = run_import("", &fk, NULL, &im, &rc);
	assert_int_equal(rc, -1);
	assert_string_equal(out, "leads.csv: empty file: a header row is "
	    "needed\n");
	free(out);
	cli_import_free(&im);
	out = run_import("\n\n\"Email\nAddress\",#\nx@y.io,1\n", &fk, NULL, &im,
	    &rc);
	assert_int_equal(rc, 0);
	assert_string_equal(out, "leads.csv:3: column 2 ('#') is skipped: no "
	    "usable name\n");
	free(out);
	cli_import_free(&im);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(normalize),
		cmocka_unit_test(map_columns),
		cmocka_unit_test(map_targets),
		cmocka_unit_test(header_defaults),
		cmocka_unit_test(header_with_map),
		cmocka_unit_test(header_errors),
		cmocka_unit_test(rows),
		cmocka_unit_test(reader_lines),
		cmocka_unit_test(reader_bad),
		cmocka_unit_test(reader_bounds),
		cmocka_unit_test(import_lines),
		cmocka_unit_test(import_batches),
		cmocka_unit_test(import_stops),
		cmocka_unit_test(import_progress),
		cmocka_unit_test(import_header_problems),
	};

	return cmocka_run_group_tests_name("cli_csv", tests, NULL, NULL);
}
