/* Hot loops over plain float arrays. Row-major; shapes in comments.
 * Kernels know nothing of layers.
 *
 * Two families:
 *  - simple loops (gemm.c, im2col.c, eltwise.c), compiled for several
 *    instruction sets by CN_MULTIVERSION;
 *  - the direct convolution kernels (conv_*.c), register-blocked by hand for
 *    AVX-512, AVX2+FMA and a generic SSE2 fallback; one of these is chosen
 *    at run time (cn_kernels()). */
#ifndef CN_KERNELS_H
#define CN_KERNELS_H
#include <stddef.h>
#include <stdint.h>

#if defined(__x86_64__) && !defined(CN_NO_MULTIVERSION) && !defined(__clang__)
#define CN_MULTIVERSION __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define CN_MULTIVERSION
#endif

/* C (M,N) = A (M,K) @ B (K,N), or C += ... when accumulate. */
void cn_gemm_nn(int M, int N, int K, const float *A, const float *B, float *C, int accumulate);
/* C (M,N) += A (M,K) @ B(N,K)^T. */
void cn_gemm_nt(int M, int N, int K, const float *A, const float *B, float *C);
/* C (M,N) = A(K,M)^T @ B (K,N). */
void cn_gemm_tn(int M, int N, int K, const float *A, const float *B, float *C);
/* The same with leading dimensions (row strides) lda, ldb, ldc. */
void cn_gemm_tn_ld(int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C, int ldc);

/* in (C,H,W) -> col (C*k*k, OH*OW), zero padding; tap (ky, kx) of output (oy, ox) reads
 * input (oy*stride - pad + ky*dil, ox*stride - pad + kx*dil). */
void cn_im2col(const float *in, int C, int H, int W, int k, int stride, int pad, int dil, int OH, int OW, float *col);
/* col (C*k*k, OH*OW) -> in (C,H,W), summing overlaps; `in` is overwritten. */
void cn_col2im(const float *col, int C, int H, int W, int k, int stride, int pad, int dil, int OH, int OW, float *in);

/* ---- Depthwise 3x3 vectorised over channels, for small maps ----
 * Images are (rows, cols, ld): a pixel's channels contiguous, ld = cn_round_up(C, 16), lanes
 * C..ld-1 zero. x_t/dx_t are the zero-padded input (hp, wp, ld); output pixel (oy, ox) reads
 * tap (ky, kx) at (oy*stride + ky*dil, ox*stride + kx*dil); w_t, dw_t are (9, ld). The kernels
 * are cn_kernel_set's dwc_forward, dwc_weight_grad and dwc_input_grad (below). */
typedef struct {
    int ld;
    int hp, wp;
    int out_h, out_w;
    int stride, dil;
} cn_dwc_geom;
/* Point-wise steps of dwc_forward, one value per channel (vectors of ld floats): v += bias
 * (bias may be NULL), v = v * scale + shift (scale NULL: none), v = v > 0 ? v : 0 (relu);
 * the float operations of cn_dw_epilogue. */
typedef struct {
    const float *bias, *scale, *shift;
    int relu;
} cn_dwc_epilogue;
/* Batch-norm statistics of out_t (pixels, ld)'s channels 0..C-1 as cn_bn_plane_stat takes them
 * of a plane (dw_channels.c): st[2*ch] = the sum, st[2*ch + 1] = the sum of squared deviations
 * from the channel's mean, in double, each summed in pixel order (the same on every ISA). sum
 * (2 * ld doubles) is scratch. */
void cn_dwc_plane_stats(const float *out_t, int pixels, int C, int ld, double *sum, double *st);

/* ---- Element-wise and per-channel loops (eltwise.c) ---- */

