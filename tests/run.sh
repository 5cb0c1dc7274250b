#!/bin/sh
# Runs each test program, prints its failures (and its SKIP and INFO lines), and ends
# with "N passed, N failed".
passed=0; failed=0
for t in "$@"; do
    out=$("$t" 2>&1); rc=$?
    line=$(printf '%s\n' "$out" | grep '^TESTS ' | tail -1)
    if [ -z "$line" ]; then
        printf '%s\n' "$out"
        echo "CRASHED $t (exit $rc)"
        failed=$((failed + 1)); continue
    fi
    printf '%s\n' "$out" | grep -E '^(SKIP|INFO) ' # what a test skipped, and what it measured
    p=$(echo "$line" | cut -d' ' -f2); f=$(echo "$line" | cut -d' ' -f3)
    passed=$((passed + p)); failed=$((failed + f))
    if [ "$f" -ne 0 ] || [ "$rc" -ne 0 ]; then
        printf '%s\n' "$out" | grep -v '^TESTS '
        [ "$f" -eq 0 ] && failed=$((failed + 1))
    fi
    printf '%-40s %s passed, %s failed\n' "$(basename "$t")" "$p" "$f"
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
