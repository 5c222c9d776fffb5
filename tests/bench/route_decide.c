/*
 * route_decide - in-process routing decisions per second: route_match
 * (the first of 200 rules whose condition holds) plus route_pick (the rep,
 * among the 50 members of the rule's team, honouring working hours in 8
 * time zones, capacity, required attributes and stride passes), over a
 * generated routing.conf of 1,000 reps in 20 teams. One thread.
 *
 * Beside it, measured in the same run:
 *   (m) route_match alone: the 200-rule scan, the floor of first-match
 *       routing with this condition language;
 *   (p) route_pick alone, for the rules (m) found;
 *   (n) a naive pick through the public API: route_eligible() per member
 *       (the lead's JSON read and the local time computed for every rep)
 *       and the lowest pass, which is what the per-decision zone cache and
 *       the lead view in route_pick avoid.
 * Each figure is the median of 5 rounds. Target: at least 50,000
 * decisions per second.
 *
 * Usage: route_decide [N]   (N decisions per round, default 100000)
 * Build: see the comment at the end of this file.
 */
#include "cond.h"
#include "route.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define NTEAMS  20
#define NPER    50
#define NRULES  200
#define NLEADS  4096
#define ROUNDS  5

/* Monday 2024-03-11 15:00Z: New York 11:00, Los Angeles 08:00, Berlin
 * 16:00, Tokyo 00:00 Tuesday: some reps in hours, some not. */
#define NOW     1710169200

static const char *const zones[] = { "America/New_York", "America/Chicago",
	"America/Denver", "America/Los_Angeles", "Europe/London",
	"Europe/Berlin", "Asia/Tokyo", "Australia/Sydney" };
static const char *const countries[] = { "US", "CA", "GB", "DE", "FR", "JP",
	"AU", "BR", "MX", "IN", "ES", "IT", "NL", "SE", "NO", "PL", "IE", "NZ",
	"SG", "KR", "ZA", "AR", "CL", "CO", "PT", "BE", "AT", "CH", "DK",
	"FI" };
static const char *const products[] = { "widgets", "gadgets", "gizmos",
	"sprockets", "doohickeys", "thingamajigs", "whatsits", "contraptions",
	"devices", "apparatus" };
static const char *const regions[] = { "NY", "CA", "TX", "MI", "ON", "BC",
	"BY", "IDF", "KANTO", "NSW" };

#define N(a) (sizeof(a) / sizeof((a)[0]))

static unsigned long long rng = 88172645463325252ULL;

