/* C-source export (see io/export_c.h), the text: model.h and model.c for a plan
 * that export_c.c built. model.c holds the weights as static const arrays, the
 * helpers the plan calls, copied from src/io/export_c_runtime (embedded at
 * build time as c_runtime_helpers, build/gen/export_c_runtime.h), and
 * model_predict: one helper call per op over activation buffers that values share
 * when their lifetimes allow (a plain stack ping-pongs between two). */
#include "io/export_c_plan.h"
#include "export_c_runtime.h"
#include "core/error.h"
#include "core/atomic_file.h"
#include "core/mem.h"
#include "core/text.h"
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NUM_HELPERS ((int)(sizeof c_runtime_helpers / sizeof c_runtime_helpers[0]))

/* A C float literal that reads back as exactly `v` (v finite). */
static void float_literal(float v, char *buf, size_t size) {
    snprintf(buf, size, "%.9g", (double)v);
    if (!strpbrk(buf, ".e")) strncat(buf, ".0", size - strlen(buf) - 1);
    strncat(buf, "f", size - strlen(buf) - 1);
}

static size_t put_floats(cn_text *t, const char *name, const float *v, size_t n) {
    char lit[48];
    cn_text_printf(t, "static const float %s[%zu] = {", name, n);
    for (size_t i = 0; i < n; i++) {
        float_literal(v[i], lit, sizeof lit);
        cn_text_printf(t, "%s%s%s", i % 8 ? " " : "\n    ", lit, i + 1 < n ? "," : "");
    }
    cn_text_printf(t, "\n};\n");
    return n * sizeof(float);
}

static size_t put_int8s(cn_text *t, const char *name, const int8_t *v, size_t n) {
    cn_text_printf(t, "static const int8_t %s[%zu] = {", name, n);
    for (size_t i = 0; i < n; i++) cn_text_printf(t, "%s%d%s", i % 16 ? " " : "\n    ", v[i], i + 1 < n ? "," : "");
    cn_text_printf(t, "\n};\n");
    return n;
}

/* Thousands separators for comments. */
static const char *grouped(size_t v, char *buf) {
    char raw[32];
    int n = snprintf(raw, sizeof raw, "%zu", v), o = 0;
    for (int i = 0; i < n; i++) {
        if (i && (n - i) % 3 == 0) buf[o++] = ',';
        buf[o++] = raw[i];
    }
    buf[o] = '\0';
    return buf;
}

/* ---- generation ---------------------------------------------------------------------- */

static const char *op_name(export_op_kind k) {
    static const char *names[] = {"conv2d", "linear", "batchnorm2d", "relu", "maxpool2d", "avgpool2d", "gap", "log_softmax",
                                  "relu6", "leaky_relu", "add", "concat"};
    return names[k];
}

/* Weights of every op as static const arrays; returns the flash bytes. */
static size_t put_weights(cn_text *t, const export_plan *p, bool int8) {
    size_t bytes = 0;
    char name[64];
    for (int i = 0; i < p->num_ops; i++) {
        const export_op *o = &p->ops[i];
        const char *lname = p->m->layers[o->first].name;
        if (o->kind != OP_CONV && o->kind != OP_LINEAR && o->kind != OP_AFFINE) continue;
        bool q = int8 && o->quant_in;
        cn_text_printf(t, "\n/* layer %s (%s%s) */\n", lname, op_name(o->kind), o->last > o->first ? ", folded/fused" : "");
        if (o->kind == OP_AFFINE) {
            snprintf(name, sizeof name, "op%d_%s", i, q ? "mult" : "scale");
            bytes += put_floats(t, name, q ? o->mult : o->w, (size_t)o->channels);
            snprintf(name, sizeof name, "op%d_shift", i);
            bytes += put_floats(t, name, q ? o->qbias : o->b, (size_t)o->channels);
            continue;
        }
        size_t wc = (size_t)o->channels * o->fan_in;
        if (q) {
            snprintf(name, sizeof name, "op%d_weight", i);
            bytes += put_int8s(t, name, o->wq, wc);
            snprintf(name, sizeof name, "op%d_mult", i);
            bytes += put_floats(t, name, o->mult, (size_t)o->channels);
            snprintf(name, sizeof name, "op%d_bias", i);
            bytes += put_floats(t, name, o->qbias, (size_t)o->channels);
        } else {
            snprintf(name, sizeof name, "op%d_weight", i);
            bytes += put_floats(t, name, o->w, wc);
            if (o->b) {
                snprintf(name, sizeof name, "op%d_bias", i);
                bytes += put_floats(t, name, o->b, (size_t)o->channels);
            }
        }
    }
    return bytes;
}

