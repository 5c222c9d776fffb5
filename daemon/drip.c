/*
 * drip - the drip engine on the loop: enrollments (drip_enrollments) are
 * work items claimed when due with FOR UPDATE SKIP LOCKED and a lease;
 * lib/drip decides what their steps do (drip_run), and one statement per
 * batch writes it: the enrollment moves on only if its step counter is
 * still the one claimed (compare and set), and in the same statement the
 * step's log row (primary key: enrollment and counter, the idempotency
 * key), its email (a delivery of the step's campaign, sent by sender.c,
 * unique per enrollment and counter), field, tag and score changes, owner
 * notifications and routing are written. Texts are queued just before,
 * by sms_to_lead() with the key "drip:ENROLLMENT:COUNTER" (queued once
 * whatever happens next). A crash before that statement commits leaves
 * the lease to lapse (or to be released at restart) and the step to run
 * again from scratch; after it, the step is done. So each step runs once
 * per enrollment, on any number of daemons.
 *
 *   due times   after each claim, the next due time is read from the
 *               database and a timer armed for it; NOTIFY leadcast_drip
 *               (an enrollment made, a version added) re-reads it. A step
 *               runs within a few milliseconds of its time when idle.
 *   triggers    events that may start or end a drip are copied to
 *               drip_inbox by triggers in the database (011_drips.sql);
 *               the inbox is claimed like enrollments, and one statement
 *               deletes the claimed rows and writes the enrollments made
 *               (or refused, with the reason) and the exits by goal.
 *   versions    each definition's text is kept in drip_versions; an edit
 *               is a new version, and enrollments finish on theirs (the
 *               old ones are parsed from the database) unless moved.
 *   API         /api/v1/drips...: list, status and report, pause, resume,
 *               enroll, exit, move.
 *
 * It does not send anything itself (sender.c and sms.c do) and does not
 * parse definitions (lib/drip.c).
 */
#include "config.h"
#include "daemon.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "campaign.h"
#include "cond.h"
#include "db.h"
#include "drip.h"
#include "httpd.h"
#include "log.h"
#include "metrics.h"
#include "route.h"
#include "sms.h"
#include "smsgw.h"
#include "tmpl.h"

#define CLAIM_BATCH     500
#define INBOX_BATCH     500
#define LEASE_S         30

/* Only people's opens and clicks count in branches and reports, not mail
 * providers' image proxies or link scanners (events.class, 009_tracking). */
#define DRIP_HUMAN_SQL   "ev.class = 'human'"
#define DRIP_HUMAN_SQL_O "o.class = 'human'"

/* A version of a definition, for the engine and the sender's workers. */
struct ver {
	struct drip_def *def;           /* owned when owned, else in conf */
	struct conf *conf;              /* a reference: templates live there */
	int owned;
};

struct dripd {
	struct lc_daemon *d;
	struct db *db;                  /* our session */
	struct event *timer;            /* the next due time */
	struct event *tick;
	pthread_mutex_t lock;           /* vers: read by the sender's workers */
	struct ver *vers;
	size_t nvers;
	struct conf *synced;            /* conf whose drips are registered */
	int syncing;                    /* version queries in flight */
	int sync_failed;
	int loading;                    /* old versions being read */
	int need_load;
	int claiming, claim_again;
	int inboxing, inbox_again;
	int checking;
	double armed;                   /* epoch of the armed timer, 0 none */
	struct metric *m_steps, *m_enrolled, *m_refused, *m_exited;
};

/* ---- the registry of versions ------------------------------------------ */

static struct ver *
ver_find(struct dripd *e, const char *name, int version)
{
	for (size_t i = 0; i < e->nvers; i++)
		if (e->vers[i].def->version == version &&
		    !strcmp(e->vers[i].def->name, name))
			return &e->vers[i];
	return NULL;
}

/* Add or replace (name, version); takes def (owned or in conf). */
static void
ver_put(struct dripd *e, struct drip_def *def, struct conf *conf, int owned)
{
	struct ver *v, old = { NULL, NULL, 0 };

	pthread_mutex_lock(&e->lock);
	if ((v = ver_find(e, def->name, def->version)) != NULL) {
		old = *v;
	} else {
		if (!(v = realloc(e->vers, (e->nvers + 1) * sizeof(*v))))
			abort();
		e->vers = v;
		v = &e->vers[e->nvers++];
	}
	v->def = def;
	v->conf = conf_ref(conf);
	v->owned = owned;
	pthread_mutex_unlock(&e->lock);
	if (old.def && old.owned)
		drip_def_free(old.def);
	if (old.conf)
		conf_unref(old.conf);
}

static const struct drip_def *
def_of(struct dripd *e, const char *name, int version)
{
	struct ver *v = ver_find(e, name, version);

	return v ? v->def : NULL;
}

/* The current definition (as registered: its version known), or NULL. */
static const struct drip_def *
current_def(struct dripd *e, const char *name)
{
	const struct drip_def *d = e->d->conf->drips ?
	    drip_find(e->d->conf->drips, name) : NULL;

	return d && d->version > 0 && e->synced == e->d->conf ? d : NULL;
}

const struct campaign_def *
drip_email_def(struct dripd *e, const char *campaign, struct conf **ref)
{
	const char *p = campaign + 5, *s1, *s2;
	const struct campaign_def *c = NULL;
	char name[DRIP_NAME_MAX + 1];
	int version;

	*ref = NULL;
	if (!e || strncmp(campaign, "drip/", 5) || !(s1 = strchr(p, '/')) ||
	    (size_t)(s1 - p) > DRIP_NAME_MAX || !(s2 = strchr(s1 + 1, '/')))
		return NULL;
	memcpy(name, p, (size_t)(s1 - p));
	name[s1 - p] = '\0';
	version = atoi(s1 + 1);
	pthread_mutex_lock(&e->lock);
	{
		struct ver *v = ver_find(e, name, version);
		int i = v ? drip_step_index(v->def, s2 + 1) : -1;

		if (i >= 0 && v->def->steps[i].email) {
			c = v->def->steps[i].email;
			*ref = conf_ref(v->conf);
		}
	}
	pthread_mutex_unlock(&e->lock);
	return c;
}

/* ---- syncing definitions with the database ----------------------------- */

static void drip_claim(struct dripd *e);
static void inbox_claim(struct dripd *e);
static void check_due(struct dripd *e);

static void
on_campaigns(void *arg, const PGresult *res, const char *err)
{
	(void)arg;
	(void)res;
	if (err)
		log_warn("drips: creating the step campaigns: %s", err);
}

/* Every email step of every version has its campaign (status running),
 * and the events the current triggers use are watched. */
static void
sync_rows(struct dripd *e)
{
	struct buf names, types;
	const char *p[1];
	static const char *const watch[][3] = {
		[DRIP_T_CAPTURED] = { "captured", NULL, NULL },
		[DRIP_T_LIST] = { "subscribed", NULL, NULL },
		[DRIP_T_SCORE] = { "score", NULL, NULL },
		[DRIP_T_TAG] = { "tagged", "tag", NULL },
		[DRIP_T_FORM] = { "form", NULL, NULL },
		[DRIP_T_ROUTED] = { "routed", "queued", "threshold" },
		[DRIP_T_STATUS] = { "status", NULL, NULL },
		[DRIP_T_API] = { NULL, NULL, NULL },
	};

	buf_init(&names, 0);
	buf_init(&types, 0);
	for (size_t i = 0; i < e->nvers; i++) {
		const struct drip_def *d = e->vers[i].def;

		for (size_t k = 0; k < d->nsteps; k++)
			if (d->steps[k].email)
				db_array_add(&names, d->steps[k].email->name);
	}
	for (size_t i = 0; e->d->conf->drips && i < e->d->conf->drips->n; i++) {
		const struct drip_def *d = e->d->conf->drips->v[i];

		for (size_t k = 0; k < d->ntriggers; k++)
			for (int j = 0; j < 3; j++)
				if (watch[d->triggers[k].type][j])
					db_array_add(&types,
					    watch[d->triggers[k].type][j]);
	}
	p[0] = db_array_end(&names);
	db_query(e->db, "INSERT INTO campaigns AS c (name, kind, status, "
	    "started_at) SELECT n, 'drip', 'running', now() FROM "
	    "unnest($1::text[]) AS n ON CONFLICT (name) DO UPDATE SET status = "
	    "'running' WHERE c.status <> 'running'", 1, p, on_campaigns, e);
	p[0] = db_array_end(&types);
	db_query(e->db, "INSERT INTO drip_watch (type) SELECT DISTINCT t FROM "
	    "unnest($1::text[]) AS t ON CONFLICT DO NOTHING", 1, p, on_campaigns,
	    e);
	buf_free(&names);
	buf_free(&types);
	sender_kick(e->d->sender);
}

