/*
 * leadcastd - the leadcast daemon: wires configuration, the event loop,
 * the database, the worker pool and HTTP together, and handles signals.
 *
 * Start-up is all-or-nothing: every step that can fail reports one line
 * saying what to do and exits 1, undoing what it started (the embedded
 * cluster included). The business logic is in lib/; this file only
 * connects modules.
 */
#include "config.h"
#include "daemon.h"

#include <errno.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <fcntl.h>
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "db.h"
#include "httpd.h"
#include "dns.h"
#include "log.h"
#include "maildir.h"
#include "smtp.h"
#include "metrics.h"
#include "migrate.h"
#include "proc.h"
#include "token.h"
#include "track.h"
#include "workq.h"

#define HEARTBEAT_SECONDS 10

static struct lc_daemon D;

static void
usage(FILE *f)
{
	fprintf(f, "usage: leadcastd [-f] [-c FILE]\n"
	    "  -c FILE  configuration file (default %s)\n"
	    "  -f       stay in the foreground and log to stderr\n"
	    "  -V       print the version\n", conf_default_path());
}

/* ---- admin token -------------------------------------------------------- */

static int
load_admin_token(struct lc_daemon *d, const struct conf *c, char *err,
    size_t n)
{
	if (c->admin_token_generate && access(c->admin_token_file, F_OK) != 0) {
		char tok[64];
		int fd;

		if (token_random_hex(tok, sizeof(tok), 24) < 0) {
			snprintf(err, n, "no randomness for the admin token");
			return -1;
		}
		fd = open(c->admin_token_file, O_WRONLY | O_CREAT | O_EXCL |
		    O_CLOEXEC, 0600);
		if (fd < 0 || write(fd, tok, strlen(tok)) != (ssize_t)strlen(tok)
		    || write(fd, "\n", 1) != 1) {
			snprintf(err, n, "cannot write the admin token to %s: %s",
			    c->admin_token_file, strerror(errno));
			if (fd >= 0)
				close(fd);
			return -1;
		}
		close(fd);
		log_info("generated an admin token in %s", c->admin_token_file);
	}
	return conf_admin_token(c, d->admin_token, sizeof(d->admin_token), err,
	    n);
}

/* ---- the node row and its heartbeat --------------------------------------- */

static void
on_node_registered(void *arg, const PGresult *res, const char *err)
{
	struct lc_daemon *d = arg;

	if (err) {
		log_warn("registering this node: %s", err);
		return;
	}
	d->node_id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	log_info("registered as node %lld", d->node_id);
	sender_node_ready(d->sender);
	drip_kick(d->drip);
}

static void
on_heartbeat_done(void *arg, const PGresult *res, const char *err)
{
	(void)arg;
	(void)res;
	if (err)
		log_debug("heartbeat: %s", err);
}

static void
node_heartbeat(evutil_socket_t fd, short what, void *arg)
{
	struct lc_daemon *d = arg;
	char id[32], pid[32], host[256] = "";

	(void)fd;
	(void)what;
	if (db_state(d->db) != DB_READY)
		return;
	if (d->node_id == 0) {
		const char *p[3] = { host, pid, PACKAGE_VERSION };

		gethostname(host, sizeof(host) - 1);
		snprintf(pid, sizeof(pid), "%ld", (long)getpid());
		db_query(d->db, "INSERT INTO nodes (hostname, pid, version) "
		    "VALUES ($1, $2, $3) RETURNING id", 3, p, on_node_registered,
		    d);
		return;
	}
	snprintf(id, sizeof(id), "%lld", d->node_id);
	{
		const char *p[1] = { id };

		db_query(d->db, "UPDATE nodes SET heartbeat_at = now() WHERE "
		    "id = $1", 1, p, on_heartbeat_done, d);
	}
}

/* ---- embedded cluster supervision ---------------------------------------- */

struct pg_job {
	struct lc_daemon *d;
	int ok;
	char err[256];
};

static void
pg_restart_work(void *arg)
{
	struct pg_job *j = arg;
	int created;

	j->ok = pgembed_start(&j->d->pg, &created, j->err, sizeof(j->err)) == 0;
}

static void
pg_restart_done(void *arg)
{
	struct pg_job *j = arg;

	j->d->pg_restart_pending = 0;
	if (!j->ok)
		log_warn("restarting the embedded PostgreSQL: %s (trying again)",
		    j->err);
	free(j);
}

static void
on_db_state(void *arg, enum db_state st)
{
	struct lc_daemon *d = arg;

	if (st == DB_READY)
		node_heartbeat(-1, 0, d);       /* register, or refresh */
}

