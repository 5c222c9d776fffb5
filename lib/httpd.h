/*
 * httpd - leadcast's HTTP server on evhttp: listening sockets, a route
 * table, limits, bearer-token authentication and per-route metrics.
 *
 * Sockets are bound by httpd_bind() before privileges are dropped and
 * served from httpd_start() on. A route is a method set plus a path: an
 * exact path ("/healthz") or a prefix ending in '/' ("/api/v1/leads/"),
 * whose remainder is passed to the handler. Routes marked HTTPD_AUTH need
 * "Authorization: Bearer <admin token>", compared in constant time.
 * Every reply goes through httpd_reply() (or its JSON helpers), which
 * counts it by route and status for /metrics and frees the request
 * context. It knows nothing of leads or campaigns: daemon/ registers the
 * handlers.
 */
#ifndef LEADCAST_HTTPD_H
#define LEADCAST_HTTPD_H

#include <jansson.h>
#include <stddef.h>

struct event_base;
struct evhttp_request;
struct evkeyvalq;
struct conf_strlist;
struct httpd;

/* One request being handled. Owned by httpd; valid until replied to. */
struct httpd_req {
	struct evhttp_request *req;
	struct httpd *httpd;
	const struct httpd_route *route;
	const char *path;               /* decoded path, no query */
	const char *tail;               /* after a prefix route's prefix */
	struct evkeyvalq *query;        /* parsed query string */
	const char *client_ip;
};

typedef void httpd_handler(struct httpd_req *r, void *arg);

#define HTTPD_GET   0x01
#define HTTPD_POST  0x02
#define HTTPD_HEAD  0x04
#define HTTPD_PUT   0x08
#define HTTPD_DELETE 0x10
#define HTTPD_AUTH  0x100               /* flag: admin token required */

struct httpd_route {
	unsigned flags;                 /* methods | HTTPD_AUTH */
	const char *path;
	const char *name;               /* metrics label */
	httpd_handler *fn;
	void *arg;
};

struct httpd *httpd_new(struct event_base *base);
/* Bind and listen on every address (not yet serving). 0, or -1 with a
 * message saying what to do in err. */
int httpd_bind(struct httpd *h, const struct conf_strlist *addrs, char *err,
    size_t n);
/* Bind with SO_REUSEPORT (before httpd_bind), so that several servers,
 * each on its own thread and event loop, share one address. */
void httpd_set_reuseport(struct httpd *h, int on);
/* The port of the i-th bound socket (resolves port 0), -1 if none. */
int httpd_port(const struct httpd *h, size_t i);
int httpd_start(struct httpd *h);
/* Stop accepting connections (sockets closed); requests in flight finish. */
void httpd_stop_listening(struct httpd *h);
void httpd_free(struct httpd *h);

void httpd_set_limits(struct httpd *h, size_t max_body, size_t max_headers,
    long timeout_ms);
/* The admin token (copied); empty disables authenticated routes. */
void httpd_set_token(struct httpd *h, const char *token);
/* Add a route (the struct is copied). Later routes do not override. */
int httpd_add_route(struct httpd *h, const struct httpd_route *route);
/* Add n routes, each with arg as its handler argument. */
int httpd_add_routes(struct httpd *h, const struct httpd_route *routes,
    size_t n, void *arg);
/* Requests received but not yet answered. */
size_t httpd_in_flight(const struct httpd *h);

/* Reply and release r. body may be NULL. */
void httpd_reply(struct httpd_req *r, int code, const char *content_type,
    const void *body, size_t len);
/* Reply with a JSON document; steals the reference to doc. */
void httpd_reply_json(struct httpd_req *r, int code, json_t *doc);
/* {"error":{"field":field,"message":message}}; field may be NULL. */
void httpd_reply_error(struct httpd_req *r, int code, const char *field,
    const char *message);
/* Read the request body as JSON: a parsed object, or NULL after replying
 * 400 (so the handler just returns). Caller owns the object. */
json_t *httpd_body_json(struct httpd_req *r);

#endif
