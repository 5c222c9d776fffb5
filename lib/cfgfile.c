/*
 * cfgfile - configuration syntax: lexer and parser producing a node tree
 * with positions. See cfgfile.h for the grammar. It does not interpret keys.
 */
#include "cfgfile.h"
#include "buf.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <glob.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define CFGFILE_MAX_FILE   (1024 * 1024)
#define CFGFILE_MAX_VALUE  (64 * 1024)
#define CFGFILE_MAX_DEPTH  16
#define CFGFILE_MAX_INCL   8

enum tok { T_EOF, T_WORD, T_STRING, T_EQ, T_LBRACE, T_RBRACE, T_COMMA,
	T_NL, T_ERR };

struct lexer {
	const char *p, *end;
	struct cfgfile_pos pos;         /* position of the next char */
	struct cfgfile_pos tpos;        /* position of the current token */
	const char *tstart;             /* where the current token starts */
	enum tok tok;
	struct buf text;                /* current token's text */
	struct cfgfile_tree *tree;
	struct cfgfile_errors *errs;
	int incl_depth;
};

void
cfgfile_error(struct cfgfile_errors *e, const struct cfgfile_pos *pos,
    const char *fmt, ...)
{
	struct buf b = BUF_INIT;
	va_list ap;
	char **n;

	if (pos && pos->file && pos->line)
		buf_printf(&b, "%s:%d:%d: ", pos->file, pos->line, pos->col);
	else if (pos && pos->file)
		buf_printf(&b, "%s: ", pos->file);
	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	n = realloc(e->msgs, (e->n + 1) * sizeof(*n));
	if (!n) {
		buf_free(&b);
		return;
	}
	e->msgs = n;
	e->msgs[e->n++] = buf_steal(&b);
}

void
cfgfile_errors_free(struct cfgfile_errors *e)
{
	for (size_t i = 0; i < e->n; i++)
		free(e->msgs[i]);
	free(e->msgs);
	e->msgs = NULL;
	e->n = 0;
}

static int
is_word_char(int c)
{
	return isalnum(c) || strchr("._-:/@+*%", c) != NULL;
}

static void
lex_advance(struct lexer *lx)
{
	if (*lx->p == '\n') {
		lx->pos.line++;
		lx->pos.col = 1;
	} else {
		lx->pos.col++;
	}
	lx->p++;
}

static enum tok
lex_next(struct lexer *lx)
{
	buf_reset(&lx->text);
	for (;;) {
		while (lx->p < lx->end && (*lx->p == ' ' || *lx->p == '\t' ||
		    *lx->p == '\r'))
			lex_advance(lx);
		if (lx->p < lx->end && *lx->p == '#') {
			while (lx->p < lx->end && *lx->p != '\n')
				lex_advance(lx);
			continue;
		}
		break;
	}
	lx->tpos = lx->pos;
	lx->tstart = lx->p;
	if (lx->p >= lx->end)
		return lx->tok = T_EOF;
	switch (*lx->p) {
	case '\n': lex_advance(lx); return lx->tok = T_NL;
	case ';': lex_advance(lx); return lx->tok = T_NL;
	case '=': lex_advance(lx); return lx->tok = T_EQ;
	case '{': lex_advance(lx); return lx->tok = T_LBRACE;
	case '}': lex_advance(lx); return lx->tok = T_RBRACE;
	case ',': lex_advance(lx); return lx->tok = T_COMMA;
	case '"':
		lex_advance(lx);
		while (lx->p < lx->end && *lx->p != '"') {
			char c = *lx->p;

			if (c == '\n') {
				cfgfile_error(lx->errs, &lx->tpos,
				    "unterminated string");
				return lx->tok = T_ERR;
			}
			if (c == '\\') {
				lex_advance(lx);
				if (lx->p >= lx->end)
					break;
				switch (*lx->p) {
				case 'n': c = '\n'; break;
				case 't': c = '\t'; break;
				case '\\': c = '\\'; break;
				case '"': c = '"'; break;
				default:
					cfgfile_error(lx->errs, &lx->pos,
					    "unknown escape '\\%c' in string",
					    isprint((unsigned char)*lx->p) ?
					    *lx->p : '?');
					c = *lx->p;
				}
			}
			if (c == '\0') {
				cfgfile_error(lx->errs, &lx->pos,
				    "NUL byte in string");
				return lx->tok = T_ERR;
			}
			buf_putc(&lx->text, c);
			lex_advance(lx);
		}
		if (lx->p >= lx->end) {
			cfgfile_error(lx->errs, &lx->tpos, "unterminated string");
			return lx->tok = T_ERR;
		}
		lex_advance(lx);
		if (lx->text.overflow) {
			cfgfile_error(lx->errs, &lx->tpos,
			    "string longer than %d bytes", CFGFILE_MAX_VALUE);
			return lx->tok = T_ERR;
		}
		buf_append(&lx->text, "", 0);
		return lx->tok = T_STRING;
	}
	if (is_word_char((unsigned char)*lx->p)) {
		while (lx->p < lx->end && is_word_char((unsigned char)*lx->p)) {
			buf_putc(&lx->text, *lx->p);
			lex_advance(lx);
		}
		return lx->tok = T_WORD;
	}
	cfgfile_error(lx->errs, &lx->tpos, "unexpected character '%c'",
	    isprint((unsigned char)*lx->p) ? *lx->p : '?');
	lex_advance(lx);
	return lx->tok = T_ERR;
}

