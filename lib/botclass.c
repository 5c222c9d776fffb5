/*
 * botclass - human, machine or scanner, from agent and address lists.
 * See botclass.h.
 */
#include "botclass.h"
#include "conf.h"
#include "hit.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const builtin_machine_agents[] = {
	"GoogleImageProxy",             /* Gmail */
	"ggpht.com",                    /* Gmail, older proxies */
	"YahooMailProxy",               /* Yahoo and AOL */
	"=Mozilla/5.0",                 /* Apple Mail Privacy Protection */
	NULL
};
static const char *const builtin_machine_networks[] = {
	"17.0.0.0/8",                   /* Apple: Mail Privacy Protection */
	NULL
};
static const char *const builtin_scanner_agents[] = {
	"bot", "spider", "crawler", "scanner", "curl/", "wget", "python-",
	"go-http-client", "java/", "libwww-perl", "okhttp", "httpclient",
	"headlesschrome", "phantomjs", "barracuda", "proofpoint", "mimecast",
	"symantec", "trendmicro", "forcepoint", "fireeye", "sophos", "zscaler",
	"safelinks", "urldefense", "checkpoint", "microsoft office existence "
	"discovery", "facebookexternalhit", "preview", NULL
};

struct net {
	unsigned char a[16];            /* IPv4 as ::ffff:a.b.c.d */
	int bits;                       /* prefix, of the 128 */
	char *text;
};

struct list {
	char **agents;
	size_t nagents;
	struct net *nets;
	size_t nnets;
};

struct botclass {
	struct list machine, scanner;
};

static int
addr16(const char *s, unsigned char a[16], int *v4)
{
	struct in_addr a4;

	if (inet_pton(AF_INET, s, &a4) == 1) {
		memset(a, 0, 10);
		a[10] = a[11] = 0xff;
		memcpy(a + 12, &a4, 4);
		*v4 = 1;
		return 0;
	}
	*v4 = 0;
	return inet_pton(AF_INET6, s, a) == 1 ? 0 : -1;
}

static int
net_parse(const char *s, struct net *n)
{
	char host[64], *slash, *end;
	int v4;
	long bits;

	if (strlen(s) >= sizeof(host))
		return -1;
	strcpy(host, s);
	if ((slash = strchr(host, '/')) != NULL)
		*slash++ = '\0';
	if (addr16(host, n->a, &v4) < 0)
		return -1;
	if (slash) {
		bits = strtol(slash, &end, 10);
		if (*end || !*slash || bits < 0 || bits > (v4 ? 32 : 128))
			return -1;
	} else {
		bits = v4 ? 32 : 128;
	}
	n->bits = (int)bits + (v4 ? 96 : 0);
	return (n->text = strdup(s)) ? 0 : -1;
}

static int
net_has(const struct net *n, const unsigned char a[16])
{
	int full = n->bits / 8, rest = n->bits % 8;

	if (memcmp(n->a, a, (size_t)full) != 0)
		return 0;
	return rest == 0 || ((n->a[full] ^ a[full]) &
	    (unsigned char)(0xff << (8 - rest))) == 0;
}

static void
list_free(struct list *l)
{
	for (size_t i = 0; i < l->nagents; i++)
		free(l->agents[i]);
	for (size_t i = 0; i < l->nnets; i++)
		free(l->nets[i].text);
	free(l->agents);
	free(l->nets);
}

/* s as written, NUL, then s in ASCII lower case: one new allocation (the
 * text for reasons, the copy for matching). */
static char *
lower_dup(const char *s)
{
	size_t n = strlen(s);
	char *d = malloc(2 * n + 2);

	if (!d)
		return NULL;
	memcpy(d, s, n + 1);
	for (size_t i = 0; i <= n; i++)
		d[n + 1 + i] = s[i] >= 'A' && s[i] <= 'Z' ?
		    (char)(s[i] - 'A' + 'a') : s[i];
	return d;
}

static int
add_agent(struct list *l, const char *s, const char *what, char *err,
    size_t n)
{
	char **v;

	if (!*s || (s[0] == '=' && !s[1]) || strlen(s) > 200) {
		snprintf(err, n, "%s: '%s' is not an agent pattern (1 to 200 "
		    "characters; =TEXT for the whole agent)", what, s);
		return -1;
	}
	if (!(v = realloc(l->agents, (l->nagents + 1) * sizeof(*v))) ||
	    !(v[l->nagents] = lower_dup(s))) {
		if (v)
			l->agents = v;
		snprintf(err, n, "out of memory");
		return -1;
	}
	l->agents = v;
	l->nagents++;
	return 0;
}

