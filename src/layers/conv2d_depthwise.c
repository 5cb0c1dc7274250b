/* conv2d, depthwise 3x3 (groups = in = out channels), stride 1 or 2, any dilation, on
 * the depthwise kernels of the kernel set (kernels.h: dw3x3, dw3x3_wgrad, dw3x3_dgrad_s2), one
 * channel plane at a time while it is in cache:
 *   forward          out = dw3x3(prepared x) + bias, then (eval, fusion.h: a chain with
 *                    bn_first) the batch norm's affine map and the relu; (training, a batch
 *                    norm after: fusion.h cn_bn_stats_from_conv) the plane's statistics for it
 *   backward weight  dW[c] += dw3x3_wgrad(prepared x, dy), db[c] += sum dy
 *   backward input   stride 1: dx = dw3x3 with the flipped kernel over dy padded by
 *                    span - 1 - pad; stride 2: dx = dw3x3_dgrad_s2 over dy, by the parity
 *                    classes of the input pixels (no zeros spread between dy's values)
 * dy is the output gradient, or (fusion.h: cn_bn_grad_in_dw_conv) formed plane by plane from
 * what the batch norm after hands over, in scratch.
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
/* Stride 1: a stride-1 pass over the output gradient padded by span - 1 - pad; stride 2: the
 * parity classes' geometry (kernels.h: cn_dw_s2_grad_geom), dy with its zero border. */
static int backward_pad(const cn_layer *l) {
    return l->stride == 2 ? cn_dw_s2_border(l->dilation) : cn_conv_span(l) - 1 - l->pad;
}
static cn_dw_geom backward_geom(const cn_layer *l) {
    if (l->stride == 2) return cn_dw_s2_grad_geom(l->in.h, l->in.w, l->out.h, l->out.w, l->pad, l->dilation);
    int hp = l->in.h + cn_conv_span(l) - 1, wp = l->in.w + cn_conv_span(l) - 1;
    return (cn_dw_geom){ .hp = hp, .wp = wp, .out_h = l->in.h, .out_w = l->in.w, .stride = 1,
                         .dil = l->dilation, .ld = cn_dw_ld(wp) };
}

/* Per-thread scratch: two prepared planes (the forward input, and in the backward pass the
 * output gradient: each keeps its zeros from one channel to the next), then (backward) one
 * output gradient plane formed from a batch norm's handover. */
static size_t prepared_floats(const cn_layer *l) {
    cn_dw_geom f = forward_geom(l), b = backward_geom(l);
    size_t pf = cn_dw_prepared_floats(&f), pb = cn_dw_prepared_floats(&b);
    return (size_t)cn_round_up((int)(pf > pb ? pf : pb), CN_VEC_MAX);
}

size_t cn_conv2d_depthwise_scratch_floats(const cn_layer *l) {
    return 2 * prepared_floats(l) + (size_t)l->out.h * l->out.w;
}

void cn_conv2d_forward_depthwise(const cn_layer_ctx *c) {
    const cn_layer *l = c->layer;
    const cn_kernel_set *ks = cn_kernels();
    const float *weight = c->model->params + l->weight_offset;
    const float *bias = l->bias_count ? c->model->params + l->bias_offset : NULL;
    const cn_layer *bn = c->step->chain.bn_first ? c->peer->layer : NULL;
    int C = l->in.c, in_plane = l->in.h * l->in.w, out_plane = l->out.h * l->out.w;
    /* (B, C, 2) statistics of the output planes for the batch norm after, or NULL */
    double *stats = c->step->bn_stats_out ? c->peer->plane_stats + 2 * (size_t)c->first * C : NULL;
    cn_dw_geom g = forward_geom(l);
    #pragma omp parallel num_threads(c->threads)
    {
    float *prep = cn_thread_scratch(c);
    int laid_out = 0;   /* prep holds this geometry's zeros from an earlier plane */
    #pragma omp for schedule(static)
    for (int b = 0; b < c->batch; b++) {
        for (int ch = 0; ch < C; ch++) {
            cn_dw_epilogue ep = { .bias = bias ? bias[ch] : 0.0f, .affine = bn != NULL, .scale = 1.0f,
                                  .relu = c->step->chain.relu };
            if (bn) cn_batchnorm2d_eval_affine(c->model, bn, ch, &ep.scale, &ep.shift);
            size_t plane = (size_t)b * C + ch;
            float *out = c->out + plane * out_plane;
            (laid_out ? cn_dw_prepare_again : cn_dw_prepare)(&g, c->in + plane * in_plane, l->in.h, l->in.w, 1,
                                                             l->pad, prep);
            laid_out = 1;
            ks->dw3x3(&g, prep, weight + 9 * ch, &ep, out);
            if (stats) cn_bn_plane_stat(out, out_plane, stats + 2 * plane);   /* the plane still in cache */
        }
    }
    }
}

