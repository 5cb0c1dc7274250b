/* Spec parser: text -> layers with inferred shapes.
 *
 *   input 1x28x28
 *   conv2d out=8 k=3 pad=1 bias=false
 *   batchnorm2d
 *   maxpool2d k=2
 *   linear out=10
 *
 * Header lines: name, alias, description, input, train. Every other line is a
 * layer. Unknown layers and keys, bad values and shapes that do not fit are
 * errors naming the line. */
#include "spec.h"
#include "core/error.h"
#include "core/mem.h"
#include <ctype.h>
#include <stdarg.h>
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LAYERS 256
#define MAX_CHANNELS 4096
#define MAX_KERNEL 64
#define MAX_SPATIAL 4096
#define MAX_LINE 1024
/* Values per image in any activation: keeps c*h*w (an int) far from overflow. */
#define MAX_ACTIVATION (1L << 26)

typedef struct {
    const char *source;
    int line;
    cn_spec *spec;
    const cn_layer *layers;     /* the layers parsed so far (from= looks them up) */
} parser;

static const struct { const char *word; cn_layer_kind kind; } layer_words[] = {
    {"conv2d", CN_LAYER_CONV2D}, {"conv", CN_LAYER_CONV2D},
    {"batchnorm2d", CN_LAYER_BATCHNORM2D}, {"bn", CN_LAYER_BATCHNORM2D},
    {"relu", CN_LAYER_RELU},
    {"maxpool2d", CN_LAYER_MAXPOOL2D}, {"maxpool", CN_LAYER_MAXPOOL2D},
    {"avgpool2d", CN_LAYER_AVGPOOL2D}, {"avgpool", CN_LAYER_AVGPOOL2D},
    {"gap", CN_LAYER_GAP}, {"adaptive_avgpool2d", CN_LAYER_GAP},
    {"dropout", CN_LAYER_DROPOUT},
    {"flatten", CN_LAYER_FLATTEN},
    {"linear", CN_LAYER_LINEAR},
    {"log_softmax", CN_LAYER_LOG_SOFTMAX}, {"logsoftmax", CN_LAYER_LOG_SOFTMAX},
    {"relu6", CN_LAYER_RELU6}, {"leaky_relu", CN_LAYER_LEAKY_RELU},
    {"batchnorm1d", CN_LAYER_BATCHNORM2D}, {"dropout2d", CN_LAYER_DROPOUT},   /* flat_bn, channel_dropout */
    {"add", CN_LAYER_ADD}, {"concat", CN_LAYER_CONCAT},
};

/* Keys each layer accepts ("name" and "from" are accepted by all). */
static const char *layer_keys(cn_layer_kind kind) {
    switch (kind) {
    case CN_LAYER_CONV2D: return "out, k, stride, pad, dilation, groups, bias, in";
    case CN_LAYER_BATCHNORM2D: return "eps, momentum";
    case CN_LAYER_MAXPOOL2D: case CN_LAYER_AVGPOOL2D: return "k, stride, pad";
    case CN_LAYER_DROPOUT: return "p";
    case CN_LAYER_LEAKY_RELU: return "slope";
    case CN_LAYER_LINEAR: return "out, bias, in";
    default: return "";
    }
}

static cn_status perr(const parser *p, cn_status st, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static cn_status perr(const parser *p, cn_status st, const char *fmt, ...) {
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return cn_fail(st, "%s:%d: %s", p->source, p->line, msg);
}

static bool parse_int(const char *s, long lo, long hi, int *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return false;
    *out = (int)v;
    return true;
}

static bool parse_double(const char *s, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v)) return false;
    *out = v;
    return true;
}

static bool parse_bool(const char *s, bool *out) {
    if (!strcmp(s, "true") || !strcmp(s, "1") || !strcmp(s, "yes")) { *out = true; return true; }
    if (!strcmp(s, "false") || !strcmp(s, "0") || !strcmp(s, "no")) { *out = false; return true; }
    return false;
}

/* Splits "key=value" in place; returns false if there is no '='. */
static bool split_kv(char *token, char **key, char **value) {
    char *eq = strchr(token, '=');
    if (!eq || eq == token) return false;
    *eq = '\0';
    *key = token;
    *value = eq + 1;
    return true;
}

