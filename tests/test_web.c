/* `convnet export --format web`: the web runtime's interpreter (host build of
 * src/io/web_model.c, the code the page runs in WebAssembly) against convnet's
 * forward pass for every preset and for export_c_host.h's models with the layers beyond
 * the seeds; its blob parser on damaged blobs (and, with node, the wasm32 build of it on
 * blobs whose shape products wrap 32 bits: tests/js/web_blob_check.js); the export's
 * errors; and the exported page in Debian's headless Chromium: the #selftest
 * (with --dump-dom: 20/20 classes, scores within 1e-4) of that page and of pages of the
 * new-layers model, res20k and a model with concats (BRANCHES_SPEC) trained one epoch,
 * and, through puppeteer-core (tests/js/web_check.js), digits
 * drawn with the mouse, whose page answers must equal `convnet predict` on the
 * same pixels. The browser parts skip (a SKIP line) without chromium, node/npm,
 * MNIST or the WebAssembly toolchain at build time; the drawing part also under
 * SANITIZE=1 (the plain build runs it). The page is made from
 * tests/fixtures/onnx/torch_trained.onnx (trained in PyTorch); the new-layers model trains
 * one epoch on 2,000 images.
 * TEST_KEEP=1 keeps the working directory; WEB_SCREENSHOT=FILE.png saves the
 * page after the first drawing (how docs/web-demo.png was made). */
#include "harness.h"
#include "export_c_host.h"
#include "js_env.h"
#include "model.h"
#include "exec/session.h"
#include "io/export_web.h"
#include "io/web_model.h"
#include "core/rng.h"
#include "data/dataset.h"
#include <cjson/cJSON.h>
#include <unistd.h>

#define WEIGHTS "tests/fixtures/onnx/torch_trained.onnx"
#define CHROMIUM "/usr/bin/chromium"
#define CHROMIUM_FLAGS "--headless --no-sandbox --disable-gpu --no-first-run --disable-background-networking " \
                       "--disable-component-update --disable-sync"

static char tmp_dir[256];
static char page_dir[400];
static int page_ok;

/* 28x28 test inputs: MNIST test digits when there, else pseudo-random bytes. */
static void test_pixels(uint8_t *px, int count) {
    cn_dataset ds;
    if (js_file_exists(MNIST_DIR) && cn_dataset_load("mnist", MNIST_DIR, 0, &ds) == CN_OK) {
        memcpy(px, ds.test.images, (size_t)count * 784);
        cn_dataset_free(&ds);
        return;
    }
    cn_rng rng;
    cn_rng_seed(&rng, 7);
    for (size_t i = 0; i < (size_t)count * 784; i++) px[i] = (uint8_t)(cn_rng_uniform(&rng) * 256);
}

/* Every preset (res20k: residual blocks), then export_c_host.h's models with the layers
 * beyond the seeds (grouped, depthwise and dilated convs, relu6, leaky_relu, batchnorm1d,
 * dropout2d) and with branches (BRANCHES_SPEC: concats, adds of two and three values, an
 * add of a flattened map and a linear's output). */
