/* Running a sweep (sweep.h): which runs are finished, running the others (several
 * processes at once, or shared over the ranks of an mpirun job), and their results. */
#include "sweep/sweep.h"
#include "core/error.h"
#include "core/mem.h"
#include "core/note.h"
#include "core/atomic_file.h"
#include "progress.h"
#include <errno.h>
#include <signal.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* The output directory of run i: <out>/<setting>,seed=<seed>. */
static void run_dir(const cn_sweep_options *o, const cn_sweep_plan *p, int i, char *buf, size_t size) {
    int seeds = p->seed_last - p->seed_first + 1;
    snprintf(buf, size, "%s/%s,seed=%d", o->out_dir, p->settings[i / seeds].name, p->seed_first + i % seeds);
    for (char *c = buf + strlen(o->out_dir) + 1; *c; c++) if (*c == '/') *c = '_';
}

/* Final and best accuracy from a finished run's metrics.csv: of the validation split when
 * the run had one (columns epoch,lr,train_loss,train_acc,test_loss,test_acc,val_loss,
 * val_acc,seconds; val_* empty without a split), else of the test set. */
static bool read_metrics(const char *dir, cn_sweep_result *r) {
    char path[4200], line[512];
    snprintf(path, sizeof path, "%s/metrics.csv", dir);
    FILE *f = fopen(path, "r");
    if (!f) return false;
    r->epochs = 0;
    r->best_acc = -1;
    r->on_val = 0;
    while (fgets(line, sizeof line, f)) {
        int epoch;
        double lr, tl, ta, sl, test_acc, val_loss, val_acc;
        if (sscanf(line, "%d,%lg,%lg,%lg,%lg,%lg", &epoch, &lr, &tl, &ta, &sl, &test_acc) != 6) continue;
        const char *after_test = line;   /* past the 6th comma: val_loss,val_acc,seconds */
        for (int commas = 0; commas < 6 && after_test; commas++) {
            after_test = strchr(after_test, ',');
            if (after_test) after_test++;
        }
        bool has_val = after_test && sscanf(after_test, "%lg,%lg", &val_loss, &val_acc) == 2;
        double acc = has_val ? val_acc : test_acc;
        r->on_val = has_val;
        r->epochs = epoch;
        r->final_acc = acc;
        r->final_test_acc = test_acc;
        if (acc > r->best_acc) { r->best_acc = acc; r->best_epoch = epoch; }
    }
    fclose(f);
    return r->epochs > 0;
}

/* A finished run's `result` file: "seconds". */
static bool read_result(const char *dir, cn_sweep_result *r) {
    char path[4200];
    snprintf(path, sizeof path, "%s/result", dir);
    FILE *f = fopen(path, "r");
    if (!f) return false;
    bool ok = fscanf(f, "seconds %lg", &r->seconds) == 1;
    fclose(f);
    r->done = ok && read_metrics(dir, r);
    return r->done;
}

static cn_status write_result(const char *dir, double seconds) {
    char path[4200];
    snprintf(path, sizeof path, "%s/result", dir);
    cn_atomic_file af;
    FILE *f;
    if (cn_atomic_begin_text(&af, path, &f)) return CN_ERR_IO;
    fprintf(f, "seconds %.3f\n", seconds);
    return cn_atomic_commit(&af);
}

/* While a run trains: its log lines (CN_NOTE_INFO) go to its train.log, other notes to the
 * program's handler as before. */
typedef struct {
    FILE *log;
    cn_note_handler outer;
    void *outer_user;
} run_log;

static void note_to_log(cn_note_kind kind, const char *text, void *user) {
    run_log *l = user;
    if (kind == CN_NOTE_INFO) {
        fprintf(l->log, "%s\n", text);
        fflush(l->log);
    } else if (l->outer) {
        l->outer(kind, text, l->outer_user);
    }
}

