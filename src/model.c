/* The model: building it from a spec, its parameter layout and initialisation. */
#include "model.h"
#include "core/error.h"
#include "core/mem.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PARAMS ((size_t)100 * 1000 * 1000)

static char *dup_string(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = cn_calloc(n, 1);
    if (d) memcpy(d, s, n);
    return d;
}

/* Lays out parameters (weight then bias per layer, state_dict order) and BN buffers. */
static cn_status layout_params(cn_model *m) {
    size_t offset = 0, buffers = 0;
    int bn = 0;
    for (int i = 0; i < m->num_layers; i++) {
        cn_layer *l = &m->layers[i];
        l->weight_offset = offset;
        offset += l->weight_count;
        l->bias_offset = offset;
        offset += l->bias_count;
        if (offset > MAX_PARAMS)
            return cn_fail(CN_ERR_SPEC, "%s:%d: the model has more than %zu parameters", m->source_name, l->spec_line, MAX_PARAMS);
        if (l->kind == CN_LAYER_BATCHNORM2D) {
            l->buffer_offset = buffers;
            buffers += 2 * (size_t)l->in.c;
            l->bn_index = bn++;
        }
    }
    m->num_params = offset;
    m->num_buffers = buffers;
    m->num_bn = bn;
    m->params = cn_alloc_floats(offset);
    m->buffers = cn_alloc_floats(buffers);
    m->bn_batches_tracked = cn_calloc(bn ? bn : 1, sizeof *m->bn_batches_tracked);
    if (!m->params || !m->buffers || !m->bn_batches_tracked) return CN_ERR_NOMEM;
    return CN_OK;
}

void cn_model_init_params(cn_model *m, cn_rng *rng) {
    for (int i = 0; i < m->num_layers; i++) {
        cn_layer *l = &m->layers[i];
        float *w = m->params + l->weight_offset, *b = m->params + l->bias_offset;
        if (l->kind == CN_LAYER_CONV2D || l->kind == CN_LAYER_LINEAR) {
            /* kaiming_uniform_(a=sqrt(5)): bound = sqrt(6 / ((1 + a^2) fan_in)) = 1/sqrt(fan_in) */
            int fan_in = l->kind == CN_LAYER_CONV2D ? l->in.c / l->groups * l->kernel * l->kernel : l->in.c;
            float bound = 1.0f / sqrtf((float)fan_in);
            for (size_t k = 0; k < l->weight_count; k++) w[k] = (2.0f * cn_rng_uniform(rng) - 1.0f) * bound;
            for (size_t k = 0; k < l->bias_count; k++) b[k] = (2.0f * cn_rng_uniform(rng) - 1.0f) * bound;
        } else if (l->kind == CN_LAYER_BATCHNORM2D) {
            float *running = m->buffers + l->buffer_offset;
            for (int c = 0; c < l->in.c; c++) { w[c] = 1.0f; b[c] = 0.0f; running[c] = 0.0f; running[l->in.c + c] = 1.0f; }
            m->bn_batches_tracked[l->bn_index] = 0;
        }
    }
}

cn_status cn_model_from_spec(const char *spec_text, const char *source_name, uint64_t seed, cn_model **out) {
    *out = NULL;
    if (!spec_text) return cn_fail(CN_ERR_ARG, "no spec text given");
    cn_model *m = cn_calloc(1, sizeof *m);
    if (!m) return CN_ERR_NOMEM;
    m->spec_text = dup_string(spec_text);
    m->source_name = dup_string(source_name ? source_name : "spec");
    if (!m->spec_text || !m->source_name) { cn_model_free(m); return CN_ERR_NOMEM; }
    cn_spec spec;
    cn_status st = cn_spec_parse(spec_text, m->source_name, &spec);
    if (!st) {
        m->input = spec.input;
        m->num_layers = spec.num_layers;
        m->layers = spec.layers;
        m->recipe = spec.recipe;
        st = layout_params(m);
    }
    if (st) { cn_model_free(m); return st; }
    cn_rng rng;
    cn_rng_seed(&rng, seed);
    cn_model_init_params(m, &rng);
    *out = m;
    return CN_OK;
}

void cn_model_free(cn_model *m) {
    if (!m) return;
    free(m->layers);
    cn_free_aligned(m->params);
    cn_free_aligned(m->buffers);
    free(m->bn_batches_tracked);
    free(m->spec_text);
    free(m->source_name);
    free(m);
}

size_t cn_model_param_count(const cn_model *m) { return m->num_params; }

uint64_t cn_model_macs(const cn_model *m) {
    uint64_t macs = 0;
    for (int i = 0; i < m->num_layers; i++) macs += m->layers[i].macs;
    return macs;
}

int cn_model_num_classes(const cn_model *m) { return m->layers[m->num_layers - 1].out.c; }

static cn_status check_finite(const cn_model *m, const cn_layer *l, const char *what, const float *v, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(v[i]))
            return cn_fail(CN_ERR_NUMERIC, "%s: layer %s (%s) %s[%zu] is %g; cannot export non-finite parameters",
                           m->source_name, l->name, cn_layer_kind_name(l->kind), what, i, (double)v[i]);
    return CN_OK;
}

cn_status cn_model_check_layer_finite(const cn_model *m, const cn_layer *l) {
    cn_status st = check_finite(m, l, "weight", m->params + l->weight_offset, l->weight_count);
    if (!st) st = check_finite(m, l, "bias", m->params + l->bias_offset, l->bias_count);
    if (!st && l->kind == CN_LAYER_BATCHNORM2D)
        st = check_finite(m, l, "running statistics", m->buffers + l->buffer_offset, 2 * (size_t)l->in.c);
    return st;
}
