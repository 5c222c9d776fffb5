/* Unit tests for lib/sms.c: encodings, segment counts, folding, fitting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "sms.h"

static struct sms_info
measure(const char *s)
{
	struct sms_info i;

	assert_int_equal(sms_measure(s, strlen(s), &i), 0);
	return i;
}

/* Append s to dst (size n), which must have room. */
static void
append(char *dst, size_t n, const char *s)
{
	size_t have = strlen(dst), add = strlen(s);

	assert_true(have + add < n);
	memcpy(dst + have, s, add + 1);
}

/* n copies of s (a short UTF-8 string) in a static buffer. */
static const char *
rep(const char *s, size_t n)
{
	static char b[8192];
	size_t l = strlen(s);

	assert_true(n * l < sizeof(b));
	for (size_t i = 0; i < n; i++)
		memcpy(b + i * l, s, l);
	b[n * l] = '\0';
	return b;
}

static void
gsm7_alphabet(void **state)
{
	struct sms_info i;
	int c;

	(void)state;
	i = measure("Hello @ £$¥ èéùìò Ç Øø Åå Δ_ΦΓΛΩΠΨΣΘΞ Ææß É ¤ ¡ÄÖÑÜ§ ¿äöñüà\r\n");
	assert_int_equal(i.encoding, SMS_GSM7);
	assert_int_equal(i.units, i.chars);
	/* the extension table counts double */
	i = measure("^{}\\[~]|€");
	assert_int_equal(i.encoding, SMS_GSM7);
	assert_int_equal(i.chars, 9);
	assert_int_equal(i.units, 18);
	/* not GSM-7: the backtick, accents outside the table, CJK, emoji */
	assert_int_equal(measure("`").encoding, SMS_UCS2);
	assert_int_equal(measure("ć").encoding, SMS_UCS2);
	assert_int_equal(measure("á").encoding, SMS_UCS2);
	assert_int_equal(measure("東京").encoding, SMS_UCS2);
	assert_true(sms_gsm7_char(0x20AC, &c) && c == 2);
	assert_true(sms_gsm7_char('A', &c) && c == 1);
	assert_false(sms_gsm7_char('\t', &c));
	assert_string_equal(sms_encoding_name(SMS_GSM7), "gsm7");
	assert_string_equal(sms_encoding_name(SMS_UCS2), "ucs2");
}

static void
gsm7_segments(void **state)
{
	(void)state;
	assert_int_equal(measure("").segments, 1);
	assert_int_equal(measure(rep("a", 160)).segments, 1);
	assert_int_equal(measure(rep("a", 161)).segments, 2);
	assert_int_equal(measure(rep("a", 306)).segments, 2);
	assert_int_equal(measure(rep("a", 307)).segments, 3);
	assert_int_equal(measure(rep("a", 459)).segments, 3);
	/* 80 escapes = 160 septets: still one part */
	assert_int_equal(measure(rep("€", 80)).segments, 1);
	assert_int_equal(measure(rep("€", 81)).segments, 2);
	{
		/* 152 septets then an escape: it does not fit the first part's
		 * last septet, so it moves on (153 + 153 + 1 = 3 parts for
		 * 152 + 2 + 152 + 2 ... ) */
		char b[400];
		struct sms_info i;

		b[0] = '\0';
		append(b, sizeof(b), rep("a", 152));
		append(b, sizeof(b), "€");
		append(b, sizeof(b), rep("b", 152));
		i = measure(b);
		assert_int_equal(i.units, 306);
		/* 306 septets fit 2 parts only if the escape is not split:
		 * part 1 = 152 + pad, part 2 = 2 + 151, part 3 = 1 */
		assert_int_equal(i.segments, 3);
	}
}

