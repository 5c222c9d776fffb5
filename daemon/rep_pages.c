/*
 * rep_pages - the sales rep's pages, server-rendered from templates/web/
 * (mobile first, plain HTML forms, no script):
 *   the lead card           GET /r/{token} (router.c verifies the token and
 *                           answers POSTs; pages_card() shows the card)
 *   GET  /rep/{token}                 the rep's page: offers waiting for an
 *                                     answer, own open leads, the pull
 *                                     queues with filters (team, text,
 *                                     minimum score), availability
 *   POST /rep/{token}/next            take the next lead of the queues
 *   POST /rep/{token}/claim/{lead}    take that lead (cherry-pick)
 *   POST /rep/{token}/availability    on=1|0: on or off duty
 *   GET|POST /rep/{token}/profile     skills, territories, products,
 *                                     languages, working hours, time zone
 * {token} is the rep's own token (kind 'p': rep number and token_gen, so
 * bumping token_gen revokes it); it authorizes that rep only, and every
 * request checks it against the database first. State changes are POSTs
 * only (the token in the path, no cookies: nothing for another site to
 * ride on); a POST answers with a 303 back to the page and a message code
 * from a fixed table (no text taken from the request is echoed), or with
 * the lead just taken, or the profile form again with its error. An
 * unknown, altered or revoked token gets a page that shows no data.
 * It does not decide anything: taking leads is leads.c's, answers and
 * profile checks are router.c's.
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

#include "buf.h"
#include "db.h"
#include "form.h"
#include "httpd.h"
#include "log.h"
#include "route.h"
#include "token.h"

#define CARD_TTL_S      (7 * 86400)     /* a lead card link works this long */
#define FILTER_MAX      100             /* bytes of the queue's text filter */
#define PROFILE_MAX     2000            /* bytes of one profile field */

/* ---- shared view helpers ------------------------------------------------------ */

/* "just now", "5 min", "3 h", "2 d" for a number of seconds. */
static void
span_text(long long s, char *out, size_t n)
{
	if (s < 60)
		snprintf(out, n, "%lld s", s < 0 ? 0 : s);
	else if (s < 3600)
		snprintf(out, n, "%lld min", s / 60);
	else if (s < 86400)
		snprintf(out, n, "%lld h %lld min", s / 3600, s % 3600 / 60);
	else
		snprintf(out, n, "%lld d", s / 86400);
}

