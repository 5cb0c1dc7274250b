/* PNG (libpng) and PGM (P2/P5) loading into 8-bit grayscale. See image.h. */
#include "io/image.h"
#include "io/jpeg.h"
#include "core/error.h"
#include "core/file_open.h"
#include "core/mem.h"
#include <errno.h>
#include <png.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const uint8_t png_signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

/* Rejects sizes outside 1..CN_IMAGE_MAX_SIDE per side or above CN_IMAGE_MAX_PIXELS,
 * before anything is allocated for the pixels. */
static cn_status check_dimensions(const char *name, const char *kind, uint64_t width, uint64_t height) {
    if (width == 0 || height == 0)
        return cn_fail(CN_ERR_FORMAT, "%s: %s image is %llux%llu pixels; expected a width and height of at least 1",
                       name, kind, (unsigned long long)width, (unsigned long long)height);
    if (width > CN_IMAGE_MAX_SIDE || height > CN_IMAGE_MAX_SIDE)
        return cn_fail(CN_ERR_UNSUPPORTED, "%s: %s image is %llux%llu pixels; the limit is %dx%d",
                       name, kind, (unsigned long long)width, (unsigned long long)height,
                       CN_IMAGE_MAX_SIDE, CN_IMAGE_MAX_SIDE);
    if (width * height > CN_IMAGE_MAX_PIXELS)
        return cn_fail(CN_ERR_UNSUPPORTED, "%s: %s image is %llux%llu = %llu pixels; the limit is %zu pixels",
                       name, kind, (unsigned long long)width, (unsigned long long)height,
                       (unsigned long long)(width * height), CN_IMAGE_MAX_PIXELS);
    return CN_OK;
}

/* ---------------------------------------------------------------- PNG ---- */

typedef struct {
    const uint8_t *data;
    size_t size, pos;  /* pos: bytes handed to libpng so far (the error offset) */
    bool truncated;
    char message[200]; /* libpng's error text */
} png_source;

/* libpng calls this on a fatal error and must not return: record and jump back. */
static void png_on_error(png_structp png, png_const_charp message) {
    png_source *src = png_get_error_ptr(png);
    snprintf(src->message, sizeof src->message, "%s", message ? message : "unknown error");
    png_longjmp(png, 1);
}

/* The library never prints: warnings (e.g. a bad ancillary-chunk CRC) are dropped. */
static void png_on_warning(png_structp png, png_const_charp message) { (void)png; (void)message; }

static void png_read_from_memory(png_structp png, png_bytep dst, png_size_t count) {
    png_source *src = png_get_io_ptr(png);
    if (count > src->size - src->pos) {
        src->truncated = true;
        png_error(png, "unexpected end of data");
    }
    memcpy(dst, src->data + src->pos, count);
    src->pos += count;
}

/* Gray (channels 1) or gray+alpha (channels 2) 8-bit row → gray on white. */
static void composite_row(const uint8_t *src, int channels, int width, uint8_t *dst) {
    if (channels == 1) { memcpy(dst, src, (size_t)width); return; }
    for (int x = 0; x < width; x++) {
        unsigned gray = src[2 * x], alpha = src[2 * x + 1];
        dst[x] = (uint8_t)((gray * alpha + 255u * (255u - alpha) + 127u) / 255u);
    }
}

/* Colour mode: gray (channels 1) or RGB (channels 3) 8-bit row, copied as is. */
static void copy_row(const uint8_t *src, int channels, int width, uint8_t *dst) {
    memcpy(dst, src, (size_t)width * (size_t)channels);
}

/* Decodes into *out: gray composited on white (color false), or the image's
 * own gray or RGB samples with alpha dropped (color true; *channels_out gets
 * 1 or 3). Holds the setjmp: libpng errors longjmp back here. The reader and
 * `src` belong to the caller, so the only locals changed between setjmp and
 * longjmp are the ones declared volatile below (C11 7.13.2.1). */
