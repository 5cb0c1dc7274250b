"""torchvision side of bench/decode_bench.sh: decodes every image of an
ImageFolder (DIR/train and DIR/test) through ImageFolder's PIL loader into
uint8 tensors, as a training script does before its first epoch, and prints
"torchvision<TAB>workers N<TAB><images><TAB><seconds>".

    /usr/bin/python3 bench/decode_bench.py DIR WORKERS

Transform: Grayscale() then PILToTensor() (uint8, no scaling): the same work as
convnet's decode into its uint8 in-memory form. WORKERS > 0 uses a DataLoader
with that many worker processes (batch 1000)."""
import sys
import time

import torch
from torchvision import datasets, transforms


def main():
    root, workers = sys.argv[1], int(sys.argv[2])
    torch.set_num_threads(1)
    tf = transforms.Compose([transforms.Grayscale(), transforms.PILToTensor()])
    t0 = time.perf_counter()
    n = 0
    for split in ("train", "test"):
        ds = datasets.ImageFolder(f"{root}/{split}", transform=tf)
        if workers > 0:
            loader = torch.utils.data.DataLoader(ds, batch_size=1000, num_workers=workers)
            for x, _ in loader:
                n += x.shape[0]
        else:
            for i in range(len(ds)):
                ds[i]
                n += 1
    print(f"torchvision\tworkers {workers}\t{n}\t{time.perf_counter() - t0:.3f}", flush=True)


if __name__ == "__main__":
    main()
