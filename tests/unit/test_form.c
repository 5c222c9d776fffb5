/*
 * Unit tests for lib/form.c: loading conf/forms/NAME.conf (defaults, and
 * every error with its file:line:col), the urlencoded and multipart body
 * parsers (well-formed, malformed and oversized input), the mapping of
 * values onto a lead (required fields, honeypot, choices, lengths, custom
 * fields, errors named by form field), the form page's data, the rate
 * limiter (burst, refill, fixed memory, eviction of the least recent) and
 * client keys. Form files are written to a temporary directory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cfgtest.h"
#include "conf.h"
#include "buf.h"
#include "form.h"
#include "tmpl.h"

static struct tmpl_set *templates;
static const struct form_limits lim = FORM_LIMITS_DEFAULT;

static int
setup(void **state)
{
	static const char *const names[] = { "pages/form", "pages/thanks",
		"pages/other" };
	struct tmpl_error te;

	(void)state;
	if (cfgtest_setup("form") < 0 || !(templates = tmpl_set_new()))
		return -1;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (tmpl_set_add(templates, names[i], "x", 1, &te) < 0)
			return -1;
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	tmpl_set_free(templates);
	return cfgtest_teardown();
}

/* Load a directory holding just NAME.conf = text. */
static int
load(const char *text, const struct conf *c, struct form_set *set,
    struct cfgfile_errors *errs, const char **dirp)
{
	const char *dir = new_dir();

	write_file(dir, "contact.conf", text);
	*dirp = dir;
	memset(errs, 0, sizeof(*errs));
	return form_load_dir(dir, templates, c, set, errs);
}

/* A form whose one problem is on `line`, at col; message has text. */
static void
expect_one(const char *text, int line, int col, const char *msg)
{
	struct form_set set;
	struct cfgfile_errors errs;
	const char *dir;

	assert_true(load(text, NULL, &set, &errs, &dir) >= 1);
	expect_error(&errs, dir, "contact.conf", line, col, msg);
	form_set_free(&set);
	cfgfile_errors_free(&errs);
}

/* Load text as one good form into *set. */
static const struct form_def *
load_ok(const char *text, struct form_set *set)
{
	struct cfgfile_errors errs;
	const char *dir;

	if (load(text, NULL, set, &errs, &dir) != 0) {
		dump(&errs);
		fail_msg("the form did not load");
	}
	cfgfile_errors_free(&errs);
	assert_int_equal(set->n, 1);
	return set->v[0];
}

static const char contact[] =
    "title = \"Talk to sales\"\n"
    "intro = \"We answer within a day.\"\n"
    "honeypot = website\n"
    "rate_limit = 5/m\n"
    "field \"email\" {\n"
    "\trequired = true\n"
    "\tlabel = \"Work email\"\n"
    "}\n"
    "field \"name\" { to = first_name }\n"
    "field \"company_name\" { to = company; max_length = 10 }\n"
    "field \"size\" { to = company_size }\n"
    "field \"plan\" { choices = { \"basic\", \"pro\" } }\n"
    "field \"message\" { type = textarea }\n"
    "field \"consent\" { type = checkbox; required = true }\n";

/* ---- loading ----------------------------------------------------------------- */

static void
full_form_loads(void **state)
{
	struct form_set set;
	const struct form_def *d = load_ok(contact, &set);
	const struct form_field *f;

	(void)state;
	assert_string_equal(d->name, "contact");
	assert_string_equal(d->title, "Talk to sales");
	assert_string_equal(d->source, "form:contact");
	assert_string_equal(d->thank_you, FORM_THANKS_TEMPLATE);
	assert_string_equal(d->redirect, "");
	assert_string_equal(d->submit, "Send");
	assert_int_equal(d->rate_count, 5);
	assert_int_equal(d->rate_period_ms, 60000);
	assert_int_equal(d->nfields, 7);
	f = &d->fields[0];
	assert_string_equal(f->to, "email");
	assert_string_equal(f->type, "email");
	assert_string_equal(f->label, "Work email");
	assert_true(f->required);
	assert_int_equal(f->max_length, 254);
	f = form_field_for(d, "first_name");
	assert_non_null(f);
	assert_string_equal(f->name, "name");
	assert_string_equal(f->label, "Name");
	assert_string_equal(f->type, "text");
	assert_int_equal(form_field_for(d, "company")->max_length, 10);
	assert_string_equal(form_field_for(d, "company_size")->type, "number");
	f = form_field_for(d, "fields.plan");
	assert_non_null(f);
	assert_string_equal(f->type, "select");
	assert_int_equal(f->choices.n, 2);
	assert_string_equal(form_field_for(d, "fields.message")->type,
	    "textarea");
	assert_string_equal(form_field_for(d, "fields.consent")->label,
	    "Consent");
	assert_ptr_equal(form_find(&set, "contact"), d);
	assert_null(form_find(&set, "other"));
	form_set_free(&set);
}

