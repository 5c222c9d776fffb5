/*
 * smtp - an SMTP client session for many messages. See smtp.h.
 *
 * One blocking session on a worker thread, in the shape of OpenSMTPD's
 * mta_session: the session walks its states (greeting, EHLO, STARTTLS,
 * AUTH, then per message MAIL, RCPT, DATA, the content, QUIT), writing
 * commands into one output buffer and reading the replies they owe.
 *
 * With PIPELINING (RFC 2920) each message costs one write and one round
 * trip: the previous message's content and its final dot go out with this
 * message's MAIL, RCPT and DATA, and the four replies come back together.
 * Without it, every command waits for its reply. The content is written
 * from the caller's memory (writev) unless a line needs dot-stuffing.
 *
 * The socket is blocking with SO_RCVTIMEO and SO_SNDTIMEO set to the
 * command timeout, so a silent server ends the session after that long.
 * TLS is OpenSSL on the caller's SSL_CTX, certificate and host name
 * checked after the handshake when verification is on.
 */
#include "smtp.h"

#include <errno.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "buf.h"

#define LINE_MAX_IN     1024    /* bytes of a reply line kept */
#define RBUF            4096

enum {
	EXT_PIPELINING = 1,
	EXT_STARTTLS = 2,
	EXT_ENHANCED = 4,
	EXT_AUTH_PLAIN = 8,
	EXT_AUTH_LOGIN = 16
};

struct reply {
	int code;               /* 0: none (the session failed) */
	char status[16];        /* "5.1.1" or "" */
	char text[256];         /* first line, after the codes */
};

struct sess {
	const struct smtp_relay *r;
	int fd;
	SSL *ssl;
	int ext;
	char rbuf[RBUF];
	size_t roff, rlen;
	struct buf out;         /* commands not yet written */
	struct buf stuffed;     /* a message's content, dot-stuffed */
	char err[256];          /* why the session failed, if it did */
};

void
smtp_global_init(void)
{
}

static void __attribute__((format(printf, 2, 3)))
fail(struct sess *s, const char *fmt, ...)
{
	va_list ap;

	if (s->err[0])
		return;         /* the first failure is the one to tell */
	va_start(ap, fmt);
	vsnprintf(s->err, sizeof(s->err), fmt, ap);
	va_end(ap);
}

static const char *
ssl_reason(void)
{
	unsigned long e = ERR_peek_last_error();
	const char *r = e ? ERR_reason_error_string(e) : NULL;

	ERR_clear_error();
	return r ? r : "unknown error";
}

/* ---- the connection -------------------------------------------------------- */

static int
set_timeouts(int fd, long ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	return setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) |
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/* Connect within the timeout to one of host's addresses. */
static int
sess_connect(struct sess *s)
{
	const struct smtp_relay *r = s->r;
	struct addrinfo hints, *res = NULL, *a;
	char port[16];
	int e, fd = -1, one = 1;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	snprintf(port, sizeof(port), "%d", r->port);
	if ((e = getaddrinfo(r->host, port, &hints, &res)) != 0) {
		fail(s, "%s: %s", r->host, gai_strerror(e));
		return -1;
	}
	for (a = res; a; a = a->ai_next) {
		struct pollfd p;
		socklen_t el = sizeof(e);
		int fl;

		if ((fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC,
		    a->ai_protocol)) < 0)
			continue;
		fl = fcntl(fd, F_GETFL);
		fcntl(fd, F_SETFL, fl | O_NONBLOCK);
		e = 0;
		if (connect(fd, a->ai_addr, a->ai_addrlen) < 0) {
			e = errno;
			if (e == EINPROGRESS) {
				p.fd = fd;
				p.events = POLLOUT;
				if (poll(&p, 1, r->timeout_ms > 0 ?
				    (int)r->timeout_ms : -1) == 1)
					getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el);
				else
					e = ETIMEDOUT;
			}
		}
		if (e == 0) {
			fcntl(fd, F_SETFL, fl);
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
			    sizeof(one));
			if (r->timeout_ms > 0)
				set_timeouts(fd, r->timeout_ms);
			break;
		}
		s->err[0] = '\0';
		fail(s, "connecting to %s port %d: %s", r->host, r->port,
		    strerror(e));
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		return -1;
	s->err[0] = '\0';
	s->fd = fd;
	return 0;
}

