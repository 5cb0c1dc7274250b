/* One forward and one backward function per layer kind. Each receives its
 * binding (cn_layer_ctx): the plan's step for the layer, the buffers of its
 * input, output, gradients and saved state, and those of the neighbour it is
 * fused with, all for the samples of this call (NCHW, batch first), bound by
 * the execution session (exec/). Parameters are read from the model; parameter
 * gradients are written (overwritten) into the binding's gradient buffer. Work
 * is split over the batch (or channels) with OpenMP on `threads` threads;
 * results do not depend on scheduling for a fixed thread count. A team worker
 * of a session (exec/session.c) runs them with 1 thread on its share of the
 * batch. */
#ifndef CN_LAYERS_H
#define CN_LAYERS_H
#include "model.h"
#include "exec/plan.h"
#include "exec/exchange.h"
#include "kernels/kernels.h"
#include <omp.h>
#include <string.h>

typedef struct cn_layer_ctx cn_layer_ctx;
struct cn_layer_ctx {
    const cn_model *model;      /* parameters (read only) */
    const cn_layer *layer;
    const cn_step *step;        /* what the plan decided for this layer */
    int index;                  /* the layer's position: names its dropout streams, nothing else */
    /* how this call runs */
    int threads;                /* OpenMP threads of the layer's own loops (1 on a team worker) */
    bool training;
    bool in_team;               /* one of a team of workers, each with its share of the batch */
    int batch;                  /* samples of this call */
    int first;                  /* the position in the whole batch of this call's first sample */
    int team_batch;             /* samples of the whole batch (all workers) */
    uint64_t dropout_seed;      /* of this batch */
    /* buffers of this call's samples */
    const float *in;            /* (B, in.c, in.h, in.w) */
    float *out;                 /* the output of the layer, or of the chain it leads (value i + length) */
    float *own_out;             /* the layer's own output slot (value i + 1): scratch when it leads a chain */
    const float *grad_out;      /* backward: dL/d(out) */
    float *grad_in;             /* backward: dL/d(in); NULL when the input needs no gradient */
    /* add, concat: every input (ins[0] = in) and its gradient (grad_ins[0] = grad_in; NULL where
     * none is needed), layer->num_inputs of each */
    const float *ins[CN_MAX_INPUTS];
    float *grad_ins[CN_MAX_INPUTS];
    float *saved;               /* cn_layer_saved_floats(layer, batch) floats kept from forward to backward */
    uint8_t *mask;              /* dropout: the keep mask (B, in size) bytes, in its saved state */
    int32_t *argmax;            /* training, a chain with a pool: the pool's argmax (B, C, pooled), else NULL */
    float *relu_grad_dst;       /* step->grad_to_conv_relu: the conv two layers back's own output slot */
    const cn_layer_ctx *peer;   /* the binding of step->peer, or NULL */
    const cn_layer_ctx *bn_ins[CN_MAX_INPUTS];  /* add: the batch norm it applies to ins[k] (then the
                                                   batch norm's input; step->bn_inputs), or NULL */
    /* state of the pass */
    float *grads;               /* flat parameter gradients this call writes (model->num_params) */
    float *partials;            /* threads * num_params per-thread partial parameter gradients */
    float *scratch;             /* threads * scratch_stride floats: per-thread scratch (im2col etc.) */
    size_t scratch_stride;
    double *plane_stats;        /* batch norm: (team_batch, C, 2) per-plane sums of the whole batch */
    int stats_first, stats_batch;   /* batch norm: the samples whose sums its statistics combine */
    const cn_exchange *exchange;    /* batch norm: the other processes' sums come from here, or NULL */
    float *running;             /* batch norm: running mean, running var (C each) of the model */
    int64_t *batches_tracked;   /* batch norm: its num_batches_tracked in the model */
};

/* Floats of per-layer state kept between forward and backward for `batch` samples. */
size_t cn_layer_saved_floats(const cn_layer *l, int batch);
/* Floats of per-thread scratch memory a layer needs (im2col buffers) on the paths its step
 * chooses (cn_step.reference_conv, cn_step.bf16_conv). */
size_t cn_layer_scratch_floats(const cn_layer *l, const cn_step *step);

void cn_conv2d_forward(const cn_layer_ctx *c);
/* Multiply-adds per image that the chosen kernels issue for conv l in pass 0 (forward), 1
 * (input gradient) or 2 (weight gradient): fewer than l->macs where Winograd runs, more where
 * vector rounding and padding columns add lanes (the plain, grouped and dilated direct paths);
 * l->macs for the layers the direct kernels do not run (depthwise, strided, im2col). */
double cn_conv2d_issued_macs(const cn_layer *l, int pass);
void cn_conv2d_backward(const cn_layer_ctx *c);
void cn_batchnorm2d_forward(const cn_layer_ctx *c);
void cn_batchnorm2d_backward(const cn_layer_ctx *c);
/* Eval-mode batch norm of channel ch of layer l as y = x * scale + shift (running statistics). */
void cn_batchnorm2d_eval_affine(const cn_model *m, const cn_layer *l, int ch, float *scale, float *shift);
/* The same for a bound batch norm c: from the batch statistics in training, else the running ones. */
void cn_batchnorm2d_channel_affine(const cn_layer_ctx *c, int ch, float *scale, float *shift);
/* What batch norm b (a binding whose step->grad_in_conv) hands to the conv before it (fusion.h). */
cn_bn_handoff cn_bn_handoff_of(const cn_layer_ctx *b);
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
/* Dropout layer l in training: keep threshold (P(drop) = threshold / 2^32) and scale
 * 1 / (1 - p) of the kept values; the mask's hash stream for one sample of the batch
 * (independent of threads); the keep mask (B, size) as bytes (1 = kept). */
