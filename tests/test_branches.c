/* Models with branches: from= (a layer reads a named earlier layer or the input), add and
 * concat. Shapes and spec errors, the forward pass against a hand computation, the eval
 * plan's buffer sharing (values whose readers have all run give their buffer to later
 * ones), and checkpoints. Gradients: test_gradcheck (residual_block, concat_model, ...),
 * against PyTorch: test_reference. */
#include "harness.h"
#include "model.h"
#include "checkpoint.h"
#include "exec/session.h"
#include "exec/team.h"
#include "core/rng.h"
#include "loss.h"
#include <sys/wait.h>

/* A ResNet basic block with a 1x1 projection, as the README shows it. */
static const char *RESIDUAL =
    "input 1x8x8\n"
    "conv2d out=4 k=3 pad=1 bias=false name=stem\n"
    "batchnorm2d name=stem_bn\n"
    "relu name=stem_relu\n"
    "conv2d out=8 k=3 stride=2 pad=1 bias=false name=b1_conv1\n"
    "batchnorm2d name=b1_bn1\n"
    "relu\n"
    "conv2d out=8 k=3 pad=1 bias=false name=b1_conv2\n"
    "batchnorm2d name=b1_bn2\n"
    "conv2d out=8 k=1 stride=2 bias=false from=stem_relu name=b1_proj\n"
    "batchnorm2d name=b1_proj_bn\n"
    "add from=b1_bn2,b1_proj_bn name=b1_add\n"
    "relu\n"
    "gap\n"
    "flatten\n"
    "linear out=3 name=fc\n";

TEST(shapes) {
    cn_model *m;
    cn_status st = cn_model_from_spec(RESIDUAL, "residual", 1, &m);
    CHECK_MSG(st == CN_OK, "%s", cn_last_error());
    if (st) return;
    CHECK(m->num_layers == 15);
    const cn_layer *proj = &m->layers[8], *add = &m->layers[10];
    CHECK(proj->num_inputs == 1 && proj->inputs[0] == 3);       /* stem_relu is layer 2: value 3 */
    CHECK(proj->in.c == 4 && proj->in.h == 8 && proj->out.c == 8 && proj->out.h == 4);
    CHECK(add->kind == CN_LAYER_ADD && add->num_inputs == 2 && add->inputs[0] == 8 && add->inputs[1] == 10);
    CHECK(add->out.c == 8 && add->out.h == 4 && add->out.w == 4 && add->weight_count == 0);
    CHECK(m->layers[4].inputs[0] == 4);                          /* a plain layer reads the one before */
    CHECK(cn_model_has_branches(m));
    CHECK(m->num_params == 4 * 9 + 8 + 8 * 4 * 9 + 16 + 8 * 8 * 9 + 16 + 8 * 4 + 16 + 3 * 8 + 3);
    cn_model_free(m);

    CHECK(cn_model_from_spec("input 3x5x5\nconv2d out=2 k=3 pad=1 name=a\nconcat from=a,input,a2\nflatten", "x", 1, &m) != CN_OK);
    st = cn_model_from_spec("input 3x5x5\nconv2d out=2 k=3 pad=1 name=a\nconv2d out=4 k=1 from=input name=b\n"
                            "concat from=b,input,a\ngap\nflatten", "concat", 1, &m);
    CHECK_MSG(st == CN_OK, "%s", cn_last_error());
    if (st) return;
    CHECK(m->layers[2].out.c == 4 + 3 + 2 && m->layers[2].out.h == 5 && m->layers[2].inputs[1] == 0);
    cn_model_free(m);
    CHECK(cn_model_from_spec("input 1x4x4\nconv2d out=2 k=3\nflatten\nlinear out=3", "plain", 1, &m) == CN_OK);
    if (m) CHECK(!cn_model_has_branches(m));
    cn_model_free(m);
}