TEST(web_runtime_matches_convnet_for_every_preset) {
    enum { N = 8 };
    uint8_t px[N * 784];
    test_pixels(px, N);
    /* and a batchnorm1d right after a flatten of a 4x13x13 map (the blob's flat input rule) */
    static const char *const extra[] = {"new-layers", "new-layers-tail", "flat-bn", "branches"};
    static const char FLAT_BN_SPEC[] = "input 1x28x28\nconv2d out=4 k=3 stride=2\nrelu\nflatten\nbatchnorm1d\nlinear out=10\n";
    int presets = cn_preset_count();
    for (int p = 0; p < presets + 4; p++) {
        cn_model *m;
        const char *name = p < presets ? cn_preset_name(p) : extra[p - presets];
        if (!strcmp(name, "flat-bn")) {
            if (cn_model_from_spec(FLAT_BN_SPEC, name, 3, &m)) { CHECK_MSG(0, "%s", cn_last_error()); continue; }
        } else if (!strcmp(name, "branches")) {
            if (!(m = export_c_host_branches(name, 3))) continue;
        } else if (p >= presets) {
            if (!(m = export_c_host_new_layers(name, 3))) continue;
        } else if (cn_model_load_spec(name, 3, &m)) { CHECK_MSG(0, "%s", cn_last_error()); continue; }
        if (cn_export_web_check(m) != CN_OK) {   /* only inputs other than 1x28x28 are refused */
            CHECK_MSG(strstr(cn_last_error(), "web") && strstr(cn_last_error(), "draws 1x28x28"), "%s: %s", name,
                      cn_last_error());
            cn_model_free(m);
            continue;
        }
        cn_rng rng; /* batch-norm statistics away from (0, 1), so the affine is not trivial */
        cn_rng_seed(&rng, 11);
        for (int i = 0; i < m->num_layers; i++)
            if (m->layers[i].kind == CN_LAYER_BATCHNORM2D)
                for (int c = 0; c < m->layers[i].in.c; c++) {
                    m->buffers[m->layers[i].buffer_offset + c] = 0.2f * (cn_rng_uniform(&rng) - 0.5f);
                    m->buffers[m->layers[i].buffer_offset + m->layers[i].in.c + c] = 0.5f + cn_rng_uniform(&rng);
                }
        void *blob = NULL;
        size_t size = 0;
        cn_web_model wm;
        CHECK_MSG(cn_export_web_blob(m, 0.1307f, 0.3081f, &blob, &size) == CN_OK, "%s", cn_last_error());
        CHECK_MSG(blob && cn_web_model_parse(blob, size, &wm) == CN_OK, "%s: %s", name, cn_last_error());
        if (!blob || !wm.weights) { free(blob); cn_model_free(m); continue; }
        int classes = cn_model_num_classes(m);
        float *work = calloc(cn_web_model_workspace(&wm) + 784, sizeof *work), x[N * 784], scores[64], probs[64];
        for (int i = 0; i < N * 784; i++) x[i] = (px[i] / 255.0f - 0.1307f) / 0.3081f;
        cn_session *session = NULL;
        CHECK(cn_session_create(m, N, 1, 0, &session) == CN_OK);
        if (!session) { free(work); cn_web_model_free(&wm); free(blob); cn_model_free(m); continue; }
        cn_session_set_training(session, false);
        const float *ref = cn_session_forward(session, x, N, NULL);
        double worst = 0;
        for (int i = 0; i < N; i++) {
            cn_web_classify_raw(&wm, px + i * 784, work, scores, probs);
            for (int k = 0; k < classes; k++) {
                double e = fabs(scores[k] - ref[i * classes + k]) / fmax(1.0, fabs(ref[i * classes + k]));
                if (e > worst) worst = e;
            }
        }
        CHECK_MSG(worst <= 1e-4, "%s: web runtime vs convnet: relative error %g", name, worst);
        cn_session_free(session);
        free(work);
        cn_web_model_free(&wm);
        free(blob);
        cn_model_free(m);
    }
}

TEST(damaged_blobs_are_rejected) {
    cn_model *m;
    if (cn_model_load_spec("seed000", 1, &m)) { CHECK_MSG(0, "%s", cn_last_error()); return; }
    void *blob;
    size_t size;
    if (cn_export_web_blob(m, 0.1307f, 0.3081f, &blob, &size)) { CHECK_MSG(0, "%s", cn_last_error()); cn_model_free(m); return; }
    cn_web_model wm;
    for (size_t cut = 0; cut < size; cut += cut < 400 ? 1 : 997) /* every truncation near the header, then a sample */
        CHECK_MSG(cn_web_model_parse(blob, cut, &wm) == CN_ERR_FORMAT, "%zu of %zu bytes accepted", cut, size);
    unsigned char *b = blob;
    for (size_t at = 0; at < 36 + 60; at += 4) { /* every header word and the first layer's */
        uint32_t saved;
        memcpy(&saved, b + at, 4);
        uint32_t bad = saved ^ 0x40000001u;
        memcpy(b + at, &bad, 4);
        cn_status st = cn_web_model_parse(b, size, &wm);
        if (st == CN_OK) cn_web_model_free(&wm);
        /* a changed mean/std (words 7, 8) is still a valid blob; anything else is not */
        CHECK_MSG(at == 28 || at == 32 || st == CN_ERR_FORMAT, "word at %zu changed: status %d", at, st);
        memcpy(b + at, &saved, 4);
    }
    CHECK(cn_web_model_parse(blob, size, &wm) == CN_OK);
    cn_web_model_free(&wm);
    free(blob);
    cn_model_free(m);
}

