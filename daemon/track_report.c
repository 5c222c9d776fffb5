/*
 * track_report - GET /api/v1/reports/campaigns: what came back from
 * campaigns, per campaign and side by side, and their total over a period.
 *
 *   ?campaigns=A,B,C   these campaigns (at most 20), in this order; without
 *                      it, every newsletter with messages sent in the period
 *   ?since=, ?until=   the period (ISO 8601), default the last 30 days:
 *                      messages sent and events recorded within it
 *
 * Per campaign: recipients, sent, bounced, failed; opens (total and unique,
 * human and machine), clicks (total and unique, human), the click-to-open
 * rate (unique human clickers over unique human openers), unsubscribes,
 * complaints, forwards (sent with the form) and probable forwards (opened
 * from clearly different clients and networks), scanner hits; clicks per
 * link; and all of it per recipient domain (the 50 largest). "total" sums
 * the campaigns. Unique counts are messages with at least one such event.
 * Everything is computed by one statement on the server, read-only.
 * It does not format text or CSV (the CLI's cli_report.c does).
 */
#include "config.h"
#include "daemon.h"
#include "track.h"

#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "cond.h"
#include "db.h"
#include "httpd.h"

#define REPORT_DAYS      30
#define REPORT_CAMPAIGNS 20
#define REPORT_DOMAINS   50

/*
 * $1 campaign names (text[]) or NULL, $2 since, $3 until (epoch seconds),
 * $4 domains per campaign. One row: the JSON document.
 */