/* Every couple of seconds while the database is away: the private cluster
 * is ours to keep running, so start it again (pg_ctl, on a worker). */
static void
pg_supervise(evutil_socket_t fd, short what, void *arg)
{
	struct lc_daemon *d = arg;
	struct pg_job *j;

	(void)fd;
	(void)what;
	if (!d->embedded || d->stopping || d->pg_restart_pending ||
	    db_state(d->db) == DB_READY)
		return;
	if (!(j = calloc(1, sizeof(*j))))
		return;
	j->d = d;
	d->pg_restart_pending = 1;
	if (workq_post(d->workq, pg_restart_work, pg_restart_done, j) < 0) {
		d->pg_restart_pending = 0;
		free(j);
	}
}

static void
on_wake(void *arg, const char *channel, const char *payload)
{
	struct lc_daemon *d = arg;

	log_debug("notification on %s: %s", channel, payload);
	if (strcmp(payload, "deliveries") == 0)
		sender_kick(d->sender);
}

struct db *
daemon_db(struct lc_daemon *d)
{
	struct db *best = d->db;

	for (int i = 0; i < DAEMON_SESSIONS; i++) {
		struct db *s = d->sessions[i];

		if (s && db_state(s) == DB_READY && (db_state(best) != DB_READY ||
		    db_pending(s) < db_pending(best)))
			best = s;
	}
	return best;
}

size_t
daemon_db_pending(const struct lc_daemon *d)
{
	size_t n = db_pending(d->db);

	for (int i = 0; i < DAEMON_SESSIONS; i++)
		if (d->sessions[i])
			n += db_pending(d->sessions[i]);
	return n;
}

/* ---- reload and stop ------------------------------------------------------ */

static void
apply_conf(struct lc_daemon *d, const struct conf *c)
{
	log_set_level((enum log_level)log_level_parse(c->log_level));
	httpd_set_limits(d->httpd, c->http.max_body_size,
	    c->http.max_header_size, c->http.timeout_ms);
	httpd_set_token(d->httpd, d->admin_token);
	dns_set_nameserver(c->mail.nameserver);
	track_conf_changed(d->track);
}

int
daemon_reload(struct lc_daemon *d)
{
	struct cfgfile_errors errs = { NULL, 0 };
	struct conf *c;
	char err[512];

	cfgfile_errors_free(&d->reload_errors);
	d->reload_time = time(NULL);
	d->restart_needed[0] = '\0';
	c = conf_load(d->conf_path, &errs);
	if (c && load_admin_token(d, c, err, sizeof(err)) < 0) {
		struct cfgfile_pos p = { c->path, 0, 0 };

		cfgfile_error(&errs, &p, "%s", err);
		conf_free(c);
		c = NULL;
	}
	if (!c) {
		for (size_t i = 0; i < errs.n; i++)
			log_error("%s", errs.msgs[i]);
		log_error("reload failed: keeping the running configuration");
		d->reload_errors = errs;
		d->reload_ok = 0;
		metric_add(metrics_counter("leadcast_config_reloads_total",
		    "Configuration reloads.", "result=\"error\""), 1);
		return -1;
	}
	if (conf_restart_needed(d->boot, c, d->restart_needed,
	    sizeof(d->restart_needed)))
		log_warn("changed settings take effect after a restart: %s",
		    d->restart_needed);
	apply_conf(d, c);
	if (d->conf != d->boot)
		conf_free(d->conf);
	d->conf = c;
	lists_sync(d);
	router_conf_changed(d->router);
	bounces_conf_changed(d->bounces);
	drip_kick(d->drip);
	d->reload_ok = 1;
	metric_add(metrics_counter("leadcast_config_reloads_total",
	    "Configuration reloads.", "result=\"ok\""), 1);
	log_info("configuration reloaded from %s", c->path);
	return 0;
}

static void
drain_check(evutil_socket_t fd, short what, void *arg)
{
	struct lc_daemon *d = arg;
	struct timespec now;
	/* queries cannot drain while the database is away */
	int idle = httpd_in_flight(d->httpd) == 0 && workq_depth(d->workq) == 0 &&
	    sender_idle(d->sender) && router_idle(d->router) &&
	    sms_idle(d->sms) && track_idle(d->track) &&
	    bounces_idle(d->bounces) &&
	    drip_idle(d->drip) &&
	    (daemon_db_pending(d) == 0 ||
	    db_state(d->db) != DB_READY);

	(void)fd;
	(void)what;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (idle || now.tv_sec > d->stop_deadline.tv_sec ||
	    (now.tv_sec == d->stop_deadline.tv_sec &&
	    now.tv_nsec >= d->stop_deadline.tv_nsec)) {
		if (!idle)
			log_warn("shutdown timeout: %zu requests, %zu queries, "
			    "%zu jobs still pending", httpd_in_flight(d->httpd),
			    daemon_db_pending(d), workq_depth(d->workq));
		event_base_loopbreak(d->base);
	}
}

