/* Image loading (PNG through libpng, PGM P2/P5) and MNIST-style preprocessing.
 * Fixtures: tests/fixtures/images/, made by make_fixtures.c there. */
#include "harness.h"
#include "core/error.h"
#include "io/image.h"
#include "io/preprocess.h"
#include <stdint.h>
#include <sys/stat.h>
#include <zlib.h>

#define IMG(rel) FIXTURE("images/" rel)

/* ------------------------------------------------------------ helpers ---- */

static uint8_t *read_all(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc(n > 0 ? (size_t)n : 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) { free(buf); buf = NULL; }
    fclose(f);
    *size = (size_t)n;
    return buf;
}

static int pattern(int x, int y) { return (37 * x + 71 * y) % 256; } /* as in make_fixtures.c */

static cn_status load_str(const char *text, cn_gray_image *img) {
    return cn_image_load_memory(text, strlen(text), "test.pgm", img);
}

#define CHECK_ERROR(call, status, needle) do { cn_status st_ = (call); \
    CHECK_MSG(st_ == (status), "status %d (%s), expected %d", st_, cn_last_error(), (status)); \
    CHECK_MSG(strstr(cn_last_error(), (needle)) != NULL, "message \"%s\" lacks \"%s\"", cn_last_error(), (needle)); \
} while (0)

static double correlation(const float *a, const float *b, int n) {
    double ma = 0, mb = 0, sab = 0, saa = 0, sbb = 0;
    for (int i = 0; i < n; i++) { ma += a[i]; mb += b[i]; }
    ma /= n; mb /= n;
    for (int i = 0; i < n; i++) {
        sab += (a[i] - ma) * (b[i] - mb);
        saa += (a[i] - ma) * (a[i] - ma);
        sbb += (b[i] - mb) * (b[i] - mb);
    }
    return saa > 0 && sbb > 0 ? sab / sqrt(saa * sbb) : 0;
}

static int load_original(int digit, float out[784]) {
    char path[128];
    snprintf(path, sizeof path, IMG("digit%d_original.pgm"), digit);
    cn_gray_image img;
    if (cn_image_load(path, &img) != CN_OK || img.width != 28 || img.height != 28) return 0;
    for (int i = 0; i < 784; i++) out[i] = img.pixels[i] / 255.0f;
    cn_image_free(&img);
    return 1;
}

/* ----------------------------------------------------------- PNG tests ---- */

/* Each colour type / depth / interlacing decodes to the same 13x7 pattern. */
TEST(png_color_types) {
    static const char *const files[] = {"pattern_gray8.png", "pattern_gray16_interlaced.png",
                                        "pattern_rgb_interlaced.png", "pattern_palette.png"};
    for (size_t f = 0; f < sizeof files / sizeof *files; f++) {
        char path[128];
        snprintf(path, sizeof path, IMG("%s"), files[f]);
        cn_gray_image img;
        cn_status st = cn_image_load(path, &img);
        CHECK_MSG(st == CN_OK, "%s: %s", files[f], cn_last_error());
        if (st != CN_OK) continue;
        CHECK(img.width == 13 && img.height == 7);
        int wrong = 0;
        for (int y = 0; y < 7; y++)
            for (int x = 0; x < 13; x++) wrong += img.pixels[y * 13 + x] != pattern(x, y);
        CHECK_MSG(wrong == 0, "%s: %d pixels differ from the pattern", files[f], wrong);
        cn_image_free(&img);
        CHECK(img.pixels == NULL && img.width == 0);
    }
}

TEST(png_one_bit) {
    cn_gray_image img;
    CHECK(cn_image_load(IMG("pattern_gray1.png"), &img) == CN_OK);
    CHECK(img.width == 13 && img.height == 7);
    int wrong = 0;
    for (int y = 0; y < 7; y++)
        for (int x = 0; x < 13; x++) wrong += img.pixels[y * 13 + x] != (pattern(x, y) >= 128 ? 255 : 0);
    CHECK(wrong == 0);
    cn_image_free(&img);
}

