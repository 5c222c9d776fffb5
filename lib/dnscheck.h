/*
 * dnscheck - the deliverability checks of `leadcast check-dns`: MX, SPF,
 * DKIM, DMARC, identifier alignment, reverse DNS of the sending IP and
 * the bulk-sender checklist Gmail and Yahoo enforce since 2024, each a
 * line with a status, what was found and what to fix.
 *
 * It asks the DNS through a lib/dns client (bounded timeouts: a check
 * whose lookup gets no answer says it could not run, and the others go
 * on), parses with lib/spf, lib/dmarc and lib/dkim, and compares with
 * what the caller passes from the configuration (DKIM keys, public URL,
 * TLS setting). It does not print (the CLI formats the report), read the
 * configuration, or send mail. Blocking: run it off the event loop.
 */
#ifndef LEADCAST_DNSCHECK_H
#define LEADCAST_DNSCHECK_H

#include <stddef.h>

struct dns_client;
struct dkim_keys;

enum dnscheck_status {
	DNSCHECK_PASS, DNSCHECK_WARN, DNSCHECK_FAIL,
	DNSCHECK_ERROR          /* could not run (no DNS answer in time) */
};

/* "pass", "warn", "fail", "error". */
const char *dnscheck_status_name(enum dnscheck_status s);

#define DNSCHECK_MAX_ITEMS 40

struct dnscheck_item {
	char check[24];         /* "from", "mx", "spf", "dkim", "dmarc",
	                         * "alignment", "ptr", "bulk.spf", ... */
	enum dnscheck_status status;
	char summary[768];      /* what was found */
	char fix[1024];         /* what to do about it; "" when nothing */
};

struct dnscheck_report {
	struct dnscheck_item item[DNSCHECK_MAX_ITEMS];
	size_t n;
	size_t count[4];        /* items per status */
};

enum dnscheck_transport { DNSCHECK_T_MAILDIR, DNSCHECK_T_RELAY,
	DNSCHECK_T_MX };

struct dnscheck_opts {
	const char *domain;             /* the From domain (required) */
	const char *ip;                 /* the sending IP, or NULL */
	const char *selector;           /* DKIM selector, or NULL: those
	                                 * configured for domain */
	const char *envelope_domain;    /* MAIL FROM (bounce) domain, or NULL
	                                 * = domain */
	const char *helo;               /* EHLO name, or NULL/"" */
	const struct dkim_keys *keys;   /* the configured keys (may be NULL) */
	const char *public_url;         /* http.public_url */
	const char *tls;                /* mail.tls: required, opportunistic,
	                                 * none */
	enum dnscheck_transport transport;
	/* the From domains the campaigns and notifications send from (those
	 * not made by a template), to say whether domain is one of them;
	 * nfrom 0: no "from" line */
	const char *const *from;
	size_t nfrom;
};

/*
 * Run every check for o through c into r. Returns 0, or -1 (err filled)
 * when o itself is bad: a domain or envelope domain that is not a domain
 * name, an ip that is not an address, a selector that is not a DNS
 * label sequence. Nothing is asked of the DNS then.
 */
int dnscheck_run(struct dns_client *c, const struct dnscheck_opts *o,
    struct dnscheck_report *r, char *err, size_t n);

#endif
