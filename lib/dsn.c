/*
 * dsn - bounce, complaint and auto-reply parser and classifier. See dsn.h.
 *
 * dsn_parse() cuts a leading mbox "From " line, lets libetpan parse the
 * MIME structure (after mime_input_len() has bounded the nesting its
 * recursive parser would meet) and walks it, bounded by max_parts and a
 * depth limit: text/plain parts (and the text of text/html ones) make the
 * notice, the human-readable report; message/delivery-status,
 * message/feedback-report and the header section of the returned
 * original (message/rfc822, text/rfc822-headers, a text part made of
 * header fields, or the header fields after one of the "copy of the
 * message" lines MTAs write) are kept apart. interpret() then reads, first
 * match wins: a feedback report, an Amazon SES notification, a
 * delivery-status report (or report fields written in the text), a
 * plain-text bounce, an auto-reply. When that finds no recipient address
 * (a wrong boundary, an unfolded Content-Type), the raw body is read
 * again as text.
 *
 * In a plain-text bounce, a line that names a recipient (an address that
 * starts it, or a label such as "RCPT TO:") starts its diagnostic: the
 * rest of the line and those after it, up to a blank line or the next
 * recipient. A recipient whose text says nothing takes the lines that
 * name it elsewhere (a Sendmail transcript), else the lines of the notice
 * that carry a code or a classifying phrase. The same text completes a
 * delivery-status report: the SMTP command a recipient's error answered,
 * or a specific status where the report's was generic.
 *
 * dsn_classify() reads the diagnostic in lowercase with whitespace
 * collapsed: a few phrases that hold another category's words first,
 * then well-known phrases by category in an order where evidence that the
 * mailbox exists (full, disabled, too big) and that the refusal is about
 * the sender (its address, IP, reputation, authentication, content)
 * outranks "no such user"; then a specific RFC 3463 status; then weak
 * phrases ("rejected", "denied"); then a generic status and the reply
 * code. What the error answered corrects it: about the sender after MAIL
 * FROM, about the client after EHLO or the greeting, a filter's after
 * DATA ("no such user" for a recipient accepted at RCPT TO). A bad
 * address is hard only when sure: "no such user" needs an X.1.x status,
 * the answer to RCPT TO or a directory's own words, else it is soft, so
 * that a misread bounce never removes a good address at once. Delays and
 * temporary failures are soft; a failure understood by none of these is
 * unknown.
 */
#include "dsn.h"
#include "utf8.h"
#include "buf.h"
#include "htmlrw.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <libetpan/mailmime.h>
#include <libetpan/mailmime_decode.h>
#include <libetpan/mmapstring.h>

#define NOTICE_MAX      (256u << 10)    /* bytes of notice text kept */
#define HEADER_MAX      (64u << 10)     /* bytes of a header section read */
#define REPORT_MAX      (1u << 20)      /* bytes of report parts kept */
#define DEPTH_MAX       12              /* MIME nesting walked */
#define LINE_DIAG_MAX   12              /* lines of one text diagnostic */
#define SCAN_RCPTS      32              /* recipients looked up in the text */
#define TEXT_MAX        (128u << 10)    /* bytes of report text analysed */
#define VERP_PREFIX     "bounces+"      /* lib/compose.c's envelope sender */

/* ---- characters and strings --------------------------------------------- */

static int
lc(int c)
{
	return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

static int
is_digit(int c)
{
	return c >= '0' && c <= '9';
}

static int
is_alnum(int c)
{
	return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int
is_space(int c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' ||
	    c == '\v';
}

/* The first occurrence of needle (lowercase ASCII) in s (n bytes), case
 * folded; NULL if none. */
static const char *
ci_find(const char *s, size_t n, const char *needle)
{
	size_t m = strlen(needle);

	if (m == 0)
		return s;
	for (size_t i = 0; i + m <= n; i++) {
		size_t j = 0;

		while (j < m && lc((unsigned char)s[i + j]) ==
		    (unsigned char)needle[j])
			j++;
		if (j == m)
			return s + i;
	}
	return NULL;
}

static int
ci_prefix(const char *s, size_t n, const char *prefix)
{
	size_t m = strlen(prefix);

	return n >= m && strncasecmp(s, prefix, m) == 0;
}

/*
 * Copy s (len bytes) to dst (size n > 0): runs of whitespace and control
 * characters become one space, none leads or trails, invalid UTF-8 bytes
 * become '?', and the copy is cut at a character boundary to fit.
 * Returns strlen(dst).
 */
static size_t
clean_copy(char *dst, size_t n, const char *s, size_t len)
{
	size_t o = 0;
	int sp = 0;

	for (size_t i = 0; i < len;) {
		unsigned char c = (unsigned char)s[i];
		size_t l, cl;
		uint32_t cp;
		const char *src;

		if (c <= ' ' || c == 0x7f) {
			sp = o > 0;
			i++;
			continue;
		}
		l = utf8_decode((const unsigned char *)s + i, len - i, &cp);
		src = l ? s + i : "?";
		cl = l ? l : 1;
		if (o + (size_t)sp + cl >= n)
			break;
		if (sp)
			dst[o++] = ' ';
		sp = 0;
		memcpy(dst + o, src, cl);
		o += cl;
		i += cl;
	}
	dst[o] = '\0';
	return o;
}

/* Lowercase ASCII copy of s with whitespace runs collapsed to one space,
 * into out (reset first). For phrase matching. */
static void
norm_text(const char *s, size_t len, struct buf *out)
{
	int sp = 0;

	buf_reset(out);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < ' ' || c == ' ' || c == 0x7f) {
			sp = out->len > 0;
			continue;
		}
		if (sp)
			buf_putc(out, ' ');
		sp = 0;
		buf_putc(out, (char)lc(c));
	}
}

/* ---- lines and header fields -------------------------------------------- */

/* The end of the line at p: the '\n' or end. */
static const char *
line_end(const char *p, const char *end)
{
	const char *q = memchr(p, '\n', (size_t)(end - p));

	return q ? q : end;
}

static const char *
next_line(const char *p, const char *end)
{
	const char *q = line_end(p, end);

	return q < end ? q + 1 : end;
}

static int
is_blank(const char *p, const char *eol)
{
	for (; p < eol; p++)
		if (!is_space((unsigned char)*p))
			return 0;
	return 1;
}

struct field {
	const char *name, *val; /* val: raw, may hold folded line breaks */
	size_t nlen, vlen;
};

enum { F_END = -1, F_BLANK = 0, F_FIELD = 1, F_OTHER = 2 };

/* Read the line at *pp: a header field with its continuation lines
 * (F_FIELD, *f set), a blank line (F_BLANK), a line that is no field
 * (F_OTHER), or nothing left (F_END). Advances *pp past what was read. */
static int
next_field(const char **pp, const char *end, struct field *f)
{
	const char *p = *pp, *eol, *q, *next;

	if (p >= end)
		return F_END;
	eol = line_end(p, end);
	next = eol < end ? eol + 1 : end;
	if (is_blank(p, eol)) {
		*pp = next;
		return F_BLANK;
	}
	for (q = p; q < eol && *q != ':' && *q > ' ' && *q < 127; q++)
		;
	if (q == p || q >= eol || *q != ':') {
		*pp = next;
		return F_OTHER;
	}
	f->name = p;
	f->nlen = (size_t)(q - p);
	f->val = q + 1;
	while (next < end && (*next == ' ' || *next == '\t') &&
	    !is_blank(next, line_end(next, end))) {
		eol = line_end(next, end);
		next = eol < end ? eol + 1 : end;
	}
	f->vlen = (size_t)(eol - f->val);
	*pp = next;
	return F_FIELD;
}

static int
fname(const struct field *f, const char *name)
{
	return f->nlen == strlen(name) && strncasecmp(f->name, name, f->nlen)
	    == 0;
}

/* The value of the first header field name in the header section hdr
 * (n bytes, ends at the first blank line); NULL if none. */
static const char *
header_get(const char *hdr, size_t n, const char *name, size_t *vlen)
{
	const char *p = hdr, *end = hdr + n;
	struct field f;
	int k;

	while ((k = next_field(&p, end, &f)) != F_END && k != F_BLANK)
		if (k == F_FIELD && fname(&f, name)) {
			*vlen = f.vlen;
			return f.val;
		}
	return NULL;
}

/* ---- addresses and codes ------------------------------------------------ */

static int
is_local_char(int c)
{
	return is_alnum(c) || (c && strchr("!#$%&*+=?^_{}~.-", c));
}

static int
is_domain_char(int c)
{
	return is_alnum(c) || c == '.' || c == '-' || c == '_';
}

/*
 * The first address (local@domain) in s (n bytes): *a and *alen, and the
 * index just past it in *after. 0 if none. The local part is what address
 * characters precede the '@' (no leading '.'), the domain a host name of
 * one or more labels.
 */
static int
find_addr(const char *s, size_t n, const char **a, size_t *alen,
    size_t *after)
{
	for (size_t i = 0; i < n; i++) {
		size_t l = i, r = i + 1;

		if (s[i] != '@')
			continue;
		while (l > 0 && is_local_char((unsigned char)s[l - 1]))
			l--;
		while (l < i && s[l] == '.')
			l++;
		while (r < n && is_domain_char((unsigned char)s[r]))
			r++;
		while (r > i + 1 && (s[r - 1] == '.' || s[r - 1] == '-'))
			r--;
		if (l == i || r == i + 1 || !is_alnum((unsigned char)s[i + 1]))
			continue;
		if (i - l > 64 || r - i - 1 > 253)
			continue;
		*a = s + l;
		*alen = r - l;
		if (after)
			*after = r;
		return 1;
	}
	return 0;
}

/* Store the address s (alen bytes) in dst (size DSN_MAX_ADDR), its domain
 * lowercased. */
static void
put_addr(char *dst, const char *s, size_t alen)
{
	char *at;

	clean_copy(dst, DSN_MAX_ADDR, s, alen);
	if ((at = strrchr(dst, '@')) != NULL)
		for (; *at; at++)
			*at = (char)lc((unsigned char)*at);
}

/* The address in a report field value ("rfc822; <a@b>", "Name <a@b>",
 * "a@b"). 1 if one was found. */
static int
addr_from_value(char *dst, const char *v, size_t vlen)
{
	const char *a;
	size_t alen;

	dst[0] = '\0';
	if (!find_addr(v, vlen, &a, &alen, NULL))
		return 0;
	put_addr(dst, a, alen);
	return 1;
}

/* Copy a report field value without its "type;" prefix ("dns; host",
 * "smtp; 550 ..."). */
static void
put_typed(char *dst, size_t n, const char *v, size_t vlen)
{
	const char *semi = memchr(v, ';', vlen);

	if (semi) {
		size_t k;

		for (k = 0; v + k < semi; k++)
			if (!is_alnum((unsigned char)v[k]) && v[k] != '-' &&
			    !is_space((unsigned char)v[k]))
				break;
		if (v + k == semi) {
			vlen -= (size_t)(semi + 1 - v);
			v = semi + 1;
		}
	}
	clean_copy(dst, n, v, vlen);
}

/*
 * Find an RFC 3463 enhanced status code of a class in cls ("45", "2") in
 * s, not part of a longer dotted number: copy it to status (size 16) and
 * return its offset, or -1.
 */
static long
find_status_class(const char *s, size_t n, char *status, const char *cls)
{
	for (size_t i = 0; i + 5 <= n; i++) {
		size_t j = i + 1, d1 = 0, d2 = 0;

		if (!strchr(cls, s[i]) || s[j] != '.')
			continue;
		if (i > 0 && (is_digit((unsigned char)s[i - 1]) ||
		    s[i - 1] == '.'))
			continue;
		for (j++; j < n && is_digit((unsigned char)s[j]) && d1 < 4; j++)
			d1++;
		if (d1 == 0 || d1 > 3 || j >= n || s[j] != '.')
			continue;
		for (j++; j < n && is_digit((unsigned char)s[j]) && d2 < 4; j++)
			d2++;
		if (d2 == 0 || d2 > 3)
			continue;
		if (j < n && s[j] == '.' && j + 1 < n &&
		    is_digit((unsigned char)s[j + 1]))
			continue;
		if (j < n && is_digit((unsigned char)s[j]))
			continue;
		memcpy(status, s + i, j - i);
		status[j - i] = '\0';
		return (long)i;
	}
	return -1;
}

/* 1 if an SMTP reply code of class c ends just before offset at
 * ("550 5.1.1", "550-5.1.1", "550-'5.1.1"). */
static int
code_before(const char *s, long at, char c)
{
	if (at >= 1 && (s[at - 1] == '\'' || s[at - 1] == '"'))
		at--;
	return at >= 4 && s[at - 4] == c && is_digit((unsigned char)s[at - 3])
	    && is_digit((unsigned char)s[at - 2]) && (s[at - 1] == ' ' ||
	    s[at - 1] == '-') && (at == 4 || !is_alnum((unsigned char)s[at - 5]));
}

/*
 * The failure status (4.x.x, 5.x.x) of s: the first that follows an SMTP
 * reply code of its class (a relay quoting the remote server's reply
 * after its own code: "5.1.0 - Unknown address error 550-'5.2.2 ..."),
 * else the first; else the first success (2.x.x). A transcript holds many
 * of those before the error.
 */
static long
find_status(const char *s, size_t n, char *status)
{
	char st[16];
	long at, first = -1;

	for (size_t off = 0; off < n && (at = find_status_class(s + off,
	    n - off, st, "45")) >= 0; off += (size_t)at + 1) {
		at += (long)off;
		if (first < 0) {
			first = at;
			snprintf(status, 16, "%s", st);
		}
		if (code_before(s, at, st[0])) {
			snprintf(status, 16, "%s", st);
			return at;
		}
	}
	return first >= 0 ? first : find_status_class(s, n, status, "2");
}

/* An SMTP reply code (4xx or 5xx) standing alone in s: the one just
 * before the enhanced status code at offset at (if at >= 0), else the
 * first. 0 if none. */
