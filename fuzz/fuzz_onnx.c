/* ONNX import (protobuf-c decoding, graph walk, constant folding, weights)
 * from memory; an imported model also runs one forward pass when small. */
#include "fuzz_common.h"
#include "io/onnx.h"
#include "model.h"
#include "exec/session.h"
#include "core/rng.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    cn_onnx_info info;
    cn_model *m = NULL;
    cn_status st = cn_onnx_import_memory(data, size, "fuzz.onnx", &info, &m);
    fuzz_check_error(st, "fuzz.onnx");
    if (st != CN_OK) {
        if (m) abort();
        return 0;
    }
    if (!m || m->num_layers < 1 || cn_model_num_classes(m) < 2) abort();
    cn_session *s = NULL;
    if (cn_model_macs(m) <= 2000000u && cn_session_create(m, 1, 1, 0, &s) == CN_OK) {
        size_t in_n = (size_t)cn_shape_size(m->input);
        float *x = calloc(in_n, sizeof *x);
        if (!x) abort();
        cn_rng rng;
        cn_rng_seed(&rng, 3);
        const float *y = cn_session_forward(s, x, 1, &rng);
        for (int c = 0; c < cn_model_num_classes(m); c++) fuzz_sink_f += y[c];
        free(x);
    }
    cn_session_free(s);
    cn_model_free(m);
    return 0;
}
