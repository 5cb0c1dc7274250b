/* Joins of branches: add (a residual sum, ResNet's `out + identity`) and concat (channel
 * concatenation, torch.cat(dim=1)). Each reads layer->num_inputs values (c->ins) and writes
 * one; backward hands each input its share of dL/d(out) (c->grad_ins, NULL where the plan
 * needs none). The plan adds up the gradients of a value that several layers read. */
#include "layers/layers.h"
#include "kernels/kernels.h"
#include <string.h>

// ins k (B,C,H,W) each -> out (B,C,H,W) = ((ins0 + ins1) + ins2) + ..., PyTorch's order for a + b + c;
// in a chain with the relu after it (fusion.h, training), out is the relu's output: relu(that sum)
// (training, step->bn_inputs: ins[k] is the input of a batch norm whose output this add takes,
// and the add applies its map: plane by plane, the same float operations as the batch norm's pass)
static void add_planes_with_bn(const cn_layer_ctx *c) {
    const cn_layer *l = c->layer;
    int C = l->out.c, plane = l->out.h * l->out.w, planes = c->batch * C;
    #pragma omp parallel for schedule(static) num_threads(c->threads)
    for (int p = 0; p < planes; p++) {
        size_t o = (size_t)p * plane;
        for (int k = 0; k < l->num_inputs; k++) {
            float affine[2];
            if (c->bn_ins[k]) cn_batchnorm2d_channel_affine(c->bn_ins[k], p % C, &affine[0], &affine[1]);
            cn_add_term_kernel(c->ins[k] + o, c->bn_ins[k] ? affine : NULL, c->out + o, (size_t)plane, k > 0,
                               c->step->chain.relu && k == l->num_inputs - 1);
        }
    }
}

void cn_add_forward(const cn_layer_ctx *c) {
    const cn_layer *l = c->layer;
    size_t n = (size_t)c->batch * cn_shape_size(l->out);
    bool relu = c->step->chain.relu;
    if (c->step->bn_inputs) {
        add_planes_with_bn(c);
        return;
    }
    #pragma omp parallel num_threads(c->threads)
    {
        size_t i0, i1;
        cn_thread_chunk(n, &i0, &i1);
        float *y = c->out + i0;
        size_t m = i1 - i0;
        if (relu && l->num_inputs == 2) {
            cn_add_relu_kernel(c->ins[0] + i0, c->ins[1] + i0, y, m);
        } else {    /* y = ins0, then y = y + ins k in order (the same sums), then relu */
            for (int k = 0; k < l->num_inputs; k++)
                cn_add_term_kernel(c->ins[k] + i0, NULL, y, m, k > 0, relu && k == l->num_inputs - 1);
        }
    }
}

// dL/d(ins k) = dL/d(out) for every input; with the relu fused, dL/d(sum) = out > 0 ? dL/d(out) : 0
// (out: the relu's output, positive exactly where the sum is: relu's own backward mask)
void cn_add_backward(const cn_layer_ctx *c) {
    const cn_layer *l = c->layer;
    size_t n = (size_t)c->batch * cn_shape_size(l->out);
    if (!c->step->chain.relu) {
        for (int k = 0; k < l->num_inputs; k++)
            if (c->grad_ins[k]) memcpy(c->grad_ins[k], c->grad_out, n * sizeof(float));
        return;
    }
    #pragma omp parallel num_threads(c->threads)
    {
        size_t i0, i1;
        cn_thread_chunk(n, &i0, &i1);
        for (int k = 0; k < l->num_inputs; k++)
            if (c->grad_ins[k]) cn_relu_backward_kernel(c->out + i0, c->grad_out + i0, c->grad_ins[k] + i0, i1 - i0);
    }
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
