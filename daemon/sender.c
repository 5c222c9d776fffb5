/*
 * sender - the delivery engine: turns campaigns into delivery rows, claims
 * due rows in batches (FOR UPDATE SKIP LOCKED, with a lease), composes and
 * sends each batch on the worker pool, and records every recipient's
 * outcome in one statement per batch.
 *
 * Everything here runs on the loop thread except batch_work(), which runs
 * on a worker with its own reference to the configuration. A crashed
 * daemon's leases lapse and its rows are claimed again; at start, rows of
 * dead daemons on this host are released at once. So no recipient is
 * skipped, and duplicates are bounded by the batches in flight at a crash.
 * Pause and cancel stop new claims at once; a batch in flight is small and
 * finishes. It does not parse bounces coming back (the mailbox reader does).
 */
#include "config.h"
#include "daemon.h"

#include <errno.h>
#include <event2/event.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>

#include "buf.h"
#include "campaign.h"
#include "compose.h"
#include "cond.h"
#include "db.h"
#include "dns.h"
#include "dsn.h"
#include "lead.h"
#include "log.h"
#include "maildir.h"
#include "mime.h"
#include "metrics.h"
#include "smtp.h"
#include "workq.h"

#define TICK_MS          250
#define STATS_EVERY_S    5
#define MAX_DELAY_S      (6 * 3600)

/* ---- the link cache: (campaign, url, tag) -> link id, shared with workers */

struct link {
	uint64_t campaign_id, id;
	char *key;                      /* url "\\n" tag */
	struct link *next;
};

#define LINK_BUCKETS 4096

struct sender {
	struct lc_daemon *d;
	struct event *tick;
	int active;                     /* batches in flight */
	struct batch *ahead;            /* claimed while every connection was
					 * busy: posted as soon as one frees,
					 * so no worker waits for a claim */
	struct db *db;                  /* our session: claims and records,
					 * committed asynchronously (a lost
					 * claim lapses, a lost record means
					 * a message sent twice, never lost) */
	int claiming;                   /* a claim query in flight */
	int ramp;                       /* after idle: claims of a quarter
					 * batch until every connection has
					 * one, so that the first messages go
					 * out after a quarter of the work */
	int kicked;                     /* a kick came during a claim */
	time_t last_stats, last_sweep;
	double tokens;                  /* global rate limiter */
	struct timespec last_refill;
	pthread_mutex_t links_lock;
	struct link *links[LINK_BUCKETS];
	pthread_mutex_t domains_lock;
	struct domain *domains[1024];
	struct metric *m_sent, *m_deferred, *m_failed, *m_suppressed;
	long long queued, deferred_now, sending;
	long long sent_prev;
	double rate;                    /* messages/s over the last stats period */
	char **sched_done;              /* scheduled campaigns handled this run */
	size_t nsched_done;
	/* running campaigns, for per-campaign rates (refreshed each second) */
	struct crate {
		uint64_t id;
		long rate;              /* messages/s, 0 = no limit of its own */
		double tokens;
		struct timespec refill;
		uint64_t cursor;        /* its own claims' cursor */
	} *crates;
	size_t ncrates, rr;
	int refreshing;
	time_t last_refresh;
	long claim_want;                /* rows asked for by the claim in flight */
	struct crate *claim_from;       /* its campaign bucket, or NULL */
	struct crate *pending;          /* a refresh waiting for the claim */
	size_t npending;
	/* Claims go on from the last id claimed; a short claim means the end
	 * was reached, and the next one starts over from the beginning (for
	 * retries come due and lapsed leases). */
	uint64_t cursor;
	/* Filling: started newsletters' audiences made deliveries in steps,
	 * on a session of their own, so that claims never wait behind a
	 * step; one step at a time (fill_step()). */
	struct db *fill_db;
	int filling;                    /* a step in flight */
	int fill_again;                 /* a kick came during a step */
	uint64_t analyzed;              /* the campaign a step last refreshed
					 * the statistics for */
};

static void fill_step(struct sender *s);

static unsigned
link_hash(uint64_t campaign, const char *key)
{
	unsigned h = (unsigned)campaign * 2654435761u;

	for (; *key; key++)
		h = (h ^ (unsigned char)*key) * 16777619u;
	return h % LINK_BUCKETS;
}

static uint64_t
link_lookup(struct sender *s, uint64_t campaign, const char *url,
    const char *tag)
{
	char key[8300];
	uint64_t id = 0;

	snprintf(key, sizeof(key), "%s\n%s", url, tag);
	pthread_mutex_lock(&s->links_lock);
	for (struct link *l = s->links[link_hash(campaign, key)]; l; l = l->next)
		if (l->campaign_id == campaign && strcmp(l->key, key) == 0) {
			id = l->id;
			break;
		}
	pthread_mutex_unlock(&s->links_lock);
	return id;
}

static void
link_store(struct sender *s, uint64_t campaign, const char *url,
    const char *tag, uint64_t id)
{
	char key[8300];
	struct link *l;
	unsigned h;

	if (link_lookup(s, campaign, url, tag))
		return;
	snprintf(key, sizeof(key), "%s\n%s", url, tag);
	if (!(l = calloc(1, sizeof(*l))) || !(l->key = strdup(key))) {
		free(l);
		return;
	}
	l->campaign_id = campaign;
	l->id = id;
	h = link_hash(campaign, key);
	pthread_mutex_lock(&s->links_lock);
	l->next = s->links[h];
	s->links[h] = l;
	pthread_mutex_unlock(&s->links_lock);
}

/* ---- a batch --------------------------------------------------------------- */

struct item {
	uint64_t id, campaign_id;
	char *campaign, *email;
	json_t *lead;                   /* parsed on the worker, from: */
	char *lead_text;                /* the row's JSON (claims) */
	int attempts, blocked;
	long long age_s;                /* since the row was created */
	/* outcome */
	const char *status;             /* sent deferred failed suppressed queued */
	char message_id[256];
	int code, hard;
	const char *cls, *reason;       /* lib/dsn's, for an answer >= 400 */
	char smtp_status[16];
	char text[300];
	long retry_s;                   /* deferred: retry after this, if set */
	double sent_at;                 /* sent: when the transport took it */
	struct compose_out out;
};

struct batch {
	struct sender *s;
	struct conf *conf;              /* a reference, for the worker */
	struct item *items;
	size_t n;
	struct compose_links missing;   /* per batch: links to add */
	uint64_t missing_campaign;
	sender_action_fn *done_cb;      /* a one-off send (test): report here */
	void *done_arg;
};

static void
batch_free(struct batch *b)
{
	for (size_t i = 0; i < b->n; i++) {
		free(b->items[i].campaign);
		free(b->items[i].email);
		json_decref(b->items[i].lead);
		free(b->items[i].lead_text);
		compose_out_free(&b->items[i].out);
	}
	free(b->items);
	compose_links_free(&b->missing);
	conf_unref(b->conf);
	free(b);
}

struct spec_arg {
	struct sender *s;
	uint64_t campaign_id;
};

static uint64_t
spec_link_id(void *arg, const char *url, const char *tag)
{
	struct spec_arg *a = arg;

	return link_lookup(a->s, a->campaign_id, url, tag);
}

/* Fill a compose spec for a campaign definition. */
static void
spec_for(struct compose_spec *sp, struct spec_arg *sa, const struct conf *c,
    const struct campaign_def *def, uint64_t campaign_id,
    const struct token_key *key)
{
	memset(sp, 0, sizeof(*sp));
	sp->name = def->name;
	sp->campaign_id = campaign_id;
	sp->from = def->from;
	sp->reply_to = def->reply_to;
	sp->subject = def->subject;
	sp->preheader = def->preheader;
	sp->html = def->html;
	sp->text = def->text;
	sp->partials = c->templates;
	sp->bulk = !def->notification;        /* list headers: newsletters */
	sp->track = 1;
	sp->public_url = c->http.public_url;
	sp->bounce_domain = c->mail.bounce_domain;
	sp->unsubscribe_mailto = c->mail.unsubscribe_mailto;
	sp->list_id_domain = c->mail.list_id_domain;
	sp->max_size = c->mail.max_message_size;
	sp->key = key;
	sp->dkim = c->dkim;
	sp->link_id = spec_link_id;
	sp->link_arg = sa;
}

/* The wall clock, in seconds: a delivery's sent_at is the moment the
 * transport accepted the message, not the later moment it is recorded. */
static double
wall_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
set_result(struct item *it, const struct smtp_msg *m)
{
	it->code = m->code;
	snprintf(it->smtp_status, sizeof(it->smtp_status), "%s", m->status);
	snprintf(it->text, sizeof(it->text), "%s", m->text);
	it->status = m->outcome == SMTP_SENT ? "sent" :
	    m->outcome == SMTP_FAILED ? "failed" : "deferred";
	if (m->outcome == SMTP_SENT)
		it->sent_at = wall_now();
	/* an answer of 400 or more is classified as a bounce report would be
	 * (lib/dsn): hard only when the address itself is bad */
	it->cls = NULL;
	it->reason = NULL;
	it->hard = 0;
	if (m->code >= 400) {
		struct dsn_rcpt r;

		memset(&r, 0, sizeof(r));
		r.smtp_code = m->code;
		snprintf(r.status, sizeof(r.status), "%s", m->status);
		snprintf(r.diagnostic, sizeof(r.diagnostic), "%s", m->text);
		snprintf(r.command, sizeof(r.command), "%s", m->command);
		snprintf(r.diagnostic_type, sizeof(r.diagnostic_type), "smtp");
		dsn_classify(&r);
		it->cls = dsn_class_name(r.cls);
		it->reason = dsn_reason_name(r.reason);
		it->hard = m->outcome == SMTP_FAILED && r.cls == DSN_HARD;
	}
}

/* ---- per-domain limits (mx transport) ------------------------------------------ */

struct domain {
	char name[256];
	int sessions;                   /* open now */
	double tokens;                  /* messages it may take now */
	struct timespec refill;
	struct domain *next;
};

#define DOMAIN_BUCKETS 1024

static struct domain *
domain_get(struct sender *s, const char *name)
{
	unsigned h = (unsigned)link_hash(0, name) % DOMAIN_BUCKETS;
	struct domain *d;

	for (d = s->domains[h]; d; d = d->next)
		if (strcmp(d->name, name) == 0)
			return d;
	if (!(d = calloc(1, sizeof(*d))))
		return NULL;
	snprintf(d->name, sizeof(d->name), "%s", name);
	clock_gettime(CLOCK_MONOTONIC, &d->refill);
	d->tokens = -1;                 /* full on first use */
	d->next = s->domains[h];
	s->domains[h] = d;
	return d;
}

