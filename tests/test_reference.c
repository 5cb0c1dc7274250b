/* The engine against PyTorch: every layer's forward and backward, the losses,
 * every preset's forward/loss/gradients, optimizer steps and LR schedules,
 * from fixtures written by tests/fixtures/gen_fixtures.py (torch 1.13). */
#include "harness.h"
#include "fixture.h"
#include "model.h"
#include "exec/session.h"
#include "loss.h"
#include "optim.h"
#include "lr_schedule.h"
#include "checkpoint.h"

/* Builds "input CxHxW\n<layer>\n[flatten]" so any layer's output can end a model. */
static cn_model *layer_model(const cn_st_file *f) {
    char spec[256];
    const char *layer = fixture_meta(f, "layer");
    int flat = !strncmp(layer, "linear", 6) || !strncmp(layer, "log_softmax", 11) || !strncmp(layer, "flatten", 7) ||
               !strncmp(layer, "gap", 3);
    snprintf(spec, sizeof spec, "input %s\n%s\n%s", fixture_meta(f, "input"), layer, flat ? "" : "flatten\n");
    if (!strncmp(layer, "gap", 3)) snprintf(spec, sizeof spec, "input %s\n%s\nflatten\n", fixture_meta(f, "input"), layer);
    cn_model *m = NULL;
    if (cn_model_from_spec(spec, "fixture", 1, &m)) { fprintf(stderr, "  %s\n", cn_last_error()); return NULL; }
    return m;
}

static void check_layer_fixture(const char *name) {
    char rel[128];
    snprintf(rel, sizeof rel, "layers/%s.safetensors", name);
    cn_st_file *f = fixture_open(rel);
    CHECK(f);
    if (!f) return;
    cn_model *m = layer_model(f);
    CHECK(m);
    if (!m) { cn_st_close(f); return; }
    int batch = (int)fixture_meta_num(f, "batch");
    cn_session *s;
    CHECK(cn_session_create(m, batch, 2, 0, &s) == CN_OK);
    const cn_layer *l = &m->layers[0];
    size_t n;
    float *w = cn_st_find(f, "weight") ? fixture_floats(f, "weight", &n) : NULL;
    if (w) { CHECK(n == l->weight_count); memcpy(m->params + l->weight_offset, w, n * sizeof *w); }
    float *b = cn_st_find(f, "bias") ? fixture_floats(f, "bias", &n) : NULL;
    if (b) { CHECK(n == l->bias_count); memcpy(m->params + l->bias_offset, b, n * sizeof *b); }
    size_t n_in, n_out;
    float *x = fixture_floats(f, "input", &n_in), *y = fixture_floats(f, "output", &n_out);
    float *gy = fixture_floats(f, "grad_output", NULL), *gx = fixture_floats(f, "grad_input", NULL);
    float *my_gx = calloc(n_in, sizeof *my_gx);
    CHECK(n_in == (size_t)batch * cn_shape_size(m->input));
    cn_session_set_training(s, true);
    const float *out = cn_session_forward(s, x, batch, NULL);
    CHECK_ALLCLOSE(out, y, n_out, FIXTURE_TOL);
    cn_session_backward_input(s, gy, batch, my_gx);
    CHECK_ALLCLOSE(my_gx, gx, n_in, FIXTURE_TOL);
    const float *grads = cn_session_grads(s);
    if (w) { float *gw = fixture_floats(f, "grad_weight", NULL); CHECK_ALLCLOSE(grads + l->weight_offset, gw, l->weight_count, FIXTURE_TOL); free(gw); }
    if (b) { float *gb = fixture_floats(f, "grad_bias", NULL); CHECK_ALLCLOSE(grads + l->bias_offset, gb, l->bias_count, FIXTURE_TOL); free(gb); }
    if (l->kind == CN_LAYER_BATCHNORM2D) {
        float *rm = fixture_floats(f, "running_mean", NULL), *rv = fixture_floats(f, "running_var", NULL);
        int64_t *nbt = fixture_ints(f, "num_batches_tracked", NULL);
        CHECK_ALLCLOSE(m->buffers + l->buffer_offset, rm, (size_t)l->in.c, FIXTURE_TOL);
        CHECK_ALLCLOSE(m->buffers + l->buffer_offset + l->in.c, rv, (size_t)l->in.c, FIXTURE_TOL);
        CHECK(nbt && m->bn_batches_tracked[0] == nbt[0]);
        cn_session_set_training(s, false);
        float *ey = fixture_floats(f, "eval_output", NULL);
        out = cn_session_forward(s, x, batch, NULL);
        CHECK_ALLCLOSE(out, ey, n_out, FIXTURE_TOL);
        free(rm); free(rv); free(nbt); free(ey);
    }
    free(w); free(b); free(x); free(y); free(gy); free(gx); free(my_gx);
    cn_session_free(s);
    cn_model_free(m);
    cn_st_close(f);
}