/* Trains run i in this process, its log into <dir>/train.log; writes `result` when done. */
static cn_status train_one(const cn_sweep_options *o, const cn_sweep_plan *p, int i, const char *dir) {
    int seeds = p->seed_last - p->seed_first + 1;
    cn_train_options t = o->base;
    cn_status st = cn_sweep_apply(&p->settings[i / seeds], (uint64_t)(p->seed_first + i % seeds), &t);
    if (st) return st;
    char last[4200], log[4200];
    snprintf(last, sizeof last, "%s/last.safetensors", dir);
    snprintf(log, sizeof log, "%s/train.log", dir);
    t.out_dir = dir;
    t.exchange = NULL;
    t.quiet = 1;
    t.threads = o->base.threads > 0 ? o->base.threads : 1;
    t.stop_requested = o->stop_requested;
    if (access(last, R_OK) == 0) {   /* an interrupted run goes on, with the model its checkpoint stores */
        t.resume = last;
        t.model = NULL;
    }
    if (mkdir(o->out_dir, 0777) && errno != EEXIST) return cn_fail(CN_ERR_IO, "%s: cannot create: %s", o->out_dir, strerror(errno));
    if (mkdir(dir, 0777) && errno != EEXIST) return cn_fail(CN_ERR_IO, "%s: cannot create: %s", dir, strerror(errno));
    /* the run's lines go to its log, not between the sweep's (one run at a time in this
     * process: a child of run_children, or run_here's loop) */
    run_log rl = {.log = fopen(log, "a")};
    if (!rl.log) return cn_fail(CN_ERR_IO, "%s: cannot write: %s", log, strerror(errno));
    cn_note_handler_get(&rl.outer, &rl.outer_user);
    cn_set_note_handler(note_to_log, &rl);
    double t0 = cn_now_seconds();
    st = cn_train(&t);
    cn_set_note_handler(rl.outer, rl.outer_user);
    if (fclose(rl.log) && !st) st = cn_fail(CN_ERR_IO, "%s: cannot write: %s", log, strerror(errno));
    if (st) {
        cn_error_prefix("%s", dir);
        return st;
    }
    return write_result(dir, cn_now_seconds() - t0);
}

static void report_run(const cn_sweep_options *o, const char *dir, const cn_sweep_result *r, bool interrupted,
                       int finished, int total) {
    if (o->quiet) return;
    if (interrupted && !r->done) cn_note(CN_NOTE_INFO, "sweep: [%d/%d] %s: interrupted (resumes when the sweep runs again)", finished, total, dir);
    else if (r->done && r->on_val)
        cn_note(CN_NOTE_INFO, "sweep: [%d/%d] %s: final val %.2f%%, best val %.2f%% (epoch %d), final test %.2f%%, %.0f s", finished,
               total, dir, r->final_acc, r->best_acc, r->best_epoch, r->final_test_acc, r->seconds);
    else if (r->done)
        cn_note(CN_NOTE_INFO, "sweep: [%d/%d] %s: final %.2f%%, best %.2f%% (epoch %d), %.0f s", finished, total, dir, r->final_acc,
               r->best_acc, r->best_epoch, r->seconds);
    else cn_note(CN_NOTE_INFO, "sweep: [%d/%d] %s: FAILED (see %s/train.log)", finished, total, dir, dir);
}

/* Runs `todo` (run indices) `jobs` at a time, each in a child process. */
static cn_status run_children(const cn_sweep_options *o, const cn_sweep_plan *p, const int *todo, int n, int jobs,
                              cn_sweep_result *results, int *finished) {
    pid_t *pids = cn_calloc(n ? n : 1, sizeof *pids);
    if (!pids) return CN_ERR_NOMEM;
    int started = 0, running = 0, total = cn_sweep_runs(p);
    bool forwarded = false;
    char dir[4200];
    while (started < n || running > 0) {
        while (running < jobs && started < n && !(o->stop_requested && *o->stop_requested)) {
            run_dir(o, p, todo[started], dir, sizeof dir);
            fflush(stdout);
            pid_t pid = fork();
            if (pid < 0) break;
            if (pid == 0) {
                cn_status st = train_one(o, p, todo[started], dir);
                if (st && st != CN_ERR_INTERRUPTED) cn_note(CN_NOTE_WARNING, "convnet sweep: %s", cn_last_error());
                _exit(st == CN_ERR_INTERRUPTED ? 130 : st ? 1 : 0);
            }
            pids[started++] = pid;
            running++;
        }
        if (!running) break;
        int status;
        pid_t pid = waitpid(-1, &status, WNOHANG);
        if (pid == 0) {
            /* a stop reaches the children too when it came from the terminal; a signal sent to
             * this process alone is passed on, so that each run saves its checkpoint */
            if (o->stop_requested && *o->stop_requested && !forwarded) {
                for (int k = 0; k < started; k++) kill(pids[k], SIGTERM);
                forwarded = true;
            }
            usleep(50000);
            continue;
        }
        if (pid < 0) { if (errno == EINTR) continue; break; }
        running--;
        for (int k = 0; k < started; k++) {
            if (pids[k] != pid) continue;
            run_dir(o, p, todo[k], dir, sizeof dir);
            read_result(dir, &results[todo[k]]);
            report_run(o, dir, &results[todo[k]], WIFEXITED(status) && WEXITSTATUS(status) == 130, ++*finished, total);
        }
    }
    free(pids);
    return o->stop_requested && *o->stop_requested ? CN_ERR_INTERRUPTED : CN_OK;
}

