/*
 * linktab - the in-memory campaign link table. See linktab.h.
 */
#include "linktab.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct entry {
	uint64_t id;                    /* 0: empty slot */
	char *url;                      /* url, NUL, tag, NUL: one allocation */
	const char *tag;
};

struct linktab {
	pthread_rwlock_t lock;
	struct entry *v;
	size_t cap, n, max;             /* cap: a power of two >= 2 * max */
	uint64_t max_id;
};

static size_t
slot_of(uint64_t id, size_t cap)
{
	id ^= id >> 33;
	id *= 0xff51afd7ed558ccdULL;
	id ^= id >> 33;
	return (size_t)id & (cap - 1);
}

struct linktab *
linktab_new(size_t max)
{
	struct linktab *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->max = max ? max : 1;
	t->cap = 64;
	if (!(t->v = calloc(t->cap, sizeof(*t->v)))) {
		free(t);
		return NULL;
	}
	pthread_rwlock_init(&t->lock, NULL);
	return t;
}

void
linktab_free(struct linktab *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->cap; i++)
		free(t->v[i].url);
	free(t->v);
	pthread_rwlock_destroy(&t->lock);
	free(t);
}

/* Under the write lock. */
static int
grow(struct linktab *t)
{
	size_t cap = t->cap * 2;
	struct entry *v = calloc(cap, sizeof(*v));

	if (!v)
		return -1;
	for (size_t i = 0; i < t->cap; i++) {
		size_t s;

		if (!t->v[i].id)
			continue;
		for (s = slot_of(t->v[i].id, cap); v[s].id; s = (s + 1) & (cap - 1))
			;
		v[s] = t->v[i];
	}
	free(t->v);
	t->v = v;
	t->cap = cap;
	return 0;
}

int
linktab_add(struct linktab *t, uint64_t id, const char *url, const char *tag)
{
	size_t s, ul, tl;
	int rc = 0;

	if (id == 0 || (strncasecmp(url, "http://", 7) != 0 &&
	    strncasecmp(url, "https://", 8) != 0))
		return -1;
	tag = tag ? tag : "";
	ul = strlen(url);
	tl = strlen(tag);
	pthread_rwlock_wrlock(&t->lock);
	for (s = slot_of(id, t->cap); t->v[s].id && t->v[s].id != id;
	    s = (s + 1) & (t->cap - 1))
		;
	if (t->v[s].id == id)
		goto out;
	if (t->n >= t->max) {
		rc = -1;
		goto out;
	}
	if ((t->n + 1) * 2 > t->cap) {
		if (grow(t) < 0) {
			rc = -1;
			goto out;
		}
		for (s = slot_of(id, t->cap); t->v[s].id;
		    s = (s + 1) & (t->cap - 1))
			;
	}
	if (!(t->v[s].url = malloc(ul + tl + 2))) {
		rc = -1;
		goto out;
	}
	memcpy(t->v[s].url, url, ul + 1);
	memcpy(t->v[s].url + ul + 1, tag, tl + 1);
	t->v[s].tag = t->v[s].url + ul + 1;
	t->v[s].id = id;
	t->n++;
	if (id > t->max_id)
		t->max_id = id;
out:
	pthread_rwlock_unlock(&t->lock);
	return rc;
}

int
linktab_get(struct linktab *t, uint64_t id, char *url, size_t n, char *tag,
    size_t tn)
{
	int found = 0;

	if (id == 0)
		return 0;
	pthread_rwlock_rdlock(&t->lock);
	for (size_t s = slot_of(id, t->cap); t->v[s].id;
	    s = (s + 1) & (t->cap - 1)) {
		if (t->v[s].id != id)
			continue;
		if (strlen(t->v[s].url) < n && strlen(t->v[s].tag) < tn) {
			strcpy(url, t->v[s].url);
			strcpy(tag, t->v[s].tag);
			found = 1;
		}
		break;
	}
	pthread_rwlock_unlock(&t->lock);
	return found;
}

size_t
linktab_count(struct linktab *t)
{
	size_t n;

	pthread_rwlock_rdlock(&t->lock);
	n = t->n;
	pthread_rwlock_unlock(&t->lock);
	return n;
}

uint64_t
linktab_max_id(struct linktab *t)
{
	uint64_t m;

	pthread_rwlock_rdlock(&t->lock);
	m = t->max_id;
	pthread_rwlock_unlock(&t->lock);
	return m;
}
