/* --resume: a run's stored settings read back and checked against the options (see train_resume.h). */
#include "train_resume.h"
#include "spec.h"
#include "core/error.h"
#include "data/catalog.h"
#include "io/safetensors.h"
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Parses the train_config written by train.c's save_checkpoint. */
static cn_status parse_stored_config(cn_resume_settings *s, const char *config, const char *path) {
    for (const char *c = config; *c; c++) /* values are echoed in messages, which stay one line */
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            return cn_fail(CN_ERR_FORMAT, "%s: metadata train_config contains control byte 0x%02x", path, (unsigned char)*c);
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", config);
    char *save = NULL;
    for (char *tok = strtok_r(buf, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
        unsigned long long u;
        long l;
        double d;
        int i;
        if (sscanf(tok, "seed=%llu", &u) == 1) s->seed = u;
        else if (sscanf(tok, "val_split=%d", &i) == 1) s->val_split = i;
        else if (sscanf(tok, "train_limit=%d", &i) == 1) s->train_limit = i;
        else if (sscanf(tok, "test_limit=%d", &i) == 1) s->test_limit = i;
        else if (sscanf(tok, "batch_index=%d", &i) == 1) s->batch_index = i;
        else if (sscanf(tok, "partial_loss=%lg", &d) == 1) s->partial_loss = d;
        else if (sscanf(tok, "partial_correct=%ld", &l) == 1) s->partial_correct = l;
        else if (sscanf(tok, "partial_seen=%ld", &l) == 1) s->partial_seen = l;
        else if (!strncmp(tok, "precision=", 10)) {
            if (strcmp(tok + 10, "fp32") && strcmp(tok + 10, "bf16"))
                return cn_fail(CN_ERR_FORMAT, "%s: metadata train_config has precision '%.20s'; expected fp32 or bf16",
                               path, tok + 10);
            snprintf(s->precision, sizeof s->precision, "%s", tok + 10);
        }
        else if (!strncmp(tok, "augment=", 8)) snprintf(s->recipe.augment, sizeof s->recipe.augment, "%s", tok + 8);
        else {
            cn_status st = cn_recipe_parse_token(tok, path, &s->recipe);
            if (st) return st;
        }
    }
    /* A hostile file must not steer indexing: a negative batch_index read before the sample order. */
    if (s->val_split < 0 || s->train_limit < 0 || s->test_limit < 0 || s->batch_index < 0 ||
        s->partial_correct < 0 || s->partial_seen < 0 || s->partial_correct > s->partial_seen || !isfinite(s->partial_loss))
        return cn_fail(CN_ERR_FORMAT, "%s: metadata train_config has a negative or inconsistent count "
                       "(val_split, train_limit, test_limit, batch_index, partial_*)", path);
    return CN_OK;
}

static cn_status contradicts(const char *option, const char *given, const char *stored, const char *path) {
    return cn_fail(CN_ERR_ARG, "--%s%s%s contradicts %s, which continues a run with %s=%s; a resumed run keeps its "
                   "settings (only --epochs, --threads and --quiet may change)", option, *given ? " " : "", given, path,
                   option, stored);
}

/* Options of o->overrides (set ones only; epochs may change) against the stored recipe. */
static cn_status check_recipe(const cn_recipe *given, const cn_recipe *stored, const char *path) {
    static const struct { const char *option; size_t offset; } doubles[] = {
        {"lr", offsetof(cn_recipe, lr)}, {"momentum", offsetof(cn_recipe, momentum)},
        {"weight-decay", offsetof(cn_recipe, weight_decay)}, {"label-smoothing", offsetof(cn_recipe, label_smoothing)},
        {"gamma", offsetof(cn_recipe, gamma)}, {"factor", offsetof(cn_recipe, factor)},
        {"max-lr", offsetof(cn_recipe, max_lr)}, {"pct-start", offsetof(cn_recipe, pct_start)},
        {"div-factor", offsetof(cn_recipe, div_factor)}, {"final-div-factor", offsetof(cn_recipe, final_div_factor)}};
    char a[64], b[64];
    for (size_t i = 0; i < sizeof doubles / sizeof doubles[0]; i++) {
        double g = *(const double *)((const char *)given + doubles[i].offset);
        double s = *(const double *)((const char *)stored + doubles[i].offset);
        if (g < 0 || g == s) continue;   /* unset (-1), or the stored value repeated */
        snprintf(a, sizeof a, "%g", g);
        snprintf(b, sizeof b, "%g", s);
        return contradicts(doubles[i].option, a, b, path);
    }
    static const struct { const char *option; size_t offset; } strings[] = {
        {"optimizer", offsetof(cn_recipe, optimizer)}, {"scheduler", offsetof(cn_recipe, scheduler)},
        {"augment", offsetof(cn_recipe, augment)}};
    for (size_t i = 0; i < sizeof strings / sizeof strings[0]; i++) {
        const char *g = (const char *)given + strings[i].offset, *s = (const char *)stored + strings[i].offset;
        if (*g && strcmp(g, s)) return contradicts(strings[i].option, g, *s ? s : "none", path);
    }
    const int ints[4][2] = {{given->batch_size, stored->batch_size}, {given->step_size, stored->step_size},
                            {given->patience, stored->patience}, {given->nesterov, stored->nesterov}};
    static const char *const int_options[4] = {"batch-size", "step-size", "patience", "nesterov"};
    for (int i = 0; i < 4; i++) {
        bool set = i < 2 ? ints[i][0] > 0 : ints[i][0] >= 0;
        if (!set || ints[i][0] == ints[i][1]) continue;
        snprintf(a, sizeof a, "%d", ints[i][0]);
        snprintf(b, sizeof b, "%d", ints[i][1]);
        return contradicts(int_options[i], i == 3 ? "" : a, b, path);
    }
    return CN_OK;
}

/* --model, --dataset and the run-level options against the stored run. */
static cn_status check_options(const cn_train_options *o, const cn_resume_settings *s) {
    const char *path = o->resume;
    if (o->model)
        return cn_fail(CN_ERR_ARG, "--model %s: a resumed run keeps the model stored in %s; drop --model (or start a "
                       "new run without --resume)", o->model, path);
    const cn_dataset_info *given = o->dataset ? cn_dataset_info_find(o->dataset) : NULL;
    if (o->dataset && strcasecmp(given ? given->name : o->dataset, s->dataset))
        return contradicts("dataset", o->dataset, s->dataset, path);
    char a[32], b[32];
    const long pairs[3][2] = {{o->val_split, s->val_split}, {o->train_limit, s->train_limit},
                              {o->test_limit, s->test_limit}};
    static const char *const names[3] = {"val-split", "limit-train", "limit-test"};
    for (int i = 0; i < 3; i++) {
        if (pairs[i][0] <= 0 || pairs[i][0] == pairs[i][1]) continue;
        snprintf(a, sizeof a, "%ld", pairs[i][0]);
        snprintf(b, sizeof b, "%ld", pairs[i][1]);
        return contradicts(names[i], a, b, path);
    }
    if (o->seed != CN_SEED_UNSET && o->seed != s->seed) {
        snprintf(a, sizeof a, "%llu", (unsigned long long)o->seed);
        snprintf(b, sizeof b, "%llu", (unsigned long long)s->seed);
        return contradicts("seed", a, b, path);
    }
    if (o->precision && strcmp(o->precision, s->precision)) return contradicts("precision", o->precision, s->precision, path);
    return check_recipe(&o->overrides, &s->recipe, path);
}

cn_status cn_resume_read(const cn_train_options *o, cn_resume_settings *s) {
    memset(s, 0, sizeof *s);
    snprintf(s->precision, sizeof s->precision, "fp32");
    cn_st_file *f;
    cn_status st = cn_st_open(o->resume, &f);
    if (st) return st;
    const char *cfg = cn_st_metadata(f, "train_config"), *ds = cn_st_metadata(f, "dataset"), *ep = cn_st_metadata(f, "epoch");
    if (!cfg)
        st = cn_fail(CN_ERR_FORMAT, "%s: has no training state; only checkpoints written by `convnet train` can be resumed",
                     o->resume);
    if (!st) st = parse_stored_config(s, cfg, o->resume);
    snprintf(s->dataset, sizeof s->dataset, "%s", ds && *ds ? ds : "mnist");
    for (char *c = s->dataset; *c; c++) if ((unsigned char)*c < 0x20 || *c == 0x7f) *c = '?';   /* echoed in messages */
    char *end = NULL;
    s->epochs_done = ep ? strtol(ep, &end, 10) : 0;
    if (!st && ep && (end == ep || *end || s->epochs_done < 0 || s->epochs_done > 100000000))
        st = cn_fail(CN_ERR_FORMAT, "%s: metadata epoch is not an epoch count (0..100000000)", o->resume);
    cn_st_close(f);
    return st ? st : check_options(o, s);
}
