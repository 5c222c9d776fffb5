/*
 * tmpl - Mustache templates: compile once, render many times.
 *
 * Implements the Mustache spec: variables, sections, inverted sections,
 * comments, partials, set-delimiter tags and inheritance (parents {{<p}} and
 * blocks {{$b}}), with the spec's standalone-line and indentation rules.
 * The data model is jansson. Lambdas are not supported.
 *
 * It does no logging and no I/O except tmpl_set_load_dir(), which reads
 * template files. A compiled template is immutable: rendering it (and reading
 * a tmpl_set) from several threads at once is safe. Everything is bounded:
 * template size (TMPL_MAX_SIZE), nesting of sections, partials, parents and
 * blocks (TMPL_MAX_DEPTH, counted together), the work of one render
 * (TMPL_MAX_STEPS, against templates that blow up exponentially without
 * output), and output (the struct buf limit).
 *
 * Values render as: strings as-is, integers in decimal, reals in the
 * shortest form that reads back equal (1.210 -> "1.21"), true/false as
 * "true"/"false", null as "", arrays and objects as compact JSON.
 * TMPL_ESCAPE_HTML escapes & < > " ' in {{name}}; {{{name}}} and {{&name}}
 * never escape.
 */
#ifndef LEADCAST_TMPL_H
#define LEADCAST_TMPL_H

#include <stddef.h>

#include <jansson.h>

#include "buf.h"

#define TMPL_MAX_SIZE   (1024 * 1024)   /* bytes of template source */
#define TMPL_MAX_DEPTH  64              /* nested sections/partials/blocks */
#define TMPL_MAX_STEPS  (1UL << 24)     /* nodes visited by one render */

struct tmpl;            /* a compiled template */
struct tmpl_set;        /* named compiled templates: partials and parents */

struct tmpl_error {
	char file[256];         /* template name or file path */
	int line;               /* 1-based line of the bad tag, 0 if none */
	int col;                /* 1-based column (bytes) */
	char msg[256];
};

enum tmpl_escape {
	TMPL_ESCAPE_HTML,       /* {{x}} escapes & < > " ' */
	TMPL_ESCAPE_NONE        /* for text/plain bodies and SMS */
};

/*
 * Compile src (len bytes, need not be NUL-terminated) named `name` (used in
 * errors only). Returns 0 and sets *out, which the caller frees with
 * tmpl_free(); or -1 with *err filled (err may be NULL) and *out untouched.
 */
int tmpl_compile(const char *name, const char *src, size_t len,
    struct tmpl **out, struct tmpl_error *err);
void tmpl_free(struct tmpl *t);

/* Returns a new empty set (caller frees with tmpl_set_free), NULL on ENOMEM. */
struct tmpl_set *tmpl_set_new(void);
void tmpl_set_free(struct tmpl_set *s);
/*
 * Compile src and add it under `name`, replacing a template of the same name.
 * On error (-1, err filled) the set is unchanged. The set owns the template.
 */
int tmpl_set_add(struct tmpl_set *s, const char *name, const char *src,
    size_t len, struct tmpl_error *err);
/*
 * Load every *.mustache file under dir, recursively (hidden entries and
 * symbolic links to directories are skipped). A template's name is its path
 * relative to dir without the extension: dir/layouts/base.mustache is
 * "layouts/base". Files are loaded in sorted order; the first error is
 * reported (file = the path) and then the set is left unchanged.
 */
int tmpl_set_load_dir(struct tmpl_set *s, const char *dir,
    struct tmpl_error *err);
/* The template named `name`, or NULL. Owned by the set. */
const struct tmpl *tmpl_set_get(const struct tmpl_set *s, const char *name);
size_t tmpl_set_count(const struct tmpl_set *s);

/*
 * Render t with data as the root context, appending to out. Partials and
 * parents are looked up in `partials` (may be NULL); a missing one renders
 * as empty. Returns 0, or -1 if out refused an append (its limit, or ENOMEM),
 * nesting went deeper than TMPL_MAX_DEPTH or the render took more than
 * TMPL_MAX_STEPS steps. On -1, out holds partial output: discard it.
 */
int tmpl_render(const struct tmpl *t, const json_t *data,
    const struct tmpl_set *partials, enum tmpl_escape esc, struct buf *out);

/* Compile src (NUL-terminated), render it without partials, free it. */
int tmpl_render_string(const char *src, const json_t *data,
    enum tmpl_escape esc, struct buf *out, struct tmpl_error *err);

#endif
