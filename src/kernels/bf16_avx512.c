/* cn_bf16_gemm and the conv kernels of bf16.h for AVX512_BF16: vdpbf16ps adds the two
 * products of a pair to each float32 lane. A gemm tile is up to MR rows of C times two vectors
 * of 16 columns: 2*MR zmm accumulators, per pair of K one broadcast of each row's A pair and
 * two loads of B pairs. Compiled for AVX512_BF16 here alone; called only where
 * cn_bf16_available() says the CPU has it. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#pragma GCC target("avx512f,avx512vl,avx512bw,avx512dq,avx512bf16")
#include <immintrin.h>
#include "kernels/bf16.h"

#define MR 6            /* rows of C per tile */
#define NR 32           /* columns of C per tile: two vectors */

static inline __mmask16 lanes(int n) { return n >= 16 ? 0xFFFF : n <= 0 ? 0 : (__mmask16)((1u << n) - 1); }

/* C rows [0, mr) x columns [0, min(n, 32)) of the tile at c; ap, bp at the tile's first row
 * and column. mr is a constant after inlining. */
static inline __attribute__((always_inline)) void tile(const int mr, int n, int K2, const uint32_t *ap, size_t lda,
                                                        const uint32_t *bp, size_t ldb, float *c, size_t ldc,
                                                        int accumulate) {
    __mmask16 m0 = lanes(n), m1 = lanes(n - 16);
    __m512 acc[MR][2];
    for (int r = 0; r < mr; r++) {
        acc[r][0] = accumulate ? _mm512_maskz_loadu_ps(m0, c + (size_t)r * ldc) : _mm512_setzero_ps();
        acc[r][1] = accumulate ? _mm512_maskz_loadu_ps(m1, c + (size_t)r * ldc + 16) : _mm512_setzero_ps();
    }
    for (int j = 0; j < K2; j++) {
        const uint32_t *b = bp + (size_t)j * ldb;
        __m512bh b0 = (__m512bh)_mm512_maskz_loadu_epi32(m0, b);
        __m512bh b1 = (__m512bh)_mm512_maskz_loadu_epi32(m1, b + 16);
        for (int r = 0; r < mr; r++) {
            __m512bh a = (__m512bh)_mm512_set1_epi32((int)ap[(size_t)r * lda + j]);
            acc[r][0] = _mm512_dpbf16_ps(acc[r][0], a, b0);
            acc[r][1] = _mm512_dpbf16_ps(acc[r][1], a, b1);
        }
    }
    for (int r = 0; r < mr; r++) {
        _mm512_mask_storeu_ps(c + (size_t)r * ldc, m0, acc[r][0]);
        _mm512_mask_storeu_ps(c + (size_t)r * ldc + 16, m1, acc[r][1]);
    }
}

void cn_bf16_gemm(int M, int N, int K2, const uint32_t *ap, const uint32_t *bp, float *c, size_t ldc, int accumulate) {
    for (int n0 = 0; n0 < N; n0 += NR) {
        int n = N - n0;
        for (int m0 = 0; m0 < M; m0 += MR) {
            const uint32_t *a = ap + (size_t)m0 * K2, *b = bp + n0;
            float *cc = c + (size_t)m0 * ldc + n0;
            switch (M - m0 >= MR ? MR : M - m0) {
            case 6: tile(6, n, K2, a, K2, b, N, cc, ldc, accumulate); break;
            case 5: tile(5, n, K2, a, K2, b, N, cc, ldc, accumulate); break;
            case 4: tile(4, n, K2, a, K2, b, N, cc, ldc, accumulate); break;
            case 3: tile(3, n, K2, a, K2, b, N, cc, ldc, accumulate); break;
            case 2: tile(2, n, K2, a, K2, b, N, cc, ldc, accumulate); break;
            default: tile(1, n, K2, a, K2, b, N, cc, ldc, accumulate); break;
            }
        }
    }
}

