/*
 * htmlrw - link rewriting, open pixel and HTML to text. See htmlrw.h.
 *
 * lex_next() yields text, start and end tags, raw text (script, style,
 * title, textarea, ...) and "other" tokens (comments, <!...>, <?...>, CDATA,
 * a tag cut off by the end of input) as spans of the input, ending them
 * where the HTML5 tokenizer would. Attributes are not stored: attr_next()
 * walks a tag again when asked, so any number of them costs linear time.
 *
 * Rewriting copies the input through up to each change. A link's text is
 * read ahead with a copy of the lexer up to </a>, the next <a> or enough
 * text; links do not nest, so no byte is read ahead twice.
 *
 * The text writer (struct tw) gathers characters into a word and places
 * the word when whitespace, a separating tag or a CJK break opportunity
 * ends it, wrapping as needed. Line breaks are owed ("want") and written
 * before the next word, so nothing trails and blank lines never pile up.
 */
#include "htmlrw.h"
#include "utf8.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- characters and entities -------------------------------------------- */

static int
is_ws(int c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f';
}

static int
is_alnum(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9');
}

static int
is_alpha(int c)
{
	return (c | 0x20) >= 'a' && (c | 0x20) <= 'z';
}

static void
put_utf8(struct buf *b, uint32_t c)
{
	char s[4];

	buf_append(b, s, utf8_encode(c, s));
}

/* Named references: Latin-1 and & < > " (these are "legacy": browsers also
 * take them without the ';'), and the punctuation and symbols email uses. */
static const struct entity {
	const char *name;
	uint32_t cp;
} entities[] = {		/* sorted by strcmp() */
	{ "AElig", 0xC6 }, { "Aacute", 0xC1 }, { "Acirc", 0xC2 },
	{ "Agrave", 0xC0 }, { "Aring", 0xC5 }, { "Atilde", 0xC3 },
	{ "Auml", 0xC4 }, { "Ccedil", 0xC7 }, { "ETH", 0xD0 },
	{ "Eacute", 0xC9 }, { "Ecirc", 0xCA }, { "Egrave", 0xC8 },
	{ "Euml", 0xCB }, { "Iacute", 0xCD }, { "Icirc", 0xCE },
	{ "Igrave", 0xCC }, { "Iuml", 0xCF }, { "Ntilde", 0xD1 },
	{ "OElig", 0x152 }, { "Oacute", 0xD3 }, { "Ocirc", 0xD4 },
	{ "Ograve", 0xD2 }, { "Oslash", 0xD8 }, { "Otilde", 0xD5 },
	{ "Ouml", 0xD6 }, { "THORN", 0xDE }, { "Uacute", 0xDA },
	{ "Ucirc", 0xDB }, { "Ugrave", 0xD9 }, { "Uuml", 0xDC },
	{ "Yacute", 0xDD }, { "aacute", 0xE1 }, { "acirc", 0xE2 },
	{ "acute", 0xB4 }, { "aelig", 0xE6 }, { "agrave", 0xE0 },
	{ "amp", 0x26 }, { "apos", 0x27 }, { "aring", 0xE5 },
	{ "atilde", 0xE3 }, { "auml", 0xE4 }, { "bdquo", 0x201E },
	{ "brvbar", 0xA6 }, { "bull", 0x2022 }, { "ccedil", 0xE7 },
	{ "cedil", 0xB8 }, { "cent", 0xA2 }, { "check", 0x2713 },
	{ "copy", 0xA9 }, { "curren", 0xA4 }, { "dagger", 0x2020 },
	{ "darr", 0x2193 }, { "deg", 0xB0 }, { "divide", 0xF7 },
	{ "eacute", 0xE9 }, { "ecirc", 0xEA }, { "egrave", 0xE8 },
	{ "emsp", 0x2003 }, { "ensp", 0x2002 }, { "eth", 0xF0 },
	{ "euml", 0xEB }, { "euro", 0x20AC }, { "frac12", 0xBD },
	{ "frac14", 0xBC }, { "frac34", 0xBE }, { "ge", 0x2265 },
	{ "gt", 0x3E }, { "hearts", 0x2665 }, { "hellip", 0x2026 },
	{ "iacute", 0xED }, { "icirc", 0xEE }, { "iexcl", 0xA1 },
	{ "igrave", 0xEC }, { "iquest", 0xBF }, { "iuml", 0xEF },
	{ "laquo", 0xAB }, { "larr", 0x2190 }, { "ldquo", 0x201C },
	{ "le", 0x2264 }, { "lrm", 0x200E }, { "lsaquo", 0x2039 },
	{ "lsquo", 0x2018 }, { "lt", 0x3C }, { "macr", 0xAF },
	{ "mdash", 0x2014 }, { "micro", 0xB5 }, { "middot", 0xB7 },
	{ "minus", 0x2212 }, { "nbsp", 0xA0 }, { "ndash", 0x2013 },
	{ "not", 0xAC }, { "ntilde", 0xF1 }, { "oacute", 0xF3 },
	{ "ocirc", 0xF4 }, { "oelig", 0x153 }, { "ograve", 0xF2 },
	{ "ordf", 0xAA }, { "ordm", 0xBA }, { "oslash", 0xF8 },
	{ "otilde", 0xF5 }, { "ouml", 0xF6 }, { "para", 0xB6 },
	{ "permil", 0x2030 }, { "plusmn", 0xB1 }, { "pound", 0xA3 },
	{ "quot", 0x22 }, { "raquo", 0xBB }, { "rarr", 0x2192 },
	{ "rdquo", 0x201D }, { "reg", 0xAE }, { "rlm", 0x200F },
	{ "rsaquo", 0x203A }, { "rsquo", 0x2019 }, { "sbquo", 0x201A },
	{ "sect", 0xA7 }, { "shy", 0xAD }, { "star", 0x2606 },
	{ "starf", 0x2605 }, { "sup1", 0xB9 }, { "sup2", 0xB2 },
	{ "sup3", 0xB3 }, { "szlig", 0xDF }, { "thinsp", 0x2009 },
	{ "thorn", 0xFE }, { "times", 0xD7 }, { "trade", 0x2122 },
	{ "uacute", 0xFA }, { "uarr", 0x2191 }, { "ucirc", 0xFB },
	{ "ugrave", 0xF9 }, { "uml", 0xA8 }, { "uuml", 0xFC },
	{ "yacute", 0xFD }, { "yen", 0xA5 }, { "yuml", 0xFF },
	{ "zwj", 0x200D }, { "zwnj", 0x200C },
};

