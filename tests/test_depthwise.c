/* The depthwise 3x3 kernels (kernels.h: dw3x3, dw3x3_wgrad, dw3x3_dgrad_s2, and for output
 * planes of at most CN_DWC_MAX_PLANE pixels the channel-vectorised cn_dwc_*;
 * layers/conv2d_depthwise.c) on every kernel set this CPU has, against the im2col reference
 * path (CN_SESSION_REFERENCE_CONV, every layer unfused): a training step's output, input
 * gradient and parameter gradients, alone and followed by a batch norm (+ relu) whose
 * statistics come from the conv's pass and whose input gradient the conv forms itself
 * (fusion.h: cn_bn_stats_from_conv, cn_bn_grad_in_dw_conv); the stride-2 input gradient by
 * parity classes against a direct sum; and the eval-mode chain depthwise conv + batch norm +
 * relu (fusion.h: bn_first) against the three layers run alone (small maps: on the
 * channel-vectorised kernels, which apply them before their stores).
 * The fast path sums the 9 taps in another order (and with fused multiply-adds): results
 * agree within 1e-5 of the sum of magnitudes. */
#include "conv_vs_reference.h"
#include "model.h"
#include "exec/session.h"
#include "exec/plan.h"
#include "layers/conv2d_paths.h"
#include "kernels/kernels.h"
#include "core/rng.h"

static const char *const kernel_sets[] = { "avx512", "avx2", "generic" };

typedef struct { int c, h, w; const char *conv; } dw_case;

/* Stride 1 and 2, even and odd sizes, rows of one, two and more vectors with tails, pads 0-6,
 * dilation 1-3, with and without bias; output planes on both sides of CN_DWC_MAX_PLANE, and
 * channel counts of one, two and three blocks of 16 on the small-map path. */
static const dw_case cases[] = {
    { 5, 17, 17, "k=3 pad=1" },
    { 3, 20, 20, "k=3 stride=2 pad=1 bias=false" },
    { 4, 21, 19, "k=3 stride=2 pad=1" },
    { 3, 19, 18, "k=3 pad=2 dilation=2" },
    { 2, 23, 22, "k=3 stride=2 dilation=3" },
    { 2, 34, 33, "k=3 bias=false" },
    { 6, 5, 4, "k=3 pad=2" },
    { 2, 9, 40, "k=3 stride=2 pad=2 dilation=1" },
    { 20, 9, 9, "k=3 pad=1" },
    { 17, 12, 11, "k=3 pad=2 dilation=2 bias=false" },
    { 33, 7, 7, "k=3 stride=2 pad=1" },
    { 3, 40, 40, "k=3 stride=2 pad=1 bias=false" },
    /* the channel-vectorised path: dilation 2-3 at strides 1 and 2, pads 0 .. 2 * dilation,
     * rows of outputs that are and are not multiples of the register tile, 16 channels */
    { 16, 10, 13, "k=3 pad=3 dilation=3" },
    { 24, 11, 9, "k=3 stride=2 pad=4 dilation=2" },
    { 16, 6, 6, "k=3 bias=false" },
    { 7, 13, 15, "k=3 stride=2 dilation=3 bias=false" },
    { 18, 9, 10, "k=3 stride=2 pad=2 dilation=2" },
    { 9, 14, 14, "k=3 pad=6 dilation=3" },
    /* stride 2 on the plane kernels: input rows of 16 or more columns, split 32 and 16 at a time
     * (cn_dw_prepare), with odd tails */
    { 2, 35, 47, "k=3 stride=2 pad=2 dilation=2" },
    { 3, 31, 33, "k=3 stride=2 bias=false" },
    { 2, 30, 64, "k=3 stride=2 pad=1" },
    { 2, 29, 49, "k=3 stride=2 pad=1 dilation=3" },
};

static cn_model *model_of(const dw_case *dc, const char *tail) {
    char spec[256];
    snprintf(spec, sizeof spec, "input %dx%dx%d\nconv2d out=%d groups=%d %s\n%sflatten\n", dc->c, dc->h, dc->w, dc->c,
             dc->c, dc->conv, tail);
    cn_model *m = NULL;
    if (cn_model_from_spec(spec, "depthwise", 3, &m) != CN_OK) fprintf(stderr, "  spec: %s\n", cn_last_error());
    return m;
}

/* Whether the plan of m (training) fuses the batch norm at layer 1 (if any) with the depthwise
 * conv at layer 0 as fusion.h says: statistics from the conv pass, input gradient formed by the conv. */