static cn_status decode_png(png_structp png, png_infop info, png_source *src, const char *name, bool color,
                            cn_gray_image *out, int *channels_out) {
    /* Changed between setjmp and a possible longjmp, so volatile. */
    uint8_t *volatile pixels = NULL;
    uint8_t *volatile rows = NULL;       /* decoded rows: all of them if interlaced, else one */
    png_bytep *volatile row_ptrs = NULL;
    volatile cn_status status = CN_OK;   /* set for our own (non-libpng) errors */

    if (setjmp(png_jmpbuf(png))) {
        if (status == CN_OK) {
            if (src->truncated)
                status = cn_fail(CN_ERR_FORMAT, "%s: byte %zu: PNG data ends in the middle of a chunk; "
                                 "expected more data (the file is %zu bytes, truncated?)", name, src->pos, src->size);
            else
                status = cn_fail(CN_ERR_FORMAT, "%s: byte %zu: invalid PNG data (libpng: %s); expected a valid PNG stream",
                                 name, src->pos, src->message);
        }
        free(pixels);
        free(rows);
        free(row_ptrs);
        return status;
    }

    png_set_read_fn(png, src, png_read_from_memory);
    /* Our own limits, with our own message, apply after the header is read. */
    png_set_user_limits(png, PNG_UINT_31_MAX, PNG_UINT_31_MAX);
    png_read_info(png, info);

    png_uint_32 width, height;
    int bit_depth, color_type, interlace;
    png_get_IHDR(png, info, &width, &height, &bit_depth, &color_type, &interlace, NULL, NULL);
    if ((status = check_dimensions(name, "PNG", width, height)) != CN_OK) png_longjmp(png, 1);

    if (color) {
        /* As PIL's convert("RGB") / convert("L") keep them: palette → RGB, alpha and tRNS dropped. */
        png_set_palette_to_rgb(png);
        png_set_expand_gray_1_2_4_to_8(png);
        png_set_scale_16(png);     /* 16-bit → 8 with rounding */
        png_set_strip_alpha(png);
    } else {
        png_set_expand(png);       /* palette → RGB, gray < 8 bits → 8, tRNS → alpha */
        png_set_strip_16(png);
        if (color_type & PNG_COLOR_MASK_COLOR)
            png_set_rgb_to_gray_fixed(png, 1 /* no warning for non-gray pixels */, -1, -1);
    }
    int passes = png_set_interlace_handling(png);
    png_read_update_info(png, info);

    int channels = png_get_channels(png, info);
    size_t row_bytes = png_get_rowbytes(png, info);
    int out_channels = color ? channels : 1;
    if ((color ? channels != 1 && channels != 3 : channels != 1 && channels != 2) || png_get_bit_depth(png, info) != 8 ||
        row_bytes < (size_t)channels * width) {
        status = cn_fail(CN_ERR_UNSUPPORTED, "%s: PNG colour type %d, bit depth %d did not convert to 8-bit %s",
                         name, color_type, bit_depth, color ? "gray or RGB" : "gray");
        png_longjmp(png, 1);
    }
    void (*convert_row)(const uint8_t *, int, int, uint8_t *) = color ? copy_row : composite_row;
    size_t row_out = (size_t)width * (size_t)out_channels;
    size_t pixel_count = (size_t)width * height; /* ≤ CN_IMAGE_MAX_PIXELS, checked above */
    if (!(pixels = cn_calloc(pixel_count, (size_t)out_channels))) {
        status = CN_ERR_NOMEM;
        cn_error_prefix("%s", name);
        png_longjmp(png, 1);
    }
    if (passes > 1) {
        /* Interlaced: every pass revisits every row, so keep them all. */
        if (!(rows = cn_calloc(height, row_bytes)) || !(row_ptrs = cn_calloc(height, sizeof *row_ptrs))) {
            status = CN_ERR_NOMEM;
            cn_error_prefix("%s", name);
            png_longjmp(png, 1);
        }
        for (png_uint_32 y = 0; y < height; y++) row_ptrs[y] = rows + (size_t)y * row_bytes;
        png_read_image(png, row_ptrs);
        for (png_uint_32 y = 0; y < height; y++)
            convert_row(row_ptrs[y], channels, (int)width, pixels + (size_t)y * row_out);
    } else {
        if (!(rows = cn_calloc(1, row_bytes))) {
            status = CN_ERR_NOMEM;
            cn_error_prefix("%s", name);
            png_longjmp(png, 1);
        }
        for (png_uint_32 y = 0; y < height; y++) {
            png_read_row(png, rows, NULL);
            convert_row(rows, channels, (int)width, pixels + (size_t)y * row_out);
        }
    }
    /* The trailing chunks (IEND and any text) are not read: all pixels are in. */
    free(rows);
    free(row_ptrs);
    out->width = (int)width;
    out->height = (int)height;
    out->pixels = pixels;
    if (channels_out) *channels_out = out_channels;
    return CN_OK;
}

