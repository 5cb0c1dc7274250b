/* int8 convolution for AVX-512 VNNI (int8.h): vpdpbusd sums 4 products of biased input
 * bytes (broadcast, one pixel's 4 channels) and int8 weights (16 output channels) into
 * each int32 lane. A tile is up to MR consecutive output pixels of one row times one or
 * two blocks of 16 output channels: MR x 2 zmm accumulators, two weight loads and MR
 * broadcasts per group of 4 inputs. With g->pool (a 2x2 max pool fused), a tile is two
 * rows of 2*MP pixels, and the epilogue runs once per pooled pixel on the largest (or, for a
 * channel whose requantisation decreases, the smallest) of its four true sums: the
 * requantisation is monotone in the sum, so this is the max pool of the four bytes. With 8
 * output channels or fewer (int8 output, no pool), each accumulator holds two pixels
 * (tile_pairs). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#pragma GCC target("avx512f,avx512vl,avx512bw,avx512dq,avx512vnni,avx2,fma")
#include <immintrin.h>
#include <string.h>
#include "kernels/int8.h"

#define MR1 12          /* pixels per tile with one block of 16 output channels */
#define MR2 8           /* with two */
#define MP1 3           /* pooled pixels per tile (two rows of 2*MP pixels) with one block */
#define MP2 2           /* with two */

static inline __mmask16 lanes(int n) { return n >= 16 ? 0xFFFF : (__mmask16)((1u << n) - 1); }

/* q8: v + 0.5 with v's sign bit (one vpternlogd: sign ? v : 0.5), which differs from q8's
 * v >= 0 ? v + 0.5f : v - 0.5f only at -0 (-0.5 for 0.5), truncated to 0 either way. */
static inline __m512i q8v(__m512 v) {
    __m512i half = _mm512_ternarylogic_epi32(_mm512_castps_si512(v), _mm512_set1_epi32(0x3f000000),
                                             _mm512_set1_epi32((int32_t)0x80000000u), 0xE4);
    v = _mm512_add_ps(v, _mm512_castsi512_ps(half));
    v = _mm512_min_ps(_mm512_max_ps(v, _mm512_set1_ps(-127.0f)), _mm512_set1_ps(127.0f));
    return _mm512_cvttps_epi32(v);
}

static inline __m512 relu_v(__m512 v) {
    return _mm512_mask_mov_ps(v, _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_LT_OQ), _mm512_setzero_ps());
}

/* q8 of relu(v): max(v, 0) is relu's value but for -0 (0 here), which q8 maps to 0 either way;
 * then v + 0.5 >= 0.5, so only the upper bound. */
static inline __m512i q8_relu(__m512 v) {
    v = _mm512_add_ps(_mm512_max_ps(v, _mm512_setzero_ps()), _mm512_set1_ps(0.5f));
    return _mm512_cvttps_epi32(_mm512_min_ps(v, _mm512_set1_ps(127.0f)));
}

/* The epilogue's per-channel values of one block, in registers (loaded once per conv: the
 * byte stores of the outputs may alias anything, so values read through ep would be read
 * again after every store). */
typedef struct {
    __m512i comp;
    __m512 mult, bias, post_mult, post_shift;
    __mmask16 m;
    __mmask16 dec;          /* channels whose requantisation decreases with the sum (pooling takes the least) */
    int oc0, n;
} block_consts;

static inline block_consts load_block(const cn_i8_epilogue *ep, int oc0, int out_c) {
    block_consts k = {.oc0 = oc0, .n = out_c - oc0 < 16 ? out_c - oc0 : 16};
    k.m = lanes(k.n);
    k.comp = _mm512_maskz_loadu_epi32(k.m, ep->comp + oc0);
    k.mult = _mm512_maskz_loadu_ps(k.m, ep->mult + oc0);
    k.bias = _mm512_maskz_loadu_ps(k.m, ep->bias + oc0);
    k.post_mult = ep->post_mult ? _mm512_maskz_loadu_ps(k.m, ep->post_mult + oc0) : _mm512_setzero_ps();
    k.post_shift = ep->post_mult ? _mm512_maskz_loadu_ps(k.m, ep->post_shift + oc0) : _mm512_setzero_ps();
    /* (float)t * mult decreases in t when mult < 0, and so does the post affine when post_mult < 0 */
    k.dec = _mm512_cmp_ps_mask(k.mult, _mm512_setzero_ps(), _CMP_LT_OQ) ^
            _mm512_cmp_ps_mask(k.post_mult, _mm512_setzero_ps(), _CMP_LT_OQ);
    return k;
}