static int
find_code(const char *s, size_t n, long at)
{
	if (at >= 4 && is_digit((unsigned char)s[at - 4]) &&
	    (s[at - 1] == ' ' || s[at - 1] == '-') &&
	    (s[at - 4] == '4' || s[at - 4] == '5') &&
	    is_digit((unsigned char)s[at - 3]) &&
	    is_digit((unsigned char)s[at - 2]) &&
	    (at == 4 || !is_alnum((unsigned char)s[at - 5])))
		return (s[at - 4] - '0') * 100 + (s[at - 3] - '0') * 10 +
		    (s[at - 2] - '0');
	for (size_t i = 0; i + 3 <= n; i++) {
		char p = i ? s[i - 1] : ' ', nx = i + 3 < n ? s[i + 3] : ' ';

		if ((s[i] != '4' && s[i] != '5') || s[i + 1] < '0' ||
		    s[i + 1] > '5' || !is_digit((unsigned char)s[i + 2]))
			continue;
		if (!strchr(" \t\r\n:;([\"'", p))
			continue;
		if (!strchr(" \t\r\n-", nx))
			continue;
		return (s[i] - '0') * 100 + (s[i + 1] - '0') * 10 +
		    (s[i + 2] - '0');
	}
	return 0;
}

/* ---- classification ----------------------------------------------------- */

/* Phrases per reason, lowercase, matched in text with whitespace
 * collapsed. The table's order is the priority. */
static const char *const ph_mailbox_full[] = {
	"mailbox full", "mailbox is full", "mailbox was full",
	"mail box full", "mailbox has exceeded", "mailbox exceeds",
	"mailfolder is full", "mail folder is full", "mailbox size limit",
	"over quota", "over its quota", "overquota", "quota exceeded",
	"exceeded quota", "exceeds quota", "quota full", "disk quota",
	"mailbox quota", "exceeded storage allocation",
	"exceeded the storage", "exceeded its storage",
	"exceeded their storage", "storage quota", "account is full",
	"inbox is full", "insufficient storage for", "out of storage",
	"not enough storage", "mailbox too large", "is over the limit",
	"boite du destinataire pleine", "boite pleine", "postfach voll",
	"mailbox voll", "casella piena", "buzon lleno",
	NULL
};
static const char *const ph_too_big[] = {
	"message too large", "message too big", "message is too large",
	"message is too big", "message size exceeds", "size exceeds",
	"exceeds size limit", "exceeds the size limit",
	"exceeds maximum message size", "exceeds the maximum message size",
	"exceeds the maximum size", "message length exceeds",
	"mail size limit", "message size limit", "too large for",
	"message exceeds the max", "email is too large",
	NULL
};
static const char *const ph_disabled[] = {
	"account disabled", "account has been disabled",
	"account is disabled", "account is disabled", "mailbox disabled",
	"mailbox has been disabled", "mailbox is disabled",
	"disabled mailbox", "user disabled", "address disabled",
	"has been disabled or discontinued", "account that you tried to "
	"reach is disabled", "account is inactive", "inactive account",
	"mailbox is inactive", "inactive mailbox", "account inactive",
	"mailbox inactive", "not an active", "is not active",
	"account has been suspended", "account suspended",
	"account is suspended", "mailbox suspended", "suspended account",
	"user suspended", "temporarily disabled", "deactivated",
	"account is locked", "account has been locked", "account locked",
	"temporarily locked", "temporary locked", "disabled recipient",
	"mailbox is frozen", "account is frozen", "blocked due to inactivity",
	"due to inactivity", "account has expired", "account expired",
	"mailbox unavailable: disabled", "user account disabled", "on hold",
	NULL
};
static const char *const ph_moved[] = {
	"user not local; please try", "has moved", "address has changed",
	"no longer at this address", "mailbox has moved",
	NULL
};
static const char *const ph_sender[] = {
	"sender address rejected", "sender rejected", "sender denied",
	"sender verify failed", "sender verification failed",
	"could not verify sender", "sender domain", "domain of sender",
	"sender address domain", "bad sender", "invalid sender",
	"sender is not allowed", "sender not allowed", "sender unknown",
	"unknown sender", "mail from address", "from address is invalid",
	"envelope sender", "return path", "return-path", "reverse-path",
	"sender address does not exist", "unverified sender",
	"you are not a member", "not a member of this",
	"null sender", "sender has no mx", "sender address has null mx",
	NULL
};
static const char *const ph_no_mail[] = {
	"does not accept mail", "doesn't accept mail", "accepts no mail",
	"indicated no smtp service", "null mx", "not accepting mail",
	"domain does not receive", "does not receive email",
	NULL
};
static const char *const ph_auth[] = {
	"spf", "dkim", "dmarc", "sender policy framework",
	"unauthenticated", "not authenticated", "authentication check",
	"sender authentication", "domainkeys", "failed authentication",
	"authentication failed", "authentication requirements",
	"arc validation",
	NULL
};
static const char *const ph_virus[] = {
	"virus", "malware", "infected", "malicious", "trojan",
	NULL
};
static const char *const ph_spam[] = {
	"spam", "junk mail", "unsolicited", "bulk mail", "bulk e-mail",
	"bulk email", "mass mail", "spamassassin", "suspicious content",
	"phishing", "scam", "ofr_506", "ofr_999",
	NULL
};
static const char *const ph_blocked[] = {
	"blocked", "blacklist", "black list", "blocklist", "block list",
	"denylist", "rbl", "dnsbl", "spamhaus", "spamcop", "barracuda",
	"sorbs", "banned", "access denied",
	"client host rejected", "host rejected", "reverse dns",
	"reverse lookup", "ptr record", "no ptr", "rdns", "reverse-dns",
	"dns ptr", "cannot find your hostname", "cannot resolve your",
	"hostname lookup", "your ip", "sending ip", "sender ip",
	"ip reputation", "reputation", "dynamic ip", "dynamic address",
	"dial-up", "dialup", "residential",
	"please use the smtp server of your isp", "use your isp",
	"use your provider", "smtp server of your", "not allowed to send",
	"connection refused by", "refused to talk",
	"your access to this mail system", "not accepting connections",
	"service unavailable; client", "intrusion", "client ip",
	NULL
};
static const char *const ph_rate[] = {
	"too many connections", "too many concurrent", "too many sessions",
	"too many messages", "too many emails", "too many mails",
	"too many recipients", "rate limit", "rate-limit", "ratelimit",
	"rate limited", "sending rate", "exceeded the rate",
	"connection limit", "throttl", "too fast", "frequency limited",
	"receiving mail at a rate", "high volume", "too much mail",
	"limit exceeded", "exceeded the limit", "maximum number of",
	NULL
};
static const char *const ph_grey[] = {
	"greylist", "graylist", "grey list", "gray list", "grey-list",
	"gray-list", "greylisted", "postgrey", "not yet authorized to deliver",
	NULL
};
static const char *const ph_user_unknown[] = {
	"user unknown", "unknown user", "no such user", "no such mailbox",
	"no such recipient", "no such address", "no such account",
	"no such person", "no such local user", "unknown recipient",
	"recipient unknown", "recipient not found", "user not found",
	"mailbox not found", "mailbox unknown", "unknown mailbox",
	"unknown address", "address unknown", "addressee unknown",
	"unknown local part", "unknown local user", "unknown or illegal alias",
	"invalid recipient", "invalid mailbox", "invalid user",
	"invalid e-mail address", "invalid email address",
	"not a valid mailbox", "is not a valid user", "not a valid recipient",
	"no mailbox here", "no mailbox by that name",
	"mailbox does not exist", "mailbox doesn't exist",
	"user does not exist", "user doesn't exist", "user doesnt exist",
	"account does not exist", "account doesn't exist",
	"address does not exist", "address doesn't exist",
	"recipient does not exist", "recipient doesn't exist",
	"tried to reach does not exist", "does not exist here",
	"doesn't have a", "does not have a", "not listed in domino directory",
	"not listed in public name", "not listed in the directory",
	"recipient name is not recognized", "recipient not recognized",
	"not a known user", "is not a known", "unknown in local recipient",
	"unknown in virtual", "unknown in relay recipient",
	"recipnotfound", "recipient address rejected: undeliverable",
	"undeliverable address", "unrecognized recipient",
	"bad destination mailbox", "user invalid",
	"not our customer", "no longer in use",
	"account has been deleted", "mailbox has been removed",
	"address not found", "no valid recipients",
	"invalid final delivery userid", "utilisateur inconnu",
	"destinataire inconnu", "unbekannt", "nicht vorhanden",
	"not recognized as a valid", "recipient address invalid",
	"the recipient was not found", "bad address syntax",
	"address syntax", "does not exist in", "wasn't found at",
	"address couldn't be found", "address could not be found",
	"address you entered couldn't be found",
	NULL
};
static const char *const ph_host_unknown[] = {
	"host unknown", "unknown host", "host not found", "domain not found",
	"domain name not found", "no such domain", "domain does not exist",
	"domain doesn't exist", "unrouteable address", "unroutable address",
	"unrouteable mail domain",
	"couldn't find any host", "could not find any host",
	"no mx record", "no mx or a record", "mx lookup failed",
	"no mx found",
	"unknown domain", "domain unknown", "invalid domain",
	"domain is not found", "no route to domain",
	"host or domain name not found", "bad destination system",
	"nxdomain", "domain name not exist", "domain not exist",
	"non-existent domain", "nonexistent domain",
	NULL
};
static const char *const ph_policy[] = {
	"relay access denied", "relaying denied", "relay denied",
	"relay not permitted", "relaying not permitted", "not permitted to relay",
	"unable to relay", "we do not relay", "not allowed to relay",
	"relay not allowed", "allowed rcpthosts", "relaying",
	"tls required", "starttls", "must use tls", "encryption required",
	"rfc 5322", "rfc5322", "rfc 2822", "rfc2822", "rfc 822", "rfc822 ",
	"rfc 5321", "rfc5321", "not compliant", "non-compliant",
	"noncompliant", "bare lf", "header syntax", "malformed",
	"missing header", "duplicate header", "multiple from",
	"administrative prohibition", "policy violation", "security policy",
	"violates", "violation",
	NULL
};
static const char *const ph_filtered[] = {
	"content filter", "content rejected", "message content",
	"rejected by filter", "content policy", "blocked content",
	"content denied", "mail content", "banned file", "media error",
	NULL
};
static const char *const ph_expired[] = {
	"retry timeout exceeded", "retry time not reached",
	"delivery time expired", "envelope expired", "message expired",
	"in the queue too long", "queue too long", "has expired",
	"was not delivered within", "delivery expired", "giving up on",
	"could not be delivered within", "not delivered for",
	"message timed out", "expired after", "too long in queue",
	"time limit exceeded", "maximum time", "gave up after",
	"delivery period expired", "unable to deliver in",
	"was undeliverable for", "could not deliver for the last",
	"been failing for a long time",
	NULL
};
static const char *const ph_network[] = {
	"connection refused", "connection timed out", "timed out",
	"timeout", "no route to host", "network is unreachable",
	"host unreachable", "connection reset", "lost connection",
	"connection closed", "connection dropped", "unable to connect",
	"could not connect", "couldn't connect", "can't connect",
	"cannot connect", "failed to connect", "network error",
	"too many hops", "hop count", "mail loop", "loops back to myself",
	"routing loop", "loop detected", "looping", "no smtp connection",
	"establish an smtp connection", "connect to remote server",
	"unable to route",
	NULL
};
static const char *const ph_system[] = {
	"system error", "internal error", "server error", "local error",
	"temporary local problem", "local configuration error",
	"configuration error", "insufficient system storage",
	"system storage", "mailer error", "mail system error",
	"system failure", "i/o error", "resources temporarily unavailable",
	"procmail", "couldn't create", "exit code", "command died",
	"child status", "cannot open", "unable to open", "database",
	"duplicated message-id", "no such file or directory",
	NULL
};
static const char *const ph_protocol[] = {
	"syntax error", "command not recognized", "unrecognized command",
	"command unrecognized", "bad sequence", "line too long",
	"protocol error", "invalid command", "pipelining",
	NULL
};

/* Phrases read before all others: they hold another category's words. */
static const struct {
	const char *phrase;
	enum dsn_reason reason;
} ph_first[] = {
	/* Exchange Online directory-based edge blocking */
	{ "recipient address rejected: access denied", DSN_R_USER_UNKNOWN },
	/* cPanel's Exim for a domain it cannot route */
	{ "the account or domain may not exist", DSN_R_HOST_UNKNOWN },
	/* Postfix: a DNS lookup failed for now */
	{ "host not found, try again", DSN_R_NETWORK },
	{ "malformed or unexpected name server reply", DSN_R_NETWORK },
	/* qmail: no MX and no A record */
	{ "find a mail exchanger", DSN_R_HOST_UNKNOWN },
	{ "no such file or directory", DSN_R_SYSTEM },
	{ "no valid recipients for this mm", DSN_R_USER_UNKNOWN },
	{ "relay access denied", DSN_R_POLICY },
	/* DNS block lists (whose names hold "spam") */
	{ "blocked using", DSN_R_BLOCKED }, { "spamhaus", DSN_R_BLOCKED },
	{ "spamcop", DSN_R_BLOCKED }, { "dnsbl", DSN_R_BLOCKED },
	{ "blacklist", DSN_R_BLOCKED }, { "blocklist", DSN_R_BLOCKED },
	{ "client host blocked", DSN_R_BLOCKED },
	{ "client host rejected", DSN_R_BLOCKED },
	{ "not rfc 5322 compliant", DSN_R_POLICY },
	{ "account is blocked", DSN_R_DISABLED },
	{ "account has been blocked", DSN_R_DISABLED },
	/* Exchange Online: the domain does not resolve */
	{ "the domain is not reachable", DSN_R_HOST_UNKNOWN },
};

/* Weak phrases: read after the status code, when it says nothing
 * specific. */
