/* convnet — compact convolutional networks for small images, in C.
 *
 * The public API of libconvnet: build a model (a preset, spec text, a checkpoint
 * or an ONNX file), train it on a dataset with a recipe, evaluate it, classify
 * images, save it and export it (ONNX, C source, a web page). The `convnet` CLI
 * is written against this header alone.
 *
 * Contracts that hold throughout:
 * - Errors: every function that can fail returns a cn_status; on failure
 *   cn_last_error() gives one human-readable line (what failed, where, what was
 *   expected), kept per thread until the next failure of that thread. Output
 *   arguments are left untouched, zeroed or NULL on failure, as each says.
 * - The library never exits the process (only an internal-error assertion,
 *   a bug, aborts with one line) and never prints: messages for a person
 *   (progress, warnings, the training log) go to the note handler
 *   (cn_set_note_handler); none is set by default.
 * - Ownership: a handle returned through `**out` belongs to the caller and is
 *   released with the matching *_free (which accepts NULL). Strings returned
 *   as `const char *` belong to the library and live as long as their handle
 *   (or forever, for preset tables). Arrays passed in are not retained.
 * - Threads: distinct handles may be used from distinct threads at once. A
 *   model is read-only while it is evaluated or predicted with, so several
 *   sessions (cn_session) and evaluations may share one model; training and
 *   loading weights into a model need it alone. A session is used by one
 *   thread at a time. The library runs its own OpenMP worker threads.
 * - Shapes: images are C x H x W, channel planes of row-major pixels (NCHW for
 *   batches); float inputs are normalised: (pixel / 255 - mean[c]) / std[c].
 *   Scores and probabilities are (n, classes) row-major. */
#ifndef CONVNET_H
#define CONVNET_H

#ifndef __wasm__
#include <signal.h>
#endif
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

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

/* ---- Notes: the library's messages for a person ---------------------------
 * The library writes nothing to stdout or stderr. Progress, warnings and the
 * training log are handed, one message at a time, to the handler set here
 * (none by default: messages are dropped). */
typedef enum {
    CN_NOTE_INFO,     /* a log line for the standard output (e.g. cn_train's per-epoch
                         lines); text without the final newline (it may hold inner ones) */
    CN_NOTE_WARNING,  /* a line for the error stream; text without the final newline */
    CN_NOTE_PROGRESS  /* terminal bytes redrawing a status line in place ("\r\033[K..."),
                         sent only after cn_set_progress_columns; write them as they are */
} cn_note_kind;
/* Called from the thread (or forked process) that produced the message; it must not
 * call back into the library. `text` is valid during the call only. */
typedef void (*cn_note_handler)(cn_note_kind kind, const char *text, void *user);
/* Sets the process's handler (NULL: drop messages). Set it once, before other calls;
 * it is not synchronised with notes being delivered on other threads. */
void cn_set_note_handler(cn_note_handler fn, void *user);
/* Progress bars (training batches, downloads) as CN_NOTE_PROGRESS notes, drawn for a
 * terminal `columns` wide (lines are cut to columns - 1). 0, the default: no progress
 * notes (a download then says each finished file in a CN_NOTE_WARNING line). Set it
 * once, like the handler: e.g. the terminal's width when the error stream is one. */
void cn_set_progress_columns(int columns);

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

/* ---- Limits ------------------------------------------------------------- */
#define CN_MAX_CLASSES 1000        /* output classes of a model or dataset */
#define CN_MAX_CHANNELS 4          /* input channels */
#define CN_MAX_SIDE 256            /* image rows and cols of the image formats */
#define CN_CLASS_NAME_MAX 32       /* bytes of a class name, with the terminating NUL */
#define CN_DIGIT_SIDE 28           /* the side of an MNIST-style digit input */

/* ---- Models: queries, loading, saving ---------------------------------- */

