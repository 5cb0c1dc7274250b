/* torchsummary-style model table (see summary.h for the format contract). */
#include "summary.h"
#include "core/error.h"
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <string.h>

#define SUMMARY_RULE "----------------------------------------------------------------"
#define SUMMARY_DOUBLE_RULE "================================================================"
#define BYTES_PER_NUMBER 4.0   /* torchsummary assumes float32 everywhere */
#define BYTES_PER_MB (1024.0 * 1024.0)

char *cn_summary_format_count(uint64_t value, char *buf, size_t size) {
    CN_ASSERT(size >= 27);   /* 20 digits, 6 commas, NUL */
    char digits[24];
    int n = snprintf(digits, sizeof digits, "%" PRIu64, value);
    size_t j = 0;
    for (int i = 0; i < n; i++) {
        if (i > 0 && (n - i) % 3 == 0) buf[j++] = ',';   /* before each group of three from the right */
        buf[j++] = digits[i];
    }
    buf[j] = '\0';
    return buf;
}

/* Whether layer `kind` appears as a row: torchsummary hooks nn.Module children
 * only, and the seed models apply flatten and log_softmax functionally. */
static bool has_row(cn_layer_kind kind) {
    /* add and concat are `a + b` and torch.cat in a module's forward: no module, no row */
    return kind != CN_LAYER_FLATTEN && kind != CN_LAYER_LOG_SOFTMAX && kind != CN_LAYER_ADD && kind != CN_LAYER_CONCAT;
}

/* Whether the activation after a layer is a flat (N, F) tensor rather than
 * (N, C, H, W); `flat_in` is the state before it. Only flatten and linear
 * produce flat tensors, and only the spatial layers give 4-d ones back. */
static bool output_is_flat(cn_layer_kind kind, bool flat_in) {
    switch (kind) {
    case CN_LAYER_FLATTEN: case CN_LAYER_LINEAR: return true;
    case CN_LAYER_CONV2D: case CN_LAYER_MAXPOOL2D: case CN_LAYER_AVGPOOL2D: case CN_LAYER_GAP: return false;
    default: return flat_in;   /* elementwise: relu, batchnorm2d, dropout, log_softmax */
    }
}

cn_status cn_summary_write(const cn_model *m, FILE *out) {
    if (!m || !out) return cn_fail(CN_ERR_ARG, "summary: model and output stream are required");
    errno = 0;
    bool ok = true;   /* every fprintf's result, so a full disk is reported */
#define EMIT(...) do { if (fprintf(out, __VA_ARGS__) < 0) ok = false; } while (0)
    EMIT("%s\n", SUMMARY_RULE);
    EMIT("%20s  %25s %15s\n", "Layer (type)", "Output Shape", "Param #");
    EMIT("%s\n", SUMMARY_DOUBLE_RULE);

    uint64_t total_params = 0, trainable_params = 0, total_output = 0;
    int row = 0;
    bool flat = false;   /* the input is always C x H x W */
    for (int i = 0; i < m->num_layers; i++) {
        const cn_layer *l = &m->layers[i];
        flat = output_is_flat(l->kind, flat);
        if (!has_row(l->kind)) continue;
        row++;
        char name[64], shape[96], count[32];
        snprintf(name, sizeof name, "%s-%d", cn_layer_torch_class(l), row);
        if (flat)
            snprintf(shape, sizeof shape, "[-1, %d]", cn_shape_size(l->out));
        else
            snprintf(shape, sizeof shape, "[-1, %d, %d, %d]", l->out.c, l->out.h, l->out.w);
        uint64_t params = (uint64_t)l->weight_count + l->bias_count;
        EMIT("%20s  %25s %15s\n", name, shape, cn_summary_format_count(params, count, sizeof count));
        total_params += params;
        /* torchsummary marks a row trainable when the module has a weight; ours all require grad. */
        if (l->weight_count) trainable_params += params;
        total_output += (uint64_t)cn_shape_size(l->out);
    }

    /* torchsummary multiplies by batch_size = -1 and takes abs(); the
     * magnitudes are the same. Sums stay far below 2^53, so the doubles are exact. */
    double input_mb = (double)cn_shape_size(m->input) * BYTES_PER_NUMBER / BYTES_PER_MB;
    double output_mb = 2.0 * (double)total_output * BYTES_PER_NUMBER / BYTES_PER_MB;   /* x2: gradients */
    double params_mb = (double)total_params * BYTES_PER_NUMBER / BYTES_PER_MB;
    double total_mb = params_mb + output_mb + input_mb;   /* torchsummary's order of addition */

    char count[32];
    EMIT("%s\n", SUMMARY_DOUBLE_RULE);
    EMIT("Total params: %s\n", cn_summary_format_count(total_params, count, sizeof count));
    EMIT("Trainable params: %s\n", cn_summary_format_count(trainable_params, count, sizeof count));
    EMIT("Non-trainable params: %s\n", cn_summary_format_count(total_params - trainable_params, count, sizeof count));
    EMIT("%s\n", SUMMARY_RULE);
    EMIT("Input size (MB): %0.2f\n", input_mb);
    EMIT("Forward/backward pass size (MB): %0.2f\n", output_mb);
    EMIT("Params size (MB): %0.2f\n", params_mb);
    EMIT("Estimated Total Size (MB): %0.2f\n", total_mb);
    EMIT("%s\n", SUMMARY_RULE);
    /* Our addition (torchsummary has no such line). */
    EMIT("Forward MACs per image: %s\n", cn_summary_format_count(cn_model_macs(m), count, sizeof count));
#undef EMIT
    if (!ok || fflush(out) != 0 || ferror(out))
        return cn_fail(CN_ERR_IO, "cannot write the model summary: %s", errno ? strerror(errno) : "write error");
    return CN_OK;
}