static size_t max_size(size_t a, size_t b) { return a > b ? a : b; }


/* ---- model_predict's body --------------------------------------------------------- */

/* Activation buffers: two pools, float (buf0, buf1, ...) and int8 (q0, q1, ...). A value
 * takes the lowest buffer of its pool that holds no value still to be read, so a plain
 * stack ping-pongs between two; in-place ops keep their input's buffer when they are its
 * last reader. */
enum { POOL_FLOAT, POOL_INT8 };

/* What the body of model_predict needs, gathered while it is written. */
typedef struct {
    bool int8, dsp;            /* int8 ops; DSP variants of conv2d_q/linear_q (cortex-m4) */
    int nbuf[2];               /* buffers of each pool */
    size_t *need[2];           /* per buffer: elements it must hold */
    int *busy[2];              /* per buffer: the last op that reads a value it holds */
    int *buf_of, *pool_of;     /* per value: its buffer and pool */
    size_t col;                /* int16 scratch values of the DSP variants */
    bool used[NUM_HELPERS];    /* helpers called */
    int missing;               /* a helper name not in c_runtime_helpers (a build defect), or -1 */
} emit_state;

static int helper_index(const char *name) {
    for (int k = 0; k < NUM_HELPERS; k++)
        if (!strcmp(c_runtime_helpers[k].name, name)) return k;
    return -1;
}

static void use_helper(emit_state *e, const char *name) {
    int k = helper_index(name);
    if (k >= 0) e->used[k] = true;
    else e->missing = 1;
}

static cn_status emit_init(emit_state *e, const export_plan *p) {
    size_t n = (size_t)p->num_values + 1;
    int *ints = cn_calloc(4 * n, sizeof *ints);
    size_t *sizes = cn_calloc(2 * n, sizeof *sizes);
    if (!ints || !sizes) { free(ints); free(sizes); return CN_ERR_NOMEM; }
    e->busy[0] = ints; e->busy[1] = ints + n; e->buf_of = ints + 2 * n; e->pool_of = ints + 3 * n;
    e->need[0] = sizes; e->need[1] = sizes + n;
    return CN_OK;
}

static void emit_free(emit_state *e) { free(e->busy[0]); free(e->need[0]); }

/* Value v (n elements, last read by op `until`) into buffer b of `pool`. */
static void hold(emit_state *e, int v, int pool, int b, size_t n, int until) {
    e->buf_of[v] = b;
    e->pool_of[v] = pool;
    e->need[pool][b] = max_size(e->need[pool][b], n);
    if (until > e->busy[pool][b]) e->busy[pool][b] = until;
}

/* Written by op i: the lowest buffer of `pool` whose values have all been read before op i
 * (so never one that op i reads). */
static void take(emit_state *e, const export_plan *p, int v, int pool, int i, size_t n) {
    int b = 0;
    while (b < e->nbuf[pool] && e->busy[pool][b] >= i) b++;
    if (b == e->nbuf[pool]) e->nbuf[pool]++;
    e->busy[pool][b] = -1;
    hold(e, v, pool, b, n, p->last_reader[v]);
}

static void value_name(const emit_state *e, int v, char name[16]) {
    snprintf(name, 16, "%s%d", e->pool_of[v] == POOL_INT8 ? "q" : "buf", e->buf_of[v]);
}

/* The max pool fused into int8 conv op i (the next op, when it alone reads the conv's output,
 * has stride = kernel and no padding and the conv writes int8), or NULL. */
static const export_op *fused_pool(const export_plan *p, int i, bool int8) {
    const export_op *o = &p->ops[i], *next = i + 1 < p->num_ops ? &p->ops[i + 1] : NULL;
    if (!int8 || o->kind != OP_CONV || !o->quant_out || !next || next->kind != OP_MAXPOOL) return NULL;
    if (next->in_v[0] != o->out_v || !export_sole_reader(p, o->out_v, i + 1)) return NULL;
    return next->stride == next->k && next->pad == 0 && next->quant_out ? next : NULL;
}

