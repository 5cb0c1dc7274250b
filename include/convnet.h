/* convnet — compact convolutional networks for 28x28 grayscale images, in C.
 *
 * Public API. Every function that can fail returns a cn_status; on failure,
 * cn_last_error() gives one human-readable line saying what failed, where, and
 * what was expected. The library never exits the process and never prints,
 * except where a function says so (progress output of cn_train).
 *
 * Handles are opaque. Shapes are NCHW float32 throughout. */
#ifndef CONVNET_H
#define CONVNET_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    CN_OK = 0,
    CN_ERR_ARG,         /* invalid argument or option value */
    CN_ERR_IO,          /* file could not be opened, read or written */
    CN_ERR_FORMAT,      /* malformed file contents (bad magic, truncated, ...) */
    CN_ERR_SPEC,        /* model spec text is invalid */
    CN_ERR_SHAPE,       /* shapes do not fit together */
    CN_ERR_NOMEM,       /* allocation failed or exceeded a sane limit */
    CN_ERR_NUMERIC,     /* NaN or Inf where finite numbers were required */
    CN_ERR_UNSUPPORTED, /* valid input that convnet does not handle */
    CN_ERR_NETWORK,     /* download failed */
    CN_ERR_CHECKSUM,    /* downloaded or stored file failed verification */
    CN_ERR_INTERRUPTED  /* stopped by a signal; state was saved */
} cn_status;

/* The last error message of the calling thread ("" if none). */
const char *cn_last_error(void);
/* A short name for a status code, e.g. "format error". */
const char *cn_status_name(cn_status status);

typedef struct cn_model cn_model;

/* Builds a model from spec text (see README "Model spec format").
 * `source_name` names the text in error messages (a file name or preset name).
 * Parameters are initialised as PyTorch does, from `seed`. */
cn_status cn_model_from_spec(const char *spec_text, const char *source_name,
                             uint64_t seed, cn_model **out);
/* Builds a preset by name or alias (e.g. "seed001", "tinynet"), or a spec file path. */
cn_status cn_model_load_spec(const char *name_or_path, uint64_t seed, cn_model **out);
void cn_model_free(cn_model *model);

/* Number of trainable parameters. */
size_t cn_model_param_count(const cn_model *model);
/* Forward multiply-adds per image. */
uint64_t cn_model_macs(const cn_model *model);
/* Number of output classes (the last layer's feature count). */
int cn_model_num_classes(const cn_model *model);

/* Presets: index 0..cn_preset_count()-1. */
int cn_preset_count(void);
const char *cn_preset_name(int index);
const char *cn_preset_alias(int index);
const char *cn_preset_description(int index);
const char *cn_preset_spec(int index);
/* Spec text of a preset by name or alias, or NULL. */
const char *cn_preset_find(const char *name_or_alias);

#ifdef __cplusplus
}
#endif
#endif
