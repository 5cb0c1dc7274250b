/* The int8 kernels (src/kernels/int8.h) on every kernel set this CPU runs (and the forced
 * fallbacks), against the C export's own helpers (src/int8/int8_reference.h: conv2d_q,
 * linear_q, affine_q, maxpool_q, gap_q): the same bytes and the same floats, exactly, on random
 * shapes, including sums that wrap in int32 on the way (a fan-in of 70,000). */
#include "harness.h"
#include "kernels/int8.h"
#include "int8/int8_reference.h"
#include "core/rng.h"
#include <stdint.h>

static const char *const sets[] = {"avx512-vnni", "avx2", "generic"};
static cn_rng rng;
static int rnd(int lo, int hi) { return lo + (int)(cn_rng_below(&rng, (uint64_t)(hi - lo + 1))); }
static float rndf(float lo, float hi) { return lo + (hi - lo) * cn_rng_uniform(&rng); }

typedef struct {
    int c, h, w, oc, k, s, p, relu, to_float, post, post_relu, pool;
} conv_case;

/* One convolution through the chosen kernel set and through the export's helpers (with pool:
 * then maxpool_q 2x2, stride 2); 1 if equal. */
static int check_conv(const conv_case *t) {
    int oh = (t->h + 2 * t->p - t->k) / t->s + 1, ow = (t->w + 2 * t->p - t->k) / t->s + 1, kk = t->k * t->k;
    int cp = (t->c + 3) / 4 * 4, hp = t->h + 2 * t->p, wp = t->w + 2 * t->p, ocp = (t->oc + 3) / 4 * 4;
    int ph = t->pool ? oh / 2 : oh, pw = t->pool ? ow / 2 : ow;   /* the stored outputs */
    size_t nin = (size_t)t->c * t->h * t->w, nout = (size_t)t->oc * oh * ow;
    int8_t *in = malloc(nin), *wt = malloc((size_t)t->oc * t->c * kk), *qref = malloc(nout);
    int8_t *canon = calloc((size_t)t->oc * kk * cp, 1);
    uint8_t *biased = malloc((size_t)hp * wp * cp), *qout = malloc((size_t)oh * ow * ocp);
    float *mult = malloc(t->oc * sizeof *mult), *bias = malloc(t->oc * sizeof *bias), *pm = malloc(t->oc * sizeof *pm);
    float *ps = malloc(t->oc * sizeof *ps), *fref = malloc(nout * sizeof *fref), *fout = malloc(nout * sizeof *fout);
    int32_t *comp = malloc(t->oc * sizeof *comp);
    const cn_i8_kernel_set *ks = cn_i8_kernels();
    void *packed = malloc(cn_i8_packed_bytes(ks, t->oc, kk, cp));
    for (size_t i = 0; i < nin; i++) in[i] = (int8_t)rnd(-127, 127);
    for (int i = 0; i < t->oc * t->c * kk; i++) wt[i] = (int8_t)rnd(-127, 127);
    float scale = 1.0f / (127.0f * (float)sqrt((double)t->c * kk));   /* sums of about +-127 after requantising */
    for (int o = 0; o < t->oc; o++) {   /* some negative scales: requantisations that decrease (pooling) */
        mult[o] = scale * rndf(0.2f, 3.0f) * (rnd(0, 3) ? 1.0f : -1.0f); bias[o] = rndf(-30.0f, 30.0f);
        pm[o] = rndf(0.3f, 1.5f) * (rnd(0, 3) ? 1.0f : -1.0f); ps[o] = rndf(-20.0f, 20.0f);
    }
    cn_i8_ref_conv2d_q(in, t->to_float ? NULL : qref, fref, wt, mult, bias, t->c, t->h, t->w, t->oc, t->k, t->s, t->p, oh, ow, t->relu);
    if (t->post) {
        export_op bn = {.kind = OP_AFFINE, .in = {t->oc, oh, ow}, .mult = pm, .qbias = ps, .relu = t->post_relu};
        cn_i8_ref_int8_op(&bn, qref, qref);
    }
    if (t->pool) {   /* pooled in place: (oc, ph, pw) at the start of qref */
        int8_t *conv_out = malloc(nout);
        memcpy(conv_out, qref, nout);
        cn_i8_ref_maxpool_q(conv_out, qref, t->oc, oh, ow, 2, 2, 0, ph, pw);
        free(conv_out);
    }
    memset(biased, CN_I8_ZERO, (size_t)hp * wp * cp);
    for (int c = 0; c < t->c; c++)
        for (int y = 0; y < t->h; y++)
            for (int x = 0; x < t->w; x++)
                biased[((size_t)(y + t->p) * wp + x + t->p) * cp + c] = (uint8_t)(in[(c * t->h + y) * t->w + x] + CN_I8_ZERO);
    for (int o = 0; o < t->oc; o++)
        for (int c = 0; c < t->c; c++)
            for (int tap = 0; tap < kk; tap++) canon[((size_t)o * kk + tap) * cp + c] = wt[(o * t->c + c) * kk + tap];
    cn_i8_pack(ks, canon, t->oc, kk, cp, packed, comp);
    cn_i8_conv_geom g = {.in_h = hp, .in_w = wp, .in_cp = cp, .k = t->k, .stride = t->s, .out_h = oh, .out_w = ow,
                         .out_c = t->oc, .q_row = (size_t)pw * ocp, .q_pix = (size_t)ocp, .f_row = (size_t)ow, .f_pix = 1,
                         .f_chan = (size_t)oh * ow, .pool = t->pool};
    cn_i8_epilogue ep = {.comp = comp, .mult = mult, .bias = bias, .relu = t->relu, .post_mult = t->post ? pm : NULL,
                         .post_shift = ps, .post_relu = t->post_relu};
    ks->conv(&g, packed, &ep, biased, t->to_float ? NULL : qout, fout);
    int same = 1;
    for (int o = 0; o < t->oc; o++)
        for (int y = 0; y < ph; y++)
            for (int x = 0; x < pw; x++) {
                size_t r = ((size_t)o * ph + y) * pw + x;
                if (t->to_float) same &= memcmp(&fout[r], &fref[r], sizeof(float)) == 0;
                else same &= qout[((size_t)y * pw + x) * ocp + o] - CN_I8_ZERO == qref[r];
            }
    free(in); free(wt); free(qref); free(canon); free(biased); free(qout); free(mult); free(bias); free(pm); free(ps);
    free(fref); free(fout); free(comp); free(packed);
    return same;
}

