/* Model spec text format (one layer per line, key=value arguments, # comments).
 * See README "Model spec format". */
#ifndef CN_SPEC_H
#define CN_SPEC_H
#include "model.h"

/* Parses `text` into model->layers, model->input and model->recipe and infers
 * every shape; does not allocate parameters. Errors name `source:line`. */
cn_status cn_spec_parse(const char *text, const char *source, cn_model *model);

/* Parses "key=value" recipe settings (a spec's train line) into *recipe. */
cn_status cn_recipe_parse_token(const char *token, const char *where, cn_recipe *recipe);

#endif