/*
 * Take a session to domain and up to want messages' worth of its rate.
 * Returns how many messages may go now (0: wait); *wait_s says how long.
 */
static size_t
domain_acquire(struct sender *s, const struct conf_mail *mc, const char *name,
    size_t want, long *wait_s)
{
	struct domain *d;
	struct timespec now;
	size_t n = want;

	*wait_s = 30;
	pthread_mutex_lock(&s->domains_lock);
	if (!(d = domain_get(s, name)) || d->sessions >= mc->domain_connections) {
		pthread_mutex_unlock(&s->domains_lock);
		return 0;
	}
	if (mc->domain_rate > 0) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (d->tokens < 0)
			d->tokens = (double)mc->domain_rate;
		d->tokens += ((double)(now.tv_sec - d->refill.tv_sec) +
		    (double)(now.tv_nsec - d->refill.tv_nsec) / 1e9) *
		    (double)mc->domain_rate;
		if (d->tokens > (double)mc->domain_rate)
			d->tokens = (double)mc->domain_rate;
		d->refill = now;
		if (d->tokens < (double)n)
			n = (size_t)d->tokens;
		if (n == 0) {
			*wait_s = 1;
			pthread_mutex_unlock(&s->domains_lock);
			return 0;
		}
		d->tokens -= (double)n;
		*wait_s = (long)((double)(want - n) / (double)mc->domain_rate) + 1;
	}
	d->sessions++;
	pthread_mutex_unlock(&s->domains_lock);
	return n;
}

static void
domain_release(struct sender *s, const char *name)
{
	struct domain *d;

	pthread_mutex_lock(&s->domains_lock);
	if ((d = domain_get(s, name)) != NULL && d->sessions > 0)
		d->sessions--;
	pthread_mutex_unlock(&s->domains_lock);
}

static const char *
domain_of(const char *addr)
{
	const char *at = strrchr(addr, '@');

	return at ? at + 1 : addr;
}

static int
by_domain(const void *a, const void *b)
{
	const struct item *x = *(struct item *const *)a;
	const struct item *y = *(struct item *const *)b;
	int c = strcasecmp(domain_of(x->email), domain_of(y->email));

	return c ? c : (x->id > y->id) - (x->id < y->id);
}

/*
 * mx: the messages of one recipient domain go in one session to its best
 * MX host that answers, within the domain's session and rate limits; what
 * does not fit now is deferred briefly.
 */
static void
mx_send(struct batch *b, struct item **todo, size_t n)
{
	const struct conf_mail *mc = &b->conf->mail;
	struct smtp_msg *msgs = calloc(n, sizeof(*msgs));
	char err[300];

	if (!msgs) {
		for (size_t i = 0; i < n; i++)
			todo[i]->status = "deferred";
		return;
	}
	qsort(todo, n, sizeof(*todo), by_domain);
	for (size_t i = 0; i < n; ) {
		const char *dom = domain_of(todo[i]->email);
		struct dns_mx mx[16];
		size_t k = i, go;
		long wait_s;
		int nmx;

		while (k < n && !strcasecmp(domain_of(todo[k]->email), dom))
			k++;
		for (size_t j = i; j < k; j++) {
			memset(&msgs[j], 0, sizeof(msgs[j]));
			msgs[j].mail_from = todo[j]->out.mail_from;
			msgs[j].rcpt = todo[j]->email;
			msgs[j].data = todo[j]->out.msg.data;
			msgs[j].len = todo[j]->out.msg.len;
		}
		go = domain_acquire(b->s, mc, dom, k - i, &wait_s);
		for (size_t j = i + go; j < k; j++) {
			todo[j]->status = "deferred";
			todo[j]->retry_s = wait_s;
			snprintf(todo[j]->text, sizeof(todo[j]->text), "throttled: "
			    "%s is at its session or rate limit", dom);
		}
		if (go == 0) {
			i = k;
			continue;
		}
		nmx = dns_mx(dom, mx, 16, err, sizeof(err));
		for (size_t j = i; j < i + go; j++) {
			if (nmx > 0)
				continue;
			msgs[j].outcome = nmx == 0 ? SMTP_FAILED : SMTP_DEFERRED;
			msgs[j].code = nmx == 0 ? 550 : 0;
			snprintf(msgs[j].status, sizeof(msgs[j].status), "%s",
			    nmx == 0 ? "5.1.2" : "4.4.3");
			snprintf(msgs[j].text, sizeof(msgs[j].text), "%.250s", err);
		}
		for (size_t j = i; nmx > 0 && j < i + go; j++)
			msgs[j].outcome = SMTP_DEFERRED;
		for (int h = 0; h < nmx; h++) {
			/* MX hosts: opportunistic, unverified TLS (there is no
			 * name to check without DANE or MTA-STS) */
			struct smtp_relay r = { mx[h].host, mc->mx_port,
			    !strcmp(mc->tls, "none") ? SMTP_TLS_NONE :
			    SMTP_TLS_OPPORTUNISTIC, 0, mc->ssl_ctx, NULL, NULL,
			    *mc->helo ? mc->helo : NULL, mc->timeout_ms };
			struct smtp_session *ss = smtp_open(&r, err, sizeof(err));
			int left = 0;

			/* the next host gets the messages this one never
			 * answered (all of them if it could not be reached),
			 * and only those: none goes out twice */
			for (size_t j = i; j < i + go; j++) {
				if (msgs[j].code != 0 ||
				    msgs[j].outcome == SMTP_FAILED)
					continue;
				if (ss)
					smtp_add(ss, &msgs[j]);
				else
					snprintf(msgs[j].text, sizeof(msgs[j].text),
					    "%.250s", err);
			}
			smtp_close(ss);
			for (size_t j = i; j < i + go; j++)
				left |= msgs[j].code == 0 &&
				    msgs[j].outcome == SMTP_DEFERRED;
			if (!left)
				break;
		}
		domain_release(b->s, dom);
		for (size_t j = i; j < i + go; j++)
			set_result(todo[j], &msgs[j]);
		i = k;
	}
	free(msgs);
}

/* The relay of the smtp:// transport, from the configuration. */
static struct smtp_relay
relay_of(const struct conf_mail *mc)
{
	struct smtp_relay r = {
		mc->smtp_host, mc->smtp_port,
		!strcmp(mc->tls, "required") ? SMTP_TLS_REQUIRED :
		!strcmp(mc->tls, "none") ? SMTP_TLS_NONE :
		SMTP_TLS_OPPORTUNISTIC, mc->tls_verify, mc->ssl_ctx,
		*mc->smtp_user ? mc->smtp_user : NULL,
		mc->smtp_password, *mc->helo ? mc->helo : NULL,
		mc->timeout_ms
	};

	return r;
}

/* What composing the items of one batch shares (worker thread). */
struct composer {
	struct batch *b;
	struct conf *drip_conf;         /* holds a drip step's def alive */
	const struct campaign_def *def;
	uint64_t def_id;
	struct compose_spec sp;
	struct spec_arg sa;
};

/* Add the links out lacks to the batch's (one campaign's per batch). */
static void
note_missing(struct batch *b, uint64_t campaign, const struct compose_links *l)
{
	if (b->missing.n > 0 && b->missing_campaign != campaign)
		return;
	b->missing_campaign = campaign;
	for (size_t k = 0; k < l->n; k++) {
		int dup = 0;

		for (size_t j = 0; j < b->missing.n; j++)
			dup |= !strcmp(b->missing.url[j], l->url[k]) &&
			    !strcmp(b->missing.tag[j], l->tag[k]);
		if (dup)
			continue;
		b->missing.url = realloc(b->missing.url, (b->missing.n + 1) *
		    sizeof(char *));
		b->missing.tag = realloc(b->missing.tag, (b->missing.n + 1) *
		    sizeof(char *));
		if (!b->missing.url || !b->missing.tag)
			abort();
		b->missing.url[b->missing.n] = strdup(l->url[k]);
		b->missing.tag[b->missing.n++] = strdup(l->tag[k]);
	}
}

/* Compose item it into out (reset first): 1 if it is to be sent, else 0
 * and its status says why not. */
static int
compose_item(struct composer *c, struct item *it, struct compose_out *out)
{
	struct batch *b = c->b;

	if (it->blocked) {
		it->status = "suppressed";
		snprintf(it->text, sizeof(it->text), "unsubscribed or "
		    "suppressed");
		return 0;
	}
	if (it->campaign_id != c->def_id) {
		int notify = !strncmp(it->campaign, "notify/", 7);

		c->def_id = it->campaign_id;
		conf_unref(c->drip_conf);
		c->drip_conf = NULL;
		if (!strncmp(it->campaign, "drip/", 5))
			c->def = drip_email_def(b->s->d->drip, it->campaign,
			    &c->drip_conf);
		else
			c->def = notify ? campaign_find(b->conf->notifications,
			    it->campaign + 7) : campaign_find(b->conf->campaigns,
			    it->campaign);
		c->sa.s = b->s;
		c->sa.campaign_id = c->def_id;
		if (c->def)
			spec_for(&c->sp, &c->sa, b->conf, c->def, c->def_id,
			    &b->s->d->url_key);
	}
	if (!c->def) {
		it->status = "deferred";
		snprintf(it->text, sizeof(it->text), "campaign %s is not "
		    "in the configuration", it->campaign);
		/* a drip's versions are being loaded (a start, another
		 * node's new version): soon, and not counted as an attempt
		 * (for ten minutes; then retried and given up as usual) */
		if (!strncmp(it->campaign, "drip/", 5) && it->age_s < 600)
			it->retry_s = 2;
		return 0;
	}
	compose_out_reset(out);
	if (!it->lead && it->lead_text)         /* the loop only copied it */
		it->lead = json_loads(it->lead_text, 0, NULL);
	if (!it->lead)
		it->lead = json_object();
	switch (compose_message(&c->sp, it->id, it->email, it->lead, out)) {
	case COMPOSE_OK:
		snprintf(it->message_id, sizeof(it->message_id), "%s",
		    out->message_id);
		return 1;
	case COMPOSE_NEED_LINKS:
		it->status = "queued";  /* again, once links exist */
		note_missing(b, c->def_id, &out->missing);
		return 0;
	case COMPOSE_FAILED:
		break;
	}
	it->status = "failed";
	snprintf(it->text, sizeof(it->text), "%s", out->err);
	return 0;
}

