/* C-source export: the generated model.c compiles as strict C99, and its
 * model_predict matches the engine's eval forward pass (float) or agrees with
 * its predictions (int8). Uses MNIST test images from ../shared/data/mnist when
 * present, else random images. */
#include "harness.h"
#include "fixture.h"
#include "export_c_host.h"
#include "io/export_c.h"
#include "model.h"
#include "exec/session.h"
#include "core/rng.h"
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define NUM_IMAGES 200
#define NUM_CALIB 300

static char tmp_dir[200];
static float *images;      /* NUM_CALIB + NUM_IMAGES images of 784 pixels in [0, 1] */

/* Random stand-ins: blobs of ink on a dark background. */
static float *random_images(int count) {
    cn_rng rng;
    cn_rng_seed(&rng, 77);
    float *x = calloc((size_t)count * 784, sizeof *x);
    for (int n = 0; n < count; n++)
        for (int s = 0; s < 6; s++) {
            int cy = 6 + (int)(cn_rng_uniform(&rng) * 16), cx = 6 + (int)(cn_rng_uniform(&rng) * 16);
            for (int y = cy - 3; y <= cy + 3; y++)
                for (int xx = cx - 3; xx <= cx + 3; xx++) x[n * 784 + y * 28 + xx] = cn_rng_uniform(&rng);
        }
    return x;
}

/* Exports `m`, compiles model.c strictly and with the driver, runs it on NUM_IMAGES images.
 * Returns the scores (NUM_IMAGES x classes) and predictions (malloc'd), or false. */
static bool export_and_run(cn_model *m, const char *name, int int8, cn_export_c_stats *stats, float **scores, int **preds) {
    char dir[300];
    snprintf(dir, sizeof dir, "%s/%s", tmp_dir, name);
    cn_status st = cn_export_c(m, dir, (const float[]){0.1307f}, (const float[]){0.3081f}, int8, images, NUM_CALIB, stats);
    CHECK_MSG(st == CN_OK, "%s: %s", name, cn_last_error());
    if (st) return false;
    return export_c_host_run(dir, name, images + (size_t)NUM_CALIB * 784, NUM_IMAGES, cn_model_num_classes(m), scores, preds);
}

/* The engine's eval outputs for the NUM_IMAGES test images. */
static float *engine_scores(cn_model *m) {
    float *x = malloc((size_t)NUM_IMAGES * 784 * sizeof *x);
    const float *src = images + (size_t)NUM_CALIB * 784;
    for (int i = 0; i < NUM_IMAGES * 784; i++) x[i] = (src[i] - 0.1307f) / 0.3081f;
    cn_session *s;
    CHECK(cn_session_create(m, NUM_IMAGES, 2, 0, &s) == CN_OK);
    if (!s) { free(x); return NULL; }
    const float *y = cn_session_forward(s, x, NUM_IMAGES, NULL);
    size_t n = (size_t)NUM_IMAGES * cn_model_num_classes(m);
    float *copy = malloc(n * sizeof *copy);
    memcpy(copy, y, n * sizeof *copy);
    cn_session_free(s);
    free(x);
    return copy;
}

static int argmax(const float *v, int n) {
    int best = 0;
    for (int i = 1; i < n; i++) if (v[i] > v[best]) best = i;
    return best;
}

/* Every helper of the generator: avgpool with padding, BN not after a conv, a
 * strided conv, max-pool padding, a standalone ReLU, dropout, two linears. */
static const char CUSTOM_SPEC[] =
    "input 1x28x28\n"
    "conv2d out=6 k=3 pad=1\nrelu\navgpool2d k=3 stride=2 pad=1\nbatchnorm2d\n"
    "conv2d out=8 k=3 stride=2 bias=false\nmaxpool2d k=2 pad=1\nrelu\nflatten\ndropout p=0.2\n"
    "linear out=32\nrelu\nlinear out=10\n";

/* A preset by name, CUSTOM_SPEC for "custom", or export_c_host_new_layers' models
 * ("new-layers", "new-layers-tail") and export_c_host_branches' ("branches"), batch norms
 * already perturbed. */
