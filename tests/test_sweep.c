/* Sweeps (src/sweep/): grid and list plans, the reports from given results, and a small
 * sweep of two runs at once on one machine that a second call finds finished.
 * (tests/test_mpi.c runs one under mpirun.) Data: ../shared/data/mnist. */
#include "harness.h"
#include "sweep/sweep.h"
#include <unistd.h>

#define OUT TEST_TMP "/test-sweep"

TEST(grid_gives_every_combination_first_key_slowest) {
    cn_sweep_plan p;
    CHECK_MSG(cn_sweep_plan_parse("lr=0.05,0.1 batch=64,128,256", NULL, "1-5", &p) == CN_OK, "%s", cn_last_error());
    CHECK(p.settings_count == 6);
    CHECK(cn_sweep_runs(&p) == 30);
    CHECK(p.keys_count == 2 && !strcmp(p.keys[0], "lr") && !strcmp(p.keys[1], "batch"));
    CHECK(!strcmp(p.settings[0].name, "lr=0.05,batch=64"));
    CHECK(!strcmp(p.settings[2].name, "lr=0.05,batch=256"));
    CHECK(!strcmp(p.settings[3].name, "lr=0.1,batch=64"));
    CHECK(!strcmp(cn_sweep_value(&p.settings[5], "batch"), "256"));
    cn_train_options o;
    cn_train_options_init(&o);
    CHECK(cn_sweep_apply(&p.settings[4], 3, &o) == CN_OK);
    CHECK(o.overrides.lr == 0.1 && o.overrides.batch_size == 128 && o.seed == 3);
    cn_sweep_plan_free(&p);
}

TEST(list_keeps_values_with_commas_and_models) {
    cn_sweep_plan p;
    CHECK_MSG(cn_sweep_plan_parse(NULL, "model=c8k augment=rotate=10,translate=0.1; model=seed003 lr=0.002", "7", &p) == CN_OK,
              "%s", cn_last_error());
    CHECK(p.settings_count == 2 && cn_sweep_runs(&p) == 2 && p.seed_first == 7);
    CHECK(p.keys_count == 3);
    CHECK(!strcmp(cn_sweep_value(&p.settings[0], "augment"), "rotate=10,translate=0.1"));
    cn_train_options o;
    cn_train_options_init(&o);
    CHECK(cn_sweep_apply(&p.settings[1], 7, &o) == CN_OK);
    CHECK(!strcmp(o.model, "seed003") && o.overrides.lr == 0.002);
    cn_sweep_plan_free(&p);
}

TEST(bad_plans_fail_with_one_message) {
    const char *grids[] = {"lr", "foo=1", "lr=abc", "lr=0.1,,0.2", "seed=1,2", "lr=1 lr=2", ""};
    for (size_t i = 0; i < sizeof grids / sizeof grids[0]; i++) {
        cn_sweep_plan p;
        CHECK_MSG(cn_sweep_plan_parse(grids[i], NULL, "1", &p) != CN_OK, "grid '%s' accepted", grids[i]);
        CHECK(strlen(cn_last_error()) > 10);
    }
    const char *seeds[] = {"5-1", "x", "1-", "-3", "0-5000"};
    for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++) {
        cn_sweep_plan p;
        CHECK_MSG(cn_sweep_plan_parse("lr=0.1", NULL, seeds[i], &p) != CN_OK, "seeds '%s' accepted", seeds[i]);
    }
    cn_sweep_plan p;
    CHECK(cn_sweep_plan_parse(NULL, " ; ", "1", &p) != CN_OK);
    CHECK(cn_sweep_plan_parse(NULL, NULL, "1", &p) != CN_OK);
}

