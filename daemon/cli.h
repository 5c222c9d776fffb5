/*
 * cli.h - what the leadcast CLI's command files share: output mode,
 * configuration loading and admin API calls (defined in leadcast.c).
 */
#ifndef LEADCAST_CLI_H
#define LEADCAST_CLI_H

#include <jansson.h>

struct conf;

extern int json_out;                    /* --json */

void print_json(json_t *doc);           /* steals doc */
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

#endif
