/* relu6 and leaky_relu, element by element (PyTorch's semantics):
 *   relu6       y = min(max(x, 0), 6)        dx = dy where 0 < x < 6, else 0 (hardtanh's)
 *   leaky_relu  y = x > 0 ? x : slope * x    dx = x > 0 ? dy : slope * dy */
#include "layers/layers.h"

static size_t elements(const cn_layer_ctx *c) { return (size_t)c->batch * cn_shape_size(c->layer->in); }

void cn_relu6_forward(const cn_layer_ctx *c) {
    const float *x = c->in;
    float *y = c->out;
    size_t n = elements(c);
    #pragma omp parallel for schedule(static) num_threads(c->threads)
    for (size_t i = 0; i < n; i++) {
        float v = x[i] > 0.0f ? x[i] : 0.0f;
        y[i] = v < 6.0f ? v : 6.0f;
    }
}

void cn_relu6_backward(const cn_layer_ctx *c) {
    if (!c->grad_in) return;
    const float *x = c->in, *dy = c->grad_out;
    float *dx = c->grad_in;
    size_t n = elements(c);
    #pragma omp parallel for schedule(static) num_threads(c->threads)
    for (size_t i = 0; i < n; i++) dx[i] = x[i] > 0.0f && x[i] < 6.0f ? dy[i] : 0.0f;
}

void cn_leaky_relu_forward(const cn_layer_ctx *c) {
    const float *x = c->in;
    float *y = c->out, slope = c->layer->slope;
    size_t n = elements(c);
    #pragma omp parallel for schedule(static) num_threads(c->threads)
    for (size_t i = 0; i < n; i++) y[i] = x[i] > 0.0f ? x[i] : x[i] * slope;
}

void cn_leaky_relu_backward(const cn_layer_ctx *c) {
    if (!c->grad_in) return;
    const float *x = c->in, *dy = c->grad_out;
    float *dx = c->grad_in, slope = c->layer->slope;
    size_t n = elements(c);
    #pragma omp parallel for schedule(static) num_threads(c->threads)
    for (size_t i = 0; i < n; i++) dx[i] = x[i] > 0.0f ? dy[i] : dy[i] * slope;
}
