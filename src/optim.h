/* Optimizers over the flat parameter buffer, with PyTorch's update rules
 * (torch.optim.SGD, Adam, AdamW; weight decay applies to every parameter). */
#ifndef CN_OPTIM_H
#define CN_OPTIM_H
#include "convnet.h"
#include <stddef.h>

typedef enum { CN_OPT_SGD, CN_OPT_ADAM, CN_OPT_ADAMW } cn_optimizer_kind;

typedef struct {
    cn_optimizer_kind kind;
    double lr, momentum, dampening, weight_decay;
    int nesterov;
    double beta1, beta2, eps;
    size_t count;
    float *exp_avg;      /* SGD momentum buffer, or Adam first moment */
    float *exp_avg_sq;   /* Adam second moment (NULL for SGD) */
    int64_t steps;       /* updates done (Adam bias correction; SGD: buffer exists after 1) */
} cn_optimizer;

/* Parses "sgd" | "adam" | "adamw". */
cn_status cn_optimizer_kind_parse(const char *name, cn_optimizer_kind *out);
/* Sets PyTorch's defaults for `kind` (lr must be set by the caller), allocates state. */
cn_status cn_optimizer_init(cn_optimizer *opt, cn_optimizer_kind kind, size_t count);
void cn_optimizer_free(cn_optimizer *opt);
/* One update: params -= f(grads) with the current lr/momentum/betas. */
void cn_optimizer_step(cn_optimizer *opt, float *params, const float *grads);

#endif
