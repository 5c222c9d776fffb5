/*
 * dsn - read a bounce, complaint or auto-reply and say what it means for
 * each recipient.
 *
 * dsn_parse() takes one raw message (RFC 5322, CRLF or LF line ends),
 * parses its MIME structure with libetpan (mailmime_parse) and reads:
 *   - RFC 3464 delivery status notifications (message/delivery-status, and
 *     RFC 6533 message/global-delivery-status): the per-message fields
 *     (Reporting-MTA, Arrival-Date, X-Postfix-Sender, ...) and, per
 *     recipient, Final-Recipient, Original-Recipient, Action, Status,
 *     Remote-MTA, Diagnostic-Code, Last-Attempt-Date;
 *   - RFC 5965 feedback reports (message/feedback-report): complaints;
 *   - Amazon SES notifications (JSON: bounces, complaints, deliveries);
 *   - the plain-text bounces of MTAs that send no report part (Exim,
 *     qmail, Postfix and Sendmail without DSN, Exchange/Outlook, Lotus
 *     Domino, Courier, OpenSMTPD, Gmail, Yahoo, mobile carriers, ...),
 *     found by the standard phrases those MTAs write: a recipient line (an
 *     address that starts a line, or one named by "RCPT TO:", "Could not
 *     be delivered to:", ...) and the diagnostic that follows it;
 *   - RFC 3834 auto-replies (Auto-Submitted, X-Autoreply, Precedence,
 *     out-of-office subjects): a reply, not a bounce.
 * Each recipient gets a classification (dsn_classify): hard (the address
 * is bad), soft with a reason, complaint, auto-reply, delivered, or
 * unknown, from the report's Status, else the enhanced status code, SMTP
 * reply code and well-known phrases of the diagnostic text, and the SMTP
 * command it answered. The report also carries what identifies the
 * original message for matching: the VERP token of bounces+TOKEN@domain
 * (the bounce's own To / Delivered-To / X-Original-To, X-Postfix-Sender,
 * the original's Return-Path), the original's Message-ID, References,
 * List-Id, Feedback-ID and List-Unsubscribe token (headers leadcast adds:
 * lib/compose.c), and its To; for an auto-reply, its In-Reply-To and
 * References.
 *
 * Everything is bounded (struct dsn_limits, the DSN_MAX_* field sizes):
 * a longer message is read up to the limit only (report->truncated),
 * further MIME parts and recipients are ignored (counted), fields are cut
 * at a UTF-8 character boundary; every text field is cleaned of control
 * characters and invalid UTF-8 (so it can be stored as is). Character
 * sets other than ASCII/UTF-8 are not converted (their bytes become '?').
 *
 * It does not fetch mail, match a report to a delivery, record anything
 * or decide what to suppress: no I/O, no database, no logging, no global
 * state (thread-safe). Ownership: dsn_parse() fills a caller's struct
 * dsn_report whose recipient array it allocates; dsn_report_free()
 * releases it.
 */
#ifndef LEADCAST_DSN_H
#define LEADCAST_DSN_H

#include <stddef.h>

#define DSN_MAX_ADDR    320     /* bytes of an address, with its NUL */
#define DSN_MAX_HOST    256     /* a host name (Remote-MTA, Reporting-MTA) */
#define DSN_MAX_ID      256     /* a Message-ID, List-Id, Feedback-ID */
#define DSN_MAX_TEXT    1024    /* a diagnostic, References, a subject */
#define DSN_MAX_SHORT   64      /* a date, a token, an IP address */

struct dsn_limits {
	size_t max_size;        /* bytes of the message read (more: cut) */
	size_t max_parts;       /* MIME parts looked at */
	size_t max_rcpts;       /* recipients kept per report */
};
#define DSN_LIMITS_DEFAULT { 8u << 20, 128, 500 }

/* What kind of message it is. */
enum dsn_kind {
	DSN_KIND_NONE,          /* not a bounce, complaint or auto-reply */
	DSN_KIND_DSN,           /* RFC 3464 report */
	DSN_KIND_TEXT,          /* plain-text bounce of some MTA */
	DSN_KIND_ARF,           /* RFC 5965 feedback report */
	DSN_KIND_SES,           /* Amazon SES notification (JSON) */
	DSN_KIND_AUTOREPLY      /* RFC 3834 auto-reply, out of office */
};

