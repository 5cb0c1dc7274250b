/* Datasets beyond IDX: image folders (PNG, JPEG), Kaggle CSV, CIFAR-10 batches.
 *
 * - PIL-exact resize and grayscale (fixture from torchvision 0.14 / Pillow);
 * - the same images written as IDX, as an ImageFolder of PNGs and as CSV train
 *   a small model two epochs with the same seed and threads to bit-identical
 *   metrics (seconds aside); the folder's second load comes from its cache;
 * - JPEG: decoded within a tolerance of the originals, and it trains;
 * - a 3-channel model learns a synthetic colour folder, and eval, predict (CLI),
 *   ONNX export + import and C export agree on its test predictions;
 * - CIFAR-10: small batches in the real format, and the download through
 *   CONVNET_MIRROR=file:// (tarball MD5-checked, unpacked with libarchive);
 * - bad folders and CSV files: one line naming the folder, file or line. */
#include "harness.h"
#include "checkpoint.h"
#include "train.h"
#include "core/error.h"
#include "core/rng.h"
#include "data/cifar.h"
#include "data/csv.h"
#include "data/dataset.h"
#include "data/image_planes.h"
#include "data/loader.h"
#include "data/resize.h"
#include "io/export_c.h"
#include "io/onnx.h"
#include "fixtures/resize/resize_pil.h"
#include "fixtures/images/color_expect.h"
#include <archive.h>
#include <archive_entry.h>
#include <jpeglib.h>
#include <png.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmp_root[256];

#define SIDE 12
#define CLASSES 3
#define TRAIN_PER_CLASS 40
#define TEST_PER_CLASS 10

static void path_in(char *buf, size_t size, const char *a, const char *b) { snprintf(buf, size, "%s/%s", a, b); }

static void mkdirs(const char *path) {
    char p[512];
    snprintf(p, sizeof p, "%s", path);
    for (char *s = p + 1; *s; s++) if (*s == '/') { *s = '\0'; mkdir(p, 0755); *s = '/'; }
    mkdir(p, 0755);
}

static void write_file(const char *path, const void *data, size_t size) {
    FILE *f = fopen(path, "wb");
    CHECK_MSG(f != NULL, "cannot write %s", path);
    if (!f) return;
    CHECK(fwrite(data, 1, size, f) == size);
    fclose(f);
}

/* channels 1 or 3, planes (c, h, w) -> PNG (gray or RGB). */
static void write_png(const char *path, const uint8_t *planes, int channels, int h, int w) {
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    img.width = (png_uint_32)w;
    img.height = (png_uint_32)h;
    img.format = channels == 1 ? PNG_FORMAT_GRAY : PNG_FORMAT_RGB;
    uint8_t *px = malloc((size_t)channels * h * w);
    for (int i = 0; i < h * w; i++)
        for (int c = 0; c < channels; c++) px[i * channels + c] = planes[(size_t)c * h * w + i];
    CHECK_MSG(png_image_write_to_file(&img, path, 0, px, 0, NULL), "%s: %s", path, img.message);
    free(px);
}

static void write_jpeg(const char *path, const uint8_t *gray, int h, int w) {
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr err;
    c.err = jpeg_std_error(&err);
    jpeg_create_compress(&c);
    FILE *f = fopen(path, "wb");
    jpeg_stdio_dest(&c, f);
    c.image_width = (JDIMENSION)w;
    c.image_height = (JDIMENSION)h;
    c.input_components = 1;
    c.in_color_space = JCS_GRAYSCALE;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, 95, TRUE);
    jpeg_start_compress(&c, TRUE);
    for (int y = 0; y < h; y++) {
        JSAMPROW row = (JSAMPROW)(gray + (size_t)y * w);
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    fclose(f);
}

/* A synthetic gray image of class k: a bar (0: horizontal, 1: vertical, 2: diagonal) at a
 * jittered place, on noise. */
static void make_digit(cn_rng *r, int k, uint8_t *img) {
    int off = (int)cn_rng_below(r, 5) + 3;
    for (int y = 0; y < SIDE; y++)
        for (int x = 0; x < SIDE; x++) {
            int on = k == 0 ? (y == off || y == off + 1) : k == 1 ? (x == off || x == off + 1) : abs(x - y) <= 1;
            img[y * SIDE + x] = (uint8_t)(on ? 200 + cn_rng_below(r, 56) : cn_rng_below(r, 60));
        }
}

typedef struct {
    int count;
    uint8_t images[CLASSES * TRAIN_PER_CLASS][SIDE * SIDE];
    uint8_t labels[CLASSES * TRAIN_PER_CLASS];
} images;

/* Images ordered by class (the order of an ImageFolder). */
static void make_images(images *s, int per_class, uint64_t seed) {
    cn_rng r;
    cn_rng_seed(&r, seed);
    s->count = 0;
    for (int k = 0; k < CLASSES; k++)
        for (int i = 0; i < per_class; i++) {
            make_digit(&r, k, s->images[s->count]);
            s->labels[s->count++] = (uint8_t)k;
        }
}

static void write_idx(const char *path, int images_file, const images *s) {
    FILE *f = fopen(path, "wb");
    uint8_t h[16] = {0, 0, 8, (uint8_t)(images_file ? 3 : 1), 0, 0, (uint8_t)(s->count >> 8), (uint8_t)s->count,
                     0, 0, 0, SIDE, 0, 0, 0, SIDE};
    fwrite(h, 1, images_file ? 16 : 8, f);
    for (int i = 0; i < s->count; i++) {
        if (images_file) fwrite(s->images[i], 1, SIDE * SIDE, f);
        else fwrite(&s->labels[i], 1, 1, f);
    }
    fclose(f);
}

