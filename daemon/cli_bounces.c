/*
 * cli_bounces - `leadcast bounces review [--all] [--since DATE|7d]
 * [--mailbox NAME] [--limit N]`: what the bounce reader kept for review
 * (reports not understood, or not matched to a delivery) and the recent
 * bounces, complaints and auto-replies, from GET /api/v1/bounces; and
 * `leadcast bounces test FILE.eml`: what the parser sees in one message
 * (offline: lib/dsn and lib/bounce, as the daemon reads it; the VERP
 * token is shown, not verified).
 */
#include "config.h"
#include "cli.h"
#include "cli_fmt.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bounce.h"
#include "buf.h"
#include "conf.h"
#include "dsn.h"

#define TEST_MAX_SIZE (64u << 20)

static void
print_rows(const json_t *rows)
{
	static const char *const head[] = { "TIME", "CLASS", "REASON", "EMAIL",
	    "STATUS", "MATCHED", "CAMPAIGN", "DIAGNOSTIC" };
	struct cli_table t;
	json_t *r;
	size_t i;

	cli_table_init(&t, 8, head, "llllllll");
	json_array_foreach((json_t *)rows, i, r) {
		char c[8][128];
		const char *row[8];
		const char *diag = json_string_value(json_object_get(r,
		    "diagnostic"));
		const char *subj = json_string_value(json_object_get(r,
		    "subject"));

		for (int k = 0; k < 8; k++)
			row[k] = c[k];
		cli_fmt_time(json_object_get(r, "created_at"), "-", c[0],
		    sizeof(c[0]));
		cli_fmt_scalar(json_object_get(r, "class"), "-", c[1],
		    sizeof(c[1]));
		cli_fmt_scalar(json_object_get(r, "reason"), "-", c[2],
		    sizeof(c[2]));
		cli_fmt_scalar(json_object_get(r, "email"), "-", c[3],
		    sizeof(c[3]));
		cli_fmt_scalar(json_object_get(r, "status"), "-", c[4],
		    sizeof(c[4]));
		cli_fmt_scalar(json_object_get(r, "matched_by"), "no", c[5],
		    sizeof(c[5]));
		cli_fmt_scalar(json_object_get(r, "campaign"), "-", c[6],
		    sizeof(c[6]));
		/* the diagnostic, else the report's subject, cut short */
		snprintf(c[7], sizeof(c[7]), "%.60s", diag ? diag : subj ?
		    subj : "-");
		cli_table_add(&t, row);
	}
	cli_table_print(&t, stdout);
	cli_table_free(&t);
}

static int
bounces_review(const struct cli_args *a)
{
	const char *since = cli_arg(a, "since"), *mailbox = cli_arg(a,
	    "mailbox"), *limit = cli_arg(a, "limit");
	int all = cli_arg(a, "all") != NULL;
	char iso[64], err[256], url[512], q1[128], q2[160];
	struct conf *c;
	json_t *doc = NULL, *rev = NULL;
	int rc;

	if (a->nwords != 1) {
		fprintf(stderr, "usage: leadcast bounces review [--all] "
		    "[--since DATE|7d] [--mailbox NAME] [--limit N]\n");
		return 2;
	}
	if (since && cli_fmt_since(since, time(NULL), iso, sizeof(iso), err,
	    sizeof(err)) < 0) {
		fprintf(stderr, "leadcast bounces review: --since: %s\n", err);
		return 2;
	}
	if (limit && (atoi(limit) < 1 || atoi(limit) > 1000 ||
	    strspn(limit, "0123456789") != strlen(limit))) {
		fprintf(stderr, "leadcast bounces review: --limit: a number "
		    "from 1 to 1000\n");
		return 2;
	}
	if (!(c = cli_load(a->path)))
		return 1;
	snprintf(url, sizeof(url), "/api/v1/bounces?limit=%s%s%s%s%s",
	    limit ? limit : "50", since ? "&since=" : "", since ?
	    cli_fmt_query(iso, q1, sizeof(q1)) : "", mailbox ? "&mailbox=" :
	    "", mailbox ? cli_fmt_query(mailbox, q2, sizeof(q2)) : "");
	if ((rc = cli_request(c, "GET", url, NULL, &doc)) == 0 && !all) {
		size_t len = strlen(url);

		snprintf(url + len, sizeof(url) - len, "&review=1");
		rc = cli_request(c, "GET", url, NULL, &rev);
	}
	conf_free(c);
	if (rc != 0) {
		json_decref(doc);
		return rc;
	}
	if (json_out) {
		if (rev)
			json_object_set_new(doc, "review",
			    json_incref(json_object_get(rev, "bounces")));
		json_decref(rev);
		print_json(doc);
		return 0;
	}
	{
		json_t *s = json_object_get(doc, "summary");
		json_t *m = json_object_get(doc, "messages");
		const char *k;
		json_t *v;
		int first = 1;

		printf("since %s:", since ? iso : "30 days");
		json_object_foreach(s, k, v) {
			printf("%s %lld %s", first ? "" : ",",
			    (long long)json_integer_value(v), k);
			first = 0;
		}
		if (first)
			printf(" nothing recorded");
		printf("\nmailbox messages:");
		first = 1;
		json_object_foreach(m, k, v) {
			printf("%s %lld %s", first ? "" : ",",
			    (long long)json_integer_value(v), k);
			first = 0;
		}
		printf("%s\n", first ? " none read" : "");
	}
	if (rev) {
		json_t *rows = json_object_get(rev, "bounces");

		printf("\nwaiting for review (not understood, or not matched to "
		    "a delivery)\n");
		if (json_array_size(rows) == 0)
			printf("  (nothing)\n");
		else
			print_rows(rows);
	}
	printf("\nrecent\n");
	if (json_array_size(json_object_get(doc, "bounces")) == 0)
		printf("  (nothing)\n");
	else
		print_rows(json_object_get(doc, "bounces"));
	json_decref(rev);
	json_decref(doc);
	return 0;
}

