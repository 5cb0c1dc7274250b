#!/bin/sh
# Benchmarks, run from the repository root (`make bench` runs the throughput mode).
#
#   sh bench/run.sh [throughput] [MODEL...]   training/inference img/s of convnet and PyTorch
#   sh bench/run.sh profile MODEL [ARGS]      per-layer times of one step (bench/profile.c; see its usage)
#   sh bench/run.sh epoch                     epoch time and augmentation (CLI based; not yet written)
#
# Throughput: builds bench/throughput.c against build/libconvnet.a, runs it and,
# when Debian's /usr/bin/python3 has torch, bench/torch_bench.py in the same run
# (same models, batch, threads); prints a markdown table and writes it, with a
# description of the machine, to bench/RESULTS.md.
# Environment: THREADS (2), BATCH (128), BENCH_SECONDS per timed run (0.4), REPEATS (5).
set -e
MODE=throughput
case "$1" in throughput|profile|epoch) MODE=$1; shift ;; esac

THREADS=${THREADS:-2}
BATCH=${BATCH:-128}
SECONDS_PER_RUN=${BENCH_SECONDS:-0.4}
REPEATS=${REPEATS:-5}
PEAK=230
BUILD=${BUILD:-build}
TORCH_PY=/usr/bin/python3
OUT=bench/RESULTS.md
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

machine_description() {
    echo "- CPU: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores available" \
         "(peak float32 FMA throughput of two cores taken as $PEAK GFLOP/s)"
    echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'); load average before the run: $LOAD_BEFORE"
    echo "- compiler: $(${CC:-gcc} --version | head -1)"
    if [ -n "$TORCH_VERSION" ]; then echo "- PyTorch: $TORCH_VERSION ($TORCH_PY)"; else echo "- PyTorch: not available"; fi
    echo "- settings: $THREADS threads, batch $BATCH, float32, random in-memory data, best of $REPEATS runs of ~${SECONDS_PER_RUN} s after warm-up"
}

# Builds bench/NAME.c into $BUILD/bench/NAME against the library.
build_bench_program() {
    make --no-print-directory "$BUILD/libconvnet.a" >&2
    mkdir -p "$BUILD/bench"
    libs=$(pkg-config --libs zlib libcurl libcrypto libcjson cairo libpng libprotobuf-c 2>/dev/null || true)
    ${CC:-gcc} -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -fopenmp -Iinclude -Isrc \
        "bench/$1.c" -o "$BUILD/bench/$1" "$BUILD/libconvnet.a" $libs -lm
}

# Joins convnet's and PyTorch's lines (by model) into the markdown table.
throughput_table() {
    awk -F '\t' -v peak="$PEAK" '
        function ratio(a, b) { return (b > 0) ? sprintf("%.2fx", a / b) : "-" }
        function num(x) { return (x == "") ? "-" : x }
        FNR == NR { torch_train[$1] = $3; torch_infer[$1] = $4; next }
        FNR == 1 {
            print "| model | params | MACs | convnet train img/s | torch train img/s | ratio | convnet infer img/s | torch infer img/s | ratio | train GFLOP/s | % of peak |"
            print "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        }
        {
            printf "| %s | %d | %.2fM | %d | %s | %s | %d | %s | %s | %.1f | %.1f%% |\n", $1, $2, $3 / 1e6, $4,
                   num(torch_train[$1]), ratio($4, torch_train[$1]), $5, num(torch_infer[$1]), ratio($5, torch_infer[$1]), $6, $8
        }' "$TMP/torch.tsv" "$TMP/convnet.tsv"
}

run_throughput() {
    build_bench_program throughput
    LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)
    : > "$TMP/torch.tsv"
    TORCH_VERSION=
    if "$TORCH_PY" -c 'import torch' 2>/dev/null; then
        TORCH_VERSION=$("$TORCH_PY" -c 'import torch; print(torch.__version__)')
    else
        echo "bench: $TORCH_PY has no torch; measuring convnet only" >&2
    fi
    echo "convnet ..." >&2
    "$BUILD/bench/throughput" --threads "$THREADS" --batch "$BATCH" --seconds "$SECONDS_PER_RUN" \
        --repeats "$REPEATS" --peak "$PEAK" "$@" > "$TMP/convnet.tsv"
    if [ -n "$TORCH_VERSION" ]; then
        echo "PyTorch ..." >&2
        "$TORCH_PY" bench/torch_bench.py --threads "$THREADS" --batch "$BATCH" --seconds "$SECONDS_PER_RUN" \
            --repeats "$REPEATS" "$@" > "$TMP/torch.tsv"
    fi
    throughput_table > "$TMP/table.md"
    cat "$TMP/table.md"
    {
        echo "# Benchmark results"
        echo
        echo "Written by \`make bench\` (bench/run.sh); numbers are from one run on one machine."
        echo
        echo "## Throughput (images per second)"
        echo
        machine_description
        echo
        echo "Training = forward + loss gradient + backward + SGD(momentum 0.9) step, costed at 6 x MACs FLOP"
        echo "per image; inference = eval-mode forward. PyTorch: the same nn.Sequential models (bench/torch_bench.py)."
        echo
        cat "$TMP/table.md"
        echo
        echo "## Epoch time and augmentation"
        echo
        echo "Not measured yet: see \`sh bench/run.sh epoch\`."
    } > "$OUT"
    echo "wrote $OUT" >&2
}

# Epoch-time and augmentation benchmarks through the CLI (build/convnet train ...):
# to be written; it should append its own section to bench/RESULTS.md.
run_epoch() {
    echo "bench: the epoch-time mode is not written yet" >&2
    exit 2
}

run_profile() {
    build_bench_program profile
    "$BUILD/bench/profile" --threads "$THREADS" --batch "$BATCH" "$@"
}

case "$MODE" in
throughput) run_throughput "$@" ;;
profile) run_profile "$@" ;;
epoch) run_epoch "$@" ;;
esac
