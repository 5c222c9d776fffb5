/*
 * mailbox - blocking IMAP and POP3 sessions through libetpan, for the
 * bounce reader (see mailbox.h). It does not parse or record messages.
 */
#include "config.h"
#include "mailbox.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libetpan/libetpan.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

struct mailbox {
	struct mailbox_params p;
	mailimap *imap;
	mailpop3 *pop;
	uint32_t uidvalidity;
	uint32_t last_uid;              /* IMAP: the highest UID listed */
	int listed;                     /* POP3: the list was read */
	int has_idle, has_uidplus, has_move;
	/* POP3: UIDL -> message number, and which were handed out */
	char **pop_uidl;
	unsigned *pop_index;
	uint32_t *pop_size;
	size_t pop_n;
	/* IDLE, and interruption from another thread */
	pthread_mutex_t lock;
	int idle_ready;                 /* mailstream_setup_idle done */
	int idling;
	int interrupted;
};

void
mailbox_uids_free(struct mailbox_uids *u)
{
	for (size_t i = 0; i < u->n; i++)
		free(u->v[i]);
	free(u->v);
	u->v = NULL;
	u->n = 0;
}

static int
uids_add(struct mailbox_uids *u, const char *s)
{
	char **v = realloc(u->v, (u->n + 1) * sizeof(*v));

	if (!v)
		return -1;
	u->v = v;
	if (!(v[u->n] = strdup(s)))
		return -1;
	u->n++;
	return 0;
}

static const char *const proto_names[] = { "imap", "imaps", "pop3", "pop3s" };

const char *
mailbox_proto_name(enum mailbox_proto p)
{
	return (unsigned)p < 4 ? proto_names[p] : "?";
}

int
mailbox_proto_port(enum mailbox_proto p)
{
	static const int ports[] = { 143, 993, 110, 995 };

	return (unsigned)p < 4 ? ports[p] : 0;
}

int
mailbox_proto_parse(const char *name)
{
	for (int i = 0; i < 4; i++)
		if (strcmp(name, proto_names[i]) == 0)
			return i;
	return -1;
}

static int
is_pop(const struct mailbox *m)
{
	return m->p.proto == MAILBOX_POP3 || m->p.proto == MAILBOX_POP3S;
}

static int
is_tls(const struct mailbox *m)
{
	return m->p.proto == MAILBOX_IMAPS || m->p.proto == MAILBOX_POP3S ||
	    m->p.starttls;
}

/* The server's last words, cleaned for a log line. */
static const char *
said(const struct mailbox *m, char *out, size_t n)
{
	const char *s = m->imap ? m->imap->imap_response :
	    m->pop ? m->pop->pop3_response : NULL;
	size_t k = 0;

	if (!s || !*s) {
		snprintf(out, n, "no answer");
		return out;
	}
	for (; *s && k + 1 < n && k < 200; s++)
		out[k++] = (unsigned char)*s < 0x20 ? ' ' : *s;
	out[k] = '\0';
	return out;
}

static const char *
imap_error(int r)
{
	switch (r) {
	case MAILIMAP_ERROR_STREAM: return "connection lost or timed out";
	case MAILIMAP_ERROR_CONNECTION_REFUSED: return "connection refused";
	case MAILIMAP_ERROR_PARSE: return "unreadable answer";
	case MAILIMAP_ERROR_MEMORY: return "out of memory";
	case MAILIMAP_ERROR_BAD_STATE: return "bad state";
	case MAILIMAP_ERROR_SSL: return "TLS failed";
	default: return "refused";
	}
}

static const char *
pop_error(int r)
{
	switch (r) {
	case MAILPOP3_ERROR_STREAM: return "connection lost or timed out";
	case MAILPOP3_ERROR_CONNECTION_REFUSED: return "connection refused";
	case MAILPOP3_ERROR_BAD_USER: return "user refused";
	case MAILPOP3_ERROR_BAD_PASSWORD: return "password refused";
	case MAILPOP3_ERROR_MEMORY: return "out of memory";
	case MAILPOP3_ERROR_SSL: return "TLS failed";
	case MAILPOP3_ERROR_NO_SUCH_MESSAGE: return "no such message";
	default: return "refused";
	}
}

/*
 * Check the TLS peer's certificate chain (DER, from libetpan, which does
 * not check it) with OpenSSL: trusted by ca_file or the system's CAs,
 * valid now, and naming host (DNS name or IP address).
 */
