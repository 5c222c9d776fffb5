/*
 * track - tracking at scale: the tracking threads, and the loop's side
 * that stores their hits.
 *
 * Threads: with track.listen set, track.threads threads each run an
 * event_base and an httpd of their own, bound with SO_REUSEPORT to the
 * same addresses (the kernel spreads connections over them), serving the
 * open pixel, the click redirect and the web-visit pixel (the handlers of
 * track_routes.c, which the main loop also serves on http.listen). A hit
 * is answered at once: the token is verified in the thread, a click's
 * destination comes from the in-memory link table (lib/linktab; a miss
 * asks the loop, which asks the database), the client is classified
 * (lib/botclass), and the hit is pushed into a bounded queue (lib/hit).
 * A full queue spools the hit from the thread itself.
 *
 * The loop drains the queue every track.flush and writes each batch with
 * one multi-row INSERT (arrays unnested) on a database session of its
 * own; the database's judgements are made in the same statement (a click
 * within scanner_delay of sending, a honeypot link), and one more
 * statement marks the clicks of a message whose every link was clicked
 * within `burst` as a scanner's. When the database is away, or a batch
 * fails, the batch goes to the spool (lib/spool: state_dir/track.spool,
 * fdatasync'd, on the worker pool); once the database is back the spool
 * is replayed in chunks. Every hit carries a unique id and the events
 * table a unique index on it, so a batch stored twice counts once.
 *
 * Scoring: human hits of a known lead are stored with score_due; a pass
 * every second takes those older than track.settle (so that a scanner
 * burst is recognised before it scores), with SKIP LOCKED so that nodes
 * share them, and scores each through leads_score (the rules of
 * scoring.conf, thresholds, owner notifications).
 *
 * It does not parse tokens or build replies (track_routes.c).
 */
#include "config.h"
#include "daemon.h"
#include "track.h"

#include <errno.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "db.h"
#include "form.h"
#include "httpd.h"
#include "linktab.h"
#include "log.h"
#include "metrics.h"
#include "spool.h"
#include "token.h"
#include "workq.h"

#define MAX_INFLIGHT    4               /* batches written at once */
#define REPLAY_CHUNK    (256 * 1024)    /* spool bytes per replayed batch */
#define LINKS_PAGE      10000
#define SCORE_PAGE      500
#define LIMITER_SLOTS   65536
#define BATCH_MAX       2000            /* track.batch's bound */

struct track_thread {
	struct track *t;
	pthread_t tid;
	int running;
	struct track_ctx ctx;
	struct event *ev_stop;
};

struct track {
	struct lc_daemon *d;
	struct hitq *q;
	struct linktab *links;
	struct spool *spool;
	struct db *db;
	struct track_thread *th;
	size_t nth;
	struct track_ctx loop_ctx;      /* for the main loop's own listener */
	pthread_mutex_t lim_lock;       /* the limiter, shared by all threads */
	struct form_limiter *lim;
	struct event *ev_flush, *ev_tick;
	struct hit *scratch;            /* hitq_pop's buffer */
	size_t scratch_n;
	size_t qcap;                    /* the queue's capacity */
	struct hit *pool[MAX_INFLIGHT + 2];     /* free batch buffers */
	size_t npool;
	int inflight;                   /* batches being written */
	int spool_jobs;                 /* spool appends on the pool */
	int replaying;                  /* a replay chunk read or written */
	off_t replay_off;
	int links_loading, scoring, closing;
	struct metric *m_written, *m_spooled, *m_replayed, *m_dupes;
	struct metric *m_hits[HIT_FORWARD + 1][HIT_SCANNER + 1];
	struct metric *m_limited;
};

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- the hot path (any thread) ---------------------------------------------- */

const struct conf *
track_ctx_conf(const struct track_ctx *c)
{
	return c->conf ? c->conf : c->d->conf;
}

int
track_ctx_allow(struct track_ctx *c, const char *ip)
{
	const struct conf *cf = track_ctx_conf(c);
	char key[FORM_LIMITER_KEY_MAX];
	int ok;

	if (!cf->track.rate_count || !c->t->lim)
		return 1;
	form_client_key(ip, key, sizeof(key));
	pthread_mutex_lock(&c->t->lim_lock);
	ok = form_limiter_take(c->t->lim, key, cf->track.rate_count,
	    cf->track.rate_period_ms, now_ms(), NULL);
	pthread_mutex_unlock(&c->t->lim_lock);
	if (ok)
		return 1;
	metric_add(c->t->m_limited, 1);
	return 0;
}

void
track_ctx_record(struct track_ctx *c, struct hit *h)
{
	struct track *t = c->t;

	hit_stamp(h);
	metric_add(t->m_hits[h->type][h->cls], 1);
	if (hitq_push(t->q, h) == 0)
		return;
	/* the loop is behind: keep the hit on disk rather than lose it */
	{
		struct buf b;

		buf_init(&b, 0);
		if (hit_format(h, &b) < 0 ||
		    spool_append(t->spool, b.data, b.len) < 0)
			log_error("tracking: queue full and cannot spool a hit: "
			    "%s", strerror(errno));
		else
			metric_add(t->m_spooled, 1);
		buf_free(&b);
	}
}

