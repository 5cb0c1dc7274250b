/* Layer descriptions: what a spec line says about one layer, with its inferred
 * shapes and where its parameters sit in the model's flat buffers. Nothing here
 * knows about models or execution (spec.h builds these, model.h owns them,
 * exec/ runs them). */
#ifndef CN_LAYER_H
#define CN_LAYER_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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
    CN_LAYER_RELU6,        /* min(max(x, 0), 6) */
    CN_LAYER_LEAKY_RELU,   /* x > 0 ? x : slope * x */
    CN_LAYER_ADD,          /* element-wise sum of its inputs (equal shapes): a residual join */
    CN_LAYER_CONCAT,       /* its inputs one after the other along channels (equal H, W) */
    CN_LAYER_KIND_COUNT
} cn_layer_kind;

/* Inputs a layer may read (add/concat join up to this many branches). */
#define CN_MAX_INPUTS 8

/* Per-sample activation shape; a flat vector has h = w = 1. */
typedef struct { int c, h, w; } cn_shape;

static inline int cn_shape_size(cn_shape s) { return s.c * s.h * s.w; }

typedef struct {
    cn_layer_kind kind;
    int spec_line;          /* line in the spec text, for messages */
    char name[32];          /* state-dict prefix; what from= refers to */
    /* The values it reads (value v: the output of layer v - 1; value 0: the model input).
     * A plain layer reads one, by default the previous layer's output (value i); a spec's
     * from= names others; add and concat read two or more. in is inputs[0]'s shape. */
    int num_inputs;
    int inputs[CN_MAX_INPUTS];
    cn_shape in, out;
    /* conv2d: out_channels, kernel, stride, pad, has_bias, groups (in.c and out_channels
     *   divisible by it; depthwise when groups == in.c), dilation (tap spacing)
     * maxpool2d/avgpool2d: kernel, stride, pad (stride defaults to kernel)
     * linear: out_channels = out_features, has_bias */
    int out_channels, kernel, stride, pad;
    int groups, dilation;   /* 1 for every other layer */
    bool has_bias;
    float dropout_p;        /* dropout */
    bool channel_dropout;   /* dropout written as dropout2d: drops whole channels (nn.Dropout2d) */
    bool flat_bn;           /* batchnorm2d written as batchnorm1d: a flat (N, C) input (nn.BatchNorm1d) */
    float slope;            /* leaky_relu: negative slope */
    float bn_eps, bn_momentum;
    /* Offsets into the model's params (and a session's gradients); counts 0 when absent. */
    size_t weight_offset, weight_count, bias_offset, bias_count;
    /* batchnorm2d: running_mean at the model's buffers[buffer_offset], running_var right after (C each). */
    size_t buffer_offset;
    int bn_index;           /* index among the model's batch norms (bn_batches_tracked), -1 otherwise */
    uint64_t macs;          /* forward multiply-adds per sample */
} cn_layer;

/* conv2d: the span of its kernel on the input, (kernel - 1) * dilation + 1. */
static inline int cn_conv_span(const cn_layer *l) { return (l->kernel - 1) * l->dilation + 1; }

const char *cn_layer_kind_name(cn_layer_kind kind);
/* PyTorch module class name (for summaries): "Conv2d", "BatchNorm2d", ... */
const char *cn_layer_torch_name(cn_layer_kind kind);
/* The spec word and PyTorch class of layer l, telling batchnorm1d and dropout2d apart. */
const char *cn_layer_word(const cn_layer *l);
const char *cn_layer_torch_class(const cn_layer *l);

#endif
