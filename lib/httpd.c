/*
 * httpd - evhttp server with a route table, limits, token auth and
 * per-route metrics. See httpd.h.
 */
#include "httpd.h"
#include "conf.h"
#include "log.h"
#include "metrics.h"
#include "token.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define HTTPD_MAX_LISTEN 16
#define HTTPD_MAX_ROUTES 128
#define HTTPD_MAX_URI    8192

struct httpd {
	struct event_base *base;
	struct evhttp *http;
	int fds[HTTPD_MAX_LISTEN];
	int ports[HTTPD_MAX_LISTEN];
	struct evhttp_bound_socket *bound[HTTPD_MAX_LISTEN];
	size_t nfds;
	struct httpd_route routes[HTTPD_MAX_ROUTES];
	size_t nroutes;
	char token[512];
	size_t in_flight;
	int reuseport;
	/* series already looked up, by route name and status: the registry
	 * is shared by every thread, this cache is this server's own */
	struct { const char *route; int code; struct metric *m; } seen[32];
	size_t nseen;
};

/* The request context: the public part first, then what we own. */
struct reqctx {
	struct httpd_req pub;
	char *path;
	struct evkeyvalq query;
	char ip[64];
};

struct httpd *
httpd_new(struct event_base *base)
{
	struct httpd *h = calloc(1, sizeof(*h));

	if (!h)
		return NULL;
	h->base = base;
	if (!(h->http = evhttp_new(base))) {
		free(h);
		return NULL;
	}
	evhttp_set_allowed_methods(h->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST |
	    EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
	    EVHTTP_REQ_OPTIONS);
	evhttp_set_default_content_type(h->http, "text/plain; charset=utf-8");
	return h;
}

int
httpd_bind(struct httpd *h, const struct conf_strlist *addrs, char *err,
    size_t n)
{
	for (size_t i = 0; i < addrs->n; i++) {
		struct addrinfo hints, *ai = NULL;
		char host[256], port[16];
		int p, fd, one = 1, gai;
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);

		if (h->nfds >= HTTPD_MAX_LISTEN) {
			snprintf(err, n, "too many listen addresses (max %d)",
			    HTTPD_MAX_LISTEN);
			return -1;
		}
		if (conf_parse_hostport(addrs->v[i], host, sizeof(host), &p) < 0) {
			snprintf(err, n, "http.listen: '%s' is not host:port",
			    addrs->v[i]);
			return -1;
		}
		snprintf(port, sizeof(port), "%d", p);
		memset(&hints, 0, sizeof(hints));
		hints.ai_socktype = SOCK_STREAM;
		hints.ai_flags = AI_PASSIVE;
		if ((gai = getaddrinfo(host, port, &hints, &ai)) != 0) {
			snprintf(err, n, "cannot listen on %s: %s", addrs->v[i],
			    gai_strerror(gai));
			return -1;
		}
		fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK |
		    SOCK_CLOEXEC, 0);
		if (fd < 0 ||
		    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
		    (h->reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT,
		    &one, sizeof(one))) ||
		    (ai->ai_family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6,
		    IPV6_V6ONLY, &one, sizeof(one))) ||
		    bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 ||
		    listen(fd, 1024) < 0) {
			int e = errno;

			snprintf(err, n, "cannot listen on %s: %s%s", addrs->v[i],
			    strerror(e), e == EADDRINUSE ? " (is another "
			    "leadcastd running? change http.listen)" :
			    e == EACCES ? " (ports below 1024 need root)" : "");
			if (fd >= 0)
				close(fd);
			freeaddrinfo(ai);
			return -1;
		}
		freeaddrinfo(ai);
		h->ports[h->nfds] = -1;
		if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
			h->ports[h->nfds] = ntohs(ss.ss_family == AF_INET6 ?
			    ((struct sockaddr_in6 *)&ss)->sin6_port :
			    ((struct sockaddr_in *)&ss)->sin_port);
		h->fds[h->nfds++] = fd;
	}
	return 0;
}

int
httpd_port(const struct httpd *h, size_t i)
{
	return i < h->nfds ? h->ports[i] : -1;
}

static void httpd_dispatch(struct evhttp_request *req, void *arg);

int
httpd_start(struct httpd *h)
{
	evhttp_set_gencb(h->http, httpd_dispatch, h);
	for (size_t i = 0; i < h->nfds; i++) {
		h->bound[i] = evhttp_accept_socket_with_handle(h->http, h->fds[i]);
		if (!h->bound[i])
			return -1;
	}
	return 0;
}