/* Flags of the epilogue, and where outputs go. */
typedef struct {
    const cn_i8_conv_geom *g;
    int relu, post, post_relu;
    uint8_t *qout;
    float *fout;
} out_desc;

/* The int8 epilogue (int8.h) of v = (float)t * mult + bias: the output bytes, as int32. */
static inline __m512i requant(const out_desc *d, const block_consts *k, __m512 v) {
    __m512i q = d->relu ? q8_relu(v) : q8v(v);
    if (d->post) {
        __m512 v2 = _mm512_add_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(q), k->post_mult), k->post_shift);
        q = d->post_relu ? q8_relu(v2) : q8v(v2);
    }
    return _mm512_add_epi32(q, _mm512_set1_epi32(CN_I8_ZERO));
}

/* The epilogue (int8.h) of one true sum t (the accumulator less comp): output pixel (y, x),
 * the block's channels. */
static inline void store(const out_desc *d, const block_consts *k, __m512i t, int y, int x) {
    const cn_i8_conv_geom *g = d->g;
    __m512 v = _mm512_add_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(t), k->mult), k->bias);
    if (!d->qout) {
        if (d->relu) v = relu_v(v);
        if (g->f_chan == 1) {
            _mm512_mask_storeu_ps(d->fout + y * g->f_row + x * g->f_pix + k->oc0, k->m, v);
        } else {
            float tmp[16];
            _mm512_storeu_ps(tmp, v);
            float *o = d->fout + y * g->f_row + x * g->f_pix + (size_t)k->oc0 * g->f_chan;
            for (int i = 0; i < k->n; i++) o[(size_t)i * g->f_chan] = tmp[i];
        }
        return;
    }
    _mm512_mask_cvtepi32_storeu_epi8(d->qout + y * g->q_row + x * g->q_pix + k->oc0, k->m, requant(d, k, v));
}

/* The sums of one tile, comp included: acc[r * n + j][b] for pixel (r, j) (r < rows, j < n;
 * rows * n <= MR1) and block b < nb of 16 output channels. Pixel (r, j) reads tap (ky, kx)
 * at p0 + r * row_step + j * step + (ky * in_w + kx) * in_cp; w: the first block's weights
 * (k*k taps x in_cp/4 groups of 64 bytes), the second bstride bytes on. Per group of 4
 * inputs, nb weight loads and rows * n broadcasts. rows, n and nb are constants after
 * inlining (tile, tile_pool), so acc stays in registers. */
static inline __attribute__((always_inline)) void accumulate(const cn_i8_conv_geom *g, const int8_t *w, size_t bstride,
                                                             const uint8_t *p0, size_t step, size_t row_step, int rows,
                                                             int n, int nb, __m512i acc[][2]) {
    for (int j = 0; j < rows * n; j++) { acc[j][0] = _mm512_setzero_si512(); acc[j][1] = _mm512_setzero_si512(); }
    int groups = g->in_cp / 4;
    for (int ky = 0; ky < g->k; ky++)
        for (int kx = 0; kx < g->k; kx++) {
            const uint8_t *p = p0 + ((size_t)ky * g->in_w + kx) * g->in_cp;
            const int8_t *wt = w + (size_t)(ky * g->k + kx) * groups * 64;
            for (int gi = 0; gi < groups; gi++, p += 4, wt += 64) {
                __m512i w0 = _mm512_loadu_si512(wt), w1 = w0;
                if (nb > 1) w1 = _mm512_loadu_si512(wt + bstride);
                for (int r = 0; r < rows; r++)
                    for (int j = 0; j < n; j++) {
                        int32_t a4;
                        memcpy(&a4, p + r * row_step + j * step, 4);
                        __m512i a = _mm512_set1_epi32(a4);
                        acc[r * n + j][0] = _mm512_dpbusd_epi32(acc[r * n + j][0], a, w0);
                        if (nb > 1) acc[r * n + j][1] = _mm512_dpbusd_epi32(acc[r * n + j][1], a, w1);
                    }
            }
        }
}