/* ---- Winograd F(2,3), channel form, on bf16 pairs (bf16.h) ----
 * As kernels.h's wino_channels (conv_wino_chan_impl.h, F(2,3)): a tile is one vector of 16
 * output channels by NP <= 7 consecutive row tiles (4 accumulators each); per input-channel
 * pair and kernel row, 4 weight vectors, each used by NP broadcasts of a v2 pair. */
#define WNP_MAX 7

static inline __m512 chan_steps(const cn_channel_epilogue *ep, int m0, __m512 v) {
    if (ep->shift) v = _mm512_add_ps(v, _mm512_loadu_ps(ep->shift + m0));
    if (ep->mid_scale)
        v = _mm512_add_ps(_mm512_mul_ps(v, _mm512_loadu_ps(ep->mid_scale + m0)), _mm512_loadu_ps(ep->mid_shift + m0));
    if (ep->relu) v = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_GT_OQ), v);
    if (ep->post_scale)
        v = _mm512_add_ps(_mm512_mul_ps(v, _mm512_loadu_ps(ep->post_scale + m0)), _mm512_loadu_ps(ep->post_shift + m0));
    return v;
}

/* Tiles p0 .. p0+NP-1 (flat p = oy*wv + i) of the channel vector at m0; ut2, out_t at that
 * vector, v2 at tile p0. */
static inline __attribute__((always_inline)) void wino2_chan_tile(const int NP, const cn_conv_geom *g, const uint32_t *ut2,
                                                                   int ld, const uint32_t *v2, float *out_t, int p0,
                                                                   const cn_channel_epilogue *ep, int m0) {
    __m512 acc[WNP_MAX][4];
    for (int i = 0; i < NP; i++)
        for (int t = 0; t < 4; t++) acc[i][t] = _mm512_setzero_ps();
    const int wv = cn_wino_tiles(g), pv = g->hp * wv, pairs = (int)cn_bf16_pairs(g->in_c);
    for (int j = 0; j < pairs; j++)
        #pragma GCC unroll 1
        for (int ky = 0; ky < 3; ky++) {
            const uint32_t *vr = v2 + (size_t)j * 4 * pv + ky * wv;
            const uint32_t *ur = ut2 + (size_t)(j * 3 + ky) * 4 * ld;
            for (int t = 0; t < 4; t++) {
                __m512i w = _mm512_loadu_si512(ur + (size_t)t * ld);
                __asm__("" : "+v"(w));   /* keeps w in a register, as the float32 kernel */
                for (int i = 0; i < NP; i++)
                    acc[i][t] = _mm512_dpbf16_ps(acc[i][t], (__m512bh)_mm512_set1_epi32((int)vr[t * pv + i]), (__m512bh)w);
            }
        }
    int oy = p0 / wv, tile = p0 % wv;
    for (int i = 0; i < NP; i++) {
        float *o = out_t + (size_t)(oy * g->out_w + 2 * tile) * ld;
        __m512 y0 = _mm512_add_ps(_mm512_add_ps(acc[i][0], acc[i][1]), acc[i][2]);
        __m512 y1 = _mm512_sub_ps(_mm512_sub_ps(acc[i][1], acc[i][2]), acc[i][3]);
        _mm512_storeu_ps(o, ep ? chan_steps(ep, m0, y0) : y0);
        if (2 * tile + 1 < g->out_w) _mm512_storeu_ps(o + ld, ep ? chan_steps(ep, m0, y1) : y1);
        if (++tile == wv) { tile = 0; oy++; }
    }
}

typedef void (*wino_chan_fn)(const cn_conv_geom *, const uint32_t *, int, const uint32_t *, float *, int,
                             const cn_channel_epilogue *, int);
#define WINO_CHAN(NP) \
    static void wino_chan_##NP(const cn_conv_geom *g, const uint32_t *ut2, int ld, const uint32_t *v2, float *o, int p0, \
                               const cn_channel_epilogue *ep, int m0) { wino2_chan_tile(NP, g, ut2, ld, v2, o, p0, ep, m0); }
