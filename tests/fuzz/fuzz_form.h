/*
 * fuzz_form.h - what the form body fuzz targets check of every parse
 * (fuzz_form_urlencoded.c, fuzz_form_multipart.c): it either failed with
 * 400 or 413 and a message and no result, or gave an object whose names
 * are non-empty valid UTF-8, whose values are strings (arrays of at least
 * two strings for a repeated name) without NUL bytes and within the
 * limit, and which holds at most max_fields values in all. Anything else
 * aborts.
 */
#ifndef LEADCAST_FUZZ_FORM_H
#define LEADCAST_FUZZ_FORM_H

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "form.h"

static int
fuzz_utf8_ok(const char *s, size_t n)
{
	json_t *j = json_stringn(s, n);

	json_decref(j);
	return j != NULL;
}

static void
fuzz_form_check(int rc, json_t *out, const struct form_error *err,
    const struct form_limits *lim)
{
	const char *k;
	json_t *v;
	size_t total = 0;

	if (rc != 0) {
		if (out || (err->status != 400 && err->status != 413) ||
		    !err->msg[0])
			abort();
		return;
	}
	if (!json_is_object(out))
		abort();
	json_object_foreach(out, k, v) {
		size_t n = json_is_array(v) ? json_array_size(v) : 1;

		if (!*k || strlen(k) > lim->max_value ||
		    !fuzz_utf8_ok(k, strlen(k)) || (json_is_array(v) && n < 2))
			abort();
		for (size_t i = 0; i < n; i++) {
			json_t *s = json_is_array(v) ? json_array_get(v, i) : v;

			if (!json_is_string(s) ||
			    json_string_length(s) > lim->max_value ||
			    strlen(json_string_value(s)) !=
			    json_string_length(s))
				abort();
		}
		total += n;
	}
	if (total > lim->max_fields)
		abort();
	json_decref(out);
}

#endif
