#include "progress.h"
#include <stdio.h>
#include <time.h>
#include <unistd.h>

double cn_now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void cn_progress_begin(cn_progress *p, const char *label, long total, int quiet) {
    p->label = label;
    p->total = total > 0 ? total : 1;
    p->enabled = !quiet && isatty(STDERR_FILENO);
    p->start = cn_now_seconds();
    p->last_draw = 0.0;
}

void cn_progress_update(cn_progress *p, long done, long images, double loss, double acc) {
    if (!p->enabled) return;
    double now = cn_now_seconds();
    if (done < p->total && now - p->last_draw < 0.1) return;   /* at most 10 redraws per second */
    p->last_draw = now;
    double elapsed = now - p->start, rate = elapsed > 0 ? images / elapsed : 0.0;
    double eta = done > 0 ? elapsed * (double)(p->total - done) / (double)done : 0.0;
    enum { WIDTH = 24 };
    char bar[WIDTH + 1];
    int filled = (int)((double)WIDTH * (double)done / (double)p->total);
    for (int i = 0; i < WIDTH; i++) bar[i] = i < filled ? '=' : (i == filled ? '>' : ' ');
    bar[WIDTH] = '\0';
    fprintf(stderr, "\r\033[K%-6s %5ld/%-5ld [%s] %6.0f img/s", p->label, done, p->total, bar, rate);
    if (loss >= 0) fprintf(stderr, "  loss %.4f", loss);
    if (acc >= 0) fprintf(stderr, "  acc %6.2f%%", acc);
    fprintf(stderr, "  ETA %.0fs", eta);
    fflush(stderr);
}

void cn_progress_end(cn_progress *p) {
    if (!p->enabled) return;
    fprintf(stderr, "\r\033[K");
    fflush(stderr);
}
