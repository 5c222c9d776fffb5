/*
 * daemon.h - the state leadcastd's modules share on the loop thread, and
 * the entry points the HTTP handlers call back into.
 *
 * boot is the configuration the daemon started with: settings that need a
 * restart (addresses, state directory, database, user, workers) are read
 * from it. conf is the current one, replaced by each successful reload.
 */
#ifndef LEADCAST_DAEMON_H
#define LEADCAST_DAEMON_H

#include <time.h>

#include "cfgfile.h"
#include "conf.h"
#include "pgembed.h"
#include "token.h"

struct event;
struct event_base;
struct httpd;
struct workq;
struct db;

struct lc_daemon {
	struct event_base *base;
	const char *conf_path;
	struct conf *boot;              /* as started: restart-only settings */
	struct conf *conf;              /* current: reloadable settings */
	struct httpd *httpd;
	struct workq *workq;
	struct db *db;
	int embedded;
	struct pgembed pg;
	int pg_restart_pending;
	time_t pg_restart_last;
	time_t started;
	char admin_token[512];
	struct token_key url_key;       /* signs tokens in public URLs */
	long long node_id;
	int stopping;
	struct timespec stop_deadline;
	struct event *ev_sig[3], *ev_heartbeat, *ev_drain;
	/* the last reload */
	time_t reload_time;
	int reload_ok;
	struct cfgfile_errors reload_errors;
	char restart_needed[512];
};

/* Reload the configuration file; 0, or -1 (errors in d->reload_errors). */
int daemon_reload(struct lc_daemon *d);
/* Start draining and exit. */
void daemon_stop(struct lc_daemon *d);

/* core_routes.c: /healthz, /metrics, /api/v1/status, /api/v1/reload. */
void core_routes_register(struct lc_daemon *d);
/* track_routes.c: /o/ open pixel, /c/ click redirect, /u/ unsubscribe. */
void track_routes_register(struct lc_daemon *d);

#endif
