/*
 * db - asynchronous libpq on the event loop: a pipelined query connection
 * and a LISTEN connection, both reconnecting with backoff. See db.h.
 */
#include "db.h"
#include "buf.h"
#include "log.h"
#include "metrics.h"

#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#define BACKOFF_MIN_MS   100
#define BACKOFF_MAX_MS   5000
#define CONNECT_TIMEOUT  10     /* seconds */
#define MAX_INFLIGHT     512
#define MAX_PREPARED     16     /* db_query_prepared's statements a db */

struct query {
	char *sql;
	char **params;
	int nparams;
	int stmt;               /* index in db->stmts, -1: unnamed statement */
	int preparing;          /* the Prepare's results come first */
	db_result_fn *cb;
	void *arg;
	int synced;             /* results delivered, waiting for the Sync */
	PGresult *res;          /* last result received */
	struct query *next;
};

struct qlist {
	struct query *head, **tail;
	size_t len;
};

struct listener {
	char *channel;
	db_notify_fn *cb;
	void *arg;
	struct listener *next;
};

/* One connection and its state machine. */
struct conn {
	struct db *db;
	const char *what;               /* "query" or "listen", for logs */
	PGconn *pg;
	enum db_state state;
	struct event *ev_read, *ev_write, *ev_timer;
	int fd;
	long backoff_ms;
	int ever_ready;
	struct qlist inflight;
	unsigned char prepared[MAX_PREPARED];   /* db->stmts[i] prepared here */
};

struct db {
	struct event_base *base;
	char *conninfo;
	char *options;                  /* server options (-c name=value) */
	struct conn q, l;
	struct qlist queue;             /* waiting to be sent on q */
	struct listener *listeners;
	const char *stmts[MAX_PREPARED];        /* db_query_prepared SQL */
	int nstmts;
	db_state_fn *state_cb;
	void *state_arg;
	int server_version;
	char last_error[256];
	struct metric *m_queries, *m_errors, *m_reconnects, *m_notifies;
};

static void conn_connect(struct conn *c);
static void conn_on_io(evutil_socket_t fd, short what, void *arg);
static void conn_pump(struct conn *c);

static void
qlist_push(struct qlist *l, struct query *q)
{
	q->next = NULL;
	*l->tail = q;
	l->tail = &q->next;
	l->len++;
}

static struct query *
qlist_pop(struct qlist *l)
{
	struct query *q = l->head;

	if (q) {
		l->head = q->next;
		if (!l->head)
			l->tail = &l->head;
		l->len--;
	}
	return q;
}

static void
query_free(struct query *q)
{
	for (int i = 0; i < q->nparams; i++)
		free(q->params[i]);
	free(q->params);
	free(q->sql);
	if (q->res)
		PQclear(q->res);
	free(q);
}

/* Deliver a query's outcome to its caller. */
static void
query_done(struct db *db, struct query *q, const char *err)
{
	char line[512];

	if (!err && q->res) {
		ExecStatusType st = PQresultStatus(q->res);

		if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
			const char *m = PQresultErrorMessage(q->res);

			snprintf(line, sizeof(line), "%s", *m ? m : PQresStatus(st));
			line[strcspn(line, "\n")] = '\0';
			err = line;
		}
	}
	if (err) {
		metric_add(db->m_errors, 1);
		log_debug("db: query failed: %s", err);
	}
	if (q->cb)
		q->cb(q->arg, q->res, err);
}

static void
set_state(struct conn *c, enum db_state st)
{
	struct db *db = c->db;

	if (c->state == st)
		return;
	c->state = st;
	if (c == &db->q && db->state_cb)
		db->state_cb(db->state_arg, st);
}

