/*
 * dns - DNS lookups with ldns: MX lookups for delivery and the caching
 * client of check-dns. See dns.h.
 */
#include "dns.h"

#include <arpa/inet.h>
#include <ldns/ldns.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DNS_MAX_QUERIES 256

static pthread_mutex_t ns_lock = PTHREAD_MUTEX_INITIALIZER;
static char ns_host[64];
static int ns_port;

/* "1.2.3.4", "1.2.3.4:53", "::1", "[::1]:53" into host and port. */
static int
parse_server(const char *addr, char *host, size_t hn, int *port)
{
	const char *colon = strrchr(addr, ':'), *end;
	struct in6_addr a6;
	struct in_addr a4;
	char *e;
	long p = 53;

	if (addr[0] == '[') {
		if (!(end = strchr(addr, ']')) || (end[1] && end[1] != ':'))
			return -1;
		snprintf(host, hn, "%.*s", (int)(end - addr - 1), addr + 1);
		colon = end[1] ? end + 1 : NULL;
	} else if (colon && strchr(addr, ':') == colon) {
		snprintf(host, hn, "%.*s", (int)(colon - addr), addr);
	} else {
		snprintf(host, hn, "%s", addr);
		colon = NULL;
	}
	if (colon) {
		p = strtol(colon + 1, &e, 10);
		if (e == colon + 1 || *e || p <= 0 || p > 65535)
			return -1;
	}
	if (inet_pton(AF_INET, host, &a4) != 1 &&
	    inet_pton(AF_INET6, host, &a6) != 1)
		return -1;
	*port = (int)p;
	return 0;
}

int
dns_set_nameserver(const char *addr)
{
	char host[64];
	int port, rc = 0;

	pthread_mutex_lock(&ns_lock);
	if (!addr || !*addr)
		ns_host[0] = '\0';
	else if ((rc = parse_server(addr, host, sizeof(host), &port)) == 0) {
		memcpy(ns_host, host, sizeof(ns_host));
		ns_port = port;
	}
	pthread_mutex_unlock(&ns_lock);
	return rc;
}

/* A resolver asking host:port (host "" = /etc/resolv.conf), each try
 * waiting timeout_ms / tries. */
static ldns_resolver *
resolver(const char *host, int port, long timeout_ms, int tries, char *err,
    size_t n)
{
	ldns_resolver *res = NULL;
	struct timeval tv;

	if (!host[0]) {
		if (ldns_resolver_new_frm_file(&res, NULL) != LDNS_STATUS_OK) {
			snprintf(err, n, "cannot read /etc/resolv.conf");
			return NULL;
		}
	} else {
		ldns_rdf *a = ldns_rdf_new_frm_str(strchr(host, ':') ?
		    LDNS_RDF_TYPE_AAAA : LDNS_RDF_TYPE_A, host);

		if (!a || !(res = ldns_resolver_new())) {
			snprintf(err, n, "bad nameserver %s", host);
			ldns_rdf_deep_free(a);
			return NULL;
		}
		ldns_resolver_push_nameserver(res, a);
		ldns_rdf_deep_free(a);
		ldns_resolver_set_port(res, (uint16_t)port);
	}
	ldns_resolver_set_retry(res, (uint8_t)tries);
	ldns_resolver_set_retrans(res, 0);
	timeout_ms /= tries;
	tv.tv_sec = timeout_ms / 1000;
	tv.tv_usec = (timeout_ms % 1000) * 1000;
	ldns_resolver_set_timeout(res, tv);
	/* large TXT records (DKIM keys) in one UDP answer where possible;
	 * truncated answers are asked again over TCP */
	ldns_resolver_set_edns_udp_size(res, 1232);
	ldns_resolver_set_fallback(res, true);
	return res;
}

/* The resolver of dns_set_nameserver(). */
static ldns_resolver *
default_resolver(long timeout_ms, int tries, char *err, size_t n)
{
	char host[64];
	int port;

	pthread_mutex_lock(&ns_lock);
	memcpy(host, ns_host, sizeof(host));
	port = ns_port;
	pthread_mutex_unlock(&ns_lock);
	return resolver(host, port, timeout_ms, tries, err, n);
}

