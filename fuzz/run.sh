#!/bin/sh
# Runs libFuzzer targets for a bounded time each: fuzz/run.sh SECONDS BINARY...
# (make fuzz FUZZ_SECONDS=N calls this with every build-fuzz/fuzz_* binary).
#
# Each target fuzz_X starts from the committed seeds in fuzz/corpus/X/ plus
# whatever earlier runs found (build-fuzz/corpus/X/, not committed), with the
# dictionary fuzz/X.dict when there is one. A crash, leak, UBSan report, timeout
# or out-of-memory is saved as build-fuzz/crash-X-* (or leak-/timeout-/oom-)
# and fails the run; reproduce with `build-fuzz/fuzz_X FILE`, then add the file
# to tests/bad/ with a line in tests/bad/EXPECTED. Ends with a table of
# executions per target (also in build-fuzz/fuzz-stats.txt).
# FUZZ_TARGETS=idx,spec runs only those targets.
set -u
seconds=${1:?usage: fuzz/run.sh SECONDS BINARY...}
shift
out=build-fuzz
mkdir -p "$out"
printf '*\n' > "$out/.gitignore"   # nothing under build-fuzz/ is ever committed
stats="$out/fuzz-stats.txt"
: > "$stats"
export OMP_NUM_THREADS=1
# Leak checks on; the library never prints, so keep the logs to libFuzzer's own lines.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
failed=0
for bin in "$@"; do
    name=$(basename "$bin"); name=${name#fuzz_}
    if [ -n "${FUZZ_TARGETS:-}" ]; then
        case ",$FUZZ_TARGETS," in *",$name,"*) ;; *) continue ;; esac
    fi
    seeds=fuzz/corpus/$name
    work=$out/corpus/$name
    mkdir -p "$work"
    dict=
    [ -f "fuzz/$name.dict" ] && dict="-dict=fuzz/$name.dict"
    log=$out/$name.log
    start=$(date +%s)
    # -timeout: one input taking longer is a finding; -rss_limit_mb: so is memory use above it.
    "$bin" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=3072 -malloc_limit_mb=2600 \
        -print_final_stats=1 -artifact_prefix="$out/" $dict "$work" "$seeds" > "$log" 2>&1
    rc=$?
    took=$(( $(date +%s) - start ))
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    [ -n "$execs" ] || execs=$(grep -o '^#[0-9]*' "$log" | tail -1 | tr -d '#')
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
    corpus=$(ls "$work" | wc -l)
    if [ $rc -eq 0 ]; then result=ok; else
        result="FAILED (exit $rc)"; failed=$((failed + 1))
        grep -E 'ERROR|SUMMARY|runtime error|^fuzz:|Test unit written' "$log" | head -8
    fi
    printf '%-12s %10s execs %6s s  cov %-6s corpus %-5s %s\n' "$name" "${execs:-?}" "$took" "${cov:-?}" "$corpus" "$result" | tee -a "$stats"
done
echo "fuzz: $failed target(s) failed; logs in $out/*.log"
[ $failed -eq 0 ]
