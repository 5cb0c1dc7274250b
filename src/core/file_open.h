/* Opening input files without hanging: a FIFO would block open() until a
 * writer appears, and a device (/dev/zero, /dev/urandom) never ends. Every
 * file convnet reads goes through here: opened with O_NONBLOCK, checked with
 * fstat to be a regular file, then switched back to blocking reads. */
#ifndef CN_CORE_FILE_OPEN_H
#define CN_CORE_FILE_OPEN_H
#include "convnet.h"
#include <stdio.h>

/* Opens `path` read-only; *fd gets the descriptor (close it). Not a regular
 * file: CN_ERR_IO, "PATH: not a regular file (a FIFO); expected WHAT"
 * (`what`, e.g. "an IDX file"; NULL: "a file"). */
cn_status cn_open_regular(const char *path, const char *what, int *fd);
/* The same as a stdio stream ("rb"); fclose it. */
cn_status cn_fopen_regular(const char *path, const char *what, FILE **out);
/* CN_OK when `path` names a regular file (following symlinks), else the same
 * error; a missing path is CN_ERR_IO "PATH: cannot open: No such file ...". */
cn_status cn_check_regular(const char *path, const char *what);

#endif
