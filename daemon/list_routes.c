/*
 * list_routes - lists and subscribers:
 *   GET  /api/v1/lists                             lists with their counts
 *   POST /api/v1/lists/{list}/subscribers          subscribe one person
 *   POST /api/v1/lists/{list}/import               up to 1000 rows at once
 *   GET  /api/v1/lists/{list}/subscribers?after=&limit=&status=   export
 *   GET  /s/{token}  confirmation page;  POST /s/{token}  confirm (double
 *                                                    opt-in; a GET never does)
 * Lists are declared in the configuration and created in the database at
 * start and on reload. Every lead goes through lead_clean(); an import
 * never re-subscribes someone who unsubscribed, a person subscribing again
 * does. Confirmation emails are notifications sent by sender.c.
 */
#include "config.h"
#include "daemon.h"

#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "campaign.h"
#include "db.h"
#include "httpd.h"
#include "lead.h"
#include "log.h"
#include "tmpl.h"
#include "token.h"

#define IMPORT_MAX_ROWS 1000
#define EXPORT_MAX      5000

void
lists_sync(struct lc_daemon *d)
{
	struct buf names;
	const char *p[1];

	if (d->conf->nlists == 0)
		return;
	buf_init(&names, 0);
	for (size_t i = 0; i < d->conf->nlists; i++)
		db_array_add(&names, d->conf->lists[i].name);
	p[0] = db_array_end(&names);
	db_query(d->db, "INSERT INTO lists (name) SELECT unnest($1::text[]) "
	    "ON CONFLICT (name) DO NOTHING", 1, p, NULL, NULL);
	buf_free(&names);
}

/* ---- subscribing ------------------------------------------------------------ */

/* The upsert shared by subscribe and import: $1 rows (jsonb array of
 * cleaned leads), $2 list, $3 status for new subscriptions, $4 whether this
 * is the person's own request (may re-subscribe after an unsubscribe). */
static const char upsert_sql[] =
    "WITH r AS (SELECT * FROM jsonb_to_recordset($1::jsonb) AS r("
    "email text, phone text, first_name text, last_name text, company text, "
    "title text, country text, region text, city text, postal_code text, "
    "product text, budget numeric, timeframe text, authority text, "
    "company_size integer, industry text, language text, source text, "
    "campaign text, time_zone text, fields jsonb)), "
    "up AS (INSERT INTO leads AS l (email, phone, first_name, last_name, "
    "company, title, country, region, city, postal_code, product, budget, "
    "timeframe, authority, company_size, industry, language, source, "
    "campaign, time_zone, fields) SELECT email, phone, first_name, last_name, "
    "company, title, country, region, city, postal_code, product, budget, "
    "timeframe, authority, company_size, industry, language, source, "
    "campaign, time_zone, coalesce(fields, '{}') FROM r "
    "ON CONFLICT (lower(email)) WHERE email IS NOT NULL DO UPDATE SET "
    "phone = coalesce(EXCLUDED.phone, l.phone), "
    "first_name = coalesce(EXCLUDED.first_name, l.first_name), "
    "last_name = coalesce(EXCLUDED.last_name, l.last_name), "
    "company = coalesce(EXCLUDED.company, l.company), "
    "title = coalesce(EXCLUDED.title, l.title), "
    "country = coalesce(EXCLUDED.country, l.country), "
    "region = coalesce(EXCLUDED.region, l.region), "
    "city = coalesce(EXCLUDED.city, l.city), "
    "postal_code = coalesce(EXCLUDED.postal_code, l.postal_code), "
    "product = coalesce(EXCLUDED.product, l.product), "
    "budget = coalesce(EXCLUDED.budget, l.budget), "
    "timeframe = coalesce(EXCLUDED.timeframe, l.timeframe), "
    "authority = coalesce(EXCLUDED.authority, l.authority), "
    "company_size = coalesce(EXCLUDED.company_size, l.company_size), "
    "industry = coalesce(EXCLUDED.industry, l.industry), "
    "language = coalesce(EXCLUDED.language, l.language), "
    "source = coalesce(l.source, EXCLUDED.source), "
    "campaign = coalesce(l.campaign, EXCLUDED.campaign), "
    "time_zone = coalesce(EXCLUDED.time_zone, l.time_zone), "
    "fields = l.fields || EXCLUDED.fields, updated_at = now() "
    "RETURNING l.id, l.email, (xmax = 0) AS created), "
    "lst AS (SELECT id FROM lists WHERE name = $2), "
    "sub AS (INSERT INTO subscriptions AS s (list_id, lead_id, status, "
    "confirmed_at) SELECT lst.id, up.id, $3, CASE WHEN $3 = 'confirmed' THEN "
    "now() END FROM up, lst ON CONFLICT (list_id, lead_id) DO UPDATE SET "
    "status = CASE WHEN s.status = 'confirmed' THEN 'confirmed' "
    "WHEN s.status = 'unsubscribed' AND NOT $4::bool THEN 'unsubscribed' "
    "ELSE EXCLUDED.status END, "
    "confirmed_at = CASE WHEN s.status <> 'confirmed' AND EXCLUDED.status = "
    "'confirmed' AND (s.status <> 'unsubscribed' OR $4::bool) THEN now() "
    "ELSE s.confirmed_at END, "
    "unsubscribed_at = CASE WHEN s.status = 'unsubscribed' AND $4::bool THEN "
    "NULL ELSE s.unsubscribed_at END "
    "RETURNING s.lead_id, s.status), "
    "x AS (DELETE FROM suppressions x USING up, lst WHERE $4::bool AND "
    "lower(x.email) = lower(up.email) AND x.list_id = lst.id AND x.reason = "
    "'unsubscribe' RETURNING 1) "
    "SELECT sub.lead_id, up.email, sub.status, up.created, lst.id "
    "FROM sub JOIN up ON up.id = sub.lead_id, lst";