/* Offset of the first layer with op `op` in a blob, or 0: layers of 15 words, then as many
 * input words as word 14 says, then word 13's floats. */
static size_t find_layer(const unsigned char *b, size_t size, int op) {
    uint32_t layers;
    memcpy(&layers, b + 20, 4);
    for (size_t at = 36, i = 0; i < layers && at + 60 <= size; i++) {
        uint32_t w[15];
        memcpy(w, b + at, sizeof w);
        if ((int)w[0] == op) return at;
        at += 60 + 4 * (size_t)w[14] + 4 * (size_t)w[13];
    }
    return 0;
}

/* The words of branches in a blob: an add or concat that reads a later value, its own output,
 * too few values, or values that do not fit its shapes, and a plain layer that reads two,
 * are refused with the layer named; the unchanged blobs load. */
TEST(branch_words_are_checked) {
    const char *names[] = {"res20k", "branches"};
    for (int n = 0; n < 2; n++) {
        cn_model *m = n ? export_c_host_branches(names[n], 1) : NULL;
        if (!n && cn_model_load_spec(names[n], 1, &m)) { CHECK_MSG(0, "%s", cn_last_error()); continue; }
        void *blob = NULL;
        size_t size = 0;
        cn_web_model wm;
        CHECK(m && cn_export_web_blob(m, 0.1307f, 0.3081f, &blob, &size) == CN_OK);
        cn_model_free(m);
        if (!blob) continue;
        unsigned char *b = blob;
        size_t join = find_layer(b, size, n ? CN_WEB_CONCAT : CN_WEB_ADD), conv = find_layer(b, size, CN_WEB_CONV);
        CHECK(join > 0 && conv > 0);
        uint32_t index = (uint32_t)((join - 36) / 4), saved[3];   /* an upper bound of the layer's number */
        memcpy(saved, b + join + 56, sizeof saved);
        /* word 14 (the count), the first input, the second input */
        const uint32_t bad[][3] = {{1, saved[1], saved[2]}, {saved[0], index + 1, saved[2]}, {saved[0], saved[1], 0},
                                   {9, saved[1], saved[2]}};
        const char *want[] = {"expected 2 to 8", "an earlier layer's output", "do not fit", "expected 2 to 8"};
        for (int k = 0; k < 4; k++) {
            memcpy(b + join + 56, bad[k], sizeof bad[k]);
            cn_status st = cn_web_model_parse(blob, size, &wm);
            if (st == CN_OK) cn_web_model_free(&wm);
            CHECK_MSG(st == CN_ERR_FORMAT && strstr(cn_last_error(), want[k]), "%s, change %d: status %d, %s", names[n], k, st,
                      cn_last_error());
            memcpy(b + join + 56, saved, sizeof saved);
        }
        uint32_t two = 2;
        memcpy(&saved[0], b + conv + 56, 4);
        memcpy(b + conv + 56, &two, 4);
        CHECK_MSG(cn_web_model_parse(blob, size, &wm) == CN_ERR_FORMAT && strstr(cn_last_error(), "expected 1"), "%s: %s",
                  names[n], cn_last_error());
        memcpy(b + conv + 56, &saved[0], 4);
        CHECK_MSG(cn_web_model_parse(blob, size, &wm) == CN_OK, "%s: %s", names[n], cn_last_error());
        cn_web_model_free(&wm);
        free(blob);
    }
}

