/*
 * cli_leads - the lead and rep commands of the leadcast CLI:
 *
 *   leads import FILE.csv --source NAME [--map 'Column=field,...']
 *   lead add|show|list|assign|status ...
 *   rep list|add|on|off|token ...
 *
 * Each is one or a few calls to the daemon's routing API with the admin
 * token (api_call); --json prints the API's answer, otherwise a person
 * gets aligned text. The CSV work of the import is cli_csv's; this file
 * says where its rows go. It also holds the option parser and request
 * helper the report command shares (cli.h).
 *
 * Exit status: 0 done, 1 an error (the API's, with its field), 2 usage.
 */
#include "config.h"
#include "cli.h"
#include "cli_csv.h"
#include "cli_fmt.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf.h"
#include "lead.h"

#define TIMEOUT_MS      30000
#define IMPORT_TIMEOUT  120000
#define LIST_PAGE       500             /* the API's most per page */
#define LIST_DEFAULT    50

/* ---- options and requests (shared with cli_report.c) ----------------------- */

/* Whether spec ("a= b c=") has name; *arg set if it takes a value. */
static int
spec_has(const char *spec, const char *name, size_t len, int *arg)
{
	const char *p = spec;

	while (*p) {
		size_t l = strcspn(p, " ");
		int takes = l && p[l - 1] == '=';

		if ((takes ? l - 1 : l) == len && !strncmp(p, name, len)) {
			*arg = takes;
			return 1;
		}
		p += l;
		while (*p == ' ')
			p++;
	}
	return 0;
}

int
cli_args_parse(const char *cmd, const char *path, int argc, char **argv,
    const char *spec, struct cli_args *a)
{
	memset(a, 0, sizeof(*a));
	a->path = path;
	for (int i = 0; i < argc; i++) {
		const char *s = argv[i], *name, *eq;
		size_t len;
		int takes;

		if (!strcmp(s, "--json")) {
			json_out = 1;
			continue;
		}
		if (!strcmp(s, "-c") || !strcmp(s, "--config")) {
			if (i + 1 >= argc) {
				fprintf(stderr, "leadcast %s: %s needs a file\n", cmd, s);
				return 2;
			}
			a->path = argv[++i];
			continue;
		}
		if (!strcmp(s, "--")) {
			for (i++; i < argc; i++) {
				if (a->nwords == 8)
					goto too_many;
				a->words[a->nwords++] = argv[i];
			}
			break;
		}
		if (s[0] != '-' || !s[1] || (s[1] != '-' && isdigit((unsigned char)
		    s[1]))) {
			if (a->nwords == 8)
				goto too_many;
			a->words[a->nwords++] = argv[i];
			continue;
		}
		name = s + (s[1] == '-' ? 2 : 1);
		eq = strchr(name, '=');
		len = eq ? (size_t)(eq - name) : strlen(name);
		if (s[1] != '-' || !spec_has(spec, name, len, &takes)) {
			fprintf(stderr, "leadcast %s: unknown option '%.*s'\n", cmd,
			    (int)(eq ? (size_t)(eq - s) : strlen(s)), s);
			return 2;
		}
		if (a->n == CLI_ARGS_MAX) {
			fprintf(stderr, "leadcast %s: too many options\n", cmd);
			return 2;
		}
		if (takes && !eq && i + 1 >= argc) {
			fprintf(stderr, "leadcast %s: --%s needs a value\n", cmd, name);
			return 2;
		}
		if (!takes && eq) {
			fprintf(stderr, "leadcast %s: --%.*s takes no value\n", cmd,
			    (int)len, name);
			return 2;
		}
		a->name[a->n] = strndup(name, len);
		a->val[a->n++] = takes ? (eq ? eq + 1 : argv[++i]) : "";
	}
	if (!a->path)
		a->path = conf_default_path();
	return 0;
too_many:
	fprintf(stderr, "leadcast %s: too many arguments\n", cmd);
	return 2;
}

void
cli_args_free(struct cli_args *a)
{
	for (int i = 0; i < a->n; i++)
		free((char *)a->name[i]);
	a->n = 0;
}

const char *
cli_arg(const struct cli_args *a, const char *name)
{
	for (int i = a->n - 1; i >= 0; i--)
		if (!strcmp(a->name[i], name))
			return a->val[i];
	return NULL;
}

