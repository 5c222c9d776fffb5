/*
 * smsgw - sms.conf and the pure side of SMS gateways. See smsgw.h.
 */
#include "smsgw.h"
#include "tmpl.h"
#include "token.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <openssl/evp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define NONE ((size_t)-1)

static const char *const type_names[] = { "kannel", "http", "email2sms",
	NULL };
static const char *const formats[] = { "form", "json", NULL };
static const char *const methods[] = { "POST", "GET", NULL };

#define G(f) offsetof(struct smsgw, f)
static const struct conf_key gw_keys[] = {
	{ "type", CONF_STR, G(type_src), "", 0, 0, NULL, 0 },
	{ "sender", CONF_STR, G(sender), "", 0, 0, NULL, 0 },
	{ "rate", CONF_INT, G(rate), "0", 0, 100000, NULL, 0 },
	{ "price", CONF_STR, G(price_src), "0", 0, 0, NULL, 0 },
	{ "timeout", CONF_DURATION, G(timeout_ms), "10s", 100, 300000, NULL, 0 },
	{ "retries", CONF_INT, G(retries), "3", 0, 100, NULL, 0 },
	{ "retry_base", CONF_DURATION, G(retry_base_ms), "5s", 100, 3600000,
	  NULL, 0 },
	{ "connections", CONF_INT, G(connections), "4", 1, 64, NULL, 0 },
	{ "ca_file", CONF_PATH, G(ca_file), "", 0, 0, NULL, 0 },
	{ "failover", CONF_STR, G(failover), "", 0, 0, NULL, 0 },
	{ "secret", CONF_STR, G(secret), "", 0, 0, NULL, 0 },
	{ "secret_file", CONF_PATH, G(secret_file), "", 0, 0, NULL, 0 },
	{ "allow_from", CONF_STRLIST, G(allow_from_src), "", 0, 0, NULL, 0 },
	{ "teams", CONF_STRLIST, G(teams), "", 0, 0, NULL, 0 },
	{ "reps", CONF_STRLIST, G(reps), "", 0, 0, NULL, 0 },
	{ "url", CONF_STR, G(url), "", 0, 0, NULL, 0 },
	{ "username", CONF_STR, G(username), "", 0, 0, NULL, 0 },
	{ "password", CONF_STR, G(password), "", 0, 0, NULL, 0 },
	{ "password_file", CONF_PATH, G(password_file), "", 0, 0, NULL, 0 },
	{ "dlr_mask", CONF_INT, G(dlr_mask), "19", 0, 31, NULL, 0 },
	{ "smsc", CONF_STR, G(smsc), "", 0, 0, NULL, 0 },
	{ "method", CONF_ENUM, G(method), "POST", 0, 0, methods, 0 },
	{ "body", CONF_STR, G(body), "", 0, 0, NULL, 0 },
	{ "body_format", CONF_ENUM, G(body_format_src), "form", 0, 0, formats,
	  0 },
	{ "headers", CONF_STRLIST, G(headers), "", 0, 0, NULL, 0 },
	{ "success", CONF_STR, G(success), "", 0, 0, NULL, 0 },
	{ "message_id", CONF_STR, G(message_id), "", 0, 0, NULL, 0 },
	{ "in_from", CONF_STR, G(in_from), "from", 0, 0, NULL, 0 },
	{ "in_to", CONF_STR, G(in_to), "to", 0, 0, NULL, 0 },
	{ "in_text", CONF_STR, G(in_text), "text", 0, 0, NULL, 0 },
	{ "dlr_id", CONF_STR, G(dlr_id), "id", 0, 0, NULL, 0 },
	{ "dlr_msgid", CONF_STR, G(dlr_msgid), "msgid", 0, 0, NULL, 0 },
	{ "dlr_status", CONF_STR, G(dlr_status), "status", 0, 0, NULL, 0 },
	{ "dlr_delivered", CONF_STRLIST, G(dlr_delivered), "", 0, 0, NULL, 0 },
	{ "dlr_failed", CONF_STRLIST, G(dlr_failed), "", 0, 0, NULL, 0 },
	{ "address", CONF_STR, G(address), "", 0, 0, NULL, 0 },
	{ NULL, 0, 0, NULL, 0, 0, NULL, 0 }
};
#undef G