static void
defaults_and_directory(void **state)
{
	struct form_set set;
	struct cfgfile_errors errs = { NULL, 0 };
	const char *dir = new_dir();
	char sub[400];

	(void)state;
	/* a missing directory is no forms */
	snprintf(sub, sizeof(sub), "%s/none", dir);
	assert_int_equal(form_load_dir(sub, templates, NULL, &set, &errs), 0);
	assert_int_equal(set.n, 0);
	form_set_free(&set);
	/* sorted by name; other files and hidden ones are not forms */
	write_file(dir, "b.conf", "field \"phone\" { }\nredirect = "
	    "\"https://www.acme.example/thanks?x=1\"\nsource = web\n"
	    "rate_limit = none\n");
	write_file(dir, "a-1_x.conf", "field \"email\" { }\n");
	write_file(dir, ".hidden.conf", "nonsense\n");
	write_file(dir, "README", "nonsense\n");
	assert_int_equal(form_load_dir(dir, templates, NULL, &set, &errs), 0);
	assert_int_equal(set.n, 2);
	assert_string_equal(set.v[0]->name, "a-1_x");
	assert_string_equal(set.v[0]->title, "a-1_x");
	assert_int_equal(set.v[0]->rate_count, 10);     /* 10/m */
	assert_string_equal(set.v[1]->name, "b");
	assert_string_equal(set.v[1]->source, "web");
	assert_string_equal(set.v[1]->thank_you, "");
	assert_string_equal(set.v[1]->redirect,
	    "https://www.acme.example/thanks?x=1");
	assert_int_equal(set.v[1]->rate_count, 0);
	assert_string_equal(set.v[1]->fields[0].type, "tel");
	form_set_free(&set);
	/* a bad file name */
	dir = new_dir();
	write_file(dir, "bad name.conf", "field \"email\" { }\n");
	assert_int_equal(form_load_dir(dir, templates, NULL, &set, &errs), 1);
	expect_error(&errs, dir, "bad name.conf", 0, 0, "letters, digits");
	form_set_free(&set);
	cfgfile_errors_free(&errs);
}

static void
errors_have_positions(void **state)
{
	(void)state;
	expect_one("field \"email\" { }\ncolour = red\n", 2, 1,
	    "unknown key 'colour'");
	expect_one("field \"email\" {\n\trequired = true\n\tsize = 3\n}\n", 3,
	    2, "unknown key 'size' in section field");
	expect_one("field \"email\" {\n\trequired = maybe\n}\n", 2, 13,
	    "expected true or false");
	expect_one("field \"email\" { }\nfield \"x\" { to = \"nope\" }\n", 2,
	    18, "'nope' is neither a lead field");
	expect_one("field \"email\" { }\nfield \"x\" { to = \"fields.9a\" }\n",
	    2, 18, "fields.NAME");
	expect_one("field \"email\" { }\nfield \"x\" { to = source }\n", 2, 18,
	    "the source is the form's own");
	expect_one("field \"email\" { }\nfield \"mail\" { to = email }\n", 2,
	    21, "field \"email\" already goes to email");
	expect_one("field \"email\" { }\nfield \"email\" { }\n", 2, 1,
	    "declared twice");
	expect_one("field \"e mail\" { to = email }\n", 1, 1,
	    "field names use letters");
	expect_one("field \"x-y\" { }\nfield \"email\" { }\n", 1, 1,
	    "say where it goes");
	expect_one("field { }\n", 1, 1, "write field \"NAME\"");
	expect_one("field \"email\" { max_length = 300 }\n", 1, 30,
	    "email holds at most 254");
	expect_one("field \"email\" { }\nfield \"p\" { type = select }\n", 2,
	    20, "a select field needs choices");
	expect_one("field \"email\" { }\nfield \"p\" { type = text; choices = "
	    "{ a } }\n", 2, 26, "only a select field has choices");
	expect_one("field \"email\" { }\nfield \"p\" { type = radio }\n", 2,
	    20, "'radio' is not one of");
	expect_one("field \"email\" { }\nrate_limit = 10/fortnight\n", 2, 14,
	    "rate_limit: expected");
	expect_one("field \"email\" { }\nrate_limit = 0/m\n", 2, 14,
	    "rate_limit");
	expect_one("field \"email\" { }\nredirect = \"http://acme.example/\"\n",
	    2, 12, "https://");
	expect_one("field \"email\" { }\nredirect = \"https:///x\"\n", 2, 12,
	    "https://");
	expect_one("field \"email\" { }\nredirect = \"https://a.example/ x\"\n",
	    2, 12, "https://");
	expect_one("field \"email\" { }\nthank_you = pages/other\nredirect = "
	    "\"https://a.example/\"\n", 3, 12, "not both");
	expect_one("field \"email\" { }\nthank_you = \"pages/nope\"\n", 2, 13,
	    "no template 'pages/nope'");
	expect_one("field \"email\" { }\nhoneypot = email\n", 2, 12,
	    "is a real field");
	expect_one("field \"email\" { }\nhoneypot = \"a b\"\n", 2, 12,
	    "honeypot: a field name");
	expect_one("field \"email\" { }\nallowed_origins = {\n\t"
	    "\"https://ok.example\",\n\t\"https://bad.example/path\"\n}\n", 4,
	    2, "'https://bad.example/path' is not an origin");
	expect_one("title = \"x\"\n", 0, 0, "a form needs fields");
	expect_one("field \"name\" { to = first_name }\n", 0, 0,
	    "goes to email or phone");
	expect_one("field \"email\" { }\nlist = news\n", 2, 8,
	    "needs a required field that goes to email");
	expect_one("field \"email\" { }\ntitle = \"unclosed\n", 2, 9,
	    "");
}

static void
lists_are_checked(void **state)
{
	struct conf_list l = { "news", "News", 1, "confirm" };
	struct conf c;
	struct form_set set;
	struct cfgfile_errors errs;
	const char *dir;

	(void)state;
	memset(&c, 0, sizeof(c));
	c.path = "/etc/leadcast/leadcast.conf";
	c.lists = &l;
	c.nlists = 1;
	assert_int_equal(load("field \"email\" { required = true }\n"
	    "list = news\n", &c, &set, &errs, &dir), 0);
	assert_string_equal(set.v[0]->list, "news");
	form_set_free(&set);
	assert_int_equal(load("field \"email\" { required = true }\n"
	    "list = other\n", &c, &set, &errs, &dir), 1);
	expect_error(&errs, dir, "contact.conf", 2, 8, "list: 'other' is not "
	    "declared: add list \"other\" { } to /etc/leadcast/leadcast.conf");
	form_set_free(&set);
	cfgfile_errors_free(&errs);
}

