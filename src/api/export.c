/* The public API's exports (convnet.h): ONNX, C source, a web page. */
#include "convnet.h"
#include "api/data.h"
#include "model.h"
#include "train.h"
#include "core/error.h"
#include "int8/int8_model.h"
#include "io/export_c.h"
#include "io/export_web.h"
#include "io/onnx.h"
#include <stdlib.h>
#include <string.h>

cn_status cn_export_onnx(const cn_model *model, const char *path, int fold_bn, const cn_model_info *info) {
    return cn_onnx_export_labeled(model, path, fold_bn, info->mean, info->std, info->dataset, info->num_classes,
                                  (const char (*)[CN_CLASS_NAME_MAX])info->class_names);
}

cn_status cn_export_c_source(const cn_model *model, const char *dir, const cn_model_info *info, int flags,
                             const cn_data *calibration_data, int *calibration, cn_export_c_stats *stats) {
    float *calib = NULL;
    int count = 0;
    if (flags & CN_EXPORT_C_INT8) {
        if (!calibration_data || !calibration) return cn_fail(CN_ERR_ARG, "an int8 C export needs calibration data");
        const cn_dataset *ds = cn_data_dataset(calibration_data);
        cn_status st = cn_check_input_shape(model, &ds->train, ds->name);
        if (st) return st;
        count = *calibration;
        if (!(calib = cn_int8_calibration_images(&ds->train, &count)))
            return cn_fail(CN_ERR_NOMEM, "out of memory for %d calibration images (or none in %s)", count, ds->name);
        *calibration = count;
    }
    cn_status st = cn_export_c(model, dir, info->mean, info->std, flags, calib, count, stats);
    free(calib);
    return st;
}

#define WEB_DIGITS 20

cn_status cn_export_web_page(cn_model *model, const char *dir, const cn_model_info *info, const cn_data *data,
                             cn_export_web_stats *stats) {
    cn_status st = cn_export_web_check(model);
    if (st) return st;
    const cn_dataset *ds = cn_data_dataset(data);
    const cn_split *s = &ds->test;
    if (s->channels > 1 || s->rows != CN_DIGIT_SIDE || s->cols != CN_DIGIT_SIDE || s->count < WEB_DIGITS)
        return cn_fail(CN_ERR_SHAPE, "%s test set has %d images of %dx%d; the page needs %d of 28x28", ds->name, s->count,
                       s->rows, s->cols, WEB_DIGITS);
    enum { PIXELS = CN_DIGIT_SIDE * CN_DIGIT_SIDE };
    uint8_t digits[WEB_DIGITS * PIXELS], labels[WEB_DIGITS];
    int indices[WEB_DIGITS];
    for (int i = 0; i < WEB_DIGITS; i++) {   /* spread over the test set */
        indices[i] = (int)((long long)i * s->count / WEB_DIGITS);
        memcpy(digits + (size_t)i * PIXELS, s->images + (size_t)indices[i] * PIXELS, PIXELS);
        labels[i] = (uint8_t)s->labels[indices[i]];
    }
    return cn_export_web(model, dir, info, digits, labels, indices, WEB_DIGITS, stats);
}