/* Write all of iov[0..n) (the array is consumed). */
static int
sess_writev(struct sess *s, struct iovec *iov, int n)
{
	if (s->ssl) {
		for (int i = 0; i < n; i++) {
			size_t off = 0;

			while (off < iov[i].iov_len) {
				size_t w;

				if (SSL_write_ex(s->ssl, (char *)iov[i].iov_base +
				    off, iov[i].iov_len - off, &w) != 1) {
					fail(s, "TLS write: %s", ssl_reason());
					return -1;
				}
				off += w;
			}
		}
		return 0;
	}
	while (n > 0) {
		struct msghdr mh;
		ssize_t w;

		memset(&mh, 0, sizeof(mh));
		mh.msg_iov = iov;
		mh.msg_iovlen = (size_t)n;
		if ((w = sendmsg(s->fd, &mh, MSG_NOSIGNAL)) < 0) {
			if (errno == EINTR)
				continue;
			fail(s, "writing to %s: %s", s->r->host,
			    errno == EAGAIN ? "timed out" : strerror(errno));
			return -1;
		}
		while (n > 0 && (size_t)w >= iov->iov_len) {
			w -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (char *)iov->iov_base + w;
			iov->iov_len -= (size_t)w;
		}
	}
	return 0;
}

/* Write the pending commands. */
static int
sess_flush(struct sess *s)
{
	struct iovec iov = { s->out.data, s->out.len };
	int rc;

	if (s->out.overflow) {
		fail(s, "out of memory");
		return -1;
	}
	if (s->out.len == 0)
		return 0;
	rc = sess_writev(s, &iov, 1);
	buf_reset(&s->out);
	return rc;
}

static int
sess_fill(struct sess *s)
{
	ssize_t n;

	if (s->roff > 0) {
		memmove(s->rbuf, s->rbuf + s->roff, s->rlen - s->roff);
		s->rlen -= s->roff;
		s->roff = 0;
	}
	if (s->ssl) {
		size_t got;

		if (SSL_read_ex(s->ssl, s->rbuf + s->rlen, RBUF - s->rlen,
		    &got) != 1) {
			fail(s, "TLS read from %s: %s", s->r->host,
			    ERR_peek_last_error() ? ssl_reason() :
			    "connection closed or timed out");
			return -1;
		}
		s->rlen += got;
		return 0;
	}
	do
		n = read(s->fd, s->rbuf + s->rlen, RBUF - s->rlen);
	while (n < 0 && errno == EINTR);
	if (n <= 0) {
		fail(s, "reading from %s: %s", s->r->host, n == 0 ?
		    "connection closed" : errno == EAGAIN ? "timed out" :
		    strerror(errno));
		return -1;
	}
	s->rlen += (size_t)n;
	return 0;
}

/* One reply line (CRLF or LF removed, cut to LINE_MAX_IN) into line. */
static int
read_line(struct sess *s, char *line, size_t n)
{
	size_t len = 0;

	for (;;) {
		char *nl = memchr(s->rbuf + s->roff, '\n', s->rlen - s->roff);
		size_t take = nl ? (size_t)(nl - (s->rbuf + s->roff)) :
		    s->rlen - s->roff;

		if (len < n - 1) {
			size_t k = take < n - 1 - len ? take : n - 1 - len;

			memcpy(line + len, s->rbuf + s->roff, k);
			len += k;
		}
		s->roff += take;
		if (nl) {
			s->roff++;
			break;
		}
		s->roff = s->rlen = 0;
		if (sess_fill(s) < 0)
			return -1;
	}
	if (len > 0 && line[len - 1] == '\r')
		len--;
	line[len] = '\0';
	return 0;
}

static void
ehlo_keyword(struct sess *s, const char *kw)
{
	if (strcasecmp(kw, "PIPELINING") == 0)
		s->ext |= EXT_PIPELINING;
	else if (strcasecmp(kw, "STARTTLS") == 0)
		s->ext |= EXT_STARTTLS;
	else if (strcasecmp(kw, "ENHANCEDSTATUSCODES") == 0)
		s->ext |= EXT_ENHANCED;
	else if (strncasecmp(kw, "AUTH", 4) == 0 && (kw[4] == ' ' ||
	    kw[4] == '=')) {
		char mechs[LINE_MAX_IN], *m, *save = NULL;

		snprintf(mechs, sizeof(mechs), "%s", kw + 5);
		for (m = strtok_r(mechs, " ", &save); m;
		    m = strtok_r(NULL, " ", &save)) {
			if (strcasecmp(m, "PLAIN") == 0)
				s->ext |= EXT_AUTH_PLAIN;
			else if (strcasecmp(m, "LOGIN") == 0)
				s->ext |= EXT_AUTH_LOGIN;
		}
	}
}

