/* PNG (libpng) and PGM (P2/P5) loading from memory. */
#include "fuzz_common.h"
#include "io/image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    cn_gray_image img;
    cn_status st = cn_image_load_memory(data, size, "fuzz.img", &img);
    fuzz_check_error(st, "fuzz.img");
    if (st == CN_OK) {
        if (img.width < 1 || img.height < 1 || !img.pixels) abort();
        for (size_t i = 0; i < (size_t)img.width * (size_t)img.height; i++) fuzz_sink += img.pixels[i];
    } else if (img.pixels || img.width || img.height) {
        abort();
    }
    cn_image_free(&img);
    return 0;
}
