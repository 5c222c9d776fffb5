/*
 * router - the routing engine on the loop: it turns leads that are due for
 * routing into offers, queue entries or assignments, and keeps every lead
 * moving until somebody owns it.
 *
 *   routing    a lead is due when leads.route_at <= now() (capture,
 *              recycle, a rejected or expired offer, a threshold, the
 *              sweeper set it). One transaction on the router's own
 *              database session locks the reps (their stride passes),
 *              claims up to ROUTE_BATCH due leads (SKIP LOCKED, so other
 *              nodes take others), decides each with route_pick, and
 *              writes passes, offers, lead states, events and the offer
 *              notifications before it commits: a crash loses nothing,
 *              and two nodes never decide from one snapshot.
 *   expiry     every tick, offers past their deadline (in the database,
 *              so a restart does not forget them) expire, and leads left
 *              with no pending offer become due again.
 *   sweeper    every SWEEP_S, the next 2000 leads in routing without an
 *              owner are checked: any with neither a queue, a pending
 *              offer nor a due time is made due (and logged: it means
 *              something was lost on the way).
 *   answers    accept and reject, by API (/api/v1/offers/{id}/...) or by
 *              the rep's signed lead card (/r/{token}); an accept is one
 *              statement that takes the lead only if nobody owns it, so a
 *              broadcast has exactly one winner.
 *   reps       /api/v1/reps...: the reps of routing.conf and those added
 *              through the API (kept in the reps table, laid over the
 *              file as rep sections: see route_load_overlay), availability,
 *              the rep's own token (a signed token with a generation that
 *              revoking bumps), and self-service profile changes.
 *
 * It does not capture leads, score them or serve pull queues (leads.c),
 * nor send mail (sender.c sends the notifications it queues).
 */
#include "config.h"
#include "daemon.h"

#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "cond.h"
#include "db.h"
#include "httpd.h"
#include "log.h"
#include "metrics.h"
#include "route.h"
#include "token.h"

#define ROUTE_BATCH     50              /* leads per routing transaction */
#define TICK_MS         250             /* expiry check */
#define SWEEP_S         2               /* 2000 candidates each time */
#define REPS_MAX        5000
#define OVERLAY_NAME    "reps (database)"

/* The routing configuration in force, shared by the transactions that
 * decided with it: reloads replace it while one may be in flight. */
struct rconf {
	int refs;
	struct route_conf *rc;          /* owned, or the conf's (borrowed) */
	int owned;
	struct conf *conf;              /* a reference: keeps rc alive */
};

struct router {
	struct lc_daemon *d;
	struct db *db;                  /* our session: transactions only */
	struct rconf *cur;
	json_t *nums;                   /* rep id -> num */
	int tx_running;                 /* a routing transaction in flight */
	int kicked;                     /* more may be due: run again */
	int expiring, sweeping, probing, syncing, resync;
	struct event *ev_tick, *ev_retry;
	time_t last_sweep, last_route;
	long long sweep_cursor;         /* the sweeper's walk: last id seen */
	long long *ids;                 /* offer ids reserved from the */
	size_t idhead, nids, idcap;     /* sequence: ids[idhead..nids) */
	struct metric *m_offer, *m_broadcast, *m_assign, *m_queue,
	    *m_expired, *m_swept, *m_accepted, *m_rejected, *m_tx_fail;
};

/* ---- the routing configuration ----------------------------------------- */

static void
rconf_unref(struct rconf *c)
{
	if (!c || --c->refs > 0)
		return;
	if (c->owned)
		route_conf_free(c->rc);
	conf_unref(c->conf);
	free(c);
}

static struct rconf *
rconf_new(struct lc_daemon *d, struct route_conf *own)
{
	struct rconf *c;

	if (!d->conf->routing) {
		route_conf_free(own);
		return NULL;
	}
	if (!(c = calloc(1, sizeof(*c)))) {
		route_conf_free(own);
		return NULL;
	}
	c->refs = 1;
	c->conf = conf_ref(d->conf);
	c->rc = own ? own : d->conf->routing;
	c->owned = own != NULL;
	return c;
}

static void
rconf_set(struct router *r, struct rconf *c)
{
	rconf_unref(r->cur);
	r->cur = c;
}

const struct route_conf *
router_conf(const struct router *r)
{
	return r && r->cur ? r->cur->rc : NULL;
}

long long
router_rep_num(const struct router *r, const char *rep)
{
	json_t *v = r->nums ? json_object_get(r->nums, rep) : NULL;

	return v ? (long long)json_integer_value(v) : 0;
}

static void
put_string(struct buf *b, const char *s)
{
	buf_putc(b, '"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			buf_putc(b, '\\');
		if (*s == '\n')
			buf_puts(b, "\\n");
		else if (*s == '\t')
			buf_puts(b, "\\t");
		else if ((unsigned char)*s >= 0x20)
			buf_putc(b, *s);
	}
	buf_putc(b, '"');
}

/* Append v as a routing.conf value: a quoted string, a number, a list of
 * strings. -1 for anything else. */
static int
put_value(struct buf *b, const json_t *v)
{
	size_t i;
	json_t *x;

	if (json_is_string(v)) {
		put_string(b, json_string_value(v));
	} else if (json_is_integer(v)) {
		buf_printf(b, "%lld", (long long)json_integer_value(v));
	} else if (json_is_real(v)) {
		buf_printf(b, "%.6g", json_real_value(v));
	} else if (json_is_boolean(v)) {
		buf_puts(b, json_is_true(v) ? "true" : "false");
	} else if (json_is_array(v)) {
		buf_puts(b, "{ ");
		json_array_foreach(v, i, x) {
			if (!json_is_string(x))
				return -1;
			if (i)
				buf_puts(b, ", ");
			put_string(b, json_string_value(x));
		}
		buf_puts(b, " }");
	} else {
		return -1;
	}
	return 0;
}

/* The keys a rep section may have, and those a rep may change itself. */
static const char *const rep_keys[] = { "name", "email", "phone", "notify",
	"time_zone", "hours", "weight", "capacity", "skills", "territories",
	"products", "languages", "teams", "tier", "manager", NULL };
static const char *const self_keys[] = { "skills", "territories", "products",
	"languages", "hours", "time_zone", NULL };

static int
in_list(const char *const *l, const char *k)
{
	for (; *l; l++)
		if (strcmp(*l, k) == 0)
			return 1;
	return 0;
}

/* rep "ID" { ... } for one rep's profile; -1 with the bad key in *bad. */
static int
put_rep(struct buf *b, const char *id, json_t *profile, const char **bad)
{
	const char *k;
	json_t *v;

	buf_puts(b, "rep ");
	put_string(b, id);
	buf_puts(b, " {\n");
	json_object_foreach(profile, k, v) {
		if (!in_list(rep_keys, k)) {
			*bad = k;
			return -1;
		}
		buf_printf(b, "\t%s = ", k);
		if (put_value(b, v) < 0) {
			*bad = k;
			return -1;
		}
		buf_putc(b, '\n');
	}
	buf_puts(b, "}\n");
	return 0;
}

/*
 * Load routing.conf with profiles (rep id -> profile object) laid over it.
 * Returns the conf (caller frees) or NULL with the first problem in err,
 * and the key it is about in field (or "").
 */
static struct route_conf *
load_with(struct lc_daemon *d, json_t *profiles, char *field, size_t fn,
    char *err, size_t en)
{
	struct cfgfile_errors errs = { NULL, 0 };
	struct route_conf *rc;
	struct buf b;
	const char *id, *bad = NULL;
	json_t *p;

	*field = *err = '\0';
	buf_init(&b, 0);
	json_object_foreach(profiles, id, p) {
		if (!route_valid_id(id)) {
			snprintf(field, fn, "id");
			snprintf(err, en, "a rep id uses letters, digits and "
			    ". _ - @ + (at most %d)", ROUTE_NAME_MAX);
			buf_free(&b);
			return NULL;
		}
		if (json_object_size(p) && put_rep(&b, id, p, &bad) < 0) {
			snprintf(field, fn, "%s", bad);
			snprintf(err, en, "rep %s: %s is not a rep setting with "
			    "a string, number or list of strings", id, bad);
			buf_free(&b);
			return NULL;
		}
	}
	rc = route_load_overlay(d->conf->routing_path, OVERLAY_NAME,
	    buf_str(&b), b.len, &errs);
	if (!rc && errs.n) {
		/* "reps (database):3:9: weight: expected ..." -> weight */
		const char *m = errs.msgs[0], *c;

		if (strncmp(m, OVERLAY_NAME ":", sizeof(OVERLAY_NAME)) == 0 &&
		    (c = strstr(m, ": ")) != NULL) {
			size_t n = strcspn(c + 2, ": ");

			if (c[2 + n] == ':' && n < fn) {
				memcpy(field, c + 2, n);
				field[n] = '\0';
			}
		}
		snprintf(err, en, "%s", m);
	}
	cfgfile_errors_free(&errs);
	buf_free(&b);
	return rc;
}

/* ---- reps in the database --------------------------------------------------- */

static void sync_reps(struct router *r);

/* The strides (1/weight) of the reps in force, for the accept statement
 * that charges a broadcast winner. */
static void
write_strides(struct router *r)
{
	const struct route_conf *rc = router_conf(r);
	struct buf ids, strides;
	const char *p[2];

	if (!rc)
		return;
	buf_init(&ids, 0);
	buf_init(&strides, 0);
	for (size_t i = 0; i < rc->nreps; i++) {
		char v[40];

		snprintf(v, sizeof(v), "%.17g", rc->reps[i].stride);
		db_array_add(&ids, rc->reps[i].id);
		db_array_add(&strides, v);
	}
	p[0] = db_array_end(&ids);
	p[1] = db_array_end(&strides);
	db_query(r->d->db, "UPDATE reps SET stride = x.s FROM unnest($1::text[], "
	    "$2::float8[]) AS x(id, s) WHERE reps.id = x.id AND reps.stride <> "
	    "x.s", 2, p, NULL, NULL);
	buf_free(&ids);
	buf_free(&strides);
}

