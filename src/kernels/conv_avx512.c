/* Kernels for AVX-512 (32 vector registers): forward tiles on 16-float zmm
 * vectors; channel-vectorised tiles (weight gradient, small-map forward) on zmm, or on 8-float ymm vectors when the
 * output channels pad less to a multiple of 8 (on AVX-512 machines that run
 * 512-bit operations as two 256-bit halves, such as AMD Zen 4, a ymm FMA does
 * half the work in half the time, so the narrower vectors lose nothing); the
 * Winograd F(2,3) and F(4,3) kernels of kernels.h (input transform, pixel tiles, channel
 * tiles, weight gradient) on zmm; the depthwise 3x3 kernels (conv_dw_impl.h, conv_dwc_impl.h)
 * on zmm; the epilogue of fused chains. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#pragma GCC target("avx512f,avx512vl,avx512dq,avx512bw,avx2,fma")
#include <immintrin.h>
#include <stdbool.h>
#include <string.h>
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
#define VRELU(v) _mm512_maskz_mov_ps(_mm512_cmp_ps_mask((v), _mm512_setzero_ps(), _CMP_GT_OQ), (v))
#include "kernels/conv_wino_chan_impl.h"     /* wino_channels_zmm: 16-float vectors only */
#include "kernels/conv_dw_impl.h"            /* dw3x3_zmm, dw3x3_wgrad_zmm */
#define DWC_PX 4
#include "kernels/conv_dwc_impl.h"           /* dwc_forward_zmm, dwc_weight_grad_zmm, dwc_input_grad_zmm */
#undef VRELU

#undef VL
#undef VLOAD
#undef VSTORE
#undef VBCAST
#undef VFMA
#undef VZERO
#undef WG_SUFFIX
#include "kernels/vec_ymm.h"      /* vf is __m256 from here on */
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

static inline __mmask16 lanes(int n) { return n >= 16 ? 0xFFFF : (__mmask16)((1u << (n > 0 ? n : 0)) - 1); }

/* ---- Winograd F(m,3) along rows (kernels.h): input transform and pixel tiles ---- */

/* Lane i = padded column c + i of a source row zero-padded by pad on the left (w source
 * columns): row[c + i - pad] where that is inside the row, else 0. No memory outside the row
 * is read and no pointer outside it is formed. */
static inline __m512 load_padded(const float *row, int c, int pad, int w) {
    int lo = pad - c, hi = w + pad - c;     /* lanes lo .. hi-1 are inside the row */
    if (hi <= 0 || hi <= lo) return _mm512_setzero_ps();
    if (lo <= 0) return _mm512_maskz_loadu_ps(lanes(hi), row + (c - pad));
    return _mm512_maskz_expandloadu_ps((__mmask16)(lanes(hi) & ~lanes(lo)), row);
}

/* Padded columns c .. c+15 of padded row y of channel ic of src (ic, h, w) zero-padded by pad;
 * without padding, columns past the row's end may hold the next row's values (they feed only
 * pairs whose outputs are never used). */
static inline __m512 padded_cols(const float *src, const float *src_end, int ic, int y, int c, int pad, int h, int w) {
    int sy = y - pad;
    if (sy < 0 || sy >= h) return _mm512_setzero_ps();
    const float *row = src + ((size_t)ic * h + sy) * w;
    if (!pad && src_end - (row + c) >= 16) return _mm512_loadu_ps(row + c);
    return load_padded(row, c, pad, w);
}

/* Stores t[i] (i < count) at out + i*pv, n lanes each (full width when room >= 16
 * floats remain in the plane: the extra lanes land on later rows, rewritten after). */
static inline void store_planes(const __m512 *t, int count, float *out, size_t pv, int n, size_t room) {
    for (int i = 0; i < count; i++) {
        if (room >= 16) _mm512_storeu_ps(out + i * pv, t[i]);
        else _mm512_mask_storeu_ps(out + i * pv, lanes(n), t[i]);
    }
}

/* One step of the F(2,3) input transform: d0, d1 = the columns of (a, b) at the lanes of e and
 * e + 1, d2, d3 = those of (a2, b2); V_t stored at out + t*pv as store_planes. */
