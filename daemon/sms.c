/*
 * sms - the SMS engine on the loop: it sends the messages queued in the
 * sms table through the gateways of sms.conf, and serves the gateways'
 * delivery reports (/sms/dlr/{gateway}) and inbound messages
 * (/sms/in/{gateway}), where reps answer offers and leads opt out.
 *
 *   queueing   sms_batch_*: rows for leadcast_sms_queue() (004_sms.sql),
 *              which gives an offer its code; the router queues offer
 *              texts in its routing transaction, beside the offer emails.
 *   sending    per gateway, rows due are claimed (FOR UPDATE SKIP LOCKED,
 *              a lease) as its token bucket (rate) and its connections
 *              allow, and sent with libevent's HTTP client (HTTPS through
 *              libevent_openssl, the peer's certificate and name checked),
 *              each on a connection of its own with the gateway's timeout:
 *              nothing waits on the loop. email2sms gateways send through
 *              the sender (the notification "sms"). A failure is retried
 *              with backoff (retry_base doubling) up to retries times, then
 *              the message fails over to the gateway's failover gateway,
 *              else fails. At the first failure of an offer text to a rep
 *              told by SMS only, the offer email is queued (sms.fallback).
 *   reports    /sms/dlr/NAME: delivered, failed or interim, recorded on
 *              the message; a failed report brings the fallback email.
 *   inbound    /sms/in/NAME: recorded in sms_in; from a rep's phone:
 *              Y code, N code (router_answer), NEXT (leads_next_cb), ON,
 *              OFF, HELP, each answered by SMS; from a lead's: STOP,
 *              START (consent), anything else a 'reply' event; from others:
 *              recorded, ignored.
 * Both endpoints authenticate the gateway (smsgw_authorized) before they
 * read anything else; a refused request changes nothing.
 *
 * It does not decide routing (router.c) nor send email (sender.c).
 */
#include "config.h"
#include "daemon.h"

#include <sys/queue.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "buf.h"
#include "campaign.h"
#include "cond.h"
#include "db.h"
#include "httpd.h"
#include "log.h"
#include "metrics.h"
#include "phone.h"
#include "quiet.h"
#include "route.h"
#include "sms.h"
#include "smsgw.h"
#include "tmpl.h"

#define TICK_MS         200
#define CLAIM_MAX       50
#define ANSWER_MAX      65536           /* bytes of a gateway's answer read */
#define IN_TEXT_MAX     1600            /* bytes of an inbound message */
#define MAX_BACKOFF_MS  (3600L * 1000)
#define CODE_MARK       "\xc2\xa7\xc2\xa7\xc2\xa7\xc2\xa7"  /* "§§§§" */

struct job;
struct smsd;
struct pconn;

static void sms_claim(struct smsd *s);
static void sms_fill(struct smsd *s, int now);

/* A gateway's runtime state. Claims run ahead of the connections (up to
 * AHEAD times as many messages, all leased): the claimed wait in a local
 * queue and go out as connections free, without a claim each. */
struct gwstate {
	char name[65];
	double tokens;
	struct timespec refill;
	int inflight;
	int claiming;
	int rekick;                     /* woken while claiming: claim again */
	struct job *qhead, *qtail;      /* claimed, not yet sent */
	int queued;
	struct pconn *pool;             /* kept-alive connections */
	int npool;
};

/* A connection to a gateway, kept alive between requests (one request at
 * a time); at most `connections` per gateway. Dropped when the peer
 * closes it, a request on it fails, or it idles IDLE_MAX_S. */
struct pconn {
	struct smsd *s;
	struct gwstate *st;
	struct evhttp_connection *conn;
	char host[256];
	int port, tls;
	int busy;                       /* a request in flight */
	int dead;                       /* closed while busy: not reused */
	time_t idle_since;
	struct pconn *next;
};
#define IDLE_MAX_S 30
#define AHEAD 4

struct smsd {
	struct lc_daemon *d;
	struct db *db;                  /* a session of its own: texts, reports
	                                 * and replies do not queue behind
	                                 * captures (gateways wait for our
	                                 * answers to their reports) */
	struct db *send_db;             /* claims and their outcomes, so that
	                                 * an offer's claim never queues behind
	                                 * delivery reports; asynchronous
	                                 * commit (a claim lost in a database
	                                 * crash is claimed again; the handed
	                                 * mark of a text to a lead, which must
	                                 * hold, is on db) */
	struct event *tick;
	struct evdns_base *dns;
	SSL_CTX *ssl;                   /* the system's CAs */
	struct cactx {                  /* gateways' own CAs (ca_file) */
		char *path;
		SSL_CTX *ctx;
	} *cas;
	size_t ncas;
	struct gwstate **gw;            /* each allocated once: jobs and
	                                 * claims point at them */
	size_t ngw;
	time_t last_fix, last_remind;
	int reminding;                  /* a reminder query in flight */
	int filling, fill_more;         /* an SMS campaign chunk in flight;
	                                 * the last was full */
	time_t last_fill;
	int closing;                    /* sms_free: start nothing */
	/* texts accepted by their gateways, recorded together (sent_batch) */
	struct buf sent_ids, sent_msgids, sent_at;
	int nsent;
	struct event *ev_flush;
	/* texts to leads waiting for their handed mark (hand()) */
	struct job **hand;
	int nhand, handing;
	struct event *ev_hand;
	struct metric *m_sent, *m_retry, *m_failed, *m_failover,
	    *m_delivered, *m_dlr_failed, *m_in, *m_refused;
};

/* ---- queueing ------------------------------------------------------------------ */

void
sms_batch_init(struct sms_batch *b)
{
	memset(b, 0, sizeof(*b));
	for (int i = 0; i < SMS_BATCH_COLS; i++)
		buf_init(&b->a[i], 0);
}

void
sms_batch_free(struct sms_batch *b)
{
	for (int i = 0; i < SMS_BATCH_COLS; i++)
		buf_free(&b->a[i]);
	b->n = 0;
}

void
sms_batch_params(struct sms_batch *b, const char **p)
{
	for (int i = 0; i < SMS_BATCH_COLS; i++)
		p[i] = db_array_end(&b->a[i]);
}

const char sms_queue_sql[] = "SELECT leadcast_sms_queue($1::text[], "
    "$2::text[], $3::text[], $4::text[], $5::int[], $6::text[], "
    "$7::bigint[], $8::bigint[], $9::text[], $10::jsonb[])";

static void
add_id(struct buf *b, long long v)
{
	char s[32];

	snprintf(s, sizeof(s), "%lld", v);
	db_array_add(b, v > 0 ? s : NULL);
}

int
sms_batch_add(struct sms_batch *b, const char *gateway, const char *to,
    const char *text, const char *kind, long long offer, long long lead,
    const char *rep, const char *fallback)
{
	struct sms_info in;
	char seg[16];

	if (sms_measure(text, strlen(text), &in) < 0 ||
	    in.segments > SMS_MAX_SEGMENTS) {
		log_warn("sms to %s: not sent: the text is not UTF-8 or longer "
		    "than %d parts", to, SMS_MAX_SEGMENTS);
		return -1;
	}
	snprintf(seg, sizeof(seg), "%zu", in.segments);
	db_array_add(&b->a[0], gateway);
	db_array_add(&b->a[1], to);
	db_array_add(&b->a[2], text);
	db_array_add(&b->a[3], sms_encoding_name(in.encoding));
	db_array_add(&b->a[4], seg);
	db_array_add(&b->a[5], kind);
	add_id(&b->a[6], offer);
	add_id(&b->a[7], lead);
	db_array_add(&b->a[8], rep);
	db_array_add(&b->a[9], fallback);
	b->n++;
	return 0;
}

/* "Jane Doe, Acme, Troy MI": the part of an offer text that shrinks. */
static char *
summary(const json_t *lead)
{
	const char *name = json_string_value(json_object_get(lead, "name"));
	const char *co = json_string_value(json_object_get(lead, "company"));
	const char *city = json_string_value(json_object_get(lead, "city"));
	const char *reg = json_string_value(json_object_get(lead, "region"));
	struct buf b;

	buf_init(&b, 4096);
	buf_puts(&b, name && *name ? name : "(no name)");
	if (co && *co)
		buf_printf(&b, ", %s", co);
	if ((city && *city) || (reg && *reg))
		buf_printf(&b, ", %s%s%s", city ? city : "", city && *city &&
		    reg && *reg ? " " : "", reg ? reg : "");
	return buf_steal(&b);
}

/*
 * Render t with data into out (a buf of the caller's), typographic
 * characters folded to GSM-7 ones, spaces trimmed at both ends; one_line:
 * line ends become spaces. Returns the text (inside out), or NULL.
 */
static char *
render_text(struct lc_daemon *d, const struct tmpl *t, const json_t *data,
    int one_line, struct buf *out)
{
	struct buf raw;
	char *s, *e;
	int r;

	buf_init(&raw, 65536);
	r = tmpl_render(t, data, d->conf->templates, TMPL_ESCAPE_NONE, &raw) <
	    0 || sms_fold(buf_str(&raw), raw.len, out) < 0 || !out->data;
	buf_free(&raw);
	if (r)
		return NULL;
	for (s = out->data; one_line && *s; s++)
		if (*s == '\n' || *s == '\r')
			*s = ' ';
	s = out->data;
	while (*s == ' ' || *s == '\n' || *s == '\r')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\n' || e[-1] == '\r'))
		*--e = '\0';
	return s;
}

/* Render template name with data (the offer notification's) fitted to
 * offer_segments, and add it. */
static int
add_rendered(struct lc_daemon *d, struct sms_batch *b, const char *name,
    const char *kind, const char *rep, const char *phone, const char *team,
    json_t *data, long long offer, long long lead, const char *fallback)
{
	const struct smsgw_conf *sc = d->conf->sms;
	const struct tmpl *t = sc ? tmpl_set_get(d->conf->templates, name) :
	    NULL;
	json_t *v;
	struct buf folded, out;
	char *sum, *s;
	int copy = json_is_true(json_object_get(data, "copy")), r = -1, segs;
	struct sms_info in;

	if (!t || !phone || !*phone)
		return -1;
	if (!(v = json_deep_copy(data)))
		return -1;
	sum = summary(json_object_get(data, "lead"));
	json_object_set_new(v, "summary", json_string(SMS_FIT_MARK));
	/* the code goes in by leadcast_sms_queue, for offers to the rep */
	if (!json_is_string(json_object_get(v, "code")))
		json_object_set_new(v, "code", json_string(offer > 0 && !copy ?
		    CODE_MARK : ""));
	buf_init(&folded, 65536);
	buf_init(&out, 65536);
	if (!(s = render_text(d, t, v, 1, &folded)))
		goto out;
	{
		struct buf fs;

		buf_init(&fs, 8192);
		if (sms_fold(sum, strlen(sum), &fs) < 0) {
			buf_free(&fs);
			goto out;
		}
		segs = sms_fit(s, buf_str(&fs), (size_t)sc->offer_segments, &out,
		    &in);
		buf_free(&fs);
	}
	if (segs < 0)
		goto out;
	if (segs > sc->offer_segments)
		log_warn("sms to rep %s: the text takes %d parts (offer_segments "
		    "= %ld): templates/%s is too long", rep, segs,
		    sc->offer_segments, name);
	r = sms_batch_add(b, smsgw_for(sc, rep, team)->name, phone,
	    buf_str(&out), kind ? kind : copy ? "copy" : offer > 0 ? "offer" :
	    "notice", copy ? 0 : offer, lead, rep, fallback);
out:
	free(sum);
	json_decref(v);
	buf_free(&folded);
	buf_free(&out);
	return r;
}

int
sms_batch_add_notice(struct lc_daemon *d, struct sms_batch *b,
    const char *rep, const char *phone, const char *team, json_t *data,
    long long offer, long long lead, const char *fallback)
{
	return add_rendered(d, b, "sms/offer", NULL, rep, phone, team, data,
	    offer, lead, fallback);
}

static void
on_queued(void *arg, const PGresult *res, const char *err)
{
	(void)arg;
	(void)res;
	if (err)
		log_warn("queuing SMS: %s", err);
}

/* Queue b now on the shared session (outside a transaction). */
void
sms_batch_queue(struct lc_daemon *d, struct sms_batch *b)
{
	const char *p[SMS_BATCH_COLS];

	if (!b->n)
		return;
	sms_batch_params(b, p);
	if (db_query(d->sms ? d->sms->db : d->db, sms_queue_sql,
	    SMS_BATCH_COLS, p, on_queued, NULL) < 0)
		log_warn("queuing SMS: the database queue is full");
}

/* One text to phone now, through gateway (NULL: the default). */
static void
sms_send_text(struct lc_daemon *d, const char *gateway, const char *to,
    const char *text, const char *rep, long long lead)
{
	struct sms_batch b;
	const struct smsgw_conf *sc = d->conf->sms;

	if (!sc)
		return;
	if (!gateway || !smsgw_find(sc, gateway))
		gateway = smsgw_for(sc, rep, NULL)->name;
	sms_batch_init(&b);
	if (sms_batch_add(&b, gateway, to, text, "reply", 0, lead, rep, NULL)
	    == 0)
		sms_batch_queue(d, &b);
	sms_batch_free(&b);
}

/* ---- texts to leads (campaigns, drip steps) -------------------------------------- */

/*
 * Rows for lead_queue_sql: LB_COLS arrays, then the campaign whose fill
 * cursor advances with them (NULL: none), the cursor, and whether the
 * campaign's audience is then all queued.
 */
#define LB_COLS 16
struct lead_batch {
	struct buf a[LB_COLS];
	int n;
};

static const char lead_queue_sql[] =
    "WITH x AS (SELECT * FROM unnest($1::text[], $2::text[], $3::text[], "
    "$4::text[], $5::int[], $6::text[], $7::bigint[], $8::text[], "
    "$9::int[], $10::int[], $11::int[], $12::text[], $13::numeric[], "
    "$14::text[], $15::text[], $16::float8[]) AS t(gateway, to_number, "
    "body, encoding, segments, kind, lead_id, idem_key, campaign_id, "
    "quiet_from, quiet_to, time_zone, cost, status, error, at)), "
    "i AS (INSERT INTO sms (gateway, first_gateway, to_number, body, "
    "encoding, segments, kind, lead_id, idem_key, campaign_id, "
    "consent_required, quiet_from, quiet_to, time_zone, cost, status, "
    "error, next_attempt_at) SELECT gateway, gateway, to_number, body, "
    "encoding, segments, kind, lead_id, idem_key, campaign_id, true, "
    "quiet_from, quiet_to, time_zone, cost, status, error, to_timestamp(at) "
    "FROM x ON CONFLICT (idem_key) WHERE idem_key IS NOT NULL DO NOTHING "
    "RETURNING id, idem_key), "
    "c AS (UPDATE campaigns SET fill_cursor = greatest(fill_cursor, "
    "$18::bigint), filled_at = CASE WHEN $19::bool THEN now() ELSE "
    "filled_at END WHERE id = $17::int RETURNING 1) "
    "SELECT x.idem_key, coalesce(i.id, s.id), i.id IS NOT NULL, "
    "(SELECT count(*) FROM c) FROM x LEFT JOIN i ON i.idem_key = x.idem_key "
    "LEFT JOIN sms s ON i.id IS NULL AND s.idem_key = x.idem_key";

