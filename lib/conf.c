/*
 * conf - typed configuration bound from the cfgfile tree. See conf.h.
 */
#include "conf.h"
#include "log.h"
#include "botclass.h"
#include "campaign.h"
#include "drip.h"
#include "dkim.h"
#include "form.h"
#include "mime.h"
#include "phone.h"
#include "route.h"
#include "score.h"
#include "smsgw.h"
#include "tmpl.h"

#include <openssl/ssl.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#ifndef LC_SYSCONFDIR
#define LC_SYSCONFDIR "/etc/leadcast"
#endif
#ifndef LC_DATADIR
#define LC_DATADIR "/usr/share/leadcast"
#endif
#ifndef LC_LOCALSTATEDIR
#define LC_LOCALSTATEDIR "/var/lib/leadcast"
#endif

/* ---- value parsers ------------------------------------------------------ */

int
conf_parse_duration(const char *s, long *ms)
{
	static const struct { const char *unit; long ms; } units[] = {
		{ "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "h", 3600000 },
		{ "d", 86400000 }, { "w", 604800000 }, { "", 1000 },
	};
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (end == s || errno || v < 0 || *s == '+' || *s == '-')
		return -1;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(end, units[i].unit) == 0) {
			double r = v * (double)units[i].ms;

			if (r > (double)LONG_MAX / 2)
				return -1;
			*ms = (long)(r + 0.5);
			return 0;
		}
	}
	return -1;
}

int
conf_parse_size(const char *s, size_t *bytes)
{
	unsigned long long v, mul = 1;
	char *end;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -1;
	if (*end == 'K' || *end == 'k')
		mul = 1024ULL, end++;
	else if (*end == 'M')
		mul = 1024ULL * 1024, end++;
	else if (*end == 'G')
		mul = 1024ULL * 1024 * 1024, end++;
	if (*end == 'B')
		end++;
	if (*end || v > (unsigned long long)SIZE_MAX / mul)
		return -1;
	*bytes = (size_t)(v * mul);
	return 0;
}

int
conf_parse_hostport(const char *s, char *host, size_t hn, int *port)
{
	const char *colon;
	char *end;
	long p;
	size_t len;

	if (s[0] == '[') {
		const char *rb = strchr(s, ']');

		if (!rb || rb[1] != ':')
			return -1;
		len = (size_t)(rb - s - 1);
		s++;
		colon = rb + 1;
	} else {
		if (!(colon = strrchr(s, ':')) || memchr(s, ':', (size_t)(colon - s)))
			return -1;
		len = (size_t)(colon - s);
	}
	if (len == 0 || len >= hn)
		return -1;
	memcpy(host, s, len);
	host[len] = '\0';
	errno = 0;
	p = strtol(colon + 1, &end, 10);
	if (errno || *end || end == colon + 1 || p < 0 || p > 65535)
		return -1;
	*port = (int)p;
	return 0;
}

static int
parse_long(const char *s, long *out)
{
	char *end;

	errno = 0;
	*out = strtol(s, &end, 10);
	return (errno || end == s || *end) ? -1 : 0;
}

static int
parse_bool(const char *s, int *out)
{
	if (!strcasecmp(s, "true") || !strcasecmp(s, "yes") ||
	    !strcasecmp(s, "on") || !strcmp(s, "1"))
		return *out = 1, 0;
	if (!strcasecmp(s, "false") || !strcasecmp(s, "no") ||
	    !strcasecmp(s, "off") || !strcmp(s, "0"))
		return *out = 0, 0;
	return -1;
}

/* Remove "." and ".." components and doubled slashes, in place. */
static void
normalize_path(char *p)
{
	char *out = p, *seg = p;

	if (*p != '/')
		return;
	while (*seg) {
		char *end;
		size_t len;

		while (*seg == '/')
			seg++;
		end = strchrnul(seg, '/');
		len = (size_t)(end - seg);
		if (len == 0 || (len == 1 && seg[0] == '.')) {
			/* skip */
		} else if (len == 2 && seg[0] == '.' && seg[1] == '.') {
			while (out > p && *--out != '/')
				;
		} else {
			*out++ = '/';
			memmove(out, seg, len);
			out += len;
		}
		seg = end;
	}
	if (out == p)
		*out++ = '/';
	*out = '\0';
}

/* Allocates: an absolute path for s relative to basedir. Caller frees. */
static char *
resolve_path(const char *basedir, const char *s)
{
	char *p;

	if (s[0] == '\0' || !basedir)
		return strdup(s);
	if (s[0] == '/')
		p = strdup(s);
	else if (asprintf(&p, "%s/%s", basedir, s) < 0)
		return NULL;
	if (p)
		normalize_path(p);
	return p;
}

/* ---- generic binding ---------------------------------------------------- */

static int
bind_value(const struct conf_key *k, const char *text,
    const struct cfgfile_pos *pos, void *target, const char *basedir,
    struct cfgfile_errors *errs)
{
	char *field = (char *)target + k->off;
	long lv;
	size_t sz;
	int b;

	switch (k->type) {
	case CONF_STR:
	case CONF_PATH:
	case CONF_ENUM:
		if (k->type == CONF_ENUM) {
			const char *const *c;

			for (c = k->choices; *c && strcmp(*c, text); c++)
				;
			if (!*c) {
				char all[256] = "";

				for (c = k->choices; *c; c++)
					snprintf(all + strlen(all),
					    sizeof(all) - strlen(all), "%s%s",
					    c == k->choices ? "" : ", ", *c);
				cfgfile_error(errs, pos, "%s: '%s' is not one "
				    "of: %s", k->name, text, all);
				return -1;
			}
		}
		free(*(char **)field);
		*(char **)field = k->type == CONF_PATH ?
		    resolve_path(basedir, text) : strdup(text);
		return 0;
	case CONF_INT:
		if (parse_long(text, &lv) < 0 || lv < k->min || lv > k->max) {
			cfgfile_error(errs, pos, "%s: expected an integer from "
			    "%lld to %lld, got '%s'", k->name, k->min, k->max,
			    text);
			return -1;
		}
		*(long *)field = lv;
		return 0;
	case CONF_DURATION:
		if (conf_parse_duration(text, &lv) < 0 || lv < k->min ||
		    lv > k->max) {
			cfgfile_error(errs, pos, "%s: expected a duration from "
			    "%lldms to %llds (like 30s, 5m, 2h), got '%s'",
			    k->name, k->min, k->max / 1000, text);
			return -1;
		}
		*(long *)field = lv;
		return 0;
	case CONF_SIZE:
		if (conf_parse_size(text, &sz) < 0 || (long long)sz < k->min ||
		    (long long)sz > k->max) {
			cfgfile_error(errs, pos, "%s: expected a size from %lld "
			    "to %lld bytes (like 512, 64K, 1M), got '%s'",
			    k->name, k->min, k->max, text);
			return -1;
		}
		*(size_t *)field = sz;
		return 0;
	case CONF_BOOL:
		if (parse_bool(text, &b) < 0) {
			cfgfile_error(errs, pos, "%s: expected true or false, "
			    "got '%s'", k->name, text);
			return -1;
		}
		*(int *)field = b;
		return 0;
	case CONF_STRLIST:
		break;
	}
	return -1;
}

static int
strlist_add(struct conf_strlist *l, const char *s)
{
	char **v = realloc(l->v, (l->n + 1) * sizeof(*v));

	if (!v)
		return -1;
	l->v = v;
	if (!(v[l->n] = strdup(s)))
		return -1;
	l->n++;
	return 0;
}