static void
on_versions(void *arg, const PGresult *res, const char *err)
{
	struct dripd *e = arg;
	int added = 0;

	e->loading = 0;
	if (err) {
		log_warn("drips: reading versions: %s", err);
		return;
	}
	for (int i = 0; i < PQntuples(res); i++) {
		const char *name = PQgetvalue(res, i, 0);
		int version = atoi(PQgetvalue(res, i, 1));
		const char *src = PQgetvalue(res, i, 2);
		struct cfgfile_errors errs = { NULL, 0 };
		struct drip_def *d;
		char file[DRIP_NAME_MAX + 64];

		if (ver_find(e, name, version))
			continue;
		snprintf(file, sizeof(file), "drips/%s.conf (version %d)", name,
		    version);
		d = drip_parse(name, file, src, strlen(src), e->d->conf->templates,
		    e->d->conf->notifications, &errs);
		if (!d) {
			log_error("drip %s version %d no longer loads (its "
			    "enrollments wait; move them to the current version "
			    "or exit them): %s", name, version, errs.n ?
			    errs.msgs[0] : "out of memory");
			cfgfile_errors_free(&errs);
			continue;
		}
		drip_set_version(d, version);
		ver_put(e, d, e->d->conf, 1);
		added++;
	}
	if (added)
		sync_rows(e);
	drip_claim(e);
}

/* Read every version we do not have (an old one, or another node's). */
static void
load_versions(struct dripd *e)
{
	if (e->loading || db_state(e->db) != DB_READY)
		return;
	e->loading = 1;
	e->need_load = 0;
	if (db_query(e->db, "SELECT drip, version, source FROM drip_versions "
	    "ORDER BY drip, version", 0, NULL, on_versions, e) < 0)
		e->loading = 0;
}

struct vq {
	struct dripd *e;
	struct conf *conf;              /* a reference */
	char name[DRIP_NAME_MAX + 1];
};

static void
on_version(void *arg, const PGresult *res, const char *err)
{
	struct vq *q = arg;
	struct dripd *e = q->e;

	if (err || PQntuples(res) != 1) {
		log_warn("drip %s: registering its version: %s", q->name,
		    err ? err : "no result");
		e->sync_failed = 1;
	} else if (q->conf == e->d->conf) {
		struct drip_def *d = (struct drip_def *)drip_find(q->conf->drips,
		    q->name);

		if (d) {
			drip_set_version(d, atoi(PQgetvalue(res, 0, 0)));
			ver_put(e, d, q->conf, 0);
		}
	}
	if (--e->syncing == 0) {
		if (q->conf == e->d->conf && !e->sync_failed) {
			e->synced = q->conf;
			log_info("drips: %zu definition%s in force",
			    q->conf->drips ? q->conf->drips->n : 0,
			    q->conf->drips && q->conf->drips->n == 1 ? "" : "s");
			sync_rows(e);
			load_versions(e);
			inbox_claim(e);
		}
	}
	conf_unref(q->conf);
	free(q);
}

/* Register the current configuration's definitions (start, reload). */
static void
sync_defs(struct dripd *e)
{
	struct conf *c = e->d->conf;

	if (e->syncing || e->synced == c || db_state(e->db) != DB_READY ||
	    e->d->node_id == 0)
		return;
	e->sync_failed = 0;
	if (!c->drips || c->drips->n == 0) {
		e->synced = c;
		sync_rows(e);
		load_versions(e);
		return;
	}
	for (size_t i = 0; i < c->drips->n; i++) {
		const struct drip_def *d = c->drips->v[i];
		struct vq *q = calloc(1, sizeof(*q));
		const char *p[3] = { d->name, d->hash, d->source };

		if (!q)
			continue;
		q->e = e;
		q->conf = conf_ref(c);
		snprintf(q->name, sizeof(q->name), "%s", d->name);
		e->syncing++;
		if (db_query(e->db, "SELECT leadcast_drip_version($1, $2, $3)", 3,
		    p, on_version, q) < 0) {
			e->syncing--;
			conf_unref(q->conf);
			free(q);
		}
	}
}

/* ---- due times ---------------------------------------------------------- */

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct dripd *e = arg;

	(void)fd;
	(void)what;
	e->armed = 0;
	drip_claim(e);
}

static double
now_epoch(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Arm the timer for epoch t unless it is armed sooner. */
static void
arm(struct dripd *e, double t)
{
	double dt = t - now_epoch();
	struct timeval tv;

	if (e->armed > 0 && e->armed <= t)
		return;
	if (dt < 0)
		dt = 0;
	tv.tv_sec = (time_t)dt;
	tv.tv_usec = (suseconds_t)((dt - (double)tv.tv_sec) * 1e6);
	e->armed = t;
	evtimer_add(e->timer, &tv);
}

static void
on_due(void *arg, const PGresult *res, const char *err)
{
	struct dripd *e = arg;

	e->checking = 0;
	if (err || PQntuples(res) != 1 || PQgetisnull(res, 0, 0))
		return;
	arm(e, strtod(PQgetvalue(res, 0, 0), NULL));
}

/* Read the next due time (of steps nobody holds) and arm for it. */
static void
check_due(struct dripd *e)
{
	if (e->checking || db_state(e->db) != DB_READY)
		return;
	e->checking = 1;
	if (db_query(e->db, "SELECT extract(epoch FROM next_run_at) FROM "
	    "drip_enrollments WHERE status = 'active' AND (lease_until IS NULL "
	    "OR lease_until < now()) ORDER BY next_run_at LIMIT 1", 0, NULL,
	    on_due, e) < 0)
		e->checking = 0;
}

/* ---- running steps ------------------------------------------------------ */

/* The columns of the statement that writes a batch's outcome. */
enum { X_ID, X_SEQ0, X_SEQ1, X_STEP, X_NEXT, X_STATUS, X_REASON,
	A_ENR, A_SEQ, A_STEP, A_KIND, A_OUTCOME, A_DETAIL, A_CAMPAIGN, A_EMAIL,
	F_ENR, F_PATCH, F_SCORE, F_TEAM, F_TAGS, F_REASON,
	N_ENR, N_NAME, N_EMAIL, N_VARS, NCOLS };

static const char apply_sql[] =
    "WITH x AS (SELECT * FROM unnest($1::bigint[], $2::int[], $3::int[], "
    "$4::text[], $5::float8[], $6::text[], $7::text[]) AS x(id, seq0, seq1, "
    "step, next_at, status, reason)), "
    "u AS (UPDATE drip_enrollments e SET seq = x.seq1, step = x.step, "
    "next_run_at = CASE WHEN x.next_at IS NULL THEN NULL ELSE "
    "to_timestamp(x.next_at) END, status = x.status, "
    "reason = coalesce(x.reason, e.reason), lease_until = NULL, "
    "updated_at = now(), finished_at = CASE WHEN x.status IN ('done', "
    "'exited') THEN now() END FROM x WHERE e.id = x.id AND e.seq = x.seq0 "
    "AND e.node_id = $26 AND e.status = 'active' "
    "RETURNING e.id, e.lead_id, e.drip, e.version, e.status, e.next_run_at), "
    "a AS (SELECT * FROM unnest($8::bigint[], $9::int[], $10::text[], "
    "$11::text[], $12::text[], $13::text[], $14::text[], $15::text[]) AS "
    "a(enr, seq, step, kind, outcome, detail, campaign, email)), "
    "lg AS (INSERT INTO drip_log (enrollment_id, seq, drip, version, step, "
    "kind, outcome, detail) SELECT a.enr, a.seq, u.drip, u.version, a.step, "
    "a.kind, a.outcome, a.detail FROM a JOIN u ON u.id = a.enr "
    "ON CONFLICT DO NOTHING RETURNING 1), "
    "dl AS (INSERT INTO deliveries (campaign_id, lead_id, email, vars, "
    "drip_enrollment, drip_seq) SELECT c.id, u.lead_id, a.email, "
    "jsonb_build_object('drip', u.drip, 'drip_step', a.step), a.enr, a.seq "
    "FROM a JOIN u ON u.id = a.enr JOIN campaigns c ON c.name = a.campaign "
    "WHERE a.kind = 'email' AND a.outcome = 'done' "
    "ON CONFLICT DO NOTHING RETURNING 1), "
    "f AS (SELECT u.lead_id, leadcast_jsonb_merge(f.patch) AS patch, "
    "sum(f.score)::int AS score, max(f.team) AS team, "
    "jsonb_agg(f.tags) AS tags, string_agg(f.reason, '; ') AS reason "
    "FROM unnest($16::bigint[], $17::jsonb[], $18::int[], $19::text[], "
    "$20::jsonb[], $21::text[]) AS f(enr, patch, score, team, tags, reason) "
    "JOIN u ON u.id = f.enr GROUP BY u.lead_id), "
    "lf AS (UPDATE leads l SET fields = l.fields || f.patch || CASE WHEN "
    "jsonb_array_length(f.tags) > 0 AND EXISTS (SELECT 1 FROM "
    "jsonb_array_elements(f.tags) t WHERE jsonb_array_length(t) > 0) THEN "
    "jsonb_build_object('tags', (SELECT jsonb_agg(DISTINCT v) FROM "
    "(SELECT jsonb_array_elements(CASE WHEN jsonb_typeof(l.fields->'tags') "
    "= 'array' THEN l.fields->'tags' ELSE '[]' END) AS v UNION SELECT "
    "jsonb_array_elements(t) FROM jsonb_array_elements(f.tags) t) z)) "
    "ELSE '{}' END, "
    "score = l.score + f.score, "
    "status = CASE WHEN f.team IS NOT NULL AND l.owner IS NULL THEN "
    "'routing' ELSE l.status END, "
    "status_at = CASE WHEN f.team IS NOT NULL AND l.owner IS NULL AND "
    "l.status <> 'routing' THEN now() ELSE l.status_at END, "
    "round = CASE WHEN f.team IS NOT NULL AND l.owner IS NULL THEN "
    "l.round + 1 ELSE l.round END, "
    "queue = CASE WHEN f.team IS NOT NULL AND l.owner IS NULL THEN NULL "
    "ELSE l.queue END, "
    "route_team = CASE WHEN f.team IS NOT NULL AND l.owner IS NULL THEN "
    "f.team ELSE l.route_team END, "
    "route_at = CASE WHEN f.team IS NOT NULL AND l.owner IS NULL THEN now() "
    "ELSE l.route_at END, updated_at = now() "
    "FROM f WHERE l.id = f.lead_id RETURNING l.id, f.score, f.reason, "
    "f.team IS NOT NULL AND l.owner IS NULL AS routed), "
    "sh AS (INSERT INTO score_history (lead_id, kind, rule, points, reason) "
    "SELECT id, 'manual', NULL, score, reason FROM lf WHERE score <> 0), "
    "te AS (INSERT INTO events (type, lead_id, data) SELECT 'tagged', "
    "u.lead_id, jsonb_build_object('tag', t, 'drip', u.drip) FROM "
    "unnest($16::bigint[], $20::jsonb[]) AS f(enr, tags) JOIN u ON "
    "u.id = f.enr, jsonb_array_elements_text(f.tags) AS t), "
    "nt AS (SELECT leadcast_notify(n.name, array_agg(NULL::bigint), "
    "array_agg(n.email), array_agg(n.vars)) AS n FROM unnest($22::bigint[], "
    "$23::text[], $24::text[], $25::jsonb[]) AS n(enr, name, email, vars) "
    "JOIN u ON u.id = n.enr GROUP BY n.name) "
    "SELECT (SELECT count(*) FROM u), (SELECT count(*) FROM dl), "
    "0, (SELECT count(*) FROM nt), "
    "(SELECT count(*) FROM lf WHERE routed), "
    "(SELECT extract(epoch FROM min(next_run_at)) FROM u WHERE "
    "status = 'active'), "
    "NULL, "
    "CASE WHEN (SELECT count(*) FROM lf WHERE routed) > 0 THEN "
    "pg_notify('leadcast_route', 'route')::text END";

/* A step run's log row; SMS steps' outcome comes from sms_to_lead. */
struct act {
	long long enr, lead;
	int seq;
	const struct drip_step *s;
	const struct drip_def *d;
	const char *outcome;            /* static */
	char *detail, *email;           /* owned, may be NULL */
};

struct wave {
	struct dripd *e;
	struct buf a[NCOLS];
	int n;
	struct act *acts;
	size_t nacts, cap;
	int sms_pending;                /* sms_to_lead calls not answered */
	int claimed;                    /* rows claimed (a full batch?) */
};

static void
wave_free(struct wave *w)
{
	for (int i = 0; i < NCOLS; i++)
		buf_free(&w->a[i]);
	for (size_t i = 0; i < w->nacts; i++) {
		free(w->acts[i].detail);
		free(w->acts[i].email);
	}
	free(w->acts);
	free(w);
}

static void
addi(struct buf *b, long long v)
{
	char s[32];

	snprintf(s, sizeof(s), "%lld", v);
	db_array_add(b, s);
}

static void
on_applied(void *arg, const PGresult *res, const char *err)
{
	struct wave *w = arg;
	struct dripd *e = w->e;

	e->claiming = 0;
	if (err) {
		log_warn("drips: writing %d step runs: %s (they run again when "
		    "their lease lapses)", w->n, err);
	} else if (PQntuples(res) == 1) {
		long long done = strtoll(PQgetvalue(res, 0, 0), NULL, 10);

		metric_add(e->m_steps, done);
		if (done < w->n)
			log_info("drips: %lld of %d step runs were done elsewhere "
			    "meanwhile (another node, an exit)", w->n - done,
			    w->n);
		if (strtoll(PQgetvalue(res, 0, 1), NULL, 10) > 0 ||
		    strtoll(PQgetvalue(res, 0, 3), NULL, 10) > 0)
			sender_kick(e->d->sender);
		if (strtoll(PQgetvalue(res, 0, 4), NULL, 10) > 0)
			router_kick(e->d->router);
		if (!PQgetisnull(res, 0, 5))
			arm(e, strtod(PQgetvalue(res, 0, 5), NULL));
	}
	wave_free(w);
	if (e->claim_again || !err) {
		e->claim_again = 0;
		drip_claim(e);
	}
}

/* The lead's email for a step, or NULL. */
static const char *
jstr(const json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));

	return s && *s ? s : NULL;
}

