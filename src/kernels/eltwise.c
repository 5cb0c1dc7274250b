/* Element-wise and per-channel loops of ReLU, max-pooling and batch norm.
 * Written branch-free so the compiler vectorises them; CN_MULTIVERSION builds
 * them for AVX-512, AVX2 and generic x86-64. Double sums use vectors of
 * doubles with a fixed lane order, so results do not depend on threads. */
#include "kernels/kernels.h"
#include <math.h>
#include <string.h>

typedef float v8f __attribute__((vector_size(32)));
typedef double v4d __attribute__((vector_size(32)));
/* Eight double sums as two 4-lane halves (lanes 0-3 and 4-7). A 64-byte vector type would
 * be one register with AVX-512, but gcc spills it to the stack lane by lane where the
 * widest vector is 32 bytes (AVX2); each lane's additions are the same either way. */
typedef struct { v4d lo, hi; } d8;

/* (vectors go through pointers: passing them by value is ABI-dependent across the
 * multiversioned builds) */
static inline void f8_to_d8(const v8f *v, d8 *out) {
    out->lo = __builtin_convertvector(__builtin_shufflevector(*v, *v, 0, 1, 2, 3), v4d);
    out->hi = __builtin_convertvector(__builtin_shufflevector(*v, *v, 4, 5, 6, 7), v4d);
}
static inline void load8_as_double(const float *p, d8 *out) {
    v8f v;
    memcpy(&v, p, sizeof v);
    f8_to_d8(&v, out);
}
/* acc += the eight values of v, converted to double */
static inline void d8_add_f8(d8 *acc, const v8f *v) {
    d8 d;
    f8_to_d8(v, &d);
    acc->lo += d.lo;
    acc->hi += d.hi;
}
/* The lanes' total in the order (0+4 + 1+5) + (2+6 + 3+7). */
static inline double hsum8(const d8 *v) {
    return ((v->lo[0] + v->hi[0]) + (v->lo[1] + v->hi[1])) + ((v->lo[2] + v->hi[2]) + (v->lo[3] + v->hi[3]));
}

/* Per-channel loops visit one plane of each sample, planes far apart: the
 * hardware prefetcher does not follow, so the next plane is prefetched. */
static inline void prefetch_plane(const float *p, int n) {
    for (int i = 0; i < n; i += 16) __builtin_prefetch(p + i);
}

/* lowbias32 (Chris Wellons' integer hash): every input bit affects every output bit. */
static inline uint32_t hash32(uint32_t x) {
    x ^= x >> 16; x *= 0x7feb352du;
    x ^= x >> 15; x *= 0x846ca68bu;
    return x ^ (x >> 16);
}

CN_MULTIVERSION
void cn_dropout_forward_kernel(const float *x, float *y, uint8_t *keep, int n, uint64_t stream, uint32_t first,
                               uint32_t threshold, float scale, const float *affine) {
    /* the stream's 64 bits folded into one key (once per call); then one hash per activation */
    uint32_t key = hash32(hash32((uint32_t)stream) ^ (uint32_t)(stream >> 32));
    /* simple loops: gcc vectorises each, not a fused one */
    for (int i = 0; i < n; i++) keep[i] = hash32((first + (uint32_t)i) ^ key) >= threshold;
    if (affine) {
        float a = affine[0], b = affine[1];
        for (int i = 0; i < n; i++) { float v = x[i] * a + b; y[i] = v * ((float)keep[i] * scale); }
    } else
        for (int i = 0; i < n; i++) y[i] = x[i] * ((float)keep[i] * scale);   /* PyTorch: x * mask * scale */
}

CN_MULTIVERSION
void cn_dropout_backward_kernel(const float *dy, const uint8_t *keep, float *dx, int n, float scale) {
    for (int i = 0; i < n; i++) dx[i] = dy[i] * ((float)keep[i] * scale);
}

// y (n) = x > 0 ? x : 0
CN_MULTIVERSION
void cn_relu_forward_kernel(const float *x, float *y, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

// y (n) = a + b > 0 ? a + b : 0
CN_MULTIVERSION
void cn_add_relu_kernel(const float *a, const float *b, float *y, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float v = a[i] + b[i];
        y[i] = v > 0.0f ? v : 0.0f;
    }
}