static inline void wino_input_step(__m512 a, __m512 b, __m512 a2, __m512 b2, __m512i e, float *out, size_t pv, int n,
                                   size_t room) {
    __m512i o = _mm512_add_epi32(e, _mm512_set1_epi32(1));
    __m512 d0 = _mm512_permutex2var_ps(a, e, b), d1 = _mm512_permutex2var_ps(a, o, b);
    __m512 d2 = _mm512_permutex2var_ps(a2, e, b2), d3 = _mm512_permutex2var_ps(a2, o, b2);
    __m512 t[4] = { _mm512_sub_ps(d0, d2), _mm512_add_ps(d1, d2), _mm512_sub_ps(d2, d1), _mm512_sub_ps(d1, d3) };
    store_planes(t, 4, out, pv, n, room);
}

/* One step of the F(4,3) input transform: d_j = the columns of (a, b) at the lanes of e + j;
 * V_t stored at out + t*pv as store_planes. */
static inline void wino4_input_step(__m512 a, __m512 b, __m512i e, float *out, size_t pv, int n, size_t room) {
    __m512 d[6];
    for (int j = 0; j < 6; j++) d[j] = _mm512_permutex2var_ps(a, _mm512_add_epi32(e, _mm512_set1_epi32(j)), b);
    const __m512 two = _mm512_set1_ps(2.0f), four = _mm512_set1_ps(4.0f), five = _mm512_set1_ps(5.0f);
    __m512 t[6] = {
        _mm512_fmadd_ps(four, d[0], _mm512_fnmadd_ps(five, d[2], d[4])),
        _mm512_fnmadd_ps(four, _mm512_add_ps(d[1], d[2]), _mm512_add_ps(d[3], d[4])),
        _mm512_fmadd_ps(four, _mm512_sub_ps(d[1], d[2]), _mm512_sub_ps(d[4], d[3])),
        _mm512_fmadd_ps(two, _mm512_sub_ps(d[3], d[1]), _mm512_sub_ps(d[4], d[2])),
        _mm512_fmadd_ps(two, _mm512_sub_ps(d[1], d[3]), _mm512_sub_ps(d[4], d[2])),
        _mm512_fmadd_ps(four, d[1], _mm512_fnmadd_ps(five, d[3], d[5])),
    };
    store_planes(t, 6, out, pv, n, room);
}

/* F(2,3) v (IC, 4, Hp, wv) from src (IC, Hp - 2*pad, Wp - 2*pad) zero-padded by pad on every
 * side (the padding is never written out): rows of up to 8 pairs two at a time (one vector:
 * pair m of the first row in lane m, of the second in lane wv + m), longer rows 16 pairs at
 * a time. */
static void wino2_input(const cn_conv_geom *g, const float *src, int pad, float *v) {
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    int wv = cn_wino_tiles(g), h = g->hp - 2 * pad, w = g->wp - 2 * pad;
    size_t pv = (size_t)g->hp * wv;
    const float *src_end = src + (size_t)g->in_c * h * w;
    int32_t two[16] = { 0 };    /* lane -> column in (first row's 16, second row's 16) */
    for (int m = 0; wv <= 8 && m < wv; m++) { two[m] = 2 * m; two[wv + m] = 16 + 2 * m; }
    const __m512i two_rows = _mm512_loadu_si512(two);
    for (int ic = 0; ic < g->in_c; ic++) {
        float *vc = v + (size_t)ic * 4 * pv;
        int y = 0;
        if (wv <= 8)
            for (; y + 1 < g->hp; y += 2)
                wino_input_step(padded_cols(src, src_end, ic, y, 0, pad, h, w),
                                padded_cols(src, src_end, ic, y + 1, 0, pad, h, w),
                                padded_cols(src, src_end, ic, y, 2, pad, h, w),
                                padded_cols(src, src_end, ic, y + 1, 2, pad, h, w), two_rows, vc + (size_t)y * wv, pv,
                                2 * wv, pv - (size_t)y * wv);
        for (; y < g->hp; y++)
            for (int m = 0; m < wv; m += 16) {
                int c = 2 * m;     /* pair m reads padded columns c .. c+3 */
                wino_input_step(padded_cols(src, src_end, ic, y, c, pad, h, w),
                                padded_cols(src, src_end, ic, y, c + 16, pad, h, w),
                                padded_cols(src, src_end, ic, y, c + 2, pad, h, w),
                                padded_cols(src, src_end, ic, y, c + 18, pad, h, w), even, vc + (size_t)y * wv + m, pv,
                                wv - m, pv - (size_t)y * wv - m);
            }
    }
}

