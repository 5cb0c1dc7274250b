/* The decoded-image cache. See image_cache.h. */
#include "data/image_cache.h"
#include "core/atomic_file.h"
#include "core/mem.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char magic[8] = {'C', 'N', 'I', 'M', 'G', 'C', '0', '1'};

uint64_t cn_cache_key_add(uint64_t hash, const void *data, size_t size) {
    const uint8_t *p = data;
    for (size_t i = 0; i < size; i++) { hash ^= p[i]; hash *= 0x100000001b3ull; }
    return hash;
}

cn_file_stamp cn_file_stamp_of(const struct stat *sb) {
    return (cn_file_stamp){.size = (long long)sb->st_size,
                           .mtime_ns = (long long)sb->st_mtim.tv_sec * 1000000000ll + sb->st_mtim.tv_nsec};
}

uint64_t cn_cache_key_add_file_stamp(uint64_t hash, const char *path, cn_file_stamp stamp) {
    hash = cn_cache_key_add(hash, path, strlen(path) + 1);
    hash = cn_cache_key_add(hash, &stamp.size, sizeof stamp.size);
    return cn_cache_key_add(hash, &stamp.mtime_ns, sizeof stamp.mtime_ns);
}

static uint32_t get_u32(const uint8_t *p) { return p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static void put_u32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i)); }

#define HEADER_BYTES (8 + 8 + 5 * 4)

int cn_image_cache_read(const char *path, uint64_t key, cn_split *out, int *skipped) {
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    uint8_t h[HEADER_BYTES];
    struct stat sb;
    int hit = 0;
    if (fstat(fileno(f), &sb) == 0 && S_ISREG(sb.st_mode) && fread(h, 1, sizeof h, f) == sizeof h &&
        !memcmp(h, magic, 8)) {
        uint64_t k = (uint64_t)get_u32(h + 8) | (uint64_t)get_u32(h + 12) << 32;
        uint32_t count = get_u32(h + 16), channels = get_u32(h + 20), rows = get_u32(h + 24), cols = get_u32(h + 28);
        size_t image = (size_t)channels * rows * cols, labels = (size_t)count * 2, images;
        if (k == key && count >= 1 && count <= 100000000 && channels >= 1 && channels <= CN_MAX_CHANNELS &&
            rows >= 1 && rows <= CN_MAX_SIDE && cols >= 1 && cols <= CN_MAX_SIDE && cn_mul_ok(image, count, &images) &&
            (uint64_t)sb.st_size == HEADER_BYTES + labels + images) {
            uint8_t *raw = cn_calloc(count, 2);
            out->labels = cn_calloc(count, sizeof *out->labels);
            out->images = cn_calloc(images, 1);
            if (raw && out->labels && out->images && fread(raw, 1, labels, f) == labels &&
                fread(out->images, 1, images, f) == images) {
                for (uint32_t i = 0; i < count; i++) out->labels[i] = (uint16_t)(raw[2 * i] | raw[2 * i + 1] << 8);
                out->count = (int)count;
                out->channels = (int)channels;
                out->rows = (int)rows;
                out->cols = (int)cols;
                *skipped = (int)get_u32(h + 32);
                hit = 1;
            }
            free(raw);
        }
    }
    fclose(f);
    if (!hit) cn_split_free(out);
    return hit;
}

int cn_image_cache_write(const char *path, uint64_t key, const cn_split *s, int skipped) {
    cn_atomic_file af;
    if (cn_atomic_begin(&af, path)) return 0;
    uint8_t h[HEADER_BYTES];
    memcpy(h, magic, 8);
    put_u32(h + 8, (uint32_t)key);
    put_u32(h + 12, (uint32_t)(key >> 32));
    put_u32(h + 16, (uint32_t)s->count);
    put_u32(h + 20, (uint32_t)s->channels);
    put_u32(h + 24, (uint32_t)s->rows);
    put_u32(h + 28, (uint32_t)s->cols);
    put_u32(h + 32, (uint32_t)skipped);
    uint8_t *raw = cn_calloc((size_t)s->count, 2);
    if (!raw) { cn_atomic_abort(&af); return 0; }
    for (int i = 0; i < s->count; i++) { raw[2 * i] = (uint8_t)s->labels[i]; raw[2 * i + 1] = (uint8_t)(s->labels[i] >> 8); }
    cn_atomic_write(&af, h, sizeof h);
    cn_atomic_write(&af, raw, 2 * (size_t)s->count);
    cn_atomic_write(&af, s->images, cn_split_image_size(s) * (size_t)s->count);
    free(raw);
    return cn_atomic_commit(&af) == CN_OK;
}
