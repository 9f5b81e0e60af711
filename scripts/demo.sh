#!/usr/bin/env bash
# famfs in Rust, on a machine without CXL or dax hardware: a sparse regular file stands in for
# /dev/dax0.0, and the famfs CLI works on it offline (--device). Takes a few seconds once built.
#
#   scripts/demo.sh            build, run, clean up
#   KEEP=1 scripts/demo.sh     keep the work directory (the device image) afterwards
#   MOUNT=1 scripts/demo.sh    also mount it with famfs_fused (needs root and /dev/fuse)
#   ARROW=0 scripts/demo.sh    leave out the Arrow step (below); ARROW=1: fail if it cannot run
#   ARROW_ROWS=3000000 scripts/demo.sh   rows of the Arrow table (default 1000000)
#   WORKDIR=/dev/shm scripts/demo.sh   put the image elsewhere (default: $TMPDIR or /tmp)
#
# No root is needed (without MOUNT=1). The demo gives this "host" its own system UUID in the
# work directory, so /opt/famfs is not touched.
#
# The Arrow step (the workload famfs is for; runs when it can: root, /dev/fuse, python3): this
# host, the master, copies an Arrow IPC file and a .npy array into its famfs mount; a second
# "host" (another system UUID, its own mount of the same device) memory-maps them with pyarrow
# and numpy and checks every value; then the master adds a file and the client sees it by itself.
# pyarrow and numpy come from tests/python/setup.sh (a virtualenv, set up on first use), or from
# python3 itself if it has them. Without root, /dev/fuse or python3 the step is skipped with the
# reason.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BOLD=$'\e[1m'; DIM=$'\e[2m'; RED=$'\e[31m'; OFF=$'\e[0m'
if [[ ! -t 1 ]]; then BOLD=""; DIM=""; RED=""; OFF=""; fi

