/* conv2d: square kernel, stride, zero padding, optional bias.
 *
 * Stride 1 (every preset) runs the direct kernels of kernels.h on a zero-padded
 * copy of each sample (the input itself when there is no padding):
 *   forward          out = conv(x_pad, W)          pixel-vectorised, or channel-
 *                                                  vectorised for small maps
 *   backward input   dx  = conv(dy_pad, W flipped, in/out swapped), dy padded by k-1-pad
 *   backward weight  dW^T (taps, OC) += x_pad windows x dy^T    channel-vectorised
 * 3x3 layers use Winograd F(2,3) or F(4,3) along rows where the kernel set has it
 * (kernels.h; 2/3 or 1/2 of the multiply-adds; the tile chosen per pass by method_of and
 * wgrad_geom): the forward and backward-input passes in the same two forms, the weight
 * gradient where it pays (wgrad_winograd). Its input transform pads
 * the image itself, so those passes need no padded copy.
 * Samples are split over threads in contiguous ranges; each thread sums its
 * weight gradients in its own scratch and the partials are added in thread
 * order, so results are bit-identical run to run for a given thread count.
 * Fusions with the following layers (fusion.h): a relu (and 2x2 max-pool) is
 * applied in the output pass and undone at the start of the backward pass; a
 * following batch norm gets its statistics from the output pass and hands its
 * input gradient over; in eval mode a batch norm right after the conv (then a relu and a
 * pool) or after its relu is applied in the output pass too.
 * Mixed precision (--precision bf16, cn_step.bf16_conv; training only) runs this path too,
 * fused chains and all, with the products' operands rounded to bf16 and summed in float32:
 *   direct kernels    x (padded copy), W packed, and for the weight gradient x and dy^T:
 *                     the operands themselves, as PyTorch's CPU autocast rounds them;
 *   Winograd (F(2,3) only: method_of)  the transformed tiles instead: V = B^T x (wino_input),
 *                     U = G g (packed weights), and for the weight gradient V and Z = A dy;
 *                     the transforms themselves run in float32 on float32 values, so this is
 *                     a mixed-precision variant of autocast's rounding, not the same numbers
 *                     (tests/test_bf16.c: within twice autocast's rounding error of float32).
 * The Winograd forward and input-gradient passes (channel and pixel forms) and the direct
 * and Winograd weight gradients run on bf16 pairs with vdpbf16ps (kernels/bf16.h:
 * cn_bf16_wino_channels, cn_bf16_wino_conv, cn_bf16_weight_grad, cn_bf16_wino_weight_grad); the
 * direct forward and input-gradient kernels (convolutions other than 3x3) are the float32 ones
 * on bf16-rounded values (exact products, float32 sums: the same arithmetic, without
 * vdpbf16ps's doubled rate).
 * The bias and its gradient, the epilogues and batch-norm statistics stay float32.
 * Depthwise 3x3 convolutions run conv2d_depthwise.c; at stride 1, other grouped ones without
 * dilation conv2d_grouped.c (these kernels, group by group) and dilated ones without groups
 * conv2d_dilated.c (these kernels, phase by phase), strided ones without groups or dilation
 * conv2d_strided.c (these kernels, after space-to-depth); the rest (strided depthwise other
 * than 3x3, grouped and dilated at once) conv2d_im2col.c. */
#include "layers/layers.h"
#include "layers/conv2d_paths.h"
#include "kernels/kernels.h"
#include "kernels/bf16.h"
#include <string.h>

static bool use_direct(const cn_layer *l) { return cn_conv_is_direct(l); }

/* Direct-path geometries: forward (in -> out) and backward input (dy -> dx). */
static cn_conv_geom forward_geom(const cn_layer *l) {
    return (cn_conv_geom){ .in_c = l->in.c, .out_c = l->out.c, .k = l->kernel,
                           .hp = l->in.h + 2 * l->pad, .wp = l->in.w + 2 * l->pad,
                           .out_h = l->out.h, .out_w = l->out.w, .wino_m = 2 };
}
static int backward_pad(const cn_layer *l) { return l->kernel - 1 - l->pad; }
static cn_conv_geom backward_geom(const cn_layer *l) {
    int p = backward_pad(l);
    return (cn_conv_geom){ .in_c = l->out.c, .out_c = l->in.c, .k = l->kernel,
                           .hp = l->out.h + 2 * p, .wp = l->out.w + 2 * p,
                           .out_h = l->in.h, .out_w = l->in.w, .wino_m = 2 };
}
/* g with Winograd tiles of m outputs. */
static cn_conv_geom with_wino_m(cn_conv_geom g, int m) { g.wino_m = m; return g; }

/* Carves consecutive 64-byte aligned pieces out of a thread's scratch. */
typedef struct { float *base; size_t used; } carver;
static float *carve(carver *c, size_t floats) {
    float *p = c->base ? c->base + c->used : NULL;
    c->used += (floats + 15) & ~(size_t)15;
    return p;
}

/* Per-thread scratch of the direct path, in carve order. */
typedef struct {
    float *x_pad;      /* forward geometry, padded input sample */
    float *packed;     /* packed weights (forward, or flipped for backward input), either layout */
    float *dwt;        /* backward: dW^T partial (taps, ldw), summed over the thread's samples */
    float *dbias;      /* backward: bias gradient partial (OC) */
    float *out_q;      /* forward: output sample, q layout or compact (OC, OH*OW) */
    float *out_t;      /* forward: output sample (OH*OW, ld) of the channel-vectorised kernel */
    float *dyt;        /* backward: dy^T (OH*OW, ldw) */
    float *dy_pad;     /* backward: padded dy sample */
    float *dx_q;       /* backward: q-layout dx sample, or dx^T (H*W, ld) */
    float *dy_bn;      /* backward: dy sample rebuilt from a relu + pool chain or a batch norm's handover */
    float *wino_v;     /* Winograd-transformed input (forward, backward weight or backward input) */
    float *wino_z;     /* backward: Winograd-transformed dy^T (pairs, 4, ld) */
    float *steps;      /* forward: a fused chain's per-channel steps for channel tiles (3, ld) */
    float *bf16_x;     /* backward, bf16: x_pad or the Winograd-transformed input paired for
                          cn_bf16_weight_grad or cn_bf16_wino_weight_grad (kernels/bf16.h) */
} direct_scratch;

