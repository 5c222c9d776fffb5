/*
 * bounces - the bounce reader: polls each configured mailbox (conf
 * mailbox "NAME" { ... }) for bounces, complaints and auto-replies,
 * records what each message says, then deletes, moves or marks it; and
 * GET /api/v1/bounces, the list behind `leadcast bounces review`.
 *
 * Each mailbox has a worker thread of its own (a lib/workq of one), so a
 * slow or dead server holds up nothing but itself; its libetpan session
 * (lib/mailbox) lives on that thread. A round, driven from the loop:
 *   poll     (worker) connect and log in if needed, list the messages not
 *            seen in this session; none and IDLE offered: wait with IDLE
 *            up to `poll`, then list again;
 *   known    (loop) which of the next `batch` UIDs the database has
 *            recorded before (mailbox_messages: a crash came between
 *            recording and disposing, or unrelated mail left in place);
 *   fetch    (worker) fetch the others, parse them (lib/dsn) and describe
 *            them (lib/bounce: key, matching ids, recipients);
 *   record   (loop) one statement: leadcast_bounce_message() per message
 *            (lib/sql/010_bounces.sql) matches, records and applies the
 *            effects once per message, and says what became of it;
 *   dispose  (worker) recorded and duplicate messages are deleted, moved
 *            or marked seen as the mailbox says; those for review go to
 *            review_folder (or stay); mail that is not a report is never
 *            touched.
 * Nothing is disposed of before its record is committed, so a crash at
 * any point loses nothing and counts nothing twice. A failed session is
 * closed and retried with backoff (1 s doubling, up to the poll interval
 * or a minute), with one log line per new error.
 */
#include "config.h"
#include "daemon.h"

#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bounce.h"
#include "buf.h"
#include "db.h"
#include "dsn.h"
#include "httpd.h"
#include "log.h"
#include "mailbox.h"
#include "metrics.h"
#include "workq.h"

enum outcome { OUT_NONE, OUT_RECORDED, OUT_DUPLICATE, OUT_REVIEW,
	OUT_IGNORED, OUT_GONE };
static const char *const outcome_names[] = { "", "recorded", "duplicate",
	"review", "ignored", "gone" };

struct item {
	char *uid;
	char *rep;                      /* JSON of a message to record */
	char key[BOUNCE_KEY_MAX];
	enum outcome out;
};

struct bounced;

struct mbox {
	struct bounced *b;
	struct mbox *next;
	struct conf *conf;              /* a reference: cfg lives in it */
	const struct conf_mailbox *cfg;
	struct workq *wq;               /* one thread: this mailbox's */
	struct event *timer;
	pthread_mutex_t lock;           /* guards sess for mailbox_interrupt */
	struct mailbox *sess;           /* used on the worker only */
	int stop;                       /* set on the loop; read under lock */
	int busy;                       /* a poll in flight */
	unsigned fails;
	char last_err[512];
	/* the round */
	struct db *db;                  /* this mailbox's statements, in order */
	struct mailbox_uids uids;       /* listed */
	size_t pos;                     /* the next not yet in a chunk */
	int active;                     /* chunks in flight */
	int round_failed;               /* a chunk failed: retry later */
	int idled;                      /* the poll waited with IDLE */
	char err[512];                  /* the failure to report, "" none */
};

struct bounced {
	struct lc_daemon *d;
	struct mbox *boxes;
	int stopping;
	struct metric *m_out[5], *m_err;
};

static void mbox_poll(struct mbox *m);
static void mbox_chunk(struct mbox *m);
static void failed(struct mbox *m, const char *what);

/* ---- helpers ----------------------------------------------------------- */

static int
stopped(struct mbox *m)
{
	int s;

	pthread_mutex_lock(&m->lock);
	s = m->stop;
	pthread_mutex_unlock(&m->lock);
	return s;
}