// y (n) = x > 0 ? x : 0
void cn_relu_forward_kernel(const float *x, float *y, size_t n);
// y (n) = a + b > 0 ? a + b : 0 (an add fused with the relu after it)
void cn_add_relu_kernel(const float *a, const float *b, float *y, size_t n);
// One term of an add's sum, in PyTorch's order: t = x * affine[0] + affine[1] (a batch norm's
// map; affine NULL: t = x), y (n) = accumulate ? y + t : t, then y = y > 0 ? y : 0 when relu
void cn_add_term_kernel(const float *x, const float *affine, float *y, size_t n, int accumulate, int relu);
// dx (n) = x > 0 ? dy : 0
void cn_relu_backward_kernel(const float *x, const float *dy, float *dx, size_t n);
// relu6 and leaky_relu (layers/activations.c): y = min(max(x, 0), 6) (NaN to 0, as relu),
// dx = 0 < x < 6 ? dy : 0; y = x > 0 ? x : x * slope, dx = x > 0 ? dy : dy * slope
void cn_relu6_forward_kernel(const float *x, float *y, size_t n);
void cn_relu6_backward_kernel(const float *x, const float *dy, float *dx, size_t n);
void cn_leaky_relu_forward_kernel(const float *x, float *y, size_t n, float slope);
void cn_leaky_relu_backward_kernel(const float *x, const float *dy, float *dx, size_t n, float slope);
/* x (planes,H,W) -> y (planes,H/2,W/2): 2x2 max-pool, stride 2, no padding; the first
 * maximum wins and NaN propagates; argmax (planes,H/2,W/2) gets the index of the
 * winner in its input plane (argmax may be NULL). W <= CN_EPILOGUE_MAX_WIDTH. */
void cn_maxpool2x2_forward(const float *x, int planes, int H, int W, float *y, int32_t *argmax);

/* Point-wise steps applied to one plane (the tail of a fused layer chain), each when enabled,
 * each step's multiply then add (no fused multiply-add):
 * v = x * scale + shift (affine), v = v * mid_scale + mid_shift (mid_affine: an eval-mode
 * batch norm between a conv's bias and the relu), v = v > 0 ? v : 0 (relu), v = v *
 * post_scale + post_shift (post_affine: an eval-mode batch norm after the relu), then an
 * optional 2x2 stride-2 max-pool as cn_maxpool2x2_forward. */
#define CN_EPILOGUE_MAX_WIDTH 1024
typedef struct {
    int h, w, x_stride;         /* input plane (h, w), row stride of x */
    int affine;
    float scale, shift;
    int mid_affine;
    float mid_scale, mid_shift;
    int relu, pool;
    int post_affine;
    float post_scale, post_shift;
} cn_epilogue;
/* x (h rows of stride x_stride) -> y (h, w), or (h/2, w/2) with argmax when pooling (argmax
 * may be NULL). Call it through cn_kernels()->epilogue; this is the portable version. */
void cn_epilogue_plane_portable(const cn_epilogue *e, const float *x, float *y, int32_t *argmax);
/* Gradient at the input of relu (+ pool) from the chain's output y and its gradient g:
 * with argmax (disjoint windows: a 2x2 stride-2 pool): dy (n_in) = 0,
 * dy[argmax[o]] += y[o] > 0 ? g[o] : 0 (o < n_out); without: dy (n_in) = y > 0 ? g : 0. */
void cn_chain_grad(const float *g, const float *y, const int32_t *argmax, int n_out, int n_in, float *dy);
/* The same for a 2x2 stride-2 max-pool (relu before it when y is given, else none; argmax
 * as cn_maxpool2x2_forward writes it): g, y, argmax (h/2, w/2) -> dx (h, w), every input
 * pixel written once (0 outside the winners, and in an odd last row or column); dx must not
 * overlap g, y or argmax. */
void cn_pool2x2_grad(const float *g, const float *y, const int32_t *argmax, int h, int w, float *dx);

/* Batch norm over the slices x[b*stride .. b*stride + plane), b < planes
 * (one channel of every sample): sums in double. */
double cn_slices_sum(const float *x, int planes, size_t stride, int plane);
double cn_slices_sq_dev(const float *x, int planes, size_t stride, int plane, double mean);
// y = x * scale + shift
void cn_slices_affine(const float *x, float *y, int planes, size_t stride, int plane, float scale, float shift);
// sum dy and sum dy * (x - mean) * invstd
void cn_slices_bn_grad_sums(const float *x, const float *dy, int planes, size_t stride, int plane, float mean,
                            float invstd, double *sum_dy, double *sum_dy_xhat);
// dx = k * (dy - mean_dy - (x - mean) * invstd * mean_dy_xhat); with relu_mask, 0 where x <= 0
void cn_slices_bn_grad_input(const float *x, const float *dy, float *dx, int planes, size_t stride, int plane,
                             float mean, float invstd, float k, float mean_dy, float mean_dy_xhat, int relu_mask);