cn_status cn_recipe_parse_token(const char *token, const char *where, cn_recipe *r) {
    char buf[MAX_LINE];
    snprintf(buf, sizeof buf, "%s", token);
    char *key, *value;
    if (!split_kv(buf, &key, &value))
        return cn_fail(CN_ERR_SPEC, "%s: expected key=value in train settings, found '%s'", where, token);
    double d;
    int i;
#define DOUBLE_KEY(k, field, lo, hi) if (!strcmp(key, k)) { \
        if (!parse_double(value, &d) || d < (lo) || d > (hi)) \
            return cn_fail(CN_ERR_SPEC, "%s: %s=%s: expected a number in [%g, %g]", where, key, value, (double)(lo), (double)(hi)); \
        r->field = d; return CN_OK; }
#define INT_KEY(k, field, lo, hi) if (!strcmp(key, k)) { \
        if (!parse_int(value, lo, hi, &i)) \
            return cn_fail(CN_ERR_SPEC, "%s: %s=%s: expected an integer in [%d, %d]", where, key, value, lo, hi); \
        r->field = i; return CN_OK; }
    DOUBLE_KEY("lr", lr, 1e-12, 100)
    DOUBLE_KEY("momentum", momentum, 0, 1)
    DOUBLE_KEY("weight_decay", weight_decay, 0, 10)
    DOUBLE_KEY("label_smoothing", label_smoothing, 0, 1)
    DOUBLE_KEY("gamma", gamma, 1e-9, 10)
    DOUBLE_KEY("factor", factor, 1e-9, 1)
    DOUBLE_KEY("max_lr", max_lr, 1e-12, 100)
    DOUBLE_KEY("pct_start", pct_start, 0.001, 0.999)
    DOUBLE_KEY("div_factor", div_factor, 1, 1e9)
    DOUBLE_KEY("final_div_factor", final_div_factor, 1, 1e12)
    INT_KEY("epochs", epochs, 1, 100000)
    INT_KEY("batch", batch_size, 1, 65536)
    INT_KEY("batch_size", batch_size, 1, 65536)
    INT_KEY("step_size", step_size, 1, 100000)
    INT_KEY("patience", patience, 0, 100000)
#undef DOUBLE_KEY
#undef INT_KEY
    if (!strcmp(key, "nesterov")) {
        bool b;
        if (!parse_bool(value, &b)) return cn_fail(CN_ERR_SPEC, "%s: nesterov=%s: expected true or false", where, value);
        r->nesterov = b;
        return CN_OK;
    }
    if (!strcmp(key, "optimizer")) {
        if (strcmp(value, "sgd") && strcmp(value, "adam") && strcmp(value, "adamw"))
            return cn_fail(CN_ERR_SPEC, "%s: optimizer=%s: expected sgd, adam or adamw", where, value);
        snprintf(r->optimizer, sizeof r->optimizer, "%s", value);
        return CN_OK;
    }
    if (!strcmp(key, "scheduler")) {
        if (strcmp(value, "none") && strcmp(value, "step") && strcmp(value, "plateau") &&
            strcmp(value, "onecycle") && strcmp(value, "cosine"))
            return cn_fail(CN_ERR_SPEC, "%s: scheduler=%s: expected none, step, plateau, onecycle or cosine", where, value);
        snprintf(r->scheduler, sizeof r->scheduler, "%s", value);
        return CN_OK;
    }
    if (!strcmp(key, "augment")) {
        if (strlen(value) >= sizeof r->augment)
            return cn_fail(CN_ERR_SPEC, "%s: augment=...: longer than %zu characters", where, sizeof r->augment - 1);
        snprintf(r->augment, sizeof r->augment, "%s", value);
        return CN_OK;
    }
    return cn_fail(CN_ERR_SPEC, "%s: unknown train setting '%s' (expected optimizer, lr, momentum, nesterov, "
                   "weight_decay, label_smoothing, epochs, batch, scheduler, step_size, gamma, patience, factor, "
                   "max_lr, pct_start, div_factor, final_div_factor, augment)", where, key);
}

