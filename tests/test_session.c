/* Execution sessions (exec/session.h): the model apart from its execution.
 * Several sessions on one model give the results of separate models; eval
 * sessions share a model between threads; the plan works out fusion and
 * buffers once per mode. */
#include "harness.h"
#include "model.h"
#include "exec/session.h"
#include "exec/plan.h"
#include "loss.h"
#include "core/rng.h"
#include <omp.h>

enum { BATCH = 16 };

static void fill(float *x, size_t n, cn_rng *rng) {
    for (size_t i = 0; i < n; i++) x[i] = 2.0f * cn_rng_uniform(rng) - 1.0f;
}

/* Same parameters, running statistics and batch counts. */
static void copy_model_state(cn_model *dst, const cn_model *src) {
    memcpy(dst->params, src->params, src->num_params * sizeof(float));
    memcpy(dst->buffers, src->buffers, src->num_buffers * sizeof(float));
    memcpy(dst->bn_batches_tracked, src->bn_batches_tracked, (size_t)(src->num_bn ? src->num_bn : 1) * sizeof(int64_t));
}

static bool same_state(const cn_model *a, const cn_model *b) {
    return memcmp(a->params, b->params, a->num_params * sizeof(float)) == 0 &&
           memcmp(a->buffers, b->buffers, a->num_buffers * sizeof(float)) == 0 &&
           memcmp(a->bn_batches_tracked, b->bn_batches_tracked, (size_t)a->num_bn * sizeof(int64_t)) == 0;
}

/* params -= 0.05 * grads: a stand-in for the optimizer between steps */
static void sgd(cn_model *m, const float *grads) {
    for (size_t k = 0; k < m->num_params; k++) m->params[k] -= 0.05f * grads[k];
}

/* One model run by a training session and an evaluation session, interleaved (each eval
 * pass between a training step's forward and backward passes), against two separate models:
 * one trained by its own session, one evaluated by its own session with the trained model's
 * state copied in. Outputs, gradients, parameters and running statistics bit-identical; for
 * presets with batch norm and dropout (seed001), chunked training (seed003) and a linear head
 * (seed004), on 1 and 2 threads. */
TEST(training_and_eval_sessions_share_a_model) {
    static const char *const presets[] = { "seed001", "seed003", "seed004" };
    for (size_t p = 0; p < sizeof presets / sizeof presets[0]; p++)
        for (int threads = 1; threads <= 2; threads++) {
            cn_model *shared = NULL, *trained = NULL, *evaluated = NULL;
            cn_session *train = NULL, *eval = NULL, *ref_train = NULL, *ref_eval = NULL;
            int ok = cn_model_load_spec(presets[p], 4, &shared) == CN_OK && cn_model_load_spec(presets[p], 4, &trained) == CN_OK &&
                     cn_model_load_spec(presets[p], 4, &evaluated) == CN_OK &&
                     cn_session_create(shared, BATCH, threads, 0, &train) == CN_OK &&
                     cn_session_create(shared, BATCH, threads, 0, &eval) == CN_OK &&
                     cn_session_create(trained, BATCH, threads, 0, &ref_train) == CN_OK &&
                     cn_session_create(evaluated, BATCH, threads, 0, &ref_eval) == CN_OK;
            CHECK_MSG(ok, "%s: %s", presets[p], cn_last_error());
            if (ok) {
                cn_session_set_training(train, true);
                cn_session_set_training(ref_train, true);
                int classes = cn_model_num_classes(shared), labels[BATCH];
                size_t in_n = (size_t)BATCH * cn_shape_size(shared->input), out_n = (size_t)BATCH * classes;
                float *x = malloc(in_n * sizeof *x), *x_eval = malloc(in_n * sizeof *x_eval);
                float *g = malloc(out_n * sizeof *g), *y_train = malloc(out_n * sizeof *y_train);
                float *y_eval = malloc(out_n * sizeof *y_eval);
                cn_rng rng;
                cn_rng_seed(&rng, 17);
                for (int step = 0; step < 3 && ok; step++) {
                    fill(x, in_n, &rng);
                    fill(x_eval, in_n, &rng);
                    for (int b = 0; b < BATCH; b++) labels[b] = (int)cn_rng_below(&rng, (uint64_t)classes);
                    /* the shared model: training forward, an eval pass, then the training backward */
                    cn_session_set_dropout_seed(train, 100 + step);
                    memcpy(y_train, cn_session_forward(train, x, BATCH, NULL), out_n * sizeof(float));
                    cn_loss_batch(y_train, labels, BATCH, classes, cn_model_outputs_log_probs(shared), 0.0f, g, NULL);
                    memcpy(y_eval, cn_session_forward(eval, x_eval, BATCH, NULL), out_n * sizeof(float));
                    cn_session_backward(train, g, BATCH);
                    /* separate models */
                    cn_session_set_dropout_seed(ref_train, 100 + step);
                    const float *y = cn_session_forward(ref_train, x, BATCH, NULL);
                    ok &= memcmp(y, y_train, out_n * sizeof(float)) == 0;
                    copy_model_state(evaluated, trained);
                    ok &= memcmp(cn_session_forward(ref_eval, x_eval, BATCH, NULL), y_eval, out_n * sizeof(float)) == 0;
                    cn_session_backward(ref_train, g, BATCH);
                    ok &= memcmp(cn_session_grads(train), cn_session_grads(ref_train), shared->num_params * sizeof(float)) == 0;
                    sgd(shared, cn_session_grads(train));
                    sgd(trained, cn_session_grads(ref_train));
                    ok &= same_state(shared, trained);
                    CHECK_MSG(ok, "%s, %d threads: step %d differs from separate models", presets[p], threads, step);
                }
                free(x); free(x_eval); free(g); free(y_train); free(y_eval);
            }
            cn_session_free(train); cn_session_free(eval); cn_session_free(ref_train); cn_session_free(ref_eval);
            cn_model_free(shared); cn_model_free(trained); cn_model_free(evaluated);
        }
}

