/* safetensors reader/writer; format and validation rules in safetensors.h. */
#include "io/safetensors.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "core/file_open.h"
#include "core/mem.h"
#include "core/text.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The reader decodes little-endian bytes explicitly; the writer and
 * cn_st_data() callers rely on the host being little-endian too. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors.c assumes a little-endian host (the format is little-endian)"
#endif

/* Largest integer a JSON number (a double) holds exactly. */
#define MAX_JSON_INT 9007199254740992.0

struct cn_st_file {
    char *source;             /* file name for error messages */
    cn_st_tensor *tensors;
    int count;
    char **meta_keys, **meta_values;
    int meta_count;
    int *name_order;          /* tensor indices sorted by name (count), for cn_st_find */
    int *meta_order;          /* metadata indices sorted by key (meta_count), for cn_st_metadata */
    unsigned char *data;      /* data section, 64-byte aligned */
    size_t data_size;
};

/* ---- dtypes and little-endian decoding ---- */

static const struct { const char *name; size_t size; } dtypes[] = {
    {"F32", 4}, {"F64", 8}, {"F16", 2}, {"BF16", 2}, {"I64", 8},
    {"I32", 4}, {"I16", 2}, {"I8", 1}, {"U8", 1}, {"BOOL", 1},
};

size_t cn_st_dtype_size(const char *dtype) {
    if (!dtype) return 0;
    for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
        if (strcmp(dtype, dtypes[i].name) == 0) return dtypes[i].size;
    return 0;
}

size_t cn_st_numel(const cn_st_tensor *t) {
    size_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= (size_t)t->shape[i]; /* checked when opened */
    return n;
}

static uint64_t load_le64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}
static uint32_t load_le32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint16_t load_le16(const unsigned char *p) { return (uint16_t)(p[0] | p[1] << 8); }

static float bits_to_float(uint32_t u) { float f; memcpy(&f, &u, sizeof f); return f; }
static double bits_to_double(uint64_t u) { double d; memcpy(&d, &u, sizeof d); return d; }

/* IEEE half -> float, exact (every half is representable as a float). */
static float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff;
    if (exp == 0x1f) return bits_to_float(sign | 0x7f800000u | (man << 13)); /* inf/nan */
    if (exp == 0) {                                                         /* zero/subnormal */
        float f = (float)man * (1.0f / 16777216.0f);                        /* man * 2^-24 */
        return sign ? -f : f;
    }
    return bits_to_float(sign | ((exp + 112) << 23) | (man << 13));
}

/* Element i of a tensor's bytes as double (float dtypes only). */
static double load_float_elem(const char *dtype, const unsigned char *p, size_t i) {
    switch (dtype[0] == 'F' ? dtype[1] : 'B') {
    case '3': return bits_to_float(load_le32(p + 4 * i));
    case '6': return bits_to_double(load_le64(p + 8 * i));
    case '1': return half_to_float(load_le16(p + 2 * i));
    default: return bits_to_float((uint32_t)load_le16(p + 2 * i) << 16); /* BF16 */
    }
}

static bool is_float_dtype(const char *d) {
    return !strcmp(d, "F32") || !strcmp(d, "F64") || !strcmp(d, "F16") || !strcmp(d, "BF16");
}

/* Formats a shape as "[2, 3]" into buf. */
static const char *shape_str(const int64_t *shape, int ndim, char *buf, size_t size) {
    size_t n = (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < ndim && n < size; i++)
        n += (size_t)snprintf(buf + n, size - n, "%s%" PRId64, i ? ", " : "", shape[i]);
    if (n < size) snprintf(buf + n, size - n, "]");
    return buf;
}

/* ---- header validation ---- */

/* A copy of s (at most size-1 bytes) with control bytes replaced by '?', so
 * error messages stay on one printable line. */
