/*
 * cfgfile - the configuration file syntax: a lexer and parser that turn a
 * file into a tree of nodes, each carrying its file, line and column.
 *
 *     # comment
 *     key = value                 bare word: letters, digits and . _ - : / @ + * %
 *     key = "quoted \"string\"\n" escapes: \" \\ \n \t
 *     key = { "a", b, "c" }       list
 *     section { key = value }     section
 *     section "title" { ... }     titled section (several allowed)
 *     include "other.conf"        relative to the including file; globs allowed
 *
 * It knows nothing of which keys exist or what they mean: conf.c binds the
 * tree to typed settings and reports unknown keys. It collects every error
 * it can (it resynchronizes at the next line) rather than stopping at the
 * first. Limits: 1 MiB per file, 64 KiB per value, nesting depth 16,
 * include depth 8.
 */
#ifndef LEADCAST_CFGFILE_H
#define LEADCAST_CFGFILE_H

#include <stddef.h>

enum cfgfile_kind { CFGFILE_VALUE, CFGFILE_LIST, CFGFILE_SECTION };

struct cfgfile_pos {
	const char *file;       /* owned by the tree (see cfgfile_tree) */
	int line, col;          /* 1-based */
};

struct cfgfile_node {
	enum cfgfile_kind kind;
	char *key;                      /* option or section name */
	char *title;                    /* SECTION: title or NULL */
	char *value;                    /* VALUE: the text */
	char **items;                   /* LIST: the items */
	struct cfgfile_pos *item_pos;   /* LIST: where each item is */
	size_t nitems;
	struct cfgfile_node *child;     /* SECTION: first child */
	struct cfgfile_node *next;      /* next sibling */
	struct cfgfile_pos pos;         /* where the key is */
	struct cfgfile_pos vpos;        /* VALUE: where the value is */
	char *raw;                      /* VALUE: the value as written */
	int used;                       /* set by whoever consumed it */
};

/* A list of error messages, each "file:line:col: message" where known. */
struct cfgfile_errors {
	char **msgs;
	size_t n;
};

void cfgfile_error(struct cfgfile_errors *e, const struct cfgfile_pos *pos,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void cfgfile_errors_free(struct cfgfile_errors *e);

/*
 * Each NAME.conf of the directory dir, in no set order: fn(path, name, arg).
 * NAME is letters, digits, - and _, at most max_name bytes; another name
 * is an error naming the file ("WHAT file names use ..."). A directory that
 * does not exist holds nothing; one that cannot be read is an error.
 * Returns the number of errors added to errs.
 */
int cfgfile_each_file(const char *dir, const char *what, size_t max_name,
    struct cfgfile_errors *errs,
    void (*fn)(const char *path, const char *name, void *arg), void *arg);

/* A parsed file: its root section and the file names positions point at. */
struct cfgfile_tree {
	struct cfgfile_node *root;      /* a SECTION with key "" */
	char **files;
	size_t nfiles;
};

/*
 * Parse path into *tree. Returns 0, or -1 if any error was added to errs
 * (the tree then holds what could be parsed). The caller frees the tree
 * with cfgfile_tree_free() in both cases.
 */
int cfgfile_parse(const char *path, struct cfgfile_tree *tree,
    struct cfgfile_errors *errs);
/* Same, from memory; name is used in positions. */
int cfgfile_parse_string(const char *name, const char *text, size_t len,
    struct cfgfile_tree *tree, struct cfgfile_errors *errs);
void cfgfile_tree_free(struct cfgfile_tree *tree);

/*
 * Lay over's titled sections called key onto base: a section of over whose
 * title base also has replaces, key by key, what that base section says
 * (keys over does not set stay as they are); any other is added at the
 * end of base. over gives up those nodes and its file names to base, so
 * positions stay valid as long as base; free both trees as usual.
 * Returns 0, or -1 on ENOMEM (base is then usable but incomplete).
 */
int cfgfile_overlay(struct cfgfile_tree *base, struct cfgfile_tree *over,
    const char *key);

/* The first child of section sec called key, or NULL. */
struct cfgfile_node *cfgfile_child(struct cfgfile_node *sec, const char *key);
/* Where key's value is written in sec (sec's own position when absent). */
struct cfgfile_pos cfgfile_key_pos(struct cfgfile_node *sec, const char *key);
/* Where item i of the list key is written (for a single value, where the
 * value is; when absent, sec's position). */
struct cfgfile_pos cfgfile_item_pos(struct cfgfile_node *sec, const char *key,
    size_t i);

/*
 * The position of byte `offset` of a VALUE node's (unescaped) value in the
 * file, counting its quote and escapes: for messages about a part of a
 * value, such as a condition or a template inside a string.
 */
struct cfgfile_pos cfgfile_value_pos(const struct cfgfile_node *n,
    size_t offset);

#endif
