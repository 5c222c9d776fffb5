/*
 * dmarc - DMARC (RFC 7489) policy records and identifier alignment, and
 * the tag=value list grammar (RFC 6376 3.2) that DMARC shares with DKIM
 * key records (lib/dkim parses those with dmarc_tags_parse).
 *
 * Pure functions: no DNS (the caller fetches _dmarc.DOMAIN), no
 * reporting. The organizational domain of a name comes from the Public
 * Suffix List through libpsl (the list Debian's publicsuffix package
 * keeps current, else the one built into libpsl). Records longer than
 * DMARC_MAX_RECORD are refused.
 */
#ifndef LEADCAST_DMARC_H
#define LEADCAST_DMARC_H

#include <stddef.h>

#define DMARC_MAX_RECORD 4096
#define DMARC_MAX_TAGS   32

/* A tag-list: names as written (matched without regard to case by
 * dmarc_tags_get), values with white space around them removed. The
 * values are owned by the list (dmarc_tags_free). */
struct dmarc_tags {
	struct { char name[32]; char *value; } v[DMARC_MAX_TAGS];
	size_t n;
};

/*
 * Parse "tag=value; tag=value[;]". 0, or -1 with t empty and err saying
 * what is wrong (a tag without "=", a bad name or value character, a tag
 * given twice, more than DMARC_MAX_TAGS tags, longer than
 * DMARC_MAX_RECORD).
 */
int dmarc_tags_parse(const char *txt, struct dmarc_tags *t, char *err,
    size_t n);
/* The value of tag name, or NULL. */
const char *dmarc_tags_get(const struct dmarc_tags *t, const char *name);
void dmarc_tags_free(struct dmarc_tags *t);

enum dmarc_policy { DMARC_P_NONE, DMARC_P_QUARANTINE, DMARC_P_REJECT };

/* "none", "quarantine", "reject". */
const char *dmarc_policy_name(enum dmarc_policy p);

struct dmarc_record {
	enum dmarc_policy p;
	enum dmarc_policy sp;           /* = p when not given */
	int sp_given;
	int pct;                        /* 0..100, default 100 */
	char adkim, aspf;               /* 'r' (relaxed, default) or 's' */
	char rua[512], ruf[512];        /* as written, "" when not given */
	int rua_count;                  /* URIs in rua */
	int rua_non_mailto;             /* of which not mailto: */
	long ri;                        /* report interval, seconds */
};

/* Does txt start with the tag "v=DMARC1"? (how records are selected
 * among the TXT records of _dmarc.DOMAIN, RFC 7489 6.6.3) */
int dmarc_is_record(const char *txt);

/*
 * Parse a DMARC record. 0 with r filled, or -1 with err naming the tag
 * and what is wrong: v=DMARC1 not first, no p=, a p/sp that is not none,
 * quarantine or reject, pct not 0..100, adkim/aspf not r or s, a rua/ruf
 * URI without a scheme, a bad fo or ri. Unknown tags are ignored (RFC 7489
 * 6.3).
 */
int dmarc_parse(const char *txt, struct dmarc_record *r, char *err,
    size_t n);

/*
 * The organizational domain of domain (its registrable domain under the
 * Public Suffix List: "mail.shop.example.co.uk" -> "example.co.uk"),
 * lowercase, into out (size n). A public suffix itself, or a name the
 * list does not know, is its own organizational domain. 0, or -1 if it
 * does not fit.
 */
int dmarc_org_domain(const char *domain, char *out, size_t n);

/*
 * Are the From domain and an authenticated domain (SPF's MAIL FROM
 * domain, DKIM's d=) aligned in mode 's' (the same name) or 'r' (the
 * same organizational domain)? Case and a final dot do not count.
 */
int dmarc_aligned(const char *from, const char *auth, char mode);

#endif
