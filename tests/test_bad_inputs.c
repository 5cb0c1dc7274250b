/* Hostile inputs: every file in tests/bad/EXPECTED is loaded with its parser
 * and must be rejected with a non-OK status and one clear line that names the
 * file and contains the expected fragment. Then the CLI is run on the bad
 * checkpoints (eval, train --resume), specs (summary), ONNX files (eval) and
 * images (predict): exit status 1 (not a crash), exactly one line on stderr
 * naming the file. Also: bad numeric option values give exit status 2
 * and one line.
 *
 * EXPECTED lines: file<TAB>parser<TAB>message fragment ('#' starts a comment).
 * Parsers: idx-images, idx-labels, mnist-labels (a label file next to matching
 * 28x28 images, 10 classes), spec, safetensors, checkpoint, checkpoint-resume
 * (with optimizer state), onnx, image, csv (1x2x2 images with labels, 10
 * classes), cifar (one CIFAR-10 batch), image-color (PNG/JPEG as image folders
 * read them), and cli-resume (only through
 * `convnet train --resume FILE`, which reads the stored run settings). tests/bad/make_bad.py writes most
 * files; tests/bad/fuzz/ holds inputs the fuzzers (fuzz/) found.
 * BAD_PRINT=1 prints every message (to write new EXPECTED lines). */
#include "harness.h"
#include "checkpoint.h"
#include "core/error.h"
#include "data/dataset.h"
#include "data/idx.h"
#include "data/csv.h"
#include "data/cifar.h"
#include "io/image.h"
#include "io/onnx.h"
#include "io/safetensors.h"
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>

#define BAD_DIR "tests/bad/"
#define MAX_ENTRIES 512
/* A valid tiny checkpoint (a fuzzing seed) for `convnet predict` on bad images. */
#define GOOD_CHECKPOINT "fuzz/corpus/checkpoint/weights_only.safetensors"

typedef struct {
    char file[256], parser[32], fragment[256];
    int line;
} entry;

static entry entries[MAX_ENTRIES];
static int entry_count;

static void load_manifest(void) {
    FILE *f = fopen(BAD_DIR "EXPECTED", "r");
    CHECK_MSG(f != NULL, "cannot open %sEXPECTED", BAD_DIR);
    if (!f) return;
    char line[1024];
    int lineno = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        line[strcspn(line, "\r\n")] = '\0';
        if (!line[0] || line[0] == '#') continue;
        char *file = line, *parser = strchr(file, '\t'), *fragment = parser ? strchr(parser + 1, '\t') : NULL;
        CHECK_MSG(parser && fragment && entry_count < MAX_ENTRIES, "EXPECTED:%d: expected file<TAB>parser<TAB>fragment", lineno);
        if (!parser || !fragment || entry_count >= MAX_ENTRIES) continue;
        *parser++ = '\0';
        *fragment++ = '\0';
        entry *e = &entries[entry_count++];
        snprintf(e->file, sizeof e->file, BAD_DIR "%.200s", file);
        snprintf(e->parser, sizeof e->parser, "%.30s", parser);
        snprintf(e->fragment, sizeof e->fragment, "%.250s", fragment);
        e->line = lineno;
    }
    fclose(f);
}

/* Loads a label file with cn_split_load next to a generated image file with the same count. */
static cn_status load_labels_10(const char *path) {
    uint8_t head[8] = {0};
    FILE *f = fopen(path, "rb");
    if (f) { size_t got = fread(head, 1, 8, f); (void)got; fclose(f); }
    uint32_t count = (uint32_t)head[4] << 24 | (uint32_t)head[5] << 16 | (uint32_t)head[6] << 8 | head[7];
    if (count > 1000) count = 1;
    char images[64];
    snprintf(images, sizeof images, "/tmp/convnet-bad-images-%d.idx", (int)getpid());
    FILE *g = fopen(images, "wb");
    if (!g) return cn_fail(CN_ERR_IO, "test: cannot write %s", images);
    uint8_t hdr[16] = {0, 0, 8, 3, (uint8_t)(count >> 24), (uint8_t)(count >> 16), (uint8_t)(count >> 8), (uint8_t)count,
                       0, 0, 0, 28, 0, 0, 0, 28};
    fwrite(hdr, 1, 16, g);
    static const uint8_t zeros[28 * 28];
    for (uint32_t i = 0; i < count; i++) fwrite(zeros, 1, sizeof zeros, g);
    fclose(g);
    cn_split split;
    cn_status st = cn_split_load(images, path, 10, &split);
    if (st == CN_OK) cn_split_free(&split);
    unlink(images);
    return st;
}