static void
maildir_item(const struct conf_mail *mc, struct item *it,
    const struct compose_out *out)
{
	struct buf full;
	char err[300];
	int r;

	/* as a delivery agent would: the envelope sender first */
	buf_init(&full, 0);
	buf_printf(&full, "Return-Path: <%s>\r\n", out->mail_from);
	buf_append(&full, out->msg.data, out->msg.len);
	r = maildir_deliver(mc->maildir, full.data, full.len, NULL, 0, err,
	    sizeof(err));
	buf_free(&full);
	if (r == 0) {
		it->status = "sent";
		it->sent_at = wall_now();
		it->code = 250;
		snprintf(it->text, sizeof(it->text), "delivered to maildir");
	} else {
		it->status = "deferred";
		snprintf(it->text, sizeof(it->text), "%s", err);
	}
}

/*
 * smtp:// transport: the items are composed, each into its own output,
 * and handed to the session, which sends them from there when it runs
 * (smtp_close()); then the outputs are freed. If the session cannot take
 * more, the items not yet composed wait (deferred) without being
 * composed.
 */
static void
relay_batch(struct composer *c)
{
	struct batch *b = c->b;
	struct smtp_relay r = relay_of(&b->conf->mail);
	struct smtp_msg *msgs = calloc(b->n ? b->n : 1, sizeof(*msgs));
	struct item **sent = calloc(b->n ? b->n : 1, sizeof(*sent));
	struct smtp_session *ss = NULL;
	char err[256] = "";
	size_t k = 0;

	if (!msgs || !sent) {
		for (size_t i = 0; i < b->n; i++)
			b->items[i].status = "queued";
		goto out;
	}
	for (size_t i = 0; i < b->n; i++) {
		struct item *it = &b->items[i];
		struct compose_out *o = &it->out;

		if (err[0]) {
			it->status = "deferred";
			snprintf(it->text, sizeof(it->text), "%s", err);
			continue;
		}
		if (!compose_item(c, it, o))
			continue;
		if (!ss && !(ss = smtp_open(&r, err, sizeof(err)))) {
			it->status = "deferred";
			snprintf(it->text, sizeof(it->text), "%s", err);
			continue;
		}
		msgs[k].mail_from = o->mail_from;
		msgs[k].rcpt = it->email;
		msgs[k].data = o->msg.data;
		msgs[k].len = o->msg.len;
		sent[k] = it;
		if (smtp_add(ss, &msgs[k]) < 0)
			snprintf(err, sizeof(err), "%s", smtp_error(ss));
		k++;
	}
	smtp_close(ss);
	for (size_t j = 0; j < k; j++)
		set_result(sent[j], &msgs[j]);
out:
	/* the composed text is not needed on the loop */
	for (size_t i = 0; i < b->n; i++)
		buf_free(&b->items[i].out.msg);
	free(msgs);
	free(sent);
}

/* Worker thread: compose each item and deliver it. The smtp:// relay and
 * maildirs take each message as it is made; mx needs them all first, to
 * sort them by recipient domain. */
static void
batch_compose_send(struct composer *cp)
{
	struct batch *b = cp->b;
	const struct conf_mail *mc = &b->conf->mail;
	struct item **todo;
	size_t ntodo = 0;

	if (mc->kind == CONF_SMTP) {
		relay_batch(cp);
		return;
	}
	if (mc->kind == CONF_MAILDIR) {
		struct compose_out out;

		memset(&out, 0, sizeof(out));
		for (size_t i = 0; i < b->n; i++)
			if (compose_item(cp, &b->items[i], &out))
				maildir_item(mc, &b->items[i], &out);
		compose_out_free(&out);
		return;
	}
	if (!(todo = calloc(b->n ? b->n : 1, sizeof(*todo)))) {
		for (size_t i = 0; i < b->n; i++)
			b->items[i].status = "queued";
		return;
	}
	for (size_t i = 0; i < b->n; i++)
		if (compose_item(cp, &b->items[i], &b->items[i].out))
			todo[ntodo++] = &b->items[i];
	if (ntodo)
		mx_send(b, todo, ntodo);
	free(todo);
	/* the composed text is not needed on the loop */
	for (size_t i = 0; i < b->n; i++)
		buf_free(&b->items[i].out.msg);
}

static void
batch_work(void *arg)
{
	struct composer c;

	memset(&c, 0, sizeof(c));
	c.b = arg;
	batch_compose_send(&c);
	conf_unref(c.drip_conf);
}

static void sender_claim(struct sender *s);

static void batch_done(void *arg);

/* Hand a claimed batch to a worker (loop thread). -1 if the pool would
 * not take it: the batch is freed, its leases lapse and it is claimed
 * again later. */
static int
batch_post(struct sender *s, struct batch *b)
{
	s->active++;
	if (s->active >= s->d->conf->mail.connections)
		s->ramp = 0;
	if (workq_post(s->d->workq, batch_work, batch_done, b) < 0) {
		s->active--;
		batch_free(b);
		return -1;
	}
	return 0;
}

/* Take the running campaigns fetched by the last refresh, then claim. */
static void
apply_pending(struct sender *s)
{
	if (!s->pending)
		return;
	free(s->crates);
	s->crates = s->pending;
	s->ncrates = s->npending;
	s->pending = NULL;
	s->npending = 0;
	s->claim_from = NULL;
	sender_claim(s);
}

static void
on_recorded(void *arg, const PGresult *res, const char *err)
{
	struct sender *s = arg;

	(void)res;
	if (err)
		log_error("recording deliveries: %s (their leases will lapse "
		    "and they will be retried)", err);
	(void)s;
}

static void
on_links_added(void *arg, const PGresult *res, const char *err)
{
	struct batch *b = arg;

	if (err) {
		log_error("adding campaign links: %s", err);
	} else {
		for (int i = 0; i < PQntuples(res); i++)
			link_store(b->s, b->missing_campaign,
			    PQgetvalue(res, i, 1), PQgetvalue(res, i, 2),
			    strtoull(PQgetvalue(res, i, 0), NULL, 10));
	}
	/* a test copy waited for its links: now it can be composed again */
	if (b->done_cb)
		b->done_cb(b->done_arg, 502, json_pack("{s:s, s:s}", "to",
		    b->items[0].email, "status", "deferred"));
	batch_free(b);
}

/* Loop thread: record the batch's outcomes, add missing links. */
static void
batch_done(void *arg)
{
	struct batch *b = arg;
	struct sender *s = b->s;
	struct conf_mail *mc = &b->conf->mail;
	struct buf a[11];
	char node[32], limit[32], window[32];
	const char *p[14];

	s->active--;
	if (s->ahead) {         /* the next batch, claimed meanwhile */
		struct batch *next = s->ahead;

		s->ahead = NULL;
		batch_post(s, next);
	}
	for (int k = 0; k < 11; k++)
		buf_init(&a[k], 0);
	for (size_t i = 0; i < b->n; i++) {
		struct item *it = &b->items[i];
		char num[32];
		long long delay = 0;

		if (!it->status)
			it->status = "queued";
		if (b->done_cb && !strcmp(it->status, "queued"))
			it->status = "cancelled";       /* a test copy: redone */
		if (strcmp(it->status, "deferred") == 0 && it->retry_s > 0) {
			delay = it->retry_s;    /* throttled, not failed: */
			it->attempts = 0;       /* not an attempt */
		} else if (strcmp(it->status, "deferred") == 0) {
			delay = (mc->retry_base_ms / 1000) << (it->attempts > 12 ?
			    12 : it->attempts - 1 < 0 ? 0 : it->attempts - 1);
			if (delay > MAX_DELAY_S)
				delay = MAX_DELAY_S;
			if ((it->age_s + delay) * 1000 > mc->retry_lifetime_ms) {
				it->status = "failed";
				snprintf(it->text + strlen(it->text),
				    sizeof(it->text) - strlen(it->text),
				    " (gave up after %d attempts)", it->attempts);
				/* a soft bounce: expired */
				it->cls = "soft";
				it->reason = "expired";
			}
		}
		if (!strcmp(it->status, "sent"))
			metric_add(s->m_sent, 1);
		else if (!strcmp(it->status, "deferred"))
			metric_add(s->m_deferred, 1);
		else if (!strcmp(it->status, "failed"))
			metric_add(s->m_failed, 1);
		else if (!strcmp(it->status, "suppressed"))
			metric_add(s->m_suppressed, 1);
		snprintf(num, sizeof(num), "%llu", (unsigned long long)it->id);
		db_array_add(&a[0], num);
		db_array_add(&a[1], it->status);
		db_array_add(&a[2], it->message_id[0] ? it->message_id : NULL);
		snprintf(num, sizeof(num), "%d", it->code);
		db_array_add(&a[3], it->code ? num : NULL);
		db_array_add(&a[4], it->smtp_status[0] ? it->smtp_status : NULL);
		db_array_add(&a[5], it->text[0] ? it->text : NULL);
		snprintf(num, sizeof(num), "%lld", delay);
		db_array_add(&a[6], num);
		db_array_add(&a[7], it->hard ? "t" : "f");
		snprintf(num, sizeof(num), "%.6f", it->sent_at);
		db_array_add(&a[8], it->sent_at > 0 ? num : NULL);
		db_array_add(&a[9], it->cls);
		db_array_add(&a[10], it->reason);
	}
	for (int k = 0; k < 9; k++)
		p[k] = db_array_end(&a[k]);
	snprintf(node, sizeof(node), "%lld", s->d->node_id);
	p[9] = node;
	p[10] = db_array_end(&a[9]);
	p[11] = db_array_end(&a[10]);
	snprintf(limit, sizeof(limit), "%ld", mc->soft_bounce_limit);
	snprintf(window, sizeof(window), "%ld", mc->soft_bounce_window_ms);
	p[12] = limit;
	p[13] = window;
	/* the failures are bounces: recorded by leadcast_bounce (migration
	 * 010), as the bounce reader records reports. The rows are found by
	 * id: "IS NOT DISTINCT FROM" keeps the guard on status out of any
	 * index condition, since the statistics never see the few rows being
	 * sent and would have the planner read every 'sending' entry of
	 * deliveries_campaign at each record (50 ms instead of 2). */
	db_query(s->db,
	    "WITH r AS (SELECT * FROM unnest($1::bigint[], $2::text[], "
	    "$3::text[], $4::int[], $5::text[], $6::text[], $7::int[], "
	    "$8::bool[], $9::float8[], $11::text[], $12::text[]) AS r(id, "
	    "status, message_id, code, smtp_status, smtp_message, delay_s, "
	    "hard, sent_at, cls, reason)), "
	    "u AS (UPDATE deliveries d SET status = r.status, "
	    "message_id = coalesce(r.message_id, d.message_id), "
	    "smtp_code = r.code, smtp_status = r.smtp_status, "
	    "smtp_message = r.smtp_message, sent_at = CASE WHEN r.status = "
	    "'sent' THEN coalesce(to_timestamp(r.sent_at), now()) ELSE "
	    "d.sent_at END, next_attempt_at = now() + "
	    "r.delay_s * interval '1 second', lease_until = NULL, "
	    "attempts = CASE WHEN r.status = 'queued' THEN d.attempts - 1 "
	    "ELSE d.attempts END, updated_at = now() FROM r WHERE d.id = r.id "
	    "AND d.status IS NOT DISTINCT FROM 'sending' AND d.node_id = $10 "
	    "RETURNING d.id, d.email, r.cls, r.reason, d.status, d.smtp_code, "
	    "d.smtp_status, d.smtp_message), "
	    "b AS (SELECT leadcast_bounce('smtp', NULL, NULL, 'smtp', 'smtp', "
	    "NULL, NULL, jsonb_build_object('class', u.cls, 'reason', "
	    "u.reason, 'email', u.email, 'status', u.smtp_status, 'code', "
	    "u.smtp_code, 'diagnostic', u.smtp_message), NULL, u.id, $13::int, "
	    "$14::bigint * interval '1 ms') FROM u WHERE u.status = 'failed' "
	    "AND u.cls IS NOT NULL) "
	    "SELECT (SELECT count(*) FROM u), (SELECT count(*) FROM b)", 14, p,
	    on_recorded, s);
	for (int k = 0; k < 11; k++)
		buf_free(&a[k]);
	if (b->done_cb && !b->missing.n) {
		struct item *it = &b->items[0];

		b->done_cb(b->done_arg, !strcmp(it->status, "sent") ? 200 : 502,
		    json_pack("{s:s, s:s, s:s?, s:s?}", "to", it->email, "status",
		    it->status, "message_id", it->message_id[0] ?
		    it->message_id : NULL, "response", it->text[0] ? it->text :
		    NULL));
		b->done_cb = NULL;
	}
	if (b->missing.n) {
		struct buf u, t;
		char cid[32];
		const char *lp[3];

		buf_init(&u, 0);
		buf_init(&t, 0);
		for (size_t i = 0; i < b->missing.n; i++) {
			db_array_add(&u, b->missing.url[i]);
			db_array_add(&t, b->missing.tag[i]);
		}
		snprintf(cid, sizeof(cid), "%llu",
		    (unsigned long long)b->missing_campaign);
		lp[0] = cid;
		lp[1] = db_array_end(&u);
		lp[2] = db_array_end(&t);
		/* insert, then read back every link of the campaign */
		db_query(s->db, "INSERT INTO campaign_links (campaign_id, url, "
		    "tag) SELECT $1, x.u, x.t FROM unnest($2::text[], $3::text[]) "
		    "AS x(u, t) ON CONFLICT DO NOTHING", 3, lp, NULL, NULL);
		db_query(s->db, "SELECT id, url, tag FROM campaign_links "
		    "WHERE campaign_id = $1", 1, lp, on_links_added, b);
		buf_free(&u);
		buf_free(&t);
	} else {
		batch_free(b);
	}
	sender_claim(s);        /* keep the pipe full */
}