static int
bounces_test(const struct cli_args *a)
{
	struct dsn_limits lim = DSN_LIMITS_DEFAULT;
	struct dsn_report rep;
	struct buf msg;
	char chunk[65536];
	size_t n;
	FILE *f;
	json_t *doc, *m, *rc, *r;
	size_t i;

	if (a->nwords != 2) {
		fprintf(stderr, "usage: leadcast bounces test FILE.eml\n");
		return 2;
	}
	if (!(f = fopen(a->words[1], "rb"))) {
		fprintf(stderr, "leadcast bounces test: %s: %s\n", a->words[1],
		    strerror(errno));
		return 1;
	}
	buf_init(&msg, TEST_MAX_SIZE);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0 && !msg.overflow)
		buf_append(&msg, chunk, n);
	fclose(f);
	if (msg.overflow) {
		fprintf(stderr, "leadcast bounces test: %s: over %u MB\n",
		    a->words[1], TEST_MAX_SIZE >> 20);
		buf_free(&msg);
		return 1;
	}
	if (dsn_parse(msg.data ? msg.data : "", msg.len, &lim, &rep) < 0 ||
	    !(doc = bounce_describe(msg.data ? msg.data : "", msg.len, &rep,
	    NULL))) {
		fprintf(stderr, "leadcast bounces test: out of memory\n");
		dsn_report_free(&rep);
		buf_free(&msg);
		return 1;
	}
	dsn_report_free(&rep);
	buf_free(&msg);
	if (json_out) {
		print_json(doc);
		return 0;
	}
	m = json_object_get(doc, "match");
	rc = json_object_get(doc, "recipients");
	printf("kind:        %s%s%s\n", json_string_value(json_object_get(doc,
	    "kind")), json_object_get(doc, "format") ? " / " : "",
	    json_object_get(doc, "format") ? json_string_value(
	    json_object_get(doc, "format")) : "");
	printf("from:        %s\n", json_object_get(doc, "from") ?
	    json_string_value(json_object_get(doc, "from")) : "-");
	printf("subject:     %s\n", json_object_get(doc, "subject") ?
	    json_string_value(json_object_get(doc, "subject")) : "-");
	printf("key:         %s\n", json_string_value(json_object_get(doc,
	    "key")));
	if (json_is_true(json_object_get(doc, "truncated")))
		printf("truncated:   yes (read up to the size limit)\n");
	{
		static const char *const keys[] = { "verp_token", "message_id",
		    "unsubscribe_token", "feedback_id", "to" };
		static const char *const names[] = { "VERP token", "Message-ID",
		    "List-Unsubscribe token", "Feedback-ID", "original To" };

		printf("matching:\n");
		for (size_t k = 0; k < 5; k++) {
			const char *v = json_string_value(json_object_get(m,
			    keys[k]));

			printf("  %-23s %s\n", names[k], v ? v : "-");
		}
		printf("  %-23s %zu\n", "References",
		    json_array_size(json_object_get(m, "references")));
	}
	if (!strcmp(json_string_value(json_object_get(doc, "kind")), "none")) {
		printf("\nnot a bounce, complaint or auto-reply: the reader "
		    "leaves it in the mailbox\n");
	} else if (json_array_size(rc) == 0) {
		printf("\nno recipient found: the reader keeps it for review\n");
	} else {
		static const char *const head[] = { "RECIPIENT", "ACTION",
		    "CLASS", "REASON", "STATUS", "CODE", "REMOTE MTA",
		    "DIAGNOSTIC" };
		struct cli_table t;

		printf("\n");
		cli_table_init(&t, 8, head, "lllllrll");
		json_array_foreach(rc, i, r) {
			static const char *const keys[] = { "email", "action",
			    "class", "reason", "status", "code", "remote_mta",
			    "diagnostic" };
			char c[8][128];
			const char *row[8];

			for (int k = 0; k < 8; k++) {
				cli_fmt_scalar(json_object_get(r, keys[k]), "-",
				    c[k], sizeof(c[k]));
				c[k][k == 7 ? 80 : 127] = '\0';
				row[k] = c[k];
			}
			cli_table_add(&t, row);
		}
		cli_table_print(&t, stdout);
		cli_table_free(&t);
	}
	json_decref(doc);
	return 0;
}

int
cli_bounces(const char *path, int argc, char **argv)
{
	static const struct cli_verb verbs[] = {
		{ "review", "all since= mailbox= limit=", bounces_review },
		{ "test", "", bounces_test },
	};

	return cli_dispatch("bounces", path, argc, argv, verbs, 2,
	    "usage: leadcast bounces review [--all] [--since DATE|7d] "
	    "[--mailbox NAME] [--limit N]\n"
	    "       leadcast bounces test FILE.eml\n");
}
