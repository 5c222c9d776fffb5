/*
 * spf - SPF record parsing and check_host() (RFC 7208). See spf.h.
 */
#include "spf.h"

#include "buf.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int
spf_is_record(const char *txt)
{
	return strncasecmp(txt, "v=spf1", 6) == 0 &&
	    (txt[6] == '\0' || txt[6] == ' ');
}

static const char *const mech_names[] = {
	[SPF_ALL] = "all", [SPF_INCLUDE] = "include", [SPF_A] = "a",
	[SPF_MX] = "mx", [SPF_PTR] = "ptr", [SPF_IP4] = "ip4",
	[SPF_IP6] = "ip6", [SPF_EXISTS] = "exists",
};

/* ---- macros (RFC 7208 7) ----------------------------------------------------- */

/* Length of the macro-expand at s ("%{d}", "%%", "%_", "%-"), or 0 if it
 * is not one. exp: the letters c, r, t are allowed too (explanations). */
static size_t
macro_len(const char *s, size_t len, int exp)
{
	size_t i;

	if (len < 2 || s[0] != '%')
		return 0;
	if (s[1] == '%' || s[1] == '_' || s[1] == '-')
		return 2;
	if (s[1] != '{' || len < 4)
		return 0;
	if (!strchr(exp ? "slodiphvcrtSLODIPHVCRT" : "slodiphvSLODIPHV", s[2]))
		return 0;
	i = 3;
	if (i < len && s[i] == '0')
		return 0;
	while (i < len && isdigit((unsigned char)s[i]))
		i++;
	if (i - 3 > 3)
		return 0;
	if (i < len && (s[i] == 'r' || s[i] == 'R'))
		i++;
	while (i < len && strchr(".-+,/_=", s[i]) && s[i])
		i++;
	return i < len && s[i] == '}' ? i + 1 : 0;
}

static int
is_toplabel(const char *s, size_t len)
{
	int alpha = 0;

	if (len == 0 || len > 63 || s[0] == '-' || s[len - 1] == '-')
		return 0;
	for (size_t i = 0; i < len; i++) {
		if (isalpha((unsigned char)s[i]))
			alpha = 1;
		else if (!isdigit((unsigned char)s[i]) && s[i] != '-')
			return 0;
	}
	/* all digits is not a top label; a hyphen makes it one */
	return alpha || memchr(s, '-', len) != NULL;
}

/* domain-spec = macro-string domain-end (RFC 7208 7.1). */
static int
valid_domain_spec(const char *s, size_t len)
{
	size_t i = 0, last_macro_end = (size_t)-1;
	size_t end, dot;

	if (len == 0 || len > 1024)
		return 0;
	while (i < len) {
		unsigned char c = (unsigned char)s[i];

		if (c == '%') {
			size_t m = macro_len(s + i, len - i, 0);

			if (!m)
				return 0;
			i += m;
			last_macro_end = i;
			continue;
		}
		if (c < 0x21 || c > 0x7e)
			return 0;
		i++;
	}
	if (last_macro_end == len && s[len - 1] == '}')
		return 1;
	end = len;
	if (s[end - 1] == '.')
		end--;
	for (dot = end; dot > 0 && s[dot - 1] != '.'; dot--)
		;
	if (dot == 0)
		return 0;       /* "." toplabel: a single label is not enough */
	return is_toplabel(s + dot, end - dot);
}

/* The parts of value split at any of delims, into parts (at most max). */
static size_t
split(char *value, const char *delims, char **parts, size_t max)
{
	size_t np = 0;
	char *p = value;

	parts[np++] = p;
	for (; *p; p++) {
		if (strchr(delims, *p)) {
			*p = '\0';
			if (np == max)
				break;
			parts[np++] = p + 1;
		}
	}
	return np;
}

static int
append(char *out, size_t n, size_t *k, const char *s, size_t len)
{
	if (*k + len + 1 > n)
		return -1;
	memcpy(out + *k, s, len);
	*k += len;
	out[*k] = '\0';
	return 0;
}

