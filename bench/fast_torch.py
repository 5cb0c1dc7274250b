"""PyTorch version of the `fast` preset (src/presets/fast.spec): the same network and
recipe (3 epochs of OneCycle SGD, Nesterov momentum 0.9, max_lr 0.2, pct_start 0.2,
div 10, final div 100, weight decay 1e-4, batch 128, no augmentation), timed from
start (data loading from the gz IDX files included) to the final test accuracy.

    /usr/bin/python3 bench/fast_torch.py [--threads 2] [--data ../shared/data/mnist] [--epochs 3] [--seed 1]

Prints one line per epoch and a final line:
    torch fast: test acc 99.xx% after N epochs, S s wall (data loading included)
"""
import argparse
import gzip
import os
import time

t_start = time.time()
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402


def load(path, offset):
    with gzip.open(path, 'rb') as f:
        return np.frombuffer(f.read(), np.uint8, offset=offset)


def model():
    def block(cin, cout):
        return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]
    return nn.Sequential(*block(1, 8), nn.MaxPool2d(2), *block(8, 16), nn.MaxPool2d(2), *block(16, 40),
                         nn.Flatten(), nn.Linear(40 * 7 * 7, 10))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--data', default='../shared/data/mnist')
    ap.add_argument('--epochs', type=int, default=3)
    ap.add_argument('--batch', type=int, default=128)
    ap.add_argument('--max-lr', type=float, default=0.2)
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--val-split', type=int, default=0, help='evaluate on the last N training images instead')
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)

    def images(name):
        x = load(os.path.join(a.data, name), 16).reshape(-1, 1, 28, 28)
        return (torch.from_numpy(x.astype(np.float32)) / 255 - 0.1307) / 0.3081

    def labels(name):
        return torch.from_numpy(load(os.path.join(a.data, name), 8).astype(np.int64))

    xtr, ytr = images('train-images-idx3-ubyte.gz'), labels('train-labels-idx1-ubyte.gz')
    xte, yte = images('t10k-images-idx3-ubyte.gz'), labels('t10k-labels-idx1-ubyte.gz')
    if a.val_split:
        xte, yte = xtr[-a.val_split:], ytr[-a.val_split:]
        xtr, ytr = xtr[:-a.val_split], ytr[:-a.val_split]
    m = model()
    opt = torch.optim.SGD(m.parameters(), lr=a.max_lr, momentum=0.9, nesterov=True, weight_decay=1e-4)
    steps = (len(xtr) + a.batch - 1) // a.batch
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=a.max_lr, total_steps=steps * a.epochs, pct_start=0.2,
                                                div_factor=10, final_div_factor=100)
    acc = 0.0
    for ep in range(a.epochs):
        m.train()
        perm = torch.randperm(len(xtr))
        for i in range(steps):
            idx = perm[i * a.batch:(i + 1) * a.batch]
            loss = F.cross_entropy(m(xtr[idx]), ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        m.eval()
        with torch.no_grad():
            correct = sum((m(xte[j:j + 1000]).argmax(1) == yte[j:j + 1000]).sum().item()
                          for j in range(0, len(xte), 1000))
        acc = 100.0 * correct / len(xte)
        print(f'epoch {ep + 1}: test acc {acc:.2f}%  {time.time() - t_start:.1f} s', flush=True)
    print(f'torch fast: test acc {acc:.2f}% after {a.epochs} epochs, {time.time() - t_start:.1f} s wall '
          f'(data loading included, {a.threads} threads)')


if __name__ == '__main__':
    main()
