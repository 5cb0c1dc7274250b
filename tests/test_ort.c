/* convnet's ONNX export and import against ONNX Runtime (npm's onnxruntime-node,
 * tests/js/ort_check.js), on all 10,000 MNIST test images.
 *
 * - Every preset, trained briefly here (one epoch on the first 4,000 training
 *   images with its own recipe: a few dozen steps, enough for confident, varied
 *   predictions and batch-norm statistics far from their initial 0 and 1, so that
 *   --fold-bn has real work; random weights would give near-uniform outputs whose
 *   classes hang on rounding and trivial BN), exported with cn_onnx_export plain and
 *   with --fold-bn: ORT's class must equal convnet's on every image and the
 *   log-probabilities (log_softmax of each side's outputs) must agree within 1e-4.
 * - tests/fixtures/onnx/torch_trained.onnx, written by torch.onnx.export from a
 *   model trained in PyTorch (tests/fixtures/gen_torch_trained_onnx.py): `convnet
 *   eval` must report the accuracy ORT gets, convnet's import must agree with ORT
 *   as above, and so must the file `convnet export --format onnx` writes from it.
 * - A model with branches (CONCAT_SPEC: concat of four branches, an add of a flat and a
 *   pooled value), trained and checked as the presets are (res20k is one of them).
 * Skips (a SKIP line) without node/npm or MNIST; under SANITIZE=1 too (the plain
 * build runs it; the parsers involved have their own sanitized tests and fuzzers).
 * TEST_KEEP=1 keeps the working directory. */
#include "harness.h"
#include "js_env.h"
#include "checkpoint.h"
#include "model.h"
#include "exec/session.h"
#include "train.h"
#include "data/dataset.h"
#include "io/onnx.h"
#include <unistd.h>

#define TRAIN_IMAGES 4000
#define LOGP_TOL 1e-4
#define TORCH_ONNX "tests/fixtures/onnx/torch_trained.onnx"

static char tmp_dir[256];
static cn_dataset mnist;
static FILE *manifest;
static int models_listed;

/* The normalised test images (as convnet's eval feeds them) and labels, for ORT. */
static int write_inputs(void) {
    const cn_split *t = &mnist.test;
    size_t n = (size_t)t->count * t->rows * t->cols;
    float *x = malloc(n * sizeof *x);
    if (!x) return 0;
    for (size_t i = 0; i < n; i++) x[i] = (t->images[i] / 255.0f - mnist.mean[0]) / mnist.std[0];
    char path[512];
    snprintf(path, sizeof path, "%s/inputs.f32", tmp_dir);
    FILE *f = fopen(path, "wb");
    int ok = f && fwrite(x, sizeof *x, n, f) == n;
    if (f) ok &= fclose(f) == 0;
    snprintf(path, sizeof path, "%s/labels.u8", tmp_dir);
    f = fopen(path, "wb");
    for (int i = 0; ok && i < t->count; i++) ok = f && fputc(t->labels[i], f) != EOF; /* one byte each (MNIST: 0..9) */
    if (f) ok &= fclose(f) == 0;
    free(x);
    return ok;
}

/* convnet's outputs on the test set (eval mode, 2 threads) into DIR/NAME.ref.f32. */
static int write_reference(cn_model *m, const char *name) {
    const cn_split *t = &mnist.test;
    int classes = cn_model_num_classes(m), batch = 500, pixels = t->rows * t->cols;
    cn_session *session;
    if (cn_session_create(m, batch, 2, 0, &session)) { fprintf(stderr, "  %s: %s\n", name, cn_last_error()); return 0; }
    cn_session_set_training(session, false);
    float *x = malloc((size_t)batch * pixels * sizeof *x), *out = malloc((size_t)t->count * classes * sizeof *out);
    int ok = x && out;
    for (int s = 0; ok && s < t->count; s += batch) {
        int b = t->count - s < batch ? t->count - s : batch;
        for (size_t i = 0; i < (size_t)b * pixels; i++)
            x[i] = (t->images[(size_t)s * pixels + i] / 255.0f - mnist.mean[0]) / mnist.std[0];
        memcpy(out + (size_t)s * classes, cn_session_forward(session, x, b, NULL), (size_t)b * classes * sizeof *out);
    }
    char path[512];
    snprintf(path, sizeof path, "%s/%s.ref.f32", tmp_dir, name);
    FILE *f = ok ? fopen(path, "wb") : NULL;
    ok = f && fwrite(out, sizeof *out, (size_t)t->count * classes, f) == (size_t)t->count * classes;
    if (f) ok &= fclose(f) == 0;
    cn_session_free(session);
    free(x);
    free(out);
    return ok;
}

