/* bf16 packing, the scalar reference product and the availability check (bf16.h). */
#include "kernels/bf16.h"
#include "kernels/kernels.h"
#include "core/error.h"

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
void cn_bf16_gemm(int M, int N, int K2, const uint32_t *ap, const uint32_t *bp, float *c, size_t ldc, int accumulate) {
    cn_bf16_gemm_reference(M, N, K2, ap, bp, c, ldc, accumulate);   /* never called: cn_bf16_available() is false */
}
#endif