void
daemon_stop(struct lc_daemon *d)
{
	struct timeval tick = { 0, 50000 };
	long ms = d->conf->shutdown_timeout_ms;

	if (d->stopping)
		return;
	d->stopping = 1;
	log_info("stopping: draining in-flight work (up to %ld ms)", ms);
	httpd_stop_listening(d->httpd);
	track_stop(d->track);
	clock_gettime(CLOCK_MONOTONIC, &d->stop_deadline);
	d->stop_deadline.tv_sec += ms / 1000;
	d->stop_deadline.tv_nsec += (ms % 1000) * 1000000;
	if (d->stop_deadline.tv_nsec >= 1000000000) {
		d->stop_deadline.tv_sec++;
		d->stop_deadline.tv_nsec -= 1000000000;
	}
	d->ev_drain = event_new(d->base, -1, EV_PERSIST, drain_check, d);
	event_add(d->ev_drain, &tick);
	if (d->node_id) {
		char id[32];
		const char *p[1] = { id };

		snprintf(id, sizeof(id), "%lld", d->node_id);
		db_query(d->db, "UPDATE nodes SET stopped_at = now() WHERE id = $1",
		    1, p, NULL, NULL);
	}
}

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct lc_daemon *d = arg;

	(void)what;
	if (sig == SIGHUP) {
		log_info("SIGHUP: reloading %s", d->conf_path);
		daemon_reload(d);
	} else {
		daemon_stop(d);
	}
}

/* ---- gauges ---------------------------------------------------------------- */

static double g_uptime(void *a) { return (double)(time(NULL) - ((struct lc_daemon *)a)->started); }
static double g_dbup(void *a) { return db_state(((struct lc_daemon *)a)->db) == DB_READY; }
static double g_dbpending(void *a) { return (double)db_pending(((struct lc_daemon *)a)->db); }
static double g_workq(void *a) { return (double)workq_depth(((struct lc_daemon *)a)->workq); }
static double g_inflight(void *a) { return (double)httpd_in_flight(((struct lc_daemon *)a)->httpd); }

static void
register_gauges(struct lc_daemon *d)
{
	metrics_gauge_func("leadcast_uptime_seconds", "Seconds since start.",
	    NULL, g_uptime, d);
	metrics_gauge_func("leadcast_db_connected", "1 if the query "
	    "connection to PostgreSQL is up.", NULL, g_dbup, d);
	metrics_gauge_func("leadcast_db_pending_queries", "Queries queued or "
	    "in flight.", NULL, g_dbpending, d);
	metrics_gauge_func("leadcast_workers_queue_depth", "Worker pool jobs "
	    "queued, running or awaiting the loop.", NULL, g_workq, d);
	metrics_gauge_func("leadcast_http_in_flight", "HTTP requests being "
	    "handled.", NULL, g_inflight, d);
	metrics_counter("leadcast_config_reloads_total", "Configuration "
	    "reloads.", "result=\"ok\"");
	metrics_counter("leadcast_config_reloads_total", "Configuration "
	    "reloads.", "result=\"error\"");
}

/* ---- start-up -------------------------------------------------------------- */

