/* IDX reader through zlib. Inputs that start with the gzip magic (1f 8b) go in
 * as they are (corrupt streams, bad CRCs, concatenated members, trailing
 * garbage); any other input is first gzip-compressed here, so that mutations
 * of the IDX structure also reach the decompressing code paths. */
#include "fuzz_common.h"
#include "data/idx.h"
#include <zlib.h>

static void parse_both(const uint8_t *data, size_t size) {
    static const uint32_t magics[2] = {CN_IDX_MAGIC_IMAGES, CN_IDX_MAGIC_LABELS};
    for (int k = 0; k < 2; k++) {
        cn_idx idx;
        cn_status st = cn_idx_parse_memory(data, size, "fuzz.gz", magics[k], &idx);
        fuzz_check_error(st, "fuzz.gz");
        if (st == CN_OK) {
            size_t n = (size_t)idx.count * (size_t)idx.rows * (size_t)idx.cols;
            for (size_t i = 0; i < n; i++) fuzz_sink += idx.data[i];
        }
        cn_idx_free(&idx);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size >= 2 && data[0] == 0x1f && data[1] == 0x8b) {
        parse_both(data, size);
        return 0;
    }
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, 1, Z_DEFLATED, 15 + 16 /* gzip wrapper */, 8, Z_DEFAULT_STRATEGY) != Z_OK) abort();
    size_t cap = deflateBound(&z, (uLong)size) + 64;
    uint8_t *gz = malloc(cap);
    if (!gz) abort();
    z.next_in = (Bytef *)data;
    z.avail_in = (uInt)size;
    z.next_out = gz;
    z.avail_out = (uInt)cap;
    if (deflate(&z, Z_FINISH) != Z_STREAM_END) abort();
    size_t n = cap - z.avail_out;
    deflateEnd(&z);
    parse_both(gz, n);
    free(gz);
    return 0;
}