struct subreq {
	struct lc_daemon *d;
	struct httpd_req *r;
	char list[80];
	int single, confirm;            /* send confirmations for unconfirmed */
	json_t *errors;                 /* import: per-row problems */
	size_t rows;
	sender_action_fn *cb;           /* lists_subscribe: answer here */
	void *cbarg;
};

/* The answer to a single subscription: to its caller, or over HTTP. */
static void
subscribed(struct subreq *q, int code, json_t *doc)
{
	if (q->cb)
		q->cb(q->cbarg, code, doc);
	else
		httpd_reply_json(q->r, code, doc);
}

static void
on_notified(void *arg, int status, json_t *doc)
{
	(void)arg;
	if (status >= 300)
		log_warn("queueing confirmation emails failed (HTTP %d)", status);
	json_decref(doc);
}

/* Ask the unconfirmed rows of res to confirm, by email. */
static void
send_confirmations(struct subreq *q, const PGresult *res)
{
	const struct conf_list *l = conf_list_find(q->d->conf, q->list);
	struct buf leads, emails, vars;
	int n = 0;

	if (!l || !l->double_optin)
		return;
	buf_init(&leads, 0);
	buf_init(&emails, 0);
	buf_init(&vars, 0);
	for (int i = 0; i < PQntuples(res); i++) {
		char tok[TOKEN_MAX], url[600];
		uint64_t lead = strtoull(PQgetvalue(res, i, 0), NULL, 10);
		uint64_t list = strtoull(PQgetvalue(res, i, 4), NULL, 10);
		json_t *v;
		char *s;

		if (strcmp(PQgetvalue(res, i, 2), "unconfirmed") != 0)
			continue;
		token_sign(&q->d->url_key, 's', lead, list, tok);
		snprintf(url, sizeof(url), "%s/s/%s", q->d->conf->http.public_url,
		    tok);
		v = json_pack("{s:s, s:s, s:s}", "confirm_url", url, "list",
		    l->title, "list_name", l->name);
		s = json_dumps(v, JSON_COMPACT);
		json_decref(v);
		db_array_add(&leads, PQgetvalue(res, i, 0));
		db_array_add(&emails, PQgetvalue(res, i, 1));
		db_array_add(&vars, s);
		free(s);
		n++;
	}
	if (n)
		sender_notify(q->d->sender, l->confirm, db_array_end(&leads),
		    db_array_end(&emails), db_array_end(&vars), on_notified,
		    NULL);
	buf_free(&leads);
	buf_free(&emails);
	buf_free(&vars);
}

