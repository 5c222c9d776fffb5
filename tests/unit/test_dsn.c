/*
 * Unit tests for lib/dsn.c: a small hand-written message for each format
 * (RFC 3464 reports, RFC 5965 feedback reports, RFC 3834 auto-replies,
 * Amazon SES notifications, the plain-text bounces of Exim, qmail,
 * Postfix, Sendmail, Exchange, Lotus Domino, Gmail, Yahoo and OpenSMTPD),
 * what identifies the original (VERP token, Message-ID, References,
 * List-Id, Feedback-ID, List-Unsubscribe token), the classifier on
 * diagnostics alone (as the sender uses it for SMTP-time answers), the
 * limits and bad input; then the corpus of real bounces in
 * $BOUNCE_FIXTURES (../shared/fixtures/bounces: mail/ and expected.tsv),
 * when present, whose agreement with the hard_bounce column is printed
 * with the disagreements and must be at least 97%.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dsn.h"

#define VERP    "AQIDBAUGBwgJCgsMDQ4P"

static struct dsn_report rep;

static void
parse(const char *msg)
{
	assert_int_equal(dsn_parse(msg, strlen(msg), NULL, &rep), 0);
}

static int
teardown(void **state)
{
	(void)state;
	dsn_report_free(&rep);
	return 0;
}

/* ---- RFC 3464 ------------------------------------------------------------ */

static const char postfix_dsn[] =
    "Return-Path: <>\n"
    "Delivered-To: bounces+" VERP "@bounce.shop.example\n"
    "From: MAILER-DAEMON@mx.shop.example (Mail Delivery System)\n"
    "Subject: Undelivered Mail Returned to Sender\n"
    "To: bounces+" VERP "@bounce.shop.example\n"
    "Auto-Submitted: auto-replied\n"
    "MIME-Version: 1.0\n"
    "Content-Type: multipart/report; report-type=delivery-status;\n"
    "\tboundary=\"B1\"\n"
    "\n"
    "--B1\n"
    "Content-Description: Notification\n"
    "Content-Type: text/plain; charset=us-ascii\n"
    "\n"
    "This is the mail system at host mx.shop.example.\n"
    "\n"
    "<jane@client.example>: host mx.client.example[192.0.2.10] said: 550 5.1.1\n"
    "    <jane@client.example>: Recipient address rejected: User unknown in\n"
    "    virtual mailbox table (in reply to RCPT TO command)\n"
    "\n"
    "<bob@client.example>: host mx.client.example[192.0.2.10] said: 552 5.2.2\n"
    "    <bob@client.example>: Mailbox full (in reply to RCPT TO command)\n"
    "\n"
    "--B1\n"
    "Content-Description: Delivery report\n"
    "Content-Type: message/delivery-status\n"
    "\n"
    "Reporting-MTA: dns; mx.shop.example\n"
    "X-Postfix-Queue-ID: 4A1B2C3D\n"
    "X-Postfix-Sender: rfc822; bounces+" VERP "@bounce.shop.example\n"
    "Arrival-Date: Mon, 23 Nov 2026 10:00:00 +0000 (UTC)\n"
    "\n"
    "Final-Recipient: rfc822; jane@client.example\n"
    "Original-Recipient: rfc822;Jane@Client.Example\n"
    "Action: failed\n"
    "Status: 5.1.1\n"
    "Remote-MTA: dns; mx.client.example\n"
    "Diagnostic-Code: smtp; 550 5.1.1 <jane@client.example>: Recipient address\n"
    "    rejected: User unknown in virtual mailbox table\n"
    "Last-Attempt-Date: Mon, 23 Nov 2026 10:00:01 +0000 (UTC)\n"
    "\n"
    "Final-Recipient: rfc822; bob@client.example\n"
    "Action: failed\n"
    "Status: 5.2.2\n"
    "Remote-MTA: dns; mx.client.example\n"
    "Diagnostic-Code: smtp; 552 5.2.2 <bob@client.example>: Mailbox full\n"
    "\n"
    "--B1\n"
    "Content-Description: Undelivered Message\n"
    "Content-Type: message/rfc822\n"
    "\n"
    "Return-Path: <bounces+" VERP "@bounce.shop.example>\n"
    "From: Shop <news@shop.example>\n"
    "To: Jane Doe <jane@client.example>\n"
    "Subject: Spring sale\n"
    "Message-ID: <0123456789abcdef@shop.example>\n"
    "References: <a@shop.example> <b@shop.example>\n"
    "List-Unsubscribe: <https://t.shop.example/u/UNSUBtok_123>,\n"
    " <mailto:unsubscribe@shop.example?subject=unsubscribe-UNSUBtok_123>\n"
    "List-Id: spring <spring.shop.example>\n"
    "Feedback-ID: 42:spring:leadcast:shop.example\n"
    "X-Leadcast-Delivery: 123456\n"
    "\n"
    "Hello Jane\n"
    "--B1--\n";

static void
rfc3464_report(void **state)
{
	const struct dsn_rcpt *x;

	(void)state;
	parse(postfix_dsn);
	assert_int_equal(rep.kind, DSN_KIND_DSN);
	assert_string_equal(rep.format, "rfc3464");
	assert_string_equal(rep.reporting_mta, "mx.shop.example");
	assert_string_equal(rep.envelope_sender,
	    "bounces+" VERP "@bounce.shop.example");
	assert_string_equal(rep.arrival_date,
	    "Mon, 23 Nov 2026 10:00:00 +0000 (UTC)");
	assert_string_equal(rep.subject, "Undelivered Mail Returned to Sender");
	assert_int_equal(rep.nrcpt, 2);

	x = &rep.rcpt[0];
	assert_string_equal(x->address, "jane@client.example");
	assert_string_equal(x->original, "Jane@client.example");
	assert_string_equal(x->action, "failed");
	assert_string_equal(x->status, "5.1.1");
	assert_int_equal(x->status_src, DSN_STATUS_REPORT);
	assert_int_equal(x->smtp_code, 550);
	assert_string_equal(x->command, "RCPT");
	assert_string_equal(x->remote_mta, "mx.client.example");
	assert_string_equal(x->diagnostic_type, "smtp");
	assert_string_equal(x->diagnostic, "550 5.1.1 <jane@client.example>: "
	    "Recipient address rejected: User unknown in virtual mailbox table");
	assert_string_equal(x->last_attempt,
	    "Mon, 23 Nov 2026 10:00:01 +0000 (UTC)");
	assert_int_equal(x->cls, DSN_HARD);
	assert_int_equal(x->reason, DSN_R_USER_UNKNOWN);
	assert_string_equal(dsn_class_name(x->cls), "hard");
	assert_string_equal(dsn_reason_name(x->reason), "user_unknown");

	x = &rep.rcpt[1];
	assert_string_equal(x->address, "bob@client.example");
	assert_string_equal(x->status, "5.2.2");
	assert_int_equal(x->smtp_code, 552);
	assert_int_equal(x->cls, DSN_SOFT);
	assert_int_equal(x->reason, DSN_R_MAILBOX_FULL);

	/* what identifies the original */
	assert_string_equal(rep.orig.verp_token, VERP);
	assert_string_equal(rep.orig.message_id, "0123456789abcdef@shop.example");
	assert_string_equal(rep.orig.references,
	    "<a@shop.example> <b@shop.example>");
	assert_string_equal(rep.orig.list_id, "spring <spring.shop.example>");
	assert_string_equal(rep.orig.feedback_id,
	    "42:spring:leadcast:shop.example");
	assert_string_equal(rep.orig.unsubscribe_token, "UNSUBtok_123");
	assert_string_equal(rep.orig.x_leadcast, "X-Leadcast-Delivery: 123456");
	assert_string_equal(rep.orig.to, "jane@client.example");
	assert_string_equal(rep.orig.from, "news@shop.example");
	assert_string_equal(rep.orig.subject, "Spring sale");
}