static int
start(struct lc_daemon *d, int foreground, int *report_fd)
{
	const struct conf *c = d->boot;
	char err[1024] = "", conninfo[2048];
	uid_t uid = getuid();
	gid_t gid = getgid();
	int applied, total, pidfd, created = 0, locked = 0;
	struct timeval hb = { HEARTBEAT_SECONDS, 0 };

	if (!foreground) {
		if ((*report_fd = proc_daemonize(err, sizeof(err))) < 0)
			goto fail;
		log_set_startup_fd(*report_fd);
		log_open_syslog("leadcastd", c->syslog_facility);
	}
	evthread_use_pthreads();
	if (!(d->base = event_base_new()) || !(d->httpd = httpd_new(d->base))) {
		snprintf(err, sizeof(err), "cannot create the event loop");
		goto fail;
	}
	if (httpd_bind(d->httpd, &c->http.listen, err, sizeof(err)) < 0)
		goto fail;
	/* the tracking threads' sockets too, before dropping privileges */
	if (!(d->track = track_new(d, err, sizeof(err))))
		goto fail;
	if (geteuid() == 0) {
		if (proc_user(c->user, &uid, &gid, err, sizeof(err)) < 0)
			goto fail;
		if (uid == 0) {
			snprintf(err, sizeof(err), "user = %s: refusing to run "
			    "as root; name an unprivileged user", c->user);
			goto fail;
		}
	}
	if (proc_prepare_dir(c->state_dir, uid, gid, 0700, err, sizeof(err)) < 0)
		goto fail;
	if (geteuid() == 0 &&
	    proc_drop_privileges(c->user, uid, gid, err, sizeof(err)) < 0)
		goto fail;
	if ((pidfd = proc_lock_pidfile(c->pid_file, err, sizeof(err))) < 0)
		goto fail;
	locked = 1;
	if (proc_write_pid(pidfd) < 0) {
		snprintf(err, sizeof(err), "cannot write %s", c->pid_file);
		goto fail;
	}
	if (load_admin_token(d, c, err, sizeof(err)) < 0)
		goto fail;
	if (c->mail.kind == CONF_MAILDIR &&
	    maildir_prepare(c->mail.maildir, err, sizeof(err)) < 0)
		goto fail;
	smtp_global_init();
	if (d->embedded) {
		if (pgembed_setup(&d->pg, c->state_dir, c->pg_bindir, err,
		    sizeof(err)) < 0)
			goto fail;
		if (pgembed_start(&d->pg, &created, err, sizeof(err)) < 0)
			goto fail_pg;
		pgembed_conninfo(&d->pg, conninfo, sizeof(conninfo));
	} else {
		snprintf(conninfo, sizeof(conninfo), "%s", c->database);
	}
	snprintf(d->conninfo, sizeof(d->conninfo), "%s", conninfo);
	if (migrate_run(conninfo, 10, &applied, &total, err, sizeof(err)) < 0)
		goto fail_pg;
	log_info("database schema: %d migrations, %d applied now", total,
	    applied);
	{
		char fresh[2 * TOKEN_KEY_LEN + 1], key[2 * TOKEN_KEY_LEN + 8];

		if (token_random_hex(fresh, sizeof(fresh), TOKEN_KEY_LEN) < 0 ||
		    migrate_setting(conninfo, "url_key", fresh, key, sizeof(key),
		    err, sizeof(err)) < 0 ||
		    token_key_from_hex(&d->url_key, key) < 0) {
			if (!*err)
				snprintf(err, sizeof(err), "no URL signing key");
			goto fail_pg;
		}
	}
	if (!(d->workq = workq_new(d->base, (int)c->workers)) ||
	    !(d->db = db_new(d->base, conninfo))) {
		snprintf(err, sizeof(err), "cannot start the worker pool");
		goto fail_pg;
	}
	workq_set_limit(d->workq, 10000);
	if (!(d->sender = sender_new(d))) {
		snprintf(err, sizeof(err), "cannot start the sender");
		goto fail_pg;
	}
	db_set_state_cb(d->db, on_db_state, d);
	db_listen(d->db, "leadcast_wake", on_wake, d);
	db_start(d->db);
	for (int i = 0; i < DAEMON_SESSIONS; i++) {
		if (!(d->sessions[i] = db_new(d->base, conninfo))) {
			snprintf(err, sizeof(err), "cannot open database sessions");
			goto fail_pg;
		}
		db_start(d->sessions[i]);
	}
	d->ev_heartbeat = event_new(d->base, -1, EV_PERSIST, node_heartbeat, d);
	event_add(d->ev_heartbeat, &hb);
	if (d->embedded) {
		struct timeval two = { 2, 0 };

		d->ev_supervise = event_new(d->base, -1, EV_PERSIST, pg_supervise,
		    d);
		event_add(d->ev_supervise, &two);
	}
	register_gauges(d);
	core_routes_register(d);
	track_routes_register(d);
	track_report_register(d);
	forward_routes_register(d);
	campaign_routes_register(d);
	list_routes_register(d);
	form_routes_register(d);
	leads_routes_register(d);
	rep_pages_register(d);
	admin_pages_register(d);
	lists_sync(d);
	if (!(d->router = router_new(d))) {
		snprintf(err, sizeof(err), "cannot start the router");
		goto fail_pg;
	}
	if (!(d->sms = sms_new(d))) {
		snprintf(err, sizeof(err), "cannot start the SMS engine");
		goto fail_pg;
	}
	if (!(d->bounces = bounces_new(d))) {
		snprintf(err, sizeof(err), "cannot start the bounce reader");
		goto fail_pg;
	}
	if (!(d->drip = drip_new(d))) {
		snprintf(err, sizeof(err), "cannot start the drip engine");
		goto fail_pg;
	}
	drip_routes_register(d);
	apply_conf(d, c);
	if (track_start(d->track, err, sizeof(err)) < 0)
		goto fail_pg;
	if (httpd_start(d->httpd) < 0) {
		snprintf(err, sizeof(err), "cannot serve HTTP");
		goto fail_pg;
	}
	{
		static const int sigs[3] = { SIGHUP, SIGTERM, SIGINT };

		for (int i = 0; i < 3; i++) {
			d->ev_sig[i] = evsignal_new(d->base, sigs[i], on_signal, d);
			event_add(d->ev_sig[i], NULL);
		}
		signal(SIGPIPE, SIG_IGN);
	}
	log_info("leadcastd %s ready: http on %s%s, database %s%s",
	    PACKAGE_VERSION, c->http.listen.v[0], c->http.listen.n > 1 ?
	    " (and more)" : "", d->embedded ? "embedded in " : "",
	    d->embedded ? d->pg.datadir : "external");
	(void)created;
	return 0;
fail_pg:
	if (d->embedded && pgembed_running(&d->pg))
		pgembed_stop(&d->pg);
fail:
	log_error("%s", err);
	if (locked)
		unlink(c->pid_file);
	return -1;
}

