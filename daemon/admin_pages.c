/*
 * admin_pages - the read-only reports dashboard, server-rendered HTML with
 * SVG charts drawn by lib/chart:
 *   GET /admin                      campaigns (funnel numbers, rates) with
 *                                   a form to compare some side by side
 *   GET /admin/campaign/{name}      one campaign: funnel, opens and clicks
 *                                   over time, human against machine, top
 *                                   links, recipient domains, bounces by
 *                                   class
 *   GET /admin/compare?c=A&c=B      campaigns side by side
 *   GET /admin/routing?days=N       speed to lead as a distribution per
 *                                   team and per rep, acceptance rates,
 *                                   queue depth over time
 *   GET /admin/leads?days=N         leads by source and funnel stage
 * Every table is also CSV: the same URL with ?csv=TABLE (Content-
 * Disposition: attachment; cells that a spreadsheet would take for a
 * formula are prefixed with ').
 *
 * Access: the admin token as "Authorization: Bearer TOKEN", or HTTP basic
 * auth with any user name and the admin token as password (what a
 * browser asks for), compared in constant time; else 401 with a Basic
 * challenge. GET only: nothing here changes anything. Each page is one
 * query (its parts as JSON columns) on a shared session. The measures
 * are those of `leadcast report campaigns` (track_report.c): unique
 * counts are messages with at least one such event, "human" is
 * events.class = 'human' (hits recorded before classification count for
 * neither side), test copies are left out.
 * It does not aggregate in C what SQL can, nor write anything.
 */
#include "config.h"
#include "daemon.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "buf.h"
#include "chart.h"
#include "db.h"
#include "httpd.h"
#include "log.h"
#include "token.h"

#define COMPARE_MAX     6               /* campaigns side by side */
#define NAME_MAX_LEN    200             /* bytes of a campaign name */

/* ---- access ----------------------------------------------------------------- */

/* 1 if the request carries the admin token (bearer or basic password). */
static int
admin_ok(const struct lc_daemon *d, struct httpd_req *r)
{
	const char *h = evhttp_find_header(evhttp_request_get_input_headers(
	    r->req), "Authorization");
	unsigned char dec[512];
	const char *colon;
	size_t n;
	int len;

	if (!h || !*d->admin_token)
		return 0;
	if (strncmp(h, "Bearer ", 7) == 0)
		return token_equal(h + 7, strlen(h + 7), d->admin_token,
		    strlen(d->admin_token));
	if (strncmp(h, "Basic ", 6) != 0)
		return 0;
	h += 6;
	n = strlen(h);
	if (n == 0 || n % 4 || n / 4 * 3 >= sizeof(dec))
		return 0;
	if ((len = EVP_DecodeBlock(dec, (const unsigned char *)h, (int)n)) < 0)
		return 0;
	/* EVP_DecodeBlock counts the padding as bytes */
	while (n > 0 && h[--n] == '=' && len > 0)
		len--;
	dec[len] = '\0';
	if (!(colon = memchr(dec, ':', (size_t)len)))
		return 0;
	colon++;
	return token_equal(colon, (size_t)len - (size_t)(colon - (char *)dec),
	    d->admin_token, strlen(d->admin_token));
}

/* ---- tables and CSV ------------------------------------------------------------ */

/* A table: {name, columns, rows: [[cell...]]}, cells strings or numbers. */
static json_t *
table(const char *name, json_t *columns, json_t *rows)
{
	return json_pack("{s:s, s:o, s:o}", "name", name, "columns", columns,
	    "rows", rows ? rows : json_array());
}

