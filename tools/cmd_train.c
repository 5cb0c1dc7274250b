/* convnet train */
#include "commands.h"
#include <getopt.h>
#include <signal.h>

static volatile sig_atomic_t stop_requested, stop_honoured;

/* SIGINT/SIGTERM. While training, the first asks for a checkpoint at the next
 * batch boundary and a second ends the process; before training starts (data
 * loading, a download) and after it, the first ends it at once. A checkpoint
 * being written is never cut short: signals then only ask to stop (a kill
 * there left last.safetensors.tmp.PID behind). */
static void on_signal(int sig) {
    if (cn_write_in_progress()) { stop_requested = 1; return; }
    if (stop_requested || !stop_honoured) { signal(sig, SIG_DFL); raise(sig); }
    stop_requested = 1;
}

/* Under mpirun: what the exchange cost (rank 0's view), one line on stderr. */
static void dist_report(void) {
    cn_dist_stats s = cn_dist_get_stats();
    if (!s.sums) return;
    fprintf(stderr, "convnet: %d ranks: %ld gradient all-reduces of %.0f floats, %.3f ms each; "
            "%ld gathers (batch-norm sums, losses), %.3f ms each\n", cn_dist_size(), s.sums, s.sum_floats / s.sums,
            1e3 * s.sum_seconds / s.sums, s.gathers, s.gathers ? 1e3 * s.gather_seconds / s.gathers : 0.0);
}

static const char *const optimizers[] = {"sgd", "adam", "adamw", NULL};
static const char *const precisions[] = {"fp32", "bf16", NULL};
static const char *const schedulers[] = {"none", "step", "plateau", "onecycle", "cosine", NULL};

static void train_help(void) {
    printf("usage: convnet train --model NAME|FILE.spec [options]\n"
           "       convnet train --resume OUT/last.safetensors [--epochs N]\n\n"
           "Trains a model and prints, per epoch, the train loss/accuracy and the line\n"
           "  Test set: Average loss: 0.0703, Accuracy: 9830/10000 (98.30%%)\n"
           "Writes OUT/metrics.csv, OUT/last.safetensors (resumable) and OUT/best.safetensors.\n"
           "Settings not given fall back to the model's recipe (see 'convnet models'), then to defaults.\n\n"
           "  --model NAME|FILE      preset name or alias, a spec file, or trained weights to\n"
           "                         fine-tune (.safetensors checkpoint or .onnx); default seed001\n"
           "  --data DIR             the dataset's directory (IDX files, DIR/train/<class>/ images,\n"
           "                         train.csv and test.csv, CIFAR-10 batches); default:\n"
           "                         $CONVNET_DATA/<dataset>, then ./data/<dataset>\n"
           CLI_DATA_HELP
           "  --no-download          never download missing files\n"
           "  --epochs N             number of epochs\n"
           "  --batch-size N         training batch size\n"
           "  --lr F                 learning rate (OneCycle: the peak unless --max-lr)\n"
           "  --optimizer NAME       sgd | adam | adamw\n"
           "  --momentum F           SGD momentum\n"
           "  --nesterov             Nesterov momentum (SGD)\n"
           "  --weight-decay F       L2 (sgd, adam) or decoupled (adamw) weight decay\n"
           "  --label-smoothing F    label smoothing epsilon (0-1)\n"
           "  --scheduler NAME       none | step | plateau | onecycle | cosine\n"
           "  --step-size N          StepLR period in epochs\n"
           "  --gamma F              StepLR decay factor\n"
           "  --patience N           ReduceLROnPlateau patience (epochs)\n"
           "  --factor F             ReduceLROnPlateau factor\n"
           "  --max-lr F             OneCycle peak lr\n"
           "  --pct-start F          OneCycle warm-up fraction\n"
           "  --div-factor F         OneCycle initial lr = max_lr / div_factor\n"
           "  --final-div-factor F   OneCycle final lr = initial lr / final_div_factor\n"
           "  --augment SPEC         e.g. rotate=10,translate=0.1 ('none' to disable)\n"
           "  --val-split N          hold out N training images for validation\n"
           "  --seed N               random seed (default 1)\n"
           "  --threads N            worker threads (default: all cores)\n"
           "  --out DIR              output directory (default runs/<model>)\n"
           "  --resume FILE          continue an interrupted run from its last.safetensors\n"
           "  --limit-train N        use only the first N training images\n"
           "  --limit-test N         use only the first N test images\n"
           "  --quiet                no progress bar\n"
           "  --precision P          fp32 (default) | bf16: mixed precision, the conv and linear\n"
           "                         products on bfloat16 operands (needs AVX512_BF16); weights,\n"
           "                         optimizer, batch norm and loss stay float32\n"
           "  --local-bn             under mpirun: batch norm over each rank's samples (DDP)\n"
           "                         instead of the whole batch (SyncBatchNorm, the default)\n\n"
           "Under mpirun (mpirun -np R convnet train ...) the R ranks train one model on the\n"
           "global batch (--batch-size), each on a share of it with its --threads; rank 0\n"
           "writes the files and prints. See the README, \"Several processes (MPI)\".\n");
}