static void
conn_close(struct conn *c, const char *why)
{
	struct query *q;

	if (c->ev_read)
		event_free(c->ev_read);
	if (c->ev_write)
		event_free(c->ev_write);
	c->ev_read = c->ev_write = NULL;
	if (c->pg)
		PQfinish(c->pg);
	c->pg = NULL;
	c->fd = -1;
	memset(c->prepared, 0, sizeof(c->prepared));
	while ((q = qlist_pop(&c->inflight)) != NULL) {
		if (!q->synced)
			query_done(c->db, q, why);
		query_free(q);
	}
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	(void)fd;
	(void)what;
	if (c->state == DB_CONNECTING) {
		snprintf(c->db->last_error, sizeof(c->db->last_error),
		    "connection timed out");
		log_warn("db: %s connection timed out", c->what);
		conn_close(c, "connection timed out");
		set_state(c, DB_DOWN);
	}
	conn_connect(c);
}

/* Lost or failed: close, and try again after the backoff. */
static void
conn_retry(struct conn *c, const char *reason)
{
	struct timeval tv;
	char why[256];

	/* reason may point into the PGconn that is about to be freed */
	snprintf(why, sizeof(why), "%s", reason);
	why[strcspn(why, "\n")] = '\0';

	if (c->state == DB_READY)
		log_warn("db: %s connection lost: %s", c->what, why);
	conn_close(c, why);
	set_state(c, DB_DOWN);
	tv.tv_sec = c->backoff_ms / 1000;
	tv.tv_usec = (c->backoff_ms % 1000) * 1000;
	c->backoff_ms = c->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS :
	    c->backoff_ms * 2;
	evtimer_add(c->ev_timer, &tv);
}

static int
conn_watch(struct conn *c, short what)
{
	int fd = PQsocket(c->pg);

	if (fd != c->fd) {
		if (c->ev_read)
			event_free(c->ev_read);
		if (c->ev_write)
			event_free(c->ev_write);
		c->fd = fd;
		c->ev_read = event_new(c->db->base, fd, EV_READ | EV_PERSIST,
		    conn_on_io, c);
		c->ev_write = event_new(c->db->base, fd, EV_WRITE, conn_on_io, c);
		if (!c->ev_read || !c->ev_write)
			return -1;
	}
	if (what & EV_READ)
		event_add(c->ev_read, NULL);
	else
		event_del(c->ev_read);
	if (what & EV_WRITE)
		event_add(c->ev_write, NULL);
	return 0;
}

/* Server notices and warnings go to our log, one line each. */
static void
on_notice(void *arg, const char *msg)
{
	struct conn *c = arg;
	char line[512];

	snprintf(line, sizeof(line), "%s", msg);
	line[strcspn(line, "\n")] = '\0';
	log_info("db: %s connection: %s", c->what, line);
}

static void
conn_connect(struct conn *c)
{
	struct timeval tv = { CONNECT_TIMEOUT, 0 };

	if (c->pg)
		return;
	if (c->db->options) {
		/* conninfo may be a URI or key=value pairs: expand it, and
		 * add the server options as a keyword of their own */
		const char *const kw[] = { "dbname", "options", NULL };
		const char *const val[] = { c->db->conninfo, c->db->options,
			NULL };

		c->pg = PQconnectStartParams(kw, val, 1);
	} else {
		c->pg = PQconnectStart(c->db->conninfo);
	}
	if (!c->pg || PQstatus(c->pg) == CONNECTION_BAD) {
		snprintf(c->db->last_error, sizeof(c->db->last_error), "%s",
		    c->pg ? PQerrorMessage(c->pg) : "out of memory");
		c->db->last_error[strcspn(c->db->last_error, "\n")] = '\0';
		conn_retry(c, c->db->last_error);
		return;
	}
	PQsetnonblocking(c->pg, 1);
	PQsetNoticeProcessor(c->pg, on_notice, c);
	set_state(c, DB_CONNECTING);
	evtimer_add(c->ev_timer, &tv);
	if (conn_watch(c, EV_WRITE) < 0)
		conn_retry(c, "out of memory");
}

