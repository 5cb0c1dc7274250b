/* conv2d with stride s > 1, not grouped or dilated, on the direct kernels of kernels.h by
 * space-to-depth. With x_pad the zero-padded input (Hp, Wp), output pixel (oy, ox) reads
 * x_pad[s*oy + ky][s*ox + kx]. Writing ky = s*a + py (phase py < P = min(s, k), a < k' =
 * ceil(k/s)) and likewise kx = s*b + px, and
 *   x'[(py*P + px)*IC + c][i][j] = x_pad[c][s*i + py][s*j + px]     (0 past x_pad's edge)
 *   W'[oc][(py*P + px)*IC + c][a][b] = W[oc][c][s*a + py][s*b + px]  (0 where that tap is >= k)
 * the layer is the stride-1 k'xk' convolution out = conv(x', W') of P*P*IC input channels
 * (x' has OH + k' - 1 rows and OW + k' - 1 columns, no padding of its own), which the direct
 * kernels run:
 *   forward          out = conv(x', W')                                   (ks->conv)
 *   backward weight  dW'^T (P*P*IC*k'*k', ld) += x' windows x dy^T         (ks->weight_grad),
 *                    then dW[oc][c][ky][kx] = dW'[oc][(py*P + px)*IC + c][a][b]
 *   backward input   dx' = conv(dy padded by k'-1, W' flipped, in/out swapped); dx[c][y][x] =
 *                    dx'[phase of (y+pad, x+pad)][(y+pad)/s][(x+pad)/s], 0 for pixels no
 *                    output reads (a phase >= P, or past x')
 * For a 3x3 kernel at stride 2 that is 16 multiply-adds per tap pair where the layer has 9 (the
 * zero taps of W'), on kernels several times faster than im2col's; a 1x1 kernel has one phase
 * and no waste. Each thread rearranges and packs the weights once per pass and sums dW'
 * over its samples before mapping it back to dW. Samples are split over threads; parameter
 * gradients are summed per thread and the partials added in thread order (layers.h). The layer leads no fused chain (fusion.h:
 * cn_conv_is_direct is false for it). */
#include "layers/layers.h"
#include "layers/conv2d_paths.h"
#include <string.h>

bool cn_conv2d_strided_direct(const cn_layer *l) {
    return l->kind == CN_LAYER_CONV2D && l->stride > 1 && l->groups == 1 && l->dilation == 1;
}

static int phases(const cn_layer *l) { return l->stride < l->kernel ? l->stride : l->kernel; }
static int sub_kernel(const cn_layer *l) { return (l->kernel + l->stride - 1) / l->stride; }

/* The stride-1 convolution x' -> out. */
static cn_conv_geom forward_geom(const cn_layer *l) {
    int P = phases(l), k = sub_kernel(l);
    return (cn_conv_geom){ .in_c = P * P * l->in.c, .out_c = l->out.c, .k = k, .hp = l->out.h + k - 1,
                           .wp = l->out.w + k - 1, .out_h = l->out.h, .out_w = l->out.w, .wino_m = 2 };
}
/* Its backward-input geometry: dy padded by k'-1 -> the gradient of x'. */
static cn_conv_geom backward_geom(const cn_conv_geom *f) {
    int p = f->k - 1;
    return (cn_conv_geom){ .in_c = f->out_c, .out_c = f->in_c, .k = f->k, .hp = f->out_h + 2 * p,
                           .wp = f->out_w + 2 * p, .out_h = f->hp, .out_w = f->wp, .wino_m = 2 };
}

double cn_conv2d_strided_issued_macs(const cn_layer *l, int pass) {
    cn_conv_geom f = forward_geom(l), bw = backward_geom(&f);
    double taps = (double)f.in_c * f.k * f.k;
    /* ks->conv over whole q-layout rows; ks->weight_grad over every tap x pixel x ld lanes */
    if (pass == 0) return taps * f.out_c * cn_conv_q_stride(&f);
    if (pass == 1) return (double)bw.in_c * bw.k * bw.k * bw.out_c * cn_conv_q_stride(&bw);
    return taps * f.out_h * f.out_w * cn_kernels()->wgrad_ld(f.out_c);
}

