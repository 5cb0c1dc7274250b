/* safetensors reader/writer: round trip, every validation error, atomic save,
 * and the committed PyTorch fixtures load. */
#include "harness.h"
#include "fixture.h"
#include "io/safetensors.h"
#include "core/error.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char tmpdir[256];

static void make_tmpdir(void) {
    if (tmpdir[0]) return;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/cn_test_st_XXXXXX");
    if (!mkdtemp(tmpdir)) { perror("mkdtemp"); exit(2); }
}

static void rm_tree(const char *dir) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", dir);
}

/* Reads a whole file into a new buffer. */
static unsigned char *slurp(const char *path, size_t *size) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return NULL;
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    unsigned char *buf = malloc(n > 0 ? (size_t)n : 1);
    if (buf && fread(buf, 1, (size_t)n, fp) != (size_t)n) { free(buf); buf = NULL; }
    fclose(fp);
    *size = (size_t)n;
    return buf;
}

/* A file image: 8-byte little-endian length of `json`, json, data_len bytes 0..255. */
static unsigned char *make_buf(const char *json, size_t data_len, size_t *size) {
    size_t n = strlen(json);
    *size = 8 + n + data_len;
    unsigned char *buf = malloc(*size);
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)((uint64_t)n >> (8 * i));
    memcpy(buf + 8, json, n);
    for (size_t i = 0; i < data_len; i++) buf[8 + n + i] = (unsigned char)i;
    return buf;
}

/* Opens the buffer and expects failure with `status` and `needle` in the message. */
static void expect_bad_buf(const unsigned char *buf, size_t size, cn_status status, const char *needle,
                           int line) {
    cn_st_file *f = (cn_st_file *)0x1;
    cn_clear_error();
    cn_status st = cn_st_open_memory(buf, size, "model.safetensors", &f);
    const char *msg = cn_last_error();
    if (st != status || f != NULL || !strstr(msg, needle) || !strstr(msg, "model.safetensors")) {
        harness_current_failed++;
        fprintf(stderr, "  FAIL %s:%d: status %s (expected %s), message \"%s\" (expected to contain \"%s\")\n",
                __FILE__, line, cn_status_name(st), cn_status_name(status), msg, needle);
    }
    if (st == CN_OK) cn_st_close(f);
}

static void expect_bad(const char *json, size_t data_len, const char *needle, int line) {
    size_t size;
    unsigned char *buf = make_buf(json, data_len, &size);
    expect_bad_buf(buf, size, CN_ERR_FORMAT, needle, line);
    free(buf);
}
#define BAD(json, data_len, needle) expect_bad(json, data_len, needle, __LINE__)

static void expect_good(const char *json, size_t data_len, int line) {
    size_t size;
    unsigned char *buf = make_buf(json, data_len, &size);
    cn_st_file *f = NULL;
    if (cn_st_open_memory(buf, size, "model.safetensors", &f) != CN_OK) {
        harness_current_failed++;
        fprintf(stderr, "  FAIL %s:%d: expected success, got \"%s\"\n", __FILE__, line, cn_last_error());
    }
    cn_st_close(f);
    free(buf);
}
#define GOOD(json, data_len) expect_good(json, data_len, __LINE__)

/* Builds a writer holding a few tensors of different dtypes. */
static cn_st_writer *sample_writer(void) {
    cn_st_writer *w = cn_st_writer_new();
    float a[6] = {1.5f, -2.25f, 3.0f, 1e-30f, -0.0f, 65504.0f};
    int64_t sa[2] = {2, 3};
    double d[3] = {0.1, -1e300, 3.0};
    int64_t sd[1] = {3};
    unsigned char u[3] = {0, 7, 255};
    int64_t i64 = -1234567890123LL;
    int64_t sz[2] = {0, 4};
    int32_t i32[2] = {-5, 2147483647};
    int64_t s2[1] = {2};
    uint16_t half[4] = {0x3c00, 0xc000, 0x0001, 0x7bff}; /* 1, -2, 2^-24, 65504 */
    uint16_t bf[2] = {0x3f80, 0xc0a0};                   /* 1, -5 */
    int64_t s4[1] = {4};
    CHECK(cn_st_writer_add(w, "0.weight", "F32", 2, sa, a) == CN_OK);
    CHECK(cn_st_writer_add(w, "u8", "U8", 1, sd, u) == CN_OK); /* makes later tensors unaligned */
    CHECK(cn_st_writer_add(w, "f64", "F64", 1, sd, d) == CN_OK);
    CHECK(cn_st_writer_add(w, "scalar", "I64", 0, NULL, &i64) == CN_OK);
    CHECK(cn_st_writer_add(w, "empty", "F32", 2, sz, NULL) == CN_OK);
    CHECK(cn_st_writer_add(w, "i32", "I32", 1, s2, i32) == CN_OK);
    CHECK(cn_st_writer_add(w, "half", "F16", 1, s4, half) == CN_OK);
    CHECK(cn_st_writer_add(w, "bf16", "BF16", 1, s2, bf) == CN_OK);
    CHECK(cn_st_writer_metadata(w, "preset", "seed002") == CN_OK);
    CHECK(cn_st_writer_metadata(w, "tricky", "a \"quoted\" \\ back\nslash\t\x01") == CN_OK);
    CHECK(cn_st_writer_metadata(w, "preset", "seed001") == CN_OK); /* replaces */
    return w;
}

