/* The int8 model's insides, shared by int8_model.c (which builds it from the quantised
 * plan) and int8_run.c (which runs it). Private to src/int8.
 *
 * The int8 region of the plan (its ops up to the last conv/linear) becomes steps over
 * int8 tensors of biased bytes (kernels/int8.h), pixel-major with channels padded to a
 * multiple of 4 and a border of 128 (zero) as wide as the padding of the conv that reads
 * the tensor. A chunk of up to I8_CHUNK images runs step by step; a tensor holds the chunk's
 * images one after the other, so a linear layer is one 1x1 convolution over them. The
 * last conv/linear writes float (channel, row, column) per image; the ops after it run
 * with the export's float helpers, each value of that float tail in a slot of its own.
 *
 * Branches: each value of the plan lives in a tensor (value_tensor) with the border its
 * first kernel reader needs; a reader that needs another border reads a copy (STEP_COPY,
 * made once per value and border), and an in-place op whose input a later op still reads
 * works on a copy too. */
#ifndef CN_INT8_STEPS_H
#define CN_INT8_STEPS_H
#include "int8/int8_model.h"
#include "io/export_c_plan.h"
#include "kernels/int8.h"
#include <stdbool.h>

#define I8_CHUNK 16

typedef enum {
    STEP_CONV,      /* conv or linear (+ a batch norm after it, fused): kernel set */
    STEP_MAXPOOL,   /* cn_i8_maxpool */
    STEP_RELU,      /* cn_i8_relu, in place */
    STEP_GAP,       /* cn_i8_gap */
    STEP_REF,       /* batch norm, relu6, leaky_relu (in place), average pooling, grouped or dilated conv
                       (out -1: float output): the export's int8 helper on a (c,h,w) copy */
    STEP_COPY,      /* the interior of tensor in into tensor out (another border, or a copy to change) */
    STEP_ADD,       /* the export's add_q over tensors ins[] (op->num_in of them) */
    STEP_CONCAT     /* the export's concat_q over tensors ins[], channels one input after the other */
} i8_step_kind;

typedef struct {
    int c, h, w;            /* real channels, rows and columns */
    int cp, pad;            /* channels per pixel (c rounded up to 4), border width */
    size_t bytes;           /* one image: (h + 2 pad) * (w + 2 pad) * cp */
    size_t prefix;          /* bytes of the tensors before it, per image: the chunk's copy starts at I8_CHUNK * prefix */
} i8_tensor;

typedef struct {
    i8_step_kind kind;
    const export_op *op;    /* the plan's op (for STEP_CONV with a fused batch norm, the conv's) */
    int in, out;            /* tensors; out == in: in place; out -1: float output */
    int ins[CN_MAX_INPUTS]; /* STEP_ADD, STEP_CONCAT: the input tensors (ins[0] == in) */
    bool linear;            /* STEP_CONV of a linear layer: in_w = out_w = the chunk's images, set per run */
    cn_i8_conv_geom g;      /* STEP_CONV: one image (a conv) */
    void *packed;           /* STEP_CONV: weights packed for the model's kernel set */
    int32_t *comp;
    cn_i8_epilogue ep;
} i8_step;

struct cn_int8_model {
    export_plan plan;
    const cn_i8_kernel_set *ks;
    i8_step *steps;
    int num_steps;
    i8_tensor *tensors;     /* tensors[0]: the quantised input (or its patches, below) */
    /* patch_k > 0: the first conv (k x k, stride patch_stride, padding patch_pad) alone reads
     * the input, which has few channels (not a multiple of 4): tensor 0 then holds, per
     * output pixel of that conv, its k*k*C input values in the weights' order (channel, row,
     * column), padded to a multiple of 4 (im2col), and the conv runs as a 1x1 conv over them:
     * a fourth of the multiply-adds for one input channel. The sums are the same integers. */
    int patch_k, patch_stride, patch_pad;
    int num_tensors;
    size_t image_bytes;     /* all tensors of one image */
    size_t float_size;      /* floats of the largest activation from the last conv/linear on */
    int num_tail;           /* float tail slots: the last conv/linear's output, then one per op after it */
    int *tail_slot;         /* per value of the plan: its float tail slot, or -1 */
    size_t chw_size;        /* bytes of the largest int8 tensor (STEP_REF's copies), and of the padded input planes with patch_k */
    cn_shape input;
    int classes, log_probs;
    float mean[CN_MAX_CHANNELS], std[CN_MAX_CHANNELS];
    float inv_scale;        /* 1 / the input scale, as the export's INPUT_INV_SCALE */
};

/* Offset of interior pixel (y, x) of tensor t in one image's copy. */
static inline size_t i8_at(const i8_tensor *t, int y, int x) {
    return ((size_t)(y + t->pad) * (size_t)(t->w + 2 * t->pad) + (size_t)(x + t->pad)) * (size_t)t->cp;
}

#endif
