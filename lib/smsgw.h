/*
 * smsgw - SMS gateways: conf/sms.conf, and the pure parts of talking to a
 * gateway: the request that sends one message, reading the gateway's
 * answer, the status words of its delivery reports, the parameters of its
 * inbound messages, and who may call the endpoints that receive them.
 *
 * sms.conf (an optional file next to leadcast.conf, like routing.conf;
 * conf/sms.conf documents every key):
 *     default = "kannel"
 *     offer_segments = 2
 *     gateway "kannel" { type = kannel  url = "http://127.0.0.1:13013/
 *         cgi-bin/sendsms"  username = "leadcast"  password_file = ...
 *         dlr_mask = 31  sender = "Leadcast"  rate = 20  timeout = 10s
 *         retries = 3  retry_base = 5s  failover = "twilio"
 *         secret_file = ...  allow_from = { "127.0.0.1" } }
 *     gateway "twilio" { type = http  method = POST  url = "..."
 *         body = "To={{to}}&From={{from}}&Body={{text}}"  body_format = form
 *         headers = { "Authorization: Basic {{basic_auth}}" }
 *         success = "\"status\": *\"(queued|accepted|sent)\""
 *         message_id = "\"sid\": *\"([A-Za-z0-9]+)\""  ... }
 *     gateway "att" { type = email2sms  address = "{{national}}@txt.att.net" }
 *
 * Templates (url, body, headers, address) are Mustache over the message:
 * {{to}} (E.164), {{to_digits}} (without "+"), {{national}} (see below),
 * {{from}} (the sender id), {{text}}, {{id}} (leadcast's message
 * id), {{dlr_url}} (where the gateway reports delivery), {{encoding}}
 * (gsm7 or ucs2), {{coding}} (0 or 2, Kannel's numbers), {{segments}},
 * {{username}}, {{password}}, {{basic_auth}} (base64 of username:password).
 * {{national}} is the 10 digits of a +1 number (email2sms gateways are
 * North American), else the digits without "+".
 * Every value is encoded for where it lands: percent-encoded in a url and
 * in a form body, escaped in a JSON body (so a JSON body's template quotes
 * its strings: "{\"to\": \"{{to}}\"}"), as is in headers and addresses
 * (where CR and LF are refused).
 *
 * It does no I/O except reading sms.conf and the secret files it names,
 * and no logging. A loaded configuration is immutable.
 */
#ifndef LEADCAST_SMSGW_H
#define LEADCAST_SMSGW_H

#include <netinet/in.h>
#include <regex.h>
#include <stddef.h>

#include "buf.h"
#include "cfgfile.h"
#include "conf.h"

struct tmpl;

enum smsgw_type { SMSGW_KANNEL, SMSGW_HTTP, SMSGW_EMAIL2SMS };
enum smsgw_format { SMSGW_FORM, SMSGW_JSON };

struct smsgw_net {
	int family;                     /* AF_INET or AF_INET6 */
	unsigned char addr[16];
	int bits;
};

struct smsgw {
	char *name;
	char *type_src;
	enum smsgw_type type;
	char *sender;                   /* sender id: E.164 or up to 11
	                                 * letters and digits; "" = none */
	long rate;                      /* messages per second; 0 = no limit */
	char *price_src;
	double price;                   /* per part (segment), in the
	                                 * account's currency; 0 = not set */
	long timeout_ms;
	long retries;                   /* attempts after the first */
	long retry_base_ms;             /* backoff: doubles per attempt */
	long connections;               /* requests in flight at once */
	char *ca_file;                  /* https: CAs to trust; "" = system */
	char *failover;                 /* gateway name, "" = none */
	char *secret;                   /* inline, or read from secret_file */
	char *secret_file;
	struct conf_strlist allow_from_src;
	struct conf_strlist teams, reps; /* used for these; empty = default */
	/* kannel and http */
	char *url;                      /* kannel: sendsms; http: template */
	char *username;
	char *password;                 /* inline, or from password_file */
	char *password_file;
	long dlr_mask;                  /* kannel */
	char *smsc;                     /* kannel: smsc-id to route by */
	char *method;                   /* http: GET or POST */
	char *body;                     /* http: template */
	char *body_format_src;
	struct conf_strlist headers;    /* http: "Name: value" templates */
	char *success;                  /* http: regex the answer must match */
	char *message_id;               /* http: regex, group 1 = the id */
	/* inbound and delivery reports: parameter names */
	char *in_from, *in_to, *in_text;
	char *dlr_id, *dlr_msgid, *dlr_status;
	struct conf_strlist dlr_delivered, dlr_failed;
	/* email2sms */
	char *address;                  /* template */
	/* derived */
	enum smsgw_format body_format;
	struct tmpl *url_t, *body_t, *address_t;
	struct tmpl **header_t;
	regex_t success_re, message_id_re;
	int has_success, has_message_id;
	struct smsgw_net *allow;
	size_t nallow;
	size_t failover_i;              /* index, or (size_t)-1 */
};

