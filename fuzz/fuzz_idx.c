/* IDX reader on raw bytes: the same bytes as an image file and as a label file. */
#include "fuzz_common.h"
#include "data/idx.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const uint32_t magics[2] = {CN_IDX_MAGIC_IMAGES, CN_IDX_MAGIC_LABELS};
    for (int k = 0; k < 2; k++) {
        cn_idx idx;
        cn_status st = cn_idx_parse_memory(data, size, "fuzz.idx", magics[k], &idx);
        fuzz_check_error(st, "fuzz.idx");
        if (st == CN_OK) {
            size_t n = (size_t)idx.count * (size_t)idx.rows * (size_t)idx.cols;
            /* Touch every byte: the sizes must describe the buffer. */
            for (size_t i = 0; i < n; i++) fuzz_sink += idx.data[i];
            if (idx.rows < 1 || idx.cols < 1 || (k == 1 && (idx.rows != 1 || idx.cols != 1))) abort();
        } else if (idx.data || idx.count) {
            abort(); /* a failed read leaves *out empty */
        }
        cn_idx_free(&idx);
    }
    return 0;
}