static cn_status parse_input(parser *p, char *args) {
    int c, h, w;
    char extra;
    if (sscanf(args, "%dx%dx%d%c", &c, &h, &w, &extra) != 3 || c < 1 || c > MAX_CHANNELS ||
        h < 1 || h > MAX_SPATIAL || w < 1 || w > MAX_SPATIAL)
        return perr(p, CN_ERR_SPEC, "input: expected CxHxW with positive sizes (e.g. 1x28x28), found '%s'", args);
    if ((long)c * h * w > MAX_ACTIVATION)
        return perr(p, CN_ERR_SPEC, "input: %dx%dx%d has more than %ld values per image", c, h, w, MAX_ACTIVATION);
    p->spec->input = (cn_shape){c, h, w};
    return CN_OK;
}

/* Output size of a sliding window; <= 0 when the window does not fit. */
static int window_out(int in, int k, int stride, int pad) { return (in + 2 * pad - k) / stride + 1; }

/* What from= calls value v: "input", or the name of the layer that outputs it. */
static const char *value_name(const parser *p, int v) { return v == 0 ? "input" : p->layers[v - 1].name; }

static cn_shape value_shape(const parser *p, int v) { return v == 0 ? p->spec->input : p->layers[v - 1].out; }

/* add: every input has the first one's shape; concat: the first one's height and width,
 * and the output has all their channels. */
static cn_status infer_join_shape(parser *p, cn_layer *l) {
    const char *what = cn_layer_kind_name(l->kind);
    cn_shape first = l->in, out = first;
    for (int k = 1; k < l->num_inputs; k++) {
        cn_shape s = value_shape(p, l->inputs[k]);
        bool fits = l->kind == CN_LAYER_ADD ? s.c == first.c && s.h == first.h && s.w == first.w
                                            : s.h == first.h && s.w == first.w;
        if (!fits)
            return perr(p, CN_ERR_SHAPE, "%s: '%s' outputs %dx%dx%d but '%s' outputs %dx%dx%d; %s", what,
                        value_name(p, l->inputs[k]), s.c, s.h, s.w, value_name(p, l->inputs[0]), first.c, first.h, first.w,
                        l->kind == CN_LAYER_ADD ? "add needs equal shapes" : "concat needs equal heights and widths (it joins channels)");
        if (l->kind == CN_LAYER_CONCAT) out.c += s.c;
    }
    l->out = out;
    l->macs = 0;    /* additions and copies: no multiply-adds */
    return CN_OK;
}

