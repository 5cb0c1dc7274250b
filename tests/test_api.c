/* The public API from a client's side: this file includes convnet.h and nothing of
 * src/ (the Makefile compiles it without -Isrc). A small generated IDX dataset (3
 * classes of 12x12 bars) is trained on, evaluated, predicted, saved, loaded and
 * exported, and the error paths give one line and a status. */
#include "convnet.h"
#include "harness.h"
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#define DIR TEST_TMP "/api"
#define DATA DIR "/data"
#define SIDE 12
#define CLASSES 3
#define TRAIN_N 240
#define TEST_N 60

static const char *spec_text =
    "name api-net\n"
    "input 1x12x12\n"
    "train optimizer=adam lr=0.01 batch=16 epochs=3\n"
    "conv2d out=4 k=3 pad=1\n"
    "relu\n"
    "maxpool2d k=2\n"
    "flatten\n"
    "linear out=3\n"
    "log_softmax\n";

static void put_be32(FILE *f, uint32_t v) {
    unsigned char b[4] = {v >> 24, v >> 16, v >> 8, v};
    fwrite(b, 1, 4, f);
}

/* Image i of class i % CLASSES: a brighter bar in rows 4k..4k+3 over a noisy background
 * (pixels of the two overlap: not every image is easy). */
static void write_split(const char *images, const char *labels, int n, unsigned seed) {
    FILE *fi = fopen(images, "wb"), *fl = fopen(labels, "wb");
    put_be32(fi, 0x803); put_be32(fi, n); put_be32(fi, SIDE); put_be32(fi, SIDE);
    put_be32(fl, 0x801); put_be32(fl, n);
    for (int i = 0; i < n; i++) {
        int k = i % CLASSES;
        unsigned char px[SIDE * SIDE];
        for (int p = 0; p < SIDE * SIDE; p++) {
            seed = seed * 1103515245u + 12345u;
            int row = p / SIDE;
            px[p] = row / 4 == k ? (unsigned char)(90 + (seed >> 16) % 160) : (unsigned char)((seed >> 16) % 140);
        }
        fwrite(px, 1, sizeof px, fi);
        unsigned char label = (unsigned char)k;
        fwrite(&label, 1, 1, fl);
    }
    fclose(fi);
    fclose(fl);
}

static int file_exists(const char *path) { struct stat sb; return stat(path, &sb) == 0; }

/* Notes collected from the library. */
static char notes_info[16384], notes_warning[4096];
static int notes_progress;
static void collect_note(cn_note_kind kind, const char *text, void *user) {
    (void)user;
    char *buf = kind == CN_NOTE_INFO ? notes_info : notes_warning;
    size_t size = kind == CN_NOTE_INFO ? sizeof notes_info : sizeof notes_warning;
    if (kind == CN_NOTE_PROGRESS) { notes_progress++; return; }
    strncat(buf, text, size - strlen(buf) - 2);
    strcat(buf, "\n");
}

static cn_data *open_data(void) {
    cn_data_options o = {.name = "idx", .dir = DATA};
    cn_data *d = NULL;
    CHECK_MSG(cn_data_open(&o, &d) == CN_OK, "%s", cn_last_error());
    return d;
}

TEST(presets_and_spec_errors) {
    CHECK(cn_preset_count() > 5);
    CHECK(cn_preset_find("seed001") != NULL);
    CHECK(cn_preset_find("no-such-preset") == NULL);
    cn_model *m = NULL;
    CHECK(cn_model_load_spec("seed001", 1, &m) == CN_OK);
    int c, h, w;
    cn_model_input_shape(m, &c, &h, &w);
    CHECK(c == 1 && h == 28 && w == 28);
    CHECK(cn_model_num_classes(m) == 10);
    CHECK(cn_model_param_count(m) == 19452);   /* as the preset's comment says */
    CHECK(cn_model_outputs_log_probabilities(m) == 1);
    CHECK(!strcmp(cn_model_name(m), "seed001"));
    int foldable, bn = cn_model_batchnorm_count(m, &foldable);
    CHECK(bn > 0 && foldable == 0);            /* seed001 puts ReLU between conv and BN */
    cn_model_free(m);
    cn_model_free(NULL);
    m = (cn_model *)1;
    cn_status st = cn_model_from_spec("input 1x28x28\nconv2d out=0 k=3\n", "bad.spec", 1, &m);
    CHECK(st == CN_ERR_SPEC);
    CHECK_MSG(strstr(cn_last_error(), "bad.spec:2") != NULL, "%s", cn_last_error());
    CHECK(cn_model_load_spec("no-such-preset", 1, &m) != CN_OK);
    CHECK(strstr(cn_last_error(), "no-such-preset") != NULL);
    CHECK(!strcmp(cn_status_name(CN_ERR_FORMAT), "format error"));
}

