#!/bin/sh
# Benchmarks, run from the repository root (`make bench` runs the throughput and epoch modes).
#
#   sh bench/run.sh [throughput] [MODEL...]   training/inference img/s of convnet and PyTorch
#   sh bench/run.sh profile MODEL [ARGS]      per-layer times of one step (bench/profile.c; see its usage)
#   sh bench/run.sh epoch                     epoch time, peak RSS, augmentation overhead (CLI + bench/torch_epoch.py)
#   sh bench/run.sh int8 [MODEL...]           int8 inference on the CPU (convnet eval --int8) against float
#                                             inference, img/s (bench/int8_throughput.c; default seed001,
#                                             seed003, seed004)
#   sh bench/run.sh bf16 [MODEL...]           mixed-precision training (--precision bf16) against float32
#                                             training, img/s (bench/throughput.c --bf16; default seed001,
#                                             seed003); needs AVX512_BF16
#   sh bench/run.sh decode                    decoding 70,000 MNIST PNGs: convnet's image folder vs torchvision's
#                                             ImageFolder + PIL (bench/decode_bench.sh)
#
# Throughput: builds bench/throughput.c against build/libconvnet.a, runs it and,
# when Debian's /usr/bin/python3 has torch, bench/torch_bench.py in the same run
# (same models, batch, threads); prints a markdown table and writes it, with a
# description of the machine, to bench/RESULTS.md.
# Throughput runs ROUNDS rounds (convnet, then PyTorch, in each): the table gives the
# median img/s over the rounds, and as ratio the median of the rounds' ratios (PyTorch's
# figures move by 10-30% from one process to the next).
# Environment: THREADS (2), BATCH (128), BENCH_SECONDS per timed run (0.4), REPEATS (3),
# ROUNDS (3); epoch mode: DATA (../shared/data/mnist), EPOCH_REPEATS (3).
set -e
sh scripts/install-deps.sh bench >&2 || exit 1
MODE=throughput
case "$1" in throughput|profile|epoch|decode|int8|bf16) MODE=$1; shift ;; esac
if [ "$MODE" = decode ]; then exec sh bench/decode_bench.sh "$@"; fi

THREADS=${THREADS:-2}
BATCH=${BATCH:-128}
SECONDS_PER_RUN=${BENCH_SECONDS:-0.4}
REPEATS=${REPEATS:-3}
ROUNDS=${ROUNDS:-3}
PEAK=   # measured at the start of a throughput run (bench/peak.c), never a constant
BUILD=${BUILD:-build}
TORCH_PY=bench/torch_python.sh   # /usr/bin/python3 with glibc keeping freed memory
OUT=bench/RESULTS.md
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

machine_description() {
    echo "- CPU: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores available; flags: $CPU_FLAGS"
    echo "- measured peak (bench/peak.c: independent register multiply-adds on $THREADS threads, best of 3):" \
         "$PEAK_LINE; the \"% of peak\" column divides by the $ACTIVE_SET figure, $PEAK GFLOP/s"
    echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'); load average before the run: $LOAD_BEFORE"
    echo "- compiler: $(${CC:-gcc} --version | head -1)"
    if [ -n "$TORCH_VERSION" ]; then echo "- PyTorch: $TORCH_VERSION ($TORCH_PY)"; else echo "- PyTorch: not available"; fi
    echo "- settings: $THREADS threads, batch $BATCH, float32, random in-memory data, best of $REPEATS runs of ~${SECONDS_PER_RUN} s after warm-up in each of $ROUNDS rounds, median over the rounds"
}

# Builds bench/NAME.c into $BUILD/bench/NAME against the library.
build_bench_program() {
    make --no-print-directory "$BUILD/libconvnet.a" >&2
    mkdir -p "$BUILD/bench"
    libs=$(pkg-config --libs zlib libcurl libcrypto libcjson cairo libpng libprotobuf-c libjpeg libarchive 2>/dev/null || true)
    ${CC:-gcc} -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -fopenmp -Iinclude -Isrc \
        "bench/$1.c" -o "$BUILD/bench/$1" "$BUILD/libconvnet.a" $libs -lm
}