/* Batch norm (+ relu) backward over one plane from the chain's output gradient g, for a conv
 * that forms its own output gradient (fusion.h: cn_bn_grad_in_dw_conv): with dy = y > 0 ? g : 0
 * (y: the relu's output) or dy = g (y NULL), the sums and dx of cn_slices_bn_grad_sums and
 * cn_slices_bn_grad_input (no mask), the same float operations, dy never written. */
void cn_bn_relu_grad_sums(const float *x, const float *g, const float *y, int plane, float mean, float invstd,
                          double *sum_dy, double *sum_dy_xhat);
void cn_bn_relu_grad_input(const float *x, const float *g, const float *y, float *dx, int plane, float mean,
                           float invstd, float k, float mean_dy, float mean_dy_xhat);

/* Batch norm followed by relu and a 2x2 max-pool (a fused chain), backward: the
 * gradient at the BN output is dy[argmax[o]] = 0 + (y[o] > 0 ? g[o] : 0) at the pool
 * winners and 0 elsewhere (y, g, argmax: pooled output, its gradient, winners;
 * x_win: the BN input at each winner). With `factor` (a dropout between the batch
 * norm and the pool, fusion.h: chain.dropout), y is not read and dy[argmax[o]] =
 * (0 + g[o]) * factor[o], factor[o] the dropout's keep * scale at the winner: the
 * max-pool's backward, then the dropout's. Over `planes` planes: x planes (n_in
 * floats) at x_stride, pooled planes (n_out) at out_stride. */
void cn_pooled_bn_grad_sums(const float *x_win, const float *g, const float *y, const float *factor, int planes,
                            size_t out_stride, int n_out, float mean, float invstd, double *sum_dy, double *sum_dy_xhat);
void cn_pooled_bn_grad_input(const float *x, const float *x_win, const float *g, const float *y, const float *factor,
                             const int32_t *argmax, int planes, size_t x_stride, size_t out_stride, int n_in, int n_out,
                             float mean, float invstd, float k, float mean_dy, float mean_dy_xhat, float *dx);
/* Inverted dropout of activations first .. first+n-1 of one sample: keep[i] = 1 when a
 * counter-based hash of (first + i) ^ key(stream) is >= threshold (P(drop) = threshold / 2^32),
 * y = v * keep * scale with v = x, or v = x * affine[0] + affine[1] (a batch norm applied
 * in the same pass) when affine is not NULL. No sequential generator, so the loop
 * vectorises; the same bits on every kernel set. */
void cn_dropout_forward_kernel(const float *x, float *y, uint8_t *keep, int n, uint64_t stream, uint32_t first,
                               uint32_t threshold, float scale, const float *affine);
// dx (n) = dy * keep * scale
void cn_dropout_backward_kernel(const float *dy, const uint8_t *keep, float *dx, int n, float scale);
// out (n) = (float)keep[i] * scale, the factor cn_dropout_backward_kernel multiplies by
void cn_keep_factors(const uint8_t *keep, int n, float scale, float *out);
// out (n) = x[index[i]]
void cn_gather(const float *x, const int32_t *index, int n, float *out);
/* out (planes) = mean of each plane of x (planes, plane), each summed in float in pixel order. */
void cn_plane_means(const float *x, int planes, int plane, float *out);

/* ---- Direct stride-1 convolution on "flat padded" images -------------------
 *
 * An image (C,H,W) is copied into a zero-bordered plane (C,Hp,Wp) with
 * Hp = H + 2*pad, Wp = W + 2*pad, followed by some zero slack. In
 * this flat layout the input of output pixel (oy,ox) under tap (ky,kx) of
 * channel ic sits at  ic*Hp*Wp + ky*Wp + kx + q  with q = oy*Wp + ox, so every
 * tap is one contiguous shifted row: the convolution is a GEMM whose B operand
 * is read straight from the padded image, no im2col. Outputs are produced in
 * the same row stride Wp ("q layout": (OC, OH, Wp), the columns ox >= OW are
 * garbage) and compacted afterwards. */

#define CN_VEC_MAX 16           /* widest vector (floats) of any kernel set */

