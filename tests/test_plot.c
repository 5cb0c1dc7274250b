/* PNG charts: each is written, read back through cn_image_load (libpng), and
 * checked for size and content (not blank, several grey levels, the series
 * colours present). Output goes to a fresh directory under /tmp, removed at the
 * end unless TEST_KEEP is set (then its path is printed, to look at the PNGs). */
#include "harness.h"
#include "core/error.h"
#include "io/image.h"
#include "io/plot.h"
#include <cairo.h>
#include <dirent.h>
#include <stdint.h>
#include <unistd.h>

static char out_dir[256];

static const char *out_path(const char *name) {
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", out_dir, name);
    return path;
}

typedef struct {
    int width, height, levels; /* distinct grey levels */
    double variance;
} png_stats;

/* Decodes with cn_image_load; false if it does not decode. */
static int stats_of(const char *path, png_stats *s) {
    cn_gray_image img;
    if (cn_image_load(path, &img) != CN_OK) {
        fprintf(stderr, "  cannot read back %s: %s\n", path, cn_last_error());
        return 0;
    }
    size_t n = (size_t)img.width * img.height, hist[256] = {0};
    double sum = 0, sum2 = 0;
    for (size_t i = 0; i < n; i++) {
        hist[img.pixels[i]]++;
        sum += img.pixels[i];
        sum2 += (double)img.pixels[i] * img.pixels[i];
    }
    s->width = img.width;
    s->height = img.height;
    s->variance = sum2 / n - (sum / n) * (sum / n);
    s->levels = 0;
    for (int v = 0; v < 256; v++) s->levels += hist[v] > 0;
    cn_image_free(&img);
    return 1;
}

/* Pixels within `tol` of the colour (r, g, b), reading the PNG with cairo. */
static long colour_pixels(const char *path, int r, int g, int b, int tol) {
    cairo_surface_t *s = cairo_image_surface_create_from_png(path);
    if (cairo_surface_status(s) != CAIRO_STATUS_SUCCESS) { cairo_surface_destroy(s); return -1; }
    int w = cairo_image_surface_get_width(s), h = cairo_image_surface_get_height(s);
    int stride = cairo_image_surface_get_stride(s);
    const unsigned char *data = cairo_image_surface_get_data(s);
    long hits = 0;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint32_t p = ((const uint32_t *)(data + (size_t)y * stride))[x];
            int pr = p >> 16 & 255, pg = p >> 8 & 255, pb = p & 255;
            hits += abs(pr - r) <= tol && abs(pg - g) <= tol && abs(pb - b) <= tol;
        }
    cairo_surface_destroy(s);
    return hits;
}

/* No PATH.tmp.PID files are left behind. */
static int leftover_temp_files(void) {
    DIR *d = opendir(out_dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));) n += strstr(e->d_name, ".tmp.") != NULL;
    if (d) closedir(d);
    return n;
}

#define CHECK_PNG(path, w, h, min_variance, min_levels) do { png_stats st_; \
    CHECK(stats_of((path), &st_)); \
    CHECK_MSG((w) <= 0 || st_.width == (w), "%s width %d, expected %d", (path), st_.width, (w)); \
    CHECK_MSG((h) <= 0 || st_.height == (h), "%s height %d, expected %d", (path), st_.height, (h)); \
    CHECK_MSG(st_.variance > (min_variance), "%s variance %.1f", (path), st_.variance); \
    CHECK_MSG(st_.levels >= (min_levels), "%s has %d grey levels", (path), st_.levels); \
} while (0)

/* ---------------------------------------------------------------------------- */

