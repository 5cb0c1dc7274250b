/* ONNX import of torch.onnx.export fixtures (tests/fixtures/gen_onnx.py),
 * export -> import round trips, onnx.checker validation when Python's onnx is
 * installed, and error messages for broken or unsupported graphs. */
#include "harness.h"
#include "fixture.h"
#include "io/onnx.h"
#include "io/protobuf_depth.h"
#include "model.h"
#include "exec/session.h"
#include "core/rng.h"
#include "onnx.pb-c.h"
#include <stdint.h>
#include <unistd.h>

static char tmp_dir[64];

static const char *tmp_path(const char *name) {
    static char path[160];
    snprintf(path, sizeof path, "%s/%s", tmp_dir, name);
    return path;
}

/* Eval forward of `batch` inputs; returns a copy (free()). */
static float *forward_copy(cn_model *m, const float *x, int batch) {
    cn_session *s;
    if (cn_session_create(m, batch, 2, 0, &s) != CN_OK) { fprintf(stderr, "  session: %s\n", cn_last_error()); return NULL; }
    const float *y = cn_session_forward(s, x, batch, NULL);
    size_t n = (size_t)batch * cn_model_num_classes(m);
    float *copy = malloc(n * sizeof *copy);
    memcpy(copy, y, n * sizeof *copy);
    cn_session_free(s);
    return copy;
}

static float *random_inputs(int batch, uint64_t seed) {
    cn_rng rng;
    cn_rng_seed(&rng, seed);
    float *x = malloc((size_t)batch * 784 * sizeof *x);
    for (int i = 0; i < batch * 784; i++) x[i] = (cn_rng_uniform(&rng) - 0.1307f) / 0.3081f;
    return x;
}

/* Gives every BN layer non-trivial affine parameters and running statistics. */
static void perturb_bn(cn_model *m, uint64_t seed) {
    cn_rng rng;
    cn_rng_seed(&rng, seed);
    for (int i = 0; i < m->num_layers; i++) {
        cn_layer *l = &m->layers[i];
        if (l->kind != CN_LAYER_BATCHNORM2D) continue;
        int C = l->in.c;
        float *w = m->params + l->weight_offset, *b = m->params + l->bias_offset, *s = m->buffers + l->buffer_offset;
        for (int c = 0; c < C; c++) {
            w[c] = 0.7f + 0.6f * cn_rng_uniform(&rng);
            b[c] = 0.4f * cn_rng_uniform(&rng) - 0.2f;
            s[c] = 0.6f * cn_rng_uniform(&rng) - 0.3f;
            s[C + c] = 0.5f + cn_rng_uniform(&rng);
        }
    }
}

/* ---- torch.onnx.export fixtures ------------------------------------------------ */

static void check_fixture(const char *name, size_t expected_params, int expected_opset, int expected_layers) {
    char onnx_path[128], st_name[128];
    snprintf(onnx_path, sizeof onnx_path, "tests/fixtures/onnx/%s.onnx", name);
    snprintf(st_name, sizeof st_name, "onnx/%s.safetensors", name);
    cn_model *m = NULL;
    cn_onnx_info info;
    cn_status st = cn_onnx_import_ex(onnx_path, &info, &m);
    CHECK_MSG(st == CN_OK, "%s: %s", name, cn_last_error());
    cn_st_file *f = fixture_open(st_name);
    CHECK(f);
    if (st || !f) { cn_model_free(m); cn_st_close(f); return; }
    CHECK_MSG(cn_model_param_count(m) == expected_params, "%s: %zu params, expected %zu", name, cn_model_param_count(m), expected_params);
    CHECK_MSG(info.opset == expected_opset, "%s: opset %d", name, info.opset);
    CHECK_MSG(!strncmp(info.producer, "pytorch", 7), "%s: producer '%s'", name, info.producer);
    CHECK_MSG(m->num_layers == expected_layers, "%s: %d layers, expected %d:\n%s", name, m->num_layers, expected_layers, m->spec_text);
    size_t nx = 0, ny = 0;
    float *x = fixture_floats(f, "input", &nx), *y = fixture_floats(f, "output", &ny);
    bool softmax = fixture_meta_num(f, "softmax") == 1;
    CHECK(info.softmax_as_log_softmax == softmax);
    if (x && y && nx == 4 * 784 && ny == 4 * 10 && cn_model_num_classes(m) == 10) {
        float *out = forward_copy(m, x, 4);
        if (softmax)
            for (int i = 0; i < 40; i++) out[i] = expf(out[i]);
        CHECK_ALLCLOSE(out, y, 40, 1e-4);
        free(out);
    } else {
        CHECK_MSG(false, "%s: fixture sizes %zu/%zu, classes %d", name, nx, ny, cn_model_num_classes(m));
    }
    free(x);
    free(y);
    cn_st_close(f);
    cn_model_free(m);
}

/* Conv+BN pairs come fused (BN parameters gone); dropout is absent from eval exports. */
TEST(import_seed000_fused_bn) { check_fixture("seed000", 16946 - 2 * (16 + 32 + 40), 13, 11); }
TEST(import_seed001_bn_after_relu_identity_aliases) { check_fixture("seed001", 19452, 13, 25); }
TEST(import_seed002_fully_convolutional) { check_fixture("seed002", 9032, 13, 16); }
TEST(import_seed003_view_opset11) { check_fixture("seed003", 23354, 11, 13); }
TEST(import_seed004_fused_bn) { check_fixture("seed004", 22334 - 2 * (20 + 28 + 64), 13, 12); }
TEST(import_quirks_opset11) { check_fixture("quirks11", 4 * 9 + 4 + 6 * 4 * 9 + 6 + 294 * 10 + 10, 11, 9); }
TEST(import_quirks_opset13) { check_fixture("quirks13", 4 * 9 + 4 + 6 * 4 * 9 + 6 + 294 * 10 + 10, 13, 9); }
/* Without constant folding: F.pad's pads come from Shape/Gather/Mul/Sub/ConstantOfShape/... at run time. */
TEST(import_quirks_no_constant_folding) { check_fixture("quirks_nofold", 4 * 9 + 4 + 6 * 4 * 9 + 6 + 294 * 10 + 10, 13, 9); }
/* Opset 9, initializers also listed as graph inputs. */
TEST(import_seed002_opset9_initializers_as_inputs) { check_fixture("seed002_op9", 9032, 9, 16); }
/* Conv group = channels (depthwise, stride 2) and dilations (one grouped, one strided), BNs fused by torch. */
TEST(import_depthwise_separable_opset11) { check_fixture("dsconv_op11", 80 + 80 + 144 + 160 + 408 + 250, 11, 13); }
TEST(import_dilated_opset17) { check_fixture("dilated_op17", 80 + 592 + 2320 + 170, 17, 11); }
/* Clip(0, 6) as relu6, LeakyRelu, BatchNormalization of a flat tensor as batchnorm1d. */
/* torch.onnx.export of branches: res20k (Add of a block and its shortcut, BN folded into the
 * convs by torch: 19,706 - 288 BN + 144 conv biases), and torch.cat of three branches. */
