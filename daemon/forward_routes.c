/*
 * forward_routes - "forward to a friend": GET /fw/{token} shows a form
 * for a friend's address, POST /fw/{token} sends the friend a copy of the
 * campaign through the sender (sender_send_test: composed, signed and
 * delivered like any message, on a row of its own that no report counts)
 * and records a `forward` event on the reader's message, scored like any
 * behavior event (leads_score).
 *
 * The friend is not subscribed to anything, and an address that is
 * suppressed (unsubscribed, bounced, complained: everywhere or from one of
 * the campaign's lists) gets nothing. Posts are rate-limited per client
 * address and per message (track.forward_rate each); the token (kind 'f',
 * the delivery) is signed, so nobody forwards what they were not sent.
 * A GET changes nothing. Runs on the main loop.
 */
#include "config.h"
#include "daemon.h"
#include "track.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db.h"
#include "form.h"
#include "httpd.h"
#include "log.h"
#include "mime.h"
#include "token.h"

#define FW_LIMITER_SLOTS 16384
#define FW_BODY_MAX      4096

static struct form_limiter *limiter;

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct fw {
	struct lc_daemon *d;
	struct httpd_req *r;
	char did[32];
	char to[320];
	char ua[256];
	char campaign[256];
	long long lead;
};

static void
page(struct fw *f, int code, const char *name, const char *error)
{
	daemon_page(f->d, f->r, code, name, json_pack("{s:s, s:s?, s:s?}",
	    "campaign", f->campaign, "error", error, "to", *f->to ? f->to :
	    NULL));
	free(f);
}

static void
on_scored(void *arg, int status, json_t *doc)
{
	(void)arg;
	if (status >= 500)
		log_warn("forward: scoring: %s", json_string_value(json_object_get(
		    json_object_get(doc, "error"), "message")));
	json_decref(doc);
}

static void
on_recorded(void *arg, const PGresult *res, const char *err)
{
	struct fw *f = arg;

	if (err)
		log_warn("forward: recording the event: %s", err);
	else if (f->lead > 0 && f->d->conf->scoring)
		leads_score(f->d, f->lead, json_pack("{s:s, s:s, s:s}", "type",
		    "forward", "channel", "email", "campaign", f->campaign),
		    on_scored, NULL);
	(void)res;
	free(f);
}

static void
on_sent(void *arg, int status, json_t *doc)
{
	struct fw *f = arg, *keep;

	json_decref(doc);
	if (status >= 300) {
		page(f, status >= 500 ? 503 : 400, "pages/forward",
		    status >= 500 ? "The message could not be sent now: try "
		    "again later." : "That address cannot receive it.");
		return;
	}
	/* the page now; the event and its score after */
	if ((keep = malloc(sizeof(*keep))) != NULL) {
		const char *p[3] = { f->did, f->r->client_ip, f->ua };

		*keep = *f;
		keep->r = NULL;
		if (db_query(daemon_db(f->d), "INSERT INTO events (type, lead_id, "
		    "delivery_id, campaign_id, ip, user_agent, class, data) "
		    "SELECT 'forward', lead_id, id, campaign_id, $2::inet, "
		    "nullif($3, ''), 'human', '{\"via\": \"form\"}' FROM "
		    "deliveries WHERE id = $1", 3, p, on_recorded, keep) < 0) {
			log_warn("forward: the database queue is full: event not "
			    "recorded");
			free(keep);
		}
	}
	page(f, 200, "pages/forwarded", NULL);
}

static void
on_delivery(void *arg, const PGresult *res, const char *err)
{
	struct fw *f = arg;
	int post = evhttp_request_get_command(f->r->req) == EVHTTP_REQ_POST;

	if (err) {
		httpd_reply(f->r, 503, "text/plain",
		    "temporarily unavailable, try again\n", 35);
		free(f);
		return;
	}
	if (PQntuples(res) != 1) {
		daemon_page(f->d, f->r, 404, "pages/invalid_link", json_object());
		free(f);
		return;
	}
	snprintf(f->campaign, sizeof(f->campaign), "%s", PQgetvalue(res, 0, 0));
	f->lead = PQgetisnull(res, 0, 1) ? 0 : strtoll(PQgetvalue(res, 0, 1),
	    NULL, 10);
	if (!post) {
		page(f, 200, "pages/forward", NULL);
		return;
	}
	if (PQgetvalue(res, 0, 2)[0] == 't') {
		/* suppressed: say nothing about why */
		page(f, 200, "pages/forwarded", NULL);
		return;
	}
	if (sender_send_test(f->d->sender, f->campaign, f->to, on_sent, f) < 0)
		page(f, 503, "pages/forward", "The message could not be sent "
		    "now: try again later.");
}

