/* Kaggle CSV image files (cn_csv_parse): the first byte picks the image shape
 * (1x2x2, 1x28x28 or 3x4x4) and whether a label column is required. */
#include "fuzz_common.h"
#include "data/csv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const int shapes[3][3] = {{1, 2, 2}, {1, 28, 28}, {3, 4, 4}};
    int pick = size ? data[0] % 3 : 0, need_label = size ? (data[0] >> 2) & 1 : 0;
    const uint8_t *text = size ? data + 1 : data;
    size_t n = size ? size - 1 : 0;
    cn_split s;
    int has_label = -1;
    cn_status st = cn_csv_parse(text, n, "fuzz.csv", shapes[pick][0], shapes[pick][1], shapes[pick][2], need_label,
                                need_label ? 10 : 0, &s, &has_label);
    fuzz_check_error(st, "fuzz.csv");
    if (st == CN_OK) {
        if (s.count < 1 || !s.images || !s.labels || (has_label != 0 && has_label != 1)) abort();
        size_t bytes = (size_t)s.count * cn_split_image_size(&s);
        for (size_t i = 0; i < bytes; i++) fuzz_sink += s.images[i];
        for (int i = 0; i < s.count; i++) if (need_label && s.labels[i] >= 10) abort();
    } else if (s.images || s.labels || s.count) {
        abort();
    }
    cn_split_free(&s);
    return 0;
}