WINO_CHAN(1) WINO_CHAN(2) WINO_CHAN(3) WINO_CHAN(4) WINO_CHAN(5) WINO_CHAN(6) WINO_CHAN(7)
static const wino_chan_fn wino_chan_tiles[WNP_MAX] = {
    wino_chan_1, wino_chan_2, wino_chan_3, wino_chan_4, wino_chan_5, wino_chan_6, wino_chan_7,
};

void cn_bf16_wino_channels(const cn_conv_geom *g, const uint32_t *ut2, const uint32_t *v2, float *out_t, int ld,
                           const cn_channel_epilogue *ep) {
    int tiles = g->out_h * cn_wino_tiles(g), groups = (tiles + WNP_MAX - 1) / WNP_MAX;
    int base = tiles / groups, extra = tiles % groups;
    for (int m0 = 0; m0 < ld; m0 += 16)
        for (int pb = 0, p0 = 0, np; pb < groups; pb++, p0 += np) {
            np = base + (pb < extra);
            wino_chan_tiles[np - 1](g, ut2 + m0, ld, v2 + p0, out_t + m0, p0, ep, m0);
        }
}

/* ---- Winograd F(2,3), pixel form, on bf16 pairs (bf16.h) ----
 * As kernels.h's wino_conv (conv_avx512.c's wino_tile, F(2,3)): a tile is MR <= 3 output
 * channels by NV <= 6 vectors of 16 row tiles (4 * MR * NV <= 24 accumulators); per input-channel
 * pair, kernel row and t, NV loads of v2 pairs and MR broadcasts of u2 pairs. */
#define WPX_MR 3
#define WPX_NV_MAX 6
#define WPX_ACC 24

/* out[i][2*p .. 2*(p + 16*NV)) for i < MR, tiles p from p0 (tiles >= `tiles` not stored); u2: the
 * block's pairs; v2, out, bias at the tile. */
static inline __attribute__((always_inline)) void wino_px_tile(const int NC, const int NV, const cn_conv_geom *g,
                                                                const uint32_t *u2, const uint32_t *v2, float *out,
                                                                int ostride, const float *bias, int p0, int tiles) {
    const __m512i first = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const __m512i second = _mm512_add_epi32(first, _mm512_set1_epi32(8));
    __m512 acc[4][WPX_MR][WPX_NV_MAX];
    for (int t = 0; t < 4; t++)
        for (int i = 0; i < NC; i++)
            for (int j = 0; j < NV; j++) acc[t][i][j] = _mm512_setzero_ps();
    const int wv = cn_wino_tiles(g), pv = g->hp * wv, pairs = (int)cn_bf16_pairs(g->in_c);
    for (int jc = 0; jc < pairs; jc++)
        #pragma GCC unroll 1
        for (int ky = 0; ky < 3; ky++) {
            const uint32_t *vr = v2 + (size_t)jc * 4 * pv + ky * wv;
            for (int t = 0; t < 4; t++, u2 += NC) {
                __m512i b[WPX_NV_MAX];
                for (int j = 0; j < NV; j++) {
                    b[j] = _mm512_loadu_si512(vr + t * pv + j * 16);
                    __asm__("" : "+v"(b[j]));   /* keeps b[j] in a register, as the float32 kernel */
                }
                for (int i = 0; i < NC; i++) {
                    __m512bh a = (__m512bh)_mm512_set1_epi32((int)u2[i]);
                    for (int j = 0; j < NV; j++) acc[t][i][j] = _mm512_dpbf16_ps(acc[t][i][j], a, (__m512bh)b[j]);
                }
            }
        }
    for (int i = 0; i < NC; i++) {
        __m512 bi = _mm512_set1_ps(bias ? bias[i] : 0.0f);
        for (int j = 0; j < NV; j++) {
            float *o = out + (size_t)i * ostride + 32 * j;
            int left = 2 * (tiles - (p0 + 16 * j));     /* outputs of this channel from o on */
            __m512 y0 = _mm512_add_ps(_mm512_add_ps(acc[0][i][j], acc[1][i][j]), acc[2][i][j]);
            __m512 y1 = _mm512_sub_ps(_mm512_sub_ps(acc[1][i][j], acc[2][i][j]), acc[3][i][j]);
            if (bias) y0 = _mm512_add_ps(y0, bi), y1 = _mm512_add_ps(y1, bi);
            _mm512_mask_storeu_ps(o, lanes(left), _mm512_permutex2var_ps(y0, first, y1));
            _mm512_mask_storeu_ps(o + 16, lanes(left - 16), _mm512_permutex2var_ps(y0, second, y1));
        }
    }
}