/*
 * Read one reply: its code, the enhanced status code that starts its
 * first line's text (if its class is the code's), the rest of that line.
 * ehlo: note the extensions of the following lines. -1 if the connection
 * failed or the reply is not SMTP.
 */
static int
read_reply(struct sess *s, struct reply *rp, int ehlo)
{
	char line[LINE_MAX_IN];
	int first = 1;

	memset(rp, 0, sizeof(*rp));
	for (;;) {
		int code, more;
		char *t;

		if (read_line(s, line, sizeof(line)) < 0)
			return -1;
		if (line[0] < '2' || line[0] > '5' || line[1] < '0' ||
		    line[1] > '9' || line[2] < '0' || line[2] > '9' ||
		    (line[3] != ' ' && line[3] != '-' && line[3] != '\0')) {
			fail(s, "%s sent something that is not an SMTP reply: "
			    "%.80s", s->r->host, line);
			return -1;
		}
		code = (line[0] - '0') * 100 + (line[1] - '0') * 10 +
		    (line[2] - '0');
		more = line[3] == '-';
		t = line + (line[3] ? 4 : 3);
		if (first) {
			size_t k = 0;
			int dots = 0;

			rp->code = code;
			/* "X.Y.Z " with X the code's class */
			if (t[0] == line[0] && t[1] == '.') {
				for (k = 1; t[k] && (t[k] == '.' ||
				    (t[k] >= '0' && t[k] <= '9')) && k < 11; k++)
					dots += t[k] == '.';
				if (dots == 2 && t[k - 1] != '.' &&
				    (t[k] == ' ' || t[k] == '\0')) {
					memcpy(rp->status, t, k);
					rp->status[k] = '\0';
					t += k;
					while (*t == ' ')
						t++;
				}
			}
			snprintf(rp->text, sizeof(rp->text), "%s", t);
			first = 0;
		} else if (code != rp->code) {
			fail(s, "%s: reply lines with different codes (%d, %d)",
			    s->r->host, rp->code, code);
			return -1;
		} else if (ehlo)
			ehlo_keyword(s, t);
		if (!more)
			return 0;
	}
}

/* Send one command and read its reply. */
static int
command(struct sess *s, struct reply *rp, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int
command(struct sess *s, struct reply *rp, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	buf_vprintf(&s->out, fmt, ap);
	va_end(ap);
	buf_puts(&s->out, "\r\n");
	return sess_flush(s) < 0 || read_reply(s, rp, 0) < 0 ? -1 : 0;
}

/* ---- the session: greeting, EHLO, STARTTLS, AUTH ------------------------------ */

static int
is_ip_literal(const char *h)
{
	unsigned char a[16];

	return strchr(h, ':') != NULL || inet_pton(AF_INET, h, a) == 1;
}

static int
starttls(struct sess *s)
{
	const struct smtp_relay *r = s->r;
	struct reply rp;
	long v;

	if (command(s, &rp, "STARTTLS") < 0)
		return -1;
	if (rp.code != 220) {
		fail(s, "STARTTLS refused by %s: %d %s", r->host, rp.code,
		    rp.text);
		return -1;
	}
	if (s->roff != s->rlen) {
		fail(s, "%s sent data before the TLS handshake", r->host);
		return -1;
	}
	if ((s->ssl = SSL_new(r->ssl_ctx)) == NULL ||
	    SSL_set_fd(s->ssl, s->fd) != 1) {
		fail(s, "TLS: %s", ssl_reason());
		return -1;
	}
	if (is_ip_literal(r->host))
		X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(s->ssl), r->host);
	else {
		SSL_set_tlsext_host_name(s->ssl, r->host);
		SSL_set1_host(s->ssl, r->host);
	}
	if (SSL_connect(s->ssl) != 1) {
		fail(s, "TLS handshake with %s: %s", r->host, ssl_reason());
		return -1;
	}
	if (r->tls_verify) {
		X509 *cert = SSL_get1_peer_certificate(s->ssl);

		v = SSL_get_verify_result(s->ssl);
		X509_free(cert);
		if (!cert) {
			fail(s, "TLS: %s sent no certificate", r->host);
			return -1;
		}
		if (v != X509_V_OK) {
			fail(s, "TLS: the certificate of %s is not trusted: %s",
			    r->host, X509_verify_cert_error_string(v));
			return -1;
		}
	}
	return 0;
}