int
cli_dispatch(const char *family, const char *path, int argc, char **argv,
    const struct cli_verb *verbs, size_t n, const char *usage)
{
	const char *verb = NULL;
	struct cli_args a;
	char cmd[64];
	int rc;

	/* the verb: the first word (-c FILE and --json may come before it) */
	for (int i = 0; i < argc && !verb; i++) {
		if (argv[i][0] != '-')
			verb = argv[i];
		else if (!strcmp(argv[i], "-c"))
			i++;
	}
	for (size_t i = 0; verb && i < n; i++) {
		if (strcmp(verb, verbs[i].verb))
			continue;
		snprintf(cmd, sizeof(cmd), "%s %s", family, verb);
		if ((rc = cli_args_parse(cmd, path, argc, argv, verbs[i].spec,
		    &a)) == 0)
			rc = verbs[i].run(&a);
		cli_args_free(&a);
		return rc;
	}
	if (verb)
		fprintf(stderr, "leadcast %s: unknown action '%s'\n", family, verb);
	fputs(usage, stderr);
	return 2;
}

/* Every value of a repeatable option, each split at commas, as a JSON
 * array; NULL when the option is not given. */
static json_t *
arg_list(const struct cli_args *a, const char *name)
{
	json_t *l = NULL;

	for (int i = 0; i < a->n; i++) {
		const char *p;

		if (strcmp(a->name[i], name))
			continue;
		if (!l)
			l = json_array();
		for (p = a->val[i]; *p;) {
			size_t len = strcspn(p, ",");
			const char *s = p, *e = p + len;

			while (s < e && isspace((unsigned char)*s))
				s++;
			while (e > s && isspace((unsigned char)e[-1]))
				e--;
			if (e > s)
				json_array_append_new(l, json_stringn(s, (size_t)(e - s)));
			p += len;
			if (*p == ',')
				p++;
		}
	}
	return l;
}

int
cli_request(const struct conf *c, const char *method, const char *url,
    json_t *body, json_t **doc)
{
	char *s = body ? json_dumps(body, JSON_COMPACT) : NULL;
	int status;

	json_decref(body);
	status = api_call(c, method, url, s ? s : !strcmp(method, "POST") ?
	    "{}" : NULL, TIMEOUT_MS, doc);
	free(s);
	if (status < 0)
		return 1;
	if (status < 200 || status > 299) {
		api_error(status, *doc);
		json_decref(*doc);
		*doc = NULL;
		return 1;
	}
	if (!*doc) {
		fprintf(stderr, "leadcastd answered %s %s (HTTP %d) with no JSON\n",
		    method, url, status);
		return 1;
	}
	return 0;
}

/* The first of some keys an object has (APIs name times differently). */
static json_t *
first_of(const json_t *o, const char *const *keys)
{
	for (; *keys; keys++) {
		json_t *v = json_object_get(o, *keys);

		if (v && !json_is_null(v))
			return v;
	}
	return NULL;
}

static const char *const time_keys[] = { "at", "time", "created_at", "ts",
    NULL };

/* A JSON value's text (scalars), or "" */
static const char *
text(const json_t *o, const char *key, char *buf, size_t n)
{
	return cli_fmt_scalar(json_object_get(o, key), "", buf, n);
}

/* ---- CSV imports through the API (leads here, subscribers too) ---------------- */

struct api_import {
	const struct conf *conf;
	const char *url, *rows_key;
	const json_t *body;
};

static int
api_post(struct cli_import *im, json_t *rows, json_t **answer)
{
	struct api_import *ai = im->arg;
	json_t *body = json_copy((json_t *)ai->body);
	char *s;
	int status;

	json_object_set(body, ai->rows_key, rows);
	s = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	status = api_call(ai->conf, "POST", ai->url, s, IMPORT_TIMEOUT, answer);
	free(s);
	return status;
}

static void
api_refused(struct cli_import *im, int status, json_t *answer)
{
	(void)im;
	api_error(status, answer);
}

int
cli_import_api(struct cli_import *im, const struct conf *c, const char *url,
    const char *rows_key, const json_t *body)
{
	struct api_import ai = { c, url, rows_key, body };
	struct stat st;
	FILE *f;
	int rc;

	if (!(f = fopen(im->file, "r"))) {
		fprintf(stderr, "cannot open %s: %s\n", im->file, strerror(errno));
		return -2;
	}
	im->post = api_post;
	im->refused = api_refused;
	im->arg = &ai;
	im->out = stderr;
	im->quiet = json_out;
	im->tty = isatty(STDERR_FILENO) && !json_out;
	im->size = fstat(fileno(f), &st) == 0 ? st.st_size : 0;
	rc = cli_import_run(im, f);
	fclose(f);
	return rc;
}

