/* Sweep plans: grids and lists of settings, and seed ranges (sweep.h). */
#include "sweep/sweep.h"
#include "spec.h"
#include "core/error.h"
#include "core/mem.h"
#include <stdlib.h>
#include <string.h>

void cn_sweep_plan_free(cn_sweep_plan *p) {
    free(p->settings);
    memset(p, 0, sizeof *p);
}

const char *cn_sweep_value(const cn_sweep_setting *s, const char *key) {
    size_t k = strlen(key);
    for (int i = 0; i < s->count; i++)
        if (!strncmp(s->tokens[i], key, k) && s->tokens[i][k] == '=') return s->tokens[i] + k + 1;
    return NULL;
}

cn_status cn_sweep_apply(const cn_sweep_setting *s, uint64_t seed, cn_train_options *o) {
    o->seed = seed;
    for (int i = 0; i < s->count; i++) {
        const char *t = s->tokens[i];
        if (!strncmp(t, "model=", 6)) { o->model = t + 6; continue; }
        if (!strncmp(t, "precision=", 10)) {   /* convnet train's --precision, not a recipe key */
            if (strcmp(t + 10, "fp32") && strcmp(t + 10, "bf16"))
                return cn_fail(CN_ERR_ARG, "%s: precision=%s: expected fp32 or bf16", s->name, t + 10);
            o->precision = t + 10;
            continue;
        }
        cn_status st = cn_recipe_parse_token(t, s->name, &o->overrides);
        if (st) return st;
    }
    return CN_OK;
}

/* Adds token "key=value" to setting s (and key to the plan's keys). */
static cn_status add_token(cn_sweep_plan *p, cn_sweep_setting *s, const char *token, size_t len) {
    const char *eq = memchr(token, '=', len);
    if (!eq || eq == token || eq + 1 == token + len)
        return cn_fail(CN_ERR_ARG, "sweep setting '%.*s': expected key=value", (int)len, token);
    size_t klen = (size_t)(eq - token);
    if (s->count >= CN_SWEEP_MAX_KEYS || len >= sizeof s->tokens[0] || klen >= sizeof p->keys[0])
        return cn_fail(CN_ERR_ARG, "sweep setting '%.*s': at most %d keys of up to %zu characters", (int)len, token,
                       CN_SWEEP_MAX_KEYS, sizeof s->tokens[0] - 1);
    if (!strncmp(token, "seed=", 5)) return cn_fail(CN_ERR_ARG, "seed is given with --seeds, not as a setting");
    char key[32];
    memcpy(key, token, klen);
    key[klen] = '\0';
    for (int i = 0; i < s->count; i++)
        if (!strncmp(s->tokens[i], key, klen) && s->tokens[i][klen] == '=')
            return cn_fail(CN_ERR_ARG, "sweep setting '%s': key %s given twice", s->name, key);
    memcpy(s->tokens[s->count], token, len);
    s->tokens[s->count][len] = '\0';
    size_t n = strlen(s->name);
    snprintf(s->name + n, sizeof s->name - n, "%s%s", n ? "," : "", s->tokens[s->count]);
    s->count++;
    int known = 0;
    for (int i = 0; i < p->keys_count; i++) known |= !strcmp(p->keys[i], key);
    if (!known) {
        if (p->keys_count >= CN_SWEEP_MAX_KEYS) return cn_fail(CN_ERR_ARG, "at most %d keys", CN_SWEEP_MAX_KEYS);
        snprintf(p->keys[p->keys_count++], sizeof p->keys[0], "%s", key);
    }
    /* a value convnet train would refuse fails now, not in the middle of the sweep */
    cn_train_options probe;
    cn_train_options_init(&probe);
    cn_sweep_setting one = {.count = 1};
    memcpy(one.tokens[0], s->tokens[s->count - 1], sizeof one.tokens[0]);
    snprintf(one.name, sizeof one.name, "sweep setting '%s'", one.tokens[0]);
    return cn_sweep_apply(&one, 1, &probe);
}

static cn_status grow(cn_sweep_plan *p, int count) {
    if (count > CN_SWEEP_MAX_RUNS) return cn_fail(CN_ERR_ARG, "more than %d settings", CN_SWEEP_MAX_RUNS);
    cn_sweep_setting *s = realloc(p->settings, (size_t)count * sizeof *s);
    if (!s) return CN_ERR_NOMEM;
    p->settings = s;
    return CN_OK;
}

