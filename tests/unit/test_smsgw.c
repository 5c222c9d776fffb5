/* Unit tests for lib/smsgw.c: sms.conf, requests, answers, reports and
 * who may call the gateway endpoints. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "smsgw.h"

static struct smsgw_conf *
load(const char *text, struct cfgfile_errors *errs)
{
	return smsgw_load_string("sms.conf", text, strlen(text), errs);
}

/* Load text expecting errors; the first must contain want. */
static void
load_fails(const char *text, const char *want)
{
	struct cfgfile_errors errs = { NULL, 0 };
	struct smsgw_conf *c = load(text, &errs);

	if (c)
		fail_msg("loaded, expected '%s'", want);
	assert_true(errs.n > 0);
	if (!strstr(errs.msgs[0], want))
		fail_msg("expected '%s' in '%s'", want, errs.msgs[0]);
	cfgfile_errors_free(&errs);
}

static const char CONF[] =
    "default = \"kannel\"\n"
    "offer_segments = 1\n"
    "gateway \"kannel\" {\n"
    "  type = kannel\n"
    "  url = \"http://127.0.0.1:13013/cgi-bin/sendsms\"\n"
    "  username = \"lc\"\n"
    "  password = \"p&ss word\"\n"
    "  sender = \"Leadcast\"\n"
    "  dlr_mask = 31\n"
    "  secret = \"0123456789abcdef0123\"\n"
    "  failover = \"twilio\"\n"
    "  rate = 5\n"
    "}\n"
    "gateway \"twilio\" {\n"
    "  type = http\n"
    "  url = \"https://api.example.com/Accounts/{{username}}/Messages.json\"\n"
    "  username = \"AC123\"\n"
    "  password = \"tok\"\n"
    "  sender = \"+15555550100\"\n"
    "  body = \"To={{to}}&From={{from}}&Body={{text}}&StatusCallback={{dlr_url}}\"\n"
    "  headers = { \"Authorization: Basic {{basic_auth}}\" }\n"
    "  success = \"\\\"status\\\": *\\\"(queued|accepted)\\\"\"\n"
    "  message_id = \"\\\"sid\\\": *\\\"([A-Za-z0-9]+)\\\"\"\n"
    "  allow_from = { \"127.0.0.1\", \"10.1.0.0/16\", \"::1\" }\n"
    "  dlr_msgid = \"MessageSid\"\n"
    "  dlr_status = \"MessageStatus\"\n"
    "  dlr_delivered = { \"delivered\" }\n"
    "  dlr_failed = { \"failed\", \"undelivered\" }\n"
    "  teams = { \"east\" }\n"
    "}\n"
    "gateway \"vonage\" {\n"
    "  type = http\n"
    "  url = \"https://rest.example.com/sms/json\"\n"
    "  body_format = json\n"
    "  body = \"{\\\"to\\\": \\\"{{to_digits}}\\\", \\\"text\\\": \\\"{{text}}\\\"}\"\n"
    "  secret = \"abcdefabcdefabcdef\"\n"
    "  reps = { \"ann\" }\n"
    "}\n"
    "gateway \"att\" {\n"
    "  type = email2sms\n"
    "  address = \"{{national}}@txt.att.example\"\n"
    "}\n";

static void
loads_gateways(void **state)
{
	struct cfgfile_errors errs = { NULL, 0 };
	struct smsgw_conf *c = load(CONF, &errs);
	const struct smsgw *k, *t;

	(void)state;
	if (!c)
		fail_msg("%s", errs.msgs[0]);
	assert_int_equal(c->n, 4);
	assert_int_equal(c->offer_segments, 1);
	assert_int_equal(c->lease_ms, 60000);
	k = smsgw_find(c, "kannel");
	t = smsgw_find(c, "twilio");
	assert_non_null(k);
	assert_int_equal(k->type, SMSGW_KANNEL);
	assert_int_equal(k->rate, 5);
	assert_int_equal(k->timeout_ms, 10000);
	assert_int_equal(k->retries, 3);
	assert_int_equal(k->failover_i, (size_t)(t - c->v));
	assert_int_equal(t->type, SMSGW_HTTP);
	assert_int_equal(t->failover_i, (size_t)-1);
	assert_int_equal(smsgw_find(c, "att")->type, SMSGW_EMAIL2SMS);
	assert_true(c->has_email2sms);
	assert_null(smsgw_find(c, "nope"));
	/* the gateway for a rep, a team, or the default */
	assert_string_equal(smsgw_for(c, "ann", "east")->name, "vonage");
	assert_string_equal(smsgw_for(c, "bob", "east")->name, "twilio");
	assert_string_equal(smsgw_for(c, "bob", "west")->name, "kannel");
	assert_string_equal(smsgw_for(c, NULL, NULL)->name, "kannel");
	assert_string_equal(smsgw_type_name(SMSGW_EMAIL2SMS), "email2sms");
	smsgw_conf_free(c);
}

