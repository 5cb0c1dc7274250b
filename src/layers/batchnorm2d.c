/* batchnorm2d with PyTorch semantics: training normalises with the batch's
 * biased variance and updates running_mean/running_var (unbiased variance)
 * with momentum; eval uses the running statistics. */
#include "layers/layers.h"
#include <math.h>
#include <string.h>

// saved: mean (C), invstd (C)
void cn_batchnorm2d_forward(const cn_layer_ctx *c) {
    const cn_layer *l = c->layer;
    cn_model *m = c->model;
    int C = l->in.c, plane = l->in.h * l->in.w, B = c->batch;
    const float *gamma = m->params + l->weight_offset, *beta = m->params + l->bias_offset;
    float *running_mean = m->buffers + l->buffer_offset, *running_var = running_mean + C;
    bool training = m->training;
    #pragma omp parallel for schedule(static) num_threads(m->num_threads)
    for (int ch = 0; ch < C; ch++) {
        float mean, invstd;
        if (training) {
            double sum = 0.0, sq = 0.0;
            size_t count = (size_t)B * plane;
            for (int b = 0; b < B; b++) {
                const float *x = c->in + ((size_t)b * C + ch) * plane;
                for (int p = 0; p < plane; p++) sum += x[p];
            }
            double mu = sum / (double)count;
            for (int b = 0; b < B; b++) {
                const float *x = c->in + ((size_t)b * C + ch) * plane;
                for (int p = 0; p < plane; p++) { double d = x[p] - mu; sq += d * d; }
            }
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
        for (int b = 0; b < B; b++) {
            const float *x = c->in + ((size_t)b * C + ch) * plane;
            float *y = c->out + ((size_t)b * C + ch) * plane;
            for (int p = 0; p < plane; p++) y[p] = x[p] * scale + shift;
        }
    }
    if (training) m->bn_batches_tracked[l->bn_index]++;
}

void cn_batchnorm2d_backward(const cn_layer_ctx *c) {
    const cn_layer *l = c->layer;
    cn_model *m = c->model;
    int C = l->in.c, plane = l->in.h * l->in.w, B = c->batch;
    const float *gamma = m->params + l->weight_offset;
    float *dgamma = m->grads + l->weight_offset, *dbeta = m->grads + l->bias_offset;
    double count = (double)B * plane;
    #pragma omp parallel for schedule(static) num_threads(m->num_threads)
    for (int ch = 0; ch < C; ch++) {
        float mean = c->saved[ch], invstd = c->saved[C + ch];
        double sum_dy = 0.0, sum_dy_xhat = 0.0;
        for (int b = 0; b < B; b++) {
            const float *x = c->in + ((size_t)b * C + ch) * plane;
            const float *dy = c->grad_out + ((size_t)b * C + ch) * plane;
            for (int p = 0; p < plane; p++) {
                sum_dy += dy[p];
                sum_dy_xhat += dy[p] * (x[p] - mean) * invstd;
            }
        }
        dgamma[ch] = (float)sum_dy_xhat;
        dbeta[ch] = (float)sum_dy;
        if (!c->grad_in) continue;
        float k = gamma[ch] * invstd;
        float mean_dy = (float)(sum_dy / count), mean_dy_xhat = (float)(sum_dy_xhat / count);
        for (int b = 0; b < B; b++) {
            const float *x = c->in + ((size_t)b * C + ch) * plane;
            const float *dy = c->grad_out + ((size_t)b * C + ch) * plane;
            float *dx = c->grad_in + ((size_t)b * C + ch) * plane;
            for (int p = 0; p < plane; p++) {
                float xhat = (x[p] - mean) * invstd;
                dx[p] = k * (dy[p] - mean_dy - xhat * mean_dy_xhat);
            }
        }
    }
}
