/* Training and inference throughput of the preset models, in images per second.
 *
 *   throughput [--threads N] [--batch N] [--seconds S] [--repeats N] [--peak GFLOPS] [--bf16] [MODEL...]
 *
 * For each model (default: every preset): random inputs and labels held in
 * memory, a few warm-up steps, then `repeats` timed runs of about `seconds`
 * each; the best run counts. A training step is forward (training mode), the
 * loss gradient, backward and an SGD-with-momentum update over the flat
 * parameters; an inference step is forward in eval mode. Prints one
 * tab-separated line per model:
 *   model params macs train_img_s infer_img_s train_gflops infer_gflops train_pct_peak issued_train_macs
 * where training costs 6 x MACs and inference 2 x MACs floating-point
 * operations per image ("direct-equivalent": Winograd does fewer), and
 * issued_train_macs is what the kernels really issue per image in a training
 * step (issued_train_macs below). --bf16 trains in mixed precision (CN_SESSION_BF16, what
 * `convnet train --precision bf16` runs; needs AVX512_BF16); inference stays float32. */
#include "convnet.h"
#include "model.h"
#include "loss.h"
#include "optim.h"
#include "exec/session.h"
#include "layers/layers.h"
#include "core/rng.h"
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Multiply-adds per image of a training step as the chosen kernels issue them: each conv's
 * forward, input gradient (not for the first layer, which needs none) and weight gradient by
 * cn_conv2d_issued_macs; other layers' forward MACs once per pass. */
static double issued_train_macs(const cn_model *m) {
    double total = 0.0;
    for (int i = 0; i < m->num_layers; i++) {
        const cn_layer *l = &m->layers[i];
        if (l->kind == CN_LAYER_CONV2D)
            total += cn_conv2d_issued_macs(l, 0) + (i ? cn_conv2d_issued_macs(l, 1) : 0.0) + cn_conv2d_issued_macs(l, 2);
        else total += (double)l->macs * (i ? 3 : 2);
    }
    return total;
}

typedef struct {
    int threads, batch, repeats;
    double seconds, peak_gflops;
    bool bf16;
} bench_options;

typedef struct {
    cn_model *model;
    cn_session *session;
    cn_optimizer opt;
    float *images, *grad;   /* (B,1,28,28), (B,classes) */
    int *labels;
    int batch, classes;
    cn_rng rng;
} bench_state;

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void train_step(bench_state *s) {
    cn_session_set_dropout_seed(s->session, cn_rng_next(&s->rng));
    cn_session_train_step(s->session, s->images, s->labels, s->batch, 0.0f, s->grad, NULL);
    cn_optimizer_step(&s->opt, s->model->params, cn_session_grads(s->session));
}

static void infer_step(bench_state *s) {
    volatile float sink = cn_session_forward(s->session, s->images, s->batch, NULL)[0];
    (void)sink;
}

/* Best images/second of `repeats` runs of about `seconds` each, after warm-up. */
static double measure(bench_state *s, void (*step)(bench_state *), const bench_options *o) {
    for (int i = 0; i < 3; i++) step(s);
    double t0 = now_seconds();
    step(s);
    double once = now_seconds() - t0;
    int steps = once > 0 ? (int)(o->seconds / once) : 1000;
    if (steps < 2) steps = 2;
    double best = 0.0;
    for (int r = 0; r < o->repeats; r++) {
        double start = now_seconds();
        for (int i = 0; i < steps; i++) step(s);
        double rate = (double)steps * s->batch / (now_seconds() - start);
        if (rate > best) best = rate;
    }
    return best;
}