static const char *printable(const char *s, char *buf, size_t size) {
    size_t i = 0;
    for (; s[i] && i + 1 < size; i++) buf[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
    buf[i] = '\0';
    return buf;
}

static bool has_control_byte(const char *s) {
    for (; *s; s++) if ((unsigned char)*s < 0x20 || *s == 0x7f) return true;
    return false;
}

static void file_free_partial(cn_st_file *f) {
    if (!f) return;
    for (int i = 0; i < f->meta_count; i++) { free(f->meta_keys[i]); free(f->meta_values[i]); }
    free(f->meta_keys);
    free(f->meta_values);
    free(f->meta_order);
    free(f->name_order);
    free(f->tensors);
    cn_free_aligned(f->data);
    free(f->source);
    free(f);
}

void cn_st_close(cn_st_file *f) { file_free_partial(f); }

static char *dup_string(const char *s) {
    size_t n = strlen(s);
    char *p = cn_calloc(n + 1, 1);
    if (p) memcpy(p, s, n);
    return p;
}

/* A JSON number that is an integer in [0, 2^53]; else false. */
static bool json_uint(const cJSON *item, uint64_t *out) {
    if (!cJSON_IsNumber(item)) return false;
    double v = item->valuedouble;
    if (!(v >= 0.0 && v <= MAX_JSON_INT) || v != floor(v)) return false;
    *out = (uint64_t)v;
    return true;
}

/* Short description of a JSON value for "found ..." messages. */
static const char *json_kind(const cJSON *item) {
    if (cJSON_IsObject(item)) return "an object";
    if (cJSON_IsArray(item)) return "an array";
    if (cJSON_IsString(item)) return "a string";
    if (cJSON_IsNumber(item)) return "a number";
    if (cJSON_IsBool(item)) return "a boolean";
    if (cJSON_IsNull(item)) return "null";
    return "an invalid value";
}

/* qsort has no context argument in C11: the comparators read these. */
static _Thread_local const char *const *sort_keys;
static int cmp_key(const void *a, const void *b) { return strcmp(sort_keys[*(const int *)a], sort_keys[*(const int *)b]); }

static cn_status parse_metadata(cn_st_file *f, const cJSON *meta) {
    const char *src = f->source;
    if (!cJSON_IsObject(meta))
        return cn_fail(CN_ERR_FORMAT, "%s: \"__metadata__\" is %s, expected an object of strings",
                       src, json_kind(meta));
    int n = cJSON_GetArraySize(meta);
    if (n > CN_ST_MAX_METADATA)
        return cn_fail(CN_ERR_UNSUPPORTED, "%s: \"__metadata__\" has %d keys; at most %d are read", src, n, CN_ST_MAX_METADATA);
    f->meta_keys = cn_calloc((size_t)n, sizeof(char *));
    f->meta_values = cn_calloc((size_t)n, sizeof(char *));
    f->meta_order = cn_calloc((size_t)n, sizeof(int));
    if (!f->meta_keys || !f->meta_values || !f->meta_order) return CN_ERR_NOMEM;
    char kbuf[129];
    for (const cJSON *e = meta->child; e; e = e->next) {
        if (!cJSON_IsString(e) || !e->valuestring)
            return cn_fail(CN_ERR_FORMAT, "%s: \"__metadata__\" entry \"%s\" is %s, expected a string",
                           src, printable(e->string ? e->string : "", kbuf, sizeof kbuf), json_kind(e));
        char *k = dup_string(e->string), *v = dup_string(e->valuestring);
        if (!k || !v) { free(k); free(v); return CN_ERR_NOMEM; }
        f->meta_keys[f->meta_count] = k;
        f->meta_values[f->meta_count] = v;
        f->meta_order[f->meta_count] = f->meta_count;
        f->meta_count++;
    }
    /* Duplicates are neighbours once sorted: O(n log n) (a pairwise check took minutes for 2 million keys). */
    sort_keys = (const char *const *)f->meta_keys;
    qsort(f->meta_order, (size_t)f->meta_count, sizeof(int), cmp_key);
    for (int i = 1; i < f->meta_count; i++)
        if (strcmp(f->meta_keys[f->meta_order[i - 1]], f->meta_keys[f->meta_order[i]]) == 0)
            return cn_fail(CN_ERR_FORMAT, "%s: \"__metadata__\" has key \"%s\" twice", src,
                           printable(f->meta_keys[f->meta_order[i]], kbuf, sizeof kbuf));
    return CN_OK;
}

/* Fills t from one header entry and checks it against the data section size. */
static cn_status parse_tensor(const cn_st_file *f, const cJSON *e, size_t data_size, cn_st_tensor *t) {
    const char *src = f->source;
    const char *name = e->string ? e->string : "";
    size_t name_len = strlen(name);
    if (name_len == 0) return cn_fail(CN_ERR_FORMAT, "%s: a tensor has an empty name", src);
    char nbuf[41];
    if (name_len > CN_ST_MAX_NAME)
        return cn_fail(CN_ERR_FORMAT, "%s: tensor name \"%s...\" is %zu bytes long, expected at most %d",
                       src, printable(name, nbuf, sizeof nbuf), name_len, CN_ST_MAX_NAME);
    if (has_control_byte(name))
        return cn_fail(CN_ERR_FORMAT, "%s: tensor name \"%s\" contains a control character, expected printable text",
                       src, printable(name, nbuf, sizeof nbuf));
    memcpy(t->name, name, name_len + 1);
    if (!cJSON_IsObject(e))
        return cn_fail(CN_ERR_FORMAT, "%s: tensor \"%s\" is %s, expected an object with dtype, shape, data_offsets",
                       src, name, json_kind(e));

    const cJSON *dtype = NULL, *shape = NULL, *offsets = NULL;
    for (const cJSON *c = e->child; c; c = c->next) {
        const cJSON **slot = !strcmp(c->string, "dtype") ? &dtype
                           : !strcmp(c->string, "shape") ? &shape
                           : !strcmp(c->string, "data_offsets") ? &offsets : NULL;
        if (!slot)
            return cn_fail(CN_ERR_FORMAT, "%s: tensor \"%s\": unknown field \"%s\", expected only dtype, shape, data_offsets",
                           src, name, printable(c->string, nbuf, sizeof nbuf));
        if (*slot)
            return cn_fail(CN_ERR_FORMAT, "%s: tensor \"%s\": field \"%s\" appears twice", src, name, c->string);
        *slot = c;
    }
    if (!dtype || !shape || !offsets)
        return cn_fail(CN_ERR_FORMAT, "%s: tensor \"%s\": missing field \"%s\"", src, name,
                       !dtype ? "dtype" : !shape ? "shape" : "data_offsets");

    if (!cJSON_IsString(dtype) || !dtype->valuestring)
        return cn_fail(CN_ERR_FORMAT, "%s: tensor \"%s\": dtype is %s, expected a string such as \"F32\"",
                       src, name, json_kind(dtype));
    size_t elem = cn_st_dtype_size(dtype->valuestring);
    if (!elem)
        return cn_fail(CN_ERR_FORMAT, "%s: tensor \"%s\": unknown dtype \"%s\", expected one of "
                       "F32 F64 F16 BF16 I64 I32 I16 I8 U8 BOOL", src, name, printable(dtype->valuestring, nbuf, 17));
    snprintf(t->dtype, sizeof t->dtype, "%s", dtype->valuestring);

    if (!cJSON_IsArray(shape))
        return cn_fail(CN_ERR_FORMAT, "%s: tensor \"%s\": shape is %s, expected an array of integers",
                       src, name, json_kind(shape));
    int ndim = cJSON_GetArraySize(shape);
    if (ndim > CN_ST_MAX_DIMS)
        return cn_fail(CN_ERR_FORMAT, "%s: tensor \"%s\": shape has %d dimensions, expected at most %d",
                       src, name, ndim, CN_ST_MAX_DIMS);
    t->ndim = ndim;
    size_t numel = 1;
    bool overflow = false;
    int d = 0;
    for (const cJSON *c = shape->child; c; c = c->next, d++) {
        uint64_t v;
        if (!json_uint(c, &v))
            return cn_fail(CN_ERR_FORMAT, "%s: tensor \"%s\": shape[%d] is %s, expected a non-negative integer",
                           src, name, d, cJSON_IsNumber(c) ? "not a non-negative integer" : json_kind(c));
        t->shape[d] = (int64_t)v;
        if (v > SIZE_MAX || !cn_mul_ok(numel, (size_t)v, &numel)) overflow = true;
    }
    char sbuf[256];
    size_t nbytes = 0;
    if (overflow || !cn_mul_ok(numel, elem, &nbytes))
        return cn_fail(CN_ERR_FORMAT, "%s: tensor \"%s\": shape %s is too large (byte size overflows)",
                       src, name, shape_str(t->shape, ndim, sbuf, sizeof sbuf));

    uint64_t begin, end;
    if (!cJSON_IsArray(offsets) || cJSON_GetArraySize(offsets) != 2 ||
        !json_uint(offsets->child, &begin) || !json_uint(offsets->child->next, &end))
        return cn_fail(CN_ERR_FORMAT, "%s: tensor \"%s\": data_offsets is not [begin, end] with non-negative integers",
                       src, name);
    if (begin > end)
        return cn_fail(CN_ERR_FORMAT, "%s: tensor \"%s\": data_offsets [%" PRIu64 ", %" PRIu64 "] have begin > end",
                       src, name, begin, end);
    if (end > data_size)
        return cn_fail(CN_ERR_FORMAT, "%s: tensor \"%s\": data_offsets [%" PRIu64 ", %" PRIu64 "] exceed the data section (%zu bytes)",
                       src, name, begin, end, data_size);
    if (end - begin != nbytes)
        return cn_fail(CN_ERR_FORMAT, "%s: tensor \"%s\": data_offsets [%" PRIu64 ", %" PRIu64 "] span %" PRIu64
                       " bytes, expected %zu for %s shape %s", src, name, begin, end, end - begin, nbytes,
                       t->dtype, shape_str(t->shape, ndim, sbuf, sizeof sbuf));
    t->offset = (size_t)begin;
    t->nbytes = nbytes;
    return CN_OK;
}

static _Thread_local const cn_st_tensor *sort_base;
static int cmp_by_name(const void *a, const void *b) {
    return strcmp(sort_base[*(const int *)a].name, sort_base[*(const int *)b].name);
}
static int cmp_by_offset(const void *a, const void *b) {
    const cn_st_tensor *x = &sort_base[*(const int *)a], *y = &sort_base[*(const int *)b];
    if (x->offset != y->offset) return x->offset < y->offset ? -1 : 1;
    if (x->nbytes != y->nbytes) return x->nbytes < y->nbytes ? -1 : 1;
    return 0;
}

/* Names unique; tensors tile [0, data_size) exactly (no overlap, no holes).
 * Keeps the by-name order in f->name_order for cn_st_find. */
static cn_status check_layout(cn_st_file *f) {
    if (f->count == 0) {
        if (f->data_size != 0)
            return cn_fail(CN_ERR_FORMAT, "%s: the data section has %zu bytes but the header lists no tensors",
                           f->source, f->data_size);
        return CN_OK;
    }
    int *order = cn_calloc((size_t)f->count, sizeof(int));
    if (!order) return CN_ERR_NOMEM;
    for (int i = 0; i < f->count; i++) order[i] = i;
    cn_status st = CN_OK;
    sort_base = f->tensors;
    qsort(order, (size_t)f->count, sizeof(int), cmp_by_name);
    for (int i = 1; i < f->count && st == CN_OK; i++)
        if (strcmp(f->tensors[order[i - 1]].name, f->tensors[order[i]].name) == 0)
            st = cn_fail(CN_ERR_FORMAT, "%s: tensor name \"%s\" appears twice", f->source, f->tensors[order[i]].name);
    if (st == CN_OK && !(f->name_order = cn_calloc((size_t)f->count, sizeof(int)))) st = CN_ERR_NOMEM;
    if (st == CN_OK) {
        memcpy(f->name_order, order, (size_t)f->count * sizeof(int));
        qsort(order, (size_t)f->count, sizeof(int), cmp_by_offset);
        size_t pos = 0;
        const cn_st_tensor *prev = NULL;
        for (int i = 0; i < f->count && st == CN_OK; i++) {
            const cn_st_tensor *t = &f->tensors[order[i]];
            if (t->offset < pos)
                st = cn_fail(CN_ERR_FORMAT, "%s: tensor \"%s\": data_offsets [%zu, %zu] overlap tensor \"%s\" [%zu, %zu]",
                             f->source, t->name, t->offset, t->offset + t->nbytes,
                             prev->name, prev->offset, prev->offset + prev->nbytes);
            else if (t->offset > pos)
                st = cn_fail(CN_ERR_FORMAT, "%s: data section bytes [%zu, %zu) belong to no tensor (before \"%s\"); "
                             "expected tensors to cover it without holes", f->source, pos, t->offset, t->name);
            pos = t->offset + t->nbytes;
            prev = t;
        }
        if (st == CN_OK && pos != f->data_size)
            st = cn_fail(CN_ERR_FORMAT, "%s: data section has %zu bytes but tensors end at byte %zu; "
                         "expected no trailing bytes", f->source, f->data_size, pos);
    }
    free(order);
    return st;
}

/* Validates the JSON header (header_len bytes, NUL-terminated in memory) for a
 * data section of data_size bytes; on success *out has tensors, metadata and
 * an allocated (unfilled) data buffer. */
static cn_status parse_header(const char *source, const char *header, size_t header_len,
                              size_t data_size, cn_st_file **out) {
    *out = NULL;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(header, header_len, &end, false);
    if (!root) {
        size_t at = end && end >= header && end <= header + header_len ? (size_t)(end - header) : 0;
        char near[24];
        size_t k = 0;
        for (; k < 20 && at + k < header_len; k++) {
            unsigned char c = (unsigned char)header[at + k];
            near[k] = c >= 0x20 && c < 0x7f ? (char)c : '?'; /* keep the message one printable line */
        }
        near[k] = '\0';
        return cn_fail(CN_ERR_FORMAT, "%s: offset %zu: header is not valid JSON (near \"%s\")",
                       source, 8 + at, near);
    }
    cn_status st = CN_OK;
    for (const char *p = end; p < header + header_len; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            cJSON_Delete(root);
            return cn_fail(CN_ERR_FORMAT, "%s: offset %zu: unexpected bytes after the JSON header, expected only padding spaces",
                           source, 8 + (size_t)(p - header));
        }
    if (!cJSON_IsObject(root)) {
        st = cn_fail(CN_ERR_FORMAT, "%s: offset 8: header is %s, expected a JSON object", source, json_kind(root));
        cJSON_Delete(root);
        return st;
    }

    cn_st_file *f = cn_calloc(1, sizeof *f);
    if (!f) { cJSON_Delete(root); return CN_ERR_NOMEM; }
    f->source = dup_string(source);
    int entries = cJSON_GetArraySize(root);
    f->data_size = data_size;
    if (!f->source) st = CN_ERR_NOMEM;
    else if (entries > CN_ST_MAX_TENSORS + 1)   /* + "__metadata__" */
        st = cn_fail(CN_ERR_UNSUPPORTED, "%s: the header lists %d entries; at most %d tensors are read", source, entries,
                     CN_ST_MAX_TENSORS);
    else if (!(f->tensors = cn_calloc((size_t)entries, sizeof(cn_st_tensor)))) st = CN_ERR_NOMEM;

    bool seen_meta = false;
    for (const cJSON *e = root->child; e && st == CN_OK; e = e->next) {
        if (e->string && strcmp(e->string, "__metadata__") == 0) {
            if (seen_meta) st = cn_fail(CN_ERR_FORMAT, "%s: \"__metadata__\" appears twice", source);
            else st = parse_metadata(f, e);
            seen_meta = true;
            continue;
        }
        st = parse_tensor(f, e, data_size, &f->tensors[f->count]);
        if (st == CN_OK) f->count++;
    }
    cJSON_Delete(root);
    if (st == CN_OK) st = check_layout(f);
    /* Allocated only once the header is known to be sane. */
    if (st == CN_OK && !(f->data = (unsigned char *)cn_alloc_floats((data_size + 3) / 4))) st = CN_ERR_NOMEM;
    if (st == CN_ERR_NOMEM) cn_error_prefix("%s", source);
    if (st != CN_OK) { file_free_partial(f); return st; }
    *out = f;
    return CN_OK;
}

/* Checks the 8-byte length prefix against the file size; returns the header length. */
static cn_status check_prefix(const char *source, const unsigned char prefix[8], size_t file_size,
                              size_t *header_len) {
    uint64_t n = load_le64(prefix);
    if (n > CN_ST_MAX_HEADER)
        return cn_fail(CN_ERR_FORMAT, "%s: offset 0: header length %" PRIu64 " exceeds the limit of %" PRIu64 " bytes",
                       source, n, CN_ST_MAX_HEADER);
    if (n > file_size - 8)
        return cn_fail(CN_ERR_FORMAT, "%s: offset 0: header length %" PRIu64 " exceeds the %zu bytes after the length "
                       "(file size %zu); truncated file?", source, n, file_size - 8, file_size);
    if (n < 2)
        return cn_fail(CN_ERR_FORMAT, "%s: offset 0: header length %" PRIu64 " is too small for a JSON object",
                       source, n);
    *header_len = (size_t)n;
    return CN_OK;
}

cn_status cn_st_open_memory(const void *data, size_t size, const char *name_for_errors, cn_st_file **out) {
    const char *source = name_for_errors ? name_for_errors : "<memory>";
    if (!out) return cn_fail(CN_ERR_ARG, "cn_st_open_memory: out is NULL");
    *out = NULL;
    if (!data && size) return cn_fail(CN_ERR_ARG, "%s: data is NULL", source);
    if (size < 8)
        return cn_fail(CN_ERR_FORMAT, "%s: file is %zu bytes, expected at least 8 (the header length)", source, size);
    const unsigned char *bytes = data;
    size_t header_len;
    cn_status st = check_prefix(source, bytes, size, &header_len);
    if (st != CN_OK) return st;
    char *header = cn_calloc(header_len + 1, 1);
    if (!header) return CN_ERR_NOMEM;
    memcpy(header, bytes + 8, header_len);
    cn_st_file *f;
    st = parse_header(source, header, header_len, size - 8 - header_len, &f);
    free(header);
    if (st != CN_OK) return st;
    if (f->data_size) memcpy(f->data, bytes + 8 + header_len, f->data_size);
    *out = f;
    return CN_OK;
}

/* Reads exactly n bytes or fails with a message naming the offset. */
static cn_status read_exact(FILE *fp, const char *path, void *buf, size_t n, size_t offset) {
    if (n && fread(buf, 1, n, fp) != n)
        return cn_fail(CN_ERR_IO, "%s: offset %zu: %s reading %zu bytes", path, offset,
                       ferror(fp) ? strerror(errno) : "unexpected end of file", n);
    return CN_OK;
}

cn_status cn_st_open(const char *path, cn_st_file **out) {
    if (!path || !out) return cn_fail(CN_ERR_ARG, "cn_st_open: path or out is NULL");
    *out = NULL;
    FILE *fp;
    cn_status st = cn_fopen_regular(path, "a safetensors file", &fp);   /* a FIFO must not block */
    if (st) return st;
    struct stat sb;
    char *header = NULL;
    cn_st_file *f = NULL;
    if (fstat(fileno(fp), &sb) != 0) {
        st = cn_fail(CN_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
    } else if (!S_ISREG(sb.st_mode)) {
        st = cn_fail(CN_ERR_IO, "%s: not a regular file", path);
    } else if ((uint64_t)sb.st_size > SIZE_MAX) {
        st = cn_fail(CN_ERR_NOMEM, "%s: file of %jd bytes is too large", path, (intmax_t)sb.st_size);
    } else {
        size_t size = (size_t)sb.st_size, header_len = 0;
        unsigned char prefix[8];
        if (size < 8)
            st = cn_fail(CN_ERR_FORMAT, "%s: file is %zu bytes, expected at least 8 (the header length)", path, size);
        if (st == CN_OK) st = read_exact(fp, path, prefix, 8, 0);
        if (st == CN_OK) st = check_prefix(path, prefix, size, &header_len);
        if (st == CN_OK && !(header = cn_calloc(header_len + 1, 1))) st = CN_ERR_NOMEM;
        if (st == CN_OK) st = read_exact(fp, path, header, header_len, 8);
        if (st == CN_OK) st = parse_header(path, header, header_len, size - 8 - header_len, &f);
        if (st == CN_OK) st = read_exact(fp, path, f->data, f->data_size, 8 + header_len);
        if (st == CN_OK && fgetc(fp) != EOF)
            st = cn_fail(CN_ERR_IO, "%s: file grew while being read", path);
    }
    fclose(fp);
    free(header);
    if (st != CN_OK) { cn_st_close(f); return st; }
    *out = f;
    return CN_OK;
}

/* ---- accessors ---- */

int cn_st_count(const cn_st_file *f) { return f ? f->count : 0; }

const cn_st_tensor *cn_st_get(const cn_st_file *f, int i) {
    return f && i >= 0 && i < f->count ? &f->tensors[i] : NULL;
}

const cn_st_tensor *cn_st_find(const cn_st_file *f, const char *name) {
    if (!f || !name || !f->name_order) return NULL;
    for (int lo = 0, hi = f->count; lo < hi;) {   /* bisect the by-name order */
        int mid = lo + (hi - lo) / 2, c = strcmp(f->tensors[f->name_order[mid]].name, name);
        if (c == 0) return &f->tensors[f->name_order[mid]];
        if (c < 0) lo = mid + 1; else hi = mid;
    }
    return NULL;
}

const void *cn_st_data(const cn_st_file *f, const cn_st_tensor *t) {
    return f && t ? f->data + t->offset : NULL;
}

const char *cn_st_metadata(const cn_st_file *f, const char *key) {
    if (!f || !key || !f->meta_order) return NULL;
    for (int lo = 0, hi = f->meta_count; lo < hi;) {
        int mid = lo + (hi - lo) / 2, c = strcmp(f->meta_keys[f->meta_order[mid]], key);
        if (c == 0) return f->meta_values[f->meta_order[mid]];
        if (c < 0) lo = mid + 1; else hi = mid;
    }
    return NULL;
}

int cn_st_metadata_count(const cn_st_file *f) { return f ? f->meta_count : 0; }

const char *cn_st_metadata_key(const cn_st_file *f, int i) {
    return f && i >= 0 && i < f->meta_count ? f->meta_keys[i] : NULL;
}

/* Finds `name` and checks its element count; *numel gets the count. */
static cn_status lookup(const cn_st_file *f, const char *name, size_t expected_count,
                        const cn_st_tensor **t, size_t *numel) {
    if (!f || !name) return cn_fail(CN_ERR_ARG, "cn_st_read: file or name is NULL");
    *t = cn_st_find(f, name);
    if (!*t) return cn_fail(CN_ERR_FORMAT, "%s: no tensor named \"%s\"", f->source, name);
    *numel = cn_st_numel(*t);
    if (expected_count && *numel != expected_count) {
        char sbuf[256];
        return cn_fail(CN_ERR_SHAPE, "%s: tensor \"%s\" has %zu elements (shape %s), expected %zu",
                       f->source, name, *numel, shape_str((*t)->shape, (*t)->ndim, sbuf, sizeof sbuf),
                       expected_count);
    }
    return CN_OK;
}

/* Tensor `name` (of a float dtype; expected_count elements unless 0) converted to float, or to
 * double when as_double, in a new array; NULL on failure, with *st saying why. *count (if not
 * NULL) gets its element count. */
static void *read_float_tensor(const cn_st_file *f, const char *name, size_t expected_count, bool as_double,
                               size_t *count, cn_status *st) {
    const cn_st_tensor *t;
    size_t n;
    *st = lookup(f, name, expected_count, &t, &n);
    if (*st != CN_OK) return NULL;
    if (!is_float_dtype(t->dtype)) {
        *st = cn_fail(CN_ERR_UNSUPPORTED, "%s: tensor \"%s\" has dtype %s, expected F32, F64, F16 or BF16",
                      f->source, name, t->dtype);
        return NULL;
    }
    void *v = cn_calloc(n ? n : 1, as_double ? sizeof(double) : sizeof(float));
    if (!v) { *st = CN_ERR_NOMEM; return NULL; }
    const unsigned char *p = f->data + t->offset;
    if (as_double) {
        double *d = v;
        for (size_t i = 0; i < n; i++) d[i] = load_float_elem(t->dtype, p, i);
    } else if (!strcmp(t->dtype, "F32")) {
        float *d = v;
        for (size_t i = 0; i < n; i++) d[i] = bits_to_float(load_le32(p + 4 * i));
    } else {
        float *d = v;
        for (size_t i = 0; i < n; i++) d[i] = (float)load_float_elem(t->dtype, p, i);
    }
    if (count) *count = n;
    return v;
}

cn_status cn_st_read_floats(const cn_st_file *f, const char *name, size_t expected_count,
                            float **out, size_t *out_count) {
    if (!out) return cn_fail(CN_ERR_ARG, "cn_st_read_floats: out is NULL");
    cn_status st;
    *out = read_float_tensor(f, name, expected_count, false, out_count, &st);
    return st;
}

cn_status cn_st_read_doubles(const cn_st_file *f, const char *name, size_t expected_count,
                             double **out, size_t *out_count) {
    if (!out) return cn_fail(CN_ERR_ARG, "cn_st_read_doubles: out is NULL");
    cn_status st;
    *out = read_float_tensor(f, name, expected_count, true, out_count, &st);
    return st;
}

cn_status cn_st_read_int64(const cn_st_file *f, const char *name, size_t expected_count,
                           int64_t **out, size_t *out_count) {
    const cn_st_tensor *t;
    size_t n;
    if (!out) return cn_fail(CN_ERR_ARG, "cn_st_read_int64: out is NULL");
    *out = NULL;
    cn_status st = lookup(f, name, expected_count, &t, &n);
    if (st != CN_OK) return st;
    if (is_float_dtype(t->dtype))
        return cn_fail(CN_ERR_UNSUPPORTED, "%s: tensor \"%s\" has dtype %s, expected an integer dtype",
                       f->source, name, t->dtype);
    int64_t *v = cn_calloc(n ? n : 1, sizeof(int64_t));
    if (!v) return CN_ERR_NOMEM;
    const unsigned char *p = f->data + t->offset;
    const char *d = t->dtype;
    for (size_t i = 0; i < n; i++) {
        if (!strcmp(d, "I64")) v[i] = (int64_t)load_le64(p + 8 * i);
        else if (!strcmp(d, "I32")) v[i] = (int32_t)load_le32(p + 4 * i);
        else if (!strcmp(d, "I16")) v[i] = (int16_t)load_le16(p + 2 * i);
        else if (!strcmp(d, "I8")) v[i] = (int8_t)p[i];
        else v[i] = p[i]; /* U8, BOOL */
    }
    *out = v;
    if (out_count) *out_count = n;
    return CN_OK;
}

/* ---- writer ---- */

typedef struct {
    cn_st_tensor info;
    unsigned char *bytes;
} writer_tensor;

struct cn_st_writer {
    writer_tensor *tensors;
    int count, cap;
    char **meta_keys, **meta_values;
    int meta_count, meta_cap;
};

cn_st_writer *cn_st_writer_new(void) { return cn_calloc(1, sizeof(cn_st_writer)); }

void cn_st_writer_free(cn_st_writer *w) {
    if (!w) return;
    for (int i = 0; i < w->count; i++) free(w->tensors[i].bytes);
    for (int i = 0; i < w->meta_count; i++) { free(w->meta_keys[i]); free(w->meta_values[i]); }
    free(w->tensors);
    free(w->meta_keys);
    free(w->meta_values);
    free(w);
}

/* Grows *arr (of `elem`-byte items) to hold at least need items. */
static bool grow(void **arr, int *cap, int need, size_t elem) {
    if (need <= *cap) return true;
    int ncap = *cap ? *cap * 2 : 16;
    if (ncap < need) ncap = need;
    size_t bytes;
    if (!cn_mul_ok((size_t)ncap, elem, &bytes)) { cn_fail(CN_ERR_NOMEM, "writer table too large"); return false; }
    void *p = realloc(*arr, bytes);
    if (!p) { cn_fail(CN_ERR_NOMEM, "out of memory growing the writer table"); return false; }
    *arr = p;
    *cap = ncap;
    return true;
}

cn_status cn_st_writer_add(cn_st_writer *w, const char *name, const char *dtype, int ndim,
                           const int64_t *shape, const void *data) {
    if (!w || !name || !dtype) return cn_fail(CN_ERR_ARG, "cn_st_writer_add: writer, name or dtype is NULL");
    size_t len = strlen(name);
    if (len == 0 || len > CN_ST_MAX_NAME)
        return cn_fail(CN_ERR_ARG, "safetensors writer: tensor name \"%.40s\" has %zu bytes, expected 1..%d",
                       name, len, CN_ST_MAX_NAME);
    if (strcmp(name, "__metadata__") == 0)
        return cn_fail(CN_ERR_ARG, "safetensors writer: \"__metadata__\" is reserved, not a tensor name");
    if (has_control_byte(name))
        return cn_fail(CN_ERR_ARG, "safetensors writer: a tensor name contains a control character");
    size_t elem = cn_st_dtype_size(dtype);
    if (!elem) return cn_fail(CN_ERR_ARG, "safetensors writer: tensor \"%s\": unknown dtype \"%.16s\"", name, dtype);
    if (ndim < 0 || ndim > CN_ST_MAX_DIMS || (ndim > 0 && !shape))
        return cn_fail(CN_ERR_ARG, "safetensors writer: tensor \"%s\": ndim %d, expected 0..%d with a shape",
                       name, ndim, CN_ST_MAX_DIMS);
    size_t nbytes = elem;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0 || (uint64_t)shape[i] > SIZE_MAX || !cn_mul_ok(nbytes, (size_t)shape[i], &nbytes))
            return cn_fail(CN_ERR_ARG, "safetensors writer: tensor \"%s\": dimension %d is %" PRId64
                           ", expected a non-negative size that fits in memory", name, i, shape[i]);
    }
    if (nbytes && !data) return cn_fail(CN_ERR_ARG, "safetensors writer: tensor \"%s\": data is NULL", name);
    for (int i = 0; i < w->count; i++)
        if (strcmp(w->tensors[i].info.name, name) == 0)
            return cn_fail(CN_ERR_ARG, "safetensors writer: tensor \"%s\" added twice", name);
    if (!grow((void **)&w->tensors, &w->cap, w->count + 1, sizeof(writer_tensor))) return CN_ERR_NOMEM;
    unsigned char *copy = cn_calloc(nbytes ? nbytes : 1, 1);
    if (!copy) return CN_ERR_NOMEM;
    if (nbytes) memcpy(copy, data, nbytes);
    writer_tensor *t = &w->tensors[w->count++];
    memset(t, 0, sizeof *t);
    memcpy(t->info.name, name, len + 1);
    snprintf(t->info.dtype, sizeof t->info.dtype, "%s", dtype);
    t->info.ndim = ndim;
    for (int i = 0; i < ndim; i++) t->info.shape[i] = shape[i];
    t->info.nbytes = nbytes;
    t->bytes = copy;
    return CN_OK;
}

