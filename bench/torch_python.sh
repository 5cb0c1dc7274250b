#!/bin/sh
# Debian's /usr/bin/python3, for the PyTorch side of every benchmark, with glibc keeping the
# memory PyTorch frees. glibc hands large freed blocks back to the kernel (mmap threshold, heap
# trimming), so a program that allocates its tensors anew every step, as PyTorch does, takes
# page faults on every step. On the virtual machines these benchmarks ran on, faults are
# expensive: PyTorch 1.13 trained res20k at ~2,100 img/s with glibc's defaults (about 250,000
# minor faults in a 6 s run) and at ~6,700 img/s with the settings below (about 70,000, most of
# them start-up), seed001 at ~900 against ~2,700. So the comparison is with PyTorch at its best.
# convnet allocates its buffers once per session and runs with the defaults.
export MALLOC_MMAP_THRESHOLD_=4294967296
export MALLOC_TRIM_THRESHOLD_=4294967296
export MALLOC_TOP_PAD_=268435456
exec /usr/bin/python3 "$@"
