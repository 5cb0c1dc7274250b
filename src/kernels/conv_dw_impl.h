/* Depthwise 3x3 kernels of kernels.h (cn_kernel_set.dw3x3, dw3x3_wgrad, dw3x3_dgrad_s2) on one
 * channel plane prepared by cn_dw_prepare. Included once per kernel set, after it defines its
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

/* Lanes interleaved: zip_lo(e, o) = e0 o0 e1 o1 .. of the lower halves, zip_hi of the upper. */
#if VL == 16
#define DW_ZIP_LO { 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23 }
#define DW_ZIP_HI { 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31 }
#elif VL == 8
#define DW_ZIP_LO { 0, 8, 1, 9, 2, 10, 3, 11 }
#define DW_ZIP_HI { 4, 12, 5, 13, 6, 14, 7, 15 }
#elif VL == 4
#define DW_ZIP_LO { 0, 4, 1, 5 }
#define DW_ZIP_HI { 2, 6, 3, 7 }
#else
#error "conv_dw_impl.h: no lane interleave for this VL"
#endif

/* The taps along one axis that reach input positions of parity q (0: even, 1: odd) in a
 * stride-2 input gradient (kernels.h: cn_dw_s2_grad_geom): those k with q + pad - k*dil even,
 * each with its offset into dy's prepared rows (or columns), (q + pad - k*dil) / 2 + border,
 * to which input row (column) 2j + q adds j. Returns how many (0 to 3). */
static inline int WG(dw_s2_taps)(const cn_dw_geom *g, int q, int k_of[3], int off[3]) {
    int n = 0, border = cn_dw_s2_border(g->dil);
    for (int k = 0; k < 3; k++) {
        int t = q + g->pad - k * g->dil;
        if (t & 1) continue;
        k_of[n] = k;
        off[n] = t / 2 + border;    /* t even: exact */
        n++;
    }
    return n;
}

/* One tap list of a parity class (qy, qx): the weight and the prepared row and column offsets. */
typedef struct { vf w; int row, col; } WG(dw_s2_tap);

static void WG(dw3x3_dgrad_s2)(const cn_dw_geom *g, const float *p, const float *w, float *dx) {
    int ky_of[2][3], kx_of[2][3], row_off[2][3], col_off[2][3], nky[2], nkx[2];
    for (int q = 0; q < 2; q++) {
        nky[q] = WG(dw_s2_taps)(g, q, ky_of[q], row_off[q]);
        nkx[q] = WG(dw_s2_taps)(g, q, kx_of[q], col_off[q]);
    }
    /* the taps of class (qy, qx), at taps[qy][qx][0 .. nky[qy] * nkx[qx]) */
    WG(dw_s2_tap) taps[2][2][9];
    for (int qy = 0; qy < 2; qy++)
        for (int qx = 0; qx < 2; qx++)
            for (int a = 0; a < nky[qy]; a++)
                for (int b = 0; b < nkx[qx]; b++)
                    taps[qy][qx][a * nkx[qx] + b] = (WG(dw_s2_tap)){ VBCAST(w[ky_of[qy][a] * 3 + kx_of[qx][b]]),
                                                                   row_off[qy][a], col_off[qx][b] };
    int W = g->out_w, even_cols = (W + 1) / 2;
    float tail[2 * VL];
    for (int iy = 0; iy < g->out_h; iy++) {
        int qy = iy & 1;
        const float *rows = p + (size_t)(iy >> 1) * g->ld;
        const WG(dw_s2_tap) *te = taps[qy][0], *to = taps[qy][1];
        int ne = nky[qy] * nkx[0], no = nky[qy] * nkx[1];
        float *o = dx + (size_t)iy * W;
        for (int i = 0; i < even_cols; i += VL) {
            /* even columns 2i, 2i+2, .. and odd ones 2i+1, 2i+3, .. of row iy */
            vf e = VZERO(), od = VZERO();
            for (int t = 0; t < ne; t++) e = VFMA(te[t].w, VLOAD(rows + (size_t)te[t].row * g->ld + te[t].col + i), e);
            for (int t = 0; t < no; t++) od = VFMA(to[t].w, VLOAD(rows + (size_t)to[t].row * g->ld + to[t].col + i), od);
            vf lo = __builtin_shuffle(e, od, (WG(dw_vi))DW_ZIP_LO), hi = __builtin_shuffle(e, od, (WG(dw_vi))DW_ZIP_HI);
            if (2 * i + 2 * VL <= W) {
                VSTORE(o + 2 * i, lo);
                VSTORE(o + 2 * i + VL, hi);
            } else {
                VSTORE(tail, lo);
                VSTORE(tail + VL, hi);
                memcpy(o + 2 * i, tail, (size_t)(W - 2 * i) * sizeof(float));
            }
        }
    }
}
#undef DW_ZIP_LO
#undef DW_ZIP_HI