static const char *
jstr(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

/* A lead's row as the pages show it (a new object): its fields, plus
 * name, location and the tel:/sms: form of its phone. */
static json_t *
lead_view(const json_t *lead)
{
	json_t *v = json_deep_copy(lead);
	const char *f = jstr(lead, "first_name"), *l = jstr(lead, "last_name"),
	    *e = jstr(lead, "email");
	const char *loc[3] = { jstr(lead, "city"), jstr(lead, "region"),
	    jstr(lead, "country") };
	char name[512], where[512] = "";
	size_t at = 0;

	if (!v)
		return json_object();
	snprintf(name, sizeof(name), "%s%s%s", f ? f : "", f && l ? " " : "",
	    l ? l : "");
	json_object_set_new(v, "name", json_string(*name ? name : e ? e :
	    "(no name)"));
	for (int i = 0; i < 3; i++) {
		if (!loc[i] || !*loc[i] || at >= sizeof(where) - 1)
			continue;
		at += (size_t)snprintf(where + at, sizeof(where) - at, "%s%s",
		    at ? ", " : "", loc[i]);
	}
	if (*where)
		json_object_set_new(v, "location", json_string(where));
	return v;
}

/* What an event means to a rep, or NULL for routing's own steps. */
static const char *
event_label(const char *type)
{
	static const char *const labels[][2] = {
		{ "captured", "Came in" }, { "open", "Opened an email" },
		{ "click", "Clicked a link" }, { "visit", "Visited the site" },
		{ "form", "Filled in a form" }, { "accepted", "Accepted by a rep" },
		{ "assigned", "Assigned" }, { "rejected", "Passed by a rep" },
		{ "unsubscribe", "Unsubscribed" }, { "contacted", "Contacted" },
		{ "qualified", "Qualified" }, { "won", "Won" }, { "lost", "Lost" },
		{ "sms_in", "Sent a text" }, { "reengaged", "Came back" },
		{ "merged", "Came in again" }, { "bounce", "An email bounced" },
	};

	for (size_t i = 0; i < sizeof(labels) / sizeof(labels[0]); i++)
		if (strcmp(type, labels[i][0]) == 0)
			return labels[i][1];
	return NULL;
}

/* [[type, seconds ago, campaign, url], ...] to [{label, what, ago}]. */
static json_t *
activity_view(const char *js)
{
	json_t *in = js ? json_loads(js, 0, NULL) : NULL, *out = json_array(),
	    *e;
	size_t i;

	json_array_foreach(in, i, e) {
		const char *type = json_string_value(json_array_get(e, 0));
		const char *label = type ? event_label(type) : NULL;
		const char *camp = json_string_value(json_array_get(e, 2));
		const char *url = json_string_value(json_array_get(e, 3));
		char ago[32];

		json_int_t secs = json_integer_value(json_array_get(e, 1));

		if (!label)
			continue;
		if (secs < 60)
			snprintf(ago, sizeof(ago), "just now");
		else {
			span_text(secs, ago, sizeof(ago) - 4);
			strcat(ago, " ago");
		}
		json_array_append_new(out, json_pack("{s:s, s:s?, s:s}",
		    "label", label, "what", url ? url : camp, "ago", ago));
	}
	json_decref(in);
	return out;
}

/* [{reason, points}] to [{reason, points: "+10", minus}]. */
static json_t *
reasons_view(const char *js)
{
	json_t *in = js ? json_loads(js, 0, NULL) : NULL, *out = json_array(),
	    *e;
	size_t i;

	json_array_foreach(in, i, e) {
		json_int_t p = json_integer_value(json_object_get(e, "points"));
		char pts[32];

		snprintf(pts, sizeof(pts), "%+" JSON_INTEGER_FORMAT, p);
		json_array_append_new(out, json_pack("{s:s, s:s, s:b}", "reason",
		    jstr(e, "reason") ? jstr(e, "reason") : "", "points", pts,
		    "minus", p < 0));
	}
	json_decref(in);
	return out;
}

static void
no_data_page(struct lc_daemon *d, struct httpd_req *r, int code,
    const char *why)
{
	daemon_page(d, r, code, "web/invalid", json_pack("{s:b}", why, 1));
}

/* Tokens in these pages' URLs must not leave with a Referer. */
static void
private_headers(struct httpd_req *r)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(r->req);

	evhttp_add_header(h, "Referrer-Policy", "no-referrer");
	evhttp_add_header(h, "Cache-Control", "no-store");
}

/* ---- the lead card ------------------------------------------------------------ */

struct cardreq {
	struct lc_daemon *d;
	struct httpd_req *r;
	char tok[TOKEN_MAX];
	char rep[ROUTE_NAME_MAX + 1];
	long long num;
	const char *outcome;            /* static string or NULL */
};

/* $1 the offer, $2 the link's lifetime in seconds. */
static const char card_sql[] =
    "SELECT to_jsonb(l)::text, o.status, o.rep_id, "
    "o.created_at > now() - $2::int * interval '1 second', "
    "o.deadline > now(), "
    "greatest(0, extract(epoch FROM o.deadline - now()))::bigint, "
    /* top reasons: the profile rules that hold now (the latest profile
     * row lists them, "name +N, name -M") and behavior by rule */
    "(SELECT coalesce(json_agg(json_build_object('reason', why, 'points', "
    "pts) ORDER BY abs(pts) DESC), '[]') FROM (SELECT why, pts FROM ("
    "SELECT m[1] AS why, m[2]::int AS pts FROM (SELECT reason FROM "
    "score_history WHERE lead_id = l.id AND kind = 'profile' ORDER BY id "
    "DESC LIMIT 1) h, regexp_matches(h.reason, '([^,]+?) ([+-][0-9]+)(?:, "
    "|$)', 'g') AS m UNION ALL SELECT coalesce(rule, min(reason)), "
    "sum(points)::int FROM score_history WHERE lead_id = l.id AND kind <> "
    "'profile' GROUP BY rule) u WHERE pts <> 0 ORDER BY abs(pts) DESC "
    "LIMIT 3) x)::text, "
    "(SELECT coalesce(json_agg(json_build_array(type, secs, name, url) "
    "ORDER BY id DESC), '[]') FROM (SELECT e.id, e.type, extract(epoch FROM "
    "now() - e.created_at)::bigint AS secs, c.name, cl.url FROM events e "
    "LEFT JOIN campaigns c ON c.id = e.campaign_id LEFT JOIN campaign_links "
    "cl ON cl.id = e.link_id WHERE e.lead_id = l.id AND e.type NOT IN "
    "('routed', 'offered', 'expired', 'withdrawn', 'scored', 'queued') "
    "ORDER BY e.id DESC LIMIT 6) y)::text, "
    "l.owner, o.kind, (SELECT token_gen FROM reps WHERE id = o.rep_id) "
    "FROM offers o JOIN leads l ON l.id = o.lead_id WHERE o.id = $1";

