/* CIFAR-10 binary batches (cn_cifar_parse_batch), appended twice to one split,
 * and PNG/JPEG decoding as image folders use it (cn_image_decode_color). */
#include "fuzz_common.h"
#include "data/cifar.h"
#include "io/image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    cn_split s = {0};
    cn_status st = cn_cifar_parse_batch(data, size, "fuzz.bin", &s);
    fuzz_check_error(st, "fuzz.bin");
    if (st == CN_OK) {
        int first = s.count;
        st = cn_cifar_parse_batch(data, size, "fuzz.bin", &s);
        if (st != CN_OK || s.count != 2 * first || s.channels != 3 || s.rows != 32 || s.cols != 32) abort();
        for (int i = 0; i < s.count; i++) if (s.labels[i] > 9) abort();
    }
    cn_split_free(&s);
    cn_color_image img;
    st = cn_image_decode_color(data, size, "fuzz.img", &img);
    fuzz_check_error(st, "fuzz.img");
    if (st == CN_OK) {
        if (img.width < 1 || img.height < 1 || (img.channels != 1 && img.channels != 3) || !img.pixels) abort();
        for (size_t i = 0; i < (size_t)img.width * img.height * img.channels; i++) fuzz_sink += img.pixels[i];
    } else if (img.pixels) {
        abort();
    }
    cn_color_image_free(&img);
    return 0;
}
