/* Per-channel normalisation values as text: "0.4914,0.4822,0.4465", the form
 * of checkpoint metadata (mean, std), ONNX metadata (normalize_mean,
 * normalize_std) and the --mean/--std options. */
#ifndef CN_DATA_NORM_TEXT_H
#define CN_DATA_NORM_TEXT_H
#include <stddef.h>

/* "v0,v1,..." of n values (%.9g, exact for floats) into buf. */
void cn_format_floats(char *buf, size_t size, const float *values, int n);
/* Parses 1..max comma-separated finite floats (the whole text); returns the
 * count, 0 if malformed or longer than max. */
int cn_parse_floats(const char *text, float *values, int max);

#endif