/* Adds "LABEL ONNX REF" to the manifest ORT goes through. */
static void list_model(const char *label, const char *onnx, const char *ref_name) {
    fprintf(manifest, "%s %s %s/%s.ref.f32\n", label, onnx, tmp_dir, ref_name);
    models_listed++;
}

/* One preset (or spec file, then `label` names it): a short training run, convnet's reference
 * outputs, the two ONNX files. */
static void prepare_model(const char *model, const char *label);
static void prepare_preset(const char *name) { prepare_model(name, name); }

/* A model with branches beyond the residual preset's: a concat of three branches (one of
 * them read by a batch norm as well, which --fold-bn must then keep), and an add of a flat
 * (linear) and an N x C x 1 x 1 (gap) value, which the export flattens first. */
static const char *CONCAT_SPEC =
    "input 1x28x28\n"
    "conv2d out=8 k=3 pad=1 bias=false name=c1\nbatchnorm2d name=c1_bn\nrelu name=r1\nmaxpool2d k=2 name=p1\n"
    "conv2d out=8 k=3 pad=1 name=a\nrelu name=ra\n"
    "conv2d out=4 k=1 from=p1 name=b\nbatchnorm2d name=bb\n"
    "concat from=ra,b,bb,p1 name=cat\n"
    "conv2d out=16 k=3 stride=2 pad=1 bias=false name=c2\nbatchnorm2d name=c2_bn\nrelu name=r2\n"
    "gap name=g\nflatten name=f\nlinear out=16 name=l1\nadd from=l1,g name=sum\nrelu name=r3\nlinear out=10 name=fc\n";

static void prepare_concat(void) {
    char path[512];
    snprintf(path, sizeof path, "%s/concat.spec", tmp_dir);
    FILE *f = fopen(path, "w");
    CHECK(f && fputs(CONCAT_SPEC, f) >= 0);
    if (f) fclose(f);
    prepare_model(path, "concat");
}

static void prepare_model(const char *model, const char *label) {
    const char *name = label;
    char out_dir[512], ckpt[600], onnx[600];
    cn_model *shape_of = NULL;
    if (cn_model_load_spec(model, 1, &shape_of) == CN_OK &&
        (shape_of->input.c != 1 || shape_of->input.h != 28 || shape_of->input.w != 28)) {
        printf("INFO %s takes %dx%dx%d images: not run on MNIST here\n", name, shape_of->input.c, shape_of->input.h,
               shape_of->input.w);
        cn_model_free(shape_of);
        return;
    }
    cn_model_free(shape_of);
    snprintf(out_dir, sizeof out_dir, "%s/train-%s", tmp_dir, name);
    cn_train_options o;
    cn_train_options_init(&o);
    o.model = model;
    o.data_dir = MNIST_DIR;
    o.allow_download = 0;
    o.overrides.epochs = 1;
    o.train_limit = TRAIN_IMAGES;
    o.test_limit = 500;
    o.threads = 2;
    o.out_dir = out_dir;
    o.quiet = 1;
    CHECK_MSG(cn_train(&o) == CN_OK, "%s: %s", name, cn_last_error());
    snprintf(ckpt, sizeof ckpt, "%s/best.safetensors", out_dir);
    cn_model *m = NULL;
    cn_checkpoint_info info;
    if (cn_checkpoint_load(ckpt, &m, &info, NULL)) { CHECK_MSG(0, "%s: %s", name, cn_last_error()); return; }
    CHECK_MSG(write_reference(m, name), "%s: cannot write the reference outputs", name);
    for (int fold = 0; fold <= 1; fold++) {
        snprintf(onnx, sizeof onnx, "%s/%s%s.onnx", tmp_dir, name, fold ? "-fold-bn" : "");
        CHECK_MSG(cn_onnx_export(m, onnx, fold, info.mean, info.std) == CN_OK, "%s: %s", onnx, cn_last_error());
        char label[96];
        snprintf(label, sizeof label, "%s%s", name, fold ? "--fold-bn" : "");
        list_model(label, onnx, name);
    }
    cn_model_free(m);
}

/* The torch.onnx.export fixture: `convnet eval`'s count, convnet's outputs from the
 * import, and `convnet export --format onnx` of it. Returns eval's correct count. */
