/* CIFAR-10's binary batches. See cifar.h. */
#include "data/cifar.h"
#include "data/download.h"
#include "io/image.h"
#include "core/error.h"
#include "core/mem.h"
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PATH_CAP 4096
#define SUBDIR "cifar-10-batches-bin"
#define TARBALL "cifar-10-binary.tar.gz"
#define TARBALL_MD5 "c32a1d4ab5d03f1284b67883e8d87530"
#define MAX_RECORDS 1000000

static const char *const members[] = {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin",
                                      "data_batch_5.bin", "test_batch.bin", "batches.meta.txt"};
static const char *const class_names[10] = {"airplane", "automobile", "bird", "cat", "deer",
                                            "dog", "frog", "horse", "ship", "truck"};
static const float mean[3] = {0.4914f, 0.4822f, 0.4465f}, stdev[3] = {0.2470f, 0.2435f, 0.2616f};

cn_status cn_cifar_parse_batch(const void *data, size_t size, const char *name, cn_split *out) {
    if (!name) name = "<memory>";
    if (size == 0 || size % CN_CIFAR_RECORD)
        return cn_fail(CN_ERR_FORMAT, "%s: %zu bytes, expected a whole number (at least 1) of %d-byte records "
                       "(label + 3x32x32 pixels); record %zu is cut off", name, size, CN_CIFAR_RECORD,
                       size / CN_CIFAR_RECORD + 1);
    size_t n = size / CN_CIFAR_RECORD, total = (size_t)out->count + n;
    if (total > MAX_RECORDS) return cn_fail(CN_ERR_UNSUPPORTED, "%s: more than %d records in all", name, MAX_RECORDS);
    const uint8_t *p = data;
    for (size_t i = 0; i < n; i++)
        if (p[i * CN_CIFAR_RECORD] > 9)
            return cn_fail(CN_ERR_FORMAT, "%s: record %zu (byte %zu): label %d, expected 0..9", name, i + 1,
                           i * CN_CIFAR_RECORD, p[i * CN_CIFAR_RECORD]);
    uint8_t *images = realloc(out->images, total * (CN_CIFAR_RECORD - 1));
    if (images) out->images = images;
    uint16_t *labels = realloc(out->labels, total * sizeof *labels);
    if (labels) out->labels = labels;
    if (!images || !labels) return CN_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        out->labels[(size_t)out->count + i] = p[i * CN_CIFAR_RECORD];
        memcpy(out->images + ((size_t)out->count + i) * (CN_CIFAR_RECORD - 1), p + i * CN_CIFAR_RECORD + 1,
               CN_CIFAR_RECORD - 1);
    }
    out->count = (int)total;
    out->channels = 3;
    out->rows = out->cols = 32;
    return CN_OK;
}

static cn_status read_batch(const char *path, cn_split *out) {
    uint8_t *data;
    size_t size;
    /* cn_image_read_file: a regular file, size-capped (a batch is 30 MB). */
    cn_status st = cn_image_read_file(path, &data, &size);
    if (st) return st;
    st = cn_cifar_parse_batch(data, size, path, out);
    free(data);
    return st;
}