static int
add_net(struct list *l, const char *s, const char *what, char *err, size_t n)
{
	struct net *v = realloc(l->nets, (l->nnets + 1) * sizeof(*v));

	if (!v) {
		snprintf(err, n, "out of memory");
		return -1;
	}
	l->nets = v;
	if (net_parse(s, &v[l->nnets]) < 0) {
		snprintf(err, n, "%s: '%s' is not an address or network "
		    "(192.0.2.0/24, 2001:db8::/32)", what, s);
		return -1;
	}
	l->nnets++;
	return 0;
}

static int
fill(struct list *l, int builtin, const char *const *bagents,
    const char *const *bnets, const struct conf_strlist *agents,
    const struct conf_strlist *nets, const char *aname, const char *nname,
    char *err, size_t n)
{
	for (size_t i = 0; builtin && bagents[i]; i++)
		if (add_agent(l, bagents[i], aname, err, n) < 0)
			return -1;
	for (size_t i = 0; builtin && bnets && bnets[i]; i++)
		if (add_net(l, bnets[i], nname, err, n) < 0)
			return -1;
	for (size_t i = 0; agents && i < agents->n; i++)
		if (add_agent(l, agents->v[i], aname, err, n) < 0)
			return -1;
	for (size_t i = 0; nets && i < nets->n; i++)
		if (add_net(l, nets->v[i], nname, err, n) < 0)
			return -1;
	return 0;
}

struct botclass *
botclass_new(int builtin, const struct conf_strlist *machine_agents,
    const struct conf_strlist *machine_networks,
    const struct conf_strlist *scanner_agents,
    const struct conf_strlist *scanner_networks, char *err, size_t n)
{
	struct botclass *b = calloc(1, sizeof(*b));

	if (!b) {
		snprintf(err, n, "out of memory");
		return NULL;
	}
	if (fill(&b->machine, builtin, builtin_machine_agents,
	    builtin_machine_networks, machine_agents, machine_networks,
	    "machine_agents", "machine_networks", err, n) < 0 ||
	    fill(&b->scanner, builtin, builtin_scanner_agents, NULL,
	    scanner_agents, scanner_networks, "scanner_agents",
	    "scanner_networks", err, n) < 0) {
		botclass_free(b);
		return NULL;
	}
	return b;
}

void
botclass_free(struct botclass *b)
{
	if (!b)
		return;
	list_free(&b->machine);
	list_free(&b->scanner);
	free(b);
}

/* ua is in lower case already, as the patterns are. */
static const char *
agent_match(const struct list *l, const char *ua)
{
	for (size_t i = 0; i < l->nagents; i++) {
		const char *p = l->agents[i], *lp = p + strlen(p) + 1;

		if (lp[0] == '=' ? strcmp(ua, lp + 1) == 0 :
		    strstr(ua, lp) != NULL)
			return p;
	}
	return NULL;
}

static const char *
net_match(const struct list *l, const char *ip)
{
	unsigned char a[16];
	int v4;

	if (!ip || addr16(ip, a, &v4) < 0)
		return NULL;
	for (size_t i = 0; i < l->nnets; i++)
		if (net_has(&l->nets[i], a))
			return l->nets[i].text;
	return NULL;
}

int
botclass_classify(const struct botclass *b, const char *ua, const char *ip,
    char *reason, size_t n)
{
	const char *m;
	char low[BOTCLASS_UA_ABSURD + 1];
	size_t len;

	ua = ua ? ua : "";
	if (!*ua) {
		snprintf(reason, n, "no-agent");
		return HIT_SCANNER;
	}
	if ((len = strlen(ua)) > BOTCLASS_UA_ABSURD) {
		snprintf(reason, n, "long-agent");
		return HIT_SCANNER;
	}
	/* once in lower case, then plain (vectorized) substring searches */
	for (size_t i = 0; i <= len; i++)
		low[i] = ua[i] >= 'A' && ua[i] <= 'Z' ? (char)(ua[i] - 'A' + 'a') :
		    ua[i];
	ua = low;
	if ((m = agent_match(&b->scanner, ua))) {
		snprintf(reason, n, "agent:%s", m);
		return HIT_SCANNER;
	}
	if ((m = net_match(&b->scanner, ip))) {
		snprintf(reason, n, "network:%s", m);
		return HIT_SCANNER;
	}
	if ((m = agent_match(&b->machine, ua))) {
		snprintf(reason, n, "agent:%s", m);
		return HIT_MACHINE;
	}
	if ((m = net_match(&b->machine, ip))) {
		snprintf(reason, n, "network:%s", m);
		return HIT_MACHINE;
	}
	if (n)
		reason[0] = '\0';
	return HIT_HUMAN;
}
