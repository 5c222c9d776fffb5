/*
 * conf - leadcast's configuration: the typed settings bound from the
 * cfgfile tree of conf/leadcast.conf, with their defaults and checks.
 *
 * A table of keys per section (name, type, default, bounds, whether a
 * change needs a restart) drives binding, so adding a setting is one line
 * in conf.c plus its documentation in conf/leadcast.conf. Every problem is
 * reported as "file:line:col: message"; all of them are collected, not just
 * the first. Relative paths are resolved against the directory holding the
 * main configuration file. It does not open sockets, databases or create
 * directories: that is the daemon's job.
 */
#ifndef LEADCAST_CONF_H
#define LEADCAST_CONF_H

#include <stddef.h>

#include "cfgfile.h"

struct tmpl_set;
struct dkim_keys;
struct campaign_set;
struct form_set;
struct drip_set;
struct route_conf;
struct score_conf;
struct smsgw_conf;

struct conf_strlist {
	char **v;
	size_t n;
};

struct conf_http {
	struct conf_strlist listen;     /* "host:port" / "[v6]:port" */
	char *public_url;               /* base of links in messages */
	size_t max_body_size;
	size_t max_header_size;
	long timeout_ms;
};

/* track { }: the tracking listener, hit batching and bot lists. */
struct conf_track {
	struct conf_strlist listen;     /* tracking threads' addresses; none:
	                                 * the main loop serves tracking */
	long threads;
	long queue;                     /* hits waiting for the loop, at most */
	long links;                     /* links held in memory, at most */
	long batch;                     /* hits per INSERT, at most */
	long flush_ms;                  /* hits are written this often */
	char *rate;                     /* hits recorded per address: "600/m" */
	int builtin_lists;
	struct conf_strlist machine_agents, machine_networks;
	struct conf_strlist scanner_agents, scanner_networks;
	long scanner_delay_ms;          /* clicks this soon after sending */
	long burst_ms;                  /* every link clicked within this */
	char *honeypot_tag;             /* a link tagged so is a trap */
	long settle_ms;                 /* events are scored this much later */
	struct conf_strlist sites;      /* the marketer's sites: clicks to them
	                                 * carry the visitor token (lc=) */
	char *cookie_domain;            /* Domain= of the lc cookie; "" host */
	long cookie_max_age_ms;
	struct conf_strlist hot_pages;  /* "NAME=GLOB" on the page URL */
	char *forward_rate;             /* forwards per address and message */
	struct conf_strlist trusted_proxies;    /* their X-Forwarded-For counts */
	/* derived */
	long rate_count, rate_period_ms;        /* 0, 0: no limit */
	long forward_count, forward_period_ms;
	struct botclass *bots;
};

enum conf_transport { CONF_MAILDIR, CONF_SMTP, CONF_MX };

struct conf_mail {
	char *transport;                /* as written */
	char *tls;                      /* required | opportunistic | none */
	char *tls_ca_file;              /* CAs trusted for the relay; "" = system */
	int tls_verify;                 /* relay: refuse unverified certificates */
	char *smtp_user;
	char *smtp_password_file;
	char *helo;
	char *bounce_domain;            /* VERP domain; "" = the From domain */
	char *unsubscribe_mailto;       /* "" = unsubscribe@<bounce domain> */
	char *list_id_domain;           /* "" = the From domain */
	size_t max_message_size;
	long timeout_ms;
	long retry_base_ms;
	long retry_lifetime_ms;
	long lease_ms;
	long connections;
	long domain_connections;
	long domain_rate;
	long mx_port;
	char *nameserver;
	long batch;
	long fill;                      /* recipients made deliveries per step
	                                 * of a campaign's start */
	long rate;
	long soft_bounce_limit;         /* soft bounces that suppress; 0 never */
	long soft_bounce_window_ms;     /* ... counted within this window */
	/* derived */
	enum conf_transport kind;
	char *maildir;                  /* CONF_MAILDIR: absolute path */
	char *smtp_host;                /* CONF_SMTP */
	int smtp_port;
	char *smtp_password;            /* read from smtp_password_file */
	struct ssl_ctx_st *ssl_ctx;     /* shared by every SMTP session */
};

/* list "NAME" { title = ...  double_optin = ...  confirm = ... } */
struct conf_list {
	char *name;
	char *title;                    /* shown to subscribers */
	int double_optin;               /* new subscribers confirm by email */
	char *confirm;                  /* the notification that asks them */
};

/* mailbox "NAME" { protocol = imap  host = ...  user = ... }: where
 * bounces and complaints come back (daemon/bounces.c reads them). */
struct conf_mailbox {
	char *name;
	char *protocol;                 /* imap | imaps | pop3 | pop3s */
	char *host;
	long port;                      /* 0: the protocol's default */
	char *user;
	char *password;                 /* inline, or read from: */
	char *password_file;
	char *folder;                   /* IMAP folder read; INBOX */
	long poll_ms;                   /* between polls (and IDLE's longest
	                                 * wait) */
	int idle;                       /* IMAP IDLE when the server offers it */
	char *action;                   /* delete | move | seen */
	char *move_to;                  /* action = move: this folder */
	char *review_folder;            /* IMAP: what needs a person; "" = left
	                                 * in place */
	int starttls;
	int tls_verify;
	char *ca_file;
	long timeout_ms;
	long batch;                     /* messages fetched per round */
	size_t max_message_size;        /* bytes read of one message */
	/* derived */
	int proto;                      /* enum mailbox_proto */
	char *secret;                   /* the password in use */
};

