/*
 * fuzz_dsn - libFuzzer target for lib/dsn (the DSN, ARF, SES, auto-reply
 * and plain-text bounce parsers, and the classifier) and lib/bounce (the
 * message's key, the matching ids with tokens verified, the JSON form the
 * bounce reader records).
 *
 * The input is a raw message. It is parsed with the default limits and
 * with small ones; the report must keep the module's promises: at most
 * max_rcpts recipients, every text field NUL-terminated within its array,
 * valid UTF-8 without control characters, a status code that is empty or
 * "C.S.D" with C 2, 4 or 5, a class and reason that have names, and a
 * hard class only for a reason that says the address is bad. Each
 * recipient of a DSN or text bounce is classified again and must come
 * out the same. Crashes,
 * timeouts and sanitizer reports are failures too.
 *
 * Each report is also described by bounce_describe(): a JSON object
 * with a kind, a key of at most BOUNCE_KEY_MAX - 1 bytes and one entry
 * per recipient kept, which serializes.
 *
 * Seeds: ../shared/fixtures/bounces/mail (the corpus of real bounces) and
 * tests/data/bounces (DSN, ARF, auto-reply, qmail, unrelated mail). CI
 * runs it for a bounded time: make fuzz-dsn (FUZZ_SECONDS, 60 by default)
 * in a clang build.
 *
 *   make fuzz-dsn FUZZ_SECONDS=300     (in a build configured with clang)
 * builds it (lib/dsn.c and lib/bounce.c instrumented, the rest from
 * lib/libleadcast.a) and runs it on a fresh corpus.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bounce.h"
#include "dsn.h"
#include "token.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* s (in an array of n bytes) is NUL-terminated, valid UTF-8, and free of
 * control characters. */
static void
check_text(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t len = strnlen(s, n);

	if (len == n)
		abort();
	for (size_t i = 0; i < len;) {
		unsigned c = p[i];
		size_t k;

		if (c < 0x20 || c == 0x7f)
			abort();
		k = c < 0x80 ? 1 : c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 &&
		    c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
		if (k == 0 || i + k > len)
			abort();
		for (size_t j = 1; j < k; j++)
			if ((p[i + j] & 0xc0) != 0x80)
				abort();
		i += k;
	}
}

#define TEXT(f) check_text((f), sizeof(f))

static void
check_status(const char *s)
{
	size_t i, d;

	check_text(s, 16);
	if (!*s)
		return;
	if ((s[0] != '2' && s[0] != '4' && s[0] != '5') || s[1] != '.')
		abort();
	for (i = 2, d = 0; s[i] >= '0' && s[i] <= '9'; i++)
		d++;
	if (d < 1 || d > 3 || s[i] != '.')
		abort();
	for (i++, d = 0; s[i] >= '0' && s[i] <= '9'; i++)
		d++;
	if (d < 1 || d > 3 || s[i] != '\0')
		abort();
}

static void
check(const struct dsn_report *r, const struct dsn_limits *lim)
{
	if (r->nrcpt > lim->max_rcpts || (r->nrcpt && !r->rcpt) || !r->format)
		abort();
	TEXT(r->subject);
	TEXT(r->from);
	TEXT(r->reporting_mta);
	TEXT(r->arrival_date);
	TEXT(r->envelope_sender);
	TEXT(r->envelope_id);
	TEXT(r->feedback_type);
	TEXT(r->source_ip);
	TEXT(r->orig.verp_token);
	TEXT(r->orig.message_id);
	TEXT(r->orig.references);
	TEXT(r->orig.list_id);
	TEXT(r->orig.feedback_id);
	TEXT(r->orig.unsubscribe_token);
	TEXT(r->orig.x_leadcast);
	TEXT(r->orig.to);
	TEXT(r->orig.from);
	TEXT(r->orig.subject);
	for (size_t i = 0; i < r->nrcpt; i++) {
		const struct dsn_rcpt *x = &r->rcpt[i];
		struct dsn_rcpt again;

		TEXT(x->address);
		TEXT(x->original);
		TEXT(x->action);
		TEXT(x->command);
		TEXT(x->remote_mta);
		TEXT(x->diagnostic);
		TEXT(x->diagnostic_type);
		TEXT(x->last_attempt);
		check_status(x->status);
		if (!*dsn_class_name(x->cls) || (x->reason != DSN_R_NONE &&
		    !*dsn_reason_name(x->reason)))
			abort();
		if (x->cls == DSN_HARD && x->reason != DSN_R_USER_UNKNOWN &&
		    x->reason != DSN_R_HOST_UNKNOWN && x->reason != DSN_R_NO_MAIL &&
		    x->reason != DSN_R_MOVED)
			abort();
		if (r->kind != DSN_KIND_DSN && r->kind != DSN_KIND_TEXT)
			continue;       /* SES, ARF, auto-replies: set directly */
		again = *x;
		dsn_classify(&again);
		if (again.cls != x->cls || again.reason != x->reason ||
		    strcmp(again.status, x->status))
			abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct dsn_limits deflim = DSN_LIMITS_DEFAULT;
	static const struct dsn_limits small = { 4096, 4, 3 };
	static struct token_key key;
	struct dsn_report r;

	if (dsn_parse((const char *)data, size, NULL, &r) == 0) {
		json_t *doc;
		char *text;
		const char *k;

		check(&r, &deflim);
		memset(&key, 1, sizeof(key));
		if ((doc = bounce_describe((const char *)data, size, &r,
		    &key)) != NULL) {
			k = json_string_value(json_object_get(doc, "key"));
			if (!k || strlen(k) >= BOUNCE_KEY_MAX ||
			    !json_string_value(json_object_get(doc, "kind")) ||
			    json_array_size(json_object_get(doc, "recipients")) !=
			    r.nrcpt)
				abort();
			if (!(text = json_dumps(doc, JSON_COMPACT)))
				abort();
			free(text);
			json_decref(doc);
		}
	}
	dsn_report_free(&r);
	if (dsn_parse((const char *)data, size, &small, &r) == 0)
		check(&r, &small);
	dsn_report_free(&r);
	return 0;
}
