/*
 * test_htmlrw - unit tests for lib/htmlrw.
 *
 * Link rewriting (quoting styles, entities, data-notrack, links that must
 * stay untouched, link text and tags, comments and raw text), the open
 * pixel, entity decoding (every named entity against an oracle file made
 * from Python's html.entities), HTML to text on small cases and on golden
 * files ($TOP_SRCDIR/tests/data/htmlrw/NAME.html -> NAME.txt), output
 * limits, time on large hostile input, and survival of random input.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "htmlrw.h"

/* ---- helpers ---- */

#define MAXLINKS 16

struct seen {
	int n;
	int ret;                        /* what the callback returns */
	int abort_at;                   /* return -1 at this index, or -1 */
	char url[MAXLINKS][256];
	char text[MAXLINKS][256];
	char tag[MAXLINKS][64];         /* "(null)" for NULL */
	char elem[MAXLINKS][8];
};

static int
record(void *arg, const struct htmlrw_link *l, struct buf *out)
{
	struct seen *s = arg;

	assert_int_equal(l->index, s->n);
	assert_int_equal(strlen(l->url), l->url_len);
	assert_int_equal(strlen(l->text), l->text_len);
	assert_true(l->text_len <= HTMLRW_LINK_TEXT_MAX);
	if (s->n < MAXLINKS) {
		snprintf(s->url[s->n], sizeof(s->url[0]), "%s", l->url);
		snprintf(s->text[s->n], sizeof(s->text[0]), "%s", l->text);
		snprintf(s->tag[s->n], sizeof(s->tag[0]), "%s",
		    l->tag ? l->tag : "(null)");
		snprintf(s->elem[s->n], sizeof(s->elem[0]), "%s", l->element);
	}
	if (s->n == s->abort_at)
		return -1;
	buf_printf(out, "https://t.example/c/%d?a=1&b=\"2\"", s->n++);
	return s->ret;
}

/* Rewrite html with record(); returns the output (caller frees). */
static char *
rewrite(const char *html, const char *pixel, struct seen *s)
{
	struct buf out = BUF_INIT;

	memset(s, 0, sizeof(*s));
	s->abort_at = -1;
	assert_int_equal(htmlrw_rewrite(html, strlen(html), record, s, pixel,
	    &out), 0);
	return buf_steal(&out);
}

static char *
to_text(const char *html)
{
	struct buf out = BUF_INIT;

	assert_int_equal(htmlrw_to_text(html, strlen(html), &out), 0);
	return buf_steal(&out);
}

static void
check_text(const char *html, const char *want)
{
	char *got = to_text(html);

	if (strcmp(got, want) != 0) {
		print_message("html: %s\nwant:\n%s---\ngot:\n%s---\n", html,
		    want, got);
		fail();
	}
	free(got);
}

static void
check_unchanged(const char *html)
{
	struct seen s;
	char *out = rewrite(html, NULL, &s);

	assert_string_equal(out, html);
	assert_int_equal(s.n, 0);
	free(out);
}

static char *
read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	struct buf b = BUF_INIT;
	char chunk[4096];
	size_t n;

	if (!f)
		return NULL;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		buf_append(&b, chunk, n);
	fclose(f);
	*len = b.len;
	return buf_steal(&b);
}

static void
data_path(char *path, size_t size, const char *name)
{
	const char *top = getenv("TOP_SRCDIR");

	snprintf(path, size, "%s/tests/data/htmlrw/%s",
	    top && *top ? top : ".", name);
}

/* ---- rewriting ---- */

static void
test_rewrite_quoting(void **state)
{
	struct seen s;
	char *out;

	(void)state;
	out = rewrite("<p><a href=\"http://a.example/1\">One</a> "
	    "<a href='https://a.example/2'>Two</a> "
	    "<a class=x href=https://a.example/3 id=y>Three</a> "
	    "<A HREF = \" \thttps://a.example/4\n \" >Four</A> "
	    "<a href=\"HTTPS://A.example/5\" target=_blank>Five</a></p>",
	    NULL, &s);
	assert_int_equal(s.n, 5);
	assert_string_equal(s.url[0], "http://a.example/1");
	assert_string_equal(s.url[1], "https://a.example/2");
	assert_string_equal(s.url[2], "https://a.example/3");
	assert_string_equal(s.url[3], "https://a.example/4");
	assert_string_equal(s.url[4], "HTTPS://A.example/5");
	assert_string_equal(s.text[3], "Four");
	assert_string_equal(out, "<p>"
	    "<a href=\"https://t.example/c/0?a=1&amp;b=&quot;2&quot;\">One</a> "
	    "<a href=\"https://t.example/c/1?a=1&amp;b=&quot;2&quot;\">Two</a> "
	    "<a class=x href=\"https://t.example/c/2?a=1&amp;b=&quot;2&quot;\" "
	    "id=y>Three</a> "
	    "<A HREF = \"https://t.example/c/3?a=1&amp;b=&quot;2&quot;\" >"
	    "Four</A> "
	    "<a href=\"https://t.example/c/4?a=1&amp;b=&quot;2&quot;\" "
	    "target=_blank>Five</a></p>");
	free(out);
}

