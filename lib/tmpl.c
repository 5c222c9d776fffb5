/*
 * tmpl - Mustache compiler and renderer. See tmpl.h.
 *
 * tmpl_compile() works on a private copy of the source in three passes:
 *  1. lex: split it into text and tag tokens, following set-delimiter tags;
 *  2. pair: match sections, blocks and parents with their closing tags,
 *     decide which tags are standalone and trim their lines' whitespace;
 *  3. build: turn the tokens into a tree of nodes.
 * Rendering walks the tree and never re-parses. Text nodes, names and
 * indentation strings point into the private copy; names are NUL-terminated
 * in place (the byte after a name is inside its tag), and the dots of dotted
 * names become NULs, so "a.b" is stored as "a\0b" with 2 parts.
 *
 * Indentation: a MARK node stands at the start of each source line that
 * survives compilation. When the output is at the start of a line, a MARK
 * writes the current indentation, which standalone partials and parents
 * extend. Interpolated data is never indented. A block with a standalone
 * opening tag strips its "intrinsic" indentation (that of the line after the
 * tag) from its lines; an overriding block is re-indented to the indentation
 * of the block it replaces.
 *
 * Not here: lambdas, reading files other than in tmpl_set_load_dir(),
 * logging, global state.
 */
#include "tmpl.h"

#include <sys/stat.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TMPL_MAX_DIRS   16      /* directory nesting in tmpl_set_load_dir */

enum tmpl_kind {
	N_TEXT,         /* s, len: literal text */
	N_MARK,         /* start of a source line: indentation goes here */
	N_VAR,          /* s, len: name and its number of parts (0: ".") */
	N_RAW,          /* same, never escaped */
	N_SECT,         /* name; kids */
	N_INV,          /* name; kids */
	N_PARTIAL,      /* s: name; ind if sa */
	N_PARENT,       /* s: name; ind if sa; kids: the blocks passed */
	N_BLOCK         /* s: name; ind: strip; site; kids: default content */
};

struct tmpl_node {
	enum tmpl_kind kind;
	int sa;                 /* standalone: partial, parent, block opener */
	const char *s;
	size_t len;
	const char *ind;        /* partial/parent indentation, block strip */
	size_t indlen;
	const char *site;       /* block: indentation for an override */
	size_t sitelen;
	struct tmpl_node *kids;
	size_t nkids;
};

struct tmpl {
	char *src;              /* private copy; nodes point into it */
	struct tmpl_node *kids;
	size_t nkids;
};

/* A token: text, or a tag with its sigil ('v' for a plain variable). */
struct tmpl_tok {
	char type;              /* 0 for text */
	unsigned lclear:1;      /* only blanks before it on its line */
	unsigned rclear:1;      /* only blanks and a newline (or EOF) after */
	unsigned tlead:1;       /* standalone: drop its line's leading blanks */
	unsigned ttrail:1;      /* standalone: drop the rest of its line */
	unsigned body:1;        /* opener directly inside a parent tag */
	size_t s, e;            /* text, or the whole tag */
	size_t ns, ne;          /* tag name (content for comments) */
	size_t ls;              /* start of the leading blanks */
	size_t re;              /* end of the trailing blanks and newline */
	size_t match;           /* index of the matching opener/closer */
	int line, col;
};

struct tmpl_vec {
	struct tmpl_node *v;
	size_t n, cap;
};

/* An open container while building: the root, a section, block, parent. */
struct tmpl_cont {
	size_t tok;
	struct tmpl_vec kids;
	const char *abs;        /* blanks stripped from each line start */
	size_t abslen;
};

struct tmpl_cc {
	char *src;
	size_t len;
	struct tmpl_tok *tok;
	size_t ntok, captok;
	const char *name;
	struct tmpl_error *err;
};

