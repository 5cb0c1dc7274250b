/* Pillow's affine resampling, reproduced operation for operation (see affine.h).
 * Floating-point contraction must stay off (it is under -std=c11): an FMA would
 * change the last bit of a coordinate and, at a rounding boundary, the pixel. */
#include "data/affine.h"
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

static const double deg_to_rad = M_PI / 180.0; /* Python's math.radians multiplies by this */

/* Pillow's COORD and FLOOR macros (Geometry.c). */
static inline int coord(double v) {
    if (v < 0.0) return -1;
    return v < (double)INT_MAX ? (int)v : INT_MAX;
}
static inline int floor_int(double v) { return v < 0.0 ? (int)floor(v) : (int)v; }
/* 16.16 fixed point, Pillow's FIX(). */
static inline int fix16(double v) { return floor_int(v * 65536.0 + 0.5); }

/* Output: uint8 or float. The engines are always inlined into one function
 * per output type, so the type test disappears from the pixel loops. */
#define ENGINE static inline __attribute__((always_inline))
typedef struct { uint8_t *u8; float *f32; } sink;
ENGINE void put(sink out, int as_float, int i, int v) {
    if (as_float) out.f32[i] = (float)v; else out.u8[i] = (uint8_t)v;
}
ENGINE void clear(sink out, int as_float, int n) {
    if (as_float) for (int i = 0; i < n; i++) out.f32[i] = 0.0f;
    else memset(out.u8, 0, (size_t)n);
}

/* ImagingScaleAffine: nearest neighbour when the matrix has no rotation/shear. */
ENGINE void scale_affine(const uint8_t *src, int rows, int cols, const double a[6], sink out, int as_float) {
    int xintab_stack[1024];
    int *xintab = cols <= 1024 ? xintab_stack : calloc((size_t)cols, sizeof(int));
    if (!xintab) { clear(out, as_float, rows * cols); return; }
    memset(xintab, 0, (size_t)cols * sizeof(int));
    double xo = a[2] + a[0] * 0.5;
    double yo = a[5] + a[4] * 0.5;
    int xmin = cols, xmax = 0;
    for (int x = 0; x < cols; x++) {
        int xin = coord(xo);
        if (xin >= 0 && xin < cols) {
            xmax = x + 1;
            if (x < xmin) xmin = x;
            xintab[x] = xin;
        }
        xo += a[0];
    }
    clear(out, as_float, rows * cols);
    for (int y = 0; y < rows; y++) {
        int yi = coord(yo);
        if (yi >= 0 && yi < rows) {
            const uint8_t *in = src + (size_t)yi * cols;
            for (int x = xmin; x < xmax; x++) put(out, as_float, y * cols + x, in[xintab[x]]);
        }
        yo += a[4];
    }
    if (xintab != xintab_stack) free(xintab);
}

static inline int check_fixed(const double a[6], int x, int y) {
    return fabs(x * a[0] + y * a[1] + a[2]) < 32768.0 && fabs(x * a[3] + y * a[4] + a[5]) < 32768.0;
}

/* affine_fixed: nearest neighbour in 16.16 fixed point, stepping along rows. */
ENGINE void affine_fixed(const uint8_t *src, int rows, int cols, const double a[6], sink out, int as_float) {
    int a0 = fix16(a[0]), a1 = fix16(a[1]), a3 = fix16(a[3]), a4 = fix16(a[4]);
    int a2 = fix16(a[2] + a[0] * 0.5 + a[1] * 0.5);
    int a5 = fix16(a[5] + a[3] * 0.5 + a[4] * 0.5);
    clear(out, as_float, rows * cols);
    for (int y = 0; y < rows; y++) {
        int xx = a2, yy = a5;
        for (int x = 0; x < cols; x++) {
            int xin = xx >> 16;
            if (xin >= 0 && xin < cols) {
                int yin = yy >> 16;
                if (yin >= 0 && yin < rows) put(out, as_float, y * cols + x, src[(size_t)yin * cols + xin]);
            }
            xx += a0;
            yy += a3;
        }
        a2 += a1;
        a5 += a4;
    }
}

/* The floating-point nearest path Pillow takes when fixed point would overflow. */
ENGINE void affine_float(const uint8_t *src, int rows, int cols, const double a[6], sink out, int as_float) {
    double xo = a[2] + a[1] * 0.5 + a[0] * 0.5;
    double yo = a[5] + a[4] * 0.5 + a[3] * 0.5;
    clear(out, as_float, rows * cols);
    for (int y = 0; y < rows; y++) {
        double xx = xo, yy = yo;
        for (int x = 0; x < cols; x++) {
            int xin = coord(xx);
            if (xin >= 0 && xin < cols) {
                int yin = coord(yy);
                if (yin >= 0 && yin < rows) put(out, as_float, y * cols + x, src[(size_t)yin * cols + xin]);
            }
            xx += a[0];
            yy += a[3];
        }
        xo += a[1];
        yo += a[4];
    }
}

/* ImagingGenericTransform with affine_transform and bilinear_filter8: edge
 * pixels are clamped inside the image, points outside it get the fill (0),
 * and the result is truncated to an integer. */