/* What a weights file says besides the weights: how the model's input was
 * normalised, on which dataset it was trained and what its classes are called.
 * (About 32 kB: keep it off small stacks.) */
typedef struct {
    int epoch;                  /* completed training epochs (0 for ONNX files) */
    char dataset[32];           /* "mnist", "fashion-mnist", "folder", ... */
    float mean[CN_MAX_CHANNELS], std[CN_MAX_CHANNELS];  /* per input channel */
    int num_classes;            /* class names held (the model's outputs, or 0) */
    char class_names[CN_MAX_CLASSES][CN_CLASS_NAME_MAX];
} cn_model_info;

/* The input shape C x H x W of one image. */
void cn_model_input_shape(const cn_model *model, int *channels, int *rows, int *cols);
/* 1 if the model's scores are log-probabilities (it ends in log_softmax), 0 if logits. */
int cn_model_outputs_log_probabilities(const cn_model *model);
/* The number of batchnorm2d layers, and of those that directly follow a conv2d
 * (`foldable`, may be NULL: what ONNX export with fold_bn folds). */
int cn_model_batchnorm_count(const cn_model *model, int *foldable);
/* The name the model was built under: the preset's name or the `source_name` / path
 * it came from (names the default output folder runs/<name> and plot titles). */
const char *cn_model_name(const cn_model *model);
/* Writes the layer table (torchsummary's layout) and the forward MACs to `out`. */
cn_status cn_summary_write(const cn_model *model, FILE *out);

/* Loads trained weights: a convnet checkpoint (.safetensors) or an ONNX model
 * (.onnx, by its extension, case-insensitive). *info is filled in (never NULL).
 * For ONNX, the file's metadata (as cn_export_onnx writes it) gives the
 * normalisation, dataset and class names where present; otherwise `dataset`
 * (NULL: the file's "dataset" metadata, else "mnist") names them, and classes
 * without names are numbered "0", "1", ... *norm_known (may be NULL) is set to
 * 0 only when neither the file nor a known dataset gives the normalisation (an
 * ONNX file without metadata, dataset "idx"): use the data's own mean/std. */
cn_status cn_model_load(const char *path, const char *dataset, cn_model **out, cn_model_info *info, int *norm_known);
/* 1 if `path` names an ONNX file (ends in .onnx, case-insensitive). */
int cn_path_is_onnx(const char *path);
/* Writes a checkpoint (weights and *info, no training state) atomically. */
cn_status cn_model_save(const char *path, const cn_model *model, const cn_model_info *info);

/* ---- Datasets ------------------------------------------------------------ */

/* How to find and read a dataset; every field may be left 0/NULL. */
typedef struct {
    const char *name;           /* "mnist" (NULL), "fashion-mnist", "kmnist", "idx", "folder", "csv", "cifar10" */
    const char *dir;            /* NULL: $CONVNET_DATA/<name>, then ./data/<name> (and a few more; README) */
    int allow_download;         /* fetch missing files of the named datasets */
    int channels, rows, cols;   /* the shape the model expects (0: any); csv: the images' shape (default 1x28x28) */
    int resize_rows, resize_cols; /* folder: resize every image (0: images must have the expected size) */
    int grayscale;              /* folder: RGB -> 1 channel with PIL's weights */
    int skip_bad;               /* folder: leave out (and count) images that do not decode */
    int norm_channels;          /* > 0: mean/std below are given (1 value: every channel), not computed */
    float mean[CN_MAX_CHANNELS], std[CN_MAX_CHANNELS];
    int threads;                /* decoding threads (0: OpenMP's default) */
    int parts;                  /* CN_DATASET_TRAIN | CN_DATASET_TEST (0: both); MNIST family and idx */
} cn_data_options;
#define CN_DATASET_TRAIN 1
#define CN_DATASET_TEST 2

/* A loaded dataset: train and test splits of uint8 images and their labels,
 * class names, and the normalisation (published, given, or computed from the
 * training images). Read-only once opened. */
