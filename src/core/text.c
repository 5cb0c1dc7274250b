/* A growing text (see text.h). */
#include "core/text.h"
#include "core/mem.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Room for n more bytes and the NUL; false (and t->failed) when there is none to be had. */
static bool reserve(cn_text *t, size_t n) {
    if (t->failed) return false;
    size_t need, cap = t->cap ? t->cap : 256;
    bool ok = cn_add_ok(t->len, n, &need) && cn_add_ok(need, 1, &need);
    while (ok && cap < need) ok = cn_mul_ok(cap, 2, &cap);
    if (ok && need > t->cap) {
        char *p = realloc(t->p, cap);
        if (p) { t->p = p; t->cap = cap; }
        ok = p != NULL;
    }
    t->failed = !ok;
    return ok;
}

void cn_text_put(cn_text *t, const char *s, size_t n) {
    if (!reserve(t, n)) return;
    if (n) memcpy(t->p + t->len, s, n);
    t->len += n;
    t->p[t->len] = '\0';
}

void cn_text_printf(cn_text *t, const char *fmt, ...) {
    if (t->failed) return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) { t->failed = true; return; }
    if (!reserve(t, (size_t)n)) return;
    va_start(ap, fmt);
    vsnprintf(t->p + t->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    t->len += (size_t)n;
}
