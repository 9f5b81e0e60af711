#!/usr/bin/env bash
# Install famfs-rs: `famfs`, `mkfs.famfs`, `famfs_fused` (next to `famfs`, where `famfs mount`
# looks for it) and `daxctl-famfs` into PREFIX/bin, the mount(8) helper `mount.fuse.famfs` into
# PREFIX/sbin, the systemd unit template `famfs@.service` into PREFIX/lib/systemd/system, with man
# pages (PREFIX/share/man/man1) and bash, zsh and fish completions (PREFIX/share/...) generated
# from the programs' clap definitions.
#
#   scripts/install.sh              # PREFIX = /usr/local (writing there needs root)
#   scripts/install.sh ~/.local     # a user install: put ~/.local/bin on PATH
#
# Builds the release binaries first (cargo profile `dist`, statically linked:
# scripts/build-release.sh; FAMFS_STATIC=0 links them dynamically). FAMFS_INSTALL_PROFILE=dev
# installs debug builds instead (the tests do, to reuse their build); CARGO_TARGET_DIR is honoured.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PREFIX="${1:-/usr/local}"
mkdir -p "$PREFIX/bin"
PREFIX="$(cd "$PREFIX" && pwd)"

cd "$REPO"
packages=(-p famfs-cli -p famfs-server -p daxctl-famfs -p xtask --bins)
case "${FAMFS_INSTALL_PROFILE:-release}" in
    release)
        # Profile `install`, statically linked (scripts/build-release.sh says why;
        # FAMFS_STATIC=0 opts out).
        echo "install.sh: building famfs, famfs_fused, daxctl-famfs (release)"
        BIN=$("$REPO/scripts/build-release.sh" "${packages[@]}") ;;
    dev|debug)
        echo "install.sh: building famfs, famfs_fused, daxctl-famfs (debug)"
        cargo build -q "${packages[@]}"
        BIN="${CARGO_TARGET_DIR:-$REPO/target}/debug" ;;
    *) echo "install.sh: FAMFS_INSTALL_PROFILE must be release or dev" >&2; exit 2 ;;
esac

for b in famfs famfs_fused daxctl-famfs; do
    install -m 0755 "$BIN/$b" "$PREFIX/bin/$b"
done
# mkfs.famfs is the famfs program under that name (it dispatches on the name it is run as).
ln -sf famfs "$PREFIX/bin/mkfs.famfs"
# So is mount.fuse.famfs, the helper mount(8) runs for `mount -t fuse.famfs` and fstab lines.
# mount(8) looks for it in /sbin (and /sbin/fs.d, /sbin/fs) only: a system install (PREFIX /usr
# or /usr/local, as root) links it there too; otherwise link it yourself (printed below).
mkdir -p "$PREFIX/sbin"
ln -sf ../bin/famfs "$PREFIX/sbin/mount.fuse.famfs"
helper_note=""
case "$PREFIX" in
    /usr|/usr/local)
        if [ -w /sbin ] && { [ ! -e /sbin/mount.fuse.famfs ] || [ -L /sbin/mount.fuse.famfs ]; }; then
            ln -sf "$PREFIX/bin/famfs" /sbin/mount.fuse.famfs
        else
            helper_note="ln -s $PREFIX/bin/famfs /sbin/mount.fuse.famfs"
        fi ;;
    *) helper_note="ln -s $PREFIX/bin/famfs /sbin/mount.fuse.famfs" ;;
esac
# The systemd unit template (famfs mount --foreground), pointing at this famfs.
mkdir -p "$PREFIX/lib/systemd/system"
sed "s|/usr/local/bin/famfs|$PREFIX/bin/famfs|" "$REPO/contrib/systemd/famfs@.service" \
    > "$PREFIX/lib/systemd/system/famfs@.service"
"$BIN/xtask" docs "$PREFIX"

echo "install.sh: installed famfs, mkfs.famfs, famfs_fused, daxctl-famfs in $PREFIX/bin"
echo "install.sh: man pages in $PREFIX/share/man/man1 (man famfs, man famfs-mount, ...)"
echo "install.sh: mount helper $PREFIX/sbin/mount.fuse.famfs, systemd unit $PREFIX/lib/systemd/system/famfs@.service"
if [ -n "$helper_note" ]; then
    echo "install.sh: for mount -t fuse.famfs and /etc/fstab, as root: $helper_note"
fi
case ":$PATH:" in
    *":$PREFIX/bin:"*) ;;
    *) echo "install.sh: add $PREFIX/bin to PATH, e.g.: export PATH=\"$PREFIX/bin:\$PATH\"" ;;
esac
