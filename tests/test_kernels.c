/* Fast kernels against plain reference loops.
 *
 * Layers are run through a one-layer model (forward, then backward with a
 * random output gradient) on many shapes: 1-64 channels, odd sizes, 1x1 to
 * 5x5 kernels, padding 0-2, strides 1 and 2, with and without bias; every
 * kernel set this CPU supports (AVX-512, AVX2, generic) is forced in turn.
 * The references accumulate in double; a result passes when it is within
 * float rounding of the sum of absolute terms. */
#include "harness.h"
#include "model.h"
#include "exec/session.h"
#include "exec/plan.h"
#include "kernels/kernels.h"
#include "core/rng.h"
#include "loss.h"

#define REL 2e-6    /* allowed error per unit of sum(|terms|): a few float ulps over long sums */

static const char *const kernel_sets[] = { "avx512", "avx2", "generic" };

typedef struct { int ic, h, w, oc, k, pad, stride, bias; } conv_case;

/* Reference conv2d, double accumulation; *mag gets sum |w x| per output. */
static void ref_conv_forward(const conv_case *cc, int oh, int ow, const float *x, const float *w, const float *bias,
                             double *y, double *mag) {
    for (int oc = 0; oc < cc->oc; oc++)
        for (int oy = 0; oy < oh; oy++)
            for (int ox = 0; ox < ow; ox++) {
                double s = bias ? bias[oc] : 0.0, a = bias ? fabs(bias[oc]) : 0.0;
                for (int ic = 0; ic < cc->ic; ic++)
                    for (int ky = 0; ky < cc->k; ky++)
                        for (int kx = 0; kx < cc->k; kx++) {
                            int iy = oy * cc->stride - cc->pad + ky, ix = ox * cc->stride - cc->pad + kx;
                            if (iy < 0 || iy >= cc->h || ix < 0 || ix >= cc->w) continue;
                            double t = (double)w[((oc * cc->ic + ic) * cc->k + ky) * cc->k + kx] * x[(ic * cc->h + iy) * cc->w + ix];
                            s += t; a += fabs(t);
                        }
                size_t o = ((size_t)oc * oh + oy) * ow + ox;
                y[o] = s; mag[o] = a;
            }
}

/* Reference gradients of one sample, accumulated into dw/db (and written to dx). */
static void ref_conv_backward(const conv_case *cc, int oh, int ow, const float *x, const float *w, const float *dy,
                              double *dx, double *dx_mag, double *dw, double *dw_mag, double *db, double *db_mag) {
    for (int oc = 0; oc < cc->oc; oc++)
        for (int oy = 0; oy < oh; oy++)
            for (int ox = 0; ox < ow; ox++) {
                double g = dy[((size_t)oc * oh + oy) * ow + ox];
                if (db) { db[oc] += g; db_mag[oc] += fabs(g); }
                for (int ic = 0; ic < cc->ic; ic++)
                    for (int ky = 0; ky < cc->k; ky++)
                        for (int kx = 0; kx < cc->k; kx++) {
                            int iy = oy * cc->stride - cc->pad + ky, ix = ox * cc->stride - cc->pad + kx;
                            if (iy < 0 || iy >= cc->h || ix < 0 || ix >= cc->w) continue;
                            size_t wi = ((size_t)(oc * cc->ic + ic) * cc->k + ky) * cc->k + kx;
                            size_t xi = ((size_t)ic * cc->h + iy) * cc->w + ix;
                            dw[wi] += g * x[xi]; dw_mag[wi] += fabs(g * x[xi]);
                            dx[xi] += g * w[wi]; dx_mag[xi] += fabs(g * w[wi]);
                        }
            }
}

static int close_enough(float got, double want, double mag) {
    return fabs((double)got - want) <= REL * mag + 1e-30 && !isnan(got);
}

/* Compares n outputs; reports the first mismatch. */
static int compare(const char *what, const conv_case *cc, const char *set, const float *got, const double *want,
                   const double *mag, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!close_enough(got[i], want[i], mag[i])) {
            fprintf(stderr, "  %s [%s] ic=%d %dx%d oc=%d k=%d pad=%d stride=%d bias=%d: [%zu] %.9g, expected %.9g (mag %.3g)\n",
                    what, set, cc->ic, cc->h, cc->w, cc->oc, cc->k, cc->pad, cc->stride, cc->bias, i, got[i], want[i], mag[i]);
            return 0;
        }
    return 1;
}

static void fill(float *x, size_t n, cn_rng *rng) {
    for (size_t i = 0; i < n; i++) x[i] = 2.0f * cn_rng_uniform(rng) - 1.0f;
}

/* Runs one case with one kernel set and thread count; returns 1 when every output matches. */
static int check_conv_case(const conv_case *cc, const char *set, int threads, int batch) {
    char spec[160];
    snprintf(spec, sizeof spec, "input %dx%dx%d\nconv2d out=%d k=%d pad=%d stride=%d bias=%s\nflatten\n",
             cc->ic, cc->h, cc->w, cc->oc, cc->k, cc->pad, cc->stride, cc->bias ? "true" : "false");
    cn_model *m;
    if (cn_model_from_spec(spec, "test", 11, &m) != CN_OK) { fprintf(stderr, "  spec: %s\n", cn_last_error()); return 0; }
    cn_session *s;
    if (cn_session_create(m, batch, threads, 0, &s) != CN_OK) { cn_model_free(m); return 0; }
    cn_session_set_training(s, true);
    const cn_layer *l = &m->layers[0];
    int oh = l->out.h, ow = l->out.w;
    size_t in_n = (size_t)cc->ic * cc->h * cc->w, out_n = (size_t)cc->oc * oh * ow, w_n = l->weight_count;
    cn_rng rng;
    cn_rng_seed(&rng, 1234 + cc->ic * 7 + cc->oc);
    float *x = malloc(batch * in_n * sizeof *x), *dy = malloc(batch * out_n * sizeof *dy);
    float *dx = malloc(batch * in_n * sizeof *dx);
    double *want = calloc(batch * (out_n > in_n ? out_n : in_n), sizeof *want);
    double *mag = calloc(batch * (out_n > in_n ? out_n : in_n), sizeof *mag);
    double *dw = calloc(w_n, sizeof *dw), *dw_mag = calloc(w_n, sizeof *dw_mag);
    double *db = calloc(cc->oc, sizeof *db), *db_mag = calloc(cc->oc, sizeof *db_mag);
    fill(x, batch * in_n, &rng);
    fill(dy, batch * out_n, &rng);
    fill(m->params, m->num_params, &rng);
    const float *w = m->params + l->weight_offset, *bias = cc->bias ? m->params + l->bias_offset : NULL;

    int ok = 1;
    const float *y = cn_session_forward(s, x, batch, NULL);
    for (int b = 0; b < batch; b++)
        ref_conv_forward(cc, oh, ow, x + b * in_n, w, bias, want + b * out_n, mag + b * out_n);
    ok &= compare("forward", cc, set, y, want, mag, batch * out_n);

    cn_session_backward_input(s, dy, batch, dx);
    memset(want, 0, batch * in_n * sizeof *want);
    memset(mag, 0, batch * in_n * sizeof *mag);
    for (int b = 0; b < batch; b++)
        ref_conv_backward(cc, oh, ow, x + b * in_n, w, dy + b * out_n, want + b * in_n, mag + b * in_n, dw, dw_mag,
                          bias ? db : NULL, db_mag);
    ok &= compare("grad input", cc, set, dx, want, mag, batch * in_n);
    ok &= compare("grad weight", cc, set, cn_session_grads(s) + l->weight_offset, dw, dw_mag, w_n);
    if (bias) ok &= compare("grad bias", cc, set, cn_session_grads(s) + l->bias_offset, db, db_mag, cc->oc);

    free(x); free(dy); free(dx); free(want); free(mag); free(dw); free(dw_mag); free(db); free(db_mag);
    cn_session_free(s);
    cn_model_free(m);
    return ok;
}

