/* conv2d with dilation d > 1 at stride 1, not grouped, on the direct kernels of kernels.h by
 * phase splitting. With x_pad the zero-padded input (Hp, Wp), output pixel (oy, ox) reads
 * x_pad[oy + ky*d][ox + kx*d]: outputs of one phase (oy % d, ox % d) = (py, px) read only
 * inputs of the same phase, and with
 *   x_p[i][j] = x_pad[py + d*i][px + d*j]     (phase input: ceil((Hp - py)/d) rows)
 *   out[oy = py + d*i][ox = px + d*j] = sum over taps of w[ky][kx] * x_p[i + ky][j + kx],
 * an undilated convolution of the phase input. So each of the d*d phases is a direct
 * convolution of its own (stride 1, no padding: the phase input holds the padding):
 *   forward          out_p = conv(x_p, W)                               (ks->conv)
 *   backward weight  dW^T (IC*k*k, ld) += sum over phases x_p windows x dy_p^T (ks->weight_grad)
 *   backward input   dx_p = conv(dy_p padded by k-1, W flipped, in/out swapped), the gradient
 *                    of x_p, whose pixels inside the input (not the padding) are dx's of that
 *                    phase: every dx pixel belongs to exactly one phase
 * A phase with no output pixels (py >= OH) contributes nothing; its dx pixels are 0. Weights
 * are packed for each sample (1/(OH*OW) of its multiply-adds). Samples are split over
 * threads; parameter gradients are summed per thread and the partials added in thread order
 * (layers.h). The layer leads no fused chain (fusion.h: cn_conv_is_direct is false for it). */
#include "layers/layers.h"
#include "layers/conv2d_paths.h"
#include <string.h>

bool cn_conv2d_dilated_direct(const cn_layer *l) {
    return l->kind == CN_LAYER_CONV2D && l->dilation > 1 && l->stride == 1 && l->groups == 1;
}

static int ceil_div(int a, int d) { return a > 0 ? (a + d - 1) / d : 0; }

/* Phase (py, px)'s forward geometry (x_p -> out_p); out_h or out_w <= 0 when it has no outputs. */
static cn_conv_geom phase_geom(const cn_layer *l, int py, int px) {
    int d = l->dilation, hp = ceil_div(l->in.h + 2 * l->pad - py, d), wp = ceil_div(l->in.w + 2 * l->pad - px, d);
    return (cn_conv_geom){ .in_c = l->in.c, .out_c = l->out.c, .k = l->kernel, .hp = hp, .wp = wp,
                           .out_h = hp - l->kernel + 1, .out_w = wp - l->kernel + 1, .wino_m = 2 };
}
/* Its backward-input geometry: dy_p padded by k-1 -> the gradient of x_p. */
static cn_conv_geom phase_backward_geom(const cn_conv_geom *f) {
    int p = f->k - 1;
    return (cn_conv_geom){ .in_c = f->out_c, .out_c = f->in_c, .k = f->k, .hp = f->out_h + 2 * p,
                           .wp = f->out_w + 2 * p, .out_h = f->hp, .out_w = f->wp, .wino_m = 2 };
}

double cn_conv2d_dilated_issued_macs(const cn_layer *l, int pass) {
    int d = l->dilation, ld = cn_kernels()->wgrad_ld(l->out.c);
    double sum = 0.0;
    for (int py = 0; py < d && py < l->out.h; py++)
        for (int px = 0; px < d && px < l->out.w; px++) {
            cn_conv_geom f = phase_geom(l, py, px), bw = phase_backward_geom(&f);
            double taps = (double)f.in_c * f.k * f.k;
            /* ks->conv over whole q-layout rows (padding columns, rows rounded to vectors);
             * ks->weight_grad over every tap x output pixel x ld lanes */
            if (pass == 0) sum += taps * f.out_c * cn_conv_q_stride(&f);
            else if (pass == 1) sum += (double)bw.in_c * bw.k * bw.k * bw.out_c * cn_conv_q_stride(&bw);
            else sum += taps * f.out_h * f.out_w * ld;
        }
    return sum;
}

/* Per-thread scratch, in this order (each piece a whole number of vectors); sized for phase
 * (0, 0), the largest. */