typedef struct cn_data cn_data;
typedef enum { CN_SPLIT_TRAIN, CN_SPLIT_TEST } cn_split_id;

/* Finds (downloading if allowed) and reads a dataset. Errors name the files
 * and the directories searched. */
cn_status cn_data_open(const cn_data_options *options, cn_data **out);
void cn_data_free(cn_data *data);
const char *cn_data_name(const cn_data *data);     /* "mnist", "folder", ... */
const char *cn_data_dir(const cn_data *data);      /* where the files were found */
int cn_data_num_classes(const cn_data *data);
const char *cn_data_class_name(const cn_data *data, int k);   /* 0 <= k < classes */
const float *cn_data_mean(const cn_data *data);    /* CN_MAX_CHANNELS values */
const float *cn_data_std(const cn_data *data);
int cn_data_skipped(const cn_data *data);          /* images left out (skip_bad) */
/* Images in a split (0 when that part was not read). */
int cn_data_count(const cn_data *data, cn_split_id split);
/* Image i of a split: C*H*W uint8 pixels; its label 0..classes-1. i must be < count. */
const uint8_t *cn_data_image(const cn_data *data, cn_split_id split, int i);
int cn_data_label(const cn_data *data, cn_split_id split, int i);
/* CN_ERR_SHAPE unless the model takes the dataset's images and outputs at least
 * its number of classes. */
cn_status cn_data_check_model(const cn_data *data, const cn_model *model);

/* Downloads a named dataset ("mnist", "fashion-mnist", "kmnist": the four IDX
 * files; "cifar10": the binary tarball, unpacked) into dir, checking published
 * MD5s; files already there and right are kept. show_progress: progress notes. */
cn_status cn_download(const char *name, const char *dir, int show_progress);
/* Where a download of `name` goes without a directory: $CONVNET_DATA/<name>,
 * else ./data/<name>. CN_ERR_ARG if it does not fit in `size` bytes. */
cn_status cn_dataset_default_dir(const char *name, char *buf, size_t size);
/* Parses "a,b,c" (1..max comma-separated finite numbers) into values; returns
 * their count, or 0 when the text is not such a list. */
int cn_parse_floats(const char *text, float *values, int max);

/* ---- Training --------------------------------------------------------------- */

/* A training recipe: the settings of a spec's `train` line. In
 * cn_train_options.overrides, unset fields (as cn_train_options_init leaves
 * them) fall back to the model's recipe, then to built-in defaults. */
typedef struct {
    char optimizer[16];     /* sgd | adam | adamw */
    double lr, momentum, weight_decay, label_smoothing;
    int nesterov;           /* -1 unset, 0/1 */
    int epochs, batch_size;
    char scheduler[16];     /* none | step | plateau | onecycle | cosine */
    int step_size, patience;
    double gamma, factor, max_lr, pct_start, div_factor, final_div_factor;
    char augment[128];      /* e.g. "rotate=10,translate=0.1", or "none" */
} cn_recipe;

/* The processes of a data-parallel run (cn_dist_world). */
typedef struct cn_exchange cn_exchange;

#define CN_SEED_UNSET UINT64_MAX

/* A flag a signal handler sets to ask a long call (cn_train, cn_sweep_execute) to stop. */
#ifndef __wasm__
typedef volatile sig_atomic_t cn_stop_flag;
#else
typedef volatile int cn_stop_flag;   /* (the web runtime's build: no signals) */
#endif