#define S(f) offsetof(struct smsgw_conf, f)
static const struct conf_key root_keys[] = {
	{ "default", CONF_STR, S(default_name), "", 0, 0, NULL, 0 },
	{ "offer_segments", CONF_INT, S(offer_segments), "2", 1, 10, NULL, 0 },
	{ "lease", CONF_DURATION, S(lease_ms), "60s", 5000, 3600000, NULL, 0 },
	{ "reminder", CONF_DURATION, S(reminder_ms), "1m", 0, 86400000, NULL,
	  0 },
	{ NULL, 0, 0, NULL, 0, 0, NULL, 0 }
};
#undef S

const char *
smsgw_type_name(enum smsgw_type t)
{
	return type_names[t];
}

/* ---- loading ------------------------------------------------------------ */

#define at_key cfgfile_key_pos
#define at_item cfgfile_item_pos

/* A secret from the first line of a file; NULL with err if it cannot be
 * read or is empty. Caller frees. */
static char *
read_secret(const char *path, char *err, size_t n)
{
	char *s = conf_read_secret(path, err, n);

	if (s && !*s) {
		snprintf(err, n, "%s is empty", path);
		free(s);
		return NULL;
	}
	return s;
}

static int
parse_net(const char *s, struct smsgw_net *out)
{
	char host[64], *slash, *end;
	long bits;

	if (strlen(s) >= sizeof(host))
		return -1;
	strcpy(host, s);
	slash = strchr(host, '/');
	if (slash)
		*slash = '\0';
	memset(out, 0, sizeof(*out));
	if (inet_pton(AF_INET, host, out->addr) == 1) {
		out->family = AF_INET;
		out->bits = 32;
	} else if (inet_pton(AF_INET6, host, out->addr) == 1) {
		out->family = AF_INET6;
		out->bits = 128;
	} else {
		return -1;
	}
	if (slash) {
		errno = 0;
		bits = strtol(slash + 1, &end, 10);
		if (errno || end == slash + 1 || *end || bits < 0 ||
		    bits > out->bits)
			return -1;
		out->bits = (int)bits;
	}
	return 0;
}

static int
compile_tmpl(const char *src, struct tmpl **t, struct cfgfile_node *sec,
    const char *key, size_t item, struct cfgfile_errors *errs,
    const char *gw)
{
	struct tmpl_error te;

	if (tmpl_compile(key, src, strlen(src), t, &te) == 0)
		return 0;
	{
		struct cfgfile_pos p = at_item(sec, key, item);

		cfgfile_error(errs, &p, "gateway %s: %s: %s", gw, key, te.msg);
	}
	*t = NULL;
	return -1;
}

static int
compile_re(const char *src, regex_t *re, struct cfgfile_node *sec,
    const char *key, struct cfgfile_errors *errs, const char *gw)
{
	int r = regcomp(re, src, REG_EXTENDED);

	if (r != 0) {
		char msg[200];
		struct cfgfile_pos p = at_key(sec, key);

		regerror(r, re, msg, sizeof(msg));
		cfgfile_error(errs, &p, "gateway %s: %s: not a regular "
		    "expression: %s", gw, key, msg);
		return -1;
	}
	return 0;
}

static int
sender_valid(const char *s)
{
	size_t n = strlen(s), digits = 0, alnum = 0, numeric = 0;

	if (s[0] == '+') {
		for (size_t i = 1; i < n; i++) {
			if (!isdigit((unsigned char)s[i]))
				return 0;
			digits++;
		}
		return digits >= 3 && digits <= 15;
	}
	for (size_t i = 0; i < n; i++) {
		numeric += isdigit((unsigned char)s[i]) != 0;
		if (isalnum((unsigned char)s[i]))
			alnum++;
		else if (s[i] != ' ' && s[i] != '-' && s[i] != '.' &&
		    s[i] != '_')
			return 0;
	}
	/* alphanumeric ids are at most 11 characters; numbers up to 15 */
	return alnum > 0 && (n <= 11 || (numeric == n && n <= 15));
}

static int
url_ok(const char *u)
{
	return strncmp(u, "http://", 7) == 0 || strncmp(u, "https://", 8) == 0;
}