typedef struct { uint32_t threshold; float keep_scale; } cn_dropout_params;
cn_dropout_params cn_dropout_params_of(const cn_layer *l);
uint64_t cn_dropout_stream(uint64_t batch_seed, int layer, int sample);
void cn_flatten_forward(const cn_layer_ctx *c);
void cn_flatten_backward(const cn_layer_ctx *c);
void cn_linear_forward(const cn_layer_ctx *c);
void cn_linear_backward(const cn_layer_ctx *c);
/* out (rows, O) = the bias in every row (zeros when bias is NULL): where the linear layers'
 * products are accumulated. */
static inline void cn_linear_rows_from_bias(float *out, int rows, int O, const float *bias) {
    for (int r = 0; r < rows; r++) {
        if (bias) memcpy(out + (size_t)r * O, bias, O * sizeof *out);
        else memset(out + (size_t)r * O, 0, O * sizeof *out);
    }
}
/* dbias (O) = the column sums of grad_out (B, O), each in float32 over the rows in order: the
 * bias gradient of the float32 and the bf16 linear layers alike. */
static inline void cn_linear_bias_grad(const float *grad_out, int B, int O, float *dbias) {
    for (int o = 0; o < O; o++) {
        float db = 0.0f;
        for (int b = 0; b < B; b++) db += grad_out[(size_t)b * O + o];
        dbias[o] = db;
    }
}
/* The same in mixed precision (linear_bf16.c; cn_step.bf16_linear, needs cn_bf16_available()). */
size_t cn_linear_bf16_scratch_floats(const cn_layer *l);
void cn_linear_forward_bf16(const cn_layer_ctx *c);
void cn_linear_backward_bf16(const cn_layer_ctx *c);
void cn_log_softmax_forward(const cn_layer_ctx *c);
void cn_log_softmax_backward(const cn_layer_ctx *c);
void cn_relu6_forward(const cn_layer_ctx *c);
void cn_relu6_backward(const cn_layer_ctx *c);
void cn_leaky_relu_forward(const cn_layer_ctx *c);
void cn_leaky_relu_backward(const cn_layer_ctx *c);
/* add: out = ins[0] + ins[1] + ...; concat: the inputs' channels one after the other (join.c) */
void cn_add_forward(const cn_layer_ctx *c);
void cn_add_backward(const cn_layer_ctx *c);
void cn_concat_forward(const cn_layer_ctx *c);
void cn_concat_backward(const cn_layer_ctx *c);

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

/* Contiguous chunk [*i0, *i1) of n elements for the calling thread of a parallel region, split at
 * 16-float boundaries (element-wise passes). */
static inline void cn_thread_chunk(size_t n, size_t *i0, size_t *i1) {
    size_t T = (size_t)omp_get_num_threads(), t = (size_t)omp_get_thread_num();
    size_t per = ((n + T - 1) / T + 15) & ~(size_t)15;
    *i0 = t * per < n ? t * per : n;
    *i1 = *i0 + per < n ? *i0 + per : n;
}
/* Per-thread scratch of thread t of the call's threads, and of the calling thread. */
static inline float *cn_scratch_of(const cn_layer_ctx *c, int t) { return c->scratch + (size_t)t * c->scratch_stride; }
static inline float *cn_thread_scratch(const cn_layer_ctx *c) {
    return cn_scratch_of(c, c->threads > 1 ? omp_get_thread_num() : 0);
}
/* Per-thread partial gradient buffer (num_params floats) of thread t. */
static inline float *cn_thread_grads(const cn_layer_ctx *c, int t) {
    return c->partials + (size_t)t * c->model->num_params;
}
/* Zeroes [offset, offset+count) of every thread's partial gradients. */
void cn_thread_grads_zero(const cn_layer_ctx *c, size_t offset, size_t count);
/* c->grads[offset..+count) = sum over threads (in thread order) of the partials. */
void cn_thread_grads_reduce(const cn_layer_ctx *c, size_t offset, size_t count);
/* A layer's backward sample by sample: fn(c, b, partial, scratch, arg) for each sample b of
 * contiguous shares of the batch (as a session's team splits it), adding the layer's weight and
 * bias gradients into partial (its thread's partial gradients, zeroed first) with the thread's
 * scratch; then c->grads gets the partials' sum in thread order. */
typedef void (*cn_sample_backward_fn)(const cn_layer_ctx *c, int b, float *partial, float *scratch, const void *arg);
void cn_per_sample_backward(const cn_layer_ctx *c, cn_sample_backward_fn fn, const void *arg);
/* The same with work around each thread's share: prepare(c, scratch, arg) before its first
 * sample and finish(c, partial, scratch, arg) after its last (either may be NULL; both run in
 * every thread, also one with no samples). */
typedef struct {
    void (*prepare)(const cn_layer_ctx *c, float *scratch, const void *arg);
    cn_sample_backward_fn sample;
    void (*finish)(const cn_layer_ctx *c, float *partial, float *scratch, const void *arg);
} cn_sample_backward;
void cn_per_sample_backward_with(const cn_layer_ctx *c, const cn_sample_backward *pass, const void *arg);

#endif