int
track_ctx_link(struct track_ctx *c, uint64_t link, char *url, size_t n,
    char *tag, size_t tn)
{
	return linktab_get(c->t->links, link, url, n, tag, tn);
}

/* A link not in memory: the loop asks the database, adds the link to the
 * table, and has cb called on the asking thread. */
struct miss {
	struct track *t;
	struct event_base *reply_base;
	uint64_t link;
	track_miss_fn *cb;
	void *arg;
	int found;
};

static void
miss_reply(evutil_socket_t fd, short what, void *arg)
{
	struct miss *m = arg;

	(void)fd;
	(void)what;
	m->cb(m->arg, m->found);
	free(m);
}

static void
miss_send_back(struct miss *m)
{
	if (event_base_once(m->reply_base, -1, EV_TIMEOUT, miss_reply, m,
	    NULL) < 0) {
		log_error("tracking: cannot answer a link lookup");
		free(m);
	}
}

static void
on_miss_row(void *arg, const PGresult *res, const char *err)
{
	struct miss *m = arg;

	if (m->t->closing) {    /* the threads are gone: nobody to answer */
		free(m);
		return;
	}
	if (!err && PQntuples(res) == 1) {
		linktab_add(m->t->links, m->link, PQgetvalue(res, 0, 0),
		    PQgetvalue(res, 0, 1));
		m->found = 1;
	} else if (err) {
		m->found = -1;
	}
	miss_send_back(m);
}

static void
miss_on_loop(evutil_socket_t fd, short what, void *arg)
{
	struct miss *m = arg;
	char id[32];
	const char *p[1] = { id };

	(void)fd;
	(void)what;
	snprintf(id, sizeof(id), "%llu", (unsigned long long)m->link);
	if (db_query(m->t->db, "SELECT url, tag FROM campaign_links WHERE "
	    "id = $1", 1, p, on_miss_row, m) < 0) {
		m->found = -1;
		miss_send_back(m);
	}
}

int
track_ctx_link_miss(struct track_ctx *c, uint64_t link, track_miss_fn *cb,
    void *arg)
{
	struct miss *m = calloc(1, sizeof(*m));

	if (!m)
		return -1;
	m->t = c->t;
	m->reply_base = c->base;
	m->link = link;
	m->cb = cb;
	m->arg = arg;
	if (event_base_once(c->d->base, -1, EV_TIMEOUT, miss_on_loop, m,
	    NULL) < 0) {
		free(m);
		return -1;
	}
	return 0;
}

/* ---- the spool (the pool) ------------------------------------------------------ */

struct spool_job {
	struct track *t;
	struct buf lines;
	size_t n;
	int rc, err;
};

static void
spool_work(void *arg)
{
	struct spool_job *j = arg;

	j->rc = spool_append(j->t->spool, j->lines.data, j->lines.len);
	j->err = errno;
}

static void spool_retry(evutil_socket_t fd, short what, void *arg);

static void
spool_done(void *arg)
{
	struct spool_job *j = arg;
	struct timeval one = { 1, 0 };

	if (j->rc < 0) {
		log_error("tracking: cannot write %zu hits to the spool (%s): "
		    "trying again", j->n, strerror(j->err));
		if (!j->t->closing && event_base_once(j->t->d->base, -1,
		    EV_TIMEOUT, spool_retry, j, &one) == 0)
			return;
		spool_work(j);  /* closing: one last synchronous try */
		if (j->rc < 0)
			log_error("tracking: %zu hits lost: %s", j->n,
			    strerror(j->err));
	}
	if (j->rc == 0)
		metric_add(j->t->m_spooled, (long long)j->n);
	j->t->spool_jobs--;
	buf_free(&j->lines);
	free(j);
}

static void
spool_retry(evutil_socket_t fd, short what, void *arg)
{
	struct spool_job *j = arg;

	(void)fd;
	(void)what;
	if (workq_post(j->t->d->workq, spool_work, spool_done, j) < 0) {
		spool_work(j);
		spool_done(j);
	}
}

/* Put n hits in the spool (on the pool; synchronously when closing). */
static void
spool_hits(struct track *t, const struct hit *h, size_t n)
{
	struct spool_job *j = calloc(1, sizeof(*j));

	if (!j) {
		log_error("tracking: out of memory: %zu hits lost", n);
		return;
	}
	j->t = t;
	j->n = n;
	buf_init(&j->lines, 0);
	for (size_t i = 0; i < n; i++)
		if (hit_format(&h[i], &j->lines) < 0) {
			log_error("tracking: out of memory: %zu hits lost", n);
			buf_free(&j->lines);
			free(j);
			return;
		}
	t->spool_jobs++;
	if (t->closing || workq_post(t->d->workq, spool_work, spool_done,
	    j) < 0) {
		spool_work(j);
		spool_done(j);
	}
}