/* The call of a join (add, concat): its inputs as a local array of pointers, then the helper. */
static void put_join(cn_text *t, emit_state *e, const export_op *o, char in[][16], const char *out) {
    bool q = e->int8 && o->quant_in, concat = o->kind == OP_CONCAT;
    char lit[48];
    cn_text_printf(t, "    {\n        const %s *in[%d] = {", q ? "int8_t" : "float", o->num_in);
    for (int k = 0; k < o->num_in; k++) cn_text_printf(t, "%s%s", k ? ", " : "", in[k]);
    cn_text_printf(t, "};\n");
    if (concat) {
        cn_text_printf(t, "        static const int size[%d] = {", o->num_in);
        for (int k = 0; k < o->num_in; k++) cn_text_printf(t, "%s%d", k ? ", " : "", o->in_n[k]);
        cn_text_printf(t, "};\n");
    }
    if (q) {
        cn_text_printf(t, "        static const float rescale[%d] = {", o->num_in);
        for (int k = 0; k < o->num_in; k++) {
            float_literal(o->rescale[k], lit, sizeof lit);
            cn_text_printf(t, "%s%s", k ? ", " : "", lit);
        }
        cn_text_printf(t, "};\n");
    }
    const char *fn = concat ? (q ? "concat_q" : "concat") : (q ? "add_q" : "add");
    use_helper(e, fn);
    if (concat) cn_text_printf(t, "        %s(in, size, %s%d, %s);\n    }\n", fn, q ? "rescale, " : "", o->num_in, out);
    else cn_text_printf(t, "        %s(in, %s%d, %s, %d, %d);\n    }\n", fn, q ? "rescale, " : "", o->num_in, out,
                        cn_shape_size(o->out), o->relu);
}

/* The call of op i (pool: the max pool fused into it, or NULL) reading `in`, writing `out`
 * (in-place ops: out is the buffer they work on). */
