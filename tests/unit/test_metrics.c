/* Unit tests for lib/metrics.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "buf.h"
#include "metrics.h"

static double
seven(void *arg)
{
	(void)arg;
	return 7;
}

static void
renders_prometheus_text(void **state)
{
	struct buf b = BUF_INIT;
	char labels[128];

	(void)state;
	metrics_reset();
	metrics_labels(labels, sizeof(labels), "route", "healthz", "status",
	    "200", (const char *)NULL);
	assert_string_equal(labels, "route=\"healthz\",status=\"200\"");
	metric_add(metrics_counter("t_requests_total", "Requests.", labels), 2);
	metric_add(metrics_counter("t_requests_total", "Requests.", labels), 1);
	metrics_gauge_func("t_depth", "Depth.", NULL, seven, NULL);
	metrics_render(&b);
	assert_non_null(strstr(b.data, "# HELP t_requests_total Requests.\n"
	    "# TYPE t_requests_total counter\n"
	    "t_requests_total{route=\"healthz\",status=\"200\"} 3\n"));
	assert_non_null(strstr(b.data, "# TYPE t_depth gauge\nt_depth 7\n"));
	buf_free(&b);
	metrics_reset();
}

static void
label_values_are_escaped(void **state)
{
	char labels[128];

	(void)state;
	metrics_labels(labels, sizeof(labels), "path", "a\"b\\c\nd",
	    (const char *)NULL);
	assert_string_equal(labels, "path=\"a\\\"b\\\\c\\nd\"");
}

static void
same_series_same_pointer(void **state)
{
	(void)state;
	metrics_reset();
	assert_ptr_equal(metrics_counter("t_x", "X.", "a=\"1\""),
	    metrics_counter("t_x", "X.", "a=\"1\""));
	assert_ptr_not_equal(metrics_counter("t_x", "X.", "a=\"1\""),
	    metrics_counter("t_x", "X.", "a=\"2\""));
	metrics_reset();
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(renders_prometheus_text),
		cmocka_unit_test(label_values_are_escaped),
		cmocka_unit_test(same_series_same_pointer),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