# Joins the rounds' lines of convnet ("round<TAB>model params macs train infer ...") and of
# PyTorch ("round<TAB>model params train infer") into the markdown table: medians over rounds.
throughput_table() {
    awk -F '\t' -v peak="$PEAK" '
        function median(a, n,   i, j, t) {
            for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
            return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
        }
        function median_of(key, field,   i, a) { for (i = 1; i <= count[key]; i++) a[i] = value[key, field, i]; return median(a, count[key]) }
        function ratio_of(key, field,   i, a) { for (i = 1; i <= ratios[key]; i++) a[i] = rat[key, field, i]; return median(a, ratios[key]) }
        function add(key, field, v) { value[key, field, count[key]] = v }
        FNR == NR { torch_train[$1, $2] = $4; torch_infer[$1, $2] = $5; t = "torch " $2; count[t]++; add(t, 1, $4); add(t, 2, $5); next }
        {
            name = $2
            if (!(name in params)) { order[++models] = name; params[name] = $3; macs[name] = $4; issued[name] = $10 }
            count[name]++; add(name, 1, $5); add(name, 2, $6)
            if (($1, name) in torch_train) { k = ++ratios[name]; rat[name, 1, k] = $5 / torch_train[$1, name]; rat[name, 2, k] = $6 / torch_infer[$1, name] }
        }
        END {
            print "| model | params | MACs | convnet train img/s | torch train img/s | ratio | convnet infer img/s | torch infer img/s | ratio | direct-equivalent train GFLOP/s | % of peak | issued train MACs | issued train GFLOP/s | % of peak |"
            print "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
            for (m = 1; m <= models; m++) {
                name = order[m]; t = "torch " name
                train = median_of(name, 1); infer = median_of(name, 2); gflops = train * 6 * macs[name] * 1e-9
                tt = count[t] ? sprintf("%d", median_of(t, 1)) : "-"; ti = count[t] ? sprintf("%d", median_of(t, 2)) : "-"
                rt = ratios[name] ? sprintf("%.2fx", ratio_of(name, 1)) : "-"; ri = ratios[name] ? sprintf("%.2fx", ratio_of(name, 2)) : "-"
                issued_gflops = train * 2 * issued[name] * 1e-9
                printf "| %s | %d | %.2fM | %d | %s | %s | %d | %s | %s | %.1f | %.1f%% | %.2fM | %.1f | %.1f%% |\n", name, params[name], macs[name] / 1e6,
                       train, tt, rt, infer, ti, ri, gflops, 100 * gflops / peak, issued[name] / 1e6, issued_gflops, 100 * issued_gflops / peak
            }
        }' "$TMP/torch.tsv" "$TMP/convnet.tsv"
}

# Measures the peak of every kernel set the CPU runs (bench/peak.c) and sets PEAK to the
# figure of the set libconvnet uses, PEAK_LINE to all of them, CPU_FLAGS to the flags.
measure_peak() {
    mkdir -p "$BUILD/bench"
    ${CC:-gcc} -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -fopenmp bench/peak.c -o "$BUILD/bench/peak"
    "$BUILD/bench/peak" --threads "$THREADS" > "$TMP/peak.tsv"
    ACTIVE_SET=$(awk -F '\t' '$1 == "active" { print $2 }' "$TMP/peak.tsv")
    PEAK=$(awk -F '\t' -v set="$ACTIVE_SET" '$1 == "peak" && $2 == set { print $4 }' "$TMP/peak.tsv")
    PEAK_LINE=$(awk -F '\t' '$1 == "peak" { printf "%s%s %s GFLOP/s", sep, $2, $4; sep = ", " }' "$TMP/peak.tsv")
    CPU_FLAGS=$(awk -F '\t' '$1 == "cpu" { print $3 }' "$TMP/peak.tsv")
    echo "peak: $PEAK_LINE (active set: $ACTIVE_SET); CPU flags: $CPU_FLAGS" >&2
}

