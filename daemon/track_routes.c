/*
 * track_routes - the public endpoints that messages link to: the open
 * pixel /o/{token}.gif, the click redirect /c/{token} and the unsubscribe
 * page /u/{token} (GET shows a confirmation, POST unsubscribes: RFC 8058
 * one-click). Tokens are signed (token.c): a tampered or unknown one gets
 * 404, and a redirect only ever goes to a destination stored in the
 * campaign's link table, never to a URL taken from the request.
 *
 * The pixel and the redirect run on any thread (the tracking threads of
 * track.c, or the main loop): they verify the token, classify the client
 * (lib/botclass), take the destination from the in-memory link table and
 * hand the hit to track.c, answering without waiting for the database.
 * A HEAD request is answered like a GET and recorded as a scanner's; a
 * client over track.rate is answered and not recorded. With track.sites,
 * a click carries the message's visitor token (kind 'v') in a cookie and,
 * to the marketer's own sites, as lc= in the URL; /v.gif records a page
 * of those sites seen by such a visitor (a visit, or a hot page of
 * track.hot_pages), for the snippet of contrib/leadcast-visit.js. The unsubscribe
 * page runs on the main loop only and writes through the database.
 */
#include "config.h"
#include "daemon.h"
#include "track.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <arpa/inet.h>
#include <ctype.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "botclass.h"
#include "buf.h"
#include "db.h"
#include "httpd.h"
#include "log.h"
#include "tmpl.h"
#include "token.h"

#define UA_MAX 512
#define URL_MAX 8192

/* A 1x1 transparent GIF: 43 bytes. */
static const unsigned char pixel_gif[43] = {
	0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00,
	0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0x21, 0xf9, 0x04, 0x01, 0x00,
	0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00,
	0x00, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3b
};

static void
not_found(struct lc_daemon *d, struct httpd_req *r)
{
	daemon_page(d, r, 404, "pages/invalid_link", json_object());
}

/* The user agent, bounded; "" if absent. */
static void
user_agent(struct httpd_req *r, char *out, size_t n)
{
	const char *ua = evhttp_find_header(
	    evhttp_request_get_input_headers(r->req), "User-Agent");

	snprintf(out, n, "%s", ua ? ua : "");
}

/*
 * The client's address: the peer's, or, when the peer is one of
 * track.trusted_proxies, the last address of X-Forwarded-For (the one that
 * proxy saw). Written to out (size n).
 */
static const char *
client(struct track_ctx *c, struct httpd_req *r, char *out, size_t n)
{
	const struct conf *cf = track_ctx_conf(c);
	const char *xff, *last;
	char tmp[64];
	unsigned char buf[16];
	size_t l;

	snprintf(out, n, "%s", r->client_ip);
	for (size_t i = 0; i < cf->track.trusted_proxies.n; i++) {
		if (strcmp(r->client_ip, cf->track.trusted_proxies.v[i]) != 0)
			continue;
		xff = evhttp_find_header(evhttp_request_get_input_headers(r->req),
		    "X-Forwarded-For");
		if (!xff)
			break;
		last = strrchr(xff, ',');
		last = last ? last + 1 : xff;
		while (*last == ' ')
			last++;
		l = strcspn(last, " ");
		if (l == 0 || l >= sizeof(tmp))
			break;
		memcpy(tmp, last, l);
		tmp[l] = '\0';
		if (inet_pton(AF_INET, tmp, buf) == 1 ||
		    inet_pton(AF_INET6, tmp, buf) == 1)
			snprintf(out, n, "%s", tmp);
		break;
	}
	return out;
}