/* A tile of mr output pixels times nb blocks of 16 channels (w, bstride: as accumulate). Pixel
 * j reads its taps from p0 + j * step; it is output (y, x) with x advancing along the row and,
 * past row_end, wrapping to the next row after skip columns (flat stride-1 tiles: the columns
 * past out_w are computed, not stored). */
static inline __attribute__((always_inline)) void tile(const out_desc *d, const block_consts *k, const int8_t *w,
                                                       size_t bstride, const uint8_t *p0, size_t step, int mr, int nb,
                                                       int y, int x, int row_end, int skip) {
    __m512i acc[MR1][2];
    accumulate(d->g, w, bstride, p0, step, 0, 1, mr, nb, acc);
    for (int j = 0; j < mr; j++) {
        if (x >= row_end) { x += skip - row_end; y++; }
        if (x >= 0) {
            store(d, &k[0], _mm512_sub_epi32(acc[j][0], k[0].comp), y, x);
            if (nb > 1) store(d, &k[1], _mm512_sub_epi32(acc[j][1], k[1].comp), y, x);
        }
        x++;
    }
}

/* Pairs (out_c <= 8, int8 output): lanes 8..15 of the block hold lanes 0..7's weights (cn_i8_pack
 * with .pairs), so one accumulator sums two output pixels, the first in lanes 0..7 and the
 * second in 8..15 (the broadcast of its 4 input bytes merged into those lanes): half the
 * vpdpbusd and half the epilogues of a block with 8 idle lanes. The block's per-channel
 * values, loaded once per conv, into both halves. */
static inline block_consts pair_block(const block_consts *k) {
    block_consts p = *k;
    p.comp = _mm512_shuffle_i32x4(k->comp, k->comp, 0x44);
    p.mult = _mm512_shuffle_f32x4(k->mult, k->mult, 0x44);
    p.bias = _mm512_shuffle_f32x4(k->bias, k->bias, 0x44);
    p.post_mult = _mm512_shuffle_f32x4(k->post_mult, k->post_mult, 0x44);
    p.post_shift = _mm512_shuffle_f32x4(k->post_shift, k->post_shift, 0x44);
    return p;
}

/* A tile of mr output pixels (mr <= 2 * MR1) in pairs, as tile() walks them. */
static inline __attribute__((always_inline)) void tile_pairs(const out_desc *d, const block_consts *k, const int8_t *w,
                                                             const uint8_t *p0, size_t step, int mr, int y, int x,
                                                             int row_end, int skip) {
    const cn_i8_conv_geom *g = d->g;
    __m512i acc[MR1];
    int np = (mr + 1) / 2;
    for (int j = 0; j < np; j++) acc[j] = _mm512_setzero_si512();
    int groups = g->in_cp / 4;
    for (int ky = 0; ky < g->k; ky++)
        for (int kx = 0; kx < g->k; kx++) {
            const uint8_t *p = p0 + ((size_t)ky * g->in_w + kx) * g->in_cp;
            const int8_t *wt = w + (size_t)(ky * g->k + kx) * groups * 64;
            for (int gi = 0; gi < groups; gi++, p += 4, wt += 64) {
                __m512i w0 = _mm512_loadu_si512(wt);
                for (int j = 0; j < np; j++) {
                    int32_t lo, hi;   /* an odd last pixel: its own bytes in both halves */
                    memcpy(&lo, p + 2 * j * step, 4);
                    memcpy(&hi, p + (2 * j + 1 < mr ? 2 * j + 1 : 2 * j) * step, 4);
                    __m512i a = _mm512_mask_set1_epi32(_mm512_set1_epi32(lo), 0xFF00, hi);
                    acc[j] = _mm512_dpbusd_epi32(acc[j], a, w0);
                }
            }
        }
    __mmask16 m8 = (__mmask16)(k->m & 0xFF);
    for (int j = 0; j < mr; j += 2) {
        __m512 v = _mm512_add_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(acc[j / 2], k->comp)), k->mult), k->bias);
        __m128i bytes = _mm512_cvtepi32_epi8(requant(d, k, v));
        for (int h = 0; h < 2 && j + h < mr; h++) {
            if (x >= row_end) { x += skip - row_end; y++; }
            if (x >= 0) _mm_mask_storeu_epi8(d->qout + y * g->q_row + x * g->q_pix, m8, h ? _mm_srli_si128(bytes, 8) : bytes);
            x++;
        }
    }
}

