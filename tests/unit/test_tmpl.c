/*
 * test_tmpl - unit tests for lib/tmpl.
 *
 * Runs every test of the Mustache spec files (MUSTACHE_SPEC_DIR, else
 * $TOP_SRCDIR/../shared/conformance/mustache) and checks what the spec does
 * not: error positions, escaping modes, value formatting, loading a
 * directory, the depth and output limits, and survival of random input.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sys/stat.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "buf.h"
#include "tmpl.h"

/* ---- The spec ---- */

static void
show(const char *label, const char *s, size_t n)
{
	json_t *j = json_stringn(s, n);
	char *d = j ? json_dumps(j, JSON_ENCODE_ANY) : NULL;

	print_message("#   %-9s %s\n", label, d ? d : "?");
	free(d);
	json_decref(j);
}

/* Run one spec test case; 0 if it passed. */
static int
spec_case(const char *file, json_t *tc)
{
	const char *name = json_string_value(json_object_get(tc, "name"));
	json_t *tpl = json_object_get(tc, "template");
	json_t *exp = json_object_get(tc, "expected");
	json_t *parts = json_object_get(tc, "partials");
	json_t *v;
	struct tmpl_error err;
	struct tmpl_set *set;
	struct tmpl *t = NULL;
	struct buf out;
	const char *k;
	int rc = -1;

	if (!name || !json_is_string(tpl) || !json_is_string(exp)) {
		print_message("# FAIL %s: malformed test case\n", file);
		return -1;
	}
	set = tmpl_set_new();
	assert_non_null(set);
	buf_init(&out, 0);
	json_object_foreach(parts, k, v) {
		if (tmpl_set_add(set, k, json_string_value(v),
		    json_string_length(v), &err) < 0) {
			print_message("# FAIL %s: %s: partial %s: %d:%d: %s\n",
			    file, name, k, err.line, err.col, err.msg);
			goto out;
		}
	}
	if (tmpl_compile(name, json_string_value(tpl), json_string_length(tpl),
	    &t, &err) < 0) {
		print_message("# FAIL %s: %s: %d:%d: %s\n", file, name,
		    err.line, err.col, err.msg);
		goto out;
	}
	if (tmpl_render(t, json_object_get(tc, "data"), set,
	    TMPL_ESCAPE_HTML, &out) < 0) {
		print_message("# FAIL %s: %s: render returned -1\n", file,
		    name);
		goto out;
	}
	if (out.len == json_string_length(exp) &&
	    memcmp(buf_str(&out), json_string_value(exp), out.len) == 0)
		rc = 0;
	else {
		print_message("# FAIL %s: %s\n", file, name);
		show("template:", json_string_value(tpl),
		    json_string_length(tpl));
		show("expected:", json_string_value(exp),
		    json_string_length(exp));
		show("got:", buf_str(&out), out.len);
	}
out:
	tmpl_free(t);
	tmpl_set_free(set);
	buf_free(&out);
	return rc;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
test_spec(void **state)
{
	char def[4096], path[4096 + 256], *files[64];
	const char *dir = getenv("MUSTACHE_SPEC_DIR"), *top;
	size_t nfiles = 0, i, len, j;
	int total = 0, failed = 0, fpass;
	struct dirent *de;
	json_error_t je;
	json_t *root, *tests;
	DIR *d;

	(void)state;
	if (!dir || !*dir) {
		top = getenv("TOP_SRCDIR");
		snprintf(def, sizeof(def), "%s/../shared/conformance/mustache",
		    top && *top ? top : ".");
		dir = def;
	}
	if (!(d = opendir(dir)))
		fail_msg("Mustache spec directory %s not found: set "
		    "MUSTACHE_SPEC_DIR or TOP_SRCDIR", dir);
	while ((de = readdir(d)) != NULL && nfiles < 64) {
		len = strlen(de->d_name);
		if (len > 5 && strcmp(de->d_name + len - 5, ".json") == 0)
			files[nfiles++] = strdup(de->d_name);
	}
	closedir(d);
	qsort(files, nfiles, sizeof(*files), cmp_str);
	for (i = 0; i < nfiles; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
		if (!(root = json_load_file(path, 0, &je)))
			fail_msg("%s:%d: %s", path, je.line, je.text);
		tests = json_object_get(root, "tests");
		assert_true(json_is_array(tests));
		fpass = 0;
		for (j = 0; j < json_array_size(tests); j++) {
			total++;
			if (spec_case(files[i], json_array_get(tests, j)) < 0)
				failed++;
			else
				fpass++;
		}
		print_message("# %-20s %d/%zu passed\n", files[i], fpass,
		    json_array_size(tests));
		json_decref(root);
		free(files[i]);
	}
	print_message("# spec: %d/%d passed in %zu files from %s\n",
	    total - failed, total, nfiles, dir);
	if (nfiles == 0)
		fail_msg("no *.json spec files in %s", dir);
	assert_int_equal(failed, 0);
}

/* ---- Helpers ---- */

/* Render src against JSON text `data` with esc; returns malloc'd output. */
static char *
render(const char *src, const char *data, enum tmpl_escape esc)
{
	struct tmpl_error err;
	struct buf out;
	json_t *j;

	j = json_loads(data, JSON_DECODE_ANY, NULL);
	assert_non_null(j);
	buf_init(&out, 0);
	if (tmpl_render_string(src, j, esc, &out, &err) < 0)
		fail_msg("render %s: %d:%d: %s", src, err.line, err.col,
		    err.msg);
	json_decref(j);
	return buf_steal(&out);
}

static void
check(const char *src, const char *data, enum tmpl_escape esc,
    const char *want)
{
	char *got = render(src, data, esc);

	assert_string_equal(got, want);
	free(got);
}

static void
check_error(const char *src, int line, int col, const char *msg)
{
	struct tmpl_error err;
	struct tmpl *t = NULL;

	memset(&err, 0, sizeof(err));
	assert_int_equal(tmpl_compile("mail/welcome", src, strlen(src), &t,
	    &err), -1);
	assert_null(t);
	assert_string_equal(err.file, "mail/welcome");
	if (strstr(err.msg, msg) == NULL)
		fail_msg("error for %s: '%s' lacks '%s'", src, err.msg, msg);
	assert_int_equal(err.line, line);
	assert_int_equal(err.col, col);
}

/* ---- Errors ---- */

static void
test_errors(void **state)
{
	struct tmpl_error err;
	struct tmpl *t = NULL;
	char *big;

	(void)state;
	check_error("Hi\n\n  {{#items}}\n{{name}}\n", 3, 3,
	    "unclosed section 'items' opened at 3:3");
	check_error("{{#a}}{{^b}}x", 1, 7,
	    "unclosed inverted section 'b' opened at 1:7");
	check_error("{{#a}}\n  x {{/b}}\n{{/a}}", 2, 5,
	    "mismatched closing tag 'b', expected 'a'");
	check_error("a\nbc {{name\n", 2, 4, "unclosed tag");
	check_error("a {{{name}}\n", 1, 3, "unclosed tag");
	check_error("x\n{{/a}}", 2, 1, "unexpected closing tag 'a'");
	check_error("{{=<% =}}", 1, 1, "invalid set-delimiter tag");
	check_error("{{=<% %>=}}\n<%a%> <%b", 2, 7, "unclosed tag");
	check_error("{{ }}", 1, 1, "empty tag name");
	check_error("  {{a b}}", 1, 3, "invalid tag name 'a b'");
	check_error("{{<p}}{{$b}}{{/p}}", 1, 13,
	    "mismatched closing tag 'p', expected 'b'");
	check_error("{{$b}}", 1, 1, "unclosed block 'b'");

	big = malloc(TMPL_MAX_SIZE + 1);
	assert_non_null(big);
	memset(big, 'x', TMPL_MAX_SIZE + 1);
	assert_int_equal(tmpl_compile("big", big, TMPL_MAX_SIZE + 1, &t,
	    &err), -1);
	assert_non_null(strstr(err.msg, "too large"));
	assert_int_equal(tmpl_compile("big", big, TMPL_MAX_SIZE, &t, &err), 0);
	tmpl_free(t);
	free(big);
	/* A NULL err is allowed. */
	assert_int_equal(tmpl_compile("x", "{{#a}}", 6, &t, NULL), -1);
}

/* ---- Escaping and values ---- */

static void
test_escaping(void **state)
{
	const char *data = "{\"x\": \"<a href=\\\"u\\\">Tom & Jerry's</a>\"}";

	(void)state;
	check("{{x}}", data, TMPL_ESCAPE_HTML,
	    "&lt;a href=&quot;u&quot;&gt;Tom &amp; Jerry&#39;s&lt;/a&gt;");
	check("{{x}}", data, TMPL_ESCAPE_NONE,
	    "<a href=\"u\">Tom & Jerry's</a>");
	check("{{{x}}}|{{&x}}", data, TMPL_ESCAPE_HTML,
	    "<a href=\"u\">Tom & Jerry's</a>|<a href=\"u\">Tom & Jerry's</a>");
	check("{{{x}}}", data, TMPL_ESCAPE_NONE,
	    "<a href=\"u\">Tom & Jerry's</a>");
	/* Template text itself is never escaped. */
	check("<b>&</b>{{x}}", "{\"x\": \"&\"}", TMPL_ESCAPE_HTML,
	    "<b>&</b>&amp;");
}

static void
test_values(void **state)
{
	(void)state;
	check("{{a}} {{b}} {{c}} {{d}} {{e}}|{{f}}|{{g}}",
	    "{\"a\": 1.210, \"b\": 85, \"c\": 0.1, \"d\": 1e21, \"e\": -2.0,"
	    " \"f\": null, \"g\": true}", TMPL_ESCAPE_NONE,
	    "1.21 85 0.1 1e+21 -2||true");
	check("{{o}}", "{\"o\": {\"k\": [1, \"<\"]}}", TMPL_ESCAPE_HTML,
	    "{&quot;k&quot;:[1,&quot;&lt;&quot;]}");
	/* Empty strings and 0 are truthy, as in the spec's reference. */
	check("{{#s}}S{{/s}}{{#z}}Z{{/z}}{{^n}}N{{/n}}",
	    "{\"s\": \"\", \"z\": 0, \"n\": []}", TMPL_ESCAPE_NONE, "SZN");
	/* Any JSON value may be the root. */
	check("{{.}}", "\"root\"", TMPL_ESCAPE_NONE, "root");
	check("{{#.}}[{{.}}]{{/.}}", "[1, 2]", TMPL_ESCAPE_NONE, "[1][2]");
	check("{{a.b.c}}|{{a.x.c}}", "{\"a\": {\"b\": {\"c\": \"deep\"}}}",
	    TMPL_ESCAPE_NONE, "deep|");
}

/* ---- Sets and directories ---- */

static void
write_file(const char *dir, const char *name, const char *text, size_t len)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static void
rm_rf(const char *path)
{
	char sub[4096];
	struct dirent *de;
	DIR *d;

	if ((d = opendir(path)) != NULL) {
		while ((de = readdir(d)) != NULL) {
			if (strcmp(de->d_name, ".") == 0 ||
			    strcmp(de->d_name, "..") == 0)
				continue;
			snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name);
			rm_rf(sub);
		}
		closedir(d);
		rmdir(path);
	} else
		unlink(path);
}