static struct act *
add_action(struct wave *w, long long enr, int seq, const struct drip_step *s,
    const char *outcome, const char *detail, const char *email)
{
	struct act *a;

	if (w->nacts == w->cap) {
		w->cap = w->cap ? 2 * w->cap : 256;
		if (!(w->acts = realloc(w->acts, w->cap * sizeof(*w->acts))))
			abort();
	}
	a = &w->acts[w->nacts++];
	memset(a, 0, sizeof(*a));
	a->enr = enr;
	a->seq = seq;
	a->s = s;
	a->outcome = outcome;
	if ((detail && !(a->detail = strdup(detail))) ||
	    (email && !(a->email = strdup(email))))
		abort();
	return a;
}

/* The owner's address for a notify step, or NULL and why not. */
static const char *
owner_email(struct dripd *e, const json_t *lead, const char **why)
{
	const struct route_conf *rc = router_conf(e->d->router);
	const char *owner = jstr(lead, "owner");
	size_t i;

	if (!owner) {
		*why = "the lead has no owner";
		return NULL;
	}
	if (!rc || (i = route_rep_find(rc, owner)) == ROUTE_NONE ||
	    !*rc->reps[i].email) {
		*why = "the owner has no email address";
		return NULL;
	}
	return rc->reps[i].email;
}

/* Decide one claimed enrollment into w. */
static void
decide(struct dripd *e, struct wave *w, const PGresult *res, int row,
    double nowf)
{
	time_t now = (time_t)nowf;
	long long id = strtoll(PQgetvalue(res, row, 0), NULL, 10);
	const char *name = PQgetvalue(res, row, 1);
	int version = atoi(PQgetvalue(res, row, 2));
	const char *stepname = PQgetvalue(res, row, 3);
	int seq = atoi(PQgetvalue(res, row, 4));
	const struct drip_def *d = def_of(e, name, version);
	json_t *lead = json_loads(PQgetvalue(res, row, 5), 0, NULL), *facts;
	json_t *patch = NULL, *tags = NULL;
	struct drip_result r;
	const char *status = "active", *reason = NULL, *team = NULL;
	long score = 0;
	int from;
	struct buf why;

	if (!d) {
		e->need_load = 1;
		json_decref(lead);
		return;         /* the lease lapses, and it runs then */
	}
	if (!lead)
		lead = json_object();
	if (!PQgetisnull(res, row, 6) && (facts = json_loads(PQgetvalue(res,
	    row, 6), 0, NULL)) != NULL) {
		json_object_update(lead, facts);
		json_decref(facts);
	}
	for (const char *k = "opened"; k; k = !strcmp(k, "opened") ? "clicked" :
	    !strcmp(k, "clicked") ? "sent" : NULL)
		if (!json_is_array(json_object_get(lead, k)))
			json_object_set_new(lead, k, json_array());
	from = PQgetisnull(res, row, 3) ? -1 : drip_step_index(d, stepname);
	if (from < 0) {
		r.nacts = 0;
		r.next = -1;
		r.exited = 0;
		r.tz_error = 0;
		reason = "its step is not in its version";
		status = "exited";
	} else {
		drip_run(d, from, seq, lead, jstr(lead, "time_zone"), now, &r);
	}
	buf_init(&why, 0);
	for (int i = 0; i < r.nacts; i++) {
		const struct drip_step *s = &d->steps[r.acts[i].step];
		const char *no = NULL, *email;

		switch (s->kind) {
		case DRIP_EMAIL:
			if (!(email = jstr(lead, "email")))
				add_action(w, id, r.acts[i].seq, s, "skipped",
				    "the lead has no email address", NULL);
			else
				add_action(w, id, r.acts[i].seq, s, "done", NULL,
				    email);
			break;
		case DRIP_SMS: {
			/* sent by sms_to_lead before the wave is written */
			struct act *a = add_action(w, id, r.acts[i].seq, s,
			    "pending", NULL, NULL);

			a->lead = (long long)json_integer_value(json_object_get(
			    lead, "id"));
			a->d = d;
			break;
		}
		case DRIP_SET:
			if (s->field) {
				if (!patch)
					patch = json_object();
				json_object_set(patch, s->field, s->value);
			}
			if (s->tag) {
				if (!tags)
					tags = json_array();
				json_array_append_new(tags, json_string(s->tag));
			}
			score += s->score;
			add_action(w, id, r.acts[i].seq, s, "done", NULL, NULL);
			break;
		case DRIP_NOTIFY:
			if (!(email = owner_email(e, lead, &no))) {
				add_action(w, id, r.acts[i].seq, s, "skipped", no,
				    NULL);
				break;
			}
			{
				json_t *vars = json_pack("{s:O, s:s, s:s}", "lead",
				    lead, "drip", d->name, "step", s->name);
				char *vs = json_dumps(vars, JSON_COMPACT);

				addi(&w->a[N_ENR], id);
				db_array_add(&w->a[N_NAME], s->notification);
				db_array_add(&w->a[N_EMAIL], email);
				db_array_add(&w->a[N_VARS], vs);
				free(vs);
				json_decref(vars);
			}
			add_action(w, id, r.acts[i].seq, s, "done", NULL, email);
			break;
		case DRIP_ROUTE:
			if (jstr(lead, "owner")) {
				add_action(w, id, r.acts[i].seq, s, "skipped",
				    "the lead has an owner", NULL);
				break;
			}
			team = s->team;
			add_action(w, id, r.acts[i].seq, s, "done", NULL, NULL);
			break;
		case DRIP_BRANCH:
			add_action(w, id, r.acts[i].seq, s, "done", i + 1 <
			    r.nacts ? d->steps[r.acts[i + 1].step].name : NULL,
			    NULL);
			break;
		default:
			add_action(w, id, r.acts[i].seq, s, "done", NULL, NULL);
			break;
		}
	}
	if (r.tz_error)
		log_warn("drip %s: a condition needs the time zone of lead %s, "
		    "which is unknown", d->name, jstr(lead, "id"));
	if (patch || tags || score || team) {
		char *ps = patch ? json_dumps(patch, JSON_COMPACT) : NULL;
		char *ts = tags ? json_dumps(tags, JSON_COMPACT) : NULL;

		addi(&w->a[F_ENR], id);
		db_array_add(&w->a[F_PATCH], ps ? ps : "{}");
		addi(&w->a[F_SCORE], score);
		db_array_add(&w->a[F_TEAM], team);
		db_array_add(&w->a[F_TAGS], ts ? ts : "[]");
		buf_printf(&why, "drip %s", d->name);
		db_array_add(&w->a[F_REASON], buf_str(&why));
		free(ps);
		free(ts);
	}
	if (r.exited) {
		status = "done";
		reason = "ended by an exit step";
	} else if (r.next < 0 && !reason) {
		status = "done";
	}
	addi(&w->a[X_ID], id);
	addi(&w->a[X_SEQ0], seq);
	addi(&w->a[X_SEQ1], seq + r.nacts);
	db_array_add(&w->a[X_STEP], r.next >= 0 ? d->steps[r.next].name : NULL);
	if (r.next >= 0) {
		char t[32];

		/* drip_run counts in whole seconds from now: keep now's
		 * fraction, so that a wait of 2s is 2s */
		snprintf(t, sizeof(t), "%.3f", (double)r.next_at + nowf -
		    (double)now);
		db_array_add(&w->a[X_NEXT], t);
	} else {
		db_array_add(&w->a[X_NEXT], NULL);
	}
	db_array_add(&w->a[X_STATUS], status);
	db_array_add(&w->a[X_REASON], reason);
	w->n++;
	json_decref(patch);
	json_decref(tags);
	json_decref(lead);
	buf_free(&why);
}

