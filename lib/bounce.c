/*
 * bounce - the key, the delivery-matching ids and the JSON form of one
 * message of a bounce mailbox (see bounce.h). No I/O, no database.
 */
#include "config.h"
#include "bounce.h"

#include <ctype.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dsn.h"
#include "token.h"

/* The end of the header block: after the first empty line, or len. */
static size_t
header_end(const char *m, size_t len)
{
	for (size_t i = 0; i + 1 < len; i++) {
		if (m[i] != '\n')
			continue;
		if (m[i + 1] == '\n')
			return i + 1;
		if (m[i + 1] == '\r' && i + 2 < len && m[i + 2] == '\n')
			return i + 1;
	}
	return len;
}

/* The value of the first header field called name (unfolded, trimmed)
 * into out (size n); 0 if found. */
static int
header_get(const char *m, size_t len, const char *name, char *out, size_t n)
{
	size_t end = header_end(m, len), nl = strlen(name);

	for (size_t i = 0; i < end; ) {
		size_t eol = i;

		while (eol < end && m[eol] != '\n')
			eol++;
		if (eol - i > nl && strncasecmp(m + i, name, nl) == 0 &&
		    m[i + nl] == ':') {
			size_t k = 0, j = i + nl + 1;

			for (;;) {
				for (; j < eol && k + 1 < n; j++)
					if (m[j] != '\r')
						out[k++] = m[j] == '\t' ? ' ' : m[j];
				/* folded onto the next line? */
				if (eol + 1 < end && (m[eol + 1] == ' ' ||
				    m[eol + 1] == '\t')) {
					j = eol + 1;
					eol = j;
					while (eol < end && m[eol] != '\n')
						eol++;
					continue;
				}
				break;
			}
			out[k] = '\0';
			while (k && out[k - 1] == ' ')
				out[--k] = '\0';
			k = strspn(out, " ");
			memmove(out, out + k, strlen(out + k) + 1);
			return 0;
		}
		i = eol + 1;
	}
	return -1;
}

void
bounce_key(const char *msg, size_t len, char *out)
{
	unsigned char md[32];
	unsigned int mdlen = 0;
	char mid[BOUNCE_KEY_MAX];
	const char *lt, *gt;

	if (header_get(msg, len, "Message-ID", mid, sizeof(mid)) == 0 &&
	    (lt = strchr(mid, '<')) != NULL && (gt = strchr(lt, '>')) != NULL &&
	    gt - lt > 3 && gt - lt < 250) {
		int ok = 1;

		for (const char *p = lt; p <= gt; p++)
			ok &= (unsigned char)*p > 0x20 && (unsigned char)*p < 0x7f;
		if (ok) {
			snprintf(out, BOUNCE_KEY_MAX, "%.*s", (int)(gt - lt + 1),
			    lt);
			return;
		}
	}
	EVP_Digest(msg, len, md, &mdlen, EVP_sha256(), NULL);
	memcpy(out, "sha256:", 7);
	for (unsigned i = 0; i < mdlen && i < 32; i++)
		snprintf(out + 7 + 2 * i, 3, "%02x", md[i]);
}

/* Message-IDs of s ("<a@b> <c@d>"), without brackets, into arr. */
static void
add_ids(json_t *arr, const char *s)
{
	while (s && (s = strchr(s, '<')) != NULL) {
		const char *gt = strchr(s, '>');

		if (!gt)
			break;
		if (gt - s > 1 && gt - s < 250 && json_array_size(arr) < 20) {
			char id[256];

			snprintf(id, sizeof(id), "%.*s", (int)(gt - s - 1), s + 1);
			json_array_append_new(arr, json_string(id));
		}
		s = gt + 1;
	}
}

static void
set_str(json_t *o, const char *k, const char *v)
{
	if (v && *v)
		json_object_set_new(o, k, json_string(v));
}

