/*
 * daemon.h - the state leadcastd's modules share on the loop thread, and
 * the entry points the HTTP handlers call back into.
 *
 * boot is the configuration the daemon started with: settings that need a
 * restart (addresses, state directory, database, user, workers) are read
 * from it. conf is the current one, replaced by each successful reload.
 */
#ifndef LEADCAST_DAEMON_H
#define LEADCAST_DAEMON_H

#include <jansson.h>
#include <time.h>

#include "buf.h"
#include "cfgfile.h"
#include "conf.h"
#include "db.h"
#include "pgembed.h"
#include "token.h"

struct event;
struct cond_sqlmap;
struct event_base;
struct httpd;
struct workq;
struct db;
struct sender;
struct router;
struct smsd;
struct track;
struct bounced;
struct dripd;
struct campaign_def;
struct httpd_req;
struct route_conf;
struct campaign_def;
struct cond_params;
struct quiet;

/* Database sessions besides the router's and the sender's: d->db and
 * these, shared by captures so that their commits overlap (each waits
 * for its WAL flush) instead of queuing behind one another. */
#define DAEMON_SESSIONS 3

struct lc_daemon {
	struct event_base *base;
	const char *conf_path;
	struct conf *boot;              /* as started: restart-only settings */
	struct conf *conf;              /* current: reloadable settings */
	struct httpd *httpd;
	struct workq *workq;
	struct db *db;                  /* session 0: LISTEN, most queries */
	struct db *sessions[DAEMON_SESSIONS];   /* more, for captures */
	struct sender *sender;
	struct router *router;
	struct smsd *sms;               /* sms.c: the SMS engine */
	struct track *track;            /* track.c: hits, threads, spool */
	struct bounced *bounces;        /* bounces.c: the bounce reader */
	struct dripd *drip;             /* drip.c: the drip engine */
	char conninfo[2048];            /* of the database, for more sessions */
	int embedded;
	struct pgembed pg;
	int pg_restart_pending;
	time_t started;
	char admin_token[512];
	struct token_key url_key;       /* signs tokens in public URLs */
	long long node_id;
	int stopping;
	struct timespec stop_deadline;
	struct event *ev_sig[3], *ev_heartbeat, *ev_drain, *ev_supervise;
	/* the last reload */
	time_t reload_time;
	int reload_ok;
	struct cfgfile_errors reload_errors;
	char restart_needed[512];
};

/* The least busy ready session of d->db and d->sessions: for statements
 * that stand alone (each a transaction of its own, ordered by callbacks,
 * never by the order of posting). */
struct db *daemon_db(struct lc_daemon *d);
/* Queries queued or in flight on all of them. */
size_t daemon_db_pending(const struct lc_daemon *d);

/* Reload the configuration file; 0, or -1 (errors in d->reload_errors). */
int daemon_reload(struct lc_daemon *d);
/* Start draining and exit. */
void daemon_stop(struct lc_daemon *d);

/* core_routes.c: /healthz, /metrics, /api/v1/status, /api/v1/reload. */
void core_routes_register(struct lc_daemon *d);
/* track_routes.c: /o/ open pixel, /c/ click redirect, /u/ unsubscribe. */
void track_routes_register(struct lc_daemon *d);
/* campaign_routes.c: /api/v1/campaigns... */
void campaign_routes_register(struct lc_daemon *d);
/* list_routes.c: /api/v1/lists..., /s/ confirmations. */
void list_routes_register(struct lc_daemon *d);
/* Create the declared lists in the database. */
void lists_sync(struct lc_daemon *d);
/* form_routes.c: GET and POST /f/{form}, the public lead forms. */
void form_routes_register(struct lc_daemon *d);
/* Render templates/pages/NAME with data (stolen) as an HTML reply. */
struct httpd_req;
void daemon_page(struct lc_daemon *d, struct httpd_req *r, int code,
    const char *name, json_t *data);
/* The same with configuration c: from any thread holding a reference. */
void daemon_page_conf(const struct conf *c, struct httpd_req *r, int code,
    const char *name, json_t *data);

/* sender.c: the delivery engine. */
typedef void sender_action_fn(void *arg, int status, json_t *doc);
/*
 * list_routes.c: subscribe a cleaned lead with an email (stolen) to list,
 * as the person's own request: double opt-in as the list says (the
 * confirmation is sent), an earlier unsubscribe undone. cb gets an HTTP
 * status and {"lead","email","list","status"} or {"error":{...}}; -1
 * (cb not called) for an unknown list or a lead without an email.
 */