struct smsgw_conf {
	char *path;
	char *default_name;
	long offer_segments;            /* 1 or 2 (up to SMS_MAX_SEGMENTS) */
	long reminder_ms;               /* before an offer's deadline; 0 = no
	                                 * reminders */
	long lease_ms;
	struct smsgw *v;
	size_t n;
	size_t def;                     /* index of the default gateway */
	int has_email2sms;
};

/*
 * Load path. Returns a new conf (free with smsgw_conf_free) or NULL with
 * every problem appended to errs as "file:line:col: message".
 */
struct smsgw_conf *smsgw_load(const char *path, struct cfgfile_errors *errs);
struct smsgw_conf *smsgw_load_string(const char *name, const char *text,
    size_t len, struct cfgfile_errors *errs);
void smsgw_conf_free(struct smsgw_conf *c);

/* The gateway called name, or NULL. */
const struct smsgw *smsgw_find(const struct smsgw_conf *c, const char *name);
/* The gateway for a message to rep (id, may be NULL) of team (may be
 * NULL): the first whose reps list the rep, else whose teams list the
 * team, else the default. Never NULL for a loaded conf. */
const struct smsgw *smsgw_for(const struct smsgw_conf *c, const char *rep,
    const char *team);
const char *smsgw_type_name(enum smsgw_type t);

/* One message to send. */
struct smsgw_msg {
	long long id;                   /* leadcast's id (sms.id) */
	const char *to;                 /* E.164 */
	const char *text;               /* UTF-8 */
	int ucs2;                       /* the encoding sms_measure chose */
	int segments;
	const char *dlr_url;            /* "" = none */
};

/* The HTTP request that sends it (kannel and http gateways). */
struct smsgw_req {
	int post;
	struct buf url;                 /* absolute http:// or https:// URL */
	struct buf headers;             /* "Name: value\n" lines */
	struct buf body;
	const char *content_type;       /* NULL without a body */
};

void smsgw_req_init(struct smsgw_req *r);
void smsgw_req_free(struct smsgw_req *r);
/* Build the request for m through g. 0, or -1 with a reason in err. */
int smsgw_request(const struct smsgw *g, const struct smsgw_msg *m,
    struct smsgw_req *out, char *err, size_t errn);
/* email2sms: the address for m (into out). 0 or -1 with err. */
int smsgw_address(const struct smsgw *g, const struct smsgw_msg *m,
    struct buf *out, char *err, size_t errn);

enum smsgw_outcome {
	SMSGW_SENT,                     /* accepted by the gateway */
	SMSGW_RETRY,                    /* temporary: try again later */
	SMSGW_REJECTED                  /* permanent: retrying cannot help */
};

/*
 * Judge the gateway's answer: HTTP status (0: no answer, a timeout or a
 * connection failure) and body. The gateway's message id, when it gives
 * one, goes to msgid (size n; "" otherwise); why it failed to why.
 */
enum smsgw_outcome smsgw_response(const struct smsgw *g, int status,
    const char *body, size_t len, char *msgid, size_t n, char *why,
    size_t whyn);

enum smsgw_dlr { SMSGW_DLR_DELIVERED, SMSGW_DLR_FAILED, SMSGW_DLR_PENDING };
/* What a delivery report's status word (or Kannel number) means. */
enum smsgw_dlr smsgw_dlr_status(const struct smsgw *g, const char *status);

/*
 * May this caller use the gateway's /sms/in and /sms/dlr endpoints?
 * secret: what the request presented (a query parameter or header; NULL
 * if none), compared in constant time; ip: the peer's address (text).
 * With both a secret and an allow-list configured, both must pass.
 * A gateway with neither allows nobody.
 */
int smsgw_authorized(const struct smsgw *g, const char *secret,
    const char *ip);

/* Percent-encode s (RFC 3986 unreserved kept) onto out. */
int smsgw_urlencode(struct buf *out, const char *s);

#endif
