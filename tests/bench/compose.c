/*
 * compose - what one campaign message costs the composer, outside the
 * daemon: Mustache rendering, link rewriting and the open pixel, the
 * text part made from the HTML, MIME and the DKIM signature, for the
 * newsletter tests/bench/send sends (its template is read from a file:
 * `tests/bench/send --write-template FILE` writes it), every message to
 * another recipient with other personal fields.
 *
 *   (a)  compose_message(), RSA-2048 DKIM-signed
 *   (b)  compose_message(), unsigned
 *   (c)  dkim_keys_sign() of one composed message
 *   (d)  the bare RSA-2048 signature of a SHA-256 digest with the same key
 *        (EVP_PKEY_sign): the peer, the part no signing composer avoids
 *   (t)  (a) on THREADS threads at once: messages/s of the machine, beside
 *        (d) on as many threads
 *
 * Usage: compose TEMPLATE [N] [THREADS]   (N messages per figure, default
 * 2000, timed in 5 rounds, each figure its fastest round's; THREADS
 * default: the number of cores)
 */
#include "compose.h"
#include "dkim.h"
#include "tmpl.h"
#include "token.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#define DOMAIN          "example.com"
#define ROUNDS          5

static struct compose_spec spec;
static struct dkim_keys *keys;
static EVP_PKEY *pkey;
static int n_msgs;

/* Seconds on clock c: CLOCK_MONOTONIC, or this process's CPU time. */
static double
seconds(clockid_t c)
{
	struct timespec ts;

	clock_gettime(c, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#define now() seconds(CLOCK_MONOTONIC)
#define cpu_now() seconds(CLOCK_PROCESS_CPUTIME_ID)

static struct tmpl *
compile(const char *name, const char *src, size_t len)
{
	struct tmpl *t = NULL;
	struct tmpl_error te;

	if (tmpl_compile(name, src, len, &t, &te) < 0) {
		fprintf(stderr, "%s:%d:%d: %s\n", name, te.line, te.col, te.msg);
		exit(1);
	}
	return t;
}

static struct tmpl *
compile_str(const char *name, const char *src)
{
	return compile(name, src, strlen(src));
}

/* Every link of the newsletter is known: ids by a hash of the URL. */
static uint64_t
link_id(void *arg, const char *url, const char *tag)
{
	uint64_t h = 1469598103934665603ULL;

	(void)arg;
	for (; *url; url++)
		h = (h ^ (unsigned char)*url) * 1099511628211ULL;
	for (; *tag; tag++)
		h = (h ^ (unsigned char)*tag) * 1099511628211ULL;
	return (h & 0xffffff) + 1;
}

/* The lead of recipient i, shaped like the send benchmark's. */
static json_t *
lead(unsigned i, char *rcpt, size_t n)
{
	static const char *const first[] = { "Ada", "Grace", "Alan", "Edsger",
		"Barbara", "Linus", "Margaret", "Dennis" };
	static const char *const city[] = { "Berlin", "Lyon", "Austin",
		"Osaka", NULL };
	static const char *const plan[] = { "free", "pro", "team" };
	char fn[32], ln[32], co[32];

	snprintf(rcpt, n, "lead%u@rcpt%u.example", i, i % 97);
	snprintf(fn, sizeof(fn), "%s%u", first[i % 8], i);
	snprintf(ln, sizeof(ln), "Tester%u", i);
	snprintf(co, sizeof(co), "Company %u", i % 5000);
	return json_pack("{s:s, s:s, s:s, s:s, s:s?, s:s, s:{s:s}}", "email",
	    rcpt, "first_name", fn, "last_name", ln, "company", co, "city",
	    city[i % 5], "country", "DE", "fields", "plan", plan[i % 3]);
}

static void
one(const struct compose_spec *sp, unsigned i, struct compose_out *out)
{
	char rcpt[128];
	json_t *data = lead(i, rcpt, sizeof(rcpt));

	compose_out_reset(out);
	if (compose_message(sp, 1000 + i, rcpt, data, out) != COMPOSE_OK) {
		fprintf(stderr, "compose_message: %s\n", out->err);
		exit(1);
	}
	json_decref(data);
}

static void
bare_sign(void)
{
	unsigned char dig[32] = { 1 }, sig[512];
	size_t siglen = sizeof(sig);
	EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);

	if (pc == NULL || EVP_PKEY_sign_init(pc) != 1 ||
	    EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PADDING) != 1 ||
	    EVP_PKEY_CTX_set_signature_md(pc, EVP_sha256()) != 1 ||
	    EVP_PKEY_sign(pc, sig, &siglen, dig, 32) != 1) {
		fprintf(stderr, "EVP_PKEY_sign failed\n");
		exit(1);
	}
	EVP_PKEY_CTX_free(pc);
}

