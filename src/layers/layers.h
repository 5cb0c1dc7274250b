/* One forward and one backward function per layer kind. Each receives a
 * context with the batch's input/output activations (NCHW, batch first) and
 * writes parameter gradients into model->grads (overwriting them). Work is
 * split over the batch (or channels) with OpenMP; results do not depend on
 * scheduling for a fixed thread count. A worker (model.c) runs them with 1
 * thread on its share of the batch. */
#ifndef CN_LAYERS_H
#define CN_LAYERS_H
#include "model.h"
#include "kernels/kernels.h"
#include <omp.h>

typedef struct {
    cn_model *model;
    const cn_layer *layer;
    int index;              /* position in model->layers */
    int batch;
    const float *in;        /* (B, in.c, in.h, in.w) */
    float *out;             /* (B, out.c, out.h, out.w) */
    const float *grad_out;  /* backward only */
    float *grad_in;         /* backward only; NULL when the input needs no gradient */
    float *saved;           /* cn_layer_saved_floats(layer, batch) floats kept from forward to backward */
} cn_layer_ctx;

/* Floats of per-layer state kept between forward and backward for `batch` samples. */
size_t cn_layer_saved_floats(const cn_layer *l, int batch);
/* Floats of per-thread scratch memory a layer needs (im2col buffers). */
size_t cn_layer_scratch_floats(const cn_layer *l);

void cn_conv2d_forward(const cn_layer_ctx *c);
void cn_conv2d_backward(const cn_layer_ctx *c);
void cn_batchnorm2d_forward(const cn_layer_ctx *c);
void cn_batchnorm2d_backward(const cn_layer_ctx *c);
/* Eval-mode batch norm of channel ch of layer l as y = x * scale + shift (running statistics). */
void cn_batchnorm2d_eval_affine(const cn_model *m, const cn_layer *l, int ch, float *scale, float *shift);
void cn_relu_forward(const cn_layer_ctx *c);
void cn_relu_backward(const cn_layer_ctx *c);
void cn_maxpool2d_forward(const cn_layer_ctx *c);
void cn_maxpool2d_backward(const cn_layer_ctx *c);
void cn_avgpool2d_forward(const cn_layer_ctx *c);
void cn_avgpool2d_backward(const cn_layer_ctx *c);
void cn_gap_forward(const cn_layer_ctx *c);
void cn_gap_backward(const cn_layer_ctx *c);
void cn_dropout_forward(const cn_layer_ctx *c);
void cn_dropout_backward(const cn_layer_ctx *c);
/* Dropout layer i in training: keep threshold (P(drop) = threshold / 2^32) and scale
 * 1 / (1 - p) of the kept values; the mask's hash stream for one sample (independent of
 * threads); the keep mask (B, size) as bytes (1 = kept), kept in the layer's saved state. */
typedef struct { uint32_t threshold; float keep_scale; } cn_dropout_params;
cn_dropout_params cn_dropout_params_of(const cn_layer *l);
uint64_t cn_dropout_stream(uint64_t batch_seed, int layer, int sample);
static inline uint8_t *cn_dropout_mask(const cn_model *m, int i) {
    return (uint8_t *)m->saved[i] + (size_t)m->sample_offset * cn_shape_size(m->layers[i].in);
}
/* Batch-norm layer j in training: for each (sample, channel) plane of the whole batch, 2
 * doubles (at 2 * (sample * C + channel), samples as in the model's batch buffers): the
 * forward's {sum, sum of squared deviations from the plane's mean}, then the backward's
 * {sum dy, sum dy * xhat}. A worker's own samples start at its sample_offset. */
static inline double *cn_bn_plane_stats(const cn_model *m, int j) {
    return m->bn_stats + (size_t)m->layers[j].bn_index * m->bn_stats_stride;
}
void cn_flatten_forward(const cn_layer_ctx *c);
void cn_flatten_backward(const cn_layer_ctx *c);
void cn_linear_forward(const cn_layer_ctx *c);
void cn_linear_backward(const cn_layer_ctx *c);
void cn_log_softmax_forward(const cn_layer_ctx *c);
void cn_log_softmax_backward(const cn_layer_ctx *c);

/* Statistics of one plane for a batch norm: {sum, sum of squared deviations from the
 * plane's mean}, in double (the conv's output pass and batchnorm2d.c alike). */
static inline void cn_bn_plane_stat(const float *x, int plane, double *st) {
    st[0] = cn_slices_sum(x, 1, 0, plane);
    st[1] = cn_slices_sq_dev(x, 1, 0, plane, st[0] / plane);
}

/* Contiguous share [*b0, *b1) of n items for thread t of T. */
static inline void cn_thread_range(int n, int t, int T, int *b0, int *b1) {
    *b0 = (int)((long)n * t / T);
    *b1 = (int)((long)n * (t + 1) / T);
}

/* Per-thread scratch of the calling thread (a worker has its thread's own). */
static inline float *cn_thread_scratch(const cn_model *m) {
    return m->thread_scratch + (m->num_threads > 1 ? (size_t)omp_get_thread_num() * m->scratch_per_thread : 0);
}
/* Per-thread partial gradient buffer (num_params floats) of thread t. */
static inline float *cn_thread_grads(const cn_model *m, int t) {
    return m->thread_grads + (size_t)t * m->num_params;
}
/* Zeroes [offset, offset+count) of every thread's partial gradients. */
void cn_thread_grads_zero(const cn_model *m, size_t offset, size_t count);
/* model->grads[offset..+count) = sum over threads (in thread order) of the partials. */
void cn_thread_grads_reduce(cn_model *m, size_t offset, size_t count);

#endif