/* The value of macro letter c. */
static void
macro_value(int c, const char *ip, const char *domain, const char *sender,
    const char *helo, char *v, size_t n)
{
	unsigned char b[16];
	const char *at = strrchr(sender, '@');

	switch (tolower(c)) {
	case 's': snprintf(v, n, "%s", sender); break;
	case 'l':
		if (at && at != sender)
			snprintf(v, n, "%.*s", (int)(at - sender), sender);
		else
			snprintf(v, n, "postmaster");
		break;
	case 'o': snprintf(v, n, "%s", at ? at + 1 : sender); break;
	case 'd': snprintf(v, n, "%s", domain); break;
	case 'h': snprintf(v, n, "%s", helo); break;
	case 'p': snprintf(v, n, "unknown"); break;
	case 'v':
		snprintf(v, n, "%s", ip && strchr(ip, ':') ? "ip6" : "in-addr");
		break;
	case 'i':
		if (ip && inet_pton(AF_INET6, ip, b) == 1) {
			size_t k = 0;

			for (int i = 0; i < 16 && k + 4 < n; i++)
				k += (size_t)snprintf(v + k, n - k, "%s%x.%x",
				    i ? "." : "", b[i] >> 4, b[i] & 15);
		} else {
			snprintf(v, n, "%s", ip ? ip : "192.0.2.0");
		}
		break;
	default: v[0] = '\0'; break;
	}
}

int
spf_expand(const char *spec, const char *ip, const char *domain,
    const char *sender, const char *helo, char *out, size_t n)
{
	size_t len = strlen(spec), k = 0, i = 0;
	char defsender[300];

	if (!valid_domain_spec(spec, len) || n < 2)
		return -1;
	if (!sender || !*sender) {
		snprintf(defsender, sizeof(defsender), "postmaster@%s", domain);
		sender = defsender;
	}
	if (!helo || !*helo)
		helo = domain;
	out[0] = '\0';
	while (i < len) {
		size_t m = spec[i] == '%' ? macro_len(spec + i, len - i, 0) : 0;
		char val[1100], *parts[128];
		const char *delims = ".";
		char dl[8];
		size_t np, keep = 0, j, first;
		int rev = 0;

		if (!m) {
			if (append(out, n, &k, spec + i, 1) < 0)
				return -1;
			i++;
			continue;
		}
		if (m == 2) {
			const char *lit = spec[i + 1] == '%' ? "%" :
			    spec[i + 1] == '_' ? " " : "%20";

			if (append(out, n, &k, lit, strlen(lit)) < 0)
				return -1;
			i += 2;
			continue;
		}
		macro_value(spec[i + 2], ip, domain, sender, helo, val,
		    sizeof(val));
		j = i + 3;
		while (isdigit((unsigned char)spec[j]))
			keep = keep * 10 + (size_t)(spec[j++] - '0');
		if (spec[j] == 'r' || spec[j] == 'R') {
			rev = 1;
			j++;
		}
		if (spec[j] != '}') {
			size_t d = 0;

			while (spec[j] != '}' && d + 1 < sizeof(dl))
				dl[d++] = spec[j++];
			dl[d] = '\0';
			delims = dl;
		}
		np = split(val, delims, parts, 128);
		if (rev)
			for (size_t a = 0, b = np - 1; a < b; a++, b--) {
				char *t = parts[a];

				parts[a] = parts[b];
				parts[b] = t;
			}
		first = keep && keep < np ? np - keep : 0;
		for (size_t p = first; p < np; p++)
			if ((p > first && append(out, n, &k, ".", 1) < 0) ||
			    append(out, n, &k, parts[p], strlen(parts[p])) < 0)
				return -1;
		i += m;
	}
	/* RFC 7208 7.3: over 253 characters, drop labels from the left */
	while (k > 253) {
		char *dot = strchr(out, '.');

		if (!dot)
			return -1;
		k -= (size_t)(dot + 1 - out);
		memmove(out, dot + 1, k + 1);
	}
	return 0;
}

