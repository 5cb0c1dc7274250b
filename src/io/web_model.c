/* The web target's blob parser and interpreter (see web_model.h). Plain loops:
 * it runs in WebAssembly (no SIMD, no threads) on one image at a time. */
#include "io/web_model.h"
#include "io/preprocess.h"
#include "core/error.h"
#include "core/mem.h"
#include "kernels/log_softmax.h"
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define HEADER_WORDS 9
#define LAYER_WORDS 15

typedef struct {
    const unsigned char *p;
    size_t size, pos;
} reader;

static int read_word(reader *r, uint32_t *v) {
    if (r->size - r->pos < 4) return 0;
    memcpy(v, r->p + r->pos, 4);
    r->pos += 4;
    return 1;
}

/* Every product of shape fields is taken in 64 bits (wasm32's size_t and long have 32)
 * and bounded before use. c*h*w of a shape that passes shape_ok fits CN_WEB_MAX_ACTIVATION. */
static int shape_ok(int c, int h, int w) {
    if (c < 1 || h < 1 || w < 1 || c > CN_WEB_MAX_ACTIVATION || h > CN_WEB_MAX_ACTIVATION || w > CN_WEB_MAX_ACTIVATION)
        return 0;
    int64_t ch = (int64_t)c * h;   /* < 2^44 */
    return ch <= CN_WEB_MAX_ACTIVATION && ch * w <= CN_WEB_MAX_ACTIVATION;
}

/* a * b for a, b >= 0, or -1 when it exceeds INT32_MAX (more floats than a blob can declare) */
static int64_t mul_capped(int64_t a, int64_t b) {
    if (a < 0 || b < 0) return -1;
    if (b != 0 && a > INT32_MAX / b) return -1;
    return a * b;
}

/* The output size of a conv or pool along one axis: (in + 2 pad - span) / stride + 1, or -1
 * when the padded input is shorter than the span. In 64 bits: a damaged blob's fields may be
 * near INT_MAX. */
static int64_t out_len(int64_t in, int64_t pad, int64_t span, int64_t stride) {
    int64_t padded = in + 2 * pad;
    return padded < span ? -1 : (padded - span) / stride + 1;
}

/* Floats layer `l` must carry, or -1 if its geometry is wrong. Sets has_bias. Shapes have
 * passed shape_ok. */
static int64_t expected_floats(cn_web_layer *l, int64_t n) {
    int64_t in = (int64_t)l->in_c * l->in_h * l->in_w, out = (int64_t)l->out_c * l->out_h * l->out_w;
    int same = l->out_c == l->in_c && l->out_h == l->in_h && l->out_w == l->in_w;
    int plain = l->groups == 1 && l->dilation == 1 && l->alpha == 0.0f;   /* the fields of non-conv layers */
    if (l->op != CN_WEB_CONV && l->op != CN_WEB_LEAKY_RELU && !plain) return -1;
    switch (l->op) {
    case CN_WEB_CONV: {
        if (l->kernel < 1 || l->stride < 1 || l->pad < 0 || l->groups < 1 || l->dilation < 1 || l->alpha != 0.0f ||
            l->in_c % l->groups || l->out_c % l->groups)
            return -1;
        int64_t span = ((int64_t)l->kernel - 1) * l->dilation + 1;
        if (l->out_h != out_len(l->in_h, l->pad, span, l->stride) || l->out_w != out_len(l->in_w, l->pad, span, l->stride))
            return -1;
        int64_t wn = mul_capped(mul_capped((int64_t)l->out_c, l->in_c / l->groups), mul_capped(l->kernel, l->kernel));
        if (wn < 0) return -1;
        l->has_bias = n == wn + l->out_c;
        return l->has_bias ? wn + l->out_c : wn;
    }
    case CN_WEB_LINEAR: {
        if (l->out_h != 1 || l->out_w != 1) return -1;
        int64_t wn = mul_capped(l->out_c, in);
        if (wn < 0) return -1;
        l->has_bias = n == wn + l->out_c;
        return l->has_bias ? wn + l->out_c : wn;
    }
    case CN_WEB_AFFINE: return same ? 2 * (int64_t)l->in_c : -1;
    case CN_WEB_RELU: case CN_WEB_RELU6: case CN_WEB_ADD: return same ? 0 : -1;
    case CN_WEB_CONCAT: return 0;   /* its shapes: inputs_fit */
    case CN_WEB_LEAKY_RELU: return same && l->groups == 1 && l->dilation == 1 && isfinite(l->alpha) ? 0 : -1;
    case CN_WEB_MAXPOOL:
    case CN_WEB_AVGPOOL:
        if (l->out_c != l->in_c || l->kernel < 1 || l->stride < 1 || l->pad < 0 || 2 * (int64_t)l->pad > l->kernel ||
            l->out_h != out_len(l->in_h, l->pad, l->kernel, l->stride) || l->out_w != out_len(l->in_w, l->pad, l->kernel, l->stride))
            return -1;
        return 0;
    case CN_WEB_GAP: return l->out_c == l->in_c && l->out_h == 1 && l->out_w == 1 ? 0 : -1;
    case CN_WEB_LOG_SOFTMAX: return in == out && l->out_h == 1 && l->out_w == 1 ? 0 : -1;
    }
    return -1;
}

