/*
 * Unit tests for lib/cond.c: an evaluation table, parse errors with their
 * positions, SQL text and parameters, local time against the C library,
 * limits and thread safety.
 *
 * tests/unit/test_cond_sql.c includes this file with COND_CASES_ONLY
 * defined to run the same evaluation table against PostgreSQL, so the
 * table, its column map and load_lead() come first.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "buf.h"
#include "cond.h"

/* 2024-03-10T06:30:00Z, a Sunday: Detroit 01:30 EST (DST starts at 07:00Z),
 * Berlin 07:30 CET, Sydney 17:30 AEDT. */
#define T0      1710052200
#define MON14   1710165600      /* 2024-03-11T14:00Z: Detroit Mon 10:00 EDT */
#define DAY     86400
#define DET     "America/Detroit"
#define BER     "Europe/Berlin"
#define SYD     "Australia/Sydney"

struct eval_case {
	const char *cond;
	const char *lead;       /* JSON with ' for " */
	int want;
	time_t now;             /* 0: T0 */
	const char *tz;
};

#define WORKHOURS "hour >= 9 and hour < 17 and " \
	"weekday in [\"mon\",\"tue\",\"wed\",\"thu\",\"fri\"]"
#define ROUTE1 "country in [\"US\", \"CA\"] and budget >= 10000"
#define ROUTE2 "score > 50 and not (source == \"partner\")"
#define ROUTE3 "email matches \"*@acme.com\" or fields.plan == \"enterprise\""
#define ROUTE4 "exists phone and title contains \"director\""
#define ROUTE5 "company_size >= 50 and industry in [\"software\", \"finance\"]"
#define OLD "created_at < now - 7d"