static void
on_upserted(void *arg, const PGresult *res, const char *err)
{
	struct subreq *q = arg;

	if (err) {
		subscribed(q, 503, json_pack("{s:{s:s}}", "error", "message",
		    err));
	} else if (q->single) {
		if (PQntuples(res) != 1) {
			subscribed(q, 500, json_pack("{s:{s:s}}", "error",
			    "message", "subscription not made"));
		} else {
			if (q->confirm)
				send_confirmations(q, res);
			subscribed(q, PQgetvalue(res, 0, 3)[0] == 't' ?
			    201 : 200, json_pack("{s:I, s:s, s:s, s:s}", "lead",
			    (json_int_t)strtoll(PQgetvalue(res, 0, 0), NULL, 10),
			    "email", PQgetvalue(res, 0, 1), "list", q->list,
			    "status", PQgetvalue(res, 0, 2)));
		}
	} else {
		long created = 0;

		for (int i = 0; i < PQntuples(res); i++)
			created += PQgetvalue(res, i, 3)[0] == 't';
		if (q->confirm)
			send_confirmations(q, res);
		httpd_reply_json(q->r, 200, json_pack("{s:I, s:I, s:I, s:o}",
		    "rows", (json_int_t)q->rows, "imported",
		    (json_int_t)PQntuples(res), "new_leads", (json_int_t)created,
		    "errors", q->errors));
		q->errors = NULL;
	}
	json_decref(q->errors);
	free(q);
}

static void
upsert(struct subreq *q, json_t *rows, const char *status, int own)
{
	char *s = json_dumps(rows, JSON_COMPACT);
	const char *p[4] = { s, q->list, status, own ? "true" : "false" };

	if (!s || db_query(q->d->db, upsert_sql, 4, p, on_upserted, q) < 0) {
		subscribed(q, 503, json_pack("{s:{s:s}}", "error", "message",
		    "the database queue is full"));
		json_decref(q->errors);
		free(q);
	}
	free(s);
}

static const char *
initial_status(const struct conf_list *l, const char *asked)
{
	if (asked && !strcmp(asked, "confirmed"))
		return "confirmed";
	if (asked && !strcmp(asked, "unconfirmed"))
		return "unconfirmed";
	return l->double_optin ? "unconfirmed" : "confirmed";
}

static void
subscribe(struct lc_daemon *d, struct httpd_req *r, const char *list)
{
	const struct conf_list *l = conf_list_find(d->conf, list);
	char field[96], msg[256];
	json_t *body, *lead, *rows;
	const char *status;
	struct subreq *q;

	if (!(body = httpd_body_json(r)))
		return;
	status = json_string_value(json_object_get(body, "status"));
	if (status && strcmp(status, "confirmed") && strcmp(status,
	    "unconfirmed")) {
		json_decref(body);
		httpd_reply_error(r, 400, "status", "confirmed or unconfirmed");
		return;
	}
	status = initial_status(l, status);     /* static strings */
	json_object_del(body, "status");
	if (!json_object_get(body, "email")) {
		json_decref(body);
		httpd_reply_error(r, 400, "email", "a subscriber needs an email "
		    "address");
		return;
	}
	if (!(lead = lead_clean(body, 0, d->conf->default_country, field,
	    sizeof(field), msg, sizeof(msg)))) {
		json_decref(body);
		httpd_reply_error(r, 400, field, msg);
		return;
	}
	json_decref(body);
	if (!json_object_get(lead, "email")) {
		json_decref(lead);
		httpd_reply_error(r, 400, "email", "a subscriber needs an email "
		    "address");
		return;
	}
	if (!(q = calloc(1, sizeof(*q)))) {
		json_decref(lead);
		httpd_reply_error(r, 503, NULL, "out of memory");
		return;
	}
	q->d = d;
	q->r = r;
	q->single = 1;
	q->confirm = !strcmp(status, "unconfirmed");
	snprintf(q->list, sizeof(q->list), "%s", list);
	if (!json_object_get(lead, "source"))
		json_object_set_new(lead, "source", json_string("subscribe"));
	rows = json_pack("[o]", lead);
	upsert(q, rows, status, 1);
	json_decref(rows);
}

int
lists_subscribe(struct lc_daemon *d, const char *list, json_t *lead,
    sender_action_fn *cb, void *arg)
{
	const struct conf_list *l = conf_list_find(d->conf, list);
	struct subreq *q;
	const char *status;
	json_t *rows;

	if (!l || !json_object_get(lead, "email") ||
	    !(q = calloc(1, sizeof(*q)))) {
		json_decref(lead);
		return -1;
	}
	status = initial_status(l, NULL);
	q->d = d;
	q->single = 1;
	q->confirm = !strcmp(status, "unconfirmed");
	q->cb = cb;
	q->cbarg = arg;
	snprintf(q->list, sizeof(q->list), "%s", list);
	rows = json_pack("[o]", lead);
	upsert(q, rows, status, 1);
	json_decref(rows);
	return 0;
}