/* F(4,3) v (IC, 6, Hp, wv), wv <= CN_WINO4_MAX_TILES, from src as wino2_input: tile m of a row
 * reads padded columns 4m .. 4m+5 (< 32: one pair of vectors per row); rows of up to 3 tiles
 * (columns < 16) two at a time (tile m of the first row in lane m, of the second in lane wv + m). */
static void wino4_input(const cn_conv_geom *g, const float *src, int pad, float *v) {
    int wv = cn_wino_tiles(g), h = g->hp - 2 * pad, w = g->wp - 2 * pad;
    size_t pv = (size_t)g->hp * wv;
    const float *src_end = src + (size_t)g->in_c * h * w;
    int32_t one[16], two[16] = { 0 };   /* lane -> first input column in (a, b) */
    for (int m = 0; m < 16; m++) one[m] = 4 * m % 32;
    for (int m = 0; wv <= 3 && m < wv; m++) { two[m] = 4 * m; two[wv + m] = 16 + 4 * m; }
    const __m512i one_row = _mm512_loadu_si512(one), two_rows = _mm512_loadu_si512(two);
    for (int ic = 0; ic < g->in_c; ic++) {
        float *vc = v + (size_t)ic * 6 * pv;
        int y = 0;
        if (wv <= 3)
            for (; y + 1 < g->hp; y += 2)
                wino4_input_step(padded_cols(src, src_end, ic, y, 0, pad, h, w),
                                 padded_cols(src, src_end, ic, y + 1, 0, pad, h, w), two_rows, vc + (size_t)y * wv,
                                 pv, 2 * wv, pv - (size_t)y * wv);
        for (; y < g->hp; y++)
            wino4_input_step(padded_cols(src, src_end, ic, y, 0, pad, h, w),
                             padded_cols(src, src_end, ic, y, 16, pad, h, w), one_row, vc + (size_t)y * wv, pv, wv,
                             pv - (size_t)y * wv);
    }
}

static void wino_input(const cn_conv_geom *g, const float *src, int pad, float *v) {
    if (g->wino_m == 4) wino4_input(g, src, pad, v);
    else wino2_input(g, src, pad, v);
    memset(v + (size_t)g->in_c * cn_wino_alpha(g) * g->hp * cn_wino_tiles(g), 0, 2 * CN_VEC_MAX * sizeof *v);
}

#define WINO_ACC 24         /* accumulators per pixel tile: ALPHA * MR * NV */
#define WINO_MR 3           /* output channels per pixel tile, F(2,3) */
#define WINO_MR4 2          /* the same, F(4,3) */
#define WINO_NV_MAX 6       /* tile vectors per pixel tile */

/* out[i][m*p .. m*(p + 16*NV)) for i < MR channels, tiles p of NV vectors from the tile's first
 * p0 (tiles >= `tiles` not stored), m = ALPHA - 2: M_t = sum over (ic, ky) of u[ic][ky][t][i] *
 * v[ic][t][ky row][p ..], then the output transform (+ bias[i] when bias is not NULL),
 * interleaved into pixel order. u: the block's packed weights; v, out, bias at the tile. */