/* What numeric references 128-159 mean (Windows-1252), per HTML5. */
static const uint16_t cp1252[32] = {
	0x20AC, 0x81, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,
	0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0x8D, 0x017D, 0x8F,
	0x90, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
	0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x9D, 0x017E, 0x0178,
};

static const struct entity *
entity_find(const char *s, size_t n)
{
	size_t lo = 0, hi = sizeof(entities) / sizeof(entities[0]), mid;
	int c;

	while (lo < hi) {
		mid = (lo + hi) / 2;
		if ((c = strncmp(entities[mid].name, s, n)) == 0 &&
		    (c = entities[mid].name[n] != '\0') == 0)
			return &entities[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/*
 * If s (before end) starts a character reference, append its value to out
 * and return its length, else return 0. attr: the attribute-value rule (a
 * legacy name without ';' followed by an alphanumeric or '=' is text).
 */
static size_t
entity(const char *s, const char *end, struct buf *out, int attr)
{
	const struct entity *e = NULL;
	const char *p = s + 1, *q;
	uint32_t c = 0;
	size_t n;
	int hex, d;

	if (p < end && *p == '#') {
		hex = ++p < end && (*p | 0x20) == 'x';
		for (q = p += hex; q < end; q++) {
			d = *q >= '0' && *q <= '9' ? *q - '0' : hex &&
			    (*q | 0x20) >= 'a' && (*q | 0x20) <= 'f' ?
			    (*q | 0x20) - 'a' + 10 : -1;
			if (d < 0)
				break;
			if (c <= 0x10FFFF)
				c = c * (hex ? 16 : 10) + (uint32_t)d;
		}
		if (q == p)
			return 0;
		q += q < end && *q == ';';
		if (c == 0 || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
			c = 0xFFFD;
		else if (c >= 0x80 && c <= 0x9F)
			c = cp1252[c - 0x80];
		put_utf8(out, c);
		return (size_t)(q - s);
	}
	for (q = p; q < end && q - p < 32 && is_alnum(*q); q++)
		;
	if ((n = (size_t)(q - p)) == 0)
		return 0;
	if (q < end && *q == ';' && (e = entity_find(p, n)) != NULL) {
		put_utf8(out, e->cp);
		return n + 2;
	}
	/* The longest legacy name that starts the run, as browsers do. */
	for (n = n < 6 ? n : 6; n >= 2; n--)
		if ((e = entity_find(p, n)) != NULL && ((e->cp >= 0xA0 &&
		    e->cp <= 0xFF) || strchr("&<>\"", (int)e->cp)))
			break;
	if (n < 2 || (attr && p + n < end && (is_alnum(p[n]) || p[n] == '=')))
		return 0;
	put_utf8(out, e->cp);
	return n + 1;
}

static int
decode(const char *s, size_t n, struct buf *out, int attr)
{
	const char *end = s + n, *amp;
	size_t k;

	while (s < end && (amp = memchr(s, '&', (size_t)(end - s))) != NULL) {
		buf_append(out, s, (size_t)(amp - s));
		if ((k = entity(amp, end, out, attr)) == 0)
			buf_putc(out, '&');
		s = amp + (k ? k : 1);
	}
	if (s < end)
		buf_append(out, s, (size_t)(end - s));
	return out->overflow ? -1 : 0;
}

int
htmlrw_decode_entities(const char *s, size_t len, struct buf *out)
{
	return len ? decode(s, len, out, 0) : -out->overflow;
}

int
htmlrw_escape(const char *s, size_t len, struct buf *out)
{
	static const char special[] = "&<>\"'";
	static const char *const rep[] = {
		"&amp;", "&lt;", "&gt;", "&quot;", "&#39;"
	};
	const char *c;
	size_t i, from = 0;

	for (i = 0; i < len; i++) {
		if (s[i] == '\0' || !(c = strchr(special, s[i])))
			continue;
		buf_append(out, s + from, i - from);
		buf_puts(out, rep[c - special]);
		from = i + 1;
	}
	if (len > from)
		buf_append(out, s + from, len - from);
	return out->overflow ? -1 : 0;
}

/* ---- the tokenizer ------------------------------------------------------- */

enum {
	T_VOID = 1,     /* no content, no end tag */
	T_RAW = 2,      /* content is raw text up to its end tag */
	T_LINE = 4,     /* text: starts and ends a line */
	T_PARA = 8,     /* text: separated by a blank line */
	T_SEP = 16,     /* text: separates words */
	T_HEAD = 32,    /* may stand in <head> without ending it */
	T_CLOSEP = 64   /* its start tag ends an open <p> */
};

#define T_BLOCK1        (T_LINE | T_CLOSEP)
#define T_BLOCK2        (T_PARA | T_CLOSEP)

static const struct {
	const char *name;
	unsigned flags;
} tags[] = {
	{ "area", T_VOID }, { "article", T_BLOCK1 }, { "aside", T_BLOCK1 },
	{ "base", T_VOID | T_HEAD }, { "blockquote", T_BLOCK2 },
	{ "br", T_VOID | T_SEP }, { "center", T_BLOCK1 }, { "dd", T_LINE },
	{ "div", T_BLOCK1 }, { "dl", T_BLOCK2 }, { "dt", T_LINE },
	{ "footer", T_BLOCK1 }, { "form", T_BLOCK1 }, { "h1", T_BLOCK2 },
	{ "h2", T_BLOCK2 }, { "h3", T_BLOCK2 }, { "h4", T_BLOCK2 },
	{ "h5", T_BLOCK2 }, { "h6", T_BLOCK2 }, { "header", T_BLOCK1 },
	{ "hr", T_VOID | T_BLOCK2 }, { "iframe", T_RAW }, { "img", T_VOID },
	{ "input", T_VOID }, { "li", T_LINE }, { "link", T_VOID | T_HEAD },
	{ "main", T_BLOCK1 }, { "meta", T_VOID | T_HEAD }, { "nav", T_BLOCK1 },
	{ "noscript", T_HEAD }, { "ol", T_BLOCK2 }, { "p", T_BLOCK2 },
	{ "pre", T_BLOCK2 }, { "script", T_RAW | T_HEAD },
	{ "section", T_BLOCK1 }, { "style", T_RAW | T_HEAD },
	{ "table", T_BLOCK1 }, { "td", T_SEP }, { "template", T_HEAD },
	{ "textarea", T_RAW }, { "th", T_SEP }, { "title", T_RAW | T_HEAD },
	{ "tr", T_LINE }, { "ul", T_BLOCK2 }, { "xmp", T_RAW },
};

enum { TK_EOF, TK_TEXT, TK_START, TK_END, TK_RAW, TK_OTHER };

struct tok {
	int type;
	const char *s, *e;      /* the token in the input */
	const char *attrs;      /* start and end tags: just after the name */
	char name[16];          /* tag (raw: element) name, lower case, cut */
	unsigned flags;         /* from tags[] */
};

struct lex {
	const char *p, *end;
	char raw[16];           /* element whose raw text comes next, or "" */
};

struct attr {
	const char *pre;        /* the whitespace before it */
	const char *name;
	size_t nlen;
	const char *val;        /* value without quotes, NULL if none */
	size_t vlen;
	const char *vs, *ve;    /* value with its quotes; vs == ve: none */
};

/* tags[] is sorted by strcmp(): a binary search. */
static unsigned
tag_flags(const char *name)
{
	size_t lo = 0, hi = sizeof(tags) / sizeof(tags[0]);

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(tags[mid].name, name);

		if (c == 0)
			return tags[mid].flags;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

/* Next attribute of a tag at *pp: 1 (and *a), 0 at '>' (consumed), -1 at
 * the end of input. */
static int
attr_next(const char **pp, const char *end, struct attr *a)
{
	const char *p = *pp, *q;

	for (a->pre = p; p < end && (is_ws(*p) || *p == '/'); p++)
		;
	if (p >= end || *p == '>') {
		*pp = p + (p < end);
		return p < end ? 0 : -1;
	}
	for (a->name = p++; p < end && !is_ws(*p) && *p != '/' && *p != '>' &&
	    *p != '='; p++)
		;
	a->nlen = (size_t)(p - a->name);
	a->val = NULL;
	a->vlen = 0;
	a->vs = a->ve = p;
	for (q = p; q < end && is_ws(*q); q++)
		;
	if (q < end && *q == '=') {
		for (q++; q < end && is_ws(*q); q++)
			;
		if (q < end && (*q == '"' || *q == '\'')) {
			if (!(p = memchr(q + 1, *q, (size_t)(end - q - 1)))) {
				*pp = end;
				return -1;
			}
			a->val = q + 1;
			a->vlen = (size_t)(p++ - q - 1);
		} else {
			for (p = q; p < end && !is_ws(*p) && *p != '>'; p++)
				;
			a->val = q;
			a->vlen = (size_t)(p - q);
		}
		a->vs = q;
		a->ve = p;
	}
	*pp = p;
	return 1;
}

static int
attr_is(const struct attr *a, const char *name)
{
	return a->nlen == strlen(name) &&
	    strncasecmp(a->name, name, a->nlen) == 0;
}

/* The first attribute `name` of tag t, if it has a value: 1 (and *a). */
static int
find_attr(const struct tok *t, const char *name, struct attr *a)
{
	const char *p = t->attrs;

	while (attr_next(&p, t->e, a) > 0)
		if (attr_is(a, name))
			return a->val != NULL;
	return 0;
}

static int
starts_markup(const char *p, const char *end)
{
	return p + 1 < end && p[1] != '\0' &&
	    (is_alpha(p[1]) || strchr("!/?", p[1]));
}

static void
lex_tag(struct lex *lx, struct tok *t, const char *p)
{
	const char *end = lx->end, *n = p;
	struct attr a;
	size_t i;
	int r;

	while (p < end && !is_ws(*p) && *p != '/' && *p != '>')
		p++;
	for (i = 0; i < (size_t)(p - n) && i < sizeof(t->name) - 1; i++)
		t->name[i] = (char)(is_alpha(n[i]) ? n[i] | 0x20 : n[i]);
	t->attrs = p;
	while ((r = attr_next(&p, end, &a)) > 0)
		;
	t->e = p;
	if (r < 0)
		t->type = TK_OTHER;     /* cut off: never ours to change */
	else if ((t->flags = tag_flags(t->name)) & T_RAW && t->type == TK_START)
		memcpy(lx->raw, t->name, sizeof(lx->raw));
}

static void
lex_next(struct lex *lx, struct tok *t)
{
	const char *p = lx->p, *end = lx->end, *q;
	size_t n = strlen(lx->raw), left = (size_t)(end - p);

	memset(t, 0, sizeof(*t));
	t->s = p;
	t->type = TK_OTHER;
	if (n) {
		for (q = p; (q = memchr(q, '<', (size_t)(end - q))); q++)
			if ((size_t)(end - q) >= n + 2 && q[1] == '/' &&
			    strncasecmp(q + 2, lx->raw, n) == 0 &&
			    (q + n + 2 == end || is_ws(q[n + 2]) ||
			    q[n + 2] == '/' || q[n + 2] == '>'))
				break;
		t->type = TK_RAW;
		memcpy(t->name, lx->raw, sizeof(t->name));
		t->e = q ? q : end;
		lx->raw[0] = '\0';
	} else if (p >= end) {
		t->type = TK_EOF;
		t->e = p;
	} else if (*p != '<' || !starts_markup(p, end)) {
		for (q = p + 1; (q = memchr(q, '<', (size_t)(end - q))) &&
		    !starts_markup(q, end); q++)
			;
		t->type = TK_TEXT;
		t->e = q ? q : end;
	} else if (left >= 4 && memcmp(p, "<!--", 4) == 0) {
		/* from "<!" on, so that <!--> and <!---> end themselves */
		q = memmem(p + 2, left - 2, "-->", 3);
		t->e = q ? q + 3 : end;
	} else if (left >= 9 && memcmp(p, "<![CDATA[", 9) == 0) {
		q = memmem(p + 9, left - 9, "]]>", 3);
		t->e = q ? q + 3 : end;
	} else if (p[1] == '!' || p[1] == '?' || (p[1] == '/' &&
	    (left < 3 || !is_alpha(p[2])))) {
		q = left > 2 ? memchr(p + 2, '>', left - 2) : NULL;
		t->e = q ? q + 1 : end;         /* bogus comment, or </> */
	} else {
		t->type = p[1] == '/' ? TK_END : TK_START;
		lex_tag(lx, t, p + (p[1] == '/' ? 2 : 1));
	}
	lx->p = t->e;
}

/* ---- shared helpers ------------------------------------------------------ */

/* What a browser makes of an href: tabs and newlines (and here NULs)
 * removed, leading and trailing controls and spaces trimmed. */
static void
url_clean(struct buf *b)
{
	size_t i, j = 0, s = 0;

	for (i = 0; i < b->len; i++)
		if (!memchr("\t\n\r", b->data[i], 4))
			b->data[j++] = b->data[i];
	while (j > 0 && (unsigned char)b->data[j - 1] <= ' ')
		j--;
	while (s < j && (unsigned char)b->data[s] <= ' ')
		s++;
	if (b->data) {
		memmove(b->data, b->data + s, j - s);
		b->data[b->len = j - s] = '\0';
	}
}

static int
has_prefix(const struct buf *b, const char *prefix)
{
	size_t n = strlen(prefix);

	return b->len >= n && strncasecmp(b->data, prefix, n) == 0;
}

/* Append decoded text s to b with each run of whitespace (or no-break
 * spaces) as one space, none leading, and no controls; *sp: a space is
 * pending. */
static void
put_collapsed(struct buf *b, const char *s, size_t n, int *sp)
{
	for (size_t i = 0; i < n; i++) {
		if (is_ws(s[i]) || (s[i] == '\xC2' && i + 1 < n &&
		    s[i + 1] == '\xA0' && ++i)) {
			*sp = 1;
			continue;
		}
		if ((unsigned char)s[i] < ' ' || s[i] == 0x7F)
			continue;
		if (*sp && b->len)
			buf_putc(b, ' ');
		*sp = 0;
		buf_putc(b, s[i]);
	}
}

/* ---- link rewriting and the pixel ---------------------------------------- */

struct rw {
	struct buf *out;
	const char *copied;     /* input copied to out up to here */
	htmlrw_link_fn *fn;
	void *arg;
	int index;
	struct buf url, text, tag, rep, tmp;
};

static void
copy_to(struct rw *rw, const char *p)
{
	buf_append(rw->out, rw->copied, (size_t)(p - rw->copied));
	rw->copied = p;
}

/* Append decoded s (an attribute value if attr), collapsed, to link text. */
static void
add_text(struct rw *rw, const char *s, size_t n, int attr, int *sp)
{
	buf_reset(&rw->tmp);
	decode(s, n, &rw->tmp, attr);
	put_collapsed(&rw->text, buf_str(&rw->tmp), rw->tmp.len, sp);
}

/* The visible text of the link <a> whose start tag `from` just read, or
 * the alt of <area> t, cut to HTMLRW_LINK_TEXT_MAX bytes. */
static void
link_text(struct rw *rw, const struct lex *from, const struct tok *area)
{
	struct lex lx = *from;
	struct tok t;
	struct attr a;
	size_t n;
	int sp = 0;

	buf_reset(&rw->text);
	if (area && find_attr(area, "alt", &a))
		add_text(rw, a.val, a.vlen, 1, &sp);
	while (!area && rw->text.len <= HTMLRW_LINK_TEXT_MAX) {
		lex_next(&lx, &t);
		if (t.type == TK_EOF || ((t.type == TK_START ||
		    t.type == TK_END) && strcmp(t.name, "a") == 0))
			break;
		if (t.type == TK_TEXT)
			add_text(rw, t.s, (size_t)(t.e - t.s), 0, &sp);
		else if (t.type == TK_START && strcmp(t.name, "img") == 0 &&
		    find_attr(&t, "alt", &a)) {
			sp = 1;
			add_text(rw, a.val, a.vlen, 1, &sp);
			sp = 1;
		} else if (t.type == TK_START || t.type == TK_END)
			sp |= (t.flags & (T_LINE | T_PARA | T_SEP)) != 0;
	}
	if ((n = rw->text.len) > HTMLRW_LINK_TEXT_MAX)
		for (n = HTMLRW_LINK_TEXT_MAX; n > 0 &&
		    ((unsigned char)rw->text.data[n] & 0xC0) == 0x80; n--)
			;
	while (n > 0 && rw->text.data[n - 1] == ' ')
		n--;
	if (rw->text.data)
		rw->text.data[rw->text.len = n] = '\0';
}

/* A start tag <a> or <area>: 0, or -1 to stop. */
static int
rewrite_link(struct rw *rw, const struct tok *t, const struct lex *lx)
{
	struct attr a, href = { 0 }, tag = { 0 };
	struct htmlrw_link l;
	const char *p = t->attrs;
	int notrack = 0, rank = 0, r;

	while (attr_next(&p, t->e, &a) > 0) {
		if (attr_is(&a, "href") && !href.name)
			href = a;
		else if (attr_is(&a, "data-notrack"))
			notrack = 1;
		else if (a.val && rank < 2 && attr_is(&a, "data-tag"))
			tag = a, rank = 2;
		else if (a.val && rank < 1 && attr_is(&a, "data-link-tag"))
			tag = a, rank = 1;
	}
	if (notrack) {
		for (p = t->attrs; attr_next(&p, t->e, &a) > 0; )
			if (attr_is(&a, "data-notrack")) {
				copy_to(rw, a.pre);
				rw->copied = a.ve;
			}
		return 0;
	}
	if (!rw->fn || !href.val)
		return 0;
	buf_reset(&rw->url);
	decode(href.val, href.vlen, &rw->url, 1);
	url_clean(&rw->url);
	if (!has_prefix(&rw->url, "http:") && !has_prefix(&rw->url, "https:"))
		return 0;
	link_text(rw, lx, t->name[1] ? t : NULL);
	buf_reset(&rw->tag);
	if (rank) {
		decode(tag.val, tag.vlen, &rw->tag, 1);
		url_clean(&rw->tag);
	}
	if (rw->url.overflow || rw->text.overflow || rw->tag.overflow ||
	    rw->tmp.overflow)
		return -1;
	l.url = buf_str(&rw->url);
	l.url_len = rw->url.len;
	l.text = buf_str(&rw->text);
	l.text_len = rw->text.len;
	l.tag = rank ? buf_str(&rw->tag) : NULL;
	l.element = t->name[1] ? "area" : "a";
	l.index = rw->index++;
	buf_reset(&rw->rep);
	if ((r = rw->fn(rw->arg, &l, &rw->rep)) < 0 || rw->rep.overflow)
		return -1;
	if (r == 0) {
		copy_to(rw, href.vs);
		buf_putc(rw->out, '"');
		htmlrw_escape(buf_str(&rw->rep), rw->rep.len, rw->out);
		buf_putc(rw->out, '"');
		rw->copied = href.ve;
	}
	return 0;
}

int
htmlrw_rewrite(const char *html, size_t len, htmlrw_link_fn *fn, void *arg,
    const char *pixel_url, struct buf *out)
{
	struct lex lx = { NULL, NULL, "" };
	struct rw rw;
	struct tok t;
	size_t at = SIZE_MAX, n;
	int rc = 0;

	if (!html)
		html = "", len = 0;
	memset(&rw, 0, sizeof(rw));
	rw.out = out;
	rw.copied = html;
	rw.fn = fn;
	rw.arg = arg;
	buf_init(&rw.rep, HTMLRW_URL_MAX);
	lx.p = html;
	lx.end = html + len;
	for (lex_next(&lx, &t); t.type != TK_EOF && rc == 0 && !out->overflow;
	    lex_next(&lx, &t)) {
		if (t.type == TK_END && strcmp(t.name, "body") == 0) {
			copy_to(&rw, t.s);
			at = out->len;
		} else if (t.type == TK_START && (strcmp(t.name, "a") == 0 ||
		    strcmp(t.name, "area") == 0))
			rc = rewrite_link(&rw, &t, &lx);
	}
	if (rc == 0)
		copy_to(&rw, html + len);
	if (rc == 0 && pixel_url) {
		/* Appended, then rotated into place before the last </body>. */
		buf_reset(&rw.tmp);
		buf_puts(&rw.tmp, "<img src=\"");
		htmlrw_escape(pixel_url, strlen(pixel_url), &rw.tmp);
		buf_puts(&rw.tmp, "\" width=\"1\" height=\"1\" alt=\"\" "
		    "style=\"display:block;border:0;width:1px;height:1px\" />");
		n = rw.tmp.len;
		if (!rw.tmp.overflow && buf_append(out, rw.tmp.data, n) == 0 &&
		    at != SIZE_MAX) {
			memmove(out->data + at + n, out->data + at,
			    out->len - n - at);
			memcpy(out->data + at, rw.tmp.data, n);
		}
		rc = -rw.tmp.overflow;
	}
	buf_free(&rw.url);
	buf_free(&rw.text);
	buf_free(&rw.tag);
	buf_free(&rw.rep);
	buf_free(&rw.tmp);
	return rc < 0 || out->overflow ? -1 : 0;
}

/* ---- HTML to text -------------------------------------------------------- */

#define TW_LISTS        8       /* list levels indented, deeper share one */
#define TW_QUOTES       8       /* '>' marks at most */
#define TW_LINKS        256     /* numbered links; more get no number */
#define TW_LINKTEXT     1024    /* link text kept to compare with its URL */

struct tw {
	struct buf *out;
	size_t base, line;      /* where our output, the current line begin */
	int col, prew;          /* code points on the line; of them, prefix */
	int want;               /* line breaks owed before the next word, 0-2 */
	int space, glue;        /* next word: after a space, may break before */
	struct buf word;        /* the word being gathered */
	int wordw;
	uint32_t last;          /* its last character */
	int pre, quote, lastquote;
	int rowbrk;             /* a line broke in this table row */
	struct { int ordered, n; } list[TW_LISTS];
	int nlist;              /* open lists, also those beyond the stack */
	char marker[16];        /* list item mark owed to the next word */
	int markind;
	char hide[16];          /* element being skipped, or "" */
	int hdepth;
	char hchar;             /* underline of the open h1/h2, or 0 */
	int hw;                 /* its widest line */
	int inlink, lspace;
	struct buf lurl, ltext, urls, tmp;
	size_t loff[TW_LINKS], llen[TW_LINKS];
	int nlinks;
};

/* Breaks are allowed around CJK characters, except before closing
 * punctuation and small kana and after opening brackets (kinsoku). */
static const uint16_t no_start[] = {
	')', ']', '}', '.', ',', '!', '?', ':', ';', 0x3001, 0x3002, 0x3005,
	0x3009, 0x300B, 0x300D, 0x300F, 0x3011, 0x3015, 0x301C, 0x3041,
	0x3043, 0x3045, 0x3047, 0x3049, 0x3063, 0x3083, 0x3085, 0x3087,
	0x308E, 0x30A1, 0x30A3, 0x30A5, 0x30A7, 0x30A9, 0x30C3, 0x30E3,
	0x30E5, 0x30E7, 0x30EE, 0x30F5, 0x30F6, 0x30FB, 0x30FC, 0xFF01,
	0xFF09, 0xFF0C, 0xFF0E, 0xFF1A, 0xFF1B, 0xFF1F, 0
}, no_end[] = {
	'(', '[', '{', 0x3008, 0x300A, 0x300C, 0x300E, 0x3010, 0x3014, 0xFF08, 0
};

static int
in_set(uint32_t c, const uint16_t *set)
{
	while (*set && *set != c)
		set++;
	return *set != 0;
}

static int
is_cjk(uint32_t c)
{
	return (c >= 0x2E80 && c <= 0x9FFF) || (c >= 0xF900 && c <= 0xFAFF) ||
	    (c >= 0xFF00 && c <= 0xFF60) || (c >= 0x20000 && c <= 0x3FFFF);
}

static int
is_space_cp(uint32_t c)
{
	return c < 0x80 ? is_ws((int)c) : c == 0xA0 || c == 0x1680 ||
	    (c >= 0x2000 && c <= 0x200A) || c == 0x202F || c == 0x205F ||
	    c == 0x3000;
}

/* Never shown: controls, soft hyphen, zero-width characters. */
static int
is_invisible(uint32_t c)
{
	return (c < 0x20 && !is_ws((int)c)) || c == 0x7F || c == 0xAD ||
	    c == 0x34F || (c >= 0x200B && c <= 0x200D) || c == 0x2060 ||
	    c == 0xFEFF;
}

static int
tw_indent(const struct tw *w)
{
	int n = 0;

	for (int i = 0; i < w->nlist && i < TW_LISTS; i++)
		n += w->list[i].ordered ? 3 : 2;
	return n;
}

static void
tw_spaces(struct tw *w, int n)
{
	for (; n > 0; n--, w->col++)
		buf_putc(w->out, ' ');
}

/* End the current line, trimming its trailing blanks. */
static void
tw_newline(struct tw *w)
{
	struct buf *o = w->out;

	while (o->len > w->line && (o->data[o->len - 1] == ' ' ||
	    o->data[o->len - 1] == '\t'))
		o->len--;
	buf_putc(o, '\n');
	w->line = o->len;
	w->col = 0;
}

static void
tw_prefix(struct tw *w)
{
	int q = w->quote < TW_QUOTES ? w->quote : TW_QUOTES;

	for (w->col = 0; w->col < 2 * q; w->col += 2)
		buf_puts(w->out, "> ");
	w->lastquote = q;
	tw_spaces(w, w->marker[0] ? w->markind : tw_indent(w));
	buf_puts(w->out, w->marker);
	w->col += (int)strlen(w->marker);
	w->marker[0] = '\0';
	w->prew = w->col;
}

/* Place word p (n bytes, width code points) on the output: on this line
 * after a space if it fits, else on the next. */
static void
tw_place(struct tw *w, const char *p, size_t n, int width)
{
	int q;

	if (w->out->len == w->base)
		w->want = 0;
	if (w->want) {
		tw_newline(w);
		if (w->want > 1) {      /* a blank line; in a quote, ">" */
			q = w->quote < w->lastquote ? w->quote : w->lastquote;
			for (; q > 0 && q <= TW_QUOTES; q--)
				buf_puts(w->out, "> ");
			tw_newline(w);
		}
		w->want = 0;
	}
	if (w->col == 0)
		tw_prefix(w);
	else if ((w->space || w->glue) && !w->pre && w->col > w->prew &&
	    w->col + w->space + width > HTMLRW_TEXT_WIDTH) {
		tw_newline(w);
		tw_prefix(w);
	} else if (w->space)
		tw_spaces(w, 1);
	buf_append(w->out, p, n);
	w->col += width;
	if (w->hchar && w->col - w->prew > w->hw)
		w->hw = w->col - w->prew;
	w->space = w->glue = 0;
}

/* Place the gathered word. */
static void
tw_flush(struct tw *w)
{
	if (w->pre && strspn(buf_str(&w->word), " \t") == w->word.len) {
		buf_reset(&w->word);    /* a blank <pre> line is no text */
		w->wordw = 0;
	}
	if (w->word.len == 0)
		return;
	tw_place(w, w->word.data, w->word.len, w->wordw);
	buf_reset(&w->word);
	w->wordw = 0;
}

/* Request n line breaks (2: a blank line) before what follows. */
static void
tw_block(struct tw *w, int n)
{
	tw_flush(w);
	w->space = w->glue = 0;
	w->rowbrk = 1;
	if (w->marker[0] && n > 1)
		n = 1;          /* an item's first block stays on its mark */
	if (n > w->want)
		w->want = n;
}

static void
tw_char(struct tw *w, const char *s, size_t n, uint32_t c)
{
	if (w->word.len && !w->pre && (is_cjk(c) || is_cjk(w->last)) &&
	    !in_set(c, no_start) && !in_set(w->last, no_end)) {
		tw_flush(w);
		w->glue = 1;
	}
	buf_append(&w->word, s, n);
	w->wordw++;
	w->last = c;
	if (w->inlink && w->ltext.len < TW_LINKTEXT) {
		if (w->lspace && w->ltext.len)
			buf_putc(&w->ltext, ' ');
		buf_append(&w->ltext, s, n);
	}
	w->lspace = 0;
}

/* A run of n visible ASCII characters (! to ~): tw_char() for each, the
 * word and link text appended at once. */
static void
tw_ascii(struct tw *w, const char *s, size_t n)
{
	size_t room;

	/* what tw_char() does for each: the first may end a CJK word */
	if (w->word.len && !w->pre && is_cjk(w->last) &&
	    !in_set((unsigned char)s[0], no_start) &&
	    !in_set(w->last, no_end)) {
		tw_flush(w);
		w->glue = 1;
	}
	buf_append(&w->word, s, n);
	w->wordw += (int)n;
	w->last = (unsigned char)s[n - 1];
	if (w->inlink && w->ltext.len < TW_LINKTEXT) {
		if (w->lspace && w->ltext.len)
			buf_putc(&w->ltext, ' ');
		buf_putc(&w->ltext, s[0]);
		room = w->ltext.len < TW_LINKTEXT ? TW_LINKTEXT -
		    w->ltext.len : 0;
		buf_append(&w->ltext, s + 1, n - 1 < room ? n - 1 : room);
	}
	w->lspace = 0;
}

/* Text with references (attr: in an attribute value). */
static void
tw_text(struct tw *w, const char *s, size_t n, int attr)
{
	const char *end;
	uint32_t c;
	size_t k;

	if (memchr(s, '&', n)) {
		buf_reset(&w->tmp);
		decode(s, n, &w->tmp, attr);
		s = buf_str(&w->tmp);
		n = w->tmp.len;
	}
	for (end = s + n; s < end; s += k) {
		if ((unsigned char)*s > ' ' && (unsigned char)*s < 0x7f) {
			for (k = 1; s + k < end && (unsigned char)s[k] > ' ' &&
			    (unsigned char)s[k] < 0x7f; k++)
				;
			/* a whole word (a blank follows): placed as it is,
			 * what tw_ascii() then tw_flush() at the blank do */
			if (w->word.len == 0 && !w->pre && !w->inlink &&
			    s + k < end && is_ws(s[k])) {
				tw_place(w, s, k, (int)k);
				w->last = (unsigned char)s[k - 1];
				w->lspace = 0;
			} else
				tw_ascii(w, s, k);
			continue;
		}
		if (!w->pre && is_ws(*s)) {     /* blanks: a word ends */
			tw_flush(w);
			w->space = w->lspace = 1;
			for (k = 1; s + k < end && is_ws(s[k]); k++)
				;
			continue;
		}
		/* an invalid byte is one character, U+FFFD */
		if ((k = utf8_decode((const unsigned char *)s,
		    (size_t)(end - s), &c)) == 0) {
			c = 0xFFFD;
			k = 1;
		}
		if (w->pre && (c == '\n' || c == '\r')) {
			tw_flush(w);
			w->want += c == '\n' && w->want < 2;
		} else if (w->pre && is_space_cp(c))
			tw_char(w, c == '\t' ? "\t" : " ", 1, c);
		else if (is_space_cp(c)) {
			tw_flush(w);
			w->space = w->lspace = 1;
		} else if (!is_invisible(c))
			tw_char(w, s, k, c);
	}
}

static void
tw_rule(struct tw *w, char c, int n)
{
	for (w->wordw = 0; w->wordw < n; w->wordw++)
		buf_putc(&w->word, c);
	w->last = (unsigned char)c;
	tw_flush(w);
}

/* Could style value v (n bytes) say "none" once blanks are gone and
 * references decoded? No if it has no '&' and no n, o, n, e in a row
 * (blanks between them aside). */
static int
maybe_none(const char *v, size_t n)
{
	static const char none[] = "none";

	if (memchr(v, '&', n))
		return 1;
	for (size_t i = 0; i < n; i++) {
		size_t j = i, k = 0;

		for (; k < 4 && j < n; j++) {
			if ((v[j] | 0x20) == none[k])
				k++;
			else if (k == 0 || !is_ws(v[j]))
				break;
		}
		if (k == 4)
			return 1;
	}
	return 0;
}

/* Is tag t hidden: the hidden attribute, or display:none in its style? */
static int
is_hidden(struct tw *w, const struct tok *t)
{
	const char *p = t->attrs;
	struct attr a;
	size_t i, n;
	char *s;

	while (attr_next(&p, t->e, &a) > 0) {
		if (attr_is(&a, "hidden"))
			return 1;
		if (!a.val || !attr_is(&a, "style") || !maybe_none(a.val, a.vlen))
			continue;
		buf_reset(&w->tmp);
		buf_putc(&w->tmp, ';');
		if (decode(a.val, a.vlen, &w->tmp, 1) < 0)
			continue;
		for (s = w->tmp.data, i = n = 0; i < w->tmp.len; i++)
			if (!is_ws(s[i]))       /* blanks out, lower case */
				s[n++] = (char)(is_alpha(s[i]) ? s[i] | 0x20 :
				    s[i]);
		s[n] = '\0';
		for (; (s = strstr(s, ";display:none")) != NULL; s++)
			if (s[13] == '\0' || s[13] == ';' || s[13] == '!')
				return 1;
	}
	return 0;
}

/* While an element is hidden: 1 if tag t ends it and is itself shown. */
static int
tw_unhide(struct tw *w, const struct tok *t)
{
	int start = t->type == TK_START;

	if (strcmp(w->hide, "head") == 0) {
		if (start ? !(t->flags & T_HEAD) && strcmp(t->name, "head") :
		    strcmp(t->name, "head") == 0)
			w->hide[0] = '\0';
		return start && !w->hide[0];
	}
	if (start && strcmp(w->hide, "p") == 0 && (t->flags & T_CLOSEP)) {
		w->hide[0] = '\0';
		return 1;
	}
	if (strcmp(w->hide, t->name) == 0 && !(t->flags & T_VOID)) {
		if (start)
			w->hdepth++;
		else if (--w->hdepth == 0)
			w->hide[0] = '\0';
	}
	return 0;
}

/* Does the link's text just repeat its URL (less a scheme the text lacks,
 * and a trailing '/')? */
static int
same_link(const struct buf *tb, const struct buf *ub)
{
	const char *t = buf_str(tb), *u = buf_str(ub), *c;
	size_t tn = tb->len, un = ub->len;

	if (tn == 0 || tn >= TW_LINKTEXT)
		return 0;
	if ((c = memchr(u, ':', un)) != NULL && !memchr(t, ':', tn)) {
		for (c++; *c == '/'; c++)
			;
		un -= (size_t)(c - u);
		u = c;
	}
	un -= un > 1 && u[un - 1] == '/' && t[tn - 1] != '/';
	return tn == un && memcmp(t, u, tn) == 0;
}

/* The number of URL lurl, 1-based, given on first sight; 0 if no room. */
static int
tw_link_num(struct tw *w)
{
	size_t n = w->lurl.len;
	int i;

	for (i = 0; i < w->nlinks; i++)
		if (w->llen[i] == n && memcmp(w->urls.data + w->loff[i],
		    w->lurl.data, n) == 0)
			return i + 1;
	if (w->nlinks == TW_LINKS)
		return 0;
	w->loff[i] = w->urls.len;
	w->llen[i] = n;
	buf_append(&w->urls, w->lurl.data, n);
	return ++w->nlinks;
}

/* Close the open link: "[N]" after its text unless the text is the URL. */
static void
tw_link_end(struct tw *w)
{
	int n, want, space;

	if (!w->inlink)
		return;
	w->inlink = 0;
	if (same_link(&w->ltext, &w->lurl) || (n = tw_link_num(w)) == 0)
		return;
	tw_flush(w);
	want = w->want;
	space = w->space;       /* owed after the link, so after the mark */
	if (w->ltext.len)
		w->want = 0;    /* the mark stays with the text */
	w->space = 1;
	buf_printf(&w->word, "[%d]", n);
	w->wordw = (int)w->word.len;
	w->last = ']';
	tw_flush(w);
	w->space = space;
	if (w->ltext.len)
		w->want = want;
}

static void
tw_list(struct tw *w, const struct tok *t)
{
	int i = w->nlist < TW_LISTS ? w->nlist : TW_LISTS - 1;
	struct attr a;
	long v;

	if (t->type == TK_START) {
		tw_block(w, w->nlist ? 1 : 2);
		if (w->nlist++ < TW_LISTS) {
			w->list[i].ordered = t->name[0] == 'o';
			/* the value ends at a quote, blank or '>' */
			v = w->list[i].ordered && find_attr(t, "start", &a) ?
			    strtol(a.val, NULL, 10) : 1;
			w->list[i].n = v > 0 && v < 999999 ? (int)v - 1 : 0;
		}
	} else if (w->nlist > 0) {
		w->nlist--;
		w->marker[0] = '\0';
		tw_block(w, w->nlist ? 1 : 2);
	}
}

static void
tw_item(struct tw *w)
{
	int i = (w->nlist < TW_LISTS ? w->nlist : TW_LISTS) - 1;

	tw_block(w, 1);
	strcpy(w->marker, "- ");
	w->markind = 0;
	if (i < 0)
		return;
	w->list[i].n += w->list[i].n < 999999;
	if (w->list[i].ordered)
		snprintf(w->marker, sizeof(w->marker), "%d. ", w->list[i].n);
	w->markind = tw_indent(w) - (w->list[i].ordered ? 3 : 2);
}

static void
tw_tag(struct tw *w, const struct tok *t)
{
	const char *n = t->name;
	int start = t->type == TK_START, q;
	struct attr a;
	char c;

	if (w->hide[0] && !tw_unhide(w, t))
		return;
	if (start && (is_hidden(w, t) || strcmp(n, "head") == 0 ||
	    strcmp(n, "template") == 0)) {
		if (!(t->flags & T_VOID)) {
			memcpy(w->hide, n, sizeof(w->hide));
			w->hdepth = 1;
		}
	} else if (strcmp(n, "a") == 0) {
		tw_link_end(w);
		if (start && find_attr(t, "href", &a)) {
			buf_reset(&w->lurl);
			decode(a.val, a.vlen, &w->lurl, 1);
			url_clean(&w->lurl);
			buf_reset(&w->ltext);
			w->inlink = w->lurl.len && w->lurl.data[0] != '#' &&
			    !has_prefix(&w->lurl, "javascript:") &&
			    !has_prefix(&w->lurl, "vbscript:") &&
			    !has_prefix(&w->lurl, "data:");
			w->lspace = 0;
		}
	} else if (strcmp(n, "img") == 0) {
		if (start && find_attr(t, "alt", &a)) {
			tw_flush(w);
			w->space = w->lspace = 1;
			tw_text(w, a.val, a.vlen, 1);
			tw_flush(w);
			w->space = w->lspace = 1;
		}
	} else if (strcmp(n, "br") == 0) {
		tw_flush(w);
		w->want += w->want < 2;
		w->rowbrk = 1;
	} else if (t->flags & T_SEP) {  /* td, th: a blank line after a */
		if (start && w->rowbrk) /* a cell of lines, else a space */
			tw_block(w, 2);
		tw_flush(w);
		w->space = w->lspace = 1;
		w->rowbrk &= !start;
	} else if (strcmp(n, "li") == 0) {
		if (start)
			tw_item(w);
		else
			tw_block(w, 1);
	} else if (strcmp(n, "ul") == 0 || strcmp(n, "ol") == 0)
		tw_list(w, t);
	else if (n[0] == 'h' && (n[1] == '1' || n[1] == '2') && !n[2]) {
		c = w->hchar;
		tw_flush(w);
		w->hchar = 0;
		if (!start && c && w->hw > 0) {
			q = HTMLRW_TEXT_WIDTH - w->prew;
			w->want = 1;
			tw_rule(w, c, w->hw < q ? w->hw : q);
		}
		tw_block(w, 2);
		w->hchar = start ? (n[1] == '1' ? '=' : '-') : 0;
		w->hw = 0;
	} else if (t->flags & (T_LINE | T_PARA)) {
		q = strcmp(n, "tr") == 0;
		tw_block(w, t->flags & T_PARA || (q && w->rowbrk) ? 2 : 1);
		if (q || (start && strcmp(n, "table") == 0))
			w->rowbrk = 0;
		else if (strcmp(n, "blockquote") == 0)
			w->quote += start ? 1 : -(w->quote > 0);
		else if (strcmp(n, "pre") == 0)
			w->pre += start ? 1 : -(w->pre > 0);
		else if (strcmp(n, "hr") == 0 && start) {
			q = w->quote < TW_QUOTES ? w->quote : TW_QUOTES;
			tw_rule(w, '-', HTMLRW_TEXT_WIDTH - 2 * q -
			    tw_indent(w));
			tw_block(w, 2);
		}
	}
}

int
htmlrw_to_text(const char *html, size_t len, struct buf *out)
{
	struct lex lx = { NULL, NULL, "" };
	struct tok t;
	struct tw *w;
	const char *p;
	int rc;

	if (!html)
		html = "", len = 0;
	if (!(w = calloc(1, sizeof(*w))))
		return -1;
	w->out = out;
	w->base = w->line = out->len;
	lx.p = html;
	lx.end = html + len;
	do {
		lex_next(&lx, &t);
		if (t.type == TK_START || t.type == TK_END)
			tw_tag(w, &t);
		else if (t.type == TK_TEXT && w->hide[0]) {
			for (p = t.s; p < t.e && is_ws(*p); p++)
				;
			if (p < t.e && strcmp(w->hide, "head") == 0) {
				w->hide[0] = '\0';      /* text ends <head> */
				tw_text(w, t.s, (size_t)(t.e - t.s), 0);
			}
		} else if (t.type == TK_TEXT)
			tw_text(w, t.s, (size_t)(t.e - t.s), 0);
	} while (t.type != TK_EOF && !out->overflow);
	tw_link_end(w);
	tw_flush(w);
	if (out->len > w->base)
		tw_newline(w);
	if (w->nlinks)
		buf_puts(out, out->len > w->base ? "\nLinks:\n" : "Links:\n");
	for (int i = 0; i < w->nlinks; i++)
		buf_printf(out, "[%d] %.*s\n", i + 1, (int)w->llen[i],
		    w->urls.data + w->loff[i]);
	rc = out->overflow || w->word.overflow || w->tmp.overflow ||
	    w->urls.overflow || w->lurl.overflow ? -1 : 0;
	buf_free(&w->word);
	buf_free(&w->lurl);
	buf_free(&w->ltext);
	buf_free(&w->urls);
	buf_free(&w->tmp);
	free(w);
	return rc;
}