static int
lead_import(const struct cli_args *a)
{
	static const char *const need[] = { "email", "phone", NULL };
	const char *source = cli_arg(a, "source");
	struct cli_import im;
	struct conf *c;
	json_t *body;
	int rc;

	if (a->nwords != 2 || !source || !*source) {
		fprintf(stderr, "usage: leadcast leads import FILE.csv --source NAME "
		    "[--map 'Column=field,...']\n");
		return 2;
	}
	if (!(c = cli_load(a->path)))
		return 1;
	memset(&im, 0, sizeof(im));
	im.file = a->words[1];
	im.map = cli_arg(a, "map");
	im.need = need;
	im.error_key = "row";
	im.count_keys[0] = "created";
	im.count_keys[1] = "merged";
	body = json_pack("{s:s}", "source", source);
	rc = cli_import_api(&im, c, "/api/v1/leads/import", "leads", body);
	json_decref(body);
	conf_free(c);
	if (rc == -2)
		return 1;
	if (json_out)
		print_json(json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:b, s:O}",
		    "file", im.file, "source", source, "rows",
		    (json_int_t)im.records, "created", (json_int_t)im.counts[0],
		    "merged", (json_int_t)im.counts[1], "rejected",
		    (json_int_t)im.rejected, "complete", !im.stopped, "errors",
		    im.errors));
	else
		printf("%s: %ld rows: %ld created, %ld merged, %ld rejected%s\n",
		    im.file, im.records, im.counts[0], im.counts[1], im.rejected,
		    im.stopped ? "; STOPPED early, the rest not imported" : "");
	rc = im.stopped || im.rejected ? 1 : 0;
	cli_import_free(&im);
	return rc;
}

/* ---- lead add, show, list, assign, status ---------------------------------- */

/* "owner alice, team east, status offered" of a lead */
static void
print_where(const json_t *lead)
{
	char st[64], ow[128], tm[128];

	text(lead, "status", st, sizeof(st));
	text(lead, "owner", ow, sizeof(ow));
	text(lead, "team", tm, sizeof(tm));
	printf("  status %s, owner %s, team %s\n", *st ? st : "-",
	    *ow ? ow : "(none yet)", *tm ? tm : "-");
}

static int
lead_add(const struct cli_args *a)
{
	static const char *const opt[][2] = { { "email", "email" },
	    { "phone", "phone" }, { "first-name", "first_name" },
	    { "last-name", "last_name" }, { "company", "company" },
	    { "source", "source" } };
	json_t *body, *fields = json_object(), *doc = NULL, *lead;
	struct conf *c;
	char id[64];
	int rc;

	if (a->nwords != 1 || (!cli_arg(a, "email") && !cli_arg(a, "phone"))) {
		fprintf(stderr, "usage: leadcast lead add --email E [--phone P] "
		    "[--first-name F] [--last-name L]\n"
		    "           [--company C] [--source S] [--field name=value ...]"
		    "\n(--email or --phone, or both)\n");
		json_decref(fields);
		return 2;
	}
	body = json_object();
	for (size_t i = 0; i < sizeof(opt) / sizeof(opt[0]); i++) {
		const char *v = cli_arg(a, opt[i][0]);

		if (v)
			json_object_set_new(body, opt[i][1], json_string(v));
	}
	for (int i = 0; i < a->n; i++) {
		const char *v = a->val[i], *eq;
		char name[128];

		if (strcmp(a->name[i], "field"))
			continue;
		if (!(eq = strchr(v, '=')) || eq == v ||
		    (size_t)(eq - v) >= sizeof(name)) {
			fprintf(stderr, "leadcast lead add: --field wants name=value, "
			    "not '%s'\n", v);
			json_decref(body);
			json_decref(fields);
			return 2;
		}
		snprintf(name, sizeof(name), "%.*s", (int)(eq - v), v);
		if (!strncmp(name, "fields.", 7))
			json_object_set_new(fields, name + 7, json_string(eq + 1));
		else if (lead_field(name))
			json_object_set_new(body, name, json_string(eq + 1));
		else
			json_object_set_new(fields, name, json_string(eq + 1));
	}
	if (json_object_size(fields))
		json_object_set(body, "fields", fields);
	json_decref(fields);
	if (!(c = cli_load(a->path))) {
		json_decref(body);
		return 1;
	}
	rc = cli_request(c, "POST", "/api/v1/leads", body, &doc);
	if (rc == 0 && json_out) {
		print_json(doc);
		doc = NULL;
	} else if (rc == 0) {
		lead = json_object_get(doc, "lead");
		printf("lead %s %s\n", text(lead, "id", id, sizeof(id)),
		    json_is_true(json_object_get(doc, "created")) ? "created" :
		    "merged into the existing lead with that email or phone");
		print_where(lead);
	}
	json_decref(doc);
	conf_free(c);
	return rc;
}

/* One line "  label   value" a set key of obj, in the order of keys. */
static void
print_kv(const char *label, const char *value, int w)
{
	printf("  %-*s  %s\n", w, label, value);
}

