/* Elastic distortion (Simard, Steinkraus & Platt 2003) of one uint8 image. */
#ifndef CN_DATA_ELASTIC_H
#define CN_DATA_ELASTIC_H
#include "core/rng.h"
#include <stddef.h>
#include <stdint.h>

#define CN_ELASTIC_MAX_SIGMA 20.0f

/* Floats of scratch cn_elastic_apply needs for this size and sigma. */
size_t cn_elastic_scratch_floats(int rows, int cols, float sigma);
/* dst(y, x) = src sampled bilinearly at (x + alpha*gx(y, x), y + alpha*gy(y, x)),
 * 0 outside the image, where gx, gy are fields of U(-1, 1) values (gx drawn
 * first, row-major) smoothed by a normalised Gaussian of standard deviation
 * sigma pixels truncated at ceil(3 sigma), mirrored at the borders.
 * src, dst (rows, cols); dst in [0, 255]. 0 < sigma <= CN_ELASTIC_MAX_SIGMA. */
void cn_elastic_apply(const uint8_t *src, int rows, int cols, float alpha, float sigma, cn_rng *rng,
                      float *scratch, float *dst);

#endif
