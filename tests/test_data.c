/* IDX reader, dataset lookup and loading, validation split. */
#include "harness.h"
#include "data/catalog.h"
#include "data/dataset.h"
#include "data/idx.h"
#include "data/stats.h"
#include "core/error.h"
#include <fcntl.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

static char tmp_root[256];

static void make_tmp_root(void) {
    snprintf(tmp_root, sizeof tmp_root, "/tmp/cn-test-data-XXXXXX");
    if (!mkdtemp(tmp_root)) { perror("mkdtemp"); exit(2); }
}

static void remove_tree(const char *dir) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "chmod -R u+w '%s' 2>/dev/null; rm -rf '%s'", dir, dir);
    if (system(cmd) != 0) fprintf(stderr, "cleanup of %s failed\n", dir);
}

static void put32(uint8_t *p, uint32_t v) { p[0] = v >> 24; p[1] = v >> 16; p[2] = v >> 8; p[3] = v; }

/* Writes an IDX file: header for `ndims` dims, `len` data bytes, optional gzip. */
static void write_idx(const char *path, uint32_t magic, const uint32_t *dims, int ndims,
                      const uint8_t *data, size_t len, int gz) {
    uint8_t header[16];
    put32(header, magic);
    for (int d = 0; d < ndims; d++) put32(header + 4 + 4 * d, dims[d]);
    size_t hlen = 4 + 4 * (size_t)ndims;
    if (gz) {
        gzFile f = gzopen(path, "wb");
        gzwrite(f, header, (unsigned)hlen);
        if (len) gzwrite(f, data, (unsigned)len);
        gzclose(f);
    } else {
        FILE *f = fopen(path, "wb");
        fwrite(header, 1, hlen, f);
        if (len) fwrite(data, 1, len, f);
        fclose(f);
    }
}

static void path_in(char *out, size_t size, const char *dir, const char *name) { snprintf(out, size, "%s/%s", dir, name); }

/* A small synthetic dataset: n images of r x c, pixel = (i*7 + j) & 255, label = i % classes. */
static void write_dataset(const char *dir, int n_train, int n_test, int r, int c, int classes, int gz) {
    mkdir(dir, 0755);
    for (int s = 0; s < 2; s++) {
        int n = s == 0 ? n_train : n_test;
        uint8_t *img = malloc((size_t)n * r * c), *lab = malloc((size_t)n);
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < r * c; j++) img[(size_t)i * r * c + j] = (uint8_t)((i * 7 + j) & 255);
            lab[i] = (uint8_t)(i % classes);
        }
        char p[512], name[64];
        uint32_t dims3[3] = {(uint32_t)n, (uint32_t)r, (uint32_t)c}, dims1[1] = {(uint32_t)n};
        snprintf(name, sizeof name, "%s%s", cn_dataset_file_names[2 * s], gz ? ".gz" : "");
        path_in(p, sizeof p, dir, name);
        write_idx(p, CN_IDX_MAGIC_IMAGES, dims3, 3, img, (size_t)n * r * c, gz);
        snprintf(name, sizeof name, "%s%s", cn_dataset_file_names[2 * s + 1], gz ? ".gz" : "");
        path_in(p, sizeof p, dir, name);
        write_idx(p, CN_IDX_MAGIC_LABELS, dims1, 1, lab, (size_t)n, gz);
        free(img);
        free(lab);
    }
}

TEST(idx_reads_raw_and_gzip) {
    uint8_t data[2 * 3 * 4];
    for (int i = 0; i < 24; i++) data[i] = (uint8_t)(i * 10);
    uint32_t dims[3] = {2, 3, 4};
    for (int gz = 0; gz < 2; gz++) {
        char p[512];
        snprintf(p, sizeof p, "%s/img%d", tmp_root, gz);
        write_idx(p, CN_IDX_MAGIC_IMAGES, dims, 3, data, sizeof data, gz);
        cn_idx idx;
        cn_status st = cn_idx_read_images(p, &idx);
        CHECK_MSG(st == CN_OK, "%s", cn_last_error());
        CHECK(idx.count == 2 && idx.rows == 3 && idx.cols == 4);
        CHECK(idx.data && memcmp(idx.data, data, sizeof data) == 0);
        cn_idx_free(&idx);
    }
}