static const conv_case conv_cases[] = {
    /* the presets' layers */
    {1, 28, 28, 16, 3, 1, 1, 1}, {16, 14, 14, 32, 3, 1, 1, 1}, {32, 7, 7, 40, 3, 1, 1, 1},
    {1, 28, 28, 8, 3, 1, 1, 0}, {8, 28, 28, 16, 3, 0, 1, 0}, {16, 13, 13, 8, 1, 1, 1, 0},
    {8, 15, 15, 16, 3, 0, 1, 0}, {16, 13, 13, 32, 3, 0, 1, 0}, {32, 11, 11, 32, 3, 0, 1, 0},
    {32, 9, 9, 10, 3, 0, 1, 0}, {8, 26, 26, 8, 3, 0, 1, 0}, {16, 4, 4, 32, 3, 0, 1, 0},
    {32, 2, 2, 10, 1, 0, 1, 0}, {16, 26, 26, 32, 3, 0, 1, 1}, {40, 5, 5, 24, 1, 0, 1, 1},
    {20, 14, 14, 28, 3, 1, 1, 1}, {28, 7, 7, 64, 3, 1, 1, 1},
    /* odd shapes */
    {1, 1, 1, 2, 1, 0, 1, 1}, {3, 5, 7, 5, 3, 1, 1, 1}, {2, 9, 4, 17, 3, 2, 1, 0}, {5, 6, 6, 3, 5, 2, 1, 1},
    {64, 3, 3, 64, 3, 1, 1, 1}, {7, 11, 13, 33, 1, 0, 1, 1}, {9, 10, 10, 49, 3, 0, 1, 0}, {1, 3, 3, 2, 3, 0, 1, 1},
    {4, 8, 8, 6, 1, 2, 1, 1}, {3, 5, 5, 4, 5, 0, 1, 0}, {13, 17, 5, 15, 3, 1, 1, 1}, {2, 31, 31, 3, 3, 1, 1, 0},
    /* strides other than 1 (im2col fallback) */
    {2, 7, 7, 2, 5, 2, 2, 1}, {3, 9, 8, 4, 3, 1, 2, 0}, {4, 6, 6, 5, 1, 0, 2, 1},
};

/* Every case with every usable kernel set, or (all_sets 0) with the native one only. */
static void conv_cases_on_sets(int threads, int batch, int all_sets) {
    for (size_t s = 0; s < sizeof kernel_sets / sizeof kernel_sets[0]; s++) {
        if (cn_kernels_select(kernel_sets[s]) != 0) continue;
        int ok = 1;
        for (size_t i = 0; i < sizeof conv_cases / sizeof conv_cases[0] && ok; i++)
            CHECK(ok = check_conv_case(&conv_cases[i], kernel_sets[s], threads, batch));
        if (!all_sets) break;
    }
    cn_kernels_select(NULL);
}

TEST(conv_matches_reference_1_thread) { conv_cases_on_sets(1, 3, 1); }
TEST(conv_matches_reference_2_threads) { conv_cases_on_sets(2, 5, 0); }

TEST(kernel_set_selection) {
    CHECK(cn_kernels_select("generic") == 0);
    CHECK(!strcmp(cn_kernels()->name, "generic"));
    CHECK(cn_kernels_select("no-such-set") == -1);
    CHECK(cn_kernels_select(NULL) == 0);
    CHECK(cn_kernels() != NULL);
}

/* ---- Winograd F(2,3) and F(4,3) kernels (kernels.h) against a double-precision direct sum ---- */

typedef struct { int ic, oc, hp, wp, pad; } wino_case;   /* padded geometry; the source is pad smaller on each side */

/* w' (OC, IC, 3, 3) as the packers read w: w itself, or (transposed) w (IC', OC') = (OC, IC)... flipped. */
static float wino_weight(const float *w, const cn_conv_geom *g, int transposed, int oc, int ic, int ky, int kx) {
    return transposed ? w[(((size_t)ic * g->out_c + oc) * 3 + 2 - ky) * 3 + 2 - kx]
                      : w[(((size_t)oc * g->in_c + ic) * 3 + ky) * 3 + kx];
}

/* Output (oc, oy, ox) of g on x (zero-padded by pad) in double; *mag (if not NULL) gets sum |terms|. */
static double wino_reference(const cn_conv_geom *g, const float *x, const float *w, int pad, int transposed, int oc,
                             int oy, int ox, double *mag) {
    int h = g->hp - 2 * pad, w_src = g->wp - 2 * pad;
    double sum = 0.0, abs_sum = 0.0;
    for (int ic = 0; ic < g->in_c; ic++)
        for (int ky = 0; ky < 3; ky++)
            for (int kx = 0; kx < 3; kx++) {
                int iy = oy + ky - pad, ix = ox + kx - pad;
                if (iy < 0 || iy >= h || ix < 0 || ix >= w_src) continue;
                double t = (double)wino_weight(w, g, transposed, oc, ic, ky, kx) * x[((size_t)ic * h + iy) * w_src + ix];
                sum += t; abs_sum += fabs(t);
            }
    if (mag) *mag = abs_sum;
    return sum;
}

/* Both forms of ks on one geometry, tiles of m outputs; returns 1 when every valid output matches. */
static int check_wino_case(const cn_kernel_set *ks, const wino_case *wc, int m, int transposed, cn_rng *rng) {
    cn_conv_geom g = { .in_c = wc->ic, .out_c = wc->oc, .k = 3, .hp = wc->hp, .wp = wc->wp,
                       .out_h = wc->hp - 2, .out_w = wc->wp - 2, .wino_m = m };
    int ld = cn_round_up(g.out_c, ks->vec), pixels = g.out_h * g.out_w, os = cn_wino_out_stride(&g);
    int h = g.hp - 2 * wc->pad, w_src = g.wp - 2 * wc->pad;
    size_t x_n = (size_t)g.in_c * h * w_src, w_n = (size_t)g.in_c * g.out_c * 9;
    float *x = malloc(x_n * sizeof *x), *w = malloc(w_n * sizeof *w);
    float *v = malloc(cn_wino_input_floats(&g) * sizeof *v), *u = malloc(cn_wino_packed_floats(&g) * sizeof *u);
    float *ut = malloc(cn_wino_packed_channels_floats(&g, ld) * sizeof *ut);
    float *out_q = malloc((size_t)g.out_c * cn_wino_q_stride(&g) * sizeof *out_q);
    float *out_t = malloc((size_t)pixels * ld * sizeof *out_t);
    /* the pixel form again into compact planes (rows of m*wv floats: exact when m divides out_w),
     * with a bias, followed by guard values it must not touch */
    size_t compact_n = (size_t)g.out_c * g.out_h * os;
    float *compact = malloc((compact_n + 32) * sizeof *compact), *bias = malloc(g.out_c * sizeof *bias);
    for (size_t i = 0; i < compact_n + 32; i++) compact[i] = 12345.0f;
    fill(x, x_n, rng);
    fill(w, w_n, rng);
    fill(bias, g.out_c, rng);
    /* exact-size source, no slack: the transform must read inside it only (the sanitizer build checks) */
    ks->wino_input(&g, x, wc->pad, v);
    cn_wino_pack(ks, &g, w, transposed, u);
    ks->wino_conv(&g, u, v, out_q, cn_wino_q_stride(&g), NULL);
    ks->wino_conv(&g, u, v, compact, g.out_h * os, bias);
    cn_wino_pack_channels(&g, w, transposed, ld, ut);
    for (size_t i = 0; i < (size_t)pixels * ld; i++) out_t[i] = NAN;
    ks->wino_channels(&g, ut, v, out_t, ld, NULL);
    int ok = 1;
    for (int oc = 0; oc < g.out_c && ok; oc++)
        for (int oy = 0; oy < g.out_h && ok; oy++)
            for (int ox = 0; ox < g.out_w && ok; ox++) {
                double want = wino_reference(&g, x, w, wc->pad, transposed, oc, oy, ox, NULL), mag = 0.0;
                /* F(4,3) computes a tile's outputs together, scaling by up to 8 on the way: its
                 * rounding is measured against the whole tile's sum of |terms| (an output whose
                 * window holds only padding is then a few ulps of its neighbours, not exactly 0) */
                int t0 = m == 4 ? ox / 4 * 4 : ox, t1 = m == 4 ? t0 + 4 : ox + 1;
                for (int o = t0; o < t1 && o < g.out_w; o++) {
                    double part;
                    wino_reference(&g, x, w, wc->pad, transposed, oc, oy, o, &part);
                    mag += part;
                }
                float pixel = out_q[(size_t)oc * cn_wino_q_stride(&g) + oy * os + ox];
                float chan = out_t[(size_t)(oy * g.out_w + ox) * ld + oc];
                float with_bias = compact[((size_t)oc * g.out_h + oy) * os + ox];
                ok = close_enough(pixel, want, mag) && close_enough(chan, want, mag) &&
                     close_enough(with_bias, want + bias[oc], mag + fabs(bias[oc]));
                if (!ok)
                    fprintf(stderr, "  winograd F(%d,3) [%s] ic=%d oc=%d %dx%d pad=%d transposed=%d: (%d,%d,%d) pixel "
                            "form %.9g, channel form %.9g, expected %.9g\n", m, ks->name, g.in_c, g.out_c, g.hp, g.wp,
                            wc->pad, transposed, oc, oy, ox, pixel, chan, want);
            }
    for (int p = 0; p < pixels && ok; p++)
        for (int oc = g.out_c; oc < ld; oc++) ok &= out_t[(size_t)p * ld + oc] == 0.0f;
    for (size_t i = compact_n; i < compact_n + 32 && ok; i++) ok = compact[i] == 12345.0f;
    free(x); free(w); free(v); free(u); free(ut); free(out_q); free(out_t); free(compact); free(bias);
    return ok;
}

