#include "checkpoint.h"
#include "io/safetensors.h"
#include "data/norm_text.h"
#include "core/error.h"
#include "core/mem.h"
#include "data/stats.h"
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Visits every state_dict entry of the model in PyTorch's order. */
typedef cn_status (*tensor_visitor)(void *ctx, const char *name, const char *dtype, int ndim,
                                    const int64_t *shape, void *data);

static cn_status visit_state_dict(const cn_model *m, tensor_visitor visit, void *ctx) {
    char name[96];
    for (int i = 0; i < m->num_layers; i++) {
        const cn_layer *l = &m->layers[i];
        cn_status st = CN_OK;
        if (l->kind == CN_LAYER_CONV2D) {
            int64_t shape[4] = {l->out_channels, l->in.c / l->groups, l->kernel, l->kernel};
            snprintf(name, sizeof name, "%s.weight", l->name);
            st = visit(ctx, name, "F32", 4, shape, m->params + l->weight_offset);
        } else if (l->kind == CN_LAYER_LINEAR) {
            int64_t shape[2] = {l->out_channels, l->in.c};
            snprintf(name, sizeof name, "%s.weight", l->name);
            st = visit(ctx, name, "F32", 2, shape, m->params + l->weight_offset);
        } else if (l->kind == CN_LAYER_BATCHNORM2D) {
            int64_t shape[1] = {l->in.c};
            snprintf(name, sizeof name, "%s.weight", l->name);
            st = visit(ctx, name, "F32", 1, shape, m->params + l->weight_offset);
            snprintf(name, sizeof name, "%s.bias", l->name);
            if (!st) st = visit(ctx, name, "F32", 1, shape, m->params + l->bias_offset);
            snprintf(name, sizeof name, "%s.running_mean", l->name);
            if (!st) st = visit(ctx, name, "F32", 1, shape, m->buffers + l->buffer_offset);
            snprintf(name, sizeof name, "%s.running_var", l->name);
            if (!st) st = visit(ctx, name, "F32", 1, shape, m->buffers + l->buffer_offset + l->in.c);
            snprintf(name, sizeof name, "%s.num_batches_tracked", l->name);
            if (!st) st = visit(ctx, name, "I64", 0, NULL, &m->bn_batches_tracked[l->bn_index]);
            if (st) return st;
            continue;
        }
        if (st) return st;
        if (l->bias_count) {
            int64_t shape[1] = {(int64_t)l->bias_count};
            snprintf(name, sizeof name, "%s.bias", l->name);
            st = visit(ctx, name, "F32", 1, shape, m->params + l->bias_offset);
            if (st) return st;
        }
    }
    return CN_OK;
}

static cn_status add_to_writer(void *ctx, const char *name, const char *dtype, int ndim, const int64_t *shape, void *data) {
    return cn_st_writer_add(ctx, name, dtype, ndim, shape, data);
}

static void format_state(char *buf, size_t size, const cn_train_state *s) {
    const cn_optimizer *o = s->optimizer;
    const cn_scheduler *c = s->scheduler;
    snprintf(buf, size,
             "opt_kind=%d opt_steps=%" PRId64 " opt_lr=%.17g opt_momentum=%.17g opt_beta1=%.17g "
             "sched_kind=%d sched_lr=%.17g sched_momentum=%.17g sched_epoch=%d sched_best=%.17g "
             "sched_num_bad=%d sched_cooldown_counter=%d sched_step_num=%ld "
             "rng=%016" PRIx64 ":%016" PRIx64 ":%016" PRIx64 ":%016" PRIx64 " best_metric=%.17g best_epoch=%d",
             (int)o->kind, o->steps, o->lr, o->momentum, o->beta1,
             (int)c->kind, c->lr, c->momentum, c->epoch, c->best, c->num_bad, c->cooldown_counter, c->step_num,
             s->rng.s[0], s->rng.s[1], s->rng.s[2], s->rng.s[3], s->best_metric, s->best_epoch);
}

