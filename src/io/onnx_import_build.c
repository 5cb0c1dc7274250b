/* ONNX import, part 4: model building. The imported layers become spec text
 * (with layer names chosen from initializer names or torch module paths) and
 * a model whose parameters and batch-norm statistics are copied in. See
 * io/onnx_import_internal.h. */
#include "io/onnx_import_internal.h"
#include "core/error.h"
#include "core/mem.h"
#include "core/text.h"
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "model.h"

static bool name_taken(const importer *im, const char *name, int except) {
    if (!strcmp(name, "input")) return true;    /* from=input means the model's input */
    for (int j = 0; j < im->num_layers; j++)
        if (j != except && !strcmp(im->layers[j].name, name)) return true;
    return false;
}

/* Module path of a torch node name: "/features/0/Conv" -> "features.0"; "" when there is none.
 * torch.onnx.export names each scope by the module's qualified name cut back to its last
 * non-numeric atom (torch/onnx/utils.py, _unqualified_variable_name): module "stem.0" gives the
 * scope "stem.0" under "stem" ("/stem/stem.0/Conv"), "layer1.0.conv1" gives "conv1" under
 * "layer1.0". So each scope adds one module level, its last atom: "/stem/stem.0/Conv" ->
 * "stem.0" (PyTorch's module path and state_dict prefix), "/layer1/layer1.0/conv1/Conv" ->
 * "layer1.0.conv1". */
static void module_path(const char *node_name, char *out, size_t size) {
    out[0] = '\0';
    if (!node_name || node_name[0] != '/') return;
    const char *last = strrchr(node_name, '/');
    size_t len = 0;
    for (const char *scope = node_name + 1; scope < last;) {
        const char *end = memchr(scope, '/', (size_t)(last - scope));
        if (!end) end = last;
        const char *atom = scope;
        for (const char *p = scope; p < end; p++) {
            char c = *p;
            if (c == '.') atom = p + 1;
            else if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
                { out[0] = '\0'; return; }
        }
        size_t n = (size_t)(end - atom);
        if (n == 0 || len + (len ? 1 : 0) + n >= size) { out[0] = '\0'; return; }
        if (len) out[len++] = '.';
        memcpy(out + len, atom, n);
        len += n;
        out[len] = '\0';
        scope = end + 1;
    }
}

static bool is_weighted(cn_layer_kind kind) {
    return kind == CN_LAYER_CONV2D || kind == CN_LAYER_LINEAR || kind == CN_LAYER_BATCHNORM2D;
}

/* Layer names (state-dict prefixes). Weighted layers take the prefix of their
 * initializer ("conv1.weight" -> "conv1") or else the module path of their node
 * ("/0/Conv" -> "0", as for a conv that torch fused with its BN); if any weighted
 * layer has none or two share one, every layer keeps its default name (its index).
 * Other layers then take their module path, their index, or kind + index,
 * whichever is free. */
static void assign_names(importer *im) {
    char path[32];
    bool use = true;
    for (int i = 0; i < im->num_layers; i++) {
        imp_layer *l = &im->layers[i];
        if (!is_weighted(l->kind)) { l->name[0] = '\0'; continue; }
        if (!l->name[0]) {
            module_path(node_at(im, l->node)->name, path, sizeof path);
            snprintf(l->name, sizeof l->name, "%s", path);
        }
        if (!l->name[0]) use = false;
    }
    for (int i = 0; i < im->num_layers && use; i++)
        if (im->layers[i].name[0] && name_taken(im, im->layers[i].name, i)) use = false;
    if (!use) {
        for (int i = 0; i < im->num_layers; i++) im->layers[i].name[0] = '\0';
        return;
    }
    for (int i = 0; i < im->num_layers; i++) {
        imp_layer *l = &im->layers[i];
        if (l->name[0]) continue;
        char cand[32];
        module_path(node_at(im, l->node)->name, cand, sizeof cand);
        if (!cand[0] || name_taken(im, cand, i)) snprintf(cand, sizeof cand, "%d", i);
        for (int attempt = 0; name_taken(im, cand, i); attempt++)
            snprintf(cand, sizeof cand, "%s%d%s%.0d", cn_layer_kind_name(l->kind), i, attempt ? "_" : "", attempt);
        snprintf(l->name, sizeof l->name, "%s", cand);
    }
}

