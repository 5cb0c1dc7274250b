/* A model: a spec's layers over one contiguous parameter buffer and one buffer
 * of non-trainable state (BatchNorm running statistics and batch counts).
 * Nothing about running it: activations, gradients, threads, the mode and the
 * dropout stream belong to an execution session (exec/session.h), and several
 * sessions may run one model at once.
 *
 * Who writes a model: its builders (cn_model_from_spec, checkpoint and ONNX
 * loading); the optimizer, between training steps (params); a training-mode
 * pass of a session (the batch norms' running statistics, as PyTorch updates
 * module buffers). Eval-mode passes only read it, so any number of them may
 * run on one model in parallel threads.
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
#include "layer.h"
#include "spec.h"
#include "core/rng.h"

struct cn_model {
    char *spec_text;        /* the spec this model was built from (owned) */
    char *source_name;      /* preset name or file path (owned) */
    cn_shape input;
    int num_layers;
    cn_layer *layers;
    cn_recipe recipe;

    size_t num_params;
    float *params;          /* num_params, 64-byte aligned */
    size_t num_buffers;
    float *buffers;         /* BN running stats */
    int num_bn;
    int64_t *bn_batches_tracked;
};

/* True when the model ends in log_softmax (its scores are log-probabilities: NLL loss). */
static inline int cn_model_outputs_log_probs(const cn_model *m) {
    return m->layers[m->num_layers - 1].kind == CN_LAYER_LOG_SOFTMAX;
}

/* Shape of value v (layer.h: the output of layer v - 1; value 0: the model input). */
static inline cn_shape cn_model_value_shape(const cn_model *m, int v) {
    return v == 0 ? m->input : m->layers[v - 1].out;
}

/* True when some layer reads anything but the previous layer's output (from=, add,
 * concat): the model is a graph, not a plain stack. */
static inline bool cn_model_has_branches(const cn_model *m) {
    for (int i = 0; i < m->num_layers; i++)
        if (m->layers[i].num_inputs != 1 || m->layers[i].inputs[0] != i) return true;
    return false;
}

/* Parameter initialisation as PyTorch: kaiming_uniform(a=sqrt(5)) weights,
 * U(-1/sqrt(fan_in), 1/sqrt(fan_in)) biases, BN weight 1, bias 0, stats (0, 1). */
void cn_model_init_params(cn_model *model, cn_rng *rng);

/* For the exporters: CN_OK when every parameter and running statistic of layer l is finite,
 * else CN_ERR_NUMERIC naming the model, the layer and the first value that is not. */
cn_status cn_model_check_layer_finite(const cn_model *m, const cn_layer *l);

#endif
