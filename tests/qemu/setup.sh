#!/usr/bin/env bash
# Prepare the qemu real-kernel test tier, from Debian packages only. Idempotent: a second run with
# everything cached takes about a second.
#
#   tests/qemu/setup.sh            # install, download, unpack, build the base initramfs
#   FAMFS_QEMU_CACHE=/some/dir ... # use another cache directory (default tests/qemu/cache)
#   FAMFS_QEMU_KERNEL_PKG=linux-image-X-cloud-amd64 ...  # pin a kernel package instead of resolving it
#
# What it does:
#   1. apt-get install (--no-install-recommends) the host tools: qemu-system-x86, kmod, cpio, file, ...
#      `apt-get update` runs only when a package cannot be found or fetched with the current lists.
#   2. apt-get download (never installed) into $CACHE/debs: the Debian cloud kernel, resolved through the
#      linux-image-cloud-amd64 metapackage; busybox-static; ndctl, daxctl and their libraries.
#   3. dpkg -x the kernel into $CACHE/kernel and run depmod; dpkg -x the rest into $CACHE/userland.
#   4. build the guest mmap tool (tools/daxmm.rs) statically into $CACHE/tools/daxmm.
#   5. build $CACHE/base.cpio.gz: busybox, the nvdimm/dax/kmem/fuse module closure, ndctl and daxctl with
#      the libraries ldd names. Scenario scripts and /init are not in it: vm.sh appends them per run.
#   6. write $CACHE/env.sh (KVER, KERNEL, BASE_INITRD, ...) for vm.sh and the Rust test.
set -euo pipefail

# shellcheck source=lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
export LC_ALL=C DEBIAN_FRONTEND=noninteractive

HOST_PKGS=(qemu-system-x86 kmod cpio file binutils gzip)
GUEST_PKGS=(busybox-static ndctl daxctl libndctl6 libdaxctl1 libcxl1 libiniparser1 libjson-c5
    libkeyutils1 libtraceevent1 libtracefs1 libkmod2 libudev1 libuuid1)
# Loaded by the guest /init; the initramfs carries their dependency closure.
GUEST_MODULES=(nfit nd_pmem nd_btt dax_pmem device_dax kmem fuse)

DEBS=$CACHE_DIR/debs
KROOT=$CACHE_DIR/kernel
UROOT=$CACHE_DIR/userland
TOOLS=$CACHE_DIR/tools
mkdir -p "$DEBS" "$TOOLS"

started_ms=$(($(date +%s%N) / 1000000))

APT_UPDATED=0
# Run `apt-get update` at most once per invocation. Returns 1 when it already ran (nothing new to try).
apt_update_once() {
    ((APT_UPDATED == 0)) || return 1
    APT_UPDATED=1
    log "apt-get update (package lists are missing or stale)"
    # Unreachable third-party sources only warn; what matters is whether Debian's lists now resolve.
    apt-get update -qq || log "warning: apt-get update reported errors; continuing with what it fetched"
}

need_root() {
    [[ $(id -u) == 0 ]] || die "$1 needs root (apt-get); run this script as root"
}

# --- 1. host packages ------------------------------------------------------------------------------
install_host_packages() {
    local missing=() p
    for p in "${HOST_PKGS[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    ((${#missing[@]} == 0)) && return 0
    need_root "installing ${missing[*]}"
    log "apt-get install ${missing[*]}"
    if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
        apt_update_once || die "apt-get install ${missing[*]} failed"
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
            die "apt-get install ${missing[*]} failed after apt-get update"
    fi
}

# --- 2. downloads ------------------------------------------------------------------------------------
resolve_kernel_pkg() {
    apt-cache depends linux-image-cloud-amd64 2>/dev/null |
        awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }'
}

# Print "pkg file" for each package named: the file apt-get download gives its candidate version.
# One apt-cache call for all of them (each call parses the whole package lists, ~0.5 s).
deb_names() {
    apt-cache show --no-all-versions "$@" 2>/dev/null | awk '
        $1 == "Package:" { p = $2 } $1 == "Version:" { v = $2 } $1 == "Architecture:" { a = $2 }
        /^$/ && p != "" { gsub(":", "%3a", v); print p, p "_" v "_" a ".deb"; p = "" }
        END { if (p != "") { gsub(":", "%3a", v); print p, p "_" v "_" a ".deb" } }'
}

