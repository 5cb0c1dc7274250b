/* IDX file reader (the MNIST family's format), gzip-compressed or raw.
 *
 * Format: 32-bit big-endian magic 0x00000803 (uint8 images, 3 dims) or
 * 0x00000801 (uint8 labels, 1 dim), then one big-endian uint32 per dim, then
 * the data. Compression is detected from the first two bytes (1f 8b = gzip).
 * Every declared size is checked against the data actually present: a short
 * file and trailing bytes are both errors that name the file and the offset. */
#ifndef CN_DATA_IDX_H
#define CN_DATA_IDX_H
#include "convnet.h"
#include <stdint.h>

#define CN_IDX_MAGIC_LABELS 0x00000801u
#define CN_IDX_MAGIC_IMAGES 0x00000803u
#define CN_IDX_MAX_COUNT 10000000  /* items per file */
#define CN_IDX_MAX_SIDE 1024       /* rows and cols */

typedef struct {
    int count;      /* items */
    int rows, cols; /* 1, 1 for label files */
    uint8_t *data;  /* count*rows*cols bytes, owned; free() it */
} cn_idx;

/* Reads an image file (magic 0x803, dims count, rows, cols). */
cn_status cn_idx_read_images(const char *path, cn_idx *out);
/* Reads a label file (magic 0x801, dim count). */
cn_status cn_idx_read_labels(const char *path, cn_idx *out);
/* Same checks on `size` bytes in memory (gzip or raw; the fuzzing entry point).
 * magic: CN_IDX_MAGIC_IMAGES or CN_IDX_MAGIC_LABELS; `name` stands in for the
 * file name in messages (NULL: "<memory>"). */
cn_status cn_idx_parse_memory(const void *data, size_t size, const char *name, uint32_t magic, cn_idx *out);
void cn_idx_free(cn_idx *idx);

#endif