TEST(data_open_and_errors) {
    cn_data *d = open_data();
    if (!d) return;
    CHECK(!strcmp(cn_data_name(d), "idx"));
    CHECK(cn_data_num_classes(d) == CLASSES);
    CHECK(!strcmp(cn_data_class_name(d, 2), "2"));
    CHECK(cn_data_count(d, CN_SPLIT_TRAIN) == TRAIN_N && cn_data_count(d, CN_SPLIT_TEST) == TEST_N);
    CHECK(cn_data_label(d, CN_SPLIT_TEST, 4) == 4 % CLASSES);
    const uint8_t *img = cn_data_image(d, CN_SPLIT_TEST, 1);   /* class 1: rows 4..7 bright */
    CHECK(img[5 * SIDE + 3] >= 90 && img[0] < 140);
    CHECK(cn_data_mean(d)[0] > 0 && cn_data_std(d)[0] > 0);
    cn_model *m;
    CHECK(cn_model_load_spec("seed001", 1, &m) == CN_OK);   /* 28x28 input: does not fit */
    CHECK(cn_data_check_model(d, m) == CN_ERR_SHAPE);
    CHECK(strstr(cn_last_error(), "12x12") != NULL || strstr(cn_last_error(), "28x28") != NULL);
    cn_model_free(m);
    cn_data_free(d);

    cn_data_options o = {.name = "idx", .dir = DIR "/no-such-dir"};
    d = (cn_data *)1;
    CHECK(cn_data_open(&o, &d) == CN_ERR_IO);
    CHECK(d == NULL);
    CHECK_MSG(strstr(cn_last_error(), "train-images-idx3-ubyte") != NULL, "%s", cn_last_error());
}