/* Warm up, then time n messages in ROUNDS rounds; the fastest round's
 * wall and CPU time per message, in microseconds. */
#define TIME(label, wall, cpu, stmt) do {				\
	int per_ = n / ROUNDS > 0 ? n / ROUNDS : 1;			\
	for (int i_ = 0; i_ < per_ / 10 + 1; i_++)			\
		stmt;							\
	wall = cpu = 1e30;						\
	for (int r_ = 0; r_ < ROUNDS; r_++) {				\
		double t0_ = now(), c0_ = cpu_now(), t_, c_;		\
		for (int i_ = 0; i_ < per_; i_++)			\
			stmt;						\
		t_ = (now() - t0_) / per_ * 1e6;			\
		c_ = (cpu_now() - c0_) / per_ * 1e6;			\
		if (t_ < wall)						\
			wall = t_, cpu = c_;				\
	}								\
	printf("  %-46s %8.1f us/msg (CPU %.1f us)\n", label, wall, cpu); \
	fflush(stdout);							\
} while (0)

struct thr {
	pthread_t t;
	int which;              /* 0: compose, 1: bare signature */
	unsigned from;
	int n;
};

static void *
thr_run(void *arg)
{
	struct thr *t = arg;
	struct compose_out out;

	memset(&out, 0, sizeof(out));
	for (int i = 0; i < t->n; i++) {
		if (t->which == 0)
			one(&spec, t->from + (unsigned)i, &out);
		else
			bare_sign();
	}
	compose_out_free(&out);
	return NULL;
}

/* Messages/s of nthr threads doing `which`, best of ROUNDS rounds. */
static double
threaded(int which, int nthr, int n)
{
	struct thr *t = calloc((size_t)nthr, sizeof(*t));
	double best = 0;

	for (int r = 0; r < ROUNDS; r++) {
		double t0 = now(), rate;

		for (int k = 0; k < nthr; k++) {
			t[k].which = which;
			t[k].from = (unsigned)(r * n + k * (n / nthr));
			t[k].n = n / nthr;
			pthread_create(&t[k].t, NULL, thr_run, &t[k]);
		}
		for (int k = 0; k < nthr; k++)
			pthread_join(t[k].t, NULL);
		rate = (double)(n / nthr * nthr) / (now() - t0);
		if (rate > best)
			best = rate;
	}
	free(t);
	return best;
}

static char *
slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "r");
	char *p = malloc(TMPL_MAX_SIZE + 1);

	if (f == NULL || p == NULL) {
		perror(path);
		exit(2);
	}
	*len = fread(p, 1, TMPL_MAX_SIZE, f);
	p[*len] = '\0';
	fclose(f);
	return p;
}