static const char *const pw_user_unknown[] = {
	"recipient address rejected", "mailbox unavailable",
	"mailbox is unavailable", "mailbox not available", "invalid address",
	"no longer valid", "address rejected", "recipient rejected",
	NULL
};
static const char *const pw_blocked[] = {
	"listed in", "listed at", "rejected due to", "has been rejected",
	"your host", "you are not allowed", "mail rejected", "mail rejete",
	"rejected by",
	NULL
};
static const char *const pw_filtered[] = {
	"filtered", "attachment", "forbidden", "url in", "link in",
	NULL
};
static const char *const pw_policy[] = {
	"prohibited", "not permitted", "policy", "security", "not authorized",
	"unauthorized", "permission denied", "refused", "denied",
	"restricted", "message rejected", "rejected", "not allowed",
	NULL
};
static const char *const pw_system[] = {
	"service unavailable", "service not available",
	"currently unavailable",
	"temporarily unavailable", "try again", "temporary failure",
	"temporarily deferred",
	NULL
};

static const struct {
	enum dsn_reason reason;
	const char *const *phrases;
} weak_phrases[] = {
	{ DSN_R_USER_UNKNOWN, pw_user_unknown },
	{ DSN_R_BLOCKED, pw_blocked },
	{ DSN_R_FILTERED, pw_filtered },
	{ DSN_R_POLICY, pw_policy },
	{ DSN_R_SYSTEM, pw_system },
};

static const struct {
	enum dsn_reason reason;
	const char *const *phrases;
} reason_phrases[] = {
	{ DSN_R_MAILBOX_FULL, ph_mailbox_full },
	{ DSN_R_TOO_BIG, ph_too_big },
	{ DSN_R_DISABLED, ph_disabled },
	{ DSN_R_MOVED, ph_moved },
	{ DSN_R_NO_MAIL, ph_no_mail },
	{ DSN_R_SENDER_REJECTED, ph_sender },
	{ DSN_R_AUTH_FAILED, ph_auth },
	{ DSN_R_VIRUS, ph_virus },
	{ DSN_R_SPAM, ph_spam },
	{ DSN_R_GREYLISTED, ph_grey },
	{ DSN_R_RATE_LIMITED, ph_rate },
	{ DSN_R_BLOCKED, ph_blocked },
	{ DSN_R_USER_UNKNOWN, ph_user_unknown },
	{ DSN_R_HOST_UNKNOWN, ph_host_unknown },
	{ DSN_R_EXPIRED, ph_expired },
	{ DSN_R_FILTERED, ph_filtered },
	{ DSN_R_POLICY, ph_policy },
	{ DSN_R_NETWORK, ph_network },
	{ DSN_R_SYSTEM, ph_system },
	{ DSN_R_PROTOCOL, ph_protocol },
};

/* "NAME does not exist", "host NAME not found": NAME a host name, or an
 * address. */
static enum dsn_reason
exist_reason(const char *norm)
{
	const char *p = strstr(norm, " does not exist"), *w;
	int at = 0, dot = 0;

	if (!p)
		p = strstr(norm, " not found");
	if (!p)
		return DSN_R_NONE;
	for (w = p; w > norm && w[-1] != ' ' && w[-1] != '<' && w[-1] != '\''
	    && w[-1] != '"'; w--)
		;
	for (const char *q = w; q < p; q++) {
		if (*q == '@')
			at = 1;
		else if (*q == '.' && q + 1 < p && is_alnum((unsigned char)q[1]))
			dot = 1;
		else if (!is_domain_char((unsigned char)*q) &&
		    !is_local_char((unsigned char)*q) && *q != '>' && *q != '\''
		    && *q != '"')
			return DSN_R_NONE;
	}
	return at ? DSN_R_USER_UNKNOWN : dot ? DSN_R_HOST_UNKNOWN : DSN_R_NONE;
}

/* A recipient missing from the directory of the mail system that owns
 * it, in that system's own words: as sure as an X.1.1 status. */
static const char *const ph_directory[] = {
	"not listed in domino directory", "not listed in public name",
	"(000c05a6)",           /* Exchange 5.5/2000 IMS: unknown recipient */
	"resolver.adr.recipnotfound", "resolver.adr.recipientnotfound",
	NULL
};

static int
has_phrase(const char *norm, const char *const *list)
{
	for (; *list; list++)
		if (strstr(norm, *list))
			return 1;
	return 0;
}

/* The reason the strong phrases of norm (normalized text) point to. */
static enum dsn_reason
phrase_reason(const char *norm)
{
	enum dsn_reason r;

	for (size_t i = 0; i < sizeof(ph_first) / sizeof(ph_first[0]); i++)
		if (strstr(norm, ph_first[i].phrase))
			return ph_first[i].reason;
	if ((r = exist_reason(norm)) != DSN_R_NONE)
		return r;
	for (size_t i = 0; i < sizeof(reason_phrases) /
	    sizeof(reason_phrases[0]); i++)
		for (const char *const *p = reason_phrases[i].phrases; *p; p++)
			if (strstr(norm, *p))
				return reason_phrases[i].reason;
	return DSN_R_NONE;
}

static enum dsn_reason
weak_reason(const char *norm)
{
	for (size_t i = 0; i < sizeof(weak_phrases) /
	    sizeof(weak_phrases[0]); i++)
		for (const char *const *p = weak_phrases[i].phrases; *p; p++)
			if (strstr(norm, *p))
				return weak_phrases[i].reason;
	return DSN_R_NONE;
}

/* The reason an RFC 3463 status code names (class.subject.detail). */
static enum dsn_reason
status_reason(const char *status)
{
	int cls, sub, det;

	if (sscanf(status, "%d.%d.%d", &cls, &sub, &det) != 3)
		return DSN_R_NONE;
	switch (sub) {
	case 1:
		switch (det) {
		case 1: case 3:
			return DSN_R_USER_UNKNOWN;
		case 2:
			return DSN_R_HOST_UNKNOWN;
		case 6:
			return DSN_R_MOVED;
		case 7: case 8:
			return DSN_R_SENDER_REJECTED;
		case 10:
			return DSN_R_NO_MAIL;
		default:
			return DSN_R_OTHER;
		}
	case 2:
		switch (det) {
		case 1:
			return DSN_R_DISABLED;
		case 2:
			return DSN_R_MAILBOX_FULL;
		case 3:
			return DSN_R_TOO_BIG;
		case 4:
			return DSN_R_SYSTEM;
		default:
			return DSN_R_OTHER;
		}
	case 3:
		return det == 4 ? DSN_R_TOO_BIG : DSN_R_SYSTEM;
	case 4:
		if (det == 7)
			return DSN_R_EXPIRED;
		if (det == 4 && cls == 5)
			return DSN_R_HOST_UNKNOWN;
		return DSN_R_NETWORK;
	case 5:
		return DSN_R_PROTOCOL;
	case 6:
		return DSN_R_FILTERED;
	case 7:
		switch (det) {
		case 13:
			return DSN_R_DISABLED;
		case 23: case 24: case 26: case 29:
			return DSN_R_AUTH_FAILED;
		case 25:
			return DSN_R_BLOCKED;
		case 27:
			return DSN_R_SENDER_REJECTED;
		case 28:
			return DSN_R_RATE_LIMITED;
		default:
			return DSN_R_POLICY;
		}
	default:
		return DSN_R_OTHER;
	}
}

/* The command word at p (">>> WORD"): CONN, HELO, MAIL, RCPT, DATA. */
static const char *
command_word(const char *p)
{
	if (!strncmp(p, "rcpt", 4))
		return "RCPT";
	if (!strncmp(p, "mail", 4))
		return "MAIL";
	if (!strncmp(p, "data", 4) || !strncmp(p, "bdat", 4))
		return "DATA";
	if (!strncmp(p, "ehlo", 4) || !strncmp(p, "helo", 4) ||
	    !strncmp(p, "lhlo", 4))
		return "HELO";
	return "";
}

/*
 * The SMTP command that an error answered, as the text (normalized) says
 * it: in a session transcript (">>> RCPT TO:<a>" / "<<< 550 ..."), the
 * last command sent before the first error reply; else the first of the
 * phrases MTAs write ("in reply to RCPT TO command", "after end of data",
 * "does not like recipient", ...). "" if none.
 */
static const char *
text_command(const char *norm)
{
	static const struct {
		const char *phrase, *cmd;
	} t[] = {
		{ "end of data", "DATA" }, { "after data", "DATA" },
		{ "data command", "DATA" }, { "(data)", "DATA" },
		{ "text command", "DATA" }, { "after end of", "DATA" },
		{ "rcpt to", "RCPT" }, { "rcpt command", "RCPT" },
		{ "after rcpt", "RCPT" }, { "rcpt:", "RCPT" },
		{ "does not like recipient", "RCPT" },
		{ "recipient address rejected", "RCPT" },
		/* RFC 5321 4.2.3 and RFC 821 3.1: the replies to RCPT TO */
		{ "requested action not taken: mailbox unavailable", "RCPT" },
		{ "no such user here", "RCPT" },
		{ "mail from", "MAIL" }, { "mail command", "MAIL" },
		{ "sender was rejected", "MAIL" },
		{ "ehlo", "HELO" }, { "helo", "HELO" },
		{ "my name was rejected", "HELO" },
		{ "initial connection", "CONN" }, { "greeting", "CONN" },
	};
	const char *best = NULL, *cmd = "", *err = NULL, *p;

	if (strstr(norm, ">>> ")) {
		const char *e4 = strstr(norm, "<<< 4"), *e5 = strstr(norm, "<<< 5");

		err = !e4 ? e5 : !e5 ? e4 : e4 < e5 ? e4 : e5;
		for (p = norm; (p = strstr(p, ">>> ")) != NULL &&
		    (!err || p < err); p += 4)
			if (*command_word(p + 4))
				cmd = command_word(p + 4);
		if (*cmd)
			return cmd;
	}
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		const char *at = strstr(norm, t[i].phrase);

		if (at && (!best || at < best)) {
			best = at;
			cmd = t[i].cmd;
		}
	}
	return cmd;
}

static int
reason_is_hard(enum dsn_reason r)
{
	return r == DSN_R_USER_UNKNOWN || r == DSN_R_HOST_UNKNOWN ||
	    r == DSN_R_NO_MAIL || r == DSN_R_MOVED;
}

/* The status code to state when a report gave none. */
static void
infer_status(struct dsn_rcpt *r, int temp)
{
	static const struct {
		enum dsn_reason reason;
		const char *rest;
	} t[] = {
		{ DSN_R_USER_UNKNOWN, "1.1" }, { DSN_R_HOST_UNKNOWN, "1.2" },
		{ DSN_R_NO_MAIL, "1.10" }, { DSN_R_MOVED, "1.6" },
		{ DSN_R_MAILBOX_FULL, "2.2" }, { DSN_R_DISABLED, "2.1" },
		{ DSN_R_TOO_BIG, "3.4" }, { DSN_R_EXPIRED, "4.7" },
		{ DSN_R_GREYLISTED, "7.1" }, { DSN_R_BLOCKED, "7.1" },
		{ DSN_R_RATE_LIMITED, "7.1" }, { DSN_R_AUTH_FAILED, "7.26" },
		{ DSN_R_POLICY, "7.1" }, { DSN_R_SPAM, "7.1" },
		{ DSN_R_VIRUS, "7.1" }, { DSN_R_FILTERED, "7.1" },
		{ DSN_R_SENDER_REJECTED, "1.8" }, { DSN_R_NETWORK, "4.0" },
		{ DSN_R_SYSTEM, "3.0" }, { DSN_R_PROTOCOL, "5.0" },
		{ DSN_R_DELAYED, "0.0" }, { DSN_R_TEMPORARY, "0.0" },
		{ DSN_R_OTHER, "0.0" },
	};
	char cls = temp ? '4' : '5';

	if (r->reason == DSN_R_EXPIRED || r->reason == DSN_R_GREYLISTED ||
	    r->reason == DSN_R_DELAYED || r->reason == DSN_R_TEMPORARY)
		cls = '4';
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (t[i].reason == r->reason) {
			snprintf(r->status, sizeof(r->status), "%c.%s", cls,
			    t[i].rest);
			r->status_src = DSN_STATUS_INFERRED;
			return;
		}
}

/* 1 if the status names a bad recipient address or domain (X.1.1,
 * X.1.2, X.1.3, X.1.6, X.1.10). */
static int
status_is_address(const char *status)
{
	int cls, sub, det;

	return sscanf(status, "%d.%d.%d", &cls, &sub, &det) == 3 && sub == 1 &&
	    (det == 1 || det == 2 || det == 3 || det == 6 || det == 10);
}

/* 1 if an enhanced status code says nothing specific (X.0.0, X.5.x). */
static int
status_is_generic(const char *status)
{
	int cls, sub, det;

	return sscanf(status, "%d.%d.%d", &cls, &sub, &det) != 3 ||
	    (sub == 0 && det == 0) || sub == 5;
}

