#!/usr/bin/env bash
# Pack binaries into a gzip-compressed cpio archive to append to the guest initramfs (vm.sh -x).
#
#   tests/qemu/pack-bins.sh [-d DEST] [-l] OUT.cpio.gz FILE...
#
#   -d DEST   directory in the guest (default /opt/famfs/bin, first on the guest PATH)
#   -l        accept dynamically linked files and add the shared libraries ldd lists (guest
#             /lib/x86_64-linux-gnu); without it every file must be statically linked
#
# The packed copies are stripped of debug info and symbols (a third of a dev build's size; the guest
# unpacks the initramfs under TCG). Panic messages stay; backtraces would show no function names.
set -euo pipefail

# shellcheck source=lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

dest=/opt/famfs/bin libs=0
while getopts 'd:lh' opt; do
    case $opt in
    d) dest=$OPTARG ;;
    l) libs=1 ;;
    *) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
(($# >= 2)) || die "usage: pack-bins.sh [-d DEST] [-l] OUT.cpio.gz FILE..."
out=$1
shift

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/$dest"
for f in "$@"; do
    [[ -f $f && -x $f ]] || die "$f is not an executable file"
    desc=$(file -bL "$f")
    if [[ $desc != *"statically linked"* && $desc != *"static-pie linked"* ]]; then
        ((libs)) || die "$f is not statically linked ($desc); build it with build-guest-bins.sh or pass -l"
        mkdir -p "$stage/lib/x86_64-linux-gnu" "$stage/lib64"
        ldd "$f" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' | while read -r lib; do
            case ${lib##*/} in
            ld-linux-x86-64.so.2) cp -L "$lib" "$stage/lib64/" ;;
            *) cp -L "$lib" "$stage/lib/x86_64-linux-gnu/" ;;
            esac
        done
    fi
    objcopy --strip-all "$f" "$stage/$dest/${f##*/}"
    chmod 0755 "$stage/$dest/${f##*/}"
    log "packed ${f##*/} -> $dest ($(stat -c %s "$stage/$dest/${f##*/}") bytes; $desc)"
done
make_cpio "$stage" "$out"