/* Alpha (channel or tRNS) is composited on white. */
TEST(png_alpha_on_white) {
    cn_gray_image img;
    CHECK(cn_image_load(IMG("pattern_rgba.png"), &img) == CN_OK);
    CHECK(img.width == 13 && img.height == 7);
    int worst = 0;
    for (int y = 0; y < 7; y++)
        for (int x = 0; x < 13; x++) {
            int a = 255 - 20 * y, v = pattern(x, y);
            int expect = (v * a + 255 * (255 - a) + 127) / 255;
            int d = abs(img.pixels[y * 13 + x] - expect);
            if (d > worst) worst = d;
        }
    CHECK_MSG(worst <= 1, "worst difference %d", worst);
    cn_image_free(&img);

    CHECK(cn_image_load(IMG("pattern_gray8_trns.png"), &img) == CN_OK);
    CHECK(img.pixels[0] == 255); /* pattern(0,0) = 0 is the transparent value */
    int wrong = 0;
    for (int i = 1; i < 13 * 7; i++) wrong += pattern(i % 13, i / 13) != 0 && img.pixels[i] != pattern(i % 13, i / 13);
    CHECK(wrong == 0);
    cn_image_free(&img);
}

/* Rewrites the IHDR size of a PNG in memory (and its CRC) to test the limits. */
static void set_png_size(uint8_t *png, uint32_t width, uint32_t height) {
    for (int i = 0; i < 4; i++) {
        png[16 + i] = (uint8_t)(width >> (24 - 8 * i));
        png[20 + i] = (uint8_t)(height >> (24 - 8 * i));
    }
    uint32_t crc = (uint32_t)crc32(0, png + 12, 17); /* "IHDR" + 13 data bytes */
    for (int i = 0; i < 4; i++) png[29 + i] = (uint8_t)(crc >> (24 - 8 * i));
}

TEST(png_dimension_limits) {
    size_t size;
    uint8_t *png = read_all(IMG("pattern_gray8.png"), &size);
    CHECK(png != NULL && size > 33);
    if (!png) return;
    cn_gray_image img;
    set_png_size(png, 20000, 20000);
    CHECK_ERROR(cn_image_load_memory(png, size, "digit.png", &img), CN_ERR_UNSUPPORTED,
                "digit.png: PNG image is 20000x20000 pixels; the limit is 16384x16384");
    CHECK(img.pixels == NULL);
    set_png_size(png, 16384, 16384); /* each side fine, 256 Mpixel too many */
    CHECK_ERROR(cn_image_load_memory(png, size, "digit.png", &img), CN_ERR_UNSUPPORTED, "the limit is 67108864 pixels");
    set_png_size(png, 4096, 4096); /* allowed, but the data is 13x7's: error, no crash */
    CHECK_ERROR(cn_image_load_memory(png, size, "digit.png", &img), CN_ERR_FORMAT, "digit.png: byte ");
    CHECK(img.pixels == NULL);
    free(png);
}

/* Every truncation and every single-byte corruption is an error or a clean
 * decode (never a crash; run under ASan via `make check SANITIZE=1`). */
TEST(png_truncated_and_corrupted) {
    size_t size;
    uint8_t *png = read_all(IMG("pattern_rgb_interlaced.png"), &size);
    CHECK(png != NULL);
    if (!png) return;
    cn_gray_image img;
    int unexpected = 0;
    for (size_t n = 0; n < size - 12; n++) { /* without IEND the pixels may all be there */
        cn_status st = cn_image_load_memory(png, n, "cut.png", &img);
        if (st == CN_OK || strncmp(cn_last_error(), "cut.png: byte", 13) != 0) unexpected++;
        cn_image_free(&img);
    }
    CHECK_MSG(unexpected == 0, "%d truncations were not reported as errors", unexpected);
    CHECK_ERROR(cn_image_load_memory(png, 60, "cut.png", &img), CN_ERR_FORMAT, "expected more data");
    uint8_t *copy = malloc(size);
    for (size_t i = 0; i < size; i++) {
        memcpy(copy, png, size);
        copy[i] ^= 0x5a;
        if (cn_image_load_memory(copy, size, "bad.png", &img) == CN_OK) {
            CHECK(img.pixels != NULL && img.width > 0);
            cn_image_free(&img);
        } else {
            CHECK(img.pixels == NULL && cn_last_error()[0] != '\0');
        }
    }
    free(copy);
    free(png);
}

/* ----------------------------------------------------------- PGM tests ---- */

