/*
 * form - lead form definitions, body parsers, lead mapping, page data and
 * the rate limiter. See form.h.
 */
#include "form.h"
#include "lead.h"
#include "tmpl.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- definitions ------------------------------------------------------- */

static const char *const field_types[] = { "", "text", "email", "tel",
	"number", "url", "textarea", "select", "checkbox", "hidden", NULL };

#define F(f) offsetof(struct form_def, f)
static const struct conf_key form_keys[] = {
	{ "title", CONF_STR, F(title), "", 0, 0, NULL, 0 },
	{ "intro", CONF_STR, F(intro), "", 0, 0, NULL, 0 },
	{ "submit", CONF_STR, F(submit), "Send", 0, 0, NULL, 0 },
	{ "source", CONF_STR, F(source), "", 0, 0, NULL, 0 },
	{ "list", CONF_STR, F(list), "", 0, 0, NULL, 0 },
	{ "honeypot", CONF_STR, F(honeypot), "", 0, 0, NULL, 0 },
	{ "rate_limit", CONF_STR, F(rate_limit), "10/m", 0, 0, NULL, 0 },
	{ "template", CONF_STR, F(page), FORM_PAGE_TEMPLATE, 0, 0, NULL, 0 },
	{ "thank_you", CONF_STR, F(thank_you), "", 0, 0, NULL, 0 },
	{ "redirect", CONF_STR, F(redirect), "", 0, 0, NULL, 0 },
	{ "allowed_origins", CONF_STRLIST, F(allowed_origins), "", 0, 0, NULL,
	  0 },
	{ NULL, 0, 0, NULL, 0, 0, NULL, 0 }
};
#undef F

#define FF(f) offsetof(struct form_field, f)
static const struct conf_key field_keys[] = {
	{ "to", CONF_STR, FF(to), "", 0, 0, NULL, 0 },
	{ "label", CONF_STR, FF(label), "", 0, 0, NULL, 0 },
	{ "type", CONF_ENUM, FF(type), "", 0, 0, field_types, 0 },
	{ "required", CONF_BOOL, FF(required), "false", 0, 0, NULL, 0 },
	{ "max_length", CONF_INT, FF(max_length), "0", 0, 65536, NULL, 0 },
	{ "choices", CONF_STRLIST, FF(choices), "", 0, 0, NULL, 0 },
	{ NULL, 0, 0, NULL, 0, 0, NULL, 0 }
};
#undef FF

/* The position of key's value in section (of the key for a list), or
 * fallback. */
static const struct cfgfile_pos *
value_at(const struct cfgfile_node *section, const char *key,
    const struct cfgfile_pos *fallback)
{
	for (const struct cfgfile_node *n = section->child; n; n = n->next)
		if (strcmp(n->key, key) == 0)
			return n->kind == CFGFILE_VALUE ? &n->vpos : &n->pos;
	return fallback;
}

static const struct cfgfile_node *
list_node(const struct cfgfile_node *section, const char *key)
{
	for (const struct cfgfile_node *n = section->child; n; n = n->next)
		if (strcmp(n->key, key) == 0 && n->kind == CFGFILE_LIST)
			return n;
	return NULL;
}

/* Letters, digits and the characters of extra; 1 to FORM_NAME_MAX. */
static int
name_ok(const char *s, size_t len, const char *extra)
{
	if (len == 0 || len > FORM_NAME_MAX)
		return 0;
	for (size_t i = 0; i < len; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr(extra, s[i]))
			return 0;
	return 1;
}

int
form_parse_rate(const char *s, long *count, long *period_ms)
{
	const char *slash = strchr(s, '/');
	char per[32], *end;
	long n;

	if (strcmp(s, "none") == 0) {
		*count = *period_ms = 0;
		return 0;
	}
	if (!slash || !isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	n = strtol(s, &end, 10);
	if (errno || end != slash || n < 1 || n > 1000000)
		return -1;
	/* "m" alone is "1m" */
	snprintf(per, sizeof(per), "%s%s", isdigit((unsigned char)slash[1]) ?
	    "" : "1", slash + 1);
	if (strlen(slash + 1) >= sizeof(per) - 1 || !slash[1] ||
	    conf_parse_duration(per, period_ms) < 0 || *period_ms < 1000 ||
	    *period_ms > 7L * 86400000)
		return -1;
	*count = n;
	return 0;
}

/* "https://host[:port]" with nothing after, or "*". */
static int
origin_ok(const char *s)
{
	const char *host;

	if (strcmp(s, "*") == 0)
		return 1;
	if (strncmp(s, "https://", 8) == 0)
		host = s + 8;
	else if (strncmp(s, "http://", 7) == 0)
		host = s + 7;
	else
		return 0;
	if (!*host || *host == ':')
		return 0;
	for (const char *p = host; *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr(".-:[]", *p))
			return 0;
	return 1;
}

/* A fixed absolute https URL, safe in a Location header. */
static int
redirect_ok(const char *s)
{
	const char *host = s + 8;

	if (strncmp(s, "https://", 8) != 0 || strlen(s) > 2000 || !*host ||
	    strchr("/?#:@", *host))
		return 0;
	for (const char *p = s; *p; p++)
		if ((unsigned char)*p <= 0x20 || *p == 0x7f || strchr("\"<>\\^`{|}",
		    *p))
			return 0;
	return 1;
}

/* "first_name" -> "First name" (allocates). */
static char *
default_label(const char *name)
{
	char *s = strdup(name);

	if (!s)
		return NULL;
	for (char *p = s; *p; p++)
		if (*p == '_' || *p == '-')
			*p = ' ';
	s[0] = (char)toupper((unsigned char)s[0]);
	return s;
}

static void
field_free(struct form_field *f)
{
	conf_unbind(field_keys, f);
	free(f->name);
}

static void
def_free(struct form_def *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->nfields; i++)
		field_free(&d->fields[i]);
	free(d->fields);
	conf_unbind(form_keys, d);
	free(d->name);
	free(d->file);
	free(d);
}