/* The values layer l reads against its declared shapes (each value's shape has passed
 * shape_ok, so the products fit): the first one as its in shape (a flat in shape takes any
 * value of as many floats); an add's others of its in size; a concat's of its out height
 * and width (flat: any), their channels (flat: sizes) adding up to its out channels.
 * Sets in_n. */
static int inputs_fit(const cn_web_model *m, cn_web_layer *l) {
    int64_t in = (int64_t)l->in_c * l->in_h * l->in_w, sum = 0;
    int flat_out = l->out_h == 1 && l->out_w == 1;
    for (int j = 0; j < l->num_inputs; j++) {
        const int *s = m->value_shape[l->inputs[j]];
        int64_t n = (int64_t)s[0] * s[1] * s[2];
        l->in_n[j] = (size_t)n;
        if (j == 0) {
            int flat = l->op == CN_WEB_LINEAR || l->op == CN_WEB_LOG_SOFTMAX || (l->in_h == 1 && l->in_w == 1);
            if (flat ? n != in : s[0] != l->in_c || s[1] != l->in_h || s[2] != l->in_w) return 0;
        }
        if (l->op == CN_WEB_ADD && n != in) return 0;
        if (l->op == CN_WEB_CONCAT) {
            if (!flat_out && (s[1] != l->out_h || s[2] != l->out_w)) return 0;
            sum += flat_out ? n : s[0];
        }
    }
    return l->op != CN_WEB_CONCAT || sum == l->out_c;
}

/* Layer i at r->pos; its floats are read from m->weights, the aligned copy of
 * the blob from byte `start` on. */