/* Eval sessions only read the model: two threads, each with its own session on one model,
 * at the same time, give the outputs of one session run alone. */
TEST(eval_sessions_share_a_model_between_threads) {
    cn_model *m;
    CHECK(cn_model_load_spec("seed001", 6, &m) == CN_OK);
    if (!m) return;
    cn_session *s[2] = { NULL, NULL };
    for (int t = 0; t < 2; t++) CHECK(cn_session_create(m, BATCH, 1, 0, &s[t]) == CN_OK);
    size_t in_n = (size_t)BATCH * cn_shape_size(m->input), out_n = (size_t)BATCH * cn_model_num_classes(m);
    float *x = malloc(2 * in_n * sizeof *x), *want = malloc(2 * out_n * sizeof *want), *got = malloc(2 * out_n * sizeof *got);
    cn_rng rng;
    cn_rng_seed(&rng, 3);
    fill(x, 2 * in_n, &rng);
    for (int t = 0; s[0] && s[1] && t < 2; t++)
        memcpy(want + t * out_n, cn_session_forward(s[0], x + t * in_n, BATCH, NULL), out_n * sizeof(float));
    if (s[0] && s[1]) {
        #pragma omp parallel num_threads(2)
        {
            int t = omp_get_thread_num();
            for (int rep = 0; rep < 20; rep++)
                memcpy(got + t * out_n, cn_session_forward(s[t], x + t * in_n, BATCH, NULL), out_n * sizeof(float));
        }
        CHECK(memcmp(want, got, 2 * out_n * sizeof(float)) == 0);
    }
    free(x); free(want); free(got);
    cn_session_free(s[0]); cn_session_free(s[1]);
    cn_model_free(m);
}

TEST(forward_is_deterministic_across_threads) {
    cn_model *m;
    CHECK(cn_model_load_spec("seed000", 3, &m) == CN_OK);
    if (!m) return;
    cn_session *a, *b;
    CHECK(cn_session_create(m, 8, 1, 0, &a) == CN_OK);
    CHECK(cn_session_create(m, 8, 2, 0, &b) == CN_OK);
    float x[8 * 784];
    cn_rng rng;
    cn_rng_seed(&rng, 5);
    for (int i = 0; i < 8 * 784; i++) x[i] = cn_rng_uniform(&rng);
    const float *ya = cn_session_forward(a, x, 8, NULL), *yb = cn_session_forward(b, x, 8, NULL);
    CHECK(memcmp(ya, yb, 8 * 10 * sizeof(float)) == 0);
    cn_session_free(a);
    cn_session_free(b);
    cn_model_free(m);
}

