/* The public API's datasets (convnet.h): cn_data wraps a loaded cn_dataset. */
#include "convnet.h"
#include "train.h"
#include "core/error.h"
#include "data/cifar.h"
#include "data/dataset.h"
#include "data/download.h"
#include "api/data.h"
#include <stdlib.h>
#include <string.h>

struct cn_data {
    cn_dataset ds;
};

cn_status cn_data_open(const cn_data_options *options, cn_data **out) {
    *out = NULL;
    cn_data *d = calloc(1, sizeof *d);   /* about 32 kB of class names: on the heap */
    if (!d) return cn_fail(CN_ERR_NOMEM, "out of memory for a dataset");
    cn_data_options o = {0};
    if (options) o = *options;
    cn_status st = cn_dataset_open(&o, &d->ds);
    if (st) { cn_dataset_free(&d->ds); free(d); return st; }
    *out = d;
    return CN_OK;
}

void cn_data_free(cn_data *d) {
    if (!d) return;
    cn_dataset_free(&d->ds);
    free(d);
}

const cn_dataset *cn_data_dataset(const cn_data *d) { return &d->ds; }

const char *cn_data_name(const cn_data *d) { return d->ds.name; }
const char *cn_data_dir(const cn_data *d) { return d->ds.dir; }
int cn_data_num_classes(const cn_data *d) { return d->ds.num_classes; }
const float *cn_data_mean(const cn_data *d) { return d->ds.mean; }
const float *cn_data_std(const cn_data *d) { return d->ds.std; }
int cn_data_skipped(const cn_data *d) { return d->ds.skipped; }

const char *cn_data_class_name(const cn_data *d, int k) {
    return k >= 0 && k < d->ds.num_classes ? d->ds.class_names[k] : "";
}

static const cn_split *split_of(const cn_data *d, cn_split_id id) {
    return id == CN_SPLIT_TRAIN ? &d->ds.train : &d->ds.test;
}

int cn_data_count(const cn_data *d, cn_split_id id) { return split_of(d, id)->count; }

const uint8_t *cn_data_image(const cn_data *d, cn_split_id id, int i) {
    const cn_split *s = split_of(d, id);
    CN_ASSERT(i >= 0 && i < s->count);
    return s->images + (size_t)i * cn_split_image_size(s);
}

int cn_data_label(const cn_data *d, cn_split_id id, int i) {
    const cn_split *s = split_of(d, id);
    CN_ASSERT(i >= 0 && i < s->count);
    return s->labels[i];
}

cn_status cn_data_check_model(const cn_data *d, const cn_model *model) { return cn_check_model_fits(model, &d->ds); }

cn_status cn_download(const char *name, const char *dir, int show_progress) {
    if (!strcmp(name, "cifar10")) return cn_cifar10_download(dir, show_progress);
    return cn_dataset_download(name, dir, show_progress);
}
