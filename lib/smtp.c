/*
 * smtp - libesmtp sessions with per-recipient outcomes. See smtp.h.
 * libesmtp runs one session from smtp_start_session() to QUIT over the
 * messages added before it (pipelining commands when the server offers
 * PIPELINING); the incremental API below collects the messages (the
 * caller's buffers, kept until the session is closed) and runs the session
 * when it is closed. A message's body may go to the daemon's write()
 * instead of through libesmtp (smtp_take_body()); this module allocates
 * only what a session needs and frees it when the session ends.
 */
#include "smtp.h"

#include <auth-client.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <libesmtp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

struct evctx;

struct msgsrc {
	const char *data;
	size_t len;
	int sent;
	size_t part;                    /* what libesmtp gets: len, or only
					 * the header (see message_cb()) */
	struct evctx *ev;
};

void
smtp_global_init(void)
{
	auth_client_init();
}

/*
 * The socket of this thread's session, as reported by smtp_connected()
 * (the daemon's connect(), daemon/nodelay.c), or -1. libesmtp writes a
 * message in 2 KB pieces, and TCP_NODELAY (needed for the commands, see
 * nodelay.c) would send each as a segment of its own: ten for a
 * newsletter, each a trip through the loopback device and a wake-up of
 * the server. In the daemon, its write() keeps what libesmtp writes to
 * this socket and sends it when libesmtp next reads or polls it
 * (smtp_gathers(), set up by smtp_set_gathering()): one system call per
 * message and its final dot. Elsewhere (a program without those
 * functions) the socket is corked (TCP_CORK) while libesmtp reads the
 * content, from its rewind to its end: the kernel sends full segments.
 */
static __thread int session_fd = -1;
static __thread int in_session;
static int gathering;

void
smtp_connected(int fd)
{
	if (in_session)
		session_fd = fd;
}

void
smtp_set_gathering(int on)
{
	gathering = on;
}

int
smtp_gathers(int fd)
{
	return gathering && fd >= 0 && fd == session_fd;
}

static void
cork(int on)
{
#ifdef TCP_CORK
	if (session_fd >= 0 && !gathering)
		(void)setsockopt(session_fd, IPPROTO_TCP, TCP_CORK, &on,
		    sizeof(on));
#else
	(void)on;
#endif
}

/*
 * The body libesmtp was not given, for the daemon's write() to send in
 * its place (smtp_take_body()): the calling thread's, or none (p NULL).
 * When the body has lines that begin with '.', it is sent from `stuffed`,
 * a copy with those dots doubled (the thread's, freed when its session
 * ends); otherwise from the caller's message itself.
 */
static __thread struct {
	const char *p;
	size_t n;
	int fd;
} spliced;
static __thread char *stuffed;
static __thread size_t stuffed_cap;

#define SPLICE_HEADER_MAX       (64 * 1024)

int
smtp_take_body(int fd, const char **p, size_t *n)
{
	if (!spliced.p || fd != spliced.fd)
		return 0;
	*p = spliced.p;
	*n = spliced.n;
	spliced.p = NULL;
	return 1;
}

/* The body b (n bytes, ending in CRLF) as SMTP's DATA sends it: a '.'
 * before each line that begins with one, as libesmtp would add. NULL if
 * out of memory. */
static const char *
dot_stuffed(const char *b, size_t n, size_t *out_n)
{
	size_t dots = b[0] == '.', k = 0;
	const char *q, *end = b + n;
	char *o;

	/* memchr: some 300 line ends in a newsletter (memmem of "\n." was
	 * several times slower) */
	for (q = b; (q = memchr(q, '\n', (size_t)(end - q))) != NULL; q++)
		dots += q + 1 < end && q[1] == '.' && q > b && q[-1] == '\r';
	*out_n = n + dots;
	if (dots == 0)
		return b;
	if (stuffed_cap < *out_n) {
		char *p = realloc(stuffed, *out_n);

		if (!p)
			return NULL;
		stuffed = p;
		stuffed_cap = *out_n;
	}
	o = stuffed;
	for (size_t i = 0; i < n; i++) {
		if (b[i] == '.' && (i == 0 || (i >= 2 && b[i - 1] == '\n' &&
		    b[i - 2] == '\r')))
			o[k++] = '.';
		o[k++] = b[i];
	}
	return stuffed;
}