static const struct eval_case eval_cases[] = {
	/* the examples */
	{ ROUTE1, "{'country':'US','budget':10000}", 1, 0, NULL },
	{ ROUTE1, "{'country':'ca','budget':20000}", 1, 0, NULL },
	{ ROUTE1, "{'country':'MX','budget':20000}", 0, 0, NULL },
	{ ROUTE1, "{'country':'US','budget':9999.5}", 0, 0, NULL },
	{ ROUTE1, "{'country':'US'}", 0, 0, NULL },
	{ ROUTE2, "{'score':51,'source':'web'}", 1, 0, NULL },
	{ ROUTE2, "{'score':51,'source':'Partner'}", 0, 0, NULL },
	{ ROUTE2, "{'score':50,'source':'web'}", 0, 0, NULL },
	{ ROUTE2, "{'score':80}", 1, 0, NULL },
	{ ROUTE3, "{'email':'Bob@ACME.COM'}", 1, 0, NULL },
	{ ROUTE3, "{'email':'bob@acme.com.evil.org'}", 0, 0, NULL },
	{ ROUTE3, "{'email':'bob@acmeXcom'}", 0, 0, NULL },
	{ ROUTE3, "{'email':'x@y.org','fields':{'plan':'Enterprise'}}", 1, 0, NULL },
	{ ROUTE4, "{'phone':'+1555','title':'Sales Director, EMEA'}", 1, 0, NULL },
	{ ROUTE4, "{'phone':'','title':'Director'}", 0, 0, NULL },
	{ ROUTE4, "{'title':'director'}", 0, 0, NULL },
	{ ROUTE4, "{'phone':'1','title':'Manager'}", 0, 0, NULL },
	{ WORKHOURS, "{}", 1, MON14, DET },
	{ WORKHOURS, "{}", 1, MON14, BER },
	{ WORKHOURS, "{}", 0, MON14, SYD },
	{ WORKHOURS, "{}", 0, T0, DET },
	{ OLD, "{'created_at':1709360999}", 1, 0, NULL },
	{ OLD, "{'created_at':1709533800}", 0, 0, NULL },
	{ OLD, "{'created_at':'2024-03-01T00:00:00Z'}", 1, 0, NULL },
	{ OLD, "{'created_at':'2024-03-05T00:00:00+05:00'}", 0, 0, NULL },
	{ OLD, "{}", 0, 0, NULL },
	{ "age > 2h", "{'created_at':1710041400}", 1, 0, NULL },
	{ "age > 2h", "{'created_at':1710048600}", 0, 0, NULL },
	{ "now - created_at <= 1h", "{'created_at':1710048600}", 1, 0, NULL },
	{ "created_at > now - 1h30m", "{'created_at':1710048600}", 1, 0, NULL },
	{ ROUTE5, "{'company_size':50,'industry':'Software'}", 1, 0, NULL },
	{ ROUTE5, "{'company_size':49,'industry':'finance'}", 0, 0, NULL },
	/* each operator, numbers, missing fields */
	{ "budget == 10000", "{'budget':10000}", 1, 0, NULL },
	{ "budget != 10000", "{'budget':10000}", 0, 0, NULL },
	{ "budget != 10000", "{'budget':5}", 1, 0, NULL },
	{ "budget != 10000", "{}", 0, 0, NULL },
	{ "not (budget == 10000)", "{}", 1, 0, NULL },
	{ "budget < 10", "{'budget':9.99}", 1, 0, NULL },
	{ "budget <= 10", "{'budget':10}", 1, 0, NULL },
	{ "budget > 10", "{'budget':10}", 0, 0, NULL },
	{ "budget >= 10.5", "{'budget':10.5}", 1, 0, NULL },
	{ "10 < budget", "{'budget':11}", 1, 0, NULL },
	{ "score >= -5", "{'score':-5}", 1, 0, NULL },
	{ "not score > 1", "{'score':0}", 1, 0, NULL },
	{ "not score > 1", "{}", 1, 0, NULL },
	{ "budget > 100 and budget < 200 or score == 1", "{'score':1}", 1, 0, NULL },
	{ "budget > 100 and (budget < 200 or score == 1)", "{'score':1}", 0, 0, NULL },
	/* strings: ASCII case-insensitive */
	{ "country == \"us\"", "{'country':'US'}", 1, 0, NULL },
	{ "country != \"us\"", "{'country':'Us'}", 0, 0, NULL },
	{ "country < \"m\"", "{'country':'CA'}", 1, 0, NULL },
	{ "country >= \"M\"", "{'country':'us'}", 1, 0, NULL },
	{ "country == \"\"", "{'country':''}", 1, 0, NULL },
	{ "title == 'it\\'s'", "{'title':'It\\u0027s'}", 1, 0, NULL },
	{ "fields.note == \"CAF\xc3\x89\"", "{'fields':{'note':'caf\xc3\xa9'}}", 0, 0, NULL },
	{ "fields.note == \"CAF\xc3\xa9\"", "{'fields':{'note':'caf\xc3\xa9'}}", 1, 0, NULL },
	{ "fields.note == \"caf\xc3\xa9\"", "{'fields':{'note':'CAF\xc3\x89'}}", 0, 0, NULL },
	{ "title == \"\xc3\xbc" "ber\"", "{'title':'\xc3\x9c" "BER'}", 0, 0, NULL },
	{ "title contains \"\xc3\xbc\"", "{'title':'\xc3\x9c" "BER'}", 0, 0, NULL },
	{ "fields[\"utm-source\"] == \"google\"", "{'fields':{'utm-source':'Google'}}", 1, 0, NULL },
	/* contains */
	{ "title contains \"VP\"", "{'title':'svp of sales'}", 1, 0, NULL },
	{ "title contains \"vp\"", "{'title':'director'}", 0, 0, NULL },
	{ "fields.title contains \"vp\"", "{'fields':{'title':42}}", 0, 0, NULL },
	{ "title contains \"\"", "{'title':'x'}", 1, 0, NULL },
	{ "title contains \"\"", "{}", 0, 0, NULL },
	{ "fields.tags contains \"VIP\"", "{'fields':{'tags':['new','vip']}}", 1, 0, NULL },
	{ "fields.tags contains \"vip\"", "{'fields':{'tags':['vipx',1,null]}}", 0, 0, NULL },
	{ "fields.tags contains \"1\"", "{'fields':{'tags':[1,true,['1']]}}", 0, 0, NULL },
	{ "fields.tags contains \"1\"", "{'fields':{'tags':[1,'1']}}", 1, 0, NULL },
	/* globs */
	{ "email matches \"a?c@*\"", "{'email':'abc@x'}", 1, 0, NULL },
	{ "email matches \"a?c@*\"", "{'email':'ac@x'}", 0, 0, NULL },
	{ "email matches \"[abc]*\"", "{'email':'Bob'}", 1, 0, NULL },
	{ "email matches \"[!abc]*\"", "{'email':'bob'}", 0, 0, NULL },
	{ "email matches \"*.[a-c]om\"", "{'email':'x.Bom'}", 1, 0, NULL },
	{ "email matches \"a\\\\*b\"", "{'email':'a*b'}", 1, 0, NULL },
	{ "email matches \"a\\\\*b\"", "{'email':'axb'}", 0, 0, NULL },
	{ "email matches \"[]x]*\"", "{'email':']'}", 1, 0, NULL },
	{ "fields.code matches \"50%_off*\"", "{'fields':{'code':'50%_OFF-now'}}", 1, 0, NULL },
	{ "fields.code matches \"50%_off*\"", "{'fields':{'code':'50xyoff'}}", 0, 0, NULL },
	{ "fields.code matches \"*'\\\\\\\\$(^)|{.}+*\"", "{'fields':{'code':'x\\u0027\\\\$(^)|{.}+'}}", 1, 0, NULL },
	{ "fields.note matches \"caf?\"", "{'fields':{'note':'caf\xc3\xa9'}}", 1, 0, NULL },
	{ "fields.note matches \"*\xc3\xa9?\"", "{'fields':{'note':'caf\xc3\xa9X'}}", 1, 0, NULL },
	{ "fields.note matches \"*\xc3\xa9?\"", "{'fields':{'note':'caf\xc3\xa9XY'}}", 0, 0, NULL },
	{ "fields.note matches \"*a*a*a*a*a*b\"", "{'fields':{'note':'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'}}", 0, 0, NULL },
	/* exists, booleans, constants */
	{ "exists fields.plan", "{'fields':{'plan':null}}", 0, 0, NULL },
	{ "exists fields.plan", "{'fields':{'plan':false}}", 1, 0, NULL },
	{ "exists fields.plan", "{'fields':{'plan':''}}", 0, 0, NULL },
	{ "not exists fields.plan", "{}", 1, 0, NULL },
	{ "exists budget", "{'budget':0}", 1, 0, NULL },
	{ "fields.vip == true", "{'fields':{'vip':true}}", 1, 0, NULL },
	{ "fields.vip == true", "{'fields':{'vip':'true'}}", 0, 0, NULL },
	{ "fields.vip != true", "{'fields':{'vip':false}}", 1, 0, NULL },
	{ "vip == false", "{'vip':false}", 1, 0, NULL },
	{ "true", "{}", 1, 0, NULL },
	{ "not true", "{}", 0, 0, NULL },
	{ "false or exists email", "{'email':'a'}", 1, 0, NULL },
	{ "NOT (country == \"us\") AND score > 1", "{'country':'fr','score':2}", 1, 0, NULL },
	{ "country == \"us\"\n  and\n  score > 1", "{'country':'US','score':2}", 1, 0, NULL },
	{ "fields.a == 1 or fields.b == 1", "{'fields':[1]}", 0, 0, NULL },
	/* mixed types and numeric strings */
	{ "fields.employees > 100", "{'fields':{'employees':'250'}}", 1, 0, NULL },
	{ "fields.employees > 100", "{'fields':{'employees':'2.5e2'}}", 1, 0, NULL },
	{ "fields.employees > 100", "{'fields':{'employees':'250 '}}", 0, 0, NULL },
	{ "fields.employees > 100", "{'fields':{'employees':'abc'}}", 0, 0, NULL },
	{ "fields.employees > 100", "{'fields':{'employees':'0x100'}}", 0, 0, NULL },
	{ "fields.employees > 100", "{'fields':{'employees':'1e100'}}", 0, 0, NULL },
	{ "fields.employees > 100", "{'fields':{'employees':'1e99'}}", 1, 0, NULL },
	{ "fields.employees > 100", "{'fields':{'employees':'1234567890123456789012345678901'}}", 0, 0, NULL },
	{ "fields.employees > 100", "{'fields':{'employees':'-'}}", 0, 0, NULL },
	{ "fields.employees < 100", "{'fields':{'employees':'.5'}}", 0, 0, NULL },
	{ "zip > 100", "{'zip':'1e100'}", 0, 0, NULL },
	{ "fields.employees == \"250\"", "{'fields':{'employees':250}}", 1, 0, NULL },
	{ "fields.employees == \"250.0\"", "{'fields':{'employees':'250'}}", 0, 0, NULL },
	{ "fields.employees == 250", "{'fields':{'employees':'250.0'}}", 1, 0, NULL },
	{ "fields.employees != \"250\"", "{'fields':{'employees':251}}", 1, 0, NULL },
	{ "fields.x > 1e20", "{'fields':{'x':'123456789012345678901234567890'}}", 1, 0, NULL },
	{ "fields.x == 0.1", "{'fields':{'x':'0.1'}}", 1, 0, NULL },
	{ "zip == 2000", "{'zip':'02000'}", 1, 0, NULL },
	{ "zip in [2000, \"2001\"]", "{'zip':'2001'}", 1, 0, NULL },
	{ "budget == \"10000\"", "{'budget':10000}", 1, 0, NULL },
	{ "budget == \"lots\"", "{'budget':10000}", 0, 0, NULL },
	{ "country == 5", "{'country':'us'}", 0, 0, NULL },
	{ "fields.x < 5", "{'fields':{'x':true}}", 0, 0, NULL },
	{ "fields.x in [1, \"a\", true]", "{'fields':{'x':true}}", 1, 0, NULL },
	{ "fields.x in [1, \"a\", true]", "{'fields':{'x':'A'}}", 1, 0, NULL },
	{ "fields.x in [1, \"a\", true]", "{'fields':{'x':1.0}}", 1, 0, NULL },
	{ "fields.x in [1, \"a\", true]", "{'fields':{'x':2}}", 0, 0, NULL },
	/* times */
	{ "created_at >= 2024-03-01", "{'created_at':1709251200}", 1, 0, NULL },
	{ "created_at < 2024-03-01T00:00:00-05:00", "{'created_at':1709251200}", 1, 0, NULL },
	{ "created_at == 1709251200", "{'created_at':1709251200}", 1, 0, NULL },
	{ "fields.trial_end < now + 3d", "{'fields':{'trial_end':'2024-03-12 00:00:00'}}", 1, 0, NULL },
	{ "fields.trial_end < now + 3d", "{'fields':{'trial_end':'2024-03-14'}}", 0, 0, NULL },
	{ "fields.trial_end < now + 3d", "{'fields':{'trial_end':'soon'}}", 0, 0, NULL },
	{ "fields.trial_end > now", "{'fields':{'trial_end':1710052201}}", 1, 0, NULL },
	{ "fields.trial_end > now", "{'fields':{'trial_end':'2024-02-30T00:00:00Z'}}", 0, 0, NULL },
	{ "fields.trial_end == 2024-03-01", "{'fields':{'trial_end':'2024-02-30T00:00:00Z'}}", 1, 0, NULL },
	{ "fields.seen == 2024-03-10T06:30:00.5Z", "{'fields':{'seen':'2024-03-10T06:30:00.5Z'}}", 1, 0, NULL },
	{ "fields.seen > 2024-03-10T06:30:00+0100", "{'fields':{'seen':'2024-03-10T05:30:01Z'}}", 1, 0, NULL },
	{ "fields.seen < now - 1w", "{'fields':{'seen':'2024-03-03T01:30:00-05'}}", 0, 0, NULL },
	{ "zip < now", "{'zip':'2024-03-01'}", 1, 0, NULL },
	/* local time across DST changes, in several zones */
	{ "hour == 1", "{}", 1, T0, DET },
	{ "hour == 3", "{}", 1, 1710055800, DET },
	{ "hour == 7", "{}", 1, T0, BER },
	{ "hour == 8", "{}", 1, 1710055800, BER },
	{ "hour == 1", "{}", 1, 1711845000, BER },
	{ "hour == 3", "{}", 1, 1711848600, BER },
	{ "hour == 1 and weekday == \"sun\"", "{}", 1, 1730611800, DET },
	{ "hour == 1 and weekday == \"sun\"", "{}", 1, 1730615400, DET },
	{ "weekday == \"sun\" and hour == 23", "{}", 1, 1710127800, DET },
	{ "weekday == \"mon\" and hour == 4", "{}", 1, 1710127800, BER },
	{ "weekday == \"Monday\"", "{}", 1, 1710127800, NULL },
	{ "hour in [2, 3] and weekday == \"sun\"", "{}", 1, 1712417400, SYD },
	{ "hour == 2", "{}", 1, 1712421000, SYD },
	{ "hour == 8", "{}", 1, 2224756800, DET },
	{ "hour == 14", "{}", 1, 2224756800, BER },
	{ "hour == 7", "{}", 1, 2237976000, DET },
	{ "weekday >= \"sat\"", "{}", 1, T0, NULL },
	{ "weekday < \"wed\"", "{}", 0, T0, NULL },
	{ "hour < 9 or hour >= 17", "{}", 1, T0, "UTC" },
};
#define NCASES (sizeof(eval_cases) / sizeof(eval_cases[0]))

