/* convnet — compact convolutional networks for small grayscale images, in C.
 *
 * The public API: everything the `convnet` command-line tool does, for a C
 * program to do itself. Link with `pkg-config --cflags --libs convnet`.
 *
 *     cn_net *net;                                     see examples/ for whole programs
 *     cn_net_from_preset("seed001", 1, &net);
 *     cn_train_config cfg; cn_train_config_init(&cfg);
 *     cfg.recipe.epochs = 2; cfg.out_dir = "runs/demo";
 *     cn_net_train(net, &cfg);                          trains on MNIST, writes checkpoints
 *     cn_net_save(net, "digits.safetensors");
 *     cn_net_free(net);
 *
 * Contracts that hold for every function below unless it says otherwise:
 *  - Status: a function that can fail returns a cn_status; CN_OK (0) is
 *    success. On failure cn_last_error() gives one human-readable line saying
 *    what failed, where, and what was expected, and every output argument is
 *    left as documented (pointers set to NULL, handles untouched).
 *  - Ownership: a `cn_x **out` argument receives a new handle that the caller
 *    owns and releases with the matching cn_x_free (which accepts NULL).
 *    Strings and arrays passed in are only read during the call and never
 *    retained. Strings returned (`const char *`) belong to the handle they
 *    came from and live as long as it, unless said otherwise.
 *  - Threads: the library is thread-safe across handles: different threads
 *    may use different handles at the same time. One handle must not be used
 *    by two threads at once (even read-only queries on a cn_net are safe only
 *    while no other thread trains, evaluates or predicts with it): a cn_net
 *    owns its working memory. Error messages are per thread. Functions that
 *    take `threads` run an OpenMP team of that many threads inside the call.
 *  - Shapes: images are float32 or uint8 in NCHW order (N images, C channels,
 *    H rows, W columns, row-major); one image is C*H*W values. Pixel values
 *    given as floats are pixel/255, in [0, 1], 0 = background (MNIST style);
 *    the network's input normalisation (x - mean) / std is applied inside.
 *  - Output: the library never prints and never exits the process. What it
 *    has to say besides errors (warnings, download progress) goes to the note
 *    handler (cn_set_note_handler); training reports through its callback.
 *  - Files: every file the library writes is written atomically (temporary
 *    file, fsync, rename, fsync of the directory): a reader sees the old file
 *    or the new one, never half of one, even after a crash. */
#ifndef CONVNET_H
#define CONVNET_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CONVNET_VERSION "0.1.0"
/* Most classes a dataset or a net's class names may have. */
#define CN_MAX_CLASSES 64

/* ------------------------------------------------------------------ status */

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
    CN_ERR_INTERRUPTED  /* stopped on request; state was saved */
} cn_status;

/* The last error message of the calling thread ("" if none). The pointer stays
 * valid; its text changes with the thread's next failing call. */
const char *cn_last_error(void);
/* A short name for a status code, e.g. "format error" (static storage). */
const char *cn_status_name(cn_status status);

/* 1 while the library is writing a file (from any thread: a checkpoint, an
 * export, a plot), 0 otherwise. Async-signal-safe: a SIGINT/SIGTERM handler
 * may ask it and let the write finish instead of ending the process there
 * (the file would be intact, but PATH.tmp.<pid> would be left behind). */
int cn_write_in_progress(void);

/* ------------------------------------------------------------------- notes */

typedef enum {
    CN_NOTE_WARNING,    /* something went wrong that did not stop the call (e.g. a plot) */
    CN_NOTE_INFO,       /* a finished step worth telling (e.g. "downloaded ...") */
    CN_NOTE_PROGRESS    /* a progress line to redraw in place; "" ends the display (the last line stays) */
} cn_note_kind;

/* Receives the library's notes: `text` is one line without a trailing newline,
 * valid during the call. Called on the thread that made the library call. */
typedef void (*cn_note_fn)(void *user, cn_note_kind kind, const char *text);
/* Installs the process-wide note handler (NULL, the default: notes are dropped).
 * Not thread-safe: call it before other threads use the library. */