cn_status cn_st_writer_metadata(cn_st_writer *w, const char *key, const char *value) {
    if (!w || !key || !value) return cn_fail(CN_ERR_ARG, "cn_st_writer_metadata: writer, key or value is NULL");
    char *v = dup_string(value);
    if (!v) return CN_ERR_NOMEM;
    for (int i = 0; i < w->meta_count; i++)
        if (strcmp(w->meta_keys[i], key) == 0) { free(w->meta_values[i]); w->meta_values[i] = v; return CN_OK; }
    int kcap = w->meta_cap;
    char *k = dup_string(key);
    if (!k || !grow((void **)&w->meta_keys, &kcap, w->meta_count + 1, sizeof(char *)) ||
        !grow((void **)&w->meta_values, &w->meta_cap, w->meta_count + 1, sizeof(char *))) {
        free(k); free(v);
        return CN_ERR_NOMEM;
    }
    w->meta_keys[w->meta_count] = k;
    w->meta_values[w->meta_count] = v;
    w->meta_count++;
    return CN_OK;
}

/* A JSON string literal: quotes, backslashes and control bytes escaped. */
static void json_string(cn_text *b, const char *s) {
    cn_text_put(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') { char e[2] = {'\\', (char)*p}; cn_text_put(b, e, 2); }
        else if (*p < 0x20) cn_text_printf(b, "\\u%04x", *p);
        else cn_text_put(b, (const char *)p, 1);
    }
    cn_text_put(b, "\"", 1);
}