static void put_op_call(cn_text *t, const export_plan *p, emit_state *e, int i, const export_op *pool, char in[][16],
                        const char *out) {
    const export_op *o = &p->ops[i], *end = pool ? pool : o;
    bool q = e->int8 && o->quant_in, qo = e->int8 && o->quant_out, conv = o->kind == OP_CONV;
    int C = o->in.c, H = o->in.h, W = o->in.w, OC = end->out.c, OH = end->out.h, OW = end->out.w;
    bool grouped = conv && (o->groups > 1 || o->dilation > 1);
    char rescale[48];
    float_literal(q && qo ? o->s_in / o->s_out : 1.0f, rescale, sizeof rescale);
    static const char *const names[][2] = {
        [OP_CONV] = {"conv2d", "conv2d_q"}, [OP_LINEAR] = {"linear", "linear_q"}, [OP_AFFINE] = {"affine", "affine_q"},
        [OP_RELU] = {"relu", "relu_q"}, [OP_MAXPOOL] = {"maxpool", "maxpool_q"}, [OP_AVGPOOL] = {"avgpool", "avgpool_q"},
        [OP_GAP] = {"gap", "gap_q"}, [OP_LOG_SOFTMAX] = {"log_softmax", "log_softmax"},
        [OP_RELU6] = {"relu6", "relu6_q"}, [OP_LEAKY_RELU] = {"leaky_relu", "leaky_relu_q"},
        [OP_ADD] = {"add", "add_q"}, [OP_CONCAT] = {"concat", "concat_q"}};
    const char *fn = grouped ? (q ? "conv2d_gq" : "conv2d_grouped") : names[o->kind][q];
    const char *col = e->dsp ? "col" : "(int16_t *)0";
    switch (o->kind) {
    case OP_CONV: case OP_LINEAR:
        use_helper(e, fn);
        if (q) {
            use_helper(e, "requant");
            if (e->dsp) e->col = max_size(e->col, o->fan_in);
            cn_text_printf(t, "    %s(%s, %s, %s, op%d_weight, op%d_mult, op%d_bias, ", fn, in[0], qo ? out : "(int8_t *)0",
                qo ? "(float *)0" : out, i, i, i);
        } else {
            cn_text_printf(t, "    %s(%s, %s, op%d_weight, ", fn, in[0], out, i);
            if (o->b) cn_text_printf(t, "op%d_bias, ", i); else cn_text_printf(t, "(const float *)0, ");
        }
        if (conv) cn_text_printf(t, "%d, %d, %d, %d, %d, %d, %d, %d, %d, %d", C, H, W, OC, o->k, o->stride, o->pad, OH, OW, o->relu);
        else cn_text_printf(t, "%d, %d, %d", cn_shape_size(o->in), OC, o->relu);
        if (q && conv) cn_text_printf(t, ", %d", pool ? pool->k : 1);
        if (grouped) cn_text_printf(t, ", %d, %d", o->groups, o->dilation);
        cn_text_printf(t, "%s%s);\n", q ? ", " : "", q ? col : "");
        return;
    case OP_ADD: case OP_CONCAT: put_join(t, e, o, in, out); return;
    default: break;
    }
    use_helper(e, fn);
    switch (o->kind) {
    case OP_AFFINE:
        cn_text_printf(t, "    %s(%s, op%d_%s, op%d_shift, %d, %d, %d);\n", fn, out, i, q ? "mult" : "scale", i, C, H * W, o->relu);
        break;
    case OP_RELU: cn_text_printf(t, "    %s(%s, %d);\n", fn, out, cn_shape_size(o->in)); break;
    case OP_RELU6:
        if (q) cn_text_printf(t, "    %s(%s, %d, %d);\n", fn, out, cn_shape_size(o->in), o->relu6_top);
        else cn_text_printf(t, "    %s(%s, %d);\n", fn, out, cn_shape_size(o->in));
        break;
    case OP_LEAKY_RELU: {
        char slope[48];
        float_literal(o->slope, slope, sizeof slope);
        cn_text_printf(t, "    %s(%s, %d, %s);\n", fn, out, cn_shape_size(o->in), slope);
        break;
    }
    case OP_MAXPOOL: case OP_AVGPOOL: case OP_GAP:
        if (o->kind == OP_GAP) cn_text_printf(t, "    %s(%s, %s, %d, %d", fn, in[0], out, C, H * W);
        else cn_text_printf(t, "    %s(%s, %s, %d, %d, %d, %d, %d, %d, %d, %d", fn, in[0], out, C, H, W, o->k, o->stride, o->pad,
                            OH, OW);
        if (q && o->kind != OP_MAXPOOL) cn_text_printf(t, ", %s", rescale);
        cn_text_printf(t, ");\n");
        break;
    case OP_LOG_SOFTMAX: cn_text_printf(t, "    %s(%s, %d);\n", fn, out, C); break;
    default: break;
    }
}

/* The comment line above op i's call: layers, kind, shapes, what is fused, and where it reads
 * from when that is not the op before. */
static void put_op_comment(cn_text *t, const export_plan *p, const emit_state *e, int i, const export_op *pool) {
    const export_op *o = &p->ops[i], *end = pool ? pool : o;
    const cn_layer *layers = p->m->layers, *first = &layers[o->first], *last = &layers[end->last];
    bool q = e->int8 && o->quant_in, qo = e->int8 && o->quant_out, range = end->last > o->first;
    char fused[32] = "", conv_kind[48] = "", from[160] = "";
    if (pool) snprintf(fused, sizeof fused, ", max pool %d fused", pool->k);
    if (o->kind == OP_CONV && (o->groups > 1 || o->dilation > 1))
        snprintf(conv_kind, sizeof conv_kind, " (groups %d, dilation %d)", o->groups, o->dilation);
    if (o->num_in > 1 || (i > 0 && o->in_v[0] != p->ops[i - 1].out_v) || (i == 0 && o->in_v[0] != 0)) {
        size_t n = (size_t)snprintf(from, sizeof from, " from");
        for (int k = 0; k < o->num_in && n < sizeof from; k++)
            n += (size_t)snprintf(from + n, sizeof from - n, "%s %s", k ? "," : "", o->in_v[k] ? layers[o->in_v[k] - 1].name : "input");
    }
    cn_text_printf(t, "    /* layer%s %s%s%s: %s%s%s %dx%dx%d -> %dx%dx%d%s%s%s%s */\n", range ? "s" : "", first->name,
        range ? "-" : "", range ? last->name : "", op_name(o->kind), conv_kind, from, o->in.c, o->in.h, o->in.w, end->out.c,
        end->out.h, end->out.w, o->bn_folded ? ", batch norm folded" : "", o->relu ? ", ReLU" : "", fused,
        q ? (qo ? ", int8" : ", int8 -> float") : "");
}

