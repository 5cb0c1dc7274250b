/* batchnorm2d with PyTorch semantics: training normalises with the batch's
 * biased variance and updates running_mean/running_var (unbiased variance)
 * with momentum; eval uses the running statistics. Statistics are summed in
 * double in two passes (mean, then squared deviations), as PyTorch's CPU
 * kernel does; channels are split over threads. A following relu (and 2x2
 * max-pool) is fused in (see fusion.h). */
#include "layers/layers.h"
#include "layers/fusion.h"
#include "kernels/kernels.h"
#include <math.h>
#include <string.h>

/* Output of a BN-led chain: the chain's last layer's output and, with a pool, its argmax. */
typedef struct {
    cn_chain chain;
    float *out;             /* (B, C, out_plane) */
    int32_t *argmax;        /* (B, C, out_plane) when pooling in training, else NULL */
    float *x_win;           /* with argmax: the BN input at each winner, kept in BN's unused output slot */
    int out_plane;
} bn_target;

static bn_target bn_target_of(const cn_layer_ctx *c) {
    const cn_model *m = c->model;
    const cn_layer *l = c->layer;
    bn_target t = { .chain = cn_chain_at(m, c->index) };
    t.out = m->acts[c->index + t.chain.length];
    t.out_plane = t.chain.pool ? (l->in.h / 2) * (l->in.w / 2) : l->in.h * l->in.w;
    t.argmax = t.chain.pool && m->training ? (int32_t *)m->saved[c->index + 2] : NULL;
    t.x_win = m->acts[c->index + 1];     /* = cn_bn_handoff_of(...).x_win */
    return t;
}

/* Batch mean and sum of squared deviations of channel ch: from the per-plane
 * statistics of the conv pass (fusion.h), combined in sample order (Chan et al.),
 * or two passes over the input (PyTorch's CPU kernel). Sums in double. */
static void channel_stats(const cn_layer_ctx *c, const double *plane_stats, int ch, double *mean, double *sq) {
    const cn_layer *l = c->layer;
    int C = l->in.c, plane = l->in.h * l->in.w, B = c->batch;
    double count = (double)B * plane;
    if (!plane_stats) {
        const float *x = c->in + (size_t)ch * plane;
        *mean = cn_slices_sum(x, B, (size_t)C * plane, plane) / count;
        *sq = cn_slices_sq_dev(x, B, (size_t)C * plane, plane, *mean);
        return;
    }
    double sum = 0.0, m2 = 0.0;
    for (int b = 0; b < B; b++) sum += plane_stats[2 * ((size_t)b * C + ch)];
    *mean = sum / count;
    for (int b = 0; b < B; b++) {
        const double *st = plane_stats + 2 * ((size_t)b * C + ch);
        double d = st[0] / plane - *mean;
        m2 += st[1] + plane * d * d;
    }
    *sq = m2;
}

static void affine_of(const cn_model *m, const cn_layer *l, int ch, float mean, float invstd, float *scale, float *shift) {
    *scale = m->params[l->weight_offset + ch] * invstd;
    *shift = m->params[l->bias_offset + ch] - mean * *scale;
}

void cn_batchnorm2d_eval_affine(const cn_model *m, const cn_layer *l, int ch, float *scale, float *shift) {
    const float *running_mean = m->buffers + l->buffer_offset, *running_var = running_mean + l->in.c;
    affine_of(m, l, ch, running_mean[ch], 1.0f / sqrtf(running_var[ch] + l->bn_eps), scale, shift);
}

/* y = x * scale + shift of channel ch, from the batch (training) or running statistics. */
static void channel_affine(const cn_layer_ctx *c, int ch, float *scale, float *shift) {
    if (c->model->training) affine_of(c->model, c->layer, ch, c->saved[ch], c->saved[c->layer->in.c + ch], scale, shift);
    else cn_batchnorm2d_eval_affine(c->model, c->layer, ch, scale, shift);
}

/* Plane (b, ch) of a BN-led chain: x (H, W) -> BN, relu (and pool: argmax, x_win) into the chain's output. */
static void apply_chain_plane(const cn_layer_ctx *c, const bn_target *t, const cn_kernel_set *ks, const float *x,
                              int b, int ch) {
    const cn_layer *l = c->layer;
    cn_epilogue e = { .h = l->in.h, .w = l->in.w, .x_stride = l->in.w, .affine = 1, .relu = t->chain.relu,
                      .pool = t->chain.pool };
    channel_affine(c, ch, &e.scale, &e.shift);
    size_t o = ((size_t)b * l->in.c + ch) * t->out_plane;
    ks->epilogue(&e, x, t->out + o, t->argmax ? t->argmax + o : NULL);
    if (t->argmax) cn_gather(x, t->argmax + o, t->out_plane, t->x_win + o);
}

