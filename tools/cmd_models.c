/* convnet models */
#include "commands.h"

int cmd_models(int argc, char **argv) {
    cli_command = "convnet models";
    if (argc > 1) {
        if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
            printf("usage: convnet models\n\nLists the built-in presets with their aliases, parameter counts, "
                   "forward MACs per image and descriptions.\n");
            return 0;
        }
        return cli_unexpected_argument(argv[1]);
    }
    printf("%-12s %-16s %10s %10s  %s\n", "preset", "alias", "params", "MACs", "description");
    for (int i = 0; i < cn_preset_count(); i++) {
        cn_model *m;
        if (cn_model_from_spec(cn_preset_spec(i), cn_preset_name(i), 1, &m)) return cli_fail();
        printf("%-12s %-16s %10zu %10llu  %s\n", cn_preset_name(i), cn_preset_alias(i), cn_model_param_count(m),
               (unsigned long long)cn_model_macs(m), cn_preset_description(i));
        cn_model_free(m);
    }
    return 0;
}

