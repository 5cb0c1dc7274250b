/* The web target's model: a weights blob and the interpreter that runs it.
 *
 * This file and web_model.c are compiled twice: into libconvnet (gcc, x86-64),
 * where `convnet export --format web` writes the blob and checks it, and into
 * the WebAssembly runtime (clang --target=wasm32-wasi, see web_wasm.c), which
 * the exported page runs. Both builds do the same float operations in the same
 * order, so the host can test exactly what the browser computes.
 *
 * Blob (little-endian, every field 4 bytes):
 *   u32 magic CN_WEB_MAGIC, u32 version CN_WEB_VERSION,
 *   i32 input c, h, w, i32 layer count, i32 classes, f32 mean, f32 std,
 *   then per layer: i32 op (cn_web_op), i32 in c, h, w, i32 out c, h, w,
 *   i32 kernel, stride, pad, i32 groups, dilation (conv; 1 otherwise), f32 alpha
 *   (leaky_relu's slope; 0 otherwise), i32 float count n, i32 input count k (1; 2 to
 *   CN_WEB_MAX_INPUTS for add and concat), then k i32: the values it reads (0 the
 *   input, j the output of layer j - 1; below its own number + 1), then n f32:
 *     CN_WEB_CONV    weight (out_c, in_c / groups, k, k), then bias (out_c) or nothing
 *     CN_WEB_LINEAR  weight (out, in), then bias (out) or nothing
 *     CN_WEB_AFFINE  scale (c), shift (c): an eval-mode batchnorm2d or batchnorm1d
 *     others         no floats
 * The in shape is that of the first value read. Dropout, dropout2d and flatten are not
 * in the blob: in eval mode they do nothing to the (contiguous, C x H x W) activations;
 * a layer whose input is flat (n x 1 x 1) takes any value of n values, an add any values
 * of its input's size, a concat values of its output's height and width (flat: any
 * sizes) whose channels add up to its own. The parser computes every product of shape
 * fields in 64 bits and bounds it before use, so that a damaged blob cannot wrap the
 * 32-bit size_t of wasm32. Each value lives in a workspace buffer from the layer that
 * writes it to the last one that reads it; buffers are reused after that. */
#ifndef CN_IO_WEB_MODEL_H
#define CN_IO_WEB_MODEL_H
#include "convnet.h"
#include <stddef.h>
#include <stdint.h>

#define CN_WEB_MAGIC 0x42574e43u /* "CNWB" */
#define CN_WEB_VERSION 3u
#define CN_WEB_MAX_LAYERS 256
#define CN_WEB_MAX_CLASSES 64
#define CN_WEB_MAX_INPUTS 8
#define CN_WEB_MAX_ACTIVATION (1 << 22) /* floats per activation (16 MiB) */
#define CN_WEB_MAX_WORKSPACE (1 << 24)  /* floats of all the buffers live at once (64 MiB) */

typedef enum {
    CN_WEB_CONV = 1,
    CN_WEB_AFFINE,
    CN_WEB_RELU,
    CN_WEB_MAXPOOL,
    CN_WEB_AVGPOOL,     /* count_include_pad, floor mode (as convnet's avgpool2d) */
    CN_WEB_GAP,
    CN_WEB_LINEAR,
    CN_WEB_LOG_SOFTMAX,
    CN_WEB_RELU6,       /* min(max(x, 0), 6) */
    CN_WEB_LEAKY_RELU,  /* x > 0 ? x : alpha * x */
    CN_WEB_ADD,         /* ((in0 + in1) + in2) + ..., element-wise (a residual join) */
    CN_WEB_CONCAT       /* in0, then in1, ...: along channels */
} cn_web_op;

typedef struct {
    int op;                 /* cn_web_op */
    int in_c, in_h, in_w, out_c, out_h, out_w;
    int kernel, stride, pad;
    int groups, dilation;   /* conv: channel groups (depthwise when groups = in_c), tap spacing */
    float alpha;            /* leaky_relu: negative slope */
    int has_bias;           /* conv/linear */
    const float *w, *b;     /* conv/linear: weight, bias (NULL without); affine: scale, shift */
    int num_inputs;
    int inputs[CN_WEB_MAX_INPUTS];  /* the values it reads */
    size_t in_n[CN_WEB_MAX_INPUTS]; /* floats of each */
} cn_web_layer;

typedef struct {
    int c, h, w;            /* input shape */
    int classes;
    float mean, std;        /* input normalisation: (pixel / 255 - mean) / std */
    int log_probs;          /* 1 when the last op is log_softmax */
    int num_layers;
    cn_web_layer layers[CN_WEB_MAX_LAYERS];
    int value_shape[CN_WEB_MAX_LAYERS + 1][3];  /* c, h, w of each value */
    size_t value_at[CN_WEB_MAX_LAYERS + 1];     /* where each value sits in the workspace */
    size_t workspace;       /* floats of the workspace buffers */
    float *weights;         /* the blob's floats (owned; 4-byte aligned copy) */
} cn_web_model;

/* Parses and checks a blob (magic, version, every shape and count against
 * the previous layer's output). *m owns a copy of the floats afterwards;
 * release with cn_web_model_free. CN_ERR_FORMAT names the offset. */
cn_status cn_web_model_parse(const void *blob, size_t size, cn_web_model *m);
void cn_web_model_free(cn_web_model *m);

/* Floats of workspace cn_web_model_forward needs (the activation buffers);
 * the classify functions below need c*h*w more (the input). */
size_t cn_web_model_workspace(const cn_web_model *m);

/* x: the normalised input (c*h*w floats); work: cn_web_model_workspace floats;
 * scores: `classes` floats, the model's outputs (log-probabilities or logits). */
void cn_web_model_forward(const cn_web_model *m, const float *x, float *work, float *scores);

/* Probabilities from the scores (exp of log-probabilities, else a softmax),
 * summed in double and renormalised, as `convnet predict` does. */
void cn_web_probabilities(const float *scores, int classes, int log_probs, float *p);

/* The page's path for a drawing: `gray` (height x width bytes, any size, ink
 * dark on light or light on dark) -> cn_preprocess_digit (28x28 in [0,1], into
 * digit) -> normalised -> forward -> scores and probabilities. `work` holds
 * cn_web_model_workspace + 28*28 floats. Fails like cn_preprocess_digit (e.g.
 * "no ink found" for a blank canvas). The model must take 1x28x28. */
cn_status cn_web_classify_drawing(const cn_web_model *m, const uint8_t *gray, int width, int height, float *work,
                                  float *digit, float *scores, float *probs);

/* The self-test's path: a 28x28 test digit's bytes, used as they are (pixel /
 * 255, normalised; no cropping or centring, as `convnet eval` feeds them). */
void cn_web_classify_raw(const cn_web_model *m, const uint8_t *pixels, float *work, float *scores, float *probs);

#endif
