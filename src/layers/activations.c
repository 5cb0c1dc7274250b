/* relu6 and leaky_relu, element by element (PyTorch's semantics; kernels in eltwise.c):
 *   relu6       y = min(max(x, 0), 6)        dx = dy where 0 < x < 6, else 0 (hardtanh's)
 *   leaky_relu  y = x > 0 ? x : slope * x    dx = x > 0 ? dy : slope * dy
 * Each thread takes a contiguous chunk of the batch's elements, as relu.c. */
#include "layers/layers.h"
#include "kernels/kernels.h"

static size_t elements(const cn_layer_ctx *c) { return (size_t)c->batch * cn_shape_size(c->layer->in); }

static void forward(const cn_layer_ctx *c, bool leaky) {
    size_t n = elements(c);
    #pragma omp parallel num_threads(c->threads)
    {
        size_t i0, i1;
        cn_thread_chunk(n, &i0, &i1);
        if (leaky) cn_leaky_relu_forward_kernel(c->in + i0, c->out + i0, i1 - i0, c->layer->slope);
        else cn_relu6_forward_kernel(c->in + i0, c->out + i0, i1 - i0);
    }
}

static void backward(const cn_layer_ctx *c, bool leaky) {
    if (!c->grad_in) return;
    size_t n = elements(c);
    #pragma omp parallel num_threads(c->threads)
    {
        size_t i0, i1;
        cn_thread_chunk(n, &i0, &i1);
        if (leaky) cn_leaky_relu_backward_kernel(c->in + i0, c->grad_out + i0, c->grad_in + i0, i1 - i0, c->layer->slope);
        else cn_relu6_backward_kernel(c->in + i0, c->grad_out + i0, c->grad_in + i0, i1 - i0);
    }
}

void cn_relu6_forward(const cn_layer_ctx *c) { forward(c, false); }
void cn_relu6_backward(const cn_layer_ctx *c) { backward(c, false); }
void cn_leaky_relu_forward(const cn_layer_ctx *c) { forward(c, true); }
void cn_leaky_relu_backward(const cn_layer_ctx *c) { backward(c, true); }