TEST(idx_rejects_wrong_magic) {
    uint8_t data[4] = {1, 2, 3, 4};
    uint32_t dims[3] = {1, 2, 2};
    char p[512];
    snprintf(p, sizeof p, "%s/magic", tmp_root);
    write_idx(p, CN_IDX_MAGIC_IMAGES, dims, 3, data, 4, 0);
    cn_idx idx;
    CHECK(cn_idx_read_labels(p, &idx) == CN_ERR_FORMAT);
    CHECK_MSG(strstr(cn_last_error(), "magic 0x00000803, expected 0x00000801") != NULL, "%s", cn_last_error());
    CHECK(strstr(cn_last_error(), "this is an image file") != NULL);
    CHECK(strstr(cn_last_error(), p) != NULL);
    CHECK(idx.data == NULL);
    write_idx(p, 0x12345678u, dims, 3, data, 4, 1);
    CHECK(cn_idx_read_images(p, &idx) == CN_ERR_FORMAT);
    CHECK_MSG(strstr(cn_last_error(), "offset 0: magic 0x12345678") != NULL, "%s", cn_last_error());
}

TEST(idx_rejects_truncated_and_trailing_data) {
    uint8_t data[3 * 5 * 5 + 7];
    memset(data, 9, sizeof data);
    uint32_t dims[3] = {3, 5, 5};
    for (int gz = 0; gz < 2; gz++) {
        char p[512];
        snprintf(p, sizeof p, "%s/short%d", tmp_root, gz);
        write_idx(p, CN_IDX_MAGIC_IMAGES, dims, 3, data, 3 * 25 - 10, gz);
        cn_idx idx;
        CHECK(cn_idx_read_images(p, &idx) == CN_ERR_FORMAT);
        CHECK_MSG(strstr(cn_last_error(), "truncated at offset 81") != NULL, "%s", cn_last_error());
        CHECK_MSG(strstr(cn_last_error(), "found 65 data bytes, expected 75") != NULL, "%s", cn_last_error());
        write_idx(p, CN_IDX_MAGIC_IMAGES, dims, 3, data, 3 * 25 + 7, gz);
        CHECK(cn_idx_read_images(p, &idx) == CN_ERR_FORMAT);
        CHECK_MSG(strstr(cn_last_error(), "7 bytes of trailing data at offset 91") != NULL, "%s", cn_last_error());
        /* Header cut short. */
        write_idx(p, CN_IDX_MAGIC_IMAGES, dims, 1, NULL, 0, gz);
        CHECK(cn_idx_read_images(p, &idx) == CN_ERR_FORMAT);
        CHECK_MSG(strstr(cn_last_error(), "truncated header: found 8 bytes") != NULL, "%s", cn_last_error());
    }
}

TEST(idx_rejects_truncated_gzip_stream) {
    enum { N = 50, S = 28 };
    static uint8_t data[N * S * S];
    for (size_t i = 0; i < sizeof data; i++) data[i] = (uint8_t)((i * 2654435761u) >> 13);
    uint32_t dims[3] = {N, S, S};
    char p[512];
    snprintf(p, sizeof p, "%s/cut.gz", tmp_root);
    write_idx(p, CN_IDX_MAGIC_IMAGES, dims, 3, data, sizeof data, 1);
    struct stat st;
    stat(p, &st);
    CHECK(truncate(p, st.st_size / 2) == 0);
    cn_idx idx;
    CHECK(cn_idx_read_images(p, &idx) == CN_ERR_FORMAT);
    CHECK_MSG(strstr(cn_last_error(), "truncated") != NULL, "%s", cn_last_error());
    CHECK(idx.data == NULL);
}