static bool bn_fused_with_conv(const cn_model *m) {
    cn_plan plan;
    if (cn_plan_build(m, true, 0, &plan) != CN_OK) return false;
    bool ok = plan.steps[0].bn_stats_out && plan.steps[1].stats_from_conv && plan.steps[1].grad_in_dw_conv &&
              plan.steps[0].peer == 1;
    cn_plan_free(&plan);
    return ok;
}

/* One training step, fast against reference: 1 when everything agrees. tail: the layers after
 * the conv (a batch norm there must be fused with it; its running statistics must agree). */
static int check_training(const dw_case *dc, const char *tail, int threads) {
    cn_model *m = model_of(dc, tail);
    if (!m) return 0;
    bool bn = strstr(tail, "batchnorm2d") != NULL;
    if (bn && !bn_fused_with_conv(m)) {
        fprintf(stderr, "  %s + %s: batch norm not fused in training\n", dc->conv, tail);
        cn_model_free(m);
        return 0;
    }
    char what[160];
    snprintf(what, sizeof what, "%s + %s %dx%dx%d", dc->conv, tail, dc->c, dc->h, dc->w);
    int ok = fast_step_matches_reference(m, 4, threads, 5, what);
    cn_model_free(m);
    return ok;
}

/* Eval: depthwise conv + batchnorm2d (+ relu) as one fused pass, against the layers alone. */
static int check_eval_chain(const dw_case *dc, const char *tail, int threads) {
    cn_model *m = model_of(dc, tail);
    if (!m) return 0;
    int batch = 3;
    cn_plan plan;
    int ok = cn_plan_build(m, false, 0, &plan) == CN_OK;
    if (ok) {
        ok = plan.steps[0].chain.bn_first && plan.steps[0].chain.relu == (strstr(tail, "relu") != NULL) &&
             !plan.steps[1].forward;
        cn_plan_free(&plan);
        if (!ok) fprintf(stderr, "  %s + %s: not fused\n", dc->conv, tail);
    }
    cn_session *fast = NULL, *ref = NULL;
    ok = ok && cn_session_create(m, batch, threads, 0, &fast) == CN_OK &&
         cn_session_create(m, batch, threads, CN_SESSION_REFERENCE_CONV, &ref) == CN_OK;
    size_t in_n = (size_t)batch * cn_shape_size(m->input), out_n = (size_t)batch * cn_model_num_classes(m);
    float *x = malloc(in_n * sizeof *x), *y = malloc(out_n * sizeof *y);
    cn_rng rng;
    cn_rng_seed(&rng, 6);
    fill(x, in_n, &rng);
    fill(m->params, m->num_params, &rng);
    fill(m->buffers, m->num_buffers, &rng);
    for (int ch = 0; ch < dc->c; ch++) m->buffers[dc->c + ch] = 0.5f + fabsf(m->buffers[dc->c + ch]);   /* variances */
    if (ok) {
        memcpy(y, cn_session_forward(ref, x, batch, NULL), out_n * sizeof *y);
        ok = close_all(cn_session_forward(fast, x, batch, NULL), y, out_n);
        if (!ok) fprintf(stderr, "  %s + %s %dx%dx%d: eval chain differs\n", dc->conv, tail, dc->c, dc->h, dc->w);
    }
    free(x); free(y);
    cn_session_free(fast);
    cn_session_free(ref);
    cn_model_free(m);
    return ok;
}

TEST(depthwise_matches_reference) {
    int sets = 0;
    for (size_t s = 0; s < sizeof kernel_sets / sizeof kernel_sets[0]; s++) {
        if (cn_kernels_select(kernel_sets[s]) != 0) continue;
        sets++;
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
            for (int threads = 1; threads <= 2; threads++)
                CHECK_MSG(check_training(&cases[i], "", threads), "%s: case %zu, %d threads", kernel_sets[s], i, threads);
    }
    cn_kernels_select(NULL);
    CHECK(sets >= 1);
}

/* Training: depthwise conv + batch norm (+ relu), the batch norm's statistics taken in the
 * conv's pass and its input gradient formed by the conv, against the layers run alone. */
TEST(depthwise_bn_fused_in_training) {
    for (size_t s = 0; s < sizeof kernel_sets / sizeof kernel_sets[0]; s++) {
        if (cn_kernels_select(kernel_sets[s]) != 0) continue;
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
            for (int threads = 1; threads <= 2; threads++) {
                CHECK_MSG(check_training(&cases[i], "batchnorm2d\nrelu\n", threads), "%s: case %zu, %d threads",
                          kernel_sets[s], i, threads);
                CHECK_MSG(check_training(&cases[i], "batchnorm2d\n", threads), "%s: case %zu, %d threads, no relu",
                          kernel_sets[s], i, threads);
            }
    }
    cn_kernels_select(NULL);
}