void
httpd_stop_listening(struct httpd *h)
{
	for (size_t i = 0; i < h->nfds; i++) {
		if (h->bound[i])
			evhttp_del_accept_socket(h->http, h->bound[i]);
		else if (h->fds[i] >= 0)
			close(h->fds[i]);
		h->bound[i] = NULL;
		h->fds[i] = -1;
	}
}

void
httpd_free(struct httpd *h)
{
	if (!h)
		return;
	httpd_stop_listening(h);
	evhttp_free(h->http);
	memset(h->token, 0, sizeof(h->token));
	free(h);
}

void
httpd_set_limits(struct httpd *h, size_t max_body, size_t max_headers,
    long timeout_ms)
{
	struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };

	evhttp_set_max_body_size(h->http, (ev_ssize_t)max_body);
	evhttp_set_max_headers_size(h->http, (ev_ssize_t)max_headers);
	evhttp_set_timeout_tv(h->http, &tv);
}

void
httpd_set_reuseport(struct httpd *h, int on)
{
	h->reuseport = on;
}

void
httpd_set_token(struct httpd *h, const char *token)
{
	snprintf(h->token, sizeof(h->token), "%s", token ? token : "");
}

int
httpd_add_route(struct httpd *h, const struct httpd_route *route)
{
	if (h->nroutes >= HTTPD_MAX_ROUTES)
		return -1;
	h->routes[h->nroutes++] = *route;
	return 0;
}

int
httpd_add_routes(struct httpd *h, const struct httpd_route *routes, size_t n,
    void *arg)
{
	for (size_t i = 0; i < n; i++) {
		struct httpd_route rt = routes[i];

		rt.arg = arg;
		if (httpd_add_route(h, &rt) < 0)
			return -1;
	}
	return 0;
}

size_t
httpd_in_flight(const struct httpd *h)
{
	return h->in_flight;
}

static unsigned
method_bit(enum evhttp_cmd_type cmd)
{
	switch (cmd) {
	case EVHTTP_REQ_GET: return HTTPD_GET;
	case EVHTTP_REQ_POST: return HTTPD_POST;
	case EVHTTP_REQ_HEAD: return HTTPD_HEAD;
	case EVHTTP_REQ_PUT: return HTTPD_PUT;
	case EVHTTP_REQ_DELETE: return HTTPD_DELETE;
	default: return 0;
	}
}

static void
count(struct httpd *h, const char *route, int code)
{
	char labels[128], status[8];
	struct metric *m;

	for (size_t i = 0; h && i < h->nseen; i++)
		if (h->seen[i].route == route && h->seen[i].code == code) {
			metric_add(h->seen[i].m, 1);
			return;
		}
	snprintf(status, sizeof(status), "%d", code);
	metrics_labels(labels, sizeof(labels), "route", route, "status",
	    status, (const char *)NULL);
	m = metrics_counter("leadcast_http_requests_total",
	    "HTTP requests answered, by route and status.", labels);
	if (h && h->nseen < sizeof(h->seen) / sizeof(h->seen[0])) {
		h->seen[h->nseen].route = route;
		h->seen[h->nseen].code = code;
		h->seen[h->nseen++].m = m;
	}
	metric_add(m, 1);
}

/* Answer a request that never reached a handler (no context). */
static void
reply_plain(struct evhttp_request *req, const char *route, int code,
    const char *reason, const char *ctype, const char *body)
{
	struct evbuffer *b = evbuffer_new();
	struct evkeyvalq *oh = evhttp_request_get_output_headers(req);

	evhttp_add_header(oh, "Content-Type", ctype);
	evhttp_add_header(oh, "X-Content-Type-Options", "nosniff");
	evhttp_add_header(oh, "Cache-Control", "no-store");
	if (code == 401)
		evhttp_add_header(oh, "WWW-Authenticate",
		    "Bearer realm=\"leadcast\"");
	if (b && evhttp_request_get_command(req) != EVHTTP_REQ_HEAD)
		evbuffer_add(b, body, strlen(body));
	evhttp_send_reply(req, code, reason, b);
	if (b)
		evbuffer_free(b);
	count(NULL, route, code);
}

static const char *
reason_for(int code)
{
	switch (code) {
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 204: return "No Content";
	case 302: return "Found";
	case 303: return "See Other";
	case 304: return "Not Modified";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 409: return "Conflict";
	case 413: return "Payload Too Large";
	case 415: return "Unsupported Media Type";
	case 422: return "Unprocessable Entity";
	case 429: return "Too Many Requests";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	default: return "Status";
	}
}