/* ---- writing batches (the loop) --------------------------------------------- */

/*
 * $1..$12 and $15: the hits' columns as arrays; $13 the honeypot tag,
 * $14 the scanner delay (ms). A hit's class from the thread stands unless it is
 * human and the database knows better. Links count only when they belong
 * to the message's campaign.
 *
 * Fresh hits from the queue have never been written: their batch is a
 * plain INSERT (the unique index on hit_id still refuses a stored id, and
 * the batch then goes to the spool). A spooled batch may have been stored
 * before (its outcome unknown): it is replayed with ON CONFLICT DO NOTHING,
 * whose check of each id costs ~1 us a row that fresh batches do not pay.
 */
#define INSERT_SQL \
    "INSERT INTO events (hit_id, type, lead_id, delivery_id, campaign_id, " \
    "link_id, ip, user_agent, data, created_at, class, reason, score_due) " \
    "SELECT h.id, h.type, coalesce(d.lead_id, ld.id), d.id, d.campaign_id, " \
    "l.id, h.ip, nullif(h.ua, ''), " \
    "CASE WHEN h.type IN ('visit', 'hot_page') THEN jsonb_strip_nulls(" \
    "jsonb_build_object('url', nullif(h.url, ''), 'referrer', " \
    "nullif(h.referrer, ''), 'page', nullif(h.page, ''))) END, " \
    "to_timestamp(h.at / 1000000.0), k.class, k.reason, " \
    "k.class = 'human' AND coalesce(d.lead_id, ld.id) IS NOT NULL " \
    "FROM unnest($1::uuid[], $2::text[], $3::text[], $4::bigint[], " \
    "$5::bigint[], $6::bigint[], $7::bigint[], $8::inet[], $9::text[], " \
    "$10::text[], $11::text[], $12::text[], $15::text[]) AS h(id, type, " \
    "class, delivery, link, lead, at, ip, reason, ua, url, referrer, page) " \
    "LEFT JOIN deliveries d ON d.id = nullif(h.delivery, 0) " \
    "LEFT JOIN campaign_links l ON l.id = nullif(h.link, 0) AND " \
    "l.campaign_id = d.campaign_id " \
    "LEFT JOIN leads ld ON ld.id = nullif(h.lead, 0) " \
    "CROSS JOIN LATERAL (SELECT CASE " \
    "WHEN h.class <> 'human' THEN h.class " \
    "WHEN h.type = 'click' AND l.tag <> '' AND l.tag = $13 THEN 'scanner' " \
    "WHEN h.type = 'click' AND d.sent_at IS NOT NULL AND " \
    "to_timestamp(h.at / 1000000.0) < d.sent_at + $14::bigint * " \
    "interval '1 millisecond' THEN 'scanner' ELSE 'human' END AS class, " \
    "CASE WHEN h.class <> 'human' THEN nullif(h.reason, '') " \
    "WHEN h.type = 'click' AND l.tag <> '' AND l.tag = $13 THEN 'honeypot' " \
    "WHEN h.type = 'click' AND d.sent_at IS NOT NULL AND " \
    "to_timestamp(h.at / 1000000.0) < d.sent_at + $14::bigint * " \
    "interval '1 millisecond' THEN 'soon-after-sending' END AS reason) k "

static const char insert_sql[] = INSERT_SQL;
static const char replay_sql[] = INSERT_SQL
    "ON CONFLICT (hit_id) WHERE hit_id IS NOT NULL DO NOTHING";

/* Clicks of the messages in $1 whose every link (but the honeypot, $3)
 * was first clicked within $2 ms of the first: a scanner's. */
static const char burst_sql[] =
    "WITH f AS (SELECT e.delivery_id, e.link_id, min(e.created_at) AS first "
    "FROM events e WHERE e.delivery_id = ANY($1::bigint[]) AND "
    "e.type = 'click' AND e.link_id IS NOT NULL GROUP BY 1, 2), "
    "b AS (SELECT f.delivery_id, min(f.first) AS lo, max(f.first) AS hi, "
    "count(*) AS n FROM f GROUP BY 1), "
    "x AS (SELECT b.delivery_id, b.hi FROM b JOIN deliveries d ON "
    "d.id = b.delivery_id WHERE b.n >= 2 AND b.hi - b.lo <= $2::bigint * "
    "interval '1 millisecond' AND b.n >= (SELECT count(*) FROM "
    "campaign_links l WHERE l.campaign_id = d.campaign_id AND "
    "(l.tag = '' OR l.tag <> $3))) "
    "UPDATE events e SET class = 'scanner', reason = 'every-link-at-once', "
    "score_due = false FROM x WHERE e.delivery_id = x.delivery_id AND "
    "e.type = 'click' AND e.created_at <= x.hi AND e.class = 'human'";

struct batch {
	struct track *t;
	struct hit *h;
	size_t n;
	ssize_t replay_used;            /* a replayed chunk: its bytes; else -1 */
};

