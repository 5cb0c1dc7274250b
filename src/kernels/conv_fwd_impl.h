/* Register-blocked direct convolution, forward tiles (also the backward-input
 * pass), written once over a small vector vocabulary and included by one file
 * per instruction set, which defines before including:
 *   vf, VL              vector type and its width in floats
 *   VLOAD(p) VSTORE(p,v) VBCAST(x) VFMA(a,b,c)=a*b+c VZERO()
 *   ACC_MAX             accumulator registers a tile may use
 *   MR_MAX              output channels per tile: 4, 6 or 8 (packed weight layout)
 * and gets conv_forward (cn_kernel_set.conv). Tiles are plain functions of
 * compile-time sizes (always inlined into one instance per size), so the
 * accumulators live in registers. See kernels.h for the flat padded ("q") layout. */
#include "kernels/kernels.h"

#define NV_MAX 4    /* pixel vectors per tile */
#ifndef INLINE
#define INLINE static inline __attribute__((always_inline))
#endif

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

