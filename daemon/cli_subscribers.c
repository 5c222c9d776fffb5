/*
 * cli_subscribers - `leadcast subscribers import FILE.csv --list LIST` and
 * `leadcast subscribers export --list LIST`.
 *
 * Import goes through cli_csv (the header mapped to lead fields, rows sent
 * 1000 at a time, each rejected row reported as FILE:LINE: field:
 * message, a progress bar on a terminal); this file says where the rows
 * go and what the answer counts. Export pages through the API and
 * writes CSV (custom fields as one JSON column, which import reads back).
 * Exit status: 0 all done, 2 some rows rejected, 1 nothing done.
 */
#include "config.h"
#include "cli.h"
#include "cli_csv.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf.h"
#include "lead.h"

static int
import(const char *path, const char *file, const struct cli_sub_opts *o)
{
	static const char *const need[] = { "email", NULL };
	struct cli_import im;
	struct conf *c;
	json_t *body;
	char url[256];
	int rc;

	if (!(c = cli_load(path)))
		return 1;
	if (!conf_list_find(c, o->list)) {
		fprintf(stderr, "no list %s in %s\n", o->list, c->path);
		conf_free(c);
		return 1;
	}
	memset(&im, 0, sizeof(im));
	im.file = file;
	im.map = o->map;
	im.need = need;
	im.error_key = "index";
	im.count_keys[0] = "imported";
	im.count_keys[1] = "new_leads";
	snprintf(url, sizeof(url), "/api/v1/lists/%s/import", o->list);
	body = json_pack("{s:s}", "status", o->unconfirmed ? "unconfirmed" :
	    "confirmed");
	rc = cli_import_api(&im, c, url, "rows", body);
	json_decref(body);
	conf_free(c);
	if (rc == -2)
		return 1;
	if (json_out)
		print_json(json_pack("{s:s, s:I, s:I, s:I, s:I, s:b, s:O}", "file",
		    file, "rows", (json_int_t)im.records, "imported",
		    (json_int_t)im.counts[0], "new_leads", (json_int_t)im.counts[1],
		    "rejected", (json_int_t)im.rejected, "complete", !im.stopped,
		    "errors", im.errors));
	else
		printf("%s: %ld rows, %ld imported into %s (%ld new leads), %ld "
		    "rejected%s\n", file, im.records, im.counts[0], o->list,
		    im.counts[1], im.rejected, im.stopped ? "; STOPPED early" : "");
	rc = im.stopped ? 1 : im.rejected ? 2 : 0;
	cli_import_free(&im);
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