// y (n) = [y +] (x * affine[0] + affine[1], or x), then relu (kernels.h)
CN_MULTIVERSION
void cn_add_term_kernel(const float *x, const float *affine, float *y, size_t n, int accumulate, int relu) {
    if (affine) {
        float a = affine[0], b = affine[1];
        if (accumulate) for (size_t i = 0; i < n; i++) y[i] = y[i] + (x[i] * a + b);
        else for (size_t i = 0; i < n; i++) y[i] = x[i] * a + b;
    } else {
        if (accumulate) for (size_t i = 0; i < n; i++) y[i] = y[i] + x[i];
        else for (size_t i = 0; i < n; i++) y[i] = x[i];
    }
    if (relu)
        for (size_t i = 0; i < n; i++) y[i] = y[i] > 0.0f ? y[i] : 0.0f;
}

// dx (n) = x > 0 ? dy : 0
CN_MULTIVERSION
void cn_relu_backward_kernel(const float *x, const float *dy, float *dx, size_t n) {
    for (size_t i = 0; i < n; i++) dx[i] = x[i] > 0.0f ? dy[i] : 0.0f;
}

// y (n) = min(max(x, 0), 6) (x > 0 ? x : 0, then v < 6 ? v : 6)
CN_MULTIVERSION
void cn_relu6_forward_kernel(const float *x, float *y, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float v = x[i] > 0.0f ? x[i] : 0.0f;
        y[i] = v < 6.0f ? v : 6.0f;
    }
}

// dx (n) = 0 < x < 6 ? dy : 0
CN_MULTIVERSION
void cn_relu6_backward_kernel(const float *x, const float *dy, float *dx, size_t n) {
    for (size_t i = 0; i < n; i++) dx[i] = x[i] > 0.0f && x[i] < 6.0f ? dy[i] : 0.0f;
}

// y (n) = x > 0 ? x : x * slope
CN_MULTIVERSION
void cn_leaky_relu_forward_kernel(const float *x, float *y, size_t n, float slope) {
    for (size_t i = 0; i < n; i++) y[i] = x[i] > 0.0f ? x[i] : x[i] * slope;
}

// dx (n) = x > 0 ? dy : dy * slope
CN_MULTIVERSION
void cn_leaky_relu_backward_kernel(const float *x, const float *dy, float *dx, size_t n, float slope) {
    for (size_t i = 0; i < n; i++) dx[i] = x[i] > 0.0f ? dy[i] : dy[i] * slope;
}

/* The first maximum wins, and the first NaN wins over everything (PyTorch):
 * a later value v replaces best when v > best, or v is NaN and best is not. */
static inline int pool_takes(float v, float best) { return (v > best) | (isnan(v) & !isnan(best)); }

typedef int32_t v8i __attribute__((vector_size(32)));

/* Lane-wise pool_takes(v, best) as a -1/0 mask, and a select by such a mask. */
#define POOL_TAKES8(v, best) (((v) > (best)) | (((v) != (v)) & ((best) == (best))))
#define SELECT8(mask, a, b) ((v8f)(((mask) & (v8i)(a)) | (~(mask) & (v8i)(b))))

/* Rows here are short (7-28 pairs in the presets): a row of n >= 8 ends with one vector
 * step at n - 8 that overlaps the last full one (same values written twice) instead of a
 * scalar tail. The steps read inputs and write outputs that do not overlap. */
static inline int needs_last_step(int done, int n) { return n >= 8 && done < n; }

/* Pair maxima of a flat row segment: h[j] = winner of (x[2j], x[2j+1]) for j < n,
 * odd[j] = 1 when the second one won. */
static inline void pool_pairs_step(const float *x, int j, float *h, int32_t *odd) {
    static const v8i even_lanes = {0, 2, 4, 6, 8, 10, 12, 14}, odd_lanes = {1, 3, 5, 7, 9, 11, 13, 15};
    v8f lo, hi;
    memcpy(&lo, x + 2 * j, sizeof lo);
    memcpy(&hi, x + 2 * j + 8, sizeof hi);
    v8f first = __builtin_shuffle(lo, hi, even_lanes), second = __builtin_shuffle(lo, hi, odd_lanes);
    v8i take = POOL_TAKES8(second, first);
    v8f win = SELECT8(take, second, first);
    v8i took = take & 1;
    memcpy(h + j, &win, sizeof win);
    memcpy(odd + j, &took, sizeof took);
}
static inline void pool_pairs(const float *x, int n, float *h, int32_t *odd) {
    int j = 0;
    for (; j + 8 <= n; j += 8) pool_pairs_step(x, j, h, odd);
    if (needs_last_step(j, n)) { pool_pairs_step(x, n - 8, h, odd); return; }
    for (; j < n; j++) {
        int t = pool_takes(x[2 * j + 1], x[2 * j]);
        h[j] = t ? x[2 * j + 1] : x[2 * j];
        odd[j] = t;
    }
}