TEST(pgm_ascii_with_comments) {
    cn_gray_image img;
    cn_status st = load_str("P2 # a comment\n# another\n3 2\n# maxval next\n15\n0 15 # row 0\n  7\n8\n1 14\n", &img);
    CHECK_MSG(st == CN_OK, "%s", cn_last_error());
    if (st != CN_OK) return;
    CHECK(img.width == 3 && img.height == 2);
    const uint8_t expect[6] = {0, 255, 119, 136, 17, 238}; /* round(v * 255 / 15) */
    CHECK(memcmp(img.pixels, expect, 6) == 0);
    cn_image_free(&img);
    /* No whitespace required after the last sample. */
    CHECK(load_str("P2 1 1 255 200", &img) == CN_OK && img.pixels[0] == 200);
    cn_image_free(&img);
}

TEST(pgm_binary) {
    cn_gray_image img;
    const uint8_t p5[] = {'P', '5', '\n', '2', ' ', '2', '\n', '2', '5', '5', '\n', 0, 10, 200, 255};
    CHECK(cn_image_load_memory(p5, sizeof p5, "a.pgm", &img) == CN_OK);
    CHECK(img.width == 2 && img.height == 2 && img.pixels[1] == 10 && img.pixels[3] == 255);
    cn_image_free(&img);
    /* 16-bit big-endian, maxval 1000: 500 → 128 (127.5 rounds up), 1000 → 255 */
    const uint8_t p5w[] = {'P', '5', ' ', '2', ' ', '1', ' ', '1', '0', '0', '0', '\n', 0x01, 0xf4, 0x03, 0xe8};
    CHECK(cn_image_load_memory(p5w, sizeof p5w, "w.pgm", &img) == CN_OK);
    CHECK(img.width == 2 && img.pixels[0] == 128 && img.pixels[1] == 255);
    cn_image_free(&img);
    /* The 16-bit fixture (maxval 65535) reads back as 8-bit: white paper, dark ink. */
    CHECK(cn_image_load(IMG("digit3_inverted_scaled.pgm"), &img) == CN_OK);
    CHECK(img.width == 64 && img.height == 58 && img.pixels[0] == 255);
    int darkest = 255;
    for (int i = 0; i < 64 * 58; i++) if (img.pixels[i] < darkest) darkest = img.pixels[i];
    CHECK(darkest < 10);
    cn_image_free(&img);
    /* A file with trailing bytes (e.g. a second image) is fine. */
    const uint8_t two[] = {'P', '5', ' ', '1', ' ', '1', ' ', '9', '\n', 9, 'P', '5'};
    CHECK(cn_image_load_memory(two, sizeof two, "two.pgm", &img) == CN_OK && img.pixels[0] == 255);
    cn_image_free(&img);
}

TEST(pgm_errors) {
    cn_gray_image img;
    CHECK_ERROR(load_str("P5\n28 x8\n255\n", &img), CN_ERR_FORMAT,
                "test.pgm: byte 6: found 'x' where the PGM height was expected; expected a decimal number");
    CHECK_ERROR(load_str("P5\n28 2a 255\n", &img), CN_ERR_FORMAT, "byte 7: found 'a' after the PGM height");
    CHECK_ERROR(load_str("P5 2 2", &img), CN_ERR_FORMAT, "byte 6: found the end of the data where the PGM maxval");
    CHECK_ERROR(load_str("P5 2 2 0\n....", &img), CN_ERR_FORMAT, "byte 7: PGM maxval is 0; expected 1..65535");
    CHECK_ERROR(load_str("P2 2 2 # c\n70000\n", &img), CN_ERR_FORMAT, "byte 11: PGM maxval is 70000");
    CHECK_ERROR(load_str("P2 0 2 255\n", &img), CN_ERR_FORMAT, "PGM image is 0x2 pixels");
    CHECK_ERROR(load_str("P5 99999999999 2 255\n", &img), CN_ERR_FORMAT, "too many digits");
    CHECK_ERROR(load_str("P5 20000 20000 255\n", &img), CN_ERR_UNSUPPORTED,
                "test.pgm: PGM image is 20000x20000 pixels; the limit is 16384x16384");
    CHECK_ERROR(load_str("P5 8193 8193 255\n", &img), CN_ERR_UNSUPPORTED, "the limit is 67108864 pixels");
    CHECK_ERROR(load_str("P5 28 28 255\nabc", &img), CN_ERR_FORMAT,
                "test.pgm: byte 16: P5 data is truncated: found 3 of 784 bytes");
    CHECK_ERROR(load_str("P5 2 1 65535\n\x01\x02\x03", &img), CN_ERR_FORMAT, "found 3 of 4 bytes");
    CHECK_ERROR(load_str("P5 2 1 100\n\x01\x65", &img), CN_ERR_FORMAT, "byte 12: PGM sample 1 is 101; expected at most maxval 100");
    CHECK_ERROR(load_str("P2 2 2 255\n1 2 3", &img), CN_ERR_FORMAT, "byte 16: P2 data is truncated: found 3 of 4 samples");
    CHECK_ERROR(load_str("P2 2 1 255\n1 -2", &img), CN_ERR_FORMAT, "byte 13: found '-' where the PGM sample 1 was expected");
    CHECK_ERROR(load_str("P2 2 1 255\n1 256", &img), CN_ERR_FORMAT, "PGM sample 1 is 256; expected at most maxval 255");
    CHECK_ERROR(load_str("P5 1 1 255", &img), CN_ERR_FORMAT, "PGM data ends after the header");
    CHECK(img.pixels == NULL && img.width == 0);
}

