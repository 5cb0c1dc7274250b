/* The note handler (core/note.h): one per process, set by the program. */
#include "core/note.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdatomic.h>

/* Set once at start-up by the program; read from any thread (training threads, sweep children). */
static cn_note_handler handler;
static void *handler_user;

void cn_set_note_handler(cn_note_handler fn, void *user) {
    handler_user = user;
    handler = fn;
    atomic_thread_fence(memory_order_release);
}

int cn_note_wanted(void) { return handler != NULL; }

static int progress_columns;

void cn_set_progress_columns(int columns) { progress_columns = columns > 0 ? columns : 0; }

int cn_progress_columns(void) { return progress_columns; }

void cn_note_handler_get(cn_note_handler *fn, void **user) {
    *fn = handler;
    *user = handler_user;
}

void cn_note(cn_note_kind kind, const char *fmt, ...) {
    cn_note_handler fn = handler;
    if (!fn) return;
    char text[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    fn(kind, text, handler_user);
}