/* seed001's plans: in training, each conv leads a conv + relu chain whose batch norm gets its
 * statistics from the conv pass, and the batch norm applies the dropout after it; in eval,
 * the chain absorbs the batch norm, and dropouts and flatten pass their input through
 * (sharing its buffer; flatten in training too). Unfused: no chains and no hand-overs. */
TEST(plans_of_seed001) {
    cn_model *m;
    CHECK(cn_model_load_spec("seed001", 1, &m) == CN_OK);
    if (!m) return;
    cn_plan train, eval, plain;
    CHECK(cn_plan_build(m, true, false, &train) == CN_OK);
    CHECK(cn_plan_build(m, false, false, &eval) == CN_OK);
    CHECK(cn_plan_build(m, true, true, &plain) == CN_OK);
    int L = m->num_layers;
    /* conv 0, relu 1, bn 2, dropout 3, conv 4, ... */
    CHECK(train.steps[0].chain.length == 2 && train.steps[0].peer == 2 && train.steps[0].bn_stats_out);
    CHECK(!train.steps[1].forward && !train.steps[1].backward);
    CHECK(train.steps[2].stats_from_conv && train.steps[2].applies_dropout && train.steps[2].peer == 3);
    CHECK(!train.steps[3].forward && train.steps[3].backward);
    /* conv 4, relu 5, bn 6, dropout 7, maxpool 8: the batch norm applies the dropout and the
     * pool, forward and backward (fusion.h: chain.dropout) */
    CHECK(train.steps[6].chain.length == 3 && train.steps[6].chain.dropout && train.steps[6].chain.pool &&
          train.steps[6].pool == 8 && train.steps[6].peer == 7 && train.steps[6].applies_dropout &&
          !train.steps[6].grad_in_conv && train.steps[6].grad_to_conv_relu);
    for (int i = 7; i <= 8; i++) CHECK(!train.steps[i].forward && !train.steps[i].backward);
    CHECK(!eval.steps[6].chain.dropout);
    CHECK(eval.steps[0].chain.length == 3 && eval.steps[0].chain.bn && eval.steps[0].peer == 2);
    CHECK(!eval.steps[2].forward && eval.steps[3].pass_through);
    /* flatten is layer L - 2 (its output value L - 1): a pass-through in every plan, whose
     * training backward still runs (it copies the gradient) */
    CHECK(m->layers[L - 2].kind == CN_LAYER_FLATTEN);
    for (int v = 0; v <= L; v++) CHECK(train.buffer[v] == (v == L - 1 ? L - 2 : v));
    CHECK(train.steps[L - 2].pass_through && !train.steps[L - 2].forward && train.steps[L - 2].backward);
    CHECK(eval.buffer[4] == eval.buffer[3]);                  /* dropout 3 */
    CHECK(eval.buffer[L - 1] == eval.buffer[L - 2]);          /* flatten */
    CHECK(plain.buffer[L - 1] == plain.buffer[L - 2]);
    for (int i = 0; i < L; i++)
        CHECK(plain.steps[i].chain.length == 1 && plain.steps[i].forward == (i != L - 2) && plain.steps[i].peer < 0 &&
              !plain.steps[i].stats_from_conv && !plain.steps[i].grad_to_conv_relu && !plain.steps[i].applies_dropout);
    cn_plan_free(&train); cn_plan_free(&eval); cn_plan_free(&plain);
    cn_model_free(m);
}

int main(void) {
    RUN(training_and_eval_sessions_share_a_model);
    RUN(eval_sessions_share_a_model_between_threads);
    RUN(forward_is_deterministic_across_threads);
    RUN(plans_of_seed001);
    return test_summary();
}
