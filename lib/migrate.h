/*
 * migrate - the schema migrations (lib/sql/NNN_name.sql, compiled into the
 * binary by build-aux/embed-sql.sh) and their application at start.
 *
 * Each migration runs in its own transaction and is recorded in
 * schema_migrations. A session advisory lock serializes daemons that start
 * at once against the same database: the second waits, then finds nothing
 * left to do. This runs before the event loop starts, on a blocking
 * connection of its own; it is the daemon's start-up check that the
 * database answers at all.
 */
#ifndef LEADCAST_MIGRATE_H
#define LEADCAST_MIGRATE_H

#include <stddef.h>

struct migration {
	const char *name;       /* "001_core" */
	const char *sql;
};

/* All migrations in order, ending with { NULL, NULL }. */
extern const struct migration migrate_all[];

/*
 * Connect with conninfo (timeout seconds) and apply what is missing.
 * *applied gets the number applied now, *total the number known.
 * 0, or -1 with a one-line message in err (size n).
 */
int migrate_run(const char *conninfo, int timeout, int *applied, int *total,
    char *err, size_t n);

#endif