void
dsn_classify(struct dsn_rcpt *r)
{
	struct buf norm;
	char tstatus[16] = "";
	long at;
	int temp, failed, sure;
	enum dsn_reason reason, weak;
	const char *n;
	size_t dlen = strlen(r->diagnostic);

	for (char *p = r->action; *p; p++)
		*p = (char)lc((unsigned char)*p);
	if (r->status_src == DSN_STATUS_INFERRED) {   /* classified before */
		r->status[0] = '\0';
		r->status_src = DSN_STATUS_NONE;
	}
	if (r->status[0] && r->status_src == DSN_STATUS_NONE)
		r->status_src = DSN_STATUS_REPORT;
	at = find_status(r->diagnostic, dlen, tstatus);
	if (!r->smtp_code)
		r->smtp_code = find_code(r->diagnostic, dlen, at);
	if (at >= 0 && (!r->status[0] || (!strcmp(r->status + 1, ".0.0") &&
	    tstatus[0] == r->status[0]))) {
		snprintf(r->status, sizeof(r->status), "%s", tstatus);
		r->status_src = DSN_STATUS_TEXT;
	}
	buf_init(&norm, 0);
	norm_text(r->diagnostic, dlen, &norm);
	n = buf_str(&norm);
	if (!r->command[0])
		snprintf(r->command, sizeof(r->command), "%s", text_command(n));

	if (!strcmp(r->action, "delivered") || !strcmp(r->action, "relayed") ||
	    !strcmp(r->action, "expanded") || r->status[0] == '2' ||
	    (r->smtp_code >= 200 && r->smtp_code < 300)) {
		r->cls = DSN_DELIVERED;
		r->reason = DSN_R_DELIVERED;
		buf_free(&norm);
		return;
	}
	failed = !strcmp(r->action, "failed");
	temp = !strcmp(r->action, "delayed") || (!failed &&
	    (r->status[0] == '4' || (!r->status[0] && r->smtp_code >= 400 &&
	    r->smtp_code < 500)));

	/* strong phrases, then a specific status, then weak phrases, then
	 * what is left of the status and the reply code */
	reason = phrase_reason(n);
	weak = weak_reason(n);
	if (reason == DSN_R_NONE && r->status[0] &&
	    !status_is_generic(r->status))
		reason = status_reason(r->status);
	if (reason == DSN_R_NONE || reason == DSN_R_OTHER)
		reason = weak != DSN_R_NONE ? weak : reason;
	if (reason == DSN_R_NONE && r->status[0])
		reason = status_reason(r->status);
	/* RFC 7504: the host or domain does not accept mail */
	if ((r->smtp_code == 521 || r->smtp_code == 556) &&
	    phrase_reason(n) == DSN_R_NONE)
		reason = DSN_R_NO_MAIL;
	if (reason == DSN_R_NONE || reason == DSN_R_OTHER) {
		switch (r->smtp_code) {
		case 552:
			reason = DSN_R_MAILBOX_FULL;
			break;
		case 551:
			reason = DSN_R_MOVED;
			break;
		}
	}

	/* what the refusal answered: an address is only bad if it was
	 * refused as a recipient */
	if (!strcmp(r->command, "MAIL") && reason_is_hard(reason))
		reason = DSN_R_SENDER_REJECTED;
	else if ((!strcmp(r->command, "HELO") || !strcmp(r->command, "CONN"))
	    && reason_is_hard(reason))
		reason = DSN_R_BLOCKED;
	/* a local delivery program failed (RFC 3464 type X-Unix) */
	if (!strcasecmp(r->diagnostic_type, "x-unix") && reason_is_hard(reason))
		reason = DSN_R_SYSTEM;
	/* "no such user" after DATA, or with no address named ("550 :
	 * User unknown"): a filter of a recipient accepted at RCPT TO */
	if (reason == DSN_R_USER_UNKNOWN && (!strcmp(r->command, "DATA") ||
	    strstr(n, " : user unknown")))
		reason = DSN_R_FILTERED;
	/* "no such user" is only sure with an address status code, as the
	 * answer to RCPT TO, or in a directory's own words; else it may be
	 * a filter's: soft */
	sure = reason != DSN_R_USER_UNKNOWN || status_is_address(r->status) ||
	    !strcmp(r->command, "RCPT") || has_phrase(n, ph_directory);

	if (temp) {
		r->cls = DSN_SOFT;
		if (reason == DSN_R_NONE || reason == DSN_R_OTHER)
			reason = !strcmp(r->action, "delayed") ? DSN_R_DELAYED :
			    DSN_R_TEMPORARY;
	} else if (reason_is_hard(reason)) {
		r->cls = sure ? DSN_HARD : DSN_SOFT;
	} else if (reason == DSN_R_NONE || reason == DSN_R_OTHER) {
		if (r->status[0] == '4' || (!r->status[0] &&
		    r->smtp_code >= 400 && r->smtp_code < 500)) {
			r->cls = DSN_SOFT;
			reason = DSN_R_EXPIRED;
		} else {
			r->cls = DSN_UNKNOWN;
			reason = DSN_R_OTHER;
		}
	} else
		r->cls = DSN_SOFT;
	/* a temporary failure the MTA stopped retrying */
	if (failed && r->status[0] == '4' && (reason == DSN_R_NETWORK ||
	    reason == DSN_R_SYSTEM || reason == DSN_R_TEMPORARY))
		reason = DSN_R_EXPIRED;
	r->reason = reason;
	buf_free(&norm);
	if (!r->status[0]) {
		infer_status(r, temp);
		if (reason == DSN_R_USER_UNKNOWN && r->cls != DSN_HARD)
			r->status[2] = '0', r->status[4] = '0';   /* X.0.0 */
	}
	if (r->cls == DSN_UNKNOWN && r->status_src == DSN_STATUS_INFERRED &&
	    !r->smtp_code && !failed) {
		r->status[0] = '\0';
		r->status_src = DSN_STATUS_NONE;
	}
}

/* ---- the report being built --------------------------------------------- */

struct ctx {
	const struct dsn_limits *lim;
	struct dsn_report *r;
	size_t cap;             /* of r->rcpt */
	int nomem;
	size_t parts;
	const char *hdr;        /* the report's own header section */
	size_t hdr_len;
	struct buf notice;      /* the human-readable report */
	struct buf html;        /* text of text/html parts */
	struct buf status;      /* delivery-status bodies */
	struct buf feedback;    /* feedback-report body */
	char *orig;             /* the original's header section */
	size_t orig_len;
	char orig_sender[DSN_MAX_ADDR]; /* its Return-Path, else From */
	int have_status, have_feedback;
};

static struct dsn_rcpt *
add_rcpt(struct ctx *c)
{
	struct dsn_report *r = c->r;

	if (r->nrcpt >= c->lim->max_rcpts) {
		r->dropped_rcpts++;
		return NULL;
	}
	if (r->nrcpt == c->cap) {
		size_t n = c->cap ? c->cap * 2 : 4;
		struct dsn_rcpt *p;

		if (n > c->lim->max_rcpts)
			n = c->lim->max_rcpts;
		if (!(p = realloc(r->rcpt, n * sizeof(*p)))) {
			c->nomem = 1;
			return NULL;
		}
		r->rcpt = p;
		c->cap = n;
	}
	memset(&r->rcpt[r->nrcpt], 0, sizeof(r->rcpt[0]));
	return &r->rcpt[r->nrcpt++];
}

static struct dsn_rcpt *
find_rcpt(struct dsn_report *r, const char *addr)
{
	for (size_t i = 0; i < r->nrcpt; i++)
		if (strcasecmp(r->rcpt[i].address, addr) == 0)
			return &r->rcpt[i];
	return NULL;
}

/* ---- the MIME walk ------------------------------------------------------ */

static void
content_type(struct mailmime *m, const char **type, const char **sub)
{
	struct mailmime_content *ct = m->mm_content_type;

	*type = "text";
	*sub = "plain";
	if (!ct || !ct->ct_type)
		return;
	*sub = ct->ct_subtype ? ct->ct_subtype : "";
	if (ct->ct_type->tp_type == MAILMIME_TYPE_DISCRETE_TYPE) {
		struct mailmime_discrete_type *d =
		    ct->ct_type->tp_data.tp_discrete_type;

		switch (d ? d->dt_type : MAILMIME_DISCRETE_TYPE_ERROR) {
		case MAILMIME_DISCRETE_TYPE_TEXT: *type = "text"; break;
		case MAILMIME_DISCRETE_TYPE_IMAGE: *type = "image"; break;
		case MAILMIME_DISCRETE_TYPE_AUDIO: *type = "audio"; break;
		case MAILMIME_DISCRETE_TYPE_VIDEO: *type = "video"; break;
		case MAILMIME_DISCRETE_TYPE_APPLICATION:
			*type = "application";
			break;
		case MAILMIME_DISCRETE_TYPE_EXTENSION:
			*type = d->dt_extension ? d->dt_extension : "";
			break;
		default:
			*type = "";
		}
	} else {
		struct mailmime_composite_type *t =
		    ct->ct_type->tp_data.tp_composite_type;

		switch (t ? t->ct_type : MAILMIME_COMPOSITE_TYPE_ERROR) {
		case MAILMIME_COMPOSITE_TYPE_MESSAGE: *type = "message"; break;
		case MAILMIME_COMPOSITE_TYPE_MULTIPART:
			*type = "multipart";
			break;
		case MAILMIME_COMPOSITE_TYPE_EXTENSION:
			*type = t->ct_token ? t->ct_token : "";
			break;
		default:
			*type = "";
		}
	}
}

static int
part_encoding(struct mailmime *m)
{
	clistiter *it;

	if (!m->mm_mime_fields || !m->mm_mime_fields->fld_list)
		return MAILMIME_MECHANISM_8BIT;
	for (it = clist_begin(m->mm_mime_fields->fld_list); it;
	    it = clist_next(it)) {
		struct mailmime_field *f = clist_content(it);

		if (f->fld_type == MAILMIME_FIELD_TRANSFER_ENCODING &&
		    f->fld_data.fld_encoding)
			return f->fld_data.fld_encoding->enc_type;
	}
	return MAILMIME_MECHANISM_8BIT;
}

/* 1 if the part is an attachment with a file name (not report text). */
static int
is_attachment(struct mailmime *m)
{
	clistiter *it;

	if (!m->mm_mime_fields || !m->mm_mime_fields->fld_list)
		return 0;
	for (it = clist_begin(m->mm_mime_fields->fld_list); it;
	    it = clist_next(it)) {
		struct mailmime_field *f = clist_content(it);

		if (f->fld_type == MAILMIME_FIELD_DISPOSITION &&
		    f->fld_data.fld_disposition &&
		    f->fld_data.fld_disposition->dsp_type &&
		    f->fld_data.fld_disposition->dsp_type->dsp_type ==
		    MAILMIME_DISPOSITION_TYPE_ATTACHMENT)
			return 1;
	}
	return 0;
}

/* Append the decoded body of a single part to out (bounded by max). */
static void
append_decoded(struct ctx *c, struct mailmime *m, struct buf *out,
    size_t max)
{
	struct mailmime_data *d = m->mm_data.mm_single;
	size_t idx = 0, dlen = 0;
	char *dec = NULL;

	if (!d || d->dt_type != MAILMIME_DATA_TEXT || !d->dt_data.dt_text.dt_data)
		return;
	if (mailmime_part_parse(d->dt_data.dt_text.dt_data,
	    d->dt_data.dt_text.dt_length, &idx, part_encoding(m), &dec, &dlen)
	    != MAILIMF_NO_ERROR || !dec)
		return;
	if (out->len < max) {
		if (dlen > max - out->len)
			dlen = max - out->len;
		if (out->len)
			buf_putc(out, '\n');
		buf_append(out, dec, dlen);
		if (out->overflow)
			c->nomem = 1;
	}
	mmap_string_unref(dec);
}

/* 1 if text starts with header fields (a returned header section). */
static int
looks_like_header(const char *s, size_t n)
{
	const char *p = s, *end = s + (n > 4096 ? 4096 : n);
	struct field f;
	int fields = 0, k;

	while (p < end && is_blank(p, line_end(p, end)))
		p = next_line(p, end);
	while ((k = next_field(&p, end, &f)) == F_FIELD)
		if (fname(&f, "received") || fname(&f, "return-path") ||
		    fname(&f, "message-id") || fname(&f, "from") ||
		    fname(&f, "to") || fname(&f, "subject") ||
		    fname(&f, "date") || fname(&f, "mime-version") ||
		    fname(&f, "dkim-signature") || fname(&f, "content-type"))
			fields++;
	return fields >= 2;
}

static void
keep_orig(struct ctx *c, const char *s, size_t n)
{
	const char *p = s, *end = s + (n > HEADER_MAX ? HEADER_MAX : n);

	if (c->orig)
		return;
	while (p < end && is_blank(p, line_end(p, end)))
		p = next_line(p, end);
	/* the header section: up to the first blank line */
	for (const char *q = p; q < end; q = next_line(q, end))
		if (is_blank(q, line_end(q, end))) {
			end = q;
			break;
		}
	if (!(c->orig = malloc((size_t)(end - p) + 1))) {
		c->nomem = 1;
		return;
	}
	memcpy(c->orig, p, (size_t)(end - p));
	c->orig[end - p] = '\0';
	c->orig_len = (size_t)(end - p);
}