/* 2x2 max of two rows r0, r1 (w floats each) -> y (w/2), argmax (w/2) indices into the
 * (h, w) input plane for output row oy. Each window (a b / c d) is reduced as
 * ((a,b),(c,d)), which picks the same winner as scanning a, b, c, d in order. */
static inline void pool_rows_step(const float *top, const float *bottom, const int32_t *top_odd,
                                  const int32_t *bottom_odd, int i, int w, int oy, float *y, int32_t *argmax) {
    const v8i lane = {0, 1, 2, 3, 4, 5, 6, 7};
    v8f t, b;
    v8i to, bo;
    memcpy(&t, top + i, sizeof t);
    memcpy(&b, bottom + i, sizeof b);
    v8i take = POOL_TAKES8(b, t);
    v8f win = SELECT8(take, b, t);
    memcpy(y + i, &win, sizeof win);
    if (!argmax) return;
    memcpy(&to, top_odd + i, sizeof to);
    memcpy(&bo, bottom_odd + i, sizeof bo);
    v8i col = 2 * (i + lane);
    v8i idx = (take & ((2 * oy + 1) * w + col + bo)) | (~take & (2 * oy * w + col + to));
    memcpy(argmax + i, &idx, sizeof idx);
}
static inline void pool_row_pair(const float *r0, const float *r1, int w, int oy, float *y, int32_t *argmax) {
    float top[CN_EPILOGUE_MAX_WIDTH / 2], bottom[CN_EPILOGUE_MAX_WIDTH / 2];
    int32_t top_odd[CN_EPILOGUE_MAX_WIDTH / 2], bottom_odd[CN_EPILOGUE_MAX_WIDTH / 2];
    int n = w / 2, i = 0;
    pool_pairs(r0, n, top, top_odd);
    pool_pairs(r1, n, bottom, bottom_odd);
    for (; i + 8 <= n; i += 8) pool_rows_step(top, bottom, top_odd, bottom_odd, i, w, oy, y, argmax);
    if (needs_last_step(i, n)) { pool_rows_step(top, bottom, top_odd, bottom_odd, n - 8, w, oy, y, argmax); return; }
    for (; i < n; i++) {
        int t = pool_takes(bottom[i], top[i]);
        y[i] = t ? bottom[i] : top[i];
        if (argmax) argmax[i] = t ? (2 * oy + 1) * w + 2 * i + bottom_odd[i] : 2 * oy * w + 2 * i + top_odd[i];
    }
}

/* relu((x * scale + shift) * mid_scale + mid_shift) * post_scale + post_shift of 8 values,
 * each step when enabled (multiply, then add; relu as v > 0 ? v : +0, NaN to 0). */
static inline void transform8(const cn_epilogue *e, const float *x, v8f *out) {
    const v8f zero = {0};
    v8f v;
    memcpy(&v, x, sizeof v);
    if (e->affine) v = v * e->scale + e->shift;
    if (e->mid_affine) v = v * e->mid_scale + e->mid_shift;
    if (e->relu) v = (v8f)((v8i)v & (v > zero));
    if (e->post_affine) v = v * e->post_scale + e->post_shift;
    *out = v;
}
static inline float transform1(const cn_epilogue *e, float v) {
    if (e->affine) v = v * e->scale + e->shift;
    if (e->mid_affine) v = v * e->mid_scale + e->mid_shift;
    if (e->relu) v = v > 0.0f ? v : 0.0f;
    if (e->post_affine) v = v * e->post_scale + e->post_shift;
    return v;
}

/* t (n) = transform of x (n); t may be x. The overlapping last vector is formed before
 * any store, so an in-place row is transformed once. */
static inline void transform_row(const cn_epilogue *e, const float *x, int n, float *t) {
    if (!e->affine && !e->mid_affine && !e->relu && !e->post_affine) {
        if (t != x) memcpy(t, x, (size_t)n * sizeof *t);
        return;
    }
    if (n < 8) {
        for (int i = 0; i < n; i++) t[i] = transform1(e, x[i]);
        return;
    }
    v8f last, v;
    transform8(e, x + n - 8, &last);
    for (int i = 0; i + 8 <= n; i += 8) {
        transform8(e, x + i, &v);
        memcpy(t + i, &v, sizeof v);
    }
    memcpy(t + n - 8, &last, sizeof last);
}