static void write_csv(const char *path, const images *s) {
    FILE *f = fopen(path, "w");
    fprintf(f, "label");
    for (int p = 0; p < SIDE * SIDE; p++) fprintf(f, ",pixel%d", p);
    fprintf(f, "\n");
    for (int i = 0; i < s->count; i++) {
        fprintf(f, "%d", s->labels[i]);
        for (int p = 0; p < SIDE * SIDE; p++) fprintf(f, ",%d", s->images[i][p]);
        fprintf(f, "\r\n");
    }
    fclose(f);
}

static void write_folder(const char *dir, const char *split, const images *s, int jpeg) {
    char path[512];
    for (int i = 0; i < s->count; i++) {
        snprintf(path, sizeof path, "%s/%s/%d", dir, split, s->labels[i]);
        mkdirs(path);
        snprintf(path, sizeof path, "%s/%s/%d/img%03d.%s", dir, split, s->labels[i], i, jpeg ? "jpg" : "png");
        if (jpeg) write_jpeg(path, s->images[i], SIDE, SIDE);
        else write_png(path, s->images[i], 1, SIDE, SIDE);
    }
}

static const char *tiny_spec(void) {
    static char path[512];
    path_in(path, sizeof path, tmp_root, "tiny.spec");
    const char *text = "input 1x12x12\ntrain optimizer=sgd lr=0.05 momentum=0.9 batch=16 epochs=2\n"
                       "conv2d out=4 k=3 pad=1\nrelu\nmaxpool2d k=2\nflatten\nlinear out=3\nlog_softmax\n";
    write_file(path, text, strlen(text));
    return path;
}

/* Trains and returns OUT/metrics.csv without its seconds column (malloc'd). */
static char *train_on(const char *dataset, const char *dir, const char *spec, const char *out) {
    cn_train_options o;
    cn_train_options_init(&o);
    o.model = spec;
    o.dataset = dataset;
    o.data_dir = dir;
    o.seed = 7;
    o.threads = 2;
    o.out_dir = out;
    o.quiet = 1;
    cn_status st = cn_train(&o);
    CHECK_MSG(st == CN_OK, "%s: %s", dataset, cn_last_error());
    char path[600];
    path_in(path, sizeof path, out, "metrics.csv");
    FILE *f = fopen(path, "r");
    if (!f) return strdup("");
    static char text[8192];
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = '\0';
    fclose(f);
    char *copy = malloc(n + 1), *w = copy;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        char *last = strrchr(line, ',');
        if (last) *last = '\0';
        w += sprintf(w, "%s\n", line);
    }
    return copy;
}

TEST(resize_and_grayscale_match_torchvision) {
    for (size_t i = 0; i < sizeof resize_cases / sizeof resize_cases[0]; i++) {
        int h = resize_cases[i].h, w = resize_cases[i].w;
        uint8_t out[28 * 28];
        CHECK(cn_resize_bilinear(resize_src, RESIZE_SRC_H, RESIZE_SRC_W, out, h, w) == CN_OK);
        CHECK_MSG(memcmp(out, resize_cases[i].out, (size_t)h * w) == 0, "resize to %dx%d differs from PIL", h, w);
    }
    cn_color_image rgb = {RESIZE_SRC_W, RESIZE_SRC_H, 3, (uint8_t *)resize_src_rgb};
    uint8_t gray[RESIZE_SRC_H * RESIZE_SRC_W], small[7 * 5];
    CHECK(cn_image_to_planes(&rgb, 1, RESIZE_SRC_H, RESIZE_SRC_W, 0, 1, "rgb", gray) == CN_OK);
    CHECK(memcmp(gray, resize_gray_of_rgb, sizeof gray) == 0);
    CHECK(cn_image_to_planes(&rgb, 1, 7, 5, 1, 1, "rgb", small) == CN_OK);
    CHECK(memcmp(small, resize_gray_7x5, sizeof small) == 0);
    /* Without --grayscale an RGB image does not fit a 1-channel model; without --resize, the size must match. */
    CHECK(cn_image_to_planes(&rgb, 1, RESIZE_SRC_H, RESIZE_SRC_W, 0, 0, "x.png", gray) == CN_ERR_SHAPE);
    CHECK(strstr(cn_last_error(), "x.png: image is RGB but the model takes 1 channel; pass --grayscale") != NULL);
    CHECK(cn_image_to_planes(&rgb, 3, 7, 5, 0, 0, "x.png", gray) == CN_ERR_SHAPE);
    CHECK_MSG(strstr(cn_last_error(), "x.png: image is 13x11 (HxW), expected 7x5") != NULL, "%s", cn_last_error());
}

/* Every PNG kind (1-bit, 16-bit interlaced, 8-bit, tRNS, palette, RGB interlaced, RGBA) and
 * JPEG (gray, colour 4:2:0) as ImageFolder's PIL loader sees it (16-bit: scaled with
 * rounding, within 1 of PIL's samples scaled; the rest exactly). */
