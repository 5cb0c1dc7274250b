/* bf16 packing, the scalar reference product and the availability check (bf16.h). */
#include "kernels/bf16.h"
#include "kernels/kernels.h"
#include "core/error.h"
#include <stddef.h>

static uint32_t pair_of(float lo, float hi) {
    return (uint32_t)cn_bf16_from_float(lo) | (uint32_t)cn_bf16_from_float(hi) << 16;
}

void cn_bf16_pack_a(int M, int K, const float *a, size_t sm, size_t sk, uint32_t *ap) {
    size_t K2 = cn_bf16_pairs(K);
    for (int m = 0; m < M; m++) {
        const float *row = a + (size_t)m * sm;
        uint32_t *dst = ap + (size_t)m * K2;
        for (size_t j = 0; j < K2; j++) {
            size_t k = 2 * j;
            dst[j] = pair_of(row[k * sk], k + 1 < (size_t)K ? row[(k + 1) * sk] : 0.0f);
        }
    }
}

void cn_bf16_pack_b(int K, int N, const float *b, size_t sk, size_t sn, uint32_t *bp) {
    size_t K2 = cn_bf16_pairs(K);
    for (size_t j = 0; j < K2; j++) {
        size_t k = 2 * j;
        const float *lo = b + k * sk, *hi = b + (k + 1) * sk;
        uint32_t *dst = bp + j * (size_t)N;
        if (k + 1 < (size_t)K)
            for (int n = 0; n < N; n++) dst[n] = pair_of(lo[(size_t)n * sn], hi[(size_t)n * sn]);
        else
            for (int n = 0; n < N; n++) dst[n] = pair_of(lo[(size_t)n * sn], 0.0f);
    }
}

void cn_bf16_gemm_reference(int M, int N, int K2, const uint32_t *ap, const uint32_t *bp, float *c, size_t ldc,
                            int accumulate) {
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
            float acc = accumulate ? c[(size_t)m * ldc + n] : 0.0f;
            for (int j = 0; j < K2; j++) {
                uint32_t a = ap[(size_t)m * K2 + j], b = bp[(size_t)j * N + n];
                /* each product is exact in float32; the sums round, high half first */
                float hi = cn_bf16_to_float((uint16_t)(a >> 16)) * cn_bf16_to_float((uint16_t)(b >> 16));
                float lo = cn_bf16_to_float((uint16_t)a) * cn_bf16_to_float((uint16_t)b);
                acc += hi;
                acc += lo;
            }
            c[(size_t)m * ldc + n] = acc;
        }
}

/* Branch-free, so that it vectorises: NaN stays a quiet NaN, the rest rounds as cn_bf16_from_float. */
CN_MULTIVERSION
void cn_bf16_round_floats(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &x[i], sizeof u);
        uint32_t r = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
        u = (u & 0x7fffffffu) > 0x7f800000u ? (u | 0x00400000u) & 0xffff0000u : r;
        memcpy(&x[i], &u, sizeof u);
    }
}