/* A list: settings separated by ';', tokens by spaces. */
static cn_status parse_list(const char *list, cn_sweep_plan *p) {
    const char *c = list;
    while (*c) {
        const char *end = strchr(c, ';');
        if (!end) end = c + strlen(c);
        cn_status st = grow(p, p->settings_count + 1);
        if (st) return st;
        cn_sweep_setting *s = &p->settings[p->settings_count];
        memset(s, 0, sizeof *s);
        for (const char *t = c; t < end;) {
            while (t < end && *t == ' ') t++;
            const char *te = t;
            while (te < end && *te != ' ') te++;
            if (te > t && (st = add_token(p, s, t, (size_t)(te - t)))) return st;
            t = te;
        }
        if (s->count) p->settings_count++;
        c = *end ? end + 1 : end;
    }
    return p->settings_count ? CN_OK : cn_fail(CN_ERR_ARG, "--runs: the list '%s' has no settings", list);
}

/* A grid: "key=v1,v2 key2=w1,w2": every combination, the first key slowest. */
static cn_status parse_grid(const char *grid, cn_sweep_plan *p) {
    char axes[CN_SWEEP_MAX_KEYS][512];
    int n_axes = 0, total = 1;
    for (const char *t = grid; *t;) {
        while (*t == ' ') t++;
        const char *te = t;
        while (*te && *te != ' ') te++;
        if (te == t) break;
        if (n_axes >= CN_SWEEP_MAX_KEYS || (size_t)(te - t) >= sizeof axes[0])
            return cn_fail(CN_ERR_ARG, "--grid: at most %d keys of up to 511 characters", CN_SWEEP_MAX_KEYS);
        memcpy(axes[n_axes], t, (size_t)(te - t));
        axes[n_axes][te - t] = '\0';
        const char *eq = strchr(axes[n_axes], '=');
        if (!eq || eq == axes[n_axes] || !eq[1]) return cn_fail(CN_ERR_ARG, "--grid '%s': expected key=value,value,...", axes[n_axes]);
        int values = 1;
        for (const char *v = eq + 1; *v; v++) values += *v == ',';
        if ((long)total * values > CN_SWEEP_MAX_RUNS) return cn_fail(CN_ERR_ARG, "--grid: more than %d settings", CN_SWEEP_MAX_RUNS);
        total *= values;
        n_axes++;
        t = te;
    }
    if (!n_axes) return cn_fail(CN_ERR_ARG, "--grid '%s': no key=value,... given", grid);
    cn_status st = grow(p, total);
    if (st) return st;
    for (int i = 0; i < total; i++) {
        cn_sweep_setting *s = &p->settings[i];
        memset(s, 0, sizeof *s);
        int rest = i, stride = total;
        for (int a = 0; a < n_axes; a++) {
            const char *eq = strchr(axes[a], '='), *v = eq + 1;
            int values = 1;
            for (const char *c = v; *c; c++) values += *c == ',';
            stride /= values;
            int pick = rest / stride;
            rest %= stride;
            for (int k = 0; k < pick; k++) v = strchr(v, ',') + 1;
            const char *ve = strchr(v, ',');
            size_t vlen = ve ? (size_t)(ve - v) : strlen(v), klen = (size_t)(eq - axes[a]);
            char token[128];
            if (klen + 1 + vlen >= sizeof token || !vlen) return cn_fail(CN_ERR_ARG, "--grid '%s': an empty or long value", axes[a]);
            snprintf(token, sizeof token, "%.*s=%.*s", (int)klen, axes[a], (int)vlen, v);
            if ((st = add_token(p, s, token, strlen(token)))) return st;
        }
    }
    p->settings_count = total;
    return CN_OK;
}

static cn_status parse_seeds(const char *seeds, cn_sweep_plan *p) {
    char *end;
    long a = strtol(seeds, &end, 10), b = a;
    if (*end == '-') b = strtol(end + 1, &end, 10);
    if (*end || end == seeds || a < 0 || b < a || b > 2147483647L || b - a >= 1000)
        return cn_fail(CN_ERR_ARG, "--seeds '%s': expected N or A-B (0 <= A <= B, at most 1000 seeds)", seeds);
    p->seed_first = (int)a;
    p->seed_last = (int)b;
    return CN_OK;
}

cn_status cn_sweep_plan_parse(const char *grid, const char *list, const char *seeds, cn_sweep_plan *plan) {
    memset(plan, 0, sizeof *plan);
    cn_status st = parse_seeds(seeds ? seeds : "1", plan);
    if (!st) st = grid ? parse_grid(grid, plan) : list ? parse_list(list, plan) : cn_fail(CN_ERR_ARG, "give --grid or --runs");
    if (!st && (long)cn_sweep_runs(plan) > CN_SWEEP_MAX_RUNS) st = cn_fail(CN_ERR_ARG, "more than %d runs", CN_SWEEP_MAX_RUNS);
    if (st) cn_sweep_plan_free(plan);
    return st;
}