run_throughput() {
    measure_peak
    build_bench_program throughput
    # Default: every preset and the CIFAR-style colour model bench/cifar-c.spec (3x32x32, 122k params).
    if [ $# -eq 0 ]; then
        make --no-print-directory "$BUILD/convnet" >&2
        set -- $("$BUILD/convnet" models | awk 'NR > 1 { print $1 }') bench/cifar-c.spec
    fi
    LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)
    : > "$TMP/torch.tsv"
    TORCH_VERSION=
    if "$TORCH_PY" -c 'import torch' 2>/dev/null; then
        TORCH_VERSION=$("$TORCH_PY" -c 'import torch; print(torch.__version__)')
    else
        echo "bench: $TORCH_PY has no torch; measuring convnet only" >&2
    fi
    : > "$TMP/convnet.tsv"
    for round in $(seq "$ROUNDS"); do
        echo "round $round/$ROUNDS: convnet ..." >&2
        "$BUILD/bench/throughput" --threads "$THREADS" --batch "$BATCH" --seconds "$SECONDS_PER_RUN" \
            --repeats "$REPEATS" --peak "$PEAK" "$@" | sed "s/^/$round\t/" >> "$TMP/convnet.tsv"
        if [ -n "$TORCH_VERSION" ]; then
            echo "round $round/$ROUNDS: PyTorch ..." >&2
            "$TORCH_PY" bench/torch_bench.py --threads "$THREADS" --batch "$BATCH" --seconds "$SECONDS_PER_RUN" \
                --repeats "$REPEATS" "$@" | sed "s/^/$round\t/" >> "$TMP/torch.tsv"
        fi
    done
    throughput_table > "$TMP/table.md"
    cat "$TMP/table.md"
    # keep the other modes' sections of an earlier run (epoch, int8)
    if [ -f "$OUT" ]; then awk '/^## / { keep = ($0 !~ /^## Throughput/) } keep' "$OUT" > "$TMP/epoch-section.md"; else : > "$TMP/epoch-section.md"; fi
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
        echo "per image (the direct algorithm's work: GFLOP/s and % of peak count that, although the Winograd"
        echo "kernels of the 3x3 layers do 1/2 to 2/3 of those multiply-adds); inference = eval-mode forward."
        echo "PyTorch: the same nn.Sequential models (bench/torch_bench.py)."
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
    drop_section "Epoch time and augmentation"
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

# drop_section TITLE: removes "## TITLE" and its text (up to the next "## " heading) from
# $OUT, which is created if missing; a mode then appends its new section.
drop_section() {
    [ -f "$OUT" ] || echo "# Benchmark results" > "$OUT"
    awk -v title="## $1" '/^## / { skip = ($0 == title) } !skip' "$OUT" > "$TMP/out.md" && cat "$TMP/out.md" > "$OUT"
}

# int8 inference on the CPU against float inference (bench/int8_throughput.c), ROUNDS rounds;
# the table gives the medians over the rounds. Appends its section to $OUT (replacing an earlier one).
run_int8() {
    build_bench_program int8_throughput
    LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)
    : > "$TMP/int8.tsv"
    for round in $(seq "$ROUNDS"); do
        echo "round $round/$ROUNDS: int8 ..." >&2
        "$BUILD/bench/int8_throughput" --threads "$THREADS" --batch "$BATCH" --seconds "$SECONDS_PER_RUN" \
            --repeats "$REPEATS" "$@" >> "$TMP/int8.tsv"
    done
    awk -F '\t' '
        function median(a, n,   i, j, t) {
            for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
            return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
        }
        { if (!($1 in n)) order[++models] = $1; k = ++n[$1]; fl[$1, k] = $2; i8[$1, k] = $3; r[$1, k] = $4; set[$1] = $5 }
        END {
            print "| model | float infer img/s | int8 infer img/s | int8 / float | int8 kernels |"
            print "|---|---:|---:|---:|---|"
            for (m = 1; m <= models; m++) {
                name = order[m]
                for (k = 1; k <= n[name]; k++) { a[k] = fl[name, k]; b[k] = i8[name, k]; c[k] = r[name, k] }
                printf "| %s | %d | %d | %.2fx |", name, median(a, n[name]), median(b, n[name]), median(c, n[name])
                printf " %s |\n", set[name]
            }
        }' "$TMP/int8.tsv" > "$TMP/int8.md"
    cat "$TMP/int8.md"
    drop_section "int8 inference"
    {
        echo "## int8 inference"
        echo
        echo "Written by \`sh bench/run.sh int8\` (part of \`make bench\`): bench/int8_throughput.c, random-init models,"
        echo "random MNIST-like images in memory, $THREADS threads, batch $BATCH; float = the eval-mode forward (input"
        echo "already normalised), int8 = \`cn_int8_predict\` (what \`convnet eval --int8\` runs; normalisation and"
        echo "quantisation of the raw pixels included). Best of $REPEATS runs of ~${SECONDS_PER_RUN} s in each of $ROUNDS rounds, median"
        echo "over the rounds. Load average before the run: $LOAD_BEFORE; $(date -u '+%Y-%m-%d %H:%M UTC')."
        echo
        cat "$TMP/int8.md"
    } >> "$OUT"
    echo "wrote $OUT" >&2
}

