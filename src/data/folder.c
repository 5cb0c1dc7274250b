/* torchvision's ImageFolder layout, decoded in parallel and cached. See folder.h. */
#include "data/folder.h"
#include "data/image_cache.h"
#include "data/image_planes.h"
#include "io/image.h"
#include "core/error.h"
#include "core/mem.h"
#include <dirent.h>
#include <errno.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#define PATH_CAP 4096
#define MAX_FILES 10000000

typedef struct {
    char *path;
    cn_file_stamp stamp;    /* for the cache key */
    uint16_t label;
} entry;

typedef struct {
    entry *items;
    int count, cap;
} entry_list;

static void entries_free(entry_list *l) {
    for (int i = 0; i < l->count; i++) free(l->items[i].path);
    free(l->items);
    memset(l, 0, sizeof *l);
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The stat() result list_names stored in front of a name. */
static const struct stat *stat_of(const char *name) { return (const struct stat *)(const void *)(name - sizeof(struct stat)); }

static void names_free(char **names, int count) {
    for (int i = 0; i < count; i++) free(names[i] - sizeof(struct stat));
    free(names);
}

static int has_image_extension(const char *name) {
    const char *dot = strrchr(name, '.');
    return dot && (!strcasecmp(dot, ".png") || !strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".jpeg"));
}

/* The names in `dir`, sorted bytewise: sub-folders not starting with '.'
 * (want_dirs) or regular files with an image extension. Each name is stored
 * with its stat() result in front of it (see stat_of), so that sorting keeps
 * them together and the caller need not stat again. */
static cn_status list_names(const char *dir, int want_dirs, char ***names_out, int *count_out) {
    *names_out = NULL;
    *count_out = 0;
    DIR *d = opendir(dir);
    if (!d) return cn_fail(CN_ERR_IO, "%s: cannot open the folder: %s", dir, strerror(errno));
    char **names = NULL, path[PATH_CAP];
    int count = 0, cap = 0;
    cn_status st = CN_OK;
    struct dirent *e;
    while (st == CN_OK && (e = readdir(d))) {
        if (want_dirs ? e->d_name[0] == '.' : !has_image_extension(e->d_name)) continue;
        struct stat sb;
        if (snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= (int)sizeof path) {
            st = cn_fail(CN_ERR_ARG, "%s/%s: path too long", dir, e->d_name);
            break;
        }
        if (stat(path, &sb) != 0 || (want_dirs ? !S_ISDIR(sb.st_mode) : !S_ISREG(sb.st_mode))) continue;
        if (count >= MAX_FILES) { st = cn_fail(CN_ERR_UNSUPPORTED, "%s: more than %d entries", dir, MAX_FILES); break; }
        if (count == cap) {
            cap = cap ? 2 * cap : 64;
            char **grown = realloc(names, (size_t)cap * sizeof *names);
            if (!grown) { st = CN_ERR_NOMEM; break; }
            names = grown;
        }
        size_t len = strlen(e->d_name);
        char *block = malloc(sizeof(struct stat) + len + 1);
        if (!block) { st = CN_ERR_NOMEM; break; }
        memcpy(block, &sb, sizeof sb);
        memcpy(block + sizeof sb, e->d_name, len + 1);
        names[count++] = block + sizeof sb;
    }
    closedir(d);
    if (st != CN_OK) { names_free(names, count); return st; }
    if (count) qsort(names, (size_t)count, sizeof *names, by_name);
    *names_out = names;
    *count_out = count;
    return CN_OK;
}

