/*
 * hit - tracking hits, their ids, text form and queue. See hit.h.
 */
#include "hit.h"
#include "buf.h"
#include "token.h"
#include "utf8.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *const type_names[] = { "open", "click", "visit",
	"hot_page", "forward" };
static const char *const class_names[] = { "human", "machine", "scanner" };

const char *
hit_type_name(int type)
{
	return type >= 0 && type <= HIT_FORWARD ? type_names[type] : "?";
}

const char *
hit_class_name(int cls)
{
	return cls >= 0 && cls <= HIT_SCANNER ? class_names[cls] : "?";
}

int
hit_class_parse(const char *s)
{
	for (int i = 0; i <= HIT_SCANNER; i++)
		if (strcmp(s, class_names[i]) == 0)
			return i;
	return -1;
}

static int
type_parse(const char *s, size_t n)
{
	for (int i = 0; i <= HIT_FORWARD; i++)
		if (strlen(type_names[i]) == n && memcmp(s, type_names[i], n) == 0)
			return i;
	return -1;
}

/* ---- ids ----------------------------------------------------------------- */

static pthread_once_t id_once = PTHREAD_ONCE_INIT;
static uint64_t id_prefix;
static atomic_uint_fast64_t id_counter;

static void
id_init(void)
{
	char hex[17];

	if (token_random_hex(hex, sizeof(hex), 8) == 0)
		id_prefix = strtoull(hex, NULL, 16);
	else    /* no CSPRNG: time and pid still differ between processes */
		id_prefix = ((uint64_t)time(NULL) << 20) ^ (uint64_t)getpid();
}

static void
hex_put(char *out, uint64_t v, int digits)
{
	static const char hex[] = "0123456789abcdef";

	for (int i = digits - 1; i >= 0; i--, v >>= 4)
		out[i] = hex[v & 15];
}