/* Point-wise steps a channel-vectorised kernel applies to its outputs before storing them,
 * with one value per output channel (vectors of ld floats): v = v + shift (shift may be
 * NULL), v = v * mid_scale + mid_shift (mid_scale NULL: none), v = v > 0 ? v : 0 (relu),
 * v = v * post_scale + post_shift (post_scale NULL: none); multiply, then add.
 * The same float operations as cn_epilogue without pool (its scale is 1 there). */
typedef struct {
    const float *shift;
    const float *mid_scale, *mid_shift;
    int relu;
    const float *post_scale, *post_shift;
} cn_channel_epilogue;

/* Geometry of one direct convolution: in (IC,Hp,Wp) padded -> out (OC,OH,Wp) q layout. */
typedef struct {
    int in_c, out_c, k;         /* channels in and out, square kernel size */
    int hp, wp;                 /* padded input plane */
    int out_h, out_w;           /* valid outputs: out_h = hp - k + 1, out_w = wp - k + 1 */
    int wino_m;                 /* Winograd (below): outputs per row tile, 2 or 4 */
} cn_conv_geom;

static inline int cn_round_up(int n, int m) { return (n + m - 1) / m * m; }
/* Floats of a padded image (C,Hp,Wp) plus the zero slack that the last
 * tiles over-read (at most a vector and a kernel row; k <= wp). */
static inline size_t cn_padded_floats(int c, int hp, int wp) { return (size_t)c * hp * wp + wp + CN_VEC_MAX; }
/* Floats of one output channel in q layout, rounded up to whole vectors. */
static inline int cn_conv_q_stride(const cn_conv_geom *g) { return cn_round_up(g->out_h * g->wp, CN_VEC_MAX); }

/* ---- Depthwise 3x3 convolution, one channel plane at a time ---------------------
 * out (out_h, out_w): out[oy][ox] = sum over ky, kx of w[ky*3 + kx] * p[oy*stride + ky*dil]
 * [ox*stride + kx*dil] over the zero-padded plane p (hp, wp), then the point-wise steps of
 * cn_dw_epilogue. cn_dw_prepare lays the padded plane out for the kernels: stride 1 as hp
 * rows of ld floats; stride 2 split into its even columns (hp rows of ld) followed by its
 * odd columns (hp rows of ld), so every tap of a row of outputs is one contiguous run. */
typedef struct {
    int hp, wp;                 /* padded plane */
    int out_h, out_w;
    int stride, dil;            /* stride 1 or 2; dilation >= 1 */
    int ld;                     /* row stride of the prepared plane: cn_dw_ld(wp) */
    int pad;                    /* dw3x3_dgrad_s2 only: the forward convolution's padding */
} cn_dw_geom;
static inline int cn_dw_ld(int wp) { return cn_round_up(wp, CN_VEC_MAX) + CN_VEC_MAX; }
/* Floats of a prepared plane (both halves, and the slack the last row's tiles over-read). */
static inline size_t cn_dw_prepared_floats(const cn_dw_geom *g) { return 2 * (size_t)g->hp * g->ld + 2 * CN_VEC_MAX; }
/* Point-wise steps after the taps' sum v: v += bias; v = v * scale + shift (affine: an
 * eval-mode batch norm after the conv); v = max(v, 0) (relu, as x > 0 ? x : 0). */
typedef struct {
    float bias;
    int affine;
    float scale, shift;
    int relu;
} cn_dw_epilogue;
/* buf (cn_dw_prepared_floats) = the plane src (sh, sw) placed at (pad + y*up, pad + x*up) in
 * a zero (g->hp, g->wp) plane, laid out for g->stride (above). up = 2 spreads a stride-2
 * output gradient for a stride-1 pass over the spread plane (dw3x3_dgrad_s2 does without). */
void cn_dw_prepare(const cn_dw_geom *g, const float *src, int sh, int sw, int up, int pad, float *buf);
/* The same on a buffer that cn_dw_prepare laid out for the same g, sh, sw, up and pad (a
 * thread's next plane of a layer): only the source values are written, over the previous
 * plane's; the zeros around them are still in place. */