TEST(idx_rejects_absurd_dimensions) {
    char p[512];
    snprintf(p, sizeof p, "%s/dims", tmp_root);
    uint8_t data[16] = {0};
    cn_idx idx;
    uint32_t wide[3] = {1, 28, 2000};
    write_idx(p, CN_IDX_MAGIC_IMAGES, wide, 3, data, sizeof data, 0);
    CHECK(cn_idx_read_images(p, &idx) == CN_ERR_FORMAT);
    CHECK_MSG(strstr(cn_last_error(), "offset 12: cols 2000, expected 1..1024") != NULL, "%s", cn_last_error());
    uint32_t zero_rows[3] = {1, 0, 28};
    write_idx(p, CN_IDX_MAGIC_IMAGES, zero_rows, 3, data, sizeof data, 0);
    CHECK(cn_idx_read_images(p, &idx) == CN_ERR_FORMAT);
    CHECK_MSG(strstr(cn_last_error(), "offset 8: rows 0") != NULL, "%s", cn_last_error());
    uint32_t many[3] = {20000000, 28, 28};
    write_idx(p, CN_IDX_MAGIC_IMAGES, many, 3, data, sizeof data, 0);
    CHECK(cn_idx_read_images(p, &idx) == CN_ERR_FORMAT);
    CHECK_MSG(strstr(cn_last_error(), "offset 4: item count 20000000, expected at most 10000000") != NULL, "%s",
              cn_last_error());
    uint32_t big[3] = {10000000, 1024, 1024}; /* 10 TB: over the allocation cap, refused before reading */
    write_idx(p, CN_IDX_MAGIC_IMAGES, big, 3, data, sizeof data, 0);
    CHECK(cn_idx_read_images(p, &idx) == CN_ERR_FORMAT);
    CHECK_MSG(strstr(cn_last_error(), "exceeds") != NULL, "%s", cn_last_error());
    CHECK(cn_idx_read_images("/nonexistent/file", &idx) == CN_ERR_IO);
    CHECK_MSG(strstr(cn_last_error(), "/nonexistent/file: cannot open") != NULL, "%s", cn_last_error());
}

TEST(split_checks_counts_and_labels) {
    char dir[512], img[600], lab[600];
    snprintf(dir, sizeof dir, "%s/split", tmp_root);
    mkdir(dir, 0755);
    path_in(img, sizeof img, dir, "i");
    path_in(lab, sizeof lab, dir, "l");
    uint8_t pixels[4 * 4] = {0}, labels[4] = {0, 1, 9, 3};
    uint32_t d3[3] = {4, 2, 2}, d1[1] = {4}, d1short[1] = {3};
    write_idx(img, CN_IDX_MAGIC_IMAGES, d3, 3, pixels, 16, 0);
    write_idx(lab, CN_IDX_MAGIC_LABELS, d1short, 1, labels, 3, 1);
    cn_split s;
    CHECK(cn_split_load(img, lab, 10, &s) == CN_ERR_FORMAT);
    CHECK_MSG(strstr(cn_last_error(), "3 labels, expected 4") != NULL, "%s", cn_last_error());
    write_idx(lab, CN_IDX_MAGIC_LABELS, d1, 1, labels, 4, 0);
    CHECK(cn_split_load(img, lab, 9, &s) == CN_ERR_FORMAT);
    CHECK_MSG(strstr(cn_last_error(), "offset 10: label 9, expected 0..8") != NULL, "%s", cn_last_error());
    CHECK(s.images == NULL && s.labels == NULL);
    CHECK(cn_split_load(img, lab, 10, &s) == CN_OK);
    CHECK(s.count == 4 && s.rows == 2 && s.cols == 2 && s.labels[2] == 9);
    cn_split_free(&s);
}

/* Patches `len` bytes at `offset` of an existing file. */
static void patch_file(const char *path, long offset, const void *bytes, size_t len) {
    FILE *f = fopen(path, "r+b");
    CHECK(f != NULL);
    if (!f) return;
    CHECK(fseek(f, offset, SEEK_SET) == 0 && fwrite(bytes, 1, len, f) == len);
    fclose(f);
}