static void
lb_init(struct lead_batch *b)
{
	memset(b, 0, sizeof(*b));
	for (int i = 0; i < LB_COLS; i++)
		buf_init(&b->a[i], 0);
}

static void
lb_free(struct lead_batch *b)
{
	for (int i = 0; i < LB_COLS; i++)
		buf_free(&b->a[i]);
}

/* +CC and 6 to 15 digits in all (the sms table's check). */
static int
e164(const char *s)
{
	size_t n;

	if (!s || s[0] != '+' || s[1] < '1' || s[1] > '9')
		return 0;
	n = strspn(s + 1, "0123456789");
	return s[1 + n] == '\0' && n >= 6 && n <= 15;
}

/*
 * The text of m for lead (the lead's row as JSON) as a row of b. Returns
 * "queued" (a row added: queued, or failed as too long), "no_phone",
 * "no_consent" or "error", with a message in msg.
 */
static const char *
lead_add(struct lc_daemon *d, struct lead_batch *b, const json_t *lead,
    const struct sms_lead_msg *m, char *msg, size_t msgn)
{
	const struct smsgw_conf *sc = d->conf->sms;
	const struct smsgw *g;
	const struct tmpl *t;
	const char *phone = json_string_value(json_object_get(lead, "phone"));
	const char *ltz = json_string_value(json_object_get(lead, "time_zone"));
	const char *tz = m->time_zone && *m->time_zone ? m->time_zone : "UTC";
	long long id = (long long)json_integer_value(json_object_get(lead, "id"));
	int max = m->max_segments > 0 ? m->max_segments : SMS_MAX_SEGMENTS;
	json_t *data;
	struct buf out;
	struct sms_info in;
	char num[32], cost[48], at[32], err[160], qf[16] = "", qt[16] = "";
	const char *text, *status = "queued";
	time_t now = time(NULL), when = now, until;

	if (!sc || !(t = tmpl_set_get(d->conf->templates, m->template_name))) {
		snprintf(msg, msgn, sc ? "no template %s" : "no SMS gateways "
		    "(sms.conf)", m->template_name);
		return "error";
	}
	g = m->gateway && *m->gateway ? smsgw_find(sc, m->gateway) :
	    &sc->v[sc->def];
	if (!g) {
		snprintf(msg, msgn, "no gateway %s", m->gateway);
		return "error";
	}
	if (!e164(phone)) {
		snprintf(msg, msgn, "lead %lld has no phone number in E.164", id);
		return "no_phone";
	}
	if (!json_is_true(json_object_get(lead, "sms_consent"))) {
		snprintf(msg, msgn, "lead %lld has not consented to SMS", id);
		return "no_consent";
	}
	/* the lead's zone if it is one, else the sender's */
	if (ltz && *ltz && cond_tz_check(ltz, err, sizeof(err)) == 0)
		tz = ltz;
	if (!(data = json_deep_copy(lead)))
		return "error";
	if (m->vars)
		json_object_update(data, (json_t *)m->vars);
	buf_init(&out, 65536);
	if (!(text = render_text(d, t, data, 0, &out)) || !*text ||
	    sms_measure(text, strlen(text), &in) < 0) {
		json_decref(data);
		buf_free(&out);
		snprintf(msg, msgn, "templates/%s rendered %s for lead %lld",
		    m->template_name, text ? "an empty text" : "nothing", id);
		return "error";
	}
	json_decref(data);
	if (m->quiet && quiet_active(m->quiet)) {
		snprintf(qf, sizeof(qf), "%d", m->quiet->from);
		snprintf(qt, sizeof(qt), "%d", m->quiet->to);
		if (quiet_check(m->quiet, tz, now, &until) == 1)
			when = until;
	}
	if (in.segments > (size_t)max) {
		status = "failed";
		snprintf(msg, msgn, "the text takes %zu parts (at most %d): not "
		    "sent", in.segments, max);
	} else {
		snprintf(msg, msgn, "queued");
	}
	snprintf(num, sizeof(num), "%zu", in.segments > SMS_MAX_SEGMENTS ?
	    (size_t)SMS_MAX_SEGMENTS : in.segments);
	snprintf(cost, sizeof(cost), "%.6f", g->price * (double)in.segments);
	snprintf(at, sizeof(at), "%lld", (long long)when);
	db_array_add(&b->a[0], g->name);
	db_array_add(&b->a[1], phone);
	db_array_add(&b->a[2], text);
	db_array_add(&b->a[3], sms_encoding_name(in.encoding));
	db_array_add(&b->a[4], num);
	db_array_add(&b->a[5], m->kind ? m->kind : "lead");
	add_id(&b->a[6], id);
	db_array_add(&b->a[7], m->key);
	add_id(&b->a[8], m->campaign_id);
	db_array_add(&b->a[9], *qf ? qf : NULL);
	db_array_add(&b->a[10], *qt ? qt : NULL);
	db_array_add(&b->a[11], tz);
	db_array_add(&b->a[12], cost);
	db_array_add(&b->a[13], status);
	db_array_add(&b->a[14], strcmp(status, "failed") ? NULL : msg);
	db_array_add(&b->a[15], at);
	b->n++;
	buf_free(&out);
	return strcmp(status, "failed") ? "queued" : "too_long";
}

/* Queue b's rows (and advance campaign's cursor to cursor; done: all of
 * its audience is queued). */
static int
lead_queue(struct smsd *s, struct lead_batch *b, int campaign,
    long long cursor, int done, db_result_fn *cb, void *arg)
{
	const char *p[LB_COLS + 3];
	char cid[16], cur[32];

	for (int i = 0; i < LB_COLS; i++)
		p[i] = db_array_end(&b->a[i]);
	snprintf(cid, sizeof(cid), "%d", campaign);
	snprintf(cur, sizeof(cur), "%lld", cursor);
	p[LB_COLS] = campaign > 0 ? cid : NULL;
	p[LB_COLS + 1] = cur;
	p[LB_COLS + 2] = done ? "t" : "f";
	return db_query(s->db, lead_queue_sql, LB_COLS + 3, p, cb, arg);
}

struct tolead {
	struct smsd *s;
	struct sms_lead_msg m;          /* strings and vars copied below */
	char *template_name, *key, *kind, *gateway, *tz;
	struct quiet quiet;
	json_t *vars;
	const char *status;
	char msg[200];
	sms_lead_fn *cb;
	void *arg;
};

static void
tolead_done(struct tolead *q, const char *status, long long id)
{
	if (q->cb)
		q->cb(q->arg, status, q->msg, id);
	free(q->template_name);
	free(q->key);
	free(q->kind);
	free(q->gateway);
	free(q->tz);
	json_decref(q->vars);
	free(q);
}

static void
on_lead_queued(void *arg, const PGresult *res, const char *err)
{
	struct tolead *q = arg;
	long long id;

	if (err || PQntuples(res) != 1) {
		snprintf(q->msg, sizeof(q->msg), "queuing: %s", err ? err :
		    "no row");
		log_warn("sms to lead %lld (%s): %s", q->m.lead, q->key, q->msg);
		tolead_done(q, "error", 0);
		return;
	}
	id = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
	if (strcmp(PQgetvalue(res, 0, 2), "t") != 0) {
		snprintf(q->msg, sizeof(q->msg), "already queued as sms %lld "
		    "(key %s)", id, q->key);
		tolead_done(q, "duplicate", id);
		return;
	}
	sms_kick(q->s);
	tolead_done(q, q->status, id);
}

static void
on_lead_row(void *arg, const PGresult *res, const char *err)
{
	struct tolead *q = arg;
	struct lead_batch b;
	json_t *lead;
	const char *st;

	if (err || PQntuples(res) == 0) {
		if (err)
			snprintf(q->msg, sizeof(q->msg), "%s", err);
		else
			snprintf(q->msg, sizeof(q->msg), "no lead %lld", q->m.lead);
		tolead_done(q, err ? "error" : "no_lead", 0);
		return;
	}
	if (!(lead = json_loads(PQgetvalue(res, 0, 0), 0, NULL))) {
		snprintf(q->msg, sizeof(q->msg), "the lead's row is not JSON");
		tolead_done(q, "error", 0);
		return;
	}
	lb_init(&b);
	st = lead_add(q->s->d, &b, lead, &q->m, q->msg, sizeof(q->msg));
	json_decref(lead);
	if (b.n == 0) {
		lb_free(&b);
		tolead_done(q, st, 0);
		return;
	}
	q->status = st;
	if (lead_queue(q->s, &b, 0, 0, 0, on_lead_queued, q) < 0) {
		snprintf(q->msg, sizeof(q->msg), "the database queue is full");
		tolead_done(q, "error", 0);
	}
	lb_free(&b);
}

static char *
dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

int
sms_to_lead(struct lc_daemon *d, const struct sms_lead_msg *m,
    sms_lead_fn *cb, void *arg)
{
	struct smsd *s = d->sms;
	struct tolead *q;
	char id[32];
	const char *p[1] = { id };

	if (!s || !d->conf->sms || !m->template_name || !m->key || !*m->key ||
	    strlen(m->key) > 200 || m->lead <= 0)
		return -1;
	if (!(q = calloc(1, sizeof(*q))))
		return -1;
	q->s = s;
	q->m = *m;
	q->cb = cb;
	q->arg = arg;
	q->m.template_name = q->template_name = strdup(m->template_name);
	q->m.key = q->key = strdup(m->key);
	q->m.kind = q->kind = dup_or_null(m->kind);
	q->m.gateway = q->gateway = dup_or_null(m->gateway);
	q->m.time_zone = q->tz = dup_or_null(m->time_zone);
	if (m->quiet) {
		q->quiet = *m->quiet;
		q->m.quiet = &q->quiet;
	}
	q->vars = m->vars ? json_deep_copy(m->vars) : NULL;
	q->m.vars = q->vars;
	snprintf(id, sizeof(id), "%lld", m->lead);
	if (!q->template_name || !q->key || db_query(s->db, "SELECT "
	    "to_jsonb(l)::text FROM leads l WHERE id = $1::bigint", 1, p,
	    on_lead_row, q) < 0) {
		q->cb = NULL;
		tolead_done(q, "error", 0);
		return -1;
	}
	return 0;
}

/* ---- SMS campaigns: the audience queued a chunk at a time ------------------------ */

#define FILL_CHUNK 200

struct fill {
	struct smsd *s;
	struct conf *conf;              /* a reference: def lives in it */
	const struct campaign_def *def;
	int campaign;
	long long cursor;
};

static void
fill_end(struct fill *f)
{
	f->s->filling = 0;
	conf_unref(f->conf);
	free(f);
}

static void
on_fill_queued(void *arg, const PGresult *res, const char *err)
{
	struct fill *f = arg;
	struct smsd *s = f->s;
	int more = 0, n = 0;

	if (err) {
		log_error("campaign %s: queuing texts: %s (tried again)",
		    f->def->name, err);
	} else {
		for (int i = 0; i < PQntuples(res); i++)
			n += strcmp(PQgetvalue(res, i, 2), "t") == 0;
		more = f->s->fill_more;
		if (n)
			log_info("campaign %s: %d texts queued", f->def->name, n);
	}
	fill_end(f);
	if (n)
		sms_claim(s);
	if (more)
		sms_fill(s, 1);
}

static void
on_fill_leads(void *arg, const PGresult *res, const char *err)
{
	struct fill *f = arg;
	struct lead_batch b;
	int n = err ? 0 : PQntuples(res), bad = 0;
	long long cursor = f->cursor;
	char msg[200];

	if (err) {
		log_error("campaign %s: reading its audience: %s", f->def->name,
		    err);
		fill_end(f);
		return;
	}
	lb_init(&b);
	for (int i = 0; i < n; i++) {
		json_t *lead = json_loads(PQgetvalue(res, i, 1), 0, NULL);
		long long id = strtoll(PQgetvalue(res, i, 0), NULL, 10);
		char key[64];
		struct sms_lead_msg m = { id, f->def->text_name, key, "campaign",
			f->campaign, f->def->gateway, &f->def->quiet,
			f->def->time_zone, (int)f->def->max_segments, NULL };
		const char *st;

		if (id > cursor)
			cursor = id;
		snprintf(key, sizeof(key), "campaign:%d:%lld", f->campaign, id);
		st = lead ? lead_add(f->s->d, &b, lead, &m, msg, sizeof(msg)) :
		    "error";
		json_decref(lead);
		if (strcmp(st, "queued") != 0 && bad++ < 5)
			log_warn("campaign %s: lead %lld: %s", f->def->name, id,
			    lead ? msg : "not JSON");
	}
	f->s->fill_more = n == FILL_CHUNK;
	if (lead_queue(f->s, &b, f->campaign, cursor, n < FILL_CHUNK,
	    on_fill_queued, f) < 0) {
		log_warn("campaign %s: the database queue is full", f->def->name);
		fill_end(f);
	}
	lb_free(&b);
}

static void
on_fill_campaign(void *arg, const PGresult *res, const char *err)
{
	struct fill *f = arg;
	struct smsd *s = f->s;
	const struct campaign_def *def;
	struct cond_params cp = { NULL, 0, 0 };
	struct buf sql;
	const char **p;
	char e[256];
	int next = 3;

	if (err || PQntuples(res) == 0) {
		if (err)
			log_warn("SMS campaigns: %s", err);
		fill_end(f);
		return;
	}
	f->campaign = atoi(PQgetvalue(res, 0, 0));
	f->cursor = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
	def = f->conf->campaigns ? campaign_find(f->conf->campaigns,
	    PQgetvalue(res, 0, 1)) : NULL;
	if (!def || !def->sms) {
		log_error("campaign %s is running but not an SMS campaign of the "
		    "configuration: paused", PQgetvalue(res, 0, 1));
		db_query(s->db, "UPDATE campaigns SET status = 'paused' WHERE id "
		    "= $1::int", 1, (const char *[]){ PQgetvalue(res, 0, 0) },
		    NULL, NULL);
		fill_end(f);
		return;
	}
	f->def = def;
	buf_init(&sql, 0);
	buf_puts(&sql, "SELECT l.id, to_jsonb(l)::text FROM leads l WHERE l.id "
	    "> $1::bigint AND ");
	if (sender_audience_sql(def, "$2::int[]", &next, &sql, &cp, e,
	    sizeof(e)) < 0) {
		log_error("campaign %s: audience: %s", def->name, e);
		buf_free(&sql);
		cond_params_free(&cp);
		fill_end(f);
		return;
	}
	buf_printf(&sql, " ORDER BY l.id LIMIT %d", FILL_CHUNK);
	if (!(p = calloc(2 + cp.n, sizeof(*p)))) {
		buf_free(&sql);
		cond_params_free(&cp);
		fill_end(f);
		return;
	}
	p[0] = PQgetvalue(res, 0, 2);
	p[1] = PQgetvalue(res, 0, 3);
	for (size_t i = 0; i < cp.n; i++)
		p[2 + i] = cp.v[i];
	if (db_query(s->db, buf_str(&sql), (int)(2 + cp.n), p, on_fill_leads,
	    f) < 0)
		fill_end(f);
	free(p);
	cond_params_free(&cp);
	buf_free(&sql);
}