static cn_status load_png(const uint8_t *data, size_t size, const char *name, bool color, cn_gray_image *out,
                          int *channels) {
    png_source src = {.data = data, .size = size};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &src, png_on_error, png_on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    cn_status status = info ? decode_png(png, info, &src, name, color, out, channels)
                            : cn_fail(CN_ERR_NOMEM, "%s: could not create a PNG reader", name);
    png_destroy_read_struct(&png, &info, NULL); /* NULLs are fine */
    return status;
}

/* ---------------------------------------------------------------- PGM ---- */

typedef struct {
    const uint8_t *data;
    size_t size, pos;
    const char *name;
} pgm_cursor;

static bool is_space(uint8_t c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }
static bool is_digit(uint8_t c) { return c >= '0' && c <= '9'; }

/* Skips whitespace and '#' comments (to the end of the line). */
static void skip_space(pgm_cursor *c) {
    while (c->pos < c->size) {
        uint8_t ch = c->data[c->pos];
        if (is_space(ch)) c->pos++;
        else if (ch == '#') {
            while (c->pos < c->size && c->data[c->pos] != '\n' && c->data[c->pos] != '\r') c->pos++;
        } else break;
    }
}

/* Describes the byte at the cursor for an error message: 'x', byte 0xNN or end of data. */
static const char *describe_byte(const pgm_cursor *c, char buf[32]) {
    if (c->pos >= c->size) return "the end of the data";
    uint8_t ch = c->data[c->pos];
    if (ch >= 0x21 && ch < 0x7f) snprintf(buf, 32, "'%c'", ch);
    else snprintf(buf, 32, "byte 0x%02x", ch);
    return buf;
}

/* Reads a decimal number (after optional whitespace/comments) that must be
 * followed by whitespace, '#' or the end of data. `what` names it in errors. */
static cn_status read_number(pgm_cursor *c, const char *what, uint32_t *value) {
    skip_space(c);
    char buf[32];
    size_t start = c->pos;
    if (c->pos >= c->size || !is_digit(c->data[c->pos]))
        return cn_fail(CN_ERR_FORMAT, "%s: byte %zu: found %s where the PGM %s was expected; expected a decimal number",
                       c->name, c->pos, describe_byte(c, buf), what);
    uint64_t v = 0;
    while (c->pos < c->size && is_digit(c->data[c->pos])) {
        v = v * 10 + (uint64_t)(c->data[c->pos] - '0');
        if (v > UINT32_MAX)
            return cn_fail(CN_ERR_FORMAT, "%s: byte %zu: PGM %s has too many digits; expected a number below 2^32",
                           c->name, start, what);
        c->pos++;
    }
    if (c->pos < c->size && !is_space(c->data[c->pos]) && c->data[c->pos] != '#')
        return cn_fail(CN_ERR_FORMAT, "%s: byte %zu: found %s after the PGM %s; expected whitespace",
                       c->name, c->pos, describe_byte(c, buf), what);
    *value = (uint32_t)v;
    return CN_OK;
}

