/* conv2d: square kernel, stride, zero padding, optional bias; im2col + GEMM per sample. */
#include "layers/layers.h"
#include "kernels/kernels.h"
#include <string.h>

static bool is_pointwise(const cn_layer *l) { return l->kernel == 1 && l->stride == 1 && l->pad == 0; }

size_t cn_layer_scratch_floats(const cn_layer *l) {
    if (l->kind != CN_LAYER_CONV2D) return 0;
    size_t rows = (size_t)l->in.c * l->kernel * l->kernel, cols = (size_t)l->out.h * l->out.w;
    return 2 * rows * cols;   /* col + dcol */
}

// in (B,IC,H,W), weight (OC,IC,k,k), bias (OC) -> out (B,OC,OH,OW)
void cn_conv2d_forward(const cn_layer_ctx *c) {
    const cn_layer *l = c->layer;
    const cn_model *m = c->model;
    const float *weight = m->params + l->weight_offset;
    const float *bias = l->bias_count ? m->params + l->bias_offset : NULL;
    int in_size = cn_shape_size(l->in), out_size = cn_shape_size(l->out);
    int rows = l->in.c * l->kernel * l->kernel, pixels = l->out.h * l->out.w;
    #pragma omp parallel for schedule(static) num_threads(m->num_threads)
    for (int b = 0; b < c->batch; b++) {
        const float *in = c->in + (size_t)b * in_size;
        float *out = c->out + (size_t)b * out_size;
        const float *col = in;
        if (!is_pointwise(l)) {
            float *scratch = cn_thread_scratch(m);
            cn_im2col(in, l->in.c, l->in.h, l->in.w, l->kernel, l->stride, l->pad, l->out.h, l->out.w, scratch);
            col = scratch;
        }
        cn_gemm_nn(l->out_channels, pixels, rows, weight, col, out, 0);
        if (bias)
            for (int oc = 0; oc < l->out_channels; oc++) {
                float *o = out + (size_t)oc * pixels;
                for (int p = 0; p < pixels; p++) o[p] += bias[oc];
            }
    }
}

void cn_conv2d_backward(const cn_layer_ctx *c) {
    const cn_layer *l = c->layer;
    cn_model *m = c->model;
    const float *weight = m->params + l->weight_offset;
    int in_size = cn_shape_size(l->in), out_size = cn_shape_size(l->out);
    int rows = l->in.c * l->kernel * l->kernel, pixels = l->out.h * l->out.w;
    cn_thread_grads_zero(m, l->weight_offset, l->weight_count);
    if (l->bias_count) cn_thread_grads_zero(m, l->bias_offset, l->bias_count);
    #pragma omp parallel for schedule(static) num_threads(m->num_threads)
    for (int b = 0; b < c->batch; b++) {
        float *partial = cn_thread_grads(m, omp_get_thread_num());
        const float *in = c->in + (size_t)b * in_size;
        const float *grad_out = c->grad_out + (size_t)b * out_size;
        float *scratch = cn_thread_scratch(m);
        const float *col = in;
        if (!is_pointwise(l)) {
            cn_im2col(in, l->in.c, l->in.h, l->in.w, l->kernel, l->stride, l->pad, l->out.h, l->out.w, scratch);
            col = scratch;
        }
        // dW (OC, rows) += grad_out (OC, pixels) @ col (rows, pixels)^T
        cn_gemm_nt(l->out_channels, rows, pixels, grad_out, col, partial + l->weight_offset);
        if (l->bias_count) {
            float *db = partial + l->bias_offset;
            for (int oc = 0; oc < l->out_channels; oc++) {
                const float *g = grad_out + (size_t)oc * pixels;
                float s = 0.0f;
                for (int p = 0; p < pixels; p++) s += g[p];
                db[oc] += s;
            }
        }
        if (c->grad_in) {
            float *grad_in = c->grad_in + (size_t)b * in_size;
            if (is_pointwise(l)) {
                cn_gemm_tn(rows, pixels, l->out_channels, weight, grad_out, grad_in);
            } else {
                // dcol (rows, pixels) = W (OC, rows)^T @ grad_out (OC, pixels)
                float *dcol = scratch + (size_t)rows * pixels;
                cn_gemm_tn(rows, pixels, l->out_channels, weight, grad_out, dcol);
                cn_col2im(dcol, l->in.c, l->in.h, l->in.w, l->kernel, l->stride, l->pad, l->out.h, l->out.w, grad_in);
            }
        }
    }
    cn_thread_grads_reduce(m, l->weight_offset, l->weight_count);
    if (l->bias_count) cn_thread_grads_reduce(m, l->bias_offset, l->bias_count);
}