static void
walk(struct ctx *c, struct mailmime *m, int depth)
{
	const char *type, *sub;

	if (!m || c->nomem)
		return;
	if (depth > DEPTH_MAX || c->parts >= c->lim->max_parts) {
		c->r->dropped_parts++;
		return;
	}
	c->parts++;
	content_type(m, &type, &sub);
	switch (m->mm_type) {
	case MAILMIME_MULTIPLE: {
		clistiter *it;

		if (!m->mm_data.mm_multipart.mm_mp_list)
			return;
		for (it = clist_begin(m->mm_data.mm_multipart.mm_mp_list); it;
		    it = clist_next(it))
			walk(c, clist_content(it), depth + 1);
		return;
	}
	case MAILMIME_MESSAGE:
		if (depth == 0) {
			walk(c, m->mm_data.mm_message.mm_msg_mime, depth + 1);
			return;
		}
		if (m->mm_body && m->mm_body->dt_type == MAILMIME_DATA_TEXT &&
		    m->mm_body->dt_data.dt_text.dt_data)
			keep_orig(c, m->mm_body->dt_data.dt_text.dt_data,
			    m->mm_body->dt_data.dt_text.dt_length);
		return;
	case MAILMIME_SINGLE:
		break;
	default:
		return;
	}
	if (!strcasecmp(type, "message") && (!strcasecmp(sub,
	    "delivery-status") || !strcasecmp(sub, "global-delivery-status"))) {
		append_decoded(c, m, &c->status, REPORT_MAX);
		c->have_status = 1;
	} else if (!strcasecmp(type, "message") &&
	    !strcasecmp(sub, "feedback-report")) {
		append_decoded(c, m, &c->feedback, REPORT_MAX);
		c->have_feedback = 1;
	} else if ((!strcasecmp(type, "text") && !strcasecmp(sub,
	    "rfc822-headers")) || (!strcasecmp(type, "message") &&
	    (!strcasecmp(sub, "rfc822-headers") || !strcasecmp(sub,
	    "global-headers") || !strcasecmp(sub, "rfc822") ||
	    !strcasecmp(sub, "global")))) {
		struct buf b;

		buf_init(&b, 0);
		append_decoded(c, m, &b, HEADER_MAX);
		keep_orig(c, buf_str(&b), b.len);
		buf_free(&b);
	} else if (!strcasecmp(type, "text") && (!strcasecmp(sub, "plain") ||
	    !strcasecmp(sub, "html"))) {
		struct buf b;
		int html = !strcasecmp(sub, "html");

		buf_init(&b, 0);
		append_decoded(c, m, &b, NOTICE_MAX);
		if (looks_like_header(buf_str(&b), b.len) &&
		    (c->notice.len || is_attachment(m)))
			keep_orig(c, buf_str(&b), b.len);
		else if (html) {
			struct buf t;

			buf_init(&t, NOTICE_MAX);
			htmlrw_to_text(buf_str(&b), b.len, &t);
			if (c->html.len < NOTICE_MAX) {
				buf_putc(&c->html, '\n');
				buf_append(&c->html, buf_str(&t), t.len <
				    NOTICE_MAX - c->html.len ? t.len :
				    NOTICE_MAX - c->html.len);
			}
			buf_free(&t);
		} else if (!is_attachment(m) && c->notice.len < NOTICE_MAX) {
			buf_putc(&c->notice, '\n');
			buf_append(&c->notice, buf_str(&b), b.len <
			    NOTICE_MAX - c->notice.len ? b.len :
			    NOTICE_MAX - c->notice.len);
		}
		buf_free(&b);
	}
}

/* ---- the original message ----------------------------------------------- */

/* Lines after which MTAs return the original message (lowercase). */
static const char *const copy_markers[] = {
	"this is a copy of the message", "copy of the message",
	"below this line is a copy", "original message follows",
	"header of the original message", "copy of the original message",
	"original message header", "headers of the original message",
	"original mail as follows", "unsent message below",
	"----- original message -----", "original message:",
	"message headers follow", "returned message follows",
	"original message ---",
	NULL
};

/* The first line of s (n bytes) that introduces the returned original,
 * or NULL. */
static const char *
find_copy_marker(const char *s, size_t n)
{
	const char *end = s + n;

	for (const char *p = s; p < end; p = next_line(p, end)) {
		const char *eol = line_end(p, end);

		if (eol - p > 120)
			continue;
		for (const char *const *m = copy_markers; *m; m++)
			if (ci_find(p, (size_t)(eol - p), *m))
				return p;
	}
	return NULL;
}

/* The token of a VERP address PREFIX+TOKEN@domain in s, into tok. */
static int
verp_token(const char *s, size_t n, char *tok)
{
	const char *p = ci_find(s, n, VERP_PREFIX), *end = s + n, *q;

	if (!p)
		return 0;
	p += strlen(VERP_PREFIX);
	for (q = p; q < end && (is_alnum((unsigned char)*q) || *q == '-' ||
	    *q == '_') && q - p < DSN_MAX_SHORT - 1; q++)
		;
	if (q == p || q >= end || *q != '@')
		return 0;
	memcpy(tok, p, (size_t)(q - p));
	tok[q - p] = '\0';
	return 1;
}

/* A message id: the first <...> of v, else v trimmed. */
static void
put_msgid(char *dst, size_t n, const char *v, size_t vlen)
{
	const char *lt = memchr(v, '<', vlen), *gt;

	if (lt && (gt = memchr(lt, '>', vlen - (size_t)(lt - v))) != NULL &&
	    gt > lt + 1)
		clean_copy(dst, n, lt + 1, (size_t)(gt - lt - 1));
	else
		clean_copy(dst, n, v, vlen);
}

/* Read what identifies the original from its header section. */
static void
read_orig(struct dsn_original *o, const char *h, size_t n)
{
	const char *p = h, *end = h + n;
	struct field f;
	int k;

	while ((k = next_field(&p, end, &f)) != F_END && k != F_BLANK) {
		if (k != F_FIELD)
			continue;
		if (fname(&f, "message-id") && !o->message_id[0])
			put_msgid(o->message_id, sizeof(o->message_id), f.val,
			    f.vlen);
		else if (fname(&f, "references") && !o->references[0])
			clean_copy(o->references, sizeof(o->references), f.val,
			    f.vlen);
		else if (fname(&f, "list-id") && !o->list_id[0])
			clean_copy(o->list_id, sizeof(o->list_id), f.val, f.vlen);
		else if (fname(&f, "feedback-id") && !o->feedback_id[0])
			clean_copy(o->feedback_id, sizeof(o->feedback_id), f.val,
			    f.vlen);
		else if (fname(&f, "list-unsubscribe") &&
		    !o->unsubscribe_token[0]) {
			const char *u = ci_find(f.val, f.vlen, "/u/"), *q;

			if (u) {
				u += 3;
				for (q = u; q < f.val + f.vlen &&
				    (is_alnum((unsigned char)*q) || *q == '-' ||
				    *q == '_') && q - u < DSN_MAX_SHORT - 1; q++)
					;
				memcpy(o->unsubscribe_token, u, (size_t)(q - u));
				o->unsubscribe_token[q - u] = '\0';
			}
		} else if (fname(&f, "to") && !o->to[0])
			addr_from_value(o->to, f.val, f.vlen);
		else if (fname(&f, "from") && !o->from[0])
			addr_from_value(o->from, f.val, f.vlen);
		else if (fname(&f, "subject") && !o->subject[0])
			clean_copy(o->subject, sizeof(o->subject), f.val, f.vlen);
		else if ((fname(&f, "return-path") || fname(&f, "sender")) &&
		    !o->verp_token[0])
			verp_token(f.val, f.vlen, o->verp_token);
		else if (f.nlen > 11 && !strncasecmp(f.name, "x-leadcast-", 11) &&
		    !o->x_leadcast[0]) {
			char v[DSN_MAX_ID], nv[DSN_MAX_ID + 80];

			clean_copy(v, sizeof(v), f.val, f.vlen);
			snprintf(nv, sizeof(nv), "%.*s: %s",
			    (int)(f.nlen > 64 ? 64 : f.nlen), f.name, v);
			clean_copy(o->x_leadcast, sizeof(o->x_leadcast), nv,
			    strlen(nv));
		}
	}
}

/* ---- RFC 3464 delivery status ------------------------------------------- */

static int
is_rcpt_field(const struct field *f)
{
	static const char *const names[] = { "final-recipient",
		"original-recipient", "x-actual-recipient", "action", "status",
		"remote-mta", "diagnostic-code", "last-attempt-date",
		"will-retry-until", "final-log-id", NULL };

	for (const char *const *n = names; *n; n++)
		if (fname(f, *n))
			return 1;
	return 0;
}

/*
 * The fields of the delivery-status parts: per-message fields wherever
 * they are; a recipient per block (fields between blank lines) with any
 * per-recipient field, in any order, and a new one where a block repeats
 * Final-Recipient or Original-Recipient (reports that leave out the blank
 * line). Recipients with no address are dropped when others have one.
 */
static void
parse_status(struct ctx *c)
{
	struct dsn_report *r = c->r;
	const char *p = buf_str(&c->status), *end = p + c->status.len;
	struct dsn_rcpt *cur = NULL, sink;
	struct field f;
	int k, seen_final = 0, seen_orig = 0, any = 0;
	size_t first = r->nrcpt, kept = first;

	if (!p)
		return;
	while ((k = next_field(&p, end, &f)) != F_END && !c->nomem) {
		if (k == F_BLANK) {
			cur = NULL;
			continue;
		}
		if (k != F_FIELD)
			continue;
		if (fname(&f, "reporting-mta"))
			put_typed(r->reporting_mta, sizeof(r->reporting_mta),
			    f.val, f.vlen);
		else if (fname(&f, "arrival-date"))
			clean_copy(r->arrival_date, sizeof(r->arrival_date),
			    f.val, f.vlen);
		else if (fname(&f, "x-postfix-sender") ||
		    fname(&f, "x-original-sender"))
			addr_from_value(r->envelope_sender, f.val, f.vlen);
		else if (fname(&f, "original-envelope-id"))
			clean_copy(r->envelope_id, sizeof(r->envelope_id), f.val,
			    f.vlen);
		if (!is_rcpt_field(&f))
			continue;
		if (cur && ((fname(&f, "final-recipient") && seen_final) ||
		    (fname(&f, "original-recipient") && seen_orig)))
			cur = NULL;
		if (!cur) {
			/* over max_rcpts (counted), its fields go nowhere */
			if (!(cur = add_rcpt(c))) {
				if (c->nomem)
					break;
				memset(&sink, 0, sizeof(sink));
				cur = &sink;
			}
			seen_final = seen_orig = 0;
		}
		if (fname(&f, "final-recipient")) {
			char a[DSN_MAX_ADDR];

			seen_final = 1;
			if (addr_from_value(a, f.val, f.vlen))
				snprintf(cur->address, sizeof(cur->address), "%s", a);
		} else if (fname(&f, "original-recipient")) {
			seen_orig = 1;
			addr_from_value(cur->original, f.val, f.vlen);
		} else if (fname(&f, "x-actual-recipient")) {
			if (!cur->address[0])
				addr_from_value(cur->address, f.val, f.vlen);
		} else if (fname(&f, "action"))
			clean_copy(cur->action, sizeof(cur->action), f.val, f.vlen);
		else if (fname(&f, "status")) {
			char st[16];

			if (find_status(f.val, f.vlen, st) >= 0) {
				snprintf(cur->status, sizeof(cur->status), "%s", st);
				cur->status_src = DSN_STATUS_REPORT;
			}
		} else if (fname(&f, "remote-mta"))
			put_typed(cur->remote_mta, sizeof(cur->remote_mta), f.val,
			    f.vlen);
		else if (fname(&f, "diagnostic-code")) {
			const char *semi = memchr(f.val, ';', f.vlen);

			put_typed(cur->diagnostic, sizeof(cur->diagnostic), f.val,
			    f.vlen);
			if (semi)
				clean_copy(cur->diagnostic_type,
				    sizeof(cur->diagnostic_type), f.val,
				    (size_t)(semi - f.val));
		} else if (fname(&f, "last-attempt-date"))
			clean_copy(cur->last_attempt, sizeof(cur->last_attempt),
			    f.val, f.vlen);
	}
	for (size_t i = first; i < r->nrcpt; i++) {
		struct dsn_rcpt *x = &r->rcpt[i];

		/* an action word may carry comments: "failed (bad address)" */
		x->action[strcspn(x->action, " (;")] = '\0';
		if (!x->address[0] && x->original[0])
			snprintf(x->address, sizeof(x->address), "%s", x->original);
	}
	for (size_t i = first; i < r->nrcpt; i++)
		any |= r->rcpt[i].address[0] != '\0';
	for (size_t i = first; i < r->nrcpt; i++)
		if (r->rcpt[i].address[0] || !any)
			r->rcpt[kept++] = r->rcpt[i];
	r->nrcpt = kept;
}

/* ---- RFC 5965 feedback reports ------------------------------------------ */

static void
parse_feedback(struct ctx *c)
{
	struct dsn_report *r = c->r;
	const char *p = buf_str(&c->feedback), *end = p + c->feedback.len;
	struct field f;
	int k;

	r->kind = DSN_KIND_ARF;
	r->format = "arf";
	while (p && (k = next_field(&p, end, &f)) != F_END && !c->nomem) {
		if (k != F_FIELD)
			continue;
		if (fname(&f, "feedback-type")) {
			clean_copy(r->feedback_type, sizeof(r->feedback_type),
			    f.val, f.vlen);
			for (char *q = r->feedback_type; *q; q++)
				*q = (char)lc((unsigned char)*q);
		} else if (fname(&f, "original-mail-from")) {
			addr_from_value(r->envelope_sender, f.val, f.vlen);
			verp_token(f.val, f.vlen, r->orig.verp_token);
		} else if (fname(&f, "original-rcpt-to") ||
		    fname(&f, "removal-recipient")) {
			char a[DSN_MAX_ADDR];
			struct dsn_rcpt *x;

			if (addr_from_value(a, f.val, f.vlen) &&
			    !find_rcpt(r, a) && (x = add_rcpt(c)) != NULL)
				snprintf(x->address, sizeof(x->address), "%s", a);
		} else if (fname(&f, "arrival-date") ||
		    fname(&f, "received-date"))
			clean_copy(r->arrival_date, sizeof(r->arrival_date),
			    f.val, f.vlen);
		else if (fname(&f, "reporting-mta"))
			put_typed(r->reporting_mta, sizeof(r->reporting_mta),
			    f.val, f.vlen);
		else if (fname(&f, "source-ip"))
			clean_copy(r->source_ip, sizeof(r->source_ip), f.val,
			    f.vlen);
	}
	if (!r->feedback_type[0])
		snprintf(r->feedback_type, sizeof(r->feedback_type), "abuse");
	if (r->nrcpt == 0 && !c->nomem) {
		struct dsn_rcpt *x = add_rcpt(c);

		if (x)
			snprintf(x->address, sizeof(x->address), "%s",
			    r->orig.to);
	}
	for (size_t i = 0; i < r->nrcpt; i++) {
		struct dsn_rcpt *x = &r->rcpt[i];

		/* RFC 6591 authentication failure reports and "not-spam"
		 * are not complaints of the recipient */
		if (!strcmp(r->feedback_type, "auth-failure") ||
		    !strcmp(r->feedback_type, "not-spam")) {
			x->cls = DSN_UNKNOWN;
			x->reason = DSN_R_OTHER;
		} else {
			x->cls = DSN_COMPLAINT;
			x->reason = DSN_R_COMPLAINT;
		}
		snprintf(x->diagnostic, sizeof(x->diagnostic), "feedback-type: "
		    "%s", r->feedback_type);
	}
}

