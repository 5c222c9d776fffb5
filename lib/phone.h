/*
 * phone - phone numbers as people type them, normalized to E.164
 * ("+CCNNN...", at most 15 digits).
 *
 * It accepts the usual human formats: "+1 (313) 555-0142", "(313)
 * 555-0142", "313.555.0142", "0044 20 7946 0958", "+44 (0)20 7946 0958",
 * "020 7946 0958" (default country GB), "06 12 34 56 78" (FR), "00 33 6 12
 * 34 56 78", "tel:+1-313-555-0142". Separators are spaces, tabs, - . / ( )
 * and their Unicode look-alikes (no-break space, hyphens and dashes, minus
 * sign).
 *
 * International form: "+" and the country calling code, or "00" (from any
 * country), or the default country's own international prefix (011 in
 * North America, 0011 in Australia, 010 in Japan, 810 in Russia, ...).
 * A trunk prefix written after the country code, "+44 (0)20" or "+44 020",
 * is dropped where the country uses one (not in Italy, where the 0 is part
 * of the number).
 *
 * National form (no country code) needs a default country: its trunk
 * prefix (0 in most of the world, 1 in North America, 8 in Russia, 06 in
 * Hungary) is dropped when present, and a number written with the
 * country's calling code but without "+" ("44 7911 123456" for GB) is
 * recognized when it is too long to be a national number.
 *
 * Extensions ("x123", "ext 123", "ext. 123", "extension 123", "#123",
 * ";ext=123", 1 to 10 digits at the end) are accepted and dropped from the
 * E.164 form, which has no room for them; phone_parse() returns them
 * separately so the caller may keep them elsewhere.
 *
 * Refused, each with a reason in err: letters ("letters in the number"),
 * other symbols, a "+" not at the start, no digits, an unknown or global
 * service country code ("unknown country code +999"), no country code and
 * no default country, a national number too short or too long for its
 * country ("too short for GB: ..."; lengths are known for every country,
 * from their numbering plans: fixed, mobile and toll-free numbers), and
 * North American numbers whose area code or exchange starts with 0 or 1
 * or whose area code is a service code (N11).
 *
 * It does not check that a number is assigned or reachable, nor the digit
 * patterns of each country beyond their lengths (and North America's
 * rules): "+44 20 0000 0000" passes. Brazilian and Colombian carrier
 * selection codes after 00 are not understood. The country of a number
 * that shares its calling code with others (+1, +7, +44, ...) is a best
 * guess from its leading digits (North American area codes, Jersey,
 * Guernsey, Isle of Man, Kazakhstan, ...).
 *
 * Thread-safe: constant tables only, no allocation, no locale use.
 */
#ifndef LEADCAST_PHONE_H
#define LEADCAST_PHONE_H

#include <stddef.h>

#define PHONE_E164_MAX  17      /* "+" + 15 digits + NUL */
#define PHONE_EXT_MAX   11      /* 10 digits + NUL */
#define PHONE_INPUT_MAX 64      /* longest input accepted, in bytes */

struct phone_number {
	char e164[PHONE_E164_MAX];      /* "+13135550142" */
	char country[3];                /* ISO 3166 alpha-2 (best guess), or a
					 * non-ISO region: AC, TA, XK */
	int calling_code;               /* 1 */
	char national[16];              /* national significant number:
					 * "3135550142" */
	char extension[PHONE_EXT_MAX];  /* "" when none */
};

/*
 * Parse in (NUL-terminated, at most PHONE_INPUT_MAX bytes) into *out.
 * default_country is an ISO 3166 alpha-2 code in either case ("US", "gb"),
 * used for numbers written without a country code; NULL or "" for none.
 * Returns 0; or -1 with a reason in err (size errn; err may be NULL) and
 * *out zeroed. An unknown default_country is an error even when the
 * number has its own country code.
 */
int phone_parse(const char *in, const char *default_country,
    struct phone_number *out, char *err, size_t errn);

/*
 * Normalize in to E.164 in out (size n, PHONE_E164_MAX is always enough).
 * Same rules and errors as phone_parse(); an extension is dropped. An out
 * too small is an error. Returns 0 or -1.
 */
int phone_normalize(const char *in, const char *default_country, char *out,
    size_t n, char *err, size_t errn);

/* 1 if alpha2 is an ISO 3166-1 alpha-2 country code (either case), else 0. */
int phone_country_valid(const char *alpha2);

/* The calling code of an ISO country (either case): 44 for "GB"; 0 if
 * unknown. */
int phone_calling_code(const char *alpha2);

#endif
