#!/bin/sh
# Reruns the accuracy table: every preset trained with its own recipe (its
# defaults, exactly `convnet train --model NAME`), the goal presets (c5k, c8k, c20k, fast,
# fast994, ds8k, res20k, best, fashion93) over 5 seeds, the others over 1 seed; prints final-epoch test accuracy (mean +- std over
# seeds) and the wall time per run, and writes bench/ACCURACY.md. fashion93 trains on
# Fashion-MNIST (--dataset fashion-mnist, found in /usr/share/datasets/fashion-mnist from
# Debian's dataset-fashion-mnist, or $CONVNET_DATA/fashion-mnist); the others on MNIST (--data).
#
#   sh bench/accuracy.sh [--quick] [--threads N] [--jobs N] [--data DIR] [PRESET...]
#
#   --quick    one seed per preset (c8k and c20k included)
#   --threads  threads per run (default 2); --jobs: runs at once (default 1).
#              --threads 1 --jobs <cores> trains more runs per hour; the wall
#              time per run is then that of a run sharing the machine.
#   PRESET...  only these presets (default: all of the table)
#
# The runs are `convnet sweep`s (--runs "model=NAME ...", seeds 1-5 and
# seed 1) into runs/accuracy/5seeds/ and runs/accuracy/1seed/, and fashion93's into
# runs/accuracy/fashion-5seeds/ (one directory per
# run: metrics.csv, train.log; sweep.csv, sweep.md, sweep.png beside them). Takes
# hours on a 2-core machine (it is for humans, not CI); a finished run is not
# repeated and an interrupted one resumes, so an interrupted table continues when
# the script is run again. Also times the `fast` preset
# against bench/fast_torch.py (PyTorch, same target) when `fast` is in the list.
set -u
cd "$(dirname "$0")/.."
sh scripts/install-deps.sh bench >&2 || exit 1
THREADS=2
JOBS=1
DATA=../shared/data/mnist
QUICK=0
LIST=""
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) QUICK=1 ;;
        --threads) THREADS=$2; shift ;;
        --jobs) JOBS=$2; shift ;;
        --data) DATA=$2; shift ;;
        -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
        *) LIST="$LIST $1" ;;
    esac
    shift
done
[ -n "$LIST" ] || LIST="seed000 seed001 seed002 seed003 seed004 seed004-tiny5 c5k c8k c20k fast fast994 ds8k res20k best fashion93"
make -s build/convnet || exit 1
# Run a private copy: other work rebuilding build/convnet mid-table would otherwise
# fail runs with "Text file busy" or change the binary between seeds.
TMPD=$(mktemp -d)
cp build/convnet "$TMPD/convnet" || exit 1
BIN=$TMPD/convnet
OUTROOT=runs/accuracy
mkdir -p "$OUTROOT"

# claim <preset>: the documents' claim (or our goal for c8k/c20k/fast).
claim() {
    case "$1" in
        seed000) echo ">99% in <20 epochs" ;;
        seed001) echo "99.54% at epoch 20 (98.24% after epoch 1)" ;;
        seed002) echo "97.47% after epoch 1" ;;
        seed003) echo "~98% with Adam" ;;
        seed004) echo "(defaults: 20 epochs, batch 512)" ;;
        seed004-tiny5) echo "95-96% after epoch 1, >98% after epoch 5" ;;
        c5k) echo "goal >=99.4% (<5k params, <=15 epochs)" ;;
        c8k) echo "goal >=99.4% (<8k params, <=15 epochs)" ;;
        c20k) echo "goal >=99.6% (<20k params, <=20 epochs)" ;;
        fast) echo "goal >=99.0% every seed, <=3.0 s per run" ;;
        fast994) echo "goal >=99.4% mean, <=15 s per run" ;;
        ds8k) echo "goal >=99.4% (<8k params, depthwise-separable, <=15 epochs)" ;;
        res20k) echo "goal >=99.5% (<20k params, residual, <=20 epochs)" ;;
        best) echo "goal >=99.7% (any size, <=10 min per run)" ;;
        fashion93) echo "goal >=93.0% on Fashion-MNIST, <=5 min per run" ;;
        *) echo "-" ;;
    esac
}
# args <preset>: model name and extra CLI options of a table row.
model_of() { case "$1" in seed004-tiny5) echo seed004 ;; *) echo "$1" ;; esac; }
extra_of() { case "$1" in seed004-tiny5) echo "--epochs 5 --batch-size 256 --lr 0.01" ;; fashion93) echo "--dataset fashion-mnist" ;; *) echo "" ;; esac; }
# Presets trained on Fashion-MNIST (their own sweep, --dataset fashion-mnist, no --data).
is_fashion() { case "$1" in fashion93) return 0 ;; *) return 1 ;; esac; }
# setting <preset>: the row's settings as sweep tokens (the same as model_of and extra_of).
setting_of() { case "$1" in seed004-tiny5) echo "model=seed004 epochs=5 batch=256 lr=0.01" ;; *) echo "model=$1" ;; esac; }
seeds_of() {
    if [ "$QUICK" = 1 ]; then echo 1; return; fi
    case "$1" in c5k|c8k|c20k|fast|fast994|ds8k|res20k|best|fashion93) echo "1 2 3 4 5" ;; *) echo 1 ;; esac
}
params_of() { $BIN models 2>/dev/null | awk -v m="$1" '$1 == m { print $3 }'; }

