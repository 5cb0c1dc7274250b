/* Direct convolution kernels for AVX2 + FMA (16 ymm registers, 8 floats per vector). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#pragma GCC target("avx2,fma")
#include <immintrin.h>

typedef __m256 vf;
#define VL 8
#define VLOAD(p) _mm256_loadu_ps(p)
#define VSTORE(p, v) _mm256_storeu_ps((p), (v))
#define VBCAST(x) _mm256_set1_ps(x)
#define VFMA(a, b, c) _mm256_fmadd_ps((a), (b), (c))
#define VZERO() _mm256_setzero_ps()
#define ACC_MAX 12
#define MR_MAX 6
#define KERNEL_SET cn_kernels_avx2
#define SET_NAME "avx2"
#define EPILOGUE cn_epilogue_plane_portable
#include "kernels/conv_impl.h"
#else
typedef int cn_conv_avx2_unused;
#endif