static void
test_load_dir(void **state)
{
	char dir[] = "/tmp/test_tmpl.XXXXXX", sub[4096], *big;
	const char *base = "<html>\n  <body>\n    {{$content}}\n"
	    "    default\n    {{/content}}\n  </body>\n</html>\n";
	const char *child = "{{<layouts/base}}\n{{$content}}\n"
	    "<p>Hello {{name}}</p>\n<p>Bye</p>\n{{/content}}\n"
	    "{{/layouts/base}}\n";
	struct tmpl_error err;
	struct tmpl_set *s;
	struct buf out;
	json_t *data;
	size_t n;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(sub, sizeof(sub), "%s/layouts", dir);
	assert_int_equal(mkdir(sub, 0700), 0);
	write_file(dir, "layouts/base.mustache", base, strlen(base));
	write_file(dir, "child.mustache", child, strlen(child));
	write_file(dir, "README.txt", "{{#not a template", 17);
	write_file(dir, ".hidden.mustache", "{{#x}}", 6);

	s = tmpl_set_new();
	assert_non_null(s);
	assert_int_equal(tmpl_set_add(s, "child", "old", 3, &err), 0);
	if (tmpl_set_load_dir(s, dir, &err) < 0)
		fail_msg("%s:%d:%d: %s", err.file, err.line, err.col, err.msg);
	assert_int_equal(tmpl_set_count(s), 2);
	assert_non_null(tmpl_set_get(s, "layouts/base"));
	assert_null(tmpl_set_get(s, "README"));

	data = json_pack("{s:s}", "name", "Ann & Bob");
	buf_init(&out, 0);
	assert_int_equal(tmpl_render(tmpl_set_get(s, "child"), data, s,
	    TMPL_ESCAPE_HTML, &out), 0);
	assert_string_equal(buf_str(&out), "<html>\n  <body>\n"
	    "    <p>Hello Ann &amp; Bob</p>\n    <p>Bye</p>\n"
	    "  </body>\n</html>\n");
	buf_free(&out);

	/* A bad file: reported with its path and position; nothing changes. */
	snprintf(sub, sizeof(sub), "%s/mail", dir);
	assert_int_equal(mkdir(sub, 0700), 0);
	write_file(dir, "mail/a.mustache", "fine", 4);
	write_file(dir, "mail/bad.mustache", "ok\n {{#x}}\n", 12);
	assert_int_equal(tmpl_set_load_dir(s, dir, &err), -1);
	n = strlen(err.file);
	assert_true(n > 17);
	assert_string_equal(err.file + n - 17, "mail/bad.mustache");
	assert_int_equal(err.line, 2);
	assert_int_equal(err.col, 2);
	assert_non_null(strstr(err.msg, "unclosed section 'x'"));
	assert_int_equal(tmpl_set_count(s), 2);
	assert_null(tmpl_set_get(s, "mail/a"));

	/* Too large. */
	write_file(dir, "mail/bad.mustache", "ok", 2);
	big = malloc(TMPL_MAX_SIZE + 1);
	assert_non_null(big);
	memset(big, 'x', TMPL_MAX_SIZE + 1);
	write_file(dir, "mail/big.mustache", big, TMPL_MAX_SIZE + 1);
	free(big);
	assert_int_equal(tmpl_set_load_dir(s, dir, &err), -1);
	assert_non_null(strstr(err.file, "mail/big.mustache"));
	assert_non_null(strstr(err.msg, "too large"));
	snprintf(sub, sizeof(sub), "%s/mail/big.mustache", dir);
	assert_int_equal(unlink(sub), 0);
	assert_int_equal(tmpl_set_load_dir(s, dir, &err), 0);
	assert_int_equal(tmpl_set_count(s), 4);
	assert_non_null(tmpl_set_get(s, "mail/a"));

	/* A failed add keeps the old template. */
	assert_int_equal(tmpl_set_add(s, "mail/a", "{{/x}}", 6, &err), -1);
	assert_non_null(tmpl_set_get(s, "mail/a"));

	snprintf(sub, sizeof(sub), "%s/missing", dir);
	assert_int_equal(tmpl_set_load_dir(s, sub, &err), -1);
	assert_string_equal(err.file, sub);

	json_decref(data);
	tmpl_set_free(s);
	rm_rf(dir);
}