TEST(winograd_matches_direct_sum) {
    static const wino_case cases[] = {
        /* the presets' 3x3 layers (forward and backward-input geometries) */
        {1, 8, 30, 30, 1}, {8, 16, 28, 28, 0}, {8, 16, 15, 15, 0}, {16, 32, 13, 13, 0}, {32, 32, 11, 11, 0},
        {32, 10, 9, 9, 0}, {16, 8, 30, 30, 2}, {32, 16, 17, 17, 2}, {10, 32, 11, 11, 2}, {28, 64, 9, 9, 1},
        {64, 28, 9, 9, 1}, {40, 32, 9, 9, 1}, {20, 28, 16, 16, 1},
        /* odd shapes: one or two output columns, rows of more than 16 pairs, padding wider than
         * the source, 1-65 channels */
        {1, 1, 3, 3, 0}, {2, 3, 3, 4, 0}, {3, 5, 7, 9, 1}, {5, 33, 6, 36, 0}, {4, 3, 4, 41, 1}, {7, 65, 5, 8, 2},
        {9, 24, 12, 5, 2}, {2, 4, 5, 5, 2}, {3, 17, 40, 37, 1}, {1, 2, 7, 7, 3},
    };
    int tested = 0;
    for (size_t s = 0; s < sizeof kernel_sets / sizeof kernel_sets[0]; s++) {
        if (cn_kernels_select(kernel_sets[s]) != 0 || !cn_kernels()->wino_conv) continue;
        cn_rng rng;
        cn_rng_seed(&rng, 77);
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
            for (int m = 2; m <= 4; m += 2)
                for (int transposed = 0; transposed < 2; transposed++)
                    /* F(4,3) runs rows of up to CN_WINO4_MAX_TILES tiles */
                    if (m == 2 || (cases[i].wp - 2 + 3) / 4 <= CN_WINO4_MAX_TILES)
                        CHECK(check_wino_case(cn_kernels(), &cases[i], m, transposed, &rng));
        tested++;
    }
    cn_kernels_select(NULL);
    /* the AVX-512 set has the Winograd kernels; other sets use the direct ones */
    CHECK(tested == (cn_kernels_select("avx512") == 0));
    cn_kernels_select(NULL);
}

/* Backward twice on the same data gives bit-identical gradients (fixed reduction order). */
TEST(conv_backward_is_deterministic) {
    cn_model *m;
    if (cn_model_from_spec("input 8x12x12\nconv2d out=16 k=3 pad=1\nflatten\n", "test", 3, &m) != CN_OK) {
        CHECK_MSG(0, "%s", cn_last_error());
        return;
    }
    cn_session *s;
    CHECK(cn_session_create(m, 16, 2, 0, &s) == CN_OK);
    cn_session_set_training(s, true);
    size_t in_n = 16 * 8 * 144, out_n = 16 * 16 * 144;
    float *x = malloc(in_n * sizeof *x), *dy = malloc(out_n * sizeof *dy), *dx1 = malloc(in_n * sizeof *dx1);
    float *dx2 = malloc(in_n * sizeof *dx2), *g1 = malloc(m->num_params * sizeof *g1);
    cn_rng rng;
    cn_rng_seed(&rng, 5);
    fill(x, in_n, &rng);
    fill(dy, out_n, &rng);
    cn_session_forward(s, x, 16, NULL);
    cn_session_backward_input(s, dy, 16, dx1);
    memcpy(g1, cn_session_grads(s), m->num_params * sizeof *g1);
    cn_session_forward(s, x, 16, NULL);
    cn_session_backward_input(s, dy, 16, dx2);
    CHECK(memcmp(g1, cn_session_grads(s), m->num_params * sizeof *g1) == 0);
    CHECK(memcmp(dx1, dx2, in_n * sizeof *dx1) == 0);
    free(x); free(dy); free(dx1); free(dx2); free(g1);
    cn_session_free(s);
    cn_model_free(m);
}


/* Batch-norm running statistics (eval mode uses them): random means, variances > 0.5. */
static void fill_running_stats(cn_model *m, cn_rng *rng) {
    fill(m->buffers, m->num_buffers, rng);
    for (size_t i = 0; i < m->num_buffers; i++) m->buffers[i] = 0.5f + fabsf(m->buffers[i]);
}

/* ---- fused chains (fusion.h) against the same layers run one model at a time ---- */

/* Builds "input CxHxW\n<body>flatten\n". */
static cn_model *model_of(int c, int h, int w, const char *body) {
    char spec[256];
    snprintf(spec, sizeof spec, "input %dx%dx%d\n%sflatten\n", c, h, w, body);
    cn_model *m = NULL;
    if (cn_model_from_spec(spec, "test", 5, &m) != CN_OK) { fprintf(stderr, "  spec: %s\n", cn_last_error()); return NULL; }
    return m;
}

/* leader (conv2d or batchnorm2d line) + tail ("relu\n", "relu\nmaxpool2d k=2\n", ...) fused, against
 * the leader alone followed by the tail alone, both run unfused: outputs and gradients must be
 * bit-identical (up to rounding where batch-norm sums are reordered). */
