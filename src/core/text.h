/* A growable text buffer for building files and messages piece by piece.
 * Allocation failure or overflow sets `failed` and ignores further appends,
 * so a caller checks once at the end. p is NUL-terminated once anything was
 * appended (NULL before); free it with free(). */
#ifndef CN_CORE_TEXT_H
#define CN_CORE_TEXT_H
#include <stdbool.h>
#include <stddef.h>

typedef struct { char *p; size_t len, cap; bool failed; } cn_text;

void cn_text_put(cn_text *t, const char *s, size_t n);
void cn_text_str(cn_text *t, const char *s);
/* printf-style append, any length. */
void cn_text_printf(cn_text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
