/* The training loop. Randomness is a pure function of (seed, epoch, batch):
 * the epoch's order, its augmentation and each batch's dropout masks, so a
 * run interrupted anywhere resumes bit-exactly from (epoch, batch). */
#include "train.h"
#include "train_resume.h"
#include "kernels/bf16.h"
#include "checkpoint.h"
#include "loss.h"
#include "optim.h"
#include "progress.h"
#include "lr_schedule.h"
#include "spec.h"
#include "core/atomic_file.h"
#include "core/dir_lock.h"
#include "core/error.h"
#include "core/file_open.h"
#include "core/note.h"
#include "core/mem.h"
#include "data/augment.h"
#include "data/catalog.h"
#include "data/loader.h"
#include "io/safetensors.h"
#include "io/plot.h"
#include "io/onnx.h"
#include <strings.h>
#include "summary.h"
#include <errno.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void cn_train_options_init(cn_train_options *o) {
    memset(o, 0, sizeof *o);
    o->seed = CN_SEED_UNSET;
    o->threads = 0;
    o->overrides.nesterov = -1;
    o->overrides.lr = o->overrides.momentum = o->overrides.weight_decay = o->overrides.label_smoothing = -1;
    o->overrides.gamma = o->overrides.factor = o->overrides.max_lr = o->overrides.pct_start = -1;
    o->overrides.div_factor = o->overrides.final_div_factor = -1;
    o->overrides.patience = -1;
}

/* Fills unset fields of `dst` from `src` (unset: 0 / "" / negative as in cn_train_options_init). */
static void recipe_fill(cn_recipe *dst, const cn_recipe *src) {
#define FILL_D(f) if (dst->f < 0) dst->f = src->f;
    if (!dst->optimizer[0]) memcpy(dst->optimizer, src->optimizer, sizeof dst->optimizer);
    if (!dst->scheduler[0]) memcpy(dst->scheduler, src->scheduler, sizeof dst->scheduler);
    if (!dst->augment[0]) memcpy(dst->augment, src->augment, sizeof dst->augment);
    if (dst->nesterov < 0) dst->nesterov = src->nesterov;
    if (dst->epochs <= 0) dst->epochs = src->epochs;
    if (dst->batch_size <= 0) dst->batch_size = src->batch_size;
    if (dst->step_size <= 0) dst->step_size = src->step_size;
    if (dst->patience < 0) dst->patience = src->patience;
    FILL_D(lr) FILL_D(momentum) FILL_D(weight_decay) FILL_D(label_smoothing) FILL_D(gamma) FILL_D(factor)
    FILL_D(max_lr) FILL_D(pct_start) FILL_D(div_factor) FILL_D(final_div_factor)
#undef FILL_D
}

/* The model's `train` line stores unset doubles as 0; make them "unset" (-1). */
static cn_recipe recipe_from_model(const cn_recipe *r) {
    cn_recipe out = *r;
    double *fields[] = {&out.lr, &out.momentum, &out.weight_decay, &out.label_smoothing, &out.gamma, &out.factor,
                        &out.max_lr, &out.pct_start, &out.div_factor, &out.final_div_factor};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) if (*fields[i] == 0) *fields[i] = -1;
    /* momentum=0 and weight_decay=0 written explicitly are indistinguishable from unset: both mean 0 */
    if (out.patience == 0) out.patience = -1;
    return out;
}

static cn_recipe builtin_defaults(void) {
    cn_recipe d;
    memset(&d, 0, sizeof d);
    snprintf(d.optimizer, sizeof d.optimizer, "sgd");
    snprintf(d.scheduler, sizeof d.scheduler, "none");
    snprintf(d.augment, sizeof d.augment, "none");
    d.lr = 0.01; d.momentum = 0.9; d.weight_decay = 0; d.label_smoothing = 0; d.nesterov = 0;
    d.epochs = 10; d.batch_size = 128; d.step_size = 10; d.gamma = 0.1; d.patience = 10; d.factor = 0.1;
    d.max_lr = -1; d.pct_start = 0.3; d.div_factor = 25; d.final_div_factor = 1e4;
    return d;
}

/* "key=value ..." of every resolved setting (stored in checkpoints, used by --resume). */
static void recipe_format(const cn_recipe *r, char *buf, size_t size) {
    snprintf(buf, size,
             "optimizer=%s lr=%.17g momentum=%.17g nesterov=%d weight_decay=%.17g label_smoothing=%.17g "
             "epochs=%d batch=%d scheduler=%s step_size=%d gamma=%.17g patience=%d factor=%.17g "
             "max_lr=%.17g pct_start=%.17g div_factor=%.17g final_div_factor=%.17g augment=%s",
             r->optimizer, r->lr, r->momentum, r->nesterov, r->weight_decay, r->label_smoothing, r->epochs,
             r->batch_size, r->scheduler, r->step_size, r->gamma, r->patience, r->factor, r->max_lr, r->pct_start,
             r->div_factor, r->final_div_factor, r->augment[0] ? r->augment : "none");
}

