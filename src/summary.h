/* Model summaries in the layout of torchsummary (sksq96/pytorch-summary),
 * the table the seed documents print with `summary(model, (1, 28, 28))`. */
#ifndef CN_SUMMARY_H
#define CN_SUMMARY_H
#include "model.h"
#include <stdio.h>

/* Writes the torchsummary table of `m` to `out`, byte for byte what
 * torchsummary's summary_string() returns for the equivalent PyTorch model
 * and input size m->input, then one line of our own:
 *     Forward MACs per image: 2,503,872
 *
 * Rows: one per layer, named "<PyTorch class>-<row number>", except that
 * `flatten` and `log_softmax` give no row (the seed documents call them as
 * torch.flatten / F.log_softmax in forward(), so torchsummary never sees
 * them) and the numbering skips them. Output shapes are [-1, C, H, W], or
 * [-1, F] once the activation is flat (after flatten or linear). Param # is
 * weight + bias; BatchNorm2d counts 2*C (running statistics are buffers, not
 * parameters). Every parameter of ours is trainable.
 *
 * The sizes in MB follow torchsummary's arithmetic: 4 bytes per number,
 * input = C*H*W, forward/backward = 2 x the sum of every row's output size,
 * params = total params, total = params + forward/backward + input, each
 * printed with "%.2f".
 *
 * Returns CN_ERR_ARG for NULL arguments, CN_ERR_IO if writing fails. */
cn_status cn_summary_write(const cn_model *m, FILE *out);

/* Formats `value` with thousands separators ("1,199,882") into buf;
 * returns buf. `size` must be at least 27 (any uint64_t fits). */
char *cn_summary_format_count(uint64_t value, char *buf, size_t size);

#endif
