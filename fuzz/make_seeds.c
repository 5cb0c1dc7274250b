/* One-off generator of the binary seeds in fuzz/corpus/checkpoint and
 * fuzz/corpus/onnx (run by fuzz/make_seeds.sh; not part of the build).
 * Tiny models keep the seeds small: libFuzzer mutates small inputs best. */
#include "checkpoint.h"
#include "io/onnx.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Must match the fixed model in fuzz/fuzz_checkpoint.c. */
static const char tiny_spec[] =
    "input 1x28x28\n"
    "conv2d out=2 k=3 stride=2\n"
    "batchnorm2d\n"
    "relu\n"
    "maxpool2d k=2\n"
    "flatten\n"
    "linear out=10\n";

static const char tiny_gap_spec[] =
    "name tinygap\n"
    "input 1x28x28\n"
    "conv2d out=3 k=5 stride=3 pad=1 bias=false\n"
    "relu\n"
    "avgpool2d k=3 stride=2 pad=1\n"
    "dropout p=0.1\n"
    "conv2d out=10 k=1\n"
    "gap\n"
    "log_softmax\n";

static void die(const char *what) { fprintf(stderr, "make_seeds: %s: %s\n", what, cn_last_error()); exit(1); }

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : "fuzz/corpus";
    char path[512];
    cn_model *m, *g;
    if (cn_model_from_spec(tiny_spec, "tiny", 42, &m)) die("tiny spec");
    if (cn_model_from_spec(tiny_gap_spec, "tinygap", 43, &g)) die("tinygap spec");
    m->bn_batches_tracked[0] = 17;
    for (size_t i = 0; i < m->num_buffers; i++) m->buffers[i] = 0.5f + (float)i;
    cn_checkpoint_info info = {.epoch = 2, .dataset = "mnist", .mean = {0.1307f}, .std = {0.3081f}, .num_classes = 10};
    for (int c = 0; c < 10; c++) snprintf(info.class_names[c], sizeof info.class_names[c], "%d", c);

    snprintf(path, sizeof path, "%s/checkpoint/weights_only.safetensors", dir);
    if (cn_checkpoint_save(path, m, &info, NULL)) die(path);

    cn_optimizer opt;
    cn_scheduler sched;
    if (cn_optimizer_init(&opt, CN_OPT_SGD, m->num_params)) die("optimizer");
    opt.lr = 0.01; opt.momentum = 0.9; opt.steps = 5;
    for (size_t i = 0; i < opt.count; i++) opt.exp_avg[i] = 0.001f * (float)i;
    cn_sched_init(&sched, CN_SCHED_STEP, 0.01);
    sched.step_size = 1;
    sched.gamma = 0.5;
    if (cn_sched_start(&sched)) die("scheduler");
    cn_train_state state = {.optimizer = &opt, .scheduler = &sched, .best_metric = 0.25, .best_epoch = 1};
    cn_rng_seed(&state.rng, 9);
    snprintf(state.config, sizeof state.config, "model=tiny optimizer=sgd lr=0.01 epochs=3 batch_size=64");
    snprintf(path, sizeof path, "%s/checkpoint/with_train_state.safetensors", dir);
    if (cn_checkpoint_save(path, m, &info, &state)) die(path);
    cn_optimizer_free(&opt);

    info.num_classes = 3;
    snprintf(path, sizeof path, "%s/checkpoint/gap_model.safetensors", dir);
    if (cn_checkpoint_save(path, g, &info, NULL)) die(path);

    snprintf(path, sizeof path, "%s/onnx/tiny_bn.onnx", dir);
    if (cn_onnx_export(m, path, 0, (const float[]){0.1307f}, (const float[]){0.3081f})) die(path);
    snprintf(path, sizeof path, "%s/onnx/tiny_bn_folded.onnx", dir);
    if (cn_onnx_export(m, path, 1, (const float[]){0.5f}, (const float[]){0.25f})) die(path);
    snprintf(path, sizeof path, "%s/onnx/tinygap.onnx", dir);
    if (cn_onnx_export(g, path, 0, (const float[]){0.1307f}, (const float[]){0.3081f})) die(path);
    cn_model_free(m);
    cn_model_free(g);
    return 0;
}