TEST(import_residual_opset17) { check_fixture("residual_op17", 19562, 17, 17); }
TEST(import_concat_opset11) { check_fixture("concat_op11", 3766, 11, 12); }
TEST(import_small_layers_opset13) { check_fixture("small_layers_op13", 80 + 80 + 144 + 32 + 170, 13, 10); }

/* The document's Net keeps its module names as state-dict prefixes. */
TEST(import_keeps_torch_names) {
    cn_model *m = NULL;
    CHECK(cn_onnx_import("tests/fixtures/onnx/seed003.onnx", &m) == CN_OK);
    if (!m) return;
    CHECK(!strcmp(m->layers[0].name, "conv1"));
    CHECK(!strcmp(m->layers[11].name, "fc1"));
    CHECK(m->layers[11].kind == CN_LAYER_LINEAR);
    CHECK(m->layers[10].kind == CN_LAYER_FLATTEN);
    cn_model_free(m);
    /* Sequential exports: module indices from the node names ("/1/Relu"), fused convs keep the conv's name. */
    CHECK(cn_onnx_import("tests/fixtures/onnx/seed001.onnx", &m) == CN_OK);
    if (!m) return;
    CHECK(!strcmp(m->layers[1].name, "1") && !strcmp(m->layers[2].name, "2") && !strcmp(m->layers[3].name, "4"));
    cn_model_free(m);
    CHECK(cn_onnx_import("tests/fixtures/onnx/seed000.onnx", &m) == CN_OK);
    if (!m) return;
    CHECK(!strcmp(m->layers[3].name, "4") && !strcmp(m->layers[10].name, "14"));
    cn_model_free(m);
    /* quirks: AvgPool2d(3, 2, padding=1) came as Pad + AveragePool; F.pad(1) + conv(pad 0) as a padded conv. */
    CHECK(cn_onnx_import("tests/fixtures/onnx/quirks13.onnx", &m) == CN_OK);
    if (!m) return;
    CHECK(m->layers[2].kind == CN_LAYER_AVGPOOL2D && m->layers[2].pad == 1 && m->layers[2].kernel == 3 && m->layers[2].stride == 2);
    CHECK(m->layers[3].kind == CN_LAYER_CONV2D && m->layers[3].pad == 1);
    CHECK(m->layers[5].kind == CN_LAYER_MAXPOOL2D && m->layers[5].pad == 1);
    CHECK(m->layers[m->num_layers - 1].kind == CN_LAYER_LOG_SOFTMAX);
    cn_model_free(m);
}

/* Nested modules: torch names the scopes "/stem/stem.0/Conv" (each scope the module's name cut
 * back to its last non-numeric atom); the layer takes PyTorch's module path "stem.0", the name
 * the res20k preset gives its stem conv. (The fixture's blocks are ModuleDicts whose `run` is
 * not a forward: torch records no "block1" scope, so those convs are "conv1", "proj.0", ...) */
TEST(import_names_nested_modules_by_module_path) {
    cn_model *m = NULL, *preset = NULL;
    CHECK(cn_onnx_import("tests/fixtures/onnx/residual_op17.onnx", &m) == CN_OK);
    CHECK(cn_model_load_spec("res20k", 1, &preset) == CN_OK);
    if (m && preset) {
        CHECK_MSG(!strcmp(m->layers[0].name, "stem.0") && !strcmp(preset->layers[0].name, "stem.0"), "%s / %s",
                  m->layers[0].name, preset->layers[0].name);
        int proj = 0;
        for (int i = 0; i < m->num_layers; i++) proj += !strcmp(m->layers[i].name, "proj.0");
        CHECK(proj == 1);
    }
    cn_model_free(m);
    cn_model_free(preset);
    m = NULL;
    CHECK(cn_onnx_import("tests/fixtures/onnx/concat_op11.onnx", &m) == CN_OK);
    if (m) {
        CHECK_MSG(!strcmp(m->layers[0].name, "stem.0"), "%s", m->layers[0].name);
        for (int i = 0; i < m->num_layers; i++)
            CHECK_MSG(strncmp(m->layers[i].name, "stem.stem", 9), "layer %d named %s", i, m->layers[i].name);
    }
    cn_model_free(m);
}

/* ---- export -> import round trips ------------------------------------------------- */

static int python_onnx_available(void) {
    static int cached = -1;
    if (cached < 0) {
        cached = access("/usr/bin/python3", X_OK) == 0 &&
                 system("/usr/bin/python3 -c 'import onnx' >/dev/null 2>&1") == 0;
        if (!cached) printf("note: /usr/bin/python3 with onnx is not available; skipping onnx.checker validation\n");
    }
    return cached;
}

/* Exported files are collected and validated with onnx.checker in one Python run at the end. */
static char exported[32][160];
static int num_exported;

static void onnx_check(const char *path) {
    if (num_exported < 32) snprintf(exported[num_exported++], sizeof exported[0], "%s", path);
}