static void
refuses_bad_config(void **state)
{
	(void)state;
	load_fails("", "no gateway");
	load_fails("gateway \"a\" { url = \"x\" }\n", "type is required");
	load_fails("gateway \"a\" { type = carrier_pigeon }\n", "not one of");
	load_fails("gateway \"a\" { type = kannel; username = u; secret = "
	    "\"0123456789abcdef\" }\n", "sms.conf:1:1: gateway a: url");
	load_fails("gateway \"a\" { type = kannel; url = \"http://h/s?x=1\"; "
	    "username = u; secret = \"0123456789abcdef\" }\n", "without a query");
	load_fails("gateway \"a\" { type = http; url = \"http://h/{{#x}}\"; "
	    "secret = \"0123456789abcdef\" }\n", "gateway a: url:");
	load_fails("gateway \"a\" { type = http; url = \"http://h/\"; secret = "
	    "\"short\" }\n", "at least 16");
	load_fails("gateway \"a\" { type = http; url = \"http://h/\" }\n",
	    "set secret");
	load_fails("gateway \"a\" { type = http; url = \"http://h/\"; "
	    "allow_from = { \"10.0.0.0/33\" } }\n", "allow_from");
	load_fails("gateway \"a\" { type = http; url = \"http://h/\"; "
	    "allow_from = { \"::1\" }\n; success = \"(\" }\n",
	    "sms.conf:2:13: gateway a: success: not a regular expression");
	load_fails("gateway \"a\" { type = http; url = \"http://h/\"; "
	    "allow_from = { \"::1\" }; message_id = \"sid\" }\n",
	    "first group");
	load_fails("gateway \"a\" { type = http; url = \"http://h/\"; "
	    "allow_from = { \"::1\" }; headers = { \"NoColon\" } }\n",
	    "headers");
	load_fails("gateway \"a\" { type = http; method = GET; url = "
	    "\"http://h/\"; allow_from = { \"::1\" }; body = \"x\" }\n",
	    "GET has no body");
	load_fails("gateway \"a\" { type = email2sms }\n", "address is required");
	load_fails("gateway \"a\" { type = email2sms; address = \"x@y\"; "
	    "sender = \"ThisIsTooLongForAnId\" }\n", "sender");
	load_fails("gateway \"a\" { type = email2sms; address = \"x@y\"; "
	    "failover = \"b\" }\n", "failover: no gateway 'b'");
	load_fails("gateway \"a\" { type = email2sms; address = \"x@y\"; "
	    "failover = \"b\" }\ngateway \"b\" { type = email2sms; address = "
	    "\"x@z\"; failover = \"a\" }\ndefault = a\n", "comes back");
	load_fails("gateway \"a\" { type = email2sms; address = \"x@y\" }\n"
	    "gateway \"b\" { type = email2sms; address = \"x@z\" }\n",
	    "say which is the default");
	load_fails("default = c\ngateway \"a\" { type = email2sms; address = "
	    "\"x@y\" }\n", "sms.conf:1:11: default: no gateway 'c'");
	load_fails("gateway \"a b\" { type = email2sms; address = \"x@y\" }\n",
	    "gateway names");
	load_fails("gateway \"a\" { type = email2sms; address = \"x@y\"; "
	    "colour = red }\n", "unknown key 'colour'");
	load_fails("gateway \"a\" { type = email2sms; address = \"x@y\" }\n"
	    "gateway \"a\" { type = email2sms; address = \"x@y\" }\n",
	    "declared twice");
	load_fails("gateway \"a\" { type = email2sms; address = \"x@y\"; "
	    "secret_file = \"/nonexistent/secret\" }\n", "cannot read");
}

