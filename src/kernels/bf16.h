/* bf16 matrix products for mixed-precision training (--precision bf16), as PyTorch's CPU
 * autocast runs them: the operands rounded to bfloat16 (the top 16 bits of a float32,
 * round-to-nearest-even), the products summed in float32.
 *
 * bfloat16 keeps float32's 8-bit exponent and 7 of its 23 mantissa bits. A product of two
 * bf16 values has at most 16 significant bits, so it is exact in float32: the only
 * rounding besides the operands' is that of the float32 sums.
 *
 * Operands are packed in pairs along the summed dimension K, as AVX512_BF16's vdpbf16ps
 * (_mm512_dpbf16_ps) reads them: a 32-bit word holds two bf16 values, element 2j in its low
 * half and 2j+1 in its high half. K2 = ceil(K / 2) pairs; an odd K's last pair is padded
 * with a zero. Every lane of vdpbf16ps does acc += hi_a * hi_b, then acc += lo_a * lo_b
 * (Intel's pseudocode), pair after pair: cn_bf16_gemm_reference does the same in scalar
 * code (its only difference: vdpbf16ps treats denormal inputs and results as zero). */
#ifndef CN_KERNELS_BF16_H
#define CN_KERNELS_BF16_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "convnet.h"
#include "kernels/kernels.h"

/* f rounded to bfloat16, round-to-nearest-even (as PyTorch's float -> bfloat16); NaN stays a
 * (quiet) NaN; the bits of the bf16 value. */
static inline uint16_t cn_bf16_from_float(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}
static inline float cn_bf16_to_float(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}
static inline size_t cn_bf16_pairs(int k) { return ((size_t)k + 1) / 2; }
/* x (n) = x rounded to bf16 (cn_bf16_from_float), kept as float32 values: operands of the
 * direct and Winograd convolution kernels in mixed precision (layers/conv2d.c). */
void cn_bf16_round_floats(float *x, size_t n);

/* ---- Winograd F(2,3) on bf16 pairs (layers/conv2d.c under --precision bf16) ----
 * The channel form of kernels.h's Winograd (wino_channels) with the transformed input V and
 * weights U rounded to bf16 and paired along input channels: channel 2j in the HIGH half of a
 * word, 2j+1 in the low half (the other way round from cn_bf16_pack_a/b), so that vdpbf16ps
 * adds channel 2j's product first, as the float32 kernel's FMAs do. An odd channel count's last
 * pair has a zero low half. IC2 = cn_bf16_pairs(IC).
 *   v2 (IC2, a, Hp, wv) words: v2[((j*a + t)*Hp + y)*wv + i] = pair of v's channels 2j, 2j+1;
 *   ut2 (IC2*3*a, ld) words: row (j*3 + ky)*a + t = pair of ut's rows of channels 2j, 2j+1.
 * Both are formed in place over the float32 arrays (kernels.h's layouts; v2 takes the first
 * IC2*a*Hp*wv words of v, ut2 the first IC2*3*a*ld of ut). */
/* words[k] (k < n) = the pair (high half: words[hi_at + k], low: words[lo_at + k], or 0 when
 * lo_at < 0), both read as float32 and rounded to bf16; each word written after both halves of
 * it are read (in place when hi_at is 0). Denormals flush to zero (vcvtneps2bf16). */
void cn_bf16_pair_rows(uint32_t *words, size_t hi_at, ptrdiff_t lo_at, size_t n);
void cn_bf16_pair_wino_input(const cn_conv_geom *g, float *v);
void cn_bf16_pair_wino_channels(const cn_conv_geom *g, int ld, float *ut);
/* out_t (out_h*out_w, ld) as kernels.h's wino_channels (F(2,3): g->wino_m == 2), from v2 and ut2
 * above, each pair summed with vdpbf16ps into float32, then the output transform and ep's
 * steps (ep may be NULL). Needs cn_bf16_available(). */
void cn_bf16_wino_channels(const cn_conv_geom *g, const uint32_t *ut2, const uint32_t *v2, float *out_t, int ld,
                           const cn_channel_epilogue *ep);

/* The pixel form (kernels.h's wino_conv, F(2,3)) the same way: u (cn_wino_pack's blocks of
 * cn_conv_block(OC, mr_max) output channels, mr_max <= CN_BF16_WINO_MR) paired in place block by
 * block, rows (ic*3 + ky)*a + t of mr values becoming rows (j*3 + ky)*a + t of mr words at the
 * block's start; v2 as above. */
#define CN_BF16_WINO_MR 3
void cn_bf16_pair_wino_pixels(const cn_conv_geom *g, int mr_max, float *u);
void cn_bf16_wino_conv(const cn_conv_geom *g, int mr_max, const uint32_t *u2, const uint32_t *v2, float *out,
                       int ostride, const float *bias);