int lists_subscribe(struct lc_daemon *d, const char *list, json_t *lead,
    sender_action_fn *cb, void *arg);
struct sender *sender_new(struct lc_daemon *d);
void sender_free(struct sender *s);
/* Claim due deliveries now (a NOTIFY, a resumed campaign). */
void sender_kick(struct sender *s);
/* No batch composing or sending, no claim in flight. */
int sender_idle(const struct sender *s);
/* This node is registered: release what dead daemons on this host held. */
void sender_node_ready(struct sender *s);
/* what: start, pause, resume, cancel, report (and schedule, internal).
 * cb gets an HTTP status and a JSON document it owns (NULL for 204). */
int sender_campaign_action(struct sender *s, const char *what,
    const char *name, sender_action_fn *cb, void *arg);
/* Append to sql the condition that the lead aliased l is in def's
 * audience: subscribed (confirmed) to one of the lists of the SQL int[]
 * expression lists (for an SMS campaign: a phone, consent to SMS, and no
 * lists means every lead), and def's audience condition, its parameters
 * numbered from *next and added to cp. 0, or -1 with err. */
int sender_audience_sql(const struct campaign_def *def, const char *lists,
    int *next, struct buf *sql, struct cond_params *cp, char *err, size_t n);
/*
 * Queue notification `name` (conf/notifications/NAME.conf) to several
 * people at once: PostgreSQL array literals of lead ids (or NULL), email
 * addresses and JSON template data. Sent by the engine like any delivery:
 * durable, retried, tracked and signed.
 */
int sender_notify(struct sender *s, const char *name, const char *leads,
    const char *emails, const char *vars, sender_action_fn *cb, void *arg);
/*
 * router.c: the routing engine on the loop: leads due for routing are
 * claimed and decided in a transaction of their own session (offers,
 * queue, catch-all), offers expire at their deadlines (kept in the
 * database), a sweeper routes any lead left with neither owner nor
 * deadline. It serves /api/v1/reps..., /api/v1/offers/... and the rep's
 * lead card /r/{token}.
 */
struct router *router_new(struct lc_daemon *d);
void router_free(struct router *r);
/* Leads may be due for routing now (this node or a NOTIFY). */
void router_kick(struct router *r);
/* The configuration was reloaded: rebuild the routing configuration. */
void router_conf_changed(struct router *r);
/* No routing transaction in flight. */
int router_idle(const struct router *r);
/* The routing configuration in force (routing.conf with the reps kept in
 * the database laid over it), or NULL when routing is off. Valid until
 * the loop runs again. */
const struct route_conf *router_conf(const struct router *r);
/* The rep's number (in signed tokens), 0 if unknown yet. */
long long router_rep_num(const struct router *r, const char *rep);
/*
 * Tell rep that it owns lead now (a manual assignment, a pull, a catch-all
 * or a threshold): the notification "offer" with kind "assigned" (or
 * kind "reengaged" for a lead that came back to life), lead a JSON object
 * of the lead's row (borrowed).
 */
void router_notify_owner(struct router *r, const char *rep, const char *kind,
    const json_t *lead);

/*
 * leads.c: capture and the lead API (/api/v1/leads..., /api/v1/events,
 * /api/v1/queue, /api/v1/reports/routing).
 *
 * leads_capture: capture a lead (a JSON object that went through
 * lead_clean, stolen) from any channel; event (stolen, may be NULL) is a
 * behavior event recorded and scored with it, e.g. {"type":"form",
 * "form":"contact"}. cb gets an HTTP status and a document it owns:
 * {"lead":{...},"created":bool} or {"error":{"field","message"}}.
 */
int leads_capture(struct lc_daemon *d, json_t *lead, json_t *event,
    sender_action_fn *cb, void *arg);
void leads_routes_register(struct lc_daemon *d);
/* POST /api/v1/reps/{rep}/next: give rep the next lead of its pull
 * queues (router.c owns the /api/v1/reps/ prefix and calls this). */
void leads_next(struct lc_daemon *d, struct httpd_req *r, const char *rep);

/*
 * router.c: answer offer as rep ("" = any rep: admin) with the same
 * statements as the API and the lead card; cb gets the outcome: accepted
 * or rejected (done now), already_accepted or already_rejected (answered
 * before), expired, withdrawn (another rep took the lead), unknown (no
 * such offer of this rep) or error; and the lead's row when this answer
 * changed it (borrowed; else NULL). -1 (cb not called) if the query
 * cannot be queued.
 */