static const struct cond_sqlcol test_cols[] = {
	{ "country", "l.country", COND_SQL_TEXT },
	{ "budget", "l.budget", COND_SQL_NUMERIC },
	{ "score", "l.score", COND_SQL_NUMERIC },
	{ "source", "l.source", COND_SQL_TEXT },
	{ "email", "l.email", COND_SQL_TEXT },
	{ "phone", "l.phone", COND_SQL_TEXT },
	{ "title", "l.title", COND_SQL_TEXT },
	{ "company_size", "l.company_size", COND_SQL_NUMERIC },
	{ "industry", "l.industry", COND_SQL_TEXT },
	{ "zip", "l.zip", COND_SQL_TEXT },
	{ "vip", "l.vip", COND_SQL_BOOL },
	{ "created_at", "l.created_at", COND_SQL_TIME },
};
#define NCOLS (sizeof(test_cols) / sizeof(test_cols[0]))
static const struct cond_sqlmap test_map = { test_cols, NCOLS, "l.fields" };

/* The lead of a table entry: ' stands for ". Caller decrefs. */
static json_t *
load_lead(const char *s)
{
	char buf[1024];
	json_error_t je;
	json_t *j;
	size_t i;

	for (i = 0; s[i] && i < sizeof(buf) - 1; i++)
		buf[i] = s[i] == '\'' ? '"' : s[i];
	buf[i] = '\0';
	if (!(j = json_loads(buf, 0, &je)))
		fail_msg("bad test lead %s: %s", s, je.text);
	return j;
}