typedef void (*wino_px_fn)(const cn_conv_geom *, const uint32_t *, const uint32_t *, float *, int, const float *, int, int);
#define WINO_PX(R, NV) \
    static void wino_px_##R##_##NV(const cn_conv_geom *g, const uint32_t *u2, const uint32_t *v2, float *o, int s, \
                                    const float *bias, int p0, int tiles) { wino_px_tile(R, NV, g, u2, v2, o, s, bias, p0, tiles); }
#define WINO_PXS(R) WINO_PX(R, 1) WINO_PX(R, 2) WINO_PX(R, 3) WINO_PX(R, 4) WINO_PX(R, 5) WINO_PX(R, 6)
WINO_PXS(1) WINO_PXS(2) WINO_PXS(3)
#define WINO_PX_ROW(R) { wino_px_##R##_1, wino_px_##R##_2, wino_px_##R##_3, wino_px_##R##_4, wino_px_##R##_5, \
                         wino_px_##R##_6 }
/* [mr - 1][nv - 1] for nv <= WPX_ACC / (4 * mr) */
static const wino_px_fn wino_px_tiles[WPX_MR][WPX_NV_MAX] = { WINO_PX_ROW(1), WINO_PX_ROW(2), WINO_PX_ROW(3) };

void cn_bf16_wino_conv(const cn_conv_geom *g, int mr_max, const uint32_t *u2, const uint32_t *v2, float *out,
                       int ostride, const float *bias) {
    int tiles = g->out_h * cn_wino_tiles(g), vectors = (tiles + 15) / 16;
    int blocks = (g->out_c + mr_max - 1) / mr_max;   /* mr_max <= WPX_MR (CN_BF16_WINO_MR) */
    for (int v0 = 0; v0 < vectors; v0 += WPX_NV_MAX) {
        int chunk = vectors - v0 < WPX_NV_MAX ? vectors - v0 : WPX_NV_MAX;
        for (int b = 0; b < blocks; b++) {
            int oc0, mr;
            cn_conv_block(g->out_c, mr_max, b, &oc0, &mr);
            int nv_max = WPX_ACC / (4 * mr);
            for (int j = v0; j < v0 + chunk; j += nv_max) {
                int nv = v0 + chunk - j < nv_max ? v0 + chunk - j : nv_max;
                wino_px_tiles[mr - 1][nv - 1](g, u2 + (size_t)oc0 * g->in_c * 3 * 4, v2 + (size_t)j * 16,
                                              out + (size_t)oc0 * ostride + (size_t)j * 32, ostride,
                                              bias ? bias + oc0 : NULL, 16 * j, tiles);
            }
        }
    }
}

/* ---- Direct weight gradient on bf16 pairs of output pixels (bf16.h) ----
 * As kernels.h's weight_grad (conv_chan_impl.h): a tile is NK consecutive taps (xt: each tap's
 * first x pair) by MV vectors of output channels, NK * MV <= 24 accumulators; per pixel pair,
 * MV loads of dy pairs and NK broadcasts of x pairs (bf16_wgrad_impl.h, once per vector width):
 * zmm for ld a multiple of 16, ymm of 8. */
#define WG_NK_MAX 12
#define WG_MV_MAX 4
#define WG_ACC 24