static void
load_gateway(struct smsgw_conf *c, struct cfgfile_node *n,
    const char *basedir, struct cfgfile_errors *errs)
{
	struct smsgw *g, *v;
	struct cfgfile_pos p;
	char err[512];
	const char *name = n->title;
	size_t before = errs->n;

	if (!(v = realloc(c->v, (c->n + 1) * sizeof(*v))))
		return;
	c->v = v;
	g = &c->v[c->n++];
	memset(g, 0, sizeof(*g));
	g->name = strdup(name);
	g->failover_i = NONE;
	conf_bind(gw_keys, n, g, basedir, errs);
	conf_check_unknown(n, errs);
	if (!*g->type_src) {
		cfgfile_error(errs, &n->pos, "gateway %s: type is required: "
		    "kannel, http or email2sms", name);
		return;
	}
	if (strcmp(g->type_src, "kannel") && strcmp(g->type_src, "http") &&
	    strcmp(g->type_src, "email2sms")) {
		p = at_key(n, "type");
		cfgfile_error(errs, &p, "gateway %s: type: '%s' is not one of: "
		    "kannel, http, email2sms", name, g->type_src);
		return;
	}
	g->type = !strcmp(g->type_src, "kannel") ? SMSGW_KANNEL :
	    !strcmp(g->type_src, "http") ? SMSGW_HTTP : SMSGW_EMAIL2SMS;
	g->body_format = !strcmp(g->body_format_src, "json") ? SMSGW_JSON :
	    SMSGW_FORM;
	if (*g->sender && !sender_valid(g->sender)) {
		p = at_key(n, "sender");
		cfgfile_error(errs, &p, "gateway %s: sender: '%s' is neither a "
		    "number (+15555550123) nor up to 11 letters and digits",
		    name, g->sender);
	}
	{
		/* a decimal price per part: "0.0079" */
		const char *pr = g->price_src;
		char *end;
		size_t digits = strspn(pr, "0123456789");

		g->price = strtod(pr, &end);
		if (!digits || (pr[digits] && (pr[digits] != '.' ||
		    !pr[digits + 1] || strspn(pr + digits + 1, "0123456789") !=
		    strlen(pr + digits + 1) || strlen(pr + digits + 1) > 6)) ||
		    *end || g->price > 100.0) {
			p = at_key(n, "price");
			cfgfile_error(errs, &p, "gateway %s: price: '%s' is not "
			    "a price per part such as 0.0079 (at most 6 "
			    "decimals, below 100)", name, pr);
			g->price = 0;
		}
	}
	if (*g->secret && *g->secret_file) {
		p = at_key(n, "secret_file");
		cfgfile_error(errs, &p, "gateway %s: set secret or secret_file, "
		    "not both", name);
	} else if (*g->secret_file) {
		free(g->secret);
		if (!(g->secret = read_secret(g->secret_file, err,
		    sizeof(err)))) {
			g->secret = strdup("");
			p = at_key(n, "secret_file");
			cfgfile_error(errs, &p, "gateway %s: secret_file: %s",
			    name, err);
		}
	}
	if (*g->secret && strlen(g->secret) < 16) {
		p = at_key(n, *g->secret_file ? "secret_file" : "secret");
		cfgfile_error(errs, &p, "gateway %s: secret: use at least 16 "
		    "characters (e.g. openssl rand -hex 16)", name);
	}
	if (*g->password && *g->password_file) {
		p = at_key(n, "password_file");
		cfgfile_error(errs, &p, "gateway %s: set password or "
		    "password_file, not both", name);
	} else if (*g->password_file) {
		free(g->password);
		if (!(g->password = read_secret(g->password_file, err,
		    sizeof(err)))) {
			g->password = strdup("");
			p = at_key(n, "password_file");
			cfgfile_error(errs, &p, "gateway %s: password_file: %s",
			    name, err);
		}
	}
	if (*g->ca_file && access(g->ca_file, R_OK) != 0) {
		p = at_key(n, "ca_file");
		cfgfile_error(errs, &p, "gateway %s: ca_file: cannot read %s: %s",
		    name, g->ca_file, strerror(errno));
	}
	if (g->allow_from_src.n &&
	    !(g->allow = calloc(g->allow_from_src.n, sizeof(*g->allow))))
		return;
	for (size_t i = 0; i < g->allow_from_src.n; i++) {
		if (parse_net(g->allow_from_src.v[i], &g->allow[g->nallow]) == 0) {
			g->nallow++;
			continue;
		}
		p = at_item(n, "allow_from", i);
		cfgfile_error(errs, &p, "gateway %s: allow_from: '%s' is not an "
		    "address or network (127.0.0.1, 10.0.0.0/8, ::1)", name,
		    g->allow_from_src.v[i]);
	}
	if (g->type != SMSGW_EMAIL2SMS && !*g->secret && !g->allow_from_src.n)
		cfgfile_error(errs, &n->pos, "gateway %s: set secret (or "
		    "secret_file) or allow_from: the delivery report and inbound "
		    "endpoints (/sms/dlr/%s, /sms/in/%s) refuse everybody "
		    "without one", name, name, name);
	switch (g->type) {
	case SMSGW_KANNEL:
		if (!url_ok(g->url)) {
			p = at_key(n, "url");
			cfgfile_error(errs, &p, "gateway %s: url: smsbox's sendsms "
			    "URL is required, like http://127.0.0.1:13013/cgi-bin/"
			    "sendsms", name);
		} else if (strchr(g->url, '?')) {
			p = at_key(n, "url");
			cfgfile_error(errs, &p, "gateway %s: url: without a query: "
			    "leadcast adds the parameters", name);
		}
		if (!*g->username) {
			p = at_key(n, "username");
			cfgfile_error(errs, &p, "gateway %s: username (of smsbox's "
			    "sendsms-user) is required", name);
		}
		break;
	case SMSGW_HTTP:
		if (!*g->url) {
			p = at_key(n, "url");
			cfgfile_error(errs, &p, "gateway %s: url is required", name);
		} else if (!url_ok(g->url)) {
			p = at_key(n, "url");
			cfgfile_error(errs, &p, "gateway %s: url must start with "
			    "http:// or https://", name);
		} else {
			compile_tmpl(g->url, &g->url_t, n, "url", 0, errs, name);
		}
		if (*g->body && !strcmp(g->method, "GET")) {
			p = at_key(n, "body");
			cfgfile_error(errs, &p, "gateway %s: a GET has no body: "
			    "put the parameters in url", name);
		} else if (*g->body) {
			compile_tmpl(g->body, &g->body_t, n, "body", 0, errs, name);
		}
		if (g->headers.n && !(g->header_t = calloc(g->headers.n,
		    sizeof(*g->header_t))))
			return;
		for (size_t i = 0; i < g->headers.n; i++) {
			const char *h = g->headers.v[i], *colon = strchr(h, ':');

			if (!colon || colon == h || strcspn(h, " \t") <
			    (size_t)(colon - h)) {
				p = at_item(n, "headers", i);
				cfgfile_error(errs, &p, "gateway %s: headers: '%s' "
				    "is not \"Name: value\"", name, h);
				continue;
			}
			compile_tmpl(h, &g->header_t[i], n, "headers", i, errs,
			    name);
		}
		if (*g->success && compile_re(g->success, &g->success_re, n,
		    "success", errs, name) == 0)
			g->has_success = 1;
		if (*g->message_id && compile_re(g->message_id,
		    &g->message_id_re, n, "message_id", errs, name) == 0) {
			g->has_message_id = 1;
			if (g->message_id_re.re_nsub < 1) {
				p = at_key(n, "message_id");
				cfgfile_error(errs, &p, "gateway %s: message_id: "
				    "the id is the first group: write it in "
				    "( )", name);
			}
		}
		break;
	case SMSGW_EMAIL2SMS:
		if (!*g->address || !strchr(g->address, '@')) {
			p = at_key(n, "address");
			cfgfile_error(errs, &p, "gateway %s: address is required: "
			    "a template like \"{{national}}@txt.example.com\"",
			    name);
		} else {
			compile_tmpl(g->address, &g->address_t, n, "address", 0,
			    errs, name);
		}
		c->has_email2sms = 1;
		break;
	}
	(void)before;
}