static void
ucs2_segments(void **state)
{
	struct sms_info i;

	(void)state;
	i = measure(rep("ж", 70));
	assert_int_equal(i.encoding, SMS_UCS2);
	assert_int_equal(i.units, 70);
	assert_int_equal(i.segments, 1);
	assert_int_equal(measure(rep("ж", 71)).segments, 2);
	assert_int_equal(measure(rep("ж", 134)).segments, 2);
	assert_int_equal(measure(rep("ж", 135)).segments, 3);
	/* one non-GSM character turns the whole message into UCS-2 */
	i = measure("New lead: Zoë Łukasiewicz");
	assert_int_equal(i.encoding, SMS_UCS2);
	assert_int_equal(i.units, 25);
	/* emoji are surrogate pairs: 2 units each */
	i = measure(rep("😀", 35));
	assert_int_equal(i.units, 70);
	assert_int_equal(i.chars, 35);
	assert_int_equal(i.segments, 1);
	assert_int_equal(measure(rep("😀", 36)).segments, 2);
	/* a pair is never split: 66 units then an emoji -> next part */
	{
		char b[600];

		b[0] = '\0';
		append(b, sizeof(b), rep("ж", 66));
		append(b, sizeof(b), "😀");
		append(b, sizeof(b), rep("ж", 66));
		i = measure(b);
		assert_int_equal(i.units, 134);
		assert_int_equal(i.segments, 3);
	}
}

static void
invalid_utf8(void **state)
{
	struct sms_info i;

	(void)state;
	assert_int_equal(sms_measure("\xc3", 1, &i), -1);          /* cut */
	assert_int_equal(sms_measure("\xc0\xaf", 2, &i), -1);      /* overlong */
	assert_int_equal(sms_measure("\xed\xa0\x80", 3, &i), -1);  /* surrogate */
	assert_int_equal(sms_measure("\xf4\x90\x80\x80", 4, &i), -1);
	assert_int_equal(sms_measure("a\0b", 3, &i), -1);
	assert_int_equal(sms_measure("\xff", 1, &i), -1);
}

static void
fold_typography(void **state)
{
	struct buf b;
	const char *in = "It’s “great” – really… \xc2\xa0ok\t«x»\xe2\x80\x8b";

	(void)state;
	buf_init(&b, 0);
	assert_int_equal(sms_fold(in, strlen(in), &b), 0);
	assert_string_equal(buf_str(&b), "It's \"great\" - really...  ok \"x\"");
	assert_int_equal(measure(buf_str(&b)).encoding, SMS_GSM7);
	buf_reset(&b);
	assert_int_equal(sms_fold("ok ćx", strlen("ok ćx"), &b), 0);
	assert_string_equal(buf_str(&b), "ok ćx");
	assert_int_equal(sms_fold("\xc3", 1, &b), -1);
	buf_free(&b);
}

static void
fit_shortens_the_part(void **state)
{
	struct buf b;
	struct sms_info i;
	const char *tmpl = "New lead: " SMS_FIT_MARK ", score 82. Reply Y 4821 "
	    "to take it, N 4821 to pass: https://leads.example.com/r/"
	    "AbC12xYzAbC12xYzAbC1";
	int n;

	(void)state;
	buf_init(&b, 0);
	/* fits as is */
	n = sms_fit(tmpl, "Jane Doe, Acme, Troy MI", 1, &b, &i);
	assert_int_equal(n, 1);
	assert_non_null(strstr(buf_str(&b), "New lead: Jane Doe, Acme, Troy MI,"
	    " score 82."));
	assert_null(strstr(buf_str(&b), "..."));
	/* too long for one part: cut at a word, with an ellipsis */
	buf_reset(&b);
	n = sms_fit(tmpl, "Jane Doe, Vice President of Procurement and "
	    "Strategic Sourcing, Acme International Holdings, Troy MI", 1, &b,
	    &i);
	assert_int_equal(n, 1);
	assert_true(i.units <= 160);
	assert_int_equal(i.encoding, SMS_GSM7);
	assert_non_null(strstr(buf_str(&b), "New lead: Jane Doe, Vice"));
	assert_non_null(strstr(buf_str(&b), "..., score 82."));
	assert_non_null(strstr(buf_str(&b), "/r/AbC12xYzAbC12xYzAbC1"));
	/* the cut is at a word boundary, with no comma before the dots */
	assert_null(strstr(buf_str(&b), ",..."));
	assert_null(strstr(buf_str(&b), " ..."));
	/* two parts allowed: nothing cut */
	buf_reset(&b);
	n = sms_fit(tmpl, "Jane Doe, Vice President of Procurement and "
	    "Strategic Sourcing, Acme International Holdings, Troy MI", 2, &b,
	    &i);
	assert_int_equal(n, 2);
	assert_null(strstr(buf_str(&b), "..."));
	buf_free(&b);
}