int cmd_train(int argc, char **argv) {
    cli_command = "convnet train";
    cn_train_options o;
    cn_train_options_init(&o);
    o.allow_download = 1;
    enum { O_BATCH = 256, O_LR, O_OPT, O_MOM, O_NESTEROV, O_WD, O_LS, O_SCHED, O_STEP, O_GAMMA, O_PATIENCE, O_FACTOR,
           O_MAXLR, O_PCT, O_DIV, O_FDIV, O_AUG, O_SEED, O_OUT, O_RESUME, O_QUIET, O_NO_CUDA, O_HELP, O_LOCALBN,
           O_PRECISION };
    static const struct option opts[] = {
        {"batch-size", required_argument, 0, O_BATCH}, {"lr", required_argument, 0, O_LR},
        {"optimizer", required_argument, 0, O_OPT}, {"momentum", required_argument, 0, O_MOM},
        {"nesterov", no_argument, 0, O_NESTEROV}, {"weight-decay", required_argument, 0, O_WD},
        {"label-smoothing", required_argument, 0, O_LS}, {"scheduler", required_argument, 0, O_SCHED},
        {"step-size", required_argument, 0, O_STEP}, {"gamma", required_argument, 0, O_GAMMA},
        {"patience", required_argument, 0, O_PATIENCE}, {"factor", required_argument, 0, O_FACTOR},
        {"max-lr", required_argument, 0, O_MAXLR}, {"pct-start", required_argument, 0, O_PCT},
        {"div-factor", required_argument, 0, O_DIV}, {"final-div-factor", required_argument, 0, O_FDIV},
        {"augment", required_argument, 0, O_AUG}, {"seed", required_argument, 0, O_SEED},
        {"out", required_argument, 0, O_OUT}, {"resume", required_argument, 0, O_RESUME},
        {"quiet", no_argument, 0, O_QUIET}, {"no-cuda", no_argument, 0, O_NO_CUDA}, {"help", no_argument, 0, O_HELP},
        {"local-bn", no_argument, 0, O_LOCALBN}, {"precision", required_argument, 0, O_PRECISION}, CLI_RUN_OPTIONS,
        CLI_DATA_OPTIONS, {0, 0, 0, 0}};
    int c;
    cn_recipe *r = &o.overrides;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (cli_run_option(c, optarg, &o) || cli_data_option(c, optarg, &o.data)) continue;
        switch (c) {
        case O_BATCH: r->batch_size = (int)cli_int("--batch-size", optarg, 1, 65536); break;
        case O_LR: r->lr = cli_double("--lr", optarg, 1e-12, 100); break;
        case O_OPT: snprintf(r->optimizer, sizeof r->optimizer, "%s", cli_choice("--optimizer", optarg, optimizers, "sgd, adam or adamw")); break;
        case O_MOM: r->momentum = cli_double("--momentum", optarg, 0, 1); break;
        case O_NESTEROV: r->nesterov = 1; break;
        case O_WD: r->weight_decay = cli_double("--weight-decay", optarg, 0, 10); break;
        case O_LS: r->label_smoothing = cli_double("--label-smoothing", optarg, 0, 0.999); break;
        case O_SCHED: snprintf(r->scheduler, sizeof r->scheduler, "%s", cli_choice("--scheduler", optarg, schedulers, "none, step, plateau, onecycle or cosine")); break;
        case O_STEP: r->step_size = (int)cli_int("--step-size", optarg, 1, 100000); break;
        case O_GAMMA: r->gamma = cli_double("--gamma", optarg, 1e-9, 10); break;
        case O_PATIENCE: r->patience = (int)cli_int("--patience", optarg, 0, 100000); break;
        case O_FACTOR: r->factor = cli_double("--factor", optarg, 1e-9, 0.999999); break;
        case O_MAXLR: r->max_lr = cli_double("--max-lr", optarg, 1e-12, 100); break;
        case O_PCT: r->pct_start = cli_double("--pct-start", optarg, 0.001, 0.999); break;
        case O_DIV: r->div_factor = cli_double("--div-factor", optarg, 1, 1e9); break;
        case O_FDIV: r->final_div_factor = cli_double("--final-div-factor", optarg, 1, 1e12); break;
        case O_AUG:
            if (strlen(optarg) >= sizeof r->augment) cli_usage_error("--augment", optarg, "a shorter augmentation spec");
            snprintf(r->augment, sizeof r->augment, "%s", optarg);
            break;
        case O_SEED: o.seed = (uint64_t)cli_int("--seed", optarg, 0, 2147483647); break;
        case O_OUT: o.out_dir = cli_path("--out", optarg); break;
        case O_RESUME: o.resume = cli_path("--resume", optarg); break;
        case O_QUIET: o.quiet = 1; break;
        case O_NO_CUDA: break;  /* --no-cuda (seed004's flag): convnet always runs on the CPU */
        case O_LOCALBN: o.local_bn = 1; break;
        case O_PRECISION: o.precision = cli_choice("--precision", optarg, precisions, "fp32 or bf16"); break;
        case O_HELP: case 'h': train_help(); return 0;
        default: return cli_bad_option(argv, optind);
        }
    }
    if (optind < argc) return cli_unexpected_argument(argv[optind]);
    cli_data_finish(&o.data);
    o.stop_requested = &stop_requested;
    o.stop_honoured = &stop_honoured;
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    o.exchange = cn_dist_world();
    cn_status st = cn_train(&o);
    if (o.exchange && cn_dist_rank() == 0) dist_report();
    if (st == CN_ERR_INTERRUPTED) return 130;
    return st ? cli_fail() : 0;
}

