#!/bin/sh
# Training and inference throughput of two commits side by side, in one run:
#
#   sh bench/compare.sh REV [MODEL...]     (default models: seed000 seed001 seed002 seed003 seed004)
#
# Builds REV's library and bench/throughput.c in a temporary git worktree and this
# checkout's in build/, then runs ROUNDS rounds (default 3), each running REV's binary and
# this checkout's one after the other on the same models (2 threads, batch 128), and prints
# per model the median img/s of both and the median of the rounds' ratios (this / REV).
# For "speed stays within noise" after a change. Needs a quiet machine.
set -eu
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { sed -n '2,10p' "$0"; exit 2; }
REV=$1; shift
[ $# -gt 0 ] || set -- seed000 seed001 seed002 seed003 seed004
ROUNDS=${ROUNDS:-3}
THREADS=${THREADS:-2}
TMP=$(mktemp -d)
WT=$TMP/rev
trap 'git worktree remove --force "$WT" 2>/dev/null; rm -rf "$TMP"' EXIT
git worktree add --detach "$WT" "$REV" > /dev/null 2>&1 || { echo "compare.sh: cannot check out $REV" >&2; exit 1; }
libs=$(pkg-config --libs zlib libcurl libcrypto libcjson cairo libpng libprotobuf-c libjpeg libarchive)
# build_throughput TREE OUT: TREE's library and its bench/throughput.c as OUT.
build_throughput() {
    make -s -C "$1" build/libconvnet.a >&2
    ${CC:-gcc} -std=c11 -D_GNU_SOURCE -O2 -fopenmp -I"$1/include" -I"$1/src" "$1/bench/throughput.c" \
        -o "$2" "$1/build/libconvnet.a" $libs -lm
}
build_throughput "$WT" "$TMP/throughput-rev"
build_throughput . "$TMP/throughput-this"
for round in $(seq "$ROUNDS"); do
    echo "round $round/$ROUNDS ..." >&2
    for side in rev this; do
        "$TMP/throughput-$side" --threads "$THREADS" --batch 128 --seconds 0.4 --repeats 3 "$@" |
            sed "s/^/$round\t$side\t/" >> "$TMP/all.tsv"
    done
done
# all.tsv: round, side, model, params, macs, train img/s, infer img/s, ...
awk -F '\t' -v rev="$REV" '
    function median(a, n,   i, j, t) {
        for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
        return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    { if (!($3 in seen)) { seen[$3] = 1; order[++n] = $3 } v[$2, $3, 1, $1] = $6; v[$2, $3, 2, $1] = $7; rounds = $1 }
    END {
        printf "| model | %s train img/s | this train img/s | ratio | %s infer img/s | this infer img/s | ratio |\n", rev, rev
        print "|---|---:|---:|---:|---:|---:|---:|"
        for (m = 1; m <= n; m++) {
            line = "| " order[m]
            for (f = 1; f <= 2; f++) {
                for (r = 1; r <= rounds; r++) { a[r] = v["rev", order[m], f, r]; b[r] = v["this", order[m], f, r]; q[r] = b[r] / a[r] }
                ma = median(a, rounds); mb = median(b, rounds); mq = median(q, rounds)
                line = line sprintf(" | %d | %d | %.3f", ma, mb, mq)
            }
            print line " |"
        }
    }' "$TMP/all.tsv"