static void
conn_ready(struct conn *c)
{
	struct db *db = c->db;

	evtimer_del(c->ev_timer);
	c->backoff_ms = BACKOFF_MIN_MS;
	if (c == &db->q) {
		db->server_version = PQserverVersion(c->pg);
		db->last_error[0] = '\0';
		if (!PQenterPipelineMode(c->pg)) {
			conn_retry(c, "cannot enter pipeline mode");
			return;
		}
	} else {
		/* One simple-protocol query: LISTEN a; LISTEN b; ... */
		char sql[4096] = "";

		for (struct listener *li = db->listeners; li; li = li->next) {
			char *id = PQescapeIdentifier(c->pg, li->channel,
			    strlen(li->channel));

			if (!id)
				continue;
			snprintf(sql + strlen(sql), sizeof(sql) - strlen(sql),
			    "LISTEN %s;", id);
			PQfreemem(id);
		}
		if (*sql && !PQsendQuery(c->pg, sql)) {
			conn_retry(c, PQerrorMessage(c->pg));
			return;
		}
	}
	if (c->ever_ready)
		metric_add(db->m_reconnects, 1);
	c->ever_ready = 1;
	if (c->state != DB_READY)
		log_info("db: %s connection ready", c->what);
	set_state(c, DB_READY);
	conn_watch(c, EV_READ);
	if (c == &db->q)
		conn_pump(c);
}

/* Send one query: by name if it is a prepared statement (preparing it
 * first on this session if need be), else as the unnamed statement. */
static int
conn_send(struct conn *c, struct query *q)
{
	const char *const *params = (const char *const *)q->params;
	char name[16];

	if (q->stmt < 0)
		return PQsendQueryParams(c->pg, q->sql, q->nparams, NULL, params,
		    NULL, NULL, 0);
	snprintf(name, sizeof(name), "lc%d", q->stmt);
	if (!c->prepared[q->stmt]) {
		if (!PQsendPrepare(c->pg, name, q->sql, q->nparams, NULL))
			return 0;
		c->prepared[q->stmt] = 1;
		q->preparing = 1;
	}
	return PQsendQueryPrepared(c->pg, name, q->nparams, params, NULL,
	    NULL, 0);
}

/* Send queued queries (query connection, ready). */
static void
conn_pump(struct conn *c)
{
	struct db *db = c->db;
	struct query *q;

	if (c->state != DB_READY || c != &db->q)
		return;
	while (c->inflight.len < MAX_INFLIGHT && (q = db->queue.head) != NULL) {
		if (!conn_send(c, q) || !PQpipelineSync(c->pg)) {
			char err[256];

			snprintf(err, sizeof(err), "%s", PQerrorMessage(c->pg));
			err[strcspn(err, "\n")] = '\0';
			conn_retry(c, err);
			return;
		}
		qlist_pop(&db->queue);
		qlist_push(&c->inflight, q);
		metric_add(db->m_queries, 1);
	}
	if (PQflush(c->pg) == 1)
		conn_watch(c, EV_READ | EV_WRITE);
}

/* Read what the server sent: results, Syncs and notifications. */
static void
conn_read(struct conn *c)
{
	struct db *db = c->db;
	PGnotify *n;

	if (!PQconsumeInput(c->pg)) {
		char err[256];

		snprintf(err, sizeof(err), "%s", PQerrorMessage(c->pg));
		err[strcspn(err, "\n")] = '\0';
		conn_retry(c, *err ? err : "connection closed");
		return;
	}
	while (c->inflight.head && !PQisBusy(c->pg)) {
		struct query *q = c->inflight.head;
		PGresult *r = PQgetResult(c->pg);

		if (!q->synced) {
			if (!r && q->preparing) {       /* end of the Prepare's */
				q->preparing = 0;
				continue;
			}
			if (!r) {               /* end of this query's results */
				q->synced = 1;
				query_done(db, q, NULL);
				if (q->res) {
					PQclear(q->res);
					q->res = NULL;
				}
				continue;
			}
			if (PQresultStatus(r) == PGRES_PIPELINE_SYNC) {
				/* no results at all (cannot happen, be safe) */
				q->synced = 1;
				query_done(db, q, "no result");
				PQclear(r);
				query_free(qlist_pop(&c->inflight));
				continue;
			}
			if (q->preparing &&
			    PQresultStatus(r) != PGRES_COMMAND_OK)
				c->prepared[q->stmt] = 0;       /* again next time */
			if (q->res && PQresultStatus(q->res) == PGRES_FATAL_ERROR) {
				/* keep the Prepare's error, not "aborted" */
				PQclear(r);
				continue;
			}
			if (q->res)
				PQclear(q->res);
			q->res = r;
			continue;
		}
		if (!r)
			break;
		if (PQresultStatus(r) == PGRES_PIPELINE_SYNC)
			query_free(qlist_pop(&c->inflight));
		PQclear(r);
	}
	if (c == &db->l) {              /* LISTEN answers: nothing to do */
		PGresult *r;

		while (!PQisBusy(c->pg) && (r = PQgetResult(c->pg)) != NULL)
			PQclear(r);
	}
	if (c->pg && PQstatus(c->pg) == CONNECTION_BAD) {
		conn_retry(c, "connection closed");
		return;
	}
	while (c->pg && (n = PQnotifies(c->pg)) != NULL) {
		metric_add(db->m_notifies, 1);
		for (struct listener *li = db->listeners; li; li = li->next)
			if (strcmp(li->channel, n->relname) == 0)
				li->cb(li->arg, n->relname, n->extra);
		PQfreemem(n);
	}
	if (c == &db->q)
		conn_pump(c);
}