static void check_sample(const cn_st_file *f) {
    CHECK(cn_st_count(f) == 8);
    const cn_st_tensor *t = cn_st_get(f, 0);
    CHECK(t && !strcmp(t->name, "0.weight") && !strcmp(t->dtype, "F32") && t->ndim == 2 &&
          t->shape[0] == 2 && t->shape[1] == 3 && t->offset == 0 && t->nbytes == 24);
    CHECK(cn_st_get(f, 8) == NULL && cn_st_get(f, -1) == NULL);
    CHECK(cn_st_find(f, "nope") == NULL);
    CHECK(!strcmp(cn_st_metadata(f, "preset"), "seed001"));
    CHECK(!strcmp(cn_st_metadata(f, "tricky"), "a \"quoted\" \\ back\nslash\t\x01"));
    CHECK(cn_st_metadata(f, "missing") == NULL);
    CHECK(cn_st_metadata_count(f) == 2);

    float *v = NULL;
    size_t n = 0;
    CHECK(cn_st_read_floats(f, "0.weight", 6, &v, &n) == CN_OK && n == 6);
    if (v) {
        CHECK(v[0] == 1.5f && v[1] == -2.25f && v[3] == 1e-30f && v[5] == 65504.0f);
        CHECK(signbit(v[4]));
    }
    free(v);
    CHECK(cn_st_read_floats(f, "f64", 0, &v, &n) == CN_OK && n == 3);
    if (v) CHECK(v[0] == 0.1f && isinf(v[1]) && v[1] < 0 && v[2] == 3.0f);
    free(v);
    double *dv = NULL;
    CHECK(cn_st_read_doubles(f, "f64", 3, &dv, NULL) == CN_OK);
    if (dv) CHECK(dv[0] == 0.1 && dv[1] == -1e300);
    free(dv);
    CHECK(cn_st_read_floats(f, "half", 4, &v, NULL) == CN_OK);
    if (v) CHECK(v[0] == 1.0f && v[1] == -2.0f && v[2] == ldexpf(1.0f, -24) && v[3] == 65504.0f);
    free(v);
    CHECK(cn_st_read_floats(f, "bf16", 2, &v, NULL) == CN_OK);
    if (v) CHECK(v[0] == 1.0f && v[1] == -5.0f);
    free(v);
    CHECK(cn_st_read_floats(f, "empty", 0, &v, &n) == CN_OK && n == 0);
    free(v);

    int64_t *iv = NULL;
    CHECK(cn_st_read_int64(f, "scalar", 1, &iv, &n) == CN_OK && n == 1);
    if (iv) CHECK(iv[0] == -1234567890123LL);
    free(iv);
    CHECK(cn_st_read_int64(f, "u8", 3, &iv, NULL) == CN_OK);
    if (iv) CHECK(iv[0] == 0 && iv[1] == 7 && iv[2] == 255);
    free(iv);
    CHECK(cn_st_read_int64(f, "i32", 2, &iv, NULL) == CN_OK);
    if (iv) CHECK(iv[0] == -5 && iv[1] == 2147483647);
    free(iv);

    const cn_st_tensor *u = cn_st_find(f, "u8");
    CHECK(u && u->nbytes == 3 && memcmp(cn_st_data(f, u), "\x00\x07\xff", 3) == 0);
    const cn_st_tensor *s = cn_st_find(f, "scalar");
    CHECK(s && s->ndim == 0 && cn_st_numel(s) == 1 && s->nbytes == 8);
}

TEST(round_trip) {
    make_tmpdir();
    char path[400];
    snprintf(path, sizeof path, "%s/rt.safetensors", tmpdir);
    cn_st_writer *w = sample_writer();
    CHECK(cn_st_writer_save(w, path) == CN_OK);
    cn_st_writer_free(w);

    cn_st_file *f = NULL;
    CHECK(cn_st_open(path, &f) == CN_OK);
    if (f) check_sample(f);
    cn_st_close(f);

    size_t size;
    unsigned char *buf = slurp(path, &size);
    CHECK(buf != NULL);
    if (buf) {
        CHECK(size >= 8 && (size - 8) % 1 == 0);
        uint64_t hl = 0;
        for (int i = 7; i >= 0; i--) hl = hl << 8 | buf[i];
        CHECK(hl % 8 == 0); /* header padded so the data section is 8-byte aligned */
        f = NULL;
        CHECK(cn_st_open_memory(buf, size, "mem", &f) == CN_OK);
        if (f) check_sample(f);
        cn_st_close(f);
        free(buf);
    }
}