static uint64_t mix(uint64_t a, uint64_t b) {
    uint64_t z = a ^ (b + 0x9E3779B97F4A7C15ull + (a << 6) + (a >> 2));
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void shuffled_order(int *order, int n, uint64_t seed) {
    cn_rng rng;
    cn_rng_seed(&rng, seed);
    for (int i = 0; i < n; i++) order[i] = i;
    for (int i = n - 1; i > 0; i--) {
        int j = (int)cn_rng_below(&rng, (uint64_t)i + 1);
        int t = order[i]; order[i] = order[j]; order[j] = t;
    }
}

cn_status cn_check_input_shape(const cn_model *m, const cn_split *split, const char *what) {
    int channels = split->channels > 0 ? split->channels : 1;
    if (channels != m->input.c || split->rows != m->input.h || split->cols != m->input.w)
        return cn_fail(CN_ERR_SHAPE, "%s images are %dx%dx%d but the model expects %dx%dx%d", what, channels, split->rows,
                       split->cols, m->input.c, m->input.h, m->input.w);
    return CN_OK;
}

cn_status cn_check_model_fits(const cn_model *m, const cn_dataset *ds) {
    int classes = cn_model_num_classes(m);
    if (classes < ds->num_classes)
        return cn_fail(CN_ERR_SHAPE, "the model outputs %d classes but %s has %d", classes, ds->name, ds->num_classes);
    return cn_check_input_shape(m, ds->train.count ? &ds->train : &ds->test, ds->name);
}

/* Longest output directory: room is left for "/last.safetensors.tmp.<pid>" within PATH_MAX. */
#define MAX_OUT_DIR 4000

/* Creates dir and its parents. */
static cn_status make_dirs(const char *dir) {
    char path[MAX_OUT_DIR + 1];
    snprintf(path, sizeof path, "%s", dir);
    for (char *p = path + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(path, 0777) && errno != EEXIST) return cn_fail(CN_ERR_IO, "%s: cannot create directory: %s", path, strerror(errno));
        *p = '/';
    }
    if (mkdir(path, 0777) && errno != EEXIST) return cn_fail(CN_ERR_IO, "%s: cannot create directory: %s", path, strerror(errno));
    return CN_OK;
}

/* Checks that a 4 KB file can be written in dir (a full disk fails here, not after an epoch). */
static cn_status probe_writable(const char *dir) {
    char probe[MAX_OUT_DIR + 64];
    snprintf(probe, sizeof probe, "%s/.write-test.tmp.%d", dir, (int)getpid());   /* a stale one is swept as a temporary */
    cn_write_guard_enter();   /* a signal handler lets the probe finish and remove its file */
    FILE *f = fopen(probe, "wb");
    if (!f) {
        cn_write_guard_leave();
        return cn_fail(CN_ERR_IO, "%s: output directory is not writable: %s", dir, strerror(errno));
    }
    char block[4096] = {0};
    int ok = fwrite(block, 1, sizeof block, f) == sizeof block;
    ok = (fflush(f) == 0) && ok;
    ok = (fclose(f) == 0) && ok;
    unlink(probe);
    cn_write_guard_leave();
    if (!ok) return cn_fail(CN_ERR_IO, "%s: cannot write to the output directory (disk full?)", dir);
    return CN_OK;
}

typedef struct {
    int epoch;
    double lr, train_loss, train_acc, test_loss, test_acc, val_loss, val_acc, seconds;
} epoch_metrics;

/* Per-epoch curves for OUT/training_curves.png. */
typedef struct {
    int count;
    double *train_loss, *test_loss, *val_loss, *train_acc, *test_acc, *val_acc;
} history;

static cn_status history_init(history *h, int epochs) {
    memset(h, 0, sizeof *h);
    double **fields[] = {&h->train_loss, &h->test_loss, &h->val_loss, &h->train_acc, &h->test_acc, &h->val_acc};
    for (int i = 0; i < 6; i++) if (!(*fields[i] = cn_calloc(epochs + 1, sizeof(double)))) return CN_ERR_NOMEM;
    return CN_OK;
}

static void history_free(history *h) {
    free(h->train_loss); free(h->test_loss); free(h->val_loss); free(h->train_acc); free(h->test_acc); free(h->val_acc);
}

static void history_add(history *h, const epoch_metrics *e) {
    int i = h->count++;
    h->train_loss[i] = e->train_loss; h->test_loss[i] = e->test_loss; h->val_loss[i] = e->val_loss;
    h->train_acc[i] = e->train_acc; h->test_acc[i] = e->test_acc; h->val_acc[i] = e->val_acc;
}

/* Plots are a convenience: a failure is reported and training goes on. */
static void plot_curves(const char *out_dir, const char *model_name, const history *h, int has_val) {
    char path[4200], title[160];
    snprintf(path, sizeof path, "%s/training_curves.png", out_dir);
    snprintf(title, sizeof title, "%s: training curves", model_name);
    if (cn_plot_training_curves(path, title, h->count, h->train_loss, h->test_loss, has_val ? h->val_loss : NULL,
                                h->train_acc, h->test_acc, has_val ? h->val_acc : NULL))
        cn_note(CN_NOTE_WARNING, "convnet: warning: %s", cn_last_error());
}