static cn_status parse_layer(reader *r, cn_web_model *m, int i, size_t start) {
    size_t at = r->pos;
    uint32_t v[LAYER_WORDS];
    for (int k = 0; k < LAYER_WORDS; k++)
        if (!read_word(r, &v[k])) return cn_fail(CN_ERR_FORMAT, "web blob: layer %d at offset %zu is truncated", i, at);
    cn_web_layer *l = &m->layers[i];
    memset(l, 0, sizeof *l);
    l->op = (int)v[0];
    l->in_c = (int)v[1]; l->in_h = (int)v[2]; l->in_w = (int)v[3];
    l->out_c = (int)v[4]; l->out_h = (int)v[5]; l->out_w = (int)v[6];
    l->kernel = (int)v[7]; l->stride = (int)v[8]; l->pad = (int)v[9];
    l->groups = (int)v[10]; l->dilation = (int)v[11];
    memcpy(&l->alpha, &v[12], 4);
    int64_t n = (int32_t)v[13];
    int join = l->op == CN_WEB_ADD || l->op == CN_WEB_CONCAT;
    if (join ? v[14] < 2 || v[14] > CN_WEB_MAX_INPUTS : v[14] != 1)
        return cn_fail(CN_ERR_FORMAT, "web blob: layer %d at offset %zu reads %u values; expected %s", i, at, v[14],
                       join ? "2 to 8" : "1");
    l->num_inputs = (int)v[14];
    for (int k = 0; k < l->num_inputs; k++) {
        uint32_t in;
        if (!read_word(r, &in)) return cn_fail(CN_ERR_FORMAT, "web blob: layer %d at offset %zu is truncated", i, at);
        if (in > (uint32_t)i)
            return cn_fail(CN_ERR_FORMAT, "web blob: layer %d at offset %zu reads value %u; expected 0 to %d (the input or "
                           "an earlier layer's output)", i, at, in, i);
        l->inputs[k] = (int)in;
    }
    if (!shape_ok(l->in_c, l->in_h, l->in_w) || !shape_ok(l->out_c, l->out_h, l->out_w))
        return cn_fail(CN_ERR_FORMAT, "web blob: layer %d at offset %zu has shape %dx%dx%d -> %dx%dx%d", i, at, l->in_c,
                       l->in_h, l->in_w, l->out_c, l->out_h, l->out_w);
    if (!inputs_fit(m, l)) {
        const int *s = m->value_shape[l->inputs[0]];
        return cn_fail(CN_ERR_FORMAT, "web blob: layer %d at offset %zu takes %dx%dx%d -> %dx%dx%d but reads values that do "
                       "not fit (the first is %dx%dx%d)", i, at, l->in_c, l->in_h, l->in_w, l->out_c, l->out_h, l->out_w,
                       s[0], s[1], s[2]);
    }
    int64_t want = n < 0 ? -1 : expected_floats(l, n);
    if (want < 0 || n != want)
        return cn_fail(CN_ERR_FORMAT, "web blob: layer %d (op %d) at offset %zu: %lld floats or its geometry do not fit "
                       "its shapes", i, l->op, at, (long long)n);
    if ((uint64_t)n * 4 > (uint64_t)(r->size - r->pos))   /* n < 2^31: no wrap in 64 bits */
        return cn_fail(CN_ERR_FORMAT, "web blob: layer %d at offset %zu declares %lld floats; only %zu bytes remain", i, at,
                       (long long)n, r->size - r->pos);
    const float *w = m->weights + (r->pos - start) / 4;
    r->pos += (size_t)n * 4;
    if (l->op == CN_WEB_CONV || l->op == CN_WEB_LINEAR) {
        l->w = w;
        l->b = l->has_bias ? w + (n - l->out_c) : NULL;
    } else if (l->op == CN_WEB_AFFINE) {
        l->w = w;
        l->b = w + l->in_c;
    }
    for (int64_t k = 0; k < n; k++)
        if (!isfinite(w[k])) return cn_fail(CN_ERR_FORMAT, "web blob: layer %d float %lld is not finite", i, (long long)k);
    m->value_shape[i + 1][0] = l->out_c;
    m->value_shape[i + 1][1] = l->out_h;
    m->value_shape[i + 1][2] = l->out_w;
    return CN_OK;
}

/* Workspace buffers: value v (written by layer v - 1) takes the lowest buffer whose values
 * have all been read before that layer; the model's output lives to the end. */
