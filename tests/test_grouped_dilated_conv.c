/* Grouped convolutions on the direct kernels, group by group (layers/conv2d_grouped.c),
 * dilated ones phase by phase (layers/conv2d_dilated.c) and strided ones after space-to-depth
 * (layers/conv2d_strided.c), on every kernel set this CPU has,
 * against the im2col reference path (CN_SESSION_REFERENCE_CONV): a training step's output,
 * input gradient and parameter gradients, and which convolutions take the paths. The direct kernels sum the taps in another order (and with fused
 * multiply-adds): results agree within 1e-5 of the larger magnitude. */
#include "conv_vs_reference.h"
#include "model.h"
#include "exec/session.h"
#include "kernels/kernels.h"
#include "layers/conv2d_paths.h"
#include "core/rng.h"

static const char *const kernel_sets[] = { "avx512", "avx2", "generic" };

typedef struct { int c, h, w; const char *conv; } grouped_case;

/* 2 to 8 groups of 1 to 8 channels, 1x1 to 5x5 kernels, pads 0 to past k - 1, odd and even
 * sizes, rows of one and several vectors, with and without bias. */
static const grouped_case cases[] = {
    { 4, 9, 9, "out=8 k=3 pad=1 groups=2" },
    { 6, 13, 11, "out=6 k=3 groups=3 bias=false" },
    { 8, 17, 20, "out=8 k=1 groups=4" },
    { 4, 10, 7, "out=4 k=5 pad=2 groups=2" },
    { 8, 7, 18, "out=16 k=3 pad=2 groups=8 bias=false" },
    { 6, 21, 19, "out=12 k=2 pad=1 groups=2" },
    { 16, 6, 6, "out=16 k=3 pad=1 groups=2" },
};

/* Dilation 2 to 4 (phases of unequal sizes, phases without outputs), 2x2 to 5x5 kernels, pads
 * 0 to past the span, odd and even sizes, with and without bias. */
static const grouped_case dilated_cases[] = {
    { 3, 12, 12, "out=5 k=3 pad=2 dilation=2" },
    { 2, 13, 11, "out=4 k=3 dilation=2 bias=false" },
    { 4, 17, 20, "out=8 k=3 pad=3 dilation=3" },
    { 3, 9, 10, "out=2 k=2 pad=1 dilation=4" },
    { 2, 15, 14, "out=3 k=5 pad=4 dilation=2" },
    { 5, 7, 7, "out=6 k=3 dilation=3" },
    { 1, 33, 9, "out=7 k=3 pad=5 dilation=2 bias=false" },
};

/* Stride 2 to 4, 1x1 to 5x5 kernels (a stride larger than the kernel: phases no tap reads), pads
 * 0 to k - 1, odd and even sizes (input rows and columns no output reads), with and without bias;
 * res20k's 3x3 and 1x1 stride-2 convolutions. */
static const grouped_case strided_cases[] = {
    { 16, 14, 14, "out=32 k=3 stride=2 pad=1 bias=false" },
    { 16, 14, 14, "out=32 k=1 stride=2 bias=false" },
    { 3, 13, 11, "out=5 k=3 stride=2" },
    { 2, 12, 12, "out=4 k=2 stride=2" },
    { 4, 17, 20, "out=8 k=5 stride=2 pad=2" },
    { 3, 15, 14, "out=6 k=3 stride=3 pad=1 bias=false" },
    { 2, 19, 9, "out=3 k=2 stride=4 pad=1" },
    { 1, 28, 28, "out=8 k=4 stride=2 pad=1" },
};

static bool on_fast_path(const cn_layer *l) {
    return cn_conv2d_grouped_direct(l) || cn_conv2d_dilated_direct(l) || cn_conv2d_strided_direct(l);
}