static void
conn_on_io(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	(void)fd;
	if (c->state == DB_CONNECTING) {
		switch (PQconnectPoll(c->pg)) {
		case PGRES_POLLING_READING:
			conn_watch(c, EV_READ);
			return;
		case PGRES_POLLING_WRITING:
			conn_watch(c, EV_WRITE);
			return;
		case PGRES_POLLING_OK:
			conn_ready(c);
			return;
		default:
			snprintf(c->db->last_error, sizeof(c->db->last_error),
			    "%s", PQerrorMessage(c->pg));
			c->db->last_error[strcspn(c->db->last_error, "\n")] = 0;
			log_debug("db: %s connect failed: %s", c->what,
			    c->db->last_error);
			evtimer_del(c->ev_timer);
			conn_retry(c, c->db->last_error);
			return;
		}
	}
	if (what & EV_WRITE) {
		int r = PQflush(c->pg);

		if (r < 0) {
			conn_retry(c, "write failed");
			return;
		}
		if (r == 1)
			conn_watch(c, EV_READ | EV_WRITE);
	}
	if (what & EV_READ)
		conn_read(c);
}

static void
conn_init(struct db *db, struct conn *c, const char *what)
{
	c->db = db;
	c->what = what;
	c->fd = -1;
	c->state = DB_DOWN;
	c->backoff_ms = BACKOFF_MIN_MS;
	c->inflight.tail = &c->inflight.head;
	c->ev_timer = evtimer_new(db->base, on_timer, c);
}

struct db *
db_new(struct event_base *base, const char *conninfo)
{
	struct db *db = calloc(1, sizeof(*db));

	if (!db)
		return NULL;
	db->base = base;
	if (!(db->conninfo = strdup(conninfo))) {
		free(db);
		return NULL;
	}
	db->queue.tail = &db->queue.head;
	conn_init(db, &db->q, "query");
	conn_init(db, &db->l, "listen");
	db->m_queries = metrics_counter("leadcast_db_queries_total",
	    "Queries sent to PostgreSQL.", NULL);
	db->m_errors = metrics_counter("leadcast_db_errors_total",
	    "Queries that failed (server error or lost connection).", NULL);
	db->m_reconnects = metrics_counter("leadcast_db_reconnects_total",
	    "Connections re-established after a loss.", NULL);
	db->m_notifies = metrics_counter("leadcast_db_notifications_total",
	    "NOTIFY messages received.", NULL);
	return db;
}

int
db_set_options(struct db *db, const char *options)
{
	char *o = strdup(options);

	if (!o)
		return -1;
	free(db->options);
	db->options = o;
	return 0;
}

void
db_set_state_cb(struct db *db, db_state_fn *fn, void *arg)
{
	db->state_cb = fn;
	db->state_arg = arg;
}

