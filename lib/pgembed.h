/*
 * pgembed - the embedded PostgreSQL cluster (database = embedded): a
 * private cluster under the state directory, created with initdb on first
 * start, run with pg_ctl, listening on a Unix socket in a 0700 directory
 * only (no TCP), stopped when the daemon exits.
 *
 * These calls block (initdb, pg_ctl): the daemon makes them before its
 * loop runs, or from the worker pool. They must run as the unprivileged
 * daemon user: PostgreSQL refuses root. It does not talk SQL beyond
 * creating the leadcast database.
 */
#ifndef LEADCAST_PGEMBED_H
#define LEADCAST_PGEMBED_H

#include <stddef.h>

struct pgembed {
	char bindir[1024];
	char datadir[1024];
	char sockdir[1024];
	char logfile[1024];
};

/*
 * Fill pe for state_dir, finding the server binaries in bindir (if not
 * empty), the build-time default, pg_config --bindir, or the newest
 * /usr/lib/postgresql/N/bin. 0, or -1 with err saying what to install.
 */
int pgembed_setup(struct pgembed *pe, const char *state_dir,
    const char *bindir, char *err, size_t n);
/* Create the cluster if needed and start it if it is not running; make
 * sure the leadcast database exists. *created is set if initdb ran. */
int pgembed_start(const struct pgembed *pe, int *created, char *err,
    size_t n);
/* Is the postmaster running? */
int pgembed_running(const struct pgembed *pe);
int pgembed_stop(const struct pgembed *pe);
/* libpq connection string for the cluster's leadcast database. */
void pgembed_conninfo(const struct pgembed *pe, char *out, size_t n);

#endif
