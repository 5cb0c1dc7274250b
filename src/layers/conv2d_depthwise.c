/* conv2d, depthwise 3x3 (groups = in = out channels), stride 1 or 2, any dilation, on
 * the depthwise kernels of the kernel set (kernels.h: dw3x3, dw3x3_wgrad), one channel
 * plane at a time while it is in cache:
 *   forward          out = dw3x3(prepared x) + bias, then (eval, fusion.h: a chain with
 *                    bn_first) the batch norm's affine map and the relu
 *   backward weight  dW[c] += dw3x3_wgrad(prepared x, dy), db[c] += sum dy
 *   backward input   dx = dw3x3 at stride 1 with the flipped kernel over dy spread by the
 *                    stride and padded by span - 1 - pad (a stride-2 gradient spread with
 *                    zeros between its values: 4x the multiply-adds needed there)
 * Samples are split over threads; parameter gradients are summed per thread and the
 * partials added in thread order (layers.h). */
#include "layers/layers.h"
#include "layers/conv2d_paths.h"
#include <string.h>

bool cn_conv2d_depthwise_fast(const cn_layer *l) {
    return l->kind == CN_LAYER_CONV2D && l->groups == l->in.c && l->out.c == l->in.c && l->kernel == 3 &&
           (l->stride == 1 || l->stride == 2) && l->pad <= 2 * l->dilation;
}

static cn_dw_geom forward_geom(const cn_layer *l) {
    int hp = l->in.h + 2 * l->pad, wp = l->in.w + 2 * l->pad;
    return (cn_dw_geom){ .hp = hp, .wp = wp, .out_h = l->out.h, .out_w = l->out.w, .stride = l->stride,
                         .dil = l->dilation, .ld = cn_dw_ld(wp) };
}
/* Stride 1 over the output gradient spread by the stride, padded by span - 1 - pad. */
static int backward_pad(const cn_layer *l) { return cn_conv_span(l) - 1 - l->pad; }
static cn_dw_geom backward_geom(const cn_layer *l) {
    int hp = l->in.h + cn_conv_span(l) - 1, wp = l->in.w + cn_conv_span(l) - 1;
    return (cn_dw_geom){ .hp = hp, .wp = wp, .out_h = l->in.h, .out_w = l->in.w, .stride = 1,
                         .dil = l->dilation, .ld = cn_dw_ld(wp) };
}

size_t cn_conv2d_depthwise_scratch_floats(const cn_layer *l) {
    cn_dw_geom f = forward_geom(l), b = backward_geom(l);
    size_t pf = cn_dw_prepared_floats(&f), pb = cn_dw_prepared_floats(&b);
    return pf > pb ? pf : pb;
}

void cn_conv2d_forward_depthwise(const cn_layer_ctx *c) {
    const cn_layer *l = c->layer;
    const cn_kernel_set *ks = cn_kernels();
    const float *weight = c->model->params + l->weight_offset;
    const float *bias = l->bias_count ? c->model->params + l->bias_offset : NULL;
    const cn_layer *bn = c->step->chain.bn_first ? c->peer->layer : NULL;
    cn_dw_geom g = forward_geom(l);
    int C = l->in.c, in_plane = l->in.h * l->in.w, out_plane = l->out.h * l->out.w;
    #pragma omp parallel for schedule(static) num_threads(c->threads)
    for (int b = 0; b < c->batch; b++) {
        float *prep = cn_thread_scratch(c);
        for (int ch = 0; ch < C; ch++) {
            cn_dw_epilogue ep = { .bias = bias ? bias[ch] : 0.0f, .affine = bn != NULL, .scale = 1.0f,
                                  .relu = c->step->chain.relu };
            if (bn) cn_batchnorm2d_eval_affine(c->model, bn, ch, &ep.scale, &ep.shift);
            size_t plane = (size_t)b * C + ch;
            cn_dw_prepare(&g, c->in + plane * in_plane, l->in.h, l->in.w, 1, l->pad, prep);
            ks->dw3x3(&g, prep, weight + 9 * ch, &ep, c->out + plane * out_plane);
        }
    }
}

/* Sample b's backward: dW, db into the thread's partial gradients, dx when wanted; geom: the
 * forward and backward-input geometries. */
static void backward_sample(const cn_layer_ctx *c, int b, float *partial, float *prep, const void *geom) {
    const cn_layer *l = c->layer;
    const cn_dw_geom *f = geom, *bw = f + 1;
    const cn_kernel_set *ks = cn_kernels();
    const float *weight = c->model->params + l->weight_offset;
    int C = l->in.c, in_plane = l->in.h * l->in.w, out_plane = l->out.h * l->out.w;
    cn_dw_epilogue none = { .scale = 1.0f };
    for (int ch = 0; ch < C; ch++) {
        size_t plane = (size_t)b * C + ch;
        const float *dy = c->grad_out + plane * out_plane;
        cn_dw_prepare(f, c->in + plane * in_plane, l->in.h, l->in.w, 1, l->pad, prep);
        ks->dw3x3_wgrad(f, prep, dy, partial + l->weight_offset + 9 * ch);
        if (l->bias_count) {
            float s = 0.0f;
            for (int i = 0; i < out_plane; i++) s += dy[i];
            partial[l->bias_offset + ch] += s;
        }
        if (!c->grad_in) continue;
        float flipped[9];
        for (int k = 0; k < 9; k++) flipped[k] = weight[9 * ch + 8 - k];
        cn_dw_prepare(bw, dy, l->out.h, l->out.w, l->stride, backward_pad(l), prep);
        ks->dw3x3(bw, prep, flipped, &none, c->grad_in + plane * in_plane);
    }
}

void cn_conv2d_backward_depthwise(const cn_layer_ctx *c) {
    const cn_dw_geom geom[2] = { forward_geom(c->layer), backward_geom(c->layer) };
    cn_per_sample_backward(c, backward_sample, geom);
}