static void
show_lead(const json_t *lead)
{
	static const char *const head[] = { "id", NULL };
	static const char *const tail[] = { "status", "owner", "team",
	    "created_at", "updated_at", NULL };
	const struct lead_field *lf;
	size_t nf;
	const char *k;
	json_t *v, *custom = json_object_get(lead, "fields");
	char val[1200], label[96];
	int w = 12;

	lf = lead_fields(&nf);
	json_object_foreach((json_t *)custom, k, v)
		if ((int)strlen(k) + 7 > w)
			w = (int)strlen(k) + 7;
	if (w > 40)
		w = 40;
	for (const char *const *p = head; *p; p++)
		print_kv(*p, cli_fmt_scalar(json_object_get(lead, *p), "-", val,
		    sizeof(val)), w);
	for (size_t i = 0; i < nf; i++) {
		v = json_object_get(lead, lf[i].name);
		if (v && !json_is_null(v) && !(json_is_string(v) &&
		    !*json_string_value(v)))
			print_kv(lf[i].name, cli_fmt_scalar(v, "", val, sizeof(val)),
			    w);
	}
	json_object_foreach((json_t *)custom, k, v) {
		snprintf(label, sizeof(label), "fields.%s", k);
		print_kv(label, cli_fmt_scalar(v, "-", val, sizeof(val)), w);
	}
	{
		char sc[64], gr[32];

		cli_fmt_scalar(json_object_get(lead, "score"), "-", sc, sizeof(sc));
		cli_fmt_scalar(json_object_get(lead, "grade"), "", gr, sizeof(gr));
		snprintf(val, sizeof(val), "%s%s%s%s", sc, *gr ? " (grade " : "",
		    gr, *gr ? ")" : "");
		print_kv("score", val, w);
	}
	for (const char *const *p = tail; *p; p++) {
		v = json_object_get(lead, *p);
		if (!strcmp(*p, "created_at") || !strcmp(*p, "updated_at"))
			cli_fmt_time(v, "-", val, sizeof(val));
		else
			cli_fmt_scalar(v, "-", val, sizeof(val));
		print_kv(!strcmp(*p, "created_at") ? "created" : !strcmp(*p,
		    "updated_at") ? "updated" : *p, val, w);
	}
	/* anything else the API tells */
	json_object_foreach((json_t *)lead, k, v) {
		int known = !strcmp(k, "fields") || !strcmp(k, "score") ||
		    !strcmp(k, "grade") || lead_field(k) != NULL;

		for (const char *const *p = head; *p && !known; p++)
			known = !strcmp(*p, k);
		for (const char *const *p = tail; *p && !known; p++)
			known = !strcmp(*p, k);
		if (known || json_is_null(v) || json_is_object(v))
			continue;
		if (strlen(k) > 3 && !strcmp(k + strlen(k) - 3, "_at"))
			cli_fmt_time(v, "-", val, sizeof(val));
		else
			cli_fmt_scalar(v, "-", val, sizeof(val));
		print_kv(k, val, w);
	}
}

/* The details of an event: its other keys and its data's, but the rep
 * (a column of its own), as "k=v, ..." */
static void
event_details(const json_t *e, char *out, size_t n)
{
	static const char *const skip[] = { "id", "lead", "lead_id", "type",
	    "at", "time", "created_at", "ts", NULL };
	const char *k;
	json_t *v, *data = json_object_get(e, "data");
	size_t o = 0;

	*out = '\0';
	for (int pass = 0; pass < 2; pass++) {
		const json_t *obj = pass ? data : e;

		if (!json_is_object(obj))
			continue;
		json_object_foreach((json_t *)obj, k, v) {
			char val[256];
			int skipped = 0;

			for (const char *const *p = skip; *p && !pass; p++)
				skipped |= !strcmp(*p, k);
			if (skipped || json_is_null(v) || !strcmp(k, "rep") ||
			    (!pass && !strcmp(k, "data")))
				continue;
			if (json_is_object(v)) {
				char *js = json_dumps(v, JSON_COMPACT);

				snprintf(val, sizeof(val), "%s", js ? js : "");
				free(js);
			} else {
				cli_fmt_scalar(v, "", val, sizeof(val));
			}
			if (o < n)
				o += (size_t)snprintf(out + o, n - o, "%s%s=%s",
				    o ? ", " : "", k, val);
		}
	}
}

