#!/usr/bin/env bash
# famfs in Rust, on a machine without CXL or dax hardware: a sparse regular file stands in for
# /dev/dax0.0, and the famfs CLI works on it offline (--device). Takes a few seconds once built.
#
#   scripts/demo.sh            build, run, clean up
#   KEEP=1 scripts/demo.sh     keep the work directory (the device image) afterwards
#   MOUNT=1 scripts/demo.sh    also mount it with famfs_fused (needs root and /dev/fuse)
#   WORKDIR=/dev/shm scripts/demo.sh   put the image elsewhere (default: $TMPDIR or /tmp)
#
# No root is needed (without MOUNT=1). The demo gives this "host" its own system UUID in the
# work directory, so /opt/famfs is not touched.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BOLD=$'\e[1m'; DIM=$'\e[2m'; RED=$'\e[31m'; OFF=$'\e[0m'
if [[ ! -t 1 ]]; then BOLD=""; DIM=""; RED=""; OFF=""; fi

say()  { printf '\n%s# %s%s\n' "$DIM" "$*" "$OFF"; }
# Print a command (readably, as it would be typed), then run it; any failure stops the demo.
run()  {
    local shown=""
    for a in "$@"; do
        if [[ -n "${WORK:-}" && "$a" == "$WORK"/* ]]; then a="\$W/${a#"$WORK"/}"; fi
        if [[ "$a" =~ [[:space:]] ]]; then a="'$a'"; fi
        shown+="$a "
    done
    printf '%s$ %s%s\n' "$BOLD" "${shown% }" "$OFF"
    "$@"
}
die()  { printf '%sdemo failed: %s%s\n' "$RED" "$*" "$OFF" >&2; exit 1; }
say "Build the release binaries (famfs, mkfs.famfs, famfs_fused, daxctl-famfs)"
cd "$REPO"
run cargo build --release -q -p famfs-cli -p famfs-server -p daxctl-famfs
TARGET="${CARGO_TARGET_DIR:-$REPO/target}"
FAMFS_BIN="$TARGET/release/famfs"
for b in famfs famfs_fused daxctl-famfs; do
    [[ -x "$TARGET/release/$b" ]] || die "$TARGET/release/$b was not built"
done

START_NS=$(date +%s%N)
WORK="$(mktemp -d "${WORKDIR:-${TMPDIR:-/tmp}}/famfs-demo.XXXXXX")"
cleanup() {
    if [[ "${MOUNTED:-0}" == 1 ]]; then "$FAMFS_BIN" umount -l "$WORK/mnt" || true; fi
    if [[ "${KEEP:-0}" == 1 ]]; then
        echo "kept $WORK (device image: $WORK/dev.img)"
    else
        rm -rf "$WORK"
    fi
}
on_exit() {
    local rc=$?
    cleanup
    if [[ $rc -ne 0 ]]; then printf '%sdemo FAILED (exit %s)%s\n' "$RED" "$rc" "$OFF" >&2; fi
}
trap on_exit EXIT

# The programs on the PATH (mkfs.famfs is famfs under another name; famfs mount finds
# famfs_fused next to the famfs binary). scripts/install.sh installs them for good.
mkdir -p "$WORK/bin"
ln -s "$FAMFS_BIN" "$WORK/bin/famfs"
ln -s "$FAMFS_BIN" "$WORK/bin/mkfs.famfs"
ln -s "$TARGET/release/famfs_fused" "$WORK/bin/famfs_fused"
ln -s "$TARGET/release/daxctl-famfs" "$WORK/bin/daxctl-famfs"
export PATH="$WORK/bin:$PATH"
export FAMFS_SYSTEM_UUID_FILE="$WORK/system_uuid"
unset FAMFS_SYSTEM_UUID
cd "$WORK"
echo "work directory: \$W = $WORK"

say "A sparse 8 GiB file stands in for a dax device"
run truncate -s 8G "$WORK/dev.img"
DEV="$WORK/dev.img"

say "Make the file system; this host becomes its master (its UUID is created in \$W/system_uuid)"
run mkfs.famfs "$DEV"

say "Directories (offline: paths are relative to the famfs root)"
run famfs mkdir --device "$DEV" -p /datasets/images/train
run famfs mkdir --device "$DEV" -m 0750 /models

say "Files: allocated at creation, never grown; -r -S fills one with a verifiable pattern"
run famfs creat --device "$DEV" -s 64m -r -S 42 /datasets/pattern.bin
run famfs creat --device "$DEV" -s 16m -m 0600 /models/scratch

say "Copy host files in (a 300 MiB one shows the progress bar on a terminal)"
head -c 3000 /dev/urandom > "$WORK/labels.csv"
head -c $((5 << 20)) /dev/urandom > "$WORK/img-0001.raw"
head -c $((300 << 20)) /dev/urandom > "$WORK/weights.safetensors"
run famfs cp --device "$DEV" "$WORK/labels.csv" "$WORK/img-0001.raw" /datasets/images/train
run famfs cp --device "$DEV" "$WORK/weights.safetensors" /models/

say "Interleaved (striped) copy: 4 strips over 8 buckets of the device, 2 MiB chunks"
run famfs cp --device "$DEV" -N 4 -B 8 "$WORK/img-0001.raw" /datasets/striped.raw

say "Check the file system: no collisions, capacity and free space"
run famfs fsck --human "$DEV"

say "Replay the log and list the tree"
run famfs logplay --ls "$DEV"

say "Verify the pattern file, and that the copies hold exactly the host bytes"
run famfs verify --device "$DEV" -S 42 -f /datasets/pattern.bin
run famfs cp --compare --device "$DEV" "$WORK/weights.safetensors" /models/weights.safetensors
run famfs cp --compare --device "$DEV" "$WORK/img-0001.raw" /datasets/striped.raw

say "Where the bytes are: extents (hex device offset, length)"
run famfs getmap --device "$DEV" /models/weights.safetensors /datasets/striped.raw

if [[ "${MOUNT:-0}" == 1 ]]; then
    say "Mount it with the FUSE daemon and use ordinary tools (MOUNT=1)"
    mkdir -p "$WORK/mnt"
    run famfs mount "$DEV" "$WORK/mnt"
    MOUNTED=1
    run ls -lR "$WORK/mnt/datasets"
    run cmp "$WORK/weights.safetensors" "$WORK/mnt/models/weights.safetensors"
    run famfs creat -s 1m -r -S 7 "$WORK/mnt/datasets/made-while-mounted"
    run famfs verify -S 7 "$WORK/mnt/datasets/made-while-mounted"
    run famfs umount "$WORK/mnt"
    MOUNTED=0
    run famfs logplay "$DEV"
fi

ELAPSED_MS=$(( ($(date +%s%N) - START_NS) / 1000000 ))
printf '\n%sdemo OK in %d.%01d s (after the build)%s\n' "$BOLD" $((ELAPSED_MS / 1000)) $((ELAPSED_MS % 1000 / 100)) "$OFF"
