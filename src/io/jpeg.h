/* JPEG decoding through libjpeg-turbo (Debian's libjpeg62-turbo). */
#ifndef CN_IO_JPEG_H
#define CN_IO_JPEG_H
#include "io/image.h"

/* Decodes `size` bytes of JPEG into *out (gray: channels 1, YCbCr/RGB:
 * channels 3, interleaved), with libjpeg's default settings, which are PIL's
 * (islow DCT, fancy upsampling). CMYK/YCCK images are CN_ERR_UNSUPPORTED.
 * Sides and pixel count are checked against image.h's limits from the header,
 * before the pixels are allocated. Errors: one line starting with `name`,
 * with libjpeg's own message. Safe on any input (a fuzzing entry point via
 * cn_image_decode_color). */
cn_status cn_jpeg_decode(const uint8_t *data, size_t size, const char *name, cn_color_image *out);

#endif