typedef void router_answer_fn(void *arg, const char *outcome,
    const json_t *lead);
int router_answer(struct router *r, long long offer, const char *rep,
    int accept, router_answer_fn *cb, void *arg);
/* Put rep on or off duty (back on: marked away, so that its stride pass
 * rises to the floor at its next lead: no burst); cb gets the row (id,
 * on_duty), none for an unknown rep. 0, or -1 if the query cannot be
 * queued. */
int router_set_duty(struct router *r, const char *rep, int on,
    db_result_fn *cb, void *arg);
/* The rep whose token number is num, or NULL. Valid until the loop runs
 * again. */
const char *router_rep_of_num(const struct router *r, long long num);
/*
 * Change rep id's own profile keys (skills, territories, products,
 * languages, hours, time_zone) as the rep's token num/gen (0: admin):
 * checked against the whole routing configuration, then stored. change
 * is stolen. cb gets 200, or an error status with the field at fault
 * (may be NULL) and a message. -2 if change has a key a rep may not set,
 * -1 if the query cannot be queued (cb not called either way).
 */
typedef void router_change_fn(void *arg, int code, const char *field,
    const char *msg);
int router_change_rep(struct router *r, const char *id, json_t *change,
    long long num, long long gen, router_change_fn *cb, void *arg);
/* leads.c: take lead from its queue for rep, as POST
 * /api/v1/leads/{id}/claim does; cb gets the status and document. */
void leads_claim_cb(struct lc_daemon *d, const char *rep, long long lead,
    sender_action_fn *cb, void *arg);
/*
 * rep_pages.c: the rep's pages, server-rendered from templates/web/: the
 * lead card (router.c verifies its token and answers; pages_card shows
 * it, with outcome the answer just given or NULL), and the rep's own page
 * /rep/{token}: queue, take next, cherry-pick, availability, profile.
 */
void pages_card(struct lc_daemon *d, struct httpd_req *r, const char *tok,
    long long offer, const char *rep, long long num, const char *outcome);
void rep_pages_register(struct lc_daemon *d);
/* admin_pages.c: the read-only reports dashboard /admin (admin token as
 * bearer or basic-auth password). */
void admin_pages_register(struct lc_daemon *d);
/* leads.c: record event (a JSON object with "type", stolen) on lead and
 * score it, as POST /api/v1/events does; cb gets the status and the lead
 * (or an error document), owned. */
void leads_event(struct lc_daemon *d, long long lead, json_t *event,
    sender_action_fn *cb, void *arg);
/* leads.c: score event (stolen) on lead as leads_event does, for an event
 * already recorded (a tracking hit): nothing more is written to events. */
void leads_score(struct lc_daemon *d, long long lead, json_t *event,
    sender_action_fn *cb, void *arg);
/* leads.c: leads_next for callers other than HTTP: cb gets the status and
 * document POST /api/v1/reps/{rep}/next would answer with (owned). */
void leads_next_cb(struct lc_daemon *d, const char *rep,
    sender_action_fn *cb, void *arg);

/*
 * sms.c: the SMS engine (see the top of sms.c). sms_batch: messages to
 * queue with one statement, sms_queue_sql, whose SMS_BATCH_COLS parameters
 * sms_batch_params gives; inside a transaction (the router's) or with
 * sms_batch_queue on the shared session.
 */
#define SMS_BATCH_COLS 10
struct sms_batch {
	struct buf a[SMS_BATCH_COLS];
	int n;
};
extern const char sms_queue_sql[];
void sms_batch_init(struct sms_batch *b);
void sms_batch_free(struct sms_batch *b);
void sms_batch_params(struct sms_batch *b, const char **p);
void sms_batch_queue(struct lc_daemon *d, struct sms_batch *b);
/* One text (UTF-8) to E.164 number to through gateway; kind: offer,
 * reply, ...; offer and lead ids (0: none); rep (may be NULL); fallback:
 * the JSON {"email", "vars"} of the offer email to send should it fail,
 * or NULL. 0, or -1 (logged) if the text cannot go by SMS. */
int sms_batch_add(struct sms_batch *b, const char *gateway, const char *to,
    const char *text, const char *kind, long long offer, long long lead,
    const char *rep, const char *fallback);
