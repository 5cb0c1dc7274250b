#include "data/dataset.h"
#include "data/catalog.h"
#include "data/cifar.h"
#include "data/csv.h"
#include "data/folder.h"
#include "data/download.h"
#include "data/idx.h"
#include "data/idx_cache.h"
#include "data/image_cache.h"
#include "data/stats.h"
#include "core/error.h"
#include "core/file_open.h"
#include "core/mem.h"
#include "core/rng.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#define PATH_CAP 4096
#define MAX_CANDIDATES 8

void cn_split_free(cn_split *split) {
    if (!split) return;
    free(split->images);
    free(split->labels);
    memset(split, 0, sizeof *split);
}

void cn_dataset_free(cn_dataset *ds) {
    if (!ds) return;
    cn_split_free(&ds->train);
    cn_split_free(&ds->test);
    cn_split_free(&ds->val);
}

static cn_status split_from_files(const char *images_path, const char *labels_path, int num_classes, cn_split *out) {
    memset(out, 0, sizeof *out);
    cn_idx images, labels;
    cn_status st = cn_idx_read_images(images_path, &images);
    if (st != CN_OK) return st;
    st = cn_idx_read_labels(labels_path, &labels);
    if (st != CN_OK) { cn_idx_free(&images); return st; }
    if (images.count != labels.count) {
        st = cn_fail(CN_ERR_FORMAT, "%s: offset 4: %d labels, expected %d to match the images of %s",
                     labels_path, labels.count, images.count, images_path);
        goto fail;
    }
    if (images.count == 0) {
        st = cn_fail(CN_ERR_FORMAT, "%s: offset 4: 0 images, expected at least one", images_path);
        goto fail;
    }
    if (num_classes > 0) {
        for (int i = 0; i < labels.count; i++) {
            if (labels.data[i] >= num_classes) {
                st = cn_fail(CN_ERR_FORMAT, "%s: offset %d: label %d, expected 0..%d",
                             labels_path, 8 + i, labels.data[i], num_classes - 1);
                goto fail;
            }
        }
    }
    if (!(out->labels = cn_calloc((size_t)labels.count, sizeof *out->labels))) { st = CN_ERR_NOMEM; goto fail; }
    for (int i = 0; i < labels.count; i++) out->labels[i] = labels.data[i];
    cn_idx_free(&labels);
    out->count = images.count;
    out->rows = images.rows;
    out->cols = images.cols;
    out->channels = 1;
    out->images = images.data;
    return CN_OK;
fail:
    cn_idx_free(&images);
    cn_idx_free(&labels);
    return st;
}

/* The files themselves, or the decoded split cached beside a gzip images file (idx_cache.h). */
cn_status cn_split_load(const char *images_path, const char *labels_path, int num_classes, cn_split *out) {
    uint64_t key;
    char cache[PATH_CAP];
    int cacheable = cn_idx_cache_key(images_path, labels_path, num_classes, &key, cache, sizeof cache);
    if (cacheable && cn_idx_cache_read(cache, key, num_classes, out)) return CN_OK;
    cn_status st = split_from_files(images_path, labels_path, num_classes, out);
    if (st == CN_OK && cacheable && out->rows <= CN_MAX_SIDE && out->cols <= CN_MAX_SIDE)
        cn_image_cache_write(cache, key, out, 0);
    return st;
}

/* 1 if path is a regular file, 0 if nothing is there, -1 (message set) if it
 * is something else: a device or FIFO would be read forever or block. */
static int is_file(const char *path) {
    struct stat st;
    if (stat(path, &st) != 0) return 0;
    return cn_check_regular(path, "an IDX file (raw or .gz)") == CN_OK ? 1 : -1;
}

