/* torchsummary tables (src/summary.c) against the committed fixtures.
 *
 * cn_summary_write prints torchsummary's block and then one line of our own,
 * "Forward MACs per image: N" (torchsummary has no such line). So every test
 * splits the output: the torchsummary part must equal the fixture byte for
 * byte (tests/fixtures/summary/<preset>.txt, written by gen_fixtures.py from
 * torchsummary's formats and arithmetic), and the MACs line is checked on its
 * own. */
#include "harness.h"
#include "model.h"
#include "summary.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MACS_PREFIX "Forward MACs per image: "

/* Whole file as a NUL-terminated string (free()), or NULL. */
static char *read_text(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) { fprintf(stderr, "  cannot open %s\n", path); return NULL; }
    char *buf = NULL;
    size_t len = 0, cap = 0, n;
    char chunk[4096];
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (len + n + 1 > cap) {
            cap = 2 * (len + n + 1);
            char *grown = realloc(buf, cap);
            if (!grown) { free(buf); fclose(f); return NULL; }
            buf = grown;
        }
        memcpy(buf + len, chunk, n);
        len += n;
    }
    fclose(f);
    if (!buf) buf = calloc(1, 1);
    else buf[len] = '\0';
    return buf;
}

/* cn_summary_write's output as a string (free()), or NULL. */
static char *render(const cn_model *m) {
    char *text = NULL;
    size_t size = 0;
    FILE *mem = open_memstream(&text, &size);
    if (!mem) return NULL;
    cn_status st = cn_summary_write(m, mem);
    fclose(mem);
    if (st != CN_OK) { fprintf(stderr, "  summary: %s\n", cn_last_error()); free(text); return NULL; }
    return text;
}

/* Prints where two texts first differ, with the lines around it. */
static void report_difference(const char *what, const char *got, const char *want) {
    size_t i = 0;
    int line = 1;
    while (got[i] && got[i] == want[i]) { if (got[i] == '\n') line++; i++; }
    size_t g = i, w = i;
    while (g > 0 && got[g - 1] != '\n') g--;
    while (w > 0 && want[w - 1] != '\n') w--;
    fprintf(stderr, "  %s: first difference on line %d\n    got:  %.*s\n    want: %.*s\n", what, line,
            (int)strcspn(got + g, "\n"), got + g, (int)strcspn(want + w, "\n"), want + w);
}

/* Checks `text` = `table` (exactly) followed by the MACs line for `macs`.
 * Returns 1 if both parts match. */
static int check_table_and_macs(const char *what, const char *text, const char *table, uint64_t macs) {
    int ok = 1;
    size_t n = strlen(table);
    if (strncmp(text, table, n) != 0) {
        report_difference(what, text, table);
        ok = 0;
    }
    char count[32], want_line[64];
    snprintf(want_line, sizeof want_line, MACS_PREFIX "%s\n", cn_summary_format_count(macs, count, sizeof count));
    const char *rest = strlen(text) >= n ? text + n : "";
    if (strcmp(rest, want_line) != 0) {
        fprintf(stderr, "  %s: after the table expected exactly '%.*s', got '%s'\n", what,
                (int)strlen(want_line) - 1, want_line, rest);
        ok = 0;
    }
    return ok;
}

/* Forward multiply-adds per image from the layer shapes alone (not from l->macs):
 * a conv output element costs in_c * k * k, a linear output in_features. */
static uint64_t macs_from_shapes(const cn_model *m) {
    uint64_t total = 0;
    for (int i = 0; i < m->num_layers; i++) {
        const cn_layer *l = &m->layers[i];
        if (l->kind == CN_LAYER_CONV2D)
            total += (uint64_t)l->out.c * l->out.h * l->out.w * (l->in.c / l->groups) * l->kernel * l->kernel;
        else if (l->kind == CN_LAYER_LINEAR)
            total += (uint64_t)cn_shape_size(l->in) * l->out.c;
    }
    return total;
}