/* The body of model_predict: the input into buf0 (float) or q0 (int8), then one call per
 * op, each reading its values' buffers. */
static void put_calls(cn_text *t, const export_plan *p, emit_state *e) {
    bool int8 = e->int8;
    cn_text_printf(t, "    for (i = 0; i < MODEL_INPUT_SIZE; i++) {\n"
           "        float x = inf ? inf[i] : (float)inu[i] / 255.0f;\n");
    const char *norm = p->norm_per_channel
        ? "(x - norm_mean[i / (MODEL_INPUT_H * MODEL_INPUT_W)]) / norm_std[i / (MODEL_INPUT_H * MODEL_INPUT_W)]"
        : "(x - MODEL_NORM_MEAN) / MODEL_NORM_STD";
    if (int8) cn_text_printf(t, "        q0[i] = q8(%s * INPUT_INV_SCALE);\n    }\n", norm);
    else cn_text_printf(t, "        buf0[i] = %s;\n    }\n", norm);
    take(e, p, 0, int8 ? POOL_INT8 : POOL_FLOAT, 0, (size_t)cn_shape_size(p->m->input));
    if (int8) use_helper(e, "q8");
    for (int i = 0; i < p->num_ops; i++) {
        const export_op *o = &p->ops[i], *pool = fused_pool(p, i, int8), *end = pool ? pool : o;
        int pool_out = int8 && o->quant_out ? POOL_INT8 : POOL_FLOAT;
        size_t out_n = (size_t)cn_shape_size(end->out);
        char in[CN_MAX_INPUTS][16], out[16];
        for (int k = 0; k < o->num_in; k++) value_name(e, o->in_v[k], in[k]);
        put_op_comment(t, p, e, i, pool);
        if (export_op_in_place(o->kind) && export_sole_reader(p, o->in_v[0], i)) {
            hold(e, o->out_v, e->pool_of[o->in_v[0]], e->buf_of[o->in_v[0]], out_n, p->last_reader[o->out_v]);
        } else {
            take(e, p, end->out_v, pool_out, i, out_n);
            if (export_op_in_place(o->kind)) {   /* a later layer still reads the input: work on a copy */
                value_name(e, o->out_v, out);
                use_helper(e, pool_out == POOL_INT8 ? "copy_q" : "copy");
                cn_text_printf(t, "    %s(%s, %s, %d);\n", pool_out == POOL_INT8 ? "copy_q" : "copy", in[0], out, cn_shape_size(o->in));
            }
        }
        value_name(e, end->out_v, out);
        put_op_call(t, p, e, i, pool, in, out);
        if (pool) i++;
    }
    char out[16];
    value_name(e, p->out_value, out);
    cn_text_printf(t, "    for (i = 0; i < MODEL_NUM_CLASSES; i++) out[i] = %s[i];\n", out);
}

/* The int8 helpers with a DSP variant (int8_dsp.c), and the variant's name. */
static const char *const dsp_pairs[][2] = {
    {"conv2d_q", "conv2d_q_dsp"}, {"conv2d_gq", "conv2d_gq_dsp"}, {"linear_q", "linear_q_dsp"}};
#define NUM_DSP_PAIRS ((int)(sizeof dsp_pairs / sizeof dsp_pairs[0]))

/* The helpers the body calls, in c_runtime_helpers' order; with the DSP variants, the
 * helpers that have one come last, in both forms, chosen by the preprocessor. */
