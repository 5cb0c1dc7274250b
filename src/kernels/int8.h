/* int8 inference kernels: convolution (and linear, as a 1x1 convolution) with int32
 * sums and the C export's requantisation, for AVX-512 VNNI (vpdpbusd), AVX2 and any
 * CPU, one chosen at run time (cn_i8_kernels()), as kernels.h's float sets are.
 *
 * Activations are "biased" bytes: an int8 value q in [-127, 127] is stored as the
 * unsigned byte q + 128 (zero is 128), pixel-major (y, x, channel) with the channels
 * padded to a multiple of 4. vpdpbusd multiplies unsigned by signed bytes; the sum
 * over the biased bytes is the true sum plus 128 * (the sum of the weights), a
 * constant per output channel subtracted before requantising (comp below). The sums
 * are exact int32 (wrapping in between, exact at the end: the C export bounds the
 * fan-in so that the true sum fits), so every kernel set gives the same sums as the
 * export's conv2d_q, and the requantisation below is the same float arithmetic
 * (multiply, then add; no fused multiply-add), so the same bytes. */
#ifndef CN_KERNELS_INT8_H
#define CN_KERNELS_INT8_H
#include <stddef.h>
#include <stdint.h>

#define CN_I8_BLOCK 16          /* output channels per packed weight block */
#define CN_I8_ZERO 128          /* the biased byte of 0 */

/* q8 of the C export (src/io/export_c_runtime/int8.c): round half away from zero (v +- 0.5f,
 * then truncation), saturated to [-127, 127]. */
static inline int32_t cn_i8_q8(float v) {
    v = v >= 0.0f ? v + 0.5f : v - 0.5f;
    if (v > 127.0f) v = 127.0f;
    if (v < -127.0f) v = -127.0f;
    return (int32_t)v;
}

/* One convolution: in (in_h, in_w, in_cp) biased bytes, already zero-padded (128) by the
 * caller, in_cp % 4 == 0; output (out_h, out_w, out_c) with
 *   out(y, x, oc) = sum over ky, kx < k and c < in_cp of
 *                   w(oc, ky*k + kx, c) * q(in(y*stride + ky, x*stride + kx, c)).
 * The int8 output byte of (y, x, oc) goes to qout[y*q_row + x*q_pix + oc], the float
 * output to fout[y*f_row + x*f_pix + oc*f_chan]. A linear layer over n images of K
 * bytes each is in_h = out_h = 1, in_w = out_w = n, in_cp = K, k = 1. */
typedef struct {
    int in_h, in_w, in_cp;
    int k, stride;
    int out_h, out_w, out_c;
    size_t q_row, q_pix;
    size_t f_row, f_pix, f_chan;
    /* 1: a 2x2 max pool (stride 2, no padding) fused, on sets with .pool (int8 output only):
     * the byte of pooled pixel (py, px) < (out_h / 2, out_w / 2) is the largest of the four
     * of conv outputs (2py + i, 2px + j), at qout[py*q_row + px*q_pix + oc]. */
    int pool;
} cn_i8_conv_geom;

/* After the sums, per output channel oc (the C export's requant and affine_q):
 *   v = (float)(sum - comp[oc]) * mult[oc] + bias[oc];  v = v < 0 ? 0 : v when relu;
 * float output: v; int8 output: q = q8(v), then, with post_mult (a batch norm after
 * the conv, fused): v2 = (float)q * post_mult[oc] + post_shift[oc], ReLU when
 * post_relu, q = q8(v2). q8 rounds half away from zero (v +- 0.5f, then truncation)
 * and saturates to [-127, 127]. */
typedef struct {
    const int32_t *comp;
    const float *mult, *bias;
    int relu;
    const float *post_mult, *post_shift;   /* NULL: none */
    int post_relu;
} cn_i8_epilogue;

typedef struct {
    const char *name;           /* "avx512-vnni", "avx2", "generic" */
    int weight_bytes;           /* packed layout: 1 = int8 groups of 4 inputs, 2 = int16 pairs */
    int pool;                   /* conv runs cn_i8_conv_geom's fused pool */
    int pairs;                  /* cn_i8_pack repeats the weights of out_c <= 8 channels in lanes 8..15 */
    /* qout (int8 output) or fout (float output; qout NULL) from in and weights packed
     * by cn_i8_pack for this set. */
    void (*conv)(const cn_i8_conv_geom *g, const void *packed, const cn_i8_epilogue *ep, const uint8_t *in,
                 uint8_t *qout, float *fout);
    /* n input values x as biased bytes, as the generated model_predict quantises its input:
     * out[i] = q8((x[i] - mean) / std * inv_scale) + 128 (the same float operations, in order). */
    void (*quantise)(const float *x, size_t n, float mean, float std, float inv_scale, uint8_t *out);
    /* NULL, or the 3x3 patches of one plane of oh + 2 rows of wp >= ow + 2 bytes (reading up to
     * 16 bytes past its end): dst (oh, ow, 12) gets, per pixel (y, x), the bytes of rows y..y+2,
     * columns x..x+2, then 128, 128, 128. */
    void (*patches3)(const uint8_t *planes, int wp, int oh, int ow, uint8_t *dst);
} cn_i8_kernel_set;

/* The best int8 kernel set this CPU supports (chosen once). */
const cn_i8_kernel_set *cn_i8_kernels(void);
/* Forces a set by name ("avx512-vnni", "avx2", "generic") for tests and benchmarks;
 * returns 0, or -1 if unknown or unsupported by this CPU. NULL restores the automatic
 * choice. Weights packed for one set are for that set only. Not thread-safe. */
int cn_i8_kernels_select(const char *name);

/* Packed weights of out_c channels x taps x in_cp inputs: for each block of CN_I8_BLOCK
 * output channels (the last one zero-filled, or, on sets with .pairs and out_c <= 8, lanes
 * 8..15 the weights of lanes 0..7), each tap, each group of 4 inputs:
 * weight_bytes 1: 16 channels x 4 int8; weight_bytes 2: 2 pairs x 16 channels x 2 int16. */
size_t cn_i8_packed_bytes(const cn_i8_kernel_set *ks, int out_c, int taps, int in_cp);
/* packed from w (out_c, taps, in_cp) int8; comp (out_c) = 128 * the sum of each channel's weights. */
void cn_i8_pack(const cn_i8_kernel_set *ks, const int8_t *w, int out_c, int taps, int in_cp, void *packed, int32_t *comp);

/* Max pooling of biased bytes (the order of the bytes is that of the values; padding never
 * wins): in (h, w, cp) -> out byte (y, x, c) at out[y*o_row + x*o_pix + c], all cp channels. */
void cn_i8_maxpool(const uint8_t *in, int h, int w, int cp, int k, int s, int p, int oh, int ow, uint8_t *out,
                   size_t o_row, size_t o_pix);
/* Global average pooling of biased bytes as the export's gap_q: in (plane pixels, cp) ->
 * out (c bytes): q8((float)(sum of the channel's values) * rescale / (float)plane). */
void cn_i8_gap(const uint8_t *in, int plane, int cp, int c, float rescale, uint8_t *out);
/* ReLU of n biased bytes in place: max(x, 128). */
void cn_i8_relu(uint8_t *x, size_t n);

#endif