static int check_chain(int c, int h, int w, const char *leader, const char *tail, bool training, int threads) {
    /* an identity layer first, so the leader's input gradient goes to the model's shared buffers */
    char body[256], first_body[128];
    snprintf(body, sizeof body, "dropout p=0\n%s%s", leader, tail);
    snprintf(first_body, sizeof first_body, "dropout p=0\n%s", leader);
    cn_model *fused = model_of(c, h, w, body), *first = model_of(c, h, w, first_body), *second = NULL;
    int ok = fused && first;
    if (ok) {
        /* two identity layers first: the tail's layers get the same indices as in the fused model
         * (a dropout layer's mask depends on its index) */
        char second_body[256];
        snprintf(second_body, sizeof second_body, "dropout p=0\ndropout p=0\n%s", tail);
        cn_shape mid = first->layers[1].out;
        second = model_of(mid.c, mid.h, mid.w, second_body);
        ok = second != NULL;
    }
    int batch = 6;
    cn_session *s_fused = NULL, *s_first = NULL, *s_second = NULL;
    if (ok) ok = cn_session_create(fused, batch, threads, 0, &s_fused) == CN_OK &&
                 cn_session_create(first, batch, threads, CN_SESSION_UNFUSED, &s_first) == CN_OK &&
                 cn_session_create(second, batch, threads, CN_SESSION_UNFUSED, &s_second) == CN_OK;
    if (!ok) {
        cn_session_free(s_fused); cn_session_free(s_first); cn_session_free(s_second);
        cn_model_free(fused); cn_model_free(first); cn_model_free(second);
        return 0;
    }
    size_t in_n = (size_t)batch * cn_shape_size(fused->input), mid_n = (size_t)batch * cn_shape_size(second->input);
    size_t out_n = (size_t)batch * cn_model_num_classes(fused);
    cn_rng rng;
    cn_rng_seed(&rng, 77);
    float *x = malloc(in_n * sizeof *x), *dy = malloc(out_n * sizeof *dy), *dx_f = malloc(in_n * sizeof *dx_f);
    float *dx_u = malloc(in_n * sizeof *dx_u), *mid = malloc(mid_n * sizeof *mid), *dmid = malloc(mid_n * sizeof *dmid);
    fill(x, in_n, &rng);
    fill(dy, out_n, &rng);
    for (size_t i = 0; i < in_n; i += 7) x[i] = 0.0f;    /* ties for the pool */
    fill(first->params, first->num_params, &rng);
    fill(second->params, second->num_params, &rng);
    /* the fused model's parameters: the leader's, then the tail's (state-dict order) */
    memcpy(fused->params, first->params, first->num_params * sizeof(float));
    memcpy(fused->params + first->num_params, second->params, second->num_params * sizeof(float));
    fill_running_stats(first, &rng);
    fill_running_stats(second, &rng);
    memcpy(fused->buffers, first->buffers, first->num_buffers * sizeof(float));
    memcpy(fused->buffers + first->num_buffers, second->buffers, second->num_buffers * sizeof(float));
    cn_session_set_training(s_fused, training);
    cn_session_set_training(s_first, training);
    cn_session_set_training(s_second, training);
    const float *y_f = cn_session_forward(s_fused, x, batch, NULL);
    memcpy(mid, cn_session_forward(s_first, x, batch, NULL), mid_n * sizeof *mid);
    const float *y_u = cn_session_forward(s_second, mid, batch, NULL);
    /* batch-norm sums (training) add the same terms in another order: equal up to rounding */
    bool reordered = training && ((strstr(leader, "batchnorm2d") && strstr(tail, "maxpool2d")) || strstr(tail, "batchnorm2d"));
    if (reordered)
        for (size_t i = 0; i < out_n && ok; i++) ok = fabsf(y_f[i] - y_u[i]) <= 1e-5f * (1.0f + fabsf(y_u[i]));
    else
        ok = memcmp(y_f, y_u, out_n * sizeof *y_f) == 0;
    if (!ok) fprintf(stderr, "  chain %s%s %dx%dx%d: forward differs\n", leader, tail, c, h, w);
    if (ok && training) {
        cn_session_backward_input(s_fused, dy, batch, dx_f);
        cn_session_backward_input(s_second, dy, batch, dmid);
        cn_session_backward_input(s_first, dmid, batch, dx_u);
        const float *g_f = cn_session_grads(s_fused), *g_1 = cn_session_grads(s_first), *g_2 = cn_session_grads(s_second);
        if (reordered) {
            for (size_t i = 0; i < in_n && ok; i++) ok = fabsf(dx_f[i] - dx_u[i]) <= 1e-5f * (1.0f + fabsf(dx_u[i]));
            for (size_t i = 0; i < first->num_params && ok; i++)
                ok = fabsf(g_f[i] - g_1[i]) <= 1e-5f * (1.0f + fabsf(g_1[i]));
            for (size_t i = 0; i < second->num_params && ok; i++)
                ok = fabsf(g_f[first->num_params + i] - g_2[i]) <= 1e-5f * (1.0f + fabsf(g_2[i]));
        } else {
            ok = memcmp(dx_f, dx_u, in_n * sizeof *dx_f) == 0 &&
                 memcmp(g_f, g_1, first->num_params * sizeof(float)) == 0 &&
                 memcmp(g_f + first->num_params, g_2, second->num_params * sizeof(float)) == 0;
        }
        if (!ok) fprintf(stderr, "  chain %s%s %dx%dx%d: gradients differ\n", leader, tail, c, h, w);
    }
    free(x); free(dy); free(dx_f); free(dx_u); free(mid); free(dmid);
    cn_session_free(s_fused); cn_session_free(s_first); cn_session_free(s_second);
    cn_model_free(fused); cn_model_free(first); cn_model_free(second);
    return ok;
}

TEST(fused_chains_match_separate_layers) {
    /* incl. a conv whose input is larger than its output (gradient buffers are shared between layers) */
    static const char *const leaders[] = { "conv2d out=5 k=3 pad=1\n", "conv2d out=16 k=3 bias=false\n",
                                           "conv2d out=3 k=1\n", "conv2d out=2 k=3\n", "batchnorm2d\n" };
    static const char *const tails[] = { "relu\n", "relu\nmaxpool2d k=2\n", "batchnorm2d\n", "relu\nbatchnorm2d\n",
                                         "batchnorm2d\nrelu\nmaxpool2d k=2\n", "relu\nconv2d out=4 k=3 pad=1\n",
                                         "relu\nbatchnorm2d\ndropout p=0.3\n", "batchnorm2d\ndropout p=0.3\nrelu\n",
                                         "relu\nbatchnorm2d\nrelu\nmaxpool2d k=2\n", "relu\nbatchnorm2d\nmaxpool2d k=2\n",
                                         "relu\nbatchnorm2d\ndropout p=0.3\nmaxpool2d k=2\n",
                                         "batchnorm2d\ndropout p=0.3\nconv2d out=4 k=3 pad=1\n" };
    enum { TAILS = sizeof tails / sizeof tails[0] };
    static const int sizes[][3] = { {3, 8, 8}, {2, 7, 9}, {16, 9, 9}, {4, 13, 6}, {1, 28, 28} };
    int native = 1;     /* the first usable set gets every case, the others the small ones with 1 thread */
    for (size_t s = 0; s < sizeof kernel_sets / sizeof kernel_sets[0]; s++) {
        if (cn_kernels_select(kernel_sets[s]) != 0) continue;
        for (size_t a = 0; a < 5; a++)
            for (size_t b = 0; b < TAILS; b++)
                for (size_t z = 0; z < (native ? 5u : 3u); z++)
                    for (int mode = 0; mode < 3; mode++)
                        if (native || mode != 1)
                            CHECK(check_chain(sizes[z][0], sizes[z][1], sizes[z][2], leaders[a], tails[b], mode != 2,
                                              mode == 1 ? 2 : 1));
        native = 0;
    }
    cn_kernels_select(NULL);
}

/* Whether, in eval, the conv after the leading dropout of "dropout p=0\n<leader><tail>flatten"
 * leads one chain over the whole tail with the batch norm first (fusion.h: bn_first), the
 * tail's layers doing nothing of their own. */
static bool conv_leads_bn_chain(int c, int h, int w, const char *leader, const char *tail) {
    char body[256];
    snprintf(body, sizeof body, "dropout p=0\n%s%s", leader, tail);
    cn_model *m = model_of(c, h, w, body);
    cn_plan plan = { 0 };
    bool ok = m && cn_plan_build(m, false, 0, &plan) == CN_OK;
    int L = ok ? m->num_layers : 0;     /* dropout, conv, the tail, flatten */
    ok = ok && plan.steps[1].forward && plan.steps[1].chain.bn_first && plan.steps[1].chain.length == L - 2 &&
         plan.steps[1].peer == 2;
    for (int i = 2; ok && i < L - 1; i++) ok = !plan.steps[i].forward;
    if (!ok) fprintf(stderr, "  chain %s%s %dx%dx%d: not fused in eval\n", leader, tail, c, h, w);
    if (m) cn_plan_free(&plan);
    cn_model_free(m);
    return ok;
}

/* Eval: a direct conv (3x3 on the pixel, channel and Winograd forms, 1x1, with and without
 * bias) followed by batchnorm2d, then relu, then a 2x2 max-pool (behind a dropout or not) is
 * one chain whose output pass applies the batch norm's affine map after the bias: outputs
 * bit-identical to the layers run alone (check_chain), on every kernel set, 1 and 2 threads. */