static int
ehlo(struct sess *s)
{
	char host[256] = "localhost";
	const char *me = s->r->helo;
	struct reply rp;

	if (!me) {
		if (gethostname(host, sizeof(host) - 1) < 0 || !host[0])
			snprintf(host, sizeof(host), "localhost");
		me = host;
	}
	s->ext = 0;
	buf_printf(&s->out, "EHLO %s\r\n", me);
	if (sess_flush(s) < 0 || read_reply(s, &rp, 1) < 0)
		return -1;
	if (rp.code >= 500 && rp.code < 600) {  /* an old server */
		if (command(s, &rp, "HELO %s", me) < 0)
			return -1;
	}
	if (rp.code != 250) {
		fail(s, "%s refused our greeting: %d %s", s->r->host, rp.code,
		    rp.text);
		return -1;
	}
	return 0;
}

static void
b64(struct buf *out, const char *s, size_t n)
{
	unsigned char *p;

	buf_grow(out, 4 * ((n + 2) / 3) + 1);
	if (out->overflow)
		return;
	p = (unsigned char *)out->data + out->len;
	out->len += (size_t)EVP_EncodeBlock(p, (const unsigned char *)s,
	    (int)n);
}

static int
auth(struct sess *s)
{
	const struct smtp_relay *r = s->r;
	const char *pw = r->password ? r->password : "";
	struct reply rp;
	struct buf b = BUF_INIT;
	int rc = -1;

	if (!s->ssl && r->tls != SMTP_TLS_NONE) {
		fail(s, "not sending the password to %s unencrypted (it did "
		    "not offer STARTTLS; tls = none allows it)", r->host);
		return -1;
	}
	if (s->ext & EXT_AUTH_PLAIN) {
		struct buf cred = BUF_INIT;

		buf_putc(&cred, '\0');
		buf_puts(&cred, r->user);
		buf_putc(&cred, '\0');
		buf_puts(&cred, pw);
		buf_puts(&b, "AUTH PLAIN ");
		b64(&b, cred.data, cred.len);
		explicit_bzero(cred.data, cred.len);
		buf_free(&cred);
		if (command(s, &rp, "%s", buf_str(&b)) < 0)
			goto out;
	} else if (s->ext & EXT_AUTH_LOGIN) {
		if (command(s, &rp, "AUTH LOGIN") < 0)
			goto out;
		if (rp.code == 334) {
			b64(&b, r->user, strlen(r->user));
			if (command(s, &rp, "%s", buf_str(&b)) < 0)
				goto out;
		}
		if (rp.code == 334) {
			buf_reset(&b);
			b64(&b, pw, strlen(pw));
			if (command(s, &rp, "%s", buf_str(&b)) < 0)
				goto out;
		}
	} else {
		fail(s, "%s offers no AUTH PLAIN or LOGIN%s", r->host, s->ssl ?
		    "" : " (before STARTTLS)");
		goto out;
	}
	if (rp.code != 235) {
		fail(s, "authentication as %s refused by %s: %d%s%s %s",
		    r->user, r->host, rp.code, rp.status[0] ? " " : "",
		    rp.status, rp.text);
		goto out;
	}
	rc = 0;
out:
	if (b.data)
		explicit_bzero(b.data, b.len);
	if (s->out.data)
		explicit_bzero(s->out.data, s->out.cap);
	buf_free(&b);
	return rc;
}

/* Greeting, EHLO, STARTTLS and AUTH as the relay wants them. */
static int
sess_open(struct sess *s)
{
	const struct smtp_relay *r = s->r;
	struct reply rp;

	if (sess_connect(s) < 0 || read_reply(s, &rp, 0) < 0)
		return -1;
	if (rp.code != 220) {
		fail(s, "%s greeted us with %d %s", r->host, rp.code, rp.text);
		return -1;
	}
	if (ehlo(s) < 0)
		return -1;
	if (r->tls != SMTP_TLS_NONE && (s->ext & EXT_STARTTLS) && r->ssl_ctx) {
		if (starttls(s) < 0 || ehlo(s) < 0)
			return -1;
	} else if (r->tls == SMTP_TLS_REQUIRED) {
		fail(s, "%s does not offer STARTTLS, and tls = required",
		    r->host);
		return -1;
	}
	if (r->user && *r->user && auth(s) < 0)
		return -1;
	return 0;
}

