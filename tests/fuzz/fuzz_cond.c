/*
 * fuzz_cond - libFuzzer target for lib/cond.
 *
 * The input up to the first 0xff byte is a condition; what follows, if
 * anything, is a lead as JSON. A condition that parses is evaluated
 * against that lead and a few fixed ones, in two time zones, and compiled
 * to SQL (bounded output). Only crashes and sanitizer reports matter.
 *
 *   clang -std=c11 -D_GNU_SOURCE -g -fsanitize=fuzzer,address,undefined \
 *       -Ilib lib/buf.c lib/cond.c tests/fuzz/fuzz_cond.c \
 *       $(pkg-config --cflags --libs jansson) -o fuzz_cond
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "buf.h"
#include "cond.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct cond_sqlcol cols[] = {
	{ "country", "l.country", COND_SQL_TEXT },
	{ "budget", "l.budget", COND_SQL_NUMERIC },
	{ "score", "l.score", COND_SQL_NUMERIC },
	{ "a", "l.a", COND_SQL_TEXT },
	{ "b", "l.b", COND_SQL_BOOL },
	{ "created_at", "l.created_at", COND_SQL_TIME },
};
static const struct cond_sqlmap map = { cols, 6, "l.fields" };
static json_t *leads[4];

static void
ignore(void *arg, const char *name)
{
	(void)arg;
	(void)name;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct cond_env envs[] = {
		{ 1710052200, "America/Detroit" }, { 2224756800, NULL },
	};
	const uint8_t *cut = memchr(data, 0xff, size);
	size_t len = cut ? (size_t)(cut - data) : size, i, e;
	struct cond_params pr = { NULL, 0, 0 };
	struct cond_error err;
	struct cond *c;
	struct buf sql;
	char *src, msg[200];
	json_t *lead = NULL;
	int next = 1;

	if (!leads[0]) {
		leads[0] = json_loads("{\"country\": \"US\", \"budget\": 10000, "
		    "\"a\": \"2024-03-01T00:00:00Z\", \"created_at\": 1.7e9, "
		    "\"fields\": {\"x\": \"12\", \"t\": [\"a\", 1, null], "
		    "\"d\": \"2024-02-30 10:00:00.123+05\", \"b\": true}}", 0,
		    NULL);
		leads[1] = json_loads("{\"fields\": [1, 2], \"a\": 5}", 0, NULL);
		leads[2] = json_object();
		leads[3] = json_string("not an object");
	}
	if (!(src = malloc(len + 1)))
		return 0;
	memcpy(src, data, len);
	src[len] = '\0';
	if (cut)
		lead = json_loadb((const char *)cut + 1, size - len - 1,
		    JSON_DECODE_ANY, NULL);
	if (cond_parse(src, &c, &err) == 0) {
		cond_fields(c, ignore, NULL);
		for (e = 0; e < 2; e++) {
			for (i = 0; i < 4; i++)
				cond_eval(c, leads[i], &envs[e]);
			if (lead)
				cond_eval(c, lead, &envs[e]);
		}
		buf_init(&sql, 1 << 16);
		cond_to_sql(c, &map, &envs[0], &next, &sql, &pr, msg,
		    sizeof(msg));
		buf_free(&sql);
		cond_params_free(&pr);
		cond_free(c);
	} else {
		buf_init(&sql, 0);
		cond_error_show(src, &err, &sql);
		buf_free(&sql);
	}
	json_decref(lead);
	free(src);
	return 0;
}