void
hit_stamp(struct hit *h)
{
	struct timespec ts;
	uint64_t n;

	pthread_once(&id_once, id_init);
	n = atomic_fetch_add_explicit(&id_counter, 1, memory_order_relaxed);
	/* xxxxxxxx-xxxx-xxxx-nnnn-nnnnnnnnnnnn: the prefix, then the count */
	hex_put(h->id, id_prefix >> 32, 8);
	h->id[8] = '-';
	hex_put(h->id + 9, (id_prefix >> 16) & 0xffff, 4);
	h->id[13] = '-';
	hex_put(h->id + 14, id_prefix & 0xffff, 4);
	h->id[18] = '-';
	hex_put(h->id + 19, n >> 48, 4);
	h->id[23] = '-';
	hex_put(h->id + 24, n & 0xffffffffffffULL, 12);
	h->id[36] = '\0';
	clock_gettime(CLOCK_REALTIME, &ts);
	h->at_us = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---- text ---------------------------------------------------------------- */

void
hit_clean(char *out, size_t n, const char *s)
{
	const unsigned char *p = (const unsigned char *)(s ? s : "");
	size_t o = 0, left = strlen((const char *)p);

	while (*p && o + 1 < n) {
		uint32_t cp;
		size_t k = utf8_decode(p, left, &cp);

		if (k == 0 || cp < 0x20 || cp == 0x7f) {
			out[o++] = '?';
			p++;
			left--;
			continue;
		}
		if (o + k >= n)
			break;
		memcpy(out + o, p, k);
		o += k;
		p += k;
		left -= k;
	}
	out[o] = '\0';
}

/*
 * One line: version, id, type, class, delivery, link, lead, at_us, ip,
 * reason, ua, url, referrer, page; separated by tabs. Text fields never hold
 * tabs or newlines (hit_clean), so no escaping is needed.
 */
int
hit_format(const struct hit *h, struct buf *out)
{
	return buf_printf(out, "1\t%s\t%s\t%s\t%" PRIu64 "\t%" PRIu64 "\t%"
	    PRIu64 "\t%" PRId64 "\t%s\t%s\t%s\t%s\t%s\t%s\n", h->id,
	    hit_type_name(h->type), hit_class_name(h->cls), h->delivery,
	    h->link, h->lead, h->at_us, h->ip, h->reason, h->ua, h->url,
	    h->referrer, h->page);
}

#define HIT_FIELDS 14

static int
copy_field(char *out, size_t n, const char *s, size_t len)
{
	if (len >= n)
		return -1;
	memcpy(out, s, len);
	out[len] = '\0';
	return 0;
}

static int
num_field(const char *s, size_t len, uint64_t *v)
{
	char tmp[24], *end;

	if (len == 0 || len >= sizeof(tmp) || s[0] == '-')
		return -1;
	memcpy(tmp, s, len);
	tmp[len] = '\0';
	*v = strtoull(tmp, &end, 10);
	return *end ? -1 : 0;
}

int
hit_parse(const char *line, size_t len, struct hit *h)
{
	const char *f[HIT_FIELDS];
	size_t fl[HIT_FIELDS], nf = 0, start = 0;
	uint64_t at;
	int t, c;

	for (size_t i = 0; i <= len; i++) {
		if (i == len || line[i] == '\t') {
			if (nf == HIT_FIELDS)
				return -1;
			f[nf] = line + start;
			fl[nf++] = i - start;
			start = i + 1;
		} else if ((unsigned char)line[i] < 0x20) {
			return -1;
		}
	}
	if (nf != HIT_FIELDS || fl[0] != 1 || f[0][0] != '1')
		return -1;
	memset(h, 0, sizeof(*h));
	if (fl[1] != 36 || copy_field(h->id, sizeof(h->id), f[1], fl[1]) < 0)
		return -1;
	for (size_t i = 0; i < 36; i++)
		if (!((h->id[i] >= '0' && h->id[i] <= '9') ||
		    (h->id[i] >= 'a' && h->id[i] <= 'f') ||
		    (h->id[i] == '-' && (i == 8 || i == 13 || i == 18 ||
		    i == 23))))
			return -1;
	if ((t = type_parse(f[2], fl[2])) < 0)
		return -1;
	{
		char cls[16];

		if (copy_field(cls, sizeof(cls), f[3], fl[3]) < 0 ||
		    (c = hit_class_parse(cls)) < 0)
			return -1;
	}
	h->type = (unsigned char)t;
	h->cls = (unsigned char)c;
	if (num_field(f[4], fl[4], &h->delivery) < 0 ||
	    num_field(f[5], fl[5], &h->link) < 0 ||
	    num_field(f[6], fl[6], &h->lead) < 0 ||
	    num_field(f[7], fl[7], &at) < 0)
		return -1;
	h->at_us = (int64_t)at;
	if (copy_field(h->ip, sizeof(h->ip), f[8], fl[8]) < 0 ||
	    copy_field(h->reason, sizeof(h->reason), f[9], fl[9]) < 0 ||
	    copy_field(h->ua, sizeof(h->ua), f[10], fl[10]) < 0 ||
	    copy_field(h->url, sizeof(h->url), f[11], fl[11]) < 0 ||
	    copy_field(h->referrer, sizeof(h->referrer), f[12], fl[12]) < 0 ||
	    copy_field(h->page, sizeof(h->page), f[13], fl[13]) < 0)
		return -1;
	return 0;
}

/* ---- the queue ------------------------------------------------------------ */

struct hitq {
	pthread_mutex_t lock;
	struct hit *ring;
	size_t cap, head, len;          /* head: oldest */
	unsigned long long refused;
};

struct hitq *
hitq_new(size_t cap)
{
	struct hitq *q = calloc(1, sizeof(*q));

	if (!q || cap == 0 || !(q->ring = calloc(cap, sizeof(*q->ring)))) {
		free(q);
		return NULL;
	}
	q->cap = cap;
	pthread_mutex_init(&q->lock, NULL);
	return q;
}

void
hitq_free(struct hitq *q)
{
	if (!q)
		return;
	pthread_mutex_destroy(&q->lock);
	free(q->ring);
	free(q);
}

int
hitq_push(struct hitq *q, const struct hit *h)
{
	int rc = 0;

	pthread_mutex_lock(&q->lock);
	if (q->len == q->cap) {
		q->refused++;
		rc = -1;
	} else {
		q->ring[(q->head + q->len) % q->cap] = *h;
		q->len++;
	}
	pthread_mutex_unlock(&q->lock);
	return rc;
}

size_t
hitq_pop(struct hitq *q, struct hit *out, size_t max)
{
	size_t n;

	pthread_mutex_lock(&q->lock);
	n = q->len < max ? q->len : max;
	for (size_t i = 0; i < n; i++)
		out[i] = q->ring[(q->head + i) % q->cap];
	q->head = (q->head + n) % q->cap;
	q->len -= n;
	pthread_mutex_unlock(&q->lock);
	return n;
}

size_t
hitq_len(struct hitq *q)
{
	size_t n;

	pthread_mutex_lock(&q->lock);
	n = q->len;
	pthread_mutex_unlock(&q->lock);
	return n;
}

unsigned long long
hitq_refused(struct hitq *q)
{
	unsigned long long n;

	pthread_mutex_lock(&q->lock);
	n = q->refused;
	pthread_mutex_unlock(&q->lock);
	return n;
}
