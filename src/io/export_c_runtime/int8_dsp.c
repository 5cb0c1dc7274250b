/* conv2d_q, conv2d_gq and linear_q for Arm cores with the DSP extension (Cortex-M4, M7, M33...):
 * the same contracts and the same int32 sums as int8.c's (integer sums do not depend
 * on their order), with two multiply-adds per SMLAD instruction, as CMSIS-NN does.
 * `convnet export --target cortex-m4` copies them under
 *     #if defined(__ARM_FEATURE_DSP) && defined(__ARM_FEATURE_SIMD32) && !defined(MODEL_NO_DSP)
 * with int8.c's portable versions under #else. Embedded and checked as float.c says.
 * Elsewhere (the build-time check, tests/test_export_c_runtime.c) MODEL_SMLAD and
 * MODEL_SXTB16 are emulated in portable C below, so these kernels run on the host. */
#define conv2d_q conv2d_q_generic
#define conv2d_gq conv2d_gq_generic
#define linear_q linear_q_generic
#include "int8.c"
#undef conv2d_q
#undef conv2d_gq
#undef linear_q

#if defined(__ARM_FEATURE_DSP) && defined(__ARM_FEATURE_SIMD32)
/* @helper dsp_prelude */
/* Arm DSP extension through arm_acle.h: SMLAD adds the products of the two pairs of
 * signed 16-bit halves of its operands to an accumulator; SXTB16 sign-extends bytes 0
 * and 2 of a word into its two 16-bit halves. */
#include <arm_acle.h>
#include <string.h>
#define MODEL_SMLAD(a, b, acc) __smlad((a), (b), (acc))
#define MODEL_SXTB16(x) __sxtb16(x)
/* @end */
#else
#include <string.h>
static int32_t emu_half(int32_t x, int hi) { return (int16_t)(((uint32_t)x >> (hi ? 16 : 0)) & 0xffffu); }
static int32_t emu_smlad(int32_t a, int32_t b, int32_t acc)
{
    return acc + emu_half(a, 0) * emu_half(b, 0) + emu_half(a, 1) * emu_half(b, 1);
}
static int32_t emu_sxtb16(int32_t x)
{
    uint32_t lo = (uint32_t)(int32_t)(int8_t)((uint32_t)x & 0xffu) & 0xffffu;
    uint32_t hi = (uint32_t)(int32_t)(int8_t)(((uint32_t)x >> 16) & 0xffu) & 0xffffu;
    return (int32_t)(lo | hi << 16);
}
#define MODEL_SMLAD(a, b, acc) emu_smlad((a), (b), (acc))
#define MODEL_SXTB16(x) emu_sxtb16(x)
#endif

/* @helper dsp_dot */
/* Columns of n int16 values: the first n4 = n & ~3 in groups of four stored x0 x2 x1 x3
 * (COL_AT), so that the group's two words pair with SXTB16 of four packed weights (w0 w2)
 * and of the same rotated by 8 bits (w1 w3); the rest in order. */
#define COL_AT(j, n4) ((j) < (n4) ? (((j) & ~3) | (((j) & 1) << 1) | (((j) >> 1) & 1)) : (j))
/* sum over j < n of weight[j] * x[j], col holding x as above */
static int32_t dot_q(const int8_t *weight, const int16_t *col, int n)
{
    int32_t acc = 0;
    int j, n4 = n & ~3;
    for (j = 0; j < n4; j += 4) {
        uint32_t wq;
        int32_t x02, x13;
        memcpy(&wq, weight + j, 4);
        memcpy(&x02, col + j, 4);
        memcpy(&x13, col + j + 2, 4);
        acc = MODEL_SMLAD(MODEL_SXTB16((int32_t)wq), x02, acc);
        acc = MODEL_SMLAD(MODEL_SXTB16((int32_t)(wq >> 8 | wq << 24)), x13, acc);
    }
    for (; j < n; j++) acc += (int32_t)weight[j] * col[j];
    return acc;
}