static int
authorized(struct httpd *h, struct evhttp_request *req)
{
	const char *a = evhttp_find_header(evhttp_request_get_input_headers(req),
	    "Authorization");

	if (!h->token[0] || !a || strncasecmp(a, "Bearer ", 7) != 0)
		return 0;
	a += 7;
	while (*a == ' ')
		a++;
	return token_equal(a, strlen(a), h->token, strlen(h->token));
}

static void
httpd_dispatch(struct evhttp_request *req, void *arg)
{
	struct httpd *h = arg;
	const char *uri = evhttp_request_get_uri(req);
	const struct httpd_route *route = NULL;
	struct evhttp_uri *u;
	struct reqctx *ctx;
	const char *raw, *q;
	unsigned m = method_bit(evhttp_request_get_command(req));
	int path_known = 0;
	char *addr;
	ev_uint16_t port;

	if (!uri || strlen(uri) > HTTPD_MAX_URI ||
	    !(u = evhttp_uri_parse_with_flags(uri, EVHTTP_URI_NONCONFORMANT))) {
		reply_plain(req, "invalid", 400, "Bad Request", "text/plain",
		    "bad request URI\n");
		return;
	}
	if (!(ctx = calloc(1, sizeof(*ctx)))) {
		evhttp_uri_free(u);
		reply_plain(req, "error", 503, "Service Unavailable",
		    "text/plain", "out of memory\n");
		return;
	}
	raw = evhttp_uri_get_path(u);
	ctx->path = evhttp_uridecode(raw && *raw ? raw : "/", 0, NULL);
	ctx->query.tqh_first = NULL;
	ctx->query.tqh_last = &ctx->query.tqh_first;
	q = evhttp_uri_get_query(u);
	if (q && evhttp_parse_query_str(q, &ctx->query) < 0) {
		evhttp_uri_free(u);
		free(ctx->path);
		free(ctx);
		reply_plain(req, "invalid", 400, "Bad Request", "text/plain",
		    "bad query string\n");
		return;
	}
	evhttp_uri_free(u);
	if (!ctx->path) {
		free(ctx);
		reply_plain(req, "error", 503, "Service Unavailable",
		    "text/plain", "out of memory\n");
		return;
	}
	for (size_t i = 0; i < h->nroutes; i++) {
		const struct httpd_route *rt = &h->routes[i];
		size_t len = strlen(rt->path);
		int match = rt->path[len - 1] == '/' ?
		    strncmp(ctx->path, rt->path, len) == 0 :
		    strcmp(ctx->path, rt->path) == 0;

		if (!match)
			continue;
		path_known = 1;
		if (rt->flags & m) {
			route = rt;
			break;
		}
	}
	ctx->pub.req = req;
	ctx->pub.httpd = h;
	ctx->pub.route = route;
	ctx->pub.path = ctx->path;
	ctx->pub.query = &ctx->query;
	evhttp_connection_get_peer(evhttp_request_get_connection(req), &addr,
	    &port);
	snprintf(ctx->ip, sizeof(ctx->ip), "%s", addr ? addr : "");
	ctx->pub.client_ip = ctx->ip;
	h->in_flight++;
	if (!route) {
		int api = strncmp(ctx->path, "/api/", 5) == 0;
		int code = path_known ? 405 : 404;

		ctx->pub.route = NULL;
		if (api)
			httpd_reply_error(&ctx->pub, code, NULL, path_known ?
			    "method not allowed" : "no such endpoint");
		else
			httpd_reply(&ctx->pub, code, "text/plain; charset=utf-8",
			    path_known ? "method not allowed\n" : "not found\n",
			    path_known ? 19 : 10);
		return;
	}
	if ((route->flags & HTTPD_AUTH) && !authorized(h, req)) {
		httpd_reply_error(&ctx->pub, 401, NULL, "a valid admin token is "
		    "required: Authorization: Bearer <token>");
		return;
	}
	ctx->pub.tail = ctx->path + strlen(route->path);
	if (route->path[strlen(route->path) - 1] != '/')
		ctx->pub.tail = "";
	route->fn(&ctx->pub, route->arg);
}

