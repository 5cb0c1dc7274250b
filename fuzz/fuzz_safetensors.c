/* safetensors reader: open from memory, then read every tensor and metadata entry. */
#include "fuzz_common.h"
#include "io/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    cn_st_file *f = NULL;
    cn_status st = cn_st_open_memory(data, size, "fuzz.safetensors", &f);
    fuzz_check_error(st, "fuzz.safetensors");
    if (st != CN_OK) {
        if (f) abort();
        return 0;
    }
    for (int i = 0; i < cn_st_count(f); i++) {
        const cn_st_tensor *t = cn_st_get(f, i);
        if (!t || cn_st_find(f, t->name) != t) abort();
        size_t n = cn_st_numel(t);
        if (n * cn_st_dtype_size(t->dtype) != t->nbytes) abort();
        const unsigned char *p = cn_st_data(f, t);
        for (size_t k = 0; k < t->nbytes; k++) fuzz_sink += p[k];
        float *fv = NULL;
        double *dv = NULL;
        int64_t *iv = NULL;
        size_t count = 0;
        st = cn_st_read_floats(f, t->name, 0, &fv, &count);
        fuzz_check_error(st, "fuzz.safetensors");
        if (st == CN_OK && count != n) abort();
        st = cn_st_read_doubles(f, t->name, n + 1, &dv, &count); /* wrong count: must fail */
        if (st == CN_OK) abort();
        fuzz_check_error(st, "fuzz.safetensors");
        st = cn_st_read_int64(f, t->name, n, &iv, &count);
        fuzz_check_error(st, "fuzz.safetensors");
        free(fv);
        free(dv);
        free(iv);
    }
    for (int i = 0; i < cn_st_metadata_count(f); i++) {
        const char *k = cn_st_metadata_key(f, i);
        if (!k || !cn_st_metadata(f, k)) abort();
    }
    cn_st_close(f);
    return 0;
}