static void
cell_text(const json_t *v, char *out, size_t n)
{
	if (json_is_string(v))
		snprintf(out, n, "%s", json_string_value(v));
	else if (json_is_integer(v))
		snprintf(out, n, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
	else if (json_is_real(v))
		snprintf(out, n, "%.1f", json_real_value(v));
	else
		snprintf(out, n, "%s", "");
}

static void
csv_cell(struct buf *b, const char *s)
{
	int quote = strpbrk(s, ",\"\r\n") != NULL;

	if (quote)
		buf_putc(b, '"');
	/* a cell a spreadsheet would run as a formula */
	if (strchr("=+-@\t\r", *s) && *s)
		buf_putc(b, '\'');
	for (; *s; s++) {
		if (*s == '"')
			buf_putc(b, '"');
		buf_putc(b, *s);
	}
	if (quote)
		buf_putc(b, '"');
}

static void
reply_csv(struct httpd_req *r, const json_t *t)
{
	struct buf b;
	const json_t *row, *v;
	size_t i, j;
	char cell[4096], disp[160];

	buf_init(&b, 64 * 1024 * 1024);
	json_array_foreach(json_object_get(t, "columns"), i, v) {
		if (i)
			buf_putc(&b, ',');
		csv_cell(&b, json_string_value(v));
	}
	buf_puts(&b, "\r\n");
	json_array_foreach(json_object_get(t, "rows"), i, row) {
		json_array_foreach(row, j, v) {
			if (j)
				buf_putc(&b, ',');
			cell_text(v, cell, sizeof(cell));
			csv_cell(&b, cell);
		}
		buf_puts(&b, "\r\n");
	}
	snprintf(disp, sizeof(disp), "attachment; filename=\"%s.csv\"",
	    json_string_value(json_object_get(t, "name")));
	evhttp_add_header(evhttp_request_get_output_headers(r->req),
	    "Content-Disposition", disp);
	httpd_reply(r, 200, "text/csv; charset=utf-8", buf_str(&b), b.len);
	buf_free(&b);
}

/* ---- pages ------------------------------------------------------------------- */

struct page {
	struct lc_daemon *d;
	struct httpd_req *r;
	const char *title;
	const char *nav;                /* campaigns, routing, leads */
	json_t *sections;               /* [{title, svg, table, note}] */
	json_t *extra;                  /* more template data */
	char base[600];                 /* the page's path and query, no csv */
};

static struct page *
page_new(struct lc_daemon *d, struct httpd_req *r, const char *nav)
{
	struct page *p = calloc(1, sizeof(*p));

	if (!p) {
		httpd_reply_error(r, 503, NULL, "out of memory");
		return NULL;
	}
	p->d = d;
	p->r = r;
	p->nav = nav;
	p->sections = json_array();
	p->extra = json_object();
	return p;
}

static void
page_free(struct page *p)
{
	json_decref(p->sections);
	json_decref(p->extra);
	free(p);
}

/* Add a section: a chart (SVG text, may be NULL) and a table (stolen, may
 * be NULL). */
static void
section(struct page *p, const char *title, const char *svg, json_t *t,
    const char *note)
{
	json_t *s = json_pack("{s:s, s:s?, s:s?}", "title", title, "svg", svg,
	    "note", note);

	if (t)
		json_object_set_new(s, "table", t);
	json_array_append_new(p->sections, s);
}

/* The table's rows as the template shows them: [{href, first, rest}]. */
static json_t *
rows_view(const json_t *t, const char *link_prefix)
{
	json_t *out = json_array(), *row, *v;
	size_t i, j;
	char cell[4096];

	json_array_foreach(json_object_get(t, "rows"), i, row) {
		json_t *rest = json_array(), *o;

		json_array_foreach(row, j, v) {
			cell_text(v, cell, sizeof(cell));
			if (j == 0)
				continue;
			json_array_append_new(rest, json_pack("{s:s}", "v", cell));
		}
		cell_text(json_array_get(row, 0), cell, sizeof(cell));
		o = json_pack("{s:s, s:o}", "first", cell, "rest", rest);
		if (link_prefix) {
			char *enc = evhttp_uriencode(cell, -1, 0);
			char href[2048];

			snprintf(href, sizeof(href), "%s%s", link_prefix, enc ?
			    enc : "");
			free(enc);
			json_object_set_new(o, "href", json_string(href));
		}
		json_array_append_new(out, o);
	}
	return out;
}

/* Render p (or its table ?csv=NAME), then free it. */
static void
page_done(struct page *p)
{
	const char *want = p->r->query ? evhttp_find_header(p->r->query, "csv") :
	    NULL;
	json_t *s, *t;
	size_t i;

	json_array_foreach(p->sections, i, s) {
		t = json_object_get(s, "table");
		if (!t)
			continue;
		if (want && strcmp(want, json_string_value(json_object_get(t,
		    "name"))) == 0) {
			reply_csv(p->r, t);
			page_free(p);
			return;
		}
		json_object_set_new(t, "view", rows_view(t, json_string_value(
		    json_object_get(t, "link")) ? json_string_value(
		    json_object_get(t, "link")) : NULL));
		json_object_set_new(t, "csv_href", json_pack("s++", p->base,
		    strchr(p->base, '?') ? "&csv=" : "?csv=",
		    json_string_value(json_object_get(t, "name"))));
	}
	if (want) {
		httpd_reply_error(p->r, 404, "csv", "no such table on this page");
		page_free(p);
		return;
	}
	json_object_set_new(p->extra, "title", json_string(p->title));
	json_object_set(p->extra, "sections", p->sections);
	json_object_set_new(p->extra, "nav_campaigns", json_boolean(
	    strcmp(p->nav, "campaigns") == 0));
	json_object_set_new(p->extra, "nav_routing", json_boolean(
	    strcmp(p->nav, "routing") == 0));
	json_object_set_new(p->extra, "nav_leads", json_boolean(
	    strcmp(p->nav, "leads") == 0));
	evhttp_add_header(evhttp_request_get_output_headers(p->r->req),
	    "Cache-Control", "no-store");
	daemon_page(p->d, p->r, 200, "web/admin", json_incref(p->extra));
	page_free(p);
}

static int
page_query(struct page *p, const char *sql, int n, const char *const *params,
    db_result_fn *cb)
{
	if (db_query(daemon_db(p->d), sql, n, params, cb, p) < 0) {
		httpd_reply_error(p->r, 503, NULL, "the database queue is full");
		page_free(p);
		return -1;
	}
	return 0;
}

/* Series of a JSON array of rows: column col of each row as doubles. */
static double *
column(const json_t *rows, size_t col)
{
	size_t n = json_array_size(rows), i;
	double *v = calloc(n ? n : 1, sizeof(*v));
	const json_t *row;

	if (!v)
		return NULL;
	json_array_foreach(rows, i, row) {
		double x = json_number_value(json_array_get(row, col));

		v[i] = x > 0 ? x : 0;
	}
	return v;
}

/* Labels: column col of each row (strings borrowed from rows). */
static const char **
labels(const json_t *rows, size_t col)
{
	size_t n = json_array_size(rows), i;
	const char **l = calloc(n ? n : 1, sizeof(*l));
	const json_t *row;

	if (!l)
		return NULL;
	json_array_foreach(rows, i, row) {
		const char *s = json_string_value(json_array_get(row, col));

		l[i] = s ? s : "";
	}
	return l;
}

enum chart_kind { LINE, BARS, HBARS };

/*
 * A chart of rows: labels from column 0, one series per entry of cols
 * (names in names). The SVG as a new string (caller frees) or NULL.
 */
static char *
chart_of(enum chart_kind kind, const char *title, const json_t *rows,
    const size_t *cols, const char *const *names, size_t nseries,
    int percent, int height)
{
	struct chart_series series[CHART_MAX_SERIES];
	double *vals[CHART_MAX_SERIES] = { 0 };
	const char **l = labels(rows, 0);
	struct chart c = { title, NULL, l, json_array_size(rows), series,
	    nseries, 560, height, percent };
	struct buf b;
	char *svg = NULL;
	int rc = -1;

	if (!l || nseries > CHART_MAX_SERIES || json_array_size(rows) >
	    CHART_MAX_POINTS)
		goto out;
	for (size_t s = 0; s < nseries; s++) {
		if (!(vals[s] = column(rows, cols[s])))
			goto out;
		series[s].name = names[s];
		series[s].v = vals[s];
	}
	buf_init(&b, 4 * 1024 * 1024);
	rc = kind == LINE ? chart_line(&b, &c) : kind == BARS ?
	    chart_bars(&b, &c) : chart_hbars(&b, &c);
	if (rc == 0)
		svg = buf_steal(&b);
	buf_free(&b);
out:
	for (size_t s = 0; s < nseries; s++)
		free(vals[s]);
	free(l);
	return svg;
}

static json_t *
cols(const char *const *names)
{
	json_t *a = json_array();

	for (; *names; names++)
		json_array_append_new(a, json_string(*names));
	return a;
}

static json_t *
rows_at(const PGresult *res, int col)
{
	json_t *v = PQgetisnull(res, 0, col) ? NULL : json_loads(PQgetvalue(res,
	    0, col), 0, NULL);

	return json_is_array(v) ? v : (json_decref(v), json_array());
}

static double
pct(double part, double whole)
{
	return whole > 0 ? ((double)(long long)(1000.0 * part / whole + 0.5)) /
	    10.0 : 0;
}

/* ---- campaigns ------------------------------------------------------------------- */

/* Per campaign: name, kind, status, started, recipients, sent, bounced,
 * opened, opened by machines only, clicked (human), unsubscribed,
 * complaints. $1: '' for all, else a text[] of names. */
#define CAMPAIGN_ROWS_SQL \
    "SELECT c.id, json_build_array(c.name, c.kind, c.status, " \
    "coalesce(to_char(c.started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI'), " \
    "''), coalesce(d.n, 0), coalesce(d.sent, 0), coalesce(d.bounced, 0), " \
    "coalesce(e.opened, 0), coalesce(e.human_opened, 0), " \
    "coalesce(e.clicked, 0), coalesce(e.unsubs, 0), coalesce(e.complaints, " \
    "0)) AS r FROM campaigns c LEFT JOIN (SELECT campaign_id, count(*) AS n, " \
    "count(*) FILTER (WHERE status = 'sent') AS sent, count(*) FILTER " \
    "(WHERE status = 'bounced') AS bounced FROM deliveries WHERE vars IS " \
    "NULL OR NOT vars ? 'test' GROUP BY 1) d " \
    "ON d.campaign_id = c.id LEFT JOIN (SELECT campaign_id, count(DISTINCT " \
    "delivery_id) FILTER (WHERE type = 'open') AS opened, count(DISTINCT " \
    "delivery_id) FILTER (WHERE type = 'open' AND human) AS human_opened, " \
    "count(DISTINCT delivery_id) FILTER (WHERE type = 'click' AND human) " \
    "AS clicked, count(DISTINCT delivery_id) FILTER (WHERE type = " \
    "'unsubscribe') AS unsubs, count(DISTINCT delivery_id) FILTER (WHERE " \
    "type = 'complaint') AS complaints FROM (SELECT campaign_id, " \
    "delivery_id, type, ev.class = 'human' AS human FROM events ev " \
    "WHERE campaign_id IS NOT NULL) x " \
    "GROUP BY 1) e ON e.campaign_id = c.id"

static const char *const campaign_cols[] = { "Campaign", "Kind", "Status",
	"Started (UTC)", "Recipients", "Sent", "Bounced", "Opened",
	"Opened (human)", "Clicked (human)", "Unsubscribed", "Complaints",
	"Open rate %", "Click rate %", NULL };

/* Add the rates to a campaign row (sent = delivered to the server). */
static void
add_rates(json_t *row)
{
	double sent = json_number_value(json_array_get(row, 5));

	json_array_append_new(row, json_real(pct(json_number_value(
	    json_array_get(row, 8)), sent)));
	json_array_append_new(row, json_real(pct(json_number_value(
	    json_array_get(row, 9)), sent)));
}

static void
on_overview(void *arg, const PGresult *res, const char *err)
{
	struct page *p = arg;
	json_t *rows, *t, *row, *choices = json_array();

	if (err) {
		httpd_reply_error(p->r, 503, NULL, err);
		json_decref(choices);
		page_free(p);
		return;
	}
	rows = json_array();
	for (int k = 0; k < PQntuples(res); k++) {
		row = json_loads(PQgetvalue(res, k, 1), 0, NULL);
		if (!row)
			continue;
		add_rates(row);
		json_array_append_new(choices, json_pack("{s:O, s:I}", "name",
		    json_array_get(row, 0), "i", (json_int_t)k));
		json_array_append_new(rows, row);
	}
	t = table("campaigns", cols(campaign_cols), rows);
	json_object_set_new(t, "link", json_string("/admin/campaign/"));
	section(p, "Campaigns", NULL, t, json_array_size(rows) ? NULL :
	    "No campaign yet.");
	json_object_set_new(p->extra, "compare", choices);
	json_object_set_new(p->extra, "has_compare", json_boolean(
	    json_array_size(choices) > 1));
	page_done(p);
}

static void
overview(struct lc_daemon *d, struct httpd_req *r)
{
	struct page *p = page_new(d, r, "campaigns");

	if (!p)
		return;
	p->title = "Campaigns";
	snprintf(p->base, sizeof(p->base), "/admin");
	page_query(p, CAMPAIGN_ROWS_SQL " ORDER BY c.kind = 'notification', "
	    "c.id DESC LIMIT 500", 0, NULL, on_overview);
}

/* Side by side: rows are measures, columns campaigns. */
static void
on_compare(void *arg, const PGresult *res, const char *err)
{
	static const struct {
		const char *name;
		int col;                /* in a campaign row */
	} measures[] = {
		{ "Recipients", 4 }, { "Sent", 5 }, { "Bounced", 6 },
		{ "Opened", 7 }, { "Opened (human)", 8 },
		{ "Clicked (human)", 9 }, { "Unsubscribed", 10 },
		{ "Complaints", 11 }, { "Open rate %", 12 },
		{ "Click rate %", 13 },
	};
	static const char *const rate_names[] = { "Open rate", "Click rate",
		"Bounce rate", "Unsubscribe rate" };
	struct page *p = arg;
	json_t *camps = json_array(), *columns, *rows, *row, *rates;
	size_t i, n, colsel[COMPARE_MAX];
	const char *names[COMPARE_MAX];
	char *svg;

	if (err) {
		httpd_reply_error(p->r, 503, NULL, err);
		json_decref(camps);
		page_free(p);
		return;
	}
	for (int k = 0; k < PQntuples(res); k++) {
		if ((row = json_loads(PQgetvalue(res, k, 1), 0, NULL)) != NULL) {
			add_rates(row);
			json_array_append_new(camps, row);
		}
	}
	n = json_array_size(camps);
	columns = json_array();
	json_array_append_new(columns, json_string("Measure"));
	json_array_foreach(camps, i, row)
		json_array_append(columns, json_array_get(row, 0));
	rows = json_array();
	for (size_t m = 0; m < sizeof(measures) / sizeof(measures[0]); m++) {
		json_t *r = json_pack("[s]", measures[m].name);

		json_array_foreach(camps, i, row)
			json_array_append(r, json_array_get(row, measures[m].col));
		json_array_append_new(rows, r);
	}
	/* the chart: rates per campaign, grouped by measure */
	rates = json_array();
	for (size_t m = 0; m < 4; m++) {
		json_t *r = json_pack("[s]", rate_names[m]);

		json_array_foreach(camps, i, row) {
			double sent = json_number_value(json_array_get(row, 5));
			double recips = json_number_value(json_array_get(row, 4));

			json_array_append_new(r, json_real(m == 0 ?
			    json_number_value(json_array_get(row, 12)) : m == 1 ?
			    json_number_value(json_array_get(row, 13)) : m == 2 ?
			    pct(json_number_value(json_array_get(row, 6)), recips) :
			    pct(json_number_value(json_array_get(row, 10)), sent)));
		}
		json_array_append_new(rates, r);
	}
	for (i = 0; i < n && i < COMPARE_MAX; i++) {
		colsel[i] = i + 1;
		names[i] = json_string_value(json_array_get(json_array_get(camps,
		    i), 0));
	}
	svg = n ? chart_of(BARS, "Rates, % of recipients or sent", rates,
	    colsel, names, n, 1, 280) : NULL;
	section(p, "Side by side", svg, table("compare", columns, rows),
	    n ? NULL : "Choose campaigns to compare on the Campaigns page.");
	free(svg);
	json_decref(rates);
	json_decref(camps);
	page_done(p);
}

static void
compare(struct lc_daemon *d, struct httpd_req *r)
{
	struct page *p = page_new(d, r, "campaigns");
	struct evkeyval *kv;
	struct buf names, base;
	const char *param[1];
	int n = 0;

	if (!p)
		return;
	p->title = "Compare campaigns";
	buf_init(&names, 0);
	buf_init(&base, sizeof(p->base) - 1);
	buf_puts(&base, "/admin/compare");
	if (r->query) {
		TAILQ_FOREACH(kv, r->query, next) {
			char *enc;

			if (strcmp(kv->key, "c") || strlen(kv->value) >
			    NAME_MAX_LEN)
				continue;
			if (++n > COMPARE_MAX) {
				httpd_reply_error(r, 400, "c", "compare at most 6 "
				    "campaigns");
				buf_free(&names);
				buf_free(&base);
				page_free(p);
				return;
			}
			db_array_add(&names, kv->value);
			enc = evhttp_uriencode(kv->value, -1, 0);
			buf_printf(&base, "%sc=%s", n == 1 ? "?" : "&", enc ? enc :
			    "");
			free(enc);
		}
	}
	snprintf(p->base, sizeof(p->base), "%s", buf_str(&base));
	buf_free(&base);
	param[0] = db_array_end(&names);
	page_query(p, CAMPAIGN_ROWS_SQL " WHERE c.name = ANY($1::text[]) ORDER "
	    "BY array_position($1::text[], c.name)", 1, param, on_compare);
	buf_free(&names);
}

/*
 * One campaign: $1 its name. Columns: 0 the campaign row, 1 the time
 * series [label, opens, human opens, clicks, human clicks], 2 human and
 * machine [type, human, machine, scanner], 3 top links [url, clicks,
 * clickers], 4 domains [domain, recipients, sent, bounced, opened],
 * 5 bounces [class, count].
 */
static const char campaign_sql[] =
    "WITH c AS (" CAMPAIGN_ROWS_SQL " WHERE c.name = $1), "
    "ev AS (SELECT e.type, e.created_at, e.link_id, e.delivery_id, "
    "coalesce(e.class, 'unclassified') AS class FROM events e WHERE "
    "e.campaign_id = (SELECT id FROM c) AND e.type IN ('open', 'click')), "
    "span AS (SELECT coalesce((SELECT started_at FROM campaigns WHERE id = "
    "(SELECT id FROM c)), (SELECT min(created_at) FROM ev), now()) AS s), "
    "u AS (SELECT CASE WHEN coalesce((SELECT max(created_at) FROM ev), "
    "now()) - s <= interval '72 hours' THEN 'hour' ELSE 'day' END AS u, s "
    "FROM span), "
    "b AS (SELECT g AS b FROM u, generate_series(date_trunc(u.u, u.s), "
    "date_trunc(u.u, least(coalesce((SELECT max(created_at) FROM ev), "
    "u.s), u.s + interval '90 days')), ('1 ' || u.u)::interval) g) "
    "SELECT (SELECT r::text FROM c), "
    "(SELECT coalesce(json_agg(json_build_array(to_char(b.b AT TIME ZONE "
    "'UTC', CASE WHEN (SELECT u FROM u) = 'hour' THEN 'DD HH24h' ELSE "
    "'Mon DD' END), (SELECT count(*) FROM ev WHERE type = 'open' AND "
    "class = 'human' AND date_trunc((SELECT u FROM u), created_at) = b.b), "
    "(SELECT count(*) FROM ev WHERE type = 'open' AND class IN ("
    "'machine', 'scanner') AND date_trunc((SELECT u FROM u), created_at) = "
    "b.b), (SELECT count(*) "
    "FROM ev WHERE type = 'click' AND class = 'human' AND date_trunc(("
    "SELECT u FROM u), created_at) = b.b), (SELECT count(*) FROM ev WHERE "
    "type = 'click' AND class IN ('machine', 'scanner') AND date_trunc(("
    "SELECT u FROM u), created_at) = b.b)) ORDER BY b.b), "
    "'[]') FROM b)::text, "
    "(SELECT json_agg(json_build_array(t, (SELECT count(*) FROM ev WHERE "
    "type = t AND class = 'human'), (SELECT count(*) FROM ev WHERE type = "
    "t AND class = 'machine'), (SELECT count(*) FROM ev WHERE type = t AND "
    "class = 'scanner')) ORDER BY t DESC) FROM unnest(ARRAY['open', "
    "'click']) t)::text, "
    "(SELECT coalesce(json_agg(json_build_array(url, n, who) ORDER BY n "
    "DESC, url), '[]') FROM (SELECT cl.url, count(*) AS n, count(DISTINCT "
    "ev.delivery_id) AS who FROM ev JOIN campaign_links cl ON cl.id = "
    "ev.link_id WHERE ev.type = 'click' AND ev.class = 'human' GROUP BY "
    "cl.url ORDER BY n DESC LIMIT 10) x)::text, "
    "(SELECT coalesce(json_agg(json_build_array(dom, n, sent, bounced, "
    "opened) ORDER BY n DESC, dom), '[]') FROM (SELECT lower(split_part("
    "d.email, '@', 2)) AS dom, count(*) AS n, count(*) FILTER (WHERE "
    "d.status = 'sent') AS sent, count(*) FILTER (WHERE d.status = "
    "'bounced') AS bounced, count(*) FILTER (WHERE EXISTS (SELECT 1 FROM "
    "ev WHERE ev.delivery_id = d.id AND ev.type = 'open')) AS opened FROM "
    "deliveries d WHERE d.campaign_id = (SELECT id FROM c) GROUP BY 1 ORDER "
    "BY 2 DESC LIMIT 10) y)::text, "
    "(SELECT coalesce(json_agg(json_build_array(cls, n) ORDER BY n DESC), "
    "'[]') FROM (SELECT CASE WHEN smtp_status LIKE '5.1.%' THEN 'hard: bad "
    "address' WHEN smtp_status LIKE '5.2.%' THEN 'hard: mailbox full or "
    "disabled' WHEN smtp_status LIKE '5.7.%' THEN 'hard: policy or blocked' "
    "WHEN smtp_status LIKE '5.%' THEN 'hard: other' WHEN smtp_status LIKE "
    "'4.%' THEN 'soft: temporary' ELSE 'unknown' END AS cls, count(*) AS n "
    "FROM deliveries WHERE campaign_id = (SELECT id FROM c) AND (status = "
    "'bounced' OR (status = 'failed' AND smtp_status IS NOT NULL)) GROUP "
    "BY 1) z)::text";

static void
on_campaign(void *arg, const PGresult *res, const char *err)
{
	static const char *const funnel_cols[] = { "Step", "Count",
		"% of sent", NULL };
	static const char *const time_cols[] = { "Time (UTC)", "Human opens",
		"Machine opens", "Human clicks", "Machine clicks", NULL };
	static const char *const class_cols[] = { "Event", "Human", "Machine "
		"(mail proxies)", "Scanner", NULL };
	static const char *const link_cols[] = { "Link", "Clicks",
		"Recipients who clicked", NULL };
	static const char *const dom_cols[] = { "Domain", "Recipients",
		"Sent", "Bounced", "Opened", NULL };
	static const char *const bounce_cols[] = { "Class", "Messages", NULL };
	static const struct {
		const char *name;
		int col;
	} steps[] = {
		{ "Recipients", 4 }, { "Sent", 5 }, { "Bounced", 6 },
		{ "Opened", 7 }, { "Opened (human)", 8 },
		{ "Clicked (human)", 9 }, { "Unsubscribed", 10 },
		{ "Complaints", 11 },
	};
	struct page *p = arg;
	json_t *row, *funnel, *series, *classes, *links, *doms, *bounces;
	const char *title;
	char *svg;
	double sent;

	if (err || PQntuples(res) != 1 || PQgetisnull(res, 0, 0) ||
	    !(row = json_loads(PQgetvalue(res, 0, 0), 0, NULL))) {
		if (err)
			httpd_reply_error(p->r, 503, NULL, err);
		else
			httpd_reply_error(p->r, 404, "name", "no such campaign");
		page_free(p);
		return;
	}
	title = json_string_value(json_array_get(row, 0));
	json_object_set_new(p->extra, "heading", json_string(title));
	p->title = json_string_value(json_object_get(p->extra, "heading"));
	sent = json_number_value(json_array_get(row, 5));
	funnel = json_array();
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		double v = json_number_value(json_array_get(row, steps[i].col));

		json_array_append_new(funnel, steps[i].col < 6 ? json_pack(
		    "[s, I, s]", steps[i].name, (json_int_t)v, "") : json_pack(
		    "[s, I, f]", steps[i].name, (json_int_t)v, pct(v, sent)));
	}
	{
		static const size_t fc[] = { 1 };
		static const char *const fn[] = { "Recipients" };

		svg = chart_of(HBARS, "Funnel", funnel, fc, fn, 1, 0, 240);
		section(p, "Funnel", svg, table("funnel", cols(funnel_cols),
		    funnel), NULL);
		free(svg);
	}
	series = rows_at(res, 1);
	{
		static const size_t sc[] = { 1, 3, 2, 4 };
		static const char *const sn[] = { "Human opens", "Human clicks",
			"Machine opens", "Machine clicks" };

		svg = chart_of(LINE, "Opens and clicks over time", series, sc,
		    sn, 4, 0, 280);
		section(p, "Opens and clicks over time", svg, table("over_time",
		    cols(time_cols), series), NULL);
		free(svg);
	}
	classes = rows_at(res, 2);
	{
		static const size_t cc[] = { 1, 2, 3 };
		static const char *const cn[] = { "Human", "Machine",
			"Scanner" };

		svg = chart_of(BARS, "Human against machine", classes, cc, cn, 3,
		    0, 240);
		section(p, "Human against machine", svg, table("human_machine",
		    cols(class_cols), classes), "Machine: mail providers' image "
		    "proxies (Apple Mail Privacy Protection, Gmail); scanner: "
		    "security link scanners and bots. Only human events score.");
		free(svg);
	}
	links = rows_at(res, 3);
	{
		static const size_t lc[] = { 1 };
		static const char *const ln[] = { "Clicks" };

		svg = json_array_size(links) ? chart_of(HBARS, "Top links", links,
		    lc, ln, 1, 0, 60 + 28 * (int)json_array_size(links)) : NULL;
		section(p, "Top links", svg, table("links", cols(link_cols),
		    links), json_array_size(links) ? NULL : "No click yet.");
		free(svg);
	}
	doms = rows_at(res, 4);
	{
		static const size_t dc[] = { 2, 3 };
		static const char *const dn[] = { "Sent", "Bounced" };

		svg = json_array_size(doms) ? chart_of(HBARS, "Recipient domains",
		    doms, dc, dn, 2, 0, 80 + 34 * (int)json_array_size(doms)) :
		    NULL;
		section(p, "Recipient domains", svg, table("domains",
		    cols(dom_cols), doms), NULL);
		free(svg);
	}
	bounces = rows_at(res, 5);
	{
		static const size_t bc[] = { 1 };
		static const char *const bn[] = { "Messages" };

		svg = json_array_size(bounces) ? chart_of(BARS, "Bounces by class",
		    bounces, bc, bn, 1, 0, 220) : NULL;
		section(p, "Bounces by class", svg, table("bounces",
		    cols(bounce_cols), bounces), json_array_size(bounces) ? NULL :
		    "No bounce.");
		free(svg);
	}
	json_object_set_new(p->extra, "campaign", json_pack("{s:O, s:O}",
	    "kind", json_array_get(row, 1), "status", json_array_get(row, 2)));
	json_decref(row);
	page_done(p);
}