static cn_model *load(const char *name, uint64_t seed) {
    if (!strncmp(name, "new-layers", 10)) return export_c_host_new_layers(name, seed);
    if (!strcmp(name, "branches")) return export_c_host_branches(name, seed);
    cn_model *m = NULL;
    cn_status st = strcmp(name, "custom") ? cn_model_load_spec(name, seed, &m)
                                          : cn_model_from_spec(CUSTOM_SPEC, "custom", seed, &m);
    CHECK_MSG(st == CN_OK, "%s: %s", name, cn_last_error());
    return m;
}

static void check_float(const char *preset, bool bn) {
    cn_model *m = load(preset, 11);
    if (!m) return;
    if (bn) export_c_host_perturb_bn(m);
    float *scores = NULL;
    int *preds = NULL;
    cn_export_c_stats stats;
    char name[64];
    snprintf(name, sizeof name, "%s%s-float", preset, bn ? "-bn" : "");
    if (export_and_run(m, name, 0, &stats, &scores, &preds)) {
        float *ref = engine_scores(m);
        int classes = cn_model_num_classes(m);
        CHECK_ALLCLOSE(scores, ref, (size_t)NUM_IMAGES * classes, 1e-5);
        int same = 0, engine = 0;
        for (int i = 0; i < NUM_IMAGES; i++) {
            same += preds[i] == argmax(scores + i * classes, classes);
            engine += preds[i] == argmax(ref + i * classes, classes);
        }
        CHECK_MSG(same == NUM_IMAGES, "%s: %d of %d returned indices are the argmax", preset, same, NUM_IMAGES);
        CHECK_MSG(engine == NUM_IMAGES, "%s: the C export's class is the engine's on %d of %d images", preset, engine, NUM_IMAGES);
        CHECK(!stats.int8 && stats.flash_bytes == 4 * stats.weight_count);
        CHECK(stats.ram_bytes >= 2 * 784 * sizeof(float));
        free(ref);
    }
    free(scores);
    free(preds);
    cn_model_free(m);
}

TEST(float_seed001_matches_engine) { check_float("seed001", false); check_float("seed001", true); }
TEST(float_seed000_bn_folded) { check_float("seed000", true); }
TEST(float_seed002_seed003_seed004) { check_float("seed002", false); check_float("seed003", false); check_float("seed004", true); }
TEST(float_custom_all_helpers) { check_float("custom", true); }
/* grouped, depthwise and dilated conv2d, relu6, leaky_relu, batchnorm1d, dropout2d */
TEST(float_new_layers_match_engine) { check_float("new-layers", false); check_float("new-layers-tail", false); }

/* Branches: res20k (residual blocks, one with a 1x1 stride-2 projection) and BRANCHES_SPEC
 * (concats, a three-input add, an add of differently shaped values of one size, a branch
 * in the float tail) */
TEST(float_branches_match_engine) { check_float("res20k", true); check_float("branches", false); }

/* The branches' generated code: res20k's adds with their ReLU fused and its batch norms all
 * folded; in BRANCHES_SPEC a batch norm whose conv output the concat also reads stays an
 * affine, relu6 and leaky_relu work on copies of values that later layers still read, and
 * the float tail's add reads the linear's output; with --target cortex-m4 the same int8
 * scores as the generic export (the host runs the portable form). */
