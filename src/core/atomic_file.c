#include "core/atomic_file.h"
#include "core/error.h"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Atomic files being written, by any thread (a signal handler reads it). */
static volatile sig_atomic_t writes_running;

int cn_write_in_progress(void) { return writes_running > 0; }
void cn_write_guard_enter(void) { __atomic_add_fetch(&writes_running, 1, __ATOMIC_SEQ_CST); }
void cn_write_guard_leave(void) { __atomic_sub_fetch(&writes_running, 1, __ATOMIC_SEQ_CST); }

static char *dup_text(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    return d ? memcpy(d, s, n) : NULL;
}

static void release(cn_atomic_file *af) {
    if (af->counted) cn_write_guard_leave();
    af->counted = 0;
    free(af->path);
    free(af->tmp);
    af->path = af->tmp = NULL;
    af->fd = -1;
    af->stream = NULL;
}

cn_status cn_atomic_begin(cn_atomic_file *af, const char *path) {
    memset(af, 0, sizeof *af);
    af->fd = -1;
    size_t plen = strlen(path);
    cn_write_guard_enter();   /* before the temporary file exists */
    af->counted = 1;
    af->path = dup_text(path);
    af->tmp = malloc(plen + 32);
    if (!af->path || !af->tmp) { release(af); return cn_fail(CN_ERR_NOMEM, "%s: out of memory", path); }
    snprintf(af->tmp, plen + 32, "%s.tmp.%ld", path, (long)getpid());
    af->fd = open(af->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (af->fd < 0) {
        cn_status st = cn_fail(CN_ERR_IO, "%s: cannot create temporary file %s: %s", path, af->tmp, strerror(errno));
        release(af);
        return st;
    }
    return CN_OK;
}

cn_status cn_atomic_write(cn_atomic_file *af, const void *data, size_t size) {
    if (af->status) return af->status;
    const unsigned char *bytes = data;
    size_t done = 0;
    while (done < size) {
        ssize_t n = write(af->fd, bytes + done, size - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0)
            return af->status = cn_fail(CN_ERR_IO, "%s: offset %zu: write failed: %s", af->tmp, af->written + done,
                                        n < 0 ? strerror(errno) : "no progress");
        done += (size_t)n;
    }
    af->written += size;
    return CN_OK;
}

FILE *cn_atomic_stream(cn_atomic_file *af) {
    if (af->stream || af->status) return af->stream;
    af->stream = fdopen(af->fd, "w");
    if (!af->stream) af->status = cn_fail(CN_ERR_IO, "%s: cannot open a stream on it: %s", af->tmp, strerror(errno));
    return af->stream;
}

cn_status cn_atomic_begin_text(cn_atomic_file *af, const char *path, FILE **f) {
    *f = NULL;
    cn_status st = cn_atomic_begin(af, path);
    if (st) return st;
    *f = cn_atomic_stream(af);
    if (*f) return CN_OK;
    st = af->status;
    cn_atomic_abort(af);
    return st;
}

/* Closes the temporary file (through its stream, if one was made); 0 on success. */
static int close_tmp(cn_atomic_file *af) {
    int rc = af->stream ? fclose(af->stream) : close(af->fd);
    af->stream = NULL;
    af->fd = -1;
    return rc;
}

void cn_atomic_abort(cn_atomic_file *af) {
    if (af->fd >= 0) close_tmp(af);
    if (af->tmp) unlink(af->tmp);
    release(af);
}

/* Makes a finished rename durable. Filesystems that cannot fsync a directory
 * (EINVAL, EROFS) are fine: the file itself is already on disk. */
static cn_status sync_directory(const char *path) {
    char *dir = dup_text(path);
    if (!dir) return CN_OK;
    char *slash = strrchr(dir, '/');
    const char *d = slash ? (slash == dir ? "/" : (*slash = '\0', dir)) : ".";
    cn_status st = CN_OK;
    int dfd = open(d, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        if (fsync(dfd) != 0 && errno != EINVAL && errno != EROFS)
            st = cn_fail(CN_ERR_IO, "%s: written, but fsync of directory %s failed: %s", path, d, strerror(errno));
        close(dfd);
    }
    free(dir);
    return st;
}

cn_status cn_atomic_commit(cn_atomic_file *af) {
    cn_status st = af->status;
    if (st == CN_OK && af->stream && (fflush(af->stream) != 0 || ferror(af->stream)))
        st = cn_fail(CN_ERR_IO, "%s: write failed: %s", af->tmp, strerror(errno));
    if (st == CN_OK && fsync(af->fd) != 0) st = cn_fail(CN_ERR_IO, "%s: fsync failed: %s", af->tmp, strerror(errno));
    if (close_tmp(af) != 0 && st == CN_OK) st = cn_fail(CN_ERR_IO, "%s: close failed: %s", af->tmp, strerror(errno));
    if (st == CN_OK && rename(af->tmp, af->path) != 0)
        st = cn_fail(CN_ERR_IO, "%s: cannot rename %s over it: %s", af->path, af->tmp, strerror(errno));
    if (st != CN_OK) {
        cn_atomic_abort(af);
        return st;
    }
    st = sync_directory(af->path);
    release(af);
    return st;
}

cn_status cn_write_file_atomic(const char *path, const void *data, size_t size) {
    cn_atomic_file af;
    cn_status st = cn_atomic_begin(&af, path);
    if (st) return st;
    cn_atomic_write(&af, data, size);
    return cn_atomic_commit(&af);
}