TEST(conv_matches_export_helpers) {
    int tested = 0;
    for (size_t s = 0; s < sizeof sets / sizeof *sets; s++) {
        if (cn_i8_kernels_select(sets[s]) != 0) continue;
        tested++;
        cn_rng_seed(&rng, 11);
        for (int trial = 0; trial < 120; trial++) {
            conv_case t = {.c = rnd(1, 40), .h = rnd(3, 15), .w = rnd(3, 21), .oc = rnd(1, 45), .k = rnd(1, 3),
                           .s = rnd(1, 2), .relu = trial & 1, .to_float = trial % 5 == 4};
            if (trial % 7 == 0) t.k = 5;
            if (trial % 6 == 5) t.oc = rnd(1, 8);   /* 8 channels or fewer: two pixels an accumulator (avx512-vnni) */
            if (t.k > t.h) t.h = t.k;
            if (t.k > t.w) t.w = t.k;
            t.p = rnd(0, t.k / 2);
            t.post = !t.to_float && trial % 3 != 0;
            t.post_relu = trial % 4 == 1;
            /* the fused 2x2 max pool, where the set has it: conv outputs of at least 2x2 */
            t.pool = cn_i8_kernels()->pool && !t.to_float && trial % 4 < 2 && (t.h + 2 * t.p - t.k) / t.s >= 1 &&
                     (t.w + 2 * t.p - t.k) / t.s >= 1;
            CHECK_MSG(check_conv(&t), "%s trial %d: c %d %dx%d oc %d k %d s %d p %d relu %d float %d post %d pool %d",
                      sets[s], trial, t.c, t.h, t.w, t.oc, t.k, t.s, t.p, t.relu, t.to_float, t.post, t.pool);
        }
    }
    cn_i8_kernels_select(NULL);
    CHECK(tested >= 2);   /* x86-64: avx2 (or better) and generic at least */
}