TEST(train_with_notes_then_evaluate_predict_save_export) {
    char spec_path[256];
    snprintf(spec_path, sizeof spec_path, "%s/api.spec", DIR);
    FILE *f = fopen(spec_path, "w");
    fputs(spec_text, f);
    fclose(f);

    cn_set_note_handler(collect_note, NULL);
    cn_train_options o;
    cn_train_options_init(&o);
    o.model = spec_path;
    o.dataset = "idx";
    o.data_dir = DATA;
    o.out_dir = DIR "/run";
    o.threads = 1;
    o.quiet = 1;
    cn_status st = cn_train(&o);
    cn_set_note_handler(NULL, NULL);
    CHECK_MSG(st == CN_OK, "%s", cn_last_error());
    CHECK_MSG(strstr(notes_info, "Epoch 3/3") != NULL, "%s", notes_info);
    CHECK(strstr(notes_info, "Test set: Average loss: ") != NULL);
    CHECK(notes_progress == 0);   /* quiet */
    CHECK(file_exists(DIR "/run/metrics.csv") && file_exists(DIR "/run/best.safetensors"));

    cn_model *m = NULL;
    static cn_model_info info;
    int norm_known = -1;
    CHECK_MSG(cn_model_load(DIR "/run/last.safetensors", NULL, &m, &info, &norm_known) == CN_OK, "%s", cn_last_error());
    if (!m) return;
    CHECK(norm_known == 1 && info.epoch == 3 && !strcmp(info.dataset, "idx") && info.num_classes == CLASSES);
    cn_data *d = open_data();
    if (!d) { cn_model_free(m); return; }

    /* evaluation: counts, confusion matrix */
    cn_eval_result r;
    CHECK_MSG(cn_evaluate_data(m, d, info.mean, info.std, 2, &r) == CN_OK, "%s", cn_last_error());
    CHECK(r.count == TEST_N && r.classes == CLASSES);
    long sum = 0, diagonal = 0;
    for (int t = 0; t < CLASSES; t++)
        for (int p = 0; p < CLASSES; p++) {
            sum += r.confusion[t * CLASSES + p];
            if (t == p) diagonal += r.confusion[t * CLASSES + p];
        }
    CHECK(sum == TEST_N && diagonal == r.correct);
    CHECK_MSG(r.correct >= TEST_N * 8 / 10, "%d/%d", r.correct, TEST_N);   /* it learns the bars */

    /* prediction agrees with evaluation, image by image, in batches of 7 */
    cn_session *s = NULL;
    CHECK(cn_session_create(m, 7, 1, 0, &s) == CN_OK);
    float x[7 * SIDE * SIDE], probs[7 * CLASSES];
    int hits = 0;
    for (int i0 = 0; s && i0 < TEST_N; i0 += 7) {
        int n = TEST_N - i0 < 7 ? TEST_N - i0 : 7;
        for (int i = 0; i < n; i++)
            for (int p = 0; p < SIDE * SIDE; p++)
                x[i * SIDE * SIDE + p] = (cn_data_image(d, CN_SPLIT_TEST, i0 + i)[p] / 255.0f - info.mean[0]) / info.std[0];
        CHECK(cn_predict(s, x, n, probs) == CN_OK);
        for (int i = 0; i < n; i++) {
            double row = 0;
            for (int k = 0; k < CLASSES; k++) row += probs[i * CLASSES + k];
            CHECK_NEAR(row, 1.0, 1e-5);
            int order[CLASSES];
            cn_rank_classes(probs + i * CLASSES, CLASSES, order);
            hits += order[0] == cn_data_label(d, CN_SPLIT_TEST, i0 + i);
        }
    }
    CHECK(hits == r.correct);
    CHECK(cn_predict(s, x, 8, probs) == CN_ERR_ARG);   /* more than the session's batch */

    /* checkpoint and ONNX round trips predict the same */
    static cn_model_info info2;
    cn_model *m2 = NULL;
    CHECK(cn_model_save(DIR "/copy.safetensors", m, &info) == CN_OK);
    CHECK(cn_model_load(DIR "/copy.safetensors", NULL, &m2, &info2, NULL) == CN_OK);
    cn_eval_result r2;
    CHECK(m2 && cn_evaluate_data(m2, d, info2.mean, info2.std, 1, &r2) == CN_OK);
    CHECK(m2 && r2.correct == r.correct && r2.loss_sum == r.loss_sum);
    if (m2) cn_eval_result_free(&r2);
    cn_model_free(m2);
    m2 = NULL;
    CHECK(cn_path_is_onnx(DIR "/m.ONNX") && !cn_path_is_onnx(DIR "/m.safetensors"));
    CHECK_MSG(cn_export_onnx(m, DIR "/m.onnx", 0, &info) == CN_OK, "%s", cn_last_error());
    CHECK(cn_model_load(DIR "/m.onnx", NULL, &m2, &info2, NULL) == CN_OK);
    CHECK(m2 && !strcmp(info2.dataset, "idx") && info2.num_classes == CLASSES && !strcmp(info2.class_names[1], "1"));
    CHECK(m2 && info2.mean[0] == info.mean[0] && info2.std[0] == info.std[0]);
    CHECK(m2 && cn_evaluate_data(m2, d, info2.mean, info2.std, 1, &r2) == CN_OK);
    CHECK(m2 && r2.correct == r.correct);
    if (m2) { CHECK_NEAR(r2.loss_sum, r.loss_sum, 1e-4); cn_eval_result_free(&r2); }
    cn_model_free(m2);

    /* C export, float and int8 (calibrated on the training split) */
    cn_export_c_stats cs;
    int calibration = 50;
    CHECK_MSG(cn_export_c_source(m, DIR "/c", &info, CN_EXPORT_C_INT8, d, &calibration, &cs) == CN_OK, "%s", cn_last_error());
    CHECK(calibration == 50 && cs.int8 && cs.weight_count == cn_model_param_count(m));
    CHECK(file_exists(DIR "/c/model.c") && file_exists(DIR "/c/model.h"));
    CHECK(cn_export_c_source(m, DIR "/c2", &info, CN_EXPORT_C_INT8, NULL, &calibration, &cs) == CN_ERR_ARG);

    /* int8 inference classifies like the float model here */
    cn_int8_model *q = NULL;
    calibration = 100;
    CHECK_MSG(cn_int8_calibrate(m, info.mean, info.std, d, &calibration, &q) == CN_OK, "%s", cn_last_error());
    cn_eval_result r8;
    CHECK(q && cn_int8_evaluate_data(q, d, 1, &r8) == CN_OK);
    if (q) {
        CHECK_MSG(abs(r8.correct - r.correct) <= 3, "int8 %d float %d", r8.correct, r.correct);
        CHECK(strlen(cn_int8_model_kernels(q)) > 0);
        cn_eval_result_free(&r8);
    }
    cn_int8_model_free(q);

    /* error paths: one line naming the file */
    CHECK(cn_image_prepare(DIR "/missing.png", m, info.mean, info.std, 0, x, NULL) == CN_ERR_IO);
    CHECK_MSG(!strncmp(cn_last_error(), DIR "/missing.png", strlen(DIR "/missing.png")), "%s", cn_last_error());
    CHECK(cn_export_onnx(m, DIR "/no-such-dir/m.onnx", 0, &info) == CN_ERR_IO);
    CHECK(!file_exists(DIR "/no-such-dir"));

    cn_eval_result_free(&r);
    cn_eval_result_free(&r);   /* twice: harmless */
    cn_session_free(s);
    cn_data_free(d);
    cn_model_free(m);
}