static struct cond_env
case_env(const struct eval_case *tc)
{
	struct cond_env env = { tc->now ? tc->now : T0, tc->tz };

	return env;
}

#ifndef COND_CASES_ONLY

static struct cond *
parse_ok(const char *src)
{
	struct cond_error e;
	struct cond *c = NULL;

	if (cond_parse(src, &c, &e) != 0)
		fail_msg("cond_parse(%s): %s", src, e.msg);
	return c;
}

static void
eval_table(void **state)
{
	size_t i, failures = 0;

	(void)state;
	for (i = 0; i < NCASES; i++) {
		const struct eval_case *tc = &eval_cases[i];
		struct cond_env env = case_env(tc);
		struct cond *c = parse_ok(tc->cond);
		json_t *lead = load_lead(tc->lead);
		int got = cond_eval(c, lead, &env);

		if (got != tc->want) {
			print_error("case %zu: %s on %s (tz %s): got %d, want %d\n",
			    i, tc->cond, tc->lead, tc->tz ? tc->tz : "UTC", got,
			    tc->want);
			failures++;
		}
		json_decref(lead);
		cond_free(c);
	}
	assert_int_equal(failures, 0);
}

/* ---- parse errors ------------------------------------------------------- */

struct err_case {
	const char *src;
	int line, col;
	const char *msg;        /* the message must contain this */
};

static const struct err_case err_cases[] = {
	{ "budget >= ", 1, 11, "expected a value after '>='" },
	{ "country in [\"US\"] and budget >= and x", 1, 33, "expected a value after '>=', found 'and'" },
	{ "", 1, 1, "empty condition" },
	{ "   \n  ", 2, 3, "empty condition" },
	{ "x and", 1, 3, "write 'exists x'" },
	{ "x == 1 and", 1, 11, "expected a condition after 'and'" },
	{ "(a == 1", 1, 8, "expected ')' to close the '(' at 1:1" },
	{ "a == 1\n and ((b == 2)\n", 3, 1, "expected ')' to close the '(' at 2:6" },
	{ "a == 1)", 1, 7, "unexpected ')' without a matching '('" },
	{ "a == 1 b == 2", 1, 8, "unexpected 'b' after a complete condition" },
	{ "a == \"abc", 1, 6, "unterminated string" },
	{ "a == 'abc", 1, 6, "unterminated string" },
	{ "a == \"a\\qb\"", 1, 8, "unknown escape '\\q'" },
	{ "a => 1", 1, 3, "unknown operator '=>' (did you mean '>='?)" },
	{ "a = 1", 1, 3, "did you mean '=='?" },
	{ "a === 1", 1, 3, "unknown operator '==='" },
	{ "a <> 1", 1, 3, "did you mean '!='?" },
	{ "!(a == 1)", 1, 1, "did you mean 'not'?" },
	{ "a == 1 && b == 2", 1, 8, "did you mean 'and'?" },
	{ "a == 1 || b == 2", 1, 8, "did you mean 'or'?" },
	{ "a ~ 1", 1, 3, "unexpected character '~'" },
	{ "a in \"US\"", 1, 6, "expected a list after 'in'" },
	{ "a in []", 1, 7, "empty list" },
	{ "a in [1, 2", 1, 11, "expected ']' to close the '[' at 1:6" },
	{ "a in [1 2]", 1, 9, "expected ',' or ']'" },
	{ "a in [b]", 1, 7, "a list holds numbers, strings, true or false" },
	{ "a == [1]", 1, 6, "a list [...] can only follow 'in'" },
	{ "a == b", 1, 6, "not with another field" },
	{ "1 == 2", 1, 1, "must be a field" },
	{ "a contains 5", 1, 12, "'contains' needs a string" },
	{ "a matches \"[a\"", 1, 11, "bad pattern" },
	{ "a matches \"[z-a]\"", 1, 11, "bad pattern" },
	{ "a > true", 1, 5, "'>' does not apply to true or false" },
	{ "a == 7d", 1, 6, "a duration is not a time" },
	{ "a < now - 7", 1, 11, "expected a duration (such as 7d) after '-'" },
	{ "a < now - 7y", 1, 12, "unknown duration unit 'y'" },
	{ "a < now - 1.5h", 1, 11, "a duration is a whole number" },
	{ "now - a > 5", 1, 11, "compares with a duration" },
	{ "age contains \"x\"", 1, 5, "does not apply to a time difference" },
	{ "hour == \"9\"", 1, 9, "hour is a number" },
	{ "hour == 24", 1, 9, "hour is a whole number 0-23" },
	{ "weekday == \"funday\"", 1, 12, "unknown weekday \"funday\"" },
	{ "weekday in [\"mon\", 1]", 1, 20, "weekday is compared with a day name" },
	{ "a == 2024-13-01", 1, 6, "malformed time" },
	{ "a == 2024-01-01T25:00Z", 1, 6, "malformed time" },
	{ "a == null", 1, 6, "null is not a value" },
	{ "exists hour", 1, 8, "expected a field after 'exists', found 'hour'" },
	{ "fields.", 1, 8, "expected a custom field name after 'fields.'" },
	{ "fields == 1", 1, 8, "expected '.name'" },
	{ "fields[1] == 1", 1, 8, "expected a field name in quotes" },
	{ "a == 1e999", 1, 6, "number out of range" },
	{ "a == \"\xff\"", 1, 6, "invalid UTF-8" },
	{ "a == 1 and\n\tb @ 2", 2, 4, "unexpected character '@'" },
	{ "a == \x01", 1, 6, "unexpected byte 0x01" },
	{ "and", 1, 1, "expected a condition, found 'and'" },
	{ "a == 1 or or", 1, 11, "expected a condition after 'or', found 'or'" },
};