/* Keeps the header and the first `epochs` rows of OUT/metrics.csv (for resume), or starts it. */
static cn_status metrics_open(const char *path, int keep_epochs, FILE **out, history *hist) {
    char *kept = NULL;
    size_t kept_len = 0;
    if (keep_epochs > 0) {
        FILE *old = fopen(path, "rb");
        if (old) {
            kept = cn_calloc(1 << 20, 1);
            if (!kept) { fclose(old); return CN_ERR_NOMEM; }
            char line[512];
            int lines = 0;
            while (lines <= keep_epochs && fgets(line, sizeof line, old)) {
                size_t n = strlen(line);
                epoch_metrics e;
                memset(&e, 0, sizeof e);
                if (lines > 0 && sscanf(line, "%d,%lg,%lg,%lg,%lg,%lg,%lg,%lg", &e.epoch, &e.lr, &e.train_loss, &e.train_acc,
                                        &e.test_loss, &e.test_acc, &e.val_loss, &e.val_acc) >= 6)
                    history_add(hist, &e);
                if (kept_len + n >= (1 << 20)) break;
                memcpy(kept + kept_len, line, n);
                kept_len += n;
                lines++;
            }
            fclose(old);
        }
    }
    FILE *f = fopen(path, "wb");
    if (!f) { free(kept); return cn_fail(CN_ERR_IO, "%s: cannot write: %s", path, strerror(errno)); }
    if (kept_len) fwrite(kept, 1, kept_len, f);
    else fprintf(f, "epoch,lr,train_loss,train_acc,test_loss,test_acc,val_loss,val_acc,seconds\n");
    free(kept);
    fflush(f);
    *out = f;
    return CN_OK;
}

static void metrics_write(FILE *f, const epoch_metrics *e, int has_val) {
    fprintf(f, "%d,%.9g,%.6f,%.4f,%.6f,%.4f,", e->epoch, e->lr, e->train_loss, e->train_acc, e->test_loss, e->test_acc);
    if (has_val) fprintf(f, "%.6f,%.4f,", e->val_loss, e->val_acc); else fprintf(f, ",,");
    fprintf(f, "%.3f\n", e->seconds);
    fflush(f);
}

typedef struct {
    cn_model *model;
    cn_session *session;    /* trains the model and evaluates it between epochs */
    cn_dataset data;
    cn_split val;
    int has_val;
    int val_split;          /* --val-split's count (0: none, or the dataset's own val/ split) */
    cn_recipe recipe;
    cn_optimizer opt;
    cn_scheduler sched;
    cn_augment aug;
    cn_checkpoint_info info;
    cn_train_state state;
    int start_epoch, start_batch;
    double partial_loss; long partial_correct, partial_seen;
    char out_dir[MAX_OUT_DIR + 1];
    int threads;
    uint64_t seed;
    int train_limit, test_limit;
    int *test_pred;         /* (test count) predicted classes of the last test evaluation, or NULL */
    int already_complete;   /* --resume of a run that has all its epochs: nothing to do */
    const cn_exchange *x;   /* data-parallel: the ranks (train.h), or NULL */
    bool lead;              /* rank 0 (or the only process): writes the files and prints */
    bool quiet;
    bool bf16;              /* --precision bf16: the training session's convolutions in mixed precision */
    /* the training loop's buffers: this rank's share of a batch */
    float *input, *grad;
    int *labels, *order;
    long steps;             /* batches per epoch */
    FILE *metrics;          /* OUT/metrics.csv (lead only) */
    history hist;
    cn_dir_lock lock;       /* on OUT for the whole run (lead only) */
} run;

static cn_status setup_optimizer(run *r) {
    cn_optimizer_kind kind;
    cn_status st = cn_optimizer_kind_parse(r->recipe.optimizer, &kind);
    if (st) return st;
    st = cn_optimizer_init(&r->opt, kind, r->model->num_params);
    if (st) return st;
    r->opt.lr = r->recipe.lr;
    r->opt.momentum = kind == CN_OPT_SGD ? r->recipe.momentum : 0.0;
    r->opt.nesterov = r->recipe.nesterov > 0;
    if (r->recipe.weight_decay >= 0 && (kind != CN_OPT_ADAMW || r->recipe.weight_decay > 0)) r->opt.weight_decay = r->recipe.weight_decay;
    if (r->opt.nesterov && r->opt.momentum <= 0) return cn_fail(CN_ERR_ARG, "nesterov needs a momentum > 0");
    return CN_OK;
}

static cn_status setup_scheduler(run *r, long steps_per_epoch) {
    cn_sched_kind kind;
    cn_status st = cn_sched_kind_parse(r->recipe.scheduler, &kind);
    if (st) return st;
    cn_scheduler *s = &r->sched;
    cn_sched_init(s, kind, r->recipe.lr);
    s->step_size = r->recipe.step_size;
    s->gamma = r->recipe.gamma;
    s->factor = r->recipe.factor;
    s->patience = r->recipe.patience;
    s->max_lr = r->recipe.max_lr > 0 ? r->recipe.max_lr : r->recipe.lr;
    s->pct_start = r->recipe.pct_start;
    s->div_factor = r->recipe.div_factor;
    s->final_div_factor = r->recipe.final_div_factor;
    s->total_steps = (long)r->recipe.epochs * steps_per_epoch;
    s->t_max = r->recipe.epochs;
    return cn_sched_start(s);
}

/* Applies the scheduler's lr (and OneCycle's momentum/beta1) to the optimizer. */
static void apply_schedule(run *r) {
    r->opt.lr = r->sched.lr;
    if (r->sched.kind == CN_SCHED_ONECYCLE && r->sched.momentum >= 0) {
        if (r->opt.kind == CN_OPT_SGD) { if (r->opt.momentum > 0) r->opt.momentum = r->sched.momentum; }
        else r->opt.beta1 = r->sched.momentum;
    }
}

