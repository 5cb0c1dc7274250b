/* Small dense matrix products for linear layers and the reference convolution.
 * Written with GCC's vector types (16 floats) so that every instruction set of
 * CN_MULTIVERSION gets register-blocked loops: the blocks of C being summed stay in
 * registers over the whole sum. Each element of C is summed in the same order whatever
 * the blocking, M, or how callers split the rows or columns, so results do not depend
 * on the kernel set, the thread count or the batch grouping. */
#include "kernels/kernels.h"
#include <string.h>

typedef float v16 __attribute__((vector_size(64)));

/* unaligned loads and stores of 16 floats (macros: a function passing v16 by value would
 * have a different ABI in the default build than in the AVX-512 clone) */
#define LOAD16(v, p) memcpy(&(v), (p), sizeof(v16))
#define STORE16(p, v) memcpy((p), &(v), sizeof(v16))

/* Rows [0, R) of C (ldc) += A (R rows of K, lda) @ B (K, N; ldb), or = when !accumulate:
 * 32 then 16 columns at a time in registers, summed over k in order; the last columns one
 * by one in the same order. */
static inline __attribute__((always_inline)) void nn_rows(const int R, int N, int K, const float *A, int lda,
                                                          const float *B, int ldb, float *C, int ldc, int accumulate) {
    int j = 0;
    for (; j + 32 <= N; j += 32) {
        v16 acc[4][2];
        for (int r = 0; r < R; r++)
            for (int h = 0; h < 2; h++) {
                acc[r][h] = (v16){0};
                if (accumulate) LOAD16(acc[r][h], C + (size_t)r * ldc + j + 16 * h);
            }
        for (int k = 0; k < K; k++) {
            v16 b0, b1;
            LOAD16(b0, B + (size_t)k * ldb + j);
            LOAD16(b1, B + (size_t)k * ldb + j + 16);
            for (int r = 0; r < R; r++) {
                float x = A[(size_t)r * lda + k];
                acc[r][0] += x * b0;
                acc[r][1] += x * b1;
            }
        }
        for (int r = 0; r < R; r++)
            for (int h = 0; h < 2; h++) STORE16(C + (size_t)r * ldc + j + 16 * h, acc[r][h]);
    }
    for (; j + 16 <= N; j += 16) {
        v16 acc[4];
        for (int r = 0; r < R; r++) {
            acc[r] = (v16){0};
            if (accumulate) LOAD16(acc[r], C + (size_t)r * ldc + j);
        }
        for (int k = 0; k < K; k++) {
            v16 b;
            LOAD16(b, B + (size_t)k * ldb + j);
            for (int r = 0; r < R; r++) acc[r] += A[(size_t)r * lda + k] * b;
        }
        for (int r = 0; r < R; r++) STORE16(C + (size_t)r * ldc + j, acc[r]);
    }
    for (; j < N; j++)
        for (int r = 0; r < R; r++) {
            float s = accumulate ? C[(size_t)r * ldc + j] : 0.0f;
            for (int k = 0; k < K; k++) s += A[(size_t)r * lda + k] * B[(size_t)k * ldb + j];
            C[(size_t)r * ldc + j] = s;
        }
}

/* C (M,N) = A (M,K) @ B (K,N): four rows of C at a time, so each loaded block of a row of B
 * feeds four rows. */
CN_MULTIVERSION
void cn_gemm_nn(int M, int N, int K, const float *A, const float *B, float *C, int accumulate) {
    int i = 0;
    for (; i + 4 <= M; i += 4) nn_rows(4, N, K, A + (size_t)i * K, K, B, N, C + (size_t)i * N, N, accumulate);
    const float *a = A + (size_t)i * K;
    float *c = C + (size_t)i * N;
    if (M - i == 3) nn_rows(3, N, K, a, K, B, N, c, N, accumulate);
    if (M - i == 2) nn_rows(2, N, K, a, K, B, N, c, N, accumulate);
    if (M - i == 1) nn_rows(1, N, K, a, K, B, N, c, N, accumulate);
}

