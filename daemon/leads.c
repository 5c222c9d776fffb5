/*
 * leads - capture and the lead API:
 *   POST /api/v1/leads                  capture one lead (201 new, 200 merged)
 *   POST /api/v1/leads/import           up to 1000 leads with a source
 *   GET  /api/v1/leads?status=&owner=&team=&source=&after=&limit=
 *   GET  /api/v1/leads/{id}             the lead, events, offers, score history
 *   POST /api/v1/leads/{id}/assign      {"rep", "note"?}: by a lead admin
 *   POST /api/v1/leads/{id}/status      {"status", "note"?}: the funnel
 *   POST /api/v1/leads/{id}/claim       {"rep"}: take a lead from a queue
 *   POST /api/v1/events                 a behavior event, scored
 *   GET  /api/v1/queue?team=T           the leads waiting in T's queue
 *   GET  /api/v1/reports/routing?since= offers, acceptance, speed to lead
 * and leads_next() for router.c's POST /api/v1/reps/{id}/next.
 *
 * Capture: the lead went through lead_clean() (phone in E.164) and is
 * scored before it is stored (capture.c decides the history rows), then
 * leadcast_capture() (003_routing.sql) inserts it or merges it into the
 * lead with the same email or phone. A merged lead is rescored from its
 * stored history in one statement that also puts it in routing when it
 * was captured before routing and nobody owns it. Thresholds crossed
 * route an unowned lead to their team, or tell the owner.
 *
 * Rescoring reads a lead and its history, computes, and writes only if
 * the lead did not change meanwhile (its updated_at, checked under the
 * row lock): otherwise it reads again, so two events scored at once never
 * both take a "once" rule's points.
 *
 * Pull queues: a lead waits in a queue when leads.queue names a team. A
 * claim is one UPDATE that takes the lead only while it is still in that
 * queue with no owner, so two reps pulling at once never get the same
 * lead; the loser tries the next candidate.
 *
 * Everything runs on the loop thread with db_query; every statement is
 * parameterized. It does not route (router.c decides offers and queues)
 * nor send anything itself (router_notify_owner queues notifications).
 */
#include "config.h"
#include "daemon.h"

#include <sys/queue.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <ctype.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "capture.h"
#include "cond.h"
#include "db.h"
#include "httpd.h"
#include "lead.h"
#include "log.h"
#include "phone.h"
#include "route.h"
#include "score.h"

#define IMPORT_MAX_ROWS 1000
#define LIST_DEFAULT    100
#define LIST_MAX        500
#define QUEUE_MAX       500
#define NOTE_MAX        1024
#define PULL_ROUNDS     4               /* candidate queries per pull */
#define RESCORE_TRIES   5               /* reads when the lead keeps changing */
#define REPORT_DAYS     30

/* ---- small helpers ------------------------------------------------------------ */

static json_t *
error_doc(const char *field, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static json_t *
error_doc(const char *field, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return json_pack("{s:{s:s?, s:s}}", "error", "field", field, "message",
	    msg);
}

static int
routing_on(const struct lc_daemon *d)
{
	return router_conf(d->router) != NULL;
}

static void
kick(struct lc_daemon *d)
{
	if (d->router)
		router_kick(d->router);
}

static const char *
jstr(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

/* A JSON column of res (NULL for SQL NULL or bad JSON); caller owns. */
static json_t *
col_json(const PGresult *res, int row, int col)
{
	if (PQgetisnull(res, row, col))
		return NULL;
	return json_loads(PQgetvalue(res, row, col), 0, NULL);
}

/* The lead as shown: its row with "grade" added. Steals row. */
static json_t *
lead_out(const struct lc_daemon *d, json_t *row)
{
	const char *g;

	if (!row)
		return json_null();
	g = score_grade(d->conf->scoring, (int)json_integer_value(
	    json_object_get(row, "score")));
	json_object_set_new(row, "grade", g ? json_string(g) : json_null());
	return row;
}

/* A lead id: 1 to 18 digits, not 0. */
static int
parse_id(const char *s, size_t len, long long *id)
{
	long long v = 0;

	if (len == 0 || len > 18)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (!isdigit((unsigned char)s[i]))
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	if (v <= 0)
		return -1;
	*id = v;
	return 0;
}

/* An optional string member of body: 0 (absent: *out NULL), -1 after
 * replying 400 naming it. */
static int
opt_string(struct httpd_req *r, const json_t *body, const char *key,
    size_t max, const char **out)
{
	const json_t *v = json_object_get(body, key);

	*out = NULL;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v) || json_string_length(v) > max ||
	    strlen(json_string_value(v)) != json_string_length(v)) {
		char msg[100];

		snprintf(msg, sizeof(msg), "text of at most %zu bytes", max);
		httpd_reply_error(r, 400, key, msg);
		return -1;
	}
	*out = json_string_value(v);
	return 0;
}

/* Every key of body is one of keys (NULL-terminated); else reply 400
 * naming the first other and return -1. */
static int
known_keys(struct httpd_req *r, const json_t *body, const char *const *keys)
{
	const char *k;
	json_t *v;

	json_object_foreach((json_t *)body, k, v) {
		const char *const *p;

		for (p = keys; *p && strcmp(*p, k) != 0; p++)
			;
		if (!*p) {
			httpd_reply_error(r, 400, k, "unknown key");
			return -1;
		}
	}
	return 0;
}

/* Tell the lead's owner (if any) that it came back to life, etc. */
static void
notify_owner(struct lc_daemon *d, const json_t *lead, const char *kind)
{
	const char *owner = jstr(lead, "owner");

	if (owner && d->router)
		router_notify_owner(d->router, owner, kind, lead);
}

static void
reply_cb(void *arg, int status, json_t *doc)
{
	httpd_reply_json(arg, status, doc);
}

/* The score history of lead l, as capture_rescore reads it. */
#define HISTORY_SQL \
    "(SELECT coalesce(jsonb_agg(jsonb_build_object('kind', h.kind, " \
    "'rule', h.rule, 'points', h.points, 'earned_at', " \
    "extract(epoch FROM h.earned_at)::bigint)), '[]') FROM score_history h " \
    "WHERE h.lead_id = l.id)::text"

/* ---- rescoring a stored lead -------------------------------------------------- */

struct rescore;
typedef void rescore_done_fn(struct rescore *rs, int status, json_t *doc);

struct rescore {
	struct lc_daemon *d;
	struct rescore *next;   /* in the busy list, or waiting behind one */
	struct rescore *waiting;        /* the same lead's next rescores */
	long long id;
	json_t *event;          /* scored with the lead, or NULL (owned) */
	int record;             /* record the event in the same statement */
	int enter;              /* a lead captured before routing enters it */
	int tries;
	struct capture_score sc;
	json_t *event_row;      /* the event as recorded */
	rescore_done_fn *done;  /* doc: the lead (as shown), or an error */
	void *arg;
};

/*
 * $1 lead, $2 its updated_at as read, $3 history rows, $4 score, $5 enter
 * routing when captured before it ('new', no owner, no queue), $6 the
 * team of a route threshold (NULL: none), $7 the event to record (NULL:
 * none). Nothing happens when the lead changed since it was read.
 */
static const char rescore_sql[] =
    "WITH o AS (SELECT id, owner IS NULL AND $6::text IS NOT NULL AS reroute, "
    "owner IS NULL AND $5::bool AND status = 'new' AND queue IS NULL AS enter "
    "FROM leads WHERE id = $1::bigint AND updated_at = $2::timestamptz "
    "FOR UPDATE), "
    "u AS (UPDATE leads l SET score = $4::int, "
    "status = CASE WHEN o.reroute OR o.enter THEN 'routing' ELSE l.status END, "
    "status_at = CASE WHEN (o.reroute OR o.enter) AND l.status <> 'routing' "
    "THEN now() ELSE l.status_at END, "
    "round = CASE WHEN o.reroute OR o.enter THEN l.round + 1 ELSE l.round END, "
    "team = CASE WHEN o.reroute OR o.enter THEN NULL ELSE l.team END, "
    "rule = CASE WHEN o.reroute OR o.enter THEN NULL ELSE l.rule END, "
    "queue = CASE WHEN o.reroute OR o.enter THEN NULL ELSE l.queue END, "
    "queued_at = CASE WHEN o.reroute OR o.enter THEN NULL ELSE l.queued_at END, "
    "route_team = CASE WHEN o.reroute THEN $6::text WHEN o.enter THEN NULL "
    "ELSE l.route_team END, "
    "route_at = CASE WHEN o.reroute OR o.enter THEN now() ELSE l.route_at END, "
    "updated_at = now() FROM o WHERE l.id = o.id "
    "RETURNING to_jsonb(l) AS j, o.reroute OR o.enter AS entered), "
    "h AS (INSERT INTO score_history (lead_id, kind, rule, points, reason) "
    "SELECT o.id, x.kind, x.rule, x.points, x.reason FROM o, "
    "jsonb_to_recordset($3::jsonb) AS x(kind text, rule text, points integer, "
    "reason text)), "
    "w AS (UPDATE offers f SET status = 'withdrawn', answered_at = now() "
    "FROM o WHERE o.reroute AND f.lead_id = o.id AND f.status = 'pending'), "
    "t AS (INSERT INTO events (type, lead_id, data) SELECT 'threshold', o.id, "
    "jsonb_build_object('team', $6::text, 'score', $4::int) FROM o "
    "WHERE o.reroute), "
    "ev AS (INSERT INTO events (type, lead_id, data) SELECT "
    "$7::jsonb->>'type', o.id, $7::jsonb - 'type' FROM o "
    "WHERE $7::jsonb IS NOT NULL RETURNING id, type, created_at, data) "
    "SELECT u.j::text, u.entered, (SELECT to_jsonb(ev) FROM ev)::text FROM u";