static void
on_sms_campaigns_done(void *arg, const PGresult *res, const char *err)
{
	(void)arg;
	for (int i = 0; !err && i < PQntuples(res); i++)
		log_info("SMS campaign %s finished", PQgetvalue(res, i, 0));
}

/* Queue the next chunk of a running SMS campaign's audience; now: even if
 * the last look was less than a second ago. */
static void
sms_fill(struct smsd *s, int now)
{
	struct lc_daemon *d = s->d;
	time_t t = time(NULL);
	struct fill *f;
	int any = 0;

	for (size_t i = 0; d->conf->campaigns && i < d->conf->campaigns->n; i++)
		any |= d->conf->campaigns->v[i]->sms;
	if (!any || s->filling || s->closing || d->stopping || !d->conf->sms ||
	    db_state(s->db) != DB_READY || (!now && t == s->last_fill))
		return;
	s->last_fill = t;
	if (!(f = calloc(1, sizeof(*f))))
		return;
	f->s = s;
	f->conf = conf_ref(d->conf);
	s->filling = 1;
	if (db_query(s->db, "SELECT id, name, fill_cursor, list_ids::text FROM "
	    "campaigns WHERE kind = 'sms' AND status = 'running' AND filled_at "
	    "IS NULL ORDER BY id LIMIT 1", 0, NULL, on_fill_campaign, f) < 0) {
		fill_end(f);
		return;
	}
	if (!now)
		db_query(s->db, "UPDATE campaigns c SET status = 'done', "
		    "finished_at = now() WHERE kind = 'sms' AND status = "
		    "'running' AND filled_at IS NOT NULL AND NOT EXISTS (SELECT 1 "
		    "FROM sms WHERE campaign_id = c.id AND status IN ('queued', "
		    "'sending')) RETURNING name", 0, NULL, on_sms_campaigns_done,
		    NULL);
}

/* ---- sending ---------------------------------------------------------------------- */

struct job {
	struct smsd *s;
	struct conf *conf;              /* a reference: g lives in it */
	const struct smsgw *g;
	struct gwstate *st;
	long long id;
	int attempts, ucs2, segments;
	int tls;                        /* https: TLS errors say why */
	int started;                    /* counted in inflight */
	long long lead;                 /* a text to a lead needing consent */
	long defer_s;                   /* > 0: not tried, quiet hours */
	int handed;                     /* marked handed to the gateway */
	struct quiet quiet;             /* texts to leads: quiet hours */
	char tz[64];                    /* ... in this zone */
	char *to, *text;
	struct evhttp_connection *conn;
	struct pconn *pc;               /* conn's place in the pool */
	struct job *next;               /* in its gateway's local queue */
};

static struct gwstate *
gw_state(struct smsd *s, const char *name)
{
	struct gwstate **vv, *v;

	for (size_t i = 0; i < s->ngw; i++)
		if (strcmp(s->gw[i]->name, name) == 0)
			return s->gw[i];
	if (!(vv = realloc(s->gw, (s->ngw + 1) * sizeof(*vv))))
		return NULL;
	s->gw = vv;
	if (!(v = calloc(1, sizeof(*v))))
		return NULL;
	s->gw[s->ngw++] = v;
	snprintf(v->name, sizeof(v->name), "%s", name);
	clock_gettime(CLOCK_MONOTONIC, &v->refill);
	v->tokens = 1;
	return v;
}

static void
refill(struct gwstate *st, long rate)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	if (rate <= 0) {
		st->tokens = 1e9;
	} else {
		st->tokens += ((double)(now.tv_sec - st->refill.tv_sec) +
		    (double)(now.tv_nsec - st->refill.tv_nsec) / 1e9) *
		    (double)rate;
		if (st->tokens > (double)rate)
			st->tokens = (double)rate;      /* a second's burst */
	}
	st->refill = now;
}

static void
job_free(struct job *j)
{
	if (j->pc) {
		j->pc->busy = 0;
		j->pc->idle_since = time(NULL);
	}
	if (j->st && j->started)
		j->st->inflight--;
	conf_unref(j->conf);
	free(j->to);
	free(j->text);
	free(j);
}

static void dispatch(struct gwstate *st);

static void
on_recorded(void *arg, const PGresult *res, const char *err)
{
	struct smsd *s = arg;

	if (err) {
		log_error("recording an SMS: %s (its lease will lapse and it "
		    "will be sent again)", err);
		return;
	}
	if (PQntuples(res) == 1 && PQnfields(res) > 1 &&
	    strtoll(PQgetvalue(res, 0, 1), NULL, 10) > 0)
		sender_kick(s->d->sender);      /* a fallback email */
}

/*
 * Record the outcome of one attempt. $1 id, $2 node, $3 outcome (sent,
 * retry, failover, failed), $4 gateway message id, $5 error, $6 delay ms,
 * $7 the failover gateway. A failure of an offer text still pending
 * queues the fallback email once.
 */
static const char record_sql[] =
    "WITH o AS (SELECT id, fallback, fallback_at, offer_id, lead_id, "
    "gateway FROM sms WHERE id = $1::bigint AND node_id = $2::bigint AND "
    "status IN ('sending', 'delivered', 'failed') FOR UPDATE), "
    "u AS (UPDATE sms s SET "
    "status = CASE WHEN $3 = 'sent' THEN CASE WHEN s.status = 'sending' "
    "THEN 'sent' ELSE s.status END WHEN $3 = 'failed' THEN 'failed' "
    "ELSE 'queued' END, "
    "sent_at = CASE WHEN $3 = 'sent' THEN now() ELSE s.sent_at END, "
    "gateway_msgid = coalesce(nullif($4, ''), s.gateway_msgid), "
    "error = CASE WHEN $3 IN ('sent', 'defer') THEN s.error ELSE $5 END, "
    "gateway = CASE WHEN $3 = 'failover' THEN $7 ELSE s.gateway END, "
    "attempts = CASE WHEN $3 = 'failover' THEN 0 WHEN $3 = 'defer' THEN "
    "greatest(s.attempts - 1, 0) ELSE s.attempts END, "
    "next_attempt_at = now() + $6::bigint * interval '1 millisecond', "
    "lease_until = NULL, handed_at = NULL, "
    "fallback_at = CASE WHEN $3 NOT IN ('sent', 'defer') AND o.fallback "
    "IS NOT NULL AND o.fallback_at IS NULL THEN now() ELSE s.fallback_at "
    "END, "
    "updated_at = now() FROM o WHERE s.id = o.id RETURNING s.id), "
    "n AS (SELECT leadcast_notify('offer', ARRAY[NULL::bigint], "
    "ARRAY[o.fallback->>'email'], ARRAY[o.fallback->'vars']) FROM o, u "
    "WHERE $3 NOT IN ('sent', 'defer') AND o.fallback IS NOT NULL AND "
    "o.fallback_at IS NULL AND (o.offer_id IS NULL OR EXISTS (SELECT 1 FROM offers f WHERE "
    "f.id = o.offer_id AND f.status = 'pending'))), "
    "e AS (INSERT INTO events (type, lead_id, data) SELECT 'sms_failed', "
    "o.lead_id, jsonb_build_object('sms', o.id, 'gateway', o.gateway, "
    "'error', $5::text) FROM o, u WHERE $3 = 'failed' AND o.lead_id IS NOT "
    "NULL) "
    "SELECT (SELECT count(*) FROM u), (SELECT count(*) FROM n)";

static void
job_done(struct job *j, enum smsgw_outcome oc, const char *msgid,
    const char *why)
{
	struct smsd *s = j->s;
	const struct smsgw *g = j->g;
	struct gwstate *st;
	char id[32], node[32], delay[32];
	const char *p[7] = { id, node, NULL, msgid, why, delay, NULL };
	long ms = 0;

	snprintf(id, sizeof(id), "%lld", j->id);
	snprintf(node, sizeof(node), "%lld", s->d->node_id);
	if (j->defer_s > 0) {
		p[2] = "defer";
		ms = j->defer_s * 1000;
		log_info("sms %lld to %s: quiet hours in %s: deferred %ld s",
		    j->id, j->to, *j->tz ? j->tz : "UTC", j->defer_s);
	} else if (oc == SMSGW_SENT) {
		struct timespec now;
		char at[48];

		metric_add(s->m_sent, 1);
		log_debug("sms %lld to %s sent through %s%s%s", j->id, j->to,
		    g->name, *msgid ? " as " : "", msgid);
		/* recorded with the others of this loop turn: one statement */
		clock_gettime(CLOCK_REALTIME, &now);
		snprintf(at, sizeof(at), "%lld.%06ld", (long long)now.tv_sec,
		    now.tv_nsec / 1000);
		db_array_add(&s->sent_ids, id);
		db_array_add(&s->sent_msgids, *msgid ? msgid : NULL);
		db_array_add(&s->sent_at, at);
		if (s->nsent++ == 0) {
			struct timeval zero = { 0, 0 };

			event_add(s->ev_flush, &zero);
		}
		st = j->st;
		job_free(j);
		dispatch(st);
		sms_claim(s);
		return;
	} else if (oc == SMSGW_RETRY && j->attempts <= g->retries) {
		p[2] = "retry";
		ms = g->retry_base_ms << (j->attempts > 12 ? 12 :
		    j->attempts - 1);
		if (ms > MAX_BACKOFF_MS || ms <= 0)
			ms = MAX_BACKOFF_MS;
		metric_add(s->m_retry, 1);
		log_warn("sms %lld to %s through %s: %s (attempt %d of %ld; "
		    "again in %ld ms)", j->id, j->to, g->name, why, j->attempts,
		    g->retries + 1, ms);
	} else if (g->failover_i != (size_t)-1) {
		p[2] = "failover";
		p[6] = j->conf->sms->v[g->failover_i].name;
		metric_add(s->m_failover, 1);
		log_warn("sms %lld to %s through %s: %s: failing over to %s",
		    j->id, j->to, g->name, why, p[6]);
	} else {
		p[2] = "failed";
		metric_add(s->m_failed, 1);
		log_warn("sms %lld to %s through %s failed: %s", j->id, j->to,
		    g->name, why);
	}
	snprintf(delay, sizeof(delay), "%ld", ms);
	if (db_query(s->send_db, record_sql, 7, p, on_recorded, s) < 0)
		log_error("recording sms %lld: the database queue is full", j->id);
	st = j->st;
	job_free(j);
	dispatch(st);
	sms_claim(s);
}

/* The texts accepted since the last flush, in one statement: sent at
 * the time each answer came (not when the statement ran). */
static const char sent_sql[] =
    "UPDATE sms s SET status = CASE WHEN s.status = 'sending' THEN 'sent' "
    "ELSE s.status END, sent_at = to_timestamp(x.at), gateway_msgid = "
    "coalesce(x.msgid, s.gateway_msgid), lease_until = NULL, updated_at = "
    "now() FROM unnest($1::bigint[], $2::text[], $3::float8[]) AS x(id, "
    "msgid, at) WHERE s.id = x.id AND s.node_id = $4::bigint AND s.status "
    "IN ('sending', 'delivered', 'failed')";

static void
flush_sent(evutil_socket_t fd, short what, void *arg)
{
	struct smsd *s = arg;
	char node[32];
	const char *p[4];

	(void)fd;
	(void)what;
	if (!s->nsent)
		return;
	snprintf(node, sizeof(node), "%lld", s->d->node_id);
	p[0] = db_array_end(&s->sent_ids);
	p[1] = db_array_end(&s->sent_msgids);
	p[2] = db_array_end(&s->sent_at);
	p[3] = node;
	if (db_query(s->send_db, sent_sql, 4, p, on_recorded, s) < 0)
		log_error("recording %d sent SMS: the database queue is full "
		    "(their leases will lapse and they will be sent again)",
		    s->nsent);
	buf_reset(&s->sent_ids);
	buf_reset(&s->sent_msgids);
	buf_reset(&s->sent_at);
	s->nsent = 0;
}

/* A connection is freed after the request's callback has returned (not
 * in it, and not by libevent's free-on-completion, which keeps a
 * connection that failed to connect). */
static void
free_conn(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	evhttp_connection_free(arg);
}

/* Take pc out of its pool and free it (its connection after the current
 * callback). */
static void
pconn_drop(struct pconn *pc)
{
	struct timeval zero = { 0, 0 };
	struct pconn **pp;

	for (pp = &pc->st->pool; *pp; pp = &(*pp)->next)
		if (*pp == pc) {
			*pp = pc->next;
			pc->st->npool--;
			break;
		}
	evhttp_connection_set_closecb(pc->conn, NULL, NULL);
	if (event_base_once(pc->s->d->base, -1, EV_TIMEOUT, free_conn, pc->conn,
	    &zero) < 0)
		log_warn("sms: a connection could not be released");
	free(pc);
}

/* The peer closed a pooled connection (or libevent reset it). */
static void
pconn_closed(struct evhttp_connection *conn, void *arg)
{
	struct pconn *pc = arg;

	(void)conn;
	if (pc->busy)
		pc->dead = 1;           /* its request's callback drops it */
	else
		pconn_drop(pc);
}

/* Connections idle too long are closed (on the tick). */
static void
pool_expire(struct gwstate *st, time_t now)
{
	struct pconn *pc, *next;

	for (pc = st->pool; pc; pc = next) {
		next = pc->next;
		if (!pc->busy && now - pc->idle_since >= IDLE_MAX_S)
			pconn_drop(pc);
	}
}

/* An idle connection to host:port (tls) of st's, marked busy; NULL if
 * none. */