/* n images of `inputs` values each as a 1x1 convolution over one row (int8.h), against linear_q. */
static int check_linear(int n, int inputs, int m, int relu, int to_float, int extreme) {
    int cp = (inputs + 3) / 4 * 4, mp = (m + 3) / 4 * 4;
    int8_t *in = malloc((size_t)n * inputs), *wt = malloc((size_t)m * inputs), *qref = malloc((size_t)n * m);
    int8_t *canon = calloc((size_t)m * cp, 1);
    uint8_t *biased = malloc((size_t)n * cp), *qout = malloc((size_t)n * mp);
    float *mult = malloc(m * sizeof *mult), *bias = malloc(m * sizeof *bias);
    float *fref = malloc((size_t)n * m * sizeof *fref), *fout = malloc((size_t)n * m * sizeof *fout);
    int32_t *comp = malloc(m * sizeof *comp);
    const cn_i8_kernel_set *ks = cn_i8_kernels();
    void *packed = malloc(cn_i8_packed_bytes(ks, m, 1, cp));
    for (size_t i = 0; i < (size_t)n * inputs; i++) in[i] = (int8_t)(extreme ? (rnd(0, 1) ? 127 : -127) : rnd(-127, 127));
    for (size_t i = 0; i < (size_t)m * inputs; i++) wt[i] = (int8_t)(extreme ? 127 : rnd(-127, 127));
    for (int o = 0; o < m; o++) { mult[o] = rndf(0.2f, 3.0f) / (127.0f * (float)sqrt((double)inputs)); bias[o] = rndf(-30.0f, 30.0f); }
    memset(biased, 0, (size_t)n * cp);   /* padding inputs: any value (their weights are 0) */
    for (int i = 0; i < n; i++) {
        cn_i8_ref_linear_q(in + (size_t)i * inputs, to_float ? NULL : qref + (size_t)i * m, fref + (size_t)i * m, wt,
                           mult, bias, inputs, m, relu);
        for (int j = 0; j < inputs; j++) biased[(size_t)i * cp + j] = (uint8_t)(in[(size_t)i * inputs + j] + CN_I8_ZERO);
    }
    for (int o = 0; o < m; o++) memcpy(canon + (size_t)o * cp, wt + (size_t)o * inputs, (size_t)inputs);
    cn_i8_pack(ks, canon, m, 1, cp, packed, comp);
    cn_i8_conv_geom g = {.in_h = 1, .in_w = n, .in_cp = cp, .k = 1, .stride = 1, .out_h = 1, .out_w = n, .out_c = m,
                         .q_pix = (size_t)mp, .f_pix = (size_t)m, .f_chan = 1};
    cn_i8_epilogue ep = {.comp = comp, .mult = mult, .bias = bias, .relu = relu};
    ks->conv(&g, packed, &ep, biased, to_float ? NULL : qout, fout);
    int same = 1;
    for (int i = 0; i < n; i++)
        for (int o = 0; o < m; o++)
            same &= to_float ? memcmp(&fout[(size_t)i * m + o], &fref[(size_t)i * m + o], sizeof(float)) == 0
                             : qout[(size_t)i * mp + o] - CN_I8_ZERO == qref[(size_t)i * m + o];
    free(in); free(wt); free(qref); free(canon); free(biased); free(qout); free(mult); free(bias); free(fref); free(fout);
    free(comp); free(packed);
    return same;
}

TEST(linear_matches_export_helpers) {
    for (size_t s = 0; s < sizeof sets / sizeof *sets; s++) {
        if (cn_i8_kernels_select(sets[s]) != 0) continue;
        cn_rng_seed(&rng, 12);
        for (int trial = 0; trial < 40; trial++) {
            int n = rnd(1, 20), inputs = rnd(1, 700), m = rnd(1, 40), relu = trial & 1, to_float = trial % 3 == 0;
            CHECK_MSG(check_linear(n, inputs, m, relu, to_float, 0), "%s trial %d: n %d inputs %d m %d", sets[s], trial, n,
                      inputs, m);
        }
        /* biased sums of 255 * 127 * 70,000 pass 2^31; the true sums do not */
        CHECK_MSG(check_linear(3, 70000, 17, 0, 1, 1), "%s: sums that wrap on the way", sets[s]);
        CHECK_MSG(check_linear(3, 70000, 17, 1, 0, 1), "%s: sums that wrap on the way, int8 out", sets[s]);
    }
    cn_i8_kernels_select(NULL);
}

