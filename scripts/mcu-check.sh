#!/bin/sh
# Runs a model's C export on an emulated Arm Cortex-M and compares it with the host.
# usage: scripts/mcu-check.sh [--data DIR] [--tiny] [--only LIST] WEIGHTS [N]   (from the repository root)
#
# For each variant it exports WEIGHTS with `convnet export --format c` (float32, and
# --int8 --target cortex-m4), builds a firmware from model.c and scripts/mcu/harness.c
# with gcc-arm-none-eabi and picolibc (crt0, semihosting), runs it under qemu-system-arm
# on the first N MNIST test images (default 1000) and prints
#   cortex-m4 VARIANT: agree A/N with the host export, accuracy P%, flash F bytes, ram R bytes, I instructions per image
# A: images whose class equals that of the same model.c built for this machine (gcc,
# same harness); P: accuracy against the labels; F: text + data of the whole firmware
# (vector table, crt0, harness, libc/libgcc parts, model); R: data + bss + the stack
# high-water mark (model_predict's buffers live on the stack); I: instructions executed
# inside model_predict_u8, counted by QEMU (-icount shift=0, read through SysTick).
# Board: mps2-an386 (Cortex-M4F, hard float). --tiny adds the int8 export built with
# -mcpu=cortex-m0plus for a 32 KB flash / 8 KB RAM part, linked into exactly those
# limits and run on QEMU's microbit board (a Cortex-M0, the same ARMv6-M instructions):
#   cortex-m0 int8: ... (fits 32768 / 8192)
# --only LIST runs only the variants named, of m4-float, m4-int8 and m0-int8 (comma-separated;
# m0-int8 implies --tiny), e.g. --only m0-int8 for the tiny part's accuracy on all 10,000 images.
# Exit status: 0 when float agrees on every image and every firmware fits and runs;
# 1 otherwise; 2 on bad usage; 3 when a toolchain package is missing (one line says
# which apt-get command installs it).
# Data: --data DIR, else $CONVNET_DATA/mnist, else ../shared/data/mnist.
# Environment: CONVNET (default build/convnet), MCU_KEEP=1 keeps the work directory.
set -eu
data="" tiny=0 only=""
while [ $# -gt 0 ]; do
    case "$1" in
        --data) [ $# -ge 2 ] || { echo "mcu-check: --data needs a directory" >&2; exit 2; }; data=$2; shift 2 ;;
        --tiny) tiny=1; shift ;;
        --only) [ $# -ge 2 ] || { echo "mcu-check: --only needs a list" >&2; exit 2; }; only=",$2,"; shift 2
                case "$only" in *,m0-int8,*) tiny=1 ;; esac ;;
        -h|--help) sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        -*) echo "mcu-check: unknown option '$1' (see --help)" >&2; exit 2 ;;
        *) break ;;
    esac
done
[ $# -ge 1 ] && [ $# -le 2 ] || { echo "usage: scripts/mcu-check.sh [--data DIR] [--tiny] [--only LIST] WEIGHTS [N]" >&2; exit 2; }
wanted() { [ -z "$only" ] || case "$only" in *,"$1",*) return 0 ;; *) return 1 ;; esac; }
weights=$1 n=${2:-1000}
case "$n" in ''|*[!0-9]*) echo "mcu-check: N '$n': expected an integer from 1 to 10000" >&2; exit 2 ;; esac
[ "$n" -ge 1 ] && [ "$n" -le 10000 ] || { echo "mcu-check: N '$n': expected an integer from 1 to 10000" >&2; exit 2; }
[ -f "$weights" ] || { echo "mcu-check: $weights: no such file" >&2; exit 2; }
[ -n "$data" ] || { [ -n "${CONVNET_DATA:-}" ] && data=$CONVNET_DATA/mnist; } || true
[ -n "$data" ] || data=../shared/data/mnist

missing=""
command -v arm-none-eabi-gcc >/dev/null 2>&1 || missing="$missing gcc-arm-none-eabi"
[ -f /usr/lib/picolibc/arm-none-eabi/picolibc.specs ] || missing="$missing picolibc-arm-none-eabi"
command -v qemu-system-arm >/dev/null 2>&1 || missing="$missing qemu-system-arm"
if [ -n "$missing" ]; then
    echo "mcu-check: missing the Arm toolchain; run: apt-get install -y$missing" >&2
    exit 3
fi
convnet=${CONVNET:-build/convnet}
[ -x "$convnet" ] || make -s "$convnet" >&2
root=$(pwd)
harness=$root/scripts/mcu/harness.c
[ -f "$harness" ] || { echo "mcu-check: run from the repository root ($harness not found)" >&2; exit 2; }

# the first n test images (784 bytes each) and labels, gzip-compressed or raw IDX files
idx() { if [ -f "$data/$1.gz" ]; then gzip -dc "$data/$1.gz"; elif [ -f "$data/$1" ]; then cat "$data/$1"; else
        echo "mcu-check: $data/$1(.gz) not found (use --data DIR)" >&2; return 1; fi; }
work=$(mktemp -d)
[ "${MCU_KEEP:-0}" = 1 ] && echo "mcu-check: work directory $work" >&2 || trap 'rm -rf "$work"' EXIT
idx t10k-images-idx3-ubyte | tail -c +17 | head -c $((n * 784)) > "$work/images.u8"
idx t10k-labels-idx1-ubyte | tail -c +9 | head -c "$n" | od -An -tu1 -v | tr -s ' ' '\n' | sed '/^$/d' > "$work/labels.txt"
[ "$(wc -l < "$work/labels.txt")" -eq "$n" ] || { echo "mcu-check: fewer than $n test images in $data" >&2; exit 2; }

