/* The public API as a client sees it: only include/convnet.h. Training runs on
 * a small generated IDX dataset (a bright bar whose row gives the class), so
 * this test needs no MNIST. */
#include "harness.h"
#include "convnet.h"
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#define DIR "/tmp/convnet-test-api"
#define TRAIN 200
#define TEST_N 50

static void put_be32(FILE *f, uint32_t v) {
    unsigned char b[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16), (unsigned char)(v >> 8), (unsigned char)v};
    fwrite(b, 1, 4, f);
}

/* DIR/data/{train,t10k}-{images-idx3,labels-idx1}-ubyte: class k is a bar in rows 2k+4..2k+5, with noise. */
static void write_split(const char *prefix, int n, unsigned seed) {
    char path[256];
    snprintf(path, sizeof path, DIR "/data/%s-images-idx3-ubyte", prefix);
    FILE *fi = fopen(path, "wb");
    snprintf(path, sizeof path, DIR "/data/%s-labels-idx1-ubyte", prefix);
    FILE *fl = fopen(path, "wb");
    if (!fi || !fl) { CHECK(0); if (fi) fclose(fi); if (fl) fclose(fl); return; }
    put_be32(fi, 0x803); put_be32(fi, (uint32_t)n); put_be32(fi, 28); put_be32(fi, 28);
    put_be32(fl, 0x801); put_be32(fl, (uint32_t)n);
    for (int i = 0; i < n; i++) {
        int k = i % 10;
        for (int p = 0; p < 28 * 28; p++) {
            seed = seed * 1103515245u + 12345u;
            int row = p / 28, bar = row == 2 * k + 4 || row == 2 * k + 5;
            fputc(bar ? 200 + (int)(seed >> 27) : (int)(seed >> 28), fi);
        }
        fputc(k, fl);
    }
    fclose(fi);
    fclose(fl);
}

static cn_data *data;

static int events[16], stop_at_batch;

static int count_events(void *user, const cn_train_event *e) {
    (void)user;
    events[e->kind]++;
    return e->kind == CN_TRAIN_BATCH && stop_at_batch && e->batch >= stop_at_batch;
}

static void config(cn_train_config *cfg, const char *out) {
    cn_train_config_init(cfg);
    cfg->data = data;
    cfg->out_dir = out;
    cfg->threads = 2;
    cfg->recipe.epochs = 2;
    cfg->recipe.batch_size = 20;
    cfg->recipe.lr = 0.003;
    cfg->on_event = count_events;
}

TEST(fresh_net_queries) {
    cn_net *net;
    CHECK(cn_net_from_preset("tinynet", 1, &net) == CN_OK);
    if (!net) return;
    int c, h, w;
    float mean, std;
    cn_net_input_shape(net, &c, &h, &w);
    CHECK(c == 1 && h == 28 && w == 28);
    CHECK(cn_net_num_classes(net) == 10);
    CHECK(!strcmp(cn_net_class_name(net, 3), "3") && cn_net_class_name(net, 10) == NULL);
    CHECK(cn_net_normalization(net, &mean, &std) == 0 && mean == 0.0f && std == 1.0f);
    CHECK(!strcmp(cn_net_dataset(net), ""));
    CHECK(cn_net_param_count(net) == cn_model_param_count(cn_net_model(net)) && cn_net_param_count(net) == 22334);
    CHECK(strstr(cn_net_spec(net), "conv2d") != NULL);
    cn_net_free(net);
    cn_net *none = (cn_net *)1;
    CHECK(cn_net_load(DIR "/no-such.safetensors", NULL, &none) == CN_ERR_IO && none == NULL);
    CHECK(strstr(cn_last_error(), DIR "/no-such.safetensors") != NULL);
}