TEST(conv_bn_relu_fused_in_eval) {
    static const char *const leaders[] = { "conv2d out=5 k=3 pad=1\n", "conv2d out=16 k=3 bias=false\n",
                                           "conv2d out=3 k=1\n", "conv2d out=24 k=1 bias=false\n", "conv2d out=24 k=1\n",
                                           "conv2d out=32 k=3 pad=1\n", "conv2d out=32 k=3 pad=1 bias=false\n" };
    static const char *const tails[] = { "batchnorm2d\n", "batchnorm2d\nrelu\n", "batchnorm2d\nrelu\nmaxpool2d k=2\n",
                                         "batchnorm2d\nrelu\ndropout p=0.3\nmaxpool2d k=2\n" };
    static const int sizes[][3] = { {3, 8, 8}, {2, 7, 9}, {16, 9, 9}, {4, 13, 6}, {1, 28, 28} };
    enum { LEADERS = sizeof leaders / sizeof leaders[0], TAILS = sizeof tails / sizeof tails[0], SIZES = 5 };
    for (size_t a = 0; a < LEADERS; a++)
        for (size_t b = 0; b < TAILS; b++) CHECK(conv_leads_bn_chain(16, 9, 9, leaders[a], tails[b]));
    for (size_t s = 0; s < sizeof kernel_sets / sizeof kernel_sets[0]; s++) {
        if (cn_kernels_select(kernel_sets[s]) != 0) continue;
        for (size_t a = 0; a < LEADERS; a++)
            for (size_t b = 0; b < TAILS; b++)
                for (size_t z = 0; z < SIZES; z++)
                    for (int threads = 1; threads <= 2; threads++)
                        CHECK_MSG(check_chain(sizes[z][0], sizes[z][1], sizes[z][2], leaders[a], tails[b], false, threads),
                                  "%s, %d threads", kernel_sets[s], threads);
    }
    cn_kernels_select(NULL);
}

static void free_pair(cn_model *m[2], cn_session *s[2]) {
    for (int u = 0; u < 2; u++) { cn_session_free(s[u]); cn_model_free(m[u]); }
}

/* max |a - b| over n values, relative to max |b| */
static double max_rel_diff(const float *a, const float *b, size_t n) {
    double diff = 0.0, scale = 1e-30;
    for (size_t i = 0; i < n; i++) {
        diff = fmax(diff, fabs((double)a[i] - b[i]));
        scale = fmax(scale, fabs((double)b[i]));
    }
    return diff / scale;
}

/* Two models of `spec` with the same parameters, with sessions for `batch` samples on
 * threads[0] and threads[1] threads (flags[u]); 0 (all freed, an error reported) on failure. */
static int spec_pair(const char *spec, const char *name, int batch, const int threads[2], const unsigned flags[2],
                     cn_model *m[2], cn_session *s[2]) {
    m[0] = m[1] = NULL;
    s[0] = s[1] = NULL;
    int ok = 1;
    for (int u = 0; u < 2; u++)
        ok = ok && cn_model_from_spec(spec, name, 3, &m[u]) == CN_OK &&
             cn_session_create(m[u], batch, threads[u], flags[u], &s[u]) == CN_OK;
    if (!ok) {
        fprintf(stderr, "  %s: %s\n", name, cn_last_error());
        free_pair(m, s);
    }
    return ok;
}

static int preset_pair(int p, int batch, const int threads[2], const unsigned flags[2], cn_model *m[2], cn_session *s[2]) {
    return spec_pair(cn_preset_spec(p), cn_preset_name(p), batch, threads, flags, m, s);
}

/* The model of `spec`, fused (layers/fusion.h) against unfused: a training step's outputs,
 * parameter gradients and input gradient within rounding (batch-norm sums are reordered by
 * some fusions), eval outputs bit-identical; 1 and 2 threads. */
static void check_fused_matches_unfused(const char *spec, const char *name) {
    enum { BATCH = 5 };
    for (int threads = 1; threads <= 2; threads++) {
        cn_model *m[2];
        cn_session *s[2];
        int ok = spec_pair(spec, name, BATCH, (const int[2]){ threads, threads }, (const unsigned[2]){ 0, CN_SESSION_UNFUSED },
                           m, s);
        CHECK(ok);
        if (!ok) continue;
        cn_rng rng;
        cn_rng_seed(&rng, 21);
        size_t in_n = (size_t)BATCH * cn_shape_size(m[0]->input), out_n = (size_t)BATCH * cn_model_num_classes(m[0]);
        float *x = malloc(in_n * sizeof *x), *dy = malloc(out_n * sizeof *dy), *y[2], *dx[2];
        fill(x, in_n, &rng);
        fill(dy, out_n, &rng);
        fill_running_stats(m[0], &rng);
        memcpy(m[1]->buffers, m[0]->buffers, m[0]->num_buffers * sizeof(float));
        for (int u = 0; u < 2; u++) {
            y[u] = malloc(out_n * sizeof(float));
            dx[u] = malloc(in_n * sizeof(float));
            cn_session_set_training(s[u], false);
            memcpy(y[u], cn_session_forward(s[u], x, BATCH, NULL), out_n * sizeof(float));
        }
        CHECK_MSG(memcmp(y[0], y[1], out_n * sizeof(float)) == 0, "%s, %d threads: eval outputs differ", name, threads);
        for (int u = 0; u < 2; u++) {
            cn_session_set_training(s[u], true);
            cn_session_set_dropout_seed(s[u], 99);
            memcpy(y[u], cn_session_forward(s[u], x, BATCH, NULL), out_n * sizeof(float));
            cn_session_backward_input(s[u], dy, BATCH, dx[u]);
        }
        double dout = max_rel_diff(y[0], y[1], out_n), din = max_rel_diff(dx[0], dx[1], in_n);
        double dgrad = max_rel_diff(cn_session_grads(s[0]), cn_session_grads(s[1]), m[0]->num_params);
        CHECK_MSG(dout < 1e-5 && dgrad < 1e-4 && din < 1e-4,
                  "%s, %d threads: training step differs (outputs %.3g, gradients %.3g, input gradient %.3g)", name,
                  threads, dout, dgrad, din);
        free(x); free(dy); free(y[0]); free(y[1]); free(dx[0]); free(dx[1]);
        free_pair(m, s);
    }
}

/* Eval of the preset `name` with random parameters and batch-norm running statistics, fused
 * against unfused (every layer its own pass), on every kernel set, 1 and 2 threads: outputs
 * bit-identical. Every batch norm right after a direct conv is applied by the conv's pass. */
static void check_eval_fused_every_kernel_set(const char *name) {
    enum { BATCH = 5 };
    const char *spec = cn_preset_find(name);
    CHECK_MSG(spec != NULL, "no preset %s", name);
    for (size_t k = 0; spec && k < sizeof kernel_sets / sizeof kernel_sets[0]; k++) {
        if (cn_kernels_select(kernel_sets[k]) != 0) continue;
        for (int threads = 1; threads <= 2; threads++) {
            cn_model *m[2];
            cn_session *s[2];
            if (!spec_pair(spec, name, BATCH, (const int[2]){ threads, threads }, (const unsigned[2]){ 0, CN_SESSION_UNFUSED },
                           m, s)) {
                CHECK(0);
                continue;
            }
            cn_plan plan = { 0 };
            int absorbed = 0, after_conv = 0;
            CHECK(cn_plan_build(m[0], false, 0, &plan) == CN_OK);
            for (int i = 1; plan.steps && i < m[0]->num_layers; i++) {
                if (m[0]->layers[i].kind != CN_LAYER_BATCHNORM2D || !cn_conv_is_direct(&m[0]->layers[i - 1])) continue;
                after_conv++;
                absorbed += !plan.steps[i].forward && plan.steps[i - 1].chain.bn_first;
            }
            cn_plan_free(&plan);
            CHECK_MSG(after_conv > 0 && absorbed == after_conv, "%s: %d of %d batch norms after a direct conv fused",
                      name, absorbed, after_conv);
            cn_rng rng;
            cn_rng_seed(&rng, 33);
            fill(m[0]->params, m[0]->num_params, &rng);
            fill_running_stats(m[0], &rng);
            memcpy(m[1]->params, m[0]->params, m[0]->num_params * sizeof(float));
            memcpy(m[1]->buffers, m[0]->buffers, m[0]->num_buffers * sizeof(float));
            size_t in_n = (size_t)BATCH * cn_shape_size(m[0]->input), out_n = (size_t)BATCH * cn_model_num_classes(m[0]);
            float *x = malloc(in_n * sizeof *x), *y = malloc(out_n * sizeof *y);
            fill(x, in_n, &rng);
            for (int u = 0; u < 2; u++) cn_session_set_training(s[u], false);
            memcpy(y, cn_session_forward(s[0], x, BATCH, NULL), out_n * sizeof *y);
            CHECK_MSG(memcmp(y, cn_session_forward(s[1], x, BATCH, NULL), out_n * sizeof *y) == 0,
                      "%s, %s, %d threads: eval outputs differ", name, kernel_sets[k], threads);
            free(x); free(y);
            free_pair(m, s);
        }
    }
    cn_kernels_select(NULL);
}