static int
lead_show(const struct cli_args *a)
{
	static const char *const eh[] = { "TIME", "EVENT", "REP", "DETAILS" };
	static const char *const oh[] = { "OFFER", "REP", "STATUS", "OFFERED",
	    "DEADLINE", "ANSWERED" };
	static const char *const offered_keys[] = { "offered_at", "created_at",
	    "at", NULL };
	static const char *const deadline_keys[] = { "expires_at", "deadline",
	    NULL };
	static const char *const answered_keys[] = { "answered_at",
	    "accepted_at", "rejected_at", "closed_at", NULL };
	struct cli_table t;
	struct conf *c;
	json_t *doc = NULL, *e;
	char url[256], q[128];
	size_t i;
	int rc;

	if (a->nwords != 2) {
		fprintf(stderr, "usage: leadcast lead show ID\n");
		return 2;
	}
	if (!(c = cli_load(a->path)))
		return 1;
	snprintf(url, sizeof(url), "/api/v1/leads/%s", cli_fmt_query(a->words[1],
	    q, sizeof(q)));
	rc = cli_request(c, "GET", url, NULL, &doc);
	if (rc == 0 && json_out) {
		print_json(doc);
		doc = NULL;
	} else if (rc == 0) {
		printf("lead\n");
		show_lead(json_object_get(doc, "lead"));
		printf("\nhistory\n");
		cli_table_init(&t, 4, eh, "llll");
		json_array_foreach(json_object_get(doc, "events"), i, e) {
			char tm[64], ty[64], rep[128], det[1024];
			const char *row[4] = { tm, ty, rep, det };

			cli_fmt_time(first_of(e, time_keys), "-", tm, sizeof(tm));
			text(e, "type", ty, sizeof(ty));
			/* the rep: the event's own, or its data's */
			cli_fmt_scalar(json_object_get(e, "rep") ? json_object_get(e,
			    "rep") : json_object_get(json_object_get(e, "data"), "rep"),
			    "-", rep, sizeof(rep));
			event_details(e, det, sizeof(det));
			cli_table_add(&t, row);
		}
		if (t.nrows)
			cli_table_print(&t, stdout);
		else
			printf("  (no events)\n");
		cli_table_free(&t);
		if (json_array_size(json_object_get(doc, "offers"))) {
			printf("\noffers\n");
			cli_table_init(&t, 6, oh, "rlllll");
			json_array_foreach(json_object_get(doc, "offers"), i, e) {
				char id[32], rep[128], st[32], of[64], dl[64], an[64];
				const char *row[6] = { id, rep, st, of, dl, an };

				text(e, "id", id, sizeof(id));
				cli_fmt_scalar(json_object_get(e, "rep"), "-", rep,
				    sizeof(rep));
				text(e, "status", st, sizeof(st));
				cli_fmt_time(first_of(e, offered_keys), "-", of,
				    sizeof(of));
				cli_fmt_time(first_of(e, deadline_keys), "-", dl,
				    sizeof(dl));
				cli_fmt_time(first_of(e, answered_keys), "-", an,
				    sizeof(an));
				cli_table_add(&t, row);
			}
			cli_table_print(&t, stdout);
			cli_table_free(&t);
		}
	}
	json_decref(doc);
	conf_free(c);
	return rc;
}