TEST(png_and_jpeg_decode_as_pil_does) {
    for (size_t i = 0; i < sizeof color_cases / sizeof color_cases[0]; i++) {
        uint8_t *data;
        size_t size;
        cn_color_image img = {0};
        CHECK(cn_image_read_file(color_cases[i].path, &data, &size) == CN_OK);
        CHECK_MSG(cn_image_decode_color(data, size, color_cases[i].path, &img) == CN_OK, "%s", cn_last_error());
        free(data);
        CHECK_MSG(img.width == color_cases[i].width && img.height == color_cases[i].height &&
                  img.channels == color_cases[i].channels, "%s: %dx%dx%d", color_cases[i].path, img.width, img.height, img.channels);
        int worst = 0;
        size_t n = (size_t)color_cases[i].width * color_cases[i].height * color_cases[i].channels;
        for (size_t k = 0; img.pixels && k < n; k++) {
            int d = abs((int)img.pixels[k] - color_cases[i].pixels[k]);
            if (d > worst) worst = d;
        }
        CHECK_MSG(worst <= (strstr(color_cases[i].path, "16") ? 1 : 0), "%s: differs from PIL by %d", color_cases[i].path, worst);
        cn_color_image_free(&img);
    }
}

TEST(idx_folder_and_csv_train_bit_identically) {
    static images train, test;
    make_images(&train, TRAIN_PER_CLASS, 11);
    make_images(&test, TEST_PER_CLASS, 12);
    char idx[300], folder[300], csv[300], p[600];
    path_in(idx, sizeof idx, tmp_root, "idx");
    path_in(folder, sizeof folder, tmp_root, "folder");
    path_in(csv, sizeof csv, tmp_root, "csv");
    mkdirs(idx); mkdirs(folder); mkdirs(csv);
    path_in(p, sizeof p, idx, "train-images-idx3-ubyte"); write_idx(p, 1, &train);
    path_in(p, sizeof p, idx, "train-labels-idx1-ubyte"); write_idx(p, 0, &train);
    path_in(p, sizeof p, idx, "t10k-images-idx3-ubyte"); write_idx(p, 1, &test);
    path_in(p, sizeof p, idx, "t10k-labels-idx1-ubyte"); write_idx(p, 0, &test);
    write_folder(folder, "train", &train, 0);
    write_folder(folder, "test", &test, 0);
    path_in(p, sizeof p, csv, "train.csv"); write_csv(p, &train);
    path_in(p, sizeof p, csv, "test.csv"); write_csv(p, &test);

    const char *spec = tiny_spec();
    char out[400];
    path_in(out, sizeof out, tmp_root, "run-idx");
    char *a = train_on("idx", idx, spec, out);
    path_in(out, sizeof out, tmp_root, "run-folder");
    char *b = train_on("folder", folder, spec, out);
    path_in(out, sizeof out, tmp_root, "run-csv");
    char *c = train_on("csv", csv, spec, out);
    CHECK_MSG(strlen(a) > 100 && !strcmp(a, b) && !strcmp(a, c), "metrics differ:\n%s---\n%s---\n%s", a, b, c);
    free(a); free(b); free(c);

    /* Kaggle's flow: `convnet predict --csv` on the test images without their labels writes
     * ImageId,Label lines that are the model's eval predictions. */
    char unlabelled[400], sub[400], cmd[1400];
    path_in(unlabelled, sizeof unlabelled, tmp_root, "kaggle_test.csv");
    path_in(sub, sizeof sub, tmp_root, "submission_cli.csv");
    FILE *f = fopen(unlabelled, "w");
    for (int p = 0; p < SIDE * SIDE; p++) fprintf(f, "%spixel%d", p ? "," : "", p);
    fprintf(f, "\n");
    for (int i = 0; i < test.count; i++)
        for (int p = 0; p < SIDE * SIDE; p++) fprintf(f, "%d%s", test.images[i][p], p + 1 < SIDE * SIDE ? "," : "\n");
    fclose(f);
    snprintf(cmd, sizeof cmd, "build/convnet predict --weights %s/run-csv/last.safetensors --csv %s -o %s > /dev/null",
             tmp_root, unlabelled, sub);
    CHECK(system(cmd) == 0);
    cn_model *m = NULL;
    static cn_checkpoint_info info;
    snprintf(p, sizeof p, "%s/run-csv/last.safetensors", tmp_root);
    CHECK(cn_checkpoint_load(p, &m, &info, NULL) == CN_OK);
    static cn_dataset labelled;
    cn_data_options co = {.name = "csv", .dir = csv, .channels = 1, .rows = SIDE, .cols = SIDE};
    int pred[CLASSES * TEST_PER_CLASS], correct;
    double loss;
    CHECK(m && cn_dataset_open(&co, &labelled) == CN_OK &&
          cn_evaluate(m, &labelled.test, info.mean, info.std, 2, &loss, &correct, pred) == CN_OK);
    f = fopen(sub, "r");
    char line[64];
    int rows = 0, same = 0, id, label;
    CHECK(f && fgets(line, sizeof line, f) && !strcmp(line, "ImageId,Label\n"));
    while (f && fgets(line, sizeof line, f) && sscanf(line, "%d,%d", &id, &label) == 2 && rows < test.count)
        same += id == rows + 1 && label == pred[rows], rows++;
    if (f) fclose(f);
    CHECK_MSG(rows == test.count && same == rows, "%d rows, %d as eval predicts", rows, same);
    cn_dataset_free(&labelled);
    cn_model_free(m);

    /* The folder again: from its cache, the same bytes. */
    static cn_dataset ds;
    cn_data_options o = {.name = "folder", .dir = folder, .channels = 1, .rows = SIDE, .cols = SIDE};
    CHECK_MSG(cn_dataset_open(&o, &ds) == CN_OK, "%s", cn_last_error());
    CHECK(ds.from_cache == 2 && ds.train.count == CLASSES * TRAIN_PER_CLASS && ds.num_classes == CLASSES);
    CHECK(ds.train.count == train.count && memcmp(ds.train.images, train.images, sizeof train.images) == 0);
    for (int i = 0; i < ds.test.count; i++) CHECK(ds.test.labels[i] == test.labels[i]);
    cn_dataset_free(&ds);
    /* A changed file invalidates the cache. */
    snprintf(p, sizeof p, "%s/train/0/img000.png", folder);
    uint8_t blank[SIDE * SIDE] = {0};
    write_png(p, blank, 1, SIDE, SIDE);
    CHECK(cn_dataset_open(&o, &ds) == CN_OK);
    CHECK_MSG(ds.from_cache == 1 && ds.train.images[0] == 0 && ds.train.images[SIDE * SIDE * 3] == train.images[3][0],
              "cache %d, %d, %d vs %d", ds.from_cache, ds.train.images[0], ds.train.images[SIDE * SIDE * 3], train.images[3][0]);
    cn_dataset_free(&ds);
}

