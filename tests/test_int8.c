/* int8 inference on the CPU (src/int8/int8_model.h) against the int8 C export compiled on
 * the host: seed001, seed003 and seed004 trained one epoch on 3,000 MNIST training images,
 * a model with every int8 step (random weights), one whose first conv reads 5x5 input
 * patches, and export_c_host.h's models with the layers beyond the seeds (grouped,
 * depthwise and dilated convs, relu6, leaky_relu, batchnorm1d, dropout2d; trained briefly
 * and random), and models with branches (res20k, and
 * export_c_host.h's BRANCHES_SPEC): for the same calibration images,
 * the int8 model gives bitwise the exported model_predict's scores and the same class on
 * every one of 1,000 MNIST test images, on every int8 kernel set this CPU runs (and with 1
 * and 2 threads on the best one). Without ../shared/data/mnist, random images and untrained weights. */
#include "harness.h"
#include "export_c_host.h"
#include "int8/int8_model.h"
#include "kernels/int8.h"
#include "io/export_c.h"
#include "exec/session.h"
#include "optim.h"
#include "core/rng.h"
#include <unistd.h>

#define NUM_TRAIN 3000
#define NUM_CALIB 300
#define NUM_TEST 1000

static const char *const sets[] = {"avx512-vnni", "avx2", "generic"};
static char tmp_dir[200];
static float *train_x, *test_x;       /* pixels in [0, 1]; the first NUM_CALIB training images calibrate */
static int *train_y, *test_y;
static const float mean[1] = {0.1307f}, stdv[1] = {0.3081f};

/* Every int8 step: a strided conv, average pooling with padding (int8), batch norm not
 * after a conv (int8, its own step), max pooling with padding, a standalone ReLU, a linear
 * in the middle, global average pooling after a conv+BN (fused), dropout. */
static const char CUSTOM_SPEC[] =
    "input 1x28x28\n"
    "conv2d out=6 k=3 pad=1\nrelu\navgpool2d k=3 stride=2 pad=1\nbatchnorm2d\n"
    "conv2d out=20 k=3 stride=2 bias=false\nbatchnorm2d\nmaxpool2d k=2 pad=1\nrelu\n"
    "conv2d out=24 k=3 pad=1\nbatchnorm2d\nrelu\ngap\nflatten\ndropout p=0.2\n"
    "linear out=32\nrelu\nlinear out=10\n";

/* A first conv that reads the input as patches (int8_steps.h's patch_k) with k = 5, stride 2
 * and padding: the general gather, not the 3x3 one. */
static const char PATCHES_SPEC[] =
    "input 1x28x28\n"
    "conv2d out=12 k=5 stride=2 pad=2\nbatchnorm2d\nrelu\nconv2d out=16 k=3\nrelu\ngap\nflatten\nlinear out=10\n";

static float *random_images(int count, uint64_t seed) {
    cn_rng rng;
    cn_rng_seed(&rng, seed);
    float *x = calloc((size_t)count * 784, sizeof *x);
    for (int n = 0; n < count; n++)
        for (int s = 0; s < 6; s++) {
            int cy = 6 + (int)(cn_rng_uniform(&rng) * 16), cx = 6 + (int)(cn_rng_uniform(&rng) * 16);
            for (int y = cy - 3; y <= cy + 3; y++)
                for (int xx = cx - 3; xx <= cx + 3; xx++) x[n * 784 + y * 28 + xx] = cn_rng_uniform(&rng);
        }
    return x;
}

/* One epoch of Adam (lr 0.001, batch 64) over the training images. */
static void train_briefly(cn_model *m) {
    enum { B = 64 };
    cn_session *s;
    cn_optimizer opt;
    CHECK(cn_session_create(m, B, 2, 0, &s) == CN_OK);
    CHECK(cn_optimizer_init(&opt, CN_OPT_ADAM, cn_model_param_count(m)) == CN_OK);
    opt.lr = 0.001;
    float *x = malloc((size_t)B * 784 * sizeof *x), *grad = malloc((size_t)B * 10 * sizeof *grad);
    cn_session_set_training(s, true);
    for (int epoch = 0; epoch < 1; epoch++)
        for (int start = 0; start + B <= NUM_TRAIN; start += B) {
            for (int i = 0; i < B * 784; i++) x[i] = (train_x[(size_t)start * 784 + i] - mean[0]) / stdv[0];
            cn_session_set_dropout_seed(s, (uint64_t)start + 1000u * epoch);
            cn_session_train_step(s, x, train_y + start, B, 0.0f, grad, NULL);
            cn_optimizer_step(&opt, m->params, cn_session_grads(s));
        }
    free(x); free(grad);
    cn_optimizer_free(&opt);
    cn_session_free(s);
}