static struct mailbox_params
params_of(const struct conf_mailbox *c)
{
	struct mailbox_params p;

	memset(&p, 0, sizeof(p));
	p.proto = (enum mailbox_proto)c->proto;
	p.host = c->host;
	p.port = (int)c->port;
	p.user = c->user;
	p.password = c->secret ? c->secret : "";
	p.folder = c->folder;
	p.starttls = c->starttls;
	p.tls_verify = c->tls_verify;
	p.ca_file = c->ca_file;
	p.timeout_ms = c->timeout_ms;
	p.max_size = c->max_message_size;
	p.move_folder = !strcmp(c->action, "move") ? c->move_to : NULL;
	p.review_folder = c->review_folder;
	return p;
}

static int
is_pop(const struct mbox *m)
{
	return m->cfg->proto == MAILBOX_POP3 || m->cfg->proto == MAILBOX_POP3S;
}

/* Worker: drop the session (after an error, or POP3 at a round's end). */
static void
sess_close(struct mbox *m)
{
	struct mailbox *s;

	pthread_mutex_lock(&m->lock);
	s = m->sess;
	m->sess = NULL;
	pthread_mutex_unlock(&m->lock);
	mailbox_close(s);
}

/* ---- poll ------------------------------------------------------------------ */

static void
poll_work(void *arg)
{
	struct mbox *m = arg;
	struct mailbox_params p = params_of(m->cfg);
	struct mailbox *s;
	char err[512];

	m->err[0] = '\0';
	m->idled = 0;
	mailbox_uids_free(&m->uids);
	if (stopped(m))
		return;
	if (!m->sess) {
		if (!(s = mailbox_open(&p, err, sizeof(err)))) {
			snprintf(m->err, sizeof(m->err), "%s", err);
			return;
		}
		pthread_mutex_lock(&m->lock);
		m->sess = s;
		if (m->stop)
			mailbox_interrupt(s);
		pthread_mutex_unlock(&m->lock);
	}
	if (mailbox_list(m->sess, !strcmp(m->cfg->action, "seen"), &m->uids,
	    err, sizeof(err)) < 0)
		goto fail;
	if (m->uids.n == 0 && m->cfg->idle && mailbox_has_idle(m->sess)) {
		int r = mailbox_idle(m->sess, m->cfg->poll_ms, err, sizeof(err));

		if (r < 0)
			goto fail;
		m->idled = 1;
		if (r > 0 && mailbox_list(m->sess, !strcmp(m->cfg->action,
		    "seen"), &m->uids, err, sizeof(err)) < 0)
			goto fail;
	}
	if (m->uids.n == 0 && is_pop(m))
		sess_close(m);          /* POP3 sees new mail in a new session */
	return;
fail:
	snprintf(m->err, sizeof(m->err), "%s", err);
	sess_close(m);
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	mbox_poll(arg);
}

static void
schedule(struct mbox *m, long ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	evtimer_add(m->timer, &tv);
}

/* Loop: a worker step failed: say so (once per new error) and retry. */
static void
failed(struct mbox *m, const char *what)
{
	long delay = 1000L << (m->fails < 6 ? m->fails : 6);
	long cap = m->cfg->poll_ms > 60000 ? m->cfg->poll_ms : 60000;

	if (delay > cap)
		delay = cap;
	metric_add(m->b->m_err, 1);
	if (strcmp(m->last_err, m->err) != 0 || m->fails % 20 == 0)
		log_warn("mailbox %s (%s://%s): %s: %s; retrying in %ld s",
		    m->cfg->name, m->cfg->protocol, m->cfg->host, what, m->err,
		    delay / 1000);
	snprintf(m->last_err, sizeof(m->last_err), "%s", m->err);
	m->fails++;
	schedule(m, delay);
}