/* Fill a hit of type with the request's client, classified. */
static void
hit_from(struct track_ctx *c, struct httpd_req *r, int type, struct hit *h)
{
	const char *ua = evhttp_find_header(
	    evhttp_request_get_input_headers(r->req), "User-Agent");

	char ip[64];

	client(c, r, ip, sizeof(ip));
	memset(h, 0, sizeof(*h));
	h->type = (unsigned char)type;
	hit_clean(h->ip, sizeof(h->ip), ip);
	hit_clean(h->ua, sizeof(h->ua), ua);
	h->cls = (unsigned char)botclass_classify(track_ctx_conf(c)->track.bots,
	    ua, ip, h->reason, sizeof(h->reason));
	if (evhttp_request_get_command(r->req) == EVHTTP_REQ_HEAD &&
	    h->cls == HIT_HUMAN) {
		h->cls = HIT_SCANNER;
		snprintf(h->reason, sizeof(h->reason), "head-request");
	}
}

static void
track_404(struct track_ctx *c, struct httpd_req *r)
{
	daemon_page_conf(track_ctx_conf(c), r, 404, "pages/invalid_link",
	    json_object());
}

/* ---- /o/{token}.gif ---------------------------------------------------- */

static void
open_pixel(struct httpd_req *r, void *arg)
{
	struct track_ctx *c = arg;
	struct evkeyvalq *oh = evhttp_request_get_output_headers(r->req);
	size_t len = strlen(r->tail);
	uint64_t id, unused;
	struct hit h;
	char ip[64];

	if (len < 5 || len > TOKEN_MAX + 4 ||
	    strcmp(r->tail + len - 4, ".gif") != 0 ||
	    token_verify(&c->d->url_key, 'o', r->tail, len - 4, &id,
	    &unused) < 0) {
		httpd_reply(r, 404, "text/plain", "not found\n", 10);
		return;
	}
	if (track_ctx_allow(c, client(c, r, ip, sizeof(ip)))) {
		hit_from(c, r, HIT_OPEN, &h);
		h.delivery = id;
		track_ctx_record(c, &h);
	}
	evhttp_add_header(oh, "Cache-Control",
	    "no-store, no-cache, must-revalidate, private, max-age=0");
	evhttp_add_header(oh, "Pragma", "no-cache");
	evhttp_add_header(oh, "Expires", "Thu, 01 Jan 1970 00:00:00 GMT");
	httpd_reply(r, 200, "image/gif", pixel_gif, sizeof(pixel_gif));
}

/* ---- /c/{token} --------------------------------------------------------- */

/* Is url's host one of the marketer's sites (or under one)? */
static int
on_site(const struct conf *cf, const char *url)
{
	const char *h = strstr(url, "://");
	size_t hl;

	if (!h)
		return 0;
	h += 3;
	hl = strcspn(h, "/?#:@");
	if (h[hl] == '@')       /* userinfo: not one of ours */
		return 0;
	for (size_t i = 0; i < cf->track.sites.n; i++) {
		const char *s = cf->track.sites.v[i];
		size_t sl = strlen(s);

		if ((hl == sl && strncasecmp(h, s, sl) == 0) ||
		    (hl > sl && h[hl - sl - 1] == '.' &&
		    strncasecmp(h + hl - sl, s, sl) == 0))
			return 1;
	}
	return 0;
}

/*
 * With track.sites: the visitor token of the message (kind 'v') in a
 * first-party cookie (Domain = track.cookie_domain, else this host), and
 * as lc= on links to the sites, for their snippet to keep. The link stays
 * the stored one: the parameter goes before any fragment.
 */
static const char *
visitor(struct track_ctx *c, struct httpd_req *r, const char *url,
    uint64_t delivery, char *out, size_t n)
{
	const struct conf *cf = track_ctx_conf(c);
	char tok[TOKEN_MAX], cookie[512];
	const char *hash;
	size_t base;

	if (cf->track.sites.n == 0)
		return url;
	token_sign(&c->d->url_key, 'v', delivery, 0, tok);
	snprintf(cookie, sizeof(cookie), "lc=%s; Path=/; Max-Age=%ld; "
	    "SameSite=Lax; HttpOnly%s%s%s", tok, cf->track.cookie_max_age_ms /
	    1000, strncmp(cf->http.public_url, "https:", 6) == 0 ? "; Secure" :
	    "", cf->track.cookie_domain[0] ? "; Domain=" : "",
	    cf->track.cookie_domain);
	evhttp_add_header(evhttp_request_get_output_headers(r->req),
	    "Set-Cookie", cookie);
	if (!on_site(cf, url))
		return url;
	hash = strchr(url, '#');
	base = hash ? (size_t)(hash - url) : strlen(url);
	if ((size_t)snprintf(out, n, "%.*s%clc=%s%s", (int)base, url,
	    memchr(url, '?', base) ? '&' : '?', tok, hash ? hash : "") >= n)
		return url;
	return out;
}