static size_t direct_ld(const cn_layer *l) { return (size_t)cn_round_up(l->out.c, CN_VEC_MAX); }

static size_t max_size(size_t a, size_t b) { return a > b ? a : b; }

/* Floats of packed weights in any layout (pixel tiles, or (taps, ld) for channel tiles; direct or
 * Winograd with either tile). */
static size_t packed_floats(const cn_conv_geom *g) {
    int ld = cn_round_up(g->out_c, CN_VEC_MAX);
    size_t taps = (size_t)g->in_c * g->k * g->k, size = max_size(taps * ld, cn_conv_packed_floats(g));
    for (int m = 2; g->k == 3 && m <= 4; m += 2) {
        cn_conv_geom w = with_wino_m(*g, m);
        size = max_size(size, max_size(cn_wino_packed_floats(&w), cn_wino_packed_channels_floats(&w, ld)));
    }
    return size;
}

/* Floats of one output sample in any layout. */
static size_t output_floats(const cn_conv_geom *g) {
    size_t q = (size_t)g->out_c * cn_conv_q_stride(g), t = (size_t)g->out_h * g->out_w * cn_round_up(g->out_c, CN_VEC_MAX);
    for (int m = 2; g->k == 3 && m <= 4; m += 2) {
        cn_conv_geom w = with_wino_m(*g, m);
        q = max_size(q, (size_t)g->out_c * cn_wino_q_stride(&w));
    }
    return max_size(q, t);
}

/* Floats of the Winograd-transformed input of g with either tile (0 when g is not 3x3). */
static size_t wino_input_floats(const cn_conv_geom *g) {
    if (g->k != 3) return 0;
    cn_conv_geom w2 = with_wino_m(*g, 2), w4 = with_wino_m(*g, 4);
    return max_size(cn_wino_input_floats(&w2), cn_wino_input_floats(&w4));
}

/* Floats of the Winograd-transformed dy^T of g with either tile (0 when g is not 3x3). */
static size_t wino_grad_floats(const cn_conv_geom *g, int ld) {
    if (g->k != 3) return 0;
    cn_conv_geom w2 = with_wino_m(*g, 2), w4 = with_wino_m(*g, 4);
    return max_size(cn_wino_grad_floats(&w2, ld), cn_wino_grad_floats(&w4, ld));
}

/* Splits base (NULL: just measure) into the pieces above; *total (if not NULL) gets the floats used. */
static direct_scratch carve_direct(const cn_layer *l, float *base, size_t *total) {
    cn_conv_geom f = forward_geom(l), bw = backward_geom(l), f2 = with_wino_m(f, 2);
    size_t taps = (size_t)l->in.c * l->kernel * l->kernel, ld = direct_ld(l);
    size_t packed = packed_floats(&f) > packed_floats(&bw) ? packed_floats(&f) : packed_floats(&bw);
    carver c = { base, 0 };
    direct_scratch s;
    s.x_pad = carve(&c, cn_padded_floats(f.in_c, f.hp, f.wp));
    s.packed = carve(&c, packed);
    s.dwt = carve(&c, taps * ld);
    s.dbias = carve(&c, ld);
    s.wino_v = carve(&c, max_size(wino_input_floats(&f), wino_input_floats(&bw)));
    /* forward and backward pieces below are never live at the same time */
    carver after = c;
    s.out_q = carve(&c, output_floats(&f));
    s.out_t = carve(&c, output_floats(&f));
    s.steps = carve(&c, 3 * ld);
    carver fwd_end = c;
    c = after;
    s.dyt = carve(&c, (size_t)l->out.h * l->out.w * ld);
    s.dy_pad = carve(&c, cn_padded_floats(bw.in_c, bw.hp, bw.wp));
    s.dx_q = carve(&c, output_floats(&bw));
    s.dy_bn = carve(&c, (size_t)cn_shape_size(l->out));
    s.wino_z = carve(&c, wino_grad_floats(&f, (int)ld));
    s.bf16_x = carve(&c, max_size(cn_bf16_wgrad_x_words(&f), l->kernel == 3 ? cn_bf16_wino_wgrad_words(&f2) : 0));
    if (total) *total = fwd_end.used > c.used ? fwd_end.used : c.used;
    return s;
}

static size_t direct_scratch_floats(const cn_layer *l) {
    size_t total;
    carve_direct(l, NULL, &total);
    return total;
}

/* How one geometry runs: Winograd for 3x3 where the kernel set has it, else direct;
 * the channel-vectorised form when it fills clearly more vector lanes (small maps
 * with many channels; the margin pays for its transposition), else the pixel form,
 * whose q-layout output has row stride out_stride and channel stride q_stride; the
 * channel form's output rows have ld floats. method_of also picks the Winograd tile. */
typedef struct {
    bool winograd, channels;
    int out_stride, q_stride, ld;
} conv_method;

#define CHANNELS_MARGIN 1.1     /* what the channel form's transposition costs, relative */

static conv_method method_with_tile(const cn_kernel_set *ks, const cn_conv_geom *g) {
    conv_method m = { .winograd = ks->wino_conv && g->k == 3 };
    m.ld = m.winograd ? cn_round_up(g->out_c, ks->vec) : ks->wgrad_ld(g->out_c);
    double pixel_lanes = m.winograd ? cn_wino_pixel_lanes(g) : cn_conv_pixel_lanes(ks, g);
    m.channels = (double)g->out_c / m.ld > CHANNELS_MARGIN * pixel_lanes;
    m.out_stride = m.winograd ? cn_wino_out_stride(g) : g->wp;
    m.q_stride = m.winograd ? cn_wino_q_stride(g) : cn_conv_q_stride(g);
    return m;
}