/* Everything cn_train needs. Initialise with cn_train_options_init, then set fields. */
typedef struct {
    const char *model;          /* preset name/alias, spec file, or weights to fine-tune
                                   (.safetensors, .onnx); NULL: seed001. NULL when resuming */
    const char *dataset;        /* see cn_data_options.name; NULL: mnist, or the checkpoint's when resuming */
    const char *data_dir;       /* NULL: search the default places */
    int allow_download;
    cn_data_options data;       /* resize, grayscale, skip_bad, shape, mean/std (name, dir,
                                   allow_download, threads and the model's shape are filled in) */
    cn_recipe overrides;        /* settings given by the caller */
    uint64_t seed;              /* CN_SEED_UNSET: 1, or the stored seed when resuming */
    int threads;                /* 0: all cores */
    const char *out_dir;        /* default "runs/<model>" */
    int val_split;              /* hold out this many training images for validation */
    int train_limit, test_limit;/* use only the first N images (0 = all) */
    const char *resume;         /* OUT/last.safetensors of a run to continue (its settings are
                                   used; of `overrides` only epochs applies) */
    int quiet;                  /* no progress notes */
    cn_stop_flag *stop_requested;           /* may be NULL; set (e.g. by a signal handler) to
                                               save a resumable checkpoint and stop */
    cn_stop_flag *stop_honoured;            /* may be NULL; 1 while cn_train polls *stop_requested
                                               (from locking OUT to the end of the last epoch) */
    const cn_exchange *exchange;/* data-parallel ranks (cn_dist_world()), or NULL */
    int local_bn;               /* with an exchange: per-rank batch-norm statistics */
    const char *precision;      /* "fp32" or "bf16" (mixed precision: the conv and linear products on
                                   bf16 operands, AVX512_BF16; CN_ERR_UNSUPPORTED without it); NULL:
                                   fp32, or the stored one when resuming */
} cn_train_options;

/* Sets every field of `o` to "unset". */
void cn_train_options_init(cn_train_options *o);
/* Trains: loads the data and the model, runs the epochs, evaluates on the
 * test split after each, writes OUT/metrics.csv, OUT/last.safetensors
 * (resumable), OUT/best.safetensors, the summary and the plots. The log goes
 * out as CN_NOTE_INFO notes ("Epoch 1/10 ..." and the seeds' "Test set:
 * Average loss: ..." line); progress as CN_NOTE_PROGRESS. Returns
 * CN_ERR_INTERRUPTED when stopped through *stop_requested, after writing a
 * checkpoint that --resume continues bit-exactly. The options are not retained. */
cn_status cn_train(const cn_train_options *o);

/* Data-parallel runs under mpirun (Open MPI). Outside mpirun: rank 0 of 1,
 * cn_dist_world() is NULL and nothing touches MPI. */
const cn_exchange *cn_dist_world(void);     /* the job's ranks when 2 or more (initialises MPI) */
bool cn_dist_under_mpirun(void);
int cn_dist_rank(void);
int cn_dist_size(void);
/* Before exit: MPI_Finalize for exit_code 0, else MPI_Abort; nothing without MPI. */
void cn_dist_finish(int exit_code);
typedef struct {
    double sum_seconds, gather_seconds;
    long sums, gathers;
    double sum_floats;          /* floats all-reduced in all */
} cn_dist_stats;
/* Time in the exchange since the start: gradient all-reduces and gathers. */
cn_dist_stats cn_dist_get_stats(void);

/* 1 while any file write of the library runs (async-signal-safe): a signal
 * handler should then only ask to stop, so no temporary file is left behind. */
int cn_write_in_progress(void);
/* Writes `size` bytes to `path` atomically: a temporary beside it, fsync, rename,
 * fsync of the directory. A failure leaves the old file (if any) as it was. */
cn_status cn_write_file_atomic(const char *path, const void *data, size_t size);

/* ---- Sweeps: many training runs ---------------------------------------------- */

typedef struct {
    cn_train_options base;      /* model, data, limits, threads per run (default 1), ... */
    const char *out_dir;        /* default runs/sweep */
    int jobs;                   /* runs at once, each in a child process (0: one per core) */
    const cn_exchange *exchange;/* under mpirun: rank r runs every R-th run; rank 0 reports */
    int quiet;                  /* no note per finished run */
    cn_stop_flag *stop_requested;
} cn_sweep_options;

