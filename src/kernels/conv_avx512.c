/* Kernels for AVX-512 (32 vector registers): forward tiles on 16-float zmm
 * vectors; channel-vectorised tiles (weight gradient, small-map forward) on zmm, or on 8-float ymm vectors when the
 * output channels pad less to a multiple of 8 (on AVX-512 machines that run
 * 512-bit operations as two 256-bit halves, such as AMD Zen 4, a ymm FMA does
 * half the work in half the time, so the narrower vectors lose nothing). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#pragma GCC target("avx512f,avx512vl,avx512dq,avx512bw,avx2,fma")
#include <immintrin.h>
#include <stdbool.h>
#include "kernels/kernels.h"

#define WG_CAT2(a, b) a##_##b
#define WG_CAT(a, b) WG_CAT2(a, b)
#define WG(name) WG_CAT(name, WG_SUFFIX)

typedef __m512 vf;
#define VL 16
#define VLOAD(p) _mm512_loadu_ps(p)
#define VSTORE(p, v) _mm512_storeu_ps((p), (v))
#define VBCAST(x) _mm512_set1_ps(x)
#define VFMA(a, b, c) _mm512_fmadd_ps((a), (b), (c))
#define VZERO() _mm512_setzero_ps()
#define ACC_MAX 24
#define CHAN_ACC_MAX 27     /* 9 taps x 3 vectors: one input channel's 3x3 taps per tile */
#define MR_MAX 8
#include "kernels/conv_fwd_impl.h"
#define WG_SUFFIX zmm
#include "kernels/conv_chan_impl.h"

#undef VL
#undef VLOAD
#undef VSTORE
#undef VBCAST
#undef VFMA
#undef VZERO
#undef WG_SUFFIX
#define vf __m256
#define VL 8
#define VLOAD(p) _mm256_loadu_ps(p)
#define VSTORE(p, v) _mm256_storeu_ps((p), (v))
#define VBCAST(x) _mm256_set1_ps(x)
#define VFMA(a, b, c) _mm256_fmadd_ps((a), (b), (c))
#define VZERO() _mm256_setzero_ps()
#define WG_SUFFIX ymm
#include "kernels/conv_chan_impl.h"

static int wgrad_ld(int out_c) {
    int wide = cn_round_up(out_c, 16), narrow = cn_round_up(out_c, 8);
    return narrow < wide ? narrow : wide;
}

static void weight_grad(const cn_conv_geom *g, const float *x_pad, const float *dyt, int ld, float *dwt) {
    if (ld % 16 == 0) conv_weight_grad_zmm(g, x_pad, dyt, ld, dwt);
    else conv_weight_grad_ymm(g, x_pad, dyt, ld, dwt);
}

static void conv_channels(const cn_conv_geom *g, const float *wt, const float *x_pad, float *out_t, int ld) {
    if (ld % 16 == 0) conv_channels_zmm(g, wt, x_pad, out_t, ld);
    else conv_channels_ymm(g, wt, x_pad, out_t, ld);
}

/* ---- epilogue of fused chains: affine, relu, 2x2 max-pool ----------------
 * Same float operations as cn_epilogue_plane_portable (multiply, then add, no
 * fusing), with masked loads and stores for the row ends. */

/* v * post_scale + post_shift (multiply, then add). */
static inline __m512 post_map(const cn_epilogue *e, __m512 v) {
    return _mm512_add_ps(_mm512_mul_ps(v, _mm512_set1_ps(e->post_scale)), _mm512_set1_ps(e->post_shift));
}

/* relu(x * scale + shift) * post_scale + post_shift of the lanes in mask (others 0). */
static inline __m512 transform(const cn_epilogue *e, __mmask16 mask, const float *x) {
    __m512 v = _mm512_maskz_loadu_ps(mask, x);
    if (e->affine) v = _mm512_add_ps(_mm512_mul_ps(v, _mm512_set1_ps(e->scale)), _mm512_set1_ps(e->shift));
    if (e->relu) v = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_GT_OQ), v);
    if (e->post_affine) v = post_map(e, v);
    return v;
}

/* Lanes where v replaces best: v > best, or v is NaN and best is not (first max / first NaN
 * wins); just v > best when no NaN can occur (after a relu, nothing after it: relu maps NaN to 0). */
static inline __mmask16 pool_takes16(__m512 v, __m512 best, bool nan_free) {
    __mmask16 greater = _mm512_cmp_ps_mask(v, best, _CMP_GT_OQ);
    if (nan_free) return greater;
    return greater | (_mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q) & _mm512_cmp_ps_mask(best, best, _CMP_ORD_Q));
}