// in (B,C,H,W) -> out (B,C,H,W); saved: mean (C), invstd (C)
void cn_batchnorm2d_forward(const cn_layer_ctx *c) {
    const cn_layer *l = c->layer;
    cn_model *m = c->model;
    if (cn_layer_absorbed(m, c->index)) return;     /* eval mode: applied by the conv + relu before */
    int C = l->in.c, plane = l->in.h * l->in.w, B = c->batch;
    size_t stride = (size_t)C * plane;
    float *running_mean = m->buffers + l->buffer_offset, *running_var = running_mean + C;
    bool training = m->training;
    bn_target t = bn_target_of(c);
    const cn_kernel_set *ks = cn_kernels();
    const double *plane_stats = training && cn_bn_stats_from_conv(m, c->index) ? (const double *)c->out : NULL;
    bool recomputed = c->index >= 1 && cn_conv_recomputed(m, c->index - 1);
    bool dropout = cn_dropout_fused_into_bn(m, c->index);
    #pragma omp parallel num_threads(m->num_threads)
    {
        /* statistics first: plane_stats live in the output slot, read them all before writing it */
        #pragma omp for schedule(static)
        for (int ch = 0; ch < C; ch++) {
            if (!training) continue;
            size_t count = (size_t)B * plane;
            double mu, sq;
            channel_stats(c, plane_stats, ch, &mu, &sq);
            double var = sq / (double)count;
            double unbiased = count > 1 ? sq / (double)(count - 1) : var;
            float mom = l->bn_momentum;
            running_mean[ch] = (1.0f - mom) * running_mean[ch] + mom * (float)mu;
            running_var[ch] = (1.0f - mom) * running_var[ch] + mom * (float)unbiased;
            c->saved[ch] = (float)mu;
            c->saved[C + ch] = (float)(1.0 / sqrt(var + l->bn_eps));
        }
        if (recomputed) {
            /* the input (a cheap conv's output, fusion.h) is recomputed sample by sample */
            cn_conv_recompute r;
            cn_conv2d_recompute_begin(m, c->index - 1, &r);
            #pragma omp for schedule(static)
            for (int b = 0; b < B; b++) {
                const float *x = cn_conv2d_recompute(&r, m->acts[c->index - 1], B, b);
                for (int ch = 0; ch < C; ch++) apply_chain_plane(c, &t, ks, x + (size_t)ch * plane, b, ch);
            }
        } else if (dropout) {
            /* BN then the dropout (fusion.h) into the dropout's output, sample by sample */
            cn_dropout_params d = cn_dropout_params_of(&m->layers[c->index + 1]);
            uint8_t *keep = cn_dropout_mask(m, c->index + 1);
            float *y = m->acts[c->index + 2];
            #pragma omp for schedule(static)
            for (int b = 0; b < B; b++) {
                uint64_t sample_stream = cn_dropout_stream(m->dropout_seed, c->index + 1, b);
                for (int ch = 0; ch < C; ch++) {
                    float affine[2];
                    channel_affine(c, ch, &affine[0], &affine[1]);
                    size_t o = (size_t)b * stride + (size_t)ch * plane;
                    cn_dropout_forward_kernel(c->in + o, y + o, keep + o, plane, sample_stream, (uint32_t)(ch * plane),
                                              d.threshold, d.keep_scale, affine);
                }
            }
        } else {
            #pragma omp for schedule(static)
            for (int ch = 0; ch < C; ch++) {
                const float *x = c->in + (size_t)ch * plane;
                if (t.chain.length > 1) {
                    for (int b = 0; b < B; b++) apply_chain_plane(c, &t, ks, x + (size_t)b * stride, b, ch);
                    continue;
                }
                float scale, shift;
                channel_affine(c, ch, &scale, &shift);
                cn_slices_affine(x, c->out + (size_t)ch * plane, B, stride, plane, scale, shift);
            }
        }
    }
    if (training) m->bn_batches_tracked[l->bn_index]++;
}