TEST(layers_match_pytorch) {
    const char *cases[] = {"avgpool_k5", "batchnorm2d", "conv1x1_pad1", "conv3x3_pad0_bias", "conv3x3_pad1_nobias",
                           "conv5x5_stride2_pad2", "conv_cin1", "conv_depthwise3x3", "conv_depthwise3x3_s2",
                           "conv_depthwise_mult2", "conv_grouped", "conv_dilated", "conv_dilated_s2_grouped", "flatten", "gap", "linear", "log_softmax",
                           "maxpool_k2", "maxpool_k3_s2", "relu", "relu6", "leaky_relu", "batchnorm1d"};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) check_layer_fixture(cases[i]);
}

static void check_loss(const char *name, const char *input_name, int log_probs) {
    char rel[128];
    snprintf(rel, sizeof rel, "losses/%s.safetensors", name);
    cn_st_file *f = fixture_open(rel);
    CHECK(f);
    if (!f) return;
    int batch = (int)fixture_meta_num(f, "batch"), classes = (int)fixture_meta_num(f, "classes");
    float *s = fixture_floats(f, input_name, NULL), *loss = fixture_floats(f, "loss", NULL), *grad = fixture_floats(f, "grad", NULL);
    int64_t *t = fixture_ints(f, "target", NULL);
    int labels[64];
    for (int i = 0; i < batch; i++) labels[i] = (int)t[i];
    float my_grad[640];
    double sum = cn_loss_batch(s, labels, batch, classes, log_probs, (float)fixture_meta_num(f, "label_smoothing"), my_grad, NULL);
    CHECK_NEAR(sum / batch, loss[0], FIXTURE_TOL);
    CHECK_ALLCLOSE(my_grad, grad, (size_t)batch * classes, FIXTURE_TOL);
    free(s); free(loss); free(grad); free(t);
    cn_st_close(f);
}

TEST(losses_match_pytorch) {
    check_loss("cross_entropy", "logits", 0);
    check_loss("cross_entropy_smooth", "logits", 0);
    check_loss("nll", "log_probs", 1);
}

