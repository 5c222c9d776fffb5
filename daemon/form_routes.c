/*
 * form_routes - public lead forms:
 *   GET  /f/{form}   the form as an HTML page (templates/pages/form); its
 *                    fields may be prefilled from the query string
 *   POST /f/{form}   a submission, urlencoded or multipart: parsed and
 *                    checked by lib/form.c, captured by leads_capture();
 *                    answered with the form's thank-you page (200) or a 303
 *                    to its fixed redirect URL, or on error the form again
 *                    with the message beside the field (400). A client
 *                    that sends Accept: application/json gets
 *                    {"ok":true[,"redirect"]} or {"error":{"field",
 *                    "message"}} instead.
 * Each POST spends a token of the form's rate limit for the client's
 * address (429 past it); a filled honeypot field gets the usual thanks and
 * nothing is stored; a form with list = NAME also subscribes the person
 * (double opt-in as the list says). Forms that name allowed_origins get
 * CORS headers for those origins and refuse posts from other sites. The
 * form definitions live in the configuration (conf->forms), so a reload
 * replaces them; a request in flight keeps the configuration it started
 * with. It does not store anything itself (leads.c and list_routes.c do).
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
#include <time.h>

#include "form.h"
#include "httpd.h"
#include "log.h"
#include "metrics.h"
#include "token.h"

#define FORM_LIMITER_SLOTS 16384        /* clients remembered, ~3 MB */
#define FORM_MAX_FIELDS    100          /* pairs or parts in one post */
#define FORM_MAX_VALUE     (16 * 1024)  /* bytes of one value */

static struct form_limiter *limiter;

struct formreq {
	struct lc_daemon *d;
	struct httpd_req *r;
	struct conf *conf;              /* a reference: def lives in it */
	const struct form_def *def;
	json_t *values;                 /* as submitted, to show them again */
	json_t *lead;                   /* a copy of what was captured */
	int json;                       /* the client wants JSON */
};

static void
count(const struct form_def *def, const char *result)
{
	char labels[160];

	metrics_labels(labels, sizeof(labels), "form", def->name, "result",
	    result, (const char *)NULL);
	metric_add(metrics_counter("leadcast_form_posts_total", "Posts to "
	    "public forms, by form and result (captured, invalid, spam, "
	    "limited, refused, error).", labels), 1);
}

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *
header(struct httpd_req *r, const char *name)
{
	return evhttp_find_header(evhttp_request_get_input_headers(r->req),
	    name);
}

static void
add_header(struct httpd_req *r, const char *name, const char *value)
{
	evhttp_add_header(evhttp_request_get_output_headers(r->req), name,
	    value);
}

/* "https://host:port/path" -> length of "https://host:port". */
static size_t
origin_len(const char *url)
{
	const char *p = strstr(url, "://");

	return p ? (size_t)(p + 3 - url) + strcspn(p + 3, "/?#") : 0;
}

/* The request's Origin is ours, or one the form allows. */
static int
origin_allowed(const struct form_def *def, const struct conf *c,
    const char *origin)
{
	size_t own = origin_len(c->http.public_url);

	if (strlen(origin) == own && strncasecmp(origin, c->http.public_url,
	    own) == 0)
		return 1;
	for (size_t i = 0; i < def->allowed_origins.n; i++)
		if (strcmp(def->allowed_origins.v[i], "*") == 0 ||
		    strcasecmp(def->allowed_origins.v[i], origin) == 0)
			return 1;
	return 0;
}

/* CORS for the origins the form names; the page's security policy: it may
 * be framed by those origins only, and post to itself (and be sent on to
 * its redirect). */
static void
page_headers(struct httpd_req *r, const struct form_def *def,
    const struct conf *c)
{
	const char *origin = header(r, "Origin");
	char csp[2048], redirect[600] = "";
	size_t n;

	if (origin && def->allowed_origins.n && origin_allowed(def, c,
	    origin)) {
		add_header(r, "Access-Control-Allow-Origin", origin);
		add_header(r, "Vary", "Origin");
	}
	if (*def->redirect && (n = origin_len(def->redirect)) < sizeof(redirect))
		snprintf(redirect, sizeof(redirect), " %.*s", (int)n,
		    def->redirect);
	n = (size_t)snprintf(csp, sizeof(csp), "default-src 'none'; style-src "
	    "'unsafe-inline'; base-uri 'none'; form-action 'self'%s; "
	    "frame-ancestors", redirect);
	if (def->allowed_origins.n == 0)
		snprintf(csp + n, sizeof(csp) - n, " 'none'");
	for (size_t i = 0; i < def->allowed_origins.n && n < sizeof(csp); i++)
		n += (size_t)snprintf(csp + n, sizeof(csp) - n, " %s",
		    def->allowed_origins.v[i]);
	if (n < sizeof(csp))
		add_header(r, "Content-Security-Policy", csp);
}