static cn_model *model_of(const grouped_case *gc) {
    char spec[256];
    snprintf(spec, sizeof spec, "input %dx%dx%d\nconv2d %s\nflatten\n", gc->c, gc->h, gc->w, gc->conv);
    cn_model *m = NULL;
    if (cn_model_from_spec(spec, "grouped", 3, &m) != CN_OK) fprintf(stderr, "  spec: %s\n", cn_last_error());
    return m;
}

/* One training step, fast against reference: 1 when everything agrees. */
static int check_training(const grouped_case *gc, int threads) {
    cn_model *m = model_of(gc);
    if (!m) return 0;
    if (!on_fast_path(&m->layers[0])) {
        fprintf(stderr, "  %s: not on the grouped, dilated or strided direct path\n", gc->conv);
        cn_model_free(m);
        return 0;
    }
    char what[160];
    snprintf(what, sizeof what, "%s %dx%dx%d", gc->conv, gc->c, gc->h, gc->w);
    int ok = fast_step_matches_reference(m, 3, threads, 11, what);
    cn_model_free(m);
    return ok;
}

TEST(grouped_matches_reference) {
    int sets = 0;
    for (size_t s = 0; s < sizeof kernel_sets / sizeof kernel_sets[0]; s++) {
        if (cn_kernels_select(kernel_sets[s]) != 0) continue;
        sets++;
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
            for (int threads = 1; threads <= 2; threads++)
                CHECK_MSG(check_training(&cases[i], threads), "%s: case %zu, %d threads", kernel_sets[s], i, threads);
    }
    cn_kernels_select(NULL);
    CHECK(sets >= 1);
}

TEST(dilated_matches_reference) {
    int sets = 0;
    for (size_t s = 0; s < sizeof kernel_sets / sizeof kernel_sets[0]; s++) {
        if (cn_kernels_select(kernel_sets[s]) != 0) continue;
        sets++;
        for (size_t i = 0; i < sizeof dilated_cases / sizeof dilated_cases[0]; i++)
            for (int threads = 1; threads <= 2; threads++)
                CHECK_MSG(check_training(&dilated_cases[i], threads), "%s: dilated case %zu, %d threads", kernel_sets[s],
                          i, threads);
    }
    cn_kernels_select(NULL);
    CHECK(sets >= 1);
}

TEST(strided_matches_reference) {
    int sets = 0;
    for (size_t s = 0; s < sizeof kernel_sets / sizeof kernel_sets[0]; s++) {
        if (cn_kernels_select(kernel_sets[s]) != 0) continue;
        sets++;
        for (size_t i = 0; i < sizeof strided_cases / sizeof strided_cases[0]; i++)
            for (int threads = 1; threads <= 2; threads++)
                CHECK_MSG(check_training(&strided_cases[i], threads), "%s: strided case %zu, %d threads", kernel_sets[s],
                          i, threads);
    }
    cn_kernels_select(NULL);
    CHECK(sets >= 1);
}