static void
import(struct lc_daemon *d, struct httpd_req *r, const char *list)
{
	const struct conf_list *l = conf_list_find(d->conf, list);
	json_t *body, *in, *rows, *errors, *seen, *row;
	const char *status;
	struct subreq *q;
	size_t i, nrows;

	if (!(body = httpd_body_json(r)))
		return;
	in = json_object_get(body, "rows");
	status = json_string_value(json_object_get(body, "status"));
	if (!json_is_array(in) || json_array_size(in) > IMPORT_MAX_ROWS) {
		json_decref(body);
		httpd_reply_error(r, 400, "rows", "an array of at most 1000 leads");
		return;
	}
	if (status && strcmp(status, "confirmed") && strcmp(status,
	    "unconfirmed")) {
		json_decref(body);
		httpd_reply_error(r, 400, "status", "confirmed or unconfirmed");
		return;
	}
	/* imported contacts gave their consent elsewhere: confirmed unless
	 * the import says otherwise (a static string: body goes soon) */
	status = status && !strcmp(status, "unconfirmed") ? "unconfirmed" :
	    "confirmed";
	(void)l;
	rows = json_array();
	errors = json_array();
	seen = json_object();
	json_array_foreach(in, i, row) {
		char field[96], msg[256], key[300];
		json_t *lead;
		const char *e;

		if (!(lead = lead_clean(row, 0, d->conf->default_country,
		    field, sizeof(field), msg, sizeof(msg)))) {
			json_array_append_new(errors, json_pack("{s:I, s:s, s:s}",
			    "index", (json_int_t)i, "field", field, "message",
			    msg));
			continue;
		}
		if (!(e = json_string_value(json_object_get(lead, "email")))) {
			json_array_append_new(errors, json_pack("{s:I, s:s, s:s}",
			    "index", (json_int_t)i, "field", "email", "message",
			    "a subscriber needs an email address"));
			json_decref(lead);
			continue;
		}
		snprintf(key, sizeof(key), "%s", e);
		for (char *p = key; *p; p++)
			*p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
		if (json_object_get(seen, key)) {
			json_array_append_new(errors, json_pack("{s:I, s:s, s:s}",
			    "index", (json_int_t)i, "field", "email", "message",
			    "the same address appears earlier in this import"));
			json_decref(lead);
			continue;
		}
		json_object_set_new(seen, key, json_true());
		if (!json_object_get(lead, "source"))
			json_object_set_new(lead, "source", json_string("import"));
		json_array_append_new(rows, lead);
	}
	json_decref(seen);
	nrows = json_array_size(in);
	json_decref(body);              /* in goes with it */
	if (!(q = calloc(1, sizeof(*q)))) {
		json_decref(rows);
		json_decref(errors);
		httpd_reply_error(r, 503, NULL, "out of memory");
		return;
	}
	q->d = d;
	q->r = r;
	q->rows = nrows;
	q->errors = errors;
	q->confirm = !strcmp(status, "unconfirmed");
	snprintf(q->list, sizeof(q->list), "%s", list);
	upsert(q, rows, status, 0);
	json_decref(rows);
}

/* ---- export ------------------------------------------------------------------ */

struct exportreq {
	struct httpd_req *r;
	long limit;
};

static void
on_exported(void *arg, const PGresult *res, const char *err)
{
	struct exportreq *x = arg;
	json_t *a = json_array();
	long long last = 0;

	if (err) {
		httpd_reply_error(x->r, 503, NULL, err);
		json_decref(a);
		free(x);
		return;
	}
	for (int i = 0; i < PQntuples(res); i++) {
		json_t *o = json_loads(PQgetvalue(res, i, 1), 0, NULL);

		last = strtoll(PQgetvalue(res, i, 0), NULL, 10);
		if (o)
			json_array_append_new(a, o);
	}
	httpd_reply_json(x->r, 200, json_pack("{s:o, s:I}", "subscribers", a,
	    "next", (json_int_t)(PQntuples(res) == x->limit ? last : 0)));
	free(x);
}

