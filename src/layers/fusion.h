/* Layer fusion: a chain led by a direct conv2d (stride 1, not grouped or dilated) or batchnorm2d
 * layer and followed by relu, optionally then a 2x2 stride-2 max-pool (in training also an add, a
 * residual join, followed by relu), is computed by
 * the leader in one pass over its output, forward and backward; the absorbed
 * relu/maxpool layers' own passes then do nothing. In eval mode a conv + relu
 * chain also absorbs a batchnorm2d that follows the relu (BN's per-channel
 * affine map with the running statistics, applied to the relu output), and a
 * 2x2 max-pool after that, with or without a dropout (the identity) between;
 * and a direct conv followed by a batchnorm2d absorbs it (the affine map applied
 * after the conv's bias: bn_first), the relu after it if any, and then a 2x2
 * max-pool, with or without a dropout between (conv -> BN [-> relu [-> pool]]);
 * a fast depthwise conv absorbs a batchnorm2d and a relu after it the same way
 * (its own kernels: conv2d_depthwise.c). In training a batchnorm2d followed by a
 * dropout and a 2x2 max-pool (no relu) leads a chain too (chain.dropout): it applies
 * the dropout as its own dropout fusion does, into one plane of scratch, and pools
 * that; its backward takes the dropout's factor (keep * scale) at each winner, kept by
 * the forward, in place of the relu mask.
 *
 * Only what a later pass needs is written: the chain's final output and the
 * pool's argmax (saved by the maxpool layer as usual). The activations inside
 * a chain (the leader's raw output, the relu output before pooling) and their
 * gradients are not materialised. Backward needs nothing else:
 *   relu mask   = chain output > 0  (relu output > 0 iff its input > 0, and a
 *                 pooled value is the relu output at its argmax)
 *   pool        = the gradient goes to the argmax of each window.
 * The leader's own output slot (its output buffer, unused by a fused forward),
 * holds the rebuilt dL/d(leader output) during backward: the chain's output
 * gradient may share its buffer with the leader's input gradient.
 * Values are bit-identical to the unfused layers (same float operations in
 * the same order), except the batch-norm backward sums, which add the same
 * terms in another order (in double).
 *
 * The rules below are evaluated once per session and mode by the execution
 * plan (exec/plan.c), which records the outcome in each layer's step and binds
 * the buffers a fused layer shares with its neighbours (layers.h: cn_layer_ctx).
 * "Layer i" below is the i-th layer of the model; the layers themselves see only
 * their step and their bound buffers. */
#ifndef CN_LAYERS_FUSION_H
#define CN_LAYERS_FUSION_H
#include "model.h"
#include "kernels/kernels.h"
#include <stdbool.h>

/* A conv2d on the direct kernels (conv2d.c): stride 1, not grouped, not dilated. The fusions
 * below need one; other convolutions lead no chain. */
static inline bool cn_conv_is_direct(const cn_layer *l) {
    return l->kind == CN_LAYER_CONV2D && l->stride == 1 && l->groups == 1 && l->dilation == 1;
}

typedef struct {
    int length;         /* layers in the chain, 1 = no fusion */
    bool relu, pool;    /* absorbed layers: relu at leader+1 (leader+2 after bn_first), maxpool at
                           leader+2 (or last, after bn or bn_first) */
    bool bn;            /* eval mode: batchnorm2d at leader+2 */
    bool bn_first;      /* eval mode, a direct or fast depthwise conv: batchnorm2d at leader+1 (relu, if
                           any, after it; a direct conv's pool, if any, last) */
    bool dropout;       /* training, a batchnorm2d: dropout at leader+1 (pool at leader+2, no relu) */
} cn_chain;

static inline bool cn_fusable_pool(const cn_layer *l) {
    return l->kind == CN_LAYER_MAXPOOL2D && l->kernel == 2 && l->stride == 2 && l->pad == 0 &&
           l->in.h >= 2 && l->in.w >= 2 && l->in.w <= CN_EPILOGUE_MAX_WIDTH;
}

/* A dropout that a batch norm before it applies in training (element dropout, p > 0). */
static inline bool cn_dropout_applied(const cn_layer *l) {
    return l->kind == CN_LAYER_DROPOUT && l->dropout_p > 0.0f && !l->channel_dropout;
}

/* The chain led by layer i in training or eval mode (length 1 when layer i leads none). */
bool cn_conv2d_depthwise_fast(const cn_layer *l);   /* layers/conv2d_depthwise.c */