TEST(onnx_checker_accepts_exports) {
    if (!python_onnx_available()) return;
    CHECK(num_exported > 10);
    char cmd[8192];
    size_t n = (size_t)snprintf(cmd, sizeof cmd, "/usr/bin/python3 -c \"import onnx, sys\n"
                                "for p in sys.argv[1:]:\n"
                                "    onnx.checker.check_model(onnx.load(p), full_check=True)\n"
                                "print('onnx.checker: %d exported files valid')\"", num_exported);
    for (int i = 0; i < num_exported && n < sizeof cmd; i++) n += (size_t)snprintf(cmd + n, sizeof cmd - n, " %s", exported[i]);
    CHECK(n < sizeof cmd);
    int rc = system(cmd);
    CHECK_MSG(rc == 0, "onnx.checker rejected an exported file");
}

/* Exports m (named preset in messages) with or without folded batch norms, imports it back
 * and compares layers, names, parameters and outputs; frees m. */
static void round_trip_model(cn_model *m, const char *preset, int fold) {
    cn_model *back = NULL;
    perturb_bn(m, 7);
    char file[64];
    snprintf(file, sizeof file, "%s-fold%d.onnx", preset, fold);
    const char *path = tmp_path(file);
    cn_status st = cn_onnx_export(m, path, fold, (const float[]){0.1307f}, (const float[]){0.3081f});
    CHECK_MSG(st == CN_OK, "%s: %s", preset, cn_last_error());
    onnx_check(path);
    cn_onnx_info info;
    st = cn_onnx_import_ex(path, &info, &back);
    CHECK_MSG(st == CN_OK, "%s fold=%d: %s", preset, fold, cn_last_error());
    if (st) { cn_model_free(m); return; }
    CHECK(info.opset == 13 && info.has_normalization && info.mean[0] == 0.1307f && info.std[0] == 0.3081f);
    CHECK(!strcmp(info.producer, "convnet 1"));
    int dropouts = 0, bn_after_conv = 0;
    for (int i = 0; i < m->num_layers; i++) {
        if (m->layers[i].kind == CN_LAYER_DROPOUT) dropouts++;
        /* folded: a BN that alone reads the conv before it */
        int readers = 0;
        for (int j = 0; j < m->num_layers; j++)
            for (int k = 0; k < m->layers[j].num_inputs; k++) readers += m->layers[j].inputs[k] == i;
        if (i > 0 && m->layers[i].kind == CN_LAYER_BATCHNORM2D && m->layers[i - 1].kind == CN_LAYER_CONV2D &&
            m->layers[i].inputs[0] == i && readers == 1)
            bn_after_conv++;
    }
    int expected_layers = m->num_layers - dropouts - (fold ? bn_after_conv : 0);
    CHECK_MSG(back->num_layers == expected_layers, "%s fold=%d: %d layers, expected %d", preset, fold, back->num_layers, expected_layers);
    if (!fold) {
        CHECK(back->num_params == m->num_params);
        /* Same state-dict names, same values. */
        for (int i = 0, j = 0; i < m->num_layers && j < back->num_layers; i++) {
            if (m->layers[i].kind == CN_LAYER_DROPOUT) continue;
            if (m->layers[i].weight_count)
                CHECK_MSG(!strcmp(m->layers[i].name, back->layers[j].name), "%s: layer %d named %s, expected %s",
                          preset, j, back->layers[j].name, m->layers[i].name);
            j++;
        }
        CHECK(!memcmp(m->params, back->params, m->num_params * sizeof(float)));
        CHECK(!memcmp(m->buffers, back->buffers, m->num_buffers * sizeof(float)));
    }
    int batch = 6;
    float *x = random_inputs(batch, 99);
    float *a = forward_copy(m, x, batch), *b = forward_copy(back, x, batch);
    if (a && b) CHECK_ALLCLOSE(b, a, (size_t)batch * cn_model_num_classes(m), fold ? 1e-4 : 1e-6);
    free(x); free(a); free(b);
    cn_model_free(m);
    cn_model_free(back);
}

static void round_trip(const char *preset, int fold) {
    cn_model *m = NULL;
    CHECK(cn_model_load_spec(preset, 42, &m) == CN_OK);
    if (m) round_trip_model(m, preset, fold);
}

/* Conv group and dilations both ways, with and without a BN folded into a depthwise conv. */
TEST(round_trip_grouped_dilated) {
    const char *spec = "input 1x28x28\nconv2d out=8 k=3 pad=1 bias=false\nbatchnorm2d\nrelu\n"
                       "conv2d out=8 k=3 stride=2 pad=1 groups=8\nbatchnorm2d\nrelu\n"
                       "conv2d out=16 k=3 pad=2 dilation=2 groups=2\nrelu\nconv2d out=12 k=3 dilation=3 stride=2\n"
                       "relu6\ndropout2d p=0.1\nleaky_relu slope=0.3\ngap\nflatten\nlinear out=12\nbatchnorm1d\nrelu\nlinear out=10\n";
    for (int fold = 0; fold < 2; fold++) {
        cn_model *m = NULL;
        CHECK_MSG(cn_model_from_spec(spec, "grouped", 42, &m) == CN_OK, "%s", cn_last_error());
        if (m) round_trip_model(m, fold ? "grouped-dilated-fold" : "grouped-dilated", fold);
    }
}

/* Branches: export writes Add and Concat nodes (a chain of Adds for three inputs, a Flatten
 * before adding a flat and a N x C x 1 x 1 tensor), import maps them back onto from=, add and
 * concat: same layers, from= links, names, parameters and outputs; --fold-bn folds only the
 * batch norms that alone read their conv. */