/* ---- parsing ------------------------------------------------------------------ */

void
spf_record_free(struct spf_record *r)
{
	for (size_t i = 0; i < r->n; i++)
		free(r->terms[i].domain);
	free(r->terms);
	free(r->redirect);
	free(r->exp);
	memset(r, 0, sizeof(*r));
}

/* A CIDR length "/N" at *s (0..max), advancing *s. */
static int
parse_cidr(const char **s, const char *end, int max, int *out)
{
	const char *p = *s + 1;
	long v = 0;

	if (p >= end || !isdigit((unsigned char)*p) ||
	    (*p == '0' && p + 1 < end && isdigit((unsigned char)p[1])))
		return -1;
	while (p < end && isdigit((unsigned char)*p) && v <= max)
		v = v * 10 + (*p++ - '0');
	if (v > max)
		return -1;
	*out = (int)v;
	*s = p;
	return 0;
}

/* Find the end of a domain-spec in [s, end): the first '/' outside a
 * macro. */
static const char *
spec_end(const char *s, const char *end)
{
	while (s < end && *s != '/') {
		if (*s == '%' && s + 1 < end && s[1] == '{') {
			const char *c = memchr(s, '}', (size_t)(end - s));

			s = c ? c + 1 : end;
		} else {
			s++;
		}
	}
	return s;
}