/* Per-thread scratch, in this order (each piece a whole number of vectors). */
typedef struct {
    float *w_s2d;       /* W' (OC, P*P*IC, k', k') */
    float *packed;      /* W' packed (forward, or flipped for backward input) */
    float *x_s2d;       /* x' (with slack) */
    float *out_q;       /* forward: out in q layout; backward: the gradient of x', q layout */
    float *dyt;         /* backward: dy^T (OH*OW, ld) */
    float *dwt;         /* backward: dW'^T (P*P*IC*k'*k', ld), summed over the thread's samples */
    float *dy_pad;      /* backward: dy padded by k'-1 (with slack) */
} strided_scratch;

static size_t larger(size_t a, size_t b) { return a > b ? a : b; }

/* Splits base (NULL: just measure) into the pieces above; returns the floats used. */
static size_t carve(const cn_layer *l, float *base, strided_scratch *s) {
    cn_conv_geom f = forward_geom(l), bw = backward_geom(&f);
    size_t ld = (size_t)cn_round_up(f.out_c, CN_VEC_MAX), pixels = (size_t)f.out_h * f.out_w;
    size_t sizes[7] = {
        cn_conv_packed_floats(&f),
        cn_conv_packed_floats(&f),      /* the same count for bw: in and out swapped */
        cn_padded_floats(f.in_c, f.hp, f.wp),
        larger((size_t)f.out_c * cn_conv_q_stride(&f), (size_t)bw.out_c * cn_conv_q_stride(&bw)),
        pixels * ld,
        (size_t)f.in_c * f.k * f.k * ld,
        cn_padded_floats(bw.in_c, bw.hp, bw.wp),
    };
    float **piece[7] = { &s->w_s2d, &s->packed, &s->x_s2d, &s->out_q, &s->dyt, &s->dwt, &s->dy_pad };
    return cn_carve_scratch(base, sizes, piece, 7);
}

size_t cn_conv2d_strided_scratch_floats(const cn_layer *l) {
    strided_scratch s;
    return carve(l, NULL, &s);
}

/* Tap (ky, kx) of input channel c as W'[.][channel][a][b]: its index in one output channel's
 * P*P*IC*k'*k' weights. */
static size_t s2d_tap(const cn_layer *l, int c, int ky, int kx) {
    int s = l->stride, P = phases(l), k = sub_kernel(l);
    int channel = ((ky % s) * P + kx % s) * l->in.c + c;
    return ((size_t)channel * k + ky / s) * k + kx / s;
}

/* w_s2d = W' of the layer's weight (OC, IC, k, k). */
static void rearrange_weights(const cn_layer *l, const float *weight, float *w_s2d) {
    int K = l->kernel, IC = l->in.c;
    size_t per_oc = (size_t)forward_geom(l).in_c * sub_kernel(l) * sub_kernel(l);
    memset(w_s2d, 0, per_oc * l->out.c * sizeof *w_s2d);
    for (int oc = 0; oc < l->out.c; oc++)
        for (int c = 0; c < IC; c++)
            for (int ky = 0; ky < K; ky++)
                for (int kx = 0; kx < K; kx++)
                    w_s2d[oc * per_oc + s2d_tap(l, c, ky, kx)] = weight[(((size_t)oc * IC + c) * K + ky) * K + kx];
}

/* The j with 0 <= s*j + x0 < W and j < n: [*j0, *j1). */
static void column_range(int s, int x0, int W, int n, int *j0, int *j1) {
    *j0 = x0 >= 0 ? 0 : (-x0 + s - 1) / s;
    *j1 = W - x0 > 0 ? (W - x0 + s - 1) / s : 0;
    if (*j1 > n) *j1 = n;
    if (*j0 > *j1) *j0 = *j1;
}

