#!/bin/sh
# Data-parallel and sweep timings on this machine (issue: beyond one machine), from the
# repository root:
#
#   sh bench/mpi_bench.sh [--data DIR] [--model NAME] [--repeats N]
#
# 1. One epoch of MODEL (default seed001, batch 128) as 1 process x 2 threads and as
#    `mpirun -np 2` ranks x 1 thread: wall time per step, and the all-reduce time per step
#    that rank 0 reports (convnet prints it at the end of a run under mpirun), best of N.
# 2. A sweep of 10 short runs (c8k, 2 epochs on 10,000 images, 5 learning rates x 2 seeds):
#    two single-thread runs at once (--jobs 2 --threads 1) against one run at a time on
#    2 threads (--jobs 1 --threads 2): the wall time of the whole sweep.
# Prints a markdown table. Needs a quiet machine: every figure is a wall time.
set -eu
cd "$(dirname "$0")/.."
DATA=../shared/data/mnist
MODEL=seed001
REPEATS=2
while [ $# -gt 0 ]; do
    case "$1" in
        --data) DATA=$2; shift ;;
        --model) MODEL=$2; shift ;;
        --repeats) REPEATS=$2; shift ;;
        -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
        *) echo "mpi_bench.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
sh scripts/install-deps.sh build >&2 || exit 1
make -s build/convnet
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
cp build/convnet "$TMP/convnet"
BIN=$TMP/convnet
MPIRUN="mpirun --allow-run-as-root --oversubscribe --bind-to none -np 2"
COMMON="--model $MODEL --epochs 1 --batch-size 128 --data $DATA --no-download --quiet"
STEPS=$(( (60000 + 127) / 128 ))

# best_of CMD...: runs it REPEATS times; prints the smallest wall seconds of the epoch
# (metrics.csv's last column) and, under mpirun, the all-reduce ms from the last line.
epoch_time() {
    best=""; reduce=""
    for i in $(seq "$REPEATS"); do
        rm -rf "$TMP/out"
        "$@" --out "$TMP/out" > "$TMP/log" 2>&1 || { cat "$TMP/log" >&2; exit 1; }
        s=$(tail -1 "$TMP/out/metrics.csv" | awk -F, '{ print $NF }')
        r=$(sed -n 's/.*gradient all-reduces of [0-9]* floats, \([0-9.]*\) ms each.*/\1/p' "$TMP/log")
        if [ -z "$best" ] || awk "BEGIN { exit !($s < $best) }"; then best=$s; reduce=$r; fi
    done
    echo "$best ${reduce:--}"
}

echo "1 x 2 threads ..." >&2
set -- $(epoch_time $BIN train $COMMON --threads 2); one_s=$1
echo "2 ranks x 1 thread ..." >&2
set -- $(epoch_time $MPIRUN $BIN train $COMMON --threads 1); two_s=$1; two_r=$2

echo "sweep: 2 runs at once x 1 thread ..." >&2
SWEEP="sweep --model c8k --grid lr=0.02,0.05,0.1,0.2,0.4 --seeds 1-2 --epochs 2 --limit-train 10000 --data $DATA --no-download --quiet"
t0=$(date +%s.%N); $BIN $SWEEP --jobs 2 --threads 1 --out "$TMP/sw2" > /dev/null; t1=$(date +%s.%N)
echo "sweep: 1 run at a time x 2 threads ..." >&2
$BIN $SWEEP --jobs 1 --threads 2 --out "$TMP/sw1" > /dev/null; t2=$(date +%s.%N)

echo "| $MODEL, batch 128, one epoch ($STEPS steps) | epoch wall s (train + test) | ms per step (epoch / steps) | all-reduce ms per step |"
echo "|---|---:|---:|---:|"
awk -v s="$one_s" -v n="$STEPS" 'BEGIN { printf "| 1 process x 2 threads | %.2f | %.2f | - |\n", s, 1000 * s / n }'
awk -v s="$two_s" -v n="$STEPS" -v r="$two_r" 'BEGIN { printf "| 2 ranks x 1 thread (mpirun) | %.2f | %.2f | %s |\n", s, 1000 * s / n, r }'
echo
echo "| sweep: c8k, 10 runs of 2 epochs on 10,000 images | wall s |"
echo "|---|---:|"
awk -v a="$t0" -v b="$t1" -v c="$t2" 'BEGIN { printf "| 2 runs at once x 1 thread | %.1f |\n| 1 run at a time x 2 threads | %.1f |\n| ratio | %.2fx |\n", b - a, c - b, (c - b) / (b - a) }'
echo
echo "load average before and after: $(cut -d' ' -f1-3 /proc/loadavg); $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores"