/* dL/d(output plane (b, ch)) from what the batch norm after hands over (fusion.h:
 * cn_bn_grad_in_dw_conv): its input (this conv's output), the chain's output gradient and,
 * with a relu, the chain's output, and its saved coefficients. */
static void bn_handover_grad(const cn_layer_ctx *bn, int b, int ch, float *dy) {
    const cn_layer *l = bn->layer;
    int C = l->in.c, plane = l->in.h * l->in.w;
    size_t o = ((size_t)b * C + ch) * plane;
    const float *saved = bn->saved;   /* mean, invstd, k, mean_dy, mean_dy_xhat (C each): batchnorm2d.c */
    cn_bn_relu_grad_input(bn->in + o, bn->grad_out + o, bn->step->chain.relu ? bn->out + o : NULL, dy, plane,
                          saved[ch], saved[C + ch], saved[2 * C + ch], saved[3 * C + ch], saved[4 * C + ch]);
}

/* Sample b's backward: dW, db into the thread's partial gradients, dx when wanted; geom: the
 * forward and backward-input geometries. */
static void backward_sample(const cn_layer_ctx *c, int b, float *partial, float *scratch, const void *geom) {
    const cn_layer *l = c->layer;
    const cn_dw_geom *f = geom, *bw = f + 1;
    const cn_kernel_set *ks = cn_kernels();
    const float *weight = c->model->params + l->weight_offset;
    int C = l->in.c, in_plane = l->in.h * l->in.w, out_plane = l->out.h * l->out.w;
    const cn_layer_ctx *bn = c->peer && c->peer->step->grad_in_dw_conv ? c->peer : NULL;
    float *prep_x = scratch, *prep_dy = scratch + prepared_floats(l), *dy_formed = prep_dy + prepared_floats(l);
    cn_dw_epilogue none = { .scale = 1.0f };
    for (int ch = 0; ch < C; ch++) {
        size_t plane = (size_t)b * C + ch;
        const float *dy = c->grad_out + plane * out_plane;
        if (bn) {
            bn_handover_grad(bn, b, ch, dy_formed);
            dy = dy_formed;
        }
        /* the first channel lays each buffer out, later ones only write their values */
        (ch ? cn_dw_prepare_again : cn_dw_prepare)(f, c->in + plane * in_plane, l->in.h, l->in.w, 1, l->pad, prep_x);
        ks->dw3x3_wgrad(f, prep_x, dy, partial + l->weight_offset + 9 * ch);
        if (l->bias_count) {
            float s = 0.0f;
            for (int i = 0; i < out_plane; i++) s += dy[i];
            partial[l->bias_offset + ch] += s;
        }
        if (!c->grad_in) continue;
        float *dx = c->grad_in + plane * in_plane;
        (ch ? cn_dw_prepare_again : cn_dw_prepare)(bw, dy, l->out.h, l->out.w, 1, backward_pad(l), prep_dy);
        if (l->stride == 2) {
            ks->dw3x3_dgrad_s2(bw, prep_dy, weight + 9 * ch, dx);
        } else {
            float flipped[9];
            for (int k = 0; k < 9; k++) flipped[k] = weight[9 * ch + 8 - k];
            ks->dw3x3(bw, prep_dy, flipped, &none, dx);
        }
    }
}

void cn_conv2d_backward_depthwise(const cn_layer_ctx *c) {
    const cn_dw_geom geom[2] = { forward_geom(c->layer), backward_geom(c->layer) };
    cn_per_sample_backward(c, backward_sample, geom);
}

/* ---- Small maps: the channel-vectorised kernels (kernels.h: cn_kernel_set.dwc_*) ----
 * Each sample is transposed to (rows, cols, channels) once and all channels run together; the
 * forward kernel applies the bias and (eval, a chain with bn_first) the batch norm's affine map
 * and the relu before its stores, the statistics for a batch norm after are taken in that
 * layout (cn_dwc_plane_stats), and the output is transposed back. The weight gradient is
 * summed over a thread's samples in (9, ld) and added to its partial gradients at the end. */

bool cn_conv2d_depthwise_channels(const cn_layer *l) {
    return cn_conv2d_depthwise_fast(l) && l->out.h * l->out.w <= CN_DWC_MAX_PLANE;
}

