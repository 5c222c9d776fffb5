/*
 * cli_report - `leadcast report routing [--since DATE] [--json|--csv]`:
 * the routing report (offers, acceptance and speed-to-lead per rep, team,
 * rule and source) from GET /api/v1/reports/routing, as one aligned table
 * per grouping, the API's JSON, or one CSV with a "by" column; and
 * `leadcast report sms`: texts per gateway (sent, delivered, failed, failed
 * over, emailed instead, delivery rate, time to the gateway and to the
 * phone), SMS campaigns (texts by outcome, parts, cost; in CSV a second
 * table after a blank line) and texts received, from GET
 * /api/v1/reports/sms.
 *
 * --since takes a date or a duration back from now (cli_fmt_since) and
 * sends ISO 8601 UTC; without it the daemon's default period applies.
 */
#include "config.h"
#include "cli.h"
#include "cli_fmt.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "conf.h"

static const char *const groupings[] = { "rep", "team", "rule", "source",
    NULL };
static const char *const secs_keys[] = { "first_offer_p50_s",
    "first_offer_p90_s", "accept_p50_s", "accept_p90_s" };

/* accepted/offered as a percentage, or "-" when nothing was offered */
static const char *
acceptance(const json_t *row, int csv, char *out, size_t n)
{
	double off = json_number_value(json_object_get(row, "offered"));
	double acc = json_number_value(json_object_get(row, "accepted"));

	if (off <= 0)
		snprintf(out, n, "%s", csv ? "" : "-");
	else
		snprintf(out, n, csv ? "%.1f" : "%.0f%%", 100.0 * acc / off);
	return out;
}

static void
csv_cell(const char *s, int last)
{
	if (strpbrk(s, ",\"\r\n")) {
		putchar('"');
		for (; *s; s++) {
			if (*s == '"')
				putchar('"');
			putchar(*s);
		}
		putchar('"');
	} else {
		fputs(s, stdout);
	}
	fputs(last ? "\r\n" : ",", stdout);
}

static void
print_csv(const json_t *by)
{
	static const char *const head[] = { "by", "key", "offered", "accepted",
	    "rejected", "expired", "acceptance_pct", "first_offer_p50_s",
	    "first_offer_p90_s", "accept_p50_s", "accept_p90_s" };
	const char *g;
	json_t *rows, *r;
	size_t i;

	for (i = 0; i < sizeof(head) / sizeof(head[0]); i++)
		csv_cell(head[i], i + 1 == sizeof(head) / sizeof(head[0]));
	json_object_foreach((json_t *)by, g, rows) {
		json_array_foreach(rows, i, r) {
			static const char *const counts[] = { "offered", "accepted",
			    "rejected", "expired" };
			char v[256];

			csv_cell(g, 0);
			csv_cell(cli_fmt_scalar(json_object_get(r, "key"), "", v,
			    sizeof(v)), 0);
			for (size_t k = 0; k < 4; k++)
				csv_cell(cli_fmt_scalar(json_object_get(r, counts[k]),
				    "0", v, sizeof(v)), 0);
			csv_cell(acceptance(r, 1, v, sizeof(v)), 0);
			for (size_t k = 0; k < 4; k++)
				csv_cell(cli_fmt_scalar(json_object_get(r, secs_keys[k]),
				    "", v, sizeof(v)), k == 3);
		}
	}
}