static const char reload_sql[] =
    "SELECT to_jsonb(l)::text, " HISTORY_SQL " FROM leads l "
    "WHERE l.id = $1::bigint";

/*
 * The rescores in progress on this node, one per lead: another one for the
 * same lead waits behind it and reads the lead afresh when its turn comes,
 * rather than failing its check and reading again while the first writes
 * (a burst of events for one lead would otherwise retry quadratically).
 * Loop thread only.
 */
static struct rescore *busy;

static void rescore_run(struct rescore *rs, json_t *lead, json_t *history);
static void rescore_reload(struct rescore *rs);

static void
rescore_finish(struct rescore *rs, int status, json_t *doc)
{
	struct rescore **pp, *w = rs->waiting;

	for (pp = &busy; *pp && *pp != rs; pp = &(*pp)->next)
		;
	if (*pp)
		*pp = rs->next;
	rs->done(rs, status, doc);
	capture_score_free(&rs->sc);
	json_decref(rs->event);
	json_decref(rs->event_row);
	free(rs);
	if (w) {
		/* the next of this lead: its turn, with a fresh read */
		w->next = busy;
		busy = w;
		rescore_reload(w);
	}
}

/* Start rs on lead and history (stolen), or queue it behind the rescore
 * of the same lead in progress. */
static void
rescore_start(struct rescore *rs, json_t *lead, json_t *history)
{
	struct rescore *b, **pp;

	for (b = busy; b && b->id != rs->id; b = b->next)
		;
	if (b) {
		json_decref(lead);
		json_decref(history);
		for (pp = &b->waiting; *pp; pp = &(*pp)->waiting)
			;
		*pp = rs;
		return;
	}
	rs->next = busy;
	busy = rs;
	rescore_run(rs, lead, history);
}

static void
on_reloaded(void *arg, const PGresult *res, const char *err)
{
	struct rescore *rs = arg;

	if (err) {
		rescore_finish(rs, 503, error_doc(NULL, "%s", err));
	} else if (PQntuples(res) != 1) {
		rescore_finish(rs, 404, error_doc("lead", "no lead %lld (deleted "
		    "meanwhile)", rs->id));
	} else {
		rescore_run(rs, col_json(res, 0, 0), col_json(res, 0, 1));
	}
}

static void
rescore_reload(struct rescore *rs)
{
	char id[32];
	const char *p[1] = { id };

	snprintf(id, sizeof(id), "%lld", rs->id);
	capture_score_free(&rs->sc);
	if (db_query(rs->d->db, reload_sql, 1, p, on_reloaded, rs) < 0)
		rescore_finish(rs, 503, error_doc(NULL, "the database queue is "
		    "full"));
}

static void
on_rescored(void *arg, const PGresult *res, const char *err)
{
	struct rescore *rs = arg;
	json_t *lead;

	if (err) {
		rescore_finish(rs, 503, error_doc(NULL, "%s", err));
		return;
	}
	if (PQntuples(res) != 1) {
		/* changed meanwhile (another node, the router): read again */
		if (++rs->tries >= RESCORE_TRIES)
			rescore_finish(rs, 503, error_doc(NULL, "lead %lld keeps "
			    "changing: try again", rs->id));
		else
			rescore_reload(rs);
		return;
	}
	lead = col_json(res, 0, 0);
	rs->event_row = col_json(res, 0, 2);
	if (!lead) {
		rescore_finish(rs, 500, error_doc(NULL, "bad lead row"));
		return;
	}
	if (PQgetvalue(res, 0, 1)[0] == 't')
		kick(rs->d);
	if (rs->sc.crossed)
		notify_owner(rs->d, lead, "reengaged");
	rescore_finish(rs, 200, lead_out(rs->d, lead));
}

/* Score rs's lead (its row and history, both stolen) and write. */
static void
rescore_run(struct rescore *rs, json_t *lead, json_t *history)
{
	char id[32], score[16];
	char *rows = NULL, *ev = NULL;
	const char *p[7];
	const char *team;

	if (!lead || !history) {
		json_decref(lead);
		json_decref(history);
		rescore_finish(rs, 500, error_doc(NULL, "bad lead row"));
		return;
	}
	if (capture_rescore(rs->d->conf->scoring, lead, history, rs->event,
	    time(NULL), &rs->sc) < 0) {
		json_decref(lead);
		json_decref(history);
		rescore_finish(rs, 500, error_doc(NULL, "scoring failed"));
		return;
	}
	team = routing_on(rs->d) ? rs->sc.route_team : NULL;
	snprintf(id, sizeof(id), "%lld", rs->id);
	snprintf(score, sizeof(score), "%d", rs->sc.after);
	rows = json_dumps(rs->sc.rows, JSON_COMPACT);
	if (rs->record && rs->event)
		ev = json_dumps(rs->event, JSON_COMPACT);
	p[0] = id;
	p[1] = jstr(lead, "updated_at");
	p[2] = rows;
	p[3] = score;
	p[4] = rs->enter && routing_on(rs->d) ? "true" : "false";
	p[5] = team;
	p[6] = ev;
	if (!rows || !p[1] || (rs->record && !ev) || db_query(rs->d->db,
	    rescore_sql, 7, p, on_rescored, rs) < 0) {
		rescore_finish(rs, 503, error_doc(NULL, "the database queue is "
		    "full"));
	}
	free(rows);
	free(ev);
	json_decref(lead);
	json_decref(history);
}

/* A new rescore of lead id; event stolen. */
static struct rescore *
rescore_new(struct lc_daemon *d, long long id, json_t *event,
    rescore_done_fn *done, void *arg)
{
	struct rescore *rs = calloc(1, sizeof(*rs));

	if (!rs) {
		json_decref(event);
		return NULL;
	}
	rs->d = d;
	rs->id = id;
	rs->event = event;
	rs->done = done;
	rs->arg = arg;
	return rs;
}

/* leads_event: a behavior event from another module, scored like
 * POST /api/v1/events. */
struct evcb {
	sender_action_fn *cb;
	void *arg;
};

static void
on_event_done(struct rescore *rs, int status, json_t *doc)
{
	struct evcb *e = rs->arg;

	e->cb(e->arg, status, doc);
	free(e);
}

static void
on_event_loaded(void *arg, const PGresult *res, const char *err)
{
	struct rescore *rs = arg;

	if (err)
		rescore_finish(rs, 503, error_doc(NULL, "%s", err));
	else if (PQntuples(res) != 1)
		rescore_finish(rs, 404, error_doc("lead", "no lead %lld",
		    rs->id));
	else
		rescore_start(rs, col_json(res, 0, 0), col_json(res, 0, 1));
}

static void
event_score(struct lc_daemon *d, long long lead, json_t *event, int record,
    sender_action_fn *cb, void *arg)
{
	struct evcb *e = calloc(1, sizeof(*e));
	struct rescore *rs;
	char id[32];
	const char *p[1] = { id };

	if (!e || !(rs = rescore_new(d, lead, event, on_event_done, e))) {
		if (!e)
			json_decref(event);
		free(e);
		cb(arg, 503, error_doc(NULL, "out of memory"));
		return;
	}
	e->cb = cb;
	e->arg = arg;
	rs->record = record;
	snprintf(id, sizeof(id), "%lld", lead);
	if (db_query(d->db, reload_sql, 1, p, on_event_loaded, rs) < 0)
		rescore_finish(rs, 503, error_doc(NULL, "the database queue is "
		    "full"));
}

void
leads_event(struct lc_daemon *d, long long lead, json_t *event,
    sender_action_fn *cb, void *arg)
{
	event_score(d, lead, event, 1, cb, arg);
}

void
leads_score(struct lc_daemon *d, long long lead, json_t *event,
    sender_action_fn *cb, void *arg)
{
	event_score(d, lead, event, 0, cb, arg);
}

/* ---- capture ------------------------------------------------------------------------ */

struct capture {
	struct lc_daemon *d;
	json_t *event;                  /* or NULL */
	struct capture_score sc;        /* of the lead as new */
	int routed;                     /* a new lead enters routing */
	int route_later;                /* to sc.route_team, once created */
	json_t *lead;                   /* created: the row */
	sender_action_fn *cb;
	void *arg;
};

static void
capture_free(struct capture *c)
{
	capture_score_free(&c->sc);
	json_decref(c->event);
	json_decref(c->lead);
	free(c);
}

static void
capture_reply(struct capture *c, int status, json_t *doc)
{
	c->cb(c->arg, status, doc);
	capture_free(c);
}

