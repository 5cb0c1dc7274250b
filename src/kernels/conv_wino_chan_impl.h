/* Winograd F(2,3) along rows (kernels.h), vectorised over output channels: the
 * small-map counterpart of the pixel form, written over the vector vocabulary of
 * conv_fwd_impl.h (vf, VL, VLOAD, VSTORE, VBCAST, VFMA, VZERO; CHAN_ACC_MAX) and
 * included after conv_chan_impl.h (WG(split_even)). Defines
 *   WG(wino_channels)(g, ut, v, out_t, ld)    as cn_kernel_set.wino_channels. */
#include "kernels/kernels.h"
#include <stdbool.h>

#define WNP_MAX 6   /* output pixel pairs per tile */
#define WMV_MAX 3   /* output-channel vectors per tile, at most */
/* used: one 16-float vector (12 pixels per tile: the weights of a tile stay in L1), or up to 3
 * narrower ones (one vector per tile would be bound by the broadcasts) */
#define WMV_USED (VL == 16 ? 1 : 3)

/* out_t rows 2i, 2i+1 (i < NP pairs of one output row; the last pair's second pixel
 * only when !last_single), MV vectors of output channels:
 *   M_t = sum over (ic, ky) of v[ic][t][ky row][pair i] * ut[(ic*3 + ky)*4 + t][oc ..]
 * then the output transform. v: at the tile's first pair, ut: at its first channel vector. */
INLINE void WG(wino_chan_tile)(const int NP, const int MV, const cn_conv_geom *g, const float *ut, int ld,
                               const float *v, float *out_t, bool last_single) {
    vf acc[WNP_MAX][4][WMV_MAX];
    #pragma GCC unroll 6
    for (int i = 0; i < NP; i++)
        #pragma GCC unroll 4
        for (int t = 0; t < 4; t++)
            #pragma GCC unroll 3
            for (int j = 0; j < MV; j++) acc[i][t][j] = VZERO();
    const int wv = cn_wino_pairs(g), pv = g->hp * wv;
    for (int ic = 0; ic < g->in_c; ic++)
        #pragma GCC unroll 1
        for (int ky = 0; ky < 3; ky++) {
            const float *vr = v + (size_t)ic * 4 * pv + ky * wv;
            const float *ur = ut + (size_t)(ic * 3 + ky) * 4 * ld;
            #pragma GCC unroll 4
            for (int t = 0; t < 4; t++) {
                vf w[WMV_MAX];
                #pragma GCC unroll 3
                for (int j = 0; j < MV; j++) {
                    w[j] = VLOAD(ur + (size_t)t * ld + j * VL);
                    __asm__("" : "+v"(w[j]));   /* keeps w[j] in a register: gcc would reload it per FMA */
                }
                #pragma GCC unroll 6
                for (int i = 0; i < NP; i++) {
                    vf a = VBCAST(vr[t * pv + i]);
                    #pragma GCC unroll 3
                    for (int j = 0; j < MV; j++) acc[i][t][j] = VFMA(a, w[j], acc[i][t][j]);
                }
            }
        }
    #pragma GCC unroll 6
    for (int i = 0; i < NP; i++)
        #pragma GCC unroll 3
        for (int j = 0; j < MV; j++) {
            VSTORE(out_t + (size_t)(2 * i) * ld + j * VL, acc[i][0][j] + acc[i][1][j] + acc[i][2][j]);
            if (i < NP - 1 || !last_single)
                VSTORE(out_t + (size_t)(2 * i + 1) * ld + j * VL, acc[i][1][j] - acc[i][2][j] - acc[i][3][j]);
        }
}

typedef void (*WG(wino_chan_fn))(const cn_conv_geom *, const float *, int, const float *, float *, bool);
#define WINO_CHAN(NP, MV) \
    static void WG(wino_chan_##NP##_##MV)(const cn_conv_geom *g, const float *ut, int ld, const float *v, float *o, \
                                          bool single) { WG(wino_chan_tile)(NP, MV, g, ut, ld, v, o, single); }
#define WINO_CHANS(NP) WINO_CHAN(NP, 1) WINO_CHAN(NP, 2) WINO_CHAN(NP, 3)
WINO_CHANS(1) WINO_CHANS(2) WINO_CHANS(3) WINO_CHANS(4) WINO_CHANS(5) WINO_CHANS(6)
#define WINO_CHAN_ROW(NP) { WG(wino_chan_##NP##_1), WG(wino_chan_##NP##_2), WG(wino_chan_##NP##_3) }
static const WG(wino_chan_fn) WG(wino_chan_tiles)[WNP_MAX][WMV_MAX] = {
    WINO_CHAN_ROW(1), WINO_CHAN_ROW(2), WINO_CHAN_ROW(3), WINO_CHAN_ROW(4), WINO_CHAN_ROW(5), WINO_CHAN_ROW(6),
};

/* out_t (out_h*out_w, ld) = conv of the transformed input v with ut: output-channel
 * vector blocks of up to WMV_MAX, each swept over each output row in near-equal groups of pairs. */
static void WG(wino_channels)(const cn_conv_geom *g, const float *ut, const float *v, float *out_t, int ld) {
    int mvectors = ld / VL, wv = cn_wino_pairs(g);
    bool odd = g->out_w % 2;
    for (int mb = 0; mb < (mvectors + WMV_USED - 1) / WMV_USED; mb++) {
        int m0, mv;
        WG(split_even)(mvectors, WMV_USED, mb, &m0, &mv);
        int np_max = CHAN_ACC_MAX / (4 * mv) < WNP_MAX ? CHAN_ACC_MAX / (4 * mv) : WNP_MAX;
        int groups = (wv + np_max - 1) / np_max, base = wv / groups, extra = wv % groups;
        for (int oy = 0; oy < g->out_h; oy++)
            for (int pb = 0, x0 = 0, np; pb < groups; pb++, x0 += np) {
                np = base + (pb < extra);
                WG(wino_chan_tiles)[np - 1][mv - 1](g, ut + m0 * VL, ld, v + (size_t)oy * wv + x0,
                                                    out_t + (size_t)(oy * g->out_w + 2 * x0) * ld + m0 * VL,
                                                    odd && x0 + np == wv);
            }
    }
}

#undef WNP_MAX
#undef WMV_MAX
#undef WMV_USED
#undef WINO_CHAN
#undef WINO_CHANS
#undef WINO_CHAN_ROW
