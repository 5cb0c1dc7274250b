/* The tiles of bf16_avx512.c's direct weight gradient on bf16 pairs (bf16.h's
 * cn_bf16_weight_grad), written once over a small vector vocabulary and included once per
 * vector width, as conv_chan_impl.h is:
 *   the float32 words (conv_fwd_impl.h; vec_ymm.h for ymm): vf, VL, VZERO, VLOAD, VSTORE; and
 *   VADD(a, b) (the add intrinsic: with `a + b` gcc allocated one tile's registers otherwise);
 *   the bf16 words: vbh (a vector of VL bf16 pairs), VLOAD_PAIRS(p) (the VL pair words at p),
 *   VBCAST_PAIR(w) (the pair word w in every lane), VDPBF16(acc, a, b) (acc plus, per lane,
 *   the two products of a's and b's pairs);
 *   WG(name) this instance's names; WG_NK_MAX, WG_MV_MAX the tile bounds.
 * Defines WG(wgrad_tiles)[nk - 1][mv - 1] (nk <= WG_NK_MAX, mv <= WG_MV_MAX), ld a multiple of VL. */

/* dwt[i][j*VL ..] += sum over the output rows oy and pixel pairs q < Q = ceil(out_w / 2) of
 * xt[i][oy*W2 + q] . d2[(oy*Q + q)*ld + j*VL ..], for the NK taps i and MV channel vectors j
 * (bf16.h: W2 = cn_bf16_wgrad_w2(g); xt: each tap's first x pair; d2: the dy pairs at the
 * tile's first channel; dwt (taps, ld) floats at the tile's first tap and channel). Per pixel
 * pair, MV loads of dy pairs and NK broadcasts of x pairs; NK, MV are constants after inlining. */
static inline __attribute__((always_inline)) void WG(wgrad_tile)(const int NK, const int MV, const cn_conv_geom *g,
                                                                 const uint32_t *const *xt, const uint32_t *d2, int ld,
                                                                 float *dwt) {
    vf acc[WG_NK_MAX][WG_MV_MAX];
    for (int i = 0; i < NK; i++)
        for (int j = 0; j < MV; j++) acc[i][j] = VZERO();
    const int w2 = cn_bf16_wgrad_w2(g), q2 = (g->out_w + 1) / 2;
    for (int oy = 0; oy < g->out_h; oy++)
        for (int q = 0, at = oy * w2; q < q2; q++, at++, d2 += ld) {
            vbh dv[WG_MV_MAX];
            for (int j = 0; j < MV; j++) dv[j] = VLOAD_PAIRS(d2 + j * VL);
            for (int i = 0; i < NK; i++) {
                vbh a = VBCAST_PAIR(xt[i][at]);
                for (int j = 0; j < MV; j++) acc[i][j] = VDPBF16(acc[i][j], a, dv[j]);
            }
        }
    for (int i = 0; i < NK; i++)
        for (int j = 0; j < MV; j++) {
            float *p = dwt + (size_t)i * ld + j * VL;
            VSTORE(p, VADD(VLOAD(p), acc[i][j]));
        }
}

/* the same type for every width (C11 lets a typedef be repeated) */
typedef void (*wgrad_fn)(const cn_conv_geom *, const uint32_t *const *, const uint32_t *, int, float *);
#define WGRAD_TILE(NK, MV) \
    static void WG(wgrad_##NK##_##MV)(const cn_conv_geom *g, const uint32_t *const *xt, const uint32_t *d2, int ld, \
                                      float *dwt) { WG(wgrad_tile)(NK, MV, g, xt, d2, ld, dwt); }
#define WGRAD_TILES(NK) WGRAD_TILE(NK, 1) WGRAD_TILE(NK, 2) WGRAD_TILE(NK, 3) WGRAD_TILE(NK, 4)
WGRAD_TILES(1) WGRAD_TILES(2) WGRAD_TILES(3) WGRAD_TILES(4) WGRAD_TILES(5) WGRAD_TILES(6)
WGRAD_TILES(7) WGRAD_TILES(8) WGRAD_TILES(9) WGRAD_TILES(10) WGRAD_TILES(11) WGRAD_TILES(12)
#define WGRAD_ROW(NK) { WG(wgrad_##NK##_1), WG(wgrad_##NK##_2), WG(wgrad_##NK##_3), WG(wgrad_##NK##_4) }
#if WG_NK_MAX != 12 || WG_MV_MAX != 4
#error "bf16_wgrad_impl.h: the table below is written for 12 x 4 tiles"
#endif
static const wgrad_fn WG(wgrad_tiles)[WG_NK_MAX][WG_MV_MAX] = {
    WGRAD_ROW(1), WGRAD_ROW(2), WGRAD_ROW(3), WGRAD_ROW(4), WGRAD_ROW(5), WGRAD_ROW(6),
    WGRAD_ROW(7), WGRAD_ROW(8), WGRAD_ROW(9), WGRAD_ROW(10), WGRAD_ROW(11), WGRAD_ROW(12),
};

#undef WGRAD_TILE
#undef WGRAD_TILES
#undef WGRAD_ROW
