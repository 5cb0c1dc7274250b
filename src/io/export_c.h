/* Export of a model as freestanding C source: DIR/model.h and DIR/model.c with
 *
 *     int model_predict(const float in[MODEL_INPUT_SIZE], float out[MODEL_NUM_CLASSES]);
 *     int model_predict_u8(const unsigned char in[MODEL_INPUT_SIZE], float out[MODEL_NUM_CLASSES]);
 *
 * `in` holds raw pixel intensities in [0, 1] (C x H x W, 28*28 for MNIST), or
 * 0..255 for the _u8 form, which reads pixel / 255.0f and so gives the same result
 * for the same image without a float copy of it; the normalisation
 * (x - mean) / std happens inside. `out` receives the model's own
 * class scores (log-probabilities for models ending in log_softmax, logits
 * otherwise); the return value is the index of the largest score (the first
 * one on ties).
 *
 * The generated code uses no malloc and no globals other than `static const`
 * weights; activations live in buffers that are local arrays of model_run, each
 * sized at export time to the largest activation it holds (the RAM use is stated
 * in the header comment). A value keeps its buffer from the op that writes it to
 * the last op that reads it; then the buffer is reused (a plain stack ping-pongs
 * between two). It needs only <math.h> (and <stdint.h> for int8) and
 * compiles with `cc -std=c99 -Wall -Wextra -Werror -pedantic`. A batchnorm2d
 * that directly follows a conv2d (a batchnorm1d that follows a linear) is folded
 * into it; other BNs become a per-channel scale and shift. ReLUs that follow
 * conv/linear/BN/add are fused; relu6 and leaky_relu are in-place helpers. Grouped,
 * depthwise and dilated convs run conv2d_grouped (float) / conv2d_gq (int8).
 * dropout, dropout2d and flatten are dropped.
 *
 * Branches (from=, add, concat): each op reads the buffers of the values its layer
 * reads; add sums them in PyTorch's order (add), concat copies them one after the
 * other along channels (concat). A fold or fusion happens only where the folded layer
 * alone reads the value it takes over (a batch norm stays an affine when a branch also
 * reads its conv's output), and an in-place helper whose input a later layer still
 * reads works on a copy of it.
 *
 * The helpers it calls are copied from the files in src/io/export_c_runtime, embedded at
 * build time.
 *
 * flags & CN_EXPORT_C_INT8: per-output-channel symmetric int8 weights; activations quantised
 * per tensor (symmetric, zero point 0) with scales calibrated on
 * `calib_images` (the 99.99th percentile of |x| over the calibration set);
 * conv and linear accumulate in int32 and requantise with a per-channel float
 * multiplier (bias added in the output scale). Everything up to the last conv
 * or linear layer runs in int8; that layer writes float, and what follows it
 * (e.g. pooling, log_softmax) runs in float. A max pool with stride = kernel and
 * no padding right after an int8 conv is fused into it (the conv map is never
 * stored; same results). relu6 and leaky_relu keep their input's scale (relu6
 * clamps at q8(6 / scale), leaky_relu rounds q * slope with q8). add and concat
 * get an output scale of their own, calibrated as a conv's; each input k comes in
 * times rescale_k = its scale / the output scale: add_q sums those in float and
 * rounds once (ReLU fused), concat_q rounds each input's values. A layer after the
 * last conv/linear that reads an int8 value from before it is refused.
 *
 * flags & CN_EXPORT_C_CORTEX_M4 (int8): conv (grouped too) and linear also get variants using
 * the Arm DSP extension's SMLAD through arm_acle.h (export_c_runtime/int8_dsp.c),
 * chosen at compile time when __ARM_FEATURE_DSP is defined (and MODEL_NO_DSP is
 * not), with the portable code otherwise; the results are identical. */
#ifndef CN_IO_EXPORT_C_H
#define CN_IO_EXPORT_C_H
#include "convnet.h"
#include <stddef.h>

/* CN_EXPORT_C_INT8, CN_EXPORT_C_CORTEX_M4 and cn_export_c_stats: convnet.h */

/* Writes DIR/model.h and DIR/model.c (DIR is created if missing; each file is
 * written atomically). mean/std: the normalisation the model was trained with,
 * one value per input channel (std > 0); channels that differ make
 * MODEL_NORM_MEAN/MODEL_NORM_STD array initialisers instead of constants.
 * flags: CN_EXPORT_C_* (0 = float32, portable C; CN_EXPORT_C_INT8 = int8).
 * With CN_EXPORT_C_INT8, calib_images (calib_count >= 1 images of C*H*W floats
 * in [0, 1]) are required, otherwise they may be NULL. `stats` (may be NULL)
 * receives the flash/RAM figures that the header comment states.
 * The model's parameters must be finite. */
/* CN_ERR_UNSUPPORTED (one line) for a model cn_export_c cannot write: one with a layer kind
 * it has no code for (every kind of layer.h has some). */
cn_status cn_export_c_check(const cn_model *m);
cn_status cn_export_c(const cn_model *m, const char *dir, const float *mean, const float *std, int flags,
                      const float *calib_images, int calib_count, cn_export_c_stats *stats);

#endif
