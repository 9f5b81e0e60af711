#!/usr/bin/env bash
# Install famfs-rs: `famfs`, `mkfs.famfs`, `famfs_fused` (next to `famfs`, where `famfs mount`
# looks for it) and `daxctl-famfs` into PREFIX/bin, with man pages (PREFIX/share/man/man1) and
# bash, zsh and fish completions (PREFIX/share/...) generated from the programs' clap definitions.
#
#   scripts/install.sh              # PREFIX = /usr/local (writing there needs root)
#   scripts/install.sh ~/.local     # a user install: put ~/.local/bin on PATH
#
# Builds the release binaries first. FAMFS_INSTALL_PROFILE=dev installs debug builds instead
# (the tests do, to reuse their build); CARGO_TARGET_DIR is honoured.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PREFIX="${1:-/usr/local}"
mkdir -p "$PREFIX/bin"
PREFIX="$(cd "$PREFIX" && pwd)"

case "${FAMFS_INSTALL_PROFILE:-release}" in
    release) profile_dir=release; profile_args=(--release) ;;
    dev|debug) profile_dir=debug; profile_args=() ;;
    *) echo "install.sh: FAMFS_INSTALL_PROFILE must be release or dev" >&2; exit 2 ;;
esac

cd "$REPO"
echo "install.sh: building famfs, famfs_fused, daxctl-famfs (${profile_dir})"
cargo build -q "${profile_args[@]}" -p famfs-cli -p famfs-server -p daxctl-famfs -p xtask --bins
BIN="${CARGO_TARGET_DIR:-$REPO/target}/$profile_dir"

for b in famfs famfs_fused daxctl-famfs; do
    install -m 0755 "$BIN/$b" "$PREFIX/bin/$b"
done
# mkfs.famfs is the famfs program under that name (it dispatches on the name it is run as).
ln -sf famfs "$PREFIX/bin/mkfs.famfs"
"$BIN/xtask" docs "$PREFIX"

echo "install.sh: installed famfs, mkfs.famfs, famfs_fused, daxctl-famfs in $PREFIX/bin"
echo "install.sh: man pages in $PREFIX/share/man/man1 (man famfs, man famfs-mount, ...)"
case ":$PATH:" in
    *":$PREFIX/bin:"*) ;;
    *) echo "install.sh: add $PREFIX/bin to PATH, e.g.: export PATH=\"$PREFIX/bin:\$PATH\"" ;;
esac