/* Blobs whose shape products wrap 32-bit arithmetic (wasm32's size_t and long): the parser
 * takes them in 64 bits and refuses them, on the host and in the wasm32 runtime itself (run
 * with node by tests/js/web_blob_check.js, no packages); a valid blob loads there too. */
static void blob_word(unsigned char *b, size_t *at, uint32_t v) { memcpy(b + *at, &v, 4); *at += 4; }
static void blob_header(unsigned char *b, size_t *at, int c, int h, int w, int layers, int classes) {
    float mean = 0.1307f, std = 0.3081f;
    uint32_t m, s;
    memcpy(&m, &mean, 4);
    memcpy(&s, &std, 4);
    uint32_t words[9] = {CN_WEB_MAGIC, CN_WEB_VERSION, (uint32_t)c, (uint32_t)h, (uint32_t)w, (uint32_t)layers,
                         (uint32_t)classes, m, s};
    for (int k = 0; k < 9; k++) blob_word(b, at, words[k]);
}
/* op, in c h w, out c h w, kernel, stride, pad, groups, dilation, alpha 0, n, 1 input: value 0 */
static void blob_layer(unsigned char *b, size_t *at, const int32_t v[12], int32_t n) {
    for (int k = 0; k < 12; k++) blob_word(b, at, (uint32_t)v[k]);
    blob_word(b, at, 0);
    blob_word(b, at, (uint32_t)n);
    blob_word(b, at, 1);
    blob_word(b, at, 0);
}

TEST(wasm32_parser_guards) {
    enum { BLOBS = 5 };   /* a valid blob, the three damaged ones, a valid blob with branches */
    unsigned char bad[3][256];
    size_t len[3] = {0, 0, 0};
    /* 1: input 65536x65536x1: c*h is 2^32, 0 in 32 bits */
    blob_header(bad[0], &len[0], 65536, 65536, 1, 1, 1);
    blob_layer(bad[0], &len[0], (const int32_t[]){CN_WEB_RELU, 65536, 65536, 1, 65536, 65536, 1, 0, 0, 0, 1, 1}, 0);
    /* 2: a conv with a 65536x65536 kernel (padded to fit): 2^32 weights, 0 in 32 bits, and 0 declared */
    blob_header(bad[1], &len[1], 1, 28, 28, 1, 1);
    blob_layer(bad[1], &len[1], (const int32_t[]){CN_WEB_CONV, 1, 28, 28, 1, 1, 1, 65536, 1, 32754, 1, 1}, 0);
    /* 3: a linear declaring 1025 * 1047553 = 2^30 + 1 floats: 4 bytes in 32 bits, and 4 bytes follow */
    blob_header(bad[2], &len[2], 1025, 1, 1, 1, 10);
    blob_layer(bad[2], &len[2], (const int32_t[]){CN_WEB_LINEAR, 1025, 1, 1, 1047553, 1, 1, 0, 0, 0, 1, 1}, 1073741825);
    blob_word(bad[2], &len[2], 0);
    for (int i = 0; i < 3; i++) {
        cn_web_model wm;
        cn_status st = cn_web_model_parse(bad[i], len[i], &wm);
        if (st == CN_OK) cn_web_model_free(&wm);
        CHECK_MSG(st == CN_ERR_FORMAT, "blob %d: host parser status %d", i + 1, st);
    }
    char runtime[300];
    snprintf(runtime, sizeof runtime, "%s/gen/web_runtime.wasm", js_build);
    if (!cn_export_web_available() || !js_file_exists(runtime) || js_run("node --version") != 0) {
        printf("SKIP test_web wasm32 parser guards: no node or no %s\n", runtime);
        return;
    }
    cn_model *m = export_c_host_new_layers("new-layers", 3), *mb = export_c_host_branches("branches", 3);
    void *good[2] = {NULL, NULL};
    size_t good_len[2] = {0, 0};
    CHECK(m && cn_export_web_blob(m, 0.1307f, 0.3081f, &good[0], &good_len[0]) == CN_OK);
    CHECK(mb && cn_export_web_blob(mb, 0.1307f, 0.3081f, &good[1], &good_len[1]) == CN_OK);
    cn_model_free(m);
    cn_model_free(mb);
    char files[BLOBS][400], list[2048] = "";
    for (int i = 0; i < BLOBS; i++) {
        snprintf(files[i], sizeof files[i], "%s/blob%d.bin", tmp_dir, i);
        bool valid = i == 0 || i == BLOBS - 1;
        const void *data = valid ? good[i ? 1 : 0] : bad[i - 1];
        size_t n = valid ? good_len[i ? 1 : 0] : len[i - 1];
        FILE *f = fopen(files[i], "wb");
        CHECK(f && data && fwrite(data, 1, n, f) == n);
        if (f) fclose(f);
        strncat(list, " ", sizeof list - strlen(list) - 1);
        strncat(list, files[i], sizeof list - strlen(list) - 1);
    }
    free(good[0]);
    free(good[1]);
    int st = js_run("node tests/js/web_blob_check.js %s%s", runtime, list);
    CHECK_MSG(st == 0, "web_blob_check.js exited %d: %s", st, js_out);
    CHECK_MSG(strstr(js_out, "BLOB 0 status 0: ok"), "the valid blob in wasm32: %s", js_out);
    CHECK_MSG(strstr(js_out, "BLOB 4 status 0: ok"), "the valid blob with branches in wasm32: %s", js_out);
    for (int i = 1; i < BLOBS - 1; i++) {
        char want[64];
        snprintf(want, sizeof want, "BLOB %d status %d: web blob", i, CN_ERR_FORMAT);
        CHECK_MSG(strstr(js_out, want), "damaged blob %d in wasm32: expected '%s...':\n%s", i, want, js_out);
    }
    CHECK(!strstr(js_out, "trap"));
}