/* @helper conv2d_q_dsp */
/* conv2d_q (int8.c) with SMLAD: at each conv position the input patch (c,k,k), zero
 * outside the image, goes to col (at least c*k*k values), and each output channel's
 * weights are dotted with it. */
static void conv2d_q(const int8_t *in, int8_t *qout, float *fout, const int8_t *weight, const float *mult,
                     const float *bias, int c, int h, int w, int oc, int k, int s, int p, int oh, int ow, int relu,
                     int pool, int16_t *col)
{
    int n = c * k * k, n4 = n & ~3, o, y, x, i, ky, kx, py, px;
    for (y = 0; y < oh; y++)
        for (x = 0; x < ow; x++)
            for (py = 0; py < pool; py++)
                for (px = 0; px < pool; px++) {
                    int cy = (y * pool + py) * s - p, cx = (x * pool + px) * s - p, j = 0;
                    for (i = 0; i < c; i++)
                        for (ky = 0; ky < k; ky++)
                            for (kx = 0; kx < k; kx++, j++) {
                                int iy = cy + ky, ix = cx + kx;
                                col[COL_AT(j, n4)] = (iy < 0 || iy >= h || ix < 0 || ix >= w) ? 0 : in[(i * h + iy) * w + ix];
                            }
                    for (o = 0; o < oc; o++)
                        requant(dot_q(weight + o * n, col, n), mult[o], bias[o], relu, qout, fout,
                                (o * oh + y) * ow + x, py == 0 && px == 0);
                }
}

/* @helper conv2d_gq_dsp */
/* conv2d_gq (int8.c) with SMLAD: at each conv position and for each group, the group's
 * input patch (c/groups, k, k) with taps d apart, zero outside the image, goes to col (at
 * least c/groups*k*k values), and the weights of each output channel of the group are
 * dotted with it. */
static void conv2d_gq(const int8_t *in, int8_t *qout, float *fout, const int8_t *weight, const float *mult,
                      const float *bias, int c, int h, int w, int oc, int k, int s, int p, int oh, int ow, int relu,
                      int pool, int groups, int d, int16_t *col)
{
    int cg = c / groups, og = oc / groups, n = cg * k * k, n4 = n & ~3, g, o, y, x, i, ky, kx, py, px;
    for (y = 0; y < oh; y++)
        for (x = 0; x < ow; x++)
            for (py = 0; py < pool; py++)
                for (px = 0; px < pool; px++) {
                    int cy = (y * pool + py) * s - p, cx = (x * pool + px) * s - p;
                    for (g = 0; g < groups; g++) {
                        const int8_t *src = in + g * cg * h * w;
                        int j = 0;
                        for (i = 0; i < cg; i++)
                            for (ky = 0; ky < k; ky++)
                                for (kx = 0; kx < k; kx++, j++) {
                                    int iy = cy + ky * d, ix = cx + kx * d;
                                    col[COL_AT(j, n4)] = (iy < 0 || iy >= h || ix < 0 || ix >= w) ? 0 : src[(i * h + iy) * w + ix];
                                }
                        for (o = g * og; o < (g + 1) * og; o++)
                            requant(dot_q(weight + o * n, col, n), mult[o], bias[o], relu, qout, fout,
                                    (o * oh + y) * ow + x, py == 0 && px == 0);
                    }
                }
}

/* @helper linear_q_dsp */
/* linear_q (int8.c) with SMLAD: the input goes to col (at least n values) once */
static void linear_q(const int8_t *in, int8_t *qout, float *fout, const int8_t *weight, const float *mult,
                     const float *bias, int n, int m, int relu, int16_t *col)
{
    int o, j, n4 = n & ~3;
    for (j = 0; j < n; j++) col[COL_AT(j, n4)] = in[j];
    for (o = 0; o < m; o++) requant(dot_q(weight + o * n, col, n), mult[o], bias[o], relu, qout, fout, o, 1);
}

/* @end */
/* Not copied: references every helper (see float.c). */
void (*const export_c_runtime_int8_dsp[])(void) = {
    (void (*)(void))conv2d_q, (void (*)(void))conv2d_gq, (void (*)(void))linear_q
};