static cn_status place_values(cn_web_model *m) {
    int L = m->num_layers, last[CN_WEB_MAX_LAYERS + 1], buf[CN_WEB_MAX_LAYERS + 1], busy[CN_WEB_MAX_LAYERS + 1], nbuf = 0;
    int64_t size[CN_WEB_MAX_LAYERS + 1], total = 0;
    for (int v = 0; v <= L; v++) last[v] = v == L ? L : -1;
    for (int i = 0; i < L; i++)
        for (int k = 0; k < m->layers[i].num_inputs; k++)
            if (i > last[m->layers[i].inputs[k]]) last[m->layers[i].inputs[k]] = i;
    for (int v = 0; v <= L; v++) {
        int b = 0;
        while (b < nbuf && busy[b] >= v - 1) b++;
        if (b == nbuf) size[nbuf++] = 0;
        busy[b] = last[v];
        buf[v] = b;
        int64_t n = (int64_t)m->value_shape[v][0] * m->value_shape[v][1] * m->value_shape[v][2];   /* shape_ok: < 2^23 */
        if (n > size[b]) size[b] = n;
    }
    int64_t at[CN_WEB_MAX_LAYERS + 1];
    for (int b = 0; b < nbuf; b++) { at[b] = total; total += size[b]; }   /* at most 257 * 2^22 */
    if (total > CN_WEB_MAX_WORKSPACE)
        return cn_fail(CN_ERR_FORMAT, "web blob: its values need %lld floats of buffers at once; the runtime holds at most %d",
                       (long long)total, CN_WEB_MAX_WORKSPACE);
    for (int v = 0; v <= L; v++) m->value_at[v] = (size_t)at[buf[v]];
    m->workspace = (size_t)total;
    return CN_OK;
}

cn_status cn_web_model_parse(const void *blob, size_t size, cn_web_model *m) {
    memset(m, 0, sizeof *m);
    reader r = {blob, size, 0};
    uint32_t h[HEADER_WORDS];
    for (int k = 0; k < HEADER_WORDS; k++)
        if (!read_word(&r, &h[k])) return cn_fail(CN_ERR_FORMAT, "web blob: %zu bytes; the header needs %d", size, 4 * HEADER_WORDS);
    if (h[0] != CN_WEB_MAGIC) return cn_fail(CN_ERR_FORMAT, "web blob: bad magic 0x%08x; expected 0x%08x", h[0], CN_WEB_MAGIC);
    if (h[1] != CN_WEB_VERSION) return cn_fail(CN_ERR_FORMAT, "web blob: version %u; expected %u", h[1], CN_WEB_VERSION);
    m->c = (int)h[2]; m->h = (int)h[3]; m->w = (int)h[4];
    m->num_layers = (int)h[5];
    m->classes = (int)h[6];
    memcpy(&m->mean, &h[7], 4);
    memcpy(&m->std, &h[8], 4);
    if (!shape_ok(m->c, m->h, m->w) || m->num_layers < 1 || m->num_layers > CN_WEB_MAX_LAYERS || m->classes < 1 ||
        m->classes > CN_WEB_MAX_CLASSES || !isfinite(m->mean) || !(m->std > 0) || !isfinite(m->std))
        return cn_fail(CN_ERR_FORMAT, "web blob: header input %dx%dx%d, %d layers, %d classes, mean %g, std %g is out of range",
                       m->c, m->h, m->w, m->num_layers, m->classes, (double)m->mean, (double)m->std);
    /* An aligned copy of everything after the header; layers' floats point into it. */
    m->weights = cn_calloc((size - r.pos) / 4 + 1, sizeof(float));
    if (!m->weights) return CN_ERR_NOMEM;
    memcpy(m->weights, (const unsigned char *)blob + r.pos, size - r.pos);
    size_t start = r.pos;
    m->value_shape[0][0] = m->c; m->value_shape[0][1] = m->h; m->value_shape[0][2] = m->w;
    for (int i = 0; i < m->num_layers; i++) {
        cn_status st = parse_layer(&r, m, i, start);
        if (st) { cn_web_model_free(m); return st; }
    }
    const int *last = m->value_shape[m->num_layers];
    int pc = last[0], ph = last[1], pw = last[2];
    if (r.pos != size || (size_t)pc * ph * pw != (size_t)m->classes) {
        cn_web_model_free(m);
        return cn_fail(CN_ERR_FORMAT, "web blob: %zu trailing bytes or last output %dx%dx%d is not the %d classes",
                       size - r.pos, pc, ph, pw, m->classes);
    }
    m->log_probs = m->layers[m->num_layers - 1].op == CN_WEB_LOG_SOFTMAX;
    cn_status st = place_values(m);
    if (st) cn_web_model_free(m);
    return st;
}

void cn_web_model_free(cn_web_model *m) {
    free(m->weights);
    m->weights = NULL;
}