static cn_dwc_geom channels_geom(const cn_layer *l) {
    return (cn_dwc_geom){ .ld = cn_round_up(l->in.c, 16), .hp = l->in.h + 2 * l->pad, .wp = l->in.w + 2 * l->pad,
                          .out_h = l->out.h, .out_w = l->out.w, .stride = l->stride, .dil = l->dilation };
}

/* Per-thread scratch of the small-map path, in this order. */
typedef struct {
    float *x_t;         /* padded input (hp, wp, ld); backward: also the padded dx */
    float *dx_t;        /* backward: the padded input gradient (hp, wp, ld) */
    float *out_t;       /* forward: the output (pixels, ld); backward: dy^T */
    float *dy;          /* backward: dy (C, pixels) formed from a batch norm's handover */
    float *w_t, *dw_t;  /* (9, ld) */
    float *post;        /* forward: the epilogue's bias, scale and shift (3, ld) */
    double *sums;       /* forward: cn_dwc_plane_stats's scratch (2, ld) */
} dwc_scratch;

static size_t dwc_carve(const cn_layer *l, float *base, dwc_scratch *s) {
    cn_dwc_geom g = channels_geom(l);
    size_t image = (size_t)g.hp * g.wp * g.ld, pixels = (size_t)g.out_h * g.out_w, ld = (size_t)g.ld;
    size_t sizes[8] = { image, image, pixels * ld, pixels * l->in.c, 9 * ld, 9 * ld, 3 * ld, 2 * ld * 2 };
    float *sums;
    float **piece[8] = { &s->x_t, &s->dx_t, &s->out_t, &s->dy, &s->w_t, &s->dw_t, &s->post, &sums };
    size_t used = cn_carve_scratch(base, sizes, piece, 8);
    s->sums = (double *)(void *)sums;   /* a whole vector's alignment: fine for doubles */
    return used;
}

size_t cn_conv2d_depthwise_channels_scratch_floats(const cn_layer *l) {
    dwc_scratch s;
    return dwc_carve(l, NULL, &s);
}

/* The scratch's images zeroed (borders and lanes C..ld-1 stay so) and w_t from the weight (C, 9). */
static void dwc_lay_out(const cn_layer *l, const float *weight, const dwc_scratch *s) {
    cn_dwc_geom g = channels_geom(l);
    size_t image = (size_t)g.hp * g.wp * g.ld, pixels = (size_t)g.out_h * g.out_w;
    memset(s->x_t, 0, image * sizeof(float));
    memset(s->out_t, 0, pixels * g.ld * sizeof(float));
    memset(s->w_t, 0, 9 * (size_t)g.ld * sizeof(float));
    for (int ch = 0; ch < l->in.c; ch++)
        for (int t = 0; t < 9; t++) s->w_t[(size_t)t * g.ld + ch] = weight[9 * ch + t];
}

/* x (C, H, W) into the interior of x_t (hp, wp, ld). */
static void dwc_transpose_in(const cn_layer *l, const cn_dwc_geom *g, const float *x, float *x_t) {
    cn_transpose_to_pixels(x, l->in.c, l->in.h, l->in.w, x_t + ((size_t)l->pad * g->wp + l->pad) * g->ld,
                           (size_t)g->wp * g->ld, g->ld);
}

/* The forward kernel's point-wise steps for c (NULL when it has none), their vectors in post. */
static const cn_dwc_epilogue *dwc_epilogue(const cn_layer_ctx *c, float *post, int ld, cn_dwc_epilogue *ep) {
    const cn_layer *l = c->layer;
    const cn_layer *bn = c->step->chain.bn_first ? c->peer->layer : NULL;
    const float *bias = l->bias_count ? c->model->params + l->bias_offset : NULL;
    memset(post, 0, 3 * (size_t)ld * sizeof *post);   /* lanes C..ld-1 stay 0 */
    for (int ch = 0; ch < l->in.c; ch++) {
        if (bias) post[ch] = bias[ch];
        if (bn) cn_batchnorm2d_eval_affine(c->model, bn, ch, &post[ld + ch], &post[2 * ld + ch]);
    }
    *ep = (cn_dwc_epilogue){ .bias = bias ? post : NULL, .scale = bn ? post + ld : NULL, .shift = post + 2 * ld,
                             .relu = c->step->chain.relu };
    return bias || bn || ep->relu ? ep : NULL;
}