static void
poll_done(void *arg)
{
	struct mbox *m = arg;

	m->busy = 0;
	if (m->b->stopping || stopped(m))
		return;
	if (m->err[0]) {
		failed(m, "poll");
		return;
	}
	if (m->fails)
		log_info("mailbox %s: connected again", m->cfg->name);
	m->fails = 0;
	m->last_err[0] = '\0';
	if (m->uids.n == 0) {
		if (m->idled)
			mbox_poll(m);   /* IDLE was the wait: go on waiting */
		else
			schedule(m, m->cfg->poll_ms);
		return;
	}
	/* one session for the whole round: its statements stay in order */
	m->db = daemon_db(m->b->d);
	m->pos = 0;
	m->round_failed = 0;
	mbox_chunk(m);
}

static void
mbox_poll(struct mbox *m)
{
	if (m->busy || m->active || m->b->stopping || stopped(m))
		return;
	m->busy = 1;
	if (workq_post(m->wq, poll_work, poll_done, m) < 0) {
		m->busy = 0;
		schedule(m, 1000);
	}
}

/* ---- chunks: known, fetch, record, dispose --------------------------------
 *
 * Up to two chunks are in flight, so that the worker fetches the next one
 * while the database records this one. The worker runs its jobs in the
 * order posted and a mailbox's statements go to one database session (in
 * order too), so chunks are disposed of in the order they were listed. */

#define CHUNKS_IN_FLIGHT 2

struct chunk {
	struct mbox *m;
	struct item *items;
	size_t n;
	int last;                       /* holds the last listed UID */
	char err[512];                  /* the worker's failure, "" none */
};

static void
chunk_free(struct chunk *c)
{
	for (size_t i = 0; i < c->n; i++) {
		free(c->items[i].uid);
		free(c->items[i].rep);
	}
	free(c->items);
	free(c);
}

/* Loop: chunk c is over (disposed of, or given up). */
static void
chunk_end(struct chunk *c, const char *what)
{
	struct mbox *m = c->m;

	m->active--;
	if (what && !m->round_failed && !m->b->stopping && !stopped(m)) {
		m->round_failed = 1;
		snprintf(m->err, sizeof(m->err), "%s", c->err[0] ? c->err :
		    "the database is unavailable");
		failed(m, what);
	}
	chunk_free(c);
	if (m->b->stopping || stopped(m) || m->round_failed)
		return;
	if (m->pos < m->uids.n)
		mbox_chunk(m);
	else if (m->active == 0)
		mbox_poll(m);   /* more may have come meanwhile */
}

struct fetch_ctx {
	struct chunk *c;
	size_t *idx;                    /* fetched message k is items[idx[k]] */
};

static void
on_fetched(void *arg, size_t k, const char *data, size_t len, int truncated)
{
	struct fetch_ctx *fc = arg;
	struct chunk *c = fc->c;
	struct item *it = &c->items[fc->idx[k]];
	struct dsn_limits lim = DSN_LIMITS_DEFAULT;
	struct dsn_report rep;
	json_t *doc;

	lim.max_size = c->m->cfg->max_message_size;
	dsn_parse(data, len, &lim, &rep);
	rep.truncated |= truncated;
	doc = bounce_describe(data, len, &rep, &c->m->b->d->url_key);
	dsn_report_free(&rep);
	if (!doc)
		return;
	snprintf(it->key, sizeof(it->key), "%s",
	    json_string_value(json_object_get(doc, "key")));
	it->rep = json_dumps(doc, JSON_COMPACT);
	json_decref(doc);
}

static void
fetch_work(void *arg)
{
	struct chunk *c = arg;
	struct mbox *m = c->m;
	char **want = calloc(c->n + 1, sizeof(char *));
	size_t *idx = calloc(c->n + 1, sizeof(size_t));
	size_t k = 0;
	struct fetch_ctx fc;

	if (!want || !idx) {
		snprintf(c->err, sizeof(c->err), "out of memory");
		goto out;
	}
	if (!m->sess) {
		snprintf(c->err, sizeof(c->err), "the session is gone");
		goto out;
	}
	for (size_t i = 0; i < c->n; i++) {
		if (c->items[i].out != OUT_NONE)
			continue;       /* recorded before */
		idx[k] = i;
		want[k++] = c->items[i].uid;
	}
	fc.c = c;
	fc.idx = idx;
	if (k && mailbox_fetch_many(m->sess, want, k, on_fetched, &fc,
	    c->err, sizeof(c->err)) < 0)
		sess_close(m);
	for (size_t i = 0; i < c->n; i++) {
		struct item *it = &c->items[i];

		if (it->out == OUT_NONE && !it->rep && !c->err[0])
			it->out = OUT_GONE;     /* expunged meanwhile */
		if (it->rep && it->uid[0] == '#') {     /* POP3 without UIDL */
			free(it->uid);
			it->uid = strdup(it->key);
		}
	}
out:
	free(want);
	free(idx);
}