/* ---- Direct weight gradient on bf16 pairs of output pixels ----
 * kernels.h's weight_grad (dwt (IC*k*k, ld) += sum over the valid pixels of x_pad windows x dyt;
 * ld a multiple of 8) with the pixels of each output row paired, pixel 2q in the high half and
 * 2q+1 in the low half (an odd row's last pixel with 0), so that vdpbf16ps adds them in the
 * float32 kernel's order:
 *   xp (2, IC, Hp, W2) words, W2 = cn_bf16_wgrad_w2(g): xp[0][ic][y][c] = the pair of x_pad's
 *     columns 2c, 2c+1 of row y, xp[1][ic][y][c] that of columns 2c+1, 2c+2 (0 at or past Wp):
 *     tap kx of pixel pair q reads pair q + kx/2 of half kx % 2;
 *   dyt2 (out_h * Q, ld) words, Q = ceil(out_w / 2): row oy*Q + q = the pair of dyt's rows
 *     oy*out_w + 2q, 2q+1, formed in place over dyt. */
static inline int cn_bf16_wgrad_w2(const cn_conv_geom *g) { return g->wp / 2 + 1; }
static inline size_t cn_bf16_wgrad_x_words(const cn_conv_geom *g) { return 2 * (size_t)g->in_c * g->hp * cn_bf16_wgrad_w2(g); }
void cn_bf16_pair_wgrad_input(const cn_conv_geom *g, const float *x_pad, uint32_t *xp);
void cn_bf16_pair_wgrad_dy(const cn_conv_geom *g, int ld, float *dyt);
void cn_bf16_weight_grad(const cn_conv_geom *g, const uint32_t *xp, const uint32_t *dyt2, int ld, float *dwt);

/* ---- Winograd F(2,3) weight gradient on bf16 pairs of tiles ----
 * kernels.h's wino_weight_grad (F(2,3), ld a multiple of 16) with the flat tiles p = oy*wv + i
 * paired, tile 2q in the high half and 2q+1 in the low (an odd count's last with 0), so that
 * vdpbf16ps adds them in the float32 kernel's order:
 *   vp (2, IC*4, W2) words, W2 = cn_bf16_wino_wgrad_w2(g): each (ic, t) block of v (Hp*wv
 *     values) paired as cn_bf16_pair_wgrad_input pairs a row (even- and odd-started pairs);
 *   z2 (ceil(tiles / 2), 4, ld) words: the pairs of z's tile rows (4*ld values), in place. */
static inline int cn_bf16_wino_wgrad_w2(const cn_conv_geom *g) { return g->hp * cn_wino_tiles(g) / 2 + 1; }
static inline size_t cn_bf16_wino_wgrad_words(const cn_conv_geom *g) {
    return 2 * (size_t)g->in_c * 4 * cn_bf16_wino_wgrad_w2(g);
}
void cn_bf16_pair_wino_wgrad_input(const cn_conv_geom *g, const float *v, uint32_t *vp);
void cn_bf16_pair_wino_wgrad_dy(const cn_conv_geom *g, int ld, float *z);
void cn_bf16_wino_weight_grad(const cn_conv_geom *g, const uint32_t *vp, const uint32_t *z2, int ld, float *dwt);

/* Whether cn_bf16_gemm can run: the CPU has AVX512_BF16 and the chosen float kernel set
 * (kernels.h: cn_kernels, which cn_kernels_select forces in tests) is "avx512". */
bool cn_bf16_available(void);
/* CN_OK when cn_bf16_available(), else CN_ERR_UNSUPPORTED with one line saying what is missing. */
cn_status cn_bf16_require(void);

/* ap (M, K2) = the pairs of A (M, K), A[m][k] = a[m*sm + k*sk], rounded to bf16. */
void cn_bf16_pack_a(int M, int K, const float *a, size_t sm, size_t sk, uint32_t *ap);
/* bp (K2, N) = the pairs of B (K, N), B[k][n] = b[k*sk + n*sn], rounded to bf16. */
void cn_bf16_pack_b(int K, int N, const float *b, size_t sk, size_t sn, uint32_t *bp);

/* C (M, N; row stride ldc) = A @ B, or C += A @ B when accumulate, from ap and bp as packed
 * above, summed in float32 pair by pair in K order. Needs cn_bf16_available(). */
void cn_bf16_gemm(int M, int N, int K2, const uint32_t *ap, const uint32_t *bp, float *c, size_t ldc, int accumulate);
/* The same in scalar code, the same float operations in the same order (any CPU). */
void cn_bf16_gemm_reference(int M, int N, int K2, const uint32_t *ap, const uint32_t *bp, float *c, size_t ldc,
                            int accumulate);

#endif