/* The lead field's length limit: its own for text, 32 for numbers,
 * LEAD_MAX_FIELD for custom fields. */
static long
lead_max(const char *to)
{
	const struct lead_field *lf = lead_field(to);

	if (!lf)
		return LEAD_MAX_FIELD;
	return lf->type == LEAD_TEXT ? (long)lf->max : 32;
}

static int
custom_name_ok(const char *s)
{
	return isalpha((unsigned char)*s) && name_ok(s, strlen(s), "_");
}

/* Bind and check one field section; 0 or -1 (errors added). */
static int
load_field(struct form_def *d, struct cfgfile_node *n,
    struct cfgfile_errors *errs)
{
	struct form_field *f = &d->fields[d->nfields];
	size_t before = errs->n;
	const char *to;
	long max;

	memset(f, 0, sizeof(*f));
	n->used = 1;
	if (n->kind != CFGFILE_SECTION || !n->title) {
		cfgfile_error(errs, &n->pos, "write field \"NAME\" { to = ... }");
		return -1;
	}
	if (!name_ok(n->title, strlen(n->title), "-_.")) {
		cfgfile_error(errs, &n->pos, "field names use letters, digits, "
		    "- _ and . (at most %d)", FORM_NAME_MAX);
		return -1;
	}
	for (size_t i = 0; i < d->nfields; i++) {
		if (strcmp(d->fields[i].name, n->title) == 0) {
			cfgfile_error(errs, &n->pos, "field \"%s\" is declared "
			    "twice", n->title);
			return -1;
		}
	}
	if (!(f->name = strdup(n->title)))
		return -1;
	d->nfields++;
	conf_bind(field_keys, n, f, NULL, errs);
	conf_check_unknown(n, errs);
	if (!*f->to) {
		/* a standard field's name maps to it, others are custom */
		free(f->to);
		if (lead_field(f->name))
			f->to = strdup(f->name);
		else if (asprintf(&f->to, "fields.%s", f->name) < 0)
			f->to = NULL;
		if (!f->to)
			return -1;
		if (!lead_field(f->name) && !custom_name_ok(f->name)) {
			cfgfile_error(errs, &n->pos, "field \"%s\": say where it "
			    "goes with to = \"fields.NAME\" (custom field names "
			    "are letters, digits and _)", f->name);
			return -1;
		}
	}
	to = f->to;
	if (strcmp(to, "source") == 0) {
		cfgfile_error(errs, value_at(n, "to", &n->pos), "to: the source "
		    "is the form's own (source = ...)");
	} else if (strncmp(to, "fields.", 7) == 0 ? !custom_name_ok(to + 7) :
	    !lead_field(to)) {
		cfgfile_error(errs, value_at(n, "to", &n->pos), "to: '%s' is "
		    "neither a lead field (email, phone, first_name, ...) nor "
		    "fields.NAME (letters, digits and _)", to);
	}
	for (size_t i = 0; i + 1 < d->nfields; i++) {
		if (strcmp(d->fields[i].to, to) == 0)
			cfgfile_error(errs, value_at(n, "to", &n->pos), "to: "
			    "field \"%s\" already goes to %s", d->fields[i].name,
			    to);
	}
	if (!*f->label) {
		free(f->label);
		if (!(f->label = default_label(f->name)))
			return -1;
	}
	if (!*f->type) {
		free(f->type);
		f->type = strdup(f->choices.n ? "select" :
		    !strcmp(to, "email") ? "email" : !strcmp(to, "phone") ? "tel" :
		    lead_field(to) && lead_field(to)->type != LEAD_TEXT ?
		    "number" : "text");
		if (!f->type)
			return -1;
	}
	if ((strcmp(f->type, "select") == 0) != (f->choices.n > 0))
		cfgfile_error(errs, value_at(n, f->choices.n ? "choices" :
		    "type", &n->pos), "%s", f->choices.n ? "choices: only a "
		    "select field has choices" : "type: a select field needs "
		    "choices = { \"a\", \"b\" }");
	for (size_t i = 0; i < f->choices.n; i++) {
		const struct cfgfile_node *l = list_node(n, "choices");

		if (!*f->choices.v[i] || strlen(f->choices.v[i]) >
		    (size_t)lead_max(to))
			cfgfile_error(errs, l ? &l->item_pos[i] : &n->pos,
			    "choices: an empty or too long choice");
	}
	max = lead_max(to);
	if (f->max_length == 0) {
		f->max_length = max;
	} else if (f->max_length > max) {
		cfgfile_error(errs, value_at(n, "max_length", &n->pos),
		    "max_length: %s holds at most %ld", to, max);
	}
	return errs->n == before ? 0 : -1;
}