static void
dispose_work(void *arg)
{
	struct chunk *c = arg;
	struct mbox *m = c->m;
	const struct conf_mailbox *cf = m->cfg;
	char **done = calloc(c->n + 1, sizeof(char *));
	char **review = calloc(c->n + 1, sizeof(char *));
	size_t nd = 0, nr = 0;
	enum mailbox_action a = !strcmp(cf->action, "move") ? MAILBOX_MOVE :
	    !strcmp(cf->action, "seen") ? MAILBOX_SEEN : MAILBOX_DELETE;

	if (!done || !review) {
		snprintf(c->err, sizeof(c->err), "out of memory");
		goto out;
	}
	if (!m->sess) {
		snprintf(c->err, sizeof(c->err), "the session is gone");
		goto out;
	}
	for (size_t i = 0; i < c->n; i++) {
		if (!c->items[i].uid)
			continue;
		if (c->items[i].out == OUT_RECORDED ||
		    c->items[i].out == OUT_DUPLICATE)
			done[nd++] = c->items[i].uid;
		else if (c->items[i].out == OUT_REVIEW)
			review[nr++] = c->items[i].uid;
	}
	if (mailbox_dispose(m->sess, a, cf->move_to, done, nd, c->err,
	    sizeof(c->err)) < 0 || (cf->review_folder[0] &&
	    mailbox_dispose(m->sess, MAILBOX_MOVE, cf->review_folder, review,
	    nr, c->err, sizeof(c->err)) < 0)) {
		sess_close(m);
		goto out;
	}
	/* POP3 deletes at QUIT: end the session after the last chunk */
	if (is_pop(m) && c->last) {
		struct mailbox *s;

		pthread_mutex_lock(&m->lock);
		s = m->sess;
		m->sess = NULL;
		pthread_mutex_unlock(&m->lock);
		if (mailbox_close(s) < 0)
			snprintf(c->err, sizeof(c->err), "QUIT was not "
			    "confirmed: the messages stay on the server and are "
			    "disposed of next time");
	}
out:
	free(done);
	free(review);
}

static void
dispose_done(void *arg)
{
	struct chunk *c = arg;

	chunk_end(c, c->err[0] ? "disposing of processed messages" : NULL);
}

static void
on_recorded(void *arg, const PGresult *res, const char *err)
{
	struct chunk *c = arg;
	struct mbox *m = c->m;

	if (err) {
		log_error("mailbox %s: recording bounces: %s (the messages stay "
		    "and are read again)", m->cfg->name, err);
		snprintf(c->err, sizeof(c->err), "recording: %s", err);
		chunk_end(c, "recording");
		return;
	}
	for (int row = 0; res && row < PQntuples(res); row++) {
		size_t i = strtoul(PQgetvalue(res, row, 0), NULL, 10) - 1;
		const char *o = PQgetvalue(res, row, 1);

		if (i >= c->n)
			continue;
		for (int k = 1; k <= 4; k++)
			if (!strcmp(o, outcome_names[k]))
				c->items[i].out = (enum outcome)k;
		if (c->items[i].out >= OUT_RECORDED &&
		    c->items[i].out <= OUT_IGNORED)
			metric_add(m->b->m_out[c->items[i].out], 1);
		if (c->items[i].out == OUT_REVIEW)
			log_info("mailbox %s: message %s (%s) kept for review: "
			    "not understood or not matched to a delivery",
			    m->cfg->name, c->items[i].uid, c->items[i].key);
	}
	if (m->b->stopping || stopped(m) || m->round_failed) {
		chunk_end(c, NULL);
		return;
	}
	if (c->err[0]) {        /* recorded what was fetched; the rest later */
		chunk_end(c, "fetching");
		return;
	}
	if (workq_post(m->wq, dispose_work, dispose_done, c) < 0) {
		snprintf(c->err, sizeof(c->err), "the worker queue is full");
		chunk_end(c, "disposing");
	}
}