static unsigned
rnd(unsigned n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (unsigned)(rng % n);
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
gen_conf(FILE *f)
{
	static const char *const methods[] = { "round_robin", "round_robin",
		"round_robin", "least_loaded", "score_tiers" };

	fprintf(f, "time_zone = \"America/New_York\"\n");
	for (int t = 0; t < NTEAMS; t++) {
		const char *m = methods[t % N(methods)];

		fprintf(f, "team \"team%d\" {\n\tmethod = %s\n\tcatch_all = "
		    "\"rep%d\"\n", t, m, t * NPER);
		if (strcmp(m, "score_tiers") == 0)
			fprintf(f, "\ttiers = { \"senior:70\", \"mid:40\", "
			    "\"junior:0\" }\n");
		fprintf(f, "}\n");
	}
	for (int r = 0; r < NTEAMS * NPER; r++) {
		static const char *const tiers[] = { "senior", "mid",
			"junior" };
		int t = r / NPER;

		fprintf(f, "rep \"rep%d\" {\n\temail = \"rep%d@example.com\"\n"
		    "\tphone = \"+1555%07d\"\n\ttime_zone = \"%s\"\n", r, r, r,
		    zones[r % N(zones)]);
		if (r % 10 != 0)        /* a tenth work any time */
			fprintf(f, "\thours = { \"mon-fri %02d:00-%02d:30\", "
			    "\"sat 10:00-14:00\" }\n", 7 + r % 3, 16 + r % 3);
		fprintf(f, "\tweight = %.1f\n\tcapacity = %d\n", 0.5 + r % 6 *
		    0.5, 10 + r % 20);
		fprintf(f, "\tterritories = { \"%s\", \"%s\", \"%s\" }\n",
		    countries[r % N(countries)],
		    countries[(r + 7) % N(countries)],
		    regions[r % N(regions)]);
		fprintf(f, "\tproducts = { \"%s\", \"%s\" }\n",
		    products[r % N(products)], products[(r + 3) % N(products)]);
		fprintf(f, "\tlanguages = { \"en\", \"de\" }\n\tskills = { "
		    "\"s%d\" }\n", r % 4);
		fprintf(f, "\tteams = { \"team%d\" }\n", t);
		if (strcmp(methods[t % N(methods)], "score_tiers") == 0)
			fprintf(f, "\ttier = \"%s\"\n", tiers[r % 3]);
		fprintf(f, "}\n");
	}
	for (int u = 0; u < NRULES - 1; u++) {
		const char *c1 = countries[u % N(countries)];
		const char *c2 = countries[(u * 7 + 3) % N(countries)];
		const char *p = products[(u / 3) % N(products)];

		fprintf(f, "rule \"rule%d\" {\n\tteam = \"team%d\"\n", u,
		    u % NTEAMS);
		switch (u % 4) {
		case 0:
			fprintf(f, "\twhen = \"country == '%s' and product == "
			    "'%s' and budget >= %d\"\n", c1, p,
			    1000 * (u % 50));
			fprintf(f, "\trequire = { \"territory\" }\n");
			break;
		case 1:
			fprintf(f, "\twhen = \"score >= %d and country in "
			    "['%s', '%s']\"\n", 50 + u % 50, c1, c2);
			break;
		case 2:
			fprintf(f, "\twhen = \"product == '%s' and country == "
			    "'%s' and (budget > %d or score > %d)\"\n", p, c2,
			    5000 * (u % 40), u % 100);
			fprintf(f, "\trequire = { \"product\" }\n");
			break;
		default:
			fprintf(f, "\twhen = \"country == '%s' and region == "
			    "'%s' and score >= %d and budget < %d\"\n", c2,
			    regions[u % N(regions)], u % 60, 20000 + 1000 * u);
			break;
		}
		fprintf(f, "}\n");
	}
	fprintf(f, "rule \"default\" {\n\tteam = \"team0\"\n}\n");
}

static json_t *
gen_lead(void)
{
	return json_pack("{s:s, s:s, s:s, s:i, s:i, s:s}",
	    "country", countries[rnd(N(countries))],
	    "region", regions[rnd(N(regions))],
	    "product", products[rnd(N(products))],
	    "budget", (int)rnd(250000),
	    "score", (int)rnd(101),
	    "language", rnd(4) ? "en-US" : "de");
}

/* The daemon's side of an offer: the rep owns one more lead, and the
 * oldest of the last INFLIGHT offered leads closes (about one open lead
 * per rep on average; capacities 10 to 29). */
#define INFLIGHT 1000

static void
settle(const struct route_conf *rc, struct route_rep_state *st, size_t rep)
{
	static size_t ring[INFLIGHT];
	static size_t head, fill;

	(void)rc;
	if (rep == ROUTE_NONE)
		return;
	st[rep].open++;
	if (fill == INFLIGHT)
		st[ring[head]].open--;
	else
		fill++;
	ring[head] = rep;
	head = (head + 1) % INFLIGHT;
}

static int
by_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double
median(double *v)
{
	qsort(v, ROUNDS, sizeof(*v), by_double);
	return v[ROUNDS / 2];
}

/* A pick through the public per-rep API, as a naive engine would. */
static size_t
naive_pick(const struct route_conf *rc, const struct route_rule *u,
    const json_t *lead, struct route_rep_state *st)
{
	const struct route_team *t = u->team;
	size_t best = ROUTE_NONE;

	for (size_t i = 0; i < t->nmembers; i++) {
		size_t r = t->members[i];

		if (route_eligible(rc, u, r, &st[r], lead, NULL, NOW) !=
		    ROUTE_ELIGIBLE)
			continue;
		if (best == ROUTE_NONE || st[r].pass < st[best].pass)
			best = r;
	}
	if (best != ROUTE_NONE)
		route_charge(rc, st, best);
	return best;
}

int
main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 100000;
	char path[] = "/tmp/route_decide_XXXXXX";
	struct cfgfile_errors errs = { NULL, 0 };
	struct cond_env env = { NOW, NULL };
	double dec[ROUNDS], mat[ROUNDS], pik[ROUNDS], nai[ROUNDS], t0, load;
	const struct route_rule **matched;
	struct route_rep_state *st;
	struct route_conf *rc;
	size_t set[NPER], offers = 0, assigns = 0, rulehits[NRULES] = { 0 };
	double avgpos = 0;
	json_t *leads[NLEADS];
	int fd;
	FILE *f;

	if (n < 1000)
		n = 1000;
	if ((fd = mkstemp(path)) < 0 || !(f = fdopen(fd, "w"))) {
		perror(path);
		return 1;
	}
	gen_conf(f);
	fclose(f);
	t0 = now_s();
	rc = route_load(path, &errs);
	load = now_s() - t0;
	unlink(path);
	if (!rc) {
		for (size_t i = 0; i < errs.n; i++)
			fprintf(stderr, "%s\n", errs.msgs[i]);
		return 1;
	}
	for (int i = 0; i < NLEADS; i++)
		leads[i] = gen_lead();
	if (!(st = calloc(rc->nreps, sizeof(*st))) ||
	    !(matched = calloc(NLEADS, sizeof(*matched))))
		return 1;
	for (size_t i = 0; i < rc->nreps; i++) {
		route_state_init(&st[i]);
		st[i].on_duty = i % 17 != 0;
	}
	for (int i = 0; i < NLEADS; i++) {
		matched[i] = route_match(rc, leads[i], &env);
		rulehits[matched[i] - rc->rules]++;
		avgpos += (double)(matched[i] - rc->rules + 1) / NLEADS;
	}

	for (int round = 0; round < ROUNDS; round++) {
		struct route_result out;
		volatile size_t sink = 0;

		/* (d) match + pick */
		t0 = now_s();
		for (long i = 0; i < n; i++) {
			memset(&out, 0, sizeof(out));
			out.set = set;
			out.setcap = NPER;
			route_decide(rc, leads[i % NLEADS], &env, st, NULL,
			    &out);
			offers += out.action == ROUTE_OFFER_ONE;
			assigns += out.action == ROUTE_ASSIGN;
			settle(rc, st, out.action == ROUTE_OFFER_ONE ? out.rep :
			    ROUTE_NONE);
		}
		dec[round] = (double)n / (now_s() - t0);

		/* (m) match alone */
		t0 = now_s();
		for (long i = 0; i < n; i++)
			sink += (size_t)route_match(rc, leads[i % NLEADS],
			    &env);
		mat[round] = (double)n / (now_s() - t0);

		/* (p) pick alone */
		t0 = now_s();
		for (long i = 0; i < n; i++) {
			const struct route_rule *u = matched[i % NLEADS];

			memset(&out, 0, sizeof(out));
			out.set = set;
			out.setcap = NPER;
			route_pick(rc, u->team, u, leads[i % NLEADS], st, NULL,
			    NOW, &out);
			settle(rc, st, out.action == ROUTE_OFFER_ONE ? out.rep :
			    ROUTE_NONE);
		}
		pik[round] = (double)n / (now_s() - t0);

		/* (n) naive pick */
		t0 = now_s();
		for (long i = 0; i < n; i++) {
			const struct route_rule *u = matched[i % NLEADS];

			settle(rc, st, naive_pick(rc, u, leads[i % NLEADS],
			    st));
		}
		nai[round] = (double)n / (now_s() - t0);
		(void)sink;
	}

	{
		size_t used = 0;

		for (int i = 0; i < NRULES; i++)
			used += rulehits[i] > 0;
		printf("route_decide: %zu reps in %zu teams, %zu rules, %zu "
		    "zones; %ld decisions per round, median of %d\n",
		    rc->nreps, rc->nteams, rc->nrules, rc->nzones, n, ROUNDS);
		printf("  leads: %d distinct, matching %zu different rules, "
		    "on average the %.0fth (conditions evaluated per match); "
		    "default rule %.1f%%\n", NLEADS, used, avgpos,
		    100.0 * (double)rulehits[NRULES - 1] / NLEADS);
		printf("  outcomes of (d): %.1f%% offers, %.1f%% catch-all "
		    "(nobody eligible)\n", 100.0 * (double)offers /
		    (double)(n * ROUNDS), 100.0 * (double)assigns /
		    (double)(n * ROUNDS));
	}
	printf("  (d) decisions (match + pick)  %10.0f /s   %.2f us each   "
	    "target >= 50000: %s\n", median(dec), 1e6 / median(dec),
	    median(dec) >= 50000 ? "met" : "MISSED");
	printf("  (m) route_match alone         %10.0f /s   (d)/(m) = %.2f\n",
	    median(mat), median(dec) / median(mat));
	printf("  (p) route_pick alone          %10.0f /s   (p)/(m) = %.2f\n",
	    median(pik), median(pik) / median(mat));
	printf("  (n) naive pick (peer)         %10.0f /s   (p)/(n) = %.2f\n",
	    median(nai), median(pik) / median(nai));
	printf("  loading the configuration: %.1f ms\n", load * 1000);

	for (int i = 0; i < NLEADS; i++)
		json_decref(leads[i]);
	free(matched);
	free(st);
	route_conf_free(rc);
	cfgfile_errors_free(&errs);
	return 0;
}

/*
 * Build and run from the top of the tree (libleadcast built in build/):
 *   cc -std=c11 -D_GNU_SOURCE -O2 -Ilib lib/route.c \
 *     tests/bench/route_decide.c build/lib/libleadcast.a \
 *     $(pkg-config --cflags --libs jansson opendkim libcrypto libssl \
 *     libevent_core libevent_extra libevent_pthreads libevent_openssl \
 *     libpq libesmtp-1.0 ldns) -letpan -lpthread -lm -o route_decide && \
 *     ./route_decide 100000
 */
