/*
 * test_cond_sql - cond_to_sql against a real PostgreSQL.
 *
 * Skipped unless COND_TEST_PG holds a libpq conninfo (see main()). Every distinct lead
 * of test_cond.c's evaluation table that fits the column map becomes a row
 * of a temporary table; then, for every condition of the table (with its
 * environment), the rows the generated WHERE clause selects must be exactly
 * the rows cond_eval() finds true. It only creates a temporary table.
 *
 *   COND_TEST_PG="host=127.0.0.1 port=55432 user=postgres dbname=postgres" \
 *       ./test_cond_sql
 */
#define COND_CASES_ONLY
#include "test_cond.c"

#include <libpq-fe.h>

struct row {
	json_t *lead;
	int id;
};

static PGconn *conn;

static void
exec_ok(const char *sql, int nparams, const char *const *params)
{
	PGresult *r = PQexecParams(conn, sql, nparams, NULL, params, NULL,
	    NULL, 0);
	ExecStatusType st = PQresultStatus(r);

	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
		fail_msg("%s: %s", sql, PQerrorMessage(conn));
	PQclear(r);
}

/* The lead's column values as text (NULL = SQL NULL); 0 if some standard
 * field has a JSON type its column cannot hold, or is not a column. */
static int
lead_row(const json_t *lead, char **vals)
{
	const char *key;
	json_t *v;
	size_t i;

	for (i = 0; i <= NCOLS; i++)
		vals[i] = NULL;
	json_object_foreach((json_t *)lead, key, v) {
		for (i = 0; i < NCOLS; i++)
			if (!strcmp(test_cols[i].name, key))
				break;
		if (i == NCOLS && strcmp(key, "fields") != 0)
			return 0;
	}
	for (i = 0; i < NCOLS; i++) {
		char num[40];

		v = json_object_get(lead, test_cols[i].name);
		if (!v || json_is_null(v))
			continue;
		switch (test_cols[i].type) {
		case COND_SQL_TEXT:
			if (!json_is_string(v))
				return 0;
			vals[i] = strdup(json_string_value(v));
			break;
		case COND_SQL_NUMERIC:
		case COND_SQL_TIME:
			if (!json_is_number(v))
				return 0;
			snprintf(num, sizeof(num), "%.17g", json_number_value(v));
			vals[i] = strdup(num);
			break;
		case COND_SQL_BOOL:
			if (!json_is_boolean(v))
				return 0;
			vals[i] = strdup(json_is_true(v) ? "true" : "false");
			break;
		}
	}
	v = json_object_get(lead, "fields");
	vals[NCOLS] = v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
	return 1;
}