void cn_set_note_handler(cn_note_fn fn, void *user);

/* ----------------------------------------------------------------- presets */

/* Presets: index 0..cn_preset_count()-1; the strings are static. */
int cn_preset_count(void);
const char *cn_preset_name(int index);
const char *cn_preset_alias(int index);
const char *cn_preset_description(int index);
const char *cn_preset_spec(int index);
/* Spec text of a preset by name or alias, or NULL. */
const char *cn_preset_find(const char *name_or_alias);

/* --------------------------------------------------- cn_model: architecture */

/* A model: the layer list and its parameters, without training metadata.
 * The lower-level handle under a cn_net (cn_net_model); useful to inspect
 * specs cheaply. */
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
/* Writes the torchsummary-style layer table of the model and its MAC count to
 * `out` (see README "convnet summary"). CN_ERR_IO if writing fails. */
cn_status cn_model_write_summary(const cn_model *model, FILE *out);

/* ---------------------------------------------------------- cn_data: datasets */

/* A dataset: training and test images (uint8) with labels, class names and
 * the normalisation mean/std of its training images. Read-only after loading;
 * may be shared by several threads and by several trainings at once. */
typedef struct cn_data cn_data;

typedef enum { CN_SPLIT_TRAIN, CN_SPLIT_TEST } cn_split_id;

/* Finds (or, when allow_download != 0, downloads) and loads a dataset by name:
 * "mnist", "fashion-mnist", "kmnist", or "idx" (any four IDX files in `dir`).
 * dir NULL: $CONVNET_DATA/<name>, then ./data/<name> (README "Datasets").
 * Download progress goes to the note handler. */
cn_status cn_data_load(const char *name, const char *dir, int allow_download, cn_data **out);
void cn_data_free(cn_data *data);
/* Downloads a dataset's four .gz files ("mnist", "fashion-mnist", "kmnist")
 * into dir (NULL: $CONVNET_DATA/<name>, else ./data/<name>) and checks their
 * published MD5s; files already there with the right checksum are kept.
 * CONVNET_MIRROR (a URL prefix; file:// works) replaces the mirror list.
 * With progress != 0, progress lines and one "downloaded ..." line per file
 * go to the note handler. `where` (may be NULL) receives the directory used. */
cn_status cn_data_download(const char *name, const char *dir, int progress, char *where, size_t where_size);

/* "mnist", ... ("idx" for generic IDX files). */
const char *cn_data_name(const cn_data *data);
int cn_data_num_classes(const cn_data *data);
/* Name of class k (0 <= k < classes), e.g. "7" or "Ankle boot"; NULL if out of range. */
const char *cn_data_class_name(const cn_data *data, int k);
/* mean and std of pixel/255 over the training images (either pointer may be NULL). */
void cn_data_normalization(const cn_data *data, float *mean, float *std);
/* Images of a split: returns count*rows*cols bytes (0 = background) and sets
 * *count, *rows, *cols; *labels (may be NULL) gets count labels < classes. */
const uint8_t *cn_data_images(const cn_data *data, cn_split_id split, int *count, int *rows, int *cols,
                              const uint8_t **labels);

/* ------------------------------------------------ cn_net: a trainable network */

/* A network and what classifying with it needs: the model, the dataset it was
 * trained on (its name), that dataset's input normalisation and class names.
 * A net holds its own working memory: use one net per thread. */
typedef struct cn_net cn_net;

/* A new net from a preset name or alias, or a spec file path, with parameters
 * initialised from `seed`. It knows no dataset yet: no normalisation (mean 0,
 * std 1) and classes named "0", "1", ... until it is trained. */