struct conf {
	char *path;                     /* absolute path of the main file */
	char *dir;                      /* its directory */
	char *user;                     /* drop to this user when root */
	char *state_dir;
	char *pid_file;
	char *log_level;
	char *syslog_facility;
	char *database;                 /* "embedded" or a postgresql:// URI */
	char *pg_bindir;                /* "" = search */
	char *admin_token;              /* inline token, or "" */
	char *admin_token_file;         /* resolved: where the token lives */
	int admin_token_generate;       /* create admin_token_file if missing */
	long workers;
	long shutdown_timeout_ms;
	char *templates_dir;
	struct conf_http http;
	char *campaigns_dir;
	char *notifications_dir;
	char *forms_dir;                /* conf/forms: NAME.conf per web form */
	char *drips_dir;                /* conf/drips: NAME.conf per drip */
	char *routing_path;             /* "" = routing.conf if it exists */
	char *scoring_path;             /* "" = scoring.conf if it exists */
	char *sms_path;                 /* "" = sms.conf if it exists */
	char *default_country;          /* of phone numbers without one; "" */
	struct conf_mail mail;
	struct conf_track track;
	struct conf_list *lists;
	size_t nlists;
	struct conf_mailbox *mailboxes;
	size_t nmailboxes;
	struct tmpl_set *templates;     /* every template, compiled */
	struct dkim_keys *dkim;         /* signing keys, parsed once */
	struct campaign_set *campaigns; /* conf/campaigns/NAME.conf */
	struct campaign_set *notifications; /* conf/notifications/NAME.conf */
	struct form_set *forms;         /* conf/forms/NAME.conf */
	struct drip_set *drips;         /* conf/drips/NAME.conf */
	struct route_conf *routing;     /* routing.conf, or NULL: no routing */
	struct score_conf *scoring;     /* scoring.conf, or NULL: no scoring */
	struct smsgw_conf *sms;         /* sms.conf, or NULL: no SMS */
	int refs;                       /* conf_ref/conf_unref (atomic) */
};

/* Workers keep the configuration they started with alive across a
 * reload: take a reference before handing it to a thread. */
struct conf *conf_ref(struct conf *c);
void conf_unref(struct conf *c);

/*
 * Load and check path. Returns a new conf (free with conf_free) or NULL,
 * with every problem appended to errs.
 */
struct conf *conf_load(const char *path, struct cfgfile_errors *errs);
/* Same as conf_unref. */
void conf_free(struct conf *c);

/* The default configuration file: $sysconfdir/leadcast/leadcast.conf if it
 * exists, else ./conf/leadcast.conf. Static storage. */
const char *conf_default_path(void);

/*
 * Names of restart-only settings that differ between a and b, joined by
 * ", " into out (size n); returns how many differ.
 */
int conf_restart_needed(const struct conf *a, const struct conf *b, char *out,
    size_t n);

/* The declared list called name, or NULL. */
const struct conf_list *conf_list_find(const struct conf *c, const char *name);

/* The mailbox called name, or NULL. */
const struct conf_mailbox *conf_mailbox_find(const struct conf *c,
    const char *name);
/* 1 if a and b are the same mailbox with the same settings. */
int conf_mailbox_same(const struct conf_mailbox *a,
    const struct conf_mailbox *b);

/* Is this an embedded-database configuration? */
int conf_db_embedded(const struct conf *c);

/*
 * Read the admin token (inline or from its file) into out (size n).
 * 0, or -1 with a message in err (size errn).
 */
int conf_admin_token(const struct conf *c, char *out, size_t n, char *err,
    size_t errn);

/* ---- generic binding, for modules with their own configuration files ---- */

enum conf_type { CONF_STR, CONF_PATH, CONF_INT, CONF_BOOL, CONF_DURATION,
	CONF_SIZE, CONF_ENUM, CONF_STRLIST };

#define CONF_RESTART 0x1                /* a change needs a restart */

struct conf_key {
	const char *name;
	enum conf_type type;
	size_t off;                     /* offset of the field in the target */
	const char *def;                /* default, as it would be written */
	long long min, max;             /* INT, DURATION (ms), SIZE (bytes) */
	const char *const *choices;     /* ENUM: NULL-terminated */
	unsigned flags;
};

/*
 * Bind the values of section's children to target per keys (defaults for
 * absent keys), marking consumed nodes used. Errors go to errs; returns the
 * number of errors added. Field types: STR/PATH/ENUM char *, INT/DURATION
 * long (DURATION in milliseconds), BOOL int, SIZE size_t, STRLIST struct
 * conf_strlist. Strings are owned by target: release with conf_unbind().
 */
int conf_bind(const struct conf_key *keys, struct cfgfile_node *section,
    void *target, const char *basedir, struct cfgfile_errors *errs);
void conf_unbind(const struct conf_key *keys, void *target);
/* Report every child of section not marked used as unknown. */
int conf_check_unknown(struct cfgfile_node *section, struct cfgfile_errors *errs);
/* Parse a duration ("500ms", "30s", "5m", "2h", "7d", bare = seconds) into ms. */
int conf_parse_duration(const char *s, long *ms);
/* Parse a size ("512", "64K", "1M", "2G") into bytes. */
int conf_parse_size(const char *s, size_t *bytes);
/* Read a secret from a file: its first line, without the line end. A new
 * string (caller frees), or NULL with the reason in err (size n). */
char *conf_read_secret(const char *path, char *err, size_t n);
/* Split "host:port" or "[v6]:port" into host (size hn) and port. */
int conf_parse_hostport(const char *s, char *host, size_t hn, int *port);

#endif