static void
sql_matches_eval(void **state)
{
	struct row rows[NCASES];
	size_t nrows = 0, i, k, skipped = 0, failures = 0, matches = 0;
	struct buf create = BUF_INIT, insert = BUF_INIT;
	const char *ci = getenv("COND_TEST_PG");

	(void)state;
	conn = PQconnectdb(ci);
	if (PQstatus(conn) != CONNECTION_OK)
		fail_msg("connect: %s", PQerrorMessage(conn));
	exec_ok("SET client_min_messages = warning", 0, NULL);

	buf_puts(&create, "CREATE TEMP TABLE cond_t (id int PRIMARY KEY");
	buf_puts(&insert, "INSERT INTO cond_t VALUES ($1");
	for (i = 0; i < NCOLS; i++) {
		static const char *const types[] = { "text", "numeric",
			"timestamptz", "boolean" };

		buf_printf(&create, ", %s %s", test_cols[i].name,
		    types[test_cols[i].type]);
		if (test_cols[i].type == COND_SQL_TIME)
			buf_printf(&insert, ", to_timestamp($%zu::float8)", i + 2);
		else
			buf_printf(&insert, ", $%zu", i + 2);
	}
	buf_puts(&create, ", fields jsonb)");
	buf_printf(&insert, ", $%zu::jsonb)", NCOLS + 2);
	exec_ok("DROP TABLE IF EXISTS cond_t", 0, NULL);
	exec_ok(buf_str(&create), 0, NULL);

	for (i = 0; i < NCASES; i++) {
		char *vals[NCOLS + 2], id[16];
		json_t *lead;

		for (k = 0; k < i; k++)
			if (!strcmp(eval_cases[k].lead, eval_cases[i].lead))
				break;
		if (k < i)
			continue;
		lead = load_lead(eval_cases[i].lead);
		if (!lead_row(lead, vals + 1)) {
			for (k = 1; k <= NCOLS + 1; k++)
				free(vals[k]);
			json_decref(lead);
			skipped++;
			continue;
		}
		snprintf(id, sizeof(id), "%zu", nrows);
		vals[0] = id;
		exec_ok(buf_str(&insert), (int)NCOLS + 2,
		    (const char *const *)vals);
		for (k = 1; k <= NCOLS + 1; k++)
			free(vals[k]);
		rows[nrows].lead = lead;
		rows[nrows].id = (int)nrows;
		nrows++;
	}
	print_message("# %zu rows (%zu leads do not fit the columns)\n", nrows,
	    skipped);

	for (i = 0; i < NCASES; i++) {
		const struct eval_case *tc = &eval_cases[i];
		struct cond_env env = case_env(tc);
		struct cond_params pr = { 0 };
		struct buf q = BUF_INIT;
		struct cond_error e;
		struct cond *c;
		char want[NCASES + 1], got[NCASES + 1], err[200];
		int next = 1;
		PGresult *r;

		if (cond_parse(tc->cond, &c, &e) != 0)
			fail_msg("%s: %s", tc->cond, e.msg);
		buf_puts(&q, "SELECT id FROM cond_t AS l WHERE ");
		if (cond_to_sql(c, &test_map, &env, &next, &q, &pr, err,
		    sizeof(err)) != 0)
			fail_msg("%s: %s", tc->cond, err);
		buf_puts(&q, " ORDER BY id");
		memset(want, '.', nrows);
		memset(got, '.', nrows);
		want[nrows] = got[nrows] = '\0';
		for (k = 0; k < nrows; k++) {
			int v = cond_eval(c, rows[k].lead, &env);

			if (v == 1)
				want[k] = 'x', matches++;
		}
		r = PQexecParams(conn, buf_str(&q), (int)pr.n, NULL,
		    (const char *const *)pr.v, NULL, NULL, 0);
		if (PQresultStatus(r) != PGRES_TUPLES_OK) {
			print_error("%s\n  %s\n  %s", tc->cond, buf_str(&q),
			    PQerrorMessage(conn));
			failures++;
		} else {
			for (k = 0; k < (size_t)PQntuples(r); k++)
				got[atoi(PQgetvalue(r, (int)k, 0))] = 'x';
			if (strcmp(want, got) != 0) {
				print_error("%s (now %lld, tz %s)\n  eval %s\n  sql  "
				    "%s\n  %s\n", tc->cond, (long long)env.now,
				    env.tz ? env.tz : "UTC", want, got,
				    buf_str(&q));
				for (k = 0; k < nrows; k++) {
					char *j = json_dumps(rows[k].lead, 0);

					if (want[k] != got[k])
						print_error("  row %zu: %s\n", k, j);
					free(j);
				}
				failures++;
			}
		}
		PQclear(r);
		buf_free(&q);
		cond_params_free(&pr);
		cond_free(c);
	}
	print_message("# %zu conditions x %zu rows, %zu matches\n", NCASES,
	    nrows, matches);
	for (k = 0; k < nrows; k++)
		json_decref(rows[k].lead);
	buf_free(&create);
	buf_free(&insert);
	PQfinish(conn);
	assert_int_equal(failures, 0);
	assert_true(nrows > 50);
	assert_true(matches > NCASES);
}

/*
 * Without COND_TEST_PG the test is skipped: under the TAP driver with a
 * "1..0 # SKIP" plan (cmocka's skip() prints "not ok ... # SKIP", which
 * automake counts as a failure), otherwise with exit status 77.
 */
int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(sql_matches_eval),
	};
	const char *out = getenv("CMOCKA_MESSAGE_OUTPUT");

	if (!getenv("COND_TEST_PG") || !*getenv("COND_TEST_PG")) {
		if (out && !strcmp(out, "TAP")) {
			printf("1..0 # SKIP COND_TEST_PG is not set\n");
			return 0;
		}
		printf("skipped: COND_TEST_PG is not set\n");
		return 77;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