static cn_status save_checkpoint(run *r, const char *name, int epoch, int batch, int with_state) {
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", r->out_dir, name);
    r->info.epoch = epoch;
    cn_train_state st = r->state;
    st.optimizer = &r->opt;
    st.scheduler = &r->sched;
    char cfg[700];
    recipe_format(&r->recipe, cfg, sizeof cfg);
    snprintf(st.config, sizeof st.config, "%s seed=%llu val_split=%d train_limit=%d test_limit=%d batch_index=%d "
             "partial_loss=%.17g partial_correct=%ld partial_seen=%ld",
             cfg, (unsigned long long)r->seed, r->val_split, r->train_limit, r->test_limit, batch,
             r->partial_loss, r->partial_correct, r->partial_seen);
    if (r->bf16) {   /* fp32 runs store nothing: their checkpoints stay as before */
        size_t n = strlen(st.config);
        snprintf(st.config + n, sizeof st.config - n, " precision=bf16");
    }
    cn_status s = cn_checkpoint_save(path, r->model, &r->info, with_state ? &st : NULL);
    if (s) cn_error_prefix("saving checkpoint");
    return s;
}

static void print_epoch(const run *r, const epoch_metrics *e, int test_count, int test_correct, int quiet) {
    (void)quiet;
    char val[80] = "";
    if (r->has_val) snprintf(val, sizeof val, "  val loss %.4f  acc %.2f%%", e->val_loss, e->val_acc);
    cn_note(CN_NOTE_INFO, "Epoch %d/%d  lr %.6g  train loss %.4f  acc %.2f%%%s  %.1f s\n"
            "Test set: Average loss: %.4f, Accuracy: %d/%d (%.2f%%)", e->epoch, r->recipe.epochs, e->lr, e->train_loss,
            e->train_acc, val, e->seconds, e->test_loss, test_correct, test_count, e->test_acc);
}

static void free_run(run *r) {
    cn_session_free(r->session);
    cn_model_free(r->model);
    cn_dataset_free(&r->data);
    if (r->has_val) cn_split_free(&r->val);
    cn_optimizer_free(&r->opt);
    free(r->test_pred);
}

static int has_suffix(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcasecmp(s + n - k, suffix);
}

/* --model: a preset or spec file (fresh weights from `seed`), or trained weights
 * to start from: a convnet checkpoint (.safetensors) or an ONNX model (.onnx).
 * Starting from weights resets the optimizer (fine-tuning); --resume continues. */
static cn_status load_initial_model(const char *name, uint64_t seed, cn_model **out) {
    if (has_suffix(name, ".safetensors")) {
        cn_checkpoint_info info;
        return cn_checkpoint_load(name, out, &info, NULL);
    }
    if (has_suffix(name, ".onnx")) return cn_onnx_import(name, out);
    return cn_model_load_spec(name, seed, out);
}

/* Resolves the model, settings, data and state of a new or resumed run. */
static cn_status prepare(run *r, const cn_train_options *o) {
    cn_status st;
    if (o->precision && strcmp(o->precision, "fp32") && strcmp(o->precision, "bf16"))
        return cn_fail(CN_ERR_ARG, "--precision %.40s: expected fp32 or bf16", o->precision);
    r->bf16 = o->precision && !strcmp(o->precision, "bf16");
    /* before any data is read; a resumed run after its checkpoint's settings, so that a
     * contradicting --precision is named as such on any CPU */
    if (r->bf16 && !o->resume && (st = cn_bf16_require())) return st;
    r->seed = o->seed == CN_SEED_UNSET ? 1 : o->seed;
    r->train_limit = o->train_limit;
    r->test_limit = o->test_limit;
    int val_count = o->val_split;
    const char *dataset = o->dataset ? o->dataset : "mnist";
    char stored_dataset[32];
    if (o->resume) {
        cn_resume_settings rs;
        if ((st = cn_resume_read(o, &rs))) return st;
        r->recipe = rs.recipe;
        r->seed = rs.seed;
        val_count = rs.val_split;
        r->train_limit = rs.train_limit;
        r->test_limit = rs.test_limit;
        r->start_batch = rs.batch_index;
        r->partial_loss = rs.partial_loss;
        r->partial_correct = rs.partial_correct;
        r->partial_seen = rs.partial_seen;
        r->bf16 = !strcmp(rs.precision, "bf16");
        if (r->bf16 && (st = cn_bf16_require())) return st;
        snprintf(stored_dataset, sizeof stored_dataset, "%s", rs.dataset);
        dataset = stored_dataset;
        if (o->overrides.epochs > 0) r->recipe.epochs = o->overrides.epochs;
        if (rs.epochs_done >= r->recipe.epochs) {   /* nothing to train: change nothing (metrics.csv and the plots were rewritten) */
            cn_note(CN_NOTE_INFO, "convnet: %s: the run is already complete (%ld epoch%s done, %d asked); nothing changed. "
                   "Pass --epochs N with N > %ld to train further.", o->resume, rs.epochs_done,
                   rs.epochs_done == 1 ? "" : "s", r->recipe.epochs, rs.epochs_done);
            r->already_complete = 1;
            return CN_OK;
        }
    } else {
        st = load_initial_model(o->model ? o->model : "seed001", r->seed, &r->model);
        if (st) return st;
        r->recipe = o->overrides;
        cn_recipe from_model = recipe_from_model(&r->model->recipe), defaults = builtin_defaults();
        recipe_fill(&r->recipe, &from_model);
        recipe_fill(&r->recipe, &defaults);
        if (r->recipe.max_lr <= 0) r->recipe.max_lr = r->recipe.lr;   /* OneCycle's peak defaults to --lr */
    }
    st = cn_augment_parse(r->recipe.augment, &r->aug);
    if (st) return st;
    cn_data_options data = o->data;
    data.name = dataset;
    data.dir = o->data_dir;
    data.allow_download = o->allow_download;
    cn_model *shape_of = r->model;
    if (!shape_of && !data.channels) {   /* resuming: the model is read below; its input shape is needed now */
        cn_checkpoint_info peek;
        st = cn_checkpoint_load(o->resume, &shape_of, &peek, NULL);
        if (st) return st;
    }
    if (!data.channels) {   /* --shape, when given, wins: a mismatch is reported below */
        data.channels = shape_of->input.c;
        data.rows = shape_of->input.h;
        data.cols = shape_of->input.w;
    }
    if (shape_of != r->model) cn_model_free(shape_of);
    data.threads = o->threads;
    st = cn_dataset_open(&data, &r->data);
    if (st) return st;
    if (r->data.skipped) cn_note(CN_NOTE_WARNING, "convnet: skipped %d unreadable images (--skip-bad)", r->data.skipped);
    if (r->data.val.count > 0 && val_count == 0) {   /* a folder's val/ split */
        r->val = r->data.val;
        memset(&r->data.val, 0, sizeof r->data.val);
        r->has_val = 1;
    }
    if (r->train_limit > 0 && r->train_limit < r->data.train.count) r->data.train.count = r->train_limit;
    if (r->test_limit > 0 && r->test_limit < r->data.test.count) r->data.test.count = r->test_limit;
    if (val_count > 0) {
        if (val_count >= r->data.train.count)
            return cn_fail(CN_ERR_ARG, "--val-split %d: must be smaller than the %d training images", val_count, r->data.train.count);
        st = cn_dataset_split_validation(&r->data, val_count, r->seed, &r->val);
        if (st) return st;
        r->has_val = 1;
        r->val_split = val_count;
    }
    snprintf(r->info.dataset, sizeof r->info.dataset, "%s", r->data.name);
    memcpy(r->info.mean, r->data.mean, sizeof r->info.mean);
    memcpy(r->info.std, r->data.std, sizeof r->info.std);
    r->info.num_classes = r->data.num_classes;
    memcpy(r->info.class_names, r->data.class_names, sizeof r->info.class_names);
    long steps = (r->data.train.count + r->recipe.batch_size - 1) / r->recipe.batch_size;
    if (o->resume) {
        /* the optimizer kind must be known before the checkpoint's state can be read */
        cn_model *probe;
        cn_checkpoint_info info;
        st = cn_checkpoint_load(o->resume, &probe, &info, NULL);
        if (st) return st;
        r->model = probe;
        if ((st = setup_optimizer(r)) || (st = setup_scheduler(r, steps))) return st;
        cn_model *again;
        r->state.optimizer = &r->opt;
        r->state.scheduler = &r->sched;
        st = cn_checkpoint_load(o->resume, &again, &info, &r->state);
        if (st) return st;
        cn_model_free(again);
        r->start_epoch = info.epoch;
    } else {
        if ((st = setup_optimizer(r)) || (st = setup_scheduler(r, steps))) return st;
        r->state.best_metric = -1.0;
    }
    return cn_check_model_fits(r->model, &r->data);
}

