/*
 * mailbox - a blocking client for the mailboxes bounces come back to:
 * IMAP and POP3 (plain, or TLS on connect: imaps, pop3s; STARTTLS on
 * request) through libetpan.
 *
 * A session logs in and selects one folder; it lists the messages not
 * looked at yet (by UID: IMAP "UIDVALIDITY:UID", POP3 UIDL), fetches them
 * (up to a size limit each: IMAP reads a partial body, POP3 only the
 * header of a larger message, flagged truncated), and disposes of them:
 * delete (IMAP \Deleted with UID EXPUNGE of those UIDs only when the
 * server has UIDPLUS; POP3 DELE, done at mailbox_close), move to a folder
 * (IMAP MOVE, else COPY and delete; the folder is created when missing)
 * or mark \Seen (IMAP). With IMAP IDLE (when offered) it waits for new
 * mail; another thread may interrupt that wait. TLS certificates are
 * checked against the system's CAs (or ca_file) and the host name.
 *
 * Every call blocks (network, with the session's timeout): run it on a
 * worker thread (lib/workq), never on the event loop. One thread uses a
 * session at a time; only mailbox_interrupt() may be called from another.
 * It does not parse or record anything. Ownership: mailbox_open() returns
 * a session freed by mailbox_close(); lists and fetched messages belong
 * to the caller (mailbox_uids_free, buf_free).
 */
#ifndef LEADCAST_MAILBOX_H
#define LEADCAST_MAILBOX_H

#include <stddef.h>

struct buf;

enum mailbox_proto { MAILBOX_IMAP, MAILBOX_IMAPS, MAILBOX_POP3, MAILBOX_POP3S };

struct mailbox_params {
	enum mailbox_proto proto;
	const char *host;
	int port;                       /* 0: the protocol's default */
	const char *user, *password;
	const char *folder;             /* IMAP; "" = INBOX */
	int starttls;                   /* imap, pop3: STARTTLS, required */
	int tls_verify;                 /* check the certificate (TLS) */
	const char *ca_file;            /* "" = the system's CAs */
	long timeout_ms;                /* per network operation */
	size_t max_size;                /* bytes read of one message */
	/* IMAP folders the session will put messages in (created when
	 * missing at open; NULL or "" for none) */
	const char *move_folder, *review_folder;
};

/* A list of UIDs (NUL-terminated strings), owned. */
struct mailbox_uids {
	char **v;
	size_t n;
};
void mailbox_uids_free(struct mailbox_uids *u);

struct mailbox;

/* The protocol's name and default port; its number from a name
 * ("imap", "imaps", "pop3", "pop3s"), -1 for none. */
const char *mailbox_proto_name(enum mailbox_proto p);
int mailbox_proto_port(enum mailbox_proto p);
int mailbox_proto_parse(const char *name);

/*
 * Connect, (STARTTLS,) log in and select the folder. NULL with the reason
 * in err (size n): which step failed and the server's words, e.g.
 * "login refused: [AUTHENTICATIONFAILED] Authentication failed.".
 */
struct mailbox *mailbox_open(const struct mailbox_params *p, char *err,
    size_t n);
/* Log out (POP3: QUIT, which carries out the deletions) and free. NULL is
 * a no-op. Returns 0, or -1 if the server did not confirm the log-out
 * (POP3: then the deletions did not happen). */
int mailbox_close(struct mailbox *m);

/*
 * The messages of the folder not listed before in this session, oldest
 * first (IMAP: UIDs above the last listed; unseen only when unseen_only).
 * 0, or -1 with err filled (the session is then unusable: close it).
 */
int mailbox_list(struct mailbox *m, int unseen_only, struct mailbox_uids *out,
    char *err, size_t n);
/* Fetch message uid into out (reset first), at most max_size bytes;
 * *truncated says whether it was longer. 0, 1 when the message is gone
 * (expunged meanwhile), or -1 with err filled. */
int mailbox_fetch(struct mailbox *m, const char *uid, struct buf *out,
    int *truncated, char *err, size_t n);
/*
 * Fetch uids[0..count) (each as mailbox_fetch) in as few commands as the
 * sizes allow (IMAP: one UID FETCH per up to MAILBOX_FETCH_BYTES of
 * messages; POP3: one RETR each), calling cb(arg, i, data, len,
 * truncated) for each message found, uids[i] being its UID; data is valid
 * during the call only. Messages gone meanwhile are not reported. 0, or
 * -1 with err filled (the messages reported before stand).
 */
#define MAILBOX_FETCH_BYTES (16u << 20)
typedef void mailbox_msg_fn(void *arg, size_t i, const char *data,
    size_t len, int truncated);
int mailbox_fetch_many(struct mailbox *m, char *const *uids, size_t count,
    mailbox_msg_fn *cb, void *arg, char *err, size_t n);

/*
 * Dispose of uids[0..count): delete, move to folder, or mark \Seen (not
 * for POP3, which only deletes). 0, or -1 with err filled.
 */
enum mailbox_action { MAILBOX_DELETE, MAILBOX_MOVE, MAILBOX_SEEN };
int mailbox_dispose(struct mailbox *m, enum mailbox_action a,
    const char *folder, char *const *uids, size_t count, char *err, size_t n);

/* Does the server offer IDLE (IMAP)? */
int mailbox_has_idle(const struct mailbox *m);
/*
 * Wait with IDLE up to timeout_ms for the folder to change. 1 changed (or
 * probably), 0 timed out or interrupted, -1 error (err filled).
 */
int mailbox_idle(struct mailbox *m, long timeout_ms, char *err, size_t n);
/* From another thread: end a wait in mailbox_idle() now, or make the
 * next one return at once. */
void mailbox_interrupt(struct mailbox *m);

#endif