/* ---- claiming ------------------------------------------------------------ */

static void
on_claimed(void *arg, const PGresult *res, const char *err)
{
	struct sender *s = arg;
	struct batch *b;
	int n, kicked;

	s->claiming = 0;
	n = err ? 0 : PQntuples(res);
	kicked = s->kicked;
	s->kicked = 0;
	{
		uint64_t *cur = s->claim_from ? &s->claim_from->cursor :
		    &s->cursor;

		if (!err && n < s->claim_want)
			*cur = 0;       /* the end: next time from the start */
		else if (n > 0)
			*cur = strtoull(PQgetvalue(res, n - 1, 0), NULL, 10);
	}
	/* what was not used goes back to the rate limiters */
	if (s->d->conf->mail.rate > 0)
		s->tokens += (double)(s->claim_want - n);
	if (s->claim_from && s->claim_from->rate > 0)
		s->claim_from->tokens += (double)(s->claim_want - n);
	if (s->pending) {               /* a refresh arrived meanwhile */
		s->claim_from = NULL;
		if (err || n == 0) {
			apply_pending(s);
			return;
		}
	}
	if (err) {
		log_warn("claiming deliveries: %s", err);
		return;
	}
	if (n == 0) {
		if (s->active == 0)
			s->ramp = 1;    /* idle: the next work ramps up */
		if (kicked)     /* rows committed after this claim began */
			sender_claim(s);
		return;
	}
	if (!(b = calloc(1, sizeof(*b))) ||
	    !(b->items = calloc((size_t)n, sizeof(*b->items)))) {
		free(b);
		return;         /* the lease lapses; they are claimed again */
	}
	b->s = s;
	b->conf = conf_ref(s->d->conf);
	b->n = (size_t)n;
	for (int i = 0; i < n; i++) {
		struct item *it = &b->items[i];

		it->id = strtoull(PQgetvalue(res, i, 0), NULL, 10);
		it->campaign_id = strtoull(PQgetvalue(res, i, 1), NULL, 10);
		it->campaign = strdup(PQgetvalue(res, i, 2));
		it->email = strdup(PQgetvalue(res, i, 3));
		it->attempts = atoi(PQgetvalue(res, i, 4));
		it->lead_text = strdup(PQgetvalue(res, i, 5));
		it->blocked = PQgetvalue(res, i, 6)[0] == 't';
		it->age_s = strtoll(PQgetvalue(res, i, 7), NULL, 10);
	}
	if (s->active >= s->d->conf->mail.connections && !s->ahead)
		s->ahead = b;   /* all busy: it waits for the first to finish */
	else if (batch_post(s, b) < 0)
		return;
	if (s->pending)
		apply_pending(s);       /* claims again, with the new list */
	else if (n == atoi(PQgetvalue(res, 0, 8)) || kicked)
		sender_claim(s);        /* a full batch, or a kick meanwhile */
}

static void
refill(struct sender *s)
{
	struct timespec now;
	long rate = s->d->conf->mail.rate;
	double dt;

	clock_gettime(CLOCK_MONOTONIC, &now);
	dt = (double)(now.tv_sec - s->last_refill.tv_sec) +
	    (double)(now.tv_nsec - s->last_refill.tv_nsec) / 1e9;
	s->last_refill = now;
	if (rate <= 0) {
		s->tokens = 1e12;
		return;
	}
	s->tokens += dt * (double)rate;
	if (s->tokens > (double)rate)
		s->tokens = (double)rate;       /* at most a second's burst */
}


static void
crate_refill(struct crate *c)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	c->tokens += ((double)(now.tv_sec - c->refill.tv_sec) +
	    (double)(now.tv_nsec - c->refill.tv_nsec) / 1e9) * (double)c->rate;
	if (c->tokens > (double)c->rate)
		c->tokens = (double)c->rate;
	c->refill = now;
}

static void
on_running(void *arg, const PGresult *res, const char *err)
{
	struct sender *s = arg;
	struct crate *v;
	size_t n;

	s->refreshing = 0;
	if (err || !(v = calloc((size_t)PQntuples(res) + 1, sizeof(*v))))
		return;
	n = (size_t)PQntuples(res);
	for (size_t i = 0; i < n; i++) {
		const struct campaign_def *def = s->d->conf->campaigns ?
		    campaign_find(s->d->conf->campaigns, PQgetvalue(res, i, 1)) :
		    NULL;

		v[i].id = strtoull(PQgetvalue(res, i, 0), NULL, 10);
		v[i].rate = def ? def->rate : 0;
		v[i].tokens = (double)v[i].rate;
		clock_gettime(CLOCK_MONOTONIC, &v[i].refill);
		for (size_t k = 0; k < s->ncrates; k++)
			if (s->crates[k].id == v[i].id) {
				v[i].cursor = s->crates[k].cursor;
				if (s->crates[k].rate == v[i].rate) {
					v[i].tokens = s->crates[k].tokens;
					v[i].refill = s->crates[k].refill;
				}
			}
	}
	/* claim_from points into the current array: swap when no claim is
	 * in flight, else when it returns */
	free(s->pending);
	s->pending = v;
	s->npending = n;
	if (!s->claiming)
		apply_pending(s);
}

/* Which running campaigns have a rate of their own: once a second. */
static void
refresh_running(struct sender *s)
{
	time_t now = time(NULL);

	if (s->refreshing || now == s->last_refresh)
		return;
	s->last_refresh = now;
	s->refreshing = 1;
	if (db_query(s->db, "SELECT id, name FROM campaigns WHERE status = "
	    "'running' ORDER BY id", 0, NULL, on_running, s) < 0)
		s->refreshing = 0;
}

