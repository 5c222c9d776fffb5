/*
 * linktab - the campaign link table in memory: link id -> destination URL
 * and tag, for click redirects answered on any thread without asking the
 * database.
 *
 * An open-addressing hash table under a read-write lock: lookups (any
 * thread) share it, the loop adds what it loads from campaign_links.
 * Links are never changed once made (campaign_links rows are immutable),
 * so an entry is added once and never updated; the table only grows, up
 * to a bound given at creation (past it, lookups miss and callers ask the
 * database). Strings are copied in and owned by the table.
 * It does no I/O: the daemon loads rows into it.
 */
#ifndef LEADCAST_LINKTAB_H
#define LEADCAST_LINKTAB_H

#include <stddef.h>
#include <stdint.h>

struct linktab;

/* At most max links. NULL on ENOMEM. */
struct linktab *linktab_new(size_t max);
void linktab_free(struct linktab *t);
/* Add link id (url and tag copied). 0 (added or already there), or -1
 * (full, ENOMEM, or a URL that is not http(s)). */
int linktab_add(struct linktab *t, uint64_t id, const char *url,
    const char *tag);
/*
 * Look id up: 1 and its URL copied to url (size n; a longer one is a
 * miss) and tag to tag (size tn), or 0 if unknown.
 */
int linktab_get(struct linktab *t, uint64_t id, char *url, size_t n,
    char *tag, size_t tn);
/* Links held, and the highest id held (to load only newer rows). */
size_t linktab_count(struct linktab *t);
uint64_t linktab_max_id(struct linktab *t);

#endif
