/* safetensors reader and writer (https://github.com/huggingface/safetensors).
 *
 * File layout: u64 little-endian N, then N bytes of a UTF-8 JSON object
 * (possibly padded with trailing spaces), then the data section. Each JSON key
 * other than "__metadata__" is a tensor: {"dtype": "F32", "shape": [2, 3],
 * "data_offsets": [begin, end]} with offsets relative to the data section.
 * "__metadata__", if present, is an object of string values.
 *
 * The reader is strict, since it parses untrusted files: every size is
 * overflow-checked, tensors must lie inside the data section, must not overlap
 * and (as the format requires) must cover it without holes; names are unique,
 * 1..127 bytes, without control characters; unknown tensor fields are errors.
 * At most CN_ST_MAX_TENSORS tensors and CN_ST_MAX_METADATA metadata keys;
 * parsing and lookups are O(n log n) and O(log n) in them (duplicate checks
 * sort, lookups bisect). Every error names the file and what was wrong. */
#ifndef CN_IO_SAFETENSORS_H
#define CN_IO_SAFETENSORS_H
#include "convnet.h"
#include <stddef.h>
#include <stdint.h>

#define CN_ST_MAX_NAME 127                       /* bytes, excluding the NUL */
#define CN_ST_MAX_DIMS 8
#define CN_ST_MAX_HEADER ((uint64_t)100 * 1000 * 1000) /* 100 MB */
#define CN_ST_MAX_TENSORS 100000                 /* a large language model has a few thousand */
#define CN_ST_MAX_METADATA 4096                  /* "__metadata__" keys; a checkpoint writes about 12 */

typedef struct {
    char name[CN_ST_MAX_NAME + 1];
    char dtype[8];                 /* "F32", "F64", "F16", "BF16", "I64", "I32", "I16", "I8", "U8", "BOOL" */
    int ndim;                      /* 0..8; 0 is a scalar (one element) */
    int64_t shape[CN_ST_MAX_DIMS];
    size_t offset, nbytes;         /* offset: into the data section */
} cn_st_tensor;

typedef struct cn_st_file cn_st_file;

/* Reads the whole file at `path` and validates it (see above). On success *out
 * owns a copy of the file; free it with cn_st_close. */
cn_status cn_st_open(const char *path, cn_st_file **out);
/* Same, from a buffer (copied; the caller keeps ownership of `data`).
 * `name_for_errors` prefixes error messages in place of a file name. */
cn_status cn_st_open_memory(const void *data, size_t size, const char *name_for_errors, cn_st_file **out);
void cn_st_close(cn_st_file *f);

/* Tensors in the order they appear in the header. */
int cn_st_count(const cn_st_file *f);
/* i in 0..count-1, else NULL. */
const cn_st_tensor *cn_st_get(const cn_st_file *f, int i);
/* NULL if there is no tensor with that name. */
const cn_st_tensor *cn_st_find(const cn_st_file *f, const char *name);
/* Start of the tensor's raw little-endian bytes (t->nbytes of them). The data
 * section is 64-byte aligned, but a tensor inside it may not be aligned to its
 * element size: copy with memcpy or use the cn_st_read_* helpers. */
const void *cn_st_data(const cn_st_file *f, const cn_st_tensor *t);
/* A "__metadata__" string value, or NULL. Valid until cn_st_close. */
const char *cn_st_metadata(const cn_st_file *f, const char *key);
/* Number of metadata entries, and the i-th key/value (NULL if out of range). */
int cn_st_metadata_count(const cn_st_file *f);
const char *cn_st_metadata_key(const cn_st_file *f, int i);

/* Bytes per element of a dtype name, or 0 if it is not a safetensors dtype. */
size_t cn_st_dtype_size(const char *dtype);
/* Number of elements of a tensor (product of its shape; 1 for a scalar). */
size_t cn_st_numel(const cn_st_tensor *t);

/* Reads tensor `name` as float32: F32 copied, F64/F16/BF16 converted; other
 * dtypes are CN_ERR_UNSUPPORTED. Its element count must equal expected_count
 * unless that is 0. On success *out is a new array (free() it; at least one
 * element is allocated) and *out_count (if not NULL) its length. */
cn_status cn_st_read_floats(const cn_st_file *f, const char *name, size_t expected_count,
                            float **out, size_t *out_count);
/* Same for float64 (F64 copied, F32/F16/BF16 widened). */
cn_status cn_st_read_doubles(const cn_st_file *f, const char *name, size_t expected_count,
                             double **out, size_t *out_count);
/* Same for integers: I64/I32/I16/I8/U8/BOOL widened to int64. */
cn_status cn_st_read_int64(const cn_st_file *f, const char *name, size_t expected_count,
                           int64_t **out, size_t *out_count);

typedef struct cn_st_writer cn_st_writer;

/* NULL (with cn_last_error set) if out of memory. */
cn_st_writer *cn_st_writer_new(void);
/* Adds a tensor; copies `data` (numel * dtype size bytes, host order = little-
 * endian). Tensors are written in the order added. Rejects unknown dtypes,
 * ndim outside 0..8, negative dimensions, empty/over-long/duplicate names,
 * names with control characters and the reserved name "__metadata__". `data` may be NULL only if numel is 0. */
cn_status cn_st_writer_add(cn_st_writer *w, const char *name, const char *dtype, int ndim,
                           const int64_t *shape, const void *data);
/* Sets a "__metadata__" string (replacing an earlier value for the same key). */
cn_status cn_st_writer_metadata(cn_st_writer *w, const char *key, const char *value);
/* Writes the file atomically (core/atomic_file.h): on any error the old file
 * at `path` is untouched and the temporary file is removed. */
cn_status cn_st_writer_save(cn_st_writer *w, const char *path);
/* Removes DIR/<name>.tmp.<pid> files (safetensors and PNG writers' temporaries)
 * and DIR/<name>.part.<pid> (downloads) whose process no longer exists: a run
 * killed inside a save leaves one, as large as the checkpoint. Files of live
 * processes stay. Returns how many were removed (errors are ignored: they are
 * only left-over files). */
int cn_remove_stale_temporaries(const char *dir);
void cn_st_writer_free(cn_st_writer *w);

#endif
