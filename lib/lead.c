/*
 * lead - standard fields, normalization and checks. See lead.h.
 */
#include "lead.h"
#include "cond.h"
#include "mime.h"
#include "phone.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct lead_field fields[] = {
	{ "email", LEAD_TEXT, 254 },
	{ "phone", LEAD_TEXT, 32 },
	{ "first_name", LEAD_TEXT, 200 },
	{ "last_name", LEAD_TEXT, 200 },
	{ "company", LEAD_TEXT, 300 },
	{ "title", LEAD_TEXT, 300 },
	{ "country", LEAD_TEXT, 100 },
	{ "region", LEAD_TEXT, 100 },
	{ "city", LEAD_TEXT, 200 },
	{ "postal_code", LEAD_TEXT, 32 },
	{ "product", LEAD_TEXT, 300 },
	{ "budget", LEAD_NUMBER, 0 },
	{ "timeframe", LEAD_TEXT, 100 },
	{ "authority", LEAD_TEXT, 100 },
	{ "company_size", LEAD_INT, 0 },
	{ "industry", LEAD_TEXT, 200 },
	{ "language", LEAD_TEXT, 35 },
	{ "source", LEAD_TEXT, 200 },
	{ "campaign", LEAD_TEXT, 200 },
	{ "time_zone", LEAD_TEXT, 64 },
};
#define NFIELDS (sizeof(fields) / sizeof(fields[0]))

static const struct cond_sqlcol cols[] = {
	{ "email", "l.email", COND_SQL_TEXT },
	{ "phone", "l.phone", COND_SQL_TEXT },
	{ "first_name", "l.first_name", COND_SQL_TEXT },
	{ "last_name", "l.last_name", COND_SQL_TEXT },
	{ "company", "l.company", COND_SQL_TEXT },
	{ "title", "l.title", COND_SQL_TEXT },
	{ "country", "l.country", COND_SQL_TEXT },
	{ "region", "l.region", COND_SQL_TEXT },
	{ "city", "l.city", COND_SQL_TEXT },
	{ "postal_code", "l.postal_code", COND_SQL_TEXT },
	{ "product", "l.product", COND_SQL_TEXT },
	{ "budget", "l.budget", COND_SQL_NUMERIC },
	{ "timeframe", "l.timeframe", COND_SQL_TEXT },
	{ "authority", "l.authority", COND_SQL_TEXT },
	{ "company_size", "l.company_size", COND_SQL_NUMERIC },
	{ "industry", "l.industry", COND_SQL_TEXT },
	{ "language", "l.language", COND_SQL_TEXT },
	{ "source", "l.source", COND_SQL_TEXT },
	{ "campaign", "l.campaign", COND_SQL_TEXT },
	{ "time_zone", "l.time_zone", COND_SQL_TEXT },
	{ "status", "l.status", COND_SQL_TEXT },
	{ "score", "l.score", COND_SQL_NUMERIC },
	{ "created_at", "l.created_at", COND_SQL_TIME },
	{ "updated_at", "l.updated_at", COND_SQL_TIME },
};
const struct cond_sqlmap lead_sqlmap = {
	cols, sizeof(cols) / sizeof(cols[0]), "l.fields"
};

const struct lead_field *
lead_fields(size_t *n)
{
	*n = NFIELDS;
	return fields;
}

const struct lead_field *
lead_field(const char *name)
{
	for (size_t i = 0; i < NFIELDS; i++)
		if (strcmp(fields[i].name, name) == 0)
			return &fields[i];
	return NULL;
}

/* Text (len bytes): valid UTF-8 without control characters (NUL
 * included; line breaks and tabs allowed when multiline: custom fields
 * hold notes), trimmed, bounded. */
static json_t *
clean_text(const char *s, size_t len, size_t max, int multiline, char *msg,
    size_t mn)
{
	while (len && isspace((unsigned char)*s))
		s++, len--;
	while (len && isspace((unsigned char)s[len - 1]))
		len--;
	if (len > max) {
		snprintf(msg, mn, "longer than %zu bytes", max);
		return NULL;
	}
	for (size_t i = 0; i < len; i++) {
		if (multiline && (s[i] == '\n' || s[i] == '\r' || s[i] == '\t'))
			continue;
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) {   /* NUL too */
			snprintf(msg, mn, "contains a control character");
			return NULL;
		}
	}
	return json_stringn(s, len);    /* NULL if not UTF-8 */
}

static json_t *
clean_number(const json_t *v, int integer, char *msg, size_t mn)
{
	double d;

	if (json_is_number(v)) {
		d = json_number_value(v);
	} else if (json_is_string(v)) {
		const char *s = json_string_value(v);
		char *end;

		while (isspace((unsigned char)*s))
			s++;
		if (!*s)
			return json_null();
		/* plain decimal only: no hex, inf or nan */
		for (const char *p = s; *p; p++) {
			if (!isdigit((unsigned char)*p) && !strchr(".-+eE ", *p)) {
				snprintf(msg, mn, "expected a number, got '%.40s'",
				    json_string_value(v));
				return NULL;
			}
		}
		errno = 0;
		d = strtod(s, &end);
		while (isspace((unsigned char)*end))
			end++;
		if (errno || end == s || *end) {
			snprintf(msg, mn, "expected a number, got '%.40s'",
			    json_string_value(v));
			return NULL;
		}
	} else {
		snprintf(msg, mn, "expected a number");
		return NULL;
	}
	if (!isfinite(d) || d < 0 || d > 1e15) {
		snprintf(msg, mn, "out of range");
		return NULL;
	}
	if (integer) {
		if (d != floor(d) || d > 2147483647.0) {
			snprintf(msg, mn, "expected a whole number");
			return NULL;
		}
		return json_integer((json_int_t)d);
	}
	return json_real(d);
}

