/* Downloading the named datasets with libcurl, verified by the published MD5s. */
#ifndef CN_DATA_DOWNLOAD_H
#define CN_DATA_DOWNLOAD_H
#include "convnet.h"

/* Downloads the four .gz files of a named dataset ("mnist", "fashion-mnist",
 * "kmnist") into dir (created if needed; NULL: $CONVNET_DATA/<name>, else
 * ./data/<name>). Files already present with the published MD5 are kept.
 * Mirrors are tried in torchvision's order; the environment variable
 * CONVNET_MIRROR (a URL prefix; file:// works) replaces the list. Each file
 * goes to DIR/<file>.part.<pid>, its MD5 is checked, then it is renamed into
 * place; a bad checksum deletes the temporary file (CN_ERR_CHECKSUM,
 * "<url>: MD5 <got> does not match the published <expected>"). With
 * show_progress, a progress bar is drawn on stderr when stderr is a terminal,
 * otherwise one line per downloaded file; nothing else is ever printed.
 * Errors: CN_ERR_ARG (unknown name), CN_ERR_IO (directory), CN_ERR_NETWORK,
 * CN_ERR_CHECKSUM. */
cn_status cn_dataset_download(const char *name, const char *dir, int show_progress);
/* The same for some of the four files: bit i of `files` is the i-th of
 * cn_dataset_file_names (train images, train labels, test images, test labels).
 * An existing file under one of those names that is not a regular file is
 * CN_ERR_IO ("not a regular file"). */
cn_status cn_dataset_download_files(const char *name, const char *dir, int show_progress, unsigned files);

/* Downloads files[i] (verified against md5s[i], hex) into target (created if
 * needed), as cn_dataset_download does for its four files: from the first of
 * `mirrors` (URL prefixes, NULL-terminated; CONVNET_MIRROR replaces them)
 * that serves it with the right MD5. Files already there with the right MD5
 * are kept. by_hand completes the message when every mirror fails
 * ("cannot download F into D (errors); without network, <by_hand>"). */
cn_status cn_download_files(const char *const *files, const char *const *md5s, int count, const char *const *mirrors,
                            const char *target, int show_progress, const char *by_hand);

/* MD5 of a file as 32 lowercase hex digits into hex[33]. */
cn_status cn_file_md5(const char *path, char hex[33]);

#endif
