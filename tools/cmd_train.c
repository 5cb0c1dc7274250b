/* convnet train */
#include "commands.h"
#include "progress.h"
#include <getopt.h>
#include <signal.h>

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig) {
    if (stop_requested) { signal(sig, SIG_DFL); raise(sig); }
    stop_requested = 1;
}

typedef struct {
    int quiet;
    cli_progress bar;
} train_view;

/* Prints the run as it goes: the settings, a progress bar per epoch on a
 * terminal, each epoch's metrics; asks to stop once a signal came. */
static int on_train_event(void *user, const cn_train_event *e) {
    train_view *v = user;
    switch (e->kind) {
    case CN_TRAIN_BEGIN:
        if (v->quiet) break;
        printf("convnet: %s, %zu params; %s: %d train%s / %d test images\n", e->model_name, e->params, e->dataset,
               e->train_count, e->has_val ? " (+val)" : "", e->test_count);
        printf("convnet: %s lr %g, batch %d, %d epoch%s, scheduler %s, augment %s, %d threads\n", e->optimizer, e->lr,
               e->batch_size, e->epochs, e->epochs == 1 ? "" : "s", e->scheduler, e->augment, e->threads);
        printf("convnet: writing %s/\n", e->out_dir);
        if (e->start_epoch || e->start_batch) printf("convnet: resuming at epoch %d, batch %d\n", e->start_epoch + 1, e->start_batch);
        fflush(stdout);
        break;
    case CN_TRAIN_EPOCH_BEGIN:
        cli_progress_begin(&v->bar, "train", e->batches, v->quiet);
        break;
    case CN_TRAIN_BATCH:
        cli_progress_update(&v->bar, e->batch, e->seen, e->loss, e->acc);
        return stop_requested != 0;
    case CN_TRAIN_EVALUATING:
        cli_progress_end(&v->bar);
        break;
    case CN_TRAIN_EPOCH_END:
        printf("Epoch %d/%d  lr %.6g  train loss %.4f  acc %.2f%%", e->epoch, e->epochs, e->lr, e->loss, e->acc);
        if (e->has_val) printf("  val loss %.4f  acc %.2f%%", e->val_loss, e->val_acc);
        printf("  %.1f s\n", e->seconds);
        printf("Test set: Average loss: %.4f, Accuracy: %d/%d (%.2f%%)\n", e->test_loss, e->test_correct, e->test_count,
               e->test_acc);
        fflush(stdout);
        break;
    case CN_TRAIN_READY:      /* a signal now asks for a checkpoint at the next batch (on_signal) */
    case CN_TRAIN_FINISHED:
        break;
    case CN_TRAIN_STOPPED:
        cli_progress_end(&v->bar);
        fprintf(stderr, "convnet: interrupted in epoch %d after batch %ld/%ld; saved %s/last.safetensors\n"
                "convnet: resume with: convnet train --resume %s/last.safetensors\n",
                e->epoch, e->batch, e->batches, e->out_dir, e->out_dir);
        break;
    }
    return 0;
}

static const char *const optimizers[] = {"sgd", "adam", "adamw", NULL};
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
           "  --data DIR             directory with the four IDX files (.gz or raw); default:\n"
           "                         $CONVNET_DATA/<dataset>, then ./data/<dataset>\n"
           "  --dataset NAME         mnist | fashion-mnist | kmnist | idx (default mnist)\n"
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
           "  --quiet                no progress bar\n");
}