INLINE void wino_tile(const int ALPHA, const int MR, const int NV, const cn_conv_geom *g, const float *u,
                      const float *v, float *out, int ostride, const float *bias, int p0, int tiles) {
    const __m512i first = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const __m512i second = _mm512_add_epi32(first, _mm512_set1_epi32(8));
    __m512 acc[6][WINO_MR][WINO_NV_MAX];
    #pragma GCC unroll 6
    for (int t = 0; t < ALPHA; t++)
        #pragma GCC unroll 3
        for (int i = 0; i < MR; i++)
            #pragma GCC unroll 6
            for (int j = 0; j < NV; j++) acc[t][i][j] = _mm512_setzero_ps();
    const int wv = cn_wino_tiles(g), pv = g->hp * wv;
    for (int ic = 0; ic < g->in_c; ic++)
        #pragma GCC unroll 1
        for (int ky = 0; ky < 3; ky++) {
            const float *vr = v + (size_t)ic * ALPHA * pv + ky * wv;
            #pragma GCC unroll 6
            for (int t = 0; t < ALPHA; t++, u += MR) {
                __m512 b[WINO_NV_MAX];
                #pragma GCC unroll 6
                for (int j = 0; j < NV; j++) {
                    b[j] = _mm512_loadu_ps(vr + t * pv + j * 16);
                    __asm__("" : "+v"(b[j]));   /* keeps b[j] in a register: gcc would reload it per FMA */
                }
                #pragma GCC unroll 3
                for (int i = 0; i < MR; i++) {
                    __m512 a = _mm512_set1_ps(u[i]);
                    #pragma GCC unroll 6
                    for (int j = 0; j < NV; j++) acc[t][i][j] = _mm512_fmadd_ps(a, b[j], acc[t][i][j]);
                }
            }
        }
    const int M = ALPHA - 2;
    #pragma GCC unroll 3
    for (int i = 0; i < MR; i++) {
        __m512 bi = _mm512_set1_ps(bias ? bias[i] : 0.0f);
        #pragma GCC unroll 6
        for (int j = 0; j < NV; j++) {
            float *o = out + (size_t)i * ostride + 16 * M * j;
            int left = M * (tiles - (p0 + 16 * j));     /* outputs of this channel from o on */
            if (ALPHA == 4) {
                __m512 y0 = acc[0][i][j] + acc[1][i][j] + acc[2][i][j], y1 = acc[1][i][j] - acc[2][i][j] - acc[3][i][j];
                if (bias) y0 = _mm512_add_ps(y0, bi), y1 = _mm512_add_ps(y1, bi);
                _mm512_mask_storeu_ps(o, lanes(left), _mm512_permutex2var_ps(y0, first, y1));
                _mm512_mask_storeu_ps(o + 16, lanes(left - 16), _mm512_permutex2var_ps(y0, second, y1));
            } else {
                const __m512i quads = _mm512_setr_epi32(0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23);
                const __m512i quads_hi = _mm512_add_epi32(quads, _mm512_set1_epi32(8));
                __m512 s12 = acc[1][i][j] + acc[2][i][j], d12 = acc[1][i][j] - acc[2][i][j];
                __m512 s34 = acc[3][i][j] + acc[4][i][j], d34 = acc[3][i][j] - acc[4][i][j];
                __m512 y[4] = { acc[0][i][j] + s12 + s34, _mm512_fmadd_ps(_mm512_set1_ps(2.0f), d34, d12),
                                _mm512_fmadd_ps(_mm512_set1_ps(4.0f), s34, s12),
                                _mm512_fmadd_ps(_mm512_set1_ps(8.0f), d34, d12) + acc[5][i][j] };
                if (bias)
                    for (int k = 0; k < 4; k++) y[k] = _mm512_add_ps(y[k], bi);
                /* (y0, y1) and (y2, y3) interleaved by lane, then those by lane pair: pixel order */
                __m512 p01[2] = { _mm512_permutex2var_ps(y[0], first, y[1]), _mm512_permutex2var_ps(y[0], second, y[1]) };
                __m512 p23[2] = { _mm512_permutex2var_ps(y[2], first, y[3]), _mm512_permutex2var_ps(y[2], second, y[3]) };
                for (int k = 0; k < 4; k++)
                    _mm512_mask_storeu_ps(o + 16 * k, lanes(left - 16 * k),
                                          _mm512_permutex2var_ps(p01[k / 2], k % 2 ? quads_hi : quads, p23[k / 2]));
            }
        }
    }
}

typedef void (*wino_tile_fn)(const cn_conv_geom *, const float *, const float *, float *, int, const float *, int, int);
#define WINO_TILE(A, MR, NV) \
    static void wino_tile_##A##_##MR##_##NV(const cn_conv_geom *g, const float *u, const float *v, float *o, int s, \
                                            const float *bias, int p0, int tiles) { \
        wino_tile(A, MR, NV, g, u, v, o, s, bias, p0, tiles); }
#define WINO_TILES(MR) WINO_TILE(4, MR, 1) WINO_TILE(4, MR, 2) WINO_TILE(4, MR, 3) WINO_TILE(4, MR, 4) \
    WINO_TILE(4, MR, 5) WINO_TILE(4, MR, 6)
WINO_TILES(1) WINO_TILES(2) WINO_TILES(3)
WINO_TILE(6, 1, 1) WINO_TILE(6, 1, 2) WINO_TILE(6, 1, 3) WINO_TILE(6, 1, 4) WINO_TILE(6, 2, 1) WINO_TILE(6, 2, 2)
#define WINO_ROW(MR) { wino_tile_4_##MR##_1, wino_tile_4_##MR##_2, wino_tile_4_##MR##_3, wino_tile_4_##MR##_4, \
                       wino_tile_4_##MR##_5, wino_tile_4_##MR##_6 }