static int prepare_torch(void) {
    int correct = -1;
    char line[256] = "";
    if (js_run("%s/convnet eval --weights %s --data %s", js_build, TORCH_ONNX, MNIST_DIR) == 0) {
        const char *a = strstr(js_out, "Accuracy: ");
        if (a) sscanf(a, "Accuracy: %d", &correct);
        snprintf(line, sizeof line, "%.200s", js_out);
    }
    CHECK_MSG(correct > 9000, "convnet eval %s: %s", TORCH_ONNX, js_out);
    cn_model *m = NULL;
    if (cn_onnx_import(TORCH_ONNX, &m)) { CHECK_MSG(0, "%s", cn_last_error()); return correct; }
    CHECK(write_reference(m, "torch"));
    cn_model_free(m);
    list_model("torch.onnx.export", TORCH_ONNX, "torch");
    char again[600];
    snprintf(again, sizeof again, "%s/torch-again.onnx", tmp_dir);
    int st = js_run("%s/convnet export --weights %s --format onnx -o %s", js_build, TORCH_ONNX, again);
    CHECK_MSG(st == 0, "convnet export: %s", js_out);
    list_model("torch-then-convnet-export", again, "torch");
    return correct;
}

/* Runs ORT over the manifest and checks each RESULT line. */
static void check_ort_results(int torch_eval_correct) {
    int st = JS_NODE("ort_check.js", "%s/inputs.f32 %s/labels.u8 %s/manifest", tmp_dir, tmp_dir, tmp_dir);
    CHECK_MSG(st == 0, "ort_check.js exited %d:\n%s", st, js_out);
    int seen = 0;
    for (char *l = strstr(js_out, "RESULT "); l; l = strstr(l + 1, "RESULT ")) {
        char name[96];
        int n = 0, agree = -1, correct = -1;
        double diff = 1e9;
        int got = sscanf(l, "RESULT %95s n=%d agree=%d max_diff=%lf correct=%d", name, &n, &agree, &diff, &correct);
        seen++;
        CHECK_MSG(got == 5, "%.200s", l);
        if (got != 5) continue;
        CHECK_MSG(n == mnist.test.count && agree == n, "%s: ORT's class equals convnet's on %d of %d images", name,
                  agree, n);
        CHECK_MSG(diff <= LOGP_TOL, "%s: log-probabilities differ by up to %g (tolerance %g)", name, diff, LOGP_TOL);
        if (!strncmp(name, "torch", 5))
            CHECK_MSG(correct == torch_eval_correct, "%s: ORT gets %d right; convnet eval reported %d", name, correct,
                      torch_eval_correct);
        if (getenv("TEST_VERBOSE") || !strncmp(name, "torch", 5) || !strcmp(name, "seed001--fold-bn"))
            printf("INFO ort %-28s agree %d/%d, max |d log p| %.2e, ORT accuracy %.2f%%\n", name, agree, n, diff,
                   100.0 * correct / n);
    }
    CHECK_MSG(seen == models_listed, "%d ORT results for %d models:\n%s", seen, models_listed, js_out);
}

TEST(ort_agrees_with_convnet_on_mnist) {
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/convnet-test-ort-XXXXXX");
    if (!mkdtemp(tmp_dir)) { CHECK_MSG(0, "mkdtemp failed"); return; }
    CHECK(write_inputs());
    char path[512];
    snprintf(path, sizeof path, "%s/manifest", tmp_dir);
    manifest = fopen(path, "w");
    if (!manifest) { CHECK_MSG(0, "%s: cannot create", path); return; }
    for (int i = 0; i < cn_preset_count(); i++) prepare_preset(cn_preset_name(i));
    prepare_concat();
    int torch_correct = prepare_torch();
    fclose(manifest);
    check_ort_results(torch_correct);
    if (getenv("TEST_KEEP")) fprintf(stderr, "  kept %s\n", tmp_dir);
    else js_run("rm -rf %s", tmp_dir);
}

int main(void) {
#if defined(__SANITIZE_ADDRESS__)
    printf("SKIP test_ort: run by the plain build (make check), not under SANITIZE=1\n");
    return test_summary();
#endif
    int env = js_env("test_ort");
    if (env < 0) { harness_failed++; return test_summary(); }
    if (env == 0) return test_summary();
    if (!js_file_exists(MNIST_DIR)) {
        printf("SKIP test_ort: no MNIST in %s\n", MNIST_DIR);
        return test_summary();
    }
    if (cn_dataset_load("mnist", MNIST_DIR, 0, &mnist)) {
        fprintf(stderr, "  %s\n", cn_last_error());
        harness_failed++;
        return test_summary();
    }
    RUN(ort_agrees_with_convnet_on_mnist);
    cn_dataset_free(&mnist);
    return test_summary();
}
