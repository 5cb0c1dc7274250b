/* Writing a whole file so that readers never see half of it. */
#ifndef CN_CORE_FILE_H
#define CN_CORE_FILE_H
#include "convnet.h"
#include <stddef.h>

/* Writes `size` bytes to path.tmp.<pid>, fsyncs, and renames it over `path`;
 * on any failure the temporary file is removed, `path` is untouched and the
 * error names the file and the system's reason. */
cn_status cn_write_file_atomic(const char *path, const void *data, size_t size);

/* Creates directory `dir` (mode 0755) unless it already exists as a directory. */
cn_status cn_make_dir(const char *dir);

#endif
