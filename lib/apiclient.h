/*
 * apiclient - the leadcast CLI's HTTP client for the daemon's admin API.
 *
 * One blocking request at a time on a private libevent base with a
 * timeout; the daemon's address comes from the first http.listen entry of
 * the same configuration (a wildcard address is reached on loopback).
 * It does not retry.
 */
#ifndef LEADCAST_APICLIENT_H
#define LEADCAST_APICLIENT_H

#include <stddef.h>

struct conf;

struct apiclient_resp {
	int status;             /* HTTP status, 0 if no answer */
	char *body;             /* NUL-terminated, owned: apiclient_resp_free */
	size_t len;
	char err[256];          /* why there was no answer */
};

/*
 * method "GET"/"POST"; token may be NULL; body (JSON) may be NULL.
 * 0 if an HTTP answer came (any status), -1 otherwise (see resp->err).
 */
int apiclient_request(const struct conf *c, const char *method,
    const char *path, const char *token, const char *body, long timeout_ms,
    struct apiclient_resp *resp);
void apiclient_resp_free(struct apiclient_resp *resp);

#endif
