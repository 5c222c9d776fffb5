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

/*
 * Write m's content, dot-stuffed and ended by CRLF "." CRLF, followed by
 * the commands queued in s->out, in one write when the content needs no
 * stuffing.
 */
static int
content(struct sess *s, const struct smtp_msg *m)
{
	const char *d = m->data ? m->data : "", *p, *q, *end = d + m->len;
	int crlf = m->len >= 2 && end[-2] == '\r' && end[-1] == '\n';
	struct iovec iov[3];
	int n = 0, rc;

	if (m->len > 0 && d[0] != '.' && !memmem(d, m->len, "\n.", 2)) {
		iov[n].iov_base = (void *)d;
		iov[n++].iov_len = m->len;
	} else {
		buf_reset(&s->stuffed);
		buf_grow(&s->stuffed, m->len + m->len / 64 + 8);
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
	iov[n].iov_base = (void *)(crlf || m->len == 0 ? ".\r\n" :
	    "\r\n.\r\n");
	iov[n].iov_len = crlf || m->len == 0 ? 3 : 5;
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

/* Read the reply to one command of a transaction; 1 if the server is
 * closing the session (421: m takes that reply), -1 on failure. */
static int
txn_reply(struct sess *s, struct smtp_msg *m, struct reply *rp)
{
	if (read_reply(s, rp, 0) < 0)
		return -1;
	if (rp->code != 421)
		return 0;
	set_outcome(m, rp);
	fail(s, "%s is closing the session: %d %s", s->r->host, rp->code,
	    rp->text);
	return 1;
}

/*
 * The transactions. Per message: MAIL, RCPT and DATA go out together
 * (with PIPELINING; else one at a time) after the previous message's
 * content; then come the previous message's final reply, an RSET's if one
 * was owed, and the three replies. A message whose replies never came is
 * left deferred for the caller.
 */
static void
transactions(struct sess *s, struct smtp_msg *msgs, size_t n)
{
	int pipe = (s->ext & EXT_PIPELINING) != 0, rset = 0;
	struct smtp_msg *prev = NULL;   /* its content goes out next */
	struct reply rp, mail, rcpt, data;

	for (size_t i = 0; i <= n; i++) {
		struct smtp_msg *m = i < n ? &msgs[i] : NULL;

		if (m && m->outcome == SMTP_FAILED)
			continue;       /* refused before the session */
		if (rset)
			buf_puts(&s->out, "RSET\r\n");
		if (m && pipe)
			envelope(s, m);
		else if (!m && pipe)
			buf_puts(&s->out, "QUIT\r\n");
		if (prev) {
			if (content(s, prev) < 0 || txn_reply(s, prev, &rp) != 0)
				return;
			set_outcome(prev, &rp);
			prev = NULL;
		} else if (sess_flush(s) < 0)
			return;
		if (!m) {
			if (!pipe && command(s, &rp, "QUIT") < 0)
				return;
			return;         /* QUIT's reply is not needed */
		}
		if (rset && read_reply(s, &rp, 0) < 0)
			return;
		rset = 0;
		memset(&rcpt, 0, sizeof(rcpt));
		memset(&data, 0, sizeof(data));
		if (pipe) {
			if (txn_reply(s, m, &mail) != 0 ||
			    txn_reply(s, m, &rcpt) != 0 ||
			    txn_reply(s, m, &data) != 0)
				return;
		} else {
			buf_printf(&s->out, "MAIL FROM:<%s>\r\n", m->mail_from);
			if (sess_flush(s) < 0 || txn_reply(s, m, &mail) != 0)
				return;
			if (mail.code / 100 == 2) {
				buf_printf(&s->out, "RCPT TO:<%s>\r\n", m->rcpt);
				if (sess_flush(s) < 0 ||
				    txn_reply(s, m, &rcpt) != 0)
					return;
			}
			if (rcpt.code / 100 == 2) {
				buf_puts(&s->out, "DATA\r\n");
				if (sess_flush(s) < 0 ||
				    txn_reply(s, m, &data) != 0)
					return;
			}
		}
		if (mail.code / 100 != 2)
			set_outcome(m, &mail);
		else if (rcpt.code / 100 != 2)
			set_outcome(m, &rcpt);
		else if (data.code != 354)
			set_outcome(m, &data);
		else {
			prev = m;       /* its content goes out next */
			continue;
		}
		if (data.code == 354) {
			/* the recipient was refused, yet DATA accepted (RFC
			 * 2920 3.1): an empty message, which fails */
			buf_puts(&s->out, ".\r\n");
			if (sess_flush(s) < 0 || read_reply(s, &rp, 0) < 0)
				return;
		}
		rset = mail.code / 100 == 2;
	}
}

size_t
smtp_send(const struct smtp_relay *r, struct smtp_msg *msgs, size_t n)
{
	struct sess s;
	size_t sent = 0;

	memset(&s, 0, sizeof(s));
	s.r = r;
	s.fd = -1;
	for (size_t i = 0; i < n; i++) {
		struct smtp_msg *m = &msgs[i];

		m->outcome = SMTP_DEFERRED;
		m->code = 0;
		m->status[0] = m->text[0] = '\0';
		/* no command injection through an address */
		if (!m->mail_from || !m->rcpt || strpbrk(m->mail_from,
		    "\r\n<>") || strpbrk(m->rcpt, "\r\n<>")) {
			m->outcome = SMTP_FAILED;
			snprintf(m->text, sizeof(m->text), "an address holds CR, "
			    "LF, < or >");
		}
	}
	if (n > 0 && sess_open(&s) == 0)
		transactions(&s, msgs, n);
	for (size_t i = 0; i < n; i++) {
		if (msgs[i].outcome == SMTP_SENT)
			sent++;
		else if (msgs[i].code == 0 && msgs[i].outcome != SMTP_FAILED)
			snprintf(msgs[i].text, sizeof(msgs[i].text), "%s",
			    s.err[0] ? s.err : "not attempted");
	}
	if (s.ssl) {
		if (!s.err[0])
			SSL_shutdown(s.ssl);
		SSL_free(s.ssl);
	}
	if (s.fd >= 0)
		close(s.fd);
	buf_free(&s.out);
	buf_free(&s.stuffed);
	return sent;
}