static const char report_sql[] =
    "WITH c AS (SELECT c.id, c.name, coalesce(array_position($1::text[], "
    "c.name), 0) AS pos FROM campaigns c WHERE CASE WHEN $1::text[] IS NULL "
    "THEN c.kind = 'newsletter' AND EXISTS (SELECT 1 FROM deliveries d "
    "WHERE d.campaign_id = c.id AND d.sent_at >= to_timestamp($2::bigint) "
    "AND d.sent_at < to_timestamp($3::bigint)) ELSE c.name = ANY($1) END), "
    "d AS (SELECT d.id, d.campaign_id, lower(split_part(d.email, '@', 2)) "
    "AS domain, d.status FROM deliveries d JOIN c ON c.id = d.campaign_id "
    "WHERE (d.vars IS NULL OR NOT d.vars ? 'test') AND ($1::text[] IS NOT "
    "NULL OR d.sent_at IS NULL OR (d.sent_at >= to_timestamp($2::bigint) AND "
    "d.sent_at < to_timestamp($3::bigint)))), "
    "e AS (SELECT e.delivery_id, "
    "count(*) FILTER (WHERE e.type = 'open') AS opens, "
    "count(*) FILTER (WHERE e.type = 'open' AND e.class = 'human') AS hopens, "
    "count(*) FILTER (WHERE e.type = 'open' AND e.class = 'machine') AS "
    "mopens, "
    "count(*) FILTER (WHERE e.type = 'click') AS clicks, "
    "count(*) FILTER (WHERE e.type = 'click' AND e.class = 'human') AS "
    "hclicks, "
    "count(*) FILTER (WHERE e.class = 'scanner') AS scans, "
    "count(*) FILTER (WHERE e.type = 'unsubscribe') AS unsubs, "
    "count(*) FILTER (WHERE e.type = 'complaint') AS complaints, "
    "count(*) FILTER (WHERE e.type = 'forward') AS forwards, "
    /* opens from two /16s (or /32s of IPv6) with two different agents */
    "CASE WHEN count(DISTINCT set_masklen(e.ip, CASE WHEN family(e.ip) = 4 "
    "THEN 16 ELSE 32 END)::cidr) FILTER (WHERE e.type = 'open' AND e.class = "
    "'human') > 1 AND count(DISTINCT e.user_agent) FILTER (WHERE e.type = "
    "'open' AND e.class = 'human') > 1 THEN 1 ELSE 0 END AS probable "
    "FROM events e WHERE e.delivery_id IN (SELECT id FROM d) AND "
    "e.created_at >= to_timestamp($2::bigint) AND e.created_at < "
    "to_timestamp($3::bigint) GROUP BY 1), "
    "m AS (SELECT d.campaign_id, d.domain, d.status, coalesce(e.opens, 0) AS "
    "opens, coalesce(e.hopens, 0) AS hopens, coalesce(e.mopens, 0) AS mopens,"
    " coalesce(e.clicks, 0) AS clicks, coalesce(e.hclicks, 0) AS hclicks, "
    "coalesce(e.scans, 0) AS scans, coalesce(e.unsubs, 0) AS unsubs, "
    "coalesce(e.complaints, 0) AS complaints, coalesce(e.forwards, 0) AS "
    "forwards, coalesce(e.probable, 0) AS probable FROM d LEFT JOIN e ON "
    "e.delivery_id = d.id), "
    "g AS (SELECT campaign_id, domain, grouping(campaign_id, domain) AS lvl, "
    "jsonb_build_object("
    "'recipients', count(*), "
    "'sent', count(*) FILTER (WHERE status IN ('sent', 'bounced')), "
    "'bounced', count(*) FILTER (WHERE status = 'bounced'), "
    "'failed', count(*) FILTER (WHERE status = 'failed'), "
    "'opens', sum(opens), 'unique_opens', count(*) FILTER (WHERE opens > 0), "
    "'human_opens', sum(hopens), 'unique_human_opens', count(*) FILTER "
    "(WHERE hopens > 0), "
    "'machine_opens', sum(mopens), 'unique_machine_opens', count(*) FILTER "
    "(WHERE mopens > 0), "
    "'clicks', sum(clicks), 'unique_clicks', count(*) FILTER (WHERE clicks > "
    "0), 'human_clicks', sum(hclicks), 'unique_human_clicks', count(*) "
    "FILTER (WHERE hclicks > 0), "
    "'click_to_open', round(count(*) FILTER (WHERE hclicks > 0)::numeric / "
    "nullif(count(*) FILTER (WHERE hopens > 0), 0), 4), "
    "'scanner_hits', sum(scans), "
    "'unsubscribes', count(*) FILTER (WHERE unsubs > 0), "
    "'complaints', count(*) FILTER (WHERE complaints > 0), "
    "'forwards', sum(forwards), 'probable_forwards', sum(probable)) AS j "
    "FROM m GROUP BY GROUPING SETS ((campaign_id), (campaign_id, domain), "
    "())), "
    "l AS (SELECT l.campaign_id, jsonb_agg(jsonb_build_object('url', l.url, "
    "'tag', l.tag, 'clicks', coalesce(k.n, 0), 'human_clicks', "
    "coalesce(k.h, 0), 'unique_human_clicks', coalesce(k.u, 0)) ORDER BY "
    "coalesce(k.h, 0) DESC, l.id) AS links FROM campaign_links l JOIN c ON "
    "c.id = l.campaign_id LEFT JOIN (SELECT e.link_id, count(*) AS n, "
    "count(*) FILTER (WHERE e.class = 'human') AS h, count(DISTINCT "
    "e.delivery_id) FILTER (WHERE e.class = 'human') AS u FROM events e "
    "WHERE e.type = 'click' AND e.delivery_id IN (SELECT id FROM d) AND "
    "e.created_at >= to_timestamp($2::bigint) AND e.created_at < "
    "to_timestamp($3::bigint) GROUP BY 1) k ON k.link_id = l.id GROUP BY 1) "
    "SELECT jsonb_build_object("
    "'campaigns', coalesce((SELECT jsonb_agg(jsonb_build_object('name', "
    "c.name) || coalesce((SELECT g.j FROM g WHERE g.lvl = 1 AND "
    "g.campaign_id = c.id), '{}') || jsonb_build_object('links', "
    "coalesce((SELECT l.links FROM l WHERE l.campaign_id = c.id), '[]'), "
    "'domains', coalesce((SELECT jsonb_agg(jsonb_build_object('domain', "
    "x.domain) || x.j ORDER BY (x.j->>'recipients')::bigint DESC, x.domain) "
    "FROM (SELECT * FROM g WHERE g.lvl = 0 AND g.campaign_id = c.id ORDER BY "
    "(g.j->>'recipients')::bigint DESC, g.domain LIMIT $4::int) x), '[]')) "
    "ORDER BY c.pos, c.name) FROM c), '[]'), "
    "'total', coalesce((SELECT g.j FROM g WHERE g.lvl = 3), '{}'))::text";

struct repq {
	struct httpd_req *r;
	time_t since, until;
	json_t *names;                  /* asked for, or NULL */
};

