/*
 * core_routes - the daemon's own endpoints: /healthz (public JSON health),
 * /metrics (Prometheus text), and the admin API's /api/v1/status and
 * POST /api/v1/reload. Feature handlers live in their own files.
 */
#include "config.h"
#include "daemon.h"

#include <jansson.h>
#include <string.h>
#include <time.h>

#include <event2/http.h>

#include "buf.h"
#include "log.h"
#include "tmpl.h"
#include "db.h"
#include "httpd.h"
#include "metrics.h"
#include "workq.h"

static json_t *
db_json(struct lc_daemon *d, int detail)
{
	json_t *o = json_pack("{s:s, s:s}", "mode", d->embedded ? "embedded" :
	    "external", "state", db_state_name(db_state(d->db)));

	if (db_state(d->db) != DB_READY && *db_last_error(d->db))
		json_object_set_new(o, "error", json_string(db_last_error(d->db)));
	if (detail) {
		json_object_set_new(o, "server_version",
		    json_integer(db_server_version(d->db)));
		json_object_set_new(o, "pending",
		    json_integer((json_int_t)db_pending(d->db)));
	}
	return o;
}

static void
healthz(struct httpd_req *r, void *arg)
{
	struct lc_daemon *d = arg;
	int ok = db_state(d->db) == DB_READY && !d->stopping;

	httpd_reply_json(r, 200, json_pack("{s:s, s:s, s:I, s:o, s:I}",
	    "status", d->stopping ? "stopping" : ok ? "ok" : "degraded",
	    "version", PACKAGE_VERSION,
	    "uptime_seconds", (json_int_t)(time(NULL) - d->started),
	    "database", db_json(d, 0),
	    "node", (json_int_t)d->node_id));
}

static void
metrics(struct httpd_req *r, void *arg)
{
	struct buf b = BUF_INIT;

	(void)arg;
	metrics_render(&b);
	httpd_reply(r, 200, "text/plain; version=0.0.4; charset=utf-8",
	    buf_str(&b), b.len);
	buf_free(&b);
}

static json_t *
reload_json(struct lc_daemon *d)
{
	json_t *errs = json_array();

	for (size_t i = 0; i < d->reload_errors.n; i++)
		json_array_append_new(errs, json_string(d->reload_errors.msgs[i]));
	return json_pack("{s:I, s:b, s:o, s:s}", "time",
	    (json_int_t)d->reload_time, "ok", d->reload_ok, "errors", errs,
	    "restart_needed", d->restart_needed);
}

static void
status(struct httpd_req *r, void *arg)
{
	struct lc_daemon *d = arg;

	httpd_reply_json(r, 200, json_pack("{s:s, s:I, s:I, s:s, s:o, s:o, s:o}",
	    "version", PACKAGE_VERSION,
	    "uptime_seconds", (json_int_t)(time(NULL) - d->started),
	    "node", (json_int_t)d->node_id,
	    "config", d->conf->path,
	    "database", db_json(d, 1),
	    "workers", json_pack("{s:I, s:I, s:I}",
		"threads", (json_int_t)workq_threads(d->workq),
		"queue", (json_int_t)workq_depth(d->workq),
		"completed", (json_int_t)workq_completed(d->workq)),
	    "last_reload", d->reload_time ? reload_json(d) : json_null()));
}

static void
reload(struct httpd_req *r, void *arg)
{
	struct lc_daemon *d = arg;

	if (daemon_reload(d) == 0) {
		httpd_reply_json(r, 200, reload_json(d));
	} else {
		json_t *doc = reload_json(d);

		json_object_set_new(doc, "error", json_pack("{s:s}", "message",
		    "the configuration has errors; the running one is kept"));
		httpd_reply_json(r, 422, doc);
	}
}

void
daemon_page(struct lc_daemon *d, struct httpd_req *r, int code,
    const char *name, json_t *data)
{
	daemon_page_conf(d->conf, r, code, name, data);
}

void
daemon_page_conf(const struct conf *c, struct httpd_req *r, int code,
    const char *name, json_t *data)
{
	const struct tmpl *t = tmpl_set_get(c->templates, name);
	struct buf b;

	buf_init(&b, 1024 * 1024);
	if (!t || tmpl_render(t, data, c->templates, TMPL_ESCAPE_HTML,
	    &b) < 0) {
		if (t)
			log_warn("rendering %s failed", name);
		buf_reset(&b);
		buf_printf(&b, "<!doctype html><title>%d</title><p>%s</p>", code,
		    code == 404 ? "This link is not valid." : "Done.");
	}
	json_decref(data);
	/* a page may come with its own policy (forms: framed by their sites) */
	if (!evhttp_find_header(evhttp_request_get_output_headers(r->req),
	    "Content-Security-Policy"))
		evhttp_add_header(evhttp_request_get_output_headers(r->req),
		    "Content-Security-Policy", "default-src 'none'; style-src "
		    "'unsafe-inline'; form-action 'self'; frame-ancestors "
		    "'none'");
	httpd_reply(r, code, "text/html; charset=utf-8", buf_str(&b), b.len);
	buf_free(&b);
}

void
core_routes_register(struct lc_daemon *d)
{
	static const struct httpd_route routes[] = {
		{ HTTPD_GET | HTTPD_HEAD, "/healthz", "healthz", healthz, NULL },
		{ HTTPD_GET, "/metrics", "metrics", metrics, NULL },
		{ HTTPD_GET | HTTPD_AUTH, "/api/v1/status", "api_status", status,
		  NULL },
		{ HTTPD_POST | HTTPD_AUTH, "/api/v1/reload", "api_reload",
		  reload, NULL },
	};

	httpd_add_routes(d->httpd, routes, sizeof(routes) / sizeof(routes[0]),
	    d);
}