/* What a recipient's report means. */
enum dsn_class {
	DSN_UNKNOWN,            /* not understood: keep for review, never
	                         * suppress */
	DSN_HARD,               /* the address is bad: suppress at once */
	DSN_SOFT,               /* may succeed later: count it */
	DSN_COMPLAINT,          /* the recipient complained (spam report) */
	DSN_AUTO_REPLY,         /* an automatic reply: not a bounce */
	DSN_DELIVERED           /* a success report (delivered, relayed) */
};

enum dsn_reason {
	DSN_R_NONE,
	/* hard */
	DSN_R_USER_UNKNOWN,     /* no such mailbox (X.1.1, X.1.3) */
	DSN_R_HOST_UNKNOWN,     /* no such domain (X.1.2, X.4.4 no host) */
	DSN_R_NO_MAIL,          /* the domain accepts no mail (null MX,
	                         * X.1.10) */
	DSN_R_MOVED,            /* mailbox moved, no forwarding (X.1.6, 551) */
	/* soft */
	DSN_R_MAILBOX_FULL,     /* over quota (X.2.2) */
	DSN_R_DISABLED,         /* mailbox disabled or suspended (X.2.1) */
	DSN_R_TOO_BIG,          /* message too big (X.2.3, X.3.4) */
	DSN_R_EXPIRED,          /* given up after retrying (X.4.7) */
	DSN_R_GREYLISTED,       /* greylisted, try again later */
	DSN_R_BLOCKED,          /* sending IP or domain blocked, blocklists,
	                         * reputation, missing reverse DNS */
	DSN_R_RATE_LIMITED,     /* too many connections or messages */
	DSN_R_AUTH_FAILED,      /* SPF, DKIM or DMARC failed (X.7.23-27) */
	DSN_R_POLICY,           /* other policy: relaying denied, TLS,
	                         * RFC compliance, security */
	DSN_R_SPAM,             /* content judged spam */
	DSN_R_VIRUS,            /* content carries a virus */
	DSN_R_FILTERED,         /* refused by a content filter, or after
	                         * DATA for a recipient accepted before */
	DSN_R_SENDER_REJECTED,  /* the envelope sender was refused (X.1.7,
	                         * X.1.8) */
	DSN_R_NETWORK,          /* connection or routing trouble (X.4.x) */
	DSN_R_SYSTEM,           /* the remote system failed (X.3.x), a local
	                         * mailer error */
	DSN_R_PROTOCOL,         /* SMTP syntax or protocol error (X.5.x) */
	DSN_R_DELAYED,          /* still being retried (Action: delayed) */
	DSN_R_TEMPORARY,        /* some other temporary failure (4xx) */
	/* others */
	DSN_R_COMPLAINT,        /* feedback report (abuse, fraud, ...) */
	DSN_R_AUTO_REPLY,       /* vacation, out of office, autoresponder */
	DSN_R_DELIVERED,        /* delivered, relayed or expanded */
	DSN_R_OTHER             /* a failure not understood */
};

/* Where a recipient's status came from. */
enum dsn_status_src {
	DSN_STATUS_NONE,        /* no status */
	DSN_STATUS_REPORT,      /* the report's Status field */
	DSN_STATUS_TEXT,        /* an enhanced code in the diagnostic text */
	DSN_STATUS_INFERRED     /* inferred from the reason and reply code */
};

struct dsn_rcpt {
	char address[DSN_MAX_ADDR];     /* the failed recipient ("" unknown) */
	char original[DSN_MAX_ADDR];    /* Original-Recipient, "" if none */
	char action[16];        /* failed, delayed, delivered, relayed,
	                         * expanded; "" if not said */
	char status[16];        /* RFC 3463 "5.1.1"; "" if none at all */
	enum dsn_status_src status_src;
	int smtp_code;          /* SMTP reply code, 0 if none */
	char command[8];        /* the SMTP command the error answered:
	                         * CONN, HELO, MAIL, RCPT, DATA; "" unknown */
	char remote_mta[DSN_MAX_HOST];  /* "" if not said */
	char diagnostic[DSN_MAX_TEXT];  /* Diagnostic-Code without its type,
	                                 * or the bounce's text for it */
	char diagnostic_type[16];       /* its type: smtp, x-unix, ... */
	char last_attempt[DSN_MAX_SHORT];
	enum dsn_class cls;
	enum dsn_reason reason;
};