cn_status cn_net_from_preset(const char *name_or_path, uint64_t seed, cn_net **out);
/* The same from spec text; `source_name` names it in messages and run directories. */
cn_status cn_net_from_spec(const char *spec_text, const char *source_name, uint64_t seed, cn_net **out);
/* Loads trained weights: a convnet checkpoint (.safetensors, which carries its
 * dataset, normalisation and class names) or an ONNX model (.onnx). For ONNX,
 * `dataset` (NULL: "mnist") gives the class names and the normalisation, and
 * the file's normalize_mean/normalize_std metadata, when present, wins. */
cn_status cn_net_load(const char *path, const char *dataset, cn_net **out);
/* Whatever `name` is: a file ending in .safetensors or .onnx is loaded as by
 * cn_net_load (`dataset` applies to ONNX), anything else is a preset or spec
 * file as by cn_net_from_preset (`seed` applies). */
cn_status cn_net_open(const char *name, const char *dataset, uint64_t seed, cn_net **out);
void cn_net_free(cn_net *net);

/* Saves a checkpoint (.safetensors: weights, spec, dataset, normalisation,
 * class names) that cn_net_load and `convnet` read back. */
cn_status cn_net_save(const cn_net *net, const char *path);

/* What the exports did, for messages. */
typedef struct {
    long long bytes;        /* ONNX: size of the file written (-1 if unknown) */
    int batchnorm;          /* ONNX: BatchNorm layers in the model */
    int batchnorm_folded;   /* ONNX: of those, folded into the preceding conv */
    size_t weight_count;    /* C: parameters after folding BatchNorm */
    size_t flash_bytes;     /* C: static const data */
    size_t ram_bytes;       /* C: activation buffers */
    int calibration_images; /* C int8: images the scales were calibrated on */
} cn_export_report;

/* Writes an ONNX model (opset 13, input "input" [batch,C,H,W], output "output"
 * [batch,classes], normalisation as metadata). fold_bn != 0 folds each
 * BatchNorm that directly follows a conv into it. `report` may be NULL. */
cn_status cn_net_export_onnx(const cn_net *net, const char *path, int fold_bn, cn_export_report *report);
/* Writes DIR/model.h and DIR/model.c: dependency-free C99 of
 * int model_predict(const float in[C*H*W], float out[classes]) taking pixel/255.
 * int8 != 0 quantises, with scales calibrated on `calibration` training images
 * of `calib_data` (evenly spaced; fewer if the split is smaller); otherwise
 * calib_data may be NULL. `report` may be NULL. */
cn_status cn_net_export_c(const cn_net *net, const char *dir, int int8, const cn_data *calib_data,
                          int calibration, cn_export_report *report);

/* ---- queries (never fail on a valid net) ---- */
const cn_model *cn_net_model(const cn_net *net);
/* Per-image input shape (channels, height, width); any pointer may be NULL. */
void cn_net_input_shape(const cn_net *net, int *channels, int *height, int *width);
int cn_net_num_classes(const cn_net *net);
/* Name of class k ("0", "1", ... when the net knows no names); NULL if out of range. */
const char *cn_net_class_name(const cn_net *net, int k);
/* The dataset the net was trained on ("mnist", ...; "" for a fresh preset). */
const char *cn_net_dataset(const cn_net *net);
/* Sets the input normalisation (mean, std) the net feeds itself with; returns 1
 * when the net knows it (a checkpoint, a trained net, ONNX metadata, or a
 * dataset from the catalog), 0 when it does not (mean 0, std 1 are set then). */
int cn_net_normalization(const cn_net *net, float *mean, float *std);
size_t cn_net_param_count(const cn_net *net);
/* Spec text and source name of the model (owned by the net). */
const char *cn_net_spec(const cn_net *net);
const char *cn_net_source_name(const cn_net *net);

/* ---------------------------------------------------------------- training */

/* A training recipe. cn_train_config_init marks every field unset (0, "" or
 * -1); unset fields fall back to the model spec's `train` line, then to the
 * built-in defaults (README "Training recipe"). */