static void wave_write(struct wave *w);

struct smscall {
	struct wave *w;
	size_t i;                       /* in w->acts (which may move) */
};

/* One wave's sms_to_lead calls are all answered: write the wave. */
static void
sms_answered(struct wave *w)
{
	if (--w->sms_pending == 0)
		wave_write(w);
}

static void
on_sms(void *arg, const char *status, const char *msg, long long sms_id)
{
	struct smscall *c = arg;
	struct act *a = &c->w->acts[c->i];

	(void)sms_id;
	if (!strcmp(status, "queued") || !strcmp(status, "duplicate")) {
		a->outcome = "done";
	} else {
		a->outcome = "skipped";
		free(a->detail);
		if (!(a->detail = strdup(msg && *msg ? msg : status)))
			abort();
	}
	sms_answered(c->w);
	free(c);
}

/* An SMS step through sms.c's one path to leads: its idempotency key is
 * the step run's, so a step run again (a crash before the wave was
 * written, another node) queues nothing more. */
static void
send_sms(struct wave *w, struct act *a)
{
	struct smscall *c = calloc(1, sizeof(*c));
	struct sms_lead_msg m;
	char key[64];

	if (!c)
		abort();
	c->w = w;
	c->i = (size_t)(a - w->acts);
	snprintf(key, sizeof(key), "drip:%lld:%d", a->enr, a->seq);
	memset(&m, 0, sizeof(m));
	m.lead = a->lead;
	m.template_name = a->s->sms_name;
	m.key = key;
	m.kind = "drip";
	m.quiet = a->d->has_quiet ? &a->d->quiet : NULL;
	m.time_zone = a->d->time_zone;
	w->sms_pending++;
	if (sms_to_lead(w->e->d, &m, on_sms, c) < 0) {
		free(c);
		a->outcome = "skipped";
		if (!(a->detail = strdup("the text could not be queued")))
			abort();
		w->sms_pending--;
	}
}

/* Write a decided wave: one statement (see apply_sql). */
static void
wave_write(struct wave *w)
{
	struct dripd *e = w->e;
	const char *p[NCOLS + 1];
	char node[32];

	for (size_t i = 0; i < w->nacts; i++) {
		const struct act *a = &w->acts[i];

		addi(&w->a[A_ENR], a->enr);
		addi(&w->a[A_SEQ], a->seq);
		db_array_add(&w->a[A_STEP], a->s->name);
		db_array_add(&w->a[A_KIND], drip_kind_name(a->s->kind));
		db_array_add(&w->a[A_OUTCOME], a->outcome);
		db_array_add(&w->a[A_DETAIL], a->detail);
		db_array_add(&w->a[A_CAMPAIGN], a->s->email ? a->s->email->name :
		    NULL);
		db_array_add(&w->a[A_EMAIL], a->email);
	}
	for (int i = 0; i < NCOLS; i++)
		p[i] = db_array_end(&w->a[i]);
	snprintf(node, sizeof(node), "%lld", e->d->node_id);
	p[NCOLS] = node;
	if (w->claimed == CLAIM_BATCH)
		e->claim_again = 1;
	if (db_query(e->db, apply_sql, NCOLS + 1, p, on_applied, w) < 0) {
		e->claiming = 0;
		wave_free(w);
	}
}

static void
on_claimed(void *arg, const PGresult *res, const char *err)
{
	struct dripd *e = arg;
	struct wave *w;
	int n;
	double now = now_epoch();

	if (err) {
		e->claiming = 0;
		log_warn("drips: claiming due steps: %s", err);
		return;
	}
	n = PQntuples(res);
	if (n == 0) {
		e->claiming = 0;
		if (e->claim_again) {
			e->claim_again = 0;
			drip_claim(e);
		} else {
			check_due(e);
		}
		return;
	}
	if (!(w = calloc(1, sizeof(*w)))) {
		e->claiming = 0;
		return;
	}
	w->e = e;
	w->claimed = n;
	for (int i = 0; i < NCOLS; i++)
		buf_init(&w->a[i], 0);
	for (int i = 0; i < n; i++)
		decide(e, w, res, i, now);
	if (e->need_load)
		load_versions(e);
	if (w->n == 0) {
		e->claiming = 0;
		wave_free(w);
		return;
	}
	w->sms_pending = 1;             /* until every call is made */
	for (size_t i = 0; i < w->nacts; i++)
		if (!strcmp(w->acts[i].outcome, "pending"))
			send_sms(w, &w->acts[i]);
	sms_answered(w);
}

/* Claim due enrollments (of drips not paused, of versions we know or can
 * read): their lead, and for drips with branches what the lead did with
 * the earlier steps' messages (human opens and clicks). */
static void
drip_claim(struct dripd *e)
{
	char limit[16], lease[16], node[32];
	const char *p[3] = { limit, lease, node };

	if (e->claiming) {
		e->claim_again = 1;
		return;
	}
	if (e->d->stopping || db_state(e->db) != DB_READY ||
	    e->d->node_id == 0 || e->synced != e->d->conf)
		return;
	snprintf(limit, sizeof(limit), "%d", CLAIM_BATCH);
	snprintf(lease, sizeof(lease), "%d", LEASE_S);
	snprintf(node, sizeof(node), "%lld", e->d->node_id);
	e->claiming = 1;
	if (db_query(e->db,
	    "WITH c AS (SELECT id FROM drip_enrollments WHERE status = 'active' "
	    "AND next_run_at <= now() AND (lease_until IS NULL OR "
	    "lease_until < now()) ORDER BY next_run_at LIMIT $1 "
	    "FOR UPDATE SKIP LOCKED), "
	    "u AS (UPDATE drip_enrollments e SET lease_until = now() + $2 * "
	    "interval '1 second', node_id = $3 FROM c WHERE e.id = c.id "
	    "RETURNING e.id, e.drip, e.version, e.step, e.seq, e.lead_id) "
	    "SELECT u.id, u.drip, u.version, u.step, u.seq, to_jsonb(l)::text, "
	    "(SELECT jsonb_build_object("
	    "'sent', coalesce(jsonb_agg(DISTINCT g.step) FILTER (WHERE "
	    "g.kind IN ('email', 'sms') AND g.outcome = 'done'), '[]'), "
	    "'opened', coalesce(jsonb_agg(DISTINCT g.step) FILTER (WHERE "
	    "EXISTS (SELECT 1 FROM events ev WHERE ev.lead_id = u.lead_id AND "
	    "ev.delivery_id = dl.id AND ev.type = 'open' AND "
	    DRIP_HUMAN_SQL ")), '[]'), "
	    "'clicked', coalesce(jsonb_agg(DISTINCT g.step) FILTER (WHERE "
	    "EXISTS (SELECT 1 FROM events ev WHERE ev.lead_id = u.lead_id AND "
	    "ev.delivery_id = dl.id AND ev.type = 'click' AND "
	    DRIP_HUMAN_SQL ")), '[]'))::text "
	    "FROM drip_log g LEFT JOIN deliveries dl ON dl.drip_enrollment = "
	    "g.enrollment_id AND dl.drip_seq = g.seq WHERE g.enrollment_id = "
	    "u.id) "
	    "FROM u JOIN leads l ON l.id = u.lead_id ORDER BY u.id",
	    3, p, on_claimed, e) < 0)
		e->claiming = 0;
}