static void
campaign(struct lc_daemon *d, struct httpd_req *r, const char *name)
{
	struct page *p;
	const char *param[1] = { name };
	char *enc;

	if (!*name || strlen(name) > NAME_MAX_LEN) {
		httpd_reply_error(r, 404, "name", "no such campaign");
		return;
	}
	if (!(p = page_new(d, r, "campaigns")))
		return;
	enc = evhttp_uriencode(name, -1, 0);
	snprintf(p->base, sizeof(p->base), "/admin/campaign/%s", enc ? enc : "");
	free(enc);
	page_query(p, campaign_sql, 1, param, on_campaign);
}

/* ---- routing and leads ----------------------------------------------------------- */

/* The report's window in days (?days=N, 1..365, default 30), or -1
 * (replied). */
static int
days_param(struct httpd_req *r)
{
	const char *v = r->query ? evhttp_find_header(r->query, "days") : NULL;
	char *end;
	long n;

	if (!v)
		return 30;
	n = strtol(v, &end, 10);
	if (end == v || *end || n < 1 || n > 365) {
		httpd_reply_error(r, 400, "days", "expected a number of days, 1 "
		    "to 365");
		return -1;
	}
	return (int)n;
}

#define SPEED_BUCKETS \
    "CASE WHEN s < 60 THEN 0 WHEN s < 300 THEN 1 WHEN s < 900 THEN 2 WHEN " \
    "s < 3600 THEN 3 WHEN s < 14400 THEN 4 ELSE 5 END"