static int
wants_json(struct httpd_req *r)
{
	const char *a = header(r, "Accept");

	return a && strcasestr(a, "application/json") != NULL;
}

/* Answer an error: JSON, or the form again with the message. values and
 * err are borrowed. */
static void
reply_error(struct lc_daemon *d, struct httpd_req *r, const struct conf *c,
    const struct form_def *def, int json, const json_t *values,
    const struct form_error *err)
{
	int status = err->status ? err->status : 400;

	if (json) {
		page_headers(r, def, c);
		httpd_reply_error(r, status, *err->field ? err->field : NULL,
		    err->msg);
		return;
	}
	page_headers(r, def, c);
	daemon_page(d, r, status, def->page, form_page_data(def,
	    values, err));
}

/* Answer a success (or a bot, the same way). lead (borrowed, may be NULL)
 * is shown on the thank-you page. */
static void
reply_thanks(struct lc_daemon *d, struct httpd_req *r, const struct conf *c,
    const struct form_def *def, int json, const json_t *lead)
{
	json_t *data;

	page_headers(r, def, c);
	if (json) {
		httpd_reply_json(r, 200, *def->redirect ? json_pack("{s:b, s:s}",
		    "ok", 1, "redirect", def->redirect) : json_pack("{s:b}", "ok",
		    1));
		return;
	}
	if (*def->redirect) {
		add_header(r, "Location", def->redirect);
		httpd_reply(r, 303, "text/plain; charset=utf-8", "", 0);
		return;
	}
	data = lead ? json_deep_copy(lead) : json_object();
	json_object_set_new(data, "form", json_pack("{s:s, s:s}", "name",
	    def->name, "title", def->title));
	json_object_set_new(data, "title", json_string(def->title));
	daemon_page(d, r, 200, def->thank_you, data);
}

static void
formreq_free(struct formreq *q)
{
	json_decref(q->values);
	json_decref(q->lead);
	conf_unref(q->conf);
	free(q);
}

static void
on_subscribed(void *arg, int status, json_t *doc)
{
	char *list = arg;

	if (status >= 300)
		log_warn("form: subscribing to list %s failed (HTTP %d)", list,
		    status);
	json_decref(doc);
	free(list);
}

static void
on_captured(void *arg, int status, json_t *doc)
{
	struct formreq *q = arg;
	const struct form_def *def = q->def;

	if (status >= 200 && status < 300) {
		count(def, "captured");
		if (*def->list && json_object_get(q->lead, "email")) {
			char *list = strdup(def->list);

			if (!list || lists_subscribe(q->d, def->list,
			    json_deep_copy(q->lead), on_subscribed, list) < 0)
				free(list);
		}
		reply_thanks(q->d, q->r, q->conf, def, q->json, q->lead);
	} else {
		json_t *e = json_object_get(doc, "error");
		const char *field = json_string_value(json_object_get(e,
		    "field"));
		const char *msg = json_string_value(json_object_get(e,
		    "message"));
		const struct form_field *f = field ? form_field_for(def, field) :
		    NULL;
		struct form_error err;

		memset(&err, 0, sizeof(err));
		err.status = status;
		if (status == 400 || status == 422) {
			count(def, "invalid");
			snprintf(err.field, sizeof(err.field), "%s", f ? f->name :
			    "");
			snprintf(err.msg, sizeof(err.msg), "%s", msg ? msg :
			    "not accepted");
		} else {
			count(def, "error");
			log_warn("form %s: capture failed (HTTP %d): %s",
			    def->name, status, msg ? msg : "");
			err.status = status >= 500 ? 503 : status;
			snprintf(err.msg, sizeof(err.msg), "We could not take "
			    "your details just now. Please try again in a "
			    "minute.");
		}
		reply_error(q->d, q->r, q->conf, def, q->json, q->values, &err);
	}
	json_decref(doc);
	formreq_free(q);
}

