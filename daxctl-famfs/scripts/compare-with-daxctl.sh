#!/bin/sh
# Compares `daxctl-famfs list` with the real `daxctl list` byte for byte on a fake sysfs tree.
#
#   daxctl-famfs/scripts/compare-with-daxctl.sh [DAXCTL_FAMFS_BINARY]
#
# Needs root, unshare(1) and daxctl (apt-get install daxctl). The fake tree is bind-mounted over
# /sys and /dev inside a private mount namespace (the host's mounts are untouched), with real
# character nodes made by mknod so that daxctl's stat() of /dev/daxX.Y works. Also checks the
# memory-block variants (a block offline: "movable" omitted; Normal zone: movable false).
# Exit 0 if every output is identical, 1 otherwise.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-}
if [ -z "$bin" ]; then
    cargo build -q -p daxctl-famfs --bin daxctl-famfs --manifest-path "$here/Cargo.toml"
    bin=${CARGO_TARGET_DIR:-$here/../target}/debug/daxctl-famfs
fi
command -v daxctl >/dev/null || { echo "daxctl not installed (apt-get install daxctl)" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "needs root (unshare -m, mount --bind, mknod)" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cargo run -q -p daxctl-famfs --features fake-sysfs --example make-fake-tree \
    --manifest-path "$here/Cargo.toml" -- "$work/tree" >/dev/null
cp "$bin" "$work/ours"

cat >"$work/inner.sh" <<'INNER'
set -u
work=$1
mount --bind "$work/tree/sys" /sys && mount --bind "$work/tree/dev" /dev || exit 1
for n in /sys/bus/dax/devices/*; do
    name=${n##*/}; mm=$(cat "$n/dev"); rm -f "/dev/$name"; mknod "/dev/$name" c "${mm%%:*}" "${mm##*:}"
done
fail=0
compare() {
    daxctl list "$@" >"$work/real" 2>/dev/null; rr=$?
    "$work/ours" list "$@" >"$work/ours.out" 2>/dev/null; ro=$?
    if cmp -s "$work/real" "$work/ours.out" && [ $rr = $ro ]; then
        echo "same: list $*"
    else
        echo "DIFF: list $* (exit $rr / $ro)"; diff "$work/real" "$work/ours.out" | head -40; fail=1
    fi
}
all() {
    compare; compare -u; compare -i; compare -iu; compare -RDMu; compare -RDMi; compare -RDMiu
    compare -R; compare -Ru; compare -r 1; compare -r region0; compare -r all -D
    compare -d dax0.0 -u; compare -d 1.2 -M; compare -d all; compare -DRi -r 1; compare -M -u -i
    compare -d dax9.9; compare -r 5; compare -D -R -d 1.0
}
all
mem=/sys/devices/system/memory
first=$(ls -d $mem/memory* | head -1)
echo offline >"$first/state"; compare -d 1.0; compare
echo online >"$first/state"
for b in $mem/memory*; do echo Normal >"$b/valid_zones"; done; compare -d 1.0
exit $fail
INNER
unshare -m sh "$work/inner.sh" "$work"