static void
parse_errors(void **state)
{
	size_t i, failures = 0;

	(void)state;
	for (i = 0; i < sizeof(err_cases) / sizeof(err_cases[0]); i++) {
		const struct err_case *tc = &err_cases[i];
		struct cond_error e;
		struct cond *c = NULL;
		char at[32];

		if (cond_parse(tc->src, &c, &e) == 0) {
			print_error("'%s' parsed\n", tc->src);
			cond_free(c);
			failures++;
			continue;
		}
		snprintf(at, sizeof(at), " at %d:%d", tc->line, tc->col);
		if (e.line != tc->line || e.col != tc->col ||
		    !strstr(e.msg, tc->msg) || !strstr(e.msg, at) ||
		    strlen(e.msg) + 1 >= sizeof(e.msg)) {
			print_error("'%s': got %d:%d \"%s\"; want %d:%d \"%s\"\n",
			    tc->src, e.line, e.col, e.msg, tc->line, tc->col,
			    tc->msg);
			failures++;
		}
	}
	assert_int_equal(failures, 0);
}

static void
error_show_points_at_column(void **state)
{
	const char *src = "score > 5 and\n\tcountry => \"US\"";
	struct buf out = BUF_INIT;
	struct cond_error e;
	struct cond *c;

	(void)state;
	assert_int_equal(cond_parse(src, &c, &e), -1);
	assert_int_equal(e.offset, 23);
	assert_int_equal(e.line, 2);
	assert_int_equal(e.col, 10);
	cond_error_show(src, &e, &out);
	assert_string_equal(buf_str(&out), "\tcountry => \"US\"\n\t        ^\n");
	buf_free(&out);
}

static void
limits(void **state)
{
	char *src = malloc(COND_MAX_SRC + 100);
	struct cond_error e;
	struct cond *c;
	size_t i, n;

	(void)state;
	/* length */
	memset(src, ' ', COND_MAX_SRC + 1);
	memcpy(src, "a == 1", 6);
	src[COND_MAX_SRC + 1] = '\0';
	assert_int_equal(cond_parse(src, &c, &e), -1);
	assert_non_null(strstr(e.msg, "longer than 8192 bytes"));
	src[COND_MAX_SRC] = '\0';
	assert_int_equal(cond_parse(src, &c, &e), 0);
	cond_free(c);
	/* depth: 32 levels parse, 33 do not */
	for (n = 32; n <= 33; n++) {
		for (i = 0; i < n; i++)
			src[i] = '(';
		memcpy(src + n, "a == 1", 6);
		for (i = 0; i < n; i++)
			src[n + 6 + i] = ')';
		src[2 * n + 6] = '\0';
		assert_int_equal(cond_parse(src, &c, &e), n == 32 ? 0 : -1);
		if (n == 32)
			cond_free(c);
		else
			assert_non_null(strstr(e.msg, "nested too deeply"));
	}
	for (i = 0; i < 33; i++)
		memcpy(src + 4 * i, "not ", 4);
	strcpy(src + 4 * 33, "a == 1");
	assert_int_equal(cond_parse(src, &c, &e), -1);
	assert_int_equal(e.col, 4 * 32 + 1);
	/* list length */
	for (n = 256; n <= 257; n++) {
		strcpy(src, "a in [");
		for (i = 0; i < n; i++)
			strcat(src, i ? ",1" : "1");
		strcat(src, "]");
		assert_int_equal(cond_parse(src, &c, &e), n == 256 ? 0 : -1);
		if (n == 256)
			cond_free(c);
		else
			assert_non_null(strstr(e.msg, "longer than 256 items"));
	}
	free(src);
}

/* ---- fields, time zones ------------------------------------------------- */

static void
collect(void *arg, const char *name)
{
	struct buf *b = arg;

	buf_printf(b, "%s;", name);
}

static void
fields_are_listed_once(void **state)
{
	struct cond *c = parse_ok("country == \"x\" and fields.plan == 1 or "
	    "country == \"y\" and age > 1d and exists fields[\"a b\"] and "
	    "hour > 3 and created_at > now");
	struct buf b = BUF_INIT;

	(void)state;
	cond_fields(c, collect, &b);
	assert_string_equal(buf_str(&b), "country;fields.plan;created_at;"
	    "fields.a b;");
	buf_free(&b);
	cond_free(c);
}