static void
missing_page_template(void **state)
{
	struct tmpl_set *none = tmpl_set_new();
	struct form_set set;
	struct cfgfile_errors errs = { NULL, 0 };
	const char *dir = new_dir();

	(void)state;
	write_file(dir, "c.conf", "field \"email\" { }\n");
	assert_int_equal(form_load_dir(dir, none, NULL, &set, &errs), 2);
	expect_error(&errs, dir, "c.conf", 0, 0, "no template 'pages/form'");
	expect_error(&errs, dir, "c.conf", 0, 0, "no template 'pages/thanks'");
	form_set_free(&set);
	cfgfile_errors_free(&errs);
	/* a form's own page template: there, or an error at its line */
	errs.n = 0;
	errs.msgs = NULL;
	write_file(dir, "c.conf", "thank_you = \"t\"\ntemplate = \"brand/form\"\n"
	    "field \"email\" { }\n");
	assert_int_equal(tmpl_set_add(none, "t", "x", 1, NULL), 0);
	assert_int_equal(form_load_dir(dir, none, NULL, &set, &errs), 1);
	expect_error(&errs, dir, "c.conf", 2, 12, "no template 'brand/form'");
	form_set_free(&set);
	cfgfile_errors_free(&errs);
	errs.n = 0;
	errs.msgs = NULL;
	assert_int_equal(tmpl_set_add(none, "brand/form", "<form>", 6, NULL),
	    0);
	assert_int_equal(form_load_dir(dir, none, NULL, &set, &errs), 0);
	assert_string_equal(form_find(&set, "c")->page, "brand/form");
	form_set_free(&set);
	cfgfile_errors_free(&errs);
	tmpl_set_free(none);
}

static void
parse_rate(void **state)
{
	long n, ms;

	(void)state;
	assert_int_equal(form_parse_rate("10/m", &n, &ms), 0);
	assert_int_equal(n, 10);
	assert_int_equal(ms, 60000);
	assert_int_equal(form_parse_rate("300/h", &n, &ms), 0);
	assert_int_equal(ms, 3600000);
	assert_int_equal(form_parse_rate("5/30s", &n, &ms), 0);
	assert_int_equal(n, 5);
	assert_int_equal(ms, 30000);
	assert_int_equal(form_parse_rate("none", &n, &ms), 0);
	assert_int_equal(n, 0);
	assert_int_equal(form_parse_rate("1/d", &n, &ms), 0);
	assert_int_equal(ms, 86400000);
	assert_int_equal(form_parse_rate("10", &n, &ms), -1);
	assert_int_equal(form_parse_rate("10/", &n, &ms), -1);
	assert_int_equal(form_parse_rate("/m", &n, &ms), -1);
	assert_int_equal(form_parse_rate("-1/m", &n, &ms), -1);
	assert_int_equal(form_parse_rate("0/m", &n, &ms), -1);
	assert_int_equal(form_parse_rate("10/500ms", &n, &ms), -1);
	assert_int_equal(form_parse_rate("10/8d", &n, &ms), -1);
	assert_int_equal(form_parse_rate("1x/m", &n, &ms), -1);
}

/* ---- urlencoded --------------------------------------------------------------- */

static json_t *
urlenc(const char *body, struct form_error *err)
{
	json_t *out = NULL;

	memset(err, 0, sizeof(*err));
	if (form_parse_urlencoded(body, strlen(body), &lim, &out, err) < 0)
		return NULL;
	return out;
}

static void
urlencoded_parses(void **state)
{
	struct form_error err;
	json_t *v;

	(void)state;
	v = urlenc("email=jane%40acme.example&name=Jane+Doe&&empty=&bare"
	    "&msg=a%0D%0Ab&caf%C3%A9=%E2%82%AC&=nameless&x=1=2", &err);
	assert_non_null(v);
	assert_string_equal(json_string_value(json_object_get(v, "email")),
	    "jane@acme.example");
	assert_string_equal(json_string_value(json_object_get(v, "name")),
	    "Jane Doe");
	assert_string_equal(json_string_value(json_object_get(v, "empty")), "");
	assert_string_equal(json_string_value(json_object_get(v, "bare")), "");
	assert_string_equal(json_string_value(json_object_get(v, "msg")),
	    "a\r\nb");
	assert_string_equal(json_string_value(json_object_get(v, "caf\xc3\xa9")),
	    "\xe2\x82\xac");
	assert_string_equal(json_string_value(json_object_get(v, "x")), "1=2");
	assert_int_equal(json_object_size(v), 7);
	json_decref(v);
	/* nothing at all */
	v = urlenc("", &err);
	assert_int_equal(json_object_size(v), 0);
	json_decref(v);
	/* a repeated name keeps every value, in order */
	v = urlenc("a=1&b=2&a=3&a=", &err);
	assert_true(json_is_array(json_object_get(v, "a")));
	assert_int_equal(json_array_size(json_object_get(v, "a")), 3);
	assert_string_equal(json_string_value(json_array_get(json_object_get(v,
	    "a"), 1)), "3");
	json_decref(v);
}

