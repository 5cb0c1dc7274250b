/* Text files written whole or not at all: the writer gets PATH.tmp.PID, and the commit
 * flushes, syncs and renames it over PATH, so a reader (or a sweep resumed after a crash)
 * never sees half a file. For the sweep's files; other writers may move onto it. */
#ifndef CN_CORE_REPLACE_FILE_H
#define CN_CORE_REPLACE_FILE_H
#include "convnet.h"
#include <stdio.h>

/* Opens tmp (tmp_size bytes, filled here) for writing; NULL with the error set. */
FILE *cn_replace_open(const char *path, char *tmp, size_t tmp_size);
/* Closes f and renames tmp over path; on failure removes tmp and sets the error. */
cn_status cn_replace_commit(FILE *f, const char *tmp, const char *path);

#endif