/* Vector multiply-adds of a Winograd method m on g, up to a common factor: a per tile, tiles
 * rounded up to whole vectors in the pixel form; the channel form's with its margin. */
static double wino_work(const conv_method *m, const cn_conv_geom *g) {
    int tiles = g->out_h * cn_wino_tiles(g);
    return (double)cn_wino_alpha(g) * (m->channels ? CHANNELS_MARGIN * tiles * m->ld / CN_VEC_MAX
                                                    : (double)cn_round_up(tiles, CN_VEC_MAX) / CN_VEC_MAX * g->out_c);
}

/* F(4,3) where it may run and its estimated work is at most this fraction of F(2,3)'s (its
 * tiles hold fewer accumulators per load; measured: seed004's 20 -> 28 conv forward, 0.94 by
 * this estimate, ran 7% slower with F(4,3)). */
#define WINO4_MAX_WORK 0.9

/* Mixed precision (bf16, cn_step.bf16_conv) runs Winograd F(2,3) only: its transformed tiles
 * are rounded to bf16, and F(4,3)'s output transform (weights up to 8) amplifies that rounding.
 * Measured on random 16 -> 32 and 32 -> 32 3x3 layers (norm of the difference to float32
 * over the norm of float32's result): autocast (operands rounded, direct sums) 2.1e-3, bf16
 * F(2,3) 2.9e-3, bf16 F(4,3) 7e-3. */

/* The method for g; g's wino_m is set to the chosen Winograd tile (call it outside parallel
 * regions: g is usually shared). */
static conv_method method_of(const cn_kernel_set *ks, cn_conv_geom *g, bool bf16) {
    cn_conv_geom g2 = with_wino_m(*g, 2), g4 = with_wino_m(*g, 4);
    conv_method m = method_with_tile(ks, &g2);
    *g = g2;
    if (m.winograd && cn_wino4_fits(&g4) && !bf16) {
        conv_method m4 = method_with_tile(ks, &g4);
        if (wino_work(&m4, &g4) <= WINO4_MAX_WORK * wino_work(&m, &g2)) {
            *g = g4;
            return m4;
        }
    }
    return m;
}

/* Weights (w as cn_conv_pack reads it) packed for method m; with bf16 (mixed precision,
 * cn_step.bf16_conv) the packed values rounded to bf16: the weights themselves (direct
 * methods) or their Winograd transform U = G g (Winograd methods), paired along input channels
 * as cn_bf16_wino_channels and cn_bf16_wino_conv read them (kernels/bf16.h). */
static void pack_weights(const cn_kernel_set *ks, const cn_conv_geom *g, const conv_method *m, const float *w,
                         int transposed, bool bf16, float *packed) {
    size_t n;
    if (m->winograd && m->channels) {
        cn_wino_pack_channels(g, w, transposed, m->ld, packed);
        if (bf16) { cn_bf16_pair_wino_channels(g, m->ld, packed); return; }
        n = cn_wino_packed_channels_floats(g, m->ld);
    } else if (m->winograd) {
        cn_wino_pack(ks, g, w, transposed, packed);
        if (bf16) { cn_bf16_pair_wino_pixels(g, cn_wino_mr(ks, g), packed); return; }
        n = cn_wino_packed_floats(g);
    } else if (m->channels) {
        cn_conv_pack_channels(g, w, transposed, m->ld, packed);
        n = (size_t)g->in_c * g->k * g->k * m->ld;
    } else {
        cn_conv_pack(ks, g, w, transposed, packed);
        n = cn_conv_packed_floats(g);
    }
    if (bf16) cn_bf16_round_floats(packed, n);
}

/* v = the Winograd input transform of src (ks->wino_input), rounded to bf16 when bf16, and
 * then (paired: for the bf16 forward kernels) paired as cn_bf16_wino_channels and
 * cn_bf16_wino_conv read it. */
static void transform_input(const cn_kernel_set *ks, const cn_conv_geom *g, const float *src, int pad, bool bf16,
                            bool paired, float *v) {
    ks->wino_input(g, src, pad, v);
    if (bf16 && paired) cn_bf16_pair_wino_input(g, v);
    else if (bf16) cn_bf16_round_floats(v, cn_wino_input_floats(g));
}

/* The Winograd channel form (kernels.h: wino_channels), on bf16 pairs with vdpbf16ps when bf16. */
static void wino_channels(const cn_kernel_set *ks, const cn_conv_geom *g, const float *ut, const float *v, float *out_t,
                          int ld, const cn_channel_epilogue *ep, bool bf16) {
    if (bf16) cn_bf16_wino_channels(g, (const uint32_t *)ut, (const uint32_t *)v, out_t, ld, ep);
    else ks->wino_channels(g, ut, v, out_t, ld, ep);
}

/* The Winograd pixel form (kernels.h: wino_conv), on bf16 pairs with vdpbf16ps when bf16. */
static void wino_pixels(const cn_kernel_set *ks, const cn_conv_geom *g, const float *u, const float *v, float *out,
                        int ostride, const float *bias, bool bf16) {
    if (bf16) cn_bf16_wino_conv(g, cn_wino_mr(ks, g), (const uint32_t *)u, (const uint32_t *)v, out, ostride, bias);
    else ks->wino_conv(g, u, v, out, ostride, bias);
}

/* The convolution by method m of x_pad, the padded image (direct methods), or (Winograd) of
 * x_pad = the image the transform pads by pad itself: out (OC, m->q_stride) in q layout, or
 * (channels) out (out_h*out_w, m->ld); wino_v: scratch for the transformed input. */
static void run_conv(const cn_kernel_set *ks, const cn_conv_geom *g, const conv_method *m, const float *packed,
                     const float *x_pad, int pad, bool bf16, float *wino_v, float *out) {
    if (m->winograd) {
        transform_input(ks, g, x_pad, pad, bf16, true, wino_v);
        if (m->channels) wino_channels(ks, g, packed, wino_v, out, m->ld, NULL, bf16);
        else wino_pixels(ks, g, packed, wino_v, out, m->q_stride, NULL, bf16);
    } else {
        if (m->channels) ks->conv_channels(g, packed, x_pad, out, m->ld);
        else ks->conv(g, packed, x_pad, out);
    }
}

