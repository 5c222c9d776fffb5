/*
 * dnscheck - the checks of `leadcast check-dns`. See dnscheck.h.
 */
#include "dnscheck.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "dkim.h"
#include "dmarc.h"
#include "dns.h"
#include "spf.h"

#define MAX_SELECTORS 8
#define MAX_MX_HOSTS  10

const char *
dnscheck_status_name(enum dnscheck_status s)
{
	static const char *const names[] = { "pass", "warn", "fail", "error" };

	return (unsigned)s < 4 ? names[s] : "?";
}

/* What the checks found, for the ones that build on others. */
struct state {
	struct dns_client *c;
	const struct dnscheck_opts *o;
	struct dnscheck_report *r;
	const char *envdom;
	enum dnscheck_status spf, dkim, dmarc, align, ptr;
	enum spf_result spf_ip;         /* for the sending IP, when given */
	int dkim_ok;                    /* a selector's key matches */
	int dmarc_found;
	char aspf, adkim;
};

static struct dnscheck_item *add(struct state *s, const char *check,
    enum dnscheck_status st, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void fix(struct dnscheck_item *it, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void strf(char *out, size_t n, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* snprintf, for text that may be cut (long names in a summary). */
static void
strf(char *out, size_t n, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(out, n, fmt, ap);
	va_end(ap);
}

static struct dnscheck_item *
add(struct state *s, const char *check, enum dnscheck_status st,
    const char *fmt, ...)
{
	static struct dnscheck_item overflow;
	struct dnscheck_item *it;
	va_list ap;

	if (s->r->n == DNSCHECK_MAX_ITEMS)
		return &overflow;       /* bounded: more lines are dropped */
	it = &s->r->item[s->r->n++];
	memset(it, 0, sizeof(*it));
	snprintf(it->check, sizeof(it->check), "%s", check);
	it->status = st;
	s->r->count[st]++;
	va_start(ap, fmt);
	vsnprintf(it->summary, sizeof(it->summary), fmt, ap);
	va_end(ap);
	return it;
}

static void
fix(struct dnscheck_item *it, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(it->fix, sizeof(it->fix), fmt, ap);
	va_end(ap);
}

/* ---- the From domain --------------------------------------------------------------- */

static void
check_from(struct state *s)
{
	const char *d = s->o->domain;
	struct buf others = BUF_INIT;
	struct dnscheck_item *it;

	if (s->o->nfrom == 0)
		return;
	for (size_t i = 0; i < s->o->nfrom; i++) {
		if (strcasecmp(s->o->from[i], d) == 0) {
			add(s, "from", DNSCHECK_PASS, "the configuration sends from %s "
			    "(a campaign or notification's from)", d);
			buf_free(&others);
			return;
		}
		buf_printf(&others, "%s%s", i ? ", " : "", s->o->from[i]);
	}
	it = add(s, "from", DNSCHECK_WARN, "no campaign or notification sends "
	    "from %s; they send from %s", d, buf_str(&others));
	fix(it, "check the domain your mail says it is from: leadcast "
	    "check-dns %s", s->o->from[0]);
	buf_free(&others);
}

/* ---- MX -------------------------------------------------------------------------- */

static void
check_mx(struct state *s)
{
	const char *d = s->o->domain;
	const struct dns_answer *a = dns_client_query(s->c, d, DNS_T_MX);
	struct buf list = BUF_INIT;
	char bad[512] = "";
	size_t nbad = 0, nh;
	struct dnscheck_item *it;

	if (a->status == DNS_TEMPFAIL) {
		add(s, "mx", DNSCHECK_ERROR, "could not run: %s", a->err);
		return;
	}
	if (a->status == DNS_NXDOMAIN) {
		it = add(s, "mx", DNSCHECK_FAIL, "%s does not exist in the DNS", d);
		fix(it, "check the spelling, or register %s and publish its "
		    "records", d);
		return;
	}
	if (a->status == DNS_NODATA) {
		const struct dns_answer *a4 = dns_client_query(s->c, d, DNS_T_A);
		const struct dns_answer *a6 = a4->status == DNS_OK ? a4 :
		    dns_client_query(s->c, d, DNS_T_AAAA);

		if (a4->status == DNS_TEMPFAIL || a6->status == DNS_TEMPFAIL) {
			add(s, "mx", DNSCHECK_ERROR, "could not run: %s",
			    a4->status == DNS_TEMPFAIL ? a4->err : a6->err);
		} else if (a4->status == DNS_OK || a6->status == DNS_OK) {
			it = add(s, "mx", DNSCHECK_WARN, "no MX record: replies and "
			    "bounces to %s go to its address (implicit MX)", d);
			fix(it, "publish an MX record for %s naming the host that "
			    "receives its mail", d);
		} else {
			it = add(s, "mx", DNSCHECK_FAIL, "no MX record and no address:"
			    " %s cannot receive replies or bounces (receivers also "
			    "distrust senders whose domain takes no mail)", d);
			fix(it, "publish an MX record for %s naming the host that "
			    "receives its mail", d);
		}
		return;
	}
	if (a->n == 1 && strcmp(a->rr[0], ".") == 0) {
		it = add(s, "mx", DNSCHECK_WARN, "%s publishes a null MX (RFC "
		    "7505): it accepts no mail, so replies to it are lost", d);
		fix(it, "publish real MX records if people should be able to "
		    "reply to %s", d);
		return;
	}
	nh = a->n > MAX_MX_HOSTS ? MAX_MX_HOSTS : a->n;
	for (size_t i = 0; i < nh; i++) {
		const char *h = a->rr[i];
		const struct dns_answer *x4 = dns_client_query(s->c, h, DNS_T_A);
		const struct dns_answer *x6 = x4->status == DNS_OK ? x4 :
		    dns_client_query(s->c, h, DNS_T_AAAA);

		if (x4->status == DNS_TEMPFAIL || x6->status == DNS_TEMPFAIL) {
			add(s, "mx", DNSCHECK_ERROR, "could not run: %s",
			    x4->status == DNS_TEMPFAIL ? x4->err : x6->err);
			buf_free(&list);
			return;
		}
		if (x4->status != DNS_OK && x6->status != DNS_OK) {
			size_t k = strlen(bad);

			snprintf(bad + k, sizeof(bad) - k, "%s%s", nbad ? ", " : "",
			    h);
			nbad++;
		}
		buf_printf(&list, "%s%s (%d)", i ? ", " : "", h, a->pref[i]);
	}
	if (nbad) {
		it = add(s, "mx", nbad == nh ? DNSCHECK_FAIL : DNSCHECK_WARN,
		    "%zu of %zu MX hosts do not resolve to an address: %s", nbad, nh,
		    bad);
		fix(it, "publish A or AAAA records for them, or remove them from "
		    "the MX records of %s", d);
	} else {
		add(s, "mx", DNSCHECK_PASS, "%zu MX host%s, all resolve: %s", nh,
		    nh == 1 ? "" : "s", buf_str(&list));
	}
	buf_free(&list);
}

/* ---- SPF ------------------------------------------------------------------------- */

static enum spf_dns
spf_query(void *ctx, const char *name, int type, char *const **rr, size_t *n,
    const char **err)
{
	const struct dns_answer *a = dns_client_query(ctx, name,
	    (enum dns_type)type);

	*rr = a->rr;
	*n = a->n;
	*err = a->err;
	switch (a->status) {
	case DNS_OK: return SPF_DNS_OK;
	case DNS_NODATA: return SPF_DNS_NODATA;
	case DNS_NXDOMAIN: return SPF_DNS_NXDOMAIN;
	default: return SPF_DNS_TEMP;
	}
}

/* What to do about a permerror, from its text. */
static void
spf_fix(struct dnscheck_item *it, const char *why, const char *d)
{
	if (strstr(why, "DNS lookups"))
		fix(it, "each include:, a, mx, ptr, exists and redirect= costs a "
		    "lookup, the includes' own terms too: drop services you no "
		    "longer send through, and replace an include: by the "
		    "ip4:/ip6: ranges it publishes");
	else if (strstr(why, "SPF records"))
		fix(it, "merge them into one TXT record at %s: one v=spf1, every "
		    "term, one all at the end", d);
	else if (strstr(why, "found nothing"))
		fix(it, "remove the terms naming domains that do not exist or "
		    "have no such records");
	else if (strstr(why, "no SPF record"))
		fix(it, "remove that include:/redirect=, or have that domain "
		    "publish its record");
	else
		fix(it, "correct the record at %s (RFC 7208 syntax: "
		    "\"v=spf1 [qualifier]mechanism[:domain][/cidr] ... -all\")",
		    d);
}

static void
check_spf(struct state *s)
{
	const char *d = s->envdom, *ip = s->o->ip;
	struct spf_dns_ops ops = { spf_query, s->c };
	struct spf_check any, mine;
	struct dnscheck_item *it;
	char sender[300], via[300] = "";

	snprintf(sender, sizeof(sender), "postmaster@%s", d);
	if (strcasecmp(d, s->o->domain) != 0)
		snprintf(via, sizeof(via), " (the envelope domain, mail."
		    "bounce_domain)");
	spf_check_host(&ops, NULL, d, sender, s->o->helo, &any);
	s->spf_ip = SPF_R_NONE;
	if (any.result == SPF_R_TEMPERROR) {
		add(s, "spf", s->spf = DNSCHECK_ERROR, "could not run: %s",
		    any.match);
		return;
	}
	if (any.result == SPF_R_NONE) {
		it = add(s, "spf", s->spf = DNSCHECK_FAIL, "%s%s has no SPF "
		    "record", d, via);
		if (ip)
			fix(it, "publish a TXT record at %s: \"v=spf1 %s:%s -all\" "
			    "(add include: for each service that sends as you)", d,
			    strchr(ip, ':') ? "ip6" : "ip4", ip);
		else
			fix(it, "publish a TXT record at %s: \"v=spf1 ip4:SENDING_IP "
			    "-all\" (add include: for each service that sends as "
			    "you)", d);
		return;
	}
	if (any.result == SPF_R_PERMERROR) {
		it = add(s, "spf", s->spf = DNSCHECK_FAIL, "%s%s: %s (a "
		    "permerror: receivers treat the record as broken)", d, via,
		    any.match);
		spf_fix(it, any.match, d);
		return;
	}
	if (ip) {
		spf_check_host(&ops, ip, d, sender, s->o->helo, &mine);
		s->spf_ip = mine.result;
		if (mine.result == SPF_R_TEMPERROR) {
			add(s, "spf", s->spf = DNSCHECK_ERROR, "could not run: %s",
			    mine.match);
			return;
		}
		if (mine.result == SPF_R_PERMERROR) {
			it = add(s, "spf", s->spf = DNSCHECK_FAIL, "%s%s, for %s: %s "
			    "(permerror)", d, via, ip, mine.match);
			spf_fix(it, mine.match, d);
			return;
		}
		if (mine.result != SPF_R_PASS) {
			it = add(s, "spf", s->spf = mine.result == SPF_R_FAIL ?
			    DNSCHECK_FAIL : DNSCHECK_WARN, "%s%s gives %s for %s (%s);"
			    " %u of %d DNS lookups", d, via,
			    spf_result_name(mine.result), ip, mine.match, any.lookups,
			    SPF_MAX_LOOKUPS);
			fix(it, "add %s:%s to the record at %s, before its all",
			    strchr(ip, ':') ? "ip6" : "ip4", ip, d);
			return;
		}
	}
	if (any.plus_all || any.result == SPF_R_PASS) {
		it = add(s, "spf", s->spf = DNSCHECK_FAIL, "%s%s lets any server "
		    "send as %s (%s gives pass to everyone)", d, via, d, any.match);
		fix(it, "end the record with -all (or ~all) instead of +all");
		return;
	}
	if (any.uses_ptr) {
		it = add(s, "spf", s->spf = DNSCHECK_WARN, "%s%s uses the ptr "
		    "mechanism, which RFC 7208 5.5 says not to use (slow, and "
		    "some receivers ignore it)%s%s", d, via, ip ? "; pass for " :
		    "", ip ? ip : "");
		fix(it, "replace ptr by ip4:/ip6: ranges or a:/mx");
		return;
	}
	if (any.result == SPF_R_NEUTRAL) {
		it = add(s, "spf", s->spf = DNSCHECK_WARN, "%s%s: other servers get"
		    " neutral (%s): it does not tell receivers to distrust "
		    "forgeries%s%s", d, via, any.match, ip ? "; pass for " : "",
		    ip ? ip : "");
		fix(it, "end the record with -all (or ~all)");
		return;
	}
	if (!ip) {
		it = add(s, "spf", s->spf = DNSCHECK_WARN, "%s%s: the record "
		    "parses, others get %s (%s), %u of %d DNS lookups; not checked "
		    "against a sending IP", d, via, spf_result_name(any.result),
		    any.match, any.lookups, SPF_MAX_LOOKUPS);
		fix(it, "give --ip SENDING_IP to check that the record allows the "
		    "address your mail leaves from");
		return;
	}
	it = add(s, "spf", s->spf = any.lookups > 8 ? DNSCHECK_WARN :
	    DNSCHECK_PASS, "%s%s: pass for %s (%s); others get %s; %u of %d "
	    "DNS lookups", d, via, ip, mine.match, spf_result_name(any.result),
	    any.lookups, SPF_MAX_LOOKUPS);
	if (any.lookups > 8)
		fix(it, "close to the limit of %d lookups: one more include and "
		    "SPF breaks for all your mail", SPF_MAX_LOOKUPS);
}

/* ---- DKIM ------------------------------------------------------------------------ */

static int
valid_label_seq(const char *s)
{
	size_t len = strlen(s), lab = 0;

	if (len == 0 || len > 253)
		return 0;
	for (size_t i = 0; i <= len; i++) {
		if (s[i] == '.' || s[i] == '\0') {
			if (lab == 0 && !(s[i] == '\0' && i > 0 && s[i - 1] == '.'))
				return 0;
			lab = 0;
			continue;
		}
		if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_')
			return 0;
		if (++lab > 63)
			return 0;
	}
	return 1;
}

static void
check_dkim_selector(struct state *s, const char *sel)
{
	const char *d = s->o->domain;
	char name[300], err[256];
	const struct dns_answer *a;
	struct dkim_pubkey info;
	struct buf want = BUF_INIT;
	struct dnscheck_item *it;
	const char *txt = NULL;
	size_t found = 0;
	int rc;

	snprintf(name, sizeof(name), "%s._domainkey.%s", sel, d);
	a = dns_client_query(s->c, name, DNS_T_TXT);
	if (a->status == DNS_TEMPFAIL) {
		add(s, "dkim", DNSCHECK_ERROR, "could not run: %s", a->err);
		if (s->dkim != DNSCHECK_PASS)
			s->dkim = DNSCHECK_ERROR;
		return;
	}
	for (size_t i = 0; i < a->n; i++)
		if (strstr(a->rr[i], "p=")) {
			found++;
			txt = a->rr[i];
		}
	/* the configured key's record, to say what to publish */
	if (s->o->keys)
		dkim_keys_check_record(s->o->keys, d, sel, "", &info, &want, err,
		    sizeof(err));
	if (found != 1) {
		if (found)
			it = add(s, "dkim", DNSCHECK_FAIL, "%s has %zu key records: "
			    "there must be one", name, found);
		else
			it = add(s, "dkim", DNSCHECK_FAIL, "no key record at %s: "
			    "signatures with selector %s cannot be verified", name,
			    sel);
		if (want.len)
			fix(it, "publish one TXT record at %s: \"%s\"", name,
			    buf_str(&want));
		else
			fix(it, "publish the record that `leadcast dkim-keygen %s %s` "
			    "prints, and configure its key in leadcast.conf", d, sel);
		buf_free(&want);
		return;
	}
	buf_free(&want);
	{
		struct dkim_keys *empty = s->o->keys ? NULL : dkim_keys_new();

		rc = dkim_keys_check_record(s->o->keys ? s->o->keys : empty, d,
		    sel, txt, &info, &want, err, sizeof(err));
		dkim_keys_free(empty);
	}
	if (rc < 0) {
		it = add(s, "dkim", DNSCHECK_FAIL, "%s: %s", name, err);
		if (want.len)
			fix(it, "publish instead: \"%s\"", buf_str(&want));
		else
			fix(it, "make a new key with `leadcast dkim-keygen %s %s` and "
			    "publish the record it prints", d, sel);
	} else if (rc == DKIM_PUB_MISMATCH) {
		it = add(s, "dkim", DNSCHECK_FAIL, "%s publishes a %s key that is "
		    "not the key configured for %s in leadcast.conf: every "
		    "signature fails", name, dkim_alg_name(info.alg), d);
		fix(it, "publish the configured key's record: \"%s\" (or point "
		    "the dkim section at the key this record belongs to)",
		    buf_str(&want));
	} else if (rc == DKIM_PUB_UNCONFIGURED) {
		it = add(s, "dkim", DNSCHECK_WARN, "%s: a valid %s key (%d bits),"
		    " but leadcast.conf has no dkim \"%s\" section with selector %s:"
		    " leadcast does not sign with it", name,
		    dkim_alg_name(info.alg), info.bits, d, sel);
		fix(it, "add to leadcast.conf: dkim \"%s\" { selector = %s  key = "
		    "\"keys/%s.%s.pem\" } with the private key of this record",
		    d, sel, d, sel);
	} else if (info.testing) {
		it = add(s, "dkim", DNSCHECK_WARN, "%s matches the configured %s "
		    "key, but says t=y (testing): receivers may ignore "
		    "signatures", name, dkim_alg_name(info.alg));
		fix(it, "remove t=y from the record once signing works");
		s->dkim_ok = 1;
	} else if (info.alg == DKIM_ALG_RSA_SHA256 && info.bits < 2048) {
		it = add(s, "dkim", DNSCHECK_WARN, "%s matches the configured RSA "
		    "key of %d bits; 2048 are recommended (RFC 8301)", name,
		    info.bits);
		fix(it, "make a 2048-bit key with `leadcast dkim-keygen %s NEW` "
		    "under a new selector and switch to it", d);
		s->dkim_ok = 1;
	} else {
		add(s, "dkim", DNSCHECK_PASS, "%s: the %s key (%d bits) matches "
		    "the one configured in leadcast.conf", name,
		    dkim_alg_name(info.alg), info.bits);
		s->dkim_ok = 1;
	}
	buf_free(&want);
	if (s->dkim_ok)
		s->dkim = DNSCHECK_PASS;
	else if (s->dkim != DNSCHECK_ERROR)
		s->dkim = DNSCHECK_FAIL;
}

static void
check_dkim(struct state *s)
{
	const char *sel[MAX_SELECTORS];
	enum dkim_alg alg[MAX_SELECTORS];
	size_t n = 0;
	struct dnscheck_item *it;

	s->dkim = DNSCHECK_FAIL;
	if (s->o->selector) {
		check_dkim_selector(s, s->o->selector);
		return;
	}
	if (s->o->keys)
		n = dkim_keys_selectors(s->o->keys, s->o->domain, sel, alg,
		    MAX_SELECTORS);
	if (n == 0) {
		it = add(s, "dkim", DNSCHECK_FAIL, "no DKIM key is configured for "
		    "%s in leadcast.conf, so its mail goes out unsigned",
		    s->o->domain);
		fix(it, "run `leadcast dkim-keygen %s s1`, publish the record it "
		    "prints and add the dkim \"%s\" section it shows (or give "
		    "--selector to check a record anyway)", s->o->domain,
		    s->o->domain);
		return;
	}
	for (size_t i = 0; i < n && i < MAX_SELECTORS; i++)
		check_dkim_selector(s, sel[i]);
}

/* ---- DMARC ----------------------------------------------------------------------- */

static void
check_dmarc(struct state *s)
{
	const char *d = s->o->domain;
	char name[300], org[256], err[256], at[300];
	const struct dns_answer *a;
	struct dmarc_record rec;
	struct dnscheck_item *it;
	const char *txt = NULL;
	size_t found = 0;
	int inherited = 0;

	s->aspf = s->adkim = 'r';
	snprintf(name, sizeof(name), "_dmarc.%s", d);
	a = dns_client_query(s->c, name, DNS_T_TXT);
	if (a->status != DNS_TEMPFAIL) {
		for (size_t i = 0; i < a->n; i++)
			if (dmarc_is_record(a->rr[i])) {
				found++;
				txt = a->rr[i];
			}
		/* RFC 7489 6.6.3: else the organizational domain's record */
		if (!found && dmarc_org_domain(d, org, sizeof(org)) == 0 &&
		    strcasecmp(org, d) != 0) {
			snprintf(name, sizeof(name), "_dmarc.%s", org);
			a = dns_client_query(s->c, name, DNS_T_TXT);
			for (size_t i = 0; i < a->n; i++)
				if (dmarc_is_record(a->rr[i])) {
					found++;
					txt = a->rr[i];
				}
			inherited = 1;
		}
	}
	if (a->status == DNS_TEMPFAIL) {
		add(s, "dmarc", s->dmarc = DNSCHECK_ERROR, "could not run: %s",
		    a->err);
		return;
	}
	if (found == 0) {
		it = add(s, "dmarc", s->dmarc = DNSCHECK_FAIL, "no DMARC record at "
		    "_dmarc.%s%s%s: Gmail and Yahoo refuse bulk mail without one",
		    d, inherited ? " nor at " : "", inherited ? name : "");
		fix(it, "publish a TXT record at _dmarc.%s: \"v=DMARC1; p=none; "
		    "rua=mailto:dmarc-reports@%s\" (read the reports, then move "
		    "to p=quarantine and p=reject)", d, d);
		return;
	}
	if (found > 1) {
		it = add(s, "dmarc", s->dmarc = DNSCHECK_FAIL, "%s has %zu DMARC "
		    "records: receivers then apply none (RFC 7489 6.6.3)", name,
		    found);
		fix(it, "keep one v=DMARC1 record at %s", name);
		return;
	}
	if (dmarc_parse(txt, &rec, err, sizeof(err)) < 0) {
		it = add(s, "dmarc", s->dmarc = DNSCHECK_FAIL, "%s: %s", name, err);
		fix(it, "correct the record, e.g. \"v=DMARC1; p=none; "
		    "rua=mailto:dmarc-reports@%s\"", d);
		return;
	}
	s->dmarc_found = 1;
	s->aspf = rec.aspf;
	s->adkim = rec.adkim;
	strf(at, sizeof(at), "%s%s", name, inherited ? " (inherited by "
	    "the subdomain: sp= applies)" : "");
	{
		enum dmarc_policy eff = inherited ? rec.sp : rec.p;
		char desc[700];

		strf(desc, sizeof(desc), "%s: p=%s%s%s, pct=%d, adkim=%c, "
		    "aspf=%c, rua=%s", at, dmarc_policy_name(rec.p),
		    rec.sp_given ? ", sp=" : "", rec.sp_given ?
		    dmarc_policy_name(rec.sp) : "", rec.pct, rec.adkim, rec.aspf,
		    rec.rua[0] ? rec.rua : "(none)");
		if (eff == DMARC_P_NONE) {
			it = add(s, "dmarc", s->dmarc = DNSCHECK_WARN, "%s; policy none"
			    ": receivers only report, forged mail is still "
			    "delivered", desc);
			fix(it, "once the reports show your own mail passes, raise "
			    "the policy to p=quarantine, then p=reject");
		} else if (rec.pct < 100) {
			it = add(s, "dmarc", s->dmarc = DNSCHECK_WARN, "%s; the policy "
			    "applies to %d%% of failing mail only", desc, rec.pct);
			fix(it, "raise pct to 100 (or remove pct=)");
		} else if (!rec.rua[0]) {
			it = add(s, "dmarc", s->dmarc = DNSCHECK_WARN, "%s; no rua=: "
			    "you get no aggregate reports", desc);
			fix(it, "add rua=mailto:dmarc-reports@%s to learn who sends "
			    "as you and whether it passes", d);
		} else {
			add(s, "dmarc", s->dmarc = DNSCHECK_PASS, "%s", desc);
		}
	}
}

/* ---- alignment ------------------------------------------------------------------- */

static void
check_alignment(struct state *s)
{
	const char *d = s->o->domain;
	int spf_al = dmarc_aligned(d, s->envdom, s->aspf);
	int spf_ok = s->spf_ip == SPF_R_PASS;
	int dkim_al = s->dkim_ok;    /* keys sign with d= the From domain */
	char spfs[400], dkims[300];
	struct dnscheck_item *it;

	snprintf(spfs, sizeof(spfs), "SPF: envelope domain %s %s the From "
	    "domain (aspf=%c)%s", s->envdom, spf_al ? "aligned with" :
	    "NOT aligned with", s->aspf, !s->o->ip ? ", pass not checked "
	    "(no --ip)" : spf_ok ? " and passes" : ", but does not pass");
	snprintf(dkims, sizeof(dkims), "DKIM: d=%s %s", d, dkim_al ?
	    "aligned (the key matches)" : "not usable (no matching key)");
	if ((spf_al && spf_ok) && dkim_al) {
		add(s, "alignment", s->align = DNSCHECK_PASS, "From %s: %s; %s", d,
		    spfs, dkims);
	} else if (dkim_al) {
		it = add(s, "alignment", s->align = s->o->ip ? DNSCHECK_WARN :
		    DNSCHECK_PASS, "From %s: %s; %s: DMARC passes on DKIM alone",
		    d, spfs, dkims);
		if (s->o->ip)
			fix(it, "%s", spf_al ? "make SPF pass for the sending IP "
			    "too" : "set mail.bounce_domain to a subdomain of the "
			    "From domain (or leave it empty) so SPF aligns as well");
	} else if (spf_al && spf_ok) {
		it = add(s, "alignment", s->align = DNSCHECK_WARN, "From %s: %s; "
		    "%s: DMARC passes on SPF alone, which breaks when mail is "
		    "forwarded", d, spfs, dkims);
		fix(it, "sign with a DKIM key for %s (see the dkim line)", d);
	} else if (spf_al && !s->o->ip && s->spf != DNSCHECK_FAIL &&
	    s->spf != DNSCHECK_ERROR) {
		it = add(s, "alignment", s->align = DNSCHECK_WARN, "From %s: %s; "
		    "%s: DMARC can only pass on SPF, which was not checked for an "
		    "address", d, spfs, dkims);
		fix(it, "give --ip SENDING_IP, and sign with a DKIM key for %s "
		    "(see the dkim line)", d);
	} else if (s->dkim == DNSCHECK_ERROR || s->spf == DNSCHECK_ERROR) {
		add(s, "alignment", s->align = DNSCHECK_ERROR, "could not run: the "
		    "%s check could not run", s->dkim == DNSCHECK_ERROR ? "dkim" :
		    "spf");
	} else {
		it = add(s, "alignment", s->align = DNSCHECK_FAIL, "From %s: %s; "
		    "%s: DMARC fails", d, spfs, dkims);
		fix(it, "publish the configured DKIM key (see the dkim line), and "
		    "keep the envelope domain under %s", d);
	}
}

/* ---- reverse DNS ------------------------------------------------------------------ */

static void
check_ptr(struct state *s)
{
	const char *ip = s->o->ip;
	char rev[80], names[512] = "";
	const struct dns_answer *a;
	struct dnscheck_item *it;
	const char *confirmed = NULL;
	unsigned char want[16], got[16];
	int fam = ip && strchr(ip, ':') ? AF_INET6 : AF_INET;

	if (!ip) {
		it = add(s, "ptr", s->ptr = DNSCHECK_WARN, "not checked: no "
		    "sending IP given");
		fix(it, "give --ip SENDING_IP: Gmail and Yahoo want its reverse "
		    "DNS to name a host that resolves back to it");
		return;
	}
	dns_reverse_name(ip, rev, sizeof(rev));
	inet_pton(fam, ip, want);
	a = dns_client_query(s->c, rev, DNS_T_PTR);
	if (a->status == DNS_TEMPFAIL) {
		add(s, "ptr", s->ptr = DNSCHECK_ERROR, "could not run: %s", a->err);
		return;
	}
	if (a->status != DNS_OK) {
		it = add(s, "ptr", s->ptr = DNSCHECK_FAIL, "%s has no PTR record "
		    "(%s)", ip, rev);
		fix(it, "ask whoever runs %s (your hosting provider) to set its "
		    "reverse DNS to a name like mail.%s, and publish an A record "
		    "for that name pointing to %s", ip, s->o->domain, ip);
		return;
	}
	for (size_t i = 0; i < a->n && i < 5 && !confirmed; i++) {
		const struct dns_answer *f = dns_client_query(s->c, a->rr[i],
		    fam == AF_INET ? DNS_T_A : DNS_T_AAAA);
		size_t k = strlen(names);

		snprintf(names + k, sizeof(names) - k, "%s%s", k ? ", " : "",
		    a->rr[i]);
		if (f->status == DNS_TEMPFAIL) {
			add(s, "ptr", s->ptr = DNSCHECK_ERROR, "could not run: %s",
			    f->err);
			return;
		}
		for (size_t j = 0; j < f->n; j++)
			if (inet_pton(fam, f->rr[j], got) == 1 && memcmp(got, want,
			    fam == AF_INET ? 4 : 16) == 0)
				confirmed = a->rr[i];
	}
	if (!confirmed) {
		it = add(s, "ptr", s->ptr = DNSCHECK_FAIL, "%s has the PTR %s, but "
		    "that name does not resolve back to %s (no forward-confirmed "
		    "reverse DNS)", ip, names, ip);
		fix(it, "publish an %s record %s -> %s (or have the PTR changed "
		    "to a name that has one)", fam == AF_INET ? "A" : "AAAA",
		    a->rr[0], ip);
		return;
	}
	if (s->o->helo && *s->o->helo && strcasecmp(s->o->helo, confirmed)) {
		it = add(s, "ptr", s->ptr = DNSCHECK_WARN, "%s -> %s -> %s "
		    "(forward-confirmed), but mail.helo is %s", ip, confirmed, ip,
		    s->o->helo);
		fix(it, "set mail.helo = \"%s\" so the EHLO name matches the "
		    "reverse DNS", confirmed);
		return;
	}
	add(s, "ptr", s->ptr = DNSCHECK_PASS, "%s -> %s -> %s (forward-"
	    "confirmed reverse DNS)", ip, confirmed, ip);
}

/* ---- the bulk-sender checklist ------------------------------------------------------ */

/* A checklist line that restates another check's outcome. */
static void
bulk_from(struct state *s, const char *check, enum dnscheck_status st,
    const char *what, const char *line)
{
	struct dnscheck_item *it;

	if (st == DNSCHECK_ERROR)
		add(s, check, st, "could not run: the %s check could not run",
		    line);
	else if (st == DNSCHECK_PASS)
		add(s, check, st, "%s", what);
	else {
		it = add(s, check, st, "%s: not yet", what);
		fix(it, "see the %s line above", line);
	}
}

static void
check_bulk(struct state *s)
{
	const char *u = s->o->public_url ? s->o->public_url : "";
	const char *tls = s->o->tls ? s->o->tls : "";
	struct dnscheck_item *it;

	if (!s->o->ip) {
		it = add(s, "bulk.spf", DNSCHECK_WARN, "SPF passes for the sending "
		    "IP: not checked (no --ip)");
		fix(it, "give --ip SENDING_IP");
	} else {
		bulk_from(s, "bulk.spf", s->spf == DNSCHECK_ERROR ?
		    DNSCHECK_ERROR : s->spf_ip == SPF_R_PASS ? DNSCHECK_PASS :
		    DNSCHECK_FAIL, "SPF passes for the sending IP", "spf");
	}
	bulk_from(s, "bulk.dkim", s->dkim_ok ? DNSCHECK_PASS : s->dkim ==
	    DNSCHECK_ERROR ? DNSCHECK_ERROR : DNSCHECK_FAIL, "DKIM signatures "
	    "verify (the published key is the configured one)", "dkim");
	bulk_from(s, "bulk.dmarc", s->dmarc_found ? DNSCHECK_PASS : s->dmarc ==
	    DNSCHECK_ERROR ? DNSCHECK_ERROR : DNSCHECK_FAIL, "a DMARC record "
	    "is published (p=none is enough)", "dmarc");
	bulk_from(s, "bulk.alignment", s->align == DNSCHECK_WARN ?
	    DNSCHECK_PASS : s->align, "the From domain aligns with SPF or DKIM",
	    "alignment");
	bulk_from(s, "bulk.ptr", s->ptr, "the sending IP has forward-confirmed "
	    "reverse DNS", "ptr");
	if (strncasecmp(u, "https://", 8) == 0) {
		add(s, "bulk.unsubscribe", DNSCHECK_PASS, "one-click unsubscribe: "
		    "every message carries List-Unsubscribe with an https link "
		    "under %s and List-Unsubscribe-Post (RFC 8058)", u);
	} else {
		it = add(s, "bulk.unsubscribe", DNSCHECK_FAIL, "one-click "
		    "unsubscribe: http.public_url is %s; Gmail and Yahoo only "
		    "honor a one-click List-Unsubscribe-Post link over https",
		    *u ? u : "(empty)");
		fix(it, "serve leadcastd behind a TLS proxy and set "
		    "http.public_url = \"https://...\" in leadcast.conf");
	}
	if (s->o->transport == DNSCHECK_T_MAILDIR) {
		it = add(s, "bulk.tls", DNSCHECK_WARN, "TLS: mail.transport writes "
		    "a Maildir, nothing is sent by SMTP");
		fix(it, "set mail.transport to smtp://relay:587 or mx, with "
		    "mail.tls = required");
	} else if (strcmp(tls, "required") == 0) {
		add(s, "bulk.tls", DNSCHECK_PASS, "TLS: mail.tls = required, "
		    "messages never leave in clear text");
	} else if (strcmp(tls, "opportunistic") == 0) {
		it = add(s, "bulk.tls", DNSCHECK_WARN, "TLS: mail.tls = "
		    "opportunistic: STARTTLS when the server offers it (Gmail and "
		    "Yahoo do), clear text otherwise");
		fix(it, "set mail.tls = required to never send in clear text");
	} else {
		it = add(s, "bulk.tls", DNSCHECK_FAIL, "TLS: mail.tls = %s: mail "
		    "leaves in clear text, which Gmail and Yahoo refuse from bulk "
		    "senders", *tls ? tls : "none");
		fix(it, "set mail.tls = required (or opportunistic)");
	}
}

int
dnscheck_run(struct dns_client *c, const struct dnscheck_opts *o,
    struct dnscheck_report *r, char *err, size_t n)
{
	struct state s;
	unsigned char b[16];

	memset(r, 0, sizeof(*r));
	if (!o->domain || !valid_label_seq(o->domain) || !strchr(o->domain,
	    '.')) {
		snprintf(err, n, "domain: \"%.80s\" is not a domain name",
		    o->domain ? o->domain : "");
		return -1;
	}
	if (o->envelope_domain && *o->envelope_domain &&
	    !valid_label_seq(o->envelope_domain)) {
		snprintf(err, n, "mail.bounce_domain: \"%.80s\" is not a domain "
		    "name", o->envelope_domain);
		return -1;
	}
	if (o->ip && inet_pton(AF_INET, o->ip, b) != 1 &&
	    inet_pton(AF_INET6, o->ip, b) != 1) {
		snprintf(err, n, "--ip: \"%.80s\" is not an IPv4 or IPv6 address",
		    o->ip);
		return -1;
	}
	if (o->selector && (!valid_label_seq(o->selector) ||
	    strlen(o->selector) + strlen(o->domain) > 240)) {
		snprintf(err, n, "--selector: \"%.80s\" is not a DKIM selector "
		    "(letters, digits, hyphens, dots)", o->selector);
		return -1;
	}
	memset(&s, 0, sizeof(s));
	s.c = c;
	s.o = o;
	s.r = r;
	s.envdom = o->envelope_domain && *o->envelope_domain ?
	    o->envelope_domain : o->domain;
	check_from(&s);
	check_mx(&s);
	check_spf(&s);
	check_dkim(&s);
	check_dmarc(&s);
	check_alignment(&s);
	check_ptr(&s);
	check_bulk(&s);
	return 0;
}