/* Check the form's own settings once its fields are known. */
static void
check_def(struct form_def *d, const struct cfgfile_node *root,
    const struct cfgfile_pos *file, const struct tmpl_set *templates,
    const struct conf *c, struct cfgfile_errors *errs)
{
	const struct form_field *email = form_field_for(d, "email");
	const struct cfgfile_node *origins = list_node(root, "allowed_origins");

#define AT(k) value_at(root, k, file)
	if (d->nfields == 0)
		cfgfile_error(errs, file, "a form needs fields: field \"email\" "
		    "{ required = true }");
	else if (!email && !form_field_for(d, "phone"))
		cfgfile_error(errs, file, "a form needs a field that goes to "
		    "email or phone, to reach the lead");
	if (form_parse_rate(d->rate_limit, &d->rate_count,
	    &d->rate_period_ms) < 0)
		cfgfile_error(errs, AT("rate_limit"), "rate_limit: expected "
		    "requests per period from 1s to 7d, like 10/m, 100/h or "
		    "5/30s, or none");
	if (*d->honeypot) {
		if (!name_ok(d->honeypot, strlen(d->honeypot), "-_."))
			cfgfile_error(errs, AT("honeypot"), "honeypot: a field "
			    "name (letters, digits, - _ and .)");
		for (size_t i = 0; i < d->nfields; i++)
			if (strcmp(d->fields[i].name, d->honeypot) == 0)
				cfgfile_error(errs, AT("honeypot"), "honeypot: "
				    "\"%s\" is a real field; name one people "
				    "never fill in, like \"website\"",
				    d->honeypot);
	}
	if (*d->redirect && *d->thank_you)
		cfgfile_error(errs, AT("redirect"), "set thank_you or redirect, "
		    "not both");
	if (*d->redirect && !redirect_ok(d->redirect))
		cfgfile_error(errs, AT("redirect"), "redirect: a fixed absolute "
		    "https:// URL, like \"https://www.acme.example/thanks\"");
	if (!*d->redirect && !*d->thank_you) {
		free(d->thank_you);
		d->thank_you = strdup(FORM_THANKS_TEMPLATE);
	}
	if (d->thank_you && *d->thank_you && templates &&
	    !tmpl_set_get(templates, d->thank_you))
		cfgfile_error(errs, AT("thank_you"), "thank_you: no template "
		    "'%s' (a file %s.mustache in the templates directory)",
		    d->thank_you, d->thank_you);
	if (d->page && templates && !tmpl_set_get(templates, d->page))
		cfgfile_error(errs, AT("template"), "template: no template '%s' (a file "
		    "%s.mustache in the templates directory)", d->page, d->page);
	for (size_t i = 0; i < d->allowed_origins.n; i++)
		if (!origin_ok(d->allowed_origins.v[i]))
			cfgfile_error(errs, origins ? &origins->item_pos[i] :
			    AT("allowed_origins"), "allowed_origins: '%s' is "
			    "not an origin like \"https://www.acme.example\" "
			    "(no path) or \"*\"", d->allowed_origins.v[i]);
	if (*d->list) {
		if (c && !conf_list_find(c, d->list))
			cfgfile_error(errs, AT("list"), "list: '%s' is not "
			    "declared: add list \"%s\" { } to %s", d->list,
			    d->list, c->path);
		else if (!email || !email->required)
			cfgfile_error(errs, AT("list"), "list: subscribing needs "
			    "a required field that goes to email");
	}
	if (!*d->source) {
		free(d->source);
		if (asprintf(&d->source, "form:%s", d->name) < 0)
			d->source = NULL;
	}
	if (!*d->title) {
		free(d->title);
		d->title = strdup(d->name);
	}
#undef AT
}

static struct form_def *
load_one(const char *path, const char *name, const struct tmpl_set *templates,
    const struct conf *c, struct cfgfile_errors *errs)
{
	struct cfgfile_tree tree;
	struct cfgfile_pos file = { NULL, 0, 0 };
	struct form_def *d = calloc(1, sizeof(*d));
	size_t nsections = 0;

	if (!d || !(d->name = strdup(name)) || !(d->file = strdup(path))) {
		def_free(d);
		return NULL;
	}
	cfgfile_parse(path, &tree, errs);
	file.file = tree.nfiles ? tree.files[0] : path;
	for (struct cfgfile_node *n = tree.root->child; n; n = n->next)
		nsections += strcmp(n->key, "field") == 0;
	if (nsections > FORM_MAX_DECLARED) {
		cfgfile_error(errs, &file, "more than %d fields",
		    FORM_MAX_DECLARED);
		nsections = FORM_MAX_DECLARED;
	}
	d->fields = calloc(nsections ? nsections : 1, sizeof(*d->fields));
	for (struct cfgfile_node *n = tree.root->child; d->fields && n;
	    n = n->next) {
		if (strcmp(n->key, "field") != 0)
			continue;
		if (d->nfields == nsections) {
			n->used = 1;
			continue;
		}
		load_field(d, n, errs);
	}
	conf_bind(form_keys, tree.root, d, NULL, errs);
	conf_check_unknown(tree.root, errs);
	check_def(d, tree.root, &file, templates, c, errs);
	cfgfile_tree_free(&tree);
	if (!d->fields || !d->source || !d->title || !d->thank_you) {
		cfgfile_error(errs, &file, "out of memory");
		def_free(d);
		return NULL;
	}
	return d;
}

static int
conf_file(const struct dirent *e)
{
	size_t len = strlen(e->d_name);

	return e->d_name[0] != '.' && len > 5 &&
	    strcmp(e->d_name + len - 5, ".conf") == 0;
}

