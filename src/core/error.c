#include "core/error.h"
#include <stdarg.h>
#include <string.h>

/* Room for messages naming two paths of up to PATH_MAX bytes; a longer one ends in "...". */
static _Thread_local char error_message[10240];

const char *cn_last_error(void) { return error_message; }

cn_status cn_fail(cn_status status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(error_message, sizeof error_message, fmt, ap);
    va_end(ap);
    if (n >= (int)sizeof error_message) memcpy(error_message + sizeof error_message - 4, "...", 4);
    return status;
}

void cn_error_prefix(const char *fmt, ...) {
    char prefix[512], old[sizeof error_message];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, error_message, sizeof old);
    size_t n = strlen(prefix);
    if (n > sizeof error_message - 3) n = sizeof error_message - 3;
    memcpy(error_message, prefix, n);
    memcpy(error_message + n, ": ", 2);
    size_t rest = sizeof error_message - n - 3;
    size_t m = strlen(old);
    if (m > rest) m = rest;
    memcpy(error_message + n + 2, old, m);
    error_message[n + 2 + m] = '\0';
}

void cn_clear_error(void) { error_message[0] = '\0'; }

const char *cn_status_name(cn_status status) {
    switch (status) {
    case CN_OK: return "ok";
    case CN_ERR_ARG: return "invalid argument";
    case CN_ERR_IO: return "I/O error";
    case CN_ERR_FORMAT: return "format error";
    case CN_ERR_SPEC: return "spec error";
    case CN_ERR_SHAPE: return "shape error";
    case CN_ERR_NOMEM: return "out of memory";
    case CN_ERR_NUMERIC: return "numeric error";
    case CN_ERR_UNSUPPORTED: return "unsupported";
    case CN_ERR_NETWORK: return "network error";
    case CN_ERR_CHECKSUM: return "checksum mismatch";
    case CN_ERR_INTERRUPTED: return "interrupted";
    }
    return "unknown error";
}