/* Preset `name`, or (fixture not NULL) the model whose spec the fixture's metadata holds. */
static void check_preset(const char *name, const char *fixture) {
    char rel[128];
    snprintf(rel, sizeof rel, "presets/%s.safetensors", name);
    if (fixture) snprintf(rel, sizeof rel, "%s", fixture);
    cn_st_file *f = fixture_open(rel);
    CHECK(f);
    if (!f) return;
    cn_model *m = NULL;
    cn_status st = fixture ? cn_model_from_spec(fixture_meta(f, "spec"), name, 1, &m) : cn_model_load_spec(name, 1, &m);
    CHECK_MSG(st == CN_OK, "%s: %s", name, cn_last_error());
    if (st) { cn_st_close(f); return; }
    CHECK_MSG(cn_checkpoint_read_weights(f, rel, m) == CN_OK, "%s", cn_last_error());
    for (int i = 0; i < m->num_layers; i++) if (m->layers[i].kind == CN_LAYER_DROPOUT) m->layers[i].dropout_p = 0.0f;
    int batch = (int)fixture_meta_num(f, "batch");
    cn_session *s;
    CHECK(cn_session_create(m, batch, 2, 0, &s) == CN_OK);
    cn_session_set_training(s, true);
    float *x = fixture_floats(f, "input", NULL), *y = fixture_floats(f, "output", NULL), *loss = fixture_floats(f, "loss", NULL);
    int64_t *t = fixture_ints(f, "target", NULL);
    int labels[16];
    for (int i = 0; i < batch; i++) labels[i] = (int)t[i];
    const float *out = cn_session_forward(s, x, batch, NULL);
    int classes = cn_model_num_classes(m);
    CHECK_ALLCLOSE(out, y, (size_t)batch * classes, FIXTURE_TOL);
    float grad[160];
    int log_probs = m->layers[m->num_layers - 1].kind == CN_LAYER_LOG_SOFTMAX;
    CHECK(!strcmp(fixture_meta(f, "loss"), log_probs ? "nll" : "cross_entropy"));
    double sum = cn_loss_batch(out, labels, batch, classes, log_probs, 0.0f, grad, NULL);
    CHECK_NEAR(sum / batch, loss[0], FIXTURE_TOL);
    cn_session_backward(s, grad, batch);
    const float *grads = cn_session_grads(s);
    char key[128];
    for (int i = 0; i < m->num_layers; i++) {
        const cn_layer *l = &m->layers[i];
        if (l->weight_count) {
            snprintf(key, sizeof key, "grad.%s.weight", l->name);
            float *g = fixture_floats(f, key, NULL);
            CHECK_ALLCLOSE(grads + l->weight_offset, g, l->weight_count, FIXTURE_TOL);
            free(g);
        }
        if (l->bias_count) {
            snprintf(key, sizeof key, "grad.%s.bias", l->name);
            float *g = fixture_floats(f, key, NULL);
            CHECK_ALLCLOSE(grads + l->bias_offset, g, l->bias_count, FIXTURE_TOL);
            free(g);
        }
        if (l->kind == CN_LAYER_BATCHNORM2D) {
            snprintf(key, sizeof key, "after.%s.running_mean", l->name);
            float *rm = fixture_floats(f, key, NULL);
            snprintf(key, sizeof key, "after.%s.running_var", l->name);
            float *rv = fixture_floats(f, key, NULL);
            CHECK_ALLCLOSE(m->buffers + l->buffer_offset, rm, (size_t)l->in.c, FIXTURE_TOL);
            CHECK_ALLCLOSE(m->buffers + l->buffer_offset + l->in.c, rv, (size_t)l->in.c, FIXTURE_TOL);
            free(rm); free(rv);
        }
    }
    free(x); free(y); free(loss); free(t);
    cn_session_free(s);
    cn_model_free(m);
    cn_st_close(f);
}

TEST(presets_match_pytorch) {
    const char *names[] = {"seed000", "seed001", "seed002", "seed003", "seed004", "ds8k", "cifar-s9", "res20k"};
    for (int i = 0; i < 8; i++) check_preset(names[i], NULL);
}

/* A model with a concat of three branches (torch_models.ConcatNet; its spec is in the
 * fixture): forward, loss, every parameter gradient and BN statistic as PyTorch's. */
TEST(concat_model_matches_pytorch) {
    check_preset("concat", "branches/concat.safetensors");
}

static void check_optimizer(const char *name) {
    char rel[128];
    snprintf(rel, sizeof rel, "optim/%s.safetensors", name);
    cn_st_file *f = fixture_open(rel);
    CHECK(f);
    if (!f) return;
    size_t n;
    float *p = fixture_floats(f, "param0", &n);
    cn_optimizer_kind kind;
    CHECK(cn_optimizer_kind_parse(fixture_meta(f, "optimizer"), &kind) == CN_OK);
    cn_optimizer o;
    CHECK(cn_optimizer_init(&o, kind, n) == CN_OK);
    o.lr = fixture_meta_num(f, "lr");
    o.momentum = fixture_meta_num(f, "momentum");
    o.dampening = fixture_meta_num(f, "dampening");
    o.nesterov = !strcmp(fixture_meta(f, "nesterov"), "true");
    o.weight_decay = fixture_meta_num(f, "weight_decay");
    o.beta1 = fixture_meta_num(f, "beta1");
    o.beta2 = fixture_meta_num(f, "beta2");
    o.eps = fixture_meta_num(f, "eps");
    int steps = (int)fixture_meta_num(f, "steps");
    char key[32];
    for (int k = 0; k < steps; k++) {
        snprintf(key, sizeof key, "grad.%d", k);
        float *g = fixture_floats(f, key, NULL);
        snprintf(key, sizeof key, "param.%d", k);
        float *want = fixture_floats(f, key, NULL);
        cn_optimizer_step(&o, p, g);
        CHECK_ALLCLOSE(p, want, n, 1e-5);
        free(g); free(want);
    }
    cn_optimizer_free(&o);
    free(p);
    cn_st_close(f);
}

