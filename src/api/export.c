/* cn_net exports: ONNX and C source (include/convnet.h). */
#include "api/net.h"
#include "core/error.h"
#include "io/export_c.h"
#include "io/onnx.h"
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

cn_status cn_net_export_onnx(const cn_net *net, const char *path, int fold_bn, cn_export_report *report) {
    const cn_model *m = net->model;
    cn_status st = cn_onnx_export(m, path, fold_bn, net->info.mean, net->info.std);
    if (st || !report) return st;
    memset(report, 0, sizeof *report);
    struct stat sb;
    report->bytes = stat(path, &sb) ? -1 : (long long)sb.st_size;
    for (int i = 0; i < m->num_layers; i++) /* BNs right after a conv are the ones cn_onnx_export folds */
        if (m->layers[i].kind == CN_LAYER_BATCHNORM2D) {
            report->batchnorm++;
            report->batchnorm_folded += fold_bn && i > 0 && m->layers[i - 1].kind == CN_LAYER_CONV2D;
        }
    return CN_OK;
}

/* *count training images of the dataset, evenly spaced, as floats in [0, 1]. */
static cn_status calibration_images(const cn_dataset *ds, int pixels, int *count, float **out) {
    const cn_split *s = &ds->train;
    *out = NULL;
    if (s->rows * s->cols != pixels)
        return cn_fail(CN_ERR_SHAPE, "%s images are %dx%d but the model takes %d values per image", ds->name, s->rows,
                       s->cols, pixels);
    if (*count > s->count) *count = s->count;
    float *x = malloc((size_t)*count * pixels * sizeof *x);
    if (!x) return cn_fail(CN_ERR_NOMEM, "out of memory for %d calibration images", *count);
    for (int i = 0; i < *count; i++) {
        const uint8_t *img = s->images + (size_t)((long long)i * s->count / *count) * pixels;
        for (int j = 0; j < pixels; j++) x[(size_t)i * pixels + j] = img[j] / 255.0f;
    }
    *out = x;
    return CN_OK;
}

cn_status cn_net_export_c(const cn_net *net, const char *dir, int int8, const cn_data *calib_data, int calibration,
                          cn_export_report *report) {
    float *calib = NULL;
    int count = calibration;
    if (int8) {
        if (!calib_data || calibration < 1)
            return cn_fail(CN_ERR_ARG, "%s: int8 export needs calibration images (a dataset and a count >= 1)", dir);
        cn_status st = calibration_images(&calib_data->ds, cn_shape_size(net->model->input), &count, &calib);
        if (st) return st;
    }
    cn_export_c_stats stats;
    cn_status st = cn_export_c(net->model, dir, net->info.mean, net->info.std, int8, calib, int8 ? count : 0, &stats);
    free(calib);
    if (st || !report) return st;
    memset(report, 0, sizeof *report);
    report->bytes = -1;
    report->weight_count = stats.weight_count;
    report->flash_bytes = stats.flash_bytes;
    report->ram_bytes = stats.ram_bytes;
    report->calibration_images = int8 ? count : 0;
    return CN_OK;
}
