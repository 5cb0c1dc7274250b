/* The execution plan of a model in one mode (training or eval), worked out once
 * per session: which layers run, which fused chains they lead (layers/fusion.h),
 * which neighbour each fused layer works with, and which buffer holds each value.
 *
 * Values are the tensors between layers: value v is the output of layer v - 1
 * (value 0 the model input, value L, the number of layers, the model's output);
 * in a plain stack value i is the input of layer i, in a model with branches
 * (layer.h: inputs, from=) a layer may read any earlier value, and add/concat
 * read several. buffer[v] names the activation buffer that holds value v. A
 * pass-through layer (flatten; in eval dropout too) outputs its input value, so the
 * two share one buffer and its forward does nothing; otherwise in training every
 * value has its own buffer (the backward pass reads them all). An eval plan whose layers
 * each run their own passes (a model with branches, or CN_SESSION_UNFUSED) goes
 * further: each value lives from the layer that writes it to the last layer that
 * reads it, and a value takes over the buffer of one whose last reader has run.
 *
 * Gradients of a plain stack flow between neighbouring values only: d(value v)
 * lives in gradient buffer v % 2 (two buffers sized for the largest value). With
 * branches (plan->branched) each value has its own gradient buffer; a value read
 * by several layers gets the gradient its last reader writes there, and each
 * other reader writes into an extra buffer of its own, which the backward pass
 * adds in (in a fixed order) before the value's producer runs. Fusion (layers/fusion.h)
 * looks at neighbouring layers only: a training plan of a model with branches fuses within
 * its plain runs (each layer after a run's first reads only the value before it, which has no
 * other reader), so no chain hides a value that another layer reads; its eval plan runs
 * unfused, sharing buffers by lifetime. */
#ifndef CN_EXEC_PLAN_H
#define CN_EXEC_PLAN_H
#include "model.h"
#include "layers/fusion.h"

/* What the plan decided for one layer (i below); the layer acts on it, the session binds
 * the buffers it names. Flags are false, indices -1, where they do not apply. */
typedef struct {
    bool forward, backward;     /* false: absorbed into an earlier layer's chain, a pass-through's
                                   forward or, a dropout, applied by the batch norm before it */
    bool pass_through;          /* flatten, eval dropout: its output value is its input value */
    cn_chain chain;             /* the chain it leads (length 1: none); its output is value i + length */
    int pool;                   /* the chain's max-pool layer (its saved state holds the argmax), or -1 */
    int peer;                   /* conv: the batch norm its chain feeds (or absorbs, eval);
                                   batch norm: the dropout it applies; else -1 */
    /* conv2d */
    bool bn_stats_out;          /* writes its peer's plane statistics in the output pass */
    bool rebuild_first;         /* relu-only chain: rebuild dL/d(conv output) for every sample before dx */
    /* batchnorm2d */
    bool stats_from_conv;       /* its plane statistics come from the conv before (training) */
    bool grad_in_conv;          /* hands its input gradient over to the conv before (pool chain) */
    bool grad_in_conv_relu;     /* the conv + relu before forms its input gradient */
    bool grad_in_dw_conv;       /* the depthwise conv before forms its input gradient (from the
                                   chain's output gradient: fusion.h) */
    bool applies_dropout;       /* applies its peer dropout in its output pass (and, chain.dropout,
                                   its backward too) */
    bool applied_by_add;        /* training: its output's only reader, an add, applies its affine map
                                   (reading this layer's input); its forward takes the statistics only */
    /* add */
    unsigned bn_inputs;         /* training: bit k set when input k is the output of a batch norm that
                                   this add applies (applied_by_add) */
    bool reference_conv;        /* runs the im2col reference path (a test switch) */
    bool bf16_conv;             /* training, --precision bf16: runs in mixed precision (conv2d.c's direct
                                   path on bf16 operands, or conv2d_bf16.c) */
    /* linear */
    bool bf16_linear;           /* training, --precision bf16: runs the mixed-precision path (linear_bf16.c) */
    /* batchnorm2d or conv2d */
    bool grad_to_conv_relu;     /* writes the relu-masked input gradient into the own output slot
                                   of the conv two layers back (value i - 1) */
} cn_step;

typedef struct {
    bool training;
    bool branched;              /* the model has branches (model.h: cn_model_has_branches) */
    int num_layers;
    cn_step *steps;             /* num_layers */
    int *buffer;                /* num_layers + 1: activation buffer of each value */
    size_t *buffer_floats;      /* num_layers + 1: floats per sample of each buffer (its widest value) */
    /* branched, training: gradient buffers 0..L are the values', L+1 .. num_grads-1 the extra
     * ones of values with several readers */
    int num_grads;
    int (*grad_of_input)[CN_MAX_INPUTS];    /* num_layers: the gradient buffer each input's gradient goes to */
    int *grad_value;            /* num_grads: the value whose gradient each buffer holds (a share of) */
} cn_plan;

/* Works out the plan of `model` in one mode; flags (test switches, exec/session.h):
 * CN_SESSION_UNFUSED, every layer runs its own passes; CN_SESSION_REFERENCE_CONV, that and
 * every conv2d runs the im2col reference path; CN_SESSION_BF16 (training plan only): every conv2d
 * and linear layer runs in mixed precision (cn_step.bf16_conv, bf16_linear), and when a conv2d is
 * not direct (it runs conv2d_bf16.c, which fuses nothing) every layer runs its own passes. Allocates steps and buffer; free with cn_plan_free. */
cn_status cn_plan_build(const cn_model *model, bool training, unsigned flags, cn_plan *plan);
void cn_plan_free(cn_plan *plan);

#endif
