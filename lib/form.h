/*
 * form - public lead forms (GET/POST /f/{form}): their definitions in
 * conf/forms/NAME.conf, the parsers for the bodies browsers send
 * (application/x-www-form-urlencoded and multipart/form-data), the mapping
 * of submitted fields onto a lead, the data of the HTML form page, and a
 * per-client rate limiter of fixed size.
 *
 * Definitions are loaded with the configuration and immutable afterwards;
 * every problem is an error with file:line:col. Body parsers are bounded
 * (body size, number of fields, length of a value), validate UTF-8 and
 * never trust the input: an error names the field. The module reads the
 * form files and nothing else: no sockets, no database, no clock (callers
 * pass the time to the limiter), no logging. daemon/form_routes.c serves
 * the forms and stores the leads.
 */
#ifndef LEADCAST_FORM_H
#define LEADCAST_FORM_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "cfgfile.h"
#include "conf.h"

struct tmpl;
struct tmpl_set;

#define FORM_NAME_MAX        64         /* form and field names */
#define FORM_MAX_DECLARED    64         /* field sections in one form */
#define FORM_PAGE_TEMPLATE   "pages/form"
#define FORM_THANKS_TEMPLATE "pages/thanks"

/* field "email" { to = email  required = true  label = "Work email" } */
struct form_field {
	char *name;                     /* the HTML field name */
	char *to;                       /* "email" ... or "fields.NAME" */
	char *label;                    /* shown beside the input */
	char *type;                     /* text email tel number url textarea
	                                   select checkbox hidden */
	int required;
	long max_length;                /* characters, after trimming */
	struct conf_strlist choices;    /* select: the allowed values */
};

struct form_def {
	char *name;                     /* the file name without .conf */
	char *file;
	char *title;                    /* page heading */
	char *intro;                    /* text under the heading, or "" */
	char *submit;                   /* the button's label */
	char *source;                   /* the lead's source */
	char *list;                     /* also subscribe to this list, or "" */
	char *honeypot;                 /* the trap field's name, or "" */
	char *rate_limit;               /* as written: "10/m", "none" */
	long rate_count;                /* requests per period; 0 = no limit */
	long rate_period_ms;
	char *page;                     /* the form page's template */
	char *thank_you;                /* template name, "" with redirect */
	char *redirect;                 /* https:// URL, or "" */
	struct conf_strlist allowed_origins;    /* "https://host[:port]", "*" */
	struct form_field *fields;      /* in file order */
	size_t nfields;
};

struct form_set {
	struct form_def **v;            /* sorted by name */
	size_t n;
};

/*
 * Load every NAME.conf in dir (a missing directory is an empty set).
 * Templates are looked up in templates; c (may be NULL: not checked)
 * gives the declared lists. Errors go to errs; returns their number. The
 * set (partial on error) is freed with form_set_free().
 */
int form_load_dir(const char *dir, const struct tmpl_set *templates,
    const struct conf *c, struct form_set *out, struct cfgfile_errors *errs);
void form_set_free(struct form_set *s);
const struct form_def *form_find(const struct form_set *s, const char *name);

/* ---- request bodies ------------------------------------------------------ */

struct form_limits {
	size_t max_body;                /* bytes of the body */
	size_t max_fields;              /* name=value pairs or parts */
	size_t max_value;               /* bytes of a decoded name or value */
};
#define FORM_LIMITS_DEFAULT { 1024 * 1024, 100, 16 * 1024 }

/* What went wrong: the form field concerned ("" if none), a message for
 * people, and the HTTP status that fits (400, 413, 415). */
struct form_error {
	char field[FORM_NAME_MAX + 8];
	char msg[256];
	int status;
};

