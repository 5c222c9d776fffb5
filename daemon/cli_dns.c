/*
 * cli_dns - `leadcast check-dns DOMAIN`: the deliverability checks of
 * lib/dnscheck run against the DNS with the configuration's DKIM keys,
 * public URL and TLS setting, printed one line per check (or as JSON).
 * Offline: it does not talk to the daemon.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "campaign.h"
#include "cli.h"
#include "conf.h"
#include "dns.h"
#include "dnscheck.h"

#define USAGE "usage: leadcast check-dns DOMAIN [--ip SENDING_IP] " \
	"[--selector S]\n" \
	"                 [--server ADDR[:PORT]] [--timeout 5s] [--json]\n"

#define MAX_FROM 16

/* The domain of each campaign's and notification's From address that is
 * not made by a template, lowercase, each once, into from[] (owned by the
 * caller). Returns how many. */
static size_t
from_domains(const struct conf *c, char **from, size_t max)
{
	const struct campaign_set *sets[2] = { c->campaigns, c->notifications };
	size_t n = 0;

	for (int k = 0; k < 2; k++)
		for (size_t i = 0; sets[k] && i < sets[k]->n; i++) {
			const char *src = sets[k]->v[i]->from_src, *at;
			size_t len = 0;
			char *d;

			if (!src || strstr(src, "{{") || !(at = strrchr(src, '@')))
				continue;
			at++;
			while (at[len] && at[len] != '>' && at[len] != ' ')
				len++;
			if (!len || !(d = strndup(at, len)))
				continue;
			for (char *p = d; *p; p++)
				*p = (char)tolower((unsigned char)*p);
			for (size_t j = 0; j < n && d; j++)
				if (strcmp(from[j], d) == 0) {
					free(d);
					d = NULL;
				}
			if (d && n < max)
				from[n++] = d;
			else
				free(d);
		}
	return n;
}

static void
print_text(const struct dnscheck_opts *o, const struct dnscheck_report *r,
    const char *server)
{
	int color = isatty(STDOUT_FILENO) && getenv("NO_COLOR") == NULL;
	static const char *const col[] = { "\033[32m", "\033[33m", "\033[31m",
	    "\033[35m" };

	printf("check-dns %s%s%s%s%s (DNS: %s)\n\n", o->domain,
	    o->ip ? ", sending IP " : "", o->ip ? o->ip : "",
	    o->selector ? ", selector " : "", o->selector ? o->selector : "",
	    server);
	for (size_t i = 0; i < r->n; i++) {
		const struct dnscheck_item *it = &r->item[i];
		char st[8];

		snprintf(st, sizeof(st), "%s", dnscheck_status_name(it->status));
		for (char *p = st; *p; p++)
			*p = (char)(*p - 'a' + 'A');
		printf("%s%-5s%s %-16s %s\n", color ? col[it->status] : "", st,
		    color ? "\033[0m" : "", it->check, it->summary);
		if (it->fix[0])
			printf("%-22s fix: %s\n", "", it->fix);
	}
	printf("\n%zu pass, %zu warn, %zu fail, %zu could not run\n",
	    r->count[DNSCHECK_PASS], r->count[DNSCHECK_WARN],
	    r->count[DNSCHECK_FAIL], r->count[DNSCHECK_ERROR]);
}

static void
print_doc(const struct dnscheck_opts *o, const struct dnscheck_report *r,
    const char *server)
{
	json_t *checks = json_array();

	for (size_t i = 0; i < r->n; i++) {
		const struct dnscheck_item *it = &r->item[i];
		json_t *c = json_pack("{s:s, s:s, s:s}", "check", it->check,
		    "status", dnscheck_status_name(it->status), "summary",
		    it->summary);

		if (it->fix[0])
			json_object_set_new(c, "fix", json_string(it->fix));
		json_array_append_new(checks, c);
	}
	print_json(json_pack("{s:s, s:s?, s:s?, s:s, s:b, s:{s:I, s:I, s:I, "
	    "s:I}, s:o}", "domain", o->domain, "ip", o->ip, "selector",
	    o->selector, "server", server, "ok", r->count[DNSCHECK_FAIL] == 0 &&
	    r->count[DNSCHECK_ERROR] == 0, "counts",
	    "pass", (json_int_t)r->count[DNSCHECK_PASS],
	    "warn", (json_int_t)r->count[DNSCHECK_WARN],
	    "fail", (json_int_t)r->count[DNSCHECK_FAIL],
	    "error", (json_int_t)r->count[DNSCHECK_ERROR], "checks", checks));
}

int
cli_check_dns(const char *path, int argc, char **argv)
{
	struct cli_args a;
	struct dnscheck_opts o;
	struct dnscheck_report *r = NULL;
	struct dns_client *dc = NULL;
	struct conf *c = NULL;
	const char *server, *t;
	char err[512], *from[MAX_FROM];
	size_t nfrom = 0;
	long timeout_ms = 5000;
	int rc;

	rc = cli_args_parse("check-dns", path, argc, argv,
	    "ip= selector= server= timeout=", &a);
	if (rc)
		return rc;
	if (a.nwords != 1) {
		fputs(USAGE, stderr);
		cli_args_free(&a);
		return 2;
	}
	if ((t = cli_arg(&a, "timeout")) && (conf_parse_duration(t,
	    &timeout_ms) < 0 || timeout_ms < 100 || timeout_ms > 60000)) {
		fprintf(stderr, "leadcast check-dns: --timeout: \"%s\" is not a "
		    "duration from 100ms to 60s\n", t);
		cli_args_free(&a);
		return 2;
	}
	if (!(c = cli_load(a.path ? a.path : conf_default_path()))) {
		cli_args_free(&a);
		return 1;
	}
	memset(&o, 0, sizeof(o));
	o.domain = a.words[0];
	o.ip = cli_arg(&a, "ip");
	o.selector = cli_arg(&a, "selector");
	o.envelope_domain = c->mail.bounce_domain;
	o.helo = c->mail.helo;
	o.keys = c->dkim;
	o.public_url = c->http.public_url;
	o.tls = c->mail.tls;
	o.transport = c->mail.kind == CONF_MAILDIR ? DNSCHECK_T_MAILDIR :
	    c->mail.kind == CONF_SMTP ? DNSCHECK_T_RELAY : DNSCHECK_T_MX;
	nfrom = from_domains(c, from, MAX_FROM);
	o.from = (const char *const *)from;
	o.nfrom = nfrom;
	server = cli_arg(&a, "server");
	if (!server || !*server)
		server = c->mail.nameserver;
	rc = 1;
	if (!(dc = dns_client_new(server, timeout_ms, err, sizeof(err)))) {
		fprintf(stderr, "leadcast check-dns: %s%s\n", cli_arg(&a,
		    "server") ? "--server: " : "", err);
		rc = 2;
		goto out;
	}
	if (!(r = malloc(sizeof(*r)))) {
		fprintf(stderr, "leadcast check-dns: out of memory\n");
		goto out;
	}
	if (dnscheck_run(dc, &o, r, err, sizeof(err)) < 0) {
		fprintf(stderr, "leadcast check-dns: %s\n", err);
		rc = 2;
		goto out;
	}
	if (json_out)
		print_doc(&o, r, dns_client_server(dc));
	else
		print_text(&o, r, dns_client_server(dc));
	rc = r->count[DNSCHECK_FAIL] || r->count[DNSCHECK_ERROR] ? 1 : 0;
out:
	for (size_t i = 0; i < nfrom; i++)
		free(from[i]);
	free(r);
	dns_client_free(dc);
	conf_free(c);
	cli_args_free(&a);
	return rc;
}
