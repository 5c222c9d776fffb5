/*
 * leadcast - the command-line tool. check-config and version work
 * offline; the others talk to the running daemon's HTTP API with the admin
 * token from the same configuration. Every command takes --json.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apiclient.h"
#include "buf.h"
#include "conf.h"
#include "dkim.h"
#include "config.h"
#include "cli.h"

int json_out;

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: leadcast [-c FILE] [--json] COMMAND\n"
	    "commands:\n"
	    "  check-config            validate the configuration (offline)\n"
	    "  status                  the daemon's health (exit 0 ok, 2 "
	    "degraded, 1 down)\n"
	    "  reload                  reload the daemon's configuration\n"
	    "  campaign list           campaigns and their state\n"
	    "  campaign start|pause|resume|cancel|status NAME\n"
	    "  send-test NAME --to ADDRESS   one copy of a campaign, now\n"
	    "  drip list|status|pause|resume|enroll|exit|move ...   drips\n"
	    "  subscribers import FILE.csv --list LIST [--unconfirmed]\n"
	    "                          [--map 'Column=field,...']\n"
	    "  subscribers export --list LIST [--status S] [--out FILE.csv]\n"
	    "  leads import FILE.csv --source NAME [--map 'Column=field,...']\n"
	    "  lead add --email E [--phone P] [--first-name F] [--last-name L]\n"
	    "           [--company C] [--source S] [--field name=value ...]\n"
	    "  lead show ID            a lead, its score, owner and history\n"
	    "  lead list [--status S] [--owner REP] [--team T] [--source S] "
	    "[--limit N]\n"
	    "  lead assign ID REP [--note TEXT]\n"
	    "  lead status ID contacted|qualified|won|lost|recycled "
	    "[--note TEXT]\n"
	    "  rep list                reps, duty, hours, load\n"
	    "  rep add ID --email E [--phone P] [--name N] [--team T ...] "
	    "[--weight W]\n"
	    "          [--capacity C] [--time-zone Z] [--hours 'mon-fri "
	    "09:00-17:00' ...]\n"
	    "          [--skill S ...] [--territory T ...] [--product P ...] "
	    "[--language L ...]\n"
	    "  rep on|off ID           put a rep on or off duty\n"
	    "  rep token ID            the rep's personal API token\n"
	    "  report routing [--since DATE|7d] [--csv]\n"
	    "  report sms [--since DATE|7d] [--csv]\n"
	    "                          offers, acceptance, speed-to-lead by rep,"
	    " team, rule, source\n"
	    "  bounces review [--all] [--since DATE|7d] [--mailbox NAME] "
	    "[--limit N]\n"
	    "                          reports kept for review, recent bounces\n"
	    "  bounces test FILE.eml   what the bounce parser sees in a message "
	    "(offline)\n"
	    "  dkim-keygen DOMAIN SELECTOR [--ed25519] [--out FILE]\n"
	    "                          make a DKIM key, print its DNS record "
	    "(offline)\n"
	    "  check-dns DOMAIN [--ip SENDING_IP] [--selector S] "
	    "[--server ADDR[:PORT]]\n"
	    "          [--timeout 5s]  MX, SPF, DKIM, DMARC, reverse DNS and the"
	    "\n"
	    "                          Gmail/Yahoo bulk-sender checklist "
	    "(offline)\n"
	    "  version                 print the version\n"
	    "options:\n"
	    "  -c FILE        configuration (default %s)\n"
	    "  --json         machine-readable output\n", conf_default_path());
}

void
print_json(json_t *doc)
{
	char *s = json_dumps(doc, JSON_INDENT(2) | JSON_SORT_KEYS);

	if (s) {
		puts(s);
		free(s);
	}
	json_decref(doc);
}

struct conf *
cli_load(const char *path)
{
	struct cfgfile_errors errs = { NULL, 0 };
	struct conf *c = conf_load(path, &errs);

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
	struct conf *c = cli_load(path);

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
	struct conf *c = cli_load(path);
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
			print_json(json_incref(doc));
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
	struct conf *c = cli_load(path);
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
		print_json(json_incref(doc));
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

/* ---- admin API calls ------------------------------------------------------- */