/* OUT/confusion_matrix.png and OUT/misclassified.png from the final model's test predictions. */
static void plot_test_results(run *r) {
    const cn_split *test = &r->data.test;
    int classes = r->data.num_classes, *pred = r->test_pred;
    int64_t *counts = cn_calloc((size_t)classes * classes, sizeof *counts);
    enum { GRID = 64 };
    size_t pixels = cn_split_image_size(test);
    uint8_t *wrong = cn_calloc((size_t)GRID * pixels, 1);
    int wrong_true[GRID], wrong_pred[GRID], n_wrong = 0, total_wrong = 0;
    if (!counts || !wrong) {
        cn_note(CN_NOTE_WARNING, "convnet: warning: no result plots: out of memory");
        free(counts); free(wrong);
        return;
    }
    for (int i = 0; i < test->count; i++) {
        int t = test->labels[i], p = pred[i] < classes ? pred[i] : classes - 1;
        counts[t * classes + p]++;
        total_wrong += t != pred[i];
        if (t != pred[i] && n_wrong < GRID) {
            memcpy(wrong + n_wrong * pixels, test->images + i * pixels, pixels);
            wrong_true[n_wrong] = t;
            wrong_pred[n_wrong++] = pred[i];
        }
    }
    const char *names[CN_MAX_CLASSES];
    for (int c = 0; c < classes; c++) names[c] = r->data.class_names[c];
    char path[4200], title[160];
    snprintf(path, sizeof path, "%s/confusion_matrix.png", r->out_dir);
    snprintf(title, sizeof title, "%s on %s test set: confusion matrix", r->model->source_name, r->data.name);
    if (classes > CN_PLOT_MAX_CLASSES)
        cn_note(CN_NOTE_WARNING, "convnet: note: no confusion_matrix.png for %d classes (the plot is drawn up to %d)", classes,
                CN_PLOT_MAX_CLASSES);
    else if (cn_plot_confusion_matrix(path, title, classes, counts, names))
        cn_note(CN_NOTE_WARNING, "convnet: warning: %s", cn_last_error());
    snprintf(path, sizeof path, "%s/misclassified.png", r->out_dir);
    if (total_wrong > n_wrong)
        snprintf(title, sizeof title, "%s: misclassified test images (the first %d of %d)", r->model->source_name, n_wrong, total_wrong);
    else
        snprintf(title, sizeof title, "%s: misclassified test images", r->model->source_name);
    int named = 1;   /* a model with more outputs than the dataset has classes may predict an unnamed one */
    for (int i = 0; i < n_wrong; i++) named &= wrong_pred[i] < classes;
    if (cn_plot_image_grid(path, title, n_wrong, wrong, test->channels > 0 ? test->channels : 1, test->rows, test->cols,
                           wrong_true, wrong_pred, named ? names : NULL))
        cn_note(CN_NOTE_WARNING, "convnet: warning: %s", cn_last_error());
    free(counts); free(wrong);
}