static int
lead_list(const struct cli_args *a)
{
	static const char *const filters[] = { "status", "owner", "team",
	    "source", NULL };
	static const char *const head[] = { "ID", "EMAIL", "NAME", "COMPANY",
	    "SOURCE", "STATUS", "OWNER", "TEAM", "SCORE", "CREATED" };
	const char *lim = cli_arg(a, "limit");
	long long limit = LIST_DEFAULT, got = 0;
	json_t *all = json_array(), *next = json_null();
	struct cli_table t;
	struct conf *c;
	char query[1024] = "", after[64] = "";
	int rc = 0;

	if (lim) {
		char *end;

		errno = 0;
		limit = strtoll(lim, &end, 10);
		if (errno || *end || limit < 1 || limit > 1000000) {
			fprintf(stderr, "leadcast lead list: --limit wants a number "
			    "from 1 to 1000000, not '%s'\n", lim);
			rc = 2;
		}
	}
	if (a->nwords != 1 || rc) {
		fprintf(stderr, "usage: leadcast lead list [--status S] [--owner REP] "
		    "[--team T] [--source S] [--limit N]\n");
		json_decref(all);
		json_decref(next);
		return 2;
	}
	for (const char *const *f = filters; *f; f++) {
		const char *v = cli_arg(a, *f);
		char q[256];
		size_t o = strlen(query);

		if (v)
			snprintf(query + o, sizeof(query) - o, "&%s=%s", *f,
			    cli_fmt_query(v, q, sizeof(q)));
	}
	if (!(c = cli_load(a->path))) {
		json_decref(all);
		json_decref(next);
		return 1;
	}
	/* page by page until the limit or the end */
	while (got < limit) {
		char url[1400], q[96];
		json_t *doc = NULL, *l;
		long long want = limit - got < LIST_PAGE ? limit - got : LIST_PAGE;
		size_t i;

		snprintf(url, sizeof(url), "/api/v1/leads?limit=%lld%s%s%s", want,
		    *after ? "&after=" : "", *after ? cli_fmt_query(after, q,
		    sizeof(q)) : "", query);
		if ((rc = cli_request(c, "GET", url, NULL, &doc)) != 0)
			break;
		json_array_foreach(json_object_get(doc, "leads"), i, l) {
			if (got < limit) {
				json_array_append(all, l);
				got++;
			}
		}
		json_decref(next);
		next = json_incref(json_object_get(doc, "next"));
		if (!next)
			next = json_null();
		cli_fmt_scalar(next, "", after, sizeof(after));
		i = json_array_size(json_object_get(doc, "leads"));
		json_decref(doc);
		if (!*after || i == 0)
			break;
	}
	if (rc == 0 && json_out) {
		/* "next" only when the limit cut the list short */
		print_json(json_pack("{s:O, s:O}", "leads", all, "next",
		    got >= limit ? next : json_null()));
	} else if (rc == 0) {
		json_t *l;
		size_t i;

		cli_table_init(&t, 10, head, "rlllllllrl");
		json_array_foreach(all, i, l) {
			char id[32], em[256], fn[200], ln[200], name[410], co[300],
			    so[200], st[32], ow[128], tm[128], sc[32], cr[64];
			const char *row[10] = { id, em, name, co, so, st, ow, tm, sc,
			    cr };

			text(l, "id", id, sizeof(id));
			text(l, "email", em, sizeof(em));
			text(l, "first_name", fn, sizeof(fn));
			text(l, "last_name", ln, sizeof(ln));
			snprintf(name, sizeof(name), "%s%s%s", fn, *fn && *ln ? " " :
			    "", ln);
			text(l, "company", co, sizeof(co));
			text(l, "source", so, sizeof(so));
			text(l, "status", st, sizeof(st));
			cli_fmt_scalar(json_object_get(l, "owner"), "-", ow,
			    sizeof(ow));
			cli_fmt_scalar(json_object_get(l, "team"), "-", tm,
			    sizeof(tm));
			cli_fmt_scalar(json_object_get(l, "score"), "-", sc,
			    sizeof(sc));
			cli_fmt_time(json_object_get(l, "created_at"), "-", cr,
			    sizeof(cr));
			cli_table_add(&t, row);
		}
		if (t.nrows)
			cli_table_print(&t, stdout);
		printf("%lld lead%s%s\n", got, got == 1 ? "" : "s", got >= limit &&
		    !json_is_null(next) ? " (more: raise --limit)" : "");
		cli_table_free(&t);
	}
	json_decref(all);
	json_decref(next);
	conf_free(c);
	return rc;
}

/* lead assign ID REP, lead status ID STATUS */
static int
lead_change(const struct cli_args *a)
{
	const char *verb = a->words[0];
	int assign = !strcmp(verb, "assign");
	const char *note = cli_arg(a, "note");
	json_t *body, *doc = NULL, *lead;
	struct conf *c;
	char url[256], q[128], id[64];
	int rc;

	if (a->nwords != 3) {
		fprintf(stderr, assign ? "usage: leadcast lead assign ID REP "
		    "[--note TEXT]\n" : "usage: leadcast lead status ID STATUS "
		    "[--note TEXT]\n       (STATUS: contacted, qualified, won, "
		    "lost, recycled)\n");
		return 2;
	}
	if (!(c = cli_load(a->path)))
		return 1;
	snprintf(url, sizeof(url), "/api/v1/leads/%s/%s", cli_fmt_query(
	    a->words[1], q, sizeof(q)), verb);
	body = json_pack("{s:s}", assign ? "rep" : "status", a->words[2]);
	if (note)
		json_object_set_new(body, "note", json_string(note));
	rc = cli_request(c, "POST", url, body, &doc);
	if (rc == 0 && json_out) {
		print_json(doc);
		doc = NULL;
	} else if (rc == 0) {
		lead = json_object_get(doc, "lead");
		text(lead, "id", id, sizeof(id));
		if (assign)
			printf("lead %s assigned to %s\n", *id ? id : a->words[1],
			    a->words[2]);
		else
			printf("lead %s is now %s\n", *id ? id : a->words[1],
			    a->words[2]);
		print_where(lead);
	}
	json_decref(doc);
	conf_free(c);
	return rc;
}