static void
urlencoded_malformed(void **state)
{
	struct form_error err;
	static char big[60000];
	json_t *v;
	size_t n;

	(void)state;
	assert_null(urlenc("a=1&email=x%4", &err));
	assert_int_equal(err.status, 400);
	assert_string_equal(err.field, "email");
	assert_non_null(strstr(err.msg, "malformed"));
	assert_null(urlenc("email=%zz", &err));
	assert_string_equal(err.field, "email");
	assert_null(urlenc("em%ail=x", &err));
	assert_string_equal(err.field, "");
	assert_non_null(strstr(err.msg, "field name"));
	assert_null(urlenc("name=%C3%28", &err));      /* invalid UTF-8 */
	assert_string_equal(err.field, "name");
	assert_string_equal(err.msg, "not valid UTF-8");
	assert_null(urlenc("name=%ED%A0%80", &err));   /* a surrogate */
	assert_string_equal(err.field, "name");
	assert_null(urlenc("name=%C0%AF", &err));      /* overlong */
	assert_null(urlenc("name=%F4%90%80%80", &err)); /* past U+10FFFF */
	assert_null(urlenc("na%FFme=x", &err));
	assert_string_equal(err.field, "");
	assert_null(urlenc("a%00b=x", &err));          /* NUL in a name */
	/* NUL in a value: C strings would cut it short */
	assert_null(urlenc("a=x%00y", &err));
	assert_string_equal(err.field, "a");
	assert_string_equal(err.msg, "contains a control character");
	/* limits */
	n = 0;
	for (int i = 0; i < 101; i++)
		n += (size_t)snprintf(big + n, sizeof(big) - n, "f%d=1&", i);
	assert_null(urlenc(big, &err));
	assert_int_equal(err.status, 413);
	assert_non_null(strstr(err.msg, "more than 100 fields"));
	memcpy(big, "msg=", 4);
	memset(big + 4, 'a', 16 * 1024 + 1);
	big[4 + 16 * 1024 + 1] = '\0';
	assert_null(urlenc(big, &err));
	assert_int_equal(err.status, 413);
	assert_string_equal(err.field, "msg");
	/* exactly the limit passes; encoded, it may be three times longer */
	big[4 + 16 * 1024] = '\0';
	v = urlenc(big, &err);
	assert_non_null(v);
	json_decref(v);
	n = 4;
	for (int i = 0; i < 16 * 1024; i++, n += 3)
		memcpy(big + n, "%41", 3);
	big[n] = '\0';
	assert_true(n < sizeof(big));
	v = urlenc(big, &err);
	assert_non_null(v);
	assert_int_equal(json_string_length(json_object_get(v, "msg")),
	    16 * 1024);
	json_decref(v);
	{
		struct form_limits small = { 10, 100, 100 };

		assert_int_equal(form_parse_urlencoded("a=12345678", 10, &small,
		    &v, &err), 0);
		json_decref(v);
		assert_int_equal(form_parse_urlencoded("a=123456789", 11,
		    &small, &v, &err), -1);
		assert_int_equal(err.status, 413);
	}
}

/* ---- multipart ------------------------------------------------------------------ */

#define CT "multipart/form-data; boundary=----WebKitFormBoundaryAbC123"
#define B "------WebKitFormBoundaryAbC123"

static json_t *
multi(const char *ct, const char *body, struct form_error *err)
{
	json_t *out = NULL;

	memset(err, 0, sizeof(*err));
	if (form_parse_multipart(ct, body, strlen(body), &lim, &out, err) < 0)
		return NULL;
	return out;
}

static void
multipart_parses(void **state)
{
	static const char body[] =
	    B "\r\n"
	    "Content-Disposition: form-data; name=\"email\"\r\n"
	    "\r\n"
	    "jane@acme.example\r\n"
	    B "\r\n"
	    "content-disposition: form-data; name=\"msg\"\r\n"
	    "Content-Type: text/plain; charset=utf-8\r\n"
	    "\r\n"
	    "line one\r\nline two, caf\xc3\xa9\r\n"
	    B "\r\n"
	    "Content-Disposition: form-data; name=\"cv\"; filename=\"cv.pdf\"\r\n"
	    "Content-Type: application/pdf\r\n"
	    "\r\n"
	    "%PDF-1.4 \xff\xfe binary\r\n"
	    B "\r\n"
	    "Content-Disposition: form-data; name=\"empty\"\r\n"
	    "\r\n"
	    "\r\n"
	    B "--\r\n"
	    "epilogue";
	struct form_error err;
	json_t *v;

	(void)state;
	v = multi(CT, body, &err);
	if (!v)
		fail_msg("%s: %s", err.field, err.msg);
	assert_int_equal(json_object_size(v), 3);
	assert_string_equal(json_string_value(json_object_get(v, "email")),
	    "jane@acme.example");
	assert_string_equal(json_string_value(json_object_get(v, "msg")),
	    "line one\r\nline two, caf\xc3\xa9");
	assert_string_equal(json_string_value(json_object_get(v, "empty")), "");
	assert_null(json_object_get(v, "cv"));          /* files are skipped */
	json_decref(v);
	/* a quoted boundary, a preamble, padding after the boundary line,
	 * an escaped quote in a name, a repeated name */
	v = multi("Multipart/Form-Data; charset=utf-8; boundary=\"a b:c\"",
	    "preamble\r\n--a b:c  \r\n"
	    "Content-Disposition: form-data; name=\"q\\\"x\"\r\n\r\n1\r\n"
	    "--a b:c\r\n"
	    "Content-Disposition: form-data; name=q\\\"x\r\n\r\n2\r\n"
	    "--a b:c\r\n"
	    "Content-Disposition: form-data; name=plain\r\n\r\n3\r\n"
	    "--a b:c--", &err);
	if (!v)
		fail_msg("%s: %s", err.field, err.msg);
	assert_string_equal(json_string_value(json_object_get(v, "q\"x")), "1");
	assert_string_equal(json_string_value(json_object_get(v, "q\\\"x")),
	    "2");
	assert_string_equal(json_string_value(json_object_get(v, "plain")), "3");
	json_decref(v);
	/* no parts at all */
	v = multi(CT, B "--\r\n", &err);
	assert_non_null(v);
	assert_int_equal(json_object_size(v), 0);
	json_decref(v);
	/* filename* (RFC 5987) is a file too */
	v = multi(CT, B "\r\nContent-Disposition: form-data; name=\"f\"; "
	    "filename*=UTF-8''a.txt\r\n\r\nx\r\n" B "--", &err);
	assert_non_null(v);
	assert_null(json_object_get(v, "f"));
	json_decref(v);
}

static void
expect_multi_error(const char *ct, const char *body, int status,
    const char *field, const char *text)
{
	struct form_error err;
	json_t *v = multi(ct, body, &err);

	if (v) {
		json_decref(v);
		fail_msg("parsed: %s", body);
	}
	assert_int_equal(err.status, status);
	assert_string_equal(err.field, field);
	if (!strstr(err.msg, text))
		fail_msg("message \"%s\" has no \"%s\"", err.msg, text);
}