static const char *const speed_labels[] = { "< 1 min", "1-5 min",
	"5-15 min", "15-60 min", "1-4 h", "> 4 h" };

/*
 * $1 days. Columns: 0 per team [team, b0..b5], 1 per rep [rep, leads,
 * median s, p90 s, b0..b5], 2 acceptance per rep [rep, offered,
 * accepted, rejected, expired, rate], 3 queue depth [time, depth]: at
 * each hour (7 days or less) or day, and now.
 */
static const char routing_sql[] =
    "WITH s AS (SELECT coalesce(team, '(none)') AS team, owner AS rep, "
    "extract(epoch FROM assigned_at - created_at) AS s FROM leads WHERE "
    "owner IS NOT NULL AND assigned_at IS NOT NULL AND created_at > now() - "
    "$1::int * interval '1 day'), "
    "sb AS (SELECT team, rep, s, " SPEED_BUCKETS " AS b FROM s) "
    "SELECT (SELECT coalesce(json_agg(json_build_array(team, b0, b1, b2, "
    "b3, b4, b5) ORDER BY team), '[]') FROM (SELECT team, count(*) FILTER "
    "(WHERE b = 0) b0, count(*) FILTER (WHERE b = 1) b1, count(*) FILTER "
    "(WHERE b = 2) b2, count(*) FILTER (WHERE b = 3) b3, count(*) FILTER "
    "(WHERE b = 4) b4, count(*) FILTER (WHERE b = 5) b5 FROM sb GROUP BY "
    "team ORDER BY count(*) DESC LIMIT 8) t)::text, "
    "(SELECT coalesce(json_agg(json_build_array(rep, n, med, p90, b0, b1, "
    "b2, b3, b4, b5) ORDER BY rep), '[]') FROM (SELECT rep, count(*) n, "
    "round(percentile_cont(0.5) WITHIN GROUP (ORDER BY s))::bigint med, "
    "round(percentile_cont(0.9) WITHIN GROUP (ORDER BY s))::bigint p90, "
    "count(*) FILTER (WHERE b = 0) b0, count(*) FILTER (WHERE b = 1) b1, "
    "count(*) FILTER (WHERE b = 2) b2, count(*) FILTER (WHERE b = 3) b3, "
    "count(*) FILTER (WHERE b = 4) b4, count(*) FILTER (WHERE b = 5) b5 "
    "FROM sb GROUP BY rep) r)::text, "
    "(SELECT coalesce(json_agg(json_build_array(rep_id, n, acc, rej, exp, "
    "CASE WHEN acc + rej + exp > 0 THEN round(100.0 * acc / (acc + rej + "
    "exp), 1) ELSE 0 END) ORDER BY rep_id), '[]') FROM (SELECT rep_id, "
    "count(*) n, count(*) FILTER (WHERE status = 'accepted') acc, count(*) "
    "FILTER (WHERE status = 'rejected') rej, count(*) FILTER (WHERE status "
    "= 'expired') exp FROM offers WHERE created_at > now() - $1::int * "
    "interval '1 day' GROUP BY rep_id) o)::text, "
    "(SELECT coalesce(json_agg(json_build_array(to_char(h AT TIME ZONE "
    "'UTC', CASE WHEN $1::int <= 7 THEN 'Mon DD HH24:MI' ELSE 'Mon DD' "
    "END), "
    "(SELECT count(*) FROM leads l WHERE l.queued_at <= h AND (l.assigned_at "
    "IS NULL OR l.assigned_at < l.queued_at OR l.assigned_at > h) AND "
    "(l.queue IS NOT NULL OR l.assigned_at IS NOT NULL))) ORDER BY h), "
    "'[]') FROM (SELECT generate_series(date_trunc(CASE WHEN $1::int <= 7 "
    "THEN 'hour' ELSE 'day' END, now() - $1::int * interval '1 day'), "
    "now(), CASE WHEN $1::int <= 7 THEN interval '1 hour' ELSE interval "
    "'1 day' END) UNION SELECT now()) g(h))::text";