/* The class names: DIR/train's sub-folders. */
static cn_status find_classes(const char *train_dir, cn_dataset *ds) {
    char **names;
    int count;
    cn_status st = list_names(train_dir, 1, &names, &count);
    if (st) return st;
    if (count < 2 || count > CN_MAX_CLASSES)
        st = cn_fail(CN_ERR_FORMAT, "%s: %d class folders; expected 2 to %d (one folder of images per class)",
                     train_dir, count, CN_MAX_CLASSES);
    for (int k = 0; st == CN_OK && k < count; k++) {
        size_t len = strlen(names[k]);
        int bad = len >= CN_CLASS_NAME_MAX;
        for (size_t i = 0; i < len; i++) bad |= names[k][i] == ',' || (unsigned char)names[k][i] < 0x20;
        if (bad)
            st = cn_fail(CN_ERR_FORMAT, "%s/%s: class folder name must be at most %d bytes, without commas or control "
                         "characters (it is stored in checkpoints)", train_dir, names[k], CN_CLASS_NAME_MAX - 1);
        else memcpy(ds->class_names[k], names[k], len + 1);
    }
    if (st == CN_OK) ds->num_classes = count;
    names_free(names, count);
    return st;
}

static cn_status add_entry(entry_list *l, const char *path, const struct stat *sb, int label) {
    if (l->count == l->cap) {
        int cap = l->cap ? 2 * l->cap : 1024;
        entry *grown = realloc(l->items, (size_t)cap * sizeof *grown);
        if (!grown) return CN_ERR_NOMEM;
        l->items = grown;
        l->cap = cap;
    }
    entry *e = &l->items[l->count];
    if (!(e->path = strdup(path))) return CN_ERR_NOMEM;
    e->stamp = cn_file_stamp_of(sb);
    e->label = (uint16_t)label;
    l->count++;
    return CN_OK;
}

#define MAX_DEPTH 16   /* nested folders inside a class folder (a symlink loop ends here) */

typedef struct {
    char **items;
    int count, cap;
} path_list;

static void paths_free(path_list *l) {
    for (int i = 0; i < l->count; i++) free(l->items[i]);
    free(l->items);
    memset(l, 0, sizeof *l);
}

/* Appends `dir` and, recursively, every sub-folder under it not starting with
 * '.' (following symbolic links, as ImageFolder's os.walk(followlinks=True)). */
static cn_status collect_folders(const char *dir, int depth, path_list *out) {
    if (depth > MAX_DEPTH)
        return cn_fail(CN_ERR_FORMAT, "%s: folders nested more than %d deep in a class folder (a symbolic link loop?)",
                       dir, MAX_DEPTH);
    if (out->count >= MAX_FILES) return cn_fail(CN_ERR_UNSUPPORTED, "%s: more than %d folders", dir, MAX_FILES);
    if (out->count == out->cap) {
        int cap = out->cap ? 2 * out->cap : 16;
        char **grown = realloc(out->items, (size_t)cap * sizeof *grown);
        if (!grown) return CN_ERR_NOMEM;
        out->items = grown;
        out->cap = cap;
    }
    if (!(out->items[out->count] = strdup(dir))) return CN_ERR_NOMEM;
    out->count++;
    char **subs, path[PATH_CAP];
    int nsubs;
    cn_status st = list_names(dir, 1, &subs, &nsubs);
    for (int i = 0; st == CN_OK && i < nsubs; i++) {
        if (snprintf(path, sizeof path, "%s/%s", dir, subs[i]) >= (int)sizeof path)
            st = cn_fail(CN_ERR_ARG, "%s/%s: path too long", dir, subs[i]);
        else st = collect_folders(path, depth + 1, out);
    }
    names_free(subs, nsubs);
    return st;
}

/* Appends the images of one class folder with label k, in ImageFolder's
 * order: the folder and its sub-folders sorted by full path (sorted(os.walk)),
 * and the files of each in name order. */