void
db_start(struct db *db)
{
	conn_connect(&db->q);
	if (db->listeners)
		conn_connect(&db->l);
}

void
db_free(struct db *db)
{
	struct query *q;

	if (!db)
		return;
	db->state_cb = NULL;
	conn_close(&db->q, "shutting down");
	conn_close(&db->l, "shutting down");
	if (db->q.ev_timer)
		event_free(db->q.ev_timer);
	if (db->l.ev_timer)
		event_free(db->l.ev_timer);
	while ((q = qlist_pop(&db->queue)) != NULL) {
		query_done(db, q, "shutting down");
		query_free(q);
	}
	while (db->listeners) {
		struct listener *li = db->listeners;

		db->listeners = li->next;
		free(li->channel);
		free(li);
	}
	free(db->conninfo);
	free(db->options);
	free(db);
}

static int
query_post(struct db *db, const char *sql, int stmt, int nparams,
    const char *const *params, db_result_fn *cb, void *arg)
{
	struct query *q;

	if (db->queue.len >= DB_MAX_QUEUE || nparams < 0 ||
	    !(q = calloc(1, sizeof(*q))))
		return -1;
	q->stmt = stmt;
	q->cb = cb;
	q->arg = arg;
	q->nparams = nparams;
	if (!(q->sql = strdup(sql)) ||
	    (nparams && !(q->params = calloc((size_t)nparams, sizeof(char *)))))
		goto fail;
	for (int i = 0; i < nparams; i++)
		if (params[i] && !(q->params[i] = strdup(params[i])))
			goto fail;
	qlist_push(&db->queue, q);
	conn_pump(&db->q);
	return 0;
fail:
	query_free(q);
	return -1;
}

int
db_query(struct db *db, const char *sql, int nparams,
    const char *const *params, db_result_fn *cb, void *arg)
{
	return query_post(db, sql, -1, nparams, params, cb, arg);
}

int
db_query_prepared(struct db *db, const char *sql, int nparams,
    const char *const *params, db_result_fn *cb, void *arg)
{
	int i;

	for (i = 0; i < db->nstmts && db->stmts[i] != sql; i++)
		;
	if (i == db->nstmts) {
		if (i == MAX_PREPARED)
			i = -1;                 /* out of names: unnamed */
		else
			db->stmts[db->nstmts++] = sql;
	}
	return query_post(db, sql, i, nparams, params, cb, arg);
}

int
db_listen(struct db *db, const char *channel, db_notify_fn *cb, void *arg)
{
	struct listener *li = calloc(1, sizeof(*li));

	if (!li || !(li->channel = strdup(channel))) {
		free(li);
		return -1;
	}
	li->cb = cb;
	li->arg = arg;
	li->next = db->listeners;
	db->listeners = li;
	/* Re-subscribe everything on a fresh connection. */
	if (db->l.pg) {
		conn_close(&db->l, "resubscribing");
		set_state(&db->l, DB_DOWN);
	}
	conn_connect(&db->l);
	return 0;
}

enum db_state
db_state(const struct db *db)
{
	return db->q.state;
}

const char *
db_state_name(enum db_state st)
{
	switch (st) {
	case DB_READY: return "connected";
	case DB_CONNECTING: return "connecting";
	default: return "down";
	}
}

size_t
db_pending(const struct db *db)
{
	return db->queue.len + db->q.inflight.len;
}

int
db_server_version(const struct db *db)
{
	return db->server_version;
}

const char *
db_last_error(const struct db *db)
{
	return db->last_error;
}

void
db_array_add(struct buf *b, const char *v)
{
	buf_putc(b, b->len ? ',' : '{');
	if (!v) {
		buf_puts(b, "NULL");
		return;
	}
	buf_putc(b, '"');
	for (; *v; v++) {
		if (*v == '"' || *v == '\\')
			buf_putc(b, '\\');
		buf_putc(b, *v);
	}
	buf_putc(b, '"');
}

const char *
db_array_end(struct buf *b)
{
	if (!b->len)
		buf_putc(b, '{');
	buf_putc(b, '}');
	return buf_str(b);
}
