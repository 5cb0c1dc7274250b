/* The data options shared by train, eval and export. See cli_data.h. */
#include "cli_data.h"
#include "cli_args.h"
#include <stdio.h>

const char *const cli_datasets[] = {"mnist", "fashion-mnist", "kmnist", "idx", "folder", "csv", "cifar10", NULL};

/* "A x B [x C]" sides: n numbers 1..max separated by 'x'. */
static void parse_dims(const char *option, const char *arg, int n, const int *max, int *out, const char *expected) {
    const char *p = arg;
    for (int i = 0; i < n; i++) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (errno || end == p || v < 1 || v > max[i] || (i + 1 < n ? *end != 'x' : *end != '\0'))
            cli_usage_error(option, arg, expected);
        out[i] = (int)v;
        p = end + 1;
    }
}

static int parse_norm(const char *option, const char *arg, float *values) {
    int n = cn_parse_floats(arg, values, CN_MAX_CHANNELS);
    if (n == 0) cli_usage_error(option, arg, "1 to 4 comma-separated numbers, e.g. 0.4914,0.4822,0.4465");
    return n;
}

static int mean_count, std_count;

int cli_data_option(int code, const char *arg, cn_data_options *d) {
    static const int side_max[2] = {CN_MAX_SIDE, CN_MAX_SIDE}, shape_max[3] = {CN_MAX_CHANNELS, CN_MAX_SIDE, CN_MAX_SIDE};
    int dims[3];
    switch (code) {
    case CLI_O_RESIZE:
        parse_dims("--resize", arg, 2, side_max, dims, "HxW with sides 1..256, e.g. 32x32");
        d->resize_rows = dims[0];
        d->resize_cols = dims[1];
        return 1;
    case CLI_O_GRAYSCALE: d->grayscale = 1; return 1;
    case CLI_O_SKIP_BAD: d->skip_bad = 1; return 1;
    case CLI_O_SHAPE:
        parse_dims("--shape", arg, 3, shape_max, dims, "CxHxW with 1..4 channels and sides 1..256, e.g. 1x28x28");
        d->channels = dims[0];
        d->rows = dims[1];
        d->cols = dims[2];
        return 1;
    case CLI_O_MEAN: mean_count = parse_norm("--mean", arg, d->mean); return 1;
    case CLI_O_STD:
        std_count = parse_norm("--std", arg, d->std);
        for (int c = 0; c < std_count; c++)
            if (!(d->std[c] > 0)) cli_usage_error("--std", arg, "values > 0");
        return 1;
    default: return 0;
    }
}

void cli_data_finish(cn_data_options *d) {
    if (mean_count != std_count) {
        fprintf(stderr, "%s: --mean has %d value%s and --std %d; give both, with as many values (1 or one per channel) "
                "(see '%s --help')\n", cli_command, mean_count, mean_count == 1 ? "" : "s", std_count, cli_command);
        exit(2);
    }
    d->norm_channels = mean_count;
}
