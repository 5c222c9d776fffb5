/*
 * dns - MX lookups with ldns. See dns.h.
 */
#include "dns.h"

#include <ldns/ldns.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pthread_mutex_t ns_lock = PTHREAD_MUTEX_INITIALIZER;
static char ns_host[64];
static int ns_port;

int
dns_set_nameserver(const char *addr)
{
	const char *colon;
	int rc;

	pthread_mutex_lock(&ns_lock);
	if (!addr || !*addr) {
		ns_host[0] = '\0';
		pthread_mutex_unlock(&ns_lock);
		return 0;
	}
	colon = strrchr(addr, ':');
	if (colon && strchr(addr, '.')) {
		snprintf(ns_host, sizeof(ns_host), "%.*s", (int)(colon - addr),
		    addr);
		ns_port = atoi(colon + 1);
	} else {
		snprintf(ns_host, sizeof(ns_host), "%s", addr);
		ns_port = 53;
	}
	rc = ns_port > 0 && ns_port < 65536 ? 0 : -1;
	pthread_mutex_unlock(&ns_lock);
	return rc;
}

static ldns_resolver *
resolver(char *err, size_t n)
{
	ldns_resolver *res = NULL;
	char host[64];
	int port;

	pthread_mutex_lock(&ns_lock);
	memcpy(host, ns_host, sizeof(host));
	port = ns_port;
	pthread_mutex_unlock(&ns_lock);
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
	ldns_resolver_set_retry(res, 2);
	{
		struct timeval tv = { 3, 0 };

		ldns_resolver_set_timeout(res, tv);
	}
	return res;
}

/* Query; returns the packet or NULL (*temp set if worth retrying). */
static ldns_pkt *
query(ldns_resolver *res, const char *name, ldns_rr_type type, int *rcode)
{
	ldns_rdf *d = ldns_dname_new_frm_str(name);
	ldns_pkt *p = NULL;

	*rcode = -1;
	if (!d)
		return NULL;
	if (ldns_resolver_query_status(&p, res, d, type, LDNS_RR_CLASS_IN,
	    LDNS_RD) != LDNS_STATUS_OK || !p) {
		ldns_rdf_deep_free(d);
		return NULL;
	}
	ldns_rdf_deep_free(d);
	*rcode = ldns_pkt_get_rcode(p);
	return p;
}

static int
has_address(ldns_resolver *res, const char *domain, int *temp)
{
	static const ldns_rr_type types[] = { LDNS_RR_TYPE_A, LDNS_RR_TYPE_AAAA };

	for (int i = 0; i < 2; i++) {
		int rcode;
		ldns_pkt *p = query(res, domain, types[i], &rcode);
		int found = 0;

		if (!p || (rcode != LDNS_RCODE_NOERROR &&
		    rcode != LDNS_RCODE_NXDOMAIN))
			*temp = 1;
		if (p && rcode == LDNS_RCODE_NOERROR)
			found = ldns_pkt_ancount(p) > 0;
		ldns_pkt_free(p);
		if (found)
			return 1;
	}
	return 0;
}

int
dns_mx(const char *domain, struct dns_mx *out, size_t max, char *err,
    size_t n)
{
	ldns_resolver *res;
	ldns_rr_list *mx;
	ldns_pkt *p;
	int rcode, temp = 0, count = 0;

	if (max == 0)
		return -1;
	if (!(res = resolver(err, n)))
		return -1;
	p = query(res, domain, LDNS_RR_TYPE_MX, &rcode);
	if (!p || (rcode != LDNS_RCODE_NOERROR && rcode != LDNS_RCODE_NXDOMAIN)) {
		snprintf(err, n, "MX lookup for %s failed (%s)", domain,
		    p ? "server failure" : "no answer");
		ldns_pkt_free(p);
		ldns_resolver_deep_free(res);
		return -1;
	}
	if (rcode == LDNS_RCODE_NXDOMAIN) {
		snprintf(err, n, "%s does not exist", domain);
		ldns_pkt_free(p);
		ldns_resolver_deep_free(res);
		return 0;
	}
	mx = ldns_pkt_rr_list_by_type(p, LDNS_RR_TYPE_MX, LDNS_SECTION_ANSWER);
	for (size_t i = 0; mx && i < ldns_rr_list_rr_count(mx) &&
	    (size_t)count < max; i++) {
		ldns_rr *rr = ldns_rr_list_rr(mx, i);
		ldns_rdf *pref = ldns_rr_rdf(rr, 0), *host = ldns_rr_rdf(rr, 1);
		char *h;

		if (!pref || !host || !(h = ldns_rdf2str(host)))
			continue;
		if (strcmp(h, ".") == 0) {      /* RFC 7505 null MX */
			free(h);
			snprintf(err, n, "%s accepts no mail (null MX)", domain);
			count = 0;
			mx = (ldns_rr_list_deep_free(mx), NULL);
			goto done;
		}
		if (*h && h[strlen(h) - 1] == '.')
			h[strlen(h) - 1] = '\0';
		snprintf(out[count].host, sizeof(out[count].host), "%s", h);
		out[count].pref = ldns_rdf2native_int16(pref);
		count++;
		free(h);
	}
	ldns_rr_list_deep_free(mx);
	/* stable sort by preference */
	for (int i = 1; i < count; i++) {
		struct dns_mx t = out[i];
		int j = i - 1;

		for (; j >= 0 && out[j].pref > t.pref; j--)
			out[j + 1] = out[j];
		out[j + 1] = t;
	}
	if (count == 0) {
		if (has_address(res, domain, &temp)) {
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
done:
	ldns_pkt_free(p);
	ldns_resolver_deep_free(res);
	return count;
}