static const struct {
	const char *outcome, *message;
	int ok;
} outcomes[] = {
	{ "accepted", "Accepted: this lead is yours. Call now.", 1 },
	{ "rejected", "You passed: the lead goes to the next rep.", 1 },
	{ "already_accepted", "You had already taken this lead.", 1 },
	{ "already_rejected", "You had already passed on this lead.", 0 },
	{ "expired", "Too late: the offer's time ran out before you "
	  "answered.", 0 },
	{ "withdrawn", "Someone else took this lead first.", 0 },
	{ "error", "Something went wrong. Please try again.", 0 },
};

/* has_reasons, has_activity: whether the card shows those sections. */
static void
card_flags(json_t *data)
{
	json_object_set_new(data, "has_reasons", json_boolean(json_array_size(
	    json_object_get(data, "reasons")) > 0));
	json_object_set_new(data, "has_activity", json_boolean(
	    json_array_size(json_object_get(data, "activity")) > 0));
}

static void
on_card(void *arg, const PGresult *res, const char *err)
{
	struct cardreq *c = arg;
	const char *status, *owner, *message = NULL;
	json_t *lead, *data;
	char left[32], ptok[TOKEN_MAX];
	int open, mine, code = 200, ok = 1;

	if (err || PQntuples(res) != 1 || strcmp(PQgetvalue(res, 0, 2),
	    c->rep) || !(lead = json_loads(PQgetvalue(res, 0, 0), 0, NULL))) {
		no_data_page(c->d, c->r, err ? 503 : 404, err ? "busy" :
		    "unknown");
		free(c);
		return;
	}
	if (*PQgetvalue(res, 0, 3) != 't') {
		json_decref(lead);
		no_data_page(c->d, c->r, 404, "expired");
		free(c);
		return;
	}
	status = PQgetvalue(res, 0, 1);
	open = *PQgetvalue(res, 0, 4) == 't';
	if (strcmp(status, "pending") == 0 && !open)
		status = "expired";
	owner = PQgetisnull(res, 0, 8) ? NULL : PQgetvalue(res, 0, 8);
	mine = owner && strcmp(owner, c->rep) == 0;
	span_text(strtoll(PQgetvalue(res, 0, 5), NULL, 10), left, sizeof(left));
	for (size_t i = 0; c->outcome && i < sizeof(outcomes) /
	    sizeof(outcomes[0]); i++) {
		if (strcmp(c->outcome, outcomes[i].outcome) == 0) {
			message = outcomes[i].message;
			ok = outcomes[i].ok;
			if (!ok)
				code = strcmp(c->outcome, "error") ? 409 : 503;
		}
	}
	if (!message && owner && !mine) {
		message = "Someone else took this lead.";
		ok = 0;
	}
	token_sign(&c->d->url_key, 'p', (uint64_t)c->num, strtoull(
	    PQgetvalue(res, 0, 10), NULL, 10), ptok);
	data = json_pack("{s:o, s:s, s:s, s:s, s:b, s:b, s:b, s:b, s:b, s:o, "
	    "s:o, s:s, s:b, s:s?, s:b, s:b}",
	    "lead", lead_view(lead), "state", status, "token", c->tok,
	    "rep_token", ptok,
	    "pending", strcmp(status, "pending") == 0,
	    "mine", mine,
	    "passed", strcmp(status, "rejected") == 0,
	    "taken_by_other", owner && !mine,
	    "closed", !mine && strcmp(status, "pending") != 0 &&
	    strcmp(status, "rejected") != 0,
	    "reasons", reasons_view(PQgetvalue(res, 0, 6)),
	    "activity", activity_view(PQgetvalue(res, 0, 7)),
	    "time_left", left,
	    "urgent", strtoll(PQgetvalue(res, 0, 5), NULL, 10) < 120,
	    "message", message, "message_ok", ok,
	    "broadcast", strcmp(PQgetvalue(res, 0, 9), "broadcast") == 0);
	json_decref(lead);
	card_flags(data);
	private_headers(c->r);
	daemon_page(c->d, c->r, code, "web/card", data);
	free(c);
}