/*
 * Call the admin API with the configuration's token. Returns the HTTP
 * status (the parsed body in *doc, caller frees) or -1 (message printed).
 */
int
api_call(const struct conf *c, const char *method, const char *path,
    const char *body, long timeout_ms, json_t **doc)
{
	struct apiclient_resp r;
	char token[512], err[512];
	int status;

	*doc = NULL;
	if (conf_admin_token(c, token, sizeof(token), err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		return -1;
	}
	if (apiclient_request(c, method, path, token, body, timeout_ms, &r) < 0) {
		fprintf(stderr, "leadcastd is not answering: %s\n", r.err);
		return -1;
	}
	status = r.status;
	if (r.body && r.len)
		*doc = json_loads(r.body, 0, NULL);
	apiclient_resp_free(&r);
	if (status == 401)
		fprintf(stderr, "the daemon refused the admin token\n");
	return status;
}

/* Print an API error document's message; returns 1. */
int
api_error(int status, json_t *doc)
{
	json_t *e = json_object_get(doc, "error");
	const char *m = json_string_value(json_object_get(e, "message"));
	const char *f = json_string_value(json_object_get(e, "field"));

	if (json_out && doc)
		print_json(json_incref(doc));
	else if (status != 401)
		fprintf(stderr, "%s%s%s (HTTP %d)\n", f ? f : "", f ? ": " : "",
		    m ? m : "request failed", status);
	return 1;
}

static void
print_counts(const char *label, json_t *obj)
{
	const char *k;
	json_t *v;
	int first = 1;

	printf("%-11s", label);
	json_object_foreach(obj, k, v) {
		printf("%s%s %lld", first ? "" : ", ", k,
		    (long long)json_integer_value(v));
		first = 0;
	}
	printf("%s\n", first ? "none" : "");
}

static int
cmd_campaign(const char *path, char **args, int nargs)
{
	struct conf *c;
	json_t *doc = NULL;
	char url[256];
	int status, rc = 0;
	const char *verb = nargs > 0 ? args[0] : "";

	if (nargs < 1 || (strcmp(verb, "list") && nargs != 2)) {
		fprintf(stderr, "usage: leadcast campaign list\n"
		    "       leadcast campaign start|pause|resume|cancel|status "
		    "NAME\n");
		return 1;
	}
	if (!(c = cli_load(path)))
		return 1;
	if (!strcmp(verb, "list")) {
		size_t i;
		json_t *o;

		status = api_call(c, "GET", "/api/v1/campaigns", NULL, 10000, &doc);
		if (status != 200) {
			rc = status < 0 ? 1 : api_error(status, doc);
		} else if (json_out) {
			print_json(doc);
			doc = NULL;
		} else {
			printf("%-24s %-10s %-26s %s\n", "CAMPAIGN", "STATUS",
			    "SCHEDULE", "SUBJECT");
			json_array_foreach(json_object_get(doc, "campaigns"), i, o)
				printf("%-24s %-10s %-26s %s\n",
				    json_string_value(json_object_get(o, "name")),
				    json_string_value(json_object_get(o, "status")),
				    json_string_value(json_object_get(o,
				    "schedule")), json_string_value(
				    json_object_get(o, "subject")));
		}
	} else if (!strcmp(verb, "status")) {
		snprintf(url, sizeof(url), "/api/v1/campaigns/%s/report", args[1]);
		status = api_call(c, "GET", url, NULL, 10000, &doc);
		if (status != 200) {
			rc = status < 0 ? 1 : api_error(status, doc);
		} else if (json_out) {
			print_json(doc);
			doc = NULL;
		} else {
			printf("campaign   %s\nstatus     %s\n", args[1],
			    json_string_value(json_object_get(doc, "status")));
			print_counts("deliveries", json_object_get(doc,
			    "deliveries"));
			print_counts("events", json_object_get(doc, "events"));
			print_counts("bounced", json_object_get(doc, "bounces"));
		}
	} else if (!strcmp(verb, "start") || !strcmp(verb, "pause") ||
	    !strcmp(verb, "resume") || !strcmp(verb, "cancel")) {
		snprintf(url, sizeof(url), "/api/v1/campaigns/%s/%s", args[1],
		    verb);
		status = api_call(c, "POST", url, "{}", 600000, &doc);
		if (status != 200) {
			rc = status < 0 ? 1 : api_error(status, doc);
		} else if (json_out) {
			print_json(doc);
			doc = NULL;
		} else if (!strcmp(verb, "start")) {
			printf("campaign %s started: %lld recipients\n", args[1],
			    (long long)json_integer_value(json_object_get(doc,
			    "recipients")));
		} else {
			printf("campaign %s is %s\n", args[1], json_string_value(
			    json_object_get(doc, "status")));
		}
	} else {
		fprintf(stderr, "leadcast campaign: unknown action '%s'\n", verb);
		rc = 1;
	}
	json_decref(doc);
	conf_free(c);
	return rc;
}

static int
cmd_send_test(const char *path, char **args, int nargs, const char *to)
{
	struct conf *c;
	json_t *doc = NULL, *body;
	char url[256], *b;
	int status, rc = 0;

	if (nargs != 1 || !to) {
		fprintf(stderr, "usage: leadcast send-test CAMPAIGN --to ADDRESS\n");
		return 1;
	}
	if (!(c = cli_load(path)))
		return 1;
	snprintf(url, sizeof(url), "/api/v1/campaigns/%s/test", args[0]);
	body = json_pack("{s:s}", "to", to);
	b = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	status = api_call(c, "POST", url, b, 120000, &doc);
	free(b);
	if (status != 200) {
		rc = status < 0 ? 1 : api_error(status, doc);
		if (!json_out && doc && json_object_get(doc, "response"))
			fprintf(stderr, "%s: %s\n", json_string_value(
			    json_object_get(doc, "status")), json_string_value(
			    json_object_get(doc, "response")));
	} else if (json_out) {
		print_json(doc);
		doc = NULL;
	} else {
		printf("sent a test of %s to %s (Message-ID <%s>)\n", args[0], to,
		    json_string_value(json_object_get(doc, "message_id")));
	}
	json_decref(doc);
	conf_free(c);
	return rc;
}

static int
cmd_dkim_keygen(const char *path, char **args, int nargs, int ed25519,
    const char *out)
{
	struct cfgfile_errors errs = { NULL, 0 };
	struct conf *c;
	struct buf txt = BUF_INIT;
	char file[4096], err[512];
	int rc;

	if (nargs != 2) {
		fprintf(stderr, "usage: leadcast dkim-keygen DOMAIN SELECTOR "
		    "[--ed25519] [--out FILE]\n");
		return 1;
	}
	if (out) {
		snprintf(file, sizeof(file), "%s", out);
	} else {
		/* keys/ next to the configuration, whatever else is wrong in it */
		c = conf_load(path, &errs);
		cfgfile_errors_free(&errs);
		snprintf(file, sizeof(file), "%s/keys", c ? c->dir : ".");
		if (mkdir(file, 0700) < 0 && errno != EEXIST) {
			fprintf(stderr, "cannot create %s: %s\n", file,
			    strerror(errno));
			conf_free(c);
			return 1;
		}
		snprintf(file + strlen(file), sizeof(file) - strlen(file),
		    "/%s.%s.pem", args[0], args[1]);
		conf_free(c);
	}
	rc = dkim_keygen(args[0], args[1], ed25519 ? DKIM_ALG_ED25519_SHA256 :
	    DKIM_ALG_RSA_SHA256, file, &txt, err, sizeof(err));
	if (rc < 0) {
		fprintf(stderr, "%s\n", err);
		buf_free(&txt);
		return 1;
	}
	if (json_out) {
		print_json(json_pack("{s:s, s:s, s:s, s:s, s:s}", "domain", args[0],
		    "selector", args[1], "algorithm", ed25519 ? "ed25519-sha256" :
		    "rsa-sha256", "key", file, "dns", buf_str(&txt)));
	} else {
		printf("wrote %s (mode 0600; make it readable by the daemon's user)"
		    "\n\npublish this DNS record:\n\n%s\n\nthen add to "
		    "leadcast.conf:\n\ndkim \"%s\" {\n\tselector = %s\n"
		    "\tkey = \"%s\"\n\talgorithm = %s\n}\n", file, buf_str(&txt),
		    args[0], args[1], file, ed25519 ? "ed25519-sha256" :
		    "rsa-sha256");
	}
	buf_free(&txt);
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char *path = NULL, *cmd, *to = NULL, *out = NULL;
	struct cli_sub_opts sub = { NULL, NULL, NULL, NULL, 0 };
	char *args[8];
	int opt, nargs = 0, ed25519 = 0;

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
	/* the routing commands parse their own options (cli_leads.c) */
	if (!strcmp(cmd, "lead") || !strcmp(cmd, "leads"))
		return cli_lead(path, argc - optind, argv + optind);
	if (!strcmp(cmd, "rep") || !strcmp(cmd, "reps"))
		return cli_rep(path, argc - optind, argv + optind);
	if (!strcmp(cmd, "report"))
		return cli_report(path, argc - optind, argv + optind);
	if (!strcmp(cmd, "check-dns"))
		return cli_check_dns(path, argc - optind, argv + optind);
	if (!strcmp(cmd, "bounces"))
		return cli_bounces(path, argc - optind, argv + optind);
	if (!strcmp(cmd, "drip") || !strcmp(cmd, "drips"))
		return cli_drip(path, argc - optind, argv + optind);
	/* the command's own words and options, in any order */
	for (; optind < argc; optind++) {
		const char *a = argv[optind];

		if (!strcmp(a, "--json")) {
			json_out = 1;
		} else if (!strcmp(a, "--ed25519")) {
			ed25519 = 1;
		} else if (!strcmp(a, "--unconfirmed")) {
			sub.unconfirmed = 1;
		} else if ((!strcmp(a, "--to") || !strcmp(a, "--out") ||
		    !strcmp(a, "-c") || !strcmp(a, "--list") ||
		    !strcmp(a, "--map") || !strcmp(a, "--status")) &&
		    optind + 1 < argc) {
			if (!strcmp(a, "--to"))
				to = argv[++optind];
			else if (!strcmp(a, "--out"))
				out = sub.out = argv[++optind];
			else if (!strcmp(a, "--list"))
				sub.list = argv[++optind];
			else if (!strcmp(a, "--map"))
				sub.map = argv[++optind];
			else if (!strcmp(a, "--status"))
				sub.status = argv[++optind];
			else
				path = argv[++optind];
		} else if (a[0] == '-' && a[1]) {
			fprintf(stderr, "leadcast %s: unknown option '%s'\n", cmd, a);
			return 1;
		} else if (nargs < 8) {
			args[nargs++] = argv[optind];
		} else {
			fprintf(stderr, "leadcast %s: too many arguments\n", cmd);
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
	if (nargs && (!strcmp(cmd, "check-config") || !strcmp(cmd, "status") ||
	    !strcmp(cmd, "reload"))) {
		fprintf(stderr, "leadcast %s: unexpected argument '%s'\n", cmd,
		    args[0]);
		return 1;
	}
	if (strcmp(cmd, "check-config") == 0)
		return cmd_check_config(path);
	if (strcmp(cmd, "status") == 0)
		return cmd_status(path);
	if (strcmp(cmd, "reload") == 0)
		return cmd_reload(path);
	if (strcmp(cmd, "campaign") == 0)
		return cmd_campaign(path, args, nargs);
	if (strcmp(cmd, "send-test") == 0)
		return cmd_send_test(path, args, nargs, to);
	if (strcmp(cmd, "dkim-keygen") == 0)
		return cmd_dkim_keygen(path, args, nargs, ed25519, out);
	if (strcmp(cmd, "subscribers") == 0)
		return cli_subscribers(path, args, nargs, &sub);
	fprintf(stderr, "leadcast: unknown command '%s'\n", cmd);
	usage(stderr);
	return 1;
}