/* Seconds as the tables show them: "42 s", "3 min", "2.5 h". */
static json_t *
secs_cell(json_int_t s)
{
	char v[32];

	if (s < 60)
		snprintf(v, sizeof(v), "%" JSON_INTEGER_FORMAT " s", s);
	else if (s < 3600)
		snprintf(v, sizeof(v), "%.1f min", (double)s / 60);
	else
		snprintf(v, sizeof(v), "%.1f h", (double)s / 3600);
	return json_string(v);
}

static void
on_routing(void *arg, const PGresult *res, const char *err)
{
	static const char *const team_cols[] = { "Team", "< 1 min", "1-5 min",
		"5-15 min", "15-60 min", "1-4 h", "> 4 h", NULL };
	static const char *const rep_cols[] = { "Rep", "Leads", "Median",
		"90th percentile", "< 1 min", "1-5 min", "5-15 min", "15-60 min",
		"1-4 h", "> 4 h", NULL };
	static const char *const acc_cols[] = { "Rep", "Offers", "Accepted",
		"Passed", "Expired", "Acceptance rate %", NULL };
	static const char *const q_cols[] = { "Time (UTC)", "Leads waiting",
		NULL };
	struct page *p = arg;
	json_t *teams, *reps, *acc, *depth, *hist, *row;
	size_t i, idx[CHART_MAX_SERIES];
	const char *names[CHART_MAX_SERIES];
	char *svg;

	if (err) {
		httpd_reply_error(p->r, 503, NULL, err);
		page_free(p);
		return;
	}
	teams = rows_at(res, 0);
	/* the distribution: buckets as categories, one series per team */
	hist = json_array();
	for (size_t b = 0; b < 6; b++) {
		json_t *r = json_pack("[s]", speed_labels[b]);

		json_array_foreach(teams, i, row)
			json_array_append(r, json_array_get(row, b + 1));
		json_array_append_new(hist, r);
	}
	json_array_foreach(teams, i, row) {
		idx[i] = i + 1;
		names[i] = json_string_value(json_array_get(row, 0));
	}
	svg = json_array_size(teams) ? chart_of(BARS, "Speed to lead: leads by "
	    "time from capture to owner, per team", hist, idx, names,
	    json_array_size(teams), 0, 280) : NULL;
	section(p, "Speed to lead by team", svg, table("speed_teams",
	    cols(team_cols), teams), json_array_size(teams) ? NULL :
	    "No lead got an owner in this window.");
	free(svg);
	json_decref(hist);
	reps = rows_at(res, 1);
	json_array_foreach(reps, i, row) {
		json_array_set_new(row, 2, secs_cell(json_integer_value(
		    json_array_get(row, 2))));
		json_array_set_new(row, 3, secs_cell(json_integer_value(
		    json_array_get(row, 3))));
	}
	section(p, "Speed to lead by rep", NULL, table("speed_reps",
	    cols(rep_cols), reps), NULL);
	acc = rows_at(res, 2);
	{
		static const size_t ac[] = { 5 };
		static const char *const an[] = { "Acceptance rate" };

		svg = json_array_size(acc) ? chart_of(HBARS, "Acceptance rate by "
		    "rep", acc, ac, an, 1, 1, 60 + 28 * (int)json_array_size(acc))
		    : NULL;
		section(p, "Acceptance", svg, table("acceptance", cols(acc_cols),
		    acc), json_array_size(acc) ? NULL : "No offer in this "
		    "window.");
		free(svg);
	}
	depth = rows_at(res, 3);
	{
		static const size_t dc[] = { 1 };
		static const char *const dn[] = { "Leads waiting" };

		svg = chart_of(LINE, "Queue depth (pull and manual queues)",
		    depth, dc, dn, 1, 0, 240);
		section(p, "Queue depth over time", svg, table("queue_depth",
		    cols(q_cols), depth), NULL);
		free(svg);
	}
	page_done(p);
}