/* ---- Amazon SES notifications ------------------------------------------- */

static const char *
jstr(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "";
}

static void
ses_headers(struct dsn_report *r, json_t *mail)
{
	json_t *hs = json_object_get(mail, "headers"), *h;
	json_t *common = json_object_get(mail, "commonHeaders");
	struct buf b;
	size_t i;

	buf_init(&b, HEADER_MAX);
	json_array_foreach(hs, i, h) {
		const char *n = jstr(h, "name"), *v = jstr(h, "value");

		if (*n && strlen(n) < 80)
			buf_printf(&b, "%s: %s\n", n, v);
	}
	if (b.len)
		read_orig(&r->orig, buf_str(&b), b.len);
	buf_free(&b);
	if (!r->orig.message_id[0] && *jstr(common, "messageId"))
		put_msgid(r->orig.message_id, sizeof(r->orig.message_id),
		    jstr(common, "messageId"), strlen(jstr(common, "messageId")));
	if (!r->orig.subject[0])
		clean_copy(r->orig.subject, sizeof(r->orig.subject),
		    jstr(common, "subject"), strlen(jstr(common, "subject")));
	if (!r->orig.to[0]) {
		const char *to = json_string_value(json_array_get(
		    json_object_get(common, "to"), 0));

		if (to)
			addr_from_value(r->orig.to, to, strlen(to));
	}
	if (*jstr(mail, "source")) {
		addr_from_value(r->envelope_sender, jstr(mail, "source"),
		    strlen(jstr(mail, "source")));
		if (!r->orig.verp_token[0])
			verp_token(jstr(mail, "source"),
			    strlen(jstr(mail, "source")), r->orig.verp_token);
	}
}

/* An SES event (or an SNS envelope of one) in the notice: 1 if read. */
static int
parse_ses(struct ctx *c)
{
	struct dsn_report *r = c->r;
	const char *s = buf_str(&c->notice), *end = s + c->notice.len;
	json_t *root, *ev, *inner = NULL, *list, *x;
	const char *type;
	json_error_t err;
	size_t i;

	if (!s)
		return 0;
	while (s < end && is_space((unsigned char)*s))
		s++;
	if (s >= end || *s != '{' || (!ci_find(s, (size_t)(end - s),
	    "notificationtype") && !ci_find(s, (size_t)(end - s), "eventtype")))
		return 0;
	if (!(root = json_loadb(s, (size_t)(end - s), JSON_DISABLE_EOF_CHECK,
	    &err))) {
		/* long lines folded on the way: "\n " (RFC 5322) or
		 * "!\n " (sendmail's line length limit) */
		struct buf u;

		buf_init(&u, 0);
		for (const char *q = s; q < end; q++) {
			const char *nl = q;

			if (*nl == '!')
				nl++;
			if (nl < end && *nl == '\r')
				nl++;
			if (nl < end && *nl == '\n' && nl + 1 < end &&
			    (nl[1] == ' ' || nl[1] == '\t')) {
				q = nl + 1;
				continue;
			}
			buf_putc(&u, *q);
		}
		root = u.overflow ? NULL : json_loadb(buf_str(&u), u.len,
		    JSON_DISABLE_EOF_CHECK, &err);
		buf_free(&u);
		if (!root)
			return 0;
	}
	ev = root;
	if (json_is_string(json_object_get(root, "Message"))) {
		const char *m = json_string_value(json_object_get(root,
		    "Message"));

		if ((inner = json_loads(m, 0, &err)) != NULL)
			ev = inner;
	}
	type = *jstr(ev, "notificationType") ? jstr(ev, "notificationType") :
	    jstr(ev, "eventType");
	if (strcmp(type, "Bounce") && strcmp(type, "Complaint") &&
	    strcmp(type, "Delivery")) {
		json_decref(inner);
		json_decref(root);
		return 0;
	}
	r->kind = DSN_KIND_SES;
	r->format = "ses";
	ses_headers(r, json_object_get(ev, "mail"));
	if (!strcmp(type, "Bounce")) {
		json_t *b = json_object_get(ev, "bounce");
		const char *bt = jstr(b, "bounceType"), *bst =
		    jstr(b, "bounceSubType");

		put_typed(r->reporting_mta, sizeof(r->reporting_mta),
		    jstr(b, "reportingMTA"), strlen(jstr(b, "reportingMTA")));
		list = json_object_get(b, "bouncedRecipients");
		json_array_foreach(list, i, x) {
			struct dsn_rcpt *t = add_rcpt(c);
			const char *d = jstr(x, "diagnosticCode");

			if (!t)
				break;
			addr_from_value(t->address, jstr(x, "emailAddress"),
			    strlen(jstr(x, "emailAddress")));
			clean_copy(t->action, sizeof(t->action), jstr(x, "action"),
			    strlen(jstr(x, "action")));
			if (find_status(jstr(x, "status"), strlen(jstr(x,
			    "status")), t->status) >= 0)
				t->status_src = DSN_STATUS_REPORT;
			put_typed(t->diagnostic, sizeof(t->diagnostic), d,
			    strlen(d));
			if (!t->action[0])
				snprintf(t->action, sizeof(t->action), "%s",
				    !strcmp(bt, "Transient") ? "delayed" : "failed");
			dsn_classify(t);
			/* the bounce type and subtype where the text said
			 * nothing more */
			if (t->reason == DSN_R_OTHER || t->reason == DSN_R_NONE) {
				if (!strcmp(bst, "NoEmail") ||
				    !strcmp(bst, "Suppressed") ||
				    !strcmp(bst, "OnAccountSuppressionList"))
					t->cls = DSN_HARD, t->reason =
					    DSN_R_USER_UNKNOWN;
				else if (!strcmp(bst, "MailboxFull"))
					t->cls = DSN_SOFT, t->reason =
					    DSN_R_MAILBOX_FULL;
				else if (!strcmp(bst, "MessageTooLarge"))
					t->cls = DSN_SOFT, t->reason = DSN_R_TOO_BIG;
				else if (!strcmp(bst, "ContentRejected") ||
				    !strcmp(bst, "AttachmentRejected"))
					t->cls = DSN_SOFT, t->reason =
					    DSN_R_FILTERED;
			}
		}
	} else if (!strcmp(type, "Complaint")) {
		json_t *cp = json_object_get(ev, "complaint");

		snprintf(r->feedback_type, sizeof(r->feedback_type), "%s",
		    *jstr(cp, "complaintFeedbackType") ?
		    jstr(cp, "complaintFeedbackType") : "abuse");
		list = json_object_get(cp, "complainedRecipients");
		json_array_foreach(list, i, x) {
			struct dsn_rcpt *t = add_rcpt(c);

			if (!t)
				break;
			addr_from_value(t->address, jstr(x, "emailAddress"),
			    strlen(jstr(x, "emailAddress")));
			t->cls = DSN_COMPLAINT;
			t->reason = DSN_R_COMPLAINT;
			snprintf(t->diagnostic, sizeof(t->diagnostic),
			    "feedback-type: %s", r->feedback_type);
		}
	} else {
		json_t *d = json_object_get(ev, "delivery");
		const char *resp = jstr(d, "smtpResponse");

		put_typed(r->reporting_mta, sizeof(r->reporting_mta),
		    jstr(d, "reportingMTA"), strlen(jstr(d, "reportingMTA")));
		list = json_object_get(d, "recipients");
		json_array_foreach(list, i, x) {
			struct dsn_rcpt *t = add_rcpt(c);
			const char *a = json_string_value(x);

			if (!t)
				break;
			if (a)
				addr_from_value(t->address, a, strlen(a));
			snprintf(t->action, sizeof(t->action), "delivered");
			clean_copy(t->diagnostic, sizeof(t->diagnostic), resp,
			    strlen(resp));
			dsn_classify(t);
		}
	}
	json_decref(inner);
	json_decref(root);
	return 1;
}

/* ---- plain-text bounces ------------------------------------------------- */

/* Labels that start a line naming a failed recipient, and phrases that
 * name one anywhere on their line (lowercase). */
static const char *const rcpt_labels[] = {
	"recipient address:", "rcpt to:", "final-recipient:",
	"original-recipient:", "failed recipient:", "recipient:",
	"failed address:", "x-failed-recipients:", "unknown user:",
	"invalid recipient:", "bad recipient:", "address:", "to:<",
	NULL
};
static const char *const rcpt_phrases[] = {
	"could not be delivered to:", "returned permanent errors:",
	"rejected recipient", "could not deliver to:",
	"the following address failed:", "delivering your mail to",
	"your message to", "wasn't delivered to", "was not delivered to ",
	"delivery to the following recipient failed:",
	"delivery to the following recipients failed:",
	NULL
};

/* If line (n bytes) names a failed recipient, its address and the offset
 * of what follows it ("rest"). */
static int
rcpt_on_line(const char *line, size_t n, const char **a, size_t *alen,
    size_t *rest)
{
	size_t i = 0, after;

	while (i < n && is_space((unsigned char)line[i]))
		i++;
	/* labelled */
	for (const char *const *l = rcpt_labels; *l; l++)
		if (ci_prefix(line + i, n - i, *l)) {
			size_t off = i + strlen(*l);

			if (find_addr(line + off, n - off, a, alen, &after) &&
			    *a - line - off < 4) {
				*rest = off + after;
				return 1;
			}
		}
	for (const char *const *l = rcpt_phrases; *l; l++) {
		const char *at = ci_find(line + i, n - i, *l);
		size_t off;

		if (!at)
			continue;
		off = (size_t)(at - line) + strlen(*l);
		if (find_addr(line + off, n - off, a, alen, &after)) {
			*rest = off + after;
			return 1;
		}
	}
	/* an address that starts the line: "addr", "<addr>:", ">>> addr",
	 * "addr on DATE", "addr... reason", "\"addr\":" */
	if (i + 3 < n && !strncmp(line + i, ">>>", 3))
		for (i += 3; i < n && line[i] == ' '; i++)
			;
	if (i < n && (line[i] == '<' || line[i] == '"' || line[i] == '\''))
		i++;
	if (!find_addr(line + i, n - i, a, alen, &after) || *a != line + i)
		return 0;
	*rest = i + after;
	return 1;
}

/* Columns of leading white space (a tab counts 8). */
static size_t
indent(const char *p, const char *eol)
{
	size_t k = 0;

	for (; p < eol && (*p == ' ' || *p == '\t'); p++)
		k += *p == '\t' ? 8 : 1;
	return k;
}

/* 1 if s holds an SMTP reply code or an enhanced status code. */
static int
has_code(const char *s, size_t n)
{
	char st[16];

	return find_status(s, n, st) >= 0 || find_code(s, n, -1);
}

static int
is_rcpt_line(const char *line, size_t n)
{
	const char *a;
	size_t alen, rest;

	return rcpt_on_line(line, n, &a, &alen, &rest);
}

/* 1 if s (n bytes) says why: a classifying phrase, or an enhanced status
 * code other than X.0.0; with any, also an SMTP reply code. */
static int
informative(const char *s, size_t n, int any, struct buf *tmp)
{
	char st[16];

	if (find_status(s, n, st) >= 0 && (any || strcmp(st + 1, ".0.0")))
		return 1;
	if (any && find_code(s, n, -1))
		return 1;
	norm_text(s, n, tmp);
	return tmp->len >= 3 && phrase_reason(buf_str(tmp)) != DSN_R_NONE;
}

static void
diag_append(struct buf *d, const char *s, size_t n)
{
	if (d->len >= DSN_MAX_TEXT)
		return;
	if (d->len)
		buf_putc(d, ' ');
	buf_append(d, s, n < DSN_MAX_TEXT ? n : DSN_MAX_TEXT);
}

/* Bounce phrases of the notice (lowercase). */
static const char *const bounce_phrases[] = {
	"could not be delivered", "couldn't be delivered", "was not delivered",
	"not be delivered", "undeliverable", "undelivered", "delivery has failed",
	"delivery failed", "delivery to the following recipient",
	"permanent error", "permanent fatal error", "address(es) failed",
	"following address failed", "following addresses failed",
	"unable to deliver", "wasn't able to deliver", "was unable to deliver",
	"did not reach the following", "could not be reached",
	"error has occurred while attempting to deliver",
	"returned permanent errors", "rejected recipient",
	"failed permanently", "delivery status notification",
	"mail delivery failed", "message could not be delivered",
	"delivery problem", "non remis", "unzustellbar",
	"not delivered to", "trouble delivering", "is delayed",
	"could not deliver", "delivery error", "error message below",
	"transcript of session follows", "failure notice",
	"returned mail", "the mail system", "mailer-daemon",
	"delayed for more than",
	NULL
};

static const char *const delay_phrases[] = {
	"will be retried", "will continue to try", "still trying",
	"do not need to re-send", "temporary failure report",
	"warning message only", "has not yet been delivered",
	"could not send message for past", "delivery attempts will continue",
	"not yet been delivered", "is delayed", "delivery delayed",
	"delayed for more than", "will retry",
	NULL
};

static const char *const permanent_phrases[] = {
	"permanent", "fatal", "giving up", "given up", "gave up",
	"not going to try again", "has been returned", "could not be delivered",
	NULL
};