static int bench_model(const char *name, const bench_options *o) {
    bench_state s = {0};
    if (cn_model_load_spec(name, 1, &s.model) != CN_OK) {
        fprintf(stderr, "throughput: %s: %s\n", name, cn_last_error());
        return 1;
    }
    cn_model *m = s.model;
    s.batch = o->batch;
    s.classes = cn_model_num_classes(m);
    size_t in_size = (size_t)s.batch * cn_shape_size(m->input);
    s.images = malloc(in_size * sizeof *s.images);
    s.grad = malloc((size_t)s.batch * s.classes * sizeof *s.grad);
    s.labels = malloc((size_t)s.batch * sizeof *s.labels);
    if (!s.images || !s.grad || !s.labels || cn_session_create(m, s.batch, o->threads, o->bf16 ? CN_SESSION_BF16 : 0, &s.session) != CN_OK ||
        cn_optimizer_init(&s.opt, CN_OPT_SGD, cn_model_param_count(m)) != CN_OK) {
        fprintf(stderr, "throughput: %s: %s\n", name, cn_last_error());
        return 1;
    }
    cn_rng_seed(&s.rng, 42);
    /* MNIST-like inputs: normalised pixels, mostly background */
    for (size_t i = 0; i < in_size; i++)
        s.images[i] = cn_rng_uniform(&s.rng) < 0.8f ? -0.4242f : 2.8215f * cn_rng_uniform(&s.rng);
    for (int b = 0; b < s.batch; b++) s.labels[b] = (int)cn_rng_below(&s.rng, (uint64_t)s.classes);
    s.opt.lr = 0.01;
    s.opt.momentum = 0.9;

    cn_session_set_training(s.session, true);
    double train = measure(&s, train_step, o);
    cn_session_set_training(s.session, false);
    double infer = measure(&s, infer_step, o);

    double macs = (double)cn_model_macs(m);
    double train_gflops = train * 6.0 * macs * 1e-9, infer_gflops = infer * 2.0 * macs * 1e-9;
    /* A spec file is named by its base name (bench/cifar-c.spec: cifar-c), as torch_bench.py names it. */
    const char *slash = strrchr(name, '/'), *base = slash ? slash + 1 : name;
    size_t len = strlen(base);
    int spec = len > 5 && !strcmp(base + len - 5, ".spec");
    printf("%.*s\t%zu\t%.0f\t%.0f\t%.0f\t%.1f\t%.1f\t%.1f\t%.0f\n", (int)(spec ? len - 5 : len), base, cn_model_param_count(m), macs, train, infer,
           train_gflops, infer_gflops, 100.0 * train_gflops / o->peak_gflops, issued_train_macs(m));
    fflush(stdout);
    cn_optimizer_free(&s.opt);
    free(s.images); free(s.grad); free(s.labels);
    cn_session_free(s.session);
    cn_model_free(m);
    return 0;
}

static int parse_int(const char *s, int lo, const char *what) {
    char *end;
    long v = strtol(s, &end, 10);
    if (*end || v < lo || v > 1 << 20) { fprintf(stderr, "throughput: bad %s '%s'\n", what, s); exit(2); }
    return (int)v;
}

static double parse_double(const char *s, const char *what) {
    char *end;
    double v = strtod(s, &end);
    if (*end || !(v > 0)) { fprintf(stderr, "throughput: bad %s '%s'\n", what, s); exit(2); }
    return v;
}

int main(int argc, char **argv) {
    bench_options o = { .threads = 2, .batch = 128, .repeats = 5, .seconds = 0.4, .peak_gflops = 230.0 };
    const char *models[64];
    int num_models = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int more = i + 1 < argc;
        if (!strcmp(a, "--threads") && more) o.threads = parse_int(argv[++i], 1, "thread count");
        else if (!strcmp(a, "--batch") && more) o.batch = parse_int(argv[++i], 1, "batch size");
        else if (!strcmp(a, "--repeats") && more) o.repeats = parse_int(argv[++i], 1, "repeat count");
        else if (!strcmp(a, "--seconds") && more) o.seconds = parse_double(argv[++i], "seconds");
        else if (!strcmp(a, "--peak") && more) o.peak_gflops = parse_double(argv[++i], "peak");
        else if (!strcmp(a, "--bf16")) o.bf16 = true;
        else if (a[0] == '-') {
            fprintf(stderr, "usage: throughput [--threads N] [--batch N] [--seconds S] [--repeats N] [--peak GFLOPS] [--bf16] [MODEL...]\n");
            return 2;
        } else if (num_models < 64) models[num_models++] = a;
    }
    omp_set_dynamic(0);
    int failed = 0;
    if (num_models)
        for (int i = 0; i < num_models; i++) failed |= bench_model(models[i], &o);
    else
        for (int i = 0; i < cn_preset_count(); i++) failed |= bench_model(cn_preset_name(i), &o);
    return failed;
}