TEST(presets_eval_fused_every_kernel_set) {
    static const char *const names[] = { "c20k", "ds8k", "fashion93", "seed000", "cifar-s9" };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) check_eval_fused_every_kernel_set(names[i]);
}

TEST(presets_fused_match_unfused) {
    for (int p = 0; p < cn_preset_count(); p++) check_fused_matches_unfused(cn_preset_spec(p), cn_preset_name(p));
}

/* Models with branches fuse within their plain runs (exec/plan.c): chains that end where a
 * value has several readers, chains right after a join, a dropout applied by its batch norm
 * inside a branch, pool chains on both sides of a concat. */
TEST(branched_fused_match_unfused) {
    static const char *const specs[] = {
        "input 3x12x12\nconv2d out=8 k=3 pad=1 bias=false\nbatchnorm2d\nrelu name=r0\n"
        "conv2d out=8 k=3 pad=1\nrelu\nbatchnorm2d\ndropout p=0.1\nmaxpool2d k=2 name=a\n"
        "conv2d out=4 k=1 from=r0\nbatchnorm2d\nrelu\nmaxpool2d k=2 name=b\nconcat from=a,b\n"
        "conv2d out=6 k=3 pad=1\nbatchnorm2d\nrelu\nflatten\nlinear out=5\n",
        "input 1x10x10\nconv2d out=6 k=3 pad=1\nrelu name=main\nconv2d out=6 k=3 pad=1\nrelu\n"
        "conv2d out=6 k=3 pad=1 name=s\nadd from=main,s\nrelu\nbatchnorm2d\nrelu name=t\n"
        "conv2d out=6 k=3 pad=1 from=t\nbatchnorm2d name=u\nadd from=t,u\nrelu\nmaxpool2d k=2\nflatten\nlinear out=3\n",
    };
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        char name[32];
        snprintf(name, sizeof name, "branched %zu", i);
        cn_model *m = NULL;
        cn_plan plan = { 0 };
        CHECK(cn_model_from_spec(specs[i], name, 3, &m) == CN_OK && cn_plan_build(m, true, 0, &plan) == CN_OK);
        int chains = 0, add_relu = 0, adds = 0, bn_by_add = 0;
        for (int l = 0; plan.steps && l < plan.num_layers; l++) {
            chains += plan.steps[l].chain.length > 1;
            bn_by_add += plan.steps[l].applied_by_add;
            if (m->layers[l].kind != CN_LAYER_ADD) continue;
            adds++;
            add_relu += plan.steps[l].chain.relu && !plan.steps[l + 1].forward && !plan.steps[l + 1].backward;
        }
        CHECK_MSG(plan.branched && chains >= 3, "%s: %d fused chains", name, chains);
        CHECK_MSG(add_relu == adds, "%s: %d of %d adds (each followed by relu) lead an add + relu chain", name, add_relu, adds);
        CHECK_MSG(bn_by_add == (i == 1), "%s: %d batch norms applied by an add", name, bn_by_add);   /* u in spec 1 */
        cn_plan_free(&plan);
        cn_model_free(m);
        check_fused_matches_unfused(specs[i], name);
    }
}

/* Eval mode with 2 threads runs groups of samples through the whole model on per-thread
 * workers (exec/passes.c): every preset's outputs equal the 1-thread batch pass bit for bit, for
 * a batch that is not a multiple of the group size; then a training step still works. */
TEST(eval_groups_match_batch_pass) {
    enum { BATCH = 37 };
    for (int p = 0; p < cn_preset_count(); p++) {
        cn_model *m[2];
        cn_session *s[2];
        int ok = preset_pair(p, BATCH, (const int[2]){ 2, 1 }, (const unsigned[2]){ 0, 0 }, m, s);
        CHECK(ok);
        if (!ok) continue;
        CHECK(cn_session_uses_team(s[0], BATCH) && !cn_session_uses_team(s[1], BATCH));
        cn_rng rng;
        cn_rng_seed(&rng, 5);
        size_t in_n = (size_t)BATCH * cn_shape_size(m[0]->input), out_n = (size_t)BATCH * cn_model_num_classes(m[0]);
        float *x = malloc(in_n * sizeof *x), *y = malloc(out_n * sizeof *y);
        fill(x, in_n, &rng);
        fill_running_stats(m[0], &rng);
        memcpy(m[1]->buffers, m[0]->buffers, m[0]->num_buffers * sizeof(float));
        for (int u = 0; u < 2; u++) cn_session_set_training(s[u], false);
        for (int pass = 0; pass < 2; pass++) {  /* twice: for the buffers' reuse */
            memcpy(y, cn_session_forward(s[0], x, BATCH, NULL), out_n * sizeof *y);
            CHECK_MSG(memcmp(y, cn_session_forward(s[1], x, BATCH, NULL), out_n * sizeof *y) == 0,
                      "%s: eval outputs differ (pass %d)", cn_preset_name(p), pass);
        }
        cn_session_set_training(s[0], true);
        const float *t = cn_session_forward(s[0], x, BATCH, &rng);
        CHECK(isfinite(t[0]));
        free(x); free(y);
        free_pair(m, s);
    }
}

/* Training with 2 threads runs each thread's share of the batch through the whole model on
 * a worker (exec/passes.c). Against the session's own layers run one by one on the whole batch with
 * 2 threads: every preset, a batch that does not split evenly, dropout on: outputs, the
 * input gradient and the batch norms' state bit-identical, parameter gradients too except
 * a linear layer's (its sum over samples is split in two). Twice, for the buffers' reuse. */
TEST(training_workers_match_batch_pass) {
    enum { BATCH = 37 };
    for (int p = 0; p < cn_preset_count(); p++) {
        cn_model *m[2];
        cn_session *s[2];
        int ok = preset_pair(p, BATCH, (const int[2]){ 2, 2 }, (const unsigned[2]){ 0, 0 }, m, s);
        CHECK(ok);
        if (!ok) continue;
        for (int u = 0; u < 2; u++) cn_session_set_training(s[u], true);
        CHECK(cn_session_uses_team(s[0], BATCH));
        int L = m[0]->num_layers;
        cn_rng rng;
        cn_rng_seed(&rng, 8);
        size_t in_n = (size_t)BATCH * cn_shape_size(m[0]->input), out_n = (size_t)BATCH * cn_model_num_classes(m[0]);
        float *x = malloc(in_n * sizeof *x), *dy = malloc(out_n * sizeof *dy), *y = malloc(out_n * sizeof *y);
        float *dx = malloc(in_n * sizeof *dx);
        fill(x, in_n, &rng);
        fill(dy, out_n, &rng);
        for (int pass = 0; pass < 2; pass++) {
            for (int u = 0; u < 2; u++) cn_session_set_dropout_seed(s[u], 1234 + pass);
            memcpy(y, cn_session_forward(s[0], x, BATCH, NULL), out_n * sizeof *y);
            cn_session_backward_input(s[0], dy, BATCH, dx);
            memcpy(cn_session_value(s[1], 0), x, in_n * sizeof *x);
            for (int i = 0; i < L; i++) cn_session_forward_layer(s[1], i, BATCH);
            CHECK_MSG(memcmp(y, cn_session_value(s[1], L), out_n * sizeof *y) == 0, "%s: outputs differ (pass %d)",
                      cn_preset_name(p), pass);
            memcpy(cn_session_value_grad(s[1]), dy, out_n * sizeof *dy);
            for (int i = L - 1; i >= 0; i--) cn_session_backward_layer(s[1], i, BATCH);
            CHECK_MSG(memcmp(m[0]->buffers, m[1]->buffers, m[0]->num_buffers * sizeof(float)) == 0,
                      "%s: batch-norm running statistics differ", cn_preset_name(p));
            for (int i = 0; i < L; i++) {
                const cn_layer *l = &m[0]->layers[i];
                size_t n = l->weight_count + l->bias_count;
                if (!n) continue;
                const float *a = cn_session_grads(s[0]) + l->weight_offset, *b = cn_session_grads(s[1]) + l->weight_offset;
                if (l->kind == CN_LAYER_LINEAR)
                    CHECK_MSG(max_rel_diff(a, b, n) < 1e-5, "%s: layer %d gradients differ", cn_preset_name(p), i);
                else
                    CHECK_MSG(memcmp(a, b, n * sizeof(float)) == 0, "%s: layer %d gradients differ", cn_preset_name(p), i);
            }
        }
        /* the input gradient (per sample, and the batch norms' sums do not depend on the
         * split): a model on 1 thread */
        cn_model *one = NULL;
        cn_session *s_one = NULL;
        ok = cn_model_from_spec(cn_preset_spec(p), cn_preset_name(p), 3, &one) == CN_OK &&
             cn_session_create(one, BATCH, 1, 0, &s_one) == CN_OK;
        CHECK(ok);
        if (ok) {
            float *dx_one = malloc(in_n * sizeof *dx_one);
            cn_session_set_training(s_one, true);
            cn_session_set_dropout_seed(s_one, 1235);
            CHECK(memcmp(y, cn_session_forward(s_one, x, BATCH, NULL), out_n * sizeof *y) == 0);
            cn_session_backward_input(s_one, dy, BATCH, dx_one);
            CHECK_MSG(memcmp(dx, dx_one, in_n * sizeof *dx) == 0, "%s: input gradients differ", cn_preset_name(p));
            free(dx_one);
        }
        cn_session_free(s_one);
        cn_model_free(one);
        free(x); free(dy); free(y); free(dx);
        free_pair(m, s);
    }
}

