/* cn_bf16_gemm (bf16.h) for AVX512_BF16: vdpbf16ps adds the two products of a pair to each
 * float32 lane. A tile is up to MR rows of C times two vectors of 16 columns: 2*MR zmm
 * accumulators, per pair of K one broadcast of each row's A pair and two loads of B pairs.
 * Compiled for AVX512_BF16 here alone; called only where cn_bf16_available() says the CPU
 * has it. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#pragma GCC target("avx512f,avx512vl,avx512bw,avx512dq,avx512bf16")
#include <immintrin.h>
#include "kernels/bf16.h"

#define MR 6            /* rows of C per tile */
#define NR 32           /* columns of C per tile: two vectors */

static inline __mmask16 lanes(int n) { return n >= 16 ? 0xFFFF : n <= 0 ? 0 : (__mmask16)((1u << n) - 1); }

/* C rows [0, mr) x columns [0, min(n, 32)) of the tile at c; ap, bp at the tile's first row
 * and column. mr is a constant after inlining. */
static inline __attribute__((always_inline)) void tile(const int mr, int n, int K2, const uint32_t *ap, size_t lda,
                                                        const uint32_t *bp, size_t ldb, float *c, size_t ldc,
                                                        int accumulate) {
    __mmask16 m0 = lanes(n), m1 = lanes(n - 16);
    __m512 acc[MR][2];
    for (int r = 0; r < mr; r++) {
        acc[r][0] = accumulate ? _mm512_maskz_loadu_ps(m0, c + (size_t)r * ldc) : _mm512_setzero_ps();
        acc[r][1] = accumulate ? _mm512_maskz_loadu_ps(m1, c + (size_t)r * ldc + 16) : _mm512_setzero_ps();
    }
    for (int j = 0; j < K2; j++) {
        const uint32_t *b = bp + (size_t)j * ldb;
        __m512bh b0 = (__m512bh)_mm512_maskz_loadu_epi32(m0, b);
        __m512bh b1 = (__m512bh)_mm512_maskz_loadu_epi32(m1, b + 16);
        for (int r = 0; r < mr; r++) {
            __m512bh a = (__m512bh)_mm512_set1_epi32((int)ap[(size_t)r * lda + j]);
            acc[r][0] = _mm512_dpbf16_ps(acc[r][0], a, b0);
            acc[r][1] = _mm512_dpbf16_ps(acc[r][1], a, b1);
        }
    }
    for (int r = 0; r < mr; r++) {
        _mm512_mask_storeu_ps(c + (size_t)r * ldc, m0, acc[r][0]);
        _mm512_mask_storeu_ps(c + (size_t)r * ldc + 16, m1, acc[r][1]);
    }
}

void cn_bf16_gemm(int M, int N, int K2, const uint32_t *ap, const uint32_t *bp, float *c, size_t ldc, int accumulate) {
    for (int n0 = 0; n0 < N; n0 += NR) {
        int n = N - n0;
        for (int m0 = 0; m0 < M; m0 += MR) {
            const uint32_t *a = ap + (size_t)m0 * K2, *b = bp + n0;
            float *cc = c + (size_t)m0 * ldc + n0;
            switch (M - m0 >= MR ? MR : M - m0) {
            case 6: tile(6, n, K2, a, K2, b, N, cc, ldc, accumulate); break;
            case 5: tile(5, n, K2, a, K2, b, N, cc, ldc, accumulate); break;
            case 4: tile(4, n, K2, a, K2, b, N, cc, ldc, accumulate); break;
            case 3: tile(3, n, K2, a, K2, b, N, cc, ldc, accumulate); break;
            case 2: tile(2, n, K2, a, K2, b, N, cc, ldc, accumulate); break;
            default: tile(1, n, K2, a, K2, b, N, cc, ldc, accumulate); break;
            }
        }
    }
}
#endif