static void
on_merged_rescored(struct rescore *rs, int status, json_t *doc)
{
	struct capture *c = rs->arg;

	if (status == 200)
		capture_reply(c, 200, json_pack("{s:o, s:b}", "lead", doc,
		    "created", 0));
	else
		capture_reply(c, status, doc);
}

/* A route threshold crossed by a new lead: it goes to the team's routing
 * (it was stored out of routing for this). */
static const char route_new_sql[] =
    "WITH u AS (UPDATE leads SET route_team = $2, round = round + 1, "
    "status = 'routing', status_at = now(), route_at = now(), team = NULL, "
    "rule = NULL, queue = NULL, queued_at = NULL, updated_at = now() "
    "WHERE id = $1::bigint AND owner IS NULL RETURNING to_jsonb(leads) AS j, "
    "id), "
    "e AS (INSERT INTO events (type, lead_id, data) SELECT 'threshold', id, "
    "jsonb_build_object('team', $2::text, 'score', $3::int) FROM u) "
    "SELECT j::text FROM u";

static void
on_routed_new(void *arg, const PGresult *res, const char *err)
{
	struct capture *c = arg;
	json_t *lead;

	if (err)
		log_warn("routing a new lead to its threshold's team: %s", err);
	if (!err && PQntuples(res) == 1 && (lead = col_json(res, 0, 0))) {
		json_decref(c->lead);
		c->lead = lead;
	}
	kick(c->d);
	lead = c->lead;
	c->lead = NULL;
	capture_reply(c, 201, json_pack("{s:o, s:b}", "lead", lead_out(c->d,
	    lead), "created", 1));
}

static void
on_captured(void *arg, const PGresult *res, const char *err)
{
	struct capture *c = arg;
	json_t *lead, *history;
	long long id;

	if (err) {
		capture_reply(c, 503, error_doc(NULL, "%s", err));
		return;
	}
	if (PQntuples(res) != 1 || !(lead = col_json(res, 0, 0))) {
		capture_reply(c, 500, error_doc(NULL, "capture returned no lead"));
		return;
	}
	id = (long long)json_integer_value(json_object_get(lead, "id"));
	if (PQgetvalue(res, 0, 1)[0] == 't') {
		c->lead = lead;
		if (c->route_later && routing_on(c->d)) {
			char ids[32], score[16];
			const char *p[3] = { ids, c->sc.route_team, score };

			snprintf(ids, sizeof(ids), "%lld", id);
			snprintf(score, sizeof(score), "%d", c->sc.after);
			if (db_query(daemon_db(c->d), route_new_sql, 3, p,
			    on_routed_new, c) == 0)
				return;
			log_warn("lead %lld: cannot route it to team %s: the "
			    "database queue is full", id, c->sc.route_team);
		}
		if (c->routed)
			kick(c->d);
		c->lead = NULL;
		capture_reply(c, 201, json_pack("{s:o, s:b}", "lead",
		    lead_out(c->d, lead), "created", 1));
		return;
	}
	/* merged: rescore the lead as it is now, from its history */
	{
		struct rescore *rs;

		history = col_json(res, 0, 2);
		if (!(rs = rescore_new(c->d, id, json_incref(c->event),
		    on_merged_rescored, c))) {
			json_decref(lead);
			json_decref(history);
			capture_reply(c, 503, error_doc(NULL, "out of memory"));
			return;
		}
		rs->enter = 1;
		rescore_start(rs, lead, history);
	}
}

static const char capture_sql[] =
    "SELECT lead::text, created, history::text FROM leadcast_capture("
    "$1::jsonb, $2::int, $3::jsonb, $4::bool, $5::jsonb)";

int
leads_capture(struct lc_daemon *d, json_t *lead, json_t *event,
    sender_action_fn *cb, void *arg)
{
	struct capture *c;
	char score[16], *lj = NULL, *hj = NULL, *ej = NULL;
	const char *p[5];
	int route;

	if (!json_object_get(lead, "email") && !json_object_get(lead, "phone")) {
		json_decref(lead);
		json_decref(event);
		cb(arg, 400, error_doc("email", "a lead needs an email address "
		    "or a phone number"));
		return -1;
	}
	if (event && !capture_type_valid(jstr(event, "type"))) {
		json_decref(lead);
		json_decref(event);
		cb(arg, 400, error_doc("type", "the event's type: 1 to %d "
		    "letters, digits, _ - or .", CAPTURE_TYPE_MAX));
		return -1;
	}
	if (!(c = calloc(1, sizeof(*c)))) {
		json_decref(lead);
		json_decref(event);
		cb(arg, 503, error_doc(NULL, "out of memory"));
		return -1;
	}
	c->d = d;
	c->event = event;
	c->cb = cb;
	c->arg = arg;
	if (capture_score_new(d->conf->scoring, lead, event, time(NULL),
	    &c->sc) < 0) {
		json_decref(lead);
		capture_reply(c, 500, error_doc(NULL, "scoring failed"));
		return -1;
	}
	/* a new lead crossing a route threshold goes to that team: it is
	 * stored out of routing, then routed there (on_captured) */
	route = routing_on(d);
	c->route_later = route && c->sc.route_team != NULL;
	c->routed = route && !c->route_later;
	snprintf(score, sizeof(score), "%d", c->sc.after);
	lj = json_dumps(lead, JSON_COMPACT);
	hj = json_dumps(c->sc.rows, JSON_COMPACT);
	if (event)
		ej = json_dumps(event, JSON_COMPACT);
	json_decref(lead);
	p[0] = lj;
	p[1] = score;
	p[2] = hj;
	p[3] = c->routed ? "true" : "false";
	p[4] = ej;
	if (!lj || !hj || (event && !ej) || db_query(daemon_db(d), capture_sql,
	    5, p, on_captured, c) < 0) {
		free(lj);
		free(hj);
		free(ej);
		capture_reply(c, 503, error_doc(NULL, "the database queue is "
		    "full"));
		return -1;
	}
	free(lj);
	free(hj);
	free(ej);
	return 0;
}

/* Clean a lead from outside (borrowed): NULL after replying 400. */
static json_t *
clean_lead(struct lc_daemon *d, struct httpd_req *r, const json_t *in)
{
	char field[96], msg[256];
	json_t *lead = lead_clean(in, 0, d->conf->default_country, field,
	    sizeof(field), msg, sizeof(msg));

	if (!lead)
		httpd_reply_error(r, 400, field[0] ? field : NULL, msg);
	return lead;
}

static void
capture_one(struct lc_daemon *d, struct httpd_req *r)
{
	json_t *body, *lead;

	if (!(body = httpd_body_json(r)))
		return;
	lead = clean_lead(d, r, body);
	json_decref(body);
	if (lead)
		leads_capture(d, lead, NULL, reply_cb, r);
}

/* ---- import ---------------------------------------------------------------------------- */

struct import {
	struct lc_daemon *d;
	struct httpd_req *r;
	json_t *errors;
	long created, merged;
	int pending;
};

struct import_row {
	struct import *im;
	size_t row;
};

static int
by_row(const void *a, const void *b)
{
	json_int_t x = json_integer_value(json_object_get(*(json_t *const *)a,
	    "row"));
	json_int_t y = json_integer_value(json_object_get(*(json_t *const *)b,
	    "row"));

	return x < y ? -1 : x > y;
}

static void
import_row_error(struct import *im, size_t row, const char *field,
    const char *msg)
{
	json_array_append_new(im->errors, json_pack("{s:I, s:s?, s:s}", "row",
	    (json_int_t)row, "field", field, "message", msg));
}

static void
import_done(struct import *im)
{
	size_t n = json_array_size(im->errors);
	json_t **v, *sorted;

	if (--im->pending > 0)
		return;
	v = calloc(n + 1, sizeof(*v));
	sorted = json_array();
	for (size_t i = 0; v && i < n; i++)
		v[i] = json_array_get(im->errors, i);
	if (v) {
		qsort(v, n, sizeof(*v), by_row);
		for (size_t i = 0; i < n; i++)
			json_array_append(sorted, v[i]);
	}
	free(v);
	httpd_reply_json(im->r, 200, json_pack("{s:I, s:I, s:o}", "created",
	    (json_int_t)im->created, "merged", (json_int_t)im->merged, "errors",
	    v ? sorted : json_incref(im->errors)));
	if (!v)
		json_decref(sorted);
	json_decref(im->errors);
	free(im);
}

static void
on_import_row(void *arg, int status, json_t *doc)
{
	struct import_row *ir = arg;
	struct import *im = ir->im;

	if (status == 201) {
		im->created++;
	} else if (status == 200) {
		im->merged++;
	} else {
		json_t *e = json_object_get(doc, "error");

		import_row_error(im, ir->row, jstr(e, "field"), jstr(e,
		    "message") ? jstr(e, "message") : "not stored");
	}
	json_decref(doc);
	free(ir);
	import_done(im);
}

/* The import's source, cleaned like a lead's: a new reference, or NULL
 * after replying 400. */
