/* Normalisation statistics of a training set (for datasets without published
 * constants), cached in a small text file so that they are computed once. */
#ifndef CN_DATA_STATS_H
#define CN_DATA_STATS_H
#include "data/dataset.h"

/* Mean and (unbiased) standard deviation of pixel/255 over all of `train`. */
void cn_split_pixel_stats(const cn_split *train, double *mean, double *std);

/* mean/std of `train`, whose images were read from `images_path`. Uses the
 * cache file `cache_path` when it names the same file with the same size and
 * modification time; otherwise computes them and tries to write the cache
 * (silently skipped when the directory is read-only). */
void cn_split_cached_stats(const cn_split *train, const char *images_path, const char *cache_path,
                           float *mean, float *std);

/* One stored normalisation value (metadata `key` of `file`, text `text`):
 * a whole finite number, and > 0 when `positive` (a std). Otherwise
 * CN_ERR_FORMAT naming the file and the key, e.g. "w.onnx: metadata
 * normalize_std is \"0\"; expected a finite number > 0". */
cn_status cn_normalization_parse(const char *file, const char *key, const char *text, int positive, float *out);

#endif