int
form_load_dir(const char *dir, const struct tmpl_set *templates,
    const struct conf *c, struct form_set *out, struct cfgfile_errors *errs)
{
	size_t before = errs->n;
	struct dirent **names = NULL;
	int n;

	memset(out, 0, sizeof(*out));
	if ((n = scandir(dir, &names, conf_file, alphasort)) < 0) {
		if (errno != ENOENT) {
			struct cfgfile_pos p = { dir, 0, 0 };

			cfgfile_error(errs, &p, "cannot read the forms "
			    "directory: %s", strerror(errno));
		}
		return (int)(errs->n - before);
	}
	out->v = calloc((size_t)n + 1, sizeof(*out->v));
	for (int i = 0; out->v && i < n; i++) {
		const char *f = names[i]->d_name;
		size_t len = strlen(f) - 5;
		char path[4096], name[FORM_NAME_MAX + 1];
		struct form_def *d;

		snprintf(path, sizeof(path), "%s/%s", dir, f);
		if (!name_ok(f, len, "-_")) {
			struct cfgfile_pos p = { path, 0, 0 };

			cfgfile_error(errs, &p, "form file names use letters, "
			    "digits, - and _ (at most %d)", FORM_NAME_MAX);
			continue;
		}
		snprintf(name, sizeof(name), "%.*s", (int)len, f);
		if ((d = load_one(path, name, templates, c, errs)) != NULL)
			out->v[out->n++] = d;
	}
	if (!out->v) {
		struct cfgfile_pos p = { dir, 0, 0 };

		cfgfile_error(errs, &p, "out of memory");
	}
	for (int i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return (int)(errs->n - before);
}

void
form_set_free(struct form_set *s)
{
	for (size_t i = 0; i < s->n; i++)
		def_free(s->v[i]);
	free(s->v);
	s->v = NULL;
	s->n = 0;
}

const struct form_def *
form_find(const struct form_set *s, const char *name)
{
	for (size_t i = 0; s && i < s->n; i++)
		if (strcmp(s->v[i]->name, name) == 0)
			return s->v[i];
	return NULL;
}

const struct form_field *
form_field_for(const struct form_def *def, const char *to)
{
	for (size_t i = 0; i < def->nfields; i++)
		if (def->fields[i].to && strcmp(def->fields[i].to, to) == 0)
			return &def->fields[i];
	return NULL;
}

/* ---- body parsers -------------------------------------------------------- */

static int
fail(struct form_error *err, int status, const char *field, const char *fmt,
    ...) __attribute__((format(printf, 4, 5)));

static int
fail(struct form_error *err, int status, const char *field, const char *fmt,
    ...)
{
	va_list ap;

	err->status = status;
	snprintf(err->field, sizeof(err->field), "%s", field ? field : "");
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	return -1;
}

/* Length of the valid UTF-8 sequence at s (n bytes left), 0 if invalid:
 * no overlong forms, surrogates or code points past U+10FFFF. */
static size_t
utf8_seq(const unsigned char *s, size_t n)
{
	unsigned c = s[0];
	size_t len;
	unsigned cp;

	if (c < 0x80)
		return 1;
	if (c < 0xc2 || c > 0xf4)
		return 0;
	len = c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
	if (n < len)
		return 0;
	cp = c & (0xff >> (len + 1));
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return len;
}

static int
utf8_valid(const char *s, size_t n)
{
	for (size_t i = 0, k; i < n; i += k)
		if (!(k = utf8_seq((const unsigned char *)s + i, n - i)))
			return 0;
	return 1;
}

/* Characters (code points) of valid UTF-8. */
static size_t
utf8_chars(const char *s, size_t n)
{
	size_t c = 0;

	for (size_t i = 0; i < n; i++)
		c += ((unsigned char)s[i] & 0xc0) != 0x80;
	return c;
}

/* A name for messages: the name itself if it is printable and short. */
static const char *
shown(const char *name, size_t len, char *out, size_t n)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
			return "";
	snprintf(out, n, "%.*s", (int)(len < FORM_NAME_MAX + 1 ? len :
	    FORM_NAME_MAX + 1), name);
	return out;
}

/* Add name=value (validated) to obj; a repeated name becomes an array. */
static int
add_pair(json_t *obj, const char *name, size_t nlen, const char *val,
    size_t vlen, struct form_error *err)
{
	char key[FORM_NAME_MAX + 8];
	json_t *v, *old;
	char *k;

	if (!utf8_valid(name, nlen) || memchr(name, '\0', nlen))
		return fail(err, 400, "", "a field name is not valid UTF-8");
	shown(name, nlen, key, sizeof(key));
	if (!utf8_valid(val, vlen))
		return fail(err, 400, key, "not valid UTF-8");
	if (memchr(val, '\0', vlen))
		return fail(err, 400, key, "contains a control character");
	if (!(k = strndup(name, nlen)))
		return fail(err, 503, NULL, "out of memory");
	if (!(v = json_stringn(val, vlen))) {
		free(k);
		return fail(err, 503, NULL, "out of memory");
	}
	if (!(old = json_object_get(obj, k))) {
		json_object_set_new(obj, k, v);
	} else if (json_is_array(old)) {
		json_array_append_new(old, v);
	} else {
		json_object_set_new(obj, k, json_pack("[Oo]", old, v));
	}
	free(k);
	return 0;
}

static int
hexval(int c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ?
	    c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Percent-decode s (n bytes) into out (room for n); '+' is a space.
 * Returns the decoded length, or -1 on a bad escape. */
static long
pct_decode(const char *s, size_t n, char *out)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		int hi, lo;

		if (s[i] == '+') {
			out[o++] = ' ';
		} else if (s[i] != '%') {
			out[o++] = s[i];
		} else if (i + 2 >= n || (hi = hexval(s[i + 1])) < 0 ||
		    (lo = hexval(s[i + 2])) < 0) {
			return -1;
		} else {
			out[o++] = (char)(hi << 4 | lo);
			i += 2;
		}
	}
	return (long)o;
}

/* Decode one name or value (raw, n bytes) into buf (room for 3 * max);
 * its length, or -1 after fail(). what: the field for messages, NULL for
 * the name itself. */
static long
decode_part(const char *raw, size_t n, char *buf, size_t max,
    const char *what, struct form_error *err)
{
	long len = n > 3 * max ? -2 : pct_decode(raw, n, buf);

	if (len == -1)
		return fail(err, 400, what ? what : "", what ? "malformed "
		    "%%-escape" : "a field name has a malformed %%-escape");
	if (len == -2 || (size_t)len > max)
		return fail(err, 413, what ? what : "", "%slonger than %zu "
		    "bytes", what ? "" : "a field name is ", max);
	return len;
}

