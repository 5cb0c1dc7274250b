/* Register-blocked direct-convolution kernels vectorised over output channels
 * (pixels are broadcast), written once over a small vector vocabulary (see
 * conv_fwd_impl.h: vf, VL, VLOAD, VSTORE, VBCAST, VFMA, VZERO, ACC_MAX; CHAN_ACC_MAX) and
 * included by each instruction-set file, possibly twice with different vector
 * widths; WG(name) gives this instance's names. Defines, for ld a multiple of VL:
 *   WG(conv_weight_grad)(g, x_pad, dyt, ld, dwt)   the weight gradient
 *   WG(conv_channels)(g, wt, x_pad, out_t, ld)     the forward pass, for small
 *       maps where pixel vectors (conv_fwd_impl.h) would be mostly padding. */
#include "kernels/kernels.h"

#define NK_MAX 12   /* kernel taps per tile */
#ifndef CHAN_ACC_MAX
#define CHAN_ACC_MAX ACC_MAX    /* accumulators per tile (the set may allow a few more than for conv_fwd) */
#endif
#define MV_MAX 4    /* output-channel vectors per tile */
#ifndef INLINE
#define INLINE static inline __attribute__((always_inline))
#endif

/* ---- weight-gradient tile ---------------------------------------------------
 * dwt[t][oc ..] += sum over valid pixels p=(oy,ox) of x[tap t at p] * dyt[p][oc ..]
 * for NK consecutive taps (offsets offs) and MV output-channel vectors. */
INLINE void WG(wgrad_tile)(const int NK, const int MV, const cn_conv_geom *g, const int *offs, const float *x_pad,
                       const float *dyt, int ld, float *dwt) {
    vf acc[NK_MAX][MV_MAX];
    const float *xt[NK_MAX];
    #pragma GCC unroll 16
    for (int i = 0; i < NK; i++) {
        xt[i] = x_pad + offs[i];
        #pragma GCC unroll 4
        for (int j = 0; j < MV; j++) acc[i][j] = VZERO();
    }
    const float *d = dyt;
    for (int oy = 0; oy < g->out_h; oy++) {
        int row = oy * g->wp;
        for (int ox = 0; ox < g->out_w; ox++, d += ld) {
            vf dv[MV_MAX];
            #pragma GCC unroll 4
            for (int j = 0; j < MV; j++) dv[j] = VLOAD(d + j * VL);
            #pragma GCC unroll 16
            for (int i = 0; i < NK; i++) {
                vf a = VBCAST(xt[i][row + ox]);
                #pragma GCC unroll 4
                for (int j = 0; j < MV; j++) acc[i][j] = VFMA(a, dv[j], acc[i][j]);
            }
        }
    }
    #pragma GCC unroll 16
    for (int i = 0; i < NK; i++)
        #pragma GCC unroll 4
        for (int j = 0; j < MV; j++) {
            float *p = dwt + (size_t)i * ld + j * VL;
            VSTORE(p, VLOAD(p) + acc[i][j]);
        }
}

typedef void (*WG(wgrad_tile_fn))(const cn_conv_geom *, const int *, const float *, const float *, int, float *);
#define WGRAD_TILE(NK, MV) \
    static void WG(wgrad_tile_##NK##_##MV)(const cn_conv_geom *g, const int *offs, const float *x, const float *d, \
                                           int ld, float *dw) { WG(wgrad_tile)(NK, MV, g, offs, x, d, ld, dw); }
#define WGRAD_TILES(NK) WGRAD_TILE(NK, 1) WGRAD_TILE(NK, 2) WGRAD_TILE(NK, 3) WGRAD_TILE(NK, 4)
WGRAD_TILES(1) WGRAD_TILES(2) WGRAD_TILES(3) WGRAD_TILES(4) WGRAD_TILES(5) WGRAD_TILES(6)
WGRAD_TILES(7) WGRAD_TILES(8) WGRAD_TILES(9) WGRAD_TILES(10) WGRAD_TILES(11) WGRAD_TILES(12)
#define WGRAD_ROW(NK) { WG(wgrad_tile_##NK##_1), WG(wgrad_tile_##NK##_2), WG(wgrad_tile_##NK##_3), WG(wgrad_tile_##NK##_4) }
static const WG(wgrad_tile_fn) WG(wgrad_tiles)[NK_MAX][MV_MAX] = {
    WGRAD_ROW(1), WGRAD_ROW(2), WGRAD_ROW(3), WGRAD_ROW(4), WGRAD_ROW(5), WGRAD_ROW(6),
    WGRAD_ROW(7), WGRAD_ROW(8), WGRAD_ROW(9), WGRAD_ROW(10), WGRAD_ROW(11), WGRAD_ROW(12),
};

