#!/usr/bin/env python3
"""Paper estimate of data-parallel scaling under mpirun (README, "Several processes (MPI)").

Per step and node: compute = (B / N) / node_throughput (measured training img/s of one
2-core node, README speed table), then the exchange, not overlapped with compute:
  * the gradient all-reduce, ring: 2(N-1) alpha + 2 (N-1)/N * 4P / beta
  * SyncBatchNorm as convnet does it (bit-identical to one process): per BN layer, two
    all-gathers (forward, backward) of B rows of 2C doubles, ring: (N-1) alpha + (N-1)/N S / beta
  * the loss rows (B x 16 bytes, all-gather) and the stop flag (tiny all-reduce, log2 N rounds)
Alternatives: "sums" all-reduces each rank's per-channel sums (2C doubles; within rounding,
not bit-identical), "local" is --local-bn (no batch-norm traffic).
Prints, per model, link and node count, the smallest global batch B with
compute / (compute + exchange) >= 0.8, and the efficiency at 128 images per node.
Assumptions: alpha 30 us at 10 Gb/s (TCP), 5 us at 100 Gb/s (RDMA); beta the line rate;
one rank per node using all its cores; no overlap; compute scales linearly with B/N.
"""
MODELS = {  # params, BN channels (in order), node training img/s (2 cores, batch 128;
    # build/bench/throughput on the 2-core AMD EPYC (AVX2) of 2026-12-06, commit 6e3a581)
    "c8k": (7580, [10, 10, 16, 10, 10, 16, 16], 7094),
    "seed001": (19452, [8, 16, 8, 16, 32, 32, 10], 3729),
    "seed004-net": (1199882, [], 1630),
}
LINKS = {"10 Gb/s": (30e-6, 1.25e9), "100 Gb/s": (5e-6, 12.5e9)}


def rounds(n):
    return n.bit_length() - 1


def exchange(mode, n, b, params, bn, alpha, beta):
    t = 2 * (n - 1) * alpha + 2 * (n - 1) / n * 4 * params / beta
    for c in bn:
        if mode == "sync":
            t += 2 * ((n - 1) * alpha + (n - 1) / n * b * 2 * c * 8 / beta)
        elif mode == "sums":
            t += 2 * (2 * rounds(n) * alpha + 2 * c * 8 * 2 / beta)
    if mode == "sync" and bn:
        t += (n - 1) * alpha + (n - 1) / n * b * 16 / beta
    else:
        t += 2 * rounds(n) * alpha
    return t + 2 * rounds(n) * alpha


def efficiency(mode, n, b, model, link):
    params, bn, thr = MODELS[model]
    tc = (b / n) / thr
    return tc / (tc + exchange(mode, n, b, params, bn, *LINKS[link]))


def main():
    print("| batch norm | model | link | 8 nodes | 32 nodes | 64 nodes |")
    print("|---|---|---|---|---|---|")
    for mode in ("sync", "sums", "local"):
        for model, (_, bn, _) in MODELS.items():
            if mode != "sync" and not bn:
                continue
            for link in LINKS:
                cells = []
                for n in (8, 32, 64):
                    b = n
                    while efficiency(mode, n, b, model, link) < 0.8 and b < 10 ** 6:
                        b += n
                    at128 = efficiency(mode, n, 128 * n, model, link)
                    cells.append(("B >= %d" % b if b < 10 ** 6 else "never") + " (E %.2f at 128/node)" % at128)
                print("| %s | %s | %s | %s |" % (mode, model, link, " | ".join(cells)))


if __name__ == "__main__":
    main()