static cn_status list_class(const char *class_dir, const char *split_dir, int k, entry_list *list) {
    path_list folders = {0};
    cn_status st = collect_folders(class_dir, 0, &folders);
    if (st == CN_OK) qsort(folders.items, (size_t)folders.count, sizeof *folders.items, by_name);
    int before = list->count;
    char path[PATH_CAP];
    for (int d = 0; st == CN_OK && d < folders.count; d++) {
        char **files;
        int nfiles;
        if ((st = list_names(folders.items[d], 0, &files, &nfiles))) break;
        for (int i = 0; st == CN_OK && i < nfiles; i++) {
            if (snprintf(path, sizeof path, "%s/%s", folders.items[d], files[i]) >= (int)sizeof path)
                st = cn_fail(CN_ERR_ARG, "%s/%s: path too long", folders.items[d], files[i]);
            else if (list->count >= MAX_FILES)
                st = cn_fail(CN_ERR_UNSUPPORTED, "%s: more than %d images", split_dir, MAX_FILES);
            else st = add_entry(list, path, stat_of(files[i]), k);
        }
        names_free(files, nfiles);
    }
    if (st == CN_OK && list->count == before)
        st = cn_fail(CN_ERR_FORMAT, "%s: empty class folder; expected at least one .png, .jpg or .jpeg image", class_dir);
    paths_free(&folders);
    return st;
}

/* Lists split_dir/<class>/.../<image> for every class of ds, in label order,
 * then list_class's order. Every class folder must exist and hold an image; no others. */
