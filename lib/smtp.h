/*
 * smtp - hand messages to an SMTP server: one blocking session, many
 * messages, each recipient's outcome recorded.
 *
 * Runs on a worker thread (workq), never on the loop. Its own client (no
 * library): EHLO (HELO for old servers), STARTTLS on the caller's shared
 * SSL_CTX (required, opportunistic or off; with verification, the chain
 * and the host name or IP address are checked), AUTH PLAIN or LOGIN when a
 * user is configured (never in the clear unless TLS is off by choice),
 * and with PIPELINING one write and one round trip per message: a
 * message's content goes out with the next message's MAIL, RCPT and DATA
 * (RFC 2920). Every command waits at most the timeout for its reply.
 * A reply is classified here: 2xx sent, 4xx (and a session that failed
 * before the server answered: code 0, the reason in text) deferred, 5xx
 * failed. It does not retry, look up MX hosts (dns.c) or decide on bounces
 * (the caller does).
 */
#ifndef LEADCAST_SMTP_H
#define LEADCAST_SMTP_H

#include <openssl/ssl.h>
#include <stddef.h>

enum smtp_tls { SMTP_TLS_NONE, SMTP_TLS_OPPORTUNISTIC, SMTP_TLS_REQUIRED };

struct smtp_relay {
	const char *host;
	int port;
	enum smtp_tls tls;
	int tls_verify;                 /* refuse a certificate that fails */
	SSL_CTX *ssl_ctx;               /* shared, with the trusted CAs */
	const char *user;               /* NULL: no AUTH */
	const char *password;
	const char *helo;               /* NULL: the host name */
	long timeout_ms;                /* per command */
};

enum smtp_outcome { SMTP_SENT, SMTP_DEFERRED, SMTP_FAILED };

struct smtp_msg {
	/* in */
	const char *mail_from;          /* envelope sender (VERP address) */
	const char *rcpt;
	const char *data;               /* the whole message, CRLF */
	size_t len;
	/* out */
	enum smtp_outcome outcome;
	int code;                       /* SMTP reply code, 0 if none */
	char status[16];                /* enhanced status, "5.1.1", or "" */
	char text[256];                 /* the server's words, or ours */
};

/* Once per process, before any session (nothing to do now). */
void smtp_global_init(void);
/*
 * Send msgs[0..n) in one session. Fills every message's outcome. Returns
 * the number sent.
 */
size_t smtp_send(const struct smtp_relay *r, struct smtp_msg *msgs, size_t n);

/*
 * The same, one message at a time, so that the caller can make the next
 * message while the server takes the last (and keep only a few in
 * memory). smtp_open() connects and does EHLO, STARTTLS and AUTH as r
 * says: NULL and err (size n) if that failed. smtp_add() sends m's
 * envelope; with PIPELINING, the content of the message added before goes
 * out in the same write, and the replies owed so far are read first. When
 * it returns, every message added before the one before m has its
 * outcome (without PIPELINING, m too); m (its data included) must stay
 * valid until then. It returns -1 once the session has failed: m and the
 * messages still in flight stay deferred, the reason in their text (code
 * 0, or the server's 421). smtp_close() finishes the last messages, says
 * QUIT and frees the session: then every message added has its outcome.
 * r must outlive the session.
 */
struct smtp_session;
struct smtp_session *smtp_open(const struct smtp_relay *r, char *err,
    size_t n);
int smtp_add(struct smtp_session *s, struct smtp_msg *m);
void smtp_close(struct smtp_session *s);
/* Why the session failed ("" if it has not). */
const char *smtp_error(const struct smtp_session *s);

#endif
