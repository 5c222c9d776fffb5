/* Unit tests for lib/cfgfile.c and lib/conf.c: syntax, binding, errors
 * with file:line:col, defaults, includes, reload comparison. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf.h"

static char dir[256];

static int
setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/lc-test-conf-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	char t[300];
	snprintf(t, sizeof(t), "%s/templates", dir);
	return mkdir(t, 0755);
}

static int
teardown(void **state)
{
	char cmd[300];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd);
}

static const char *
write_file(const char *name, const char *text)
{
	static char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	return path;
}

/* Is there an error message containing all of the given fragments? */
static int
has_error(const struct cfgfile_errors *e, const char *a, const char *b)
{
	for (size_t i = 0; i < e->n; i++)
		if (strstr(e->msgs[i], a) && (!b || strstr(e->msgs[i], b)))
			return 1;
	return 0;
}

static void
dump(const struct cfgfile_errors *e)
{
	for (size_t i = 0; i < e->n; i++)
		fprintf(stderr, "# %s\n", e->msgs[i]);
}

static void
defaults_apply(void **state)
{
	struct cfgfile_errors e = { NULL, 0 };
	const char *p = write_file("min.conf", "templates = templates\n");
	struct conf *c = conf_load(p, &e);

	(void)state;
	dump(&e);
	assert_non_null(c);
	assert_string_equal(c->user, "leadcast");
	assert_string_equal(c->database, "embedded");
	assert_true(conf_db_embedded(c));
	assert_int_equal(c->workers, 4);
	assert_int_equal(c->shutdown_timeout_ms, 10000);
	assert_int_equal(c->http.listen.n, 1);
	assert_string_equal(c->http.listen.v[0], "127.0.0.1:8025");
	assert_int_equal(c->http.max_body_size, 1024 * 1024);
	assert_int_equal(c->http.timeout_ms, 30000);
	/* derived paths: token generated in the state dir */
	assert_true(c->admin_token_generate);
	assert_non_null(strstr(c->admin_token_file, "/admin.token"));
	assert_non_null(strstr(c->pid_file, "/leadcastd.pid"));
	conf_free(c);
}

static void
mailboxes_bind_and_are_checked(void **state)
{
	struct cfgfile_errors e = { NULL, 0 };
	const char *p, *sec = write_file("mb.secret", "s3cret\nignored\n");
	char text[2048];
	struct conf *c, *c2;
	const struct conf_mailbox *b;

	(void)state;
	snprintf(text, sizeof(text),
	    "templates = templates\n"
	    "mail { soft_bounce_limit = 5; soft_bounce_window = 7d }\n"
	    "mailbox \"a\" { protocol = imaps; host = mx.example.com\n"
	    "  user = b@example.com; password_file = \"%s\"\n"
	    "  action = move; move_to = Done; review_folder = Review\n"
	    "  poll = 30s }\n"
	    "mailbox \"b\" { protocol = pop3; host = pop.example.com\n"
	    "  user = u; password = pw; action = seen }\n", sec);
	p = write_file("mb.conf", text);
	c = conf_load(p, &e);
	dump(&e);
	assert_non_null(c);
	assert_int_equal(c->mail.soft_bounce_limit, 5);
	assert_int_equal(c->mail.soft_bounce_window_ms, 7LL * 86400000);
	assert_int_equal(c->nmailboxes, 2);
	b = conf_mailbox_find(c, "a");
	assert_non_null(b);
	assert_int_equal(b->proto, 1);
	assert_string_equal(b->secret, "s3cret");
	assert_string_equal(b->folder, "INBOX");
	assert_int_equal(b->poll_ms, 30000);
	assert_true(b->idle);
	assert_true(b->tls_verify);
	b = conf_mailbox_find(c, "b");
	assert_int_equal(b->proto, 2);
	assert_string_equal(b->secret, "pw");
	/* the same file again: the same mailboxes */
	c2 = conf_load(p, &e);
	assert_non_null(c2);
	assert_true(conf_mailbox_same(conf_mailbox_find(c, "a"),
	    conf_mailbox_find(c2, "a")));
	conf_free(c2);
	conf_free(c);

	/* bad ones: each problem named with its position */
	p = write_file("mbbad.conf",
	    "templates = templates\n"
	    "mailbox \"x\" { protocol = imap4 }\n"
	    "mailbox \"y\" { host = h; user = u; password = p; action = move }\n"
	    "mailbox \"z\" { protocol = pop3; host = h; user = u; password = p\n"
	    "  review_folder = R }\n"
	    "mailbox \"y\" { }\n"
	    "mailbox \"w\" { host = h; user = u; password = p; colour = red }\n");
	assert_null(conf_load(p, &e));
	dump(&e);
	assert_true(has_error(&e, "mbbad.conf:2:", "protocol"));
	assert_true(has_error(&e, "mailbox x: host is required", NULL));
	assert_true(has_error(&e, "mbbad.conf:3:", "needs move_to"));
	assert_true(has_error(&e, "mbbad.conf:5:", "POP3 has no folders"));
	assert_true(has_error(&e, "mbbad.conf:6:", "declared twice"));
	assert_true(has_error(&e, "mbbad.conf:7:", "colour"));
	cfgfile_errors_free(&e);
}