/* Skip to the end of the line (error recovery). */
static void
lex_sync(struct lexer *lx)
{
	while (lx->tok != T_NL && lx->tok != T_EOF && lx->tok != T_RBRACE)
		lex_next(lx);
}

static struct cfgfile_node *
node_new(enum cfgfile_kind kind, const char *key, const struct cfgfile_pos *pos)
{
	struct cfgfile_node *n = calloc(1, sizeof(*n));

	if (!n || !(n->key = strdup(key))) {
		free(n);
		return NULL;
	}
	n->kind = kind;
	n->pos = *pos;
	return n;
}

static void
node_free(struct cfgfile_node *n)
{
	while (n) {
		struct cfgfile_node *next = n->next;

		free(n->key);
		free(n->title);
		free(n->value);
		free(n->raw);
		for (size_t i = 0; i < n->nitems; i++)
			free(n->items[i]);
		free(n->items);
		free(n->item_pos);
		node_free(n->child);
		free(n);
		n = next;
	}
}

static int parse_text(struct lexer *outer, const char *name, const char *text,
    size_t len, struct cfgfile_node **tail, int depth);
static int parse_file(struct lexer *outer, const char *path,
    const struct cfgfile_pos *from, struct cfgfile_node **tail, int depth);

static int
list_add(struct cfgfile_node *n, const char *s, const struct cfgfile_pos *pos)
{
	char **items = realloc(n->items, (n->nitems + 1) * sizeof(*items));
	struct cfgfile_pos *ps;

	if (!items)
		return -1;
	n->items = items;
	ps = realloc(n->item_pos, (n->nitems + 1) * sizeof(*ps));
	if (!ps)
		return -1;
	n->item_pos = ps;
	if (!(n->items[n->nitems] = strdup(s)))
		return -1;
	n->item_pos[n->nitems++] = *pos;
	return 0;
}