static void
sender_claim(struct sender *s)
{
	struct conf_mail *mc = &s->d->conf->mail;
	char limit[32], lease[32], node[32], lim2[32], cursor[32];
	const char *p[6] = { limit, lease, node, lim2, NULL, cursor };
	struct buf ids;
	long n = mc->batch;
	int rated = 0;

	if (s->claiming) {
		s->kicked = 1;          /* claim again when this one returns */
		return;
	}
	/* only campaigns the refresh knows (and so knows their rates); one
	 * batch more than connections, waiting in s->ahead */
	if (s->d->stopping ||
	    s->active + (s->ahead != NULL) > mc->connections ||
	    db_state(s->db) != DB_READY || s->d->node_id == 0 ||
	    s->ncrates == 0)
		return;
	if (s->ramp && n >= 8)
		n /= 4;
	refill(s);
	if (s->tokens < n)
		n = (long)s->tokens;
	if (n < 1)
		return;
	/* campaigns with a rate of their own are claimed one at a time,
	 * round robin among those with room */
	s->claim_from = NULL;
	for (size_t i = 0; i < s->ncrates; i++)
		rated |= s->crates[i].rate > 0;
	if (rated) {
		for (size_t k = 0; k < s->ncrates && !s->claim_from; k++) {
			struct crate *c = &s->crates[(s->rr + k) % s->ncrates];

			if (c->rate > 0)
				crate_refill(c);
			if (c->rate == 0 || c->tokens >= 1)
				s->claim_from = c;
		}
		s->rr++;
		if (!s->claim_from)
			return;
		if (s->claim_from->rate > 0) {
			if (s->claim_from->tokens < n)
				n = (long)s->claim_from->tokens;
			s->claim_from->tokens -= (double)n;
		}
	}
	buf_init(&ids, 0);
	for (size_t i = 0; i < s->ncrates; i++) {
		char id[32];

		if (s->claim_from && &s->crates[i] != s->claim_from)
			continue;
		snprintf(id, sizeof(id), "%llu",
		    (unsigned long long)s->crates[i].id);
		db_array_add(&ids, id);
	}
	p[4] = db_array_end(&ids);
	s->tokens -= (double)n;
	s->claim_want = n;
	snprintf(limit, sizeof(limit), "%ld", n);
	snprintf(lim2, sizeof(lim2), "%ld", n);
	snprintf(lease, sizeof(lease), "%ld", mc->lease_ms);
	snprintf(node, sizeof(node), "%lld", s->d->node_id);
	snprintf(cursor, sizeof(cursor), "%llu", (unsigned long long)
	    (s->claim_from ? s->claim_from->cursor : s->cursor));
	s->claiming = 1;
	if (db_query(s->db,
	    "WITH c AS (SELECT d.id FROM deliveries d WHERE d.campaign_id = "
	    "ANY(ARRAY(SELECT id FROM campaigns WHERE status = 'running' AND "
	    "id = ANY($5::int[]))) "
	    "AND d.status IN ('queued', 'deferred', 'sending') AND "
	    "(d.vars IS NULL OR NOT d.vars ? 'test') AND "
	    "d.next_attempt_at <= now() AND (d.status <> 'sending' OR "
	    "d.lease_until < now()) AND d.id > $6::bigint ORDER BY d.id LIMIT $1 "
	    "FOR UPDATE SKIP LOCKED), "
	    "u AS (UPDATE deliveries d SET status = 'sending', lease_until = "
	    "now() + $2 * interval '1 millisecond', node_id = $3, attempts = "
	    "d.attempts + 1, updated_at = now() FROM c WHERE d.id = c.id "
	    "RETURNING d.id, d.campaign_id, d.lead_id, d.email, d.attempts, "
	    "d.created_at, d.vars) "
	    "SELECT u.id, u.campaign_id, cp.name, u.email, u.attempts, "
	    "(coalesce(to_jsonb(l), '{}'::jsonb) || coalesce(u.vars, "
	    "'{}'::jsonb))::text, "
	    "(EXISTS (SELECT 1 FROM suppressions x WHERE lower(x.email) = "
	    "lower(u.email) AND (x.list_id IS NULL OR x.list_id = "
	    "ANY(cp.list_ids))) OR (cardinality(cp.list_ids) > 0 AND NOT "
	    "EXISTS (SELECT 1 FROM subscriptions sb WHERE sb.lead_id = "
	    "u.lead_id AND sb.list_id = ANY(cp.list_ids) AND sb.status = "
	    "'confirmed'))), "
	    "extract(epoch FROM now() - u.created_at)::bigint, $4::int "
	    "FROM u JOIN campaigns cp ON cp.id = u.campaign_id "
	    "LEFT JOIN leads l ON l.id = u.lead_id ORDER BY u.id",
	    6, p, on_claimed, s) < 0)
		s->claiming = 0;
	buf_free(&ids);
}

/* ---- filling -------------------------------------------------------------------- */

/*
 * A started newsletter (fill_upto set, filled_at not yet) becomes
 * deliveries s->d->conf->mail.fill recipients at a time, in lead order up
 * to the last lead of its start (fill_upto), each step one transaction
 * that also moves fill_cursor (and sets filled_at at the end): a crash or a restart goes on from the last step, on
 * this node or another (the campaign's row is locked by the step, and
 * ON CONFLICT keeps a recipient to one delivery). The campaign is done
 * only once filled (the sweep checks). The first step is of FILL_FIRST
 * recipients at most, so that sending starts at once; the first full
 * step after it refreshes the planner's statistics of deliveries
 * (doc/design.md, "Deliveries"). Each step wakes the claims of this node
 * and, by a notification, of the others.
 */
#define FILL_DUE "kind = 'newsletter' AND fill_upto IS NOT NULL AND " \
	"filled_at IS NULL AND status IN ('running', 'paused')"

struct fill {
	struct sender *s;
	uint64_t campaign;
	int first;                      /* the campaign's first step */
	long size;                      /* recipients asked for */
};

/* The first step of a campaign is small, so that its first messages go
 * out at once; the others are mail.fill. */
#define FILL_FIRST      1000

static void
fill_done(struct sender *s)
{
	s->filling = 0;
	if (s->fill_again) {
		s->fill_again = 0;
		fill_step(s);
	}
}

static void
on_fill_analyzed(void *arg, const PGresult *res, const char *err)
{
	struct sender *s = arg;

	(void)res;
	if (err)        /* the campaign runs; only the plans may suffer */
		log_warn("ANALYZE deliveries: %s", err);
	s->fill_again = 1;      /* the rest of the audience */
	fill_done(s);
}

static void
on_filled(void *arg, const PGresult *res, const char *err)
{
	struct fill *f = arg;
	struct sender *s = f->s;
	uint64_t campaign = f->campaign;
	long made, size = f->size;
	int more, first = f->first;

	free(f);
	if (err || PQntuples(res) != 1) {
		log_warn("making a campaign's deliveries: %s (retried)",
		    err ? err : "no answer");
		s->filling = 0;         /* the next tick tries again */
		return;
	}
	made = atol(PQgetvalue(res, 0, 0));
	more = PQgetvalue(res, 0, 1)[0] == 't';
	if (made > 0) {
		db_query(s->fill_db, "NOTIFY leadcast_wake, 'deliveries'", 0,
		    NULL, NULL, NULL);
		sender_kick(s);
	}
	/* the first full step after the small first one: a campaign of
	 * thousands, statistics from before it (the claims meanwhile read
	 * at most the rows of the first step) */
	if (!first && made == size && made >= 1000 && s->analyzed != campaign &&
	    db_query(s->fill_db, "ANALYZE deliveries", 0, NULL,
	    on_fill_analyzed, s) >= 0) {
		s->analyzed = campaign;
		return;
	}
	if (more || PQgetvalue(res, 0, 2)[0] == 't')
		s->fill_again = 1;      /* its next step, or another campaign */
	fill_done(s);
}

static void
on_fill_pick(void *arg, const PGresult *res, const char *err)
{
	struct sender *s = arg;
	const struct campaign_def *def;
	struct cond_params cp = { NULL, 0, 0 };
	struct buf sql;
	struct fill *f;
	char chunk[32], msg[256];
	const char **p;
	int next = 3;

	if (err || PQntuples(res) == 0) {
		if (err)
			log_warn("finding campaigns to fill: %s", err);
		fill_done(s);
		return;
	}
	def = s->d->conf->campaigns ? campaign_find(s->d->conf->campaigns,
	    PQgetvalue(res, 0, 1)) : NULL;
	buf_init(&sql, 0);
	buf_puts(&sql,
	    "WITH c AS (SELECT id, list_ids, fill_cursor, fill_upto FROM "
	    "campaigns WHERE id = $1 AND " FILL_DUE " FOR UPDATE), "
	    "pick AS (SELECT l.id, l.email FROM c cp, leads l WHERE l.id > "
	    "cp.fill_cursor AND l.id <= cp.fill_upto AND ");
	if (def && !def->sms && sender_audience_sql(def, "cp.list_ids", &next,
	    &sql, &cp, msg, sizeof(msg)) == 0) {
		buf_puts(&sql, " ORDER BY l.id LIMIT $2), "
		    "ins AS (INSERT INTO deliveries (campaign_id, lead_id, "
		    "email) SELECT $1, id, email FROM pick ON CONFLICT DO "
		    "NOTHING RETURNING 1), "
		    "up AS (UPDATE campaigns SET fill_cursor = coalesce((SELECT "
		    "max(id) FROM pick), fill_cursor), filled_at = CASE WHEN "
		    "(SELECT count(*) FROM pick) < $2 THEN now() END WHERE id IN "
		    "(SELECT id FROM c) RETURNING filled_at IS NULL AS more) "
		    "SELECT (SELECT count(*) FROM ins), (SELECT more FROM up), "
		    "EXISTS (SELECT 1 FROM campaigns WHERE id <> $1 AND "
		    FILL_DUE ")");
	} else {
		/* its file is gone (or its audience no longer compiles):
		 * it stops at the recipients it has */
		log_warn("campaign %s: %s; its audience stops at the recipients "
		    "made so far", PQgetvalue(res, 0, 1), def ? (def->sms ?
		    "now an SMS campaign" : msg) : "no longer in the "
		    "configuration");
		buf_reset(&sql);
		buf_puts(&sql, "WITH up AS (UPDATE campaigns SET filled_at = "
		    "now() WHERE id = $1 RETURNING 1) SELECT 0, false, EXISTS "
		    "(SELECT 1 FROM campaigns WHERE id <> $1 AND " FILL_DUE "), "
		    "$2::int, (SELECT count(*) FROM up)");
		cond_params_free(&cp);
	}
	if (!(f = calloc(1, sizeof(*f))) ||
	    !(p = calloc(2 + cp.n, sizeof(*p)))) {
		free(f);
		buf_free(&sql);
		cond_params_free(&cp);
		fill_done(s);
		return;
	}
	f->s = s;
	f->campaign = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
	f->first = !strcmp(PQgetvalue(res, 0, 2), "0");
	f->size = s->d->conf->mail.fill;
	if (f->first && f->size > FILL_FIRST)
		f->size = FILL_FIRST;
	snprintf(chunk, sizeof(chunk), "%ld", f->size);
	p[0] = PQgetvalue(res, 0, 0);
	p[1] = chunk;
	for (size_t i = 0; i < cp.n; i++)
		p[2 + i] = cp.v[i];
	if (db_query(s->fill_db, buf_str(&sql), (int)(2 + cp.n), p, on_filled,
	    f) < 0) {
		free(f);
		s->filling = 0;
	}
	free(p);
	buf_free(&sql);
	cond_params_free(&cp);
}