/* Rows [0, R) of C (ldc) = (columns [0, R) of A (K rows, lda))^T @ B (K, N; ldb): the columns
 * copied, 256 values of k at a time, into rows that nn_rows reads; each block of k continues
 * the sums of the one before (nn_rows accumulating), so the order over k is unchanged. */
static inline __attribute__((always_inline)) void tn_rows(const int R, int N, int K, const float *A, int lda,
                                                          const float *B, int ldb, float *C, int ldc) {
    float at[4 * 256];
    for (int k0 = 0; k0 < K; k0 += 256) {
        int kn = K - k0 < 256 ? K - k0 : 256;
        for (int r = 0; r < R; r++)
            for (int k = 0; k < kn; k++) at[r * kn + k] = A[(size_t)(k0 + k) * lda + r];
        nn_rows(R, N, kn, at, kn, B + (size_t)k0 * ldb, ldb, C, ldc, k0 > 0);
    }
}

/* C (M,N) = A(K,M)^T @ B (K,N), with leading dimensions (row strides): four rows of C
 * (columns of A) at a time, as in cn_gemm_nn. */
CN_MULTIVERSION
void cn_gemm_tn_ld(int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C, int ldc) {
    int i = 0;
    for (; i + 4 <= M; i += 4) tn_rows(4, N, K, A + i, lda, B, ldb, C + (size_t)i * ldc, ldc);
    if (M - i == 3) tn_rows(3, N, K, A + i, lda, B, ldb, C + (size_t)i * ldc, ldc);
    if (M - i == 2) tn_rows(2, N, K, A + i, lda, B, ldb, C + (size_t)i * ldc, ldc);
    if (M - i == 1) tn_rows(1, N, K, A + i, lda, B, ldb, C + (size_t)i * ldc, ldc);
}

void cn_gemm_tn(int M, int N, int K, const float *A, const float *B, float *C) {
    cn_gemm_tn_ld(M, N, K, A, M, B, N, C, N);
}

/* Sum of 16 partial sums in a fixed pairwise order. */
static inline float sum16(const float *p) {
    float q[8];
    for (int l = 0; l < 8; l++) q[l] = p[l] + p[l + 8];
    return ((q[0] + q[4]) + (q[2] + q[6])) + ((q[1] + q[5]) + (q[3] + q[7]));
}

/* C (M,N) += A (M,K) @ B(N,K)^T: dot products of rows, each in 16 partial sums combined in a
 * fixed order (the last K % 16 terms added after, in order). Four rows of A and two of B at a
 * time share their loads; rows of A past M repeat row 0, and with N odd the last row of B is
 * read twice, neither extra result stored, so a row's result does not depend on M or on how
 * the rows are grouped. */
CN_MULTIVERSION
void cn_gemm_nt(int M, int N, int K, const float *A, const float *B, float *C) {
    int k16 = K / 16 * 16;
    for (int i0 = 0; i0 < M; i0 += 4) {
        int rows = M - i0 < 4 ? M - i0 : 4;
        const float *a[4];
        for (int r = 0; r < 4; r++) a[r] = A + (size_t)(i0 + (r < rows ? r : 0)) * K;
        for (int j0 = 0; j0 < N; j0 += 2) {
            int cols = N - j0 < 2 ? N - j0 : 2;
            const float *b[2] = {B + (size_t)j0 * K, B + (size_t)(j0 + cols - 1) * K};
            v16 acc[4][2] = {{{0}}};
            for (int k = 0; k < k16; k += 16) {
                v16 b0, b1;
                LOAD16(b0, b[0] + k);
                LOAD16(b1, b[1] + k);
                for (int r = 0; r < 4; r++) {
                    v16 x;
                    LOAD16(x, a[r] + k);
                    acc[r][0] += x * b0;
                    acc[r][1] += x * b1;
                }
            }
            for (int r = 0; r < rows; r++)
                for (int h = 0; h < cols; h++) {
                    float p[16];
                    STORE16(p, acc[r][h]);
                    float s = sum16(p);
                    for (int k = k16; k < K; k++) s += a[r][k] * b[h][k];
                    C[(size_t)(i0 + r) * N + j0 + h] += s;
                }
        }
    }
}