static void
on_reps_loaded(void *arg, const PGresult *res, const char *err)
{
	struct router *r = arg;
	struct lc_daemon *d = r->d;
	json_t *profiles, *nums;
	struct route_conf *rc = NULL;
	char field[64], msg[512];

	r->syncing = 0;
	if (err || !d->conf->routing) {
		if (err)
			log_warn("loading the reps: %s", err);
		goto again;
	}
	profiles = json_object();
	nums = json_object();
	for (int i = 0; i < PQntuples(res); i++) {
		json_t *p = json_loads(PQgetvalue(res, i, 2), 0, NULL);

		json_object_set_new(nums, PQgetvalue(res, i, 0),
		    json_integer(strtoll(PQgetvalue(res, i, 1), NULL, 10)));
		if (p && json_is_object(p) && json_object_size(p))
			json_object_set_new(profiles, PQgetvalue(res, i, 0), p);
		else
			json_decref(p);
	}
	json_decref(r->nums);
	r->nums = nums;
	if (json_object_size(profiles) &&
	    !(rc = load_with(d, profiles, field, sizeof(field), msg,
	    sizeof(msg))))
		log_error("the reps kept in the database do not fit %s (%s): "
		    "routing with the file's reps only", d->conf->routing_path,
		    msg);
	json_decref(profiles);
	rconf_set(r, rconf_new(d, rc));
	write_strides(r);
	router_kick(r);
again:
	if (r->resync) {
		r->resync = 0;
		sync_reps(r);
	}
}

/* Make the rows of the file's reps, then load every rep's number and
 * profile and build the routing configuration from them. */
static void
sync_reps(struct router *r)
{
	const struct route_conf *rc = r->d->conf->routing;
	struct buf ids;
	const char *p[1];

	if (r->syncing) {
		r->resync = 1;
		return;
	}
	if (!rc) {
		rconf_set(r, NULL);
		return;
	}
	/* until the database answers: the file alone */
	if (!r->cur || r->cur->conf != r->d->conf)
		rconf_set(r, rconf_new(r->d, NULL));
	buf_init(&ids, 0);
	for (size_t i = 0; i < rc->nreps; i++)
		db_array_add(&ids, rc->reps[i].id);
	p[0] = db_array_end(&ids);
	r->syncing = 1;
	db_query(r->d->db, "INSERT INTO reps (id) SELECT unnest($1::text[]) "
	    "ON CONFLICT (id) DO NOTHING", 1, p, NULL, NULL);
	if (db_query(r->d->db, "SELECT id, num, profile FROM reps ORDER BY num",
	    0, NULL, on_reps_loaded, r) < 0)
		r->syncing = 0;
	buf_free(&ids);
}

void
router_conf_changed(struct router *r)
{
	if (r)
		sync_reps(r);
}

/* ---- notifications ------------------------------------------------------------ */

/* The lead as offer notifications and cards show it. */
static json_t *
lead_view(const json_t *lead)
{
	json_t *v = json_deep_copy(lead);
	const char *f = json_string_value(json_object_get(lead, "first_name"));
	const char *l = json_string_value(json_object_get(lead, "last_name"));
	const char *e = json_string_value(json_object_get(lead, "email"));
	char name[512];

	if (!v)
		return json_object();
	snprintf(name, sizeof(name), "%s%s%s", f ? f : "", f && l ? " " : "",
	    l ? l : "");
	json_object_set_new(v, "name", json_string(*name ? name :
	    e ? e : "(no name)"));
	return v;
}

struct notice {
	struct buf leads, emails, vars;
	int n;
	struct sms_batch sms;           /* texts to reps (sms.conf) */
};

static void
notice_init(struct notice *nt)
{
	buf_init(&nt->leads, 0);
	buf_init(&nt->emails, 0);
	buf_init(&nt->vars, 0);
	nt->n = 0;
	sms_batch_init(&nt->sms);
}

static void
notice_free(struct notice *nt)
{
	buf_free(&nt->leads);
	buf_free(&nt->emails);
	buf_free(&nt->vars);
	sms_batch_free(&nt->sms);
}

/*
 * Add the message about lead to rep (and a copy to its manager): kind
 * offer, broadcast, assigned or reengaged; offer > 0 gives the signed card
 * link; window_s the offer's window. By email to those whose notify has
 * email, by SMS (sms.conf) to those whose notify has sms and who have a
 * phone; a rep told by SMS only gets the email should the SMS fail.
 */
static void
notice_add(struct router *r, const struct route_conf *rc,
    struct notice *nt, const char *kind, size_t rep, long long offer,
    const json_t *lead, const struct route_team *team, long window_s)
{
	const struct route_rep *rp = &rc->reps[rep];
	size_t mgr = rp->manager != ROUTE_NONE ? rp->manager :
	    team ? team->manager : ROUTE_NONE;
	char tok[TOKEN_MAX], url[700] = "";
	json_t *v;
	char *s;

	if (offer > 0 && router_rep_num(r, rp->id) > 0) {
		token_sign(&r->d->url_key, 'r', (uint64_t)offer,
		    (uint64_t)router_rep_num(r, rp->id), tok);
		snprintf(url, sizeof(url), "%s/r/%s", r->d->conf->http.public_url,
		    tok);
	}
	for (int copy = 0; copy < 2; copy++) {
		const struct route_rep *to;
		int email, sms;

		if (copy && (mgr == ROUTE_NONE || mgr == rep))
			break;
		to = copy ? &rc->reps[mgr] : rp;
		email = (to->notify & ROUTE_NOTIFY_EMAIL) && *to->email;
		sms = (to->notify & ROUTE_NOTIFY_SMS) && *to->phone &&
		    r->d->conf->sms;
		if (!email && !sms)
			continue;
		v = json_pack("{s:s, s:b, s:{s:s, s:s}, s:{s:s, s:s}, s:o, "
		    "s:s, s:s, s:I, s:I}", "kind", kind, "copy", copy,
		    "rep", "id", rp->id, "name", rp->name,
		    "to", "id", to->id, "name", to->name,
		    "lead", lead_view(lead), "team", team ? team->name : "",
		    "card_url", copy ? "" : url, "window_minutes",
		    (json_int_t)((window_s + 59) / 60), "offer",
		    (json_int_t)offer);
		json_object_set_new(v, strcmp(kind, "broadcast") == 0 ?
		    "is_broadcast" : strcmp(kind, "offer") == 0 ? "is_offer" :
		    strcmp(kind, "assigned") == 0 ? "is_assigned" :
		    "is_reengaged", json_true());
		s = json_dumps(v, JSON_COMPACT);
		if (!s) {
			json_decref(v);
			continue;
		}
		if (email) {
			db_array_add(&nt->leads, NULL);
			db_array_add(&nt->emails, to->email);
			db_array_add(&nt->vars, s);
			nt->n++;
		}
		if (sms) {
			/* told by SMS only: the email waits for a failure */
			json_t *fb = !email && *to->email ? json_pack("{s:s, "
			    "s:O}", "email", to->email, "vars", v) : NULL;
			char *fbs = fb ? json_dumps(fb, JSON_COMPACT) : NULL;

			sms_batch_add_notice(r->d, &nt->sms, to->id, to->phone,
			    team ? team->name : NULL, v, offer,
			    (long long)json_integer_value(json_object_get(lead,
			    "id")), fbs);
			free(fbs);
			json_decref(fb);
		}
		json_decref(v);
		free(s);
	}
}

static void
on_notified(void *arg, int status, json_t *doc)
{
	(void)arg;
	if (status >= 300)
		log_warn("queuing a rep notification failed: %s",
		    json_string_value(json_object_get(json_object_get(doc,
		    "error"), "message")));
	json_decref(doc);
}

void
router_notify_owner(struct router *r, const char *rep, const char *kind,
    const json_t *lead)
{
	const struct route_conf *rc = router_conf(r);
	const struct route_team *team;
	struct notice nt;
	size_t i;

	if (!rc || (i = route_rep_find(rc, rep)) == ROUTE_NONE)
		return;
	team = route_team_find(rc, json_string_value(json_object_get(lead,
	    "team")) ? json_string_value(json_object_get(lead, "team")) : "");
	notice_init(&nt);
	notice_add(r, rc, &nt, kind, i, 0, lead, team, 0);
	if (nt.n)
		sender_notify(r->d->sender, "offer", db_array_end(&nt.leads),
		    db_array_end(&nt.emails), db_array_end(&nt.vars),
		    on_notified, NULL);
	sms_batch_queue(r->d, &nt.sms);
	notice_free(&nt);
}

/* ---- the routing transaction ---------------------------------------------- */

struct decided_offer {
	size_t lead;                    /* index in tx->leads */
	size_t rep;
	int broadcast;
};

struct tx {
	struct router *r;
	struct rconf *c;
	struct route_rep_state *st;     /* by rep index of c->rc */
	int waiting;                    /* phase 1 answers to come */
	int failed;
	char err[300];
	json_t *leads;                  /* claimed rows, as JSON objects */
	json_t *offers;                 /* per lead: its offers this round */
	struct decided_offer *dec;
	size_t ndec;
	struct notice nt;
	int deferred;                   /* leads left for the next round */
	int noffers, nassigned, nqueued, nbroadcast;
};

static void tx_end(struct tx *t, int ok);
static void route_now(struct router *r);

static void
tx_fail(struct tx *t, const char *what, const char *err)
{
	if (!t->failed)
		snprintf(t->err, sizeof(t->err), "%s: %s", what, err);
	t->failed = 1;
}