TEST(jpeg_folder_within_tolerance) {
    static images train, test;
    make_images(&train, TRAIN_PER_CLASS, 11);
    make_images(&test, TEST_PER_CLASS, 12);
    char dir[300];
    path_in(dir, sizeof dir, tmp_root, "jpeg");
    write_folder(dir, "train", &train, 1);
    write_folder(dir, "test", &test, 1);
    static cn_dataset ds;
    cn_data_options o = {.name = "folder", .dir = dir, .channels = 1, .rows = SIDE, .cols = SIDE};
    CHECK_MSG(cn_dataset_open(&o, &ds) == CN_OK, "%s", cn_last_error());
    double diff = 0;
    for (int i = 0; i < train.count && ds.train.count == train.count; i++)
        for (int p = 0; p < SIDE * SIDE; p++) diff += fabs((double)ds.train.images[(size_t)i * SIDE * SIDE + p] - train.images[i][p]);
    diff /= (double)train.count * SIDE * SIDE;
    CHECK_MSG(diff < 6.0, "mean absolute JPEG error %.2f", diff);
    cn_dataset_free(&ds);
    char out[400];
    path_in(out, sizeof out, tmp_root, "run-jpeg");
    char *m = train_on("folder", dir, tiny_spec(), out);
    CHECK(strstr(m, "\n2,") != NULL);
    free(m);
}

#define CSIDE 16
static const char *const colour_names[3] = {"red", "green", "blue"};

/* A 16x16 RGB image of colour k (0 red, 1 green, 2 blue): a blob of that colour on gray noise. */
static void make_colour(cn_rng *r, int k, uint8_t *planes) {
    int cx = 4 + (int)cn_rng_below(r, 8), cy = 4 + (int)cn_rng_below(r, 8);
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < CSIDE; y++)
            for (int x = 0; x < CSIDE; x++) {
                int in = (x - cx) * (x - cx) + (y - cy) * (y - cy) <= 12;
                int v = 60 + (int)cn_rng_below(r, 80);
                if (in) v = c == k ? 180 + (int)cn_rng_below(r, 70) : (int)cn_rng_below(r, 50);
                planes[(size_t)c * CSIDE * CSIDE + y * CSIDE + x] = (uint8_t)v;
            }
}

static void write_colour_split(const char *dir, const char *split, int per_class, uint64_t seed) {
    cn_rng r;
    cn_rng_seed(&r, seed);
    char path[600];
    uint8_t planes[3 * CSIDE * CSIDE];
    for (int k = 0; k < 3; k++)
        for (int i = 0; i < per_class; i++) {
            snprintf(path, sizeof path, "%s/%s/%s", dir, split, colour_names[k]);
            mkdirs(path);
            snprintf(path, sizeof path, "%s/%s/%s/%s_%03d.png", dir, split, colour_names[k], colour_names[k], i);
            make_colour(&r, k, planes);
            write_png(path, planes, 3, CSIDE, CSIDE);
        }
}

/* Predictions of the C export on the split (images as pixel/255), via a compiled driver. */
static int c_export_predictions(const cn_model *m, const cn_checkpoint_info *info, const cn_split *s, int *pred) {
    char dir[300], path[600], cmd[4000];
    path_in(dir, sizeof dir, tmp_root, "colour_c");
    if (cn_export_c(m, dir, info->mean, info->std, 0, NULL, 0, NULL) != CN_OK) return 0;
    size_t n = cn_split_image_size(s);
    float *x = malloc(n * sizeof *x * s->count);
    for (size_t i = 0; i < n * s->count; i++) x[i] = s->images[i] / 255.0f;
    path_in(path, sizeof path, dir, "in.bin");
    write_file(path, x, n * sizeof *x * s->count);
    free(x);
    const char *driver = "#include \"model.h\"\n#include <stdio.h>\nint main(int argc, char **argv) {\n"
                         "  FILE *f = fopen(argv[1], \"rb\"); static float in[MODEL_INPUT_SIZE], out[MODEL_NUM_CLASSES];\n"
                         "  while (fread(in, sizeof in, 1, f) == 1) printf(\"%d\\n\", model_predict(in, out));\n"
                         "  (void)argc; fclose(f); return 0;\n}\n";
    path_in(path, sizeof path, dir, "driver.c");
    write_file(path, driver, strlen(driver));
    snprintf(cmd, sizeof cmd, "cc -std=c99 -O1 -Wall -Werror -o %s/drv %s/driver.c %s/model.c -lm && %s/drv %s/in.bin > %s/out.txt",
             dir, dir, dir, dir, dir, dir);
    if (system(cmd) != 0) return 0;
    path_in(path, sizeof path, dir, "out.txt");
    FILE *f = fopen(path, "r");
    int got = 0;
    while (f && got < s->count && fscanf(f, "%d", &pred[got]) == 1) got++;
    if (f) fclose(f);
    return got == s->count;
}