static void put_helpers(cn_text *t, const emit_state *e) {
    bool dsp = false, has_dsp[NUM_HELPERS];
    memset(has_dsp, 0, sizeof has_dsp);
    for (int k = 0; k < NUM_DSP_PAIRS && e->dsp; k++) {
        int portable = helper_index(dsp_pairs[k][0]);
        has_dsp[portable] = true;
        dsp |= e->used[portable];
    }
    for (int k = 0; k < NUM_HELPERS; k++)
        if (e->used[k] && !(dsp && has_dsp[k])) cn_text_printf(t, "\n%s", c_runtime_helpers[k].text);
    if (!dsp) return;
    cn_text_printf(t, "\n#if defined(__ARM_FEATURE_DSP) && defined(__ARM_FEATURE_SIMD32) && !defined(MODEL_NO_DSP)\n");
    cn_text_printf(t, "\n%s", c_runtime_helpers[helper_index("dsp_prelude")].text);
    cn_text_printf(t, "\n%s", c_runtime_helpers[helper_index("dsp_dot")].text);
    for (int k = 0; k < NUM_DSP_PAIRS; k++)
        if (e->used[helper_index(dsp_pairs[k][0])]) cn_text_printf(t, "\n%s", c_runtime_helpers[helper_index(dsp_pairs[k][1])].text);
    cn_text_printf(t, "\n#else /* portable C */\n");
    for (int k = 0; k < NUM_DSP_PAIRS; k++)
        if (e->used[helper_index(dsp_pairs[k][0])]) cn_text_printf(t, "\n%s", c_runtime_helpers[helper_index(dsp_pairs[k][0])].text);
    cn_text_printf(t, "\n#endif\n");
}

/* model.h: sizes, normalisation, flash and RAM, the two entry points. */
static void put_header(cn_text *h, const export_plan *p, bool int8, size_t weight_count, size_t flash, size_t ram,
                       const float *mean, const float *std) {
    const cn_model *m = p->m;
    char g1[32], g2[32], g3[32];
    int classes = cn_model_num_classes(m);
    bool log_probs = m->layers[m->num_layers - 1].kind == CN_LAYER_LOG_SOFTMAX;
    cn_text_printf(h, "/* model.h - generated by convnet from %s (%s).\n", m->source_name, int8 ? "int8" : "float32");
    cn_text_printf(h, " * %s parameters after folding batch norm; flash %s bytes, RAM %s bytes (see model.c). */\n",
        grouped(weight_count, g1), grouped(flash, g2), grouped(ram, g3));
    cn_text_printf(h, "#ifndef MODEL_H\n#define MODEL_H\n\n");
    cn_text_printf(h, "#define MODEL_INPUT_C %d\n#define MODEL_INPUT_H %d\n#define MODEL_INPUT_W %d\n", m->input.c, m->input.h, m->input.w);
    cn_text_printf(h, "#define MODEL_INPUT_SIZE (MODEL_INPUT_C * MODEL_INPUT_H * MODEL_INPUT_W)\n");
    cn_text_printf(h, "#define MODEL_NUM_CLASSES %d\n", classes);
    if (p->norm_per_channel) {
        cn_text_printf(h, "/* input normalisation applied inside model_predict, per channel c: (pixel - mean[c]) / std[c] */\n");
        for (int k = 0; k < 2; k++) {
            cn_text_printf(h, "#define MODEL_NORM_%s {", k ? "STD" : "MEAN");
            for (int ch = 0; ch < m->input.c; ch++) {
                char lit[48];
                float_literal(k ? std[ch] : mean[ch], lit, sizeof lit);
                cn_text_printf(h, "%s%s", ch ? ", " : "", lit);
            }
            cn_text_printf(h, "}\n");
        }
    } else {
        char lit_mean[48], lit_std[48];
        float_literal(mean[0], lit_mean, sizeof lit_mean);
        float_literal(std[0], lit_std, sizeof lit_std);
        cn_text_printf(h, "/* input normalisation applied inside model_predict: (pixel - mean) / std */\n");
        cn_text_printf(h, "#define MODEL_NORM_MEAN %s\n#define MODEL_NORM_STD %s\n", lit_mean, lit_std);
    }
    cn_text_printf(h, "#define MODEL_FLASH_BYTES %zu\n#define MODEL_RAM_BYTES %zu\n\n", flash, ram);
    cn_text_printf(h, "/* in: raw pixel intensities in [0, 1], %d x %d x %d (channel, row, column).\n", m->input.c, m->input.h, m->input.w);
    cn_text_printf(h, " * out: the %d class scores (%s).\n", classes, log_probs ? "log-probabilities" : "logits");
    cn_text_printf(h, " * Returns the index of the largest score (the first one on ties). */\n");
    cn_text_printf(h, "int model_predict(const float in[MODEL_INPUT_SIZE], float out[MODEL_NUM_CLASSES]);\n");
    cn_text_printf(h, "/* The same with pixels 0..255 (read as pixel / 255.0f): the same results for the same\n"
           " * image, without a float copy of it. */\n");
    cn_text_printf(h, "int model_predict_u8(const unsigned char in[MODEL_INPUT_SIZE], float out[MODEL_NUM_CLASSES]);\n\n#endif\n");
}

