/*
 * leadcast - the command-line tool. check-config and version work
 * offline; the others talk to the running daemon's HTTP API with the admin
 * token from the same configuration. Every command takes --json.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apiclient.h"
#include "conf.h"
#include "config.h"

static int json_out;

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: leadcast [-c FILE] [--json] COMMAND\n"
	    "commands:\n"
	    "  check-config   validate the configuration (offline)\n"
	    "  status         the daemon's health (exit 0 ok, 2 degraded, 1 down)\n"
	    "  reload         reload the daemon's configuration\n"
	    "  version        print the version\n"
	    "options:\n"
	    "  -c FILE        configuration (default %s)\n"
	    "  --json         machine-readable output\n", conf_default_path());
}

static void
print_json(json_t *doc)
{
	char *s = json_dumps(doc, JSON_INDENT(2) | JSON_SORT_KEYS);

	if (s) {
		puts(s);
		free(s);
	}
}

static struct conf *
load(const char *path, int quiet_ok)
{
	struct cfgfile_errors errs = { NULL, 0 };
	struct conf *c = conf_load(path, &errs);

	(void)quiet_ok;
	if (!c) {
		if (json_out) {
			json_t *a = json_array();

			for (size_t i = 0; i < errs.n; i++)
				json_array_append_new(a, json_string(errs.msgs[i]));
			print_json(json_pack("{s:b, s:s, s:o}", "ok", 0, "config",
			    path, "errors", a));
		} else {
			for (size_t i = 0; i < errs.n; i++)
				fprintf(stderr, "%s\n", errs.msgs[i]);
			fprintf(stderr, "%zu error%s in %s\n", errs.n,
			    errs.n == 1 ? "" : "s", path);
		}
	}
	cfgfile_errors_free(&errs);
	return c;
}

static int
cmd_check_config(const char *path)
{
	struct conf *c = load(path, 0);

	if (!c)
		return 1;
	if (json_out)
		print_json(json_pack("{s:b, s:s, s:[]}", "ok", 1, "config",
		    c->path, "errors"));
	else
		printf("configuration OK: %s\n", c->path);
	conf_free(c);
	return 0;
}

static int
cmd_status(const char *path)
{
	struct conf *c = load(path, 0);
	struct apiclient_resp r;
	json_t *doc;
	int rc;

	if (!c)
		return 1;
	if (apiclient_request(c, "GET", "/healthz", NULL, NULL, 5000, &r) < 0) {
		if (json_out)
			print_json(json_pack("{s:s, s:s}", "status", "down",
			    "error", r.err));
		else
			fprintf(stderr, "leadcastd is not answering: %s\n", r.err);
		conf_free(c);
		return 1;
	}
	doc = json_loads(r.body ? r.body : "", 0, NULL);
	if (!doc || r.status != 200) {
		fprintf(stderr, "unexpected answer from /healthz (HTTP %d)\n",
		    r.status);
		rc = 1;
	} else {
		const char *st = json_string_value(json_object_get(doc, "status"));
		json_t *db = json_object_get(doc, "database");

		rc = st && strcmp(st, "ok") == 0 ? 0 : 2;
		if (json_out) {
			print_json(doc);
		} else {
			printf("status:   %s\nversion:  %s\nuptime:   %llds\n"
			    "database: %s (%s)%s%s\n", st ? st : "?",
			    json_string_value(json_object_get(doc, "version")),
			    (long long)json_integer_value(json_object_get(doc,
			    "uptime_seconds")),
			    json_string_value(json_object_get(db, "state")),
			    json_string_value(json_object_get(db, "mode")),
			    json_object_get(db, "error") ? ": " : "",
			    json_object_get(db, "error") ? json_string_value(
			    json_object_get(db, "error")) : "");
		}
	}
	json_decref(doc);
	apiclient_resp_free(&r);
	conf_free(c);
	return rc;
}

/* SIGHUP the daemon named by the pid file, then wait until its status
 * shows a reload newer than the signal. 0 with r filled, or -1. */
static int
reload_by_signal(const struct conf *c, const char *token,
    struct apiclient_resp *r)
{
	FILE *f = fopen(c->pid_file, "r");
	long pid = 0;
	time_t t0 = time(NULL);

