#include "data/idx.h"
#include "core/error.h"
#include "core/file_open.h"
#include "core/mem.h"
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <zlib.h>

/* Reads up to `len` bytes; returns the count read, or -1 with the error set. */
static long long read_full(gzFile f, const char *path, uint8_t *buf, size_t len) {
    size_t done = 0;
    while (done < len) {
        size_t want = len - done;
        if (want > (1u << 28)) want = 1u << 28;
        int got = gzread(f, buf + done, (unsigned)want);
        if (got < 0) {
            int zerr;
            const char *msg = gzerror(f, &zerr);
            cn_fail(CN_ERR_FORMAT, "%s: corrupt gzip data near decompressed offset %zu: %s",
                    path, done, msg ? msg : "unknown zlib error");
            return -1;
        }
        if (got == 0) break;
        done += (size_t)got;
    }
    /* A gzip stream cut short reads as a short count plus Z_BUF_ERROR. */
    int zerr = Z_OK;
    const char *msg = gzerror(f, &zerr);
    if (zerr != Z_OK && zerr != Z_STREAM_END) {
        cn_fail(CN_ERR_FORMAT, "%s: corrupt or truncated gzip data at decompressed offset %zu: %s",
                path, done, msg ? msg : "unknown zlib error");
        return -1;
    }
    return (long long)done;
}