int cmd_train(int argc, char **argv) {
    cn_train_config o;
    cn_train_config_init(&o);
    const char *model = "seed001", *resume = NULL;
    train_view view = {0};
    o.allow_download = 1;
    enum { O_DATA = 256, O_DATASET, O_EPOCHS, O_BATCH, O_LR, O_OPT, O_MOM, O_NESTEROV, O_WD, O_LS, O_SCHED, O_STEP,
           O_GAMMA, O_PATIENCE, O_FACTOR, O_MAXLR, O_PCT, O_DIV, O_FDIV, O_AUG, O_VAL, O_SEED, O_THREADS, O_OUT,
           O_RESUME, O_LTRAIN, O_LTEST, O_QUIET, O_NODL, O_MODEL, O_HELP };
    static const struct option opts[] = {
        {"model", required_argument, 0, O_MODEL}, {"data", required_argument, 0, O_DATA},
        {"dataset", required_argument, 0, O_DATASET}, {"epochs", required_argument, 0, O_EPOCHS},
        {"batch-size", required_argument, 0, O_BATCH}, {"lr", required_argument, 0, O_LR},
        {"optimizer", required_argument, 0, O_OPT}, {"momentum", required_argument, 0, O_MOM},
        {"nesterov", no_argument, 0, O_NESTEROV}, {"weight-decay", required_argument, 0, O_WD},
        {"label-smoothing", required_argument, 0, O_LS}, {"scheduler", required_argument, 0, O_SCHED},
        {"step-size", required_argument, 0, O_STEP}, {"gamma", required_argument, 0, O_GAMMA},
        {"patience", required_argument, 0, O_PATIENCE}, {"factor", required_argument, 0, O_FACTOR},
        {"max-lr", required_argument, 0, O_MAXLR}, {"pct-start", required_argument, 0, O_PCT},
        {"div-factor", required_argument, 0, O_DIV}, {"final-div-factor", required_argument, 0, O_FDIV},
        {"augment", required_argument, 0, O_AUG}, {"val-split", required_argument, 0, O_VAL},
        {"seed", required_argument, 0, O_SEED}, {"threads", required_argument, 0, O_THREADS},
        {"out", required_argument, 0, O_OUT}, {"resume", required_argument, 0, O_RESUME},
        {"limit-train", required_argument, 0, O_LTRAIN}, {"limit-test", required_argument, 0, O_LTEST},
        {"quiet", no_argument, 0, O_QUIET}, {"no-download", no_argument, 0, O_NODL},
        {"no-cuda", no_argument, 0, O_QUIET + 100}, {"help", no_argument, 0, O_HELP}, {0, 0, 0, 0}};
    cn_recipe *r = &o.recipe;
    for (int c; (c = cli_next_option(argc, argv, "h", opts)) != -1;) {
        switch (c) {
        case O_MODEL: model = optarg; break;
        case O_DATA: o.data_dir = optarg; break;
        case O_DATASET: o.dataset = cli_choice("--dataset", optarg, cli_datasets, "mnist, fashion-mnist, kmnist or idx"); break;
        case O_EPOCHS: r->epochs = (int)cli_int("--epochs", optarg, 1, 100000); break;
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
        case O_VAL: o.val_split = (int)cli_int("--val-split", optarg, 1, 10000000); break;
        case O_SEED: o.seed = (uint64_t)cli_int("--seed", optarg, 0, 2147483647); break;
        case O_THREADS: o.threads = (int)cli_int("--threads", optarg, 1, 256); break;
        case O_OUT: o.out_dir = optarg; break;
        case O_RESUME: resume = optarg; break;
        case O_LTRAIN: o.train_limit = (int)cli_int("--limit-train", optarg, 2, 100000000); break;
        case O_LTEST: o.test_limit = (int)cli_int("--limit-test", optarg, 1, 100000000); break;
        case O_QUIET: view.quiet = 1; break;
        case O_QUIET + 100: break;  /* --no-cuda (seed004's flag): convnet always runs on the CPU */
        case O_NODL: o.allow_download = 0; break;
        case O_HELP: case 'h': train_help(); return 0;
        default: return cli_bad_option(argv, optind);
        }
    }
    if (optind < argc) {
        fprintf(stderr, "%s: unexpected argument '%s' (see 'convnet train --help')\n", cli_command, argv[optind]);
        return 2;
    }
    o.on_event = on_train_event;
    o.user = &view;
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    cn_status st;
    if (resume) {
        st = cn_train_resume(resume, &o, NULL);
    } else {
        cn_net *net;  /* a preset, spec file, or weights to fine-tune */
        st = cn_net_open(model, NULL, o.seed, &net);
        if (!st) st = cn_net_train(net, &o);
        cn_net_free(net);
    }
    cli_progress_end(&view.bar);  /* a run that failed mid-epoch leaves no bar behind */
    if (st == CN_ERR_INTERRUPTED) return 130;
    return st ? cli_fail() : 0;
}

