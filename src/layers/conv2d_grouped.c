/* conv2d with groups (G > 1, other than the depthwise 3x3 of conv2d_depthwise.c), stride 1,
 * no dilation, on the direct kernels of kernels.h, one group at a time. In NCHW a group's
 * input channels (ICg = IC/G), its output channels (OCg = OC/G) and its weights (OCg, ICg, k, k)
 * are each contiguous, so group g of one sample is a direct convolution of its own:
 *   forward          out_g = conv(x_g padded, W_g) + bias_g          (ks->conv, pixel form)
 *   backward weight  dW_g^T (ICg*k*k, ld) = x_g windows x dy_g^T      (ks->weight_grad)
 *   backward input   dx_g = conv(dy_g padded by k-1-pad, W_g flipped, in/out swapped)
 * The group's weights are packed for each sample (OCg*ICg*k*k floats: 1/(OH*OW) of the
 * sample's multiply-adds), so no state lives between samples. The layer leads no fused chain
 * (fusion.h: cn_conv_is_direct is false for it). Samples are split over threads; parameter
 * gradients are summed per thread and the partials added in thread order (layers.h). */
#include "layers/layers.h"
#include "layers/conv2d_paths.h"
#include <string.h>

bool cn_conv2d_grouped_direct(const cn_layer *l) {
    return l->kind == CN_LAYER_CONV2D && l->groups > 1 && l->stride == 1 && l->dilation == 1 &&
           !cn_conv2d_depthwise_fast(l);
}

/* One group's geometries: forward (x_g -> out_g) and backward input (dy_g -> dx_g). */
static cn_conv_geom group_forward_geom(const cn_layer *l) {
    return (cn_conv_geom){ .in_c = l->in.c / l->groups, .out_c = l->out.c / l->groups, .k = l->kernel,
                           .hp = l->in.h + 2 * l->pad, .wp = l->in.w + 2 * l->pad,
                           .out_h = l->out.h, .out_w = l->out.w, .wino_m = 2 };
}
static int backward_pad(const cn_layer *l) { return l->kernel - 1 - l->pad; }
static cn_conv_geom group_backward_geom(const cn_layer *l) {
    int p = backward_pad(l);
    return (cn_conv_geom){ .in_c = l->out.c / l->groups, .out_c = l->in.c / l->groups, .k = l->kernel,
                           .hp = l->out.h + 2 * p, .wp = l->out.w + 2 * p,
                           .out_h = l->in.h, .out_w = l->in.w, .wino_m = 2 };
}

/* Pixel-form conv (ks->conv) over whole q-layout rows: every padding column of g, rows
 * rounded up to vectors. */
static double pixel_form_macs(const cn_conv_geom *g) {
    return (double)g->in_c * g->k * g->k * g->out_c * cn_conv_q_stride(g);
}

double cn_conv2d_grouped_issued_macs(const cn_layer *l, int pass) {
    cn_conv_geom f = group_forward_geom(l), bw = group_backward_geom(l);
    double G = l->groups;
    if (pass == 0) return G * pixel_form_macs(&f);
    if (pass == 1) return G * pixel_form_macs(&bw);
    /* ks->weight_grad: every tap x output pixel x ld lanes (OCg rounded up to vectors) */
    return G * f.in_c * f.k * f.k * (double)f.out_h * f.out_w * cn_kernels()->wgrad_ld(f.out_c);
}

/* Per-thread scratch, in this order (each piece a whole number of vectors). */
typedef struct {
    float *packed;      /* one group's packed weights (forward, or flipped for backward input) */
    float *x_pad;       /* one group's padded input (forward geometry, with slack) */
    float *out_q;       /* forward: one group's output, q layout; backward: dx_g, q layout */
    float *dyt;         /* backward: dy_g^T (OH*OW, ld) */
    float *dwt;         /* backward: dW_g^T (ICg*k*k, ld) of one sample */
    float *dy_pad;      /* backward: one group's padded dy (backward geometry, with slack) */
} group_scratch;

static size_t larger(size_t a, size_t b) { return a > b ? a : b; }

/* Splits base (NULL: just measure) into the pieces above; returns the floats used. */
static size_t carve(const cn_layer *l, float *base, group_scratch *s) {
    cn_conv_geom f = group_forward_geom(l), bw = group_backward_geom(l);
    size_t ld = (size_t)cn_round_up(f.out_c, CN_VEC_MAX), taps = (size_t)f.in_c * f.k * f.k;
    size_t sizes[6] = {
        cn_conv_packed_floats(&f),
        cn_padded_floats(f.in_c, f.hp, f.wp),
        larger((size_t)f.out_c * cn_conv_q_stride(&f), (size_t)bw.out_c * cn_conv_q_stride(&bw)),
        (size_t)f.out_h * f.out_w * ld,
        taps * ld,
        cn_padded_floats(bw.in_c, bw.hp, bw.wp),
    };
    float **piece[6] = { &s->packed, &s->x_pad, &s->out_q, &s->dyt, &s->dwt, &s->dy_pad };
    return cn_carve_scratch(base, sizes, piece, 6);
}

size_t cn_conv2d_grouped_scratch_floats(const cn_layer *l) {
    group_scratch s;
    return carve(l, NULL, &s);
}

