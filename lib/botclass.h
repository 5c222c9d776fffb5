/*
 * botclass - who made a tracking hit: a human, a machine (a mail
 * provider's image proxy fetching for its user: Apple Mail Privacy
 * Protection, Gmail's and Yahoo's image proxies) or a scanner (a security
 * gateway's link checker, a crawler, a script), judged from the user
 * agent and the client address against lists.
 *
 * An agent pattern matches case-insensitively as a substring, or the
 * whole agent when written "=Mozilla/5.0". A network is an IPv4 or IPv6
 * address with an optional /prefix. Built-in lists cover the well-known
 * proxies and scanners; configured lists add to them (or replace them
 * when the built-in ones are turned off). Checked in order: scanner
 * agents, scanner networks, machine agents, machine networks; an agent
 * that is empty or absurdly long is a scanner.
 * Judgements that need the database (a click within seconds of delivery,
 * a honeypot link, every link of a message clicked at once) are made
 * where hits are stored (daemon/track.c), not here. No I/O, no state
 * besides the parsed lists; a botclass is read-only once built, so any
 * thread may use it.
 */
#ifndef LEADCAST_BOTCLASS_H
#define LEADCAST_BOTCLASS_H

#include <stddef.h>

struct conf_strlist;
struct botclass;

#define BOTCLASS_UA_ABSURD 1024         /* longer agents are scanners */

/*
 * Build from the configured lists (any may be NULL), with the built-in
 * ones unless builtin is 0. NULL with a message in err (size n) naming
 * the bad entry and its list.
 */
struct botclass *botclass_new(int builtin,
    const struct conf_strlist *machine_agents,
    const struct conf_strlist *machine_networks,
    const struct conf_strlist *scanner_agents,
    const struct conf_strlist *scanner_networks, char *err, size_t n);
void botclass_free(struct botclass *b);

/*
 * Classify a hit: enum hit_class (HIT_HUMAN, HIT_MACHINE, HIT_SCANNER),
 * and why in reason (size n): "agent:PATTERN", "network:CIDR",
 * "no-agent", "long-agent"; "" for a human.
 */
int botclass_classify(const struct botclass *b, const char *ua,
    const char *ip, char *reason, size_t n);

#endif
