/* PIL-compatible bilinear resize. See resize.h. */
#include "data/resize.h"
#include "core/error.h"
#include "core/mem.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define PRECISION_BITS (32 - 8 - 2)

typedef struct {
    int ksize;       /* taps per output pixel (the widest window) */
    int *bounds;     /* per output pixel: first input index, tap count */
    int32_t *coeffs; /* per output pixel: ksize fixed-point weights */
} taps;

static double triangle(double x) {
    if (x < 0.0) x = -x;
    return x < 1.0 ? 1.0 - x : 0.0;
}

/* Pillow's precompute_coeffs + normalize_coeffs_8bpc for in_size -> out_size. */
static cn_status make_taps(int in_size, int out_size, taps *t) {
    double scale = (double)in_size / out_size, filterscale = scale < 1.0 ? 1.0 : scale;
    double support = 1.0 * filterscale;
    t->ksize = (int)ceil(support) * 2 + 1;
    t->bounds = cn_calloc((size_t)out_size * 2, sizeof *t->bounds);
    t->coeffs = cn_calloc((size_t)out_size * (size_t)t->ksize, sizeof *t->coeffs);
    double *k = cn_calloc((size_t)t->ksize, sizeof *k);
    if (!t->bounds || !t->coeffs || !k) { free(k); return CN_ERR_NOMEM; }
    for (int xx = 0; xx < out_size; xx++) {
        double center = (xx + 0.5) * scale, ww = 0.0, ss = 1.0 / filterscale;
        int xmin = (int)(center - support + 0.5), xmax = (int)(center + support + 0.5);
        if (xmin < 0) xmin = 0;
        if (xmax > in_size) xmax = in_size;
        xmax -= xmin;
        for (int x = 0; x < xmax; x++) {
            k[x] = triangle((x + xmin - center + 0.5) * ss);
            ww += k[x];
        }
        int32_t *c = t->coeffs + (size_t)xx * t->ksize;
        for (int x = 0; x < xmax; x++) {
            double w = ww != 0.0 ? k[x] / ww : k[x];
            c[x] = w < 0 ? (int32_t)(-0.5 + w * (1 << PRECISION_BITS)) : (int32_t)(0.5 + w * (1 << PRECISION_BITS));
        }
        t->bounds[2 * xx] = xmin;
        t->bounds[2 * xx + 1] = xmax;
    }
    free(k);
    return CN_OK;
}

static uint8_t clip8(int32_t v) {
    v >>= PRECISION_BITS;
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

cn_status cn_resize_bilinear(const uint8_t *src, int sh, int sw, uint8_t *dst, int dh, int dw) {
    if (sh == dh && sw == dw) { memcpy(dst, src, (size_t)sh * (size_t)sw); return CN_OK; }
    taps h = {0}, v = {0};
    uint8_t *tmp = NULL;
    cn_status st = make_taps(sw, dw, &h);
    if (st == CN_OK) st = make_taps(sh, dh, &v);
    /* Rows the vertical pass reads: from the first tap of the first output row
     * to the last tap of the last. */
    int first = st == CN_OK ? v.bounds[0] : 0;
    int last = st == CN_OK ? v.bounds[2 * (dh - 1)] + v.bounds[2 * (dh - 1) + 1] : 0;
    const uint8_t *rows = src;
    int row_width = sw;
    if (st == CN_OK && sw != dw) {
        if (!(tmp = cn_calloc((size_t)(last - first), (size_t)dw))) st = CN_ERR_NOMEM;
        for (int y = first; st == CN_OK && y < last; y++) {
            const uint8_t *in = src + (size_t)y * sw;
            uint8_t *out = tmp + (size_t)(y - first) * dw;
            for (int xx = 0; xx < dw; xx++) {
                const int32_t *k = h.coeffs + (size_t)xx * h.ksize;
                int xmin = h.bounds[2 * xx], xmax = h.bounds[2 * xx + 1];
                int32_t ss = 1 << (PRECISION_BITS - 1);
                for (int x = 0; x < xmax; x++) ss += in[xmin + x] * k[x];
                out[xx] = clip8(ss);
            }
        }
        rows = tmp;
        row_width = dw;
    } else first = 0;
    if (st == CN_OK && sh != dh) {
        for (int yy = 0; yy < dh; yy++) {
            const int32_t *k = v.coeffs + (size_t)yy * v.ksize;
            int ymin = v.bounds[2 * yy] - first, ymax = v.bounds[2 * yy + 1];
            for (int xx = 0; xx < dw; xx++) {
                int32_t ss = 1 << (PRECISION_BITS - 1);
                for (int y = 0; y < ymax; y++) ss += rows[(size_t)(ymin + y) * row_width + xx] * k[y];
                dst[(size_t)yy * dw + xx] = clip8(ss);
            }
        }
    } else if (st == CN_OK) memcpy(dst, rows, (size_t)dh * (size_t)dw);
    free(h.bounds); free(h.coeffs); free(v.bounds); free(v.coeffs); free(tmp);
    return st;
}