void
pages_card(struct lc_daemon *d, struct httpd_req *r, const char *tok,
    long long offer, const char *rep, long long num, const char *outcome)
{
	struct cardreq *c = calloc(1, sizeof(*c));
	char id[32], ttl[32];
	const char *p[2] = { id, ttl };

	if (!c) {
		no_data_page(d, r, 503, "busy");
		return;
	}
	c->d = d;
	c->r = r;
	c->num = num;
	c->outcome = outcome;
	snprintf(c->tok, sizeof(c->tok), "%s", tok);
	snprintf(c->rep, sizeof(c->rep), "%s", rep);
	snprintf(id, sizeof(id), "%lld", offer);
	snprintf(ttl, sizeof(ttl), "%d", CARD_TTL_S);
	if (db_query(daemon_db(d), card_sql, 2, p, on_card, c) < 0) {
		no_data_page(d, r, 503, "busy");
		free(c);
	}
}

/* ---- /rep/{token} ------------------------------------------------------------- */

enum rep_action { REP_PAGE, REP_NEXT, REP_CLAIM, REP_DUTY, REP_PROFILE,
	REP_SAVE };

struct repctx {
	struct lc_daemon *d;
	struct httpd_req *r;
	enum rep_action action;
	char tok[TOKEN_MAX];
	char rep[ROUTE_NAME_MAX + 1];
	long long num, gen;
	long long lead;                 /* claim */
	json_t *form;                   /* a POST's fields */
};

static void
rep_free(struct repctx *x)
{
	json_decref(x->form);
	free(x);
}

/* 303 to the rep's page with message code m. */
static void
back_to_page(struct repctx *x, const char *m)
{
	char loc[TOKEN_MAX + 64];

	snprintf(loc, sizeof(loc), "/rep/%s%s%s", x->tok, m ? "?m=" : "",
	    m ? m : "");
	evhttp_add_header(evhttp_request_get_output_headers(x->r->req),
	    "Location", loc);
	private_headers(x->r);
	httpd_reply(x->r, 303, "text/plain; charset=utf-8", "See the page\n",
	    13);
	rep_free(x);
}

static const struct {
	const char *code, *text;
	int ok;
} page_messages[] = {
	{ "taken", "Someone took that lead first. Pick another.", 0 },
	{ "empty", "No lead waiting that you can take right now.", 0 },
	{ "capacity", "You are at capacity: work your open leads first.", 0 },
	{ "cannot", "That lead needs skills or a territory you do not have.",
	  0 },
	{ "on", "You are available: new leads will come to you.", 1 },
	{ "off", "You are off duty: no new leads until you turn this back "
	  "on.", 1 },
	{ "saved", "Your profile is saved.", 1 },
	{ "error", "Something went wrong. Please try again.", 0 },
};

/* The rep's pull teams, as a PostgreSQL array literal in b. */
static size_t
pull_teams(const struct route_conf *rc, size_t rep, struct buf *b,
    json_t *list)
{
	size_t n = 0;

	for (size_t t = 0; t < rc->nteams; t++) {
		const struct route_team *tm = &rc->teams[t];

		if (tm->method != ROUTE_PULL)
			continue;
		for (size_t m = 0; m < tm->nmembers; m++) {
			if (tm->members[m] != rep)
				continue;
			db_array_add(b, tm->name);
			if (list)
				json_array_append_new(list, json_pack("{s:s}",
				    "name", tm->name));
			n++;
		}
	}
	db_array_end(b);
	return n;
}

/* A query parameter, bounded; "" when absent. */
static const char *
qparam(struct httpd_req *r, const char *k, size_t max)
{
	const char *v = r->query ? evhttp_find_header(r->query, k) : NULL;

	return v && strlen(v) <= max ? v : "";
}

/* $1 rep, $2 pull teams, $3 team filter, $4 text filter, $5 minimum
 * score. */
