/* Depthwise 3x3 kernels of kernels.h (cn_kernel_set.dw3x3, dw3x3_wgrad) on one channel
 * plane prepared by cn_dw_prepare. Included once per kernel set, after it defines its
 * vector type and operations: vf, VL, VLOAD, VSTORE, VBCAST, VFMA, VZERO and WG(name).
 *
 * A row of outputs is a run of vectors: output columns ox .. ox+VL-1 of tap (ky, kx) read
 * one contiguous run of the prepared plane (stride 2: of its even or odd columns), so each
 * output vector costs 9 loads and 9 multiply-adds, with the 9 weights in registers. The
 * last vector of a row reads the plane's zero slack and is stored through a buffer. */

typedef int WG(dw_vi) __attribute__((vector_size(sizeof(vf))));

/* Offsets in the prepared plane of tap column kx (output column 0) and of the row of output
 * row oy, tap row ky. */
static inline size_t WG(dw_col)(const cn_dw_geom *g, int kx) {
    int off = kx * g->dil;
    if (g->stride == 1) return (size_t)off;
    return (size_t)(off & 1) * g->hp * g->ld + (size_t)(off >> 1);
}
static inline size_t WG(dw_row)(const cn_dw_geom *g, int oy, int ky) {
    return (size_t)(oy * g->stride + ky * g->dil) * g->ld;
}

/* The 9 taps' sum for output columns ox.. of a row (rows[ky]: tap rows, col[kx]: tap columns). */
static inline vf WG(dw_taps)(const float *const rows[3], const size_t col[3], const vf wv[9], int ox) {
    vf acc = VZERO();
    #pragma GCC unroll 3
    for (int ky = 0; ky < 3; ky++) {
        #pragma GCC unroll 3
        for (int kx = 0; kx < 3; kx++) acc = VFMA(wv[ky * 3 + kx], VLOAD(rows[ky] + col[kx] + ox), acc);
    }
    return acc;
}

static inline vf WG(dw_post)(vf v, const cn_dw_epilogue *ep, vf bias, vf scale, vf shift) {
    v = v + bias;
    if (ep->affine) v = v * scale + shift;
    if (ep->relu) v = (vf)((WG(dw_vi))v & (WG(dw_vi))(v > VZERO()));
    return v;
}

static void WG(dw3x3)(const cn_dw_geom *g, const float *p, const float *w, const cn_dw_epilogue *ep, float *out) {
    vf wv[9];
    for (int t = 0; t < 9; t++) wv[t] = VBCAST(w[t]);
    size_t col[3] = { WG(dw_col)(g, 0), WG(dw_col)(g, 1), WG(dw_col)(g, 2) };
    vf bias = VBCAST(ep->bias), scale = VBCAST(ep->scale), shift = VBCAST(ep->shift);
    int full = g->out_w / VL * VL;
    float tail[VL];
    for (int oy = 0; oy < g->out_h; oy++) {
        const float *rows[3] = { p + WG(dw_row)(g, oy, 0), p + WG(dw_row)(g, oy, 1), p + WG(dw_row)(g, oy, 2) };
        float *o = out + (size_t)oy * g->out_w;
        int ox = 0;
        for (; ox < full; ox += VL) VSTORE(o + ox, WG(dw_post)(WG(dw_taps)(rows, col, wv, ox), ep, bias, scale, shift));
        if (ox < g->out_w) {
            VSTORE(tail, WG(dw_post)(WG(dw_taps)(rows, col, wv, ox), ep, bias, scale, shift));
            memcpy(o + ox, tail, (size_t)(g->out_w - ox) * sizeof(float));
        }
    }
}

static void WG(dw3x3_wgrad)(const cn_dw_geom *g, const float *p, const float *dy, float *dw) {
    vf acc[9];
    for (int t = 0; t < 9; t++) acc[t] = VZERO();
    size_t col[3] = { WG(dw_col)(g, 0), WG(dw_col)(g, 1), WG(dw_col)(g, 2) };
    float tail[VL];
    for (int oy = 0; oy < g->out_h; oy++) {
        const float *rows[3] = { p + WG(dw_row)(g, oy, 0), p + WG(dw_row)(g, oy, 1), p + WG(dw_row)(g, oy, 2) };
        const float *d = dy + (size_t)oy * g->out_w;
        for (int ox = 0; ox < g->out_w; ox += VL) {
            vf dv;
            if (ox + VL <= g->out_w) {
                dv = VLOAD(d + ox);
            } else {   /* zero past the row's end: the slack it meets is zero too */
                memset(tail, 0, sizeof tail);
                memcpy(tail, d + ox, (size_t)(g->out_w - ox) * sizeof(float));
                dv = VLOAD(tail);
            }
            #pragma GCC unroll 3
            for (int ky = 0; ky < 3; ky++) {
                #pragma GCC unroll 3
                for (int kx = 0; kx < 3; kx++) acc[ky * 3 + kx] = VFMA(dv, VLOAD(rows[ky] + col[kx] + ox), acc[ky * 3 + kx]);
            }
        }
    }
    for (int t = 0; t < 9; t++) {
        VSTORE(tail, acc[t]);
        float s = 0.0f;
        for (int i = 0; i < VL; i++) s += tail[i];
        dw[t] += s;
    }
}
