/*
 * compose - render, track, build and sign one message. See compose.h.
 */
#include "compose.h"
#include "campaign.h"
#include "dkim.h"
#include "htmlrw.h"
#include "mime.h"
#include "tmpl.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define HEADER_MAX 2048         /* rendered subject, from, ... */

void
compose_links_free(struct compose_links *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->url[i]);
		free(l->tag[i]);
	}
	free(l->url);
	free(l->tag);
	memset(l, 0, sizeof(*l));
}

void
compose_out_reset(struct compose_out *out)
{
	buf_reset(&out->msg);
	compose_links_free(&out->missing);
	out->mail_from[0] = out->message_id[0] = out->err[0] = '\0';
}

void
compose_out_free(struct compose_out *out)
{
	buf_free(&out->msg);
	compose_links_free(&out->missing);
}

/* Render a one-line template (no HTML escaping) into out (size n). */
static int
render_line(const struct compose_spec *s, const struct tmpl *t,
    const json_t *data, char *out, size_t n)
{
	struct buf b;
	int r;

	out[0] = '\0';
	if (!t)
		return 0;
	buf_init(&b, HEADER_MAX);
	r = tmpl_render(t, data, s->partials, TMPL_ESCAPE_NONE, &b);
	if (r == 0)
		snprintf(out, n, "%s", buf_str(&b));
	buf_free(&b);
	/* leading and trailing blanks, as left by template lines */
	{
		size_t len = strlen(out), i = 0;

		while (len && isspace((unsigned char)out[len - 1]))
			out[--len] = '\0';
		while (isspace((unsigned char)out[i]))
			i++;
		memmove(out, out + i, len - i + 1);
	}
	return r;
}

static const char *
domain_of(const char *addr)
{
	const char *at = strrchr(addr, '@');

	return at ? at + 1 : "";
}

struct rw {
	const struct compose_spec *spec;
	uint64_t delivery_id;
	struct compose_links *missing;
	int failed;
};

static int
add_missing(struct compose_links *l, const char *url, const char *tag)
{
	char **u, **t;

	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->url[i], url) == 0 && strcmp(l->tag[i], tag) == 0)
			return 0;
	if (!(u = realloc(l->url, (l->n + 1) * sizeof(*u))))
		return -1;
	l->url = u;
	if (!(t = realloc(l->tag, (l->n + 1) * sizeof(*t))))
		return -1;
	l->tag = t;
	if (!(l->url[l->n] = strdup(url)) || !(l->tag[l->n] = strdup(tag))) {
		free(l->url[l->n]);
		return -1;
	}
	l->n++;
	return 0;
}

static int
rewrite_link(void *arg, const struct htmlrw_link *link, struct buf *out)
{
	struct rw *rw = arg;
	const char *tag = link->tag ? link->tag : "";
	uint64_t id = rw->spec->link_id(rw->spec->link_arg, link->url, tag);
	char tok[TOKEN_MAX];

	if (id == 0) {
		if (add_missing(rw->missing, link->url, tag) < 0)
			return -1;
		return 1;
	}
	token_sign(rw->spec->key, 'c', rw->delivery_id, id, tok);
	buf_printf(out, "%s/c/%s", rw->spec->public_url, tok);
	return 0;
}

/* Insert a hidden preheader right after <body ...>, or at the start. */
static void
insert_preheader(const char *html, size_t len, const char *pre,
    struct buf *out)
{
	const char *p = NULL;
	size_t at = 0;

	for (size_t i = 0; i + 5 <= len; i++) {
		if (html[i] == '<' && strncasecmp(html + i + 1, "body", 4) == 0 &&
		    (i + 5 == len || html[i + 5] == '>' ||
		    isspace((unsigned char)html[i + 5]))) {
			p = memchr(html + i, '>', len - i);
			break;
		}
	}
	if (p)
		at = (size_t)(p - html) + 1;
	buf_append(out, html, at);
	buf_puts(out, "<div style=\"display:none;max-height:0;overflow:hidden;"
	    "mso-hide:all\">");
	htmlrw_escape(pre, strlen(pre), out);
	buf_puts(out, "</div>");
	buf_append(out, html + at, len - at);
}

/*
 * The working buffers of a message, one set per thread, kept from one
 * message to the next: a newsletter needs some 150 KB of them, which were
 * allocated (and the pages faulted in) and freed again for each message.
 * A buffer grown past KEEP_MAX by a large message is freed after it.
 */
#define KEEP_MAX        (512 * 1024)

struct scratch {
	struct buf html, tracked, text, body, sig;
};

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

static void
scratch_free(void *p)
{
	struct scratch *w = p;

	buf_free(&w->html);
	buf_free(&w->tracked);
	buf_free(&w->text);
	buf_free(&w->body);
	buf_free(&w->sig);
	free(w);
}

static void
scratch_init(void)
{
	pthread_key_create(&scratch_key, scratch_free);
}