/* Two settings x two seeds: sweep.md puts the better mean first with its std and worst seed. */
TEST(reports_from_results) {
    cn_sweep_plan p;
    CHECK(cn_sweep_plan_parse("lr=0.01,0.1", NULL, "1-2", &p) == CN_OK);
    cn_sweep_result r[4] = {{1, 97.0, 97.5, 10, 4, 5, 0, 97.0}, {1, 98.0, 98.0, 12, 5, 5, 0, 98.0},
                            {1, 99.0, 99.1, 12, 4, 5, 0, 99.0}, {0}};
    CHECK(system("rm -rf " OUT "/reports && mkdir -p " OUT "/reports") == 0);
    CHECK_MSG(cn_sweep_write_reports(OUT "/reports", &p, r) == CN_OK, "%s", cn_last_error());
    CHECK(harness_file_contains(OUT "/reports/sweep.csv", "setting,lr,seed,status,epochs,final_acc,best_acc,best_epoch,seconds\n"
                                                  "\"lr=0.01\",0.01,1,done,5,97.0000,97.5000,4,10.0\n"));
    CHECK(harness_file_contains(OUT "/reports/sweep.csv", "\"lr=0.1\",0.1,2,failed,,,,,\n"));
    CHECK(harness_file_contains(OUT "/reports/sweep.md", "| lr=0.1 | 1 | 99.00 ± 0.00 | 99.00 | 99.10 | 12 |\n"
                                                 "| lr=0.01 | 2 | 97.50 ± 0.71 | 97.00 | 97.75 | 11 |\n"));
    CHECK(access(OUT "/reports/sweep.png", R_OK) == 0);
    cn_sweep_plan_free(&p);
}

/* Runs scored on a validation split: the reports name the validation accuracy, rank on it
 * (not on the test accuracy, which goes the other way here) and give the test beside it. */
TEST(reports_rank_on_validation) {
    cn_sweep_plan p;
    CHECK(cn_sweep_plan_parse("lr=0.01,0.1", NULL, "1", &p) == CN_OK);
    cn_sweep_result r[2] = {{1, 98.5, 98.6, 10, 4, 5, 1, 99.3}, {1, 98.9, 98.9, 12, 5, 5, 1, 99.1}};
    CHECK(system("rm -rf " OUT "/val-reports && mkdir -p " OUT "/val-reports") == 0);
    CHECK_MSG(cn_sweep_write_reports(OUT "/val-reports", &p, r) == CN_OK, "%s", cn_last_error());
    CHECK(harness_file_contains(OUT "/val-reports/sweep.csv",
                                "setting,lr,seed,status,epochs,final_val_acc,best_val_acc,best_epoch,seconds,final_test_acc\n"
                                "\"lr=0.01\",0.01,1,done,5,98.5000,98.6000,4,10.0,99.3000\n"));
    CHECK(harness_file_contains(OUT "/val-reports/sweep.md", "| final val acc % |"));
    CHECK(harness_file_contains(OUT "/val-reports/sweep.md", "| lr=0.1 | 1 | 98.90 ± 0.00 | 98.90 | 98.90 | 12 | 99.10 |\n"
                                                     "| lr=0.01 | 1 | 98.50 ± 0.00 | 98.50 | 98.60 | 10 | 99.30 |\n"));
    cn_sweep_plan_free(&p);
}

/* A quiet sweep into out_dir of seed003 for one epoch on train_limit MNIST images (200 test
 * images), jobs runs at once. */
static cn_sweep_options seed003_sweep(const char *out_dir, int jobs, int train_limit) {
    cn_sweep_options o = {.out_dir = out_dir, .jobs = jobs, .quiet = 1};
    cn_train_options_init(&o.base);
    o.base.model = "seed003";
    o.base.data_dir = "../shared/data/mnist";
    o.base.allow_download = 0;
    o.base.train_limit = train_limit;
    o.base.test_limit = 200;
    o.base.overrides.epochs = 1;
    return o;
}

/* A real run with base.val_split: its result is metrics.csv's last val_acc, and its test
 * accuracy the last test_acc. */
TEST(val_split_run_reads_validation_columns) {
    cn_sweep_plan p;
    CHECK(cn_sweep_plan_parse("lr=0.003", NULL, "1", &p) == CN_OK);
    cn_sweep_options o = seed003_sweep(OUT "/val-run", 1, 300);
    o.base.val_split = 100;
    CHECK(system("rm -rf " OUT "/val-run") == 0);
    CHECK_MSG(cn_sweep(&o, &p) == CN_OK, "%s", cn_last_error());
    FILE *f = fopen(OUT "/val-run/lr=0.003,seed=1/metrics.csv", "r");
    CHECK(f != NULL);
    if (!f) return;
    char line[512];
    double test_acc = -1, val_acc = -1;
    while (fgets(line, sizeof line, f)) {
        int epoch;
        double lr, tl, ta, sl, vl;
        if (sscanf(line, "%d,%lg,%lg,%lg,%lg,%lg,%lg,%lg", &epoch, &lr, &tl, &ta, &sl, &test_acc, &vl, &val_acc) != 8)
            continue;
    }
    fclose(f);
    CHECK(val_acc >= 0 && test_acc >= 0);
    char expect[160];
    snprintf(expect, sizeof expect, ",0.003,1,done,1,%.4f,%.4f,1,", val_acc, val_acc);
    CHECK_MSG(harness_file_contains(OUT "/val-run/sweep.csv", expect), "sweep.csv lacks %s", expect);
    snprintf(expect, sizeof expect, ",%.4f\n", test_acc);
    CHECK_MSG(harness_file_contains(OUT "/val-run/sweep.csv", expect), "sweep.csv lacks the test accuracy %s", expect);
    cn_sweep_plan_free(&p);
}