static void
iso(time_t t, char *out, size_t n)
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void
on_report(void *arg, const PGresult *res, const char *err)
{
	struct repq *q = arg;
	json_t *doc;
	char s[32], u[32];

	if (err || PQntuples(res) != 1 ||
	    !(doc = json_loads(PQgetvalue(res, 0, 0), 0, NULL))) {
		httpd_reply_error(q->r, 503, NULL, err ? err : "bad report");
		json_decref(q->names);
		free(q);
		return;
	}
	/* a campaign asked for that does not exist: say so */
	if (q->names) {
		json_t *cps = json_object_get(doc, "campaigns"), *name;
		size_t i;

		json_array_foreach(q->names, i, name) {
			size_t k;
			json_t *cp;
			int found = 0;

			json_array_foreach(cps, k, cp)
				if (json_equal(json_object_get(cp, "name"), name))
					found = 1;
			if (!found) {
				char msg[300];

				snprintf(msg, sizeof(msg), "no campaign '%s'",
				    json_string_value(name));
				httpd_reply_error(q->r, 404, "campaigns", msg);
				json_decref(doc);
				json_decref(q->names);
				free(q);
				return;
			}
		}
	}
	iso(q->since, s, sizeof(s));
	iso(q->until, u, sizeof(u));
	json_object_set_new(doc, "since", json_string(s));
	json_object_set_new(doc, "until", json_string(u));
	httpd_reply_json(q->r, 200, doc);
	json_decref(q->names);
	free(q);
}

/* "A,B,C" -> a JSON array of names, or NULL after replying 400. */
static json_t *
parse_names(struct httpd_req *r, const char *s)
{
	json_t *a = json_array();
	const char *p = s;

	while (a && *p) {
		size_t n = strcspn(p, ",");

		if (n == 0 || n > 128 || json_array_size(a) >= REPORT_CAMPAIGNS) {
			httpd_reply_error(r, 400, "campaigns", "up to 20 campaign "
			    "names separated by commas");
			json_decref(a);
			return NULL;
		}
		json_array_append_new(a, json_stringn(p, n));
		p += n;
		if (*p == ',')
			p++;
	}
	return a;
}

static void
report(struct httpd_req *r, void *arg)
{
	struct lc_daemon *d = arg;
	const char *since = evhttp_find_header(r->query, "since");
	const char *until = evhttp_find_header(r->query, "until");
	const char *names = evhttp_find_header(r->query, "campaigns");
	struct repq *q;
	char a[32], b[32], lim[16];
	struct buf arr;
	const char *p[4];

	if (!(q = calloc(1, sizeof(*q)))) {
		httpd_reply_error(r, 503, NULL, "out of memory");
		return;
	}
	q->r = r;
	q->until = time(NULL) + 1;
	q->since = q->until - REPORT_DAYS * 86400;
	if ((since && cond_parse_time(since, &q->since) < 0) ||
	    (until && cond_parse_time(until, &q->until) < 0)) {
		httpd_reply_error(r, 400, since && cond_parse_time(since,
		    &q->since) < 0 ? "since" : "until", "an ISO 8601 time such "
		    "as 2024-05-01 or 2024-05-01T09:30:00Z");
		free(q);
		return;
	}
	if (q->until <= q->since) {
		httpd_reply_error(r, 400, "until", "must be after since");
		free(q);
		return;
	}
	if (names && *names && !(q->names = parse_names(r, names))) {
		free(q);
		return;
	}
	buf_init(&arr, 0);
	if (q->names) {
		size_t i;
		json_t *n;

		json_array_foreach(q->names, i, n)
			db_array_add(&arr, json_string_value(n));
	}
	snprintf(a, sizeof(a), "%lld", (long long)q->since);
	snprintf(b, sizeof(b), "%lld", (long long)q->until);
	snprintf(lim, sizeof(lim), "%d", REPORT_DOMAINS);
	p[0] = q->names ? db_array_end(&arr) : NULL;
	p[1] = a;
	p[2] = b;
	p[3] = lim;
	if (db_query(daemon_db(d), report_sql, 4, p, on_report, q) < 0) {
		httpd_reply_error(r, 503, NULL, "the database queue is full");
		json_decref(q->names);
		free(q);
	}
	buf_free(&arr);
}

void
track_report_register(struct lc_daemon *d)
{
	static const struct httpd_route routes[] = {
		{ HTTPD_GET | HTTPD_AUTH, "/api/v1/reports/campaigns",
		  "report_campaigns", report, NULL },
	};

	httpd_add_routes(d->httpd, routes, sizeof(routes) / sizeof(routes[0]),
	    d);
}