static int
parse_term(const char *t, size_t len, struct spf_record *r, char *err,
    size_t n)
{
	const char *end = t + len, *p = t, *colon;
	struct spf_term term;
	size_t name = 0;
	int m;

	memset(&term, 0, sizeof(term));
	term.qual = '+';
	term.cidr4 = 32;
	term.cidr6 = 128;
	/* a modifier: name "=" macro-string */
	while (name < len && (isalnum((unsigned char)t[name]) || (name > 0 &&
	    strchr("-_.", t[name]))))
		name++;
	if (name > 0 && name < len && t[name] == '=' &&
	    isalpha((unsigned char)t[0])) {
		const char *v = t + name + 1;
		size_t vlen = len - name - 1;
		char **slot = NULL;

		if (name == 8 && strncasecmp(t, "redirect", 8) == 0)
			slot = &r->redirect;
		else if (name == 3 && strncasecmp(t, "exp", 3) == 0)
			slot = &r->exp;
		if (!slot) {
			/* unknown modifiers are ignored (RFC 7208 6) but their
			 * value must be a macro-string */
			for (size_t i = 0; i < vlen; i++) {
				size_t ml = v[i] == '%' ? macro_len(v + i, vlen - i,
				    0) : 1;

				if (!ml || (unsigned char)v[i] < 0x21 ||
				    (unsigned char)v[i] > 0x7e) {
					errf(err, n, "\"%.*s\": bad value of "
					    "the modifier %.*s", (int)len, t,
					    (int)name, t);
					return -1;
				}
				i += ml - 1;
			}
			return 0;
		}
		if (*slot) {
			errf(err, n, "%.*s= appears twice (RFC 7208 6)",
			    (int)name, t);
			return -1;
		}
		if (!valid_domain_spec(v, vlen)) {
			errf(err, n, "\"%.*s\": not a valid domain", (int)len,
			    t);
			return -1;
		}
		if (!(*slot = strndup(v, vlen))) {
			errf(err, n, "out of memory");
			return -1;
		}
		return 0;
	}
	if (strchr("+-~?", *p))
		term.qual = *p++;
	for (colon = p; colon < end && *colon != ':' && *colon != '/'; colon++)
		;
	for (m = 0; m < (int)(sizeof(mech_names) / sizeof(*mech_names)); m++)
		if ((size_t)(colon - p) == strlen(mech_names[m]) &&
		    strncasecmp(p, mech_names[m], (size_t)(colon - p)) == 0)
			break;
	if (m == (int)(sizeof(mech_names) / sizeof(*mech_names))) {
		errf(err, n, "\"%.*s\": unknown mechanism (all, include, a, "
		    "mx, ptr, ip4, ip6, exists; modifiers are name=value)",
		    (int)len, t);
		return -1;
	}
	term.mech = (enum spf_mech)m;
	p = colon;
	switch (term.mech) {
	case SPF_ALL:
		if (p != end)
			goto bad;
		break;
	case SPF_IP4:
	case SPF_IP6: {
		char a[64];
		const char *slash;

		if (p == end || *p != ':')
			goto bad;
		p++;
		slash = memchr(p, '/', (size_t)(end - p));
		if (!slash)
			slash = end;
		if ((size_t)(slash - p) >= sizeof(a))
			goto bad;
		memcpy(a, p, (size_t)(slash - p));
		a[slash - p] = '\0';
		if (inet_pton(term.mech == SPF_IP4 ? AF_INET : AF_INET6, a,
		    term.addr) != 1) {
			errf(err, n, "\"%.*s\": %s is not an %s address",
			    (int)len, t, a, term.mech == SPF_IP4 ? "IPv4" : "IPv6");
			return -1;
		}
		p = slash;
		if (p < end && parse_cidr(&p, end, term.mech == SPF_IP4 ? 32 :
		    128, term.mech == SPF_IP4 ? &term.cidr4 : &term.cidr6) < 0)
			goto badcidr;
		if (p != end)
			goto bad;
		break;
	}
	default: {
		const char *d;

		if (p < end && *p == ':') {
			p++;
			d = term.mech == SPF_A || term.mech == SPF_MX ?
			    spec_end(p, end) : end;
			if (!valid_domain_spec(p, (size_t)(d - p))) {
				errf(err, n, "\"%.*s\": \"%.*s\" is not a valid "
				    "domain", (int)len, t, (int)(d - p), p);
				return -1;
			}
			if (!(term.domain = strndup(p, (size_t)(d - p)))) {
				errf(err, n, "out of memory");
				return -1;
			}
			p = d;
		} else if (term.mech == SPF_INCLUDE || term.mech == SPF_EXISTS) {
			errf(err, n, "\"%.*s\": %s needs a domain (%s:example."
			    "com)", (int)len, t, mech_names[m], mech_names[m]);
			return -1;
		}
		if (term.mech == SPF_A || term.mech == SPF_MX) {
			if (p < end && *p == '/' && (p + 1 == end || p[1] != '/') &&
			    parse_cidr(&p, end, 32, &term.cidr4) < 0)
				goto badcidr;
			if (p + 1 < end && p[0] == '/' && p[1] == '/') {
				p++;
				if (parse_cidr(&p, end, 128, &term.cidr6) < 0)
					goto badcidr;
			}
		}
		if (p != end) {
			free(term.domain);
			goto bad;
		}
	}
	}
	{
		struct spf_term *nv = realloc(r->terms, (r->n + 1) * sizeof(*nv));

		if (!nv) {
			free(term.domain);
			errf(err, n, "out of memory");
			return -1;
		}
		r->terms = nv;
		r->terms[r->n++] = term;
	}
	return 0;
badcidr:
	free(term.domain);
	errf(err, n, "\"%.*s\": bad CIDR length (ip4 /0 to /32, ip6 /0 to "
	    "/128)", (int)len, t);
	return -1;
bad:
	errf(err, n, "\"%.*s\": bad syntax for %s", (int)len, t,
	    mech_names[m]);
	return -1;
}