/* A checkpoint that loads for eval must still be refused for resuming when its state is bad. */
static cn_status load_for_resume(const char *path) {
    cn_model *m = NULL;
    cn_checkpoint_info info;
    cn_status st = cn_checkpoint_load(path, &m, &info, NULL);
    if (st) return st;
    cn_optimizer opt;
    cn_scheduler sched;
    st = cn_optimizer_init(&opt, CN_OPT_SGD, m->num_params);
    cn_model_free(m);
    if (st) return st;
    cn_sched_init(&sched, CN_SCHED_NONE, 0.01);
    cn_train_state state = {.optimizer = &opt, .scheduler = &sched};
    st = cn_checkpoint_load(path, &m, &info, &state);
    cn_model_free(m);
    cn_optimizer_free(&opt);
    return st;
}

static cn_status load_with(const entry *e, int *known) {
    const char *p = e->file, *k = e->parser;
    *known = 1;
    if (!strcmp(k, "idx-images") || !strcmp(k, "idx-labels")) {
        cn_idx idx;
        cn_status st = k[4] == 'i' ? cn_idx_read_images(p, &idx) : cn_idx_read_labels(p, &idx);
        CHECK_MSG(st != CN_OK || idx.data, "%s: OK without data", p);
        cn_idx_free(&idx);
        return st;
    }
    if (!strcmp(k, "mnist-labels")) return load_labels_10(p);
    if (!strcmp(k, "spec")) {
        cn_model *m = NULL;
        cn_status st = cn_model_load_spec(p, 1, &m);
        CHECK_MSG(st == CN_OK || !m, "%s: failed but returned a model", p);
        cn_model_free(m);
        return st;
    }
    if (!strcmp(k, "safetensors")) {
        cn_st_file *f = NULL;
        cn_status st = cn_st_open(p, &f);
        CHECK_MSG(st == CN_OK || !f, "%s: failed but returned a file", p);
        cn_st_close(f);
        return st;
    }
    if (!strcmp(k, "checkpoint")) {
        cn_model *m = NULL;
        cn_checkpoint_info info;
        cn_status st = cn_checkpoint_load(p, &m, &info, NULL);
        CHECK_MSG(st == CN_OK || !m, "%s: failed but returned a model", p);
        cn_model_free(m);
        return st;
    }
    if (!strcmp(k, "checkpoint-resume")) return load_for_resume(p);
    if (!strcmp(k, "cli-resume")) { *known = 2; return CN_OK; } /* checked through the CLI only */
    if (!strcmp(k, "onnx")) {
        cn_model *m = NULL;
        cn_status st = cn_onnx_import(p, &m);
        CHECK_MSG(st == CN_OK || !m, "%s: failed but returned a model", p);
        cn_model_free(m);
        return st;
    }
    if (!strcmp(k, "csv")) {   /* 1x2x2 images, a label column, 10 classes */
        cn_split split;
        cn_status st = cn_csv_read(p, 1, 2, 2, 1, 10, &split, NULL);
        CHECK_MSG(st == CN_OK || !split.images, "%s: failed but returned images", p);
        cn_split_free(&split);
        return st;
    }
    if (!strcmp(k, "cifar") || !strcmp(k, "image-color")) {
        uint8_t *data;
        size_t size;
        cn_status st = cn_image_read_file(p, &data, &size);
        if (st) return st;
        if (k[0] == 'c') {
            cn_split split = {0};
            st = cn_cifar_parse_batch(data, size, p, &split);
            cn_split_free(&split);
        } else {
            cn_color_image img;
            st = cn_image_decode_color(data, size, p, &img);
            CHECK_MSG(st == CN_OK || !img.pixels, "%s: failed but returned pixels", p);
            cn_color_image_free(&img);
        }
        free(data);
        return st;
    }
    if (!strcmp(k, "image")) {
        cn_gray_image img;
        cn_status st = cn_image_load(p, &img);
        CHECK_MSG(st == CN_OK || !img.pixels, "%s: failed but returned pixels", p);
        cn_image_free(&img);
        return st;
    }
    *known = 0;
    return CN_OK;
}