static int
cc_error(struct tmpl_cc *c, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int
cc_error(struct tmpl_cc *c, int line, int col, const char *fmt, ...)
{
	va_list ap;

	if (!c->err)
		return -1;
	snprintf(c->err->file, sizeof(c->err->file), "%s",
	    c->name ? c->name : "");
	c->err->line = line;
	c->err->col = col;
	va_start(ap, fmt);
	vsnprintf(c->err->msg, sizeof(c->err->msg), fmt, ap);
	va_end(ap);
	return -1;
}

static int
is_blank(char ch)
{
	return ch == ' ' || ch == '\t';
}

static int
is_space(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' ||
	    ch == '\v' || ch == '\f';
}

/* Length of a name for messages: long names are cut. */
static int
mlen(size_t n)
{
	return n > 64 ? 64 : (int)n;
}

static struct tmpl_tok *
tok_new(struct tmpl_cc *c)
{
	struct tmpl_tok *p;
	size_t ncap;

	if (c->ntok == c->captok) {
		ncap = c->captok ? c->captok * 2 : 64;
		p = realloc(c->tok, ncap * sizeof(*p));
		if (!p)
			return NULL;
		c->tok = p;
		c->captok = ncap;
	}
	p = &c->tok[c->ntok++];
	memset(p, 0, sizeof(*p));
	return p;
}

/*
 * Find the closing delimiter of a tag whose content starts at i. For {{{ and
 * {{= the closer must be preceded by '}' or '='. Returns its offset or
 * (size_t)-1.
 */
static size_t
find_close(const struct tmpl_cc *c, size_t i, const char *ctag, size_t clen,
    char before)
{
	const char *q, *start = c->src + i;

	while (i < c->len) {
		q = memmem(c->src + i, c->len - i, ctag, clen);
		if (!q)
			break;
		if (!before || (q > start && q[-1] == before))
			return (size_t)(q - c->src);
		i = (size_t)(q - c->src) + 1;
	}
	return (size_t)-1;
}

/* Pass 1: tokens, with line/col and the clearance around each tag. */
static int
lex(struct tmpl_cc *c)
{
	static const char sigils[] = "#^/><$&{!=";
	const char *otag = "{{", *ctag = "}}", *q;
	size_t olen = 2, clen = 2, p = 0, counted = 0, bol = 0;
	size_t i, k, ce, cpos, w1, w1e, w2, w2e;
	int line = 1, col;
	struct tmpl_tok *t;
	char type, *src = c->src;

	while (p < c->len) {
		q = memmem(src + p, c->len - p, otag, olen);
		k = q ? (size_t)(q - src) : c->len;
		if (k > p) {
			if (!(t = tok_new(c)))
				return cc_error(c, 0, 0, "out of memory");
			t->s = p;
			t->e = k;
		}
		if (!q)
			break;
		for (; counted < k; counted++)
			if (src[counted] == '\n') {
				line++;
				bol = counted + 1;
			}
		col = (int)(k - bol) + 1;
		i = k + olen;
		type = 'v';
		if (i < c->len && src[i] != '\0' && strchr(sigils, src[i]))
			type = src[i++];
		cpos = find_close(c, i, ctag, clen,
		    type == '{' ? '}' : type == '=' ? '=' : 0);
		if (cpos == (size_t)-1)
			return cc_error(c, line, col,
			    "unclosed tag: no '%.*s' after '%.*s'",
			    mlen(clen), ctag, mlen(olen), otag);
		ce = (type == '{' || type == '=') ? cpos - 1 : cpos;
		if (!(t = tok_new(c)))
			return cc_error(c, 0, 0, "out of memory");
		t->type = type;
		t->s = k;
		t->e = cpos + clen;
		t->line = line;
		t->col = col;
		p = t->e;
		/* Clearance on the left and on the right of the tag. */
		for (k = t->s; k > 0 && is_blank(src[k - 1]); k--)
			;
		t->ls = k;
		t->lclear = k == 0 || src[k - 1] == '\n';
		for (k = t->e; k < c->len && is_blank(src[k]); k++)
			;
		if (k == c->len)
			t->rclear = 1;
		else if (src[k] == '\n')
			t->rclear = 1, k++;
		else if (src[k] == '\r' && k + 1 < c->len && src[k + 1] == '\n')
			t->rclear = 1, k += 2;
		t->re = k;
		/* Trim the content. */
		while (i < ce && is_space(src[i]))
			i++;
		while (ce > i && is_space(src[ce - 1]))
			ce--;
		t->ns = i;
		t->ne = ce;
		if (type == '!')
			continue;
		if (type == '=') {
			for (w1 = i; i < ce && !is_space(src[i]); i++)
				;
			for (w1e = i; i < ce && is_space(src[i]); i++)
				;
			for (w2 = i; i < ce && !is_space(src[i]); i++)
				;
			w2e = i;
			if (w1e == w1 || w2e == w2 || w2e != ce)
				return cc_error(c, line, col,
				    "invalid set-delimiter tag: want "
				    "{{=OPEN CLOSE=}}");
			otag = src + w1;
			olen = w1e - w1;
			ctag = src + w2;
			clen = w2e - w2;
			continue;
		}
		if (i == ce)
			return cc_error(c, line, col, "empty tag name");
		for (k = i; k < ce; k++)
			if (is_space(src[k]) || src[k] == '\0')
				return cc_error(c, line, col,
				    "invalid tag name '%.*s'",
				    mlen(ce - i), src + i);
	}
	return 0;
}

static int
same_name(const struct tmpl_cc *c, const struct tmpl_tok *a,
    const struct tmpl_tok *b)
{
	return a->ne - a->ns == b->ne - b->ns &&
	    memcmp(c->src + a->ns, c->src + b->ns, a->ne - a->ns) == 0;
}

static const char *
kind_name(char type)
{
	switch (type) {
	case '$':
		return "block";
	case '<':
		return "parent";
	case '^':
		return "inverted section";
	default:
		return "section";
	}
}

/* Pass 2: pair openers and closers; decide standalone tags; trim text. */
static int
pair(struct tmpl_cc *c)
{
	size_t stack[TMPL_MAX_DEPTH], sp = 0, k;
	struct tmpl_tok *t, *o, *x;
	int sa;

	for (k = 0; k < c->ntok; k++) {
		t = &c->tok[k];
		switch (t->type) {
		case '#':
		case '^':
		case '$':
		case '<':
			if (sp == TMPL_MAX_DEPTH)
				return cc_error(c, t->line, t->col,
				    "sections nested deeper than %d",
				    TMPL_MAX_DEPTH);
			t->body = sp > 0 && c->tok[stack[sp - 1]].type == '<';
			stack[sp++] = k;
			break;
		case '/':
			if (sp == 0)
				return cc_error(c, t->line, t->col,
				    "unexpected closing tag '%.*s'",
				    mlen(t->ne - t->ns), c->src + t->ns);
			o = &c->tok[stack[sp - 1]];
			if (!same_name(c, o, t))
				return cc_error(c, t->line, t->col,
				    "mismatched closing tag '%.*s', "
				    "expected '%.*s'",
				    mlen(t->ne - t->ns), c->src + t->ns,
				    mlen(o->ne - o->ns), c->src + o->ns);
			o->match = k;
			t->match = stack[--sp];
			break;
		}
	}
	if (sp > 0) {
		o = &c->tok[stack[sp - 1]];
		return cc_error(c, o->line, o->col,
		    "unclosed %s '%.*s' opened at %d:%d", kind_name(o->type),
		    mlen(o->ne - o->ns), c->src + o->ns, o->line, o->col);
	}

	/*
	 * Standalone tags. Inside a parent tag only blocks count, so a block
	 * there needs clearance only on its content's side, and a parent's
	 * tags count as standalone when their outer sides are clear and so is
	 * the inner side of one of them: "{{<p}}{{/p}}" alone on its line is.
	 */
	for (k = 0; k < c->ntok; k++) {
		t = &c->tok[k];
		sa = t->lclear && t->rclear;
		switch (t->type) {
		case '!':
		case '=':
		case '>':
		case '#':
		case '^':
			t->tlead = t->ttrail = sa;
			break;
		case '$':
			if (t->body)
				t->ttrail = t->rclear;
			else
				t->tlead = t->ttrail = sa;
			break;
		case '<':
			x = &c->tok[t->match];
			t->tlead = t->lclear && (t->rclear || x->rclear);
			x->ttrail = x->rclear && (x->lclear || t->lclear);
			break;
		case '/':
			o = &c->tok[t->match];
			if (o->type == '$' && o->body)
				t->tlead = t->lclear;
			else if (o->type != '<')
				t->tlead = t->ttrail = sa;
			break;
		}
	}
	for (k = 0; k < c->ntok; k++) {
		t = &c->tok[k];
		if (t->tlead && k > 0 && c->tok[k - 1].type == 0) {
			x = &c->tok[k - 1];
			x->e = t->ls > x->s ? t->ls : x->s;
		}
		if (t->ttrail && k + 1 < c->ntok && c->tok[k + 1].type == 0) {
			x = &c->tok[k + 1];
			x->s = t->re < x->e ? t->re : x->e;
		}
	}
	return 0;
}

static void
nodes_free(struct tmpl_node *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		nodes_free(v[i].kids, v[i].nkids);
	free(v);
}

static struct tmpl_node *
vec_push(struct tmpl_vec *vec, enum tmpl_kind kind)
{
	struct tmpl_node *p;
	size_t ncap;

	if (vec->n == vec->cap) {
		ncap = vec->cap ? vec->cap * 2 : 8;
		p = realloc(vec->v, ncap * sizeof(*p));
		if (!p)
			return NULL;
		vec->v = p;
		vec->cap = ncap;
	}
	p = &vec->v[vec->n++];
	memset(p, 0, sizeof(*p));
	p->kind = kind;
	return p;
}

static int
at_line_start(const struct tmpl_cc *c, size_t pos)
{
	return pos == 0 || c->src[pos - 1] == '\n';
}

/* How many leading bytes of s[0..n) match the blanks in abs[0..alen). */
static size_t
common(const char *s, size_t n, const char *abs, size_t alen)
{
	size_t k;

	for (k = 0; k < n && k < alen && s[k] == abs[k]; k++)
		;
	return k;
}

/* Text [s, e): a MARK at each line start, minus the container's strip. */
static int
emit_text(struct tmpl_cc *c, struct tmpl_cont *ct, size_t s, size_t e)
{
	struct tmpl_node *n;
	const char *nl;
	size_t le;

	while (s < e) {
		nl = memchr(c->src + s, '\n', e - s);
		le = nl ? (size_t)(nl - c->src) + 1 : e;
		if (at_line_start(c, s)) {
			if (!vec_push(&ct->kids, N_MARK))
				return -1;
			s += common(c->src + s, le - s, ct->abs, ct->abslen);
		}
		if (le > s) {
			if (!(n = vec_push(&ct->kids, N_TEXT)))
				return -1;
			n->s = c->src + s;
			n->len = le - s;
		}
		s = le;
	}
	return 0;
}

/* NUL-terminate the name of t in place; split on dots if `dotted`. */
static size_t
name_parts(struct tmpl_cc *c, const struct tmpl_tok *t, int dotted)
{
	size_t i, n = 1;

	c->src[t->ne] = '\0';
	if (!dotted)
		return 1;
	if (t->ne - t->ns == 1 && c->src[t->ns] == '.')
		return 0;
	for (i = t->ns; i < t->ne; i++)
		if (c->src[i] == '.') {
			c->src[i] = '\0';
			n++;
		}
	return n;
}

/* Close container ct (opened by token o, closed by t) into parent pt. */
static int
close_cont(struct tmpl_cc *c, struct tmpl_cont *ct, struct tmpl_cont *pt,
    const struct tmpl_tok *t)
{
	const struct tmpl_tok *o = &c->tok[ct->tok];
	struct tmpl_node *n;
	size_t i, j, k;

	if (o->type == '<') {
		/* Only the blocks inside a parent tag matter. */
		for (i = j = 0; i < ct->kids.n; i++) {
			if (ct->kids.v[i].kind == N_BLOCK)
				ct->kids.v[j++] = ct->kids.v[i];
			else
				nodes_free(ct->kids.v[i].kids,
				    ct->kids.v[i].nkids);
		}
		ct->kids.n = j;
	}
	if (!(n = vec_push(&pt->kids, o->type == '#' ? N_SECT :
	    o->type == '^' ? N_INV : o->type == '$' ? N_BLOCK : N_PARENT)))
		return -1;
	n->s = c->src + o->ns;
	n->len = name_parts(c, o, o->type == '#' || o->type == '^');
	n->kids = ct->kids.v;
	n->nkids = ct->kids.n;
	ct->kids.v = NULL;
	ct->kids.n = 0;
	if (o->type == '<') {
		n->sa = o->tlead;
		k = common(c->src + o->ls, o->s - o->ls, pt->abs, pt->abslen);
		n->ind = c->src + o->ls + k;
		n->indlen = o->s - o->ls - k;
	} else if (o->type == '$') {
		n->sa = o->ttrail;
		if (n->sa) {
			/* Intrinsic indentation, relative to the parent's. */
			k = common(ct->abs, ct->abslen, pt->abs, pt->abslen);
			n->ind = n->site = ct->abs + k;
			n->indlen = n->sitelen = ct->abslen - k;
		} else if (o->lclear && t->rclear) {
			/* {{$b}}...{{/b}} alone on its line(s). */
			k = common(c->src + o->ls, o->s - o->ls, pt->abs,
			    pt->abslen);
			n->site = c->src + o->ls + k;
			n->sitelen = o->s - o->ls - k;
		}
	}
	return 0;
}

/* Pass 3: the tree. */
static int
build(struct tmpl_cc *c, struct tmpl *tp)
{
	struct tmpl_cont st[TMPL_MAX_DEPTH + 1], *top;
	struct tmpl_node *n;
	struct tmpl_tok *t;
	size_t sp = 0, k, i;

	memset(&st[0], 0, sizeof(st[0]));
	st[0].abs = "";
	for (k = 0; k < c->ntok; k++) {
		t = &c->tok[k];
		top = &st[sp];
		if (t->type == 0) {
			if (emit_text(c, top, t->s, t->e) < 0)
				goto nomem;
			continue;
		}
		if (!t->tlead && at_line_start(c, t->s) &&
		    !vec_push(&top->kids, N_MARK))
			goto nomem;
		switch (t->type) {
		case 'v':
		case '&':
		case '{':
			if (!(n = vec_push(&top->kids,
			    t->type == 'v' ? N_VAR : N_RAW)))
				goto nomem;
			n->s = c->src + t->ns;
			n->len = name_parts(c, t, 1);
			break;
		case '>':
			if (!(n = vec_push(&top->kids, N_PARTIAL)))
				goto nomem;
			n->s = c->src + t->ns;
			n->len = name_parts(c, t, 0);
			n->sa = t->tlead;
			i = common(c->src + t->ls, t->s - t->ls, top->abs,
			    top->abslen);
			n->ind = c->src + t->ls + i;
			n->indlen = t->s - t->ls - i;
			break;
		case '#':
		case '^':
		case '$':
		case '<':
			sp++;
			memset(&st[sp], 0, sizeof(st[sp]));
			st[sp].tok = k;
			st[sp].abs = top->abs;
			st[sp].abslen = top->abslen;
			if (t->type == '$' && t->ttrail) {
				for (i = t->re; i < c->len &&
				    is_blank(c->src[i]); i++)
					;
				st[sp].abs = c->src + t->re;
				st[sp].abslen = i - t->re;
			}
			break;
		case '/':
			if (close_cont(c, &st[sp], &st[sp - 1], t) < 0)
				goto nomem;
			sp--;
			break;
		}
	}
	tp->kids = st[0].kids.v;
	tp->nkids = st[0].kids.n;
	return 0;
nomem:
	for (;;) {
		nodes_free(st[sp].kids.v, st[sp].kids.n);
		if (sp-- == 0)
			break;
	}
	return cc_error(c, 0, 0, "out of memory");
}

int
tmpl_compile(const char *name, const char *src, size_t len,
    struct tmpl **out, struct tmpl_error *err)
{
	struct tmpl_cc c;
	struct tmpl *t;

	memset(&c, 0, sizeof(c));
	c.name = name;
	c.err = err;
	if (len > TMPL_MAX_SIZE)
		return cc_error(&c, 0, 0, "template too large: %zu bytes, "
		    "max %d", len, TMPL_MAX_SIZE);
	if (!(t = calloc(1, sizeof(*t))) || !(t->src = malloc(len + 1))) {
		free(t);
		return cc_error(&c, 0, 0, "out of memory");
	}
	if (len)
		memcpy(t->src, src, len);
	t->src[len] = '\0';
	c.src = t->src;
	c.len = len;
	if (lex(&c) < 0 || pair(&c) < 0 || build(&c, t) < 0) {
		free(c.tok);
		free(t->src);
		free(t);
		return -1;
	}
	free(c.tok);
	*out = t;
	return 0;
}

void
tmpl_free(struct tmpl *t)
{
	if (!t)
		return;
	nodes_free(t->kids, t->nkids);
	free(t->src);
	free(t);
}

/* ---- Rendering ---- */

struct tmpl_frame {             /* the context stack */
	const json_t *v;
	const struct tmpl_frame *up;
};

struct tmpl_env {               /* parent tags being expanded, innermost 1st */
	const struct tmpl_node *parent;
	const struct tmpl_env *up;
};

struct tmpl_active {            /* overriding blocks being rendered */
	const struct tmpl_node *block;
	const struct tmpl_active *up;
};

struct tmpl_r {
	struct buf *out;
	const struct tmpl_set *set;
	enum tmpl_escape esc;
	struct buf ind;         /* indentation; the current one is from base */
	size_t base;
	int bol;                /* output is at the start of a line */
	int depth;
	unsigned long steps;    /* nodes visited, against TMPL_MAX_STEPS */
	const struct tmpl_active *active;
};

static int render_nodes(struct tmpl_r *, const struct tmpl_node *, size_t,
    const struct tmpl_frame *, const struct tmpl_env *);

static int
put(struct tmpl_r *r, const char *s, size_t n)
{
	if (n == 0)
		return 0;
	if (buf_append(r->out, s, n) < 0)
		return -1;
	r->bol = s[n - 1] == '\n';
	return 0;
}

static int
put_escaped(struct tmpl_r *r, const char *s, size_t n)
{
	size_t i, from = 0;
	const char *e;

	for (i = 0; i < n; i++) {
		switch (s[i]) {
		case '&':
			e = "&amp;";
			break;
		case '<':
			e = "&lt;";
			break;
		case '>':
			e = "&gt;";
			break;
		case '"':
			e = "&quot;";
			break;
		case '\'':
			e = "&#39;";
			break;
		default:
			continue;
		}
		if (put(r, s + from, i - from) < 0 || put(r, e, strlen(e)) < 0)
			return -1;
		from = i + 1;
	}
	return put(r, s + from, n - from);
}

/* The shortest %g form of d that reads back as d. */
static void
fmt_real(char *p, size_t size, double d)
{
	int prec;

	for (prec = 1; prec < 17; prec++) {
		snprintf(p, size, "%.*g", prec, d);
		if (strtod(p, NULL) == d)
			return;
	}
	snprintf(p, size, "%.17g", d);
}

static int
put_value(struct tmpl_r *r, const json_t *v, int escape)
{
	char num[64], *dump = NULL;
	const char *s;
	size_t n;
	int rc;

	switch (json_typeof(v)) {
	case JSON_STRING:
		s = json_string_value(v);
		n = json_string_length(v);
		break;
	case JSON_INTEGER:
		snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT,
		    json_integer_value(v));
		s = num;
		n = strlen(s);
		break;
	case JSON_REAL:
		fmt_real(num, sizeof(num), json_real_value(v));
		s = num;
		n = strlen(s);
		break;
	case JSON_TRUE:
		s = "true";
		n = 4;
		break;
	case JSON_FALSE:
		s = "false";
		n = 5;
		break;
	case JSON_NULL:
		return 0;
	default:
		if (!(dump = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY)))
			return -1;
		s = dump;
		n = strlen(s);
		break;
	}
	rc = escape ? put_escaped(r, s, n) : put(r, s, n);
	free(dump);
	return rc;
}