TEST(branches_generated_code) {
    char dir[300], cmd[4096];
    const char *names[] = {"res20k", "branches"};
    for (int n = 0; n < 2; n++) {
        cn_model *m = load(names[n], 21);
        if (!m) continue;
        if (n == 0) export_c_host_perturb_bn(m);
        snprintf(dir, sizeof dir, "%s/%s-contract", tmp_dir, names[n]);
        CHECK(cn_export_c(m, dir, (const float[]){0.1307f}, (const float[]){0.3081f}, 0, NULL, 0, NULL) == CN_OK);
        if (n == 0)
            snprintf(cmd, sizeof cmd, "f=%s/model.c; ! grep -q 'affine' $f && test \"$(grep -c '^        add(in, 2, buf[0-9]*, [0-9]*, 1);' $f)\" = 2"
                     " && grep -q 'layers block2.proj.0-block2.proj.1: conv2d from block1.relu 16x14x14 -> 32x7x7, batch norm folded' $f"
                     " && grep -q 'layers block2.add-block2.relu: add from block2.bn2, block2.proj.1 32x7x7 -> 32x7x7, ReLU' $f", dir);
        else
            snprintf(cmd, sizeof cmd, "f=%s/model.c; test \"$(grep -c '^    affine(' $f)\" = 1 && grep -q '^    copy(buf[0-9]*, buf[0-9]*, 1568);' $f"
                     " && grep -q '^    relu6(buf[0-9]*, 1568);' $f && grep -q '^        concat(in, size, 6, buf[0-9]*);' $f"
                     " && grep -q 'static const int size\\[6\\] = {1568, 784, 1568, 1568, 1568, 784};' $f"
                     " && grep -q '^        add(in, 3, buf[0-9]*, 784, 1);' $f && grep -q '^    copy(buf[0-9]*, buf[0-9]*, 10);' $f", dir);
        CHECK_MSG(run(cmd) == 0, "%s float model.c: %s", names[n], cmd);
        float *s1 = NULL, *s2 = NULL;
        int *p1 = NULL, *p2 = NULL;
        char n1[64], n2[64];
        snprintf(n1, sizeof n1, "%s-int8-generic", names[n]);
        snprintf(n2, sizeof n2, "%s-int8-m4", names[n]);
        bool ok = export_and_run(m, n1, CN_EXPORT_C_INT8, NULL, &s1, &p1);
        ok = export_and_run(m, n2, CN_EXPORT_C_INT8 | CN_EXPORT_C_CORTEX_M4, NULL, &s2, &p2) && ok;
        if (ok) {
            CHECK_MSG(!memcmp(s1, s2, (size_t)NUM_IMAGES * 10 * sizeof *s1), "%s: int8 generic and cortex-m4 (portable) scores differ", names[n]);
            snprintf(cmd, sizeof cmd, "f=%s/%s/model.c; grep -q '^        add_q(in, rescale, %d, q[0-9]*, %d, 1);' $f"
                     " && grep -q '^        static const float rescale\\[%d\\] = {' $f%s", tmp_dir, n2, n ? 3 : 2, n ? 784 : 3136,
                     n ? 3 : 2, n ? " && grep -q '^        concat_q(in, size, rescale, 6, q[0-9]*);' $f && grep -q '^    copy_q(q[0-9]*, q[0-9]*, 1568);' $f" : "");
            CHECK_MSG(run(cmd) == 0, "%s cortex-m4 int8 model.c: %s", names[n], cmd);
        }
        free(s1); free(s2); free(p1); free(p2);
        cn_model_free(m);
    }
}

/* The new layers' generated code: every batch norm folded (into the convs and, batchnorm1d,
 * into the linear before it), the grouped/dilated helper called, dropout gone; with
 * --target cortex-m4, conv2d_gq in its SMLAD and portable forms, and on the host (the
 * portable form) the same scores as the generic int8 export, bit for bit. */