/* The bf16 bits of the float32 with bits u (cn_bf16_from_float on bits). */
static inline uint32_t bf16_bits(uint32_t u) {
    if ((u & 0x7fffffffu) > 0x7f800000u) return (u >> 16) | 0x40u;
    return (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
}

/* In place, block by block in increasing order: block b2 = j*blocks + x of the paired array
 * is written from float blocks 2j*blocks + x and (2j+1)*blocks + x, which are at or after
 * it; every float block before them was read at an earlier step. */
static void pair_blocks(float *f, int channels, size_t blocks, size_t block) {
    uint32_t *w = (uint32_t *)f;
    size_t pairs = cn_bf16_pairs(channels);
    for (size_t j = 0; j < pairs; j++)
        for (size_t x = 0; x < blocks; x++) {
            size_t hi = (2 * j * blocks + x) * block, lo = ((2 * j + 1) * blocks + x) * block;
            cn_bf16_pair_rows(w + (j * blocks + x) * block, hi - (j * blocks + x) * block,
                      2 * j + 1 < (size_t)channels ? (ptrdiff_t)(lo - (j * blocks + x) * block) : -1, block);
        }
}

void cn_bf16_pair_wino_pixels(const cn_conv_geom *g, int mr_max, float *u) {
    int a = cn_wino_alpha(g), blocks = (g->out_c + mr_max - 1) / mr_max;
    for (int b = 0; b < blocks; b++) {
        int oc0, mr;
        cn_conv_block(g->out_c, mr_max, b, &oc0, &mr);
        pair_blocks(u + (size_t)oc0 * g->in_c * 3 * a, g->in_c, (size_t)3 * a, (size_t)mr);
    }
}

void cn_bf16_pair_wino_wgrad_dy(const cn_conv_geom *g, int ld, float *z) {
    uint32_t *w = (uint32_t *)z;
    size_t row = (size_t)4 * ld, tiles = (size_t)g->out_h * cn_wino_tiles(g);
    for (size_t q = 0; q < (tiles + 1) / 2; q++)
        cn_bf16_pair_rows(w + q * row, q * row, 2 * q + 1 < tiles ? (ptrdiff_t)((q + 1) * row) : -1, row);
}

void cn_bf16_pair_wgrad_dy(const cn_conv_geom *g, int ld, float *dyt) {
    uint32_t *w = (uint32_t *)dyt;
    int q2 = (g->out_w + 1) / 2;
    for (int oy = 0; oy < g->out_h; oy++)
        for (int q = 0; q < q2; q++) {
            size_t dst = ((size_t)oy * q2 + q) * ld, hi = ((size_t)oy * g->out_w + 2 * q) * ld;
            cn_bf16_pair_rows(w + dst, hi - dst, 2 * q + 1 < g->out_w ? (ptrdiff_t)(hi + ld - dst) : -1, (size_t)ld);
        }
}

void cn_bf16_pair_wino_input(const cn_conv_geom *g, float *v) {
    pair_blocks(v, g->in_c, (size_t)cn_wino_alpha(g), (size_t)g->hp * cn_wino_tiles(g));
}

void cn_bf16_pair_wino_channels(const cn_conv_geom *g, int ld, float *ut) {
    pair_blocks(ut, g->in_c, (size_t)3 * cn_wino_alpha(g), (size_t)ld);
}

bool cn_bf16_available(void) {
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512bf16") && !strcmp(cn_kernels()->name, "avx512");
#else
    return false;
#endif
}

cn_status cn_bf16_require(void) {
    if (cn_bf16_available()) return CN_OK;
    if (strcmp(cn_kernels()->name, "avx512"))
        return cn_fail(CN_ERR_UNSUPPORTED, "--precision bf16: needs the avx512 kernel set with AVX512_BF16 (vdpbf16ps), "
                       "but the %s kernel set is in use; use --precision fp32", cn_kernels()->name);
    return cn_fail(CN_ERR_UNSUPPORTED, "--precision bf16: this CPU lacks AVX512_BF16 (vdpbf16ps); use --precision fp32");
}

#if !(defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__))
/* Scalar versions of bf16_avx512.c's pairing (never called: cn_bf16_available() is false). */
static inline uint32_t bits_of(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* words[k] (k < n) = the pair (hi: words[hi_at + k], lo: words[lo_at + k] or 0 when lo_at < 0),
 * read as float32 bits, rounded; word k is written after both halves are read, so words may be
 * hi's first word (in place). */
void cn_bf16_pair_rows(uint32_t *words, size_t hi_at, ptrdiff_t lo_at, size_t n) {
    for (size_t k = 0; k < n; k++) {
        uint32_t hi = bf16_bits(words[hi_at + k]), lo = lo_at >= 0 ? bf16_bits(words[(size_t)lo_at + k]) : 0;
        words[k] = hi << 16 | lo;
    }
}

void cn_bf16_pair_wgrad_input(const cn_conv_geom *g, const float *x_pad, uint32_t *xp) {
    int w2 = cn_bf16_wgrad_w2(g), wp = g->wp;
    size_t odd = (size_t)g->in_c * g->hp * w2;
    for (int ic = 0; ic < g->in_c; ic++)
        for (int y = 0; y < g->hp; y++) {
            const float *r = x_pad + ((size_t)ic * g->hp + y) * wp;
            uint32_t *e = xp + ((size_t)ic * g->hp + y) * w2, *o = e + odd;
            for (int c = 0; c < w2; c++) {
                int c0 = 2 * c;   /* columns at or past wp are 0 */
                uint32_t x0 = c0 < wp ? bits_of(r[c0]) : 0, x1 = c0 + 1 < wp ? bits_of(r[c0 + 1]) : 0;
                uint32_t x2 = c0 + 2 < wp ? bits_of(r[c0 + 2]) : 0;
                e[c] = bf16_bits(x0) << 16 | bf16_bits(x1);
                o[c] = bf16_bits(x1) << 16 | bf16_bits(x2);
            }
        }
}

#endif

#if !(defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__))
void cn_bf16_gemm(int M, int N, int K2, const uint32_t *ap, const uint32_t *bp, float *c, size_t ldc, int accumulate) {
    cn_bf16_gemm_reference(M, N, K2, ap, bp, c, ldc, accumulate);   /* never called: cn_bf16_available() is false */
}
void cn_bf16_wino_channels(const cn_conv_geom *g, const uint32_t *ut2, const uint32_t *v2, float *out_t, int ld,
                           const cn_channel_epilogue *ep) {
    (void)g; (void)ut2; (void)v2; (void)out_t; (void)ld; (void)ep;   /* never called: cn_bf16_available() is false */
}
void cn_bf16_wino_conv(const cn_conv_geom *g, int mr_max, const uint32_t *u2, const uint32_t *v2, float *out,
                       int ostride, const float *bias) {
    (void)g; (void)mr_max; (void)u2; (void)v2; (void)out; (void)ostride; (void)bias;   /* never called */
}
void cn_bf16_weight_grad(const cn_conv_geom *g, const uint32_t *xp, const uint32_t *dyt2, int ld, float *dwt) {
    (void)g; (void)xp; (void)dyt2; (void)ld; (void)dwt;   /* never called */
}
void cn_bf16_wino_weight_grad(const cn_conv_geom *g, const uint32_t *vp, const uint32_t *z2, int ld, float *dwt) {
    (void)g; (void)vp; (void)z2; (void)ld; (void)dwt;   /* never called */
}
void cn_bf16_pair_wino_wgrad_input(const cn_conv_geom *g, const float *v, uint32_t *vp) {
    (void)g; (void)v; (void)vp;   /* never called */
}
#endif
