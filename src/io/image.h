/* Loading images as 8-bit grayscale: PNG (through libpng) and PGM (P5 binary,
 * P2 ASCII). The type is detected from the first bytes, never the file name.
 *
 * PNG: any colour type and bit depth. Palette and low-bit gray are expanded,
 * 16-bit samples are reduced to 8, colour is converted to gray with libpng's
 * rgb_to_gray (Rec. 709 weights; R=G=B stays exact), and alpha (an alpha
 * channel or tRNS) is composited on white, so a transparent background reads
 * as white paper. Interlaced images are read too.
 *
 * PGM: maxval 1..65535 (2-byte big-endian samples when maxval > 255), '#'
 * comments anywhere whitespace may appear in the header (and between P2
 * samples); samples are rescaled to 0..255 with rounding. A sample above
 * maxval, a malformed header or truncated data is an error naming the byte
 * offset. Bytes after the raster (e.g. a second image) are ignored.
 *
 * Both formats: width and height must be 1..CN_IMAGE_MAX_SIDE and
 * width*height at most CN_IMAGE_MAX_PIXELS; this is checked from the header,
 * before any pixel memory is allocated. Errors are one line starting with the
 * file name (or the `name` given to cn_image_load_memory), e.g.
 *   digit.png: PNG image is 20000x20000 pixels; the limit is 16384x16384 */
#ifndef CN_IO_IMAGE_H
#define CN_IO_IMAGE_H
#include "convnet.h"
#include <stddef.h>
#include <stdint.h>

#define CN_IMAGE_MAX_SIDE 16384
#define CN_IMAGE_MAX_PIXELS ((size_t)64 * 1024 * 1024)
/* Largest image file read by cn_image_load (a 64 Mpixel 16-bit P5 fits). */
#define CN_IMAGE_MAX_FILE_BYTES ((size_t)256 * 1024 * 1024)

typedef struct {
    int width, height;
    uint8_t *pixels; /* (height, width), row-major, 0 = black, 255 = white */
} cn_gray_image;

/* Reads the image file at `path` into *out (which owns the pixels afterwards;
 * release with cn_image_free). On failure *out is {0, 0, NULL}. */
cn_status cn_image_load(const char *path, cn_gray_image *out);

/* The same from a buffer of `size` bytes (not retained). `name` is used in
 * error messages in place of a file name (NULL: "<memory>"). Safe on any
 * input: this is the entry point for fuzzing. */
cn_status cn_image_load_memory(const void *data, size_t size, const char *name, cn_gray_image *out);

/* Frees the pixels and zeroes *img; NULL and already-freed images are fine. */
void cn_image_free(cn_gray_image *img);

/* Reads a whole regular file of at most CN_IMAGE_MAX_FILE_BYTES into *data
 * (free() it); errors name the path. */
cn_status cn_image_read_file(const char *path, uint8_t **data, size_t *size);

/* An image in its own colours, for datasets: gray (channels 1) or RGB (3),
 * 8 bits per sample, interleaved (height, width, channels). */
typedef struct {
    int width, height, channels;
    uint8_t *pixels;
} cn_color_image;

/* Decodes a PNG or JPEG (detected from the first bytes) as torchvision's
 * ImageFolder loader sees it before its convert("RGB"): PNG palette images
 * become RGB, gray below 8 bits is expanded, 16-bit samples are scaled to 8
 * with rounding (PIL would clip them), alpha and tRNS are dropped (as
 * convert("RGB") does); JPEG is decoded by libjpeg-turbo with its defaults
 * (islow DCT, fancy upsampling, as PIL does), gray or RGB (CMYK is refused).
 * Same limits and one-line errors as cn_image_load_memory. */
cn_status cn_image_decode_color(const void *data, size_t size, const char *name, cn_color_image *out);
void cn_color_image_free(cn_color_image *img);

#endif