/* $1 days: [source, total, new, routing, offered, assigned, contacted,
 * qualified, won, lost, recycled] and leads per day [day, count]. */
static const char leads_sql[] =
    "SELECT (SELECT coalesce(json_agg(json_build_array(src, n, s0, s1, s2, "
    "s3, s4, s5, s6, s7, s8) ORDER BY n DESC, src), '[]') FROM (SELECT "
    "coalesce(source, '(none)') src, count(*) n, "
    "count(*) FILTER (WHERE status = 'new') s0, "
    "count(*) FILTER (WHERE status = 'routing') s1, "
    "count(*) FILTER (WHERE status = 'offered') s2, "
    "count(*) FILTER (WHERE status = 'assigned') s3, "
    "count(*) FILTER (WHERE status = 'contacted') s4, "
    "count(*) FILTER (WHERE status = 'qualified') s5, "
    "count(*) FILTER (WHERE status = 'won') s6, "
    "count(*) FILTER (WHERE status = 'lost') s7, "
    "count(*) FILTER (WHERE status = 'recycled') s8 FROM leads WHERE "
    "created_at > now() - $1::int * interval '1 day' GROUP BY 1 LIMIT 200) "
    "x)::text, "
    "(SELECT json_agg(json_build_array(to_char(d, 'Mon DD'), (SELECT "
    "count(*) FROM leads WHERE created_at >= d AND created_at < d + "
    "interval '1 day')) ORDER BY d) FROM generate_series(date_trunc('day', "
    "now() - ($1::int - 1) * interval '1 day'), now(), interval '1 day') "
    "d)::text";