/* CRLF line ends, fields in another order, no blank line between the
 * recipients, a delayed one, headers only of the original, and the VERP
 * token only in the bounce's To. */
static void
rfc3464_variants(void **state)
{
	static const char msg[] =
	    "From: postmaster@relay.example\r\n"
	    "To: bounces+tok-1_2@b.example\r\n"
	    "Subject: Delivery Status Notification (Delay)\r\n"
	    "Content-Type: multipart/report; report-type=delivery-status; "
	    "boundary=x\r\n"
	    "\r\n"
	    "--x\r\n"
	    "Content-Type: text/plain\r\n"
	    "\r\n"
	    "This is a warning message only.\r\n"
	    "--x\r\n"
	    "Content-Type: message/delivery-status\r\n"
	    "\r\n"
	    "Reporting-MTA: dns; relay.example\r\n"
	    "\r\n"
	    "Action: delayed\r\n"
	    "Status: 4.4.1\r\n"
	    "Final-Recipient: rfc822; <a@one.example>\r\n"
	    "Diagnostic-Code: smtp; connect to mx.one.example[192.0.2.1]:25: "
	    "Connection timed out\r\n"
	    "Final-Recipient: rfc822; b@two.example\r\n"
	    "Action: failed (permanent)\r\n"
	    "Status: 5.0.0\r\n"
	    "Diagnostic-Code: X-Postfix; Host or domain name not found. Name\r\n"
	    " service error for name=two.example type=A: Host not found\r\n"
	    "\r\n"
	    "--x\r\n"
	    "Content-Type: text/rfc822-headers\r\n"
	    "\r\n"
	    "Message-ID: <m1@shop.example>\r\n"
	    "To: a@one.example\r\n"
	    "\r\n"
	    "--x--\r\n";

	(void)state;
	parse(msg);
	assert_int_equal(rep.kind, DSN_KIND_DSN);
	assert_int_equal(rep.nrcpt, 2);
	assert_string_equal(rep.rcpt[0].address, "a@one.example");
	assert_string_equal(rep.rcpt[0].action, "delayed");
	assert_int_equal(rep.rcpt[0].cls, DSN_SOFT);
	assert_int_equal(rep.rcpt[0].reason, DSN_R_NETWORK);
	assert_string_equal(rep.rcpt[1].address, "b@two.example");
	assert_string_equal(rep.rcpt[1].action, "failed");
	assert_string_equal(rep.rcpt[1].diagnostic_type, "X-Postfix");
	assert_int_equal(rep.rcpt[1].cls, DSN_HARD);
	assert_int_equal(rep.rcpt[1].reason, DSN_R_HOST_UNKNOWN);
	assert_string_equal(rep.orig.verp_token, "tok-1_2");
	assert_string_equal(rep.orig.message_id, "m1@shop.example");
}

/* A reply of "no such user" after DATA comes from a filter of a
 * recipient accepted at RCPT TO; with neither an address status code
 * nor the command it is not sure either: both soft. A success report is
 * no failure at all. */
static void
rfc3464_not_sure(void **state)
{
	static const char msg[] =
	    "From: MAILER-DAEMON@mx.example\n"
	    "Subject: Returned mail\n"
	    "Content-Type: multipart/report; report-type=delivery-status; "
	    "boundary=\"z\"\n"
	    "\n"
	    "--z\n"
	    "Content-Type: text/plain\n"
	    "\n"
	    "<c@three.example>: host mx.three.example[192.0.2.3] said: 550 Unknown\n"
	    "    user c@three.example (in reply to end of DATA command)\n"
	    "\n"
	    "--z\n"
	    "Content-Type: message/delivery-status\n"
	    "\n"
	    "Reporting-MTA: dns; mx.example\n"
	    "\n"
	    "Final-Recipient: rfc822; c@three.example\n"
	    "Action: failed\n"
	    "Status: 5.0.0\n"
	    "Diagnostic-Code: smtp; 550 Unknown user c@three.example\n"
	    "\n"
	    "Final-Recipient: rfc822; d@four.example\n"
	    "Action: failed\n"
	    "Status: 5.0.0\n"
	    "Diagnostic-Code: smtp; 550 User unknown\n"
	    "\n"
	    "Final-Recipient: rfc822; e@five.example\n"
	    "Action: relayed\n"
	    "Status: 2.0.0\n"
	    "\n"
	    "--z--\n";

	(void)state;
	parse(msg);
	assert_int_equal(rep.nrcpt, 3);
	assert_string_equal(rep.rcpt[0].command, "DATA");
	assert_int_equal(rep.rcpt[0].cls, DSN_SOFT);
	assert_int_equal(rep.rcpt[0].reason, DSN_R_FILTERED);
	assert_int_equal(rep.rcpt[1].cls, DSN_SOFT);
	assert_int_equal(rep.rcpt[1].reason, DSN_R_USER_UNKNOWN);
	assert_int_equal(rep.rcpt[2].cls, DSN_DELIVERED);
}

/* ---- RFC 5965 and RFC 3834 ---------------------------------------------- */

