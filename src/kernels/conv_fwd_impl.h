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
 * w: MR weights per tap (packed), x: padded image + q0, out: row i at out + i*ostride.
 * KS: the kernel size when known at compile time (1 or 3: the tap loops unroll),
 * else 0 (g->k). */
INLINE void conv_tile(const int MR, const int NV, const int KS, const cn_conv_geom *g, const float *w,
                      const float *x, float *out, int ostride) {
    vf acc[MR_MAX][NV_MAX];
    #pragma GCC unroll 16
    for (int i = 0; i < MR; i++)
        #pragma GCC unroll 4
        for (int j = 0; j < NV; j++) acc[i][j] = VZERO();
    const int plane = g->hp * g->wp, k = KS ? KS : g->k;
    for (int ic = 0; ic < g->in_c; ic++)
        #pragma GCC unroll 3
        for (int ky = 0; ky < k; ky++) {
            const float *xr = x + ic * plane + ky * g->wp;
            #pragma GCC unroll 3
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

/* One function per (kernel size class, MR, NV): tables conv_tiles[KC][MR-1][NV-1],
 * KC 0: any k, 1: k = 1, 2: k = 3. */
typedef void (*conv_tile_fn)(const cn_conv_geom *, const float *, const float *, float *, int);
#define CONV_TILE(KS, MR, NV) \
    static void conv_tile_k##KS##_##MR##_##NV(const cn_conv_geom *g, const float *w, const float *x, float *o, \
                                              int s) { conv_tile(MR, NV, KS, g, w, x, o, s); }
#define CONV_TILES(KS, MR) CONV_TILE(KS, MR, 1) CONV_TILE(KS, MR, 2) CONV_TILE(KS, MR, 3) CONV_TILE(KS, MR, 4)
#define CONV_ROW(KS, MR) { conv_tile_k##KS##_##MR##_1, conv_tile_k##KS##_##MR##_2, \
                           conv_tile_k##KS##_##MR##_3, conv_tile_k##KS##_##MR##_4 }
#if MR_MAX == 4
#define CONV_ALL(KS) CONV_TILES(KS, 1) CONV_TILES(KS, 2) CONV_TILES(KS, 3) CONV_TILES(KS, 4)
#define CONV_TABLE(KS) { CONV_ROW(KS, 1), CONV_ROW(KS, 2), CONV_ROW(KS, 3), CONV_ROW(KS, 4) }
#elif MR_MAX == 6
#define CONV_ALL(KS) CONV_TILES(KS, 1) CONV_TILES(KS, 2) CONV_TILES(KS, 3) CONV_TILES(KS, 4) \
                     CONV_TILES(KS, 5) CONV_TILES(KS, 6)
#define CONV_TABLE(KS) { CONV_ROW(KS, 1), CONV_ROW(KS, 2), CONV_ROW(KS, 3), CONV_ROW(KS, 4), \
                         CONV_ROW(KS, 5), CONV_ROW(KS, 6) }
#elif MR_MAX == 8
#define CONV_ALL(KS) CONV_TILES(KS, 1) CONV_TILES(KS, 2) CONV_TILES(KS, 3) CONV_TILES(KS, 4) \
                     CONV_TILES(KS, 5) CONV_TILES(KS, 6) CONV_TILES(KS, 7) CONV_TILES(KS, 8)
#define CONV_TABLE(KS) { CONV_ROW(KS, 1), CONV_ROW(KS, 2), CONV_ROW(KS, 3), CONV_ROW(KS, 4), \
                         CONV_ROW(KS, 5), CONV_ROW(KS, 6), CONV_ROW(KS, 7), CONV_ROW(KS, 8) }
#else
#error "MR_MAX must be 4, 6 or 8"
#endif
CONV_ALL(0) CONV_ALL(1) CONV_ALL(3)
static const conv_tile_fn conv_tiles[3][MR_MAX][NV_MAX] = { CONV_TABLE(0), CONV_TABLE(1), CONV_TABLE(3) };

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
        int kc = g->k == 1 ? 1 : g->k == 3 ? 2 : 0;
        for (int v = 0; v < vectors; v += nv_max) {
            int nv = vectors - v < nv_max ? vectors - v : nv_max;
            conv_tiles[kc][mr - 1][nv - 1](g, w, x_pad + v * VL, out + v * VL, q_stride);
        }
    }
}

