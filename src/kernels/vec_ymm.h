/* The vector vocabulary of the templated kernels (conv_fwd_impl.h, conv_chan_impl.h,
 * conv_dw_impl.h) on 8-float ymm vectors with AVX2 + FMA: for conv_avx2.c, and for the ymm
 * channel tiles of conv_avx512.c. Included after <immintrin.h> under a target pragma that
 * enables avx2 and fma; the includer defines WG, ACC_MAX and the rest of what the kernels ask. */
#define vf __m256
#define VL 8
#define VLOAD(p) _mm256_loadu_ps(p)
#define VSTORE(p, v) _mm256_storeu_ps((p), (v))
#define VBCAST(x) _mm256_set1_ps(x)
#define VFMA(a, b, c) _mm256_fmadd_ps((a), (b), (c))
#define VZERO() _mm256_setzero_ps()
