/* Directories for the files convnet writes (the files themselves: core/atomic_file.h). */
#ifndef CN_CORE_FILE_H
#define CN_CORE_FILE_H
#include "convnet.h"
#include <stddef.h>

/* Creates directory `dir` (mode 0755) unless it already exists as a directory. */
cn_status cn_make_dir(const char *dir);

#endif
