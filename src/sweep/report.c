/* A sweep's reports (sweep.h): sweep.csv, sweep.md and sweep.png. */
#include "sweep/sweep.h"
#include "core/error.h"
#include "core/mem.h"
#include "core/atomic_file.h"
#include "io/plot.h"
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Statistics of one setting's finished runs (its seeds). */
typedef struct {
    int setting, n;
    double mean, std, worst, best, mean_best, seconds;
    double mean_test;       /* mean final test accuracy (with a validation split: for the record) */
} setting_stats;

static setting_stats stats_of(const cn_sweep_plan *p, const cn_sweep_result *results, int s) {
    int seeds = p->seed_last - p->seed_first + 1;
    setting_stats t = {.setting = s, .worst = INFINITY, .best = -INFINITY};
    double sum = 0, sq = 0;
    for (int k = 0; k < seeds; k++) {
        const cn_sweep_result *r = &results[s * seeds + k];
        if (!r->done) continue;
        t.n++;
        sum += r->final_acc;
        t.mean_best += r->best_acc;
        t.mean_test += r->final_test_acc;
        t.seconds += r->seconds;
        t.worst = fmin(t.worst, r->final_acc);
        t.best = fmax(t.best, r->final_acc);
    }
    if (!t.n) { t.mean = t.worst = t.best = NAN; return t; }
    t.mean = sum / t.n;
    for (int k = 0; k < seeds; k++) {
        const cn_sweep_result *r = &results[s * seeds + k];
        if (r->done) sq += (r->final_acc - t.mean) * (r->final_acc - t.mean);
    }
    t.std = t.n > 1 ? sqrt(sq / (t.n - 1)) : 0;   /* sample std, as bench/accuracy.sh */
    t.mean_best /= t.n;
    t.mean_test /= t.n;
    t.seconds /= t.n;
    return t;
}

/* 1 when the runs were scored on a validation split (any finished run says so). */
static int on_validation(const cn_sweep_plan *p, const cn_sweep_result *results) {
    for (int i = 0; i < cn_sweep_runs(p); i++) if (results[i].done && results[i].on_val) return 1;
    return 0;
}

/* Starts the atomic write of the report out/name, a text (see cn_atomic_begin_text). */
static cn_status begin_report(cn_atomic_file *af, const char *out, const char *name, FILE **f) {
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", out, name);
    return cn_atomic_begin_text(af, path, f);
}

static cn_status write_csv(const char *out, const cn_sweep_plan *p, const cn_sweep_result *results) {
    cn_atomic_file af;
    FILE *f;
    if (begin_report(&af, out, "sweep.csv", &f)) return CN_ERR_IO;
    int seeds = p->seed_last - p->seed_first + 1, val = on_validation(p, results);
    fprintf(f, "setting");
    for (int k = 0; k < p->keys_count; k++) fprintf(f, ",%s", p->keys[k]);
    fprintf(f, val ? ",seed,status,epochs,final_val_acc,best_val_acc,best_epoch,seconds,final_test_acc\n"
                   : ",seed,status,epochs,final_acc,best_acc,best_epoch,seconds\n");
    for (int i = 0; i < cn_sweep_runs(p); i++) {
        const cn_sweep_setting *s = &p->settings[i / seeds];
        const cn_sweep_result *r = &results[i];
        fprintf(f, "\"%s\"", s->name);
        for (int k = 0; k < p->keys_count; k++) {
            const char *v = cn_sweep_value(s, p->keys[k]);
            fprintf(f, v && strchr(v, ',') ? ",\"%s\"" : ",%s", v ? v : "");
        }
        if (r->done) fprintf(f, ",%d,done,%d,%.4f,%.4f,%d,%.1f", p->seed_first + i % seeds, r->epochs, r->final_acc,
                             r->best_acc, r->best_epoch, r->seconds);
        else fprintf(f, ",%d,failed,,,,,", p->seed_first + i % seeds);
        if (val && r->done) fprintf(f, ",%.4f", r->final_test_acc);
        else if (val) fprintf(f, ",");
        fprintf(f, "\n");
    }
    return cn_atomic_commit(&af);
}

static int by_mean_desc(const void *a, const void *b) {
    const setting_stats *x = a, *y = b;
    if (isnan(x->mean) || isnan(y->mean)) return isnan(x->mean) - isnan(y->mean);
    return (x->mean < y->mean) - (x->mean > y->mean);
}

