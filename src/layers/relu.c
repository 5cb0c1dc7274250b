/* relu: out = max(in, 0); the gradient passes where the input is positive. */
#include "layers/layers.h"
#include "kernels/kernels.h"

void cn_relu_forward(const cn_layer_ctx *c) {
    size_t n = (size_t)c->batch * cn_shape_size(c->layer->in);
    #pragma omp parallel num_threads(c->threads)
    {
        size_t i0, i1;
        cn_thread_chunk(n, &i0, &i1);
        cn_relu_forward_kernel(c->in + i0, c->out + i0, i1 - i0);
    }
}

void cn_relu_backward(const cn_layer_ctx *c) {
    if (!c->grad_in) return;
    size_t n = (size_t)c->batch * cn_shape_size(c->layer->in);
    #pragma omp parallel num_threads(c->threads)
    {
        size_t i0, i1;
        cn_thread_chunk(n, &i0, &i1);
        cn_relu_backward_kernel(c->in + i0, c->grad_out + i0, c->grad_in + i0, i1 - i0);
    }
}
