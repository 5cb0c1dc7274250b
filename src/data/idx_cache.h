/* The decoded-image cache (image_cache.h) for gzip-compressed IDX files: the
 * MNIST family ships as .gz, and inflating 47 MB of training images costs about
 * 0.2 s of every run. After the first load of a split from a .gz images file the
 * split is written to DIR/.convnet-cache-<images file name> beside it (silently
 * skipped when DIR is read-only); later loads read that instead.
 *
 * The key is made of both files' paths, sizes and modification times, and of
 * each gzip member's trailer (the CRC-32 and length of the decompressed data), so
 * a file rewritten within one timestamp tick still changes it. A hit is checked
 * like a decoded split (one channel, labels below num_classes); anything that
 * does not fit is a miss, never an error. Raw (uncompressed) IDX files are read
 * directly and never cached. */
#ifndef CN_DATA_IDX_CACHE_H
#define CN_DATA_IDX_CACHE_H
#include "data/dataset.h"
#include <stddef.h>
#include <stdint.h>

/* 1 when images_path is a gzip file whose split can be cached; then *key and
 * cache_path (cap bytes) are set. 0 otherwise (raw file, stat failure, long path). */
int cn_idx_cache_key(const char *images_path, const char *labels_path, int num_classes, uint64_t *key,
                     char *cache_path, size_t cap);
/* Reads the cached split under `key` into *out; 1 on a valid hit, else 0 (out empty). */
int cn_idx_cache_read(const char *cache_path, uint64_t key, int num_classes, cn_split *out);

#endif