TEST(round_trip_branches) {
    /* a concat of four branches (b is read by bb as well: --fold-bn keeps bb), an add of three
     * (the third: the input itself, pooled and widened) and an add of two flat values */
    const char *spec = "input 1x28x28\n"
        "conv2d out=8 k=3 pad=1 bias=false name=c1\nbatchnorm2d name=c1_bn\nrelu name=r1\nmaxpool2d k=2 name=p1\n"
        "conv2d out=8 k=3 pad=1 name=a\nrelu name=ra\nconv2d out=4 k=1 from=p1 name=b\nbatchnorm2d name=bb\n"
        "concat from=ra,b,bb,p1 name=cat\nconv2d out=8 k=3 stride=2 pad=1 bias=false name=c2\nbatchnorm2d name=c2_bn\n"
        "relu name=r2\navgpool2d k=4 from=input\nconv2d out=8 k=1 name=input_pool\nconv2d out=8 k=1 from=cat stride=2 name=p2\n"
        "add from=r2,p2,input_pool name=sum3\ngap name=g\nflatten name=f\nlinear out=8 name=l1\nflatten from=g name=gf\n"
        "add from=l1,gf name=sum\nrelu name=r3\nlinear out=10 name=fc\n";
    const char *models[][2] = {{"res20k", NULL}, {"branches", spec}};
    for (int i = 0; i < 2; i++)
        for (int fold = 0; fold < 2; fold++) {
            cn_model *m = NULL;
            cn_status st = models[i][1] ? cn_model_from_spec(models[i][1], models[i][0], 42, &m) : cn_model_load_spec(models[i][0], 42, &m);
            CHECK_MSG(st == CN_OK, "%s: %s", models[i][0], cn_last_error());
            if (!m) continue;
            char label[64];
            snprintf(label, sizeof label, "%s%s", models[i][0], fold ? "-fold" : "");
            /* the links survive: every layer of the import reads the same layers (by name) */
            cn_model *copy = NULL;
            CHECK(cn_model_from_spec(m->spec_text, "copy", 42, &copy) == CN_OK);
            round_trip_model(m, label, fold);
            if (!fold && copy) {
                cn_model *back = NULL;
                char file[96];
                snprintf(file, sizeof file, "%.60s-fold0.onnx", label);
                CHECK(cn_onnx_import(tmp_path(file), &back) == CN_OK);
                for (int l = 0; back && l < copy->num_layers; l++) {
                    const cn_layer *a = &copy->layers[l], *b = &back->layers[l];
                    CHECK_MSG(a->kind == b->kind && a->num_inputs == b->num_inputs, "%s layer %d", label, l);
                    for (int k = 0; k < a->num_inputs && k < b->num_inputs; k++)
                        CHECK_MSG(a->inputs[k] == b->inputs[k], "%s layer %d input %d: %d vs %d\n%s", label, l, k,
                                  a->inputs[k], b->inputs[k], back->spec_text);
                }
                cn_model_free(back);
            }
            cn_model_free(copy);
        }
    /* add of a flat (linear) and an N x C x 1 x 1 (gap) value: the export flattens the latter
     * (the import then has that flatten as a layer of its own); same outputs */
    cn_model *m = NULL, *back = NULL;
    CHECK(cn_model_from_spec("input 1x6x6\nconv2d out=4 k=3 name=c\ngap name=g\nflatten\nlinear out=4 name=l\n"
                             "add from=l,g\nlinear out=3", "mixed", 5, &m) == CN_OK);
    const char *path = tmp_path("mixed-ranks.onnx");
    CHECK(m && cn_onnx_export(m, path, 0, (const float[]){0.1307f}, (const float[]){0.3081f}) == CN_OK);
    onnx_check(path);
    cn_status st = cn_onnx_import(path, &back);
    CHECK_MSG(st == CN_OK, "%s", cn_last_error());
    if (m && back) {
        CHECK(back->num_layers == m->num_layers + 1 && back->layers[4].kind == CN_LAYER_FLATTEN && back->layers[5].kind == CN_LAYER_ADD);
        float *x = random_inputs(3, 5), *a = forward_copy(m, x, 3), *b = forward_copy(back, x, 3);
        if (a && b) CHECK_ALLCLOSE(b, a, 9, 1e-6);
        free(x); free(a); free(b);
    }
    cn_model_free(m);
    cn_model_free(back);
}

TEST(round_trip_presets) {
    const char *presets[] = {"seed000", "seed001", "seed002", "seed003", "seed004", "seed004-net"};
    for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++) {
        round_trip(presets[i], 0);
        round_trip(presets[i], 1);
    }
}

/* Exported graph layout: names, opset, symbolic batch, metadata. */
TEST(export_layout) {
    cn_model *m = NULL;
    CHECK(cn_model_load_spec("seed000", 1, &m) == CN_OK);
    if (!m) return;
    const char *path = tmp_path("layout.onnx");
    CHECK(cn_onnx_export(m, path, 0, (const float[]){0.5f}, (const float[]){0.25f}) == CN_OK);
    FILE *f = fopen(path, "rb");
    CHECK(f);
    if (!f) { cn_model_free(m); return; }
    static uint8_t buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    Onnx__ModelProto *mp = onnx__model_proto__unpack(NULL, n, buf);
    CHECK(mp);
    if (mp) {
        CHECK(mp->n_opset_import == 1 && mp->opset_import[0]->version == 13);
        const Onnx__GraphProto *g = mp->graph;
        CHECK(g->n_input == 1 && !strcmp(g->input[0]->name, "input"));
        CHECK(g->n_output == 1 && !strcmp(g->output[0]->name, "output"));
        const Onnx__TensorShapeProto *s = g->input[0]->type->tensor_type->shape;
        CHECK(s->n_dim == 4 && s->dim[0]->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM &&
              !strcmp(s->dim[0]->dim_param, "batch") && s->dim[1]->dim_value == 1 && s->dim[3]->dim_value == 28);
        CHECK(g->output[0]->type->tensor_type->shape->n_dim == 2);
        CHECK(!strcmp(g->initializer[0]->name, "0.weight"));
        CHECK(!strcmp(g->initializer[2]->name, "1.weight") && !strcmp(g->initializer[4]->name, "1.running_mean"));
        int has_dropout = 0, flatten = 0;
        for (size_t i = 0; i < g->n_node; i++) {
            if (!strcmp(g->node[i]->op_type, "Dropout")) has_dropout = 1;
            if (!strcmp(g->node[i]->op_type, "Flatten")) flatten++;
        }
        CHECK(!has_dropout && flatten == 1);
        CHECK(!strcmp(g->node[g->n_node - 1]->op_type, "Gemm"));
        int found = 0;
        for (size_t i = 0; i < mp->n_metadata_props; i++) {
            if (!strcmp(mp->metadata_props[i]->key, "normalize_mean") && !strcmp(mp->metadata_props[i]->value, "0.5")) found++;
            if (!strcmp(mp->metadata_props[i]->key, "normalize_std") && !strcmp(mp->metadata_props[i]->value, "0.25")) found++;
        }
        CHECK(found == 2);
        onnx__model_proto__free_unpacked(mp, NULL);
    }
    /* No temporary file is left behind. */
    char cmd[200];
    snprintf(cmd, sizeof cmd, "ls %s | grep -q tmp", tmp_dir);
    CHECK(system(cmd) != 0);
    cn_model_free(m);
}