#define PAIRS(M) case M: tile_pairs(d, k, w, p0, step, M, y, x, row_end, skip); break;

static void pairs_any(const out_desc *d, const block_consts *k, const int8_t *w, const uint8_t *p0, size_t step, int mr,
                      int y, int x, int row_end, int skip) {
    switch (mr) {
    PAIRS(1) PAIRS(2) PAIRS(3) PAIRS(4) PAIRS(5) PAIRS(6) PAIRS(7) PAIRS(8) PAIRS(9) PAIRS(10) PAIRS(11) PAIRS(12)
    PAIRS(13) PAIRS(14) PAIRS(15) PAIRS(16) PAIRS(17) PAIRS(18) PAIRS(19) PAIRS(20) PAIRS(21) PAIRS(22) PAIRS(23)
    PAIRS(24)
    }
}

/* The pooled tile: mp pooled pixels (py, px..px+mp-1) from conv pixels of two rows, (r, j)
 * (r < 2, j < 2*mp) reading its taps from p0 + r * row_step + j * step; the epilogue once per
 * pooled pixel on the max (the min in k's dec lanes) of its four true sums. */
static inline __attribute__((always_inline)) void tile_pool(const out_desc *d, const block_consts *k, const int8_t *w,
                                                            size_t bstride, const uint8_t *p0, size_t step,
                                                            size_t row_step, int mp, int nb, int py, int px) {
    __m512i acc[2 * 2 * MP1][2];   /* pixel (r, j) at r * 2 * mp + j */
    accumulate(d->g, w, bstride, p0, step, row_step, 2, 2 * mp, nb, acc);
    for (int i = 0; i < mp; i++)
        for (int b = 0; b < nb; b++) {
            int j0 = 2 * i, j1 = 2 * mp + 2 * i;   /* conv pixels (0, 2i) and (1, 2i); 2i + 1 after each */
            __m512i s0 = _mm512_sub_epi32(acc[j0][b], k[b].comp), s1 = _mm512_sub_epi32(acc[j0 + 1][b], k[b].comp);
            __m512i s2 = _mm512_sub_epi32(acc[j1][b], k[b].comp), s3 = _mm512_sub_epi32(acc[j1 + 1][b], k[b].comp);
            __m512i hi = _mm512_max_epi32(_mm512_max_epi32(s0, s1), _mm512_max_epi32(s2, s3));
            __m512i lo = _mm512_min_epi32(_mm512_min_epi32(s0, s1), _mm512_min_epi32(s2, s3));
            store(d, &k[b], _mm512_mask_blend_epi32(k[b].dec, hi, lo), py, px + i);
        }
}

#define POOL1(M) case M: tile_pool(d, k, w, bstride, p0, step, row_step, M, 1, py, px); break;
#define POOL2(M) case M: tile_pool(d, k, w, bstride, p0, step, row_step, M, 2, py, px); break;

static void pool_any(const out_desc *d, const block_consts *k, const int8_t *w, size_t bstride, const uint8_t *p0,
                     size_t step, size_t row_step, int mp, int nb, int py, int px) {
    if (nb > 1) {
        switch (mp) { POOL2(1) POOL2(2) }
        return;
    }
    switch (mp) { POOL1(1) POOL1(2) POOL1(3) }
}

/* The pooled outputs (out_h / 2, out_w / 2) of blocks b, b+1 (nb of them). */
static void conv_pooled(const out_desc *d, const block_consts *k, const int8_t *w, size_t bstride, const uint8_t *in,
                        int nb) {
    const cn_i8_conv_geom *g = d->g;
    int ph = g->out_h / 2, pw = g->out_w / 2, mp_max = nb > 1 ? MP2 : MP1, s = g->stride;
    size_t step = (size_t)s * g->in_cp, row_step = (size_t)s * g->in_w * g->in_cp;
    for (int py = 0; py < ph; py++)
        for (int px = 0; px < pw; px += mp_max) {
            int mp = pw - px < mp_max ? pw - px : mp_max;
            pool_any(d, k, w, bstride, in + 2 * (size_t)py * row_step + 2 * (size_t)px * step, step, row_step, mp, nb, py, px);
        }
}

