/* Web-page export (see io/export_web.h): the model as a web_model.h blob, checked
 * on the host with the same interpreter the page runs, then one HTML file with
 * the embedded WebAssembly runtime, the blob and the test digits. */
#include "io/export_web.h"
#include "io/web_model.h"
#include "model.h"
#include "exec/session.h"
#include "layers/layers.h"
#include "core/error.h"
#include "core/atomic_file.h"
#include "core/file.h"
#include "core/mem.h"
#include "web_assets.h" /* generated: cn_web_runtime_wasm[_size], cn_web_page_html[_size] */
#include <cjson/cJSON.h>
#include <limits.h>
#include <stdbool.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define DIGIT_PIXELS (28 * 28)
#define MAX_DIGITS 100

int cn_export_web_available(void) { return cn_web_runtime_wasm_size > 0; }

/* ---- blob ------------------------------------------------------------------------ */

typedef struct { unsigned char *p; size_t len, cap; int failed; } buffer;

static void put_bytes(buffer *b, const void *src, size_t n) {
    if (b->failed) return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n) cap *= 2;
        unsigned char *p = realloc(b->p, cap);
        if (!p) { b->failed = 1; return; }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, src, n);
    b->len += n;
}
static void put_i32(buffer *b, int32_t v) { put_bytes(b, &v, 4); }
static void put_u32(buffer *b, uint32_t v) { put_bytes(b, &v, 4); }
static void put_f32(buffer *b, float v) { put_bytes(b, &v, 4); }

/* The blob's op for a layer; 0 for layers that do nothing in eval mode; -1 when
 * the web runtime has no such op. */
static int web_op(cn_layer_kind kind) {
    switch (kind) {
    case CN_LAYER_CONV2D: return CN_WEB_CONV;
    case CN_LAYER_BATCHNORM2D: return CN_WEB_AFFINE;
    case CN_LAYER_RELU: return CN_WEB_RELU;
    case CN_LAYER_RELU6: return CN_WEB_RELU6;
    case CN_LAYER_LEAKY_RELU: return CN_WEB_LEAKY_RELU;
    case CN_LAYER_MAXPOOL2D: return CN_WEB_MAXPOOL;
    case CN_LAYER_AVGPOOL2D: return CN_WEB_AVGPOOL;
    case CN_LAYER_GAP: return CN_WEB_GAP;
    case CN_LAYER_LINEAR: return CN_WEB_LINEAR;
    case CN_LAYER_LOG_SOFTMAX: return CN_WEB_LOG_SOFTMAX;
    case CN_LAYER_ADD: return CN_WEB_ADD;
    case CN_LAYER_CONCAT: return CN_WEB_CONCAT;
    case CN_LAYER_DROPOUT: case CN_LAYER_FLATTEN: return 0;
    default: return -1;
    }
}

cn_status cn_export_web_check(const cn_model *m) {
    if (!cn_export_web_available())
        return cn_fail(CN_ERR_UNSUPPORTED, "this convnet was built without the WebAssembly runtime of the %s target "
                       "(clang, lld or wasi-libc were missing); install them with: apt-get install -y %s, then run "
                       "make again", CN_WEB_TARGET, CN_WEB_TOOLCHAIN_PACKAGES);
    if (m->input.c != 1 || m->input.h != 28 || m->input.w != 28)
        return cn_fail(CN_ERR_UNSUPPORTED, "%s: the model takes %dx%dx%d inputs; the %s target draws 1x28x28 digits",
                       m->source_name, m->input.c, m->input.h, m->input.w, CN_WEB_TARGET);
    int classes = cn_model_num_classes(m), ops = 0;
    if (classes > CN_WEB_MAX_CLASSES)
        return cn_fail(CN_ERR_UNSUPPORTED, "%s: %d classes; the %s target shows at most %d", m->source_name, classes,
                       CN_WEB_TARGET, CN_WEB_MAX_CLASSES);
    for (int i = 0; i < m->num_layers; i++) {
        const cn_layer *l = &m->layers[i];
        int op = web_op(l->kind);
        if (op < 0)
            return cn_fail(CN_ERR_UNSUPPORTED, "%s: layer %d '%s' (%s) is not supported by the %s target", m->source_name,
                           i, l->name, cn_layer_kind_name(l->kind), CN_WEB_TARGET);
        if ((size_t)cn_shape_size(l->out) > CN_WEB_MAX_ACTIVATION)
            return cn_fail(CN_ERR_UNSUPPORTED, "%s: layer %d '%s' (%s) outputs %d values; the %s target holds at most %d",
                           m->source_name, i, l->name, cn_layer_kind_name(l->kind), cn_shape_size(l->out),
                           CN_WEB_TARGET, CN_WEB_MAX_ACTIVATION);
        ops += op > 0;
    }
    if (ops < 1 || ops > CN_WEB_MAX_LAYERS)
        return cn_fail(CN_ERR_UNSUPPORTED, "%s: %d layers with work to do; the %s target runs 1 to %d", m->source_name, ops,
                       CN_WEB_TARGET, CN_WEB_MAX_LAYERS);
    return CN_OK;
}