static void
print_group(const char *g, const json_t *rows)
{
	char key[16];
	const char *head[10] = { key, "OFFERED", "ACCEPTED", "REJECTED",
	    "EXPIRED", "ACCEPT %", "TO OFFER p50", "p90", "TO ACCEPT p50",
	    "p90" };
	struct cli_table t;
	json_t *r;
	size_t i;

	snprintf(key, sizeof(key), "%s", g);
	for (char *p = key; *p; p++)
		if (*p >= 'a' && *p <= 'z')
			*p = (char)(*p - 'a' + 'A');
	printf("\nby %s\n", g);
	if (json_array_size(rows) == 0) {
		printf("  (nothing routed)\n");
		return;
	}
	cli_table_init(&t, 10, head, "lrrrrrrrrr");
	json_array_foreach((json_t *)rows, i, r) {
		char k[256], c[4][32], pct[16], d[4][32];
		const char *row[10] = { k, c[0], c[1], c[2], c[3], pct, d[0], d[1],
		    d[2], d[3] };
		static const char *const counts[] = { "offered", "accepted",
		    "rejected", "expired" };

		cli_fmt_scalar(json_object_get(r, "key"), "(none)", k, sizeof(k));
		for (size_t j = 0; j < 4; j++)
			cli_fmt_scalar(json_object_get(r, counts[j]), "0", c[j],
			    sizeof(c[j]));
		acceptance(r, 0, pct, sizeof(pct));
		for (size_t j = 0; j < 4; j++) {
			json_t *v = json_object_get(r, secs_keys[j]);

			if (json_is_number(v))
				cli_fmt_duration(json_number_value(v), d[j],
				    sizeof(d[j]));
			else
				snprintf(d[j], sizeof(d[j]), "%s", "-");
		}
		cli_table_add(&t, row);
	}
	cli_table_print(&t, stdout);
	cli_table_free(&t);
}

static int
report_routing(const struct cli_args *a)
{
	const char *since = cli_arg(a, "since");
	int csv = cli_arg(a, "csv") != NULL;
	char iso[64], q[128], err[256], url[256];
	json_t *doc = NULL, *by, *rows;
	struct conf *c;
	const char *g;
	int rc;

	if (a->nwords != 1 || (csv && json_out)) {
		fprintf(stderr, "usage: leadcast report routing [--since DATE] "
		    "[--json|--csv]\n"
		    "       DATE: YYYY-MM-DD, 'YYYY-MM-DD HH:MM' (local time), "
		    "ISO 8601, or 30m, 24h, 7d, 2w back from now\n");
		return 2;
	}
	if (since && cli_fmt_since(since, time(NULL), iso, sizeof(iso), err,
	    sizeof(err)) < 0) {
		fprintf(stderr, "leadcast report routing: --since: %s\n", err);
		return 2;
	}
	if (!(c = cli_load(a->path)))
		return 1;
	snprintf(url, sizeof(url), "/api/v1/reports/routing%s%s", since ?
	    "?since=" : "", since ? cli_fmt_query(iso, q, sizeof(q)) : "");
	rc = cli_request(c, "GET", url, NULL, &doc);
	if (rc != 0) {
		conf_free(c);
		return rc;
	}
	by = json_object_get(doc, "by");
	if (json_out) {
		print_json(doc);
		doc = NULL;
	} else if (csv) {
		print_csv(by);
	} else {
		char s[64];

		printf("routing since %s\n", cli_fmt_time(json_object_get(doc,
		    "since"), "the start", s, sizeof(s)));
		for (const char *const *p = groupings; *p; p++)
			print_group(*p, json_object_get(by, *p));
		json_object_foreach(by, g, rows) {
			int known = 0;

			for (const char *const *p = groupings; *p; p++)
				known |= !strcmp(*p, g);
			if (!known)
				print_group(g, rows);
		}
	}
	json_decref(doc);
	conf_free(c);
	return 0;
}

/* ---- report sms ------------------------------------------------------------------- */

static const char *const sms_cols[] = { "messages", "segments", "sent",
    "delivered", "failed", "queued", "sending", "failed_over",
    "fallback_emails" };
#define NSMS (sizeof(sms_cols) / sizeof(sms_cols[0]))
/* SMS campaigns: their texts by what became of them, parts and cost */
static const char *const smsc_cols[] = { "campaign", "status", "messages",
    "segments", "cost", "queued", "deferred", "sending", "sent", "delivered",
    "failed", "suppressed", "cancelled" };
#define NSMSC (sizeof(smsc_cols) / sizeof(smsc_cols[0]))