static void
arf_complaint(void **state)
{
	static const char msg[] =
	    "From: feedback@isp.example\n"
	    "To: fbl@shop.example\n"
	    "Subject: Abuse report\n"
	    "MIME-Version: 1.0\n"
	    "Content-Type: multipart/report; report-type=feedback-report;\n"
	    " boundary=\"part1\"\n"
	    "\n"
	    "--part1\n"
	    "Content-Type: text/plain\n"
	    "\n"
	    "This is an email abuse report for an email message received from "
	    "IP 192.0.2.1.\n"
	    "--part1\n"
	    "Content-Type: message/feedback-report\n"
	    "\n"
	    "Feedback-Type: abuse\n"
	    "User-Agent: SomeGenerator/1.0\n"
	    "Version: 1\n"
	    "Original-Mail-From: <bounces+" VERP "@bounce.shop.example>\n"
	    "Original-Rcpt-To: <sam@isp.example>\n"
	    "Arrival-Date: Thu, 8 Mar 2026 14:00:00 EDT\n"
	    "Reporting-MTA: dns; mail.isp.example\n"
	    "Source-IP: 192.0.2.1\n"
	    "\n"
	    "--part1\n"
	    "Content-Type: message/rfc822\n"
	    "\n"
	    "From: <news@shop.example>\n"
	    "To: <sam@isp.example>\n"
	    "Subject: Spring sale\n"
	    "Message-ID: <x1@shop.example>\n"
	    "Feedback-ID: 7:spring:leadcast:shop.example\n"
	    "\n"
	    "Buy now\n"
	    "--part1--\n";

	(void)state;
	parse(msg);
	assert_int_equal(rep.kind, DSN_KIND_ARF);
	assert_string_equal(rep.feedback_type, "abuse");
	assert_string_equal(rep.source_ip, "192.0.2.1");
	assert_string_equal(rep.reporting_mta, "mail.isp.example");
	assert_int_equal(rep.nrcpt, 1);
	assert_string_equal(rep.rcpt[0].address, "sam@isp.example");
	assert_int_equal(rep.rcpt[0].cls, DSN_COMPLAINT);
	assert_string_equal(dsn_class_name(rep.rcpt[0].cls), "complaint");
	assert_string_equal(rep.orig.verp_token, VERP);
	assert_string_equal(rep.orig.message_id, "x1@shop.example");
	assert_string_equal(rep.orig.feedback_id, "7:spring:leadcast:shop.example");
}

/* A redacted report still counts: the recipient comes from the original's
 * To, or is left empty for the matcher to find by the identifiers. */
static void
arf_redacted(void **state)
{
	static const char msg[] =
	    "From: scomp@aol.example\n"
	    "Content-Type: multipart/report; report-type=feedback-report; "
	    "boundary=b\n"
	    "\n"
	    "--b\n"
	    "Content-Type: message/feedback-report\n"
	    "\n"
	    "Feedback-Type: abuse\n"
	    "\n"
	    "--b\n"
	    "Content-Type: text/rfc822-headers\n"
	    "\n"
	    "Message-ID: <x2@shop.example>\n"
	    "Return-Path: <bounces+ZZZ@bounce.shop.example>\n"
	    "\n"
	    "--b--\n";

	(void)state;
	parse(msg);
	assert_int_equal(rep.kind, DSN_KIND_ARF);
	assert_int_equal(rep.nrcpt, 1);
	assert_string_equal(rep.rcpt[0].address, "");
	assert_int_equal(rep.rcpt[0].cls, DSN_COMPLAINT);
	assert_string_equal(rep.orig.verp_token, "ZZZ");
	assert_string_equal(rep.orig.message_id, "x2@shop.example");
}

static void
auto_reply(void **state)
{
	static const char by_header[] =
	    "From: Jane Doe <jane@client.example>\n"
	    "To: bounces+" VERP "@bounce.shop.example\n"
	    "Subject: Re: Spring sale\n"
	    "Auto-Submitted: auto-replied (vacation)\n"
	    "In-Reply-To: <0123456789abcdef@shop.example>\n"
	    "References: <0123456789abcdef@shop.example>\n"
	    "\n"
	    "I am away until Monday.\n";
	static const char by_subject[] =
	    "From: bob@client.example\n"
	    "To: news@shop.example\n"
	    "Subject: =?UTF-8?Q?R=C3=A9ponse_automatique=C2=A0:?= Spring sale\n"
	    "\n"
	    "Je suis absent.\n";

	(void)state;
	parse(by_header);
	assert_int_equal(rep.kind, DSN_KIND_AUTOREPLY);
	assert_int_equal(rep.nrcpt, 1);
	assert_string_equal(rep.rcpt[0].address, "jane@client.example");
	assert_int_equal(rep.rcpt[0].cls, DSN_AUTO_REPLY);
	assert_string_equal(rep.orig.message_id, "0123456789abcdef@shop.example");
	assert_string_equal(rep.orig.verp_token, VERP);
	dsn_report_free(&rep);

	parse(by_subject);
	assert_int_equal(rep.kind, DSN_KIND_AUTOREPLY);
	assert_string_equal(rep.rcpt[0].address, "bob@client.example");
}

/* Mail that is none of these is recognized as such. */
static void
unrelated_mail(void **state)
{
	static const char msg[] =
	    "From: Jane <jane@client.example>\n"
	    "To: news@shop.example\n"
	    "Subject: Question about my order\n"
	    "\n"
	    "Hello, where is my parcel? My address is jane@client.example.\n";

	static const char reply[] =
	    "From: Jane <jane@client.example>\n"
	    "To: news@shop.example\n"
	    "Subject: Re: Vacation offers\n"
	    "In-Reply-To: <0123456789abcdef@shop.example>\n"
	    "\n"
	    "Do you have one out of season?\n";

	(void)state;
	parse(msg);
	assert_int_equal(rep.kind, DSN_KIND_NONE);
	assert_int_equal(rep.nrcpt, 0);
	assert_string_equal(dsn_kind_name(rep.kind), "none");
	dsn_report_free(&rep);

	parse(reply);       /* a person's reply, not an automatic one */
	assert_int_equal(rep.kind, DSN_KIND_NONE);
}

/* ---- Amazon SES ------------------------------------------------------- */