/* "name0,name1,...": the class names, for metadata. NULL when out of memory. */
static char *join_class_names(const cn_checkpoint_info *info) {
    size_t size = (size_t)info->num_classes * CN_CLASS_NAME_MAX + 1, len = 0;
    char *buf = cn_calloc(size, 1);
    for (int c = 0; buf && c < info->num_classes && c < CN_MAX_CLASSES; c++)
        len += (size_t)snprintf(buf + len, size - len, "%s%s", c ? "," : "", info->class_names[c]);
    return buf;
}

cn_status cn_checkpoint_save(const char *path, const cn_model *m, const cn_checkpoint_info *info, const cn_train_state *state) {
    cn_st_writer *w = cn_st_writer_new();
    if (!w) return CN_ERR_NOMEM;
    int channels = m->input.c >= 1 && m->input.c <= CN_MAX_CHANNELS ? m->input.c : 1;
    cn_status st = visit_state_dict(m, add_to_writer, w);
    char buf[2048];
    if (!st) st = cn_st_writer_metadata(w, "format", "convnet-checkpoint");
    if (!st) st = cn_st_writer_metadata(w, "format_version", CN_CHECKPOINT_FORMAT);
    if (!st) st = cn_st_writer_metadata(w, "spec", m->spec_text);
    if (!st) st = cn_st_writer_metadata(w, "model", m->source_name);
    if (!st) { snprintf(buf, sizeof buf, "%d", info->epoch); st = cn_st_writer_metadata(w, "epoch", buf); }
    if (!st) st = cn_st_writer_metadata(w, "dataset", info->dataset);
    if (!st) { cn_format_floats(buf, sizeof buf, info->mean, channels); st = cn_st_writer_metadata(w, "mean", buf); }
    if (!st) { cn_format_floats(buf, sizeof buf, info->std, channels); st = cn_st_writer_metadata(w, "std", buf); }
    if (!st) {
        char *names = join_class_names(info);
        st = names ? cn_st_writer_metadata(w, "classes", names) : CN_ERR_NOMEM;
        free(names);
    }
    if (state && !st) {
        const cn_optimizer *o = state->optimizer;
        int64_t shape[1] = {(int64_t)o->count};
        st = cn_st_writer_add(w, "optimizer.exp_avg", "F32", 1, shape, o->exp_avg);
        if (!st && o->exp_avg_sq) st = cn_st_writer_add(w, "optimizer.exp_avg_sq", "F32", 1, shape, o->exp_avg_sq);
        if (!st) { format_state(buf, sizeof buf, state); st = cn_st_writer_metadata(w, "train_state", buf); }
        if (!st) st = cn_st_writer_metadata(w, "train_config", state->config);
    }
    if (!st) st = cn_st_writer_save(w, path);
    cn_st_writer_free(w);
    return st;
}

typedef struct { const cn_st_file *f; const char *path; } reader_ctx;

