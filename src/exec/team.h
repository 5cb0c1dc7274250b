/* Inside a session (exec/session.c builds it, exec/passes.c runs it).
 *
 * A runner runs passes of layers: either the session as a whole (each layer splits
 * its work over the session's threads with its own OpenMP loops) or one worker of
 * the session's team (1 thread, its own samples). With several threads a pass runs
 * on the team: each worker takes its samples from the first layer to the last, in
 * its slice of the session's buffers, and the workers meet only where a layer needs
 * the whole batch: a training batch norm's statistics and backward sums (a barrier of
 * the team, layers/batchnorm2d.c) and, after backward, the sum of the workers'
 * parameter gradients. A worker's own: its thread's scratch, its parameter gradients
 * (worker 0's are the session's; the others' are summed into them in thread order),
 * and a copy of each batch norm's per-channel state (worker 0's is the session's). */
#ifndef CN_EXEC_TEAM_H
#define CN_EXEC_TEAM_H
#include "exec/plan.h"
#include "exec/exchange.h"
#include "layers/layers.h"

typedef struct cn_session cn_session;   /* as in exec/session.h */

typedef struct {
    int threads;            /* OpenMP threads of the layers' loops: the session's, or 1 (a worker) */
    bool in_team;           /* a worker of the team */
    float *scratch;         /* threads * scratch_stride floats */
    float *grads;           /* where its parameter gradients go (num_params) */
    float *partials;        /* threads * num_params: the layers' per-thread partial gradients */
    float **bn_saved;       /* per layer: the batch norm state it uses (its own copy, or the session's) */
    cn_layer_ctx *ctx;      /* per layer: the binding of the current pass (cn_runner_bind) */
    int slot;               /* its samples' position in the session's buffers */
    int first, batch;       /* the position of its first sample in the whole batch; its samples */
    int team_batch;         /* samples of the whole batch */
    double step_loss;       /* a training worker: its samples' summed loss in cn_session_train_step */
    int step_correct;       /* ... and their argmax hits */
} cn_runner;

struct cn_session {
    cn_model *model;
    bool training;
    int capacity, threads;
    cn_plan plans[2];       /* [0] eval, [1] training */
    float **values;         /* activation buffers (capacity samples each), indexed by plan buffer */
    float *grad_bufs[2];    /* gradients of the values: value v's in buffer v % 2 */
    float **grad_vals;      /* a model with branches: the training plan's num_grads gradient buffers */
    size_t grad_stride;     /* floats per sample of each gradient buffer */
    float **saved;          /* per layer: its state kept from forward to backward (capacity samples) */
    float *grads;           /* dL/dparams (num_params) */
    float *thread_grads;    /* (2, or 3 for chunked training) * threads * num_params partial gradients */
    float *scratch;         /* threads * scratch_stride floats (im2col etc.) */
    size_t scratch_stride;
    double *bn_stats;       /* batch norms' per-(sample, channel) sums: bn_stats_stride doubles each */
    size_t bn_stats_stride;
    float *eval_out;        /* eval mode on the team: the batch's outputs */
    uint64_t dropout_seed;
    cn_runner whole;        /* the session as one runner */
    cn_runner *team;        /* with several threads or an exchange: one worker per thread, else NULL */
    /* data-parallel training over processes (cn_session_set_exchange), else NULL */
    const cn_exchange *exchange;
    bool local_bn;          /* batch norms use this process's samples only (no exchange) */
    double *loss_rows;      /* with an exchange: (capacity, 2) doubles: per-sample or per-rank {loss, hits} */
    /* the current training pass: its samples offset .. offset+share-1 of the whole batch run
     * here, on `active` workers (no exchange: all of the batch, on every worker) */
    int offset, share, active;
};

static inline const cn_plan *cn_session_plan(const cn_session *s) { return &s->plans[s->training]; }
/* Value v of the current plan at sample `slot` of the session's buffers. */
float *cn_value_at(const cn_session *s, int v, int slot);
/* dL/d(value v) at sample `slot`. */
float *cn_grad_at(const cn_session *s, int v, int slot);
/* Gradient buffer g of a branched training plan (exec/plan.h) at sample `slot`. */
float *cn_grad_buffer_at(const cn_session *s, int g, int slot);
/* Binds runner r's layers to the samples slot .. slot+batch-1 of the session's buffers,
 * the first of which is sample `first` of the whole batch. */
void cn_runner_bind(cn_session *s, cn_runner *r, int slot, int first, int batch);
/* Models that train in chunks (exec/passes.c) need a third set of partial gradients. */
bool cn_session_trains_in_chunks(const cn_model *m);

#endif