/* n items in near-equal groups of at most cap: group g is [*start, *start + *size). */
static inline void WG(split_even)(int n, int cap, int group, int *start, int *size) {
    int groups = (n + cap - 1) / cap, base = n / groups, extra = n % groups;
    *start = group * base + (group < extra ? group : extra);
    *size = base + (group < extra);
}

/* dwt (taps, ld) += x_pad windows x dyt (pixels, ld): output-channel vector
 * blocks of up to MV_MAX, each swept over tap groups of up to NK_MAX. */
static void WG(conv_weight_grad)(const cn_conv_geom *g, const float *x_pad, const float *dyt, int ld, float *dwt) {
    int taps = g->in_c * g->k * g->k, plane = g->hp * g->wp;
    int mvectors = ld / VL;
    for (int mb = 0; mb < (mvectors + MV_MAX - 1) / MV_MAX; mb++) {
        int m0, mv;
        WG(split_even)(mvectors, MV_MAX, mb, &m0, &mv);
        int nk_max = CHAN_ACC_MAX / mv < NK_MAX ? CHAN_ACC_MAX / mv : NK_MAX;
        for (int tb = 0; tb < (taps + nk_max - 1) / nk_max; tb++) {
            int t0, nk, offs[NK_MAX];
            WG(split_even)(taps, nk_max, tb, &t0, &nk);
            /* tap t0 + i = (ic, ky, kx), stepped without divisions */
            int kx = t0 % g->k, ky = t0 / g->k % g->k, ic = t0 / (g->k * g->k);
            for (int i = 0; i < nk; i++) {
                offs[i] = ic * plane + ky * g->wp + kx;
                if (++kx == g->k) { kx = 0; if (++ky == g->k) { ky = 0; ic++; } }
            }
            WG(wgrad_tiles)[nk - 1][mv - 1](g, offs, x_pad, dyt + m0 * VL, ld, dwt + (size_t)t0 * ld + m0 * VL);
        }
    }
}

/* ---- forward tile over output channels --------------------------------------
 * out_t[i][oc ..] for i < NP consecutive pixels of one output row and MV
 * output-channel vectors: sum over taps (ic,ky,kx) of x[ic*plane + ky*wp + kx + i] * wt[tap][oc ..].
 * x: padded image at the first pixel's q, wt: (taps, ld) weights, out_t: rows of ld.
 * KS: the kernel size when known at compile time (3), else 0 (g->k). */
INLINE void WG(chan_tile)(const int NP, const int MV, const int KS, const cn_conv_geom *g, const float *wt, int ld,
                          const float *x, float *out_t) {
    vf acc[NK_MAX][MV_MAX];
    #pragma GCC unroll 16
    for (int i = 0; i < NP; i++)
        #pragma GCC unroll 4
        for (int j = 0; j < MV; j++) acc[i][j] = VZERO();
    const int plane = g->hp * g->wp, k = KS ? KS : g->k;
    for (int ic = 0; ic < g->in_c; ic++)
        #pragma GCC unroll 3
        for (int ky = 0; ky < k; ky++) {
            const float *xr = x + ic * plane + ky * g->wp;
            #pragma GCC unroll 3
            for (int kx = 0; kx < k; kx++, wt += ld) {
                vf wv[MV_MAX];
                #pragma GCC unroll 4
                for (int j = 0; j < MV; j++) wv[j] = VLOAD(wt + j * VL);
                #pragma GCC unroll 16
                for (int i = 0; i < NP; i++) {
                    vf a = VBCAST(xr[kx + i]);
                    #pragma GCC unroll 4
                    for (int j = 0; j < MV; j++) acc[i][j] = VFMA(a, wv[j], acc[i][j]);
                }
            }
        }
    #pragma GCC unroll 16
    for (int i = 0; i < NP; i++)
        #pragma GCC unroll 4
        for (int j = 0; j < MV; j++) VSTORE(out_t + (size_t)i * ld + j * VL, acc[i][j]);
}

