/* Checkpoint loading: (1) weights from an in-memory safetensors file into a
 * fixed small model (conv, BN with num_batches_tracked, linear: every tensor
 * kind a checkpoint has); (2) the whole cn_checkpoint_load path (stored spec ->
 * model -> weights -> metadata) on the same bytes through a memfd; when that
 * succeeds and the file has training state, (3) resuming into an SGD optimizer
 * and a step scheduler. */
#include "fuzz_common.h"
#include "checkpoint.h"
#include "io/safetensors.h"

static const char model_spec[] =
    "input 1x28x28\n"
    "conv2d out=2 k=3 stride=2\n"
    "batchnorm2d\n"
    "relu\n"
    "maxpool2d k=2\n"
    "flatten\n"
    "linear out=10\n";

static cn_model *fixed_model;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc; (void)argv;
    if (cn_model_from_spec(model_spec, "fuzz-model", 1, &fixed_model) != CN_OK) {
        fprintf(stderr, "fuzz_checkpoint: %s\n", cn_last_error());
        abort();
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    cn_st_file *f = NULL;
    cn_status st = cn_st_open_memory(data, size, "fuzz.safetensors", &f);
    fuzz_check_error(st, "fuzz.safetensors");
    if (st == CN_OK) {
        st = cn_checkpoint_read_weights(f, "fuzz.safetensors", fixed_model);
        fuzz_check_error(st, "fuzz.safetensors");
        cn_st_close(f);
    }

    char path[64];
    int fd = fuzz_memfile(data, size, path);
    cn_model *m = NULL;
    cn_checkpoint_info info;
    st = cn_checkpoint_load(path, &m, &info, NULL);
    fuzz_check_error(st, path);
    if (st == CN_OK) {
        if (!m || info.num_classes < 0 || info.num_classes > 64) abort();
        cn_optimizer opt;
        cn_scheduler sched;
        if (cn_optimizer_init(&opt, CN_OPT_SGD, m->num_params) != CN_OK) abort();
        cn_sched_init(&sched, CN_SCHED_STEP, 0.01);
        cn_train_state state = {.optimizer = &opt, .scheduler = &sched};
        cn_model *again = NULL;
        st = cn_checkpoint_load(path, &again, &info, &state);
        fuzz_check_error(st, path);
        cn_model_free(again);
        cn_optimizer_free(&opt);
    } else if (m) {
        abort();
    }
    cn_model_free(m);
    close(fd);
    return 0;
}
