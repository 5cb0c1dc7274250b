/* The C export's helpers (the files in src/io/export_c_runtime), run on the host: the DSP
 * variants of conv2d_q and linear_q (int8_dsp.c, with SMLAD/SXTB16 emulated in
 * portable C) give the portable ones' outputs exactly, a max pool fused into conv2d_q
 * gives conv2d_q then maxpool_q, the joins (add, concat and their int8 forms) compute
 * what their comments say, and the strings embedded at build time
 * (build/gen/export_c_runtime.h) are the files' text. */
#include "harness.h"
#include "io/export_c_runtime/float.c"
#include "io/export_c_runtime/int8_dsp.c"
#include "export_c_runtime.h"
#include "core/rng.h"

static cn_rng rng;
static int rnd(int lo, int hi) { return lo + (int)(cn_rng_uniform(&rng) * (hi - lo + 1)) % (hi - lo + 1); }

TEST(emulated_dsp_instructions) {
    /* halves (3, -2) . (1000, -7) + 5; bytes 0x80 and 0x7f sign-extend to -128 and 127 */
    CHECK(emu_smlad((int32_t)(3u | 0xfffeu << 16), (int32_t)(1000u | 0xfff9u << 16), 5) == 3 * 1000 + (-2) * (-7) + 5);
    CHECK(emu_sxtb16((int32_t)0x127f0180u) == (int32_t)0x007fff80u);
    static const int within[4] = {0, 2, 1, 3};
    for (int j = 0; j < 12; j++) CHECK(COL_AT(j, 12) == (j & ~3) + within[j & 3]);
    CHECK(COL_AT(13, 12) == 13);
}

/* conv2d_q, DSP variant against portable, on random int8 data of several shapes */
TEST(conv2d_q_dsp_matches_portable) {
    cn_rng_seed(&rng, 5);
    for (int trial = 0; trial < 60; trial++) {
        int c = rnd(1, 6), h = rnd(3, 12), w = rnd(3, 12), oc = rnd(1, 5), k = rnd(1, 3), s = rnd(1, 2), p = rnd(0, 1);
        int ch = (h + 2 * p - k) / s + 1, cw = (w + 2 * p - k) / s + 1, pool = trial % 3 == 0 && ch >= 2 && cw >= 2 ? 2 : 1;
        int oh = ch / pool, ow = cw / pool, relu = trial & 1, to_float = trial % 5 == 4 && pool == 1;
        int8_t in[6 * 12 * 12], wt[5 * 6 * 9], q1[5 * 144], q2[5 * 144];
        float mult[5], bias[5], f1[5 * 144], f2[5 * 144];
        int16_t col[6 * 9];
        for (int i = 0; i < c * h * w; i++) in[i] = (int8_t)rnd(-127, 127);
        for (int i = 0; i < oc * c * k * k; i++) wt[i] = (int8_t)rnd(-127, 127);
        for (int o = 0; o < oc; o++) { mult[o] = 0.001f * (float)rnd(1, 40); bias[o] = (float)rnd(-20, 20); }
        conv2d_q_generic(in, to_float ? NULL : q1, f1, wt, mult, bias, c, h, w, oc, k, s, p, oh, ow, relu, pool, NULL);
        conv2d_q(in, to_float ? NULL : q2, f2, wt, mult, bias, c, h, w, oc, k, s, p, oh, ow, relu, pool, col);
        int n = oc * oh * ow, same = 1;
        for (int i = 0; i < n; i++) same &= to_float ? f1[i] == f2[i] : q1[i] == q2[i];
        CHECK_MSG(same, "trial %d: c %d h %d w %d oc %d k %d s %d p %d pool %d", trial, c, h, w, oc, k, s, p, pool);
    }
}

TEST(linear_q_dsp_matches_portable) {
    cn_rng_seed(&rng, 6);
    for (int trial = 0; trial < 30; trial++) {
        int n = rnd(1, 70), m = rnd(1, 9), to_float = trial & 1;
        int8_t in[70], wt[9 * 70], q1[9], q2[9];
        float mult[9], bias[9], f1[9], f2[9];
        int16_t col[70];
        for (int i = 0; i < n; i++) in[i] = (int8_t)rnd(-127, 127);
        for (int i = 0; i < n * m; i++) wt[i] = (int8_t)rnd(-127, 127);
        for (int o = 0; o < m; o++) { mult[o] = 0.0005f * (float)rnd(1, 40); bias[o] = (float)rnd(-20, 20); }
        linear_q_generic(in, to_float ? NULL : q1, f1, wt, mult, bias, n, m, trial % 3 == 0, NULL);
        linear_q(in, to_float ? NULL : q2, f2, wt, mult, bias, n, m, trial % 3 == 0, col);
        for (int o = 0; o < m; o++) CHECK(to_float ? f1[o] == f2[o] : q1[o] == q2[o]);
    }
}

