/* The CLI's progress display on stderr: a bar redrawn in place on a terminal
 * ("train  312/469 [=======>   ] 11520 img/s  loss 0.0812  acc 97.41%  ETA 3s"),
 * nothing per batch otherwise (the caller prints one line per epoch). */
#ifndef CONVNET_CLI_PROGRESS_H
#define CONVNET_CLI_PROGRESS_H
#include <stdint.h>

typedef struct {
    const char *label;
    long total;
    int enabled;                /* stderr is a TTY and not quiet */
    double start, last_draw;
} cli_progress;

void cli_progress_begin(cli_progress *p, const char *label, long total, int quiet);
/* done: units finished; images: images processed; loss/acc < 0 to omit. */
void cli_progress_update(cli_progress *p, long done, long images, double loss, double acc);
/* Clears the bar line (once; later updates draw nothing until the next begin). */
void cli_progress_end(cli_progress *p);

/* Width of the terminal on stderr (80 if unknown). */
int cli_terminal_columns(void);
/* Redraws `line` in place on stderr, cut to the terminal width so it never
 * wraps (a wrapped line cannot be redrawn with \r). */
void cli_progress_draw_line(const char *line);

#endif