static void
on_leads(void *arg, const PGresult *res, const char *err)
{
	static const char *const src_cols[] = { "Source", "Leads", "New",
		"Routing", "Offered", "Assigned", "Contacted", "Qualified", "Won",
		"Lost", "Recycled", NULL };
	static const char *const day_cols[] = { "Day (UTC)", "Leads", NULL };
	static const size_t stage_idx[] = { 3, 5, 6, 7, 8, 9 };
	static const char *const stage_names[] = { "Offered", "Assigned",
		"Contacted", "Qualified", "Won", "Lost" };
	struct page *p = arg;
	json_t *src, *days, *top;
	char *svg;

	if (err) {
		httpd_reply_error(p->r, 503, NULL, err);
		page_free(p);
		return;
	}
	days = rows_at(res, 1);
	{
		static const size_t dc[] = { 1 };
		static const char *const dn[] = { "Leads" };

		svg = chart_of(BARS, "Leads captured per day", days, dc, dn, 1, 0,
		    240);
		section(p, "Leads per day", svg, table("leads_per_day",
		    cols(day_cols), days), NULL);
		free(svg);
	}
	src = rows_at(res, 0);
	top = json_array();
	for (size_t i = 0; i < json_array_size(src) && i < 12; i++)
		json_array_append(top, json_array_get(src, i));
	svg = json_array_size(top) ? chart_of(HBARS, "Funnel stage by source",
	    top, stage_idx, stage_names, 6, 0, 80 + 20 * 6 *
	    (int)json_array_size(top) / 2) : NULL;
	section(p, "By source and funnel stage", svg, table("sources",
	    cols(src_cols), src), json_array_size(src) ? NULL : "No lead in "
	    "this window.");
	free(svg);
	json_decref(top);
	page_done(p);
}