static void
test_rewrite_entities(void **state)
{
	struct seen s;
	char *out;

	(void)state;
	out = rewrite("<a href=\"https://a.example/?x=1&amp;y=2&#38;z=3&copy=4"
	    "&lang=fr\">Tom &amp; Jerry&nbsp;&mdash; now</a>", NULL, &s);
	assert_int_equal(s.n, 1);
	/* &copy= and &lang stay: attribute rule for legacy names */
	assert_string_equal(s.url[0],
	    "https://a.example/?x=1&y=2&z=3&copy=4&lang=fr");
	assert_string_equal(s.text[0], "Tom & Jerry \xe2\x80\x94 now");
	assert_string_equal(out, "<a href=\"https://t.example/c/0?a=1&amp;"
	    "b=&quot;2&quot;\">Tom &amp; Jerry&nbsp;&mdash; now</a>");
	free(out);
}

static void
test_rewrite_notrack(void **state)
{
	struct seen s;
	char *out;

	(void)state;
	out = rewrite("<a data-notrack href=\"https://a.example/\">x</a>"
	    "<a href=\"https://b.example/\" DATA-NOTRACK=\"1\" class=c>y</a>"
	    "<a href=\"https://c.example/\">z</a>", NULL, &s);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.url[0], "https://c.example/");
	assert_string_equal(out, "<a href=\"https://a.example/\">x</a>"
	    "<a href=\"https://b.example/\" class=c>y</a>"
	    "<a href=\"https://t.example/c/0?a=1&amp;b=&quot;2&quot;\">z</a>");
	free(out);
}

static void
test_rewrite_untouched(void **state)
{
	(void)state;
	check_unchanged("<a href=\"mailto:sales@a.example?subject=Hi&amp;x\">"
	    "mail</a> <a href=\"tel:+15550100\">call</a> "
	    "<a href=\"sms:+15550100\">text</a> <a href=\"#top\">top</a> "
	    "<a href=\"/relative/path\">rel</a> <a href=\"page.html\">rel</a> "
	    "<a href=\"javascript:alert(1)\">js</a> <a href=\"\">empty</a> "
	    "<a href>none</a> <a name=\"x\">anchor</a> "
	    "<a href=\"ftp://a.example/f\">ftp</a> "
	    "<a href=\"httpx://a.example/\">no</a> "
	    "<link href=\"https://a.example/style.css\" rel=stylesheet>"
	    "<img src=\"https://a.example/i.png\">"
	    "<abbr href=\"https://a.example/\">abbr</abbr>");
	/* Outside <a> and <area>, comments, raw text, cut-off tags. */
	check_unchanged("<!-- <a href=\"https://a.example/1\">c</a> -->"
	    "<!--[if mso]><a href=\"https://a.example/2\">mso</a>"
	    "<![endif]-->"
	    "<script>document.write('<a href=\"https://a.example/3\">');"
	    "</script>"
	    "<style>a[href=\"https://a.example/4\"] { }</style>"
	    "<textarea><a href=\"https://a.example/5\"></textarea>"
	    "<title><a href=\"https://a.example/6\"></title>"
	    "<![CDATA[<a href=\"https://a.example/7\">]]>"
	    "<? <a href=\"https://a.example/8\"> ?>"
	    "<a href=\"https://a.example/9\"");
	check_unchanged("<a title='unterminated href=\"https://a.example/\">");
	check_unchanged("");
	check_unchanged("plain text, no tags < > & at all <3");
}

static void
test_rewrite_comments(void **state)
{
	struct seen s;
	char *out;

	(void)state;
	/* <!--> and <!---> are whole comments; a '>' inside a quoted value
	 * does not end the tag; </script > ends the script. */
	out = rewrite("<!--><a href=\"https://a.example/1\">1</a>"
	    "<!---><a href=\"https://a.example/2\">2</a>"
	    "<!-- x --!> still comment --><a href=\"https://a.example/3\" "
	    "title=\"a > b\">3</a>"
	    "<SCRIPT>x = '</scriptx>'; <a href=\"https://no.example\">"
	    "</script ><a href=\"https://a.example/4\">4</a>", NULL, &s);
	assert_int_equal(s.n, 4);
	assert_string_equal(s.url[0], "https://a.example/1");
	assert_string_equal(s.url[1], "https://a.example/2");
	assert_string_equal(s.url[2], "https://a.example/3");
	assert_string_equal(s.url[3], "https://a.example/4");
	assert_non_null(strstr(out, "title=\"a > b\">3</a>"));
	assert_non_null(strstr(out, "<a href=\"https://no.example\">"));
	free(out);
}