/* ---- Limits ---- */

static void
test_depth_limit(void **state)
{
	struct tmpl_error err;
	struct tmpl_set *s;
	struct buf out;
	json_t *data;
	char *deep;
	size_t i;
	struct tmpl *t;

	(void)state;
	s = tmpl_set_new();
	assert_non_null(s);
	/* Recurses on the same object forever: must stop, not crash. */
	assert_int_equal(tmpl_set_add(s, "self", "x{{#.}}{{>self}}{{/.}}", 22,
	    &err), 0);
	assert_int_equal(tmpl_set_add(s, "loop", "{{>loop}}", 9, &err), 0);
	assert_int_equal(tmpl_set_add(s, "p", "{{<p}}{{/p}}", 12, &err), 0);
	data = json_pack("{s:i}", "a", 1);
	buf_init(&out, 0);
	assert_int_equal(tmpl_render(tmpl_set_get(s, "self"), data, s,
	    TMPL_ESCAPE_HTML, &out), -1);
	buf_reset(&out);
	assert_int_equal(tmpl_render(tmpl_set_get(s, "loop"), data, s,
	    TMPL_ESCAPE_HTML, &out), -1);
	buf_reset(&out);
	assert_int_equal(tmpl_render(tmpl_set_get(s, "p"), data, s,
	    TMPL_ESCAPE_HTML, &out), -1);
	buf_free(&out);
	json_decref(data);
	tmpl_set_free(s);

	/* 2^40 iterations without output: stopped by TMPL_MAX_STEPS. */
	deep = malloc(12 * 40 + 1);
	assert_non_null(deep);
	for (i = 0; i < 40; i++) {
		memcpy(deep + 6 * i, "{{#a}}", 6);
		memcpy(deep + 6 * (40 + i), "{{/a}}", 6);
	}
	data = json_pack("{s:[i,i]}", "a", 1, 2);
	assert_int_equal(tmpl_compile("slow", deep, 12 * 40, &t, &err), 0);
	buf_init(&out, 0);
	assert_int_equal(tmpl_render(t, data, NULL, TMPL_ESCAPE_HTML, &out),
	    -1);
	buf_free(&out);
	tmpl_free(t);
	json_decref(data);
	free(deep);

	/* Sections nested too deeply are a compile error. */
	deep = malloc(8 * (TMPL_MAX_DEPTH + 1) + 1);
	assert_non_null(deep);
	for (i = 0; i <= TMPL_MAX_DEPTH; i++)
		memcpy(deep + 6 * i, "{{#a}}", 6);
	assert_int_equal(tmpl_compile("deep", deep, 6 * (TMPL_MAX_DEPTH + 1),
	    &t, &err), -1);
	assert_non_null(strstr(err.msg, "nested deeper"));
	free(deep);
}