/* Make the next step of a started newsletter's deliveries, if any: at a
 * start, at each tick (a restart, another node's start) and after each
 * step while any is left. */
static void
fill_step(struct sender *s)
{
	if (s->filling) {
		s->fill_again = 1;
		return;
	}
	if (s->d->stopping || db_state(s->fill_db) != DB_READY)
		return;
	s->filling = 1;
	if (db_query(s->fill_db, "SELECT id, name, fill_cursor FROM campaigns "
	    "WHERE " FILL_DUE " ORDER BY id LIMIT 1", 0, NULL, on_fill_pick,
	    s) < 0)
		s->filling = 0;
}

/* ---- sweeps: completion, statistics, schedules ------------------------------ */

static void
on_finished(void *arg, const PGresult *res, const char *err)
{
	(void)arg;
	if (err) {
		log_warn("campaign sweep: %s", err);
		return;
	}
	for (int i = 0; i < PQntuples(res); i++)
		log_info("campaign %s finished", PQgetvalue(res, i, 0));
}

static void
on_stats(void *arg, const PGresult *res, const char *err)
{
	struct sender *s = arg;

	if (err)
		return;
	s->queued = s->deferred_now = s->sending = 0;
	for (int i = 0; i < PQntuples(res); i++) {
		const char *st = PQgetvalue(res, i, 0);
		long long n = strtoll(PQgetvalue(res, i, 1), NULL, 10);

		if (!strcmp(st, "queued"))
			s->queued = n;
		else if (!strcmp(st, "deferred"))
			s->deferred_now = n;
		else if (!strcmp(st, "sending"))
			s->sending = n;
	}
}

struct sched {
	struct sender *s;
	char name[CAMPAIGN_NAME_MAX + 1];
};

static void sched_started(void *arg, int status, json_t *result);

static void
sweep(struct sender *s)
{
	time_t now = time(NULL);
	long long sent;

	if (now - s->last_sweep < STATS_EVERY_S)
		return;
	s->last_sweep = now;
	fill_step(s);           /* a fill left by a restart or another node */
	sent = metric_value(s->m_sent);
	s->rate = (double)(sent - s->sent_prev) / STATS_EVERY_S;
	s->sent_prev = sent;
	db_query(s->db, "UPDATE deliveries SET status = 'cancelled', "
	    "updated_at = now() WHERE status = 'sending' AND lease_until < now() "
	    "AND campaign_id IN (SELECT id FROM campaigns WHERE status = "
	    "'cancelled')", 0, NULL, NULL, NULL);
	db_query(s->db, "UPDATE campaigns c SET status = 'done', "
	    "finished_at = now() WHERE status = 'running' AND (fill_upto IS "
	    "NULL OR filled_at IS NOT NULL) AND NOT EXISTS "
	    "(SELECT 1 FROM deliveries d WHERE d.campaign_id = c.id AND "
	    "d.status IN ('queued', 'deferred', 'sending') AND (d.vars IS "
	    "NULL OR NOT d.vars ? 'test')) AND c.kind = 'newsletter' "
	    "RETURNING name",
	    0, NULL, on_finished, s);
	db_query(s->db, "SELECT status, count(*) FROM deliveries WHERE "
	    "status IN ('queued', 'deferred', 'sending') GROUP BY status", 0,
	    NULL, on_stats, s);
	/* scheduled campaigns whose time has come: start them (once) */
	for (size_t i = 0; s->d->conf->campaigns &&
	    i < s->d->conf->campaigns->n; i++) {
		const struct campaign_def *def = s->d->conf->campaigns->v[i];
		struct sched *sc;

		char **v;
		size_t k;

		if (!def->scheduled_at || def->scheduled_at > now)
			continue;
		for (k = 0; k < s->nsched_done; k++)
			if (!strcmp(s->sched_done[k], def->name))
				break;
		if (k < s->nsched_done || !(sc = calloc(1, sizeof(*sc))))
			continue;
		if ((v = realloc(s->sched_done, (s->nsched_done + 1) *
		    sizeof(*v))) != NULL) {
			s->sched_done = v;
			v[s->nsched_done++] = strdup(def->name);
		}
		sc->s = s;
		snprintf(sc->name, sizeof(sc->name), "%s", def->name);
		sender_campaign_action(s, "schedule", def->name, sched_started,
		    sc);
	}
}

static void
sched_started(void *arg, int status, json_t *result)
{
	struct sched *sc = arg;

	if (status == 200)
		log_info("scheduled campaign %s started: %lld recipients",
		    sc->name, (long long)json_integer_value(json_object_get(
		    result, "recipients")));
	else if (status != 204)
		log_error("scheduled campaign %s did not start: %s", sc->name,
		    json_string_value(json_object_get(json_object_get(result,
		    "error"), "message")));
	json_decref(result);
	free(sc);
}

static void
on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct sender *s = arg;

	(void)fd;
	(void)what;
	if (s->d->stopping || db_state(s->db) != DB_READY)
		return;
	refresh_running(s);
	sender_claim(s);
	sweep(s);
}

void
sender_kick(struct sender *s)
{
	s->last_refresh = 0;            /* a campaign may have started */
	refresh_running(s);
	sender_claim(s);
}

int
sender_idle(const struct sender *s)
{
	return s->active == 0 && !s->ahead && !s->claiming &&
	    (db_pending(s->db) == 0 ||
	    db_state(s->db) != DB_READY);
}

/* ---- rows left by daemons that died on this host ---------------------------- */

static void
on_dead_nodes(void *arg, const PGresult *res, const char *err)
{
	struct sender *s = arg;
	struct buf ids;
	const char *p[1];
	int dead = 0;

	if (err)
		return;
	buf_init(&ids, 0);
	for (int i = 0; i < PQntuples(res); i++) {
		pid_t pid = (pid_t)atoi(PQgetvalue(res, i, 1));
		char path[64], comm[64] = "";
		FILE *f;

		snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
		if ((f = fopen(path, "r")) != NULL) {
			if (!fgets(comm, sizeof(comm), f))
				comm[0] = '\0';
			fclose(f);
		}
		if (kill(pid, 0) == 0 && strncmp(comm, "leadcastd", 9) == 0)
			continue;       /* alive */
		db_array_add(&ids, PQgetvalue(res, i, 0));
		dead++;
	}
	if (dead) {
		p[0] = db_array_end(&ids);
		log_info("releasing the deliveries of %d stopped daemon%s on this "
		    "host (and their texts)", dead, dead == 1 ? "" : "s");
		db_query(s->db, "WITH n AS (UPDATE nodes SET stopped_at = "
		    "now() WHERE id = ANY($1::bigint[]) RETURNING id), "
		    "t AS (UPDATE sms SET lease_until = now() - interval "
		    "'1 second' WHERE status = 'sending' AND node_id IN "
		    "(SELECT id FROM n)), "
		    "de AS (UPDATE drip_enrollments SET lease_until = NULL "
		    "WHERE lease_until IS NOT NULL AND node_id IN (SELECT id "
		    "FROM n)), "
		    "di AS (UPDATE drip_inbox SET lease_until = NULL WHERE "
		    "lease_until IS NOT NULL AND node_id IN (SELECT id FROM n)) "
		    "UPDATE deliveries SET lease_until = now() - interval "
		    "'1 second' WHERE status = 'sending' AND node_id IN "
		    "(SELECT id FROM n)", 1, p, NULL, NULL);
		sender_kick(s);
		drip_kick(s->d->drip);
	}
	buf_free(&ids);
}

void
sender_node_ready(struct sender *s)
{
	char host[256] = "", id[32];
	const char *p[2] = { host, id };

	gethostname(host, sizeof(host) - 1);
	snprintf(id, sizeof(id), "%lld", s->d->node_id);
	db_query(s->db, "SELECT id, pid FROM nodes WHERE hostname = $1 AND "
	    "stopped_at IS NULL AND id <> $2", 2, p, on_dead_nodes, s);
	sender_kick(s);
}

/* ---- gauges ---------------------------------------------------------------- */

static double g_queued(void *a) { return (double)((struct sender *)a)->queued; }
static double g_deferred(void *a) { return (double)((struct sender *)a)->deferred_now; }
static double g_sending(void *a) { return (double)((struct sender *)a)->sending; }
static double g_rate(void *a) { return ((struct sender *)a)->rate; }
static double g_batches(void *a) { return (double)((struct sender *)a)->active; }

struct sender *
sender_new(struct lc_daemon *d)
{
	struct sender *s = calloc(1, sizeof(*s));
	struct timeval tv = { 0, TICK_MS * 1000 };

	if (!s)
		return NULL;
	s->d = d;
	s->ramp = 1;
	if (!(s->db = db_new(d->base, d->conninfo)) ||
	    db_set_options(s->db, "-c synchronous_commit=off") < 0) {
		db_free(s->db);
		free(s);
		return NULL;
	}
	db_start(s->db);
	if (!(s->fill_db = db_new(d->base, d->conninfo))) {
		db_free(s->db);
		free(s);
		return NULL;
	}
	db_start(s->fill_db);
	pthread_mutex_init(&s->links_lock, NULL);
	pthread_mutex_init(&s->domains_lock, NULL);
	clock_gettime(CLOCK_MONOTONIC, &s->last_refill);
	s->m_sent = metrics_counter("leadcast_deliveries_total", "Delivery "
	    "attempts finished by this node, by outcome.", "status=\"sent\"");
	s->m_deferred = metrics_counter("leadcast_deliveries_total", "",
	    "status=\"deferred\"");
	s->m_failed = metrics_counter("leadcast_deliveries_total", "",
	    "status=\"failed\"");
	s->m_suppressed = metrics_counter("leadcast_deliveries_total", "",
	    "status=\"suppressed\"");
	metrics_gauge_func("leadcast_deliveries_pending", "Deliveries waiting, "
	    "by state (all nodes).", "state=\"queued\"", g_queued, s);
	metrics_gauge_func("leadcast_deliveries_pending", "",
	    "state=\"deferred\"", g_deferred, s);
	metrics_gauge_func("leadcast_deliveries_pending", "",
	    "state=\"sending\"", g_sending, s);
	metrics_gauge_func("leadcast_send_rate", "Messages sent per second by "
	    "this node (last 5 s).", NULL, g_rate, s);
	metrics_gauge_func("leadcast_send_batches", "Batches being composed or "
	    "sent.", NULL, g_batches, s);
	s->tick = event_new(d->base, -1, EV_PERSIST, on_tick, s);
	event_add(s->tick, &tv);
	return s;
}

