/*
 * cli_drip - `leadcast drip list|status|pause|resume|enroll|exit|move`:
 * the drips and their enrollments through /api/v1/drips... . status
 * prints the per-step report (entered, sent, delivered, opened and
 * clicked by people, exited by a goal, converted); --json prints the
 * API's documents. It does not talk to the database.
 */
#include "config.h"
#include "cli.h"
#include "cli_fmt.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"

static int
call(const struct cli_args *a, const char *method, const char *url,
    json_t *body, json_t **doc)
{
	struct conf *c = cli_load(a->path);
	int rc;

	if (!c) {
		json_decref(body);
		return 1;
	}
	rc = cli_request(c, method, url, body, doc);
	conf_free(c);
	return rc;
}

/* A drip name from the command line, checked before it goes in a URL. */
static const char *
drip_name(const struct cli_args *a, const char *usage)
{
	const char *n = a->nwords >= 2 ? a->words[1] : NULL;

	if (!n || strlen(n) > 64 || strspn(n, "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") != strlen(n)) {
		fprintf(stderr, "%s", usage);
		return NULL;
	}
	return n;
}

static int
drip_list(const struct cli_args *a)
{
	static const char *const head[] = { "DRIP", "VERSION", "STATE", "ACTIVE",
	    "PAUSED", "DONE", "EXITED", "REFUSED", "DESCRIPTION" };
	struct cli_table t;
	json_t *doc = NULL, *d;
	size_t i;

	if (call(a, "GET", "/api/v1/drips", NULL, &doc))
		return 1;
	if (json_out) {
		print_json(doc);
		return 0;
	}
	cli_table_init(&t, 9, head, "lrlrrrrrl");
	json_array_foreach(json_object_get(doc, "drips"), i, d) {
		json_t *en = json_object_get(d, "enrollments");
		char v[5][32], ver[16];
		const char *row[9];
		static const char *const st[] = { "active", "paused", "done",
		    "exited", "refused" };

		for (int k = 0; k < 5; k++)
			cli_fmt_scalar(json_object_get(en, st[k]), "0", v[k],
			    sizeof(v[k]));
		cli_fmt_scalar(json_object_get(d, "version"), "-", ver,
		    sizeof(ver));
		row[0] = json_string_value(json_object_get(d, "name"));
		row[1] = ver;
		row[2] = json_is_true(json_object_get(d, "paused")) ? "paused" :
		    "running";
		for (int k = 0; k < 5; k++)
			row[3 + k] = v[k];
		row[8] = json_string_value(json_object_get(d, "description"));
		cli_table_add(&t, row);
	}
	if (t.nrows)
		cli_table_print(&t, stdout);
	printf("%zu drip%s\n", t.nrows, t.nrows == 1 ? "" : "s");
	cli_table_free(&t);
	json_decref(doc);
	return 0;
}

static int
drip_status(const struct cli_args *a)
{
	static const char *const head[] = { "STEP", "TYPE", "ENTERED", "SENT",
	    "DELIVERED", "OPENED", "CLICKED", "GOAL EXITS", "CONVERTED" };
	static const char *const keys[] = { "entered", "sent", "delivered",
	    "opened", "clicked", "exited_by_goal", "converted" };
	const char *name = drip_name(a, "usage: leadcast drip status NAME\n");
	struct cli_table t;
	json_t *doc = NULL, *s;
	char url[128], buf[64];
	const char *k;
	size_t i;

	if (!name)
		return 2;
	snprintf(url, sizeof(url), "/api/v1/drips/%s/report", name);
	if (call(a, "GET", url, NULL, &doc))
		return 1;
	if (json_out) {
		print_json(doc);
		return 0;
	}
	printf("drip        %s (version %s)%s\n", name, cli_fmt_scalar(
	    json_object_get(doc, "version"), "-", buf, sizeof(buf)),
	    json_is_true(json_object_get(doc, "paused")) ? ", paused" : "");
	printf("enrollments");
	json_object_foreach(json_object_get(doc, "enrollments"), k, s)
		printf(" %s %s", k, cli_fmt_scalar(s, "0", buf, sizeof(buf)));
	printf("\n");
	if (json_object_size(json_object_get(doc, "goals_reached"))) {
		printf("goals      ");
		json_object_foreach(json_object_get(doc, "goals_reached"), k, s)
			printf(" %s %s", k, cli_fmt_scalar(s, "0", buf,
			    sizeof(buf)));
		printf("\n");
	}
	cli_table_init(&t, 9, head, "llrrrrrrr");
	json_array_foreach(json_object_get(doc, "steps"), i, s) {
		char v[7][32];
		const char *row[9];

		row[0] = json_string_value(json_object_get(s, "step"));
		row[1] = json_string_value(json_object_get(s, "type"));
		for (int j = 0; j < 7; j++) {
			cli_fmt_scalar(json_object_get(s, keys[j]), "0", v[j],
			    sizeof(v[j]));
			row[2 + j] = v[j];
		}
		cli_table_add(&t, row);
	}
	cli_table_print(&t, stdout);
	cli_table_free(&t);
	json_decref(doc);
	return 0;
}

