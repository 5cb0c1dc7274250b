/* Direct convolution kernels for AVX-512 (32 zmm registers, 16 floats per vector). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#pragma GCC target("avx512f,avx512vl,avx512dq,avx512bw,avx2,fma")
#include <immintrin.h>

typedef __m512 vf;
#define VL 16
#define VLOAD(p) _mm512_loadu_ps(p)
#define VSTORE(p, v) _mm512_storeu_ps((p), (v))
#define VBCAST(x) _mm512_set1_ps(x)
#define VFMA(a, b, c) _mm512_fmadd_ps((a), (b), (c))
#define VZERO() _mm512_setzero_ps()
#define ACC_MAX 24
#define MR_MAX 8
#define KERNEL_SET cn_kernels_avx512
#define SET_NAME "avx512"
#include "kernels/conv_impl.h"
#else
typedef int cn_conv_avx512_unused;
#endif