/* Which convolutions take the grouped, dilated or strided direct path. */
TEST(grouped_path_choice) {
    const struct { const char *spec; bool grouped, dilated, strided; } cases_[] = {
        { "input 4x8x8\nconv2d out=8 k=3 pad=1 groups=2\nflatten", true, false, false },
        { "input 4x8x8\nconv2d out=8 k=3 pad=1 groups=4\nflatten", true, false, false },     /* channel multiplier 2 */
        { "input 4x8x8\nconv2d out=4 k=5 pad=2 groups=4\nflatten", true, false, false },     /* depthwise, not 3x3 */
        { "input 4x8x8\nconv2d out=4 k=3 pad=1 groups=4\nflatten", false, false, false },    /* the depthwise 3x3 path */
        { "input 4x8x8\nconv2d out=4 k=3 pad=2 dilation=2 groups=4\nflatten", false, false, false },
        { "input 4x8x8\nconv2d out=8 k=3 pad=1\nflatten", false, false, false },             /* the plain direct path */
        { "input 4x8x8\nconv2d out=8 k=3 stride=2 pad=1 groups=2\nflatten", false, false, false },
        { "input 4x8x8\nconv2d out=8 k=3 pad=2 dilation=2 groups=2\nflatten", false, false, false },  /* im2col */
        { "input 4x8x8\nconv2d out=8 k=3 pad=2 dilation=2\nflatten", false, true, false },
        { "input 4x9x9\nconv2d out=8 k=3 stride=2 dilation=2\nflatten", false, false, false },
        { "input 4x8x8\nconv2d out=8 k=3 stride=2 pad=1\nflatten", false, false, true },
        { "input 4x8x8\nconv2d out=8 k=1 stride=2\nflatten", false, false, true },
        { "input 4x8x8\nconv2d out=4 k=3 stride=2 pad=1 groups=4\nflatten", false, false, false },  /* depthwise */
    };
    for (size_t i = 0; i < sizeof cases_ / sizeof cases_[0]; i++) {
        cn_model *m = NULL;
        CHECK(cn_model_from_spec(cases_[i].spec, "t", 1, &m) == CN_OK);
        if (m) CHECK_MSG(cn_conv2d_grouped_direct(&m->layers[0]) == cases_[i].grouped &&
                         cn_conv2d_dilated_direct(&m->layers[0]) == cases_[i].dilated &&
                         cn_conv2d_strided_direct(&m->layers[0]) == cases_[i].strided, "%s", cases_[i].spec);
        cn_model_free(m);
    }
}

/* cn_conv2d_issued_macs counts what the grouped and dilated paths' kernels issue: ks->conv over
 * whole q-layout rows (padding columns, rows rounded up to CN_VEC_MAX = 16 floats) and
 * ks->weight_grad over wgrad_ld(OC) lanes; the layers no direct path runs keep l->macs. */