static void
on_rollback(void *arg, const PGresult *res, const char *err)
{
	(void)res;
	(void)err;
	tx_end(arg, 0);
}

static void
tx_abort(struct tx *t)
{
	log_warn("routing: %s (rolled back; retrying)", t->err);
	if (db_query(t->r->db, "ROLLBACK", 0, NULL, on_rollback, t) < 0)
		tx_end(t, 0);
}

static void
on_commit(void *arg, const PGresult *res, const char *err)
{
	struct tx *t = arg;

	(void)res;
	if (err || t->failed) {
		/* a statement before it failed: the COMMIT was a rollback */
		log_warn("routing: %s (rolled back; retrying)", err ?
		    err : t->err);
		tx_end(t, 0);
		return;
	}
	tx_end(t, 1);
}

static void
on_tx_step(void *arg, const PGresult *res, const char *err)
{
	struct tx *t = arg;

	(void)res;
	if (err)
		tx_fail(t, "queuing notifications", err);
}

static void
tx_finish(struct tx *t)
{
	const char *p[3];

	if (t->failed) {
		tx_abort(t);
		return;
	}
	if (t->nt.n) {
		p[0] = db_array_end(&t->nt.leads);
		p[1] = db_array_end(&t->nt.emails);
		p[2] = db_array_end(&t->nt.vars);
		db_query(t->r->db, "SELECT leadcast_notify('offer', "
		    "$1::bigint[], $2::text[], $3::jsonb[])", 3, p, on_tx_step, t);
		db_query(t->r->db, "SELECT pg_notify('leadcast_wake', "
		    "'deliveries')", 0, NULL, on_tx_step, t);
	}
	if (t->nt.sms.n) {
		const char *sp[SMS_BATCH_COLS];

		/* texts, and the offers' codes, in the same transaction */
		sms_batch_params(&t->nt.sms, sp);
		db_query(t->r->db, sms_queue_sql, SMS_BATCH_COLS, sp,
		    on_tx_step, t);
	}
	if (db_query(t->r->db, "COMMIT", 0, NULL, on_commit, t) < 0)
		tx_end(t, 0);
}

static json_t *
lead_at(const struct tx *t, size_t i)
{
	return json_array_get(t->leads, i);
}

/* The write's answer: the notices were made with the decisions. */
static void
on_written(void *arg, const PGresult *res, const char *err)
{
	(void)res;
	if (err)
		tx_fail(arg, "writing decisions", err);
}

static const char write_sql[] =
    "WITH r AS (UPDATE reps SET pass = x.pass, away = x.away, "
    "updated_at = now() FROM unnest($1::text[], $2::float8[], $3::bool[]) "
    "AS x(id, pass, away) WHERE reps.id = x.id RETURNING 1), "
    "l AS (UPDATE leads SET route_at = NULL, route_team = NULL, "
    "status = coalesce(x.status, leads.status), "
    "status_at = CASE WHEN x.status <> leads.status THEN now() "
    "ELSE leads.status_at END, "
    "owner = coalesce(x.owner, leads.owner), "
    "assigned_at = CASE WHEN x.owner IS NOT NULL THEN now() "
    "ELSE leads.assigned_at END, "
    "team = CASE WHEN x.status IS NULL THEN leads.team ELSE x.team END, "
    "rule = CASE WHEN x.status IS NULL THEN leads.rule ELSE x.rule END, "
    "queue = x.queue, "
    "queued_at = CASE WHEN x.queue IS NOT NULL THEN now() END, "
    "priority = coalesce(x.priority, leads.priority), updated_at = now() "
    "FROM unnest($4::bigint[], $5::text[], $6::text[], $7::text[], "
    "$8::text[], $9::text[], $10::int[]) AS x(id, status, owner, team, "
    "rule, queue, priority) WHERE leads.id = x.id RETURNING 1), "
    "o AS (INSERT INTO offers (id, lead_id, rep_id, team, rule, round, "
    "kind, deadline) SELECT x.id, x.lead, x.rep, x.team, x.rule, x.round, "
    "x.kind, now() + x.win * interval '1 millisecond' FROM "
    "unnest($21::bigint[], $11::bigint[], $12::text[], $13::text[], "
    "$14::bigint[], $15::text[], $16::text[], $17::int[]) AS x(id, lead, "
    "rep, kind, win, team, rule, round) "
    "RETURNING id, lead_id, rep_id, kind, team), "
    "oe AS (INSERT INTO events (type, lead_id, data) SELECT 'offered', "
    "o.lead_id, jsonb_build_object('offer', o.id, 'rep', o.rep_id, 'kind', "
    "o.kind, 'team', o.team) FROM o), "
    "e AS (INSERT INTO events (type, lead_id, data) SELECT x.type, x.lead, "
    "x.data FROM unnest($18::bigint[], $19::text[], $20::jsonb[]) AS "
    "x(lead, type, data)) "
    "SELECT count(*) FROM o";

enum { W_REP_ID, W_REP_PASS, W_REP_AWAY, W_LEAD, W_STATUS, W_OWNER, W_TEAM,
	W_RULE, W_QUEUE, W_PRIO, W_O_LEAD, W_O_REP, W_O_KIND, W_O_WIN, W_O_TEAM,
	W_O_RULE, W_O_ROUND, W_E_LEAD, W_E_TYPE, W_E_DATA, W_O_ID, W_N };

struct writes {
	struct buf a[W_N];
};

static void
w_add(struct writes *w, int col, const char *v)
{
	db_array_add(&w->a[col], v);
}

static void
w_addi(struct writes *w, int col, long long v)
{
	char s[32];

	snprintf(s, sizeof(s), "%lld", v);
	db_array_add(&w->a[col], s);
}

static void
w_event(struct writes *w, long long lead, const char *type, json_t *data)
{
	char *s = json_dumps(data, JSON_COMPACT);

	w_addi(w, W_E_LEAD, lead);
	w_add(w, W_E_TYPE, type);
	w_add(w, W_E_DATA, s ? s : "{}");
	free(s);
	json_decref(data);
}