#define WG_CAT2(a, b) a##_##b
#define WG_CAT(a, b) WG_CAT2(a, b)
#define WG(name) WG_CAT(name, WG_SUFFIX)

#define WG_SUFFIX zmm
#define vf __m512
#define VL 16
#define VZERO() _mm512_setzero_ps()
#define VLOAD(p) _mm512_loadu_ps(p)
#define VSTORE(p, v) _mm512_storeu_ps((p), (v))
#define VADD(a, b) _mm512_add_ps((a), (b))
#define vbh __m512bh
#define VLOAD_PAIRS(p) ((__m512bh)_mm512_loadu_si512(p))
#define VBCAST_PAIR(w) ((__m512bh)_mm512_set1_epi32((int)(w)))
#define VDPBF16(acc, a, b) _mm512_dpbf16_ps((acc), (a), (b))
#include "kernels/bf16_wgrad_impl.h"     /* wgrad_tiles_zmm */
#undef WG_SUFFIX
#undef vf
#undef VL
#undef VZERO
#undef VLOAD
#undef VSTORE
#undef VADD
#undef vbh
#undef VLOAD_PAIRS
#undef VBCAST_PAIR
#undef VDPBF16

#define WG_SUFFIX ymm
#include "kernels/vec_ymm.h"             /* vf is __m256 from here on */
#define VADD(a, b) _mm256_add_ps((a), (b))
#define vbh __m256bh
#define VLOAD_PAIRS(p) ((__m256bh)_mm256_loadu_si256((const __m256i *)(p)))
#define VBCAST_PAIR(w) ((__m256bh)_mm256_set1_epi32((int)(w)))
#define VDPBF16(acc, a, b) _mm256_dpbf16_ps((acc), (a), (b))
#include "kernels/bf16_wgrad_impl.h"     /* wgrad_tiles_ymm */

/* n items in near-equal groups of at most cap: group b is [*start, *start + *size). */
static inline void split_even(int n, int cap, int b, int *start, int *size) {
    int groups = (n + cap - 1) / cap, base = n / groups, extra = n % groups;
    *start = b * base + (b < extra ? b : extra);
    *size = base + (b < extra);
}

void cn_bf16_weight_grad(const cn_conv_geom *g, const uint32_t *xp, const uint32_t *dyt2, int ld, float *dwt) {
    int vl = ld % 16 == 0 ? 16 : 8, taps = g->in_c * g->k * g->k, mvectors = ld / vl, w2 = cn_bf16_wgrad_w2(g);
    size_t plane = (size_t)g->hp * w2, odd = (size_t)g->in_c * plane;
    for (int mb = 0; mb < (mvectors + WG_MV_MAX - 1) / WG_MV_MAX; mb++) {
        int m0, mv;
        split_even(mvectors, WG_MV_MAX, mb, &m0, &mv);
        int nk_max = WG_ACC / mv < WG_NK_MAX ? WG_ACC / mv : WG_NK_MAX;
        for (int tb = 0; tb < (taps + nk_max - 1) / nk_max; tb++) {
            int t0, nk;
            const uint32_t *xt[WG_NK_MAX];
            split_even(taps, nk_max, tb, &t0, &nk);
            /* tap t0 + i = (ic, ky, kx): pairs starting at column kx of row ky (the odd half for odd kx) */
            int kx = t0 % g->k, ky = t0 / g->k % g->k, ic = t0 / (g->k * g->k);
            for (int i = 0; i < nk; i++) {
                xt[i] = xp + (kx & 1 ? odd : 0) + ic * plane + (size_t)ky * w2 + kx / 2;
                if (++kx == g->k) { kx = 0; if (++ky == g->k) { ky = 0; ic++; } }
            }
            const wgrad_fn *row = vl == 16 ? wgrad_tiles_zmm[nk - 1] : wgrad_tiles_ymm[nk - 1];
            row[mv - 1](g, xt, dyt2 + m0 * vl, ld, dwt + (size_t)t0 * ld + m0 * vl);
        }
    }
}