static struct pconn *
pool_take(struct gwstate *st, const char *host, int port, int tls)
{
	for (struct pconn *pc = st->pool; pc; pc = pc->next)
		if (!pc->busy && !pc->dead && pc->port == port && pc->tls ==
		    tls && strcmp(pc->host, host) == 0) {
			pc->busy = 1;
			return pc;
		}
	return NULL;
}

static void
on_response(struct evhttp_request *req, void *arg)
{
	struct job *j = arg;

	int status = req ? evhttp_request_get_response_code(req) : 0;
	struct evbuffer *in = req ? evhttp_request_get_input_buffer(req) : NULL;
	size_t len = in ? evbuffer_get_length(in) : 0;
	char body[ANSWER_MAX + 1], msgid[200], why[400];
	enum smsgw_outcome oc;

	if (len > ANSWER_MAX)
		len = ANSWER_MAX;
	if (len)
		evbuffer_copyout(in, body, len);
	body[len] = '\0';
	oc = smsgw_response(j->g, status, body, len, msgid, sizeof(msgid), why,
	    sizeof(why));
	if (status == 0 && j->tls) {
		struct bufferevent *bev = evhttp_connection_get_bufferevent(
		    j->conn);
		unsigned long e = bev ? bufferevent_get_openssl_error(bev) : 0;

		if (e) {
			char tls[256];

			ERR_error_string_n(e, tls, sizeof(tls));
			snprintf(why, sizeof(why), "TLS: %s", tls);
		}
	}
	/* the connection is kept for the next request if this one was
	 * answered and it is still open; else dropped */
	if (j->pc && (status == 0 || j->pc->dead)) {
		pconn_drop(j->pc);
		j->pc = NULL;
	}
	job_done(j, oc, msgid, why);
}

/* The delivery-report URL for message id through g. */
static void
dlr_url(const struct conf *c, const struct smsgw *g, long long id,
    struct buf *out)
{
	buf_printf(out, "%s/sms/dlr/%s?id=%lld", c->http.public_url, g->name,
	    id);
	if (*g->secret) {
		buf_puts(out, "&secret=");
		smsgw_urlencode(out, g->secret);
	}
	if (g->type == SMSGW_KANNEL)
		buf_puts(out, "&status=%d");
}

static SSL_CTX *
tls_context(void)
{
	SSL_CTX *c = SSL_CTX_new(TLS_client_method());

	if (c && !SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION)) {
		SSL_CTX_free(c);
		return NULL;
	}
	if (c)
		SSL_CTX_set_verify(c, SSL_VERIFY_PEER, NULL);
	return c;
}

/* The TLS context trusting ca_file ("" = the system's CAs), made once. */
static SSL_CTX *
ssl_for(struct smsd *s, const char *ca_file, char *why, size_t whyn)
{
	struct cactx *v;
	SSL_CTX *c;

	if (!*ca_file)
		return s->ssl;
	for (size_t i = 0; i < s->ncas; i++)
		if (strcmp(s->cas[i].path, ca_file) == 0)
			return s->cas[i].ctx;
	if (!(c = tls_context()) || SSL_CTX_load_verify_locations(c, ca_file,
	    NULL) != 1) {
		snprintf(why, whyn, "cannot load CA certificates from %s",
		    ca_file);
		SSL_CTX_free(c);
		return NULL;
	}
	if (!(v = realloc(s->cas, (s->ncas + 1) * sizeof(*v)))) {
		SSL_CTX_free(c);
		return NULL;
	}
	s->cas = v;
	v[s->ncas].path = strdup(ca_file);
	v[s->ncas].ctx = c;
	s->ncas++;
	return c;
}

static int
http_send(struct job *j, char *why, size_t whyn)
{
	struct smsd *s = j->s;
	struct smsgw_msg m;
	struct smsgw_req rq;
	struct buf dlr;
	struct evhttp_uri *uri = NULL;
	struct bufferevent *bev = NULL;
	struct evhttp_request *req;
	struct evkeyvalq *h;
	struct pconn *pc;
	const char *host, *path, *query, *scheme, *line;
	char target[16384];
	int port, https, r = -1;
	struct timeval tv;

	buf_init(&dlr, 0);
	dlr_url(j->conf, j->g, j->id, &dlr);
	m.id = j->id;
	m.to = j->to;
	m.text = j->text;
	m.ucs2 = j->ucs2;
	m.segments = j->segments;
	m.dlr_url = buf_str(&dlr);
	smsgw_req_init(&rq);
	if (smsgw_request(j->g, &m, &rq, why, whyn) < 0)
		goto out;
	if (!(uri = evhttp_uri_parse(buf_str(&rq.url))) ||
	    !(host = evhttp_uri_get_host(uri)) || !*host) {
		snprintf(why, whyn, "bad URL");
		goto out;
	}
	scheme = evhttp_uri_get_scheme(uri);
	https = scheme && strcasecmp(scheme, "https") == 0;
	port = evhttp_uri_get_port(uri);
	if (port < 0)
		port = https ? 443 : 80;
	path = evhttp_uri_get_path(uri);
	query = evhttp_uri_get_query(uri);
	snprintf(target, sizeof(target), "%s%s%s", path && *path ? path : "/",
	    query ? "?" : "", query ? query : "");
	j->tls = https;
	if ((j->pc = pool_take(j->st, host, port, https)) != NULL) {
		j->conn = j->pc->conn;          /* kept alive: no handshake */
		goto request;
	}
	if (https) {
		SSL_CTX *ctx = ssl_for(s, j->g->ca_file, why, whyn);
		SSL *ssl = ctx ? SSL_new(ctx) : NULL;
		struct in6_addr a6;

		if (!ssl) {
			if (!*why)
				snprintf(why, whyn, "cannot set up TLS");
			goto out;
		}
		/* the certificate must name the host (or address) */
		if (inet_pton(AF_INET, host, &a6) == 1 || inet_pton(AF_INET6,
		    host, &a6) == 1) {
			X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host);
		} else {
			SSL_set_tlsext_host_name(ssl, host);
			X509_VERIFY_PARAM_set1_host(SSL_get0_param(ssl), host, 0);
		}
		bev = bufferevent_openssl_socket_new(s->d->base, -1, ssl,
		    BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE |
		    BEV_OPT_DEFER_CALLBACKS);
	} else {
		bev = bufferevent_socket_new(s->d->base, -1,
		    BEV_OPT_CLOSE_ON_FREE);
	}
	if (!bev || !(j->conn = evhttp_connection_base_bufferevent_new(
	    s->d->base, s->dns, bev, host, (unsigned short)port))) {
		if (bev)
			bufferevent_free(bev);
		snprintf(why, whyn, "cannot make a connection");
		goto out;
	}
	tv.tv_sec = j->g->timeout_ms / 1000;
	tv.tv_usec = (j->g->timeout_ms % 1000) * 1000;
	evhttp_connection_set_timeout_tv(j->conn, &tv);
	evhttp_connection_set_retries(j->conn, 0);
	/* into the gateway's pool (an idle one makes room if it is full) */
	if (!(pc = calloc(1, sizeof(*pc)))) {
		evhttp_connection_free(j->conn);
		snprintf(why, whyn, "out of memory");
		goto out;
	}
	pc->s = s;
	pc->st = j->st;
	pc->conn = j->conn;
	snprintf(pc->host, sizeof(pc->host), "%s", host);
	pc->port = port;
	pc->tls = https;
	pc->busy = 1;
	for (struct pconn *o = j->st->pool; o && j->st->npool >=
	    j->g->connections; o = o->next)
		if (!o->busy) {
			pconn_drop(o);
			break;
		}
	pc->next = j->st->pool;
	j->st->pool = pc;
	j->st->npool++;
	j->pc = pc;
	evhttp_connection_set_closecb(j->conn, pconn_closed, pc);
request:
	if (!(req = evhttp_request_new(on_response, j))) {
		pconn_drop(j->pc);
		j->pc = NULL;
		snprintf(why, whyn, "out of memory");
		goto out;
	}
	h = evhttp_request_get_output_headers(req);
	evhttp_add_header(h, "Host", host);
	evhttp_add_header(h, "User-Agent", "leadcast/" PACKAGE_VERSION);
	for (line = buf_str(&rq.headers); *line; ) {
		const char *nl = strchr(line, '\n'), *colon = strchr(line, ':');
		char name[256], value[4096];
		size_t nlen, vlen;

		if (!nl)
			nl = line + strlen(line);
		if (colon && colon < nl && (nlen = (size_t)(colon - line)) <
		    sizeof(name)) {
			memcpy(name, line, nlen);
			name[nlen] = '\0';
			colon++;
			while (*colon == ' ')
				colon++;
			vlen = (size_t)(nl - colon);
			if (vlen < sizeof(value)) {
				memcpy(value, colon, vlen);
				value[vlen] = '\0';
				evhttp_add_header(h, name, value);
			}
		}
		line = *nl ? nl + 1 : nl;
	}
	if (rq.post) {
		if (rq.content_type)
			evhttp_add_header(h, "Content-Type", rq.content_type);
		evbuffer_add(evhttp_request_get_output_buffer(req),
		    buf_str(&rq.body), rq.body.len);
	}
	if (evhttp_make_request(j->conn, req, rq.post ? EVHTTP_REQ_POST :
	    EVHTTP_REQ_GET, target) < 0) {
		/* libevent freed the request; the connection is ours */
		pconn_drop(j->pc);
		j->pc = NULL;
		snprintf(why, whyn, "cannot send the request");
		goto out;
	}
	r = 0;
out:
	if (uri)
		evhttp_uri_free(uri);
	smsgw_req_free(&rq);
	buf_free(&dlr);
	return r;
}

static void
on_email_queued(void *arg, int status, json_t *doc)
{
	struct job *j = arg;
	char why[300];

	snprintf(why, sizeof(why), "queuing the email: %s",
	    json_string_value(json_object_get(json_object_get(doc, "error"),
	    "message")) ? json_string_value(json_object_get(json_object_get(
	    doc, "error"), "message")) : "failed");
	json_decref(doc);
	job_done(j, status < 300 ? SMSGW_SENT : SMSGW_RETRY, "", status < 300 ?
	    "" : why);
}

static int
email_send(struct job *j, char *why, size_t whyn)
{
	struct smsgw_msg m = { j->id, j->to, j->text, j->ucs2, j->segments,
	    "" };
	struct buf addr, leads, emails, vars;
	json_t *v;
	char *js;
	int r = -1;

	buf_init(&addr, 1024);
	buf_init(&leads, 0);
	buf_init(&emails, 0);
	buf_init(&vars, 0);
	if (smsgw_address(j->g, &m, &addr, why, whyn) < 0)
		goto out;
	v = json_pack("{s:s, s:s}", "text", j->text, "to", j->to);
	js = json_dumps(v, JSON_COMPACT);
	json_decref(v);
	db_array_add(&leads, NULL);
	db_array_add(&emails, buf_str(&addr));
	db_array_add(&vars, js ? js : "{}");
	free(js);
	/* the sender answers through the callback, even on failure */
	sender_notify(j->s->d->sender, "sms", db_array_end(&leads),
	    db_array_end(&emails), db_array_end(&vars), on_email_queued, j);
	r = 0;
out:
	buf_free(&addr);
	buf_free(&leads);
	buf_free(&emails);
	buf_free(&vars);
	return r;
}

static void hand(struct job *j);

static void
job_start(struct job *j)
{
	char why[300] = "";
	int r;
	time_t until;

	if (quiet_active(&j->quiet) && quiet_check(&j->quiet, j->tz,
	    time(NULL), &until) == 1) {
		/* quiet hours in the lead's zone: deferred, not sent */
		j->defer_s = (long)(until - time(NULL));
		job_done(j, SMSGW_RETRY, "", "quiet hours");
		return;
	}
	j->st->inflight++;
	j->started = 1;
	if (j->lead > 0 && !j->handed) {
		hand(j);
		return;
	}
	r = j->g->type == SMSGW_EMAIL2SMS ? email_send(j, why, sizeof(why)) :
	    http_send(j, why, sizeof(why));
	if (r < 0)
		job_done(j, SMSGW_REJECTED, "", why);
}

/*
 * Texts to leads are marked handed (committed, all of a loop turn's in
 * one statement) before their requests go out: should this node die
 * before it records the outcome, the text is failed as unknown rather
 * than sent again. A job whose mark did not take (its row is no longer
 * ours: suppressed by a STOP, or taken over) is dropped.
 */
struct handing {
	struct smsd *s;
	struct job **v;
	int n;
};

static void
hand(struct job *j)
{
	struct smsd *s = j->s;
	struct job **v = realloc(s->hand, (size_t)(s->nhand + 1) * sizeof(*v));

	if (!v) {
		job_done(j, SMSGW_RETRY, "", "out of memory");
		return;
	}
	s->hand = v;
	v[s->nhand++] = j;
	if (s->nhand == 1) {
		struct timeval zero = { 0, 0 };

		event_add(s->ev_hand, &zero);
	}
}

static void
on_handed(void *arg, const PGresult *res, const char *err)
{
	struct handing *h = arg;
	struct smsd *s = h->s;
	int n = err ? 0 : PQntuples(res);

	s->handing--;
	if (err)
		log_warn("sms: marking texts handed to the gateway: %s (sent "
		    "after their lease)", err);
	for (int i = 0; i < h->n; i++) {
		struct job *j = h->v[i];
		struct gwstate *st = j->st;
		int ok = 0;

		for (int k = 0; k < n && !ok; k++)
			ok = strtoll(PQgetvalue(res, k, 0), NULL, 10) == j->id;
		if (ok && !s->closing) {
			j->handed = 1;
			j->st->inflight--;
			j->started = 0;
			job_start(j);
			continue;
		}
		if (!err && !s->closing)
			log_info("sms %lld: not sent: no longer this node's (a "
			    "STOP, or another node took it over)", j->id);
		job_free(j);
		if (!s->closing)
			dispatch(st);
	}
	free(h->v);
	free(h);
}

/* Mark $1 (ids) of node $2 handed; those whose lead has withdrawn its
 * consent meanwhile are suppressed instead (a STOP holds at once). */
static const char hand_sql[] =
    "WITH c AS (SELECT m.id, m.consent_required AND NOT EXISTS (SELECT 1 "
    "FROM leads l WHERE l.id = m.lead_id AND l.sms_consent) AS stop FROM "
    "sms m WHERE m.id = ANY($1::bigint[]) AND m.node_id = $2::bigint AND "
    "m.status = 'sending' FOR UPDATE OF m), "
    "u AS (UPDATE sms s SET handed_at = CASE WHEN c.stop THEN NULL ELSE "
    "now() END, status = CASE WHEN c.stop THEN 'suppressed' ELSE s.status "
    "END, error = CASE WHEN c.stop THEN 'the lead has no consent to SMS "
    "(STOP)' ELSE s.error END, lease_until = CASE WHEN c.stop THEN NULL "
    "ELSE s.lease_until END, updated_at = now() FROM c WHERE s.id = c.id "
    "RETURNING s.id, c.stop) "
    "SELECT id FROM u WHERE NOT stop";