TEST(load_errors) {
    cn_model *m = (cn_model *)1;
    static cn_model_info info;
    CHECK(cn_model_load(DIR "/nothing.safetensors", NULL, &m, &info, NULL) == CN_ERR_IO);
    CHECK(m == NULL);
    CHECK_MSG(strstr(cn_last_error(), DIR "/nothing.safetensors") != NULL, "%s", cn_last_error());
    FILE *f = fopen(DIR "/garbage.safetensors", "wb");
    fputs("this is not a checkpoint at all, but it is long enough to be read", f);
    fclose(f);
    CHECK(cn_model_load(DIR "/garbage.safetensors", NULL, &m, &info, NULL) == CN_ERR_FORMAT);
    CHECK(strstr(cn_last_error(), "garbage.safetensors") != NULL);
    f = fopen(DIR "/garbage.onnx", "wb");
    fputs("\x08\x07garbage", f);
    fclose(f);
    CHECK(cn_model_load(DIR "/garbage.onnx", NULL, &m, &info, NULL) != CN_OK);
    CHECK(m == NULL);
}

TEST(rank_ties_keep_lower_class_first) {
    float p[5] = {0.1f, 0.3f, 0.3f, 0.0f, 0.3f};
    int order[5];
    cn_rank_classes(p, 5, order);
    CHECK(order[0] == 1 && order[1] == 2 && order[2] == 4 && order[3] == 0 && order[4] == 3);
}

TEST(stop_then_resume) {
    cn_train_options o;
    cn_train_options_init(&o);
    o.model = DIR "/api.spec";
    o.dataset = "idx";
    o.data_dir = DATA;
    o.out_dir = DIR "/stopped";
    o.threads = 1;
    o.quiet = 1;
    cn_stop_flag stop = 1;   /* asked before the first batch: stops after it */
    o.stop_requested = &stop;
    CHECK(cn_train(&o) == CN_ERR_INTERRUPTED);
    CHECK(file_exists(DIR "/stopped/last.safetensors"));
    cn_train_options_init(&o);
    o.resume = DIR "/stopped/last.safetensors";
    o.data_dir = DATA;          /* (the dataset's name comes from the checkpoint, not its folder) */
    o.threads = 1;
    o.quiet = 1;
    CHECK_MSG(cn_train(&o) == CN_OK, "%s", cn_last_error());
    char a[4096], b[4096];
    harness_read_metrics(DIR "/stopped", a, sizeof a);
    harness_read_metrics(DIR "/run", b, sizeof b);
    CHECK_MSG(!strcmp(a, b), "resumed:\n%s\nstraight:\n%s", a, b);   /* bit-exact resume */
}

