/* Joins of branches: add (a residual sum, ResNet's `out + identity`) and concat (channel
 * concatenation, torch.cat(dim=1)). Each reads layer->num_inputs values (c->ins) and writes
 * one; backward hands each input its share of dL/d(out) (c->grad_ins, NULL where the plan
 * needs none). The plan adds up the gradients of a value that several layers read. */
#include "layers/layers.h"
#include <string.h>

// ins k (B,C,H,W) each -> out (B,C,H,W) = ((ins0 + ins1) + ins2) + ..., PyTorch's order for a + b + c
void cn_add_forward(const cn_layer_ctx *c) {
    const cn_layer *l = c->layer;
    size_t n = (size_t)c->batch * cn_shape_size(l->out);
    const float *a = c->ins[0], *b = c->ins[1];
    float *y = c->out;
    #pragma omp parallel for schedule(static) num_threads(c->threads)
    for (size_t i = 0; i < n; i++) y[i] = a[i] + b[i];
    for (int k = 2; k < l->num_inputs; k++) {
        const float *x = c->ins[k];
        #pragma omp parallel for schedule(static) num_threads(c->threads)
        for (size_t i = 0; i < n; i++) y[i] += x[i];
    }
}

// dL/d(ins k) = dL/d(out) for every input
void cn_add_backward(const cn_layer_ctx *c) {
    const cn_layer *l = c->layer;
    size_t bytes = (size_t)c->batch * cn_shape_size(l->out) * sizeof(float);
    for (int k = 0; k < l->num_inputs; k++)
        if (c->grad_ins[k]) memcpy(c->grad_ins[k], c->grad_out, bytes);
}

/* Floats per sample of input k (its channels times the shared plane). */
static size_t input_size(const cn_layer_ctx *c, int k) {
    return (size_t)cn_shape_size(cn_model_value_shape(c->model, c->layer->inputs[k]));
}

// ins k (B,C_k,H,W) -> out (B, sum C_k, H, W): per sample, input 0's channels, then input 1's, ...
void cn_concat_forward(const cn_layer_ctx *c) {
    const cn_layer *l = c->layer;
    size_t out_size = (size_t)cn_shape_size(l->out);
    #pragma omp parallel for schedule(static) num_threads(c->threads)
    for (int b = 0; b < c->batch; b++) {
        float *y = c->out + (size_t)b * out_size;
        for (int k = 0; k < l->num_inputs; k++) {
            size_t n = input_size(c, k);
            memcpy(y, c->ins[k] + (size_t)b * n, n * sizeof(float));
            y += n;
        }
    }
}

// dL/d(ins k) = input k's channels of dL/d(out)
void cn_concat_backward(const cn_layer_ctx *c) {
    const cn_layer *l = c->layer;
    size_t out_size = (size_t)cn_shape_size(l->out);
    #pragma omp parallel for schedule(static) num_threads(c->threads)
    for (int b = 0; b < c->batch; b++) {
        const float *dy = c->grad_out + (size_t)b * out_size;
        for (int k = 0; k < l->num_inputs; k++) {
            size_t n = input_size(c, k);
            if (c->grad_ins[k]) memcpy(c->grad_ins[k] + (size_t)b * n, dy, n * sizeof(float));
            dy += n;
        }
    }
}