typedef struct {
    float *packed;      /* packed weights (forward, or flipped for backward input) */
    float *x_p;         /* a phase input (with slack) */
    float *out_q;       /* forward: a phase output, q layout; backward: the gradient of x_p, q layout */
    float *dy_p;        /* backward: a phase's dy (OC, oh_p, ow_p) */
    float *dyt;         /* backward: dy_p^T (oh_p*ow_p, ld) */
    float *dwt;         /* backward: dW^T (IC*k*k, ld) of one sample */
    float *dy_pad;      /* backward: dy_p padded by k-1 (with slack) */
} phase_scratch;

static size_t larger(size_t a, size_t b) { return a > b ? a : b; }

/* Splits base (NULL: just measure) into the pieces above; returns the floats used. */
static size_t carve(const cn_layer *l, float *base, phase_scratch *s) {
    cn_conv_geom f = phase_geom(l, 0, 0), bw = phase_backward_geom(&f);
    size_t ld = (size_t)cn_round_up(f.out_c, CN_VEC_MAX), pixels = (size_t)f.out_h * f.out_w;
    size_t sizes[7] = {
        cn_conv_packed_floats(&f),
        cn_padded_floats(f.in_c, f.hp, f.wp),
        larger((size_t)f.out_c * cn_conv_q_stride(&f), (size_t)bw.out_c * cn_conv_q_stride(&bw)),
        (size_t)f.out_c * pixels,
        pixels * ld,
        (size_t)f.in_c * f.k * f.k * ld,
        cn_padded_floats(bw.in_c, bw.hp, bw.wp),
    };
    float **piece[7] = { &s->packed, &s->x_p, &s->out_q, &s->dy_p, &s->dyt, &s->dwt, &s->dy_pad };
    return cn_carve_scratch(base, sizes, piece, 7);
}

size_t cn_conv2d_dilated_scratch_floats(const cn_layer *l) {
    phase_scratch s;
    return carve(l, NULL, &s);
}

/* x_p (C, g->hp, g->wp) + zero slack = phase (py, px) of x (C, H, W) zero-padded by pad. */
static void gather_input_phase(const cn_layer *l, const cn_conv_geom *g, const float *x, int py, int px, float *x_p) {
    int d = l->dilation, H = l->in.h, W = l->in.w;
    memset(x_p, 0, cn_padded_floats(g->in_c, g->hp, g->wp) * sizeof *x_p);
    for (int c = 0; c < g->in_c; c++)
        for (int i = 0; i < g->hp; i++) {
            int y = py + d * i - l->pad;
            if (y < 0 || y >= H) continue;
            const float *src = x + ((size_t)c * H + y) * W;
            float *dst = x_p + ((size_t)c * g->hp + i) * g->wp;
            for (int j = 0; j < g->wp; j++) {
                int xx = px + d * j - l->pad;
                if (xx >= 0 && xx < W) dst[j] = src[xx];
            }
        }
}

// in (B,IC,H,W), weight (OC,IC,k,k), bias (OC) -> out (B,OC,OH,OW)
void cn_conv2d_forward_dilated(const cn_layer_ctx *c) {
    const cn_layer *l = c->layer;
    const cn_kernel_set *ks = cn_kernels();
    const float *weight = c->model->params + l->weight_offset;
    const float *bias = l->bias_count ? c->model->params + l->bias_offset : NULL;
    int d = l->dilation, OH = l->out.h, OW = l->out.w;
    #pragma omp parallel for schedule(static) num_threads(c->threads)
    for (int b = 0; b < c->batch; b++) {
        phase_scratch s;
        carve(l, cn_thread_scratch(c), &s);
        cn_conv_geom f0 = phase_geom(l, 0, 0);
        cn_conv_pack(ks, &f0, weight, 0, s.packed);    /* the packing depends on the channels only */
        float *out = c->out + (size_t)b * cn_shape_size(l->out);
        for (int py = 0; py < d && py < OH; py++)
            for (int px = 0; px < d && px < OW; px++) {
                cn_conv_geom f = phase_geom(l, py, px);
                gather_input_phase(l, &f, c->in + (size_t)b * cn_shape_size(l->in), py, px, s.x_p);
                ks->conv(&f, s.packed, s.x_p, s.out_q);
                int qs = cn_conv_q_stride(&f);
                for (int oc = 0; oc < l->out.c; oc++) {
                    float bv = bias ? bias[oc] : 0.0f;
                    for (int i = 0; i < f.out_h; i++) {
                        const float *q = s.out_q + (size_t)oc * qs + (size_t)i * f.wp;
                        float *o = out + ((size_t)oc * OH + py + d * i) * OW + px;
                        if (bias) for (int j = 0; j < f.out_w; j++) o[d * j] = q[j] + bv;
                        else for (int j = 0; j < f.out_w; j++) o[d * j] = q[j];
                    }
                }
            }
    }
}

