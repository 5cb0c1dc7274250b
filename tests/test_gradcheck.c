/* Finite-difference gradient checks for every layer kind.
 *
 * For a one-layer model (plus flatten), L = sum(out * R) for a fixed random R,
 * so dL/dout = R. Every parameter and input element is perturbed by +-h and
 * the central difference (evaluated in double from float forwards) is compared
 * with the analytic gradient. h = 1e-2 keeps float rounding (~1e-7 |L| / h)
 * far below the tolerance; inputs are kept away from the kinks of ReLU and
 * max-pool (no |x| < 4h, no near-ties), so the difference quotient is exact
 * up to O(h^2) for these piecewise-linear layers. */
#include "harness.h"
#include "model.h"
#include "exec/session.h"
#include "core/rng.h"

#define TOL 2e-2

static void check_layer_h(const char *spec, float H);
static void check_layer(const char *spec) { check_layer_h(spec, 1e-2f); }

static double loss_of(cn_session *session, const float *x, int batch, const float *r, int n_out) {
    const float *y = cn_session_forward(session, x, batch, NULL);
    double s = 0.0;
    for (int i = 0; i < batch * n_out; i++) s += (double)y[i] * r[i];
    return s;
}

/* A shuffled evenly spaced grid: no |x| < 0.025 and no two values closer than
 * 0.05 (> 2h), so no perturbation crosses a ReLU kink or flips a max-pool winner. */
static void fill_away_from_kinks(float *x, int n, cn_rng *rng) {
    for (int i = 0; i < n; i++) x[i] = ((float)i - (float)n / 2 + 0.5f) * (2.0f / (float)n > 0.05f ? 2.0f / (float)n : 0.05f);
    for (int i = n - 1; i > 0; i--) {
        int j = (int)cn_rng_below(rng, (uint64_t)i + 1);
        float t = x[i]; x[i] = x[j]; x[j] = t;
    }
}

static void check_layer_h(const char *spec, float H) {
    cn_model *m;
    cn_status st = cn_model_from_spec(spec, "gradcheck", 7, &m);
    CHECK_MSG(st == CN_OK, "%s", cn_last_error());
    if (st) return;
    int batch = 3;
    cn_session *s;
    CHECK(cn_session_create(m, batch, 2, 0, &s) == CN_OK);
    cn_session_set_training(s, true);
    cn_session_set_dropout_seed(s, 12345);
    cn_rng rng;
    cn_rng_seed(&rng, 99);
    int n_in = batch * cn_shape_size(m->input), n_out = batch * cn_model_num_classes(m);
    float *x = calloc(n_in, sizeof *x), *r = calloc(n_out, sizeof *r), *gx = calloc(n_in, sizeof *gx);
    float *gp = calloc(m->num_params + 1, sizeof *gp);
    fill_away_from_kinks(x, n_in, &rng);
    for (int i = 0; i < n_out; i++) r[i] = 2.0f * cn_rng_uniform(&rng) - 1.0f;
    /* BN params perturbed away from 1/0 so their gradients matter in every term. */
    for (size_t i = 0; i < m->num_params; i++) m->params[i] += 0.1f * (cn_rng_uniform(&rng) - 0.5f);
    cn_session_forward(s, x, batch, NULL);
    cn_session_backward_input(s, r, batch, gx);
    memcpy(gp, cn_session_grads(s), m->num_params * sizeof *gp);
    double worst = 0.0;
    for (size_t i = 0; i < m->num_params; i++) {
        float keep = m->params[i];
        m->params[i] = keep + H; double lp = loss_of(s, x, batch, r, n_out / batch);
        m->params[i] = keep - H; double lm = loss_of(s, x, batch, r, n_out / batch);
        m->params[i] = keep;
        double num = (lp - lm) / (2.0 * H), err = fabs(num - gp[i]) / fmax(1.0, fabs(num));
        if (err > worst) worst = err;
        if (getenv("GRADCHECK_DEBUG") && err > 1e-3) fprintf(stderr, "param %zu num %g ana %g\n", i, num, gp[i]);
    }
    for (int i = 0; i < n_in; i++) {
        float keep = x[i];
        x[i] = keep + H; double lp = loss_of(s, x, batch, r, n_out / batch);
        x[i] = keep - H; double lm = loss_of(s, x, batch, r, n_out / batch);
        x[i] = keep;
        double num = (lp - lm) / (2.0 * H), err = fabs(num - gx[i]) / fmax(1.0, fabs(num));
        if (err > worst) worst = err;
    }
    CHECK_MSG(worst < TOL, "%s: worst relative gradient error %.3g", spec, worst);
    free(x); free(r); free(gx); free(gp);
    cn_session_free(s);
    cn_model_free(m);
}

