/*
 * chart - SVG charts drawn from numbers: line charts (several series over
 * labelled x points, e.g. time buckets), vertical bar charts (grouped
 * series per category; a histogram is bars over bucket labels) and
 * horizontal bar charts (long category names: links, domains). Each has
 * a title, axes with round ticks, value labels and a legend, and fits
 * the width and height given (the SVG scales with its viewBox).
 *
 * Pure functions: no I/O, no allocation but the output buffer's, no
 * global state; text is XML-escaped. It does not fetch or aggregate data
 * (the caller does) nor style the page around the chart.
 */
#ifndef LEADCAST_CHART_H
#define LEADCAST_CHART_H

#include <stddef.h>

struct buf;

#define CHART_MAX_SERIES 8
#define CHART_MAX_POINTS 1000

struct chart_series {
	const char *name;
	const double *v;                /* one value per category / x point */
};

struct chart {
	const char *title;
	const char *y_label;            /* may be NULL */
	const char *const *labels;      /* category or x-point labels */
	size_t n;                       /* number of labels and values */
	const struct chart_series *series;
	size_t nseries;                 /* 1 .. CHART_MAX_SERIES */
	int width, height;              /* 0: 640 x 260 */
	int percent;                    /* values are 0..100 percentages */
};

/* Append the chart as an <svg> element to out. 0, or -1 when c is
 * invalid (no series, too many points, a value not finite or below 0). */
int chart_line(struct buf *out, const struct chart *c);
int chart_bars(struct buf *out, const struct chart *c);
int chart_hbars(struct buf *out, const struct chart *c);

/* The axis: the largest tick (>= max) and the tick step, round numbers
 * (1, 2, 2.5 or 5 times a power of ten) with about `ticks` steps. */
void chart_axis(double max, int ticks, double *top, double *step);

/* v as an axis label: 1200 -> "1.2k", 3500000 -> "3.5M", 0.5 -> "0.5". */
void chart_fmt(double v, char *out, size_t n);

#endif
