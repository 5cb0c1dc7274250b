/* conv2d in mixed precision (--precision bf16, the training plan's convolutions that are not
 * direct: strided, grouped or dilated; direct ones run conv2d.c's direct path on bf16 operands): im2col as
 * conv2d_im2col.c, and the three products on bf16-rounded operands summed in float32
 * (kernels/bf16.h, AVX512_BF16's vdpbf16ps), as PyTorch's CPU autocast runs a convolution:
 *
 *   col (IC*k*k, OH*OW) = im2col(x)                       float32
 *   forward          out_g (OCg, P) = bf16(W_g) @ bf16(col_g)             + bias (float32)
 *   backward weight  dW_g (OCg, R) += bf16(dy_g) @ bf16(col_g)^T          (float32 partials)
 *   backward input   dcol_g (R, P)  = bf16(W_g)^T @ bf16(dy_g), dx = col2im(dcol)
 *   (P = OH*OW pixels, R = ICg*k*k taps, G groups as conv2d_im2col.c; the bias gradient sums
 *   dy in float32.)
 * The weights stay float32 (the master copy the optimizer updates); they are rounded to bf16
 * as they are packed, once per sample and pass. Samples are split over threads; the weight
 * gradient partials are added in thread order (layers.h), so a fixed thread count gives the
 * same bits every run. */
#include "layers/layers.h"
#include "layers/conv2d_paths.h"
#include "kernels/bf16.h"
#include <string.h>

typedef struct { int G, ocg, rows, pixels; } bf16_geom;

static bf16_geom geom_of(const cn_layer *l) {
    return (bf16_geom){ .G = l->groups, .ocg = l->out_channels / l->groups,
                        .rows = (l->in.c / l->groups) * l->kernel * l->kernel, .pixels = l->out.h * l->out.w };
}

static size_t max3(size_t a, size_t b, size_t c) { return a > b ? (a > c ? a : c) : (b > c ? b : c); }

/* Per-thread scratch, in floats (a packed pair is one 32-bit word): col, dcol, packed A, packed B. */
typedef struct { float *col, *dcol; uint32_t *a, *b; } bf16_scratch;

static void scratch_sizes(const cn_layer *l, size_t sizes[4]) {
    bf16_geom g = geom_of(l);
    size_t cols = (size_t)g.G * g.rows * g.pixels;   /* every group's rows */
    sizes[0] = sizes[1] = cols;
    sizes[2] = max3((size_t)g.ocg * cn_bf16_pairs(g.rows), (size_t)g.rows * cn_bf16_pairs(g.ocg),
                    (size_t)g.ocg * cn_bf16_pairs(g.pixels));
    sizes[3] = max3(cn_bf16_pairs(g.rows) * g.pixels, cn_bf16_pairs(g.pixels) * g.rows,
                    cn_bf16_pairs(g.ocg) * g.pixels);
    for (int i = 0; i < 4; i++) sizes[i] = (sizes[i] + 15) & ~(size_t)15;
}

size_t cn_conv2d_bf16_scratch_floats(const cn_layer *l) {
    size_t s[4];
    scratch_sizes(l, s);
    return s[0] + s[1] + s[2] + s[3];
}

static bf16_scratch carve(const cn_layer *l, float *base) {
    size_t s[4];
    scratch_sizes(l, s);
    return (bf16_scratch){ .col = base, .dcol = base + s[0], .a = (uint32_t *)(base + s[0] + s[1]),
                           .b = (uint32_t *)(base + s[0] + s[1] + s[2]) };
}