int
form_parse_urlencoded(const char *body, size_t len,
    const struct form_limits *lim, json_t **out, struct form_error *err)
{
	const char *p = body, *end = body + len;
	size_t pairs = 0, room = 3 * lim->max_value + 1;
	json_t *obj;
	char *name = NULL, *val = NULL;

	if (len > lim->max_body)
		return fail(err, 413, NULL, "the form is larger than %zu bytes",
		    lim->max_body);
	if (!(obj = json_object()) || !(name = malloc(room)) ||
	    !(val = malloc(room))) {
		json_decref(obj);
		free(name);
		return fail(err, 503, NULL, "out of memory");
	}
	while (p < end) {
		const char *amp = memchr(p, '&', (size_t)(end - p));
		const char *stop = amp ? amp : end;
		const char *eq = memchr(p, '=', (size_t)(stop - p));
		const char *ve = eq ? eq + 1 : stop;
		char key[FORM_NAME_MAX + 8];
		long nl, vl;

		if (stop > p) {                 /* "a=1&&b=2": skip the gap */
			if (++pairs > lim->max_fields) {
				fail(err, 413, NULL, "more than %zu fields",
				    lim->max_fields);
				goto bad;
			}
			if ((nl = decode_part(p, (size_t)((eq ? eq : stop) - p),
			    name, lim->max_value, NULL, err)) < 0)
				goto bad;
			shown(name, (size_t)nl, key, sizeof(key));
			if ((vl = decode_part(ve, (size_t)(stop - ve), val,
			    lim->max_value, key, err)) < 0)
				goto bad;
			/* "=x" has no name: nothing to file it under */
			if (nl > 0 && add_pair(obj, name, (size_t)nl, val,
			    (size_t)vl, err) < 0)
				goto bad;
		}
		p = stop + (amp != NULL);
	}
	free(name);
	free(val);
	*out = obj;
	return 0;
bad:
	free(name);
	free(val);
	json_decref(obj);
	return -1;
}

/*
 * Parameter `want` of a header value's parameter list (s, n bytes, from
 * the first ';'), unquoted into out (size on): 1 found, 0 not, -1
 * malformed.
 */
static int
header_param(const char *s, size_t n, const char *want, char *out, size_t on)
{
	const char *p = s, *end = s + n;
	size_t wl = strlen(want);

	for (;;) {
		const char *name;
		size_t nl, o = 0;
		int match;

		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
		if (p == end)
			return 0;
		if (*p++ != ';')
			return -1;
		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
		for (name = p; p < end && *p != '=' && *p != ';' && *p != ' ' &&
		    *p != '\t'; p++)
			;
		nl = (size_t)(p - name);
		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
		if (nl == 0 || p == end || *p++ != '=')
			return -1;
		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
		match = nl == wl && strncasecmp(name, want, wl) == 0;
		if (p < end && *p == '"') {
			for (p++; p < end && *p != '"'; p++) {
				if (*p == '\\' && p + 1 < end)
					p++;
				if (match && o + 1 < on)
					out[o++] = *p;
				else if (match)
					return -1;
			}
			if (p == end)
				return -1;
			p++;
		} else {
			for (; p < end && *p != ';' && *p != ' ' && *p != '\t';
			    p++) {
				if (match && o + 1 < on)
					out[o++] = *p;
				else if (match)
					return -1;
			}
		}
		if (match) {
			out[o] = '\0';
			return 1;
		}
	}
}

/* Does header value s (n bytes) start with token tok, alone or followed
 * by parameters? Returns where the parameters start, or NULL. */
static const char *
value_starts(const char *s, size_t n, const char *tok)
{
	size_t tl = strlen(tok);

	while (n && (*s == ' ' || *s == '\t'))
		s++, n--;
	if (n < tl || strncasecmp(s, tok, tl) != 0 || (n > tl &&
	    s[tl] != ';' && s[tl] != ' ' && s[tl] != '\t'))
		return NULL;
	return s + tl;
}

#define PART_HEADERS_MAX   16
#define PART_HEADER_LINE   1024

/* Read a part's header block at *pp; name (size PART_HEADER_LINE) and
 * whether it is a file. 0, or -1 after fail(). */
static int
part_headers(const char **pp, const char *end, char *name, int *file,
    struct form_error *err)
{
	const char *p = *pp;
	int seen = 0;

	*file = 0;
	for (int nh = 0;; nh++) {
		const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
		const char *colon, *v;
		char fn[PART_HEADER_LINE];

		if (!eol)
			return fail(err, 400, NULL, "the multipart body is "
			    "truncated");
		if (eol == p)
			break;
		if (nh >= PART_HEADERS_MAX || eol - p > PART_HEADER_LINE ||
		    *p == ' ' || *p == '\t' ||
		    !(colon = memchr(p, ':', (size_t)(eol - p))))
			return fail(err, 400, NULL, "malformed part headers in "
			    "the multipart body");
		if ((size_t)(colon - p) == 19 && strncasecmp(p,
		    "Content-Disposition", 19) == 0) {
			int r;

			if (seen++ || !(v = value_starts(colon + 1,
			    (size_t)(eol - colon - 1), "form-data")))
				return fail(err, 400, NULL, "a part needs one "
				    "Content-Disposition: form-data");
			r = header_param(v, (size_t)(eol - v), "name", name,
			    PART_HEADER_LINE);
			if (r < 0 || (r == 1 && (*file = header_param(v,
			    (size_t)(eol - v), "filename", fn, sizeof(fn))) < 0))
				return fail(err, 400, NULL, "malformed "
				    "Content-Disposition in the multipart body");
			if (r == 0)
				seen = -1;
			else if (!*file)
				*file = header_param(v, (size_t)(eol - v),
				    "filename*", fn, sizeof(fn)) != 0;
		}
		p = eol + 2;
	}
	if (seen != 1)
		return fail(err, 400, NULL, "a part has no name "
		    "(Content-Disposition: form-data; name=\"...\")");
	*pp = p + 2;
	return 0;
}

