/* Progress display: a bar redrawn in place on a terminal (CN_NOTE_PROGRESS notes, when the
 * program set cn_set_progress_columns)
 * ("train  312/469 [=======>   ] 11520 img/s  loss 0.0812  acc 97.41%  ETA 3s"),
 * nothing per batch otherwise (the caller prints one line per epoch). */
#ifndef CN_PROGRESS_H
#define CN_PROGRESS_H
#include <stdint.h>

typedef struct {
    const char *label;
    long total;
    int enabled;                /* progress notes wanted (cn_set_progress_columns) and not quiet */
    double start, last_draw;
} cn_progress;

double cn_now_seconds(void);
void cn_progress_begin(cn_progress *p, const char *label, long total, int quiet);
/* done: units finished; images: images processed; loss/acc < 0 to omit. */
void cn_progress_update(cn_progress *p, long done, long images, double loss, double acc);
/* Clears the bar line. */
void cn_progress_end(cn_progress *p);

/* Width of the terminal progress is drawn for (cn_set_progress_columns; 80 if unset). */
int cn_terminal_columns(void);
/* Redraws `line` in place (a CN_NOTE_PROGRESS note), cut to the terminal width so it never
 * wraps (a wrapped line cannot be redrawn with \r). */
void cn_progress_draw_line(const char *line);

#endif
