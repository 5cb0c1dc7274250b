#include "core/text.h"
#include "core/mem.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cn_text_put(cn_text *t, const char *s, size_t n) {
    if (t->failed) return;
    size_t need;
    if (!cn_add_ok(t->len, n + 1, &need)) { t->failed = true; return; }
    if (need > t->cap) {
        size_t ncap = t->cap ? t->cap : 256;
        while (ncap < need) { if (!cn_mul_ok(ncap, 2, &ncap)) { t->failed = true; return; } }
        char *p = realloc(t->p, ncap);
        if (!p) { t->failed = true; return; }
        t->p = p;
        t->cap = ncap;
    }
    memcpy(t->p + t->len, s, n);
    t->len += n;
    t->p[t->len] = '\0';
}

void cn_text_str(cn_text *t, const char *s) { cn_text_put(t, s, strlen(s)); }

void cn_text_printf(cn_text *t, const char *fmt, ...) {
    if (t->failed) return;
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) { t->failed = true; return; }
    if ((size_t)n < sizeof small) { cn_text_put(t, small, (size_t)n); return; }
    char *big = malloc((size_t)n + 1);
    if (!big) { t->failed = true; return; }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    cn_text_put(t, big, (size_t)n);
    free(big);
}