TEST(export_errors_name_the_target) {
    cn_model *m;
    const char *spec = "input 3x32x32\nconv2d out=4 k=3\nrelu\ngap\nflatten\nlinear out=10\n";
    if (cn_model_from_spec(spec, "rgb.spec", 1, &m)) { CHECK_MSG(0, "%s", cn_last_error()); return; }
    CHECK(cn_export_web_check(m) == CN_ERR_UNSUPPORTED);
    CHECK_MSG(strstr(cn_last_error(), "3x32x32") && strstr(cn_last_error(), CN_WEB_TARGET), "%s", cn_last_error());
    cn_model_free(m);
    CHECK(js_run("%s/convnet export --weights %s --format web --fold-bn -o %s/x", js_build, WEIGHTS, tmp_dir) == 2);
    CHECK_MSG(strstr(js_out, "--fold-bn applies to --format onnx or c only"), "%s", js_out);
}

/* The page, exported once for the browser tests. */
static int export_page(void) {
    snprintf(page_dir, sizeof page_dir, "%s/page", tmp_dir);
    int st = js_run("%s/convnet export --weights %s --format web -o %s --data %s --no-download", js_build, WEIGHTS,
                    page_dir, MNIST_DIR);
    CHECK_MSG(st == 0 && strstr(js_out, "agrees with convnet on 20/20"), "exit %d: %s", st, js_out);
    return st == 0;
}

/* Opens DIR/index.html#selftest in headless Chromium: the page's classes must be convnet's
 * on all 20 digits and its scores within 1e-4 (relative, at least 1) of convnet's. */
static void check_selftest(const char *dir, const char *what) {
    char profile[600];
    snprintf(profile, sizeof profile, "%s/profile", dir);
    int st = js_run("%s " CHROMIUM_FLAGS " --user-data-dir=%s --virtual-time-budget=10000 --dump-dom "
                    "'file://%s/index.html#selftest' 2>/dev/null | grep -o '<output id=\"selftest[-a-z]*\">[^<]*</output>'",
                    CHROMIUM, profile, dir);
    CHECK_MSG(st == 0 && strstr(js_out, "<output id=\"selftest\">20/20</output>"), "%s: chromium --dump-dom: %s", what, js_out);
    const char *e = strstr(js_out, "<output id=\"selftest-error\">");
    double err = -1;
    CHECK_MSG(e && sscanf(e, "<output id=\"selftest-error\">%lf", &err) == 1 && err >= 0 && err <= 1e-4,
              "%s: the page's largest score error against convnet: %s", what, js_out);
    if (strstr(js_out, "selftest")) printf("INFO web self-test of %s in headless chromium: %s", what, js_out);
}