static json_t *
import_source(struct httpd_req *r, const json_t *src)
{
	char field[96], msg[256];
	json_t *check, *lead, *out = NULL;

	if (!json_is_string(src)) {
		httpd_reply_error(r, 400, "source", "an import names its source "
		    "(text)");
		return NULL;
	}
	check = json_pack("{s:O}", "source", src);
	lead = lead_clean(check, 0, NULL, field, sizeof(field), msg,
	    sizeof(msg));
	if (lead && (out = json_object_get(lead, "source")))
		json_incref(out);
	else
		httpd_reply_error(r, 400, "source", lead ? "an import names its "
		    "source (text)" : msg);
	json_decref(lead);
	json_decref(check);
	return out;
}

static void
import_leads(struct lc_daemon *d, struct httpd_req *r)
{
	static const char *const keys[] = { "source", "leads", NULL };
	json_t *body, *rows, *row, *source = NULL;
	struct import *im;
	char field[96], msg[256];
	size_t i;

	if (!(body = httpd_body_json(r)))
		return;
	rows = json_object_get(body, "leads");
	if (known_keys(r, body, keys) < 0 || !(source = import_source(r,
	    json_object_get(body, "source"))))
		goto done;
	if (!json_is_array(rows) || json_array_size(rows) > IMPORT_MAX_ROWS) {
		httpd_reply_error(r, 400, "leads", "an array of at most 1000 "
		    "leads");
		goto done;
	}
	if (!(im = calloc(1, sizeof(*im)))) {
		httpd_reply_error(r, 503, NULL, "out of memory");
		goto done;
	}
	im->d = d;
	im->r = r;
	im->errors = json_array();
	im->pending = 1;                /* until every row is on its way */
	json_array_foreach(rows, i, row) {
		struct import_row *ir;
		json_t *lead;

		if (!json_is_object(row)) {
			import_row_error(im, i, NULL, "a lead is a JSON object");
			continue;
		}
		if (!(lead = lead_clean(row, 0, d->conf->default_country, field,
		    sizeof(field), msg, sizeof(msg)))) {
			import_row_error(im, i, field[0] ? field : NULL, msg);
			continue;
		}
		if (!json_object_get(lead, "source"))
			json_object_set(lead, "source", source);
		if (!(ir = calloc(1, sizeof(*ir)))) {
			json_decref(lead);
			import_row_error(im, i, NULL, "out of memory");
			continue;
		}
		ir->im = im;
		ir->row = i;
		im->pending++;
		leads_capture(d, lead, NULL, on_import_row, ir);
	}
	import_done(im);
done:
	json_decref(source);
	json_decref(body);
}

/* ---- GET /api/v1/leads/{id} --------------------------------------------------------- */

struct req {
	struct lc_daemon *d;
	struct httpd_req *r;
	long long id;
	int limit;
	char rep[ROUTE_NAME_MAX + 1];
	char what[16];
};

static struct req *
req_new(struct lc_daemon *d, struct httpd_req *r)
{
	struct req *q = calloc(1, sizeof(*q));

	if (!q) {
		httpd_reply_error(r, 503, NULL, "out of memory");
		return NULL;
	}
	q->d = d;
	q->r = r;
	return q;
}

/* Post sql for q; on failure reply 503 and free q. */
static void
req_query(struct req *q, const char *sql, int n, const char *const *p,
    db_result_fn *cb)
{
	if (db_query(q->d->db, sql, n, p, cb, q) < 0) {
		httpd_reply_error(q->r, 503, NULL, "the database queue is full");
		free(q);
	}
}

static const char lead_sql[] =
    "SELECT to_jsonb(l)::text, "
    "(SELECT coalesce(jsonb_agg(jsonb_build_object('id', e.id, 'type', "
    "e.type, 'created_at', e.created_at, 'data', e.data) ORDER BY "
    "e.created_at, e.id), '[]') FROM (SELECT * FROM events WHERE lead_id = "
    "l.id ORDER BY created_at DESC, id DESC LIMIT 500) e)::text, "
    "(SELECT coalesce(jsonb_agg(jsonb_build_object('id', o.id, 'rep', "
    "o.rep_id, 'team', o.team, 'kind', o.kind, 'status', o.status, "
    "'created_at', o.created_at, 'deadline', o.deadline, 'answered_at', "
    "o.answered_at) ORDER BY o.id), '[]') FROM (SELECT * FROM offers WHERE "
    "lead_id = l.id ORDER BY id DESC LIMIT 500) o)::text, "
    "(SELECT coalesce(jsonb_agg(jsonb_build_object('kind', h.kind, 'rule', "
    "h.rule, 'points', h.points, 'reason', h.reason, 'earned_at', "
    "h.earned_at) ORDER BY h.earned_at, h.id), '[]') FROM (SELECT * FROM "
    "score_history WHERE lead_id = l.id ORDER BY earned_at DESC, id DESC "
    "LIMIT 500) h)::text "
    "FROM leads l WHERE l.id = $1::bigint";

static void
on_lead(void *arg, const PGresult *res, const char *err)
{
	struct req *q = arg;

	if (err) {
		httpd_reply_error(q->r, 503, NULL, err);
	} else if (PQntuples(res) != 1) {
		httpd_reply_error(q->r, 404, "id", "no such lead");
	} else {
		json_t *ev = col_json(res, 0, 1), *of = col_json(res, 0, 2);
		json_t *sh = col_json(res, 0, 3);

		httpd_reply_json(q->r, 200, json_pack("{s:o, s:o, s:o, s:o}",
		    "lead", lead_out(q->d, col_json(res, 0, 0)), "events",
		    ev ? ev : json_array(), "offers", of ? of : json_array(),
		    "score_history", sh ? sh : json_array()));
	}
	free(q);
}

static void
get_lead(struct lc_daemon *d, struct httpd_req *r, long long id)
{
	struct req *q = req_new(d, r);
	char ids[32];
	const char *p[1] = { ids };

	if (!q)
		return;
	snprintf(ids, sizeof(ids), "%lld", id);
	req_query(q, lead_sql, 1, p, on_lead);
}

/* ---- GET /api/v1/leads --------------------------------------------------------------- */

static const char *const statuses[] = { "new", "routing", "offered",
	"assigned", "contacted", "qualified", "won", "lost", "recycled", NULL };

static int
in_list(const char *s, const char *const *l)
{
	for (; *l; l++)
		if (strcmp(s, *l) == 0)
			return 1;
	return 0;
}

/* The leads (rows as JSON in column 0), as shown; for a list reply. */
static json_t *
leads_of(const struct lc_daemon *d, const PGresult *res)
{
	json_t *a = json_array();

	for (int i = 0; i < PQntuples(res); i++) {
		json_t *l = col_json(res, i, 0);

		if (l)
			json_array_append_new(a, lead_out(d, l));
	}
	return a;
}

static void
on_list(void *arg, const PGresult *res, const char *err)
{
	struct req *q = arg;
	json_t *a;

	if (err) {
		httpd_reply_error(q->r, 503, NULL, err);
	} else {
		a = leads_of(q->d, res);
		httpd_reply_json(q->r, 200, json_pack("{s:o, s:o}", "leads", a,
		    "next", PQntuples(res) == q->limit ? json_deep_copy(
		    json_object_get(json_array_get(a, json_array_size(a) - 1),
		    "id")) : json_null()));
	}
	free(q);
}

static void
list_leads(struct lc_daemon *d, struct httpd_req *r)
{
	static const char *const keys[] = { "status", "owner", "team",
		"source", "after", "limit", NULL };
	const char *v[6] = { NULL };
	char after[32] = "0", limit[16];
	const char *p[6];
	struct evkeyval *kv;
	long long a = 0;
	long n = LIST_DEFAULT;
	struct req *q;

	TAILQ_FOREACH(kv, r->query, next) {
		size_t k;

		for (k = 0; keys[k] && strcmp(keys[k], kv->key) != 0; k++)
			;
		if (!keys[k]) {
			httpd_reply_error(r, 400, kv->key, "unknown parameter "
			    "(status, owner, team, source, after, limit)");
			return;
		}
		if (strlen(kv->value) > 200) {
			httpd_reply_error(r, 400, kv->key, "too long");
			return;
		}
		v[k] = kv->value;
	}
	if (v[0] && !in_list(v[0], statuses)) {
		httpd_reply_error(r, 400, "status", "one of new, routing, "
		    "offered, assigned, contacted, qualified, won, lost, "
		    "recycled");
		return;
	}
	if (v[4] && strcmp(v[4], "0") != 0 && parse_id(v[4], strlen(v[4]),
	    &a) < 0) {
		httpd_reply_error(r, 400, "after", "a lead id");
		return;
	}
	if (v[5]) {
		char *end;

		n = strtol(v[5], &end, 10);
		if (!*v[5] || *end || n < 1 || n > LIST_MAX) {
			httpd_reply_error(r, 400, "limit", "from 1 to 500");
			return;
		}
	}
	snprintf(after, sizeof(after), "%lld", a);
	snprintf(limit, sizeof(limit), "%ld", n);
	if (!(q = req_new(d, r)))
		return;
	q->limit = (int)n;
	p[0] = v[0];
	p[1] = v[1];
	p[2] = v[2];
	p[3] = v[3];
	p[4] = after;
	p[5] = limit;
	req_query(q, "SELECT to_jsonb(l)::text FROM leads l WHERE "
	    "($1::text IS NULL OR l.status = $1) AND "
	    "($2::text IS NULL OR l.owner = $2) AND "
	    "($3::text IS NULL OR l.team = $3) AND "
	    "($4::text IS NULL OR l.source = $4) AND "
	    "l.id > $5::bigint ORDER BY l.id LIMIT $6::int", 6, p, on_list);
}

