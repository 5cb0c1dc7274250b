/* relu: out = max(in, 0); the gradient passes where the input is positive. */
#include "layers/layers.h"
#include "kernels/kernels.h"

/* Contiguous chunk [*i0, *i1) of n elements for the calling thread, split at 16-float boundaries. */
static void thread_chunk(size_t n, size_t *i0, size_t *i1) {
    size_t T = (size_t)omp_get_num_threads(), t = (size_t)omp_get_thread_num();
    size_t per = ((n + T - 1) / T + 15) & ~(size_t)15;
    *i0 = t * per < n ? t * per : n;
    *i1 = *i0 + per < n ? *i0 + per : n;
}

void cn_relu_forward(const cn_layer_ctx *c) {
    size_t n = (size_t)c->batch * cn_shape_size(c->layer->in);
    #pragma omp parallel num_threads(c->threads)
    {
        size_t i0, i1;
        thread_chunk(n, &i0, &i1);
        cn_relu_forward_kernel(c->in + i0, c->out + i0, i1 - i0);
    }
}

void cn_relu_backward(const cn_layer_ctx *c) {
    if (!c->grad_in) return;
    size_t n = (size_t)c->batch * cn_shape_size(c->layer->in);
    #pragma omp parallel num_threads(c->threads)
    {
        size_t i0, i1;
        thread_chunk(n, &i0, &i1);
        cn_relu_backward_kernel(c->in + i0, c->grad_out + i0, c->grad_in + i0, i1 - i0);
    }
}
