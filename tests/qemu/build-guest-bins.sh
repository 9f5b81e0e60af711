#!/usr/bin/env bash
# Build binaries for the guest as static executables (glibc, -C target-feature=+crt-static) in a dedicated
# target directory, and print their paths, one per line.
#
#   tests/qemu/build-guest-bins.sh [-m MANIFEST] [-d TARGET_DIR] [-r PROFILE] PACKAGE:BIN...
#   e.g. tests/qemu/build-guest-bins.sh daxctl-famfs:daxctl-famfs famfs-cli:mkfs.famfs famfs-cli:famfs \
#            famfs-server:famfs_fused
#
#   -m MANIFEST    Cargo.toml to build (default: the workspace's)
#   -d TARGET_DIR  default ${CARGO_TARGET_DIR:-<repo>/target}/guest
#   -r PROFILE     cargo profile (default dev, without debug info: it builds in well under half the CPU
#                  time of release, and the scenarios move too little data for optimization to matter)
#
# --target is passed explicitly so RUSTFLAGS reach only the target crates: with +crt-static and no
# --target, proc-macro crates fail to build ("target does not support these crate types").
# Each result is checked with `file`: a binary that is not statically linked is an error.
set -euo pipefail

# shellcheck source=lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

TRIPLE=x86_64-unknown-linux-gnu
manifest=$REPO_DIR/Cargo.toml target_dir=${CARGO_TARGET_DIR:-$REPO_DIR/target}/guest profile=dev
while getopts 'm:d:r:h' opt; do
    case $opt in
    m) manifest=$OPTARG ;;
    d) target_dir=$OPTARG ;;
    r) profile=$OPTARG ;;
    *) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
(($# > 0)) || die "name at least one PACKAGE:BIN"

args=() bins=()
for spec in "$@"; do
    [[ $spec == *:* ]] || die "bad spec $spec (want PACKAGE:BIN)"
    args+=(-p "${spec%%:*}" --bin "${spec#*:}")
    bins+=("${spec#*:}")
done

# The output directory cargo uses for a profile ("dev" builds land in "debug").
case $profile in dev) pdir=debug ;; *) pdir=$profile ;; esac

unset CARGO_ENCODED_RUSTFLAGS
# Debug info is stripped from the guest copies anyway (pack-bins.sh); not generating it makes this build
# faster (the workspace's release profile keeps it for profiling).
export CARGO_PROFILE_RELEASE_DEBUG=${CARGO_PROFILE_RELEASE_DEBUG:-false}
export CARGO_PROFILE_DEV_DEBUG=${CARGO_PROFILE_DEV_DEBUG:-false}
log "cargo build --profile $profile --target $TRIPLE ${args[*]} (static, target dir $target_dir)"
RUSTFLAGS="${RUSTFLAGS:+$RUSTFLAGS }-C target-feature=+crt-static" \
    cargo build --quiet --profile "$profile" --target "$TRIPLE" --manifest-path "$manifest" \
    --target-dir "$target_dir" "${args[@]}" >&2

for bin in "${bins[@]}"; do
    out=$target_dir/$TRIPLE/$pdir/$bin
    [[ -x $out ]] || die "cargo did not produce $out"
    desc=$(file -bL "$out")
    [[ $desc == *"statically linked"* || $desc == *"static-pie linked"* ]] || die "$out is not static: $desc"
    echo "$out"
done