/* The model's float accuracy (per mille) on the test images. */
static int float_hits(cn_model *m) {
    cn_session *s;
    CHECK(cn_session_create(m, 100, 2, 0, &s) == CN_OK);
    float *x = malloc(100 * 784 * sizeof *x);
    int hits = 0;
    for (int start = 0; start < NUM_TEST; start += 100) {
        for (int i = 0; i < 100 * 784; i++) x[i] = (test_x[(size_t)start * 784 + i] - mean[0]) / stdv[0];
        const float *y = cn_session_forward(s, x, 100, NULL);
        for (int i = 0; i < 100; i++) {
            int best = 0;
            for (int k = 1; k < 10; k++) if (y[i * 10 + k] > y[i * 10 + best]) best = k;
            hits += best == test_y[start + i];
        }
    }
    free(x);
    cn_session_free(s);
    return hits;
}

static void check_model(const char *name, bool train) {
    cn_model *m = NULL;
    /* export_c_host.h's models, BN already perturbed */
    bool new_layers = !strncmp(name, "new-layers", 10) || !strcmp(name, "branches");
    const char *spec = !strcmp(name, "custom") ? CUSTOM_SPEC : !strcmp(name, "patches") ? PATCHES_SPEC : NULL;
    cn_status st = new_layers ? CN_OK : spec ? cn_model_from_spec(spec, name, 7, &m) : cn_model_load_spec(name, 7, &m);
    if (new_layers) m = strcmp(name, "branches") ? export_c_host_new_layers(name, 7) : export_c_host_branches(name, 7);
    CHECK_MSG(st == CN_OK, "%s: %s", name, cn_last_error());
    if (!m) return;
    if (train) train_briefly(m);
    else if (!new_layers) export_c_host_perturb_bn(m);
    char dir[300];
    snprintf(dir, sizeof dir, "%s/%s", tmp_dir, name);
    float *c_scores = NULL, *scores = malloc((size_t)NUM_TEST * 10 * sizeof *scores), *scores1 = malloc((size_t)NUM_TEST * 10 * sizeof *scores1);
    int *c_preds = NULL, classes[NUM_TEST];
    st = cn_export_c(m, dir, mean, stdv, CN_EXPORT_C_INT8, train_x, NUM_CALIB, NULL);
    CHECK_MSG(st == CN_OK, "%s: %s", name, cn_last_error());
    if (!st && export_c_host_run(dir, name, test_x, NUM_TEST, 10, &c_scores, &c_preds)) {
        int printed = 0;
        for (size_t s = 0; s < sizeof sets / sizeof *sets; s++) {
            if (cn_i8_kernels_select(sets[s]) != 0) continue;
            cn_int8_model *q = NULL;
            st = cn_int8_model_create(m, mean, stdv, train_x, NUM_CALIB, &q);
            CHECK_MSG(st == CN_OK, "%s: %s", name, cn_last_error());
            if (st) continue;
            CHECK(!strcmp(cn_int8_model_kernels(q), sets[s]));
            CHECK(cn_int8_predict(q, test_x, NUM_TEST, 2, scores, classes) == CN_OK);
            if (s == 0 || cn_i8_kernels_select(sets[s - 1]) != 0)   /* determinism: on the best set only */
                CHECK(cn_int8_predict(q, test_x, NUM_TEST, 1, scores1, NULL) == CN_OK);
            else
                memcpy(scores1, scores, (size_t)NUM_TEST * 10 * sizeof *scores);
            cn_i8_kernels_select(sets[s]);
            int same_class = 0, same_scores = 0, hits = 0;
            for (int i = 0; i < NUM_TEST; i++) {
                same_class += classes[i] == c_preds[i];
                same_scores += !memcmp(scores + i * 10, c_scores + i * 10, 10 * sizeof(float));
                hits += classes[i] == test_y[i];
            }
            CHECK_MSG(same_class == NUM_TEST && same_scores == NUM_TEST, "%s on %s: %d classes and %d score rows of %d are "
                      "the exported C's", name, sets[s], same_class, same_scores, NUM_TEST);
            CHECK_MSG(!memcmp(scores, scores1, (size_t)NUM_TEST * 10 * sizeof *scores), "%s on %s: 1 and 2 threads differ", name, sets[s]);
            if (!printed++)
                printf("  %s: int8 %d/%d correct, float %d/%d; classes identical to the exported C on %d/%d (%s)\n", name,
                       hits, NUM_TEST, float_hits(m), NUM_TEST, same_class, NUM_TEST, sets[s]);
            cn_int8_model_free(q);
        }
        cn_i8_kernels_select(NULL);
    }
    free(c_scores); free(c_preds); free(scores); free(scores1);
    cn_model_free(m);
}