static void
values_bind_and_paths_resolve(void **state)
{
	struct cfgfile_errors e = { NULL, 0 };
	const char *p = write_file("full.conf",
	    "# comment\n"
	    "user = \"mail\"\n"
	    "state_dir = state   # relative\n"
	    "log_level = debug\n"
	    "database = \"postgresql://u@localhost/db\"\n"
	    "admin_token = \"0123456789abcdef0123\"\n"
	    "workers = 8; shutdown_timeout = 1500ms\n"
	    "templates = \"templates\"\n"
	    "http {\n"
	    "  listen = { \"127.0.0.1:9000\",\n"
	    "             \"[::1]:9000\" }\n"
	    "  max_body_size = 64K\n"
	    "  timeout = 2m\n"
	    "  public_url = \"https://leads.example.com\"\n"
	    "}\n");
	struct conf *c = conf_load(p, &e);
	char expect[400];

	(void)state;
	dump(&e);
	assert_non_null(c);
	assert_string_equal(c->user, "mail");
	snprintf(expect, sizeof(expect), "%s/state", dir);
	assert_string_equal(c->state_dir, expect);
	assert_false(conf_db_embedded(c));
	assert_int_equal(c->workers, 8);
	assert_int_equal(c->shutdown_timeout_ms, 1500);
	assert_int_equal(c->http.listen.n, 2);
	assert_string_equal(c->http.listen.v[1], "[::1]:9000");
	assert_int_equal(c->http.max_body_size, 65536);
	assert_int_equal(c->http.timeout_ms, 120000);
	assert_false(c->admin_token_generate);
	conf_free(c);
}

static void
every_error_is_reported_with_position(void **state)
{
	struct cfgfile_errors e = { NULL, 0 };
	const char *p = write_file("bad.conf",
	    "templates = templates\n"
	    "workers = many\n"                  /* line 2 */
	    "colour = blue\n"                   /* line 3 */
	    "log_level = loud\n"                /* line 4 */
	    "http {\n"
	    "  listen = { \"nonsense\" }\n"     /* line 6 */
	    "  timeout = 10 parsecs\n"          /* line 7 */
	    "  max_body_size = -3\n"            /* line 8 */
	    "}\n"
	    "workers = 2\n"                     /* line 10 */
	    "shutdown_timeout = 5fortnights\n");/* line 11 */
	struct conf *c = conf_load(p, &e);

	(void)state;
	dump(&e);
	assert_null(c);
	assert_true(has_error(&e, "bad.conf:2:11:", "workers: expected an "
	    "integer from 1 to 256, got 'many'"));
	assert_true(has_error(&e, "bad.conf:3:1:", "unknown key 'colour'"));
	assert_true(has_error(&e, "bad.conf:4:13:", "log_level: 'loud' is not "
	    "one of: error, warn, info, debug"));
	assert_true(has_error(&e, "bad.conf:6:", "'nonsense' is not host:port"));
	assert_true(has_error(&e, "bad.conf:7:", "unexpected text after the "
	    "value of 'timeout'"));
	assert_true(has_error(&e, "bad.conf:8:", "max_body_size"));
	assert_true(has_error(&e, "bad.conf:10:1:", "'workers' is set twice "
	    "(first at line 2)"));
	assert_true(has_error(&e, "bad.conf:11:", "expected a duration"));
	assert_true(e.n >= 8);
	cfgfile_errors_free(&e);
}

static void
syntax_errors_are_positioned(void **state)
{
	struct cfgfile_errors e = { NULL, 0 };
	struct cfgfile_tree t;
	static const char text[] =
	    "a = \"unterminated\n"
	    "b = { x, , y }\n"
	    "c = $\n"
	    "section {\n"
	    "  d = 1\n";

	(void)state;
	assert_int_equal(cfgfile_parse_string("mem.conf", text, strlen(text),
	    &t, &e), -1);
	dump(&e);
	assert_true(has_error(&e, "mem.conf:1:5:", "unterminated string"));
	assert_true(has_error(&e, "mem.conf:2:", "empty list item"));
	assert_true(has_error(&e, "mem.conf:3:5:", "unexpected character '$'"));
	assert_true(has_error(&e, "mem.conf:4:1:", "not closed"));
	cfgfile_tree_free(&t);
	cfgfile_errors_free(&e);
}