/*
 * Parse a body into *out, a new JSON object (caller owns) mapping each
 * field name to its value (a string); a name sent more than once maps to
 * an array of its values, in order, and form_lead() refuses it for a
 * declared field. File parts of a multipart body are skipped (not stored:
 * forms take no uploads). Names and values must be valid UTF-8; in a
 * urlencoded body '+' is a space and a '%' must start two hex digits.
 * Returns 0, or -1 with err filled (*out untouched).
 */
int form_parse_urlencoded(const char *body, size_t len,
    const struct form_limits *lim, json_t **out, struct form_error *err);
/* content_type is the request's, with its boundary parameter. */
int form_parse_multipart(const char *content_type, const char *body,
    size_t len, const struct form_limits *lim, json_t **out,
    struct form_error *err);
/* Either of the two by content_type; 415 for any other type. */
int form_parse_body(const char *content_type, const char *body, size_t len,
    const struct form_limits *lim, json_t **out, struct form_error *err);

/*
 * Make a lead of the parsed values per def: each declared field's value
 * (line breaks and tabs turned into spaces, trimmed) goes to its lead
 * field, required ones must be there, choices and max_length hold, source
 * is set, and the result goes through lead_clean() (phone numbers without
 * a country code read in default_country, may be NULL); fields the form
 * does not declare are ignored. Returns 0 with *lead (caller owns); 1 when
 * the honeypot field is filled (a bot: *lead is NULL, store nothing and
 * thank as usual); -1 with err naming the form field.
 */
int form_lead(const struct form_def *def, const json_t *values,
    const char *default_country, json_t **lead, struct form_error *err);
/* The form field whose lead field is `to` ("email", "fields.plan"), or
 * NULL. */
const struct form_field *form_field_for(const struct form_def *def,
    const char *to);

/*
 * The data of the form page (templates/pages/form.mustache): "form"
 * {name, title, intro, submit}, "title", "fields" [{name, id, label, type,
 * required, value, error, max_length, autocomplete, is_input,
 * is_textarea, is_select, is_checkbox, is_hidden, checked, choices
 * [{value, selected}]}], "honeypot" and "form_error" (a message for the
 * whole form: err's own when it names no field). values (may be NULL)
 * refill the inputs; err (may be NULL) is shown beside its field. Caller
 * owns the result.
 */
json_t *form_page_data(const struct form_def *def, const json_t *values,
    const struct form_error *err);

/* ---- rate limiting ------------------------------------------------------- */

/*
 * Token buckets keyed by a string (form and client), in a table of fixed
 * size allocated once: when it is full, a new key evicts the least
 * recently used one, so a flood of distinct clients costs no memory. The
 * table is hashed with SipHash under a secret key, so chosen keys cannot
 * be made to collide. Not thread-safe: one limiter per thread.
 */
struct form_limiter;

#define FORM_LIMITER_KEY_MAX 128

/* slots: keys remembered (at least 1); key: 16 secret bytes. NULL on
 * ENOMEM. Free with form_limiter_free(). */
struct form_limiter *form_limiter_new(size_t slots,
    const unsigned char key[16]);
void form_limiter_free(struct form_limiter *l);
/*
 * One request for key at now_ms (a monotonic clock, milliseconds): burst
 * `count`, refilled at count per period_ms. 1 if allowed; 0 if not, with
 * *retry_ms (may be NULL) the wait until the next token.
 */
int form_limiter_take(struct form_limiter *l, const char *key, long count,
    long period_ms, int64_t now_ms, long *retry_ms);
/* Keys currently remembered. */
size_t form_limiter_count(const struct form_limiter *l);
/*
 * The client part of a limiter key for an address: IPv4 as is, IPv6
 * reduced to its /64 (what one subscriber gets), an IPv4-mapped IPv6
 * address as IPv4; anything else copied. Written to out (size n).
 */
void form_client_key(const char *ip, char *out, size_t n);

/* "10/m", "300/h", "5/30s", "none" -> count and period (0, 0 = none).
 * 0, or -1 if malformed. */
int form_parse_rate(const char *s, long *count, long *period_ms);

#endif