static inline cn_chain cn_chain_at(const cn_model *m, bool training, int i) {
    cn_chain ch = { 1, false, false, false, false, false };
    const cn_layer *l = &m->layers[i];
    /* Eval: a fast depthwise conv applies the batch norm after it, and a relu after that, as it
     * stores each output vector (memory-bound work: one pass over the output instead of three). */
    if (!training && cn_conv2d_depthwise_fast(l) && i + 1 < m->num_layers && m->layers[i + 1].kind == CN_LAYER_BATCHNORM2D) {
        ch.bn_first = true;
        ch.length = 2;
        if (i + 2 < m->num_layers && m->layers[i + 2].kind == CN_LAYER_RELU) { ch.relu = true; ch.length = 3; }
        return ch;
    }
    /* Training: an add (a residual join) followed by relu writes relu(sum) in one pass, and its
     * backward hands each input the relu-masked gradient (join.c). (Eval plans of branched models
     * are unfused.) */
    if (training && l->kind == CN_LAYER_ADD && i + 1 < m->num_layers && m->layers[i + 1].kind == CN_LAYER_RELU) {
        ch.relu = true;
        ch.length = 2;
        return ch;
    }
    bool leader = cn_conv_is_direct(l) || l->kind == CN_LAYER_BATCHNORM2D;
    if (!leader || l->out.w > CN_EPILOGUE_MAX_WIDTH || i + 1 >= m->num_layers) return ch;
    /* Eval: a direct conv applies the batch norm after it (its affine map with the running
     * statistics, after the conv's bias), the relu after that (if any) and then a 2x2 max-pool
     * (maybe behind a dropout: the identity) in its output pass. */
    if (!training && l->kind == CN_LAYER_CONV2D && m->layers[i + 1].kind == CN_LAYER_BATCHNORM2D) {
        ch.bn_first = true;
        ch.length = 2;
        if (i + 2 >= m->num_layers || m->layers[i + 2].kind != CN_LAYER_RELU) return ch;
        ch.relu = true;
        ch.length = 3;
        int p = i + 3;
        if (p < m->num_layers && m->layers[p].kind == CN_LAYER_DROPOUT) p++;
        if (p < m->num_layers && cn_fusable_pool(&m->layers[p])) {
            ch.pool = true;
            ch.length = p - i + 1;
        }
        return ch;
    }
    /* Training: a batch norm followed by a dropout and a 2x2 max-pool writes only the pooled
     * output (and the dropout's mask): its backward forms the gradient at its output from the
     * pooled gradient, the winners and the mask at each winner (batchnorm2d.c). */
    if (training && l->kind == CN_LAYER_BATCHNORM2D && i + 2 < m->num_layers && cn_dropout_applied(&m->layers[i + 1]) &&
        cn_fusable_pool(&m->layers[i + 2])) {
        ch.dropout = ch.pool = true;
        ch.length = 3;
        return ch;
    }
    if (m->layers[i + 1].kind != CN_LAYER_RELU) return ch;
    ch.relu = true;
    ch.length = 2;
    if (i + 2 < m->num_layers && cn_fusable_pool(&m->layers[i + 2])) {
        ch.pool = true;
        ch.length = 3;
    } else if (!training && l->kind == CN_LAYER_CONV2D && i + 2 < m->num_layers &&
               m->layers[i + 2].kind == CN_LAYER_BATCHNORM2D &&
               !(i + 3 < m->num_layers && m->layers[i + 3].kind == CN_LAYER_RELU)) {   /* BN leads no chain */
        ch.bn = true;
        ch.length = 3;
        int p = i + 3;      /* and a 2x2 max-pool after the BN, maybe behind a dropout (eval: identity) */
        if (p < m->num_layers && m->layers[p].kind == CN_LAYER_DROPOUT) p++;
        if (p < m->num_layers && cn_fusable_pool(&m->layers[p])) {
            ch.pool = true;
            ch.length = p - i + 1;
        }
    }
    return ch;
}

/* True when layer i is computed by the leader of an earlier chain. */
static inline bool cn_layer_absorbed(const cn_model *m, bool training, int i) {
    for (int back = 1; back <= 4 && i - back >= 0; back++)
        if (cn_chain_at(m, training, i - back).length > back) return true;
    return false;
}

/* Batch-norm statistics from the conv pass: when a batchnorm2d layer j takes the
 * output of a chain led by a direct conv2d, or of a fast depthwise conv2d (which leads
 * no chain in training), in training the conv writes, for
 * every (sample, channel) plane of that output, {sum, sum of squared deviations
 * from the plane's mean} (into BN's plane statistics) while the plane is still in
 * cache, instead of BN reading its input once more. True when layer j gets its
 * statistics this way (training only: eval uses the running statistics). */
static inline bool cn_bn_stats_from_conv(const cn_model *m, bool training, int j) {
    if (!training || j < 1 || j >= m->num_layers || m->layers[j].kind != CN_LAYER_BATCHNORM2D) return false;
    for (int len = 1; len <= 3 && j - len >= 0; len++) {
        const cn_layer *l = &m->layers[j - len];
        if (cn_chain_at(m, training, j - len).length == len && cn_conv_is_direct(l)) return true;
        if (len == 1 && cn_conv2d_depthwise_fast(l)) return true;
    }
    return false;
}

/* Batch-norm input gradient computed by the depthwise conv before it: when a fast depthwise
 * conv2d (layer j-1) feeds a batchnorm2d layer j whose chain has no pool (BN alone, or BN +
 * relu), in training BN's backward only takes its sums (from its input, the chain's output
 * gradient and, with the relu, the chain's output: cn_bn_relu_grad_sums) and its per-channel
 * coefficients {k, mean_dy, mean_dy_xhat} (saved state), and writes neither its input
 * gradient nor the gradient at its own output; the conv forms dL/d(its output) plane by plane
 * from the same (cn_bn_relu_grad_input, the same float operations as BN's own pass) while
 * the plane is in cache, and takes its weight and input gradients from it. The chain's
 * output gradient (gradient buffer of value j + length) and the conv's input gradient (of
 * value j - 1) are the two different gradient buffers, so nothing is overwritten early. */