static void
tz_check(void **state)
{
	char err[100];
	struct cond *c = parse_ok("hour >= 0");
	struct cond_env env = { T0, "Nowhere/Atlantis" };
	json_t *lead = json_object();

	(void)state;
	assert_int_equal(cond_tz_check(NULL, err, sizeof(err)), 0);
	assert_int_equal(cond_tz_check("UTC", err, sizeof(err)), 0);
	assert_int_equal(cond_tz_check(DET, err, sizeof(err)), 0);
	assert_int_equal(cond_tz_check("Nowhere/Atlantis", err, sizeof(err)), -1);
	assert_string_equal(err, "unknown time zone 'Nowhere/Atlantis'");
	assert_int_equal(cond_tz_check("../../etc/passwd", err, sizeof(err)), -1);
	assert_int_equal(cond_tz_check("/etc/localtime", err, sizeof(err)), -1);
	assert_int_equal(cond_tz_check("", err, sizeof(err)), -1);
	assert_int_equal(cond_eval(c, lead, &env), -1);
	env.tz = BER;
	assert_int_equal(cond_eval(c, lead, &env), 1);
	json_decref(lead);
	cond_free(c);
}

/*
 * cond_localtime against the C library's localtime_r over 1900-2100 in
 * zones with odd rules (negative DST, half hours, 45 minutes, southern
 * hemisphere, permanent changes). Single-threaded, so TZ may be set here.
 */
static void
localtime_matches_libc(void **state)
{
	static const char *const zones[] = { DET, BER, SYD, "Asia/Kolkata",
		"America/St_Johns", "Pacific/Chatham", "Europe/Dublin",
		"Africa/Casablanca", "America/Sao_Paulo", "Asia/Tehran",
		"Antarctica/Troll", "Australia/Lord_Howe", "Pacific/Apia",
		"America/Godthab", "Europe/London", "Asia/Tokyo", "UTC" };
	char *old = getenv("TZ") ? strdup(getenv("TZ")) : NULL;
	size_t z, bad = 0, n = 0;
	int64_t t;

	(void)state;
	for (z = 0; z < sizeof(zones) / sizeof(zones[0]); z++) {
		char path[256];
		FILE *f;

		/* Zones come and go with tzdata releases; the first three stay. */
		snprintf(path, sizeof(path), "/usr/share/zoneinfo/%s", zones[z]);
		if (z >= 3 && !(f = fopen(path, "rb")))
			continue;
		if (z >= 3)
			fclose(f);
		setenv("TZ", zones[z], 1);
		tzset();
		for (t = -2208988800LL; t < 4102444800LL; t += 86400 * 3 + 3607) {
			struct tm a, b;
			time_t tt = (time_t)t;
			long off;

			localtime_r(&tt, &a);
			assert_int_equal(cond_localtime(zones[z], tt, &b, &off), 0);
			n++;
			if (a.tm_year != b.tm_year || a.tm_mon != b.tm_mon ||
			    a.tm_mday != b.tm_mday || a.tm_hour != b.tm_hour ||
			    a.tm_min != b.tm_min || a.tm_sec != b.tm_sec ||
			    a.tm_wday != b.tm_wday || a.tm_yday != b.tm_yday ||
			    a.tm_isdst != b.tm_isdst || a.tm_gmtoff != off) {
				if (bad++ < 5)
					print_error("%s at %lld: libc %d-%02d-%02d "
					    "%02d:%02d dst %d off %ld, cond %d-%02d-"
					    "%02d %02d:%02d dst %d off %ld\n",
					    zones[z], (long long)t, a.tm_year + 1900,
					    a.tm_mon + 1, a.tm_mday, a.tm_hour,
					    a.tm_min, a.tm_isdst, a.tm_gmtoff,
					    b.tm_year + 1900, b.tm_mon + 1,
					    b.tm_mday, b.tm_hour, b.tm_min,
					    b.tm_isdst, off);
			}
		}
	}
	if (old)
		setenv("TZ", old, 1);
	else
		unsetenv("TZ");
	tzset();
	free(old);
	assert_true(n > 100000);
	assert_int_equal(bad, 0);
}

struct thread_arg {
	const char *tz;
	int hour;
	int ok;
};

static void *
eval_thread(void *p)
{
	struct thread_arg *a = p;
	char src[32];
	struct cond *c;
	struct cond_error e;
	struct cond_env env = { T0, a->tz };
	int i;

	snprintf(src, sizeof(src), "hour == %d", a->hour);
	if (cond_parse(src, &c, &e) != 0)
		return NULL;
	a->ok = 1;
	for (i = 0; i < 2000; i++)
		if (cond_eval(c, NULL, &env) != 1)
			a->ok = 0;
	cond_free(c);
	return NULL;
}

static void
threads_share_zones(void **state)
{
	struct thread_arg args[] = {
		{ "Asia/Kathmandu", 12, 0 }, { "America/Los_Angeles", 22, 0 },
		{ "Asia/Kathmandu", 12, 0 }, { "Europe/Paris", 7, 0 },
		{ "America/Los_Angeles", 22, 0 }, { "Europe/Paris", 7, 0 },
	};
	pthread_t th[6];
	size_t i;

	(void)state;
	for (i = 0; i < 6; i++)
		assert_int_equal(pthread_create(&th[i], NULL, eval_thread,
		    &args[i]), 0);
	for (i = 0; i < 6; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(args[i].ok, 1);
	}
}

/* ---- SQL ---------------------------------------------------------------- */

/* Run cond_to_sql on src from $first; returns the SQL (caller frees). */
static char *
to_sql(const char *src, const struct cond_env *env, int first,
    struct cond_params *pr)
{
	struct cond *c = parse_ok(src);
	struct buf b = BUF_INIT;
	char err[200];
	int next = first;