/* ---- assign and status --------------------------------------------------------------- */

static void
on_changed(void *arg, const PGresult *res, const char *err)
{
	struct req *q = arg;
	json_t *lead;

	if (err) {
		httpd_reply_error(q->r, 503, NULL, err);
	} else if (PQntuples(res) != 1 || !(lead = col_json(res, 0, 0))) {
		httpd_reply_error(q->r, 404, "id", "no such lead");
	} else if (PQgetisnull(res, 0, 1)) {
		/* the statement refused: column 1 says why */
		json_decref(lead);
		httpd_reply_error(q->r, 409, "status", "the lead has no owner: "
		    "assign it first");
	} else {
		if (strcmp(q->what, "assign") == 0) {
			/* a new owner hears of it (not a repeat) */
			if (strcmp(PQgetvalue(res, 0, 1), q->rep) != 0)
				notify_owner(q->d, lead, "assigned");
		} else if (strcmp(q->what, "recycled") == 0) {
			kick(q->d);
		}
		httpd_reply_json(q->r, 200, json_pack("{s:o}", "lead",
		    lead_out(q->d, lead)));
	}
	free(q);
}

/* $1 lead, $2 rep, $3 note. Column 1: the previous owner ("" none). */
static const char assign_sql[] =
    "WITH o AS (SELECT id, owner, status FROM leads WHERE id = $1::bigint "
    "FOR UPDATE), "
    "u AS (UPDATE leads l SET owner = $2, "
    "status = CASE WHEN o.status IN ('contacted', 'qualified', 'won') "
    "THEN o.status ELSE 'assigned' END, "
    "status_at = CASE WHEN o.status IN ('contacted', 'qualified', 'won', "
    "'assigned') THEN l.status_at ELSE now() END, "
    "assigned_at = now(), queue = NULL, route_at = NULL, route_team = NULL, "
    "updated_at = now() FROM o WHERE l.id = o.id "
    "RETURNING to_jsonb(l) AS j, coalesce(o.owner, '') AS prev), "
    "w AS (UPDATE offers f SET status = 'withdrawn', answered_at = now() "
    "FROM o WHERE f.lead_id = o.id AND f.status = 'pending'), "
    "e AS (INSERT INTO events (type, lead_id, data) SELECT 'assigned', o.id, "
    "jsonb_build_object('rep', $2::text, 'by', 'admin', 'note', $3::text, "
    "'from', o.owner) FROM o) "
    "SELECT j::text, prev FROM u";

static void
assign(struct lc_daemon *d, struct httpd_req *r, long long id)
{
	static const char *const keys[] = { "rep", "note", NULL };
	const struct route_conf *rc = router_conf(d->router);
	const char *rep, *note;
	char ids[32];
	const char *p[3] = { ids };
	json_t *body;
	struct req *q;

	if (!(body = httpd_body_json(r)))
		return;
	if (known_keys(r, body, keys) < 0 || opt_string(r, body, "rep",
	    ROUTE_NAME_MAX, &rep) < 0 || opt_string(r, body, "note", NOTE_MAX,
	    &note) < 0) {
		json_decref(body);
		return;
	}
	if (!rep || !*rep) {
		httpd_reply_error(r, 400, "rep", "the rep (its id) to assign the "
		    "lead to");
	} else if (!rc) {
		httpd_reply_error(r, 409, "rep", "routing is off: there is no "
		    "routing.conf, hence no reps");
	} else if (route_rep_find(rc, rep) == ROUTE_NONE) {
		httpd_reply_error(r, 400, "rep", "no such rep");
	} else if ((q = req_new(d, r))) {
		snprintf(q->what, sizeof(q->what), "assign");
		snprintf(q->rep, sizeof(q->rep), "%s", rep);
		snprintf(ids, sizeof(ids), "%lld", id);
		p[1] = rep;
		p[2] = note;
		req_query(q, assign_sql, 3, p, on_changed);
	}
	json_decref(body);
}

/*
 * $1 lead, $2 status, $3 note. recycled: back to routing (a new round,
 * nobody, nothing pending). lost: closed, so out of routing and queues.
 * contacted, qualified, won need an owner: column 1 is NULL when it has
 * none (and nothing changed).
 */
static const char status_sql[] =
    "WITH o AS (SELECT id, owner, status, owner IS NOT NULL OR $2 IN "
    "('lost', 'recycled') AS ok FROM leads WHERE id = $1::bigint FOR UPDATE), "
    "u AS (UPDATE leads l SET status = $2, status_at = now(), "
    "owner = CASE WHEN $2 = 'recycled' THEN NULL ELSE l.owner END, "
    "round = CASE WHEN $2 = 'recycled' THEN l.round + 1 ELSE l.round END, "
    "team = CASE WHEN $2 = 'recycled' THEN NULL ELSE l.team END, "
    "rule = CASE WHEN $2 = 'recycled' THEN NULL ELSE l.rule END, "
    "queue = CASE WHEN $2 IN ('recycled', 'lost') THEN NULL ELSE l.queue END, "
    "queued_at = CASE WHEN $2 IN ('recycled', 'lost') THEN NULL "
    "ELSE l.queued_at END, "
    "route_team = CASE WHEN $2 IN ('recycled', 'lost') THEN NULL "
    "ELSE l.route_team END, "
    "route_at = CASE WHEN $2 = 'recycled' THEN now() WHEN $2 = 'lost' THEN "
    "NULL ELSE l.route_at END, "
    "updated_at = now() FROM o WHERE l.id = o.id AND o.ok "
    "RETURNING to_jsonb(l) AS j), "
    "w AS (UPDATE offers f SET status = 'withdrawn', answered_at = now() "
    "FROM o WHERE o.ok AND $2 IN ('recycled', 'lost') AND f.lead_id = o.id "
    "AND f.status = 'pending'), "
    "e AS (INSERT INTO events (type, lead_id, data) SELECT 'status', o.id, "
    "jsonb_build_object('from', o.status, 'to', $2::text, 'note', $3::text, "
    "'owner', o.owner) FROM o WHERE o.ok) "
    "SELECT coalesce((SELECT j FROM u), to_jsonb(l))::text, "
    "CASE WHEN o.ok THEN '' END FROM o JOIN leads l ON l.id = o.id";

static void
set_status(struct lc_daemon *d, struct httpd_req *r, long long id)
{
	static const char *const keys[] = { "status", "note", NULL };
	static const char *const allowed[] = { "contacted", "qualified", "won",
		"lost", "recycled", NULL };
	const char *st, *note;
	char ids[32];
	const char *p[3] = { ids };
	json_t *body;
	struct req *q;

	if (!(body = httpd_body_json(r)))
		return;
	if (known_keys(r, body, keys) < 0 || opt_string(r, body, "status", 32,
	    &st) < 0 || opt_string(r, body, "note", NOTE_MAX, &note) < 0) {
		json_decref(body);
		return;
	}
	if (!st || !in_list(st, allowed)) {
		httpd_reply_error(r, 400, "status", "one of contacted, "
		    "qualified, won, lost, recycled");
	} else if ((q = req_new(d, r))) {
		snprintf(q->what, sizeof(q->what), "%s", st);
		snprintf(ids, sizeof(ids), "%lld", id);
		p[1] = st;
		p[2] = note;
		req_query(q, status_sql, 3, p, on_changed);
	}
	json_decref(body);
}

/* ---- pull queues: next and claim --------------------------------------------------- */

struct pull {
	struct lc_daemon *d;
	struct httpd_req *r;
	char rep[ROUTE_NAME_MAX + 1];
	const char *how;                /* "next" or "claim" */
	long long lead;                 /* claim: the lead */
	struct buf teams;               /* next: text[] of the rep's teams */
	struct buf skip;                /* next: ids the rep cannot take */
	size_t nskip;
	json_t *cands;                  /* [[id, queue], ...] to try */
	size_t at;
	int rounds;
	int raced;                      /* somebody took a candidate first */
	sender_action_fn *cb;           /* leads_next_cb: instead of r */
	void *cbarg;
};

static void
pull_free(struct pull *pl)
{
	buf_free(&pl->teams);
	buf_free(&pl->skip);
	json_decref(pl->cands);
	free(pl);
}

static void
pull_reply_error(struct pull *pl, int code, const char *field,
    const char *msg)
{
	if (pl->cb)
		pl->cb(pl->cbarg, code, error_doc(field, "%s", msg));
	else
		httpd_reply_error(pl->r, code, field, msg);
	pull_free(pl);
}

/* The rep's open leads (owned and open, plus single offers pending), as
 * the router counts them against its capacity. $1 the rep. */
#define OPEN_SQL \
    "(SELECT count(*) FROM leads WHERE owner = $1 AND status IN " \
    "('assigned', 'contacted', 'qualified')) + (SELECT count(*) FROM " \
    "offers WHERE rep_id = $1 AND status = 'pending' AND kind = 'single')"