/* ---- the inbox: triggers and goals ------------------------------------- */

enum { I_IDS, E_INBOX, E_DRIP, E_VERSION, E_LEAD, E_STATUS, E_STEP, E_TRIG,
	E_REASON, G_INBOX, G_ID, G_GOAL, G_REASON, ICOLS };

struct inwave {
	struct dripd *e;
	struct buf a[ICOLS];
	int enrolled, exited;
};

static void
inwave_free(struct inwave *w)
{
	for (int i = 0; i < ICOLS; i++)
		buf_free(&w->a[i]);
	free(w);
}

static void
on_inbox_done(void *arg, const PGresult *res, const char *err)
{
	struct inwave *w = arg;
	struct dripd *e = w->e;

	e->inboxing = 0;
	if (err) {
		log_warn("drips: writing enrollments: %s (the events are read "
		    "again when their lease lapses)", err);
	} else if (PQntuples(res) == 1) {
		long long en = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		long long rf = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
		long long ex = strtoll(PQgetvalue(res, 0, 2), NULL, 10);

		metric_add(e->m_enrolled, en);
		metric_add(e->m_refused, rf);
		metric_add(e->m_exited, ex);
		if (en > 0)
			drip_claim(e);
	}
	inwave_free(w);
	if (!err)
		inbox_claim(e);
}

static void
add_enroll(struct inwave *w, const char *inbox, const struct drip_def *d,
    const char *lead, const char *status, const char *trig,
    const char *reason)
{
	addi(&w->a[E_VERSION], d->version);
	db_array_add(&w->a[E_INBOX], inbox);
	db_array_add(&w->a[E_DRIP], d->name);
	db_array_add(&w->a[E_LEAD], lead);
	db_array_add(&w->a[E_STATUS], status);
	db_array_add(&w->a[E_STEP], d->steps[0].name);
	db_array_add(&w->a[E_TRIG], trig);
	db_array_add(&w->a[E_REASON], reason);
}

/*
 * Why lead may not enter d now (NULL: it may): it is in it, or was and
 * may not come back yet, or cannot be reached. enrollments: the lead's
 * (JSON array of {id, drip, status, finished}).
 */
static const char *
entry_refused(const struct drip_def *d, const json_t *enrollments,
    time_t now, int *silent)
{
	size_t i;
	json_t *en;

	*silent = 1;
	json_array_foreach(enrollments, i, en) {
		const char *st = jstr(en, "status");
		double fin = json_number_value(json_object_get(en, "finished"));

		if (strcmp(jstr(en, "drip") ? jstr(en, "drip") : "", d->name) ||
		    !st || !strcmp(st, "refused"))
			continue;
		if (!strcmp(st, "active") || !strcmp(st, "paused"))
			return "already in the drip";
		if (d->reentry == DRIP_RE_NEVER)
			return "was in the drip before (reentry = never)";
		if (d->reentry == DRIP_RE_AFTER &&
		    (double)now - fin < (double)d->reentry_after_s)
			return "left the drip too recently to enter again";
	}
	*silent = 0;
	return NULL;
}

static void
on_inbox(void *arg, const PGresult *res, const char *err)
{
	struct dripd *e = arg;
	struct inwave *w;
	const struct drip_set *ds = e->d->conf->drips;
	const char *p[ICOLS + 1];
	char node[32];
	time_t now = time(NULL);
	int n;

	if (err) {
		e->inboxing = 0;
		log_warn("drips: reading events: %s", err);
		return;
	}
	if ((n = PQntuples(res)) == 0 || !(w = calloc(1, sizeof(*w)))) {
		e->inboxing = 0;
		if (e->inbox_again) {
			e->inbox_again = 0;
			inbox_claim(e);
		}
		return;
	}
	w->e = e;
	for (int i = 0; i < ICOLS; i++)
		buf_init(&w->a[i], 0);
	for (int row = 0; row < n; row++) {
		const char *inbox = PQgetvalue(res, row, 0);
		const char *leadid = PQgetvalue(res, row, 1);
		const char *type = PQgetvalue(res, row, 2);
		json_t *data = json_loads(PQgetvalue(res, row, 3), 0, NULL);
		json_t *lead = PQgetisnull(res, row, 4) ? NULL :
		    json_loads(PQgetvalue(res, row, 4), 0, NULL);
		json_t *ens = json_loads(PQgetvalue(res, row, 5), 0, NULL);
		const char *blocked = PQgetisnull(res, row, 6) ? NULL :
		    PQgetvalue(res, row, 6);
		size_t i;
		json_t *en;

		db_array_add(&w->a[I_IDS], inbox);
		if (!lead)
			goto next;      /* deleted meanwhile */
		/* goals: the lead's current enrollments */
		json_array_foreach(ens, i, en) {
			const char *st = jstr(en, "status");
			const struct drip_def *d;
			unsigned g;
			char eid[32];

			if (!st || (strcmp(st, "active") && strcmp(st, "paused")))
				continue;
			if (!(d = def_of(e, jstr(en, "drip") ? jstr(en, "drip") :
			    "", (int)json_integer_value(json_object_get(en,
			    "version")))))
				continue;
			if (!(g = drip_goal_match(d, type, data)))
				continue;
			snprintf(eid, sizeof(eid), "%lld", (long long)
			    json_integer_value(json_object_get(en, "id")));
			db_array_add(&w->a[G_INBOX], inbox);
			db_array_add(&w->a[G_ID], eid);
			db_array_add(&w->a[G_GOAL], drip_goal_name(g));
			db_array_add(&w->a[G_REASON], type);
		}
		/* triggers: the current definitions */
		for (size_t k = 0; ds && k < ds->n; k++) {
			const struct drip_def *d = current_def(e, ds->v[k]->name);
			const char *why;
			int t, silent;

			if (!d || (t = drip_trigger_match(d, type, data, lead,
			    now)) < 0)
				continue;
			if ((why = entry_refused(d, ens, now, &silent)) != NULL)
				continue;       /* nothing to record */
			(void)silent;
			if (blocked)
				add_enroll(w, inbox, d, leadid, "refused", type,
				    blocked);
			else
				add_enroll(w, inbox, d, leadid, "active", type,
				    NULL);
		}
next:
		json_decref(data);
		json_decref(lead);
		json_decref(ens);
	}
	for (int i = 0; i < ICOLS; i++)
		p[i] = db_array_end(&w->a[i]);
	snprintf(node, sizeof(node), "%lld", e->d->node_id);
	p[ICOLS] = node;
	if (n == INBOX_BATCH)
		e->inbox_again = 1;
	if (db_query(e->db,
	    "WITH del AS (DELETE FROM drip_inbox WHERE id = ANY($1::bigint[]) "
	    "AND node_id = $14 RETURNING id), "
	    "x AS (SELECT * FROM unnest($2::bigint[], $3::text[], $4::int[], "
	    "$5::bigint[], $6::text[], $7::text[], $8::text[], $9::text[]) AS "
	    "x(inbox, drip, version, lead, status, step, trig, reason) "
	    "WHERE x.inbox IN (SELECT id FROM del)), "
	    "en AS (INSERT INTO drip_enrollments AS e (drip, version, lead_id, "
	    "status, step, next_run_at, trigger, reason, finished_at) "
	    "SELECT x.drip, x.version, x.lead, CASE WHEN x.status = 'active' AND "
	    "EXISTS (SELECT 1 FROM drips p WHERE p.name = x.drip AND p.paused) "
	    "THEN 'paused' ELSE x.status END, "
	    "CASE WHEN x.status = 'refused' THEN NULL ELSE x.step END, "
	    "CASE WHEN x.status = 'refused' THEN NULL ELSE now() END, x.trig, "
	    "CASE WHEN x.status = 'active' AND EXISTS (SELECT 1 FROM drips p "
	    "WHERE p.name = x.drip AND p.paused) THEN 'drip paused' ELSE "
	    "x.reason END, CASE WHEN x.status = 'refused' THEN now() END FROM x "
	    "JOIN leads l ON l.id = x.lead "
	    "ON CONFLICT (drip, lead_id) WHERE status IN ('active', 'paused') "
	    "DO NOTHING RETURNING e.status), "
	    "ex AS (UPDATE drip_enrollments e SET status = 'exited', "
	    "goal = x.goal, reason = 'goal: ' || x.goal || ' (' || x.why || ')', "
	    "step = NULL, next_run_at = NULL, lease_until = NULL, "
	    "finished_at = now(), updated_at = now() FROM unnest($10::bigint[], "
	    "$11::bigint[], $12::text[], $13::text[]) AS x(inbox, id, goal, why) "
	    "WHERE e.id = x.id AND x.inbox IN (SELECT id FROM del) AND "
	    "e.status IN ('active', 'paused') RETURNING e.id) "
	    "SELECT (SELECT count(*) FROM en WHERE status <> 'refused'), "
	    "(SELECT count(*) FROM en WHERE status = 'refused'), "
	    "(SELECT count(*) FROM ex)", ICOLS + 1, p, on_inbox_done, w) < 0) {
		e->inboxing = 0;
		inwave_free(w);
	}
}

