/* Names of the layer kinds. */
#include "layer.h"

static const struct { const char *name, *torch_name; } kind_names[CN_LAYER_KIND_COUNT] = {
    [CN_LAYER_CONV2D] = {"conv2d", "Conv2d"},
    [CN_LAYER_BATCHNORM2D] = {"batchnorm2d", "BatchNorm2d"},
    [CN_LAYER_RELU] = {"relu", "ReLU"},
    [CN_LAYER_MAXPOOL2D] = {"maxpool2d", "MaxPool2d"},
    [CN_LAYER_AVGPOOL2D] = {"avgpool2d", "AvgPool2d"},
    [CN_LAYER_GAP] = {"gap", "AdaptiveAvgPool2d"},
    [CN_LAYER_DROPOUT] = {"dropout", "Dropout"},
    [CN_LAYER_FLATTEN] = {"flatten", "Flatten"},
    [CN_LAYER_LINEAR] = {"linear", "Linear"},
    [CN_LAYER_LOG_SOFTMAX] = {"log_softmax", "LogSoftmax"},
    [CN_LAYER_RELU6] = {"relu6", "ReLU6"},
    [CN_LAYER_LEAKY_RELU] = {"leaky_relu", "LeakyReLU"},
    [CN_LAYER_ADD] = {"add", "Add"},            /* torch: a + b (no module) */
    [CN_LAYER_CONCAT] = {"concat", "Concat"},   /* torch: torch.cat((a, b), 1) (no module) */
};

const char *cn_layer_kind_name(cn_layer_kind kind) { return kind < CN_LAYER_KIND_COUNT ? kind_names[kind].name : "?"; }
const char *cn_layer_torch_name(cn_layer_kind kind) { return kind < CN_LAYER_KIND_COUNT ? kind_names[kind].torch_name : "?"; }

const char *cn_layer_word(const cn_layer *l) {
    if (l->kind == CN_LAYER_BATCHNORM2D && l->flat_bn) return "batchnorm1d";
    if (l->kind == CN_LAYER_DROPOUT && l->channel_dropout) return "dropout2d";
    return cn_layer_kind_name(l->kind);
}

const char *cn_layer_torch_class(const cn_layer *l) {
    if (l->kind == CN_LAYER_BATCHNORM2D && l->flat_bn) return "BatchNorm1d";
    if (l->kind == CN_LAYER_DROPOUT && l->channel_dropout) return "Dropout2d";
    return cn_layer_torch_name(l->kind);
}
