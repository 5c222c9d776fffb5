/*
 * dmarc - DMARC records, alignment, tag-lists. See dmarc.h.
 */
#include "dmarc.h"

#include "buf.h"

#include <ctype.h>
#include <libpsl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- tag-lists ------------------------------------------------------------------ */

void
dmarc_tags_free(struct dmarc_tags *t)
{
	for (size_t i = 0; i < t->n; i++)
		free(t->v[i].value);
	t->n = 0;
}

const char *
dmarc_tags_get(const struct dmarc_tags *t, const char *name)
{
	for (size_t i = 0; i < t->n; i++)
		if (strcasecmp(t->v[i].name, name) == 0)
			return t->v[i].value;
	return NULL;
}

static int
is_wsp(int c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

int
dmarc_tags_parse(const char *txt, struct dmarc_tags *t, char *err, size_t n)
{
	const char *p = txt;
	size_t len = strlen(txt);

	t->n = 0;
	if (len > DMARC_MAX_RECORD) {
		errf(err, n, "record of %zu characters (at most %d)", len,
		    DMARC_MAX_RECORD);
		return -1;
	}
	for (;;) {
		const char *ns, *ne, *vs, *ve;

		while (is_wsp((unsigned char)*p))
			p++;
		if (!*p)
			break;
		ns = p;
		if (!isalpha((unsigned char)*p))
			goto badname;
		while (isalnum((unsigned char)*p) || *p == '_')
			p++;
		ne = p;
		while (is_wsp((unsigned char)*p))
			p++;
		if (*p != '=') {
			errf(err, n, "\"%.*s\": a tag needs \"=value\"",
			    (int)(strcspn(ns, ";") > 40 ? 40 : strcspn(ns, ";")),
			    ns);
			goto fail;
		}
		p++;
		while (is_wsp((unsigned char)*p))
			p++;
		vs = p;
		while (*p && *p != ';') {
			unsigned char c = (unsigned char)*p;

			if (!is_wsp(c) && (c < 0x21 || c > 0x7e)) {
				errf(err, n, "%.*s=: a character that is not "
				    "printable ASCII (0x%02x)", (int)(ne - ns), ns, c);
				goto fail;
			}
			p++;
		}
		ve = p;
		while (ve > vs && is_wsp((unsigned char)ve[-1]))
			ve--;
		if ((size_t)(ne - ns) >= sizeof(t->v[0].name))
			goto badname;
		for (size_t i = 0; i < t->n; i++)
			if (strlen(t->v[i].name) == (size_t)(ne - ns) &&
			    strncasecmp(t->v[i].name, ns, (size_t)(ne - ns)) == 0) {
				errf(err, n, "the tag %.*s appears twice",
				    (int)(ne - ns), ns);
				goto fail;
			}
		if (t->n == DMARC_MAX_TAGS) {
			errf(err, n, "more than %d tags", DMARC_MAX_TAGS);
			goto fail;
		}
		memcpy(t->v[t->n].name, ns, (size_t)(ne - ns));
		t->v[t->n].name[ne - ns] = '\0';
		if (!(t->v[t->n].value = strndup(vs, (size_t)(ve - vs)))) {
			errf(err, n, "out of memory");
			goto fail;
		}
		t->n++;
		if (*p == ';')
			p++;
	}
	return 0;
badname:
	errf(err, n, "\"%.*s\": a tag name is a letter followed by "
	    "letters, digits or _", (int)(strcspn(p, "=;") > 40 ? 40 :
	    strcspn(p, "=;")), p);
fail:
	dmarc_tags_free(t);
	return -1;
}

/* ---- DMARC records --------------------------------------------------------------- */

const char *
dmarc_policy_name(enum dmarc_policy p)
{
	return p == DMARC_P_REJECT ? "reject" : p == DMARC_P_QUARANTINE ?
	    "quarantine" : "none";
}

int
dmarc_is_record(const char *txt)
{
	while (is_wsp((unsigned char)*txt))
		txt++;
	if (strncmp(txt, "v", 1) != 0)
		return 0;
	txt++;
	while (is_wsp((unsigned char)*txt))
		txt++;
	if (*txt++ != '=')
		return 0;
	while (is_wsp((unsigned char)*txt))
		txt++;
	if (strncmp(txt, "DMARC1", 6) != 0)
		return 0;
	txt += 6;
	while (is_wsp((unsigned char)*txt))
		txt++;
	return *txt == ';' || *txt == '\0';
}

static int
policy(const char *v, enum dmarc_policy *p)
{
	if (strcasecmp(v, "none") == 0)
		*p = DMARC_P_NONE;
	else if (strcasecmp(v, "quarantine") == 0)
		*p = DMARC_P_QUARANTINE;
	else if (strcasecmp(v, "reject") == 0)
		*p = DMARC_P_REJECT;
	else
		return -1;
	return 0;
}

/* rua/ruf: comma-separated URIs, each "scheme:rest" with an optional
 * "!size[kmgt]". */
static int
uris(const char *tag, const char *v, int *count, int *non_mailto, char *err,
    size_t n)
{
	const char *p = v;

	*count = *non_mailto = 0;
	while (*p) {
		const char *e = strchr(p, ','), *c;
		size_t len;

		if (!e)
			e = p + strlen(p);
		while (p < e && is_wsp((unsigned char)*p))
			p++;
		len = (size_t)(e - p);
		while (len && is_wsp((unsigned char)p[len - 1]))
			len--;
		c = memchr(p, ':', len);
		if (!len || !c || c == p || c + 1 == p + len) {
			errf(err, n, "%s=: \"%.*s\" is not a URI (write "
			    "mailto:dmarc@example.com)", tag, (int)(len > 60 ? 60 :
			    len), p);
			return -1;
		}
		for (const char *s = p; s < c; s++)
			if (!isalnum((unsigned char)*s) && !strchr("+-.", *s)) {
				errf(err, n, "%s=: \"%.*s\" is not a URI", tag,
				    (int)(len > 60 ? 60 : len), p);
				return -1;
			}
		(*count)++;
		if ((size_t)(c - p) != 6 || strncasecmp(p, "mailto", 6) != 0)
			(*non_mailto)++;
		p = *e ? e + 1 : e;
	}
	if (*count == 0) {
		errf(err, n, "%s= is empty", tag);
		return -1;
	}
	return 0;
}

int
dmarc_parse(const char *txt, struct dmarc_record *r, char *err, size_t n)
{
	struct dmarc_tags t;
	const char *v;
	char *e;
	int rc = -1, dummy;

	memset(r, 0, sizeof(*r));
	r->pct = 100;
	r->adkim = r->aspf = 'r';
	r->ri = 86400;
	if (dmarc_tags_parse(txt, &t, err, n) < 0)
		return -1;
	if (t.n == 0 || strcmp(t.v[0].name, "v") != 0 ||
	    strcmp(t.v[0].value, "DMARC1") != 0) {
		errf(err, n, "the first tag must be v=DMARC1");
		goto out;
	}
	if (!(v = dmarc_tags_get(&t, "p"))) {
		errf(err, n, "no p= tag (the policy: none, quarantine or "
		    "reject)");
		goto out;
	}
	if (policy(v, &r->p) < 0) {
		errf(err, n, "p=%.40s: the policy is none, quarantine or "
		    "reject", v);
		goto out;
	}
	r->sp = r->p;
	if ((v = dmarc_tags_get(&t, "sp"))) {
		if (policy(v, &r->sp) < 0) {
			errf(err, n, "sp=%.40s: the policy is none, quarantine "
			    "or reject", v);
			goto out;
		}
		r->sp_given = 1;
	}
	if ((v = dmarc_tags_get(&t, "pct"))) {
		long x = strtol(v, &e, 10);

		if (!isdigit((unsigned char)*v) || *e || x < 0 || x > 100) {
			errf(err, n, "pct=%.40s: a percentage from 0 to 100", v);
			goto out;
		}
		r->pct = (int)x;
	}
	if ((v = dmarc_tags_get(&t, "adkim"))) {
		if (strcasecmp(v, "r") && strcasecmp(v, "s")) {
			errf(err, n, "adkim=%.40s: r (relaxed) or s (strict)", v);
			goto out;
		}
		r->adkim = (char)tolower((unsigned char)v[0]);
	}
	if ((v = dmarc_tags_get(&t, "aspf"))) {
		if (strcasecmp(v, "r") && strcasecmp(v, "s")) {
			errf(err, n, "aspf=%.40s: r (relaxed) or s (strict)", v);
			goto out;
		}
		r->aspf = (char)tolower((unsigned char)v[0]);
	}
	if ((v = dmarc_tags_get(&t, "rua"))) {
		if (uris("rua", v, &r->rua_count, &r->rua_non_mailto, err, n) < 0)
			goto out;
		snprintf(r->rua, sizeof(r->rua), "%s", v);
	}
	if ((v = dmarc_tags_get(&t, "ruf"))) {
		int non;

		if (uris("ruf", v, &dummy, &non, err, n) < 0)
			goto out;
		snprintf(r->ruf, sizeof(r->ruf), "%s", v);
	}
	if ((v = dmarc_tags_get(&t, "ri"))) {
		long x = strtol(v, &e, 10);

		if (!isdigit((unsigned char)*v) || *e || x < 0) {
			errf(err, n, "ri=%.40s: seconds between reports", v);
			goto out;
		}
		r->ri = x;
	}
	if ((v = dmarc_tags_get(&t, "fo"))) {
		for (const char *s = v; *s; s++)
			if (!strchr("01ds:", *s) || (*s == ':' && (s == v ||
			    !s[1] || s[1] == ':'))) {
				errf(err, n, "fo=%.40s: 0, 1, d or s, separated "
				    "by colons", v);
				goto out;
			}
	}
	rc = 0;
out:
	dmarc_tags_free(&t);
	return rc;
}

/* ---- alignment ------------------------------------------------------------------- */

static pthread_once_t psl_once = PTHREAD_ONCE_INIT;
static psl_ctx_t *psl;

static void
psl_init(void)
{
	psl = psl_latest(NULL);
	if (!psl)
		psl = (psl_ctx_t *)psl_builtin();
}

/* domain lowercase, without a final dot, into out. */
static int
lower(const char *domain, char *out, size_t n)
{
	size_t len = strlen(domain);

	if (len && domain[len - 1] == '.')
		len--;
	if (len + 1 > n)
		return -1;
	for (size_t i = 0; i < len; i++)
		out[i] = (char)tolower((unsigned char)domain[i]);
	out[len] = '\0';
	return 0;
}

int
dmarc_org_domain(const char *domain, char *out, size_t n)
{
	char d[256];
	const char *reg = NULL;

	if (lower(domain, d, sizeof(d)) < 0)
		return -1;
	pthread_once(&psl_once, psl_init);
	if (psl)
		reg = psl_registrable_domain(psl, d);
	if ((size_t)snprintf(out, n, "%s", reg ? reg : d) >= n)
		return -1;
	return 0;
}

int
dmarc_aligned(const char *from, const char *auth, char mode)
{
	char a[256], b[256];

	if (mode == 's')
		return lower(from, a, sizeof(a)) == 0 &&
		    lower(auth, b, sizeof(b)) == 0 && strcmp(a, b) == 0;
	return dmarc_org_domain(from, a, sizeof(a)) == 0 &&
	    dmarc_org_domain(auth, b, sizeof(b)) == 0 && strcmp(a, b) == 0;
}