static int is_file(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* The folder holding all six batches (DIR/cifar-10-batches-bin or DIR), or 0. */
static int locate(const char *dir, char *where) {
    char path[PATH_CAP + 64];
    for (int t = 0; t < 2; t++) {
        if (snprintf(where, PATH_CAP, t == 0 ? "%s/" SUBDIR : "%s", dir) >= PATH_CAP) return 0;
        int all = 1;
        for (int i = 0; i < 6 && all; i++) {
            snprintf(path, sizeof path, "%s/%s", where, members[i]);
            all = is_file(path);
        }
        if (all) return 1;
    }
    return 0;
}

/* Writes the archive's current entry to path atomically. */
static cn_status extract_entry(struct archive *a, const char *path, const char *tarball) {
    char tmp[PATH_CAP + 256];
    snprintf(tmp, sizeof tmp, "%s.part.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) return cn_fail(CN_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
    char buf[65536];
    la_ssize_t n;
    int ok = 1;
    while (ok && (n = archive_read_data(a, buf, sizeof buf)) > 0) ok = fwrite(buf, 1, (size_t)n, f) == (size_t)n;
    if (n < 0) {
        fclose(f);
        remove(tmp);
        return cn_fail(CN_ERR_FORMAT, "%s: cannot unpack %s: %s", tarball, path, archive_error_string(a));
    }
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        remove(tmp);
        return cn_fail(CN_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
    }
    return CN_OK;
}

cn_status cn_cifar10_unpack(const char *dir) {
    char tarball[PATH_CAP + 64], out_dir[PATH_CAP + 64], path[PATH_CAP + 128];
    snprintf(tarball, sizeof tarball, "%s/" TARBALL, dir);
    snprintf(out_dir, sizeof out_dir, "%s/" SUBDIR, dir);
    if (mkdir(out_dir, 0777) != 0 && errno != EEXIST) return cn_fail(CN_ERR_IO, "%s: cannot create: %s", out_dir, strerror(errno));
    struct archive *a = archive_read_new();
    if (!a) return CN_ERR_NOMEM;
    archive_read_support_filter_gzip(a);
    archive_read_support_format_tar(a);
    cn_status st = CN_OK;
    if (archive_read_open_filename(a, tarball, 65536) != ARCHIVE_OK)
        st = cn_fail(CN_ERR_FORMAT, "%s: cannot open: %s", tarball, archive_error_string(a));
    int found = 0;
    struct archive_entry *e;
    int r;
    while (st == CN_OK && (r = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
        const char *name = archive_entry_pathname(e);
        const char *base = name ? strrchr(name, '/') : NULL;
        base = base ? base + 1 : name;
        if (!base || archive_entry_filetype(e) != AE_IFREG) continue;
        for (size_t i = 0; i < sizeof members / sizeof members[0]; i++)
            if (!strcmp(base, members[i])) {
                snprintf(path, sizeof path, "%s/%s", out_dir, members[i]);
                st = extract_entry(a, path, tarball);
                found++;
                break;
            }
    }
    if (st == CN_OK && r != ARCHIVE_EOF)
        st = cn_fail(CN_ERR_FORMAT, "%s: damaged archive: %s", tarball, archive_error_string(a));
    if (st == CN_OK && found < 6)
        st = cn_fail(CN_ERR_FORMAT, "%s: has %d of the CIFAR-10 batch files; expected data_batch_1..5.bin and test_batch.bin",
                     tarball, found);
    archive_read_free(a);
    return st;
}

static cn_status target_dir(const char *dir, char *buf) {
    if (dir) {
        if (snprintf(buf, PATH_CAP, "%s", dir) >= PATH_CAP) return cn_fail(CN_ERR_ARG, "%s: path too long", dir);
        return CN_OK;
    }
    return cn_dataset_default_dir("cifar10", buf, PATH_CAP);
}

cn_status cn_cifar10_download(const char *dir, int show_progress) {
    char target[PATH_CAP];
    cn_status st = target_dir(dir, target);
    if (st) return st;
    static const char *const mirrors[] = {"https://www.cs.toronto.edu/~kriz/", NULL};
    const char *files[1] = {TARBALL}, *md5s[1] = {TARBALL_MD5};
    char by_hand[PATH_CAP + 200];
    snprintf(by_hand, sizeof by_hand, "copy " TARBALL " into %s by hand, or point CONVNET_MIRROR at a copy", target);
    st = cn_download_files(files, md5s, 1, mirrors, target, show_progress, by_hand);
    return st ? st : cn_cifar10_unpack(target);
}

/* Class names from batches.meta.txt when it has ten usable lines, else the published ones. */
static void read_class_names(const char *where, cn_dataset *ds) {
    for (int k = 0; k < 10; k++) snprintf(ds->class_names[k], CN_CLASS_NAME_MAX, "%s", class_names[k]);
    char path[PATH_CAP + 64], line[128], names[10][CN_CLASS_NAME_MAX];
    snprintf(path, sizeof path, "%s/batches.meta.txt", where);
    FILE *f = fopen(path, "r");
    if (!f) return;
    int n = 0;
    while (n < 10 && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = '\0';
        size_t len = strlen(line);
        if (!len) continue;
        if (len >= CN_CLASS_NAME_MAX || strchr(line, ',')) break;
        memcpy(names[n++], line, len + 1);
    }
    fclose(f);
    if (n == 10) memcpy(ds->class_names, names, sizeof names);
}

cn_status cn_cifar10_load(const cn_data_options *o, const char *dir, cn_dataset *out) {
    char base[PATH_CAP], where[PATH_CAP], path[PATH_CAP + 64];
    cn_status st = target_dir(dir, base);
    if (st) return st;
    if (!locate(base, where)) {
        if (!o->allow_download)
            return cn_fail(CN_ERR_IO, "cifar10: dataset not found: expected data_batch_1..5.bin and test_batch.bin in "
                           "%s/" SUBDIR " or %s; get them with `convnet download --dataset cifar10`", base, base);
        if ((st = cn_cifar10_download(base, 1))) return st;
        if (!locate(base, where)) return cn_fail(CN_ERR_IO, "%s/" SUBDIR ": batches missing after unpacking", base);
    }
    snprintf(out->name, sizeof out->name, "cifar10");
    snprintf(out->dir, sizeof out->dir, "%s", where);
    for (int i = 0; i < 6 && st == CN_OK; i++) {
        snprintf(path, sizeof path, "%s/%s", where, members[i]);
        st = read_batch(path, i < 5 ? &out->train : &out->test);
    }
    if (st) return st;
    out->num_classes = 10;
    read_class_names(where, out);
    for (int c = 0; c < 3; c++) { out->mean[c] = mean[c]; out->std[c] = stdev[c]; }
    return CN_OK;
}