/* x_s2d (P*P*IC, f->hp, f->wp) + zero slack = x' of x (IC, H, W). */
static void space_to_depth(const cn_layer *l, const cn_conv_geom *f, const float *x, float *x_s2d) {
    int s = l->stride, P = phases(l), H = l->in.h, W = l->in.w, IC = l->in.c;
    memset(x_s2d, 0, cn_padded_floats(f->in_c, f->hp, f->wp) * sizeof *x_s2d);
    for (int py = 0; py < P; py++)
        for (int px = 0; px < P; px++) {
            int x0 = px - l->pad, j0, j1;
            column_range(s, x0, W, f->wp, &j0, &j1);
            for (int c = 0; c < IC; c++)
                for (int i = 0; i < f->hp; i++) {
                    int y = s * i + py - l->pad;
                    if (y < 0 || y >= H) continue;
                    const float *src = x + ((size_t)c * H + y) * W + x0;
                    float *dst = x_s2d + (((size_t)(py * P + px) * IC + c) * f->hp + i) * f->wp;
                    for (int j = j0; j < j1; j++) dst[j] = src[s * j];
                }
        }
}

// in (B,IC,H,W), weight (OC,IC,k,k), bias (OC) -> out (B,OC,OH,OW)
void cn_conv2d_forward_strided(const cn_layer_ctx *c) {
    const cn_layer *l = c->layer;
    const cn_kernel_set *ks = cn_kernels();
    const float *weight = c->model->params + l->weight_offset;
    const float *bias = l->bias_count ? c->model->params + l->bias_offset : NULL;
    int OH = l->out.h, OW = l->out.w;
    #pragma omp parallel num_threads(c->threads)
    {
        strided_scratch s;
        carve(l, cn_thread_scratch(c), &s);
        cn_conv_geom f = forward_geom(l);
        rearrange_weights(l, weight, s.w_s2d);
        cn_conv_pack(ks, &f, s.w_s2d, 0, s.packed);
        int qs = cn_conv_q_stride(&f);
        #pragma omp for schedule(static)
        for (int b = 0; b < c->batch; b++) {
            space_to_depth(l, &f, c->in + (size_t)b * cn_shape_size(l->in), s.x_s2d);
            ks->conv(&f, s.packed, s.x_s2d, s.out_q);
            float *out = c->out + (size_t)b * cn_shape_size(l->out);
            for (int oc = 0; oc < l->out.c; oc++) {
                float bv = bias ? bias[oc] : 0.0f;
                for (int i = 0; i < OH; i++) {
                    const float *q = s.out_q + (size_t)oc * qs + (size_t)i * f.wp;
                    float *o = out + ((size_t)oc * OH + i) * OW;
                    if (bias) for (int j = 0; j < OW; j++) o[j] = q[j] + bv;
                    else memcpy(o, q, (size_t)OW * sizeof *o);
                }
            }
        }
    }
}

/* dx (IC, H, W) from the gradient of x' (q layout of bw, row stride bw->wp): each pixel of x
 * from the one place of x' it went to, 0 for pixels x' does not hold (a phase >= P, or past
 * x'), which no output reads. */
static void depth_to_space(const cn_layer *l, const cn_conv_geom *bw, const float *dx_q, float *dx) {
    int s = l->stride, P = phases(l), H = l->in.h, W = l->in.w, IC = l->in.c, qs = cn_conv_q_stride(bw);
    memset(dx, 0, (size_t)IC * H * W * sizeof *dx);
    for (int py = 0; py < P; py++)
        for (int px = 0; px < P; px++) {
            int x0 = px - l->pad, j0, j1;
            column_range(s, x0, W, bw->out_w, &j0, &j1);
            for (int c = 0; c < IC; c++)
                for (int i = 0; i < bw->out_h; i++) {
                    int y = s * i + py - l->pad;
                    if (y < 0 || y >= H) continue;
                    const float *q = dx_q + (size_t)((py * P + px) * IC + c) * qs + (size_t)i * bw->wp;
                    float *o = dx + ((size_t)c * H + y) * W + x0;
                    for (int j = j0; j < j1; j++) o[s * j] = q[j];
                }
        }
}

