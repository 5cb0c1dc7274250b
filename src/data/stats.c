#include "data/stats.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "core/file_open.h"
#include "data/image_cache.h"
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int split_channels(const cn_split *s) { return s->channels > 0 ? s->channels : 1; }

void cn_split_pixel_stats(const cn_split *train, double *mean, double *std) {
    /* A histogram per channel makes the sums exact and the pass cheap. */
    int channels = split_channels(train);
    size_t plane = (size_t)train->rows * (size_t)train->cols;
    for (int c = 0; c < channels; c++) {
        uint64_t hist[256] = {0};
        for (size_t i = 0; i < (size_t)train->count; i++) {
            const uint8_t *p = train->images + (i * (size_t)channels + (size_t)c) * plane;
            for (size_t k = 0; k < plane; k++) hist[p[k]]++;
        }
        size_t n = (size_t)train->count * plane;
        double m = 0.0;
        for (int v = 0; v < 256; v++) m += (double)hist[v] * (v / 255.0);
        m = n ? m / (double)n : 0.0;
        double ss = 0.0;
        for (int v = 0; v < 256; v++) { double d = v / 255.0 - m; ss += (double)hist[v] * d * d; }
        mean[c] = m;
        std[c] = n > 1 ? sqrt(ss / (double)(n - 1)) : 0.0;
    }
}

void cn_split_stats(const cn_split *train, float *mean, float *std) {
    double m[CN_MAX_CHANNELS], s[CN_MAX_CHANNELS];
    cn_split_pixel_stats(train, m, s);
    for (int c = 0; c < split_channels(train); c++) {
        mean[c] = (float)m[c];
        std[c] = s[c] > 0.0 ? (float)s[c] : 1.0f; /* a constant channel: keep the division harmless */
    }
}

static const char *base_name(const char *path) {
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/* Up to `max` comma-separated doubles; returns how many were read. */
static int parse_list(const char *text, double *values, int max) {
    int n = 0;
    while (n < max) {
        char *end;
        values[n] = strtod(text, &end);
        if (end == text) break;
        n++;
        if (*end != ',') break;
        text = end + 1;
    }
    return n;
}

static int read_cache(const char *cache_path, const char *file, long long size, long long mtime, int channels,
                      float *mean, float *std) {
    FILE *f;
    struct stat sb;
    if (stat(cache_path, &sb) != 0 || cn_fopen_regular(cache_path, "a statistics cache", &f) != CN_OK) return 0;
    char line[512], name[256] = "";
    long long csize = -1, cmtime = -1;
    double cmean[CN_MAX_CHANNELS], cstd[CN_MAX_CHANNELS];
    int nmean = 0, nstd = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#') continue;
        if (sscanf(line, "file %255s", name) == 1) continue;
        if (sscanf(line, "size %lld", &csize) == 1) continue;
        if (sscanf(line, "mtime %lld", &cmtime) == 1) continue;
        if (!strncmp(line, "mean ", 5)) nmean = parse_list(line + 5, cmean, CN_MAX_CHANNELS);
        if (!strncmp(line, "std ", 4)) nstd = parse_list(line + 4, cstd, CN_MAX_CHANNELS);
    }
    fclose(f);
    if (strcmp(name, file) || csize != size || cmtime != mtime || nmean != channels || nstd != channels) return 0;
    for (int c = 0; c < channels; c++)
        if (!isfinite(cmean[c]) || !isfinite(cstd[c]) || cstd[c] <= 0.0 || cmean[c] < 0.0 || cmean[c] > 1.0) return 0;
    for (int c = 0; c < channels; c++) { mean[c] = (float)cmean[c]; std[c] = (float)cstd[c]; }
    return 1;
}

static void write_cache(const char *cache_path, const char *file, long long size, long long mtime, int channels,
                        const float *mean, const float *std) {
    cn_atomic_file af;
    FILE *f;
    if (cn_atomic_begin_text(&af, cache_path, &f)) return;
    fprintf(f, "# convnet: normalisation statistics of the training images (pixel/255), per channel\n"
                        "file %s\nsize %lld\nmtime %lld\n", file, size, mtime);
    for (int k = 0; k < 2; k++) {
        const float *v = k == 0 ? mean : std;
        fprintf(f, "%s", k == 0 ? "mean " : "std ");
        for (int c = 0; c < channels; c++) fprintf(f, "%s%.9g", c ? "," : "", (double)v[c]);
        fprintf(f, "\n");
    }
    cn_atomic_commit(&af);   /* a cache: a failure only means it is computed again next time */
}

void cn_split_cached_stats(const cn_split *train, const char *images_path, const char *cache_path,
                           float *mean, float *std) {
    struct stat st;
    long long size = -1, mtime = -1;
    int channels = split_channels(train);
    /* mtime in nanoseconds (cn_file_stamp): a file rewritten within the same second is another file */
    if (stat(images_path, &st) == 0) {
        cn_file_stamp stamp = cn_file_stamp_of(&st);
        size = stamp.size;
        mtime = stamp.mtime_ns;
    }
    const char *file = base_name(images_path);
    if (size >= 0 && read_cache(cache_path, file, size, mtime, channels, mean, std)) return;
    cn_split_stats(train, mean, std);
    if (size >= 0 && strchr(file, ' ') == NULL) write_cache(cache_path, file, size, mtime, channels, mean, std);
}

cn_status cn_normalization_parse(const char *file, const char *key, const char *text, int positive, float *out,
                                 int max, int *count) {
    char shown[40];   /* the stored text, cut short and printable: messages stay one line */
    size_t i = 0;
    for (; text[i] && i + 1 < sizeof shown; i++) shown[i] = (unsigned char)text[i] < 0x20 || text[i] == 0x7f ? '?' : text[i];
    shown[i] = '\0';
    int n = 0, ok = 1;
    for (const char *p = text; ok;) {
        char *end;
        errno = 0;
        double v = strtod(p, &end);
        float f = (float)v;
        if (errno || end == p || (*end && *end != ',') || !isfinite(f) || (positive && !(f > 0.0f)) || n == max) ok = 0;
        else out[n++] = f;
        if (!ok || !*end) break;
        p = end + 1;
    }
    if (!ok)
        return cn_fail(CN_ERR_FORMAT, "%s: metadata %s is \"%s\"%s; expected a finite number%s%s", file, key, shown,
                       text[i] ? "..." : "", positive ? " > 0" : "",
                       max > 1 ? " (or one per channel, comma-separated)" : "");
    *count = n;
    return CN_OK;
}