/* Predictions of `convnet predict` on the test folders (in dataset order), from its -o CSV. */
static int cli_predictions(const char *weights, const char *dir, int count, int *pred) {
    char cmd[2000], out[400];
    path_in(out, sizeof out, tmp_root, "predict.csv");
    snprintf(cmd, sizeof cmd, "build/convnet predict --weights %s %s/test/blue %s/test/green %s/test/red -o %s > /dev/null",
             weights, dir, dir, dir, out);
    if (system(cmd) != 0) return 0;
    FILE *f = fopen(out, "r");
    char line[1024];
    int got = 0;
    if (f && fgets(line, sizeof line, f))
        while (got < count && fgets(line, sizeof line, f)) {
            char *comma = strstr(line, "\",");
            if (comma) pred[got++] = atoi(comma + 2);
        }
    if (f) fclose(f);
    return got == count;
}

TEST(colour_folder_learns_and_exports_agree) {
    char dir[300], spec[400], out[400], weights[600];
    path_in(dir, sizeof dir, tmp_root, "colour");
    write_colour_split(dir, "train", 40, 21);
    write_colour_split(dir, "test", 12, 22);
    path_in(spec, sizeof spec, tmp_root, "colour.spec");
    const char *text = "input 3x16x16\ntrain optimizer=sgd lr=0.05 momentum=0.9 batch=16 epochs=4\n"
                       "conv2d out=8 k=3 pad=1\nbatchnorm2d\nrelu\nmaxpool2d k=2\nconv2d out=8 k=3 pad=1\nrelu\n"
                       "gap\nflatten\nlinear out=3\nlog_softmax\n";
    write_file(spec, text, strlen(text));
    path_in(out, sizeof out, tmp_root, "run-colour");
    char *metrics = train_on("folder", dir, spec, out);
    free(metrics);
    path_in(weights, sizeof weights, out, "last.safetensors");
    cn_model *m = NULL;
    static cn_checkpoint_info info;
    CHECK_MSG(cn_checkpoint_load(weights, &m, &info, NULL) == CN_OK, "%s", cn_last_error());
    if (!m) return;
    CHECK(info.num_classes == 3 && !strcmp(info.class_names[0], "blue") && !strcmp(info.class_names[2], "red"));
    CHECK(info.mean[0] != info.mean[1] || info.mean[1] != info.mean[2]);   /* per channel */
    static cn_dataset ds;
    cn_data_options o = {.name = "folder", .dir = dir, .channels = 3, .rows = CSIDE, .cols = CSIDE};
    CHECK(cn_dataset_open(&o, &ds) == CN_OK);
    int n = ds.test.count, correct = 0, onnx_correct = 0;
    int *pe = calloc(n, sizeof *pe), *po = calloc(n, sizeof *po), *pc = calloc(n, sizeof *pc), *pp = calloc(n, sizeof *pp);
    double loss;
    CHECK(cn_evaluate(m, &ds.test, info.mean, info.std, 2, &loss, &correct, pe) == CN_OK);
    CHECK_MSG(correct >= n * 9 / 10, "the colour model learned only %d/%d", correct, n);
    /* ONNX export, imported again */
    char onnx[400];
    path_in(onnx, sizeof onnx, tmp_root, "colour.onnx");
    CHECK(cn_onnx_export_labeled(m, onnx, 1, info.mean, info.std, info.dataset, info.num_classes,
                                 (const char (*)[CN_CLASS_NAME_MAX])info.class_names) == CN_OK);
    cn_model *back = NULL;
    static cn_onnx_info oi;
    CHECK_MSG(cn_onnx_import_ex(onnx, &oi, &back) == CN_OK, "%s", cn_last_error());
    CHECK(oi.has_normalization && oi.mean[2] == info.mean[2] && oi.std[1] == info.std[1]);
    /* the class names and the dataset travel in the ONNX metadata */
    CHECK(oi.num_class_names == 3 && !strcmp(oi.class_names[0], "blue") && !strcmp(oi.class_names[2], "red"));
    CHECK(!strcmp(oi.dataset, "folder"));
    if (back) {
        CHECK(cn_evaluate(back, &ds.test, oi.mean, oi.std, 2, &loss, &onnx_correct, po) == CN_OK);
        CHECK(memcmp(pe, po, n * sizeof *pe) == 0);
        cn_model_free(back);
    }
    CHECK_MSG(c_export_predictions(m, &info, &ds.test, pc), "C export did not run");
    CHECK(memcmp(pe, pc, n * sizeof *pe) == 0);
    CHECK_MSG(cli_predictions(weights, dir, n, pp), "convnet predict did not run");
    {   /* predict on the exported ONNX file names the classes from its metadata */
        char cmd[1400], text[4096] = "";
        snprintf(cmd, sizeof cmd, "build/convnet predict --weights %s %s/test/red 2>&1", onnx, dir);
        FILE *p = popen(cmd, "r");
        size_t got = p ? fread(text, 1, sizeof text - 1, p) : 0;
        text[got] = '\0';
        CHECK_MSG(p && pclose(p) == 0 && strstr(text, ": red (p="), "predict on the ONNX export printed: %s", text);
    }
    CHECK(memcmp(pe, pp, n * sizeof *pe) == 0);
    free(pe); free(po); free(pc); free(pp);
    cn_dataset_free(&ds);
    cn_model_free(m);
}