TEST(issued_macs_of_grouped_and_dilated) {
    CHECK(CN_VEC_MAX == 16);
    cn_model *m = NULL;
    /* groups=2 on 4x8x8, pad 1: per group ICg=2, OCg=4, padded width 10, 8 rows -> q row 80 */
    CHECK(cn_model_from_spec("input 4x8x8\nconv2d out=8 k=3 pad=1 groups=2\nflatten", "g", 1, &m) == CN_OK);
    if (m) {
        const cn_layer *l = &m->layers[0];
        int ld = cn_kernels()->wgrad_ld(4);
        CHECK(l->macs == 8 * 2 * 9 * 64);
        CHECK_MSG(cn_conv2d_issued_macs(l, 0) == 2.0 * (2 * 9 * 4 * 80), "%g", cn_conv2d_issued_macs(l, 0));
        /* input gradient: dy_g (4 channels) padded by 1 to 10x10, 2 output channels, 8 rows of 10 */
        CHECK_MSG(cn_conv2d_issued_macs(l, 1) == 2.0 * (4 * 9 * 2 * 80), "%g", cn_conv2d_issued_macs(l, 1));
        CHECK_MSG(ld >= 4 && cn_conv2d_issued_macs(l, 2) == 2.0 * (2 * 9) * 64 * ld, "%g", cn_conv2d_issued_macs(l, 2));
        CHECK(cn_conv2d_issued_macs(l, 0) > l->macs);
    }
    cn_model_free(m);
    /* dilation 2 on 4x8x8, pad 2 (padded 12x12): four phases of 6x6 inputs, 4x4 outputs each:
     * forward q row round_up(4*6, 16) = 32; input gradient dy_p padded by 2 to 8x8, 6 rows of 8 = 48 */
    m = NULL;
    CHECK(cn_model_from_spec("input 4x8x8\nconv2d out=8 k=3 pad=2 dilation=2\nflatten", "d", 1, &m) == CN_OK);
    if (m) {
        const cn_layer *l = &m->layers[0];
        int ld = cn_kernels()->wgrad_ld(8);
        CHECK(l->macs == 8 * 4 * 9 * 64);
        CHECK_MSG(cn_conv2d_issued_macs(l, 0) == 4.0 * (4 * 9 * 8 * 32), "%g", cn_conv2d_issued_macs(l, 0));
        CHECK_MSG(cn_conv2d_issued_macs(l, 1) == 4.0 * (8 * 9 * 4 * 48), "%g", cn_conv2d_issued_macs(l, 1));
        CHECK_MSG(ld >= 8 && cn_conv2d_issued_macs(l, 2) == 4.0 * (4 * 9) * 16 * ld, "%g", cn_conv2d_issued_macs(l, 2));
    }
    cn_model_free(m);
    /* a dilated conv whose output is smaller than d x d: only the phases with outputs count
     * (5x5 input, dilation 3, k 2, no pad: 2x2 outputs, phases (0..1, 0..1) of 2x2 inputs, 1x1 out) */
    m = NULL;
    CHECK(cn_model_from_spec("input 1x5x5\nconv2d out=2 k=2 dilation=3\nflatten", "d3", 1, &m) == CN_OK);
    if (m) {
        const cn_layer *l = &m->layers[0];
        CHECK(l->out.h == 2 && l->out.w == 2 && cn_conv2d_dilated_direct(l));
        CHECK_MSG(cn_conv2d_issued_macs(l, 0) == 4.0 * (1 * 4 * 2 * 16), "%g", cn_conv2d_issued_macs(l, 0));
    }
    cn_model_free(m);
    /* stride 2, 3x3, pad 1 on 4x8x8: 4 phases of 4 channels, 2x2 taps, x' 5x5 -> 4x4 outputs:
     * forward q row round_up(4*5, 16) = 32; input gradient dy padded by 1 to 6x6, 5 rows of 6 = 32 */
    m = NULL;
    CHECK(cn_model_from_spec("input 4x8x8\nconv2d out=8 k=3 stride=2 pad=1\nflatten", "s", 1, &m) == CN_OK);
    if (m) {
        const cn_layer *l = &m->layers[0];
        int ld = cn_kernels()->wgrad_ld(8);
        CHECK(l->macs == 8 * 4 * 9 * 16);
        CHECK_MSG(cn_conv2d_issued_macs(l, 0) == 16.0 * 4 * 8 * 32, "%g", cn_conv2d_issued_macs(l, 0));
        CHECK_MSG(cn_conv2d_issued_macs(l, 1) == 8.0 * 4 * 16 * 32, "%g", cn_conv2d_issued_macs(l, 1));
        CHECK_MSG(ld >= 8 && cn_conv2d_issued_macs(l, 2) == 16.0 * 4 * 16 * ld, "%g", cn_conv2d_issued_macs(l, 2));
    }
    cn_model_free(m);
    /* paths without direct kernels: their nominal MACs */
    const char *nominal[] = { "input 4x8x8\nconv2d out=4 k=3 pad=1 groups=4\nflatten",           /* depthwise 3x3 */
                              "input 4x8x8\nconv2d out=8 k=3 stride=2 pad=1 groups=2\nflatten",  /* im2col */
                              "input 4x8x8\nconv2d out=8 k=3 pad=2 dilation=2 groups=2\nflatten" };
    for (int i = 0; i < 3; i++) {
        m = NULL;
        CHECK(cn_model_from_spec(nominal[i], "n", 1, &m) == CN_OK);
        if (m)
            for (int pass = 0; pass < 3; pass++)
                CHECK_MSG(cn_conv2d_issued_macs(&m->layers[0], pass) == (double)m->layers[0].macs, "%s pass %d", nominal[i], pass);
        cn_model_free(m);
    }
}

int main(void) {
    RUN(grouped_matches_reference);
    RUN(dilated_matches_reference);
    RUN(strided_matches_reference);
    RUN(grouped_path_choice);
    RUN(issued_macs_of_grouped_and_dilated);
    return test_summary();
}