TEST(optimizers_match_pytorch) {
    const char *names[] = {"sgd", "sgd_momentum", "sgd_nesterov_wd", "sgd_momentum_dampening", "adam", "adam_wd", "adamw"};
    for (int i = 0; i < 7; i++) check_optimizer(names[i]);
}

static double meta_or(const cn_st_file *f, const char *key, double fallback) {
    const char *v = cn_st_metadata(f, key);
    return v ? strtod(v, NULL) : fallback;
}

static void check_schedule(const char *name) {
    char rel[128];
    snprintf(rel, sizeof rel, "sched/%s.safetensors", name);
    cn_st_file *f = fixture_open(rel);
    CHECK(f);
    if (!f) return;
    size_t n;
    double *want = fixture_doubles(f, "lr", &n);
    double *metric = cn_st_find(f, "metric") ? fixture_doubles(f, "metric", NULL) : NULL;
    double *momentum = cn_st_find(f, "momentum") ? fixture_doubles(f, "momentum", NULL) : NULL;
    cn_sched_kind kind;
    const char *sname = fixture_meta(f, "scheduler");
    CHECK(cn_sched_kind_parse(!strcmp(sname, "steplr") ? "step" : sname, &kind) == CN_OK);
    cn_scheduler s;
    cn_sched_init(&s, kind, meta_or(f, "base_lr", 0.1));
    s.step_size = (int)meta_or(f, "step_size", 1);
    s.gamma = meta_or(f, "gamma", 0.1);
    s.factor = meta_or(f, "factor", 0.1);
    s.patience = (int)meta_or(f, "patience", 10);
    s.threshold = meta_or(f, "threshold", 1e-4);
    s.max_lr = meta_or(f, "max_lr", 0.1);
    s.total_steps = (long)meta_or(f, "total_steps", 0);
    s.pct_start = meta_or(f, "pct_start", 0.3);
    s.div_factor = meta_or(f, "div_factor", 25);
    s.final_div_factor = meta_or(f, "final_div_factor", 1e4);
    s.t_max = (int)meta_or(f, "T_max", 1);
    s.eta_min = meta_or(f, "eta_min", 0);
    CHECK_MSG(cn_sched_start(&s) == CN_OK, "%s", cn_last_error());
    double *got = calloc(n, sizeof *got), *got_m = calloc(n, sizeof *got_m);
    for (size_t k = 0; k < n; k++) {
        if (kind == CN_SCHED_PLATEAU) { cn_sched_epoch_end(&s, metric[k]); got[k] = s.lr; continue; }
        got[k] = s.lr;
        got_m[k] = s.momentum;
        if (kind == CN_SCHED_ONECYCLE) cn_sched_batch_end(&s); else cn_sched_epoch_end(&s, 0.0);
    }
    CHECK_ALLCLOSE_D(got, want, n, 1e-9);
    if (momentum) CHECK_ALLCLOSE_D(got_m, momentum, n, 1e-9);
    free(got); free(got_m); free(want); free(metric); free(momentum);
    cn_st_close(f);
}

TEST(schedules_match_pytorch) {
    const char *names[] = {"steplr", "plateau", "onecycle", "onecycle_adam", "cosine"};
    for (int i = 0; i < 5; i++) check_schedule(names[i]);
}

int main(void) {
    RUN(layers_match_pytorch);
    RUN(losses_match_pytorch);
    RUN(presets_match_pytorch);
    RUN(concat_model_matches_pytorch);
    RUN(optimizers_match_pytorch);
    RUN(schedules_match_pytorch);
    return test_summary();
}