int
cli_lead(const char *path, int argc, char **argv)
{
	static const struct cli_verb verbs[] = {
		{ "import", "source= map=", lead_import },
		{ "add", "email= phone= first-name= last-name= company= source= "
		    "field=", lead_add },
		{ "show", "", lead_show },
		{ "list", "status= owner= team= source= limit=", lead_list },
		{ "assign", "note=", lead_change },
		{ "status", "note=", lead_change },
	};

	return cli_dispatch("lead", path, argc, argv, verbs, sizeof(verbs) /
	    sizeof(verbs[0]),
	    "usage: leadcast leads import FILE.csv --source NAME "
	    "[--map 'Column=field,...']\n"
	    "       leadcast lead add --email E [--phone P] [--first-name F] "
	    "[--last-name L]\n"
	    "                [--company C] [--source S] [--field name=value ...]\n"
	    "       leadcast lead show ID\n"
	    "       leadcast lead list [--status S] [--owner REP] [--team T] "
	    "[--source S] [--limit N]\n"
	    "       leadcast lead assign ID REP [--note TEXT]\n"
	    "       leadcast lead status ID STATUS [--note TEXT]\n");
}

/* ---- reps -------------------------------------------------------------------- */

static int
rep_list(const struct cli_args *a)
{
	static const char *const head[] = { "ID", "NAME", "TEAMS", "ON DUTY",
	    "IN HOURS", "OPEN/CAP", "WEIGHT", "ORIGIN" };
	struct cli_table t;
	struct conf *c;
	json_t *doc = NULL, *r;
	size_t i;
	int rc;

	if (a->nwords != 1) {
		fprintf(stderr, "usage: leadcast rep list\n");
		return 2;
	}
	if (!(c = cli_load(a->path)))
		return 1;
	rc = cli_request(c, "GET", "/api/v1/reps", NULL, &doc);
	if (rc == 0 && json_out) {
		print_json(doc);
		doc = NULL;
	} else if (rc == 0) {
		cli_table_init(&t, 8, head, "llllllrl");
		json_array_foreach(json_object_get(doc, "reps"), i, r) {
			char id[80], name[210], teams[512], duty[8], hours[8], oc[48],
			    w[32], orig[16], open[16], cap[16];
			const char *row[8] = { id, name, teams, duty, hours, oc, w,
			    orig };
			json_t *capv = json_object_get(r, "capacity");

			text(r, "id", id, sizeof(id));
			text(r, "name", name, sizeof(name));
			cli_fmt_scalar(json_object_get(r, "teams"), "-", teams,
			    sizeof(teams));
			cli_fmt_scalar(json_object_get(r, "on_duty"), "-", duty,
			    sizeof(duty));
			cli_fmt_scalar(json_object_get(r, "in_hours"), "-", hours,
			    sizeof(hours));
			cli_fmt_scalar(json_object_get(r, "open"), "0", open,
			    sizeof(open));
			if (json_is_integer(capv) && json_integer_value(capv) == 0)
				snprintf(cap, sizeof(cap), "%s", "-");
			else
				cli_fmt_scalar(capv, "-", cap, sizeof(cap));
			snprintf(oc, sizeof(oc), "%s/%s", open, cap);
			cli_fmt_scalar(json_object_get(r, "weight"), "-", w, sizeof(w));
			text(r, "origin", orig, sizeof(orig));
			cli_table_add(&t, row);
		}
		if (t.nrows)
			cli_table_print(&t, stdout);
		printf("%zu rep%s\n", t.nrows, t.nrows == 1 ? "" : "s");
		cli_table_free(&t);
	}
	json_decref(doc);
	conf_free(c);
	return rc;
}

/* A number option into body[key]; 0, or 2 (said why). */
static int
number_opt(const struct cli_args *a, const char *opt, const char *key,
    int integer, json_t *body)
{
	const char *v = cli_arg(a, opt);
	char *end;
	double d;

	if (!v)
		return 0;
	errno = 0;
	d = strtod(v, &end);
	if (errno || end == v || *end || !isfinite(d) || d < 0 ||
	    (integer && d != floor(d)) || d > 1e9) {
		fprintf(stderr, "leadcast rep add: --%s wants %s, not '%s'\n", opt,
		    integer ? "a whole number" : "a number", v);
		return 2;
	}
	json_object_set_new(body, key, integer ? json_integer((json_int_t)d) :
	    json_real(d));
	return 0;
}