/* The grouped/dilated helpers against the plain ones: for each group, conv2d_q (int8) and
 * conv2d (float) on the group's input channels with the kernel dilated by inserting zeros
 * ((k-1)*d + 1 taps a side) give the group's output channels, exactly. */
TEST(grouped_dilated_match_plain_convs) {
    cn_rng_seed(&rng, 8);
    for (int trial = 0; trial < 60; trial++) {
        int groups = rnd(1, 4), cg = rnd(1, 3), og = rnd(1, 3), c = groups * cg, oc = groups * og;
        int k = rnd(1, 3), d = rnd(1, 3), s = rnd(1, 2), p = rnd(0, 2), span = (k - 1) * d + 1;
        int h = rnd(span, 10), w = rnd(span, 10);
        if (h + 2 * p < span || w + 2 * p < span) continue;
        int oh = (h + 2 * p - span) / s + 1, ow = (w + 2 * p - span) / s + 1, relu = trial & 1;
        int8_t in[12 * 100], wt[12 * 3 * 9], wd[3 * 3 * 49], q1[12 * 196], q2[12 * 196];
        float fin[12 * 100], fwt[12 * 3 * 9], fwd[3 * 3 * 49], f1[12 * 196], f2[12 * 196], mult[12], bias[12];
        for (int i = 0; i < c * h * w; i++) { in[i] = (int8_t)rnd(-127, 127); fin[i] = 0.01f * (float)in[i]; }
        for (int i = 0; i < oc * cg * k * k; i++) { wt[i] = (int8_t)rnd(-127, 127); fwt[i] = 0.003f * (float)wt[i]; }
        for (int o = 0; o < oc; o++) { mult[o] = 0.001f * (float)rnd(1, 40); bias[o] = (float)rnd(-20, 20); }
        conv2d_gq_generic(in, q1, NULL, wt, mult, bias, c, h, w, oc, k, s, p, oh, ow, relu, 1, groups, d, NULL);
        conv2d_grouped(fin, f1, fwt, bias, c, h, w, oc, k, s, p, oh, ow, relu, groups, d);
        for (int g = 0; g < groups; g++) {
            memset(wd, 0, sizeof wd);
            memset(fwd, 0, sizeof fwd);
            for (int o = 0; o < og; o++)
                for (int i = 0; i < cg; i++)
                    for (int ky = 0; ky < k; ky++)
                        for (int kx = 0; kx < k; kx++) {
                            int src = (((g * og + o) * cg + i) * k + ky) * k + kx, dst = ((o * cg + i) * span + ky * d) * span + kx * d;
                            wd[dst] = wt[src];
                            fwd[dst] = fwt[src];
                        }
            size_t in_off = (size_t)g * cg * h * w, out_off = (size_t)g * og * oh * ow;
            conv2d_q_generic(in + in_off, q2 + out_off, NULL, wd, mult + g * og, bias + g * og, cg, h, w, og, span, s, p, oh, ow,
                             relu, 1, NULL);
            conv2d(fin + in_off, f2 + out_off, fwd, bias + g * og, cg, h, w, og, span, s, p, oh, ow, relu);
        }
        int n = oc * oh * ow;
        CHECK_MSG(!memcmp(q1, q2, (size_t)n), "int8 trial %d: groups %d cg %d og %d k %d d %d s %d p %d h %d w %d", trial,
                  groups, cg, og, k, d, s, p, h, w);
        CHECK_MSG(!memcmp(f1, f2, (size_t)n * sizeof *f1), "float trial %d: groups %d k %d d %d", trial, groups, k, d);
    }
}