static void
sms_campaigns(const json_t *cps, int csv)
{
	static const char *const head[NSMSC] = { "CAMPAIGN", "STATUS", "TEXTS",
	    "PARTS", "COST", "QUEUED", "QUIET", "SENDING", "SENT", "DELIVERED",
	    "FAILED", "STOPPED", "CANCELLED" };
	struct cli_table t;
	size_t i;
	json_t *r;
	char v[64];

	if (csv) {
		if (json_array_size(cps) == 0)
			return;
		printf("\n");
		for (size_t k = 0; k < NSMSC; k++)
			csv_cell(smsc_cols[k], k + 1 == NSMSC);
		json_array_foreach(cps, i, r)
			for (size_t k = 0; k < NSMSC; k++)
				csv_cell(cli_fmt_scalar(json_object_get(r,
				    smsc_cols[k]), "0", v, sizeof(v)),
				    k + 1 == NSMSC);
		return;
	}
	if (json_array_size(cps) == 0)
		return;
	printf("SMS campaigns\n");
	cli_table_init(&t, NSMSC, head, "llrrrrrrrrrrr");
	json_array_foreach(cps, i, r) {
		char cell[NSMSC][64];
		const char *row[NSMSC];

		for (size_t k = 0; k < NSMSC; k++) {
			row[k] = cell[k];
			cli_fmt_scalar(json_object_get(r, smsc_cols[k]), "0",
			    cell[k], sizeof(cell[k]));
		}
		cli_table_add(&t, row);
	}
	cli_table_print(&t, stdout);
	cli_table_free(&t);
}

static const char *
sms_rate(const json_t *row, int csv, char *out, size_t n)
{
	json_t *v = json_object_get(row, "delivery_rate");

	if (!json_is_number(v))
		snprintf(out, n, "%s", csv ? "" : "-");
	else
		snprintf(out, n, csv ? "%.1f" : "%.0f%%", 100.0 *
		    json_number_value(v));
	return out;
}

static int
report_sms(const struct cli_args *a)
{
	const char *since = cli_arg(a, "since");
	int csv = cli_arg(a, "csv") != NULL;
	char iso[64], q[128], err[256], url[256], v[64];
	json_t *doc = NULL, *gws, *r, *in;
	struct conf *c;
	size_t i;
	int rc;

	if (a->nwords != 1 || (csv && json_out)) {
		fprintf(stderr, "usage: leadcast report sms [--since DATE] "
		    "[--json|--csv]\n");
		return 2;
	}
	if (since && cli_fmt_since(since, time(NULL), iso, sizeof(iso), err,
	    sizeof(err)) < 0) {
		fprintf(stderr, "leadcast report sms: --since: %s\n", err);
		return 2;
	}
	if (!(c = cli_load(a->path)))
		return 1;
	snprintf(url, sizeof(url), "/api/v1/reports/sms%s%s", since ?
	    "?since=" : "", since ? cli_fmt_query(iso, q, sizeof(q)) : "");
	rc = cli_request(c, "GET", url, NULL, &doc);
	conf_free(c);
	if (rc != 0)
		return rc;
	gws = json_object_get(doc, "gateways");
	in = json_object_get(doc, "inbound");
	if (json_out) {
		print_json(doc);
		return 0;
	}
	if (csv) {
		csv_cell("gateway", 0);
		for (size_t k = 0; k < NSMS; k++)
			csv_cell(sms_cols[k], 0);
		csv_cell("delivery_pct", 0);
		csv_cell("send_p50_s", 0);
		csv_cell("deliver_p50_s", 1);
		json_array_foreach(gws, i, r) {
			csv_cell(json_string_value(json_object_get(r, "gateway")),
			    0);
			for (size_t k = 0; k < NSMS; k++)
				csv_cell(cli_fmt_scalar(json_object_get(r,
				    sms_cols[k]), "0", v, sizeof(v)), 0);
			csv_cell(sms_rate(r, 1, v, sizeof(v)), 0);
			csv_cell(cli_fmt_scalar(json_object_get(r, "send_p50_s"),
			    "", v, sizeof(v)), 0);
			csv_cell(cli_fmt_scalar(json_object_get(r,
			    "deliver_p50_s"), "", v, sizeof(v)), 1);
		}
		sms_campaigns(json_object_get(doc, "campaigns"), 1);
	} else {
		const char *head[13] = { "GATEWAY", "MESSAGES", "PARTS", "SENT",
		    "DELIVERED", "FAILED", "QUEUED", "SENDING", "FAILED OVER",
		    "EMAILED", "DELIVERY %", "TO GATEWAY p50", "TO PHONE p50" };
		struct cli_table t;
		char s[64];

		printf("SMS since %s\n", cli_fmt_time(json_object_get(doc,
		    "since"), "the start", s, sizeof(s)));
		if (json_array_size(gws) == 0) {
			printf("  (nothing sent)\n");
		} else {
			cli_table_init(&t, 13, head, "lrrrrrrrrrrrr");
			json_array_foreach(gws, i, r) {
				char cell[13][64];
				const char *row[13];

				for (size_t k = 0; k < 13; k++)
					row[k] = cell[k];
				cli_fmt_scalar(json_object_get(r, "gateway"), "",
				    cell[0], sizeof(cell[0]));
				for (size_t k = 0; k < NSMS; k++)
					cli_fmt_scalar(json_object_get(r,
					    sms_cols[k]), "0", cell[k + 1],
					    sizeof(cell[k + 1]));
				sms_rate(r, 0, cell[10], sizeof(cell[10]));
				for (size_t k = 0; k < 2; k++) {
					json_t *d = json_object_get(r, k ?
					    "deliver_p50_s" : "send_p50_s");

					if (json_is_number(d))
						cli_fmt_duration(
						    json_number_value(d),
						    cell[11 + k],
						    sizeof(cell[11 + k]));
					else
						snprintf(cell[11 + k], 64, "-");
				}
				cli_table_add(&t, row);
			}
			cli_table_print(&t, stdout);
			cli_table_free(&t);
		}
		sms_campaigns(json_object_get(doc, "campaigns"), 0);
		printf("received: %lld from reps, %lld from leads, %lld from "
		    "unknown numbers\n",
		    (long long)json_integer_value(json_object_get(in, "rep")),
		    (long long)json_integer_value(json_object_get(in, "lead")),
		    (long long)json_integer_value(json_object_get(in,
		    "unknown")));
	}
	json_decref(doc);
	return 0;
}

