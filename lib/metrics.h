/*
 * metrics - counters and gauges rendered in the Prometheus text format.
 *
 * A process-wide registry. A series is a metric name plus a label set
 * written as Prometheus would ("route=\"healthz\",status=\"200\""); asking
 * for the same name and labels returns the same series, so callers may
 * cache the pointer. Counters are atomic and may be bumped from any thread.
 * Gauges are either set, or computed by a callback when rendered. Label
 * values are escaped when built with metrics_labels().
 * It does not serve HTTP: the daemon's /metrics handler calls metrics_render.
 */
#ifndef LEADCAST_METRICS_H
#define LEADCAST_METRICS_H

#include <stddef.h>

struct buf;
struct metric;

typedef double metrics_gauge_fn(void *arg);

/* Get or create a series; never NULL (aborts on ENOMEM). */
struct metric *metrics_counter(const char *name, const char *help,
    const char *labels);
struct metric *metrics_gauge(const char *name, const char *help,
    const char *labels);
/* A gauge whose value is fn(arg) at render time (replaces a previous fn). */
void metrics_gauge_func(const char *name, const char *help, const char *labels,
    metrics_gauge_fn *fn, void *arg);

void metric_add(struct metric *m, long long v);
void metric_set(struct metric *m, long long v);
long long metric_value(struct metric *m);

/* Build a label set from key/value pairs (NULL-terminated), escaping values.
 * Writes into out (size n); returns out. */
char *metrics_labels(char *out, size_t n, ...);

/* Append every family, with # HELP and # TYPE lines. */
void metrics_render(struct buf *out);
/* Forget everything (tests). */
void metrics_reset(void);

#endif