static void
fetch_done(void *arg)
{
	struct chunk *c = arg;
	struct mbox *m = c->m;
	struct buf a[3];
	const char *p[6];
	char limit[32], window[32];
	size_t n = 0;

	if (m->b->stopping || stopped(m) || m->round_failed) {
		chunk_end(c, NULL);
		return;
	}
	/* the next chunk is fetched while this one is recorded */
	if (m->pos < m->uids.n && !c->err[0])
		mbox_chunk(m);
	for (int k = 0; k < 3; k++)
		buf_init(&a[k], 0);
	/* every item, in order, so that rows map to items by position */
	for (size_t i = 0; i < c->n; i++) {
		struct item *it = &c->items[i];

		db_array_add(&a[0], it->uid);
		db_array_add(&a[1], it->rep ? it->key : NULL);
		db_array_add(&a[2], it->rep);
		n += it->rep != NULL;
	}
	if (n == 0) {
		for (int k = 0; k < 3; k++)
			buf_free(&a[k]);
		on_recorded(c, NULL, NULL);
		return;
	}
	p[0] = m->cfg->name;
	p[1] = db_array_end(&a[0]);
	p[2] = db_array_end(&a[1]);
	p[3] = db_array_end(&a[2]);
	snprintf(limit, sizeof(limit), "%ld",
	    m->b->d->conf->mail.soft_bounce_limit);
	snprintf(window, sizeof(window), "%ld",
	    m->b->d->conf->mail.soft_bounce_window_ms);
	p[4] = limit;
	p[5] = window;
	if (db_query(m->db,
	    "SELECT x.n, leadcast_bounce_message($1, x.uid, x.key, "
	    "x.rep::jsonb, $5::int, $6::bigint * interval '1 ms') "
	    "FROM unnest($2::text[], $3::text[], $4::text[]) WITH ORDINALITY "
	    "AS x(uid, key, rep, n) WHERE x.rep IS NOT NULL ORDER BY x.n", 6, p,
	    on_recorded, c) < 0) {
		snprintf(c->err, sizeof(c->err), "the database queue is full");
		chunk_end(c, "recording");
	}
	for (int k = 0; k < 3; k++)
		buf_free(&a[k]);
}

static void
on_known(void *arg, const PGresult *res, const char *err)
{
	struct chunk *c = arg;
	struct mbox *m = c->m;

	if (err) {
		snprintf(c->err, sizeof(c->err), "%s", err);
		chunk_end(c, "reading what was recorded");
		return;
	}
	for (int row = 0; row < PQntuples(res); row++) {
		const char *uid = PQgetvalue(res, row, 0);
		const char *o = PQgetvalue(res, row, 1);

		for (size_t i = 0; i < c->n; i++) {
			if (strcmp(c->items[i].uid, uid) != 0)
				continue;
			for (int k = 1; k <= 4; k++)
				if (!strcmp(o, outcome_names[k]))
					c->items[i].out = (enum outcome)k;
		}
	}
	if (m->b->stopping || stopped(m) || m->round_failed) {
		chunk_end(c, NULL);
		return;
	}
	if (workq_post(m->wq, fetch_work, fetch_done, c) < 0) {
		snprintf(c->err, sizeof(c->err), "the worker queue is full");
		chunk_end(c, "fetching");
	}
}

