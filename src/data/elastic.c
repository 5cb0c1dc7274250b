#include "data/elastic.h"
#include <math.h>
#include <string.h>

static int kernel_radius(float sigma) { return (int)ceilf(3.0f * sigma); }

size_t cn_elastic_scratch_floats(int rows, int cols, float sigma) {
    if (sigma > CN_ELASTIC_MAX_SIGMA) sigma = CN_ELASTIC_MAX_SIGMA;
    size_t n = (size_t)rows * (size_t)cols, r = (size_t)kernel_radius(sigma);
    size_t line = (size_t)cols + 2 * r, padded = ((size_t)rows + 2 * r) * (size_t)cols;
    return 2 * n + (2 * r + 1) + (line > padded ? line : padded); /* fields, kernel, padding */
}

/* scipy's "reflect" boundary: ... c b a | a b c ... | c b a ... */
static inline int mirror(int i, int n) {
    int period = 2 * n;
    i %= period;
    if (i < 0) i += period;
    return i < n ? i : period - 1 - i;
}

/* dst[x] = sum over k in -r..r of kernel[r + k] * src[x + (r + k) * step], x < n,
 * using the kernel's symmetry (one multiply per pair of taps) and two
 * independent accumulators, four lanes at a time (GCC vector extension;
 * SSE2 on x86-64). */
typedef float v4f __attribute__((vector_size(16)));
static inline v4f load4(const float *p) { v4f v; memcpy(&v, p, sizeof v); return v; }
static void convolve(float *restrict dst, const float *restrict src, size_t step, const float *kernel, int r, int n) {
    const float *centre = src + (size_t)r * step;
    int x = 0;
    for (; x + 4 <= n; x += 4) {
        v4f acc0 = kernel[r] * load4(centre + x), acc1 = {0, 0, 0, 0};
        int k = 1;
        for (; k + 1 <= r; k += 2) {
            acc0 += kernel[r + k] * (load4(centre + x - (size_t)k * step) + load4(centre + x + (size_t)k * step));
            acc1 += kernel[r + k + 1] *
                    (load4(centre + x - (size_t)(k + 1) * step) + load4(centre + x + (size_t)(k + 1) * step));
        }
        if (k == r) acc0 += kernel[r + k] * (load4(centre + x - (size_t)k * step) + load4(centre + x + (size_t)k * step));
        v4f sum = acc0 + acc1;
        memcpy(dst + x, &sum, sizeof sum);
    }
    for (; x < n; x++) {
        float acc = kernel[r] * centre[x];
        for (int k = 1; k <= r; k++) acc += kernel[r + k] * (centre[x - (size_t)k * step] + centre[x + (size_t)k * step]);
        dst[x] = acc;
    }
}

/* Smooths field (rows, cols) in place with the 1-D kernel along x, then y.
 * `pad` holds max(cols + 2r, (rows + 2r) * cols) floats. */
static void blur(float *field, int rows, int cols, const float *kernel, int r, float *pad) {
    for (int y = 0; y < rows; y++) {
        float *row = field + (size_t)y * cols;
        memcpy(pad + r, row, (size_t)cols * sizeof(float));
        for (int i = 1; i <= r; i++) {
            pad[r - i] = row[mirror(-i, cols)];
            pad[r + cols - 1 + i] = row[mirror(cols - 1 + i, cols)];
        }
        convolve(row, pad, 1, kernel, r, cols);
    }
    for (int i = -r; i < rows + r; i++)
        memcpy(pad + (size_t)(i + r) * cols, field + (size_t)mirror(i, rows) * cols, (size_t)cols * sizeof(float));
    for (int y = 0; y < rows; y++)
        convolve(field + (size_t)y * cols, pad + (size_t)y * cols, (size_t)cols, kernel, r, cols);
}

/* floor for |v| < 2^31, without a libm call. */
static inline int floor_to_int(float v) {
    int i = (int)v;
    return i - ((float)i > v);
}

static inline float pixel_or_zero(const uint8_t *src, int rows, int cols, int y, int x) {
    return (x >= 0 && x < cols && y >= 0 && y < rows) ? (float)src[(size_t)y * cols + x] : 0.0f;
}

void cn_elastic_apply(const uint8_t *src, int rows, int cols, float alpha, float sigma, cn_rng *rng,
                      float *scratch, float *dst) {
    size_t n = (size_t)rows * (size_t)cols;
    if (sigma > CN_ELASTIC_MAX_SIGMA) sigma = CN_ELASTIC_MAX_SIGMA;
    int r = kernel_radius(sigma);
    float *gx = scratch, *gy = scratch + n, *kernel = scratch + 2 * n, *pad = kernel + 2 * r + 1;
    for (size_t i = 0; i < n; i++) gx[i] = 2.0f * cn_rng_uniform(rng) - 1.0f;
    for (size_t i = 0; i < n; i++) gy[i] = 2.0f * cn_rng_uniform(rng) - 1.0f;
    float sum = 0.0f;
    for (int k = -r; k <= r; k++) sum += kernel[k + r] = expf(-0.5f * (float)(k * k) / (sigma * sigma));
    for (int k = 0; k <= 2 * r; k++) kernel[k] /= sum;
    blur(gx, rows, cols, kernel, r, pad);
    blur(gy, rows, cols, kernel, r, pad);
    for (int y = 0; y < rows; y++) {
        for (int x = 0; x < cols; x++) {
            size_t i = (size_t)y * cols + x;
            float sx = (float)x + alpha * gx[i], sy = (float)y + alpha * gy[i];
            int x0 = floor_to_int(sx), y0 = floor_to_int(sy);
            float fx = sx - (float)x0, fy = sy - (float)y0;
            if (x0 >= 0 && x0 + 1 < cols && y0 >= 0 && y0 + 1 < rows) { /* inside: no bounds checks */
                const uint8_t *p = src + (size_t)y0 * cols + x0;
                float top = p[0] * (1.0f - fx) + p[1] * fx;
                float bottom = p[cols] * (1.0f - fx) + p[cols + 1] * fx;
                dst[i] = top * (1.0f - fy) + bottom * fy;
                continue;
            }
            float top = pixel_or_zero(src, rows, cols, y0, x0) * (1.0f - fx) + pixel_or_zero(src, rows, cols, y0, x0 + 1) * fx;
            float bottom = pixel_or_zero(src, rows, cols, y0 + 1, x0) * (1.0f - fx) +
                           pixel_or_zero(src, rows, cols, y0 + 1, x0 + 1) * fx;
            dst[i] = top * (1.0f - fy) + bottom * fy;
        }
    }
}