int
form_parse_multipart(const char *content_type, const char *body, size_t len,
    const struct form_limits *lim, json_t **out, struct form_error *err)
{
	const char *p, *end = body + len, *params;
	char boundary[PART_HEADER_LINE], delim[80], name[PART_HEADER_LINE];
	size_t dlen, parts = 0;
	json_t *obj;

	if (len > lim->max_body)
		return fail(err, 413, NULL, "the form is larger than %zu bytes",
		    lim->max_body);
	if (!content_type || !(params = value_starts(content_type,
	    strlen(content_type), "multipart/form-data")) ||
	    header_param(params, strlen(params), "boundary", boundary,
	    sizeof(boundary)) != 1 || !*boundary || strlen(boundary) > 70)
		return fail(err, 400, NULL, "multipart/form-data needs a "
		    "boundary parameter (1 to 70 characters)");
	dlen = (size_t)snprintf(delim, sizeof(delim), "\r\n--%s", boundary);
	/* the first delimiter may open the body, or follow a preamble */
	if (len >= dlen - 2 && memcmp(body, delim + 2, dlen - 2) == 0)
		p = body + dlen - 2;
	else if ((p = memmem(body, len, delim, dlen)) != NULL)
		p += dlen;
	else
		return fail(err, 400, NULL, "the multipart body has no "
		    "boundary line");
	if (!(obj = json_object()))
		return fail(err, 503, NULL, "out of memory");
	for (;;) {
		const char *next;
		int file;

		if (end - p >= 2 && p[0] == '-' && p[1] == '-')
			break;                  /* the close delimiter */
		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
		if (end - p < 2 || p[0] != '\r' || p[1] != '\n') {
			fail(err, 400, NULL, end - p < 2 ? "the multipart body "
			    "is truncated" : "malformed boundary line in the "
			    "multipart body");
			goto bad;
		}
		p += 2;
		if (++parts > lim->max_fields) {
			fail(err, 413, NULL, "more than %zu fields",
			    lim->max_fields);
			goto bad;
		}
		if (part_headers(&p, end, name, &file, err) < 0)
			goto bad;
		if (!(next = memmem(p, (size_t)(end - p), delim, dlen))) {
			fail(err, 400, NULL, "the multipart body is truncated");
			goto bad;
		}
		if (!file) {
			char key[FORM_NAME_MAX + 8];

			if (strlen(name) > lim->max_value) {
				fail(err, 413, "", "a field name is longer than "
				    "%zu bytes", lim->max_value);
				goto bad;
			}
			if ((size_t)(next - p) > lim->max_value) {
				fail(err, 413, shown(name, strlen(name), key,
				    sizeof(key)), "longer than %zu bytes",
				    lim->max_value);
				goto bad;
			}
			if (*name && add_pair(obj, name, strlen(name), p,
			    (size_t)(next - p), err) < 0)
				goto bad;
		}
		p = next + dlen;
	}
	*out = obj;
	return 0;
bad:
	json_decref(obj);
	return -1;
}

int
form_parse_body(const char *content_type, const char *body, size_t len,
    const struct form_limits *lim, json_t **out, struct form_error *err)
{
	const char *ct = content_type ? content_type : "";

	if (value_starts(ct, strlen(ct), "application/x-www-form-urlencoded"))
		return form_parse_urlencoded(body, len, lim, out, err);
	if (value_starts(ct, strlen(ct), "multipart/form-data"))
		return form_parse_multipart(ct, body, len, lim, out, err);
	return fail(err, 415, NULL, "send the form as "
	    "application/x-www-form-urlencoded or multipart/form-data");
}

/* ---- from values to a lead ------------------------------------------------ */

/* The submitted value of name, NULL if absent; *dup when sent twice. */
static const char *
value_of(const json_t *values, const char *name, int *dup)
{
	const json_t *v = values ? json_object_get(values, name) : NULL;

	*dup = json_is_array(v);
	if (*dup)
		v = json_array_get(v, 0);
	return json_string_value(v);
}

/* A copy of s with CR, LF and tab turned into spaces (runs of them into
 * one), trimmed. Caller frees. */
static char *
flatten(const char *s)
{
	char *out = malloc(strlen(s) + 1), *o = out;
	int space = 0;

	if (!out)
		return NULL;
	while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
		s++;
	for (; *s; s++) {
		if (*s == '\r' || *s == '\n' || *s == '\t') {
			if (!space)
				*o++ = ' ';
			space = 1;
			continue;
		}
		space = 0;
		*o++ = *s;
	}
	while (o > out && o[-1] == ' ')
		o--;
	*o = '\0';
	return out;
}

static int
in_choices(const struct form_field *f, const char *v)
{
	for (size_t i = 0; i < f->choices.n; i++)
		if (strcmp(f->choices.v[i], v) == 0)
			return 1;
	return 0;
}