/*
 * Write the reply evhttp has just queued on the connection now, instead of
 * on the loop's next turn (when the socket is reported writable), then run
 * the bufferevent's write callback as the bufferevent itself does once its
 * output is empty: evhttp ends the request there and waits for the next
 * one. This saves a loop turn and the epoll change that asked for it on
 * every request. A reply the socket does not take whole (or an error) is
 * left to the bufferevent, which writes the rest and reports as usual. The
 * output buffer's start is frozen outside the bufferevent's own writes:
 * thawed for this write only, as the bufferevent does. bev may be freed by
 * the callback (a connection that closes): not touched after it.
 */
static void
flush_now(struct bufferevent *bev)
{
	struct evbuffer *out = bufferevent_get_output(bev);
	evutil_socket_t fd = bufferevent_getfd(bev);
	int n;

	if (fd < 0 || evbuffer_get_length(out) == 0 ||
	    !(bufferevent_get_enabled(bev) & EV_WRITE))
		return;
	evbuffer_unfreeze(out, 1);
	n = evbuffer_write(out, fd);
	evbuffer_freeze(out, 1);
	if (n > 0 && evbuffer_get_length(out) == 0)
		bufferevent_trigger(bev, EV_WRITE, 0);
}

void
httpd_reply(struct httpd_req *r, int code, const char *content_type,
    const void *body, size_t len)
{
	struct reqctx *ctx = (struct reqctx *)r;
	struct evkeyvalq *oh = evhttp_request_get_output_headers(r->req);
	struct evhttp_connection *evcon = evhttp_request_get_connection(r->req);
	struct bufferevent *bev = evcon ?
	    evhttp_connection_get_bufferevent(evcon) : NULL;

	if (content_type)
		evhttp_add_header(oh, "Content-Type", content_type);
	evhttp_add_header(oh, "X-Content-Type-Options", "nosniff");
	if (!evhttp_find_header(oh, "Cache-Control"))
		evhttp_add_header(oh, "Cache-Control", "no-store");
	if (code == 401)
		evhttp_add_header(oh, "WWW-Authenticate",
		    "Bearer realm=\"leadcast\"");
	/* evhttp would send a HEAD reply's body (and no Content-Length) */
	if (body && len && evhttp_request_get_command(r->req) !=
	    EVHTTP_REQ_HEAD)
		evbuffer_add(evhttp_request_get_output_buffer(r->req), body,
		    len);
	evhttp_send_reply(r->req, code, reason_for(code), NULL);
	if (bev)
		flush_now(bev);
	count(r->httpd, r->route ? r->route->name : (code == 405 ? "method" :
	    "unknown"), code);
	r->httpd->in_flight--;
	evhttp_clear_headers(&ctx->query);
	free(ctx->path);
	free(ctx);
}

void
httpd_reply_json(struct httpd_req *r, int code, json_t *doc)
{
	char *s = doc ? json_dumps(doc, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;

	json_decref(doc);
	if (!s) {
		httpd_reply(r, 500, "application/json",
		    "{\"error\":{\"message\":\"out of memory\"}}", 37);
		return;
	}
	httpd_reply(r, code, "application/json", s, strlen(s));
	free(s);
}

void
httpd_reply_error(struct httpd_req *r, int code, const char *field,
    const char *message)
{
	json_t *e = json_object();

	if (field)
		json_object_set_new(e, "field", json_string(field));
	json_object_set_new(e, "message", json_string(message));
	httpd_reply_json(r, code, json_pack("{s:o}", "error", e));
}

json_t *
httpd_body_json(struct httpd_req *r)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(r->req);
	size_t len = evbuffer_get_length(in);
	const char *ct = evhttp_find_header(
	    evhttp_request_get_input_headers(r->req), "Content-Type");
	json_error_t je;
	json_t *doc;
	char msg[300];

	if (ct && strncasecmp(ct, "application/json", 16) != 0) {
		httpd_reply_error(r, 415, NULL, "send the body as "
		    "application/json");
		return NULL;
	}
	doc = json_loadb((const char *)evbuffer_pullup(in, (ev_ssize_t)len),
	    len, JSON_REJECT_DUPLICATES, &je);
	if (!doc) {
		snprintf(msg, sizeof(msg), "invalid JSON at line %d column %d: "
		    "%s", je.line, je.column, je.text);
		httpd_reply_error(r, 400, NULL, msg);
		return NULL;
	}
	if (!json_is_object(doc)) {
		json_decref(doc);
		httpd_reply_error(r, 400, NULL, "the body must be a JSON object");
		return NULL;
	}
	return doc;
}