static int
verify_chain(struct mailbox *m, mailstream *s, char *err, size_t n)
{
	carray *chain = mailstream_get_certificate_chain(s);
	X509_STORE *store = NULL;
	X509_STORE_CTX *ctx = NULL;
	STACK_OF(X509) *untrusted = NULL;
	X509 *leaf = NULL;
	X509_VERIFY_PARAM *vp;
	unsigned char a[16];
	int ok = -1;

	if (!chain || carray_count(chain) == 0) {
		snprintf(err, n, "TLS: the server sent no certificate");
		goto done;
	}
	if (!(store = X509_STORE_new()) || !(untrusted = sk_X509_new_null()))
		goto oom;
	if (m->p.ca_file && *m->p.ca_file) {
		if (X509_STORE_load_locations(store, m->p.ca_file, NULL) != 1) {
			snprintf(err, n, "TLS: cannot load CAs from %s",
			    m->p.ca_file);
			goto done;
		}
	} else {
		X509_STORE_set_default_paths(store);
	}
	for (unsigned i = 0; i < carray_count(chain); i++) {
		MMAPString *der = carray_get(chain, i);
		const unsigned char *p = (const unsigned char *)der->str;
		X509 *x = d2i_X509(NULL, &p, (long)der->len);

		if (!x) {
			snprintf(err, n, "TLS: unreadable certificate");
			goto done;
		}
		if (i == 0)
			leaf = x;
		else
			sk_X509_push(untrusted, x);
	}
	if (!(ctx = X509_STORE_CTX_new()) ||
	    X509_STORE_CTX_init(ctx, store, leaf, untrusted) != 1)
		goto oom;
	vp = X509_STORE_CTX_get0_param(ctx);
	if (inet_pton(AF_INET, m->p.host, a) == 1 ||
	    inet_pton(AF_INET6, m->p.host, a) == 1)
		X509_VERIFY_PARAM_set1_ip_asc(vp, m->p.host);
	else
		X509_VERIFY_PARAM_set1_host(vp, m->p.host, 0);
	if (X509_verify_cert(ctx) != 1) {
		snprintf(err, n, "TLS: certificate verify failed: %s",
		    X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
		goto done;
	}
	ok = 0;
	goto done;
oom:
	snprintf(err, n, "TLS: out of memory");
done:
	X509_STORE_CTX_free(ctx);
	X509_free(leaf);
	sk_X509_pop_free(untrusted, X509_free);
	X509_STORE_free(store);
	if (chain)
		mailstream_certificate_chain_free(chain);
	return ok;
}

/*
 * An end of stream in the middle of an IMAP literal makes libetpan read
 * again and again (recv returns 0: a busy loop that never ends): a server
 * that drops the connection mid-fetch would hold a worker forever. So the
 * session's stream gets a copy of its driver whose read reports the end
 * of the stream as an error. One copy per original driver (plain, TLS).
 */
static struct eof_driver {
	const mailstream_low_driver *orig;
	mailstream_low_driver copy;
} eof_drivers[4];
static pthread_mutex_t eof_lock = PTHREAD_MUTEX_INITIALIZER;

static ssize_t
eof_read(mailstream_low *low, void *buf, size_t count)
{
	for (size_t i = 0; i < 4; i++) {
		if (low->driver == &eof_drivers[i].copy) {
			ssize_t r = eof_drivers[i].orig->mailstream_read(low, buf,
			    count);

			return r == 0 && count > 0 ? -1 : r;
		}
	}
	return -1;
}

static void
eof_guard(mailstream *s)
{
	mailstream_low *low = s ? mailstream_get_low(s) : NULL;

	if (!low)
		return;
	pthread_mutex_lock(&eof_lock);
	for (size_t i = 0; i < 4; i++) {
		struct eof_driver *e = &eof_drivers[i];

		if (low->driver == &e->copy)
			break;          /* guarded already */
		if (e->orig && e->orig != low->driver)
			continue;
		if (!e->orig) {
			e->orig = low->driver;
			e->copy = *low->driver;
			e->copy.mailstream_read = eof_read;
		}
		low->driver = &e->copy;
		break;
	}
	pthread_mutex_unlock(&eof_lock);
}

/* IMAP capabilities after login (they may change). */
static void
imap_caps(struct mailbox *m)
{
	struct mailimap_capability_data *cap = NULL;

	if (mailimap_capability(m->imap, &cap) == MAILIMAP_NO_ERROR && cap)
		mailimap_capability_data_free(cap);
	m->has_idle = mailimap_has_idle(m->imap);
	m->has_uidplus = mailimap_has_uidplus(m->imap);
	m->has_move = mailimap_has_extension(m->imap, "MOVE");
}

static int
imap_open(struct mailbox *m, char *err, size_t n)
{
	const struct mailbox_params *p = &m->p;
	char w[256];
	int r;

	if (!(m->imap = mailimap_new(0, NULL))) {
		snprintf(err, n, "out of memory");
		return -1;
	}
	mailimap_set_timeout(m->imap, (time_t)((p->timeout_ms + 999) / 1000));
	r = p->proto == MAILBOX_IMAPS ?
	    mailimap_ssl_connect(m->imap, p->host, (uint16_t)p->port) :
	    mailimap_socket_connect(m->imap, p->host, (uint16_t)p->port);
	if (r != MAILIMAP_NO_ERROR_NON_AUTHENTICATED &&
	    r != MAILIMAP_NO_ERROR_AUTHENTICATED) {
		snprintf(err, n, "cannot connect to %s:%d: %s", p->host, p->port,
		    imap_error(r));
		return -1;
	}
	if (p->starttls && p->proto == MAILBOX_IMAP &&
	    (r = mailimap_socket_starttls(m->imap)) != MAILIMAP_NO_ERROR) {
		snprintf(err, n, "STARTTLS failed: %s (%s)", imap_error(r),
		    said(m, w, sizeof(w)));
		return -1;
	}
	eof_guard(m->imap->imap_stream);
	if (is_tls(m) && p->tls_verify &&
	    verify_chain(m, m->imap->imap_stream, err, n) < 0)
		return -1;
	if ((r = mailimap_login(m->imap, p->user, p->password)) !=
	    MAILIMAP_NO_ERROR) {
		snprintf(err, n, "login as %s refused: %s", p->user,
		    r == MAILIMAP_ERROR_LOGIN ? said(m, w, sizeof(w)) :
		    imap_error(r));
		return -1;
	}
	imap_caps(m);
	for (int i = 0; i < 2; i++) {
		const char *f = i ? p->review_folder : p->move_folder;
		struct mailimap_mailbox_data_status *st = NULL;
		struct mailimap_status_att_list *att;

		if (!f || !*f)
			continue;
		/* create it unless STATUS finds it */
		if (!(att = mailimap_status_att_list_new_empty()))
			continue;
		mailimap_status_att_list_add(att, MAILIMAP_STATUS_ATT_MESSAGES);
		r = mailimap_status(m->imap, f, att, &st);
		mailimap_status_att_list_free(att);
		if (st)
			mailimap_mailbox_data_status_free(st);
		if (r == MAILIMAP_ERROR_STREAM) {
			snprintf(err, n, "STATUS %s: %s", f, imap_error(r));
			return -1;
		}
		if (r != MAILIMAP_NO_ERROR &&
		    (r = mailimap_create(m->imap, f)) != MAILIMAP_NO_ERROR) {
			snprintf(err, n, "cannot create folder %s: %s", f,
			    said(m, w, sizeof(w)));
			return -1;
		}
	}
	if ((r = mailimap_select(m->imap, *p->folder ? p->folder : "INBOX")) !=
	    MAILIMAP_NO_ERROR) {
		snprintf(err, n, "cannot select folder %s: %s",
		    *p->folder ? p->folder : "INBOX", r == MAILIMAP_ERROR_SELECT ?
		    said(m, w, sizeof(w)) : imap_error(r));
		return -1;
	}
	m->uidvalidity = m->imap->imap_selection_info ?
	    m->imap->imap_selection_info->sel_uidvalidity : 0;
	return 0;
}

static int
pop_open(struct mailbox *m, char *err, size_t n)
{
	const struct mailbox_params *p = &m->p;
	char w[256];
	int r;

	if (!(m->pop = mailpop3_new(0, NULL))) {
		snprintf(err, n, "out of memory");
		return -1;
	}
	mailpop3_set_timeout(m->pop, (time_t)((p->timeout_ms + 999) / 1000));
	r = p->proto == MAILBOX_POP3S ?
	    mailpop3_ssl_connect(m->pop, p->host, (uint16_t)p->port) :
	    mailpop3_socket_connect(m->pop, p->host, (uint16_t)p->port);
	if (r != MAILPOP3_NO_ERROR) {
		snprintf(err, n, "cannot connect to %s:%d: %s", p->host, p->port,
		    pop_error(r));
		return -1;
	}
	if (p->starttls && p->proto == MAILBOX_POP3 &&
	    (r = mailpop3_socket_starttls(m->pop)) != MAILPOP3_NO_ERROR) {
		snprintf(err, n, "STLS failed: %s (%s)", pop_error(r),
		    said(m, w, sizeof(w)));
		return -1;
	}
	eof_guard(m->pop->pop3_stream);
	if (is_tls(m) && p->tls_verify &&
	    verify_chain(m, m->pop->pop3_stream, err, n) < 0)
		return -1;
	if ((r = mailpop3_login(m->pop, p->user, p->password)) !=
	    MAILPOP3_NO_ERROR) {
		snprintf(err, n, "login as %s refused: %s (%s)", p->user,
		    pop_error(r), said(m, w, sizeof(w)));
		return -1;
	}
	return 0;
}

struct mailbox *
mailbox_open(const struct mailbox_params *p, char *err, size_t n)
{
	struct mailbox *m = calloc(1, sizeof(*m));
	int r;

	if (!m) {
		snprintf(err, n, "out of memory");
		return NULL;
	}
	m->p = *p;
	if (!m->p.port)
		m->p.port = mailbox_proto_port(p->proto);
	if (!m->p.folder)
		m->p.folder = "";
	pthread_mutex_init(&m->lock, NULL);
	r = is_pop(m) ? pop_open(m, err, n) : imap_open(m, err, n);
	if (r < 0) {
		mailbox_close(m);
		return NULL;
	}
	return m;
}

int
mailbox_close(struct mailbox *m)
{
	int rc = 0;

	if (!m)
		return 0;
	if (m->imap) {
		if (m->idle_ready)
			mailstream_unsetup_idle(m->imap->imap_stream);
		if (m->imap->imap_stream)
			mailimap_logout(m->imap);
		mailimap_free(m->imap);
	}
	if (m->pop) {
		if (m->pop->pop3_stream &&
		    mailpop3_quit(m->pop) != MAILPOP3_NO_ERROR)
			rc = -1;
		mailpop3_free(m->pop);
	}
	for (size_t i = 0; i < m->pop_n; i++)
		free(m->pop_uidl[i]);
	free(m->pop_uidl);
	free(m->pop_index);
	free(m->pop_size);
	pthread_mutex_destroy(&m->lock);
	free(m);
	return rc;
}

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

static int
imap_list(struct mailbox *m, int unseen_only, struct mailbox_uids *out,
    char *err, size_t n)
{
	struct mailimap_search_key *key = NULL, *all;
	struct mailimap_set *set;
	clist *res = NULL;
	clistiter *it;
	uint32_t *v = NULL;
	size_t k = 0, cap = 0;
	char uid[32];
	int r;

	set = mailimap_set_new_interval(m->last_uid + 1, 0);
	all = set ? mailimap_search_key_new_uid(set) : NULL;
	if (all && unseen_only) {
		struct mailimap_search_key *unseen = mailimap_search_key_new(
		    MAILIMAP_SEARCH_KEY_UNSEEN, NULL, NULL, NULL, NULL, NULL,
		    NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 0,
		    NULL, NULL, NULL, NULL, NULL, NULL, 0, NULL, NULL, NULL);

		key = mailimap_search_key_new_multiple_empty();
		if (!unseen || !key) {
			if (unseen)
				mailimap_search_key_free(unseen);
		} else {
			mailimap_search_key_multiple_add(key, all);
			mailimap_search_key_multiple_add(key, unseen);
			all = NULL;
		}
	} else {
		key = all;
		all = NULL;
	}
	if (all)
		mailimap_search_key_free(all);
	if (!key) {
		snprintf(err, n, "out of memory");
		return -1;
	}
	r = mailimap_uid_search(m->imap, NULL, key, &res);
	mailimap_search_key_free(key);
	if (r != MAILIMAP_NO_ERROR) {
		snprintf(err, n, "UID SEARCH: %s", imap_error(r));
		return -1;
	}
	for (it = clist_begin(res); it; it = clist_next(it)) {
		uint32_t u = *(uint32_t *)clist_content(it);

		if (u <= m->last_uid)   /* "n:*" always names the last one */
			continue;
		if (k == cap) {
			uint32_t *nv = realloc(v, (cap = cap ? cap * 2 : 64) *
			    sizeof(*v));

			if (!nv)
				break;
			v = nv;
		}
		v[k++] = u;
	}
	mailimap_search_result_free(res);
	if (k)
		qsort(v, k, sizeof(*v), cmp_u32);
	for (size_t i = 0; i < k; i++) {
		snprintf(uid, sizeof(uid), "%u:%u", m->uidvalidity, v[i]);
		if (uids_add(out, uid) < 0) {
			free(v);
			snprintf(err, n, "out of memory");
			return -1;
		}
		m->last_uid = v[i];
	}
	free(v);
	return 0;
}

static int
pop_list(struct mailbox *m, struct mailbox_uids *out, char *err, size_t n)
{
	carray *list = NULL;
	int r;

	if (m->listed)          /* POP3 sees no new mail within a session */
		return 0;
	if ((r = mailpop3_list(m->pop, &list)) != MAILPOP3_NO_ERROR) {
		snprintf(err, n, "LIST: %s", pop_error(r));
		return -1;
	}
	m->listed = 1;
	m->pop_n = 0;
	if (carray_count(list) == 0)
		return 0;
	m->pop_uidl = calloc(carray_count(list), sizeof(char *));
	m->pop_index = calloc(carray_count(list), sizeof(unsigned));
	m->pop_size = calloc(carray_count(list), sizeof(uint32_t));
	if (!m->pop_uidl || !m->pop_index || !m->pop_size) {
		snprintf(err, n, "out of memory");
		return -1;
	}
	for (unsigned i = 0; i < carray_count(list); i++) {
		struct mailpop3_msg_info *mi = carray_get(list, i);
		char uid[80];

		if (!mi || mi->msg_deleted)
			continue;
		/* without UIDL, the number (the caller keys by content) */
		if (mi->msg_uidl)
			snprintf(uid, sizeof(uid), "%.70s", mi->msg_uidl);
		else
			snprintf(uid, sizeof(uid), "#%u", mi->msg_index);
		if (!(m->pop_uidl[m->pop_n] = strdup(uid)) ||
		    uids_add(out, uid) < 0) {
			snprintf(err, n, "out of memory");
			return -1;
		}
		m->pop_index[m->pop_n] = mi->msg_index;
		m->pop_size[m->pop_n++] = mi->msg_size;
	}
	return 0;
}

int
mailbox_list(struct mailbox *m, int unseen_only, struct mailbox_uids *out,
    char *err, size_t n)
{
	return is_pop(m) ? pop_list(m, out, err, n) :
	    imap_list(m, unseen_only, out, err, n);
}

/* "UIDVALIDITY:UID" of this session's folder -> UID; 0 if not. */
static uint32_t
imap_uid(const struct mailbox *m, const char *s)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10), u;

	if (*end != ':' || v != m->uidvalidity)
		return 0;
	u = strtoul(end + 1, &end, 10);
	return *end || u == 0 || u > UINT32_MAX ? 0 : (uint32_t)u;
}