typedef struct cn_recipe {
    char optimizer[16];     /* sgd | adam | adamw */
    double lr, momentum, weight_decay, label_smoothing;
    int nesterov;           /* -1 unset, 0/1 */
    int epochs, batch_size;
    char scheduler[16];     /* none | step | plateau | onecycle | cosine */
    int step_size, patience;
    double gamma, factor, max_lr, pct_start, div_factor, final_div_factor;
    char augment[128];      /* e.g. "rotate=10,translate=0.1"; "none" */
} cn_recipe;

typedef enum {
    CN_TRAIN_READY,         /* from here until CN_TRAIN_FINISHED, a stop request (a non-zero
                               answer to CN_TRAIN_BATCH) is honoured: out_dir, epochs, batches */
    CN_TRAIN_BEGIN,         /* OUT prepared, settings resolved, about to train (fields: setup) */
    CN_TRAIN_EPOCH_BEGIN,   /* epoch, batches */
    CN_TRAIN_BATCH,         /* epoch, batch (done, 1-based), batches, seen, loss, acc (running) */
    CN_TRAIN_EVALUATING,    /* the epoch's batches are done; evaluating on test (and val) */
    CN_TRAIN_EPOCH_END,     /* every metric of the epoch; files are written after this */
    CN_TRAIN_STOPPED,       /* stopped on request after `batch`; last.safetensors saved in out_dir */
    CN_TRAIN_FINISHED       /* the epochs are over (or failed); only the final plots follow */
} cn_train_event_kind;

typedef struct {
    cn_train_event_kind kind;
    /* CN_TRAIN_BEGIN */
    const char *model_name, *dataset, *optimizer, *scheduler, *augment, *out_dir;
    const char *checkpoint;         /* the checkpoint a resumed run continues from, else NULL */
    size_t params;
    int train_count, test_count, has_val, batch_size, threads;
    int start_epoch, start_batch;   /* a resumed run: where it continues (0-based epoch) */
    /* every event: epochs of the run; epoch (1-based) and batches of the current epoch */
    int epoch, epochs;
    long batch, batches, seen;
    /* CN_TRAIN_BATCH: running means of the epoch so far; CN_TRAIN_EPOCH_END: the epoch's */
    double loss, acc;               /* train loss (mean per image), accuracy in percent */
    /* CN_TRAIN_EPOCH_END (and has_val, test_count as above); val_* only when has_val */
    double lr, test_loss, test_acc, val_loss, val_acc, seconds;  /* mean losses, accuracies in percent */
    int test_correct;
} cn_train_event;

/* Called on the training thread (never inside a parallel region). The event
 * and its strings are valid during the call. Returning non-zero from a
 * CN_TRAIN_BATCH event asks training to stop: it saves a resumable
 * OUT/last.safetensors and returns CN_ERR_INTERRUPTED. */
typedef int (*cn_train_fn)(void *user, const cn_train_event *event);

typedef struct {
    cn_recipe recipe;           /* overrides of the model's recipe */
    const char *dataset;        /* dataset by name when `data` is NULL (default "mnist") */
    const char *data_dir;       /* where its files are (NULL: default places) */
    int allow_download;         /* download a missing dataset (default 0) */
    const cn_data *data;        /* a loaded dataset to train on (borrowed), or NULL */
    uint64_t seed;              /* shuffling, augmentation, dropout (default 1) */
    int threads;                /* 0: all cores */
    const char *out_dir;        /* NULL: "runs/<model name>"; receives metrics.csv,
                                   last.safetensors, best.safetensors, plots, model_summary.txt */
    int val_split;              /* hold out this many training images for validation */
    int train_limit, test_limit;/* use only the first N images (0 = all) */
    cn_train_fn on_event;       /* may be NULL */
    void *user;                 /* passed to on_event */
} cn_train_config;

/* Sets every field of `cfg` to its default / "unset". */
void cn_train_config_init(cn_train_config *cfg);

/* Trains `net` in place as configured, epoch by epoch: after each epoch it
 * evaluates on the test set (and validation split), appends to
 * OUT/metrics.csv, and saves OUT/last.safetensors (resumable) and, when the
 * accuracy improved, OUT/best.safetensors. The net then carries the dataset's
 * name, normalisation and class names. Randomness is a function of the seed:
 * the same config gives bit-identical results for the same thread count. */