static cn_status infer_shape(parser *p, cn_layer *l) {
    cn_shape in = l->in;
    const char *what = cn_layer_kind_name(l->kind);
    switch (l->kind) {
    case CN_LAYER_ADD: case CN_LAYER_CONCAT: {
        cn_status st = infer_join_shape(p, l);
        if (st) return st;
        break;
    }
    case CN_LAYER_CONV2D: {
        int span = cn_conv_span(l);
        if (in.c % l->groups || l->out_channels % l->groups)
            return perr(p, CN_ERR_SHAPE, "%s: groups=%d must divide both the %d input channels and out=%d",
                        what, l->groups, in.c, l->out_channels);
        char dil[48] = "";
        if (l->dilation != 1) snprintf(dil, sizeof dil, " (dilation %d: span %d)", l->dilation, span);
        if (in.h + 2 * l->pad < span || in.w + 2 * l->pad < span)
            return perr(p, CN_ERR_SHAPE, "%s: kernel %d%s with pad %d does not fit the %dx%dx%d input",
                        what, l->kernel, dil, l->pad, in.c, in.h, in.w);
        l->out = (cn_shape){l->out_channels, window_out(in.h, span, l->stride, l->pad),
                            window_out(in.w, span, l->stride, l->pad)};
        l->weight_count = (size_t)l->out_channels * (in.c / l->groups) * l->kernel * l->kernel;
        l->bias_count = l->has_bias ? (size_t)l->out_channels : 0;
        l->macs = (uint64_t)l->weight_count * l->out.h * l->out.w;
        break;
    }
    case CN_LAYER_MAXPOOL2D: case CN_LAYER_AVGPOOL2D:
        if (l->pad * 2 > l->kernel)
            return perr(p, CN_ERR_SPEC, "%s: pad %d must be at most half the kernel %d", what, l->pad, l->kernel);
        if (in.h + 2 * l->pad < l->kernel || in.w + 2 * l->pad < l->kernel)
            return perr(p, CN_ERR_SHAPE, "%s: kernel %d does not fit the %dx%dx%d input", what, l->kernel, in.c, in.h, in.w);
        l->out = (cn_shape){in.c, window_out(in.h, l->kernel, l->stride, l->pad), window_out(in.w, l->kernel, l->stride, l->pad)};
        break;
    case CN_LAYER_BATCHNORM2D:
        l->out = in;
        l->weight_count = l->bias_count = (size_t)in.c;
        break;
    case CN_LAYER_GAP:
        l->out = (cn_shape){in.c, 1, 1};
        break;
    case CN_LAYER_FLATTEN:
        l->out = (cn_shape){in.c * in.h * in.w, 1, 1};
        break;
    case CN_LAYER_LINEAR:
        if (in.h != 1 || in.w != 1)
            return perr(p, CN_ERR_SHAPE, "linear: needs a flat input but gets %dx%dx%d; add a 'flatten' line before it",
                        in.c, in.h, in.w);
        l->out = (cn_shape){l->out_channels, 1, 1};
        l->weight_count = (size_t)l->out_channels * in.c;
        l->bias_count = l->has_bias ? (size_t)l->out_channels : 0;
        l->macs = l->weight_count;
        break;
    case CN_LAYER_LOG_SOFTMAX:
        if (in.h != 1 || in.w != 1)
            return perr(p, CN_ERR_SHAPE, "log_softmax: needs a flat input (class scores) but gets %dx%dx%d; add 'gap' or 'flatten' first",
                        in.c, in.h, in.w);
        l->out = in;
        break;
    default:
        l->out = in;
    }
    if (l->out.c < 1 || l->out.h < 1 || l->out.w < 1)
        return perr(p, CN_ERR_SHAPE, "%s: output shape %dx%dx%d is empty", what, l->out.c, l->out.h, l->out.w);
    if ((long)l->out.c * l->out.h * l->out.w > MAX_ACTIVATION)
        return perr(p, CN_ERR_SHAPE, "%s: output shape %dx%dx%d has more than %ld values per image",
                    what, l->out.c, l->out.h, l->out.w, MAX_ACTIVATION);
    return CN_OK;
}

/* from=a,b,...: the values layer `index` reads, looked up among the earlier layers' names
 * (or "input"). */
