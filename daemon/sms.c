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
#include "cond.h"
#include "db.h"
#include "httpd.h"
#include "log.h"
#include "metrics.h"
#include "phone.h"
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

/* A gateway's runtime state. Claims run ahead of the connections (up to
 * AHEAD times as many messages, all leased): the claimed wait in a local
 * queue and go out as connections free, without a claim each. */
struct gwstate {
	char name[65];
	double tokens;
	struct timespec refill;
	int inflight;
	int claiming;
	struct job *qhead, *qtail;      /* claimed, not yet sent */
	int queued;
};
#define AHEAD 4

struct smsd {
	struct lc_daemon *d;
	struct db *db;                  /* a session of its own: texts, reports
	                                 * and replies do not queue behind
	                                 * captures (gateways wait for our
	                                 * answers to their reports) */
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
	int closing;                    /* sms_free: start nothing */
	/* texts accepted by their gateways, recorded together (sent_batch) */
	struct buf sent_ids, sent_msgids, sent_at;
	int nsent;
	struct event *ev_flush;
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
	struct buf raw, folded, out;
	char *sum, *s, *e;
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
	buf_init(&raw, 65536);
	buf_init(&folded, 65536);
	buf_init(&out, 65536);
	if (tmpl_render(t, v, d->conf->templates, TMPL_ESCAPE_NONE, &raw) < 0 ||
	    sms_fold(buf_str(&raw), raw.len, &folded) < 0)
		goto out;
	/* one line, trimmed */
	if (!folded.data)
		goto out;
	for (s = folded.data; *s; s++)
		if (*s == '\n' || *s == '\r')
			*s = ' ';
	s = folded.data;
	while (*s == ' ')
		s++;
	e = s + strlen(s);
	while (e > s && e[-1] == ' ')
		*--e = '\0';
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
	buf_free(&raw);
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
	char *to, *text;
	struct evhttp_connection *conn;
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
	if (j->st && j->started)
		j->st->inflight--;
	conf_unref(j->conf);
	free(j->to);
	free(j->text);
	free(j);
}