/* ---- messages ------------------------------------------------------------------ */

static void
set_outcome(struct smtp_msg *m, const struct reply *rp)
{
	m->code = rp->code;
	snprintf(m->status, sizeof(m->status), "%s", rp->status);
	snprintf(m->text, sizeof(m->text), "%s", rp->text);
	if (m->code >= 200 && m->code < 300)
		m->outcome = SMTP_SENT;
	else if (m->code >= 500 && m->code < 600)
		m->outcome = SMTP_FAILED;
	else
		m->outcome = SMTP_DEFERRED;
}

/* Queue the envelope commands of m. */
static void
envelope(struct sess *s, const struct smtp_msg *m)
{
	buf_printf(&s->out, "MAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nDATA\r\n",
	    m->mail_from, m->rcpt);
}

/* 1 if a line of d (n bytes) starts with a dot: it needs stuffing. */
static int
needs_stuffing(const char *d, size_t n)
{
	const char *p = d, *end = d + n;

	if (n > 0 && d[0] == '.')
		return 1;
	while ((p = memchr(p, '\n', (size_t)(end - p))) != NULL)
		if (++p < end && *p == '.')
			return 1;
	return 0;
}

/*
 * Write m's content (NULL: none, an empty message), dot-stuffed and ended
 * by CRLF "." CRLF, followed by the commands queued in s->out: one write,
 * from the caller's memory when no line needs stuffing.
 */
static int
content(struct sess *s, const struct smtp_msg *m)
{
	const char *d = m && m->data ? m->data : "", *p, *q, *end;
	size_t len = m ? m->len : 0;
	int crlf = len >= 2 && d[len - 2] == '\r' && d[len - 1] == '\n';
	struct iovec iov[3];
	int n = 0, rc;

	end = d + len;
	if (len > 0 && !needs_stuffing(d, len)) {
		iov[n].iov_base = (void *)d;
		iov[n++].iov_len = len;
	} else if (len > 0) {
		buf_reset(&s->stuffed);
		buf_grow(&s->stuffed, len + len / 64 + 8);
		for (p = d; p < end; p = q) {
			if (*p == '.')
				buf_putc(&s->stuffed, '.');
			q = memchr(p, '\n', (size_t)(end - p));
			q = q ? q + 1 : end;
			buf_append(&s->stuffed, p, (size_t)(q - p));
		}
		if (s->stuffed.overflow) {
			fail(s, "out of memory");
			return -1;
		}
		iov[n].iov_base = s->stuffed.data;
		iov[n++].iov_len = s->stuffed.len;
	}
	iov[n].iov_base = (void *)(crlf || len == 0 ? ".\r\n" : "\r\n.\r\n");
	iov[n].iov_len = crlf || len == 0 ? 3 : 5;
	n++;
	if (s->out.len) {
		iov[n].iov_base = s->out.data;
		iov[n++].iov_len = s->out.len;
	}
	if (s->out.overflow) {
		fail(s, "out of memory");
		return -1;
	}
	rc = sess_writev(s, iov, n);
	buf_reset(&s->out);
	return rc;
}

/* ---- the session API ------------------------------------------------------------ */

/* The replies a session waits for, in the order their commands went out. */
enum expect { X_IGNORE, X_MAIL, X_RCPT, X_DATA, X_FINAL };

#define QMAX 8

struct smtp_session {
	struct sess s;
	int pipe;               /* PIPELINING */
	int broken;             /* the session failed: s.err says why */
	struct {
		enum expect what;
		struct smtp_msg *m;
	} q[QMAX];
	size_t nq;
	struct reply mail, rcpt, data;  /* of the message in its envelope */
	struct smtp_msg *ready;         /* DATA accepted: its content next */
	int dot;                /* DATA accepted for no one: "." next */
	int rset;               /* RSET owed before the next MAIL */
};

static void
expect(struct smtp_session *ss, enum expect what, struct smtp_msg *m)
{
	ss->q[ss->nq].what = what;
	ss->q[ss->nq++].m = m;
}

/* The session failed: messages in flight keep their deferral, with the
 * reason (unless a reply, a 421, gave them one). */