/* ---- report campaigns -------------------------------------------------------------- */

/* The figures of a campaign, as rows of the side-by-side table (and
 * columns of the CSV): JSON key, label. */
static const char *const camp_keys[][2] = {
	{ "recipients", "recipients" }, { "sent", "sent" },
	{ "bounced", "bounced" }, { "failed", "failed" },
	{ "unique_human_opens", "opened (human, unique)" },
	{ "human_opens", "opens (human)" },
	{ "unique_machine_opens", "opened (machine, unique)" },
	{ "machine_opens", "opens (machine)" },
	{ "unique_opens", "opened (all, unique)" }, { "opens", "opens (all)" },
	{ "unique_human_clicks", "clicked (human, unique)" },
	{ "human_clicks", "clicks (human)" }, { "clicks", "clicks (all)" },
	{ "click_to_open", "click-to-open" },
	{ "scanner_hits", "scanner hits" },
	{ "unsubscribes", "unsubscribed" }, { "complaints", "complaints" },
	{ "forwards", "forwards" }, { "probable_forwards", "probable forwards" },
};
#define NCAMP (sizeof(camp_keys) / sizeof(camp_keys[0]))

/* A figure of o as text: click_to_open as a percentage. */
static const char *
camp_cell(const json_t *o, size_t k, int csv, char *out, size_t n)
{
	json_t *v = json_object_get(o, camp_keys[k][0]);

	if (!strcmp(camp_keys[k][0], "click_to_open")) {
		if (!json_is_number(v) && !(json_is_string(v)))
			snprintf(out, n, "%s", csv ? "" : "-");
		else
			snprintf(out, n, csv ? "%.2f" : "%.1f%%", 100.0 *
			    (json_is_string(v) ? atof(json_string_value(v)) :
			    json_number_value(v)));
		return out;
	}
	return cli_fmt_scalar(v, "0", out, n);
}

static void
camp_csv_row(const char *campaign, const char *kind, const char *key,
    const json_t *o)
{
	char v[64];

	csv_cell(campaign, 0);
	csv_cell(kind, 0);
	csv_cell(key, 0);
	for (size_t k = 0; k < NCAMP; k++)
		csv_cell(camp_cell(o, k, 1, v, sizeof(v)), k + 1 == NCAMP);
}