static void check_preset(const char *name) {
    char path[256];
    snprintf(path, sizeof path, FIXTURE("summary/%s.txt"), name);
    char *want = read_text(path);
    cn_model *m = NULL;
    cn_status st = cn_model_load_spec(name, 1, &m);
    CHECK_MSG(st == CN_OK, "%s: %s", name, cn_last_error());
    char *got = m ? render(m) : NULL;
    CHECK(want && got);
    if (want && got) CHECK_MSG(check_table_and_macs(name, got, want, macs_from_shapes(m)), "%s", name);
    free(got);
    free(want);
    cn_model_free(m);
}

TEST(summary_seed000) { check_preset("seed000"); }
TEST(summary_seed001) { check_preset("seed001"); }
TEST(summary_seed002) { check_preset("seed002"); }
TEST(summary_seed003) { check_preset("seed003"); }
TEST(summary_seed004) { check_preset("seed004"); }
TEST(summary_seed004_net) { check_preset("seed004-net"); }
TEST(summary_ds8k) { check_preset("ds8k"); }
TEST(summary_cifar_s9) { check_preset("cifar-s9"); }
/* A residual model: rows in the order PyTorch runs the modules (the projection's after the
 * main branch's), none for the additions. */
TEST(summary_res20k) { check_preset("res20k"); }

/* The table as printed in the seed002 document (from its dashed line down to
 * "Estimated Total Size") must appear line for line at the top of our output. */
TEST(summary_seed002_matches_document) {
    char *doc = read_text(FIXTURE("summary/seed002.doc.txt"));
    cn_model *m = NULL;
    CHECK(cn_model_load_spec("seed002", 1, &m) == CN_OK);
    char *got = m ? render(m) : NULL;
    CHECK(doc && got);
    if (doc && got) {
        CHECK(strstr(doc, "Estimated Total Size (MB): 0.24\n") != NULL);   /* the fixture is the doc block */
        int same = strncmp(got, doc, strlen(doc)) == 0;
        if (!same) report_difference("seed002 document", got, doc);
        CHECK(same);
    }
    free(got);
    free(doc);
    cn_model_free(m);
}

/* A spec of our own: stride-2 conv, flatten then dropout (a flat [-1, F] row),
 * a bias-free linear, relu and dropout on flat features, log_softmax (no row).
 * Expected table worked out with torchsummary's formats and arithmetic:
 * outputs 576+576+144+144+32+32+32+10 = 1546 numbers -> 2*1546*4 B = 0.01 MB;
 * params 104 + 4,608 + 330 = 5,042 -> 0.02 MB; input 784*4 B = 0.00 MB;
 * total 0.0192 + 0.0118 + 0.0030 = 0.03 MB. */
TEST(summary_custom_linear_dropout) {
    static const char spec[] =
        "input 1x28x28\n"
        "conv2d out=4 k=5 stride=2\n"
        "relu\n"
        "maxpool2d k=2\n"
        "flatten\n"
        "dropout p=0.2\n"
        "linear out=32 bias=false\n"
        "relu\n"
        "dropout p=0.1\n"
        "linear out=10\n"
        "log_softmax\n";
    static const char want[] =
        "----------------------------------------------------------------\n"
        "        Layer (type)               Output Shape         Param #\n"
        "================================================================\n"
        "            Conv2d-1            [-1, 4, 12, 12]             104\n"
        "              ReLU-2            [-1, 4, 12, 12]               0\n"
        "         MaxPool2d-3              [-1, 4, 6, 6]               0\n"
        "           Dropout-4                  [-1, 144]               0\n"
        "            Linear-5                   [-1, 32]           4,608\n"
        "              ReLU-6                   [-1, 32]               0\n"
        "           Dropout-7                   [-1, 32]               0\n"
        "            Linear-8                   [-1, 10]             330\n"
        "================================================================\n"
        "Total params: 5,042\n"
        "Trainable params: 5,042\n"
        "Non-trainable params: 0\n"
        "----------------------------------------------------------------\n"
        "Input size (MB): 0.00\n"
        "Forward/backward pass size (MB): 0.01\n"
        "Params size (MB): 0.02\n"
        "Estimated Total Size (MB): 0.03\n"
        "----------------------------------------------------------------\n";
    cn_model *m = NULL;
    cn_status st = cn_model_from_spec(spec, "custom.spec", 1, &m);
    CHECK_MSG(st == CN_OK, "%s", cn_last_error());
    if (!m) return;
    CHECK(cn_model_param_count(m) == 5042);
    char *got = render(m);
    CHECK(got);
    /* MACs: conv 4*1*5*5 per output * 12*12 = 14,400; linear 144*32 = 4,608; linear 32*10 = 320. */
    if (got) CHECK(check_table_and_macs("custom", got, want, 14400 + 4608 + 320));
    free(got);
    cn_model_free(m);
}

