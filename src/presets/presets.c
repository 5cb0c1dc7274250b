/* The built-in presets: spec files from src/presets/, embedded at build time.
 * Each spec's own `name`, `alias` and `description` lines describe it. */
#include "convnet.h"
#include "core/error.h"
#include "core/file_open.h"
#include "core/mem.h"
#include "presets_data.h"
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define PRESET_COUNT ((int)(sizeof preset_files / sizeof preset_files[0]))

typedef struct { char name[32], alias[32], description[160]; } preset_info;
static preset_info infos[PRESET_COUNT];
static int infos_ready;

/* Copies the value of header line `key` (e.g. "alias") of a spec into out. */
static void header_value(const char *text, const char *key, char *out, size_t size) {
    size_t klen = strlen(key);
    out[0] = '\0';
    for (const char *line = text; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        if (strncmp(line, key, klen) || (line[klen] != ' ' && line[klen] != '\t')) continue;
        const char *v = line + klen;
        while (*v == ' ' || *v == '\t') v++;
        size_t n = strcspn(v, "\n");
        if (n >= size) n = size - 1;
        memcpy(out, v, n);
        out[n] = '\0';
        return;
    }
}

static void load_infos(void) {
    if (infos_ready) return;
    for (int i = 0; i < PRESET_COUNT; i++) {
        header_value(preset_files[i].text, "name", infos[i].name, sizeof infos[i].name);
        if (!infos[i].name[0]) snprintf(infos[i].name, sizeof infos[i].name, "%s", preset_files[i].file);
        header_value(preset_files[i].text, "alias", infos[i].alias, sizeof infos[i].alias);
        header_value(preset_files[i].text, "description", infos[i].description, sizeof infos[i].description);
    }
    infos_ready = 1;
}

int cn_preset_count(void) { return PRESET_COUNT; }
const char *cn_preset_name(int i) { load_infos(); return i >= 0 && i < PRESET_COUNT ? infos[i].name : NULL; }
const char *cn_preset_alias(int i) { load_infos(); return i >= 0 && i < PRESET_COUNT ? infos[i].alias : NULL; }
const char *cn_preset_description(int i) { load_infos(); return i >= 0 && i < PRESET_COUNT ? infos[i].description : NULL; }
const char *cn_preset_spec(int i) { return i >= 0 && i < PRESET_COUNT ? preset_files[i].text : NULL; }

const char *cn_preset_find(const char *name) {
    load_infos();
    for (int i = 0; i < PRESET_COUNT; i++)
        if (!strcmp(name, infos[i].name) || (infos[i].alias[0] && !strcmp(name, infos[i].alias)))
            return preset_files[i].text;
    return NULL;
}

#define MAX_SPEC_BYTES (1 << 20)

cn_status cn_model_load_spec(const char *name, uint64_t seed, cn_model **out) {
    *out = NULL;
    const char *text = cn_preset_find(name);
    if (text) {
        load_infos();
        for (int i = 0; i < PRESET_COUNT; i++)
            if (preset_files[i].text == text) return cn_model_from_spec(text, infos[i].name, seed, out);
    }
    FILE *f = NULL;
    struct stat sb;
    if (stat(name, &sb) == 0 && cn_fopen_regular(name, "a model spec file", &f) != CN_OK) return CN_ERR_IO;
    if (!f) {
        char list[512] = "";
        for (int i = 0; i < PRESET_COUNT; i++) {
            strncat(list, i ? ", " : "", sizeof list - strlen(list) - 1);
            strncat(list, infos[i].name, sizeof list - strlen(list) - 1);
        }
        return cn_fail(CN_ERR_ARG, "model '%s' is neither a preset (%s) nor a readable spec file", name, list);
    }
    char *buf = cn_calloc(MAX_SPEC_BYTES + 1, 1);
    if (!buf) { fclose(f); return CN_ERR_NOMEM; }
    size_t n = fread(buf, 1, MAX_SPEC_BYTES + 1, f);
    int read_error = ferror(f);
    fclose(f);
    cn_status st;
    if (read_error) st = cn_fail(CN_ERR_IO, "%s: read error", name);
    else if (n > MAX_SPEC_BYTES) st = cn_fail(CN_ERR_SPEC, "%s: spec file is larger than %d bytes", name, MAX_SPEC_BYTES);
    else if (memchr(buf, '\0', n)) st = cn_fail(CN_ERR_SPEC, "%s: offset %zu: NUL byte in a text spec", name, (size_t)((char *)memchr(buf, '\0', n) - buf));
    else st = cn_model_from_spec(buf, name, seed, out);
    free(buf);
    return st;
}