TEST(read_errors) {
    size_t size;
    unsigned char *buf = make_buf("{\"a\":{\"dtype\":\"I64\",\"shape\":[3],\"data_offsets\":[0,24]}}", 24, &size);
    cn_st_file *f = NULL;
    CHECK(cn_st_open_memory(buf, size, "x.safetensors", &f) == CN_OK);
    float *v = NULL;
    CHECK(cn_st_read_floats(f, "a", 0, &v, NULL) == CN_ERR_UNSUPPORTED && v == NULL);
    CHECK(strstr(cn_last_error(), "x.safetensors: tensor \"a\" has dtype I64") != NULL);
    int64_t *iv = NULL;
    CHECK(cn_st_read_int64(f, "a", 4, &iv, NULL) == CN_ERR_SHAPE && iv == NULL);
    CHECK(strstr(cn_last_error(), "has 3 elements (shape [3]), expected 4") != NULL);
    CHECK(cn_st_read_int64(f, "b", 0, &iv, NULL) == CN_ERR_FORMAT);
    CHECK(strstr(cn_last_error(), "no tensor named \"b\"") != NULL);
    double *dv = NULL;
    CHECK(cn_st_read_doubles(f, "a", 0, &dv, NULL) == CN_ERR_UNSUPPORTED);
    cn_st_close(f);
    free(buf);

    f = (cn_st_file *)0x1;
    CHECK(cn_st_open("/nonexistent/dir/x.safetensors", &f) == CN_ERR_IO && f == NULL);
    CHECK(strstr(cn_last_error(), "/nonexistent/dir/x.safetensors: cannot open") != NULL);
    CHECK(cn_st_open("/tmp", &f) != CN_OK && f == NULL);
}

#define T1(dtype, shape, offs) "{\"t\":{\"dtype\":\"" dtype "\",\"shape\":" shape ",\"data_offsets\":" offs "}}"