TEST(conv_3x3_bias) { check_layer("input 2x6x6\nconv2d out=3 k=3\nflatten"); }
TEST(conv_3x3_pad_nobias) { check_layer("input 2x5x5\nconv2d out=3 k=3 pad=1 bias=false\nflatten"); }
TEST(conv_1x1_pad) { check_layer("input 3x4x4\nconv2d out=2 k=1 pad=1\nflatten"); }
TEST(conv_1x1) { check_layer("input 3x4x4\nconv2d out=2 k=1\nflatten"); }
TEST(conv_5x5_stride2) { check_layer("input 2x7x7\nconv2d out=2 k=5 stride=2 pad=2\nflatten"); }
TEST(conv_depthwise_3x3) { check_layer("input 3x6x6\nconv2d out=3 k=3 pad=1 groups=3\nflatten"); }
TEST(conv_depthwise_3x3_stride2) { check_layer("input 3x7x7\nconv2d out=3 k=3 stride=2 pad=1 groups=3 bias=false\nflatten"); }
TEST(conv_grouped) { check_layer("input 4x5x5\nconv2d out=6 k=3 pad=1 groups=2\nflatten"); }
TEST(conv_dilated) { check_layer("input 2x7x7\nconv2d out=3 k=3 pad=2 dilation=2\nflatten"); }
TEST(conv_dilated_grouped_stride2) { check_layer("input 4x9x9\nconv2d out=4 k=3 stride=2 pad=1 dilation=3 groups=4\nflatten"); }
TEST(relu6) { check_layer("input 2x4x4\nrelu6\nflatten"); }
TEST(leaky_relu) { check_layer("input 2x4x4\nleaky_relu slope=0.2\nflatten"); }
TEST(batchnorm1d) { check_layer("input 6x1x1\nbatchnorm1d\nflatten"); }
TEST(dropout2d) { check_layer("input 4x3x3\ndropout2d p=0.4\nflatten"); }
TEST(batchnorm) { check_layer("input 3x4x4\nbatchnorm2d\nflatten"); }
TEST(relu) { check_layer("input 2x4x4\nrelu\nflatten"); }
TEST(maxpool) { check_layer("input 2x5x5\nmaxpool2d k=2\nflatten"); }
TEST(maxpool_overlap) { check_layer("input 2x7x7\nmaxpool2d k=3 stride=2\nflatten"); }
TEST(avgpool) { check_layer("input 2x7x7\navgpool2d k=5\nflatten"); }
TEST(avgpool_pad) { check_layer("input 2x6x6\navgpool2d k=3 stride=2 pad=1\nflatten"); }
TEST(gap) { check_layer("input 3x4x4\ngap\nflatten"); }
TEST(dropout) { check_layer("input 2x4x4\ndropout p=0.3\nflatten"); }
TEST(linear) { check_layer("input 12x1x1\nlinear out=5"); }
TEST(linear_nobias) { check_layer("input 12x1x1\nlinear out=5 bias=false"); }
TEST(log_softmax) { check_layer("input 6x1x1\nlog_softmax"); }
/* A batch of ones through a one-dropout model in training mode (the dropout statistics below). */
typedef struct { cn_model *m; cn_session *s; float *x; int n; } ones_run;

static const float *ones_forward(ones_run *r, const char *spec, int batch, uint64_t seed) {
    memset(r, 0, sizeof *r);
    CHECK(cn_model_from_spec(spec, "dropout", 7, &r->m) == CN_OK);
    if (!r->m) return NULL;
    r->n = batch * cn_shape_size(r->m->input);
    CHECK(cn_session_create(r->m, batch, 2, 0, &r->s) == CN_OK);
    r->x = malloc(r->n * sizeof *r->x);
    for (int i = 0; i < r->n; i++) r->x[i] = 1.0f;
    cn_session_set_training(r->s, true);
    cn_session_set_dropout_seed(r->s, seed);
    return cn_session_forward(r->s, r->x, batch, NULL);
}

/* Eval mode is the identity; frees the run. */
static void ones_finish(ones_run *r) {
    if (r->s) {
        cn_session_set_training(r->s, false);
        const float *y = cn_session_forward(r->s, r->x, r->n / cn_shape_size(r->m->input), NULL);
        CHECK(memcmp(y, r->x, r->n * sizeof *y) == 0);
    }
    free(r->x);
    cn_session_free(r->s);
    cn_model_free(r->m);
}

/* Inverted dropout's semantics on ones: every output is 0 or 1/(1-p), the drop
 * rate is p (within 5 standard errors over 64*7*9*5 draws, an odd plane size),
 * each sample gets its own mask, and eval mode is the identity. */