# bf16 mixed-precision training against float32 (bench/throughput.c with and without --bf16,
# alternately in each of ROUNDS rounds); medians over the rounds. Appends its section to $OUT.
run_bf16() {
    build_bench_program throughput
    [ $# -gt 0 ] || set -- seed001 seed003
    LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)
    : > "$TMP/bf16.tsv"
    for round in $(seq "$ROUNDS"); do
        echo "round $round/$ROUNDS: float32, bf16 ..." >&2
        for precision in fp32 bf16; do
            flag=; [ $precision = bf16 ] && flag=--bf16
            if ! "$BUILD/bench/throughput" --threads "$THREADS" --batch "$BATCH" --seconds "$SECONDS_PER_RUN" \
                    --repeats "$REPEATS" $flag "$@" 2> "$TMP/bf16.err" | sed "s/^/$precision\t/" >> "$TMP/bf16.tsv"; then :; fi
            if [ -s "$TMP/bf16.err" ]; then cat "$TMP/bf16.err" >&2; break 2; fi
        done
    done
    if [ -s "$TMP/bf16.err" ]; then
        printf 'bf16 training did not run on this machine: %s\n' "$(head -1 "$TMP/bf16.err")" > "$TMP/bf16.md"
    else
        awk -F '\t' '
            function median(a, n,   i, j, t) {
                for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
                return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
            }
            { if (!($2 in seen)) { seen[$2] = 1; order[++models] = $2 } k = ++n[$1, $2]; v[$1, $2, k] = $5 }
            END {
                print "| model | float32 train img/s | bf16 train img/s | bf16 / float32 |"
                print "|---|---:|---:|---:|"
                for (m = 1; m <= models; m++) {
                    name = order[m]
                    for (k = 1; k <= n["fp32", name]; k++) a[k] = v["fp32", name, k]
                    for (k = 1; k <= n["bf16", name]; k++) b[k] = v["bf16", name, k]
                    f = median(a, n["fp32", name]); h = median(b, n["bf16", name])
                    printf "| %s | %d | %d | %.2fx |\n", name, f, h, h / f
                }
            }' "$TMP/bf16.tsv" > "$TMP/bf16.md"
    fi
    cat "$TMP/bf16.md"
    drop_section "bf16 training"
    {
        echo "## bf16 training"
        echo
        echo "Written by \`sh bench/run.sh bf16\` (part of \`make bench\`): bench/throughput.c training steps (SGD with"
        echo "momentum, random MNIST-like images in memory), float32 against \`--precision bf16\` (the same sessions"
        echo "\`convnet train\` runs), $THREADS threads, batch $BATCH, best of $REPEATS runs of ~${SECONDS_PER_RUN} s, the two"
        echo "alternating in each of $ROUNDS rounds; medians over the rounds. Load average before the run: $LOAD_BEFORE;"
        echo "$(date -u '+%Y-%m-%d %H:%M UTC')."
        echo
        cat "$TMP/bf16.md"
    } >> "$OUT"
    echo "wrote $OUT" >&2
}

run_profile() {
    build_bench_program profile
    "$BUILD/bench/profile" --threads "$THREADS" --batch "$BATCH" "$@"
}

case "$MODE" in
throughput) run_throughput "$@" ;;
bf16) run_bf16 "$@" ;;
profile) run_profile "$@" ;;
epoch) run_epoch "$@" ;;
int8) run_int8 "$@" ;;
esac