/* conv2d_gq, DSP variant against portable: groups, dilation, a fused pool, float output */
TEST(conv2d_gq_dsp_matches_portable) {
    cn_rng_seed(&rng, 9);
    for (int trial = 0; trial < 60; trial++) {
        int groups = rnd(1, 4), cg = rnd(1, 3), og = rnd(1, 3), c = groups * cg, oc = groups * og;
        int k = rnd(1, 3), d = rnd(1, 2), s = rnd(1, 2), p = rnd(0, 2), span = (k - 1) * d + 1;
        int h = rnd(span + 1, 10), w = rnd(span + 1, 10);
        int ch = (h + 2 * p - span) / s + 1, cw = (w + 2 * p - span) / s + 1, pool = trial % 3 == 0 && ch >= 2 && cw >= 2 ? 2 : 1;
        int oh = ch / pool, ow = cw / pool, relu = trial & 1, to_float = trial % 5 == 4 && pool == 1;
        int8_t in[12 * 100], wt[12 * 3 * 9], q1[12 * 196], q2[12 * 196];
        float mult[12], bias[12], f1[12 * 196], f2[12 * 196];
        int16_t col[3 * 9];
        for (int i = 0; i < c * h * w; i++) in[i] = (int8_t)rnd(-127, 127);
        for (int i = 0; i < oc * cg * k * k; i++) wt[i] = (int8_t)rnd(-127, 127);
        for (int o = 0; o < oc; o++) { mult[o] = 0.001f * (float)rnd(1, 40); bias[o] = (float)rnd(-20, 20); }
        conv2d_gq_generic(in, to_float ? NULL : q1, f1, wt, mult, bias, c, h, w, oc, k, s, p, oh, ow, relu, pool, groups, d, NULL);
        conv2d_gq(in, to_float ? NULL : q2, f2, wt, mult, bias, c, h, w, oc, k, s, p, oh, ow, relu, pool, groups, d, col);
        int n = oc * oh * ow, same = 1;
        for (int i = 0; i < n; i++) same &= to_float ? f1[i] == f2[i] : q1[i] == q2[i];
        CHECK_MSG(same, "trial %d: groups %d cg %d og %d k %d d %d s %d p %d pool %d", trial, groups, cg, og, k, d, s, p, pool);
    }
}

/* relu6_q clamps to [0, top]; leaky_relu_q scales negative values only, rounding as q8 */
TEST(relu6_and_leaky_relu_int8) {
    int8_t x[5] = {-100, -3, 0, 20, 90}, y[5];
    memcpy(y, x, sizeof x);
    relu6_q(y, 5, 37);
    CHECK(y[0] == 0 && y[1] == 0 && y[2] == 0 && y[3] == 20 && y[4] == 37);
    memcpy(y, x, sizeof x);
    leaky_relu_q(y, 5, 0.1f);
    CHECK(y[0] == -10 && y[1] == 0 && y[2] == 0 && y[3] == 20 && y[4] == 90);   /* -0.3 rounds to 0 */
    float f[4] = {-2.0f, 0.0f, 3.0f, 7.5f};
    relu6(f, 4);
    CHECK(f[0] == 0.0f && f[1] == 0.0f && f[2] == 3.0f && f[3] == 6.0f);
    float g[3] = {-2.0f, 0.5f, -0.0f};
    leaky_relu(g, 3, 0.25f);
    CHECK(g[0] == -0.5f && g[1] == 0.5f && g[2] == 0.0f);
}

/* The joins: add sums in PyTorch's order, ReLU after; concat copies along channels; add_q
 * takes each input times its rescale, sums in float and rounds once (half away from zero,
 * saturated); concat_q rounds each value into the output scale (rescale 1 keeps it). */
TEST(joins) {
    float a[3] = {1.0f, -2.0f, 1e8f}, b[3] = {0.5f, 1.0f, 1.0f}, c[3] = {0.25f, 0.5f, -1e8f}, y[3];
    const float *two[2] = {a, b}, *three[3] = {a, b, c};
    add(two, 2, y, 3, 1);
    CHECK(y[0] == 1.5f && y[1] == 0.0f && y[2] == 1e8f);
    add(three, 3, y, 3, 0);
    CHECK(y[0] == 1.75f && y[1] == -0.5f && y[2] == 0.0f);   /* (1e8 + 1) - 1e8: the 1 is lost, as in PyTorch */
    float cat[5];
    const int sizes[2] = {3, 2};
    concat(two, sizes, 2, cat);
    CHECK(cat[0] == 1.0f && cat[2] == 1e8f && cat[3] == 0.5f && cat[4] == 1.0f);
    int8_t qa[4] = {10, -10, 127, 3}, qb[4] = {5, 5, 127, -3}, qy[4], qc[8];
    const int8_t *qtwo[2] = {qa, qb};
    const float r[2] = {0.5f, 0.25f};
    add_q(qtwo, r, 2, qy, 4, 0);
    CHECK(qy[0] == 6 && qy[1] == -4 && qy[2] == 95 && qy[3] == 1);   /* 6.25, -3.75, 95.25, 0.75 */
    add_q(qtwo, (const float[]){1.0f, 1.0f}, 2, qy, 4, 1);
    CHECK(qy[0] == 15 && qy[1] == 0 && qy[2] == 127 && qy[3] == 0);  /* -5 ReLU'd, 254 saturated */
    const int qsizes[2] = {4, 4};
    concat_q(qtwo, qsizes, (const float[]){1.0f, 0.5f}, 2, qc);
    CHECK(!memcmp(qc, qa, 4) && qc[4] == 3 && qc[5] == 3 && qc[6] == 64 && qc[7] == -2);   /* 2.5 -> 3, -1.5 -> -2 */
    int8_t qd[4];
    copy_q(qa, qd, 4);
    CHECK(!memcmp(qd, qa, 4));
    float fd[3];
    copy(a, fd, 3);
    CHECK(!memcmp(fd, a, sizeof a));
}