static void
export(struct lc_daemon *d, struct httpd_req *r, const char *list)
{
	const char *after = evhttp_find_header(r->query, "after");
	const char *limit = evhttp_find_header(r->query, "limit");
	const char *status = evhttp_find_header(r->query, "status");
	char a[32], lim[32];
	const char *p[4] = { list, a, lim, status ? status : "" };
	struct exportreq *x;
	long n = limit ? atol(limit) : 1000;

	if (n < 1 || n > EXPORT_MAX) {
		httpd_reply_error(r, 400, "limit", "from 1 to 5000");
		return;
	}
	if (status && strcmp(status, "confirmed") && strcmp(status,
	    "unconfirmed") && strcmp(status, "unsubscribed")) {
		httpd_reply_error(r, 400, "status", "confirmed, unconfirmed or "
		    "unsubscribed");
		return;
	}
	snprintf(a, sizeof(a), "%lld", after ? atoll(after) : 0LL);
	snprintf(lim, sizeof(lim), "%ld", n);
	if (!(x = calloc(1, sizeof(*x)))) {
		httpd_reply_error(r, 503, NULL, "out of memory");
		return;
	}
	x->r = r;
	x->limit = n;
	if (db_query(d->db, "SELECT l.id, (jsonb_strip_nulls(to_jsonb(l) - "
	    "'score' - 'status' - 'updated_at') || jsonb_build_object("
	    "'subscription', s.status, 'subscribed_at', s.created_at))::text "
	    "FROM subscriptions s JOIN lists li ON li.id = s.list_id JOIN leads "
	    "l ON l.id = s.lead_id WHERE li.name = $1 AND l.id > $2::bigint AND "
	    "($4 = '' OR s.status = $4) ORDER BY l.id LIMIT $3::int", 4, p,
	    on_exported, x) < 0) {
		free(x);
		httpd_reply_error(r, 503, NULL, "the database queue is full");
	}
}

/* ---- routes ------------------------------------------------------------------ */

static void
list_action(struct httpd_req *r, void *arg)
{
	struct lc_daemon *d = arg;
	const char *slash = strchr(r->tail, '/');
	char list[80];
	int post = evhttp_request_get_command(r->req) == EVHTTP_REQ_POST;
	size_t n;

	if (!slash || (n = (size_t)(slash - r->tail)) == 0 || n >= sizeof(list)) {
		httpd_reply_error(r, 404, NULL, "use /api/v1/lists/LIST/"
		    "subscribers or /api/v1/lists/LIST/import");
		return;
	}
	memcpy(list, r->tail, n);
	list[n] = '\0';
	if (!conf_list_find(d->conf, list)) {
		httpd_reply_error(r, 404, "list", "no such list: declare it in "
		    "the configuration (list \"NAME\" { })");
		return;
	}
	if (!strcmp(slash + 1, "subscribers")) {
		if (post)
			subscribe(d, r, list);
		else
			export(d, r, list);
	} else if (!strcmp(slash + 1, "import") && post) {
		import(d, r, list);
	} else {
		httpd_reply_error(r, 404, NULL, "use /api/v1/lists/LIST/"
		    "subscribers or /api/v1/lists/LIST/import");
	}
}

struct lreq {
	struct lc_daemon *d;
	struct httpd_req *r;
	int post;
};

static void
on_lists(void *arg, const PGresult *res, const char *err)
{
	struct lreq *q = arg;
	json_t *a = json_array();

	if (err) {
		httpd_reply_error(q->r, 503, NULL, err);
		json_decref(a);
		free(q);
		return;
	}
	for (size_t i = 0; i < q->d->conf->nlists; i++) {
		const struct conf_list *l = &q->d->conf->lists[i];
		json_t *o = json_pack("{s:s, s:s, s:b}", "name", l->name, "title",
		    l->title, "double_optin", l->double_optin);
		json_t *counts = json_object();

		for (int row = 0; row < PQntuples(res); row++)
			if (!strcmp(PQgetvalue(res, row, 0), l->name))
				json_object_set_new(counts, PQgetvalue(res, row, 1),
				    json_integer(atoll(PQgetvalue(res, row, 2))));
		json_object_set_new(o, "subscribers", counts);
		json_array_append_new(a, o);
	}
	httpd_reply_json(q->r, 200, json_pack("{s:o}", "lists", a));
	free(q);
}

