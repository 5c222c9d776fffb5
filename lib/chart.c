/*
 * chart - SVG line, bar and horizontal bar charts from numbers (see
 * chart.h). Layout: a title line, the plot area with horizontal grid
 * lines at round ticks and their labels on the left, category labels
 * under the plot (thinned out when they would overlap), a legend when
 * there are several series. Colors come from a fixed palette that reads
 * in grey scale too (dark blue, orange, teal, ...).
 *
 * Not here: data access, interactivity, fonts other than the page's.
 */
#include "chart.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "htmlrw.h"

static const char *const palette[CHART_MAX_SERIES] = {
	"#1d4ed8", "#f97316", "#0d9488", "#a21caf", "#65a30d", "#dc2626",
	"#0891b2", "#78716c",
};

#define TITLE_H   28
#define LEGEND_H  22
#define AXIS_W    48
#define LABEL_H   34
#define PAD       10

void
chart_axis(double max, int ticks, double *top, double *step)
{
	double raw, mag, f;

	if (ticks < 1)
		ticks = 1;
	if (!(max > 0) || !isfinite(max))
		max = 1;
	raw = max / ticks;
	mag = pow(10, floor(log10(raw)));
	f = raw / mag;
	*step = (f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10) * mag;
	*top = ceil(max / *step - 1e-9) * *step;
	if (*top < max)
		*top += *step;
}

void
chart_fmt(double v, char *out, size_t n)
{
	double a = fabs(v);

	if (a >= 1e9)
		snprintf(out, n, "%.3gG", v / 1e9);
	else if (a >= 1e6)
		snprintf(out, n, "%.3gM", v / 1e6);
	else if (a >= 1e4)
		snprintf(out, n, "%.3gk", v / 1e3);
	else if (a == floor(a))
		snprintf(out, n, "%.0f", v);
	else
		snprintf(out, n, "%.3g", v);
}

static void
text(struct buf *out, const char *s)
{
	htmlrw_escape(s ? s : "", strlen(s ? s : ""), out);
}

static int
valid(const struct chart *c)
{
	if (!c || c->nseries < 1 || c->nseries > CHART_MAX_SERIES ||
	    c->n > CHART_MAX_POINTS || (c->n && !c->labels))
		return 0;
	for (size_t s = 0; s < c->nseries; s++) {
		if (!c->series[s].v && c->n)
			return 0;
		for (size_t i = 0; i < c->n; i++)
			if (!isfinite(c->series[s].v[i]) || c->series[s].v[i] < 0)
				return 0;
	}
	return 1;
}

static double
max_value(const struct chart *c)
{
	double m = 0;

	for (size_t s = 0; s < c->nseries; s++)
		for (size_t i = 0; i < c->n; i++)
			if (c->series[s].v[i] > m)
				m = c->series[s].v[i];
	return c->percent && m <= 100 ? (m > 50 ? 100 : m) : m;
}

struct frame {
	int w, h;
	double x0, y0, x1, y1;          /* the plot area */
	double top, step;               /* the value axis */
};

/* The <svg> head, the title and the legend; the plot area in f. */
static void
head(struct buf *out, const struct chart *c, struct frame *f, int legend)
{
	f->w = c->width > 0 ? c->width : 640;
	f->h = c->height > 0 ? c->height : 260;
	buf_printf(out, "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 "
	    "%d %d\" width=\"100%%\" role=\"img\" aria-label=\"", f->w, f->h);
	text(out, c->title);
	buf_printf(out, "\" font-family=\"system-ui, sans-serif\" font-size="
	    "\"12\"><title>");
	text(out, c->title);
	buf_printf(out, "</title><text x=\"%d\" y=\"18\" font-size=\"14\" "
	    "font-weight=\"600\" fill=\"#172033\">", PAD);
	text(out, c->title);
	buf_puts(out, "</text>");
	f->y0 = TITLE_H;
	if (legend && c->nseries > 1) {
		double x = PAD;

		for (size_t s = 0; s < c->nseries; s++) {
			buf_printf(out, "<rect x=\"%.1f\" y=\"%d\" width=\"10\" "
			    "height=\"10\" rx=\"2\" fill=\"%s\"/><text x=\"%.1f\" "
			    "y=\"%d\" fill=\"#344054\">", x, TITLE_H, palette[s],
			    x + 14, TITLE_H + 9);
			text(out, c->series[s].name);
			buf_puts(out, "</text>");
			x += 24 + 7.0 * (double)strlen(c->series[s].name ?
			    c->series[s].name : "");
		}
		f->y0 += LEGEND_H;
	}
}

