/* int8 convolution for AVX-512 VNNI (int8.h): vpdpbusd sums 4 products of biased input
 * bytes (broadcast, one pixel's 4 channels) and int8 weights (16 output channels) into
 * each int32 lane. A tile is up to MR consecutive output pixels of one row times one or
 * two blocks of 16 output channels: MR x 2 zmm accumulators, two weight loads and MR
 * broadcasts per group of 4 inputs. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#pragma GCC target("avx512f,avx512vl,avx512bw,avx512dq,avx512vnni,avx2,fma")
#include <immintrin.h>
#include <string.h>
#include "kernels/int8.h"

#define MR 8

static inline __mmask16 lanes(int n) { return n >= 16 ? 0xFFFF : (__mmask16)((1u << n) - 1); }

static inline __m512i q8v(__m512 v) {
    __mmask16 ge = _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_GE_OQ);
    v = _mm512_add_ps(v, _mm512_mask_blend_ps(ge, _mm512_set1_ps(-0.5f), _mm512_set1_ps(0.5f)));
    v = _mm512_min_ps(_mm512_max_ps(v, _mm512_set1_ps(-127.0f)), _mm512_set1_ps(127.0f));
    return _mm512_cvttps_epi32(v);
}

static inline __m512 relu_v(__m512 v) {
    return _mm512_mask_mov_ps(v, _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_LT_OQ), _mm512_setzero_ps());
}

/* The epilogue (int8.h) of one accumulator: output pixel (y, x), channels oc0 .. oc0+n-1. */
static inline void store(const cn_i8_conv_geom *g, const cn_i8_epilogue *ep, __m512i acc, int y, int x, int oc0,
                         int n, uint8_t *qout, float *fout) {
    __mmask16 m = lanes(n);
    __m512i comp = _mm512_maskz_loadu_epi32(m, ep->comp + oc0);
    __m512 v = _mm512_cvtepi32_ps(_mm512_sub_epi32(acc, comp));
    v = _mm512_add_ps(_mm512_mul_ps(v, _mm512_maskz_loadu_ps(m, ep->mult + oc0)), _mm512_maskz_loadu_ps(m, ep->bias + oc0));
    if (ep->relu) v = relu_v(v);
    if (!qout) {
        if (g->f_chan == 1) {
            _mm512_mask_storeu_ps(fout + y * g->f_row + x * g->f_pix + oc0, m, v);
        } else {
            float t[16];
            _mm512_storeu_ps(t, v);
            for (int i = 0; i < n; i++) fout[y * g->f_row + x * g->f_pix + (size_t)(oc0 + i) * g->f_chan] = t[i];
        }
        return;
    }
    __m512i q = q8v(v);
    if (ep->post_mult) {
        __m512 v2 = _mm512_add_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(q), _mm512_maskz_loadu_ps(m, ep->post_mult + oc0)),
                                  _mm512_maskz_loadu_ps(m, ep->post_shift + oc0));
        if (ep->post_relu) v2 = relu_v(v2);
        q = q8v(v2);
    }
    _mm512_mask_cvtepi32_storeu_epi8(qout + y * g->q_row + x * g->q_pix + oc0, m,
                                     _mm512_add_epi32(q, _mm512_set1_epi32(CN_I8_ZERO)));
}

/* Output pixels (y, x0 .. x0+mr-1), channel blocks b and b+1 (nb = 2) or b: w points at
 * block b's weights, bstride bytes to block b+1's. */
static inline __attribute__((always_inline)) void tile(const cn_i8_conv_geom *g, const int8_t *w, size_t bstride,
                                                       const cn_i8_epilogue *ep, const uint8_t *in, int y, int x0,
                                                       int oc0, int mr, int nb, uint8_t *qout, float *fout) {
    __m512i acc[MR][2];
    for (int j = 0; j < mr; j++) { acc[j][0] = _mm512_setzero_si512(); acc[j][1] = _mm512_setzero_si512(); }
    int groups = g->in_cp / 4, s = g->stride;
    size_t step = (size_t)s * g->in_cp;
    for (int ky = 0; ky < g->k; ky++)
        for (int kx = 0; kx < g->k; kx++) {
            const uint8_t *p = in + ((size_t)(y * s + ky) * g->in_w + (size_t)x0 * s + kx) * g->in_cp;
            const int8_t *wt = w + (size_t)(ky * g->k + kx) * groups * 64;
            for (int gi = 0; gi < groups; gi++, p += 4, wt += 64) {
                __m512i w0 = _mm512_loadu_si512(wt), w1 = w0;
                if (nb > 1) w1 = _mm512_loadu_si512(wt + bstride);
                for (int j = 0; j < mr; j++) {
                    int32_t a4;
                    memcpy(&a4, p + j * step, 4);
                    __m512i a = _mm512_set1_epi32(a4);
                    acc[j][0] = _mm512_dpbusd_epi32(acc[j][0], a, w0);
                    if (nb > 1) acc[j][1] = _mm512_dpbusd_epi32(acc[j][1], a, w1);
                }
            }
        }
    for (int b = 0; b < nb; b++) {
        int oc = oc0 + b * CN_I8_BLOCK, n = g->out_c - oc;
        for (int j = 0; j < mr; j++) store(g, ep, acc[j][b], y, x0 + j, oc, n, qout, fout);
    }
}

#define TILE_CASE(M) case M: { if (nb > 1) tile(g, w, bstride, ep, in, y, x, oc0, M, 2, qout, fout); \
                               else tile(g, w, bstride, ep, in, y, x, oc0, M, 1, qout, fout); } break;

static void conv(const cn_i8_conv_geom *g, const void *packed, const cn_i8_epilogue *ep, const uint8_t *in,
                 uint8_t *qout, float *fout) {
    int blocks = (g->out_c + CN_I8_BLOCK - 1) / CN_I8_BLOCK;
    size_t bstride = (size_t)g->k * g->k * g->in_cp * CN_I8_BLOCK;
    for (int b = 0; b < blocks; b += 2) {
        int nb = blocks - b >= 2 ? 2 : 1, oc0 = b * CN_I8_BLOCK;
        const int8_t *w = (const int8_t *)packed + (size_t)b * bstride;
        for (int y = 0; y < g->out_h; y++)
            for (int x = 0; x < g->out_w; x += MR) {
                switch (g->out_w - x >= MR ? MR : g->out_w - x) {
                TILE_CASE(1) TILE_CASE(2) TILE_CASE(3) TILE_CASE(4)
                TILE_CASE(5) TILE_CASE(6) TILE_CASE(7) TILE_CASE(8)
                }
            }
    }
}

const cn_i8_kernel_set cn_i8_kernels_avx512_vnni = {.name = "avx512-vnni", .weight_bytes = 1, .conv = conv};
#else
typedef int cn_int8_avx512_unused;
#endif
