/* Spec parser and model builder on arbitrary text. Models that come out small
 * enough also run one forward and backward pass on a single image, so odd but
 * accepted shapes (stride > kernel, pads, 1x1 maps) reach the kernels. */
#include "fuzz_common.h"
#include "model.h"
#include "exec/session.h"
#include "core/rng.h"

#define MAX_FUZZ_MACS 2000000u
#define MAX_FUZZ_ACTS 200000

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 16384) return 0; /* longer texts add nothing but time */
    char *text = fuzz_strdup(data, size);
    cn_model *m = NULL;
    cn_status st = cn_model_from_spec(text, "fuzz.spec", 1, &m);
    fuzz_check_error(st, "fuzz.spec");
    if (st == CN_OK) {
        if (!m || m->num_layers < 1 || cn_model_num_classes(m) < 2) abort();
        /* Every layer reads 1..CN_MAX_INPUTS earlier values (layer.h; the previous layer's output
         * unless from= says otherwise), and its input shape is its first one's. */
        for (int i = 0; i < m->num_layers; i++) {
            const cn_layer *l = &m->layers[i];
            if (l->num_inputs < 1 || l->num_inputs > CN_MAX_INPUTS) abort();
            for (int k = 0; k < l->num_inputs; k++)
                if (l->inputs[k] < 0 || l->inputs[k] > i) abort();
            cn_shape first = cn_model_value_shape(m, l->inputs[0]);
            if (memcmp(&l->in, &first, sizeof(cn_shape))) abort();
        }
        size_t acts = (size_t)cn_shape_size(m->input);
        for (int i = 0; i < m->num_layers; i++) acts += (size_t)cn_shape_size(m->layers[i].out);
        cn_session *s = NULL;
        if (cn_model_macs(m) <= MAX_FUZZ_MACS && acts <= MAX_FUZZ_ACTS && cn_model_param_count(m) <= 200000 &&
            cn_session_create(m, 1, 1, 0, &s) == CN_OK) {
            size_t in_n = (size_t)cn_shape_size(m->input);
            float *x = calloc(in_n, sizeof *x);
            int classes = cn_model_num_classes(m);
            float *g = calloc((size_t)classes, sizeof *g);
            if (!x || !g) abort();
            for (size_t i = 0; i < in_n; i++) x[i] = (float)((i * 37) % 11) / 11.0f - 0.3f;
            for (int c = 0; c < classes; c++) g[c] = c == 0 ? -1.0f : 1.0f / (float)classes;
            cn_rng rng;
            cn_rng_seed(&rng, 7);
            for (int training = 0; training < 2; training++) {
                cn_session_set_training(s, training);
                const float *y = cn_session_forward(s, x, 1, &rng);
                for (int c = 0; c < classes; c++) fuzz_sink_f += y[c];
                if (training) cn_session_backward(s, g, 1);
            }
            free(x);
            free(g);
        }
        cn_session_free(s);
    } else if (m) {
        abort(); /* failure leaves *out NULL */
    }
    cn_model_free(m);
    free(text);
    return 0;
}