static int
imap_fetch(struct mailbox *m, const char *uid, struct buf *out,
    int *truncated, char *err, size_t n)
{
	uint32_t u = imap_uid(m, uid);
	struct mailimap_set *set;
	struct mailimap_fetch_type *ft;
	struct mailimap_section *sec;
	struct mailimap_fetch_att *fa;
	clist *res = NULL;
	int r, found = 0;

	if (!u) {
		snprintf(err, n, "UID %s is not of this folder", uid);
		return 1;
	}
	set = mailimap_set_new_single(u);
	ft = mailimap_fetch_type_new_fetch_att_list_empty();
	sec = mailimap_section_new(NULL);
	/* one byte more than kept: to know whether it was longer */
	fa = sec ? mailimap_fetch_att_new_body_peek_section_partial(sec, 0,
	    (uint32_t)(m->p.max_size + 1)) : NULL;
	if (!set || !ft || !fa ||
	    mailimap_fetch_type_new_fetch_att_list_add(ft, fa) !=
	    MAILIMAP_NO_ERROR) {
		if (set)
			mailimap_set_free(set);
		if (ft)
			mailimap_fetch_type_free(ft);
		if (fa)
			mailimap_fetch_att_free(fa);
		else if (sec)
			mailimap_section_free(sec);
		snprintf(err, n, "out of memory");
		return -1;
	}
	r = mailimap_uid_fetch(m->imap, set, ft, &res);
	mailimap_fetch_type_free(ft);
	mailimap_set_free(set);
	if (r != MAILIMAP_NO_ERROR) {
		snprintf(err, n, "UID FETCH %u: %s", u, imap_error(r));
		return -1;
	}
	buf_reset(out);
	for (clistiter *i = clist_begin(res); i; i = clist_next(i)) {
		struct mailimap_msg_att *ma = clist_content(i);
		uint32_t got_uid = 0;
		const char *body = NULL;
		size_t len = 0;

		for (clistiter *j = clist_begin(ma->att_list); j;
		    j = clist_next(j)) {
			struct mailimap_msg_att_item *it = clist_content(j);

			if (it->att_type != MAILIMAP_MSG_ATT_ITEM_STATIC)
				continue;
			if (it->att_data.att_static->att_type ==
			    MAILIMAP_MSG_ATT_UID)
				got_uid = it->att_data.att_static->att_data.att_uid;
			else if (it->att_data.att_static->att_type ==
			    MAILIMAP_MSG_ATT_BODY_SECTION &&
			    it->att_data.att_static->att_data.att_body_section) {
				body = it->att_data.att_static->att_data.
				    att_body_section->sec_body_part;
				len = it->att_data.att_static->att_data.
				    att_body_section->sec_length;
			}
		}
		if (got_uid != u || found)
			continue;
		found = 1;
		*truncated = len > m->p.max_size;
		if (len > m->p.max_size)
			len = m->p.max_size;
		if (body)
			buf_append(out, body, len);
	}
	mailimap_fetch_list_free(res);
	if (out->overflow) {
		snprintf(err, n, "out of memory");
		return -1;
	}
	return found ? 0 : 1;
}

