/*
 * track_routes - the public endpoints that messages link to: the open
 * pixel /o/{token}.gif, the click redirect /c/{token} and the unsubscribe
 * page /u/{token} (GET shows a confirmation, POST unsubscribes: RFC 8058
 * one-click). Tokens are signed (token.c): a tampered or unknown one gets
 * 404, and a redirect only ever goes to a destination stored in the
 * campaign's link table, never to a URL taken from the request.
 * Events are written through the async database layer; the pixel answers
 * without waiting for it. It does not classify bots (the tracking issue).
 */
#include "config.h"
#include "daemon.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "db.h"
#include "httpd.h"
#include "log.h"
#include "tmpl.h"
#include "token.h"

#define UA_MAX 512

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

static void
on_event_written(void *arg, const PGresult *res, const char *err)
{
	(void)arg;
	(void)res;
	if (err)
		log_warn("recording a tracking event: %s", err);
}

/* ---- /o/{token}.gif ---------------------------------------------------- */

static void
open_pixel(struct httpd_req *r, void *arg)
{
	struct lc_daemon *d = arg;
	struct evkeyvalq *oh = evhttp_request_get_output_headers(r->req);
	size_t len = strlen(r->tail);
	uint64_t id, unused;
	char ids[32], ua[UA_MAX];

	if (len < 5 || strcmp(r->tail + len - 4, ".gif") != 0 ||
	    token_verify(&d->url_key, 'o', r->tail, len - 4, &id, &unused) < 0) {
		httpd_reply(r, 404, "text/plain", "not found\n", 10);
		return;
	}
	snprintf(ids, sizeof(ids), "%llu", (unsigned long long)id);
	user_agent(r, ua, sizeof(ua));
	{
		const char *p[3] = { ids, r->client_ip, ua };

		db_query(d->db, "INSERT INTO events (type, lead_id, delivery_id, "
		    "campaign_id, ip, user_agent) SELECT 'open', lead_id, id, "
		    "campaign_id, $2::inet, $3 FROM deliveries WHERE id = $1",
		    3, p, on_event_written, NULL);
	}
	evhttp_add_header(oh, "Cache-Control",
	    "no-store, no-cache, must-revalidate, private, max-age=0");
	evhttp_add_header(oh, "Pragma", "no-cache");
	evhttp_add_header(oh, "Expires", "Thu, 01 Jan 1970 00:00:00 GMT");
	httpd_reply(r, 200, "image/gif", pixel_gif, sizeof(pixel_gif));
}

/* ---- /c/{token} --------------------------------------------------------- */

struct click {
	struct lc_daemon *d;
	struct httpd_req *r;
	char ids[2][32];
	char ua[UA_MAX];
};

static void
click_found(void *arg, const PGresult *res, const char *err)
{
	struct click *c = arg;
	const char *url;

	if (err) {
		httpd_reply(c->r, 503, "text/plain",
		    "temporarily unavailable, try again\n", 35);
		free(c);
		return;
	}
	if (PQntuples(res) != 1) {
		not_found(c->d, c->r);
		free(c);
		return;
	}
	url = PQgetvalue(res, 0, 0);
	/* stored links are http(s) by construction; refuse anything else */
	if (strncasecmp(url, "http://", 7) != 0 &&
	    strncasecmp(url, "https://", 8) != 0) {
		not_found(c->d, c->r);
		free(c);
		return;
	}
	{
		const char *p[4] = { c->ids[0], c->ids[1], c->r->client_ip, c->ua };

		db_query(c->d->db, "INSERT INTO events (type, lead_id, "
		    "delivery_id, campaign_id, link_id, ip, user_agent) SELECT "
		    "'click', lead_id, id, campaign_id, $2, $3::inet, $4 FROM "
		    "deliveries WHERE id = $1", 4, p, on_event_written, NULL);
	}
	evhttp_add_header(evhttp_request_get_output_headers(c->r->req),
	    "Location", url);
	evhttp_add_header(evhttp_request_get_output_headers(c->r->req),
	    "Referrer-Policy", "no-referrer");
	httpd_reply(c->r, 302, "text/plain", "", 0);
	free(c);
}

static void
click(struct httpd_req *r, void *arg)
{
	struct lc_daemon *d = arg;
	uint64_t id, link;
	struct click *c;

	if (token_verify(&d->url_key, 'c', r->tail, strlen(r->tail), &id,
	    &link) < 0 || !(c = calloc(1, sizeof(*c)))) {
		not_found(d, r);
		return;
	}
	c->d = d;
	c->r = r;
	snprintf(c->ids[0], sizeof(c->ids[0]), "%llu", (unsigned long long)id);
	snprintf(c->ids[1], sizeof(c->ids[1]), "%llu", (unsigned long long)link);
	user_agent(r, c->ua, sizeof(c->ua));
	{
		const char *p[2] = { c->ids[0], c->ids[1] };

		if (db_query(d->db, "SELECT l.url FROM campaign_links l JOIN "
		    "deliveries d ON d.campaign_id = l.campaign_id WHERE "
		    "d.id = $1 AND l.id = $2", 2, p, click_found, c) < 0) {
			free(c);
			httpd_reply(r, 503, "text/plain",
			    "temporarily unavailable, try again\n", 35);
		}
	}
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
track_routes_register(struct lc_daemon *d)
{
	static const struct httpd_route routes[] = {
		{ HTTPD_GET | HTTPD_HEAD, "/o/", "open", open_pixel, NULL },
		{ HTTPD_GET | HTTPD_HEAD, "/c/", "click", click, NULL },
		{ HTTPD_GET | HTTPD_POST, "/u/", "unsubscribe", unsubscribe,
		  NULL },
	};

	httpd_add_routes(d->httpd, routes, sizeof(routes) / sizeof(routes[0]),
	    d);
}