size_t cn_web_model_workspace(const cn_web_model *m) { return m->workspace; }

/* x (in_c, in_h, in_w) -> y (out_c, out_h, out_w), zero padding; output channel oc reads
 * the in_c / groups input channels of its group, oc / (out_c / groups); taps `dilation` apart. */
static void conv(const cn_web_layer *l, const float *x, float *y) {
    int k = l->kernel, d = l->dilation, cg = l->in_c / l->groups, og = l->out_c / l->groups;
    for (int oc = 0; oc < l->out_c; oc++)
        for (int oy = 0; oy < l->out_h; oy++)
            for (int ox = 0; ox < l->out_w; ox++) {
                float sum = 0.0f;
                for (int ic = 0; ic < cg; ic++) {
                    const float *w = l->w + ((size_t)oc * cg + ic) * k * k;
                    const float *xp = x + ((size_t)(oc / og) * cg + ic) * l->in_h * l->in_w;
                    for (int ky = 0; ky < k; ky++) {
                        int iy = oy * l->stride - l->pad + ky * d;
                        if (iy < 0 || iy >= l->in_h) continue;
                        for (int kx = 0; kx < k; kx++) {
                            int ix = ox * l->stride - l->pad + kx * d;
                            if (ix >= 0 && ix < l->in_w) sum += w[ky * k + kx] * xp[iy * l->in_w + ix];
                        }
                    }
                }
                y[((size_t)oc * l->out_h + oy) * l->out_w + ox] = l->b ? sum + l->b[oc] : sum;
            }
}

/* Max or average (count_include_pad: the window clipped to the padded input) pooling. */
static void pool(const cn_web_layer *l, const float *x, float *y) {
    int H = l->in_h, W = l->in_w, k = l->kernel;
    for (int c = 0; c < l->in_c; c++)
        for (int oy = 0; oy < l->out_h; oy++)
            for (int ox = 0; ox < l->out_w; ox++) {
                const float *xp = x + (size_t)c * H * W;
                int y0 = oy * l->stride - l->pad, x0 = ox * l->stride - l->pad;
                float best = -INFINITY, sum = 0.0f;
                for (int iy = y0; iy < y0 + k; iy++)
                    for (int ix = x0; ix < x0 + k; ix++) {
                        if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                        float v = xp[iy * W + ix];
                        if (v > best || v != v) best = v; /* NaN propagates, as in PyTorch */
                        sum += v;
                    }
                int y1 = y0 + k < H + l->pad ? y0 + k : H + l->pad, x1 = x0 + k < W + l->pad ? x0 + k : W + l->pad;
                y[((size_t)c * l->out_h + oy) * l->out_w + ox] =
                    l->op == CN_WEB_MAXPOOL ? best : sum / (float)((y1 - y0) * (x1 - x0));
            }
}

/* Layer l: xs[k] the values it reads -> y. */
static void run_layer(const cn_web_layer *l, const float *const *xs, float *y) {
    size_t plane = (size_t)l->in_h * l->in_w, n = (size_t)l->in_c * plane;
    const float *x = xs[0];
    switch (l->op) {
    case CN_WEB_ADD:   /* as convnet's add: ((x0 + x1) + x2) + ... */
        for (size_t i = 0; i < n; i++) {
            float sum = xs[0][i] + xs[1][i];
            for (int k = 2; k < l->num_inputs; k++) sum += xs[k][i];
            y[i] = sum;
        }
        break;
    case CN_WEB_CONCAT:
        for (int k = 0; k < l->num_inputs; k++) {
            memcpy(y, xs[k], l->in_n[k] * sizeof *y);
            y += l->in_n[k];
        }
        break;
    case CN_WEB_CONV: conv(l, x, y); break;
    case CN_WEB_MAXPOOL:
    case CN_WEB_AVGPOOL: pool(l, x, y); break;
    case CN_WEB_AFFINE:
        for (size_t i = 0; i < n; i++) y[i] = x[i] * l->w[i / plane] + l->b[i / plane];
        break;
    case CN_WEB_RELU:
        for (size_t i = 0; i < n; i++) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
        break;
    case CN_WEB_RELU6:
        for (size_t i = 0; i < n; i++) {
            float v = x[i] > 0.0f ? x[i] : 0.0f;
            y[i] = v < 6.0f ? v : 6.0f;
        }
        break;
    case CN_WEB_LEAKY_RELU:
        for (size_t i = 0; i < n; i++) y[i] = x[i] > 0.0f ? x[i] : x[i] * l->alpha;
        break;
    case CN_WEB_GAP:
        for (int c = 0; c < l->in_c; c++) {
            float sum = 0.0f;
            for (size_t i = 0; i < plane; i++) sum += x[c * plane + i];
            y[c] = sum / (float)plane;
        }
        break;
    case CN_WEB_LINEAR:
        for (int o = 0; o < l->out_c; o++) {
            const float *w = l->w + (size_t)o * n;
            float sum = 0.0f;
            for (size_t i = 0; i < n; i++) sum += w[i] * x[i];
            y[o] = l->b ? sum + l->b[o] : sum;
        }
        break;
    case CN_WEB_LOG_SOFTMAX: cn_log_softmax_row(x, y, n); break;   /* as convnet's layer */
    }
}