static int splice_ok(const struct evctx *e);

/* The first "\r\n\r\n" in d (n bytes): the end of a message's header. */
static const char *
blank_line(const char *d, size_t n)
{
	const char *q, *end = d + n;

	for (q = d; (q = memchr(q, '\n', (size_t)(end - q))) != NULL; q++)
		if (q - d >= 1 && q[-1] == '\r' && end - q >= 3 && q[1] == '\r' &&
		    q[2] == '\n')
			return q - 1;
	return NULL;
}

/*
 * libesmtp's message callback. libesmtp reads a message one byte at a
 * time (its line reader copies each byte and looks for CRLF) and copies
 * each line twice more before it writes it: some 30 us for a 20 KB
 * newsletter, the most libesmtp costs per message. So when the daemon
 * gathers the session's writes, the session is not encrypted and
 * libesmtp is sending DATA (not BDAT), libesmtp gets only the header and
 * the blank line after it, which it processes and sends as ever, then an
 * empty body; the body, dot-stuffed, is left for the daemon's write(),
 * which sends it with what libesmtp wrote, before the final dot (see
 * daemon/nodelay.c). Otherwise the whole message, in one piece.
 */
static const char *
message_cb(void **ctx, int *len, void *arg)
{
	struct msgsrc *m = arg;
	const char *hdr_end;

	(void)ctx;
	if (!len) {                     /* rewind: the content comes next */
		m->sent = 0;
		m->part = m->len;
		spliced.p = NULL;
		hdr_end = blank_line(m->data, m->len);
		if (hdr_end && splice_ok(m->ev) && (size_t)(hdr_end + 4 -
		    m->data) < m->len && (size_t)(hdr_end - m->data) <
		    SPLICE_HEADER_MAX && m->len >= 2 &&
		    !memcmp(m->data + m->len - 2, "\r\n", 2)) {
			size_t h = (size_t)(hdr_end + 4 - m->data);

			spliced.p = dot_stuffed(m->data + h, m->len - h,
			    &spliced.n);
			spliced.fd = session_fd;
			if (spliced.p)
				m->part = h;
		}
		cork(1);
		return NULL;
	}
	if (m->sent) {                  /* its end */
		cork(0);
		*len = 0;
		return NULL;
	}
	m->sent = 1;
	*len = (int)m->part;
	return m->data;
}

/* Does the certificate name host? libesmtp compares DNS names only (its
 * check has no IP addresses: "TODO: handle GEN_IPADD"), so a relay
 * addressed by IP is checked here, by OpenSSL's own matching. */
static int
cert_names_host(SSL *ssl, const char *host)
{
	X509 *cert = ssl ? SSL_get1_peer_certificate(ssl) : NULL;
	int ok;

	if (!cert)
		return 0;
	ok = X509_check_ip_asc(cert, host, 0) == 1 ||
	    X509_check_host(cert, host, 0, 0, NULL) == 1;
	X509_free(cert);
	return ok;
}

/* What a session's events told: why it ended early, if it did; and
 * whether what libesmtp last wrote ended with the DATA command (its
 * protocol monitor, monitor_cb()). */
struct evctx {
	const struct smtp_relay *r;
	int tls_ok;
	int data_sent;
	char why[160];
};

/* libesmtp's protocol monitor: it sees what libesmtp reads and writes,
 * but not a message's content. */
static void
monitor_cb(const char *buf, int n, int writing, void *arg)
{
	struct evctx *e = arg;

	if (writing != 1)
		return;
	e->data_sent = n >= 6 && memcmp(buf + n - 6, "DATA\r\n", 6) == 0 &&
	    (n == 6 || buf[n - 7] == '\n');
}

/* May the body of the message libesmtp asks for now be spliced (see
 * message_cb())? The socket's writes gathered, in the clear, after DATA. */
static int
splice_ok(const struct evctx *e)
{
	return e && e->data_sent && !e->tls_ok && smtp_gathers(session_fd);
}