/* Portable epilogue (the AVX-512 kernel set has its own, see conv_avx512.c). */
CN_MULTIVERSION
void cn_epilogue_plane_portable(const cn_epilogue *e, const float *x, float *y, int32_t *argmax) {
    if (!e->pool) {
        if (e->x_stride == e->w)    /* a compact source is one long row */
            transform_row(e, x, e->h * e->w, y);
        else
            for (int r = 0; r < e->h; r++) transform_row(e, x + (size_t)r * e->x_stride, e->w, y + (size_t)r * e->w);
        return;
    }
    float row0[CN_EPILOGUE_MAX_WIDTH], row1[CN_EPILOGUE_MAX_WIDTH];
    int ow = e->w / 2;
    for (int oy = 0; oy < e->h / 2; oy++) {
        transform_row(e, x + (size_t)2 * oy * e->x_stride, e->w, row0);
        transform_row(e, x + (size_t)(2 * oy + 1) * e->x_stride, e->w, row1);
        pool_row_pair(row0, row1, e->w, oy, y + (size_t)oy * ow, argmax ? argmax + (size_t)oy * ow : NULL);
    }
}

void cn_maxpool2x2_forward(const float *x, int planes, int H, int W, float *y, int32_t *argmax) {
    cn_epilogue e = { .h = H, .w = W, .x_stride = W, .pool = 1 };
    size_t outs = (size_t)(H / 2) * (W / 2);
    const cn_kernel_set *ks = cn_kernels();
    for (int pl = 0; pl < planes; pl++)
        ks->epilogue(&e, x + (size_t)pl * H * W, y + pl * outs, argmax ? argmax + pl * outs : NULL);
}

// dy (n_in) = 0, then dy[argmax[o]] = 0 + (y[o] > 0 ? g[o] : 0) for o < n_out (pool, then relu;
// the windows are disjoint, so this is the sum over the windows), or, without pool (argmax
// NULL, n_out = n_in): dy = y > 0 ? g : 0
CN_MULTIVERSION
void cn_chain_grad(const float *g, const float *y, const int32_t *argmax, int n_out, int n_in, float *dy) {
    if (!argmax) {
        for (int i = 0; i < n_in; i++) dy[i] = y[i] > 0.0f ? g[i] : 0.0f;
        return;
    }
    memset(dy, 0, (size_t)n_in * sizeof *dy);
    for (int o0 = 0; o0 < n_out; o0 += 64) {
        /* the values first (vectorised, no branch on the relu), then the scatter */
        float v[64];
        int n = n_out - o0 < 64 ? n_out - o0 : 64;
        for (int i = 0; i < n; i++) v[i] = 0.0f + (y[o0 + i] > 0.0f ? g[o0 + i] : 0.0f);
        for (int i = 0; i < n; i++) dy[argmax[o0 + i]] = v[i];
    }
}

/* The gradients of 8 neighbouring windows of one pooled row (g, y, argmax: 8 each) -> their
 * input pixels, 16 of row 2oy (r0) and 16 of row 2oy+1 (r1): e0/e1 the even and odd columns of
 * r0, f0/f1 of r1. base = the plane index of the first window's top-left pixel, w the row length. */
static inline void pool2x2_grad8(const float *g, const float *y, const int32_t *argmax, int32_t base, int w,
                                 float *r0, float *r1) {
    static const v8i two_lanes = {0, 2, 4, 6, 8, 10, 12, 14};
    const v8f zero = {0};
    v8f v;
    v8i am;
    memcpy(&v, g, sizeof v);
    memcpy(&am, argmax, sizeof am);
    if (y) {
        v8f out;
        memcpy(&out, y, sizeof out);
        v = SELECT8(out > zero, v, zero);
    }
    v = v + 0.0f;                           /* 0 + g: the sum into a zeroed input, as the scatter */
    v8i d = am - (two_lanes + base);        /* 0, 1, w or w + 1: where the winner lies in its window */
    v8f e0 = SELECT8(d == 0, v, zero), e1 = SELECT8(d == 1, v, zero);
    v8f f0 = SELECT8(d == w, v, zero), f1 = SELECT8(d == w + 1, v, zero);
    v8f lo = __builtin_shufflevector(e0, e1, 0, 8, 1, 9, 2, 10, 3, 11);
    v8f hi = __builtin_shufflevector(e0, e1, 4, 12, 5, 13, 6, 14, 7, 15);
    memcpy(r0, &lo, sizeof lo);
    memcpy(r0 + 8, &hi, sizeof hi);
    lo = __builtin_shufflevector(f0, f1, 0, 8, 1, 9, 2, 10, 3, 11);
    hi = __builtin_shufflevector(f0, f1, 4, 12, 5, 13, 6, 14, 7, 15);
    memcpy(r1, &lo, sizeof lo);
    memcpy(r1 + 8, &hi, sizeof hi);
}

