#include "loss.h"
#include <math.h>
#include <stddef.h>

double cn_loss_batch(const float *scores, const int *labels, int batch, int classes,
                     int scores_are_log_probs, float smoothing, float *grad, int *correct) {
    return cn_loss_samples(scores, labels, batch, batch, classes, scores_are_log_probs, smoothing, grad, correct);
}

double cn_loss_samples(const float *scores, const int *labels, int n, int batch, int classes,
                       int scores_are_log_probs, float smoothing, float *grad, int *correct) {
    double total = 0.0;
    int hits = 0;
    for (int b = 0; b < n; b++) {
        const float *s = scores + (size_t)b * classes;
        int y = labels[b], best = 0;
        for (int c = 1; c < classes; c++) if (s[c] > s[best]) best = c;
        hits += best == y;
        /* log-probabilities: the scores themselves, or log_softmax of logits */
        double lse = 0.0;
        if (!scores_are_log_probs) {
            double mx = s[best], sum = 0.0;
            for (int c = 0; c < classes; c++) sum += exp((double)s[c] - mx);
            lse = mx + log(sum);
        }
        double sum_logp = 0.0;
        for (int c = 0; c < classes; c++) sum_logp += (double)s[c] - lse;
        double logp_y = (double)s[y] - lse;
        total += -(1.0 - smoothing) * logp_y - smoothing * sum_logp / classes;
        if (!grad) continue;
        float *g = grad + (size_t)b * classes;
        for (int c = 0; c < classes; c++) {
            double target = smoothing / classes + (c == y ? 1.0 - smoothing : 0.0);
            double d = scores_are_log_probs ? -target : exp((double)s[c] - lse) - target;
            g[c] = (float)(d / batch);
        }
    }
    if (correct) *correct = hits;
    return total;
}
