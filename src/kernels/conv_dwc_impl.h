/* Depthwise 3x3 kernels vectorised over channels (kernels.h: cn_kernel_set.dwc_forward,
 * dwc_weight_grad, dwc_input_grad; images (rows, cols, ld) as cn_dwc_geom says). Included once
 * per kernel set, after it defines its vector vocabulary (vf, VL, VLOAD, VSTORE, VBCAST, VFMA,
 * VZERO, WG(name)) and DWC_PX, the output pixels per register tile. ld is a multiple of 16,
 * so of every VL.
 *
 * Each channel block of VL lanes keeps its 9 weights in registers and runs over the output
 * pixels, DWC_PX of a row at a time: every output vector costs 9 loads and 9 multiply-adds,
 * and the point-wise steps of the forward pass are applied before the one store. */

typedef int WG(dwc_vi) __attribute__((vector_size(sizeof(vf))));

/* The forward pass's point-wise steps on one output vector of lanes c0..: v + bias, then
 * v * scale + shift (scale not NULL), then relu; the float operations of dw_post. */
static inline vf WG(dwc_post)(vf v, const cn_dwc_epilogue *ep, size_t c0) {
    if (ep->bias) v = v + VLOAD(ep->bias + c0);
    if (ep->scale) v = v * VLOAD(ep->scale + c0) + VLOAD(ep->shift + c0);
    if (ep->relu) v = (vf)((WG(dwc_vi))v & (WG(dwc_vi))(v > VZERO()));
    return v;
}

/* Output pixels ox .. ox+n-1 (n <= DWC_PX) of the row whose taps start at r (ky = kx = 0, ox = 0),
 * lanes c0..: the 9 taps' sums into acc. sx: floats between output pixels' inputs. */
static inline __attribute__((always_inline)) void WG(dwc_taps)(const int n, const float *r, size_t sx, size_t tx,
                                                              size_t ty, const vf w[9], vf acc[DWC_PX]) {
    #pragma GCC unroll 8
    for (int i = 0; i < n; i++) acc[i] = VZERO();
    #pragma GCC unroll 3
    for (int ky = 0; ky < 3; ky++) {
        #pragma GCC unroll 3
        for (int kx = 0; kx < 3; kx++) {
            const float *p = r + ky * ty + kx * tx;
            #pragma GCC unroll 8
            for (int i = 0; i < n; i++) acc[i] = VFMA(w[ky * 3 + kx], VLOAD(p + i * sx), acc[i]);
        }
    }
}

static void WG(dwc_forward)(const cn_dwc_geom *g, const float *x_t, const float *w_t, const cn_dwc_epilogue *ep,
                            float *out_t) {
    size_t ld = (size_t)g->ld, row = (size_t)g->wp * ld, sx = (size_t)g->stride * ld;
    size_t tx = (size_t)g->dil * ld, ty = (size_t)g->dil * row;
    for (size_t c0 = 0; c0 < ld; c0 += VL) {
        vf w[9];
        for (int t = 0; t < 9; t++) w[t] = VLOAD(w_t + (size_t)t * ld + c0);
        for (int oy = 0; oy < g->out_h; oy++) {
            const float *r = x_t + (size_t)oy * g->stride * row + c0;
            float *o = out_t + (size_t)oy * g->out_w * ld + c0;
            vf acc[DWC_PX];
            int ox = 0;
            for (; ox + DWC_PX <= g->out_w; ox += DWC_PX) {
                WG(dwc_taps)(DWC_PX, r + ox * sx, sx, tx, ty, w, acc);
                #pragma GCC unroll 8
                for (int i = 0; i < DWC_PX; i++)
                    VSTORE(o + (ox + i) * ld, ep ? WG(dwc_post)(acc[i], ep, c0) : acc[i]);
            }
            for (; ox < g->out_w; ox++) {
                WG(dwc_taps)(1, r + ox * sx, sx, tx, ty, w, acc);
                VSTORE(o + ox * ld, ep ? WG(dwc_post)(acc[0], ep, c0) : acc[0]);
            }
        }
    }
}

static void WG(dwc_weight_grad)(const cn_dwc_geom *g, const float *x_t, const float *dy_t, float *dw_t) {
    size_t ld = (size_t)g->ld, row = (size_t)g->wp * ld, sx = (size_t)g->stride * ld;
    size_t tx = (size_t)g->dil * ld, ty = (size_t)g->dil * row;
    for (size_t c0 = 0; c0 < ld; c0 += VL) {
        vf acc[9];
        for (int t = 0; t < 9; t++) acc[t] = VZERO();
        for (int oy = 0; oy < g->out_h; oy++) {
            const float *r = x_t + (size_t)oy * g->stride * row + c0;
            const float *d = dy_t + (size_t)oy * g->out_w * ld + c0;
            for (int ox = 0; ox < g->out_w; ox++) {
                vf dv = VLOAD(d + ox * ld);
                const float *p = r + ox * sx;
                #pragma GCC unroll 3
                for (int ky = 0; ky < 3; ky++) {
                    #pragma GCC unroll 3
                    for (int kx = 0; kx < 3; kx++) acc[ky * 3 + kx] = VFMA(dv, VLOAD(p + ky * ty + kx * tx), acc[ky * 3 + kx]);
                }
            }
        }
        for (int t = 0; t < 9; t++) {
            float *q = dw_t + (size_t)t * ld + c0;
            VSTORE(q, VLOAD(q) + acc[t]);
        }
    }
}

/* Scattered output pixel by output pixel, each adding its 9 taps (9 read-modify-writes of
 * distinct input pixels; a tap-by-tap order, with short rows, measured slower). */
static void WG(dwc_input_grad)(const cn_dwc_geom *g, const float *dy_t, const float *w_t, float *dx_t) {
    size_t ld = (size_t)g->ld, row = (size_t)g->wp * ld, sx = (size_t)g->stride * ld;
    size_t tx = (size_t)g->dil * ld, ty = (size_t)g->dil * row;
    for (size_t c0 = 0; c0 < ld; c0 += VL) {
        vf w[9];
        for (int t = 0; t < 9; t++) w[t] = VLOAD(w_t + (size_t)t * ld + c0);
        for (int oy = 0; oy < g->out_h; oy++) {
            float *r = dx_t + (size_t)oy * g->stride * row + c0;
            const float *d = dy_t + (size_t)oy * g->out_w * ld + c0;
            for (int ox = 0; ox < g->out_w; ox++) {
                vf dv = VLOAD(d + ox * ld);
                float *p = r + ox * sx;
                #pragma GCC unroll 3
                for (int ky = 0; ky < 3; ky++) {
                    #pragma GCC unroll 3
                    for (int kx = 0; kx < 3; kx++) {
                        float *q = p + ky * ty + kx * tx;
                        VSTORE(q, VFMA(w[ky * 3 + kx], dv, VLOAD(q)));
                    }
                }
            }
        }
    }
}