static void
strlist_free(struct conf_strlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

int
conf_bind(const struct conf_key *keys, struct cfgfile_node *section,
    void *target, const char *basedir, struct cfgfile_errors *errs)
{
	size_t before = errs->n;

	for (const struct conf_key *k = keys; k->name; k++) {
		struct cfgfile_node *found = NULL;
		struct cfgfile_pos defpos = { NULL, 0, 0 };

		for (struct cfgfile_node *n = section ? section->child : NULL;
		    n; n = n->next) {
			if (strcmp(n->key, k->name) != 0)
				continue;
			if (found) {
				cfgfile_error(errs, &n->pos, "'%s' is set twice "
				    "(first at line %d)", k->name,
				    found->pos.line);
				n->used = 1;
				continue;
			}
			found = n;
			n->used = 1;
		}
		if (k->type == CONF_STRLIST) {
			struct conf_strlist *l = (struct conf_strlist *)
			    ((char *)target + k->off);

			strlist_free(l);
			if (!found) {
				if (k->def && *k->def)
					strlist_add(l, k->def);
				continue;
			}
			if (found->kind == CFGFILE_VALUE) {
				strlist_add(l, found->value);
			} else if (found->kind == CFGFILE_LIST) {
				for (size_t i = 0; i < found->nitems; i++)
					strlist_add(l, found->items[i]);
			} else {
				cfgfile_error(errs, &found->pos, "'%s' is a "
				    "list, not a section", k->name);
			}
			continue;
		}
		if (!found) {
			if (k->def && bind_value(k, k->def, &defpos, target,
			    basedir, errs) < 0)
				log_error("built-in default of %s is invalid",
				    k->name);
			continue;
		}
		if (found->kind != CFGFILE_VALUE) {
			cfgfile_error(errs, &found->pos, "'%s' takes a single "
			    "value", k->name);
			goto fallback;
		}
		/* Values from configuration never carry control characters. */
		for (const char *p = found->value; *p; p++) {
			if ((unsigned char)*p < 0x20) {
				cfgfile_error(errs, &found->vpos, "%s: control "
				    "character in value", k->name);
				goto fallback;
			}
		}
		if (bind_value(k, found->value, &found->vpos, target, basedir,
		    errs) == 0)
			continue;
fallback:
		/* keep the default so the struct is complete: every field is
		 * set even when the configuration is refused */
		if (k->def)
			bind_value(k, k->def, &defpos, target, basedir, errs);
	}
	return (int)(errs->n - before);
}

void
conf_unbind(const struct conf_key *keys, void *target)
{
	for (const struct conf_key *k = keys; k->name; k++) {
		char *field = (char *)target + k->off;

		if (k->type == CONF_STR || k->type == CONF_PATH ||
		    k->type == CONF_ENUM) {
			free(*(char **)field);
			*(char **)field = NULL;
		} else if (k->type == CONF_STRLIST) {
			strlist_free((struct conf_strlist *)field);
		}
	}
}

int
conf_check_unknown(struct cfgfile_node *section, struct cfgfile_errors *errs)
{
	int n = 0;

	for (struct cfgfile_node *c = section->child; c; c = c->next) {
		if (c->used)
			continue;
		if (c->kind == CFGFILE_SECTION)
			cfgfile_error(errs, &c->pos, "unknown section '%s'",
			    c->key);
		else
			cfgfile_error(errs, &c->pos, "unknown key '%s'%s%s",
			    c->key, *section->key ? " in section " : "",
			    section->key);
		n++;
	}
	return n;
}

/* ---- leadcast.conf ------------------------------------------------------ */

static const char *const log_levels[] = { "error", "warn", "info", "debug",
	NULL };
static const char *const facilities[] = { "daemon", "mail", "user", "local0",
	"local1", "local2", "local3", "local4", "local5", "local6", "local7",
	NULL };

#define C(f) offsetof(struct conf, f)
static const struct conf_key main_keys[] = {
	{ "user", CONF_STR, C(user), "leadcast", 0, 0, NULL, CONF_RESTART },
	{ "state_dir", CONF_PATH, C(state_dir), LC_LOCALSTATEDIR, 0, 0, NULL,
	  CONF_RESTART },
	{ "pid_file", CONF_PATH, C(pid_file), "", 0, 0, NULL, CONF_RESTART },
	{ "log_level", CONF_ENUM, C(log_level), "info", 0, 0, log_levels, 0 },
	{ "syslog_facility", CONF_ENUM, C(syslog_facility), "daemon", 0, 0,
	  facilities, CONF_RESTART },
	{ "database", CONF_STR, C(database), "embedded", 0, 0, NULL,
	  CONF_RESTART },
	{ "pg_bindir", CONF_PATH, C(pg_bindir), "", 0, 0, NULL, CONF_RESTART },
	{ "admin_token", CONF_STR, C(admin_token), "", 0, 0, NULL, 0 },
	{ "admin_token_file", CONF_PATH, C(admin_token_file), "", 0, 0, NULL, 0 },
	{ "workers", CONF_INT, C(workers), "4", 1, 256, NULL, CONF_RESTART },
	{ "shutdown_timeout", CONF_DURATION, C(shutdown_timeout_ms), "10s", 0,
	  3600000, NULL, 0 },
	{ "templates", CONF_PATH, C(templates_dir), "", 0, 0, NULL, 0 },
	{ "campaigns", CONF_PATH, C(campaigns_dir), "campaigns", 0, 0, NULL, 0 },
	{ "notifications", CONF_PATH, C(notifications_dir), "notifications", 0,
	  0, NULL, 0 },
	{ "forms", CONF_PATH, C(forms_dir), "forms", 0, 0, NULL, 0 },
	{ "drips", CONF_PATH, C(drips_dir), "drips", 0, 0, NULL, 0 },
	{ "routing", CONF_PATH, C(routing_path), "", 0, 0, NULL, 0 },
	{ "scoring", CONF_PATH, C(scoring_path), "", 0, 0, NULL, 0 },
	{ "sms", CONF_PATH, C(sms_path), "", 0, 0, NULL, 0 },
	{ "default_country", CONF_STR, C(default_country), "", 0, 0, NULL, 0 },
	{ NULL, 0, 0, NULL, 0, 0, NULL, 0 }
};
#undef C

#define H(f) offsetof(struct conf_http, f)
static const struct conf_key http_keys[] = {
	{ "listen", CONF_STRLIST, H(listen), "127.0.0.1:8025", 0, 0, NULL,
	  CONF_RESTART },
	{ "public_url", CONF_STR, H(public_url), "http://127.0.0.1:8025", 0, 0,
	  NULL, 0 },
	{ "max_body_size", CONF_SIZE, H(max_body_size), "1M", 1024,
	  64LL * 1024 * 1024, NULL, 0 },
	{ "max_header_size", CONF_SIZE, H(max_header_size), "16K", 1024,
	  1024 * 1024, NULL, 0 },
	{ "timeout", CONF_DURATION, H(timeout_ms), "30s", 1000, 3600000, NULL, 0 },
	{ NULL, 0, 0, NULL, 0, 0, NULL, 0 }
};
#undef H

#define T(f) offsetof(struct conf_track, f)
static const struct conf_key track_keys[] = {
	{ "listen", CONF_STRLIST, T(listen), "", 0, 0, NULL, CONF_RESTART },
	{ "threads", CONF_INT, T(threads), "2", 1, 64, NULL, CONF_RESTART },
	{ "queue", CONF_INT, T(queue), "16384", 256, 1000000, NULL,
	  CONF_RESTART },
	{ "links", CONF_INT, T(links), "1000000", 1000, 100000000, NULL,
	  CONF_RESTART },
	{ "batch", CONF_INT, T(batch), "1000", 1, 2000, NULL, 0 },
	{ "flush", CONF_DURATION, T(flush_ms), "10ms", 1, 10000, NULL, 0 },
	{ "rate", CONF_STR, T(rate), "600/m", 0, 0, NULL, 0 },
	{ "builtin_lists", CONF_BOOL, T(builtin_lists), "true", 0, 0, NULL, 0 },
	{ "machine_agents", CONF_STRLIST, T(machine_agents), "", 0, 0, NULL, 0 },
	{ "machine_networks", CONF_STRLIST, T(machine_networks), "", 0, 0, NULL,
	  0 },
	{ "scanner_agents", CONF_STRLIST, T(scanner_agents), "", 0, 0, NULL, 0 },
	{ "scanner_networks", CONF_STRLIST, T(scanner_networks), "", 0, 0, NULL,
	  0 },
	{ "scanner_delay", CONF_DURATION, T(scanner_delay_ms), "10s", 0,
	  3600000, NULL, 0 },
	{ "burst", CONF_DURATION, T(burst_ms), "1s", 0, 60000, NULL, 0 },
	{ "honeypot_tag", CONF_STR, T(honeypot_tag), "honeypot", 0, 0, NULL, 0 },
	{ "settle", CONF_DURATION, T(settle_ms), "5s", 0, 600000, NULL, 0 },
	{ "sites", CONF_STRLIST, T(sites), "", 0, 0, NULL, 0 },
	{ "cookie_domain", CONF_STR, T(cookie_domain), "", 0, 0, NULL, 0 },
	{ "cookie_max_age", CONF_DURATION, T(cookie_max_age_ms), "365d", 0,
	  3LL * 365 * 86400000, NULL, 0 },
	{ "hot_pages", CONF_STRLIST, T(hot_pages), "", 0, 0, NULL, 0 },
	{ "forward_rate", CONF_STR, T(forward_rate), "5/h", 0, 0, NULL, 0 },
	{ "trusted_proxies", CONF_STRLIST, T(trusted_proxies), "", 0, 0, NULL,
	  0 },
	{ NULL, 0, 0, NULL, 0, 0, NULL, 0 }
};
#undef T

static const struct cfgfile_pos *at_key(struct cfgfile_node *section,
    const char *key, const struct cfgfile_pos *file);

/* track { }: listen addresses, the rate and the bot lists. */
static void
check_track(struct conf *c, struct cfgfile_node *sec,
    struct cfgfile_errors *errs)
{
	struct cfgfile_pos file = { c->path, 0, 0 };
	struct conf_track *t = &c->track;
	char err[512];

	for (size_t i = 0; i < t->listen.n; i++) {
		char host[256];
		int port;

		if (conf_parse_hostport(t->listen.v[i], host, sizeof(host),
		    &port) < 0 || port == 0)
			cfgfile_error(errs, at_key(sec, "listen", &file),
			    "track.listen: '%s' is not host:port or [ipv6]:port",
			    t->listen.v[i]);
	}
	for (size_t i = 0; i < t->sites.n; i++) {
		const char *v = t->sites.v[i];

		if (!*v || strlen(v) > 253 || strspn(v, "abcdefghijklmnopqrstuvwxyz"
		    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") != strlen(v))
			cfgfile_error(errs, at_key(sec, "sites", &file),
			    "track.sites: '%s' is not a domain name such as "
			    "example.com", v);
	}
	if (t->cookie_domain[0] && strspn(t->cookie_domain,
	    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") !=
	    strlen(t->cookie_domain))
		cfgfile_error(errs, at_key(sec, "cookie_domain", &file),
		    "track.cookie_domain: '%s' is not a domain name",
		    t->cookie_domain);
	for (size_t i = 0; i < t->hot_pages.n; i++) {
		const char *v = t->hot_pages.v[i], *eq = strchr(v, '=');

		if (!eq || eq == v || !eq[1] || eq - v >= 48 ||
		    strspn(v, "abcdefghijklmnopqrstuvwxyz0123456789_-") !=
		    (size_t)(eq - v))
			cfgfile_error(errs, at_key(sec, "hot_pages", &file),
			    "track.hot_pages: '%s': write NAME=PATTERN, e.g. "
			    "\"pricing=*/pricing*\" (NAME: a-z 0-9 _ -, up to 47)",
			    v);
	}
	for (size_t i = 0; i < t->trusted_proxies.n; i++) {
		unsigned char a[16];

		if (inet_pton(AF_INET, t->trusted_proxies.v[i], a) != 1 &&
		    inet_pton(AF_INET6, t->trusted_proxies.v[i], a) != 1)
			cfgfile_error(errs, at_key(sec, "trusted_proxies", &file),
			    "track.trusted_proxies: '%s' is not an IP address",
			    t->trusted_proxies.v[i]);
	}
	if (form_parse_rate(t->forward_rate, &t->forward_count,
	    &t->forward_period_ms) < 0)
		cfgfile_error(errs, at_key(sec, "forward_rate", &file),
		    "track.forward_rate: expected COUNT/PERIOD like 5/h, or none");
	if (form_parse_rate(t->rate, &t->rate_count, &t->rate_period_ms) < 0)
		cfgfile_error(errs, at_key(sec, "rate", &file), "track.rate: "
		    "expected COUNT/PERIOD like 600/m, or none");
	if (!(t->bots = botclass_new(t->builtin_lists, &t->machine_agents,
	    &t->machine_networks, &t->scanner_agents, &t->scanner_networks,
	    err, sizeof(err)))) {
		const char *key = strncmp(err, "machine_agents", 14) == 0 ?
		    "machine_agents" : strncmp(err, "machine_networks", 16) == 0 ?
		    "machine_networks" : strncmp(err, "scanner_agents", 14) == 0 ?
		    "scanner_agents" : "scanner_networks";

		cfgfile_error(errs, at_key(sec, key, &file), "track.%s", err);
	}
}

static const char *const tls_modes[] = { "required", "opportunistic", "none",
	NULL };

#define M(f) offsetof(struct conf_mail, f)
static const struct conf_key mail_keys[] = {
	{ "transport", CONF_STR, M(transport), "", 0, 0, NULL, 0 },
	{ "tls", CONF_ENUM, M(tls), "opportunistic", 0, 0, tls_modes, 0 },
	{ "tls_ca_file", CONF_PATH, M(tls_ca_file), "", 0, 0, NULL, 0 },
	{ "tls_verify", CONF_BOOL, M(tls_verify), "true", 0, 0, NULL, 0 },
	{ "smtp_user", CONF_STR, M(smtp_user), "", 0, 0, NULL, 0 },
	{ "smtp_password_file", CONF_PATH, M(smtp_password_file), "", 0, 0,
	  NULL, 0 },
	{ "helo", CONF_STR, M(helo), "", 0, 0, NULL, 0 },
	{ "bounce_domain", CONF_STR, M(bounce_domain), "", 0, 0, NULL, 0 },
	{ "unsubscribe_mailto", CONF_STR, M(unsubscribe_mailto), "", 0, 0, NULL,
	  0 },
	{ "list_id_domain", CONF_STR, M(list_id_domain), "", 0, 0, NULL, 0 },
	{ "max_message_size", CONF_SIZE, M(max_message_size), "2M", 4096,
	  64LL * 1024 * 1024, NULL, 0 },
	{ "timeout", CONF_DURATION, M(timeout_ms), "60s", 1000, 3600000, NULL,
	  0 },
	{ "retry_base", CONF_DURATION, M(retry_base_ms), "5m", 1000, 86400000,
	  NULL, 0 },
	{ "retry_lifetime", CONF_DURATION, M(retry_lifetime_ms), "2d", 60000,
	  30LL * 86400000, NULL, 0 },
	{ "lease", CONF_DURATION, M(lease_ms), "2m", 5000, 3600000, NULL, 0 },
	{ "connections", CONF_INT, M(connections), "4", 1, 256, NULL, 0 },
	{ "domain_connections", CONF_INT, M(domain_connections), "2", 1, 64,
	  NULL, 0 },
	{ "domain_rate", CONF_INT, M(domain_rate), "0", 0, 100000, NULL, 0 },
	{ "mx_port", CONF_INT, M(mx_port), "25", 1, 65535, NULL, 0 },
	{ "nameserver", CONF_STR, M(nameserver), "", 0, 0, NULL, 0 },
	{ "batch", CONF_INT, M(batch), "50", 1, 1000, NULL, 0 },
	{ "fill", CONF_INT, M(fill), "5000", 10, 1000000, NULL, 0 },
	{ "rate", CONF_INT, M(rate), "0", 0, 1000000, NULL, 0 },
	{ "soft_bounce_limit", CONF_INT, M(soft_bounce_limit), "3", 0, 1000,
	  NULL, 0 },
	{ "soft_bounce_window", CONF_DURATION, M(soft_bounce_window_ms), "30d",
	  60000, 3650LL * 86400000, NULL, 0 },
	{ NULL, 0, 0, NULL, 0, 0, NULL, 0 }
};
#undef M

struct dkim_entry {
	char *selector, *key, *algorithm;
};
static const char *const dkim_algs[] = { "rsa-sha256", "ed25519-sha256",
	NULL };
#define K(f) offsetof(struct dkim_entry, f)
static const struct conf_key dkim_keys_table[] = {
	{ "selector", CONF_STR, K(selector), "", 0, 0, NULL, 0 },
	{ "key", CONF_PATH, K(key), "", 0, 0, NULL, 0 },
	{ "algorithm", CONF_ENUM, K(algorithm), "rsa-sha256", 0, 0, dkim_algs,
	  0 },
	{ NULL, 0, 0, NULL, 0, 0, NULL, 0 }
};
#undef K

/* A section that may appear at most once; NULL if absent. */
static struct cfgfile_node *
single_section(struct cfgfile_node *root, const char *name,
    struct cfgfile_errors *errs)
{
	struct cfgfile_node *found = NULL;

	for (struct cfgfile_node *n = root->child; n; n = n->next) {
		if (strcmp(n->key, name) != 0)
			continue;
		if (n->kind != CFGFILE_SECTION) {
			cfgfile_error(errs, &n->pos, "'%s' is a section: write "
			    "%s { ... }", name, name);
			n->used = 1;
			continue;
		}
		if (found)
			cfgfile_error(errs, &n->pos, "section '%s' appears "
			    "twice (first at line %d)", name, found->pos.line);
		else
			found = n;
		n->used = 1;
	}
	return found;
}

/* The position of key in section, or of the file if it is not set there. */
static const struct cfgfile_pos *
at_key(struct cfgfile_node *section, const char *key,
    const struct cfgfile_pos *file)
{
	for (struct cfgfile_node *n = section ? section->child : NULL; n;
	    n = n->next)
		if (strcmp(n->key, key) == 0)
			return &n->pos;
	return file;
}

static void
check_main(struct conf *c, struct cfgfile_node *root,
    struct cfgfile_errors *errs)
{
	struct cfgfile_pos at = { c->path, 0, 0 };
	struct cfgfile_node *http = NULL;

	for (struct cfgfile_node *n = root->child; n; n = n->next)
		if (n->kind == CFGFILE_SECTION && strcmp(n->key, "http") == 0)
			http = n;
#define POS_OF(key) at_key(root, key, &at)
#define HTTP_POS(key) at_key(http, key, POS_OF("http"))
	if (strcmp(c->database, "embedded") != 0 &&
	    strncmp(c->database, "postgresql://", 13) != 0 &&
	    strncmp(c->database, "postgres://", 11) != 0)
		cfgfile_error(errs, POS_OF("database"), "database: expected "
		    "\"embedded\" or a postgresql:// URI");
	if (c->state_dir[0] == '\0')
		cfgfile_error(errs, POS_OF("state_dir"), "state_dir: must not "
		    "be empty");
	if (c->admin_token[0] && strlen(c->admin_token) < 16)
		cfgfile_error(errs, POS_OF("admin_token"), "admin_token: use "
		    "at least 16 characters (e.g. openssl rand -hex 24)");
	if (c->admin_token[0] && c->admin_token_file[0])
		cfgfile_error(errs, POS_OF("admin_token_file"), "set "
		    "admin_token or admin_token_file, not both");
	if (c->user[0] == '\0')
		cfgfile_error(errs, POS_OF("user"), "user: must not be empty");
	if (c->http.listen.n == 0)
		cfgfile_error(errs, HTTP_POS("listen"), "http.listen: at least one "
		    "address is needed");
	for (size_t i = 0; i < c->http.listen.n; i++) {
		char host[256];
		int port;

		if (conf_parse_hostport(c->http.listen.v[i], host, sizeof(host),
		    &port) < 0 || port == 0)
			cfgfile_error(errs, HTTP_POS("listen"), "http.listen: '%s' "
			    "is not host:port or [ipv6]:port",
			    c->http.listen.v[i]);
	}
	if (c->default_country[0] && !phone_country_valid(c->default_country))
		cfgfile_error(errs, POS_OF("default_country"), "default_country: "
		    "'%s' is not an ISO 3166 country code such as \"US\"",
		    c->default_country);
	if (access(c->templates_dir, R_OK | X_OK) != 0)
		cfgfile_error(errs, POS_OF("templates"), "templates: cannot "
		    "read the directory %s: %s", c->templates_dir,
		    strerror(errno));
	if (strncmp(c->http.public_url, "http://", 7) != 0 &&
	    strncmp(c->http.public_url, "https://", 8) != 0)
		cfgfile_error(errs, HTTP_POS("public_url"), "http.public_url: must "
		    "start with http:// or https://");
#undef POS_OF
#undef HTTP_POS
}

char *
conf_read_secret(const char *path, char *err, size_t n)
{
	char line[1024];
	FILE *f = fopen(path, "r");

	if (!f) {
		snprintf(err, n, "cannot read %s: %s", path, strerror(errno));
		return NULL;
	}
	if (!fgets(line, sizeof(line), f))
		line[0] = '\0';
	fclose(f);
	line[strcspn(line, "\r\n")] = '\0';
	return strdup(line);
}

static void
check_mail(struct conf *c, struct cfgfile_node *mail,
    struct cfgfile_errors *errs)
{
	struct cfgfile_pos file = { c->path, 0, 0 };
	const struct cfgfile_pos *at;
	struct conf_mail *m = &c->mail;
	char err[512];

	at = at_key(mail, "transport", &file);
	if (!m->transport[0]) {
		m->kind = CONF_MAILDIR;
		if (asprintf(&m->maildir, "%s/outbox", c->state_dir) < 0)
			m->maildir = NULL;
	} else if (strncmp(m->transport, "maildir:", 8) == 0 && m->transport[8]) {
		m->kind = CONF_MAILDIR;
		m->maildir = resolve_path(c->dir, m->transport + 8);
	} else if (strncmp(m->transport, "smtp://", 7) == 0) {
		char host[256];
		int port;
		const char *hp = m->transport + 7;
		char tmp[256];

		snprintf(tmp, sizeof(tmp), "%s", hp);
		tmp[strcspn(tmp, "/")] = '\0';
		port = 25;
		if (tmp[0] == '[' ? strstr(tmp, "]:") != NULL :
		    strchr(tmp, ':') != NULL) {
			if (conf_parse_hostport(tmp, host, sizeof(host),
			    &port) < 0 || port == 0)
				host[0] = '\0';
		} else {
			snprintf(host, sizeof(host), "%s", tmp);
		}
		if (!host[0]) {
			cfgfile_error(errs, at, "transport: '%s' is not "
			    "smtp://host:port", m->transport);
			return;
		}
		m->kind = CONF_SMTP;
		m->smtp_host = strdup(host);
		m->smtp_port = port;
	} else if (strcmp(m->transport, "mx") == 0) {
		m->kind = CONF_MX;
	} else {
		cfgfile_error(errs, at, "transport: expected maildir:PATH, "
		    "smtp://host:port or mx, got '%s'", m->transport);
		return;
	}
	if (m->nameserver[0]) {
		char host[64];
		int port;
		struct in6_addr a6;
		struct in_addr a4;

		if (conf_parse_hostport(m->nameserver, host, sizeof(host),
		    &port) < 0) {
			snprintf(host, sizeof(host), "%s", m->nameserver);
			port = 53;
		}
		if ((inet_pton(AF_INET, host, &a4) != 1 && inet_pton(AF_INET6,
		    host, &a6) != 1) || port < 1)
			cfgfile_error(errs, at_key(mail, "nameserver", &file),
			    "nameserver: expected an IP address, like 127.0.0.1 or "
			    "127.0.0.1:5353");
	}
	if (m->smtp_password_file[0]) {
		if (!(m->smtp_password = conf_read_secret(
		    m->smtp_password_file, err, sizeof(err))))
			cfgfile_error(errs, at_key(mail, "smtp_password_file",
			    &file), "smtp_password_file: %s", err);
	}
	/* one TLS context for all sessions: TLS 1.2 or later, these CAs */
	if ((m->ssl_ctx = SSL_CTX_new(TLS_client_method())) == NULL ||
	    !SSL_CTX_set_min_proto_version(m->ssl_ctx, TLS1_2_VERSION)) {
		cfgfile_error(errs, at, "cannot set up TLS");
	} else if (m->tls_ca_file[0]) {
		if (SSL_CTX_load_verify_locations(m->ssl_ctx, m->tls_ca_file,
		    NULL) != 1)
			cfgfile_error(errs, at_key(mail, "tls_ca_file", &file),
			    "tls_ca_file: cannot load CA certificates from %s",
			    m->tls_ca_file);
	} else {
		SSL_CTX_set_default_verify_paths(m->ssl_ctx);
	}
	if (m->smtp_user[0] && !m->smtp_password)
		cfgfile_error(errs, at_key(mail, "smtp_user", &file), "smtp_user "
		    "needs smtp_password_file");
	if (m->bounce_domain[0] && strchr(m->bounce_domain, '@'))
		cfgfile_error(errs, at_key(mail, "bounce_domain", &file),
		    "bounce_domain: a domain, not an address");
	if (m->unsubscribe_mailto[0] &&
	    !mime_addr_valid(m->unsubscribe_mailto, NULL))
		cfgfile_error(errs, at_key(mail, "unsubscribe_mailto", &file),
		    "unsubscribe_mailto: '%s' is not an address",
		    m->unsubscribe_mailto);
}

#define L(f) offsetof(struct conf_list, f)
static const struct conf_key list_keys[] = {
	{ "title", CONF_STR, L(title), "", 0, 0, NULL, 0 },
	{ "double_optin", CONF_BOOL, L(double_optin), "false", 0, 0, NULL, 0 },
	{ "confirm", CONF_STR, L(confirm), "confirm", 0, 0, NULL, 0 },
	{ NULL, 0, 0, NULL, 0, 0, NULL, 0 }
};
#undef L

/* list "newsletter" { title = "Acme News"  double_optin = true } */
static void
load_lists(struct conf *c, struct cfgfile_node *root,
    struct cfgfile_errors *errs)
{
	for (struct cfgfile_node *n = root->child; n; n = n->next) {
		struct conf_list *l, *v;
		int bad = 0;

		if (strcmp(n->key, "list") != 0)
			continue;
		n->used = 1;
		if (n->kind != CFGFILE_SECTION || !n->title) {
			cfgfile_error(errs, &n->pos, "write list \"NAME\" { ... }");
			continue;
		}
		for (const char *p = n->title; *p; p++)
			bad |= !(isalnum((unsigned char)*p) || *p == '-' ||
			    *p == '_');
		if (bad || !*n->title || strlen(n->title) > 64) {
			cfgfile_error(errs, &n->pos, "list names use letters, "
			    "digits, - and _ (at most 64)");
			continue;
		}
		if (conf_list_find(c, n->title)) {
			cfgfile_error(errs, &n->pos, "list %s is declared twice",
			    n->title);
			continue;
		}
		if (!(v = realloc(c->lists, (c->nlists + 1) * sizeof(*v))))
			return;
		c->lists = v;
		l = &c->lists[c->nlists++];
		memset(l, 0, sizeof(*l));
		l->name = strdup(n->title);
		conf_bind(list_keys, n, l, c->dir, errs);
		conf_check_unknown(n, errs);
		if (!*l->title) {
			free(l->title);
			l->title = strdup(l->name);
		}
	}
}

static const char *const mailbox_protos[] = { "imap", "imaps", "pop3",
	"pop3s", NULL };
static const char *const mailbox_actions[] = { "delete", "move", "seen",
	NULL };
#define X(f) offsetof(struct conf_mailbox, f)
static const struct conf_key mailbox_keys[] = {
	{ "protocol", CONF_ENUM, X(protocol), "imap", 0, 0, mailbox_protos, 0 },
	{ "host", CONF_STR, X(host), "", 0, 0, NULL, 0 },
	{ "port", CONF_INT, X(port), "0", 0, 65535, NULL, 0 },
	{ "user", CONF_STR, X(user), "", 0, 0, NULL, 0 },
	{ "password", CONF_STR, X(password), "", 0, 0, NULL, 0 },
	{ "password_file", CONF_PATH, X(password_file), "", 0, 0, NULL, 0 },
	{ "folder", CONF_STR, X(folder), "INBOX", 0, 0, NULL, 0 },
	{ "poll", CONF_DURATION, X(poll_ms), "1m", 1000, 86400000, NULL, 0 },
	{ "idle", CONF_BOOL, X(idle), "true", 0, 0, NULL, 0 },
	{ "action", CONF_ENUM, X(action), "delete", 0, 0, mailbox_actions, 0 },
	{ "move_to", CONF_STR, X(move_to), "", 0, 0, NULL, 0 },
	{ "review_folder", CONF_STR, X(review_folder), "", 0, 0, NULL, 0 },
	{ "starttls", CONF_BOOL, X(starttls), "false", 0, 0, NULL, 0 },
	{ "tls_verify", CONF_BOOL, X(tls_verify), "true", 0, 0, NULL, 0 },
	{ "ca_file", CONF_PATH, X(ca_file), "", 0, 0, NULL, 0 },
	{ "timeout", CONF_DURATION, X(timeout_ms), "30s", 1000, 600000, NULL,
	  0 },
	{ "batch", CONF_INT, X(batch), "200", 1, 5000, NULL, 0 },
	{ "max_message_size", CONF_SIZE, X(max_message_size), "4M", 16384,
	  64LL * 1024 * 1024, NULL, 0 },
	{ NULL, 0, 0, NULL, 0, 0, NULL, 0 }
};
#undef X

/* mailbox "bounces" { protocol = imaps  host = ...  user = ... } */
static void
load_mailboxes(struct conf *c, struct cfgfile_node *root,
    struct cfgfile_errors *errs)
{
	for (struct cfgfile_node *n = root->child; n; n = n->next) {
		struct cfgfile_pos file = { c->path, 0, 0 };
		struct conf_mailbox *b, *v;
		char err[512];
		int bad = 0, pop;

		if (strcmp(n->key, "mailbox") != 0)
			continue;
		n->used = 1;
		if (n->kind != CFGFILE_SECTION || !n->title) {
			cfgfile_error(errs, &n->pos, "write mailbox \"NAME\" "
			    "{ protocol = imap  host = ...  user = ... }");
			continue;
		}
		for (const char *p = n->title; *p; p++)
			bad |= !(isalnum((unsigned char)*p) || *p == '-' ||
			    *p == '_');
		if (bad || !*n->title || strlen(n->title) > 64) {
			cfgfile_error(errs, &n->pos, "mailbox names use letters, "
			    "digits, - and _ (at most 64)");
			continue;
		}
		if (conf_mailbox_find(c, n->title)) {
			cfgfile_error(errs, &n->pos, "mailbox %s is declared "
			    "twice", n->title);
			continue;
		}
		if (!(v = realloc(c->mailboxes, (c->nmailboxes + 1) *
		    sizeof(*v))))
			return;
		c->mailboxes = v;
		b = &c->mailboxes[c->nmailboxes++];
		memset(b, 0, sizeof(*b));
		b->name = strdup(n->title);
		conf_bind(mailbox_keys, n, b, c->dir, errs);
		conf_check_unknown(n, errs);
		b->proto = 0;
		for (int i = 0; mailbox_protos[i]; i++)
			if (!strcmp(b->protocol, mailbox_protos[i]))
				b->proto = i;
		pop = b->proto >= 2;
		if (!b->host[0])
			cfgfile_error(errs, &n->pos, "mailbox %s: host is "
			    "required", b->name);
		if (!b->user[0])
			cfgfile_error(errs, &n->pos, "mailbox %s: user is "
			    "required", b->name);
		if (b->password[0] && b->password_file[0])
			cfgfile_error(errs, at_key(n, "password_file", &file),
			    "mailbox %s: set password or password_file, not "
			    "both", b->name);
		else if (b->password_file[0]) {
			if (!(b->secret = conf_read_secret(b->password_file, err,
			    sizeof(err))))
				cfgfile_error(errs, at_key(n, "password_file",
				    &file), "mailbox %s: password_file: %s",
				    b->name, err);
		} else if (b->password[0]) {
			b->secret = strdup(b->password);
		} else {
			cfgfile_error(errs, &n->pos, "mailbox %s: password or "
			    "password_file is required", b->name);
		}
		if (!strcmp(b->action, "move") && !b->move_to[0])
			cfgfile_error(errs, at_key(n, "action", &file), "mailbox "
			    "%s: action = move needs move_to (a folder)",
			    b->name);
		if (strcmp(b->action, "move") && b->move_to[0])
			cfgfile_error(errs, at_key(n, "move_to", &file),
			    "mailbox %s: move_to is only for action = move",
			    b->name);
		if (pop && !strcmp(b->action, "move"))
			cfgfile_error(errs, at_key(n, "action", &file), "mailbox "
			    "%s: POP3 has no folders: action = delete or seen "
			    "(left on the server)", b->name);
		if (pop && b->review_folder[0])
			cfgfile_error(errs, at_key(n, "review_folder", &file),
			    "mailbox %s: POP3 has no folders: what needs "
			    "review stays on the server", b->name);
		if (pop && strcmp(b->folder, "INBOX"))
			cfgfile_error(errs, at_key(n, "folder", &file), "mailbox "
			    "%s: POP3 has no folders", b->name);
		if (b->review_folder[0] && !strcmp(b->review_folder,
		    b->folder))
			cfgfile_error(errs, at_key(n, "review_folder", &file),
			    "mailbox %s: review_folder is the folder read",
			    b->name);
		if (b->move_to[0] && !strcmp(b->move_to, b->folder))
			cfgfile_error(errs, at_key(n, "move_to", &file),
			    "mailbox %s: move_to is the folder read", b->name);
		for (const char *p = b->folder; *p; p++)
			if ((unsigned char)*p < 0x20)
				bad = 1;
		for (const char *p = b->move_to; *p; p++)
			if ((unsigned char)*p < 0x20)
				bad = 1;
		for (const char *p = b->review_folder; *p; p++)
			if ((unsigned char)*p < 0x20)
				bad = 1;
		if (bad)
			cfgfile_error(errs, &n->pos, "mailbox %s: folder names "
			    "cannot hold control characters", b->name);
	}
}

static void
mailbox_free(struct conf_mailbox *b)
{
	conf_unbind(mailbox_keys, b);
	if (b->secret)
		explicit_bzero(b->secret, strlen(b->secret));
	free(b->secret);
	free(b->name);
}

const struct conf_mailbox *
conf_mailbox_find(const struct conf *c, const char *name)
{
	for (size_t i = 0; i < c->nmailboxes; i++)
		if (strcmp(c->mailboxes[i].name, name) == 0)
			return &c->mailboxes[i];
	return NULL;
}

static int differs(const struct conf_key *keys, const void *a, const void *b,
    const char *prefix, char *out, size_t n, int all);

int
conf_mailbox_same(const struct conf_mailbox *a, const struct conf_mailbox *b)
{
	char out[8] = "";

	return differs(mailbox_keys, a, b, "", out, sizeof(out), 1) == 0 &&
	    strcmp(a->name, b->name) == 0 &&
	    strcmp(a->secret ? a->secret : "", b->secret ? b->secret : "") == 0;
}

const struct conf_list *
conf_list_find(const struct conf *c, const char *name)
{
	for (size_t i = 0; i < c->nlists; i++)
		if (strcmp(c->lists[i].name, name) == 0)
			return &c->lists[i];
	return NULL;
}

/*
 * routing.conf and scoring.conf: the files named, or the defaults next to
 * the main file when they exist (a newsletter-only setup has neither).
 */
static char *
optional_file(const struct conf *c, char **path, const char *def)
{
	char *p;

	if (**path)
		return *path;
	if (asprintf(&p, "%s/%s", c->dir, def) < 0)
		return NULL;
	if (access(p, F_OK) != 0) {
		free(p);
		return NULL;
	}
	free(*path);
	return *path = p;
}

static void
load_routing(struct conf *c, struct cfgfile_errors *errs)
{
	const char *p;

	if ((p = optional_file(c, &c->routing_path, "routing.conf")) != NULL)
		c->routing = route_load(p, errs);
	if ((p = optional_file(c, &c->scoring_path, "scoring.conf")) != NULL)
		c->scoring = score_load(p, errs);
	if ((p = optional_file(c, &c->sms_path, "sms.conf")) != NULL)
		c->sms = smsgw_load(p, errs);
}

/*
 * sms.conf: email2sms gateways send through the notification "sms"; rep
 * offers use templates/sms/offer; gateways chosen for teams and reps name
 * ones of routing.conf.
 */
static void
check_sms(struct conf *c, struct cfgfile_errors *errs)
{
	struct cfgfile_pos p = { c->sms_path, 0, 0 };

	if (c->sms->has_email2sms && (!c->notifications ||
	    !campaign_find(c->notifications, "sms")))
		cfgfile_error(errs, &p, "email2sms gateways need the notification "
		    "'sms' (a file sms.conf in %s)", c->notifications_dir);
	if (!tmpl_set_get(c->templates, "sms/offer"))
		cfgfile_error(errs, &p, "SMS needs the template sms/offer (%s/"
		    "sms/offer.mustache)", c->templates_dir);
	if (c->sms->reminder_ms && !tmpl_set_get(c->templates, "sms/reminder"))
		cfgfile_error(errs, &p, "reminder needs the template sms/reminder "
		    "(%s/sms/reminder.mustache); reminder = 0 turns them off",
		    c->templates_dir);
	for (size_t i = 0; i < c->sms->n; i++) {
		const struct smsgw *g = &c->sms->v[i];

		for (size_t k = 0; k < g->teams.n; k++)
			if (!c->routing || !route_team_find(c->routing,
			    g->teams.v[k]))
				cfgfile_error(errs, &p, "gateway %s: teams: no "
				    "team '%s' in routing.conf", g->name,
				    g->teams.v[k]);
		for (size_t k = 0; k < g->reps.n; k++)
			if (!c->routing || route_rep_find(c->routing,
			    g->reps.v[k]) == ROUTE_NONE)
				cfgfile_error(errs, &p, "gateway %s: reps: no "
				    "rep '%s' in routing.conf", g->name,
				    g->reps.v[k]);
	}
}

/* Campaigns name declared lists; double opt-in lists name a notification;
 * routing notifies reps with the notification "offer"; scoring thresholds
 * route to teams of routing.conf. */
/* Drips name teams (route steps, routed triggers) and lists (list
 * triggers) declared elsewhere. */
static void
check_drips(struct conf *c, struct cfgfile_errors *errs)
{
	for (size_t i = 0; c->drips && i < c->drips->n; i++) {
		const struct drip_def *d = c->drips->v[i];
		struct cfgfile_pos p = { d->file, 0, 0 };

		for (size_t k = 0; k < d->nsteps; k++) {
			const struct drip_step *s = &d->steps[k];

			if (s->kind != DRIP_ROUTE)
				continue;
			if (!c->routing)
				cfgfile_error(errs, &s->pos, "step \"%s\": routing "
				    "to team '%s' needs routing.conf", s->name,
				    s->team);
			else if (!route_team_find(c->routing, s->team))
				cfgfile_error(errs, &s->pos, "step \"%s\": no team "
				    "'%s' in %s", s->name, s->team,
				    c->routing_path);
		}
		for (size_t k = 0; k < d->ntriggers; k++) {
			const struct drip_trigger *t = &d->triggers[k];

			if (t->type == DRIP_T_LIST && !conf_list_find(c, t->arg))
				cfgfile_error(errs, &p, "trigger \"list\": '%s' is "
				    "not declared: add list \"%s\" { } to %s",
				    t->arg, t->arg, c->path);
			if (t->type == DRIP_T_ROUTED && *t->arg && (!c->routing ||
			    !route_team_find(c->routing, t->arg)))
				cfgfile_error(errs, &p, "trigger \"routed\": no "
				    "team '%s'%s", t->arg, c->routing ? "" :
				    " (there is no routing.conf)");
		}
	}
}

static void
check_references(struct conf *c, struct cfgfile_errors *errs)
{
	for (size_t i = 0; c->campaigns && i < c->campaigns->n; i++) {
		const struct campaign_def *d = c->campaigns->v[i];

		for (size_t k = 0; k < d->lists.n; k++) {
			struct cfgfile_pos p = d->lists_pos;

			p.file = d->file;
			if (!conf_list_find(c, d->lists.v[k]))
				cfgfile_error(errs, &p, "lists: '%s' is not "
				    "declared: add list \"%s\" { } to %s",
				    d->lists.v[k], d->lists.v[k], c->path);
		}
		if (d->sms) {
			struct cfgfile_pos p = { d->file, 0, 0 };

			if (!c->sms)
				cfgfile_error(errs, &p, "channel = sms needs SMS "
				    "gateways (sms.conf)");
			else if (*d->gateway && !smsgw_find(c->sms, d->gateway))
				cfgfile_error(errs, &p, "gateway: no gateway '%s' "
				    "in %s", d->gateway, c->sms->path);
		}
	}
	for (size_t i = 0; i < c->nlists; i++) {
		const struct conf_list *l = &c->lists[i];

		if (l->double_optin && (!c->notifications ||
		    !campaign_find(c->notifications, l->confirm))) {
			struct cfgfile_pos p = { c->path, 0, 0 };

			cfgfile_error(errs, &p, "list %s: double_optin needs the "
			    "notification '%s' (a file %s.conf in %s)", l->name,
			    l->confirm, l->confirm, c->notifications_dir);
		}
	}
	if (c->routing && (!c->notifications ||
	    !campaign_find(c->notifications, "offer"))) {
		struct cfgfile_pos p = { c->routing_path, 0, 0 };

		cfgfile_error(errs, &p, "routing needs the notification 'offer' "
		    "(a file offer.conf in %s) to tell reps of their offers",
		    c->notifications_dir);
	}
	if (c->sms)
		check_sms(c, errs);
	check_drips(c, errs);
	if (c->scoring) {
		size_t n;
		const struct score_threshold *t = score_thresholds(c->scoring, &n);

		for (size_t i = 0; i < n; i++) {
			if (t[i].action != SCORE_ROUTE)
				continue;
			if (!c->routing)
				cfgfile_error(errs, &t[i].team_pos, "threshold "
				    "\"%s\": routing to team '%s' needs "
				    "routing.conf", t[i].name, t[i].team);
			else if (!route_team_find(c->routing, t[i].team))
				cfgfile_error(errs, &t[i].team_pos, "threshold "
				    "\"%s\": no team '%s' in %s", t[i].name,
				    t[i].team, c->routing_path);
		}
	}
}

/* dkim "example.com" { selector = s1  key = "keys/s1.pem" } */
static void
load_dkim(struct conf *c, struct cfgfile_node *root,
    struct cfgfile_errors *errs)
{
	if (!(c->dkim = dkim_keys_new()))
		return;
	for (struct cfgfile_node *n = root->child; n; n = n->next) {
		struct dkim_entry e;
		struct cfgfile_pos file = { c->path, 0, 0 };
		char err[512];
		size_t before = errs->n;
		int r;

		if (strcmp(n->key, "dkim") != 0)
			continue;
		n->used = 1;
		if (n->kind != CFGFILE_SECTION || !n->title) {
			cfgfile_error(errs, &n->pos, "write dkim \"example.com\" "
			    "{ selector = ...  key = ... }");
			continue;
		}
		memset(&e, 0, sizeof(e));
		conf_bind(dkim_keys_table, n, &e, c->dir, errs);
		conf_check_unknown(n, errs);
		if (!e.selector[0])
			cfgfile_error(errs, &n->pos, "dkim %s: selector is "
			    "required", n->title);
		if (!e.key[0])
			cfgfile_error(errs, &n->pos, "dkim %s: key (a private "
			    "key file) is required; make one with leadcast "
			    "dkim-keygen %s SELECTOR", n->title, n->title);
		if (errs->n == before) {
			r = dkim_keys_add(c->dkim, n->title, e.selector,
			    strcmp(e.algorithm, "ed25519-sha256") == 0 ?
			    DKIM_ALG_ED25519_SHA256 : DKIM_ALG_RSA_SHA256, e.key,
			    err, sizeof(err));
			if (r < 0)
				cfgfile_error(errs, at_key(n, "key", &file),
				    "dkim %s: %s", n->title, err);
			else if (r > 0)
				log_warn("dkim %s: %s", n->title, err);
		}
		conf_unbind(dkim_keys_table, &e);
	}
}

/* Compile every template now, so that a syntax error stops the load. */
static void
load_templates(struct conf *c, struct cfgfile_errors *errs)
{
	struct tmpl_error te;

	if (!(c->templates = tmpl_set_new())) {
		struct cfgfile_pos p = { c->path, 0, 0 };

		cfgfile_error(errs, &p, "out of memory");
		return;
	}
	if (tmpl_set_load_dir(c->templates, c->templates_dir, &te) < 0) {
		struct cfgfile_pos p = { te.file, te.line, te.col };

		cfgfile_error(errs, &p, "%s", te.msg);
	}
}

struct conf *
conf_load(const char *path, struct cfgfile_errors *errs)
{
	struct cfgfile_tree tree;
	struct cfgfile_node *http, *mail;
	struct conf *c;
	size_t before = errs->n;
	char *abs, *slash;

	if (!(abs = realpath(path, NULL))) {
		struct cfgfile_pos p = { path, 0, 0 };

		cfgfile_error(errs, &p, "cannot open configuration: %s",
		    strerror(errno));
		return NULL;
	}
	if (!(c = calloc(1, sizeof(*c)))) {
		free(abs);
		return NULL;
	}
	c->refs = 1;
	c->path = abs;
	c->dir = strdup(abs);
	if ((slash = strrchr(c->dir, '/')) != NULL)
		*(slash == c->dir ? slash + 1 : slash) = '\0';
	cfgfile_parse(c->path, &tree, errs);
	conf_bind(main_keys, tree.root, c, c->dir, errs);
	http = single_section(tree.root, "http", errs);
	conf_bind(http_keys, http, &c->http, c->dir, errs);
	if (http)
		conf_check_unknown(http, errs);
	mail = single_section(tree.root, "mail", errs);
	conf_bind(mail_keys, mail, &c->mail, c->dir, errs);
	if (mail)
		conf_check_unknown(mail, errs);
	check_mail(c, mail, errs);
	{
		struct cfgfile_node *track = single_section(tree.root, "track",
		    errs);

		conf_bind(track_keys, track, &c->track, c->dir, errs);
		if (track)
			conf_check_unknown(track, errs);
		check_track(c, track, errs);
	}
	load_dkim(c, tree.root, errs);
	load_lists(c, tree.root, errs);
	load_mailboxes(c, tree.root, errs);
	conf_check_unknown(tree.root, errs);

	if (!c->templates_dir[0]) {
		free(c->templates_dir);
		c->templates_dir = strdup(LC_DATADIR "/templates");
	}
	check_main(c, tree.root, errs);
	cfgfile_tree_free(&tree);
	if (!c->pid_file[0]) {
		free(c->pid_file);
		if (asprintf(&c->pid_file, "%s/leadcastd.pid", c->state_dir) < 0)
			c->pid_file = NULL;
	}
	if (!c->admin_token_file[0] && !c->admin_token[0]) {
		free(c->admin_token_file);
		if (asprintf(&c->admin_token_file, "%s/admin.token",
		    c->state_dir) < 0)
			c->admin_token_file = NULL;
		c->admin_token_generate = 1;
	}
	if (errs->n == before) {
		load_templates(c, errs);
		if (errs->n == before && (c->campaigns = calloc(1,
		    sizeof(*c->campaigns))) != NULL)
			campaign_load_dir(c->campaigns_dir, c->templates,
			    c->campaigns, errs);
		if (errs->n == before && (c->notifications = calloc(1,
		    sizeof(*c->notifications))) != NULL)
			campaign_load_notifications(c->notifications_dir,
			    c->templates, c->notifications, errs);
		if (errs->n == before && (c->forms = calloc(1,
		    sizeof(*c->forms))) != NULL)
			form_load_dir(c->forms_dir, c->templates, c, c->forms,
			    errs);
		if (errs->n == before && (c->drips = calloc(1,
		    sizeof(*c->drips))) != NULL)
			drip_load_dir(c->drips_dir, c->templates,
			    c->notifications, c->drips, errs);
		if (errs->n == before)
			load_routing(c, errs);
		if (errs->n == before)
			check_references(c, errs);
	}
	if (!c->pid_file || !c->admin_token_file) {
		struct cfgfile_pos p = { c->path, 0, 0 };

		cfgfile_error(errs, &p, "out of memory");
	}
	if (errs->n > before) {
		conf_free(c);
		return NULL;
	}
	return c;
}

struct conf *
conf_ref(struct conf *c)
{
	__atomic_add_fetch(&c->refs, 1, __ATOMIC_RELAXED);
	return c;
}

void
conf_unref(struct conf *c)
{
	if (!c || __atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL) > 0)
		return;
	conf_unbind(http_keys, &c->http);
	conf_unbind(mail_keys, &c->mail);
	conf_unbind(track_keys, &c->track);
	botclass_free(c->track.bots);
	free(c->mail.maildir);
	SSL_CTX_free(c->mail.ssl_ctx);
	free(c->mail.smtp_host);
	if (c->mail.smtp_password)
		explicit_bzero(c->mail.smtp_password,
		    strlen(c->mail.smtp_password));
	free(c->mail.smtp_password);
	dkim_keys_free(c->dkim);
	if (c->campaigns) {
		campaign_set_free(c->campaigns);
		free(c->campaigns);
	}
	if (c->notifications) {
		campaign_set_free(c->notifications);
		free(c->notifications);
	}
	if (c->drips) {
		drip_set_free(c->drips);
		free(c->drips);
	}
	if (c->forms) {
		form_set_free(c->forms);
		free(c->forms);
	}
	route_conf_free(c->routing);
	score_free(c->scoring);
	smsgw_conf_free(c->sms);
	for (size_t i = 0; i < c->nlists; i++) {
		conf_unbind(list_keys, &c->lists[i]);
		free(c->lists[i].name);
	}
	free(c->lists);
	for (size_t i = 0; i < c->nmailboxes; i++)
		mailbox_free(&c->mailboxes[i]);
	free(c->mailboxes);
	conf_unbind(main_keys, c);
	if (c->templates)
		tmpl_set_free(c->templates);
	free(c->path);
	free(c->dir);
	free(c);
}

void
conf_free(struct conf *c)
{
	conf_unref(c);
}

const char *
conf_default_path(void)
{
	static const char sys[] = LC_SYSCONFDIR "/leadcast.conf";

	if (access(sys, F_OK) == 0)
		return sys;
	return "conf/leadcast.conf";
}

int
conf_db_embedded(const struct conf *c)
{
	return strcmp(c->database, "embedded") == 0;
}

static int
differs(const struct conf_key *keys, const void *a, const void *b,
    const char *prefix, char *out, size_t n, int all)
{
	int count = 0;

	for (const struct conf_key *k = keys; k->name; k++) {
		const char *fa = (const char *)a + k->off;
		const char *fb = (const char *)b + k->off;
		int same = 1;

		if (!all && !(k->flags & CONF_RESTART))
			continue;
		switch (k->type) {
		case CONF_STR: case CONF_PATH: case CONF_ENUM:
			same = strcmp(*(char *const *)fa, *(char *const *)fb) == 0;
			break;
		case CONF_INT: case CONF_DURATION:
			same = *(const long *)fa == *(const long *)fb;
			break;
		case CONF_BOOL:
			same = *(const int *)fa == *(const int *)fb;
			break;
		case CONF_SIZE:
			same = *(const size_t *)fa == *(const size_t *)fb;
			break;
		case CONF_STRLIST: {
			const struct conf_strlist *la = (const void *)fa;
			const struct conf_strlist *lb = (const void *)fb;

			same = la->n == lb->n;
			for (size_t i = 0; same && i < la->n; i++)
				same = strcmp(la->v[i], lb->v[i]) == 0;
			break;
		}
		}
		if (!same) {
			size_t len = strlen(out);

			snprintf(out + len, n - len, "%s%s%s", len ? ", " : "",
			    prefix, k->name);
			count++;
		}
	}
	return count;
}

int
conf_restart_needed(const struct conf *a, const struct conf *b, char *out,
    size_t n)
{
	if (n)
		out[0] = '\0';
	return differs(main_keys, a, b, "", out, n, 0) +
	    differs(http_keys, &a->http, &b->http, "http.", out, n, 0) +
	    differs(track_keys, &a->track, &b->track, "track.", out, n, 0);
}

int
conf_admin_token(const struct conf *c, char *out, size_t n, char *err,
    size_t errn)
{
	FILE *f;
	size_t len;

	if (c->admin_token[0]) {
		if (strlen(c->admin_token) >= n) {
			snprintf(err, errn, "admin_token is too long");
			return -1;
		}
		strcpy(out, c->admin_token);
		return 0;
	}
	if (!(f = fopen(c->admin_token_file, "r"))) {
		snprintf(err, errn, "cannot read the admin token from %s: %s%s",
		    c->admin_token_file, strerror(errno),
		    c->admin_token_generate ? " (leadcastd creates it on its "
		    "first start)" : "");
		return -1;
	}
	len = fread(out, 1, n - 1, f);
	fclose(f);
	out[len] = '\0';
	while (len && (out[len - 1] == '\n' || out[len - 1] == '\r' ||
	    out[len - 1] == ' '))
		out[--len] = '\0';
	if (len < 16) {
		snprintf(err, errn, "the admin token in %s is shorter than 16 "
		    "characters", c->admin_token_file);
		return -1;
	}
	return 0;
}
