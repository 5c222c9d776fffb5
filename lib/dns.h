/*
 * dns - DNS lookups with ldns: the MX hosts of a recipient domain in
 * preference order, falling back to the domain itself (RFC 5321 implicit
 * MX), for delivery; and a small client for `leadcast check-dns` that
 * asks for A, AAAA, MX, TXT and PTR records with a bounded timeout and
 * remembers each answer for the life of the client (one check run).
 * Blocking: call it from the worker pool, or from the CLI.
 * The resolver comes from /etc/resolv.conf, or a nameserver given by
 * dns_set_nameserver() (tests, split-horizon setups) or to
 * dns_client_new(). It does not cache across clients: callers keep
 * results as long as the TTL allows. It does not validate DNSSEC.
 */
#ifndef LEADCAST_DNS_H
#define LEADCAST_DNS_H

#include <stddef.h>

struct dns_mx {
	char host[256];
	int pref;
};

/* Use this nameserver ("127.0.0.1", "127.0.0.1:5353", "::1",
 * "[::1]:5353") instead of /etc/resolv.conf; NULL or "" restores the
 * default. -1 if addr is not an IP address with an optional port. Not
 * thread-safe: set it at configuration load, before lookups run. */
int dns_set_nameserver(const char *addr);

/*
 * MX hosts of domain, best first (equal preferences keep server order).
 * Returns the count (> 0); 0 when the domain accepts no mail (NXDOMAIN,
 * null MX, no MX and no address): a permanent failure; -1 on a temporary
 * failure (timeout, SERVFAIL), with err filled.
 */
int dns_mx(const char *domain, struct dns_mx *out, size_t max, char *err,
    size_t n);

/* ---- the client ----------------------------------------------------------- */

enum dns_type {
	DNS_T_A = 1, DNS_T_MX = 15, DNS_T_TXT = 16, DNS_T_PTR = 12,
	DNS_T_AAAA = 28
};

enum dns_status {
	DNS_OK,                 /* records of the type (n > 0) */
	DNS_NODATA,             /* the name exists, without such records */
	DNS_NXDOMAIN,           /* no such name */
	DNS_TEMPFAIL            /* no answer in time, SERVFAIL, REFUSED... */
};

/* One answer, in text: A and AAAA addresses as inet_ntop writes them;
 * MX, PTR host names without the final dot (pref[] has each MX's
 * preference, in server order); TXT records with their strings joined
 * (RFC 7208 3.3), control characters and NUL as '?'. */
struct dns_answer {
	enum dns_status status;
	char **rr;
	int *pref;              /* MX only, else NULL */
	size_t n;
	char err[400];          /* DNS_TEMPFAIL: what happened */
};

struct dns_client;

/*
 * A client asking server (as dns_set_nameserver takes it; NULL or "" =
 * the nameserver of dns_set_nameserver, else /etc/resolv.conf), each
 * query waiting at most timeout_ms in all (two tries) before it counts as
 * DNS_TEMPFAIL. NULL with err on a bad server address or no resolver.
 * Free with dns_client_free().
 */
struct dns_client *dns_client_new(const char *server, long timeout_ms,
    char *err, size_t n);
void dns_client_free(struct dns_client *c);

/*
 * Records of type for name (at most 253 characters, a trailing dot
 * allowed). The answer is owned by the client and stays valid until
 * dns_client_free; asking again for the same name and type returns it
 * without a query, failures included (a dead server costs one timeout
 * per name). A client sends at most 256 queries; past that, and for a
 * name that is not a valid domain name, the answer is DNS_TEMPFAIL with
 * err saying why. Never NULL.
 */
const struct dns_answer *dns_client_query(struct dns_client *c,
    const char *name, enum dns_type type);

/* Queries sent so far (cached answers not counted). */
size_t dns_client_queries(const struct dns_client *c);

/* The server in use, as "host:port", or "system resolver". */
const char *dns_client_server(const struct dns_client *c);

/* The reverse name of an IPv4 or IPv6 address ("10.2.0.192.in-addr.arpa")
 * into out (size n). 0, or -1 if ip is not an address. */
int dns_reverse_name(const char *ip, char *out, size_t n);

#endif
