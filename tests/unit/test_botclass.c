/* Unit tests for lib/botclass.c: human, machine or scanner. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "botclass.h"
#include "conf.h"
#include "hit.h"

#define CHROME "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 " \
	"(KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"

static void
builtin_lists(void **state)
{
	struct botclass *b;
	char why[64], err[256];

	(void)state;
	assert_non_null(b = botclass_new(1, NULL, NULL, NULL, NULL, err,
	    sizeof(err)));
	assert_int_equal(botclass_classify(b, CHROME, "198.51.100.7", why,
	    sizeof(why)), HIT_HUMAN);
	assert_string_equal(why, "");
	assert_int_equal(botclass_classify(b, "Mozilla/5.0 (Windows NT 5.1; "
	    "rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)",
	    "66.249.1.1", why, sizeof(why)), HIT_MACHINE);
	assert_string_equal(why, "agent:GoogleImageProxy");
	assert_int_equal(botclass_classify(b, "YahooMailProxy; https://help."
	    "yahoo.com/kb/yahoo-mail-proxy-SLN28749.html", "1.2.3.4", why,
	    sizeof(why)), HIT_MACHINE);
	/* Apple Mail Privacy Protection: the bare agent, Apple's network */
	assert_int_equal(botclass_classify(b, "Mozilla/5.0", "203.0.113.1", why,
	    sizeof(why)), HIT_MACHINE);
	assert_string_equal(why, "agent:=Mozilla/5.0");
	assert_int_equal(botclass_classify(b, CHROME, "17.58.1.2", why,
	    sizeof(why)), HIT_MACHINE);
	assert_string_equal(why, "network:17.0.0.0/8");
	assert_int_equal(botclass_classify(b, CHROME, "::ffff:17.1.1.1", why,
	    sizeof(why)), HIT_MACHINE);
	assert_int_equal(botclass_classify(b, "curl/8.1", "1.2.3.4", why,
	    sizeof(why)), HIT_SCANNER);
	assert_int_equal(botclass_classify(b, "Mozilla/5.0 (compatible; "
	    "Googlebot/2.1)", "1.2.3.4", why, sizeof(why)), HIT_SCANNER);
	assert_int_equal(botclass_classify(b, "", "1.2.3.4", why, sizeof(why)),
	    HIT_SCANNER);
	assert_string_equal(why, "no-agent");
	{
		char big[BOTCLASS_UA_ABSURD + 2];

		memset(big, 'a', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		assert_int_equal(botclass_classify(b, big, "1.2.3.4", why,
		    sizeof(why)), HIT_SCANNER);
		assert_string_equal(why, "long-agent");
	}
	botclass_free(b);
}

static void
configured_lists(void **state)
{
	char *sa[] = { "AcmeGate" }, *sn[] = { "192.0.2.0/24", "2001:db8::/32" };
	char *ma[] = { "=Exact Agent" }, *mn[] = { "198.51.100.128/25" };
	struct conf_strlist sal = { sa, 1 }, snl = { sn, 2 }, mal = { ma, 1 },
	    mnl = { mn, 1 };
	struct botclass *b;
	char why[64], err[256];

	(void)state;
	assert_non_null(b = botclass_new(0, &mal, &mnl, &sal, &snl, err,
	    sizeof(err)));
	/* built-in lists off: curl is a human now */
	assert_int_equal(botclass_classify(b, "curl/8", "1.1.1.1", why,
	    sizeof(why)), HIT_HUMAN);
	assert_int_equal(botclass_classify(b, "x acmegate y", "1.1.1.1", why,
	    sizeof(why)), HIT_SCANNER);
	assert_int_equal(botclass_classify(b, CHROME, "192.0.2.200", why,
	    sizeof(why)), HIT_SCANNER);
	assert_string_equal(why, "network:192.0.2.0/24");
	assert_int_equal(botclass_classify(b, CHROME, "2001:db8:1::5", why,
	    sizeof(why)), HIT_SCANNER);
	assert_int_equal(botclass_classify(b, CHROME, "2001:db9::5", why,
	    sizeof(why)), HIT_HUMAN);
	assert_int_equal(botclass_classify(b, CHROME, "198.51.100.129", why,
	    sizeof(why)), HIT_MACHINE);
	assert_int_equal(botclass_classify(b, CHROME, "198.51.100.127", why,
	    sizeof(why)), HIT_HUMAN);
	assert_int_equal(botclass_classify(b, "exact agent", "1.1.1.1", why,
	    sizeof(why)), HIT_MACHINE);
	assert_int_equal(botclass_classify(b, "exact agent 2", "1.1.1.1", why,
	    sizeof(why)), HIT_HUMAN);
	botclass_free(b);
}

static void
bad_entries_named(void **state)
{
	char *bad_net[] = { "10.0.0.0/33" }, *bad_agent[] = { "=" };
	struct conf_strlist n = { bad_net, 1 }, a = { bad_agent, 1 };
	char err[256];

	(void)state;
	assert_null(botclass_new(1, NULL, NULL, NULL, &n, err, sizeof(err)));
	assert_non_null(strstr(err, "scanner_networks: '10.0.0.0/33'"));
	assert_null(botclass_new(1, &a, NULL, NULL, NULL, err, sizeof(err)));
	assert_non_null(strstr(err, "machine_agents"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(builtin_lists),
		cmocka_unit_test(configured_lists),
		cmocka_unit_test(bad_entries_named),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