static void
kannel_request(void **state)
{
	struct cfgfile_errors errs = { NULL, 0 };
	struct smsgw_conf *c = load(CONF, &errs);
	struct smsgw_msg m = { 42, "+13135550142", "Hi & bye: 100%", 0, 1,
	    "http://lc/sms/dlr/kannel?id=42&status=%d" };
	struct smsgw_req r;
	char err[200];

	(void)state;
	assert_non_null(c);
	smsgw_req_init(&r);
	assert_int_equal(smsgw_request(smsgw_find(c, "kannel"), &m, &r, err,
	    sizeof(err)), 0);
	assert_false(r.post);
	assert_string_equal(buf_str(&r.url), "http://127.0.0.1:13013/cgi-bin/"
	    "sendsms?username=lc&password=p%26ss%20word&from=Leadcast&"
	    "to=%2B13135550142&text=Hi%20%26%20bye%3A%20100%25&charset=UTF-8&"
	    "coding=0&dlr-mask=31&dlr-url=http%3A%2F%2Flc%2Fsms%2Fdlr%2Fkannel"
	    "%3Fid%3D42%26status%3D%25d");
	assert_int_equal(r.body.len, 0);
	smsgw_req_free(&r);
	/* UCS-2 says so; no dlr_url, no dlr-mask */
	m.ucs2 = 1;
	m.dlr_url = "";
	smsgw_req_init(&r);
	assert_int_equal(smsgw_request(smsgw_find(c, "kannel"), &m, &r, err,
	    sizeof(err)), 0);
	assert_non_null(strstr(buf_str(&r.url), "&coding=2"));
	assert_null(strstr(buf_str(&r.url), "dlr-mask"));
	smsgw_req_free(&r);
	smsgw_conf_free(c);
}

static void
http_request(void **state)
{
	struct cfgfile_errors errs = { NULL, 0 };
	struct smsgw_conf *c = load(CONF, &errs);
	struct smsgw_msg m = { 7, "+447911123456", "Say \"hi\"\n& go",
	    0, 1, "https://lc.example/sms/dlr/twilio?secret=s&id=7" };
	struct smsgw_req r;
	char err[200];

	(void)state;
	assert_non_null(c);
	smsgw_req_init(&r);
	assert_int_equal(smsgw_request(smsgw_find(c, "twilio"), &m, &r, err,
	    sizeof(err)), 0);
	assert_true(r.post);
	assert_string_equal(buf_str(&r.url),
	    "https://api.example.com/Accounts/AC123/Messages.json");
	assert_string_equal(buf_str(&r.body), "To=%2B447911123456&From="
	    "%2B15555550100&Body=Say%20%22hi%22%0A%26%20go&StatusCallback="
	    "https%3A%2F%2Flc.example%2Fsms%2Fdlr%2Ftwilio%3Fsecret%3Ds%26id%3D7");
	assert_string_equal(r.content_type, "application/x-www-form-urlencoded");
	/* base64("AC123:tok") */
	assert_string_equal(buf_str(&r.headers),
	    "Authorization: Basic QUMxMjM6dG9r\n");
	smsgw_req_free(&r);
	/* JSON bodies escape */
	smsgw_req_init(&r);
	assert_int_equal(smsgw_request(smsgw_find(c, "vonage"), &m, &r, err,
	    sizeof(err)), 0);
	assert_string_equal(buf_str(&r.body), "{\"to\": \"447911123456\", "
	    "\"text\": \"Say \\\"hi\\\"\\n& go\"}");
	assert_string_equal(r.content_type, "application/json");
	smsgw_req_free(&r);
	/* not for email2sms */
	smsgw_req_init(&r);
	assert_int_equal(smsgw_request(smsgw_find(c, "att"), &m, &r, err,
	    sizeof(err)), -1);
	smsgw_req_free(&r);
	smsgw_conf_free(c);
}

static void
email2sms_address(void **state)
{
	struct cfgfile_errors errs = { NULL, 0 };
	struct smsgw_conf *c = load(CONF, &errs);
	struct smsgw_msg m = { 7, "+13135550142", "x", 0, 1, "" };
	struct buf b;
	char err[200];

	(void)state;
	buf_init(&b, 0);
	assert_int_equal(smsgw_address(smsgw_find(c, "att"), &m, &b, err,
	    sizeof(err)), 0);
	assert_string_equal(buf_str(&b), "3135550142@txt.att.example");
	buf_reset(&b);
	assert_int_equal(smsgw_address(smsgw_find(c, "kannel"), &m, &b, err,
	    sizeof(err)), -1);
	buf_free(&b);
	smsgw_conf_free(c);
}

