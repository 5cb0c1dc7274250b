/* linear in mixed precision (--precision bf16, the training plan's linear layers): the three
 * products on bf16-rounded operands summed in float32 (kernels/bf16.h), as PyTorch's CPU
 * autocast runs a linear layer; bias added, and its gradient summed, in float32.
 *
 *   forward          out (B,O)  = bias + bf16(in) (B,I) @ bf16(W)^T (I,O)   ROWS samples a tile
 *   backward input   dx (B,I)   = bf16(dy) (B,O) @ bf16(W) (O,I)            ROWS samples a tile
 *   backward weight  dW (O,I)   = sum over chunks of CHUNK samples, in order, of
 *                                 bf16(dy chunk)^T (O,chunk) @ bf16(in chunk) (chunk,I)
 *                                 (threads take ranges of output rows: every element is summed
 *                                 in the same order whatever the thread count)
 * Each thread packs the weights itself once per pass. */
#include "layers/layers.h"
#include "kernels/bf16.h"
#include <string.h>

#define ROWS 16        /* samples per tile of the forward and input-gradient products */
#define CHUNK 32       /* samples per step of the weight gradient's sum */

static size_t max_size(size_t a, size_t b) { return a > b ? a : b; }
static size_t round16(size_t n) { return (n + 15) & ~(size_t)15; }

/* Per-thread scratch: the packed weights (w) and the packed other operand (x), in words. */
static size_t packed_w_words(const cn_layer *l) {
    size_t I = (size_t)l->in.c, O = (size_t)l->out_channels;
    return round16(max_size(max_size(cn_bf16_pairs((int)I) * O, cn_bf16_pairs((int)O) * I), O * cn_bf16_pairs(CHUNK)));
}
static size_t packed_x_words(const cn_layer *l) {
    size_t I = (size_t)l->in.c, O = (size_t)l->out_channels;
    return round16(max_size(max_size((size_t)ROWS * cn_bf16_pairs((int)I), (size_t)ROWS * cn_bf16_pairs((int)O)),
                            cn_bf16_pairs(CHUNK) * I));
}
size_t cn_linear_bf16_scratch_floats(const cn_layer *l) { return packed_w_words(l) + packed_x_words(l); }

void cn_linear_forward_bf16(const cn_layer_ctx *c) {
    const cn_layer *l = c->layer;
    const cn_model *m = c->model;
    int I = l->in.c, O = l->out_channels, I2 = (int)cn_bf16_pairs(I);
    const float *weight = m->params + l->weight_offset;
    const float *bias = l->bias_count ? m->params + l->bias_offset : NULL;
    int groups = (c->batch + ROWS - 1) / ROWS;
    #pragma omp parallel num_threads(c->threads)
    {
        float *scratch = cn_thread_scratch(c);
        uint32_t *wp = (uint32_t *)scratch, *xp = (uint32_t *)(scratch + packed_w_words(l));
        cn_bf16_pack_b(I, O, weight, 1, (size_t)I, wp);   /* W^T (I, O): B[i][o] = W[o*I + i] */
        #pragma omp for schedule(static)
        for (int g = 0; g < groups; g++) {
            int b0 = g * ROWS, rows = c->batch - b0 < ROWS ? c->batch - b0 : ROWS;
            float *out = c->out + (size_t)b0 * O;
            cn_linear_rows_from_bias(out, rows, O, bias);
            cn_bf16_pack_a(rows, I, c->in + (size_t)b0 * I, (size_t)I, 1, xp);
            cn_bf16_gemm(rows, O, I2, xp, wp, out, (size_t)O, 1);
        }
    }
}

void cn_linear_backward_bf16(const cn_layer_ctx *c) {
    const cn_layer *l = c->layer;
    const cn_model *m = c->model;
    int I = l->in.c, O = l->out_channels, B = c->batch;
    const float *weight = m->params + l->weight_offset;
    float *dweight = c->grads + l->weight_offset;
    #pragma omp parallel num_threads(c->threads)
    {
        int T = omp_get_num_threads(), t = omp_get_thread_num(), o0, o1;
        float *scratch = cn_thread_scratch(c);
        uint32_t *wp = (uint32_t *)scratch, *xp = (uint32_t *)(scratch + packed_w_words(l));
        // dW rows [o0, o1) (O,I) = sum over chunks of dy chunk^T @ in chunk
        cn_thread_range(O, t, T, &o0, &o1);
        for (int b0 = 0; b0 < B && o1 > o0; b0 += CHUNK) {
            int n = B - b0 < CHUNK ? B - b0 : CHUNK;
            cn_bf16_pack_a(o1 - o0, n, c->grad_out + (size_t)b0 * O + o0, 1, (size_t)O, wp);
            cn_bf16_pack_b(n, I, c->in + (size_t)b0 * I, (size_t)I, 1, xp);
            cn_bf16_gemm(o1 - o0, I, (int)cn_bf16_pairs(n), wp, xp, dweight + (size_t)o0 * I, (size_t)I, b0 > 0);
        }
        if (c->grad_in) {
            // dx (B,I) = dy (B,O) @ W (O,I), ROWS samples a tile
            cn_bf16_pack_b(O, I, weight, (size_t)I, 1, wp);
            int groups = (B + ROWS - 1) / ROWS;
            #pragma omp for schedule(static)
            for (int g = 0; g < groups; g++) {
                int b0 = g * ROWS, rows = B - b0 < ROWS ? B - b0 : ROWS;
                cn_bf16_pack_a(rows, O, c->grad_out + (size_t)b0 * O, (size_t)O, 1, xp);
                cn_bf16_gemm(rows, I, (int)cn_bf16_pairs(O), xp, wp, c->grad_in + (size_t)b0 * I, (size_t)I, 0);
            }
        }
    }
    if (l->bias_count) cn_linear_bias_grad(c->grad_out, B, O, c->grads + l->bias_offset);
}