/* dx (h, w) = 0, then dx[argmax[o]] = 0 + (y && !(y[o] > 0) ? 0 : g[o]) over the (h/2, w/2)
 * windows: cn_chain_grad's (or, y NULL, the max-pool backward's) sum, each input pixel
 * written once, in order. */
CN_MULTIVERSION
void cn_pool2x2_grad(const float *g, const float *y, const int32_t *argmax, int h, int w, float *dx) {
    int oh = h / 2, ow = w / 2;
    if (ow < 8) {
        /* rows shorter than a vector step: zero and scatter (four selects per window, and
         * padded copies, cost more than one store) */
        if (y) { cn_chain_grad(g, y, argmax, oh * ow, h * w, dx); return; }
        memset(dx, 0, (size_t)h * w * sizeof *dx);
        for (int o = 0; o < oh * ow; o++) dx[argmax[o]] = 0.0f + g[o];
        return;
    }
    for (int oy = 0; oy < oh; oy++) {
        const float *go = g + (size_t)oy * ow, *yo = y ? y + (size_t)oy * ow : NULL;
        const int32_t *ao = argmax + (size_t)oy * ow;
        float *r0 = dx + (size_t)2 * oy * w, *r1 = r0 + w;
        int32_t base = 2 * oy * w;
        int ox = 0;
        for (; ox + 8 <= ow; ox += 8)
            pool2x2_grad8(go + ox, yo ? yo + ox : NULL, ao + ox, base + 2 * ox, w, r0 + 2 * ox, r1 + 2 * ox);
        if (needs_last_step(ox, ow)) {      /* windows are independent: rewriting some is harmless */
            pool2x2_grad8(go + ow - 8, yo ? yo + ow - 8 : NULL, ao + ow - 8, base + 2 * (ow - 8), w, r0 + 2 * (ow - 8),
                          r1 + 2 * (ow - 8));
        }
        if (w % 2) r0[w - 1] = r1[w - 1] = 0.0f;   /* the odd last column: in no window */
    }
    if (h % 2) memset(dx + (size_t)(h - 1) * w, 0, (size_t)w * sizeof *dx);
}

/* ---- batch norm: per-channel loops over (planes, plane) slices ------------
 * x points at channel c of sample 0; sample b's plane is at x + b*stride. */

// sum of x over the slices, in double
CN_MULTIVERSION
double cn_slices_sum(const float *x, int planes, size_t stride, int plane) {
    d8 acc0 = {0}, acc1 = {0};
    double tail = 0.0;
    for (int b = 0; b < planes; b++) {
        const float *p = x + (size_t)b * stride;
        if (b + 1 < planes) prefetch_plane(p + stride, plane);
        int i = 0;
        for (; i + 16 <= plane; i += 16) {
            d8 a, b;
            load8_as_double(p + i, &a);
            load8_as_double(p + i + 8, &b);
            acc0.lo += a.lo; acc0.hi += a.hi;
            acc1.lo += b.lo; acc1.hi += b.hi;
        }
        for (; i + 8 <= plane; i += 8) {
            d8 a;
            load8_as_double(p + i, &a);
            acc0.lo += a.lo; acc0.hi += a.hi;
        }
        for (; i < plane; i++) tail += p[i];
    }
    acc0.lo += acc1.lo; acc0.hi += acc1.hi;
    return hsum8(&acc0) + tail;
}

// sum of (x - mean)^2 over the slices, in double
CN_MULTIVERSION
double cn_slices_sq_dev(const float *x, int planes, size_t stride, int plane, double mean) {
    d8 acc0 = {0}, acc1 = {0};
    double tail = 0.0;
    for (int b = 0; b < planes; b++) {
        const float *p = x + (size_t)b * stride;
        if (b + 1 < planes) prefetch_plane(p + stride, plane);
        int i = 0;
        for (; i + 16 <= plane; i += 16) {
            d8 d0, d1;
            load8_as_double(p + i, &d0);
            load8_as_double(p + i + 8, &d1);
            d0.lo -= mean; d0.hi -= mean; d1.lo -= mean; d1.hi -= mean;
            acc0.lo += d0.lo * d0.lo; acc0.hi += d0.hi * d0.hi;
            acc1.lo += d1.lo * d1.lo; acc1.hi += d1.hi * d1.hi;
        }
        for (; i + 8 <= plane; i += 8) {
            d8 d;
            load8_as_double(p + i, &d);
            d.lo -= mean; d.hi -= mean;
            acc0.lo += d.lo * d.lo; acc0.hi += d.hi * d.hi;
        }
        for (; i < plane; i++) { double d = p[i] - mean; tail += d * d; }
    }
    acc0.lo += acc1.lo; acc0.hi += acc1.hi;
    return hsum8(&acc0) + tail;
}