static void
test_output_limit(void **state)
{
	struct tmpl_error err;
	struct buf out;
	json_t *data, *items;
	int i;

	(void)state;
	items = json_array();
	for (i = 0; i < 100; i++)
		json_array_append_new(items, json_integer(i));
	data = json_pack("{s:o}", "items", items);
	buf_init(&out, 10);
	assert_int_equal(tmpl_render_string("{{#items}}{{.}},{{/items}}",
	    data, TMPL_ESCAPE_HTML, &out, &err), -1);
	assert_true(out.overflow);
	assert_true(out.len <= 10);
	buf_free(&out);
	/* Exactly at the limit is fine. */
	buf_init(&out, 4);
	assert_int_equal(tmpl_render_string("ab{{x}}", json_object_get(data,
	    "items"), TMPL_ESCAPE_HTML, &out, &err), 0);
	assert_string_equal(buf_str(&out), "ab");
	buf_free(&out);
	json_decref(data);
}

/* ---- Inheritance and partial details beyond the spec ---- */

static void
add(struct tmpl_set *s, const char *name, const char *src)
{
	struct tmpl_error err;

	if (tmpl_set_add(s, name, src, strlen(src), &err) < 0)
		fail_msg("%s: %d:%d: %s", name, err.line, err.col, err.msg);
}