static cn_status load_pgm(const uint8_t *data, size_t size, const char *name, cn_gray_image *out) {
    pgm_cursor c = {.data = data, .size = size, .pos = 2, .name = name};
    bool ascii = data[1] == '2';
    uint32_t width, height, maxval;
    cn_status st;
    if ((st = read_number(&c, "width", &width)) || (st = read_number(&c, "height", &height))) return st;
    if ((st = check_dimensions(name, "PGM", width, height))) return st;
    skip_space(&c);
    size_t maxval_at = c.pos;
    if ((st = read_number(&c, "maxval", &maxval))) return st;
    if (maxval < 1 || maxval > 65535) {
        return cn_fail(CN_ERR_FORMAT, "%s: byte %zu: PGM maxval is %u; expected 1..65535", name, maxval_at, maxval);
    }
    if (c.pos >= size)
        return cn_fail(CN_ERR_FORMAT, "%s: byte %zu: PGM data ends after the header; expected %u x %u samples",
                       name, c.pos, width, height);
    if (!ascii) {
        /* Exactly one whitespace byte separates maxval from the raster (a comment may precede it). */
        if (data[c.pos] == '#') {
            while (c.pos < size && data[c.pos] != '\n' && data[c.pos] != '\r') c.pos++;
            if (c.pos >= size)
                return cn_fail(CN_ERR_FORMAT, "%s: byte %zu: PGM data ends in a header comment; expected %u x %u samples",
                               name, c.pos, width, height);
        }
        c.pos++;
    }

    size_t count = (size_t)width * height;
    int sample_bytes = maxval > 255 ? 2 : 1;
    if (!ascii) {
        size_t need = count * (size_t)sample_bytes; /* ≤ 128 Mi, no overflow */
        if (size - c.pos < need)
            return cn_fail(CN_ERR_FORMAT, "%s: byte %zu: P5 data is truncated: found %zu of %zu bytes "
                           "(%ux%u pixels, %d byte(s) each); expected the file to be %zu bytes",
                           name, size, size - c.pos, need, width, height, sample_bytes, c.pos + need);
    }
    uint8_t *pixels = cn_calloc(count, 1);
    if (!pixels) { cn_error_prefix("%s", name); return CN_ERR_NOMEM; }

    for (size_t i = 0; i < count; i++) {
        uint32_t v;
        size_t at = c.pos;
        if (ascii) {
            skip_space(&c);
            at = c.pos;
            if (c.pos >= size) {
                free(pixels);
                return cn_fail(CN_ERR_FORMAT, "%s: byte %zu: P2 data is truncated: found %zu of %zu samples "
                               "(%ux%u pixels); expected more samples", name, c.pos, i, count, width, height);
            }
            char what[48];
            snprintf(what, sizeof what, "sample %zu", i);
            if ((st = read_number(&c, what, &v))) { free(pixels); return st; }
        } else if (sample_bytes == 1) {
            v = data[c.pos++];
        } else {
            v = (uint32_t)data[c.pos] << 8 | data[c.pos + 1];
            c.pos += 2;
        }
        if (v > maxval) {
            free(pixels);
            return cn_fail(CN_ERR_FORMAT, "%s: byte %zu: PGM sample %zu is %u; expected at most maxval %u",
                           name, at, i, v, maxval);
        }
        pixels[i] = (uint8_t)((v * 255u + maxval / 2) / maxval);
    }
    out->width = (int)width;
    out->height = (int)height;
    out->pixels = pixels;
    return CN_OK;
}

/* ------------------------------------------------------------- dispatch ---- */

/* "name: byte 0: found bytes 68 65 ...; expected <expected>" for data of no known format. */
static cn_status unknown_format(const char *name, const uint8_t *bytes, size_t size, const char *expected) {
    char hex[3 * 8 + 1] = "";
    for (size_t i = 0, len = 0; i < size && i < 8; i++) len += (size_t)snprintf(hex + len, sizeof hex - len, "%s%02x", i ? " " : "", bytes[i]);
    return cn_fail(CN_ERR_FORMAT, "%s: byte 0: found bytes %s; expected %s", name, hex, expected);
}

/* The checks before the format is sniffed: data given unless size is 0, and not empty
 * (`expected` names the formats for the message). *name becomes "<memory>" when NULL. */
static cn_status check_image_data(const void *data, size_t size, const char **name, const char *expected) {
    if (!*name) *name = "<memory>";
    if (!data && size) return cn_fail(CN_ERR_ARG, "%s: image data is NULL", *name);
    if (size == 0) return cn_fail(CN_ERR_FORMAT, "%s: byte 0: the file is empty; expected %s", *name, expected);
    return CN_OK;
}

static bool is_png(const uint8_t *bytes, size_t size) {
    return size >= sizeof png_signature && memcmp(bytes, png_signature, sizeof png_signature) == 0;
}

static bool is_jpeg(const uint8_t *bytes, size_t size) {
    return size >= 3 && bytes[0] == 0xff && bytes[1] == 0xd8 && bytes[2] == 0xff;
}