int
spf_parse(const char *txt, struct spf_record *r, char *err, size_t n)
{
	size_t len = strlen(txt);
	const char *p;

	memset(r, 0, sizeof(*r));
	if (len > SPF_MAX_RECORD) {
		errf(err, n, "record of %zu characters (at most %d)", len,
		    SPF_MAX_RECORD);
		return -1;
	}
	if (!spf_is_record(txt)) {
		errf(err, n, "not an SPF record (it must start with "
		    "\"v=spf1\")");
		return -1;
	}
	for (p = txt + 6; *p;) {
		const char *e;

		if (*p == ' ') {
			p++;
			continue;
		}
		for (e = p; *e && *e != ' '; e++)
			;
		if (parse_term(p, (size_t)(e - p), r, err, n) < 0) {
			spf_record_free(r);
			return -1;
		}
		p = e;
	}
	return 0;
}

void
spf_term_str(const struct spf_term *t, char *out, size_t n)
{
	char a[INET6_ADDRSTRLEN] = "";
	size_t k;

	k = (size_t)snprintf(out, n, "%s%s", t->qual == '+' ? "" :
	    (char[]){ t->qual, '\0' }, mech_names[t->mech]);
	if (k >= n)
		return;
	if (t->mech == SPF_IP4 || t->mech == SPF_IP6) {
		inet_ntop(t->mech == SPF_IP4 ? AF_INET : AF_INET6, t->addr, a,
		    sizeof(a));
		k += (size_t)snprintf(out + k, n - k, ":%s", a);
		if (k < n && (t->mech == SPF_IP4 ? t->cidr4 != 32 :
		    t->cidr6 != 128))
			snprintf(out + k, n - k, "/%d", t->mech == SPF_IP4 ?
			    t->cidr4 : t->cidr6);
		return;
	}
	if (t->domain)
		k += (size_t)snprintf(out + k, n - k, ":%s", t->domain);
	if (k < n && t->cidr4 != 32)
		k += (size_t)snprintf(out + k, n - k, "/%d", t->cidr4);
	if (k < n && t->cidr6 != 128)
		snprintf(out + k, n - k, "//%d", t->cidr6);
}

/* ---- check_host ---------------------------------------------------------------- */

const char *
spf_result_name(enum spf_result r)
{
	static const char *const names[] = { "none", "neutral", "pass", "fail",
	    "softfail", "temperror", "permerror" };

	return (unsigned)r < 7 ? names[r] : "?";
}

struct spf_ctx {
	const struct spf_dns_ops *ops;
	const char *ipstr;              /* NULL: match nothing */
	int family;                     /* AF_INET, AF_INET6, 0 */
	unsigned char ip[16];
	const char *sender, *helo;
	struct spf_check *out;
};

static int
prefix_match(const unsigned char *a, const unsigned char *b, int bits)
{
	int bytes = bits / 8, rest = bits % 8;

	if (memcmp(a, b, (size_t)bytes) != 0)
		return 0;
	return rest == 0 || ((a[bytes] ^ b[bytes]) &
	    (unsigned char)(0xff << (8 - rest))) == 0;
}

/* Does the text address s match the connecting IP within the term's
 * prefix? */
static int
addr_match(const struct spf_ctx *x, const char *s, const struct spf_term *t)
{
	unsigned char b[16];

	if (x->family == AF_INET && inet_pton(AF_INET, s, b) == 1)
		return prefix_match(x->ip, b, t->cidr4);
	if (x->family == AF_INET6 && inet_pton(AF_INET6, s, b) == 1)
		return prefix_match(x->ip, b, t->cidr6);
	return 0;
}

/* Ask the DNS; *r set on error (temperror, or permerror past the void
 * limit). count_void: this lookup counts toward the void lookups. */