/* name is "<something>.tmp.<digits>" (atomic writers) or "<something>.part.<digits>"
 * (downloads); *pid gets the digits. */
static bool temporary_of(const char *name, long *pid) {
    const char *digits = strrchr(name, '.');
    if (!digits || digits - name < 5) return false;
    digits++;
    bool tagged = (digits - name > 5 && !memcmp(digits - 5, ".tmp.", 5)) || (digits - name > 6 && !memcmp(digits - 6, ".part.", 6));
    if (!tagged || !*digits || strspn(digits, "0123456789") != strlen(digits) || strlen(digits) > 9) return false;
    *pid = strtol(digits, NULL, 10);
    return *pid > 0;
}

int cn_remove_stale_temporaries(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    int removed = 0;
    for (struct dirent *e; (e = readdir(d));) {
        long pid;
        if (!temporary_of(e->d_name, &pid) || pid == (long)getpid()) continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue;   /* alive, or not ours to judge */
        char path[4352];
        if (snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= (int)sizeof path) continue;
        struct stat sb;
        if (lstat(path, &sb) == 0 && S_ISREG(sb.st_mode) && unlink(path) == 0) removed++;
    }
    closedir(d);
    return removed;
}

cn_status cn_st_writer_save(cn_st_writer *w, const char *path) {
    if (!w || !path) return cn_fail(CN_ERR_ARG, "cn_st_writer_save: writer or path is NULL");
    /* Header: metadata first, then tensors in the order added, packed back to back. */
    cn_text b = {0};
    cn_text_puts(&b, "{");
    if (w->meta_count) {
        cn_text_puts(&b, "\"__metadata__\":{");
        for (int i = 0; i < w->meta_count; i++) {
            if (i) cn_text_puts(&b, ",");
            json_string(&b, w->meta_keys[i]);
            cn_text_puts(&b, ":");
            json_string(&b, w->meta_values[i]);
        }
        cn_text_puts(&b, "}");
    }
    size_t offset = 0;
    bool too_big = false;
    for (int i = 0; i < w->count; i++) {
        const cn_st_tensor *t = &w->tensors[i].info;
        if (i || w->meta_count) cn_text_puts(&b, ",");
        json_string(&b, t->name);
        cn_text_printf(&b, ":{\"dtype\":\"%s\",\"shape\":[", t->dtype);
        for (int d = 0; d < t->ndim; d++) cn_text_printf(&b, "%s%" PRId64, d ? "," : "", t->shape[d]);
        size_t end;
        if (!cn_add_ok(offset, t->nbytes, &end)) too_big = true;
        cn_text_printf(&b, "],\"data_offsets\":[%zu,%zu]}", offset, end);
        offset = end;
    }
    cn_text_puts(&b, "}");
    while (!b.failed && b.len % 8) cn_text_puts(&b, " "); /* pad so the data section is 8-byte aligned */
    if (b.failed || too_big || (uint64_t)b.len > CN_ST_MAX_HEADER) {
        free(b.p);
        return cn_fail(CN_ERR_NOMEM, "%s: safetensors header could not be built (out of memory or too large)", path);
    }

    cn_atomic_file af;
    cn_status st = cn_atomic_begin(&af, path);
    if (st) { free(b.p); return st; }
    unsigned char prefix[8];
    for (int i = 0; i < 8; i++) prefix[i] = (unsigned char)((uint64_t)b.len >> (8 * i));
    cn_atomic_write(&af, prefix, 8);
    cn_atomic_write(&af, b.p, b.len);
    for (int i = 0; i < w->count; i++) cn_atomic_write(&af, w->tensors[i].bytes, w->tensors[i].info.nbytes);
    free(b.p);
    return cn_atomic_commit(&af);
}