static void
test_rewrite_text_and_tags(void **state)
{
	char big[2000], want[HTMLRW_LINK_TEXT_MAX + 1];
	struct seen s;
	char *out;
	int i;

	(void)state;
	out = rewrite("<a href=\"https://a.example/1\" data-tag=\"pricing\">"
	    "\n  <b>See</b>   our<br>new\t<span>pri</span>ces "
	    "<img src=x alt=\"(chart &amp; table)\"><!-- hidden --> </a>"
	    "<a href=\"https://a.example/2\" data-link-tag=\"demo\">"
	    "<img src=\"logo.png\"></a>"
	    "<a href=\"https://a.example/3\" data-link-tag=\"b\" "
	    "data-tag=\"a\">"
	    "x</a>"
	    "<map><area shape=rect href=\"https://a.example/4\" "
	    "alt=\" Area  one \" data-tag=\"map\"></map>"
	    "<a href=\"https://a.example/5\">unclosed <a href=\"https://"
	    "a.example/6\">second</a>", NULL, &s);
	assert_int_equal(s.n, 6);
	assert_string_equal(s.text[0], "See our new prices (chart & table)");
	assert_string_equal(s.tag[0], "pricing");
	assert_string_equal(s.elem[0], "a");
	assert_string_equal(s.text[1], "");
	assert_string_equal(s.tag[1], "demo");
	assert_string_equal(s.tag[2], "a");
	assert_string_equal(s.text[3], "Area one");
	assert_string_equal(s.tag[3], "map");
	assert_string_equal(s.elem[3], "area");
	assert_string_equal(s.text[4], "unclosed");
	assert_string_equal(s.tag[4], "(null)");
	assert_string_equal(s.text[5], "second");
	assert_non_null(strstr(out, "<area shape=rect href=\"https://t.example"
	    "/c/3?a=1&amp;b=&quot;2&quot;\" alt=\" Area  one \""));
	free(out);

	/* Long text is cut at a character boundary. */
	strcpy(big, "<a href=\"http://a.example/\">");
	for (i = 0; i < 150; i++)
		strcat(big, "\xc3\xa9");        /* é, 2 bytes */
	strcat(big, "</a>");
	out = rewrite(big, NULL, &s);
	for (i = 0; i < HTMLRW_LINK_TEXT_MAX / 2; i++)
		memcpy(want + 2 * i, "\xc3\xa9", 2);
	want[HTMLRW_LINK_TEXT_MAX / 2 * 2] = '\0';
	assert_string_equal(s.text[0], want);
	free(out);
}

static void
test_rewrite_return_codes(void **state)
{
	const char *html = "<a href=\"https://a.example/\" data-notrack>x</a>"
	    "<a href=\"https://b.example/\">y</a>";
	struct buf out = BUF_INIT;
	struct seen s;
	char *o;

	(void)state;
	memset(&s, 0, sizeof(s));
	s.ret = 1;                      /* leave every link */
	s.abort_at = -1;
	assert_int_equal(htmlrw_rewrite(html, strlen(html), record, &s, NULL,
	    &out), 0);
	assert_int_equal(s.n, 1);
	assert_string_equal(buf_str(&out),
	    "<a href=\"https://a.example/\">x</a>"
	    "<a href=\"https://b.example/\">y</a>");
	buf_reset(&out);

	s.n = 0;
	s.abort_at = 0;
	assert_int_equal(htmlrw_rewrite(html, strlen(html), record, &s, NULL,
	    &out), -1);
	buf_reset(&out);

	/* fn NULL: nothing rewritten, data-notrack still removed. */
	assert_int_equal(htmlrw_rewrite(html, strlen(html), NULL, NULL, NULL,
	    &out), 0);
	assert_string_equal(buf_str(&out),
	    "<a href=\"https://a.example/\">x</a>"
	    "<a href=\"https://b.example/\">y</a>");
	buf_free(&out);

	/* Appends to what out holds. */
	buf_puts(&out, "head:");
	assert_int_equal(htmlrw_rewrite("<p>", 3, NULL, NULL, "P", &out), 0);
	assert_string_equal(buf_str(&out), "head:<p><img src=\"P\" width=\"1\" "
	    "height=\"1\" alt=\"\" style=\"display:block;border:0;width:1px;"
	    "height:1px\" />");
	buf_free(&out);
	o = rewrite("x", NULL, &s);
	assert_string_equal(o, "x");
	free(o);
}

static void
test_rewrite_limit(void **state)
{
	const char *html = "<p>Hello <a href=\"https://a.example/\">there</a>"
	    "</p></body>";
	struct buf out;
	struct seen s;

	(void)state;
	memset(&s, 0, sizeof(s));
	s.abort_at = -1;
	buf_init(&out, 20);
	assert_int_equal(htmlrw_rewrite(html, strlen(html), record, &s, "px",
	    &out), -1);
	assert_true(out.overflow);
	buf_free(&out);
	buf_init(&out, strlen(html));   /* fits, but not with the pixel */
	assert_int_equal(htmlrw_rewrite(html, strlen(html), NULL, NULL, "px",
	    &out), -1);
	buf_free(&out);
	buf_init(&out, 8);
	assert_int_equal(htmlrw_to_text(html, strlen(html), &out), -1);
	buf_free(&out);
}

