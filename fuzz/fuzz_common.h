/* Shared helpers for the libFuzzer targets in fuzz/fuzz_*.c.
 *
 * Besides "no crash, no leak, no undefined behaviour" (ASan + UBSan), every
 * target checks the error contract of include/convnet.h on each rejected input:
 * a non-empty message, on one line (printable bytes and tabs), that starts with the name the
 * input was given (so a user can tell which file was wrong). A violation
 * aborts, which libFuzzer reports as a crash with the input saved. */
#ifndef CONVNET_FUZZ_COMMON_H
#define CONVNET_FUZZ_COMMON_H
#include "convnet.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Reading results into this keeps the compiler from skipping the reads. */
static volatile unsigned fuzz_sink;
static volatile float fuzz_sink_f;

/* Aborts with a message when the last error breaks the one-line contract. */
static inline void fuzz_check_error(cn_status st, const char *name) {
    if (st == CN_OK) return;
    const char *msg = cn_last_error();
    if (!msg || !*msg) {
        fprintf(stderr, "fuzz: status %d (%s) with an empty error message\n", (int)st, cn_status_name(st));
        abort();
    }
    for (const unsigned char *p = (const unsigned char *)msg; *p; p++)
        if ((*p < 0x20 && *p != '\t') || *p == 0x7f) { /* a tab stays on the line */
            fprintf(stderr, "fuzz: error message has control byte 0x%02x at %zu: %s\n", *p,
                    (size_t)(p - (const unsigned char *)msg), msg);
            abort();
        }
    if (name && strncmp(msg, name, strlen(name)) != 0) {
        fprintf(stderr, "fuzz: error message does not start with the input name '%s': %s\n", name, msg);
        abort();
    }
}

/* A NUL-terminated copy of the input (free() it). */
static inline char *fuzz_strdup(const uint8_t *data, size_t size) {
    char *s = malloc(size + 1);
    if (!s) abort();
    if (size) memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

/* An anonymous in-memory regular file holding the input, so path-based entry
 * points can be fuzzed; *path gets "/proc/self/fd/N". Returns the fd (close it). */
static inline int fuzz_memfile(const uint8_t *data, size_t size, char path[64]) {
    int fd = memfd_create("fuzz", MFD_CLOEXEC);
    if (fd < 0) { perror("memfd_create"); abort(); }
    for (size_t done = 0; done < size;) {
        ssize_t k = write(fd, data + done, size - done);
        if (k <= 0) { perror("write"); abort(); }
        done += (size_t)k;
    }
    snprintf(path, 64, "/proc/self/fd/%d", fd);
    return fd;
}

#endif
