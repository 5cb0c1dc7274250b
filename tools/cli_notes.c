/* The library's notes (convnet.h, cn_set_note_handler) printed as the CLI prints them:
 * log lines on stdout, warnings on stderr, progress bars redrawn in place on stderr. */
#include "cli_notes.h"
#include "convnet.h"
#include <stdio.h>
#include <sys/ioctl.h>
#include <unistd.h>

static void print_note(cn_note_kind kind, const char *text, void *user) {
    (void)user;
    switch (kind) {
    case CN_NOTE_INFO:
        fputs(text, stdout);
        fputc('\n', stdout);
        fflush(stdout);   /* the log stays in order with stderr, and reaches a sweep run's train.log before it ends */
        break;
    case CN_NOTE_WARNING:
        fputs(text, stderr);
        fputc('\n', stderr);
        break;
    case CN_NOTE_PROGRESS:
        fputs(text, stderr);
        fflush(stderr);
        break;
    }
}

void cli_notes_install(void) {
    cn_set_note_handler(print_note, NULL);
    if (isatty(STDERR_FILENO)) {   /* progress bars on a terminal only, as wide as it is */
        struct winsize ws;
        cn_set_progress_columns(ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0 ? ws.ws_col : 80);
    }
}
