/* MNIST-style digit preprocessing. See preprocess.h for the steps and why. */
#include "io/preprocess.h"
#include "core/error.h"
#include "core/mem.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Resampling of one axis from `in` to `out` (≤ CN_DIGIT_BOX) samples: output o
 * is the sum over k < count[o] of weight[offset[o] + k] * input[first[o] + k]. */
typedef struct {
    int first[CN_DIGIT_BOX], count[CN_DIGIT_BOX], offset[CN_DIGIT_BOX];
    float *weight;
} axis_map;

/* Shrinking: each output averages the input interval it covers, partial pixels
 * by their covered fraction (area averaging, i.e. anti-aliasing). Enlarging or
 * equal: bilinear between the two nearest input pixel centres (identity when
 * in == out). */
static cn_status axis_map_build(int in, int out, axis_map *m) {
    CN_ASSERT(in >= 1 && out >= 1 && out <= CN_DIGIT_BOX);
    /* Area: at most in + out weights in all (each boundary adds one); bilinear: 2 * out. */
    m->weight = cn_calloc((size_t)in + 2 * (size_t)out, sizeof(float));
    if (!m->weight) return CN_ERR_NOMEM;
    int used = 0;
    for (int o = 0; o < out; o++) {
        m->offset[o] = used;
        if (out < in) {
            double x0 = (double)o * in / out, x1 = (double)(o + 1) * in / out;
            int first = (int)floor(x0), last = (int)ceil(x1) - 1;
            if (last > in - 1) last = in - 1;
            m->first[o] = first;
            m->count[o] = last - first + 1;
            for (int i = first; i <= last; i++) {
                double lo = i > x0 ? i : x0, hi = i + 1 < x1 ? i + 1 : x1;
                m->weight[used++] = (float)((hi - lo) / (x1 - x0));
            }
        } else {
            double src = (o + 0.5) * in / out - 0.5;
            if (src < 0) src = 0;
            if (src > in - 1) src = in - 1;
            int i0 = (int)floor(src);
            double f = src - i0;
            m->first[o] = i0;
            if (i0 + 1 <= in - 1) {
                m->count[o] = 2;
                m->weight[used++] = (float)(1 - f);
                m->weight[used++] = (float)f;
            } else {
                m->count[o] = 1;
                m->weight[used++] = 1.0f;
            }
        }
    }
    return CN_OK;
}