static int
pop_fetch(struct mailbox *m, const char *uid, struct buf *out,
    int *truncated, char *err, size_t n)
{
	size_t i;
	char *msg = NULL;
	size_t len = 0;
	int r;

	for (i = 0; i < m->pop_n; i++)
		if (strcmp(m->pop_uidl[i], uid) == 0)
			break;
	if (i == m->pop_n)
		return 1;
	*truncated = m->pop_size[i] > m->p.max_size;
	if (*truncated)         /* the header only */
		r = mailpop3_top(m->pop, m->pop_index[i], 0, &msg, &len);
	else
		r = mailpop3_retr(m->pop, m->pop_index[i], &msg, &len);
	if (r == MAILPOP3_ERROR_NO_SUCH_MESSAGE)
		return 1;
	if (r != MAILPOP3_NO_ERROR) {
		snprintf(err, n, "RETR %u: %s", m->pop_index[i], pop_error(r));
		return -1;
	}
	buf_reset(out);
	if (len > m->p.max_size) {
		len = m->p.max_size;
		*truncated = 1;
	}
	buf_append(out, msg, len);
	if (*truncated)
		mailpop3_top_free(msg);
	else
		mailpop3_retr_free(msg);
	if (out->overflow) {
		snprintf(err, n, "out of memory");
		return -1;
	}
	return 0;
}