TEST(sweep_check_errors) {
    CHECK(cn_sweep_check("lr=0.1,0.2 batch=8", NULL, "1-2", NULL) == CN_OK);
    CHECK(cn_sweep_check("lr=zz", NULL, "1", NULL) != CN_OK);
    CHECK(strstr(cn_last_error(), "lr=zz") != NULL);
    CHECK(cn_sweep_check(NULL, "lr=0.1", "1", "nosuchkey=1") != CN_OK);
    CHECK(strstr(cn_last_error(), "nosuchkey") != NULL);
    CHECK(cn_sweep_check("precision=fp32,bf16", NULL, "1", NULL) == CN_OK);
    CHECK(cn_sweep_check("precision=fp16", NULL, "1", NULL) != CN_OK);
    CHECK(strstr(cn_last_error(), "precision=fp16: expected fp32 or bf16") != NULL);
}

/* The rest of the surface on the trained model of DIR/run: the CSV submission, int8
 * probabilities, image preparation, the summary, small helpers, the web export's refusal. */
TEST(csv_images_summary_and_helpers) {
    cn_model *m = NULL;
    static cn_model_info info;
    CHECK(cn_model_load(DIR "/run/best.safetensors", NULL, &m, &info, NULL) == CN_OK);
    cn_data *d = open_data();
    if (!m || !d) { cn_model_free(m); cn_data_free(d); return; }
    /* CSV: the first 20 test images, unlabelled; the submission's classes are evaluation's */
    FILE *f = fopen(DIR "/test.csv", "w");
    for (int i = 0; i < 20; i++) {
        const uint8_t *img = cn_data_image(d, CN_SPLIT_TEST, i);
        for (int p = 0; p < SIDE * SIDE; p++) fprintf(f, p ? ",%d" : "%d", img[p]);
        fputc('\n', f);
    }
    fclose(f);
    int n = -1;
    CHECK_MSG(cn_predict_csv(m, NULL, info.mean, info.std, DIR "/test.csv", DIR "/submission.csv", 2, &n) == CN_OK, "%s",
              cn_last_error());
    CHECK(n == 20);
    f = fopen(DIR "/submission.csv", "r");
    char line[64];
    int rows = 0, agree = 0, id, label;
    CHECK(f && fgets(line, sizeof line, f) && !strcmp(line, "ImageId,Label\n"));
    while (f && fscanf(f, "%d,%d", &id, &label) == 2) {
        rows++;
        agree += id == rows && label == cn_data_label(d, CN_SPLIT_TEST, id - 1);
    }
    if (f) fclose(f);
    CHECK(rows == 20 && agree >= 16);   /* the model is right on most (see the evaluation) */
    CHECK(cn_predict_csv(m, NULL, info.mean, info.std, DIR "/no.csv", DIR "/s2.csv", 1, &n) == CN_ERR_IO);
    CHECK(n == 0 && strstr(cn_last_error(), "no.csv") != NULL);
    CHECK(access(DIR "/s2.csv", F_OK) != 0);

    /* int8 probabilities: rows sum to 1 */
    cn_int8_model *q = NULL;
    int calibration = 40;
    CHECK(cn_int8_calibrate(m, info.mean, info.std, d, &calibration, &q) == CN_OK);
    float x[2 * SIDE * SIDE], probs[2 * CLASSES];
    for (int i = 0; i < 2; i++)
        for (int p = 0; p < SIDE * SIDE; p++) x[i * SIDE * SIDE + p] = cn_data_image(d, CN_SPLIT_TEST, i)[p] / 255.0f;
    CHECK(q && cn_int8_predict_probabilities(q, cn_model_outputs_log_probabilities(m), x, 2, 1, probs) == CN_OK);
    CHECK_NEAR(probs[0] + probs[1] + probs[2], 1.0, 1e-5);
    CHECK_NEAR(probs[3] + probs[4] + probs[5], 1.0, 1e-5);
    cn_int8_model_free(q);

    /* the web page wants 28x28 digits */
    cn_export_web_stats ws;
    cn_status st = cn_export_web_page(m, DIR "/web", &info, d, &ws);
    CHECK(st == CN_ERR_SHAPE || st == CN_ERR_UNSUPPORTED);   /* (unsupported: a build without the wasm runtime) */

    /* summary to a stream */
    FILE *t = tmpfile();
    CHECK(t && cn_summary_write(m, t) == CN_OK);
    char text[4096] = "";
    if (t) { rewind(t); text[fread(text, 1, sizeof text - 1, t)] = '\0'; fclose(t); }
    CHECK_MSG(strstr(text, "Conv2d-1") && strstr(text, "Linear-"), "%s", text);

    /* helpers */
    float v[CN_MAX_CHANNELS];
    CHECK(cn_parse_floats("0.5,0.25", v, CN_MAX_CHANNELS) == 2 && v[1] == 0.25f);
    CHECK(cn_parse_floats("0.5,x", v, CN_MAX_CHANNELS) == 0);
    char where[64];
    CHECK(cn_dataset_default_dir("mnist", where, sizeof where) == CN_OK && strstr(where, "mnist") != NULL);
    CHECK(cn_dataset_default_dir("mnist", where, 3) == CN_ERR_ARG);
    cn_data_free(d);
    cn_model_free(m);
}

