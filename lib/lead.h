/*
 * lead - what a lead is: the standard fields (their names, SQL columns,
 * types and limits), custom fields, and the checks every way of capturing
 * a lead goes through (API, forms, CSV import, subscriptions).
 *
 * lead_clean() turns untrusted JSON into a normalized lead or names the
 * field that is wrong. The same table gives the condition language its SQL
 * column map, so audiences, routing rules and capture agree on the fields.
 * It does not touch the database.
 */
#ifndef LEADCAST_LEAD_H
#define LEADCAST_LEAD_H

#include <jansson.h>
#include <stddef.h>

struct cond_sqlmap;

#define LEAD_MAX_FIELD     1024         /* bytes of one text value */
#define LEAD_MAX_CUSTOM    64           /* custom fields per lead */
#define LEAD_MAX_CUSTOM_NAME 64

enum lead_type { LEAD_TEXT, LEAD_NUMBER, LEAD_INT };

struct lead_field {
	const char *name;
	enum lead_type type;
	size_t max;                     /* TEXT: bytes */
};

/* The standard fields, in column order; n set to their number. */
const struct lead_field *lead_fields(size_t *n);
/* The standard field called name, or NULL. */
const struct lead_field *lead_field(const char *name);

/*
 * Check and normalize in (a JSON object from outside): standard fields
 * (strings; numbers for numeric fields, or numeric strings), "fields" (an
 * object of custom fields with scalar values), email (a valid address,
 * domain lowercased), phone (normalized to E.164 by phone_normalize(),
 * numbers written without a country code read in default_country, an ISO
 * 3166 code; NULL or "" for none: such numbers are then errors). Unknown
 * top-level keys are custom fields when custom_unknown is set, else
 * errors. Returns a new object (caller owns), or NULL with field (the
 * offending key) and msg filled.
 */
json_t *lead_clean(const json_t *in, int custom_unknown,
    const char *default_country, char *field, size_t fn, char *msg,
    size_t mn);

/* The SQL columns of leads (alias l), for cond_to_sql. */
extern const struct cond_sqlmap lead_sqlmap;

#endif