/* cn_session_train_step against cn_session_forward, cn_loss_batch and cn_session_backward,
 * both with 2 threads: every preset and a small net with dropout and a linear head (models
 * without batch norm train chunk by chunk, exec/passes.c), a batch whose workers' shares end in
 * partial chunks: the loss gradient (so the outputs) and the hits identical, the loss and
 * parameter gradients equal within rounding; twice with the same dropout seed, for the
 * buffers' reuse: the step gives identical gradients both times. */
TEST(train_step_matches_separate_passes) {
    enum { BATCH = 37 };
    static const char dropout_net[] = "input 1x12x12\nconv2d out=8 k=3\nrelu\nmaxpool2d k=2\ndropout p=0.3\n"
                                      "conv2d out=12 k=3 pad=1\nrelu\nflatten\nlinear out=10\nlog_softmax\n";
    for (int p = 0; p <= cn_preset_count(); p++) {
        const char *spec = p < cn_preset_count() ? cn_preset_spec(p) : dropout_net;
        const char *name = p < cn_preset_count() ? cn_preset_name(p) : "dropout net";
        cn_model *m[2] = { NULL, NULL };
        cn_session *s[2] = { NULL, NULL };
        int ok = 1;
        for (int u = 0; u < 2; u++)
            ok = ok && cn_model_from_spec(spec, name, 3, &m[u]) == CN_OK && cn_session_create(m[u], BATCH, 2, 0, &s[u]) == CN_OK;
        CHECK_MSG(ok, "%s: %s", name, cn_last_error());
        if (!ok) { free_pair(m, s); continue; }
        int classes = cn_model_num_classes(m[0]);
        size_t in_n = (size_t)BATCH * cn_shape_size(m[0]->input), out_n = (size_t)BATCH * classes;
        size_t P = m[0]->num_params;
        float *x = malloc(in_n * sizeof *x), *grad[2] = { malloc(out_n * sizeof(float)), malloc(out_n * sizeof(float)) };
        float *first_grads = malloc(P * sizeof(float));
        int labels[BATCH];
        cn_rng rng;
        cn_rng_seed(&rng, 21);
        fill(x, in_n, &rng);
        for (int b = 0; b < BATCH; b++) labels[b] = (int)cn_rng_below(&rng, (uint64_t)classes);
        for (int u = 0; u < 2; u++) cn_session_set_training(s[u], true);
        for (int pass = 0; pass < 2; pass++) {
            for (int u = 0; u < 2; u++) cn_session_set_dropout_seed(s[u], 99);
            int hits[2];
            double loss0 = cn_session_train_step(s[0], x, labels, BATCH, 0.1f, grad[0], &hits[0]);
            const float *out = cn_session_forward(s[1], x, BATCH, NULL);
            double loss1 = cn_loss_batch(out, labels, BATCH, classes, cn_model_outputs_log_probs(m[1]), 0.1f, grad[1], &hits[1]);
            cn_session_backward(s[1], grad[1], BATCH);
            CHECK_MSG(memcmp(grad[0], grad[1], out_n * sizeof(float)) == 0, "%s: loss gradients differ", name);
            CHECK(hits[0] == hits[1]);
            CHECK_NEAR(loss0, loss1, 1e-12);
            for (int i = 0; i < m[0]->num_layers; i++) {
                const cn_layer *l = &m[0]->layers[i];
                size_t n = l->weight_count + l->bias_count;
                if (n)
                    CHECK_MSG(max_rel_diff(cn_session_grads(s[0]) + l->weight_offset,
                                           cn_session_grads(s[1]) + l->weight_offset, n) < 1e-5,
                              "%s: layer %d gradients differ", name, i);
            }
            if (pass == 0) memcpy(first_grads, cn_session_grads(s[0]), P * sizeof(float));
            else CHECK_MSG(memcmp(first_grads, cn_session_grads(s[0]), P * sizeof(float)) == 0, "%s: a second step differs", name);
        }
        free(x); free(grad[0]); free(grad[1]); free(first_grads);
        free_pair(m, s);
    }
}

/* cn_gemm_nt against double-precision dot products (K not a multiple of 16, M not of
 * 4), and each row's result identical whether the rows go in one call or one by one
 * (the linear layer groups samples differently with other batch sizes and threads). */
TEST(gemm_nt_matches_reference_and_ignores_grouping) {
    enum { M = 7, N = 5, K = 37 };
    cn_rng rng;
    cn_rng_seed(&rng, 11);
    float a[M * K], b[N * K], c_all[M * N], c_one[M * N];
    fill(a, M * K, &rng);
    fill(b, N * K, &rng);
    memset(c_all, 0, sizeof c_all);
    memset(c_one, 0, sizeof c_one);
    cn_gemm_nt(M, N, K, a, b, c_all);
    for (int i = 0; i < M; i++) cn_gemm_nt(1, N, K, a + i * K, b, c_one + i * N);
    int bad = 0;
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double want = 0.0;
            for (int k = 0; k < K; k++) want += (double)a[i * K + k] * b[j * K + k];
            if (!close_enough(c_all[i * N + j], want, 1.0)) bad++;
        }
    CHECK_MSG(bad == 0, "%d of %d gemm_nt results off", bad, M * N);
    CHECK(memcmp(c_all, c_one, sizeof c_all) == 0);
}

/* cn_gemm_nn and cn_gemm_tn_ld against plain loops that sum each element over k in order
 * (from 0, or from C when accumulating), bit for bit: every row count up to 7 (the 4-row
 * blocks and each tail), 53 columns (blocks of 32 and 16, and single columns), K past one
 * 256-block of tn_ld, and strided operands. */
TEST(gemm_nn_tn_sum_in_order) {
    enum { MM = 7, N = 53, K = 300, LDA = 9, LDB = 60, LDC = 57 };
    cn_rng rng;
    cn_rng_seed(&rng, 12);
    static float a[K * LDA], b[K * LDB], c[MM * LDC], want[MM * LDC];
    fill(a, K * LDA, &rng);
    fill(b, K * LDB, &rng);
    int bad = 0;
    for (int M = 1; M <= MM; M++)
        for (int acc = 0; acc < 2; acc++) {   /* cn_gemm_nn: A (M,K), B (K,N), contiguous */
            fill(c, M * N, &rng);
            for (int i = 0; i < M * N; i++) {
                float s = acc ? c[i] : 0.0f;
                for (int k = 0; k < K; k++) s += a[(i / N) * K + k] * b[k * N + i % N];
                want[i] = s;
            }
            cn_gemm_nn(M, N, K, a, b, c, acc);
            bad += memcmp(c, want, (size_t)M * N * sizeof *c) != 0;
        }
    for (int M = 1; M <= MM; M++) {           /* cn_gemm_tn_ld: A (K,M) in rows of LDA, B (K,N) of LDB */
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) {
                float s = 0.0f;
                for (int k = 0; k < K; k++) s += a[k * LDA + i] * b[k * LDB + j];
                want[i * LDC + j] = s;
                c[i * LDC + j] = 1e9f;
            }
        cn_gemm_tn_ld(M, N, K, a, LDA, b, LDB, c, LDC);
        for (int i = 0; i < M; i++) bad += memcmp(c + i * LDC, want + i * LDC, N * sizeof *c) != 0;
    }
    CHECK_MSG(bad == 0, "%d gemm_nn/tn_ld results differ from the in-order sums", bad);
}

