/* Execution sessions: everything it takes to run a model, apart from the model.
 *
 * A session owns the activations of a batch, the state layers keep from forward
 * to backward, per-thread scratch, the parameter gradients of its last backward
 * pass, the batch norms' per-sample statistics, its team of worker threads, the
 * mode (training or eval), the dropout seed of the batch, and the execution plan
 * of each mode (exec/plan.h), worked out once when the session is created.
 *
 * Several sessions may run one model: any number of eval-mode sessions at the
 * same time in different threads (they only read the model), or a training
 * session and an evaluation session one after the other (a training pass
 * writes the model's batch-norm running statistics; the optimizer writes its
 * parameters between steps). One session is used by one thread at a time.
 *
 * Where a data-parallel trainer hooks in: cn_session_backward and
 * cn_session_train_step return with cn_session_grads complete, summed over the
 * session's workers in a fixed order; an all-reduce over processes goes between
 * that return and the optimizer step. The batch norms combine their per-sample
 * sums in one place (layers/batchnorm2d.c). */
#ifndef CN_EXEC_SESSION_H
#define CN_EXEC_SESSION_H
#include "model.h"
#include "core/rng.h"
#include "exec/exchange.h"

typedef struct cn_session cn_session;

enum {
    CN_SESSION_UNFUSED = 1,      /* every layer runs its own passes (no layers/fusion.h): for tests */
    CN_SESSION_REFERENCE_CONV = 2, /* and every conv2d runs the im2col reference path: for tests */
    CN_SESSION_BF16 = 4          /* training passes in mixed precision (--precision bf16): every conv2d
                                    and linear on bf16 operands (layers/conv2d.c's direct path, conv2d_bf16.c,
                                    linear_bf16.c; exec/plan.h says when layers stay unfused);
                                    needs cn_bf16_available() (kernels/bf16.h); eval stays float32 */
};

/* A session for batches of up to `batch` samples on `threads` threads (< 1: 1), in eval
 * mode. `model` must outlive the session; flags: CN_SESSION_*. */
cn_status cn_session_create(cn_model *model, int batch, int threads, unsigned flags, cn_session **out);
void cn_session_free(cn_session *s);

cn_model *cn_session_model(const cn_session *s);
int cn_session_capacity(const cn_session *s);
int cn_session_threads(const cn_session *s);
/* Training mode (dropout active, batch statistics, backward allowed) or eval mode. */
void cn_session_set_training(cn_session *s, bool training);
bool cn_session_training(const cn_session *s);
/* The seed of the next training batch's dropout masks (cn_layers: cn_dropout_stream). */
void cn_session_set_dropout_seed(cn_session *s, uint64_t seed);
/* True when passes of `batch` samples run on the session's team of workers. */
bool cn_session_uses_team(const cn_session *s, int batch);

/* Forward pass of `batch` (<= capacity) images (B,C,H,W) -> returns (B, classes) in
 * session memory, valid until the next pass. In training mode, when rng is not NULL the
 * batch's dropout seed is drawn from it. */
const float *cn_session_forward(cn_session *s, const float *input, int batch, cn_rng *rng);
/* Backward pass (training mode, after a forward pass of the same batch) from
 * dL/d(output) (B, classes): cn_session_grads = dL/dparams. */
void cn_session_backward(cn_session *s, const float *grad_output, int batch);
/* Like cn_session_backward, and also writes dL/d(input) (B,C,H,W) to grad_input. */
void cn_session_backward_input(cn_session *s, const float *grad_output, int batch, float *grad_input);
/* One training step's passes on `batch` images: forward, the loss against labels (as
 * cn_loss_batch: returns the summed loss, grad (B, classes) gets d(mean loss)/d(output),
 * *correct the hits) and backward: cn_session_grads = dL/dparams. Same results as those
 * three calls, within rounding (exec/passes.c: chunked training); the session's output
 * buffer may then hold only some of the batch's outputs. */
double cn_session_train_step(cn_session *s, const float *input, const int *labels, int batch, float smoothing,
                             float *grad, int *correct);
/* Data-parallel training: this session is rank x->rank of x->ranks processes that each
 * hold the same model and train it on one global batch. From now on
 * cn_session_train_step takes the global batch size, and input, labels and grad hold
 * only this rank's share of it (cn_exchange_share(batch, rank, ranks)); it returns the
 * global loss and hits, and cn_session_grads holds the global gradients (summed over the
 * ranks by one all-reduce). The batch norms combine the per-sample sums of the whole
 * batch in sample order (SyncBatchNorm), so R ranks x 1 thread give the results of one
 * process with R threads; `local_bn`: each rank's own samples (DDP's BatchNorm), with
 * rank 0's running statistics copied to the others after each step. The session's
 * capacity must be the global batch. Only cn_session_train_step may be used in training
 * mode; eval mode is unaffected. x must outlive the session. */
cn_status cn_session_set_exchange(cn_session *s, const cn_exchange *x, bool local_bn);
/* dL/dparams of the last backward pass (model->num_params floats, the model's layout). */
float *cn_session_grads(cn_session *s);

/* One layer of the passes above, for per-layer profiling and tests: the input goes into
 * cn_session_value(s, 0) first, dL/d(output) into cn_session_value_grad(s) before the
 * backward layers; layer i's forward runs after layers 0..i-1, its backward after
 * layers L-1..i+1 (with branches, it first adds up its output's gradient from its
 * readers; as in a training step, no layer writes the gradient of the model input).
 * cn_session_value(s, v): value v of the current mode's plan (exec/plan.h: the output of
 * layer v - 1; v = 0 the input, v = L the output). */
void cn_session_forward_layer(cn_session *s, int i, int batch);
void cn_session_backward_layer(cn_session *s, int i, int batch);
float *cn_session_value(cn_session *s, int v);
float *cn_session_value_grad(cn_session *s);

#endif
