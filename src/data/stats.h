/* Normalisation statistics of a training set (for datasets without published
 * constants), per channel, cached in a small text file so that they are
 * computed once. */
#ifndef CN_DATA_STATS_H
#define CN_DATA_STATS_H
#include "data/dataset.h"

/* Mean and (unbiased) standard deviation of pixel/255 over all of `train`,
 * per channel: mean[c], std[c] for c < train's channels. */
void cn_split_pixel_stats(const cn_split *train, double *mean, double *std);

/* The same as floats, a zero std (a constant channel) replaced by 1. */
void cn_split_stats(const cn_split *train, float *mean, float *std);

/* Per-channel mean/std of `train`, whose images were read from `images_path`.
 * Uses the cache file `cache_path` when it names the same file with the same
 * size and modification time and the same channel count; otherwise computes
 * them and tries to write the cache (silently skipped when the directory is
 * read-only). */
void cn_split_cached_stats(const cn_split *train, const char *images_path, const char *cache_path,
                           float *mean, float *std);

/* Stored normalisation values (metadata `key` of `file`, text `text`): 1 to
 * `max` comma-separated finite numbers (one per channel, or one for all), each
 * > 0 when `positive` (a std), into out[0..*count). Otherwise CN_ERR_FORMAT
 * naming the file and the key, e.g. "w.onnx: metadata normalize_std is \"0\";
 * expected a finite number > 0". */
cn_status cn_normalization_parse(const char *file, const char *key, const char *text, int positive, float *out,
                                 int max, int *count);

#endif