/* Path of `base` (raw preferred) or `base`.gz inside dir; 0 if neither exists, -1 on error. */
static int find_file(const char *dir, const char *base, char *path) {
    int r = 0;
    if (snprintf(path, PATH_CAP, "%s/%s", dir, base) < PATH_CAP && (r = is_file(path))) return r;
    if (snprintf(path, PATH_CAP, "%s/%s.gz", dir, base) < PATH_CAP && (r = is_file(path))) return r;
    return 0;
}

/* Fills paths for the files of `wanted` (a bitmask) in dir; returns a bitmask
 * of those found, or -1 (message set) when one is not a regular file. */
static int find_all(const char *dir, unsigned wanted, char paths[CN_DATASET_FILES][PATH_CAP]) {
    int found = 0;
    for (int i = 0; i < CN_DATASET_FILES; i++) {
        if (!(wanted & (1u << i))) continue;
        int r = find_file(dir, cn_dataset_file_names[i], paths[i]);
        if (r < 0) return -1;
        if (r) found |= 1 << i;
    }
    return found;
}

cn_status cn_dataset_default_dir(const char *name, char *buf, size_t size) {
    const char *root = getenv("CONVNET_DATA");
    int n = root && *root ? snprintf(buf, size, "%s/%s", root, name) : snprintf(buf, size, "data/%s", name);
    if (n < 0 || (size_t)n >= size) return cn_fail(CN_ERR_ARG, "CONVNET_DATA: path too long (%d bytes)", n);
    return CN_OK;
}

typedef struct {
    char dirs[MAX_CANDIDATES][PATH_CAP];
    int count;
} candidates;

static void add_candidate(candidates *c, const char *a, const char *b) {
    if (c->count >= MAX_CANDIDATES || !a || !*a) return;
    int n = b ? snprintf(c->dirs[c->count], PATH_CAP, "%s/%s", a, b) : snprintf(c->dirs[c->count], PATH_CAP, "%s", a);
    if (n < 0 || n >= PATH_CAP) return;
    for (int i = 0; i < c->count; i++) if (!strcmp(c->dirs[i], c->dirs[c->count])) return;
    c->count++;
}

static void search_dirs(const char *name, const cn_dataset_info *info, const char *dir, candidates *c) {
    c->count = 0;
    if (dir) { add_candidate(c, dir, NULL); return; }
    const char *root = getenv("CONVNET_DATA");
    if (info) {
        add_candidate(c, root, name);
        if (!strcmp(name, "mnist")) add_candidate(c, root, NULL);
        add_candidate(c, "data", name);
        add_candidate(c, info->system_dir, NULL);
    } else {
        add_candidate(c, root, NULL);
        add_candidate(c, "data", NULL);
    }
}

/* Looks in each candidate (and its torchvision-style <Name>/raw subfolder).
 * Returns the index of the directory holding all files of `wanted`, -1 if
 * none does, -2 (message set) if one of them is not a regular file; `where`
 * receives that directory. `missing_note` describes partial finds. */
static int locate(const candidates *c, const cn_dataset_info *info, unsigned wanted, char paths[CN_DATASET_FILES][PATH_CAP],
                  char *where, char *missing_note, size_t note_size) {
    missing_note[0] = '\0';
    for (int i = 0; i < c->count; i++) {
        char sub[PATH_CAP];
        const char *tries[2] = {c->dirs[i], NULL};
        if (info && snprintf(sub, sizeof sub, "%s/%s/raw", c->dirs[i], info->torchvision_dir) < (int)sizeof sub)
            tries[1] = sub;
        for (int t = 0; t < 2 && tries[t]; t++) {
            int found = find_all(tries[t], wanted, paths);
            if (found < 0) return -2;
            if ((unsigned)found == wanted) {
                snprintf(where, PATH_CAP, "%s", tries[t]);
                return i;
            }
            if (found && !missing_note[0]) {
                size_t len = (size_t)snprintf(missing_note, note_size, " (%s has only", tries[t]);
                for (int f = 0; f < CN_DATASET_FILES && len < note_size; f++)
                    if (found & (1u << f))
                        len += (size_t)snprintf(missing_note + len, note_size - len, " %s", cn_dataset_file_names[f]);
                if (len < note_size) snprintf(missing_note + len, note_size - len, ")");
            }
        }
    }
    return -1;
}