static void
redirect(struct track_ctx *c, struct httpd_req *r, const char *url,
    uint64_t delivery, uint64_t link)
{
	struct evkeyvalq *oh = evhttp_request_get_output_headers(r->req);
	struct hit h;
	char decorated[URL_MAX + TOKEN_MAX + 8], ip[64];

	if (track_ctx_allow(c, client(c, r, ip, sizeof(ip)))) {
		hit_from(c, r, HIT_CLICK, &h);
		h.delivery = delivery;
		h.link = link;
		track_ctx_record(c, &h);
	}
	url = visitor(c, r, url, delivery, decorated, sizeof(decorated));
	evhttp_add_header(oh, "Location", url);
	evhttp_add_header(oh, "Referrer-Policy", "no-referrer");
	httpd_reply(r, 302, "text/plain", "", 0);
}

struct click_wait {
	struct track_ctx *c;
	struct httpd_req *r;
	uint64_t delivery, link;
};

static void
click_found(void *arg, int found)
{
	struct click_wait *w = arg;
	char url[URL_MAX], tag[256];

	if (found == 1 && track_ctx_link(w->c, w->link, url, sizeof(url), tag,
	    sizeof(tag)))
		redirect(w->c, w->r, url, w->delivery, w->link);
	else if (found < 0)
		httpd_reply(w->r, 503, "text/plain",
		    "temporarily unavailable, try again\n", 35);
	else
		track_404(w->c, w->r);
	free(w);
}

static void
click(struct httpd_req *r, void *arg)
{
	struct track_ctx *c = arg;
	uint64_t id, link;
	char url[URL_MAX], tag[256];
	struct click_wait *w;

	if (strlen(r->tail) > TOKEN_MAX || token_verify(&c->d->url_key, 'c',
	    r->tail, strlen(r->tail), &id, &link) < 0) {
		track_404(c, r);
		return;
	}
	if (track_ctx_link(c, link, url, sizeof(url), tag, sizeof(tag))) {
		redirect(c, r, url, id, link);
		return;
	}
	/* not in memory (a campaign just started, or the table is full) */
	if (!(w = calloc(1, sizeof(*w)))) {
		httpd_reply(r, 503, "text/plain",
		    "temporarily unavailable, try again\n", 35);
		return;
	}
	w->c = c;
	w->r = r;
	w->delivery = id;
	w->link = link;
	if (track_ctx_link_miss(c, link, click_found, w) < 0) {
		free(w);
		httpd_reply(r, 503, "text/plain",
		    "temporarily unavailable, try again\n", 35);
	}
}

/* ---- /v.gif: a page of the marketer's site seen by a known visitor ------- */

/* The lc cookie of the request, copied into out; "" if none. */
static void
lc_cookie(struct httpd_req *r, char *out, size_t n)
{
	const char *ck = evhttp_find_header(
	    evhttp_request_get_input_headers(r->req), "Cookie");
	const char *p = ck;

	out[0] = '\0';
	while (p && *p) {
		while (*p == ' ' || *p == ';')
			p++;
		if (strncmp(p, "lc=", 3) == 0) {
			size_t l = strcspn(p + 3, ";");

			if (l < n) {
				memcpy(out, p + 3, l);
				out[l] = '\0';
			}
			return;
		}
		p = strchr(p, ';');
	}
}

static int
http_url(const char *u)
{
	return u && (strncasecmp(u, "http://", 7) == 0 ||
	    strncasecmp(u, "https://", 8) == 0) && strlen(u) < HIT_URL_MAX;
}