/* The model as a blob (web_model.h). BatchNorm becomes its eval-mode scale and
 * shift, computed as convnet's own eval does; dropout, dropout2d and flatten are dropped:
 * each model value maps to the blob value it passes on, with that value's shape (flatten
 * only renames it). */
static cn_status build_blob(const cn_model *m, float mean, float std, buffer *b) {
    if (!(std > 0)) return cn_fail(CN_ERR_ARG, "normalisation std %g; expected > 0", (double)std);
    int ops = 0, L = m->num_layers;
    for (int i = 0; i < L; i++) ops += web_op(m->layers[i].kind) > 0;
    int *blob_value = cn_calloc((size_t)L + 1, sizeof *blob_value);   /* per model value */
    cn_shape *shape = cn_calloc((size_t)L + 1, sizeof *shape);         /* its shape in the blob */
    if (!blob_value || !shape) { free(blob_value); free(shape); return CN_ERR_NOMEM; }
    put_u32(b, CN_WEB_MAGIC);
    put_u32(b, CN_WEB_VERSION);
    put_i32(b, m->input.c); put_i32(b, m->input.h); put_i32(b, m->input.w);
    put_i32(b, ops);
    put_i32(b, cn_model_num_classes(m));
    put_f32(b, mean);
    put_f32(b, std);
    shape[0] = m->input;
    for (int i = 0, written = 0; i < L; i++) {
        const cn_layer *l = &m->layers[i];
        int op = web_op(l->kind);
        cn_shape in = shape[l->inputs[0]];
        if (op <= 0) { blob_value[i + 1] = blob_value[l->inputs[0]]; shape[i + 1] = in; continue; }
        if (l->kind == CN_LAYER_BATCHNORM2D && l->flat_bn) in = l->in;   /* batchnorm1d: features x 1 x 1 */
        bool elementwise = op == CN_WEB_RELU || op == CN_WEB_RELU6 || op == CN_WEB_LEAKY_RELU || op == CN_WEB_ADD;
        cn_shape out = elementwise ? in : l->out;
        size_t n = op == CN_WEB_AFFINE ? 2 * (size_t)l->in.c : l->weight_count + l->bias_count;
        if (op != CN_WEB_AFFINE && op != CN_WEB_CONV && op != CN_WEB_LINEAR) n = 0;
        bool conv = op == CN_WEB_CONV;
        int32_t words[14] = {op, in.c, in.h, in.w, out.c, out.h, out.w, l->kernel, l->stride, l->pad,
                             conv ? l->groups : 1, conv ? l->dilation : 1, 0, (int32_t)n};
        if (!conv && op != CN_WEB_MAXPOOL && op != CN_WEB_AVGPOOL) words[7] = words[8] = words[9] = 0;
        for (int k = 0; k < 12; k++) put_i32(b, words[k]);
        put_f32(b, op == CN_WEB_LEAKY_RELU ? l->slope : 0.0f);
        put_i32(b, words[13]);
        put_i32(b, l->num_inputs);
        for (int k = 0; k < l->num_inputs; k++) put_i32(b, blob_value[l->inputs[k]]);
        if (op == CN_WEB_AFFINE) {
            float scale[l->in.c], shift[l->in.c];
            for (int ch = 0; ch < l->in.c; ch++) cn_batchnorm2d_eval_affine(m, l, ch, &scale[ch], &shift[ch]);
            put_bytes(b, scale, sizeof scale);
            put_bytes(b, shift, sizeof shift);
        } else if (n) {
            put_bytes(b, m->params + l->weight_offset, l->weight_count * sizeof(float));
            if (l->bias_count) put_bytes(b, m->params + l->bias_offset, l->bias_count * sizeof(float));
        }
        blob_value[i + 1] = ++written;
        shape[i + 1] = out;
    }
    free(blob_value);
    free(shape);
    return b->failed ? cn_fail(CN_ERR_NOMEM, "out of memory building the web blob") : CN_OK;
}

cn_status cn_export_web_blob(const cn_model *m, float mean, float std, void **data, size_t *size) {
    *data = NULL;
    *size = 0;
    cn_status st = cn_export_web_check(m);
    buffer b = {0};
    if (!st) st = build_blob(m, mean, std, &b);
    if (st) { free(b.p); return st; }
    *data = b.p;
    *size = b.len;
    return CN_OK;
}