/* Before a thread's samples: its dW'^T sum zeroed, the flipped W' packed for the input gradient. */
static void backward_prepare(const cn_layer_ctx *c, float *scratch, const void *unused) {
    (void)unused;
    const cn_layer *l = c->layer;
    const cn_kernel_set *ks = cn_kernels();
    strided_scratch s;
    carve(l, scratch, &s);
    cn_conv_geom f = forward_geom(l), bw = backward_geom(&f);
    memset(s.dwt, 0, (size_t)f.in_c * f.k * f.k * ks->wgrad_ld(l->out.c) * sizeof(float));
    if (!c->grad_in) return;
    rearrange_weights(l, c->model->params + l->weight_offset, s.w_s2d);
    cn_conv_pack(ks, &bw, s.w_s2d, 1, s.packed);
}

/* Sample b's backward: dW'^T into the thread's sum, db into its partial gradients, dx when wanted. */
static void backward_sample(const cn_layer_ctx *c, int b, float *partial, float *scratch, const void *unused) {
    (void)unused;
    const cn_layer *l = c->layer;
    const cn_kernel_set *ks = cn_kernels();
    int OC = l->out.c, OH = l->out.h, OW = l->out.w, pixels = OH * OW, ld = ks->wgrad_ld(OC);
    strided_scratch s;
    carve(l, scratch, &s);
    cn_conv_geom f = forward_geom(l), bw = backward_geom(&f);
    const float *x = c->in + (size_t)b * cn_shape_size(l->in), *dy = c->grad_out + (size_t)b * cn_shape_size(l->out);
    /* dW'^T += x' windows x dy^T (lanes OC..ld-1 of dyt zero) */
    memset(s.dyt, 0, (size_t)pixels * ld * sizeof(float));
    cn_transpose(dy, OC, pixels, pixels, s.dyt, ld);
    space_to_depth(l, &f, x, s.x_s2d);
    ks->weight_grad(&f, s.x_s2d, s.dyt, ld, s.dwt);
    if (l->bias_count)
        for (int oc = 0; oc < OC; oc++) {
            const float *g = dy + (size_t)oc * pixels;
            float sum = 0.0f;
            for (int p = 0; p < pixels; p++) sum += g[p];
            partial[l->bias_offset + oc] += sum;
        }
    if (!c->grad_in) return;
    /* the gradient of x', then of the pixels of x it was gathered from */
    size_t pad_floats = cn_padded_floats(bw.in_c, bw.hp, bw.wp), plane = (size_t)bw.in_c * bw.hp * bw.wp;
    cn_pad_copy(dy, OC, OH, OW, f.k - 1, s.dy_pad, bw.hp, bw.wp, 0);
    memset(s.dy_pad + plane, 0, (pad_floats - plane) * sizeof(float));
    ks->conv(&bw, s.packed, s.dy_pad, s.out_q);
    depth_to_space(l, &bw, s.out_q, c->grad_in + (size_t)b * cn_shape_size(l->in));
}

/* After a thread's samples: its dW'^T sum into dW of its partial gradients (W' taps of W only). */
static void backward_finish(const cn_layer_ctx *c, float *partial, float *scratch, const void *unused) {
    (void)unused;
    const cn_layer *l = c->layer;
    int OC = l->out.c, IC = l->in.c, K = l->kernel, ld = cn_kernels()->wgrad_ld(OC);
    strided_scratch s;
    carve(l, scratch, &s);
    float *dw = partial + l->weight_offset;
    for (int ci = 0; ci < IC; ci++)
        for (int ky = 0; ky < K; ky++)
            for (int kx = 0; kx < K; kx++) {
                const float *src = s.dwt + s2d_tap(l, ci, ky, kx) * ld;
                for (int oc = 0; oc < OC; oc++) dw[(((size_t)oc * IC + ci) * K + ky) * K + kx] += src[oc];
            }
}

void cn_conv2d_backward_strided(const cn_layer_ctx *c) {
    const cn_sample_backward pass = { backward_prepare, backward_sample, backward_finish };
    cn_per_sample_backward_with(c, &pass, NULL);
}