static void
ses_notifications(void **state)
{
	static const char bounce[] =
	    "From: no-reply@sns.amazonaws.com\n"
	    "Subject: AWS Notification Message\n"
	    "Content-Type: text/plain; charset=UTF-8\n"
	    "\n"
	    "{\"Type\" : \"Notification\", \"Message\" : \"{\\\"notificationType"
	    "\\\":\\\"Bounce\\\",\\\"bounce\\\":{\\\"bounceType\\\":\\\"Permanent"
	    "\\\",\\\"bounceSubType\\\":\\\"NoEmail\\\",\\\"bouncedRecipients\\\":"
	    "[{\\\"emailAddress\\\":\\\"gone@client.example\\\"}],"
	    "\\\"reportingMTA\\\":\\\"dns; a1.amazonses.com\\\"},\\\"mail\\\":{"
	    "\\\"source\\\":\\\"bounces+" VERP "@bounce.shop.example\\\","
	    "\\\"headers\\\":[{\\\"name\\\":\\\"Message-ID\\\",\\\"value\\\":"
	    "\\\"<s1@shop.example>\\\"},{\\\"name\\\":\\\"Feedback-ID\\\","
	    "\\\"value\\\":\\\"9:x:leadcast:shop.example\\\"}]}}\"}\n"
	    "--\n"
	    "If you wish to stop receiving notifications from this topic, ...\n";
	static const char complaint[] =
	    "From: no-reply@sns.amazonaws.com\n"
	    "Subject: AWS Notification Message\n"
	    "\n"
	    "{\"notificationType\":\"Complaint\",\"complaint\":{"
	    "\"complainedRecipients\":[{\"emailAddress\":\"sam@isp.example\"}],"
	    "\"complaintFeedbackType\":\"abuse\"},\"mail\":{\"commonHeaders\":{"
	    "\"messageId\":\"<s2@shop.example>\",\"subject\":\"Hi\"}}}\n";

	(void)state;
	parse(bounce);
	assert_int_equal(rep.kind, DSN_KIND_SES);
	assert_int_equal(rep.nrcpt, 1);
	assert_string_equal(rep.rcpt[0].address, "gone@client.example");
	assert_int_equal(rep.rcpt[0].cls, DSN_HARD);
	assert_int_equal(rep.rcpt[0].reason, DSN_R_USER_UNKNOWN);
	assert_string_equal(rep.reporting_mta, "a1.amazonses.com");
	assert_string_equal(rep.orig.verp_token, VERP);
	assert_string_equal(rep.orig.message_id, "s1@shop.example");
	assert_string_equal(rep.orig.feedback_id, "9:x:leadcast:shop.example");
	dsn_report_free(&rep);

	parse(complaint);
	assert_int_equal(rep.kind, DSN_KIND_SES);
	assert_int_equal(rep.rcpt[0].cls, DSN_COMPLAINT);
	assert_string_equal(rep.rcpt[0].address, "sam@isp.example");
	assert_string_equal(rep.orig.message_id, "s2@shop.example");
}

/* ---- plain-text bounces --------------------------------------------------- */

struct text_case {
	const char *name, *format, *msg;
	size_t nrcpt;
	const char *addr[2];
	enum dsn_class cls[2];
	enum dsn_reason reason[2];
};