static const char page_sql[] =
    "SELECT r.on_duty, "
    "(SELECT coalesce(json_agg(json_build_array(o.id, greatest(0, "
    "extract(epoch FROM o.deadline - now()))::bigint, to_jsonb(l)) ORDER "
    "BY o.deadline), '[]') FROM offers o JOIN leads l ON l.id = o.lead_id "
    "WHERE o.rep_id = r.id AND o.status = 'pending' AND o.deadline > "
    "now())::text, "
    "(SELECT coalesce(json_agg(j ORDER BY at DESC), '[]') FROM (SELECT "
    "to_jsonb(l) AS j, coalesce(l.assigned_at, l.updated_at) AS at FROM "
    "leads l WHERE l.owner = r.id AND l.status IN ('assigned', "
    "'contacted', 'qualified') ORDER BY at DESC LIMIT 20) m)::text, "
    "(SELECT coalesce(json_agg(json_build_array(j, secs) ORDER BY pr DESC, "
    "qa, id), '[]') FROM (SELECT to_jsonb(l) AS j, l.priority AS pr, "
    "l.queued_at AS qa, l.id, extract(epoch FROM now() - "
    "l.queued_at)::bigint AS secs FROM leads l WHERE l.queue = "
    "ANY($2::text[]) AND l.owner IS NULL AND ($3 = '' OR l.queue = $3) AND "
    "l.score >= $5::int AND ($4 = '' OR strpos(lower(concat_ws(' ', "
    "l.first_name, l.last_name, l.company, l.title, l.city, l.region, "
    "l.country, l.product, l.industry, l.source)), lower($4)) > 0) "
    "ORDER BY l.priority DESC, l.queued_at, l.id LIMIT 50) q)::text, "
    "(SELECT count(*) FROM leads l WHERE l.queue = ANY($2::text[]) AND "
    "l.owner IS NULL) "
    "FROM reps r WHERE r.id = $1";

static void
on_page(void *arg, const PGresult *res, const char *err)
{
	struct repctx *x = arg;
	const struct route_conf *rc = router_conf(x->d->router);
	size_t rep = rc ? route_rep_find(rc, x->rep) : ROUTE_NONE, i;
	json_t *data, *offers, *mine, *queue, *in, *e, *teams = json_array();
	const char *m = qparam(x->r, "m", 16), *team, *q, *min;
	struct buf b;

	if (err || PQntuples(res) != 1 || rep == ROUTE_NONE) {
		json_decref(teams);
		no_data_page(x->d, x->r, err ? 503 : 404, err ? "busy" :
		    "unknown");
		rep_free(x);
		return;
	}
	buf_init(&b, 0);
	pull_teams(rc, rep, &b, teams);
	buf_free(&b);
	team = qparam(x->r, "team", ROUTE_NAME_MAX);
	json_array_foreach(teams, i, e)
		if (strcmp(jstr(e, "name"), team) == 0)
			json_object_set_new(e, "selected", json_true());
	offers = json_array();
	in = json_loads(PQgetvalue(res, 0, 1), 0, NULL);
	json_array_foreach(in, i, e) {
		char tok[TOKEN_MAX], left[32];
		json_int_t secs = json_integer_value(json_array_get(e, 1));

		token_sign(&x->d->url_key, 'r', (uint64_t)json_integer_value(
		    json_array_get(e, 0)), (uint64_t)x->num, tok);
		span_text(secs, left, sizeof(left));
		json_array_append_new(offers, json_pack("{s:o, s:s, s:s, s:b}",
		    "lead", lead_view(json_array_get(e, 2)), "card", tok,
		    "time_left", left, "urgent", secs < 120));
	}
	json_decref(in);
	mine = json_array();
	in = json_loads(PQgetvalue(res, 0, 2), 0, NULL);
	json_array_foreach(in, i, e)
		json_array_append_new(mine, json_pack("{s:o}", "lead",
		    lead_view(e)));
	json_decref(in);
	queue = json_array();
	in = json_loads(PQgetvalue(res, 0, 3), 0, NULL);
	json_array_foreach(in, i, e) {
		char ago[32];

		span_text(json_integer_value(json_array_get(e, 1)), ago,
		    sizeof(ago));
		json_array_append_new(queue, json_pack("{s:o, s:s, s:I}",
		    "lead", lead_view(json_array_get(e, 0)), "waiting", ago,
		    "id", json_integer_value(json_object_get(json_array_get(e,
		    0), "id"))));
	}
	json_decref(in);
	q = qparam(x->r, "q", FILTER_MAX);
	min = qparam(x->r, "min_score", 6);
	data = json_pack("{s:{s:s, s:s}, s:s, s:b, s:o, s:o, s:o, s:o, s:b, "
	    "s:b, s:I, s:{s:s, s:s}}",
	    "rep", "id", rc->reps[rep].id, "name", rc->reps[rep].name,
	    "token", x->tok, "on_duty", *PQgetvalue(res, 0, 0) == 't',
	    "offers", offers, "mine", mine, "queue", queue, "teams", teams,
	    "has_pull", json_array_size(teams) > 0,
	    "many_teams", json_array_size(teams) > 1,
	    "waiting", (json_int_t)strtoll(PQgetvalue(res, 0, 4), NULL, 10),
	    "filter", "q", q, "min_score", min);
	json_object_set_new(data, "filtered", json_boolean(*q || *min ||
	    *team));
	for (size_t k = 0; k < sizeof(page_messages) / sizeof(page_messages[0]);
	    k++) {
		if (strcmp(m, page_messages[k].code) == 0) {
			json_object_set_new(data, "message", json_string(
			    page_messages[k].text));
			json_object_set_new(data, "message_ok", json_boolean(
			    page_messages[k].ok));
		}
	}
	private_headers(x->r);
	daemon_page(x->d, x->r, 200, "web/queue", data);
	rep_free(x);
}