/* Does the message look like a bounce? From / Subject / notice phrases. */
static int
looks_like_bounce(struct ctx *c, const char *norm)
{
	static const char *const subj[] = {
		"undeliver", "undelivered", "delivery status notification",
		"delivery failure", "delivery failed", "failure notice",
		"returned mail", "mail delivery", "could not be delivered",
		"non remis", "non-remis", "unzustellbar", "nicht zustellbar",
		"delivery notification", "mail system error", "not delivered",
		"delivery problem", "warning: message", "delayed mail",
		"returned to sender", "mail failure", "message failure",
		"nondeliverable", "non-deliverable", "unable to deliver",
		"delivery report", "error sending", "rejected",
		NULL
	};
	size_t vlen;
	const char *v;

	if ((v = header_get(c->hdr, c->hdr_len, "from", &vlen)) != NULL) {
		if (ci_find(v, vlen, "mailer-daemon") || ci_find(v, vlen,
		    "postmaster") || ci_find(v, vlen, "mail delivery"))
			return 1;
	}
	if ((v = header_get(c->hdr, c->hdr_len, "subject", &vlen)) != NULL) {
		struct buf s;
		int hit;

		buf_init(&s, 0);
		norm_text(v, vlen, &s);
		hit = has_phrase(buf_str(&s), subj);
		buf_free(&s);
		if (hit)
			return 1;
	}
	return has_phrase(norm, bounce_phrases);
}

/*
 * The recipients of a plain-text bounce and their diagnostics, from the
 * report text s (n bytes: the notice up to the returned original). Each
 * line that names a failed recipient (rcpt_on_line) starts its
 * diagnostic: the rest of the line and the lines after it, up to a blank
 * line or the next recipient. A recipient whose diagnostic says nothing
 * takes the lines elsewhere that name it with a code or phrase, else the
 * notice's informative lines. With add 0, no recipient is added: only the
 * diagnostics of those known that say nothing are filled (a DSN without
 * a useful Diagnostic-Code, or a recipient found elsewhere).
 */
static void
parse_text(struct ctx *c, const char *s, size_t n, int add)
{
	struct dsn_report *r = c->r;
	const char *end = s + n, *p;
	struct buf tmp, info, *found = NULL;
	char skip[2][DSN_MAX_ADDR] = { "", "" };
	size_t vlen, nfound = 0, with_text = 0, first = r->nrcpt, scans = 0;
	const char *v;

	buf_init(&tmp, 0);
	buf_init(&info, 0);
	if ((v = header_get(c->hdr, c->hdr_len, "to", &vlen)) != NULL)
		addr_from_value(skip[0], v, vlen);
	snprintf(skip[1], sizeof(skip[1]), "%s", r->envelope_sender[0] ?
	    r->envelope_sender : c->orig_sender);
	/* the text found for each recipient, indexed like r->rcpt */
	if (!(found = calloc(r->nrcpt + (add ? c->lim->max_rcpts : 0) + 1,
	    sizeof(*found)))) {
		c->nomem = 1;
		return;
	}
	for (p = s; p < end && !c->nomem; p = next_line(p, end)) {
		const char *eol = line_end(p, end), *a, *q;
		size_t alen, rest, k;
		char addr[DSN_MAX_ADDR];
		struct dsn_rcpt *x;
		struct buf *d, m;
		int lines = 0;

		if (informative(p, (size_t)(eol - p), 1, &tmp))
			diag_append(&info, p, (size_t)(eol - p));
		if (!rcpt_on_line(p, (size_t)(eol - p), &a, &alen, &rest))
			continue;
		put_addr(addr, a, alen);
		if (ci_prefix(addr, strlen(addr), "mailer-daemon@"))
			continue;
		if ((x = find_rcpt(r, addr)) == NULL) {
			if (!add || !(x = add_rcpt(c)))
				continue;
			snprintf(x->address, sizeof(x->address), "%s", addr);
		}
		k = (size_t)(x - r->rcpt);
		if (k >= nfound)
			nfound = k + 1;
		d = &found[k];
		if (d->len && has_code(d->data, d->len))
			continue;       /* the first mention is the report */
		buf_init(&m, DSN_MAX_TEXT * 2);
		/* the rest of the line, but not " on DATE" (Exchange) */
		q = p + rest;
		while (q < eol && strchr(">\"':.,; \t\r", *q))
			q++;
		if (!ci_prefix(q, (size_t)(eol - q), "on "))
			diag_append(&m, q, (size_t)(eol - q));
		/* the lines after it, up to a blank line or the next
		 * recipient (indented no deeper than this one) */
		for (const char *l = next_line(p, end); l < end &&
		    lines < LINE_DIAG_MAX; l = next_line(l, end), lines++) {
			const char *le = line_end(l, end);

			if (is_blank(l, le))
				break;
			if (indent(l, le) <= indent(p, eol) &&
			    rcpt_on_line(l, (size_t)(le - l), &a, &alen, &rest)) {
				char next[DSN_MAX_ADDR];

				put_addr(next, a, alen);
				if (strcasecmp(next, addr))
					break;  /* another recipient */
			}
			diag_append(&m, l, (size_t)(le - l));
		}
		/* a later mention adds what the first lacked: a code */
		if (!d->len || (m.len && has_code(m.data, m.len)))
			diag_append(d, buf_str(&m), m.len);
		if (!d->len)
			buf_putc(d, ' ');       /* mentioned, nothing said */
		buf_free(&m);
	}
	/* the sender's own address, named as such ("A message sent by
	 * <a>"), is no recipient, unless it is the only one */
	if (add) {
		size_t kept = first, others = 0;

		for (size_t i = first; i < r->nrcpt; i++)
			others += strcasecmp(r->rcpt[i].address, skip[0]) &&
			    strcasecmp(r->rcpt[i].address, skip[1]);
		for (size_t i = first; i < r->nrcpt && others; i++) {
			if (!strcasecmp(r->rcpt[i].address, skip[0]) ||
			    !strcasecmp(r->rcpt[i].address, skip[1])) {
				buf_free(&found[i]);
				continue;
			}
			if (kept != i) {
				r->rcpt[kept] = r->rcpt[i];
				found[kept] = found[i];
				buf_init(&found[i], 0);
			}
			kept++;
		}
		if (others) {
			if (nfound > kept)
				nfound = kept;
			r->nrcpt = kept;
		}
	}
	for (size_t i = 0; i < nfound; i++) {
		if (found[i].len && informative(found[i].data, found[i].len, 0,
		    &tmp))
			with_text++;
		if (found[i].len > 1 && !r->rcpt[i].command[0]) {
			norm_text(found[i].data, found[i].len, &tmp);
			snprintf(r->rcpt[i].command, sizeof(r->rcpt[i].command),
			    "%s", text_command(buf_str(&tmp)));
		}
	}
	for (size_t i = 0; i < r->nrcpt && !c->nomem; i++) {
		struct dsn_rcpt *x = &r->rcpt[i];
		struct buf d;

		/* reading the whole text for one recipient: for the first
		 * SCAN_RCPTS only, so that many recipients cost linear time */
		int scan = x->address[0] && scans < SCAN_RCPTS;

		if ((!x->command[0] || status_is_generic(x->status)) && scan) {
			scans++;
			/* the lines naming it, each with the line after it: a
			 * transcript (">>> RCPT TO:<a>", "<<< 550 ...") says
			 * the command; the MTA's verdict ("550 5.1.1 <a>...
			 * User unknown") a status the report left generic */
			char st[16];

			buf_init(&d, DSN_MAX_TEXT * 4);
			for (p = s; p < end; p = next_line(p, end)) {
				const char *eol = line_end(p, end), *nx;

				if (!ci_find(p, (size_t)(eol - p), x->address))
					continue;
				nx = next_line(p, end);
				diag_append(&d, p, (size_t)(line_end(nx, end) - p));
				if (status_is_generic(x->status) && find_status(p,
				    (size_t)(eol - p), st) >= 0 &&
				    !status_is_generic(st) && (!x->status[0] ||
				    st[0] == x->status[0])) {
					snprintf(x->status, sizeof(x->status), "%s", st);
					x->status_src = DSN_STATUS_TEXT;
				}
			}
			norm_text(buf_str(&d), d.len, &tmp);
			if (!x->command[0])
				snprintf(x->command, sizeof(x->command), "%s",
				    text_command(buf_str(&tmp)));
			buf_free(&d);
		}
		if (informative(x->diagnostic, strlen(x->diagnostic), 0, &tmp))
			continue;
		buf_init(&d, 0);
		diag_append(&d, x->diagnostic, strlen(x->diagnostic));
		if (i < nfound && found[i].len && informative(found[i].data,
		    found[i].len, 0, &tmp))
			diag_append(&d, found[i].data, found[i].len);
		else {
			size_t before = d.len;

			if (scan)
				scans++;
			for (p = s; scan && p < end; p = next_line(p, end)) {
				const char *eol = line_end(p, end);

				if (ci_find(p, (size_t)(eol - p), x->address) &&
				    !is_rcpt_line(p, (size_t)(eol - p)) &&
				    informative(p, (size_t)(eol - p), 1, &tmp))
					diag_append(&d, p, (size_t)(eol - p));
			}
			if (d.len == before && with_text == 0)
				diag_append(&d, buf_str(&info), info.len);
			if (d.len == before && i < nfound && found[i].len)
				diag_append(&d, found[i].data, found[i].len);
		}
		if (d.len)
			clean_copy(x->diagnostic, sizeof(x->diagnostic),
			    buf_str(&d), d.len);
		buf_free(&d);
	}
	if (found)
		for (size_t i = 0; i < nfound; i++)
			buf_free(&found[i]);
	free(found);
	buf_free(&tmp);
	buf_free(&info);
}

/* The remote MTA named in a text diagnostic: "host NAME [ip]", "host
 * NAME said", "remote host IP said". */
static void
text_remote_mta(struct dsn_rcpt *x)
{
	const char *d = x->diagnostic, *h = ci_find(d, strlen(d), "host ");
	size_t k;

	if (!h || x->remote_mta[0])
		return;
	h += 5;
	for (k = 0; h[k] && (is_domain_char((unsigned char)h[k]) ||
	    h[k] == ':'); k++)
		;
	while (k && (h[k - 1] == ':' || h[k - 1] == '.'))
		k--;
	if (k >= 3 && memchr(h, '.', k))
		clean_copy(x->remote_mta, sizeof(x->remote_mta), h, k);
}