static cn_status list_split(const char *split_dir, const char *train_dir, const cn_dataset *ds, entry_list *list) {
    char **dirs;
    int ndirs;
    cn_status st = list_names(split_dir, 1, &dirs, &ndirs);
    if (st) return st;
    for (int i = 0; st == CN_OK && i < ndirs; i++) {
        int known = 0;
        for (int k = 0; k < ds->num_classes && !known; k++) known = !strcmp(dirs[i], ds->class_names[k]);
        if (!known) st = cn_fail(CN_ERR_FORMAT, "%s/%s: class folder not in %s; expected only the training classes",
                                 split_dir, dirs[i], train_dir);
    }
    names_free(dirs, ndirs);
    char class_dir[PATH_CAP];
    for (int k = 0; st == CN_OK && k < ds->num_classes; k++) {
        struct stat sb;
        if (snprintf(class_dir, sizeof class_dir, "%s/%s", split_dir, ds->class_names[k]) >= (int)sizeof class_dir) {
            st = cn_fail(CN_ERR_ARG, "%s/%s: path too long", split_dir, ds->class_names[k]);
            break;
        }
        if (stat(class_dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
            st = cn_fail(CN_ERR_FORMAT, "%s: class folder missing; expected a folder for every class of %s",
                         class_dir, train_dir);
            break;
        }
        st = list_class(class_dir, split_dir, k, list);
    }
    return st;
}

typedef struct {
    int channels, rows, cols;   /* the split's image shape */
    int resize, grayscale;
} target;

/* Reads and decodes one file into dst. *decode_failed: the file is not a
 * readable image (skippable), as opposed to one of the wrong shape. */
static cn_status decode_one(const char *path, const target *t, uint8_t *dst, int *decode_failed) {
    uint8_t *data;
    size_t size;
    *decode_failed = 1;
    cn_status st = cn_image_read_file(path, &data, &size);
    if (st) return st;
    cn_color_image img;
    st = cn_image_decode_color(data, size, path, &img);
    free(data);
    if (st) return st;
    *decode_failed = 0;
    st = cn_image_to_planes(&img, t->channels, t->rows, t->cols, t->resize, t->grayscale, path, dst);
    cn_color_image_free(&img);
    return st;
}

/* The shape of the first image (what is not fixed by the options). */
static cn_status first_shape(const cn_data_options *o, const entry_list *list, target *t) {
    for (int i = 0; i < list->count; i++) {
        uint8_t *data;
        size_t size;
        cn_color_image img;
        cn_status st = cn_image_read_file(list->items[i].path, &data, &size);
        if (st == CN_OK) { st = cn_image_decode_color(data, size, list->items[i].path, &img); free(data); }
        if (st != CN_OK) { if (o->skip_bad) continue; return st; }
        if (!t->channels) t->channels = img.channels;
        if (!t->rows) { t->rows = img.height; t->cols = img.width; }
        cn_color_image_free(&img);
        if (t->rows > CN_MAX_SIDE || t->cols > CN_MAX_SIDE)
            return cn_fail(CN_ERR_UNSUPPORTED, "%s: image is %dx%d (HxW); the limit is %dx%d (pass --resize HxW)",
                           list->items[i].path, t->rows, t->cols, CN_MAX_SIDE, CN_MAX_SIDE);
        return CN_OK;
    }
    return cn_fail(CN_ERR_FORMAT, "%s: no image decodes", list->count ? list->items[0].path : "?");
}

/* Decodes every listed file in parallel into out (shape t). A file that does
 * not decode is an error naming it, or, with skip_bad, left out and counted. */
static cn_status decode_all(const cn_data_options *o, const entry_list *list, const target *t, cn_split *out,
                            int *skipped) {
    size_t image = (size_t)t->channels * t->rows * t->cols, n = (size_t)list->count, bytes;
    if (!cn_mul_ok(image, n, &bytes)) return cn_fail(CN_ERR_UNSUPPORTED, "%zu images of %zu bytes: too large", n, image);
    out->images = cn_calloc(bytes ? bytes : 1, 1);
    out->labels = cn_calloc(n, sizeof *out->labels);
    char **errors = cn_calloc(n, sizeof *errors);
    uint8_t *skippable = cn_calloc(n, 1);
    if (!out->images || !out->labels || !errors || !skippable) { free(errors); free(skippable); return CN_ERR_NOMEM; }
    int threads = o->threads > 0 ? o->threads : omp_get_max_threads();
    #pragma omp parallel for schedule(dynamic, 16) num_threads(threads)
    for (size_t i = 0; i < n; i++) {
        int decode_failed;
        if (decode_one(list->items[i].path, t, out->images + i * image, &decode_failed) != CN_OK) {
            const char *msg = cn_last_error();
            errors[i] = strdup(msg && *msg ? msg : "out of memory");
            skippable[i] = (uint8_t)decode_failed;
        }
    }
    cn_status st = CN_OK;
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        if (errors[i]) {
            if (o->skip_bad && skippable[i]) { (*skipped)++; continue; }
            if (st == CN_OK) st = cn_fail(CN_ERR_FORMAT, "%s%s", errors[i],
                                          skippable[i] ? " (--skip-bad leaves such files out)" : "");
            continue;
        }
        if (kept != i) memmove(out->images + kept * image, out->images + i * image, image);
        out->labels[kept++] = list->items[i].label;
    }
    for (size_t i = 0; i < n; i++) free(errors[i]);
    free(errors);
    free(skippable);
    if (st == CN_OK && kept == 0) st = cn_fail(CN_ERR_FORMAT, "%s: no image could be read", list->items[0].path);
    if (st != CN_OK) return st;
    out->count = (int)kept;
    out->channels = t->channels;
    out->rows = t->rows;
    out->cols = t->cols;
    return CN_OK;
}

/* The cache key: options, class names, and each file's path, size and mtime. */
static uint64_t cache_key(const target *t, const cn_dataset *ds, const entry_list *list, int skip_bad) {
    int32_t opts[6] = {t->channels, t->rows, t->cols, t->resize, t->grayscale, skip_bad};
    uint64_t h = cn_cache_key_add(CN_CACHE_KEY_INIT, opts, sizeof opts);
    for (int k = 0; k < ds->num_classes; k++) h = cn_cache_key_add(h, ds->class_names[k], strlen(ds->class_names[k]) + 1);
    for (int i = 0; i < list->count; i++) {
        const entry *e = &list->items[i];
        h = cn_cache_key_add_file_stamp(h, e->path, e->stamp);
        h = cn_cache_key_add(h, &e->label, sizeof e->label);
    }
    return h;
}