static void replay_next(struct track *t);

/* Give back a batch's buffer: to the pool if it is one of its size. */
static void
batch_release(struct track *t, struct hit *h)
{
	if (h && t->npool < sizeof(t->pool) / sizeof(t->pool[0]))
		t->pool[t->npool++] = h;
	else
		free(h);
}

static void
on_batch(void *arg, const PGresult *res, const char *err)
{
	struct batch *b = arg;
	struct track *t = b->t;

	if (b->replay_used < 0)
		t->inflight--;
	if (err) {
		if (b->replay_used < 0) {
			log_warn("tracking: writing %zu hits: %s (spooled)", b->n,
			    err);
			spool_hits(t, b->h, b->n);
		} else {
			log_warn("tracking: replaying the spool: %s (later)", err);
			t->replaying = 0;
		}
	} else {
		long long stored = strtoll(PQcmdTuples((PGresult *)res), NULL,
		    10);

		metric_add(t->m_written, stored);
		if ((long long)b->n > stored)
			metric_add(t->m_dupes, (long long)b->n - stored);
		if (b->replay_used >= 0) {
			metric_add(t->m_replayed, (long long)b->n);
			t->replay_off += b->replay_used;
			if (!t->closing)
				replay_next(t);
			else
				t->replaying = 0;
		}
	}
	if (b->replay_used < 0)
		batch_release(t, b->h);
	else
		free(b->h);
	free(b);
}

static void
on_burst(void *arg, const PGresult *res, const char *err)
{
	(void)arg;
	(void)res;
	if (err)
		log_warn("tracking: checking for scanner bursts: %s", err);
}

/* Write n hits (h stolen) with one statement, or spool them. replay_used:
 * see struct batch. */
static void
write_batch(struct track *t, struct hit *h, size_t n, ssize_t replay_used)
{
	const struct conf *c = t->d->conf;
	struct buf col[13], ids;
	struct batch *b;
	char num[32], honey[64], delay[32], burst[32];
	const char *p[15];
	int clicks = 0;

	if (db_state(t->db) != DB_READY) {
		if (replay_used < 0)
			spool_hits(t, h, n);
		else
			t->replaying = 0;
		if (replay_used < 0)
			batch_release(t, h);
		else
			free(h);
		return;
	}
	for (int i = 0; i < 13; i++)
		buf_init(&col[i], 0);
	buf_init(&ids, 0);
	for (size_t i = 0; i < n; i++) {
		const struct hit *x = &h[i];

		db_array_add(&col[0], x->id);
		db_array_add(&col[1], hit_type_name(x->type));
		db_array_add(&col[2], hit_class_name(x->cls));
		snprintf(num, sizeof(num), "%llu", (unsigned long long)x->delivery);
		db_array_add(&col[3], num);
		snprintf(num, sizeof(num), "%llu", (unsigned long long)x->link);
		db_array_add(&col[4], num);
		snprintf(num, sizeof(num), "%llu", (unsigned long long)x->lead);
		db_array_add(&col[5], num);
		snprintf(num, sizeof(num), "%lld", (long long)x->at_us);
		db_array_add(&col[6], num);
		db_array_add(&col[7], x->ip[0] ? x->ip : NULL);
		db_array_add(&col[8], x->reason);
		db_array_add(&col[9], x->ua);
		db_array_add(&col[10], x->url);
		db_array_add(&col[11], x->referrer);
		db_array_add(&col[12], x->page);
		if (x->type == HIT_CLICK && x->delivery && x->cls == HIT_HUMAN) {
			snprintf(num, sizeof(num), "%llu",
			    (unsigned long long)x->delivery);
			db_array_add(&ids, num);
			clicks = 1;
		}
	}
	for (int i = 0; i < 12; i++)
		p[i] = db_array_end(&col[i]);
	snprintf(honey, sizeof(honey), "%s", c->track.honeypot_tag);
	snprintf(delay, sizeof(delay), "%ld", c->track.scanner_delay_ms);
	p[12] = honey;
	p[13] = delay;
	p[14] = db_array_end(&col[12]);
	b = calloc(1, sizeof(*b));
	if (b) {
		b->t = t;
		b->h = h;
		b->n = n;
		b->replay_used = replay_used;
	}
	if (!b || db_query_prepared(t->db, replay_used < 0 ? insert_sql :
	    replay_sql, 15, p, on_batch, b) < 0) {
		if (replay_used < 0)
			spool_hits(t, h, n);
		else
			t->replaying = 0;
		if (replay_used < 0)
			batch_release(t, h);
		else
			free(h);
		free(b);
	} else {
		if (replay_used < 0)
			t->inflight++;
		if (clicks && c->track.burst_ms > 0) {
			const char *q[3] = { db_array_end(&ids), burst, honey };

			snprintf(burst, sizeof(burst), "%ld", c->track.burst_ms);
			db_query_prepared(t->db, burst_sql, 3, q, on_burst,
			    NULL);
		}
	}
	for (int i = 0; i < 13; i++)
		buf_free(&col[i]);
	buf_free(&ids);
}

