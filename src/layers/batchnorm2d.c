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
    int out_plane;
} bn_target;

static bn_target bn_target_of(const cn_layer_ctx *c) {
    const cn_model *m = c->model;
    const cn_layer *l = c->layer;
    bn_target t = { .chain = cn_chain_at(m, c->index) };
    t.out = m->acts[c->index + t.chain.length];
    t.out_plane = t.chain.pool ? (l->in.h / 2) * (l->in.w / 2) : l->in.h * l->in.w;
    t.argmax = t.chain.pool && m->training ? (int32_t *)m->saved[c->index + 2] : NULL;
    return t;
}

// in (B,C,H,W) -> out (B,C,H,W); saved: mean (C), invstd (C)
void cn_batchnorm2d_forward(const cn_layer_ctx *c) {
    const cn_layer *l = c->layer;
    cn_model *m = c->model;
    int C = l->in.c, plane = l->in.h * l->in.w, B = c->batch;
    size_t stride = (size_t)C * plane;
    const float *gamma = m->params + l->weight_offset, *beta = m->params + l->bias_offset;
    float *running_mean = m->buffers + l->buffer_offset, *running_var = running_mean + C;
    bool training = m->training;
    bn_target t = bn_target_of(c);
    const cn_kernel_set *ks = cn_kernels();
    #pragma omp parallel for schedule(static) num_threads(m->num_threads)
    for (int ch = 0; ch < C; ch++) {
        const float *x = c->in + (size_t)ch * plane;
        float mean, invstd;
        if (training) {
            size_t count = (size_t)B * plane;
            double mu = cn_slices_sum(x, B, stride, plane) / (double)count;
            double sq = cn_slices_sq_dev(x, B, stride, plane, mu);
            double var = sq / (double)count;
            double unbiased = count > 1 ? sq / (double)(count - 1) : var;
            mean = (float)mu;
            invstd = (float)(1.0 / sqrt(var + l->bn_eps));
            float mom = l->bn_momentum;
            running_mean[ch] = (1.0f - mom) * running_mean[ch] + mom * (float)mu;
            running_var[ch] = (1.0f - mom) * running_var[ch] + mom * (float)unbiased;
            c->saved[ch] = mean;
            c->saved[C + ch] = invstd;
        } else {
            mean = running_mean[ch];
            invstd = 1.0f / sqrtf(running_var[ch] + l->bn_eps);
        }
        float scale = gamma[ch] * invstd, shift = beta[ch] - mean * scale;
        if (t.chain.length == 1) {
            cn_slices_affine(x, c->out + (size_t)ch * plane, B, stride, plane, scale, shift);
            continue;
        }
        cn_epilogue e = { .h = l->in.h, .w = l->in.w, .x_stride = l->in.w, .affine = 1, .scale = scale,
                          .shift = shift, .relu = t.chain.relu, .pool = t.chain.pool };
        for (int b = 0; b < B; b++) {
            size_t o = ((size_t)b * C + ch) * t.out_plane;
            ks->epilogue(&e, x + (size_t)b * stride, t.out + o, t.argmax ? t.argmax + o : NULL);
        }
    }
    if (training) m->bn_batches_tracked[l->bn_index]++;
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
    /* with a chain, dL/d(BN output) is rebuilt into BN's own output slot acts[i+1] (never
     * written by a fused forward); per channel, so dx may share the chain gradient's buffer */
    const float *grad_out = c->grad_out;
    float *dy_chain = m->acts[c->index + 1];
    const float *chain_grad = m->grad_acts[c->index + t.chain.length];
    if (t.chain.length > 1) grad_out = dy_chain;
    #pragma omp parallel for schedule(static) num_threads(m->num_threads)
    for (int ch = 0; ch < C; ch++) {
        if (t.chain.length > 1)
            for (int b = 0; b < B; b++) {
                size_t o = ((size_t)b * C + ch) * t.out_plane, i = ((size_t)b * C + ch) * plane;
                cn_chain_grad(chain_grad + o, t.out + o, t.argmax ? t.argmax + o : NULL, t.out_plane, plane, dy_chain + i);
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
        cn_slices_bn_grad_input(x, dy, c->grad_in + (size_t)ch * plane, B, stride, plane, mean, invstd, k,
                                mean_dy, mean_dy_xhat);
    }
}