static cn_status write_md(const char *out, const cn_sweep_plan *p, const setting_stats *sorted, int val) {
    cn_atomic_file af;
    FILE *f;
    if (begin_report(&af, out, "sweep.md", &f)) return CN_ERR_IO;
    if (val)
        fprintf(f, "# Sweep\n\nFinal-epoch validation accuracy (--val-split) over seeds %d-%d (mean ± sample std, and "
                   "the worst seed), best setting first; best-epoch accuracy is the mean over seeds of each run's best "
                   "epoch on the validation split. The final test accuracy (mean over seeds) is for the record, not "
                   "for ranking.\n\n| setting | runs | final val acc %% | worst %% | best-epoch val acc %% | wall s/run | "
                   "final test acc %% |\n|---|---|---|---|---|---|---|\n", p->seed_first, p->seed_last);
    else
        fprintf(f, "# Sweep\n\nFinal-epoch test accuracy over seeds %d-%d (mean ± sample std, and the worst seed), "
                   "best setting first; best-epoch accuracy is the mean over seeds of each run's best epoch.\n\n"
                   "| setting | runs | final acc %% | worst %% | best-epoch acc %% | wall s/run |\n|---|---|---|---|---|---|\n",
                p->seed_first, p->seed_last);
    for (int i = 0; i < p->settings_count; i++) {
        const setting_stats *t = &sorted[i];
        const char *name = p->settings[t->setting].name;
        if (!t->n) { fprintf(f, val ? "| %s | 0 | failed | | | | |\n" : "| %s | 0 | failed | | | |\n", name); continue; }
        fprintf(f, "| %s | %d | %.2f ± %.2f | %.2f | %.2f | %.0f |", name, t->n, t->mean, t->std, t->worst,
                t->mean_best, t->seconds);
        if (val) fprintf(f, " %.2f |", t->mean_test);
        fprintf(f, "\n");
    }
    return cn_atomic_commit(&af);
}

/* Index of value v in vals[0..*n), appended when new; -1 when full. */
static int index_of(const char **vals, int *n, int max, const char *v) {
    for (int i = 0; i < *n; i++) if (!strcmp(vals[i], v)) return i;
    if (*n >= max) return -1;
    vals[*n] = v;
    return (*n)++;
}

/* The setting's name without its first key: its series in the plot. */
static void series_name(const cn_sweep_setting *s, char *buf, size_t size) {
    buf[0] = '\0';
    for (int k = 1; k < s->count; k++) {
        size_t n = strlen(buf);
        snprintf(buf + n, size - n, "%s%s", n ? "," : "", s->tokens[k]);
    }
    if (!buf[0]) snprintf(buf, size, "all seeds");
}

/* sweep.png: final accuracy against the first key's values, a line per rest of the setting. */
static cn_status write_plot(const char *out, const cn_sweep_plan *p, const setting_stats *stats, int val) {
    enum { MAX_X = 50, MAX_S = 8 };
    const char *xs[MAX_X], *ss[MAX_S];
    char names[MAX_S][800];
    int nx = 0, ns = 0;
    double mean[MAX_S * MAX_X], lo[MAX_S * MAX_X], hi[MAX_S * MAX_X];
    for (int i = 0; i < MAX_S * MAX_X; i++) mean[i] = lo[i] = hi[i] = NAN;
    for (int i = 0; i < p->settings_count; i++) {
        const cn_sweep_setting *s = &p->settings[i];
        char name[800];
        series_name(s, name, sizeof name);
        int k = 0;
        while (k < ns && strcmp(names[k], name)) k++;
        if (k == ns && ns < MAX_S) { snprintf(names[ns], sizeof names[0], "%s", name); ss[ns] = names[ns]; ns++; }
        const char *first = strchr(s->tokens[0], '=') + 1;
        int x = index_of(xs, &nx, MAX_X, first);
        if (k >= MAX_S || x < 0)
            return cn_fail(CN_ERR_ARG, "sweep.png: at most %d values of %s and %d settings of the other keys", MAX_X,
                           p->keys[0], MAX_S);
        mean[k * MAX_X + x] = stats[i].mean;
        lo[k * MAX_X + x] = stats[i].worst;
        hi[k * MAX_X + x] = stats[i].best;
    }
    /* pack the rows to nx columns */
    for (int k = 0; k < ns; k++)
        for (int x = 0; x < nx; x++) {
            mean[k * nx + x] = mean[k * MAX_X + x];
            lo[k * nx + x] = lo[k * MAX_X + x];
            hi[k * nx + x] = hi[k * MAX_X + x];
        }
    char path[4200], title[200];
    snprintf(path, sizeof path, "%s/sweep.png", out);
    snprintf(title, sizeof title, "sweep: final %s accuracy against %s (mean, worst to best seed)", val ? "validation" : "test",
             p->keys[0]);
    return cn_plot_sweep(path, title, p->keys[0], nx, xs, ns, ss, mean, lo, hi);
}

cn_status cn_sweep_write_reports(const char *out_dir, const cn_sweep_plan *p, const cn_sweep_result *results) {
    setting_stats *stats = cn_calloc(p->settings_count, sizeof *stats), *sorted = cn_calloc(p->settings_count, sizeof *sorted);
    if (!stats || !sorted) { free(stats); free(sorted); return CN_ERR_NOMEM; }
    for (int i = 0; i < p->settings_count; i++) stats[i] = stats_of(p, results, i);
    memcpy(sorted, stats, (size_t)p->settings_count * sizeof *stats);
    qsort(sorted, p->settings_count, sizeof *sorted, by_mean_desc);
    int val = on_validation(p, results);
    cn_status st = write_csv(out_dir, p, results);
    if (!st) st = write_md(out_dir, p, sorted, val);
    if (!st) st = write_plot(out_dir, p, stats, val);
    free(stats);
    free(sorted);
    return st;
}