/* Under mpirun: this rank's runs (every R-th), one after the other in this process. */
static cn_status run_here(const cn_sweep_options *o, const cn_sweep_plan *p, const int *todo, int n,
                          cn_sweep_result *results, int *finished) {
    char dir[4200];
    for (int k = 0; k < n; k++) {
        run_dir(o, p, todo[k], dir, sizeof dir);
        cn_status st = train_one(o, p, todo[k], dir);
        if (st == CN_ERR_INTERRUPTED) return st;
        if (st && o->exchange->rank == 0 && !o->quiet) cn_note(CN_NOTE_WARNING, "convnet sweep: %s", cn_last_error());
        read_result(dir, &results[todo[k]]);
        if (o->exchange->rank == 0) report_run(o, dir, &results[todo[k]], false, ++*finished, cn_sweep_runs(p));
    }
    return CN_OK;
}

/* Every rank's results on every rank: each fills its own runs, the rest are zeros. */
static void collect(const cn_exchange *x, cn_sweep_result *results, int total) {
    enum { FIELDS = 8 };
    double *v = cn_calloc((size_t)total * FIELDS, sizeof *v);
    if (!v) return;
    for (int i = 0; i < total; i++) {
        const cn_sweep_result *r = &results[i];
        if (i % x->ranks != x->rank || !r->done) continue;
        double row[FIELDS] = {1, r->final_acc, r->best_acc, r->seconds, r->best_epoch, r->epochs, r->on_val, r->final_test_acc};
        memcpy(v + FIELDS * (size_t)i, row, sizeof row);
    }
    x->sum_doubles(x, v, (size_t)total * FIELDS);
    for (int i = 0; i < total; i++) {
        const double *row = v + FIELDS * (size_t)i;
        results[i] = (cn_sweep_result){.done = row[0] > 0, .final_acc = row[1], .best_acc = row[2], .seconds = row[3],
                                       .best_epoch = (int)row[4], .epochs = (int)row[5], .on_val = row[6] > 0,
                                       .final_test_acc = row[7]};
    }
    free(v);
}

cn_status cn_sweep(const cn_sweep_options *o, const cn_sweep_plan *p) {
    const cn_exchange *x = o->exchange && o->exchange->ranks > 1 ? o->exchange : NULL;
    int total = cn_sweep_runs(p), n = 0, finished = 0, failed = 0;
    cn_sweep_result *results = cn_calloc(total, sizeof *results);
    int *todo = cn_calloc(total, sizeof *todo);
    if (!results || !todo) { free(results); free(todo); return CN_ERR_NOMEM; }
    char dir[4200];
    for (int i = 0; i < total; i++) {
        if (x && i % x->ranks != x->rank) continue;
        run_dir(o, p, i, dir, sizeof dir);
        if (read_result(dir, &results[i])) finished++;     /* finished before: skipped */
        else todo[n++] = i;
    }
    int jobs = o->jobs > 0 ? o->jobs : omp_get_num_procs();
    if (!o->quiet && (!x || x->rank == 0))
        cn_note(CN_NOTE_INFO, "sweep: %d runs (%d settings x %d seeds), %s %d; writing %s/", total, p->settings_count,
               p->seed_last - p->seed_first + 1, x ? "ranks" : "at once", x ? x->ranks : jobs, o->out_dir);
    cn_status st = x ? run_here(o, p, todo, n, results, &finished)
                     : run_children(o, p, todo, n, jobs, results, &finished);
    if (x) {
        /* every rank reaches here, interrupted or not, so the collection cannot hang */
        collect(x, results, total);
        double stop = st == CN_ERR_INTERRUPTED;
        x->sum_doubles(x, &stop, 1);
        if (stop > 0) st = CN_ERR_INTERRUPTED;
    }
    for (int i = 0; i < total; i++) failed += !results[i].done;
    if (!st && (!x || x->rank == 0)) st = cn_sweep_write_reports(o->out_dir, p, results);
    /* rank 0 alone reports failed runs: another rank failing would abort the job (dist.h)
     * while rank 0 writes the reports */
    if (!st && failed && (!x || x->rank == 0)) st = cn_fail(CN_ERR_ARG, "%d of %d runs failed (see their train.log in %s)", failed, total, o->out_dir);
    free(results);
    free(todo);
    return st;
}
