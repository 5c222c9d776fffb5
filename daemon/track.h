/*
 * track.h - tracking at scale (track.c) and its public endpoints
 * (track_routes.c): what leadcastd.c and the handlers share.
 *
 * A track_ctx is what a handler of /o/, /c/ and /v.gif needs on the
 * thread it runs on: the thread's event loop and configuration
 * reference. The main loop has one too (its conf is then
 * NULL: the daemon's current one).
 */
#ifndef LEADCAST_TRACK_H
#define LEADCAST_TRACK_H

#include <stddef.h>
#include <stdint.h>

#include "hit.h"

struct lc_daemon;
struct track;
struct event_base;
struct httpd;
struct conf;

struct track_ctx {
	struct track *t;
	struct lc_daemon *d;            /* only d->url_key and d->base on threads */
	struct event_base *base;        /* the loop this context runs on */
	struct httpd *httpd;
	struct conf *conf;              /* a thread's reference; NULL: d->conf */
};

/*
 * Create the tracker: the queue, the link table, the spool, and with
 * track.listen its threads' servers, bound now (before privileges are
 * dropped). NULL with a message in err.
 */
struct track *track_new(struct lc_daemon *d, char *err, size_t n);
/* Start writing hits and the threads. 0, or -1 with a message. */
int track_start(struct track *t, char *err, size_t n);
/* The configuration was reloaded: threads take the new one. */
void track_conf_changed(struct track *t);
/* Stop the threads' listeners (draining). */
void track_stop(struct track *t);
/* Nothing queued, written or spooled any more. */
int track_idle(struct track *t);
size_t track_pending(struct track *t);
/* Spool what is left, stop the threads and free. */
void track_free(struct track *t);
/* The main loop's context, for its own /o/ /c/ routes. */
struct track_ctx *track_loop_ctx(struct track *t);

/* ---- for the handlers (any thread) ---- */

const struct conf *track_ctx_conf(const struct track_ctx *c);
/* 1 if the client may record another hit now (track.rate), else 0. */
int track_ctx_allow(struct track_ctx *c, const char *ip);
/* Stamp h (id, time) and hand it to the loop (or the spool). */
void track_ctx_record(struct track_ctx *c, struct hit *h);
/* A link's URL and tag from memory: 1, or 0 if not there. */
int track_ctx_link(struct track_ctx *c, uint64_t link, char *url, size_t n,
    char *tag, size_t tn);
/* found: 1 (now in memory), 0 (no such link), -1 (database unavailable). */
typedef void track_miss_fn(void *arg, int found);
/* Ask the loop to load link; cb runs later on c's thread. 0 or -1. */
int track_ctx_link_miss(struct track_ctx *c, uint64_t link, track_miss_fn *cb,
    void *arg);

/* 16 random bytes, the secret key of a rate limiter's hash. 0 or -1. */
int track_random_key(unsigned char key[16]);

/* forward_routes.c: GET and POST /fw/{token}, forward to a friend. */
void forward_routes_register(struct lc_daemon *d);

/* track_report.c: GET /api/v1/reports/campaigns. */
void track_report_register(struct lc_daemon *d);

/* track_routes.c: add /o/, /c/ served with ctx to h. */
void track_routes_add(struct httpd *h, struct track_ctx *ctx);

#endif