static inline bool cn_bn_grad_in_dw_conv(const cn_model *m, bool training, int j) {
    if (!training || j < 1 || j >= m->num_layers || m->layers[j].kind != CN_LAYER_BATCHNORM2D) return false;
    const cn_layer *l = &m->layers[j - 1];
    return cn_conv2d_depthwise_fast(l) && cn_chain_at(m, training, j - 1).length == 1 &&
           !cn_chain_at(m, training, j).pool;
}

/* Batch-norm input gradient computed by the conv before it: when a direct conv2d
 * (not followed by relu) feeds a batchnorm2d that leads a relu + pool chain, BN's
 * backward only computes its sums and per-channel coefficients (in its saved
 * state) and leaves, in its own output slot, a copy of the chain's output
 * gradient (whose buffer the conv's input gradient may share) after the pool
 * winners' inputs; the conv then rebuilds dL/d(conv output) sample by sample
 * while it is in cache, instead of BN writing it to memory for the conv to read
 * back. True when BN layer j hands over. */
static inline bool cn_bn_grad_in_conv(const cn_model *m, bool training, int j) {
    if (!training || j < 1 || j >= m->num_layers || m->layers[j].kind != CN_LAYER_BATCHNORM2D) return false;
    const cn_layer *l = &m->layers[j - 1];
    cn_chain ch = cn_chain_at(m, training, j);
    return cn_conv_is_direct(l) && cn_chain_at(m, training, j - 1).length == 1 && ch.pool && !ch.dropout;
}

/* What a batch norm hands to the conv before it (see cn_bn_grad_in_conv); pooled planes
 * are (B, C, pooled). Built from the BN's bound buffers (layers.h: cn_bn_handoff_of). */
typedef struct {
    const float *x;                 /* BN input = conv output (B, C, plane) */
    float *x_win;                   /* BN input at each pool winner (kept by BN's forward) */
    float *grad;                    /* copy of the chain's output gradient */
    const float *pooled_out;        /* the chain's output */
    const int32_t *argmax;          /* pool winners */
    const float *mean, *invstd;     /* BN's saved statistics (C each) */
    const float *k, *mean_dy, *mean_dy_xhat;  /* per-channel backward coefficients (C each) */
    int channels, plane, pooled;
} cn_bn_handoff;

/* Masked input gradient for a conv + relu before: when layer j (a batchnorm2d
 * or a direct conv2d) takes the output of a direct conv2d + relu chain (conv at
 * j-2), its backward writes dL/d(conv output) = (its input > 0) ? dL/d(its input) : 0
 * (the relu's backward) straight into that conv's own output slot, where the
 * conv's backward reads it, instead of into its own input gradient. */
static inline bool cn_grad_to_conv_relu(const cn_model *m, bool training, int j) {
    if (!training || j < 2 || j >= m->num_layers) return false;
    const cn_layer *me = &m->layers[j], *l = &m->layers[j - 2];
    bool takes = me->kind == CN_LAYER_BATCHNORM2D || cn_conv_is_direct(me);
    return takes && cn_conv_is_direct(l) && cn_chain_at(m, training, j - 2).length == 2;
}

/* Batch-norm input gradient computed by the conv + relu before it: when a batchnorm2d
 * layer j that leads no chain takes the output of a direct conv2d + relu chain
 * (cn_grad_to_conv_relu), BN's backward only computes its sums and the per-channel
 * coefficients {k, mean_dy, mean_dy_xhat} (in its saved state); the conv at j-2 forms
 * the relu-masked dL/d(conv output) sample by sample from BN's input and output
 * gradient (the same float operations as BN's own pass) while they are in cache,
 * instead of BN writing it to memory for the conv to read back. */
static inline bool cn_bn_grad_in_conv_relu(const cn_model *m, bool training, int j) {
    return cn_grad_to_conv_relu(m, training, j) && m->layers[j].kind == CN_LAYER_BATCHNORM2D &&
           cn_chain_at(m, training, j).length == 1;
}

/* Dropout fused into a batch norm: in training, a batchnorm2d layer j that leads no
 * chain and is followed by a dropout layer (p > 0) applies the dropout in its output
 * pass, sample by sample: it writes the dropout's output and keep mask (the
 * same bits as the dropout's own pass), and the dropout's forward does nothing. Its
 * backward runs as usual (a streaming pass over whole samples; reading the mask inside
 * BN's per-channel passes measured slower). */
static inline bool cn_dropout_fused_into_bn(const cn_model *m, bool training, int j) {
    return training && j >= 0 && j + 1 < m->num_layers && m->layers[j].kind == CN_LAYER_BATCHNORM2D &&
           cn_chain_at(m, training, j).length == 1 && cn_dropout_applied(&m->layers[j + 1]);
}

#endif
