#include "data/norm_text.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

void cn_format_floats(char *buf, size_t size, const float *values, int n) {
    size_t len = 0;
    if (size) buf[0] = '\0';
    for (int i = 0; i < n && len < size; i++)
        len += (size_t)snprintf(buf + len, size - len, "%s%.9g", i ? "," : "", (double)values[i]);
}

int cn_parse_floats(const char *text, float *values, int max) {
    int n = 0;
    for (;;) {
        char *end;
        float v = strtof(text, &end);
        if (end == text || !isfinite(v) || n == max) return 0;
        values[n++] = v;
        if (*end == '\0') return n;
        if (*end != ',') return 0;
        text = end + 1;
    }
}