typedef void (*WG(chan_tile_fn))(const cn_conv_geom *, const float *, int, const float *, float *);
#define CHAN_TILE(KS, NP, MV) \
    static void WG(chan_tile_k##KS##_##NP##_##MV)(const cn_conv_geom *g, const float *wt, int ld, const float *x, \
                                                  float *o) { WG(chan_tile)(NP, MV, KS, g, wt, ld, x, o); }
#define CHAN_TILES(KS, NP) CHAN_TILE(KS, NP, 1) CHAN_TILE(KS, NP, 2) CHAN_TILE(KS, NP, 3) CHAN_TILE(KS, NP, 4)
#define CHAN_ALL(KS) CHAN_TILES(KS, 1) CHAN_TILES(KS, 2) CHAN_TILES(KS, 3) CHAN_TILES(KS, 4) CHAN_TILES(KS, 5) \
    CHAN_TILES(KS, 6) CHAN_TILES(KS, 7) CHAN_TILES(KS, 8) CHAN_TILES(KS, 9) CHAN_TILES(KS, 10) CHAN_TILES(KS, 11) \
    CHAN_TILES(KS, 12)
#define CHAN_ROW(KS, NP) { WG(chan_tile_k##KS##_##NP##_1), WG(chan_tile_k##KS##_##NP##_2), \
                           WG(chan_tile_k##KS##_##NP##_3), WG(chan_tile_k##KS##_##NP##_4) }
#define CHAN_TABLE(KS) { CHAN_ROW(KS, 1), CHAN_ROW(KS, 2), CHAN_ROW(KS, 3), CHAN_ROW(KS, 4), CHAN_ROW(KS, 5), \
    CHAN_ROW(KS, 6), CHAN_ROW(KS, 7), CHAN_ROW(KS, 8), CHAN_ROW(KS, 9), CHAN_ROW(KS, 10), CHAN_ROW(KS, 11), \
    CHAN_ROW(KS, 12) }
CHAN_ALL(0) CHAN_ALL(3)
/* [0]: any kernel size, [1]: 3x3 */
static const WG(chan_tile_fn) WG(chan_tiles)[2][NK_MAX][MV_MAX] = { CHAN_TABLE(0), CHAN_TABLE(3) };

/* out_t (out_h*out_w, ld) = conv(x_pad, wt (taps, ld)): output-channel vector
 * blocks of up to MV_MAX, each swept over each output row in near-equal pixel groups. */
static void WG(conv_channels)(const cn_conv_geom *g, const float *wt, const float *x_pad, float *out_t, int ld) {
    int mvectors = ld / VL, kc = g->k == 3;
    for (int mb = 0; mb < (mvectors + MV_MAX - 1) / MV_MAX; mb++) {
        int m0, mv;
        WG(split_even)(mvectors, MV_MAX, mb, &m0, &mv);
        int np_max = CHAN_ACC_MAX / mv < NK_MAX ? CHAN_ACC_MAX / mv : NK_MAX;
        /* each row in near-equal groups (as split_even, without divisions in the loop) */
        int groups = (g->out_w + np_max - 1) / np_max, base = g->out_w / groups, extra = g->out_w % groups;
        for (int oy = 0; oy < g->out_h; oy++)
            for (int pb = 0, x0 = 0, np; pb < groups; pb++, x0 += np) {
                np = base + (pb < extra);
                WG(chan_tiles)[kc][np - 1][mv - 1](g, wt + m0 * VL, ld, x_pad + oy * g->wp + x0,
                                                  out_t + (size_t)(oy * g->out_w + x0) * ld + m0 * VL);
            }
    }
}

#undef NK_MAX
#undef MV_MAX
#undef WGRAD_TILE
#undef WGRAD_TILES
#undef WGRAD_ROW
#undef CHAN_TILE
#undef CHAN_TILES
#undef CHAN_ALL
#undef CHAN_ROW
#undef CHAN_TABLE