TEST(training_curves_ten_epochs) {
    enum { N = 10 };
    double train_loss[N], test_loss[N], val_loss[N], train_acc[N], test_acc[N], val_acc[N];
    for (int e = 0; e < N; e++) {
        train_loss[e] = 0.45 * exp(-0.45 * e) + 0.03;
        test_loss[e] = 0.12 * exp(-0.3 * e) + 0.035 + 0.002 * e;
        val_loss[e] = test_loss[e] * 1.05;
        train_acc[e] = 100 - 100 * train_loss[e] / 3.2;
        test_acc[e] = 100 - 100 * test_loss[e] / 3.0;
        val_acc[e] = test_acc[e] - 0.15;
    }
    const char *path = out_path("curves_10.png");
    cn_status st = cn_plot_training_curves(path, "seed001 (LeNet-style CNN) on MNIST", N, train_loss, test_loss, val_loss,
                                           train_acc, test_acc, val_acc);
    CHECK_MSG(st == CN_OK, "%s", cn_last_error());
    CHECK_PNG(path, 1200, 500, 100, 20);
    /* train blue, test orange, validation green are all drawn */
    CHECK(colour_pixels(path, 31, 120, 181, 12) > 200);
    CHECK(colour_pixels(path, 240, 115, 13, 12) > 200);
    CHECK(colour_pixels(path, 43, 161, 43, 12) > 200);
    CHECK(leftover_temp_files() == 0);
}

TEST(training_curves_one_epoch_no_validation) {
    double train_loss = 0.31, test_loss = 0.0703, train_acc = 90.5, test_acc = 98.3;
    const char *path = out_path("curves_1.png");
    cn_status st = cn_plot_training_curves(path, "seed000 after one epoch", 1, &train_loss, &test_loss, NULL,
                                           &train_acc, &test_acc, NULL);
    CHECK_MSG(st == CN_OK, "%s", cn_last_error());
    CHECK_PNG(path, 1200, 500, 100, 20);
    CHECK(colour_pixels(path, 31, 120, 181, 12) > 50);
    CHECK(colour_pixels(path, 43, 161, 43, 12) == 0); /* no validation series */
}

TEST(training_curves_many_epochs_and_nan) {
    enum { N = 60 };
    double train_loss[N], test_loss[N], train_acc[N], test_acc[N];
    for (int e = 0; e < N; e++) {
        train_loss[e] = 2.3 / (1 + e) + 0.01 * sin(e);
        test_loss[e] = 2.2 / (1 + e) + 0.05;
        train_acc[e] = 100 - 90 / (1.0 + e);
        test_acc[e] = 100 - 88 / (1.0 + e) - 0.5;
    }
    train_loss[30] = NAN; /* a diverged batch: the line breaks */
    test_loss[31] = INFINITY;
    const char *path = out_path("curves_60.png");
    cn_status st = cn_plot_training_curves(path, "long run", N, train_loss, test_loss, NULL, train_acc, test_acc, NULL);
    CHECK_MSG(st == CN_OK, "%s", cn_last_error());
    CHECK_PNG(path, 1200, 500, 100, 20);
}

TEST(training_curves_errors) {
    double v = 1;
    CHECK(cn_plot_training_curves(out_path("x.png"), "t", 0, &v, &v, NULL, &v, &v, NULL) == CN_ERR_ARG);
    CHECK(strstr(cn_last_error(), "cannot plot 0 epochs; expected 1..") != NULL);
    cn_status st = cn_plot_training_curves("/nonexistent-dir/curves.png", "t", 1, &v, &v, NULL, &v, &v, NULL);
    CHECK(st == CN_ERR_IO);
    CHECK_MSG(strstr(cn_last_error(), "/nonexistent-dir/curves.png: cannot create") != NULL, "%s", cn_last_error());
    /* An existing file is replaced whole. */
    const char *path = out_path("replaced.png");
    FILE *f = fopen(path, "w");
    fputs("old", f);
    fclose(f);
    CHECK(cn_plot_training_curves(path, "t", 1, &v, &v, NULL, &v, &v, NULL) == CN_OK);
    CHECK_PNG(path, 1200, 500, 10, 5);
    CHECK(leftover_temp_files() == 0);
}

/* A plausible MNIST confusion matrix: mostly diagonal, a few confusions. */
static void mnist_like_counts(int64_t counts[100]) {
    static const int per_class[10] = {980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009};
    for (int t = 0; t < 10; t++) {
        int64_t off = 0;
        for (int p = 0; p < 10; p++) {
            counts[t * 10 + p] = p == t ? 0 : ((t * 7 + p * 3) % 11 == 0 ? 9 : (t + p) % 4 == 0 ? 1 : 0);
            off += counts[t * 10 + p];
        }
        counts[t * 10 + t] = per_class[t] - off;
    }
    counts[4 * 10 + 9] = 14; /* 4 read as 9 */
    counts[4 * 10 + 4] -= 14;
}