/* Loop: start the next chunk of the listed UIDs, if two are not in
 * flight already. */
static void
mbox_chunk(struct mbox *m)
{
	struct chunk *c;
	struct buf a;
	const char *p[2];
	size_t n = m->uids.n - m->pos;

	if (m->active >= CHUNKS_IN_FLIGHT || n == 0)
		return;
	if (n > (size_t)m->cfg->batch)
		n = (size_t)m->cfg->batch;
	if (!(c = calloc(1, sizeof(*c))) ||
	    !(c->items = calloc(n, sizeof(*c->items)))) {
		free(c);
		schedule(m, 1000);
		return;
	}
	c->m = m;
	m->active++;
	buf_init(&a, 0);
	for (size_t i = 0; i < n; i++) {
		if (!(c->items[i].uid = strdup(m->uids.v[m->pos + i]))) {
			buf_free(&a);
			c->n = i;
			chunk_end(c, "listing");
			return;
		}
		c->n++;
		db_array_add(&a, c->items[i].uid);
	}
	m->pos += n;
	c->last = m->pos == m->uids.n;
	p[0] = m->cfg->name;
	p[1] = db_array_end(&a);
	if (db_query(m->db, "SELECT uid, outcome FROM mailbox_messages WHERE "
	    "mailbox = $1 AND uid = ANY($2::text[])", 2, p, on_known, c) < 0) {
		snprintf(c->err, sizeof(c->err), "the database queue is full");
		chunk_end(c, "reading what was recorded");
	}
	buf_free(&a);
}

/* ---- mailboxes: start, stop, reload -------------------------------------- */

static struct mbox *
mbox_new(struct bounced *b, struct conf *c, const struct conf_mailbox *cfg)
{
	struct mbox *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	m->b = b;
	m->conf = conf_ref(c);
	m->cfg = cfg;
	pthread_mutex_init(&m->lock, NULL);
	m->timer = evtimer_new(b->d->base, on_timer, m);
	m->wq = workq_new(b->d->base, 1);
	if (!m->timer || !m->wq) {
		log_error("mailbox %s: cannot start its worker", cfg->name);
		if (m->timer)
			event_free(m->timer);
		if (m->wq)
			workq_free(m->wq);
		conf_unref(m->conf);
		pthread_mutex_destroy(&m->lock);
		free(m);
		return NULL;
	}
	log_info("mailbox %s: reading %s://%s%s%s as %s (%s)", cfg->name,
	    cfg->protocol, cfg->host, cfg->proto < 2 ? "/" : "",
	    cfg->proto < 2 ? cfg->folder : "", cfg->user, cfg->action);
	return m;
}

/* Ask m to stop: a wait in IDLE ends now. */
static void
mbox_stop(struct mbox *m)
{
	pthread_mutex_lock(&m->lock);
	m->stop = 1;
	if (m->sess)
		mailbox_interrupt(m->sess);
	pthread_mutex_unlock(&m->lock);
	evtimer_del(m->timer);
}

/* Free m: waits for its worker (and so may block up to the timeout);
 * no query of m's may be in flight. */
static void
mbox_free(struct mbox *m)
{
	mbox_stop(m);
	workq_free(m->wq);
	mailbox_close(m->sess);        /* LOGOUT; POP3: QUIT */
	mailbox_uids_free(&m->uids);
	event_free(m->timer);
	conf_unref(m->conf);
	pthread_mutex_destroy(&m->lock);
	free(m);
}

/* A mailbox retired by a reload: its session is closed on its worker
 * once its job and query are done, then it is freed. */
static void
retire_free(evutil_socket_t fd, short what, void *arg)
{
	struct mbox *m = arg;

	(void)fd;
	(void)what;
	log_info("mailbox %s: stopped", m->cfg->name);
	mbox_free(m);
}

static void
retire_closed(void *arg)
{
	struct mbox *m = arg;
	struct timeval now = { 0, 0 };

	event_base_once(m->b->d->base, -1, EV_TIMEOUT, retire_free, m, &now);
}

