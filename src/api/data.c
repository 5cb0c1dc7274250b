/* cn_data: datasets behind the public API (include/convnet.h). */
#include "api/net.h"
#include "core/error.h"
#include "data/download.h"
#include <stdlib.h>

cn_status cn_data_load(const char *name, const char *dir, int allow_download, cn_data **out) {
    *out = NULL;
    cn_data *d = calloc(1, sizeof *d);
    if (!d) return cn_fail(CN_ERR_NOMEM, "out of memory for a dataset");
    cn_status st = cn_dataset_load(name, dir, allow_download, &d->ds);
    if (st) { free(d); return st; }
    *out = d;
    return CN_OK;
}

void cn_data_free(cn_data *data) {
    if (!data) return;
    cn_dataset_free(&data->ds);
    free(data);
}

const char *cn_data_name(const cn_data *data) { return data->ds.name; }
int cn_data_num_classes(const cn_data *data) { return data->ds.num_classes; }

const char *cn_data_class_name(const cn_data *data, int k) {
    return k >= 0 && k < data->ds.num_classes ? data->ds.class_names[k] : NULL;
}

void cn_data_normalization(const cn_data *data, float *mean, float *std) {
    if (mean) *mean = data->ds.mean;
    if (std) *std = data->ds.std;
}

const uint8_t *cn_data_images(const cn_data *data, cn_split_id split, int *count, int *rows, int *cols,
                              const uint8_t **labels) {
    const cn_split *s = split == CN_SPLIT_TRAIN ? &data->ds.train : &data->ds.test;
    if (count) *count = s->count;
    if (rows) *rows = s->rows;
    if (cols) *cols = s->cols;
    if (labels) *labels = s->labels;
    return s->images;
}

cn_status cn_data_download(const char *name, const char *dir, int progress, char *where, size_t where_size) {
    char target[4096];
    if (dir) snprintf(target, sizeof target, "%s", dir);
    else {
        cn_status st = cn_dataset_default_dir(name, target, sizeof target);
        if (st) return st;
    }
    cn_status st = cn_dataset_download(name, target, progress);
    if (!st && where && where_size) snprintf(where, where_size, "%s", target);
    return st;
}
