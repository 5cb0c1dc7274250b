/* relu: out = max(in, 0); the gradient passes where the input is positive. */
#include "layers/layers.h"

void cn_relu_forward(const cn_layer_ctx *c) {
    size_t n = (size_t)c->batch * cn_shape_size(c->layer->in);
    const float *in = c->in;
    float *out = c->out;
    #pragma omp parallel for schedule(static) num_threads(c->model->num_threads)
    for (size_t i = 0; i < n; i++) out[i] = in[i] > 0.0f ? in[i] : 0.0f;
}

void cn_relu_backward(const cn_layer_ctx *c) {
    if (!c->grad_in) return;
    size_t n = (size_t)c->batch * cn_shape_size(c->layer->in);
    const float *in = c->in, *grad_out = c->grad_out;
    float *grad_in = c->grad_in;
    #pragma omp parallel for schedule(static) num_threads(c->model->num_threads)
    for (size_t i = 0; i < n; i++) grad_in[i] = in[i] > 0.0f ? grad_out[i] : 0.0f;
}
