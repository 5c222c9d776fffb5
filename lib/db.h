/*
 * db - PostgreSQL through asynchronous libpq on the event loop.
 *
 * Two connections: one for queries, in pipeline mode (each query followed
 * by its own Sync, so queries are sent back to back without waiting, yet a
 * failing query does not abort its neighbours), and one that LISTENs.
 * Both connect without blocking and reconnect with backoff (100 ms doubling
 * to 5 s) when the server goes away. Queries posted while disconnected wait
 * in a bounded queue and go out on reconnect; queries in flight when the
 * connection breaks fail with an error (whether they committed is unknown,
 * so callers that must not lose work make their writes idempotent).
 * Every query is parameterized: there is no API that takes SQL built from
 * data. Everything here runs on the loop thread.
 * It does not run migrations (migrate.c) nor start servers (pgembed.c).
 */
#ifndef LEADCAST_DB_H
#define LEADCAST_DB_H

#include <libpq-fe.h>
#include <stddef.h>

struct event_base;
struct db;

enum db_state { DB_DOWN, DB_CONNECTING, DB_READY };

/*
 * A query's outcome: err is NULL on success, else a one-line message;
 * res is the server's result (also for a server error), or NULL if the
 * connection broke. res is freed by db after the callback returns.
 */
typedef void db_result_fn(void *arg, const PGresult *res, const char *err);
typedef void db_notify_fn(void *arg, const char *channel, const char *payload);
typedef void db_state_fn(void *arg, enum db_state st);

/* NULL on ENOMEM. conninfo is copied. Call db_start() to connect. */
struct db *db_new(struct event_base *base, const char *conninfo);
void db_set_state_cb(struct db *db, db_state_fn *fn, void *arg);
/* Server options for every connection, as PGOPTIONS takes them
 * ("-c synchronous_commit=off"); before db_start(). 0 or -1 (ENOMEM). */
int db_set_options(struct db *db, const char *options);
void db_start(struct db *db);
/* Free, failing queued and in-flight queries with "shutting down". */
void db_free(struct db *db);

/*
 * Post a query: sql with $1..$n, params copied (NULL = SQL NULL). cb may be
 * NULL. Returns 0, or -1 if the queue is full (db_max_queue) or ENOMEM.
 */
int db_query(struct db *db, const char *sql, int nparams,
    const char *const *params, db_result_fn *cb, void *arg);
/*
 * The same for a statement run often: it is prepared once per session
 * (PostgreSQL then plans it once, generically, instead of at every run
 * with the parameters' values) and executed by name. sql is the caller's,
 * never freed nor copied for its identity: a string that lives as long as
 * db (a static array). Up to 16 such statements a db; others go unnamed.
 */
int db_query_prepared(struct db *db, const char *sql, int nparams,
    const char *const *params, db_result_fn *cb, void *arg);
/* Subscribe to a NOTIFY channel (a plain identifier); kept across reconnects. */
int db_listen(struct db *db, const char *channel, db_notify_fn *cb, void *arg);

enum db_state db_state(const struct db *db);
const char *db_state_name(enum db_state st);
/* Queries queued or in flight. */
size_t db_pending(const struct db *db);
/* The server's version number (e.g. 150004), 0 if never connected. */
int db_server_version(const struct db *db);
/* Last connection error, "" if none. */
const char *db_last_error(const struct db *db);

#define DB_MAX_QUEUE 100000

/*
 * Array parameters: build a PostgreSQL array literal ("{a,b,NULL}") to
 * pass as one parameter and unnest on the server, so a batch of rows is
 * one statement. Values are quoted and escaped; NULL adds SQL NULL.
 */
struct buf;
void db_array_add(struct buf *b, const char *v);
/* The literal so far, closed with "}" ("{}" when empty); b keeps it. */
const char *db_array_end(struct buf *b);

#endif
