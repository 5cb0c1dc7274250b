/* Downloading the named datasets with libcurl, verified by the published MD5s. */
#ifndef CN_DATA_DOWNLOAD_H
#define CN_DATA_DOWNLOAD_H
#include "convnet.h"

/* Downloads the four .gz files of a named dataset ("mnist", "fashion-mnist",
 * "kmnist") into dir (created if needed; NULL: $CONVNET_DATA/<name>, else
 * ./data/<name>). Files already present with the published MD5 are kept.
 * Mirrors are tried in torchvision's order; the environment variable
 * CONVNET_MIRROR (a URL prefix; file:// works) replaces the list. Each file
 * is written atomically (core/atomic_file.h: DIR/<file>.tmp.<pid>, fsync,
 * rename, fsync of DIR) once its MD5 is checked; a bad checksum deletes the
 * temporary file (CN_ERR_CHECKSUM, "<url>: MD5 <got> does not match the
 * published <expected>"). With show_progress, progress lines go to the note
 * handler (CN_NOTE_PROGRESS, at most 10 a second, then the finished bar and
 * an empty one ending the display) and one CN_NOTE_INFO line per downloaded
 * file ("downloaded <file> (<size>) from <url>"); nothing is printed.
 * Errors: CN_ERR_ARG (unknown name), CN_ERR_IO (directory), CN_ERR_NETWORK,
 * CN_ERR_CHECKSUM. */
cn_status cn_dataset_download(const char *name, const char *dir, int show_progress);

/* MD5 of a file as 32 lowercase hex digits into hex[33]. */
cn_status cn_file_md5(const char *path, char hex[33]);

#endif