static void sms_claim(struct smsd *s);
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
    "error = CASE WHEN $3 = 'sent' THEN s.error ELSE $5 END, "
    "gateway = CASE WHEN $3 = 'failover' THEN $7 ELSE s.gateway END, "
    "attempts = CASE WHEN $3 = 'failover' THEN 0 ELSE s.attempts END, "
    "next_attempt_at = now() + $6::bigint * interval '1 millisecond', "
    "lease_until = NULL, "
    "fallback_at = CASE WHEN $3 <> 'sent' AND o.fallback IS NOT NULL AND "
    "o.fallback_at IS NULL THEN now() ELSE s.fallback_at END, "
    "updated_at = now() FROM o WHERE s.id = o.id RETURNING s.id), "
    "n AS (SELECT leadcast_notify('offer', ARRAY[NULL::bigint], "
    "ARRAY[o.fallback->>'email'], ARRAY[o.fallback->'vars']) FROM o, u "
    "WHERE $3 <> 'sent' AND o.fallback IS NOT NULL AND o.fallback_at IS "
    "NULL AND (o.offer_id IS NULL OR EXISTS (SELECT 1 FROM offers f WHERE "
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
	if (oc == SMSGW_SENT) {
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
	if (db_query(s->db, record_sql, 7, p, on_recorded, s) < 0)
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
	if (db_query(s->db, sent_sql, 4, p, on_recorded, s) < 0)
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

static void
on_response(struct evhttp_request *req, void *arg)
{
	struct job *j = arg;
	struct timeval zero = { 0, 0 };

	if (j->conn && event_base_once(j->s->d->base, -1, EV_TIMEOUT,
	    free_conn, j->conn, &zero) < 0)
		log_warn("sms: a connection could not be released");
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
		j->tls = 1;
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
	if (!(req = evhttp_request_new(on_response, j))) {
		evhttp_connection_free(j->conn);
		snprintf(why, whyn, "out of memory");
		goto out;
	}
	h = evhttp_request_get_output_headers(req);
	evhttp_add_header(h, "Host", host);
	evhttp_add_header(h, "User-Agent", "leadcast/" PACKAGE_VERSION);
	evhttp_add_header(h, "Connection", "close");
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
		evhttp_connection_free(j->conn);
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

static void
job_start(struct job *j)
{
	char why[300] = "";
	int r;

	j->st->inflight++;
	j->started = 1;
	r = j->g->type == SMSGW_EMAIL2SMS ? email_send(j, why, sizeof(why)) :
	    http_send(j, why, sizeof(why));
	if (r < 0)
		job_done(j, SMSGW_REJECTED, "", why);
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
	n = n > 0 && n == c->want;
	conf_unref(c->conf);
	free(c);
	if (n)
		sms_claim(s);       /* a full claim: there may be more */
}

static const char claim_sql[] =
    "WITH c AS (SELECT id FROM sms WHERE gateway = $1 AND status IN "
    "('queued', 'sending') AND next_attempt_at <= now() AND (status = "
    "'queued' OR lease_until < now()) ORDER BY next_attempt_at, id "
    "LIMIT $2::int FOR UPDATE SKIP LOCKED) "
    "UPDATE sms s SET status = 'sending', lease_until = now() + $3::bigint * "
    "interval '1 millisecond', node_id = $4::bigint, attempts = "
    "s.attempts + 1, updated_at = now() FROM c WHERE s.id = c.id "
    "RETURNING s.id, s.to_number, s.body, s.encoding, s.segments, "
    "s.attempts";

static void
sms_claim(struct smsd *s)
{
	struct lc_daemon *d = s->d;
	const struct smsgw_conf *sc = d->conf->sms;

	if (!sc || d->stopping || db_state(s->db) != DB_READY || !d->node_id)
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
		if (db_query(s->db, claim_sql, 4, p, on_claimed, c) < 0) {
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
	return !s->reminding && !s->nsent && (db_pending(s->db) == 0 ||
	    db_state(s->db) != DB_READY);
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

/* The parameters of a gateway's request: the query, and a form body. */
static int
req_params(struct httpd_req *r, struct evkeyvalq *out)
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
		if (db_query(q->s->db, "WITH u AS (UPDATE leads SET "
		    "sms_consent = $2::bool, sms_consent_at = now(), updated_at = "
		    "now() WHERE id = $1::bigint RETURNING id) INSERT INTO events "
		    "(type, lead_id, data) SELECT CASE WHEN $2::bool THEN "
		    "'sms_optin' ELSE 'sms_optout' END, id, '{\"channel\": "
		    "\"sms\"}' FROM u", 2, p, on_lead_update, q) < 0)
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
    "NULL AND sent_at IS NOT NULL))::text FROM m GROUP BY gateway "
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
	json_t *gws = json_array(), *in = json_pack("{s:i, s:i, s:i}", "rep", 0,
	    "lead", 0, "unknown", 0);
	char since[32];
	struct tm tm;

	if (err) {
		httpd_reply_error(q->r, 503, NULL, err);
		json_decref(gws);
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
	httpd_reply_json(q->r, 200, json_pack("{s:s, s:o, s:o}", "since", since,
	    "gateways", gws, "inbound", in));
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

/* ---- life cycle --------------------------------------------------------------------- */

struct smsd *
sms_new(struct lc_daemon *d)
{
	static const struct httpd_route routes[] = {
		{ HTTPD_GET | HTTPD_POST, "/sms/dlr/", "sms_dlr", dlr, NULL },
		{ HTTPD_GET | HTTPD_POST, "/sms/in/", "sms_in", inbound, NULL },
		{ HTTPD_GET | HTTPD_AUTH, "/api/v1/reports/sms", "report_sms",
		  report, NULL },
	};
	struct timeval tick = { 0, TICK_MS * 1000 };
	struct smsd *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->d = d;
	if (!(s->db = db_new(d->base, d->conninfo))) {
		free(s);
		return NULL;
	}
	if (!(s->dns = evdns_base_new(d->base,
	    EVDNS_BASE_INITIALIZE_NAMESERVERS)))
		s->dns = evdns_base_new(d->base, 0);     /* no resolv.conf */
	if (!(s->ssl = tls_context())) {
		if (s->dns)
			evdns_base_free(s->dns, 0);
		free(s);
		return NULL;
	}
	SSL_CTX_set_default_verify_paths(s->ssl);
	s->tick = event_new(d->base, -1, EV_PERSIST, on_tick, s);
	event_add(s->tick, &tick);
	s->ev_flush = event_new(d->base, -1, 0, flush_sent, s);
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
	buf_free(&s->sent_ids);
	buf_free(&s->sent_msgids);
	buf_free(&s->sent_at);
	s->closing = 1;
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

		for (j = s->gw[i]->qhead; j; j = next) {
			next = j->next;
			job_free(j);    /* leased: sent again after the lease */
		}
		free(s->gw[i]);
	}
	free(s->gw);
	free(s);
}