static void
flush_hand(evutil_socket_t fd, short what, void *arg)
{
	struct smsd *s = arg;
	struct handing *h;
	struct buf ids;
	char node[32];
	const char *p[2];

	(void)fd;
	(void)what;
	if (!s->nhand || !(h = calloc(1, sizeof(*h))))
		return;
	h->s = s;
	h->v = s->hand;
	h->n = s->nhand;
	s->hand = NULL;
	s->nhand = 0;
	buf_init(&ids, 0);
	for (int i = 0; i < h->n; i++)
		add_id(&ids, h->v[i]->id);
	snprintf(node, sizeof(node), "%lld", s->d->node_id);
	p[0] = db_array_end(&ids);
	p[1] = node;
	s->handing++;
	if (db_query(s->db, hand_sql, 2, p, on_handed, h) < 0)
		on_handed(h, NULL, "the database queue is full");
	buf_free(&ids);
}

/* Start queued messages while the gateway has free connections. */
static void
dispatch(struct gwstate *st)
{
	while (st->qhead && st->inflight < st->qhead->g->connections) {
		struct job *j = st->qhead;

		if (!(st->qhead = j->next))
			st->qtail = NULL;
		st->queued--;
		j->next = NULL;
		job_start(j);
	}
}

struct claim {
	struct smsd *s;
	struct gwstate *st;
	struct conf *conf;
	const struct smsgw *g;
	int want;
};

static void
on_claimed(void *arg, const PGresult *res, const char *err)
{
	struct claim *c = arg;
	struct smsd *s = c->s;
	int n = err ? 0 : PQntuples(res);

	c->st->claiming = 0;
	if (c->g->rate > 0)
		c->st->tokens += (double)(c->want - n);  /* unused, back */
	if (err)
		log_warn("claiming SMS: %s", err);
	for (int i = 0; i < n; i++) {
		struct job *j = calloc(1, sizeof(*j));

		if (!j)
			break;          /* its lease lapses: sent later */
		j->s = s;
		j->conf = conf_ref(c->conf);
		j->g = c->g;
		j->st = c->st;
		j->id = strtoll(PQgetvalue(res, i, 0), NULL, 10);
		j->to = strdup(PQgetvalue(res, i, 1));
		j->text = strdup(PQgetvalue(res, i, 2));
		j->ucs2 = strcmp(PQgetvalue(res, i, 3), "ucs2") == 0;
		j->segments = atoi(PQgetvalue(res, i, 4));
		j->attempts = atoi(PQgetvalue(res, i, 5));
		j->lead = strtoll(PQgetvalue(res, i, 7), NULL, 10);
		if (!PQgetisnull(res, i, 8) && !PQgetisnull(res, i, 9)) {
			j->quiet.from = atoi(PQgetvalue(res, i, 8));
			j->quiet.to = atoi(PQgetvalue(res, i, 9));
		}
		snprintf(j->tz, sizeof(j->tz), "%s", PQgetvalue(res, i, 10));
		if (*PQgetvalue(res, i, 6)) {
			/* suppressed by the claim (no consent), or lost */
			if (!strcmp(PQgetvalue(res, i, 6), "lost"))
				log_warn("sms %lld to %s: its node stopped while "
				    "sending it: outcome unknown, not sent again",
				    j->id, j->to ? j->to : "?");
			else
				log_info("sms %lld to %s: not sent: the lead has "
				    "no consent to SMS", j->id, j->to ? j->to :
				    "?");
			if (c->g->rate > 0)
				c->st->tokens += 1;
			job_free(j);
			continue;
		}
		if (!j->to || !j->text) {
			job_free(j);
			continue;
		}
		if (c->st->qtail)
			c->st->qtail->next = j;
		else
			c->st->qhead = j;
		c->st->qtail = j;
		c->st->queued++;
	}
	if (!s->closing)
		dispatch(c->st);
	/* a full claim: there may be more; a wake-up during the claim: rows
	 * committed after its snapshot */
	n = (n > 0 && n == c->want) || c->st->rekick;
	c->st->rekick = 0;
	conf_unref(c->conf);
	free(c);
	if (n)
		sms_claim(s);
}

/* A text to a lead that needs consent goes out only if the lead has it
 * now (else: suppressed), and a campaign's only while it runs. */
static const char claim_sql[] =
    "WITH c AS (SELECT m.id, m.consent_required AND NOT EXISTS (SELECT 1 "
    "FROM leads l WHERE l.id = m.lead_id AND l.sms_consent) AS stop, "
    "m.status = 'sending' AND m.handed_at IS NOT NULL AS lost FROM "
    "sms m WHERE m.gateway = $1 AND m.status IN ('queued', 'sending') AND "
    "m.next_attempt_at <= now() AND (m.status = 'queued' OR m.lease_until "
    "< now()) AND (m.campaign_id IS NULL OR EXISTS (SELECT 1 FROM "
    "campaigns cp WHERE cp.id = m.campaign_id AND cp.status = 'running')) "
    "ORDER BY m.next_attempt_at, m.id LIMIT $2::int FOR UPDATE OF m SKIP "
    "LOCKED) "
    "UPDATE sms s SET status = CASE WHEN c.lost THEN 'failed' WHEN c.stop "
    "THEN 'suppressed' ELSE 'sending' END, lease_until = CASE WHEN c.stop "
    "OR c.lost THEN NULL ELSE now() + $3::bigint * interval "
    "'1 millisecond' END, node_id = $4::bigint, attempts = s.attempts + "
    "CASE WHEN c.stop OR c.lost THEN 0 ELSE 1 END, error = CASE WHEN "
    "c.lost THEN 'outcome unknown: the node sending it stopped after "
    "handing it to the gateway (not sent again)' WHEN c.stop THEN 'the "
    "lead has no consent to SMS (STOP)' ELSE s.error END, updated_at = "
    "now() FROM c WHERE s.id = c.id "
    "RETURNING s.id, s.to_number, s.body, s.encoding, s.segments, "
    "s.attempts, CASE WHEN c.lost THEN 'lost' WHEN c.stop THEN 'stop' "
    "ELSE '' END, CASE WHEN s.consent_required THEN s.lead_id ELSE 0 "
    "END, s.quiet_from, s.quiet_to, "
    "coalesce(s.time_zone, '')";

static void
sms_claim(struct smsd *s)
{
	struct lc_daemon *d = s->d;
	const struct smsgw_conf *sc = d->conf->sms;

	if (!sc || d->stopping || db_state(s->send_db) != DB_READY ||
	    !d->node_id)
		return;
	for (size_t i = 0; i < sc->n; i++) {
		const struct smsgw *g = &sc->v[i];
		struct gwstate *st = gw_state(s, g->name);
		struct claim *c;
		char lim[16], lease[32], node[32];
		const char *p[4] = { g->name, lim, lease, node };
		int n;

		/* a claim per gateway at a time, and none while a
		 * connection's worth still waits locally */
		if (st && st->claiming)
			st->rekick = 1;
		if (!st || st->claiming || st->queued >= g->connections)
			continue;
		refill(st, g->rate);
		n = (int)g->connections * AHEAD - st->inflight - st->queued;
		if (n > CLAIM_MAX)
			n = CLAIM_MAX;
		if (st->tokens < (double)n)
			n = (int)st->tokens;
		if (n < 1 || !(c = calloc(1, sizeof(*c))))
			continue;
		c->s = s;
		c->st = st;
		c->conf = conf_ref(d->conf);
		c->g = g;
		c->want = n;
		if (g->rate > 0)
			st->tokens -= n;
		snprintf(lim, sizeof(lim), "%d", n);
		snprintf(lease, sizeof(lease), "%ld", sc->lease_ms);
		snprintf(node, sizeof(node), "%lld", d->node_id);
		st->claiming = 1;
		if (db_query(s->send_db, claim_sql, 4, p, on_claimed, c) < 0) {
			st->claiming = 0;
			if (g->rate > 0)
				st->tokens += n;
			conf_unref(c->conf);
			free(c);
		}
	}
}

void
sms_kick(struct smsd *s)
{
	if (s)
		sms_claim(s);
}

int
sms_idle(const struct smsd *s)
{
	if (!s)
		return 1;
	for (size_t i = 0; i < s->ngw; i++)
		if (s->gw[i]->inflight || s->gw[i]->claiming ||
		    s->gw[i]->queued)
			return 0;
	/* and its outcomes recorded (else the leases lapse: sent twice) */
	return !s->reminding && !s->nsent && !s->nhand && !s->handing &&
	    !s->filling && (db_pending(s->db) == 0 ||
	    db_state(s->db) != DB_READY) && (db_pending(s->send_db) == 0 ||
	    db_state(s->send_db) != DB_READY);
}

/* ---- reminders ---------------------------------------------------------------------- */

/* Offers told by SMS (they have a code), unanswered, single, whose window
 * closes within the reminder and that are at least that old: marked
 * reminded (once, whichever node gets them) and returned with the lead. */
static const char remind_sql[] =
    "WITH c AS (SELECT id FROM offers WHERE status = 'pending' AND code IS "
    "NOT NULL AND reminded_at IS NULL AND kind = 'single' AND deadline > "
    "now() AND deadline <= now() + $1::bigint * interval '1 millisecond' "
    "AND created_at <= now() - $1::bigint * interval '1 millisecond' "
    "ORDER BY deadline LIMIT 100 FOR UPDATE SKIP LOCKED), "
    "u AS (UPDATE offers o SET reminded_at = now() FROM c WHERE o.id = c.id "
    "RETURNING o.id, o.lead_id, o.rep_id, o.code, o.team, "
    "ceil(extract(epoch FROM o.deadline - now()) / 60)::int AS mins) "
    "SELECT u.id, u.rep_id, u.code, u.team, u.mins, to_jsonb(l)::text "
    "FROM u JOIN leads l ON l.id = u.lead_id";

static void
on_remind(void *arg, const PGresult *res, const char *err)
{
	struct smsd *s = arg;
	struct lc_daemon *d = s->d;
	const struct route_conf *rc = router_conf(d->router);
	struct sms_batch b;

	s->reminding = 0;
	if (err) {
		log_warn("offer reminders: %s", err);
		return;
	}
	sms_batch_init(&b);
	for (int i = 0; rc && i < PQntuples(res); i++) {
		long long offer = strtoll(PQgetvalue(res, i, 0), NULL, 10);
		size_t k = route_rep_find(rc, PQgetvalue(res, i, 1));
		const struct route_rep *rp = k == ROUTE_NONE ? NULL :
		    &rc->reps[k];
		json_t *lead = json_loads(PQgetvalue(res, i, 5), 0, NULL), *v;
		char tok[TOKEN_MAX], url[700] = "", name[300];
		const char *f, *l;

		if (!rp || !lead || !(rp->notify & ROUTE_NOTIFY_SMS) ||
		    !*rp->phone) {
			json_decref(lead);
			continue;
		}
		if (router_rep_num(d->router, rp->id) > 0) {
			token_sign(&d->url_key, 'r', (uint64_t)offer, (uint64_t)
			    router_rep_num(d->router, rp->id), tok);
			snprintf(url, sizeof(url), "%s/r/%s",
			    d->conf->http.public_url, tok);
		}
		f = json_string_value(json_object_get(lead, "first_name"));
		l = json_string_value(json_object_get(lead, "last_name"));
		snprintf(name, sizeof(name), "%s%s%s", f ? f : "", f && l ?
		    " " : "", l ? l : "");
		if (!*name)
			snprintf(name, sizeof(name), "%s", json_string_value(
			    json_object_get(lead, "email")) ? json_string_value(
			    json_object_get(lead, "email")) : "(no name)");
		json_object_set_new(lead, "name", json_string(name));
		v = json_pack("{s:s, s:b, s:b, s:{s:s, s:s}, s:{s:s, s:s}, s:o, "
		    "s:s, s:s, s:i, s:I, s:s}", "kind", "reminder", "is_reminder", 1,
		    "copy", 0, "rep", "id", rp->id, "name", rp->name, "to", "id",
		    rp->id, "name", rp->name, "lead", lead, "team",
		    PQgetvalue(res, i, 3), "card_url", url, "minutes_left",
		    atoi(PQgetvalue(res, i, 4)), "offer", (json_int_t)offer,
		    "code", PQgetvalue(res, i, 2));
		/* the code is the offer's already: no placeholder */
		if (v && add_rendered(d, &b, "sms/reminder", "reminder", rp->id,
		    rp->phone, PQgetvalue(res, i, 3), v, offer, (long long)
		    json_integer_value(json_object_get(lead, "id")), NULL) == 0)
			log_debug("reminding %s of offer %lld", rp->id, offer);
		json_decref(v);
	}
	sms_batch_queue(d, &b);
	sms_batch_free(&b);
}

static void
remind(struct smsd *s)
{
	const struct smsgw_conf *sc = s->d->conf->sms;
	char ms[32];
	const char *p[1] = { ms };
	time_t now = time(NULL);

	if (!sc || !sc->reminder_ms || s->reminding || now == s->last_remind ||
	    !router_conf(s->d->router) || db_state(s->db) != DB_READY)
		return;
	s->last_remind = now;
	snprintf(ms, sizeof(ms), "%ld", sc->reminder_ms);
	if (db_query(s->db, remind_sql, 1, p, on_remind, s) == 0)
		s->reminding = 1;
}

static void
on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct smsd *s = arg;
	const struct smsgw_conf *sc = s->d->conf->sms;
	time_t now = time(NULL);

	(void)fd;
	(void)what;
	sms_claim(s);
	remind(s);
	sms_fill(s, 0);
	for (size_t i = 0; i < s->ngw; i++)
		pool_expire(s->gw[i], now);
	/* messages queued for a gateway a reload removed: the default */
	if (sc && now - s->last_fix >= 10 && db_state(s->db) == DB_READY) {
		struct buf names;
		const char *p[2];

		s->last_fix = now;
		buf_init(&names, 0);
		for (size_t i = 0; i < sc->n; i++)
			db_array_add(&names, sc->v[i].name);
		p[0] = db_array_end(&names);
		p[1] = sc->v[sc->def].name;
		db_query(s->db, "UPDATE sms SET gateway = $2 WHERE status = "
		    "'queued' AND gateway <> ALL($1::text[])", 2, p, NULL, NULL);
		buf_free(&names);
	}
}

