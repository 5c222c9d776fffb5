/*
 * pgembed - a private PostgreSQL cluster under the state directory.
 * See pgembed.h.
 */
#include "pgembed.h"
#include "log.h"
#include "proc.h"

#include <dirent.h>
#include <errno.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#ifndef LC_PG_BINDIR
#define LC_PG_BINDIR ""
#endif

#define PGEMBED_USER "leadcast"
#define PGEMBED_DB   "leadcast"

static int
has_server(const char *dir)
{
	char p[1100];

	snprintf(p, sizeof(p), "%s/pg_ctl", dir);
	if (access(p, X_OK) != 0)
		return 0;
	snprintf(p, sizeof(p), "%s/initdb", dir);
	return access(p, X_OK) == 0;
}

/* The newest /usr/lib/postgresql/N/bin with a server in it. */
static int
newest_debian_bindir(char *out, size_t n)
{
	DIR *d = opendir("/usr/lib/postgresql");
	struct dirent *e;
	long best = -1;

	if (!d)
		return -1;
	while ((e = readdir(d)) != NULL) {
		char dir[512];
		long v = strtol(e->d_name, NULL, 10);

		snprintf(dir, sizeof(dir), "/usr/lib/postgresql/%s/bin",
		    e->d_name);
		if (v > best && has_server(dir)) {
			best = v;
			snprintf(out, n, "%s", dir);
		}
	}
	closedir(d);
	return best >= 0 ? 0 : -1;
}

static int
pg_config_bindir(char *out, size_t n)
{
	FILE *f = popen("pg_config --bindir 2>/dev/null", "r");
	int ok;

	if (!f)
		return -1;
	ok = fgets(out, (int)n, f) != NULL;
	pclose(f);
	if (!ok)
		return -1;
	out[strcspn(out, "\n")] = '\0';
	return has_server(out) ? 0 : -1;
}

int
pgembed_setup(struct pgembed *pe, const char *state_dir, const char *bindir,
    char *err, size_t n)
{
	struct sockaddr_un sun;

	memset(pe, 0, sizeof(*pe));
	if (bindir && *bindir) {
		if (!has_server(bindir)) {
			snprintf(err, n, "pg_bindir %s has no initdb and pg_ctl: "
			    "install postgresql or fix pg_bindir", bindir);
			return -1;
		}
		snprintf(pe->bindir, sizeof(pe->bindir), "%s", bindir);
	} else if (*LC_PG_BINDIR && has_server(LC_PG_BINDIR)) {
		snprintf(pe->bindir, sizeof(pe->bindir), "%s", LC_PG_BINDIR);
	} else if (newest_debian_bindir(pe->bindir, sizeof(pe->bindir)) < 0 &&
	    pg_config_bindir(pe->bindir, sizeof(pe->bindir)) < 0) {
		snprintf(err, n, "PostgreSQL server binaries (initdb, pg_ctl) "
		    "not found: install them (apt-get install postgresql), set "
		    "pg_bindir, or set database to a postgresql:// URI");
		return -1;
	}
	if (strchr(state_dir, '\'') || strchr(state_dir, '\\')) {
		snprintf(err, n, "state_dir %s: quotes and backslashes are not "
		    "supported with database = embedded", state_dir);
		return -1;
	}
	snprintf(pe->datadir, sizeof(pe->datadir), "%s/pgdata", state_dir);
	snprintf(pe->sockdir, sizeof(pe->sockdir), "%s/run", state_dir);
	snprintf(pe->logfile, sizeof(pe->logfile), "%s/postgresql.log",
	    state_dir);
	if (strlen(pe->sockdir) + sizeof("/.s.PGSQL.5432.lock") >
	    sizeof(sun.sun_path)) {
		snprintf(err, n, "state_dir %s is too long for a Unix socket "
		    "path (%zu bytes at most): choose a shorter one", state_dir,
		    sizeof(sun.sun_path) - sizeof("/run/.s.PGSQL.5432.lock"));
		return -1;
	}
	return 0;
}