static void
visit(struct httpd_req *r, void *arg)
{
	struct track_ctx *c = arg;
	const struct conf *cf = track_ctx_conf(c);
	struct evkeyvalq *oh = evhttp_request_get_output_headers(r->req);
	const char *lc = evhttp_find_header(r->query, "lc");
	const char *page = evhttp_find_header(r->query, "u");
	const char *ref = evhttp_find_header(r->query, "r");
	char ck[TOKEN_MAX], ip[64];
	uint64_t id, unused;
	struct hit h;

	if (!page)      /* the no-JavaScript pixel: its page is the referrer */
		page = evhttp_find_header(
		    evhttp_request_get_input_headers(r->req), "Referer");
	if (!lc || !*lc) {
		lc_cookie(r, ck, sizeof(ck));
		lc = ck;
	}
	/* only visitors tied to a lead, and only plain web pages */
	if (strlen(lc) < TOKEN_MAX && token_verify(&c->d->url_key, 'v', lc,
	    strlen(lc), &id, &unused) == 0 && http_url(page) &&
	    (!ref || !*ref || http_url(ref)) &&
	    track_ctx_allow(c, client(c, r, ip, sizeof(ip)))) {
		hit_from(c, r, HIT_VISIT, &h);
		h.delivery = id;
		hit_clean(h.url, sizeof(h.url), page);
		hit_clean(h.referrer, sizeof(h.referrer), ref);
		for (size_t i = 0; i < cf->track.hot_pages.n; i++) {
			const char *v = cf->track.hot_pages.v[i];
			const char *eq = strchr(v, '=');

			if (eq && fnmatch(eq + 1, h.url, FNM_CASEFOLD) == 0) {
				h.type = HIT_HOT_PAGE;
				snprintf(h.page, sizeof(h.page), "%.*s",
				    (int)(eq - v), v);
				break;
			}
		}
		track_ctx_record(c, &h);
	}
	evhttp_add_header(oh, "Cache-Control",
	    "no-store, no-cache, must-revalidate, private, max-age=0");
	evhttp_add_header(oh, "Access-Control-Allow-Origin", "*");
	httpd_reply(r, 200, "image/gif", pixel_gif, sizeof(pixel_gif));
}

/* ---- /u/{token} --------------------------------------------------------- */

/* "jane.doe@example.com" -> "j***@example.com" */
static void
mask_email(const char *email, char *out, size_t n)
{
	const char *at = strchr(email, '@');

	if (!at || at == email)
		snprintf(out, n, "***");
	else
		snprintf(out, n, "%c***%s", email[0], at);
}

struct unsub {
	struct lc_daemon *d;
	struct httpd_req *r;
	int post, one_click;
};

static void
unsub_done(void *arg, const PGresult *res, const char *err)
{
	struct unsub *u = arg;
	char masked[300];

	if (err) {
		log_warn("unsubscribe: %s", err);
		httpd_reply(u->r, 503, "text/plain",
		    "temporarily unavailable, try again\n", 35);
	} else if (PQntuples(res) != 1 || PQgetisnull(res, 0, 0)) {
		not_found(u->d, u->r);
	} else if (u->one_click) {
		httpd_reply(u->r, 200, "text/plain; charset=utf-8",
		    "unsubscribed\n", 13);
	} else {
		mask_email(PQgetvalue(res, 0, 0), masked, sizeof(masked));
		daemon_page(u->d, u->r, 200, u->post ? "pages/unsubscribed" :
		    "pages/unsubscribe", json_pack("{s:s, s:s?}", "email", masked,
		    "list", PQgetisnull(res, 0, 1) ? NULL :
		    PQgetvalue(res, 0, 1)));
	}
	free(u);
}