/* Resolve a (dotted) name against the context stack; NULL if missing. */
static const json_t *
lookup(const struct tmpl_frame *f, const char *name, size_t nparts)
{
	const json_t *v = NULL;

	if (nparts == 0)
		return f ? f->v : NULL;
	for (; f; f = f->up)
		if (json_is_object(f->v) &&
		    (v = json_object_get(f->v, name)) != NULL)
			break;
	while (v && --nparts > 0) {
		name += strlen(name) + 1;
		v = json_is_object(v) ? json_object_get(v, name) : NULL;
	}
	return v;
}

static int
truthy(const json_t *v)
{
	return v && !json_is_null(v) && !json_is_false(v) &&
	    !(json_is_array(v) && json_array_size(v) == 0);
}

/*
 * The outermost parent tag's block named `name` (the top level wins), but
 * not one being rendered already: {{$a}}{{$a}}..{{/a}}{{/a}} inside a
 * parent tag would recurse.
 */
static const struct tmpl_node *
find_block(const struct tmpl_r *r, const struct tmpl_env *env,
    const char *name)
{
	const struct tmpl_node *found = NULL, *b;
	const struct tmpl_active *a;
	size_t i;

	for (; env; env = env->up)
		for (i = 0; i < env->parent->nkids; i++) {
			b = &env->parent->kids[i];
			if (strcmp(b->s, name) != 0)
				continue;
			for (a = r->active; a && a->block != b; a = a->up)
				;
			if (!a)
				found = b;
		}
	return found;
}