void cn_dw_prepare_again(const cn_dw_geom *g, const float *src, int sh, int sw, int up, int pad, float *buf);
/* Input gradient of a stride-2 depthwise 3x3 by parity classes (kernels.h: dw3x3_dgrad_s2),
 * without spreading dy with zeros: input pixel (iy, ix) of the forward (pad p, dilation d) takes
 *   dx[iy][ix] = sum over taps (ky, kx) with iy + p - ky*d and ix + p - kx*d both even of
 *                w[ky*3 + kx] * dy[(iy + p - ky*d) / 2][(ix + p - kx*d) / 2]   (0 outside dy),
 * a row of even columns ix and a row of odd ones each being a contiguous run over dy's row,
 * interleaved as they are stored (about 1/4 of the spread plane's multiply-adds).
 * dy (oh, ow) is prepared by cn_dw_prepare(g, dy, oh, ow, 1, cn_dw_s2_border(d), buf) with
 * g = cn_dw_s2_grad_geom(...): a stride-1 plane with a zero border wide enough for every tap. */
static inline int cn_dw_s2_border(int dil) { return dil + 1; }
static inline cn_dw_geom cn_dw_s2_grad_geom(int in_h, int in_w, int oh, int ow, int pad, int dil) {
    int b = cn_dw_s2_border(dil);
    /* stride 1: dy's prepared layout (the kernel knows the forward's stride was 2) */
    return (cn_dw_geom){ .hp = oh + 2 * b, .wp = ow + 2 * b, .out_h = in_h, .out_w = in_w, .stride = 1,
                         .dil = dil, .ld = cn_dw_ld(ow + 2 * b), .pad = pad };
}

typedef struct {
    const char *name;           /* "avx512", "avx2", "generic" */
    int vec;                    /* floats per vector */
    int mr_max;                 /* output channels per register tile (sets the packed weight layout) */
    /* out_q (OC, cn_conv_q_stride) = conv of x_pad (IC,Hp,Wp)+slack with packed weights. */
    void (*conv)(const cn_conv_geom *g, const float *packed, const float *x_pad, float *out_q);
    /* Row length (>= OC, <= cn_round_up(OC, CN_VEC_MAX)) of dyt and dwt below. */
    int (*wgrad_ld)(int out_c);
    /* dwt (IC*k*k, ld) += sum over the valid output pixels p of
     * x_pad windows (tap, p) * dyt (p, ld); ld = wgrad_ld(OC), dyt's lanes
     * OC..ld-1 are zero. dyt rows are the out_h*out_w valid pixels in order. */
    void (*weight_grad)(const cn_conv_geom *g, const float *x_pad, const float *dyt, int ld, float *dwt);
    /* The same convolution as conv, vectorised over output channels instead of pixels (for small
     * maps): out_t (out_h*out_w, ld) = conv of x_pad with wt (IC*k*k, ld) from cn_conv_pack_channels;
     * ld = wgrad_ld(OC); lanes OC..ld-1 of out_t are zero. */
    void (*conv_channels)(const cn_conv_geom *g, const float *wt, const float *x_pad, float *out_t, int ld);
    /* cn_epilogue_plane_portable or a faster equivalent with the same results */
    void (*epilogue)(const cn_epilogue *e, const float *x, float *y, int32_t *argmax);
    /* Winograd F(m,3) along rows for k = 3, m = g->wino_m (below); NULL where the set has none.
     * wino_input: v = cn_wino_input_floats(g) floats from src (IC, Hp - 2*pad, Wp - 2*pad),
     *   which the transform pads with zeros itself (no slack needed); m = 4 needs
     *   cn_wino_tiles(g) <= CN_WINO4_MAX_TILES.
     * wino_conv: out (OC, ostride) in q layout of row stride cn_wino_out_stride(g) from v and u
     *   packed by cn_wino_pack (pixel tiles of up to cn_wino_mr output channels), plus bias[oc]
     *   (bias may be NULL); writes the out_h rows of each channel and nothing past them, so
     *   ostride may be anything >= out_h * cn_wino_out_stride(g) (cn_wino_q_stride(g) or,
     *   when m divides out_w, the compact plane).
     * wino_channels: out_t (out_h*out_w, ld) from v and ut packed by cn_wino_pack_channels,
     *   ld = cn_round_up(OC, vec), then the point-wise steps of ep (NULL: none); lanes
     *   OC..ld-1 of out_t are zero when those of ep's vectors are. */
    int wino_mr, wino_mr4;      /* output channels per pixel tile of F(2,3), of F(4,3) */
    void (*wino_input)(const cn_conv_geom *g, const float *src, int pad, float *v);
    void (*wino_conv)(const cn_conv_geom *g, const float *u, const float *v, float *out, int ostride, const float *bias);
    void (*wino_channels)(const cn_conv_geom *g, const float *ut, const float *v, float *out_t, int ld,
                          const cn_channel_epilogue *ep);
    /* wino_weight_grad: dwt (IC*9, ld) += the weight gradient (as weight_grad) from v, the
     *   transformed forward input, and z = cn_wino_grad_transform of dy^T; ld = cn_round_up(OC, vec). */
    void (*wino_weight_grad)(const cn_conv_geom *g, const float *v, const float *z, int ld, float *dwt);
    /* Depthwise 3x3 (above): dw3x3: out (out_h, out_w) from the prepared plane p and the 9 weights w;
     * dw3x3_wgrad: dw (9) += sum over outputs of dy (out_h, out_w) * the tap's input. */
    void (*dw3x3)(const cn_dw_geom *g, const float *p, const float *w, const cn_dw_epilogue *ep, float *out);
    void (*dw3x3_wgrad)(const cn_dw_geom *g, const float *p, const float *dy, float *dw);
    /* dw3x3_dgrad_s2: dx (out_h, out_w) = the stride-2 input gradient (above, cn_dw_s2_grad_geom)
     * from the prepared dy p and the forward's 9 weights w (not flipped). */
    void (*dw3x3_dgrad_s2)(const cn_dw_geom *g, const float *p, const float *w, float *dx);
    /* Depthwise 3x3 vectorised over channels (cn_dwc_geom above):
     * dwc_forward: out_t (out_h*out_w, ld) = sum over the 9 taps of w_t[tap] * x_t[the tap's
     *   input pixel], then the point-wise steps of ep (NULL: none);
     * dwc_weight_grad: dw_t (9, ld) += sum over output pixels of dy_t[pixel] * x_t[the tap's input pixel];
     * dwc_input_grad: dx_t (hp, wp, ld) += w_t[tap] * dy_t[pixel] at each output pixel's tap inputs. */
    void (*dwc_forward)(const cn_dwc_geom *g, const float *x_t, const float *w_t, const cn_dwc_epilogue *ep,
                        float *out_t);
    void (*dwc_weight_grad)(const cn_dwc_geom *g, const float *x_t, const float *dy_t, float *dw_t);
    void (*dwc_input_grad)(const cn_dwc_geom *g, const float *dy_t, const float *w_t, float *dx_t);
} cn_kernel_set;