static void
multipart_malformed(void **state)
{
	char *big;
	size_t n;

	(void)state;
	expect_multi_error("multipart/form-data", B "--", 400, "",
	    "boundary parameter");
	expect_multi_error("multipart/form-data; boundary=", B "--", 400, "",
	    "boundary parameter");
	expect_multi_error("multipart/form-data; boundary=\"unclosed", "x",
	    400, "", "boundary parameter");
	expect_multi_error("multipart/form-data; boundary=aaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "x",
	    400, "", "boundary parameter");
	expect_multi_error("text/plain; boundary=x", "--x--", 400, "",
	    "boundary parameter");
	expect_multi_error(CT, "no boundary here", 400, "", "no boundary line");
	expect_multi_error(CT, B, 400, "", "truncated");
	expect_multi_error(CT, B "\r\nContent-Disposition: form-data; "
	    "name=\"a\"\r\n\r\nno end", 400, "", "truncated");
	expect_multi_error(CT, B "\r\nContent-Disposition: form-data; "
	    "name=\"a\"\r\n", 400, "", "truncated");
	expect_multi_error(CT, B "\r\nContent-Disposition: form-data\r\n\r\n"
	    "x\r\n" B "--", 400, "", "has no name");
	expect_multi_error(CT, B "\r\nContent-Type: text/plain\r\n\r\n"
	    "x\r\n" B "--", 400, "", "has no name");
	expect_multi_error(CT, B "\r\nContent-Disposition: attachment; "
	    "name=a\r\n\r\nx\r\n" B "--", 400, "", "form-data");
	expect_multi_error(CT, B "\r\nContent-Disposition: form-data; "
	    "name=a\r\nContent-Disposition: form-data; name=b\r\n\r\nx\r\n"
	    B "--", 400, "", "form-data");
	expect_multi_error(CT, B "\r\nContent-Disposition: form-data; "
	    "name=\"a\r\n\r\nx\r\n" B "--", 400, "", "Content-Disposition");
	expect_multi_error(CT, B "\r\nContent-Disposition: form-data;\r\n"
	    " name=a\r\n\r\nx\r\n" B "--", 400, "", "malformed");
	expect_multi_error(CT, B "\r\nno colon\r\n\r\nx\r\n" B "--", 400, "",
	    "malformed");
	expect_multi_error(CT, B "junk\r\n", 400, "", "malformed boundary");
	/* LF alone is not a line end in MIME */
	expect_multi_error(CT, B "\nContent-Disposition: form-data; "
	    "name=a\n\nx\n" B "--", 400, "", "");
	expect_multi_error(CT, B "\r\nContent-Disposition: form-data; "
	    "name=a\r\n\r\n\xc3\x28\r\n" B "--", 400, "a", "not valid UTF-8");
	/* limits: value length, number of parts, header lines */
	big = malloc(200000);
	assert_non_null(big);
	n = (size_t)sprintf(big, B "\r\nContent-Disposition: form-data; "
	    "name=msg\r\n\r\n");
	memset(big + n, 'a', 16 * 1024 + 1);
	n += 16 * 1024 + 1;
	strcpy(big + n, "\r\n" B "--");
	expect_multi_error(CT, big, 413, "msg", "longer than 16384 bytes");
	n = 0;
	for (int i = 0; i < 101; i++)
		n += (size_t)sprintf(big + n, B "\r\nContent-Disposition: "
		    "form-data; name=f%d\r\n\r\n1\r\n", i);
	strcpy(big + n, B "--");
	expect_multi_error(CT, big, 413, "", "more than 100 fields");
	n = (size_t)sprintf(big, B "\r\n");
	for (int i = 0; i < 17; i++)
		n += (size_t)sprintf(big + n, "X-H%d: 1\r\n", i);
	n += (size_t)sprintf(big + n, "Content-Disposition: form-data; "
	    "name=a\r\n\r\nx\r\n" B "--");
	expect_multi_error(CT, big, 400, "", "malformed part headers");
	free(big);
}

static void
body_dispatch(void **state)
{
	struct form_error err;
	json_t *v = NULL;

	(void)state;
	assert_int_equal(form_parse_body("application/x-www-form-urlencoded; "
	    "charset=UTF-8", "a=1", 3, &lim, &v, &err), 0);
	assert_string_equal(json_string_value(json_object_get(v, "a")), "1");
	json_decref(v);
	{
		static const char mp[] = "--x\r\nContent-Disposition: "
		    "form-data; name=a\r\n\r\n2\r\n--x--";

		assert_int_equal(form_parse_body("multipart/form-data; "
		    "boundary=x", mp, sizeof(mp) - 1, &lim, &v, &err), 0);
	}
	assert_string_equal(json_string_value(json_object_get(v, "a")), "2");
	json_decref(v);
	assert_int_equal(form_parse_body("application/json", "{}", 2, &lim, &v,
	    &err), -1);
	assert_int_equal(err.status, 415);
	assert_int_equal(form_parse_body(NULL, "a=1", 3, &lim, &v, &err), -1);
	assert_int_equal(err.status, 415);
	assert_int_equal(form_parse_body("application/x-www-form-urlencodedx",
	    "a=1", 3, &lim, &v, &err), -1);
	assert_int_equal(err.status, 415);
}

/* ---- leads ------------------------------------------------------------------------- */

/* form_lead on a urlencoded body: 0/1/-1, *lead and err. */
static int
lead_of(const struct form_def *d, const char *body, json_t **lead,
    struct form_error *err)
{
	json_t *v = urlenc(body, err);
	int r;

	assert_non_null(v);
	r = form_lead(d, v, "US", lead, err);
	json_decref(v);
	return r;
}