static void
forward(struct httpd_req *r, void *arg)
{
	struct lc_daemon *d = arg;
	const struct conf *c = d->conf;
	uint64_t id, unused;
	struct fw *f;
	size_t len = strlen(r->tail);
	int post = evhttp_request_get_command(r->req) == EVHTTP_REQ_POST;
	const char *p[2];

	if (len > TOKEN_MAX || token_verify(&d->url_key, 'f', r->tail, len, &id,
	    &unused) < 0 || !(f = calloc(1, sizeof(*f)))) {
		daemon_page(d, r, 404, "pages/invalid_link", json_object());
		return;
	}
	f->d = d;
	f->r = r;
	snprintf(f->did, sizeof(f->did), "%llu", (unsigned long long)id);
	if (post) {
		struct evbuffer *in = evhttp_request_get_input_buffer(r->req);
		size_t blen = evbuffer_get_length(in);
		struct form_limits lim = { FW_BODY_MAX, 10, 512 };
		struct form_error fe;
		json_t *v = NULL;
		const char *to, *why = NULL, *ua = evhttp_find_header(
		    evhttp_request_get_input_headers(r->req), "User-Agent");
		char key[FORM_LIMITER_KEY_MAX + 40], client[FORM_LIMITER_KEY_MAX];

		if (blen > FW_BODY_MAX || form_parse_urlencoded((const char *)
		    evbuffer_pullup(in, (ev_ssize_t)blen), blen, &lim, &v,
		    &fe) < 0) {
			page(f, 400, "pages/forward", "Please enter one email "
			    "address.");
			return;
		}
		to = json_string_value(json_object_get(v, "to"));
		if (!to || !mime_addr_valid(to, &why) || strlen(to) >=
		    sizeof(f->to)) {
			json_decref(v);
			page(f, 400, "pages/forward", "Please enter a valid email "
			    "address.");
			return;
		}
		snprintf(f->to, sizeof(f->to), "%s", to);
		json_decref(v);
		hit_clean(f->ua, sizeof(f->ua), ua);
		/* per client address, and per message */
		form_client_key(r->client_ip, client, sizeof(client));
		snprintf(key, sizeof(key), "fw:ip:%s", client);
		if (limiter && c->track.forward_count &&
		    (!form_limiter_take(limiter, key, c->track.forward_count,
		    c->track.forward_period_ms, now_ms(), NULL) ||
		    (snprintf(key, sizeof(key), "fw:msg:%s", f->did),
		    !form_limiter_take(limiter, key, c->track.forward_count,
		    c->track.forward_period_ms, now_ms(), NULL)))) {
			evhttp_add_header(evhttp_request_get_output_headers(r->req),
			    "Retry-After", "3600");
			page(f, 429, "pages/forward", "Too many forwards for now: "
			    "try again later.");
			return;
		}
	}
	p[0] = f->did;
	p[1] = f->to;
	if (db_query(daemon_db(d), "SELECT c.name, d.lead_id, EXISTS (SELECT 1 "
	    "FROM suppressions s WHERE lower(s.email) = lower($2) AND "
	    "(s.list_id IS NULL OR s.list_id = ANY(c.list_ids))) FROM "
	    "deliveries d JOIN campaigns c ON c.id = d.campaign_id WHERE "
	    "d.id = $1 AND c.kind = 'newsletter'", 2, p, on_delivery, f) < 0) {
		httpd_reply(r, 503, "text/plain",
		    "temporarily unavailable, try again\n", 35);
		free(f);
	}
}

static void
limiter_free(void)
{
	form_limiter_free(limiter);
	limiter = NULL;
}

void
forward_routes_register(struct lc_daemon *d)
{
	static const struct httpd_route routes[] = {
		{ HTTPD_GET | HTTPD_POST, "/fw/", "forward", forward, NULL },
	};
	unsigned char key[16];

	if (track_random_key(key) == 0 && !limiter &&
	    (limiter = form_limiter_new(FW_LIMITER_SLOTS, key)) != NULL)
		atexit(limiter_free);
	if (!limiter)
		log_warn("forward: no rate limiter: forwards are not limited");
	httpd_add_routes(d->httpd, routes, sizeof(routes) / sizeof(routes[0]),
	    d);
}
