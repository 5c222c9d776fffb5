/*
 * migrate - apply the compiled-in schema migrations. See migrate.h.
 */
#include "migrate.h"
#include "log.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <string.h>

/* Arbitrary, fixed: the advisory lock key of leadcast migrations. */
#define MIGRATE_LOCK_KEY "4242170501"

static int
exec_ok(PGconn *pg, const char *sql, int nparams, const char *const *params,
    char *err, size_t n, const char *what)
{
	PGresult *r = nparams ? PQexecParams(pg, sql, nparams, NULL, params,
	    NULL, NULL, 0) : PQexec(pg, sql);
	ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
	int ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;

	if (!ok) {
		snprintf(err, n, "%s: %s", what, r ? PQresultErrorMessage(r) :
		    PQerrorMessage(pg));
		err[strcspn(err, "\n")] = '\0';
	}
	if (r)
		PQclear(r);
	return ok ? 0 : -1;
}

static int
is_applied(PGconn *pg, const char *name, int *yes, char *err, size_t n)
{
	const char *p[1] = { name };
	PGresult *r = PQexecParams(pg, "SELECT 1 FROM schema_migrations "
	    "WHERE name = $1", 1, NULL, p, NULL, NULL, 0);

	if (!r || PQresultStatus(r) != PGRES_TUPLES_OK) {
		snprintf(err, n, "reading schema_migrations: %s",
		    PQerrorMessage(pg));
		err[strcspn(err, "\n")] = '\0';
		if (r)
			PQclear(r);
		return -1;
	}
	*yes = PQntuples(r) > 0;
	PQclear(r);
	return 0;
}

static PGconn *
connect_blocking(const char *conninfo, int timeout, char *err, size_t n)
{
	char tbuf[16];
	const char *keys[] = { "dbname", "connect_timeout",
	    "application_name", NULL };
	const char *vals[] = { conninfo, tbuf, "leadcastd-migrate", NULL };
	PGconn *pg;

	snprintf(tbuf, sizeof(tbuf), "%d", timeout);
	pg = PQconnectdbParams(keys, vals, 1);
	if (!pg || PQstatus(pg) != CONNECTION_OK) {
		snprintf(err, n, "cannot connect to the database: %s",
		    pg ? PQerrorMessage(pg) : "out of memory");
		err[strcspn(err, "\n")] = '\0';
		PQfinish(pg);
		return NULL;
	}
	PQsetNoticeProcessor(pg, NULL, NULL);
	return pg;
}

int
migrate_setting(const char *conninfo, const char *name,
    const char *value_if_new, char *out, size_t outlen, char *err, size_t n)
{
	const char *p[2] = { name, value_if_new };
	PGconn *pg = connect_blocking(conninfo, 10, err, n);
	PGresult *r;
	int rc = -1;

	if (!pg)
		return -1;
	/* A node inserting at the same moment may be invisible to this
	 * statement's snapshot: then the next attempt sees its row. */
	for (int attempt = 0; attempt < 3; attempt++) {
		r = PQexecParams(pg, "WITH ins AS (INSERT INTO settings (name, "
		    "value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING "
		    "RETURNING value) SELECT value FROM ins UNION ALL "
		    "SELECT value FROM settings WHERE name = $1", 2, NULL, p,
		    NULL, NULL, 0);
		if (!r || PQresultStatus(r) != PGRES_TUPLES_OK ||
		    PQntuples(r) > 0)
			break;
		PQclear(r);
		r = NULL;
	}
	if (r && PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) >= 1) {
		snprintf(out, outlen, "%s", PQgetvalue(r, 0, 0));
		rc = 0;
	} else {
		snprintf(err, n, "reading setting %s: %s", name,
		    PQerrorMessage(pg));
		err[strcspn(err, "\n")] = '\0';
	}
	PQclear(r);
	PQfinish(pg);
	return rc;
}

int
migrate_run(const char *conninfo, int timeout, int *applied, int *total,
    char *err, size_t n)
{
	PGconn *pg;
	int rc = -1;

	*applied = *total = 0;
	if (!(pg = connect_blocking(conninfo, timeout, err, n)))
		return -1;
	if (exec_ok(pg, "SET client_min_messages = warning", 0, NULL, err, n,
	    "set") < 0 ||
	    exec_ok(pg, "SELECT pg_advisory_lock(" MIGRATE_LOCK_KEY ")", 0,
	    NULL, err, n, "taking the migration lock") < 0 ||
	    exec_ok(pg, "CREATE TABLE IF NOT EXISTS schema_migrations ("
	    "name text PRIMARY KEY, applied_at timestamptz NOT NULL "
	    "DEFAULT now())", 0, NULL, err, n, "creating schema_migrations") < 0)
		goto out;
	for (const struct migration *m = migrate_all; m->name; m++) {
		const char *p[1] = { m->name };
		char what[128];
		int yes;

		(*total)++;
		if (is_applied(pg, m->name, &yes, err, n) < 0)
			goto out;
		if (yes)
			continue;
		snprintf(what, sizeof(what), "migration %s", m->name);
		if (exec_ok(pg, "BEGIN", 0, NULL, err, n, what) < 0)
			goto out;
		if (exec_ok(pg, m->sql, 0, NULL, err, n, what) < 0 ||
		    exec_ok(pg, "INSERT INTO schema_migrations (name) "
		    "VALUES ($1)", 1, p, err, n, what) < 0 ||
		    exec_ok(pg, "COMMIT", 0, NULL, err, n, what) < 0) {
			char ignore[64];

			exec_ok(pg, "ROLLBACK", 0, NULL, ignore, sizeof(ignore),
			    "rollback");
			goto out;
		}
		log_info("applied migration %s", m->name);
		(*applied)++;
	}
	rc = 0;
out:
	PQfinish(pg);   /* also releases the advisory lock */
	return rc;
}