/* After '{' of a list: items separated by commas and newlines. */
static int
parse_list(struct lexer *lx, struct cfgfile_node *n)
{
	int want_item = 1;

	for (;;) {
		lex_next(lx);
		switch (lx->tok) {
		case T_NL:
			continue;
		case T_COMMA:
			if (want_item) {
				cfgfile_error(lx->errs, &lx->tpos,
				    "empty list item");
				return -1;
			}
			want_item = 1;
			continue;
		case T_RBRACE:
			lex_next(lx);
			return 0;
		case T_WORD:
		case T_STRING:
			if (!want_item) {
				cfgfile_error(lx->errs, &lx->tpos,
				    "missing ',' between list items");
				return -1;
			}
			if (list_add(n, buf_str(&lx->text), &lx->tpos) < 0)
				return -1;
			want_item = 0;
			continue;
		case T_EOF:
			cfgfile_error(lx->errs, &n->pos,
			    "list '%s' is not closed with '}'", n->key);
			return -1;
		default:
			if (lx->tok != T_ERR)
				cfgfile_error(lx->errs, &lx->tpos,
				    "unexpected token in list '%s'", n->key);
			return -1;
		}
	}
}

/*
 * Parse statements until '}' (depth > 0) or end of input, appending nodes
 * at *tail. Returns 0 or -1 on an error that cannot be resynchronized.
 */
static int
parse_body(struct lexer *lx, struct cfgfile_node ***tail, int depth,
    const struct cfgfile_pos *open)
{
	for (;;) {
		struct cfgfile_pos kpos;
		struct cfgfile_node *n;
		char *key;

		lex_next(lx);
		if (lx->tok == T_NL)
			continue;
		if (lx->tok == T_EOF) {
			if (depth > 0) {
				cfgfile_error(lx->errs, open,
				    "section is not closed with '}'");
				return -1;
			}
			return 0;
		}
		if (lx->tok == T_RBRACE) {
			if (depth > 0)
				return 0;
			cfgfile_error(lx->errs, &lx->tpos, "unmatched '}'");
			continue;
		}
		if (lx->tok != T_WORD) {
			if (lx->tok != T_ERR)
				cfgfile_error(lx->errs, &lx->tpos,
				    "expected a key name");
			lex_sync(lx);
			if (lx->tok == T_EOF)
				return depth > 0 ? -1 : 0;
			continue;
		}
		kpos = lx->tpos;
		if (!(key = strdup(buf_str(&lx->text))))
			return -1;
		lex_next(lx);
		if (strcmp(key, "include") == 0 && lx->tok == T_STRING) {
			char *path = strdup(buf_str(&lx->text));

			free(key);
			if (!path)
				return -1;
			lex_next(lx);
			parse_file(lx, path, &kpos, *tail, depth);
			free(path);
			while (**tail)
				*tail = &(**tail)->next;
			lex_sync(lx);
			if (lx->tok == T_RBRACE && depth > 0)
				return 0;
			continue;
		}
		if (lx->tok == T_EQ) {
			lex_next(lx);
			if (lx->tok == T_WORD || lx->tok == T_STRING) {
				n = node_new(CFGFILE_VALUE, key, &kpos);
				if (n) {
					n->vpos = lx->tpos;
					n->raw = strndup(lx->tstart,
					    (size_t)(lx->p - lx->tstart));
				}
				if (n && !(n->value = strdup(buf_str(&lx->text)))) {
					node_free(n);
					n = NULL;
				}
				if (n)
					lex_next(lx);
			} else if (lx->tok == T_LBRACE) {
				n = node_new(CFGFILE_LIST, key, &kpos);
				if (n && parse_list(lx, n) < 0) {
					node_free(n);
					n = NULL;
					free(key);
					lex_sync(lx);
					continue;
				}
			} else {
				if (lx->tok != T_ERR)
					cfgfile_error(lx->errs, &lx->tpos,
					    "missing value for '%s'", key);
				free(key);
				lex_sync(lx);
				continue;
			}
			free(key);
			if (!n)
				return -1;
			**tail = n;
			*tail = &n->next;
			if (lx->tok == T_RBRACE && depth > 0)
				return 0;
			if (lx->tok != T_NL && lx->tok != T_EOF) {
				cfgfile_error(lx->errs, &lx->tpos,
				    "unexpected text after the value of '%s'",
				    n->key);
				lex_sync(lx);
			}
			if (lx->tok == T_EOF)
				return depth > 0 ? (cfgfile_error(lx->errs,
				    open, "section is not closed with '}'"), -1)
				    : 0;
			continue;
		}
		/* section: key ["title"] { ... } */
		n = node_new(CFGFILE_SECTION, key, &kpos);
		free(key);
		if (!n)
			return -1;
		if (lx->tok == T_WORD || lx->tok == T_STRING) {
			if (!(n->title = strdup(buf_str(&lx->text)))) {
				node_free(n);
				return -1;
			}
			lex_next(lx);
		}
		while (lx->tok == T_NL)
			lex_next(lx);
		if (lx->tok != T_LBRACE) {
			if (lx->tok != T_ERR)
				cfgfile_error(lx->errs, &kpos,
				    "expected '=' or '{' after '%s'", n->key);
			node_free(n);
			lex_sync(lx);
			continue;
		}
		**tail = n;
		*tail = &n->next;
		if (depth + 1 >= CFGFILE_MAX_DEPTH) {
			cfgfile_error(lx->errs, &kpos, "sections nested too deeply");
			return -1;
		} else {
			struct cfgfile_node **ct = &n->child;

			if (parse_body(lx, &ct, depth + 1, &kpos) < 0)
				return -1;
		}
	}
}