/* Does it look like a report nobody could read? */
static int
looks_like_report(const struct dsn_report *r, const char *msg, size_t len)
{
	char from[DSN_MAX_ADDR];

	if (r->orig.verp_token[0])
		return 1;
	if (header_get(msg, len, "From", from, sizeof(from)) < 0)
		return 0;
	for (char *p = from; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return strstr(from, "mailer-daemon") || strstr(from, "postmaster") ||
	    strstr(from, "mail delivery");
}

json_t *
bounce_describe(const char *msg, size_t len, const struct dsn_report *r,
    const struct token_key *key)
{
	json_t *o = json_object(), *m = json_object(), *refs = json_array(),
	    *rc = json_array();
	char k[BOUNCE_KEY_MAX];
	uint64_t id, id2;
	const char *kind = dsn_kind_name(r->kind);

	if (!o || !m || !refs || !rc) {
		json_decref(o);
		json_decref(m);
		json_decref(refs);
		json_decref(rc);
		return NULL;
	}
	if (r->kind == DSN_KIND_NONE && looks_like_report(r, msg, len))
		kind = "unknown";
	bounce_key(msg, len, k);
	json_object_set_new(o, "kind", json_string(kind));
	set_str(o, "format", r->format);
	set_str(o, "from", r->from);
	set_str(o, "subject", r->subject);
	json_object_set_new(o, "key", json_string(k));
	json_object_set_new(o, "truncated", json_boolean(r->truncated));
	if (r->feedback_type[0])
		json_object_set_new(o, "feedback_type",
		    json_string(r->feedback_type));
	set_str(m, "verp_token", r->orig.verp_token);
	set_str(m, "unsubscribe_token", r->orig.unsubscribe_token);
	set_str(m, "feedback_id", r->orig.feedback_id);
	if (key && r->orig.verp_token[0] && token_verify(key, 'b',
	    r->orig.verp_token, strlen(r->orig.verp_token), &id, &id2) == 0)
		json_object_set_new(m, "verp", json_integer((json_int_t)id));
	if (key && r->orig.unsubscribe_token[0] && token_verify(key, 'u',
	    r->orig.unsubscribe_token, strlen(r->orig.unsubscribe_token), &id,
	    &id2) == 0)
		json_object_set_new(m, "unsubscribe",
		    json_integer((json_int_t)id));
	set_str(m, "message_id", r->orig.message_id);
	add_ids(refs, r->orig.references);
	json_object_set_new(m, "references", refs);
	/* Feedback-ID "CAMPAIGN:NAME:leadcast:DOMAIN" (lib/compose.c) */
	if (r->orig.feedback_id[0] && strstr(r->orig.feedback_id,
	    ":leadcast:")) {
		char *end;
		unsigned long long c = strtoull(r->orig.feedback_id, &end, 10);

		if (end != r->orig.feedback_id && *end == ':' && c > 0 &&
		    c < 2147483647ULL)
			json_object_set_new(m, "campaign",
			    json_integer((json_int_t)c));
	}
	set_str(m, "to", r->orig.to);
	json_object_set_new(o, "match", m);
	for (size_t i = 0; i < r->nrcpt; i++) {
		const struct dsn_rcpt *x = &r->rcpt[i];
		json_t *e = json_object();

		if (!e)
			break;
		/* a complaint or auto-reply names the original's recipient */
		set_str(e, "email", x->address[0] ? x->address :
		    r->kind == DSN_KIND_ARF || r->kind == DSN_KIND_AUTOREPLY ?
		    r->orig.to : "");
		set_str(e, "original", x->original);
		set_str(e, "action", x->action);
		json_object_set_new(e, "class",
		    json_string(dsn_class_name(x->cls)));
		json_object_set_new(e, "reason",
		    json_string(x->cls == DSN_COMPLAINT && r->feedback_type[0] ?
		    r->feedback_type : dsn_reason_name(x->reason)));
		set_str(e, "status", x->status);
		if (x->smtp_code)
			json_object_set_new(e, "code", json_integer(x->smtp_code));
		set_str(e, "command", x->command);
		set_str(e, "remote_mta", x->remote_mta);
		set_str(e, "diagnostic", x->diagnostic);
		json_array_append_new(rc, e);
	}
	json_object_set_new(o, "recipients", rc);
	if (r->dropped_rcpts)
		json_object_set_new(o, "dropped_recipients",
		    json_integer((json_int_t)r->dropped_rcpts));
	return o;
}