/* Every kernel set's epilogue against the portable one, bit for bit: each combination of the
 * point-wise steps (affine, mid affine, relu, post affine with either sign of its scale), with
 * and without pool (argmax or not), compact and strided planes, odd widths; the input has
 * zeros, negative zeros and ties. */
TEST(epilogue_matches_portable) {
    enum { H = 6, MAXW = 37, STRIDE = 40 };
    static float x[H * STRIDE], y[H * MAXW], y_ref[H * MAXW];
    static int32_t arg[H * MAXW], arg_ref[H * MAXW];
    static const int widths[] = { 2, 5, 16, 17, 33, 37 };
    cn_rng rng;
    cn_rng_seed(&rng, 8);
    fill(x, H * STRIDE, &rng);
    for (int i = 0; i < H * STRIDE; i += 5) x[i] = i % 2 ? -0.0f : 0.0f;
    for (int i = 3; i + 1 < H * STRIDE; i += 11) x[i + 1] = x[i];
    int bad = 0;
    for (size_t k = 0; k < sizeof kernel_sets / sizeof kernel_sets[0]; k++) {
        if (cn_kernels_select(kernel_sets[k]) != 0) continue;
        const cn_kernel_set *ks = cn_kernels();
        for (int steps = 0; steps < 32; steps++)
            for (int pool = 0; pool < 3; pool++)
                for (size_t wi = 0; wi < sizeof widths / sizeof widths[0]; wi++)
                    for (int compact = 0; compact < 2; compact++) {
                        int w = widths[wi];
                        cn_epilogue e = { .h = H, .w = w, .x_stride = compact ? w : STRIDE, .affine = steps & 1,
                                          .scale = 0.75f, .shift = -0.125f, .mid_affine = steps >> 1 & 1,
                                          .mid_scale = -1.5f, .mid_shift = 0.25f, .relu = steps >> 2 & 1,
                                          .pool = pool > 0, .post_affine = steps >> 3 & 1,
                                          .post_scale = steps >> 4 ? -0.5f : 1.25f, .post_shift = 0.0625f };
                        int n = pool ? (H / 2) * (w / 2) : H * w;
                        memset(y, 0, sizeof y); memset(y_ref, 0, sizeof y_ref);
                        memset(arg, 0, sizeof arg); memset(arg_ref, 0, sizeof arg_ref);
                        ks->epilogue(&e, x, y, pool == 2 ? arg : NULL);
                        cn_epilogue_plane_portable(&e, x, y_ref, pool == 2 ? arg_ref : NULL);
                        bool same = memcmp(y, y_ref, (size_t)n * sizeof *y) == 0 &&
                                    memcmp(arg, arg_ref, (size_t)n * sizeof *arg) == 0;
                        if (!same) fprintf(stderr, "  %s: steps %d pool %d width %d compact %d differ\n", ks->name, steps,
                                           pool, w, compact);
                        bad += !same;
                    }
    }
    cn_kernels_select(NULL);
    CHECK_MSG(bad == 0, "%d epilogue cases differ from the portable one", bad);
}

/* cn_transpose for every size up to 19 x 19 (whole 8x8 blocks, partial row and column
 * blocks) with row strides wider than the rows: each element lands in place, and nothing
 * else in the destination (its strides' slack, past its end) is written. */
TEST(transpose_writes_each_element_once) {
    enum { MAX = 19, SLACK = 3, GUARD = 16 };
    static float src[MAX * (MAX + SLACK)], dst[MAX * (MAX + SLACK) + GUARD];
    for (int i = 0; i < MAX * (MAX + SLACK); i++) src[i] = (float)i;
    int bad = 0;
    for (int rows = 1; rows <= MAX; rows++)
        for (int cols = 1; cols <= MAX; cols++) {
            int src_ld = cols + SLACK, dst_ld = rows + SLACK;
            for (size_t i = 0; i < sizeof dst / sizeof *dst; i++) dst[i] = -1.0f;
            cn_transpose(src, rows, cols, src_ld, dst, dst_ld);
            for (int c = 0; c < cols; c++)
                for (int r = 0; r < dst_ld; r++) {
                    float want = r < rows ? src[r * src_ld + c] : -1.0f;
                    bad += dst[c * dst_ld + r] != want;
                }
            for (size_t i = (size_t)cols * dst_ld; i < sizeof dst / sizeof *dst; i++) bad += dst[i] != -1.0f;
        }
    CHECK_MSG(bad == 0, "%d destination floats wrong", bad);
}

/* cn_transpose_to_pixels and cn_transpose_from_pixels for 1-19 channels, 1-3 rows and 1-19
 * columns (whole and partial blocks of 8 channels and 8 columns), with pixel and row strides
 * wider than needed: each element lands in place and nothing else is written. */
TEST(transpose_pixels_writes_each_element_once) {
    enum { MAX = 19, SLACK = 3, ROWS = 3, GUARD = 16 };
    static float planes[MAX * ROWS * MAX], pixels[ROWS * (MAX * (MAX + SLACK) + SLACK) + GUARD];
    static float back[MAX * ROWS * MAX + GUARD];
    int bad = 0;
    for (int C = 1; C <= MAX; C++)
        for (int H = 1; H <= ROWS; H++)
            for (int W = 1; W <= MAX; W++) {
                int ld = C + SLACK;
                size_t row = (size_t)W * ld + SLACK, plane = (size_t)H * W;
                for (size_t i = 0; i < plane * C; i++) planes[i] = (float)i;
                for (size_t i = 0; i < sizeof pixels / sizeof *pixels; i++) pixels[i] = -1.0f;
                cn_transpose_to_pixels(planes, C, H, W, pixels, row, ld);
                for (size_t i = 0; i < sizeof pixels / sizeof *pixels; i++) {
                    size_t y = i / row, x = i % row / ld, c = i % row % ld;
                    int inside = y < (size_t)H && i % row < (size_t)W * ld && c < (size_t)C;
                    bad += pixels[i] != (inside ? planes[c * plane + y * W + x] : -1.0f);
                }
                for (size_t i = 0; i < sizeof back / sizeof *back; i++) back[i] = -1.0f;
                cn_transpose_from_pixels(pixels, row, ld, C, H, W, back);
                for (size_t i = 0; i < sizeof back / sizeof *back; i++)
                    bad += back[i] != (i < plane * C ? planes[i] : -1.0f);
            }
    CHECK_MSG(bad == 0, "%d floats wrong", bad);
}

int main(void) {
    RUN(kernel_set_selection);
    RUN(conv_matches_reference_1_thread);
    RUN(conv_matches_reference_2_threads);
    RUN(winograd_matches_direct_sum);
    RUN(conv_backward_is_deterministic);
    RUN(fused_chains_match_separate_layers);
    RUN(conv_bn_relu_fused_in_eval);
    RUN(presets_fused_match_unfused);
    RUN(presets_eval_fused_every_kernel_set);
    RUN(branched_fused_match_unfused);
    RUN(eval_groups_match_batch_pass);
    RUN(training_workers_match_batch_pass);
    RUN(train_step_matches_separate_passes);
    RUN(gemm_nt_matches_reference_and_ignores_grouping);
    RUN(gemm_nn_tn_sum_in_order);
    RUN(transpose_writes_each_element_once);
    RUN(epilogue_matches_portable);
    RUN(transpose_pixels_writes_each_element_once);
    return test_summary();
}