static const char *
jstr(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

/* Decide lead i; add what to write. */
static void
decide(struct tx *t, size_t i, time_t now, struct writes *w)
{
	const struct route_conf *rc = t->c->rc;
	json_t *lead = lead_at(t, i), *offers = json_array_get(t->offers, i);
	long long id = json_integer_value(json_object_get(lead, "id"));
	int round = (int)json_integer_value(json_object_get(lead, "round"));
	const char *status = jstr(lead, "status"), *want = jstr(lead,
	    "route_team");
	const struct route_team *team = NULL;
	const struct route_rule *rule = NULL;
	struct route_result res;
	struct route_history hist = { NULL, 0, 0 };
	size_t *declined, *set, nmembers;
	struct cond_env env = { now, NULL };
	json_t *o;
	size_t k;
	int pending = 0, bc_any = 0, bc_won = 0;
	char win[32];

	json_array_foreach(offers, k, o)
		pending |= strcmp(jstr(o, "status"), "pending") == 0;
	if (jstr(lead, "owner") || pending || (strcmp(status, "routing") != 0 &&
	    strcmp(status, "offered") != 0 && strcmp(status, "recycled") != 0 &&
	    strcmp(status, "new") != 0)) {
		/* owned, answered elsewhere, or waiting for an answer */
		w_addi(w, W_LEAD, id);
		for (int c = W_STATUS; c <= W_PRIO; c++)
			w_add(w, c, NULL);
		return;
	}
	if (want && (team = route_team_find(rc, want)) == NULL)
		log_warn("lead %lld: team %s is gone: routing by the rules", id,
		    want);
	if (!team && jstr(lead, "team") && json_array_size(offers)) {
		/* the chain of this round goes on in its team */
		team = route_team_find(rc, jstr(lead, "team"));
		rule = jstr(lead, "rule") ? route_rule_find(rc, jstr(lead,
		    "rule")) : NULL;
	}
	if (!team) {
		rule = route_match(rc, lead, &env);
		team = rule->team;
	}
	nmembers = team->nmembers ? team->nmembers : 1;
	if (t->r->nids - t->r->idhead < nmembers) {
		/* too few offer ids left for a broadcast to the whole team:
		 * the lead stays due, for the next transaction */
		t->deferred = 1;
		return;
	}
	declined = calloc(json_array_size(offers) + 1, sizeof(*declined));
	set = calloc(nmembers, sizeof(*set));
	if (!declined || !set) {
		free(declined);
		free(set);
		tx_fail(t, "routing", "out of memory");
		w_addi(w, W_LEAD, id);
		for (int c = W_STATUS; c <= W_PRIO; c++)
			w_add(w, c, NULL);
		return;
	}
	hist.declined = declined;
	json_array_foreach(offers, k, o) {
		size_t rep;

		if (strcmp(jstr(o, "team"), team->name) != 0)
			continue;
		if (strcmp(jstr(o, "kind"), "broadcast") == 0) {
			bc_any = 1;
			bc_won |= strcmp(jstr(o, "status"), "accepted") == 0;
		} else if ((strcmp(jstr(o, "status"), "rejected") == 0 ||
		    strcmp(jstr(o, "status"), "expired") == 0) &&
		    (rep = route_rep_find(rc, jstr(o, "rep"))) != ROUTE_NONE) {
			declined[hist.ndeclined++] = rep;
		}
	}
	hist.broadcast_done = bc_any && !bc_won;
	memset(&res, 0, sizeof(res));
	res.set = set;
	res.setcap = nmembers;
	route_pick(rc, team, rule, lead, t->st, &hist, now, &res);

	w_addi(w, W_LEAD, id);
	w_add(w, W_TEAM, team->name);
	w_add(w, W_RULE, rule ? rule->name : NULL);
	w_addi(w, W_PRIO, rule ? rule->priority : 50);
	snprintf(win, sizeof(win), "%ld", team->offer_window_ms);
	json_object_set_new(lead, "team", json_string(team->name));
	switch (res.action) {
	case ROUTE_OFFER_ONE:
	case ROUTE_OFFER_ALL:
		w_add(w, W_STATUS, "offered");
		w_add(w, W_OWNER, NULL);
		w_add(w, W_QUEUE, NULL);
		for (size_t j = 0; j < (res.action == ROUTE_OFFER_ONE ? 1 :
		    res.nset); j++) {
			size_t rep = res.action == ROUTE_OFFER_ONE ? res.rep :
			    res.set[j];
			long long oid = t->r->ids[t->r->idhead++];

			w_addi(w, W_O_ID, oid);
			w_addi(w, W_O_LEAD, id);
			w_add(w, W_O_REP, rc->reps[rep].id);
			w_add(w, W_O_KIND, res.action == ROUTE_OFFER_ONE ?
			    "single" : "broadcast");
			w_add(w, W_O_WIN, win);
			w_add(w, W_O_TEAM, team->name);
			w_add(w, W_O_RULE, rule ? rule->name : NULL);
			w_addi(w, W_O_ROUND, round);
			notice_add(t->r, rc, &t->nt, res.action ==
			    ROUTE_OFFER_ONE ? "offer" : "broadcast", rep, oid,
			    lead, team, team->offer_window_ms / 1000);
		}
		if (res.action == ROUTE_OFFER_ONE)
			t->noffers++;
		else
			t->nbroadcast++;
		w_event(w, id, "routed", json_pack("{s:s, s:s?, s:s}", "team",
		    team->name, "rule", rule ? rule->name : NULL, "action",
		    res.action == ROUTE_OFFER_ONE ? "offer" : "broadcast"));
		break;
	case ROUTE_ASSIGN:
		w_add(w, W_STATUS, "assigned");
		w_add(w, W_OWNER, rc->reps[res.rep].id);
		w_add(w, W_QUEUE, NULL);
		w_event(w, id, "assigned", json_pack("{s:s, s:s, s:s}", "rep",
		    rc->reps[res.rep].id, "by", "catch_all", "team",
		    team->name));
		json_object_set_new(lead, "owner",
		    json_string(rc->reps[res.rep].id));
		notice_add(t->r, rc, &t->nt, "assigned", res.rep, 0, lead, team,
		    0);
		t->nassigned++;
		break;
	case ROUTE_QUEUE:
		w_add(w, W_STATUS, "routing");
		w_add(w, W_OWNER, NULL);
		w_add(w, W_QUEUE, team->name);
		w_event(w, id, "queued", json_pack("{s:s, s:s?, s:s}", "team",
		    team->name, "rule", rule ? rule->name : NULL, "method",
		    route_method_name(team->method)));
		t->nqueued++;
		break;
	}
	free(declined);
	free(set);
}

static void
tx_decide(struct tx *t)
{
	const struct route_conf *rc = t->c->rc;
	struct writes w;
	const char *p[W_N];
	time_t now = time(NULL);

	if (t->failed) {
		tx_abort(t);
		return;
	}
	for (int c = 0; c < W_N; c++)
		buf_init(&w.a[c], 0);
	for (size_t i = 0; i < json_array_size(t->leads); i++)
		decide(t, i, now, &w);
	for (size_t i = 0; i < rc->nreps; i++) {
		char pass[40];

		if (!t->st[i].changed)
			continue;
		snprintf(pass, sizeof(pass), "%.17g", t->st[i].pass);
		w_add(&w, W_REP_ID, rc->reps[i].id);
		w_add(&w, W_REP_PASS, pass);
		w_add(&w, W_REP_AWAY, t->st[i].away ? "t" : "f");
	}
	for (int c = 0; c < W_N; c++)
		p[c] = db_array_end(&w.a[c]);
	/* the write, the notifications and the COMMIT in one round trip:
	 * should the write fail, the statements after it fail too and the
	 * COMMIT rolls back (on_commit) */
	if (db_query(t->r->db, write_sql, W_N, p, on_written, t) < 0) {
		tx_fail(t, "routing", "the database queue is full");
		tx_abort(t);
	} else {
		tx_finish(t);
	}
	for (int c = 0; c < W_N; c++)
		buf_free(&w.a[c]);
}

static void
phase1_done(struct tx *t)
{
	if (--t->waiting == 0)
		tx_decide(t);
}

static void
on_begin(void *arg, const PGresult *res, const char *err)
{
	(void)res;
	if (err)
		tx_fail(arg, "begin", err);
	phase1_done(arg);
}

static void
on_rep_rows(void *arg, const PGresult *res, const char *err)
{
	struct tx *t = arg;
	const struct route_conf *rc = t->c->rc;

	if (err) {
		tx_fail(t, "locking the reps", err);
	} else {
		for (int i = 0; i < PQntuples(res); i++) {
			size_t k = route_rep_find(rc, PQgetvalue(res, i, 0));

			if (k == ROUTE_NONE)
				continue;
			t->st[k].pass = strtod(PQgetvalue(res, i, 1), NULL);
			t->st[k].away = *PQgetvalue(res, i, 2) == 't';
			t->st[k].on_duty = *PQgetvalue(res, i, 3) == 't';
			t->st[k].open = atoi(PQgetvalue(res, i, 4));
		}
	}
	phase1_done(t);
}

/* Offer ids from the sequence, reserved ahead: the offers' card links and
 * SMS codes are made with the decisions, so that the write, the
 * notifications and the COMMIT go in one round trip. A reservation is
 * not transactional: ids of a transaction that rolled back are skipped. */
static void
on_ids(void *arg, const PGresult *res, const char *err)
{
	struct tx *t = arg;
	struct router *r = t->r;
	size_t n, left;

	if (err) {
		tx_fail(t, "reserving offer ids", err);
	} else {
		n = (size_t)PQntuples(res);
		left = r->nids - r->idhead;
		if (left)       /* r->ids is NULL before the first */
			memmove(r->ids, r->ids + r->idhead, left *
			    sizeof(*r->ids));
		r->idhead = 0;
		r->nids = left;
		if (left + n > r->idcap) {
			long long *g = realloc(r->ids, (left + n) *
			    sizeof(*g));

			if (!g) {
				tx_fail(t, "reserving offer ids",
				    "out of memory");
				phase1_done(t);
				return;
			}
			r->ids = g;
			r->idcap = left + n;
		}
		for (size_t i = 0; i < n; i++)
			r->ids[r->nids++] = strtoll(PQgetvalue(res, (int)i, 0),
			    NULL, 10);
	}
	phase1_done(t);
}

static void
on_lead_rows(void *arg, const PGresult *res, const char *err)
{
	struct tx *t = arg;

	if (err) {
		tx_fail(t, "claiming leads", err);
	} else {
		for (int i = 0; i < PQntuples(res); i++) {
			json_t *l = json_loads(PQgetvalue(res, i, 0), 0, NULL);
			json_t *o = json_loads(PQgetvalue(res, i, 1), 0, NULL);

			if (!l || !o) {
				json_decref(l);
				json_decref(o);
				tx_fail(t, "claiming leads", "bad row");
				continue;
			}
			json_array_append_new(t->leads, l);
			json_array_append_new(t->offers, o);
		}
	}
	phase1_done(t);
}

/* Reps (locked, in id order, so that every node locks them alike) with
 * their open leads: owned and not closed, plus single offers pending;
 * counted only for the reps that have a capacity ($1), the others have
 * no use for it. */
static const char reps_sql[] =
    "SELECT r.id, r.pass, r.away, r.on_duty, CASE WHEN r.id = ANY($1::text[]) "
    "THEN (SELECT count(*) FROM leads l WHERE l.owner = r.id AND l.status IN "
    "('assigned', 'contacted', 'qualified')) + "
    "(SELECT count(*) FROM offers o WHERE o.rep_id = r.id AND "
    "o.status = 'pending' AND o.kind = 'single') ELSE 0 END "
    "FROM reps r ORDER BY r.id FOR UPDATE OF r";

static const char claim_sql[] =
    "SELECT to_jsonb(l), (SELECT coalesce(jsonb_agg(jsonb_build_object("
    "'rep', o.rep_id, 'team', o.team, 'kind', o.kind, 'status', o.status) "
    "ORDER BY o.id), '[]') FROM offers o WHERE o.lead_id = l.id AND "
    "o.round = l.round) FROM leads l WHERE l.route_at <= now() "
    "ORDER BY l.route_at LIMIT 50 FOR UPDATE OF l SKIP LOCKED";
_Static_assert(ROUTE_BATCH == 50, "claim_sql's LIMIT is ROUTE_BATCH");

static void
route_now(struct router *r)
{
	struct tx *t;
	const struct route_conf *rc;
	struct buf capped;
	const char *p[1];
	size_t want;

	if (r->tx_running || !r->cur || r->d->stopping ||
	    db_state(r->db) != DB_READY)
		return;
	rc = r->cur->rc;
	if (!(t = calloc(1, sizeof(*t))) ||
	    !(t->st = calloc(rc->nreps + 1, sizeof(*t->st))) ||
	    !(t->leads = json_array()) || !(t->offers = json_array())) {
		if (t) {
			free(t->st);
			json_decref(t->leads);
			free(t);
		}
		return;
	}
	for (size_t i = 0; i < rc->nreps; i++)
		route_state_init(&t->st[i]);
	t->r = r;
	t->c = r->cur;
	t->c->refs++;
	notice_init(&t->nt);
	r->tx_running = 1;
	r->kicked = 0;
	t->waiting = 3;
	buf_init(&capped, 0);
	for (size_t i = 0; i < rc->nreps; i++)
		if (rc->reps[i].capacity > 0)
			db_array_add(&capped, rc->reps[i].id);
	p[0] = db_array_end(&capped);
	db_query(r->db, "BEGIN", 0, NULL, on_begin, t);
	db_query(r->db, reps_sql, 1, p, on_rep_rows, t);
	buf_free(&capped);
	db_query(r->db, claim_sql, 0, NULL, on_lead_rows, t);
	/* enough ids for a batch of single offers and a broadcast to the
	 * largest team (a lead that finds too few waits for the next
	 * transaction, which reserves more) */
	want = ROUTE_BATCH;
	for (size_t i = 0, m = 0; i < rc->nteams; i++)
		if ((m = rc->teams[i].nmembers) > want - ROUTE_BATCH)
			want = ROUTE_BATCH + m;
	if (r->nids - r->idhead < want) {
		char n[32];
		const char *ip[1] = { n };

		snprintf(n, sizeof(n), "%zu", 4 * want);
		t->waiting++;
		db_query(r->db, "SELECT nextval(pg_get_serial_sequence('offers', "
		    "'id')) FROM generate_series(1, $1::int)", 1, ip, on_ids,
		    t);
	}
}

static void
tx_end(struct tx *t, int ok)
{
	struct router *r = t->r;
	size_t n = json_array_size(t->leads);
	int deferred = t->deferred;

	if (ok) {
		metric_add(r->m_offer, t->noffers);
		metric_add(r->m_broadcast, t->nbroadcast);
		metric_add(r->m_assign, t->nassigned);
		metric_add(r->m_queue, t->nqueued);
		if (t->nt.n)
			sender_kick(r->d->sender);
		if (n)
			log_debug("routed %zu leads: %d offers, %d broadcasts, "
			    "%d assigned, %d queued", n, t->noffers,
			    t->nbroadcast, t->nassigned, t->nqueued);
	} else {
		struct timeval one = { 1, 0 };

		metric_add(r->m_tx_fail, 1);
		event_add(r->ev_retry, &one);
	}
	rconf_unref(t->c);
	free(t->st);
	json_decref(t->leads);
	json_decref(t->offers);
	notice_free(&t->nt);
	free(t);
	r->tx_running = 0;
	/* a full batch may leave more due; a kick may have come meanwhile */
	if (ok && (n == ROUTE_BATCH || r->kicked || deferred))
		route_now(r);
}

void
router_kick(struct router *r)
{
	if (!r)
		return;
	r->kicked = 1;
	route_now(r);
}

int
router_idle(const struct router *r)
{
	return !r || (!r->tx_running && !r->expiring && !r->sweeping &&
	    !r->probing);
}

static void
on_retry(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	router_kick(arg);
}

/* ---- expiry and the sweeper ------------------------------------------------- */

static void
on_expired(void *arg, const PGresult *res, const char *err)
{
	struct router *r = arg;
	long long n;

	r->expiring = 0;
	if (err) {
		log_warn("expiring offers: %s", err);
		return;
	}
	if ((n = strtoll(PQgetvalue(res, 0, 0), NULL, 10)) > 0) {
		metric_add(r->m_expired, n);
		log_debug("%lld offers expired", n);
		router_kick(r);
	}
}

/* Offers past their deadline expire; a lead left with no pending offer
 * is due for routing again (the next rep, a broadcast, the catch-all). */
static const char expire_sql[] =
    "WITH e AS (UPDATE offers SET status = 'expired', answered_at = now() "
    "WHERE id IN (SELECT id FROM offers WHERE status = 'pending' AND "
    "deadline <= now() ORDER BY deadline LIMIT 500 FOR UPDATE SKIP LOCKED) "
    "RETURNING id, lead_id, rep_id, kind), "
    "ev AS (INSERT INTO events (type, lead_id, data) SELECT 'expired', "
    "lead_id, jsonb_build_object('offer', id, 'rep', rep_id, 'kind', kind) "
    "FROM e), "
    "l AS (UPDATE leads SET route_at = now() WHERE id IN (SELECT lead_id "
    "FROM e) AND owner IS NULL AND NOT EXISTS (SELECT 1 FROM offers o "
    "WHERE o.lead_id = leads.id AND o.status = 'pending' AND o.id NOT IN "
    "(SELECT id FROM e)) RETURNING 1) "
    "SELECT count(*) FROM e";

static void
on_swept(void *arg, const PGresult *res, const char *err)
{
	struct router *r = arg;
	long long n;

	r->sweeping = 0;
	if (err) {
		log_warn("sweeping leads: %s", err);
		return;
	}
	/* where the next sweep goes on; after the last candidate, over */
	r->sweep_cursor = PQgetisnull(res, 0, 1) ? 0 :
	    strtoll(PQgetvalue(res, 0, 1), NULL, 10);
	if ((n = strtoll(PQgetvalue(res, 0, 0), NULL, 10)) > 0) {
		metric_add(r->m_swept, n);
		log_warn("sweeper: %lld leads had neither an owner nor a "
		    "deadline: routing them", n);
		router_kick(r);
	}
}

/* A lead in routing with nobody, no queue, no pending offer and nothing
 * due, for longer than a routing takes: make it due. Each sweep walks the
 * next SWEEP_ROWS of such candidates from a cursor (the partial index
 * leads_unowned), so its cost stays flat however many leads are out on
 * offer; after the last it starts over. */
static const char sweep_sql[] =
    "WITH c AS (SELECT l.id, l.route_at IS NULL AND l.queue IS NULL AND "
    "l.updated_at < now() - interval '5 seconds' AND NOT EXISTS (SELECT 1 "
    "FROM offers o WHERE o.lead_id = l.id AND o.status = 'pending') AS stray "
    "FROM leads l WHERE l.id > $1::bigint AND l.owner IS NULL AND l.status "
    "IN ('routing', 'offered', 'recycled') ORDER BY l.id LIMIT 2000), "
    /* the strays by their ids (index probes, whatever the estimates),
     * checked again under their row locks */
    "s AS (UPDATE leads SET route_at = now() WHERE id IN (SELECT l.id FROM "
    "leads l WHERE l.id = ANY(ARRAY(SELECT id FROM c WHERE stray)) AND "
    "l.owner IS NULL AND l.route_at IS NULL AND l.queue IS NULL AND "
    "l.status IN ('routing', 'offered', 'recycled') AND NOT EXISTS (SELECT "
    "1 FROM offers o WHERE o.lead_id = l.id AND o.status = 'pending') "
    "FOR UPDATE OF l SKIP LOCKED) RETURNING 1) "
    "SELECT (SELECT count(*) FROM s), (SELECT max(id) FROM c)";

static void
on_probe(void *arg, const PGresult *res, const char *err)
{
	struct router *r = arg;

	r->probing = 0;
	if (!err && PQntuples(res) > 0)
		router_kick(r);
}

static void
on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct router *r = arg;
	time_t now = time(NULL);

	(void)fd;
	(void)what;
	if (!r->cur || db_state(r->d->db) != DB_READY || r->d->stopping)
		return;
	if (!r->expiring && db_query(daemon_db(r->d), expire_sql, 0, NULL,
	    on_expired, r) == 0)
		r->expiring = 1;
	if (!r->sweeping && now - r->last_sweep >= SWEEP_S) {
		char cur[32];
		const char *p[1] = { cur };

		snprintf(cur, sizeof(cur), "%lld", r->sweep_cursor);
		if (db_query(daemon_db(r->d), sweep_sql, 1, p, on_swept, r) == 0) {
			r->sweeping = 1;
			r->last_sweep = now;
		}
	}
	/* kicks that found the session busy or down; and once a second, a
	 * look for leads other nodes made due (cheap: the lock-taking
	 * transaction runs only when there are some) */
	if (r->kicked)
		route_now(r);
	else if (now != r->last_route && !r->probing && db_query(r->d->db,
	    "SELECT 1 FROM leads WHERE route_at <= now() LIMIT 1", 0, NULL,
	    on_probe, r) == 0) {
		r->last_route = now;
		r->probing = 1;
	}
}

