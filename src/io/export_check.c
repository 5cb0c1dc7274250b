#include "io/export_check.h"
#include "core/error.h"
#include <math.h>

cn_status cn_export_check_finite(const cn_model *m, const cn_layer *l, const char *what, const float *v, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(v[i]))
            return cn_fail(CN_ERR_NUMERIC, "%s: layer %s (%s) %s[%zu] is %g; cannot export non-finite parameters",
                           m->source_name, l->name, cn_layer_kind_name(l->kind), what, i, (double)v[i]);
    return CN_OK;
}