TEST(gzip_split_is_cached_beside_the_data) {
    char dir[512], img[600], lab[600], cache[700];
    snprintf(dir, sizeof dir, "%s/gzcache", tmp_root);
    mkdir(dir, 0755);
    path_in(img, sizeof img, dir, "images.gz");
    path_in(lab, sizeof lab, dir, "labels.gz");
    snprintf(cache, sizeof cache, "%s/.convnet-cache-images.gz", dir);
    uint8_t pixels[4 * 4], labels[4] = {0, 1, 9, 3};
    for (int i = 0; i < 16; i++) pixels[i] = (uint8_t)(i * 13);
    uint32_t d3[3] = {4, 2, 2}, d1[1] = {4};
    write_idx(img, CN_IDX_MAGIC_IMAGES, d3, 3, pixels, 16, 1);
    write_idx(lab, CN_IDX_MAGIC_LABELS, d1, 1, labels, 4, 1);
    cn_split s;
    CHECK(cn_split_load(img, lab, 10, &s) == CN_OK);
    CHECK(s.count == 4 && s.channels == 1 && !memcmp(s.images, pixels, 16) && s.labels[2] == 9);
    cn_split_free(&s);
    struct stat sb;
    CHECK_MSG(stat(cache, &sb) == 0 && sb.st_size == 36 + 4 * 2 + 16, "%s", cache);
    /* a second load reads the cache: a pixel changed in it shows */
    uint8_t marked = 200;
    patch_file(cache, 36 + 8 + 5, &marked, 1);
    CHECK(cn_split_load(img, lab, 10, &s) == CN_OK);
    CHECK(s.count == 4 && s.images[5] == 200 && s.images[4] == pixels[4] && s.labels[3] == 3);
    cn_split_free(&s);
    /* a label outside the classes in the cache is a miss: the files are read again */
    uint8_t bad_label[2] = {77, 0};
    patch_file(cache, 36, bad_label, 2);
    CHECK(cn_split_load(img, lab, 10, &s) == CN_OK);
    CHECK(s.labels[0] == 0 && !memcmp(s.images, pixels, 16));
    cn_split_free(&s);
    /* new images (same sizes, same second) change the key: their pixels are read */
    for (int i = 0; i < 16; i++) pixels[i] = (uint8_t)(255 - i);
    write_idx(img, CN_IDX_MAGIC_IMAGES, d3, 3, pixels, 16, 1);
    CHECK(cn_split_load(img, lab, 10, &s) == CN_OK);
    CHECK(!memcmp(s.images, pixels, 16));
    cn_split_free(&s);
    /* a truncated cache is a miss, never an error */
    CHECK(truncate(cache, 40) == 0);
    CHECK(cn_split_load(img, lab, 10, &s) == CN_OK);
    CHECK(!memcmp(s.images, pixels, 16));
    cn_split_free(&s);
    /* raw files are never cached */
    char raw_img[600], raw_cache[700];
    path_in(raw_img, sizeof raw_img, dir, "raw-images");
    snprintf(raw_cache, sizeof raw_cache, "%s/.convnet-cache-raw-images", dir);
    write_idx(raw_img, CN_IDX_MAGIC_IMAGES, d3, 3, pixels, 16, 0);
    CHECK(cn_split_load(raw_img, lab, 10, &s) == CN_OK);
    cn_split_free(&s);
    CHECK(stat(raw_cache, &sb) != 0);
}

static const char *mnist_dir(void) {
    static char dir[4096];
    if (realpath("../shared/data/mnist", dir)) return dir;
    return "/work/shared/data/mnist";
}

TEST(loads_real_mnist) {
    cn_dataset ds;
    cn_status st = cn_dataset_load("mnist", mnist_dir(), 0, &ds);
    CHECK_MSG(st == CN_OK, "%s", cn_last_error());
    if (st != CN_OK) return;
    CHECK(ds.train.count == 60000 && ds.test.count == 10000);
    CHECK(ds.train.rows == 28 && ds.train.cols == 28 && ds.test.rows == 28);
    CHECK(ds.num_classes == 10 && !strcmp(ds.class_names[7], "7") && !strcmp(ds.name, "mnist"));
    CHECK(ds.mean[0] == 0.1307f && ds.std[0] == 0.3081f);
    CHECK(!strcmp(ds.dir, mnist_dir()));
    /* Label histograms from the dataset's README. */
    const int train_counts[10] = {5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949};
    const int test_counts[10] = {980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009};
    int tr[10] = {0}, te[10] = {0};
    for (int i = 0; i < ds.train.count; i++) tr[ds.train.labels[i]]++;
    for (int i = 0; i < ds.test.count; i++) te[ds.test.labels[i]]++;
    CHECK(memcmp(tr, train_counts, sizeof tr) == 0);
    CHECK(memcmp(te, test_counts, sizeof te) == 0);
    CHECK(ds.train.labels[0] == 5 && ds.test.labels[0] == 7); /* the famous first digits */
    double mean, std;
    cn_split_pixel_stats(&ds.train, &mean, &std);
    CHECK_NEAR(mean, 0.1307, 1e-4);
    CHECK_NEAR(std, 0.3081, 1e-4);
    cn_dataset_free(&ds);
}