TEST(predict_contract) {
    cn_net *net;
    CHECK(cn_net_from_preset("tinynet", 7, &net) == CN_OK);
    if (!net) return;
    uint8_t bytes[3 * 784];
    float x[3 * 784], batch[30], one[10];
    for (int i = 0; i < 3 * 784; i++) { bytes[i] = (uint8_t)(i * 37 % 251); x[i] = bytes[i] / 255.0f; }
    CHECK(cn_net_predict(net, x, 3, batch) == CN_OK);
    for (int i = 0; i < 3; i++) {
        double sum = 0;
        for (int k = 0; k < 10; k++) sum += batch[i * 10 + k];
        CHECK_NEAR(sum, 1.0, 1e-5);
        CHECK(cn_net_predict(net, x + i * 784, 1, one) == CN_OK);
        CHECK(!memcmp(one, batch + i * 10, sizeof one));   /* a result does not depend on n */
    }
    float from_bytes[30];
    CHECK(cn_net_predict_u8(net, bytes, 3, from_bytes) == CN_OK);
    CHECK(!memcmp(from_bytes, batch, sizeof batch));
    int order[10];
    cn_rank_classes(batch, 10, order);
    for (int k = 1; k < 10; k++) CHECK(batch[order[k - 1]] >= batch[order[k]]);
    float ties[4] = {0.25f, 0.25f, 0.5f, 0.0f};
    cn_rank_classes(ties, 4, order);
    CHECK(order[0] == 2 && order[1] == 0 && order[2] == 1 && order[3] == 3);
    cn_net_free(net);
}

TEST(confusion_counting) {
    int64_t m[9] = {0};
    uint8_t labels[5] = {0, 1, 2, 2, 1};
    int pred[5] = {0, 2, 2, 7, -1};   /* 7 and -1 are outside the classes: not counted */
    cn_confusion_add(m, 3, labels, pred, 5);
    CHECK(m[0] == 1 && m[1 * 3 + 2] == 1 && m[2 * 3 + 2] == 1);
    int64_t total = 0;
    for (int i = 0; i < 9; i++) total += m[i];
    CHECK(total == 3);
}

TEST(image_to_digit) {
    float x[CN_DIGIT_PIXELS];
    cn_digit_info info;
    CHECK(cn_image_to_digit(FIXTURE("images/digit7_inverted_scaled.png"), 1, x, &info) == CN_OK);
    float mx = 0;
    for (int i = 0; i < CN_DIGIT_PIXELS; i++) { CHECK(x[i] >= 0 && x[i] <= 1); if (x[i] > mx) mx = x[i]; }
    CHECK(mx == 1.0f && info.width > 0 && info.scaled_width <= 20 && info.scaled_height <= 20);
    if (info.width != 28 || info.height != 28) {
        CHECK(cn_image_to_digit(FIXTURE("images/digit7_inverted_scaled.png"), 0, x, &info) == CN_ERR_SHAPE);
        CHECK(strstr(cn_last_error(), "digit7_inverted_scaled.png") != NULL);
    }
}