/* Every prefix of a valid P2/P5 file fails cleanly (or, for P2, may succeed at the end). */
TEST(pgm_every_truncation) {
    size_t size;
    uint8_t *p2 = read_all(IMG("digit5_shifted_ascii.pgm"), &size);
    CHECK(p2 != NULL);
    if (!p2) return;
    cn_gray_image img;
    CHECK(cn_image_load_memory(p2, size, "d5.pgm", &img) == CN_OK && img.width == 50 && img.height == 46);
    cn_image_free(&img);
    int bad = 0;
    for (size_t n = 0; n + 1 < size; n += 7) {
        cn_status st = cn_image_load_memory(p2, n, "d5.pgm", &img);
        if (st == CN_OK) { bad++; cn_image_free(&img); }
        else if (strncmp(cn_last_error(), "d5.pgm: byte ", 13) != 0) bad++;
    }
    CHECK_MSG(bad == 0, "%d truncations not reported with a byte offset", bad);
    free(p2);
}

TEST(detect_by_magic) {
    cn_gray_image img;
    /* A PGM named .png loads as PGM: the name only labels messages. */
    CHECK(load_str("P2 1 1 255 7", &img) == CN_OK);
    cn_image_free(&img);
    size_t size;
    uint8_t *png = read_all(IMG("pattern_gray8.png"), &size);
    CHECK(cn_image_load_memory(png, size, "named.pgm", &img) == CN_OK && img.width == 13);
    cn_image_free(&img);
    free(png);
    CHECK_ERROR(cn_image_load_memory("", 0, "e.png", &img), CN_ERR_FORMAT, "e.png: byte 0: the file is empty");
    CHECK_ERROR(cn_image_load_memory("\xff\xd8\xff\xe0", 4, "p.jpg", &img), CN_ERR_UNSUPPORTED, "found a JPEG image");
    CHECK_ERROR(load_str("P6 1 1 255 abc", &img), CN_ERR_UNSUPPORTED, "Netpbm P6 (colour PPM)");
    CHECK_ERROR(cn_image_load_memory("GIF89a", 6, "x.gif", &img), CN_ERR_FORMAT,
                "x.gif: byte 0: found bytes 47 49 46 38 39 61; expected a PNG signature");
    CHECK_ERROR(cn_image_load_memory("P", 1, NULL, &img), CN_ERR_FORMAT, "<memory>: byte 0");
}

TEST(file_errors) {
    cn_gray_image img;
    CHECK_ERROR(cn_image_load("tests/fixtures/images/no_such_file.png", &img), CN_ERR_IO,
                "tests/fixtures/images/no_such_file.png: cannot open: No such file or directory");
    CHECK_ERROR(cn_image_load("tests/fixtures/images", &img), CN_ERR_IO, "not a regular file");
    CHECK(img.pixels == NULL);
}

/* ---------------------------------------------------- preprocessing tests ---- */

