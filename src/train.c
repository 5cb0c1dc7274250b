/* The training loop. Randomness is a pure function of (seed, epoch, batch):
 * the epoch's order, its augmentation and each batch's dropout masks, so a
 * run interrupted anywhere resumes bit-exactly from (epoch, batch). */
#include "train.h"
#include "checkpoint.h"
#include "loss.h"
#include "optim.h"
#include "core/clock.h"
#include "lr_schedule.h"
#include "spec.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "core/note.h"
#include "core/mem.h"
#include "data/augment.h"
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

#define EVAL_BATCH 500

void cn_train_options_init(cn_train_options *o) {
    memset(o, 0, sizeof *o);
    o->dataset = "mnist";
    o->seed = 1;
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

cn_status cn_evaluate(cn_model *m, const cn_split *split, float mean, float std, int threads,
                      double *loss_sum, int *correct, int *predictions) {
    int pixels = split->rows * split->cols, classes = cn_model_num_classes(m);
    if (pixels != cn_shape_size(m->input))
        return cn_fail(CN_ERR_SHAPE, "images are %dx%d but the model expects %dx%dx%d", split->rows, split->cols,
                       m->input.c, m->input.h, m->input.w);
    /* Reuse the training workspace when there is one: no second, larger copy. */
    int batch = m->batch_capacity > 0 ? m->batch_capacity : EVAL_BATCH;
    cn_status st = cn_model_reserve(m, batch, threads);
    if (st) return st;
    float *x = cn_alloc_floats((size_t)batch * pixels);
    int *labels = cn_calloc(batch, sizeof *labels), *idx = cn_calloc(batch, sizeof *idx);
    if (!x || !labels || !idx) { cn_free_aligned(x); free(labels); free(idx); return CN_ERR_NOMEM; }
    bool was_training = m->training;
    cn_model_set_training(m, false);
    double total = 0.0;
    int hits = 0;
    for (int start = 0; start < split->count; start += batch) {
        int n = split->count - start < batch ? split->count - start : batch;
        for (int i = 0; i < n; i++) idx[i] = start + i;
        cn_loader_fill(split, idx, n, mean, std, NULL, 0, x, labels);
        const float *out = cn_model_forward(m, x, n, NULL);
        int c;
        total += cn_loss_batch(out, labels, n, classes, cn_model_outputs_log_probs(m), 0.0f, NULL, &c);
        hits += c;
        if (predictions)
            for (int i = 0; i < n; i++) {
                const float *s = out + (size_t)i * classes;
                int best = 0;
                for (int k = 1; k < classes; k++) if (s[k] > s[best]) best = k;
                predictions[start + i] = best;
            }
    }
    cn_model_set_training(m, was_training);
    cn_free_aligned(x); free(labels); free(idx);
    *loss_sum = total;
    *correct = hits;
    return CN_OK;
}

/* Creates dir (and parents) and checks that a file can be written in it. */
static cn_status ensure_writable_dir(const char *dir) {
    char path[4096];
    snprintf(path, sizeof path, "%s", dir);
    for (char *p = path + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(path, 0777) && errno != EEXIST) return cn_fail(CN_ERR_IO, "%s: cannot create directory: %s", path, strerror(errno));
        *p = '/';
    }
    if (mkdir(path, 0777) && errno != EEXIST) return cn_fail(CN_ERR_IO, "%s: cannot create directory: %s", path, strerror(errno));
    char probe[4200];
    snprintf(probe, sizeof probe, "%s/.write-test.%d", dir, (int)getpid());
    FILE *f = fopen(probe, "wb");
    if (!f) return cn_fail(CN_ERR_IO, "%s: output directory is not writable: %s", dir, strerror(errno));
    char block[4096] = {0};
    int ok = fwrite(block, 1, sizeof block, f) == sizeof block;
    ok = (fflush(f) == 0) && ok;
    ok = (fclose(f) == 0) && ok;
    unlink(probe);
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
        cn_note(CN_NOTE_WARNING, "%s", cn_last_error());
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
    static const char header[] = "epoch,lr,train_loss,train_acc,test_loss,test_acc,val_loss,val_acc,seconds\n";
    cn_status st = kept_len ? cn_write_file_atomic(path, kept, kept_len) : cn_write_file_atomic(path, header, strlen(header));
    free(kept);
    if (st) return st;
    FILE *f = fopen(path, "ab");   /* then one row per epoch, flushed as it ends */
    if (!f) return cn_fail(CN_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
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
    cn_dataset data;
    cn_split val;
    int has_val;
    cn_recipe recipe;
    cn_optimizer opt;
    cn_scheduler sched;
    cn_augment aug;
    cn_checkpoint_info info;
    cn_train_state state;
    int start_epoch, start_batch;
    double partial_loss; long partial_correct, partial_seen;
    char out_dir[4096];
    int threads;
    uint64_t seed;
    int train_limit, test_limit;
    int *test_pred;         /* (test count) predicted classes of the last test evaluation, or NULL */
    int borrowed_model;     /* model is the caller's (cn_train_options.model_handle) */
    int borrowed_data;      /* data is a shallow copy of the caller's dataset ... */
    cn_split own_train;     /* ... whose training split is copied here when a validation split is cut */
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
             cfg, (unsigned long long)r->seed, r->has_val ? r->val.count : 0, r->train_limit, r->test_limit, batch,
             r->partial_loss, r->partial_correct, r->partial_seen);
    cn_status s = cn_checkpoint_save(path, r->model, &r->info, with_state ? &st : NULL);
    if (s) cn_error_prefix("saving checkpoint");
    return s;
}