static void
retire_close(void *arg)
{
	sess_close(arg);
}

static void
retire_check(evutil_socket_t fd, short what, void *arg)
{
	struct mbox *m = arg;
	struct timeval tv = { 0, 100000 };

	(void)fd;
	(void)what;
	if (m->busy || m->active) {
		event_base_once(m->b->d->base, -1, EV_TIMEOUT, retire_check, m,
		    &tv);
		return;
	}
	m->busy = 1;
	if (workq_post(m->wq, retire_close, retire_closed, m) < 0)
		retire_closed(m);
}

void
bounces_conf_changed(struct bounced *b)
{
	struct conf *c = b->d->conf;
	struct mbox *keep = NULL, **tail = &keep, *m, *next;

	if (b->stopping)
		return;
	for (m = b->boxes; m; m = next) {
		const struct conf_mailbox *nc = conf_mailbox_find(c, m->cfg->name);
		struct timeval now = { 0, 0 };

		next = m->next;
		if (nc && conf_mailbox_same(nc, m->cfg)) {
			m->next = NULL;
			*tail = m;
			tail = &m->next;
			continue;
		}
		mbox_stop(m);
		event_base_once(b->d->base, -1, EV_TIMEOUT, retire_check, m, &now);
	}
	b->boxes = keep;
	for (size_t i = 0; i < c->nmailboxes; i++) {
		int have = 0;

		for (m = b->boxes; m; m = m->next)
			have |= !strcmp(m->cfg->name, c->mailboxes[i].name);
		if (have || !(m = mbox_new(b, c, &c->mailboxes[i])))
			continue;
		*tail = m;
		tail = &m->next;
		mbox_poll(m);
	}
}

/* ---- GET /api/v1/bounces -------------------------------------------------- */

static void
on_listed(void *arg, const PGresult *res, const char *err)
{
	struct httpd_req *r = arg;
	json_t *doc;

	if (err) {
		httpd_reply_error(r, 503, NULL, err);
		return;
	}
	doc = json_loads(PQgetvalue(res, 0, 0), 0, NULL);
	if (!doc) {
		httpd_reply_error(r, 500, NULL, "unreadable answer");
		return;
	}
	httpd_reply_json(r, 200, doc);
}

/* ?review=1 (only what waits for review), limit=N (1..1000, 50),
 * since=ISO time (default 30 days back), mailbox=NAME */