int
form_lead(const struct form_def *def, const json_t *values,
    const char *default_country, json_t **lead, struct form_error *err)
{
	char lfield[128], msg[256];
	json_t *raw, *custom;
	const char *hp;
	int dup;

	*lead = NULL;
	if (*def->honeypot && (hp = value_of(values, def->honeypot, &dup)) &&
	    (dup || hp[strspn(hp, " \t\r\n")]))
		return 1;
	raw = json_object();
	custom = json_object();
	json_object_set_new(raw, "fields", custom);
	for (size_t i = 0; i < def->nfields; i++) {
		const struct form_field *f = &def->fields[i];
		const char *v = value_of(values, f->name, &dup);
		char *flat;
		size_t len;

		if (dup) {
			json_decref(raw);
			return fail(err, 400, f->name, "sent more than once");
		}
		if (!v || !(flat = flatten(v)) || !*flat) {
			if (v && !flat) {
				json_decref(raw);
				return fail(err, 503, NULL, "out of memory");
			}
			free(v ? flat : NULL);
			if (f->required) {
				json_decref(raw);
				return fail(err, 400, f->name, "this field is "
				    "required");
			}
			continue;
		}
		len = strlen(flat);
		if (f->choices.n && !in_choices(f, flat)) {
			free(flat);
			json_decref(raw);
			return fail(err, 400, f->name, "not one of the choices");
		}
		if (utf8_chars(flat, len) > (size_t)f->max_length) {
			free(flat);
			json_decref(raw);
			return fail(err, 400, f->name, "longer than %ld "
			    "characters", f->max_length);
		}
		json_object_set_new(strncmp(f->to, "fields.", 7) == 0 ? custom :
		    raw, strncmp(f->to, "fields.", 7) == 0 ? f->to + 7 : f->to,
		    json_stringn(flat, len));
		free(flat);
	}
	json_object_set_new(raw, "source", json_string(def->source));
	*lead = lead_clean(raw, 0, default_country, lfield, sizeof(lfield), msg,
	    sizeof(msg));
	json_decref(raw);
	if (!*lead) {
		const struct form_field *f = form_field_for(def, lfield);

		return fail(err, 400, f ? f->name : NULL, "%s", msg);
	}
	if (!json_object_get(*lead, "email") && !json_object_get(*lead,
	    "phone")) {
		const struct form_field *f = form_field_for(def, "email");

		json_decref(*lead);
		*lead = NULL;
		return fail(err, 400, (f ? f : form_field_for(def,
		    "phone"))->name, "an email address or a phone number is "
		    "needed");
	}
	return 0;
}

/* ---- the page ----------------------------------------------------------------- */

static const char *
autocomplete(const char *to)
{
	static const char *const map[][2] = {
		{ "email", "email" }, { "phone", "tel" },
		{ "first_name", "given-name" }, { "last_name", "family-name" },
		{ "company", "organization" }, { "title", "organization-title" },
		{ "country", "country-name" }, { "region", "address-level1" },
		{ "city", "address-level2" }, { "postal_code", "postal-code" },
		{ "language", "language" },
	};

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (strcmp(map[i][0], to) == 0)
			return map[i][1];
	return "off";
}

json_t *
form_page_data(const struct form_def *def, const json_t *values,
    const struct form_error *err)
{
	json_t *fields = json_array(), *doc;
	int placed = 0;

	for (size_t i = 0; i < def->nfields; i++) {
		const struct form_field *f = &def->fields[i];
		const char *t = f->type;
		int dup, plain = strcmp(t, "textarea") && strcmp(t, "select") &&
		    strcmp(t, "checkbox") && strcmp(t, "hidden");
		const char *v = value_of(values, f->name, &dup);
		json_t *o, *choices = json_array();
		char id[FORM_NAME_MAX + 8];

		snprintf(id, sizeof(id), "f-%s", f->name);
		for (size_t k = 0; k < f->choices.n; k++)
			json_array_append_new(choices, json_pack("{s:s, s:b}",
			    "value", f->choices.v[k], "selected", v &&
			    !strcmp(v, f->choices.v[k])));
		o = json_pack("{s:s, s:s, s:s, s:s, s:b, s:s, s:I, s:s, s:b, "
		    "s:b, s:b, s:b, s:b, s:b, s:o}", "name", f->name, "id", id,
		    "label", f->label, "type", t, "required", f->required,
		    "value", v ? v : "", "max_length",
		    (json_int_t)f->max_length, "autocomplete",
		    autocomplete(f->to), "is_input", plain, "is_textarea",
		    !strcmp(t, "textarea"), "is_select", !strcmp(t, "select"),
		    "is_checkbox", !strcmp(t, "checkbox"), "is_hidden",
		    !strcmp(t, "hidden"), "checked", v && *v, "choices",
		    choices);
		if (o && err && *err->field && strcmp(err->field, f->name) == 0) {
			json_object_set_new(o, "error", json_string(err->msg));
			placed = 1;
		}
		json_array_append_new(fields, o);
	}
	doc = json_pack("{s:{s:s, s:s, s:s, s:s}, s:s, s:o}", "form", "name",
	    def->name, "title", def->title, "intro", def->intro, "submit",
	    def->submit, "title", def->title, "fields", fields);
	if (doc && *def->honeypot)
		json_object_set_new(doc, "honeypot", json_string(def->honeypot));
	if (doc && err && *err->msg)
		json_object_set_new(doc, "form_error", json_string(placed ?
		    "Please correct the field marked below." : err->msg));
	return doc;
}

/* ---- rate limiting -------------------------------------------------------------- */

struct slot {
	char key[FORM_LIMITER_KEY_MAX];
	double tokens;
	int64_t last_ms;
	uint64_t hash;
	uint32_t chain;                 /* next in the bucket, index + 1 */
	uint32_t prev, next;            /* recency list, index + 1 */
};

struct form_limiter {
	struct slot *slots;
	size_t nslots, used;
	uint32_t *buckets;              /* index + 1 of the first slot */
	size_t mask;
	uint32_t newest, oldest;        /* index + 1 */
	uint64_t k0, k1;
};

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND do {							\
	v0 += v1; v1 = ROTL(v1, 13); v1 ^= v0; v0 = ROTL(v0, 32);	\
	v2 += v3; v3 = ROTL(v3, 16); v3 ^= v2;				\
	v0 += v3; v3 = ROTL(v3, 21); v3 ^= v0;				\
	v2 += v1; v1 = ROTL(v1, 17); v1 ^= v2; v2 = ROTL(v2, 32);	\
} while (0)