/* One line: no newline or other control byte except tab. */
static int is_one_line(const char *s) {
    for (; *s; s++)
        if (((unsigned char)*s < 0x20 && *s != '\t') || *s == 0x7f) return 0;
    return 1;
}

TEST(manifest_is_big_enough) {
    CHECK_MSG(entry_count >= 40, "only %d entries in %sEXPECTED", entry_count, BAD_DIR);
    static const char *const parsers[] = {"idx-images", "idx-labels", "mnist-labels", "spec", "safetensors",
                                          "checkpoint", "checkpoint-resume", "onnx", "image", "cli-resume",
                                          "csv", "cifar", "image-color"};
    for (size_t i = 0; i < sizeof parsers / sizeof parsers[0]; i++) {
        int n = 0;
        for (int j = 0; j < entry_count; j++) n += !strcmp(entries[j].parser, parsers[i]);
        CHECK_MSG(n > 0, "no bad file for parser %s", parsers[i]);
    }
}

TEST(every_bad_file_is_rejected_with_one_clear_line) {
    int print = getenv("BAD_PRINT") != NULL;
    for (int i = 0; i < entry_count; i++) {
        const entry *e = &entries[i];
        CHECK_MSG(access(e->file, R_OK) == 0, "EXPECTED:%d: %s does not exist", e->line, e->file);
        cn_clear_error();
        int known;
        cn_status st = load_with(e, &known);
        const char *msg = cn_last_error();
        if (print) printf("%s\t%s\t[%s] %s\n", e->file + strlen(BAD_DIR), e->parser, cn_status_name(st), msg);
        CHECK_MSG(known, "EXPECTED:%d: unknown parser '%s'", e->line, e->parser);
        if (known != 1) continue;
        CHECK_MSG(st != CN_OK, "EXPECTED:%d: %s was accepted by %s", e->line, e->file, e->parser);
        if (st == CN_OK) continue;
        CHECK_MSG(strstr(msg, e->fragment) != NULL, "EXPECTED:%d: %s: message lacks '%s': %s",
                  e->line, e->file, e->fragment, msg);
        CHECK_MSG(is_one_line(msg) && *msg, "EXPECTED:%d: %s: message is not one line: %s", e->line, e->file, msg);
        CHECK_MSG(strstr(msg, e->file) != NULL, "EXPECTED:%d: message does not name %s: %s", e->line, e->file, msg);
    }
}

/* Every file in tests/bad/ (and tests/bad/fuzz/) is listed, so none is forgotten. */
TEST(every_file_is_listed) {
    FILE *ls = popen("cd tests/bad && ls | grep -v -e '^EXPECTED$' -e '\\.py$' -e '^fuzz$' "
                     "-e '^onnx_valid_reference.onnx$'; ls fuzz 2>/dev/null | sed 's|^|fuzz/|'", "r");
    CHECK(ls != NULL);
    if (!ls) return;
    char name[512];
    while (fgets(name, sizeof name, ls)) {
        name[strcspn(name, "\n")] = '\0';
        int found = 0;
        for (int i = 0; i < entry_count && !found; i++) found = !strcmp(entries[i].file + strlen(BAD_DIR), name);
        CHECK_MSG(found, "tests/bad/%s is not listed in EXPECTED", name);
    }
    pclose(ls);
}

/* The reference ONNX file of make_bad.py imports: the bad variants differ from it in one way each. */
TEST(onnx_reference_is_valid) {
    cn_model *m = NULL;
    cn_status st = cn_onnx_import(BAD_DIR "onnx_valid_reference.onnx", &m);
    CHECK_MSG(st == CN_OK, "%s", cn_last_error());
    cn_model_free(m);
}

/* Runs `cmd` (stdout discarded, stderr captured); returns the exit status, or
 * -signal when it died from one. */
static int run_cli(const char *cmd, char *err, size_t err_size) {
    char path[64], full[4096];
    snprintf(path, sizeof path, "/tmp/convnet-bad-stderr-%d", (int)getpid());
    snprintf(full, sizeof full, "%s >/dev/null 2>%s", cmd, path);
    int rc = system(full);
    err[0] = '\0';
    FILE *f = fopen(path, "r");
    if (f) { size_t n = fread(err, 1, err_size - 1, f); err[n] = '\0'; fclose(f); }
    unlink(path);
    if (rc == -1) return -1000;
    if (WIFSIGNALED(rc)) return -WTERMSIG(rc);
    int status = WEXITSTATUS(rc);
    return status > 128 ? -(status - 128) : status; /* the shell reports a killed child as 128+N */
}

