/* PNG charts with cairo. See plot.h. Coordinates are cairo user space (pixels,
 * y down); "plot area" is the framed rectangle inside which data is drawn. */
#include "io/plot.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include <cairo.h>
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FONT "sans-serif"

typedef struct { double r, g, b; } rgb;
static const rgb ink = {0.13, 0.13, 0.13}, grey_text = {0.40, 0.40, 0.40}, grid_line = {0.88, 0.88, 0.88};

/* ----------------------------------------------------------- canvas ---- */

typedef struct {
    cairo_surface_t *surface;
    cairo_t *cr;
    const char *path;
} canvas;

static cn_status cairo_failure(const char *path, const char *what, cairo_status_t status) {
    return cn_fail(status == CAIRO_STATUS_NO_MEMORY ? CN_ERR_NOMEM : CN_ERR_IO, "%s: %s (cairo: %s)", path, what,
                   cairo_status_to_string(status));
}

static cn_status canvas_begin(canvas *c, const char *path, int width, int height) {
    c->path = path;
    c->surface = cairo_image_surface_create(CAIRO_FORMAT_RGB24, width, height);
    cairo_status_t st = cairo_surface_status(c->surface);
    if (st != CAIRO_STATUS_SUCCESS) {
        cairo_surface_destroy(c->surface);
        return cairo_failure(path, "cannot create the image", st);
    }
    c->cr = cairo_create(c->surface);
    if ((st = cairo_status(c->cr)) != CAIRO_STATUS_SUCCESS) {
        cairo_destroy(c->cr);
        cairo_surface_destroy(c->surface);
        return cairo_failure(path, "cannot draw", st);
    }
    cairo_set_source_rgb(c->cr, 1, 1, 1);
    cairo_paint(c->cr);
    cairo_select_font_face(c->cr, FONT, CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    return CN_OK;
}

/* Frees the canvas without writing anything. */
static void canvas_abort(canvas *c) {
    cairo_destroy(c->cr);
    cairo_surface_destroy(c->surface);
}

static cairo_status_t write_to_file(void *closure, const unsigned char *data, unsigned int length) {
    return cn_atomic_write(closure, data, length) == CN_OK ? CAIRO_STATUS_SUCCESS : CAIRO_STATUS_WRITE_ERROR;
}

/* Checks the drawing and writes the PNG atomically (core/atomic_file.h); frees the canvas. */
static cn_status canvas_finish(canvas *c) {
    cairo_status_t st = cairo_status(c->cr);
    cairo_destroy(c->cr);
    if (st != CAIRO_STATUS_SUCCESS) {
        cairo_surface_destroy(c->surface);
        return cairo_failure(c->path, "drawing failed", st);
    }
    cairo_surface_flush(c->surface);
    cn_atomic_file af;
    cn_status result = cn_atomic_begin(&af, c->path);
    if (result) { cairo_surface_destroy(c->surface); return result; }
    st = cairo_surface_write_to_png_stream(c->surface, write_to_file, &af);
    cairo_surface_destroy(c->surface);
    if (st != CAIRO_STATUS_SUCCESS) {
        result = af.status ? af.status : cairo_failure(c->path, "cannot write the PNG", st);
        cn_atomic_abort(&af);
        return result;
    }
    return cn_atomic_commit(&af);
}

/* ------------------------------------------------------------- text ---- */

static void set_font(cairo_t *cr, double size, bool bold) {
    cairo_select_font_face(cr, FONT, CAIRO_FONT_SLANT_NORMAL, bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, size);
}

static double text_width(cairo_t *cr, const char *s) {
    cairo_text_extents_t e;
    cairo_text_extents(cr, s, &e);
    return e.x_advance;
}

/* Draws `s` with (x, y) at the anchor: ax 0/0.5/1 = left/centre/right edge;
 * ay 0/0.5/1 = top/middle/bottom of the font's ascent..descent box. */
static void text_at(cairo_t *cr, double x, double y, const char *s, double ax, double ay, rgb colour) {
    cairo_font_extents_t fe;
    cairo_font_extents(cr, &fe);
    double w = text_width(cr, s);
    double baseline = y + fe.ascent - ay * (fe.ascent + fe.descent);
    cairo_set_source_rgb(cr, colour.r, colour.g, colour.b);
    cairo_move_to(cr, x - ax * w, baseline);
    cairo_show_text(cr, s);
    cairo_new_path(cr);
}

/* Text rotated 90° anticlockwise (reading upwards), centred on (x, y). */
static void text_vertical(cairo_t *cr, double x, double y, const char *s, rgb colour) {
    cairo_save(cr);
    cairo_translate(cr, x, y);
    cairo_rotate(cr, -M_PI / 2);
    text_at(cr, 0, 0, s, 0.5, 0.5, colour);
    cairo_restore(cr);
}

/* Shrinks the font (from `size`, not below `min_size`) until `s` fits `width`;
 * returns the size set, or 0 if even min_size does not fit. */
static double fit_font(cairo_t *cr, const char *s, double width, double size, double min_size, bool bold) {
    set_font(cr, size, bold);
    double w = text_width(cr, s);
    if (w <= width) return size;
    size = floor(size * width / w * 10) / 10;
    if (size < min_size) return 0;
    set_font(cr, size, bold);
    return size;
}

static void draw_title(cairo_t *cr, double width, const char *title, const char *subtitle) {
    if (title && *title) {
        set_font(cr, 20, true);
        double size = fit_font(cr, title, width - 20, 20, 8, true);
        if (size == 0) set_font(cr, 8, true);
        text_at(cr, width / 2, 14, title, 0.5, 0, ink);
    }
    if (subtitle && *subtitle) {
        set_font(cr, 13, false);
        text_at(cr, width / 2, 42, subtitle, 0.5, 0, grey_text);
    }
}

/* ------------------------------------------------------------- axes ---- */

/* A round step (1, 2 or 5 times a power of ten) near span / target. */
static double nice_step(double span, int target) {
    double raw = span / target;
    if (!(raw > 0) || !isfinite(raw)) return 1;
    double magnitude = pow(10, floor(log10(raw)));
    double norm = raw / magnitude;
    return (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * magnitude;
}

/* Digits after the point for labels at multiples of `step`. */
static int step_decimals(double step) {
    int d = (int)ceil(-log10(step) - 1e-9);
    return d < 0 ? 0 : d > 8 ? 8 : d;
}

typedef struct {
    double left, top, right, bottom; /* plot area, pixels */
    double x_min, x_max, y_min, y_max;
} axes;

static double ax_x(const axes *a, double x) { return a->left + (x - a->x_min) / (a->x_max - a->x_min) * (a->right - a->left); }
static double ax_y(const axes *a, double y) { return a->bottom - (y - a->y_min) / (a->y_max - a->y_min) * (a->bottom - a->top); }

/* Y range from the finite data in [lo, hi] with 4% headroom, widened to
 * multiples of a round step; clamped to [floor, ceiling] where the data allow. */
static void y_range(double lo, double hi, double floor_limit, double ceiling_limit, double *out_lo, double *out_hi,
                    double *out_step) {
    if (!(hi >= lo)) { lo = 0; hi = 1; }
    if (hi - lo < 1e-12 * (fabs(hi) + 1)) {
        double pad = fabs(hi) > 0 ? fabs(hi) * 0.1 : 1;
        lo -= pad;
        hi += pad;
    }
    double span = hi - lo;
    double lo_pad = lo - 0.04 * span, hi_pad = hi + 0.04 * span;
    if (lo >= floor_limit && lo_pad < floor_limit) lo_pad = floor_limit;
    if (hi <= ceiling_limit && hi_pad > ceiling_limit) hi_pad = ceiling_limit;
    double step = nice_step(hi_pad - lo_pad, 6);
    *out_lo = floor(lo_pad / step + 1e-9) * step;
    *out_hi = ceil(hi_pad / step - 1e-9) * step;
    if (lo >= floor_limit && *out_lo < floor_limit) *out_lo = floor_limit;
    if (hi <= ceiling_limit && *out_hi > ceiling_limit) *out_hi = ceiling_limit;
    *out_step = step;
}

/* Frame, grid, ticks and numeric labels; x ticks at whole numbers ≥ 1. */
static void draw_axes(cairo_t *cr, const axes *a, double x_step, double y_step, const char *x_label, const char *y_label) {
    cairo_set_line_width(cr, 1);
    set_font(cr, 12, false);
    char label[64];
    /* y grid and labels */
    int y_decimals = step_decimals(y_step);
    for (double k = ceil(a->y_min / y_step - 1e-9); k * y_step <= a->y_max + 1e-9 * y_step; k++) {
        double v = k * y_step, py = round(ax_y(a, v)) + 0.5;
        cairo_set_source_rgb(cr, grid_line.r, grid_line.g, grid_line.b);
        cairo_move_to(cr, a->left, py);
        cairo_line_to(cr, a->right, py);
        cairo_stroke(cr);
        cairo_set_source_rgb(cr, ink.r, ink.g, ink.b);
        cairo_move_to(cr, a->left - 5, py);
        cairo_line_to(cr, a->left, py);
        cairo_stroke(cr);
        snprintf(label, sizeof label, "%.*f", y_decimals, fabs(v) < 1e-9 * y_step ? 0.0 : v);
        text_at(cr, a->left - 8, py, label, 1, 0.5, ink);
    }
    /* x grid and labels */
    for (double k = ceil(fmax(1, a->x_min) / x_step - 1e-9); k * x_step <= a->x_max + 1e-9; k++) {
        double v = k * x_step, px = round(ax_x(a, v)) + 0.5;
        cairo_set_source_rgb(cr, grid_line.r, grid_line.g, grid_line.b);
        cairo_move_to(cr, px, a->top);
        cairo_line_to(cr, px, a->bottom);
        cairo_stroke(cr);
        cairo_set_source_rgb(cr, ink.r, ink.g, ink.b);
        cairo_move_to(cr, px, a->bottom);
        cairo_line_to(cr, px, a->bottom + 5);
        cairo_stroke(cr);
        snprintf(label, sizeof label, "%.0f", v);
        text_at(cr, px, a->bottom + 8, label, 0.5, 0, ink);
    }
    cairo_set_source_rgb(cr, ink.r, ink.g, ink.b);
    cairo_rectangle(cr, round(a->left) + 0.5, round(a->top) + 0.5, round(a->right - a->left), round(a->bottom - a->top));
    cairo_stroke(cr);
    set_font(cr, 14, false);
    text_at(cr, (a->left + a->right) / 2, a->bottom + 30, x_label, 0.5, 0, ink);
    /* y label left of the widest tick label */
    double widest = 0;
    set_font(cr, 12, false);
    for (double k = ceil(a->y_min / y_step - 1e-9); k * y_step <= a->y_max + 1e-9 * y_step; k++) {
        snprintf(label, sizeof label, "%.*f", y_decimals, fabs(k * y_step) < 1e-9 * y_step ? 0.0 : k * y_step);
        widest = fmax(widest, text_width(cr, label));
    }
    set_font(cr, 14, false);
    text_vertical(cr, a->left - 8 - widest - 16, (a->top + a->bottom) / 2, y_label, ink);
}

/* ----------------------------------------------------- training curves ---- */

typedef struct {
    const double *values; /* epochs values, or NULL */
    const char *name;
    rgb colour;
    int marker; /* 0 circle, 1 square, 2 triangle */
} series;

static void draw_marker(cairo_t *cr, double x, double y, double r, int shape) {
    if (shape == 0) cairo_arc(cr, x, y, r, 0, 2 * M_PI);
    else if (shape == 1) cairo_rectangle(cr, x - r * 0.9, y - r * 0.9, r * 1.8, r * 1.8);
    else {
        cairo_move_to(cr, x, y - r * 1.2);
        cairo_line_to(cr, x + r * 1.1, y + r * 0.75);
        cairo_line_to(cr, x - r * 1.1, y + r * 0.75);
        cairo_close_path(cr);
    }
}

/* Points of the series inside the rectangle (pixel space), with segment midpoints. */
static int points_inside(const axes *a, const series *s, int n_series, int epochs, double x0, double y0, double x1,
                         double y1) {
    int hits = 0;
    for (int k = 0; k < n_series; k++) {
        if (!s[k].values) continue;
        for (int e = 0; e < epochs; e++) {
            double v = s[k].values[e];
            if (!isfinite(v)) continue;
            double px = ax_x(a, e + 1), py = ax_y(a, v);
            hits += px >= x0 && px <= x1 && py >= y0 && py <= y1;
            if (e + 1 < epochs && isfinite(s[k].values[e + 1])) {
                for (int t = 1; t < 4; t++) {
                    double mx = ax_x(a, e + 1 + t / 4.0), my = ax_y(a, v + (s[k].values[e + 1] - v) * t / 4.0);
                    hits += mx >= x0 && mx <= x1 && my >= y0 && my <= y1;
                }
            }
        }
    }
    return hits;
}

/* One panel: axes, series lines with markers, legend in the emptiest corner. */
static void draw_panel(cairo_t *cr, double px0, double width, double height, const char *heading, const char *y_label,
                       const series *s, int n_series, int epochs, bool percent) {
    double lo = INFINITY, hi = -INFINITY;
    for (int k = 0; k < n_series; k++)
        for (int e = 0; s[k].values && e < epochs; e++)
            if (isfinite(s[k].values[e])) { lo = fmin(lo, s[k].values[e]); hi = fmax(hi, s[k].values[e]); }
    bool any = hi >= lo;
    axes a = {.left = px0 + 88, .right = px0 + width - 24, .top = 84, .bottom = height - 64};
    double y_step;
    y_range(lo, hi, 0, percent ? 100 : INFINITY, &a.y_min, &a.y_max, &y_step);
    double pad = epochs <= 20 ? 0.5 : (epochs - 1) * 0.025;
    a.x_min = 1 - pad;
    a.x_max = epochs + pad;
    double x_step = fmax(1, nice_step(fmax(epochs - 1, 1), 10));
    set_font(cr, 15, true);
    text_at(cr, (a.left + a.right) / 2, a.top - 12, heading, 0.5, 1, ink);
    draw_axes(cr, &a, x_step, y_step, "epoch", y_label);
    if (!any) {
        set_font(cr, 14, false);
        text_at(cr, (a.left + a.right) / 2, (a.top + a.bottom) / 2, "no data", 0.5, 0.5, grey_text);
        return;
    }

    /* Lines (broken at non-finite values), then markers on top. */
    double radius = epochs <= 40 ? 4 : epochs <= 120 ? 2.5 : 1.5;
    cairo_save(cr);
    cairo_rectangle(cr, a.left - radius - 2, a.top - radius - 2, a.right - a.left + 2 * radius + 4,
                    a.bottom - a.top + 2 * radius + 4);
    cairo_clip(cr);
    cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
    for (int k = 0; k < n_series; k++) {
        if (!s[k].values) continue;
        cairo_set_source_rgb(cr, s[k].colour.r, s[k].colour.g, s[k].colour.b);
        cairo_set_line_width(cr, 2);
        bool pen_down = false;
        for (int e = 0; e < epochs; e++) {
            double v = s[k].values[e];
            if (!isfinite(v)) { pen_down = false; continue; }
            if (pen_down) cairo_line_to(cr, ax_x(&a, e + 1), ax_y(&a, v));
            else cairo_move_to(cr, ax_x(&a, e + 1), ax_y(&a, v));
            pen_down = true;
        }
        cairo_stroke(cr);
        for (int e = 0; e < epochs; e++) {
            double v = s[k].values[e];
            if (!isfinite(v)) continue;
            draw_marker(cr, ax_x(&a, e + 1), ax_y(&a, v), radius, s[k].marker);
            cairo_set_source_rgb(cr, s[k].colour.r, s[k].colour.g, s[k].colour.b);
            if (radius < 3.5) { cairo_fill(cr); continue; } /* small: a white rim would look dotted */
            cairo_fill_preserve(cr);
            cairo_set_source_rgb(cr, 1, 1, 1);
            cairo_set_line_width(cr, 0.8);
            cairo_stroke(cr);
        }
    }
    cairo_restore(cr);

    /* Legend: "name  last-value". */
    char text[3][64];
    int rows = 0;
    double text_w = 0;
    set_font(cr, 13, false);
    for (int k = 0; k < n_series; k++) {
        if (!s[k].values) continue;
        double last = NAN;
        for (int e = epochs - 1; e >= 0 && !isfinite(last); e--) last = s[k].values[e];
        if (!isfinite(last)) snprintf(text[k], sizeof text[k], "%s", s[k].name);
        else if (percent) snprintf(text[k], sizeof text[k], "%s  %.2f%%", s[k].name, last);
        else snprintf(text[k], sizeof text[k], "%s  %.4g", s[k].name, last);
        text_w = fmax(text_w, text_width(cr, text[k]));
        rows++;
    }
    double line_h = 20, box_w = 46 + text_w + 10, box_h = rows * line_h + 10, margin = 10;
    /* Corners in order of preference: loss falls (top right is free), accuracy rises (bottom right). */
    double corners[4][2] = {{a.right - margin - box_w, a.top + margin},
                            {a.right - margin - box_w, a.bottom - margin - box_h},
                            {a.left + margin, a.top + margin},
                            {a.left + margin, a.bottom - margin - box_h}};
    if (percent) {
        double t[2] = {corners[0][0], corners[0][1]};
        memcpy(corners[0], corners[1], sizeof t);
        memcpy(corners[1], t, sizeof t);
    }
    int best = 0, best_hits = -1;
    for (int c = 0; c < 4; c++) {
        int hits = points_inside(&a, s, n_series, epochs, corners[c][0] - 4, corners[c][1] - 4, corners[c][0] + box_w + 4,
                                 corners[c][1] + box_h + 4);
        if (best_hits < 0 || hits < best_hits) { best = c; best_hits = hits; }
    }
    double bx = round(corners[best][0]) + 0.5, by = round(corners[best][1]) + 0.5;
    cairo_rectangle(cr, bx, by, box_w, box_h);
    cairo_set_source_rgba(cr, 1, 1, 1, 0.9);
    cairo_fill_preserve(cr);
    cairo_set_source_rgb(cr, 0.7, 0.7, 0.7);
    cairo_set_line_width(cr, 1);
    cairo_stroke(cr);
    int row = 0;
    for (int k = 0; k < n_series; k++) {
        if (!s[k].values) continue;
        double cy = by + 5 + line_h * (row + 0.5);
        cairo_set_source_rgb(cr, s[k].colour.r, s[k].colour.g, s[k].colour.b);
        cairo_set_line_width(cr, 2);
        cairo_move_to(cr, bx + 8, cy);
        cairo_line_to(cr, bx + 38, cy);
        cairo_stroke(cr);
        draw_marker(cr, bx + 23, cy, 4, s[k].marker);
        cairo_fill(cr);
        set_font(cr, 13, false);
        text_at(cr, bx + 46, cy, text[k], 0, 0.5, ink);
        row++;
    }
}

cn_status cn_plot_training_curves(const char *path, const char *title, int epochs, const double *train_loss,
                                  const double *test_loss, const double *val_loss, const double *train_acc,
                                  const double *test_acc, const double *val_acc) {
    if (!path) return cn_fail(CN_ERR_ARG, "training-curve plot: path is NULL");
    if (epochs < 1 || epochs > CN_PLOT_MAX_EPOCHS)
        return cn_fail(CN_ERR_ARG, "%s: cannot plot %d epochs; expected 1..%d", path, epochs, CN_PLOT_MAX_EPOCHS);
    const int width = 1200, height = 500;
    canvas c;
    cn_status st = canvas_begin(&c, path, width, height);
    if (st) return st;
    draw_title(c.cr, width, title, NULL);
    const rgb blue = {0.12, 0.47, 0.71}, orange = {0.94, 0.45, 0.05}, green = {0.17, 0.63, 0.17};
    series loss[3] = {{train_loss, "train", blue, 0}, {test_loss, "test", orange, 1}, {val_loss, "validation", green, 2}};
    series acc[3] = {{train_acc, "train", blue, 0}, {test_acc, "test", orange, 1}, {val_acc, "validation", green, 2}};
    draw_panel(c.cr, 0, width / 2.0, height, "Loss", "loss", loss, 3, epochs, false);
    draw_panel(c.cr, width / 2.0, width / 2.0, height, "Accuracy", "accuracy (%)", acc, 3, epochs, true);
    return canvas_finish(&c);
}

/* ---------------------------------------------------------------- sweep ---- */

/* Names under the x ticks at 1..n (draw_axes numbers them; these replace the numbers). */
static void name_x_ticks(cairo_t *cr, const axes *a, int n, const char *const *names) {
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_rectangle(cr, a->left - 20, a->bottom + 6, a->right - a->left + 40, 20);
    cairo_fill(cr);
    set_font(cr, 12, false);
    for (int i = 0; i < n; i++) text_at(cr, ax_x(a, i + 1), a->bottom + 8, names[i], 0.5, 0, ink);
}

cn_status cn_plot_sweep(const char *path, const char *title, const char *x_label, int n_x, const char *const *x_names,
                        int n_series, const char *const *series_names, const double *mean, const double *lo,
                        const double *hi) {
    if (!path || !x_names || !series_names || !mean || !lo || !hi) return cn_fail(CN_ERR_ARG, "sweep plot: a NULL argument");
    if (n_x < 1 || n_x > 50 || n_series < 1 || n_series > 8)
        return cn_fail(CN_ERR_ARG, "%s: cannot plot %d values x %d series; expected 1..50 x 1..8", path, n_x, n_series);
    const int width = 900, height = 520;
    const rgb colours[8] = {{0.12, 0.47, 0.71}, {0.94, 0.45, 0.05}, {0.17, 0.63, 0.17}, {0.84, 0.15, 0.16},
                            {0.58, 0.40, 0.74}, {0.55, 0.34, 0.29}, {0.89, 0.47, 0.76}, {0.50, 0.50, 0.50}};
    double y_lo = INFINITY, y_hi = -INFINITY;
    for (int i = 0; i < n_series * n_x; i++)
        if (isfinite(mean[i])) { y_lo = fmin(y_lo, fmin(lo[i], mean[i])); y_hi = fmax(y_hi, fmax(hi[i], mean[i])); }
    canvas c;
    cn_status st = canvas_begin(&c, path, width, height);
    if (st) return st;
    cairo_t *cr = c.cr;
    draw_title(cr, width, title, NULL);
    axes a = {.left = 88, .right = width - 24, .top = 70, .bottom = height - 64 - 22 * ((n_series + 1) / 2),
              .x_min = 0.5, .x_max = n_x + 0.5};
    double y_step;
    y_range(y_lo, y_hi, 0, 100, &a.y_min, &a.y_max, &y_step);
    draw_axes(cr, &a, 1, y_step, x_label, "final test accuracy (%)");
    name_x_ticks(cr, &a, n_x, x_names);
    for (int k = 0; k < n_series; k++) {
        const double *m = mean + (size_t)k * n_x, *l = lo + (size_t)k * n_x, *h = hi + (size_t)k * n_x;
        rgb col = colours[k];
        double shift = n_series > 1 ? (k - (n_series - 1) / 2.0) * 0.06 : 0;   /* bars side by side */
        cairo_set_source_rgb(cr, col.r, col.g, col.b);
        cairo_set_line_width(cr, 2);
        bool pen = false;
        for (int i = 0; i < n_x; i++) {
            if (!isfinite(m[i])) { pen = false; continue; }
            double px = ax_x(&a, i + 1 + shift), py = ax_y(&a, m[i]);
            if (pen) cairo_line_to(cr, px, py); else cairo_move_to(cr, px, py);
            pen = true;
        }
        cairo_stroke(cr);
        for (int i = 0; i < n_x; i++) {
            if (!isfinite(m[i])) continue;
            double px = ax_x(&a, i + 1 + shift);
            cairo_set_line_width(cr, 1.5);
            cairo_move_to(cr, px, ax_y(&a, l[i]));
            cairo_line_to(cr, px, ax_y(&a, h[i]));
            cairo_stroke(cr);
            draw_marker(cr, px, ax_y(&a, m[i]), 4.5, k % 3);
            cairo_fill(cr);
        }
        /* legend below the axes, two columns */
        double lx = 88 + (k % 2) * (width - 112) / 2.0, ly = height - 30 - 22 * ((n_series + 1) / 2 - 1 - k / 2);
        cairo_move_to(cr, lx, ly);
        cairo_line_to(cr, lx + 28, ly);
        cairo_stroke(cr);
        draw_marker(cr, lx + 14, ly, 4, k % 3);
        cairo_fill(cr);
        set_font(cr, 12, false);
        text_at(cr, lx + 36, ly, series_names[k], 0, 0.5, ink);
    }
    return canvas_finish(&c);
}

/* ---------------------------------------------------- confusion matrix ---- */

/* White → dark blue (like matplotlib's "Blues"), t in [0, 1]. */
static rgb blues(double t) {
    static const rgb stops[] = {{0.969, 0.984, 1.000}, {0.776, 0.859, 0.937}, {0.420, 0.682, 0.839},
                                {0.129, 0.443, 0.710}, {0.031, 0.188, 0.420}};
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    double pos = t * 4;
    int i = pos >= 4 ? 3 : (int)pos;
    double f = pos - i;
    return (rgb){stops[i].r + (stops[i + 1].r - stops[i].r) * f, stops[i].g + (stops[i + 1].g - stops[i].g) * f,
                 stops[i].b + (stops[i + 1].b - stops[i].b) * f};
}

static void class_label(char *buf, size_t size, const char *const *names, int i) {
    if (names && names[i]) snprintf(buf, size, "%s", names[i]);
    else snprintf(buf, size, "%d", i);
}

cn_status cn_plot_confusion_matrix(const char *path, const char *title, int classes, const int64_t *counts,
                                   const char *const *class_names) {
    if (!path) return cn_fail(CN_ERR_ARG, "confusion-matrix plot: path is NULL");
    if (classes < 1 || classes > CN_PLOT_MAX_CLASSES)
        return cn_fail(CN_ERR_ARG, "%s: cannot plot %d classes; expected 1..%d", path, classes, CN_PLOT_MAX_CLASSES);
    if (!counts) return cn_fail(CN_ERR_ARG, "%s: confusion-matrix counts are NULL", path);
    int64_t total = 0, correct = 0, largest = 0;
    for (int i = 0; i < classes * classes; i++) {
        if (counts[i] < 0)
            return cn_fail(CN_ERR_ARG, "%s: count for true %d, predicted %d is %lld; expected a count >= 0", path,
                           i / classes, i % classes, (long long)counts[i]);
        total += counts[i];
        if (i / classes == i % classes) correct += counts[i];
        if (counts[i] > largest) largest = counts[i];
    }

    /* Measure labels on a scratch surface to lay out the margins. */
    cairo_surface_t *scratch = cairo_image_surface_create(CAIRO_FORMAT_RGB24, 1, 1);
    cairo_t *m = cairo_create(scratch);
    const int cell = classes >= 40 ? 14 : classes <= 4 ? 120 : 560 / classes;
    const int grid = cell * classes;
    const double name_size = cell >= 40 ? 14 : cell >= 24 ? 12 : 9;
    set_font(m, name_size, false);
    double name_w = 0;
    char buf[128];
    for (int i = 0; i < classes; i++) {
        class_label(buf, sizeof buf, class_names, i);
        name_w = fmax(name_w, text_width(m, buf));
    }
    name_w = fmin(name_w, 160);
    bool rotate_columns = name_w > cell - 6;
    char subtitle[160];
    if (total > 0)
        snprintf(subtitle, sizeof subtitle, "accuracy %.2f%% (%lld of %lld)", 100.0 * (double)correct / (double)total,
                 (long long)correct, (long long)total);
    else snprintf(subtitle, sizeof subtitle, "no samples");
    double title_w = 0;
    if (title) { set_font(m, 20, true); title_w = text_width(m, title); }
    set_font(m, 13, false);
    title_w = fmax(title_w, text_width(m, subtitle));
    cairo_destroy(m);
    cairo_surface_destroy(scratch);

    const double left = 44 + name_w + 12, top = 76;
    const double bottom_names = rotate_columns ? name_w + 12 : 24;
    const int width = (int)ceil(fmax(left + grid + 130, title_w + 40));
    const int height = (int)ceil(top + grid + bottom_names + 44);
    canvas c;
    cn_status st = canvas_begin(&c, path, width, height);
    if (st) return st;
    cairo_t *cr = c.cr;
    draw_title(cr, width, title, subtitle);

    /* Cells */
    int digits = snprintf(buf, sizeof buf, "%lld", (long long)largest);
    double count_size = fmin(16, cell * 0.36);
    set_font(cr, count_size, false);
    {
        char widest[32];
        memset(widest, '8', (size_t)digits);
        widest[digits] = '\0';
        count_size = fit_font(cr, widest, cell - 5, count_size, 6, true); /* bold is the wider */
    }
    for (int t = 0; t < classes; t++) {
        int64_t row_total = 0;
        for (int p = 0; p < classes; p++) row_total += counts[t * classes + p];
        for (int p = 0; p < classes; p++) {
            int64_t n = counts[t * classes + p];
            double share = row_total > 0 ? (double)n / (double)row_total : 0;
            rgb colour = blues(sqrt(share));
            double x = left + p * cell, y = top + t * cell;
            cairo_rectangle(cr, x, y, cell, cell);
            cairo_set_source_rgb(cr, colour.r, colour.g, colour.b);
            cairo_fill(cr);
            snprintf(buf, sizeof buf, "%lld", (long long)n);
            /* One size for all counts if the largest fits, else each as large as it fits. */
            double size = count_size > 0 ? count_size : fit_font(cr, buf, cell - 5, fmin(16, cell * 0.36), 6, true);
            if (size > 0) {
                set_font(cr, size, t == p);
                rgb text = sqrt(share) > 0.6 ? (rgb){1, 1, 1} : n == 0 ? (rgb){0.6, 0.6, 0.6} : ink;
                text_at(cr, x + cell / 2.0, y + cell / 2.0, buf, 0.5, 0.5, text);
            }
        }
    }
    cairo_set_source_rgb(cr, 0.5, 0.5, 0.5);
    cairo_set_line_width(cr, 1);
    cairo_rectangle(cr, left + 0.5, top + 0.5, grid - 1, grid - 1);
    cairo_stroke(cr);

    /* Class names: rows on the left, columns below. */
    for (int i = 0; i < classes; i++) {
        class_label(buf, sizeof buf, class_names, i);
        double size = fit_font(cr, buf, name_w, name_size, 5, false);
        if (size == 0) continue;
        text_at(cr, left - 6, top + (i + 0.5) * cell, buf, 1, 0.5, ink);
        if (rotate_columns) {
            cairo_save(cr);
            cairo_translate(cr, left + (i + 0.5) * cell, top + grid + 6);
            cairo_rotate(cr, -M_PI / 2);
            text_at(cr, 0, 0, buf, 1, 0.5, ink);
            cairo_restore(cr);
        } else {
            text_at(cr, left + (i + 0.5) * cell, top + grid + 6, buf, 0.5, 0, ink);
        }
    }
    set_font(cr, 15, true);
    text_at(cr, left + grid / 2.0, top + grid + bottom_names + 10, "predicted", 0.5, 0, ink);
    text_vertical(cr, 20, top + grid / 2.0, "true", ink);

    /* Colour bar: share of the true class, 0..100%, on a square-root scale so
     * that a 1% confusion is visibly tinted next to a 99% diagonal. */
    double bar_x = left + grid + 24, bar_w = 18;
    cairo_pattern_t *gradient = cairo_pattern_create_linear(0, top + grid, 0, top);
    for (int i = 0; i <= 4; i++) {
        rgb colour = blues(i / 4.0);
        cairo_pattern_add_color_stop_rgb(gradient, i / 4.0, colour.r, colour.g, colour.b);
    }
    cairo_rectangle(cr, bar_x, top, bar_w, grid);
    cairo_set_source(cr, gradient);
    cairo_fill(cr);
    cairo_pattern_destroy(gradient);
    cairo_rectangle(cr, bar_x + 0.5, top + 0.5, bar_w - 1, grid - 1);
    cairo_set_source_rgb(cr, 0.5, 0.5, 0.5);
    cairo_stroke(cr);
    set_font(cr, 11, false);
    static const int bar_ticks[] = {0, 1, 5, 10, 25, 50, 100};
    for (size_t i = 0; i < sizeof bar_ticks / sizeof *bar_ticks; i++) {
        if (grid < 200 && (bar_ticks[i] == 1 || bar_ticks[i] == 10)) continue; /* crowded */
        double y = top + grid - grid * sqrt(bar_ticks[i] / 100.0);
        snprintf(buf, sizeof buf, "%d%%", bar_ticks[i]);
        cairo_set_source_rgb(cr, 0.5, 0.5, 0.5);
        cairo_move_to(cr, bar_x + bar_w, round(y) + 0.5);
        cairo_line_to(cr, bar_x + bar_w + 3, round(y) + 0.5);
        cairo_stroke(cr);
        text_at(cr, bar_x + bar_w + 5, y, buf, 0, 0.5, ink);
    }
    set_font(cr, 12, false);
    text_vertical(cr, bar_x + bar_w + 50, top + grid / 2.0, grid >= 260 ? "share of the true class (sqrt scale)" : "share of true class", grey_text);
    return canvas_finish(&c);
}

/* ---------------------------------------------------------- image grid ---- */

static void label_text(char *buf, size_t size, int label, const char *const *names) {
    if (label < 0) snprintf(buf, size, "?");
    else if (names && names[label]) snprintf(buf, size, "%s", names[label]);
    else snprintf(buf, size, "%d", label);
}

static void caption_parts(char *t, char *p, size_t size, int i, const int *true_labels, const int *pred_labels,
                          const char *const *names) {
    label_text(t, size, true_labels[i], names);
    if (pred_labels) label_text(p, size, pred_labels[i], names);
    else p[0] = '\0';
}

cn_status cn_plot_image_grid(const char *path, const char *title, int count, const uint8_t *images, int channels,
                             int rows, int cols, const int *true_labels, const int *pred_labels,
                             const char *const *class_names) {
    if (!path) return cn_fail(CN_ERR_ARG, "image-grid plot: path is NULL");
    if (count < 0) return cn_fail(CN_ERR_ARG, "%s: image count is %d; expected >= 0", path, count);
    if (count > 0 && (!images || !true_labels))
        return cn_fail(CN_ERR_ARG, "%s: %d images to plot but the %s pointer is NULL", path, count,
                       !images ? "image" : "label");
    if (count > 0 && (channels < 1 || channels > 4))
        return cn_fail(CN_ERR_ARG, "%s: images have %d channels; expected 1..4", path, channels);
    if (count > 0 && (rows < 1 || cols < 1 || rows > CN_PLOT_MAX_IMAGE_SIDE || cols > CN_PLOT_MAX_IMAGE_SIDE))
        return cn_fail(CN_ERR_ARG, "%s: images are %dx%d; expected 1..%d pixels per side", path, rows, cols,
                       CN_PLOT_MAX_IMAGE_SIDE);
    if (count == 0) {
        const int width = 520, height = 220;
        canvas c;
        cn_status st = canvas_begin(&c, path, width, height);
        if (st) return st;
        draw_title(c.cr, width, title, NULL);
        cairo_set_source_rgb(c.cr, 0.96, 0.96, 0.96);
        cairo_rectangle(c.cr, 20, 60, width - 40, height - 80);
        cairo_fill_preserve(c.cr);
        cairo_set_source_rgb(c.cr, 0.8, 0.8, 0.8);
        cairo_set_line_width(c.cr, 1);
        cairo_stroke(c.cr);
        set_font(c.cr, 18, false);
        text_at(c.cr, width / 2.0, 60 + (height - 80) / 2.0, "no misclassified images", 0.5, 0.5, grey_text);
        return canvas_finish(&c);
    }

    int shown = count < CN_PLOT_MAX_GRID_IMAGES ? count : CN_PLOT_MAX_GRID_IMAGES;
    int grid_cols = (int)ceil(sqrt((double)shown));
    if (grid_cols > 10) grid_cols = 10;
    int grid_rows = (shown + grid_cols - 1) / grid_cols;
    int side = rows > cols ? rows : cols;
    int scale = side >= 112 ? 1 : 112 / side; /* about 112 px per image */
    int img_w = cols * scale, img_h = rows * scale;
    int tile_w = (img_w > 128 ? img_w : 128) + 12, caption_h = 34, tile_h = img_h + caption_h + 10;
    double top = 70;
    int width = grid_cols * tile_w + 24, height = (int)top + grid_rows * tile_h + 12;
    if (width < 420) width = 420;
    double left = (width - grid_cols * tile_w) / 2.0;

    canvas c;
    cn_status st = canvas_begin(&c, path, width, height);
    if (st) return st;
    cairo_t *cr = c.cr;
    char subtitle[96];
    if (shown < count) snprintf(subtitle, sizeof subtitle, "the first %d of %d images", shown, count);
    else snprintf(subtitle, sizeof subtitle, "%d image%s", count, count == 1 ? "" : "s");
    draw_title(cr, width, title, subtitle);

    cairo_surface_t *tile = cairo_image_surface_create(CAIRO_FORMAT_RGB24, cols, rows);
    if (cairo_surface_status(tile) != CAIRO_STATUS_SUCCESS) {
        cairo_status_t ts = cairo_surface_status(tile);
        cairo_surface_destroy(tile);
        canvas_abort(&c);
        return cairo_failure(path, "cannot create an image tile", ts);
    }
    const rgb wrong = {0.78, 0.16, 0.16}, right = {0.11, 0.50, 0.20};
    /* One caption layout for the whole grid: two lines if any one-line caption
     * would need a font smaller than 12 px. */
    bool two_lines = false;
    for (int i = 0; i < shown && pred_labels && !two_lines; i++) {
        char t[80], p[80], line[200];
        caption_parts(t, p, sizeof t, i, true_labels, pred_labels, class_names);
        snprintf(line, sizeof line, "true %s / pred %s", t, p);
        two_lines = fit_font(cr, line, tile_w - 8, 13, 12, false) == 0;
    }
    for (int i = 0; i < shown; i++) {
        double x = left + (i % grid_cols) * tile_w, y = top + (i / grid_cols) * tile_h;
        double ix = round(x + (tile_w - img_w) / 2.0), iy = round(y + 4);
        /* Copy the image into the tile surface (gray, or the first three planes as RGB → xRGB). */
        cairo_surface_flush(tile);
        unsigned char *data = cairo_image_surface_get_data(tile);
        int stride = cairo_image_surface_get_stride(tile);
        size_t plane = (size_t)rows * cols;
        const uint8_t *red = images + (size_t)i * channels * plane;
        const uint8_t *green = channels >= 3 ? red + plane : red, *blue = channels >= 3 ? red + 2 * plane : red;
        for (int r = 0; r < rows; r++)
            for (int q = 0; q < cols; q++) {
                size_t k = (size_t)r * cols + q;
                ((uint32_t *)(data + (size_t)r * stride))[q] =
                    0xff000000u | (uint32_t)red[k] << 16 | (uint32_t)green[k] << 8 | blue[k];
            }
        cairo_surface_mark_dirty(tile);
        cairo_save(cr);
        cairo_translate(cr, ix, iy);
        cairo_scale(cr, scale, scale);
        cairo_set_source_surface(cr, tile, 0, 0);
        cairo_pattern_set_filter(cairo_get_source(cr), CAIRO_FILTER_NEAREST);
        cairo_rectangle(cr, 0, 0, cols, rows);
        cairo_fill(cr);
        cairo_restore(cr);
        cairo_set_source_rgb(cr, 0.6, 0.6, 0.6);
        cairo_set_line_width(cr, 1);
        cairo_rectangle(cr, ix - 0.5, iy - 0.5, img_w + 1, img_h + 1);
        cairo_stroke(cr);

        /* Caption: "true T / pred P", or "true T" over "pred P" (see two_lines). */
        char t[80], p[80], line[200];
        caption_parts(t, p, sizeof t, i, true_labels, pred_labels, class_names);
        bool ok = pred_labels && pred_labels[i] == true_labels[i];
        rgb colour = !pred_labels ? ink : ok ? right : wrong;
        double cy = iy + img_h + 5, avail = tile_w - 8;
        if (!two_lines) {
            if (pred_labels) snprintf(line, sizeof line, "true %s / pred %s", t, p);
            else snprintf(line, sizeof line, "true %s", t);
            if (fit_font(cr, line, avail, 13, 5, false) == 0) set_font(cr, 5, false);
            text_at(cr, x + tile_w / 2.0, cy + 6, line, 0.5, 0, colour);
        } else {
            snprintf(line, sizeof line, "true %s", t);
            if (fit_font(cr, line, avail, 12, 5, false) == 0) set_font(cr, 5, false);
            text_at(cr, x + tile_w / 2.0, cy, line, 0.5, 0, colour);
            snprintf(line, sizeof line, "pred %s", p);
            if (fit_font(cr, line, avail, 12, 5, false) == 0) set_font(cr, 5, false);
            text_at(cr, x + tile_w / 2.0, cy + 15, line, 0.5, 0, colour);
        }
    }
    cairo_surface_destroy(tile);
    return canvas_finish(&c);
}
