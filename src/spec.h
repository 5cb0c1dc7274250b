/* Model spec text format (one layer per line, key=value arguments, # comments).
 * See README "Model spec format". The parser builds layer descriptions
 * (layer.h); model.h turns them into a model with parameters. */
#ifndef CN_SPEC_H
#define CN_SPEC_H
#include "convnet.h"
#include "layer.h"

/* Training recipe defaults carried by a spec's `train` line (0/NULL = unset). */
/* cn_recipe (a spec's train line): convnet.h */

/* What a spec text says: the input shape, the layers with every shape inferred,
 * and the recipe of its `train` line. */
typedef struct {
    cn_shape input;
    int num_layers;
    cn_layer *layers;       /* num_layers, owned (free()) */
    cn_recipe recipe;
} cn_spec;

/* Parses `text` into *spec (zeroed first) and infers every shape; lays out no
 * parameters. Errors name `source:line`. */
cn_status cn_spec_parse(const char *text, const char *source, cn_spec *spec);

/* Parses "key=value" recipe settings (a spec's train line) into *recipe. */
cn_status cn_recipe_parse_token(const char *token, const char *where, cn_recipe *recipe);

#endif