static void
test_partials(void **state)
{
	struct tmpl_set *s;
	struct buf out;
	json_t *data;

	(void)state;
	s = tmpl_set_new();
	assert_non_null(s);
	/* Nested standalone partials accumulate indentation. */
	add(s, "outer", "<ul>\n  {{>inner}}\n</ul>\n");
	add(s, "inner", "{{#items}}\n<li>{{.}}</li>\n{{/items}}\n");
	add(s, "page", "<body>\n  {{>outer}}\n</body>\n");
	data = json_pack("{s:[s,s]}", "items", "a", "b");
	buf_init(&out, 0);
	assert_int_equal(tmpl_render(tmpl_set_get(s, "page"), data, s,
	    TMPL_ESCAPE_HTML, &out), 0);
	assert_string_equal(buf_str(&out), "<body>\n  <ul>\n    <li>a</li>\n"
	    "    <li>b</li>\n  </ul>\n</body>\n");
	buf_free(&out);
	/* An override holding a block of its own name does not recurse. */
	add(s, "base", "[{{$a}}default{{/a}}]");
	add(s, "odd", "{{<base}}{{$a}}A{{$a}}inner{{/a}}{{/a}}{{/base}}");
	buf_init(&out, 0);
	assert_int_equal(tmpl_render(tmpl_set_get(s, "odd"), data, s,
	    TMPL_ESCAPE_HTML, &out), 0);
	assert_string_equal(buf_str(&out), "[Ainner]");
	buf_free(&out);
	/* NULL set: partials and parents render as empty. */
	buf_init(&out, 0);
	assert_int_equal(tmpl_render(tmpl_set_get(s, "page"), data, NULL,
	    TMPL_ESCAPE_HTML, &out), 0);
	assert_string_equal(buf_str(&out), "<body>\n</body>\n");
	buf_free(&out);
	json_decref(data);
	tmpl_set_free(s);
}