int
main(int argc, char **argv)
{
	struct lc_daemon *d = &D;
	struct cfgfile_errors errs = { NULL, 0 };
	int foreground = 0, opt, report_fd = -1;

	/* The workers compose messages of tens of kilobytes in their own
	 * malloc arenas; with the default trim threshold each batch grows an
	 * arena's heap (mprotect) and the next free shrinks it again, two
	 * system calls per message or so. Keeping up to 4 MB free at the top
	 * of a heap ends that; the peak RSS is what the batches need anyway. */
	(void)mallopt(M_TRIM_THRESHOLD, 4 << 20);

	while ((opt = getopt(argc, argv, "c:fhV")) != -1) {
		switch (opt) {
		case 'c': d->conf_path = optarg; break;
		case 'f': foreground = 1; break;
		case 'V': printf("leadcastd %s\n", PACKAGE_VERSION); return 0;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 1;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 1;
	}
	if (!d->conf_path)
		d->conf_path = conf_default_path();
	if (!(d->boot = conf_load(d->conf_path, &errs))) {
		for (size_t i = 0; i < errs.n; i++)
			fprintf(stderr, "%s\n", errs.msgs[i]);
		fprintf(stderr, "leadcastd: %zu error%s in the configuration; "
		    "not started\n", errs.n, errs.n == 1 ? "" : "s");
		cfgfile_errors_free(&errs);
		return 1;
	}
	d->conf = d->boot;
	d->embedded = conf_db_embedded(d->boot);
	d->started = time(NULL);
	log_set_level((enum log_level)log_level_parse(d->boot->log_level));
	if (start(d, foreground, &report_fd) < 0)
		return 1;
	if (report_fd >= 0) {
		log_set_startup_fd(-1);
		proc_daemon_ready(report_fd);
	}
	event_base_dispatch(d->base);

	/* drained (or timed out): tear down in reverse order */
	bounces_stop(d->bounces);
	workq_free(d->workq);
	drip_free(d->drip);
	sms_free(d->sms);
	router_free(d->router);
	sender_free(d->sender);
	for (int i = 0; i < DAEMON_SESSIONS; i++)
		db_free(d->sessions[i]);
	db_free(d->db);
	bounces_free(d->bounces);       /* after its queries were answered */
	/* after the sessions its scoring used; spools what the database did
	 * not take */
	track_free(d->track);
	if (d->embedded && pgembed_running(&d->pg) && pgembed_stop(&d->pg) < 0)
		log_warn("the embedded PostgreSQL did not stop cleanly: see %s",
		    d->pg.logfile);
	for (int i = 0; i < 3; i++)
		event_free(d->ev_sig[i]);
	event_free(d->ev_heartbeat);
	if (d->ev_supervise)
		event_free(d->ev_supervise);
	if (d->ev_drain)
		event_free(d->ev_drain);
	httpd_free(d->httpd);
	event_base_free(d->base);
	unlink(d->boot->pid_file);
	if (d->conf != d->boot)
		conf_free(d->conf);
	conf_free(d->boot);
	cfgfile_errors_free(&d->reload_errors);
	log_info("stopped");
	return 0;
}
