/* Winograd F(2,3) along rows (kernels.h), vectorised over output channels: the
 * small-map counterpart of the pixel form, written over the vector vocabulary of
 * conv_fwd_impl.h (vf, VL, VLOAD, VSTORE, VBCAST, VFMA, VZERO; CHAN_ACC_MAX; and VRELU(v):
 * v > 0 ? v : 0, NaN to 0) and
 * included after conv_chan_impl.h (WG). Defines
 *   WG(wino_channels)(g, ut, v, out_t, ld)    as cn_kernel_set.wino_channels.
 * A tile is one vector of output channels by up to 6 pairs of pixels: with more
 * channel vectors a tile would hold fewer pixels and stream the weights (IC*12
 * vectors per channel vector) from L2 more often; each pixel's broadcast feeds one
 * FMA, which suits 16-float vectors (one FMA per cycle on Zen 4), not narrower ones. */
#include "kernels/kernels.h"

#define WNP_MAX 7   /* output pixel pairs per tile: 28 accumulators */

/* v after the steps of ep (kernels.h) for the channel vector at m0. */
static inline vf WG(channel_steps)(const cn_channel_epilogue *ep, int m0, vf v) {
    if (ep->shift) v = v + VLOAD(ep->shift + m0);
    if (ep->relu) v = VRELU(v);
    if (ep->post_scale) v = v * VLOAD(ep->post_scale + m0) + VLOAD(ep->post_shift + m0);
    return v;
}

/* NP consecutive pairs p0 .. p0+NP-1 of the flat pair index p = oy*wv + m (they may span
 * output rows), one vector of output channels:
 *   M_t = sum over (ic, ky) of v[ic][t][ky row][pair] * ut[(ic*3 + ky)*4 + t][oc ..]
 * then the output transform and ep's steps (ep may be NULL) into out_t rows oy*out_w + 2m
 * and + 1 (not past the row's end). v: at pair p0, ut, ep: at channel vector m0, out_t: at its
 * channel vector. */
INLINE void WG(wino_chan_tile)(const int NP, const cn_conv_geom *g, const float *ut, int ld, const float *v,
                               float *out_t, int p0, const cn_channel_epilogue *ep, int m0) {
    vf acc[WNP_MAX][4];
    #pragma GCC unroll 7
    for (int i = 0; i < NP; i++)
        #pragma GCC unroll 4
        for (int t = 0; t < 4; t++) acc[i][t] = VZERO();
    const int wv = cn_wino_pairs(g), pv = g->hp * wv;
    for (int ic = 0; ic < g->in_c; ic++)
        #pragma GCC unroll 1
        for (int ky = 0; ky < 3; ky++) {
            const float *vr = v + (size_t)ic * 4 * pv + ky * wv;
            const float *ur = ut + (size_t)(ic * 3 + ky) * 4 * ld;
            #pragma GCC unroll 4
            for (int t = 0; t < 4; t++) {
                vf w = VLOAD(ur + (size_t)t * ld);
                __asm__("" : "+v"(w));   /* keeps w in a register: gcc would reload it per FMA */
                #pragma GCC unroll 7
                for (int i = 0; i < NP; i++) acc[i][t] = VFMA(VBCAST(vr[t * pv + i]), w, acc[i][t]);
            }
        }
    int oy = p0 / wv, m = p0 % wv;
    #pragma GCC unroll 7
    for (int i = 0; i < NP; i++) {
        float *o = out_t + (size_t)(oy * g->out_w + 2 * m) * ld;
        vf y0 = acc[i][0] + acc[i][1] + acc[i][2], y1 = acc[i][1] - acc[i][2] - acc[i][3];
        if (ep) y0 = WG(channel_steps)(ep, m0, y0), y1 = WG(channel_steps)(ep, m0, y1);
        VSTORE(o, y0);
        if (2 * m + 1 < g->out_w) VSTORE(o + ld, y1);
        if (++m == wv) { m = 0; oy++; }
    }
}

typedef void (*WG(wino_chan_fn))(const cn_conv_geom *, const float *, int, const float *, float *, int,
                                  const cn_channel_epilogue *, int);
#define WINO_CHAN(NP) \
    static void WG(wino_chan_##NP)(const cn_conv_geom *g, const float *ut, int ld, const float *v, float *o, \
                                   int p0, const cn_channel_epilogue *ep, int m0) { \
        WG(wino_chan_tile)(NP, g, ut, ld, v, o, p0, ep, m0); }
WINO_CHAN(1) WINO_CHAN(2) WINO_CHAN(3) WINO_CHAN(4) WINO_CHAN(5) WINO_CHAN(6) WINO_CHAN(7)
static const WG(wino_chan_fn) WG(wino_chan_tiles)[WNP_MAX] = {
    WG(wino_chan_1), WG(wino_chan_2), WG(wino_chan_3), WG(wino_chan_4), WG(wino_chan_5), WG(wino_chan_6),
    WG(wino_chan_7),
};

/* out_t (out_h*out_w, ld) = conv of the transformed input v with ut: for each vector of
 * output channels, the out_h*wv pairs in near-equal groups of consecutive pairs. */
static void WG(wino_channels)(const cn_conv_geom *g, const float *ut, const float *v, float *out_t, int ld,
                              const cn_channel_epilogue *ep) {
    int pairs = g->out_h * cn_wino_pairs(g), groups = (pairs + WNP_MAX - 1) / WNP_MAX;
    int base = pairs / groups, extra = pairs % groups;
    for (int m0 = 0; m0 < ld; m0 += VL)
        for (int pb = 0, p0 = 0, np; pb < groups; pb++, p0 += np) {
            np = base + (pb < extra);
            WG(wino_chan_tiles)[np - 1](g, ut + m0, ld, v + p0, out_t + m0, p0, ep, m0);
        }
}

#undef WNP_MAX
#undef WINO_CHAN