cn_status cn_onnx_build_model(importer *im, const cn_shape input, const char *producer, cn_model **out) {
    assign_names(im);
    cn_text t = {0};
    cn_text_printf(&t, "# imported from ONNX (%s, opset %d)\n", producer[0] ? producer : "unknown producer", im->opset);
    if (im->softmax) cn_text_printf(&t, "# the graph ended in Softmax: imported as log_softmax (outputs are log-probabilities)\n");
    cn_text_printf(&t, "name onnx-import\ninput %dx%dx%d\n", input.c, input.h, input.w);
    for (int i = 0; i < im->num_layers; i++) {
        const imp_layer *l = &im->layers[i];
        const char *kind = cn_layer_kind_name(l->kind);
        switch (l->kind) {
        case CN_LAYER_CONV2D:
            cn_text_printf(&t, "%s out=%d k=%d stride=%d pad=%d bias=%s", kind, l->out, l->k, l->stride, l->pad, l->has_bias ? "true" : "false");
            if (l->groups != 1) cn_text_printf(&t, " groups=%d", l->groups);
            if (l->dilation != 1) cn_text_printf(&t, " dilation=%d", l->dilation);
            break;
        case CN_LAYER_LINEAR:
            cn_text_printf(&t, "%s out=%d bias=%s", kind, l->out, l->has_bias ? "true" : "false");
            break;
        case CN_LAYER_MAXPOOL2D: case CN_LAYER_AVGPOOL2D:
            cn_text_printf(&t, "%s k=%d stride=%d pad=%d", kind, l->k, l->stride, l->pad);
            break;
        case CN_LAYER_BATCHNORM2D:
            cn_text_printf(&t, "%s eps=%.9g", l->flat ? "batchnorm1d" : kind, (double)l->eps);
            break;
        case CN_LAYER_LEAKY_RELU:
            cn_text_printf(&t, "%s slope=%.9g", kind, (double)l->slope);
            break;
        default:
            cn_text_printf(&t, "%s", kind);
        }
        if (l->name[0]) cn_text_printf(&t, " name=%s", l->name);
        if (l->num_from != 1 || l->from[0] != i - 1) {     /* a branch: name the layers it reads */
            for (int k = 0; k < l->num_from; k++) {
                int j = l->from[k];
                if (j < 0) cn_text_printf(&t, "%sinput", k ? "," : " from=");
                else if (im->layers[j].name[0]) cn_text_printf(&t, "%s%s", k ? "," : " from=", im->layers[j].name);
                else cn_text_printf(&t, "%s%d", k ? "," : " from=", j);
            }
        }
        cn_text_printf(&t, "   # node %d\n", l->node);
    }
    if (t.failed) { free(t.p); return cn_fail(CN_ERR_NOMEM, "%s: out of memory writing the spec", im->file); }
    cn_model *m = NULL;
    cn_status st = cn_model_from_spec(t.p, im->file, 0, &m);
    free(t.p);
    if (st) {
        cn_error_prefix("%s: the imported layers do not form a valid model", im->file);
        return st;
    }
    for (int i = 0; i < im->num_layers; i++) {
        const imp_layer *l = &im->layers[i];
        cn_layer *ml = &m->layers[i];
        if (ml->weight_count != l->wcount || ml->bias_count != l->bcount) {
            cn_model_free(m);
            return cn_fail(CN_ERR_SHAPE, "%s: node %d: layer %d has %zu+%zu parameters, the model expects %zu+%zu",
                           im->file, l->node, i, l->wcount, l->bcount, ml->weight_count, ml->bias_count);
        }
        if (l->wcount) memcpy(m->params + ml->weight_offset, l->w, l->wcount * sizeof(float));
        if (l->bcount) memcpy(m->params + ml->bias_offset, l->b, l->bcount * sizeof(float));
        if (l->kind == CN_LAYER_BATCHNORM2D) {
            float *stats = m->buffers + ml->buffer_offset;
            memcpy(stats, l->mean, l->wcount * sizeof(float));
            memcpy(stats + l->wcount, l->var, l->wcount * sizeof(float));
        }
    }
    *out = m;
    return CN_OK;
}