static void
expect_invalid(const struct form_def *d, const char *body, const char *field,
    const char *text)
{
	struct form_error err;
	json_t *lead = NULL;

	if (lead_of(d, body, &lead, &err) != -1)
		fail_msg("accepted: %s", body);
	assert_null(lead);
	assert_int_equal(err.status, 400);
	assert_string_equal(err.field, field);
	if (!strstr(err.msg, text))
		fail_msg("message \"%s\" has no \"%s\"", err.msg, text);
}

static void
leads_are_mapped(void **state)
{
	struct form_set set;
	const struct form_def *d = load_ok(contact, &set);
	struct form_error err;
	json_t *lead, *custom;

	(void)state;
	assert_int_equal(lead_of(d, "email=Jane%40ACME.example&name=+Jane+&"
	    "company_name=Acme&size=250&plan=pro&message=Call+me%0D%0A%0D%0A"
	    "tomorrow%09please&consent=yes&website=&utm=ignored", &lead, &err),
	    0);
	assert_string_equal(json_string_value(json_object_get(lead, "email")),
	    "Jane@acme.example");
	assert_string_equal(json_string_value(json_object_get(lead,
	    "first_name")), "Jane");
	assert_string_equal(json_string_value(json_object_get(lead, "company")),
	    "Acme");
	assert_int_equal(json_integer_value(json_object_get(lead,
	    "company_size")), 250);
	assert_string_equal(json_string_value(json_object_get(lead, "source")),
	    "form:contact");
	custom = json_object_get(lead, "fields");
	assert_string_equal(json_string_value(json_object_get(custom, "plan")),
	    "pro");
	assert_string_equal(json_string_value(json_object_get(custom,
	    "message")), "Call me tomorrow please");
	assert_string_equal(json_string_value(json_object_get(custom,
	    "consent")), "yes");
	assert_null(json_object_get(custom, "utm"));
	assert_null(json_object_get(lead, "utm"));
	json_decref(lead);
	/* optional fields may be absent or blank */
	assert_int_equal(lead_of(d, "email=a%40b.example&consent=on&name=+&"
	    "plan=", &lead, &err), 0);
	assert_null(json_object_get(lead, "first_name"));
	assert_int_equal(json_object_size(json_object_get(lead, "fields")), 1);
	json_decref(lead);
	form_set_free(&set);
}

static void
leads_are_checked(void **state)
{
	struct form_set set;
	const struct form_def *d = load_ok(contact, &set);

	(void)state;
	expect_invalid(d, "consent=yes", "email", "this field is required");
	expect_invalid(d, "email=+%0D%0A&consent=yes", "email",
	    "this field is required");
	expect_invalid(d, "email=a%40b.example", "consent", "required");
	expect_invalid(d, "email=not-an-address&consent=yes", "email",
	    "not an email address");
	expect_invalid(d, "email=a%40b.example&consent=yes&size=lots", "size",
	    "expected a number");
	expect_invalid(d, "email=a%40b.example&consent=yes&plan=gold", "plan",
	    "not one of the choices");
	expect_invalid(d, "email=a%40b.example&consent=yes&company_name="
	    "abcdefghijk", "company_name", "longer than 10 characters");
	expect_invalid(d, "email=a%40b.example&consent=yes&email=c%40d.example",
	    "email", "sent more than once");
	expect_invalid(d, "email=a%40b.example&consent=yes&name=a%01b", "name",
	    "control character");
	expect_invalid(d, "email=a%40b.example&consent=yes&name=a%7Fb", "name",
	    "control character");
	{
		/* max_length counts characters, not bytes: ten é fit */
		struct form_error err;
		json_t *lead;

		assert_int_equal(lead_of(d, "email=a%40b.example&consent=yes&"
		    "company_name=%C3%A9%C3%A9%C3%A9%C3%A9%C3%A9%C3%A9%C3%A9"
		    "%C3%A9%C3%A9%C3%A9", &lead, &err), 0);
		json_decref(lead);
	}
	form_set_free(&set);
	/* a form whose contact fields are both optional */
	d = load_ok("field \"email\" { }\nfield \"phone\" { }\n"
	    "field \"name\" { to = first_name }\n", &set);
	expect_invalid(d, "name=Jo", "email", "an email address or a phone");
	{
		struct form_error err;
		json_t *lead;

		assert_int_equal(lead_of(d, "phone=%28313%29+555-0142", &lead,
		    &err), 0);
		assert_string_equal(json_string_value(json_object_get(lead,
		    "phone")), "+13135550142");
		json_decref(lead);
	}
	form_set_free(&set);
}

static void
honeypot_catches_bots(void **state)
{
	struct form_set set;
	const struct form_def *d = load_ok(contact, &set);
	struct form_error err;
	json_t *lead = (json_t *)1;

	(void)state;
	/* filled: a bot, whatever else is wrong with the submission */
	assert_int_equal(lead_of(d, "website=http%3A%2F%2Fspam.example",
	    &lead, &err), 1);
	assert_null(lead);
	assert_int_equal(lead_of(d, "email=a%40b.example&consent=yes&"
	    "website=x", &lead, &err), 1);
	assert_int_equal(lead_of(d, "website=&website=", &lead, &err), 1);
	/* blank: a person */
	assert_int_equal(lead_of(d, "email=a%40b.example&consent=yes&"
	    "website=+", &lead, &err), 0);
	json_decref(lead);
	form_set_free(&set);
}