static void
flush(evutil_socket_t fd, short what, void *arg)
{
	struct track *t = arg;
	size_t max = (size_t)t->d->conf->track.batch, n;

	(void)fd;
	(void)what;
	if (max > BATCH_MAX)
		max = BATCH_MAX;
	while (t->inflight < MAX_INFLIGHT || db_state(t->db) != DB_READY) {
		struct hit *h;

		/* a partial batch waits while another is being written: the
		 * batches grow with the load, and PostgreSQL parses and plans
		 * one statement for many hits rather than one every flush */
		if (t->inflight > 0 && db_state(t->db) == DB_READY &&
		    hitq_len(t->q) < max)
			break;
		h = t->npool ? t->pool[--t->npool] :
		    malloc(BATCH_MAX * sizeof(*h));

		if (!h) {
			if ((n = hitq_pop(t->q, t->scratch, max)) == 0)
				break;
			spool_hits(t, t->scratch, n);
			continue;
		}
		if ((n = hitq_pop(t->q, h, max)) == 0) {
			batch_release(t, h);
			break;
		}
		write_batch(t, h, n, -1);
	}
	/*
	 * PostgreSQL is behind (every batch slot taken, the queue past half
	 * full): spool whole batches from here, one fdatasync each on the
	 * pool, rather than let the queue fill and the tracking threads spool
	 * hit by hit, each waiting for its own fdatasync. The tick replays
	 * them once the database has caught up.
	 */
	while (db_state(t->db) == DB_READY && t->inflight >= MAX_INFLIGHT &&
	    hitq_len(t->q) > t->qcap / 2 &&
	    (n = hitq_pop(t->q, t->scratch, max)) > 0)
		spool_hits(t, t->scratch, n);
}

/* ---- replaying the spool ---------------------------------------------------------- */

struct replay_job {
	struct track *t;
	off_t off;
	ssize_t used;                   /* bytes consumed; 0: the end; -1 error */
	int finished, err;
	struct hit *h;
	size_t n, bad;
};

static void
replay_work(void *arg)
{
	struct replay_job *j = arg;
	struct buf b;
	int rc = spool_replay_begin(j->t->spool);

	if (rc <= 0) {
		j->used = rc;
		j->err = errno;
		return;
	}
	buf_init(&b, 0);
	j->used = spool_replay_read(j->t->spool, j->off, &b, REPLAY_CHUNK);
	j->err = errno;
	if (j->used == 0) {
		j->finished = spool_replay_done(j->t->spool) == 0;
	} else if (j->used > 0) {
		size_t lines = 0;

		for (size_t i = 0; i < b.len; i++)
			lines += b.data[i] == '\n';
		if ((j->h = calloc(lines ? lines : 1, sizeof(*j->h))) == NULL) {
			j->used = -1;
			j->err = ENOMEM;
		}
		for (size_t i = 0, s = 0; j->h && i < b.len; i++) {
			if (b.data[i] != '\n')
				continue;
			if (hit_parse(b.data + s, i - s, &j->h[j->n]) == 0)
				j->n++;
			else
				j->bad++;
			s = i + 1;
		}
	}
	buf_free(&b);
}

static void
replay_done(void *arg)
{
	struct replay_job *j = arg;
	struct track *t = j->t;

	if (j->bad)
		log_warn("tracking: %zu malformed lines in the spool skipped",
		    j->bad);
	if (j->used < 0) {
		log_error("tracking: reading the spool: %s", strerror(j->err));
		t->replaying = 0;
	} else if (j->used == 0) {
		if (j->finished && t->replay_off)
			log_info("tracking: spool replayed");
		t->replay_off = 0;
		t->replaying = 0;
	} else if (t->closing || j->n == 0) {
		if (j->n == 0)
			t->replay_off += j->used;
		t->replaying = 0;
		free(j->h);
		j->h = NULL;
		if (!t->closing && j->n == 0)
			replay_next(t);
	} else {
		write_batch(t, j->h, j->n, j->used);
		j->h = NULL;
	}
	free(j->h);
	free(j);
}

static void
replay_next(struct track *t)
{
	struct replay_job *j = calloc(1, sizeof(*j));

	if (!j) {
		t->replaying = 0;
		return;
	}
	j->t = t;
	j->off = t->replay_off;
	t->replaying = 1;
	if (workq_post(t->d->workq, replay_work, replay_done, j) < 0) {
		free(j);
		t->replaying = 0;
	}
}

/* ---- the link table ------------------------------------------------------------ */

static void load_links(struct track *t);