# A comment line, or several (one per argument).
say()  { printf '\n'; for l in "$@"; do printf '%s# %s%s\n' "$DIM" "$l" "$OFF"; done; }
# Print a command (readably, as it would be typed).
show() {
    local shown=""
    for a in "$@"; do
        if [[ -n "${WORK:-}" && "$a" == "$WORK"/* ]]; then a="\$W/${a#"$WORK"/}"; fi
        if [[ "$a" =~ [[:space:]] ]]; then a="'$a'"; fi
        shown+="$a "
    done
    printf '%s$ %s%s\n' "$BOLD" "${shown% }" "$OFF"
}
# Print a command, then run it; any failure stops the demo.
run()  { show "$@"; "$@"; }
die()  { printf '%sdemo failed: %s%s\n' "$RED" "$*" "$OFF" >&2; exit 1; }
say "Build the release binaries (famfs, mkfs.famfs, famfs_fused, daxctl-famfs)"
cd "$REPO"
run cargo build --release -q -p famfs-cli -p famfs-server -p daxctl-famfs
TARGET="${CARGO_TARGET_DIR:-$REPO/target}"
FAMFS_BIN="$TARGET/release/famfs"
for b in famfs famfs_fused daxctl-famfs; do
    [[ -x "$TARGET/release/$b" ]] || die "$TARGET/release/$b was not built"
done

ARROW_MOUNTS=()
START_NS=$(date +%s%N)
WORK="$(mktemp -d "${WORKDIR:-${TMPDIR:-/tmp}}/famfs-demo.XXXXXX")"
cleanup() {
    if [[ "${MOUNTED:-0}" == 1 ]]; then "$FAMFS_BIN" umount -l "$WORK/mnt" || true; fi
    for m in "${ARROW_MOUNTS[@]}"; do
        if grep -qs " $m fuse.famfs " /proc/self/mounts; then "$FAMFS_BIN" umount -l "$m" || true; fi
    done
    if [[ -n "${CLIENT_PID:-}" ]] && kill -0 "$CLIENT_PID" 2>/dev/null; then kill "$CLIENT_PID" || true; fi
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

# Sets ARROW_WHY to why the Arrow step cannot run here (empty: it can) and PY to a python with
# pyarrow and numpy (setting up tests/python/cache/venv if needed).
arrow_check() {
    ARROW_WHY="" PY=""
    local sys="${PYTHON:-python3}" venv="$REPO/tests/python/cache/venv/bin/python"
    if [[ "${ARROW:-auto}" == 0 ]]; then
        ARROW_WHY="ARROW=0"
    elif [[ "$(id -u)" != 0 ]]; then
        ARROW_WHY="it mounts famfs, which needs root (run the demo as root)"
    elif [[ ! -e /dev/fuse ]]; then
        ARROW_WHY="it mounts famfs, which needs /dev/fuse"
    elif ! command -v "$sys" >/dev/null 2>&1; then
        ARROW_WHY="$sys not found: install Python 3 (with pip and venv) to run it"
    elif [[ -x "$venv" ]] && "$venv" -c 'import pyarrow, numpy' 2>/dev/null; then
        PY="$venv"
    elif "$sys" -c 'import pyarrow, numpy' 2>/dev/null; then
        PY="$(command -v "$sys")"
    else
        say "One-time setup: pyarrow and numpy into a virtualenv (tests/python/setup.sh)"
        if ! PY="$(PYTHON="$sys" "$REPO/tests/python/setup.sh" | tail -n 1)" || [[ ! -x "$PY" ]]; then
            ARROW_WHY="tests/python/setup.sh could not install pyarrow and numpy (see above)"
        fi
    fi
}

# Lists directory $1 until it names every one of $2..., for at most 10 s (READDIR only: nothing
# asks the daemon to look at the log); prints how long that took.
wait_listed() {
    local dir="$1" t0 now names
    shift
    t0=$(date +%s%N)
    while names="$(ls -1 "$dir" 2>/dev/null)"; ! all_in "$names" "$@"; do
        now=$(date +%s%N)
        (( now - t0 < 10000000000 )) || die "$* did not appear in $dir within 10 s"
        sleep 0.01
    done
    now=$(date +%s%N)
    echo "$* listed on the client $(( (now - t0) / 1000000 )) ms after the master's cp returned"
}
all_in() {
    local names="$1" n
    shift
    for n in "$@"; do grep -qxF "$n" <<<"$names" || return 1; done
}

arrow_step() {
    arrow_check
    if [[ -n "$ARROW_WHY" ]]; then
        [[ "${ARROW:-auto}" == 1 ]] && die "the Arrow step cannot run: $ARROW_WHY"
        say "Arrow step skipped: $ARROW_WHY"
        return 0
    fi
    local rows="${ARROW_ROWS:-1000000}" later_rows=$(( ${ARROW_ROWS:-1000000} / 2 + 1 ))
    ln -sf "$TARGET/release/famfs_fused" "$WORK/bin/famfs_fused"
    printf '#!/bin/sh\nexec "%s" "%s" "$@"\n' "$PY" "$REPO/tests/python/arrow_workload.py" \
        > "$WORK/bin/arrow-workload"
    chmod +x "$WORK/bin/arrow-workload"

    say "The workload famfs is for: an Arrow table ($rows rows: ints, floats, strings, timestamps," \
        "booleans, a dictionary and a list column) and a NumPy array, made from seed 1 on this host"
    run arrow-workload write --seed 1 --rows "$rows" --arrow "$WORK/table.arrow" --npy "$WORK/matrix.npy"

    say "This host (the master) mounts famfs and copies them in"
    mkdir -p "$WORK/master" "$WORK/client"
    ARROW_MOUNTS=("$WORK/master" "$WORK/client")
    run famfs mount "$DEV" "$WORK/master"
    run famfs mkdir "$WORK/master/arrow"
    run famfs cp "$WORK/table.arrow" "$WORK/matrix.npy" "$WORK/master/arrow/"

    say "A second host: another system UUID, its own mount of the same device, read-only. (There it" \
        "would be 'famfs mount'; on one machine famfs mount refuses a device already mounted, so" \
        "start the daemon it runs directly)"
    local client_uuid
    client_uuid="$(cat /proc/sys/kernel/random/uuid)"
    show famfs_fused --system-uuid "$client_uuid" "$DEV" "$WORK/client" '&'
    famfs_fused --system-uuid "$client_uuid" "$DEV" "$WORK/client" > "$WORK/client.log" 2>&1 &
    CLIENT_PID=$!
    local t0=$SECONDS
    until [[ -e "$WORK/client/.meta/.log" ]]; do
        kill -0 "$CLIENT_PID" 2>/dev/null || { cat "$WORK/client.log" >&2; die "the client daemon exited"; }
        (( SECONDS - t0 < 15 )) || die "the client mount did not come up within 15 s"
        sleep 0.05
    done

    say "The client memory-maps both (pyarrow.memory_map + ipc.open_file, numpy.load mmap_mode=r)," \
        "recomputes the data set from seed 1 and compares every value"
    run arrow-workload verify --seed 1 --rows "$rows" --max-copy 1048576 \
        --arrow "$WORK/client/arrow/table.arrow" --npy "$WORK/client/arrow/matrix.npy"

    say "The master adds another pair later; the client's daemon finds it in the log by itself"
    run arrow-workload write --seed 2 --rows "$later_rows" --arrow "$WORK/later.arrow" --npy "$WORK/later.npy"
    run famfs cp "$WORK/later.arrow" "$WORK/later.npy" "$WORK/master/arrow/"
    wait_listed "$WORK/client/arrow" later.arrow later.npy
    run arrow-workload verify --seed 2 --rows "$later_rows" --max-copy 1048576 \
        --arrow "$WORK/client/arrow/later.arrow" --npy "$WORK/client/arrow/later.npy"

    run famfs umount "$WORK/client"
    wait "$CLIENT_PID" || true
    CLIENT_PID=""
    run famfs umount "$WORK/master"
    ARROW_MOUNTS=()
}
arrow_step

ELAPSED_MS=$(( ($(date +%s%N) - START_NS) / 1000000 ))
printf '\n%sdemo OK in %d.%01d s (after the build)%s\n' "$BOLD" $((ELAPSED_MS / 1000)) $((ELAPSED_MS % 1000 / 100)) "$OFF"