/* ---- answers to offers ----------------------------------------------------- */

struct answer {
	struct router *r;
	struct httpd_req *req;
	int accept;
	int card;                       /* answer with a page, not JSON */
	long long offer;
	char rep[ROUTE_NAME_MAX + 1];   /* the card's rep; "" = admin */
	char tok[TOKEN_MAX];            /* the card's token */
	router_answer_fn *cb;           /* router_answer: no HTTP request */
	void *cbarg;
};

/*
 * One statement per answer. Accept takes the lead only while nobody owns
 * it (a concurrent accept waits for the lead row, then finds it owned:
 * one winner), withdraws the lead's other pending offers, and charges a
 * broadcast winner's pass (reps.stride: 1/weight, kept by sync_reps). Reject makes the lead due when
 * it was the last pending offer. Both answer 'gone' for an offer that is
 * not pending or past its deadline (the expiry may not have run yet).
 * (The parts of one statement see the rows as they were before it: what
 * the statement did is read from the RETURNING of its CTEs.)
 */
static const char accept_sql[] =
    "WITH o AS (SELECT id, lead_id, rep_id, kind FROM offers WHERE id = $1 "
    "AND status = 'pending' AND deadline > now() AND ($2 = '' OR rep_id = "
    "$2) FOR UPDATE), "
    "l AS (UPDATE leads SET owner = o.rep_id, status = 'assigned', "
    "assigned_at = now(), status_at = now(), queue = NULL, route_at = NULL, "
    "route_team = NULL, updated_at = now() FROM o WHERE leads.id = "
    "o.lead_id AND leads.owner IS NULL RETURNING leads.*), "
    "a AS (UPDATE offers SET status = CASE WHEN offers.id = $1 THEN "
    "'accepted' ELSE 'withdrawn' END, answered_at = now() FROM l WHERE "
    "offers.lead_id = l.id AND offers.status = 'pending' "
    "RETURNING offers.id, offers.status), "
    "p AS (UPDATE reps SET pass = pass + stride, updated_at = now() "
    "FROM o, l WHERE reps.id = o.rep_id AND o.kind = 'broadcast' "
    "RETURNING 1), "
    "e AS (INSERT INTO events (type, lead_id, data) SELECT 'accepted', "
    "l.id, jsonb_build_object('offer', o.id, 'rep', o.rep_id, 'kind', "
    "o.kind) FROM o, l) "
    "SELECT (SELECT to_jsonb(l) FROM l), coalesce((SELECT status FROM a "
    "WHERE id = $1), (SELECT status FROM offers WHERE id = $1)), "
    "(SELECT rep_id FROM offers WHERE id = $1)";