TEST(dropout_statistics) {
    ones_run r;
    const float *y = ones_forward(&r, "input 7x9x5\ndropout p=0.3\nflatten", 64, 4242);
    int size = 7 * 9 * 5, n = 64 * size, dropped = 0, bad = 0;
    for (int i = 0; y && i < n; i++) {
        if (y[i] == 0.0f) dropped++;
        else if (y[i] != 1.0f / 0.7f) bad++;
    }
    double rate = (double)dropped / n, se = sqrt(0.3 * 0.7 / n);
    CHECK_MSG(bad == 0 && fabs(rate - 0.3) < 5 * se, "drop rate %.4f (expected 0.3 +- %.4f), %d bad values", rate, 5 * se, bad);
    CHECK(y && memcmp(y, y + size, size * sizeof *y) != 0);
    ones_finish(&r);
}
/* Dropout2d (nn.Dropout2d): every channel plane is either all 0 or all x / (1 - p), the
 * channel drop rate is p (within 5 standard errors over 256*40 channels), and eval mode is
 * the identity. */
TEST(dropout2d_statistics) {
    ones_run r;
    const float *y = ones_forward(&r, "input 40x3x5\ndropout2d p=0.25\nflatten", 256, 99);
    int planes = 256 * 40, plane = 15, dropped = 0, bad = 0;
    for (int p = 0; y && p < planes; p++) {
        float v = y[(size_t)p * plane];
        if (v == 0.0f) dropped++;
        else if (v != 1.0f / 0.75f) bad++;
        for (int i = 1; i < plane; i++) if (y[(size_t)p * plane + i] != v) bad++;
    }
    double rate = (double)dropped / planes, se = sqrt(0.25 * 0.75 / planes);
    CHECK_MSG(bad == 0 && fabs(rate - 0.25) < 5 * se, "channel drop rate %.4f (expected 0.25 +- %.4f), %d bad values", rate, 5 * se, bad);
    ones_finish(&r);
}
/* Hidden ReLU/max-pool inputs of a stack cannot be kept off the kinks by
 * construction; a smaller step makes crossing one unlikely (float rounding
 * error ~1e-7 |L| / h stays ~1e-4). */
TEST(stack) { check_layer_h("input 1x8x8\nconv2d out=4 k=3 pad=1\nbatchnorm2d\nrelu\nmaxpool2d k=2\nconv2d out=3 k=3\ngap\nflatten\nlinear out=4\nlog_softmax", 2e-4f); }

/* Branches (from=, add, concat): the gradients of a value read by several layers are
 * summed (the model input's too), add passes dL/dout to every input, concat splits it. */
TEST(add_input_twice) { check_layer("input 3x4x4\nconv2d out=3 k=3 pad=1 name=c\nadd from=c,input\nflatten"); }
TEST(concat_three) { check_layer("input 2x3x3\nconv2d out=3 k=1 name=a\nconv2d out=1 k=3 pad=1 from=input name=b\nconcat from=b,input,a\nflatten"); }
TEST(residual_block) {
    check_layer_h("input 2x6x6\nconv2d out=4 k=3 pad=1 bias=false name=stem\nbatchnorm2d\nrelu name=s\n"
                  "conv2d out=4 k=3 pad=1 bias=false\nbatchnorm2d\nrelu\nconv2d out=4 k=3 pad=1 bias=false\nbatchnorm2d name=main\n"
                  "add from=main,s\nrelu name=relu_in\nconv2d out=6 k=3 stride=2 pad=1 name=down\n"
                  "conv2d out=6 k=1 stride=2 from=relu_in name=proj\nadd from=down,proj\n"
                  "gap\nflatten\nlinear out=4\nlog_softmax", 2e-4f);
}
TEST(concat_model) {
    check_layer_h("input 2x6x6\nconv2d out=3 k=3 pad=1 name=a\nrelu name=ra\nconv2d out=2 k=1 from=input name=b\n"
                  "batchnorm2d name=bb\nconcat from=ra,bb\nconv2d out=3 k=3\ngap\nflatten\nlinear out=3", 2e-4f);
}

int main(void) {
    RUN(conv_3x3_bias); RUN(conv_3x3_pad_nobias); RUN(conv_1x1_pad); RUN(conv_1x1); RUN(conv_5x5_stride2);
    RUN(conv_depthwise_3x3); RUN(conv_depthwise_3x3_stride2); RUN(conv_grouped); RUN(conv_dilated); RUN(conv_dilated_grouped_stride2);
    RUN(batchnorm); RUN(relu); RUN(maxpool); RUN(maxpool_overlap); RUN(avgpool); RUN(avgpool_pad); RUN(gap);
    RUN(relu6); RUN(leaky_relu); RUN(batchnorm1d); RUN(dropout2d); RUN(dropout2d_statistics);
    RUN(dropout); RUN(dropout_statistics); RUN(linear); RUN(linear_nobias); RUN(log_softmax); RUN(stack);
    RUN(add_input_twice); RUN(concat_three); RUN(residual_block); RUN(concat_model);
    return test_summary();
}