cn_status cn_net_train(cn_net *net, const cn_train_config *cfg);
/* Continues an interrupted or finished run from its OUT/last.safetensors, with
 * the settings stored there; cfg->recipe.epochs (if set) may extend it, and
 * the dataset fields, threads, out_dir (default: the checkpoint's directory)
 * and callback apply. On success *out (may be NULL) receives the trained net;
 * otherwise it is set to NULL. */
cn_status cn_train_resume(const char *checkpoint, const cn_train_config *cfg, cn_net **out);

/* -------------------------------------------------------------- evaluation */

typedef struct {
    int count;              /* images evaluated */
    int correct;
    double loss;            /* mean negative log-likelihood per image (no label smoothing) */
    double accuracy;        /* percent */
} cn_eval_result;

/* Evaluates `net` on a split of `data` in eval mode with `threads` threads
 * (<= 0: 2), in batches of 500, or of the size its working memory already has
 * (the training batch after cn_net_train, 1 after a first cn_net_predict).
 * The net's normalisation is used when it knows one, else the dataset's
 * (cn_net_normalization).
 * confusion (may be NULL): classes*classes counts (classes =
 * cn_data_num_classes), row = true class, column = predicted class;
 * predictions outside the dataset's classes are not counted.
 * predictions (may be NULL): the predicted class of every image. */
cn_status cn_net_evaluate(cn_net *net, const cn_data *data, cn_split_id split, int threads,
                          cn_eval_result *result, int64_t *confusion, int *predictions);
/* Adds n (true label, prediction) pairs to a classes*classes confusion matrix
 * (row = true label); pairs with a label or prediction outside 0..classes-1 are skipped. */
void cn_confusion_add(int64_t *confusion, int classes, const uint8_t *labels, const int *predictions, int n);

/* -------------------------------------------------------------- prediction */

/* Classifies n images: images holds n * C*H*W pixel values in [0, 1]
 * (pixel/255; see cn_net_input_shape), normalised inside with the net's mean
 * and std. probs receives n * classes probabilities (each row sums to 1: the
 * softmax of the scores, or exp of log-probabilities). Images run one at a
 * time, so a result does not depend on n. */
cn_status cn_net_predict(cn_net *net, const float *images, int n, float *probs);
/* The same from 8-bit pixels (value/255). */
cn_status cn_net_predict_u8(cn_net *net, const uint8_t *images, int n, float *probs);
/* Orders classes by decreasing probability (ties: lower class first). */
void cn_rank_classes(const float *probs, int classes, int *order);

/* What cn_image_to_digit found in a photo (for diagnostics). */
typedef struct {
    int width, height;    /* the picture */
    int inverted;         /* 1 if it was dark-on-light and was inverted */
    int background;       /* border median, 0..255 */
    int ink_max;          /* strongest ink above the background */
    int box_x, box_y, box_width, box_height;  /* ink bounding box in the picture */
    int scaled_width, scaled_height;          /* its size after scaling (longer side 20) */
    int shift_x, shift_y; /* where it went in the 28x28 field */
} cn_digit_info;

#define CN_DIGIT_PIXELS 784  /* 28 x 28 */

/* Reads an image file (PNG, or PGM P2/P5; any size) and makes the 28x28 input
 * `convnet predict` feeds: with preprocess != 0, MNIST's own recipe (ink made
 * bright on black, cropped, scaled to fit 20x20, centred by mass; see
 * README "predict"); with preprocess == 0 the image must be 28x28 and is
 * taken as it is. out[784] receives pixel/255 values; info (may be NULL) what
 * preprocessing found. Errors name the file. */
cn_status cn_image_to_digit(const char *path, int preprocess, float out[CN_DIGIT_PIXELS], cn_digit_info *info);

#ifdef __cplusplus
}
#endif
#endif
