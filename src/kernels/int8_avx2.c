/* int8 convolution for AVX2 (int8.h): no vpdpbusd, and vpmaddubsw would saturate the
 * int16 sum of two biased products (255 * 127 * 2 > 32767), so the weights are packed
 * as int16 pairs and vpmaddwd sums two exact products per int32 lane: a pair of input
 * bytes, zero-extended and broadcast, times 8 output channels' weight pairs. A tile is
 * up to MR consecutive output pixels of one row times one block of 16 output channels
 * (two ymm halves). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#pragma GCC target("avx2,fma")
#include <immintrin.h>
#include <string.h>
#include "kernels/int8.h"

#define MR 4

static inline __m256i q8v(__m256 v) {
    __m256 ge = _mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_GE_OQ);
    v = _mm256_add_ps(v, _mm256_blendv_ps(_mm256_set1_ps(-0.5f), _mm256_set1_ps(0.5f), ge));
    v = _mm256_min_ps(_mm256_max_ps(v, _mm256_set1_ps(-127.0f)), _mm256_set1_ps(127.0f));
    return _mm256_cvttps_epi32(v);
}

static inline __m256 relu_v(__m256 v) {
    return _mm256_blendv_ps(v, _mm256_setzero_ps(), _mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_LT_OQ));
}

/* The epilogue (int8.h) of 8 channels oc0 .. oc0+n-1 (n <= 8) of output pixel (y, x). */
static inline void store(const cn_i8_conv_geom *g, const cn_i8_epilogue *ep, __m256i acc, int y, int x, int oc0,
                         int n, uint8_t *qout, float *fout) {
    int32_t comp[8] = {0};
    float mult[8] = {0}, bias[8] = {0}, pm[8] = {0}, ps[8] = {0}, v8[8];
    int32_t q8s[8];
    for (int i = 0; i < n; i++) {
        comp[i] = ep->comp[oc0 + i]; mult[i] = ep->mult[oc0 + i]; bias[i] = ep->bias[oc0 + i];
        if (ep->post_mult) { pm[i] = ep->post_mult[oc0 + i]; ps[i] = ep->post_shift[oc0 + i]; }
    }
    __m256 v = _mm256_cvtepi32_ps(_mm256_sub_epi32(acc, _mm256_loadu_si256((const __m256i *)comp)));
    v = _mm256_add_ps(_mm256_mul_ps(v, _mm256_loadu_ps(mult)), _mm256_loadu_ps(bias));
    if (ep->relu) v = relu_v(v);
    if (!qout) {
        _mm256_storeu_ps(v8, v);
        for (int i = 0; i < n; i++) fout[y * g->f_row + x * g->f_pix + (size_t)(oc0 + i) * g->f_chan] = v8[i];
        return;
    }
    __m256i q = q8v(v);
    if (ep->post_mult) {
        __m256 v2 = _mm256_add_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(q), _mm256_loadu_ps(pm)), _mm256_loadu_ps(ps));
        if (ep->post_relu) v2 = relu_v(v2);
        q = q8v(v2);
    }
    _mm256_storeu_si256((__m256i *)q8s, q);
    uint8_t *o = qout + y * g->q_row + x * g->q_pix + oc0;
    for (int i = 0; i < n; i++) o[i] = (uint8_t)(q8s[i] + CN_I8_ZERO);
}

/* Two input bytes at p, zero-extended to int16 and broadcast as a pair to every lane. */
static inline __m256i pair(const uint8_t *p) {
    uint16_t b;
    memcpy(&b, p, 2);
    return _mm256_set1_epi32((int32_t)((b & 0xffu) | (uint32_t)(b & 0xff00u) << 8));
}

static inline __attribute__((always_inline)) void tile(const cn_i8_conv_geom *g, const int16_t *w,
                                                       const cn_i8_epilogue *ep, const uint8_t *in, int y, int x0,
                                                       int oc0, int mr, uint8_t *qout, float *fout) {
    __m256i acc[MR][2];
    for (int j = 0; j < mr; j++) { acc[j][0] = _mm256_setzero_si256(); acc[j][1] = _mm256_setzero_si256(); }
    int groups = g->in_cp / 4, s = g->stride;
    size_t step = (size_t)s * g->in_cp;
    for (int ky = 0; ky < g->k; ky++)
        for (int kx = 0; kx < g->k; kx++) {
            const uint8_t *p = in + ((size_t)(y * s + ky) * g->in_w + (size_t)x0 * s + kx) * g->in_cp;
            const int16_t *wt = w + (size_t)(ky * g->k + kx) * groups * 64;
            for (int gi = 0; gi < groups * 2; gi++, p += 2, wt += 32) {   /* pairs of inputs */
                __m256i w0 = _mm256_loadu_si256((const __m256i *)wt), w1 = _mm256_loadu_si256((const __m256i *)(wt + 16));
                for (int j = 0; j < mr; j++) {
                    __m256i a = pair(p + j * step);
                    acc[j][0] = _mm256_add_epi32(acc[j][0], _mm256_madd_epi16(a, w0));
                    acc[j][1] = _mm256_add_epi32(acc[j][1], _mm256_madd_epi16(a, w1));
                }
            }
        }
    int n = g->out_c - oc0;
    for (int j = 0; j < mr; j++) {
        store(g, ep, acc[j][0], y, x0 + j, oc0, n < 8 ? n : 8, qout, fout);
        if (n > 8) store(g, ep, acc[j][1], y, x0 + j, oc0 + 8, n - 8 < 8 ? n - 8 : 8, qout, fout);
    }
}

static void conv(const cn_i8_conv_geom *g, const void *packed, const cn_i8_epilogue *ep, const uint8_t *in,
                 uint8_t *qout, float *fout) {
    int blocks = (g->out_c + CN_I8_BLOCK - 1) / CN_I8_BLOCK;
    size_t bstride = (size_t)g->k * g->k * g->in_cp * CN_I8_BLOCK;   /* int16 elements */
    for (int b = 0; b < blocks; b++) {
        const int16_t *w = (const int16_t *)packed + (size_t)b * bstride;
        for (int y = 0; y < g->out_h; y++)
            for (int x = 0; x < g->out_w; x += MR) {
                int mr = g->out_w - x >= MR ? MR : g->out_w - x, oc0 = b * CN_I8_BLOCK;
                switch (mr) {
                case 1: tile(g, w, ep, in, y, x, oc0, 1, qout, fout); break;
                case 2: tile(g, w, ep, in, y, x, oc0, 2, qout, fout); break;
                case 3: tile(g, w, ep, in, y, x, oc0, 3, qout, fout); break;
                default: tile(g, w, ep, in, y, x, oc0, MR, qout, fout); break;
                }
            }
    }
}

static void quantise(const float *x, size_t n, float mean, float std, float inv_scale, uint8_t *out) {
    __m256 m = _mm256_set1_ps(mean), sd = _mm256_set1_ps(std), inv = _mm256_set1_ps(inv_scale);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_mul_ps(_mm256_div_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), m), sd), inv);
        __m256i q = _mm256_add_epi32(q8v(v), _mm256_set1_epi32(CN_I8_ZERO));
        __m128i w = _mm_packus_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
        _mm_storel_epi64((__m128i *)(out + i), _mm_packus_epi16(w, w));
    }
    for (; i < n; i++) out[i] = (uint8_t)(cn_i8_q8((x[i] - mean) / std * inv_scale) + CN_I8_ZERO);
}

const cn_i8_kernel_set cn_i8_kernels_avx2 = {.name = "avx2", .weight_bytes = 2, .conv = conv, .quantise = quantise};
#else
typedef int cn_int8_avx2_unused;
#endif