/* Query; returns the packet or NULL (*rcode -1: no answer). */
static ldns_pkt *
query(ldns_resolver *res, const char *name, ldns_rr_type type, int *rcode)
{
	ldns_rdf *d = ldns_dname_new_frm_str(name);
	ldns_pkt *p = NULL;

	*rcode = -1;
	if (!d)
		return NULL;
	/* ldns skips a nameserver for good once it timed out: every name
	 * gets its own chance (a server may drop some names only) */
	for (size_t i = 0; i < ldns_resolver_nameserver_count(res); i++)
		ldns_resolver_set_nameserver_rtt(res, i, LDNS_RESOLV_RTT_MIN);
	if (ldns_resolver_query_status(&p, res, d, type, LDNS_RR_CLASS_IN,
	    LDNS_RD) != LDNS_STATUS_OK || !p) {
		ldns_rdf_deep_free(d);
		return NULL;
	}
	ldns_rdf_deep_free(d);
	*rcode = ldns_pkt_get_rcode(p);
	return p;
}

/* ---- the client ------------------------------------------------------------ */

struct dns_entry {
	char *name;
	enum dns_type type;
	struct dns_answer a;
};

struct dns_client {
	ldns_resolver *res;
	struct dns_entry **v;           /* each allocated alone: answers stay
	                                 * put while the array grows */
	size_t n, cap;
	size_t sent;
	char server[80];
};

struct dns_client *
dns_client_new(const char *server, long timeout_ms, char *err, size_t n)
{
	struct dns_client *c = calloc(1, sizeof(*c));
	char host[64];
	int port;

	if (!c) {
		snprintf(err, n, "out of memory");
		return NULL;
	}
	if (timeout_ms < 100)
		timeout_ms = 100;
	if (server && *server) {
		if (parse_server(server, host, sizeof(host), &port) < 0) {
			snprintf(err, n, "bad nameserver \"%s\" (an IP address, "
			    "optionally with :PORT)", server);
			free(c);
			return NULL;
		}
		c->res = resolver(host, port, timeout_ms, 2, err, n);
		snprintf(c->server, sizeof(c->server), strchr(host, ':') ?
		    "[%s]:%d" : "%s:%d", host, port);
	} else {
		c->res = default_resolver(timeout_ms, 2, err, n);
		if (c->res && ldns_resolver_nameserver_count(c->res) > 0) {
			char *s = ldns_rdf2str(ldns_resolver_nameservers(c->res)[0]);

			snprintf(c->server, sizeof(c->server), "%s:%u", s ? s : "?",
			    (unsigned)ldns_resolver_port(c->res));
			free(s);
		} else {
			snprintf(c->server, sizeof(c->server), "system resolver");
		}
	}
	if (!c->res) {
		free(c);
		return NULL;
	}
	return c;
}

static void
answer_free(struct dns_answer *a)
{
	for (size_t i = 0; i < a->n; i++)
		free(a->rr[i]);
	free(a->rr);
	free(a->pref);
}

void
dns_client_free(struct dns_client *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n; i++) {
		free(c->v[i]->name);
		answer_free(&c->v[i]->a);
		free(c->v[i]);
	}
	free(c->v);
	ldns_resolver_deep_free(c->res);
	free(c);
}

size_t
dns_client_queries(const struct dns_client *c)
{
	return c->sent;
}

const char *
dns_client_server(const struct dns_client *c)
{
	return c->server;
}

/* A host name rdf as text without the final dot; NULL if out of memory. */
static char *
dname_text(const ldns_rdf *r)
{
	char *s = ldns_rdf2str(r);
	size_t len;

	if (s && (len = strlen(s)) > 1 && s[len - 1] == '.')
		s[len - 1] = '\0';
	return s;
}