int
mailbox_fetch(struct mailbox *m, const char *uid, struct buf *out,
    int *truncated, char *err, size_t n)
{
	*truncated = 0;
	return is_pop(m) ? pop_fetch(m, uid, out, truncated, err, n) :
	    imap_fetch(m, uid, out, truncated, err, n);
}

/* The static attribute of type t of a fetched message, or NULL. */
static struct mailimap_msg_att_static *
att_of(struct mailimap_msg_att *ma, int t)
{
	for (clistiter *j = clist_begin(ma->att_list); j; j = clist_next(j)) {
		struct mailimap_msg_att_item *it = clist_content(j);

		if (it->att_type == MAILIMAP_MSG_ATT_ITEM_STATIC &&
		    it->att_data.att_static &&
		    it->att_data.att_static->att_type == t)
			return it->att_data.att_static;
	}
	return NULL;
}

/* UID FETCH set with one attribute (fa, taken) and the UID. */
static int
imap_fetch_set(struct mailbox *m, struct mailimap_set *set,
    struct mailimap_fetch_att *fa, clist **res)
{
	struct mailimap_fetch_type *ft =
	    mailimap_fetch_type_new_fetch_att_list_empty();
	struct mailimap_fetch_att *fu = mailimap_fetch_att_new_uid();
	int r;

