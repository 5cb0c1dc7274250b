/* End-to-end training on a small MNIST subset: it learns, it is deterministic,
 * and an interrupted run resumes bit-exactly (metrics.csv equal except the
 * wall-clock `seconds` column). Data: ../shared/data/mnist (the CI layout). */
#include "harness.h"
#include "train.h"
#include "checkpoint.h"
#include <unistd.h>

#define DATA "../shared/data/mnist"

static cn_train_options small_run(const char *out, int epochs, int train_images) {
    cn_train_options o;
    cn_train_options_init(&o);
    o.model = "seed004";
    o.data_dir = DATA;
    o.allow_download = 0;
    o.out_dir = out;
    o.quiet = 1;
    o.threads = 2;
    o.seed = 11;
    o.train_limit = train_images;
    o.test_limit = 1000;
    o.overrides.epochs = epochs;
    o.overrides.batch_size = 32;
    o.overrides.lr = 0.003;
    snprintf(o.overrides.scheduler, sizeof o.overrides.scheduler, "step");
    o.overrides.step_size = 2;
    o.overrides.gamma = 0.5;
    return o;
}

static double final_test_accuracy(const char *dir) {
    char buf[4096];
    harness_read_metrics(dir, buf, sizeof buf);
    char *last = NULL;
    for (char *p = strtok(buf, "\n"); p; p = strtok(NULL, "\n")) last = p;
    double acc = 0;
    int epoch;
    double lr, tl, ta, sl;
    if (last) sscanf(last, "%d,%lg,%lg,%lg,%lg,%lg", &epoch, &lr, &tl, &ta, &sl, &acc);
    return acc;
}

/* Continues the run whose last.safetensors is `checkpoint`, up to `epochs` (0: as stored). */
static cn_status resume_run(const char *checkpoint, int epochs) {
    cn_train_options o;
    cn_train_options_init(&o);
    o.resume = checkpoint;
    o.data_dir = DATA;
    o.quiet = 1;
    o.threads = 2;
    o.overrides.epochs = epochs;
    return cn_train(&o);
}

TEST(learns_on_2000_images) {
    cn_train_options o = small_run(TEST_TMP "/test-train/learn", 3, 2000);
    cn_status st = cn_train(&o);
    CHECK_MSG(st == CN_OK, "%s", cn_last_error());
    double acc = final_test_accuracy(o.out_dir);
    CHECK_MSG(acc >= 80.0, "test accuracy %.2f%% after 3 epochs on 2000 images", acc);
    const char *files[] = {"metrics.csv", "last.safetensors", "best.safetensors", "model_summary.txt",
                           "training_curves.png", "confusion_matrix.png", "misclassified.png"};
    for (int i = 0; i < 7; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", o.out_dir, files[i]);
        CHECK_MSG(access(path, R_OK) == 0, "%s was not written", path);
    }
    cn_model *m;
    cn_checkpoint_info info;
    char path[512];
    snprintf(path, sizeof path, "%s/last.safetensors", o.out_dir);
    CHECK_MSG(cn_checkpoint_load(path, &m, &info, NULL) == CN_OK, "%s", cn_last_error());
    if (m) { CHECK(info.epoch == 3); CHECK(info.num_classes == 10); CHECK_NEAR(info.mean[0], 0.1307, 1e-6); cn_model_free(m); }
}

TEST(same_seed_same_metrics) {
    cn_train_options a = small_run(TEST_TMP "/test-train/det-a", 2, 1000);
    cn_train_options b = small_run(TEST_TMP "/test-train/det-b", 2, 1000);
    snprintf(a.overrides.augment, sizeof a.overrides.augment, "rotate=10,translate=0.1");
    snprintf(b.overrides.augment, sizeof b.overrides.augment, "rotate=10,translate=0.1");
    CHECK(cn_train(&a) == CN_OK);
    CHECK(cn_train(&b) == CN_OK);
    char ma[4096], mb[4096];
    harness_read_metrics(a.out_dir, ma, sizeof ma);
    harness_read_metrics(b.out_dir, mb, sizeof mb);
    CHECK_MSG(strcmp(ma, mb) == 0, "metrics differ:\n%s---\n%s", ma, mb);
    CHECK(strlen(ma) > 60);
}

