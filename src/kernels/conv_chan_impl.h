/* Register-blocked weight gradient of the direct convolution, vectorised over
 * output channels, written once over a small vector vocabulary (see
 * conv_fwd_impl.h: vf, VL, VLOAD, VSTORE, VBCAST, VFMA, VZERO, ACC_MAX) and
 * included by each instruction-set file, possibly twice with different vector
 * widths; WG(name) gives this instance's names. Defines
 *   WG(conv_weight_grad)(g, x_pad, dyt, ld, dwt)   for ld a multiple of VL. */
#include "kernels/kernels.h"

#define NK_MAX 12   /* kernel taps per tile */
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
        int nk_max = ACC_MAX / mv < NK_MAX ? ACC_MAX / mv : NK_MAX;
        for (int tb = 0; tb < (taps + nk_max - 1) / nk_max; tb++) {
            int t0, nk, offs[NK_MAX];
            WG(split_even)(taps, nk_max, tb, &t0, &nk);
            for (int i = 0; i < nk; i++) {
                int t = t0 + i, kx = t % g->k, ky = t / g->k % g->k, ic = t / (g->k * g->k);
                offs[i] = ic * plane + ky * g->wp + kx;
            }
            WG(wgrad_tiles)[nk - 1][mv - 1](g, offs, x_pad, dyt + m0 * VL, ld, dwt + (size_t)t0 * ld + m0 * VL);
        }
    }
}

#undef NK_MAX
#undef MV_MAX
#undef WGRAD_TILE
#undef WGRAD_TILES
#undef WGRAD_ROW