/* A TXT record's strings joined, control characters as '?'. */
static char *
txt_text(const ldns_rr *rr)
{
	size_t total = 0, k = 0;
	char *s;

	for (size_t i = 0; i < ldns_rr_rd_count(rr); i++) {
		const ldns_rdf *f = ldns_rr_rdf(rr, i);

		if (ldns_rdf_size(f) > 0)
			total += ldns_rdf_data(f)[0];
	}
	if (!(s = malloc(total + 1)))
		return NULL;
	for (size_t i = 0; i < ldns_rr_rd_count(rr); i++) {
		const ldns_rdf *f = ldns_rr_rdf(rr, i);
		const uint8_t *d = ldns_rdf_data(f);
		size_t len = ldns_rdf_size(f) > 0 ? d[0] : 0;

		if (len + 1 > ldns_rdf_size(f))
			len = ldns_rdf_size(f) ? ldns_rdf_size(f) - 1 : 0;
		for (size_t j = 0; j < len && k < total; j++)
			s[k++] = d[1 + j] < 0x20 || d[1 + j] == 0x7f ? '?' :
			    (char)d[1 + j];
	}
	s[k] = '\0';
	return s;
}

static const char *
type_name(enum dns_type t)
{
	switch (t) {
	case DNS_T_A: return "A";
	case DNS_T_AAAA: return "AAAA";
	case DNS_T_MX: return "MX";
	case DNS_T_TXT: return "TXT";
	case DNS_T_PTR: return "PTR";
	}
	return "?";
}

/* Fill a from the answer section of p (rcode NOERROR). */
static void
fill(struct dns_answer *a, ldns_pkt *p, enum dns_type type)
{
	ldns_rr_list *l = ldns_pkt_rr_list_by_type(p, (ldns_rr_type)type,
	    LDNS_SECTION_ANSWER);
	size_t cnt = l ? ldns_rr_list_rr_count(l) : 0;

	a->status = DNS_NODATA;
	if (cnt == 0 || !(a->rr = calloc(cnt, sizeof(*a->rr))) ||
	    (type == DNS_T_MX && !(a->pref = calloc(cnt, sizeof(int))))) {
		ldns_rr_list_deep_free(l);
		return;
	}
	for (size_t i = 0; i < cnt; i++) {
		ldns_rr *rr = ldns_rr_list_rr(l, i);
		char *s = NULL;

		if (type == DNS_T_TXT) {
			s = txt_text(rr);
		} else if (type == DNS_T_MX) {
			if (ldns_rr_rd_count(rr) == 2) {
				a->pref[a->n] = ldns_rdf2native_int16(ldns_rr_rdf(rr,
				    0));
				s = dname_text(ldns_rr_rdf(rr, 1));
			}
		} else if (ldns_rr_rd_count(rr) == 1) {
			s = type == DNS_T_PTR ? dname_text(ldns_rr_rdf(rr, 0)) :
			    ldns_rdf2str(ldns_rr_rdf(rr, 0));
		}
		if (s)
			a->rr[a->n++] = s;
	}
	ldns_rr_list_deep_free(l);
	if (a->n)
		a->status = DNS_OK;
}

const struct dns_answer *
dns_client_query(struct dns_client *c, const char *name, enum dns_type type)
{
	struct dns_entry *e;
	ldns_pkt *p;
	size_t len = strlen(name);
	int rcode;

	static struct dns_answer oom = { DNS_TEMPFAIL, NULL, NULL, 0,
	    "out of memory" };

	for (size_t i = 0; i < c->n; i++)
		if (c->v[i]->type == type && strcasecmp(c->v[i]->name, name) == 0)
			return &c->v[i]->a;
	if (c->n == c->cap) {
		size_t ncap = c->cap ? 2 * c->cap : 16;
		struct dns_entry **nv = realloc(c->v, ncap * sizeof(*nv));

		if (!nv)
			return &oom;
		c->v = nv;
		c->cap = ncap;
	}
	if (!(e = calloc(1, sizeof(*e))))
		return &oom;
	e->type = type;
	if (!(e->name = strdup(name))) {
		free(e);
		return &oom;
	}
	c->v[c->n++] = e;
	e->a.status = DNS_TEMPFAIL;
	if (len == 0 || len > 254 || (len == 254 && name[253] != '.')) {
		snprintf(e->a.err, sizeof(e->a.err), "\"%.60s\" is not a valid "
		    "domain name", name);
		return &e->a;
	}
	if (c->sent >= DNS_MAX_QUERIES) {
		snprintf(e->a.err, sizeof(e->a.err), "more than %d DNS queries: "
		    "not asked", DNS_MAX_QUERIES);
		return &e->a;
	}
	c->sent++;
	p = query(c->res, name, (ldns_rr_type)type, &rcode);
	if (!p) {
		snprintf(e->a.err, sizeof(e->a.err), "%s %.253s: no answer from "
		    "%s (timed out)", type_name(type), name, c->server);
	} else if (rcode == LDNS_RCODE_NXDOMAIN) {
		e->a.status = DNS_NXDOMAIN;
	} else if (rcode != LDNS_RCODE_NOERROR) {
		ldns_lookup_table *t = ldns_lookup_by_id(ldns_rcodes, rcode);

		snprintf(e->a.err, sizeof(e->a.err), "%s %.253s: %s from %s",
		    type_name(type), name, t ? t->name : "error", c->server);
	} else {
		fill(&e->a, p, type);
	}
	ldns_pkt_free(p);
	return &e->a;
}