/* ---- Pairing (bf16.h: cn_bf16_pair_rows, cn_bf16_pair_wgrad_input) ----
 * vcvtneps2bf16 rounds to nearest even as cn_bf16_from_float, NaN to a quiet NaN, but flushes
 * denormal inputs and results to zero, as vdpbf16ps treats them. */

/* 16 words: (bf16(hi[k]) << 16) | bf16(lo[k]). */
static inline __m512i pair16(__m512 hi, __m512 lo) {
    __m512i h = _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(hi)), l = _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(lo));
    return _mm512_or_si512(_mm512_slli_epi32(h, 16), l);
}

void cn_bf16_pair_rows(uint32_t *words, size_t hi_at, ptrdiff_t lo_at, size_t n) {
    for (size_t k = 0; k < n; k += 16) {
        __mmask16 m = lanes((int)(n - k < 16 ? n - k : 16));
        __m512 hi = _mm512_maskz_loadu_ps(m, words + hi_at + k);
        __m512 lo = lo_at >= 0 ? _mm512_maskz_loadu_ps(m, words + lo_at + k) : _mm512_setzero_ps();
        _mm512_mask_storeu_epi32(words + k, m, pair16(hi, lo));
    }
}

/* 16 words from the 32 floats at r (columns col .. col+31 of a row of wp; 0 at or past wp):
 * word c = (bf16(r[2c]) << 16) | bf16(r[2c + 1]). */
static inline __m512i pair_adjacent(const float *r, int col, int wp) {
    __m512 a = _mm512_maskz_loadu_ps(lanes(wp - col), r + col), b = _mm512_maskz_loadu_ps(lanes(wp - col - 16), r + col + 16);
    return _mm512_rol_epi32((__m512i)_mm512_cvtne2ps_pbh(b, a), 16);
}

/* ---- Winograd F(2,3) weight gradient on bf16 pairs of tiles (bf16.h) ----
 * As kernels.h's wino_weight_grad (conv_avx512.c's wino_wgrad_tile, F(2,3)): a tile is NK <= 6
 * kernel rows (ic, ky) by one vector of output channels, 4 accumulators per row; per tile pair
 * and t, one load of z2 pairs and NK broadcasts of v pairs; then dW = G^T S added to dwt. */
#define WWG_ROWS_MAX 6

static inline __attribute__((always_inline)) void wino_wgrad_tile2(const int NK, const cn_conv_geom *g, int r0,
                                                                    const uint32_t *vp, const uint32_t *z2, int ld,
                                                                    float *dwt) {
    __m512 acc[WWG_ROWS_MAX][4];
    const uint32_t *vr[WWG_ROWS_MAX];
    const int wv = cn_wino_tiles(g), pw2 = cn_bf16_wino_wgrad_w2(g), pairs = (g->out_h * wv + 1) / 2;
    const size_t odd = (size_t)g->in_c * 4 * pw2;
    for (int i = 0; i < NK; i++) {
        int r = r0 + i, off = (r % 3) * wv;   /* kernel row ky's first tile in the (ic, t) block */
        vr[i] = vp + (off & 1 ? odd : 0) + (size_t)(r / 3) * 4 * pw2 + off / 2;
        for (int t = 0; t < 4; t++) acc[i][t] = _mm512_setzero_ps();
    }
    for (int q = 0; q < pairs; q++, z2 += 4 * ld)
        for (int t = 0; t < 4; t++) {
            __m512i zt = _mm512_loadu_si512(z2 + (size_t)t * ld);
            __asm__("" : "+v"(zt));   /* keeps zt in a register, as the float32 kernel */
            for (int i = 0; i < NK; i++)
                acc[i][t] = _mm512_dpbf16_ps(acc[i][t], (__m512bh)_mm512_set1_epi32((int)vr[i][t * pw2 + q]), (__m512bh)zt);
        }
    const __m512 half = _mm512_set1_ps(0.5f);
    for (int i = 0; i < NK; i++) {
        __m512 sum = _mm512_mul_ps(_mm512_add_ps(acc[i][1], acc[i][2]), half), k[3];
        k[0] = _mm512_add_ps(acc[i][0], sum);
        k[1] = _mm512_mul_ps(_mm512_sub_ps(acc[i][1], acc[i][2]), half);
        k[2] = _mm512_add_ps(sum, acc[i][3]);
        for (int kx = 0; kx < 3; kx++) {
            float *d = dwt + (size_t)((r0 + i) * 3 + kx) * ld;
            _mm512_storeu_ps(d, _mm512_add_ps(_mm512_loadu_ps(d), k[kx]));
        }
    }
}