static void
scratch_buf(struct buf *b, size_t limit, size_t want)
{
	if (b->cap > KEEP_MAX)
		buf_free(b);
	buf_reset(b);
	b->limit = limit;
	if (b->cap < want)
		buf_grow(b, want);
}

/* This thread's buffers, emptied, with limit; NULL if out of memory. */
static struct scratch *
scratch_get(size_t limit)
{
	struct scratch *w;

	pthread_once(&scratch_once, scratch_init);
	if ((w = pthread_getspecific(scratch_key)) == NULL) {
		if ((w = calloc(1, sizeof(*w))) == NULL)
			return NULL;
		if (pthread_setspecific(scratch_key, w) != 0) {
			free(w);
			return NULL;
		}
	}
	/* a newsletter is tens of KB: start there rather than doubling up */
	scratch_buf(&w->html, limit, 32768);
	scratch_buf(&w->tracked, limit, 32768);
	scratch_buf(&w->text, limit, 8192);
	scratch_buf(&w->body, limit, 65536);
	scratch_buf(&w->sig, 0, 0);
	return w;
}

enum compose_result
compose_message(const struct compose_spec *s, uint64_t delivery_id,
    const char *rcpt, const json_t *data, struct compose_out *out)
{
	char from[HEADER_MAX], reply[HEADER_MAX], subject[HEADER_MAX],
	    pre[HEADER_MAX], display[HEADER_MAX], addr[512],
	    rdisplay[HEADER_MAX], raddr[512], tok[TOKEN_MAX], url[1024];
	struct scratch *w = scratch_get(s->max_size);
	struct mime_msg *m = NULL;
	json_t *ctx = NULL;
	const char *fn, *ln, *domain, *why = NULL;
	enum compose_result rc = COMPOSE_FAILED;
	struct rw rw = { s, delivery_id, &out->missing, 0 };

	if (!w) {
		snprintf(out->err, sizeof(out->err), "out of memory");
		return COMPOSE_FAILED;
	}
	if (!mime_addr_valid(rcpt, &why)) {
		snprintf(out->err, sizeof(out->err), "recipient %.120s: %s", rcpt,
		    why ? why : "not an address");
		goto done;
	}
	/* the template data: the lead, plus what the message itself adds (a
	 * shallow copy: only keys of its own are set) */
	ctx = json_is_object(data) ? json_copy((json_t *)data) : json_object();
	token_sign(s->key, 'u', delivery_id, 0, tok);
	snprintf(url, sizeof(url), "%s/u/%s", s->public_url, tok);
	if (s->bulk)
		json_object_set_new(ctx, "unsubscribe_url", json_string(url));
	if (s->bulk) {          /* forward to a friend (forward_routes.c) */
		token_sign(s->key, 'f', delivery_id, 0, tok);
		snprintf(url, sizeof(url), "%s/fw/%s", s->public_url, tok);
		json_object_set_new(ctx, "forward_url", json_string(url));
		token_sign(s->key, 'u', delivery_id, 0, tok);
		snprintf(url, sizeof(url), "%s/u/%s", s->public_url, tok);
	}
	json_object_set_new(ctx, "campaign_name", json_string(s->name));
	json_object_set_new(ctx, "email", json_string(rcpt));
	if (render_line(s, s->from, ctx, from, sizeof(from)) < 0 ||
	    render_line(s, s->reply_to, ctx, reply, sizeof(reply)) < 0 ||
	    render_line(s, s->subject, ctx, subject, sizeof(subject)) < 0 ||
	    render_line(s, s->preheader, ctx, pre, sizeof(pre)) < 0) {
		snprintf(out->err, sizeof(out->err), "a header template is too "
		    "long when rendered");
		goto done;
	}
	if (campaign_split_address(from, display, sizeof(display), addr,
	    sizeof(addr)) < 0 || !mime_addr_valid(addr, &why)) {
		snprintf(out->err, sizeof(out->err), "from: '%.150s' is not a valid "
		    "address", from);
		goto done;
	}
	domain = domain_of(addr);
	if (s->html && tmpl_render(s->html, ctx, s->partials, TMPL_ESCAPE_HTML,
	    &w->html) < 0) {
		snprintf(out->err, sizeof(out->err), "the HTML is over %zu bytes "
		    "or nests too deeply", s->max_size);
		goto done;
	}
	if (s->text) {
		if (tmpl_render(s->text, ctx, s->partials, TMPL_ESCAPE_NONE,
		    &w->text) < 0) {
			snprintf(out->err, sizeof(out->err), "the text is over %zu "
			    "bytes or nests too deeply", s->max_size);
			goto done;
		}
	} else if (s->html) {
		htmlrw_to_text(w->html.data ? w->html.data : "", w->html.len, &w->text);
	}
	if (s->html) {
		const char *src = buf_str(&w->html);
		size_t len = w->html.len;

		if (*pre) {
			insert_preheader(src, len, pre, &w->body);
			src = buf_str(&w->body);
			len = w->body.len;
		}
		token_sign(s->key, 'o', delivery_id, 0, tok);
		snprintf(url, sizeof(url), "%s/o/%s.gif", s->public_url, tok);
		if (htmlrw_rewrite(src, len, s->track ? rewrite_link : NULL, &rw,
		    s->track ? url : NULL, &w->tracked) < 0) {
			snprintf(out->err, sizeof(out->err), "rewriting links "
			    "failed (message too large?)");
			goto done;
		}
		if (out->missing.n) {
			rc = COMPOSE_NEED_LINKS;
			goto done;
		}
	}
	if (!(m = mime_new()))
		goto done;
	mime_set_id_domain(m, domain);
	if (mime_address_header(m, "From", display, addr) < 0)
		goto bad_header;
	fn = json_string_value(json_object_get(data, "first_name"));
	ln = json_string_value(json_object_get(data, "last_name"));
	snprintf(rdisplay, sizeof(rdisplay), "%s%s%s", fn ? fn : "",
	    fn && ln ? " " : "", ln ? ln : "");
	if (mime_address_header(m, "To", rdisplay, rcpt) < 0)
		goto bad_header;
	if (*reply) {
		if (campaign_split_address(reply, rdisplay, sizeof(rdisplay),
		    raddr, sizeof(raddr)) < 0 ||
		    mime_address_header(m, "Reply-To", rdisplay, raddr) < 0)
			goto bad_header;
	}
	if (mime_header(m, "Subject", subject) < 0)
		goto bad_header;
	mime_message_id(out->message_id, sizeof(out->message_id), domain);
	mime_header(m, "Message-ID", out->message_id);
	/* "<hex@domain>" -> "hex@domain" for the record */
	memmove(out->message_id, out->message_id + 1, strlen(out->message_id));
	out->message_id[strcspn(out->message_id, ">")] = '\0';
	if (s->bulk) {
		char lu[2048], lid[512];
		const char *ldom = *s->list_id_domain ? s->list_id_domain : domain;

		token_sign(s->key, 'u', delivery_id, 0, tok);
		if (*s->unsubscribe_mailto)
			snprintf(lu, sizeof(lu), "<%s/u/%s>, <mailto:%s?subject="
			    "unsubscribe-%s>", s->public_url, tok,
			    s->unsubscribe_mailto, tok);
		else
			snprintf(lu, sizeof(lu), "<%s/u/%s>", s->public_url, tok);
		mime_header(m, "List-Unsubscribe", lu);
		mime_header(m, "List-Unsubscribe-Post",
		    "List-Unsubscribe=One-Click");
		snprintf(lid, sizeof(lid), "%s <%s.%s>", s->name, s->name, ldom);
		mime_header(m, "List-Id", lid);
		snprintf(lid, sizeof(lid), "%llu:%s:leadcast:%s",
		    (unsigned long long)s->campaign_id, s->name, domain);
		mime_header(m, "Feedback-ID", lid);
		mime_header(m, "Precedence", "bulk");
	}
	if (w->text.len || !s->html)
		mime_set_text(m, buf_str(&w->text), w->text.len);
	if (s->html)
		mime_set_html(m, buf_str(&w->tracked), w->tracked.len);
	buf_reset(&w->body);
	if (mime_render(m, s->max_size, &w->body, out->err, sizeof(out->err)) < 0)
		goto done;
	if (s->dkim && dkim_keys_sign(s->dkim, domain, w->body.data, w->body.len,
	    &w->sig, out->err, sizeof(out->err)) < 0)
		goto done;
	buf_reset(&out->msg);
	buf_grow_exact(&out->msg, w->sig.len + w->body.len);
	buf_append(&out->msg, buf_str(&w->sig), w->sig.len);
	buf_append(&out->msg, buf_str(&w->body), w->body.len);
	token_sign(s->key, 'b', delivery_id, 0, tok);
	snprintf(out->mail_from, sizeof(out->mail_from), "bounces+%s@%s", tok,
	    *s->bounce_domain ? s->bounce_domain : domain);
	rc = out->msg.overflow ? COMPOSE_FAILED : COMPOSE_OK;
	if (out->msg.overflow)
		snprintf(out->err, sizeof(out->err), "out of memory");
	else if (s->max_size && out->msg.len > s->max_size) {
		snprintf(out->err, sizeof(out->err), "message is %zu bytes with "
		    "its signature, over the limit of %zu", out->msg.len,
		    s->max_size);
		rc = COMPOSE_FAILED;
	}
	goto done;
bad_header:
	snprintf(out->err, sizeof(out->err), "an address or header is not "
	    "valid (from '%.80s', reply-to '%.80s')", from, reply);
done:
	mime_free(m);
	json_decref(ctx);
	return rc;
}