/* [mr - 1][nv - 1] for nv <= WINO_ACC / (ALPHA * mr) */
static const wino_tile_fn wino2_tiles[WINO_MR][WINO_NV_MAX] = { WINO_ROW(1), WINO_ROW(2), WINO_ROW(3) };
static const wino_tile_fn wino4_tiles[WINO_MR4][WINO_NV_MAX] = {
    { wino_tile_6_1_1, wino_tile_6_1_2, wino_tile_6_1_3, wino_tile_6_1_4 }, { wino_tile_6_2_1, wino_tile_6_2_2 },
};

/* out (OC, ostride) from v and u: chunks of WINO_NV_MAX tile vectors (their slice of v stays
 * in L1), each swept over the output-channel blocks. */
static void wino_conv(const cn_conv_geom *g, const float *u, const float *v, float *out, int ostride,
                      const float *bias) {
    int a = cn_wino_alpha(g), mr_max = a == 4 ? WINO_MR : WINO_MR4;
    int tiles = g->out_h * cn_wino_tiles(g), vectors = (tiles + 15) / 16;
    int blocks = (g->out_c + mr_max - 1) / mr_max;
    for (int v0 = 0; v0 < vectors; v0 += WINO_NV_MAX) {
        int chunk = vectors - v0 < WINO_NV_MAX ? vectors - v0 : WINO_NV_MAX;
        for (int b = 0; b < blocks; b++) {
            int oc0, mr;
            cn_conv_block(g->out_c, mr_max, b, &oc0, &mr);
            int nv_max = WINO_ACC / (a * mr);
            for (int j = v0; j < v0 + chunk; j += nv_max) {
                int nv = v0 + chunk - j < nv_max ? v0 + chunk - j : nv_max;
                wino_tile_fn tile = a == 4 ? wino2_tiles[mr - 1][nv - 1] : wino4_tiles[mr - 1][nv - 1];
                tile(g, u + (size_t)oc0 * g->in_c * 3 * a, v + (size_t)j * 16,
                     out + (size_t)oc0 * ostride + (size_t)j * 16 * g->wino_m, ostride, bias ? bias + oc0 : NULL,
                     16 * j, tiles);
            }
        }
    }
}

#define WGRAD_ACC 24        /* accumulators per weight-gradient tile: ALPHA * NK */
#define WGRAD_ROWS_MAX 6    /* kernel rows (ic, ky) per weight-gradient tile */

/* dwt taps (r*3 + kx) of the NK kernel rows r = r0 .. r0+NK-1 (r = ic*3 + ky), one vector of
 * output channels: S_t = sum over the out_h*wv tiles p of v[ic][t][ky row + p] * z[p][t], then
 * dW = G^T S added to dwt. z and dwt at the channel vector. */