/* SipHash-2-4 of s (n bytes) under k0, k1. */
static uint64_t
siphash(uint64_t k0, uint64_t k1, const unsigned char *s, size_t n)
{
	uint64_t v0 = 0x736f6d6570736575ULL ^ k0, v1 = 0x646f72616e646f6dULL ^ k1;
	uint64_t v2 = 0x6c7967656e657261ULL ^ k0, v3 = 0x7465646279746573ULL ^ k1;
	uint64_t m, b = (uint64_t)n << 56;
	size_t i;

	for (i = 0; i + 8 <= n; i += 8) {
		m = 0;
		for (int k = 7; k >= 0; k--)
			m = m << 8 | s[i + (size_t)k];
		v3 ^= m;
		SIPROUND;
		SIPROUND;
		v0 ^= m;
	}
	for (size_t k = 0; i + k < n; k++)
		b |= (uint64_t)s[i + k] << (8 * k);
	v3 ^= b;
	SIPROUND;
	SIPROUND;
	v0 ^= b;
	v2 ^= 0xff;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}

struct form_limiter *
form_limiter_new(size_t slots, const unsigned char key[16])
{
	struct form_limiter *l = calloc(1, sizeof(*l));
	size_t nb = 1;

	if (!l || slots == 0 || slots > UINT32_MAX / 2) {
		free(l);
		return NULL;
	}
	while (nb < slots)
		nb <<= 1;
	l->slots = calloc(slots, sizeof(*l->slots));
	l->buckets = calloc(nb, sizeof(*l->buckets));
	if (!l->slots || !l->buckets) {
		form_limiter_free(l);
		return NULL;
	}
	l->nslots = slots;
	l->mask = nb - 1;
	for (int i = 7; i >= 0; i--) {
		l->k0 = l->k0 << 8 | key[i];
		l->k1 = l->k1 << 8 | key[8 + i];
	}
	return l;
}

void
form_limiter_free(struct form_limiter *l)
{
	if (!l)
		return;
	free(l->slots);
	free(l->buckets);
	free(l);
}

size_t
form_limiter_count(const struct form_limiter *l)
{
	return l->used;
}

/* Take slot i (index + 1) out of the recency list. */
static void
lru_unlink(struct form_limiter *l, uint32_t i)
{
	struct slot *s = &l->slots[i - 1];

	if (s->prev)
		l->slots[s->prev - 1].next = s->next;
	else
		l->newest = s->next;
	if (s->next)
		l->slots[s->next - 1].prev = s->prev;
	else
		l->oldest = s->prev;
	s->prev = s->next = 0;
}

static void
lru_push(struct form_limiter *l, uint32_t i)
{
	struct slot *s = &l->slots[i - 1];

	s->prev = 0;
	s->next = l->newest;
	if (l->newest)
		l->slots[l->newest - 1].prev = i;
	l->newest = i;
	if (!l->oldest)
		l->oldest = i;
}

/* Take slot i (index + 1) out of its hash chain. */
static void
chain_unlink(struct form_limiter *l, uint32_t i)
{
	uint32_t *p = &l->buckets[l->slots[i - 1].hash & l->mask];

	while (*p && *p != i)
		p = &l->slots[*p - 1].chain;
	if (*p)
		*p = l->slots[i - 1].chain;
	l->slots[i - 1].chain = 0;
}

int
form_limiter_take(struct form_limiter *l, const char *key, long count,
    long period_ms, int64_t now_ms, long *retry_ms)
{
	size_t klen = strnlen(key, FORM_LIMITER_KEY_MAX - 1);
	uint64_t h = siphash(l->k0, l->k1, (const unsigned char *)key, klen);
	double rate = (double)count / (double)period_ms;  /* tokens per ms */
	uint32_t i;
	struct slot *s;

	if (count <= 0 || period_ms <= 0)
		return 1;
	for (i = l->buckets[h & l->mask]; i; i = l->slots[i - 1].chain) {
		s = &l->slots[i - 1];
		if (s->hash == h && strncmp(s->key, key, klen) == 0 &&
		    s->key[klen] == '\0')
			break;
	}
	if (i) {
		s = &l->slots[i - 1];
		if (now_ms > s->last_ms) {
			s->tokens += (double)(now_ms - s->last_ms) * rate;
			if (s->tokens > (double)count)
				s->tokens = (double)count;
			s->last_ms = now_ms;
		}
		lru_unlink(l, i);
	} else {
		if (l->used < l->nslots) {
			i = (uint32_t)++l->used;
		} else {
			i = l->oldest;          /* evict the least recent */
			lru_unlink(l, i);
			chain_unlink(l, i);
		}
		s = &l->slots[i - 1];
		memcpy(s->key, key, klen);
		s->key[klen] = '\0';
		s->hash = h;
		s->tokens = (double)count;
		s->last_ms = now_ms;
		s->chain = l->buckets[h & l->mask];
		l->buckets[h & l->mask] = i;
	}
	lru_push(l, i);
	if (s->tokens >= 1.0) {
		s->tokens -= 1.0;
		return 1;
	}
	if (retry_ms) {
		double wait = (1.0 - s->tokens) / rate;

		*retry_ms = (long)wait + ((double)(long)wait < wait);
	}
	return 0;
}

void
form_client_key(const char *ip, char *out, size_t n)
{
	unsigned char a[16];
	char s[INET6_ADDRSTRLEN];

	if (inet_pton(AF_INET6, ip, a) == 1) {
		static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0,
			0, 0, 0, 0xff, 0xff };

		if (memcmp(a, mapped, 12) == 0 &&
		    inet_ntop(AF_INET, a + 12, s, sizeof(s))) {
			snprintf(out, n, "%s", s);
			return;
		}
		memset(a + 8, 0, 8);
		if (inet_ntop(AF_INET6, a, s, sizeof(s))) {
			snprintf(out, n, "%s/64", s);
			return;
		}
	}
	snprintf(out, n, "%s", ip);
}
