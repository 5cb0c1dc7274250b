#!/bin/bash
# The bare-machine check: do the README's two set-up commands work on a bare Debian,
# each the first time it is run?
#
#   bash scripts/fresh-machine-check.sh [CMD...]   (as root, from a clone; CI runs it bare)
#
# Builds a bare Debian bookworm root (debootstrap --variant=minbase) from the Debian
# mirror that this machine's apt uses, installs only git, make and ca-certificates in
# it, clones the repository's committed HEAD into it with the MNIST files beside it as
# ../shared/data/mnist, and runs there, in the README's order, once each:
#
#   make train EPOCHS=1     (the README's `make train`, one epoch instead of its recipe's)
#   make check
#
# and then each CMD given (e.g. "make bench"), once, in the clone. It fails when any fails. /proc, /sys and /dev are mounted for the chroot and always
# unmounted; the root is deleted afterwards (FRESH_KEEP=1 keeps it and prints its path).
# Environment: MNIST_DIR (default ../shared/data/mnist beside the repository),
# FRESH_EPOCHS (1), FRESH_DIR (where the root is built; default a new /var/tmp directory).
# Takes about 10-20 minutes, most of it apt downloading packages and make check.
set -euo pipefail

say() { echo "fresh-machine-check: $*"; }
die() { echo "fresh-machine-check: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "needs root (debootstrap, chroot and mounts); run it as root"
repo=$(cd "$(dirname "$0")/.." && pwd)
mnist=${MNIST_DIR:-$repo/../shared/data/mnist}
epochs=${FRESH_EPOCHS:-1}
for f in train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz; do
    [ -f "$mnist/$f" ] || die "$mnist/$f: not found (set MNIST_DIR to the directory of the four MNIST files)"
done

# The Debian mirror apt is configured with: the deb822 sources first, then the one-line
# format. Only a stanza or line for bookworm itself counts (not -security or -updates).
debian_mirror() {
    local m=""
    if ls /etc/apt/sources.list.d/*.sources >/dev/null 2>&1; then
        m=$(awk '/^[[:space:]]*$/ { uri = "" }
                 /^URIs:/ { uri = $2 }
                 /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == "bookworm" && uri != "") { print uri; exit } }' \
                 /etc/apt/sources.list.d/*.sources)
    fi
    if [ -z "$m" ] && [ -f /etc/apt/sources.list ]; then
        m=$(awk '$1 == "deb" { i = 2; if ($i ~ /^\[/) while ($i !~ /\]$/) i++; if ($i ~ /^\[/ || $i ~ /\]$/) i++;
                               if ($(i + 1) == "bookworm") { print $i; exit } }' /etc/apt/sources.list)
    fi
    [ -n "$m" ] || die "no Debian bookworm mirror found in /etc/apt/sources.list.d/*.sources or /etc/apt/sources.list"
    echo "$m"
}

step() { local t0=$SECONDS; say "== $1"; shift; "$@"; say "== took $((SECONDS - t0)) s"; }

if ! command -v debootstrap >/dev/null 2>&1; then
    step "installing debootstrap" sh -c 'apt-get -o DPkg::Lock::Timeout=600 update -q &&
        DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q debootstrap'
fi
mirror=$(debian_mirror)

work=${FRESH_DIR:-$(mktemp -d /var/tmp/convnet-fresh.XXXXXX)}
root=$work/root
mounts=()
cleanup() {
    local rc=$? m i
    [ "$rc" -eq 0 ] || say "FAILED (exit status $rc): the step above did not work on a bare machine"
    for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do
        m=${mounts[i]}
        umount -R -l "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || say "could not unmount $m"
    done
    if [ "${FRESH_KEEP:-0}" = 1 ]; then
        say "kept the root at $root"
    elif findmnt -rn -o TARGET | grep -q "^$root"; then
        say "something is still mounted under $root; not deleting it"
    else
        rm -rf --one-file-system "$work"
    fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

bootstrap() {
    debootstrap --variant=minbase bookworm "$root" "$mirror" > "$work/debootstrap.log" 2>&1 ||
        { tail -20 "$work/debootstrap.log" >&2; die "debootstrap failed (its log's end is above)"; }
}
step "debootstrap --variant=minbase bookworm from $mirror" bootstrap

cp /etc/resolv.conf "$root/etc/resolv.conf"
mount -t proc proc "$root/proc" || die "could not mount /proc in $root"
mounts+=("$root/proc")
mount -t sysfs sysfs "$root/sys" || die "could not mount /sys in $root"
mounts+=("$root/sys")
mount --rbind /dev "$root/dev" || die "could not bind /dev in $root"
mounts+=("$root/dev")
mount --make-rslave "$root/dev"

# A clean environment, as a new root shell on that machine would have.
in_root() {
    chroot "$root" /usr/bin/env -i HOME=/root TERM=dumb LANG=C.UTF-8 \
        PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin /bin/sh -c "$1"
}

base_packages() {
    in_root 'apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q git make ca-certificates' \
        > "$work/apt-base.log" 2>&1 || { tail -20 "$work/apt-base.log" >&2; die "apt-get install git make ca-certificates failed"; }
}
step "apt-get install git make ca-certificates (nothing else)" base_packages

# This machine reaches the package registries through certificate authorities of its
# own (/usr/local/share/ca-certificates); the root gets them, as it gets resolv.conf,
# and npm (Node.js ignores the system store) is told to use the system bundle, so that
# make check's `npm ci` of tests/js reaches the npm registry.
local_cas() {
    ls /usr/local/share/ca-certificates/*.crt >/dev/null 2>&1 || return 0
    mkdir -p "$root/usr/local/share/ca-certificates"
    cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
    in_root 'update-ca-certificates' > "$work/ca.log" 2>&1 || { tail -5 "$work/ca.log" >&2; die "update-ca-certificates failed"; }
    echo "cafile=/etc/ssl/certs/ca-certificates.crt" >> "$root/etc/npmrc"
}
step "this machine's certificate authorities" local_cas

mkdir -p "$root/work/shared/data/mnist"
cp "$mnist"/*.gz "$root/work/shared/data/mnist/"
step "git clone (HEAD: $(git -C "$repo" rev-parse --short HEAD))" \
    git clone -q --no-hardlinks "$repo" "$root/work/main"

# Not root and packages missing: one line with the apt-get command, a non-zero exit,
# and nothing compiled.
unprivileged_make() {
    local out rc=0
    out=$(in_root 'cd /work/main && setpriv --reuid=65534 --regid=65534 --clear-groups make train 2>&1') || rc=$?
    printf '%s\n' "$out" | sed 's/^/    /'
    [ "$rc" -ne 0 ] || die "make train as a user without root, packages missing: exited 0"
    printf '%s\n' "$out" | grep -q '^install-deps: missing Debian packages; as root, run: apt-get update && apt-get install -y ' ||
        die "make train without root: no line with the apt-get command"
    [ ! -e "$root/work/main/build" ] || die "make train without root wrote build/ (it must stop before compiling)"
}
step "make train as a user without root (packages missing): must stop at once" unprivileged_make

step "make train EPOCHS=$epochs (the README's first command)" in_root "cd /work/main && make train EPOCHS=$epochs"
step "make check (the README's second command)" in_root 'cd /work/main && make check'
for cmd in "$@"; do
    step "$cmd" in_root "cd /work/main && $cmd"
done
say "passed: both set-up commands${1:+ and the $# given} worked on a bare Debian bookworm"
