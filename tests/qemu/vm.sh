#!/usr/bin/env bash
# Boot one test VM: the Debian cloud kernel from setup.sh, an emulated NVDIMM backed by a host file
# (share=on), and a guest scenario script. qemu always runs under `timeout`.
#
#   tests/qemu/vm.sh [options] SCENARIO      (SCENARIO "" or "shell" gives an interactive guest shell)
#
# Options:
#   -i FILE      NVDIMM backing file (default OUTDIR/pmem.img); created sparse when missing
#   -s SIZE      size for a new backing file (truncate syntax, default 4G)
#   -x CPIO      extra initramfs archive appended after the harness one (repeatable), e.g. our binaries
#   -e VAR=VAL   extra kernel command line word, seen by the guest as an environment variable (repeatable)
#   -o DIR       output directory (default: a new mktemp dir); results.txt and initrd.img go there
#   -t SECS      timeout for qemu (default 120)
#   -m MEM       guest RAM (default 1G)
#
# The serial console (kernel and scenario output) goes to stdout. The guest writes its result markers on a
# second serial port, to OUTDIR/results.txt (format in guest/lib.sh). Exit status: qemu's (0 after the
# guest powers off), 124 when the timeout fired.
# Environment: FAMFS_QEMU_ACCEL=tcg|kvm overrides the accelerator choice (default: KVM only when
# /sys/module/kvm_intel or kvm_amd exists and /dev/kvm is writable, else TCG).
set -euo pipefail

# shellcheck source=lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }

img='' size=4G outdir='' timeout_s=120 mem=1G
extras=() envs=()
while getopts 'i:s:x:e:o:t:m:h' opt; do
    case $opt in
    i) img=$OPTARG ;;
    s) size=$OPTARG ;;
    x) extras+=("$OPTARG") ;;
    e) envs+=("$OPTARG") ;;
    o) outdir=$OPTARG ;;
    t) timeout_s=$OPTARG ;;
    m) mem=$OPTARG ;;
    *) usage ;;
    esac
done
shift $((OPTIND - 1))
(($# == 1)) || usage
scenario=$1
[[ $scenario == shell ]] && scenario=

load_env
command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 not installed: run tests/qemu/setup.sh"
[[ -x ${DAXMM:-} ]] || die "daxmm tool missing: run tests/qemu/setup.sh"
if [[ -n $scenario && ! -f $QEMU_DIR/guest/scenarios/$scenario.sh ]]; then
    die "no scenario $scenario (have: $(find "$QEMU_DIR/guest/scenarios" -name '*.sh' -printf '%f ' | sed 's/\.sh//g'))"
fi
for w in "${envs[@]}"; do
    [[ $w =~ ^[A-Za-z_][A-Za-z0-9_]*=[^[:space:].]*$ ]] || die "bad -e $w (VAR=VALUE, no spaces or dots)"
done

[[ -n $outdir ]] || outdir=$(mktemp -d /tmp/famfs-vm.XXXXXX)
mkdir -p "$outdir"
outdir=$(cd "$outdir" && pwd)
[[ -n $img ]] || img=$outdir/pmem.img
[[ $outdir$img != *,* ]] || die "paths must not contain commas (qemu option syntax)"
[[ -e $img ]] || truncate -s "$size" "$img"

# The harness archive: /init, the helper library, the scenario scripts and the daxmm tool.
stage=$outdir/harness-stage
rm -rf "$stage"
mkdir -p "$stage/famfs-test/bin" "$stage/famfs-test/scenarios"
install -m 0755 "$QEMU_DIR/guest/init" "$stage/init"
install -m 0644 "$QEMU_DIR/guest/lib.sh" "$stage/famfs-test/lib.sh"
install -m 0644 "$QEMU_DIR"/guest/scenarios/*.sh "$stage/famfs-test/scenarios/"
install -m 0755 "$DAXMM" "$stage/famfs-test/bin/daxmm"
make_cpio "$stage" "$outdir/harness.cpio.gz"
rm -rf "$stage"
# The kernel unpacks concatenated archives in order; later files win.
cat "$BASE_INITRD" "$outdir/harness.cpio.gz" "${extras[@]}" >"$outdir/initrd.img"

accel=(-accel 'tcg,thread=multi' -cpu max)
case ${FAMFS_QEMU_ACCEL:-auto} in
kvm) accel=(-accel kvm -cpu host) ;;
tcg) ;;
auto)
    if [[ -w /dev/kvm ]] && [[ -d /sys/module/kvm_intel || -d /sys/module/kvm_amd ]]; then
        accel=(-accel kvm -cpu host)
    fi
    ;;
*) die "FAMFS_QEMU_ACCEL must be tcg, kvm or auto" ;;
esac

# memhp_default_state=offline: the 7.x cloud kernels auto-online hot-added memory
# (MHP_DEFAULT_ONLINE_TYPE_ONLINE_AUTO), and daxctl refuses system-ram under that policy.
append="console=ttyS0 panic=-1 quiet loglevel=3 memhp_default_state=offline"
[[ -n $scenario ]] && append+=" SCENARIO=$scenario"
for w in "${envs[@]}"; do append+=" $w"; done

: >"$outdir/results.txt"
log "kernel $KVER, ${accel[1]%%,*}, scenario ${scenario:-shell}, nvdimm $img, output $outdir"
rc=0
timeout -k 10 "$timeout_s" qemu-system-x86_64 "${accel[@]}" -smp 1 \
    -m "$mem,slots=4,maxmem=32G" -machine pc,nvdimm=on \
    -object "memory-backend-file,id=mem1,share=on,mem-path=$img,size=$(stat -c %s "$img"),align=2M" \
    -device nvdimm,memdev=mem1,id=nv1 \
    -display none -no-reboot -nodefaults \
    -serial mon:stdio -serial "file:$outdir/results.txt" \
    -kernel "$KERNEL" -initrd "$outdir/initrd.img" -append "$append" || rc=$?
((rc == 124)) && log "timeout: qemu killed after ${timeout_s}s"
exit "$rc"