void cn_web_model_forward(const cn_web_model *m, const float *x, float *work, float *scores) {
    memcpy(work + m->value_at[0], x, (size_t)m->c * m->h * m->w * sizeof *work);
    for (int i = 0; i < m->num_layers; i++) {
        const cn_web_layer *l = &m->layers[i];
        const float *xs[CN_WEB_MAX_INPUTS];
        for (int k = 0; k < l->num_inputs; k++) xs[k] = work + m->value_at[l->inputs[k]];
        run_layer(l, xs, work + m->value_at[i + 1]);
    }
    memcpy(scores, work + m->value_at[m->num_layers], (size_t)m->classes * sizeof *scores);
}

void cn_web_probabilities(const float *scores, int classes, int log_probs, float *p) {
    float mx = scores[0];
    for (int k = 1; k < classes; k++) if (scores[k] > mx) mx = scores[k];
    double sum = 0;
    for (int k = 0; k < classes; k++) sum += (p[k] = expf(log_probs ? scores[k] : scores[k] - mx));
    for (int k = 0; k < classes; k++) p[k] = (float)(p[k] / sum);
}

static void classify(const cn_web_model *m, float *x, float *work, float *scores, float *probs) {
    size_t n = (size_t)m->c * m->h * m->w;
    for (size_t i = 0; i < n; i++) x[i] = (x[i] - m->mean) / m->std;
    cn_web_model_forward(m, x, work, scores);
    cn_web_probabilities(scores, m->classes, m->log_probs, probs);
}

cn_status cn_web_classify_drawing(const cn_web_model *m, const uint8_t *gray, int width, int height, float *work,
                                  float *digit, float *scores, float *probs) {
    if (m->c != 1 || m->h != CN_DIGIT_SIDE || m->w != CN_DIGIT_SIDE)
        return cn_fail(CN_ERR_UNSUPPORTED, "the model takes %dx%dx%d inputs; drawings give 1x%dx%d", m->c, m->h, m->w,
                       CN_DIGIT_SIDE, CN_DIGIT_SIDE);
    cn_gray_image img = {width, height, (uint8_t *)gray};
    cn_status st = cn_preprocess_digit(&img, digit);
    if (st) return st;
    float *x = work + cn_web_model_workspace(m);
    memcpy(x, digit, sizeof(float) * CN_DIGIT_SIDE * CN_DIGIT_SIDE);
    classify(m, x, work, scores, probs);
    return CN_OK;
}

void cn_web_classify_raw(const cn_web_model *m, const uint8_t *pixels, float *work, float *scores, float *probs) {
    float *x = work + cn_web_model_workspace(m);
    size_t n = (size_t)m->c * m->h * m->w;
    for (size_t i = 0; i < n; i++) x[i] = pixels[i] / 255.0f;
    classify(m, x, work, scores, probs);
}