static void
camp_csv(const json_t *doc)
{
	json_t *cps = json_object_get(doc, "campaigns"), *cp, *x;
	size_t i, j;

	csv_cell("campaign", 0);
	csv_cell("kind", 0);
	csv_cell("key", 0);
	for (size_t k = 0; k < NCAMP; k++)
		csv_cell(camp_keys[k][0], k + 1 == NCAMP);
	json_array_foreach(cps, i, cp) {
		const char *name = json_string_value(json_object_get(cp,
		    "name"));

		camp_csv_row(name, "campaign", "", cp);
		json_array_foreach(json_object_get(cp, "domains"), j, x)
			camp_csv_row(name, "domain", json_string_value(
			    json_object_get(x, "domain")), x);
		json_array_foreach(json_object_get(cp, "links"), j, x) {
			/* a link row: clicks in its columns, the rest empty */
			json_t *o = json_pack("{s:O?, s:O?, s:O?}", "clicks",
			    json_object_get(x, "clicks"), "human_clicks",
			    json_object_get(x, "human_clicks"),
			    "unique_human_clicks", json_object_get(x,
			    "unique_human_clicks"));

			camp_csv_row(name, "link", json_string_value(
			    json_object_get(x, "url")), o);
			json_decref(o);
		}
	}
	if (json_array_size(cps) > 1)
		camp_csv_row("", "total", "", json_object_get(doc, "total"));
}

static void
camp_text(const json_t *doc)
{
	json_t *cps = json_object_get(doc, "campaigns"), *cp, *x;
	size_t n = json_array_size(cps), ncols = n + 1 + (n > 1), i, j;
	const char **head = calloc(ncols, sizeof(*head));
	char *align = calloc(ncols + 1, 1), s[64], u[64];
	struct cli_table t;

	printf("campaigns, %s to %s\n", cli_fmt_time(json_object_get(doc,
	    "since"), "-", s, sizeof(s)), cli_fmt_time(json_object_get(doc,
	    "until"), "-", u, sizeof(u)));
	if (!head || !align || n == 0) {
		printf("  (no campaign sent in the period)\n");
		free(head);
		free(align);
		return;
	}
	head[0] = "";
	align[0] = 'l';
	json_array_foreach(cps, i, cp) {
		head[i + 1] = json_string_value(json_object_get(cp, "name"));
		align[i + 1] = 'r';
	}
	if (n > 1) {
		head[n + 1] = "TOTAL";
		align[n + 1] = 'r';
	}
	cli_table_init(&t, (int)ncols, head, align);
	for (size_t k = 0; k < NCAMP; k++) {
		char cells[24][64];
		const char *row[24];

		if (ncols > 24)
			break;
		row[0] = camp_keys[k][1];
		json_array_foreach(cps, i, cp)
			row[i + 1] = camp_cell(cp, k, 0, cells[i + 1], 64);
		if (n > 1)
			row[n + 1] = camp_cell(json_object_get(doc, "total"), k, 0,
			    cells[n + 1], 64);
		cli_table_add(&t, row);
	}
	cli_table_print(&t, stdout);
	cli_table_free(&t);
	json_array_foreach(cps, i, cp) {
		static const char *const lh[] = { "LINK", "TAG", "CLICKS",
		    "HUMAN", "HUMAN UNIQUE" };
		static const char *const dh[] = { "DOMAIN", "SENT", "BOUNCED",
		    "OPENED", "MACHINE", "CLICKED", "CTO", "UNSUB", "COMPLAINTS" };
		static const size_t dk[] = { 1, 2, 4, 6, 10, 13, 15, 16 };

		printf("\n%s: clicks per link\n", json_string_value(
		    json_object_get(cp, "name")));
		if (json_array_size(json_object_get(cp, "links")) == 0)
			printf("  (no tracked links)\n");
		else {
			cli_table_init(&t, 5, lh, "llrrr");
			json_array_foreach(json_object_get(cp, "links"), j, x) {
				char c[5][512];
				const char *row[5] = { c[0], c[1], c[2], c[3],
				    c[4] };

				cli_fmt_scalar(json_object_get(x, "url"), "", c[0],
				    sizeof(c[0]));
				cli_fmt_scalar(json_object_get(x, "tag"), "", c[1],
				    sizeof(c[1]));
				cli_fmt_scalar(json_object_get(x, "clicks"), "0",
				    c[2], sizeof(c[2]));
				cli_fmt_scalar(json_object_get(x, "human_clicks"),
				    "0", c[3], sizeof(c[3]));
				cli_fmt_scalar(json_object_get(x,
				    "unique_human_clicks"), "0", c[4],
				    sizeof(c[4]));
				cli_table_add(&t, row);
			}
			cli_table_print(&t, stdout);
			cli_table_free(&t);
		}
		printf("\n%s: by recipient domain (opened and clicked: human, "
		    "unique)\n", json_string_value(json_object_get(cp, "name")));
		cli_table_init(&t, 9, dh, "lrrrrrrrr");
		json_array_foreach(json_object_get(cp, "domains"), j, x) {
			char c[9][256];
			const char *row[9];

			for (size_t k = 0; k < 9; k++)
				row[k] = c[k];
			cli_fmt_scalar(json_object_get(x, "domain"), "", c[0],
			    sizeof(c[0]));
			for (size_t k = 0; k < 8; k++)
				camp_cell(x, dk[k], 0, c[k + 1], sizeof(c[k + 1]));
			cli_table_add(&t, row);
		}
		cli_table_print(&t, stdout);
		cli_table_free(&t);
	}
	free(head);
	free(align);
}

