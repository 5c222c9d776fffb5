/*
 * sms - SMS encodings, segments and fitting. See sms.h.
 */
#include "sms.h"
#include "utf8.h"

#include <stdint.h>
#include <string.h>

/* One character of SMS text at s (n bytes left): its length, or 0 if it
 * is not valid UTF-8 or is a NUL (not text a phone can show). */
static size_t
sms_char(const unsigned char *s, size_t n, unsigned long *cp)
{
	uint32_t c = 0;
	size_t k = n && s[0] ? utf8_decode(s, n, &c) : 0;

	*cp = c;
	return k;
}

/* The GSM 03.38 default alphabet outside ASCII, and the extension table. */
static const unsigned short gsm_basic_extra[] = {
	0x00A3, 0x00A5, 0x00E8, 0x00E9, 0x00F9, 0x00EC, 0x00F2, 0x00C7,
	0x00D8, 0x00F8, 0x00C5, 0x00E5, 0x0394, 0x03A6, 0x0393, 0x039B,
	0x03A9, 0x03A0, 0x03A8, 0x03A3, 0x0398, 0x039E, 0x00C6, 0x00E6,
	0x00DF, 0x00C9, 0x00A4, 0x00A1, 0x00C4, 0x00D6, 0x00D1, 0x00DC,
	0x00A7, 0x00BF, 0x00E4, 0x00F6, 0x00F1, 0x00FC, 0x00E0,
};

int
sms_gsm7_char(unsigned long cp, int *septets)
{
	if (cp == '\n' || cp == '\r' || (cp >= 0x20 && cp < 0x7F)) {
		switch (cp) {
		case '`':
			return 0;
		case '^': case '{': case '}': case '\\': case '[': case '~':
		case ']': case '|':
			*septets = 2;
			return 1;
		default:
			*septets = 1;
			return 1;
		}
	}
	if (cp == 0x0C || cp == 0x20AC) {       /* form feed, euro sign */
		*septets = 2;
		return 1;
	}
	for (size_t i = 0; i < sizeof(gsm_basic_extra) /
	    sizeof(gsm_basic_extra[0]); i++) {
		if (gsm_basic_extra[i] == cp) {
			*septets = 1;
			return 1;
		}
	}
	return 0;
}

const char *
sms_encoding_name(enum sms_encoding e)
{
	return e == SMS_GSM7 ? "gsm7" : "ucs2";
}

int
sms_measure(const char *text, size_t len, struct sms_info *out)
{
	const unsigned char *s = (const unsigned char *)text;
	size_t i, n, gsm_units = 0, ucs_units = 0, chars = 0;
	size_t gsm_parts = 1, ucs_parts = 1, gsm_fill = 0, ucs_fill = 0;
	int gsm = 1;
	unsigned long cp;

	for (i = 0; i < len; i += n) {
		int cost;

		if ((n = sms_char(s + i, len - i, &cp)) == 0)
			return -1;
		chars++;
		if (gsm && !sms_gsm7_char(cp, &cost))
			gsm = 0;
		if (gsm) {
			gsm_units += (size_t)cost;
			/* packing into 153-septet parts, escapes kept whole */
			if (gsm_fill + (size_t)cost > SMS_GSM7_PART) {
				gsm_parts++;
				gsm_fill = 0;
			}
			gsm_fill += (size_t)cost;
		}
		cost = cp > 0xFFFF ? 2 : 1;
		ucs_units += (size_t)cost;
		if (ucs_fill + (size_t)cost > SMS_UCS2_PART) {
			ucs_parts++;
			ucs_fill = 0;
		}
		ucs_fill += (size_t)cost;
	}
	out->chars = chars;
	if (gsm) {
		out->encoding = SMS_GSM7;
		out->units = gsm_units;
		out->segments = gsm_units <= SMS_GSM7_SINGLE ? 1 : gsm_parts;
	} else {
		out->encoding = SMS_UCS2;
		out->units = ucs_units;
		out->segments = ucs_units <= SMS_UCS2_SINGLE ? 1 : ucs_parts;
	}
	return 0;
}

