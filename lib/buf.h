/*
 * buf - a growable byte buffer, always NUL-terminated.
 *
 * Used wherever output is assembled (rendered templates, MIME messages, JSON,
 * HTTP bodies). It does no I/O and knows nothing of encodings. A buffer may
 * carry a size limit; appending past it fails and leaves the buffer marked
 * as overflowed, so producers of untrusted-size output can stop cleanly.
 *
 * Ownership: the buffer owns b->data; buf_free() releases it, buf_steal()
 * hands it to the caller (who frees it with free()).
 */
#ifndef LEADCAST_BUF_H
#define LEADCAST_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include <string.h>

struct buf {
	char *data;     /* NUL-terminated; NULL until the first append */
	size_t len;     /* bytes used, not counting the NUL */
	size_t cap;     /* bytes allocated */
	size_t limit;   /* 0 = unlimited, else max len */
	int overflow;   /* set once an append was refused (limit or ENOMEM) */
};

#define BUF_INIT { NULL, 0, 0, 0, 0 }

void buf_init(struct buf *b, size_t limit);
/* Each returns 0, or -1 (and sets b->overflow) if the limit or memory ran out. */
int buf_append_slow(struct buf *b, const void *p, size_t n);

/* Append n bytes: when they fit, inline (encoders append word by word). */
static inline int
buf_append(struct buf *b, const void *p, size_t n)
{
	if (n < b->cap - b->len && !b->overflow &&
	    (!b->limit || n <= b->limit - b->len)) {
		if (n)
			memcpy(b->data + b->len, p, n);
		b->len += n;
		b->data[b->len] = '\0';
		return 0;
	}
	return buf_append_slow(b, p, n);
}
int buf_puts(struct buf *b, const char *s);
/* Make room for n more bytes now (encoders that know their output size). */
int buf_grow(struct buf *b, size_t n);
/* The same, but a buffer that grows gets exactly that room: for one that is
 * filled once and kept (a composed message), not appended to. */
int buf_grow_exact(struct buf *b, size_t n);
int buf_putc_slow(struct buf *b, char c);

/* One byte: the common case inline, for encoders that write byte by byte. */
static inline int
buf_putc(struct buf *b, char c)
{
	if (b->len + 1 < b->cap && !b->overflow &&
	    (!b->limit || b->len < b->limit)) {
		b->data[b->len++] = c;
		b->data[b->len] = '\0';
		return 0;
	}
	return buf_putc_slow(b, c);
}
int buf_printf(struct buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
int buf_vprintf(struct buf *b, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));
void buf_reset(struct buf *b);          /* len = 0, keeps memory and limit */
void buf_free(struct buf *b);
/* Returns the NUL-terminated data (never NULL: "" for an empty buffer,
 * allocated) and leaves b empty. Caller frees. NULL only on ENOMEM. */
char *buf_steal(struct buf *b);
/* Shortcut for a C string view: "" for an empty buffer. */
const char *buf_str(const struct buf *b);

/* Format into a caller's error buffer err of n bytes (truncated; nothing
 * if err is NULL or n is 0): the one helper of the modules that report
 * errors as "char *err, size_t n". */
void errf(char *err, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