/* ---- the pixel ---- */

#define PIXEL(u) "<img src=\"" u "\" width=\"1\" height=\"1\" alt=\"\" " \
	"style=\"display:block;border:0;width:1px;height:1px\" />"

static void
test_pixel(void **state)
{
	struct seen s;
	char *out;

	(void)state;
	out = rewrite("<html><body><p>Hi</p></body></html>\n",
	    "https://t.example/o/abc.gif?a=1&b=2", &s);
	assert_string_equal(out, "<html><body><p>Hi</p>"
	    PIXEL("https://t.example/o/abc.gif?a=1&amp;b=2")
	    "</body></html>\n");
	free(out);
	out = rewrite("<BODY><p>Hi</p></BODY >", "P", &s);
	assert_string_equal(out, "<BODY><p>Hi</p>" PIXEL("P") "</BODY >");
	free(out);
	out = rewrite("<p>Fragment only</p>", "P", &s);
	assert_string_equal(out, "<p>Fragment only</p>" PIXEL("P"));
	free(out);
	/* Not in comments or scripts; before the last real </body>. */
	out = rewrite("<body>a</body>b<!-- </body> --><script>'</body>'"
	    "</script></body>c", "P", &s);
	assert_string_equal(out, "<body>a</body>b<!-- </body> --><script>"
	    "'</body>'</script>" PIXEL("P") "</body>c");
	free(out);
	out = rewrite("", "P", &s);
	assert_string_equal(out, PIXEL("P"));
	free(out);
}

/* ---- entities and escaping ---- */

static void
check_decode(const char *in, const char *want)
{
	struct buf out = BUF_INIT;

	assert_int_equal(htmlrw_decode_entities(in, strlen(in), &out), 0);
	if (strcmp(buf_str(&out), want) != 0)
		fail_msg("decode(%s) = \"%s\", want \"%s\"", in, buf_str(&out),
		    want);
	buf_free(&out);
}