static enum spf_dns
ask(struct spf_ctx *x, const char *name, int type, char *const **rr,
    size_t *n, int count_void, enum spf_result *r)
{
	const char *err = NULL;
	enum spf_dns d = x->ops->query(x->ops->ctx, name, type, rr, n, &err);

	if (d == SPF_DNS_TEMP) {
		snprintf(x->out->match, sizeof(x->out->match), "%s",
		    err ? err : "DNS lookup failed");
		*r = SPF_R_TEMPERROR;
	} else if (d != SPF_DNS_OK) {
		*n = 0;
		if (count_void && ++x->out->voids > SPF_MAX_VOID) {
			snprintf(x->out->match, sizeof(x->out->match), "more than "
			    "%d lookups found nothing (the last: %s), the limit of "
			    "RFC 7208 4.6.4", SPF_MAX_VOID, name);
			*r = SPF_R_PERMERROR;
		}
	}
	return d;
}

static enum spf_result check(struct spf_ctx *x, const char *domain,
    const char *via, int depth);

static enum spf_result
qual_result(char q)
{
	return q == '-' ? SPF_R_FAIL : q == '~' ? SPF_R_SOFTFAIL : q == '?' ?
	    SPF_R_NEUTRAL : SPF_R_PASS;
}

/* Does term t match? 1, 0, or -1 with *r set (an error). */
static int
term_match(struct spf_ctx *x, const struct spf_term *t, const char *domain,
    const char *target, int depth, enum spf_result *r)
{
	char *const *rr;
	size_t n = 0;
	int addr_type = x->family == AF_INET6 ? 28 : 1;

	switch (t->mech) {
	case SPF_ALL:
		return 1;
	case SPF_IP4:
		return x->family == AF_INET && prefix_match(x->ip, t->addr,
		    t->cidr4);
	case SPF_IP6:
		return x->family == AF_INET6 && prefix_match(x->ip, t->addr,
		    t->cidr6);
	case SPF_A:
	case SPF_EXISTS:
		if (ask(x, target, t->mech == SPF_EXISTS ? 1 : addr_type, &rr, &n,
		    1, r) == SPF_DNS_TEMP || *r != SPF_R_NONE)
			return -1;
		if (t->mech == SPF_EXISTS)
			return n > 0 && x->ipstr != NULL;
		for (size_t i = 0; i < n; i++)
			if (addr_match(x, rr[i], t))
				return 1;
		return 0;
	case SPF_MX: {
		char **hosts;
		size_t nh;

		if (ask(x, target, 15, &rr, &n, 1, r) == SPF_DNS_TEMP ||
		    *r != SPF_R_NONE)
			return -1;
		if (n > 10) {
			snprintf(x->out->match, sizeof(x->out->match), "mx:%s has "
			    "%zu MX hosts, more than the 10 RFC 7208 4.6.4 allows",
			    target, n);
			*r = SPF_R_PERMERROR;
			return -1;
		}
		/* copy: the next answers may move the caller's storage */
		nh = n;
		if (!(hosts = calloc(nh ? nh : 1, sizeof(*hosts))))
			return 0;
		for (size_t i = 0; i < nh; i++)
			hosts[i] = strdup(rr[i]);
		int hit = 0;

		for (size_t i = 0; i < nh && !hit; i++) {
			if (!hosts[i] || strcmp(hosts[i], ".") == 0)
				continue;
			if (ask(x, hosts[i], addr_type, &rr, &n, 0, r) ==
			    SPF_DNS_TEMP) {
				hit = -1;
				break;
			}
			for (size_t j = 0; j < n; j++)
				if (addr_match(x, rr[j], t))
					hit = 1;
		}
		for (size_t i = 0; i < nh; i++)
			free(hosts[i]);
		free(hosts);
		return hit;
	}
	case SPF_PTR: {
		char rev[80];
		char **names;
		size_t nn;
		int hit = 0;

		x->out->uses_ptr = 1;
		if (!x->ipstr)
			return 0;
		{
			unsigned char *b = x->ip;

			if (x->family == AF_INET)
				snprintf(rev, sizeof(rev), "%u.%u.%u.%u.in-addr.arpa",
				    b[3], b[2], b[1], b[0]);
			else {
				size_t k = 0;

				for (int i = 15; i >= 0; i--)
					k += (size_t)snprintf(rev + k, sizeof(rev) - k,
					    "%x.%x.", b[i] & 15, b[i] >> 4);
				snprintf(rev + k, sizeof(rev) - k, "ip6.arpa");
			}
		}
		if (ask(x, rev, 12, &rr, &n, 1, r) == SPF_DNS_TEMP ||
		    *r != SPF_R_NONE)
			return -1;
		nn = n > 10 ? 10 : n;
		if (!(names = calloc(nn ? nn : 1, sizeof(*names))))
			return 0;
		for (size_t i = 0; i < nn; i++)
			names[i] = strdup(rr[i]);
		for (size_t i = 0; i < nn && !hit; i++) {
			size_t ln, lt = strlen(target);

			if (!names[i])
				continue;
			ln = strlen(names[i]);
			if (!(strcasecmp(names[i], target) == 0 || (ln > lt &&
			    names[i][ln - lt - 1] == '.' &&
			    strcasecmp(names[i] + ln - lt, target) == 0)))
				continue;
			if (ask(x, names[i], addr_type, &rr, &n, 0, r) ==
			    SPF_DNS_TEMP) {
				*r = SPF_R_NONE;        /* RFC 7208 5.5: skip it */
				continue;
			}
			for (size_t j = 0; j < n; j++)
				if (inet_pton(x->family, rr[j], rev) == 1 &&
				    memcmp(rev, x->ip, x->family == AF_INET ? 4 :
				    16) == 0)
					hit = 1;
		}
		for (size_t i = 0; i < nn; i++)
			free(names[i]);
		free(names);
		return hit;
	}
	case SPF_INCLUDE: {
		enum spf_result ir = check(x, target, domain, depth + 1);

		switch (ir) {
		case SPF_R_PASS:
			return 1;
		case SPF_R_FAIL: case SPF_R_SOFTFAIL: case SPF_R_NEUTRAL:
			return 0;
		case SPF_R_TEMPERROR:
			*r = ir;
			return -1;
		case SPF_R_NONE:
			snprintf(x->out->match, sizeof(x->out->match), "include:%s "
			    "has no SPF record", target);
			/* fall through */
		default:
			*r = SPF_R_PERMERROR;
			return -1;
		}
	}
	}
	return 0;
}