static const char *
tree_add_file(struct cfgfile_tree *t, const char *path)
{
	char **f = realloc(t->files, (t->nfiles + 1) * sizeof(*f));

	if (!f)
		return NULL;
	t->files = f;
	if (!(f[t->nfiles] = strdup(path)))
		return NULL;
	return f[t->nfiles++];
}

static int
parse_text(struct lexer *outer, const char *name, const char *text, size_t len,
    struct cfgfile_node **tail, int depth)
{
	struct lexer lx;
	struct cfgfile_node **t = tail;
	int r;

	memset(&lx, 0, sizeof(lx));
	lx.p = text;
	lx.end = text + len;
	lx.tree = outer->tree;
	lx.errs = outer->errs;
	lx.incl_depth = outer->incl_depth + 1;
	lx.pos.file = tree_add_file(lx.tree, name);
	lx.pos.line = lx.pos.col = 1;
	buf_init(&lx.text, CFGFILE_MAX_VALUE);
	if (!lx.pos.file)
		return -1;
	if (memchr(text, '\0', len)) {
		struct cfgfile_pos p = { lx.pos.file, 0, 0 };

		cfgfile_error(lx.errs, &p, "file contains a NUL byte");
		buf_free(&lx.text);
		return -1;
	}
	r = parse_body(&lx, &t, 0, NULL);
	(void)depth;
	buf_free(&lx.text);
	return r;
}

