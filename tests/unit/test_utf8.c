/* Unit tests for lib/utf8.c: RFC 3629's edges, both ways. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "utf8.h"

static const struct {
	const char *bytes;
	size_t n;               /* bytes available */
	size_t len;             /* expected length, 0 = invalid */
	uint32_t cp;
} cases[] = {
	{ "A", 1, 1, 0x41 },
	{ "\0", 1, 1, 0 },
	{ "\xc2\x80", 2, 2, 0x80 },
	{ "\xdf\xbf", 2, 2, 0x7ff },
	{ "\xe0\xa0\x80", 3, 3, 0x800 },
	{ "\xe2\x82\xac", 3, 3, 0x20ac },       /* euro sign */
	{ "\xef\xbf\xbf", 3, 3, 0xffff },
	{ "\xf0\x90\x80\x80", 4, 4, 0x10000 },
	{ "\xf4\x8f\xbf\xbf", 4, 4, 0x10ffff },
	{ "\xf0\x9f\x98\x80!", 5, 4, 0x1f600 }, /* only the first character */
	{ "\x80", 1, 0, 0 },                    /* stray continuation */
	{ "\xc0\x80", 2, 0, 0 },                /* overlong NUL */
	{ "\xc1\xbf", 2, 0, 0 },                /* overlong */
	{ "\xe0\x9f\xbf", 3, 0, 0 },            /* overlong 3 bytes */
	{ "\xf0\x8f\xbf\xbf", 4, 0, 0 },        /* overlong 4 bytes */
	{ "\xed\xa0\x80", 3, 0, 0 },            /* surrogate D800 */
	{ "\xed\xbf\xbf", 3, 0, 0 },            /* surrogate DFFF */
	{ "\xf4\x90\x80\x80", 4, 0, 0 },        /* above U+10FFFF */
	{ "\xf5\x80\x80\x80", 4, 0, 0 },
	{ "\xff", 1, 0, 0 },
	{ "\xe2\x82", 2, 0, 0 },                /* truncated */
	{ "\xe2\x82\xac", 2, 0, 0 },            /* cut short by n */
	{ "\xe2\x28\xa1", 3, 0, 0 },            /* bad continuation */
};

static void
decode_accepts_exactly_rfc3629(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint32_t cp = 0xdeadbeef;
		size_t len = utf8_decode((const unsigned char *)cases[i].bytes,
		    cases[i].n, &cp);

		assert_int_equal(len, cases[i].len);
		if (len)
			assert_int_equal(cp, cases[i].cp);
	}
}

static void
encode_round_trips_every_scalar_value(void **state)
{
	(void)state;
	for (uint32_t c = 0; c <= 0x10ffff; c++) {
		char s[4];
		uint32_t back = 0;
		size_t n;

		if (c >= 0xd800 && c <= 0xdfff)
			continue;
		n = utf8_encode(c, s);
		assert_int_equal(n, c < 0x80 ? 1 : c < 0x800 ? 2 :
		    c < 0x10000 ? 3 : 4);
		assert_int_equal(utf8_decode((const unsigned char *)s, n,
		    &back), n);
		assert_int_equal(back, c);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(decode_accepts_exactly_rfc3629),
		cmocka_unit_test(encode_round_trips_every_scalar_value),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