#define TILE1(M) case M: tile(d, k, w, bstride, p0, step, M, 1, y, x, row_end, skip); break;
#define TILE2(M) case M: tile(d, k, w, bstride, p0, step, M, 2, y, x, row_end, skip); break;

/* One tile of mr pixels (mr <= MR1, or MR2 when nb = 2). */
static void tile_any(const out_desc *d, const block_consts *k, const int8_t *w, size_t bstride, const uint8_t *p0,
                     size_t step, int mr, int nb, int y, int x, int row_end, int skip) {
    if (nb > 1) {
        switch (mr) { TILE2(1) TILE2(2) TILE2(3) TILE2(4) TILE2(5) TILE2(6) TILE2(7) TILE2(8) }
        return;
    }
    switch (mr) {
    TILE1(1) TILE1(2) TILE1(3) TILE1(4) TILE1(5) TILE1(6) TILE1(7) TILE1(8) TILE1(9) TILE1(10) TILE1(11) TILE1(12)
    }
}

/* One tile of mr pixels of blocks b.. (nb of them; pairs: tile_pairs). */
static void any_tile(const out_desc *d, const block_consts *k, const int8_t *w, size_t bstride, const uint8_t *p0,
                     size_t step, int mr, int nb, int pairs, int y, int x, int row_end, int skip) {
    if (pairs) pairs_any(d, k, w, p0, step, mr, y, x, row_end, skip);
    else tile_any(d, k, w, bstride, p0, step, mr, nb, y, x, row_end, skip);
}

static void conv(const cn_i8_conv_geom *g, const void *packed, const cn_i8_epilogue *ep, const uint8_t *in,
                 uint8_t *qout, float *fout) {
    int blocks = (g->out_c + CN_I8_BLOCK - 1) / CN_I8_BLOCK, s = g->stride;
    int pairs = qout && g->out_c <= 8 && !g->pool;   /* the weights are packed for it (cn_i8_pack) */
    size_t bstride = (size_t)g->k * g->k * g->in_cp * CN_I8_BLOCK;
    out_desc d = {.g = g, .relu = ep->relu, .post = ep->post_mult != NULL, .post_relu = ep->post_relu, .qout = qout, .fout = fout};
    for (int b = 0; b < blocks; b += 2) {
        int nb = blocks - b >= 2 ? 2 : 1, mr_max = pairs ? 2 * MR1 : nb > 1 ? MR2 : MR1;
        const int8_t *w = (const int8_t *)packed + (size_t)b * bstride;
        block_consts k[2];
        k[0] = load_block(ep, b * CN_I8_BLOCK, g->out_c);
        k[1] = nb > 1 ? load_block(ep, (b + 1) * CN_I8_BLOCK, g->out_c) : k[0];
        if (pairs) k[0] = pair_block(&k[0]);
        if (g->pool) {
            conv_pooled(&d, k, w, bstride, in, nb);
            continue;
        }
        if (s == 1) {
            /* flat: output pixel (y, x) is input pixel q = y * in_w + x, for q up to the last valid one */
            int last = (g->out_h - 1) * g->in_w + g->out_w;
            for (int q = 0; q < last; q += mr_max) {
                int mr = last - q < mr_max ? last - q : mr_max;
                int y = q / g->in_w, x = q % g->in_w;
                /* columns out_w .. in_w-1 are not stored: x past row_end wraps to -skip..-1 of the next row */
                if (x >= g->out_w) { x -= g->in_w; y++; }
                any_tile(&d, k, w, bstride, in + (size_t)q * g->in_cp, (size_t)g->in_cp, mr, nb, pairs, y, x, g->out_w,
                         g->out_w - g->in_w);
            }
            continue;
        }
        for (int y = 0; y < g->out_h; y++)
            for (int x = 0; x < g->out_w; x += mr_max) {
                int mr = g->out_w - x < mr_max ? g->out_w - x : mr_max;
                any_tile(&d, k, w, bstride, in + ((size_t)y * s * g->in_w + (size_t)x * s) * g->in_cp, (size_t)s * g->in_cp,
                         mr, nb, pairs, y, x, g->out_w + mr, 0);
            }
    }
}