TEST(new_layers_generated_code) {
    cn_model *m = load("new-layers", 21);
    if (!m) return;
    char dir[300], cmd[4096];
    snprintf(dir, sizeof dir, "%s/new-layers-contract", tmp_dir);
    CHECK(cn_export_c(m, dir, (const float[]){0.1307f}, (const float[]){0.3081f}, 0, NULL, 0, NULL) == CN_OK);
    snprintf(cmd, sizeof cmd, "! grep -q 'affine' %s/model.c && test \"$(grep -c '^    conv2d_grouped(' %s/model.c)\" = 4"
             " && grep -q 'layers 14-15: linear .*batch norm folded' %s/model.c && test \"$(grep -c '^    relu6(' %s/model.c)\" = 2"
             " && grep -q '^    leaky_relu(buf[01], 32, 0.200000003f);' %s/model.c && ! grep -qi 'dropout(' %s/model.c",
             dir, dir, dir, dir, dir, dir);
    CHECK_MSG(run(cmd) == 0, "new-layers float model.c: %s", cmd);
    float *s1 = NULL, *s2 = NULL;
    int *p1 = NULL, *p2 = NULL;
    bool ok = export_and_run(m, "new-layers-int8-generic", CN_EXPORT_C_INT8, NULL, &s1, &p1);
    ok = export_and_run(m, "new-layers-int8-m4", CN_EXPORT_C_INT8 | CN_EXPORT_C_CORTEX_M4, NULL, &s2, &p2) && ok;
    if (ok) {
        CHECK_MSG(!memcmp(s1, s2, (size_t)NUM_IMAGES * 10 * sizeof *s1), "int8 generic and cortex-m4 (portable) scores differ");
        snprintf(cmd, sizeof cmd, "f=%s/new-layers-int8-m4/model.c; test \"$(grep -c '^static void conv2d_gq(' $f)\" = 2"
                 " && grep -q '^#if defined(__ARM_FEATURE_DSP)' $f && grep -q '^    conv2d_gq(q[01], q[01], (float \\*)0, op[0-9]*_weight, op[0-9]*_mult, op[0-9]*_bias, 8, 14, 14, 16, 3, 1, 2, 7, 7, 0, 2, 2, 2, col);' $f"
                 " && grep -q '^    relu6_q(q[01], 6272, [0-9]*);' $f && grep -q '^    leaky_relu_q(q[01], 1568, 0.100000001f);' $f", tmp_dir);
        CHECK_MSG(run(cmd) == 0, "new-layers cortex-m4 int8 model.c: %s", cmd);
    }
    free(s1); free(s2); free(p1); free(p2);
    cn_model_free(m);
}

/* Generated files: the documented signature, no allocation, only <math.h>/<stdint.h>. */
TEST(generated_source_contract) {
    cn_model *m = NULL;
    CHECK(cn_model_load_spec("seed001", 3, &m) == CN_OK);
    if (!m) return;
    char dir[300], path[400];
    snprintf(dir, sizeof dir, "%s/contract", tmp_dir);
    CHECK(cn_export_c(m, dir, (const float[]){0.1307f}, (const float[]){0.3081f}, 0, NULL, 0, NULL) == CN_OK);
    snprintf(path, sizeof path, "%s/model.h", dir);
    char *h = read_file(path, 200);   /* just the start */
    CHECK(h != NULL);
    free(h);
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "grep -q 'int model_predict(const float in\\[MODEL_INPUT_SIZE\\], float out\\[MODEL_NUM_CLASSES\\]);' %s/model.h"
             " && grep -q '#define MODEL_INPUT_SIZE (MODEL_INPUT_C \\* MODEL_INPUT_H \\* MODEL_INPUT_W)' %s/model.h"
             " && grep -q '#define MODEL_NUM_CLASSES 10' %s/model.h && grep -q 'RAM: ' %s/model.c", dir, dir, dir, dir);
    CHECK(run(cmd) == 0);
    snprintf(cmd, sizeof cmd, "! grep -E 'malloc|calloc|free\\(|^#include <(stdio|stdlib|string)' %s/model.c"
             " && test \"$(grep -c '^#include' %s/model.c)\" = 2 && ! grep -E '^(float|int|static float|static int) ' %s/model.c | grep -v -E '^(int model_predict|static int model_run\\()'"
             " && ! ls %s | grep -q tmp", dir, dir, dir, dir);
    CHECK_MSG(run(cmd) == 0, "generated model.c includes or allocates more than it should");
    cn_model_free(m);
}

static void check_int8(const char *preset, bool bn, int min_agree_permille) {
    cn_model *m = load(preset, 21);
    if (!m) return;
    if (bn) export_c_host_perturb_bn(m);
    float *scores = NULL, *fscores = NULL;
    int *preds = NULL, *fpreds = NULL;
    cn_export_c_stats stats, fstats;
    char name[64];
    snprintf(name, sizeof name, "%s-int8", preset);
    bool ok = export_and_run(m, name, 1, &stats, &scores, &preds);
    snprintf(name, sizeof name, "%s-float-ref", preset);
    ok = export_and_run(m, name, 0, &fstats, &fscores, &fpreds) && ok;
    if (ok) {
        float *ref = engine_scores(m);
        int classes = cn_model_num_classes(m), agree = 0;
        for (int i = 0; i < NUM_IMAGES; i++) agree += preds[i] == argmax(ref + i * classes, classes);
        printf("  %s int8: %d/%d predictions agree with float; flash %zu bytes (float %zu), RAM %zu bytes (float %zu)\n",
               preset, agree, NUM_IMAGES, stats.flash_bytes, fstats.flash_bytes, stats.ram_bytes, fstats.ram_bytes);
        CHECK_MSG(agree * 1000 >= min_agree_permille * NUM_IMAGES, "%s: int8 agrees on %d of %d", preset, agree, NUM_IMAGES);
        CHECK(stats.int8 && stats.flash_bytes < fstats.flash_bytes / 2 && stats.ram_bytes < fstats.ram_bytes);
        free(ref);
    }
    free(scores); free(preds); free(fscores); free(fpreds);
    cn_model_free(m);
}