/* Where a conv-led chain's output goes (see fusion.h). */
typedef struct {
    cn_chain chain;
    float *out;             /* (B, OC, out_plane): the chain's last output */
    int32_t *argmax;        /* (B, OC, out_plane) when pooling in training, else NULL */
    double *bn_stats;       /* (B, OC, 2) statistics for a following batch norm, or NULL (fusion.h) */
    const float *bn_affine; /* eval, batch norm in the chain: its scale (OC) and shift (OC), else NULL;
                               applied after the relu (chain.bn) or before it (chain.bn_first) */
    int out_plane;
} conv_target;

static conv_target conv_target_of(const cn_layer_ctx *c) {
    const cn_layer *l = c->layer;
    conv_target t = { .chain = c->step->chain, .out = c->out, .argmax = c->argmax };
    t.out_plane = t.chain.pool ? (l->out.h / 2) * (l->out.w / 2) : l->out.h * l->out.w;
    t.bn_stats = c->step->bn_stats_out ? c->peer->plane_stats + 2 * (size_t)c->first * l->out.c : NULL;
    t.bn_affine = NULL;
    if (t.chain.bn || t.chain.bn_first) {
        /* once per pass, into the batch norm's saved state (free in eval mode: no backward follows) */
        const cn_layer *bn = c->peer->layer;
        float *affine = c->peer->saved;
        for (int ch = 0; ch < bn->in.c; ch++) cn_batchnorm2d_eval_affine(c->model, bn, ch, &affine[ch], &affine[bn->in.c + ch]);
        t.bn_affine = affine;
    }
    return t;
}

/* The statistics of each output plane of sample b for a following batch norm (if any). */
static void output_stats(const cn_layer_ctx *c, const conv_target *t, int b) {
    int OC = c->layer->out.c;
    for (int oc = 0; t->bn_stats && oc < OC; oc++) {
        size_t o = ((size_t)b * OC + oc) * t->out_plane;
        cn_bn_plane_stat(t->out + o, t->out_plane, t->bn_stats + 2 * ((size_t)b * OC + oc));
    }
}

/* The chain's point-wise steps without pool (bias, eval-mode batch norm before or after the
 * relu, relu) as vectors of ld floats in buf (3 * ld: shift, then the batch norm's scale and
 * shift; lanes OC..ld-1 zero), for the channel tiles to apply before storing: the same float
 * operations as conv_output's epilogue (a missing bias adds nothing: x * 1 + 0 and x give the
 * same result after the relu, and a chain without relu adds no bias there either). */
static cn_channel_epilogue channel_steps(const conv_target *t, const float *bias, int OC, int ld, float *buf) {
    float *shift = buf, *bn_scale = buf + ld, *bn_shift = buf + 2 * ld;
    for (int oc = 0; oc < ld; oc++) {
        bool real = oc < OC;
        shift[oc] = real && bias ? bias[oc] : 0.0f;
        bn_scale[oc] = real && t->bn_affine ? t->bn_affine[oc] : 0.0f;
        bn_shift[oc] = real && t->bn_affine ? t->bn_affine[OC + oc] : 0.0f;
    }
    cn_channel_epilogue ep = { .shift = bias ? shift : NULL, .relu = t->chain.relu };
    if (t->bn_affine && t->chain.bn_first) { ep.mid_scale = bn_scale; ep.mid_shift = bn_shift; }
    else if (t->bn_affine) { ep.post_scale = bn_scale; ep.post_shift = bn_shift; }
    return ep;
}

/* out_q (OC, q layout, or compact: wp = OW) of sample b -> the chain's output: bias, then
 * (eval) the batch norm when it comes first, relu, (eval) the batch norm after the relu and
 * pool when fused; and the statistics of each output plane for a following batch norm
 * (training). out_q may be the output itself (compact, no chain). */
static void conv_output(const cn_layer_ctx *c, const conv_target *t, const float *out_q, const float *bias,
                        int wp, int q_stride, int b) {
    const cn_layer *l = c->layer;
    const cn_kernel_set *ks = cn_kernels();
    int OC = l->out.c;
    /* the bias as x * 1 + bias (= x + bias), or x * 1 + 0 right before a relu (the same after
     * it); the batch norm's map as the unfused layer computes it: x * scale + shift */
    bool bn_first = t->chain.bn_first;
    cn_epilogue e = { .h = l->out.h, .w = l->out.w, .x_stride = wp, .affine = bias || (t->chain.length > 1 && !bn_first),
                      .scale = 1.0f, .mid_affine = bn_first, .relu = t->chain.relu, .pool = t->chain.pool,
                      .post_affine = t->chain.bn };
    for (int oc = 0; oc < OC; oc++) {
        size_t o = ((size_t)b * OC + oc) * t->out_plane;
        e.shift = bias ? bias[oc] : 0.0f;
        if (t->bn_affine) {
            float *scale = bn_first ? &e.mid_scale : &e.post_scale, *shift = bn_first ? &e.mid_shift : &e.post_shift;
            *scale = t->bn_affine[oc];
            *shift = t->bn_affine[OC + oc];
        }
        const float *src = out_q + (size_t)oc * q_stride;
        /* in place with nothing to apply (a bias-free conv leading no chain): nothing to do */
        if (src != t->out + o || e.affine || e.mid_affine || e.relu || e.pool || e.post_affine)
            ks->epilogue(&e, src, t->out + o, t->argmax ? t->argmax + o : NULL);
    }
    output_stats(c, t, b);
}

/* Sample b of in (batch samples) as the padded image the forward kernels read: the
 * input itself when there is no padding, except where the pixel tiles would
 * over-read past the end of the batch or (bf16) the values are rounded to bf16;
 * otherwise copied into x_pad. */