static void
answers(void **state)
{
	struct cfgfile_errors errs = { NULL, 0 };
	struct smsgw_conf *c = load(CONF, &errs);
	const struct smsgw *k = smsgw_find(c, "kannel"),
	    *t = smsgw_find(c, "twilio"), *v = smsgw_find(c, "vonage");
	char id[64], why[300];
	const char *ok = "{\"sid\": \"SM123abc\", \"status\": \"queued\"}";

	(void)state;
	assert_int_equal(smsgw_response(k, 202, "0: Accepted for delivery", 24,
	    id, sizeof(id), why, sizeof(why)), SMSGW_SENT);
	assert_int_equal(smsgw_response(k, 202, "3: Queued for later delivery",
	    28, id, sizeof(id), why, sizeof(why)), SMSGW_SENT);
	assert_int_equal(smsgw_response(k, 0, "", 0, id, sizeof(id), why,
	    sizeof(why)), SMSGW_RETRY);
	assert_non_null(strstr(why, "no answer"));
	assert_int_equal(smsgw_response(k, 503, "busy", 4, id, sizeof(id), why,
	    sizeof(why)), SMSGW_RETRY);
	assert_int_equal(smsgw_response(k, 403, "Authorization failed", 20, id,
	    sizeof(id), why, sizeof(why)), SMSGW_REJECTED);
	assert_string_equal(why, "HTTP 403: Authorization failed");
	assert_int_equal(smsgw_response(k, 429, "", 0, id, sizeof(id), why,
	    sizeof(why)), SMSGW_RETRY);
	assert_int_equal(smsgw_response(t, 201, ok, strlen(ok), id, sizeof(id),
	    why, sizeof(why)), SMSGW_SENT);
	assert_string_equal(id, "SM123abc");
	assert_int_equal(smsgw_response(t, 200, "{\"status\": \"failed\"}", 20,
	    id, sizeof(id), why, sizeof(why)), SMSGW_REJECTED);
	assert_string_equal(id, "");
	/* no success pattern: any 2xx will do */
	assert_int_equal(smsgw_response(v, 200, "whatever", 8, id, sizeof(id),
	    why, sizeof(why)), SMSGW_SENT);
	smsgw_conf_free(c);
}

static void
reports_and_callers(void **state)
{
	struct cfgfile_errors errs = { NULL, 0 };
	struct smsgw_conf *c = load(CONF, &errs);
	const struct smsgw *k = smsgw_find(c, "kannel"),
	    *t = smsgw_find(c, "twilio"), *a = smsgw_find(c, "att");

	(void)state;
	assert_int_equal(smsgw_dlr_status(k, "1"), SMSGW_DLR_DELIVERED);
	assert_int_equal(smsgw_dlr_status(k, "2"), SMSGW_DLR_FAILED);
	assert_int_equal(smsgw_dlr_status(k, "16"), SMSGW_DLR_FAILED);
	assert_int_equal(smsgw_dlr_status(k, "8"), SMSGW_DLR_PENDING);
	assert_int_equal(smsgw_dlr_status(k, "4"), SMSGW_DLR_PENDING);
	assert_int_equal(smsgw_dlr_status(t, "delivered"), SMSGW_DLR_DELIVERED);
	assert_int_equal(smsgw_dlr_status(t, "undelivered"), SMSGW_DLR_FAILED);
	assert_int_equal(smsgw_dlr_status(t, "1"), SMSGW_DLR_PENDING);
	assert_int_equal(smsgw_dlr_status(t, "sent"), SMSGW_DLR_PENDING);
	/* a secret: only with it */
	assert_true(smsgw_authorized(k, "0123456789abcdef0123", "192.0.2.1"));
	assert_false(smsgw_authorized(k, "0123456789abcdef012", "127.0.0.1"));
	assert_false(smsgw_authorized(k, "", "127.0.0.1"));
	assert_false(smsgw_authorized(k, NULL, "127.0.0.1"));
	/* an allow-list: by address and network */
	assert_true(smsgw_authorized(t, NULL, "127.0.0.1"));
	assert_true(smsgw_authorized(t, NULL, "10.1.200.3"));
	assert_true(smsgw_authorized(t, NULL, "::ffff:10.1.0.9"));
	assert_true(smsgw_authorized(t, NULL, "::1"));
	assert_false(smsgw_authorized(t, NULL, "10.2.0.1"));
	assert_false(smsgw_authorized(t, NULL, "127.0.0.2"));
	assert_false(smsgw_authorized(t, NULL, "garbage"));
	assert_false(smsgw_authorized(t, NULL, NULL));
	/* neither: nobody */
	assert_false(smsgw_authorized(a, "anything", "127.0.0.1"));
	smsgw_conf_free(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(loads_gateways),
		cmocka_unit_test(refuses_bad_config),
		cmocka_unit_test(kannel_request),
		cmocka_unit_test(http_request),
		cmocka_unit_test(email2sms_address),
		cmocka_unit_test(answers),
		cmocka_unit_test(reports_and_callers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