static const struct text_case text_cases[] = {
	{ "exim", "exim",
	  "From: Mail Delivery System <Mailer-Daemon@mx.shop.example>\n"
	  "To: bounces+" VERP "@bounce.shop.example\n"
	  "Subject: Mail delivery failed: returning message to sender\n"
	  "X-Failed-Recipients: jane@client.example\n"
	  "\n"
	  "This message was created automatically by mail delivery software.\n"
	  "\n"
	  "A message that you sent could not be delivered to one or more of its\n"
	  "recipients. This is a permanent error. The following address(es) "
	  "failed:\n"
	  "\n"
	  "  jane@client.example\n"
	  "    SMTP error from remote mail server after RCPT TO:<jane@client."
	  "example>:\n"
	  "    host mx.client.example [192.0.2.7]: 550 5.1.1 <jane@client."
	  "example>... User unknown\n"
	  "  bob@client.example\n"
	  "    retry timeout exceeded\n"
	  "\n"
	  "------ This is a copy of the message, including all the headers. "
	  "------\n"
	  "\n"
	  "Return-path: <bounces+" VERP "@bounce.shop.example>\n"
	  "Message-ID: <e1@shop.example>\n"
	  "Subject: Spring sale\n"
	  "\n"
	  "Hello\n",
	  2, { "jane@client.example", "bob@client.example" },
	  { DSN_HARD, DSN_SOFT }, { DSN_R_USER_UNKNOWN, DSN_R_EXPIRED } },
	{ "qmail", "qmail",
	  "From: MAILER-DAEMON@mx.shop.example\n"
	  "Subject: failure notice\n"
	  "\n"
	  "Hi. This is the qmail-send program at mx.shop.example.\n"
	  "I'm afraid I wasn't able to deliver your message to the following "
	  "addresses.\n"
	  "This is a permanent error; I've given up. Sorry it didn't work out.\n"
	  "\n"
	  "<jane@client.example>:\n"
	  "192.0.2.7 does not like recipient.\n"
	  "Remote host said: 550 5.1.1 <jane@client.example>: Recipient address "
	  "rejected: User unknown\n"
	  "Giving up on 192.0.2.7.\n"
	  "\n"
	  "<bob@client.example>:\n"
	  "192.0.2.7 does not like recipient.\n"
	  "Remote host said: 552 5.2.2 <bob@client.example>: Mailbox full\n"
	  "Giving up on 192.0.2.7.\n"
	  "\n"
	  "--- Below this line is a copy of the message.\n"
	  "\n"
	  "Return-Path: <news@shop.example>\n"
	  "Message-ID: <q1@shop.example>\n"
	  "\n"
	  "Hello\n",
	  2, { "jane@client.example", "bob@client.example" },
	  { DSN_HARD, DSN_SOFT }, { DSN_R_USER_UNKNOWN, DSN_R_MAILBOX_FULL } },
	{ "sendmail", "sendmail",
	  "From: Mail Delivery Subsystem <MAILER-DAEMON@mx.shop.example>\n"
	  "Subject: Returned mail: see transcript for details\n"
	  "\n"
	  "The original message was received at Mon, 23 Nov 2026 10:00:00\n"
	  "\n"
	  "   ----- The following addresses had permanent fatal errors -----\n"
	  "<jane@client.example>\n"
	  "    (reason: 550 5.1.1 <jane@client.example>... User unknown)\n"
	  "\n"
	  "   ----- Transcript of session follows -----\n"
	  "... while talking to mx.client.example.:\n"
	  ">>> RCPT To:<jane@client.example>\n"
	  "<<< 550 5.1.1 <jane@client.example>... User unknown\n"
	  "550 5.1.1 <jane@client.example>... User unknown\n",
	  1, { "jane@client.example" }, { DSN_HARD }, { DSN_R_USER_UNKNOWN } },
	{ "postfix without a report", "postfix",
	  "From: MAILER-DAEMON (Mail Delivery System)\n"
	  "Subject: Undelivered Mail Returned to Sender\n"
	  "\n"
	  "This is the Postfix program at host mx.shop.example.\n"
	  "\n"
	  "I'm sorry to have to inform you that your message could not\n"
	  "be delivered to one or more recipients.\n"
	  "\n"
	  "<jane@client.example>: host mx.client.example[192.0.2.7] said: 550\n"
	  "    5.7.1 Service unavailable; client [198.51.100.1] blocked using\n"
	  "    zen.spamhaus.org (in reply to RCPT TO command)\n",
	  1, { "jane@client.example" }, { DSN_SOFT }, { DSN_R_BLOCKED } },
	{ "exchange", "exchange",
	  "From: postmaster@corp.example\n"
	  "Subject: Undeliverable: Spring sale\n"
	  "\n"
	  "Your message did not reach some or all of the intended recipients.\n"
	  "\n"
	  "      Subject:  Spring sale\n"
	  "      Sent:     11/23/2026 10:00 AM\n"
	  "\n"
	  "The following recipient(s) cannot be reached:\n"
	  "\n"
	  "      Jane Doe on 11/23/2026 10:00 AM\n"
	  "            The e-mail address you entered couldn't be found.\n"
	  "            <mx.corp.example #5.1.1 smtp;550 5.1.1 RESOLVER.ADR."
	  "RecipNotFound; not found>\n"
	  "\n"
	  "      jane@corp.example on 11/23/2026 10:00 AM\n"
	  "            The e-mail address you entered couldn't be found.\n"
	  "            <mx.corp.example #5.1.1 smtp;550 5.1.1 RESOLVER.ADR."
	  "RecipNotFound; not found>\n",
	  1, { "jane@corp.example" }, { DSN_HARD }, { DSN_R_USER_UNKNOWN } },
	{ "exchange online", "exchange",
	  "From: Microsoft Outlook <postmaster@contoso.example>\n"
	  "Subject: Undeliverable: Spring sale\n"
	  "Content-Type: multipart/alternative; boundary=\"a\"\n"
	  "\n"
	  "--a\n"
	  "Content-Type: text/plain; charset=\"us-ascii\"\n"
	  "\n"
	  "Your message to jane@contoso.example couldn't be delivered.\n"
	  "jane wasn't found at contoso.example.\n"
	  "\n"
	  "Diagnostic information for administrators:\n"
	  "\n"
	  "Generating server: BN1PR01MB0001.example.prod.outlook.com\n"
	  "\n"
	  "jane@contoso.example\n"
	  "Remote Server returned '550 5.1.10 RESOLVER.ADR.RecipientNotFound; "
	  "Recipient not found by SMTP address lookup'\n"
	  "--a\n"
	  "Content-Type: text/html; charset=\"us-ascii\"\n"
	  "\n"
	  "<html><body><p>Your message couldn't be delivered.</p></body>"
	  "</html>\n"
	  "--a--\n",
	  1, { "jane@contoso.example" }, { DSN_HARD }, { DSN_R_USER_UNKNOWN } },
	{ "gmail today", "gmail",
	  "From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>\n"
	  "Subject: Delivery Status Notification (Failure)\n"
	  "\n"
	  "** Address not found **\n"
	  "\n"
	  "Your message wasn't delivered to jane@client.example because the "
	  "address couldn't be found, or is unable to receive mail.\n"
	  "\n"
	  "The response from the remote server was:\n"
	  "550 5.1.1 <jane@client.example>: Recipient address rejected: User "
	  "unknown in virtual mailbox table\n",
	  1, { "jane@client.example" }, { DSN_HARD }, { DSN_R_USER_UNKNOWN } },
	{ "domino", "domino",
	  "From: Postmaster@notes.example\n"
	  "Subject: DELIVERY FAILURE: User jane (jane@notes.example) not listed "
	  "in Domino Directory\n"
	  "\n"
	  "Your message\n"
	  "\n"
	  "  Subject: Spring sale\n"
	  "\n"
	  "was not delivered to:\n"
	  "\n"
	  "  jane@notes.example\n"
	  "\n"
	  "because:\n"
	  "\n"
	  "  User jane (jane@notes.example) not listed in Domino Directory\n",
	  1, { "jane@notes.example" }, { DSN_HARD }, { DSN_R_USER_UNKNOWN } },
	{ "gmail", "gmail",
	  "From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>\n"
	  "Subject: Delivery Status Notification (Failure)\n"
	  "\n"
	  "Delivery to the following recipient failed permanently:\n"
	  "\n"
	  "     jane@client.example\n"
	  "\n"
	  "Technical details of permanent failure:\n"
	  "Google tried to deliver your message, but it was rejected by the "
	  "server for the recipient domain client.example by mx.client.example. "
	  "[192.0.2.7].\n"
	  "\n"
	  "The error that the other server returned was:\n"
	  "552 5.2.2 The email account that you tried to reach is over quota.\n",
	  1, { "jane@client.example" }, { DSN_SOFT }, { DSN_R_MAILBOX_FULL } },
	{ "yahoo", "yahoo",
	  "From: MAILER-DAEMON@yahoo.example\n"
	  "Subject: Failure Notice\n"
	  "\n"
	  "Sorry, we were unable to deliver your message to the following "
	  "address.\n"
	  "\n"
	  "<jane@client.example>:\n"
	  "Remote host said: 554 delivery error: dd Sorry your message to "
	  "jane@client.example cannot be delivered. This account has been "
	  "disabled or discontinued [#102]. - mta1.client.example\n",
	  1, { "jane@client.example" }, { DSN_SOFT }, { DSN_R_DISABLED } },
	{ "opensmtpd", "opensmtpd",
	  "From: MAILER-DAEMON@smtpd.example\n"
	  "Subject: Delivery status notification: error\n"
	  "\n"
	  "    Hi!\n"
	  "\n"
	  "    This is the MAILER-DAEMON, please DO NOT REPLY to this e-mail.\n"
	  "\n"
	  "    An error has occurred while attempting to deliver a message for\n"
	  "    the following list of recipients:\n"
	  "\n"
	  "jane@nowhere.example: Domain does not exist\n"
	  "\n"
	  "    Below is a copy of the original message:\n",
	  1, { "jane@nowhere.example" }, { DSN_HARD }, { DSN_R_HOST_UNKNOWN } },
};

static void
text_bounces(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(text_cases) / sizeof(text_cases[0]);
	    i++) {
		const struct text_case *t = &text_cases[i];

		print_message("# %s\n", t->name);
		parse(t->msg);
		assert_int_equal(rep.kind, DSN_KIND_TEXT);
		assert_string_equal(rep.format, t->format);
		assert_int_equal(rep.nrcpt, t->nrcpt);
		for (size_t k = 0; k < t->nrcpt; k++) {
			assert_string_equal(rep.rcpt[k].address, t->addr[k]);
			assert_string_equal(rep.rcpt[k].action, "failed");
			assert_string_equal(dsn_class_name(rep.rcpt[k].cls),
			    dsn_class_name(t->cls[k]));
			assert_string_equal(dsn_reason_name(rep.rcpt[k].reason),
			    dsn_reason_name(t->reason[k]));
		}
		dsn_report_free(&rep);
	}
}