static void
test_entities(void **state)
{
	char path[4096], *data, *line, *tab, *next, in[64];
	size_t len;
	int n = 0;

	(void)state;
	check_decode("&nbsp;&amp;&lt;&gt;&quot;&apos;&copy;&reg;",
	    "\xc2\xa0&<>\"'\xc2\xa9\xc2\xae");
	check_decode("&mdash;&ndash;&hellip;&rsquo;&lsquo;&ldquo;&rdquo;",
	    "\xe2\x80\x94\xe2\x80\x93\xe2\x80\xa6\xe2\x80\x99\xe2\x80\x98"
	    "\xe2\x80\x9c\xe2\x80\x9d");
	check_decode("&euro;&pound;&trade;&bull;&middot;",
	    "\xe2\x82\xac\xc2\xa3\xe2\x84\xa2\xe2\x80\xa2\xc2\xb7");
	check_decode("&#65;&#x42;&#X43;&#0068&#128512;&#x1F600;",
	    "ABCD\xf0\x9f\x98\x80\xf0\x9f\x98\x80");
	check_decode("&#150;&#146;&#128;",
	    "\xe2\x80\x93\xe2\x80\x99\xe2\x82\xac");
	check_decode("&#0;&#xD800;&#1114112;&#99999999999999999999;",
	    "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
	check_decode("&bogus; &; & &# &#; &#x; &#xG; &&amp;", "&bogus; &; & "
	    "&# &#; &#x; &#xG; &&");
	check_decode("&copy 2024 &amp &ltx &notit; AT&T", "\xc2\xa9 2024 & <x "
	    "\xc2\xac" "it; AT&T");
	check_decode("&Amp; &nbspx &NBSP;", "&Amp; \xc2\xa0x &NBSP;");
	check_decode("tail &", "tail &");
	check_decode("", "");

	/* Every name in the oracle: "name<TAB>value" lines. */
	data_path(path, sizeof(path), "entities.tsv");
	if (!(data = read_file(path, &len)))
		fail_msg("%s not found: set TOP_SRCDIR", path);
	for (line = data; *line; line = next) {
		if (!(next = strchr(line, '\n')))
			next = line + strlen(line);
		else
			*next++ = '\0';
		if (!(tab = strchr(line, '\t')))
			continue;
		*tab = '\0';
		snprintf(in, sizeof(in), "&%s;", line);
		check_decode(in, tab + 1);
		n++;
	}
	assert_true(n >= 130);
	free(data);
}

static void
test_escape(void **state)
{
	struct buf out = BUF_INIT;

	(void)state;
	assert_int_equal(htmlrw_escape("a&b<c>d\"e'f\xc3\xa9", 13, &out), 0);
	assert_string_equal(buf_str(&out),
	    "a&amp;b&lt;c&gt;d&quot;e&#39;f\xc3\xa9");
	buf_reset(&out);
	assert_int_equal(htmlrw_escape(NULL, 0, &out), 0);
	assert_int_equal(htmlrw_escape("x\0<", 3, &out), 0);
	assert_int_equal(out.len, 6);
	assert_memory_equal(out.data, "x\0&lt;", 6);
	buf_free(&out);
}

/* ---- HTML to text ---- */

static void
test_text_blocks(void **state)
{
	(void)state;
	check_text("", "");
	check_text("   \n  ", "");
	check_text("Hello", "Hello\n");
	check_text("<p>One</p><p>Two</p>\n\n<p>Three</p>",
	    "One\n\nTwo\n\nThree\n");
	check_text("<div>a</div><div>b</div><div><br></div><div>c</div>",
	    "a\nb\n\nc\n");
	check_text("a<br>b<br><br>c<br><br><br><br>d<br>",
	    "a\nb\n\nc\n\nd\n");
	check_text("<p>  lots   of\n\n white\tspace &nbsp; here  </p>",
	    "lots of white space here\n");
	check_text("Hel<b>lo</b> wor<i>ld</i>", "Hello world\n");
	check_text("<table><tr><td>Name:</td><td>Jane</td></tr>"
	    "<tr><th>Phone:</th><td>555</td></tr></table>",
	    "Name: Jane\nPhone: 555\n");
	check_text("<table><tr><td>A<br>B</td><td>C</td></tr></table>x",
	    "A\nB\n\nC\nx\n");
	check_text("<h1>Title</h1><h2>Sub heading</h2><h3>Small</h3>text",
	    "Title\n=====\n\nSub heading\n-----------\n\nSmall\n\ntext\n");
	check_text("<h1></h1><h2> <img src=x> </h2>x", "x\n");
	check_text("a<hr>b", "a\n\n" "--------------------------------------"
	    "--------------------------------------\n\nb\n");
	check_text("<pre>  x = 1;\n\n\n\n    y = 2;   \n</pre>after",
	    "  x = 1;\n\n    y = 2;\n\nafter\n");
	/* a blank <pre> line leaves no width behind: the next line is
	 * full at 76 columns, not 75 */
	check_text("<pre> </pre><p>abcd abc abc abc abc abc abc abc abc abc "
	    "abc abc abc abc abc abc abc abc abc</p>", "abcd abc abc abc abc "
	    "abc abc abc abc abc abc abc abc abc abc abc abc abc abc\n");
	check_text("<blockquote><p>q1</p><p>q2</p><blockquote>deep"
	    "</blockquote></blockquote>out",
	    "> q1\n>\n> q2\n>\n> > deep\n\nout\n");
}

static void
test_text_lists(void **state)
{
	(void)state;
	check_text("<p>Intro</p><ul><li>a</li><li>b<ul><li>b1</li></ul></li>"
	    "<li>c</li></ul><p>After</p>",
	    "Intro\n\n- a\n- b\n  - b1\n- c\n\nAfter\n");
	check_text("<ol><li>one<li>two<li><p>three</p><p>more</p></ol>",
	    "1. one\n2. two\n3. three\n\n   more\n");
	check_text("<ol start=\"7\"><li>seven</li><li>eight</li></ol>",
	    "7. seven\n8. eight\n");
	check_text("<li>stray item</li>", "- stray item\n");
	check_text("<ul><li>This item is long enough that it has to wrap "
	    "onto a second line, which is indented.</li></ul>",
	    "- This item is long enough that it has to wrap onto a second "
	    "line, which is\n  indented.\n");
	check_text("</ul></ol></li>x", "x\n");
}

static void
test_text_links(void **state)
{
	(void)state;
	check_text("<a href=\"https://a.example/x?a=1&amp;b=2\">Click "
	    "here</a>.", "Click here [1].\n\nLinks:\n"
	    "[1] https://a.example/x?a=1&b=2\n");
	check_text("<a href=\"https://a.example/\">https://a.example/</a> "
	    "<a href=\"https://a.example/\">a.example</a> "
	    "<a href=\"mailto:x@a.example\">x@a.example</a> "
	    "<a href=\"#top\">Top</a> <a href=\"javascript:void(0)\">JS</a>",
	    "https://a.example/ a.example x@a.example Top JS\n");
	check_text("<a href=\"https://a.example/1\">A</a> "
	    "<a href=\"https://a.example/2\">B</a> "
	    "<a href=\"https://a.example/1\">A again</a> "
	    "<a href=\"mailto:x@a.example?subject=Hi\">Mail us</a> "
	    "<a href=\"https://a.example/3\"><img src=x alt=\"\"></a>",
	    "A [1] B [2] A again [1] Mail us [3] [4]\n\nLinks:\n"
	    "[1] https://a.example/1\n[2] https://a.example/2\n"
	    "[3] mailto:x@a.example?subject=Hi\n[4] https://a.example/3\n");
	check_text("<a href=\"https://a.example/\"><p>Block link</p></a>"
	    "<p>next</p>", "Block link [1]\n\nnext\n\nLinks:\n"
	    "[1] https://a.example/\n");
	check_text("<a href=\"https://a.example/\"><img src=x "
	    "alt=\"Logo\"></a>Welcome", "Logo [1] Welcome\n\nLinks:\n"
	    "[1] https://a.example/\n");
}

static void
test_text_hidden(void **state)
{
	(void)state;
	check_text("<html><head><title>T</title><style>p{}</style>"
	    "<script>var x = '<p>no</p>';</script></head>"
	    "<body><div style=\"display:none;max-height:0\">preheader "
	    "<div>nested</div> still hidden</div>"
	    "<span style=\"DISPLAY : None !important\">x</span>"
	    "<p hidden>h</p><template><p>t</p></template>"
	    "<div style=\"display:block\">shown</div>"
	    "<img src=x alt=\"gone\" style=\"display:none\">"
	    "<div style=\"mso-hide:all; display: nonesuch\">kept</div>"
	    "</body></html>", "shown\nkept\n");
	/* An unclosed hidden <p> ends where the next block starts; a
	 * <head> without </head> ends at the first body element. */
	check_text("<p style=\"display:none\">pre<div>body</div>",
	    "body\n");
	check_text("<head><meta charset=utf-8><title>x</title><p>body",
	    "body\n");
	check_text("<!-- comment --><![CDATA[x]]><?php echo 1 ?>text",
	    "text\n");
	/* Every style attribute counts (found by the fuzzer). */
	check_text("<div style=\"color: red; font-family: Arial\" "
	    "style=\"display:none\">x</div><div style=a style=b>y</div>",
	    "y\n");
}

static void
test_text_entities_unicode(void **state)
{
	char html[4096], *out, *nl;
	int i;

	(void)state;
	check_text("<p>&copy; 2024 &mdash; 5&nbsp;&euro; &lt;b&gt; &bogus; "
	    "AT&amp;T soft&shy;hyphen zero&#8203;width</p>",
	    "\xc2\xa9 2024 \xe2\x80\x94 5 \xe2\x82\xac <b> &bogus; AT&T "
	    "softhyphen zerowidth\n");
	/* Wrapping counts code points: two words of 37 two-byte letters
	 * fit on a line (75), a third does not; nor do two of 38 (77). */
	for (int w = 37; w <= 38; w++) {
		strcpy(html, "<p>");
		for (i = 0; i < 3 * w; i++)
			strcat(html, i % w == w - 1 ? "\xc3\xa9 " : "\xc3\xa9");
		out = to_text(html);
		nl = strchr(out, '\n');
		assert_int_equal(nl - out, w == 37 ? 2 * w * 2 + 1 : w * 2);
		free(out);
	}
	/* A word longer than a line stays whole on its own line. */
	check_text("<p>short https://a.example/a-very-long-path/that/goes/on/"
	    "and/on/and/on/forever/and/ever/index.html end</p>",
	    "short\nhttps://a.example/a-very-long-path/that/goes/on/and/on/and/"
	    "on/forever/and/ever/index.html\nend\n");
	/* CJK breaks between characters, never before 。 or after 「. */
	strcpy(html, "<p>");
	for (i = 0; i < 25; i++)
		strcat(html, "\xe6\x97\xa5\xe6\x9c\xac");       /* 日本 */
	strcat(html, "\xe3\x80\x82\xe3\x80\x8c\xe8\xaa\x9e\xe3\x80\x8d</p>");
	out = to_text(html);
	/* 50 + 。 = 51; 「語」 + ... all fit in 76: one line */
	assert_int_equal(strchr(out, '\n') - out, 54 * 3);
	free(out);
	strcpy(html, "<p>");
	for (i = 0; i < 38; i++)
		strcat(html, "\xe6\x97\xa5\xe6\x9c\xac");       /* 76 chars */
	strcat(html, "\xe3\x80\x82x</p>");
	out = to_text(html);
	/* 。 may not start a line: 日本 ... 日 | 本。x */
	assert_int_equal(strchr(out, '\n') - out, 75 * 3);
	assert_string_equal(strchr(out, '\n') + 1,
	    "\xe6\x9c\xac\xe3\x80\x82x\n");
	free(out);
}

/* Invariants every text output keeps: NULL, or what is broken. */
static const char *
text_props(const char *t, size_t len)
{
	static char msg[256];
	const char *line, *nl, *p;
	int cps, words;

	if (strlen(t) != len)
		return "NUL in output";
	if (t[0] == '\n')
		return "leading newline";
	for (line = t; *line; line = nl + 1) {
		if (!(nl = strchr(line, '\n')))
			return "no final newline";
		if (nl > line && (nl[-1] == ' ' || nl[-1] == '\t'))
			snprintf(msg, sizeof(msg), "trailing blank: %.*s",
			    (int)(nl - line), line);
		else if (nl[1] == '\n' && nl[2] == '\n')
			snprintf(msg, sizeof(msg), "two blank lines after: "
			    "%.*s", (int)(nl - line), line);
		else {
			for (cps = 0, words = 1, p = line; p < nl; p++) {
				cps += ((unsigned char)*p & 0xC0) != 0x80;
				words += *p == ' ' && p > line &&
				    !strchr(" >-.", p[-1]);
			}
			if (cps <= HTMLRW_TEXT_WIDTH || words == 1 ||
			    line[0] == '[')
				continue;
			snprintf(msg, sizeof(msg), "line of %d code points: "
			    "%.*s", cps, (int)(nl - line), line);
		}
		return msg;
	}
	return NULL;
}

static void
test_text_golden(void **state)
{
	static const char *const names[] = {
		"table_layout", "text_heavy", "entities_i18n",
		"images_buttons", "gmail_reply",
	};
	char file[64], path[4096], *html, *want, *got, *o;
	const char *msg;
	struct buf out = BUF_INIT;
	struct seen s;
	size_t hlen, wlen;

	(void)state;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(file, sizeof(file), "%s.html", names[i]);
		data_path(path, sizeof(path), file);
		if (!(html = read_file(path, &hlen)))
			fail_msg("%s not found: set TOP_SRCDIR", path);
		snprintf(path + strlen(path) - 4, 5, "txt");
		if (!(want = read_file(path, &wlen)))
			fail_msg("%s not found", path);
		buf_reset(&out);
		assert_int_equal(htmlrw_to_text(html, hlen, &out), 0);
		got = strdup(buf_str(&out));
		if (strcmp(got, want) != 0) {
			print_message("%s differs; got:\n%s", path, got);
			fail();
		}
		if ((msg = text_props(got, strlen(got))) != NULL)
			fail_msg("%s: %s", names[i], msg);
		/* Rewriting that changes nothing leaves the bytes alone. */
		buf_reset(&out);
		memset(&s, 0, sizeof(s));
		s.ret = 1;
		s.abort_at = -1;
		assert_int_equal(htmlrw_rewrite(html, hlen, record, &s, NULL,
		    &out), 0);
		assert_int_equal(out.len, hlen);
		assert_memory_equal(out.data, html, hlen);
		/* Rewriting all: every http(s) href goes, the pixel arrives. */
		o = rewrite(html, "https://t.example/o/1.gif", &s);
		if (strstr(html, "</body>"))
			assert_non_null(strstr(o, "/o/1.gif\" width=\"1\" "
			    "height=\"1\" alt=\"\" style=\"display:block;"
			    "border:0;width:1px;height:1px\" /></body>"));
		assert_true(s.n > 0 || !strstr(html, "href=\"http"));
		free(o);
		free(got);
		free(want);
		free(html);
	}
	buf_free(&out);
}

