/*
 * spf - the Sender Policy Framework (RFC 7208): parsing an SPF record
 * into its terms, and check_host() over a DNS lookup callback, counting
 * the DNS-querying terms (at most 10) and void lookups (at most 2) as the
 * RFC limits them.
 *
 * Pure: it does no I/O of its own; the caller answers the DNS questions
 * (lib/dns in `leadcast check-dns`, a table in the unit tests). It does
 * not evaluate exp= explanations (only checks their syntax), and it is
 * not a receiving MTA's SPF filter: it is written to tell a sender what
 * its record does. Records longer than SPF_MAX_RECORD are refused.
 */
#ifndef LEADCAST_SPF_H
#define LEADCAST_SPF_H

#include <stddef.h>

#define SPF_MAX_RECORD  4096
#define SPF_MAX_LOOKUPS 10      /* RFC 7208 4.6.4 */
#define SPF_MAX_VOID    2

enum spf_mech {
	SPF_ALL, SPF_INCLUDE, SPF_A, SPF_MX, SPF_PTR, SPF_IP4, SPF_IP6,
	SPF_EXISTS
};

struct spf_term {
	enum spf_mech mech;
	char qual;                      /* '+', '-', '~' or '?' */
	char *domain;                   /* domain-spec as written (macros
	                                 * unexpanded), or NULL: the current
	                                 * domain */
	unsigned char addr[16];         /* ip4 (4 bytes) and ip6 */
	int cidr4, cidr6;               /* prefix lengths (32 and 128 when
	                                 * not written) */
};

/* A parsed record; every string owned by it (spf_record_free). */
struct spf_record {
	struct spf_term *terms;
	size_t n;
	char *redirect;                 /* redirect= domain-spec, or NULL */
	char *exp;                      /* exp= domain-spec, or NULL */
};

/* Is txt an SPF record: "v=spf1" (any case) alone or followed by a space? */
int spf_is_record(const char *txt);

/*
 * Parse an SPF record ("v=spf1 ..."). 0 with r filled (free with
 * spf_record_free), or -1 with r empty and err saying which term is wrong
 * and why (a permerror by RFC 7208: unknown mechanism, bad qualifier, a
 * domain-spec or macro that is not valid, a CIDR length out of range, an
 * IP address that is not one, redirect= or exp= twice, a record too long).
 */
int spf_parse(const char *txt, struct spf_record *r, char *err, size_t n);
void spf_record_free(struct spf_record *r);

/* The term as it would be written ("~all", "ip4:192.0.2.0/24",
 * "include:_spf.example.com"), into out (size n). */
void spf_term_str(const struct spf_term *t, char *out, size_t n);

/* ---- check_host ------------------------------------------------------------- */

enum spf_result {
	SPF_R_NONE, SPF_R_NEUTRAL, SPF_R_PASS, SPF_R_FAIL, SPF_R_SOFTFAIL,
	SPF_R_TEMPERROR, SPF_R_PERMERROR
};

/* "none", "neutral", "pass", "fail", "softfail", "temperror", "permerror". */
const char *spf_result_name(enum spf_result r);

enum spf_dns { SPF_DNS_OK, SPF_DNS_NODATA, SPF_DNS_NXDOMAIN, SPF_DNS_TEMP };

/* The DNS, as the caller answers it. type: 1 A, 28 AAAA, 15 MX, 16 TXT,
 * 12 PTR. On SPF_DNS_OK, *rr[0..*n) are the records in text (as
 * struct dns_answer has them: addresses, host names, joined TXT strings),
 * owned by the caller and valid until the check ends. On SPF_DNS_TEMP,
 * *err says why. */
struct spf_dns_ops {
	enum spf_dns (*query)(void *ctx, const char *name, int type,
	    char *const **rr, size_t *n, const char **err);
	void *ctx;
};

struct spf_check {
	enum spf_result result;
	unsigned lookups;               /* DNS-querying terms evaluated */
	unsigned voids;                 /* lookups that found nothing */
	char match[512];                /* what decided it: "ip4:192.0.2.0/24
	                                 * (in include:_spf.relay.example)",
	                                 * "-all", "no match (neutral)"; or
	                                 * why it is an error */
	int uses_ptr;                   /* a ptr mechanism was seen */
	int plus_all;                   /* a "+all" or "all" was seen */
};

/*
 * check_host(ip, domain, sender) of RFC 7208 4: the SPF record of domain
 * fetched through ops, includes and redirect followed, ip matched.
 * ip NULL matches no address: the result is what the record says to a
 * stranger, and every term up to "all" is evaluated, so lookups is the
 * worst case. sender is the MAIL FROM address (for %{s}, %{l}, %{o});
 * helo the HELO name (%{h}); either may be NULL (postmaster@domain and
 * domain). Fills out; returns out->result.
 */
enum spf_result spf_check_host(const struct spf_dns_ops *ops, const char *ip,
    const char *domain, const char *sender, const char *helo,
    struct spf_check *out);

/*
 * Expand the macros of a domain-spec (RFC 7208 7) for ip, domain, sender
 * and helo, into out (size n), cut to 253 characters from the left as the
 * RFC says. 0, or -1 if the spec is not valid.
 */
int spf_expand(const char *spec, const char *ip, const char *domain,
    const char *sender, const char *helo, char *out, size_t n);

#endif