TEST(selftest_in_headless_chromium) { check_selftest(page_dir, "the torch-trained model"); }

/* A page of model `name` (a preset, or spec_text written to NAME.spec), trained one epoch on
 * 2,000 images: exported, then its self-test in Chromium. */
static void check_trained_page(const char *name, const char *spec_text) {
    char model[400], dir[400];
    snprintf(model, sizeof model, "%s", name);
    snprintf(dir, sizeof dir, "%s/%s-page", tmp_dir, name);
    if (spec_text) {
        snprintf(model, sizeof model, "%s/%s.spec", tmp_dir, name);
        FILE *f = fopen(model, "w");
        CHECK(f && fputs(spec_text, f) >= 0);
        if (!f) return;
        fclose(f);
    }
    int st = js_run("%s/convnet train --model %s --data %s --no-download --limit-train 2000 --limit-test 200 --epochs 1 "
                    "--batch-size 32 --seed 1 --threads 2 --quiet --out %s/%s-run", js_build, model, MNIST_DIR, tmp_dir, name);
    CHECK_MSG(st == 0, "training %s: exit %d: %s", name, st, js_out);
    if (st) return;
    st = js_run("%s/convnet export --weights %s/%s-run/last.safetensors --format web -o %s --data %s --no-download",
                js_build, tmp_dir, name, dir, MNIST_DIR);
    CHECK_MSG(st == 0 && strstr(js_out, "agrees with convnet on 20/20"), "%s: exit %d: %s", name, st, js_out);
    if (!st) check_selftest(dir, name);
}

/* A page of a model with the layers beyond the seeds (export_c_host.h's NEW_LAYERS_SPEC:
 * grouped, depthwise and dilated convs, relu6, leaky_relu, batchnorm1d, dropout2d). */
TEST(new_layers_page_in_headless_chromium) { check_trained_page("new-layers", NEW_LAYERS_SPEC); }

/* Pages of models with branches: res20k (residual blocks) and export_c_host.h's BRANCHES_SPEC
 * (concats, adds, a branch after the last linear). */
TEST(branched_pages_in_headless_chromium) {
    check_trained_page("res20k", NULL);
    check_trained_page("branches", BRANCHES_SPEC);
}

/* `convnet predict --json` on one file: class and top-3 (class, probability). */
static int predict(const char *file, int raw, int top[3], double p[3]) {
    int st = js_run("%s/convnet predict --weights %s --json %s %s 2>/dev/null", js_build, WEIGHTS,
                    raw ? "--no-preprocess" : "", file);
    cJSON *root = st == 0 ? cJSON_Parse(js_out) : NULL;
    cJSON *pred = cJSON_GetArrayItem(cJSON_GetObjectItem(root, "predictions"), 0);
    cJSON *list = cJSON_GetObjectItem(pred, "top");
    int n = 0;
    for (cJSON *t = list ? list->child : NULL; t && n < 3; t = t->next, n++) {
        top[n] = cJSON_GetObjectItem(t, "class")->valueint;
        p[n] = cJSON_GetObjectItem(t, "probability")->valuedouble;
    }
    cJSON_Delete(root);
    CHECK_MSG(n == 3, "predict %s: %s", file, js_out);
    return n == 3;
}