/* A model ending in gap without flatten gets a Flatten so that the output is [N, classes]. */
TEST(export_adds_flatten) {
    cn_model *m = NULL, *back = NULL;
    CHECK(cn_model_from_spec("conv2d out=10 k=3\nrelu\ngap\n", "gaptest", 3, &m) == CN_OK);
    if (!m) return;
    const char *path = tmp_path("gap.onnx");
    CHECK(cn_onnx_export(m, path, 1, (const float[]){0.0f}, (const float[]){1.0f}) == CN_OK);
    onnx_check(path);
    CHECK(cn_onnx_import(path, &back) == CN_OK);
    if (back) {
        CHECK(back->num_layers == 4 && back->layers[3].kind == CN_LAYER_FLATTEN);
        float *x = random_inputs(3, 5);
        float *a = forward_copy(m, x, 3), *b = forward_copy(back, x, 3);
        CHECK_ALLCLOSE(b, a, 30, 1e-6);
        free(x); free(a); free(b);
    }
    cn_model_free(back);
    cn_model_free(m);
}

TEST(export_rejects_bad_arguments) {
    cn_model *m = NULL;
    CHECK(cn_model_load_spec("seed002", 1, &m) == CN_OK);
    if (!m) return;
    CHECK(cn_onnx_export(m, tmp_path("x.onnx"), 0, (const float[]){0.1f}, (const float[]){0.0f}) == CN_ERR_ARG);
    CHECK(cn_onnx_export(m, "/nonexistent-dir/x.onnx", 0, (const float[]){0.1f}, (const float[]){0.3f}) == CN_ERR_IO);
    CHECK(strstr(cn_last_error(), "/nonexistent-dir/x.onnx") != NULL);
    m->params[5] = NAN;
    CHECK(cn_onnx_export(m, tmp_path("x.onnx"), 0, (const float[]){0.1f}, (const float[]){0.3f}) == CN_ERR_NUMERIC);
    CHECK(strstr(cn_last_error(), "layer 0") != NULL);
    cn_model_free(m);
}

/* ---- errors --------------------------------------------------------------------------- */

static uint8_t *read_all(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc((size_t)n);
    *size = fread(buf, 1, (size_t)n, f);
    fclose(f);
    return buf;
}

static uint8_t *pack(const Onnx__ModelProto *mp, size_t *size) {
    *size = onnx__model_proto__get_packed_size(mp);
    uint8_t *buf = malloc(*size ? *size : 1);
    onnx__model_proto__pack(mp, buf);
    return buf;
}

/* Imports a packed message; checks the status and that the message contains every `needles` string. */
static void expect_error(const uint8_t *buf, size_t size, cn_status expected, const char *const *needles) {
    cn_model *m = NULL;
    cn_status st = cn_onnx_import_memory(buf, size, "model.onnx", NULL, &m);
    CHECK_MSG(st == expected, "status %d (%s), expected %d: %s", st, cn_status_name(st), expected, cn_last_error());
    CHECK(m == NULL);
    for (; *needles; needles++)
        CHECK_MSG(strstr(cn_last_error(), *needles) != NULL, "message \"%s\" lacks \"%s\"", cn_last_error(), *needles);
    CHECK(strchr(cn_last_error(), '\n') == NULL);
    cn_model_free(m);
}

#define NEEDLES(...) ((const char *const[]){__VA_ARGS__, NULL})

static Onnx__ModelProto *load_fixture_proto(const char *name, uint8_t **raw) {
    char path[128];
    size_t n;
    snprintf(path, sizeof path, "tests/fixtures/onnx/%s.onnx", name);
    *raw = read_all(path, &n);
    return *raw ? onnx__model_proto__unpack(NULL, n, *raw) : NULL;
}

static int find_node(const Onnx__GraphProto *g, const char *op, int nth) {
    for (size_t i = 0; i < g->n_node; i++)
        if (!strcmp(g->node[i]->op_type, op) && nth-- == 0) return (int)i;
    return -1;
}

static Onnx__AttributeProto *find_attr(Onnx__NodeProto *n, const char *name) {
    for (size_t i = 0; i < n->n_attribute; i++)
        if (!strcmp(n->attribute[i]->name, name)) return n->attribute[i];
    return NULL;
}

TEST(error_unsupported_operator) {
    uint8_t *raw, *buf;
    size_t size;
    Onnx__ModelProto *mp = load_fixture_proto("seed003", &raw);
    CHECK(mp);
    if (!mp) { free(raw); return; }
    Onnx__NodeProto *n = mp->graph->node[find_node(mp->graph, "Relu", 1)];
    char *old_op = n->op_type, *old_name = n->name;
    n->op_type = "Sigmoid";
    n->name = "/Sigmoid";
    buf = pack(mp, &size);
    expect_error(buf, size, CN_ERR_UNSUPPORTED, NEEDLES("model.onnx: node 3 \"/Sigmoid\": operator Sigmoid is not supported (supported: Conv,"));
    free(buf);
    n->op_type = old_op;
    n->name = old_name;
    onnx__model_proto__free_unpacked(mp, NULL);
    free(raw);
}