/* The 10 committed digits (shifted, 3x, inverted) come back close to the MNIST originals. */
TEST(preprocess_recovers_mnist_digits) {
    double worst = 1;
    for (int d = 0; d < 10; d++) {
        float original[784], out[784];
        CHECK(load_original(d, original));
        char path[128];
        snprintf(path, sizeof path, IMG("digit%d_inverted_scaled.png"), d);
        cn_gray_image img;
        cn_status st = cn_image_load(path, &img);
        CHECK_MSG(st == CN_OK, "%s", cn_last_error());
        if (st != CN_OK) continue;
        cn_preprocess_info info;
        st = cn_preprocess_digit_ex(&img, out, &info);
        CHECK_MSG(st == CN_OK, "%s", cn_last_error());
        CHECK(info.inverted == 1 && info.background == 255);
        CHECK(info.scaled_width == 20 || info.scaled_height == 20);
        double r = correlation(out, original, 784);
        CHECK_MSG(r > 0.8, "digit %d: correlation %.3f", d, r);
        if (r < worst) worst = r;
        float lo = 1, hi = 0;
        for (int i = 0; i < 784; i++) { if (out[i] < lo) lo = out[i]; if (out[i] > hi) hi = out[i]; }
        CHECK(lo == 0.0f && hi <= 1.0f && hi > 0.9f);
        cn_image_free(&img);
    }
    if (getenv("TEST_VERBOSE")) fprintf(stderr, "  worst correlation %.3f\n", worst);
}

TEST(preprocess_pgm_variants) {
    static const struct { const char *file; int digit, inverted; } cases[] = {
        {"digit3_inverted_scaled.pgm", 3, 1}, {"digit5_shifted_ascii.pgm", 5, 0}};
    for (int c = 0; c < 2; c++) {
        float original[784], out[784];
        CHECK(load_original(cases[c].digit, original));
        char path[128];
        snprintf(path, sizeof path, IMG("%s"), cases[c].file);
        cn_gray_image img;
        CHECK(cn_image_load(path, &img) == CN_OK);
        cn_preprocess_info info;
        CHECK(cn_preprocess_digit_ex(&img, out, &info) == CN_OK);
        CHECK(info.inverted == cases[c].inverted);
        double r = correlation(out, original, 784);
        CHECK_MSG(r > 0.8, "%s: correlation %.3f", cases[c].file, r);
        cn_image_free(&img);
    }
}

/* An MNIST digit is already normalised: preprocessing leaves it (almost) unchanged. */
TEST(preprocess_mnist_is_fixed_point) {
    for (int d = 0; d < 10; d++) {
        char path[128];
        snprintf(path, sizeof path, IMG("digit%d_original.pgm"), d);
        cn_gray_image img;
        CHECK(cn_image_load(path, &img) == CN_OK);
        float original[784], out[784];
        for (int i = 0; i < 784; i++) original[i] = img.pixels[i] / 255.0f;
        CHECK(cn_preprocess_digit(&img, out) == CN_OK);
        double r = correlation(out, original, 784);
        CHECK_MSG(r > 0.97, "digit %d: correlation %.3f", d, r);
        cn_image_free(&img);
    }
}

static void centre_of_mass(const float *img, double *cx, double *cy) {
    double m = 0, x = 0, y = 0;
    for (int i = 0; i < 784; i++) { m += img[i]; x += img[i] * (i % 28); y += img[i] * (i / 28); }
    *cx = x / m;
    *cy = y / m;
}

