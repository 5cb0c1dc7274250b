/* cn_bf16_gemm and cn_bf16_wino_channels (bf16.h) for AVX512_BF16: vdpbf16ps adds the two
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
#endif