/* Metadata "classes" and "dataset": read back, and bad values refused in one line. */
TEST(class_names_metadata) {
    uint8_t *raw, *buf;
    size_t size;
    Onnx__ModelProto *mp = load_fixture_proto("seed003", &raw);
    if (!mp) { CHECK(mp); free(raw); return; }
    Onnx__StringStringEntryProto classes = ONNX__STRING_STRING_ENTRY_PROTO__INIT, dataset = ONNX__STRING_STRING_ENTRY_PROTO__INIT;
    classes.key = "classes";
    dataset.key = "dataset";
    dataset.value = "digits";
    Onnx__StringStringEntryProto *props[3] = {&classes, &dataset, &classes};
    size_t old_n = mp->n_metadata_props;
    Onnx__StringStringEntryProto **old_props = mp->metadata_props;
    mp->metadata_props = props;
    mp->n_metadata_props = 2;
    classes.value = "zero,one,two,three,four,five,six,seven,eight,nine";
    buf = pack(mp, &size);
    static cn_onnx_info info;
    cn_model *m = NULL;
    CHECK_MSG(cn_onnx_import_memory(buf, size, "model.onnx", &info, &m) == CN_OK, "%s", cn_last_error());
    CHECK(info.num_class_names == 10 && !strcmp(info.class_names[0], "zero") && !strcmp(info.class_names[9], "nine"));
    CHECK(!strcmp(info.dataset, "digits"));
    cn_model_free(m);
    free(buf);
    classes.value = "zero,one,two";
    buf = pack(mp, &size);
    expect_error(buf, size, CN_ERR_FORMAT, NEEDLES("model.onnx: metadata classes has 3 names but the model outputs 10 classes"));
    free(buf);
    classes.value = "zero,,two";
    buf = pack(mp, &size);
    expect_error(buf, size, CN_ERR_FORMAT, NEEDLES("model.onnx: metadata classes: name 2 is 0 bytes; expected 1 to 31"));
    free(buf);
    classes.value = "a-class-name-far-longer-than-the-limit,b";
    buf = pack(mp, &size);
    expect_error(buf, size, CN_ERR_FORMAT, NEEDLES("name 1 is 38 bytes; expected 1 to 31"));
    free(buf);
    mp->n_metadata_props = 3;
    classes.value = "a,b";
    buf = pack(mp, &size);
    expect_error(buf, size, CN_ERR_FORMAT, NEEDLES("model.onnx: metadata classes is given twice"));
    free(buf);
    mp->metadata_props = old_props;
    mp->n_metadata_props = old_n;
    onnx__model_proto__free_unpacked(mp, NULL);
    free(raw);
}

TEST(error_missing_initializer) {
    uint8_t *raw, *buf;
    size_t size;
    Onnx__ModelProto *mp = load_fixture_proto("seed003", &raw);
    if (!mp) { CHECK(mp); free(raw); return; }
    Onnx__GraphProto *g = mp->graph;
    /* Move "conv2.weight" to the end and hide it. */
    size_t k = 0;
    while (k < g->n_initializer && strcmp(g->initializer[k]->name, "conv2.weight")) k++;
    CHECK(k < g->n_initializer);
    Onnx__TensorProto *t = g->initializer[k];
    g->initializer[k] = g->initializer[g->n_initializer - 1];
    g->initializer[g->n_initializer - 1] = t;
    g->n_initializer--;
    buf = pack(mp, &size);
    expect_error(buf, size, CN_ERR_FORMAT, NEEDLES("node 2 \"/conv2/Conv\" (Conv): input \"conv2.weight\" has no initializer"));
    free(buf);
    g->n_initializer++;
    onnx__model_proto__free_unpacked(mp, NULL);
    free(raw);
}

TEST(error_bad_tensor_data) {
    uint8_t *raw, *buf;
    size_t size;
    Onnx__ModelProto *mp = load_fixture_proto("seed002", &raw);
    if (!mp) { CHECK(mp); free(raw); return; }
    Onnx__TensorProto *t = mp->graph->initializer[1];   /* "2.weight" [8, 8, 3, 3] */
    CHECK(!strcmp(t->name, "2.weight"));
    size_t len = t->raw_data.len;
    t->raw_data.len = len - 4;
    buf = pack(mp, &size);
    expect_error(buf, size, CN_ERR_FORMAT, NEEDLES("initializer \"2.weight\"", "[8, 8, 3, 3]", "2304 bytes", "raw_data has 2300 bytes"));
    free(buf);
    t->raw_data.len = len;
    /* Dims whose product overflows. */
    int64_t d0 = t->dims[0];
    t->dims[0] = INT64_C(1) << 62;
    buf = pack(mp, &size);
    expect_error(buf, size, CN_ERR_UNSUPPORTED, NEEDLES("initializer \"2.weight\"", "more than"));
    free(buf);
    t->dims[0] = -8;
    buf = pack(mp, &size);
    expect_error(buf, size, CN_ERR_FORMAT, NEEDLES("non-negative"));
    free(buf);
    t->dims[0] = d0;
    /* Wrong dims for the layer: 8 input channels where the input has 8 -> change to a 4-channel weight. */
    t->dims[1] = 4;
    t->dims[0] = 16;
    buf = pack(mp, &size);
    expect_error(buf, size, CN_ERR_SHAPE, NEEDLES("\"2.weight\" has dims [16, 4, 3, 3]", "input channels"));
    free(buf);
    t->dims[0] = d0;
    t->dims[1] = 8;
    /* A NaN weight. */
    float saved;
    memcpy(&saved, t->raw_data.data + 8, 4);
    float nan = NAN;
    memcpy(t->raw_data.data + 8, &nan, 4);
    buf = pack(mp, &size);
    expect_error(buf, size, CN_ERR_NUMERIC, NEEDLES("\"2.weight\" element 2 is nan"));
    free(buf);
    memcpy(t->raw_data.data + 8, &saved, 4);
    /* float data type replaced by string. */
    t->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__STRING;
    buf = pack(mp, &size);
    expect_error(buf, size, CN_ERR_UNSUPPORTED, NEEDLES("\"2.weight\" has data type string; expected a float initializer"));
    free(buf);
    t->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    onnx__model_proto__free_unpacked(mp, NULL);
    free(raw);
}