static void
gw_free(struct smsgw *g)
{
	/* the header templates first: conf_unbind empties headers */
	for (size_t i = 0; g->header_t && i < g->headers.n; i++)
		tmpl_free(g->header_t[i]);
	free(g->header_t);
	conf_unbind(gw_keys, g);
	free(g->name);
	tmpl_free(g->url_t);
	tmpl_free(g->body_t);
	tmpl_free(g->address_t);
	if (g->has_success)
		regfree(&g->success_re);
	if (g->has_message_id)
		regfree(&g->message_id_re);
	free(g->allow);
}

void
smsgw_conf_free(struct smsgw_conf *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n; i++) {
		/* conf_unbind frees secrets: wipe them first */
		if (c->v[i].password)
			explicit_bzero(c->v[i].password, strlen(c->v[i].password));
		if (c->v[i].secret)
			explicit_bzero(c->v[i].secret, strlen(c->v[i].secret));
		gw_free(&c->v[i]);
	}
	free(c->v);
	conf_unbind(root_keys, c);
	free(c->path);
	free(c);
}

static struct smsgw_conf *
load_tree(const char *path, struct cfgfile_tree *tree, int parsed,
    struct cfgfile_errors *errs)
{
	struct smsgw_conf *c = calloc(1, sizeof(*c));
	size_t before = errs->n;
	char *basedir, *slash;
	struct cfgfile_pos p;