strict="-std=c99 -O2 -Wall -Wextra -Werror -pedantic -ffp-contract=off"
status=0

# run_variant NAME CORE BOARD CFLAGS FLASH RAM EXPORT_DIR
run_variant() {
    name=$1 core=$2 board=$3 cflags=$4 flash_max=$5 ram_max=$6 src=$7
    d=$work/$name-$core
    mkdir -p "$d/host"
    cp "$work/images.u8" "$d/" && cp "$work/images.u8" "$d/host/"
    cc $strict -I"$src" "$harness" "$src/model.c" -lm -o "$d/host/run" && (cd "$d/host" && ./run 2>/dev/null) || {
        echo "$core $name: host build or run failed" >&2; status=1; return; }
    # Link twice when RAM is tight: first to learn data + bss, then with the rest as stack.
    stack=$((ram_max / 16))
    [ "$ram_max" -gt 65536 ] && stack=262144
    for pass in 1 2; do
        printf '__flash = 0x0;\n__flash_size = %d;\n__ram = 0x20000000;\n__ram_size = %d;\n__stack_size = %d;\nINCLUDE picolibc.ld\n' \
            "$flash_max" "$ram_max" "$stack" > "$d/mcu.ld"
        arm-none-eabi-gcc --specs=picolibc.specs $cflags $strict -I"$src" "$harness" "$src/model.c" -lm \
            -T "$d/mcu.ld" -o "$d/fw.elf" 2> "$d/link.log" || {
            echo "$core $name: the firmware does not build or fit ($flash_max bytes flash, $ram_max bytes RAM):" >&2
            grep -E 'overflow|error' "$d/link.log" | head -3 >&2; status=1; return; }
        [ "$ram_max" -gt 65536 ] && break
        static=$(arm-none-eabi-size -A "$d/fw.elf" | awk '$1 == ".data" || $1 == ".bss" || $1 == ".tbss_space" { s += $2 } END { print s }')
        stack=$(( (ram_max - static) / 8 * 8 ))
    done
    (cd "$d" && timeout "${MCU_TIMEOUT:-$((300 + n))}" qemu-system-arm -M "$board" -nographic -monitor none \
        -semihosting-config enable=on,target=native -icount shift=0 -kernel fw.elf > console.txt 2>&1) || {
        echo "$core $name: the firmware failed under qemu-system-arm -M $board:" >&2; head -5 "$d/console.txt" >&2; status=1; return; }
    insns=$(sed -n 's/.*instructions \([0-9]*\) images \([0-9]*\) stack \([0-9]*\).*/\1 \2 \3/p' "$d/console.txt")
    set -- $insns
    [ $# -eq 3 ] && [ "$2" -eq "$n" ] || { echo "$core $name: unexpected firmware output: $(head -c 300 "$d/console.txt")" >&2; status=1; return; }
    total=$1 used=$3
    stack_region=$(arm-none-eabi-size -A "$d/fw.elf" | awk '$1 == ".stack" { print $2 }')
    [ "$used" -lt "$stack_region" ] || { echo "$core $name: the stack overflowed its $stack_region bytes" >&2; status=1; return; }
    set -- $(arm-none-eabi-size -A "$d/fw.elf" | awk '
        $1 == ".init" || $1 == ".text" || $1 == ".rodata" { f += $2 }
        $1 == ".data" || $1 == ".tdata" { f += $2; r += $2 }
        $1 == ".bss" || $1 == ".tbss_space" { r += $2 }
        END { print f, r }')
    flash=$1 ram=$(($2 + used))
    result=$(paste -d ' ' "$d/host/preds.txt" "$d/preds.txt" "$work/labels.txt" | awk -v k=11 '
        { agree += ($1 == $(k + 1)); correct += ($(k + 1) + 0 == $(2 * k + 1)) }
        END { printf "%d %.2f", agree, 100 * correct / NR }')
    set -- $result
    agree=$1 acc=$2
    limits=""
    [ "$ram_max" -le 65536 ] && limits=" (fits $flash_max / $ram_max)"
    echo "$core $name: agree $agree/$n with the host export, accuracy $acc%, flash $flash bytes, ram $ram bytes, $((total / n)) instructions per image$limits"
    if [ "$name" = float ] && [ "$agree" -ne "$n" ]; then
        echo "$core float: the firmware's class differs from the host's on $((n - agree)) image(s)" >&2; status=1
    fi
    [ "$ram" -le "$ram_max" ] || { echo "$core $name: $ram bytes of RAM exceed $ram_max" >&2; status=1; }
}

"$convnet" export --weights "$weights" --format c -o "$work/float" > /dev/null
"$convnet" export --weights "$weights" --format c --int8 --target cortex-m4 --data "$data" -o "$work/int8" > /dev/null
m4="-mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16"
wanted m4-float && run_variant float cortex-m4 mps2-an386 "$m4" 4194304 4194304 "$work/float"
wanted m4-int8 && run_variant int8 cortex-m4 mps2-an386 "$m4" 4194304 4194304 "$work/int8"
[ "$tiny" = 1 ] && wanted m0-int8 && run_variant int8 cortex-m0 microbit "-mcpu=cortex-m0plus -mthumb" 32768 8192 "$work/int8"
exit $status