// y = x * scale + shift over the slices
CN_MULTIVERSION
void cn_slices_affine(const float *x, float *y, int planes, size_t stride, int plane, float scale, float shift) {
    for (int b = 0; b < planes; b++) {
        const float *p = x + (size_t)b * stride;
        float *q = y + (size_t)b * stride;
        if (b + 1 < planes) prefetch_plane(p + stride, plane);
        for (int i = 0; i < plane; i++) q[i] = p[i] * scale + shift;
    }
}

// *sum_dy = sum dy, *sum_dy_xhat = sum dy * (x - mean) * invstd over the slices, in double
CN_MULTIVERSION
void cn_slices_bn_grad_sums(const float *x, const float *dy, int planes, size_t stride, int plane, float mean,
                            float invstd, double *sum_dy, double *sum_dy_xhat) {
    d8 s0 = {0}, s1 = {0};
    double t0 = 0.0, t1 = 0.0;
    for (int b = 0; b < planes; b++) {
        const float *p = x + (size_t)b * stride, *g = dy + (size_t)b * stride;
        if (b + 1 < planes) { prefetch_plane(p + stride, plane); prefetch_plane(g + stride, plane); }
        int i = 0;
        for (; i + 8 <= plane; i += 8) {
            v8f xv, gv;
            memcpy(&xv, p + i, sizeof xv);
            memcpy(&gv, g + i, sizeof gv);
            v8f xhat = (xv - mean) * invstd;
            v8f gx = gv * xhat;
            d8_add_f8(&s0, &gv);
            d8_add_f8(&s1, &gx);
        }
        for (; i < plane; i++) { t0 += g[i]; t1 += g[i] * ((p[i] - mean) * invstd); }
    }
    *sum_dy = hsum8(&s0) + t0;
    *sum_dy_xhat = hsum8(&s1) + t1;
}

// dx = k * (dy - mean_dy - (x - mean) * invstd * mean_dy_xhat) over the slices;
// with relu_mask, dx = 0 where x <= 0 (the backward of a relu before the batch norm)
CN_MULTIVERSION
void cn_slices_bn_grad_input(const float *x, const float *dy, float *dx, int planes, size_t stride, int plane,
                             float mean, float invstd, float k, float mean_dy, float mean_dy_xhat, int relu_mask) {
    for (int b = 0; b < planes; b++) {
        const float *p = x + (size_t)b * stride, *g = dy + (size_t)b * stride;
        float *d = dx + (size_t)b * stride;
        if (b + 1 < planes) { prefetch_plane(p + stride, plane); prefetch_plane(g + stride, plane); }
        if (relu_mask) {
            /* written out in vectors: gcc leaves the conditional store scalar (a branch per value) */
            const v8f zero = {0};
            int i = 0;
            for (; i + 8 <= plane; i += 8) {
                v8f xv, gv;
                memcpy(&xv, p + i, sizeof xv);
                memcpy(&gv, g + i, sizeof gv);
                v8f xhat = (xv - mean) * invstd, v = k * (gv - mean_dy - xhat * mean_dy_xhat);
                v = (v8f)((v8i)v & (xv > zero));    /* x > 0 ? v : +0 */
                memcpy(d + i, &v, sizeof v);
            }
            for (; i < plane; i++) {
                float xhat = (p[i] - mean) * invstd, v = k * (g[i] - mean_dy - xhat * mean_dy_xhat);
                d[i] = p[i] > 0.0f ? v : 0.0f;
            }
        } else
            for (int i = 0; i < plane; i++) {
                float xhat = (p[i] - mean) * invstd;
                d[i] = k * (g[i] - mean_dy - xhat * mean_dy_xhat);
            }
    }
}

/* ---- batch norm (and relu) backward from the chain's output gradient -------
 * For a conv that forms its output gradient itself from what the batch norm after it hands
 * over (fusion.h: cn_bn_grad_in_dw_conv): dy = y > 0 ? g : 0 (a relu after the batch norm,
 * y its output) or dy = g (y NULL), never written. The same float operations as
 * cn_chain_grad followed by cn_slices_bn_grad_sums or cn_slices_bn_grad_input on one plane. */

