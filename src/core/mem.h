/* Checked allocation and overflow-checked size arithmetic. */
#ifndef CN_CORE_MEM_H
#define CN_CORE_MEM_H
#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

/* Largest single allocation convnet makes from file-declared sizes (2 GiB). */
#define CN_MAX_ALLOC ((size_t)2 << 30)

/* Allocate zeroed memory, or NULL with cn_last_error set (count*size checked). */
void *cn_calloc(size_t count, size_t size);
/* 64-byte aligned allocation for SIMD buffers, zeroed; free with cn_free_aligned. */
float *cn_alloc_floats(size_t count);
void cn_free_aligned(void *p);

/* a*b and a+b into *out; false on overflow. */
static inline bool cn_mul_ok(size_t a, size_t b, size_t *out) { return !__builtin_mul_overflow(a, b, out); }
static inline bool cn_add_ok(size_t a, size_t b, size_t *out) { return !__builtin_add_overflow(a, b, out); }

#endif