static void
missing_file_is_an_error(void **state)
{
	struct cfgfile_errors e = { NULL, 0 };

	(void)state;
	assert_null(conf_load("/nonexistent/leadcast.conf", &e));
	assert_int_equal(e.n, 1);
	assert_true(has_error(&e, "/nonexistent/leadcast.conf",
	    "No such file"));
	cfgfile_errors_free(&e);
}

static void
includes_are_relative_and_positioned(void **state)
{
	struct cfgfile_errors e = { NULL, 0 };
	struct conf *c;
	const char *p;

	(void)state;
	write_file("part-http.conf", "http {\n  timeout = 7s\n}\n");
	write_file("part-bad.conf", "\n\nworkers = 0\n");
	p = write_file("main.conf", "templates = templates\n"
	    "include \"part-http.conf\"\n");
	c = conf_load(p, &e);
	assert_non_null(c);
	assert_int_equal(c->http.timeout_ms, 7000);
	conf_free(c);
	p = write_file("main2.conf", "templates = templates\n"
	    "include \"part-bad.conf\"\ninclude \"nope.conf\"\n");
	assert_null(conf_load(p, &e));
	dump(&e);
	assert_true(has_error(&e, "part-bad.conf:3:11:", "workers"));
	assert_true(has_error(&e, "main2.conf:3:1:", "cannot open"));
	cfgfile_errors_free(&e);
}

static void
restart_only_changes_are_named(void **state)
{
	struct cfgfile_errors e = { NULL, 0 };
	struct conf *a, *b;
	char out[256];

	(void)state;
	a = conf_load(write_file("a.conf", "templates = templates\n"
	    "log_level = info\nhttp { listen = \"127.0.0.1:1\" }\n"), &e);
	b = conf_load(write_file("b.conf", "templates = templates\n"
	    "log_level = debug\nworkers = 9\n"
	    "http { listen = \"127.0.0.1:2\" }\n"), &e);
	assert_non_null(a);
	assert_non_null(b);
	assert_int_equal(conf_restart_needed(a, b, out, sizeof(out)), 2);
	assert_string_equal(out, "workers, http.listen");
	assert_int_equal(conf_restart_needed(a, a, out, sizeof(out)), 0);
	conf_free(a);
	conf_free(b);
}

static void
value_parsers(void **state)
{
	long ms;
	size_t sz;
	char host[64];
	int port;

	(void)state;
	assert_int_equal(conf_parse_duration("7d", &ms), 0);
	assert_int_equal(ms, 7L * 86400000);
	assert_int_equal(conf_parse_duration("250ms", &ms), 0);
	assert_int_equal(ms, 250);
	assert_int_equal(conf_parse_duration("3", &ms), 0);
	assert_int_equal(ms, 3000);
	assert_int_equal(conf_parse_duration("-1s", &ms), -1);
	assert_int_equal(conf_parse_duration("1y", &ms), -1);
	assert_int_equal(conf_parse_size("2M", &sz), 0);
	assert_int_equal(sz, 2 * 1024 * 1024);
	assert_int_equal(conf_parse_size("1.5M", &sz), -1);
	assert_int_equal(conf_parse_size("99999999999999999999G", &sz), -1);
	assert_int_equal(conf_parse_hostport("[::1]:8025", host, sizeof(host),
	    &port), 0);
	assert_string_equal(host, "::1");
	assert_int_equal(port, 8025);
	assert_int_equal(conf_parse_hostport("::1:8025", host, sizeof(host),
	    &port), -1);
	assert_int_equal(conf_parse_hostport("h:70000", host, sizeof(host),
	    &port), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(defaults_apply),
		cmocka_unit_test(values_bind_and_paths_resolve),
		cmocka_unit_test(every_error_is_reported_with_position),
		cmocka_unit_test(syntax_errors_are_positioned),
		cmocka_unit_test(missing_file_is_an_error),
		cmocka_unit_test(includes_are_relative_and_positioned),
		cmocka_unit_test(restart_only_changes_are_named),
		cmocka_unit_test(value_parsers),
		cmocka_unit_test(mailboxes_bind_and_are_checked),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
