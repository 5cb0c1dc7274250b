/* int8 inference on the CPU against float inference, in images per second.
 *
 *   int8_throughput [--threads N] [--batch N] [--seconds S] [--repeats N] [MODEL...]
 *
 * For each model (default: seed001, seed003, seed004): random-init weights, random
 * MNIST-like pixel images held in memory; float = the eval-mode forward of a session
 * (the input already normalised, as bench/throughput.c's inference), int8 =
 * cn_int8_predict on the raw pixels (normalisation and quantisation included), calibrated
 * on 200 of the images. A few warm-up calls, then `repeats` timed runs of about `seconds`
 * each; the best run counts. Prints one tab-separated line per model:
 *   model float_img_s int8_img_s ratio kernels */
#include "convnet.h"
#include "model.h"
#include "exec/session.h"
#include "int8/int8_model.h"
#include "core/rng.h"
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    int threads, batch, repeats;
    double seconds;
} bench_options;

typedef struct {
    cn_session *session;
    const cn_int8_model *q;
    const float *pixels, *normalised;
    float *scores;
    int batch, threads;
} bench_state;

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void float_step(bench_state *s) {
    volatile float sink = cn_session_forward(s->session, s->normalised, s->batch, NULL)[0];
    (void)sink;
}

static void int8_step(bench_state *s) {
    if (cn_int8_predict(s->q, s->pixels, s->batch, s->threads, s->scores, NULL) != CN_OK) {
        fprintf(stderr, "int8_throughput: %s\n", cn_last_error());
        exit(1);
    }
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
    cn_model *m;
    if (cn_model_load_spec(name, 1, &m) != CN_OK) {
        fprintf(stderr, "int8_throughput: %s: %s\n", name, cn_last_error());
        return 1;
    }
    int pixels = cn_shape_size(m->input), count = o->batch > 200 ? o->batch : 200;
    float *px = malloc((size_t)count * pixels * sizeof *px), *norm = malloc((size_t)count * pixels * sizeof *norm);
    float *scores = malloc((size_t)o->batch * cn_model_num_classes(m) * sizeof *scores);
    const float mean[4] = {0.1307f, 0.1307f, 0.1307f, 0.1307f}, std[4] = {0.3081f, 0.3081f, 0.3081f, 0.3081f};
    cn_rng rng;
    cn_rng_seed(&rng, 42);
    for (size_t i = 0; px && i < (size_t)count * pixels; i++) {   /* mostly background, as in MNIST */
        px[i] = cn_rng_uniform(&rng) < 0.8f ? 0.0f : cn_rng_uniform(&rng);
        norm[i] = (px[i] - mean[0]) / std[0];
    }
    bench_state s = {.pixels = px, .normalised = norm, .scores = scores, .batch = o->batch, .threads = o->threads};
    cn_int8_model *q = NULL;
    if (!px || !norm || !scores || cn_session_create(m, o->batch, o->threads, 0, &s.session) != CN_OK ||
        cn_int8_model_create(m, mean, std, px, 200, &q) != CN_OK) {
        fprintf(stderr, "int8_throughput: %s: %s\n", name, cn_last_error());
        return 1;
    }
    s.q = q;
    cn_session_set_training(s.session, false);
    double fl = measure(&s, float_step, o), i8 = measure(&s, int8_step, o);
    const char *slash = strrchr(name, '/'), *base = slash ? slash + 1 : name;
    size_t len = strlen(base);
    int spec = len > 5 && !strcmp(base + len - 5, ".spec");
    printf("%.*s\t%.0f\t%.0f\t%.2f\t%s\n", (int)(spec ? len - 5 : len), base, fl, i8, i8 / fl, cn_int8_model_kernels(q));
    fflush(stdout);
    cn_int8_model_free(q);
    cn_session_free(s.session);
    cn_model_free(m);
    free(px); free(norm); free(scores);
    return 0;
}

static int parse_int(const char *s, int lo, const char *what) {
    char *end;
    long v = strtol(s, &end, 10);
    if (*end || v < lo || v > 1 << 20) { fprintf(stderr, "int8_throughput: bad %s '%s'\n", what, s); exit(2); }
    return (int)v;
}

int main(int argc, char **argv) {
    bench_options o = {.threads = 2, .batch = 128, .repeats = 3, .seconds = 0.4};
    const char *models[64];
    int num_models = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int more = i + 1 < argc;
        if (!strcmp(a, "--threads") && more) o.threads = parse_int(argv[++i], 1, "thread count");
        else if (!strcmp(a, "--batch") && more) o.batch = parse_int(argv[++i], 1, "batch size");
        else if (!strcmp(a, "--repeats") && more) o.repeats = parse_int(argv[++i], 1, "repeat count");
        else if (!strcmp(a, "--seconds") && more) {
            char *end;
            o.seconds = strtod(argv[++i], &end);
            if (*end || !(o.seconds > 0)) { fprintf(stderr, "int8_throughput: bad seconds '%s'\n", argv[i]); return 2; }
        } else if (a[0] == '-') {
            fprintf(stderr, "usage: int8_throughput [--threads N] [--batch N] [--seconds S] [--repeats N] [MODEL...]\n");
            return 2;
        } else if (num_models < 64) models[num_models++] = a;
    }
    omp_set_dynamic(0);
    static const char *const defaults[] = {"seed001", "seed003", "seed004"};
    int failed = 0;
    if (!num_models)
        for (int i = 0; i < 3; i++) models[num_models++] = defaults[i];
    for (int i = 0; i < num_models; i++) failed |= bench_model(models[i], &o);
    return failed;
}
