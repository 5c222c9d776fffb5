/*
 * dns - the lookups delivery needs, with ldns: the MX hosts of a
 * recipient domain in preference order, falling back to the domain itself
 * (RFC 5321 implicit MX). Blocking: call it from the worker pool.
 * The resolver comes from /etc/resolv.conf, or a nameserver given by
 * dns_set_nameserver() (tests, split-horizon setups). It does not cache:
 * callers keep results as long as the TTL allows.
 */
#ifndef LEADCAST_DNS_H
#define LEADCAST_DNS_H

#include <stddef.h>

struct dns_mx {
	char host[256];
	int pref;
};

/* Use this nameserver ("127.0.0.1" or "127.0.0.1:5353") instead of
 * /etc/resolv.conf; NULL restores the default. Not thread-safe: set it at
 * configuration load, before lookups run. */
int dns_set_nameserver(const char *addr);

/*
 * MX hosts of domain, best first (equal preferences keep server order).
 * Returns the count (> 0); 0 when the domain accepts no mail (NXDOMAIN,
 * null MX, no MX and no address): a permanent failure; -1 on a temporary
 * failure (timeout, SERVFAIL), with err filled.
 */
int dns_mx(const char *domain, struct dns_mx *out, size_t max, char *err,
    size_t n);

#endif
