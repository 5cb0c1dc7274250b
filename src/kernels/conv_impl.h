/* Register-blocked direct convolution kernels, written once over a small
 * vector vocabulary and included by one file per instruction set, which
 * defines before including:
 *   vf, VL              vector type and its width in floats
 *   VLOAD(p) VSTORE(p,v) VBCAST(x) VFMA(a,b,c)=a*b+c VZERO()
 *   ACC_MAX             accumulator registers a tile may use
 *   MR_MAX              output channels per forward tile: 4, 6 or 8 (packed weight layout)
 *   KERNEL_SET          name of the cn_kernel_set to define, SET_NAME its string
 *   EPILOGUE            the set's cn_epilogue_plane function
 * Tiles are plain functions of compile-time sizes (always inlined into one
 * instance per size), so the accumulators live in registers.
 * See kernels.h for the flat padded ("q") layout. */
#include "kernels/kernels.h"

#define NV_MAX 4    /* pixel vectors per forward tile */
#define NK_MAX 12   /* kernel taps per weight-gradient tile */
#define MV_MAX 4    /* output-channel vectors per weight-gradient tile */
#define INLINE static inline __attribute__((always_inline))

/* ---- forward (and backward-input) tile --------------------------------------
 * out[i][q0 + j*VL ..] for i < MR channels, j < NV vectors:
 *   sum over taps (ic,ky,kx) of w[tap][i] * x[ic*plane + ky*wp + kx + q0 + j*VL ..]
 * w: MR weights per tap (packed), x: padded image + q0, out: row i at out + i*ostride. */
INLINE void conv_tile(const int MR, const int NV, const cn_conv_geom *g, const float *w, const float *x,
                      float *out, int ostride) {
    vf acc[MR_MAX][NV_MAX];
    #pragma GCC unroll 16
    for (int i = 0; i < MR; i++)
        #pragma GCC unroll 4
        for (int j = 0; j < NV; j++) acc[i][j] = VZERO();
    const int plane = g->hp * g->wp, k = g->k;
    for (int ic = 0; ic < g->in_c; ic++)
        for (int ky = 0; ky < k; ky++) {
            const float *xr = x + ic * plane + ky * g->wp;
            for (int kx = 0; kx < k; kx++, w += MR) {
                vf b[NV_MAX];
                #pragma GCC unroll 4
                for (int j = 0; j < NV; j++) b[j] = VLOAD(xr + kx + j * VL);
                #pragma GCC unroll 16
                for (int i = 0; i < MR; i++) {
                    vf a = VBCAST(w[i]);
                    #pragma GCC unroll 4
                    for (int j = 0; j < NV; j++) acc[i][j] = VFMA(a, b[j], acc[i][j]);
                }
            }
        }
    #pragma GCC unroll 16
    for (int i = 0; i < MR; i++)
        #pragma GCC unroll 4
        for (int j = 0; j < NV; j++) VSTORE(out + i * ostride + j * VL, acc[i][j]);
}

typedef void (*conv_tile_fn)(const cn_conv_geom *, const float *, const float *, float *, int);
#define CONV_TILE(MR, NV) \
    static void conv_tile_##MR##_##NV(const cn_conv_geom *g, const float *w, const float *x, float *o, int s) { \
        conv_tile(MR, NV, g, w, x, o, s); }
#define CONV_TILES(MR) CONV_TILE(MR, 1) CONV_TILE(MR, 2) CONV_TILE(MR, 3) CONV_TILE(MR, 4)
CONV_TILES(1) CONV_TILES(2) CONV_TILES(3) CONV_TILES(4)
#if MR_MAX >= 6
CONV_TILES(5) CONV_TILES(6)
#endif
#if MR_MAX >= 8
CONV_TILES(7) CONV_TILES(8)
#endif
#define CONV_ROW(MR) { conv_tile_##MR##_1, conv_tile_##MR##_2, conv_tile_##MR##_3, conv_tile_##MR##_4 }
static const conv_tile_fn conv_tiles[MR_MAX][NV_MAX] = {
    CONV_ROW(1), CONV_ROW(2), CONV_ROW(3), CONV_ROW(4),
#if MR_MAX >= 6
    CONV_ROW(5), CONV_ROW(6),
#endif
#if MR_MAX >= 8
    CONV_ROW(7), CONV_ROW(8),
#endif
};

/* out_q (OC, q_stride) = conv(x_pad, packed): output-channel blocks of up to
 * MR_MAX, each swept over the pixel vectors in groups of up to NV_MAX. */
