/* Winograd F(m,3) along rows (kernels.h), vectorised over output channels: the
 * small-map counterpart of the pixel form, written over the vector vocabulary of
 * conv_fwd_impl.h (vf, VL, VLOAD, VSTORE, VBCAST, VFMA, VZERO; CHAN_ACC_MAX; and VRELU(v):
 * v > 0 ? v : 0, NaN to 0) and
 * included after conv_chan_impl.h (WG). Defines
 *   WG(wino_channels)(g, ut, v, out_t, ld)    as cn_kernel_set.wino_channels.
 * A tile is one vector of output channels by up to 7 (F(2,3)) or 4 (F(4,3)) row tiles: with
 * more channel vectors a tile would hold fewer pixels and stream the weights (IC*3*a
 * vectors per channel vector) from L2 more often; each pixel's broadcast feeds one
 * FMA, which suits 16-float vectors (one FMA per cycle on Zen 4), not narrower ones. */
#include "kernels/kernels.h"

#define WNP_MAX 7   /* output tiles per channel tile: ALPHA * NP <= 28 accumulators */

/* v after the steps of ep (kernels.h) for the channel vector at m0. */
static inline vf WG(channel_steps)(const cn_channel_epilogue *ep, int m0, vf v) {
    if (ep->shift) v = v + VLOAD(ep->shift + m0);
    if (ep->mid_scale) v = v * VLOAD(ep->mid_scale + m0) + VLOAD(ep->mid_shift + m0);
    if (ep->relu) v = VRELU(v);
    if (ep->post_scale) v = v * VLOAD(ep->post_scale + m0) + VLOAD(ep->post_shift + m0);
    return v;
}

/* NP consecutive tiles p0 .. p0+NP-1 of the flat tile index p = oy*wv + i (they may span
 * output rows), one vector of output channels, m = ALPHA - 2 outputs per tile:
 *   M_t = sum over (ic, ky) of v[ic][t][ky row][tile] * ut[(ic*3 + ky)*ALPHA + t][oc ..]
 * then the output transform and ep's steps (ep may be NULL) into out_t rows oy*out_w + m*i
 * .. + m-1 (not past the row's end). v: at tile p0, ut, ep: at channel vector m0, out_t: at
 * its channel vector. */
INLINE void WG(wino_chan_tile)(const int ALPHA, const int NP, const cn_conv_geom *g, const float *ut, int ld,
                               const float *v, float *out_t, int p0, const cn_channel_epilogue *ep, int m0) {
    vf acc[WNP_MAX][6];
    #pragma GCC unroll 7
    for (int i = 0; i < NP; i++)
        #pragma GCC unroll 6
        for (int t = 0; t < ALPHA; t++) acc[i][t] = VZERO();
    const int wv = cn_wino_tiles(g), pv = g->hp * wv, M = ALPHA - 2;
    for (int ic = 0; ic < g->in_c; ic++)
        #pragma GCC unroll 1
        for (int ky = 0; ky < 3; ky++) {
            const float *vr = v + (size_t)ic * ALPHA * pv + ky * wv;
            const float *ur = ut + (size_t)(ic * 3 + ky) * ALPHA * ld;
            #pragma GCC unroll 6
            for (int t = 0; t < ALPHA; t++) {
                vf w = VLOAD(ur + (size_t)t * ld);
                __asm__("" : "+v"(w));   /* keeps w in a register: gcc would reload it per FMA */
                #pragma GCC unroll 7
                for (int i = 0; i < NP; i++) acc[i][t] = VFMA(VBCAST(vr[t * pv + i]), w, acc[i][t]);
            }
        }
    int oy = p0 / wv, tile = p0 % wv;
    #pragma GCC unroll 7
    for (int i = 0; i < NP; i++) {
        float *o = out_t + (size_t)(oy * g->out_w + M * tile) * ld;
        vf y[4];
        if (ALPHA == 4) {
            y[0] = acc[i][0] + acc[i][1] + acc[i][2];
            y[1] = acc[i][1] - acc[i][2] - acc[i][3];
        } else {
            vf s12 = acc[i][1] + acc[i][2], d12 = acc[i][1] - acc[i][2];
            vf s34 = acc[i][3] + acc[i][4], d34 = acc[i][3] - acc[i][4];
            y[0] = acc[i][0] + s12 + s34;
            y[1] = VFMA(VBCAST(2.0f), d34, d12);
            y[2] = VFMA(VBCAST(4.0f), s34, s12);
            y[3] = VFMA(VBCAST(8.0f), d34, d12) + acc[i][5];
        }
        #pragma GCC unroll 4
        for (int k = 0; k < M; k++)
            if (k == 0 || M * tile + k < g->out_w) VSTORE(o + (size_t)k * ld, ep ? WG(channel_steps)(ep, m0, y[k]) : y[k]);
        if (++tile == wv) { tile = 0; oy++; }
    }
}

typedef void (*WG(wino_chan_fn))(const cn_conv_geom *, const float *, int, const float *, float *, int,
                                  const cn_channel_epilogue *, int);
#define WINO_CHAN(A, NP) \
    static void WG(wino_chan_##A##_##NP)(const cn_conv_geom *g, const float *ut, int ld, const float *v, float *o, \
                                         int p0, const cn_channel_epilogue *ep, int m0) { \
        WG(wino_chan_tile)(A, NP, g, ut, ld, v, o, p0, ep, m0); }
WINO_CHAN(4, 1) WINO_CHAN(4, 2) WINO_CHAN(4, 3) WINO_CHAN(4, 4) WINO_CHAN(4, 5) WINO_CHAN(4, 6) WINO_CHAN(4, 7)
WINO_CHAN(6, 1) WINO_CHAN(6, 2) WINO_CHAN(6, 3) WINO_CHAN(6, 4)
/* [np - 1] for np <= 28 / ALPHA */
static const WG(wino_chan_fn) WG(wino2_chan_tiles)[WNP_MAX] = {
    WG(wino_chan_4_1), WG(wino_chan_4_2), WG(wino_chan_4_3), WG(wino_chan_4_4), WG(wino_chan_4_5),
    WG(wino_chan_4_6), WG(wino_chan_4_7),
};
static const WG(wino_chan_fn) WG(wino4_chan_tiles)[WNP_MAX] = {
    WG(wino_chan_6_1), WG(wino_chan_6_2), WG(wino_chan_6_3), WG(wino_chan_6_4),
};

/* out_t (out_h*out_w, ld) = conv of the transformed input v with ut: for each vector of
 * output channels, the out_h*wv tiles in near-equal groups of consecutive tiles. */
static void WG(wino_channels)(const cn_conv_geom *g, const float *ut, const float *v, float *out_t, int ld,
                              const cn_channel_epilogue *ep) {
    int a = cn_wino_alpha(g), np_max = 28 / a;
    int tiles = g->out_h * cn_wino_tiles(g), groups = (tiles + np_max - 1) / np_max;
    int base = tiles / groups, extra = tiles % groups;
    for (int m0 = 0; m0 < ld; m0 += VL)
        for (int pb = 0, p0 = 0, np; pb < groups; pb++, p0 += np) {
            np = base + (pb < extra);
            WG(wino_chan_fn) tile = a == 4 ? WG(wino2_chan_tiles)[np - 1] : WG(wino4_chan_tiles)[np - 1];
            tile(g, ut + m0, ld, v + p0, out_t + m0, p0, ep, m0);
        }
}

#undef WNP_MAX
#undef WINO_CHAN