void cn_conv2d_forward_bf16(const cn_layer_ctx *c) {
    const cn_layer *l = c->layer;
    const cn_model *m = c->model;
    const float *weight = m->params + l->weight_offset;
    const float *bias = l->bias_count ? m->params + l->bias_offset : NULL;
    bf16_geom g = geom_of(l);
    int in_size = cn_shape_size(l->in), out_size = cn_shape_size(l->out);
    #pragma omp parallel for schedule(static) num_threads(c->threads)
    for (int b = 0; b < c->batch; b++) {
        bf16_scratch s = carve(l, cn_thread_scratch(c));
        float *out = c->out + (size_t)b * out_size;
        cn_im2col(c->in + (size_t)b * in_size, l->in.c, l->in.h, l->in.w, l->kernel, l->stride, l->pad, l->dilation,
                  l->out.h, l->out.w, s.col);
        for (int gi = 0; gi < g.G; gi++) {
            // out_g (OCg, P) = W_g (OCg, R) @ col_g (R, P)
            cn_bf16_pack_a(g.ocg, g.rows, weight + (size_t)gi * g.ocg * g.rows, g.rows, 1, s.a);
            cn_bf16_pack_b(g.rows, g.pixels, s.col + (size_t)gi * g.rows * g.pixels, g.pixels, 1, s.b);
            cn_bf16_gemm(g.ocg, g.pixels, (int)cn_bf16_pairs(g.rows), s.a, s.b, out + (size_t)gi * g.ocg * g.pixels,
                         g.pixels, 0);
        }
        if (bias)
            for (int oc = 0; oc < l->out_channels; oc++) {
                float *o = out + (size_t)oc * g.pixels;
                for (int p = 0; p < g.pixels; p++) o[p] += bias[oc];
            }
    }
}

/* Sample b's backward: dW, db into the thread's partial gradients, dx when wanted. */
static void backward_sample(const cn_layer_ctx *c, int b, float *partial, float *scratch, const void *unused) {
    (void)unused;
    const cn_layer *l = c->layer;
    const float *weight = c->model->params + l->weight_offset;
    bf16_geom g = geom_of(l);
    bf16_scratch s = carve(l, scratch);
    int in_size = cn_shape_size(l->in), out_size = cn_shape_size(l->out);
    const float *grad_out = c->grad_out + (size_t)b * out_size;
    cn_im2col(c->in + (size_t)b * in_size, l->in.c, l->in.h, l->in.w, l->kernel, l->stride, l->pad, l->dilation,
              l->out.h, l->out.w, s.col);
    for (int gi = 0; gi < g.G; gi++) {
        // dW_g (OCg, R) += dy_g (OCg, P) @ col_g (R, P)^T: B[p][r] = col_g[r*P + p]
        const float *dy = grad_out + (size_t)gi * g.ocg * g.pixels;
        cn_bf16_pack_a(g.ocg, g.pixels, dy, g.pixels, 1, s.a);
        cn_bf16_pack_b(g.pixels, g.rows, s.col + (size_t)gi * g.rows * g.pixels, 1, g.pixels, s.b);
        cn_bf16_gemm(g.ocg, g.rows, (int)cn_bf16_pairs(g.pixels), s.a, s.b,
                     partial + l->weight_offset + (size_t)gi * g.ocg * g.rows, g.rows, 1);
    }
    if (l->bias_count) {
        float *db = partial + l->bias_offset;
        for (int oc = 0; oc < l->out_channels; oc++) {
            const float *gp = grad_out + (size_t)oc * g.pixels;
            float sum = 0.0f;
            for (int p = 0; p < g.pixels; p++) sum += gp[p];
            db[oc] += sum;
        }
    }
    if (!c->grad_in) return;
    for (int gi = 0; gi < g.G; gi++) {
        // dcol_g (R, P) = W_g (OCg, R)^T @ dy_g (OCg, P): A[r][oc] = W_g[oc*R + r]
        cn_bf16_pack_a(g.rows, g.ocg, weight + (size_t)gi * g.ocg * g.rows, 1, g.rows, s.a);
        cn_bf16_pack_b(g.ocg, g.pixels, grad_out + (size_t)gi * g.ocg * g.pixels, g.pixels, 1, s.b);
        cn_bf16_gemm(g.rows, g.pixels, (int)cn_bf16_pairs(g.ocg), s.a, s.b, s.dcol + (size_t)gi * g.rows * g.pixels,
                     g.pixels, 0);
    }
    cn_col2im(s.dcol, l->in.c, l->in.h, l->in.w, l->kernel, l->stride, l->pad, l->dilation, l->out.h, l->out.w,
              c->grad_in + (size_t)b * in_size);
}

void cn_conv2d_backward_bf16(const cn_layer_ctx *c) { cn_per_sample_backward(c, backward_sample, NULL); }