TEST(seed001_identical_to_c_export) { check_model("seed001", train_y != NULL); }
TEST(seed003_identical_to_c_export) { check_model("seed003", train_y != NULL); }
TEST(seed004_identical_to_c_export) { check_model("seed004", train_y != NULL); }
TEST(every_step_identical_to_c_export) { check_model("custom", false); }
TEST(input_patches_identical_to_c_export) { check_model("patches", false); }
/* grouped, depthwise and dilated convs (the export's conv2d_gq), relu6 and leaky_relu in
 * int8 and in the float tail, batchnorm1d folded, dropout2d: trained briefly, and untrained
 * with a saturating relu6 */
TEST(new_layers_identical_to_c_export) {
    check_model("new-layers", train_y != NULL);
    check_model("new-layers", false);
    check_model("new-layers-tail", false);
}

/* Branches: res20k (residual blocks with a 1x1 stride-2 projection; a value read by convs
 * with different padding, an int8 add of two scales) and BRANCHES_SPEC (concats, a
 * three-input add, a flattened add, relu6 on a copy, a branch in the float tail), trained
 * briefly and untrained */
TEST(branches_identical_to_c_export) {
    check_model("res20k", train_y != NULL);
    check_model("branches", train_y != NULL);
    check_model("branches", false);
}

TEST(refusals) {
    cn_model *m = NULL;
    cn_int8_model *q = NULL;
    CHECK(cn_model_from_spec("input 1x28x28\nconv2d out=4 k=3\nflatten\nlog_softmax\nlinear out=10\n", "ls", 1, &m) == CN_OK);
    if (m) {
        CHECK(cn_int8_model_create(m, mean, stdv, train_x, 10, &q) == CN_ERR_UNSUPPORTED && !q);
        CHECK_MSG(strstr(cn_last_error(), "log_softmax") && strstr(cn_last_error(), "int8"), "%s", cn_last_error());
        CHECK(cn_int8_model_create(m, mean, stdv, NULL, 0, &q) == CN_ERR_ARG && !q);
        cn_model_free(m);
    }
    CHECK(cn_model_from_spec("input 1x28x28\nconv2d out=4 k=3\nflatten\nlinear out=10\n", "ok", 1, &m) == CN_OK);
    if (m) {
        CHECK(cn_int8_model_create(m, mean, (const float[]){0.0f}, train_x, 10, &q) == CN_ERR_ARG && !q);
        m->params[0] = NAN;
        CHECK(cn_int8_model_create(m, mean, stdv, train_x, 10, &q) == CN_ERR_NUMERIC && !q);
        cn_model_free(m);
    }
    /* a layer after the last linear that reads an int8 value from before it (the pooled map) */
    CHECK(cn_model_from_spec("input 1x28x28\nconv2d out=4 k=3 stride=2 name=a\ngap name=g\nflatten name=gf\nlinear out=4 name=l\n"
                             "add from=gf,l name=s\n", "tail", 1, &m) == CN_OK);
    if (m) {
        CHECK(cn_int8_model_create(m, mean, stdv, train_x, 10, &q) == CN_ERR_UNSUPPORTED && !q);
        CHECK_MSG(strstr(cn_last_error(), "layer s (add) reads 'g', an int8 activation from before the last conv/linear layer 'l'") &&
                  strstr(cn_last_error(), "(target int8 CPU inference)") && !strchr(cn_last_error(), '\n'), "%s", cn_last_error());
        cn_model_free(m);
    }
}

int main(void) {
    snprintf(tmp_dir, sizeof tmp_dir, TEST_TMP "/convnet-int8-XXXXXX");
    if (!mkdtemp(tmp_dir)) { perror("mkdtemp"); return 1; }
    train_x = export_c_host_mnist(MNIST_TRAIN_IMAGES, NUM_TRAIN);
    train_y = export_c_host_mnist_labels(MNIST_TRAIN_LABELS, NUM_TRAIN);
    test_x = export_c_host_mnist(MNIST_TEST_IMAGES, NUM_TEST);
    test_y = export_c_host_mnist_labels(MNIST_TEST_LABELS, NUM_TEST);
    if (!train_x || !train_y || !test_x || !test_y) {
        printf("note: no MNIST in ../shared/data/mnist; random images and untrained models\n");
        free(train_x); free(train_y); free(test_x); free(test_y);
        train_y = NULL;
        train_x = random_images(NUM_TRAIN, 1);
        test_x = random_images(NUM_TEST, 2);
        test_y = calloc(NUM_TEST, sizeof *test_y);
    }
    RUN(seed001_identical_to_c_export);
    RUN(seed003_identical_to_c_export);
    RUN(seed004_identical_to_c_export);
    RUN(every_step_identical_to_c_export);
    RUN(input_patches_identical_to_c_export);
    RUN(new_layers_identical_to_c_export);
    RUN(branches_identical_to_c_export);
    RUN(refusals);
    free(train_x); free(train_y); free(test_x); free(test_y);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp_dir);
    if (system(cmd) != 0) fprintf(stderr, "note: could not remove %s\n", tmp_dir);
    return test_summary();
}