static void
test_table_layout_links(void **state)
{
	char path[4096], *html, *out;
	struct seen s;
	size_t len;

	(void)state;
	data_path(path, sizeof(path), "table_layout.html");
	if (!(html = read_file(path, &len)))
		fail_msg("%s not found: set TOP_SRCDIR", path);
	out = rewrite(html, NULL, &s);
	/* The VML button inside <!--[if mso]> is not ours to touch. */
	assert_int_equal(s.n, 7);
	assert_string_equal(s.url[0], "https://news.acme-outdoor.example/view/"
	    "3f9a");
	assert_string_equal(s.text[0], "View it in your browser");
	assert_string_equal(s.url[1], "https://www.acme-outdoor.example/?"
	    "utm_source=newsletter&utm_medium=email&utm_campaign=spring24");
	assert_string_equal(s.text[1], "ACME Outdoor");
	assert_string_equal(s.text[2], "Shop the sale");
	assert_string_equal(s.text[6], "Update preferences");
	assert_non_null(strstr(out, "<v:roundrect xmlns:v=\"urn:schemas-"
	    "microsoft-com:vml\" href=\"https://www.acme-outdoor.example/"
	    "sale?utm_campaign=spring24\""));
	free(out);
	free(html);
}

/* ---- bounds ---- */

