/*
 * mime - compose outgoing email messages (RFC 5322, MIME RFC 2045-2049).
 *
 * A struct mime_msg collects header fields and a text and/or HTML body,
 * then renders the message: CRLF line ends, header lines folded at
 * whitespace (76 columns where possible, never over 998 octets), RFC 2047
 * encoded-words (UTF-8) for non-ASCII header text, text/plain, text/html
 * or multipart/alternative (text first), each part in 7bit,
 * quoted-printable or base64 (whichever is shortest), Date and Message-ID
 * added unless given, and a limit on the size of the whole message.
 *
 * Header injection is impossible by construction: every value is cleaned
 * of CR, LF and other control characters before it is written, field
 * names and addresses are validated, and each call makes one header field.
 *
 * It does not parse messages, sign them (DKIM), send them, or handle
 * attachments, and it does not support SMTPUTF8 (non-ASCII addresses are
 * rejected). It does no I/O and no logging; it uses only the CSPRNG
 * (Message-ID, boundary) and the clock (Date). A mime_msg is not
 * thread-safe; the other functions are.
 */
#ifndef LEADCAST_MIME_H
#define LEADCAST_MIME_H

#include <stddef.h>
#include <time.h>

#include "buf.h"

#define MIME_MAX_VALUE  4096    /* bytes of one header value or display name */
#define MIME_MAX_NAME   76      /* bytes of a header field name */

struct mime_msg;        /* a message being composed; owns copies of all it holds */

/* A new, empty message; NULL on ENOMEM. Caller frees with mime_free(). */
struct mime_msg *mime_new(void);
void mime_free(struct mime_msg *m);

/*
 * Add the header field "name: value", after those added before. The value
 * (UTF-8, from data; NULL is "") is cleaned: control characters (CR and LF
 * included) become spaces, runs of spaces collapse to one, invalid UTF-8
 * becomes U+FFFD. Non-ASCII words (and words that look like encoded-words
 * or are too long to fold) become encoded-words (B or Q, whichever is
 * shorter, each <= 75 characters). A "Date" or "Message-ID" given here
 * replaces the generated one. -1 if the name is not a field name
 * (printable ASCII, no ':'; at most MIME_MAX_NAME), is one this module
 * writes itself (MIME-Version, Content-Type, Content-Transfer-Encoding),
 * or the value is longer than MIME_MAX_VALUE; -1 on ENOMEM.
 */
int mime_header(struct mime_msg *m, const char *name, const char *value);

/*
 * Add a mailbox "display <addr>" (or just addr when display is NULL or
 * empty) to the address field name (From, To, Cc, Reply-To, ...). The
 * display name is cleaned like a header value and written as atoms, a
 * quoted-string or encoded-words as needed. A second call with the same
 * name appends to the same field ("a, b"). The first From address gives
 * the default Message-ID domain. -1 if the name is invalid (as in
 * mime_header) or the address fails mime_addr_valid().
 */
int mime_address_header(struct mime_msg *m, const char *name,
    const char *display, const char *addr);

/* Set (replace; NULL removes) the UTF-8 text or HTML body; the message
 * keeps a copy. Text only: text/plain; HTML only: text/html; both:
 * multipart/alternative; neither: an empty text/plain. -1 on ENOMEM. */
int mime_set_text(struct mime_msg *m, const char *text, size_t len);
int mime_set_html(struct mime_msg *m, const char *html, size_t len);

/* Use this multipart boundary (1..70 RFC 2046 bchars, not ending in a
 * space) instead of a random one. -1 if invalid. */
int mime_set_boundary(struct mime_msg *m, const char *boundary);
/* Domain of the generated Message-ID (default: the first From address's
 * domain, else "localhost"). -1 if it is not a host name. */
int mime_set_id_domain(struct mime_msg *m, const char *domain);

/*
 * Append the rendered message to out: the header fields in the order
 * added, then Date (UTC) and Message-ID unless given, MIME-Version,
 * Content-Type (charset=utf-8) and Content-Transfer-Encoding, a blank
 * line, and the body. Bare CR and LF in bodies become CRLF; every line
 * ends in CRLF and has at most 998 octets. The first render fixes the
 * generated Date, Message-ID and boundary; later renders repeat them.
 * The header section is printable ASCII; header lines are folded at 76
 * columns where a word allows it (a long URL may make a longer line).
 * Returns 0, or -1 with a message in err (size n; err may be NULL) and
 * out's contents unchanged: the message is over max_size bytes (0: no
 * limit; "message is N bytes, over the limit of M"), the boundary occurs
 * in a body, no randomness, or out of memory or out's own limit (which
 * sets out->overflow).
 */
int mime_render(struct mime_msg *m, size_t max_size, struct buf *out,
    char *err, size_t n);

/* Write "<32 random hex digits@domain>" to out (size n). -1 if domain is
 * not a host name, out is too small or the CSPRNG failed. */
int mime_message_id(char *out, size_t n, const char *domain);
/* Write t as an RFC 5322 date in UTC ("Sun, 22 Nov 2026 21:30:46 +0000")
 * to out (size n, 32 is enough); locale-independent. */
void mime_date(char *out, size_t n, time_t t);

/*
 * 1 if addr is a practical RFC 5321 mailbox: local@domain, the local part
 * a dot-atom or quoted-string of at most 64 octets, the domain at most 253
 * octets of two or more labels (1..63 letters, digits, inner hyphens; IDNs
 * in A-label "xn--" form), a non-numeric top-level label, at most 254
 * octets in all. Non-ASCII (SMTPUTF8) and address literals are rejected.
 * Else 0 and, if reason is not NULL, *reason is a static string saying why.
 */
int mime_addr_valid(const char *addr, const char **reason);

/* Append the quoted-printable encoding (RFC 2045) of in: CRLF in the input
 * is a hard line break (CRLF), bare CR and LF are encoded, lines have at
 * most 76 characters. On ENOMEM (or out's limit) out->overflow is set. */
void mime_qp_encode(const char *in, size_t len, struct buf *out);
/* Append the base64 encoding of in in lines of 76 characters, each ending
 * in CRLF ("" for no input). On ENOMEM out->overflow is set. */
void mime_b64_encode(const void *in, size_t len, struct buf *out);
/* Append value as mime_header() would write it after "Name:" for a name
 * of name_len octets: cleaned, encoded, each word after a space or a fold
 * (CRLF SP), without the final CRLF ("" for an empty value). -1 if the
 * value is longer than MIME_MAX_VALUE. */
int mime_encode_header_value(const char *value, size_t name_len,
    struct buf *out);

#endif
