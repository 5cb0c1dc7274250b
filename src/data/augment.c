#include "data/augment.h"
#include "data/affine.h"
#include "data/elastic.h"
#include "core/error.h"
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- spec text ---- */

static int parse_number(const char *text, float lo, float hi, float *out) {
    char *end;
    errno = 0;
    float v = strtof(text, &end);
    if (end == text || *end || errno == ERANGE || !isfinite(v) || v < lo || v > hi) return 0;
    *out = v;
    return 1;
}

/* "A:B" into two numbers. */
static int parse_pair(const char *text, float lo, float hi, float *a, float *b) {
    const char *colon = strchr(text, ':');
    if (!colon || colon - text >= 63) return 0;
    char first[64];
    memcpy(first, text, (size_t)(colon - text));
    first[colon - text] = '\0';
    return parse_number(first, lo, hi, a) && parse_number(colon + 1, lo, hi, b);
}

static int any_enabled(const cn_augment *a) {
    return a->hflip_p > 0 || a->rotate_deg > 0 || a->translate > 0 || a->scale_min != 1.0f || a->scale_max != 1.0f ||
           a->shear_deg > 0 || a->erase_p > 0 || a->elastic_alpha > 0;
}

cn_status cn_augment_parse(const char *text, cn_augment *out) {
    memset(out, 0, sizeof *out);
    out->scale_min = out->scale_max = 1.0f;
    out->elastic_sigma = 4.0f;
    if (!text) return CN_OK;
    while (isspace((unsigned char)*text)) text++;
    if (!*text || !strcmp(text, "none")) return CN_OK;
    char buf[512];
    if (strlen(text) >= sizeof buf) return cn_fail(CN_ERR_ARG, "augmentation spec: longer than %zu characters", sizeof buf - 1);
    strcpy(buf, text);
    unsigned seen = 0;
    static const char *const keys[] = {"rotate", "translate", "scale", "shear", "erase", "elastic", "interp", "hflip"};
    for (char *save = NULL, *item = strtok_r(buf, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        while (isspace((unsigned char)*item)) item++;
        char *tail = item + strlen(item);
        while (tail > item && isspace((unsigned char)tail[-1])) *--tail = '\0';
        if (!*item) continue;
        char *eq = strchr(item, '=');
        if (!eq) return cn_fail(CN_ERR_ARG, "augmentation spec: '%s': expected key=value (keys: hflip, rotate, "
                                "translate, scale, shear, erase, elastic, interp)", item);
        *eq = '\0';
        const char *key = item, *value = eq + 1;
        int k = -1;
        for (int i = 0; i < (int)(sizeof keys / sizeof keys[0]); i++) if (!strcmp(key, keys[i])) k = i;
        if (k < 0) return cn_fail(CN_ERR_ARG, "augmentation spec: unknown key '%s': expected hflip, rotate, "
                                  "translate, scale, shear, erase, elastic or interp", key);
        if (seen & (1u << k)) return cn_fail(CN_ERR_ARG, "augmentation spec: '%s' given twice", key);
        seen |= 1u << k;
        int ok = 1;
        const char *expect = "";
        switch (k) {
        case 0: ok = parse_number(value, 0, 180, &out->rotate_deg); expect = "degrees in 0..180"; break;
        case 1: ok = parse_number(value, 0, 1, &out->translate); expect = "a fraction of the image size in 0..1"; break;
        case 2:
            ok = parse_pair(value, 1e-3f, 10, &out->scale_min, &out->scale_max) && out->scale_min <= out->scale_max;
            expect = "MIN:MAX with 0 < MIN <= MAX <= 10";
            break;
        case 3: ok = parse_number(value, 0, 80, &out->shear_deg); expect = "degrees in 0..80"; break;
        case 4: ok = parse_number(value, 0, 1, &out->erase_p); expect = "a probability in 0..1"; break;
        case 5:
            ok = parse_pair(value, 0, 1000, &out->elastic_alpha, &out->elastic_sigma) &&
                 out->elastic_sigma >= 0.5f && out->elastic_sigma <= CN_ELASTIC_MAX_SIGMA;
            expect = "ALPHA:SIGMA with ALPHA in 0..1000 and SIGMA in 0.5..20 pixels";
            break;
        case 6:
            if (!strcmp(value, "nearest")) out->bilinear = 0;
            else if (!strcmp(value, "bilinear")) out->bilinear = 1;
            else ok = 0;
            expect = "nearest or bilinear";
            break;
        case 7: ok = parse_number(value, 0, 1, &out->hflip_p); expect = "a probability in 0..1"; break;
        }
        if (!ok) return cn_fail(CN_ERR_ARG, "augmentation spec: %s=%s: expected %s", key, value, expect);
    }
    out->enabled = any_enabled(out);
    return CN_OK;
}

void cn_augment_format(const cn_augment *a, char *buf, size_t size) {
    if (!size) return;
    buf[0] = '\0';
    if (!a->enabled) { snprintf(buf, size, "none"); return; }
    size_t len = 0;
#define APPEND(...) do { if (len < size) len += (size_t)snprintf(buf + len, size - len, __VA_ARGS__); } while (0)
    if (a->hflip_p > 0) APPEND("hflip=%g", a->hflip_p);
    if (a->rotate_deg > 0) APPEND("%srotate=%g", len ? "," : "", a->rotate_deg);
    if (a->translate > 0) APPEND("%stranslate=%g", len ? "," : "", a->translate);
    if (a->scale_min != 1.0f || a->scale_max != 1.0f) APPEND("%sscale=%g:%g", len ? "," : "", a->scale_min, a->scale_max);
    if (a->shear_deg > 0) APPEND("%sshear=%g", len ? "," : "", a->shear_deg);
    if (a->elastic_alpha > 0) APPEND("%selastic=%g:%g", len ? "," : "", a->elastic_alpha, a->elastic_sigma);
    if (a->erase_p > 0) APPEND("%serase=%g", len ? "," : "", a->erase_p);
    if (a->bilinear) APPEND("%sinterp=bilinear", len ? "," : "");
#undef APPEND
}

/* ---- per image ---- */

void cn_normalizer_init(cn_normalizer *norm, float mean, float std) {
    norm->mean = mean;
    norm->std = std;
    for (int v = 0; v < 256; v++) {
        float x = (float)v / 255.0f; /* ToTensor */
        norm->lut[v] = (x - mean) / std; /* Normalize: sub_, div_ */
    }
}

static size_t align64(size_t n) { return (n + 63) & ~(size_t)63; }

size_t cn_augment_scratch_size(const cn_augment *aug, int rows, int cols) {
    size_t n = (size_t)rows * (size_t)cols;
    size_t elastic = aug && aug->elastic_alpha > 0
                   ? (n + cn_elastic_scratch_floats(rows, cols, aug->elastic_sigma)) * sizeof(float) : 0;
    return 2 * align64(n) + elastic;
}

/* torch.empty(1).uniform_(lo, hi): lo + (hi - lo) * U[0, 1), in float. */
static float uniform(cn_rng *rng, float lo, float hi) { return lo + (hi - lo) * cn_rng_uniform(rng); }

/* RandomErasing.get_params + erase, on the normalised image, value 0. */
static void random_erase(float *img, int rows, int cols, cn_rng *rng) {
    float area = (float)rows * (float)cols;
    const float log_lo = logf(0.3f), log_hi = logf(3.3f);
    for (int attempt = 0; attempt < 10; attempt++) {
        float erase_area = area * uniform(rng, 0.02f, 0.33f);
        float aspect = expf(uniform(rng, log_lo, log_hi));
        int h = (int)nearbyint(sqrt((double)erase_area * aspect));
        int w = (int)nearbyint(sqrt((double)erase_area / aspect));
        if (!(h < rows && w < cols)) continue;
        int i = (int)cn_rng_below(rng, (uint64_t)(rows - h + 1));
        int j = (int)cn_rng_below(rng, (uint64_t)(cols - w + 1));
        for (int y = i; y < i + h; y++)
            for (int x = j; x < j + w; x++) img[(size_t)y * cols + x] = 0.0f;
        return;
    }
}

void cn_augment_image(const cn_augment *aug, const uint8_t *src, int rows, int cols, const cn_normalizer *norm,
                      cn_rng *rng, void *scratch, float *out) {
    size_t n = (size_t)rows * (size_t)cols;
    if (!aug || !aug->enabled) {
        for (size_t i = 0; i < n; i++) out[i] = norm->lut[src[i]];
        return;
    }
    uint8_t *stage[2] = {scratch, (uint8_t *)scratch + align64(n)};
    float *floats = (float *)((uint8_t *)scratch + 2 * align64(n));
    const uint8_t *img = src;
    int next = 0;
    if (aug->hflip_p > 0 && cn_rng_uniform(rng) < aug->hflip_p) {   /* torch.rand(1) < p */
        for (int y = 0; y < rows; y++)
            for (int x = 0; x < cols; x++) stage[next][(size_t)y * cols + x] = img[(size_t)y * cols + (cols - 1 - x)];
        img = stage[next];
        next ^= 1;
    }
    if (aug->rotate_deg > 0) {
        float angle = uniform(rng, -aug->rotate_deg, aug->rotate_deg);
        cn_rotate_apply_u8(img, rows, cols, angle, aug->bilinear, stage[next]);
        img = stage[next];
        next ^= 1;
    }
    if (aug->translate > 0 || aug->scale_min != 1.0f || aug->scale_max != 1.0f || aug->shear_deg > 0) {
        /* RandomAffine.get_params order: angle (0 here), translation, scale, shear. */
        float tx = 0.0f, ty = 0.0f, scale = 1.0f, shear = 0.0f;
        if (aug->translate > 0) {
            float max_dx = aug->translate * (float)cols, max_dy = aug->translate * (float)rows;
            tx = (float)nearbyint(uniform(rng, -max_dx, max_dx)); /* Python round: half to even */
            ty = (float)nearbyint(uniform(rng, -max_dy, max_dy));
        }
        if (aug->scale_min != 1.0f || aug->scale_max != 1.0f) scale = uniform(rng, aug->scale_min, aug->scale_max);
        if (aug->shear_deg > 0) shear = uniform(rng, -aug->shear_deg, aug->shear_deg);
        cn_affine_apply_u8(img, rows, cols, 0.0f, tx, ty, scale, shear, aug->bilinear, stage[next]);
        img = stage[next];
    }
    if (aug->elastic_alpha > 0) {
        float *warped = floats, *elastic_scratch = floats + n;
        cn_elastic_apply(img, rows, cols, aug->elastic_alpha, aug->elastic_sigma, rng, elastic_scratch, warped);
        for (size_t i = 0; i < n; i++) out[i] = (warped[i] / 255.0f - norm->mean) / norm->std;
    } else {
        for (size_t i = 0; i < n; i++) out[i] = norm->lut[img[i]];
    }
    if (aug->erase_p > 0 && cn_rng_uniform(rng) < aug->erase_p) random_erase(out, rows, cols, rng);
}