static void
on_links(void *arg, const PGresult *res, const char *err)
{
	struct track *t = arg;
	int n;

	t->links_loading = 0;
	if (err) {
		log_debug("tracking: loading links: %s", err);
		return;
	}
	n = PQntuples(res);
	for (int i = 0; i < n; i++)
		if (linktab_add(t->links, strtoull(PQgetvalue(res, i, 0), NULL,
		    10), PQgetvalue(res, i, 1), PQgetvalue(res, i, 2)) < 0 &&
		    linktab_count(t->links) >= (size_t)t->d->boot->track.links) {
			log_warn("tracking: the link table is full (track.links = "
			    "%ld): further links are looked up one by one",
			    t->d->boot->track.links);
			return;
		}
	if (n == LINKS_PAGE)
		load_links(t);
}

static void
load_links(struct track *t)
{
	char after[32], lim[16];
	const char *p[2] = { after, lim };

	if (t->links_loading || db_state(t->db) != DB_READY)
		return;
	snprintf(after, sizeof(after), "%llu",
	    (unsigned long long)linktab_max_id(t->links));
	snprintf(lim, sizeof(lim), "%d", LINKS_PAGE);
	if (db_query(t->db, "SELECT id, url, tag FROM campaign_links WHERE "
	    "id > $1 ORDER BY id LIMIT $2", 2, p, on_links, t) == 0)
		t->links_loading = 1;
}

/* ---- scoring ------------------------------------------------------------------------ */

struct scored {
	struct track *t;
	long long event;
};

static void
on_scored(void *arg, int status, json_t *doc)
{
	struct scored *s = arg;

	if (status >= 500)
		log_warn("tracking: scoring event %lld: %s", s->event,
		    json_string_value(json_object_get(json_object_get(doc,
		    "error"), "message")));
	json_decref(doc);
	s->t->scoring--;
	free(s);
}

static void
on_score_rows(void *arg, const PGresult *res, const char *err)
{
	struct track *t = arg;
	int n;

	t->scoring--;
	if (err) {
		log_debug("tracking: events to score: %s", err);
		return;
	}
	n = PQntuples(res);
	for (int i = 0; i < n; i++) {
		struct scored *s = calloc(1, sizeof(*s));
		json_t *ev = json_pack("{s:s, s:s}", "type", PQgetvalue(res, i, 2),
		    "channel", strcmp(PQgetvalue(res, i, 2), "open") == 0 ||
		    strcmp(PQgetvalue(res, i, 2), "click") == 0 ? "email" : "web");
		json_t *data = NULL;
		json_error_t je;

		if (!s || !ev) {
			free(s);
			json_decref(ev);
			continue;
		}
		if (!PQgetisnull(res, i, 3) && (data = json_loads(PQgetvalue(res,
		    i, 3), 0, &je)) && json_is_object(data))
			json_object_update_missing(ev, data);
		json_decref(data);
		if (!PQgetisnull(res, i, 4))
			json_object_set_new(ev, "tag", json_string(PQgetvalue(res,
			    i, 4)));
		if (!PQgetisnull(res, i, 5))
			json_object_set_new(ev, "url", json_string(PQgetvalue(res,
			    i, 5)));
		if (!PQgetisnull(res, i, 6))
			json_object_set_new(ev, "campaign", json_string(
			    PQgetvalue(res, i, 6)));
		s->t = t;
		s->event = strtoll(PQgetvalue(res, i, 0), NULL, 10);
		t->scoring++;
		leads_score(t->d, strtoll(PQgetvalue(res, i, 1), NULL, 10), ev,
		    on_scored, s);
	}
}

static void
score_pass(struct track *t)
{
	char settle[32], lim[16];
	const char *p[2] = { settle, lim };

	if (t->scoring || db_state(t->db) != DB_READY)
		return;
	snprintf(settle, sizeof(settle), "%ld", t->d->conf->track.settle_ms);
	snprintf(lim, sizeof(lim), "%d", SCORE_PAGE);
	if (db_query(t->db, "UPDATE events e SET score_due = false FROM "
	    "(SELECT id FROM events WHERE score_due AND created_at < now() - "
	    "$1::bigint * interval '1 millisecond' ORDER BY id LIMIT $2 "
	    "FOR UPDATE SKIP LOCKED) s WHERE e.id = s.id RETURNING e.id, "
	    "e.lead_id, e.type, e.data::text, "
	    "(SELECT nullif(l.tag, '') FROM campaign_links l WHERE "
	    "l.id = e.link_id), "
	    "(SELECT l.url FROM campaign_links l WHERE l.id = e.link_id), "
	    "(SELECT c.name FROM campaigns c WHERE c.id = e.campaign_id)",
	    2, p, on_score_rows, t) == 0)
		t->scoring++;
}

static void
tick(evutil_socket_t fd, short what, void *arg)
{
	struct track *t = arg;

	(void)fd;
	(void)what;
	if (t->closing || db_state(t->db) != DB_READY)
		return;
	load_links(t);
	if (!t->replaying)
		replay_next(t);
	score_pass(t);
}

/* ---- threads ------------------------------------------------------------------------ */

static void *
thread_main(void *arg)
{
	struct track_thread *th = arg;

	nodelay_libevent_reads();
	event_base_dispatch(th->ctx.base);
	return NULL;
}

