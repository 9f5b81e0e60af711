# shellcheck shell=bash
# Shared helpers for the qemu test harness scripts (sourced, not run).

# Directory of the harness (tests/qemu) and of the repository root.
QEMU_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REPO_DIR=$(cd "$QEMU_DIR/../.." && pwd)
# Everything downloaded or built by setup.sh lives here (git-ignored).
CACHE_DIR=${FAMFS_QEMU_CACHE:-$QEMU_DIR/cache}
export QEMU_DIR REPO_DIR CACHE_DIR

log() { printf '%s: %s\n' "${0##*/}" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Load the facts setup.sh recorded (KVER, KERNEL, BASE_INITRD, ...).
load_env() {
    local env_file=$CACHE_DIR/env.sh
    [[ -f $env_file ]] || die "$env_file missing: run tests/qemu/setup.sh first"
    # shellcheck source=/dev/null
    . "$env_file"
    [[ -f ${KERNEL:-} ]] || die "kernel ${KERNEL:-?} missing: run tests/qemu/setup.sh"
    [[ -f ${BASE_INITRD:-} ]] || die "base initramfs ${BASE_INITRD:-?} missing: run tests/qemu/setup.sh"
}

# Pack the contents of directory $1 into a gzip-compressed newc cpio archive $2, owned by root.
make_cpio() {
    local src=$1 out=$2
    (cd "$src" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) | gzip -1 >"$out.tmp"
    mv "$out.tmp" "$out"
}
