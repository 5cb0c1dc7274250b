#include "progress.h"
#include "core/note.h"
#include <stdio.h>
#include <time.h>
#include <string.h>

double cn_now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void cn_progress_begin(cn_progress *p, const char *label, long total, int quiet) {
    p->label = label;
    p->total = total > 0 ? total : 1;
    p->enabled = !quiet && cn_progress_columns() > 0;
    p->start = cn_now_seconds();
    p->last_draw = 0.0;
}

int cn_terminal_columns(void) { return cn_progress_columns() > 0 ? cn_progress_columns() : 80; }

void cn_progress_draw_line(const char *line) {
    int width = cn_terminal_columns() - 1;
    cn_note(CN_NOTE_PROGRESS, "\r\033[K%.*s", width > 0 ? width : 0, line);
}

void cn_progress_update(cn_progress *p, long done, long images, double loss, double acc) {
    if (!p->enabled) return;
    double now = cn_now_seconds();
    if (done < p->total && now - p->last_draw < 0.1) return;   /* at most 10 redraws per second */
    p->last_draw = now;
    double elapsed = now - p->start, rate = elapsed > 0 ? images / elapsed : 0.0;
    double eta = done > 0 ? elapsed * (double)(p->total - done) / (double)done : 0.0;
    /* Fields after the bar; the bar takes what the terminal width leaves (up to 24). */
    char tail[160], line[320];
    int n = snprintf(tail, sizeof tail, " %.0f img/s", rate);
    if (loss >= 0) n += snprintf(tail + n, sizeof tail - n, "  loss %.4f", loss);
    if (acc >= 0) n += snprintf(tail + n, sizeof tail - n, "  acc %.2f%%", acc);
    snprintf(tail + n, sizeof tail - n, "  ETA %.0fs", eta);
    char head[64];
    snprintf(head, sizeof head, "%s %ld/%ld ", p->label, done, p->total);
    int bar_width = cn_terminal_columns() - 1 - (int)strlen(head) - (int)strlen(tail) - 2;
    if (bar_width > 24) bar_width = 24;
    if (bar_width >= 5) {
        char bar[25];
        int filled = (int)((double)bar_width * (double)done / (double)p->total);
        for (int i = 0; i < bar_width; i++) bar[i] = i < filled ? '=' : (i == filled ? '>' : ' ');
        bar[bar_width] = '\0';
        snprintf(line, sizeof line, "%s[%s]%s", head, bar, tail);
    } else {
        snprintf(line, sizeof line, "%s%s", head, tail);
    }
    cn_progress_draw_line(line);
}

void cn_progress_end(cn_progress *p) {
    if (!p->enabled) return;
    cn_note(CN_NOTE_PROGRESS, "\r\033[K");
}