TEST(search_order_and_environment) {
    char root[512], sub[600], cwd[4096];
    snprintf(root, sizeof root, "%s/root", tmp_root);
    mkdir(root, 0755);
    /* $CONVNET_DATA itself holding MNIST's files. */
    write_dataset(root, 20, 10, 28, 28, 10, 1);
    setenv("CONVNET_DATA", root, 1);
    cn_dataset ds;
    CHECK_MSG(cn_dataset_load("mnist", NULL, 0, &ds) == CN_OK, "%s", cn_last_error());
    CHECK(!strcmp(ds.dir, root) && ds.train.count == 20);
    cn_dataset_free(&ds);
    /* $CONVNET_DATA/<name> comes first. */
    snprintf(sub, sizeof sub, "%s/mnist", root);
    write_dataset(sub, 30, 10, 28, 28, 10, 0);
    CHECK_MSG(cn_dataset_load("mnist", NULL, 0, &ds) == CN_OK, "%s", cn_last_error());
    CHECK(!strcmp(ds.dir, sub) && ds.train.count == 30);
    cn_dataset_free(&ds);
    /* kmnist is not found in CONVNET_DATA itself; ./data/kmnist is next. */
    if (!getcwd(cwd, sizeof cwd)) cwd[0] = 0;
    CHECK(chdir(tmp_root) == 0);
    CHECK(cn_dataset_load("kmnist", NULL, 0, &ds) == CN_ERR_IO);
    const char *msg = cn_last_error();
    char expect[700];
    snprintf(expect, sizeof expect, "in %s/kmnist or data/kmnist;", root);
    CHECK_MSG(strstr(msg, expect) != NULL, "%s", msg);
    CHECK(strstr(msg, "train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz and "
                      "t10k-labels-idx1-ubyte.gz") != NULL);
    CHECK(strstr(msg, "convnet download kmnist") != NULL && strstr(msg, "CONVNET_MIRROR") != NULL);
    CHECK(strstr(msg, "http://codh.rois.ac.jp/kmnist/dataset/kmnist/") != NULL);
    CHECK(strchr(msg, '\n') == NULL);
    mkdir("data", 0755);
    write_dataset("data/kmnist", 12, 6, 28, 28, 10, 1);
    CHECK_MSG(cn_dataset_load("kmnist", NULL, 0, &ds) == CN_OK, "%s", cn_last_error());
    CHECK(!strcmp(ds.dir, "data/kmnist") && ds.train.count == 12 && !strcmp(ds.class_names[9], "wo"));
    CHECK(ds.mean[0] == 0.1918f && ds.std[0] == 0.3483f);
    cn_dataset_free(&ds);
    /* A partial set is reported. */
    char partial[700];
    snprintf(partial, sizeof partial, "%s/kmnist/t10k-labels-idx1-ubyte", root);
    mkdir(strcat(strcpy(expect, root), "/kmnist"), 0755);
    FILE *f = fopen(partial, "wb");
    if (f) fclose(f);
    CHECK(cn_dataset_load("kmnist", expect, 0, &ds) == CN_ERR_IO);
    CHECK_MSG(strstr(cn_last_error(), "has only t10k-labels-idx1-ubyte)") != NULL, "%s", cn_last_error());
    CHECK(chdir(cwd) == 0);
    unsetenv("CONVNET_DATA");
    CHECK(cn_dataset_load("cifar", NULL, 0, &ds) == CN_ERR_ARG);
    CHECK(strstr(cn_last_error(), "mnist, fashion-mnist, kmnist, idx") != NULL);
}

TEST(torchvision_layout_is_found) {
    char root[512], raw[600];
    snprintf(root, sizeof root, "%s/tv", tmp_root);
    snprintf(raw, sizeof raw, "%s/FashionMNIST", root);
    mkdir(root, 0755);
    mkdir(raw, 0755);
    strcat(raw, "/raw");
    write_dataset(raw, 8, 4, 28, 28, 10, 0);
    cn_dataset ds;
    CHECK_MSG(cn_dataset_load("fashion-mnist", root, 0, &ds) == CN_OK, "%s", cn_last_error());
    CHECK(!strcmp(ds.dir, raw) && !strcmp(ds.name, "fashion-mnist"));
    CHECK(!strcmp(ds.class_names[9], "Ankle boot") && ds.mean[0] == 0.2860f && ds.std[0] == 0.3530f);
    cn_dataset_free(&ds);
}