	if (!f || fscanf(f, "%ld", &pid) != 1 || pid <= 1) {
		fprintf(stderr, "the daemon refused the admin token, and its pid "
		    "file %s is not readable: send it SIGHUP yourself\n",
		    c->pid_file);
		if (f)
			fclose(f);
		return -1;
	}
	fclose(f);
	if (kill((pid_t)pid, SIGHUP) < 0) {
		fprintf(stderr, "cannot signal leadcastd (pid %ld): %s\n", pid,
		    strerror(errno));
		return -1;
	}
	for (int i = 0; i < 50; i++) {
		json_t *doc, *lr;

		usleep(100000);
		if (apiclient_request(c, "GET", "/api/v1/status", token, NULL,
		    5000, r) < 0 || r->status != 200) {
			apiclient_resp_free(r);
			continue;
		}
		doc = json_loads(r->body, 0, NULL);
		lr = json_object_get(doc, "last_reload");
		if (lr && json_integer_value(json_object_get(lr, "time")) >= t0) {
			char *s = json_dumps(lr, JSON_COMPACT);

			apiclient_resp_free(r);
			r->status = json_is_true(json_object_get(lr, "ok")) ? 200 :
			    422;
			r->body = s;
			json_decref(doc);
			return 0;
		}
		json_decref(doc);
		apiclient_resp_free(r);
	}
	fprintf(stderr, "sent SIGHUP to pid %ld, but the daemon did not report "
	    "a reload with the new token: check its log\n", pid);
	return -1;
}

static int
cmd_reload(const char *path)
{
	struct conf *c = load(path, 0);
	struct apiclient_resp r;
	char token[512], err[512];
	json_t *doc;
	int rc = 1;

	if (!c)
		return 1;
	if (conf_admin_token(c, token, sizeof(token), err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		conf_free(c);
		return 1;
	}
	if (apiclient_request(c, "POST", "/api/v1/reload", token, "{}", 10000,
	    &r) < 0) {
		fprintf(stderr, "leadcastd is not answering: %s\n", r.err);
		conf_free(c);
		return 1;
	}
	if (r.status == 401) {
		/* The file names a new admin token the daemon does not know
		 * yet: signal it instead, then ask with the new token. */
		apiclient_resp_free(&r);
		rc = reload_by_signal(c, token, &r);
		if (rc != 0) {
			conf_free(c);
			return 1;
		}
	}
	doc = json_loads(r.body ? r.body : "", 0, NULL);
	if (json_out && doc) {
		print_json(doc);
	} else if (r.status == 200) {
		const char *rn = json_string_value(json_object_get(doc,
		    "restart_needed"));

		printf("configuration reloaded\n");
		if (rn && *rn)
			printf("these changes need a restart: %s\n", rn);
	} else if (r.status == 401) {
		fprintf(stderr, "the daemon refused the admin token\n");
	} else {
		json_t *e;
		size_t i;

		json_array_foreach(json_object_get(doc, "errors"), i, e)
			fprintf(stderr, "%s\n", json_string_value(e));
		fprintf(stderr, "reload failed (HTTP %d): the running "
		    "configuration is kept\n", r.status);
	}
	rc = r.status == 200 ? 0 : 1;
	json_decref(doc);
	apiclient_resp_free(&r);
	conf_free(c);
	return rc;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char *path = NULL, *cmd;
	int opt;

	while ((opt = getopt_long(argc, argv, "+c:jh", opts, NULL)) != -1) {
		switch (opt) {
		case 'c': path = optarg; break;
		case 'j': json_out = 1; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 1;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 1;
	}
	cmd = argv[optind++];
	/* options may also follow the command */
	for (; optind < argc; optind++) {
		if (strcmp(argv[optind], "--json") == 0) {
			json_out = 1;
		} else {
			fprintf(stderr, "leadcast %s: unexpected argument '%s'\n",
			    cmd, argv[optind]);
			return 1;
		}
	}
	if (!path)
		path = conf_default_path();
	if (strcmp(cmd, "version") == 0) {
		if (json_out)
			print_json(json_pack("{s:s}", "version", PACKAGE_VERSION));
		else
			printf("leadcast %s\n", PACKAGE_VERSION);
		return 0;
	}
	if (strcmp(cmd, "check-config") == 0)
		return cmd_check_config(path);
	if (strcmp(cmd, "status") == 0)
		return cmd_status(path);
	if (strcmp(cmd, "reload") == 0)
		return cmd_reload(path);
	fprintf(stderr, "leadcast: unknown command '%s'\n", cmd);
	usage(stderr);
	return 1;
}