static void
on_sms_wake(void *arg, const char *channel, const char *payload)
{
	(void)channel;
	(void)payload;
	sms_kick(arg);
}

/* ---- requests from gateways ------------------------------------------------------ */

#define JSON_PARAMS_MAX  64             /* values taken from a JSON body */
#define JSON_DEPTH_MAX   4

/*
 * A JSON body's values as parameters: strings as they are, numbers and
 * booleans as written; nested objects by dotted names ({"from":
 * {"number": "447700900001"}} gives from.number), so that in_from and
 * the like can name them. Arrays and nulls are skipped. -1 if there are
 * too many values or names too deep.
 */
static int
json_params(const json_t *o, const char *prefix, int depth,
    struct evkeyvalq *out, int *n)
{
	const char *k;
	json_t *v;

	if (depth > JSON_DEPTH_MAX)
		return -1;
	json_object_foreach((json_t *)o, k, v) {
		char name[256], val[64];
		const char *text = NULL;

		if (snprintf(name, sizeof(name), "%s%s%s", prefix, *prefix ? "." :
		    "", k) >= (int)sizeof(name))
			return -1;
		if (json_is_object(v)) {
			if (json_params(v, name, depth + 1, out, n) < 0)
				return -1;
			continue;
		}
		if (json_is_string(v))
			text = json_string_value(v);
		else if (json_is_integer(v))
			snprintf(val, sizeof(val), "%" JSON_INTEGER_FORMAT,
			    json_integer_value(v)), text = val;
		else if (json_is_real(v))
			snprintf(val, sizeof(val), "%.17g", json_real_value(v)),
			    text = val;
		else if (json_is_boolean(v))
			text = json_is_true(v) ? "true" : "false";
		if (!text)
			continue;
		if (++*n > JSON_PARAMS_MAX || strlen(text) > IN_TEXT_MAX * 4)
			return -1;
		evhttp_add_header(out, name, text);
	}
	return 0;
}

static int req_params_add(struct httpd_req *r, struct evkeyvalq *out);

/* The parameters of a gateway's request: the query, and a form or JSON
 * body (Vonage-style webhooks post JSON). 0, or -1 (out empty) for a
 * malformed body. */
static int
req_params(struct httpd_req *r, struct evkeyvalq *out)
{
	if (req_params_add(r, out) < 0) {
		evhttp_clear_headers(out);
		return -1;
	}
	return 0;
}

static int
req_params_add(struct httpd_req *r, struct evkeyvalq *out)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(r->req);
	size_t len = evbuffer_get_length(in);
	const char *ct = evhttp_find_header(evhttp_request_get_input_headers(
	    r->req), "Content-Type");
	struct evkeyval *kv;
	char *body;

	TAILQ_INIT(out);
	TAILQ_FOREACH(kv, r->query, next)
		evhttp_add_header(out, kv->key, kv->value);
	if (len && ct && strncasecmp(ct, "application/json", 16) == 0 &&
	    (ct[16] == '\0' || ct[16] == ';' || ct[16] == ' ')) {
		json_error_t je;
		json_t *doc;
		int n = 0, r2;

		if (!(body = malloc(len + 1)))
			return -1;
		evbuffer_copyout(in, body, len);
		body[len] = '\0';
		doc = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
		free(body);
		if (!json_is_object(doc)) {
			json_decref(doc);
			return -1;
		}
		r2 = json_params(doc, "", 0, out, &n);
		json_decref(doc);
		return r2;
	}
	if (!len || (ct && strncasecmp(ct, "application/x-www-form-urlencoded",
	    33) != 0))
		return 0;
	if (!(body = malloc(len + 1)))
		return -1;
	evbuffer_copyout(in, body, len);
	body[len] = '\0';
	{
		struct evkeyvalq form;

		if (evhttp_parse_query_str(body, &form) < 0) {
			free(body);
			return -1;
		}
		TAILQ_FOREACH(kv, &form, next)
			evhttp_add_header(out, kv->key, kv->value);
		evhttp_clear_headers(&form);
	}
	free(body);
	return 0;
}

/* The gateway of /sms/.../NAME if the caller may use it, else reply. */
static const struct smsgw *
gateway_of(struct smsd *s, struct httpd_req *r, struct evkeyvalq *params)
{
	const struct smsgw_conf *sc = s->d->conf->sms;
	const struct smsgw *g = sc ? smsgw_find(sc, r->tail) : NULL;
	const char *secret;

	if (!g) {
		httpd_reply_error(r, 404, "gateway", "no such gateway");
		return NULL;
	}
	secret = evhttp_find_header(evhttp_request_get_input_headers(r->req),
	    "X-Leadcast-Secret");
	if (!secret)
		secret = evhttp_find_header(params, "secret");
	if (!smsgw_authorized(g, secret, r->client_ip)) {
		metric_add(s->m_refused, 1);
		log_warn("sms: refused a request to %s from %s: %s", r->path,
		    r->client_ip, secret ? "wrong secret or address" :
		    "no secret, or an address not allowed");
		httpd_reply_error(r, 403, NULL, "not allowed");
		return NULL;
	}
	return g;
}

struct dlrreq {
	struct smsd *s;
	struct httpd_req *r;
	char mapped[16];
};

static void
on_dlr(void *arg, const PGresult *res, const char *err)
{
	struct dlrreq *q = arg;

	if (err) {
		httpd_reply_error(q->r, 503, NULL, err);
	} else if (strtoll(PQgetvalue(res, 0, 0), NULL, 10) == 0) {
		log_info("sms: a delivery report for a message we do not know "
		    "(%s)", q->r->path);
		httpd_reply_error(q->r, 404, "id", "no such message");
	} else {
		if (!strcmp(q->mapped, "delivered"))
			metric_add(q->s->m_delivered, 1);
		else if (!strcmp(q->mapped, "failed"))
			metric_add(q->s->m_dlr_failed, 1);
		if (strtoll(PQgetvalue(res, 0, 1), NULL, 10) > 0)
			sender_kick(q->s->d->sender);
		httpd_reply(q->r, 200, "text/plain", "OK\n", 3);
	}
	free(q);
}

/* $1 gateway, $2 our id or NULL, $3 the gateway's id, $4 the status as
 * sent, $5 delivered|failed|pending */
static const char dlr_sql[] =
    "WITH o AS (SELECT id, fallback, fallback_at, offer_id, lead_id FROM "
    "sms WHERE gateway = $1 AND status <> 'queued' AND ((NOT $2::bigint "
    "IS NULL AND id = $2::bigint) OR ($2::bigint IS NULL AND "
    "gateway_msgid = $3)) ORDER BY id LIMIT 1 FOR UPDATE), "
    "u AS (UPDATE sms s SET dlr_status = $4, "
    "status = CASE WHEN $5 = 'delivered' THEN 'delivered' WHEN $5 = "
    "'failed' THEN 'failed' WHEN s.status = 'sending' THEN 'sending' "
    "ELSE s.status END, "
    "delivered_at = CASE WHEN $5 = 'delivered' THEN now() ELSE "
    "s.delivered_at END, "
    "error = CASE WHEN $5 = 'failed' THEN 'delivery report: ' || $4 ELSE "
    "s.error END, "
    "gateway_msgid = coalesce(s.gateway_msgid, nullif($3, '')), "
    "fallback_at = CASE WHEN $5 = 'failed' AND o.fallback IS NOT NULL AND "
    "o.fallback_at IS NULL THEN now() ELSE s.fallback_at END, "
    "updated_at = now() FROM o WHERE s.id = o.id RETURNING s.id), "
    "n AS (SELECT leadcast_notify('offer', ARRAY[NULL::bigint], "
    "ARRAY[o.fallback->>'email'], ARRAY[o.fallback->'vars']) FROM o, u "
    "WHERE $5 = 'failed' AND o.fallback IS NOT NULL AND o.fallback_at IS "
    "NULL AND (o.offer_id IS NULL OR EXISTS (SELECT 1 FROM offers f WHERE "
    "f.id = o.offer_id AND f.status = 'pending'))), "
    "e AS (INSERT INTO events (type, lead_id, data) SELECT 'sms_failed', "
    "o.lead_id, jsonb_build_object('sms', o.id, 'report', $4::text) FROM "
    "o, u WHERE $5 = 'failed' AND o.lead_id IS NOT NULL) "
    "SELECT (SELECT count(*) FROM u), (SELECT count(*) FROM n)";

/* An interim report (buffered, accepted by the SMSC): only noted. */
static const char dlr_pending_sql[] =
    "WITH u AS (UPDATE sms SET dlr_status = $4, gateway_msgid = "
    "coalesce(gateway_msgid, nullif($3, '')), updated_at = now() WHERE "
    "id = (SELECT id FROM sms WHERE gateway = $1 AND status <> 'queued' AND "
    "((NOT $2::bigint IS NULL AND id = $2::bigint) OR ($2::bigint IS NULL "
    "AND gateway_msgid = $3)) ORDER BY id LIMIT 1) RETURNING 1) "
    "SELECT (SELECT count(*) FROM u), 0";

/* GET|POST /sms/dlr/{gateway} */
static void
dlr(struct httpd_req *r, void *arg)
{
	struct smsd *s = arg;
	struct evkeyvalq params;
	const struct smsgw *g;
	const char *id, *msgid, *status, *p[5];
	struct dlrreq *q;
	char *end;

	if (req_params(r, &params) < 0) {
		httpd_reply_error(r, 400, NULL, "malformed parameters");
		return;
	}
	if (!(g = gateway_of(s, r, &params)))
		goto out;
	id = evhttp_find_header(&params, g->dlr_id);
	msgid = evhttp_find_header(&params, g->dlr_msgid);
	status = evhttp_find_header(&params, g->dlr_status);
	if (id && *id) {
		long long v = strtoll(id, &end, 10);

		if (*end || v <= 0 || strlen(id) > 19) {
			httpd_reply_error(r, 400, g->dlr_id, "not a message id");
			goto out;
		}
	} else {
		id = NULL;
	}
	if (!status || !*status || strlen(status) > 64 || (!id && (!msgid ||
	    !*msgid || strlen(msgid) > 200))) {
		log_warn("sms: a malformed delivery report from %s: %s",
		    r->client_ip, r->path);
		httpd_reply_error(r, 400, status && *status ? g->dlr_id :
		    g->dlr_status, "a delivery report names its message (id or "
		    "the gateway's id) and its status");
		goto out;
	}
	if (!(q = calloc(1, sizeof(*q)))) {
		httpd_reply_error(r, 503, NULL, "out of memory");
		goto out;
	}
	q->s = s;
	q->r = r;
	switch (smsgw_dlr_status(g, status)) {
	case SMSGW_DLR_DELIVERED: strcpy(q->mapped, "delivered"); break;
	case SMSGW_DLR_FAILED: strcpy(q->mapped, "failed"); break;
	default: strcpy(q->mapped, "pending"); break;
	}
	p[0] = g->name;
	p[1] = id;
	p[2] = msgid ? msgid : "";
	p[3] = status;
	p[4] = q->mapped;
	if (db_query(s->db, strcmp(q->mapped, "pending") ? dlr_sql :
	    dlr_pending_sql, strcmp(q->mapped, "pending") ? 5 : 4, p, on_dlr,
	    q) < 0) {
		httpd_reply_error(r, 503, NULL, "the database queue is full");
		free(q);
	}
out:
	evhttp_clear_headers(&params);
}

/* ---- inbound messages ------------------------------------------------------------- */

struct inreq {
	struct smsd *s;
	struct httpd_req *r;
	char gateway[65];
	char from[PHONE_E164_MAX];
	char to[64];
	char rep[ROUTE_NAME_MAX + 1];
	char *text;
	char cmd[16];
	char code[16];
	long long lead;
};

static void
in_free(struct inreq *q)
{
	free(q->text);
	free(q);
}

/* Record the message (sender, what it was taken as), answer the gateway,
 * and text reply (NULL: none) back. */
static void
in_finish(struct inreq *q, const char *sender, const char *command,
    const char *reply)
{
	char lead[32];
	const char *p[8] = { q->gateway, q->from, *q->to ? q->to : NULL,
	    q->text, sender,
	    *q->rep ? q->rep : NULL, NULL, command };

	snprintf(lead, sizeof(lead), "%lld", q->lead);
	p[6] = q->lead > 0 ? lead : NULL;
	db_query(q->s->db, "INSERT INTO sms_in (gateway, from_number, "
	    "to_number, body, sender, rep_id, lead_id, command) VALUES ($1, $2, "
	    "$3, $4, $5, $6, $7::bigint, $8)", 8, p, NULL, NULL);
	if (reply)
		sms_send_text(q->s->d, q->gateway, q->from, reply,
		    *q->rep ? q->rep : NULL, 0);
	httpd_reply(q->r, 200, "text/plain", "", 0);
	in_free(q);
}

static void
lead_line(const json_t *lead, char *out, size_t n)
{
	const char *f = json_string_value(json_object_get(lead, "first_name"));
	const char *l = json_string_value(json_object_get(lead, "last_name"));
	const char *ph = json_string_value(json_object_get(lead, "phone"));
	const char *em = json_string_value(json_object_get(lead, "email"));
	const char *co = json_string_value(json_object_get(lead, "company"));

	snprintf(out, n, "%s%s%s%s%s%s%s%s%s", f ? f : "", f && l ? " " : "",
	    l ? l : "", co ? ", " : "", co ? co : "", ph ? ", " : "",
	    ph ? ph : "", em ? ", " : "", em ? em : "");
}

static void
on_answer(void *arg, const char *status, const json_t *lead)
{
	struct inreq *q = arg;
	int accept = q->cmd[0] == 'Y';
	char msg[480], who[300] = "";

	if (lead)
		lead_line(lead, who, sizeof(who));
	if (!strcmp(status, "accepted") && accept)
		snprintf(msg, sizeof(msg), "The lead is yours: %s", who);
	else if (!strcmp(status, "rejected") && !accept)
		snprintf(msg, sizeof(msg), "Passed on offer %s.", q->code);
	else if (!strcmp(status, "expired"))
		snprintf(msg, sizeof(msg), "Too late: offer %s has expired.",
		    q->code);
	else if (!strcmp(status, "already_accepted"))
		snprintf(msg, sizeof(msg), "Offer %s is yours already.", q->code);
	else if (!strcmp(status, "withdrawn"))
		snprintf(msg, sizeof(msg), "Too late: offer %s went to someone "
		    "else.", q->code);
	else if (!strcmp(status, "already_rejected"))
		snprintf(msg, sizeof(msg), "You already passed on offer %s.",
		    q->code);
	else if (!strcmp(status, "error"))
		snprintf(msg, sizeof(msg), "Sorry, that failed; try again in a "
		    "minute.");
	else
		snprintf(msg, sizeof(msg), "No offer %s. Reply HELP for the "
		    "commands.", q->code);
	in_finish(q, "rep", accept ? "accept" : "reject", msg);
}