static void
page_data(void **state)
{
	struct form_set set;
	const struct form_def *d = load_ok(contact, &set);
	struct form_error err = { "plan", "not one of the choices", 400 };
	json_t *values, *doc, *fields, *f;

	(void)state;
	doc = form_page_data(d, NULL, NULL);
	assert_string_equal(json_string_value(json_object_get(json_object_get(
	    doc, "form"), "title")), "Talk to sales");
	assert_string_equal(json_string_value(json_object_get(doc, "title")),
	    "Talk to sales");
	assert_string_equal(json_string_value(json_object_get(doc,
	    "honeypot")), "website");
	assert_null(json_object_get(doc, "form_error"));
	fields = json_object_get(doc, "fields");
	assert_int_equal(json_array_size(fields), 7);
	f = json_array_get(fields, 0);
	assert_string_equal(json_string_value(json_object_get(f, "name")),
	    "email");
	assert_string_equal(json_string_value(json_object_get(f, "id")),
	    "f-email");
	assert_string_equal(json_string_value(json_object_get(f,
	    "autocomplete")), "email");
	assert_true(json_is_true(json_object_get(f, "required")));
	assert_true(json_is_true(json_object_get(f, "is_input")));
	assert_string_equal(json_string_value(json_object_get(f, "value")), "");
	assert_true(json_is_true(json_object_get(json_array_get(fields, 5),
	    "is_textarea")));
	assert_true(json_is_true(json_object_get(json_array_get(fields, 6),
	    "is_checkbox")));
	json_decref(doc);
	/* refilled, with the error beside its field */
	values = urlenc("email=a%40b.example&plan=gold&consent=yes", &err);
	err = (struct form_error){ "plan", "not one of the choices", 400 };
	doc = form_page_data(d, values, &err);
	fields = json_object_get(doc, "fields");
	assert_string_equal(json_string_value(json_object_get(json_array_get(
	    fields, 0), "value")), "a@b.example");
	f = json_array_get(fields, 4);
	assert_string_equal(json_string_value(json_object_get(f, "error")),
	    "not one of the choices");
	assert_true(json_is_true(json_object_get(f, "is_select")));
	assert_false(json_is_true(json_object_get(json_array_get(
	    json_object_get(f, "choices"), 1), "selected")));
	assert_true(json_is_true(json_object_get(json_array_get(fields, 6),
	    "checked")));
	assert_null(json_object_get(json_array_get(fields, 0), "error"));
	assert_non_null(json_object_get(doc, "form_error"));
	json_decref(doc);
	/* an error that belongs to no field is shown on top */
	err = (struct form_error){ "", "Too many submissions", 429 };
	doc = form_page_data(d, values, &err);
	assert_string_equal(json_string_value(json_object_get(doc,
	    "form_error")), "Too many submissions");
	json_decref(doc);
	json_decref(values);
	form_set_free(&set);
}

/* Count the occurrences of needle in hay. */
static int
occurrences(const char *hay, const char *needle)
{
	int n = 0;

	for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++)
		n++;
	return n;
}

/* The project's form page and example form ($TOP_SRCDIR, else .), rendered
 * with an error and hostile values: the message sits at its field only,
 * values are escaped, the honeypot is there. */
static void
page_renders(void **state)
{
	const char *top = getenv("TOP_SRCDIR");
	char dir[600], forms[600];
	struct tmpl_set *pages = tmpl_set_new();
	struct tmpl_error te;
	struct form_set set;
	struct cfgfile_errors errs = { NULL, 0 };
	struct form_error err = { "name", "this field is required", 400 };
	const struct form_def *d;
	json_t *values, *data;
	struct buf out;

	(void)state;
	snprintf(dir, sizeof(dir), "%s/templates", top ? top : ".");
	snprintf(forms, sizeof(forms), "%s/conf/forms", top ? top : ".");
	if (tmpl_set_load_dir(pages, dir, &te) < 0)
		fail_msg("%s:%d: %s (set TOP_SRCDIR)", te.file, te.line, te.msg);
	if (form_load_dir(forms, pages, NULL, &set, &errs) != 0) {
		dump(&errs);
		fail_msg("conf/forms does not load");
	}
	assert_non_null(d = form_find(&set, "contact"));
	values = urlenc("email=%22%3E%3Cscript%3Ex%3C%2Fscript%3E&message="
	    "a%3C%2Ftextarea%3E&timeframe=Later", &err);
	err = (struct form_error){ "name", "this field is required", 400 };
	data = form_page_data(d, values, &err);
	buf_init(&out, 0);
	assert_int_equal(tmpl_render(tmpl_set_get(pages, FORM_PAGE_TEMPLATE),
	    data, pages, TMPL_ESCAPE_HTML, &out), 0);
	assert_non_null(strstr(out.data, "<h1>Talk to sales</h1>"));
	assert_int_equal(occurrences(out.data, "aria-invalid=\"true\""), 1);
	assert_int_equal(occurrences(out.data, "class=\"error\""), 1);
	assert_non_null(strstr(out.data, "aria-describedby=\"f-name-error\">"
	    "\n<p class=\"error\" id=\"f-name-error\">this field is "
	    "required</p>"));
	assert_non_null(strstr(out.data, "role=\"alert\""));
	assert_null(strstr(out.data, "<script>"));
	assert_null(strstr(out.data, "a</textarea>"));
	assert_non_null(strstr(out.data, "value=\"&quot;&gt;&lt;script&gt;"));
	assert_non_null(strstr(out.data, "<option selected>Later</option>"));
	assert_non_null(strstr(out.data, "name=\"website\" value=\"\" "
	    "tabindex=\"-1\""));
	assert_int_equal(occurrences(out.data, "<form "), 1);
	buf_free(&out);
	json_decref(data);
	json_decref(values);
	form_set_free(&set);
	tmpl_set_free(pages);
}

/* ---- rate limiting ------------------------------------------------------------------ */

static const unsigned char key16[16] = "0123456789abcdef";