/* model.c's opening comment: what it holds and needs. */
static void put_source_comment(cn_text *c, const export_plan *p, const emit_state *e, size_t flash, size_t ram,
                               int calib_count) {
    char g1[32], g2[32];
    cn_text_printf(c, "/* model.c - generated by convnet from %s (%s%s). Do not edit.\n *\n", p->m->source_name,
        e->int8 ? "int8" : "float32", e->dsp ? ", Cortex-M4 DSP" : "");
    cn_text_printf(c, " * Flash: %s bytes of static const weights, biases and scales.\n", grouped(flash, g1));
    cn_text_printf(c, " * RAM: %s bytes, the locals of model_run: activation buffers, each sized to the largest\n"
           " * activation it holds and reused once the values in it have been read for the last time\n * (", grouped(ram, g2));
    for (int pool = 0, n = 0; pool < 2; pool++)
        for (int b = 0; b < e->nbuf[pool]; b++)
            cn_text_printf(c, "%s%s%d %zu bytes", n++ ? ", " : "", pool ? "q" : "buf", b, e->need[pool][b] * (pool ? 1 : sizeof(float)));
    if (e->col) cn_text_printf(c, ", col %zu bytes of scratch", e->col * 2);
    cn_text_printf(c, "), plus a few scalars of stack.\n");
    if (e->int8)
        cn_text_printf(c, " *\n * int8: per-output-channel symmetric weights; activations symmetric per tensor, scales\n"
               " * calibrated on %d images (%.2fth percentile of |x|); int32 accumulation, requantised with a\n"
               " * float multiplier per channel. Layers after the last conv/linear run in float. A max pool\n"
               " * right after an int8 conv is fused into it.\n", calib_count, CALIB_PERCENTILE * 100.0);
    if (e->dsp)
        cn_text_printf(c, " * With the Arm DSP extension (__ARM_FEATURE_DSP, e.g. -mcpu=cortex-m4) conv and linear use\n"
               " * SMLAD through arm_acle.h; define MODEL_NO_DSP for the portable code. Same results.\n");
    if (e->int8 && cn_model_has_branches(p->m))
        cn_text_printf(c, " * add and concat requantise each input to their output's calibrated scale.\n");
    cn_text_printf(c, " * Batch norm that follows a conv (batchnorm1d: a linear) is folded into it and ReLU is fused\n"
           " * where it follows conv/linear/batch norm%s, when nothing else reads the value they take over;\n"
           " * dropout, dropout2d and flatten are identities at inference.\n */\n", cn_model_has_branches(p->m) ? "/add" : "");
}