static int
read_file(const char *path, char **out, size_t *len, struct cfgfile_errors *e,
    const struct cfgfile_pos *from)
{
	struct cfgfile_pos here = { path, 0, 0 };
	const struct cfgfile_pos *at = from ? from : &here;
	struct stat st;
	FILE *f;
	char *p;

	if (!(f = fopen(path, "r"))) {
		cfgfile_error(e, at, "cannot open %s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fileno(f), &st) < 0 || !S_ISREG(st.st_mode)) {
		cfgfile_error(e, at, "%s is not a regular file", path);
		fclose(f);
		return -1;
	}
	if (st.st_size > CFGFILE_MAX_FILE) {
		cfgfile_error(e, at, "%s is larger than %d bytes", path,
		    CFGFILE_MAX_FILE);
		fclose(f);
		return -1;
	}
	if (!(p = malloc((size_t)st.st_size + 1))) {
		fclose(f);
		return -1;
	}
	*len = fread(p, 1, (size_t)st.st_size, f);
	if (ferror(f)) {
		cfgfile_error(e, at, "cannot read %s: %s", path, strerror(errno));
		free(p);
		fclose(f);
		return -1;
	}
	fclose(f);
	p[*len] = '\0';
	*out = p;
	return 0;
}

/* Parse path (relative to the including file's directory) at *tail. */
static int
parse_file(struct lexer *outer, const char *path, const struct cfgfile_pos *from,
    struct cfgfile_node **tail, int depth)
{
	char full[4096];
	glob_t g;
	int r = 0;

	if (outer->incl_depth >= CFGFILE_MAX_INCL) {
		cfgfile_error(outer->errs, from, "includes nested too deeply");
		return -1;
	}
	if (path[0] != '/' && from && from->file) {
		char dir[4096];

		snprintf(dir, sizeof(dir), "%s", from->file);
		snprintf(full, sizeof(full), "%s/%s", dirname(dir), path);
	} else {
		snprintf(full, sizeof(full), "%s", path);
	}
	if (strpbrk(full, "*?[")) {
		if (glob(full, 0, NULL, &g) != 0)
			return 0;       /* a glob matching nothing is fine */
	} else {
		g.gl_pathc = 1;
		g.gl_pathv = NULL;
	}
	for (size_t i = 0; i < g.gl_pathc; i++) {
		const char *p = g.gl_pathv ? g.gl_pathv[i] : full;
		char *text;
		size_t len;

		if (read_file(p, &text, &len, outer->errs, from) < 0) {
			r = -1;
			continue;
		}
		if (parse_text(outer, p, text, len, tail, depth) < 0)
			r = -1;
		free(text);
		while (*tail)
			tail = &(*tail)->next;
	}
	if (g.gl_pathv)
		globfree(&g);
	return r;
}

static int
parse_root(struct cfgfile_tree *tree, struct cfgfile_errors *errs,
    const char *path, const char *text, size_t len)
{
	struct cfgfile_pos top = { "", 0, 0 };
	struct lexer outer;
	size_t nerr = errs->n;

	memset(tree, 0, sizeof(*tree));
	memset(&outer, 0, sizeof(outer));
	outer.tree = tree;
	outer.errs = errs;
	outer.incl_depth = -1;
	if (!(tree->root = node_new(CFGFILE_SECTION, "", &top)))
		return -1;
	if (text)
		parse_text(&outer, path, text, len, &tree->root->child, 0);
	else
		parse_file(&outer, path, NULL, &tree->root->child, 0);
	return errs->n > nerr ? -1 : 0;
}

int
cfgfile_parse(const char *path, struct cfgfile_tree *tree,
    struct cfgfile_errors *errs)
{
	return parse_root(tree, errs, path, NULL, 0);
}

int
cfgfile_parse_string(const char *name, const char *text, size_t len,
    struct cfgfile_tree *tree, struct cfgfile_errors *errs)
{
	return parse_root(tree, errs, name, text, len);
}

void
cfgfile_tree_free(struct cfgfile_tree *tree)
{
	node_free(tree->root);
	for (size_t i = 0; i < tree->nfiles; i++)
		free(tree->files[i]);
	free(tree->files);
	memset(tree, 0, sizeof(*tree));
}

static struct cfgfile_node *
find_section(struct cfgfile_node *root, const char *key, const char *title)
{
	for (struct cfgfile_node *n = root->child; n; n = n->next)
		if (n->kind == CFGFILE_SECTION && n->title &&
		    strcmp(n->key, key) == 0 && strcmp(n->title, title) == 0)
			return n;
	return NULL;
}

/* Append n (detached) to section's children. */
static void
append_child(struct cfgfile_node *section, struct cfgfile_node *n)
{
	struct cfgfile_node **tail = &section->child;

	while (*tail)
		tail = &(*tail)->next;
	n->next = NULL;
	*tail = n;
}

/* Free section's children called key. */
static void
drop_children(struct cfgfile_node *section, const char *key)
{
	struct cfgfile_node **pp = &section->child;

	while (*pp) {
		struct cfgfile_node *n = *pp;

		if (strcmp(n->key, key) == 0) {
			*pp = n->next;
			n->next = NULL;
			node_free(n);
		} else {
			pp = &n->next;
		}
	}
}

int
cfgfile_overlay(struct cfgfile_tree *base, struct cfgfile_tree *over,
    const char *key)
{
	struct cfgfile_node **pp = &over->root->child;
	char **files;

	if (!(files = realloc(base->files, (base->nfiles + over->nfiles + 1) *
	    sizeof(*files))))
		return -1;
	base->files = files;
	for (size_t i = 0; i < over->nfiles; i++)
		base->files[base->nfiles++] = over->files[i];
	over->nfiles = 0;
	while (*pp) {
		struct cfgfile_node *n = *pp, *into;

		if (n->kind != CFGFILE_SECTION || !n->title ||
		    strcmp(n->key, key) != 0) {
			pp = &n->next;
			continue;
		}
		*pp = n->next;
		if (!(into = find_section(base->root, key, n->title))) {
			append_child(base->root, n);
			continue;
		}
		while (n->child) {
			struct cfgfile_node *c = n->child;

			n->child = c->next;
			drop_children(into, c->key);
			append_child(into, c);
		}
		n->next = NULL;
		node_free(n);
	}
	return 0;
}

struct cfgfile_pos
cfgfile_value_pos(const struct cfgfile_node *n, size_t offset)
{
	struct cfgfile_pos p = n->vpos;
	const char *r = n->raw;

	if (!r)
		return p;
	if (*r != '"') {                /* a bare word: no escapes */
		p.col += (int)offset;
		return p;
	}
	r++;
	p.col++;
	for (size_t i = 0; i < offset && *r && *r != '"'; i++) {
		int w = *r == '\\' ? 2 : 1;

		r += w;
		p.col += w;
	}
	return p;
}

struct cfgfile_node *
cfgfile_child(struct cfgfile_node *sec, const char *key)
{
	for (struct cfgfile_node *n = sec->child; n; n = n->next)
		if (strcmp(n->key, key) == 0)
			return n;
	return NULL;
}

struct cfgfile_pos
cfgfile_key_pos(struct cfgfile_node *sec, const char *key)
{
	struct cfgfile_node *n = cfgfile_child(sec, key);

	if (!n)
		return sec->pos;
	return n->kind == CFGFILE_VALUE ? n->vpos : n->pos;
}

struct cfgfile_pos
cfgfile_item_pos(struct cfgfile_node *sec, const char *key, size_t i)
{
	struct cfgfile_node *n = cfgfile_child(sec, key);

	if (n && n->kind == CFGFILE_LIST && i < n->nitems)
		return n->item_pos[i];
	return cfgfile_key_pos(sec, key);
}

int
cfgfile_each_file(const char *dir, const char *what, size_t max_name,
    struct cfgfile_errors *errs,
    void (*fn)(const char *path, const char *name, void *arg), void *arg)
{
	size_t before = errs->n;
	struct dirent *e;
	DIR *d;

	if (!(d = opendir(dir))) {
		if (errno != ENOENT) {
			struct cfgfile_pos p = { dir, 0, 0 };

			cfgfile_error(errs, &p, "cannot read the %ss directory: "
			    "%s", what, strerror(errno));
		}
		return (int)(errs->n - before);
	}
	while ((e = readdir(d)) != NULL) {
		size_t len = strlen(e->d_name), i;
		char path[4096], name[256];

		if (e->d_name[0] == '.' || len < 6 ||
		    strcmp(e->d_name + len - 5, ".conf") != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		for (i = 0; i < len - 5; i++)
			if (!isalnum((unsigned char)e->d_name[i]) &&
			    e->d_name[i] != '-' && e->d_name[i] != '_')
				break;
		if (i < len - 5 || len - 5 > max_name ||
		    len - 5 >= sizeof(name)) {
			struct cfgfile_pos p = { path, 0, 0 };

			cfgfile_error(errs, &p, "%s file names use letters, "
			    "digits, - and _ (at most %zu)", what, max_name);
			continue;
		}
		snprintf(name, sizeof(name), "%.*s", (int)(len - 5), e->d_name);
		fn(path, name, arg);
	}
	closedir(d);
	return (int)(errs->n - before);
}