static cn_status not_found(const char *name, const cn_dataset_info *info, const candidates *c, const char *note) {
    char dirs[1024];
    size_t len = 0;
    dirs[0] = '\0';
    for (int i = 0; i < c->count && len < sizeof dirs; i++)
        len += (size_t)snprintf(dirs + len, sizeof dirs - len, "%s%s", i == 0 ? "" : i + 1 == c->count ? " or " : ", ",
                                c->dirs[i]);
    if (!info)
        return cn_fail(CN_ERR_IO, "%s: no dataset found: expected train-images-idx3-ubyte, train-labels-idx1-ubyte, "
                       "t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte (each raw or .gz) in %s%s; "
                       "put the four IDX files there or pass --data DIR", name, dirs, note);
    return cn_fail(CN_ERR_IO, "%s: dataset not found: expected train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
                   "t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz (or unpacked) in %s%s; "
                   "get them with `convnet download %s` (CONVNET_MIRROR=<url prefix> picks a mirror, file:// works), "
                   "or copy them there by hand from %s",
                   name, dirs, note, info->name, info->mirrors[0]);
}

/* Which of the four files the parts need (CN_DATASET_TRAIN: 0 and 1, CN_DATASET_TEST: 2 and 3). */
static unsigned files_of(int parts) {
    return (parts & CN_DATASET_TRAIN ? 3u : 0u) | (parts & CN_DATASET_TEST ? 12u : 0u);
}

/* The MNIST family and "idx": four IDX files, or the two of the parts asked for. */
static cn_status load_idx_family(const char *name, const char *dir, int allow_download, int parts, cn_dataset *out) {
    unsigned wanted = files_of(parts);
    if (!wanted) return cn_fail(CN_ERR_ARG, "cn_dataset_load_parts: no parts requested");
    const cn_dataset_info *info = cn_dataset_info_find(name);
    const char *canonical = info ? info->name : "idx";
    if (dir && !*dir) dir = NULL;
    if (dir && strlen(dir) > PATH_CAP - 160)   /* the file names are appended: it would be cut and never found */
        return cn_fail(CN_ERR_ARG, "data directory '%.60s...' is %zu bytes long; expected at most %d", dir, strlen(dir),
                       PATH_CAP - 160);

    candidates c;
    search_dirs(canonical, info, dir, &c);
    char paths[CN_DATASET_FILES][PATH_CAP];
    char where[PATH_CAP], note[512];
    int hit = locate(&c, info, wanted, paths, where, note, sizeof note);
    if (hit == -2) return CN_ERR_IO;
    if (hit < 0 && info && allow_download) {
        char target[PATH_CAP];
        if (dir) snprintf(target, sizeof target, "%s", dir);
        else {
            cn_status st = cn_dataset_default_dir(canonical, target, sizeof target);
            if (st != CN_OK) return st;
        }
        cn_status st = cn_dataset_download_files(canonical, target, 1, wanted);
        if (st != CN_OK) return st;
        candidates only = {.count = 0};
        add_candidate(&only, target, NULL);
        hit = locate(&only, info, wanted, paths, where, note, sizeof note);
        if (hit == -2) return CN_ERR_IO;
    }
    if (hit < 0) return not_found(canonical, info, &c, note);

    snprintf(out->name, sizeof out->name, "%s", canonical);
    snprintf(out->dir, sizeof out->dir, "%s", where);
    int label_limit = info ? info->num_classes : 0; /* idx: checked below */
    cn_status st = CN_OK;
    if (parts & CN_DATASET_TRAIN) st = cn_split_load(paths[0], paths[1], label_limit, &out->train);
    if (st == CN_OK && (parts & CN_DATASET_TEST)) st = cn_split_load(paths[2], paths[3], label_limit, &out->test);
    if (st == CN_OK && out->train.count && out->test.count &&
        (out->train.rows != out->test.rows || out->train.cols != out->test.cols))
        st = cn_fail(CN_ERR_FORMAT, "%s: offset 8: images are %dx%d, expected %dx%d like the training images of %s",
                     paths[2], out->test.rows, out->test.cols, out->train.rows, out->train.cols, paths[0]);
    if (st != CN_OK) {
        cn_dataset_free(out);
        return st;
    }
    if (info) {
        out->mean[0] = info->mean;
        out->std[0] = info->std;
        out->num_classes = info->num_classes;
        for (int k = 0; k < info->num_classes; k++)
            snprintf(out->class_names[k], sizeof out->class_names[k], "%s", info->class_names[k]);
    } else {
        int max_label = 0;
        for (int s = 0; s < 2; s++) {
            const cn_split *split = s == 0 ? &out->train : &out->test;
            for (int i = 0; i < split->count; i++) {
                if (split->labels[i] >= CN_MAX_CLASSES) {
                    st = cn_fail(CN_ERR_UNSUPPORTED, "%s: offset %d: label %d, expected 0..%d "
                                 "(convnet handles at most %d classes)", paths[2 * s + 1], 8 + i,
                                 split->labels[i], CN_MAX_CLASSES - 1, CN_MAX_CLASSES);
                    cn_dataset_free(out);
                    return st;
                }
                if (split->labels[i] > max_label) max_label = split->labels[i];
            }
        }
        out->num_classes = max_label + 1;
        for (int k = 0; k < out->num_classes; k++) snprintf(out->class_names[k], sizeof out->class_names[k], "%d", k);
    }
    return CN_OK;
}

