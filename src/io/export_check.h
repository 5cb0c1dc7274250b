/* What every export checks first: the parameters it writes are finite. */
#ifndef CN_IO_EXPORT_CHECK_H
#define CN_IO_EXPORT_CHECK_H
#include "model.h"

/* CN_ERR_NUMERIC naming the model, layer and element if any of v[0..n) is
 * NaN or infinite: "<model>: layer <name> (<kind>) <what>[i] is nan; cannot
 * export non-finite parameters". */
cn_status cn_export_check_finite(const cn_model *m, const cn_layer *l, const char *what, const float *v, size_t n);

#endif
