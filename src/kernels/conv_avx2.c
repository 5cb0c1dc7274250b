/* Kernels for AVX2 + FMA (16 ymm registers, 8 floats per vector). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#pragma GCC target("avx2,fma")
#include <immintrin.h>
#include "kernels/kernels.h"
#include <string.h>

#define WG(name) name
typedef __m256 vf;
#define VL 8
#define VLOAD(p) _mm256_loadu_ps(p)
#define VSTORE(p, v) _mm256_storeu_ps((p), (v))
#define VBCAST(x) _mm256_set1_ps(x)
#define VFMA(a, b, c) _mm256_fmadd_ps((a), (b), (c))
#define VZERO() _mm256_setzero_ps()
#define ACC_MAX 12
#define MR_MAX 6
#include "kernels/conv_fwd_impl.h"
#include "kernels/conv_chan_impl.h"
#include "kernels/conv_dw_impl.h"

static int wgrad_ld(int out_c) { return cn_round_up(out_c, VL); }

const cn_kernel_set cn_kernels_avx2 = {
    .name = "avx2", .vec = VL, .mr_max = MR_MAX,
    .conv = conv_forward, .wgrad_ld = wgrad_ld, .weight_grad = conv_weight_grad, .conv_channels = conv_channels,
    .epilogue = cn_epilogue_plane_portable,
    .dw3x3 = dw3x3, .dw3x3_wgrad = dw3x3_wgrad, .dw3x3_dgrad_s2 = dw3x3_dgrad_s2,
};
#else
typedef int cn_conv_avx2_unused;
#endif