/* A digit picture for a 1x28x28 model: MNIST-like preparation, normalised; raw needs 28x28. */
TEST(image_prepare_digit) {
    cn_model *m;
    CHECK(cn_model_load_spec("seed001", 1, &m) == CN_OK);
    float mean[CN_MAX_CHANNELS] = {0.1307f}, std[CN_MAX_CHANNELS] = {0.3081f}, x[28 * 28];
    cn_image_report rep;
    CHECK_MSG(cn_image_prepare(FIXTURE("images/digit3_inverted_scaled.png"), m, mean, std, 0, x, &rep) == CN_OK, "%s",
              cn_last_error());
    CHECK(rep.digit && rep.inverted && rep.width > 28 && rep.scaled_width <= 20 && rep.scaled_height <= 20);
    float lo = x[0], hi = x[0];
    for (int i = 0; i < 28 * 28; i++) { if (x[i] < lo) lo = x[i]; if (x[i] > hi) hi = x[i]; }
    CHECK_NEAR(lo, -0.1307 / 0.3081, 1e-5);   /* background 0, normalised */
    CHECK_NEAR(hi, (1 - 0.1307) / 0.3081, 1e-5);   /* the strongest ink is 1 */
    CHECK(cn_image_prepare(FIXTURE("images/digit3_inverted_scaled.png"), m, mean, std, 1, x, &rep) == CN_ERR_SHAPE);
    CHECK(strstr(cn_last_error(), "28x28") != NULL);
    CHECK(cn_image_prepare(FIXTURE("images/digit3_original.pgm"), m, mean, std, 1, x, NULL) == CN_OK);
    cn_model_free(m);
}

/* A sweep through the API, without a note handler: each run's train.log still holds its log. */
TEST(sweep_execute_writes_logs) {
    cn_sweep_options o = {.out_dir = DIR "/sweep", .jobs = 1, .quiet = 1};
    cn_train_options_init(&o.base);
    o.base.model = DIR "/api.spec";
    o.base.dataset = "idx";
    o.base.data_dir = DATA;
    o.base.overrides.epochs = 1;
    CHECK_MSG(cn_sweep_execute(&o, "lr=0.01,0.02", NULL, "1", NULL) == CN_OK, "%s", cn_last_error());
    CHECK(harness_file_contains(DIR "/sweep/lr=0.01,seed=1/train.log", "Test set: Average loss: "));
    CHECK(harness_file_contains(DIR "/sweep/lr=0.02,seed=1/train.log", "Epoch 1/1"));
    CHECK(harness_file_contains(DIR "/sweep/sweep.csv", "lr"));
}

int main(void) {
    mkdir(TEST_TMP, 0777);
    if (system("rm -rf " DIR) != 0) return 1;
    mkdir(DIR, 0777);
    mkdir(DATA, 0777);
    write_split(DATA "/train-images-idx3-ubyte", DATA "/train-labels-idx1-ubyte", TRAIN_N, 7);
    write_split(DATA "/t10k-images-idx3-ubyte", DATA "/t10k-labels-idx1-ubyte", TEST_N, 99);
    RUN(presets_and_spec_errors);
    RUN(data_open_and_errors);
    RUN(train_with_notes_then_evaluate_predict_save_export);
    RUN(load_errors);
    RUN(rank_ties_keep_lower_class_first);
    RUN(stop_then_resume);
    RUN(sweep_check_errors);
    RUN(csv_images_summary_and_helpers);
    RUN(image_prepare_digit);
    RUN(sweep_execute_writes_logs);
    return test_summary();
}