static void quantise(const float *x, size_t n, float mean, float std, float inv_scale, uint8_t *out) {
    __m512 m = _mm512_set1_ps(mean), sd = _mm512_set1_ps(std), inv = _mm512_set1_ps(inv_scale);
    for (size_t i = 0; i < n; i += 16) {
        __mmask16 k = lanes((int)(n - i < 16 ? n - i : 16));
        __m512 v = _mm512_mul_ps(_mm512_div_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + i), m), sd), inv);
        _mm512_mask_cvtepi32_storeu_epi8(out + i, k, _mm512_add_epi32(q8v(v), _mm512_set1_epi32(CN_I8_ZERO)));
    }
}

/* int8.h's patches3: per group of 4 output pixels, each input row's 16 bytes from the group's
 * first column broadcast to the 4 lanes, shuffled within the lanes into the 48 bytes of the 4
 * patches (their bytes all lie in those 16) and or-ed, the padding 128 or-ed in. */
/* output byte o of 4 patches: pixel o / 12, patch byte o % 12 (row, column: b / 3, b % 3) */
#define P3_IDX(r, o) ((o) < 48 && (o) % 12 < 9 && (o) % 12 / 3 == (r) ? (o) / 12 + (o) % 12 % 3 : -1)
#define P3_PAD(o) ((o) < 48 && (o) % 12 >= 9 ? -128 : 0)
#define P3_8(F, ...) F(__VA_ARGS__ 0), F(__VA_ARGS__ 1), F(__VA_ARGS__ 2), F(__VA_ARGS__ 3), F(__VA_ARGS__ 4), \
    F(__VA_ARGS__ 5), F(__VA_ARGS__ 6), F(__VA_ARGS__ 7)
#define P3_I(r, o) P3_IDX(r, o)
#define P3_ROW(r, h) P3_8(P3_I, r, 8 * h +)
#define P3_P(o) P3_PAD(o)
#define P3_PROW(h) P3_8(P3_P, 8 * h +)
static const int8_t p3_idx[3][64] = {
    {P3_ROW(0, 0), P3_ROW(0, 1), P3_ROW(0, 2), P3_ROW(0, 3), P3_ROW(0, 4), P3_ROW(0, 5), P3_ROW(0, 6), P3_ROW(0, 7)},
    {P3_ROW(1, 0), P3_ROW(1, 1), P3_ROW(1, 2), P3_ROW(1, 3), P3_ROW(1, 4), P3_ROW(1, 5), P3_ROW(1, 6), P3_ROW(1, 7)},
    {P3_ROW(2, 0), P3_ROW(2, 1), P3_ROW(2, 2), P3_ROW(2, 3), P3_ROW(2, 4), P3_ROW(2, 5), P3_ROW(2, 6), P3_ROW(2, 7)}};
static const int8_t p3_pad[64] = {P3_PROW(0), P3_PROW(1), P3_PROW(2), P3_PROW(3), P3_PROW(4), P3_PROW(5), P3_PROW(6),
                                  P3_PROW(7)};

static void patches3(const uint8_t *planes, int wp, int oh, int ow, uint8_t *dst) {
    __m512i i0 = _mm512_loadu_si512(p3_idx[0]), i1 = _mm512_loadu_si512(p3_idx[1]), i2 = _mm512_loadu_si512(p3_idx[2]);
    __m512i pv = _mm512_loadu_si512(p3_pad);
    for (int y = 0; y < oh; y++) {
        const uint8_t *r = planes + (size_t)y * wp;
        uint8_t *d = dst + (size_t)y * ow * 12;
        for (int x = 0; x < ow; x += 4) {
            __m512i a = _mm512_shuffle_epi8(_mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)(r + x))), i0);
            __m512i b = _mm512_shuffle_epi8(_mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)(r + wp + x))), i1);
            __m512i c = _mm512_shuffle_epi8(_mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)(r + 2 * wp + x))), i2);
            int n = ow - x < 4 ? ow - x : 4;
            _mm512_mask_storeu_epi8(d + (size_t)x * 12, ((__mmask64)1 << (12 * n)) - 1,
                                    _mm512_or_si512(_mm512_ternarylogic_epi32(a, b, c, 0xFE), pv));
        }
    }
}

const cn_i8_kernel_set cn_i8_kernels_avx512_vnni = {.name = "avx512-vnni", .weight_bytes = 1, .pool = 1, .pairs = 1,
                                                    .conv = conv, .patches3 = patches3,
                                                    .quantise = quantise};
#else
typedef int cn_int8_avx512_unused;
#endif
