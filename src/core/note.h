/* Notes: what the library has to say besides errors (warnings, download
 * progress), handed to the handler the program installed with
 * cn_set_note_handler (include/convnet.h). The library itself never prints. */
#ifndef CN_CORE_NOTE_H
#define CN_CORE_NOTE_H
#include "convnet.h"

/* Formats one line and passes it to the handler (nothing happens without one). */
void cn_note(cn_note_kind kind, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* 1 when a handler is installed (callers may skip building progress lines otherwise). */
int cn_note_wanted(void);

#endif