	if (cond_to_sql(c, &test_map, env, &next, &b, pr, err, sizeof(err)))
		fail_msg("cond_to_sql(%s): %s", src, err);
	assert_int_equal((size_t)(next - first), pr->n);
	cond_free(c);
	return buf_steal(&b);
}

static void
sql_text_and_params(void **state)
{
	struct cond_env env = { T0, DET };
	struct cond_params pr = { 0 };
	char *sql;

	(void)state;
	sql = to_sql("country == \"US\"", &env, 1, &pr);
	assert_string_equal(sql, "COALESCE((lower((l.country) COLLATE \"C\")) "
	    "COLLATE \"C\" = $1::text, FALSE)");
	assert_int_equal(pr.n, 1);
	assert_string_equal(pr.v[0], "us");
	free(sql);
	cond_params_free(&pr);

	sql = to_sql("budget >= 10000 and not exists phone or vip == true",
	    &env, 4, &pr);
	assert_string_equal(sql, "((COALESCE(((l.budget)::float8) >= "
	    "$4::float8, FALSE) AND (NOT COALESCE(length(l.phone) > 0, FALSE))) "
	    "OR COALESCE(((l.vip)) = $5::boolean, FALSE))");
	assert_int_equal(pr.n, 2);
	assert_string_equal(pr.v[0], "10000");
	assert_string_equal(pr.v[1], "true");
	free(sql);
	cond_params_free(&pr);

	sql = to_sql("created_at < now - 7d and hour >= 9", &env, 1, &pr);
	assert_string_equal(sql, "(COALESCE((l.created_at) < "
	    "to_timestamp($1::float8), FALSE) AND COALESCE((EXTRACT(hour FROM "
	    "(to_timestamp($2::float8) AT TIME ZONE $3::text))::float8) >= "
	    "$4::float8, FALSE))");
	assert_int_equal(pr.n, 4);
	assert_string_equal(pr.v[0], "1709447400");
	assert_string_equal(pr.v[1], "1710052200");
	assert_string_equal(pr.v[2], DET);
	assert_string_equal(pr.v[3], "9");
	free(sql);
	cond_params_free(&pr);

	/* glob: every character but ASCII letters and digits is escaped */
	sql = to_sql("email matches \"*@Acme.co?[!a-c\\\\]]\"", &env, 1, &pr);
	assert_string_equal(pr.v[0], "^.*\\u0040acme\\u002eco.[^\\u0061-\\u0063"
	    "\\u005d]$");
	free(sql);
	cond_params_free(&pr);

	/* a custom key is one parameter, however often it is used */
	sql = to_sql("fields.plan == \"a\" or fields.plan == \"b\"", &env, 1, &pr);
	assert_int_equal(pr.n, 3);
	assert_string_equal(pr.v[0], "plan");
	assert_non_null(strstr(sql, "l.fields -> $1::text"));
	assert_null(strstr(sql, "$4"));
	free(sql);
	cond_params_free(&pr);

	/* comparisons no column type can satisfy use no parameter */
	sql = to_sql("country == 5 or vip > 3 or budget contains \"x\"", &env,
	    1, &pr);
	assert_string_equal(sql, "(COALESCE((CASE WHEN (l.country) ~ "
	    "'^-?[0-9]{1,30}([.][0-9]{1,30})?([eE][-+]?[0-9]{1,2})?$' THEN "
	    "(l.country)::float8 END) = $1::float8, FALSE) OR FALSE OR FALSE)");
	assert_int_equal(pr.n, 1);
	free(sql);
	cond_params_free(&pr);
}

static void
sql_errors_leave_output_alone(void **state)
{
	static const struct cond_sqlmap nocustom = { test_cols, NCOLS, NULL };
	struct cond_params pr = { 0 };
	struct cond_env env = { T0, "Nowhere/Atlantis" };
	struct buf b = BUF_INIT;
	struct cond *c;
	char err[200];
	int next = 3;

	(void)state;
	buf_puts(&b, "x AND ");
	c = parse_ok("country == \"US\" and nosuch == 1");
	assert_int_equal(cond_to_sql(c, &test_map, NULL, &next, &b, &pr, err,
	    sizeof(err)), -1);
	assert_string_equal(err, "unknown field 'nosuch'");
	assert_string_equal(buf_str(&b), "x AND ");
	assert_int_equal(pr.n, 0);
	assert_int_equal(next, 3);
	cond_free(c);

	c = parse_ok("country == \"US\" and fields.plan == 1");
	assert_int_equal(cond_to_sql(c, &nocustom, NULL, &next, &b, &pr, err,
	    sizeof(err)), -1);
	assert_string_equal(err, "custom field 'fields.plan' is not available "
	    "here");
	cond_free(c);

	c = parse_ok("weekday == \"mon\"");
	assert_int_equal(cond_to_sql(c, &test_map, &env, &next, &b, &pr, err,
	    sizeof(err)), -1);
	assert_string_equal(err, "unknown time zone 'Nowhere/Atlantis'");
	cond_free(c);

	b.limit = 40;
	c = parse_ok("country == \"US\" and fields.plan == 1");
	assert_int_equal(cond_to_sql(c, &test_map, NULL, &next, &b, &pr, err,
	    sizeof(err)), -1);
	assert_string_equal(err, "SQL text too long");
	assert_string_equal(buf_str(&b), "x AND ");
	assert_int_equal(b.overflow, 0);
	assert_int_equal(pr.n, 0);
	cond_free(c);
	buf_free(&b);
	cond_params_free(&pr);
}

