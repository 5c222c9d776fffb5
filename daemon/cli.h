/*
 * cli.h - what the leadcast CLI's command files share: output mode,
 * configuration loading and admin API calls (defined in leadcast.c).
 */
#ifndef LEADCAST_CLI_H
#define LEADCAST_CLI_H

#include <jansson.h>

struct conf;

extern int json_out;                    /* --json */

void print_json(json_t *doc);           /* steals doc (frees it) */
/* Load the configuration, printing its errors. NULL on failure. */
struct conf *cli_load(const char *path);
/* The HTTP status (*doc: the parsed body, caller frees) or -1. */
int api_call(const struct conf *c, const char *method, const char *path,
    const char *body, long timeout_ms, json_t **doc);
/* Print an API error; returns 1. */
int api_error(int status, json_t *doc);

struct cli_sub_opts {
	const char *list, *map, *status, *out;
	int unconfirmed;
};
/* leadcast subscribers import|export (cli_subscribers.c) */
int cli_subscribers(const char *path, char **args, int nargs,
    const struct cli_sub_opts *o);

/*
 * The words and options of a command (cli_leads.c). spec lists the
 * options the command knows, space-separated, "name=" for one taking a
 * value ("email= note= csv"); -c FILE and --json are always known, and
 * "--name=value" works too. An option may be repeated. Returns 0, or 2
 * with a message printed (a usage error).
 */
#define CLI_ARGS_MAX 64
struct cli_args {
	const char *path;               /* -c, or the default */
	char *words[8];
	int nwords;
	const char *name[CLI_ARGS_MAX]; /* without "--" */
	const char *val[CLI_ARGS_MAX];  /* "" for a flag */
	int n;
};
int cli_args_parse(const char *cmd, const char *path, int argc, char **argv,
    const char *spec, struct cli_args *a);
void cli_args_free(struct cli_args *a);
/* The last value of an option, or NULL. */
const char *cli_arg(const struct cli_args *a, const char *name);

/*
 * One admin API call with a JSON body (stolen, may be NULL): 0 with the
 * answer in *doc (caller frees) on a 2xx status; otherwise 1, the error
 * printed (api_error: with --json, the API's document).
 */
int cli_request(const struct conf *c, const char *method, const char *url,
    json_t *body, json_t **doc);

/*
 * A CSV import (cli_csv.h) against the admin API: im->file is read (the
 * caller sets file, map, need, error_key, count_keys), batches of rows are
 * posted to url as body plus {rows_key: [...]}; progress on a terminal,
 * rejected lines on stderr (in im->errors only, with --json). 0 read to
 * the end, -1 stopped early, -2 the file could not be opened (said why).
 * The caller prints the summary and frees im (cli_import_free).
 */
struct cli_import;
int cli_import_api(struct cli_import *im, const struct conf *c,
    const char *url, const char *rows_key, const json_t *body);

/*
 * A family of commands (lead, rep, report): the first word of argv picks
 * the verb, whose options (spec, as cli_args_parse) are parsed before run
 * is called. usage is printed for no or an unknown verb. Returns run's
 * status, or 2.
 */
struct cli_verb {
	const char *verb, *spec;
	int (*run)(const struct cli_args *a);
};
int cli_dispatch(const char *family, const char *path, int argc, char **argv,
    const struct cli_verb *verbs, size_t n, const char *usage);

/* leadcast lead|leads ... (cli_leads.c), rep|reps ... (cli_leads.c),
 * report ... (cli_report.c). argv: what follows the command word; path:
 * -c given before it, or NULL. Exit status: 0 ok, 1 error, 2 usage. */
int cli_lead(const char *path, int argc, char **argv);
int cli_rep(const char *path, int argc, char **argv);
int cli_report(const char *path, int argc, char **argv);
/* leadcast check-dns DOMAIN ... (cli_dns.c): 0 nothing failed, 1 a check
 * failed or could not run, 2 usage. */
int cli_check_dns(const char *path, int argc, char **argv);
/* leadcast bounces review|test ... (cli_bounces.c) */
int cli_bounces(const char *path, int argc, char **argv);
/* leadcast drip ... (cli_drip.c) */
int cli_drip(const char *path, int argc, char **argv);

#endif