/* Each bad spec fails with one message naming the line and what was expected. */
TEST(errors) {
    static const struct { const char *spec, *message; } cases[] = {
        {"input 1x6x6\nconv2d out=2 k=3 name=a\nconv2d out=2 k=3 pad=1 from=input name=b\nadd from=a,b\nflatten",
         "t:4: add: 'b' outputs 2x6x6 but 'a' outputs 2x4x4; add needs equal shapes"},
        {"input 1x6x6\nconv2d out=2 k=3 pad=1 name=a\nconv2d out=3 k=3 pad=1 from=input name=b\nadd from=a,b\nflatten",
         "t:4: add: 'b' outputs 3x6x6 but 'a' outputs 2x6x6; add needs equal shapes"},
        {"input 1x6x6\nconv2d out=2 k=3 name=a\nconcat from=a,input\nflatten",
         "t:3: concat: 'input' outputs 1x6x6 but 'a' outputs 2x4x4; concat needs equal heights and widths"},
        {"input 1x6x6\nconv2d out=2 k=3 name=a\nconv2d out=2 k=1 from=nope\nflatten",
         "t:3: conv2d: from=nope: no earlier layer is named 'nope' (expected 'input' or a name= given on an earlier line)"},
        {"input 1x6x6\nconv2d out=2 k=3 from=later\nconv2d out=2 k=1 name=later\nflatten", "t:2: conv2d: from=later: no earlier layer"},
        {"input 1x6x6\nconv2d out=1 k=3 pad=1 name=a\nadd from=a\nflatten", "t:3: add: needs from=a,b (two or more"},
        {"input 1x6x6\nconv2d out=1 k=3 pad=1 name=a\nconcat\nflatten", "t:3: concat: needs from=a,b"},
        {"input 1x6x6\nconv2d out=1 k=3 pad=1 name=a\nadd from=a,a\nflatten", "t:3: add: from= names 'a' twice"},
        {"input 1x6x6\nconv2d out=1 k=3 pad=1 name=a\nrelu from=a,input\nflatten", "t:3: relu: from= takes one layer (only add and concat join several)"},
        {"input 1x6x6\nconv2d out=1 k=3 pad=1 name=input\nflatten", "t:2: conv2d: name=input: 'input' and names with a comma are reserved"},
        {"input 1x6x6\nconv2d out=1 k=3 pad=1 name=a\nconv2d out=1 k=3 pad=1 from=input\nflatten",
         "t:2: conv2d 'a': no later layer reads its output (the next line reads from=input)"},
        {"input 1x6x6\nconv2d out=1 k=3 pad=1 name=a\nadd from=a,input,\nflatten", NULL},   /* trailing comma: fine */
        {"input 1x6x6\nconv2d out=1 k=3 pad=1 name=a\nadd from=,\nflatten", "t:3: add: from= names no layer"},
        {"input 1x6x6\nrelu from=input from=input\nflatten", "t:2: relu: from= given twice"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cn_model *m = NULL;
        cn_status st = cn_model_from_spec(cases[i].spec, "t", 1, &m);
        if (!cases[i].message) {
            CHECK_MSG(st == CN_OK, "case %zu: %s", i, cn_last_error());
        } else {
            CHECK_MSG(st != CN_OK && strstr(cn_last_error(), cases[i].message) && !strchr(cn_last_error(), '\n'),
                      "case %zu: got '%s', expected '%s'", i, st ? cn_last_error() : "success", cases[i].message);
        }
        cn_model_free(m);
    }
}

/* a = 1x1 conv(x), s = a + x, out = flatten(concat(s, x, a)), computed by hand; eval and
 * training, one thread and a team of two (eval groups share buffers of different widths). */
TEST(forward_by_hand) {
    const char *spec = "input 2x3x3\nconv2d out=2 k=1 name=a\nadd from=a,input name=s\nconcat from=s,input,a\nflatten";
    cn_model *m;
    CHECK(cn_model_from_spec(spec, "hand", 3, &m) == CN_OK);
    if (!m) return;
    enum { B = 9, P = 9, IN = 2 * P, OUT = 6 * P };
    float x[B * IN], want[B * OUT];
    cn_rng rng;
    cn_rng_seed(&rng, 5);
    for (int i = 0; i < B * IN; i++) x[i] = 2.0f * cn_rng_uniform(&rng) - 1.0f;
    const float *w = m->params + m->layers[0].weight_offset, *bias = m->params + m->layers[0].bias_offset;
    for (int b = 0; b < B; b++)
        for (int o = 0; o < 2; o++)
            for (int p = 0; p < P; p++) {
                const float *xb = x + b * IN;
                float a = w[o * 2] * xb[p] + w[o * 2 + 1] * xb[P + p] + bias[o];
                /* rounding as the kernels: exact agreement is not the point, 1e-6 is */
                want[b * OUT + o * P + p] = a + xb[o * P + p];
                want[b * OUT + 2 * P + o * P + p] = xb[o * P + p];
                want[b * OUT + 4 * P + o * P + p] = a;
            }
    for (int threads = 1; threads <= 2; threads++)
        for (int training = 0; training <= 1; training++) {
            cn_session *s;
            CHECK(cn_session_create(m, B, threads, 0, &s) == CN_OK);
            if (!s) continue;
            cn_session_set_training(s, training);
            const float *y = cn_session_forward(s, x, B, NULL);
            double worst = 0.0;
            for (int i = 0; i < B * OUT; i++) worst = fmax(worst, fabs((double)y[i] - want[i]));
            CHECK_MSG(worst < 1e-6, "threads %d training %d: worst difference %g", threads, training, worst);
            cn_session_free(s);
        }
    cn_model_free(m);
}

/* The eval plan of a model with branches: every value is in a buffer that no value still to
 * be read holds, fewer buffers than values, and eval outputs equal training's (no batch
 * norm or dropout here, so the two modes compute the same) on 1 and 2 threads. */
TEST(eval_buffer_lifetimes) {
    const char *spec = "input 2x8x8\nconv2d out=4 k=3 pad=1 name=c1\nrelu name=r1\nconv2d out=4 k=3 pad=1\nrelu\n"
                       "conv2d out=4 k=3 pad=1 name=c3\nadd from=c3,r1 name=s1\nrelu name=r2\nconv2d out=6 k=3 stride=2 pad=1 name=c8\n"
                       "conv2d out=2 k=1 stride=2 from=r2 name=p\nconcat from=p,c8\nflatten\nlinear out=5";
    cn_model *m;
    cn_status st = cn_model_from_spec(spec, "lifetimes", 1, &m);
    CHECK_MSG(st == CN_OK, "%s", cn_last_error());
    if (st) return;
    int L = m->num_layers;
    cn_session *s1, *s2;
    CHECK(cn_session_create(m, 6, 1, 0, &s1) == CN_OK && cn_session_create(m, 6, 2, 0, &s2) == CN_OK);
    const cn_plan *p = &s1->plans[0];
    int last_read[64], distinct = 0;
    for (int v = 0; v <= L; v++) last_read[v] = v == L ? L : -1;
    for (int i = 0; i < L; i++)
        for (int k = 0; k < m->layers[i].num_inputs; k++) last_read[m->layers[i].inputs[k]] = i;
    for (int v = 0; v <= L; v++) {
        bool seen = false;
        for (int u = 0; u < v; u++) seen |= p->buffer[u] == p->buffer[v];
        distinct += !seen;
        /* no value u still live when v is written (u read at or after layer v - 1) shares its buffer,
         * unless v passes u through (flatten in eval) */
        for (int u = 0; u < v; u++)
            if (p->buffer[u] == p->buffer[v] && last_read[u] >= v - 1)
                CHECK_MSG(m->layers[v - 1].kind == CN_LAYER_FLATTEN && m->layers[v - 1].inputs[0] == u,
                          "values %d and %d share buffer %d while %d is live", u, v, p->buffer[v], u);
    }
    CHECK_MSG(distinct < L + 1 && distinct >= 3, "%d buffers for %d values", distinct, L + 1);
    enum { B = 6 };
    int n_in = B * cn_shape_size(m->input), n_out = B * 5;
    float *x = malloc(n_in * sizeof *x), *ref = malloc(n_out * sizeof *ref);
    cn_rng rng;
    cn_rng_seed(&rng, 9);
    for (int i = 0; i < n_in; i++) x[i] = cn_rng_uniform(&rng) - 0.5f;
    cn_session_set_training(s1, true);
    memcpy(ref, cn_session_forward(s1, x, B, NULL), n_out * sizeof *ref);
    cn_session_set_training(s1, false);
    CHECK(memcmp(ref, cn_session_forward(s1, x, B, NULL), n_out * sizeof *ref) == 0);
    CHECK(memcmp(ref, cn_session_forward(s2, x, B, NULL), n_out * sizeof *ref) == 0);
    CHECK(cn_session_uses_team(s2, B));
    free(x); free(ref);
    cn_session_free(s1);
    cn_session_free(s2);
    cn_model_free(m);
}

/* 1 when the safetensors header of the file (after its 8-byte length) contains text. */
static int header_has(const char *path, const char *text) {
    char buf[8192];
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    if (n <= 8) return 0;
    buf[n] = '\0';
    return strstr(buf + 8, text) != NULL;
}

/* A training step on a team of 2 workers, in chunks (no batch norm: exec/passes.c), against
 * forward, loss and backward on 1 thread: same loss and hits, gradients within rounding (the
 * chunks' sums are grouped differently). */
TEST(chunked_training_step) {
    const char *spec = "input 2x8x8\nconv2d out=4 k=3 pad=1 name=a\nrelu name=ra\nconv2d out=4 k=3 pad=1 name=b\n"
                       "conv2d out=4 k=1 from=input name=input_c\nadd from=b,input_c,ra name=s\nrelu\ngap\nflatten\nlinear out=3";
    cn_model *m;
    cn_status st = cn_model_from_spec(spec, "chunks", 2, &m);
    CHECK_MSG(st == CN_OK, "%s", cn_last_error());
    if (st) return;
    CHECK(cn_session_trains_in_chunks(m));
    enum { B = 40 };
    int n_in = B * cn_shape_size(m->input), labels[B], hits[2];
    float *x = malloc(n_in * sizeof *x), grad[2][B * 3];
    cn_rng rng;
    cn_rng_seed(&rng, 3);
    for (int i = 0; i < n_in; i++) x[i] = cn_rng_uniform(&rng) - 0.5f;
    for (int i = 0; i < B; i++) labels[i] = i % 3;
    cn_session *team, *one;
    CHECK(cn_session_create(m, B, 2, 0, &team) == CN_OK && cn_session_create(m, B, 1, 0, &one) == CN_OK);
    cn_session_set_training(team, true);
    cn_session_set_training(one, true);
    double loss_team = cn_session_train_step(team, x, labels, B, 0.0f, grad[0], &hits[0]);
    const float *y = cn_session_forward(one, x, B, NULL);
    double loss_one = cn_loss_batch(y, labels, B, 3, 0, 0.0f, grad[1], &hits[1]);
    cn_session_backward(one, grad[1], B);
    CHECK_NEAR(loss_team, loss_one, 1e-5);
    CHECK(hits[0] == hits[1]);
    const float *g0 = cn_session_grads(team), *g1 = cn_session_grads(one);
    double worst = 0.0;
    for (size_t i = 0; i < m->num_params; i++) worst = fmax(worst, fabs((double)g0[i] - g1[i]) / fmax(1e-3, fabs((double)g1[i])));
    CHECK_MSG(worst < 1e-4, "worst relative gradient difference %g", worst);
    free(x);
    cn_session_free(team);
    cn_session_free(one);
    cn_model_free(m);
}

/* Save and load: the spec with its from= lines comes back, the state dict uses the layers'
 * names, and outputs are the same. */
TEST(checkpoint_round_trip) {
    cn_model *m, *back = NULL;
    CHECK(cn_model_from_spec(RESIDUAL, "residual", 4, &m) == CN_OK);
    if (!m) return;
    for (size_t i = 0; i < m->num_buffers; i++) m->buffers[i] += 0.01f * (float)(i % 7);
    const char *path = TEST_TMP "/branches_ckpt.safetensors";
    cn_checkpoint_info info = {0};
    info.num_classes = 3;
    info.mean[0] = 0.1f;
    info.std[0] = 0.3f;
    cn_status st = cn_checkpoint_save(path, m, &info, NULL);
    CHECK_MSG(st == CN_OK, "%s", cn_last_error());
    CHECK(header_has(path, "\"b1_proj.weight\"") && header_has(path, "\"b1_proj_bn.running_var\""));
    cn_checkpoint_info got;
    st = cn_checkpoint_load(path, &back, &got, NULL);
    CHECK_MSG(st == CN_OK, "%s", cn_last_error());
    if (st) { cn_model_free(m); return; }
    CHECK(back->num_layers == m->num_layers && back->layers[10].kind == CN_LAYER_ADD && back->layers[8].inputs[0] == 3);
    CHECK(memcmp(back->params, m->params, m->num_params * sizeof(float)) == 0);
    CHECK(memcmp(back->buffers, m->buffers, m->num_buffers * sizeof(float)) == 0);
    float x[2 * 64];
    for (int i = 0; i < 128; i++) x[i] = (float)((i * 37) % 17) / 17.0f - 0.4f;
    cn_session *a, *b;
    CHECK(cn_session_create(m, 2, 1, 0, &a) == CN_OK && cn_session_create(back, 2, 1, 0, &b) == CN_OK);
    CHECK(memcmp(cn_session_forward(a, x, 2, NULL), cn_session_forward(b, x, 2, NULL), 6 * sizeof(float)) == 0);
    cn_session_free(a);
    cn_session_free(b);
    cn_model_free(back);
    cn_model_free(m);
}

/* Runs `convnet ARGS` (BUILD: the build directory), stderr into err; the exit status. */
static int convnet(char *err, size_t size, const char *args) {
    const char *build = getenv("BUILD");
    char cmd[2048], err_path[512];
    snprintf(err_path, sizeof err_path, "%s/branches_err.txt", TEST_TMP);
    snprintf(cmd, sizeof cmd, "%s/convnet %s >/dev/null 2>%s </dev/null", build && *build ? build : "build", args, err_path);
    int st = system(cmd);
    FILE *f = fopen(err_path, "r");
    size_t n = f ? fread(err, 1, size - 1, f) : 0;
    err[n] = '\0';
    if (f) fclose(f);
    return st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The exports take models with branches (test_export_c, test_int8, test_web and test_mcu
 * hold them to the engine); here the command line: `export --format c` writes a model.c
 * that compiles as strict C99 and sums the block in add; the web export refuses this model
 * for its 8x8 input only (the page draws 28x28 digits), not for its branches. */
TEST(exports_take_branches) {
    cn_model *m;
    CHECK(cn_model_from_spec(RESIDUAL, "residual", 4, &m) == CN_OK);
    if (!m) return;
    const char *ck = TEST_TMP "/branches_export.safetensors";
    cn_checkpoint_info info = {0};
    info.num_classes = 3;
    info.mean[0] = 0.1f;
    info.std[0] = 0.3f;
    CHECK(cn_checkpoint_save(ck, m, &info, NULL) == CN_OK);
    cn_model_free(m);
    char args[1024], err[2048];
    snprintf(args, sizeof args, "export --weights %s --format c -o %s", ck, TEST_TMP "/branches_c");
    int rc = convnet(err, sizeof err, args);
    CHECK_MSG(rc == 0 && !err[0], "%s: exit %d, stderr '%s'", args, rc, err);
    rc = system("cd " TEST_TMP "/branches_c && cc -std=c99 -Wall -Wextra -Werror -pedantic -c model.c -o model.o"
                " && grep -q '^        add(in, 2, buf[0-9]*, 128, 1);' model.c"
                " && grep -q 'layers b1_proj-b1_proj_bn: conv2d from stem_relu 4x8x8 -> 8x4x4, batch norm folded' model.c");
    CHECK_MSG(rc == 0, "%s/branches_c/model.c: does not compile or has no add", TEST_TMP);
    snprintf(args, sizeof args, "export --weights %s --format web -o %s", ck, TEST_TMP "/branches_web");
    rc = convnet(err, sizeof err, args);
    CHECK_MSG(rc != 0 && (strstr(err, "draws 1x28x28") || strstr(err, "without the WebAssembly runtime")) && !strstr(err, "branches"), "%s: exit %d, stderr '%s'", args, rc, err);
}

int main(void) {
    RUN(shapes);
    RUN(errors);
    RUN(forward_by_hand);
    RUN(eval_buffer_lifetimes);
    RUN(chunked_training_step);
    RUN(checkpoint_round_trip);
    RUN(exports_take_branches);
    return test_summary();
}