static const float *forward_input(const cn_layer *l, const cn_conv_geom *g, const conv_method *method,
                                  const float *in, int batch, int b, bool bf16, float *x_pad) {
    size_t in_size = (size_t)cn_shape_size(l->in);
    const float *x = in + (size_t)b * in_size;
    if (!bf16 && !l->pad && (method->channels || (size_t)(batch - 1 - b) * in_size >= (size_t)g->wp + CN_VEC_MAX))
        return x;
    cn_pad_copy(x, l->in.c, l->in.h, l->in.w, l->pad, x_pad, g->hp, g->wp, 1);
    if (bf16) cn_bf16_round_floats(x_pad, cn_padded_floats(g->in_c, g->hp, g->wp));
    return x_pad;
}

/* The weight gradient runs Winograd (3x3, where the kernel set has it; 2/3 of the
 * multiply-adds) for more than one vector of output channels and at least 8 input channels,
 * unless its 16-float vectors pad the output channels much more than the direct kernel's
 * (break-even at 2/3 of the direct kernel's useful lanes; with a margin). Measured, 1 thread:
 * seed004's 20 -> 28 conv 5.9 -> 5.5 ms per batch, seed003's 16 -> 32 16.1 -> 14.6 ms; with
 * few input channels its transformed dy (4 vectors per pair) is re-read for few multiply-adds
 * (seed004's 1 -> 20 conv: 2.1 -> 4.0 ms), and with 16 or fewer output channels the direct
 * kernel was as fast or faster (seed001's 8 -> 16 and 32 -> 10 convs; with F(4,3) too: its
 * two 8 -> 16 convs' backward, 2 threads, 2.18 -> 2.30 and 0.63 -> 0.71 ms per batch). */
static bool wgrad_winograd(const cn_kernel_set *ks, const cn_layer *l) {
    return ks->wino_weight_grad && l->kernel == 3 && l->in.c >= 8 && l->out.c > 16 &&
           ks->wgrad_ld(l->out.c) >= 0.75 * cn_round_up(l->out.c, ks->vec);
}
/* The forward geometry with the weight gradient's Winograd tile: F(4,3) where it may run and
 * needs at most WINO4_MAX_WORK of F(2,3)'s multiply-adds (a per tile, every tile one
 * broadcast per kernel row). */
static cn_conv_geom wgrad_geom(const cn_layer *l, bool bf16) {
    cn_conv_geom f = forward_geom(l), f4 = with_wino_m(f, 4);
    bool wino4 = !bf16 && cn_wino4_fits(&f) && cn_wino_alpha(&f4) * cn_wino_tiles(&f4) <=
                                          WINO4_MAX_WORK * cn_wino_alpha(&f) * cn_wino_tiles(&f);
    return wino4 ? f4 : f;
}
/* Row length of dy^T and dW^T in the backward pass. */
static int backward_ld(const cn_kernel_set *ks, const cn_layer *l) {
    return wgrad_winograd(ks, l) ? cn_round_up(l->out.c, ks->vec) : ks->wgrad_ld(l->out.c);
}

// in (B,IC,H,W), weight (OC,IC,k,k), bias (OC) -> out (B,OC,OH,OW)
static void forward_direct(const cn_layer_ctx *c) {
    const cn_layer *l = c->layer;
    const cn_model *m = c->model;
    const cn_kernel_set *ks = cn_kernels();
    const float *weight = m->params + l->weight_offset;
    const float *bias = l->bias_count ? m->params + l->bias_offset : NULL;
    cn_conv_geom g = forward_geom(l);
    conv_target t = conv_target_of(c);
    int pixels = l->out.h * l->out.w;
    bool bf16 = c->step->bf16_conv;
    conv_method method = method_of(ks, &g, bf16);
    int ld = method.ld;
    #pragma omp parallel num_threads(c->threads)
    {
        direct_scratch s = carve_direct(l, cn_thread_scratch(c), NULL);
        pack_weights(ks, &g, &method, weight, 0, bf16, s.packed);
        memset(s.x_pad, 0, cn_padded_floats(g.in_c, g.hp, g.wp) * sizeof(float));
        cn_channel_epilogue steps = channel_steps(&t, bias, l->out.c, ld, s.steps);
        #pragma omp for schedule(static)
        for (int b = 0; b < c->batch; b++) {
            /* Winograd pads in its input transform */
            const float *x = method.winograd ? c->in + (size_t)b * cn_shape_size(l->in)
                                             : forward_input(l, &g, &method, c->in, c->batch, b, bf16, s.x_pad);
            int pad = method.winograd ? l->pad : 0;
            if (method.channels && method.winograd && !t.chain.pool) {
                /* the chain's steps applied in the tiles, transposed straight into the output */
                float *dst = t.out + (size_t)b * l->out.c * pixels;
                transform_input(ks, &g, x, pad, bf16, true, s.wino_v);
                wino_channels(ks, &g, s.packed, s.wino_v, s.out_t, ld, &steps, bf16);
                cn_transpose(s.out_t, pixels, l->out.c, ld, dst, pixels);
                output_stats(c, &t, b);
            } else if (method.channels) {
                // out_t (OH*OW, ld) -> out_q (OC, OH*OW)
                run_conv(ks, &g, &method, s.packed, x, pad, bf16, s.wino_v, s.out_t);
                if (t.chain.length == 1) {     /* straight into the output, bias added there */
                    float *dst = t.out + (size_t)b * l->out.c * pixels;
                    cn_transpose_bias(s.out_t, pixels, l->out.c, ld, bias, dst, pixels);
                    conv_output(c, &t, dst, NULL, l->out.w, pixels, b);
                } else {
                    cn_transpose(s.out_t, pixels, l->out.c, ld, s.out_q, pixels);
                    conv_output(c, &t, s.out_q, bias, l->out.w, pixels, b);
                }
            } else if (method.winograd && t.chain.length == 1 && method.out_stride == l->out.w) {
                /* compact rows, nothing fused: straight into the output, bias added there */
                float *dst = t.out + (size_t)b * l->out.c * pixels;
                transform_input(ks, &g, x, pad, bf16, true, s.wino_v);
                wino_pixels(ks, &g, s.packed, s.wino_v, dst, pixels, bias, bf16);
                conv_output(c, &t, dst, NULL, l->out.w, pixels, b);
            } else {
                run_conv(ks, &g, &method, s.packed, x, pad, bf16, s.wino_v, s.out_q);
                conv_output(c, &t, s.out_q, bias, method.out_stride, method.q_stride, b);
            }
        }
    }
}