cn_status cn_export_c_generate(const export_plan *p, const char *dir, const float *mean, const float *std, int flags, int calib_count,
                               cn_export_c_stats *stats) {
    bool int8 = flags & CN_EXPORT_C_INT8;
    char lit_inv[48];
    emit_state e = {.int8 = int8, .dsp = int8 && (flags & CN_EXPORT_C_CORTEX_M4)};
    static const char *const fixed[] = {"q8", "requant", "dsp_prelude", "dsp_dot"};
    for (size_t k = 0; k < sizeof fixed / sizeof *fixed; k++)
        if (helper_index(fixed[k]) < 0) e.missing = 1;
    for (int k = 0; k < NUM_DSP_PAIRS; k++)
        if (helper_index(dsp_pairs[k][0]) < 0 || helper_index(dsp_pairs[k][1]) < 0) e.missing = 1;
    cn_text body = {0}, weights = {0}, c = {0}, h = {0};
    if (emit_init(&e, p)) return cn_fail(CN_ERR_NOMEM, "%s: out of memory generating C source", dir);
    put_calls(&body, p, &e);
    if (e.missing) {
        free(body.p);
        emit_free(&e);
        return cn_fail(CN_ERR_UNSUPPORTED, "%s: a C helper is missing from src/io/export_c_runtime (build defect)", dir);
    }
    size_t ram = e.col * 2;
    for (int pool = 0; pool < 2; pool++)
        for (int b = 0; b < e.nbuf[pool]; b++) ram += e.need[pool][b] * (pool ? 1 : sizeof(float));
    size_t weight_count = 0;
    for (int i = 0; i < p->num_ops; i++) {
        const export_op *o = &p->ops[i];
        if (o->kind == OP_CONV || o->kind == OP_LINEAR)
            weight_count += (size_t)o->channels * o->fan_in + (o->b ? (size_t)o->channels : 0);
        if (o->kind == OP_AFFINE) weight_count += 2 * (size_t)o->channels;
    }
    size_t flash = put_weights(&weights, p, int8);
    float_literal(int8 ? 1.0f / p->s_input : 1.0f, lit_inv, sizeof lit_inv);
    put_header(&h, p, int8, weight_count, flash, ram, mean, std);

    put_source_comment(&c, p, &e, flash, ram, calib_count);
    cn_text_printf(&c, "#include \"model.h\"\n#include <math.h>\n%s\n", int8 ? "#include <stdint.h>\n" : "");
    if (int8) cn_text_printf(&c, "/* 1 / scale of the normalised input */\n#define INPUT_INV_SCALE %s\n", lit_inv);
    if (p->norm_per_channel)
        cn_text_printf(&c, "static const float norm_mean[MODEL_INPUT_C] = MODEL_NORM_MEAN, norm_std[MODEL_INPUT_C] = MODEL_NORM_STD;\n");
    if (weights.failed) c.failed = true; else cn_text_printf(&c, "%s", weights.p ? weights.p : "");
    put_helpers(&c, &e);
    cn_text_printf(&c, "\n/* inf: pixels in [0, 1], or null and inu: pixels 0..255 */\n"
            "static int model_run(const float *inf, const unsigned char *inu, float out[MODEL_NUM_CLASSES])\n{\n");
    for (int pool = 0; pool < 2; pool++)
        for (int b = 0; b < e.nbuf[pool]; b++)
            cn_text_printf(&c, "    %s %s%d[%zu];   /* %zu bytes */\n", pool ? "int8_t" : "float", pool ? "q" : "buf", b,
                           e.need[pool][b], e.need[pool][b] * (pool ? 1 : sizeof(float)));
    if (e.col) cn_text_printf(&c, "    int16_t col[%zu];   /* %zu bytes */\n", e.col, e.col * 2);
    cn_text_printf(&c, "    int i, best = 0;\n");
    if (body.failed) c.failed = true; else cn_text_printf(&c, "%s", body.p);
    cn_text_printf(&c, "    for (i = 1; i < MODEL_NUM_CLASSES; i++) if (out[i] > out[best]) best = i;\n    return best;\n}\n");
    cn_text_printf(&c, "\nint model_predict(const float in[MODEL_INPUT_SIZE], float out[MODEL_NUM_CLASSES])\n{\n"
            "    return model_run(in, (const unsigned char *)0, out);\n}\n");
    cn_text_printf(&c, "\nint model_predict_u8(const unsigned char in[MODEL_INPUT_SIZE], float out[MODEL_NUM_CLASSES])\n{\n"
            "    return model_run((const float *)0, in, out);\n}\n");

    cn_status st = CN_OK;
    if (c.failed || h.failed) st = cn_fail(CN_ERR_NOMEM, "%s: out of memory generating C source", dir);
    char path[4096];
    if (!st && snprintf(path, sizeof path, "%s/model.h", dir) >= (int)sizeof path) st = cn_fail(CN_ERR_ARG, "%s: path too long", dir);
    if (!st) st = cn_write_file_atomic(path, h.p, h.len);
    if (!st) { snprintf(path, sizeof path, "%s/model.c", dir); st = cn_write_file_atomic(path, c.p, c.len); }
    free(weights.p); free(c.p); free(h.p); free(body.p);
    emit_free(&e);
    if (!st && stats) {
        stats->flash_bytes = flash;
        stats->ram_bytes = ram;
        stats->weight_count = weight_count;
        stats->int8 = int8;
    }
    return st;
}
