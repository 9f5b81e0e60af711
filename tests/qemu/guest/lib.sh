# shellcheck shell=sh
# Helpers for guest scenario scripts (busybox sh). Results go to the second serial port (/dev/ttyS1),
# which vm.sh writes to results.txt, so kernel messages on the console cannot interleave with them.
# Line protocol (parsed by tests/tests/qemu_dax.rs):
#   @@KV key=value@@                    a fact (value may contain spaces)
#   @@RESULT name=NAME rc=RC@@          a step and its exit status
#   @@BEGIN name=NAME@@ ... @@END name=NAME rc=RC@@
#                                       a step's combined stdout+stderr, verbatim, and its exit status
#   @@DONE scenario=NAME rc=RC@@        written by /init last; absent means the VM died early
RES=/dev/ttyS1
export PATH=/opt/famfs/bin:/famfs-test/bin:/usr/sbin:/usr/bin:/sbin:/bin
DEV=/dev/dax0.0
export DEV
# cargo cannot name a binary `mkfs.famfs`; `famfs` invoked under that name is mkfs.famfs (multicall).
if [ -x /opt/famfs/bin/famfs ] && [ ! -e /opt/famfs/bin/mkfs.famfs ]; then
    ln -s famfs /opt/famfs/bin/mkfs.famfs
fi

res_init() {
    if [ -c "$RES" ]; then
        stty -F "$RES" raw -echo 2>/dev/null
    else
        echo "lib: $RES missing; results go to the console" >&2
        RES=/dev/console
    fi
}

emit() { printf '%s\n' "$*" >"$RES"; }

kv() { emit "@@KV $1=$2@@"; echo "[guest] $1=$2"; }

# result NAME RC
result() {
    emit "@@RESULT name=$1 rc=$2@@"
    read -r up _ </proc/uptime # guest uptime on the console shows where time goes
    echo "[guest] result $1 rc=$2 at ${up}s"
}

# step NAME CMD...: run CMD (output to the console) and record its status; returns that status.
step() {
    name=$1
    shift
    "$@"
    rc=$?
    result "$name" "$rc"
    return "$rc"
}

# capture NAME CMD...: run CMD, send its output as a payload block, echo it to the console, return its status.
capture() {
    name=$1
    shift
    out=/tmp/capture.$$
    "$@" >"$out" 2>&1
    rc=$?
    {
        printf '@@BEGIN name=%s@@\n' "$name"
        cat "$out"
        # keep the END marker on its own line even when the output lacks a final newline
        [ -s "$out" ] && [ "$(tail -c1 "$out" | od -An -c | tr -d ' ')" != '\n' ] && echo
        printf '@@END name=%s rc=%s@@\n' "$name" "$rc"
    } >"$RES"
    sed "s/^/[guest] $name: /" "$out"
    read -r up _ </proc/uptime
    echo "[guest] $name rc=$rc at ${up}s"
    rm -f "$out"
    return "$rc"
}

have() { command -v "$1" >/dev/null 2>&1; }

# wait_for PATH SECS: wait until PATH exists.
wait_for() {
    i=0
    while [ ! -e "$1" ]; do
        i=$((i + 1))
        [ "$i" -gt $(($2 * 10)) ] && return 1
        sleep 0.1
    done
}

# Every readable attribute of a dax device in sysfs, as name=value lines (for fake-sysfs fidelity).
dump_sysfs_dax() {
    d=/sys/bus/dax/devices/${1:-dax0.0}
    echo "driver=$(basename "$(readlink "$d/driver" 2>/dev/null)" 2>/dev/null)"
    for f in "$d"/* "$d"/mapping*/*; do
        if [ ! -f "$f" ] || [ ! -r "$f" ] || [ "${f##*/}" = uevent ]; then continue; fi
        v=$(tr '\n' ' ' <"$f" 2>&1)
        printf '%s=%s\n' "${f#"$d"/}" "${v% }"
    done
}

meminfo_total_kb() { awk '$1 == "MemTotal:" { print $2 }' /proc/meminfo; }

# Create the devdax namespace as the shared-device rules require: struct pages in RAM (-M mem), 2 MiB align.
create_devdax() {
    ndctl create-namespace -f -e namespace0.0 -m devdax --align 2M -M mem
}

# wait_dax_reprobe SECS: for a VM that booted on a shared file before another VM created the namespace.
# Polls the raw namespace for the other VM's info block (offset 4 KiB), then disables and re-enables
# the namespace so the kernel finds the devdax info block and /dev/dax0.0 appears.
wait_dax_reprobe() {
    i=0
    [ -e "$DEV" ] && kv dax_found at-boot
    until [ -e "$DEV" ]; do
        if dd if=/dev/pmem0 bs=4096 skip=1 count=1 iflag=direct 2>/dev/null | grep -q NVDIMM_DAX_INFO; then
            kv dax_found reprobe
            ndctl disable-namespace namespace0.0 && ndctl enable-namespace namespace0.0 || return 1
            wait_for "$DEV" 10
            return
        fi
        i=$((i + 1))
        [ "$i" -gt $(($1 * 10)) ] && return 1
        sleep 0.1
    done
}

# The files the two-host famfs scenario writes on one host and compares on the other: "PATH SIZE SEED"
# lines. Contents come from `daxmm gen SIZE SEED` on both sides, so nothing has to travel but the seed.
export FAMFS_TEST_FILES="f1 5242897 11
f2 4096 12
sub/f3 2097152 13
sub/deeper/f4 1 14"

# The two-host famfs scenario signals between hosts in the last 2 MiB of the device (far from anything
# the allocator hands out for these few small files).
export SIGNAL_READY=end-2M
export SIGNAL_ACK=end-1M
