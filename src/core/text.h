/* A growing text: the spec an ONNX import writes, a safetensors JSON header, the C export's
 * sources. Appends keep it NUL-terminated; after a failed allocation or a size overflow
 * `failed` is set and later appends do nothing, so a writer checks once at the end.
 *
 *     cn_text t = {0};
 *     cn_text_printf(&t, "input %dx%dx%d\n", c, h, w);
 *     if (t.failed) ... out of memory;
 *     use t.p (NULL while nothing was appended), t.len; free(t.p);
 */
#ifndef CN_CORE_TEXT_H
#define CN_CORE_TEXT_H
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

typedef struct {
    char *p;            /* the text, NUL-terminated; owned (free it) */
    size_t len, cap;    /* bytes in it (not counting the NUL), bytes allocated */
    bool failed;
} cn_text;

/* Appends n bytes of s. */
void cn_text_put(cn_text *t, const char *s, size_t n);
/* Appends the string s. */
static inline void cn_text_puts(cn_text *t, const char *s) { cn_text_put(t, s, strlen(s)); }
/* Appends printf output. */
void cn_text_printf(cn_text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