TEST(drawing_in_chromium_matches_convnet_predict) {
    const char *shot = getenv("WEB_SCREENSHOT");
    int st = JS_NODE("web_check.js", "'file://%s/index.html' %s %s", page_dir, tmp_dir, shot ? shot : "");
    CHECK_MSG(st == 0, "web_check.js exited %d:\n%s", st, js_out);
    char out[sizeof js_out];
    memcpy(out, js_out, sizeof out);
    int drawings = 0;
    for (char *l = strstr(out, "DRAW "); l; l = strstr(l + 1, "DRAW ")) {
        int i, top[3], ptop[3];
        double prob[3], pp[3];
        char bars[256];
        if (sscanf(l, "DRAW %d top=%d,%d,%d probs=%lf,%lf,%lf bars=%255s", &i, &top[0], &top[1], &top[2], &prob[0],
                   &prob[1], &prob[2], bars) != 8) { CHECK_MSG(0, "%.200s", l); continue; }
        drawings++;
        char file[600];
        snprintf(file, sizeof file, "%s/draw%d.pgm", tmp_dir, i);
        if (!predict(file, 0, ptop, pp)) continue;
        for (int k = 0; k < 3; k++) {
            CHECK_MSG(top[k] == ptop[k], "drawing %d: page's top-%d class %d, convnet predict's %d", i, k + 1, top[k], ptop[k]);
            CHECK_MSG(fabs(prob[k] - pp[k]) <= 1e-5, "drawing %d: class %d p=%.7f on the page, %.6f by predict", i,
                      top[k], prob[k], pp[k]);
        }
        char want[64];
        snprintf(want, sizeof want, "%d:", top[0]);
        CHECK_MSG(!strncmp(bars, want, strlen(want)), "drawing %d: the first bar is %s, expected class %d", i, bars, top[0]);
        printf("INFO web drawing %d: page %d (p=%.4f), convnet predict %d (p=%.4f)\n", i, top[0], prob[0], ptop[0], pp[0]);
        snprintf(file, sizeof file, "%s/draw%d-28.pgm", tmp_dir, i); /* the page's 28x28 input, as bytes */
        if (predict(file, 1, ptop, pp))
            CHECK_MSG(ptop[0] == top[0], "drawing %d: predict --no-preprocess on the page's 28x28 input says %d, the page %d",
                      i, ptop[0], top[0]);
    }
    CHECK_MSG(drawings == 2, "%d drawings:\n%s", drawings, out);
}

int main(void) {
    const char *b = getenv("BUILD");
    if (b && *b) snprintf(js_build, sizeof js_build, "%s", b);
    snprintf(tmp_dir, sizeof tmp_dir, TEST_TMP "/convnet-test-web-XXXXXX");
    if (!mkdtemp(tmp_dir)) { printf("mkdtemp failed\nTESTS 0 1\n"); return 1; }
    RUN(web_runtime_matches_convnet_for_every_preset);
    RUN(damaged_blobs_are_rejected);
    RUN(branch_words_are_checked);
    RUN(wasm32_parser_guards);
    RUN(export_errors_name_the_target);
    if (!cn_export_web_available())
        printf("SKIP test_web browser tests: built without the WebAssembly toolchain (apt-get install -y %s)\n",
               CN_WEB_TOOLCHAIN_PACKAGES);
    else if (!js_file_exists(MNIST_DIR))
        printf("SKIP test_web browser tests: no MNIST in %s\n", MNIST_DIR);
    else if (!js_file_exists(CHROMIUM))
        printf("SKIP test_web browser tests: no %s (apt-get install -y chromium)\n", CHROMIUM);
    else if ((page_ok = export_page())) {
        RUN(selftest_in_headless_chromium);
        RUN(new_layers_page_in_headless_chromium);
        RUN(branched_pages_in_headless_chromium);
#if defined(__SANITIZE_ADDRESS__)
        printf("SKIP test_web drawing test: run by the plain build (make check), not under SANITIZE=1\n");
        (void)js_env;
        (void)drawing_in_chromium_matches_convnet_predict;
#else
        int env = js_env("test_web drawing test");
        if (env < 0) harness_failed++;
        else if (env > 0) RUN(drawing_in_chromium_matches_convnet_predict);
#endif
    } else {
        harness_failed++;
    }
    if (getenv("TEST_KEEP")) fprintf(stderr, "  kept %s\n", tmp_dir);
    else js_run("rm -rf %s", tmp_dir);
    return test_summary();
}