/* dw3x3_dgrad_s2 against the input gradient summed directly (in double) over every tap:
 * even and odd sizes, rows of one to several vectors, pads 0 .. 2 * dilation, dilation 1-3. */
static int check_dgrad_s2(const cn_kernel_set *ks, int h, int w, int pad, int dil, cn_rng *rng) {
    int oh = (h + 2 * pad - 2 * dil - 1) / 2 + 1, ow = (w + 2 * pad - 2 * dil - 1) / 2 + 1;
    if (oh < 1 || ow < 1) return 1;
    cn_dw_geom g = cn_dw_s2_grad_geom(h, w, oh, ow, pad, dil);
    float *dy = malloc((size_t)oh * ow * sizeof *dy), *dx = malloc((size_t)h * w * sizeof *dx);
    float *prep = malloc(cn_dw_prepared_floats(&g) * sizeof *prep), wt[9];
    double *want = calloc((size_t)h * w, sizeof *want), *mag = calloc((size_t)h * w, sizeof *mag);
    fill(dy, (size_t)oh * ow, rng);
    fill(wt, 9, rng);
    for (int oy = 0; oy < oh; oy++)
        for (int ox = 0; ox < ow; ox++)
            for (int ky = 0; ky < 3; ky++)
                for (int kx = 0; kx < 3; kx++) {
                    int iy = 2 * oy - pad + ky * dil, ix = 2 * ox - pad + kx * dil;
                    if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
                    double t = (double)wt[ky * 3 + kx] * dy[oy * ow + ox];
                    want[iy * w + ix] += t;
                    mag[iy * w + ix] += fabs(t);
                }
    for (size_t i = 0; i < (size_t)h * w; i++) dx[i] = NAN;   /* every pixel must be written */
    cn_dw_prepare(&g, dy, oh, ow, 1, cn_dw_s2_border(dil), prep);
    ks->dw3x3_dgrad_s2(&g, prep, wt, dx);
    int ok = 1;
    for (size_t i = 0; i < (size_t)h * w && ok; i++)
        if (!(fabs(dx[i] - want[i]) <= 1e-5 * (1.0 + mag[i]))) {
            fprintf(stderr, "  %s: %dx%d pad %d dil %d: dx[%zu] = %g, want %g\n", ks->name, h, w, pad, dil, i, dx[i], want[i]);
            ok = 0;
        }
    free(dy); free(dx); free(prep); free(want); free(mag);
    return ok;
}

TEST(depthwise_stride2_input_gradient_by_parity) {
    cn_rng rng;
    cn_rng_seed(&rng, 7);
    int sets = 0;
    for (size_t s = 0; s < sizeof kernel_sets / sizeof kernel_sets[0]; s++) {
        if (cn_kernels_select(kernel_sets[s]) != 0) continue;
        sets++;
        const cn_kernel_set *ks = cn_kernels();
        const int sizes[] = { 1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 28, 31, 32, 33, 47 };
        for (int dil = 1; dil <= 3; dil++)
            for (int pad = 0; pad <= 2 * dil; pad++)
                for (size_t a = 0; a < sizeof sizes / sizeof sizes[0]; a++) {
                    int h = sizes[a], w = sizes[(a * 7 + 3) % (sizeof sizes / sizeof sizes[0])];
                    CHECK_MSG(check_dgrad_s2(ks, h, w, pad, dil, &rng), "%s %dx%d pad %d dil %d", ks->name, h, w, pad, dil);
                    CHECK_MSG(check_dgrad_s2(ks, w, h, pad, dil, &rng), "%s %dx%d pad %d dil %d", ks->name, w, h, pad, dil);
                }
    }
    cn_kernels_select(NULL);
    CHECK(sets >= 1);
}

TEST(depthwise_bn_relu_fused_in_eval) {
    for (size_t s = 0; s < sizeof kernel_sets / sizeof kernel_sets[0]; s++) {
        if (cn_kernels_select(kernel_sets[s]) != 0) continue;
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            CHECK_MSG(check_eval_chain(&cases[i], "batchnorm2d\nrelu\n", 2), "%s: case %zu", kernel_sets[s], i);
            CHECK_MSG(check_eval_chain(&cases[i], "batchnorm2d\n", 1), "%s: case %zu, no relu", kernel_sets[s], i);
        }
    }
    cn_kernels_select(NULL);
}