cn_status cn_preprocess_digit_ex(const cn_gray_image *img, float out[CN_DIGIT_SIDE * CN_DIGIT_SIDE],
                                 cn_preprocess_info *info) {
    CN_ASSERT(img != NULL && out != NULL);
    if (img->width < 1 || img->height < 1 || !img->pixels)
        return cn_fail(CN_ERR_ARG, "cannot preprocess an empty image (%dx%d pixels); expected at least 1x1",
                       img->width, img->height);
    const int w = img->width, h = img->height;
    const uint8_t *px = img->pixels;
    cn_preprocess_info found = {0};

    /* 1. Background = median of the border pixels (robust to a stroke touching the edge). */
    size_t border_hist[256] = {0}, border_count = 0;
    for (int x = 0; x < w; x++) {
        border_hist[px[x]]++;
        border_count++;
        if (h > 1) { border_hist[px[(size_t)(h - 1) * w + x]]++; border_count++; }
    }
    for (int y = 1; y < h - 1; y++) {
        border_hist[px[(size_t)y * w]]++;
        border_count++;
        if (w > 1) { border_hist[px[(size_t)y * w + w - 1]]++; border_count++; }
    }
    int background = 0;
    for (size_t seen = 0; background < 256; background++)
        if ((seen += border_hist[background]) * 2 >= border_count) break;
    found.background = background;
    found.inverted = background > 127;

    /* 2. Ink level per grey value, via a histogram of the whole picture. */
    size_t hist[256] = {0};
    for (size_t i = 0, n = (size_t)w * h; i < n; i++) hist[px[i]]++;
    int background_ink = found.inverted ? 255 - background : background;
    int ink_max = 0;
    for (int v = 0; v < 256; v++) {
        int level = (found.inverted ? 255 - v : v) - background_ink;
        if (hist[v] && level > ink_max) ink_max = level;
    }
    found.ink_max = ink_max;
    if (ink_max < CN_PREPROCESS_MIN_CONTRAST)
        return cn_fail(CN_ERR_FORMAT, "no ink found: every pixel is within %d grey levels of the %s background (%d); "
                       "expected a digit at least %d levels %s than the background",
                       ink_max, found.inverted ? "light" : "dark", background, CN_PREPROCESS_MIN_CONTRAST,
                       found.inverted ? "darker" : "lighter");
    float ink[256];
    for (int v = 0; v < 256; v++) {
        int level = (found.inverted ? 255 - v : v) - background_ink;
        ink[v] = level > 0 ? (float)level / (float)ink_max : 0.0f;
    }

    /* 3. Bounding box of the clear ink. */
    int x_min = w, x_max = -1, y_min = h, y_max = -1;
    for (int y = 0; y < h; y++) {
        const uint8_t *row = px + (size_t)y * w;
        for (int x = 0; x < w; x++)
            if (ink[row[x]] > CN_PREPROCESS_INK_FRACTION) {
                if (x < x_min) x_min = x;
                if (x > x_max) x_max = x;
                if (y < y_min) y_min = y;
                if (y > y_max) y_max = y;
            }
    }
    CN_ASSERT(x_max >= 0); /* the strongest ink (1.0) is above the fraction */
    found.box_x = x_min;
    found.box_y = y_min;
    found.box_width = x_max - x_min + 1;
    found.box_height = y_max - y_min + 1;

    /* 4. Scale so the longer side is CN_DIGIT_BOX, keeping the aspect ratio. */
    int bw = found.box_width, bh = found.box_height, longer = bw > bh ? bw : bh;
    int sw = (int)lround((double)bw * CN_DIGIT_BOX / longer), sh = (int)lround((double)bh * CN_DIGIT_BOX / longer);
    if (sw < 1) sw = 1;
    if (sh < 1) sh = 1;
    found.scaled_width = sw;
    found.scaled_height = sh;
    axis_map mx = {0}, my = {0};
    float *rows_scaled = NULL; /* (bh, sw): horizontal pass */
    cn_status st;
    if ((st = axis_map_build(bw, sw, &mx)) || (st = axis_map_build(bh, sh, &my)) ||
        !(rows_scaled = cn_calloc((size_t)bh * sw, sizeof(float)))) {
        free(mx.weight);
        free(my.weight);
        return CN_ERR_NOMEM;
    }
    for (int y = 0; y < bh; y++) {
        const uint8_t *row = px + (size_t)(y_min + y) * w + x_min;
        for (int o = 0; o < sw; o++) {
            float sum = 0;
            for (int k = 0; k < mx.count[o]; k++) sum += mx.weight[mx.offset[o] + k] * ink[row[mx.first[o] + k]];
            rows_scaled[(size_t)y * sw + o] = sum;
        }
    }
    float scaled[CN_DIGIT_BOX * CN_DIGIT_BOX], brightest = 0;
    for (int o = 0; o < sh; o++)
        for (int x = 0; x < sw; x++) {
            float sum = 0;
            for (int k = 0; k < my.count[o]; k++)
                sum += my.weight[my.offset[o] + k] * rows_scaled[(size_t)(my.first[o] + k) * sw + x];
            scaled[o * sw + x] = sum;
            if (sum > brightest) brightest = sum;
        }
    free(mx.weight);
    free(my.weight);
    free(rows_scaled);
    /* Thin strokes fade when shrunk a lot; every MNIST digit reaches 254 or 255,
     * so stretch the brightest pixel back to 1. */
    CN_ASSERT(brightest > 0);
    double mass = 0, mass_x = 0, mass_y = 0;
    for (int o = 0; o < sh; o++)
        for (int x = 0; x < sw; x++) {
            float v = scaled[o * sw + x] / brightest;
            v = v < 0 ? 0 : v > 1 ? 1 : v;
            scaled[o * sw + x] = v;
            mass += v;
            mass_x += (double)v * x;
            mass_y += (double)v * o;
        }

    /* 5. Centre of mass to (14, 14), whole-pixel shift, clip. In MNIST every
     * digit's centre of mass lies in [13.5, 14.5) on both axes, so the shift is
     * the one that lands it there: round to nearest, halves downwards. */
    CN_ASSERT(mass > 0);
    const double centre = CN_DIGIT_SIDE / 2;
    found.shift_x = (int)ceil(centre - 0.5 - mass_x / mass);
    found.shift_y = (int)ceil(centre - 0.5 - mass_y / mass);
    memset(out, 0, sizeof(float) * CN_DIGIT_SIDE * CN_DIGIT_SIDE);
    for (int y = 0; y < sh; y++) {
        int ty = y + found.shift_y;
        if (ty < 0 || ty >= CN_DIGIT_SIDE) continue;
        for (int x = 0; x < sw; x++) {
            int tx = x + found.shift_x;
            if (tx >= 0 && tx < CN_DIGIT_SIDE) out[ty * CN_DIGIT_SIDE + tx] = scaled[y * sw + x];
        }
    }
    if (info) *info = found;
    return CN_OK;
}

cn_status cn_preprocess_digit(const cn_gray_image *img, float out[CN_DIGIT_SIDE * CN_DIGIT_SIDE]) {
    return cn_preprocess_digit_ex(img, out, NULL);
}