/* SQL: why a lead cannot be reached by drips (NULL: it can). */
#define BLOCKED_SQL \
    "CASE WHEN l.email IS NOT NULL AND EXISTS (SELECT 1 FROM suppressions " \
    "x WHERE lower(x.email) = lower(l.email) AND x.list_id IS NULL) THEN " \
    "'suppressed: ' || (SELECT reason FROM suppressions x WHERE " \
    "lower(x.email) = lower(l.email) AND x.list_id IS NULL LIMIT 1) " \
    "WHEN EXISTS (SELECT 1 FROM subscriptions s WHERE s.lead_id = l.id AND " \
    "s.status = 'unsubscribed') AND NOT EXISTS (SELECT 1 FROM " \
    "subscriptions s WHERE s.lead_id = l.id AND s.status = 'confirmed') " \
    "THEN 'unsubscribed' END"

static void
inbox_claim(struct dripd *e)
{
	char limit[16], lease[16], node[32];
	const char *p[3] = { limit, lease, node };

	if (e->inboxing) {
		e->inbox_again = 1;
		return;
	}
	if (e->d->stopping || db_state(e->db) != DB_READY ||
	    e->d->node_id == 0 || e->synced != e->d->conf)
		return;
	snprintf(limit, sizeof(limit), "%d", INBOX_BATCH);
	snprintf(lease, sizeof(lease), "%d", LEASE_S);
	snprintf(node, sizeof(node), "%lld", e->d->node_id);
	e->inboxing = 1;
	if (db_query(e->db,
	    "WITH c AS (SELECT id FROM drip_inbox WHERE lease_until IS NULL OR "
	    "lease_until < now() ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED), "
	    "u AS (UPDATE drip_inbox i SET lease_until = now() + $2 * "
	    "interval '1 second', node_id = $3 FROM c WHERE i.id = c.id "
	    "RETURNING i.id, i.lead_id, i.type, i.data) "
	    "SELECT u.id, u.lead_id, u.type, coalesce(u.data, '{}')::text, "
	    "to_jsonb(l)::text, (SELECT coalesce(jsonb_agg(jsonb_build_object("
	    "'id', e.id, 'drip', e.drip, 'version', e.version, 'status', "
	    "e.status, 'finished', extract(epoch FROM e.finished_at))), '[]') "
	    "FROM drip_enrollments e WHERE e.lead_id = u.lead_id)::text, "
	    BLOCKED_SQL " FROM u LEFT JOIN leads l ON l.id = u.lead_id "
	    "ORDER BY u.id", 3, p, on_inbox, e) < 0)
		e->inboxing = 0;
}

/* ---- wake-ups ----------------------------------------------------------- */

static void
on_wake(void *arg, const char *channel, const char *payload)
{
	struct dripd *e = arg;

	(void)channel;
	if (!strcmp(payload, "inbox"))
		inbox_claim(e);
	else if (!strcmp(payload, "versions"))
		load_versions(e);
	else
		drip_claim(e);
}

static void
on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct dripd *e = arg;

	(void)fd;
	(void)what;
	if (e->d->stopping || db_state(e->db) != DB_READY)
		return;
	if (e->synced != e->d->conf) {
		sync_defs(e);
		return;
	}
	if (e->need_load)
		load_versions(e);
	inbox_claim(e);
	check_due(e);
}

void
drip_kick(struct dripd *e)
{
	if (!e)
		return;
	sync_defs(e);
	drip_claim(e);
	inbox_claim(e);
}

int
drip_idle(const struct dripd *e)
{
	return !e || (!e->claiming && !e->inboxing && !e->syncing);
}

/* ---- the API ------------------------------------------------------------- */

struct call {
	struct dripd *e;
	struct httpd_req *r;
	char name[DRIP_NAME_MAX + 1];
	char action[16];
	long long lead;
};

static json_t *
def_json(const struct drip_def *d)
{
	json_t *steps = json_array(), *trig = json_array(), *goals = json_array();

	for (size_t i = 0; i < d->nsteps; i++)
		json_array_append_new(steps, json_pack("{s:s, s:s}", "name",
		    d->steps[i].name, "type", drip_kind_name(d->steps[i].kind)));
	for (size_t i = 0; i < d->ntriggers; i++) {
		static const char *const tn[] = { "captured", "list", "score",
		    "tag", "form", "routed", "status", "api" };

		json_array_append_new(trig, json_pack("{s:s, s:s?}", "type",
		    tn[d->triggers[i].type], "arg", d->triggers[i].arg));
	}
	for (unsigned g = 1; g <= DRIP_G_HARD_BOUNCE; g <<= 1)
		if (d->goals & g)
			json_array_append_new(goals, json_string(drip_goal_name(g)));
	return json_pack("{s:s, s:s, s:i, s:o, s:o, s:o}", "name", d->name,
	    "description", d->description ? d->description : "", "version",
	    d->version, "steps", steps, "triggers", trig, "goals", goals);
}

static void
on_list(void *arg, const PGresult *res, const char *err)
{
	struct call *c = arg;
	const struct drip_set *ds = c->e->d->conf->drips;
	json_t *a = json_array();

	if (err) {
		json_decref(a);
		httpd_reply_error(c->r, 503, NULL, err);
		free(c);
		return;
	}
	for (size_t i = 0; ds && i < ds->n; i++) {
		json_t *o = def_json(ds->v[i]), *counts = json_object();
		int paused = 0;

		for (int row = 0; row < PQntuples(res); row++) {
			if (strcmp(PQgetvalue(res, row, 0), ds->v[i]->name))
				continue;
			paused = PQgetvalue(res, row, 1)[0] == 't';
			json_decref(counts);
			counts = json_loads(PQgetvalue(res, row, 2), 0, NULL);
		}
		json_object_set_new(o, "paused", json_boolean(paused));
		json_object_set_new(o, "enrollments", counts ? counts :
		    json_object());
		json_array_append_new(a, o);
	}
	httpd_reply_json(c->r, 200, json_pack("{s:o}", "drips", a));
	free(c);
}

static const char report_sql[] =
    "WITH g AS (SELECT g.step, g.kind, g.outcome, g.enrollment_id, g.seq, "
    "g.version FROM drip_log g WHERE g.drip = $1), "
    "r AS (SELECT g.step, count(*) AS entered, "
    "count(*) FILTER (WHERE g.outcome = 'skipped') AS skipped, "
    "count(dl.id) FILTER (WHERE dl.status = 'sent') + count(s.id) FILTER "
    "(WHERE s.status IN ('sent', 'delivered')) AS sent, "
    "count(dl.id) FILTER (WHERE dl.status = 'sent' AND NOT EXISTS (SELECT 1 "
    "FROM events b WHERE b.lead_id = dl.lead_id AND b.delivery_id = dl.id "
    "AND b.type = 'bounce')) + count(s.id) FILTER (WHERE s.status = "
    "'delivered') AS delivered, "
    "count(dl.id) FILTER (WHERE EXISTS (SELECT 1 FROM events o WHERE "
    "o.lead_id = dl.lead_id AND o.delivery_id = dl.id AND o.type = 'open' "
    "AND " DRIP_HUMAN_SQL_O ")) AS opened, "
    "count(dl.id) FILTER (WHERE EXISTS (SELECT 1 FROM events o WHERE "
    "o.lead_id = dl.lead_id AND o.delivery_id = dl.id AND o.type = 'click' "
    "AND " DRIP_HUMAN_SQL_O ")) AS clicked "
    "FROM g LEFT JOIN deliveries dl ON dl.drip_enrollment = g.enrollment_id "
    "AND dl.drip_seq = g.seq LEFT JOIN sms s ON g.kind = 'sms' AND "
    "s.idem_key = 'drip:' || g.enrollment_id || ':' || g.seq "
    "GROUP BY g.step), "
    "x AS (SELECT (SELECT step FROM drip_log l WHERE l.enrollment_id = e.id "
    "ORDER BY seq DESC LIMIT 1) AS step, e.goal FROM drip_enrollments e "
    "WHERE e.drip = $1 AND e.status = 'exited' AND e.goal IS NOT NULL), "
    "xs AS (SELECT step, count(*) AS exited, count(*) FILTER (WHERE goal IN "
    "('replied', 'clicked', 'qualified', 'won', 'accepted')) AS converted "
    "FROM x GROUP BY step) "
    "SELECT coalesce(jsonb_object_agg(r.step, jsonb_build_object('entered', "
    "r.entered, 'skipped', r.skipped, 'sent', r.sent, 'delivered', "
    "r.delivered, 'opened', r.opened, 'clicked', r.clicked, "
    "'exited_by_goal', coalesce(xs.exited, 0), 'converted', "
    "coalesce(xs.converted, 0))), '{}')::text, "
    "(SELECT coalesce(jsonb_object_agg(status, n), '{}') FROM (SELECT "
    "status, count(*) AS n FROM drip_enrollments WHERE drip = $1 GROUP BY "
    "status) s)::text, "
    "(SELECT coalesce(jsonb_object_agg(goal, n), '{}') FROM (SELECT goal, "
    "count(*) AS n FROM drip_enrollments WHERE drip = $1 AND goal IS NOT "
    "NULL GROUP BY goal) s)::text, "
    "(SELECT paused FROM drips WHERE name = $1), "
    "(SELECT coalesce(jsonb_object_agg(version, n), '{}') FROM (SELECT "
    "version, count(*) AS n FROM drip_enrollments WHERE drip = $1 AND "
    "status IN ('active', 'paused') GROUP BY version) s)::text "
    "FROM r LEFT JOIN xs ON xs.step = r.step";