/* Write the current indentation if the output is at a line start. */
static int
mark(struct tmpl_r *r)
{
	if (!r->bol)
		return 0;
	return put(r, r->ind.data + r->base, r->ind.len - r->base);
}

/*
 * Render kids one level deeper, with `ind` appended to the indentation or,
 * if `fresh`, with only `ind` as the indentation.
 */
static int
descend(struct tmpl_r *r, const struct tmpl_node *kids, size_t n,
    const char *ind, size_t indlen, int fresh, const struct tmpl_frame *f,
    const struct tmpl_env *env)
{
	size_t len = r->ind.len, base = r->base;
	int rc;

	if (r->depth >= TMPL_MAX_DEPTH ||
	    buf_append(&r->ind, ind, indlen) < 0)
		return -1;
	if (fresh)
		r->base = len;
	r->depth++;
	rc = render_nodes(r, kids, n, f, env);
	r->depth--;
	r->ind.len = len;
	r->base = base;
	return rc;
}

static int
render_nodes(struct tmpl_r *r, const struct tmpl_node *kids, size_t n,
    const struct tmpl_frame *f, const struct tmpl_env *env)
{
	const struct tmpl_node *nd, *o;
	const struct tmpl *t;
	struct tmpl_active act;
	struct tmpl_frame fr;
	struct tmpl_env en;
	const json_t *v;
	size_t i, j;
	int rc;

	for (i = 0; i < n; i++) {
		nd = &kids[i];
		if (++r->steps > TMPL_MAX_STEPS)
			return -1;
		switch (nd->kind) {
		case N_TEXT:
			if (put(r, nd->s, nd->len) < 0)
				return -1;
			break;
		case N_MARK:
			if (mark(r) < 0)
				return -1;
			break;
		case N_VAR:
		case N_RAW:
			v = lookup(f, nd->s, nd->len);
			if (v && put_value(r, v, nd->kind == N_VAR &&
			    r->esc == TMPL_ESCAPE_HTML) < 0)
				return -1;
			break;
		case N_SECT:
			v = lookup(f, nd->s, nd->len);
			if (!truthy(v))
				break;
			fr.up = f;
			for (j = 0; j < (json_is_array(v) ?
			    json_array_size(v) : 1); j++) {
				fr.v = json_is_array(v) ?
				    json_array_get(v, j) : v;
				if (descend(r, nd->kids, nd->nkids, "", 0, 0,
				    &fr, env) < 0)
					return -1;
			}
			break;
		case N_INV:
			if (!truthy(lookup(f, nd->s, nd->len)) &&
			    descend(r, nd->kids, nd->nkids, "", 0, 0, f,
			    env) < 0)
				return -1;
			break;
		case N_PARTIAL:
		case N_PARENT:
			if (!(t = tmpl_set_get(r->set, nd->s)))
				break;
			en.parent = nd;
			en.up = env;
			if (descend(r, t->kids, t->nkids, nd->ind,
			    nd->sa ? nd->indlen : 0, !nd->sa, f,
			    nd->kind == N_PARENT ? &en : env) < 0)
				return -1;
			break;
		case N_BLOCK:
			if (!(o = find_block(r, env, nd->s))) {
				if (descend(r, nd->kids, nd->nkids, nd->ind,
				    nd->indlen, 0, f, env) < 0)
					return -1;
				break;
			}
			/* An override: re-indent it to this block's place. */
			if (nd->sa && !o->sa && r->bol &&
			    (put(r, r->ind.data + r->base,
			    r->ind.len - r->base) < 0 ||
			    put(r, nd->site, nd->sitelen) < 0))
				return -1;
			act.block = o;
			act.up = r->active;
			r->active = &act;
			rc = descend(r, o->kids, o->nkids, nd->site,
			    nd->sitelen, 0, f, env);
			r->active = act.up;
			if (rc < 0)
				return -1;
			break;
		}
	}
	return 0;
}