# mean_std <numbers...>: "mean +- std (min, n)" (sample std), or the number itself for n=1.
mean_std() {
    echo "$@" | awk '{ n = NF; s = 0; for (i = 1; i <= n; i++) s += $i; m = s / n; v = 0;
        for (i = 1; i <= n; i++) v += ($i - m) ^ 2; sd = n > 1 ? sqrt(v / (n - 1)) : 0;
        mn = $1; for (i = 2; i <= n; i++) if ($i < mn) mn = $i;
        if (n == 1) printf "%.2f (n=1)", m; else printf "%.2f ± %.2f (min %.2f, n=%d)", m, sd, mn, n }'
}

ROWS=$TMPD/rows
trap 'rm -rf "$TMPD"' EXIT
# The runs: one sweep per seed count, as many runs at once as --jobs.
MANY=""; ONE=""; FASHION=""
for p in $LIST; do
    if is_fashion "$p"; then FASHION="$FASHION${FASHION:+; }$(setting_of "$p")"
    elif [ "$(seeds_of "$p")" = 1 ]; then ONE="$ONE${ONE:+; }$(setting_of "$p")"
    else MANY="$MANY${MANY:+; }$(setting_of "$p")"; fi
done
sweep() {   # sweep <runs> <seeds> <dir> mnist|fashion
    [ -n "$1" ] || return 0
    if [ "$4" = fashion ]; then set -- "$1" "$2" "$3" --dataset fashion-mnist; else set -- "$1" "$2" "$3" --data "$DATA"; fi
    echo "== $BIN sweep --runs \"$1\" --seeds $2 --threads $THREADS --jobs $JOBS $4 $5 --out $OUTROOT/$3"
    $BIN sweep --runs "$1" --seeds "$2" --threads "$THREADS" --jobs "$JOBS" "$4" "$5" --out "$OUTROOT/$3" ||
        echo "   some runs FAILED (see $OUTROOT/$3/sweep.csv and the runs' train.log)"
}
sweep "$MANY" 1-5 5seeds mnist
sweep "$ONE" 1 1seed mnist
sweep "$FASHION" "$( [ "$QUICK" = 1 ] && echo 1 || echo 1-5 )" fashion-5seeds fashion
for p in $LIST; do
    model=$(model_of "$p"); extra=$(extra_of "$p")
    if is_fashion "$p"; then sub=fashion-5seeds
    elif [ "$(seeds_of "$p")" = 1 ]; then sub=1seed; else sub=5seeds; fi
    name=$(setting_of "$p" | tr ' ' ',')
    accs=""; first=""; times=""; epochs=""
    for s in $(seeds_of "$p"); do
        out=$OUTROOT/$sub/$name,seed=$s
        [ -f "$out/result" ] || { echo "   $p seed $s: not finished (see $out/train.log)"; continue; }
        a=$(tail -1 "$out/metrics.csv" | cut -d, -f6)
        a1=$(sed -n 2p "$out/metrics.csv" | cut -d, -f6)
        e=$(tail -1 "$out/metrics.csv" | cut -d, -f1)
        w=$(awk '{ printf "%.1f", $2 }' "$out/result")
        echo "   $p seed $s: epoch 1 $a1%, final (epoch $e) $a%, wall ${w}s"
        accs="$accs $a"; first="$first $a1"; times="$times $w"; epochs=$e
    done
    [ -n "$accs" ] || continue
    ms=$(mean_std $accs); ms1=$(mean_std $first)
    tm=$(echo $times | awk '{ s = 0; for (i = 1; i <= NF; i++) s += $i; printf "%.0f", s / NF }')
    echo "-- $p: final $ms; epoch 1 $ms1; wall ${tm}s/run"
    printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$p" "$(params_of "$model")" "$(claim "$p")" \
        "$ms" "$ms1" "$epochs" "$tm" "\`convnet train --model $model${extra:+ $extra}\`" >> "$ROWS"
done

TORCH=""
case " $LIST " in *" fast "*)
    if /usr/bin/python3 -c 'import torch' 2>/dev/null; then
        echo "== PyTorch: /usr/bin/python3 bench/fast_torch.py --threads $THREADS --data $DATA (bench/torch_python.sh)"
        TORCH=$(bench/torch_python.sh bench/fast_torch.py --threads "$THREADS" --data "$DATA" 2>&1 | tail -1)
        echo "   $TORCH"
    fi ;;
esac

{
    echo "# Accuracy table"
    echo
    echo "Generated by \`sh bench/accuracy.sh$( [ "$QUICK" = 1 ] && echo ' --quick')\` on $(date -u +%Y-%m-%d) ($(nproc) cores, --threads $THREADS, $(git rev-parse --short HEAD 2>/dev/null))."
    echo "Each preset is trained with its own recipe (\`convnet train --model NAME\`, no other options"
    echo "unless shown); accuracy is the **final-epoch** test accuracy on the 10,000 MNIST test images"
    echo "(fashion93: the 10,000 Fashion-MNIST test images),"
    echo "mean ± sample std over seeds (--seed 1..N), with the worst seed; wall time is per run,"
    echo "data loading included. Recipes were chosen on a 5,000-image validation split (--val-split 5000),"
    echo "never on the test set."
    echo
    echo "| preset | params | claim / goal | final test acc % | epoch-1 test acc % | epochs | wall s/run | command |"
    echo "|---|---|---|---|---|---|---|---|"
    cat "$ROWS"
    if [ -n "$TORCH" ]; then echo; echo "PyTorch (bench/fast_torch.py, same target): $TORCH"; fi
} > bench/ACCURACY.md.new
if [ -f bench/ACCURACY.md ] && grep -q '^## Notes' bench/ACCURACY.md; then
    { echo; sed -n '/^## Notes/,$p' bench/ACCURACY.md; } >> bench/ACCURACY.md.new
fi
mv bench/ACCURACY.md.new bench/ACCURACY.md
echo "wrote bench/ACCURACY.md"