static enum spf_result
check(struct spf_ctx *x, const char *domain, const char *via, int depth)
{
	struct spf_record rec;
	char *const *rr;
	size_t n = 0, found = 0;
	const char *txt = NULL;
	enum spf_result r = SPF_R_NONE;
	char err[256];
	int has_all = 0;

	if (ask(x, domain, 16, &rr, &n, 0, &r) == SPF_DNS_TEMP)
		return r;
	for (size_t i = 0; i < n; i++)
		if (spf_is_record(rr[i])) {
			found++;
			txt = rr[i];
		}
	if (found == 0) {
		snprintf(x->out->match, sizeof(x->out->match), "%s has no SPF "
		    "record", domain);
		return SPF_R_NONE;
	}
	if (found > 1) {
		snprintf(x->out->match, sizeof(x->out->match), "%s has %zu SPF "
		    "records: there must be one (RFC 7208 4.5)", domain, found);
		return SPF_R_PERMERROR;
	}
	if (spf_parse(txt, &rec, err, sizeof(err)) < 0) {
		snprintf(x->out->match, sizeof(x->out->match), "%s%s%s: %s",
		    domain, via ? ", included by " : "", via ? via : "", err);
		return SPF_R_PERMERROR;
	}
	for (size_t i = 0; i < rec.n; i++) {
		const struct spf_term *t = &rec.terms[i];
		char target[256], ts[300];
		int m;

		if (t->mech == SPF_ALL) {
			has_all = 1;
			if (t->qual == '+')
				x->out->plus_all = 1;
		}
		if (t->mech == SPF_INCLUDE || t->mech == SPF_A ||
		    t->mech == SPF_MX || t->mech == SPF_PTR ||
		    t->mech == SPF_EXISTS) {
			if (++x->out->lookups > SPF_MAX_LOOKUPS) {
				snprintf(x->out->match, sizeof(x->out->match), "more "
				    "than %d DNS lookups (include, a, mx, ptr, exists, "
				    "redirect), the limit of RFC 7208 4.6.4; the 11th "
				    "is in the record of %s", SPF_MAX_LOOKUPS, domain);
				spf_record_free(&rec);
				return SPF_R_PERMERROR;
			}
		}
		if (t->domain && spf_expand(t->domain, x->ipstr, domain,
		    x->sender, x->helo, target, sizeof(target)) < 0) {
			snprintf(x->out->match, sizeof(x->out->match), "cannot "
			    "expand %s", t->domain);
			spf_record_free(&rec);
			return SPF_R_PERMERROR;
		}
		if (!t->domain)
			snprintf(target, sizeof(target), "%s", domain);
		r = SPF_R_NONE;
		m = term_match(x, t, domain, target, depth, &r);
		if (m < 0) {
			spf_record_free(&rec);
			return r;
		}
		/* with no address, "all" still decides: what a stranger gets */
		if (m > 0 && (x->ipstr || t->mech == SPF_ALL || t->mech ==
		    SPF_INCLUDE)) {
			spf_term_str(t, ts, sizeof(ts));
			if (t->mech == SPF_INCLUDE)
				;       /* keep what matched inside */
			else if (depth == 0)
				snprintf(x->out->match, sizeof(x->out->match), "%s",
				    ts);
			else
				snprintf(x->out->match, sizeof(x->out->match), "%s "
				    "(in the record of %s)", ts, domain);
			r = qual_result(t->qual);
			spf_record_free(&rec);
			return r;
		}
	}
	if (rec.redirect && !has_all) {
		char target[256];

		if (++x->out->lookups > SPF_MAX_LOOKUPS) {
			snprintf(x->out->match, sizeof(x->out->match), "more than %d "
			    "DNS lookups, the limit of RFC 7208 4.6.4 (the 11th is "
			    "redirect=%s)", SPF_MAX_LOOKUPS, rec.redirect);
			spf_record_free(&rec);
			return SPF_R_PERMERROR;
		}
		if (spf_expand(rec.redirect, x->ipstr, domain, x->sender,
		    x->helo, target, sizeof(target)) < 0) {
			spf_record_free(&rec);
			return SPF_R_PERMERROR;
		}
		spf_record_free(&rec);
		r = check(x, target, domain, depth + 1);
		if (r == SPF_R_NONE) {
			snprintf(x->out->match, sizeof(x->out->match), "redirect=%s "
			    "has no SPF record", target);
			return SPF_R_PERMERROR;
		}
		return r;
	}
	spf_record_free(&rec);
	snprintf(x->out->match, sizeof(x->out->match), "no term matched "
	    "(neutral by default)");
	return SPF_R_NEUTRAL;
}

enum spf_result
spf_check_host(const struct spf_dns_ops *ops, const char *ip,
    const char *domain, const char *sender, const char *helo,
    struct spf_check *out)
{
	struct spf_ctx x;

	memset(out, 0, sizeof(*out));
	memset(&x, 0, sizeof(x));
	x.ops = ops;
	x.sender = sender;
	x.helo = helo;
	x.out = out;
	if (ip) {
		if (inet_pton(AF_INET, ip, x.ip) == 1) {
			x.family = AF_INET;
		} else if (inet_pton(AF_INET6, ip, x.ip) == 1) {
			x.family = AF_INET6;
		} else {
			snprintf(out->match, sizeof(out->match), "%s is not an IP "
			    "address", ip);
			return out->result = SPF_R_PERMERROR;
		}
		x.ipstr = ip;
	}
	out->result = check(&x, domain, NULL, 0);
	return out->result;
}