static void
show_page(struct repctx *x)
{
	const struct route_conf *rc = router_conf(x->d->router);
	const char *team = qparam(x->r, "team", ROUTE_NAME_MAX);
	const char *q = qparam(x->r, "q", FILTER_MAX);
	const char *min = qparam(x->r, "min_score", 6);
	char minv[16];
	const char *p[5];
	struct buf b;
	char *end;
	long v = strtol(min, &end, 10);

	snprintf(minv, sizeof(minv), "%ld", *min && !*end ? v : -1000000L);
	buf_init(&b, 0);
	pull_teams(rc, route_rep_find(rc, x->rep), &b, NULL);
	p[0] = x->rep;
	p[1] = buf_str(&b);
	p[2] = team;
	p[3] = q;
	p[4] = minv;
	if (db_query(daemon_db(x->d), page_sql, 5, p, on_page, x) < 0) {
		no_data_page(x->d, x->r, 503, "busy");
		rep_free(x);
	}
	buf_free(&b);
}

/* A lead just taken: its card, contact first. */
static void
on_taken(void *arg, int status, json_t *doc)
{
	struct repctx *x = arg;
	json_t *err = json_object_get(doc, "error");
	const char *field = jstr(err, "field");
	char ptok[TOKEN_MAX];

	if (status == 200) {
		snprintf(ptok, sizeof(ptok), "%s", x->tok);
		private_headers(x->r);
		daemon_page(x->d, x->r, 200, "web/card", json_pack("{s:o, s:s, "
		    "s:b, s:b, s:s, s:b, s:o, s:o}", "lead", lead_view(
		    json_object_get(doc, "lead")), "rep_token", ptok, "mine", 1,
		    "taken", 1, "message", "This lead is yours now. Call now.",
		    "message_ok", 1, "reasons", json_array(), "activity",
		    json_array()));
		json_decref(doc);
		rep_free(x);
		return;
	}
	json_decref(doc);
	back_to_page(x, status == 409 && field && strcmp(field, "rep") == 0 ?
	    "capacity" : status == 409 ? "taken" : status == 404 ? "empty" :
	    status == 403 ? "cannot" : "error");
}

static void
on_duty(void *arg, const PGresult *res, const char *err)
{
	struct repctx *x = arg;

	if (err || PQntuples(res) != 1)
		back_to_page(x, "error");
	else
		back_to_page(x, *PQgetvalue(res, 0, 1) == 't' ? "on" : "off");
}

/* The rep's profile keys: lists as comma-separated text, hours one a
 * line. */
static const struct {
	const char *key, *label, *hint;
	int lines;                      /* hours: one a line */
} profile_keys[] = {
	{ "skills", "Skills", "Comma-separated, e.g. enterprise, spanish", 0 },
	{ "territories", "Territories", "Countries or regions, e.g. US, CA", 0 },
	{ "products", "Products", "Comma-separated", 0 },
	{ "languages", "Languages", "Comma-separated, e.g. en, es", 0 },
	{ "hours", "Working hours", "One range a line, e.g. mon-fri 09:00-17:00 "
	  "(empty: any time)", 1 },
	{ "time_zone", "Time zone", "e.g. America/New_York (empty: the team's)",
	  0 },
};

static const struct conf_strlist *
rep_list(const struct route_rep *p, const char *key)
{
	return strcmp(key, "skills") == 0 ? &p->skills :
	    strcmp(key, "territories") == 0 ? &p->territories :
	    strcmp(key, "products") == 0 ? &p->products :
	    strcmp(key, "languages") == 0 ? &p->languages :
	    strcmp(key, "hours") == 0 ? &p->hours : NULL;
}

static int in_profile(const char *k);

