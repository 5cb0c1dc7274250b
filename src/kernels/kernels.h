/* Hot loops over plain float arrays. Row-major; shapes in comments.
 * Each kernel is compiled for AVX-512, AVX2+FMA and generic x86-64 and picks
 * the best at run time (see CN_MULTIVERSION). Kernels know nothing of layers. */
#ifndef CN_KERNELS_H
#define CN_KERNELS_H

#if defined(__x86_64__) && !defined(CN_NO_MULTIVERSION) && !defined(__clang__)
#define CN_MULTIVERSION __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define CN_MULTIVERSION
#endif

/* C (M,N) = A (M,K) @ B (K,N), or C += ... when accumulate. */
void cn_gemm_nn(int M, int N, int K, const float *A, const float *B, float *C, int accumulate);
/* C (M,N) += A (M,K) @ B(N,K)^T. */
void cn_gemm_nt(int M, int N, int K, const float *A, const float *B, float *C);
/* C (M,N) = A(K,M)^T @ B (K,N). */
void cn_gemm_tn(int M, int N, int K, const float *A, const float *B, float *C);

/* in (C,H,W) -> col (C*k*k, OH*OW), zero padding. */
void cn_im2col(const float *in, int C, int H, int W, int k, int stride, int pad, int OH, int OW, float *col);
/* col (C*k*k, OH*OW) -> in (C,H,W), summing overlaps; `in` is overwritten. */
void cn_col2im(const float *col, int C, int H, int W, int k, int stride, int pad, int OH, int OW, float *in);

#endif