static void
submit(struct lc_daemon *d, struct httpd_req *r, const struct form_def *def)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(r->req);
	size_t len = evbuffer_get_length(in);
	const char *body = len ? (const char *)evbuffer_pullup(in, -1) : "";
	const char *origin = header(r, "Origin");
	struct form_limits lim = { d->conf->http.max_body_size,
		FORM_MAX_FIELDS, FORM_MAX_VALUE };
	struct form_error err;
	struct formreq *q;
	json_t *values = NULL, *lead = NULL, *event;
	int json = wants_json(r), rc;
	long retry = 0;

	memset(&err, 0, sizeof(err));
	if (def->allowed_origins.n && origin && !origin_allowed(def, d->conf,
	    origin)) {
		count(def, "refused");
		err.status = 403;
		snprintf(err.msg, sizeof(err.msg), "This form does not take "
		    "posts from %.100s.", origin);
		reply_error(d, r, d->conf, def, json, NULL, &err);
		return;
	}
	if (def->rate_count && limiter) {
		char key[FORM_LIMITER_KEY_MAX], client[80];

		form_client_key(r->client_ip, client, sizeof(client));
		snprintf(key, sizeof(key), "%s|%s", def->name, client);
		if (!form_limiter_take(limiter, key, def->rate_count,
		    def->rate_period_ms, now_ms(), &retry)) {
			char secs[32];

			count(def, "limited");
			snprintf(secs, sizeof(secs), "%ld", (retry + 999) / 1000);
			add_header(r, "Retry-After", secs);
			err.status = 429;
			snprintf(err.msg, sizeof(err.msg), "Too many submissions "
			    "from your address. Please try again in %s seconds.",
			    secs);
			reply_error(d, r, d->conf, def, json, NULL, &err);
			return;
		}
	}
	if (!body || form_parse_body(header(r, "Content-Type"), body, len, &lim,
	    &values, &err) < 0) {
		count(def, "invalid");
		if (!body)
			err.status = 503;
		reply_error(d, r, d->conf, def, json, NULL, &err);
		return;
	}
	rc = form_lead(def, values, d->conf->default_country, &lead, &err);
	if (rc < 0) {
		count(def, "invalid");
		reply_error(d, r, d->conf, def, json, values, &err);
		json_decref(values);
		return;
	}
	if (rc > 0) {
		/* a bot filled the honeypot: thank it, keep nothing */
		count(def, "spam");
		log_debug("form %s: honeypot filled by %s", def->name,
		    r->client_ip);
		reply_thanks(d, r, d->conf, def, json, NULL);
		json_decref(values);
		return;
	}
	if (!(q = calloc(1, sizeof(*q))) || !(q->lead = json_deep_copy(lead))) {
		free(q);
		json_decref(lead);
		json_decref(values);
		err.status = 503;
		snprintf(err.msg, sizeof(err.msg), "out of memory");
		reply_error(d, r, d->conf, def, json, NULL, &err);
		return;
	}
	q->d = d;
	q->r = r;
	q->conf = conf_ref(d->conf);
	q->def = def;
	q->values = values;
	q->json = json;
	event = json_pack("{s:s, s:s, s:s}", "type", "form", "form", def->name,
	    "ip", r->client_ip);
	leads_capture(d, lead, event, on_captured, q);
}

static void
form_page(struct httpd_req *r, void *arg)
{
	struct lc_daemon *d = arg;
	const struct form_def *def = form_find(d->conf->forms, r->tail);
	json_t *values;

	if (!def) {
		if (wants_json(r))
			httpd_reply_error(r, 404, NULL, "no such form");
		else
			daemon_page(d, r, 404, "pages/invalid_link",
			    json_object());
		return;
	}
	if (evhttp_request_get_command(r->req) == EVHTTP_REQ_POST) {
		submit(d, r, def);
		return;
	}
	/* prefill from the query string: /f/contact?email=...&utm=... */
	values = json_object();
	for (size_t i = 0; i < def->nfields; i++) {
		const char *v = evhttp_find_header(r->query,
		    def->fields[i].name);

		if (v && strlen(v) <= 4 * (size_t)def->fields[i].max_length)
			json_object_set_new(values, def->fields[i].name,
			    json_string(v));    /* NULL (skipped) if not UTF-8 */
	}
	page_headers(r, def, d->conf);
	daemon_page(d, r, 200, def->page, form_page_data(def, values,
	    NULL));
	json_decref(values);
}

static void
limiter_free(void)
{
	form_limiter_free(limiter);
	limiter = NULL;
}

void
form_routes_register(struct lc_daemon *d)
{
	static const struct httpd_route routes[] = {
		{ HTTPD_GET | HTTPD_POST, "/f/", "form", form_page, NULL },
	};
	unsigned char key[16];
	char hex[33];

	/* the limiter's hash key: secret, so clients cannot aim collisions */
	if (token_random_hex(hex, sizeof(hex), sizeof(key)) < 0) {
		log_warn("forms: no randomness for the rate limiter's key");
		memset(hex, '0', sizeof(hex) - 1);
		hex[sizeof(hex) - 1] = '\0';
	}
	for (size_t i = 0; i < sizeof(key); i++) {
		unsigned v = 0;

		sscanf(hex + 2 * i, "%2x", &v);
		key[i] = (unsigned char)v;
	}
	if (!limiter && (limiter = form_limiter_new(FORM_LIMITER_SLOTS,
	    key)) != NULL)
		atexit(limiter_free);
	if (!limiter)
		log_warn("forms: no memory for the rate limiter");
	httpd_add_routes(d->httpd, routes, sizeof(routes) / sizeof(routes[0]),
	    d);
}