/* ---- Random input must never crash (the fuzzer does this better). ---- */

static void
test_random(void **state)
{
	static const char *atoms[] = { "{{", "}}", "{{{", "}}}", "#", "^",
	    "/", ">", "<", "$", "&", "!", "=", ".", "a", "b", "p", " ", "\n",
	    "\r\n", "\t", "x", "{{=| |=}}", "|", "{{#a}}", "{{/a}}", "{{>p}}",
	    "{{<p}}", "{{/p}}", "{{$b}}", "{{/b}}", "{{.}}", "{{a.b}}", "\0" };
	const size_t natoms = sizeof(atoms) / sizeof(atoms[0]);
	struct tmpl_set *s;
	struct tmpl *t;
	struct buf out;
	const char *a;
	char src[256];
	unsigned seed = 12345;
	size_t len, alen;
	json_t *data;
	int i, j, n;

	(void)state;
	data = json_loads("{\"a\": [{\"b\": 1}, {\"b\": \"<\"}], "
	    "\"b\": true, \"p\": {\"a\": false}}", 0, NULL);
	assert_non_null(data);
	for (i = 0; i < 20000; i++) {
		s = tmpl_set_new();
		assert_non_null(s);
		for (j = 0; j < 2; j++) {
			len = 0;
			seed = seed * 1103515245 + 12345;
			n = (int)((seed >> 16) % 24);
			while (n-- > 0) {
				seed = seed * 1103515245 + 12345;
				a = atoms[(seed >> 16) % natoms];
				alen = *a ? strlen(a) : 1;
				if (len + alen > sizeof(src))
					break;
				memcpy(src + len, a, alen);
				len += alen;
			}
			if (j == 0)
				tmpl_set_add(s, "p", src, len, NULL);
		}
		if (tmpl_compile("r", src, len, &t, NULL) == 0) {
			buf_init(&out, 1 << 16);
			tmpl_render(t, data, s, TMPL_ESCAPE_HTML, &out);
			buf_free(&out);
			tmpl_free(t);
		}
		tmpl_set_free(s);
	}
	json_decref(data);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_spec),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_escaping),
		cmocka_unit_test(test_values),
		cmocka_unit_test(test_load_dir),
		cmocka_unit_test(test_depth_limit),
		cmocka_unit_test(test_output_limit),
		cmocka_unit_test(test_partials),
		cmocka_unit_test(test_random),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