/* ---- classes of the test digits --------------------------------------------------- */

static int argmax(const float *v, int n) {
    int best = 0;
    for (int k = 1; k < n; k++) if (v[k] > v[best]) best = k;
    return best;
}

/* convnet's classes and scores (count x classes) for the digits (pixel / 255, normalised,
 * eval mode), and how many of them the host build of the web runtime, run on the blob,
 * gives too. */
static cn_status classify_digits(cn_model *m, const cn_checkpoint_info *info, const buffer *blob, const uint8_t *digits,
                                 int count, int *classes_out, float *scores_out, int *agree) {
    int classes = cn_model_num_classes(m);
    cn_session *session;
    cn_status st = cn_session_create(m, count, 1, 0, &session);
    if (st) return st;
    cn_session_set_training(session, false);
    float *x = cn_calloc((size_t)count * DIGIT_PIXELS, sizeof *x);
    if (!x) { cn_session_free(session); return CN_ERR_NOMEM; }
    for (size_t i = 0; i < (size_t)count * DIGIT_PIXELS; i++) x[i] = (digits[i] / 255.0f - info->mean[0]) / info->std[0];
    const float *out = cn_session_forward(session, x, count, NULL);
    for (int i = 0; i < count; i++) classes_out[i] = argmax(out + (size_t)i * classes, classes);
    memcpy(scores_out, out, (size_t)count * classes * sizeof *out);
    free(x);
    cn_session_free(session);

    cn_web_model wm;
    if ((st = cn_web_model_parse(blob->p, blob->len, &wm))) {
        cn_error_prefix("the blob convnet just wrote does not parse");
        return st;
    }
    float *work = cn_calloc(cn_web_model_workspace(&wm) + DIGIT_PIXELS, sizeof *work);
    if (!work) { cn_web_model_free(&wm); return CN_ERR_NOMEM; }
    float scores[CN_WEB_MAX_CLASSES], probs[CN_WEB_MAX_CLASSES];
    *agree = 0;
    for (int i = 0; i < count; i++) {
        cn_web_classify_raw(&wm, digits + (size_t)i * DIGIT_PIXELS, work, scores, probs);
        *agree += argmax(probs, classes) == classes_out[i];
    }
    free(work);
    cn_web_model_free(&wm);
    return CN_OK;
}

/* ---- page ------------------------------------------------------------------------- */

static char *base64(const unsigned char *src, size_t n) {
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = cn_calloc(4 * ((n + 2) / 3) + 1, 1), *o = out;
    if (!out) return NULL;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)src[i] << 16 | (i + 1 < n ? (uint32_t)src[i + 1] << 8 : 0) | (i + 2 < n ? src[i + 2] : 0);
        *o++ = tab[v >> 18 & 63];
        *o++ = tab[v >> 12 & 63];
        *o++ = i + 1 < n ? tab[v >> 6 & 63] : '=';
        *o++ = i + 2 < n ? tab[v & 63] : '=';
    }
    return out;
}

static int add_base64(cJSON *obj, const char *key, const unsigned char *src, size_t n) {
    char *s = base64(src, n);
    int ok = s && cJSON_AddStringToObject(obj, key, s);
    free(s);
    return ok;
}