/* Grid lines and value labels, horizontal (values up the y axis). */
static void
value_grid(struct buf *out, const struct chart *c, struct frame *f)
{
	char v[32];

	chart_axis(max_value(c), 4, &f->top, &f->step);
	for (double t = 0; t <= f->top + f->step / 2; t += f->step) {
		double y = f->y1 - (f->y1 - f->y0) * t / f->top;

		chart_fmt(t, v, sizeof(v));
		buf_printf(out, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f"
		    "\" stroke=\"%s\"/><text x=\"%.1f\" y=\"%.1f\" text-anchor="
		    "\"end\" fill=\"#5b6475\">%s%s</text>", f->x0, y, f->x1, y,
		    t == 0 ? "#98a2b3" : "#eaecf0", f->x0 - 6, y + 4, v,
		    c->percent ? "%" : "");
	}
	if (c->y_label) {
		buf_printf(out, "<text x=\"12\" y=\"%.1f\" transform=\"rotate(-90 "
		    "12 %.1f)\" text-anchor=\"middle\" fill=\"#5b6475\">",
		    (f->y0 + f->y1) / 2, (f->y0 + f->y1) / 2);
		text(out, c->y_label);
		buf_puts(out, "</text>");
	}
}

/* Category labels under the plot; every k-th when they would crowd. */
static void
category_labels(struct buf *out, const struct chart *c, const struct frame *f,
    double slot, int centered)
{
	size_t longest = 1, every;

	for (size_t i = 0; i < c->n; i++)
		if (c->labels[i] && strlen(c->labels[i]) > longest)
			longest = strlen(c->labels[i]);
	every = (size_t)ceil((double)longest * 6.5 / (slot > 1 ? slot : 1));
	if (every < 1)
		every = 1;
	for (size_t i = 0; i < c->n; i += every) {
		double x = f->x0 + slot * (double)i + (centered ? slot / 2 : 0);

		buf_printf(out, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" "
		    "fill=\"#5b6475\">", x, f->y1 + 16);
		text(out, c->labels[i]);
		buf_puts(out, "</text>");
	}
}

int
chart_line(struct buf *out, const struct chart *c)
{
	struct frame f;
	double slot;

	if (!valid(c))
		return -1;
	head(out, c, &f, 1);
	f.x0 = AXIS_W + (c->y_label ? 14 : 0);
	f.x1 = f.w - PAD * 2;
	f.y1 = f.h - LABEL_H;
	value_grid(out, c, &f);
	slot = c->n > 1 ? (f.x1 - f.x0) / (double)(c->n - 1) : 0;
	category_labels(out, c, &f, slot > 0 ? slot : f.x1 - f.x0, 0);
	for (size_t s = 0; s < c->nseries; s++) {
		buf_printf(out, "<polyline fill=\"none\" stroke=\"%s\" "
		    "stroke-width=\"2.2\" stroke-linejoin=\"round\" points=\"",
		    palette[s]);
		for (size_t i = 0; i < c->n; i++)
			buf_printf(out, "%s%.1f,%.1f", i ? " " : "", f.x0 + slot *
			    (double)i, f.y1 - (f.y1 - f.y0) * c->series[s].v[i] /
			    f.top);
		buf_puts(out, "\"><title>");
		text(out, c->series[s].name);
		buf_puts(out, "</title></polyline>");
		if (c->n == 1)
			buf_printf(out, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" "
			    "fill=\"%s\"/>", f.x0, f.y1 - (f.y1 - f.y0) *
			    c->series[s].v[0] / f.top, palette[s]);
	}
	buf_puts(out, "</svg>");
	return 0;
}