/* libesmtp asks what to do about a certificate that did not verify, or
 * whose name does not match: refuse when verifying (unless the name is
 * an IP address the certificate does name), else carry on (the session
 * is still encrypted; opportunistic TLS as MTAs do it). The reasons for
 * refusing are kept for the outcome. */
static void
event_cb(smtp_session_t s, int event, void *arg, ...)
{
	struct evctx *e = arg;
	const struct smtp_relay *r = e->r;
	va_list ap;
	long vfy;
	int *ok;

	(void)s;
	va_start(ap, arg);
	switch (event) {
	case SMTP_EV_INVALID_PEER_CERTIFICATE:
		vfy = va_arg(ap, long);
		ok = va_arg(ap, int *);
		*ok = !r->tls_verify;
		if (!*ok)
			snprintf(e->why, sizeof(e->why), "TLS: certificate "
			    "verify failed: %s", X509_verify_cert_error_string(
			    vfy));
		break;
	case SMTP_EV_NO_PEER_CERTIFICATE:
		ok = va_arg(ap, int *);
		*ok = !r->tls_verify;
		if (!*ok)
			snprintf(e->why, sizeof(e->why), "TLS: the server showed "
			    "no certificate");
		break;
	case SMTP_EV_WRONG_PEER_CERTIFICATE:
		ok = va_arg(ap, int *);
		(void)va_arg(ap, char *);
		*ok = !r->tls_verify || cert_names_host(va_arg(ap, SSL *),
		    r->host);
		if (!*ok)
			snprintf(e->why, sizeof(e->why), "TLS: the certificate "
			    "does not name %s", r->host);
		break;
	case SMTP_EV_EXTNA_STARTTLS:
		if (r->tls == SMTP_TLS_REQUIRED)
			snprintf(e->why, sizeof(e->why), "the server does not "
			    "offer STARTTLS, and tls = required");
		break;
	case SMTP_EV_STARTTLS_OK:
		e->tls_ok = 1;
		break;
	case SMTP_EV_UNUSABLE_CLIENT_CERTIFICATE:
	case SMTP_EV_UNUSABLE_CA_LIST:
		snprintf(e->why, sizeof(e->why), "TLS: libesmtp cannot read "
		    "the client certificate or CA list under $HOME");
		break;
	default:
		break;
	}
	va_end(ap);
}

/*
 * libesmtp and TLS 1.3: a server's NewSessionTicket records come after
 * the handshake. When they reach libesmtp's first poll after STARTTLS, it
 * handles the socket being readable before writing, reads them while
 * waiting for the reply to an EHLO it has not flushed yet, and both sides
 * wait (libesmtp for 5 minutes). TLS 1.2 sends its ticket inside the
 * handshake. So SMTP sessions stop at TLS 1.2: set on the shared context,
 * under a lock, before libesmtp first uses it (every session comes here
 * first, so no session reads the setting while it is written).
 */