/* The profile form: values from the form (after an error) or the rep. */
static void
profile_page(struct repctx *x, int code, const char *field, const char *msg)
{
	const struct route_conf *rc = router_conf(x->d->router);
	size_t rep = rc ? route_rep_find(rc, x->rep) : ROUTE_NONE;
	json_t *fields = json_array();
	struct buf b;

	if (rep == ROUTE_NONE) {
		json_decref(fields);
		no_data_page(x->d, x->r, 404, "unknown");
		rep_free(x);
		return;
	}
	buf_init(&b, 0);
	for (size_t i = 0; i < sizeof(profile_keys) / sizeof(profile_keys[0]);
	    i++) {
		const char *k = profile_keys[i].key, *v;
		const struct conf_strlist *l = rep_list(&rc->reps[rep], k);

		buf_reset(&b);
		if (x->form) {
			v = json_string_value(json_object_get(x->form, k));
			buf_puts(&b, v ? v : "");
		} else if (l) {
			for (size_t j = 0; j < l->n; j++)
				buf_printf(&b, "%s%s", j ? (profile_keys[i].lines ?
				    "\n" : ", ") : "", l->v[j]);
		} else {
			buf_puts(&b, rc->reps[rep].time_zone);
		}
		json_array_append_new(fields, json_pack("{s:s, s:s, s:s, s:s, "
		    "s:b, s:s?}", "name", k, "label", profile_keys[i].label,
		    "hint", profile_keys[i].hint, "value", buf_str(&b),
		    "lines", profile_keys[i].lines, "error", field &&
		    strcmp(field, k) == 0 ? msg : NULL));
	}
	buf_free(&b);
	private_headers(x->r);
	daemon_page(x->d, x->r, code, "web/profile", json_pack("{s:{s:s, s:s}, "
	    "s:s, s:o, s:s?}", "rep", "id", rc->reps[rep].id, "name",
	    rc->reps[rep].name, "token", x->tok, "fields", fields, "form_error",
	    field && !in_profile(field) ? msg : NULL));
	rep_free(x);
}

static int
in_profile(const char *k)
{
	for (size_t i = 0; i < sizeof(profile_keys) / sizeof(profile_keys[0]);
	    i++)
		if (strcmp(k, profile_keys[i].key) == 0)
			return 1;
	return 0;
}

static void
on_saved(void *arg, int code, const char *field, const char *msg)
{
	struct repctx *x = arg;
	char m[600];

	if (code < 300) {
		back_to_page(x, "saved");
		return;
	}
	/* router.c names the key (skills) or the rep's path in the routing
	 * configuration; the message is for the person who typed it */
	snprintf(m, sizeof(m), "%s", msg ? msg : "could not be saved");
	profile_page(x, code == 503 ? 503 : 400, field && in_profile(field) ?
	    field : "", m);
}

/* The profile form's fields as a change of the rep's keys. */
static json_t *
profile_change(const json_t *form, const char **bad)
{
	json_t *change = json_object();

	*bad = NULL;
	for (size_t i = 0; i < sizeof(profile_keys) / sizeof(profile_keys[0]);
	    i++) {
		const char *k = profile_keys[i].key;
		const char *v = json_string_value(json_object_get(form, k));
		json_t *list;

		if (!v || strlen(v) > PROFILE_MAX) {
			*bad = k;
			json_decref(change);
			return NULL;
		}
		if (strcmp(k, "time_zone") == 0) {
			while (*v == ' ')
				v++;
			json_object_set_new(change, k, json_stringn(v,
			    strcspn(v, " \r\n")));
			continue;
		}
		list = json_array();
		while (*v) {
			size_t n = strcspn(v, profile_keys[i].lines ? "\r\n" :
			    ",\r\n");
			const char *s = v, *e = v + n;

			while (s < e && (*s == ' ' || *s == '\t'))
				s++;
			while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
				e--;
			if (e > s)
				json_array_append_new(list, json_stringn(s,
				    (size_t)(e - s)));
			v += n;
			if (*v)
				v++;
		}
		json_object_set_new(change, k, list);
	}
	return change;
}

static void
save_profile(struct repctx *x)
{
	const char *bad;
	json_t *change = profile_change(x->form, &bad);
	int rc;

	if (!change) {
		profile_page(x, 400, bad, "missing or too long");
		return;
	}
	rc = router_change_rep(x->d->router, x->rep, change, x->num, x->gen,
	    on_saved, x);
	if (rc < 0)
		profile_page(x, 503, "", "The server is busy. Please try again.");
}