/* OUT: --out, else the directory of --resume, else runs/<model>. */
static cn_status resolve_out_dir(run *r, const cn_train_options *o) {
    const char *src = o->out_dir ? o->out_dir : o->resume;
    if (src && strlen(src) > MAX_OUT_DIR)   /* it was cut at 4,095 bytes into a directory of another name */
        return cn_fail(CN_ERR_ARG, "%s '%.60s...' is %zu bytes long; expected at most %d", o->out_dir ? "--out" : "--resume",
                       src, strlen(src), MAX_OUT_DIR);
    if (o->out_dir) snprintf(r->out_dir, sizeof r->out_dir, "%s", o->out_dir);
    else if (o->resume) {
        snprintf(r->out_dir, sizeof r->out_dir, "%s", o->resume);
        char *slash = strrchr(r->out_dir, '/');
        if (slash) *slash = '\0'; else snprintf(r->out_dir, sizeof r->out_dir, ".");
    } else snprintf(r->out_dir, sizeof r->out_dir, "runs/%s", r->model->source_name);
    return CN_OK;
}

/* The opening lines (the lead only, unless quiet). */
static void print_start(const run *r, const cn_train_options *o) {
    const cn_model *m = r->model;
    char ranks[64] = "";
    if (r->x) snprintf(ranks, sizeof ranks, " x %d ranks (%s batch norm)", r->x->ranks, o->local_bn ? "per-rank" : "synchronised");
    cn_note(CN_NOTE_INFO, "convnet: %s, %zu params; %s: %d train%s / %d test images\n"
            "convnet: %s lr %g, batch %d, %d epoch%s, scheduler %s, augment %s, %d threads%s%s\n"
            "convnet: writing %s/", m->source_name, m->num_params, r->data.name, r->data.train.count,
            r->has_val ? " (+val)" : "", r->data.test.count, r->recipe.optimizer, r->recipe.lr, r->recipe.batch_size,
            r->recipe.epochs, r->recipe.epochs == 1 ? "" : "s", r->recipe.scheduler,
            r->aug.enabled ? r->recipe.augment : "none", r->threads, ranks,
            r->bf16 ? ", precision bf16 (mixed)" : "", r->out_dir);
    if (r->start_epoch || r->start_batch)
        cn_note(CN_NOTE_INFO, "convnet: resuming at epoch %d, batch %d", r->start_epoch + 1, r->start_batch);
}

/* The lead only (the other ranks write nothing in OUT): creates OUT and takes its
 * lock for the run (before anything in it changes), checks that it is writable,
 * sweeps temporaries of dead runs, then opens metrics.csv (keeping the rows of a
 * resumed run), writes model_summary.txt and prints the opening lines. */
