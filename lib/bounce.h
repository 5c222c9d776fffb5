/*
 * bounce - what leadcast records of one message from a bounce mailbox,
 * given lib/dsn's reading of it: the message's key (its own Message-ID,
 * else a SHA-256 digest of its bytes: how a message is recognized when it
 * is seen again), the ids that match it to the delivery it is about (the
 * VERP token of bounces+TOKEN@domain and the List-Unsubscribe token,
 * verified with the URL-token key; the original's Message-ID and
 * References; the campaign of its Feedback-ID), and the whole as one JSON
 * document: the input of leadcast_bounce_message() (lib/sql/
 * 010_bounces.sql) and what `leadcast bounces test` prints.
 *
 * It does not fetch, parse MIME (lib/dsn does) or touch the database.
 * Thread-safe. Ownership: bounce_describe() returns a new JSON object
 * (json_decref).
 */
#ifndef LEADCAST_BOUNCE_H
#define LEADCAST_BOUNCE_H

#include <jansson.h>
#include <stddef.h>

struct dsn_report;
struct token_key;

#define BOUNCE_KEY_MAX 300      /* "<message-id>" or "sha256:HEX", NUL */

/* The key of msg (len bytes) into out (size >= BOUNCE_KEY_MAX). */
void bounce_key(const char *msg, size_t len, char *out);

/*
 * {"kind", "format", "from", "subject", "key", "truncated",
 *  "match": {"verp_token", "verp", "unsubscribe_token", "unsubscribe",
 *            "feedback_id", "message_id",
 *            "references": [...], "campaign", "to"},
 *  "recipients": [{"email", "original", "action", "class", "reason",
 *                  "status", "code", "command", "remote_mta",
 *                  "diagnostic"}, ...]}
 * kind is lib/dsn's name ("dsn", "text", "arf", "ses", "auto_reply"),
 * "none" for mail that is not a report, or "unknown" for mail that looks
 * like one nobody could read: addressed to a VERP address, or sent by a
 * mailer daemon or postmaster. key may be NULL (no token is verified then,
 * the ids are left out). Match ids are numbers, absent when unknown.
 * NULL when memory ran out.
 */
json_t *bounce_describe(const char *msg, size_t len,
    const struct dsn_report *r, const struct token_key *key);

#endif