static void
on_code(void *arg, const PGresult *res, const char *err)
{
	struct inreq *q = arg;
	char msg[200];

	if (err) {
		in_finish(q, "rep", "error", "Sorry, that failed; try again in a "
		    "minute.");
		return;
	}
	if (PQntuples(res) == 0) {
		snprintf(msg, sizeof(msg), "No offer %s. Reply HELP for the "
		    "commands.", q->code);
		in_finish(q, "rep", "unknown code", msg);
		return;
	}
	if (PQntuples(res) > 1) {
		in_finish(q, "rep", "ambiguous", "You have several offers: "
		    "reply Y or N with the offer's code.");
		return;
	}
	snprintf(q->code, sizeof(q->code), "%s", PQgetvalue(res, 0, 1));
	if (router_answer(q->s->d->router, strtoll(PQgetvalue(res, 0, 0), NULL,
	    10), q->rep, q->cmd[0] == 'Y', on_answer, q) < 0)
		in_finish(q, "rep", "error", "Sorry, that failed; try again in "
		    "a minute.");
}

static void
on_next(void *arg, int status, json_t *doc)
{
	struct inreq *q = arg;
	char msg[480], who[300];

	if (status == 200) {
		lead_line(json_object_get(doc, "lead"), who, sizeof(who));
		snprintf(msg, sizeof(msg), "Your next lead: %s", who);
	} else {
		snprintf(msg, sizeof(msg), "No lead for you: %s",
		    json_string_value(json_object_get(json_object_get(doc,
		    "error"), "message")) ? json_string_value(json_object_get(
		    json_object_get(doc, "error"), "message")) : "none waiting");
	}
	json_decref(doc);
	in_finish(q, "rep", "next", msg);
}

static void
on_duty(void *arg, const PGresult *res, const char *err)
{
	struct inreq *q = arg;
	int on = strcmp(q->cmd, "ON") == 0;

	if (err || PQntuples(res) == 0) {
		in_finish(q, "rep", q->cmd, "Sorry, that failed; try again in a "
		    "minute.");
		return;
	}
	if (on)
		router_kick(q->s->d->router);
	in_finish(q, "rep", on ? "on" : "off", on ? "You are on duty: offers "
	    "will come." : "You are off duty: no offers until you reply ON.");
}

static const char help_text[] = "Reply Y and the code to take a lead, N "
    "and the code to pass, NEXT for the next lead of your queue, ON or OFF "
    "to go on or off duty.";

/* A rep's command: "Y 4821", "n4821", "yes 4821", "NEXT", "ON", "OFF",
 * "HELP"; a bare Y or N answers the rep's only pending offer. */
static void
rep_command(struct inreq *q)
{
	char word[16] = "", rest[16] = "";
	const char *t = q->text, *p[2];
	size_t i = 0, k = 0;

	while (*t == ' ' || *t == '\t' || *t == '\n' || *t == '\r')
		t++;
	while (isalpha((unsigned char)*t) && i < sizeof(word) - 1)
		word[i++] = (char)toupper((unsigned char)*t++);
	word[i] = '\0';
	while (*t && !isdigit((unsigned char)*t) && !isalpha((unsigned char)*t))
		t++;
	while (*t && k < sizeof(rest) - 1 && !isspace((unsigned char)*t))
		rest[k++] = *t++;
	rest[k] = '\0';
	if (!strcmp(word, "YES"))
		strcpy(word, "Y");
	else if (!strcmp(word, "NO"))
		strcpy(word, "N");
	snprintf(q->cmd, sizeof(q->cmd), "%s", word);
	if (!strcmp(word, "Y") || !strcmp(word, "N")) {
		if (*rest && (strlen(rest) > 8 || strspn(rest, "0123456789") !=
		    strlen(rest))) {
			in_finish(q, "rep", "unknown", "Reply Y or N with the "
			    "offer's code, like Y 4821.");
			return;
		}
		snprintf(q->code, sizeof(q->code), "%s", rest);
		p[0] = q->rep;
		p[1] = q->code;
		/* the offer with this code (the pending one first), or the
		 * rep's only pending offer for a bare Y/N */
		if (db_query(q->s->db, *rest ? "SELECT id, code FROM offers "
		    "WHERE rep_id = $1 AND code = $2 ORDER BY status = 'pending' "
		    "DESC, id DESC LIMIT 1" : "SELECT id, code FROM offers WHERE "
		    "rep_id = $1 AND status = 'pending' AND code IS NOT NULL AND "
		    "$2 = '' ORDER BY id LIMIT 2", 2, p, on_code, q) < 0)
			in_finish(q, "rep", "error", "Sorry, that failed; try "
			    "again in a minute.");
	} else if (!strcmp(word, "NEXT")) {
		leads_next_cb(q->s->d, q->rep, on_next, q);
	} else if (!strcmp(word, "ON") || !strcmp(word, "OFF")) {
		if (router_set_duty(q->s->d->router, q->rep, !strcmp(word, "ON"),
		    on_duty, q) < 0)
			in_finish(q, "rep", "error", "Sorry, that failed; try "
			    "again in a minute.");
	} else if (!strcmp(word, "HELP") || !strcmp(word, "INFO") ||
	    *q->text == '?') {
		in_finish(q, "rep", "help", help_text);
	} else {
		in_finish(q, "rep", "unknown", "Unknown command. Reply HELP for "
		    "the commands.");
	}
}

static int
word_is(const char *text, const char *const *words)
{
	char w[32];
	size_t i = 0;

	while (isspace((unsigned char)*text))
		text++;
	while (*text && !isspace((unsigned char)*text) && i < sizeof(w) - 1)
		w[i++] = (char)toupper((unsigned char)*text++);
	w[i] = '\0';
	while (isspace((unsigned char)*text))
		text++;
	if (*text)
		return 0;       /* more than one word: a message */
	for (; *words; words++)
		if (!strcmp(w, *words))
			return 1;
	return 0;
}

static void
on_lead_update(void *arg, const PGresult *res, const char *err)
{
	struct inreq *q = arg;

	(void)res;
	if (err)
		log_warn("sms from lead %lld: %s", q->lead, err);
	in_finish(q, "lead", q->cmd, NULL);
}

static void
on_reply_scored(void *arg, int status, json_t *doc)
{
	struct inreq *q = arg;

	if (status >= 300)
		log_warn("sms from lead %lld: recording the reply: %s", q->lead,
		    json_string_value(json_object_get(json_object_get(doc,
		    "error"), "message")));
	json_decref(doc);
	in_finish(q, "lead", q->cmd, NULL);
}

static void
lead_message(struct inreq *q)
{
	static const char *const stop[] = { "STOP", "STOPALL", "UNSUBSCRIBE",
		"CANCEL", "END", "QUIT", NULL };
	static const char *const start[] = { "START", "UNSTOP", "YES", NULL };
	char id[32];
	const char *p[3] = { id, NULL, NULL };

	snprintf(id, sizeof(id), "%lld", q->lead);
	if (word_is(q->text, stop) || word_is(q->text, start)) {
		int on = word_is(q->text, start);

		snprintf(q->cmd, sizeof(q->cmd), "%s", on ? "start" : "stop");
		p[1] = on ? "t" : "f";
		/* STOP holds at once: the lead's queued texts are suppressed,
		 * and those claimed already at their handed mark (hand_sql);
		 * a text already handed to the gateway is gone */
		if (db_query(q->s->db, "WITH u AS (UPDATE leads SET "
		    "sms_consent = $2::bool, sms_consent_at = now(), updated_at = "
		    "now() WHERE id = $1::bigint RETURNING id), "
		    "x AS (UPDATE sms SET status = 'suppressed', error = 'STOP "
		    "from the lead', lease_until = NULL, updated_at = now() WHERE "
		    "NOT $2::bool AND lead_id = $1::bigint AND consent_required "
		    "AND status = 'queued' RETURNING 1) "
		    "INSERT INTO events "
		    "(type, lead_id, data) SELECT CASE WHEN $2::bool THEN "
		    "'sms_optin' ELSE 'sms_optout' END, id, jsonb_build_object("
		    "'channel', 'sms', 'suppressed', (SELECT count(*) FROM x)) "
		    "FROM u", 2, p, on_lead_update, q) < 0)
			in_finish(q, "lead", q->cmd, NULL);
		return;
	}
	snprintf(q->cmd, sizeof(q->cmd), "reply");
	/* a reply event, scored (behavior rules on "reply") */
	leads_event(q->s->d, q->lead, json_pack("{s:s, s:s, s:s, s:s}", "type",
	    "reply", "channel", "sms", "gateway", q->gateway, "text", q->text),
	    on_reply_scored, q);
}

static void
on_lead_of(void *arg, const PGresult *res, const char *err)
{
	struct inreq *q = arg;

	if (err) {
		httpd_reply_error(q->r, 503, NULL, err);
		in_free(q);
		return;
	}
	if (PQntuples(res) == 0) {
		log_info("sms: a message from %s, neither a rep's nor a lead's "
		    "number: recorded, ignored", q->from);
		in_finish(q, "unknown", NULL, NULL);
		return;
	}
	q->lead = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	lead_message(q);
}

/* GET|POST /sms/in/{gateway} */
static void
inbound(struct httpd_req *r, void *arg)
{
	struct smsd *s = arg;
	struct evkeyvalq params;
	const struct smsgw *g;
	const struct route_conf *rc;
	const char *from, *text;
	struct inreq *q;
	struct sms_info in;
	char why[160];
	const char *p[1];

	if (req_params(r, &params) < 0) {
		httpd_reply_error(r, 400, NULL, "malformed parameters");
		return;
	}
	if (!(g = gateway_of(s, r, &params)))
		goto out;
	from = evhttp_find_header(&params, g->in_from);
	text = evhttp_find_header(&params, g->in_text);
	if (!from || !text) {
		httpd_reply_error(r, 400, from ? g->in_text : g->in_from,
		    "an inbound message has a sender and a text");
		goto out;
	}
	if (strlen(text) > IN_TEXT_MAX || sms_measure(text, strlen(text),
	    &in) < 0) {
		httpd_reply_error(r, 400, g->in_text, "the text is not UTF-8 or "
		    "too long");
		goto out;
	}
	if (!(q = calloc(1, sizeof(*q))) || !(q->text = strdup(text))) {
		free(q);
		httpd_reply_error(r, 503, NULL, "out of memory");
		goto out;
	}
	q->s = s;
	q->r = r;
	snprintf(q->gateway, sizeof(q->gateway), "%s", g->name);
	snprintf(q->to, sizeof(q->to), "%s", evhttp_find_header(&params,
	    g->in_to) ? evhttp_find_header(&params, g->in_to) : "");
	metric_add(s->m_in, 1);
	if (strlen(from) > PHONE_INPUT_MAX || phone_normalize(from,
	    s->d->conf->default_country, q->from, sizeof(q->from), why,
	    sizeof(why)) < 0) {
		log_warn("sms: a message through %s from '%.64s', which is not "
		    "a phone number (%s): ignored", g->name, from, why);
		httpd_reply_error(r, 400, g->in_from, "the sender is not a "
		    "phone number");
		in_free(q);
		goto out;
	}
	/* a rep's phone? */
	if ((rc = router_conf(s->d->router)) != NULL) {
		for (size_t i = 0; i < rc->nreps; i++) {
			if (strcmp(rc->reps[i].phone, q->from) == 0) {
				snprintf(q->rep, sizeof(q->rep), "%s",
				    rc->reps[i].id);
				break;
			}
		}
	}
	if (*q->rep) {
		rep_command(q);
		goto out;
	}
	p[0] = q->from;
	if (db_query(s->db, "SELECT id FROM leads WHERE phone = $1 ORDER BY "
	    "id LIMIT 1", 1, p, on_lead_of, q) < 0) {
		httpd_reply_error(r, 503, NULL, "the database queue is full");
		in_free(q);
	}
out:
	evhttp_clear_headers(&params);
}

/* ---- GET /api/v1/reports/sms ------------------------------------------------------------- */

#define REPORT_DAYS 30

/* Per gateway (the one that last had the message) since $1: messages and
 * parts by status, delivery rate, time to the gateway's acceptance and to
 * delivery, fallback emails; texts received by kind of sender. */
static const char report_sql[] =
    "WITH m AS (SELECT * FROM sms WHERE created_at >= to_timestamp($1::bigint)) "
    "SELECT 'gateway', jsonb_build_object('gateway', gateway, "
    "'messages', count(*), 'segments', sum(segments), "
    "'queued', count(*) FILTER (WHERE status = 'queued'), "
    "'sending', count(*) FILTER (WHERE status = 'sending'), "
    "'sent', count(*) FILTER (WHERE status = 'sent'), "
    "'delivered', count(*) FILTER (WHERE status = 'delivered'), "
    "'failed', count(*) FILTER (WHERE status = 'failed'), "
    "'failed_over', count(*) FILTER (WHERE gateway <> first_gateway), "
    "'fallback_emails', count(*) FILTER (WHERE fallback_at IS NOT NULL), "
    "'send_p50_s', percentile_cont(0.5) WITHIN GROUP (ORDER BY extract("
    "epoch FROM sent_at - created_at)) FILTER (WHERE sent_at IS NOT NULL), "
    "'send_p90_s', percentile_cont(0.9) WITHIN GROUP (ORDER BY extract("
    "epoch FROM sent_at - created_at)) FILTER (WHERE sent_at IS NOT NULL), "
    "'deliver_p50_s', percentile_cont(0.5) WITHIN GROUP (ORDER BY extract("
    "epoch FROM delivered_at - sent_at)) FILTER (WHERE delivered_at IS NOT "
    "NULL AND sent_at IS NOT NULL), "
    "'cost', coalesce(sum(cost), 0), "
    "'suppressed', count(*) FILTER (WHERE status = 'suppressed'))::text "
    "FROM m GROUP BY gateway "
    "UNION ALL SELECT 'campaign', jsonb_build_object('campaign', c.name, "
    "'status', c.status, 'messages', count(*), 'segments', "
    "sum(m.segments), 'cost', coalesce(sum(m.cost), 0), "
    "'queued', count(*) FILTER (WHERE m.status = 'queued' AND "
    "m.next_attempt_at <= now()), "
    "'deferred', count(*) FILTER (WHERE m.status = 'queued' AND "
    "m.next_attempt_at > now()), "
    "'sending', count(*) FILTER (WHERE m.status = 'sending'), "
    "'sent', count(*) FILTER (WHERE m.status = 'sent'), "
    "'delivered', count(*) FILTER (WHERE m.status = 'delivered'), "
    "'failed', count(*) FILTER (WHERE m.status = 'failed'), "
    "'suppressed', count(*) FILTER (WHERE m.status = 'suppressed'), "
    "'cancelled', count(*) FILTER (WHERE m.status = 'cancelled'))::text "
    "FROM sms m JOIN campaigns c ON c.id = m.campaign_id WHERE "
    "c.started_at >= to_timestamp($1::bigint) OR m.created_at >= "
    "to_timestamp($1::bigint) GROUP BY c.name, c.status "
    "UNION ALL SELECT 'inbound', jsonb_object_agg(sender, n)::text FROM "
    "(SELECT sender, count(*) AS n FROM sms_in WHERE created_at >= "
    "to_timestamp($1::bigint) GROUP BY sender) i HAVING count(*) > 0";

