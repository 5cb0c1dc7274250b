/* linear: out = in @ W^T + b. */
#include "layers/layers.h"
#include "kernels/kernels.h"
#include <string.h>

// in (B,I), weight (O,I), bias (O) -> out (B,O)
void cn_linear_forward(const cn_layer_ctx *c) {
    const cn_layer *l = c->layer;
    const cn_model *m = c->model;
    int I = l->in.c, O = l->out_channels;
    const float *weight = m->params + l->weight_offset;
    const float *bias = l->bias_count ? m->params + l->bias_offset : NULL;
    #pragma omp parallel for schedule(static) num_threads(m->num_threads)
    for (int b = 0; b < c->batch; b++) {
        float *out = c->out + (size_t)b * O;
        if (bias) memcpy(out, bias, O * sizeof *out); else memset(out, 0, O * sizeof *out);
        cn_gemm_nt(1, O, I, c->in + (size_t)b * I, weight, out);
    }
}

void cn_linear_backward(const cn_layer_ctx *c) {
    const cn_layer *l = c->layer;
    cn_model *m = c->model;
    int I = l->in.c, O = l->out_channels, B = c->batch;
    const float *weight = m->params + l->weight_offset;
    float *dweight = m->grads + l->weight_offset;
    float *dbias = l->bias_count ? m->grads + l->bias_offset : NULL;
    // dW (O,I) = grad_out (B,O)^T @ in (B,I); rows of dW are independent
    #pragma omp parallel for schedule(static) num_threads(m->num_threads)
    for (int o = 0; o < O; o++) {
        float *dw = dweight + (size_t)o * I;
        memset(dw, 0, I * sizeof *dw);
        float db = 0.0f;
        for (int b = 0; b < B; b++) {
            float g = c->grad_out[(size_t)b * O + o];
            const float *x = c->in + (size_t)b * I;
            db += g;
            for (int i = 0; i < I; i++) dw[i] += g * x[i];
        }
        if (dbias) dbias[o] = db;
    }
    if (!c->grad_in) return;
    // grad_in (B,I) = grad_out (B,O) @ W (O,I)
    #pragma omp parallel for schedule(static) num_threads(m->num_threads)
    for (int b = 0; b < B; b++)
        cn_gemm_nn(1, I, O, c->grad_out + (size_t)b * O, weight, c->grad_in + (size_t)b * I, 0);
}