/* dL/d(conv output) of a fused chain for sample b, rebuilt into dy (OC, OH*OW). */
static void rebuild_output_grad(const cn_layer_ctx *c, const conv_target *t, int b, float *dy) {
    const cn_layer *l = c->layer;
    int OC = l->out.c, pixels = l->out.h * l->out.w;
    const float *g = c->grad_out;
    for (int oc = 0; oc < OC; oc++) {
        size_t o = ((size_t)b * OC + oc) * t->out_plane;
        if (t->argmax) cn_pool2x2_grad(g + o, t->out + o, t->argmax + o, l->out.h, l->out.w, dy + (size_t)oc * pixels);
        else cn_chain_grad(g + o, t->out + o, NULL, t->out_plane, pixels, dy + (size_t)oc * pixels);
    }
}

/* dL/d(conv output) of sample b, (C, plane), relu-masked, from what the batch norm bn after
 * this conv + relu chain handed over (fusion.h: cn_bn_grad_in_conv_relu). */
static void bn_relu_input_grad(const cn_layer_ctx *bn_ctx, int b, float *dy) {
    const cn_layer *bn = bn_ctx->layer;
    int C = bn->in.c, plane = bn->in.h * bn->in.w;
    size_t o = (size_t)b * C * plane;
    const float *x = bn_ctx->in + o, *g = bn_ctx->grad_out + o, *saved = bn_ctx->saved;
    for (int ch = 0; ch < C; ch++) {
        size_t p = (size_t)ch * plane;
        cn_slices_bn_grad_input(x + p, g + p, dy + p, 1, 0, plane, saved[ch], saved[C + ch], saved[2 * C + ch],
                                saved[3 * C + ch], saved[4 * C + ch], 1);
    }
}

static void prefetch_to_l2(const void *p, size_t bytes) {
    for (size_t i = 0; i < bytes; i += 64) __builtin_prefetch((const char *)p + i, 0, 2);
}

/* dL/d(conv output) of sample b: grad_out; for a relu-only chain, from its own output slot
 * or computed into scratch from the coefficients of the batch norm after the relu; rebuilt
 * here into scratch for a relu + pool chain; or computed into scratch from what a following
 * batch norm handed over (fusion.h). */
static const float *conv_output_grad(const cn_layer_ctx *c, const conv_target *t, direct_scratch *s, int b) {
    size_t size = (size_t)cn_shape_size(c->layer->out);
    const cn_layer_ctx *bn = c->peer;   /* the batch norm after the chain, if any */
    if (t->chain.length == 2) {
        if (!(bn && bn->step->grad_in_conv_relu)) return c->own_out + (size_t)b * size;
        bn_relu_input_grad(bn, b, s->dy_bn);
        return s->dy_bn;
    }
    if (t->chain.length == 3) { rebuild_output_grad(c, t, b, s->dy_bn); return s->dy_bn; }
    if (!(bn && bn->step->grad_in_conv)) return c->grad_out + (size_t)b * size;
    cn_bn_handoff h = cn_bn_handoff_of(bn);
    const float *x = h.x + (size_t)b * size;     /* the conv's output of sample b */
    for (int ch = 0; ch < h.channels; ch++) {
        size_t o = ((size_t)b * h.channels + ch) * h.pooled;
        if (b + 1 < c->batch) {
            /* sample b+1's planes, read back from memory, into L2 while this sample is worked on */
            size_t next = o + (size_t)h.channels * h.pooled;
            prefetch_to_l2(x + size + (size_t)ch * h.plane, (size_t)h.plane * sizeof(float));
            prefetch_to_l2(h.x_win + next, (size_t)h.pooled * sizeof(float));
            prefetch_to_l2(h.grad + next, (size_t)h.pooled * sizeof(float));
            prefetch_to_l2(h.pooled_out + next, (size_t)h.pooled * sizeof(float));
            prefetch_to_l2(h.argmax + next, (size_t)h.pooled * sizeof(int32_t));
        }
        cn_pooled_bn_grad_input(x + (size_t)ch * h.plane, h.x_win + o, h.grad + o, h.pooled_out + o, NULL, h.argmax + o,
                                1, 0, 0, h.plane, h.pooled, h.mean[ch], h.invstd[ch], h.k[ch], h.mean_dy[ch],
                                h.mean_dy_xhat[ch], s->dy_bn + (size_t)ch * h.plane);
    }
    return s->dy_bn;
}

/* One sample's backward on the direct path: accumulates dW^T and the bias
 * gradient into the thread's partials, writes dx when wanted (by method on bw, the
 * backward-input geometry with its tile: backward_direct chooses them once). */