ENGINE void affine_bilinear(const uint8_t *src, int rows, int cols, const double a[6], sink out, int as_float) {
    for (int y = 0; y < rows; y++) {
        double yc = y + 0.5;
        for (int x = 0; x < cols; x++) {
            double xc = x + 0.5;
            double xin = a[0] * xc + a[1] * yc + a[2];
            double yin = a[3] * xc + a[4] * yc + a[5];
            if (xin < 0.0 || xin >= cols || yin < 0.0 || yin >= rows) { put(out, as_float, y * cols + x, 0); continue; }
            xin -= 0.5;
            yin -= 0.5;
            int ix = floor_int(xin), iy = floor_int(yin);
            double dx = xin - ix, dy = yin - iy;
            int x0 = ix < 0 ? 0 : ix < cols ? ix : cols - 1;
            int x1 = ix + 1 < 0 ? 0 : ix + 1 < cols ? ix + 1 : cols - 1;
            const uint8_t *in = src + (size_t)(iy < 0 ? 0 : iy < rows ? iy : rows - 1) * cols;
            int p00 = in[x0], p01 = in[x1], p10 = p00, p11 = p01;
            int has_next_row = iy + 1 >= 0 && iy + 1 < rows;
            if (has_next_row) {
                in = src + (size_t)(iy + 1) * cols;
                p10 = in[x0];
                p11 = in[x1];
            }
            if ((p00 | p01 | p10 | p11) == 0) { put(out, as_float, y * cols + x, 0); continue; } /* exact: 0 */
            double v1 = p00 + (p01 - p00) * dx, v2;
            if (has_next_row) v2 = p10 + (p11 - p10) * dx;
            else v2 = v1;
            v1 = v1 + (v2 - v1) * dy;
            put(out, as_float, y * cols + x, (int)v1);
        }
    }
}

/* A whole-pixel shift: what every engine computes for the matrix [1 0 dx; 0 1 dy]
 * with integer dx, dy (the bilinear weights are exactly 0), done directly. */
ENGINE int integer_shift(const uint8_t *src, int rows, int cols, const double a[6], sink out, int as_float) {
    if (!(a[0] == 1.0 && a[1] == 0.0 && a[3] == 0.0 && a[4] == 1.0 && fabs(a[2]) < 1e6 && fabs(a[5]) < 1e6 &&
          a[2] == nearbyint(a[2]) && a[5] == nearbyint(a[5])))
        return 0;
    int dx = (int)a[2], dy = (int)a[5];
    for (int y = 0; y < rows; y++) {
        int sy = y + dy;
        for (int x = 0; x < cols; x++) {
            int sx = x + dx;
            int v = (sy >= 0 && sy < rows && sx >= 0 && sx < cols) ? src[(size_t)sy * cols + sx] : 0;
            put(out, as_float, y * cols + x, v);
        }
    }
    return 1;
}

/* ImagingTransformAffine's choice of engine. */
ENGINE void transform(const uint8_t *src, int rows, int cols, const double a[6], int bilinear, sink out, int as_float) {
    if (integer_shift(src, rows, cols, a, out, as_float)) return;
    if (bilinear) affine_bilinear(src, rows, cols, a, out, as_float);
    else if (a[1] == 0 && a[3] == 0) scale_affine(src, rows, cols, a, out, as_float);
    else if (check_fixed(a, 0, 0) && check_fixed(a, cols, rows) && check_fixed(a, 0, rows) && check_fixed(a, cols, 0))
        affine_fixed(src, rows, cols, a, out, as_float);
    else affine_float(src, rows, cols, a, out, as_float);
}
static void transform_u8(const uint8_t *src, int rows, int cols, const double a[6], int bilinear, uint8_t *dst) {
    transform(src, rows, cols, a, bilinear, (sink){dst, NULL}, 0);
}
static void transform_f32(const uint8_t *src, int rows, int cols, const double a[6], int bilinear, float *dst) {
    transform(src, rows, cols, a, bilinear, (sink){NULL, dst}, 1);
}

void cn_affine_inverse_matrix(int rows, int cols, double angle_deg, double tx, double ty, double scale,
                              double shear_x_deg, double shear_y_deg, double m[6]) {
    /* torchvision.transforms.functional._get_inverse_affine_matrix, PIL branch. */
    double cx = cols * 0.5, cy = rows * 0.5;
    double rot = angle_deg * deg_to_rad, sx = shear_x_deg * deg_to_rad, sy = shear_y_deg * deg_to_rad;
    double a = cos(rot - sy) / cos(sy);
    double b = -cos(rot - sy) * tan(sx) / cos(sy) - sin(rot);
    double c = sin(rot - sy) / cos(sy);
    double d = -sin(rot - sy) * tan(sx) / cos(sy) + cos(rot);
    m[0] = d / scale; m[1] = -b / scale; m[2] = 0.0 / scale;
    m[3] = -c / scale; m[4] = a / scale; m[5] = 0.0 / scale;
    m[2] += m[0] * (-cx - tx) + m[1] * (-cy - ty);
    m[5] += m[3] * (-cx - tx) + m[4] * (-cy - ty);
    m[2] += cx;
    m[5] += cy;
}