	if (!ft || !fa || !fu ||
	    mailimap_fetch_type_new_fetch_att_list_add(ft, fu) !=
	    MAILIMAP_NO_ERROR) {
		if (ft)
			mailimap_fetch_type_free(ft);
		if (fa)
			mailimap_fetch_att_free(fa);
		if (fu)
			mailimap_fetch_att_free(fu);
		return MAILIMAP_ERROR_MEMORY;
	}
	if (mailimap_fetch_type_new_fetch_att_list_add(ft, fa) !=
	    MAILIMAP_NO_ERROR) {
		mailimap_fetch_type_free(ft);
		mailimap_fetch_att_free(fa);
		return MAILIMAP_ERROR_MEMORY;
	}
	r = mailimap_uid_fetch(m->imap, set, ft, res);
	mailimap_fetch_type_free(ft);
	return r;
}

static int
imap_fetch_many(struct mailbox *m, char *const *uids, size_t count,
    mailbox_msg_fn *cb, void *arg, char *err, size_t n)
{
	uint32_t *u = calloc(count + 1, sizeof(*u)), *size;
	struct mailimap_set *set = NULL;
	clist *res = NULL;
	int r;

	size = calloc(count + 1, sizeof(*size));
	if (!u || !size || !(set = mailimap_set_new_empty()))
		goto oom;
	for (size_t i = 0; i < count; i++)
		if ((u[i] = imap_uid(m, uids[i])) != 0 &&
		    mailimap_set_add_single(set, u[i]) != MAILIMAP_NO_ERROR)
			goto oom;
	/* the sizes first: each command fetches a bounded amount */
	r = imap_fetch_set(m, set, mailimap_fetch_att_new_rfc822_size(), &res);
	mailimap_set_free(set);
	set = NULL;
	if (r != MAILIMAP_NO_ERROR) {
		snprintf(err, n, "UID FETCH (RFC822.SIZE): %s", imap_error(r));
		goto fail;
	}
	for (clistiter *i = clist_begin(res); i; i = clist_next(i)) {
		struct mailimap_msg_att_static *a, *b;

		a = att_of(clist_content(i), MAILIMAP_MSG_ATT_UID);
		b = att_of(clist_content(i), MAILIMAP_MSG_ATT_RFC822_SIZE);
		for (size_t k = 0; a && b && k < count; k++)
			if (u[k] == a->att_data.att_uid)
				size[k] = b->att_data.att_rfc822_size + 1;
	}
	mailimap_fetch_list_free(res);
	res = NULL;
	for (size_t i = 0; i < count; ) {
		size_t total = 0, j = i, any = 0;
		struct mailimap_section *sec;

		if (!(set = mailimap_set_new_empty()))
			goto oom;
		for (; j < count && (total < MAILBOX_FETCH_BYTES || !any); j++) {
			size_t s = size[j] > m->p.max_size ? m->p.max_size :
			    size[j];

			if (!size[j])
				continue;       /* gone */
			if (any && total + s > MAILBOX_FETCH_BYTES)
				break;
			if (mailimap_set_add_single(set, u[j]) !=
			    MAILIMAP_NO_ERROR)
				goto oom;
			total += s;
			any = 1;
		}
		if (!any) {
			mailimap_set_free(set);
			set = NULL;
			break;
		}
		sec = mailimap_section_new(NULL);
		r = imap_fetch_set(m, set, sec ?
		    mailimap_fetch_att_new_body_peek_section_partial(sec, 0,
		    (uint32_t)(m->p.max_size + 1)) : NULL, &res);
		mailimap_set_free(set);
		set = NULL;
		if (r != MAILIMAP_NO_ERROR) {
			snprintf(err, n, "UID FETCH: %s", imap_error(r));
			goto fail;
		}
		for (clistiter *it = clist_begin(res); it; it = clist_next(it)) {
			struct mailimap_msg_att_static *a, *b;
			const char *body;
			size_t len;

			a = att_of(clist_content(it), MAILIMAP_MSG_ATT_UID);
			b = att_of(clist_content(it),
			    MAILIMAP_MSG_ATT_BODY_SECTION);
			if (!a || !b || !b->att_data.att_body_section)
				continue;
			body = b->att_data.att_body_section->sec_body_part;
			len = b->att_data.att_body_section->sec_length;
			for (size_t k = i; k < j; k++) {
				if (u[k] != a->att_data.att_uid)
					continue;
				cb(arg, k, body ? body : "", len > m->p.max_size ?
				    m->p.max_size : len, len > m->p.max_size);
				u[k] = 0;       /* once */
				break;
			}
		}
		mailimap_fetch_list_free(res);
		res = NULL;
		i = j;
	}
	free(u);
	free(size);
	return 0;
oom:
	snprintf(err, n, "out of memory");
fail:
	if (set)
		mailimap_set_free(set);
	if (res)
		mailimap_fetch_list_free(res);
	free(u);
	free(size);
	return -1;
}