static const char reject_sql[] =
    "WITH o AS (SELECT id, lead_id, rep_id, kind FROM offers WHERE id = $1 "
    "AND status = 'pending' AND deadline > now() AND ($2 = '' OR rep_id = "
    "$2) FOR UPDATE), "
    "u AS (UPDATE offers SET status = 'rejected', answered_at = now() FROM "
    "o WHERE offers.id = o.id RETURNING offers.lead_id), "
    "e AS (INSERT INTO events (type, lead_id, data) SELECT 'rejected', "
    "o.lead_id, jsonb_build_object('offer', o.id, 'rep', o.rep_id, 'kind', "
    "o.kind) FROM o), "
    "l AS (UPDATE leads SET route_at = now(), updated_at = now() FROM u "
    "WHERE leads.id = u.lead_id AND leads.owner IS NULL AND NOT EXISTS "
    "(SELECT 1 FROM offers x WHERE x.lead_id = leads.id AND x.status = "
    "'pending' AND x.id <> $1) RETURNING leads.*) "
    "SELECT (SELECT to_jsonb(leads) FROM leads, u WHERE leads.id = "
    "u.lead_id), coalesce((SELECT 'rejected' FROM u), (SELECT status FROM "
    "offers WHERE id = $1)), (SELECT rep_id FROM offers WHERE id = $1), "
    "(SELECT count(*) FROM l)";

/*
 * The outcome of an answer's statement, as router_answer_fn documents it;
 * *lead the lead's row when this answer changed it (caller owns). Counts
 * the answer and wakes the router when a reject made the lead due.
 */
static const char *
answer_outcome(struct answer *a, const PGresult *res, const char *err,
    json_t **lead)
{
	const char *status = NULL, *outcome;

	*lead = NULL;
	if (!err) {
		status = PQgetisnull(res, 0, 1) ? NULL : PQgetvalue(res, 0, 1);
		*lead = PQgetisnull(res, 0, 0) ? NULL : json_loads(
		    PQgetvalue(res, 0, 0), 0, NULL);
	}
	if (err)
		outcome = "error";
	else if (!status || (*a->rep && strcmp(PQgetvalue(res, 0, 2), a->rep)))
		outcome = "unknown";
	else if (strcmp(status, "pending") == 0)
		outcome = "expired";
	else if (*lead && strcmp(status, a->accept ? "accepted" : "rejected")
	    == 0)
		outcome = a->accept ? "accepted" : "rejected";  /* done now */
	else if (strcmp(status, "accepted") == 0)
		outcome = "already_accepted";
	else if (strcmp(status, "rejected") == 0)
		outcome = "already_rejected";
	else if (strcmp(status, "expired") == 0)
		outcome = "expired";
	else
		outcome = "withdrawn";          /* another rep took the lead */
	if (strcmp(outcome, "accepted") == 0 || strcmp(outcome, "rejected")
	    == 0) {
		metric_add(a->accept ? a->r->m_accepted : a->r->m_rejected, 1);
		if (!a->accept && strtoll(PQgetvalue(res, 0, 3), NULL, 10) > 0)
			router_kick(a->r);
	}
	return outcome;
}

static void
on_answered(void *arg, const PGresult *res, const char *err)
{
	struct answer *a = arg;
	const char *outcome;
	json_t *lead;

	outcome = answer_outcome(a, res, err, &lead);
	if (a->cb) {
		a->cb(a->cbarg, outcome, lead);
	} else if (a->card) {
		/* the card again, saying what happened */
		if (strcmp(outcome, "unknown") == 0)
			daemon_page(a->r->d, a->req, 404, "web/invalid",
			    json_object());
		else
			pages_card(a->r->d, a->req, a->tok, a->offer, a->rep,
			    router_rep_num(a->r, a->rep), outcome);
	} else if (strcmp(outcome, "error") == 0) {
		httpd_reply_error(a->req, 503, NULL, err);
	} else if (strcmp(outcome, "unknown") == 0) {
		httpd_reply_error(a->req, 404, "id", "no such offer");
	} else if (!lead) {
		httpd_reply_error(a->req, 409, "id", strcmp(outcome, "expired")
		    == 0 ? "the offer's window has closed" : "the offer is no "
		    "longer open (it was answered, expired or withdrawn)");
	} else {
		httpd_reply_json(a->req, 200, json_pack("{s:{s:I, s:s, s:s}, "
		    "s:O}", "offer", "id", (json_int_t)a->offer, "status",
		    PQgetvalue(res, 0, 1), "rep", PQgetvalue(res, 0, 2), "lead",
		    lead));
	}
	json_decref(lead);
	free(a);
}

/* Answer offer as rep ("" = admin). Takes a. */
static void
answer(struct answer *a)
{
	char id[32];
	const char *p[2] = { id, a->rep };

	snprintf(id, sizeof(id), "%lld", a->offer);
	if (db_query(daemon_db(a->r->d), a->accept ? accept_sql : reject_sql, 2,
	    p, on_answered, a) < 0) {
		if (a->card)
			daemon_page(a->r->d, a->req, 503, "web/invalid",
			    json_pack("{s:b}", "busy", 1));
		else
			httpd_reply_error(a->req, 503, NULL, "the database "
			    "queue is full");
		free(a);
	}
}

int
router_answer(struct router *r, long long offer, const char *rep,
    int accept, router_answer_fn *cb, void *arg)
{
	struct answer *a = calloc(1, sizeof(*a));
	char id[32];
	const char *p[2];

	if (!a)
		return -1;
	a->r = r;
	a->offer = offer;
	a->accept = accept;
	a->cb = cb;
	a->cbarg = arg;
	snprintf(a->rep, sizeof(a->rep), "%s", rep ? rep : "");
	snprintf(id, sizeof(id), "%lld", offer);
	p[0] = id;
	p[1] = a->rep;
	if (db_query(r->d->db, accept ? accept_sql : reject_sql, 2, p,
	    on_answered, a) < 0) {
		free(a);
		return -1;
	}
	return 0;
}

/* ---- the rep's lead card: /r/{token} ------------------------------------------ */

const char *
router_rep_of_num(const struct router *r, long long num)
{
	const char *id;
	json_t *v;

	json_object_foreach(r->nums, id, v)
		if (json_integer_value(v) == num)
			return id;
	return NULL;
}

/* GET /r/{token}: the card; POST /r/{token}/accept|reject: the answer. */
static void
card(struct httpd_req *req, void *arg)
{
	struct router *r = arg;
	struct answer *a;
	const char *tail = req->tail, *slash = strchr(tail, '/'), *rep;
	size_t len = slash ? (size_t)(slash - tail) : strlen(tail);
	uint64_t offer, num;
	int post = evhttp_request_get_command(req->req) == EVHTTP_REQ_POST;

	if (len >= TOKEN_MAX || token_verify(&r->d->url_key, 'r', tail, len,
	    &offer, &num) < 0 || !(rep = router_rep_of_num(r, (long long)num)) ||
	    (post != (slash != NULL)) || (slash && strcmp(slash, "/accept") &&
	    strcmp(slash, "/reject")) || !(a = calloc(1, sizeof(*a)))) {
		daemon_page(r->d, req, 404, "web/invalid", json_object());
		return;
	}
	a->r = r;
	a->req = req;
	a->card = 1;
	a->offer = (long long)offer;
	a->accept = -1;
	memcpy(a->tok, tail, len);
	snprintf(a->rep, sizeof(a->rep), "%s", rep);
	if (post) {
		a->accept = strcmp(slash, "/accept") == 0;
		answer(a);
	} else {
		pages_card(r->d, req, a->tok, a->offer, a->rep, (long long)num,
		    NULL);
		free(a);
	}
}

/* POST /api/v1/offers/{id}/accept|reject */
static void
offers_api(struct httpd_req *req, void *arg)
{
	struct router *r = arg;
	struct answer *a;
	char *end;
	long long id = strtoll(req->tail, &end, 10);

	if (end == req->tail || id <= 0 || (strcmp(end, "/accept") &&
	    strcmp(end, "/reject"))) {
		httpd_reply_error(req, 404, "id", "expected /api/v1/offers/"
		    "{id}/accept or /reject");
		return;
	}
	if (!(a = calloc(1, sizeof(*a)))) {
		httpd_reply_error(req, 500, NULL, "out of memory");
		return;
	}
	a->r = r;
	a->req = req;
	a->offer = id;
	a->accept = strcmp(end, "/accept") == 0;
	answer(a);
}

/* ---- reps ----------------------------------------------------------------------- */

struct repreq {
	struct router *r;
	struct httpd_req *req;
	char id[ROUTE_NAME_MAX + 1];
	json_t *body;
};

static json_t *
strlist_json(const struct conf_strlist *l)
{
	json_t *a = json_array();

	for (size_t i = 0; i < l->n; i++)
		json_array_append_new(a, json_string(l->v[i]));
	return a;
}