INLINE void wino_wgrad_tile(const int ALPHA, const int NK, const cn_conv_geom *g, int r0, const float *v,
                            const float *z, int ld, float *dwt) {
    __m512 acc[WGRAD_ROWS_MAX][6];
    const float *vr[WGRAD_ROWS_MAX];
    const int wv = cn_wino_tiles(g), pv = g->hp * wv, tiles = g->out_h * wv;
    #pragma GCC unroll 6
    for (int i = 0; i < NK; i++) {
        int r = r0 + i;
        vr[i] = v + (size_t)(r / 3) * ALPHA * pv + (r % 3) * wv;
        #pragma GCC unroll 6
        for (int t = 0; t < ALPHA; t++) acc[i][t] = _mm512_setzero_ps();
    }
    for (int p = 0; p < tiles; p++, z += ALPHA * ld) {
        #pragma GCC unroll 6
        for (int t = 0; t < ALPHA; t++) {
            __m512 zt = _mm512_loadu_ps(z + (size_t)t * ld);
            __asm__("" : "+v"(zt));   /* keeps zt in a register: gcc would reload it per FMA */
            #pragma GCC unroll 6
            for (int i = 0; i < NK; i++) acc[i][t] = _mm512_fmadd_ps(_mm512_set1_ps(vr[i][t * pv + p]), zt, acc[i][t]);
        }
    }
    #pragma GCC unroll 6
    for (int i = 0; i < NK; i++) {
        __m512 k[3];
        if (ALPHA == 4) {
            const __m512 half = _mm512_set1_ps(0.5f);
            __m512 sum = _mm512_mul_ps(_mm512_add_ps(acc[i][1], acc[i][2]), half);
            k[0] = _mm512_add_ps(acc[i][0], sum);
            k[1] = _mm512_mul_ps(_mm512_sub_ps(acc[i][1], acc[i][2]), half);
            k[2] = _mm512_add_ps(sum, acc[i][3]);
        } else {
            const __m512 sixth = _mm512_set1_ps(1.0f / 6), twelfth = _mm512_set1_ps(1.0f / 12);
            const __m512 quarter = _mm512_set1_ps(0.25f), over24 = _mm512_set1_ps(1.0f / 24);
            __m512 s12 = acc[i][1] + acc[i][2], d21 = acc[i][2] - acc[i][1];
            __m512 s34 = acc[i][3] + acc[i][4], d34 = acc[i][3] - acc[i][4];
            k[0] = _mm512_fmadd_ps(acc[i][0], quarter, _mm512_fmsub_ps(s34, over24, s12 * sixth));
            k[1] = _mm512_fmadd_ps(d21, sixth, d34 * twelfth);
            k[2] = _mm512_fmadd_ps(s34 - s12, sixth, acc[i][5]);
        }
        for (int kx = 0; kx < 3; kx++) {
            float *d = dwt + (size_t)((r0 + i) * 3 + kx) * ld;
            _mm512_storeu_ps(d, _mm512_add_ps(_mm512_loadu_ps(d), k[kx]));
        }
    }
}

typedef void (*wino_wgrad_fn)(const cn_conv_geom *, int, const float *, const float *, int, float *);
#define WINO_WGRAD(A, NK) \
    static void wino_wgrad_##A##_##NK(const cn_conv_geom *g, int r0, const float *v, const float *z, int ld, \
                                      float *dwt) { \
        wino_wgrad_tile(A, NK, g, r0, v, z, ld, dwt); }
WINO_WGRAD(4, 1) WINO_WGRAD(4, 2) WINO_WGRAD(4, 3) WINO_WGRAD(4, 4) WINO_WGRAD(4, 5) WINO_WGRAD(4, 6)
WINO_WGRAD(6, 1) WINO_WGRAD(6, 2) WINO_WGRAD(6, 3) WINO_WGRAD(6, 4)
/* [nk - 1] for nk <= WGRAD_ACC / ALPHA */
static const wino_wgrad_fn wino2_wgrad_tiles[WGRAD_ROWS_MAX] = {
    wino_wgrad_4_1, wino_wgrad_4_2, wino_wgrad_4_3, wino_wgrad_4_4, wino_wgrad_4_5, wino_wgrad_4_6,
};
static const wino_wgrad_fn wino4_wgrad_tiles[WGRAD_ROWS_MAX] = {
    wino_wgrad_6_1, wino_wgrad_6_2, wino_wgrad_6_3, wino_wgrad_6_4,
};

/* dwt (IC*9, ld) += the weight gradient: for each vector of output channels, the IC*3
 * kernel rows in near-equal groups of up to WGRAD_ACC / ALPHA. */
static void wino_weight_grad(const cn_conv_geom *g, const float *v, const float *z, int ld, float *dwt) {
    int a = cn_wino_alpha(g), rows_max = WGRAD_ACC / a;
    int rows = g->in_c * 3, groups = (rows + rows_max - 1) / rows_max;
    int base = rows / groups, extra = rows % groups;
    for (int m0 = 0; m0 < ld; m0 += 16)
        for (int gi = 0, r0 = 0, nk; gi < groups; gi++, r0 += nk) {
            nk = base + (gi < extra);
            wino_wgrad_fn tile = a == 4 ? wino2_wgrad_tiles[nk - 1] : wino4_wgrad_tiles[nk - 1];
            tile(g, r0, v, z + m0, ld, dwt + m0);
        }
}

/* ---- epilogue of fused chains: affines, relu, 2x2 max-pool ---------------
 * Same float operations as cn_epilogue_plane_portable (multiply, then add, no
 * fusing), with masked loads and stores for the row ends. */

/* v * post_scale + post_shift (multiply, then add). */
static inline __m512 post_map(const cn_epilogue *e, __m512 v) {
    return _mm512_add_ps(_mm512_mul_ps(v, _mm512_set1_ps(e->post_scale)), _mm512_set1_ps(e->post_shift));
}