TEST(pooling_and_relu_match_export_helpers) {
    cn_rng_seed(&rng, 13);
    for (int trial = 0; trial < 60; trial++) {
        int c = rnd(1, 20), h = rnd(2, 13), w = rnd(2, 13), k = rnd(1, 3), s = rnd(1, 3), cp = (c + 3) / 4 * 4;
        if (k > h) k = h;
        if (k > w) k = w;
        int p = rnd(0, k / 2), oh = (h + 2 * p - k) / s + 1, ow = (w + 2 * p - k) / s + 1;
        int8_t in[20 * 13 * 13], ref[20 * 14 * 14];
        uint8_t biased[20 * 13 * 13], out[20 * 14 * 14];
        for (int i = 0; i < c * h * w; i++) in[i] = (int8_t)rnd(-127, 127);
        for (int ch = 0; ch < cp; ch++)
            for (int i = 0; i < h * w; i++) biased[i * cp + ch] = ch < c ? (uint8_t)(in[ch * h * w + i] + CN_I8_ZERO) : CN_I8_ZERO;
        cn_i8_ref_maxpool_q(in, ref, c, h, w, k, s, p, oh, ow);
        cn_i8_maxpool(biased, h, w, cp, k, s, p, oh, ow, out, (size_t)ow * cp, (size_t)cp);
        int same = 1;
        for (int ch = 0; ch < c; ch++)
            for (int i = 0; i < oh * ow; i++) same &= out[i * cp + ch] - CN_I8_ZERO == ref[ch * oh * ow + i];
        CHECK_MSG(same, "trial %d: c %d %dx%d k %d s %d p %d", trial, c, h, w, k, s, p);
    }
    for (int trial = 0; trial < 30; trial++) {   /* global average pooling */
        int c = rnd(1, 70), plane = rnd(1, 60), cp = (c + 3) / 4 * 4;
        int8_t in[70 * 60], ref[70];
        uint8_t biased[72 * 60], out[72];
        for (int i = 0; i < c * plane; i++) in[i] = (int8_t)rnd(-127, 127);
        for (int i = 0; i < plane; i++)
            for (int ch = 0; ch < cp; ch++) biased[i * cp + ch] = ch < c ? (uint8_t)(in[ch * plane + i] + CN_I8_ZERO) : 7;
        export_op o = {.kind = OP_GAP, .in = {c, plane, 1}, .out = {c, 1, 1}, .s_in = rndf(0.01f, 0.1f), .s_out = rndf(0.005f, 0.1f)};
        cn_i8_ref_int8_op(&o, in, ref);
        cn_i8_gap(biased, plane, cp, c, o.s_in / o.s_out, out);
        int same = 1;
        for (int ch = 0; ch < c; ch++) same &= out[ch] - CN_I8_ZERO == ref[ch];
        CHECK_MSG(same, "gap trial %d: c %d plane %d", trial, c, plane);
    }
    uint8_t x[300];
    for (int i = 0; i < 300; i++) x[i] = (uint8_t)(i % 255 + 1);
    cn_i8_relu(x, 300);
    int ok = 1;
    for (int i = 0; i < 300; i++) ok &= x[i] == (i % 255 + 1 > CN_I8_ZERO ? i % 255 + 1 : CN_I8_ZERO);
    CHECK(ok);
}

/* The input's quantisation (the kernel set's quantise) against the export's q8 of
 * (x - mean) / std * inv_scale, on every set, for lengths around the vector widths. */
TEST(quantise_matches_export_q8) {
    cn_rng_seed(&rng, 14);
    float x[100];
    uint8_t out[100];
    for (size_t s = 0; s < sizeof sets / sizeof *sets; s++) {
        if (cn_i8_kernels_select(sets[s]) != 0) continue;
        for (int trial = 0; trial < 40; trial++) {
            int n = rnd(1, 100), same = 1;
            float mean = rndf(-0.5f, 0.5f), sd = rndf(0.1f, 2.0f), inv = rndf(5.0f, 80.0f);
            for (int i = 0; i < n; i++) x[i] = trial % 4 ? rndf(-1.0f, 2.0f) : (float)rnd(0, 255) / 255.0f;
            cn_i8_kernels()->quantise(x, (size_t)n, mean, sd, inv, out);
            for (int i = 0; i < n; i++) same &= out[i] - CN_I8_ZERO == cn_i8_ref_q8((x[i] - mean) / sd * inv);
            CHECK_MSG(same, "%s trial %d: n %d", sets[s], trial, n);
        }
    }
    cn_i8_kernels_select(NULL);
}

TEST(kernel_set_choice) {
    CHECK(cn_i8_kernels_select("generic") == 0);
    CHECK(!strcmp(cn_i8_kernels()->name, "generic"));
    CHECK(cn_i8_kernels_select("no-such-set") == -1);
    CHECK(cn_i8_kernels_select(NULL) == 0);
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512bw"))
        CHECK(!strcmp(cn_i8_kernels()->name, "avx512-vnni"));
}

int main(void) {
    RUN(conv_matches_export_helpers);
    RUN(linear_matches_export_helpers);
    RUN(pooling_and_relu_match_export_helpers);
    RUN(quantise_matches_export_q8);
    RUN(kernel_set_choice);
    return test_summary();
}