/* Checks a sweep's settings without running anything: a grid "lr=0.05,0.1
 * batch=64,128" or (grid NULL) a list "lr=0.1 batch=64; lr=0.2", seeds "N" or
 * "A-B", and `set` (tokens for every run, may be NULL). */
cn_status cn_sweep_check(const char *grid, const char *list, const char *seeds, const char *set);
/* Runs every setting x seed (finished runs are skipped, interrupted ones resume),
 * each in OUT/<setting>,seed=N, then writes OUT/sweep.csv, sweep.md and sweep.png.
 * CN_ERR_INTERRUPTED when stopped; an error naming how many runs failed. */
cn_status cn_sweep_execute(const cn_sweep_options *o, const char *grid, const char *list, const char *seeds,
                           const char *set);

/* ---- Evaluation ------------------------------------------------------------------ */

typedef struct {
    double loss_sum;            /* summed NLL loss (no label smoothing) */
    int correct, count;         /* hits, images */
    int classes;                /* the dataset's classes */
    long *confusion;            /* classes x classes: [true * classes + predicted], owned */
} cn_eval_result;

/* Evaluates `model` on the test split of `data` in eval mode, normalising
 * with mean/std (per channel), on `threads` threads (>= 1). The model must fit
 * the data (cn_data_check_model). Release the result with cn_eval_result_free. */
cn_status cn_evaluate_data(cn_model *model, const cn_data *data, const float *mean, const float *std, int threads,
                           cn_eval_result *out);
void cn_eval_result_free(cn_eval_result *r);

/* ---- int8 inference on the CPU ----------------------------------------------------- */

/* A model quantised as the int8 C export quantises it (same classes as the exported C). */
typedef struct cn_int8_model cn_int8_model;
/* Quantises `model` with scales calibrated on *calibration (in: how many, out:
 * how many used) training images of `data`, evenly spaced. */
cn_status cn_int8_calibrate(const cn_model *model, const float *mean, const float *std, const cn_data *data,
                            int *calibration, cn_int8_model **out);
void cn_int8_model_free(cn_int8_model *q);
/* The kernel set in use ("avx512-vnni", "avx2", "generic"). */
const char *cn_int8_model_kernels(const cn_int8_model *q);
/* The test split of `data` through the int8 model (pixels / 255; it normalises itself). */
cn_status cn_int8_evaluate_data(const cn_int8_model *q, const cn_data *data, int threads, cn_eval_result *out);

/* ---- Prediction -------------------------------------------------------------------- */

/* An execution context of a model: activations and scratch for batches of up
 * to `batch` images, a worker team of `threads` (< 1: 1), the mode (eval) and the
 * execution plan, worked out once here. Several sessions may run one model at
 * once, in different threads (they only read it); the model must outlive its
 * sessions. flags: 0 (other values are the tests' switches that turn fusion off). */
typedef struct cn_session cn_session;
cn_status cn_session_create(cn_model *model, int batch, int threads, unsigned flags, cn_session **out);
void cn_session_free(cn_session *s);

/* Class probabilities of n normalised images x (n, C*H*W), n <= the session's
 * batch: probs (n, classes), each row summing to 1 (softmax of logits, or exp
 * of log-probabilities renormalised). CN_ERR_NUMERIC when a score is not
 * finite ("the model's outputs are not finite (S); its weights diverged"). */
cn_status cn_predict(cn_session *s, const float *x, int n, float *probs);
/* The same through an int8 model; x holds pixels in [0, 1] (not normalised). */
cn_status cn_int8_predict_probabilities(const cn_int8_model *q, int log_probs, const float *x, int n, int threads,
                                        float *probs);
/* order[0..classes) = classes by decreasing probability; ties keep the lower class first. */
void cn_rank_classes(const float *probs, int classes, int *order);