/* CPU seconds allowed per 2 MB input; sanitizers slow code several times. */
#if defined(__SANITIZE_ADDRESS__)
#define TIME_LIMIT      4.0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TIME_LIMIT      4.0
#endif
#endif
#ifndef TIME_LIMIT
#define TIME_LIMIT      1.0
#endif

static int
count_links(void *arg, const struct htmlrw_link *l, struct buf *out)
{
	(void)l;
	++*(int *)arg;
	return buf_puts(out, "https://t.example/c/x") < 0 ? -1 : 0;
}

static double
cpu_seconds(clock_t start)
{
	return (double)(clock() - start) / CLOCKS_PER_SEC;
}

static void
run_big(const char *label, const char *html, size_t len)
{
	struct buf out = BUF_INIT;
	clock_t c = clock();
	int n = 0;
	double t;

	assert_int_equal(htmlrw_rewrite(html, len, count_links, &n, "P",
	    &out), 0);
	buf_reset(&out);
	assert_int_equal(htmlrw_to_text(html, len, &out), 0);
	t = cpu_seconds(c);
	print_message("  %-22s %zu bytes, %d links: %.3f s\n", label, len, n,
	    t);
	assert_true(t < TIME_LIMIT);
	buf_free(&out);
}

static void
test_big_inputs(void **state)
{
	static const char *const units[] = {
		/* nested tags with many attributes */
		"<div class=\"c\" id=x data-a='1' data-b=2 style=\"color:red;"
		"display:block\" title=\"t &amp; t\"><table><tr><td><ul><li>"
		"<blockquote><span><a href=\"https://a.example/?q=1&amp;r=2\" "
		"data-tag=t>link <b>text</b></a> words ",
		"<a href=\"https://a.example/\">",     /* unclosed links */
		"<div style=\"display:none\"><p hidden>",
		"&amp;&copy&#x1F600;&bogus;&notit;",
		"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x80\x82",
		"<ol><li><pre>x\n</pre><h1>h</h1><br>",
		"<a href='https://a.example/' ",        /* cut-off tag */
		"<!-- <a href=x>",                      /* open comment */
		"<script>",
		"<a href=\"https://a.example/\" x=\"y\" data-notrack>t</a>",
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	};
	size_t want = 2 * 1024 * 1024;
	struct buf b;
	char label[32];

	(void)state;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		buf_init(&b, 0);
		while (b.len < want)
			buf_puts(&b, units[i]);
		snprintf(label, sizeof(label), "pattern %zu", i);
		run_big(label, b.data, b.len);
		buf_free(&b);
	}
	/* One tag with a couple of hundred thousand attributes. */
	buf_init(&b, 0);
	buf_puts(&b, "<p><a style=\"display:none\" href=\"https://a.example/\"");
	while (b.len < want)
		buf_puts(&b, " data-x=1 class='c'");
	buf_puts(&b, " data-tag=t>text</a></p>");
	run_big("one huge tag", b.data, b.len);
	buf_free(&b);
	/* Distinct URLs: numbering them must not go quadratic. */
	buf_init(&b, 0);
	for (int i = 0; b.len < want; i++)
		buf_printf(&b, "<a href=\"https://a.example/%d\">link %d</a> ",
		    i, i);
	run_big("distinct links", b.data, b.len);
	buf_free(&b);
}

