/*
 * utf8 - one UTF-8 decoder and encoder for every module that reads or
 * writes code points (conditions, SMS encodings, MIME words, HTML
 * entities, bounce text). Strict RFC 3629: no overlong forms, no
 * surrogates, nothing above U+10FFFF. It does not normalize or fold.
 */
#ifndef LC_UTF8_H
#define LC_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* The UTF-8 sequence at s (n > 0 bytes left): its length in bytes, the
 * code point in *cp; 0 if the bytes there are not valid UTF-8 (a stray
 * continuation byte, overlong, surrogate, above U+10FFFF, truncated). A
 * NUL is a valid one-byte character. */
size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp);

/* Encode cp (at most U+10FFFF, not a surrogate) into out: its length, 1 to
 * 4 bytes. */
size_t utf8_encode(uint32_t cp, char out[4]);

#endif
