/* Export of a model as one self-contained web page: DIR/index.html holds the
 * WebAssembly runtime (built with the project from web_wasm.c, web_model.c and
 * preprocess.c, and embedded in libconvnet, so exporting needs no compiler),
 * the model's weights as a web_model.h blob, the page (web_page.html: a canvas
 * to draw on, the top-3 probabilities as bars) and `count` test digits with
 * the classes convnet predicts for them, which the page's #selftest checks.
 * The page fetches nothing and opens from file://. */
#ifndef CN_IO_EXPORT_WEB_H
#define CN_IO_EXPORT_WEB_H
#include "convnet.h"
#include "checkpoint.h"
#include <stddef.h>
#include <stdint.h>

#define CN_WEB_TARGET "web (wasm32)"
/* The apt-get line for the toolchain the runtime is built with. */
#define CN_WEB_TOOLCHAIN_PACKAGES "clang lld wasi-libc libclang-rt-dev-wasm32"

/* cn_export_web_stats: convnet.h */

/* 1 when the build embedded the WebAssembly runtime (clang, lld and wasi-libc were there). */
int cn_export_web_available(void);

/* CN_ERR_UNSUPPORTED when the build has no WebAssembly runtime (the message has
 * the apt-get line), when the model's input is not 1x28x28, or naming the layer
 * (index, name, kind) and the target when a layer cannot run there. */
cn_status cn_export_web_check(const cn_model *m);

/* The model's blob (web_model.h) in *data (malloc'd, the caller frees it) and
 * *size; fails as cn_export_web_check. */
cn_status cn_export_web_blob(const cn_model *m, float mean, float std, void **data, size_t *size);

/* Writes DIR/index.html (DIR is created if missing; the file atomically).
 * digits: count (1..100) test images of 28*28 bytes, labels: their labels,
 * indices: their places in the test set (NULL: 0..count-1), shown on the page.
 * Runs convnet's forward on them (eval mode) for the classes the page embeds,
 * and the host build of the web runtime on the same blob, which must agree on
 * every digit (CN_ERR_NUMERIC otherwise: the page would fail its self-test).
 * CN_ERR_UNSUPPORTED as cn_export_web_check. */
cn_status cn_export_web(cn_model *m, const char *dir, const cn_checkpoint_info *info, const uint8_t *digits,
                        const uint8_t *labels, const int *indices, int count, cn_export_web_stats *stats);

#endif