struct repreq {
	struct httpd_req *r;
	time_t since;
};

static void
on_report(void *arg, const PGresult *res, const char *err)
{
	struct repreq *q = arg;
	json_t *gws = json_array(), *cps = json_array(),
	    *in = json_pack("{s:i, s:i, s:i}", "rep", 0,
	    "lead", 0, "unknown", 0);
	char since[32];
	struct tm tm;

	if (err) {
		httpd_reply_error(q->r, 503, NULL, err);
		json_decref(gws);
		json_decref(cps);
		json_decref(in);
		free(q);
		return;
	}
	for (int i = 0; i < PQntuples(res); i++) {
		json_t *v = json_loads(PQgetvalue(res, i, 1), 0, NULL);

		if (!v)
			continue;
		if (!strcmp(PQgetvalue(res, i, 0), "inbound")) {
			json_object_update(in, v);
			json_decref(v);
		} else if (!strcmp(PQgetvalue(res, i, 0), "campaign")) {
			json_array_append_new(cps, v);
		} else {
			json_t *sent = json_object_get(v, "sent"),
			    *del = json_object_get(v, "delivered"),
			    *fail = json_object_get(v, "failed");
			double done = json_number_value(sent) +
			    json_number_value(del) + json_number_value(fail);

			json_object_set_new(v, "delivery_rate", done > 0 ?
			    json_real(json_number_value(del) / done) :
			    json_null());
			json_array_append_new(gws, v);
		}
	}
	gmtime_r(&q->since, &tm);
	strftime(since, sizeof(since), "%Y-%m-%dT%H:%M:%SZ", &tm);
	httpd_reply_json(q->r, 200, json_pack("{s:s, s:o, s:o, s:o}", "since",
	    since, "gateways", gws, "campaigns", cps, "inbound", in));
	free(q);
}

static void
report(struct httpd_req *r, void *arg)
{
	struct smsd *s = arg;
	const char *since = evhttp_find_header(r->query, "since");
	struct repreq *q;
	char e[32];
	const char *p[1] = { e };
	time_t t;

	if (!since) {
		t = time(NULL) - REPORT_DAYS * 86400;
	} else if (cond_parse_time(since, &t) < 0) {
		httpd_reply_error(r, 400, "since", "an ISO 8601 time such as "
		    "2024-05-01 or 2024-05-01T09:30:00Z");
		return;
	}
	if (!(q = calloc(1, sizeof(*q)))) {
		httpd_reply_error(r, 503, NULL, "out of memory");
		return;
	}
	q->r = r;
	q->since = t;
	snprintf(e, sizeof(e), "%lld", (long long)t);
	if (db_query(s->db, report_sql, 1, p, on_report, q) < 0) {
		httpd_reply_error(r, 503, NULL, "the database queue is full");
		free(q);
	}
}

/* ---- POST /api/v1/sms/send: one text to a lead ------------------------------------- */

static void
on_api_sent(void *arg, const char *status, const char *msg, long long id)
{
	struct httpd_req *r = arg;
	int code = !strcmp(status, "queued") ? 201 : !strcmp(status,
	    "duplicate") ? 200 : !strcmp(status, "no_lead") ? 404 :
	    !strcmp(status, "error") ? 503 : 409;
	json_t *doc = json_pack("{s:s, s:s}", "status", status, "message", msg);

	if (id > 0)
		json_object_set_new(doc, "sms", json_integer(id));
	httpd_reply_json(r, code, doc);
}

/*
 * {"lead": ID, "template": "sms/NAME", "key": "...", "vars": {...},
 * "gateway": "NAME"} (all but lead and template optional):
 * 201 queued, 200 the key's message exists already, 409 no phone, no
 * consent or too long (too long is recorded as failed), 404 no lead.
 */
static void
api_send(struct httpd_req *r, void *arg)
{
	struct smsd *s = arg;
	json_t *body = httpd_body_json(r), *vars;
	const char *tpl, *key, *gw, *field = NULL, *why = NULL;
	char tname[200], rkey[64];
	json_int_t lead;
	struct sms_lead_msg m;

	if (!body)
		return;
	lead = json_integer_value(json_object_get(body, "lead"));
	tpl = json_string_value(json_object_get(body, "template"));
	key = json_string_value(json_object_get(body, "key"));
	vars = json_object_get(body, "vars");
	gw = json_string_value(json_object_get(body, "gateway"));
	if (!s->d->conf->sms)
		field = "", why = "no SMS gateways are configured (sms.conf)";
	else if (!json_is_integer(json_object_get(body, "lead")) || lead <= 0)
		field = "lead", why = "the lead's id (a number)";
	else if (!tpl || strlen(tpl) >= sizeof(tname) - 4)
		field = "template", why = "the template's name (sms/NAME)";
	else if (json_object_get(body, "key") && (!key || !*key ||
	    strlen(key) > 200))
		field = "key", why = "an idempotency key of 1 to 200 characters";
	else if (vars && !json_is_object(vars))
		field = "vars", why = "an object of template data";
	else if (json_object_get(body, "gateway") && (!gw ||
	    !smsgw_find(s->d->conf->sms, gw)))
		field = "gateway", why = "no such gateway in sms.conf";
	if (!why) {
		/* the SMS templates only: not the email ones */
		snprintf(tname, sizeof(tname), "%s%s", strncmp(tpl, "sms/", 4) ?
		    "sms/" : "", tpl);
		if (!tmpl_set_get(s->d->conf->templates, tname))
			field = "template", why = "no such template in "
			    "templates/sms/";
	}
	if (why) {
		httpd_reply_error(r, why && field && *field ? 400 : 409, field &&
		    *field ? field : NULL, why);
		json_decref(body);
		return;
	}
	if (!key) {
		/* no key: a random one (each call a new text) */
		memcpy(rkey, "api:", 4);
		if (token_random_hex(rkey + 4, sizeof(rkey) - 4, 16) < 0) {
			httpd_reply_error(r, 503, NULL, "no randomness");
			json_decref(body);
			return;
		}
		key = rkey;
	}
	memset(&m, 0, sizeof(m));
	m.lead = (long long)lead;
	m.template_name = tname;
	m.key = key;
	m.kind = "api";
	m.vars = vars;
	m.gateway = gw;
	if (sms_to_lead(s->d, &m, on_api_sent, r) < 0)
		httpd_reply_error(r, 503, NULL, "cannot queue the text now");
	json_decref(body);
}

/* ---- POST /api/v1/sms/consent: record a lead's consent ------------------------------ */

static void
on_consent(void *arg, const PGresult *res, const char *err)
{
	struct httpd_req *r = arg;

	if (err)
		httpd_reply_error(r, 503, NULL, err);
	else if (PQntuples(res) == 0)
		httpd_reply_error(r, 404, "lead", "no such lead");
	else
		httpd_reply_json(r, 200, json_pack("{s:I, s:b, s:i}", "lead",
		    (json_int_t)strtoll(PQgetvalue(res, 0, 0), NULL, 10),
		    "sms_consent", !strcmp(PQgetvalue(res, 0, 1), "t"),
		    "suppressed", atoi(PQgetvalue(res, 0, 2))));
}

/*
 * {"lead": ID, "consent": true|false, "source": "web form, 2024-05-01"}:
 * the consent a lead gave (a form's box, a signed paper) or withdrew
 * elsewhere, recorded with its source as an sms_optin/sms_optout event.
 * Withdrawing suppresses the lead's texts still queued, like STOP.
 */
static void
api_consent(struct httpd_req *r, void *arg)
{
	struct smsd *s = arg;
	json_t *body = httpd_body_json(r), *c;
	json_int_t lead;
	const char *src;
	char id[32];
	const char *p[3];

	if (!body)
		return;
	lead = json_integer_value(json_object_get(body, "lead"));
	c = json_object_get(body, "consent");
	src = json_string_value(json_object_get(body, "source"));
	if (!json_is_integer(json_object_get(body, "lead")) || lead <= 0)
		httpd_reply_error(r, 400, "lead", "the lead's id (a number)");
	else if (!json_is_boolean(c))
		httpd_reply_error(r, 400, "consent", "true or false");
	else if (!src || !*src || strlen(src) > 200)
		httpd_reply_error(r, 400, "source", "where the consent was given "
		    "or withdrawn, 1 to 200 characters");
	else {
		snprintf(id, sizeof(id), "%lld", (long long)lead);
		p[0] = id;
		p[1] = json_is_true(c) ? "t" : "f";
		p[2] = src;
		if (db_query(s->db, "WITH u AS (UPDATE leads SET sms_consent = "
		    "$2::bool, sms_consent_at = now(), updated_at = now() WHERE "
		    "id = $1::bigint RETURNING id, sms_consent), "
		    "x AS (UPDATE sms SET status = 'suppressed', error = "
		    "'consent withdrawn: ' || $3, updated_at = now() WHERE NOT "
		    "$2::bool AND lead_id = $1::bigint AND consent_required AND "
		    "status = 'queued' AND EXISTS (SELECT 1 FROM u) RETURNING 1), "
		    "e AS (INSERT INTO events (type, lead_id, data) SELECT CASE "
		    "WHEN $2::bool THEN 'sms_optin' ELSE 'sms_optout' END, id, "
		    "jsonb_build_object('channel', 'api', 'source', $3::text) "
		    "FROM u) "
		    "SELECT id, sms_consent, (SELECT count(*) FROM x) FROM u", 3,
		    p, on_consent, r) < 0)
			httpd_reply_error(r, 503, NULL, "the database queue is "
			    "full");
	}
	json_decref(body);
}

/* ---- life cycle --------------------------------------------------------------------- */

struct smsd *
sms_new(struct lc_daemon *d)
{
	static const struct httpd_route routes[] = {
		{ HTTPD_GET | HTTPD_POST, "/sms/dlr/", "sms_dlr", dlr, NULL },
		{ HTTPD_GET | HTTPD_POST, "/sms/in/", "sms_in", inbound, NULL },
		{ HTTPD_GET | HTTPD_AUTH, "/api/v1/reports/sms", "report_sms",
		  report, NULL },
		{ HTTPD_POST | HTTPD_AUTH, "/api/v1/sms/send", "sms_send",
		  api_send, NULL },
		{ HTTPD_POST | HTTPD_AUTH, "/api/v1/sms/consent", "sms_consent",
		  api_consent, NULL },
	};
	struct timeval tick = { 0, TICK_MS * 1000 };
	struct smsd *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->d = d;
	if (!(s->db = db_new(d->base, d->conninfo)) ||
	    !(s->send_db = db_new(d->base, d->conninfo)) ||
	    db_set_options(s->send_db, "-c synchronous_commit=off") < 0) {
		db_free(s->db);
		db_free(s->send_db);
		free(s);
		return NULL;
	}
	if (!(s->dns = evdns_base_new(d->base,
	    EVDNS_BASE_INITIALIZE_NAMESERVERS)))
		s->dns = evdns_base_new(d->base, 0);     /* no resolv.conf */
	if (!(s->ssl = tls_context())) {
		if (s->dns)
			evdns_base_free(s->dns, 0);
		db_free(s->db);
		db_free(s->send_db);
		free(s);
		return NULL;
	}
	SSL_CTX_set_default_verify_paths(s->ssl);
	s->tick = event_new(d->base, -1, EV_PERSIST, on_tick, s);
	event_add(s->tick, &tick);
	s->ev_flush = event_new(d->base, -1, 0, flush_sent, s);
	s->ev_hand = event_new(d->base, -1, 0, flush_hand, s);
	buf_init(&s->sent_ids, 0);
	buf_init(&s->sent_msgids, 0);
	buf_init(&s->sent_at, 0);
#define M(v, lbl) s->v = metrics_counter("leadcast_sms_total", \
	"SMS sent, retried, failed over, failed, delivered, received.", \
	"what=\"" lbl "\"")
	M(m_sent, "sent");
	M(m_retry, "retried");
	M(m_failover, "failed_over");
	M(m_failed, "failed");
	M(m_delivered, "delivered");
	M(m_dlr_failed, "report_failed");
	M(m_in, "received");
	M(m_refused, "refused");
#undef M
	db_listen(d->db, "leadcast_sms", on_sms_wake, s);
	db_start(s->db);
	db_start(s->send_db);
	httpd_add_routes(d->httpd, routes, sizeof(routes) / sizeof(routes[0]),
	    s);
	return s;
}

void
sms_free(struct smsd *s)
{
	if (!s)
		return;
	event_free(s->tick);
	flush_sent(-1, 0, s);
	event_free(s->ev_flush);
	event_free(s->ev_hand);
	s->closing = 1;
	for (int i = 0; i < s->nhand; i++)
		job_free(s->hand[i]);   /* leased, never handed: sent later */
	free(s->hand);
	s->hand = NULL;
	s->nhand = 0;
	buf_free(&s->sent_ids);
	buf_free(&s->sent_msgids);
	buf_free(&s->sent_at);
	s->closing = 1;
	db_free(s->send_db);
	db_free(s->db);
	if (s->dns)
		evdns_base_free(s->dns, 0);
	SSL_CTX_free(s->ssl);
	for (size_t i = 0; i < s->ncas; i++) {
		free(s->cas[i].path);
		SSL_CTX_free(s->cas[i].ctx);
	}
	free(s->cas);
	for (size_t i = 0; i < s->ngw; i++) {
		struct job *j, *next;
		struct pconn *pc, *pnext;

		for (j = s->gw[i]->qhead; j; j = next) {
			next = j->next;
			job_free(j);    /* leased: sent again after the lease */
		}
		for (pc = s->gw[i]->pool; pc; pc = pnext) {
			pnext = pc->next;
			evhttp_connection_set_closecb(pc->conn, NULL, NULL);
			evhttp_connection_free(pc->conn);
			free(pc);
		}
		free(s->gw[i]);
	}
	free(s->gw);
	free(s);
}