void
sender_free(struct sender *s)
{
	if (!s)
		return;
	event_free(s->tick);
	if (s->ahead)
		batch_free(s->ahead);   /* its leases lapse */
	db_free(s->db);
	db_free(s->fill_db);
	for (size_t i = 0; i < LINK_BUCKETS; i++)
		while (s->links[i]) {
			struct link *l = s->links[i];

			s->links[i] = l->next;
			free(l->key);
			free(l);
		}
	pthread_mutex_destroy(&s->links_lock);
	free(s->crates);
	free(s->pending);
	for (size_t i = 0; i < 1024; i++)
		while (s->domains[i]) {
			struct domain *d = s->domains[i];

			s->domains[i] = d->next;
			free(d);
		}
	pthread_mutex_destroy(&s->domains_lock);
	for (size_t i = 0; i < s->nsched_done; i++)
		free(s->sched_done[i]);
	free(s->sched_done);
	free(s);
}

/* ---- campaign actions (API and CLI) ----------------------------------------- */

struct action {
	struct sender *s;
	char name[CAMPAIGN_NAME_MAX + 1];
	char what[16];
	sender_action_fn *cb;
	void *arg;
};

static void
action_reply(struct action *a, int status, json_t *doc)
{
	a->cb(a->arg, status, doc);
	free(a);
}

