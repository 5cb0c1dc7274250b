/* conv2d by im2col + GEMM, one sample at a time: the path of every convolution the
 * direct kernels (conv2d.c) do not run, and the reference the fast grouped paths are
 * tested against.
 *
 *   col (IC*k*k, OH*OW) = im2col(x) with stride, padding and dilation
 *   group g (G groups, ICg = IC/G input and OCg = OC/G output channels each) uses
 *   rows [g*ICg*k*k, (g+1)*ICg*k*k) of col and weight rows [g*OCg, (g+1)*OCg):
 *     forward          out_g (OCg, pixels)  = W_g (OCg, ICg*k*k) @ col_g
 *     backward weight  dW_g                += dy_g @ col_g^T
 *     backward input   dcol_g               = W_g^T @ dy_g, then dx = col2im(dcol)
 * Samples are split over threads; each thread sums its parameter gradients in its own
 * partial buffer and the partials are added in thread order (layers.h). */
#include "layers/layers.h"
#include "layers/conv2d_paths.h"

static bool is_pointwise(const cn_layer *l) { return l->kernel == 1 && l->stride == 1 && l->pad == 0; }

size_t cn_conv2d_im2col_scratch_floats(const cn_layer *l) {
    size_t rows = (size_t)l->in.c * l->kernel * l->kernel, cols = (size_t)l->out.h * l->out.w;
    return 2 * rows * cols;   /* col + dcol */
}

/* col of sample `in` into scratch (the input itself for a 1x1 stride-1 unpadded conv). */
static const float *columns(const cn_layer *l, const float *in, float *scratch) {
    if (is_pointwise(l)) return in;
    cn_im2col(in, l->in.c, l->in.h, l->in.w, l->kernel, l->stride, l->pad, l->dilation, l->out.h, l->out.w, scratch);
    return scratch;
}

void cn_conv2d_forward_im2col(const cn_layer_ctx *c) {
    const cn_layer *l = c->layer;
    const cn_model *m = c->model;
    const float *weight = m->params + l->weight_offset;
    const float *bias = l->bias_count ? m->params + l->bias_offset : NULL;
    int in_size = cn_shape_size(l->in), out_size = cn_shape_size(l->out), G = l->groups;
    int ocg = l->out_channels / G, rows = (l->in.c / G) * l->kernel * l->kernel, pixels = l->out.h * l->out.w;
    #pragma omp parallel for schedule(static) num_threads(c->threads)
    for (int b = 0; b < c->batch; b++) {
        float *out = c->out + (size_t)b * out_size;
        const float *col = columns(l, c->in + (size_t)b * in_size, cn_thread_scratch(c));
        for (int g = 0; g < G; g++)
            cn_gemm_nn(ocg, pixels, rows, weight + (size_t)g * ocg * rows, col + (size_t)g * rows * pixels,
                       out + (size_t)g * ocg * pixels, 0);
        if (bias)
            for (int oc = 0; oc < l->out_channels; oc++) {
                float *o = out + (size_t)oc * pixels;
                for (int p = 0; p < pixels; p++) o[p] += bias[oc];
            }
    }
}

/* Sample b's backward: dW, db into the thread's partial gradients, dx when wanted. */
static void backward_sample(const cn_layer_ctx *c, int b, float *partial, float *scratch, const void *unused) {
    (void)unused;
    const cn_layer *l = c->layer;
    const float *weight = c->model->params + l->weight_offset;
    int in_size = cn_shape_size(l->in), out_size = cn_shape_size(l->out), G = l->groups;
    int ocg = l->out_channels / G, rows = (l->in.c / G) * l->kernel * l->kernel, pixels = l->out.h * l->out.w;
    const float *grad_out = c->grad_out + (size_t)b * out_size;
    const float *col = columns(l, c->in + (size_t)b * in_size, scratch);
    for (int g = 0; g < G; g++)   // dW_g (OCg, rows) += dy_g (OCg, pixels) @ col_g (rows, pixels)^T
        cn_gemm_nt(ocg, rows, pixels, grad_out + (size_t)g * ocg * pixels, col + (size_t)g * rows * pixels,
                   partial + l->weight_offset + (size_t)g * ocg * rows);
    if (l->bias_count) {
        float *db = partial + l->bias_offset;
        for (int oc = 0; oc < l->out_channels; oc++) {
            const float *gp = grad_out + (size_t)oc * pixels;
            float s = 0.0f;
            for (int p = 0; p < pixels; p++) s += gp[p];
            db[oc] += s;
        }
    }
    if (!c->grad_in) return;
    float *grad_in = c->grad_in + (size_t)b * in_size;
    // dcol_g (rows, pixels) = W_g (OCg, rows)^T @ dy_g (OCg, pixels)
    float *dcol = is_pointwise(l) ? grad_in : scratch + cn_conv2d_im2col_scratch_floats(l) / 2;
    for (int g = 0; g < G; g++)
        cn_gemm_tn(rows, pixels, ocg, weight + (size_t)g * ocg * rows, grad_out + (size_t)g * ocg * pixels,
                   dcol + (size_t)g * rows * pixels);
    if (!is_pointwise(l))
        cn_col2im(dcol, l->in.c, l->in.h, l->in.w, l->kernel, l->stride, l->pad, l->dilation, l->out.h, l->out.w, grad_in);
}

void cn_conv2d_backward_im2col(const cn_layer_ctx *c) { cn_per_sample_backward(c, backward_sample, NULL); }
