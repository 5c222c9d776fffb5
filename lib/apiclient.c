/*
 * apiclient - blocking admin-API requests for the CLI. See apiclient.h.
 */
#include "apiclient.h"
#include "conf.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct call {
	struct apiclient_resp *resp;
	struct event_base *base;
	int done;
};

static void
on_done(struct evhttp_request *req, void *arg)
{
	struct call *c = arg;

	c->done = 1;
	if (!req || evhttp_request_get_response_code(req) == 0) {
		snprintf(c->resp->err, sizeof(c->resp->err), "no answer "
		    "(is leadcastd running?)");
	} else {
		struct evbuffer *in = evhttp_request_get_input_buffer(req);
		size_t len = evbuffer_get_length(in);

		c->resp->status = evhttp_request_get_response_code(req);
		if ((c->resp->body = malloc(len + 1)) != NULL) {
			evbuffer_remove(in, c->resp->body, len);
			c->resp->body[len] = '\0';
			c->resp->len = len;
		}
	}
	event_base_loopbreak(c->base);
}

int
apiclient_request(const struct conf *c, const char *method, const char *path,
    const char *token, const char *body, long timeout_ms,
    struct apiclient_resp *resp)
{
	struct evhttp_connection *conn = NULL;
	struct evhttp_request *req;
	struct call call = { resp, NULL, 0 };
	struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
	char host[256], auth[600];
	int port;

	memset(resp, 0, sizeof(*resp));
	if (c->http.listen.n == 0 || conf_parse_hostport(c->http.listen.v[0],
	    host, sizeof(host), &port) < 0) {
		snprintf(resp->err, sizeof(resp->err), "no usable http.listen");
		return -1;
	}
	if (strcmp(host, "0.0.0.0") == 0 || strcmp(host, "*") == 0)
		strcpy(host, "127.0.0.1");
	else if (strcmp(host, "::") == 0)
		strcpy(host, "::1");
	if (!(call.base = event_base_new()) ||
	    !(conn = evhttp_connection_base_new(call.base, NULL, host,
	    (ev_uint16_t)port))) {
		snprintf(resp->err, sizeof(resp->err), "out of memory");
		goto out;
	}
	evhttp_connection_set_timeout_tv(conn, &tv);
	if (!(req = evhttp_request_new(on_done, &call)))
		goto out;
	evhttp_add_header(evhttp_request_get_output_headers(req), "Host", host);
	if (token && *token) {
		snprintf(auth, sizeof(auth), "Bearer %s", token);
		evhttp_add_header(evhttp_request_get_output_headers(req),
		    "Authorization", auth);
	}
	if (body) {
		evhttp_add_header(evhttp_request_get_output_headers(req),
		    "Content-Type", "application/json");
		evbuffer_add(evhttp_request_get_output_buffer(req), body,
		    strlen(body));
	}
	if (evhttp_make_request(conn, req, strcmp(method, "POST") == 0 ?
	    EVHTTP_REQ_POST : EVHTTP_REQ_GET, path) < 0) {
		snprintf(resp->err, sizeof(resp->err), "cannot send the request");
		goto out;
	}
	event_base_dispatch(call.base);
	if (!call.done)
		snprintf(resp->err, sizeof(resp->err), "no answer");
out:
	if (conn)
		evhttp_connection_free(conn);
	if (call.base)
		event_base_free(call.base);
	if (resp->status)
		return 0;
	if (!resp->err[0])
		snprintf(resp->err, sizeof(resp->err), "request failed");
	snprintf(resp->err + strlen(resp->err), sizeof(resp->err) -
	    strlen(resp->err), " at %s:%d", host, port);
	return -1;
}

void
apiclient_resp_free(struct apiclient_resp *resp)
{
	free(resp->body);
	resp->body = NULL;
}