TEST(train_evaluate_save_load_export) {
    cn_net *net;
    CHECK(cn_net_from_preset("tinynet", 1, &net) == CN_OK);
    if (!net) return;
    cn_train_config cfg;
    config(&cfg, DIR "/run");
    memset(events, 0, sizeof events);
    cn_status st = cn_net_train(net, &cfg);
    CHECK_MSG(st == CN_OK, "%s", cn_last_error());
    CHECK(events[CN_TRAIN_READY] == 1 && events[CN_TRAIN_BEGIN] == 1 && events[CN_TRAIN_FINISHED] == 1);
    CHECK(events[CN_TRAIN_EPOCH_BEGIN] == 2 && events[CN_TRAIN_EVALUATING] == 2);
    CHECK(events[CN_TRAIN_EPOCH_END] == 2 && events[CN_TRAIN_BATCH] == 2 * TRAIN / 20 && events[CN_TRAIN_STOPPED] == 0);
    CHECK(!strcmp(cn_net_dataset(net), "idx") && cn_net_normalization(net, NULL, NULL) == 1);
    CHECK(access(DIR "/run/metrics.csv", F_OK) == 0 && access(DIR "/run/best.safetensors", F_OK) == 0);

    int64_t confusion[100];
    cn_eval_result r;
    CHECK(cn_net_evaluate(net, data, CN_SPLIT_TEST, 2, &r, confusion, NULL) == CN_OK);
    CHECK(r.count == TEST_N && r.correct >= TEST_N * 8 / 10);   /* the bars are easy */
    int64_t diagonal = 0;
    for (int k = 0; k < 10; k++) diagonal += confusion[k * 11];
    CHECK(diagonal == r.correct);

    float x[784], p1[10], p2[10];
    const uint8_t *img = cn_data_images(data, CN_SPLIT_TEST, NULL, NULL, NULL, NULL);
    for (int i = 0; i < 784; i++) x[i] = img[i] / 255.0f;
    CHECK(cn_net_predict(net, x, 1, p1) == CN_OK);
    CHECK(cn_net_save(net, DIR "/model.safetensors") == CN_OK);
    cn_export_report rep;
    CHECK(cn_net_export_onnx(net, DIR "/model.onnx", 0, &rep) == CN_OK);
    CHECK(rep.bytes > 0 && rep.batchnorm == 3 && rep.batchnorm_folded == 0);
    cn_net *back;
    CHECK(cn_net_load(DIR "/model.safetensors", NULL, &back) == CN_OK);
    if (back) {
        CHECK(cn_net_predict(back, x, 1, p2) == CN_OK);
        CHECK(!memcmp(p1, p2, sizeof p1));
        CHECK(!strcmp(cn_net_dataset(back), "idx") && !strcmp(cn_net_class_name(back, 9), "9"));
        cn_net_free(back);
    }
    CHECK(cn_net_load(DIR "/model.onnx", "idx", &back) == CN_OK);
    if (back) {
        CHECK(cn_net_predict(back, x, 1, p2) == CN_OK);
        for (int k = 0; k < 10; k++) CHECK_NEAR(p2[k], p1[k], 1e-5);
        cn_net_free(back);
    }
    cn_net_free(net);
}

TEST(stop_then_resume) {
    cn_net *net;
    CHECK(cn_net_from_preset("tinynet", 1, &net) == CN_OK);
    if (!net) return;
    cn_train_config cfg;
    config(&cfg, DIR "/stop");
    memset(events, 0, sizeof events);
    stop_at_batch = 3;
    CHECK(cn_net_train(net, &cfg) == CN_ERR_INTERRUPTED);
    stop_at_batch = 0;
    CHECK(events[CN_TRAIN_STOPPED] == 1 && events[CN_TRAIN_BATCH] == 3 && events[CN_TRAIN_EPOCH_END] == 0);
    cn_net_free(net);
    cn_net *done = NULL;
    cfg.out_dir = NULL;   /* the checkpoint's directory */
    cn_status st = cn_train_resume(DIR "/stop/last.safetensors", &cfg, &done);
    CHECK_MSG(st == CN_OK && done, "%s", cn_last_error());
    CHECK(events[CN_TRAIN_EPOCH_END] == 2);
    if (done) CHECK(!strcmp(cn_net_dataset(done), "idx"));
    cn_net_free(done);
}

int main(void) {
    if (system("rm -rf " DIR " && mkdir -p " DIR "/data") != 0) return 1;
    write_split("train", TRAIN, 1);
    write_split("t10k", TEST_N, 2);
    if (cn_data_load("idx", DIR "/data", 0, &data)) { fprintf(stderr, "%s\n", cn_last_error()); return 1; }
    RUN(fresh_net_queries);
    RUN(predict_contract);
    RUN(confusion_counting);
    RUN(image_to_digit);
    RUN(train_evaluate_save_load_export);
    RUN(stop_then_resume);
    cn_data_free(data);
    return test_summary();
}