static void
thread_stop_check(evutil_socket_t fd, short what, void *arg)
{
	struct track_thread *th = arg;

	(void)fd;
	(void)what;
	if (httpd_in_flight(th->ctx.httpd) == 0)
		event_base_loopbreak(th->ctx.base);
}

/* On the thread: stop listening, finish what is in flight, exit. */
static void
thread_stop(evutil_socket_t fd, short what, void *arg)
{
	struct track_thread *th = arg;
	struct timeval tick = { 0, 20000 };

	(void)fd;
	(void)what;
	httpd_stop_listening(th->ctx.httpd);
	th->ev_stop = event_new(th->ctx.base, -1, EV_PERSIST, thread_stop_check,
	    th);
	event_add(th->ev_stop, &tick);
}

struct conf_swap {
	struct track_thread *th;
	struct conf *conf;
};

static void
thread_conf(evutil_socket_t fd, short what, void *arg)
{
	struct conf_swap *s = arg;
	struct conf *old = s->th->ctx.conf;

	(void)fd;
	(void)what;
	s->th->ctx.conf = s->conf;
	conf_unref(old);
	free(s);
}

int
track_random_key(unsigned char key[16])
{
	char hex[33];

	if (token_random_hex(hex, sizeof(hex), 16) < 0)
		return -1;
	for (int i = 0; i < 16; i++) {
		unsigned v = 0;

		sscanf(hex + 2 * i, "%2x", &v);
		key[i] = (unsigned char)v;
	}
	return 0;
}

static void
ctx_init(struct track *t, struct track_ctx *c, struct event_base *base,
    struct httpd *h)
{
	c->t = t;
	c->d = t->d;
	c->base = base;
	c->httpd = h;
}