TEST(error_bad_attributes) {
    uint8_t *raw, *buf;
    size_t size;
    Onnx__ModelProto *mp = load_fixture_proto("seed002", &raw);
    if (!mp) { CHECK(mp); free(raw); return; }
    Onnx__NodeProto *conv = mp->graph->node[find_node(mp->graph, "Conv", 1)];
    Onnx__AttributeProto *group = find_attr(conv, "group"), *pads = find_attr(conv, "pads");
    group->i = 2;
    buf = pack(mp, &size);
    expect_error(buf, size, CN_ERR_SHAPE, NEEDLES("node 2 \"/2/Conv\" (Conv)", "8 input channels per group", "8 in 2 groups"));
    free(buf);
    group->i = 3;
    buf = pack(mp, &size);
    expect_error(buf, size, CN_ERR_SHAPE, NEEDLES("node 2 \"/2/Conv\" (Conv): group=3 must divide"));
    free(buf);
    group->i = 1;
    pads->ints[0] = 1;
    buf = pack(mp, &size);
    expect_error(buf, size, CN_ERR_UNSUPPORTED, NEEDLES("(Conv): pads", "symmetric"));
    free(buf);
    pads->ints[0] = 0;
    Onnx__AttributeProto *ks = find_attr(conv, "kernel_shape");
    ks->ints[0] = 5;
    buf = pack(mp, &size);
    expect_error(buf, size, CN_ERR_UNSUPPORTED, NEEDLES("kernel_shape", "square"));
    free(buf);
    ks->ints[0] = 3;
    Onnx__NodeProto *pool = mp->graph->node[find_node(mp->graph, "MaxPool", 0)];
    Onnx__AttributeProto *ceil = find_attr(pool, "ceil_mode");
    Onnx__AttributeProto *strides = find_attr(pool, "strides");
    ceil->i = 1;
    strides->ints[0] = strides->ints[1] = 3;    /* 24 -> ceil != floor with k 2, s 3 */
    buf = pack(mp, &size);
    expect_error(buf, size, CN_ERR_UNSUPPORTED, NEEDLES("(MaxPool): ceil_mode=1"));
    free(buf);
    ceil->i = 0;
    strides->ints[0] = strides->ints[1] = 2;
    onnx__model_proto__free_unpacked(mp, NULL);
    free(raw);
}

TEST(error_branching_and_outputs) {
    uint8_t *raw, *buf;
    size_t size;
    Onnx__ModelProto *mp = load_fixture_proto("seed002", &raw);
    if (!mp) { CHECK(mp); free(raw); return; }
    Onnx__GraphProto *g = mp->graph;
    /* The second conv reads the first conv's output instead of the ReLU's: a skip. */
    Onnx__NodeProto *conv = g->node[find_node(g, "Conv", 1)];
    char *old = conv->input[0];
    conv->input[0] = g->node[0]->output[0];
    buf = pack(mp, &size);
    /* (a branch: the conv now reads the first conv, and the relu's output goes nowhere) */
    expect_error(buf, size, CN_ERR_UNSUPPORTED, NEEDLES("node 1 \"/1/Relu\" (Relu): no later node reads its output, and it is not the graph's output"));
    free(buf);
    conv->input[0] = old;
    /* Graph output names an intermediate tensor. */
    char *out_name = g->output[0]->name;
    g->output[0]->name = g->node[3]->output[0];
    buf = pack(mp, &size);
    expect_error(buf, size, CN_ERR_UNSUPPORTED, NEEDLES("graph output \"/3/Relu_output_0\" is an earlier activation"));
    free(buf);
    g->output[0]->name = out_name;
    /* A node input nobody produces. */
    old = g->node[1]->input[0];
    g->node[1]->input[0] = "nowhere";
    buf = pack(mp, &size);
    expect_error(buf, size, CN_ERR_FORMAT, NEEDLES("node 1 \"/1/Relu\" (Relu): input \"nowhere\" has no initializer"));
    free(buf);
    g->node[1]->input[0] = old;
    /* Two data inputs. */
    Onnx__ValueInfoProto *inputs[2] = {g->input[0], g->input[0]};
    Onnx__ValueInfoProto **saved_inputs = g->input;
    char *n0 = inputs[0]->name;
    Onnx__ValueInfoProto second = *g->input[0];
    second.name = "extra";
    inputs[1] = &second;
    g->input = inputs;
    g->n_input = 2;
    buf = pack(mp, &size);
    expect_error(buf, size, CN_ERR_UNSUPPORTED, NEEDLES("2 data inputs"));
    free(buf);
    g->input = saved_inputs;
    g->n_input = 1;
    inputs[0]->name = n0;
    onnx__model_proto__free_unpacked(mp, NULL);
    free(raw);
}

TEST(error_garbage_and_truncation) {
    const uint8_t junk[] = "this is not a protobuf at all \xff\xff\xff\xff";
    expect_error(junk, sizeof junk, CN_ERR_FORMAT, NEEDLES("model.onnx: not a valid ONNX protobuf"));
    expect_error(junk, 0, CN_ERR_FORMAT, NEEDLES("empty"));
    size_t n;
    uint8_t *raw = read_all("tests/fixtures/onnx/seed001.onnx", &n);
    CHECK(raw);
    if (!raw) return;
    for (size_t cut = 1; cut < n; cut += n / 37) {
        cn_model *m = NULL;
        cn_status st = cn_onnx_import_memory(raw, cut, "cut.onnx", NULL, &m);
        CHECK_MSG(st != CN_OK && m == NULL, "truncated at %zu imported", cut);
        cn_model_free(m);
    }
    cn_model *m = NULL;
    CHECK(cn_onnx_import("tests/fixtures/onnx/missing.onnx", &m) == CN_ERR_IO);
    CHECK(strstr(cn_last_error(), "missing.onnx") != NULL);
    free(raw);
}

/* Prepends a length-delimited field (number `field`) around buf[*start..cap). */
static void wrap_field(uint8_t *buf, size_t *start, size_t cap, unsigned field) {
    uint8_t tmp[24];
    size_t n = 0;
    uint64_t v[2] = {(uint64_t)field << 3 | 2, cap - *start};   /* key, then length: two varints */
    for (int k = 0; k < 2; k++)
        do { tmp[n++] = (uint8_t)((v[k] & 0x7f) | (v[k] > 0x7f ? 0x80 : 0)); v[k] >>= 7; } while (v[k]);
    *start -= n;
    memcpy(buf + *start, tmp, n);
}