int
mailbox_fetch_many(struct mailbox *m, char *const *uids, size_t count,
    mailbox_msg_fn *cb, void *arg, char *err, size_t n)
{
	struct buf b;
	int trunc, r = 0;

	if (!is_pop(m))
		return imap_fetch_many(m, uids, count, cb, arg, err, n);
	buf_init(&b, 0);
	for (size_t i = 0; i < count && r >= 0; i++) {
		if ((r = pop_fetch(m, uids[i], &b, &trunc, err, n)) == 0)
			cb(arg, i, b.data ? b.data : "", b.len, trunc);
	}
	buf_free(&b);
	return r < 0 ? -1 : 0;
}

static int
imap_flag(struct mailbox *m, struct mailimap_set *set, int deleted)
{
	struct mailimap_flag_list *fl = mailimap_flag_list_new_empty();
	struct mailimap_flag *f = deleted ? mailimap_flag_new_deleted() :
	    mailimap_flag_new_seen();
	struct mailimap_store_att_flags *sa;
	int r;

	if (!fl || !f || mailimap_flag_list_add(fl, f) != MAILIMAP_NO_ERROR) {
		if (fl)
			mailimap_flag_list_free(fl);
		if (f)
			mailimap_flag_free(f);
		return MAILIMAP_ERROR_MEMORY;
	}
	if (!(sa = mailimap_store_att_flags_new_add_flags_silent(fl))) {
		mailimap_flag_list_free(fl);
		return MAILIMAP_ERROR_MEMORY;
	}
	r = mailimap_uid_store(m->imap, set, sa);
	mailimap_store_att_flags_free(sa);
	return r;
}

