/*
 * smtp - libesmtp sessions with per-recipient outcomes. See smtp.h.
 */
#include "smtp.h"

#include <auth-client.h>
#include <libesmtp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct msgsrc {
	const char *data;
	size_t len;
	int sent;
};

void
smtp_global_init(void)
{
	auth_client_init();
}

/* libesmtp's message callback: the whole message in one piece. */
static const char *
message_cb(void **ctx, int *len, void *arg)
{
	struct msgsrc *m = arg;

	(void)ctx;
	if (!len) {                     /* rewind */
		m->sent = 0;
		return NULL;
	}
	if (m->sent) {
		*len = 0;
		return NULL;
	}
	m->sent = 1;
	*len = (int)m->len;
	return m->data;
}

/* libesmtp asks what to do about a certificate that did not verify, or
 * whose name does not match: refuse when verifying, else carry on (the
 * session is still encrypted; opportunistic TLS as MTAs do it). */
static void
event_cb(smtp_session_t s, int event, void *arg, ...)
{
	const struct smtp_relay *r = arg;
	va_list ap;
	int *ok;

	(void)s;
	va_start(ap, arg);
	switch (event) {
	case SMTP_EV_INVALID_PEER_CERTIFICATE:
		(void)va_arg(ap, long);
		ok = va_arg(ap, int *);
		*ok = !r->tls_verify;
		break;
	case SMTP_EV_NO_PEER_CERTIFICATE:
	case SMTP_EV_WRONG_PEER_CERTIFICATE:
		ok = va_arg(ap, int *);
		*ok = !r->tls_verify;
		break;
	default:
		break;
	}
	va_end(ap);
}

struct authinfo {
	const char *user, *password;
};

static int
auth_interact(auth_client_request_t req, char **result, int fields, void *arg)
{
	struct authinfo *a = arg;

	for (int i = 0; i < fields; i++) {
		if (req[i].flags & AUTH_USER)
			result[i] = (char *)a->user;
		else if (req[i].flags & AUTH_PASS)
			result[i] = (char *)a->password;
		else
			return 0;
	}
	return 1;
}

static void
set_outcome(struct smtp_msg *m, const smtp_status_t *st, const char *fallback)
{
	m->code = st ? st->code : 0;
	if (st && st->enh_class)
		snprintf(m->status, sizeof(m->status), "%d.%d.%d", st->enh_class,
		    st->enh_subject, st->enh_detail);
	else
		m->status[0] = '\0';
	snprintf(m->text, sizeof(m->text), "%s", st && st->text ? st->text :
	    fallback);
	m->text[strcspn(m->text, "\r\n")] = '\0';
	if (m->code >= 200 && m->code < 300)
		m->outcome = SMTP_SENT;
	else if (m->code >= 500 && m->code < 600)
		m->outcome = SMTP_FAILED;
	else
		m->outcome = SMTP_DEFERRED;
}

size_t
smtp_send(const struct smtp_relay *r, struct smtp_msg *msgs, size_t n)
{
	smtp_session_t s;
	auth_context_t auth = NULL;
	struct authinfo ai = { r->user, r->password };
	struct msgsrc *src;
	smtp_message_t *mh;
	smtp_recipient_t *rh;
	char hostport[300], err[128];
	size_t sent = 0;
	int ok;

	src = calloc(n, sizeof(*src));
	mh = calloc(n, sizeof(*mh));
	rh = calloc(n, sizeof(*rh));
	s = smtp_create_session();
	if (!src || !mh || !rh || !s) {
		for (size_t i = 0; i < n; i++)
			set_outcome(&msgs[i], NULL, "out of memory");
		goto out;
	}
	snprintf(hostport, sizeof(hostport), strchr(r->host, ':') ?
	    "[%s]:%d" : "%s:%d", r->host, r->port);
	smtp_set_server(s, hostport);
	if (r->helo)
		smtp_set_hostname(s, r->helo);
	if (r->timeout_ms > 0) {
		long t = r->timeout_ms | Timeout_OVERRIDE_RFC2822_MINIMUM;

		smtp_set_timeout(s, Timeout_GREETING, t);
		smtp_set_timeout(s, Timeout_ENVELOPE, t);
		smtp_set_timeout(s, Timeout_DATA, t);
		smtp_set_timeout(s, Timeout_TRANSFER, t);
		smtp_set_timeout(s, Timeout_DATA2, t);
	}
	if (r->ssl_ctx)
		smtp_starttls_set_ctx(s, r->ssl_ctx);
	smtp_set_eventcb(s, event_cb, (void *)r);
	smtp_starttls_enable(s, r->tls == SMTP_TLS_REQUIRED ? Starttls_REQUIRED :
	    r->tls == SMTP_TLS_OPPORTUNISTIC ? Starttls_ENABLED :
	    Starttls_DISABLED);
	if (r->user && *r->user) {
		auth = auth_create_context();
		auth_set_mechanism_flags(auth, AUTH_PLUGIN_PLAIN, 0);
		auth_set_interact_cb(auth, auth_interact, &ai);
		smtp_auth_set_context(s, auth);
	}
	for (size_t i = 0; i < n; i++) {
		src[i].data = msgs[i].data;
		src[i].len = msgs[i].len;
		mh[i] = smtp_add_message(s);
		smtp_set_reverse_path(mh[i], msgs[i].mail_from);
		smtp_set_messagecb(mh[i], message_cb, &src[i]);
		rh[i] = smtp_add_recipient(mh[i], msgs[i].rcpt);
		msgs[i].outcome = SMTP_DEFERRED;
	}
	ok = smtp_start_session(s);
	smtp_strerror(smtp_errno(), err, sizeof(err));
	for (size_t i = 0; i < n; i++) {
		const smtp_status_t *st = smtp_recipient_status(rh[i]);
		const smtp_status_t *ms = smtp_message_transfer_status(mh[i]);
		const smtp_status_t *rp = smtp_reverse_path_status(mh[i]);

		/* The sender refused, or the data refused: that decides. */
		if (rp && rp->code >= 400)
			st = rp;
		else if (st && st->code >= 200 && st->code < 300 && ms &&
		    ms->code >= 400)
			st = ms;
		if (!st || st->code == 0)
			set_outcome(&msgs[i], NULL, ok ? "not attempted" : err);
		else
			set_outcome(&msgs[i], st, "");
		if (msgs[i].outcome == SMTP_SENT)
			sent++;
	}
out:
	if (s)
		smtp_destroy_session(s);
	if (auth)
		auth_destroy_context(auth);
	free(src);
	free(mh);
	free(rh);
	return sent;
}
