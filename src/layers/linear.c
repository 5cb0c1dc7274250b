/* linear: out = in @ W^T + b. */
#include "layers/layers.h"
#include "kernels/kernels.h"

#define ROWS 16        /* samples per pass over the weights */
#define I_BLOCK 256    /* input features per block of the weight gradient */

// in (B,I), weight (O,I), bias (O) -> out (B,O)
void cn_linear_forward(const cn_layer_ctx *c) {
    if (c->step->bf16_linear) { cn_linear_forward_bf16(c); return; }
    const cn_layer *l = c->layer;
    const cn_model *m = c->model;
    int I = l->in.c, O = l->out_channels;
    const float *weight = m->params + l->weight_offset;
    const float *bias = l->bias_count ? m->params + l->bias_offset : NULL;
    /* groups of ROWS samples share each pass over the weights (which may not fit in cache) */
    int groups = (c->batch + ROWS - 1) / ROWS;
    #pragma omp parallel for schedule(static) num_threads(c->threads)
    for (int g = 0; g < groups; g++) {
        int b0 = g * ROWS, rows = c->batch - b0 < ROWS ? c->batch - b0 : ROWS;
        float *out = c->out + (size_t)b0 * O;
        cn_linear_rows_from_bias(out, rows, O, bias);
        cn_gemm_nt(rows, O, I, c->in + (size_t)b0 * I, weight, out);
    }
}

void cn_linear_backward(const cn_layer_ctx *c) {
    if (c->step->bf16_linear) { cn_linear_backward_bf16(c); return; }
    const cn_layer *l = c->layer;
    const cn_model *m = c->model;
    int I = l->in.c, O = l->out_channels, B = c->batch;
    const float *weight = m->params + l->weight_offset;
    float *dweight = c->grads + l->weight_offset;
    // dW (O,I) = grad_out (B,O)^T @ in (B,I): columns split among the threads in blocks of
    // I_BLOCK (each block of `in`, B x I_BLOCK, read from cache for every row of dW); each dW
    // element still sums over b in order, so the split does not change it.
    int blocks = (I + I_BLOCK - 1) / I_BLOCK;
    #pragma omp parallel for schedule(static) num_threads(c->threads)
    for (int blk = 0; blk < blocks; blk++) {
        int i0 = blk * I_BLOCK, n = I - i0 < I_BLOCK ? I - i0 : I_BLOCK;
        cn_gemm_tn_ld(O, n, B, c->grad_out, O, c->in + i0, I, dweight + i0, I);
    }
    if (l->bias_count) cn_linear_bias_grad(c->grad_out, B, O, c->grads + l->bias_offset);
    if (!c->grad_in) return;
    // grad_in (B,I) = grad_out (B,O) @ W (O,I), ROWS samples per pass over the weights
    int groups = (B + ROWS - 1) / ROWS;
    #pragma omp parallel for schedule(static) num_threads(c->threads)
    for (int g = 0; g < groups; g++) {
        int b0 = g * ROWS, rows = B - b0 < ROWS ? B - b0 : ROWS;
        cn_gemm_nn(rows, I, O, c->grad_out + (size_t)b0 * O, weight, c->grad_in + (size_t)b0 * I, 0);
    }
}