# Make sure $DEBS holds the candidate version of every package named; print "pkg file" lines.
fetch_debs() {
    local attempt pkg name resolved missing unknown
    for attempt in 1 2; do
        missing=() unknown=()
        resolved=$(deb_names "$@")
        for pkg in "$@"; do
            name=$(awk -v p="$pkg" '$1 == p { print $2; exit }' <<<"$resolved")
            if [[ -z $name ]]; then unknown+=("$pkg"); continue; fi
            [[ -s $DEBS/$name ]] || missing+=("$pkg")
        done
        if ((${#unknown[@]} == 0 && ${#missing[@]} == 0)); then
            printf '%s\n' "$resolved"
            return 0
        fi
        if ((${#unknown[@]} == 0)); then
            log "apt-get download ${missing[*]}"
            if (cd "$DEBS" && apt-get download -qq -o APT::Sandbox::User=root "${missing[@]}" >/dev/null); then
                continue
            fi
        fi
        ((attempt == 1)) && apt_update_once && continue
        die "cannot download ${unknown[*]} ${missing[*]} (unknown to apt or fetch failed)"
    done
    die "downloads did not complete"
}

# --- 3. unpack ---------------------------------------------------------------------------------------
# Unpack debs into $1 unless its stamp already names exactly these files.
unpack_into() {
    local dir=$1 stamp deb
    shift
    stamp=$(printf '%s\n' "$@" | xargs -n1 basename | sort)
    if [[ -f $dir/.stamp && $(cat "$dir/.stamp") == "$stamp" ]]; then
        return 1
    fi
    rm -rf "$dir"
    mkdir -p "$dir"
    for deb in "$@"; do
        dpkg-deb -x "$deb" "$dir"
    done
    printf '%s\n' "$stamp" >"$dir/.stamp"
}

# --- 5. base initramfs ---------------------------------------------------------------------------------
copy_with_libs() { # copy_with_libs STAGE DEST_DIR BINARY...: binaries plus the shared libraries ldd names
    local stage=$1 dest=$2 bin lib
    shift 2
    mkdir -p "$stage/$dest" "$stage/lib/x86_64-linux-gnu" "$stage/lib64"
    for bin in "$@"; do
        install -m 0755 "$bin" "$stage/$dest/"
        LD_LIBRARY_PATH="$UROOT/lib/x86_64-linux-gnu:$UROOT/usr/lib/x86_64-linux-gnu" ldd "$bin" |
            awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'
    done | sort -u | while read -r lib; do
        if [[ ${lib##*/} == ld-linux-x86-64.so.2 ]]; then
            cp -L "$lib" "$stage/lib64/ld-linux-x86-64.so.2"
        else
            cp -L "$lib" "$stage/lib/x86_64-linux-gnu/${lib##*/}"
        fi
    done
}

build_base_initramfs() {
    local stage=$CACHE_DIR/base-stage m path applet
    rm -rf "$stage"
    mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,etc,dev,proc,sys,tmp,run,mnt,opt,root,lib/modules/"$KVER"}

    install -m 0755 "$UROOT/bin/busybox" "$stage/bin/busybox"
    for applet in $("$stage/bin/busybox" --list-full); do
        [[ -e $stage/$applet || -L $stage/$applet ]] || ln -s /bin/busybox "$stage/$applet"
    done

    # Dependency closure of the modules the guest loads, laid out as in the kernel package.
    for m in "${GUEST_MODULES[@]}"; do
        modprobe -d "$KROOT" -S "$KVER" --show-depends "$m" | awk '$1 == "insmod" { print $2 }'
    done | sort -u | while read -r path; do
        path=${path#"$KROOT"}
        mkdir -p "$stage/$(dirname "$path")"
        cp "$KROOT/$path" "$stage/$path"
    done
    for m in modules.order modules.builtin modules.builtin.modinfo; do
        [[ -f $KROOT/lib/modules/$KVER/$m ]] && cp "$KROOT/lib/modules/$KVER/$m" "$stage/lib/modules/$KVER/"
    done
    depmod -b "$stage" "$KVER"

    copy_with_libs "$stage" usr/bin "$UROOT/usr/bin/ndctl" "$UROOT/usr/bin/daxctl"
    printf '/lib/x86_64-linux-gnu\n/usr/lib/x86_64-linux-gnu\n' >"$stage/etc/ld.so.conf"
    ldconfig -r "$stage" 2>/dev/null || log "warning: ldconfig -r failed; the guest relies on ld.so defaults"

    printf 'root:x:0:0:root:/root:/bin/sh\n' >"$stage/etc/passwd"
    printf 'root:x:0:\n' >"$stage/etc/group"
    ln -s /proc/mounts "$stage/etc/mtab"

    make_cpio "$stage" "$CACHE_DIR/base.cpio.gz"
    rm -rf "$stage"
}

# --- main ----------------------------------------------------------------------------------------------
install_host_packages
command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 not found after installing qemu-system-x86"

KPKG=${FAMFS_QEMU_KERNEL_PKG:-$(resolve_kernel_pkg)}
if [[ -z $KPKG ]]; then
    apt_update_once || true
    KPKG=$(resolve_kernel_pkg)
fi
[[ -n $KPKG ]] || die "cannot resolve linux-image-cloud-amd64 to a kernel package"

resolved=$(fetch_debs "$KPKG" "${GUEST_PKGS[@]}")
deb_of() { awk -v p="$1" '$1 == p { print $2 }' <<<"$resolved"; }

KDEB=$DEBS/$(deb_of "$KPKG")
guest_debs=()
for p in "${GUEST_PKGS[@]}"; do guest_debs+=("$DEBS/$(deb_of "$p")"); done

# Drop cached debs that are no longer the candidate version (keeps the cache from growing).
for f in "$DEBS"/*.deb; do
    grep -qF " ${f##*/}" <<<"$resolved" || rm -f "$f"
done

if unpack_into "$KROOT" "$KDEB"; then
    log "unpacked ${KDEB##*/}"
    kver=$(ls "$KROOT/lib/modules")
    depmod -b "$KROOT" "$kver"
fi
KVER=$(ls "$KROOT/lib/modules")
[[ $(wc -w <<<"$KVER") == 1 ]] || die "expected one kernel in $KROOT/lib/modules, found: $KVER"
KERNEL=$KROOT/boot/vmlinuz-$KVER
[[ -f $KERNEL ]] || die "no $KERNEL in ${KDEB##*/}"
KPKG_VERSION=$(dpkg-deb -f "$KDEB" Version)

unpack_into "$UROOT" "${guest_debs[@]}" && log "unpacked ${#guest_debs[@]} userland packages"

# --- 4. the guest mmap tool ---
src_sum=$(sha256sum "$QEMU_DIR/tools/daxmm.rs" | cut -d' ' -f1)
if [[ ! -x $TOOLS/daxmm || $(cat "$TOOLS/daxmm.sum" 2>/dev/null) != "$src_sum" ]]; then
    log "building tools/daxmm.rs (static)"
    (cd "$REPO_DIR" && rustc --edition 2024 -O -C target-feature=+crt-static -C debuginfo=0 -C strip=symbols \
        -o "$TOOLS/daxmm" "$QEMU_DIR/tools/daxmm.rs")
    echo "$src_sum" >"$TOOLS/daxmm.sum"
fi

# --- 5. base initramfs, rebuilt when its inputs change ---
base_sum=$( {
    echo "$KVER" "${KDEB##*/}"
    cat "$UROOT/.stamp"
    echo "${GUEST_MODULES[*]}"
    sha256sum "${BASH_SOURCE[0]}" | cut -d' ' -f1
} | sha256sum | cut -d' ' -f1)
if [[ ! -s $CACHE_DIR/base.cpio.gz || $(cat "$CACHE_DIR/base.sum" 2>/dev/null) != "$base_sum" ]]; then
    log "building base initramfs for $KVER"
    build_base_initramfs
    echo "$base_sum" >"$CACHE_DIR/base.sum"
fi

# --- 6. facts for vm.sh and the Rust test ---
qemu_version=$(qemu-system-x86_64 --version | head -n1)
{
    printf "KVER='%s'\n" "$KVER"
    printf "KERNEL='%s'\n" "$KERNEL"
    printf "KERNEL_PKG='%s'\n" "$KPKG"
    printf "KERNEL_PKG_VERSION='%s'\n" "$KPKG_VERSION"
    printf "BASE_INITRD='%s'\n" "$CACHE_DIR/base.cpio.gz"
    printf "DAXMM='%s'\n" "$TOOLS/daxmm"
    printf "QEMU_VERSION='%s'\n" "${qemu_version//\'/}"
} >"$CACHE_DIR/env.sh.tmp"
mv "$CACHE_DIR/env.sh.tmp" "$CACHE_DIR/env.sh"

elapsed_ms=$(($(date +%s%N) / 1000000 - started_ms))
log "ready: kernel $KVER ($KPKG $KPKG_VERSION), $qemu_version, in $((elapsed_ms / 1000)).$((elapsed_ms % 1000 / 100))s"
