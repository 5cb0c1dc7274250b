/* The CLI's numeric option parsers (tools/cli_args.h), unmodified: they call
 * exit(2) on a bad value, so exit is redirected here to a longjmp back into
 * the target and their stderr to /dev/null. Checked: an accepted value is in
 * range (and finite), and the whole string was a number. The input is split
 * at the first NUL: the text before it is the option value. */
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>

static jmp_buf fuzz_exit_jump;
static FILE *fuzz_null;
static int fuzz_exit_status;
static _Noreturn void fuzz_exit(int status) { fuzz_exit_status = status; longjmp(fuzz_exit_jump, 1); }
#define exit fuzz_exit
#undef stderr
#define stderr fuzz_null
#include "cli_args.h"
#undef exit
#undef stderr
#define stderr stderr

#include "fuzz_common.h"

const char *cli_command = "convnet fuzz";

static const struct { long lo, hi; } int_ranges[] = {{1, 100000}, {1, 65536}, {0, 2147483647}, {2, 100000000}, {1, 256}};
static const struct { double lo, hi; } double_ranges[] = {{1e-12, 100}, {0, 1}, {0, 10}, {1e-9, 0.999999}, {1, 1e12}};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!fuzz_null && !(fuzz_null = fopen("/dev/null", "w"))) abort();
    if (size > 256) return 0;
    char *value = fuzz_strdup(data, size);
    for (size_t r = 0; r < sizeof int_ranges / sizeof int_ranges[0]; r++) {
        volatile long v = 0;
        if (setjmp(fuzz_exit_jump) == 0) {
            v = cli_int("--n", value, int_ranges[r].lo, int_ranges[r].hi);
            if (v < int_ranges[r].lo || v > int_ranges[r].hi) abort();
            char *end;
            if (strtol(value, &end, 10) != v || *end) abort();
        } else if (fuzz_exit_status != 2) {
            abort();
        }
    }
    for (size_t r = 0; r < sizeof double_ranges / sizeof double_ranges[0]; r++) {
        volatile double v = 0;
        if (setjmp(fuzz_exit_jump) == 0) {
            v = cli_double("--f", value, double_ranges[r].lo, double_ranges[r].hi);
            if (!isfinite(v) || v < double_ranges[r].lo || v > double_ranges[r].hi) abort();
        } else if (fuzz_exit_status != 2) {
            abort();
        }
    }
    free(value);
    return 0;
}