/* conv2d_q with pool 2 = conv2d_q, then maxpool_q 2x2 stride 2 (odd sizes drop the last row/column) */
TEST(fused_max_pool_matches_two_steps) {
    cn_rng_seed(&rng, 7);
    for (int trial = 0; trial < 20; trial++) {
        int c = rnd(1, 4), h = rnd(4, 11), w = rnd(4, 11), oc = rnd(1, 4), relu = trial & 1;
        int ch = h - 2, cw = w - 2, oh = ch / 2, ow = cw / 2;
        int8_t in[4 * 121], wt[4 * 4 * 9], conv[4 * 81], pooled[4 * 25], fused[4 * 25];
        float mult[4], bias[4];
        for (int i = 0; i < c * h * w; i++) in[i] = (int8_t)rnd(-127, 127);
        for (int i = 0; i < oc * c * 9; i++) wt[i] = (int8_t)rnd(-127, 127);
        for (int o = 0; o < oc; o++) { mult[o] = 0.002f * (float)rnd(1, 20); bias[o] = (float)rnd(-30, 30); }
        conv2d_q_generic(in, conv, NULL, wt, mult, bias, c, h, w, oc, 3, 1, 0, ch, cw, relu, 1, NULL);
        maxpool_q(conv, pooled, oc, ch, cw, 2, 2, 0, oh, ow);
        conv2d_q_generic(in, fused, NULL, wt, mult, bias, c, h, w, oc, 3, 1, 0, oh, ow, relu, 2, NULL);
        CHECK_MSG(!memcmp(pooled, fused, (size_t)(oc * oh * ow)), "trial %d", trial);
    }
}

/* Every embedded helper is a verbatim part of one of the runtime files. */
TEST(embedded_text_is_the_files_text) {
    static const char *const files[] = {"src/io/export_c_runtime/float.c", "src/io/export_c_runtime/int8.c",
                                        "src/io/export_c_runtime/int8_dsp.c"};
    char *text[3];
    for (int f = 0; f < 3; f++) {
        FILE *fp = fopen(files[f], "rb");
        text[f] = calloc(1 << 17, 1);
        CHECK_MSG(fp != NULL, "%s", files[f]);
        if (fp) { (void)!fread(text[f], 1, (1 << 17) - 1, fp); fclose(fp); }
    }
    int count = (int)(sizeof c_runtime_helpers / sizeof c_runtime_helpers[0]);
    CHECK(count == 34);
    for (int k = 0; k < count; k++) {
        int found = 0;
        for (int f = 0; f < 3; f++) found |= strstr(text[f], c_runtime_helpers[k].text) != NULL;
        CHECK_MSG(found, "helper %s", c_runtime_helpers[k].name);
        CHECK_MSG(strstr(c_runtime_helpers[k].text, "@helper") == NULL, "helper %s holds a marker", c_runtime_helpers[k].name);
    }
    for (int f = 0; f < 3; f++) free(text[f]);
}

int main(void) {
    RUN(emulated_dsp_instructions);
    RUN(conv2d_q_dsp_matches_portable);
    RUN(linear_q_dsp_matches_portable);
    RUN(grouped_dilated_match_plain_convs);
    RUN(conv2d_gq_dsp_matches_portable);
    RUN(relu6_and_leaky_relu_int8);
    RUN(fused_max_pool_matches_two_steps);
    RUN(joins);
    RUN(embedded_text_is_the_files_text);
    return test_summary();
}