/* dst = src (C, hs, ws) zero-padded into the plane of g (C, hp, wp), and its slack zeroed. */
static void pad_group(const cn_conv_geom *g, const float *src, int hs, int ws, int pad, float *dst) {
    size_t plane = (size_t)g->in_c * g->hp * g->wp;
    cn_pad_copy(src, g->in_c, hs, ws, pad, dst, g->hp, g->wp, 0);
    memset(dst + plane, 0, (cn_padded_floats(g->in_c, g->hp, g->wp) - plane) * sizeof *dst);
}

// in (B,IC,H,W), weight (OC,IC/G,k,k), bias (OC) -> out (B,OC,OH,OW)
void cn_conv2d_forward_grouped(const cn_layer_ctx *c) {
    const cn_layer *l = c->layer;
    const cn_kernel_set *ks = cn_kernels();
    const float *weight = c->model->params + l->weight_offset;
    const float *bias = l->bias_count ? c->model->params + l->bias_offset : NULL;
    cn_conv_geom f = group_forward_geom(l);
    int G = l->groups, in_size = cn_shape_size(l->in), out_size = cn_shape_size(l->out);
    size_t x_group = (size_t)f.in_c * l->in.h * l->in.w, out_group = (size_t)f.out_c * l->out.h * l->out.w;
    size_t w_group = cn_conv_packed_floats(&f);
    #pragma omp parallel for schedule(static) num_threads(c->threads)
    for (int b = 0; b < c->batch; b++) {
        group_scratch s;
        carve(l, cn_thread_scratch(c), &s);
        for (int g = 0; g < G; g++) {
            cn_conv_pack(ks, &f, weight + g * w_group, 0, s.packed);
            pad_group(&f, c->in + (size_t)b * in_size + g * x_group, l->in.h, l->in.w, l->pad, s.x_pad);
            ks->conv(&f, s.packed, s.x_pad, s.out_q);
            cn_conv_compact(s.out_q, f.out_c, f.out_h, f.out_w, f.wp, cn_conv_q_stride(&f),
                            bias ? bias + (size_t)g * f.out_c : NULL, c->out + (size_t)b * out_size + g * out_group);
        }
    }
}

/* Sample b's backward: dW, db into the thread's partial gradients, dx when wanted. */
static void backward_sample(const cn_layer_ctx *c, int b, float *partial, float *scratch, const void *unused) {
    (void)unused;
    const cn_layer *l = c->layer;
    const cn_kernel_set *ks = cn_kernels();
    const float *weight = c->model->params + l->weight_offset;
    cn_conv_geom f = group_forward_geom(l), bw = group_backward_geom(l);
    int G = l->groups, pixels = l->out.h * l->out.w, ld = ks->wgrad_ld(f.out_c);
    int taps = f.in_c * f.k * f.k;
    size_t x_group = (size_t)f.in_c * l->in.h * l->in.w, out_group = (size_t)f.out_c * pixels;
    size_t w_group = cn_conv_packed_floats(&f);
    group_scratch s;
    carve(l, scratch, &s);
    memset(s.dyt, 0, (size_t)pixels * ld * sizeof(float));    /* lanes OCg..ld-1 stay 0 */
    for (int g = 0; g < G; g++) {
        const float *dy = c->grad_out + (size_t)b * cn_shape_size(l->out) + g * out_group;
        const float *x = c->in + (size_t)b * cn_shape_size(l->in) + g * x_group;
        /* dW_g (OCg, taps) += dW_g^T of this sample */
        cn_transpose(dy, f.out_c, pixels, pixels, s.dyt, ld);
        memset(s.dwt, 0, (size_t)taps * ld * sizeof(float));
        pad_group(&f, x, l->in.h, l->in.w, l->pad, s.x_pad);
        ks->weight_grad(&f, s.x_pad, s.dyt, ld, s.dwt);
        float *dw = partial + l->weight_offset + g * w_group;
        for (int oc = 0; oc < f.out_c; oc++)
            for (int k = 0; k < taps; k++) dw[(size_t)oc * taps + k] += s.dwt[(size_t)k * ld + oc];
        if (l->bias_count)
            for (int oc = 0; oc < f.out_c; oc++) {
                const float *d = dy + (size_t)oc * pixels;
                float sum = 0.0f;
                for (int p = 0; p < pixels; p++) sum += d[p];
                partial[l->bias_offset + g * f.out_c + oc] += sum;
            }
        if (!c->grad_in) continue;
        cn_conv_pack(ks, &bw, weight + g * w_group, 1, s.packed);
        pad_group(&bw, dy, l->out.h, l->out.w, backward_pad(l), s.dy_pad);
        ks->conv(&bw, s.packed, s.dy_pad, s.out_q);
        cn_conv_compact(s.out_q, bw.out_c, bw.out_h, bw.out_w, bw.wp, cn_conv_q_stride(&bw), NULL,
                        c->grad_in + (size_t)b * cn_shape_size(l->in) + g * x_group);
    }
}

void cn_conv2d_backward_grouped(const cn_layer_ctx *c) {
    cn_per_sample_backward(c, backward_sample, NULL);
}