/* A CIFAR-10 batch of `count` records: label i % 10, pixels from (i, byte). */
static void write_cifar_batch(const char *path, int count, int salt) {
    uint8_t *b = malloc((size_t)count * CN_CIFAR_RECORD);
    for (int i = 0; i < count; i++) {
        b[(size_t)i * CN_CIFAR_RECORD] = (uint8_t)((i + salt) % 10);
        for (int k = 1; k < CN_CIFAR_RECORD; k++) b[(size_t)i * CN_CIFAR_RECORD + k] = (uint8_t)(k * 7 + i * 13 + salt);
    }
    write_file(path, b, (size_t)count * CN_CIFAR_RECORD);
    free(b);
}

TEST(cifar10_batches_tarball_and_mirror) {
    char src[300], path[600];
    path_in(src, sizeof src, tmp_root, "cifar-src/cifar-10-batches-bin");
    mkdirs(src);
    static const char *const names[6] = {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                                         "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"};
    for (int i = 0; i < 6; i++) { path_in(path, sizeof path, src, names[i]); write_cifar_batch(path, i < 5 ? 4 : 3, i); }
    const char *meta = "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n\n";
    path_in(path, sizeof path, src, "batches.meta.txt");
    write_file(path, meta, strlen(meta));
    /* The same files as a .tar.gz, as published. */
    char mirror[300], tarball[600];
    path_in(mirror, sizeof mirror, tmp_root, "cifar-mirror");
    mkdirs(mirror);
    path_in(tarball, sizeof tarball, mirror, "cifar-10-binary.tar.gz");
    struct archive *a = archive_write_new();
    archive_write_add_filter_gzip(a);
    archive_write_set_format_pax_restricted(a);
    CHECK(archive_write_open_filename(a, tarball) == ARCHIVE_OK);
    for (int i = 0; i < 7; i++) {
        const char *name = i < 6 ? names[i] : "batches.meta.txt";
        char member[128];
        snprintf(member, sizeof member, "cifar-10-batches-bin/%s", name);
        path_in(path, sizeof path, src, name);
        FILE *f = fopen(path, "rb");
        static uint8_t data[5 * CN_CIFAR_RECORD];
        size_t size = fread(data, 1, sizeof data, f);
        fclose(f);
        struct archive_entry *e = archive_entry_new();
        archive_entry_set_pathname(e, member);
        archive_entry_set_size(e, (la_int64_t)size);
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_perm(e, 0644);
        archive_write_header(a, e);
        archive_write_data(a, data, size);
        archive_entry_free(e);
    }
    archive_write_close(a);
    archive_write_free(a);

    /* Through the mirror: downloaded, then refused, since it is not the published file. */
    char dest[300], url[400];
    path_in(dest, sizeof dest, tmp_root, "cifar-dl");
    snprintf(url, sizeof url, "file://%s/", mirror);
    setenv("CONVNET_MIRROR", url, 1);
    static cn_dataset ds;
    cn_data_options o = {.name = "cifar10", .dir = dest, .allow_download = 1};
    CHECK(cn_dataset_open(&o, &ds) == CN_ERR_CHECKSUM);
    CHECK_MSG(strstr(cn_last_error(), "does not match the published c32a1d4ab5d03f1284b67883e8d87530") != NULL, "%s",
              cn_last_error());
    unsetenv("CONVNET_MIRROR");
    /* Unpacked with libarchive, then loaded. */
    CHECK_MSG(cn_cifar10_unpack(mirror) == CN_OK, "%s", cn_last_error());
    o = (cn_data_options){.name = "cifar10", .dir = mirror};
    CHECK_MSG(cn_dataset_open(&o, &ds) == CN_OK, "%s", cn_last_error());
    CHECK(ds.train.count == 20 && ds.test.count == 3 && ds.train.channels == 3 && ds.train.rows == 32);
    CHECK(ds.num_classes == 10 && !strcmp(ds.class_names[9], "truck") && ds.mean[0] == 0.4914f && ds.std[2] == 0.2616f);
    CHECK(ds.train.labels[4] == 1 && ds.train.images[(size_t)4 * 3072] == (uint8_t)(7 + 1));  /* batch 2, record 0 */
    cn_dataset_free(&ds);
    /* Missing files and no download: one line saying where and how. */
    o = (cn_data_options){.name = "cifar10", .dir = dest};
    CHECK(cn_dataset_open(&o, &ds) == CN_ERR_IO);
    CHECK(strstr(cn_last_error(), "convnet download --dataset cifar10") != NULL);
}

/* Expects loading `dir` as a folder dataset to fail with `fragment`. */
static void expect_folder_error(const char *dir, int skip_bad, const char *fragment) {
    static cn_dataset ds;
    cn_data_options o = {.name = "folder", .dir = dir, .channels = 1, .rows = SIDE, .cols = SIDE, .skip_bad = skip_bad};
    cn_status st = cn_dataset_open(&o, &ds);
    CHECK_MSG(st != CN_OK && strstr(cn_last_error(), fragment) && !strchr(cn_last_error(), '\n'),
              "expected '%s', got: %s", fragment, st ? cn_last_error() : "OK");
    if (st == CN_OK) cn_dataset_free(&ds);
}