static uint32_t be32(const uint8_t *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* Reads and validates an IDX stream from f (opened by the caller, closed here);
 * `path` names it in messages. */
static cn_status read_idx_stream(gzFile f, const char *path, uint32_t magic, int ndims, cn_idx *out) {
    const char *kind = ndims == 3 ? "image" : "label";
    gzbuffer(f, 1 << 17);
    cn_status st = CN_OK;
    uint8_t header[16];
    size_t header_len = 4 + 4 * (size_t)ndims;
    const char *where = "";
    long long got = read_full(f, path, header, header_len);
    if (got < 0) { st = CN_ERR_FORMAT; goto done; }
    where = gzdirect(f) ? "" : " (decompressed)";
    if ((size_t)got < header_len) {
        st = cn_fail(CN_ERR_FORMAT, "%s: truncated header: found %lld bytes%s, expected the %zu-byte IDX %s header",
                     path, got, where, header_len, kind);
        goto done;
    }
    uint32_t found_magic = be32(header);
    if (found_magic != magic) {
        st = cn_fail(CN_ERR_FORMAT, "%s: offset 0: magic 0x%08x, expected 0x%08x (IDX %s file%s)",
                     path, found_magic, magic, kind,
                     found_magic == CN_IDX_MAGIC_IMAGES ? "; this is an image file"
                     : found_magic == CN_IDX_MAGIC_LABELS ? "; this is a label file" : "");
        goto done;
    }
    uint32_t dims[3] = {1, 1, 1};
    for (int d = 0; d < ndims; d++) dims[d] = be32(header + 4 + 4 * d);
    if (dims[0] > CN_IDX_MAX_COUNT) {
        st = cn_fail(CN_ERR_FORMAT, "%s: offset 4: item count %u, expected at most %d", path, dims[0], CN_IDX_MAX_COUNT);
        goto done;
    }
    for (int d = 1; d < ndims; d++) {
        if (dims[d] == 0 || dims[d] > CN_IDX_MAX_SIDE) {
            st = cn_fail(CN_ERR_FORMAT, "%s: offset %d: %s %u, expected 1..%d", path, 4 + 4 * d,
                         d == 1 ? "rows" : "cols", dims[d], CN_IDX_MAX_SIDE);
            goto done;
        }
    }
    size_t item, total;
    if (!cn_mul_ok(dims[1], dims[2], &item) || !cn_mul_ok(item, dims[0], &total) || total > CN_MAX_ALLOC) {
        st = cn_fail(CN_ERR_FORMAT, "%s: declared size %u x %u x %u exceeds the %zu-byte limit",
                     path, dims[0], dims[1], dims[2], CN_MAX_ALLOC);
        goto done;
    }
    /* The buffer grows as data arrives (16 MiB, then doubling), so a short file
     * that declares 2 GiB costs what it holds, not what it claims. */
    size_t cap = total < ((size_t)16 << 20) ? total : ((size_t)16 << 20), have = 0;
    out->data = cn_calloc(cap ? cap : 1, 1);
    if (!out->data) { st = CN_ERR_NOMEM; cn_error_prefix("%s", path); goto done; }
    for (;;) {
        got = read_full(f, path, out->data + have, cap - have);
        if (got < 0) { st = CN_ERR_FORMAT; goto done; }
        have += (size_t)got;
        if (have < cap || cap == total) break;
        size_t grown = cap > total / 2 ? total : cap * 2;
        uint8_t *bigger = realloc(out->data, grown);
        if (!bigger) { st = cn_fail(CN_ERR_NOMEM, "%s: out of memory reading %zu bytes", path, total); goto done; }
        out->data = bigger;
        cap = grown;
    }
    got = (long long)have;
    if ((size_t)got < total) {
        st = cn_fail(CN_ERR_FORMAT, "%s: truncated at offset %zu%s: found %lld data bytes, expected %zu "
                     "(%u %ss of %ux%u after the %zu-byte header)",
                     path, header_len + (size_t)got, where, got, total, dims[0], kind, dims[1], dims[2], header_len);
        goto done;
    }
    /* Anything after the declared data means the header lies about the size. */
    uint8_t extra[4096];
    got = read_full(f, path, extra, sizeof extra);
    if (got < 0) { st = CN_ERR_FORMAT; goto done; }
    if (got > 0) {
        long long more = got;
        while (got == (long long)sizeof extra && more < (1ll << 40)) {
            got = read_full(f, path, extra, sizeof extra);
            if (got < 0) { st = CN_ERR_FORMAT; goto done; }
            more += got;
        }
        st = cn_fail(CN_ERR_FORMAT, "%s: %lld bytes of trailing data at offset %zu%s: expected the file to end "
                     "after %u %ss of %ux%u", path, more, header_len + total, where, dims[0], kind, dims[1], dims[2]);
        goto done;
    }
    out->count = (int)dims[0];
    out->rows = (int)dims[1];
    out->cols = (int)dims[2];
done:
    gzclose(f);
    if (st != CN_OK) cn_idx_free(out);
    return st;
}

static cn_status read_idx(const char *path, uint32_t magic, int ndims, cn_idx *out) {
    memset(out, 0, sizeof *out);
    int fd;
    cn_status st = cn_open_regular(path, "an IDX file (raw or .gz)", &fd);
    if (st) return st;
    errno = 0;
    gzFile f = gzdopen(fd, "rb");
    if (!f) { close(fd); return cn_fail(CN_ERR_IO, "%s: cannot open: %s", path, strerror(errno ? errno : ENOMEM)); }
    return read_idx_stream(f, path, magic, ndims, out);
}

/* The bytes go through an anonymous in-memory file so that exactly the same
 * zlib stream code (gzip detection, member handling) runs as for a real file. */
cn_status cn_idx_parse_memory(const void *data, size_t size, const char *name, uint32_t magic, cn_idx *out) {
    memset(out, 0, sizeof *out);
    if (!name) name = "<memory>";
    if (magic != CN_IDX_MAGIC_IMAGES && magic != CN_IDX_MAGIC_LABELS)
        return cn_fail(CN_ERR_ARG, "%s: cn_idx_parse_memory: magic 0x%08x is neither the image nor the label magic", name, magic);
    if (!data && size) return cn_fail(CN_ERR_ARG, "%s: data is NULL", name);
    int fd = memfd_create("convnet-idx", MFD_CLOEXEC);
    if (fd < 0) return cn_fail(CN_ERR_IO, "%s: cannot create an in-memory file: %s", name, strerror(errno));
    const uint8_t *p = data;
    for (size_t done = 0; done < size;) {
        ssize_t k = write(fd, p + done, size - done);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) {
            int e = errno;
            close(fd);
            return cn_fail(CN_ERR_IO, "%s: cannot fill an in-memory file: %s", name, strerror(k < 0 ? e : ENOSPC));
        }
        done += (size_t)k;
    }
    gzFile f = lseek(fd, 0, SEEK_SET) == 0 ? gzdopen(fd, "rb") : NULL;
    if (!f) {
        close(fd);
        return cn_fail(CN_ERR_IO, "%s: cannot read an in-memory file", name);
    }
    return read_idx_stream(f, name, magic, magic == CN_IDX_MAGIC_IMAGES ? 3 : 1, out);
}

cn_status cn_idx_read_images(const char *path, cn_idx *out) {
    return read_idx(path, CN_IDX_MAGIC_IMAGES, 3, out);
}

cn_status cn_idx_read_labels(const char *path, cn_idx *out) {
    return read_idx(path, CN_IDX_MAGIC_LABELS, 1, out);
}

void cn_idx_free(cn_idx *idx) {
    if (!idx) return;
    free(idx->data);
    memset(idx, 0, sizeof *idx);
}
