/* Presets, parameter counts, spec parsing errors. */
#include "harness.h"
#include "model.h"

TEST(preset_param_counts) {
    const struct { const char *name; size_t params; } want[] = {
        {"seed000", 16946}, {"seed001", 19452}, {"seed002", 9032}, {"seed003", 23354},
        {"seed004", 22334}, {"seed004-net", 1199882}, {"tinynet", 22334},
        {"fashion93", 125506}, {"c5k", 4850}, {"c8k", 7580}, {"c20k", 18386}, {"ds8k", 7770}, {"res20k", 19706},
        {"best", 125506},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        cn_model *m;
        cn_status st = cn_model_load_spec(want[i].name, 1, &m);
        CHECK_MSG(st == CN_OK, "%s: %s", want[i].name, cn_last_error());
        if (st) continue;
        CHECK_MSG(cn_model_param_count(m) == want[i].params, "%s: %zu params, want %zu",
                  want[i].name, cn_model_param_count(m), want[i].params);
        CHECK(cn_model_num_classes(m) == 10);
        cn_model_free(m);
    }
}

TEST(every_preset_has_alias_and_description) {
    CHECK(cn_preset_count() >= 6);
    for (int i = 0; i < cn_preset_count(); i++) {
        CHECK_MSG(cn_preset_alias(i)[0] != '\0', "%s has no alias", cn_preset_name(i));
        CHECK_MSG(cn_preset_description(i)[0] != '\0', "%s has no description", cn_preset_name(i));
        CHECK(cn_preset_find(cn_preset_alias(i)) == cn_preset_spec(i));
    }
}

TEST(seed001_shapes) {
    cn_model *m;
    CHECK(cn_model_load_spec("seed001", 1, &m) == CN_OK);
    /* 28 -> 28 -> 26 -> 13 -> 15 -> 13 -> 11 -> 9 -> 7 -> 1 */
    int want[] = {28, 26, 13, 15, 13, 11, 9, 7, 1};
    int k = 0;
    for (int i = 0; i < m->num_layers; i++) {
        cn_layer_kind kind = m->layers[i].kind;
        if (kind == CN_LAYER_CONV2D || kind == CN_LAYER_MAXPOOL2D || kind == CN_LAYER_AVGPOOL2D) {
            CHECK_MSG(m->layers[i].out.h == want[k], "layer %d: %d, want %d", i, m->layers[i].out.h, want[k]);
            k++;
        }
    }
    CHECK(k == 9);
    CHECK(cn_model_macs(m) > 2400000 && cn_model_macs(m) < 2600000);
    cn_model_free(m);
}

static void expect_spec_error(const char *spec, const char *fragment) {
    cn_model *m = NULL;
    cn_status st = cn_model_from_spec(spec, "bad.spec", 1, &m);
    CHECK_MSG(st != CN_OK, "accepted: %s", spec);
    CHECK_MSG(strstr(cn_last_error(), fragment) != NULL, "message '%s' lacks '%s'", cn_last_error(), fragment);
    CHECK(strchr(cn_last_error(), '\n') == NULL);
    CHECK(m == NULL);
}

TEST(spec_errors) {
    expect_spec_error("conv2d out=8 k=3\nfoo\n", "bad.spec:2: unknown layer or setting 'foo'");
    expect_spec_error("conv2d out=8 kernal=3\n", "bad.spec:1: conv2d: unknown key 'kernal'");
    expect_spec_error("conv2d k=3\n", "missing out=N");
    expect_spec_error("conv2d out=8 k=3\nflatten\nlinear out=10 in=500\n", "bad.spec:3: linear: in=500 does not match the flattened input size 5408");
    expect_spec_error("conv2d out=8 k=3\nlinear out=10\n", "add a 'flatten' line");
    expect_spec_error("conv2d out=8 k=30\n", "does not fit");
    expect_spec_error("conv2d out=-1 k=3\n", "out=-1: expected an integer");
    expect_spec_error("conv2d out=8 k=3 bias=maybe\n", "bias=maybe");
    expect_spec_error("dropout p=1.5\nflatten\nlinear out=10\n", "p=1.5");
    expect_spec_error("input 1x28\nflatten\nlinear out=10\n", "input: expected CxHxW");
    expect_spec_error("conv2d out=8 k=3\n", "the last layer must output class scores");
    expect_spec_error("# nothing\n", "no layers");
    expect_spec_error("flatten\nlinear out=10\ninput 1x28x28\n", "input: must come before");
    expect_spec_error("train lr=abc\nflatten\nlinear out=10\n", "lr=abc");
    expect_spec_error("train optimizer=rmsprop\nflatten\nlinear out=10\n", "optimizer=rmsprop");
    expect_spec_error("flatten name=a\nlinear out=10 name=a\n", "already used");
    expect_spec_error("conv2d out=99999999999999999999 k=3\n", "expected an integer");
    expect_spec_error("maxpool2d k=2 pad=2\nflatten\nlinear out=10\n", "pad 2 must be at most half");
    expect_spec_error("flatten\nlinear out=1\n", "at least 2");
}

TEST(spec_file_errors) {
    cn_model *m = NULL;
    CHECK(cn_model_load_spec("no-such-model", 1, &m) != CN_OK);
    CHECK(strstr(cn_last_error(), "neither a preset") != NULL);
}

int main(void) {
    RUN(preset_param_counts); RUN(every_preset_has_alias_and_description); RUN(seed001_shapes);
    RUN(spec_errors); RUN(spec_file_errors);
    return test_summary();
}