int
dns_reverse_name(const char *ip, char *out, size_t n)
{
	unsigned char b[16];
	size_t k = 0;

	if (inet_pton(AF_INET, ip, b) == 1) {
		snprintf(out, n, "%u.%u.%u.%u.in-addr.arpa", b[3], b[2], b[1],
		    b[0]);
		return 0;
	}
	if (inet_pton(AF_INET6, ip, b) != 1 || n < 74)
		return -1;
	for (int i = 15; i >= 0; i--) {
		static const char hex[] = "0123456789abcdef";

		out[k++] = hex[b[i] & 15];
		out[k++] = '.';
		out[k++] = hex[b[i] >> 4];
		out[k++] = '.';
	}
	snprintf(out + k, n - k, "ip6.arpa");
	return 0;
}

/* ---- MX for delivery --------------------------------------------------------- */

/* 1 if domain has an address; *temp set when a lookup failed. */
static int
has_address(struct dns_client *c, const char *domain, int *temp)
{
	static const enum dns_type types[] = { DNS_T_A, DNS_T_AAAA };

	for (int i = 0; i < 2; i++) {
		const struct dns_answer *a = dns_client_query(c, domain, types[i]);

		if (a->status == DNS_OK)
			return 1;
		if (a->status == DNS_TEMPFAIL)
			*temp = 1;
	}
	return 0;
}

int
dns_mx(const char *domain, struct dns_mx *out, size_t max, char *err,
    size_t n)
{
	struct dns_client *c;
	const struct dns_answer *a;
	int temp = 0, count = 0;

	if (max == 0)
		return -1;
	if (!(c = dns_client_new(NULL, 6000, err, n)))
		return -1;
	a = dns_client_query(c, domain, DNS_T_MX);
	if (a->status == DNS_TEMPFAIL) {
		snprintf(err, n, "MX lookup for %s failed (%s)", domain, a->err);
		dns_client_free(c);
		return -1;
	}
	if (a->status == DNS_NXDOMAIN) {
		snprintf(err, n, "%s does not exist", domain);
		dns_client_free(c);
		return 0;
	}
	for (size_t i = 0; i < a->n && (size_t)count < max; i++) {
		if (strcmp(a->rr[i], ".") == 0) {      /* RFC 7505 null MX */
			snprintf(err, n, "%s accepts no mail (null MX)", domain);
			dns_client_free(c);
			return 0;
		}
		snprintf(out[count].host, sizeof(out[count].host), "%s",
		    a->rr[i]);
		out[count].pref = a->pref[i];
		count++;
	}
	/* stable sort by preference */
	for (int i = 1; i < count; i++) {
		struct dns_mx t = out[i];
		int j = i - 1;

		for (; j >= 0 && out[j].pref > t.pref; j--)
			out[j + 1] = out[j];
		out[j + 1] = t;
	}
	if (count == 0) {
		if (has_address(c, domain, &temp)) {
			snprintf(out[0].host, sizeof(out[0].host), "%s", domain);
			out[0].pref = 0;
			count = 1;
		} else if (temp) {
			snprintf(err, n, "address lookup for %s failed", domain);
			count = -1;
		} else {
			snprintf(err, n, "%s has no MX and no address", domain);
		}
	}
	dns_client_free(c);
	return count;
}