TEST(validation_errors) {
    size_t size;
    /* length prefix */
    unsigned char small[7] = {0};
    expect_bad_buf(small, 7, CN_ERR_FORMAT, "file is 7 bytes, expected at least 8", __LINE__);
    unsigned char huge[16] = {0x01, 0xe1, 0xf5, 0x05, 0, 0, 0, 0}; /* 100,000,001 */
    expect_bad_buf(huge, 16, CN_ERR_FORMAT, "offset 0: header length 100000001 exceeds the limit", __LINE__);
    unsigned char big64[16] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    expect_bad_buf(big64, 16, CN_ERR_FORMAT, "exceeds the limit", __LINE__);
    unsigned char *buf = make_buf("{}", 0, &size);
    buf[0] = 3; /* claims 3 header bytes, only 2 follow */
    expect_bad_buf(buf, size, CN_ERR_FORMAT, "header length 3 exceeds the 2 bytes after the length", __LINE__);
    free(buf);
    unsigned char zero[8] = {0};
    expect_bad_buf(zero, 8, CN_ERR_FORMAT, "header length 0 is too small", __LINE__);

    /* JSON structure */
    BAD("{\"t\":", 0, "offset 12: header is not valid JSON");
    BAD("{\"a\" 1\n}", 0, "header is not valid JSON (near \"1?}\")");
    BAD("{\"t\":1,}", 0, "not valid JSON");
    BAD("{\"a\":{}}  x", 0, "unexpected bytes after the JSON header");
    BAD("{} {}", 0, "unexpected bytes after the JSON header");
    BAD("[1, 2]", 0, "header is an array, expected a JSON object");
    BAD("\"str\"", 0, "header is a string, expected a JSON object");
    BAD("{\"t\":[1]}", 0, "tensor \"t\" is an array, expected an object");
    BAD("{\"\":{\"dtype\":\"U8\",\"shape\":[],\"data_offsets\":[0,1]}}", 1, "a tensor has an empty name");
    char longname[400];
    snprintf(longname, sizeof longname, "{\"%0128d\":{\"dtype\":\"U8\",\"shape\":[],\"data_offsets\":[0,1]}}", 0);
    BAD(longname, 1, "is 128 bytes long, expected at most 127");
    snprintf(longname, sizeof longname, "{\"%0127d\":{\"dtype\":\"U8\",\"shape\":[],\"data_offsets\":[0,1]}}", 0);
    GOOD(longname, 1);
    BAD("{\"a\\nb\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1,
        "tensor name \"a?b\" contains a control character");
    BAD("{\"__metadata__\":{\"k\\n\":1}}", 0, "entry \"k?\" is a number");

    /* fields */
    BAD("{\"t\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "tensor \"t\": missing field \"dtype\"");
    BAD("{\"t\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, "missing field \"shape\"");
    BAD("{\"t\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, "missing field \"data_offsets\"");
    BAD("{\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":1}}", 4, "unknown field \"x\"");
    BAD("{\"t\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
        "field \"dtype\" appears twice");
    BAD(T1("F33", "[1]", "[0,4]"), 4, "unknown dtype \"F33\", expected one of F32");
    BAD(T1("f32", "[1]", "[0,4]"), 4, "unknown dtype \"f32\"");
    BAD("{\"t\":{\"dtype\":32,\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "dtype is a number, expected a string");

    /* shape */
    BAD(T1("F32", "7", "[0,4]"), 4, "shape is a number, expected an array");
    BAD(T1("F32", "[-1]", "[0,4]"), 4, "shape[0] is not a non-negative integer");
    BAD(T1("F32", "[1,1.5]", "[0,4]"), 4, "shape[1] is not a non-negative integer");
    BAD(T1("F32", "[\"1\"]", "[0,4]"), 4, "shape[0] is a string, expected a non-negative integer");
    BAD(T1("F32", "[1e300]", "[0,4]"), 4, "shape[0] is not a non-negative integer");
    BAD(T1("F32", "[1,1,1,1,1,1,1,1,1]", "[0,4]"), 4, "shape has 9 dimensions, expected at most 8");
    GOOD(T1("F32", "[1,1,1,1,1,1,1,1]", "[0,4]"), 4);
    BAD(T1("F32", "[4294967296,4294967296]", "[0,4]"), 4, "is too large (byte size overflows)");
    BAD(T1("F64", "[2305843009213693952]", "[0,0]"), 0, "not a non-negative integer"); /* 2^61 > 2^53 */
    BAD(T1("F64", "[4503599627370496, 4096]", "[0,0]"), 0, "too large");

    /* data_offsets */
    BAD(T1("F32", "[1]", "[0]"), 4, "data_offsets is not [begin, end]");
    BAD(T1("F32", "[1]", "[0,4,8]"), 4, "data_offsets is not [begin, end]");
    BAD(T1("F32", "[1]", "[0,-4]"), 4, "data_offsets is not [begin, end]");
    BAD(T1("F32", "[1]", "{}"), 4, "data_offsets is not [begin, end]");
    BAD(T1("F32", "[1]", "[4,0]"), 4, "data_offsets [4, 0] have begin > end");
    BAD("{\"0.weight\":{\"dtype\":\"F32\",\"shape\":[4,25],\"data_offsets\":[0,400]}}", 288,
        "model.safetensors: tensor \"0.weight\": data_offsets [0, 400] exceed the data section (288 bytes)");
    BAD(T1("F32", "[2]", "[0,4]"), 4, "data_offsets [0, 4] span 4 bytes, expected 8 for F32 shape [2]");
    BAD(T1("F32", "[1]", "[0,8]"), 8, "span 8 bytes, expected 4");

    /* layout: overlap, holes, trailing bytes, duplicate names */
    BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
        "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8,
        "tensor \"b\": data_offsets [4, 8] overlap tensor \"a\" [0, 8]");
    BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
        "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "overlap");
    BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
        "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}", 12, "data section bytes [4, 8) belong to no tensor");
    BAD(T1("F32", "[1]", "[0,4]"), 5, "data section has 5 bytes but tensors end at byte 4");
    BAD("{}", 3, "data section has 3 bytes but the header lists no tensors");
    BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
        "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "tensor name \"a\" appears twice");
    /* zero-size tensors may sit at the boundaries */
    GOOD("{\"e\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]},"
         "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
         "\"z\":{\"dtype\":\"BOOL\",\"shape\":[0,3],\"data_offsets\":[4,4]}}", 4);
    GOOD("{}", 0);
    GOOD("{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}    \n", 1); /* padding */

    /* __metadata__ */
    BAD("{\"__metadata__\":[]}", 0, "\"__metadata__\" is an array, expected an object of strings");
    BAD("{\"__metadata__\":{\"k\":1}}", 0, "\"__metadata__\" entry \"k\" is a number, expected a string");
    BAD("{\"__metadata__\":{\"k\":\"a\",\"k\":\"b\"}}", 0, "\"__metadata__\" has key \"k\" twice");
    BAD("{\"__metadata__\":{},\"__metadata__\":{}}", 0, "\"__metadata__\" appears twice");
    GOOD("{\"__metadata__\":{\"k\":\"v\"}}", 0);

    /* files: truncated, grown header */
    make_tmpdir();
    char path[400];
    snprintf(path, sizeof path, "%s/trunc.safetensors", tmpdir);
    FILE *fp = fopen(path, "wb");
    buf = make_buf(T1("F32", "[2]", "[0,8]"), 8, &size);
    fwrite(buf, 1, size - 3, fp);
    fclose(fp);
    free(buf);
    cn_st_file *f = (cn_st_file *)0x1;
    CHECK(cn_st_open(path, &f) == CN_ERR_FORMAT && f == NULL);
    CHECK(strstr(cn_last_error(), "trunc.safetensors: tensor \"t\": data_offsets [0, 8] exceed the data section (5 bytes)"));
}