/* The Exim case in detail: identifiers from the returned copy, the
 * command and status from the text, the remote MTA. */
static void
text_details(void **state)
{
	const struct dsn_rcpt *x;

	(void)state;
	parse(text_cases[0].msg);
	x = &rep.rcpt[0];
	assert_string_equal(x->command, "RCPT");
	assert_string_equal(x->status, "5.1.1");
	assert_int_equal(x->status_src, DSN_STATUS_TEXT);
	assert_int_equal(x->smtp_code, 550);
	assert_string_equal(x->remote_mta, "mx.client.example");
	assert_string_equal(rep.rcpt[1].status, "4.4.7");
	assert_int_equal(rep.rcpt[1].status_src, DSN_STATUS_INFERRED);
	assert_string_equal(rep.orig.verp_token, VERP);
	assert_string_equal(rep.orig.message_id, "e1@shop.example");
	assert_string_equal(rep.orig.subject, "Spring sale");
}

/* A delay notice in plain text is soft, whatever it says. */
static void
text_delay(void **state)
{
	static const char msg[] =
	    "From: MAILER-DAEMON@smtpd.example\n"
	    "Subject: Delivery status notification: delay\n"
	    "\n"
	    "    A message is delayed for more than 4 hours for the following\n"
	    "    list of recipients:\n"
	    "\n"
	    "jane@client.example: No MX found for domain\n"
	    "\n"
	    "    Please note that this is only a temporary failure report.\n";

	(void)state;
	parse(msg);
	assert_int_equal(rep.nrcpt, 1);
	assert_string_equal(rep.rcpt[0].action, "delayed");
	assert_int_equal(rep.rcpt[0].cls, DSN_SOFT);
}

/* ---- the classifier alone ------------------------------------------------- */

struct class_case {
	const char *action, *status;
	int code;
	const char *command, *diag;
	enum dsn_class cls;
	enum dsn_reason reason;
	const char *want_status;
};

static const struct class_case class_cases[] = {
	{ "", "", 550, "RCPT", "5.1.1 <a@b.example>: Recipient address "
	  "rejected: User unknown in local recipient table", DSN_HARD,
	  DSN_R_USER_UNKNOWN, "5.1.1" },
	{ "", "", 0, "", "550-5.1.1 The email account that you tried to reach "
	  "does not exist.", DSN_HARD, DSN_R_USER_UNKNOWN, "5.1.1" },
	{ "", "", 550, "", "User unknown", DSN_SOFT, DSN_R_USER_UNKNOWN,
	  "5.0.0" },
	{ "", "", 550, "DATA", "5.1.1 User unknown", DSN_SOFT, DSN_R_FILTERED,
	  "5.1.1" },
	{ "", "", 550, "MAIL", "5.1.8 <x@shop.example>: Sender address "
	  "rejected: Domain not found", DSN_SOFT, DSN_R_SENDER_REJECTED,
	  "5.1.8" },
	{ "", "", 552, "RCPT", "5.2.2 Mailbox full", DSN_SOFT,
	  DSN_R_MAILBOX_FULL, "5.2.2" },
	{ "", "", 550, "RCPT", "5.2.1 The email account that you tried to "
	  "reach is disabled.", DSN_SOFT, DSN_R_DISABLED, "5.2.1" },
	{ "", "", 450, "RCPT", "4.2.0 <a@b.example>: Recipient address "
	  "rejected: Greylisted, see http://postgrey.example/", DSN_SOFT,
	  DSN_R_GREYLISTED, "4.2.0" },
	{ "", "", 554, "RCPT", "5.7.1 Service unavailable; Client host "
	  "[192.0.2.1] blocked using zen.spamhaus.org", DSN_SOFT,
	  DSN_R_BLOCKED, "5.7.1" },
	{ "", "", 550, "DATA", "5.7.26 This message does not pass "
	  "authentication checks (SPF and DKIM both do not pass).", DSN_SOFT,
	  DSN_R_AUTH_FAILED, "5.7.26" },
	{ "", "", 421, "CONN", "4.7.0 Too many connections from your IP",
	  DSN_SOFT, DSN_R_RATE_LIMITED, "4.7.0" },
	{ "", "", 552, "DATA", "5.3.4 Message size exceeds fixed limit",
	  DSN_SOFT, DSN_R_TOO_BIG, "5.3.4" },
	{ "", "", 550, "DATA", "5.7.1 Message rejected as spam by Content "
	  "Filtering.", DSN_SOFT, DSN_R_SPAM, "5.7.1" },
	{ "", "", 554, "DATA", "5.7.1 The message contains a virus",
	  DSN_SOFT, DSN_R_VIRUS, "5.7.1" },
	{ "", "", 554, "RCPT", "5.7.1 <a@b.example>: Relay access denied",
	  DSN_SOFT, DSN_R_POLICY, "5.7.1" },
	{ "failed", "4.4.7", 0, "", "delivery time expired", DSN_SOFT,
	  DSN_R_EXPIRED, "4.4.7" },
	{ "failed", "4.4.1", 0, "", "connect to mx.b.example[192.0.2.1]:25: "
	  "Connection timed out", DSN_SOFT, DSN_R_EXPIRED, "4.4.1" },
	{ "delayed", "4.4.1", 0, "", "connect to mx.b.example[192.0.2.1]:25: "
	  "Connection timed out", DSN_SOFT, DSN_R_NETWORK, "4.4.1" },
	{ "failed", "5.1.2", 0, "", "", DSN_HARD, DSN_R_HOST_UNKNOWN,
	  "5.1.2" },
	{ "failed", "", 0, "", "Host or domain name not found. Name service "
	  "error for name=b.example type=A: Host not found", DSN_HARD,
	  DSN_R_HOST_UNKNOWN, "5.1.2" },
	{ "failed", "", 0, "", "an MX or SRV record indicated no SMTP service",
	  DSN_HARD, DSN_R_NO_MAIL, "5.1.10" },
	{ "", "", 551, "RCPT", "User not local; please try <a@c.example>",
	  DSN_HARD, DSN_R_MOVED, "5.1.6" },
	{ "failed", "5.0.0", 554, "", "Transaction failed", DSN_UNKNOWN,
	  DSN_R_OTHER, "5.0.0" },
	{ "", "", 0, "", "", DSN_UNKNOWN, DSN_R_OTHER, "" },
	{ "delivered", "2.0.0", 250, "", "250 2.0.0 Ok: queued", DSN_DELIVERED,
	  DSN_R_DELIVERED, "2.0.0" },
	{ "failed", "5.1.1", 0, "", "x-unix; procmail: Couldn't create "
	  "\"/var/mail/a\"", DSN_SOFT, DSN_R_SYSTEM, "5.1.1" },
};