/* One split: listed, then read from the cache or decoded (and cached). */
static cn_status load_split(const cn_data_options *o, const char *dir, const char *split, cn_dataset *ds, target *t,
                            cn_split *out, char *cache_path) {
    char split_dir[PATH_CAP], train_dir[PATH_CAP];
    if (snprintf(split_dir, sizeof split_dir, "%s/%s", dir, split) >= (int)sizeof split_dir - 64 ||
        snprintf(train_dir, sizeof train_dir, "%s/train", dir) >= (int)sizeof train_dir - 64)
        return cn_fail(CN_ERR_ARG, "%s: path too long", dir);
    entry_list list = {0};
    cn_status st = list_split(split_dir, train_dir, ds, &list);
    if (st == CN_OK && (!t->channels || !t->rows)) st = first_shape(o, &list, t);
    if (st) { entries_free(&list); return st; }
    if (snprintf(cache_path, PATH_CAP, "%s/.convnet-cache-%s", dir, split) >= PATH_CAP) cache_path[0] = '\0';
    uint64_t key = cache_key(t, ds, &list, o->skip_bad);
    int skipped = 0;
    int hit = cache_path[0] && cn_image_cache_read(cache_path, key, out, &skipped);
    /* A damaged cache must not steer indexing: its labels and shape are checked like decoded ones. */
    for (int i = 0; hit && i < out->count; i++) hit = out->labels[i] < ds->num_classes;
    if (hit && (out->channels != t->channels || out->rows != t->rows || out->cols != t->cols || out->count > list.count))
        hit = 0;
    if (!hit) cn_split_free(out);
    if (hit) {
        ds->from_cache++;
    } else {
        st = decode_all(o, &list, t, out, &skipped);
        if (st == CN_OK && (!cache_path[0] || !cn_image_cache_write(cache_path, key, out, skipped))) cache_path[0] = '\0';
    }
    ds->skipped += skipped;
    entries_free(&list);
    return st;
}

cn_status cn_folder_load(const cn_data_options *o, const char *dir, cn_dataset *out, char *stats_key, size_t key_size) {
    if (!dir) return cn_fail(CN_ERR_ARG, "--dataset folder needs --data DIR (DIR/train/<class>/*.png and DIR/test/<class>/*.png)");
    snprintf(out->name, sizeof out->name, "folder");
    snprintf(out->dir, sizeof out->dir, "%s", dir);
    char train_dir[PATH_CAP], val_dir[PATH_CAP], cache[PATH_CAP], unused[PATH_CAP];
    struct stat sb;
    if (snprintf(train_dir, sizeof train_dir, "%s/train", dir) >= (int)sizeof train_dir - 64)
        return cn_fail(CN_ERR_ARG, "%s: path too long", dir);
    if (stat(train_dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return cn_fail(CN_ERR_IO, "%s: no such folder; expected DIR/train/<class>/<image> and DIR/test/<class>/<image>",
                       train_dir);
    cn_status st = find_classes(train_dir, out);
    if (st) return st;
    target t = {.channels = o->grayscale ? 1 : o->channels, .rows = o->resize_rows ? o->resize_rows : o->rows,
                .cols = o->resize_rows ? o->resize_cols : o->cols, .resize = o->resize_rows > 0, .grayscale = o->grayscale};
    st = load_split(o, dir, "train", out, &t, &out->train, cache);
    if (st == CN_OK) st = load_split(o, dir, "test", out, &t, &out->test, unused);
    snprintf(val_dir, sizeof val_dir, "%s/val", dir);
    if (st == CN_OK && stat(val_dir, &sb) == 0 && S_ISDIR(sb.st_mode))
        st = load_split(o, dir, "val", out, &t, &out->val, unused);
    if (st == CN_OK) snprintf(stats_key, key_size, "%s", cache);
    return st;
}