TEST(confusion_matrix_mnist) {
    int64_t counts[100];
    mnist_like_counts(counts);
    const char *path = out_path("confusion_10.png");
    cn_status st = cn_plot_confusion_matrix(path, "seed001 on MNIST test set", 10, counts, NULL);
    CHECK_MSG(st == CN_OK, "%s", cn_last_error());
    png_stats s;
    CHECK(stats_of(path, &s));
    CHECK(s.width >= 600 && s.width <= 1000 && s.height >= 600 && s.height <= 1000);
    CHECK(s.variance > 500 && s.levels >= 30);
    CHECK(colour_pixels(path, 8, 48, 107, 6) > 10 * 40 * 40); /* ten dark diagonal cells */
}

TEST(confusion_matrix_named_classes) {
    static const char *const fashion[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                            "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"};
    int64_t counts[100];
    mnist_like_counts(counts);
    counts[6 * 10 + 0] = 120; /* shirts mistaken for T-shirts */
    const char *path = out_path("confusion_fashion.png");
    cn_status st = cn_plot_confusion_matrix(path, "seed002 on Fashion-MNIST", 10, counts, fashion);
    CHECK_MSG(st == CN_OK, "%s", cn_last_error());
    CHECK_PNG(path, 0, 0, 500, 30);
    int64_t one = 5;
    CHECK(cn_plot_confusion_matrix(out_path("confusion_1.png"), "one class", 1, &one, NULL) == CN_OK);
    CHECK_PNG(out_path("confusion_1.png"), 0, 0, 100, 10);
    int64_t zeros[4] = {0};
    CHECK(cn_plot_confusion_matrix(out_path("confusion_empty.png"), "no samples", 2, zeros, NULL) == CN_OK);
    int64_t big[400];
    for (int i = 0; i < 400; i++) big[i] = i % 21 == 0 ? 123456 : i % 7;
    CHECK(cn_plot_confusion_matrix(out_path("confusion_20.png"), "20 classes, large counts", 20, big, NULL) == CN_OK);
    CHECK_PNG(out_path("confusion_20.png"), 0, 0, 500, 30);
}

TEST(confusion_matrix_errors) {
    int64_t counts[4] = {1, 2, -3, 4};
    CHECK(cn_plot_confusion_matrix(out_path("bad.png"), "t", 2, counts, NULL) == CN_ERR_ARG);
    CHECK(strstr(cn_last_error(), "count for true 1, predicted 0 is -3") != NULL);
    CHECK(cn_plot_confusion_matrix(out_path("bad.png"), "t", 0, counts, NULL) == CN_ERR_ARG);
    CHECK(cn_plot_confusion_matrix(out_path("bad.png"), "t", 2, NULL, NULL) == CN_ERR_ARG);
    CHECK(access(out_path("bad.png"), F_OK) != 0);
}

/* The committed MNIST digit fixtures, `n` of them cycling through 0..9. */
static uint8_t *fixture_digits(int n, int *labels) {
    uint8_t *images = malloc((size_t)n * 784);
    for (int i = 0; i < n; i++) {
        char path[128];
        snprintf(path, sizeof path, FIXTURE("images/digit%d_original.pgm"), i % 10);
        cn_gray_image img;
        if (cn_image_load(path, &img) == CN_OK && img.width == 28 && img.height == 28)
            memcpy(images + (size_t)i * 784, img.pixels, 784);
        else memset(images + (size_t)i * 784, 0, 784);
        cn_image_free(&img);
        labels[i] = i % 10;
    }
    return images;
}

TEST(image_grid_digits) {
    enum { N = 16 };
    int truth[N], pred[N];
    uint8_t *images = fixture_digits(N, truth);
    for (int i = 0; i < N; i++) pred[i] = i % 5 == 0 ? truth[i] : (truth[i] + 3) % 10;
    const char *path = out_path("grid_16.png");
    cn_status st = cn_plot_image_grid(path, "misclassified test images (seed001)", N, images, 1, 28, 28, truth, pred, NULL);
    CHECK_MSG(st == CN_OK, "%s", cn_last_error());
    png_stats s;
    CHECK(stats_of(path, &s));
    CHECK(s.width > 4 * 112 && s.height > 4 * 112 && s.variance > 1000 && s.levels >= 50);
    CHECK(colour_pixels(path, 199, 41, 41, 20) > 50); /* red captions (wrong) */
    CHECK(colour_pixels(path, 28, 128, 51, 20) > 20); /* green captions (right) */
    free(images);
}