static json_t *
rep_json(const struct route_conf *rc, size_t i, int on_duty, long long open,
    const char *origin)
{
	const struct route_rep *p = &rc->reps[i];

	return json_pack("{s:s, s:s, s:s, s:s, s:o, s:b, s:b, s:I, s:I, s:f, "
	    "s:s, s:o, s:o, s:o, s:o, s:s, s:s}", "id", p->id, "name", p->name,
	    "email", p->email, "phone", p->phone, "teams",
	    strlist_json(&p->teams), "on_duty", on_duty, "in_hours",
	    route_in_hours(rc, i, time(NULL)), "open", (json_int_t)open,
	    "capacity", (json_int_t)p->capacity, "weight", p->weight, "origin",
	    origin, "skills", strlist_json(&p->skills), "territories",
	    strlist_json(&p->territories), "products",
	    strlist_json(&p->products), "languages",
	    strlist_json(&p->languages), "time_zone", *p->time_zone ?
	    p->time_zone : rc->time_zone, "tier", p->tier);
}

static void
on_rep_list(void *arg, const PGresult *res, const char *err)
{
	struct repreq *q = arg;
	const struct route_conf *rc = router_conf(q->r);
	json_t *reps = json_array();

	if (err) {
		httpd_reply_error(q->req, 503, NULL, err);
		json_decref(reps);
		free(q);
		return;
	}
	for (size_t i = 0; rc && i < rc->nreps; i++) {
		int on = 1;
		long long open = 0;
		const char *origin = "config";

		for (int k = 0; k < PQntuples(res); k++) {
			if (strcmp(PQgetvalue(res, k, 0), rc->reps[i].id))
				continue;
			on = *PQgetvalue(res, k, 1) == 't';
			open = strtoll(PQgetvalue(res, k, 2), NULL, 10);
			origin = PQgetvalue(res, k, 3);
		}
		if (!*q->id || strcmp(q->id, rc->reps[i].id) == 0)
			json_array_append_new(reps, rep_json(rc, i, on, open,
			    origin));
	}
	if (*q->id && json_array_size(reps) == 1)
		httpd_reply_json(q->req, 200, json_pack("{s:O}", "rep",
		    json_array_get(reps, 0)));
	else if (*q->id)
		httpd_reply_error(q->req, 404, "id", "no such rep");
	else
		httpd_reply_json(q->req, 200, json_pack("{s:O}", "reps", reps));
	json_decref(reps);
	free(q);
}

static void
list_reps(struct router *r, struct httpd_req *req, const char *one)
{
	struct repreq *q = calloc(1, sizeof(*q));

	if (!q) {
		httpd_reply_error(req, 500, NULL, "out of memory");
		return;
	}
	q->r = r;
	q->req = req;
	snprintf(q->id, sizeof(q->id), "%s", one ? one : "");
	if (db_query(r->d->db, "SELECT r.id, r.on_duty, (SELECT count(*) FROM "
	    "leads l WHERE l.owner = r.id AND l.status IN ('assigned', "
	    "'contacted', 'qualified')) + (SELECT count(*) FROM offers o WHERE "
	    "o.rep_id = r.id AND o.status = 'pending' AND o.kind = 'single'), "
	    "r.origin FROM reps r", 0, NULL, on_rep_list, q) < 0) {
		httpd_reply_error(req, 503, NULL, "the database queue is full");
		free(q);
	}
}

static void
reps_changed(struct router *r)
{
	db_query(r->d->db, "NOTIFY leadcast_route, 'reps'", 0, NULL, NULL,
	    NULL);
	sync_reps(r);
}

/*
 * Add (q->body set: the new rep's profile) or change (change: keys to
 * set) a rep: check the whole routing configuration with the change laid
 * over it, then store. num/gen: the rep's own token (0: admin). The
 * outcome goes to cb when set, else to the HTTP request as JSON.
 */
struct repchange {
	struct repreq q;
	json_t *change;
	long long num, gen;
	router_change_fn *cb;
	void *cbarg;
};

/* Report the outcome and free c. profile: the stored one (stolen). */
static void
change_done(struct repchange *c, int code, const char *field,
    const char *msg, json_t *profile)
{
	if (code < 300)
		reps_changed(c->q.r);
	if (c->cb)
		c->cb(c->cbarg, code, field, msg);
	else if (code >= 300)
		httpd_reply_error(c->q.req, code, field, msg);
	else
		httpd_reply_json(c->q.req, code, json_pack("{s:{s:s, s:o*}}",
		    "rep", "id", c->q.id, "profile", profile)), profile = NULL;
	json_decref(profile);
	json_decref(c->change);
	json_decref(c->q.body);
	free(c);
}

static void
on_rep_stored(void *arg, const PGresult *res, const char *err)
{
	struct repchange *c = arg;

	if (err)
		change_done(c, 503, NULL, err, NULL);
	else if (PQntuples(res) == 0)
		change_done(c, 409, "id", c->q.body ? "a rep with this id "
		    "exists" : "no such rep, or the token was revoked", NULL);
	else
		change_done(c, c->q.body ? 201 : 200, NULL, NULL,
		    json_loads(PQgetvalue(res, 0, 0), 0, NULL));
}

static void
on_profiles(void *arg, const PGresult *res, const char *err)
{
	struct repchange *c = arg;
	struct repreq *q = &c->q;
	struct route_conf *rc;
	json_t *profiles, *mine = NULL;
	char field[64], msg[600], num[32], gen[32];
	const char *p[4];
	char *js;

	if (err) {
		change_done(c, 503, NULL, err, NULL);
		return;
	}
	profiles = json_object();
	for (int i = 0; i < PQntuples(res); i++) {
		json_t *pr = json_loads(PQgetvalue(res, i, 1), 0, NULL);

		if (pr)
			json_object_set_new(profiles, PQgetvalue(res, i, 0), pr);
	}
	if (q->body) {
		if (json_object_get(profiles, q->id) || (router_conf(q->r) &&
		    route_rep_find(router_conf(q->r), q->id) != ROUTE_NONE)) {
			json_decref(profiles);
			change_done(c, 409, "id", "a rep with this id exists",
			    NULL);
			return;
		}
		mine = json_incref(q->body);
	} else {
		mine = json_object_get(profiles, q->id) ?
		    json_deep_copy(json_object_get(profiles, q->id)) :
		    json_object();
		json_object_update(mine, c->change);
	}
	json_object_set(profiles, q->id, mine);
	rc = load_with(q->r->d, profiles, field, sizeof(field), msg,
	    sizeof(msg));
	json_decref(profiles);
	if (!rc) {
		json_decref(mine);
		change_done(c, 400, *field ? field : NULL, msg, NULL);
		return;
	}
	route_conf_free(rc);
	js = json_dumps(q->body ? mine : c->change, JSON_COMPACT);
	json_decref(mine);
	snprintf(num, sizeof(num), "%lld", c->num);
	snprintf(gen, sizeof(gen), "%lld", c->gen);
	p[0] = q->id;
	p[1] = js;
	p[2] = num;
	p[3] = gen;
	if (!js || (q->body ? db_query(q->r->d->db, "INSERT INTO reps (id, "
	    "origin, profile) VALUES ($1, 'api', $2::jsonb) ON CONFLICT (id) "
	    "DO NOTHING RETURNING profile", 2, p, on_rep_stored, c) :
	    db_query(q->r->d->db, "UPDATE reps SET profile = profile || "
	    "$2::jsonb, updated_at = now() WHERE id = $1 AND ($3::bigint = 0 OR "
	    "(num = $3::bigint AND token_gen = $4::int)) RETURNING profile", 4, p,
	    on_rep_stored, c)) < 0)
		change_done(c, 503, NULL, "the database queue is full", NULL);
	free(js);
}

static int
change_start(struct router *r, struct httpd_req *req, const char *id,
    json_t *body, json_t *change, long long num, long long gen,
    router_change_fn *cb, void *arg)
{
	struct repchange *c = calloc(1, sizeof(*c));

	if (!c) {
		json_decref(body);
		json_decref(change);
		return -1;
	}
	c->q.r = r;
	c->q.req = req;
	c->q.body = body;
	c->change = change;
	c->num = num;
	c->gen = gen;
	c->cb = cb;
	c->cbarg = arg;
	snprintf(c->q.id, sizeof(c->q.id), "%s", id);
	if (db_query(r->d->db, "SELECT id, profile FROM reps WHERE profile <> "
	    "'{}'", 0, NULL, on_profiles, c) < 0) {
		json_decref(body);
		json_decref(change);
		free(c);
		return -1;
	}
	return 0;
}

static void
change_rep(struct router *r, struct httpd_req *req, const char *id,
    json_t *body, json_t *change, long long num, long long gen)
{
	if (change_start(r, req, id, body, change, num, gen, NULL, NULL) < 0)
		httpd_reply_error(req, 503, NULL, "the database queue is full");
}

int
router_change_rep(struct router *r, const char *id, json_t *change,
    long long num, long long gen, router_change_fn *cb, void *arg)
{
	const char *k;
	json_t *v;

	json_object_foreach(change, k, v) {
		if (!in_list(self_keys, k)) {
			json_decref(change);
			return -2;
		}
	}
	return change_start(r, NULL, id, NULL, change, num, gen, cb, arg);
}

/* GET /api/v1/reps: the list; POST: add one {"id": ..., keys...}. */
static void
reps_root(struct httpd_req *req, void *arg)
{
	struct router *r = arg;
	json_t *body, *id;

	if (!router_conf(r)) {
		httpd_reply_error(req, 409, NULL, "routing is off: there is no "
		    "routing.conf");
		return;
	}
	if (evhttp_request_get_command(req->req) != EVHTTP_REQ_POST) {
		list_reps(r, req, NULL);
		return;
	}
	if (!(body = httpd_body_json(req)))
		return;
	id = json_object_get(body, "id");
	if (!json_is_string(id) || !route_valid_id(json_string_value(id))) {
		httpd_reply_error(req, 400, "id", "a rep needs an id: letters, "
		    "digits and . _ - @ + (at most 64)");
		json_decref(body);
		return;
	}
	id = json_incref(id);
	json_object_del(body, "id");
	change_rep(r, req, json_string_value(id), body, NULL, 0, 0);
	json_decref(id);
}