/* Images in sub-folders of a class folder count, in ImageFolder's order:
 * folders by full path ("0/a" < "0/a-b" < "0/a/x"), files by name. The
 * expected order is what torchvision 0.14's ImageFolder gives for this tree. */
TEST(nested_class_folders_in_imagefolder_order) {
    static const struct { const char *file; int value; } tree[] = {
        {"0/z.png", 1}, {"0/a-b/m.png", 2}, {"0/a/x/q.png", 3}, {"0/a/b.png", 4}, {"0/A/c.png", 5},
        {"1/k.png", 6}, {"1/deep/er/e.png", 7}, {"1/.hidden/h.png", 99}};
    static const int expected[] = {1, 5, 4, 2, 3, 6, 7};   /* hidden folders are skipped */
    char dir[300], p[600];
    path_in(dir, sizeof dir, tmp_root, "nested");
    uint8_t planes[SIDE * SIDE];
    for (size_t i = 0; i < sizeof tree / sizeof tree[0]; i++)
        for (int s = 0; s < 2; s++) {
            snprintf(p, sizeof p, "%s/%s/%s", dir, s ? "test" : "train", tree[i].file);
            char *slash = strrchr(p, '/');
            *slash = '\0';
            mkdirs(p);
            *slash = '/';
            memset(planes, tree[i].value * 2, sizeof planes);
            write_png(p, planes, 1, SIDE, SIDE);
        }
    static cn_dataset ds;
    cn_data_options o = {.name = "folder", .dir = dir, .channels = 1, .rows = SIDE, .cols = SIDE};
    CHECK_MSG(cn_dataset_open(&o, &ds) == CN_OK, "%s", cn_last_error());
    CHECK_MSG(ds.train.count == 7 && ds.test.count == 7, "%d, %d images", ds.train.count, ds.test.count);
    for (int i = 0; i < 7 && i < ds.train.count; i++)
        CHECK_MSG(ds.train.images[(size_t)i * SIDE * SIDE] == expected[i] * 2 && ds.train.labels[i] == (i >= 5),
                  "image %d: value %d label %d; expected %d", i, ds.train.images[(size_t)i * SIDE * SIDE] / 2,
                  ds.train.labels[i], expected[i]);
    cn_dataset_free(&ds);
    /* A symbolic link loop inside a class folder ends with one line. */
    snprintf(p, sizeof p, "%s/train/1/deep/loop", dir);
    CHECK(symlink("..", p) == 0);
    expect_folder_error(dir, 0, "folders nested more than 16 deep in a class folder");
}

TEST(bad_folders_and_csv_name_the_culprit) {
    static images train, test;
    make_images(&train, 4, 31);
    make_images(&test, 2, 32);
    char dir[300], p[600], q[600];
    path_in(dir, sizeof dir, tmp_root, "bad");
    write_folder(dir, "train", &train, 0);
    write_folder(dir, "test", &test, 0);
    /* A class missing from test. */
    snprintf(p, sizeof p, "%s/test/2", dir);
    snprintf(q, sizeof q, "%s/test-2-away", tmp_root);
    rename(p, q);
    expect_folder_error(dir, 0, "bad/test/2: class folder missing; expected a folder for every class of");
    rename(q, p);
    /* An extra class in test. */
    snprintf(p, sizeof p, "%s/test/7", dir);
    mkdirs(p);
    expect_folder_error(dir, 0, "bad/test/7: class folder not in");
    rmdir(p);
    /* An empty class folder. */
    snprintf(p, sizeof p, "%s/train/3", dir);
    mkdirs(p);
    snprintf(q, sizeof q, "%s/test/3", dir);
    mkdirs(q);
    expect_folder_error(dir, 0, "bad/train/3: empty class folder");
    rmdir(p); rmdir(q);
    /* A corrupt PNG: named, or skipped and counted. */
    snprintf(p, sizeof p, "%s/train/1/zz_corrupt.png", dir);
    write_file(p, "\x89PNG\r\n\x1a\nnot really", 18);
    expect_folder_error(dir, 0, "train/1/zz_corrupt.png: byte");
    static cn_dataset ds;
    cn_data_options o = {.name = "folder", .dir = dir, .channels = 1, .rows = SIDE, .cols = SIDE, .skip_bad = 1};
    CHECK_MSG(cn_dataset_open(&o, &ds) == CN_OK, "%s", cn_last_error());
    CHECK(ds.skipped == 1 && ds.train.count == train.count);
    cn_dataset_free(&ds);
    remove(p);
    /* An image of another size: file, size and expected size. */
    snprintf(p, sizeof p, "%s/train/0/small.png", dir);
    uint8_t small[10 * 9] = {0};
    write_png(p, small, 1, 10, 9);
    expect_folder_error(dir, 0, "train/0/small.png: image is 10x9 (HxW), expected 12x12");
    expect_folder_error(dir, 1, "train/0/small.png: image is 10x9 (HxW), expected 12x12");   /* not a decode error */
    remove(p);
    /* A val/ folder is the validation split; one with a class missing names it too. */
    write_folder(dir, "val", &test, 0);
    o = (cn_data_options){.name = "folder", .dir = dir, .channels = 1, .rows = SIDE, .cols = SIDE};
    CHECK_MSG(cn_dataset_open(&o, &ds) == CN_OK, "%s", cn_last_error());
    CHECK(ds.val.count == test.count && ds.val.labels[ds.val.count - 1] == CLASSES - 1);
    cn_dataset_free(&ds);
    snprintf(p, sizeof p, "%s/val/1", dir);
    snprintf(q, sizeof q, "%s/val-1-away", tmp_root);
    rename(p, q);
    expect_folder_error(dir, 0, "bad/val/1: class folder missing");
    rename(q, p);
    /* No train folder. */
    expect_folder_error(tmp_root, 0, "/train: no such folder");

    /* CSV: a test label outside the training classes names the line. */
    char csv[300];
    path_in(csv, sizeof csv, tmp_root, "badcsv");
    mkdirs(csv);
    path_in(p, sizeof p, csv, "train.csv");
    write_csv(p, &train);
    test.labels[1] = 5;
    path_in(p, sizeof p, csv, "test.csv");
    write_csv(p, &test);
    o = (cn_data_options){.name = "csv", .dir = csv, .channels = 1, .rows = SIDE, .cols = SIDE};
    CHECK(cn_dataset_open(&o, &ds) == CN_ERR_FORMAT);
    CHECK_MSG(strstr(cn_last_error(), "badcsv/test.csv:3: label 5, expected 0..2") != NULL, "%s", cn_last_error());
    /* The default shape is Kaggle's 1x28x28: a 12x12 file says so. */
    o = (cn_data_options){.name = "csv", .dir = csv};
    CHECK(cn_dataset_open(&o, &ds) == CN_ERR_FORMAT);
    CHECK_MSG(strstr(cn_last_error(), "train.csv:1: header has 145 columns, expected 785") != NULL, "%s", cn_last_error());
}

