/* Strict parsing of numeric command-line values: the whole string must be a
 * number in range, otherwise one clear message and exit status 2. */
#ifndef CONVNET_CLI_ARGS_H
#define CONVNET_CLI_ARGS_H
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Name of the running subcommand for messages, e.g. "convnet train" (set by main, tools/convnet.c). */
extern const char *cli_command;

static inline void __attribute__((noreturn)) cli_usage_error(const char *option, const char *value, const char *expected) {
    fprintf(stderr, "%s: %s '%s': expected %s (see '%s --help')\n", cli_command, option, value, expected, cli_command);
    exit(2);
}

static inline long cli_int(const char *option, const char *value, long lo, long hi) {
    char *end;
    errno = 0;
    long v = strtol(value, &end, 10);
    if (errno || end == value || *end || v < lo || v > hi) {
        char expected[96];
        snprintf(expected, sizeof expected, "an integer from %ld to %ld", lo, hi);
        cli_usage_error(option, value, expected);
    }
    return v;
}

static inline double cli_double(const char *option, const char *value, double lo, double hi) {
    char *end;
    errno = 0;
    double v = strtod(value, &end);
    if (errno || end == value || *end || !isfinite(v) || v < lo || v > hi) {
        char expected[96];
        snprintf(expected, sizeof expected, "a number from %g to %g", lo, hi);
        cli_usage_error(option, value, expected);
    }
    return v;
}

static inline const char *cli_choice(const char *option, const char *value, const char *const *choices, const char *expected) {
    for (int i = 0; choices[i]; i++)
        if (!strcmp(value, choices[i])) return value;
    cli_usage_error(option, value, expected);
}

#endif