/* Two runs at once, each a child process; the second sweep skips both. */
TEST(two_runs_at_once_then_skipped) {
    cn_sweep_plan p;
    CHECK(cn_sweep_plan_parse("lr=0.001,0.003", NULL, "1", &p) == CN_OK);
    cn_sweep_options o = seed003_sweep(OUT "/runs", 2, 256);
    CHECK(system("rm -rf " OUT "/runs") == 0);
    CHECK_MSG(cn_sweep(&o, &p) == CN_OK, "%s", cn_last_error());
    CHECK(harness_file_contains(OUT "/runs/sweep.csv", ",0.003,1,done,1,"));
    CHECK(harness_file_contains(OUT "/runs/sweep.md", "| lr=0.001 | 1 |"));
    CHECK(access(OUT "/runs/lr=0.001,seed=1/result", R_OK) == 0);
    /* the second sweep reads the finished runs and trains neither again */
    CHECK(unlink(OUT "/runs/sweep.md") == 0);
    CHECK(system("touch -d '2000-01-01' '" OUT "/runs/lr=0.001,seed=1/last.safetensors'") == 0);
    CHECK_MSG(cn_sweep(&o, &p) == CN_OK, "%s", cn_last_error());
    CHECK(access(OUT "/runs/sweep.md", R_OK) == 0);
    CHECK(system("test -z \"$(find '" OUT "/runs/lr=0.001,seed=1/last.safetensors' -newer '" OUT "/runs/sweep.csv' -o "
                 "-newermt '2001-01-01' -name last.safetensors)\"") == 0);
    cn_sweep_plan_free(&p);
}

/* An interrupted run (its checkpoint but no `result`) resumes with the model its checkpoint
 * stores, although the sweep names the model (base.model here): it trains only the epochs
 * left, and the report reads its whole metrics.csv. */
TEST(interrupted_run_resumes) {
    cn_sweep_plan p;
    CHECK(cn_sweep_plan_parse("lr=0.003", NULL, "1", &p) == CN_OK);
    cn_sweep_options o = seed003_sweep(OUT "/resumed", 1, 256);
    CHECK(system("rm -rf " OUT "/resumed") == 0);
    CHECK_MSG(cn_sweep(&o, &p) == CN_OK, "%s", cn_last_error());
    CHECK(unlink(OUT "/resumed/lr=0.003,seed=1/result") == 0);   /* as if stopped after epoch 1 of 2 */
    o.base.overrides.epochs = 2;
    CHECK_MSG(cn_sweep(&o, &p) == CN_OK, "%s", cn_last_error());
    CHECK(access(OUT "/resumed/lr=0.003,seed=1/result", R_OK) == 0);
    CHECK(harness_file_contains(OUT "/resumed/sweep.csv", ",0.003,1,done,2,"));
    CHECK(harness_file_contains(OUT "/resumed/lr=0.003,seed=1/metrics.csv", "\n2,"));
    CHECK(!harness_file_contains(OUT "/resumed/lr=0.003,seed=1/train.log", "Epoch 1/2"));
    CHECK(harness_file_contains(OUT "/resumed/lr=0.003,seed=1/train.log", "Epoch 2/2"));
    cn_sweep_plan_free(&p);
}

int main(void) {
    RUN(grid_gives_every_combination_first_key_slowest);
    RUN(list_keeps_values_with_commas_and_models);
    RUN(bad_plans_fail_with_one_message);
    RUN(reports_from_results);
    RUN(reports_rank_on_validation);
    RUN(val_split_run_reads_validation_columns);
    RUN(two_runs_at_once_then_skipped);
    RUN(interrupted_run_resumes);
    return test_summary();
}