/* Python's round(x, 15): the decimal k/10^15 nearest to x (ties to even), as
 * the nearest double. k = round(x * 10^15) is found exactly: fma gives the
 * rounding error of the product, which only matters when the rounded product
 * lies exactly halfway between two integers. k/1e15 is then one correctly
 * rounded division, the same double Python's strtod of "<k>e-15" yields.
 * (The same as snprintf("%.15f") + strtod, about 20x faster.) */
double cn_round15(double x) {
    const double scale = 1e15;
    if (!(fabs(x) < 4.0)) { /* outside what rotation matrices hold: take the slow, obviously right way */
        char buf[400];
        snprintf(buf, sizeof buf, "%.15f", x);
        return strtod(buf, NULL);
    }
    double p = x * scale;
    double err = fma(x, scale, -p); /* x*scale = p + err exactly */
    double k = nearbyint(p);
    double frac = p - k;           /* exact; a multiple of ulp(p), so |frac| < 0.5 is decisive */
    if (frac == 0.5 && err > 0) k += 1.0;
    else if (frac == -0.5 && err < 0) k -= 1.0;
    return k / scale;
}

/* Python's float %: the result takes the divisor's sign. */
static double py_mod(double x, double y) {
    double r = fmod(x, y);
    if (r != 0.0) { if ((y < 0) != (r < 0)) r += y; }
    else r = copysign(0.0, y);
    return r;
}

void cn_rotate_inverse_matrix(int rows, int cols, double angle_deg, double m[6]) {
    /* PIL.Image.rotate (expand=False, no centre, no translate). */
    double angle = -(py_mod(angle_deg, 360.0) * deg_to_rad);
    double cx = cols / 2.0, cy = rows / 2.0;
    double c = cn_round15(cos(angle)), s = cn_round15(sin(angle));
    m[0] = c; m[1] = s; m[2] = 0.0;
    m[3] = -s; m[4] = c; m[5] = 0.0; /* round(-sin, 15) = -round(sin, 15): rounding is symmetric */
    double x = -cx - 0, y = -cy - 0;
    double t2 = m[0] * x + m[1] * y + m[2];
    double t5 = m[3] * x + m[4] * y + m[5];
    m[2] = t2 + cx;
    m[5] = t5 + cy;
}

/* Image.rotate's exact fast paths: 0 and 180 always, 90 and 270 for square images. */
ENGINE int rotate_fast_path(const uint8_t *src, int rows, int cols, double angle_deg, sink out, int as_float) {
    double a = py_mod(angle_deg, 360.0);
    int n = rows * cols;
    if (a == 0) {
        for (int i = 0; i < n; i++) put(out, as_float, i, src[i]);
    } else if (a == 180) {
        for (int i = 0; i < n; i++) put(out, as_float, i, src[n - 1 - i]);
    } else if ((a == 90 || a == 270) && rows == cols) {
        for (int y = 0; y < rows; y++)
            for (int x = 0; x < cols; x++) /* counter-clockwise 90: out(x, y) = in(W-1-y, x) */
                put(out, as_float, y * cols + x, a == 90 ? src[(size_t)x * cols + (cols - 1 - y)]
                                               : src[(size_t)(rows - 1 - x) * cols + y]);
    } else {
        return 0;
    }
    return 1;
}

void cn_affine_apply(const uint8_t *src, int rows, int cols, float angle_deg, float tx, float ty,
                     float scale, float shear_x_deg, int bilinear, float *dst) {
    double m[6];
    cn_affine_inverse_matrix(rows, cols, angle_deg, tx, ty, scale, shear_x_deg, 0.0, m);
    transform_f32(src, rows, cols, m, bilinear, dst);
}

void cn_affine_apply_u8(const uint8_t *src, int rows, int cols, float angle_deg, float tx, float ty,
                        float scale, float shear_x_deg, int bilinear, uint8_t *dst) {
    double m[6];
    cn_affine_inverse_matrix(rows, cols, angle_deg, tx, ty, scale, shear_x_deg, 0.0, m);
    transform_u8(src, rows, cols, m, bilinear, dst);
}

void cn_rotate_apply(const uint8_t *src, int rows, int cols, float angle_deg, int bilinear, float *dst) {
    if (rotate_fast_path(src, rows, cols, angle_deg, (sink){NULL, dst}, 1)) return;
    double m[6];
    cn_rotate_inverse_matrix(rows, cols, angle_deg, m);
    transform_f32(src, rows, cols, m, bilinear, dst);
}

void cn_rotate_apply_u8(const uint8_t *src, int rows, int cols, float angle_deg, int bilinear, uint8_t *dst) {
    if (rotate_fast_path(src, rows, cols, angle_deg, (sink){dst, NULL}, 0)) return;
    double m[6];
    cn_rotate_inverse_matrix(rows, cols, angle_deg, m);
    transform_u8(src, rows, cols, m, bilinear, dst);
}