/* The page's data as JSON text ('<' escaped, so that it can sit in a <script>). */
static char *page_data(const cn_model *m, const cn_checkpoint_info *info, const buffer *blob, const uint8_t *digits,
                       const uint8_t *labels, const int *indices, const int *predicted, const float *scores, int count) {
    int classes = cn_model_num_classes(m);
    cJSON *root = cJSON_CreateObject(), *names = NULL, *list = NULL;
    int ok = root && cJSON_AddStringToObject(root, "model", m->source_name) &&
             cJSON_AddStringToObject(root, "dataset", info->dataset) &&
             cJSON_AddNumberToObject(root, "params", (double)cn_model_param_count(m)) &&
             (names = cJSON_AddArrayToObject(root, "classes")) &&
             add_base64(root, "wasm", cn_web_runtime_wasm, cn_web_runtime_wasm_size) &&
             add_base64(root, "blob", blob->p, blob->len) && (list = cJSON_AddArrayToObject(root, "digits"));
    for (int k = 0; ok && k < classes; k++) {
        char num[16];
        snprintf(num, sizeof num, "%d", k);
        ok = cJSON_AddItemToArray(names, cJSON_CreateString(info->num_classes == classes ? info->class_names[k] : num));
    }
    for (int i = 0; ok && i < count; i++) {
        cJSON *d = cJSON_CreateObject();
        ok = d && cJSON_AddItemToArray(list, d) && cJSON_AddNumberToObject(d, "index", indices ? indices[i] : i) &&
             cJSON_AddNumberToObject(d, "label", labels[i]) && cJSON_AddNumberToObject(d, "convnet", predicted[i]) &&
             add_base64(d, "pixels", digits + (size_t)i * DIGIT_PIXELS, DIGIT_PIXELS);
        /* convnet's scores, for the self-test's error figure; %.9g gives the float back exactly */
        cJSON *sc = ok ? cJSON_AddArrayToObject(d, "scores") : NULL;
        ok = sc != NULL;
        for (int k = 0; ok && k < classes; k++) {
            char num[32] = "null";   /* a non-finite score (JSON has no inf): not compared */
            float v = scores[(size_t)i * classes + k];
            if (isfinite(v)) snprintf(num, sizeof num, "%.9g", (double)v);
            ok = cJSON_AddItemToArray(sc, cJSON_CreateRaw(num));
        }
    }
    char *json = ok ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    if (!json) { cn_fail(CN_ERR_NOMEM, "out of memory building the page's data"); return NULL; }
    size_t n = strlen(json), lt = 0;
    for (size_t i = 0; i < n; i++) lt += json[i] == '<';
    char *safe = cn_calloc(n + 5 * lt + 1, 1);
    if (safe)
        for (size_t i = 0, o = 0; i < n; i++) {
            if (json[i] == '<') { memcpy(safe + o, "\\u003c", 6); o += 6; }
            else safe[o++] = json[i];
        }
    cJSON_free(json);
    return safe;
}

static cn_status write_page(const char *dir, const char *data, cn_export_web_stats *stats) {
    static const char mark[] = "@CONVNET_DATA@";
    const char *page = (const char *)cn_web_page_html, *at = strstr(page, mark);
    if (!at) return cn_fail(CN_ERR_FORMAT, "the embedded page template has no %s", mark);
    size_t head = (size_t)(at - page), tail = cn_web_page_html_size - head - strlen(mark), dlen = strlen(data);
    size_t total = head + dlen + tail, plen = strlen(dir) + 16;
    char *html = cn_calloc(total + 1, 1), *path = cn_calloc(plen, 1);
    cn_status st = CN_ERR_NOMEM;
    if (html && path) {
        memcpy(html, page, head);
        memcpy(html + head, data, dlen);
        memcpy(html + head + dlen, at + strlen(mark), tail);
        snprintf(path, plen, "%s/index.html", dir);
        st = cn_make_dir(dir);
        if (!st) st = cn_write_file_atomic(path, html, total);
    }
    free(html);
    free(path);
    if (stats) stats->html_bytes = total;
    return st;
}

cn_status cn_export_web(cn_model *m, const char *dir, const cn_checkpoint_info *info, const uint8_t *digits,
                        const uint8_t *labels, const int *indices, int count, cn_export_web_stats *stats) {
    if (count < 1 || count > MAX_DIGITS)
        return cn_fail(CN_ERR_ARG, "%d test digits for the page; expected 1 to %d", count, MAX_DIGITS);
    cn_status st = cn_export_web_check(m);
    if (st) return st;
    for (size_t i = 0; i < m->num_params; i++)
        if (!isfinite(m->params[i]))
            return cn_fail(CN_ERR_NUMERIC, "%s: parameter %zu is %g; cannot export non-finite parameters", m->source_name,
                           i, (double)m->params[i]);
    buffer blob = {0};
    int predicted[MAX_DIGITS], agree = 0;
    float scores[MAX_DIGITS * CN_WEB_MAX_CLASSES];
    char *data = NULL;
    if (!(st = build_blob(m, info->mean[0], info->std[0], &blob) /* one channel: cn_export_web_check */) &&
        !(st = classify_digits(m, info, &blob, digits, count, predicted, scores, &agree))) {
        if (agree != count)
            st = cn_fail(CN_ERR_NUMERIC, "%s: the web runtime (host build) agrees with convnet on %d of %d test digits; "
                         "expected all", m->source_name, agree, count);
        else if (!(data = page_data(m, info, &blob, digits, labels, indices, predicted, scores, count)))
            st = CN_ERR_NOMEM;
        else
            st = write_page(dir, data, stats);
    }
    if (stats) {
        stats->wasm_bytes = cn_web_runtime_wasm_size;
        stats->blob_bytes = blob.len;
        stats->digits = count;
        stats->agree = agree;
    }
    free(data);
    free(blob.p);
    return st;
}