cn_status cn_image_load_memory(const void *data, size_t size, const char *name, cn_gray_image *out) {
    CN_ASSERT(out != NULL);
    *out = (cn_gray_image){0, 0, NULL};
    cn_status status = check_image_data(data, size, &name, "a PNG or PGM image");
    if (status) return status;
    const uint8_t *bytes = data;
    if (is_png(bytes, size)) return load_png(bytes, size, name, false, out, NULL);
    if (size >= 2 && bytes[0] == 'P' && (bytes[1] == '2' || bytes[1] == '5'))
        return load_pgm(bytes, size, name, out);
    if (size >= 2 && bytes[0] == 'P' && bytes[1] >= '1' && bytes[1] <= '7')
        return cn_fail(CN_ERR_UNSUPPORTED, "%s: byte 0: found a Netpbm P%c (%s) image; expected PNG or PGM (P2/P5)",
                       name, bytes[1], bytes[1] == '1' || bytes[1] == '4' ? "bitmap"
                                       : bytes[1] == '3' || bytes[1] == '6' ? "colour PPM" : "PAM");
    if (is_jpeg(bytes, size))
        return cn_fail(CN_ERR_UNSUPPORTED, "%s: byte 0: found a JPEG image; expected PNG or PGM (convert it first)", name);
    return unknown_format(name, bytes, size, "a PNG signature (89 50 4e 47) or a PGM magic (P2/P5)");
}

cn_status cn_image_read_file(const char *path, uint8_t **data_out, size_t *size_out) {
    CN_ASSERT(path != NULL && data_out != NULL && size_out != NULL);
    *data_out = NULL;
    *size_out = 0;
    FILE *f;
    cn_status status = cn_fopen_regular(path, "an image file", &f);   /* a FIFO must not block */
    if (status) return status;
    struct stat st;
    if (fstat(fileno(f), &st) != 0) {
        int e = errno;
        fclose(f);
        return cn_fail(CN_ERR_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    if ((uint64_t)st.st_size > CN_IMAGE_MAX_FILE_BYTES) {
        fclose(f);
        return cn_fail(CN_ERR_UNSUPPORTED, "%s: file is %lld bytes; the limit for an image file is %zu bytes",
                       path, (long long)st.st_size, CN_IMAGE_MAX_FILE_BYTES);
    }
    size_t size = (size_t)st.st_size;
    uint8_t *data = cn_calloc(size ? size : 1, 1);
    if (!data) { fclose(f); cn_error_prefix("%s", path); return CN_ERR_NOMEM; }
    size_t got = fread(data, 1, size, f);
    bool read_error = ferror(f);
    fclose(f);
    if (read_error || got != size) {
        free(data);
        return cn_fail(CN_ERR_IO, "%s: byte %zu: read failed (%s); expected %zu bytes",
                       path, got, read_error ? "I/O error" : "file shrank while reading", size);
    }
    *data_out = data;
    *size_out = size;
    return CN_OK;
}

cn_status cn_image_load(const char *path, cn_gray_image *out) {
    CN_ASSERT(path != NULL && out != NULL);
    *out = (cn_gray_image){0, 0, NULL};
    uint8_t *data;
    size_t size;
    cn_status status = cn_image_read_file(path, &data, &size);
    if (status != CN_OK) return status;
    status = cn_image_load_memory(data, size, path, out);
    free(data);
    return status;
}

cn_status cn_image_decode_color(const void *data, size_t size, const char *name, cn_color_image *out) {
    CN_ASSERT(out != NULL);
    *out = (cn_color_image){0, 0, 0, NULL};
    cn_status status = check_image_data(data, size, &name, "a PNG or JPEG image");
    if (status) return status;
    const uint8_t *bytes = data;
    if (is_png(bytes, size)) {
        cn_gray_image img;
        int channels = 0;
        status = load_png(bytes, size, name, true, &img, &channels);
        if (status == CN_OK) *out = (cn_color_image){img.width, img.height, channels, img.pixels};
        return status;
    }
    if (is_jpeg(bytes, size)) return cn_jpeg_decode(bytes, size, name, out);
    return unknown_format(name, bytes, size, "a PNG signature (89 50 4e 47) or a JPEG one (ff d8 ff)");
}

void cn_color_image_free(cn_color_image *img) {
    if (!img) return;
    free(img->pixels);
    *img = (cn_color_image){0, 0, 0, NULL};
}

void cn_image_free(cn_gray_image *img) {
    if (!img) return;
    free(img->pixels);
    *img = (cn_gray_image){0, 0, NULL};
}
