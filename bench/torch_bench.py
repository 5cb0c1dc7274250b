"""PyTorch side of the throughput benchmark: the seed models as nn.Sequential,
exactly as docs/SEED-MODELS.md gives them, timed the same way as
bench/throughput.c (batch 128, random in-memory tensors, SGD momentum 0.9,
2 threads, warm-up, best of a few repeats).

    /usr/bin/python3 bench/torch_bench.py [--threads N] [--batch N] [--seconds S] [--repeats N] [MODEL...]

Prints one tab-separated line per model: model params train_img_s infer_img_s.
"""
import argparse
import os
import sys
import time

import torch
import torch.nn as nn


def seed000():
    def block(cin, cout):
        return [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU()]
    return nn.Sequential(*block(1, 16), nn.MaxPool2d(2), *block(16, 32), nn.MaxPool2d(2), *block(32, 40),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.3), nn.Linear(40, 10))


def seed001():
    def block(cin, cout, k, pad=0):
        return [nn.Conv2d(cin, cout, k, padding=pad, bias=False), nn.ReLU(), nn.BatchNorm2d(cout), nn.Dropout(0.05)]
    return nn.Sequential(*block(1, 8, 3, 1), *block(8, 16, 3), nn.MaxPool2d(2),
                         *block(16, 8, 1, 1), *block(8, 16, 3), *block(16, 32, 3), *block(32, 32, 3),
                         *block(32, 10, 3), nn.AvgPool2d(5), nn.Flatten(), nn.LogSoftmax(dim=1))


def seed002():
    def conv(cin, cout, k=3):
        return nn.Conv2d(cin, cout, k, bias=False)
    return nn.Sequential(conv(1, 8), nn.ReLU(), conv(8, 8), nn.ReLU(), nn.MaxPool2d(2),
                         conv(8, 16), nn.ReLU(), conv(16, 16), nn.ReLU(), nn.MaxPool2d(2),
                         conv(16, 32), nn.ReLU(), conv(32, 10, 1), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.LogSoftmax(dim=1))


def seed003():
    return nn.Sequential(nn.Conv2d(1, 16, 3), nn.ReLU(), nn.Conv2d(16, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(32, 40, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(40, 24, 1), nn.ReLU(),
                         nn.Flatten(), nn.Linear(600, 10), nn.LogSoftmax(dim=1))


def seed004():
    def block(cin, cout):
        return [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU()]
    return nn.Sequential(*block(1, 20), nn.MaxPool2d(2), *block(20, 28), nn.MaxPool2d(2), *block(28, 64),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10), nn.LogSoftmax(dim=1))


def seed004_net():
    return nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Dropout(0.25), nn.Flatten(), nn.Linear(9216, 128), nn.ReLU(), nn.Dropout(0.5),
                         nn.Linear(128, 10), nn.LogSoftmax(dim=1))


def cifar_c():
    """bench/cifar-c.spec: 3x32x32 input, 122,218 parameters."""
    def block(cin, cout):
        return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]
    return nn.Sequential(*block(3, 32), *block(32, 32), nn.MaxPool2d(2), *block(32, 64), *block(64, 64),
                         nn.MaxPool2d(2), *block(64, 96), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(96, 10),
                         nn.LogSoftmax(dim=1))


MODELS = {"seed000": seed000, "seed001": seed001, "seed002": seed002, "seed003": seed003,
          "seed004-net": seed004_net, "seed004": seed004, "cifar-c": cifar_c}
INPUT_SHAPE = {"cifar-c": (3, 32, 32)}   # the others: (1, 28, 28)
LOGITS = {"seed000"}   # ends in Linear: CrossEntropyLoss; the others end in LogSoftmax: NLLLoss

# The presets that have a PyTorch twin in the fixtures (tests/fixtures/torch_models.py: ds8k,
# cifar-s9, ...), the same modules the numerics tests compare against.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures"))
import torch_models  # noqa: E402

for _name in torch_models.NAMES:
    if _name not in MODELS:
        MODELS[_name] = (lambda n: lambda: torch_models.build(n))(_name)
        INPUT_SHAPE[_name] = torch_models.input_shape(_name)
        if not torch_models.ends_with_log_softmax(torch_models.build(_name)):
            LOGITS.add(_name)


def measure(step, batch, seconds, repeats):
    for _ in range(3):
        step()
    t0 = time.perf_counter()
    step()
    once = time.perf_counter() - t0
    steps = max(2, int(seconds / once)) if once > 0 else 1000
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            step()
        best = max(best, steps * batch / (time.perf_counter() - start))
    return best


def bench(name, args):
    torch.manual_seed(1)
    model = MODELS[name]()
    params = sum(p.numel() for p in model.parameters())
    x = torch.randn(args.batch, *INPUT_SHAPE.get(name, (1, 28, 28)))
    y = torch.randint(0, 10, (args.batch,))
    loss_fn = nn.CrossEntropyLoss() if name in LOGITS else nn.NLLLoss()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def train_step():
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()

    def infer_step():
        with torch.no_grad():
            model(x)

    model.train()
    train = measure(train_step, args.batch, args.seconds, args.repeats)
    model.eval()
    infer = measure(infer_step, args.batch, args.seconds, args.repeats)
    print(f"{name}\t{params}\t{train:.0f}\t{infer:.0f}", flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--seconds", type=float, default=0.4)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("models", nargs="*", default=list(MODELS))
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    for name in [os.path.basename(m)[:-5] if m.endswith(".spec") else m for m in args.models]:
        if name not in MODELS:   # convnet's own presets (c8k, ...) have no PyTorch definition here
            print(f"torch_bench.py: no PyTorch model '{name}' (known: {', '.join(MODELS)}); skipped", file=sys.stderr)
            continue
        bench(name, args)


if __name__ == "__main__":
    main()