TEST(writer_errors) {
    cn_st_writer *w = cn_st_writer_new();
    int64_t s1[1] = {1}, neg[1] = {-1}, s9[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    float x = 1.0f;
    char longname[200];
    memset(longname, 'n', 128);
    longname[128] = '\0';
    CHECK(cn_st_writer_add(w, "a", "F32", 1, s1, &x) == CN_OK);
    CHECK(cn_st_writer_add(w, "a", "F32", 1, s1, &x) == CN_ERR_ARG && strstr(cn_last_error(), "added twice"));
    CHECK(cn_st_writer_add(w, "b", "F31", 1, s1, &x) == CN_ERR_ARG && strstr(cn_last_error(), "unknown dtype"));
    CHECK(cn_st_writer_add(w, "b", "F32", 9, s9, &x) == CN_ERR_ARG);
    CHECK(cn_st_writer_add(w, "b", "F32", -1, s1, &x) == CN_ERR_ARG);
    CHECK(cn_st_writer_add(w, "b", "F32", 1, neg, &x) == CN_ERR_ARG);
    CHECK(cn_st_writer_add(w, "b", "F32", 1, s1, NULL) == CN_ERR_ARG);
    CHECK(cn_st_writer_add(w, "", "F32", 1, s1, &x) == CN_ERR_ARG);
    CHECK(cn_st_writer_add(w, longname, "F32", 1, s1, &x) == CN_ERR_ARG);
    CHECK(cn_st_writer_add(w, "__metadata__", "F32", 1, s1, &x) == CN_ERR_ARG);
    CHECK(cn_st_writer_metadata(w, "k", NULL) == CN_ERR_ARG);
    CHECK(cn_st_writer_add(w, "a\tb", "F32", 1, s1, &x) == CN_ERR_ARG);
    longname[127] = '\0';
    CHECK(cn_st_writer_add(w, longname, "F32", 1, s1, &x) == CN_OK);
    cn_st_writer_free(w);
    cn_st_writer_free(NULL);
}

/* True if `path` holds exactly the bytes in `want`. */
static int file_equals(const char *path, const unsigned char *want, size_t n) {
    size_t size;
    unsigned char *got = slurp(path, &size);
    int eq = got && size == n && memcmp(got, want, n) == 0;
    free(got);
    return eq;
}

static int tmp_exists(const char *path) {
    char tmp[512];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    struct stat sb;
    return lstat(tmp, &sb) == 0;
}

TEST(atomic_save) {
    make_tmpdir();
    char dir[400], path[500];
    snprintf(dir, sizeof dir, "%s/save", tmpdir);
    CHECK(mkdir(dir, 0755) == 0);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);

    cn_st_writer *w = sample_writer();
    CHECK(cn_st_writer_save(w, path) == CN_OK);
    cn_st_writer_free(w);
    size_t old_size;
    unsigned char *old = slurp(path, &old_size);
    CHECK(old != NULL);
    CHECK(!tmp_exists(path));

    /* A bigger file to overwrite it with. */
    cn_st_writer *big = cn_st_writer_new();
    int64_t shape[1] = {100000};
    float *zeros = calloc(100000, sizeof(float));
    CHECK(cn_st_writer_add(big, "big", "F32", 1, shape, zeros) == CN_OK);
    free(zeros);

    /* 1. The write fails half-way (file size limit): old file intact, tmp removed. */
    struct rlimit saved;
    getrlimit(RLIMIT_FSIZE, &saved);
    struct rlimit lim = saved;
    lim.rlim_cur = 4096;
    void (*oldsig)(int) = signal(SIGXFSZ, SIG_IGN);
    CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0);
    cn_status st = cn_st_writer_save(big, path);
    setrlimit(RLIMIT_FSIZE, &saved);
    signal(SIGXFSZ, oldsig);
    CHECK(st == CN_ERR_IO);
    CHECK_MSG(strstr(cn_last_error(), "write failed") != NULL, "%s", cn_last_error());
    CHECK(old && file_equals(path, old, old_size));
    CHECK(!tmp_exists(path));

    /* 2. The directory is not writable (only meaningful when not root). */
    if (geteuid() != 0) {
        CHECK(chmod(dir, 0555) == 0);
        st = cn_st_writer_save(big, path);
        chmod(dir, 0755);
        CHECK(st == CN_ERR_IO && strstr(cn_last_error(), "cannot create temporary file"));
        CHECK(old && file_equals(path, old, old_size));
        CHECK(!tmp_exists(path));
    }

    /* 3. The temporary file cannot be created (its name is taken by a directory). */
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    CHECK(mkdir(tmp, 0755) == 0);
    st = cn_st_writer_save(big, path);
    CHECK(st == CN_ERR_IO && strstr(cn_last_error(), "cannot create temporary file"));
    CHECK(old && file_equals(path, old, old_size));
    rmdir(tmp);

    /* 4. The rename fails (target is a non-empty directory): tmp removed. */
    char dpath[600], inner[700];
    snprintf(dpath, sizeof dpath, "%s/adir", dir);
    snprintf(inner, sizeof inner, "%s/x", dpath);
    CHECK(mkdir(dpath, 0755) == 0 && mkdir(inner, 0755) == 0);
    st = cn_st_writer_save(big, dpath);
    CHECK(st == CN_ERR_IO && strstr(cn_last_error(), "cannot rename"));
    CHECK(!tmp_exists(dpath));

    /* 5. Missing directory. */
    char missing[600];
    snprintf(missing, sizeof missing, "%s/no/such/dir.safetensors", dir);
    CHECK(cn_st_writer_save(big, missing) == CN_ERR_IO);

    /* And a successful overwrite replaces it. */
    CHECK(cn_st_writer_save(big, path) == CN_OK);
    cn_st_file *f = NULL;
    CHECK(cn_st_open(path, &f) == CN_OK && cn_st_count(f) == 1 && cn_st_find(f, "big"));
    cn_st_close(f);
    CHECK(!tmp_exists(path));
    cn_st_writer_free(big);
    free(old);
}