typedef int v8i __attribute__((vector_size(32)));

CN_MULTIVERSION
void cn_bn_relu_grad_sums(const float *x, const float *g, const float *y, int plane, float mean, float invstd,
                          double *sum_dy, double *sum_dy_xhat) {
    if (!y) { cn_slices_bn_grad_sums(x, g, 1, 0, plane, mean, invstd, sum_dy, sum_dy_xhat); return; }
    d8 s0 = {0}, s1 = {0};
    double t0 = 0.0, t1 = 0.0;
    const v8f zero = {0};
    int i = 0;
    for (; i + 8 <= plane; i += 8) {
        v8f xv, gv, yv;
        memcpy(&xv, x + i, sizeof xv);
        memcpy(&gv, g + i, sizeof gv);
        memcpy(&yv, y + i, sizeof yv);
        gv = (v8f)((v8i)gv & (yv > zero));     /* y > 0 ? g : +0 */
        v8f xhat = (xv - mean) * invstd;
        v8f gx = gv * xhat;
        d8_add_f8(&s0, &gv);
        d8_add_f8(&s1, &gx);
    }
    for (; i < plane; i++) {
        float dy = y[i] > 0.0f ? g[i] : 0.0f;
        t0 += dy;
        t1 += dy * ((x[i] - mean) * invstd);
    }
    *sum_dy = hsum8(&s0) + t0;
    *sum_dy_xhat = hsum8(&s1) + t1;
}

CN_MULTIVERSION
void cn_bn_relu_grad_input(const float *x, const float *g, const float *y, float *dx, int plane, float mean,
                           float invstd, float k, float mean_dy, float mean_dy_xhat) {
    if (!y) { cn_slices_bn_grad_input(x, g, dx, 1, 0, plane, mean, invstd, k, mean_dy, mean_dy_xhat, 0); return; }
    for (int i = 0; i < plane; i++) {
        float dy = y[i] > 0.0f ? g[i] : 0.0f, xhat = (x[i] - mean) * invstd;
        dx[i] = k * (dy - mean_dy - xhat * mean_dy_xhat);
    }
}

/* ---- batch norm followed by relu (or dropout) and a 2x2 max-pool: sparse backward ----
 * The gradient reaching the BN output is non-zero only at the pool winners:
 * dy[argmax[o]] = 0 + (y[o] > 0 ? g[o] : 0) (y, g: pooled output and its gradient), or
 * with a dropout, (0 + g[o]) * factor[o]. */

/* dy at 8 winners, and at one. */
static inline void winner_grad8(const float *g, const float *y, const float *factor, v8f *dy) {
    v8f gv;
    memcpy(&gv, g, sizeof gv);
    if (factor) {
        v8f fv;
        memcpy(&fv, factor, sizeof fv);
        *dy = (0.0f + gv) * fv;
        return;
    }
    v8f yv;
    memcpy(&yv, y, sizeof yv);
    *dy = 0.0f + SELECT8(yv > 0.0f, gv, (v8f){0});
}
static inline float winner_grad1(const float *g, const float *y, const float *factor) {
    return factor ? (0.0f + *g) * *factor : 0.0f + (*y > 0.0f ? *g : 0.0f);
}

// sum dy and sum dy * (x_win - mean) * invstd over the winners of `planes` pooled planes (x_win: input value of each winner)
CN_MULTIVERSION
void cn_pooled_bn_grad_sums(const float *x_win, const float *g, const float *y, const float *factor, int planes,
                            size_t out_stride, int n_out, float mean, float invstd, double *sum_dy, double *sum_dy_xhat) {
    d8 a0 = {0}, a1 = {0};
    double s0 = 0.0, s1 = 0.0;
    for (int b = 0; b < planes; b++) {
        size_t p = (size_t)b * out_stride;
        const float *xp = x_win + p, *gp = g + p, *yp = y ? y + p : NULL, *fp = factor ? factor + p : NULL;
        int o = 0;
        for (; o + 8 <= n_out; o += 8) {
            v8f xv, dy;
            memcpy(&xv, xp + o, sizeof xv);
            winner_grad8(gp + o, yp ? yp + o : NULL, fp ? fp + o : NULL, &dy);
            v8f dx = dy * ((xv - mean) * invstd);
            d8_add_f8(&a0, &dy);
            d8_add_f8(&a1, &dx);
        }
        for (; o < n_out; o++) {
            float dy = winner_grad1(gp + o, yp ? yp + o : NULL, fp ? fp + o : NULL);
            s0 += dy;
            s1 += dy * ((xp[o] - mean) * invstd);
        }
    }
    *sum_dy = hsum8(&a0) + s0;
    *sum_dy_xhat = hsum8(&a1) + s1;
}

