/* Kernels for AVX2 + FMA (16 ymm registers, 8 floats per vector). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#pragma GCC target("avx2,fma")
#include <immintrin.h>
#include "kernels/kernels.h"
#include <string.h>

#define WG(name) name
#include "kernels/vec_ymm.h"
#define ACC_MAX 12
#define MR_MAX 6
#define SET_VAR cn_kernels_avx2
#define SET_NAME "avx2"
#include "kernels/conv_set_impl.h"
#else
typedef int cn_conv_avx2_unused;
#endif