static void
unsubscribe(struct httpd_req *r, void *arg)
{
	struct lc_daemon *d = arg;
	uint64_t id, unused;
	struct unsub *u;
	char ids[32], ua[UA_MAX];
	int rc;

	if (token_verify(&d->url_key, 'u', r->tail, strlen(r->tail), &id,
	    &unused) < 0 || !(u = calloc(1, sizeof(*u)))) {
		not_found(d, r);
		return;
	}
	u->d = d;
	u->r = r;
	u->post = evhttp_request_get_command(r->req) == EVHTTP_REQ_POST;
	snprintf(ids, sizeof(ids), "%llu", (unsigned long long)id);
	if (u->post) {
		struct evbuffer *in = evhttp_request_get_input_buffer(r->req);
		size_t len = evbuffer_get_length(in);
		const char *body = (const char *)evbuffer_pullup(in,
		    (ev_ssize_t)len);

		/* RFC 8058: a mail client's one-click POST */
		u->one_click = body && len == 26 &&
		    memcmp(body, "List-Unsubscribe=One-Click", 26) == 0;
		user_agent(r, ua, sizeof(ua));
		{
			const char *p[4] = { ids, r->client_ip, ua,
			    u->one_click ? "one-click" : "page" };

			rc = db_query(d->db,
			    "WITH d AS (SELECT d.id, d.lead_id, d.campaign_id, "
			    "d.email, c.list_ids FROM deliveries d JOIN campaigns c "
			    "ON c.id = d.campaign_id WHERE d.id = $1), "
			    "s AS (UPDATE subscriptions SET status = 'unsubscribed',"
			    " unsubscribed_at = now() WHERE lead_id = (SELECT "
			    "lead_id FROM d) AND list_id = ANY((SELECT list_ids "
			    "FROM d)::int[]) AND status <> 'unsubscribed' "
			    "RETURNING 1), "
			    /* per list; everywhere when the message had no list */
			    "p AS (INSERT INTO suppressions (email, list_id, reason)"
			    " SELECT d.email, x.list_id, 'unsubscribe' FROM d, "
			    "unnest(CASE WHEN cardinality(d.list_ids) = 0 THEN "
			    "ARRAY[NULL::integer] ELSE d.list_ids END) AS "
			    "x(list_id) ON CONFLICT (lower(email), "
			    "coalesce(list_id, 0)) DO NOTHING RETURNING 1), "
			    "e AS (INSERT INTO events (type, lead_id, delivery_id, "
			    "campaign_id, ip, user_agent, data) SELECT "
			    "'unsubscribe', lead_id, id, campaign_id, $2::inet, $3,"
			    " jsonb_build_object('via', $4::text) FROM d "
			    "RETURNING 1) "
			    "SELECT d.email, (SELECT string_agg(l.name, ', ') FROM "
			    "lists l WHERE l.id = ANY(d.list_ids)) FROM d", 4, p,
			    unsub_done, u);
		}
	} else {
		const char *p[1] = { ids };

		rc = db_query(d->db, "SELECT d.email, (SELECT string_agg(l.name, "
		    "', ') FROM lists l WHERE l.id = ANY(c.list_ids)) FROM "
		    "deliveries d JOIN campaigns c ON c.id = d.campaign_id WHERE "
		    "d.id = $1", 1, p, unsub_done, u);
	}
	if (rc < 0) {
		free(u);
		httpd_reply(r, 503, "text/plain",
		    "temporarily unavailable, try again\n", 35);
	}
}

void
track_routes_add(struct httpd *h, struct track_ctx *ctx)
{
	static const struct httpd_route routes[] = {
		{ HTTPD_GET | HTTPD_HEAD, "/o/", "open", open_pixel, NULL },
		{ HTTPD_GET | HTTPD_HEAD, "/c/", "click", click, NULL },
		{ HTTPD_GET | HTTPD_HEAD, "/v.gif", "visit", visit, NULL },
	};

	httpd_add_routes(h, routes, sizeof(routes) / sizeof(routes[0]), ctx);
}

void
track_routes_register(struct lc_daemon *d)
{
	static const struct httpd_route routes[] = {
		{ HTTPD_GET | HTTPD_POST, "/u/", "unsubscribe", unsubscribe,
		  NULL },
	};

	track_routes_add(d->httpd, track_loop_ctx(d->track));
	httpd_add_routes(d->httpd, routes, sizeof(routes) / sizeof(routes[0]),
	    d);
}