/* What cn_image_prepare found in a picture of a digit (for diagnostics). */
typedef struct {
    int digit;                /* 1: prepared as an MNIST-style digit (the fields below hold) */
    int width, height;        /* the picture's size */
    int inverted;             /* 1 if the picture was dark-on-light and was inverted */
    int background;           /* border median, 0..255 */
    int ink_max;              /* strongest ink above the background, grey levels */
    int box_x, box_y, box_width, box_height;  /* ink bounding box in the picture */
    int scaled_width, scaled_height;          /* its size after scaling (longer side 20) */
    int shift_x, shift_y;     /* where the scaled box went in the 28x28 field */
} cn_image_report;

/* Reads one image file and turns it into the model's normalised input x
 * (C*H*W floats). For a 1x28x28 model a PNG or PGM picture of one digit is made
 * MNIST-like (ink bright on black, cropped, scaled into 20x20, centred by mass),
 * or with raw != 0 taken as it is (it must be 28x28); for other shapes a PNG or
 * JPEG is converted as the image-folder dataset converts it. Then
 * (v - mean[c]) / std[c]. The error line starts with the file name. `report`
 * may be NULL. */
cn_status cn_image_prepare(const char *path, const cn_model *model, const float *mean, const float *std, int raw,
                           float *x, cn_image_report *report);

/* Classifies every image of a Kaggle-style CSV (with or without a label column)
 * with the model (q NULL) or its int8 version, and writes Kaggle's
 * "ImageId,Label" submission to `out` atomically, on `threads` threads.
 * *count: images classified. */
cn_status cn_predict_csv(cn_model *model, const cn_int8_model *q, const float *mean, const float *std,
                         const char *csv, const char *out, int threads, int *count);

/* ---- Export ------------------------------------------------------------------------ */

/* ONNX opset 13: input "input" [batch,C,H,W] (dynamic batch), output "output";
 * info's normalisation, dataset and class names as metadata. fold_bn folds each
 * batchnorm2d that directly follows a conv2d into it. Written atomically. */
cn_status cn_export_onnx(const cn_model *model, const char *path, int fold_bn, const cn_model_info *info);

enum { CN_EXPORT_C_INT8 = 1, CN_EXPORT_C_CORTEX_M4 = 2 };
typedef struct {
    size_t flash_bytes;      /* static const data: weights, biases, scales, multipliers */
    size_t ram_bytes;        /* activation buffers and scratch (the locals of model_predict) */
    size_t weight_count;     /* parameters after folding BN */
    int int8;
} cn_export_c_stats;
/* DIR/model.h and DIR/model.c: dependency-free C99 `model_predict`. With
 * CN_EXPORT_C_INT8, scales are calibrated on *calibration (in/out) training
 * images of `calibration_data` (required then, else ignored). */
cn_status cn_export_c_source(const cn_model *model, const char *dir, const cn_model_info *info, int flags,
                             const cn_data *calibration_data, int *calibration, cn_export_c_stats *stats);
/* CN_ERR_UNSUPPORTED (one line) for a model the C export cannot write (a layer it
 * has no code for): check before loading calibration data. */
cn_status cn_export_c_check(const cn_model *model);

typedef struct {
    size_t html_bytes, wasm_bytes, blob_bytes;
    int digits, agree;          /* test digits embedded; those the page's runtime classifies as convnet does */
} cn_export_web_stats;
/* DIR/index.html: a self-contained page that classifies drawn digits in
 * WebAssembly, with 20 test digits of `data` (1x28x28 images) for its self-test.
 * CN_ERR_UNSUPPORTED when the build has no WebAssembly runtime. */
cn_status cn_export_web_page(cn_model *model, const char *dir, const cn_model_info *info, const cn_data *data,
                             cn_export_web_stats *stats);
/* Checks that the model can be exported as a web page, before any data is loaded. */
cn_status cn_export_web_check(const cn_model *model);

#ifdef __cplusplus
}
#endif
#endif