int
chart_bars(struct buf *out, const struct chart *c)
{
	struct frame f;
	double slot, bw;
	char v[32];

	if (!valid(c))
		return -1;
	head(out, c, &f, 1);
	f.x0 = AXIS_W + (c->y_label ? 14 : 0);
	f.x1 = f.w - PAD;
	f.y1 = f.h - LABEL_H;
	value_grid(out, c, &f);
	slot = c->n ? (f.x1 - f.x0) / (double)c->n : 0;
	bw = slot * 0.72 / (double)c->nseries;
	category_labels(out, c, &f, slot, 1);
	for (size_t i = 0; i < c->n; i++) {
		for (size_t s = 0; s < c->nseries; s++) {
			double val = c->series[s].v[i];
			double h = (f.y1 - f.y0) * val / f.top;
			double x = f.x0 + slot * (double)i + slot * 0.14 + bw *
			    (double)s;

			buf_printf(out, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
			    "height=\"%.1f\" rx=\"2\" fill=\"%s\"><title>", x,
			    f.y1 - h, bw, h, palette[s]);
			text(out, c->series[s].name);
			buf_puts(out, ", ");
			text(out, c->labels[i]);
			chart_fmt(val, v, sizeof(v));
			buf_printf(out, ": %s%s</title></rect>", v, c->percent ?
			    "%" : "");
			if (bw >= 18 && val > 0)
				buf_printf(out, "<text x=\"%.1f\" y=\"%.1f\" "
				    "text-anchor=\"middle\" font-size=\"11\" "
				    "fill=\"#344054\">%s%s</text>", x + bw / 2,
				    f.y1 - h - 4, v, c->percent ? "%" : "");
		}
	}
	buf_puts(out, "</svg>");
	return 0;
}

int
chart_hbars(struct buf *out, const struct chart *c)
{
	struct frame f;
	double row, bh, lw = 0;
	char v[32];

	if (!valid(c))
		return -1;
	head(out, c, &f, 1);
	for (size_t i = 0; i < c->n; i++) {
		double w = 6.6 * (double)strlen(c->labels[i] ? c->labels[i] : "");

		if (w > lw)
			lw = w;
	}
	if (lw > (c->width > 0 ? c->width : 640) * 0.45)
		lw = (c->width > 0 ? c->width : 640) * 0.45;
	f.x0 = PAD + lw + 8;
	f.x1 = f.w - PAD - 44;
	f.y1 = f.h - PAD;
	chart_axis(max_value(c), 4, &f.top, &f.step);
	row = c->n ? (f.y1 - f.y0) / (double)c->n : 0;
	bh = row * 0.7 / (double)c->nseries;
	for (size_t i = 0; i < c->n; i++) {
		const char *l = c->labels[i] ? c->labels[i] : "";
		size_t max = (size_t)(lw / 6.6 + 0.5), len = strlen(l);

		buf_printf(out, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" "
		    "fill=\"#344054\"><title>", f.x0 - 8, f.y0 + row * (double)i +
		    row / 2 + 4);
		text(out, l);
		buf_puts(out, "</title>");
		if (len > max && max > 1) {
			/* the end of a long label is what tells links apart */
			size_t from = len - (max - 1);

			while (from < len && ((unsigned char)l[from] & 0xc0) ==
			    0x80)
				from++;
			buf_puts(out, "\xe2\x80\xa6");
			text(out, l + from);
		} else {
			text(out, l);
		}
		buf_puts(out, "</text>");
		for (size_t s = 0; s < c->nseries; s++) {
			double val = c->series[s].v[i];
			double w = (f.x1 - f.x0) * val / f.top;
			double y = f.y0 + row * (double)i + row * 0.15 + bh *
			    (double)s;

			chart_fmt(val, v, sizeof(v));
			buf_printf(out, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
			    "height=\"%.1f\" rx=\"2\" fill=\"%s\"/><text x=\"%.1f\" "
			    "y=\"%.1f\" fill=\"#344054\" font-size=\"11\">%s%s"
			    "</text>", f.x0, y, w, bh, palette[s], f.x0 + w + 4,
			    y + bh / 2 + 4, v, c->percent ? "%" : "");
		}
	}
	buf_puts(out, "</svg>");
	return 0;
}