static cn_status parse_from(parser *p, cn_layer *l, int index, char *value) {
    const char *what = cn_layer_kind_name(l->kind);
    bool join = l->kind == CN_LAYER_ADD || l->kind == CN_LAYER_CONCAT;
    l->num_inputs = 0;
    char *save = NULL;
    for (char *tok = strtok_r(value, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (l->num_inputs == (join ? CN_MAX_INPUTS : 1))
            return join ? perr(p, CN_ERR_SPEC, "%s: from= names more than %d layers", what, CN_MAX_INPUTS)
                        : perr(p, CN_ERR_SPEC, "%s: from= takes one layer (only add and concat join several)", what);
        int v = -1;
        if (!strcmp(tok, "input")) v = 0;
        for (int j = index - 1; v < 0 && j >= 0; j--)
            if (!strcmp(p->layers[j].name, tok)) v = j + 1;
        if (v < 0)
            return perr(p, CN_ERR_SPEC, "%s: from=%s: no earlier layer is named '%s' (expected 'input' or a name= "
                        "given on an earlier line)", what, tok, tok);
        for (int k = 0; k < l->num_inputs; k++)
            if (l->inputs[k] == v) return perr(p, CN_ERR_SPEC, "%s: from= names '%s' twice", what, tok);
        l->inputs[l->num_inputs++] = v;
    }
    if (l->num_inputs == 0) return perr(p, CN_ERR_SPEC, "%s: from= names no layer", what);
    return CN_OK;
}

/* The integer keys of a layer line (but in=, which is checked against the input): each one's
 * range and its field of cn_layer. */
struct int_key { const char *key; int lo, hi; size_t offset; };
static const struct int_key int_keys[] = {
    {"out", 1, MAX_CHANNELS, offsetof(cn_layer, out_channels)}, {"k", 1, MAX_KERNEL, offsetof(cn_layer, kernel)},
    {"stride", 1, MAX_KERNEL, offsetof(cn_layer, stride)}, {"dilation", 1, MAX_KERNEL, offsetof(cn_layer, dilation)},
    {"groups", 1, MAX_CHANNELS, offsetof(cn_layer, groups)}, {"pad", 0, MAX_KERNEL, offsetof(cn_layer, pad)},
};

static const struct int_key *int_key(const char *key) {
    for (size_t i = 0; i < sizeof int_keys / sizeof int_keys[0]; i++)
        if (!strcmp(int_keys[i].key, key)) return &int_keys[i];
    return NULL;
}

static cn_status parse_layer(parser *p, cn_layer_kind kind, char *args, int index, cn_layer *l) {
    memset(l, 0, sizeof *l);
    l->kind = kind;
    l->num_inputs = 1;
    l->inputs[0] = index;
    l->spec_line = p->line;
    l->bn_index = -1;
    l->stride = -1;
    l->groups = 1;
    l->dilation = 1;
    l->has_bias = true;
    l->bn_eps = 1e-5f;
    l->bn_momentum = 0.1f;
    l->dropout_p = 0.5f;
    l->slope = 0.01f;
    int declared_in = -1;
    bool have_from = false;
    const char *what = cn_layer_kind_name(kind);
    char *save = NULL;
    for (char *tok = strtok_r(args, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
        char *key, *value;
        if (!split_kv(tok, &key, &value))
            return perr(p, CN_ERR_SPEC, "%s: expected key=value, found '%s'", what, tok);
        bool known = strstr(layer_keys(kind), key) != NULL && strlen(key) > 0;
        /* strstr on the list could match a substring ("o" in "out"); confirm a whole word. */
        if (known) {
            const char *keys = layer_keys(kind), *hit = keys;
            known = false;
            while ((hit = strstr(hit, key))) {
                size_t n = strlen(key);
                if ((hit == keys || hit[-1] == ' ') && (hit[n] == ',' || hit[n] == '\0')) { known = true; break; }
                hit += n;
            }
        }
        const struct int_key *ik;
        int iv;
        double dv;
        if (!strcmp(key, "name")) {
            if (!*value || strlen(value) >= sizeof l->name)
                return perr(p, CN_ERR_SPEC, "%s: name must be 1-%zu characters", what, sizeof l->name - 1);
            if (!strcmp(value, "input") || strchr(value, ','))
                return perr(p, CN_ERR_SPEC, "%s: name=%s: 'input' and names with a comma are reserved for from=", what, value);
            snprintf(l->name, sizeof l->name, "%s", value);
        } else if (!strcmp(key, "from")) {
            if (have_from) return perr(p, CN_ERR_SPEC, "%s: from= given twice", what);
            cn_status st = parse_from(p, l, index, value);
            if (st) return st;
            have_from = true;
        } else if (!known) {
            const char *keys = layer_keys(kind);
            return perr(p, CN_ERR_SPEC, "%s: unknown key '%s' (expected %s%sname, from)", what, key, keys, *keys ? ", " : "");
        } else if ((ik = int_key(key))) {
            if (!parse_int(value, ik->lo, ik->hi, (int *)((char *)l + ik->offset)))
                return perr(p, CN_ERR_SPEC, "%s: %s=%s: expected an integer in [%d, %d]", what, key, value, ik->lo, ik->hi);
        } else if (!strcmp(key, "in")) {
            if (!parse_int(value, 1, 1 << 28, &iv)) return perr(p, CN_ERR_SPEC, "%s: in=%s: expected a positive integer", what, value);
            declared_in = iv;
        } else if (!strcmp(key, "bias")) {
            if (!parse_bool(value, &l->has_bias)) return perr(p, CN_ERR_SPEC, "%s: bias=%s: expected true or false", what, value);
        } else if (!strcmp(key, "p")) {
            if (!parse_double(value, &dv) || dv < 0 || dv >= 1) return perr(p, CN_ERR_SPEC, "%s: p=%s: expected a probability in [0, 1)", what, value);
            l->dropout_p = (float)dv;
        } else if (!strcmp(key, "slope")) {
            if (!parse_double(value, &dv) || fabs(dv) > 1e6) return perr(p, CN_ERR_SPEC, "%s: slope=%s: expected a number in [-1e6, 1e6]", what, value);
            l->slope = (float)dv;
        } else if (!strcmp(key, "eps")) {
            if (!parse_double(value, &dv) || dv <= 0 || dv > 1) return perr(p, CN_ERR_SPEC, "%s: eps=%s: expected a number in (0, 1]", what, value);
            l->bn_eps = (float)dv;
        } else if (!strcmp(key, "momentum")) {
            if (!parse_double(value, &dv) || dv < 0 || dv > 1) return perr(p, CN_ERR_SPEC, "%s: momentum=%s: expected a number in [0, 1]", what, value);
            l->bn_momentum = (float)dv;
        }
    }
    /* out= and k= were given when they are set: their values are at least 1 */
    if ((kind == CN_LAYER_CONV2D || kind == CN_LAYER_LINEAR) && l->out_channels == 0)
        return perr(p, CN_ERR_SPEC, "%s: missing out=N", what);
    if ((kind == CN_LAYER_CONV2D || kind == CN_LAYER_MAXPOOL2D || kind == CN_LAYER_AVGPOOL2D) && l->kernel == 0)
        return perr(p, CN_ERR_SPEC, "%s: missing k=N (kernel size)", what);
    if ((kind == CN_LAYER_ADD || kind == CN_LAYER_CONCAT) && l->num_inputs < 2)
        return perr(p, CN_ERR_SPEC, "%s: needs from=a,b (two or more earlier layers, or 'input', to join)", what);
    l->in = l->inputs[0] == 0 ? p->spec->input : p->layers[l->inputs[0] - 1].out;
    if (l->stride < 0) l->stride = (kind == CN_LAYER_CONV2D) ? 1 : (l->kernel ? l->kernel : 1);
    if (declared_in >= 0) {
        int actual = (kind == CN_LAYER_LINEAR) ? cn_shape_size(l->in) : l->in.c;
        if (declared_in != actual)
            return perr(p, CN_ERR_SHAPE, "%s: in=%d does not match the %s input size %d (input %dx%dx%d)", what,
                        declared_in, kind == CN_LAYER_LINEAR ? "flattened" : "channel", actual, l->in.c, l->in.h, l->in.w);
    }
    return CN_OK;
}

static cn_status parse_line(parser *p, char *line, cn_layer *layers, int *num_layers) {
    char *word = line;
    while (*line && !isspace((unsigned char)*line)) line++;
    if (*line) *line++ = '\0';
    while (isspace((unsigned char)*line)) line++;
    char *args = line;
    cn_spec *m = p->spec;
    if (!strcmp(word, "name") || !strcmp(word, "alias") || !strcmp(word, "description")) return CN_OK;
    if (!strcmp(word, "input")) {
        if (*num_layers > 0) return perr(p, CN_ERR_SPEC, "input: must come before the first layer");
        return parse_input(p, args);
    }
    if (!strcmp(word, "train")) {
        char where[300];
        snprintf(where, sizeof where, "%s:%d", p->source, p->line);
        char *save = NULL;
        for (char *tok = strtok_r(args, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
            cn_status st = cn_recipe_parse_token(tok, where, &m->recipe);
            if (st) return st;
        }
        return CN_OK;
    }
    for (size_t i = 0; i < sizeof layer_words / sizeof layer_words[0]; i++) {
        if (strcmp(word, layer_words[i].word)) continue;
        if (*num_layers >= MAX_LAYERS) return perr(p, CN_ERR_SPEC, "more than %d layers", MAX_LAYERS);
        cn_layer *l = &layers[*num_layers];
        p->layers = layers;
        cn_status st = parse_layer(p, layer_words[i].kind, args, *num_layers, l);
        cn_shape in = l->in;
        if (st) return st;
        l->flat_bn = !strcmp(word, "batchnorm1d");
        l->channel_dropout = !strcmp(word, "dropout2d");
        if (l->flat_bn && (in.h != 1 || in.w != 1))
            return perr(p, CN_ERR_SHAPE, "batchnorm1d: needs a flat input (features) but gets %dx%dx%d; use batchnorm2d "
                        "for images, or add 'flatten' first", in.c, in.h, in.w);
        st = infer_shape(p, l);
        if (st) return st;
        if (!l->name[0]) snprintf(l->name, sizeof l->name, "%d", *num_layers);
        (*num_layers)++;
        return CN_OK;
    }
    return perr(p, CN_ERR_SPEC, "unknown layer or setting '%s' (expected input, train, conv2d, batchnorm2d, batchnorm1d, "
                "relu, relu6, leaky_relu, maxpool2d, avgpool2d, gap, dropout, dropout2d, flatten, linear, log_softmax, add, concat)", word);
}

cn_status cn_spec_parse(const char *text, const char *source, cn_spec *spec) {
    memset(spec, 0, sizeof *spec);
    parser p = {source ? source : "spec", 0, spec, NULL};
    spec->input = (cn_shape){1, 28, 28};
    spec->recipe.nesterov = -1;
    cn_layer *layers = cn_calloc(MAX_LAYERS, sizeof *layers);
    if (!layers) return CN_ERR_NOMEM;
    int num_layers = 0;
    cn_status st = CN_OK;
    const char *cursor = text;
    while (*cursor && st == CN_OK) {
        p.line++;
        const char *eol = strchr(cursor, '\n');
        size_t len = eol ? (size_t)(eol - cursor) : strlen(cursor);
        if (len >= MAX_LINE) { st = perr(&p, CN_ERR_SPEC, "line longer than %d characters", MAX_LINE - 1); break; }
        char line[MAX_LINE];
        memcpy(line, cursor, len);
        line[len] = '\0';
        cursor += len + (eol ? 1 : 0);
        char *hash = strchr(line, '#');
        if (hash && strncmp(line, "description", 11)) *hash = '\0';
        char *start = line;
        while (isspace((unsigned char)*start)) start++;
        char *end = start + strlen(start);
        while (end > start && isspace((unsigned char)end[-1])) *--end = '\0';
        for (char *c = start; *c; c++)
            if (((unsigned char)*c < 0x20 && *c != '\t') || *c == 0x7f) { st = perr(&p, CN_ERR_SPEC, "control character 0x%02x in the text", (unsigned char)*c); break; }
        if (st || !*start) continue;
        st = parse_line(&p, start, layers, &num_layers);
    }
    if (st == CN_OK && num_layers == 0)
        st = cn_fail(CN_ERR_SPEC, "%s: no layers (expected lines such as 'conv2d out=8 k=3')", p.source);
    if (st == CN_OK) {
        cn_shape out = layers[num_layers - 1].out;
        if (out.h != 1 || out.w != 1) {
            p.line = layers[num_layers - 1].spec_line;
            st = perr(&p, CN_ERR_SHAPE, "the last layer must output class scores (Nx1x1) but outputs %dx%dx%d; "
                      "end with gap/flatten/linear", out.c, out.h, out.w);
        } else if (out.c < 2) {
            st = perr(&p, CN_ERR_SHAPE, "the model outputs %d class score; at least 2 are needed", out.c);
        }
    }
    /* Unique state-dict names. */
    for (int i = 0; st == CN_OK && i < num_layers; i++)
        for (int j = 0; j < i; j++)
            if (!strcmp(layers[i].name, layers[j].name)) {
                p.line = layers[i].spec_line;
                st = perr(&p, CN_ERR_SPEC, "layer name '%s' is already used on line %d", layers[i].name, layers[j].spec_line);
                break;
            }
    /* Every layer's output goes somewhere: a branch nothing reads is a mistake in the spec. */
    for (int i = 0; st == CN_OK && i + 1 < num_layers; i++) {
        bool read = false;
        for (int j = i + 1; j < num_layers && !read; j++)
            for (int k = 0; k < layers[j].num_inputs; k++) read |= layers[j].inputs[k] == i + 1;
        if (!read) {
            p.line = layers[i].spec_line;
            st = perr(&p, CN_ERR_SPEC, "%s '%s': no later layer reads its output (the next line reads from=%s); "
                      "join it with add or concat, or drop it", cn_layer_kind_name(layers[i].kind), layers[i].name,
                      layers[i + 1].inputs[0] == 0 ? "input" : layers[layers[i + 1].inputs[0] - 1].name);
        }
    }
    if (st) { free(layers); return st; }
    spec->layers = layers;
    spec->num_layers = num_layers;
    return CN_OK;
}
