/* Atomic file writes: every file convnet writes goes through here. The bytes
 * go to PATH.tmp.<pid> (created 0644), which is fsynced, renamed over PATH,
 * and then the directory is fsynced so that the rename itself is durable.
 * A reader sees the old file or the new one, never part of one; on any
 * failure the temporary file is removed and PATH is untouched.
 *
 *     cn_atomic_file af;
 *     if (cn_atomic_begin(&af, path)) return ...;      error message set
 *     cn_atomic_write(&af, bytes, n);                   any number of times
 *       (or, for text, cn_atomic_begin_text and fprintf)
 *     return cn_atomic_commit(&af);                     or cn_atomic_abort(&af)
 *
 * Not shared between threads. Messages name PATH and the temporary file.
 * From begin to commit/abort, cn_write_in_progress() is 1, so that a signal
 * handler can let the write finish instead of leaving PATH.tmp.<pid> behind. */
#ifndef CN_CORE_ATOMIC_FILE_H
#define CN_CORE_ATOMIC_FILE_H
#include "convnet.h"
#include <stddef.h>
#include <stdio.h>

typedef struct {
    char *path, *tmp;       /* owned copies */
    int fd;                 /* of tmp; -1 after commit/abort */
    FILE *stream;           /* over fd once cn_atomic_stream was called, else NULL */
    size_t written;         /* bytes written so far through cn_atomic_write */
    cn_status status;       /* first failure of cn_atomic_write, or CN_OK */
    int counted;            /* counted in cn_write_in_progress */
} cn_atomic_file;

/* Creates PATH.tmp.<pid>. On failure (CN_ERR_IO "cannot create temporary
 * file", CN_ERR_NOMEM) nothing is left to clean up. */
cn_status cn_atomic_begin(cn_atomic_file *af, const char *path);
/* Appends bytes; after a failure further writes are skipped and the first
 * failure is returned (again) by cn_atomic_commit. Not mixed with the stream. */
cn_status cn_atomic_write(cn_atomic_file *af, const void *data, size_t size);
/* A stdio stream over the temporary file, for text writers (owned by af:
 * do not fclose it). Its errors are caught by cn_atomic_commit. NULL (and the
 * error set) if the stream cannot be made; commit then fails too. */
FILE *cn_atomic_stream(cn_atomic_file *af);
/* For a text writer: cn_atomic_begin, then *f = cn_atomic_stream. On failure (the error set,
 * *f NULL) nothing is left to clean up; else write to *f and cn_atomic_commit. */
cn_status cn_atomic_begin_text(cn_atomic_file *af, const char *path, FILE **f);
/* flush, fsync, close, rename over PATH, fsync the directory (where the
 * filesystem can); frees af. On failure removes the temporary file. */
cn_status cn_atomic_commit(cn_atomic_file *af);
/* Removes the temporary file and frees af (after a failure elsewhere). */
void cn_atomic_abort(cn_atomic_file *af);

/* The whole sequence for a buffer that is ready. */
cn_status cn_write_file_atomic(const char *path, const void *data, size_t size);

/* 1 while any atomic write of this process runs, from any thread (between
 * begin and commit/abort). Async-signal-safe: a SIGINT/SIGTERM handler asks
 * it and, if 1, lets the write finish. */
int cn_write_in_progress(void);
/* Brackets other short-lived files named *.tmp.<pid> (a probe write) the same way. */
void cn_write_guard_enter(void);
void cn_write_guard_leave(void);

#endif