static void
limiter_burst_and_refill(void **state)
{
	struct form_limiter *l = form_limiter_new(16, key16);
	long retry = 0;
	int64_t t = 1000000;

	(void)state;
	/* 3 per minute: three at once, then one every 20 s */
	for (int i = 0; i < 3; i++)
		assert_int_equal(form_limiter_take(l, "c|1.2.3.4", 3, 60000, t,
		    &retry), 1);
	assert_int_equal(form_limiter_take(l, "c|1.2.3.4", 3, 60000, t,
	    &retry), 0);
	assert_int_equal(retry, 20000);
	/* another client, another form: their own buckets */
	assert_int_equal(form_limiter_take(l, "c|1.2.3.5", 3, 60000, t, NULL),
	    1);
	assert_int_equal(form_limiter_take(l, "d|1.2.3.4", 3, 60000, t, NULL),
	    1);
	assert_int_equal(form_limiter_take(l, "c|1.2.3.4", 3, 60000, t + 5000,
	    &retry), 0);
	assert_int_equal(retry, 15000);
	assert_int_equal(form_limiter_take(l, "c|1.2.3.4", 3, 60000, t + 20000,
	    &retry), 1);
	assert_int_equal(form_limiter_take(l, "c|1.2.3.4", 3, 60000, t + 20000,
	    &retry), 0);
	/* a long pause refills up to the burst, not beyond */
	t += 3600000;
	for (int i = 0; i < 3; i++)
		assert_int_equal(form_limiter_take(l, "c|1.2.3.4", 3, 60000, t,
		    NULL), 1);
	assert_int_equal(form_limiter_take(l, "c|1.2.3.4", 3, 60000, t, NULL),
	    0);
	/* time going backwards refills nothing */
	assert_int_equal(form_limiter_take(l, "c|1.2.3.4", 3, 60000, t - 60000,
	    NULL), 0);
	/* no limit */
	assert_int_equal(form_limiter_take(l, "c|1.2.3.4", 0, 0, t, NULL), 1);
	assert_int_equal(form_limiter_count(l), 3);
	form_limiter_free(l);
	assert_null(form_limiter_new(0, key16));
}

static void
limiter_fixed_memory(void **state)
{
	struct form_limiter *l = form_limiter_new(64, key16);
	char key[64];
	int64_t t = 0;

	(void)state;
	/* the attacker's own key is used up ... */
	assert_int_equal(form_limiter_take(l, "f|10.0.0.1", 1, 60000, t, NULL),
	    1);
	assert_int_equal(form_limiter_take(l, "f|10.0.0.1", 1, 60000, t, NULL),
	    0);
	/* ... a real client stays active while a flood of distinct keys
	 * passes through: the table never grows past 64 */
	for (int i = 0; i < 100000; i++) {
		snprintf(key, sizeof(key), "f|192.0.%d.%d", i / 256 % 256,
		    i % 256);
		assert_int_equal(form_limiter_take(l, key, 2, 60000, t, NULL),
		    1);
		if (i % 32 == 0)
			assert_int_equal(form_limiter_take(l, "f|10.0.0.1", 1,
			    60000, t, NULL), 0);
		assert_true(form_limiter_count(l) <= 64);
	}
	assert_int_equal(form_limiter_count(l), 64);
	/* the most recent keys are remembered, the oldest forgotten */
	assert_int_equal(form_limiter_take(l, key, 2, 60000, t, NULL), 1);
	assert_int_equal(form_limiter_take(l, key, 2, 60000, t, NULL), 0);
	assert_int_equal(form_limiter_take(l, "f|192.0.0.0", 2, 60000, t,
	    NULL), 1);
	assert_int_equal(form_limiter_take(l, "f|192.0.0.0", 2, 60000, t,
	    NULL), 1);
	/* a key longer than the slot is cut, consistently */
	memset(key, 'k', sizeof(key) - 1);
	key[sizeof(key) - 1] = '\0';
	assert_int_equal(form_limiter_take(l, key, 1, 60000, t, NULL), 1);
	assert_int_equal(form_limiter_take(l, key, 1, 60000, t, NULL), 0);
	form_limiter_free(l);
	/* one slot */
	l = form_limiter_new(1, key16);
	assert_int_equal(form_limiter_take(l, "a", 1, 60000, t, NULL), 1);
	assert_int_equal(form_limiter_take(l, "b", 1, 60000, t, NULL), 1);
	assert_int_equal(form_limiter_take(l, "b", 1, 60000, t, NULL), 0);
	assert_int_equal(form_limiter_take(l, "a", 1, 60000, t, NULL), 1);
	assert_int_equal(form_limiter_count(l), 1);
	form_limiter_free(l);
}

static void
client_keys(void **state)
{
	char k[80];

	(void)state;
	form_client_key("192.0.2.7", k, sizeof(k));
	assert_string_equal(k, "192.0.2.7");
	form_client_key("2001:db8:1:2:3:4:5:6", k, sizeof(k));
	assert_string_equal(k, "2001:db8:1:2::/64");
	form_client_key("2001:db8:1:2:ffff::1", k, sizeof(k));
	assert_string_equal(k, "2001:db8:1:2::/64");
	form_client_key("::ffff:192.0.2.7", k, sizeof(k));
	assert_string_equal(k, "192.0.2.7");
	form_client_key("::1", k, sizeof(k));
	assert_string_equal(k, "::/64");
	form_client_key("unix", k, sizeof(k));
	assert_string_equal(k, "unix");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(full_form_loads),
		cmocka_unit_test(defaults_and_directory),
		cmocka_unit_test(errors_have_positions),
		cmocka_unit_test(lists_are_checked),
		cmocka_unit_test(missing_page_template),
		cmocka_unit_test(parse_rate),
		cmocka_unit_test(urlencoded_parses),
		cmocka_unit_test(urlencoded_malformed),
		cmocka_unit_test(multipart_parses),
		cmocka_unit_test(multipart_malformed),
		cmocka_unit_test(body_dispatch),
		cmocka_unit_test(leads_are_mapped),
		cmocka_unit_test(leads_are_checked),
		cmocka_unit_test(honeypot_catches_bots),
		cmocka_unit_test(page_data),
		cmocka_unit_test(page_renders),
		cmocka_unit_test(limiter_burst_and_refill),
		cmocka_unit_test(limiter_fixed_memory),
		cmocka_unit_test(client_keys),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