/* Whether rep could take lead by the lead's rule (its requirements),
 * whatever the time: an explicit pull ignores working hours and duty. */
static enum route_why
pull_eligible(const struct route_conf *rc, size_t rep, const json_t *lead)
{
	struct route_rep_state st = { 0, 0, 1, 0, 0 };
	const char *rule = jstr(lead, "rule");
	struct route_conf view = *rc;
	struct route_rep one = rc->reps[rep];

	/* a view of the configuration with only this rep, working any time */
	one.week = NULL;
	view.reps = &one;
	view.nreps = 1;
	return route_eligible(&view, rule ? route_rule_find(rc, rule) : NULL, 0,
	    &st, lead, NULL, time(NULL));
}

/* The rep's index now, or reply (and free pl). */
static size_t
pull_rep(struct pull *pl, const struct route_conf **rcp)
{
	const struct route_conf *rc = router_conf(pl->d->router);
	size_t i;

	if (!rc) {
		pull_reply_error(pl, 409, "rep", "routing is off: there is no "
		    "routing.conf");
		return ROUTE_NONE;
	}
	if ((i = route_rep_find(rc, pl->rep)) == ROUTE_NONE) {
		pull_reply_error(pl, 404, "rep", "no such rep");
		return ROUTE_NONE;
	}
	*rcp = rc;
	return i;
}

static int
over_capacity(struct pull *pl, const struct route_rep *rep, long long open)
{
	char msg[160];

	if (rep->capacity <= 0 || open < rep->capacity)
		return 0;
	snprintf(msg, sizeof(msg), "%s is at capacity: %lld open leads of %ld",
	    rep->id, open, rep->capacity);
	pull_reply_error(pl, 409, "rep", msg);
	return 1;
}

static void pull_try(struct pull *pl);
static void pull_query(struct pull *pl);

/* $1 lead, $2 rep, $3 queue, $4 how, $5 the rep's capacity (0: none). */
static const char take_sql[] =
    "SELECT lead::text, open FROM leadcast_take($1::bigint, $2, $3, $4, "
    "$5::int)";

static void
on_taken(void *arg, const PGresult *res, const char *err)
{
	struct pull *pl = arg;
	json_t *lead;

	if (err) {
		pull_reply_error(pl, 503, NULL, err);
		return;
	}
	if (PQntuples(res) == 1 && !PQgetisnull(res, 0, 1)) {
		/* parallel pulls by the rep filled it up meanwhile */
		const struct route_conf *rc;
		size_t rep = pull_rep(pl, &rc);

		if (rep != ROUTE_NONE && !over_capacity(pl, &rc->reps[rep],
		    strtoll(PQgetvalue(res, 0, 1), NULL, 10)))
			pull_reply_error(pl, 409, "rep", "at capacity");
		return;
	}
	if (PQntuples(res) == 1 && (lead = col_json(res, 0, 0))) {
		notify_owner(pl->d, lead, "assigned");
		if (pl->cb)
			pl->cb(pl->cbarg, 200, json_pack("{s:o}", "lead",
			    lead_out(pl->d, lead)));
		else
			httpd_reply_json(pl->r, 200, json_pack("{s:o}", "lead",
			    lead_out(pl->d, lead)));
		pull_free(pl);
		return;
	}
	/* another rep took it at the same instant */
	if (pl->lead) {
		pull_reply_error(pl, 409, "id", "the lead is no longer in a "
		    "queue: somebody took it");
		return;
	}
	pl->raced = 1;
	pull_try(pl);
}

/* Take the next candidate, or query again. */
static void
pull_try(struct pull *pl)
{
	json_t *c = json_array_get(pl->cands, pl->at++);
	const struct route_conf *rc;
	size_t rep;
	char id[32], cap[32];
	const char *p[5] = { id, pl->rep, NULL, pl->how, cap };

	if (!c) {
		if (pl->raced && pl->rounds < PULL_ROUNDS) {
			pull_query(pl);
			return;
		}
		pull_reply_error(pl, 404, "queue", pl->nskip ? "no lead waiting "
		    "that this rep can take" : "no lead waiting");
		return;
	}
	snprintf(id, sizeof(id), "%" JSON_INTEGER_FORMAT,
	    json_integer_value(json_array_get(c, 0)));
	p[2] = json_string_value(json_array_get(c, 1));
	if ((rep = pull_rep(pl, &rc)) == ROUTE_NONE)
		return;
	snprintf(cap, sizeof(cap), "%ld", rc->reps[rep].capacity > 0 ?
	    rc->reps[rep].capacity : 0);
	if (db_query(pl->d->db, take_sql, 5, p, on_taken, pl) < 0)
		pull_reply_error(pl, 503, NULL, "the database queue is full");
}

static void
on_candidates(void *arg, const PGresult *res, const char *err)
{
	struct pull *pl = arg;
	const struct route_conf *rc;
	size_t rep;
	int n;

	if (err) {
		pull_reply_error(pl, 503, NULL, err);
		return;
	}
	if ((rep = pull_rep(pl, &rc)) == ROUTE_NONE)
		return;
	if ((n = PQntuples(res)) < 1) {
		pull_reply_error(pl, 500, NULL, "no answer");
		return;
	}
	if (over_capacity(pl, &rc->reps[rep], strtoll(PQgetvalue(res, 0, 0),
	    NULL, 10)))
		return;
	json_decref(pl->cands);
	pl->cands = json_array();
	pl->at = 0;
	pl->raced = 0;
	for (int i = 0; i < n; i++) {
		json_t *lead;

		if (PQgetisnull(res, i, 1) || !(lead = col_json(res, i, 2)))
			continue;
		if (pull_eligible(rc, rep, lead) == ROUTE_ELIGIBLE) {
			json_array_append_new(pl->cands, json_pack("[I, s]",
			    json_integer_value(json_object_get(lead, "id")),
			    jstr(lead, "queue")));
		} else {
			db_array_add(&pl->skip, PQgetvalue(res, i, 1));
			pl->nskip++;
			/* a full page of others: look further */
			pl->raced |= n == 50;
		}
		json_decref(lead);
	}
	pull_try(pl);
}

/* Candidates: $1 the rep, $2 its teams, $3 ids it cannot take. */
static const char candidates_sql[] =
    "SELECT " OPEN_SQL ", x.id, x.j::text FROM (SELECT 1) one LEFT JOIN "
    "LATERAL (SELECT id, to_jsonb(l) AS j FROM leads l WHERE queue = "
    "ANY($2::text[]) AND owner IS NULL AND id <> ALL($3::bigint[]) "
    "ORDER BY priority DESC, queued_at, id LIMIT 50) x ON true";

static void
pull_query(struct pull *pl)
{
	const char *p[3];
	char *skip;

	pl->rounds++;
	skip = strdup(db_array_end(&pl->skip));
	p[0] = pl->rep;
	p[1] = db_array_end(&pl->teams);
	p[2] = skip;
	if (!skip || db_query(pl->d->db, candidates_sql, 3, p, on_candidates,
	    pl) < 0)
		pull_reply_error(pl, 503, NULL, "the database queue is full");
	free(skip);
}

static struct pull *
pull_new(struct lc_daemon *d, struct httpd_req *r, const char *rep,
    const char *how)
{
	struct pull *pl = calloc(1, sizeof(*pl));

	if (!pl) {
		httpd_reply_error(r, 503, NULL, "out of memory");
		return NULL;
	}
	pl->d = d;
	pl->r = r;
	pl->how = how;
	snprintf(pl->rep, sizeof(pl->rep), "%s", rep);
	buf_init(&pl->teams, 0);
	buf_init(&pl->skip, 0);
	return pl;
}

/* 1 if team lists rep among its members. */
static int
team_has(const struct route_team *t, size_t rep)
{
	for (size_t i = 0; i < t->nmembers; i++)
		if (t->members[i] == rep)
			return 1;
	return 0;
}

static void next_start(struct pull *pl);

/* A pull whose outcome goes to cb (no HTTP request), or NULL (cb told). */
static struct pull *
pull_new_cb(struct lc_daemon *d, const char *rep, const char *how,
    sender_action_fn *cb, void *arg)
{
	struct pull *pl = calloc(1, sizeof(*pl));

	if (!pl || strlen(rep) > ROUTE_NAME_MAX) {
		free(pl);
		cb(arg, pl ? 404 : 503, error_doc("rep", pl ? "no such rep" :
		    "out of memory"));
		return NULL;
	}
	pl->d = d;
	pl->how = how;
	pl->cb = cb;
	pl->cbarg = arg;
	snprintf(pl->rep, sizeof(pl->rep), "%s", rep);
	buf_init(&pl->teams, 0);
	buf_init(&pl->skip, 0);
	return pl;
}

void
leads_next(struct lc_daemon *d, struct httpd_req *r, const char *rep)
{
	struct pull *pl;

	if (strlen(rep) > ROUTE_NAME_MAX) {
		httpd_reply_error(r, 404, "rep", "no such rep");
		return;
	}
	if ((pl = pull_new(d, r, rep, "next")) != NULL)
		next_start(pl);
}

