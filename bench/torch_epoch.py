"""PyTorch side of the epoch benchmark: one seed001 epoch the way the seed
documents train, through torchvision's MNIST dataset and a DataLoader
(batch 128, shuffled, ToTensor + Normalize(0.1307, 0.3081), num_workers 0),
SGD lr 0.01 momentum 0.9, then the test set evaluated (batch 1000).

    /usr/bin/python3 bench/torch_epoch.py --data DIR [--threads N] [--augment]

DIR holds the four MNIST IDX files (.gz); they are unpacked into a temporary
torchvision layout first (not timed). --augment adds the seeds'
RandomRotation(10) + RandomAffine(0, translate=(0.1, 0.1)).
Prints one line: "seconds <wall> test_acc <percent>" (the wall time includes
building the datasets, i.e. reading the files).
"""
import argparse
import gzip
import os
import shutil
import sys
import tempfile
import time

import torch
import torch.nn.functional as F
from torchvision import datasets, transforms

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_bench import seed001  # noqa: E402  (the same nn.Sequential as the throughput benchmark)

FILES = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]


def unpack(data_dir, root):
    raw = os.path.join(root, "MNIST", "raw")
    os.makedirs(raw)
    for name in FILES:
        src = os.path.join(data_dir, name)
        if os.path.exists(src + ".gz"):
            with gzip.open(src + ".gz", "rb") as f, open(os.path.join(raw, name), "wb") as g:
                shutil.copyfileobj(f, g)
        elif os.path.exists(src):
            shutil.copy(src, raw)
        else:
            sys.exit(f"torch_epoch: {src}(.gz) not found")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--augment", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    root = tempfile.mkdtemp()
    try:
        unpack(a.data, root)
        normalize = [transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))]
        augment = [transforms.RandomRotation(10), transforms.RandomAffine(0, translate=(0.1, 0.1))] if a.augment else []
        t0 = time.perf_counter()
        train = datasets.MNIST(root, train=True, download=False, transform=transforms.Compose(augment + normalize))
        test = datasets.MNIST(root, train=False, download=False, transform=transforms.Compose(normalize))
        train_loader = torch.utils.data.DataLoader(train, batch_size=128, shuffle=True)
        test_loader = torch.utils.data.DataLoader(test, batch_size=1000)
        model = seed001()
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        model.train()
        for x, y in train_loader:
            opt.zero_grad()
            F.nll_loss(model(x), y).backward()
            opt.step()
        model.eval()
        correct = 0
        with torch.no_grad():
            for x, y in test_loader:
                correct += (model(x).argmax(1) == y).sum().item()
        seconds = time.perf_counter() - t0
    finally:
        shutil.rmtree(root)
    print(f"seconds {seconds:.2f} test_acc {100.0 * correct / len(test):.2f}")


if __name__ == "__main__":
    main()