static void
fit_ucs2_and_repeats(void **state)
{
	struct buf b;
	struct sms_info i;
	int n;

	(void)state;
	buf_init(&b, 0);
	/* a UCS-2 part: the budget is 70 units */
	n = sms_fit("Lead: " SMS_FIT_MARK " Y 1234", rep("ж", 100), 1, &b, &i);
	assert_int_equal(n, 1);
	assert_int_equal(i.encoding, SMS_UCS2);
	assert_true(i.units <= 70);
	assert_true(i.units >= 60);
	/* a cut UCS-2 part may leave a GSM-7 message */
	buf_reset(&b);
	n = sms_fit(SMS_FIT_MARK, "abc ж", 1, &b, &i);
	assert_int_equal(n, 1);
	assert_string_equal(buf_str(&b), "abc ж");
	/* the mark twice: both get the same cut */
	buf_reset(&b);
	n = sms_fit("(" SMS_FIT_MARK ")(" SMS_FIT_MARK ")", rep("x", 200), 1,
	    &b, &i);
	assert_int_equal(n, 1);
	assert_int_equal(i.units, 160);
	assert_int_equal(strlen(buf_str(&b)), 160);
	/* brackets are escapes: 8 septets for 4 of them */
	buf_reset(&b);
	n = sms_fit("[" SMS_FIT_MARK "][" SMS_FIT_MARK "]", rep("x", 200), 1,
	    &b, &i);
	assert_int_equal(i.units, 160);
	assert_int_equal(strlen(buf_str(&b)), 156);
	/* nothing fits: the part is dropped and the count says so */
	buf_reset(&b);
	n = sms_fit(rep("z", 200), "whatever", 1, &b, &i);
	assert_int_equal(n, 2);
	buf_reset(&b);
	{
		char t[300];
		const char *z = rep("z", 200);
		size_t zl = strlen(z);

		/* (not snprintf: gcc -O2 cannot see that z fits) */
		assert_true(zl + sizeof(SMS_FIT_MARK) <= sizeof(t));
		memcpy(t, z, zl);
		memcpy(t + zl, SMS_FIT_MARK, sizeof(SMS_FIT_MARK));
		n = sms_fit(t, "whatever", 1, &b, &i);
		assert_int_equal(n, 2);
		assert_null(strstr(buf_str(&b), "what"));
	}
	/* no mark at all */
	buf_reset(&b);
	assert_int_equal(sms_fit("plain", "x", 1, &b, &i), 1);
	assert_string_equal(buf_str(&b), "plain");
	/* bad UTF-8 in the part */
	buf_reset(&b);
	assert_int_equal(sms_fit(SMS_FIT_MARK, "\xc3(", 1, &b, &i), -1);
	assert_int_equal(b.len, 0);
	buf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(gsm7_alphabet),
		cmocka_unit_test(gsm7_segments),
		cmocka_unit_test(ucs2_segments),
		cmocka_unit_test(invalid_utf8),
		cmocka_unit_test(fold_typography),
		cmocka_unit_test(fit_shortens_the_part),
		cmocka_unit_test(fit_ucs2_and_repeats),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
