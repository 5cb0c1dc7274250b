#include "core/mem.h"
#include "core/error.h"
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
    float *p = aligned_alloc(64, bytes);
    if (!p) { cn_fail(CN_ERR_NOMEM, "out of memory allocating %zu bytes", bytes); return NULL; }
    memset(p, 0, bytes);
    return p;
}

void cn_free_aligned(void *p) { free(p); }
