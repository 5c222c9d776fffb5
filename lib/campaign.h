/*
 * campaign - newsletter definitions: conf/campaigns/NAME.conf files, each
 * naming its audience (lists plus a condition), its sender, subject and
 * templates, and its schedule. A campaign with channel = sms is a text
 * message to leads instead: its text template (templates/sms/...), an
 * audience (lists optional), quiet hours in the lead's time zone, the
 * longest text it may send and the gateway. Loaded with the configuration and checked
 * then: unknown templates, a bad audience condition, an invalid address or
 * schedule are errors with file:line:col, and the configuration does not
 * load half-way. Definitions are immutable once loaded.
 * It does not touch the database or send anything (sender.c does).
 */
#ifndef LEADCAST_CAMPAIGN_H
#define LEADCAST_CAMPAIGN_H

#include <stddef.h>
#include <time.h>

#include "cfgfile.h"
#include "conf.h"
#include "quiet.h"

struct cond;
struct tmpl;
struct tmpl_set;

#define CAMPAIGN_NAME_MAX 64

struct campaign_def {
	char *name;                     /* the file name without .conf */
	char *file;
	/* settings as written */
	char *from_src, *reply_to_src, *subject_src, *preheader_src;
	char *html_name, *text_name;
	struct conf_strlist lists;
	char *audience_src;
	char *schedule_src;
	long rate;                      /* messages per second, 0 = no limit */
	char *channel_src;              /* email or sms */
	char *quiet_src, *time_zone, *gateway;   /* sms */
	long max_segments;              /* sms */
	/* compiled */
	struct tmpl *from, *reply_to, *subject, *preheader;  /* owned; NULL if "" */
	const struct tmpl *html, *text; /* in the template set; either may be NULL */
	struct cond *audience;          /* owned; NULL = everyone on the lists */
	time_t scheduled_at;            /* 0 = started by hand */
	int notification;               /* a notification, not a newsletter */
	int sms;                        /* channel = sms: text is the SMS
	                                 * template; no html, from, subject */
	struct quiet quiet;             /* sms: none unless quiet_hours */
	struct cfgfile_pos lists_pos;   /* file is c->file */
};

struct campaign_set {
	struct campaign_def **v;
	size_t n;
};

/*
 * Load every NAME.conf in dir (a missing directory is an empty set). Templates
 * are looked up in templates. Errors go to errs; returns their number.
 * The set (possibly partial on error) is freed with campaign_set_free().
 */
int campaign_load_dir(const char *dir, const struct tmpl_set *templates,
    struct campaign_set *out, struct cfgfile_errors *errs);
/*
 * The same for notifications (conf/notifications/NAME.conf): one-off
 * messages to one address (confirmations, rep alerts), written like a
 * campaign without lists, audience or schedule.
 */
int campaign_load_notifications(const char *dir,
    const struct tmpl_set *templates, struct campaign_set *out,
    struct cfgfile_errors *errs);
void campaign_set_free(struct campaign_set *s);
/*
 * A drip's email step (drip.c): the campaign keys of section sec (from,
 * reply_to, subject, preheader, html, text), from and reply_to defaulting
 * to the drip's; checked like a notification. Keys other than those are
 * left unused for the caller to check. NULL on ENOMEM; errors go to errs.
 * Free with campaign_def_free.
 */
struct campaign_def *campaign_load_step(struct cfgfile_node *sec,
    const char *file, const char *name, const struct tmpl_set *templates,
    const char *from, const char *reply_to, struct cfgfile_errors *errs);
void campaign_def_free(struct campaign_def *c);
/* Change c's name (before sharing it). 0, or -1 on ENOMEM. */
int campaign_def_rename(struct campaign_def *c, const char *name);
const struct campaign_def *campaign_find(const struct campaign_set *s,
    const char *name);

/*
 * Parse "YYYY-MM-DD HH:MM[:SS] [Zone/Name]" (UTC without a zone) into *t.
 * 0, or -1 with err.
 */
int campaign_parse_time(const char *s, time_t *t, char *err, size_t n);

/*
 * Split a rendered "Display Name <addr@example.com>" (or a bare address)
 * into display (may come out empty) and addr. 0, or -1 if malformed.
 */
int campaign_split_address(const char *s, char *display, size_t dn,
    char *addr, size_t an);

#endif