TEST(preprocess_geometry) {
    /* A 60x6 dark bar near the corner of a 200x150 light-grey page: scaled to
     * 20x2, centred, inverted, background (200) subtracted. */
    int w = 200, h = 150;
    cn_gray_image img = {w, h, malloc((size_t)w * h)};
    memset(img.pixels, 200, (size_t)w * h);
    for (int y = 10; y < 16; y++) for (int x = 5; x < 65; x++) img.pixels[y * w + x] = 20;
    float out[784];
    cn_preprocess_info info;
    CHECK(cn_preprocess_digit_ex(&img, out, &info) == CN_OK);
    CHECK(info.inverted && info.background == 200 && info.ink_max == 180);
    CHECK(info.box_x == 5 && info.box_y == 10 && info.box_width == 60 && info.box_height == 6);
    CHECK(info.scaled_width == 20 && info.scaled_height == 2);
    double cx, cy;
    centre_of_mass(out, &cx, &cy);
    CHECK(fabs(cx - 14) <= 0.5 && fabs(cy - 14) <= 0.5);
    int lit = 0;
    for (int i = 0; i < 784; i++) lit += out[i] > 0.99f;
    CHECK(lit == 40);
    CHECK(out[14 * 28 + 4] == 1.0f && out[13 * 28 + 23] == 1.0f && out[14 * 28 + 3] == 0.0f);

    /* One bright pixel (no inversion) is enlarged to a 20x20 block and centred. */
    memset(img.pixels, 0, (size_t)w * h);
    img.pixels[3 * w + 190] = 255;
    CHECK(cn_preprocess_digit_ex(&img, out, &info) == CN_OK);
    CHECK(!info.inverted && info.scaled_width == 20 && info.scaled_height == 20);
    CHECK(info.shift_x == 4 && info.shift_y == 4);
    centre_of_mass(out, &cx, &cy);
    CHECK_NEAR(cx, 13.5, 1e-6);
    CHECK(out[4 * 28 + 4] == 1.0f && out[23 * 28 + 23] == 1.0f && out[3 * 28 + 4] == 0.0f);

    /* Faint noise (10% of the ink) does not widen the box. */
    memset(img.pixels, 0, (size_t)w * h);
    for (int y = 50; y < 90; y++) for (int x = 100; x < 120; x++) img.pixels[y * w + x] = 250;
    img.pixels[0 * w + 0] = 20;
    img.pixels[149 * w + 199] = 24;
    CHECK(cn_preprocess_digit_ex(&img, out, &info) == CN_OK);
    CHECK(info.box_x == 100 && info.box_width == 20 && info.box_height == 40);
    CHECK(info.scaled_width == 10 && info.scaled_height == 20);
    free(img.pixels);

    /* A 1-pixel pen line on a big page is shrunk 20x, then stretched back to full intensity. */
    w = h = 400;
    img = (cn_gray_image){w, h, malloc((size_t)w * h)};
    memset(img.pixels, 255, (size_t)w * h);
    for (int i = 0; i < 400; i++) img.pixels[i * w + (i * 3 / 4)] = 0;
    CHECK(cn_preprocess_digit_ex(&img, out, &info) == CN_OK);
    CHECK(info.inverted && info.scaled_width == 15 && info.scaled_height == 20);
    float brightest = 0;
    for (int i = 0; i < 784; i++) brightest = out[i] > brightest ? out[i] : brightest;
    CHECK(brightest == 1.0f);
    free(img.pixels);
}

TEST(preprocess_blank_and_bad) {
    float out[784];
    cn_gray_image img = {40, 30, malloc(40 * 30)};
    memset(img.pixels, 255, 40 * 30);
    CHECK_ERROR(cn_preprocess_digit(&img, out), CN_ERR_FORMAT, "no ink found");
    memset(img.pixels, 0, 40 * 30);
    CHECK_ERROR(cn_preprocess_digit(&img, out), CN_ERR_FORMAT, "no ink found");
    /* Low contrast: a smudge 20 levels off the background is not a digit. */
    memset(img.pixels, 230, 40 * 30);
    img.pixels[15 * 40 + 20] = 210;
    CHECK_ERROR(cn_preprocess_digit(&img, out), CN_ERR_FORMAT,
                "no ink found: every pixel is within 20 grey levels of the light background (230)");
    free(img.pixels);
    cn_gray_image empty = {0, 0, NULL};
    CHECK_ERROR(cn_preprocess_digit(&empty, out), CN_ERR_ARG, "empty image");
    /* 1x1 image: the border is the ink, so it is background: blank. */
    uint8_t one = 255;
    cn_gray_image tiny = {1, 1, &one};
    CHECK_ERROR(cn_preprocess_digit(&tiny, out), CN_ERR_FORMAT, "no ink found");
}

int main(void) {
    RUN(png_color_types);
    RUN(png_one_bit);
    RUN(png_alpha_on_white);
    RUN(png_dimension_limits);
    RUN(png_truncated_and_corrupted);
    RUN(pgm_ascii_with_comments);
    RUN(pgm_binary);
    RUN(pgm_errors);
    RUN(pgm_every_truncation);
    RUN(detect_by_magic);
    RUN(file_errors);
    RUN(preprocess_recovers_mnist_digits);
    RUN(preprocess_pgm_variants);
    RUN(preprocess_mnist_is_fixed_point);
    RUN(preprocess_geometry);
    RUN(preprocess_blank_and_bad);
    return test_summary();
}