static void
classify_diagnostics(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(class_cases) / sizeof(class_cases[0]);
	    i++) {
		const struct class_case *t = &class_cases[i];
		struct dsn_rcpt r;

		memset(&r, 0, sizeof(r));
		snprintf(r.action, sizeof(r.action), "%s", t->action);
		snprintf(r.status, sizeof(r.status), "%s", t->status);
		r.smtp_code = t->code;
		snprintf(r.command, sizeof(r.command), "%s", t->command);
		snprintf(r.diagnostic, sizeof(r.diagnostic), "%s", t->diag);
		if (!strncmp(t->diag, "x-unix;", 7))
			snprintf(r.diagnostic_type, sizeof(r.diagnostic_type),
			    "x-unix");
		dsn_classify(&r);
		print_message("# %s -> %s %s %s\n", t->diag,
		    dsn_class_name(r.cls), dsn_reason_name(r.reason), r.status);
		assert_string_equal(dsn_class_name(r.cls),
		    dsn_class_name(t->cls));
		assert_string_equal(dsn_reason_name(r.reason),
		    dsn_reason_name(t->reason));
		assert_string_equal(r.status, t->want_status);
		/* classifying again gives the same */
		dsn_classify(&r);
		assert_string_equal(dsn_reason_name(r.reason),
		    dsn_reason_name(t->reason));
		assert_string_equal(r.status, t->want_status);
	}
	assert_string_equal(dsn_class_name(DSN_UNKNOWN), "unknown");
	assert_string_equal(dsn_reason_name((enum dsn_reason)999), "");
}

/* ---- limits and bad input ------------------------------------------------- */

static char *
many_recipients(size_t n, size_t diag_len)
{
	size_t cap = 512 + n * (200 + diag_len), len = 0;
	char *m = malloc(cap);

	assert_non_null(m);
	len += (size_t)snprintf(m + len, cap - len,
	    "From: MAILER-DAEMON@mx.example\n"
	    "Content-Type: multipart/report; report-type=delivery-status; "
	    "boundary=b\n\n--b\nContent-Type: message/delivery-status\n\n"
	    "Reporting-MTA: dns; mx.example\n");
	for (size_t i = 0; i < n; i++) {
		len += (size_t)snprintf(m + len, cap - len, "\nFinal-Recipient: "
		    "rfc822; u%zu@b.example\nAction: failed\nStatus: 5.1.1\n"
		    "Diagnostic-Code: smtp; 550 ", i);
		memset(m + len, 'x', diag_len);
		len += diag_len;
		m[len++] = '\n';
	}
	snprintf(m + len, cap - len, "\n--b--\n");
	return m;
}

static void
limits(void **state)
{
	struct dsn_limits lim = DSN_LIMITS_DEFAULT;
	char *m = many_recipients(10, 5000);
	size_t len = strlen(m);

	(void)state;
	lim.max_rcpts = 3;
	assert_int_equal(dsn_parse(m, len, &lim, &rep), 0);
	assert_int_equal(rep.nrcpt, 3);
	assert_int_equal(rep.dropped_rcpts, 7);
	/* a long diagnostic is cut to the field size */
	assert_int_equal(strlen(rep.rcpt[0].diagnostic), DSN_MAX_TEXT - 1);
	assert_int_equal(rep.rcpt[2].cls, DSN_HARD);
	assert_int_equal(rep.truncated, 0);
	dsn_report_free(&rep);

	/* a message over max_size is read up to it */
	lim = (struct dsn_limits)DSN_LIMITS_DEFAULT;
	lim.max_size = len / 2;
	assert_int_equal(dsn_parse(m, len, &lim, &rep), 0);
	assert_int_equal(rep.truncated, 1);
	assert_true(rep.nrcpt >= 1 && rep.nrcpt < 10);
	dsn_report_free(&rep);

	/* MIME parts over max_parts are not read */
	lim = (struct dsn_limits)DSN_LIMITS_DEFAULT;
	lim.max_parts = 1;
	assert_int_equal(dsn_parse(m, len, &lim, &rep), 0);
	dsn_report_free(&rep);
	free(m);

	/* hundreds of recipients, default limits */
	m = many_recipients(800, 10);
	assert_int_equal(dsn_parse(m, strlen(m), NULL, &rep), 0);
	assert_int_equal(rep.nrcpt, 500);
	assert_int_equal(rep.dropped_rcpts, 300);
	free(m);
}

static void
bad_input(void **state)
{
	static const char *const msgs[] = {
		"",
		"\n\n\n",
		"From x\n",
		"Content-Type: multipart/report; boundary=b\n\n--b\n"
		"Content-Type: message/delivery-status\n\nFinal-Recipient: rfc",
		"Content-Type: multipart/mixed; boundary=\n\n--\n--\n",
		"Subject: Undelivered\n\n<a@>:\n<@b>: 550\n@@@@\n<<<<>>>>\n",
		"From: MAILER-DAEMON@x\n\n>>> \n<<< 5\n550 5.\n5.1.\n4.4.\n",
		"Content-Type: text/plain\nContent-Transfer-Encoding: base64\n\n"
		"!!!!====\n",
		"Content-Type: message/feedback-report\n\nFeedback-Type:",
		"Subject: x\n\n{\"notificationType\":\"Bounce\",\"bounce\":[1,2]}\n",
		"Subject: x\n\n{\"notificationType\":\"Bounce\",\"bounce\":{"
		"\"bouncedRecipients\":[1,null,{\"emailAddress\":5}]}}\n",
	};
	char *big;
	size_t n = 300000;

	(void)state;
	for (size_t i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++) {
		assert_int_equal(dsn_parse(msgs[i], strlen(msgs[i]), NULL, &rep),
		    0);
		dsn_report_free(&rep);
	}
	assert_int_equal(dsn_parse(NULL, 0, NULL, &rep), 0);
	assert_int_equal(rep.kind, DSN_KIND_NONE);
	dsn_report_free(&rep);
	dsn_report_free(NULL);

	/* comments nested deep enough to overflow a recursive parser */
	if (!(big = malloc(n + 64)))
		abort();
	memcpy(big, "From: ", 6);
	for (size_t i = 0; i < n; i++)
		big[6 + i] = '(';
	memcpy(big + 6 + n, "\nSubject: x\n\nbody\n", 19);
	assert_int_equal(dsn_parse(big, strlen(big), NULL, &rep), 0);
	dsn_report_free(&rep);
	free(big);

	/* MIME parts nested as deep: 20000 levels */
	n = 20000 * 80;
	if (!(big = malloc(n)))
		abort();
	big[0] = '\0';
	for (size_t i = 0, len = 0; i < 20000 && len < n; i++)
		len += (size_t)snprintf(big + len, n - len, "Content-Type: "
		    "multipart/mixed; boundary=b%zu\n\n--b%zu\n", i, i);
	assert_int_equal(dsn_parse(big, strlen(big), NULL, &rep), 0);
	dsn_report_free(&rep);
	free(big);
}