/* The best kernel set this CPU supports (chosen once). */
const cn_kernel_set *cn_kernels(void);
/* Forces a kernel set by name ("avx512", "avx2", "generic") for tests and
 * benchmarks; returns 0, or -1 if unknown or unsupported by this CPU.
 * NULL restores the automatic choice. Not thread-safe: call between passes. */
int cn_kernels_select(const char *name);

/* Output-channel block b of nblocks = ceil(OC / mr_max) near-equal blocks: [*oc0, *oc0 + *mr). */
static inline void cn_conv_block(int OC, int mr_max, int b, int *oc0, int *mr) {
    int nb = (OC + mr_max - 1) / mr_max, base = OC / nb, extra = OC % nb;
    *oc0 = b * base + (b < extra ? b : extra);
    *mr = base + (b < extra);
}
/* Floats of packed weights for g: OC*IC*k*k (any kernel set). */
static inline size_t cn_conv_packed_floats(const cn_conv_geom *g) { return (size_t)g->out_c * g->in_c * g->k * g->k; }
/* Packs weights for ks->conv. w is (OC,IC,k,k) when !transposed; for the
 * backward-input pass (transposed) w is the forward layer's (IC,OC,k,k) weight
 * (its in/out channels swapped relative to g) and every kernel is flipped. */
void cn_conv_pack(const cn_kernel_set *ks, const cn_conv_geom *g, const float *w, int transposed, float *packed);

/* wt (IC*k*k, ld) for conv_channels: wt[tap][oc] as cn_conv_pack's weights, lanes OC..ld-1 zero. */
void cn_conv_pack_channels(const cn_conv_geom *g, const float *w, int transposed, int ld, float *wt);
/* Estimated useful fraction of the vector lanes of ks->conv for g. */
double cn_conv_pixel_lanes(const cn_kernel_set *ks, const cn_conv_geom *g);

