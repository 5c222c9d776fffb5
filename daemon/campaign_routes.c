/*
 * campaign_routes - the campaign part of the admin API:
 *   GET  /api/v1/campaigns                      definitions and their state
 *   POST /api/v1/campaigns/{name}/start|pause|resume|cancel
 *   GET  /api/v1/campaigns/{name}/report        deliveries and events
 *   POST /api/v1/campaigns/{name}/test          {"to": address}: one copy now
 * The work is done by sender.c; this file maps HTTP onto it.
 */
#include "config.h"
#include "daemon.h"

#include <event2/http.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "campaign.h"
#include "db.h"
#include "httpd.h"
#include "log.h"

static void
reply_action(void *arg, int status, json_t *doc)
{
	struct httpd_req *r = arg;

	if (status == 204 || !doc) {
		httpd_reply(r, 204, NULL, NULL, 0);
		json_decref(doc);
		return;
	}
	httpd_reply_json(r, status, doc);
}

struct listing {
	struct lc_daemon *d;
	struct httpd_req *r;
};

static void
on_listing(void *arg, const PGresult *res, const char *err)
{
	struct listing *l = arg;
	const struct campaign_set *cs = l->d->conf->campaigns;
	json_t *a = json_array();

	if (err) {
		httpd_reply_error(l->r, 503, NULL, err);
		json_decref(a);
		free(l);
		return;
	}
	for (size_t i = 0; cs && i < cs->n; i++) {
		const struct campaign_def *def = cs->v[i];
		json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s}", "name",
		    def->name, "channel", def->sms ? "sms" : "email", "subject",
		    def->subject_src, "from", def->from_src, "schedule",
		    def->schedule_src);
		json_t *lists = json_array();
		const char *status = "draft";

		for (size_t k = 0; k < def->lists.n; k++)
			json_array_append_new(lists, json_string(def->lists.v[k]));
		json_object_set_new(o, "lists", lists);
		for (int row = 0; row < PQntuples(res); row++) {
			if (strcmp(PQgetvalue(res, row, 0), def->name) != 0)
				continue;
			status = PQgetvalue(res, row, 1);
			json_object_set_new(o, "deliveries", json_loads(
			    PQgetvalue(res, row, 2), 0, NULL));
		}
		json_object_set_new(o, "status", json_string(status));
		json_array_append_new(a, o);
	}
	httpd_reply_json(l->r, 200, json_pack("{s:o}", "campaigns", a));
	free(l);
}

static void
list_campaigns(struct httpd_req *r, void *arg)
{
	struct lc_daemon *d = arg;
	struct listing *l = calloc(1, sizeof(*l));

	if (!l) {
		httpd_reply_error(r, 503, NULL, "out of memory");
		return;
	}
	l->d = d;
	l->r = r;
	/* deliveries: emails, or an SMS campaign's texts, by status */
	if (db_query(d->db, "SELECT c.name, c.status, CASE WHEN c.kind = 'sms' "
	    "THEN (SELECT coalesce(jsonb_object_agg(status, n), '{}') FROM "
	    "(SELECT status, count(*) AS n FROM sms WHERE campaign_id = c.id "
	    "GROUP BY status) y) ELSE (SELECT coalesce("
	    "jsonb_object_agg(status, n), '{}') FROM (SELECT status, count(*) "
	    "AS n FROM deliveries WHERE campaign_id = c.id AND (vars IS NULL OR "
	    "NOT vars ? 'test') "
	    "GROUP BY status) x) END::text FROM campaigns c WHERE c.kind IN "
	    "('newsletter', 'sms')", 0, NULL, on_listing,
	    l) < 0) {
		free(l);
		httpd_reply_error(r, 503, NULL, "the database queue is full");
	}
}

/* /api/v1/campaigns/{name}/{action} */
static void
campaign_action(struct httpd_req *r, void *arg)
{
	struct lc_daemon *d = arg;
	char name[CAMPAIGN_NAME_MAX + 1], action[16];
	const char *slash = strchr(r->tail, '/');
	int post = evhttp_request_get_command(r->req) == EVHTTP_REQ_POST;
	size_t nlen;

	if (!slash || (nlen = (size_t)(slash - r->tail)) == 0 ||
	    nlen > CAMPAIGN_NAME_MAX || strlen(slash + 1) >= sizeof(action)) {
		httpd_reply_error(r, 404, NULL, "no such endpoint: use "
		    "/api/v1/campaigns/NAME/start|pause|resume|cancel|report|test");
		return;
	}
	memcpy(name, r->tail, nlen);
	name[nlen] = '\0';
	snprintf(action, sizeof(action), "%s", slash + 1);
	if (!strcmp(action, "report")) {
		if (post) {
			httpd_reply_error(r, 405, NULL, "use GET for the report");
			return;
		}
		sender_campaign_action(d->sender, "report", name, reply_action, r);
		return;
	}
	if (!post) {
		httpd_reply_error(r, 405, NULL, "use POST");
		return;
	}
	if (!strcmp(action, "test")) {
		json_t *body = httpd_body_json(r);
		const char *to;

		if (!body)
			return;
		to = json_string_value(json_object_get(body, "to"));
		if (!to) {
			json_decref(body);
			httpd_reply_error(r, 400, "to", "give the address to send "
			    "the test to: {\"to\": \"you@example.com\"}");
			return;
		}
		sender_send_test(d->sender, name, to, reply_action, r);
		json_decref(body);
		return;
	}
	if (strcmp(action, "start") && strcmp(action, "pause") &&
	    strcmp(action, "resume") && strcmp(action, "cancel")) {
		httpd_reply_error(r, 404, NULL, "unknown campaign action: use "
		    "start, pause, resume, cancel, report or test");
		return;
	}
	sender_campaign_action(d->sender, action, name, reply_action, r);
}

void
campaign_routes_register(struct lc_daemon *d)
{
	static const struct httpd_route routes[] = {
		{ HTTPD_GET | HTTPD_AUTH, "/api/v1/campaigns", "api_campaigns",
		  list_campaigns, NULL },
		{ HTTPD_GET | HTTPD_POST | HTTPD_AUTH, "/api/v1/campaigns/",
		  "api_campaign", campaign_action, NULL },
	};

	httpd_add_routes(d->httpd, routes, sizeof(routes) / sizeof(routes[0]),
	    d);
}
