/* The decoded-image cache of a dataset whose images are decoded from many
 * files (an image folder): one file beside the data, DIR/.convnet-cache-SPLIT,
 * holding a split exactly as it is in memory, keyed by a 64-bit hash of what
 * it was made from (the file list with sizes and modification times, the
 * class names and the decoding options). A second run with the same files
 * reads it instead of decoding again.
 *
 * Format (little-endian): "CNIMGC01", key u64, count, channels, rows, cols,
 * skipped (u32 each), labels (count u16), images (count*channels*rows*cols
 * bytes). Anything that does not match exactly (magic, key, sizes, file
 * length) is a cache miss, never an error. Writes are atomic (temporary file,
 * rename) and silently skipped when the directory is read-only. */
#ifndef CN_DATA_IMAGE_CACHE_H
#define CN_DATA_IMAGE_CACHE_H
#include "data/dataset.h"
#include <stdint.h>
#include <sys/stat.h>

/* FNV-1a 64 over bytes, continuing from `hash` (start with CN_CACHE_KEY_INIT). */
#define CN_CACHE_KEY_INIT 0xcbf29ce484222325ull
uint64_t cn_cache_key_add(uint64_t hash, const void *data, size_t size);

/* What a key takes of one input file besides its path: size and modification time (ns), so
 * that a file rewritten in place changes the key. */
typedef struct {
    long long size, mtime_ns;
} cn_file_stamp;
cn_file_stamp cn_file_stamp_of(const struct stat *sb);
/* Adds the file's path (with its NUL), then the stamp's size and mtime_ns (8 bytes each). */
uint64_t cn_cache_key_add_file_stamp(uint64_t hash, const char *path, cn_file_stamp stamp);

/* Reads the cache at `path` into *out when its key is `key`; returns 1 on a
 * hit (out filled, *skipped set), 0 on a miss (out left empty). */
int cn_image_cache_read(const char *path, uint64_t key, cn_split *out, int *skipped);
/* Writes `split` under `key`; returns 1 when written. */
int cn_image_cache_write(const char *path, uint64_t key, const cn_split *split, int skipped);

#endif