static void
list_bounces(struct httpd_req *r, void *arg)
{
	struct lc_daemon *d = arg;
	const char *review = evhttp_find_header(r->query, "review");
	const char *limit = evhttp_find_header(r->query, "limit");
	const char *since = evhttp_find_header(r->query, "since");
	const char *mailbox = evhttp_find_header(r->query, "mailbox");
	const char *p[4];
	char lim[16], *end;
	long n = 50;

	if (limit) {
		n = strtol(limit, &end, 10);
		if (*end || n < 1 || n > 1000) {
			httpd_reply_error(r, 400, "limit", "limit: a number from "
			    "1 to 1000");
			return;
		}
	}
	if (review && strcmp(review, "1") && strcmp(review, "0") &&
	    strcmp(review, "true") && strcmp(review, "false")) {
		httpd_reply_error(r, 400, "review", "review: 1 or 0");
		return;
	}
	if (since && (strlen(since) > 40 || strspn(since,
	    "0123456789-:T+Z. ") != strlen(since))) {
		httpd_reply_error(r, 400, "since", "since: an ISO 8601 time");
		return;
	}
	if (mailbox && strlen(mailbox) > 64) {
		httpd_reply_error(r, 400, "mailbox", "mailbox: at most 64 "
		    "characters");
		return;
	}
	snprintf(lim, sizeof(lim), "%ld", n);
	p[0] = lim;
	p[1] = review && (!strcmp(review, "1") || !strcmp(review, "true")) ?
	    "t" : "f";
	p[2] = since;
	p[3] = mailbox;
	if (db_query(daemon_db(d),
	    "WITH b AS (SELECT b.id, b.created_at, b.source, b.mailbox, b.kind, "
	    "b.format, b.class, b.reason, b.email, b.status, b.smtp_code AS "
	    "code, b.diagnostic, b.remote_mta, b.matched_by, b.delivery_id, "
	    "b.lead_id, c.name AS campaign, b.review, b.report_from AS from, "
	    "b.report_subject AS subject FROM bounces b LEFT JOIN campaigns c "
	    "ON c.id = b.campaign_id WHERE (NOT $2::bool OR b.review) AND "
	    "b.created_at >= coalesce($3::timestamptz, now() - interval "
	    "'30 days') AND ($4::text IS NULL OR b.mailbox = $4) "
	    "ORDER BY b.id DESC LIMIT $1::int) "
	    "SELECT jsonb_build_object('bounces', coalesce((SELECT "
	    "jsonb_agg(to_jsonb(b) ORDER BY b.id DESC) FROM b), '[]'), "
	    "'summary', (SELECT coalesce(jsonb_object_agg(k, n), '{}') FROM "
	    "(SELECT CASE WHEN review THEN 'review' ELSE class END AS k, "
	    "count(*) AS n FROM bounces WHERE created_at >= coalesce("
	    "$3::timestamptz, now() - interval '30 days') AND ($4::text IS "
	    "NULL OR mailbox = $4) GROUP BY 1) s), "
	    "'messages', (SELECT coalesce(jsonb_object_agg(outcome, n), '{}') "
	    "FROM (SELECT outcome, count(*) AS n FROM mailbox_messages WHERE "
	    "created_at >= coalesce($3::timestamptz, now() - interval "
	    "'30 days') AND ($4::text IS NULL OR mailbox = $4) GROUP BY 1) "
	    "m))::text", 4, p, on_listed, r) < 0)
		httpd_reply_error(r, 503, NULL, "the database queue is full");
}

/* ---- the engine ------------------------------------------------------------ */

struct bounced *
bounces_new(struct lc_daemon *d)
{
	struct bounced *b = calloc(1, sizeof(*b));
	static const struct httpd_route routes[] = {
		{ HTTPD_GET | HTTPD_AUTH, "/api/v1/bounces", "api_bounces",
		  list_bounces, NULL },
	};

	if (!b)
		return NULL;
	b->d = d;
	for (int k = OUT_RECORDED; k <= OUT_IGNORED; k++) {
		char labels[64];

		snprintf(labels, sizeof(labels), "outcome=\"%s\"",
		    outcome_names[k]);
		b->m_out[k] = metrics_counter("leadcast_bounce_messages_total",
		    "Messages read from bounce mailboxes, by what became of "
		    "them.", labels);
	}
	b->m_err = metrics_counter("leadcast_bounce_mailbox_errors_total",
	    "Failed bounce mailbox sessions (connect, login, fetch, ...).", "");
	httpd_add_routes(d->httpd, routes, sizeof(routes) / sizeof(routes[0]),
	    d);
	bounces_conf_changed(b);
	return b;
}

int
bounces_idle(struct bounced *b)
{
	int busy = 0;

	if (!b)
		return 1;
	if (b->d->stopping && !b->stopping)
		bounces_stop(b);
	for (struct mbox *m = b->boxes; m; m = m->next)
		busy |= m->busy || m->active;
	return !busy;
}

void
bounces_stop(struct bounced *b)
{
	if (!b)
		return;
	b->stopping = 1;
	for (struct mbox *m = b->boxes; m; m = m->next)
		mbox_stop(m);
}

void
bounces_free(struct bounced *b)
{
	struct mbox *m, *next;

	if (!b)
		return;
	bounces_stop(b);
	for (m = b->boxes; m; m = next) {
		next = m->next;
		mbox_free(m);
	}
	free(b);
}