/* relu((x * scale + shift) * mid_scale + mid_shift) * post_scale + post_shift of the lanes in
 * mask (others 0), each step when enabled. */
static inline __m512 transform(const cn_epilogue *e, __mmask16 mask, const float *x) {
    __m512 v = _mm512_maskz_loadu_ps(mask, x);
    if (e->affine) v = _mm512_add_ps(_mm512_mul_ps(v, _mm512_set1_ps(e->scale)), _mm512_set1_ps(e->shift));
    if (e->mid_affine)
        v = _mm512_add_ps(_mm512_mul_ps(v, _mm512_set1_ps(e->mid_scale)), _mm512_set1_ps(e->mid_shift));
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

/* The plane without pool, the steps in `e` as given by the flags (constants in each call of
 * plain_plane: a loop without branches, the step constants in registers). */
static inline __attribute__((always_inline)) void plain_rows(const cn_epilogue *e, const float *x, float *y,
                                                             bool affine, bool mid, bool relu, bool post) {
    const __m512 scale = _mm512_set1_ps(e->scale), shift = _mm512_set1_ps(e->shift);
    const __m512 mid_scale = _mm512_set1_ps(e->mid_scale), mid_shift = _mm512_set1_ps(e->mid_shift);
    const __m512 post_scale = _mm512_set1_ps(e->post_scale), post_shift = _mm512_set1_ps(e->post_shift);
    /* a compact source is one long row: full vectors instead of a masked end per row */
    int rows = e->x_stride == e->w ? 1 : e->h, width = e->x_stride == e->w ? e->h * e->w : e->w;
    for (int r = 0; r < rows; r++)
        for (int i = 0; i < width; i += 16) {
            __mmask16 m = lanes(width - i);
            __m512 v = _mm512_maskz_loadu_ps(m, x + (size_t)r * e->x_stride + i);
            if (affine) v = _mm512_add_ps(_mm512_mul_ps(v, scale), shift);
            if (mid) v = _mm512_add_ps(_mm512_mul_ps(v, mid_scale), mid_shift);
            if (relu) v = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_GT_OQ), v);
            if (post) v = _mm512_add_ps(_mm512_mul_ps(v, post_scale), post_shift);
            _mm512_mask_storeu_ps(y + (size_t)r * e->w + i, m, v);
        }
}

/* plain_rows with e's steps: the chains the layers run get a loop of their own. */
static void plain_plane(const cn_epilogue *e, const float *x, float *y) {
    int a = e->affine != 0, mid = e->mid_affine != 0, relu = e->relu != 0, post = e->post_affine != 0;
    if (!a && !mid && !relu && !post) plain_rows(e, x, y, false, false, false, false);        /* a copy */
    else if (a && !mid && !relu && !post) plain_rows(e, x, y, true, false, false, false);     /* bias, BN */
    else if (a && !mid && relu && !post) plain_rows(e, x, y, true, false, true, false);       /* + relu */
    else if (a && !mid && relu && post) plain_rows(e, x, y, true, false, true, true);         /* + relu + BN */
    else if (!a && mid && relu && !post) plain_rows(e, x, y, false, true, true, false);       /* BN + relu */
    else if (a && mid && relu && !post) plain_rows(e, x, y, true, true, true, false);         /* bias + BN + relu */
    else plain_rows(e, x, y, a, mid, relu, post);
}

static void epilogue_plane(const cn_epilogue *settings, const float *x, float *y, int32_t *argmax) {
    /* a local copy: the masked stores may alias *settings, which would be re-read after each */
    const cn_epilogue local = *settings, *e = &local;
    if (!e->pool) {
        plain_plane(e, x, y);
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
    .wino_mr = WINO_MR, .wino_mr4 = WINO_MR4, .wino_input = wino_input, .wino_conv = wino_conv, .wino_channels = wino_channels_zmm,
    .wino_weight_grad = wino_weight_grad,
    .dw3x3 = dw3x3_zmm, .dw3x3_wgrad = dw3x3_wgrad_zmm, .dw3x3_dgrad_s2 = dw3x3_dgrad_s2_zmm,
    .dwc_forward = dwc_forward_zmm, .dwc_weight_grad = dwc_weight_grad_zmm, .dwc_input_grad = dwc_input_grad_zmm,
};
#else
typedef int cn_conv_avx512_unused;
#endif