static int
report_campaigns(const struct cli_args *a)
{
	const char *since = cli_arg(a, "since"), *until = cli_arg(a, "until");
	int csv = cli_arg(a, "csv") != NULL;
	char iso[2][64], q[2][128], err[256], url[2048], names[1024] = "";
	char nq[1200];
	json_t *doc = NULL;
	struct conf *c;
	int rc;

	if (csv && json_out) {
		fprintf(stderr, "usage: leadcast report campaigns [NAME ...] "
		    "[--since DATE] [--until DATE] [--json|--csv]\n");
		return 2;
	}
	if ((since && cli_fmt_since(since, time(NULL), iso[0], sizeof(iso[0]),
	    err, sizeof(err)) < 0) || (until && cli_fmt_since(until,
	    time(NULL), iso[1], sizeof(iso[1]), err, sizeof(err)) < 0)) {
		fprintf(stderr, "leadcast report campaigns: --%s: %s\n", since &&
		    cli_fmt_since(since, time(NULL), iso[0], sizeof(iso[0]), err,
		    sizeof(err)) < 0 ? "since" : "until", err);
		return 2;
	}
	for (int i = 1; i < a->nwords; i++) {
		if (strchr(a->words[i], ',') || strlen(names) +
		    strlen(a->words[i]) + 2 > sizeof(names)) {
			fprintf(stderr, "leadcast report campaigns: '%s': not a "
			    "campaign name\n", a->words[i]);
			return 2;
		}
		if (*names)
			strcat(names, ",");
		strcat(names, a->words[i]);
	}
	if (!(c = cli_load(a->path)))
		return 1;
	snprintf(url, sizeof(url), "/api/v1/reports/campaigns?campaigns=%s%s%s"
	    "%s%s", cli_fmt_query(names, nq, sizeof(nq)), since ? "&since=" :
	    "", since ? cli_fmt_query(iso[0], q[0], sizeof(q[0])) : "", until ?
	    "&until=" : "", until ? cli_fmt_query(iso[1], q[1], sizeof(q[1])) :
	    "");
	rc = cli_request(c, "GET", url, NULL, &doc);
	conf_free(c);
	if (rc != 0)
		return rc;
	if (json_out) {
		print_json(doc);
		return 0;
	}
	if (csv)
		camp_csv(doc);
	else
		camp_text(doc);
	json_decref(doc);
	return 0;
}

int
cli_report(const char *path, int argc, char **argv)
{
	static const struct cli_verb verbs[] = {
		{ "routing", "since= csv", report_routing },
		{ "sms", "since= csv", report_sms },
		{ "campaigns", "since= until= csv", report_campaigns },
	};

	return cli_dispatch("report", path, argc, argv, verbs, 3,
	    "usage: leadcast report routing|sms [--since DATE] "
	    "[--json|--csv]\n"
	    "       leadcast report campaigns [NAME ...] [--since DATE] "
	    "[--until DATE] [--json|--csv]\n");
}