cn_status cn_dataset_load(const char *name, const char *dir, int allow_download, cn_dataset *out) {
    return cn_dataset_load_parts(name, dir, allow_download, CN_DATASET_TRAIN | CN_DATASET_TEST, out);
}

cn_status cn_dataset_load_parts(const char *name, const char *dir, int allow_download, int parts, cn_dataset *out) {
    cn_data_options o = {.name = name, .dir = dir, .allow_download = allow_download, .parts = parts};
    return cn_dataset_open(&o, out);
}

/* Normalisation: given (--mean/--std), published (the catalog's datasets) or
 * computed from the training images and cached in DIR/.convnet-stats. */
static void set_normalisation(const cn_data_options *o, const char *stats_source, cn_dataset *ds) {
    int channels = ds->train.channels > 0 ? ds->train.channels : 1;
    if (o->norm_channels > 0) {
        for (int c = 0; c < channels; c++) {
            int from = o->norm_channels == 1 ? 0 : c;
            ds->mean[c] = o->mean[from];
            ds->std[c] = o->std[from];
        }
        return;
    }
    if (!stats_source) return;   /* published constants, set by the loader */
    /* a test-only load (`convnet eval` of an idx set) takes them from the test images */
    const cn_split *from = ds->train.count ? &ds->train : &ds->test;
    if (!*stats_source) {        /* nothing to key a cache on */
        cn_split_stats(from, ds->mean, ds->std);
        return;
    }
    char cache[PATH_CAP + 32];
    snprintf(cache, sizeof cache, "%s/.convnet-stats", ds->dir);
    cn_split_cached_stats(from, stats_source, cache, ds->mean, ds->std);
}

