/* Error reporting inside the library: set a thread-local message, return a status. */
#ifndef CN_CORE_ERROR_H
#define CN_CORE_ERROR_H
#include "convnet.h"
#include <stdio.h>
#include <stdlib.h>

/* Formats the thread's error message and returns `status` (so: `return cn_fail(...)`). */
cn_status cn_fail(cn_status status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prefixes the current message with "prefix: " (adds context on the way up). */
void cn_error_prefix(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void cn_clear_error(void);

/* Always-on assertion for programmer errors (never for bad input). */
#define CN_ASSERT(cond) do { if (!(cond)) { \
    fprintf(stderr, "convnet: internal error at %s:%d: %s\n", __FILE__, __LINE__, #cond); \
    abort(); } } while (0)

#endif
