/* convnet sweep */
#include "commands.h"
#include <getopt.h>
#include <signal.h>

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig) {
    if (stop_requested) { signal(sig, SIG_DFL); raise(sig); }
    stop_requested = 1;
}

static void sweep_help(void) {
    printf("usage: convnet sweep --model NAME --grid \"KEY=V1,V2 KEY2=W1,W2\" [--seeds A-B] [options]\n"
           "       convnet sweep --model NAME --runs \"KEY=V KEY2=W; KEY=V3\" [--seeds A-B] [options]\n\n"
           "Trains one run per setting and seed, each in its own directory OUT/<setting>,seed=N\n"
           "(convnet train's files and train.log). Runs already finished are skipped and\n"
           "interrupted ones resume, so an interrupted sweep continues when run again.\n"
           "Writes OUT/sweep.csv (one row per run: settings, final and best test accuracy,\n"
           "wall time), OUT/sweep.md (mean +- std and worst final accuracy over the seeds of\n"
           "each setting, best first) and OUT/sweep.png (accuracy against the first key).\n"
           "Keys: those of a spec's train line (lr, batch, momentum, weight_decay, optimizer,\n"
           "scheduler, augment, epochs, label_smoothing, ...), model, and precision (fp32 or\n"
           "bf16, as convnet train's --precision). Grid values are\n"
           "separated by ','; use --runs for values with commas (augment=rotate=10,translate=0.1).\n\n"
           "  --model NAME|FILE      the model of every run (unless a setting names one)\n"
           "  --grid SPEC            every combination of the values (the first key slowest)\n"
           "  --runs LIST            settings separated by ';', tokens by spaces\n"
           "  --seeds A-B            seeds of each setting (default 1)\n"
           "  --set TOKENS           settings for every run, e.g. \"scheduler=step step_size=5\"\n"
           "  --epochs N             epochs of every run\n"
           "  --jobs N               runs at once (default: one per core); each run --threads 1\n"
           "  --threads N            threads per run (default 1)\n"
           "  --out DIR              output directory (default runs/sweep)\n"
           "  --val-split N          hold out N training images in every run and rank the settings\n"
           "                         on their final validation accuracy (the test accuracy is\n"
           "                         reported beside it, not used to rank)\n"
           "  --data DIR, --dataset NAME, --no-download, --limit-train N, --limit-test N\n"
           "                         as for convnet train\n"
           "  --quiet                no line per finished run\n\n"
           "Under mpirun (mpirun -np R convnet sweep ...) the ranks share out the runs (rank r\n"
           "takes every R-th, one at a time) and rank 0 collects the results and writes the reports.\n");
}

int cmd_sweep(int argc, char **argv) {
    cli_command = "convnet sweep";
    cn_sweep_options o = {.out_dir = "runs/sweep"};
    cn_train_options_init(&o.base);
    o.base.model = "seed001";
    o.base.allow_download = 1;
    const char *grid = NULL, *runs = NULL, *seeds = "1", *set = NULL;
    enum { O_GRID = 256, O_RUNS, O_SEEDS, O_SET, O_JOBS, O_OUT, O_QUIET, O_HELP };
    static const struct option opts[] = {
        {"grid", required_argument, 0, O_GRID}, {"runs", required_argument, 0, O_RUNS},
        {"seeds", required_argument, 0, O_SEEDS}, {"set", required_argument, 0, O_SET},
        {"jobs", required_argument, 0, O_JOBS}, {"out", required_argument, 0, O_OUT},
        {"quiet", no_argument, 0, O_QUIET}, {"help", no_argument, 0, O_HELP}, CLI_RUN_OPTIONS, {0, 0, 0, 0}};
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (cli_run_option(c, optarg, &o.base)) continue;
        switch (c) {
        case O_GRID: grid = optarg; break;
        case O_RUNS: runs = optarg; break;
        case O_SEEDS: seeds = optarg; break;
        case O_SET: set = optarg; break;
        case O_JOBS: o.jobs = (int)cli_int("--jobs", optarg, 1, 1024); break;
        case O_OUT: o.out_dir = optarg; break;
        case O_QUIET: o.quiet = 1; break;
        case O_HELP: case 'h': sweep_help(); return 0;
        default: return cli_bad_option(argv, optind);
        }
    }
    if (optind < argc) return cli_unexpected_argument(argv[optind]);
    if (!grid == !runs) {
        fprintf(stderr, "%s: give one of --grid or --runs (see 'convnet sweep --help')\n", cli_command);
        return 2;
    }
    if (cn_sweep_check(grid, runs, seeds, set)) { cli_fail(); return 2; }   /* a bad option value */
    o.stop_requested = &stop_requested;
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    if (cn_dist_under_mpirun()) o.exchange = cn_dist_world();
    cn_status st = cn_sweep_execute(&o, grid, runs, seeds, set);
    if (st == CN_ERR_INTERRUPTED) return 130;
    return st ? cli_fail() : 0;
}