TEST(int8_seed001_agrees_with_float) { check_int8("seed001", true, 970); }
/* Others: a margin below the 97% bar, since random-init logits are close together. */
TEST(int8_other_presets) { check_int8("seed000", true, 960); check_int8("seed003", false, 960); check_int8("seed004", true, 960); }
TEST(int8_seed002_and_custom) { check_int8("seed002", false, 960); check_int8("custom", true, 960); }
TEST(int8_new_layers_agree_with_float) { check_int8("new-layers", false, 900); check_int8("new-layers-tail", false, 900); }
TEST(int8_branches_agree_with_float) { check_int8("res20k", true, 960); check_int8("branches", false, 900); }

TEST(errors) {
    cn_model *m = NULL;
    CHECK(cn_model_load_spec("seed002", 1, &m) == CN_OK);
    if (!m) return;
    char path[400];
    CHECK(cn_export_c(m, tmp_dir, (const float[]){0.1f}, (const float[]){0.3f}, 1, NULL, 0, NULL) == CN_ERR_ARG);
    CHECK(strstr(cn_last_error(), "calibration") != NULL);
    CHECK(cn_export_c(m, tmp_dir, (const float[]){0.1f}, (const float[]){-1.0f}, 0, NULL, 0, NULL) == CN_ERR_ARG);
    snprintf(path, sizeof path, "%s/plainfile", tmp_dir);
    CHECK(write_file(path, "x", 1) == 0);
    CHECK(cn_export_c(m, path, (const float[]){0.1f}, (const float[]){0.3f}, 0, NULL, 0, NULL) == CN_ERR_IO);
    CHECK(strstr(cn_last_error(), "not a directory") != NULL);
    m->params[3] = INFINITY;
    CHECK(cn_export_c(m, tmp_dir, (const float[]){0.1f}, (const float[]){0.3f}, 0, NULL, 0, NULL) == CN_ERR_NUMERIC);
    CHECK(strstr(cn_last_error(), "layer 0") != NULL);
    cn_model_free(m);
}

int main(void) {
    snprintf(tmp_dir, sizeof tmp_dir, TEST_TMP "/convnet-export-c-XXXXXX");
    if (!mkdtemp(tmp_dir)) { perror("mkdtemp"); return 1; }
    images = export_c_host_mnist(MNIST_TEST_IMAGES, NUM_CALIB + NUM_IMAGES);
    if (!images) {
        printf("note: %s not found; using random images\n", MNIST_TEST_IMAGES);
        images = random_images(NUM_CALIB + NUM_IMAGES);
    }
    RUN(float_seed001_matches_engine);
    RUN(float_seed000_bn_folded);
    RUN(float_seed002_seed003_seed004);
    RUN(float_custom_all_helpers);
    RUN(float_new_layers_match_engine);
    RUN(float_branches_match_engine);
    RUN(new_layers_generated_code);
    RUN(branches_generated_code);
    RUN(generated_source_contract);
    RUN(int8_seed001_agrees_with_float);
    RUN(int8_other_presets);
    RUN(int8_seed002_and_custom);
    RUN(int8_new_layers_agree_with_float);
    RUN(int8_branches_agree_with_float);
    RUN(errors);
    free(images);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp_dir);
    if (!getenv("KEEP_TMP") && system(cmd) != 0) fprintf(stderr, "note: could not remove %s\n", tmp_dir);
    return test_summary();
}