static cn_status read_tensor(void *vctx, const char *name, const char *dtype, int ndim, const int64_t *shape, void *data) {
    reader_ctx *ctx = vctx;
    const cn_st_tensor *t = cn_st_find(ctx->f, name);
    if (!t) return cn_fail(CN_ERR_FORMAT, "%s: tensor \"%s\" is missing", ctx->path, name);
    if (strcmp(t->dtype, dtype) && !(!strcmp(dtype, "F32") && !strcmp(t->dtype, "F64")))
        return cn_fail(CN_ERR_FORMAT, "%s: tensor \"%s\" has dtype %s, expected %s", ctx->path, name, t->dtype, dtype);
    int same = t->ndim == ndim;
    for (int d = 0; same && d < ndim; d++) same = t->shape[d] == shape[d];
    /* num_batches_tracked may be stored as shape [] or [1] */
    if (!same && ndim == 0 && t->ndim == 1 && t->shape[0] == 1) same = 1;
    if (!same) {
        char got[128] = "", want[128] = "";
        for (int d = 0; d < t->ndim; d++) snprintf(got + strlen(got), sizeof got - strlen(got), "%s%" PRId64, d ? "," : "", t->shape[d]);
        for (int d = 0; d < ndim; d++) snprintf(want + strlen(want), sizeof want - strlen(want), "%s%" PRId64, d ? "," : "", shape[d]);
        return cn_fail(CN_ERR_SHAPE, "%s: tensor \"%s\" has shape [%s], the model expects [%s]", ctx->path, name, got, want);
    }
    if (!strcmp(dtype, "I64")) {
        int64_t v;
        memcpy(&v, cn_st_data(ctx->f, t), sizeof v);
        if (v < 0) return cn_fail(CN_ERR_FORMAT, "%s: tensor \"%s\" is negative (%" PRId64 ")", ctx->path, name, v);
        memcpy(data, &v, sizeof v);
        return CN_OK;
    }
    size_t count = 1;
    for (int d = 0; d < ndim; d++) count *= (size_t)shape[d];
    float *values;
    size_t n;
    cn_status st = cn_st_read_floats(ctx->f, name, count, &values, &n);
    if (st) return st;
    for (size_t i = 0; i < n; i++)
        if (!isfinite(values[i])) {
            const char *what = isnan(values[i]) ? "NaN" : "infinite"; /* before the free */
            free(values);
            return cn_fail(CN_ERR_NUMERIC, "%s: tensor \"%s\" element %zu is %s; weights must be finite", ctx->path, name, i,
                           what);
        }
    memcpy(data, values, n * sizeof *values);
    free(values);
    return CN_OK;
}

cn_status cn_checkpoint_read_weights(const cn_st_file *f, const char *path, cn_model *m) {
    reader_ctx ctx = {f, path};
    return visit_state_dict(m, read_tensor, &ctx);
}

static cn_status parse_info(const cn_st_file *f, const char *path, cn_checkpoint_info *info) {
    memset(info, 0, sizeof *info);
    const char *v;
    if ((v = cn_st_metadata(f, "epoch"))) {
        char *end;
        long e = strtol(v, &end, 10);
        if (end == v || *end || e < 0 || e > 100000000) /* a resumed run counts epochs from here */
            return cn_fail(CN_ERR_FORMAT, "%s: metadata epoch is not an epoch count (0..100000000)", path);
        info->epoch = (int)e;
    }
    snprintf(info->dataset, sizeof info->dataset, "%s", (v = cn_st_metadata(f, "dataset")) ? v : "mnist");
    info->mean[0] = 0.1307f;   /* MNIST's, for checkpoints written before the keys existed */
    info->std[0] = 0.3081f;
    int nm = 1, ns = 1;
    cn_status st = CN_OK;
    if ((v = cn_st_metadata(f, "mean"))) st = cn_normalization_parse(path, "mean", v, 0, info->mean, CN_MAX_CHANNELS, &nm);
    if (!st && (v = cn_st_metadata(f, "std"))) st = cn_normalization_parse(path, "std", v, 1, info->std, CN_MAX_CHANNELS, &ns);
    if (st) return st;
    if (nm != ns)
        return cn_fail(CN_ERR_FORMAT, "%s: metadata mean has %d values but std has %d; expected as many", path, nm, ns);
    for (int c = nm; c < CN_MAX_CHANNELS; c++) {   /* one value: every channel */
        info->mean[c] = info->mean[0];
        info->std[c] = info->std[0];
    }
    if ((v = cn_st_metadata(f, "classes")) && *v) {
        const char *p = v;
        while (*p && info->num_classes < CN_MAX_CLASSES) {
            size_t n = strcspn(p, ",");
            snprintf(info->class_names[info->num_classes++], CN_CLASS_NAME_MAX, "%.*s",
                     (int)(n < CN_CLASS_NAME_MAX - 1 ? n : CN_CLASS_NAME_MAX - 1), p);
            p += n + (p[n] == ',');
        }
    }
    return CN_OK;
}