/* Parses the settings stored by save_checkpoint back into the run. */
static cn_status parse_stored_config(run *r, const char *config, const char *path) {
    for (const char *c = config; *c; c++) /* values are echoed in messages, which stay one line */
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            return cn_fail(CN_ERR_FORMAT, "%s: metadata train_config contains control byte 0x%02x", path, (unsigned char)*c);
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", config);
    memset(&r->recipe, 0, sizeof r->recipe);
    char *save = NULL;
    for (char *tok = strtok_r(buf, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
        unsigned long long u;
        long l;
        double d;
        int i;
        if (sscanf(tok, "seed=%llu", &u) == 1) r->seed = u;
        else if (sscanf(tok, "val_split=%d", &i) == 1) r->val.count = i;
        else if (sscanf(tok, "train_limit=%d", &i) == 1) r->train_limit = i;
        else if (sscanf(tok, "test_limit=%d", &i) == 1) r->test_limit = i;
        else if (sscanf(tok, "batch_index=%d", &i) == 1) r->start_batch = i;
        else if (sscanf(tok, "partial_loss=%lg", &d) == 1) r->partial_loss = d;
        else if (sscanf(tok, "partial_correct=%ld", &l) == 1) r->partial_correct = l;
        else if (sscanf(tok, "partial_seen=%ld", &l) == 1) r->partial_seen = l;
        else if (!strncmp(tok, "augment=", 8)) snprintf(r->recipe.augment, sizeof r->recipe.augment, "%s", tok + 8);
        else {
            cn_status st = cn_recipe_parse_token(tok, path, &r->recipe);
            if (st) return st;
        }
    }
    /* A hostile file must not steer indexing: a negative batch_index read before the sample order. */
    if (r->val.count < 0 || r->train_limit < 0 || r->test_limit < 0 || r->start_batch < 0 ||
        r->partial_correct < 0 || r->partial_seen < 0 || r->partial_correct > r->partial_seen || !isfinite(r->partial_loss))
        return cn_fail(CN_ERR_FORMAT, "%s: metadata train_config has a negative or inconsistent count "
                       "(val_split, train_limit, test_limit, batch_index, partial_*)", path);
    return CN_OK;
}

/* Reports an event to the caller's callback; returns its answer (non-zero: stop). */
static int emit(const cn_train_options *o, cn_train_event *e) {
    return o->on_event ? o->on_event(o->user, e) : 0;
}

static void report_epoch(const cn_train_options *o, const run *r, const epoch_metrics *m, long steps, int test_correct) {
    cn_train_event e = {.kind = CN_TRAIN_EPOCH_END, .epoch = m->epoch, .epochs = r->recipe.epochs, .batches = steps,
                        .loss = m->train_loss, .acc = m->train_acc, .lr = m->lr, .test_loss = m->test_loss,
                        .test_acc = m->test_acc, .val_loss = m->val_loss, .val_acc = m->val_acc, .seconds = m->seconds,
                        .test_correct = test_correct, .test_count = r->data.test.count, .has_val = r->has_val,
                        .out_dir = r->out_dir};
    emit(o, &e);
}

static void free_run(run *r) {
    if (!r->borrowed_model) cn_model_free(r->model);
    if (!r->borrowed_data) cn_dataset_free(&r->data);
    else cn_split_free(&r->own_train);
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

/* A deep copy of a split (its images and labels), freed with cn_split_free. */
static cn_status copy_split(const cn_split *from, cn_split *to) {
    size_t pixels = (size_t)from->count * from->rows * from->cols;
    *to = *from;
    to->images = malloc(pixels ? pixels : 1);
    to->labels = malloc(from->count ? (size_t)from->count : 1);
    if (!to->images || !to->labels) {
        free(to->images); free(to->labels);
        memset(to, 0, sizeof *to);
        return cn_fail(CN_ERR_NOMEM, "out of memory copying %d training images", from->count);
    }
    memcpy(to->images, from->images, pixels);
    memcpy(to->labels, from->labels, (size_t)from->count);
    return CN_OK;
}

/* OUT/model_summary.txt, written atomically. */
static cn_status write_summary(const cn_model *m, const char *path) {
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&text, &size);
    if (!f) return cn_fail(CN_ERR_NOMEM, "%s: out of memory", path);
    cn_status st = cn_summary_write(m, f);
    if (fclose(f) && !st) st = cn_fail(CN_ERR_NOMEM, "%s: out of memory", path);
    if (!st) st = cn_write_file_atomic(path, text, size);
    free(text);
    return st;
}

/* Resolves the model, settings, data and state of a new or resumed run. */
static cn_status prepare(run *r, const cn_train_options *o) {
    cn_status st;
    r->seed = o->seed;
    r->train_limit = o->train_limit;
    r->test_limit = o->test_limit;
    int val_count = o->val_split;
    if (o->resume) {
        cn_st_file *f;
        st = cn_st_open(o->resume, &f);
        if (st) return st;
        const char *cfg = cn_st_metadata(f, "train_config");
        if (!cfg) { cn_st_close(f); return cn_fail(CN_ERR_FORMAT, "%s: has no training state; only checkpoints written by `convnet train` can be resumed", o->resume); }
        st = parse_stored_config(r, cfg, o->resume);
        cn_st_close(f);
        if (st) return st;
        val_count = r->val.count;
        r->val.count = 0;
        if (o->overrides.epochs > 0) r->recipe.epochs = o->overrides.epochs;
    } else {
        if (o->model_handle) { r->model = o->model_handle; r->borrowed_model = 1; }
        else if ((st = load_initial_model(o->model, o->seed, &r->model))) return st;
        r->recipe = o->overrides;
        cn_recipe from_model = recipe_from_model(&r->model->recipe), defaults = builtin_defaults();
        recipe_fill(&r->recipe, &from_model);
        recipe_fill(&r->recipe, &defaults);
        if (r->recipe.max_lr <= 0) r->recipe.max_lr = r->recipe.lr;   /* OneCycle's peak defaults to --lr */
    }
    st = cn_augment_parse(r->recipe.augment, &r->aug);
    if (st) return st;
    if (o->data_handle) {
        r->data = *o->data_handle;  /* counts may be cut below: a copy; the pixels stay the caller's */
        r->borrowed_data = 1;
    } else if ((st = cn_dataset_load(o->dataset, o->data_dir, o->allow_download, &r->data))) {
        return st;
    }
    if (r->train_limit > 0 && r->train_limit < r->data.train.count) r->data.train.count = r->train_limit;
    if (r->test_limit > 0 && r->test_limit < r->data.test.count) r->data.test.count = r->test_limit;
    if (val_count > 0) {
        if (val_count >= r->data.train.count)
            return cn_fail(CN_ERR_ARG, "--val-split %d: must be smaller than the %d training images", val_count, r->data.train.count);
        if (r->borrowed_data) { /* cutting the validation split rewrites the training split: copy it first */
            if ((st = copy_split(&r->data.train, &r->own_train))) return st;
            r->data.train = r->own_train;
        }
        st = cn_dataset_split_validation(&r->data, val_count, r->seed, &r->val);
        if (r->borrowed_data) r->own_train = r->data.train;  /* freed with the run */
        if (st) return st;
        r->has_val = 1;
    }
    snprintf(r->info.dataset, sizeof r->info.dataset, "%s", r->data.name);
    r->info.mean = r->data.mean;
    r->info.std = r->data.std;
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
    if (cn_model_num_classes(r->model) < r->data.num_classes)
        return cn_fail(CN_ERR_SHAPE, "the model outputs %d classes but %s has %d", cn_model_num_classes(r->model),
                       r->data.name, r->data.num_classes);
    if (r->data.train.rows * r->data.train.cols != cn_shape_size(r->model->input))
        return cn_fail(CN_ERR_SHAPE, "%s images are %dx%d but the model expects %dx%dx%d", r->data.name, r->data.train.rows,
                       r->data.train.cols, r->model->input.c, r->model->input.h, r->model->input.w);
    return CN_OK;
}

/* OUT/confusion_matrix.png and OUT/misclassified.png from the final model: the predictions
 * of the last epoch's test evaluation, or a new evaluation when this run trained no epoch. */
static void plot_test_results(run *r, bool have_predictions) {
    const cn_split *test = &r->data.test;
    int classes = r->data.num_classes, *pred = r->test_pred;
    int64_t *counts = cn_calloc((size_t)classes * classes, sizeof *counts);
    double loss;
    int correct;
    enum { GRID = 64 };
    uint8_t *wrong = cn_calloc((size_t)GRID * test->rows * test->cols, 1);
    int wrong_true[GRID], wrong_pred[GRID], n_wrong = 0, total_wrong = 0;
    if (!pred || !counts || !wrong ||
        (!have_predictions && cn_evaluate(r->model, test, r->data.mean, r->data.std, r->threads, &loss, &correct, pred))) {
        cn_note(CN_NOTE_WARNING, "no result plots: %s", cn_last_error());
        free(counts); free(wrong);
        return;
    }
    size_t pixels = (size_t)test->rows * test->cols;
    cn_confusion_add(counts, classes, test->labels, pred, test->count);
    for (int i = 0; i < test->count; i++) {
        int t = test->labels[i];
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
    if (cn_plot_confusion_matrix(path, title, classes, counts, names)) cn_note(CN_NOTE_WARNING, "%s", cn_last_error());
    snprintf(path, sizeof path, "%s/misclassified.png", r->out_dir);
    if (total_wrong > n_wrong)
        snprintf(title, sizeof title, "%s: misclassified test images (the first %d of %d)", r->model->source_name, n_wrong, total_wrong);
    else
        snprintf(title, sizeof title, "%s: misclassified test images", r->model->source_name);
    if (cn_plot_image_grid(path, title, n_wrong, wrong, test->rows, test->cols, wrong_true, wrong_pred, names))
        cn_note(CN_NOTE_WARNING, "%s", cn_last_error());
    free(counts); free(wrong);
}

cn_status cn_train(const cn_train_options *o) {
    run r;
    memset(&r, 0, sizeof r);
    cn_status st = prepare(&r, o);
    if (st) { free_run(&r); return st; }
    r.threads = o->threads > 0 ? o->threads : omp_get_num_procs();
    omp_set_num_threads(r.threads);
    if (o->out_dir) snprintf(r.out_dir, sizeof r.out_dir, "%s", o->out_dir);
    else if (o->resume) {
        snprintf(r.out_dir, sizeof r.out_dir, "%s", o->resume);
        char *slash = strrchr(r.out_dir, '/');
        if (slash) *slash = '\0'; else snprintf(r.out_dir, sizeof r.out_dir, ".");
    } else snprintf(r.out_dir, sizeof r.out_dir, "runs/%s", r.model->source_name);
    if ((st = ensure_writable_dir(r.out_dir))) { free_run(&r); return st; }

    cn_model *m = r.model;
    int B = r.recipe.batch_size, classes = cn_model_num_classes(m), pixels = cn_shape_size(m->input);
    int n_train = r.data.train.count;
    long steps = (n_train + B - 1) / B;
    float *x = cn_alloc_floats((size_t)B * pixels), *grad = cn_alloc_floats((size_t)B * classes);
    int *labels = cn_calloc(B, sizeof *labels), *order = cn_calloc(n_train, sizeof *order);
    FILE *metrics = NULL;
    char path[4200];
    snprintf(path, sizeof path, "%s/metrics.csv", r.out_dir);
    r.test_pred = cn_calloc(r.data.test.count ? r.data.test.count : 1, sizeof *r.test_pred);
    bool have_predictions = false;
    if (!x || !grad || !labels || !order || !r.test_pred) st = CN_ERR_NOMEM;
    if (!st) st = cn_model_reserve(m, B, r.threads);
    cn_train_event ev = {.kind = CN_TRAIN_READY, .epochs = r.recipe.epochs, .batches = steps, .out_dir = r.out_dir};
    bool ready = !st;
    if (ready) emit(o, &ev);
    history hist;
    /* Room for the kept rows too: a run resumed with fewer --epochs than it already has. */
    if (!st) st = history_init(&hist, r.recipe.epochs > r.start_epoch ? r.recipe.epochs : r.start_epoch);
    if (!st) st = metrics_open(path, r.start_epoch, &metrics, &hist);
    if (!st) {
        snprintf(path, sizeof path, "%s/model_summary.txt", r.out_dir);
        st = write_summary(m, path);
    }
    if (!st) {
        cn_train_event e = {.kind = CN_TRAIN_BEGIN, .model_name = m->source_name, .params = m->num_params,
                            .dataset = r.data.name, .train_count = n_train, .has_val = r.has_val,
                            .test_count = r.data.test.count, .optimizer = r.recipe.optimizer, .lr = r.recipe.lr,
                            .batch_size = B, .epochs = r.recipe.epochs, .scheduler = r.recipe.scheduler,
                            .augment = r.aug.enabled ? r.recipe.augment : "none", .threads = r.threads,
                            .out_dir = r.out_dir, .start_epoch = r.start_epoch, .start_batch = r.start_batch,
                            .checkpoint = o->resume};
        emit(o, &e);
    }
    for (int epoch = r.start_epoch; !st && epoch < r.recipe.epochs; epoch++) {
        double t0 = cn_now_seconds();
        uint64_t epoch_seed = mix(r.seed, (uint64_t)epoch + 1);
        shuffled_order(order, n_train, epoch_seed);
        cn_model_set_training(m, true);
        ev.kind = CN_TRAIN_EPOCH_BEGIN;
        ev.epoch = epoch + 1;
        emit(o, &ev);
        int first_batch = epoch == r.start_epoch ? r.start_batch : 0;
        if (first_batch == 0) { r.partial_loss = 0; r.partial_correct = 0; r.partial_seen = 0; }
        for (long b = first_batch; b < steps; b++) {
            int start = (int)(b * B), n = n_train - start < B ? n_train - start : B;
            if (n < 2 && n < B) break;   /* a final 1-image batch: BatchNorm needs 2+ samples (PyTorch fails there) */
            cn_loader_fill(&r.data.train, order + start, n, r.data.mean, r.data.std, &r.aug, mix(epoch_seed, 0xA5A5), x, labels);
            apply_schedule(&r);
            m->dropout_seed = mix(epoch_seed, (uint64_t)b + 7);
            int correct;
            double loss = cn_model_train_step(m, x, labels, n, (float)r.recipe.label_smoothing, grad, &correct);
            if (!isfinite(loss)) {
                snprintf(path, sizeof path, "%s/last.safetensors", r.out_dir);
                st = cn_fail(CN_ERR_NUMERIC, "epoch %d, batch %ld: the loss is %s; stopping (lr %g too high?). The last good checkpoint is %s",
                             epoch + 1, b + 1, isnan(loss) ? "NaN" : "infinite", r.opt.lr, access(path, F_OK) == 0 ? path : "(none yet)");
                break;
            }
            cn_optimizer_step(&r.opt, m->params, m->grads);
            cn_sched_batch_end(&r.sched);
            r.partial_loss += loss;
            r.partial_correct += correct;
            r.partial_seen += n;
            ev.kind = CN_TRAIN_BATCH;
            ev.batch = b + 1;
            ev.seen = r.partial_seen;
            ev.loss = r.partial_loss / r.partial_seen;
            ev.acc = 100.0 * r.partial_correct / r.partial_seen;
            if (emit(o, &ev)) {
                st = save_checkpoint(&r, "last.safetensors", epoch, (int)b + 1, 1);
                if (!st) {
                    ev.kind = CN_TRAIN_STOPPED;
                    emit(o, &ev);
                    st = cn_fail(CN_ERR_INTERRUPTED, "interrupted by a signal; state saved to %s/last.safetensors", r.out_dir);
                }
                break;
            }
        }
        if (st) break;
        ev.kind = CN_TRAIN_EVALUATING;
        emit(o, &ev);
        epoch_metrics e = {.epoch = epoch + 1, .lr = r.opt.lr};
        e.train_loss = r.partial_loss / (r.partial_seen ? r.partial_seen : 1);
        e.train_acc = 100.0 * r.partial_correct / (r.partial_seen ? r.partial_seen : 1);
        double test_loss;
        int test_correct;
        st = cn_evaluate(m, &r.data.test, r.data.mean, r.data.std, r.threads, &test_loss, &test_correct, r.test_pred);
        if (st) break;
        have_predictions = true;
        e.test_loss = test_loss / r.data.test.count;
        e.test_acc = 100.0 * test_correct / r.data.test.count;
        if (r.has_val) {
            double vl;
            int vc;
            st = cn_evaluate(m, &r.val, r.data.mean, r.data.std, r.threads, &vl, &vc, NULL);
            if (st) break;
            e.val_loss = vl / r.val.count;
            e.val_acc = 100.0 * vc / r.val.count;
        }
        cn_sched_epoch_end(&r.sched, r.has_val ? e.val_loss : e.test_loss);
        r.partial_loss = 0; r.partial_correct = 0; r.partial_seen = 0;
        e.seconds = cn_now_seconds() - t0;
        report_epoch(o, &r, &e, steps, test_correct);
        metrics_write(metrics, &e, r.has_val);
        history_add(&hist, &e);
        plot_curves(r.out_dir, m->source_name, &hist, r.has_val);
        double selection = r.has_val ? e.val_acc : e.test_acc;
        int improved = selection > r.state.best_metric;
        if (improved) { r.state.best_metric = selection; r.state.best_epoch = epoch + 1; }
        st = save_checkpoint(&r, "last.safetensors", epoch + 1, 0, 1);
        if (!st && improved) st = save_checkpoint(&r, "best.safetensors", epoch + 1, 0, 0);
    }
    ev.kind = CN_TRAIN_FINISHED;
    if (ready) emit(o, &ev);
    if (!st) plot_test_results(&r, have_predictions);
    if ((!st || st == CN_ERR_INTERRUPTED) && o->info_out) *o->info_out = r.info;
    if (!st && o->model_out && !r.borrowed_model) { *o->model_out = r.model; r.model = NULL; }
    if (metrics) fclose(metrics);
    history_free(&hist);
    cn_free_aligned(x); cn_free_aligned(grad); free(labels); free(order);
    free_run(&r);
    return st;
}