static void
on_report(void *arg, const PGresult *res, const char *err)
{
	struct call *c = arg;
	const struct drip_def *d = current_def(c->e, c->name);
	json_t *doc, *steps, *per, *o;

	if (err || PQntuples(res) != 1) {
		httpd_reply_error(c->r, 503, NULL, err ? err : "no result");
		free(c);
		return;
	}
	doc = d ? def_json(d) : json_pack("{s:s}", "name", c->name);
	per = json_loads(PQgetvalue(res, 0, 0), 0, NULL);
	steps = json_array();
	/* the current version's steps in order, then any others */
	for (size_t i = 0; d && i < d->nsteps; i++) {
		json_t *v = json_object_get(per, d->steps[i].name);

		o = json_pack("{s:s, s:s}", "step", d->steps[i].name, "type",
		    drip_kind_name(d->steps[i].kind));
		if (v)
			json_object_update(o, v);
		else
			json_object_update_new(o, json_pack("{s:i, s:i, s:i, "
			    "s:i, s:i, s:i, s:i, s:i}", "entered", 0, "skipped",
			    0, "sent", 0, "delivered", 0, "opened", 0, "clicked",
			    0, "exited_by_goal", 0, "converted", 0));
		json_array_append_new(steps, o);
		json_object_del(per, d->steps[i].name);
	}
	{
		const char *k;
		json_t *v;

		json_object_foreach(per, k, v) {
			o = json_pack("{s:s}", "step", k);
			json_object_update(o, v);
			json_array_append_new(steps, o);
		}
	}
	json_decref(per);
	json_object_set_new(doc, "steps", steps);
	json_object_set_new(doc, "enrollments", json_loads(PQgetvalue(res, 0, 1),
	    0, NULL));
	json_object_set_new(doc, "goals_reached", json_loads(PQgetvalue(res, 0,
	    2), 0, NULL));
	json_object_set_new(doc, "paused", json_boolean(PQgetvalue(res, 0,
	    3)[0] == 't'));
	json_object_set_new(doc, "versions_in_use", json_loads(PQgetvalue(res,
	    0, 4), 0, NULL));
	httpd_reply_json(c->r, 200, doc);
	free(c);
}

static void
on_action(void *arg, const PGresult *res, const char *err)
{
	struct call *c = arg;

	if (err) {
		httpd_reply_error(c->r, 503, NULL, err);
	} else if (PQntuples(res) == 1 && !PQgetisnull(res, 0, 0)) {
		json_t *doc = json_loads(PQgetvalue(res, 0, 0), 0, NULL);
		const char *refused = jstr(doc, "refused");
		int code = json_is_true(json_object_get(doc, "not_found")) ? 404 :
		    refused ? 409 : 200;

		if (code == 404) {
			json_decref(doc);
			httpd_reply_error(c->r, 404, "lead", "no such lead, or "
			    "it is not in this drip");
		} else if (code == 409) {
			json_t *err_doc = json_pack("{s:{s:s, s:s}, s:O?}", "error",
			    "field", "lead", "message", refused, "enrollment",
			    json_object_get(doc, "enrollment"));

			json_decref(doc);
			httpd_reply_json(c->r, 409, err_doc);
		} else {
			httpd_reply_json(c->r, !strcmp(c->action, "enroll") ?
			    201 : 200, doc);
		}
		if (code == 200) {
			drip_claim(c->e);
			db_query(c->e->db, "SELECT pg_notify('leadcast_drip', "
			    "'due')", 0, NULL, NULL, NULL);
		}
	} else {
		httpd_reply_error(c->r, 404, "lead", "no such lead, or it is not "
		    "in this drip");
	}
	free(c);
}

/* enroll: the lead enters now (its re-entry policy does not apply to a
 * command), unless it is in the drip or cannot be reached: then the
 * refusal is recorded and said. */
static const char enroll_sql[] =
    "WITH l AS (SELECT l.id, " BLOCKED_SQL " AS blocked FROM leads l "
    "WHERE l.id = $1::bigint), "
    "cur AS (SELECT e.id, e.status FROM drip_enrollments e, l WHERE "
    "e.lead_id = l.id AND e.drip = $2 AND e.status IN ('active', "
    "'paused')), "
    "ins AS (INSERT INTO drip_enrollments AS e (drip, version, lead_id, "
    "status, step, next_run_at, trigger, reason, finished_at) "
    "SELECT $2, $3::int, l.id, CASE WHEN l.blocked IS NOT NULL THEN "
    "'refused' WHEN EXISTS (SELECT 1 FROM drips p WHERE p.name = $2 AND "
    "p.paused) THEN 'paused' ELSE 'active' END, CASE WHEN l.blocked IS NULL "
    "THEN $4 END, CASE WHEN l.blocked IS NULL THEN now() END, 'api', "
    "CASE WHEN l.blocked IS NULL AND EXISTS (SELECT 1 FROM drips p WHERE "
    "p.name = $2 AND p.paused) THEN 'drip paused' ELSE l.blocked END, "
    "CASE WHEN l.blocked IS NOT NULL THEN now() END FROM l "
    "WHERE NOT EXISTS (SELECT 1 FROM cur) ON CONFLICT (drip, lead_id) "
    "WHERE status IN ('active', 'paused') DO NOTHING RETURNING e.*) "
    "SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM l) THEN "
    "'{\"not_found\": true}'::jsonb "
    "WHEN EXISTS (SELECT 1 FROM cur) THEN jsonb_build_object('refused', "
    "'the lead is already in the drip', 'enrollment', (SELECT id FROM cur)) "
    "WHEN (SELECT status FROM ins) = 'refused' THEN jsonb_build_object("
    "'refused', 'the lead cannot be reached: ' || (SELECT reason FROM ins), "
    "'enrollment', (SELECT id FROM ins)) "
    "ELSE (SELECT jsonb_build_object('enrollment', to_jsonb(ins)) FROM ins) "
    "END::text";

