/* Small dense matrix products for convolution and linear layers.
 * The loops are written so the compiler vectorises the innermost (unit-stride)
 * dimension; CN_MULTIVERSION builds them for several instruction sets. */
#include "kernels/kernels.h"
#include <string.h>

/* C (M,N) = A (M,K) @ B (K,N): for each row of C, stream rows of B. Four rows of
 * C at a time so each loaded B element feeds four multiply-adds. */
CN_MULTIVERSION
void cn_gemm_nn(int M, int N, int K, const float *A, const float *B, float *C, int accumulate) {
    if (!accumulate) memset(C, 0, (size_t)M * N * sizeof *C);
    int i = 0;
    for (; i + 4 <= M; i += 4) {
        float *c0 = C + (size_t)i * N, *c1 = c0 + N, *c2 = c1 + N, *c3 = c2 + N;
        const float *a0 = A + (size_t)i * K, *a1 = a0 + K, *a2 = a1 + K, *a3 = a2 + K;
        for (int k = 0; k < K; k++) {
            const float *b = B + (size_t)k * N;
            float x0 = a0[k], x1 = a1[k], x2 = a2[k], x3 = a3[k];
            for (int j = 0; j < N; j++) {
                float bj = b[j];
                c0[j] += x0 * bj; c1[j] += x1 * bj; c2[j] += x2 * bj; c3[j] += x3 * bj;
            }
        }
    }
    for (; i < M; i++) {
        float *c = C + (size_t)i * N;
        const float *a = A + (size_t)i * K;
        for (int k = 0; k < K; k++) {
            const float *b = B + (size_t)k * N;
            float x = a[k];
            for (int j = 0; j < N; j++) c[j] += x * b[j];
        }
    }
}

/* Sum of 16 partial sums in a fixed pairwise order. */
static inline float sum16(const float *p) {
    float q[8];
    for (int l = 0; l < 8; l++) q[l] = p[l] + p[l + 8];
    return ((q[0] + q[4]) + (q[2] + q[6])) + ((q[1] + q[5]) + (q[3] + q[7]));
}

/* C (M,N) += A (M,K) @ B(N,K)^T: dot products of rows, each in 16 partial sums (so the
 * compiler vectorises them) combined in a fixed order. Four rows of A share each loaded
 * row of B; a row's result does not depend on M or on how the rows are grouped. */
CN_MULTIVERSION
void cn_gemm_nt(int M, int N, int K, const float *A, const float *B, float *C) {
    int k16 = K / 16 * 16;
    for (int i0 = 0; i0 < M; i0 += 4) {
        int rows = M - i0 < 4 ? M - i0 : 4;
        const float *a[4];
        for (int r = 0; r < 4; r++) a[r] = A + (size_t)(i0 + (r < rows ? r : 0)) * K;
        for (int j = 0; j < N; j++) {
            const float *b = B + (size_t)j * K;
            float acc[4][16] = {{0}};
            for (int k = 0; k < k16; k += 16)
                for (int r = 0; r < 4; r++)
                    for (int l = 0; l < 16; l++) acc[r][l] += a[r][k + l] * b[k + l];
            for (int r = 0; r < rows; r++) {
                float s = sum16(acc[r]);
                for (int k = k16; k < K; k++) s += a[r][k] * b[k];
                C[(size_t)(i0 + r) * N + j] += s;
            }
        }
    }
}

// y (n) += a * x
CN_MULTIVERSION
void cn_axpy(int n, float a, const float *x, float *y) {
    for (int i = 0; i < n; i++) y[i] += a * x[i];
}

/* C (M,N) = A(K,M)^T @ B (K,N). */
CN_MULTIVERSION
void cn_gemm_tn(int M, int N, int K, const float *A, const float *B, float *C) {
    memset(C, 0, (size_t)M * N * sizeof *C);
    for (int k = 0; k < K; k++) {
        const float *a = A + (size_t)k * M, *b = B + (size_t)k * N;
        for (int i = 0; i < M; i++) {
            float x = a[i];
            float *c = C + (size_t)i * N;
            for (int j = 0; j < N; j++) c[j] += x * b[j];
        }
    }
}