/* The depthwise-separable presets: in training, every depthwise conv hands its output plane
 * statistics to the batch norm after it and forms that batch norm's input gradient itself. */
TEST(depthwise_presets_fuse_bn_in_training) {
    const char *presets[] = { "ds8k", "cifar-s9" };
    for (size_t p = 0; p < sizeof presets / sizeof presets[0]; p++) {
        cn_model *m = NULL;
        CHECK(cn_model_load_spec(presets[p], 1, &m) == CN_OK);
        cn_plan plan;
        if (!m || cn_plan_build(m, true, 0, &plan) != CN_OK) { cn_model_free(m); CHECK(0); continue; }
        int depthwise = 0;
        for (int i = 0; i + 1 < m->num_layers; i++) {
            if (!cn_conv2d_depthwise_fast(&m->layers[i])) continue;
            depthwise++;
            CHECK_MSG(plan.steps[i].bn_stats_out && plan.steps[i + 1].stats_from_conv && plan.steps[i + 1].grad_in_dw_conv,
                      "%s: layer %d", presets[p], i);
        }
        CHECK_MSG(depthwise >= 4, "%s: %d depthwise convs", presets[p], depthwise);
        cn_plan_free(&plan);
        cn_model_free(m);
    }
}

/* Which convolutions take the fast depthwise path. */
TEST(depthwise_fast_path_choice) {
    const struct { const char *spec; bool fast; } cases_[] = {
        { "input 4x8x8\nconv2d out=4 k=3 pad=1 groups=4\nflatten", true },
        { "input 4x8x8\nconv2d out=4 k=3 stride=2 pad=1 groups=4 dilation=2\nflatten", true },
        { "input 4x8x8\nconv2d out=8 k=3 pad=1 groups=4\nflatten", false },       /* channel multiplier 2 */
        { "input 4x8x8\nconv2d out=4 k=5 pad=2 groups=4\nflatten", false },
        { "input 4x9x9\nconv2d out=4 k=3 stride=3 groups=4\nflatten", false },
        { "input 4x8x8\nconv2d out=4 k=3 pad=3 groups=4\nflatten", false },       /* pad > 2 * dilation */
        { "input 4x8x8\nconv2d out=4 k=3 pad=1 groups=2\nflatten", false },
    };
    for (size_t i = 0; i < sizeof cases_ / sizeof cases_[0]; i++) {
        cn_model *m = NULL;
        CHECK(cn_model_from_spec(cases_[i].spec, "t", 1, &m) == CN_OK);
        if (m) CHECK_MSG(cn_conv2d_depthwise_fast(&m->layers[0]) == cases_[i].fast, "%s", cases_[i].spec);
        cn_model_free(m);
    }
    /* of the fast ones, output planes of up to CN_DWC_MAX_PLANE = 196 pixels run the channel-vectorised kernels */
    const struct { const char *spec; bool channels; } planes[] = {
        { "input 4x14x14\nconv2d out=4 k=3 pad=1 groups=4\nflatten", true },
        { "input 4x15x14\nconv2d out=4 k=3 pad=1 groups=4\nflatten", false },
        { "input 4x28x28\nconv2d out=4 k=3 stride=2 pad=1 groups=4\nflatten", true },
        { "input 4x32x32\nconv2d out=4 k=3 stride=2 pad=1 groups=4\nflatten", false },
        { "input 4x14x14\nconv2d out=4 k=5 pad=2 groups=4\nflatten", false },
    };
    CHECK(CN_DWC_MAX_PLANE == 196);
    for (size_t i = 0; i < sizeof planes / sizeof planes[0]; i++) {
        cn_model *m = NULL;
        CHECK(cn_model_from_spec(planes[i].spec, "t", 1, &m) == CN_OK);
        if (m) CHECK_MSG(cn_conv2d_depthwise_channels(&m->layers[0]) == planes[i].channels, "%s", planes[i].spec);
        cn_model_free(m);
    }
}

int main(void) {
    RUN(depthwise_matches_reference);
    RUN(depthwise_bn_fused_in_training);
    RUN(depthwise_stride2_input_gradient_by_parity);
    RUN(depthwise_bn_relu_fused_in_eval);
    RUN(depthwise_presets_fuse_bn_in_training);
    RUN(depthwise_fast_path_choice);
    return test_summary();
}