TEST(loads_debian_fashion_mnist) {
    if (access("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz", R_OK) != 0) return;
    const char *saved = getenv("CONVNET_DATA");
    setenv("CONVNET_DATA", "/nonexistent", 1);
    char cwd[4096];
    if (!getcwd(cwd, sizeof cwd)) cwd[0] = 0;
    CHECK(chdir(tmp_root) == 0);
    cn_dataset ds;
    CHECK_MSG(cn_dataset_load("fashion", NULL, 0, &ds) == CN_OK, "%s", cn_last_error());
    CHECK(!strcmp(ds.dir, "/usr/share/datasets/fashion-mnist"));
    CHECK(ds.train.count == 60000 && ds.test.count == 10000 && ds.num_classes == 10);
    double mean, std;
    cn_split_pixel_stats(&ds.train, &mean, &std);
    CHECK_NEAR(mean, 0.2860, 1e-3);
    CHECK_NEAR(std, 0.3530, 1e-3);
    cn_dataset_free(&ds);
    CHECK(chdir(cwd) == 0);
    if (saved) setenv("CONVNET_DATA", saved, 1); else unsetenv("CONVNET_DATA");
}

TEST(idx_dataset_classes_and_cached_stats) {
    char dir[512], cache[600];
    snprintf(dir, sizeof dir, "%s/custom", tmp_root);
    write_dataset(dir, 40, 10, 8, 6, 5, 0);
    snprintf(cache, sizeof cache, "%s/.convnet-stats", dir);
    cn_dataset ds;
    CHECK_MSG(cn_dataset_load("idx", dir, 0, &ds) == CN_OK, "%s", cn_last_error());
    CHECK(ds.num_classes == 5 && !strcmp(ds.class_names[4], "4") && ds.train.rows == 8 && ds.train.cols == 6);
    double mean, std;
    cn_split_pixel_stats(&ds.train, &mean, &std);
    CHECK_NEAR(ds.mean[0], mean, 1e-6);
    CHECK_NEAR(ds.std[0], std, 1e-6);
    cn_dataset_free(&ds);
    CHECK(access(cache, R_OK) == 0);
    /* The cache is used: doctor it and load again. */
    FILE *f = fopen(cache, "r");
    char text[1024] = "";
    size_t n = f ? fread(text, 1, sizeof text - 1, f) : 0;
    text[n] = 0;
    if (f) fclose(f);
    char *m = strstr(text, "mean ");
    CHECK(m != NULL);
    if (m) {
        memcpy(m, "mean 0.3", 8);
        f = fopen(cache, "w");
        fputs(text, f);
        fclose(f);
        CHECK(cn_dataset_load("idx", dir, 0, &ds) == CN_OK);
        CHECK(ds.mean[0] < 0.4f && ds.mean[0] > 0.3f);
        cn_dataset_free(&ds);
        /* The images rewritten within the same second (same size, an mtime nanoseconds
         * apart): the cache is of another file, so the statistics are computed again. */
        char images[600];
        struct stat sb;
        snprintf(images, sizeof images, "%s/%s", dir, cn_dataset_file_names[0]);
        CHECK(stat(images, &sb) == 0);
        struct timespec times[2] = { sb.st_atim, sb.st_mtim };
        times[1].tv_nsec = (times[1].tv_nsec + 1) % 1000000000L;
        CHECK(utimensat(AT_FDCWD, images, times, 0) == 0);
        CHECK(cn_dataset_load("idx", dir, 0, &ds) == CN_OK);
        CHECK_NEAR(ds.mean[0], mean, 1e-6);
        cn_dataset_free(&ds);
    }
    /* A read-only directory: statistics are still computed, nothing is written. */
    remove(cache);
    chmod(dir, 0555);
    CHECK(cn_dataset_load("idx", dir, 0, &ds) == CN_OK);
    CHECK_NEAR(ds.mean[0], mean, 1e-6);
    if (geteuid() != 0) CHECK(access(cache, F_OK) != 0);
    cn_dataset_free(&ds);
    chmod(dir, 0755);
}