TEST(resume_after_epoch_matches_uninterrupted) {
    cn_train_options full = small_run(TEST_TMP "/test-train/full", 4, 1000);
    CHECK(cn_train(&full) == CN_OK);
    cn_train_options part = small_run(TEST_TMP "/test-train/part", 2, 1000);
    CHECK(cn_train(&part) == CN_OK);
    cn_status st = resume_run(TEST_TMP "/test-train/part/last.safetensors", 4);
    CHECK_MSG(st == CN_OK, "%s", cn_last_error());
    char a[4096], b[4096];
    harness_read_metrics(full.out_dir, a, sizeof a);
    harness_read_metrics(part.out_dir, b, sizeof b);
    CHECK_MSG(strcmp(a, b) == 0, "resumed metrics differ:\n%s---\n%s", a, b);
}

TEST(interrupt_mid_epoch_then_resume_matches) {
    cn_train_options full = small_run(TEST_TMP "/test-train/full2", 2, 1000);
    CHECK(cn_train(&full) == CN_OK);
    volatile sig_atomic_t stop = 1;   /* stops after the first batch */
    cn_train_options part = small_run(TEST_TMP "/test-train/part2", 2, 1000);
    part.stop_requested = &stop;
    CHECK(cn_train(&part) == CN_ERR_INTERRUPTED);
    cn_status st = resume_run(TEST_TMP "/test-train/part2/last.safetensors", 0);
    CHECK_MSG(st == CN_OK, "%s", cn_last_error());
    char a[4096], b[4096];
    harness_read_metrics(full.out_dir, a, sizeof a);
    harness_read_metrics(part.out_dir, b, sizeof b);
    CHECK_MSG(strcmp(a, b) == 0, "resumed metrics differ:\n%s---\n%s", a, b);
}

/* A model with branches (a residual add and a concat) trains, saves and resumes bit-exactly too. */
TEST(resume_branched_model_matches_uninterrupted) {
    const char *spec_path = TEST_TMP "/test-train/branched.spec";
    FILE *f = fopen(spec_path, "w");
    CHECK(f != NULL);
    if (!f) return;
    fputs("input 1x28x28\nconv2d out=8 k=3 pad=1 bias=false name=stem\nbatchnorm2d name=stem_bn\nrelu\nmaxpool2d k=2 name=pool\n"
          "conv2d out=8 k=3 pad=1 bias=false name=c1\nbatchnorm2d name=b1\nrelu\nconv2d out=8 k=3 pad=1 bias=false name=c2\n"
          "batchnorm2d name=b2\nadd from=b2,pool\nrelu name=r\nconv2d out=4 k=1 from=pool name=side\nconcat from=r,side\n"
          "gap\nflatten\nlinear out=10\n", f);
    CHECK(fclose(f) == 0);
    cn_train_options full = small_run(TEST_TMP "/test-train/branched-full", 3, 1000);
    cn_train_options part = small_run(TEST_TMP "/test-train/branched-part", 2, 1000);
    full.model = part.model = spec_path;
    snprintf(full.overrides.optimizer, sizeof full.overrides.optimizer, "adam");   /* as seed004's recipe */
    snprintf(part.overrides.optimizer, sizeof part.overrides.optimizer, "adam");
    cn_status st = cn_train(&full);
    CHECK_MSG(st == CN_OK, "%s", cn_last_error());
    CHECK(cn_train(&part) == CN_OK);
    st = resume_run(TEST_TMP "/test-train/branched-part/last.safetensors", 3);
    CHECK_MSG(st == CN_OK, "%s", cn_last_error());
    char a[4096], b[4096];
    harness_read_metrics(full.out_dir, a, sizeof a);
    harness_read_metrics(part.out_dir, b, sizeof b);
    CHECK_MSG(strcmp(a, b) == 0, "resumed metrics differ:\n%s---\n%s", a, b);
    CHECK_MSG(final_test_accuracy(full.out_dir) >= 25.0, "test accuracy %.2f%% after 3 epochs on 1000 images (chance: 10%%)",
              final_test_accuracy(full.out_dir));
}

TEST(missing_data_is_one_clear_error) {
    cn_train_options o = small_run(TEST_TMP "/test-train/nodata", 1, 1000);
    o.data_dir = TEST_TMP "/test-train/no-such-dir";
    CHECK(cn_train(&o) == CN_ERR_IO);
    CHECK(strstr(cn_last_error(), "train-images-idx3-ubyte") != NULL);
    CHECK(strchr(cn_last_error(), '\n') == NULL);
}

int main(void) {
    if (system("rm -rf " TEST_TMP "/test-train") != 0) return 1;
    RUN(learns_on_2000_images);
    RUN(same_seed_same_metrics);
    RUN(resume_after_epoch_matches_uninterrupted);
    RUN(interrupt_mid_epoch_then_resume_matches);
    RUN(resume_branched_model_matches_uninterrupted);
    RUN(missing_data_is_one_clear_error);
    return test_summary();
}
