/* Unit tests for lib/spool.c: appends, replay in chunks, torn lines. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "spool.h"

static char dir[] = "/tmp/lc-spool-XXXXXX";

static void
append_replay_done(void **state)
{
	char path[256], rpath[300];
	struct spool *s;
	struct buf b;
	ssize_t used;
	off_t off = 0;

	(void)state;
	snprintf(path, sizeof(path), "%s/a.spool", dir);
	snprintf(rpath, sizeof(rpath), "%s.replay", path);
	assert_non_null(s = spool_new(path));
	assert_int_equal(spool_replay_begin(s), 0);     /* nothing yet */
	assert_int_equal(spool_append(s, "one\ntwo\n", 8), 0);
	assert_int_equal(spool_pending(s), 8);
	assert_int_equal(spool_replay_begin(s), 1);
	assert_int_equal(access(path, F_OK), -1);       /* renamed */
	/* appends meanwhile go to a new file */
	assert_int_equal(spool_append(s, "three\n", 6), 0);
	buf_init(&b, 0);
	used = spool_replay_read(s, off, &b, 5);        /* "one\n" fits */
	assert_int_equal(used, 4);
	assert_string_equal(b.data, "one\n");
	off += used;
	buf_reset(&b);
	used = spool_replay_read(s, off, &b, 64);
	assert_int_equal(used, 4);
	assert_string_equal(b.data, "two\n");
	off += used;
	assert_int_equal(spool_pending(s), 6);
	assert_int_equal(spool_replay_read(s, off, &b, 64), 0);
	assert_int_equal(spool_replay_done(s), 0);
	assert_int_equal(access(rpath, F_OK), -1);
	/* the next replay takes what came meanwhile */
	assert_int_equal(spool_replay_begin(s), 1);
	buf_reset(&b);
	assert_int_equal(spool_replay_read(s, 0, &b, 64), 6);
	assert_string_equal(b.data, "three\n");
	assert_int_equal(spool_replay_done(s), 0);
	buf_free(&b);
	spool_free(s);
}

static void
torn_tail_skipped(void **state)
{
	char path[256];
	struct spool *s;
	struct buf b;

	(void)state;
	snprintf(path, sizeof(path), "%s/b.spool", dir);
	assert_non_null(s = spool_new(path));
	assert_int_equal(spool_append(s, "whole\ntor", 9), 0);
	assert_int_equal(spool_replay_begin(s), 1);
	buf_init(&b, 0);
	assert_int_equal(spool_replay_read(s, 0, &b, 64), 6);
	assert_string_equal(b.data, "whole\n");
	buf_reset(&b);
	assert_int_equal(spool_replay_read(s, 6, &b, 64), 3);  /* skipped */
	assert_int_equal(b.len, 0);
	assert_int_equal(spool_replay_read(s, 9, &b, 64), 0);
	assert_int_equal(spool_replay_done(s), 0);
	buf_free(&b);
	spool_free(s);
}

static void
unwritable_fails(void **state)
{
	struct spool *s = spool_new("/nonexistent-dir/x.spool");

	(void)state;
	assert_int_equal(spool_append(s, "x\n", 2), -1);
	spool_free(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(append_replay_done),
		cmocka_unit_test(torn_tail_skipped),
		cmocka_unit_test(unwritable_fails),
	};
	int rc;
	char cmd[128];

	if (!mkdtemp(dir))
		return 1;
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		rc = rc ? rc : 1;
	return rc;
}