TEST(kaggle_submission_file) {
    char path[400];
    path_in(path, sizeof path, tmp_root, "submission.csv");
    int pred[3] = {7, 0, 9};
    CHECK(cn_csv_write_submission(path, pred, 3) == CN_OK);
    FILE *f = fopen(path, "r");
    char text[100] = "";
    size_t n = f ? fread(text, 1, sizeof text - 1, f) : 0;
    text[n] = '\0';
    if (f) fclose(f);
    CHECK_MSG(!strcmp(text, "ImageId,Label\n1,7\n2,0\n3,9\n"), "%s", text);
    /* An unlabelled test.csv (Kaggle's) reads with labels 0. */
    const char *csv = "pixel0,pixel1,pixel2,pixel3\n1,2,3,4\n5,6,7,8\n";
    cn_split s;
    int has_label = -1;
    CHECK(cn_csv_parse(csv, strlen(csv), "t.csv", 1, 2, 2, 0, 0, &s, &has_label) == CN_OK);
    CHECK(has_label == 0 && s.count == 2 && s.images[7] == 8 && s.labels[1] == 0);
    cn_split_free(&s);
}

/* Augmenting a colour image moves its planes together: three equal planes stay equal. */
TEST(colour_augmentation_moves_planes_together) {
    static uint8_t images[2 * 3 * CSIDE * CSIDE];
    cn_rng r;
    cn_rng_seed(&r, 5);
    for (int i = 0; i < 2; i++) {
        uint8_t *img = images + (size_t)i * 3 * CSIDE * CSIDE;
        for (int k = 0; k < CSIDE * CSIDE; k++) img[k] = (uint8_t)cn_rng_below(&r, 256);
        memcpy(img + CSIDE * CSIDE, img, CSIDE * CSIDE);
        memcpy(img + 2 * CSIDE * CSIDE, img, CSIDE * CSIDE);
    }
    uint16_t labels[2] = {0, 1};
    cn_split s = {.count = 2, .rows = CSIDE, .cols = CSIDE, .channels = 3, .images = images, .labels = labels};
    cn_augment aug;
    CHECK(cn_augment_parse("rotate=20,translate=0.2,erase=1,elastic=8:3", &aug) == CN_OK);
    const float mean[3] = {0.4f, 0.4f, 0.4f}, std[3] = {0.2f, 0.2f, 0.2f};
    static float out[2 * 3 * CSIDE * CSIDE];
    int idx[2] = {0, 1}, lab[2];
    cn_loader_fill(&s, idx, 2, mean, std, &aug, 99, out, lab);
    const size_t plane = CSIDE * CSIDE;
    for (int i = 0; i < 2; i++) {
        const float *o = out + (size_t)i * 3 * plane;
        CHECK(memcmp(o, o + plane, plane * sizeof *o) == 0 && memcmp(o, o + 2 * plane, plane * sizeof *o) == 0);
    }
    CHECK(lab[0] == 0 && lab[1] == 1);
}

int main(void) {
    snprintf(tmp_root, sizeof tmp_root, "/tmp/cn-test-datasets-XXXXXX");
    if (!mkdtemp(tmp_root)) { perror("mkdtemp"); return 2; }
    RUN(resize_and_grayscale_match_torchvision);
    RUN(png_and_jpeg_decode_as_pil_does);
    RUN(idx_folder_and_csv_train_bit_identically);
    RUN(jpeg_folder_within_tolerance);
    RUN(colour_folder_learns_and_exports_agree);
    RUN(cifar10_batches_tarball_and_mirror);
    RUN(nested_class_folders_in_imagefolder_order);
    RUN(bad_folders_and_csv_name_the_culprit);
    RUN(kaggle_submission_file);
    RUN(colour_augmentation_moves_planes_together);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp_root);
    if (!getenv("KEEP_TMP") && system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmp_root);
    return test_summary();
}