static void
broken(struct smtp_session *ss)
{
	ss->broken = 1;
	if (!ss->s.err[0])
		fail(&ss->s, "the session with %s failed", ss->s.r->host);
	for (size_t i = 0; i < ss->nq; i++) {
		struct smtp_msg *m = ss->q[i].m;

		if (m && m->code == 0)
			snprintf(m->text, sizeof(m->text), "%s", ss->s.err);
	}
	if (ss->ready && ss->ready->code == 0)
		snprintf(ss->ready->text, sizeof(ss->ready->text), "%s",
		    ss->s.err);
	ss->nq = 0;
	ss->ready = NULL;
}

/* The envelope's replies are in: the content goes next, or m is done. */
static void
decide(struct smtp_session *ss, struct smtp_msg *m)
{
	if (ss->mail.code / 100 != 2)
		set_outcome(m, &ss->mail);
	else if (ss->rcpt.code / 100 != 2)
		set_outcome(m, &ss->rcpt);
	else if (ss->data.code != 354)
		set_outcome(m, &ss->data);
	else {
		ss->ready = m;
		return;
	}
	/* the recipient was refused, yet DATA accepted (RFC 2920 3.1): an
	 * empty message, which fails */
	ss->dot = ss->data.code == 354;
	ss->rset = ss->mail.code / 100 == 2;
}

/* Read every reply owed, in order. -1 if the session failed. */
static int
read_owed(struct smtp_session *ss)
{
	struct reply rp;

	while (ss->nq > 0) {
		enum expect what = ss->q[0].what;
		struct smtp_msg *m = ss->q[0].m;

		if (read_reply(&ss->s, &rp, 0) < 0) {
			broken(ss);
			return -1;
		}
		memmove(ss->q, ss->q + 1, --ss->nq * sizeof(ss->q[0]));
		if (rp.code == 421) {   /* closing: m takes the reply */
			if (m)
				set_outcome(m, &rp);
			fail(&ss->s, "%s is closing the session: %d %s",
			    ss->s.r->host, rp.code, rp.text);
			broken(ss);
			return -1;
		}
		switch (what) {
		case X_IGNORE:
			break;
		case X_FINAL:
			set_outcome(m, &rp);
			break;
		case X_MAIL:
			ss->mail = rp;
			break;
		case X_RCPT:
			ss->rcpt = rp;
			break;
		case X_DATA:
			ss->data = rp;
			decide(ss, m);
			break;
		}
	}
	return 0;
}

/*
 * Write what is due (the ready message's content and its dot, or a lone
 * dot; an RSET owed) followed by next's envelope, or QUIT when next is
 * NULL. -1 if the session failed.
 */
static int
write_due(struct smtp_session *ss, struct smtp_msg *next)
{
	struct sess *s = &ss->s;
	struct smtp_msg *ready = ss->ready;
	int dot = ss->dot, rc;

	ss->ready = NULL;
	ss->dot = 0;
	if (ready)
		expect(ss, X_FINAL, ready);
	else if (dot)
		expect(ss, X_IGNORE, NULL);
	if (ss->rset && next) {
		buf_puts(&s->out, "RSET\r\n");
		expect(ss, X_IGNORE, NULL);
	}
	ss->rset = 0;
	if (next) {
		envelope(s, next);
		expect(ss, X_MAIL, next);
		expect(ss, X_RCPT, next);
		expect(ss, X_DATA, next);
	} else
		buf_puts(&s->out, "QUIT\r\n");
	rc = ready || dot ? content(s, ready) : sess_flush(s);
	if (rc < 0) {
		broken(ss);
		return -1;
	}
	return 0;
}

struct smtp_session *
smtp_open(const struct smtp_relay *r, char *err, size_t n)
{
	struct smtp_session *ss = calloc(1, sizeof(*ss));

	if (!ss) {
		snprintf(err, n, "out of memory");
		return NULL;
	}
	ss->s.r = r;
	ss->s.fd = -1;
	if (sess_open(&ss->s) < 0) {
		snprintf(err, n, "%s", ss->s.err);
		ss->broken = 1;
		smtp_close(ss);
		return NULL;
	}
	ss->pipe = (ss->s.ext & EXT_PIPELINING) != 0;
	return ss;
}