int
tmpl_render(const struct tmpl *t, const json_t *data,
    const struct tmpl_set *partials, enum tmpl_escape esc, struct buf *out)
{
	struct tmpl_frame root = { data, NULL };
	struct tmpl_r r;
	int rc;

	if (!t)
		return -1;
	memset(&r, 0, sizeof(r));
	r.out = out;
	r.set = partials;
	r.esc = esc;
	r.bol = 1;
	buf_init(&r.ind, TMPL_MAX_SIZE);
	/* buf data is NULL until the first append; give it one. */
	if (buf_append(&r.ind, "", 0) < 0)
		return -1;
	rc = render_nodes(&r, t->kids, t->nkids, data ? &root : NULL, NULL);
	buf_free(&r.ind);
	return rc < 0 || out->overflow ? -1 : 0;
}

int
tmpl_render_string(const char *src, const json_t *data,
    enum tmpl_escape esc, struct buf *out, struct tmpl_error *err)
{
	struct tmpl *t;
	int rc;

	if (tmpl_compile("<string>", src, strlen(src), &t, err) < 0)
		return -1;
	rc = tmpl_render(t, data, NULL, esc, out);
	tmpl_free(t);
	return rc;
}

/* ---- Sets ---- */

struct tmpl_set_ent {
	char *name;
	struct tmpl *t;
};