TEST(image_grid_many_and_named) {
    static const char *const fashion[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                            "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"};
    enum { N = 130 };
    int truth[N], pred[N];
    uint8_t *images = fixture_digits(N, truth);
    for (int i = 0; i < N; i++) pred[i] = (truth[i] + 9) % 10;
    cn_status st = cn_plot_image_grid(out_path("grid_130.png"), "more than fit", N, images, 1, 28, 28, truth, pred, NULL);
    CHECK_MSG(st == CN_OK, "%s", cn_last_error());
    CHECK_PNG(out_path("grid_130.png"), 0, 0, 1000, 50);
    st = cn_plot_image_grid(out_path("grid_fashion.png"), "named classes", 7, images, 1, 28, 28, truth, pred, fashion);
    CHECK_MSG(st == CN_OK, "%s", cn_last_error());
    CHECK_PNG(out_path("grid_fashion.png"), 0, 0, 1000, 50);
    st = cn_plot_image_grid(out_path("grid_1.png"), "one", 1, images, 1, 28, 28, truth, NULL, NULL);
    CHECK_MSG(st == CN_OK, "%s", cn_last_error());
    CHECK_PNG(out_path("grid_1.png"), 0, 0, 1000, 20);
    free(images);
}

TEST(image_grid_empty_and_errors) {
    const char *path = out_path("grid_0.png");
    cn_status st = cn_plot_image_grid(path, "misclassified test images", 0, NULL, 1, 28, 28, NULL, NULL, NULL);
    CHECK_MSG(st == CN_OK, "%s", cn_last_error());
    CHECK_PNG(path, 520, 220, 50, 10);
    uint8_t px[784] = {0};
    int label = 1;
    CHECK(cn_plot_image_grid(out_path("bad.png"), "t", -1, px, 1, 28, 28, &label, &label, NULL) == CN_ERR_ARG);
    CHECK(cn_plot_image_grid(out_path("bad.png"), "t", 1, px, 1, 0, 28, &label, &label, NULL) == CN_ERR_ARG);
    CHECK(cn_plot_image_grid(out_path("bad.png"), "t", 1, NULL, 1, 28, 28, &label, &label, NULL) == CN_ERR_ARG);
    CHECK(cn_plot_image_grid(out_path("bad.png"), "t", 1, px, 1, 28, 28, NULL, &label, NULL) == CN_ERR_ARG);
    CHECK(access(out_path("bad.png"), F_OK) != 0);
    CHECK(leftover_temp_files() == 0);
}

static void remove_out_dir(void) {
    DIR *d = opendir(out_dir);
    for (struct dirent *e; d && (e = readdir(d));)
        if (e->d_name[0] != '.') unlink(out_path(e->d_name));
    if (d) closedir(d);
    rmdir(out_dir);
}

/* Under `make check SANITIZE=1`: fontconfig (used by cairo for text) keeps its
 * configuration allocated until exit by design; that is not a convnet leak. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void) { return "leak:libfontconfig.so\n"; }

int main(void) {
    snprintf(out_dir, sizeof out_dir, "/tmp/convnet-test-plot-XXXXXX");
    if (!mkdtemp(out_dir)) { perror("mkdtemp"); return 1; }
    RUN(training_curves_ten_epochs);
    RUN(training_curves_one_epoch_no_validation);
    RUN(training_curves_many_epochs_and_nan);
    RUN(training_curves_errors);
    RUN(confusion_matrix_mnist);
    RUN(confusion_matrix_named_classes);
    RUN(confusion_matrix_errors);
    RUN(image_grid_digits);
    RUN(image_grid_many_and_named);
    RUN(image_grid_empty_and_errors);
    if (getenv("TEST_KEEP")) fprintf(stderr, "plots kept in %s\n", out_dir);
    else remove_out_dir();
    cairo_debug_reset_static_data();
    return test_summary();
}