int
smtp_add(struct smtp_session *ss, struct smtp_msg *m)
{
	m->outcome = SMTP_DEFERRED;
	m->code = 0;
	m->status[0] = m->text[0] = '\0';
	/* no command injection through an address */
	if (!m->mail_from || !m->rcpt || strpbrk(m->mail_from, "\r\n<>") ||
	    strpbrk(m->rcpt, "\r\n<>")) {
		m->outcome = SMTP_FAILED;
		snprintf(m->text, sizeof(m->text), "an address holds CR, LF, < "
		    "or >");
		return 0;
	}
	if (ss->broken) {
		snprintf(m->text, sizeof(m->text), "%s", ss->s.err);
		return -1;
	}
	if (ss->pipe) {
		/* the previous envelope's replies (and the one before's
		 * final reply) are in by now: read them, then its content
		 * goes out with this envelope */
		if (read_owed(ss) < 0 || write_due(ss, m) < 0)
			goto failed;
		return 0;
	}
	/* one command at a time */
	memset(&ss->rcpt, 0, sizeof(ss->rcpt));
	memset(&ss->data, 0, sizeof(ss->data));
	if (ss->rset) {
		buf_puts(&ss->s.out, "RSET\r\n");
		expect(ss, X_IGNORE, NULL);
		ss->rset = 0;
		if (sess_flush(&ss->s) < 0 || read_owed(ss) < 0)
			goto failed;
	}
	buf_printf(&ss->s.out, "MAIL FROM:<%s>\r\n", m->mail_from);
	expect(ss, X_MAIL, m);
	if (sess_flush(&ss->s) < 0 || read_owed(ss) < 0)
		goto failed;
	if (ss->mail.code / 100 == 2) {
		buf_printf(&ss->s.out, "RCPT TO:<%s>\r\n", m->rcpt);
		expect(ss, X_RCPT, m);
		if (sess_flush(&ss->s) < 0 || read_owed(ss) < 0)
			goto failed;
	}
	if (ss->rcpt.code / 100 == 2) {
		buf_puts(&ss->s.out, "DATA\r\n");
		expect(ss, X_DATA, m);  /* its reply decides */
		if (sess_flush(&ss->s) < 0 || read_owed(ss) < 0)
			goto failed;
	} else
		decide(ss, m);
	if (ss->ready || ss->dot) {
		struct smtp_msg *ready = ss->ready;

		ss->ready = NULL;
		ss->dot = 0;
		expect(ss, ready ? X_FINAL : X_IGNORE, ready);
		if (content(&ss->s, ready) < 0 || read_owed(ss) < 0)
			goto failed;
	}
	return 0;
failed:
	if (!ss->broken)
		broken(ss);
	if (m->code == 0)
		snprintf(m->text, sizeof(m->text), "%s", ss->s.err);
	return -1;
}

void
smtp_close(struct smtp_session *ss)
{
	struct sess *s;

	if (!ss)
		return;
	s = &ss->s;
	if (!ss->broken && s->fd >= 0) {
		/* the last envelope's replies, its content, QUIT, its final
		 * reply (QUIT's is not needed) */
		if (read_owed(ss) == 0 && write_due(ss, NULL) == 0)
			read_owed(ss);
	}
	if (s->ssl) {
		if (!s->err[0])
			SSL_shutdown(s->ssl);
		SSL_free(s->ssl);
	}
	if (s->fd >= 0)
		close(s->fd);
	buf_free(&s->out);
	buf_free(&s->stuffed);
	free(ss);
}

const char *
smtp_error(const struct smtp_session *ss)
{
	return ss->s.err;
}

size_t
smtp_send(const struct smtp_relay *r, struct smtp_msg *msgs, size_t n)
{
	struct smtp_session *ss = NULL;
	char err[256] = "";
	size_t sent = 0;

	if (n > 0)
		ss = smtp_open(r, err, sizeof(err));
	for (size_t i = 0; i < n; i++) {
		if (ss)
			smtp_add(ss, &msgs[i]);
		else {
			msgs[i].outcome = SMTP_DEFERRED;
			msgs[i].code = 0;
			msgs[i].status[0] = '\0';
			snprintf(msgs[i].text, sizeof(msgs[i].text), "%s", err);
		}
	}
	smtp_close(ss);
	for (size_t i = 0; i < n; i++) {
		if (msgs[i].outcome == SMTP_SENT)
			sent++;
		else if (msgs[i].code == 0 && !msgs[i].text[0])
			snprintf(msgs[i].text, sizeof(msgs[i].text),
			    "not attempted");
	}
	return sent;
}
