/*
 * hit - one tracking hit (an open, a click, a web visit, a forward) as it
 * travels from the HTTP thread that answered it to the database: its
 * record, its unique id, its one-line text form (the spool's), and a
 * bounded queue that HTTP threads push into and the loop drains.
 *
 * A hit's id is 128 bits: 64 random bits drawn once per process and a
 * 64-bit counter, written as a UUID. The database keeps one event per id
 * (a unique index), so a batch written twice (a spool replayed after a
 * commit whose answer was lost) is counted once.
 * The queue is a ring of fixed-size records under one mutex: a push never
 * allocates and never blocks on anything but the mutex; when full it
 * refuses (the caller spools). It does no I/O and knows nothing of the
 * database or of HTTP.
 */
#ifndef LEADCAST_HIT_H
#define LEADCAST_HIT_H

#include <stddef.h>
#include <stdint.h>

struct buf;

#define HIT_UA_MAX     256      /* user agent kept, with its NUL */
#define HIT_IP_MAX     46
#define HIT_URL_MAX    512      /* page / referrer of a web visit */
#define HIT_REASON_MAX 32
#define HIT_PAGE_MAX   48       /* a hot page's name */

enum hit_type { HIT_OPEN, HIT_CLICK, HIT_VISIT, HIT_HOT_PAGE, HIT_FORWARD };
/* human; machine: a mail client's image proxy; scanner: a security scanner */
enum hit_class { HIT_HUMAN, HIT_MACHINE, HIT_SCANNER };

struct hit {
	char id[37];                    /* UUID text */
	unsigned char type;             /* enum hit_type */
	unsigned char cls;              /* enum hit_class */
	uint64_t delivery;              /* 0: none (a visit by cookie) */
	uint64_t link;                  /* clicks; 0 otherwise */
	uint64_t lead;                  /* visits tied by cookie; 0 otherwise */
	int64_t at_us;                  /* wall clock, microseconds */
	char ip[HIT_IP_MAX];
	char reason[HIT_REASON_MAX];    /* why machine/scanner; "" for human */
	char ua[HIT_UA_MAX];            /* sanitized: no control characters */
	char url[HIT_URL_MAX];          /* visits: the page */
	char referrer[HIT_URL_MAX];     /* visits: the referrer */
	char page[HIT_PAGE_MAX];        /* hot pages: the name of the page */
};

const char *hit_type_name(int type);
const char *hit_class_name(int cls);
/* "human" -> HIT_HUMAN ...; -1 if unknown. */
int hit_class_parse(const char *s);

/* Fill h->id with a fresh unique id and h->at_us with the time. Thread-safe. */
void hit_stamp(struct hit *h);
/* Copy s into out (size n, >= 1), bounded, control characters and
 * invalid bytes as '?', cut at a UTF-8 character boundary. */
void hit_clean(char *out, size_t n, const char *s);

/* Append h as one line (tab-separated fields, '\n'-terminated). 0 or -1. */
int hit_format(const struct hit *h, struct buf *out);
/* Parse one line (without its '\n') into h. 0, or -1 if malformed. */
int hit_parse(const char *line, size_t len, struct hit *h);

/* ---- the queue ---- */

struct hitq;

/* A queue of at most cap hits. NULL on ENOMEM. Free with hitq_free. */
struct hitq *hitq_new(size_t cap);
void hitq_free(struct hitq *q);
/* Copy h in. 0, or -1 when full. Any thread. */
int hitq_push(struct hitq *q, const struct hit *h);
/* Move up to max hits out into out, oldest first; returns how many. */
size_t hitq_pop(struct hitq *q, struct hit *out, size_t max);
size_t hitq_len(struct hitq *q);
/* Hits refused because the queue was full, since start. */
unsigned long long hitq_refused(struct hitq *q);

#endif