static cn_status parse_state(const cn_st_file *f, const char *path, cn_train_state *s) {
    const char *text = cn_st_metadata(f, "train_state");
    if (!text) return cn_fail(CN_ERR_FORMAT, "%s: no training state (not written by `convnet train`?); cannot resume", path);
    cn_optimizer *o = s->optimizer;
    cn_scheduler *c = s->scheduler;
    int opt_kind, sched_kind;
    int n = sscanf(text,
                   "opt_kind=%d opt_steps=%" SCNd64 " opt_lr=%lg opt_momentum=%lg opt_beta1=%lg "
                   "sched_kind=%d sched_lr=%lg sched_momentum=%lg sched_epoch=%d sched_best=%lg "
                   "sched_num_bad=%d sched_cooldown_counter=%d sched_step_num=%ld "
                   "rng=%" SCNx64 ":%" SCNx64 ":%" SCNx64 ":%" SCNx64 " best_metric=%lg best_epoch=%d",
                   &opt_kind, &o->steps, &o->lr, &o->momentum, &o->beta1, &sched_kind, &c->lr, &c->momentum,
                   &c->epoch, &c->best, &c->num_bad, &c->cooldown_counter, &c->step_num,
                   &s->rng.s[0], &s->rng.s[1], &s->rng.s[2], &s->rng.s[3], &s->best_metric, &s->best_epoch);
    if (n != 19) return cn_fail(CN_ERR_FORMAT, "%s: metadata train_state is malformed (field %d)", path, n + 1);
    if (opt_kind != (int)o->kind || sched_kind != (int)c->kind)
        return cn_fail(CN_ERR_ARG, "%s: the checkpoint was trained with another optimizer or scheduler than requested", path);
    cn_status st = CN_OK;
    float *values;
    size_t count;
    st = cn_st_read_floats(f, "optimizer.exp_avg", o->count, &values, &count);
    if (st) return st;
    memcpy(o->exp_avg, values, count * sizeof *values);
    free(values);
    if (o->exp_avg_sq) {
        st = cn_st_read_floats(f, "optimizer.exp_avg_sq", o->count, &values, &count);
        if (st) return st;
        memcpy(o->exp_avg_sq, values, count * sizeof *values);
        free(values);
    }
    const char *cfg = cn_st_metadata(f, "train_config");
    snprintf(s->config, sizeof s->config, "%s", cfg ? cfg : "");
    return CN_OK;
}

cn_status cn_checkpoint_load(const char *path, cn_model **out, cn_checkpoint_info *info, cn_train_state *state) {
    *out = NULL;
    cn_st_file *f;
    cn_status st = cn_st_open(path, &f);
    if (st) return st;
    const char *spec = cn_st_metadata(f, "spec");
    const char *format = cn_st_metadata(f, "format_version");
    cn_model *m = NULL;
    if (!spec) st = cn_fail(CN_ERR_FORMAT, "%s: metadata has no \"spec\" (not a convnet checkpoint; for ONNX files use a .onnx name)", path);
    else if (format && strcmp(format, CN_CHECKPOINT_FORMAT)) {
        char shown[32]; /* the stored value, cut short and with control bytes as '?': messages stay one line */
        size_t i = 0;
        for (; format[i] && i + 1 < sizeof shown; i++) shown[i] = (unsigned char)format[i] < 0x20 || format[i] == 0x7f ? '?' : format[i];
        shown[i] = '\0';
        st = cn_fail(CN_ERR_FORMAT, "%s: checkpoint format version %s, this convnet reads version %s", path, shown, CN_CHECKPOINT_FORMAT);
    }
    if (!st) {
        const char *source = cn_st_metadata(f, "model");
        /* The name goes into messages: a stored name with control bytes would break the one-line rule. */
        for (const char *c = source; c && *c; c++)
            if ((unsigned char)*c < 0x20 || *c == 0x7f) { source = NULL; break; }
        st = cn_model_from_spec(spec, source && *source ? source : path, 0, &m);
        if (st) cn_error_prefix("%s: stored spec", path);
    }
    if (!st) st = cn_checkpoint_read_weights(f, path, m);
    if (!st) st = parse_info(f, path, info);
    if (!st && state) st = parse_state(f, path, state);
    cn_st_close(f);
    if (st) { cn_model_free(m); return st; }
    *out = m;
    return CN_OK;
}
