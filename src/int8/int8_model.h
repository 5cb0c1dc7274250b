/* int8 inference on the CPU: a model quantised exactly as the int8 C export quantises it
 * (cn_export_c with CN_EXPORT_C_INT8: per-output-channel symmetric int8 weights, per-tensor
 * activation scales calibrated on the same images, the same requantisation), run with the
 * int8 kernels of src/kernels/int8.h (AVX-512 VNNI, AVX2 or generic, chosen at run time).
 * It computes the same int32 sums and the same float requantisation as the exported
 * model_predict, and the layers after the last conv/linear with the export's own float
 * helpers, so its scores are bitwise those of the exported C and its classes identical.
 * Convs without groups or dilation and linears run on the int8 kernels; grouped,
 * depthwise and dilated convs, relu6, leaky_relu, average pooling and a batch norm not
 * fused run the export's own int8 helpers; add and concat the export's arithmetic
 * (add_q, concat_q) on the kernels' tensors. Models with branches run as the export
 * runs them (int8_steps.h). What the int8 C export refuses (e.g. a log_softmax before
 * the last conv/linear) is refused with one error line. */
#ifndef CN_INT8_MODEL_H
#define CN_INT8_MODEL_H
#include "convnet.h"
#include "model.h"
#include "data/dataset.h"

typedef struct cn_int8_model cn_int8_model;

/* Quantises m into *out (freed with cn_int8_model_free). mean/std: the input normalisation
 * per channel, as the model was trained (finite, std > 0); calib_images: calib_count >= 1
 * images of C*H*W pixels in [0, 1] (cn_int8_calibration_images gives the C export's
 * choice). The int8 model keeps no pointer to m or to the arrays. Packs the weights for
 * the int8 kernel set chosen at this call (cn_i8_kernels()). */
cn_status cn_int8_model_create(const cn_model *m, const float *mean, const float *std, const float *calib_images,
                               int calib_count, cn_int8_model **out);
void cn_int8_model_free(cn_int8_model *q);
/* Output classes, and whether the scores are log-probabilities (the model ends in log_softmax). */
int cn_int8_model_num_classes(const cn_int8_model *q);
int cn_int8_model_log_probs(const cn_int8_model *q);
/* The kernel set its weights are packed for ("avx512-vnni", "avx2", "generic"). */
const char *cn_int8_model_kernels(const cn_int8_model *q);

/* Classifies n images (n, C*H*W) of pixels in [0, 1] (as model_predict of the exported C
 * takes them) on `threads` threads (>= 1): scores (n, classes) gets the model's scores
 * (may be NULL), classes_out (n) the index of the largest (the first one on ties; may be
 * NULL). The results do not depend on the thread count. */
cn_status cn_int8_predict(const cn_int8_model *q, const float *images, int n, int threads, float *scores,
                          int *classes_out);

/* The test split through the int8 model: *loss_sum the summed loss (NLL of log-probabilities,
 * cross-entropy of logits), *correct the hits, predictions (split->count, may be NULL) the
 * classes. Pixels are read as pixel / 255.0f. */
cn_status cn_int8_evaluate(const cn_int8_model *q, const cn_split *split, int threads, double *loss_sum, int *correct,
                           int *predictions);

/* The calibration images of `convnet export --format c --int8 --calibration N`: *count
 * (capped at the split's size) training images evenly spaced over the split, as floats
 * pixel / 255.0f; NULL when out of memory or the split is empty. Free with free(). */
float *cn_int8_calibration_images(const cn_split *train, int *count);

/* cn_int8_model_create with the calibration images of cn_int8_calibration_images(train,
 * calib_count): the model as `convnet export --format c --int8 --calibration N` quantises it.
 * *calib_count: N in, the number used out. */
cn_status cn_int8_model_calibrated(const cn_model *m, const float *mean, const float *std, const cn_split *train,
                                   int *calib_count, cn_int8_model **out);

#endif