static void backward_sample(const cn_layer_ctx *c, const conv_target *t, const cn_kernel_set *ks,
                            const cn_conv_geom *bw, const conv_method *method, direct_scratch *s, int b) {
    const cn_layer *l = c->layer;
    cn_conv_geom f = forward_geom(l);
    int in_size = cn_shape_size(l->in), pixels = l->out.h * l->out.w;
    int ld = backward_ld(ks, l);
    bool bf16 = c->step->bf16_conv;
    const float *dy = conv_output_grad(c, t, s, b), *x = c->in + (size_t)b * in_size;
    cn_transpose(dy, l->out.c, pixels, pixels, s->dyt, ld);    /* lanes OC..ld-1 stay 0 (backward_direct) */
    if (l->bias_count) cn_sum_rows(s->dyt, pixels, ld, s->dbias);   /* float32 dy, also in bf16 */
    if (wgrad_winograd(ks, l)) {
        /* bf16: the transformed input V and transformed dy Z paired along tiles for
         * cn_bf16_wino_weight_grad */
        cn_conv_geom w = wgrad_geom(l, bf16);
        ks->wino_input(&w, x, l->pad, s->wino_v);
        cn_wino_grad_transform(&w, s->dyt, ld, s->wino_z);
        if (bf16) {
            cn_bf16_pair_wino_wgrad_input(&w, s->wino_v, (uint32_t *)s->bf16_x);
            cn_bf16_pair_wino_wgrad_dy(&w, ld, s->wino_z);
            cn_bf16_wino_weight_grad(&w, (const uint32_t *)s->bf16_x, (const uint32_t *)s->wino_z, ld, s->dwt);
        } else {
            ks->wino_weight_grad(&w, s->wino_v, s->wino_z, ld, s->dwt);
        }
    } else {
        /* without padding the input is its own padded image (weight_grad reads only inside it);
         * bf16: x and dy paired along pixels for cn_bf16_weight_grad (kernels/bf16.h) */
        if (l->pad) {
            cn_pad_copy(x, l->in.c, l->in.h, l->in.w, l->pad, s->x_pad, f.hp, f.wp, 1);
            x = s->x_pad;
        }
        if (bf16) {
            cn_bf16_pair_wgrad_input(&f, x, (uint32_t *)s->bf16_x);
            cn_bf16_pair_wgrad_dy(&f, ld, s->dyt);
            cn_bf16_weight_grad(&f, (const uint32_t *)s->bf16_x, (const uint32_t *)s->dyt, ld, s->dwt);
        } else {
            ks->weight_grad(&f, x, s->dyt, ld, s->dwt);
        }
    }
    if (c->grad_in) {
        /* dx, or (fusion.h) the relu-masked gradient for a conv + relu before this layer */
        bool to_conv_relu = c->step->grad_to_conv_relu;
        float *dx = (to_conv_relu ? c->relu_grad_dst : c->grad_in) + (size_t)b * in_size;
        const float *dy_pad = dy;   /* Winograd pads in its input transform */
        if (!method->winograd) {
            cn_pad_copy(dy, l->out.c, l->out.h, l->out.w, backward_pad(l), s->dy_pad, bw->hp, bw->wp, 1);
            if (bf16) cn_bf16_round_floats(s->dy_pad, cn_padded_floats(bw->in_c, bw->hp, bw->wp));
            dy_pad = s->dy_pad;
        }
        int plane = in_size / l->in.c;
        if (method->winograd && !method->channels && method->out_stride == l->in.w) {
            /* compact rows: straight into dx */
            transform_input(ks, bw, dy, backward_pad(l), bf16, true, s->wino_v);
            wino_pixels(ks, bw, s->packed, s->wino_v, dx, plane, NULL, bf16);
        } else {
            run_conv(ks, bw, method, s->packed, dy_pad, method->winograd ? backward_pad(l) : 0, bf16, s->wino_v, s->dx_q);
            if (method->channels) cn_transpose(s->dx_q, plane, l->in.c, method->ld, dx, plane);
            else cn_conv_compact(s->dx_q, l->in.c, l->in.h, l->in.w, method->out_stride, method->q_stride, NULL, dx);
        }
        if (to_conv_relu) cn_relu_backward_kernel(c->in + (size_t)b * in_size, dx, dx, (size_t)in_size);
    }
}

static void backward_direct(const cn_layer_ctx *c) {
    const cn_layer *l = c->layer;
    const cn_kernel_set *ks = cn_kernels();
    const float *weight = c->model->params + l->weight_offset;
    float *dweight = c->grads + l->weight_offset, *dbias = c->grads + l->bias_offset;
    cn_conv_geom f = forward_geom(l), bw = backward_geom(l);
    int taps = l->in.c * l->kernel * l->kernel, ld = backward_ld(ks, l);
    conv_target target = conv_target_of(c);
    conv_method dx_method = method_of(ks, &bw, c->step->bf16_conv);
    #pragma omp parallel num_threads(c->threads)
    {
        int T = omp_get_num_threads(), t = omp_get_thread_num(), b0, b1;
        direct_scratch s = carve_direct(l, cn_thread_scratch(c), NULL);
        memset(s.dwt, 0, (size_t)taps * ld * sizeof(float));
        memset(s.dbias, 0, (size_t)ld * sizeof(float));
        memset(s.dyt, 0, (size_t)l->out.h * l->out.w * ld * sizeof(float));   /* its padding lanes, once */
        memset(s.x_pad, 0, cn_padded_floats(f.in_c, f.hp, f.wp) * sizeof(float));
        if (c->grad_in) {
            memset(s.dy_pad, 0, cn_padded_floats(bw.in_c, bw.hp, bw.wp) * sizeof(float));
            pack_weights(ks, &bw, &dx_method, weight, 1, c->step->bf16_conv, s.packed);
        }
        cn_thread_range(c->batch, t, T, &b0, &b1);
        if (c->step->rebuild_first) {
            /* a relu-only chain's output gradient shares its buffer with the conv's input
             * gradient (gradient buffers alternate between values): the chain's dy is rebuilt
             * for all samples into the conv's own output slot (unused by a fused forward)
             * before any dx is written, unless the layer after the relu did it */
            size_t size = (size_t)cn_shape_size(l->out);
            for (int b = b0; b < b1; b++) rebuild_output_grad(c, &target, b, c->own_out + (size_t)b * size);
            #pragma omp barrier
        }
        for (int b = b0; b < b1; b++) backward_sample(c, &target, ks, &bw, &dx_method, &s, b);
        #pragma omp barrier
        /* dW (OC, taps) = sum over threads, in thread order, of their dW^T partials */
        int k0, k1;
        cn_thread_range(taps, t, T, &k0, &k1);
        for (int u = 0; u < T; u++) {
            const float *part = carve_direct(l, cn_scratch_of(c, u), NULL).dwt;
            for (int oc = 0; oc < l->out.c; oc++)
                for (int k = k0; k < k1; k++) {
                    float v = part[(size_t)k * ld + oc];
                    float *d = dweight + (size_t)oc * taps + k;
                    *d = u ? *d + v : v;
                }
        }
        if (l->bias_count && t == 0)
            for (int u = 0; u < T; u++) {
                const float *part = carve_direct(l, cn_scratch_of(c, u), NULL).dbias;
                for (int oc = 0; oc < l->out.c; oc++) dbias[oc] = u ? dbias[oc] + part[oc] : part[oc];
            }
    }
}