/* The MTA that wrote a plain-text bounce, by its standard phrases. */
static const char *
text_format(const char *norm)
{
	static const struct {
		const char *phrase, *format;
	} t[] = {
		{ "created automatically by mail delivery software", "exim" },
		{ "qmail-send program", "qmail" },
		{ "postfix program", "postfix" },
		{ "this is the mail system at host", "postfix" },
		{ "transcript of session follows", "sendmail" },
		{ "had permanent fatal errors", "sendmail" },
		{ "did not reach the following recipient", "exchange" },
		{ "did not reach some or all of the intended", "exchange" },
		{ "delivery has failed to these recipients", "exchange" },
		{ "couldn't be delivered", "exchange" },
		{ "msexch", "exchange" },
		{ "domino directory", "domino" },
		{ "was not delivered to:", "domino" },
		{ "this is the mailer-daemon, please do not reply", "opensmtpd" },
		{ "failed permanently", "gmail" },
		{ "google tried to deliver", "gmail" },
		{ "the response from the remote server was", "gmail" },
		{ "unable to deliver your message to the following address",
		  "yahoo" },
		{ "courier mail server", "courier" },
		{ "dragonfly mail agent", "dma" },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (strstr(norm, t[i].phrase))
			return t[i].format;
	return "text";
}

/* ---- auto-replies ------------------------------------------------------- */

static int
is_auto_reply(struct ctx *c, const char *subject)
{
	/* subjects of out-of-office replies: these phrases anywhere, the
	 * more common words only at the start */
	static const char *const subj[] = {
		"automatic reply", "autoreply", "auto reply", "auto-reply",
		"auto response", "autoresponse", "auto-response",
		"out of office", "out of the office", "out-of-office",
		"abwesenheitsnotiz", "automatische antwort",
		"reponse automatique", "réponse automatique",
		"risposta automatica", "respuesta automática",
		"respuesta automatica", "automatisch antwoord", "autosvar",
		"automaattinen vastaus", "odpowiedź automatyczna",
		"resposta automática", "away from the office",
		NULL
	};
	static const char *const subj_start[] = {
		"auto:", "vacation", "on vacation", "on leave", "absent",
		"abwesend", "congés", "away", "i am away", "i'm away",
		NULL
	};
	size_t vlen;
	const char *v;
	struct buf s;
	int hit;

	if ((v = header_get(c->hdr, c->hdr_len, "auto-submitted", &vlen)) &&
	    ci_find(v, vlen, "auto-replied"))
		return 1;
	if (header_get(c->hdr, c->hdr_len, "x-autoreply", &vlen) ||
	    header_get(c->hdr, c->hdr_len, "x-autorespond", &vlen) ||
	    header_get(c->hdr, c->hdr_len, "x-autoresponder", &vlen))
		return 1;
	if (((v = header_get(c->hdr, c->hdr_len, "precedence", &vlen)) ||
	    (v = header_get(c->hdr, c->hdr_len, "x-precedence", &vlen))) &&
	    ci_find(v, vlen, "auto_reply"))
		return 1;
	buf_init(&s, 0);
	norm_text(subject, strlen(subject), &s);
	hit = has_phrase(buf_str(&s), subj);
	for (const char *const *w = subj_start; *w && !hit; w++)
		hit = ci_prefix(buf_str(&s), s.len, *w);
	buf_free(&s);
	return hit;
}

static void
parse_auto_reply(struct ctx *c)
{
	struct dsn_report *r = c->r;
	struct dsn_rcpt *x;
	struct buf refs;
	size_t vlen;
	const char *v;

	r->kind = DSN_KIND_AUTOREPLY;
	r->format = "rfc3834";
	buf_init(&refs, DSN_MAX_TEXT);
	if ((v = header_get(c->hdr, c->hdr_len, "in-reply-to", &vlen))) {
		put_msgid(r->orig.message_id, sizeof(r->orig.message_id), v,
		    vlen);
		buf_append(&refs, v, vlen);
	}
	if ((v = header_get(c->hdr, c->hdr_len, "references", &vlen))) {
		buf_putc(&refs, ' ');
		buf_append(&refs, v, vlen);
	}
	clean_copy(r->orig.references, sizeof(r->orig.references),
	    buf_str(&refs), refs.len);
	buf_free(&refs);
	if ((x = add_rcpt(c)) != NULL) {
		snprintf(x->address, sizeof(x->address), "%s", r->from);
		x->cls = DSN_AUTO_REPLY;
		x->reason = DSN_R_AUTO_REPLY;
		snprintf(x->diagnostic, sizeof(x->diagnostic), "%s", r->subject);
	}
}

/* ---- the whole message -------------------------------------------------- */

/* The decoded Subject (RFC 2047 words to UTF-8) into dst. */
static void
put_subject(char *dst, size_t n, const char *v, size_t vlen)
{
	size_t idx = 0;
	char *dec = NULL;

	if (mailmime_encoded_phrase_parse("us-ascii", v, vlen, &idx, "utf-8",
	    &dec) == MAILIMF_NO_ERROR && dec) {
		clean_copy(dst, n, dec, strlen(dec));
		free(dec);
	} else
		clean_copy(dst, n, v, vlen);
}

static void
top_headers(struct ctx *c)
{
	static const char *const verp_fields[] = { "to", "delivered-to",
		"x-original-to", "envelope-to", "x-envelope-to", "x-rcpt-to",
		"cc", NULL };
	struct dsn_report *r = c->r;
	size_t vlen;
	const char *v;

	if ((v = header_get(c->hdr, c->hdr_len, "subject", &vlen)))
		put_subject(r->subject, sizeof(r->subject), v, vlen);
	if ((v = header_get(c->hdr, c->hdr_len, "from", &vlen)))
		addr_from_value(r->from, v, vlen);
	for (const char *const *f = verp_fields; *f && !r->orig.verp_token[0];
	    f++) {
		const char *p = c->hdr, *end = c->hdr + c->hdr_len;
		struct field fl;
		int k;

		while ((k = next_field(&p, end, &fl)) != F_END && k != F_BLANK)
			if (k == F_FIELD && fname(&fl, *f) &&
			    verp_token(fl.val, fl.vlen, r->orig.verp_token))
				break;
	}
}

static void
finish_text_rcpts(struct ctx *c, size_t from, int delayed)
{
	struct dsn_report *r = c->r;

	for (size_t i = from; i < r->nrcpt; i++) {
		struct dsn_rcpt *x = &r->rcpt[i];

		if (!x->action[0])
			snprintf(x->action, sizeof(x->action), "%s",
			    delayed ? "delayed" : "failed");
		text_remote_mta(x);
	}
}

/* DSN fields written into the text (some MTAs do, and a report whose
 * MIME structure is broken): from the first line that starts a report
 * block to the first line that is no header field. 1 if found. */
static int
dsn_in_text(const char *s, size_t n, struct buf *out)
{
	const char *end = s + n, *p, *start = NULL;
	struct field f;
	int k, fields = 0;

	for (p = s; p < end; p = next_line(p, end))
		if (ci_prefix(p, (size_t)(end - p), "reporting-mta:") ||
		    ci_prefix(p, (size_t)(end - p), "final-recipient:") ||
		    ci_prefix(p, (size_t)(end - p), "original-recipient:")) {
			start = p;
			break;
		}
	if (!start)
		return 0;
	for (p = start; (k = next_field(&p, end, &f)) != F_END; ) {
		if (k == F_OTHER)
			break;
		if (k == F_FIELD && (fname(&f, "action") || fname(&f, "status")))
			fields++;
	}
	if (!fields)
		return 0;
	buf_append(out, start, (size_t)(p - start));
	return 1;
}

/* The text bounce's recipients, when no line named one: Exim's
 * X-Failed-Recipients, else the original's To. */
static void
text_fallback_rcpt(struct ctx *c, const char *text, size_t text_len)
{
	struct dsn_report *r = c->r;
	struct dsn_rcpt *x;
	char a[DSN_MAX_ADDR] = "";
	size_t vlen;
	const char *v;

	if ((v = header_get(c->hdr, c->hdr_len, "x-failed-recipients", &vlen)))
		addr_from_value(a, v, vlen);
	if (!a[0])
		snprintf(a, sizeof(a), "%s", r->orig.to);
	if ((x = add_rcpt(c)) != NULL) {
		snprintf(x->address, sizeof(x->address), "%s", a);
		parse_text(c, text, text_len, 0);
	}
}

/* Read the report from the parts the walk kept (c->notice, c->status,
 * c->feedback, c->orig). */
static void
interpret(struct ctx *c)
{
	struct dsn_report *r = c->r;
	const char *text = buf_str(&c->notice), *mark;
	size_t text_len = c->notice.len;
	struct buf norm;

	/* the report text, and the original returned after it */
	if ((mark = find_copy_marker(text, text_len)) != NULL) {
		const char *after = next_line(mark, text + text_len);

		if (!c->orig)
			keep_orig(c, after, (size_t)(text + text_len - after));
		text_len = (size_t)(mark - text);
	}
	if (c->orig) {
		size_t vlen;
		const char *v = header_get(c->orig, c->orig_len, "return-path",
		    &vlen);

		read_orig(&r->orig, c->orig, c->orig_len);
		if (!v || !addr_from_value(c->orig_sender, v, vlen))
			snprintf(c->orig_sender, sizeof(c->orig_sender), "%s",
			    r->orig.from);
	}
	if (!c->have_status && !c->have_feedback)
		c->have_status = dsn_in_text(text, text_len, &c->status);
	if (text_len > TEXT_MAX)
		text_len = TEXT_MAX;
	buf_init(&norm, 0);
	norm_text(text, text_len, &norm);

	if (c->have_feedback) {
		parse_feedback(c);
	} else if (parse_ses(c)) {
		;
	} else if (c->have_status) {
		r->kind = DSN_KIND_DSN;
		r->format = "rfc3464";
		parse_status(c);
		parse_text(c, text, text_len, 0);
		for (size_t i = 0; i < r->nrcpt; i++)
			dsn_classify(&r->rcpt[i]);
	} else if (looks_like_bounce(c, buf_str(&norm))) {
		int delayed = has_phrase(buf_str(&norm), delay_phrases) &&
		    !has_phrase(buf_str(&norm), permanent_phrases);

		r->kind = DSN_KIND_TEXT;
		r->format = text_format(buf_str(&norm));
		parse_text(c, text, text_len, 1);
		if (r->nrcpt == 0 && !c->nomem)
			text_fallback_rcpt(c, text, text_len);
		finish_text_rcpts(c, 0, delayed);
		for (size_t i = 0; i < r->nrcpt; i++)
			dsn_classify(&r->rcpt[i]);
	} else if (is_auto_reply(c, r->subject)) {
		parse_auto_reply(c);
	}
	if (!r->orig.verp_token[0] && r->envelope_sender[0])
		verp_token(r->envelope_sender, strlen(r->envelope_sender),
		    r->orig.verp_token);
	buf_free(&norm);
}

/* 1 if the reading found nothing to act on: no report, or no recipient
 * address. */
static int
found_nothing(const struct dsn_report *r)
{
	if (r->kind == DSN_KIND_NONE)
		return 1;
	if (r->kind != DSN_KIND_DSN && r->kind != DSN_KIND_TEXT)
		return 0;
	for (size_t i = 0; i < r->nrcpt; i++)
		if (r->rcpt[i].address[0])
			return 0;
	return 1;
}

static void
ctx_free(struct ctx *c)
{
	buf_free(&c->notice);
	buf_free(&c->html);
	buf_free(&c->status);
	buf_free(&c->feedback);
	free(c->orig);
}

/*
 * How much of msg to give libetpan, whose parser recurses: once per
 * nested MIME part and per nested comment "((...))". The MIME nesting is
 * bounded by cutting the input before the (max_parts + 1)th Content-Type
 * line (a nested part needs one of its own); nested comments deeper than
 * COMMENT_MAX within a header field make the message unsafe to hand over
 * (0: it is then read as plain text).
 */
#define COMMENT_MAX     64
static size_t
mime_input_len(const char *msg, size_t len, size_t max_parts)
{
	size_t types = 0;
	int depth = 0;

	for (size_t i = 0; i < len; i++) {
		char ch = msg[i];

		if (ch == '\n') {
			if (i + 1 < len && msg[i + 1] != ' ' && msg[i + 1] != '\t')
				depth = 0;      /* a new header field or line */
			if (ci_prefix(msg + i + 1, len - i - 1, "content-type:") &&
			    ++types > max_parts)
				return i + 1;
		} else if (ch == '(') {
			if (++depth > COMMENT_MAX)
				return 0;
		} else if (ch == ')' && depth > 0)
			depth--;
	}
	return len;
}

int
dsn_parse(const char *msg, size_t len, const struct dsn_limits *lim,
    struct dsn_report *out)
{
	static const struct dsn_limits deflim = DSN_LIMITS_DEFAULT;
	struct mailmime *mime = NULL;
	struct ctx c;
	size_t idx = 0, body, mlen;

	memset(out, 0, sizeof(*out));
	out->format = "";
	memset(&c, 0, sizeof(c));
	c.lim = lim ? lim : &deflim;
	c.r = out;
	buf_init(&c.notice, 0);
	buf_init(&c.html, 0);
	buf_init(&c.status, 0);
	buf_init(&c.feedback, 0);

	if (!msg) {
		msg = "";
		len = 0;
	}
	if (len > c.lim->max_size) {
		len = c.lim->max_size;
		out->truncated = 1;
	}
	if (len > 5 && !strncmp(msg, "From ", 5)) {     /* mbox separator */
		const char *nl = memchr(msg, '\n', len);

		len = nl ? len - (size_t)(nl + 1 - msg) : 0;
		msg = nl ? nl + 1 : msg;
	}
	/* the report's own header section, and where the body starts */
	c.hdr = msg;
	body = len;
	for (const char *p = msg; p && p < msg + len; p = next_line(p,
	    msg + len))
		if (is_blank(p, line_end(p, msg + len))) {
			c.hdr_len = (size_t)(p - msg);
			body = (size_t)(next_line(p, msg + len) - msg);
			break;
		}
	if (len && !c.hdr_len)
		c.hdr_len = len;
	if (c.hdr_len > HEADER_MAX)
		c.hdr_len = HEADER_MAX;
	if (len)
		top_headers(&c);

	mlen = len ? mime_input_len(msg, len, c.lim->max_parts) : 0;
	if (mlen && mailmime_parse(msg, mlen, &idx, &mime) == MAILIMF_NO_ERROR)
		walk(&c, mime, 0);
	if (mime)
		mailmime_free(mime);
	if (!c.nomem && !c.notice.len && c.html.len)
		buf_append(&c.notice, c.html.data, c.html.len);
	if (!c.nomem)
		interpret(&c);

	/* a broken MIME structure (wrong boundary, unfolded Content-Type)
	 * can hide the report: read the raw body as text */
	if (!c.nomem && found_nothing(out) && body < len && !c.have_feedback) {
		free(out->rcpt);
		out->rcpt = NULL;
		out->nrcpt = out->dropped_rcpts = 0;
		out->kind = DSN_KIND_NONE;
		out->format = "";
		c.cap = 0;
		c.have_status = 0;
		buf_reset(&c.status);
		buf_reset(&c.notice);
		buf_append(&c.notice, msg + body, len - body < NOTICE_MAX ?
		    len - body : NOTICE_MAX);
		interpret(&c);
	}
	if (c.nomem || c.notice.overflow || c.status.overflow) {
		ctx_free(&c);
		dsn_report_free(out);
		return -1;
	}
	ctx_free(&c);
	return 0;
}

void
dsn_report_free(struct dsn_report *r)
{
	if (!r)
		return;
	free(r->rcpt);
	r->rcpt = NULL;
	r->nrcpt = 0;
}

const char *
dsn_kind_name(enum dsn_kind k)
{
	switch (k) {
	case DSN_KIND_DSN: return "dsn";
	case DSN_KIND_TEXT: return "text";
	case DSN_KIND_ARF: return "arf";
	case DSN_KIND_SES: return "ses";
	case DSN_KIND_AUTOREPLY: return "auto_reply";
	default: return "none";
	}
}

const char *
dsn_class_name(enum dsn_class c)
{
	switch (c) {
	case DSN_HARD: return "hard";
	case DSN_SOFT: return "soft";
	case DSN_COMPLAINT: return "complaint";
	case DSN_AUTO_REPLY: return "auto_reply";
	case DSN_DELIVERED: return "delivered";
	default: return "unknown";
	}
}

const char *
dsn_reason_name(enum dsn_reason r)
{
	static const char *const names[] = {
		[DSN_R_NONE] = "", [DSN_R_USER_UNKNOWN] = "user_unknown",
		[DSN_R_HOST_UNKNOWN] = "host_unknown", [DSN_R_NO_MAIL] = "no_mail",
		[DSN_R_MOVED] = "moved", [DSN_R_MAILBOX_FULL] = "mailbox_full",
		[DSN_R_DISABLED] = "disabled", [DSN_R_TOO_BIG] = "too_big",
		[DSN_R_EXPIRED] = "expired", [DSN_R_GREYLISTED] = "greylisted",
		[DSN_R_BLOCKED] = "blocked", [DSN_R_RATE_LIMITED] = "rate_limited",
		[DSN_R_AUTH_FAILED] = "auth_failed", [DSN_R_POLICY] = "policy",
		[DSN_R_SPAM] = "spam", [DSN_R_VIRUS] = "virus",
		[DSN_R_FILTERED] = "filtered",
		[DSN_R_SENDER_REJECTED] = "sender_rejected",
		[DSN_R_NETWORK] = "network", [DSN_R_SYSTEM] = "system",
		[DSN_R_PROTOCOL] = "protocol", [DSN_R_DELAYED] = "delayed",
		[DSN_R_TEMPORARY] = "temporary", [DSN_R_COMPLAINT] = "complaint",
		[DSN_R_AUTO_REPLY] = "auto_reply",
		[DSN_R_DELIVERED] = "delivered", [DSN_R_OTHER] = "other",
	};

	if ((unsigned)r >= sizeof(names) / sizeof(names[0]) || !names[r])
		return "";
	return names[r];
}