static void
lists_index(struct httpd_req *r, void *arg)
{
	struct lreq *q = calloc(1, sizeof(*q));

	if (!q) {
		httpd_reply_error(r, 503, NULL, "out of memory");
		return;
	}
	q->d = arg;
	q->r = r;
	if (db_query(q->d->db, "SELECT li.name, s.status, count(*) FROM lists li "
	    "JOIN subscriptions s ON s.list_id = li.id GROUP BY 1, 2", 0, NULL,
	    on_lists, q) < 0) {
		free(q);
		httpd_reply_error(r, 503, NULL, "the database queue is full");
	}
}

/* ---- /s/{token}: double opt-in confirmation ------------------------------------ */

static void
on_confirm(void *arg, const PGresult *res, const char *err)
{
	struct lreq *q = arg;
	const struct conf_list *l;
	const char *status;

	if (err) {
		httpd_reply(q->r, 503, "text/plain", "temporarily unavailable, "
		    "try again\n", 35);
	} else if (PQntuples(res) != 1) {
		daemon_page(q->d, q->r, 404, "pages/invalid_link", json_object());
	} else {
		l = conf_list_find(q->d->conf, PQgetvalue(res, 0, 1));
		status = PQgetvalue(res, 0, 0);
		daemon_page(q->d, q->r, 200, q->post ||
		    !strcmp(status, "confirmed") ? "pages/confirmed" :
		    "pages/confirm", json_pack("{s:s, s:s}", "list", l ? l->title :
		    PQgetvalue(res, 0, 1), "email", PQgetvalue(res, 0, 2)));
	}
	free(q);
}

static void
confirm(struct httpd_req *r, void *arg)
{
	struct lc_daemon *d = arg;
	uint64_t lead, list;
	char a[32], b[32];
	const char *p[3] = { a, b, r->client_ip };
	struct lreq *q;
	int rc;

	if (token_verify(&d->url_key, 's', r->tail, strlen(r->tail), &lead,
	    &list) < 0 || !(q = calloc(1, sizeof(*q)))) {
		daemon_page(d, r, 404, "pages/invalid_link", json_object());
		return;
	}
	q->d = d;
	q->r = r;
	q->post = evhttp_request_get_command(r->req) == EVHTTP_REQ_POST;
	snprintf(a, sizeof(a), "%llu", (unsigned long long)lead);
	snprintf(b, sizeof(b), "%llu", (unsigned long long)list);
	if (q->post)
		rc = db_query(d->db, "WITH u AS (UPDATE subscriptions SET status "
		    "= 'confirmed', confirmed_at = now() WHERE lead_id = $1 AND "
		    "list_id = $2 AND status = 'unconfirmed' RETURNING lead_id), "
		    "e AS (INSERT INTO events (type, lead_id, ip, data) SELECT "
		    "'confirm', lead_id, $3::inet, jsonb_build_object('list', $2::int)"
		    " FROM u RETURNING 1) "
		    "SELECT CASE WHEN EXISTS (SELECT 1 FROM u) THEN 'confirmed' "
		    "ELSE s.status END, li.name, l.email FROM subscriptions s JOIN "
		    "lists li ON li.id = s.list_id JOIN leads l ON l.id = s.lead_id "
		    "WHERE s.lead_id = $1 AND s.list_id = $2", 3, p, on_confirm, q);
	else
		rc = db_query(d->db, "SELECT s.status, li.name, l.email FROM "
		    "subscriptions s JOIN lists li ON li.id = s.list_id JOIN leads "
		    "l ON l.id = s.lead_id WHERE s.lead_id = $1 AND s.list_id = $2",
		    2, p, on_confirm, q);
	if (rc < 0) {
		free(q);
		httpd_reply(r, 503, "text/plain", "temporarily unavailable, try "
		    "again\n", 35);
	}
}

void
list_routes_register(struct lc_daemon *d)
{
	static const struct httpd_route routes[] = {
		{ HTTPD_GET | HTTPD_AUTH, "/api/v1/lists", "api_lists",
		  lists_index, NULL },
		{ HTTPD_GET | HTTPD_POST | HTTPD_AUTH, "/api/v1/lists/",
		  "api_list", list_action, NULL },
		{ HTTPD_GET | HTTPD_POST, "/s/", "confirm", confirm, NULL },
	};

	httpd_add_routes(d->httpd, routes, sizeof(routes) / sizeof(routes[0]),
	    d);
}
