#include "data/stats.h"
#include "core/error.h"
#include "core/file_open.h"
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void cn_split_pixel_stats(const cn_split *train, double *mean, double *std) {
    /* A histogram makes the sums exact and the pass cheap. */
    uint64_t hist[256] = {0};
    size_t n = (size_t)train->count * (size_t)train->rows * (size_t)train->cols;
    for (size_t i = 0; i < n; i++) hist[train->images[i]]++;
    double m = 0.0;
    for (int v = 0; v < 256; v++) m += (double)hist[v] * (v / 255.0);
    m = n ? m / (double)n : 0.0;
    double ss = 0.0;
    for (int v = 0; v < 256; v++) { double d = v / 255.0 - m; ss += (double)hist[v] * d * d; }
    *mean = m;
    *std = n > 1 ? sqrt(ss / (double)(n - 1)) : 0.0;
}

static const char *base_name(const char *path) {
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

static int read_cache(const char *cache_path, const char *file, long long size, long long mtime,
                      float *mean, float *std) {
    FILE *f;
    struct stat sb;
    if (stat(cache_path, &sb) != 0 || cn_fopen_regular(cache_path, "a statistics cache", &f) != CN_OK) return 0;
    char line[512], name[256] = "";
    long long csize = -1, cmtime = -1;
    double cmean = NAN, cstd = NAN;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#') continue;
        if (sscanf(line, "file %255s", name) == 1) continue;
        if (sscanf(line, "size %lld", &csize) == 1) continue;
        if (sscanf(line, "mtime %lld", &cmtime) == 1) continue;
        if (sscanf(line, "mean %lf", &cmean) == 1) continue;
        if (sscanf(line, "std %lf", &cstd) == 1) continue;
    }
    fclose(f);
    if (strcmp(name, file) || csize != size || cmtime != mtime) return 0;
    if (!isfinite(cmean) || !isfinite(cstd) || cstd <= 0.0 || cmean < 0.0 || cmean > 1.0) return 0;
    *mean = (float)cmean;
    *std = (float)cstd;
    return 1;
}

static void write_cache(const char *cache_path, const char *file, long long size, long long mtime,
                        double mean, double std) {
    char tmp[4200];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", cache_path, (long)getpid()) >= (int)sizeof tmp) return;
    FILE *f = fopen(tmp, "w");
    if (!f) return;
    int ok = fprintf(f, "# convnet: normalisation statistics of the training images (pixel/255)\n"
                        "file %s\nsize %lld\nmtime %lld\nmean %.9f\nstd %.9f\n",
                     file, size, mtime, mean, std) > 0;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, cache_path) != 0) remove(tmp);
}

void cn_split_cached_stats(const cn_split *train, const char *images_path, const char *cache_path,
                           float *mean, float *std) {
    struct stat st;
    long long size = -1, mtime = -1;
    if (stat(images_path, &st) == 0) { size = (long long)st.st_size; mtime = (long long)st.st_mtime; }
    const char *file = base_name(images_path);
    if (size >= 0 && read_cache(cache_path, file, size, mtime, mean, std)) return;
    double m, s;
    cn_split_pixel_stats(train, &m, &s);
    if (!(s > 0.0)) s = 1.0; /* a constant image set: keep the division harmless */
    *mean = (float)m;
    *std = (float)s;
    if (size >= 0 && strchr(file, ' ') == NULL) write_cache(cache_path, file, size, mtime, m, s);
}

cn_status cn_normalization_parse(const char *file, const char *key, const char *text, int positive, float *out) {
    char shown[40];   /* the stored text, cut short and printable: messages stay one line */
    size_t i = 0;
    for (; text[i] && i + 1 < sizeof shown; i++) shown[i] = (unsigned char)text[i] < 0x20 || text[i] == 0x7f ? '?' : text[i];
    shown[i] = '\0';
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    float f = (float)v;
    if (errno || end == text || *end || !isfinite(f) || (positive && !(f > 0.0f)))
        return cn_fail(CN_ERR_FORMAT, "%s: metadata %s is \"%s\"%s; expected a finite number%s", file, key, shown,
                       text[i] ? "..." : "", positive ? " > 0" : "");
    *out = f;
    return CN_OK;
}