/* ---- Winograd F(m,3) along rows (3x3, stride 1), m = 2 or 4 -------------------
 * Each row tile of m outputs (ox .. ox+m-1) of one kernel row (g0, g1, g2) over the
 * inputs d = x[ox .. ox+m+1] costs a = m + 2 multiplies instead of 3m:
 *   V = B^T d (a values)     input transform
 *   U = G g (a values)       weight transform
 *   M = sum over input channels and kernel rows of U * V (a GEMMs)
 *   out = A^T M (m values)   output transform
 * F(2,3): V = (d0 - d2, d1 + d2, d2 - d1, d1 - d3),
 *         U = (g0, (g0 + g1 + g2) / 2, (g0 - g1 + g2) / 2, g2),
 *         out = (M0 + M1 + M2, M1 - M2 - M3): 2/3 of the direct multiply-adds.
 * F(4,3) (interpolation points 0, 1, -1, 2, -2 and infinity):
 *         V = (4d0 - 5d2 + d4, -4(d1 + d2) + d3 + d4, 4(d1 - d2) - d3 + d4,
 *              2(d3 - d1) - d2 + d4, 2(d1 - d3) - d2 + d4, 4d1 - 5d3 + d5),
 *         U = (g0 / 4, -(g0 + g1 + g2) / 6, -(g0 - g1 + g2) / 6, (g0 + 2g1 + 4g2) / 24,
 *              (g0 - 2g1 + 4g2) / 24, g2),
 *         out = (M0 + M1 + M2 + M3 + M4, M1 - M2 + 2(M3 - M4), M1 + M2 + 4(M3 + M4),
 *                M1 - M2 + 8(M3 - M4) + M5): 1/2 of them.
 * The results differ from the direct sums by rounding only: a few units in the last place
 * of the sum of |terms| for F(2,3), two to four times that for F(4,3) (its transforms
 * scale by up to 8), which the layers use only with at least CN_WINO4_MIN_IN_C input
 * channels and rows of at most CN_WINO4_MAX_TILES tiles (what its input transform handles).
 * g->wino_m selects m. v: per input channel a planes t (Hp rows of wv = ceil(out_w / m)
 * tiles), v[((ic * a + t) * Hp + y) * wv + i] = V_t of tile i of padded row y; the pixel
 * form's output has row stride m * wv (compact when m divides out_w). */
#define CN_WINO4_MIN_IN_C 4
#define CN_WINO4_MAX_TILES 7
static inline int cn_wino_alpha(const cn_conv_geom *g) { return g->wino_m + 2; }
static inline int cn_wino_tiles(const cn_conv_geom *g) { return (g->out_w + g->wino_m - 1) / g->wino_m; }
static inline int cn_wino_out_stride(const cn_conv_geom *g) { return g->wino_m * cn_wino_tiles(g); }
static inline int cn_wino_q_stride(const cn_conv_geom *g) {
    return g->wino_m * cn_round_up(g->out_h * cn_wino_tiles(g), CN_VEC_MAX);
}
/* Whether F(4,3) may run g: enough input channels, rows short enough. */
static inline int cn_wino4_fits(const cn_conv_geom *g) {
    return g->k == 3 && g->in_c >= CN_WINO4_MIN_IN_C && (g->out_w + 3) / 4 <= CN_WINO4_MAX_TILES;
}
/* Floats of v, with the slack the pixel tiles over-read (zeroed by wino_input). */
static inline size_t cn_wino_input_floats(const cn_conv_geom *g) {
    return (size_t)g->in_c * cn_wino_alpha(g) * g->hp * cn_wino_tiles(g) + 2 * CN_VEC_MAX;
}
/* Floats of u (pixel form: OC*IC*3*a) and of ut (channel form: IC*3*a*ld). */
static inline size_t cn_wino_packed_floats(const cn_conv_geom *g) {
    return (size_t)g->out_c * g->in_c * 3 * cn_wino_alpha(g);
}
static inline size_t cn_wino_packed_channels_floats(const cn_conv_geom *g, int ld) {
    return (size_t)g->in_c * 3 * cn_wino_alpha(g) * ld;
}
/* Output channels per pixel tile of ks for g (sets u's layout). */
static inline int cn_wino_mr(const cn_kernel_set *ks, const cn_conv_geom *g) {
    return g->wino_m == 4 ? ks->wino_mr4 : ks->wino_mr;
}
/* u for wino_conv: per output-channel block (oc0, mr) of cn_conv_block(OC, cn_wino_mr(ks, g)),
 * at u + oc0*IC*3*a: for each (ic, ky), for each t, mr weights. w as for cn_conv_pack. */