/* A rep notice (the data of the "offer" notification: kind, copy, lead,
 * card_url, ...) rendered with templates/sms/offer, fitted to sms.conf's
 * offer_segments, to phone through the gateway for rep and team. -1 if
 * there is no SMS configuration or it cannot be made. */
int sms_batch_add_notice(struct lc_daemon *d, struct sms_batch *b,
    const char *rep, const char *phone, const char *team, json_t *data,
    long long offer, long long lead, const char *fallback);
/*
 * Texts to leads: the one path SMS campaigns and drip steps send by.
 * sms_to_lead() renders template (templates/NAME.mustache) with the lead's
 * fields (as campaigns do: {{first_name}}, {{fields.plan}}) plus vars
 * (may be NULL; not stolen), and queues it once per key: a second call
 * with the same key (a retried drip step, a restarted daemon) queues
 * nothing and answers "duplicate" with the first message's id. The text
 * goes only to a lead with a phone and recorded consent (sms_consent
 * true), checked again when it is about to go out (a STOP in between
 * suppresses it); in quiet hours (the lead's time_zone, else
 * m->time_zone) it waits for their end. cb (may be NULL) gets one of
 * queued, duplicate, no_consent, no_phone, too_long (more parts than
 * max_segments: recorded as failed), error, with a message and the sms
 * id (0 if none). Returns 0, or -1 (cb not called) when it cannot start.
 */
struct sms_lead_msg {
	long long lead;                 /* leads.id */
	const char *template_name;      /* "sms/welcome" */
	const char *key;                /* idempotency key, at most 200 bytes:
	                                 * "drip:NAME:ENROLLMENT:STEP" */
	const char *kind;               /* "drip", "campaign", ...; NULL =
	                                 * "lead" */
	int campaign_id;                /* campaigns.id, or 0 */
	const char *gateway;            /* NULL or "": sms.conf's default */
	const struct quiet *quiet;      /* NULL: none */
	const char *time_zone;          /* for leads without one; NULL = UTC */
	int max_segments;               /* 0 = SMS_MAX_SEGMENTS */
	const json_t *vars;             /* more template data, or NULL */
};
typedef void sms_lead_fn(void *arg, const char *status, const char *msg,
    long long sms_id);
int sms_to_lead(struct lc_daemon *d, const struct sms_lead_msg *m,
    sms_lead_fn *cb, void *arg);
struct smsd *sms_new(struct lc_daemon *d);
void sms_free(struct smsd *s);
/* Messages may be due: claim now. */
void sms_kick(struct smsd *s);
/* No claim or request in flight. */
int sms_idle(const struct smsd *s);

/*
 * bounces.c: the bounce reader (the mailboxes of the configuration, each
 * on a worker thread of its own) and GET /api/v1/bounces.
 * bounces_conf_changed: after a reload, start, keep or stop mailboxes.
 * bounces_idle: no job or query in flight (when the daemon is stopping,
 * it stops the mailboxes first). bounces_stop: stop starting work and end
 * IDLE waits; bounces_free may block until a worker's network call ends.
 */
struct bounced *bounces_new(struct lc_daemon *d);
void bounces_conf_changed(struct bounced *b);
int bounces_idle(struct bounced *b);
void bounces_stop(struct bounced *b);
void bounces_free(struct bounced *b);
/*
 * drip.c: the drip engine (see the top of drip.c) and /api/v1/drips....
 * drip_email_def: the definition of a drip email step's campaign
 * ("drip/NAME/VERSION/STEP"), or NULL; thread-safe (the sender's workers
 * call it): *ref is a reference to the configuration it lives in, which
 * the caller releases with conf_unref once done with it.
 */
struct dripd *drip_new(struct lc_daemon *d);
void drip_free(struct dripd *e);
void drip_routes_register(struct lc_daemon *d);
/* Definitions may have changed, steps may be due, events may wait. */
void drip_kick(struct dripd *e);
int drip_idle(const struct dripd *e);
const struct campaign_def *drip_email_def(struct dripd *e,
    const char *campaign, struct conf **ref);

/* Compose and send one copy of campaign `name` to `to` now. */
int sender_send_test(struct sender *s, const char *name, const char *to,
    sender_action_fn *cb, void *arg);

/* nodelay.c: the calling thread's sockets are read by libevent alone, so
 * its ioctl(FIONREAD) before each read is answered without a system call
 * (see nodelay.c). For threads that run only an event_base. */
void nodelay_libevent_reads(void);

#endif