static inline __mmask16 lanes(int n) { return n >= 16 ? 0xFFFF : (__mmask16)((1u << (n > 0 ? n : 0)) - 1); }

/* Winner of each horizontal pair of one row (up to 16 pairs from 2*n inputs at x):
 * *value, and *index = base + 2*pair (+1 when the second won). */
static inline void row_pairs(const cn_epilogue *e, const float *x, int n, __m512i base, bool nan_free, __m512 *value,
                             __m512i *index) {
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    __m512 lo = transform(e, lanes(2 * n), x), hi = transform(e, lanes(2 * n - 16), x + 16);
    __m512 first = _mm512_permutex2var_ps(lo, even, hi), second = _mm512_permutex2var_ps(lo, odd, hi);
    __mmask16 take = pool_takes16(second, first, nan_free);
    *value = _mm512_mask_mov_ps(first, take, second);
    *index = _mm512_mask_add_epi32(base, take, base, _mm512_set1_epi32(1));
}

/* The pooled plane; nan_free a compile-time constant in each call below. */
static inline __attribute__((always_inline)) void pool_plane(const cn_epilogue *e, const float *x, float *y,
                                                             int32_t *argmax, bool nan_free) {
    const __m512i lane2 = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    int ow = e->w / 2;
    for (int oy = 0; oy < e->h / 2; oy++) {
        const float *r0 = x + (size_t)2 * oy * e->x_stride, *r1 = r0 + e->x_stride;
        for (int i = 0; i < ow; i += 16) {
            int n = ow - i < 16 ? ow - i : 16;
            __m512i col = _mm512_add_epi32(lane2, _mm512_set1_epi32(2 * i));
            __m512 top, bottom;
            __m512i top_index, bottom_index;
            row_pairs(e, r0 + 2 * i, n, _mm512_add_epi32(col, _mm512_set1_epi32(2 * oy * e->w)), nan_free, &top,
                      &top_index);
            row_pairs(e, r1 + 2 * i, n, _mm512_add_epi32(col, _mm512_set1_epi32((2 * oy + 1) * e->w)), nan_free,
                      &bottom, &bottom_index);
            __mmask16 take = pool_takes16(bottom, top, nan_free), m = lanes(n);
            _mm512_mask_storeu_ps(y + (size_t)oy * ow + i, m, _mm512_mask_mov_ps(top, take, bottom));
            if (argmax)
                _mm512_mask_storeu_epi32(argmax + (size_t)oy * ow + i, m, _mm512_mask_mov_epi32(top_index, take, bottom_index));
        }
    }
}

static void epilogue_plane(const cn_epilogue *settings, const float *x, float *y, int32_t *argmax) {
    /* a local copy: the masked stores may alias *settings, which would be re-read after each */
    const cn_epilogue local = *settings, *e = &local;
    if (!e->pool) {
        /* a compact source is one long row: full vectors instead of a masked end per row */
        int rows = e->x_stride == e->w ? 1 : e->h, width = e->x_stride == e->w ? e->h * e->w : e->w;
        for (int r = 0; r < rows; r++)
            for (int i = 0; i < width; i += 16) {
                __mmask16 m = lanes(width - i);
                _mm512_mask_storeu_ps(y + (size_t)r * e->w + i, m, transform(e, m, x + (size_t)r * e->x_stride + i));
            }
        return;
    }
    if (e->relu && !e->post_affine) {
        pool_plane(e, x, y, argmax, true);
    } else if (e->relu && e->post_affine && e->post_scale > 0.0f && !argmax) {
        /* v -> v * post_scale + post_shift is then non-decreasing (each rounding is), so the
         * max of the mapped values is the mapped max: pool the relu output, map the winners */
        cn_epilogue pre = *e;
        pre.post_affine = 0;
        pool_plane(&pre, x, y, NULL, true);
        int n = (e->h / 2) * (e->w / 2);
        for (int i = 0; i < n; i += 16) {
            __mmask16 m = lanes(n - i);
            _mm512_mask_storeu_ps(y + i, m, post_map(e, _mm512_maskz_loadu_ps(m, y + i)));
        }
    } else {
        pool_plane(e, x, y, argmax, false);
    }
}

const cn_kernel_set cn_kernels_avx512 = {
    .name = "avx512", .vec = 16, .mr_max = MR_MAX,
    .conv = conv_forward, .wgrad_ld = wgrad_ld, .weight_grad = weight_grad, .conv_channels = conv_channels,
    .epilogue = epilogue_plane,
};
#else
typedef int cn_conv_avx512_unused;
#endif