/* seed001's MACs line, against a value computed here from the layer shapes
 * and against the hand sum of its seven convs (out_c*in_c*k*k*H*W):
 * 8*1*9*28*28 + 16*8*9*26*26 + 8*16*1*15*15 + 16*8*9*13*13 + 32*16*9*11*11
 * + 32*32*9*9*9 + 10*32*9*7*7 = 56,448 + 778,752 + 28,800 + 194,688 + 557,568
 * + 746,496 + 141,120 = 2,503,872. */
TEST(summary_seed001_macs_line) {
    cn_model *m = NULL;
    CHECK(cn_model_load_spec("seed001", 1, &m) == CN_OK);
    if (!m) return;
    uint64_t expected = macs_from_shapes(m);
    CHECK(expected == 56448u + 778752u + 28800u + 194688u + 557568u + 746496u + 141120u);
    CHECK(cn_model_macs(m) == expected);
    char *got = render(m);
    CHECK(got);
    if (got) {
        const char *line = strstr(got, MACS_PREFIX);
        CHECK(line != NULL);
        if (line) CHECK_MSG(strcmp(line, MACS_PREFIX "2,503,872\n") == 0, "got '%s'", line);
    }
    free(got);
    cn_model_free(m);
}

TEST(summary_format_count) {
    char buf[32];
    CHECK(!strcmp(cn_summary_format_count(0, buf, sizeof buf), "0"));
    CHECK(!strcmp(cn_summary_format_count(999, buf, sizeof buf), "999"));
    CHECK(!strcmp(cn_summary_format_count(1000, buf, sizeof buf), "1,000"));
    CHECK(!strcmp(cn_summary_format_count(19452, buf, sizeof buf), "19,452"));
    CHECK(!strcmp(cn_summary_format_count(1199882, buf, sizeof buf), "1,199,882"));
    CHECK(!strcmp(cn_summary_format_count(UINT64_MAX, buf, sizeof buf), "18,446,744,073,709,551,615"));
}

TEST(summary_errors) {
    CHECK(cn_summary_write(NULL, stdout) == CN_ERR_ARG);
    cn_model *m = NULL;
    CHECK(cn_model_load_spec("seed002", 1, &m) == CN_OK);
    if (!m) return;
    CHECK(cn_summary_write(m, NULL) == CN_ERR_ARG);
    FILE *full = fopen("/dev/full", "w");   /* every write fails with ENOSPC */
    if (full) {
        CHECK(cn_summary_write(m, full) == CN_ERR_IO);
        CHECK(strstr(cn_last_error(), "cannot write the model summary") != NULL);
        fclose(full);
    }
    cn_model_free(m);
}

int main(void) {
    RUN(summary_seed000);
    RUN(summary_seed001);
    RUN(summary_seed002);
    RUN(summary_seed003);
    RUN(summary_seed004);
    RUN(summary_seed004_net); RUN(summary_ds8k); RUN(summary_cifar_s9); RUN(summary_res20k);
    RUN(summary_seed002_matches_document);
    RUN(summary_custom_linear_dropout);
    RUN(summary_seed001_macs_line);
    RUN(summary_format_count);
    RUN(summary_errors);
    return test_summary();
}