/* Shape of tensor `name` equals dims[0..ndim-1]. */
static int has_shape(const cn_st_file *f, const char *name, const char *dtype, int ndim, const int64_t *dims) {
    const cn_st_tensor *t = cn_st_find(f, name);
    if (!t || strcmp(t->dtype, dtype) || t->ndim != ndim) return 0;
    for (int i = 0; i < ndim; i++) if (t->shape[i] != dims[i]) return 0;
    return 1;
}

/* Every committed safetensors fixture passes the strict reader. */
TEST(all_fixtures_open) {
    static const char *const files[] = {
        "layers/avgpool_k5", "layers/batchnorm2d", "layers/conv1x1_pad1", "layers/conv3x3_pad0_bias",
        "layers/conv3x3_pad1_nobias", "layers/conv5x5_stride2_pad2", "layers/conv_cin1", "layers/flatten",
        "layers/gap", "layers/linear", "layers/log_softmax", "layers/maxpool_k2", "layers/maxpool_k3_s2",
        "layers/relu", "losses/cross_entropy", "losses/cross_entropy_smooth", "losses/nll",
        "presets/seed000", "presets/seed001", "presets/seed002", "presets/seed003", "presets/seed004",
        "optim/sgd", "optim/sgd_momentum", "optim/sgd_nesterov_wd", "optim/sgd_momentum_dampening",
        "optim/adam", "optim/adam_wd", "optim/adamw", "sched/steplr", "sched/plateau", "sched/onecycle",
        "sched/onecycle_adam", "sched/cosine",
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char rel[128];
        snprintf(rel, sizeof rel, "%s.safetensors", files[i]);
        cn_st_file *f = fixture_open(rel);
        CHECK_MSG(f != NULL && cn_st_count(f) > 0, "%s", rel);
        cn_st_close(f);
    }
}

/* One committed fixture of each kind loads, with the names, shapes and
 * metadata the other tests rely on; a few values are re-derived here as a
 * check of both the fixture semantics and fixture.h. */