/* ---- the way a convolution runs -------------------------------------------
 * One choice, from the step's switches and the layer's shape, serves the forward pass, the
 * backward pass and the scratch size. */
typedef struct {
    void (*forward)(const cn_layer_ctx *c);
    void (*backward)(const cn_layer_ctx *c);
    size_t (*scratch_floats)(const cn_layer *l);
} conv_path;

static const conv_path bf16_path = {cn_conv2d_forward_bf16, cn_conv2d_backward_bf16, cn_conv2d_bf16_scratch_floats};
static const conv_path im2col_path = {cn_conv2d_forward_im2col, cn_conv2d_backward_im2col, cn_conv2d_im2col_scratch_floats};
static const conv_path direct_path = {forward_direct, backward_direct, direct_scratch_floats};
static const conv_path depthwise_path = {cn_conv2d_forward_depthwise, cn_conv2d_backward_depthwise,
                                         cn_conv2d_depthwise_scratch_floats};
static const conv_path grouped_path = {cn_conv2d_forward_grouped, cn_conv2d_backward_grouped, cn_conv2d_grouped_scratch_floats};
static const conv_path dilated_path = {cn_conv2d_forward_dilated, cn_conv2d_backward_dilated, cn_conv2d_dilated_scratch_floats};
static const conv_path depthwise_channels_path = {cn_conv2d_forward_depthwise_channels, cn_conv2d_backward_depthwise_channels,
                                                  cn_conv2d_depthwise_channels_scratch_floats};
static const conv_path strided_path = {cn_conv2d_forward_strided, cn_conv2d_backward_strided, cn_conv2d_strided_scratch_floats};

static const conv_path *path_of(const cn_layer *l, const cn_step *step) {
    if (step->bf16_conv) return use_direct(l) ? &direct_path : &bf16_path;
    if (step->reference_conv) return &im2col_path;
    if (use_direct(l)) return &direct_path;
    if (cn_conv2d_depthwise_channels(l)) return &depthwise_channels_path;
    if (cn_conv2d_depthwise_fast(l)) return &depthwise_path;
    if (cn_conv2d_grouped_direct(l)) return &grouped_path;
    if (cn_conv2d_dilated_direct(l)) return &dilated_path;
    if (cn_conv2d_strided_direct(l)) return &strided_path;
    return &im2col_path;
}

void cn_conv2d_forward(const cn_layer_ctx *c) { path_of(c->layer, c->step)->forward(c); }
void cn_conv2d_backward(const cn_layer_ctx *c) { path_of(c->layer, c->step)->backward(c); }

size_t cn_layer_scratch_floats(const cn_layer *l, const cn_step *step) {
    if (step->bf16_linear) return cn_linear_bf16_scratch_floats(l);
    if (l->kind == CN_LAYER_BATCHNORM2D && step->chain.dropout) return (size_t)l->in.h * l->in.w;   /* batchnorm2d.c */
    if (l->kind != CN_LAYER_CONV2D) return 0;
    return path_of(l, step)->scratch_floats(l);
}

/* Multiply-adds the kernels issue for one image of geometry g by method m, as their loops
 * run: the pixel form over whole q-layout rows (padding columns, rows rounded to vectors),
 * Winograd's 1-D F(m,3) along rows alpha per tile and kernel row, the channel form over
 * output channels rounded up to its row length. */
static double issued_macs(const conv_method *m, const cn_conv_geom *g) {
    double in_c = g->in_c, k = g->k;
    if (m->winograd && m->channels) return in_c * k * (double)g->out_h * cn_wino_tiles(g) * cn_wino_alpha(g) * m->ld;
    if (m->winograd) return in_c * k * g->out_c * (double)m->q_stride / g->wino_m * cn_wino_alpha(g);
    if (m->channels) return in_c * k * k * (double)g->out_h * g->out_w * m->ld;
    return in_c * k * k * g->out_c * (double)m->q_stride;
}

double cn_conv2d_issued_macs(const cn_layer *l, int pass) {
    double direct = (double)l->macs;
    if (!use_direct(l)) {
        if (cn_conv2d_depthwise_fast(l)) return direct;   /* depthwise, strided, im2col: their MACs */
        if (cn_conv2d_grouped_direct(l)) return cn_conv2d_grouped_issued_macs(l, pass);
        if (cn_conv2d_dilated_direct(l)) return cn_conv2d_dilated_issued_macs(l, pass);
        if (cn_conv2d_strided_direct(l)) return cn_conv2d_strided_issued_macs(l, pass);
        return direct;
    }
    const cn_kernel_set *ks = cn_kernels();
    if (pass == 0) {
        cn_conv_geom f = forward_geom(l);
        conv_method m = method_of(ks, &f, false);
        return issued_macs(&m, &f);
    }
    if (pass == 1) {
        cn_conv_geom bw = backward_geom(l);
        conv_method m = method_of(ks, &bw, false);
        return issued_macs(&m, &bw);
    }
    if (!wgrad_winograd(ks, l)) return direct;
    cn_conv_geom w = wgrad_geom(l, false);
    return (double)l->in.c * l->kernel * cn_wino_alpha(&w) * l->out.h * cn_wino_tiles(&w) * backward_ld(ks, l);
}
