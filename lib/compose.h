/*
 * compose - one personalized, tracked, signed message for one recipient:
 * renders the templates (subject, from, reply-to, preheader, HTML, text)
 * against the recipient's data, rewrites the HTML's links to signed click
 * links and adds the open pixel, makes the text part from the HTML when
 * there is no text template, adds the list headers (List-Unsubscribe with
 * RFC 8058 one-click, List-Id, Feedback-ID), builds the MIME message and
 * signs it with DKIM; also gives the VERP envelope sender.
 *
 * Pure and thread-safe: workers call it concurrently. It needs the id of
 * every link it rewrites; links not yet in the campaign's link table are
 * reported back (COMPOSE_NEED_LINKS) so the loop can add them and retry.
 * It does not send, and it does not read the database.
 */
#ifndef LEADCAST_COMPOSE_H
#define LEADCAST_COMPOSE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "token.h"

struct tmpl;
struct tmpl_set;
struct dkim_keys;

/* What every message of one campaign (or notification kind) shares. */
struct compose_spec {
	const char *name;               /* campaign name: List-Id, Feedback-ID */
	uint64_t campaign_id;
	const struct tmpl *from, *reply_to, *subject, *preheader;
	const struct tmpl *html, *text; /* at least one */
	const struct tmpl_set *partials;
	int bulk;                       /* list headers and unsubscribe link */
	int track;                      /* click links and open pixel */
	/* environment */
	const char *public_url;         /* "https://host" (no trailing /) */
	const char *bounce_domain;      /* "" = the From domain */
	const char *unsubscribe_mailto; /* "" = none */
	const char *list_id_domain;     /* "" = the From domain */
	size_t max_size;
	const struct token_key *key;
	const struct dkim_keys *dkim;   /* NULL = unsigned */
	/* link ids: 0 if the link is not known yet */
	uint64_t (*link_id)(void *arg, const char *url, const char *tag);
	void *link_arg;
};

/* Links the campaign's table lacks, for COMPOSE_NEED_LINKS. */
struct compose_links {
	char **url, **tag;
	size_t n;
};
void compose_links_free(struct compose_links *l);

enum compose_result {
	COMPOSE_OK = 0,
	COMPOSE_NEED_LINKS = 1,         /* add `missing` to the link table, retry */
	COMPOSE_FAILED = -1             /* this recipient cannot get this message */
};

struct compose_out {
	struct buf msg;                 /* the signed message, CRLF */
	char mail_from[320];            /* VERP envelope sender */
	char message_id[256];           /* without <> */
	struct compose_links missing;
	char err[256];
};

/*
 * Compose the message of delivery `delivery_id` to rcpt, with data (the
 * lead: fields for the templates). out must be zeroed or reset by
 * compose_out_reset(); free it with compose_out_free().
 */
enum compose_result compose_message(const struct compose_spec *spec,
    uint64_t delivery_id, const char *rcpt, const json_t *data,
    struct compose_out *out);
void compose_out_reset(struct compose_out *out);
void compose_out_free(struct compose_out *out);

#endif