static void conv_forward(const cn_conv_geom *g, const float *packed, const float *x_pad, float *out_q) {
    int taps = g->in_c * g->k * g->k, q_stride = cn_conv_q_stride(g);
    int vectors = (g->out_h * g->wp + VL - 1) / VL;
    int blocks = (g->out_c + MR_MAX - 1) / MR_MAX;
    for (int b = 0; b < blocks; b++) {
        int oc0, mr;
        cn_conv_block(g->out_c, MR_MAX, b, &oc0, &mr);
        int nv_max = ACC_MAX / mr < NV_MAX ? ACC_MAX / mr : NV_MAX;
        const float *w = packed + (size_t)oc0 * taps;
        float *out = out_q + (size_t)oc0 * q_stride;
        for (int v = 0; v < vectors; v += nv_max) {
            int nv = vectors - v < nv_max ? vectors - v : nv_max;
            conv_tiles[mr - 1][nv - 1](g, w, x_pad + v * VL, out + v * VL, q_stride);
        }
    }
}

/* ---- weight-gradient tile ---------------------------------------------------
 * dwt[t][oc ..] += sum over valid pixels p=(oy,ox) of x[tap t at p] * dyt[p][oc ..]
 * for NK consecutive taps (offsets offs) and MV output-channel vectors. */
INLINE void wgrad_tile(const int NK, const int MV, const cn_conv_geom *g, const int *offs, const float *x_pad,
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

typedef void (*wgrad_tile_fn)(const cn_conv_geom *, const int *, const float *, const float *, int, float *);
#define WGRAD_TILE(NK, MV) \
    static void wgrad_tile_##NK##_##MV(const cn_conv_geom *g, const int *offs, const float *x, const float *d, \
                                       int ld, float *dw) { wgrad_tile(NK, MV, g, offs, x, d, ld, dw); }
#define WGRAD_TILES(NK) WGRAD_TILE(NK, 1) WGRAD_TILE(NK, 2) WGRAD_TILE(NK, 3) WGRAD_TILE(NK, 4)
WGRAD_TILES(1) WGRAD_TILES(2) WGRAD_TILES(3) WGRAD_TILES(4) WGRAD_TILES(5) WGRAD_TILES(6)
WGRAD_TILES(7) WGRAD_TILES(8) WGRAD_TILES(9) WGRAD_TILES(10) WGRAD_TILES(11) WGRAD_TILES(12)
#define WGRAD_ROW(NK) { wgrad_tile_##NK##_1, wgrad_tile_##NK##_2, wgrad_tile_##NK##_3, wgrad_tile_##NK##_4 }
static const wgrad_tile_fn wgrad_tiles[NK_MAX][MV_MAX] = {
    WGRAD_ROW(1), WGRAD_ROW(2), WGRAD_ROW(3), WGRAD_ROW(4), WGRAD_ROW(5), WGRAD_ROW(6),
    WGRAD_ROW(7), WGRAD_ROW(8), WGRAD_ROW(9), WGRAD_ROW(10), WGRAD_ROW(11), WGRAD_ROW(12),
};

/* n items in near-equal groups of at most cap: group g is [*start, *start + *size). */
static void split_even(int n, int cap, int group, int *start, int *size) {
    int groups = (n + cap - 1) / cap, base = n / groups, extra = n % groups;
    *start = group * base + (group < extra ? group : extra);
    *size = base + (group < extra);
}

/* dwt (taps, ld) += x_pad windows x dyt (pixels, ld): output-channel vector
 * blocks of up to MV_MAX, each swept over tap groups of up to NK_MAX. */
static void conv_weight_grad(const cn_conv_geom *g, const float *x_pad, const float *dyt, float *dwt) {
    int taps = g->in_c * g->k * g->k, ld = cn_round_up(g->out_c, VL), plane = g->hp * g->wp;
    int mvectors = ld / VL;
    for (int mb = 0; mb < (mvectors + MV_MAX - 1) / MV_MAX; mb++) {
        int m0, mv;
        split_even(mvectors, MV_MAX, mb, &m0, &mv);
        int nk_max = ACC_MAX / mv < NK_MAX ? ACC_MAX / mv : NK_MAX;
        for (int tb = 0; tb < (taps + nk_max - 1) / nk_max; tb++) {
            int t0, nk, offs[NK_MAX];
            split_even(taps, nk_max, tb, &t0, &nk);
            for (int i = 0; i < nk; i++) {
                int t = t0 + i, kx = t % g->k, ky = t / g->k % g->k, ic = t / (g->k * g->k);
                offs[i] = ic * plane + ky * g->wp + kx;
            }
            wgrad_tiles[nk - 1][mv - 1](g, offs, x_pad, dyt + m0 * VL, ld, dwt + (size_t)t0 * ld + m0 * VL);
        }
    }
}

const cn_kernel_set KERNEL_SET = {
    .name = SET_NAME, .vec = VL, .mr_max = MR_MAX,
    .conv = conv_forward, .weight_grad = conv_weight_grad, .epilogue = EPILOGUE,
};