/* Quoted literals the generated SQL may contain; nothing else. */
static int
allowed_literal(const char *s, size_t n)
{
	static const char *const ok[] = { "string", "number", "boolean",
		"array", "null", "{}", "-",
		"^-?[0-9]{1,30}([.][0-9]{1,30})?([eE][-+]?[0-9]{1,2})?$",
		"^([1-9][0-9]{3})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
		"(?:[T ]([01][0-9]|2[0-3]):([0-5][0-9])(?::([0-5][0-9]|60)"
		"([.][0-9]{1,9})?)?(Z|([-+])([0-9]{2})(?::?([0-9]{2}))?)?)?$" };
	size_t i;

	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (strlen(ok[i]) == n && !memcmp(ok[i], s, n))
			return 1;
	return 0;
}

/* For every table condition: each parameter is used, no value or custom
 * field name shows in the text, and no quoted literal but ours. */
static void
sql_never_splices_values(void **state)
{
	size_t i, k, failures = 0;

	(void)state;
	for (i = 0; i < NCASES; i++) {
		struct cond_env env = case_env(&eval_cases[i]);
		struct cond_params pr = { 0 };
		char *sql = to_sql(eval_cases[i].cond, &env, 1, &pr), *q, *e;
		char ph[32];

		for (k = 0; k < pr.n; k++) {
			snprintf(ph, sizeof(ph), "$%zu:", k + 1);
			if (!strstr(sql, ph)) {
				print_error("%s: $%zu unused\n", eval_cases[i].cond,
				    k + 1);
				failures++;
			}
			if (strlen(pr.v[k]) >= 3 &&
			    strspn(pr.v[k], "0123456789.e-+") != strlen(pr.v[k]) &&
			    strstr(sql, pr.v[k])) {
				print_error("%s: '%s' appears in %s\n",
				    eval_cases[i].cond, pr.v[k], sql);
				failures++;
			}
		}
		for (q = strchr(sql, '\''); q; q = strchr(e + 1, '\'')) {
			e = strchr(q + 1, '\'');
			assert_non_null(e);
			if (!allowed_literal(q + 1, (size_t)(e - q - 1))) {
				print_error("%s: literal %.*s\n", eval_cases[i].cond,
				    (int)(e - q + 1), q);
				failures++;
			}
		}
		free(sql);
		cond_params_free(&pr);
	}
	assert_int_equal(failures, 0);
}

static void
sql_keeps_distinctive_values_out(void **state)
{
	struct cond_params pr = { 0 };
	char *sql;

	(void)state;
	sql = to_sql("fields.zz_secret_key == \"Robert'); DROP TABLE x;--\" or "
	    "budget > 123457.25 or country in [\"qqq\", 987654] or "
	    "fields[\"we'ird\"] matches \"*%_\\\\x\" or created_at < "
	    "2031-05-06T07:08:09Z", NULL, 1, &pr);
	assert_null(strstr(sql, "zz_secret"));
	assert_null(strstr(sql, "DROP"));
	assert_null(strstr(sql, "123457"));
	assert_null(strstr(sql, "qqq"));
	assert_null(strstr(sql, "987654"));
	assert_null(strstr(sql, "we'ird"));
	assert_null(strstr(sql, "1935817"));    /* 2031-05-06T07:08:09Z */
	assert_null(strchr(sql, ';'));
	free(sql);
	cond_params_free(&pr);
}

/* ---- cond_parse_time: TIME values given outside conditions ---------------- */

static void
parse_time_whole_strings(void **state)
{
	static const struct { const char *s; long long t; } good[] = {
		{ "2024-05-01", 1714521600 },
		{ "2024-05-01T09:30Z", 1714555800 },
		{ "2024-05-01T09:30:00Z", 1714555800 },
		{ "2024-05-01 09:30:00", 1714555800 },
		{ "2024-05-01T09:30:00.5Z", 1714555800 },
		{ "2024-05-01T11:30:00+02:00", 1714555800 },
		{ "2024-05-01T11:30:00+0200", 1714555800 },
		{ "2024-05-01T11:30:00+02", 1714555800 },
		{ "2024-05-01T05:00:00-04:30", 1714555800 },
		{ "2024-02-29T00:00:00Z", 1709164800 },
		{ "2024-02-30", 1709251200 },   /* rolls over, as in conditions */
		{ "1970-01-01T00:00:00Z", 0 },
	};
	static const char *const bad[] = {
		"", "2024", "2024-05", "2024-5-01", "2024-05-01T",
		"2024-05-01T9:30", "2024-05-01T09", "2024-05-01T24:00:00Z",
		"2024-13-01", "2024-00-10", "2024-05-01T09:60Z",
		"2024-05-01T09:30:00.Z", "2024-05-01T09:30:00Zjunk", "now",
		"1714555800", " 2024-05-01", "2024-05-01 ", "yesterday",
	};
	time_t t;

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		t = -1;
		if (cond_parse_time(good[i].s, &t) != 0 ||
		    (long long)t != good[i].t)
			fail_msg("%s: got %lld, want %lld", good[i].s,
			    (long long)t, good[i].t);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (cond_parse_time(bad[i], &t) == 0)
			fail_msg("accepted '%s'", bad[i]);
	assert_int_equal(cond_parse_time(NULL, &t), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(eval_table),
		cmocka_unit_test(parse_errors),
		cmocka_unit_test(error_show_points_at_column),
		cmocka_unit_test(limits),
		cmocka_unit_test(fields_are_listed_once),
		cmocka_unit_test(tz_check),
		cmocka_unit_test(localtime_matches_libc),
		cmocka_unit_test(threads_share_zones),
		cmocka_unit_test(sql_text_and_params),
		cmocka_unit_test(sql_errors_leave_output_alone),
		cmocka_unit_test(sql_never_splices_values),
		cmocka_unit_test(sql_keeps_distinctive_values_out),
		cmocka_unit_test(parse_time_whole_strings),
	};

	printf("# %zu evaluation cases, %zu parse error cases\n", NCASES,
	    sizeof(err_cases) / sizeof(err_cases[0]));
	return cmocka_run_group_tests(tests, NULL, NULL);
}

#endif /* COND_CASES_ONLY */