/* \Deleted, then expunge those UIDs only (UIDPLUS), else the folder's. */
static int
imap_delete(struct mailbox *m, struct mailimap_set *set)
{
	int r = imap_flag(m, set, 1);

	if (r != MAILIMAP_NO_ERROR)
		return r;
	return m->has_uidplus ? mailimap_uid_expunge(m->imap, set) :
	    mailimap_expunge(m->imap);
}

int
mailbox_dispose(struct mailbox *m, enum mailbox_action a,
    const char *folder, char *const *uids, size_t count, char *err, size_t n)
{
	struct mailimap_set *set;
	char w[256];
	int r, any = 0;

	if (count == 0)
		return 0;
	if (is_pop(m)) {
		if (a != MAILBOX_DELETE)
			return 0;       /* left on the server */
		for (size_t i = 0; i < count; i++) {
			for (size_t k = 0; k < m->pop_n; k++) {
				if (strcmp(m->pop_uidl[k], uids[i]) != 0)
					continue;
				r = mailpop3_dele(m->pop, m->pop_index[k]);
				if (r != MAILPOP3_NO_ERROR &&
				    r != MAILPOP3_ERROR_NO_SUCH_MESSAGE) {
					snprintf(err, n, "DELE %u: %s",
					    m->pop_index[k], pop_error(r));
					return -1;
				}
				break;
			}
		}
		return 0;
	}
	if (!(set = mailimap_set_new_empty())) {
		snprintf(err, n, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < count; i++) {
		uint32_t u = imap_uid(m, uids[i]);

		if (u && mailimap_set_add_single(set, u) == MAILIMAP_NO_ERROR)
			any = 1;
	}
	if (!any) {
		mailimap_set_free(set);
		return 0;
	}
	switch (a) {
	case MAILBOX_DELETE:
		r = imap_delete(m, set);
		break;
	case MAILBOX_SEEN:
		r = imap_flag(m, set, 0);
		break;
	case MAILBOX_MOVE:
	default:
		if (m->has_move) {
			r = mailimap_uid_move(m->imap, set, folder);
		} else {
			r = mailimap_uid_copy(m->imap, set, folder);
			if (r == MAILIMAP_NO_ERROR)
				r = imap_delete(m, set);
		}
		break;
	}
	mailimap_set_free(set);
	if (r != MAILIMAP_NO_ERROR) {
		snprintf(err, n, "%s: %s (%s)", a == MAILBOX_DELETE ? "delete" :
		    a == MAILBOX_SEEN ? "mark seen" : "move", imap_error(r),
		    said(m, w, sizeof(w)));
		return -1;
	}
	return 0;
}

int
mailbox_has_idle(const struct mailbox *m)
{
	return m->imap && m->has_idle;
}

int
mailbox_idle(struct mailbox *m, long timeout_ms, char *err, size_t n)
{
	int r, w, secs = (int)((timeout_ms + 999) / 1000);

	if (!mailbox_has_idle(m)) {
		snprintf(err, n, "the server does not offer IDLE");
		return -1;
	}
	pthread_mutex_lock(&m->lock);
	if (!m->idle_ready) {
		if (mailstream_setup_idle(m->imap->imap_stream) < 0) {
			pthread_mutex_unlock(&m->lock);
			snprintf(err, n, "cannot set up IDLE");
			return -1;
		}
		m->idle_ready = 1;
	}
	if (m->interrupted) {
		m->interrupted = 0;
		pthread_mutex_unlock(&m->lock);
		return 0;
	}
	m->idling = 1;
	pthread_mutex_unlock(&m->lock);
	if ((r = mailimap_idle(m->imap)) != MAILIMAP_NO_ERROR) {
		pthread_mutex_lock(&m->lock);
		m->idling = 0;
		pthread_mutex_unlock(&m->lock);
		snprintf(err, n, "IDLE: %s", imap_error(r));
		return -1;
	}
	w = mailstream_wait_idle(m->imap->imap_stream, secs < 1 ? 1 : secs);
	pthread_mutex_lock(&m->lock);
	m->idling = 0;
	m->interrupted = 0;
	pthread_mutex_unlock(&m->lock);
	if ((r = mailimap_idle_done(m->imap)) != MAILIMAP_NO_ERROR) {
		snprintf(err, n, "IDLE: %s", imap_error(r));
		return -1;
	}
	if (w == MAILSTREAM_IDLE_ERROR || w == MAILSTREAM_IDLE_CANCELLED) {
		snprintf(err, n, "IDLE: connection lost");
		return -1;
	}
	return w == MAILSTREAM_IDLE_HASDATA;
}

void
mailbox_interrupt(struct mailbox *m)
{
	pthread_mutex_lock(&m->lock);
	if (m->idling && m->imap && m->imap->imap_stream)
		mailstream_interrupt_idle(m->imap->imap_stream);
	else
		m->interrupted = 1;
	pthread_mutex_unlock(&m->lock);
}