/* Sample b's backward: dW, db into the thread's partial gradients, dx when wanted. */
static void backward_sample(const cn_layer_ctx *c, int b, float *partial, float *scratch, const void *unused) {
    (void)unused;
    const cn_layer *l = c->layer;
    const cn_kernel_set *ks = cn_kernels();
    const float *weight = c->model->params + l->weight_offset;
    int d = l->dilation, OC = l->out.c, IC = l->in.c, OH = l->out.h, OW = l->out.w, H = l->in.h, W = l->in.w;
    int ld = ks->wgrad_ld(OC), taps = IC * l->kernel * l->kernel;
    phase_scratch s;
    carve(l, scratch, &s);
    const float *x = c->in + (size_t)b * cn_shape_size(l->in), *dy = c->grad_out + (size_t)b * cn_shape_size(l->out);
    float *dx = c->grad_in ? c->grad_in + (size_t)b * cn_shape_size(l->in) : NULL;
    cn_conv_geom f0 = phase_geom(l, 0, 0), bw0 = phase_backward_geom(&f0);
    memset(s.dwt, 0, (size_t)taps * ld * sizeof(float));
    if (dx) {
        memset(dx, 0, (size_t)cn_shape_size(l->in) * sizeof *dx);    /* pixels of phases without outputs */
        cn_conv_pack(ks, &bw0, weight, 1, s.packed);
    }
    for (int py = 0; py < d && py < OH; py++)
        for (int px = 0; px < d && px < OW; px++) {
            cn_conv_geom f = phase_geom(l, py, px), bw = phase_backward_geom(&f);
            int pixels = f.out_h * f.out_w;
            for (int oc = 0; oc < OC; oc++)
                for (int i = 0; i < f.out_h; i++) {
                    const float *src = dy + ((size_t)oc * OH + py + d * i) * OW + px;
                    float *dst = s.dy_p + (size_t)oc * pixels + (size_t)i * f.out_w;
                    for (int j = 0; j < f.out_w; j++) dst[j] = src[d * j];
                }
            /* dW^T += x_p windows x dy_p^T (lanes OC..ld-1 of dyt zero) */
            memset(s.dyt, 0, (size_t)pixels * ld * sizeof(float));
            cn_transpose(s.dy_p, OC, pixels, pixels, s.dyt, ld);
            gather_input_phase(l, &f, x, py, px, s.x_p);
            ks->weight_grad(&f, s.x_p, s.dyt, ld, s.dwt);
            if (!dx) continue;
            /* the gradient of x_p; its pixels inside the input are dx's of this phase */
            size_t pad_floats = cn_padded_floats(bw.in_c, bw.hp, bw.wp), plane = (size_t)bw.in_c * bw.hp * bw.wp;
            cn_pad_copy(s.dy_p, OC, f.out_h, f.out_w, f.k - 1, s.dy_pad, bw.hp, bw.wp, 0);
            memset(s.dy_pad + plane, 0, (pad_floats - plane) * sizeof(float));
            ks->conv(&bw, s.packed, s.dy_pad, s.out_q);
            int qs = cn_conv_q_stride(&bw);
            for (int ic = 0; ic < IC; ic++)
                for (int i = 0; i < bw.out_h; i++) {
                    int y = py + d * i - l->pad;
                    if (y < 0 || y >= H) continue;
                    const float *q = s.out_q + (size_t)ic * qs + (size_t)i * bw.wp;
                    float *o = dx + ((size_t)ic * H + y) * W;
                    for (int j = 0; j < bw.out_w; j++) {
                        int xx = px + d * j - l->pad;
                        if (xx >= 0 && xx < W) o[xx] = q[j];
                    }
                }
        }
    float *dw = partial + l->weight_offset;
    for (int oc = 0; oc < OC; oc++)
        for (int k = 0; k < taps; k++) dw[(size_t)oc * taps + k] += s.dwt[(size_t)k * ld + oc];
    if (l->bias_count)
        for (int oc = 0; oc < OC; oc++) {
            const float *g = dy + (size_t)oc * OH * OW;
            float sum = 0.0f;
            for (int p = 0; p < OH * OW; p++) sum += g[p];
            partial[l->bias_offset + oc] += sum;
        }
}

void cn_conv2d_backward_dilated(const cn_layer_ctx *c) {
    cn_per_sample_backward(c, backward_sample, NULL);
}
