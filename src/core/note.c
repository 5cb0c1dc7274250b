#include "core/note.h"
#include <stdarg.h>
#include <stdio.h>

static cn_note_fn note_fn;
static void *note_user;

void cn_set_note_handler(cn_note_fn fn, void *user) {
    note_fn = fn;
    note_user = user;
}

int cn_note_wanted(void) { return note_fn != NULL; }

void cn_note(cn_note_kind kind, const char *fmt, ...) {
    if (!note_fn) return;
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    note_fn(note_user, kind, text);
}