static cn_status open_outputs(run *r, const cn_train_options *o) {
    if (!r->lead) return CN_OK;
    cn_status st = make_dirs(r->out_dir);
    if (!st) st = cn_dir_lock_acquire(r->out_dir, &r->lock);
    if (!st) st = probe_writable(r->out_dir);
    if (st) return st;
    cn_remove_stale_temporaries(r->out_dir);
    char path[MAX_OUT_DIR + 64];
    /* Written in place: a FIFO under one of these names would block, a device swallow the rows. */
    static const char *const in_place[] = {"metrics.csv", "model_summary.txt"};
    for (int i = 0; i < 2; i++) {
        struct stat sb;
        snprintf(path, sizeof path, "%s/%s", r->out_dir, in_place[i]);
        if (stat(path, &sb) == 0 && (st = cn_check_regular(path, "convnet's own output file"))) return st;
    }
    snprintf(path, sizeof path, "%s/metrics.csv", r->out_dir);
    st = metrics_open(path, r->start_epoch, &r->metrics, &r->hist);
    if (st) return st;
    snprintf(path, sizeof path, "%s/model_summary.txt", r->out_dir);
    FILE *sf = fopen(path, "w");
    if (!sf) return cn_fail(CN_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
    st = cn_summary_write(r->model, sf);
    if (fclose(sf) && !st) st = cn_fail(CN_ERR_IO, "%s: write failed", path);
    if (!st && !r->quiet) print_start(r, o);
    return st;
}

/* Parameters and BatchNorm statistics all finite. */
static bool weights_finite(const cn_model *m) {
    for (size_t i = 0; i < m->num_params; i++) if (!isfinite(m->params[i])) return false;
    for (size_t i = 0; i < m->num_buffers; i++) if (!isfinite(m->buffers[i])) return false;
    return true;
}

/* A mean cross-entropy above this is an exploding run, not a poor model: the true
 * class gets probability e^-10000 (an untrained model scores ln(classes) <= 4.2). */
#define EXPLODING_LOSS 1e4

static bool loss_ok(double loss) { return isfinite(loss) && loss <= EXPLODING_LOSS; }

/* An epoch whose losses are not finite or exploding, or whose weights are not
 * finite, diverged: nothing of it is kept (such an epoch, train loss 2.7e30 and
 * test loss NaN, used to be saved and then named "the last good checkpoint").
 * The losses and weights are the same on every rank, so the ranks agree. */
static cn_status check_divergence(const run *r, const epoch_metrics *e) {
    bool weights_ok = weights_finite(r->model);
    if (loss_ok(e->train_loss) && loss_ok(e->test_loss) && (!r->has_val || loss_ok(e->val_loss)) && weights_ok)
        return CN_OK;
    char path[MAX_OUT_DIR + 64];
    snprintf(path, sizeof path, "%s/last.safetensors", r->out_dir);
    bool have_last = access(path, F_OK) == 0;
    return cn_fail(CN_ERR_NUMERIC, "epoch %d diverged (train loss %g, test loss %g%s; lr %g too high?); stopping without "
                   "saving it. The last good checkpoint is %s%s", e->epoch, e->train_loss, e->test_loss,
                   weights_ok ? "" : ", weights not finite", r->opt.lr, have_last ? path : "(none yet)",
                   have_last ? " (the epoch before)" : "");
}

/* A stop request in the middle of an epoch: the lead saves a resumable checkpoint
 * after `batches_done` batches (unless the weights already went non-finite). */
static cn_status stop_mid_epoch(run *r, int epoch, long batches_done) {
    if (!weights_finite(r->model))
        return cn_fail(CN_ERR_NUMERIC, "interrupted in epoch %d with weights that are not finite; nothing saved", epoch + 1);
    if (r->lead) {
        cn_status st = save_checkpoint(r, "last.safetensors", epoch, (int)batches_done, 1);
        if (st) return st;
        cn_note(CN_NOTE_WARNING, "convnet: interrupted in epoch %d after batch %ld/%ld; saved %s/last.safetensors\n"
                "convnet: resume with: convnet train --resume %s/last.safetensors",
                epoch + 1, batches_done, r->steps, r->out_dir, r->out_dir);
    }
    return cn_fail(CN_ERR_INTERRUPTED, "interrupted by a signal; state saved to %s/last.safetensors", r->out_dir);
}

/* True on every rank when a stop was requested on any (a signal reaches each rank). */
static bool stop_requested(const run *r, const cn_train_options *o) {
    double stop = o->stop_requested && *o->stop_requested;
    if (r->x) r->x->sum_doubles(r->x, &stop, 1);
    return stop > 0;
}

/* One epoch's training steps, from batch first_batch; the running loss and hits in
 * r->partial_*. CN_ERR_INTERRUPTED after saving a resumable checkpoint. */
static cn_status train_batches(run *r, const cn_train_options *o, int epoch, uint64_t epoch_seed, long first_batch) {
    int B = r->recipe.batch_size, n_train = r->data.train.count, min_batch = r->x && r->x->ranks > 2 ? r->x->ranks : 2;
    cn_progress bar;
    cn_progress_begin(&bar, "train", r->steps, r->quiet);
    cn_status st = CN_OK;
    char path[4200];
    for (long b = first_batch; b < r->steps; b++) {
        int start = (int)(b * B), n = n_train - start < B ? n_train - start : B, first = 0, count = n;
        /* a final batch too small to share (BatchNorm needs 2+ samples; PyTorch fails there) */
        if (n < min_batch && n < B) break;
        if (r->x) cn_exchange_share(n, r->x->rank, r->x->ranks, &first, &count);
        cn_loader_fill(&r->data.train, r->order + start + first, count, r->data.mean, r->data.std, &r->aug,
                       mix(epoch_seed, 0xA5A5), r->input, r->labels);
        apply_schedule(r);
        cn_session_set_dropout_seed(r->session, mix(epoch_seed, (uint64_t)b + 7));
        int correct;
        double loss = cn_session_train_step(r->session, r->input, r->labels, n, (float)r->recipe.label_smoothing,
                                            r->grad, &correct);
        if (!isfinite(loss)) {
            snprintf(path, sizeof path, "%s/last.safetensors", r->out_dir);
            st = cn_fail(CN_ERR_NUMERIC, "epoch %d, batch %ld: the loss is %s; stopping (lr %g too high?). The last good checkpoint is %s",
                         epoch + 1, b + 1, isnan(loss) ? "NaN" : "infinite", r->opt.lr, access(path, F_OK) == 0 ? path : "(none yet)");
            break;
        }
        /* the session's gradients are complete here (with an exchange: summed over the ranks) */
        cn_optimizer_step(&r->opt, r->model->params, cn_session_grads(r->session));
        cn_sched_batch_end(&r->sched);
        r->partial_loss += loss;
        r->partial_correct += correct;
        r->partial_seen += n;
        cn_progress_update(&bar, b + 1, r->partial_seen, r->partial_loss / r->partial_seen, 100.0 * r->partial_correct / r->partial_seen);
        if (stop_requested(r, o)) {
            cn_progress_end(&bar);
            st = stop_mid_epoch(r, epoch, b + 1);
            break;
        }
    }
    cn_progress_end(&bar);
    return st;
}

/* After an epoch's steps: evaluation (shared by the ranks), the scheduler, and (the lead)
 * the log line, metrics.csv, curves and checkpoints, unless the epoch diverged. */
static cn_status end_epoch(run *r, int epoch, double t0) {
    epoch_metrics e = {.epoch = epoch + 1, .lr = r->opt.lr};
    e.train_loss = r->partial_loss / (r->partial_seen ? r->partial_seen : 1);
    e.train_acc = 100.0 * r->partial_correct / (r->partial_seen ? r->partial_seen : 1);
    double test_loss;
    int test_correct;
    cn_status st = cn_evaluate_shared(r->session, &r->data.test, r->data.mean, r->data.std, r->x, &test_loss,
                                      &test_correct, r->test_pred);
    if (st) return st;
    e.test_loss = test_loss / r->data.test.count;
    e.test_acc = 100.0 * test_correct / r->data.test.count;
    if (r->has_val) {
        double vl;
        int vc;
        st = cn_evaluate_shared(r->session, &r->val, r->data.mean, r->data.std, r->x, &vl, &vc, NULL);
        if (st) return st;
        e.val_loss = vl / r->val.count;
        e.val_acc = 100.0 * vc / r->val.count;
    }
    if ((st = check_divergence(r, &e))) return st;   /* before anything of the epoch is written */
    cn_sched_epoch_end(&r->sched, r->has_val ? e.val_loss : e.test_loss);
    r->partial_loss = 0; r->partial_correct = 0; r->partial_seen = 0;
    e.seconds = cn_now_seconds() - t0;
    double selection = r->has_val ? e.val_acc : e.test_acc;
    int improved = selection > r->state.best_metric;
    if (improved) { r->state.best_metric = selection; r->state.best_epoch = epoch + 1; }
    if (!r->lead) return CN_OK;
    print_epoch(r, &e, r->data.test.count, test_correct, r->quiet);
    metrics_write(r->metrics, &e, r->has_val);
    history_add(&r->hist, &e);
    plot_curves(r->out_dir, r->model->source_name, &r->hist, r->has_val);
    st = save_checkpoint(r, "last.safetensors", epoch + 1, 0, 1);
    if (!st && improved) st = save_checkpoint(r, "best.safetensors", epoch + 1, 0, 0);
    return st;
}

/* Buffers of the training loop and the session (capacity: the global batch). */
static cn_status alloc_loop(run *r, const cn_train_options *o) {
    cn_model *m = r->model;
    int B = r->recipe.batch_size, classes = cn_model_num_classes(m), pixels = cn_shape_size(m->input);
    if (r->x && B < r->x->ranks)
        return cn_fail(CN_ERR_ARG, "--batch-size %d: smaller than the %d ranks that share it", B, r->x->ranks);
    r->input = cn_alloc_floats((size_t)B * pixels);
    r->grad = cn_alloc_floats((size_t)B * classes);
    r->labels = cn_calloc(B, sizeof *r->labels);
    r->order = cn_calloc(r->data.train.count, sizeof *r->order);
    r->test_pred = cn_calloc(r->data.test.count ? r->data.test.count : 1, sizeof *r->test_pred);
    if (!r->input || !r->grad || !r->labels || !r->order || !r->test_pred) return CN_ERR_NOMEM;
    cn_status st = cn_session_create(m, B, r->threads, r->bf16 ? CN_SESSION_BF16 : 0, &r->session);
    if (!st && r->x) st = cn_session_set_exchange(r->session, r->x, o->local_bn);
    /* Room for the kept rows too: a run resumed with fewer --epochs than it already has. */
    if (!st) st = history_init(&r->hist, r->recipe.epochs > r->start_epoch ? r->recipe.epochs : r->start_epoch);
    return st;
}

cn_status cn_train(const cn_train_options *o) {
    run r;
    memset(&r, 0, sizeof r);
    r.x = o->exchange && o->exchange->ranks > 1 ? o->exchange : NULL;
    r.lead = !r.x || r.x->rank == 0;
    r.quiet = o->quiet || !r.lead;
    r.lock.fd = -1;
    cn_status st = prepare(&r, o);
    if (!st && r.already_complete) { free_run(&r); return CN_OK; }
    if (!st) st = resolve_out_dir(&r, o);
    if (st) { free_run(&r); return st; }
    r.threads = o->threads > 0 ? o->threads : omp_get_num_procs();
    omp_set_num_threads(r.threads);
    st = alloc_loop(&r, o);
    /* From here a signal stops the run at a batch boundary with a checkpoint; before, it ends the process at once. */
    if (!st && o->stop_honoured) *o->stop_honoured = 1;
    if (!st) st = open_outputs(&r, o);
    if (!st) r.steps = (r.data.train.count + r.recipe.batch_size - 1) / r.recipe.batch_size;
    bool have_predictions = false;
    for (int epoch = r.start_epoch; !st && epoch < r.recipe.epochs; epoch++) {
        double t0 = cn_now_seconds();
        uint64_t epoch_seed = mix(r.seed, (uint64_t)epoch + 1);
        shuffled_order(r.order, r.data.train.count, epoch_seed);
        cn_session_set_training(r.session, true);
        int first_batch = epoch == r.start_epoch ? r.start_batch : 0;
        if (first_batch == 0) { r.partial_loss = 0; r.partial_correct = 0; r.partial_seen = 0; }
        st = train_batches(&r, o, epoch, epoch_seed, first_batch);
        if (!st) st = end_epoch(&r, epoch, t0);
        have_predictions = !st;
    }
    if (o->stop_honoured) *o->stop_honoured = 0;
    /* a run that trained no epoch here evaluates the final model for the result plots */
    double loss;
    int correct;
    if (!st && !have_predictions &&
        cn_evaluate_shared(r.session, &r.data.test, r.data.mean, r.data.std, r.x, &loss, &correct, r.test_pred) == CN_OK)
        have_predictions = true;
    if (!st && r.lead) {
        if (have_predictions) plot_test_results(&r);
        else cn_note(CN_NOTE_WARNING, "convnet: warning: no result plots: %s", cn_last_error());
    }
    if (r.metrics) fclose(r.metrics);
    history_free(&r.hist);
    cn_dir_lock_release(&r.lock);
    cn_free_aligned(r.input); cn_free_aligned(r.grad); free(r.labels); free(r.order);
    free_run(&r);
    return st;
}