// dx = k * (dy - mean_dy - (x - mean) * invstd * mean_dy_xhat) with dy as above, over `planes` planes of n_in
CN_MULTIVERSION
void cn_pooled_bn_grad_input(const float *x, const float *x_win, const float *g, const float *y, const float *factor,
                             const int32_t *argmax, int planes, size_t x_stride, size_t out_stride, int n_in, int n_out,
                             float mean, float invstd, float k, float mean_dy, float mean_dy_xhat, float *dx) {
    float win[CN_EPILOGUE_MAX_WIDTH];   /* dx at the winners of up to this many outputs at a time */
    for (int b = 0; b < planes; b++) {
        const float *xp = x + (size_t)b * x_stride;
        float *d = dx + (size_t)b * x_stride;
        if (b + 1 < planes) prefetch_plane(xp + x_stride, n_in);
        for (int i = 0; i < n_in; i++) {
            float xhat = (xp[i] - mean) * invstd;
            d[i] = k * (0.0f - mean_dy - xhat * mean_dy_xhat);
        }
        for (int o0 = 0; o0 < n_out; o0 += CN_EPILOGUE_MAX_WIDTH) {
            size_t base = (size_t)b * out_stride + o0;
            const float *gp = g + base, *yp = y ? y + base : NULL, *fp = factor ? factor + base : NULL, *xw = x_win + base;
            const int32_t *ap = argmax + base;
            int n = n_out - o0 < CN_EPILOGUE_MAX_WIDTH ? n_out - o0 : CN_EPILOGUE_MAX_WIDTH, o = 0;
            for (; o + 8 <= n; o += 8) {
                v8f xv, dy;
                memcpy(&xv, xw + o, sizeof xv);
                winner_grad8(gp + o, yp ? yp + o : NULL, fp ? fp + o : NULL, &dy);
                v8f xhat = (xv - mean) * invstd;
                v8f v = k * (dy - mean_dy - xhat * mean_dy_xhat);
                memcpy(win + o, &v, sizeof v);
            }
            for (; o < n; o++) {
                float dy = winner_grad1(gp + o, yp ? yp + o : NULL, fp ? fp + o : NULL), xhat = (xw[o] - mean) * invstd;
                win[o] = k * (dy - mean_dy - xhat * mean_dy_xhat);
            }
            for (o = 0; o < n; o++) d[ap[o]] = win[o];
        }
    }
}

// out (n) = (float)keep[i] * scale: a dropout's factors (cn_dropout_backward_kernel's)
CN_MULTIVERSION
void cn_keep_factors(const uint8_t *keep, int n, float scale, float *out) {
    for (int i = 0; i < n; i++) out[i] = (float)keep[i] * scale;
}

// out (n) = x[index[i]]
CN_MULTIVERSION
void cn_gather(const float *x, const int32_t *index, int n, float *out) {
    for (int i = 0; i < n; i++) out[i] = x[index[i]];
}

/* Sixteen planes at a time: blocks of their pixels transposed so that one vector add
 * advances all sixteen sums by one pixel (each plane still summed in pixel order). */
CN_MULTIVERSION
void cn_plane_means(const float *x, int planes, int plane, float *out) {
    typedef float v16f __attribute__((vector_size(64)));
    enum { LANES = 16, CHUNK = 64 };
    float block[CHUNK * LANES];     /* (pixels of the chunk, 16 planes) */
    int pl = 0;
    for (; pl + LANES <= planes; pl += LANES) {
        v16f acc = { 0 };
        for (int p0 = 0; p0 < plane; p0 += CHUNK) {
            int n = plane - p0 < CHUNK ? plane - p0 : CHUNK;
            cn_transpose(x + (size_t)pl * plane + p0, LANES, n, plane, block, LANES);
            for (int p = 0; p < n; p++) {
                v16f v;
                memcpy(&v, block + p * LANES, sizeof v);
                acc += v;
            }
        }
        for (int i = 0; i < LANES; i++) out[pl + i] = acc[i] / (float)plane;
    }
    for (; pl < planes; pl++) {
        const float *xp = x + (size_t)pl * plane;
        float sum = 0.0f;
        for (int p = 0; p < plane; p++) sum += xp[p];
        out[pl] = sum / (float)plane;
    }
}