static void
report(struct lc_daemon *d, struct httpd_req *r, int routing)
{
	struct page *p;
	char days[16];
	const char *param[1] = { days };
	int n;

	if ((n = days_param(r)) < 0 || !(p = page_new(d, r, routing ?
	    "routing" : "leads")))
		return;
	snprintf(days, sizeof(days), "%d", n);
	p->title = routing ? "Routing" : "Leads";
	snprintf(p->base, sizeof(p->base), "/admin/%s?days=%d", routing ?
	    "routing" : "leads", n);
	json_object_set_new(p->extra, "days", json_integer(n));
	json_object_set_new(p->extra, "has_days", json_true());
	page_query(p, routing ? routing_sql : leads_sql, 1, param, routing ?
	    on_routing : on_leads);
}

/* ---- the route ----------------------------------------------------------------------- */

static void
admin_route(struct httpd_req *r, void *arg)
{
	struct lc_daemon *d = arg;
	const char *path = r->path;

	if (!admin_ok(d, r)) {
		evhttp_add_header(evhttp_request_get_output_headers(r->req),
		    "WWW-Authenticate", "Basic realm=\"leadcast admin\", "
		    "charset=\"UTF-8\"");
		httpd_reply_error(r, 401, NULL, "the admin token is needed (as "
		    "a bearer token, or as the password of basic auth)");
		return;
	}
	if (strcmp(path, "/admin") == 0 || strcmp(path, "/admin/") == 0)
		overview(d, r);
	else if (strncmp(path, "/admin/campaign/", 16) == 0)
		campaign(d, r, path + 16);
	else if (strcmp(path, "/admin/compare") == 0)
		compare(d, r);
	else if (strcmp(path, "/admin/routing") == 0)
		report(d, r, 1);
	else if (strcmp(path, "/admin/leads") == 0)
		report(d, r, 0);
	else
		httpd_reply_error(r, 404, NULL, "no such report");
}

void
admin_pages_register(struct lc_daemon *d)
{
	static const struct httpd_route routes[] = {
		{ HTTPD_GET | HTTPD_HEAD, "/admin", "admin", admin_route, NULL },
		{ HTTPD_GET | HTTPD_HEAD, "/admin/", "admin", admin_route,
		  NULL },
	};

	httpd_add_routes(d->httpd, routes, sizeof(routes) / sizeof(routes[0]),
	    d);
}