	if (!c)
		return NULL;
	c->path = strdup(path);
	basedir = strdup(path);
	if (basedir && (slash = strrchr(basedir, '/')) != NULL)
		*slash = '\0';
	else if (basedir)
		strcpy(basedir, ".");
	(void)parsed;
	conf_bind(root_keys, tree->root, c, basedir, errs);
	for (struct cfgfile_node *n = tree->root->child; n; n = n->next) {
		if (strcmp(n->key, "gateway") != 0)
			continue;
		n->used = 1;
		if (n->kind != CFGFILE_SECTION || !n->title || !*n->title) {
			cfgfile_error(errs, &n->pos, "write gateway \"NAME\" { "
			    "type = ... }");
			continue;
		}
		if (strlen(n->title) > 64 || strspn(n->title,
		    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
		    "0123456789-_") != strlen(n->title)) {
			cfgfile_error(errs, &n->pos, "gateway names use letters, "
			    "digits, - and _ (at most 64): they appear in URLs");
			continue;
		}
		if (smsgw_find(c, n->title)) {
			cfgfile_error(errs, &n->pos, "gateway %s is declared twice",
			    n->title);
			continue;
		}
		load_gateway(c, n, basedir, errs);
	}
	conf_check_unknown(tree->root, errs);
	free(basedir);
	if (c->n == 0) {
		p = (struct cfgfile_pos){ c->path, 0, 0 };
		cfgfile_error(errs, &p, "no gateway: add gateway \"NAME\" { type "
		    "= kannel|http|email2sms ... }");
	}
	/* the default: named, or the only one */
	c->def = NONE;
	if (*c->default_name) {
		const struct smsgw *g = smsgw_find(c, c->default_name);

		if (g) {
			c->def = (size_t)(g - c->v);
		} else {
			p = at_key(tree->root, "default");
			cfgfile_error(errs, &p, "default: no gateway '%s'",
			    c->default_name);
		}
	} else if (c->n == 1) {
		c->def = 0;
	} else if (c->n > 1) {
		p = (struct cfgfile_pos){ c->path, 0, 0 };
		cfgfile_error(errs, &p, "several gateways: say which is the "
		    "default (default = \"NAME\")");
	}
	for (size_t i = 0; i < c->n; i++) {
		struct smsgw *g = &c->v[i];
		const struct smsgw *f;
		size_t k, seen;

		if (!g->failover || !*g->failover)
			continue;
		p = (struct cfgfile_pos){ c->path, 0, 0 };
		for (struct cfgfile_node *n = tree->root->child; n; n = n->next)
			if (n->title && !strcmp(n->key, "gateway") &&
			    !strcmp(n->title, g->name))
				p = at_key(n, "failover");
		if (!(f = smsgw_find(c, g->failover))) {
			cfgfile_error(errs, &p, "gateway %s: failover: no gateway "
			    "'%s'", g->name, g->failover);
			continue;
		}
		g->failover_i = (size_t)(f - c->v);
		/* a chain must end */
		for (k = g->failover_i, seen = 0; k != NONE && seen <= c->n;
		    k = c->v[k].failover_i, seen++)
			if (k == i)
				break;
		if (k == i) {
			cfgfile_error(errs, &p, "gateway %s: failover: the chain "
			    "comes back to %s", g->name, g->name);
			g->failover_i = NONE;
		}
	}
	if (errs->n > before) {
		smsgw_conf_free(c);
		return NULL;
	}
	return c;
}

struct smsgw_conf *
smsgw_load(const char *path, struct cfgfile_errors *errs)
{
	struct cfgfile_tree tree;
	struct smsgw_conf *c;
	size_t before = errs->n;
	int r = cfgfile_parse(path, &tree, errs);

	c = r == 0 && errs->n == before ? load_tree(path, &tree, 1, errs) : NULL;
	cfgfile_tree_free(&tree);
	return c;
}

struct smsgw_conf *
smsgw_load_string(const char *name, const char *text, size_t len,
    struct cfgfile_errors *errs)
{
	struct cfgfile_tree tree;
	struct smsgw_conf *c;
	size_t before = errs->n;
	int r = cfgfile_parse_string(name, text, len, &tree, errs);

	c = r == 0 && errs->n == before ? load_tree(name, &tree, 1, errs) : NULL;
	cfgfile_tree_free(&tree);
	return c;
}

const struct smsgw *
smsgw_find(const struct smsgw_conf *c, const char *name)
{
	for (size_t i = 0; c && i < c->n; i++)
		if (strcmp(c->v[i].name, name) == 0)
			return &c->v[i];
	return NULL;
}

