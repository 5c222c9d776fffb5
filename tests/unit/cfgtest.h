/*
 * cfgtest - helpers shared by the unit tests that load configuration
 * files from disk (test_campaign, test_form): a temporary directory per
 * test program holding a fresh subdirectory per test, files written into
 * it, and checks on the "file:line:col: message" errors reported. Include
 * after <cmocka.h>; call cfgtest_setup() and cfgtest_teardown() from the
 * group's setup and teardown.
 */
#ifndef LEADCAST_CFGTEST_H
#define LEADCAST_CFGTEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cfgfile.h"

static char cfgtest_tmp[256];
static int cfgtest_ndirs;

/* Make the program's directory, /tmp/lc-test-TAG-XXXXXX. 0 or -1. */
static inline int
cfgtest_setup(const char *tag)
{
	snprintf(cfgtest_tmp, sizeof(cfgtest_tmp), "/tmp/lc-test-%s-XXXXXX",
	    tag);
	return mkdtemp(cfgtest_tmp) ? 0 : -1;
}

/* Remove it with everything in it. 0 or -1. */
static inline int
cfgtest_teardown(void)
{
	char cmd[300];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", cfgtest_tmp);
	return system(cmd) == 0 ? 0 : -1;
}

/* A new empty directory for one test; its path (static until the next
 * call). */
static inline const char *
new_dir(void)
{
	static char d[300];

	snprintf(d, sizeof(d), "%s/d%d", cfgtest_tmp, ++cfgtest_ndirs);
	assert_int_equal(mkdir(d, 0755), 0);
	return d;
}

/* Write dir/name with text; returns its path (static until next call). */
static inline const char *
write_file(const char *dir, const char *name, const char *text)
{
	static char path[600];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
	return path;
}

static inline void
dump(const struct cfgfile_errors *e)
{
	for (size_t i = 0; i < e->n; i++)
		print_message("# %s\n", e->msgs[i]);
}

/* The error starting with "dir/file:line:col: " (line 0: "dir/file: ")
 * and containing text; fails the test if there is none. */
static inline void
expect_error(const struct cfgfile_errors *e, const char *dir,
    const char *file, int line, int col, const char *text)
{
	char prefix[700];

	if (line)
		snprintf(prefix, sizeof(prefix), "%s/%s:%d:%d: ", dir, file,
		    line, col);
	else
		snprintf(prefix, sizeof(prefix), "%s/%s: ", dir, file);
	for (size_t i = 0; i < e->n; i++)
		if (strncmp(e->msgs[i], prefix, strlen(prefix)) == 0 &&
		    strstr(e->msgs[i], text))
			return;
	dump(e);
	fail_msg("no error \"%s...%s...\"", prefix, text);
}

#endif
