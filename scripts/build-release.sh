#!/usr/bin/env bash
# Build release binaries the way they are installed and benchmarked: cargo profile `dist`
# (release with fat LTO and one codegen unit, see the workspace Cargo.toml), statically linked
# (glibc, `-C target-feature=+crt-static`), and print the directory that holds them.
#
#   scripts/build-release.sh [-d TARGET_DIR] CARGO_BUILD_ARGS...
#   e.g. scripts/build-release.sh -p famfs-cli --bin famfs -p famfs-server --bin famfs_fused
#
#   -d TARGET_DIR  cargo's target directory (default ${CARGO_TARGET_DIR:-<repo>/target})
#
# Why static: a `famfs` command is often one short process per file (scripts, the reference's
# tests); without the dynamic loader (opening libc, libm, libgcc_s and resolving their symbols)
# a process starts in about two thirds of the time. FAMFS_STATIC=0 builds ordinary dynamically
# linked binaries instead (e.g. where the static C library, libc.a, is not installed).
#
# --target is passed explicitly so RUSTFLAGS reach only the target crates: with +crt-static and
# no --target, proc-macro crates fail to build. The binaries therefore land in
# TARGET_DIR/<host triple>/dist, the directory printed.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
target_dir=${CARGO_TARGET_DIR:-$REPO/target}
if [ "${1:-}" = "-d" ]; then
    target_dir=$2
    shift 2
fi
(($# > 0)) || { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }

if [ "${FAMFS_STATIC:-1}" = "0" ]; then
    cargo build --quiet --profile dist --manifest-path "$REPO/Cargo.toml" \
        --target-dir "$target_dir" "$@" >&2
    echo "$target_dir/dist"
    exit 0
fi
triple=$(rustc -vV | sed -n 's/^host: //p')
[ -n "$triple" ] || { echo "build-release.sh: cannot tell the host triple (rustc -vV)" >&2; exit 1; }
unset CARGO_ENCODED_RUSTFLAGS
RUSTFLAGS="${RUSTFLAGS:+$RUSTFLAGS }-C target-feature=+crt-static" \
    cargo build --quiet --profile dist --target "$triple" --manifest-path "$REPO/Cargo.toml" \
    --target-dir "$target_dir" "$@" >&2
echo "$target_dir/$triple/dist"