static void
tls12_at_most(SSL_CTX *ctx)
{
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

	pthread_mutex_lock(&lock);
	if (SSL_CTX_get_max_proto_version(ctx) != TLS1_2_VERSION)
		SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION);
	pthread_mutex_unlock(&lock);
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
	struct evctx ev = { r, 0, 0, "" };
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
	if (r->ssl_ctx) {
		tls12_at_most(r->ssl_ctx);
		smtp_starttls_set_ctx(s, r->ssl_ctx);
	}
	smtp_set_eventcb(s, event_cb, &ev);
	if (gathering)
		smtp_set_monitorcb(s, monitor_cb, &ev, 0);
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
		src[i].ev = &ev;
		mh[i] = smtp_add_message(s);
		smtp_set_reverse_path(mh[i], msgs[i].mail_from);
		smtp_set_messagecb(mh[i], message_cb, &src[i]);
		rh[i] = smtp_add_recipient(mh[i], msgs[i].rcpt);
		msgs[i].outcome = SMTP_DEFERRED;
	}
	session_fd = -1;                /* set when libesmtp connects */
	in_session = 1;
	ok = smtp_start_session(s);
	in_session = 0;
	session_fd = -1;
	spliced.p = NULL;
	free(stuffed);
	stuffed = NULL;
	stuffed_cap = 0;
	smtp_strerror(smtp_errno(), err, sizeof(err));
	for (size_t i = 0; i < n; i++) {
		const smtp_status_t *st = smtp_recipient_status(rh[i]);
		const smtp_status_t *ms = smtp_message_transfer_status(mh[i]);
		const smtp_status_t *rp = smtp_reverse_path_status(mh[i]);

		/* The sender refused, or the data refused: that decides. */
		snprintf(msgs[i].command, sizeof(msgs[i].command), "RCPT");
		if (rp && rp->code >= 400) {
			st = rp;
			snprintf(msgs[i].command, sizeof(msgs[i].command),
			    "MAIL");
		} else if (st && st->code >= 200 && st->code < 300 && ms &&
		    ms->code >= 400) {
			st = ms;
			snprintf(msgs[i].command, sizeof(msgs[i].command),
			    "DATA");
		}
		if (auth && st && (st->code == 530 || st->code == 534 ||
		    st->code == 535 || st->code == 538)) {
			/* our credentials, not the recipient: wait (and
			 * retry) rather than bounce */
			set_outcome(&msgs[i], st, "");
			msgs[i].outcome = SMTP_DEFERRED;
			snprintf(msgs[i].text, sizeof(msgs[i].text), "AUTH: "
			    "authentication refused by the server: %s",
			    st->text ? st->text : "");
			msgs[i].text[strcspn(msgs[i].text, "\r\n")] = '\0';
		} else if (!st || st->code == 0) {
			msgs[i].command[0] = '\0';
			set_outcome(&msgs[i], NULL, ev.why[0] ? ev.why :
			    !ok ? err : auth && (ev.tls_ok || r->tls ==
			    SMTP_TLS_NONE) ? "AUTH: authentication refused by the "
			    "server (or no mechanism in common)" : "not attempted: the session "
			    "ended before MAIL");
		} else
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

/* ---- one message at a time ------------------------------------------------ */

struct smtp_session {
	const struct smtp_relay *r;
	struct smtp_msg **msgs;         /* the caller's, filled at the end */
	size_t n, cap;
	char err[256];
};

struct smtp_session *
smtp_open(const struct smtp_relay *r, char *err, size_t n)
{
	struct smtp_session *s = calloc(1, sizeof(*s));

	if (!s)
		snprintf(err, n, "out of memory");
	else
		s->r = r;
	return s;
}

int
smtp_add(struct smtp_session *s, struct smtp_msg *m)
{
	m->outcome = SMTP_DEFERRED;
	m->command[0] = '\0';
	m->code = 0;
	m->status[0] = '\0';
	if (s->err[0]) {
		snprintf(m->text, sizeof(m->text), "%s", s->err);
		return -1;
	}
	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 16;
		struct smtp_msg **v = realloc(s->msgs, cap * sizeof(*v));

		if (!v) {
			snprintf(s->err, sizeof(s->err), "out of memory");
			snprintf(m->text, sizeof(m->text), "%s", s->err);
			return -1;
		}
		s->msgs = v;
		s->cap = cap;
	}
	s->msgs[s->n++] = m;
	return 0;
}

void
smtp_close(struct smtp_session *s)
{
	struct smtp_msg *v;

	if (!s)
		return;
	/* smtp_send() takes an array: the messages' envelopes and content
	 * by reference, their outcomes copied back */
	if (s->n && (v = malloc(s->n * sizeof(*v))) != NULL) {
		for (size_t i = 0; i < s->n; i++)
			v[i] = *s->msgs[i];
		smtp_send(s->r, v, s->n);
		for (size_t i = 0; i < s->n; i++)
			*s->msgs[i] = v[i];
		free(v);
	} else if (s->n) {
		for (size_t i = 0; i < s->n; i++)
			set_outcome(s->msgs[i], NULL, "out of memory");
	}
	free(s->msgs);
	free(s);
}

const char *
smtp_error(const struct smtp_session *s)
{
	return s->err;
}