struct track *
track_new(struct lc_daemon *d, char *err, size_t n)
{
	const struct conf *c = d->boot;
	struct track *t = calloc(1, sizeof(*t));
	char path[4096];
	unsigned char key[16];

	if (!t) {
		snprintf(err, n, "out of memory");
		return NULL;
	}
	t->d = d;
	pthread_mutex_init(&t->lim_lock, NULL);
	ctx_init(t, &t->loop_ctx, d->base, d->httpd);
	snprintf(path, sizeof(path), "%s/track.spool", c->state_dir);
	t->scratch_n = BATCH_MAX;
	t->qcap = (size_t)c->track.queue;
	if (!(t->q = hitq_new((size_t)c->track.queue)) ||
	    !(t->links = linktab_new((size_t)c->track.links)) ||
	    !(t->spool = spool_new(path)) ||
	    !(t->scratch = calloc(t->scratch_n, sizeof(*t->scratch))) ||
	    track_random_key(key) < 0 ||
	    !(t->lim = form_limiter_new(LIMITER_SLOTS, key))) {
		snprintf(err, n, "out of memory for tracking");
		track_free(t);
		return NULL;
	}
	for (int ty = 0; ty <= HIT_FORWARD; ty++)
		for (int cl = 0; cl <= HIT_SCANNER; cl++) {
			char labels[128];

			metrics_labels(labels, sizeof(labels), "type",
			    hit_type_name(ty), "class", hit_class_name(cl),
			    (const char *)NULL);
			t->m_hits[ty][cl] = metrics_counter(
			    "leadcast_track_hits_total", "Tracking hits answered, "
			    "by type and class.", labels);
		}
	t->m_limited = metrics_counter("leadcast_track_limited_total",
	    "Tracking hits not recorded: over track.rate for their address.",
	    NULL);
	t->m_written = metrics_counter("leadcast_track_stored_total",
	    "Tracking hits stored in the database.", NULL);
	t->m_dupes = metrics_counter("leadcast_track_duplicates_total",
	    "Tracking hits written again (a replay) and counted once.", NULL);
	t->m_spooled = metrics_counter("leadcast_track_spooled_total",
	    "Tracking hits written to the spool file.", NULL);
	t->m_replayed = metrics_counter("leadcast_track_replayed_total",
	    "Tracking hits replayed from the spool file.", NULL);
	if (c->track.listen.n == 0)
		return t;
	if (!(t->th = calloc((size_t)c->track.threads, sizeof(*t->th)))) {
		snprintf(err, n, "out of memory for tracking threads");
		track_free(t);
		return NULL;
	}
	for (long i = 0; i < c->track.threads; i++) {
		struct track_thread *th = &t->th[i];
		struct event_config *ec = event_config_new();
		struct event_base *base;
		struct httpd *h;

		/* epoll changes coalesced per loop turn: a reply's write
		 * interest comes and goes without a syscall each time */
		if (ec)
			event_config_set_flag(ec,
			    EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
		base = ec ? event_base_new_with_config(ec) : event_base_new();
		if (ec)
			event_config_free(ec);
		h = base ? httpd_new(base) : NULL;

		th->t = t;
		t->nth++;
		ctx_init(t, &th->ctx, base, h);
		if (!h) {
			if (base)
				event_base_free(base);
			th->ctx.base = NULL;
			snprintf(err, n, "cannot create the tracking threads");
			track_free(t);
			return NULL;
		}
		httpd_set_reuseport(h, 1);
		if (httpd_bind(h, &c->track.listen, err, n) < 0) {
			track_free(t);
			return NULL;
		}
	}
	return t;
}

int
track_start(struct track *t, char *err, size_t n)
{
	struct lc_daemon *d = t->d;
	struct timeval fl = { d->boot->track.flush_ms / 1000,
	    (d->boot->track.flush_ms % 1000) * 1000 };
	struct timeval one = { 1, 0 };

	if (!(t->db = db_new(d->base, d->conninfo))) {
		snprintf(err, n, "cannot open the tracking database session");
		return -1;
	}
	db_start(t->db);
	t->ev_flush = event_new(d->base, -1, EV_PERSIST, flush, t);
	t->ev_tick = event_new(d->base, -1, EV_PERSIST, tick, t);
	if (!t->ev_flush || !t->ev_tick) {
		snprintf(err, n, "out of memory for tracking");
		return -1;
	}
	event_add(t->ev_flush, &fl);
	event_add(t->ev_tick, &one);
	for (size_t i = 0; i < t->nth; i++) {
		struct track_thread *th = &t->th[i];

		track_routes_add(th->ctx.httpd, &th->ctx);
		httpd_set_limits(th->ctx.httpd, 16 * 1024,
		    d->conf->http.max_header_size, d->conf->http.timeout_ms);
		th->ctx.conf = conf_ref(d->conf);
		if (httpd_start(th->ctx.httpd) < 0 ||
		    pthread_create(&th->tid, NULL, thread_main, th) != 0) {
			snprintf(err, n, "cannot start the tracking threads");
			return -1;
		}
		th->running = 1;
	}
	if (t->nth)
		log_info("tracking: %zu threads on %s%s", t->nth,
		    d->boot->track.listen.v[0], d->boot->track.listen.n > 1 ?
		    " (and more)" : "");
	return 0;
}

struct track_ctx *
track_loop_ctx(struct track *t)
{
	return &t->loop_ctx;
}

void
track_conf_changed(struct track *t)
{
	for (size_t i = 0; t && i < t->nth; i++) {
		struct conf_swap *s;

		if (!t->th[i].running || !(s = calloc(1, sizeof(*s))))
			continue;
		s->th = &t->th[i];
		s->conf = conf_ref(t->d->conf);
		if (event_base_once(t->th[i].ctx.base, -1, EV_TIMEOUT,
		    thread_conf, s, NULL) < 0) {
			conf_unref(s->conf);
			free(s);
		}
	}
}

void
track_stop(struct track *t)
{
	for (size_t i = 0; t && i < t->nth; i++)
		if (t->th[i].running)
			event_base_once(t->th[i].ctx.base, -1, EV_TIMEOUT,
			    thread_stop, &t->th[i], NULL);
}

int
track_idle(struct track *t)
{
	if (!t)
		return 1;
	for (size_t i = 0; i < t->nth; i++)
		if (t->th[i].running && httpd_in_flight(t->th[i].ctx.httpd))
			return 0;
	/* the database may be away: then the queue drains into the spool */
	return hitq_len(t->q) == 0 && t->inflight == 0 && t->spool_jobs == 0 &&
	    (!t->replaying || db_state(t->db) != DB_READY);
}

size_t
track_pending(struct track *t)
{
	return t ? hitq_len(t->q) : 0;
}

void
track_free(struct track *t)
{
	size_t n;

	if (!t)
		return;
	t->closing = 1;
	for (size_t i = 0; i < t->nth; i++) {
		struct track_thread *th = &t->th[i];

		if (th->running) {
			/* the loop no longer runs: links asked of it never
			 * come, so do not wait for requests in flight */
			event_base_loopbreak(th->ctx.base);
			pthread_join(th->tid, NULL);
		}
		if (th->ev_stop)
			event_free(th->ev_stop);
		if (th->ctx.httpd)
			httpd_free(th->ctx.httpd);
		if (th->ctx.base)
			event_base_free(th->ctx.base);
		if (th->ctx.conf)
			conf_unref(th->ctx.conf);
	}
	free(t->th);
	/* what is still queued, and batches the closing session fails */
	while (t->q && t->scratch &&
	    (n = hitq_pop(t->q, t->scratch, t->scratch_n)) > 0)
		spool_hits(t, t->scratch, n);
	db_free(t->db);
	if (t->ev_flush)
		event_free(t->ev_flush);
	if (t->ev_tick)
		event_free(t->ev_tick);
	form_limiter_free(t->lim);
	pthread_mutex_destroy(&t->lim_lock);
	hitq_free(t->q);
	linktab_free(t->links);
	spool_free(t->spool);
	free(t->scratch);
	while (t->npool)
		free(t->pool[--t->npool]);
	free(t);
}