TEST(torch_fixtures_load) {
    /* layers: conv */
    cn_st_file *f = fixture_open("layers/conv3x3_pad0_bias.safetensors");
    CHECK(f != NULL);
    if (f) {
        CHECK(has_shape(f, "input", "F32", 4, (int64_t[]){3, 3, 8, 8}));
        CHECK(has_shape(f, "output", "F32", 4, (int64_t[]){3, 4, 6, 6}));
        CHECK(has_shape(f, "grad_output", "F32", 4, (int64_t[]){3, 4, 6, 6}));
        CHECK(has_shape(f, "grad_input", "F32", 4, (int64_t[]){3, 3, 8, 8}));
        CHECK(has_shape(f, "weight", "F32", 4, (int64_t[]){4, 3, 3, 3}));
        CHECK(has_shape(f, "grad_weight", "F32", 4, (int64_t[]){4, 3, 3, 3}));
        CHECK(has_shape(f, "bias", "F32", 1, (int64_t[]){4}));
        CHECK(has_shape(f, "grad_bias", "F32", 1, (int64_t[]){4}));
        CHECK(!strcmp(fixture_meta(f, "layer"), "conv2d out=4 k=3 stride=1 pad=0 bias=true"));
        CHECK(!strcmp(fixture_meta(f, "input"), "3x8x8"));
        CHECK(fixture_meta_num(f, "batch") == 3);
        /* grad_bias = sum of grad_output over N, H, W */
        size_t n;
        float *go = fixture_floats(f, "grad_output", &n), *gb = fixture_floats(f, "grad_bias", NULL);
        if (go && gb) {
            float sums[4] = {0};
            for (size_t i = 0; i < n; i++) sums[(i / 36) % 4] += go[i];
            CHECK_ALLCLOSE(sums, gb, 4, FIXTURE_TOL);
        }
        free(go);
        free(gb);
    }
    cn_st_close(f);

    /* layers: batchnorm running statistics (unbiased variance, momentum 0.1) */
    f = fixture_open("layers/batchnorm2d.safetensors");
    CHECK(f != NULL);
    if (f) {
        size_t n;
        float *x = fixture_floats(f, "input", &n), *rm = fixture_floats(f, "running_mean", NULL);
        float *rv = fixture_floats(f, "running_var", NULL);
        int64_t *nbt = fixture_ints(f, "num_batches_tracked", NULL);
        CHECK(n == 3 * 5 * 36 && cn_st_find(f, "eval_output") && cn_st_find(f, "grad_weight"));
        CHECK(nbt && nbt[0] == 1);
        if (x && rm && rv) {
            float want_mean[5], want_var[5];
            for (int c = 0; c < 5; c++) {
                double s = 0, ss = 0;
                for (int b = 0; b < 3; b++) for (int i = 0; i < 36; i++) s += x[(b * 5 + c) * 36 + i];
                double mean = s / 108;
                for (int b = 0; b < 3; b++) for (int i = 0; i < 36; i++) {
                    double d = x[(b * 5 + c) * 36 + i] - mean;
                    ss += d * d;
                }
                want_mean[c] = (float)(0.1 * mean);
                want_var[c] = (float)(0.9 + 0.1 * ss / 107);
            }
            CHECK_ALLCLOSE(rm, want_mean, 5, FIXTURE_TOL);
            CHECK_ALLCLOSE(rv, want_var, 5, FIXTURE_TOL);
        }
        free(x); free(rm); free(rv); free(nbt);
    }
    cn_st_close(f);

    /* losses: cross-entropy with label smoothing 0.1, recomputed */
    f = fixture_open("losses/cross_entropy_smooth.safetensors");
    CHECK(f != NULL);
    if (f) {
        size_t n, nt;
        float *z = fixture_floats(f, "logits", &n), *loss = fixture_floats(f, "loss", NULL);
        int64_t *y = fixture_ints(f, "target", &nt);
        CHECK(fixture_meta_num(f, "label_smoothing") == 0.1 && cn_st_find(f, "grad"));
        if (z && loss && y && n == nt * 10) {
            double total = 0;
            for (size_t b = 0; b < nt; b++) {
                const float *r = z + 10 * b;
                double mx = r[0], lse = 0, mean_logp = 0;
                for (int k = 1; k < 10; k++) if (r[k] > mx) mx = r[k];
                for (int k = 0; k < 10; k++) lse += exp(r[k] - mx);
                lse = mx + log(lse);
                for (int k = 0; k < 10; k++) mean_logp += (r[k] - lse) / 10;
                total += -0.9 * (r[y[b]] - lse) - 0.1 * mean_logp;
            }
            float want = (float)(total / (double)nt);
            CHECK_ALLCLOSE(loss, &want, 1, FIXTURE_TOL);
        }
        free(z); free(loss); free(y);
    }
    cn_st_close(f);

    /* presets: names follow the nn.Sequential state dict */
    f = fixture_open("presets/seed000.safetensors");
    CHECK(f != NULL);
    if (f) {
        CHECK(!strcmp(fixture_meta(f, "preset"), "seed000") && !strcmp(fixture_meta(f, "dropout"), "0"));
        CHECK(!strcmp(fixture_meta(f, "loss"), "cross_entropy"));
        CHECK(has_shape(f, "input", "F32", 4, (int64_t[]){4, 1, 28, 28}));
        CHECK(has_shape(f, "target", "I64", 1, (int64_t[]){4}));
        CHECK(has_shape(f, "output", "F32", 2, (int64_t[]){4, 10}));
        CHECK(has_shape(f, "loss", "F32", 1, (int64_t[]){1})); /* scalars are stored as [1] */
        CHECK(has_shape(f, "0.weight", "F32", 4, (int64_t[]){16, 1, 3, 3}));
        CHECK(has_shape(f, "1.num_batches_tracked", "I64", 1, (int64_t[]){1}));
        CHECK(has_shape(f, "14.weight", "F32", 2, (int64_t[]){10, 40}));
        CHECK(has_shape(f, "grad.14.bias", "F32", 1, (int64_t[]){10}));
        CHECK(has_shape(f, "after.9.running_var", "F32", 1, (int64_t[]){40}));
        size_t params = 0;
        for (int i = 0; i < cn_st_count(f); i++) {
            const cn_st_tensor *t = cn_st_get(f, i);
            if (!strncmp(t->name, "grad.", 5)) params += cn_st_numel(t);
        }
        CHECK(params == 16946);
    }
    cn_st_close(f);

    /* optim: plain SGD step p1 = p0 - lr * g0 */
    f = fixture_open("optim/sgd.safetensors");
    CHECK(f != NULL);
    if (f) {
        float *p0 = fixture_floats(f, "param0", NULL), *g0 = fixture_floats(f, "grad.0", NULL);
        float *p1 = fixture_floats(f, "param.0", NULL);
        CHECK(cn_st_find(f, "param.4") && cn_st_find(f, "grad.4"));
        CHECK(fixture_meta_num(f, "lr") == 0.1 && !strcmp(fixture_meta(f, "nesterov"), "false"));
        if (p0 && g0 && p1) {
            float want[12];
            for (int i = 0; i < 12; i++) want[i] = p0[i] - 0.1f * g0[i];
            CHECK_ALLCLOSE(p1, want, 12, 1e-6);
        }
        free(p0); free(g0); free(p1);
    }
    cn_st_close(f);

    /* sched: StepLR halves every 3 steps */
    f = fixture_open("sched/steplr.safetensors");
    CHECK(f != NULL);
    if (f) {
        size_t n;
        double *lr = fixture_doubles(f, "lr", &n);
        const double want[12] = {0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025, 0.025, 0.0125, 0.0125, 0.0125};
        CHECK(n == 12 && !strcmp(cn_st_find(f, "lr")->dtype, "F64"));
        if (lr && n == 12) CHECK_ALLCLOSE_D(lr, want, 12, 1e-12);
        free(lr);
    }
    cn_st_close(f);
    f = fixture_open("sched/onecycle.safetensors");
    CHECK(f && cn_st_find(f, "lr") && cn_st_find(f, "momentum") && fixture_meta_num(f, "total_steps") == 50);
    cn_st_close(f);
}

