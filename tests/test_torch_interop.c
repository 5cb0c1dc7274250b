/* A checkpoint written by convnet loads into PyTorch through a numpy-only
 * safetensors reader (tests/torch_load_check.py) and gives the same outputs.
 * Needs Debian's python3-torch; without it the check is reported as skipped. */
#include "harness.h"
#include "checkpoint.h"
#include "exec/session.h"
#include "io/safetensors.h"
#include "core/rng.h"

static int torch_available(void) {
    return system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") == 0;
}

static void check_preset(const char *preset) {
    cn_model *m;
    CHECK(cn_model_load_spec(preset, 5, &m) == CN_OK);
    if (!m) return;
    enum { N = 6 };
    float x[N * 784];
    cn_rng rng;
    cn_rng_seed(&rng, 9);
    for (int i = 0; i < N * 784; i++) x[i] = (float)cn_rng_normal(&rng);
    cn_session *s;
    CHECK(cn_session_create(m, N, 2, 0, &s) == CN_OK);
    if (!s) { cn_model_free(m); return; }
    /* A few training steps' worth of BN statistics, so running stats are not 0/1. */
    cn_session_set_training(s, true);
    for (int k = 0; k < 3; k++) cn_session_forward(s, x, N, &rng);
    cn_session_set_training(s, false);
    const float *y = cn_session_forward(s, x, N, NULL);
    char ckpt[256], io[256], cmd[1024];
    snprintf(ckpt, sizeof ckpt, TEST_TMP "/interop-%s.safetensors", preset);
    snprintf(io, sizeof io, TEST_TMP "/interop-%s-io.safetensors", preset);
    cn_checkpoint_info info = {.epoch = 1, .dataset = "mnist", .mean = {0.1307f}, .std = {0.3081f}, .num_classes = 10};
    CHECK_MSG(cn_checkpoint_save(ckpt, m, &info, NULL) == CN_OK, "%s", cn_last_error());
    cn_st_writer *w = cn_st_writer_new();
    int64_t in_shape[4] = {N, 1, 28, 28}, out_shape[2] = {N, 10};
    CHECK(cn_st_writer_add(w, "input", "F32", 4, in_shape, x) == CN_OK);
    CHECK(cn_st_writer_add(w, "output", "F32", 2, out_shape, y) == CN_OK);
    CHECK(cn_st_writer_save(w, io) == CN_OK);
    cn_st_writer_free(w);
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 tests/torch_load_check.py %s %s %s", preset, ckpt, io);
    int rc = system(cmd);
    CHECK_MSG(rc == 0, "%s exited with %d", cmd, rc);
    cn_session_free(s);
    cn_model_free(m);
}

TEST(checkpoints_load_into_pytorch) {
    if (!torch_available()) { fprintf(stderr, "  note: python3-torch not installed; PyTorch interop check skipped\n"); return; }
    const char *presets[] = {"seed000", "seed001", "seed002", "seed003", "seed004", "ds8k", "res20k"};
    for (int i = 0; i < 7; i++) check_preset(presets[i]);
}

int main(void) {
    RUN(checkpoints_load_into_pytorch);
    return test_summary();
}