static json_t *
error_doc(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static json_t *
error_doc(const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return json_pack("{s:{s:s}}", "error", "message", msg);
}

static void
on_started(void *arg, const PGresult *res, const char *err)
{
	struct action *a = arg;

	if (err) {
		action_reply(a, 500, error_doc("%s", err));
		return;
	}
	if (PQgetisnull(res, 0, 0)) {
		const char *st = PQgetisnull(res, 0, 3) ? NULL :
		    PQgetvalue(res, 0, 3);
		long have = atol(PQgetvalue(res, 0, 2)), want = atol(
		    PQgetvalue(res, 0, 4));

		if (have < want)
			action_reply(a, 409, error_doc("campaign %s: %ld of its "
			    "%ld lists do not exist yet (import subscribers into "
			    "them first)", a->name, want - have, want));
		else if (!strcmp(a->what, "schedule"))
			action_reply(a, 204, NULL);     /* already handled */
		else
			action_reply(a, 409, error_doc("campaign %s is %s: it "
			    "can only be started once (make a new campaign file to "
			    "send again)", a->name, st ? st : "unknown"));
		return;
	}
	fill_step(a->s);
	action_reply(a, 200, json_pack("{s:s, s:s, s:I}", "campaign", a->name,
	    "status", "running", "recipients", (json_int_t)strtoll(
	    PQgetvalue(res, 0, 1), NULL, 10)));
}

static void
on_simple(void *arg, const PGresult *res, const char *err)
{
	struct action *a = arg;

	if (err) {
		action_reply(a, 500, error_doc("%s", err));
		return;
	}
	if (PQntuples(res) == 0 || PQgetisnull(res, 0, 0)) {
		action_reply(a, 409, error_doc("campaign %s cannot be %s now: "
		    "see leadcast campaign status %s", a->name,
		    !strcmp(a->what, "pause") ? "paused" :
		    !strcmp(a->what, "resume") ? "resumed" : "cancelled",
		    a->name));
		return;
	}
	action_reply(a, 200, json_pack("{s:s, s:s}", "campaign", a->name,
	    "status", PQgetvalue(res, 0, 0)));
}

static void
on_report(void *arg, const PGresult *res, const char *err)
{
	struct action *a = arg;
	json_t *doc, *counts, *events;

	if (err) {
		action_reply(a, 500, error_doc("%s", err));
		return;
	}
	if (PQntuples(res) == 0) {
		action_reply(a, 200, json_pack("{s:s, s:s, s:{}, s:{}}",
		    "campaign", a->name, "status", "draft", "deliveries",
		    "events"));
		return;
	}
	counts = json_loads(PQgetvalue(res, 0, 2), 0, NULL);
	events = json_loads(PQgetvalue(res, 0, 3), 0, NULL);
	doc = json_pack("{s:s, s:s, s:o, s:o, s:s?, s:s?}", "campaign", a->name,
	    "status", PQgetvalue(res, 0, 0),
	    "deliveries", counts ? counts : json_object(),
	    "events", events ? events : json_object(),
	    "started_at", PQgetisnull(res, 0, 4) ? NULL : PQgetvalue(res, 0, 4),
	    "finished_at", PQgetisnull(res, 0, 5) ? NULL :
	    PQgetvalue(res, 0, 5));
	json_object_set_new(doc, "id", json_integer(atoll(PQgetvalue(res, 0, 1))));
	json_object_set_new(doc, "bounces", json_loads(PQgetvalue(res, 0, 8), 0,
	    NULL));
	if (!strcmp(PQgetvalue(res, 0, 7), "sms")) {
		/* texts: messages, parts, cost and counts by status */
		json_t *t = json_loads(PQgetvalue(res, 0, 6), 0, NULL);
		json_t *st = json_object_get(t, "status");

		json_object_set_new(doc, "channel", json_string("sms"));
		json_object_set_new(doc, "deliveries", st ? json_incref(st) :
		    json_object());
		json_object_set_new(doc, "sms", t ? t : json_object());
	}
	action_reply(a, 200, doc);
}

int
sender_audience_sql(const struct campaign_def *def, const char *lists,
    int *next, struct buf *sql, struct cond_params *cp, char *err, size_t n)
{
	struct cond_env env = { time(NULL), NULL };

	if (def->sms)
		buf_printf(sql, "l.phone IS NOT NULL AND l.sms_consent IS TRUE "
		    "AND (cardinality(%s) = 0 OR ", lists);
	else
		buf_puts(sql, "l.email IS NOT NULL AND (");
	buf_printf(sql, "EXISTS (SELECT 1 FROM subscriptions sb WHERE "
	    "sb.lead_id = l.id AND sb.list_id = ANY(%s) AND sb.status = "
	    "'confirmed')) AND ", lists);
	if (!def->audience) {
		buf_puts(sql, "true");
		return 0;
	}
	return cond_to_sql(def->audience, &lead_sqlmap, &env, next, sql, cp,
	    err, n);
}

int
sender_campaign_action(struct sender *s, const char *what, const char *name,
    sender_action_fn *cb, void *arg)
{
	const struct campaign_def *def = s->d->conf->campaigns ?
	    campaign_find(s->d->conf->campaigns, name) : NULL;
	struct action *a;
	int rc;

	if (!def) {
		cb(arg, 404, error_doc("no campaign %s (a file %s.conf in %s)",
		    name, name, s->d->conf->campaigns_dir));
		return 0;
	}
	if (!(a = calloc(1, sizeof(*a)))) {
		cb(arg, 500, error_doc("out of memory"));
		return -1;
	}
	a->s = s;
	a->cb = cb;
	a->arg = arg;
	snprintf(a->name, sizeof(a->name), "%s", name);
	snprintf(a->what, sizeof(a->what), "%s", what);
	if (!strcmp(what, "start") || !strcmp(what, "schedule")) {
		struct cond_params cp = { NULL, 0, 0 };
		struct buf sql, lists;
		char err[256], nlists[16];
		const char **p;
		int next = 4;

		buf_init(&sql, 0);
		buf_init(&lists, 0);
		for (size_t i = 0; i < def->lists.n; i++)
			db_array_add(&lists, def->lists.v[i]);
		buf_printf(&sql,
		    "WITH lst AS (SELECT coalesce(array_agg(id ORDER BY id), "
		    "'{}') AS ids, count(*) AS n FROM lists WHERE name = "
		    "ANY($2::text[])), "
		    "cp AS (INSERT INTO campaigns AS c (name, kind, list_ids, "
		    "status, started_at, fill_cursor, filled_at, fill_upto) "
		    "SELECT $1, '%s', lst.ids, 'running', now(), 0, NULL, "
		    "(SELECT coalesce(max(id), 0) FROM leads) FROM lst WHERE "
		    "lst.n = $3 ON CONFLICT (name) DO UPDATE SET list_ids = "
		    "EXCLUDED.list_ids, kind = EXCLUDED.kind, status = "
		    "'running', started_at = now(), fill_cursor = 0, filled_at "
		    "= NULL, fill_upto = EXCLUDED.fill_upto WHERE c.status IN "
		    "('draft', 'scheduled') RETURNING id, list_ids, fill_upto), "
		    "ins AS (", def->sms ? "sms" : "newsletter");
		/* The audience is only counted here. A newsletter's becomes
		 * deliveries in steps (fill_step()), an SMS campaign's texts
		 * are queued by sms.c as it goes (sms_fill). */
		buf_puts(&sql, "SELECT 1 FROM cp, leads l WHERE l.id <= "
		    "cp.fill_upto AND ");
		if (sender_audience_sql(def, "cp.list_ids", &next, &sql, &cp,
		    err, sizeof(err)) < 0) {
			buf_free(&sql);
			buf_free(&lists);
			cond_params_free(&cp);
			action_reply(a, 422, error_doc("campaign %s: audience: %s",
			    name, err));
			return 0;
		}
		buf_puts(&sql, ") ");
		buf_puts(&sql, "SELECT (SELECT id FROM cp), (SELECT count(*) FROM "
		    "ins), (SELECT n FROM lst), (SELECT status FROM campaigns "
		    "WHERE name = $1), $3::int");
		snprintf(nlists, sizeof(nlists), "%zu", def->lists.n);
		p = calloc(3 + cp.n, sizeof(*p));
		if (!p) {
			cond_params_free(&cp);
			buf_free(&sql);
			buf_free(&lists);
			action_reply(a, 500, error_doc("out of memory"));
			return -1;
		}
		p[0] = name;
		p[1] = db_array_end(&lists);
		p[2] = nlists;
		for (size_t i = 0; i < cp.n; i++)
			p[3 + i] = cp.v[i];
		rc = db_query(s->db, buf_str(&sql), (int)(3 + cp.n), p,
		    on_started, a);
		free(p);
		cond_params_free(&cp);
		buf_free(&sql);
		buf_free(&lists);
	} else if (!strcmp(what, "pause") || !strcmp(what, "resume")) {
		const char *p[1] = { name };

		/* an SMS campaign's queued texts are set aside while it is
		 * paused (claims never walk them), and due again on resume */
		rc = db_query(s->db, !strcmp(what, "pause") ?
		    "WITH c AS (UPDATE campaigns SET status = 'paused' WHERE "
		    "name = $1 AND status = 'running' RETURNING id, status), "
		    "m AS (UPDATE sms SET next_attempt_at = 'infinity' WHERE "
		    "campaign_id IN (SELECT id FROM c) AND status = 'queued') "
		    "SELECT status FROM c" :
		    "WITH c AS (UPDATE campaigns SET status = 'running' WHERE "
		    "name = $1 AND status = 'paused' RETURNING id, status), "
		    "m AS (UPDATE sms SET next_attempt_at = now() WHERE "
		    "campaign_id IN (SELECT id FROM c) AND status = 'queued') "
		    "SELECT status FROM c", 1, p, on_simple, a);
		if (!strcmp(what, "resume"))
			sender_kick(s);
	} else if (!strcmp(what, "cancel")) {
		const char *p[1] = { name };

		rc = db_query(s->db, "WITH c AS (INSERT INTO campaigns AS c "
		    "(name, status, finished_at) VALUES ($1, 'cancelled', now()) "
		    "ON CONFLICT (name) DO UPDATE SET status = 'cancelled', "
		    "finished_at = now() WHERE c.status IN ('draft', "
		    "'scheduled', 'running', 'paused') RETURNING id, status), "
		    "d AS (UPDATE deliveries SET status = 'cancelled', updated_at "
		    "= now() WHERE campaign_id IN (SELECT id FROM c) AND status "
		    "IN ('queued', 'deferred') RETURNING 1), "
		    "t AS (UPDATE sms SET status = 'cancelled', error = "
		    "'campaign cancelled', lease_until = NULL, updated_at = now() "
		    "WHERE campaign_id IN (SELECT id FROM c) AND status = "
		    "'queued' RETURNING 1) "
		    "SELECT (SELECT status FROM c), (SELECT count(*) FROM d) + "
		    "(SELECT count(*) FROM t)", 1,
		    p, on_simple, a);
	} else if (!strcmp(what, "report")) {
		const char *p[1] = { name };

		rc = db_query(s->db, "SELECT c.status, c.id, "
		    "(SELECT coalesce(jsonb_object_agg(status, n), '{}') FROM "
		    "(SELECT status, count(*) AS n FROM deliveries WHERE "
		    "campaign_id = c.id AND (vars IS NULL OR NOT vars ? 'test') "
		    "GROUP BY status) "
		    "x)::text, "
		    "(SELECT coalesce(jsonb_object_agg(type, n), '{}') FROM "
		    "(SELECT type, count(*) AS n FROM events WHERE campaign_id = "
		    "c.id GROUP BY type) y)::text, c.started_at::text, "
		    "c.finished_at::text, "
		    "(SELECT jsonb_build_object('messages', coalesce(sum(n), 0), "
		    "'segments', coalesce(sum(segments), 0), 'cost', "
		    "coalesce(sum(cost), 0), 'status', coalesce(jsonb_object_agg("
		    "status, n) FILTER (WHERE status IS NOT NULL), '{}')) FROM "
		    "(SELECT status, count(*) AS n, sum(segments) AS segments, "
		    "sum(cost) AS cost FROM sms WHERE campaign_id = c.id GROUP BY "
		    "status) z)::text, c.kind, "
		    /* bounced recipients by class (SMTP time and reports) */
		    "(SELECT jsonb_build_object('hard', count(DISTINCT "
		    "delivery_id) FILTER (WHERE class = 'hard'), 'soft', "
		    "count(DISTINCT delivery_id) FILTER (WHERE class = 'soft' AND "
		    "counted), 'complaints', count(DISTINCT delivery_id) FILTER "
		    "(WHERE class = 'complaint'), 'auto_replies', count(DISTINCT "
		    "delivery_id) FILTER (WHERE class = 'auto_reply')) FROM "
		    "bounces WHERE campaign_id = c.id)::text "
		    "FROM campaigns c WHERE c.name = $1",
		    1, p, on_report, a);
	} else {
		action_reply(a, 400, error_doc("unknown action %s", what));
		return 0;
	}
	if (rc < 0)
		action_reply(a, 503, error_doc("the database queue is full"));
	return 0;
}

/* ---- a test copy ------------------------------------------------------------ */

struct test {
	struct sender *s;
	char name[CAMPAIGN_NAME_MAX + 1];
	char to[320];
	sender_action_fn *cb;
	void *arg;
	int tries;
};

static void test_send(struct test *t);

static void
test_result(void *arg, int status, json_t *doc)
{
	struct test *t = arg;

	/* links were added on the first try: compose again with them */
	if (status != 200 && ++t->tries < 2 &&
	    !strcmp(json_string_value(json_object_get(doc, "status")),
	    "deferred") && !json_object_get(doc, "response")) {
		json_decref(doc);
		test_send(t);
		return;
	}
	t->cb(t->arg, status, doc);
	free(t);
}

static void
on_test_row(void *arg, const PGresult *res, const char *err)
{
	struct test *t = arg;
	struct batch *b;
	struct item *it;

	if (err || PQntuples(res) != 1) {
		t->cb(t->arg, 500, error_doc("%s", err ? err : "no row"));
		free(t);
		return;
	}
	if (!(b = calloc(1, sizeof(*b))) || !(b->items = calloc(1,
	    sizeof(*b->items)))) {
		free(b);
		t->cb(t->arg, 500, error_doc("out of memory"));
		free(t);
		return;
	}
	b->s = t->s;
	b->conf = conf_ref(t->s->d->conf);
	b->n = 1;
	b->done_cb = test_result;
	b->done_arg = t;
	it = &b->items[0];
	it->id = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
	it->campaign_id = strtoull(PQgetvalue(res, 0, 1), NULL, 10);
	it->campaign = strdup(t->name);
	it->email = strdup(t->to);
	it->attempts = 1;
	it->lead = json_loads(PQgetvalue(res, 0, 2), 0, NULL);
	if (!it->lead)
		it->lead = json_object();
	t->s->active++;
	if (workq_post(t->s->d->workq, batch_work, batch_done, b) < 0) {
		t->s->active--;
		b->done_cb = NULL;
		batch_free(b);
		t->cb(t->arg, 503, error_doc("the worker pool is busy"));
		free(t);
	}
}

static void
test_send(struct test *t)
{
	char node[32], lease[32];
	const char *p[4] = { t->name, t->to, node, lease };

	snprintf(node, sizeof(node), "%lld", t->s->d->node_id);
	snprintf(lease, sizeof(lease), "%ld", t->s->d->conf->mail.lease_ms);
	/* the test row: no lead (so it never collides with the audience),
	 * marked in vars so the engine never claims it */
	if (db_query(t->s->db,
	    "WITH c AS (INSERT INTO campaigns AS c (name) VALUES ($1) ON "
	    "CONFLICT (name) DO UPDATE SET name = c.name RETURNING id), "
	    "d AS (INSERT INTO deliveries (campaign_id, email, status, node_id, "
	    "lease_until, attempts, vars) SELECT c.id, $2, 'sending', $3, "
	    "now() + $4 * interval '1 millisecond', 1, '{\"test\": true}' "
	    "FROM c RETURNING id, campaign_id) "
	    "SELECT d.id, d.campaign_id, coalesce((SELECT to_jsonb(l) FROM "
	    "leads l WHERE lower(l.email) = lower($2)), '{}'::jsonb)::text "
	    "FROM d", 4, p, on_test_row, t) < 0) {
		t->cb(t->arg, 503, error_doc("the database queue is full"));
		free(t);
	}
}

int
sender_send_test(struct sender *s, const char *name, const char *to,
    sender_action_fn *cb, void *arg)
{
	const char *why = NULL;
	struct test *t;

	const struct campaign_def *def = s->d->conf->campaigns ?
	    campaign_find(s->d->conf->campaigns, name) : NULL;

	if (!def) {
		cb(arg, 404, error_doc("no campaign %s", name));
		return 0;
	}
	if (def->sms) {
		cb(arg, 409, error_doc("campaign %s is an SMS campaign: test "
		    "copies are emails", name));
		return 0;
	}
	if (!mime_addr_valid(to, &why)) {
		cb(arg, 400, json_pack("{s:{s:s, s:s}}", "error", "field", "to",
		    "message", why ? why : "not an address"));
		return 0;
	}
	if (!(t = calloc(1, sizeof(*t)))) {
		cb(arg, 500, error_doc("out of memory"));
		return -1;
	}
	t->s = s;
	t->cb = cb;
	t->arg = arg;
	snprintf(t->name, sizeof(t->name), "%s", name);
	snprintf(t->to, sizeof(t->to), "%s", to);
	test_send(t);
	return 0;
}

/* ---- notifications -------------------------------------------------------------- */

struct notify {
	sender_action_fn *cb;
	void *arg;
	struct sender *s;
};

static void
on_notify_queued(void *arg, const PGresult *res, const char *err)
{
	struct notify *n = arg;

	if (err) {
		n->cb(n->arg, 500, error_doc("%s", err));
	} else {
		sender_kick(n->s);
		n->cb(n->arg, 200, json_pack("{s:I}", "queued",
		    (json_int_t)strtoll(PQgetvalue(res, 0, 0), NULL, 10)));
	}
	free(n);
}

int
sender_notify(struct sender *s, const char *name, const char *leads,
    const char *emails, const char *vars, sender_action_fn *cb, void *arg)
{
	const char *p[4] = { name, leads, emails, vars };
	struct notify *n;

	if (!s->d->conf->notifications ||
	    !campaign_find(s->d->conf->notifications, name)) {
		cb(arg, 404, error_doc("no notification %s", name));
		return -1;
	}
	if (!(n = calloc(1, sizeof(*n)))) {
		cb(arg, 500, error_doc("out of memory"));
		return -1;
	}
	n->cb = cb;
	n->arg = arg;
	n->s = s;
	if (db_query(daemon_db(s->d), "SELECT leadcast_notify($1, $2::bigint[], "
	    "$3::text[], $4::jsonb[])", 4, p, on_notify_queued, n) < 0) {
		free(n);
		cb(arg, 503, error_doc("the database queue is full"));
		return -1;
	}
	db_query(s->db, "NOTIFY leadcast_wake, 'deliveries'", 0, NULL, NULL,
	    NULL);
	return 0;
}
