/* Messages of the library for a person (progress, warnings, the training log): the
 * library never prints; it hands each message to the note handler the program set with
 * cn_set_note_handler (convnet.h), and drops it when none is set. */
#ifndef CN_CORE_NOTE_H
#define CN_CORE_NOTE_H
#include "convnet.h"

/* Formats one message and hands it to the handler (see cn_note_kind in convnet.h for
 * what each kind's text holds). Messages longer than 8 kB are cut. */
void cn_note(cn_note_kind kind, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* 1 when a handler is set (callers may skip building a message nobody reads). */
int cn_note_wanted(void);
/* cn_set_progress_columns's value: 0, or the width progress lines are drawn for. */
int cn_progress_columns(void);
/* The handler now set (for one that passes some notes on to it, e.g. a sweep run's log). */
void cn_note_handler_get(cn_note_handler *fn, void **user);

#endif