/* pause, resume, enroll, exit, move: NAME [--lead ID] */
static int
drip_action(const struct cli_args *a, const char *what, int need_lead)
{
	char usage[160], url[160];
	const char *name, *lead = cli_arg(a, "lead");
	json_t *doc = NULL, *body = json_object();
	char *end = NULL;
	long long id = 0;

	snprintf(usage, sizeof(usage), "usage: leadcast drip %s NAME %s\n",
	    what, need_lead ? "--lead ID" : "[--lead ID]");
	if (!(name = drip_name(a, usage))) {
		json_decref(body);
		return 2;
	}
	if (lead) {
		id = strtoll(lead, &end, 10);
		if (!*lead || *end || id <= 0) {
			fprintf(stderr, "leadcast drip %s: --lead: a lead's id, a "
			    "positive whole number\n", what);
			json_decref(body);
			return 2;
		}
		json_object_set_new(body, "lead", json_integer(id));
	} else if (need_lead) {
		fprintf(stderr, "%s", usage);
		json_decref(body);
		return 2;
	}
	snprintf(url, sizeof(url), "/api/v1/drips/%s/%s", name, what);
	if (call(a, "POST", url, body, &doc))
		return 1;
	if (json_out) {
		print_json(doc);
		return 0;
	}
	if (!strcmp(what, "enroll"))
		printf("lead %lld enrolled in %s (enrollment %lld)\n", id, name,
		    (long long)json_integer_value(json_object_get(
		    json_object_get(doc, "enrollment"), "id")));
	else if (!strcmp(what, "exit"))
		printf("lead %lld left %s\n", id, name);
	else if (!strcmp(what, "move"))
		printf("%lld enrollment(s) moved to version %lld, %lld not "
		    "(their step is not in it)\n", (long long)json_integer_value(
		    json_object_get(doc, "moved")), (long long)json_integer_value(
		    json_object_get(doc, "version")), (long long)
		    json_integer_value(json_object_get(doc, "not_moved")));
	else if (lead)
		printf("lead %lld %s in %s\n", id, !strcmp(what, "pause") ?
		    "paused" : "resumed", name);
	else
		printf("drip %s %s (%lld enrollments)\n", name, !strcmp(what,
		    "pause") ? "paused" : "resumed", (long long)
		    json_integer_value(json_object_get(doc, "enrollments")));
	json_decref(doc);
	return 0;
}

static int drip_pause(const struct cli_args *a) { return drip_action(a, "pause", 0); }
static int drip_resume(const struct cli_args *a) { return drip_action(a, "resume", 0); }
static int drip_enroll(const struct cli_args *a) { return drip_action(a, "enroll", 1); }
static int drip_exit(const struct cli_args *a) { return drip_action(a, "exit", 1); }
static int drip_move(const struct cli_args *a) { return drip_action(a, "move", 0); }

int
cli_drip(const char *path, int argc, char **argv)
{
	static const struct cli_verb verbs[] = {
		{ "list", "", drip_list },
		{ "status", "", drip_status },
		{ "report", "", drip_status },
		{ "pause", "lead=", drip_pause },
		{ "resume", "lead=", drip_resume },
		{ "enroll", "lead=", drip_enroll },
		{ "exit", "lead=", drip_exit },
		{ "move", "lead=", drip_move },
	};

	return cli_dispatch("drip", path, argc, argv, verbs,
	    sizeof(verbs) / sizeof(verbs[0]),
	    "usage: leadcast drip list\n"
	    "       leadcast drip status NAME       per-step report\n"
	    "       leadcast drip pause|resume NAME [--lead ID]\n"
	    "       leadcast drip enroll|exit NAME --lead ID\n"
	    "       leadcast drip move NAME [--lead ID]   to the current "
	    "version\n");
}