int
sms_fold(const char *text, size_t len, struct buf *out)
{
	const unsigned char *s = (const unsigned char *)text;
	size_t i, n;
	unsigned long cp;

	for (i = 0; i < len; i += n) {
		const char *rep = NULL;

		if ((n = sms_char(s + i, len - i, &cp)) == 0)
			return -1;
		switch (cp) {
		case 0x2018: case 0x2019: case 0x201A: case 0x2032: case 0x02BC:
			rep = "'";
			break;
		case 0x201C: case 0x201D: case 0x201E: case 0x2033: case 0x00AB:
		case 0x00BB:
			rep = "\"";
			break;
		case 0x2010: case 0x2011: case 0x2012: case 0x2013: case 0x2014:
		case 0x2212:
			rep = "-";
			break;
		case 0x2026:
			rep = "...";
			break;
		case '\t': case 0x00A0: case 0x2002: case 0x2003: case 0x2009:
		case 0x200A: case 0x202F: case 0x205F: case 0x3000:
			rep = " ";
			break;
		case 0x200B: case 0x200D: case 0xFEFF:  /* invisible */
			rep = "";
			break;
		}
		if (rep ? buf_puts(out, rep) : buf_append(out, s + i, n))
			return -1;
	}
	return 0;
}

/* Byte offsets of the character boundaries of s: bounds[k] is where
 * character k starts, bounds[nchars] == len. At most cap entries. */
static size_t
char_bounds(const char *s, size_t len, size_t *bounds, size_t cap)
{
	size_t i = 0, k = 0, n;
	unsigned long cp;

	while (i < len && k + 1 < cap) {
		bounds[k++] = i;
		if ((n = sms_char((const unsigned char *)s + i, len - i,
		    &cp)) == 0)
			return (size_t)-1;
		i += n;
	}
	bounds[k] = i;
	return k;
}

/* Append text with each mark replaced by part[0..plen) plus the ellipsis
 * (when cut), into out. */
static int
assemble(struct buf *out, const char *text, const char *part, size_t plen,
    int cut)
{
	const char *p = text, *m;

	while ((m = strstr(p, SMS_FIT_MARK)) != NULL) {
		if (buf_append(out, p, (size_t)(m - p)) < 0 ||
		    buf_append(out, part, plen) < 0 ||
		    (cut && plen && buf_puts(out, "...") < 0))
			return -1;
		p = m + strlen(SMS_FIT_MARK);
	}
	return buf_puts(out, p);
}

/* The cut of part to its first k characters, tidied: at a word boundary
 * when one is near, without trailing spaces or punctuation. */
static size_t
tidy_cut(const char *part, const size_t *bounds, size_t k)
{
	size_t end = bounds[k], j;

	if (k == 0)
		return 0;
	/* a word cut in two: back to the space before it, if near */
	if (part[end] != ' ' && part[end] != '\0') {
		for (j = k; j > 0 && k - j < 12; j--) {
			if (part[bounds[j - 1]] == ' ') {
				end = bounds[j - 1];
				break;
			}
		}
	}
	while (end > 0 && strchr(" ,;:.-/(", part[end - 1]))
		end--;
	return end;
}

int
sms_fit(const char *text, const char *part, size_t max_segments,
    struct buf *out, struct sms_info *info)
{
	size_t plen = strlen(part), nchars, lo, hi, start = out->len;
	size_t bounds_local[1025], *bounds = bounds_local;
	struct sms_info mi;
	struct buf tmp;
	int r = -1;

	if (max_segments == 0)
		max_segments = 1;
	/* parts longer than 1024 characters are cut to that first */
	if ((nchars = char_bounds(part, plen, bounds, 1025)) == (size_t)-1)
		return -1;
	plen = bounds[nchars];
	buf_init(&tmp, 0);
	if (assemble(&tmp, text, part, plen, plen < strlen(part)) < 0 ||
	    sms_measure(tmp.data ? tmp.data : "", tmp.len, &mi) < 0)
		goto out;
	if (mi.segments <= max_segments || !strstr(text, SMS_FIT_MARK)) {
		r = 0;
		goto done;
	}
	/* the longest cut that fits: fitting is monotonic in the length */
	lo = 0;
	hi = nchars;            /* the whole part does not fit */
	while (lo + 1 < hi) {
		size_t mid = (lo + hi) / 2;

		buf_reset(&tmp);
		if (assemble(&tmp, text, part, tidy_cut(part, bounds, mid), 1)
		    < 0 || sms_measure(buf_str(&tmp), tmp.len, &mi) < 0)
			goto out;
		if (mi.segments <= max_segments)
			lo = mid;
		else
			hi = mid;
	}
	buf_reset(&tmp);
	if (assemble(&tmp, text, part, tidy_cut(part, bounds, lo), 1) < 0 ||
	    sms_measure(buf_str(&tmp), tmp.len, &mi) < 0)
		goto out;
	r = 0;
done:
	if (buf_append(out, buf_str(&tmp), tmp.len) < 0) {
		r = -1;
		goto out;
	}
	if (info)
		*info = mi;
	r = (int)mi.segments;
out:
	if (r < 0 && out->len > start) {
		out->len = start;
		out->data[start] = '\0';
	}
	buf_free(&tmp);
	return r;
}