static int
listed(const struct conf_strlist *l, const char *s)
{
	for (size_t i = 0; s && i < l->n; i++)
		if (strcmp(l->v[i], s) == 0)
			return 1;
	return 0;
}

const struct smsgw *
smsgw_for(const struct smsgw_conf *c, const char *rep, const char *team)
{
	for (size_t i = 0; i < c->n; i++)
		if (listed(&c->v[i].reps, rep))
			return &c->v[i];
	for (size_t i = 0; i < c->n; i++)
		if (listed(&c->v[i].teams, team))
			return &c->v[i];
	return &c->v[c->def == NONE ? 0 : c->def];
}

/* ---- requests ------------------------------------------------------------ */

int
smsgw_urlencode(struct buf *out, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";

	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (isalnum(ch) || ch == '-' || ch == '.' || ch == '_' ||
		    ch == '~') {
			if (buf_putc(out, (char)ch) < 0)
				return -1;
		} else if (buf_putc(out, '%') < 0 ||
		    buf_putc(out, hex[ch >> 4]) < 0 ||
		    buf_putc(out, hex[ch & 15]) < 0) {
			return -1;
		}
	}
	return 0;
}

/* s as the inside of a JSON string. */
static int
json_escape(struct buf *out, const char *s)
{
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\') {
			buf_putc(out, '\\');
			buf_putc(out, (char)ch);
		} else if (ch == '\n') {
			buf_puts(out, "\\n");
		} else if (ch == '\r') {
			buf_puts(out, "\\r");
		} else if (ch == '\t') {
			buf_puts(out, "\\t");
		} else if (ch < 0x20) {
			buf_printf(out, "\\u%04x", ch);
		} else {
			buf_putc(out, (char)ch);
		}
	}
	return out->overflow ? -1 : 0;
}

enum ctx { CTX_URL, CTX_FORM, CTX_JSON, CTX_RAW };

static char *
encoded(const char *v, enum ctx ctx)
{
	struct buf b;

	buf_init(&b, 0);
	switch (ctx) {
	case CTX_URL:
	case CTX_FORM:
		smsgw_urlencode(&b, v);
		break;
	case CTX_JSON:
		json_escape(&b, v);
		break;
	case CTX_RAW:
		buf_puts(&b, v);
		break;
	}
	if (b.overflow) {
		buf_free(&b);
		return NULL;
	}
	return buf_steal(&b);
}

/* The template data for m through g, every value encoded for ctx. */
static json_t *
msg_data(const struct smsgw *g, const struct smsgw_msg *m, enum ctx ctx)
{
	char id[32], seg[16], national[20] = "", *auth = NULL;
	const char *names[14], *vals[14];
	size_t n = 0;
	json_t *d = json_object();
	unsigned char raw[600];
	char b64[820];
	int len;

	snprintf(id, sizeof(id), "%lld", m->id);
	snprintf(seg, sizeof(seg), "%d", m->segments);
	snprintf(national, sizeof(national), "%s", m->to[0] == '+' ? m->to + 1 :
	    m->to);
	if (national[0] == '1' && strlen(national) == 11)
		memmove(national, national + 1, 11);    /* NANP: 10 digits */
	len = snprintf((char *)raw, sizeof(raw), "%s:%s", g->username ?
	    g->username : "", g->password ? g->password : "");
	if (len > 0 && (size_t)len < sizeof(raw)) {
		EVP_EncodeBlock((unsigned char *)b64, raw, len);
		auth = b64;
	}
#define V(k, v) do { names[n] = (k); vals[n] = (v); n++; } while (0)
	V("to", m->to);
	V("to_digits", m->to[0] == '+' ? m->to + 1 : m->to);
	V("national", national);
	V("from", g->sender ? g->sender : "");
	V("text", m->text);
	V("id", id);
	V("dlr_url", m->dlr_url ? m->dlr_url : "");
	V("encoding", m->ucs2 ? "ucs2" : "gsm7");
	V("coding", m->ucs2 ? "2" : "0");
	V("segments", seg);
	V("username", g->username ? g->username : "");
	V("password", g->password ? g->password : "");
	V("basic_auth", auth ? auth : "");
#undef V
	for (size_t i = 0; i < n; i++) {
		char *e = encoded(vals[i], ctx);

		json_object_set_new(d, names[i], json_string(e ? e : ""));
		free(e);
	}
	explicit_bzero(raw, sizeof(raw));
	explicit_bzero(b64, sizeof(b64));
	return d;
}

static int
render(const struct tmpl *t, json_t *data, struct buf *out, char *err,
    size_t errn, const char *what)
{
	if (tmpl_render(t, data, NULL, TMPL_ESCAPE_NONE, out) < 0) {
		snprintf(err, errn, "cannot render the %s", what);
		return -1;
	}
	return 0;
}