/* Control characters and invalid UTF-8 never reach a field; valid UTF-8
 * stays. */
static void
fields_are_clean(void **state)
{
	static const char msg[] =
	    "From: MAILER-DAEMON@mx.example\n"
	    "Content-Type: multipart/report; report-type=delivery-status; "
	    "boundary=b\n"
	    "\n"
	    "--b\n"
	    "Content-Type: message/delivery-status\n"
	    "\n"
	    "Final-Recipient: rfc822; a@b.example\n"
	    "Action: failed\n"
	    "Status: 5.2.2\n"
	    "Diagnostic-Code: smtp; 552 Bo\xc3\xaete pleine \xff\xfe\x01\x1b[31m"
	    " \tfull\n"
	    "\n"
	    "--b--\n";

	(void)state;
	parse(msg);
	assert_int_equal(rep.nrcpt, 1);
	assert_string_equal(rep.rcpt[0].diagnostic,
	    "552 Bo\xc3\xaete pleine ?? [31m full");
	assert_int_equal(rep.rcpt[0].reason, DSN_R_MAILBOX_FULL);
}

/* A leading mbox "From " line is not a header. */
static void
mbox_from_line(void **state)
{
	char *m;
	size_t n = strlen(postfix_dsn);

	(void)state;
	m = malloc(n + 64);
	assert_non_null(m);
	snprintf(m, n + 64, "From MAILER-DAEMON Mon Nov 23 10:00:00 2026\n%s",
	    postfix_dsn);
	parse(m);
	assert_int_equal(rep.kind, DSN_KIND_DSN);
	assert_int_equal(rep.nrcpt, 2);
	free(m);
}

/* ---- the corpus ----------------------------------------------------------- */

static char *
slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t cap = 0, n = 0, k;

	if (!f)
		return NULL;
	do {
		if (n + 65536 > cap) {
			char *p = realloc(buf, cap = n + 65536 * 2);

			if (!p) {
				free(buf);
				fclose(f);
				return NULL;
			}
			buf = p;
		}
		k = fread(buf + n, 1, cap - n - 1, f);
		n += k;
	} while (k > 0);
	fclose(f);
	buf[n] = '\0';
	*len = n;
	return buf;
}

/*
 * Each row of expected.tsv (file, recipient_index, status, reply_code,
 * reason, hard_bounce) against the recipient in the same place of the
 * file's report: agreement on hard_bounce.
 */
static void
corpus_agreement(void **state)
{
	const char *dir = getenv("BOUNCE_FIXTURES");
	char path[4096], line[1024], cur[512] = "";
	size_t rows = 0, agree = 0, k = 0, files = 0;
	struct stat st;
	FILE *tsv;

	(void)state;
	if (!dir || !*dir) {
		print_message("# fixtures not found: BOUNCE_FIXTURES is not set\n");
		return;
	}
	snprintf(path, sizeof(path), "%s/expected.tsv", dir);
	if (stat(path, &st) != 0 || !(tsv = fopen(path, "r"))) {
		print_message("# fixtures not found: %s\n", path);
		return;
	}
	while (fgets(line, sizeof(line), tsv)) {
		char *f[6] = { NULL }, *p = line, *msg;
		size_t len = 0, n = 0;
		int want, got;

		line[strcspn(line, "\r\n")] = '\0';
		while (n < 6 && (f[n++] = strsep(&p, "\t")) != NULL)
			;
		if (!f[5] || !strcmp(f[0], "file"))
			continue;
		if (strcmp(cur, f[0])) {
			dsn_report_free(&rep);
			snprintf(cur, sizeof(cur), "%s", f[0]);
			snprintf(path, sizeof(path), "%s/mail/%s", dir, f[0]);
			msg = slurp(path, &len);
			assert_non_null(msg);
			assert_int_equal(dsn_parse(msg, len, NULL, &rep), 0);
			free(msg);
			files++;
			k = 0;
		}
		want = !strcmp(f[5], "true");
		got = k < rep.nrcpt && rep.rcpt[k].cls == DSN_HARD;
		rows++;
		if (want == got)
			agree++;
		else
			print_message("# disagree: %s #%zu: expected %s %s (%s), "
			    "got %s %s %s: %.160s\n", f[0], k + 1,
			    want ? "hard" : "not hard", f[4], f[2],
			    k < rep.nrcpt ? dsn_class_name(rep.rcpt[k].cls) :
			    "no recipient", k < rep.nrcpt ?
			    dsn_reason_name(rep.rcpt[k].reason) : "",
			    k < rep.nrcpt ? rep.rcpt[k].status : "",
			    k < rep.nrcpt ? rep.rcpt[k].diagnostic : "");
		k++;
	}
	fclose(tsv);
	print_message("# agreement with hard_bounce: %zu of %zu recipient rows "
	    "(%.2f%%) in %zu messages\n", agree, rows,
	    rows ? 100.0 * (double)agree / (double)rows : 0.0, files);
	assert_true(rows > 0);
	assert_true(agree * 100 >= rows * 97);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(rfc3464_report, teardown),
		cmocka_unit_test_teardown(rfc3464_variants, teardown),
		cmocka_unit_test_teardown(rfc3464_not_sure, teardown),
		cmocka_unit_test_teardown(arf_complaint, teardown),
		cmocka_unit_test_teardown(arf_redacted, teardown),
		cmocka_unit_test_teardown(auto_reply, teardown),
		cmocka_unit_test_teardown(unrelated_mail, teardown),
		cmocka_unit_test_teardown(ses_notifications, teardown),
		cmocka_unit_test_teardown(text_bounces, teardown),
		cmocka_unit_test_teardown(text_details, teardown),
		cmocka_unit_test_teardown(text_delay, teardown),
		cmocka_unit_test(classify_diagnostics),
		cmocka_unit_test_teardown(limits, teardown),
		cmocka_unit_test_teardown(bad_input, teardown),
		cmocka_unit_test_teardown(fields_are_clean, teardown),
		cmocka_unit_test_teardown(mbox_from_line, teardown),
		cmocka_unit_test_teardown(corpus_agreement, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