static void
on_auth(void *arg, const PGresult *res, const char *err)
{
	struct repctx *x = arg;
	const char *on;

	if (err || PQntuples(res) != 1) {
		no_data_page(x->d, x->r, err ? 503 : 404, err ? "busy" :
		    "unknown");
		rep_free(x);
		return;
	}
	switch (x->action) {
	case REP_PAGE:
		show_page(x);
		break;
	case REP_NEXT:
		leads_next_cb(x->d, x->rep, on_taken, x);
		break;
	case REP_CLAIM:
		leads_claim_cb(x->d, x->rep, x->lead, on_taken, x);
		break;
	case REP_DUTY:
		on = json_string_value(json_object_get(x->form, "on"));
		if (!on || (strcmp(on, "1") && strcmp(on, "0")))
			back_to_page(x, "error");
		else if (router_set_duty(x->d->router, x->rep, *on == '1',
		    on_duty, x) < 0)
			back_to_page(x, "error");
		break;
	case REP_PROFILE:
		profile_page(x, 200, NULL, NULL);
		break;
	case REP_SAVE:
		save_profile(x);
		break;
	}
}

/* The POST body's fields (urlencoded or multipart), or -1 (replied). */
static int
read_form(struct repctx *x)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(x->r->req);
	size_t len = evbuffer_get_length(in);
	const char *body = len ? (const char *)evbuffer_pullup(in, -1) : "";
	const char *ct = evhttp_find_header(evhttp_request_get_input_headers(
	    x->r->req), "Content-Type");
	struct form_limits lim = { 64 * 1024, 20, PROFILE_MAX + 1 };
	struct form_error fe;

	if (!len) {
		x->form = json_object();
		return 0;
	}
	if (!body || form_parse_body(ct ? ct : "", body, len, &lim, &x->form,
	    &fe) < 0) {
		httpd_reply_error(x->r, fe.status ? fe.status : 400,
		    *fe.field ? fe.field : NULL, fe.msg);
		rep_free(x);
		return -1;
	}
	return 0;
}

static void
rep_route(struct httpd_req *r, void *arg)
{
	struct lc_daemon *d = arg;
	const char *tail = r->tail, *slash = strchr(tail, '/'), *rest;
	size_t len = slash ? (size_t)(slash - tail) : strlen(tail);
	int post = evhttp_request_get_command(r->req) == EVHTTP_REQ_POST;
	uint64_t num, gen;
	const char *rep;
	struct repctx *x;
	char nums[32], gens[32];
	const char *p[3];
	enum rep_action act;
	long long lead = 0;

	rest = slash ? slash + 1 : "";
	if (!post && !*rest)
		act = REP_PAGE;
	else if (!post && strcmp(rest, "profile") == 0)
		act = REP_PROFILE;
	else if (post && strcmp(rest, "profile") == 0)
		act = REP_SAVE;
	else if (post && strcmp(rest, "next") == 0)
		act = REP_NEXT;
	else if (post && strcmp(rest, "availability") == 0)
		act = REP_DUTY;
	else if (post && strncmp(rest, "claim/", 6) == 0) {
		char *end;

		act = REP_CLAIM;
		lead = strtoll(rest + 6, &end, 10);
		if (end == rest + 6 || *end || lead <= 0)
			act = REP_PAGE, post = -1;
	} else {
		post = -1;
		act = REP_PAGE;
	}
	if (post < 0 || len >= TOKEN_MAX || !router_conf(d->router) ||
	    token_verify(&d->url_key, 'p', tail, len, &num, &gen) < 0 ||
	    !(rep = router_rep_of_num(d->router, (long long)num))) {
		no_data_page(d, r, 404, "unknown");
		return;
	}
	if (!(x = calloc(1, sizeof(*x)))) {
		no_data_page(d, r, 503, "busy");
		return;
	}
	x->d = d;
	x->r = r;
	x->action = act;
	x->num = (long long)num;
	x->gen = (long long)gen;
	x->lead = lead;
	memcpy(x->tok, tail, len);
	snprintf(x->rep, sizeof(x->rep), "%s", rep);
	if (post && read_form(x) < 0)
		return;
	snprintf(nums, sizeof(nums), "%llu", (unsigned long long)num);
	snprintf(gens, sizeof(gens), "%llu", (unsigned long long)gen);
	p[0] = x->rep;
	p[1] = nums;
	p[2] = gens;
	if (db_query(daemon_db(d), "SELECT 1 FROM reps WHERE id = $1 AND num = "
	    "$2::bigint AND token_gen = $3::int", 3, p, on_auth, x) < 0) {
		no_data_page(d, r, 503, "busy");
		rep_free(x);
	}
}

void
rep_pages_register(struct lc_daemon *d)
{
	static const struct httpd_route routes[] = {
		{ HTTPD_GET | HTTPD_POST, "/rep/", "rep_page", rep_route, NULL },
	};

	httpd_add_routes(d->httpd, routes, sizeof(routes) / sizeof(routes[0]),
	    d);
}