typedef void (*wino_wgrad2_fn)(const cn_conv_geom *, int, const uint32_t *, const uint32_t *, int, float *);
#define WINO_WGRAD2(NK) \
    static void wino_wgrad2_##NK(const cn_conv_geom *g, int r0, const uint32_t *vp, const uint32_t *z2, int ld, \
                                 float *dwt) { wino_wgrad_tile2(NK, g, r0, vp, z2, ld, dwt); }
WINO_WGRAD2(1) WINO_WGRAD2(2) WINO_WGRAD2(3) WINO_WGRAD2(4) WINO_WGRAD2(5) WINO_WGRAD2(6)
static const wino_wgrad2_fn wino_wgrad2_tiles[WWG_ROWS_MAX] = {
    wino_wgrad2_1, wino_wgrad2_2, wino_wgrad2_3, wino_wgrad2_4, wino_wgrad2_5, wino_wgrad2_6,
};

void cn_bf16_wino_weight_grad(const cn_conv_geom *g, const uint32_t *vp, const uint32_t *z2, int ld, float *dwt) {
    int rows = g->in_c * 3, groups = (rows + WWG_ROWS_MAX - 1) / WWG_ROWS_MAX;
    int base = rows / groups, extra = rows % groups;
    for (int m0 = 0; m0 < ld; m0 += 16)
        for (int gi = 0, r0 = 0, nk; gi < groups; gi++, r0 += nk) {
            nk = base + (gi < extra);
            wino_wgrad2_tiles[nk - 1](g, r0, vp, z2 + m0, ld, dwt + m0);
        }
}

/* src (rows, len) -> even (rows, w2), odd (rows, w2) words: even[r][c] the pair of columns 2c,
 * 2c+1 of row r, odd[r][c] that of columns 2c+1, 2c+2 (0 at or past len). */
static void pair_adjacent_rows(const float *src, int rows, int len, int w2, uint32_t *even, uint32_t *odd) {
    for (int y = 0; y < rows; y++) {
        const float *r = src + (size_t)y * len;
        uint32_t *e = even + (size_t)y * w2, *o = odd + (size_t)y * w2;
        for (int c = 0; c < w2; c += 16) {
            __mmask16 m = lanes(w2 - c);
            _mm512_mask_storeu_epi32(e + c, m, pair_adjacent(r, 2 * c, len));
            _mm512_mask_storeu_epi32(o + c, m, pair_adjacent(r + 1, 2 * c, len - 1));
        }
    }
}

void cn_bf16_pair_wino_wgrad_input(const cn_conv_geom *g, const float *v, uint32_t *vp) {
    int pw2 = cn_bf16_wino_wgrad_w2(g), rows = g->in_c * 4;
    pair_adjacent_rows(v, rows, g->hp * cn_wino_tiles(g), pw2, vp, vp + (size_t)rows * pw2);
}

void cn_bf16_pair_wgrad_input(const cn_conv_geom *g, const float *x_pad, uint32_t *xp) {
    int w2 = cn_bf16_wgrad_w2(g), rows = g->in_c * g->hp;
    pair_adjacent_rows(x_pad, rows, g->wp, w2, xp, xp + (size_t)rows * w2);
}
#endif