static double seconds_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* A header of `keys` metadata keys and `tensors` one-byte U8 tensors (names k<i>, t<i>, in reverse order). */
static char *many_entries_json(int keys, int tensors) {
    size_t cap = (size_t)keys * 24 + (size_t)tensors * 80 + 64, len = 0;
    char *j = malloc(cap);
    len += (size_t)snprintf(j + len, cap - len, "{\"__metadata__\":{");
    for (int i = keys - 1; i >= 0; i--) len += (size_t)snprintf(j + len, cap - len, "%s\"k%d\":\"%d\"", i < keys - 1 ? "," : "", i, i);
    len += (size_t)snprintf(j + len, cap - len, "}");
    for (int i = tensors - 1; i >= 0; i--)
        len += (size_t)snprintf(j + len, cap - len, ",\"t%d\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[%d,%d]}",
                                i, i, i + 1);
    snprintf(j + len, cap - len, "}");
    return j;
}

/* The duplicate-key check was pairwise: 80,000 metadata keys took 6 s, 2 million over a minute.
 * Now keys are capped (CN_ST_MAX_METADATA), duplicates found by sorting, lookups bisect. */
TEST(many_keys_and_tensors_are_fast) {
    double t0 = seconds_now();
    char *json = many_entries_json(2000000, 0);
    size_t size;
    unsigned char *buf = make_buf(json, 0, &size);
    expect_bad_buf(buf, size, CN_ERR_UNSUPPORTED, "\"__metadata__\" has 2000000 keys; at most 4096 are read", __LINE__);
    free(buf); free(json);
    CHECK_MSG(seconds_now() - t0 < 20, "2 million keys took %.1f s", seconds_now() - t0);

    /* The most keys allowed, and 20,000 tensors: every one found by name. */
    t0 = seconds_now();
    json = many_entries_json(CN_ST_MAX_METADATA, 20000);
    buf = make_buf(json, 20000, &size);
    cn_st_file *f = NULL;
    CHECK_MSG(cn_st_open_memory(buf, size, "many.safetensors", &f) == CN_OK, "%s", cn_last_error());
    int found = 0;
    char name[32];
    for (int i = 0; f && i < 20000; i++) {
        snprintf(name, sizeof name, "t%d", i);
        const cn_st_tensor *t = cn_st_find(f, name);
        found += t && t->offset == (size_t)i;
    }
    for (int i = 0; f && i < CN_ST_MAX_METADATA; i++) {
        char key[32], want[32];
        snprintf(key, sizeof key, "k%d", i);
        snprintf(want, sizeof want, "%d", i);
        const char *v = cn_st_metadata(f, key);
        found += v && !strcmp(v, want);
    }
    CHECK_MSG(found == 20000 + CN_ST_MAX_METADATA, "found %d", found);
    CHECK(f && !cn_st_find(f, "t20000") && !cn_st_find(f, "") && !cn_st_metadata(f, "k") && !cn_st_metadata(f, "k4096"));
    CHECK_MSG(seconds_now() - t0 < 20, "%d keys and 20,000 tensors took %.1f s", CN_ST_MAX_METADATA, seconds_now() - t0);
    cn_st_close(f);
    free(buf); free(json);
    /* a repeated key among thousands is still found */
    json = many_entries_json(3000, 1);
    char *dup = strstr(json, "\"k1234\"");
    memcpy(dup, "\"k2345\"", 7);
    buf = make_buf(json, 1, &size);
    expect_bad_buf(buf, size, CN_ERR_FORMAT, "\"__metadata__\" has key \"k2345\" twice", __LINE__);
    free(buf); free(json);
}

TEST(allclose_helper) {
    float a[3] = {1.0f, 1000.0f, 0.0f}, e[3] = {1.00005f, 1000.05f, 0.00005f};
    CHECK(fixture_allclose_impl(a, e, NULL, NULL, 3, 1e-4, __FILE__, __LINE__, "a", "e"));
    CHECK(fixture_err(1000.0, 1000.2) < 1e-3 && fixture_err(0.0, 1e-3) == 1e-3);
    CHECK(isinf(fixture_err(NAN, 1.0)) && fixture_err(NAN, NAN) == 0.0);
    float bad[3] = {1.0f, 1000.0f, 0.01f};
    fflush(stderr);
    int saved = dup(2), devnull = open("/dev/null", O_WRONLY); /* silence the expected report */
    if (devnull >= 0) dup2(devnull, 2);
    bool ok = fixture_allclose_impl(bad, e, NULL, NULL, 3, 1e-4, __FILE__, __LINE__, "bad", "e");
    fflush(stderr);
    if (saved >= 0) { dup2(saved, 2); close(saved); }
    if (devnull >= 0) close(devnull);
    CHECK(!ok);
}

int main(void) {
    RUN(round_trip);
    RUN(read_errors);
    RUN(validation_errors);
    RUN(writer_errors);
    RUN(atomic_save);
    RUN(all_fixtures_open);
    RUN(torch_fixtures_load);
    RUN(many_keys_and_tensors_are_fast);
    RUN(allclose_helper);
    if (tmpdir[0]) rm_tree(tmpdir);
    return test_summary();
}