static int
append_settings(const struct pgembed *pe, char *err, size_t n)
{
	char path[1100];
	FILE *f;

	snprintf(path, sizeof(path), "%s/postgresql.conf", pe->datadir);
	if (!(f = fopen(path, "a"))) {
		snprintf(err, n, "cannot write %s: %s", path, strerror(errno));
		return -1;
	}
	fprintf(f, "\n# leadcast embedded cluster: Unix socket only\n"
	    "listen_addresses = ''\n"
	    "unix_socket_directories = '%s'\n"
	    "unix_socket_permissions = 0700\n"
	    "max_connections = 50\n"
	    "logging_collector = off\n", pe->sockdir);
	if (fclose(f) != 0) {
		snprintf(err, n, "cannot write %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

static int
ensure_database(const struct pgembed *pe, char *err, size_t n)
{
	const char *keys[] = { "host", "user", "dbname", NULL };
	const char *vals[] = { pe->sockdir, PGEMBED_USER, "postgres", NULL };
	const char *p[1] = { PGEMBED_DB };
	PGconn *pg = PQconnectdbParams(keys, vals, 0);
	PGresult *r;
	int rc = -1;

	if (PQstatus(pg) != CONNECTION_OK) {
		snprintf(err, n, "embedded cluster does not answer: %s (see %s)",
		    PQerrorMessage(pg), pe->logfile);
		err[strcspn(err, "\n")] = '\0';
		PQfinish(pg);
		return -1;
	}
	r = PQexecParams(pg, "SELECT 1 FROM pg_database WHERE datname = $1", 1,
	    NULL, p, NULL, NULL, 0);
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
		rc = 0;
	} else {
		PQclear(r);
		/* identifiers cannot be parameters: the name is a constant */
		r = PQexec(pg, "CREATE DATABASE " PGEMBED_DB);
		if (PQresultStatus(r) == PGRES_COMMAND_OK)
			rc = 0;
		else
			snprintf(err, n, "creating database %s: %s", PGEMBED_DB,
			    PQresultErrorMessage(r));
	}
	PQclear(r);
	PQfinish(pg);
	err[strcspn(err, "\n")] = '\0';
	return rc;
}

int
pgembed_running(const struct pgembed *pe)
{
	char pg_ctl[1100];
	char *argv[] = { pg_ctl, "status", "-D", (char *)pe->datadir, NULL };

	snprintf(pg_ctl, sizeof(pg_ctl), "%s/pg_ctl", pe->bindir);
	return proc_run(argv, NULL) == 0;
}

int
pgembed_start(const struct pgembed *pe, int *created, char *err, size_t n)
{
	char version[1100], tool[1100], opts[1200];
	struct stat st;

	*created = 0;
	if (geteuid() == 0) {
		snprintf(err, n, "the embedded PostgreSQL cannot run as root: "
		    "start leadcastd as root with 'user' set, or as that user");
		return -1;
	}
	if (mkdir(pe->sockdir, 0700) < 0 && errno != EEXIST) {
		snprintf(err, n, "cannot create %s: %s", pe->sockdir,
		    strerror(errno));
		return -1;
	}
	snprintf(version, sizeof(version), "%s/PG_VERSION", pe->datadir);
	if (stat(version, &st) < 0) {
		char *argv[] = { tool, "-D", (char *)pe->datadir, "-U",
		    PGEMBED_USER, "--auth-local=trust", "--auth-host=reject",
		    "-E", "UTF8", "--locale=C", "--no-instructions", NULL };

		log_info("creating the embedded PostgreSQL cluster in %s",
		    pe->datadir);
		snprintf(tool, sizeof(tool), "%s/initdb", pe->bindir);
		if (proc_run(argv, pe->logfile) != 0) {
			snprintf(err, n, "initdb failed: see %s", pe->logfile);
			return -1;
		}
		if (append_settings(pe, err, n) < 0)
			return -1;
		*created = 1;
	}
	if (!pgembed_running(pe)) {
		char *argv[] = { tool, "start", "-w", "-t", "60", "-s", "-D",
		    (char *)pe->datadir, "-l", (char *)pe->logfile, "-o", opts,
		    NULL };

		snprintf(tool, sizeof(tool), "%s/pg_ctl", pe->bindir);
		snprintf(opts, sizeof(opts), "-k '%s'", pe->sockdir);
		if (proc_run(argv, pe->logfile) != 0) {
			snprintf(err, n, "the embedded PostgreSQL did not start: "
			    "see %s", pe->logfile);
			return -1;
		}
		log_info("embedded PostgreSQL started (socket in %s)",
		    pe->sockdir);
	}
	return ensure_database(pe, err, n);
}

int
pgembed_stop(const struct pgembed *pe)
{
	char tool[1100];
	char *argv[] = { tool, "stop", "-w", "-t", "60", "-s", "-m", "fast",
	    "-D", (char *)pe->datadir, NULL };

	snprintf(tool, sizeof(tool), "%s/pg_ctl", pe->bindir);
	return proc_run(argv, pe->logfile) == 0 ? 0 : -1;
}

void
pgembed_conninfo(const struct pgembed *pe, char *out, size_t n)
{
	snprintf(out, n, "host='%s' user=%s dbname=%s", pe->sockdir,
	    PGEMBED_USER, PGEMBED_DB);
}