void
leads_next_cb(struct lc_daemon *d, const char *rep, sender_action_fn *cb,
    void *arg)
{
	struct pull *pl = pull_new_cb(d, rep, "next", cb, arg);

	if (pl)
		next_start(pl);
}

/* The rep's pull teams, then the candidates. */
static void
next_start(struct pull *pl)
{
	const struct route_conf *rc;
	size_t i, nteams = 0;

	if ((i = pull_rep(pl, &rc)) == ROUTE_NONE)
		return;
	for (size_t t = 0; t < rc->nteams; t++) {
		if (rc->teams[t].method == ROUTE_PULL &&
		    team_has(&rc->teams[t], i)) {
			db_array_add(&pl->teams, rc->teams[t].name);
			nteams++;
		}
	}
	if (nteams == 0) {
		pull_reply_error(pl, 404, "queue", "the rep is in no pull team");
		return;
	}
	pull_query(pl);
}

static void
on_claim_lead(void *arg, const PGresult *res, const char *err)
{
	struct pull *pl = arg;
	const struct route_conf *rc;
	const struct route_team *team;
	const char *queue;
	enum route_why w;
	json_t *lead;
	size_t rep;
	char msg[200];

	if (err) {
		pull_reply_error(pl, 503, NULL, err);
		return;
	}
	if ((rep = pull_rep(pl, &rc)) == ROUTE_NONE)
		return;
	if (PQntuples(res) != 1 || !(lead = col_json(res, 0, 1))) {
		pull_reply_error(pl, 404, "id", "no such lead");
		return;
	}
	queue = jstr(lead, "queue");
	if (!queue || !json_is_null(json_object_get(lead, "owner"))) {
		json_decref(lead);
		pull_reply_error(pl, 409, "id", "the lead is no longer in a "
		    "queue");
		return;
	}
	if (!(team = route_team_find(rc, queue)) || !team_has(team, rep)) {
		snprintf(msg, sizeof(msg), "%s is not a member of team %s, "
		    "whose queue holds the lead", pl->rep, queue);
		json_decref(lead);
		pull_reply_error(pl, 403, "rep", msg);
		return;
	}
	if (over_capacity(pl, &rc->reps[rep], strtoll(PQgetvalue(res, 0, 0),
	    NULL, 10))) {
		json_decref(lead);
		return;
	}
	if ((w = pull_eligible(rc, rep, lead)) != ROUTE_ELIGIBLE) {
		snprintf(msg, sizeof(msg), "%s cannot take this lead: %s",
		    pl->rep, route_why_str(w));
		json_decref(lead);
		pull_reply_error(pl, 403, "rep", msg);
		return;
	}
	pl->cands = json_pack("[[I, s]]", (json_int_t)pl->lead, queue);
	json_decref(lead);
	pull_try(pl);
}

/* Take lead id for pl's rep: checks, then one take. */
static void
claim_start(struct pull *pl, long long id)
{
	char ids[32];
	const char *p[2];

	pl->lead = id;
	pl->rounds = PULL_ROUNDS;       /* one lead: no second round */
	snprintf(ids, sizeof(ids), "%lld", id);
	p[0] = pl->rep;
	p[1] = ids;
	if (db_query(pl->d->db, "SELECT " OPEN_SQL ", (SELECT to_jsonb(l)::text "
	    "FROM leads l WHERE id = $2::bigint)", 2, p, on_claim_lead, pl) < 0)
		pull_reply_error(pl, 503, NULL, "the database queue is full");
}

static void
claim(struct lc_daemon *d, struct httpd_req *r, long long id)
{
	static const char *const keys[] = { "rep", NULL };
	const struct route_conf *rc = router_conf(d->router);
	const char *rep;
	struct pull *pl = NULL;
	json_t *body;

	if (!(body = httpd_body_json(r)))
		return;
	if (known_keys(r, body, keys) < 0 || opt_string(r, body, "rep",
	    ROUTE_NAME_MAX, &rep) < 0)
		;
	else if (!rep || !*rep)
		httpd_reply_error(r, 400, "rep", "the rep (its id) who takes the "
		    "lead");
	else if (!rc)
		httpd_reply_error(r, 409, "rep", "routing is off: there is no "
		    "routing.conf");
	else if (route_rep_find(rc, rep) == ROUTE_NONE)
		httpd_reply_error(r, 400, "rep", "no such rep");
	else
		pl = pull_new(d, r, rep, "claim");
	json_decref(body);
	if (pl)
		claim_start(pl, id);
}

void
leads_claim_cb(struct lc_daemon *d, const char *rep, long long lead,
    sender_action_fn *cb, void *arg)
{
	struct pull *pl = pull_new_cb(d, rep, "claim", cb, arg);

	if (pl)
		claim_start(pl, lead);
}

/* ---- GET /api/v1/queue?team=T ------------------------------------------------------- */

static void
on_queue(void *arg, const PGresult *res, const char *err)
{
	struct req *q = arg;

	if (err)
		httpd_reply_error(q->r, 503, NULL, err);
	else
		httpd_reply_json(q->r, 200, json_pack("{s:s, s:o}", "team",
		    q->rep, "leads", leads_of(q->d, res)));
	free(q);
}

static void
queue_get(struct httpd_req *r, void *arg)
{
	struct lc_daemon *d = arg;
	const struct route_conf *rc = router_conf(d->router);
	const char *team = evhttp_find_header(r->query, "team");
	const char *p[1] = { team };
	struct req *q;

	if (!team || !*team || strlen(team) > ROUTE_NAME_MAX) {
		httpd_reply_error(r, 400, "team", "the team whose queue to show");
		return;
	}
	if (!rc || !route_team_find(rc, team)) {
		httpd_reply_error(r, 400, "team", rc ? "no such team" :
		    "routing is off: there is no routing.conf");
		return;
	}
	if (!(q = req_new(d, r)))
		return;
	snprintf(q->rep, sizeof(q->rep), "%s", team);
	req_query(q, "SELECT to_jsonb(l)::text FROM leads l WHERE queue = $1 "
	    "AND owner IS NULL ORDER BY priority DESC, queued_at, id LIMIT 500",
	    1, p, on_queue);
}

/* ---- POST /api/v1/events ------------------------------------------------------------- */

struct evreq {
	struct lc_daemon *d;
	struct httpd_req *r;
	json_t *event;
};

static void
on_event_scored(struct rescore *rs, int status, json_t *doc)
{
	struct httpd_req *r = rs->arg;

	if (status != 200) {
		httpd_reply_json(r, status, doc);
		return;
	}
	httpd_reply_json(r, 201, json_pack("{s:O?, s:{s:i, s:i, s:O}, s:o}",
	    "event", rs->event_row, "score", "before", rs->sc.before, "after",
	    rs->sc.after, "changes", rs->sc.changes, "lead", doc));
}

static void
on_event_lead(void *arg, const PGresult *res, const char *err)
{
	struct evreq *e = arg;
	struct rescore *rs;
	long long id;
	json_t *lead;

	if (err) {
		httpd_reply_error(e->r, 503, NULL, err);
	} else if (PQntuples(res) != 1 || !(lead = col_json(res, 0, 0))) {
		httpd_reply_error(e->r, 404, "lead", "no such lead");
	} else {
		id = (long long)json_integer_value(json_object_get(lead, "id"));
		if (!(rs = rescore_new(e->d, id, e->event, on_event_scored,
		    e->r))) {
			json_decref(lead);
			httpd_reply_error(e->r, 503, NULL, "out of memory");
		} else {
			e->event = NULL;
			rs->record = 1;
			rescore_start(rs, lead, col_json(res, 0, 1));
		}
	}
	json_decref(e->event);
	free(e);
}

/* $1 id, $2 email, $3 phone: the lead by id, else by email, else phone. */
static const char event_lead_sql[] =
    "WITH c AS (SELECT id, 0 AS pref FROM leads WHERE id = $1::bigint "
    "UNION ALL SELECT id, 1 FROM leads WHERE $1::bigint IS NULL AND "
    "lower(email) = lower($2::text) "
    "UNION ALL SELECT id, 2 FROM leads WHERE $1::bigint IS NULL AND "
    "phone = $3::text ORDER BY pref, id LIMIT 1) "
    "SELECT to_jsonb(l)::text, " HISTORY_SQL " FROM leads l JOIN c "
    "ON l.id = c.id";

/* The lead an event names: its id, email or phone into p[0..2] (idbuf
 * and e164 hold them). 0, or -1 after replying 400. */
