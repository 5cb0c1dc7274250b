/* Kaggle CSV image files. See csv.h. */
#include "data/csv.h"
#include "io/image.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "core/mem.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define LABEL_MAX 65535

typedef struct {
    const char *p, *end;   /* the rest of the data */
    long line;             /* 1-based number of the line at p */
} cursor;

/* The next line [*start, *stop) without its line end; 0 at the end of the data. */
static int next_line(cursor *c, const char **start, const char **stop) {
    if (c->p >= c->end) return 0;
    const char *nl = memchr(c->p, '\n', (size_t)(c->end - c->p));
    const char *e = nl ? nl : c->end;
    *start = c->p;
    *stop = e > c->p && e[-1] == '\r' ? e - 1 : e;
    c->p = nl ? nl + 1 : c->end;
    c->line++;
    return 1;
}

static long count_fields(const char *s, const char *e) {
    long n = 1;
    for (; s < e; s++) n += *s == ',';
    return n;
}

static int is_blank(const char *s, const char *e) {
    for (; s < e; s++) if (*s != ' ' && *s != '\t') return 0;
    return 1;
}

/* Parses one unsigned integer field at *s (spaces around it allowed), up to
 * the next comma or e; returns 0 if it is not an integer <= limit (then *bad
 * is the field text for the message). */
static int parse_field(const char **s, const char *e, long limit, long *value) {
    const char *p = *s;
    while (p < e && *p == ' ') p++;
    long v = 0;
    int digits = 0;
    while (p < e && *p >= '0' && *p <= '9') {
        if (v <= limit) v = v * 10 + (*p - '0');
        p++;
        digits++;
    }
    if (digits && p < e && *p == '.') {   /* "12.0": an integer written as a float */
        p++;
        while (p < e && *p == '0') p++;
    }
    while (p < e && *p == ' ') p++;
    int ok = digits > 0 && (p == e || *p == ',');
    *value = ok ? v : -1;
    *s = p < e && *p == ',' ? p + 1 : p;
    return ok;
}

/* "'text'" of the field starting at s (at most 16 bytes, other than printable
 * ASCII shown as '?', so that the message stays one line), for messages. */
static void field_text(const char *s, const char *e, char *buf, size_t size) {
    const char *comma = memchr(s, ',', (size_t)(e - s));
    size_t n = (size_t)((comma ? comma : e) - s), k = 0;
    if (n > 16) n = 16;
    if (size < n + 3) return;
    buf[k++] = '\'';
    for (size_t i = 0; i < n; i++) buf[k++] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
    buf[k++] = '\'';
    buf[k] = '\0';
}

/* Parses the data lines into out, `labelled` saying whether column 1 is the label. */
static cn_status parse_lines(cursor *c, const char *name, size_t pixels, int labelled, int num_classes, cn_split *out) {
    long fields = (long)pixels + labelled;
    const char *s, *e;
    size_t n = 0;
    while (next_line(c, &s, &e)) {
        if (is_blank(s, e)) continue;
        long got = count_fields(s, e);
        if (got != fields)
            return cn_fail(CN_ERR_FORMAT, "%s:%ld: %ld values, expected %ld (%s%zu pixels)", name, c->line, got, fields,
                           labelled ? "a label and " : "", pixels);
        uint8_t *img = out->images + n * pixels;
        long v;
        for (long f = 0; f < fields; f++) {
            const char *at = s;
            int is_label = labelled && f == 0;
            if (!parse_field(&s, e, is_label ? LABEL_MAX : 255, &v) || v > (is_label ? LABEL_MAX : 255)) {
                char text[24];
                field_text(at, e, text, sizeof text);
                return cn_fail(CN_ERR_FORMAT, "%s:%ld: column %ld: %s, expected %s", name, c->line, f + 1, text,
                               is_label ? "a label 0..65535" : "a pixel value 0..255");
            }
            if (is_label && num_classes > 0 && v >= num_classes)
                return cn_fail(CN_ERR_FORMAT, "%s:%ld: label %ld, expected 0..%d (the training classes)", name, c->line,
                               v, num_classes - 1);
            if (is_label) out->labels[n] = (uint16_t)v;
            else img[f - labelled] = (uint8_t)v;
        }
        n++;
    }
    out->count = (int)n;
    return n ? CN_OK : cn_fail(CN_ERR_FORMAT, "%s: no images; expected one line per image", name);
}