int
main(int argc, char **argv)
{
	char dir[] = "/tmp/lc-bench-compose.XXXXXX", path[64], err[512];
	struct buf txt = BUF_INIT, sig = BUF_INIT;
	struct compose_out out;
	struct token_key key;
	struct compose_spec plain;
	double a, a_cpu, b, b_cpu, c, c_cpu, d, d_cpu, ta, td;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	int n, nthr;
	size_t len;
	char *src;
	FILE *f;

	if (argc < 2 || mkdtemp(dir) == NULL) {
		fprintf(stderr, "usage: %s TEMPLATE [N] [THREADS]\n", argv[0]);
		return 2;
	}
	n = argc > 2 ? atoi(argv[2]) : 2000;
	nthr = argc > 3 ? atoi(argv[3]) : (int)(ncpu > 0 ? ncpu : 1);
	n_msgs = n;
	src = slurp(argv[1], &len);
	snprintf(path, sizeof(path), "%s/rsa.pem", dir);
	if (dkim_keygen(DOMAIN, "s1", DKIM_ALG_RSA_SHA256, path, &txt, err,
	    sizeof(err)) != 0 || !(keys = dkim_keys_new()) ||
	    dkim_keys_add(keys, DOMAIN, "s1", DKIM_ALG_RSA_SHA256, path, err,
	    sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	if ((f = fopen(path, "r")) == NULL ||
	    (pkey = PEM_read_PrivateKey(f, NULL, NULL, NULL)) == NULL) {
		fprintf(stderr, "%s: cannot read the key back\n", path);
		return 1;
	}
	fclose(f);
	unlink(path);           /* both loaded: the key file is not needed */
	rmdir(dir);
	for (size_t i = 0; i < TOKEN_KEY_LEN; i++)
		key.k[i] = (unsigned char)(i * 13 + 5);

	/* as tests/bench/send's campaign file has it */
	spec.name = "bench";
	spec.campaign_id = 7;
	spec.from = compile_str("from", "Acme News <news@" DOMAIN ">");
	spec.subject = compile_str("subject", "{{#first_name}}{{first_name}}, "
	    "{{/first_name}}what is new at Acme for {{company}}");
	spec.preheader = compile_str("preheader", "Five things we shipped "
	    "this month");
	spec.html = compile(argv[1], src, len);
	spec.bulk = 1;
	spec.track = 1;
	spec.public_url = "https://t.example.com";
	spec.bounce_domain = "";
	spec.unsubscribe_mailto = "";
	spec.list_id_domain = "";
	spec.max_size = 10 * 1024 * 1024;
	spec.key = &key;
	spec.dkim = keys;
	spec.link_id = link_id;
	plain = spec;
	plain.dkim = NULL;

	memset(&out, 0, sizeof(out));
	one(&spec, 1, &out);
	printf("compose: the send benchmark's newsletter, %zu bytes signed, "
	    "%d messages per figure, %s\n", out.msg.len, n,
	    OpenSSL_version(OPENSSL_VERSION));
	TIME("(a)  compose_message, RSA-2048 DKIM", a, a_cpu,
	    one(&spec, (unsigned)i_, &out));
	TIME("(b)  compose_message, unsigned", b, b_cpu,
	    one(&plain, (unsigned)i_, &out));
	one(&plain, 1, &out);
	TIME("(c)  dkim_keys_sign of one message", c, c_cpu,
	    (buf_reset(&sig), dkim_keys_sign(keys, DOMAIN, out.msg.data,
	    out.msg.len, &sig, err, sizeof(err))));
	TIME("(d)  bare RSA-2048 signature (peer)", d, d_cpu, bare_sign());
	ta = threaded(0, nthr, n);
	td = threaded(1, nthr, n);
	printf("  (t)  %d threads: (a) %.0f msgs/s, (d) %.0f signatures/s\n",
	    nthr, ta, td);
	printf("ratios:\n");
	printf("  (a)/(d) = %5.2f   a signed message over the bare signature\n",
	    a / d);
	printf("  (b)/(d) = %5.2f   composing without signing, in signatures\n",
	    b / d);
	printf("  (c)-(d) = %5.1f us  DKIM around the RSA signature "
	    "(canonicalization, hashes, header)\n", c - d);
	printf("  (t) (a)/(d) = %.3f   on %d threads\n", ta / td, nthr);

	compose_out_free(&out);
	buf_free(&txt);
	buf_free(&sig);
	tmpl_free((struct tmpl *)spec.from);
	tmpl_free((struct tmpl *)spec.subject);
	tmpl_free((struct tmpl *)spec.preheader);
	tmpl_free((struct tmpl *)spec.html);
	dkim_keys_free(keys);
	EVP_PKEY_free(pkey);
	free(src);
	return 0;
}