struct tokreq {
	struct router *r;
	struct httpd_req *req;
};

static void
on_rep_token(void *arg, const PGresult *res, const char *err)
{
	struct tokreq *q = arg;
	char tok[TOKEN_MAX];

	if (err) {
		httpd_reply_error(q->req, 503, NULL, err);
	} else if (PQntuples(res) == 0) {
		httpd_reply_error(q->req, 404, "id", "no such rep");
	} else {
		token_sign(&q->r->d->url_key, 'p', strtoull(PQgetvalue(res, 0,
		    0), NULL, 10), strtoull(PQgetvalue(res, 0, 1), NULL, 10),
		    tok);
		httpd_reply_json(q->req, 200, json_pack("{s:s}", "token", tok));
	}
	free(q);
}

static void
on_availability(void *arg, const PGresult *res, const char *err)
{
	struct tokreq *q = arg;

	if (err)
		httpd_reply_error(q->req, 503, NULL, err);
	else if (PQntuples(res) == 0)
		httpd_reply_error(q->req, 404, "id", "no such rep");
	else
		httpd_reply_json(q->req, 200, json_pack("{s:{s:s, s:b}}", "rep",
		    "id", PQgetvalue(res, 0, 0), "on_duty",
		    *PQgetvalue(res, 0, 1) == 't'));
	free(q);
}

int
router_set_duty(struct router *r, const char *rep, int on, db_result_fn *cb,
    void *arg)
{
	const char *p[2] = { rep, on ? "t" : "f" };

	/* back on duty: away, so its pass rises to the floor at its next
	 * lead (no burst) */
	return db_query(r->d->db, "UPDATE reps SET on_duty = $2::bool, away = "
	    "away OR ($2::bool AND NOT on_duty), updated_at = now() WHERE id = "
	    "$1 RETURNING id, on_duty", 2, p, cb, arg);
}

/* Who is asking: 1 admin; 0 the rep id's own token (num, gen set); -1
 * neither (replied 401). */
static int
rep_auth(struct router *r, struct httpd_req *req, const char *id,
    uint64_t *num, uint64_t *gen)
{
	const char *h = evhttp_find_header(evhttp_request_get_input_headers(
	    req->req), "Authorization");
	const char *rep;

	if (h && strncmp(h, "Bearer ", 7) == 0) {
		h += 7;
		if (*r->d->admin_token && token_equal(h, strlen(h),
		    r->d->admin_token, strlen(r->d->admin_token)))
			return 1;
		if (id && strlen(h) < TOKEN_MAX && token_verify(&r->d->url_key,
		    'p', h, strlen(h), num, gen) == 0 &&
		    (rep = router_rep_of_num(r, (long long)*num)) != NULL &&
		    strcmp(rep, id) == 0)
			return 0;
	}
	evhttp_add_header(evhttp_request_get_output_headers(req->req),
	    "WWW-Authenticate", "Bearer");
	httpd_reply_error(req, 401, NULL, "a valid admin or rep token is "
	    "needed");
	return -1;
}

/*
 * /api/v1/reps/{id}            GET the rep; POST change it
 * /api/v1/reps/{id}/availability  POST {"available": bool}
 * /api/v1/reps/{id}/token      GET the rep's token (admin)
 * /api/v1/reps/{id}/next       POST take the next lead of its queues
 * The rep's own token may change its profile's self_keys and pull.
 */
static void
reps_one(struct httpd_req *req, void *arg)
{
	struct router *r = arg;
	const struct route_conf *rc = router_conf(r);
	char id[ROUTE_NAME_MAX + 1];
	const char *slash = strchr(req->tail, '/'), *what;
	size_t len = slash ? (size_t)(slash - req->tail) : strlen(req->tail);
	int post = evhttp_request_get_command(req->req) == EVHTTP_REQ_POST;
	uint64_t num = 0, gen = 0;
	int admin;
	json_t *body;

	what = slash ? slash + 1 : "";
	if (len == 0 || len > ROUTE_NAME_MAX) {
		httpd_reply_error(req, 404, "id", "no such rep");
		return;
	}
	memcpy(id, req->tail, len);
	id[len] = '\0';
	if ((admin = rep_auth(r, req, id, &num, &gen)) < 0)
		return;
	if (!rc) {
		httpd_reply_error(req, 409, NULL, "routing is off: there is no "
		    "routing.conf");
		return;
	}
	if (route_rep_find(rc, id) == ROUTE_NONE) {
		httpd_reply_error(req, 404, "id", "no such rep");
		return;
	}
	if (strcmp(what, "next") == 0 && post) {
		leads_next(r->d, req, id);
	} else if (strcmp(what, "") == 0 && !post) {
		list_reps(r, req, id);
	} else if (strcmp(what, "") == 0) {
		const char *k;
		json_t *v;

		if (!(body = httpd_body_json(req)))
			return;
		json_object_foreach(body, k, v) {
			if (!in_list(admin ? rep_keys : self_keys, k)) {
				httpd_reply_error(req, admin ? 400 : 403, k,
				    admin ? "not a rep setting" : "a rep may "
				    "change only skills, territories, products, "
				    "languages, hours and time_zone");
				json_decref(body);
				return;
			}
		}
		change_rep(r, req, id, NULL, body, (long long)num,
		    (long long)gen);
	} else if (admin && ((strcmp(what, "availability") == 0 && post) ||
	    (strcmp(what, "token") == 0 && !post))) {
		struct tokreq *q = calloc(1, sizeof(*q));
		const char *p[2] = { id, NULL };
		json_t *av = NULL;
		int rc2;

		if (!q) {
			httpd_reply_error(req, 500, NULL, "out of memory");
			return;
		}
		q->r = r;
		q->req = req;
		if (*what == 't') {
			rc2 = db_query(r->d->db, "SELECT num, token_gen FROM reps "
			    "WHERE id = $1", 1, p, on_rep_token, q);
		} else {
			if (!(body = httpd_body_json(req))) {
				free(q);
				return;
			}
			if (!json_is_boolean(av = json_object_get(body,
			    "available"))) {
				httpd_reply_error(req, 400, "available",
				    "expected true or false");
				json_decref(body);
				free(q);
				return;
			}
			rc2 = router_set_duty(r, id, json_is_true(av),
			    on_availability, q);
			json_decref(body);
		}
		if (rc2 < 0) {
			httpd_reply_error(req, 503, NULL, "the database queue "
			    "is full");
			free(q);
		}
	} else if (!admin) {
		httpd_reply_error(req, 403, NULL, "this needs the admin token");
	} else {
		httpd_reply_error(req, 404, NULL, "expected /api/v1/reps/{id}, "
		    "/availability, /token or /next");
	}
}

/* ---- life cycle ------------------------------------------------------------------ */

static void
on_route_wake(void *arg, const char *channel, const char *payload)
{
	struct router *r = arg;

	(void)channel;
	if (strcmp(payload, "route") == 0)
		router_kick(r);
	else if (strcmp(payload, "reps") == 0)
		sync_reps(r);
}

struct router *
router_new(struct lc_daemon *d)
{
	static const struct httpd_route routes[] = {
		{ HTTPD_GET | HTTPD_POST | HTTPD_AUTH, "/api/v1/reps", "reps",
		  reps_root, NULL },
		{ HTTPD_GET | HTTPD_POST, "/api/v1/reps/", "rep", reps_one,
		  NULL },
		{ HTTPD_POST | HTTPD_AUTH, "/api/v1/offers/", "offers",
		  offers_api, NULL },
		{ HTTPD_GET | HTTPD_POST, "/r/", "card", card, NULL },
	};
	struct timeval tick = { 0, TICK_MS * 1000 };
	struct router *r = calloc(1, sizeof(*r));

	/* a routing transaction does not wait for its WAL flush: should the
	 * server crash before the flush, the lead (captured durably) is
	 * routed again; any later durable commit, an answer to the offer
	 * say, flushes the offer with it (doc/design.md) */
	if (!r || !(r->db = db_new(d->base, d->conninfo)) ||
	    db_set_options(r->db, "-c synchronous_commit=off") < 0 ||
	    !(r->nums = json_object())) {
		if (r)
			db_free(r->db);
		free(r);
		return NULL;
	}
	r->d = d;
	r->ev_tick = event_new(d->base, -1, EV_PERSIST, on_tick, r);
	r->ev_retry = event_new(d->base, -1, 0, on_retry, r);
	event_add(r->ev_tick, &tick);
#define M(v, lbl) r->v = metrics_counter("leadcast_routing_total", \
	"Routing decisions and offer outcomes.", "what=\"" lbl "\"")
	M(m_offer, "offer");
	M(m_broadcast, "broadcast");
	M(m_assign, "catch_all");
	M(m_queue, "queued");
	M(m_expired, "expired");
	M(m_swept, "swept");
	M(m_accepted, "accepted");
	M(m_rejected, "rejected");
	M(m_tx_fail, "transaction_failed");
#undef M
	db_listen(d->db, "leadcast_route", on_route_wake, r);
	db_start(r->db);
	httpd_add_routes(d->httpd, routes, sizeof(routes) / sizeof(routes[0]),
	    r);
	sync_reps(r);
	return r;
}

void
router_free(struct router *r)
{
	if (!r)
		return;
	event_free(r->ev_tick);
	event_free(r->ev_retry);
	db_free(r->db);
	rconf_set(r, NULL);
	json_decref(r->nums);
	free(r->ids);
	free(r);
}
