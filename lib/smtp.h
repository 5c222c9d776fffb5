/*
 * smtp - hand messages to an SMTP server with libesmtp: one blocking
 * session, many messages, each recipient's outcome recorded.
 *
 * Runs on a worker thread (workq), never on the loop. TLS uses the
 * caller's shared SSL_CTX (STARTTLS required, opportunistic or off); AUTH
 * PLAIN/LOGIN through libesmtp's SASL client when a user is configured.
 * A reply is classified here: 2xx sent, 4xx (and a session that failed
 * before the server answered) deferred, 5xx failed. It does not retry,
 * look up MX hosts (dns.c) or decide on bounces (the caller does).
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
	char command[8];                /* what the answer was to: MAIL, RCPT,
	                                 * DATA; "" if none or unknown */
};

/* Once per process, before any session. */
void smtp_global_init(void);
/* Called by the daemon's connect() (daemon/nodelay.c) with each TCP
 * socket a thread connects: during a session, libesmtp's. */
void smtp_connected(int fd);
/* The daemon's write() keeps what is written to the session's socket
 * until the next read, poll or close of it (daemon/nodelay.c): on says
 * it does, once, before any session. smtp_gathers(fd): is fd the socket
 * of the calling thread's session, whose writes are to be kept? Without
 * it, the socket is corked while a message's content is written. */
void smtp_set_gathering(int on);
int smtp_gathers(int fd);
/* The body of the message whose header the session just wrote to fd, when
 * libesmtp was given the header only (see message_cb() in smtp.c): 1 and
 * *p, *n (dot-stuffed, ending in CRLF) to be sent after what was written
 * to fd up to, not including, the final ".\r\n"; 0 if none. Taking it
 * clears it. For the daemon's write() (daemon/nodelay.c). */
int smtp_take_body(int fd, const char **p, size_t *n);
/*
 * Send msgs[0..n) in one session. Fills every message's outcome. Returns
 * the number sent.
 */
size_t smtp_send(const struct smtp_relay *r, struct smtp_msg *msgs, size_t n);

/*
 * The same, one message at a time: smtp_open() starts a session (libesmtp
 * connects only when it runs: a failure to connect, negotiate TLS or
 * authenticate shows in the outcomes); smtp_add() keeps m, whose
 * envelope and content are sent from the caller's buffers: m and they
 * must stay valid until smtp_close(); smtp_close() runs the session (one
 * connection, commands pipelined when the server offers PIPELINING), fills
 * every message's outcome and frees the session. smtp_add() returns -1
 * (m deferred, the reason in its text) when it could not take m.
 */
struct smtp_session;
struct smtp_session *smtp_open(const struct smtp_relay *r, char *err,
    size_t n);
int smtp_add(struct smtp_session *s, struct smtp_msg *m);
void smtp_close(struct smtp_session *s);
/* Why the session cannot take more ("" if it can). */
const char *smtp_error(const struct smtp_session *s);

#endif