/* What identifies the original message. Each field "" when not found. */
struct dsn_original {
	char verp_token[DSN_MAX_SHORT]; /* TOKEN of PREFIX+TOKEN@domain */
	char message_id[DSN_MAX_ID];    /* without the angle brackets */
	char references[DSN_MAX_TEXT];  /* as given (auto-replies: with
	                                 * In-Reply-To first) */
	char list_id[DSN_MAX_ID];
	char feedback_id[DSN_MAX_ID];
	char unsubscribe_token[DSN_MAX_SHORT];  /* /u/TOKEN of
	                                         * List-Unsubscribe */
	char x_leadcast[DSN_MAX_ID];    /* its first X-Leadcast-* header field,
	                                 * "Name: value" */
	char to[DSN_MAX_ADDR];          /* the original's first To address */
	char from[DSN_MAX_ADDR];
	char subject[DSN_MAX_ID];
};

struct dsn_report {
	enum dsn_kind kind;
	const char *format;     /* static: "rfc3464", "arf", "ses", "rfc3834",
	                         * or the MTA of a text bounce: "exim",
	                         * "qmail", "postfix", "sendmail", "exchange",
	                         * "domino", "opensmtpd", "gmail", "yahoo",
	                         * "courier", "dma", else "text"; "" for
	                         * none */
	char subject[DSN_MAX_ID];       /* the report's own Subject */
	char from[DSN_MAX_ADDR];        /* the report's own From address */
	char reporting_mta[DSN_MAX_HOST];
	char arrival_date[DSN_MAX_SHORT];
	char envelope_sender[DSN_MAX_ADDR];     /* X-Postfix-Sender, ARF
	                                         * Original-Mail-From */
	char envelope_id[DSN_MAX_ID];   /* Original-Envelope-Id */
	char feedback_type[32];         /* ARF: abuse, fraud, ...; SES */
	char source_ip[DSN_MAX_SHORT];  /* ARF Source-IP */
	struct dsn_original orig;
	int truncated;          /* the message was read up to max_size only */
	size_t dropped_rcpts;   /* recipients over max_rcpts, not kept */
	size_t dropped_parts;   /* MIME parts over max_parts, not read */
	size_t nrcpt;
	struct dsn_rcpt *rcpt;  /* nrcpt recipients, owned by the report */
};

/*
 * Read msg (len bytes, need not be NUL-terminated) into *out, which it
 * initializes (any earlier contents are not freed). lim NULL: the
 * defaults. Returns 0: out->kind says what the message is (NONE for
 * unrelated mail, with no recipients); or -1 when memory ran out (out is
 * then empty). Either way the caller calls dsn_report_free(out).
 */
int dsn_parse(const char *msg, size_t len, const struct dsn_limits *lim,
    struct dsn_report *out);
void dsn_report_free(struct dsn_report *r);

/*
 * Classify one recipient from its action, status, smtp_code, command,
 * diagnostic and diagnostic_type (set what is known, "" / 0 for the
 * rest): sets cls and reason, smtp_code and command when the diagnostic
 * names them, and when status is "" an inferred one (status_src
 * DSN_STATUS_INFERRED; none for an unknown failure); a status found in
 * the diagnostic text replaces an empty or X.0.0 one (DSN_STATUS_TEXT).
 *
 * DSN_HARD needs certainty that the address is bad: a domain that does
 * not exist or takes no mail, a mailbox that moved, or "no such user"
 * with an X.1.x status, as the answer to RCPT TO, or in the words of the
 * directory that owns the mailbox. "No such user" without that, or after
 * DATA (a content filter's), is DSN_SOFT; so is every temporary failure
 * and delay. An error that answered MAIL FROM or EHLO is about the
 * sender, never the recipient. A failure nothing explains is
 * DSN_UNKNOWN.
 *
 * dsn_parse() calls it for every recipient; the sender calls it for the
 * 4xx and 5xx answers it gets at SMTP time (action "", smtp_code and the
 * reply text as diagnostic, command "RCPT", "DATA", ...). Calling it
 * again on the same record gives the same result.
 */
void dsn_classify(struct dsn_rcpt *r);

/* Stable lowercase names, for storage and display. */
const char *dsn_kind_name(enum dsn_kind k);
const char *dsn_class_name(enum dsn_class c);   /* "hard", "soft", ... */
const char *dsn_reason_name(enum dsn_reason r); /* "user_unknown", ... */

#endif
