#include "core/mem.h"
#include "core/error.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void *cn_calloc(size_t count, size_t size) {
    size_t bytes;
    if (!cn_mul_ok(count, size, &bytes) || bytes > CN_MAX_ALLOC) {
        cn_fail(CN_ERR_NOMEM, "allocation of %zu x %zu bytes exceeds the %zu-byte limit",
                count, size, CN_MAX_ALLOC);
        return NULL;
    }
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p) cn_fail(CN_ERR_NOMEM, "out of memory allocating %zu bytes", bytes);
    return p;
}

float *cn_alloc_floats(size_t count) {
    size_t bytes;
    if (!cn_mul_ok(count ? count : 1, sizeof(float), &bytes) || bytes > CN_MAX_ALLOC) {
        cn_fail(CN_ERR_NOMEM, "allocation of %zu floats exceeds the %zu-byte limit", count, CN_MAX_ALLOC);
        return NULL;
    }
    bytes = (bytes + 63) & ~(size_t)63;
    /* calloc rather than aligned_alloc + memset: a large block comes zeroed from fresh
     * pages that are not touched, so memory that is never used (activation slots of
     * fused layers) stays out of the resident set. The block's start is kept just
     * before the aligned pointer, for cn_free_aligned. */
    unsigned char *raw = calloc(1, bytes + 64 + sizeof(void *));
    if (!raw) { cn_fail(CN_ERR_NOMEM, "out of memory allocating %zu bytes", bytes); return NULL; }
    uintptr_t aligned = ((uintptr_t)raw + sizeof(void *) + 63) & ~(uintptr_t)63;
    ((void **)aligned)[-1] = raw;
    return (float *)aligned;
}

void cn_free_aligned(void *p) {
    if (p) free(((void **)p)[-1]);
}