static int count_lines(const char *s) {
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

static const char *convnet_bin(void) {
    static char bin[256];
    const char *b = getenv("BUILD");
    snprintf(bin, sizeof bin, "%s/convnet", b && *b ? b : "build");
    return bin;
}

TEST(cli_on_bad_files_exits_1_with_one_line) {
    const char *bin = convnet_bin();
    CHECK_MSG(access(bin, X_OK) == 0, "%s not built", bin);
    int runs = 0;
    for (int i = 0; i < entry_count; i++) {
        const entry *e = &entries[i];
        char cmd[2048], err[4096];
        if (!strcmp(e->parser, "checkpoint"))
            snprintf(cmd, sizeof cmd, "%s eval --weights '%.255s' --no-download", bin, e->file);
        else if (!strcmp(e->parser, "spec"))
            snprintf(cmd, sizeof cmd, "%s summary --model '%.255s'", bin, e->file);
        else if (!strcmp(e->parser, "onnx"))
            snprintf(cmd, sizeof cmd, "%s eval --weights '%.255s' --no-download", bin, e->file);
        else if (!strcmp(e->parser, "image"))
            snprintf(cmd, sizeof cmd, "%s predict --weights %s '%.255s'", bin, GOOD_CHECKPOINT, e->file);
        else if (!strcmp(e->parser, "checkpoint-resume") || !strcmp(e->parser, "cli-resume"))
            snprintf(cmd, sizeof cmd, "%s train --resume '%.255s' --out /tmp/convnet-bad-resume-%d --no-download --quiet",
                     bin, e->file, (int)getpid());
        else
            continue;
        runs++;
        int rc = run_cli(cmd, err, sizeof err);
        CHECK_MSG(rc == 1, "%s: exit status %d (negative: signal), stderr: %s", cmd, rc, err);
        CHECK_MSG(count_lines(err) == 1, "%s: stderr has %d lines: %s", cmd, count_lines(err), err);
        CHECK_MSG(strstr(err, e->file) != NULL, "%s: stderr does not name the file: %s", cmd, err);
        /* --resume reads the run settings before the optimizer state, so its message may differ. */
        if (strcmp(e->parser, "checkpoint-resume"))   /* cli-resume: the fragment is the CLI's */
            CHECK_MSG(strstr(err, e->fragment) != NULL, "%s: stderr lacks '%s': %s", cmd, e->fragment, err);
    }
    CHECK(runs >= 40);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf /tmp/convnet-bad-resume-%d", (int)getpid());
    CHECK(system(cmd) == 0);
}

TEST(cli_bad_numbers_exit_2_with_one_line) {
    const char *bin = convnet_bin();
    static const char *const cases[][2] = {
        {"--epochs", "1e3"}, {"--epochs", "0"}, {"--epochs", "99999999999999999999"}, {"--lr", "nan"},
        {"--lr", "inf"}, {"--lr", "-1"}, {"--lr", "0.1x"}, {"--batch-size", ""}, {"--momentum", "2"},
        {"--seed", "-5"}, {"--threads", "0x10"}, {"--limit-train", "1"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char cmd[512], err[4096];
        snprintf(cmd, sizeof cmd, "%s train %s '%s' --no-download", bin, cases[i][0], cases[i][1]);
        int rc = run_cli(cmd, err, sizeof err);
        CHECK_MSG(rc == 2, "%s: exit status %d, stderr: %s", cmd, rc, err);
        CHECK_MSG(count_lines(err) == 1, "%s: stderr has %d lines: %s", cmd, count_lines(err), err);
        CHECK_MSG(strstr(err, cases[i][0]) != NULL, "%s: stderr does not name the option: %s", cmd, err);
    }
}

int main(void) {
    load_manifest();
    RUN(manifest_is_big_enough);
    RUN(every_bad_file_is_rejected_with_one_clear_line);
    RUN(every_file_is_listed);
    RUN(onnx_reference_is_valid);
    RUN(cli_on_bad_files_exits_1_with_one_line);
    RUN(cli_bad_numbers_exit_2_with_one_line);
    return test_summary();
}