void cn_wino_pack(const cn_kernel_set *ks, const cn_conv_geom *g, const float *w, int transposed, float *u);
/* ut (IC*3*a, ld) for wino_channels: row (ic*3 + ky)*a + t holds U_t of every output channel. */
void cn_wino_pack_channels(const cn_conv_geom *g, const float *w, int transposed, int ld, float *ut);
/* The weight gradient the same way (the transpose of the forward algorithm): with dy the
 * output gradients of a tile (0 past the row's end),
 *   Z = A dy,  S_t = sum over tiles of V_t * Z_t,  dW[kx = 0, 1, 2] = G^T S:
 * F(2,3): Z = (dy0, dy0 + dy1, dy0 - dy1, -dy1),
 *         dW = (S0 + (S1 + S2)/2, (S1 - S2)/2, (S1 + S2)/2 + S3);
 * F(4,3): Z = (dy0, dy0 + dy1 + dy2 + dy3, dy0 - dy1 + dy2 - dy3, dy0 + 2dy1 + 4dy2 + 8dy3,
 *              dy0 - 2dy1 + 4dy2 - 8dy3, dy3),
 *         dW = (S0/4 - (S1 + S2)/6 + (S3 + S4)/24, (S2 - S1)/6 + (S3 - S4)/12,
 *               (S3 + S4 - S1 - S2)/6 + S5).
 * z (out_h*wv tiles, a, ld) from dyt (out_h*out_w, ld). */
static inline size_t cn_wino_grad_floats(const cn_conv_geom *g, int ld) {
    return (size_t)g->out_h * cn_wino_tiles(g) * cn_wino_alpha(g) * ld;
}
void cn_wino_grad_transform(const cn_conv_geom *g, const float *dyt, int ld, float *z);
/* Estimated useful fraction of the vector lanes of ks->wino_conv for g. */
double cn_wino_pixel_lanes(const cn_conv_geom *g);

/* dst (C, hd, wd) = src (C, hs, ws) shifted by `pad` (negative crops), zero
 * elsewhere; only the interior is written when borders_zero (the borders of
 * dst are already zero from an earlier call with the same geometry). */
void cn_pad_copy(const float *src, int C, int hs, int ws, int pad, float *dst, int hd, int wd, int borders_zero);
/* out (C,OH,OW) = out_q (C, q_stride) with row stride wp, plus bias[c] (bias may be NULL). */
void cn_conv_compact(const float *out_q, int C, int OH, int OW, int wp, int q_stride, const float *bias, float *out);
/* dst (cols, rows; row stride dst_ld) = src (rows, cols; row stride src_ld)^T. */
void cn_transpose(const float *src, int rows, int cols, int src_ld, float *dst, int dst_ld);
/* Images between planes and pixel rows (the channel-vectorised depthwise kernels), 8 planes at
 * a time so that each is read (written) in order:
 * to_pixels: dst[y * dst_row + x * ld + c] = src (C, H, W)[c][y][x];
 * from_pixels: dst (C, H, W)[c][y][x] = src[y * src_row + x * ld + c]. */
void cn_transpose_to_pixels(const float *src, int C, int H, int W, float *dst, size_t dst_row, int ld);
void cn_transpose_from_pixels(const float *src, size_t src_row, int ld, int C, int H, int W, float *dst);
/* The same, then dst row c += bias[c] (bias may be NULL). */
void cn_transpose_bias(const float *src, int rows, int cols, int src_ld, const float *bias, float *dst, int dst_ld);
/* x (rows, n; row stride ld): row r += bias[r]. */
void cn_add_row_bias(float *x, int rows, int n, int ld, const float *bias);
/* sum (n) += sum over rows of x (rows, n). */
void cn_sum_rows(const float *x, int rows, int n, float *sum);

#endif