static int
custom_name_ok(const char *k)
{
	size_t len = strlen(k);

	if (len == 0 || len > LEAD_MAX_CUSTOM_NAME || !isalpha((unsigned char)k[0]))
		return 0;
	for (; *k; k++)
		if (!isalnum((unsigned char)*k) && *k != '_')
			return 0;
	return 1;
}

static int
add_custom(json_t *custom, const char *k, const json_t *v, char *field,
    size_t fn, char *msg, size_t mn)
{
	json_t *cv;

	snprintf(field, fn, "fields.%s", k);
	if (!custom_name_ok(k)) {
		snprintf(msg, mn, "custom field names are letters, digits and _ "
		    "(at most %d), starting with a letter", LEAD_MAX_CUSTOM_NAME);
		return -1;
	}
	if (json_object_size(custom) >= LEAD_MAX_CUSTOM &&
	    !json_object_get(custom, k)) {
		snprintf(msg, mn, "more than %d custom fields", LEAD_MAX_CUSTOM);
		return -1;
	}
	if (json_is_string(v))
		cv = clean_text(json_string_value(v), json_string_length(v),
		    LEAD_MAX_FIELD, 1, msg, mn);
	else if (json_is_number(v) || json_is_boolean(v) || json_is_null(v))
		cv = json_deep_copy(v);
	else {
		snprintf(msg, mn, "custom fields hold text, numbers or true/false");
		return -1;
	}
	if (!cv) {
		if (!*msg)
			snprintf(msg, mn, "not valid UTF-8");
		return -1;
	}
	json_object_set_new(custom, k, cv);
	return 0;
}

/* The phone number in cv (a string, stolen) in E.164, or NULL with msg. */
static json_t *
clean_phone(json_t *cv, const char *default_country, char *msg, size_t mn)
{
	char e164[PHONE_E164_MAX], err[160];

	if (phone_normalize(json_string_value(cv), default_country, e164,
	    sizeof(e164), err, sizeof(err)) < 0) {
		snprintf(msg, mn, "'%.64s' is not a phone number: %s",
		    json_string_value(cv), err);
		json_decref(cv);
		return NULL;
	}
	json_decref(cv);
	return json_string(e164);
}

json_t *
lead_clean(const json_t *in, int custom_unknown, const char *default_country,
    char *field, size_t fn, char *msg, size_t mn)
{
	json_t *out, *custom, *v;
	const char *k;

	field[0] = msg[0] = '\0';
	if (!json_is_object(in)) {
		snprintf(msg, mn, "a lead is a JSON object");
		return NULL;
	}
	out = json_object();
	custom = json_object();
	json_object_foreach((json_t *)in, k, v) {
		const struct lead_field *f = lead_field(k);
		json_t *cv = NULL;

		if (!f) {
			if (strcmp(k, "fields") == 0) {
				const char *ck;
				json_t *cval;

				if (!json_is_object(v)) {
					snprintf(field, fn, "fields");
					snprintf(msg, mn, "an object of custom "
					    "fields");
					goto bad;
				}
				json_object_foreach(v, ck, cval)
					if (add_custom(custom, ck, cval, field, fn,
					    msg, mn) < 0)
						goto bad;
				continue;
			}
			if (custom_unknown) {
				if (add_custom(custom, k, v, field, fn, msg, mn) < 0)
					goto bad;
				continue;
			}
			snprintf(field, fn, "%s", k);
			snprintf(msg, mn, "unknown field (custom fields go in "
			    "\"fields\")");
			goto bad;
		}
		snprintf(field, fn, "%s", k);
		if (json_is_null(v))
			continue;
		if (f->type == LEAD_TEXT) {
			if (!json_is_string(v)) {
				if (!json_is_number(v)) {
					snprintf(msg, mn, "expected text");
					goto bad;
				}
				/* a postal code or phone given as a number */
				char num[64];

				if (json_is_integer(v))
					snprintf(num, sizeof(num), "%lld",
					    (long long)json_integer_value(v));
				else
					snprintf(num, sizeof(num), "%.15g",
					    json_real_value(v));
				cv = clean_text(num, strlen(num), f->max, 0,
				    msg, mn);
			} else {
				cv = clean_text(json_string_value(v),
				    json_string_length(v), f->max, 0, msg, mn);
			}
			if (!cv) {
				if (!*msg)
					snprintf(msg, mn, "not valid UTF-8");
				goto bad;
			}
			if (json_string_length(cv) == 0) {
				json_decref(cv);
				continue;
			}
		} else {
			if (!(cv = clean_number(v, f->type == LEAD_INT, msg, mn)))
				goto bad;
		}
		if (strcmp(k, "email") == 0) {
			const char *why = NULL;
			char *e = strdup(json_string_value(cv)), *at;

			if (!e || !mime_addr_valid(e, &why)) {
				snprintf(msg, mn, "'%.100s' is not an email address%s"
				    "%s", json_string_value(cv), why ? ": " : "",
				    why ? why : "");
				free(e);
				json_decref(cv);
				goto bad;
			}
			for (at = strrchr(e, '@'); at && *at; at++)
				*at = (char)tolower((unsigned char)*at);
			json_decref(cv);
			cv = json_string(e);
			free(e);
		} else if (strcmp(k, "phone") == 0 &&
		    !(cv = clean_phone(cv, default_country, msg, mn))) {
			goto bad;
		}
		json_object_set_new(out, k, cv);
	}
	json_object_set_new(out, "fields", custom);
	field[0] = '\0';
	return out;
bad:
	json_decref(out);
	json_decref(custom);
	return NULL;
}