cn_status cn_csv_parse(const void *data, size_t size, const char *name, int channels, int rows, int cols,
                       int need_label, int num_classes, cn_split *out, int *has_label) {
    memset(out, 0, sizeof *out);
    if (!name) name = "<memory>";
    if (channels < 1 || channels > CN_MAX_CHANNELS || rows < 1 || rows > CN_MAX_SIDE || cols < 1 || cols > CN_MAX_SIDE)
        return cn_fail(CN_ERR_ARG, "%s: image shape %dx%dx%d: expected 1..%d channels and sides of 1..%d", name,
                       channels, rows, cols, CN_MAX_CHANNELS, CN_MAX_SIDE);
    size_t pixels = (size_t)channels * rows * cols;
    cursor c = {data, (const char *)data + size, 0};
    /* The header, or the first data line (then read again below). */
    const char *s, *e;
    while (next_line(&c, &s, &e) && is_blank(s, e)) {}
    if (c.line == 0 || is_blank(s, e)) return cn_fail(CN_ERR_FORMAT, "%s: the file is empty; expected a CSV of images", name);
    long first_fields = count_fields(s, e);
    const char *t = s;
    while (t < e && *t == ' ') t++;
    int header = !(t < e && *t >= '0' && *t <= '9');
    int labelled;
    if (header) labelled = (size_t)(e - t) >= 5 && !strncasecmp(t, "label", 5);
    else {
        labelled = first_fields == (long)pixels + 1;
        c = (cursor){s, (const char *)data + size, c.line - 1};
    }
    if (header && first_fields != (long)pixels + labelled)
        return cn_fail(CN_ERR_FORMAT, "%s:%ld: header has %ld columns, expected %zu (%s%zu pixels of %dx%dx%d; "
                       "--shape CxHxW sets the image shape)", name, c.line, first_fields, pixels + (size_t)labelled,
                       labelled ? "label + " : "", pixels, channels, rows, cols);
    if (need_label && !labelled)
        return cn_fail(CN_ERR_FORMAT, "%s:%ld: no label column; expected 'label' as the first column (a test.csv "
                       "without labels is for `convnet predict --csv`)", name, c.line + (header ? 0 : 1));
    /* Lines left: an upper bound on the images. */
    size_t lines = 1;
    for (const char *p = c.p; p < c.end; p++) lines += *p == '\n';
    size_t bytes;
    if (!cn_mul_ok(lines, pixels, &bytes) || bytes > CN_CSV_MAX_BYTES * 2)
        return cn_fail(CN_ERR_UNSUPPORTED, "%s: %zu lines of %zu pixels is too large", name, lines, pixels);
    out->images = cn_calloc(bytes, 1);
    out->labels = cn_calloc(lines, sizeof *out->labels);
    if (!out->images || !out->labels) { cn_split_free(out); return CN_ERR_NOMEM; }
    cn_status st = parse_lines(&c, name, pixels, labelled, num_classes, out);
    if (st) { cn_split_free(out); return st; }
    out->channels = channels;
    out->rows = rows;
    out->cols = cols;
    if (has_label) *has_label = labelled;
    return CN_OK;
}

cn_status cn_csv_read(const char *path, int channels, int rows, int cols, int need_label, int num_classes, cn_split *out,
                      int *has_label) {
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f) return cn_fail(CN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fclose(f);
        return cn_fail(CN_ERR_IO, "%s: not a regular file; expected a CSV file", path);
    }
    long long size = (long long)sb.st_size;
    if ((unsigned long long)size > CN_CSV_MAX_BYTES) {
        fclose(f);
        return cn_fail(CN_ERR_UNSUPPORTED, "%s: %lld bytes; the limit for a CSV file is %zu bytes", path, size,
                       CN_CSV_MAX_BYTES);
    }
    char *data = cn_calloc((size_t)size + 1, 1);
    size_t got = data ? fread(data, 1, (size_t)size, f) : 0;
    fclose(f);
    if (!data) return CN_ERR_NOMEM;
    if (got != (size_t)size) { free(data); return cn_fail(CN_ERR_IO, "%s: byte %zu: read failed", path, got); }
    cn_status st = cn_csv_parse(data, got, path, channels, rows, cols, need_label, num_classes, out, has_label);
    free(data);
    return st;
}

cn_status cn_csv_load_dataset(const cn_data_options *o, const char *dir, cn_dataset *out, char *stats_key, size_t key_size) {
    if (!dir) return cn_fail(CN_ERR_ARG, "--dataset csv needs --data DIR (DIR/train.csv and DIR/test.csv)");
    int channels = o->channels ? o->channels : 1, rows = o->rows ? o->rows : 28, cols = o->cols ? o->cols : 28;
    char train[4200], test[4200];
    snprintf(out->name, sizeof out->name, "csv");
    snprintf(out->dir, sizeof out->dir, "%s", dir);
    if (snprintf(train, sizeof train, "%s/train.csv", dir) >= (int)sizeof train ||
        snprintf(test, sizeof test, "%s/test.csv", dir) >= (int)sizeof test)
        return cn_fail(CN_ERR_ARG, "%s: path too long", dir);
    cn_status st = cn_csv_read(train, channels, rows, cols, 1, 0, &out->train, NULL);
    if (st) return st;
    int max_label = 0;
    for (int i = 0; i < out->train.count; i++) if (out->train.labels[i] > max_label) max_label = out->train.labels[i];
    if (max_label + 1 < 2 || max_label + 1 > CN_MAX_CLASSES)
        return cn_fail(CN_ERR_FORMAT, "%s: labels 0..%d make %d classes; expected 2 to %d", train, max_label,
                       max_label + 1, CN_MAX_CLASSES);
    out->num_classes = max_label + 1;
    for (int k = 0; k < out->num_classes; k++) snprintf(out->class_names[k], sizeof out->class_names[k], "%d", k);
    st = cn_csv_read(test, channels, rows, cols, 1, out->num_classes, &out->test, NULL);
    if (st) return st;
    snprintf(stats_key, key_size, "%s", train);
    return CN_OK;
}

cn_status cn_csv_write_submission(const char *path, const int *predictions, int count) {
    cn_atomic_file af;
    FILE *f;
    cn_status st = cn_atomic_begin_text(&af, path, &f);
    if (st) return st;
    fprintf(f, "ImageId,Label\n");
    for (int i = 0; i < count; i++) fprintf(f, "%d,%d\n", i + 1, predictions[i]);
    return cn_atomic_commit(&af);
}
