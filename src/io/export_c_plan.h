/* The C export's plan, shared by its two halves: export_c.c builds it from a model
 * (batch norm folded into the conv or linear before it, ReLU fused, dropout, dropout2d
 * and flatten dropped; each fusion only where the fused layer alone reads the value
 * it takes over, so that branches keep what they read)
 * and, for int8, calibrates its activation scales and quantises its weights;
 * export_c_gen.c writes model.h and model.c from it. The int8 CPU inference
 * (src/int8/) runs the same int8 plan, so that the two give the same classes. */
#ifndef CN_IO_EXPORT_C_PLAN_H
#define CN_IO_EXPORT_C_PLAN_H
#include "io/export_c.h"
#include "model.h"
#include <stdbool.h>
#include <stdint.h>

/* int8 activation scales: this percentile of |x| over the calibration images */
#ifndef CALIB_PERCENTILE
#define CALIB_PERCENTILE 0.9999
#endif

typedef enum {
    OP_CONV, OP_LINEAR, OP_AFFINE, OP_RELU, OP_MAXPOOL, OP_AVGPOOL, OP_GAP, OP_LOG_SOFTMAX,
    OP_RELU6, OP_LEAKY_RELU,  /* in place; int8: the input's scale */
    OP_ADD,         /* element-wise sum of its inputs, in order (a ReLU after it fused); int8: each input
                       times its rescale, summed in float, rounded once to the output scale */
    OP_CONCAT       /* its inputs one after the other along channels; int8: each input requantised
                       to the output scale (times its rescale, rounded) */
} export_op_kind;

/* Ops that work in place on their input's buffer (AFFINE: batch norm not folded). */
static inline bool export_op_in_place(export_op_kind k) {
    return k == OP_AFFINE || k == OP_RELU || k == OP_RELU6 || k == OP_LEAKY_RELU || k == OP_LOG_SOFTMAX;
}

typedef struct {
    export_op_kind kind;
    int first, last;        /* model layers covered; the op's output is the engine's acts[last + 1] */
    /* Values, numbered as the engine numbers them (model.h: 0 the model input, j + 1 layer j's
     * output), with dropout and flatten resolved to the value they pass on. */
    int num_in;             /* values it reads: 1, or 2..CN_MAX_INPUTS (add, concat) */
    int in_v[CN_MAX_INPUTS];
    int in_n[CN_MAX_INPUTS];/* floats per sample of each */
    int out_v;              /* the value it writes: last + 1 */
    cn_shape in, out;       /* in: input 0's shape */
    int k, stride, pad;
    int groups, dilation;   /* conv: groups (weight (channels, in.c / groups, k, k)), tap spacing; 1 otherwise */
    float slope;            /* leaky_relu: negative slope */
    bool relu;              /* fused ReLU */
    bool bn_folded;         /* conv: the following batch norm is folded in */
    int channels;           /* conv/linear: output channels; affine: channels */
    size_t fan_in;          /* conv/linear: inputs per output channel */
    float *w, *b;           /* conv/linear: weight (channels x fan_in), bias (channels) or NULL;
                               affine: scale, shift (channels) */
    /* int8 */
    bool quant_in, quant_out;
    float s_in, s_out;      /* activation scales (real = q * s) */
    int8_t *wq;             /* conv/linear: quantised weight */
    float *mult, *qbias;    /* per channel: requantisation multiplier and bias (in the output scale) */
    int relu6_top;          /* relu6: q8(6 / s_in), the int8 value of 6 */
    float rescale[CN_MAX_INPUTS];   /* add/concat: scale of input k / s_out */
} export_op;

typedef struct {
    const cn_model *m;
    export_op *ops;
    int num_ops;
    int last_weighted;      /* int8: index of the last conv/linear op */
    float s_input;          /* int8: scale of the normalised input */
    bool norm_per_channel;  /* the input channels have different mean/std (arrays norm_mean/norm_std in model.c) */
    int num_values;         /* the model's layers + 1 */
    int out_value;          /* the value that holds the model's output */
    int *readers;           /* per value: the op inputs that read it (+1 for out_value) */
    int *last_reader;       /* per value: the last op that reads it (num_ops for out_value), -1 if none */
} export_plan;

/* True when op j alone reads value v: it may take v over (in place) or fuse with v's producer. */
static inline bool export_sole_reader(const export_plan *p, int v, int j) {
    return p->readers[v] == 1 && p->last_reader[v] == j;
}


/* Builds the plan of model m in *p (freed with cn_export_c_plan_free; nothing to free on
 * failure). flags & CN_EXPORT_C_INT8: also calibrates the activation scales on
 * calib_images (calib_count images of C*H*W pixels in [0, 1]) and quantises the
 * weights, as cn_export_c says. mean/std: the input normalisation (checked: finite,
 * std > 0). what: names the result in argument errors (a directory, a model);
 * target: names the consumer in "layer X has no C export (target T)" errors. */
cn_status cn_export_c_plan(const cn_model *m, const float *mean, const float *std, int flags, const float *calib_images,
                           int calib_count, const char *what, const char *target, export_plan *p);
void cn_export_c_plan_free(export_plan *p);

/* int8 (export_c_calib.c): the activation scales of plan p's int8 region (ops 0 ..
 * p->last_weighted) from a float reference of the plan run on the calibration images
 * (s_input; each op's s_in, s_out, quant_in, quant_out and, for add/concat, rescale). */
cn_status cn_export_c_calibrate(export_plan *p, const float *mean, const float *std, const float *images, int count);

/* Writes DIR/model.h and DIR/model.c for plan p (see cn_export_c for flags). */
cn_status cn_export_c_generate(const export_plan *p, const char *dir, const float *mean, const float *std, int flags, int calib_count,
                               cn_export_c_stats *stats);

#endif