/* Backward of a BN -> relu -> 2x2 max-pool chain: only the pool winners carry gradient. */
static void pooled_backward(const cn_layer_ctx *c, const bn_target *t) {
    const cn_layer *l = c->layer;
    cn_model *m = c->model;
    int C = l->in.c, plane = l->in.h * l->in.w, B = c->batch;
    size_t stride = (size_t)C * plane, out_stride = (size_t)C * t->out_plane;
    const float *gamma = m->params + l->weight_offset;
    float *dgamma = m->grads + l->weight_offset, *dbeta = m->grads + l->bias_offset;
    const float *g = m->grad_acts[c->index + t->chain.length];
    double count = (double)B * plane;
    bool handoff = cn_bn_grad_in_conv(m, c->index);
    cn_bn_handoff h = cn_bn_handoff_of(m, c->index, B);
    #pragma omp parallel for schedule(static) num_threads(m->num_threads)
    for (int ch = 0; ch < C; ch++) {
        float mean = c->saved[ch], invstd = c->saved[C + ch];
        const float *x = c->in + (size_t)ch * plane;
        size_t o = (size_t)ch * t->out_plane;
        double sum_dy, sum_dy_xhat;
        cn_pooled_bn_grad_sums(t->x_win + o, g + o, t->out + o, B, out_stride, t->out_plane, mean, invstd,
                               &sum_dy, &sum_dy_xhat);
        dgamma[ch] = (float)sum_dy_xhat;
        dbeta[ch] = (float)sum_dy;
        if (!c->grad_in) continue;
        float k = gamma[ch] * invstd;
        float mean_dy = (float)(sum_dy / count), mean_dy_xhat = (float)(sum_dy_xhat / count);
        if (handoff) {
            h.k[ch] = k;
            h.mean_dy[ch] = mean_dy;
            h.mean_dy_xhat[ch] = mean_dy_xhat;
            for (int b = 0; b < B; b++) memcpy(h.grad + o + (size_t)b * out_stride, g + o + (size_t)b * out_stride,
                                               (size_t)t->out_plane * sizeof(float));
            continue;
        }
        cn_pooled_bn_grad_input(x, t->x_win + o, g + o, t->out + o, t->argmax + o, B, stride, out_stride, plane,
                                t->out_plane, mean, invstd, k, mean_dy, mean_dy_xhat, c->grad_in + (size_t)ch * plane);
    }
}

void cn_batchnorm2d_backward(const cn_layer_ctx *c) {
    const cn_layer *l = c->layer;
    cn_model *m = c->model;
    int C = l->in.c, plane = l->in.h * l->in.w, B = c->batch;
    size_t stride = (size_t)C * plane;
    const float *gamma = m->params + l->weight_offset;
    float *dgamma = m->grads + l->weight_offset, *dbeta = m->grads + l->bias_offset;
    double count = (double)B * plane;
    bn_target t = bn_target_of(c);
    if (t.chain.pool) { pooled_backward(c, &t); return; }
    /* with relu fused, dL/d(BN output) is rebuilt into BN's own output slot acts[i+1] (never
     * written by a fused forward); per channel, so dx may share the chain gradient's buffer */
    const float *grad_out = c->grad_out;
    float *dy_chain = m->acts[c->index + 1];
    const float *chain_grad = m->grad_acts[c->index + t.chain.length];
    if (t.chain.length > 1) grad_out = dy_chain;
    /* dx, or (fusion.h) the relu-masked gradient for a conv + relu before this layer, or
     * only the coefficients for that conv to compute it */
    bool to_conv_relu = cn_grad_to_conv_relu(m, c->index), handoff = cn_bn_grad_in_conv_relu(m, c->index);
    float *dx = to_conv_relu ? m->acts[c->index - 1] : c->grad_in, *coef = m->acts[c->index + 1];
    #pragma omp parallel for schedule(static) num_threads(m->num_threads)
    for (int ch = 0; ch < C; ch++) {
        if (t.chain.length > 1)
            for (int b = 0; b < B; b++) {
                size_t i = ((size_t)b * C + ch) * plane;
                cn_chain_grad(chain_grad + i, t.out + i, NULL, plane, plane, dy_chain + i);
            }
        float mean = c->saved[ch], invstd = c->saved[C + ch];
        const float *x = c->in + (size_t)ch * plane, *dy = grad_out + (size_t)ch * plane;
        double sum_dy, sum_dy_xhat;
        cn_slices_bn_grad_sums(x, dy, B, stride, plane, mean, invstd, &sum_dy, &sum_dy_xhat);
        dgamma[ch] = (float)sum_dy_xhat;
        dbeta[ch] = (float)sum_dy;
        if (!c->grad_in) continue;
        float k = gamma[ch] * invstd;
        float mean_dy = (float)(sum_dy / count), mean_dy_xhat = (float)(sum_dy_xhat / count);
        if (handoff) {
            coef[ch] = k;
            coef[C + ch] = mean_dy;
            coef[2 * C + ch] = mean_dy_xhat;
            continue;
        }
        cn_slices_bn_grad_input(x, dy, dx + (size_t)ch * plane, B, stride, plane, mean, invstd, k,
                                mean_dy, mean_dy_xhat, to_conv_relu);
    }
}
