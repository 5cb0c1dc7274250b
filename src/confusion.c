/* Confusion-matrix counting, shared by training (its plot) and evaluation. */
#include "convnet.h"

void cn_confusion_add(int64_t *confusion, int classes, const uint8_t *labels, const int *predictions, int n) {
    for (int i = 0; i < n; i++) {
        int t = labels[i], p = predictions[i];
        if (t < classes && p >= 0 && p < classes) confusion[(size_t)t * classes + p]++;
    }
}