cn_status cn_dataset_open(const cn_data_options *o, cn_dataset *out) {
    memset(out, 0, sizeof *out);
    const char *name = o->name && *o->name ? o->name : "mnist";
    const char *dir = o->dir && *o->dir ? o->dir : NULL;
    const char *stats_source = NULL;   /* the file whose size and mtime key the stats cache */
    char key[PATH_CAP + 64] = "";
    cn_status st;
    if (!strcasecmp(name, "folder")) {
        st = cn_folder_load(o, dir, out, key, sizeof key);
        stats_source = key;
    } else if (!strcasecmp(name, "csv")) {
        st = cn_csv_load_dataset(o, dir, out, key, sizeof key);
        stats_source = key;
    } else if (!strcasecmp(name, "cifar10") || !strcasecmp(name, "cifar-10")) {
        st = cn_cifar10_load(o, dir, out);
    } else if (cn_dataset_info_find(name) || !strcasecmp(name, "idx")) {
        int parts = o->parts ? o->parts : CN_DATASET_TRAIN | CN_DATASET_TEST;
        st = load_idx_family(name, dir, o->allow_download, parts, out);
        if (st == CN_OK && !cn_dataset_info_find(name)) {
            char raw[PATH_CAP + 64];
            struct stat sb;
            int n = snprintf(raw, sizeof raw, "%s/%s", out->dir, cn_dataset_file_names[out->train.count ? 0 : 2]);
            if (n > 0 && (size_t)n < sizeof key - 4)
                snprintf(key, sizeof key, stat(raw, &sb) == 0 ? "%s" : "%s.gz", raw);
            stats_source = key;
        }
    } else {
        return cn_fail(CN_ERR_ARG, "unknown dataset '%s': expected one of %s", name, cn_dataset_names());
    }
    int channels = out->train.channels > 0 ? out->train.channels : 1;
    if (st == CN_OK && o->norm_channels > 1 && o->norm_channels != channels)
        st = cn_fail(CN_ERR_ARG, "--mean/--std give %d values but %s images have %d channel%s; give 1 or %d",
                     o->norm_channels, out->name, channels, channels == 1 ? "" : "s", channels);
    if (st != CN_OK) { cn_dataset_free(out); return st; }
    set_normalisation(o, stats_source, out);
    return CN_OK;
}

cn_status cn_dataset_split_validation(cn_dataset *ds, int count, uint64_t seed, cn_split *val_out) {
    memset(val_out, 0, sizeof *val_out);
    cn_split *train = &ds->train;
    if (count <= 0 || count >= train->count)
        return cn_fail(CN_ERR_ARG, "validation size %d: expected 1..%d (the training set has %d images)",
                       count, train->count - 1, train->count);
    size_t n = (size_t)train->count, pixels = cn_split_image_size(train);
    int *perm = cn_calloc(n, sizeof *perm);
    uint8_t *picked = cn_calloc(n, 1);
    val_out->images = cn_calloc((size_t)count, pixels);
    val_out->labels = cn_calloc((size_t)count, sizeof *val_out->labels);
    if (!perm || !picked || !val_out->images || !val_out->labels) {
        free(perm); free(picked); cn_split_free(val_out);
        return CN_ERR_NOMEM;
    }
    /* Fisher-Yates: the first `count` entries of a seeded permutation. */
    cn_rng rng;
    cn_rng_seed(&rng, seed ^ 0x76616c6964617465ull); /* "validate" */
    for (size_t i = 0; i < n; i++) perm[i] = (int)i;
    for (size_t i = 0; i < (size_t)count; i++) {
        size_t j = i + (size_t)cn_rng_below(&rng, n - i);
        int t = perm[i]; perm[i] = perm[j]; perm[j] = t;
        picked[perm[i]] = 1;
    }
    size_t v = 0, t = 0;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *img = train->images + i * pixels;
        if (picked[i]) {
            memcpy(val_out->images + v * pixels, img, pixels);
            val_out->labels[v++] = train->labels[i];
        } else {
            if (t != i) memmove(train->images + t * pixels, img, pixels);
            train->labels[t++] = train->labels[i];
        }
    }
    val_out->count = count;
    val_out->rows = train->rows;
    val_out->cols = train->cols;
    val_out->channels = train->channels;
    train->count -= count;
    free(perm);
    free(picked);
    return CN_OK;
}