static int
event_lead(struct lc_daemon *d, struct httpd_req *r, const json_t *body,
    const char **p, char *idbuf, size_t in, char *e164, size_t en)
{
	char why[160], msg[256];
	const json_t *v;
	long long id;

	if ((v = json_object_get(body, "lead")) && !json_is_null(v)) {
		if (json_is_integer(v) && json_integer_value(v) > 0)
			id = (long long)json_integer_value(v);
		else if (!json_is_string(v) || parse_id(json_string_value(v),
		    json_string_length(v), &id) < 0)
			goto bad_lead;
		snprintf(idbuf, in, "%lld", id);
		p[0] = idbuf;
	}
	if ((v = json_object_get(body, "email")) && !json_is_null(v)) {
		if (!json_is_string(v) || json_string_length(v) == 0 ||
		    json_string_length(v) > 254) {
			httpd_reply_error(r, 400, "email", "an email address");
			return -1;
		}
		p[1] = json_string_value(v);
	}
	if ((v = json_object_get(body, "phone")) && !json_is_null(v)) {
		if (!json_is_string(v)) {
			httpd_reply_error(r, 400, "phone", "a phone number (text)");
			return -1;
		}
		if (phone_normalize(json_string_value(v), d->conf->default_country,
		    e164, en, why, sizeof(why)) < 0) {
			snprintf(msg, sizeof(msg), "'%.64s' is not a phone number: "
			    "%s", json_string_value(v), why);
			httpd_reply_error(r, 400, "phone", msg);
			return -1;
		}
		p[2] = e164;
	}
	if (p[0] || p[1] || p[2])
		return 0;
bad_lead:
	httpd_reply_error(r, 400, "lead", "an event names its lead: \"lead\" "
	    "(its id), \"email\" or \"phone\"");
	return -1;
}

static void
events_post(struct httpd_req *r, void *arg)
{
	static const char *const ids[] = { "lead", "email", "phone", NULL };
	struct lc_daemon *d = arg;
	char field[96], msg[256], idbuf[32], e164[PHONE_E164_MAX];
	const char *p[3] = { NULL, NULL, NULL };
	json_t *body, *event = NULL;
	struct evreq *e;

	if (!(body = httpd_body_json(r)))
		return;
	if (event_lead(d, r, body, p, idbuf, sizeof(idbuf), e164,
	    sizeof(e164)) < 0)
		goto done;
	if (!(event = capture_event_clean(body, ids, field, sizeof(field), msg,
	    sizeof(msg)))) {
		httpd_reply_error(r, 400, field[0] ? field : NULL, msg);
		goto done;
	}
	if (!(e = calloc(1, sizeof(*e)))) {
		httpd_reply_error(r, 503, NULL, "out of memory");
		goto done;
	}
	e->d = d;
	e->r = r;
	e->event = event;
	if (db_query(d->db, event_lead_sql, 3, p, on_event_lead, e) == 0)
		event = NULL;           /* e's now */
	else {
		free(e);
		httpd_reply_error(r, 503, NULL, "the database queue is full");
	}
done:
	json_decref(event);
	json_decref(body);
}

/* ---- GET /api/v1/reports/routing ------------------------------------------------------ */

/*
 * Over the offers made since $1 (epoch seconds), per rep, team, rule and
 * source: offers and their outcomes; seconds from the lead's capture to
 * its first offer (counted once per lead, with the group of that offer)
 * and to the accepted offer's answer.
 */
static const char report_sql[] =
    "WITH f AS (SELECT o.rep_id, o.team, o.rule, l.source, o.status, "
    "CASE WHEN NOT EXISTS (SELECT 1 FROM offers p WHERE p.lead_id = "
    "o.lead_id AND (p.created_at < o.created_at OR (p.created_at = "
    "o.created_at AND p.id < o.id))) THEN extract(epoch FROM o.created_at - "
    "l.created_at) END AS first_s, "
    "CASE WHEN o.status = 'accepted' THEN extract(epoch FROM o.answered_at - "
    "l.created_at) END AS accept_s "
    "FROM offers o JOIN leads l ON l.id = o.lead_id "
    "WHERE o.created_at >= to_timestamp($1::bigint)) "
    "SELECT CASE WHEN GROUPING(rep_id) = 0 THEN 'rep' WHEN GROUPING(team) = 0 "
    "THEN 'team' WHEN GROUPING(rule) = 0 THEN 'rule' ELSE 'source' END, "
    "jsonb_build_object('key', CASE WHEN GROUPING(rep_id) = 0 THEN rep_id "
    "WHEN GROUPING(team) = 0 THEN team WHEN GROUPING(rule) = 0 THEN rule "
    "ELSE source END, "
    "'offered', count(*), "
    "'accepted', count(*) FILTER (WHERE status = 'accepted'), "
    "'rejected', count(*) FILTER (WHERE status = 'rejected'), "
    "'expired', count(*) FILTER (WHERE status = 'expired'), "
    "'first_offer_p50_s', round(percentile_cont(0.5) WITHIN GROUP (ORDER BY "
    "first_s)::numeric, 3), "
    "'first_offer_p90_s', round(percentile_cont(0.9) WITHIN GROUP (ORDER BY "
    "first_s)::numeric, 3), "
    "'accept_p50_s', round(percentile_cont(0.5) WITHIN GROUP (ORDER BY "
    "accept_s)::numeric, 3), "
    "'accept_p90_s', round(percentile_cont(0.9) WITHIN GROUP (ORDER BY "
    "accept_s)::numeric, 3))::text "
    "FROM f GROUP BY GROUPING SETS ((rep_id), (team), (rule), (source)) "
    "ORDER BY 1, count(*) DESC, 2";

static void
on_report(void *arg, const PGresult *res, const char *err)
{
	struct req *q = arg;
	json_t *by;
	char since[32];
	time_t t = (time_t)q->id;
	struct tm tm;

	if (err) {
		httpd_reply_error(q->r, 503, NULL, err);
		free(q);
		return;
	}
	by = json_pack("{s:[], s:[], s:[], s:[]}", "rep", "team", "rule",
	    "source");
	for (int i = 0; i < PQntuples(res); i++) {
		json_t *row = col_json(res, i, 1);

		if (row)
			json_array_append_new(json_object_get(by,
			    PQgetvalue(res, i, 0)), row);
	}
	gmtime_r(&t, &tm);
	strftime(since, sizeof(since), "%Y-%m-%dT%H:%M:%SZ", &tm);
	httpd_reply_json(q->r, 200, json_pack("{s:s, s:o}", "since", since,
	    "by", by));
	free(q);
}

static void
report_routing(struct httpd_req *r, void *arg)
{
	struct lc_daemon *d = arg;
	const char *s = evhttp_find_header(r->query, "since");
	char e[32];
	const char *p[1] = { e };
	struct req *q;
	time_t since;

	if (!s) {
		since = time(NULL) - REPORT_DAYS * 86400;
	} else if (cond_parse_time(s, &since) < 0) {
		httpd_reply_error(r, 400, "since", "an ISO 8601 time such as "
		    "2024-05-01 or 2024-05-01T09:30:00Z");
		return;
	}
	if (!(q = req_new(d, r)))
		return;
	q->id = (long long)since;
	snprintf(e, sizeof(e), "%lld", (long long)since);
	req_query(q, report_sql, 1, p, on_report);
}

/* ---- routes ----------------------------------------------------------------------------- */

static void
leads_root(struct httpd_req *r, void *arg)
{
	struct lc_daemon *d = arg;

	if (evhttp_request_get_command(r->req) == EVHTTP_REQ_POST)
		capture_one(d, r);
	else
		list_leads(d, r);
}

static void
leads_one(struct httpd_req *r, void *arg)
{
	struct lc_daemon *d = arg;
	const char *slash = strchr(r->tail, '/');
	size_t len = slash ? (size_t)(slash - r->tail) : strlen(r->tail);
	const char *what = slash ? slash + 1 : "";
	int post = evhttp_request_get_command(r->req) == EVHTTP_REQ_POST;
	long long id;

	if (!slash && strcmp(r->tail, "import") == 0) {
		if (post)
			import_leads(d, r);
		else
			httpd_reply_error(r, 405, NULL, "POST an import");
		return;
	}
	if (parse_id(r->tail, len, &id) < 0) {
		httpd_reply_error(r, 400, "id", "a lead id is a positive number");
		return;
	}
	if (!*what && !post && !slash)
		get_lead(d, r, id);
	else if (post && strcmp(what, "assign") == 0)
		assign(d, r, id);
	else if (post && strcmp(what, "status") == 0)
		set_status(d, r, id);
	else if (post && strcmp(what, "claim") == 0)
		claim(d, r, id);
	else
		httpd_reply_error(r, 404, NULL, "use GET /api/v1/leads/ID or POST "
		    "/api/v1/leads/ID/assign, /status or /claim");
}

void
leads_routes_register(struct lc_daemon *d)
{
	static const struct httpd_route routes[] = {
		{ HTTPD_GET | HTTPD_POST | HTTPD_AUTH, "/api/v1/leads",
		  "api_leads", leads_root, NULL },
		{ HTTPD_GET | HTTPD_POST | HTTPD_AUTH, "/api/v1/leads/",
		  "api_lead", leads_one, NULL },
		{ HTTPD_POST | HTTPD_AUTH, "/api/v1/events", "api_events",
		  events_post, NULL },
		{ HTTPD_GET | HTTPD_AUTH, "/api/v1/queue", "api_queue",
		  queue_get, NULL },
		{ HTTPD_GET | HTTPD_AUTH, "/api/v1/reports/routing",
		  "api_report_routing", report_routing, NULL },
	};

	httpd_add_routes(d->httpd, routes, sizeof(routes) / sizeof(routes[0]),
	    d);
}