static void
drip_api(struct httpd_req *r, void *arg)
{
	struct dripd *e = ((struct lc_daemon *)arg)->drip;
	struct call *c;
	const char *slash = strchr(r->tail, '/');
	size_t nlen = slash ? (size_t)(slash - r->tail) : strlen(r->tail);
	int post = evhttp_request_get_command(r->req) == EVHTTP_REQ_POST;
	const struct drip_def *d;
	json_t *body = NULL;
	const char *p[4];
	char lead[32], ver[16];

	if (nlen == 0 || nlen > DRIP_NAME_MAX || (slash && strlen(slash + 1) >=
	    sizeof(c->action))) {
		httpd_reply_error(r, 404, NULL, "no such endpoint: use "
		    "/api/v1/drips/NAME[/report|pause|resume|enroll|exit|move]");
		return;
	}
	if (!(c = calloc(1, sizeof(*c)))) {
		httpd_reply_error(r, 503, NULL, "out of memory");
		return;
	}
	c->e = e;
	c->r = r;
	memcpy(c->name, r->tail, nlen);
	snprintf(c->action, sizeof(c->action), "%s", slash ? slash + 1 :
	    "report");
	if (!e || !e->d->conf->drips || !drip_find(e->d->conf->drips,
	    c->name)) {
		free(c);
		httpd_reply_error(r, 404, "drip", "no such drip (a file "
		    "NAME.conf in the drips directory)");
		return;
	}
	if (!(d = current_def(e, c->name))) {
		free(c);
		httpd_reply_error(r, 503, NULL, "the drip definitions are being "
		    "loaded: try again in a moment");
		return;
	}
	p[0] = c->name;
	if (!strcmp(c->action, "report") || !strcmp(c->action, "status")) {
		if (post) {
			free(c);
			httpd_reply_error(r, 405, NULL, "use GET");
			return;
		}
		if (db_query(e->db, report_sql, 1, p, on_report, c) < 0)
			goto full;
		return;
	}
	if (!post) {
		free(c);
		httpd_reply_error(r, 405, NULL, "use POST");
		return;
	}
	if (strcmp(c->action, "pause") && strcmp(c->action, "resume") &&
	    strcmp(c->action, "enroll") && strcmp(c->action, "exit") &&
	    strcmp(c->action, "move")) {
		free(c);
		httpd_reply_error(r, 404, NULL, "unknown drip action: use "
		    "report, pause, resume, enroll, exit or move");
		return;
	}
	if (evbuffer_get_length(evhttp_request_get_input_buffer(r->req)) > 0) {
		if (!(body = httpd_body_json(r))) {
			free(c);
			return;
		}
	}
	{
		json_t *l = json_object_get(body, "lead");

		if (l && !(json_is_integer(l) && json_integer_value(l) > 0)) {
			json_decref(body);
			free(c);
			httpd_reply_error(r, 400, "lead", "the lead's id, a "
			    "positive whole number");
			return;
		}
		c->lead = l ? (long long)json_integer_value(l) : 0;
		json_decref(body);
	}
	snprintf(lead, sizeof(lead), "%lld", c->lead);
	snprintf(ver, sizeof(ver), "%d", d->version);
	p[1] = c->lead ? lead : NULL;
	if ((!strcmp(c->action, "enroll") || !strcmp(c->action, "exit")) &&
	    !c->lead) {
		free(c);
		httpd_reply_error(r, 400, "lead", "say which lead: {\"lead\": "
		    "ID}");
		return;
	}
	if (!strcmp(c->action, "enroll")) {
		p[0] = lead;
		p[1] = c->name;
		p[2] = ver;
		p[3] = d->steps[0].name;
		if (db_query(e->db, enroll_sql, 4, p, on_action, c) < 0)
			goto full;
	} else if (!strcmp(c->action, "exit")) {
		if (db_query(e->db, "WITH u AS (UPDATE drip_enrollments SET "
		    "status = 'exited', reason = 'by command', step = NULL, "
		    "next_run_at = NULL, lease_until = NULL, finished_at = now(), "
		    "updated_at = now() WHERE drip = $1 AND lead_id = $2::bigint "
		    "AND status IN ('active', 'paused') RETURNING id) SELECT "
		    "CASE WHEN EXISTS (SELECT 1 FROM u) THEN jsonb_build_object("
		    "'exited', (SELECT id FROM u))::text END", 2, p, on_action,
		    c) < 0)
			goto full;
	} else if (!strcmp(c->action, "pause") && c->lead) {
		if (db_query(e->db, "WITH u AS (UPDATE drip_enrollments SET "
		    "status = 'paused', reason = 'lead paused', updated_at = now() "
		    "WHERE drip = $1 AND lead_id = $2::bigint AND status = "
		    "'active' RETURNING id) SELECT CASE WHEN EXISTS (SELECT 1 "
		    "FROM u) THEN jsonb_build_object('paused', (SELECT id FROM "
		    "u))::text END", 2, p, on_action, c) < 0)
			goto full;
	} else if (!strcmp(c->action, "resume") && c->lead) {
		if (db_query(e->db, "WITH u AS (UPDATE drip_enrollments SET "
		    "status = 'active', reason = NULL, updated_at = now() "
		    "WHERE drip = $1 AND lead_id = $2::bigint AND status = "
		    "'paused' AND NOT EXISTS (SELECT 1 FROM drips WHERE name = $1 "
		    "AND paused) RETURNING id) SELECT CASE WHEN EXISTS (SELECT 1 "
		    "FROM u) THEN jsonb_build_object('resumed', (SELECT id FROM "
		    "u))::text END", 2, p, on_action, c) < 0)
			goto full;
	} else if (!strcmp(c->action, "pause") || !strcmp(c->action, "resume")) {
		p[1] = !strcmp(c->action, "pause") ? "t" : "f";
		if (db_query(e->db, "WITH d AS (INSERT INTO drips (name, paused) "
		    "VALUES ($1, $2::bool) ON CONFLICT (name) DO UPDATE SET "
		    "paused = $2::bool, updated_at = now()), "
		    "u AS (UPDATE drip_enrollments SET status = CASE WHEN "
		    "$2::bool THEN 'paused' ELSE 'active' END, reason = CASE WHEN "
		    "$2::bool THEN 'drip paused' END, updated_at = now() WHERE "
		    "drip = $1 AND ((status = 'active' AND $2::bool) OR (status = "
		    "'paused' AND reason = 'drip paused' AND NOT $2::bool)) "
		    "RETURNING 1) SELECT jsonb_build_object('drip', $1::text, "
		    "'paused', $2::bool, 'enrollments', (SELECT count(*) FROM "
		    "u))::text", 2, p, on_action, c) < 0)
			goto full;
	} else {        /* move: to the current version, where the step is */
		json_t *steps = json_array();
		char *ss;
		const char *mp[4];

		for (size_t i = 0; i < d->nsteps; i++)
			json_array_append_new(steps, json_string(
			    d->steps[i].name));
		ss = json_dumps(steps, JSON_COMPACT);
		json_decref(steps);
		mp[0] = c->name;
		mp[1] = c->lead ? lead : NULL;
		mp[2] = ver;
		mp[3] = ss;
		if (db_query(e->db, "WITH u AS (UPDATE drip_enrollments SET "
		    "version = $3::int, updated_at = now() WHERE drip = $1 AND "
		    "($2::bigint IS NULL OR lead_id = $2::bigint) AND status IN "
		    "('active', 'paused') AND version <> $3::int AND "
		    "$4::jsonb ? step AND (lease_until IS NULL OR lease_until < "
		    "now()) RETURNING 1), "
		    "s AS (SELECT count(*) AS n FROM drip_enrollments WHERE drip = "
		    "$1 AND ($2::bigint IS NULL OR lead_id = $2::bigint) AND "
		    "status IN ('active', 'paused') AND version <> $3::int) "
		    "SELECT jsonb_build_object('moved', (SELECT count(*) FROM u), "
		    "'version', $3::int, 'not_moved', (SELECT n FROM s) - (SELECT "
		    "count(*) FROM u))::text", 4, mp, on_action, c) < 0) {
			free(ss);
			goto full;
		}
		free(ss);
	}
	return;
full:
	free(c);
	httpd_reply_error(r, 503, NULL, "the database queue is full");
}

static void
drip_list(struct httpd_req *r, void *arg)
{
	struct lc_daemon *d = arg;
	struct call *c = calloc(1, sizeof(*c));
	struct buf names;
	const char *p[1];
	int rc;

	if (!c || !d->drip) {
		free(c);
		httpd_reply_error(r, 503, NULL, "out of memory");
		return;
	}
	c->e = d->drip;
	c->r = r;
	buf_init(&names, 0);
	for (size_t i = 0; d->conf->drips && i < d->conf->drips->n; i++)
		db_array_add(&names, d->conf->drips->v[i]->name);
	p[0] = db_array_end(&names);
	rc = db_query(d->drip->db, "SELECT n.name, coalesce(p.paused, false), "
	    "(SELECT coalesce(jsonb_object_agg(status, k), '{}') FROM (SELECT "
	    "status, count(*) AS k FROM drip_enrollments WHERE drip = n.name "
	    "GROUP BY status) s)::text FROM unnest($1::text[]) AS n(name) "
	    "LEFT JOIN drips p ON p.name = n.name", 1, p, on_list, c);
	buf_free(&names);
	if (rc < 0) {
		free(c);
		httpd_reply_error(r, 503, NULL, "the database queue is full");
	}
}

/* ---- life ----------------------------------------------------------------- */

void
drip_routes_register(struct lc_daemon *d)
{
	static const struct httpd_route routes[] = {
		{ HTTPD_GET | HTTPD_AUTH, "/api/v1/drips", "api_drips",
		  drip_list, NULL },
		{ HTTPD_GET | HTTPD_POST | HTTPD_AUTH, "/api/v1/drips/",
		  "api_drip", drip_api, NULL },
	};

	httpd_add_routes(d->httpd, routes, sizeof(routes) / sizeof(routes[0]),
	    d);
}

static void
on_db_state(void *arg, enum db_state st)
{
	if (st == DB_READY)
		drip_kick(arg);
}

static double g_vers(void *a) { return (double)((struct dripd *)a)->nvers; }

struct dripd *
drip_new(struct lc_daemon *d)
{
	struct dripd *e = calloc(1, sizeof(*e));
	struct timeval second = { 1, 0 };

	if (!e)
		return NULL;
	e->d = d;
	pthread_mutex_init(&e->lock, NULL);
	if (!(e->db = db_new(d->base, d->conninfo))) {
		free(e);
		return NULL;
	}
	db_set_state_cb(e->db, on_db_state, e);
	db_listen(e->db, "leadcast_drip", on_wake, e);
	db_start(e->db);
	e->timer = evtimer_new(d->base, on_timer, e);
	e->tick = event_new(d->base, -1, EV_PERSIST, on_tick, e);
	event_add(e->tick, &second);
	e->m_steps = metrics_counter("leadcast_drip_steps_total",
	    "Drip steps run.", NULL);
	e->m_enrolled = metrics_counter("leadcast_drip_enrollments_total",
	    "Leads enrolled in drips by their triggers.", NULL);
	e->m_refused = metrics_counter("leadcast_drip_refused_total",
	    "Enrollments refused (the lead cannot be reached).", NULL);
	e->m_exited = metrics_counter("leadcast_drip_goal_exits_total",
	    "Enrollments ended by a goal.", NULL);
	metrics_gauge_func("leadcast_drip_versions", "Drip definition versions "
	    "loaded.", NULL, g_vers, e);
	return e;
}

void
drip_free(struct dripd *e)
{
	if (!e)
		return;
	metrics_gauge_func("leadcast_drip_versions", "Drip definition versions "
	    "loaded.", NULL, NULL, NULL);
	event_free(e->timer);
	event_free(e->tick);
	db_free(e->db);
	for (size_t i = 0; i < e->nvers; i++) {
		if (e->vers[i].owned)
			drip_def_free(e->vers[i].def);
		conf_unref(e->vers[i].conf);
	}
	free(e->vers);
	pthread_mutex_destroy(&e->lock);
	free(e);
}