TEST(idx_dataset_limits) {
    char dir[512];
    snprintf(dir, sizeof dir, "%s/toomany", tmp_root);
    write_dataset(dir, 70, 5, 4, 4, 70, 1);
    static cn_dataset ds;
    /* 70 classes (labels 0..69): beyond the old limit of 64, within CN_MAX_CLASSES. */
    CHECK_MSG(cn_dataset_load("idx", dir, 0, &ds) == CN_OK, "%s", cn_last_error());
    CHECK(ds.num_classes == 70 && !strcmp(ds.class_names[69], "69"));
    cn_dataset_free(&ds);
    /* Train and test image sizes must agree. */
    snprintf(dir, sizeof dir, "%s/mismatch", tmp_root);
    write_dataset(dir, 10, 5, 4, 4, 3, 0);
    char p[600];
    path_in(p, sizeof p, dir, "t10k-images-idx3-ubyte");
    uint8_t px[5 * 16] = {0};
    uint32_t dims[3] = {5, 2, 8};
    write_idx(p, CN_IDX_MAGIC_IMAGES, dims, 3, px, sizeof px, 0);
    CHECK(cn_dataset_load("idx", dir, 0, &ds) == CN_ERR_FORMAT);
    CHECK_MSG(strstr(cn_last_error(), "images are 2x8, expected 4x4") != NULL, "%s", cn_last_error());
    CHECK(ds.train.images == NULL);
    /* A named dataset rejects label 10. */
    snprintf(dir, sizeof dir, "%s/eleven", tmp_root);
    write_dataset(dir, 12, 5, 28, 28, 11, 0);
    CHECK(cn_dataset_load("mnist", dir, 0, &ds) == CN_ERR_FORMAT);
    CHECK_MSG(strstr(cn_last_error(), "offset 18: label 10, expected 0..9") != NULL, "%s", cn_last_error());
}

TEST(validation_split_is_seeded_and_complete) {
    cn_dataset a, b;
    char dir[512];
    snprintf(dir, sizeof dir, "%s/val", tmp_root);
    write_dataset(dir, 100, 10, 3, 3, 10, 0);
    CHECK(cn_dataset_load("idx", dir, 0, &a) == CN_OK);
    CHECK(cn_dataset_load("idx", dir, 0, &b) == CN_OK);
    cn_split va, vb;
    CHECK(cn_dataset_split_validation(&a, 0, 1, &va) == CN_ERR_ARG);
    CHECK(cn_dataset_split_validation(&a, 100, 1, &va) == CN_ERR_ARG);
    CHECK(cn_dataset_split_validation(&a, 25, 7, &va) == CN_OK);
    CHECK(cn_dataset_split_validation(&b, 25, 7, &vb) == CN_OK);
    CHECK(a.train.count == 75 && va.count == 25 && va.rows == 3 && va.cols == 3);
    CHECK(memcmp(va.images, vb.images, 25 * 9) == 0 && memcmp(va.labels, vb.labels, 25) == 0);
    /* Image i has first pixel 7i mod 256, and 183 = 1/7 mod 256: recover the indices;
     * each appears once, in order. */
    int seen[100] = {0}, last = -1, ordered = 1;
    for (int i = 0; i < va.count; i++) {
        int idx = (va.images[i * 9] * 183) & 255;
        seen[idx]++;
        if (idx <= last) ordered = 0;
        last = idx;
        CHECK(va.labels[i] == idx % 10);
    }
    last = -1;
    for (int i = 0; i < a.train.count; i++) {
        int idx = (a.train.images[i * 9] * 183) & 255;
        seen[idx]++;
        if (idx <= last) ordered = 0;
        last = idx;
        CHECK(a.train.labels[i] == idx % 10);
    }
    int all_once = 1;
    for (int i = 0; i < 100; i++) if (seen[i] != 1) all_once = 0;
    CHECK(all_once && ordered);
    cn_split_free(&vb);
    cn_dataset_free(&b);
    CHECK(cn_dataset_load("idx", dir, 0, &b) == CN_OK);
    CHECK(cn_dataset_split_validation(&b, 25, 8, &vb) == CN_OK);
    CHECK(memcmp(va.images, vb.images, 25 * 9) != 0); /* another seed, another choice */
    cn_split_free(&va);
    cn_split_free(&vb);
    cn_dataset_free(&a);
    cn_dataset_free(&b);
}

int main(void) {
    make_tmp_root();
    RUN(idx_reads_raw_and_gzip);
    RUN(idx_rejects_wrong_magic);
    RUN(idx_rejects_truncated_and_trailing_data);
    RUN(idx_rejects_truncated_gzip_stream);
    RUN(idx_rejects_absurd_dimensions);
    RUN(split_checks_counts_and_labels);
    RUN(gzip_split_is_cached_beside_the_data);
    RUN(loads_real_mnist);
    RUN(search_order_and_environment);
    RUN(torchvision_layout_is_found);
    RUN(loads_debian_fashion_mnist);
    RUN(idx_dataset_classes_and_cached_stats);
    RUN(idx_dataset_limits);
    RUN(validation_split_is_seeded_and_complete);
    remove_tree(tmp_root);
    return test_summary();
}
