/*
 * sms - the text of an SMS: which encoding its characters need, how many
 * segments it takes, and fitting a message into a number of segments by
 * shortening one part of it.
 *
 * Encoding. A message whose every character is in the GSM 03.38 default
 * alphabet (or its extension table, whose characters ^ { } \ [ ~ ] | and
 * the euro sign take an escape septet and so count double) goes as GSM-7:
 * 160 septets in one segment, 153 per segment of a concatenated message.
 * Anything else makes the whole message UCS-2: 70 UTF-16 code units in one
 * segment, 67 per part; characters beyond the Basic Multilingual Plane
 * (most emoji) are surrogate pairs and count 2. A part never splits an
 * escape sequence or a surrogate pair, so a character that does not fit
 * what is left of a part starts the next one (as handsets and Kannel do).
 *
 * sms_fold() first replaces the typographic characters people paste from
 * word processors (curly quotes, dashes, ellipsis, no-break spaces) with
 * their GSM-7 equivalents, so that one apostrophe does not halve a
 * message's room.
 *
 * It does no I/O and no allocation beyond the struct buf it is given;
 * thread-safe. It does not send anything nor know the gateways (smsgw.h).
 */
#ifndef LEADCAST_SMS_H
#define LEADCAST_SMS_H

#include <stddef.h>

#include "buf.h"

#define SMS_GSM7_SINGLE  160    /* septets in a one-part message */
#define SMS_GSM7_PART    153    /* septets per part of a longer one */
#define SMS_UCS2_SINGLE  70     /* UTF-16 units in a one-part message */
#define SMS_UCS2_PART    67
#define SMS_MAX_SEGMENTS 10     /* longest message leadcast sends */
#define SMS_FIT_MARK     "\x1f" /* where sms_fit() puts the shortened part */

enum sms_encoding { SMS_GSM7, SMS_UCS2 };

struct sms_info {
	enum sms_encoding encoding;
	size_t units;           /* septets (GSM-7) or UTF-16 units (UCS-2) */
	size_t chars;           /* Unicode characters */
	size_t segments;        /* parts on the air; 1 for an empty message */
};

/*
 * Measure text (len bytes of UTF-8). Returns 0, or -1 if it is not valid
 * UTF-8 (overlong forms, surrogates and code points past U+10FFFF are
 * invalid) or holds a NUL.
 */
int sms_measure(const char *text, size_t len, struct sms_info *out);

/* "gsm7" or "ucs2". */
const char *sms_encoding_name(enum sms_encoding e);

/* 1 if the code point is in the GSM-7 default alphabet (cost 1) or its
 * extension table (cost 2): the cost in *septets; 0 if neither. */
int sms_gsm7_char(unsigned long cp, int *septets);

/*
 * Append text (len bytes of UTF-8) to out with typographic characters
 * folded to GSM-7 ones: ‘ ’ ‚ ′ to ', “ ” „ ″ to ", ‐ ‑ ‒ – — − to -,
 * … to ..., no-break and other spaces to a space, « » to " and tabs to a
 * space. Other characters are copied. Returns 0 or -1 (out's limit, bad
 * UTF-8: out then holds a partial copy).
 */
int sms_fold(const char *text, size_t len, struct buf *out);

/*
 * Fit a message into at most max_segments parts. text (UTF-8, NUL-ended)
 * holds SMS_FIT_MARK where the part goes (any number of times); each
 * mark is replaced by part, shortened as little as needed: cut at a
 * character boundary (at a word boundary when one is within the last 12
 * characters), trailing spaces and punctuation dropped, and "..." added.
 * A part that would shrink to nothing is dropped with its ellipsis.
 * The result is appended to out and measured into *info (may be NULL).
 * Returns the segments the result takes (more than max_segments when even
 * the text without the part does not fit), or -1 for invalid UTF-8 or
 * when out refused an append.
 */
int sms_fit(const char *text, const char *part, size_t max_segments,
    struct buf *out, struct sms_info *info);

#endif