struct tmpl_set {
	struct tmpl_set_ent *v;         /* sorted by name */
	size_t n, cap;
};

struct tmpl_set *
tmpl_set_new(void)
{
	return calloc(1, sizeof(struct tmpl_set));
}

void
tmpl_set_free(struct tmpl_set *s)
{
	size_t i;

	if (!s)
		return;
	for (i = 0; i < s->n; i++) {
		free(s->v[i].name);
		tmpl_free(s->v[i].t);
	}
	free(s->v);
	free(s);
}

/* Index of name in s, or where it would go (*found = 0). */
static size_t
set_find(const struct tmpl_set *s, const char *name, int *found)
{
	size_t lo = 0, hi = s->n, mid;
	int cmp;

	*found = 0;
	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		cmp = strcmp(name, s->v[mid].name);
		if (cmp == 0) {
			*found = 1;
			return mid;
		}
		if (cmp < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

/* Store t under name; the set takes t only on success (0). */
static int
set_put(struct tmpl_set *s, const char *name, struct tmpl *t)
{
	struct tmpl_set_ent *v;
	size_t i, ncap;
	char *dup;
	int found;

	i = set_find(s, name, &found);
	if (found) {
		tmpl_free(s->v[i].t);
		s->v[i].t = t;
		return 0;
	}
	if (s->n == s->cap) {
		ncap = s->cap ? s->cap * 2 : 16;
		if (!(v = realloc(s->v, ncap * sizeof(*v))))
			return -1;
		s->v = v;
		s->cap = ncap;
	}
	if (!(dup = strdup(name)))
		return -1;
	memmove(&s->v[i + 1], &s->v[i], (s->n - i) * sizeof(*s->v));
	s->v[i].name = dup;
	s->v[i].t = t;
	s->n++;
	return 0;
}

static int
set_error(struct tmpl_error *err, const char *file, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
set_error(struct tmpl_error *err, const char *file, const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return -1;
	snprintf(err->file, sizeof(err->file), "%s", file);
	err->line = err->col = 0;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	return -1;
}

int
tmpl_set_add(struct tmpl_set *s, const char *name, const char *src,
    size_t len, struct tmpl_error *err)
{
	struct tmpl *t;

	if (tmpl_compile(name, src, len, &t, err) < 0)
		return -1;
	if (set_put(s, name, t) < 0) {
		tmpl_free(t);
		return set_error(err, name, "out of memory");
	}
	return 0;
}

const struct tmpl *
tmpl_set_get(const struct tmpl_set *s, const char *name)
{
	size_t i;
	int found;

	if (!s)
		return NULL;
	i = set_find(s, name, &found);
	return found ? s->v[i].t : NULL;
}

size_t
tmpl_set_count(const struct tmpl_set *s)
{
	return s ? s->n : 0;
}

/* Read path (a regular file of at most TMPL_MAX_SIZE) and add it as name. */
static int
load_file(struct tmpl_set *s, const char *path, const char *name,
    struct tmpl_error *err)
{
	struct tmpl *t;
	struct stat sb;
	char *data;
	size_t len = 0;
	ssize_t got;
	int fd, rc;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return set_error(err, path, "%s", strerror(errno));
	if (fstat(fd, &sb) < 0) {
		rc = errno;
		close(fd);
		return set_error(err, path, "%s", strerror(rc));
	}
	if (!S_ISREG(sb.st_mode) || sb.st_size > TMPL_MAX_SIZE) {
		close(fd);
		if (!S_ISREG(sb.st_mode))
			return set_error(err, path, "not a regular file");
		return set_error(err, path, "template too large: %lld bytes, "
		    "max %d", (long long)sb.st_size, TMPL_MAX_SIZE);
	}
	/* One byte more than allowed, to notice a file that grew. */
	if (!(data = malloc(TMPL_MAX_SIZE + 1))) {
		close(fd);
		return set_error(err, path, "out of memory");
	}
	while (len <= TMPL_MAX_SIZE) {
		got = read(fd, data + len, TMPL_MAX_SIZE + 1 - len);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			rc = errno;
			free(data);
			close(fd);
			return set_error(err, path, "%s", strerror(rc));
		}
		if (got == 0)
			break;
		len += (size_t)got;
	}
	close(fd);
	rc = tmpl_compile(path, data, len, &t, err);
	free(data);
	if (rc < 0)
		return -1;
	if (set_put(s, name, t) < 0) {
		tmpl_free(t);
		return set_error(err, path, "out of memory");
	}
	return 0;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Load dir/rel (rel is "" at the top) into s. */
static int
load_dir(struct tmpl_set *s, const char *dir, const char *rel, int depth,
    struct tmpl_error *err)
{
	static const char ext[] = ".mustache";
	char path[PATH_MAX], sub[PATH_MAX], **names = NULL, **nn;
	size_t n = 0, cap = 0, i, len;
	struct dirent *de;
	struct stat sb;
	DIR *d;
	int rc = 0;

	if (snprintf(path, sizeof(path), "%s%s%s", dir, *rel ? "/" : "",
	    rel) >= (int)sizeof(path))
		return set_error(err, dir, "path too long");
	if (depth > TMPL_MAX_DIRS)
		return set_error(err, path, "directories nested too deeply");
	if (!(d = opendir(path)))
		return set_error(err, path, "%s", strerror(errno));
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 32;
			if (!(nn = realloc(names, cap * sizeof(*nn))))
				goto nomem;
			names = nn;
		}
		if (!(names[n] = strdup(de->d_name)))
			goto nomem;
		n++;
	}
	closedir(d);
	d = NULL;
	if (n > 1)
		qsort(names, n, sizeof(*names), cmp_str);
	for (i = 0; i < n && rc == 0; i++) {
		if (snprintf(sub, sizeof(sub), "%s%s%s", rel, *rel ? "/" : "",
		    names[i]) >= (int)sizeof(sub) ||
		    snprintf(path, sizeof(path), "%s/%s", dir, sub) >=
		    (int)sizeof(path)) {
			rc = set_error(err, dir, "path too long");
			break;
		}
		if (lstat(path, &sb) < 0) {
			rc = set_error(err, path, "%s", strerror(errno));
			break;
		}
		if (S_ISDIR(sb.st_mode)) {
			rc = load_dir(s, dir, sub, depth + 1, err);
			continue;
		}
		len = strlen(sub);
		if (len <= sizeof(ext) - 1 ||
		    strcmp(sub + len - (sizeof(ext) - 1), ext) != 0)
			continue;
		if (S_ISLNK(sb.st_mode) &&
		    (stat(path, &sb) < 0 || !S_ISREG(sb.st_mode)))
			continue;
		sub[len - (sizeof(ext) - 1)] = '\0';
		rc = load_file(s, path, sub, err);
	}
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return rc;
nomem:
	closedir(d);
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return set_error(err, path, "out of memory");
}

int
tmpl_set_load_dir(struct tmpl_set *s, const char *dir, struct tmpl_error *err)
{
	struct tmpl_set *tmp;
	size_t i;

	/* Load into a scratch set so that an error changes nothing. */
	if (!(tmp = tmpl_set_new()))
		return set_error(err, dir, "out of memory");
	if (load_dir(tmp, dir, "", 0, err) < 0) {
		tmpl_set_free(tmp);
		return -1;
	}
	for (i = 0; i < tmp->n; i++) {
		if (set_put(s, tmp->v[i].name, tmp->v[i].t) < 0) {
			tmpl_set_free(tmp);
			return set_error(err, dir, "out of memory");
		}
		tmp->v[i].t = NULL;
	}
	tmpl_set_free(tmp);
	return 0;
}
