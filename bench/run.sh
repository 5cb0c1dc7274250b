#!/bin/sh
# Benchmarks, run from the repository root (`make bench` runs the throughput and epoch modes).
#
#   sh bench/run.sh [throughput] [MODEL...]   training/inference img/s of convnet and PyTorch
#   sh bench/run.sh profile MODEL [ARGS]      per-layer times of one step (bench/profile.c; see its usage)
#   sh bench/run.sh epoch                     epoch time, peak RSS, augmentation overhead (CLI + bench/torch_epoch.py)
#
# Throughput: builds bench/throughput.c against build/libconvnet.a, runs it and,
# when Debian's /usr/bin/python3 has torch, bench/torch_bench.py in the same run
# (same models, batch, threads); prints a markdown table and writes it, with a
# description of the machine, to bench/RESULTS.md.
# Environment: THREADS (2), BATCH (128), BENCH_SECONDS per timed run (0.4), REPEATS (5);
# epoch mode: DATA (../shared/data/mnist), EPOCH_REPEATS (3).
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
    # keep the epoch mode's section of an earlier run
    if [ -f "$OUT" ]; then sed -n '/^## Epoch time and augmentation/,$p' "$OUT" > "$TMP/epoch-section.md"; else : > "$TMP/epoch-section.md"; fi
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
        if [ -s "$TMP/epoch-section.md" ]; then echo; cat "$TMP/epoch-section.md"; fi
    } > "$OUT"
    echo "wrote $OUT" >&2
}

# timed OUTFILE CMD...: runs CMD (its output to $TMP/log) and appends
# "<wall s> <peak RSS KiB> <test acc %>" to OUTFILE (GNU time; RSS "-" without it).
timed() {
    out=$1; shift
    if [ -x /usr/bin/time ]; then
        /usr/bin/time -f "%e %M" -o "$TMP/time" "$@" > "$TMP/log" 2>&1 || { tail -3 "$TMP/log" >&2; return 1; }
    else
        t0=$(date +%s.%N)
        "$@" > "$TMP/log" 2>&1 || { tail -3 "$TMP/log" >&2; return 1; }
        echo "$t0 $(date +%s.%N)" | awk '{ printf "%.2f -\n", $2 - $1 }' > "$TMP/time"
    fi
    acc=$(sed -n 's/.*Accuracy: [0-9]*\/[0-9]* (\([0-9.]*\)%).*/\1/p; s/.*test_acc \([0-9.]*\).*/\1/p' "$TMP/log" | tail -1)
    echo "$(cat "$TMP/time") ${acc:--}" >> "$out"
}

# row NAME FILE: a table row from FILE's runs: median wall, max RSS, last accuracy.
row() {
    sort -n "$2" | awk -v name="$1" '{ t[NR] = $1; if ($2 != "-" && $2 > rss) rss = $2; acc = $3 }
        END { printf "| %s | %.2f | %d | %s | %s |\n", name, t[int((NR + 1) / 2)], NR,
                     rss ? sprintf("%.0f", rss / 1024) : "-", acc }'
}

median_of() { sort -n "$1" | awk '{ t[NR] = $1 } END { print t[int((NR + 1) / 2)] }'; }

# Epoch time through the CLI, data loading and test evaluation included:
# every preset one epoch with its own recipe (`convnet train --model P --epochs 1`),
# seed001 EPOCH_REPEATS times without and with --augment rotate=10,translate=0.1,
# and PyTorch's DataLoader epoch of seed001 (bench/torch_epoch.py) in the same run.
# Appends its section to bench/RESULTS.md (replacing an earlier one).
run_epoch() {
    make --no-print-directory "$BUILD/convnet" >&2
    DATA=${DATA:-../shared/data/mnist}
    EPOCH_REPEATS=${EPOCH_REPEATS:-3}
    LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)
    train="$BUILD/convnet train --epochs 1 --threads $THREADS --quiet --data $DATA --out $TMP/run"
    for i in $(seq "$EPOCH_REPEATS"); do
        echo "seed001 epoch $i/$EPOCH_REPEATS ..." >&2
        timed "$TMP/plain" $train --model seed001
        timed "$TMP/aug" $train --model seed001 --augment rotate=10,translate=0.1
    done
    : > "$TMP/presets.md"
    for p in $($BUILD/convnet models | awk 'NR > 1 && $1 != "seed001" { print $1 }'); do
        echo "$p epoch ..." >&2
        timed "$TMP/p-$p" $train --model "$p" && row "\`$p\` (its recipe)" "$TMP/p-$p" >> "$TMP/presets.md"
    done
    TORCH_VERSION=
    if "$TORCH_PY" -c 'import torch, torchvision' 2>/dev/null; then
        TORCH_VERSION=$("$TORCH_PY" -c 'import torch; print(torch.__version__)')
        echo "PyTorch DataLoader epochs ..." >&2
        timed "$TMP/torch" "$TORCH_PY" bench/torch_epoch.py --data "$DATA" --threads "$THREADS"
        timed "$TMP/torch-aug" "$TORCH_PY" bench/torch_epoch.py --data "$DATA" --threads "$THREADS" --augment
    else
        echo "bench: $TORCH_PY has no torch/torchvision; measuring convnet only" >&2
    fi
    {
        echo "| run | epoch wall s (median) | runs | peak RSS MB | test acc % |"
        echo "|---|---:|---:|---:|---:|"
        row "convnet seed001" "$TMP/plain"
        row "convnet seed001 --augment rotate=10,translate=0.1" "$TMP/aug"
        if [ -n "$TORCH_VERSION" ]; then
            row "PyTorch seed001, DataLoader (bench/torch_epoch.py)" "$TMP/torch"
            row "PyTorch seed001, DataLoader + RandomRotation(10), RandomAffine(translate 0.1)" "$TMP/torch-aug"
        fi
        cat "$TMP/presets.md"
        echo
        plain=$(median_of "$TMP/plain"); aug=$(median_of "$TMP/aug")
        echo "Augmentation overhead (seed001, rotate=10,translate=0.1): $(echo "$plain $aug" | awk '{ printf "%+.1f%%", 100 * ($2 / $1 - 1) }')."
        if [ -n "$TORCH_VERSION" ]; then
            echo "seed001 epoch, convnet vs PyTorch's DataLoader epoch: $(echo "$plain $(median_of "$TMP/torch")" | awk '{ printf "%.1fx faster", $2 / $1 }');" \
                 "with augmentation: $(echo "$aug $(median_of "$TMP/torch-aug")" | awk '{ printf "%.1fx faster", $2 / $1 }')."
        fi
    } > "$TMP/epoch.md"
    cat "$TMP/epoch.md"
    [ -f "$OUT" ] || echo "# Benchmark results" > "$OUT"
    sed -i '/^## Epoch time and augmentation/,$d' "$OUT"
    {
        echo "## Epoch time and augmentation"
        echo
        echo "Written by \`sh bench/run.sh epoch\` (part of \`make bench\`): \`convnet train --epochs 1\`, one full MNIST"
        echo "epoch end to end (reading the IDX files, training on 60,000 images, evaluating the 10,000 test"
        echo "images), $THREADS threads, wall time and peak resident memory of the whole process (GNU time)."
        echo "Load average before the run: $LOAD_BEFORE; $(date -u '+%Y-%m-%d %H:%M UTC')."
        echo
        cat "$TMP/epoch.md"
    } >> "$OUT"
    echo "wrote $OUT" >&2
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
