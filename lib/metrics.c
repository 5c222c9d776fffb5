/*
 * metrics - a registry of counters and gauges, Prometheus text format.
 * See metrics.h.
 */
#include "metrics.h"
#include "buf.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum mtype { M_COUNTER, M_GAUGE };

struct metric {
	char *labels;
	atomic_llong value;
	metrics_gauge_fn *fn;
	void *arg;
	struct metric *next;
};

struct family {
	char *name, *help;
	enum mtype type;
	struct metric *series, **tail;
	struct family *next;
};

static pthread_mutex_t mlock = PTHREAD_MUTEX_INITIALIZER;
static struct family *families, **ftail = &families;

static void *
xcalloc(size_t n)
{
	void *p = calloc(1, n);

	if (!p)
		abort();
	return p;
}

static char *
xstrdup(const char *s)
{
	char *p = strdup(s);

	if (!p)
		abort();
	return p;
}

static struct metric *
lookup(const char *name, const char *help, enum mtype type, const char *labels)
{
	struct family *f;
	struct metric *m;

	if (!labels)
		labels = "";
	pthread_mutex_lock(&mlock);
	for (f = families; f; f = f->next)
		if (strcmp(f->name, name) == 0)
			break;
	if (!f) {
		f = xcalloc(sizeof(*f));
		f->name = xstrdup(name);
		f->help = xstrdup(help);
		f->type = type;
		f->tail = &f->series;
		*ftail = f;
		ftail = &f->next;
	}
	for (m = f->series; m; m = m->next)
		if (strcmp(m->labels, labels) == 0)
			break;
	if (!m) {
		m = xcalloc(sizeof(*m));
		m->labels = xstrdup(labels);
		atomic_init(&m->value, 0);
		*f->tail = m;
		f->tail = &m->next;
	}
	pthread_mutex_unlock(&mlock);
	return m;
}

struct metric *
metrics_counter(const char *name, const char *help, const char *labels)
{
	return lookup(name, help, M_COUNTER, labels);
}

struct metric *
metrics_gauge(const char *name, const char *help, const char *labels)
{
	return lookup(name, help, M_GAUGE, labels);
}

void
metrics_gauge_func(const char *name, const char *help, const char *labels,
    metrics_gauge_fn *fn, void *arg)
{
	struct metric *m = lookup(name, help, M_GAUGE, labels);

	pthread_mutex_lock(&mlock);
	m->fn = fn;
	m->arg = arg;
	pthread_mutex_unlock(&mlock);
}

void
metric_add(struct metric *m, long long v)
{
	atomic_fetch_add_explicit(&m->value, v, memory_order_relaxed);
}

void
metric_set(struct metric *m, long long v)
{
	atomic_store_explicit(&m->value, v, memory_order_relaxed);
}

long long
metric_value(struct metric *m)
{
	return atomic_load_explicit(&m->value, memory_order_relaxed);
}

char *
metrics_labels(char *out, size_t n, ...)
{
	size_t len = 0;
	const char *k, *v;
	va_list ap;

	if (n)
		out[0] = '\0';
	va_start(ap, n);
	while ((k = va_arg(ap, const char *)) != NULL) {
		v = va_arg(ap, const char *);
		if (len + strlen(k) + 4 >= n)
			break;
		len += (size_t)snprintf(out + len, n - len, "%s%s=\"",
		    len ? "," : "", k);
		for (; *v && len + 3 < n; v++) {
			if (*v == '\\' || *v == '"')
				out[len++] = '\\', out[len++] = *v;
			else if (*v == '\n')
				out[len++] = '\\', out[len++] = 'n';
			else
				out[len++] = *v;
		}
		out[len++] = '"';
		out[len] = '\0';
	}
	va_end(ap);
	return out;
}

void
metrics_render(struct buf *out)
{
	pthread_mutex_lock(&mlock);
	for (struct family *f = families; f; f = f->next) {
		buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help,
		    f->name, f->type == M_COUNTER ? "counter" : "gauge");
		for (struct metric *m = f->series; m; m = m->next) {
			buf_puts(out, f->name);
			if (*m->labels)
				buf_printf(out, "{%s}", m->labels);
			if (m->fn)
				buf_printf(out, " %.17g\n", m->fn(m->arg));
			else
				buf_printf(out, " %lld\n", metric_value(m));
		}
	}
	pthread_mutex_unlock(&mlock);
}

void
metrics_reset(void)
{
	pthread_mutex_lock(&mlock);
	while (families) {
		struct family *f = families;

		families = f->next;
		while (f->series) {
			struct metric *m = f->series;

			f->series = m->next;
			free(m->labels);
			free(m);
		}
		free(f->name);
		free(f->help);
		free(f);
	}
	ftail = &families;
	pthread_mutex_unlock(&mlock);
}