static void
test_random(void **state)
{
	static const char *const bits[] = {
		"<", ">", "</", "<a href=", "\"", "'", "=", " ", "\n", "&",
		"&amp;", "&#", "x", ";", "<!--", "-->", "<script>", "</script>",
		"<p>", "<li>", "<ul>", "</ul>", "<ol>", "<pre>", "</pre>",
		"<br>",
		"<table>", "<tr>", "<td>", "<h1>", "</h1>", "<blockquote>",
		"https://a.example/", "mailto:x", "data-notrack", "data-tag=",
		"style=display:none", "<img alt=", "</a>", "<area href=",
		"</body>", "<head>", "\xe6\x97\xa5", "\xc3", "\xa9", "\0",
		"\xff",
		"<![CDATA[", "]]>", "<?", "hidden",
	};
	struct buf in = BUF_INIT, out;
	const char *msg;
	int n;

	(void)state;
	srand(12345);
	for (int iter = 0; iter < 3000; iter++) {
		buf_reset(&in);
		for (int i = rand() % 60; i > 0; i--) {
			const char *s = bits[rand() % (sizeof(bits) /
			    sizeof(bits[0]))];
			buf_append(&in, s, *s ? strlen(s) : 1);
		}
		buf_init(&out, (size_t)(rand() % 2 ? 0 : rand() % 200));
		n = 0;
		htmlrw_rewrite(in.data, in.len, count_links, &n,
		    rand() % 2 ? "P" : NULL, &out);
		buf_free(&out);
		buf_init(&out, (size_t)(rand() % 2 ? 0 : rand() % 200));
		if (htmlrw_to_text(in.data, in.len, &out) == 0 &&
		    (msg = text_props(buf_str(&out), out.len)) != NULL) {
			fwrite(in.data, 1, in.len, stderr);
			fail_msg("\nrandom input above: %s", msg);
		}
		buf_free(&out);
	}
	buf_free(&in);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rewrite_quoting),
		cmocka_unit_test(test_rewrite_entities),
		cmocka_unit_test(test_rewrite_notrack),
		cmocka_unit_test(test_rewrite_untouched),
		cmocka_unit_test(test_rewrite_comments),
		cmocka_unit_test(test_rewrite_text_and_tags),
		cmocka_unit_test(test_rewrite_return_codes),
		cmocka_unit_test(test_rewrite_limit),
		cmocka_unit_test(test_pixel),
		cmocka_unit_test(test_entities),
		cmocka_unit_test(test_escape),
		cmocka_unit_test(test_text_blocks),
		cmocka_unit_test(test_text_lists),
		cmocka_unit_test(test_text_links),
		cmocka_unit_test(test_text_hidden),
		cmocka_unit_test(test_text_entities_unicode),
		cmocka_unit_test(test_text_golden),
		cmocka_unit_test(test_table_layout_links),
		cmocka_unit_test(test_big_inputs),
		cmocka_unit_test(test_random),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