void cn_conv2d_forward_depthwise_channels(const cn_layer_ctx *c) {
    const cn_layer *l = c->layer;
    const cn_kernel_set *ks = cn_kernels();
    const float *weight = c->model->params + l->weight_offset;
    int C = l->in.c, pixels = l->out.h * l->out.w;
    /* (B, C, 2) statistics of the output planes for the batch norm after, or NULL */
    double *stats = c->step->bn_stats_out ? c->peer->plane_stats + 2 * (size_t)c->first * C : NULL;
    cn_dwc_geom g = channels_geom(l);
    #pragma omp parallel num_threads(c->threads)
    {
    dwc_scratch s;
    dwc_carve(l, cn_thread_scratch(c), &s);
    dwc_lay_out(l, weight, &s);
    cn_dwc_epilogue ep_store;
    const cn_dwc_epilogue *ep = dwc_epilogue(c, s.post, g.ld, &ep_store);
    #pragma omp for schedule(static)
    for (int b = 0; b < c->batch; b++) {
        dwc_transpose_in(l, &g, c->in + (size_t)b * cn_shape_size(l->in), s.x_t);
        ks->dwc_forward(&g, s.x_t, s.w_t, ep, s.out_t);
        if (stats) cn_dwc_plane_stats(s.out_t, pixels, C, g.ld, s.sums, stats + 2 * (size_t)b * C);
        cn_transpose_from_pixels(s.out_t, (size_t)l->out.w * g.ld, g.ld, C, l->out.h, l->out.w,
                                 c->out + (size_t)b * cn_shape_size(l->out));
    }
    }
}

static void dwc_backward_prepare(const cn_layer_ctx *c, float *scratch, const void *unused) {
    (void)unused;
    const cn_layer *l = c->layer;
    dwc_scratch s;
    dwc_carve(l, scratch, &s);
    dwc_lay_out(l, c->model->params + l->weight_offset, &s);
    memset(s.dw_t, 0, 9 * (size_t)channels_geom(l).ld * sizeof(float));
}

static void dwc_backward_sample(const cn_layer_ctx *c, int b, float *partial, float *scratch, const void *unused) {
    (void)unused;
    const cn_layer *l = c->layer;
    int C = l->in.c, H = l->in.h, W = l->in.w, pixels = l->out.h * l->out.w;
    cn_dwc_geom g = channels_geom(l);
    dwc_scratch s;
    dwc_carve(l, scratch, &s);
    const cn_layer_ctx *bn = c->peer && c->peer->step->grad_in_dw_conv ? c->peer : NULL;
    const float *dy = c->grad_out + (size_t)b * cn_shape_size(l->out);
    if (bn) {
        for (int ch = 0; ch < C; ch++) bn_handover_grad(bn, b, ch, s.dy + (size_t)ch * pixels);
        dy = s.dy;
    }
    cn_transpose(dy, C, pixels, pixels, s.out_t, g.ld);
    dwc_transpose_in(l, &g, c->in + (size_t)b * cn_shape_size(l->in), s.x_t);
    cn_kernels()->dwc_weight_grad(&g, s.x_t, s.out_t, s.dw_t);
    if (l->bias_count)
        for (int ch = 0; ch < C; ch++) {
            float sum = 0.0f;
            for (int i = 0; i < pixels; i++) sum += dy[(size_t)ch * pixels + i];
            partial[l->bias_offset + ch] += sum;
        }
    if (!c->grad_in) return;
    memset(s.dx_t, 0, (size_t)g.hp * g.wp * g.ld * sizeof(float));
    cn_kernels()->dwc_input_grad(&g, s.out_t, s.w_t, s.dx_t);
    float *dx = c->grad_in + (size_t)b * cn_shape_size(l->in);
    cn_transpose_from_pixels(s.dx_t + ((size_t)l->pad * g.wp + l->pad) * g.ld, (size_t)g.wp * g.ld, g.ld, C, H, W, dx);
}

static void dwc_backward_finish(const cn_layer_ctx *c, float *partial, float *scratch, const void *unused) {
    (void)unused;
    const cn_layer *l = c->layer;
    int ld = channels_geom(l).ld;
    dwc_scratch s;
    dwc_carve(l, scratch, &s);
    float *dw = partial + l->weight_offset;
    for (int ch = 0; ch < l->in.c; ch++)
        for (int t = 0; t < 9; t++) dw[9 * ch + t] += s.dw_t[(size_t)t * ld + ch];
}

void cn_conv2d_backward_depthwise_channels(const cn_layer_ctx *c) {
    const cn_sample_backward pass = { dwc_backward_prepare, dwc_backward_sample, dwc_backward_finish };
    cn_per_sample_backward_with(c, &pass, NULL);
}