void
smsgw_req_init(struct smsgw_req *r)
{
	memset(r, 0, sizeof(*r));
	buf_init(&r->url, 16384);
	buf_init(&r->headers, 16384);
	buf_init(&r->body, 65536);
}

void
smsgw_req_free(struct smsgw_req *r)
{
	buf_free(&r->url);
	buf_free(&r->headers);
	buf_free(&r->body);
}

static void
param(struct buf *b, const char *k, const char *v)
{
	buf_putc(b, strchr(buf_str(b), '?') ? '&' : '?');
	buf_puts(b, k);
	buf_putc(b, '=');
	smsgw_urlencode(b, v);
}

int
smsgw_request(const struct smsgw *g, const struct smsgw_msg *m,
    struct smsgw_req *out, char *err, size_t errn)
{
	json_t *d;

	if (g->type == SMSGW_KANNEL) {
		char num[32];

		out->post = 0;
		buf_puts(&out->url, g->url);
		param(&out->url, "username", g->username);
		param(&out->url, "password", g->password ? g->password : "");
		if (*g->sender)
			param(&out->url, "from", g->sender);
		param(&out->url, "to", m->to);
		param(&out->url, "text", m->text);
		param(&out->url, "charset", "UTF-8");
		param(&out->url, "coding", m->ucs2 ? "2" : "0");
		if (*g->smsc)
			param(&out->url, "smsc", g->smsc);
		if (m->dlr_url && *m->dlr_url && g->dlr_mask) {
			snprintf(num, sizeof(num), "%ld", g->dlr_mask);
			param(&out->url, "dlr-mask", num);
			param(&out->url, "dlr-url", m->dlr_url);
		}
		if (out->url.overflow) {
			snprintf(err, errn, "the request is too long");
			return -1;
		}
		return 0;
	}
	if (g->type != SMSGW_HTTP) {
		snprintf(err, errn, "gateway %s does not speak HTTP", g->name);
		return -1;
	}
	out->post = strcmp(g->method, "POST") == 0;
	d = msg_data(g, m, CTX_URL);
	if (render(g->url_t, d, &out->url, err, errn, "url") < 0)
		goto fail;
	json_decref(d);
	d = msg_data(g, m, CTX_RAW);
	for (size_t i = 0; i < g->headers.n; i++) {
		size_t at = out->headers.len;

		if (render(g->header_t[i], d, &out->headers, err, errn,
		    "headers") < 0)
			goto fail;
		if (strpbrk(out->headers.data + at, "\r\n")) {
			snprintf(err, errn, "header %zu has a line break", i + 1);
			goto fail;
		}
		buf_putc(&out->headers, '\n');
	}
	json_decref(d);
	d = NULL;
	if (g->body_t) {
		d = msg_data(g, m, g->body_format == SMSGW_JSON ? CTX_JSON :
		    CTX_FORM);
		if (render(g->body_t, d, &out->body, err, errn, "body") < 0)
			goto fail;
		out->content_type = g->body_format == SMSGW_JSON ?
		    "application/json" : "application/x-www-form-urlencoded";
		json_decref(d);
		d = NULL;
	}
	if (!url_ok(buf_str(&out->url)) || strpbrk(buf_str(&out->url),
	    " \r\n")) {
		snprintf(err, errn, "the url template did not make a URL");
		return -1;
	}
	return 0;
fail:
	json_decref(d);
	return -1;
}

int
smsgw_address(const struct smsgw *g, const struct smsgw_msg *m,
    struct buf *out, char *err, size_t errn)
{
	json_t *d;
	int r;

	if (g->type != SMSGW_EMAIL2SMS) {
		snprintf(err, errn, "gateway %s is not an email2sms gateway",
		    g->name);
		return -1;
	}
	d = msg_data(g, m, CTX_RAW);
	r = render(g->address_t, d, out, err, errn, "address");
	json_decref(d);
	if (r == 0 && (strpbrk(buf_str(out), " \r\n<>,;\"") ||
	    !strchr(buf_str(out), '@'))) {
		snprintf(err, errn, "'%s' is not an address", buf_str(out));
		return -1;
	}
	return r;
}

/* ---- answers, reports, callers -------------------------------------------- */

