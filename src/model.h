/* Internal model representation: a sequential list of layers over one
 * contiguous parameter buffer, one gradient buffer and one buffer of
 * non-trainable state (BatchNorm running statistics).
 *
 * Parameter order follows PyTorch's state_dict order for an nn.Sequential of
 * the same layers: for each layer, weight then bias. State-dict names are
 * "<layer name>.weight", "<layer name>.bias", "<layer name>.running_mean",
 * "<layer name>.running_var", "<layer name>.num_batches_tracked", where the
 * layer name defaults to its index among the spec's layers ("0", "1", ...),
 * exactly as nn.Sequential names its children. */
#ifndef CN_MODEL_H
#define CN_MODEL_H
#include "convnet.h"
#include "core/rng.h"
#include <stdbool.h>

typedef enum {
    CN_LAYER_CONV2D,
    CN_LAYER_BATCHNORM2D,
    CN_LAYER_RELU,
    CN_LAYER_MAXPOOL2D,
    CN_LAYER_AVGPOOL2D,
    CN_LAYER_GAP,          /* AdaptiveAvgPool2d(1) */
    CN_LAYER_DROPOUT,
    CN_LAYER_FLATTEN,
    CN_LAYER_LINEAR,
    CN_LAYER_LOG_SOFTMAX,
    CN_LAYER_KIND_COUNT
} cn_layer_kind;

/* Per-sample activation shape; a flat vector has h = w = 1. */
typedef struct { int c, h, w; } cn_shape;

static inline int cn_shape_size(cn_shape s) { return s.c * s.h * s.w; }

typedef struct {
    cn_layer_kind kind;
    int spec_line;          /* line in the spec text, for messages */
    char name[32];          /* state-dict prefix */
    cn_shape in, out;
    /* conv2d: out_channels, kernel, stride, pad, has_bias
     * maxpool2d/avgpool2d: kernel, stride, pad (stride defaults to kernel)
     * linear: out_channels = out_features, has_bias */
    int out_channels, kernel, stride, pad;
    bool has_bias;
    float dropout_p;        /* dropout */
    float bn_eps, bn_momentum;
    /* Offsets into model->params/grads (counts 0 when absent). */
    size_t weight_offset, weight_count, bias_offset, bias_count;
    /* batchnorm2d: running_mean at buffers[buffer_offset], running_var right after (C each). */
    size_t buffer_offset;
    int bn_index;           /* index into model->bn_batches_tracked, -1 otherwise */
    uint64_t macs;          /* forward multiply-adds per sample */
} cn_layer;

/* cn_recipe (include/convnet.h): the training recipe a spec's `train` line carries (0/"" = unset). */

struct cn_model {
    char *spec_text;        /* the spec this model was built from (owned) */
    char *source_name;      /* preset name or file path (owned) */
    cn_shape input;
    int num_layers;
    cn_layer *layers;
    cn_recipe recipe;

    size_t num_params;
    float *params, *grads;  /* num_params each, 64-byte aligned */
    size_t num_buffers;
    float *buffers;         /* BN running stats */
    int num_bn;
    int64_t *bn_batches_tracked;
    bool training;

    /* Workspace for batches of up to batch_capacity samples (see model.c). */
    int batch_capacity;
    int num_threads;
    float **acts;           /* acts[i]: input of layer i; acts[num_layers]: output */
    float **grad_acts;      /* gradients of acts; two ping-pong buffers (grad_acts[i] = buffer i % 2) */
    float **saved;          /* per-layer saved state (BN mean/invstd, dropout mask, pool argmax) */
    float *thread_grads;    /* (2, or 3 for chunked training) * num_threads * num_params partial gradients */
    float *thread_scratch;  /* num_threads * scratch_per_thread floats (im2col etc.) */
    size_t scratch_per_thread;
    struct cn_model *workers;   /* with several threads: one shallow copy per thread (model.c), or NULL */
    float *eval_out;        /* eval mode with workers: the batch's outputs */
    bool is_worker;
    int sample_offset;      /* a worker: where its samples start in the model's batch buffers */
    int team_batch;         /* a training worker: samples of the whole batch (all workers) */
    double step_loss;       /* a training worker: its samples' summed loss in cn_model_train_step */
    int step_correct;       /* ... and their argmax hits */
    double *bn_stats;       /* batch norms' per-(sample, channel) sums (layers.h: cn_bn_plane_stats) */
    size_t bn_stats_stride; /* doubles of bn_stats per batch-norm layer */
    size_t grad_floats_per_sample;  /* of each ping-pong gradient buffer */
    uint64_t dropout_seed;  /* drawn per training batch */
    bool unfused;           /* every layer runs its own passes (no layers/fusion.h): for tests */
};

/* Allocates the batch workspace for up to `batch` samples and `threads` threads. */
cn_status cn_model_reserve(cn_model *model, int batch, int threads);
void cn_model_set_training(cn_model *model, bool training);

/* Forward pass of `batch` images (B,C,H,W) -> returns (B, classes) in model memory,
 * valid until the next call. In training mode dropout draws from `rng`. */
const float *cn_model_forward(cn_model *model, const float *input, int batch, cn_rng *rng);
/* Backward pass from dL/d(output) (B, classes); overwrites model->grads with dL/dparams. */
void cn_model_backward(cn_model *model, const float *grad_output, int batch);
/* One training step's passes on `batch` images: forward, the loss against labels (as
 * cn_loss_batch: returns the summed loss, grad (B, classes) gets d(mean loss)/d(output),
 * *correct the hits) and backward: model->grads = dL/dparams. Same results as those three
 * calls, within rounding (model.c: chunked training); the model's output buffer may then
 * hold only some of the batch's outputs. */
double cn_model_train_step(cn_model *model, const float *input, const int *labels, int batch, float smoothing,
                           float *grad, int *correct);
/* True when the model ends in log_softmax (its scores are log-probabilities: NLL loss). */
static inline int cn_model_outputs_log_probs(const cn_model *m) {
    return m->layers[m->num_layers - 1].kind == CN_LAYER_LOG_SOFTMAX;
}

/* Parameter initialisation as PyTorch: kaiming_uniform(a=sqrt(5)) weights,
 * U(-1/sqrt(fan_in), 1/sqrt(fan_in)) biases, BN weight 1, bias 0, stats (0, 1). */
void cn_model_init_params(cn_model *model, cn_rng *rng);

const char *cn_layer_kind_name(cn_layer_kind kind);
/* PyTorch module class name (for summaries): "Conv2d", "BatchNorm2d", ... */
const char *cn_layer_torch_name(cn_layer_kind kind);

/* Like cn_model_backward, and also writes dL/d(input) (B,C,H,W) to grad_input. */
void cn_model_backward_input(cn_model *model, const float *grad_output, int batch, float *grad_input);

/* One layer of the passes above (for per-layer profiling): layer i's forward, after
 * layers 0..i-1 and with the input in acts[0]; its backward, after layers L-1..i+1
 * and with dL/d(output) in grad_acts[L]. */
void cn_model_forward_layer(cn_model *model, int i, int batch);
void cn_model_backward_layer(cn_model *model, int i, int batch);
#endif