static int
rep_add(const struct cli_args *a)
{
	static const char *const text_opts[][2] = { { "email", "email" },
	    { "phone", "phone" }, { "name", "name" },
	    { "time-zone", "time_zone" }, { "tier", "tier" },
	    { "manager", "manager" } };
	static const char *const list_opts[][2] = { { "team", "teams" },
	    { "hours", "hours" }, { "skill", "skills" },
	    { "territory", "territories" }, { "product", "products" },
	    { "language", "languages" }, { "notify", "notify" } };
	json_t *body, *doc = NULL;
	struct conf *c;
	int rc;

	if (a->nwords != 2 || (!cli_arg(a, "email") && !cli_arg(a, "phone"))) {
		fprintf(stderr, "usage: leadcast rep add ID --email E [--phone P] "
		    "[--name N] [--team T ...]\n"
		    "           [--weight W] [--capacity C] [--time-zone Z] "
		    "[--hours 'mon-fri 09:00-17:00' ...]\n"
		    "           [--skill S ...] [--territory T ...] [--product P "
		    "...] [--language L ...]\n"
		    "           [--tier T] [--notify sms|email ...] [--manager REP]"
		    "\n(--email or --phone, or both; list options repeat or take "
		    "a,b,c)\n");
		return 2;
	}
	body = json_pack("{s:s}", "id", a->words[1]);
	for (size_t i = 0; i < sizeof(text_opts) / sizeof(text_opts[0]); i++) {
		const char *v = cli_arg(a, text_opts[i][0]);

		if (v)
			json_object_set_new(body, text_opts[i][1], json_string(v));
	}
	for (size_t i = 0; i < sizeof(list_opts) / sizeof(list_opts[0]); i++) {
		json_t *l;

		/* hours hold commas ("mon,wed 09:00-12:00"): one a value */
		if (!strcmp(list_opts[i][0], "hours")) {
			l = NULL;
			for (int k = 0; k < a->n; k++) {
				if (strcmp(a->name[k], "hours"))
					continue;
				if (!l)
					l = json_array();
				json_array_append_new(l, json_string(a->val[k]));
			}
		} else {
			l = arg_list(a, list_opts[i][0]);
		}
		if (l)
			json_object_set_new(body, list_opts[i][1], l);
	}
	if (number_opt(a, "weight", "weight", 0, body) ||
	    number_opt(a, "capacity", "capacity", 1, body)) {
		json_decref(body);
		return 2;
	}
	if (!(c = cli_load(a->path))) {
		json_decref(body);
		return 1;
	}
	rc = cli_request(c, "POST", "/api/v1/reps", body, &doc);
	if (rc == 0 && json_out) {
		print_json(doc);
		doc = NULL;
	} else if (rc == 0) {
		printf("rep %s added\n", a->words[1]);
	}
	json_decref(doc);
	conf_free(c);
	return rc;
}

/* rep on|off|token ID */
static int
rep_one(const struct cli_args *a)
{
	const char *verb = a->words[0];
	int token = !strcmp(verb, "token"), on = !strcmp(verb, "on");
	json_t *doc = NULL;
	struct conf *c;
	char url[256], q[128];
	int rc;

	if (a->nwords != 2) {
		fprintf(stderr, "usage: leadcast rep %s ID\n", verb);
		return 2;
	}
	if (!(c = cli_load(a->path)))
		return 1;
	snprintf(url, sizeof(url), "/api/v1/reps/%s/%s", cli_fmt_query(
	    a->words[1], q, sizeof(q)), token ? "token" : "availability");
	rc = cli_request(c, token ? "GET" : "POST", url, token ? NULL :
	    json_pack("{s:b}", "available", on), &doc);
	if (rc == 0 && json_out) {
		print_json(doc);
		doc = NULL;
	} else if (rc == 0 && token) {
		const char *t = json_string_value(json_object_get(doc, "token"));

		if (t) {
			puts(t);
		} else {
			fprintf(stderr, "leadcastd's answer has no token\n");
			rc = 1;
		}
	} else if (rc == 0) {
		printf("rep %s is %s duty\n", a->words[1], on ? "on" : "off");
	}
	json_decref(doc);
	conf_free(c);
	return rc;
}

int
cli_rep(const char *path, int argc, char **argv)
{
	static const struct cli_verb verbs[] = {
		{ "list", "", rep_list },
		{ "add", "email= phone= name= team= weight= capacity= time-zone= "
		    "hours= skill= territory= product= language= tier= notify= "
		    "manager=", rep_add },
		{ "on", "", rep_one }, { "off", "", rep_one },
		{ "token", "", rep_one },
	};

	return cli_dispatch("rep", path, argc, argv, verbs, sizeof(verbs) /
	    sizeof(verbs[0]),
	    "usage: leadcast rep list\n"
	    "       leadcast rep add ID --email E [--phone P] [--name N] "
	    "[--team T ...] [--weight W]\n"
	    "                [--capacity C] [--time-zone Z] [--hours "
	    "'mon-fri 09:00-17:00' ...]\n"
	    "                [--skill S ...] [--territory T ...] [--product P "
	    "...] [--language L ...]\n"
	    "                [--tier T] [--notify sms|email ...] [--manager REP]\n"
	    "       leadcast rep on|off ID\n"
	    "       leadcast rep token ID\n");
}