enum smsgw_outcome
smsgw_response(const struct smsgw *g, int status, const char *body,
    size_t len, char *msgid, size_t n, char *why, size_t whyn)
{
	char *text = malloc(len + 1);
	regmatch_t m[2];
	enum smsgw_outcome r;

	if (n)
		msgid[0] = '\0';
	if (whyn)
		why[0] = '\0';
	if (!text) {
		snprintf(why, whyn, "out of memory");
		return SMSGW_RETRY;
	}
	memcpy(text, body, len);
	text[len] = '\0';
	/* no NUL inside: the regex sees up to the first one */
	if (status == 0) {
		snprintf(why, whyn, "no answer (timeout or connection failure)");
		r = SMSGW_RETRY;
	} else if (status < 200 || status > 299) {
		snprintf(why, whyn, "HTTP %d: %.200s", status, text);
		/* a bad request or refused credentials will not improve;
		 * throttling and server trouble may */
		r = status >= 400 && status < 500 && status != 408 &&
		    status != 429 ? SMSGW_REJECTED : SMSGW_RETRY;
	} else if (g->type == SMSGW_KANNEL) {
		/* "0: Accepted for delivery", "3: Queued for later delivery" */
		r = SMSGW_SENT;
		if (text[0] != '0' && text[0] != '3') {
			snprintf(why, whyn, "smsbox: %.200s", text);
			r = SMSGW_RETRY;
		}
	} else if (g->has_success && regexec(&g->success_re, text, 0, NULL,
	    0) != 0) {
		snprintf(why, whyn, "HTTP %d without the success pattern: %.200s",
		    status, text);
		r = SMSGW_REJECTED;
	} else {
		r = SMSGW_SENT;
	}
	if (r == SMSGW_SENT && g->has_message_id && regexec(&g->message_id_re,
	    text, 2, m, 0) == 0 && m[1].rm_so >= 0) {
		size_t l = (size_t)(m[1].rm_eo - m[1].rm_so);

		if (l < n) {
			memcpy(msgid, text + m[1].rm_so, l);
			msgid[l] = '\0';
		}
	}
	free(text);
	return r;
}

enum smsgw_dlr
smsgw_dlr_status(const struct smsgw *g, const char *status)
{
	if (listed(&g->dlr_delivered, status))
		return SMSGW_DLR_DELIVERED;
	if (listed(&g->dlr_failed, status))
		return SMSGW_DLR_FAILED;
	if (g->dlr_delivered.n || g->dlr_failed.n)
		return SMSGW_DLR_PENDING;
	/* Kannel's numbers (1 delivered, 2 failed, 4 buffered, 8 SMSC
	 * accepted, 16 SMSC rejected) and common words */
	if (!strcmp(status, "1") || !strcasecmp(status, "delivered") ||
	    !strcasecmp(status, "DELIVRD"))
		return SMSGW_DLR_DELIVERED;
	if (!strcmp(status, "2") || !strcmp(status, "16") ||
	    !strcasecmp(status, "failed") || !strcasecmp(status,
	    "undelivered") || !strcasecmp(status, "rejected") ||
	    !strcasecmp(status, "UNDELIV") || !strcasecmp(status, "REJECTD") ||
	    !strcasecmp(status, "EXPIRED"))
		return SMSGW_DLR_FAILED;
	return SMSGW_DLR_PENDING;
}

static int
in_net(const struct smsgw_net *net, int family, const unsigned char *a)
{
	int full = net->bits / 8, rest = net->bits % 8;

	if (net->family != family)
		return 0;
	if (memcmp(net->addr, a, (size_t)full) != 0)
		return 0;
	if (rest) {
		unsigned char mask = (unsigned char)(0xFF << (8 - rest));

		return (net->addr[full] & mask) == (a[full] & mask);
	}
	return 1;
}

int
smsgw_authorized(const struct smsgw *g, const char *secret, const char *ip)
{
	int ok = 0;

	if (!*g->secret && !g->nallow)
		return 0;
	if (*g->secret) {
		if (!secret || !token_equal(secret, strlen(secret), g->secret,
		    strlen(g->secret)))
			return 0;
		ok = 1;
	}
	if (g->nallow) {
		unsigned char a[16];
		int family = 0;

		ok = 0;
		if (ip && inet_pton(AF_INET, ip, a) == 1) {
			family = AF_INET;
		} else if (ip && inet_pton(AF_INET6, ip, a) == 1) {
			family = AF_INET6;
			/* an IPv4 peer on a dual-stack socket */
			if (!memcmp(a, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12)) {
				memmove(a, a + 12, 4);
				family = AF_INET;
			}
		}
		for (size_t i = 0; family && i < g->nallow && !ok; i++)
			ok = in_net(&g->allow[i], family, a);
	}
	return ok;
}
