/* Classification losses with PyTorch's semantics. */
#ifndef CN_LOSS_H
#define CN_LOSS_H

/* Loss of a batch of class scores (B,C) against labels.
 * scores_are_log_probs: the model ends in log_softmax -> NLL on the scores;
 * otherwise the scores are logits -> cross-entropy (fused, stable log-softmax).
 * smoothing: label smoothing epsilon as nn.CrossEntropyLoss(label_smoothing=e):
 *   loss_i = (1-e) * -logp[y_i] + e * mean_c(-logp[c]).
 * Returns the SUM of per-sample losses (divide by B for the mean). When grad is
 * non-NULL it receives d(mean loss)/d(scores) (B,C). *correct (if non-NULL)
 * counts argmax hits (first maximum wins, as torch.argmax). */
double cn_loss_batch(const float *scores, const int *labels, int batch, int classes,
                     int scores_are_log_probs, float smoothing, float *grad, int *correct);
/* The same for n samples of a batch of `batch` (grad = d(the batch's mean loss)/d(scores)). */
double cn_loss_samples(const float *scores, const int *labels, int n, int batch, int classes,
                       int scores_are_log_probs, float smoothing, float *grad, int *correct);

#endif