/* A TypeProto that is `wraps` sequences of ... of a float tensor, at the end of buf; returns its start. */
static size_t nested_type(uint8_t *buf, size_t cap, int wraps) {
    size_t start = cap;
    buf[--start] = 1; buf[--start] = 0x08;             /* Tensor.elem_type = FLOAT */
    wrap_field(buf, &start, cap, 1);                   /* TypeProto.tensor_type */
    for (int i = 0; i < wraps; i++) {
        wrap_field(buf, &start, cap, 1);               /* Sequence.elem_type */
        wrap_field(buf, &start, cap, 4);               /* TypeProto.sequence_type */
    }
    return start;
}

/* protobuf-c unpacks recursively: nesting is bounded on the wire before it (a 4,000-deep file crashed). */
TEST(nesting_depth_bound) {
    size_t cap = 4 << 20;
    uint8_t *buf = malloc(cap);
    CHECK(buf);
    if (!buf) return;
    /* TypeProto with k sequences nests 2k + 2 messages deep (innermost: TypeProto.Tensor). */
    size_t at = nested_type(buf, cap, 9);
    CHECK(cn_protobuf_check_depth(&onnx__type_proto__descriptor, buf + at, cap - at, 20, "t") == CN_OK);
    at = nested_type(buf, cap, 10);
    CHECK(cn_protobuf_check_depth(&onnx__type_proto__descriptor, buf + at, cap - at, 22, "t") == CN_OK);
    CHECK(cn_protobuf_check_depth(&onnx__type_proto__descriptor, buf + at, cap - at, 21, "t") == CN_ERR_UNSUPPORTED);
    CHECK_MSG(strstr(cn_last_error(), "t: offset 42: nesting deeper than 21 levels (TypeProto.sequence_type > "
                     "Sequence.elem_type > TypeProto.sequence_type > ") != NULL, "%s", cn_last_error());
    /* A whole model: graph > input > type > 200,000 levels, about 1 MB. */
    at = nested_type(buf, cap, 100000);
    const char name[] = "\x0a\x01x";                  /* ValueInfoProto.name = "x", then .type */
    wrap_field(buf, &at, cap, 2);
    at -= 3; memcpy(buf + at, name, 3);
    wrap_field(buf, &at, cap, 11);                     /* GraphProto.input */
    wrap_field(buf, &at, cap, 7);                      /* ModelProto.graph */
    expect_error(buf + at, cap - at, CN_ERR_UNSUPPORTED,
                 NEEDLES("model.onnx: offset 259: nesting deeper than 64 levels (ModelProto.graph > GraphProto.input > "
                         "ValueInfoProto.type > TypeProto.sequence_type"));
    /* Truncated or garbled wire data stops the walk; protobuf-c reports it. */
    CHECK(cn_protobuf_check_depth(&onnx__type_proto__descriptor, buf + at, 5, 64, "t") == CN_OK);
    free(buf);
}

/* Random byte flips: every outcome is a status, never a crash (run under ASan with `make check SANITIZE=1`). */
TEST(fuzz_byte_flips) {
    const char *files[] = {"seed001", "quirks11", "seed003"};
    cn_rng rng;
    cn_rng_seed(&rng, 1234);
    int ok = 0, failed = 0;
    for (size_t fi = 0; fi < 3; fi++) {
        char path[128];
        size_t n;
        snprintf(path, sizeof path, "tests/fixtures/onnx/%s.onnx", files[fi]);
        uint8_t *raw = read_all(path, &n);
        if (!raw) { CHECK(raw); continue; }
        uint8_t *copy = malloc(n);
        for (int iter = 0; iter < 150; iter++) {
            memcpy(copy, raw, n);
            int flips = 1 + (int)(cn_rng_uniform(&rng) * 8);
            for (int k = 0; k < flips; k++) {
                /* Mostly in the graph structure before the big weight blobs. */
                size_t at = (size_t)(cn_rng_uniform(&rng) * (k % 2 ? n : (n < 4000 ? n : 4000)));
                copy[at] = (uint8_t)(cn_rng_next(&rng) & 0xff);
            }
            cn_model *m = NULL;
            cn_status st = cn_onnx_import_memory(copy, n, "fuzz.onnx", NULL, &m);
            if (st == CN_OK) {
                ok++;
                CHECK(m != NULL);
                float *x = random_inputs(1, (uint64_t)iter);
                if (m->input.c == 1 && m->input.h == 28 && m->input.w == 28) free(forward_copy(m, x, 1));
                free(x);
            } else {
                failed++;
                CHECK(m == NULL && cn_last_error()[0] != '\0');
            }
            cn_model_free(m);
        }
        free(copy);
        free(raw);
    }
    CHECK(ok + failed == 450);
}

int main(void) {
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/convnet-onnx-XXXXXX");
    if (!mkdtemp(tmp_dir)) { perror("mkdtemp"); return 1; }
    RUN(import_seed000_fused_bn);
    RUN(import_seed001_bn_after_relu_identity_aliases);
    RUN(import_seed002_fully_convolutional);
    RUN(import_seed003_view_opset11);
    RUN(import_seed004_fused_bn);
    RUN(import_quirks_opset11);
    RUN(import_quirks_opset13);
    RUN(import_quirks_no_constant_folding);
    RUN(import_seed002_opset9_initializers_as_inputs); RUN(import_depthwise_separable_opset11); RUN(import_dilated_opset17); RUN(import_residual_opset17); RUN(import_concat_opset11); RUN(import_small_layers_opset13);
    RUN(import_keeps_torch_names);
    RUN(import_names_nested_modules_by_module_path);
    RUN(round_trip_presets); RUN(round_trip_branches); RUN(round_trip_grouped_dilated);
    RUN(export_layout);
    RUN(export_adds_flatten);
    RUN(export_rejects_bad_arguments);
    RUN(error_unsupported_operator);
    RUN(class_names_metadata);
    RUN(error_missing_initializer);
    RUN(error_bad_tensor_data);
    RUN(error_bad_attributes);
    RUN(error_branching_and_outputs);
    RUN(error_garbage_and_truncation);
    RUN(nesting_depth_bound);
    RUN(fuzz_byte_flips);
    RUN(onnx_checker_accepts_exports);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp_dir);
    if (system(cmd) != 0) fprintf(stderr, "note: could not remove %s\n", tmp_dir);
    return test_summary();
}
