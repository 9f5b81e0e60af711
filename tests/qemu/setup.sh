#!/usr/bin/env bash
# Prepare the qemu real-kernel test tier, from Debian packages only. Idempotent: a second run with
# everything cached takes about a second.
#
#   tests/qemu/setup.sh            # install, download, unpack, build the base initramfs
#   FAMFS_QEMU_CACHE=/some/dir ... # use another cache directory (default tests/qemu/cache)
#   FAMFS_QEMU_DEBIAN_MIRROR=URL   # Debian mirror for the private apt configuration
#                                  # (default http://deb.debian.org/debian)
#   FAMFS_QEMU_KERNEL_RELEASE=7.3.4+deb13-cloud-amd64 FAMFS_QEMU_KERNEL_VERSION=7.3.4-1~bpo13+1 ...
#                                  # another kernel from the private suites (both or neither)
#
# The guest kernel is Debian's 7.3 cloud kernel from trixie-backports, pinned below: it builds the dax
# half of famfs (fsdev_dax, "famfs mode") but not the fuse half. The guest user space is ndctl/daxctl
# (version 85 or later from sid: the first daxctl that knows famfs mode) with trixie's libraries, and
# trixie's static busybox.
#
# What it does:
#   1. apt-get install (--no-install-recommends) the host tools: qemu-system-x86, kmod, cpio, file, xz...
#      `apt-get update` runs only when a package cannot be found or fetched with the current lists.
#   2. A private apt configuration under $CACHE/apt (its own sources list, preferences, lists, package
#      cache and an empty dpkg status; the host's apt sources and state are never touched) fetches the
#      guest packages into $CACHE/debs with `apt-get download`: the pinned kernel (linux-image-REL and
#      the linux-base/-binary/-modules-REL packages it depends on), busybox-static, ndctl, daxctl and
#      the libraries they load. Its lists are refreshed only when a package is missing or a fetch fails.
#   3. dpkg -x the kernel into $CACHE/kernel (merged /usr: a lib -> usr/lib link for kmod) and run
#      depmod; dpkg -x the rest into $CACHE/userland and check that ndctl and daxctl run from it alone.
#   4. build the guest mmap tool (tools/daxmm.rs) statically into $CACHE/tools/daxmm.
#   5. build $CACHE/base.cpio.gz: busybox, the nvdimm/dax/kmem/fsdev_dax module closure (decompressed),
#      ndctl and daxctl with their libraries. Scenario scripts and /init are not in it: vm.sh appends
#      them per run.
#   6. write $CACHE/env.sh (KVER, KERNEL, BASE_INITRD, versions...) for vm.sh and the Rust test.
set -euo pipefail

# shellcheck source=lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
export LC_ALL=C DEBIAN_FRONTEND=noninteractive

# --- pins ----------------------------------------------------------------------------------------------
# trixie-backports keeps superseded kernels for months; bump both lines together.
KERNEL_RELEASE=${FAMFS_QEMU_KERNEL_RELEASE:-7.3.4+deb13-cloud-amd64}
KERNEL_VERSION=${FAMFS_QEMU_KERNEL_VERSION:-7.3.4-1~bpo13+1}
MIRROR=${FAMFS_QEMU_DEBIAN_MIRROR:-http://deb.debian.org/debian}
# ndctl/daxctl come from sid (only sid has 85, the first with famfs mode); everything else from trixie.
SID_PKGS=(ndctl daxctl libndctl6 libdaxctl1)
DAXCTL_MIN=85
# Their runtime libraries (checked in step 5: a library found only on the host is an error).
LIB_PKGS=(libc6 libiniparser4 libjson-c5 libkeyutils1 libuuid1 libkmod2 libudev1 libcap2 libssl3t64
    zlib1g libzstd1)
GUEST_PKGS=(busybox-static "${SID_PKGS[@]}" "${LIB_PKGS[@]}")

HOST_PKGS=(qemu-system-x86 kmod cpio file binutils gzip xz-utils debian-archive-keyring)
# Loaded by the guest /init (in this order); the initramfs carries their dependency closure. Built-in
# ones (fuse is built into the 7.x cloud kernels) are skipped; fsdev_dax is optional (older kernels).
GUEST_MODULES=(nfit nd_pmem nd_btt dax_pmem device_dax kmem fsdev_dax fuse)
OPTIONAL_MODULES=(fsdev_dax)

APT_DIR=$CACHE_DIR/apt
DEBS=$CACHE_DIR/debs
KROOT=$CACHE_DIR/kernel
UROOT=$CACHE_DIR/userland
TOOLS=$CACHE_DIR/tools
mkdir -p "$DEBS" "$TOOLS"

started_ms=$(($(date +%s%N) / 1000000))

need_root() {
    [[ $(id -u) == 0 ]] || die "$1 needs root (apt-get); run this script as root"
}

# --- 1. host packages ------------------------------------------------------------------------------
install_host_packages() {
    local missing=() p
    for p in "${HOST_PKGS[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    # The trixie and sid release files are signed with the trixie keys (bookworm's keyring has them
    # since 2023.3+deb12u2).
    if [[ ! -s /usr/share/keyrings/debian-archive-trixie-automatic.gpg ]]; then
        missing+=(debian-archive-keyring)
    fi
    ((${#missing[@]} == 0)) && return 0
    need_root "installing ${missing[*]}"
    log "apt-get install ${missing[*]}"
    if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
        log "apt-get update (host package lists are missing or stale)"
        apt-get update -qq || log "warning: apt-get update reported errors; continuing with what it fetched"
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
            die "apt-get install ${missing[*]} failed after apt-get update"
    fi
}

# --- 2. the private apt configuration --------------------------------------------------------------
APT_OPTS=(
    -o "Dir::Etc::sourcelist=$APT_DIR/sources.list" -o "Dir::Etc::sourceparts=$APT_DIR/sources.list.d"
    -o "Dir::Etc::preferences=$APT_DIR/preferences" -o "Dir::Etc::preferencesparts=$APT_DIR/preferences.d"
    -o "Dir::State::lists=$APT_DIR/lists" -o "Dir::State::status=$APT_DIR/status"
    -o "Dir::State::extended_states=$APT_DIR/extended_states" -o "Dir::Cache=$APT_DIR/cache"
    # Docker-style hosts turn the binary caches off; without them each apt-cache call parses ~45 MB.
    -o Dir::Cache::pkgcache=pkgcache.bin -o Dir::Cache::srcpkgcache=srcpkgcache.bin
    -o APT::Sandbox::User=root
)
papt_get() { apt-get "${APT_OPTS[@]}" "$@"; }
papt_cache() { apt-cache "${APT_OPTS[@]}" "$@"; }

# Write the configuration; a changed sources list invalidates the lists fetched for the old one.
write_apt_config() {
    local keyring=/usr/share/keyrings/debian-archive-keyring.gpg sources suite
    mkdir -p "$APT_DIR"/{sources.list.d,preferences.d,lists/partial,cache/archives/partial}
    sources=$(for suite in trixie-backports trixie sid; do
        printf 'deb [signed-by=%s target=Packages] %s %s main\n' "$keyring" "$MIRROR" "$suite"
    done)
    if write_if_changed "$APT_DIR/sources.list" "$sources"; then
        find "$APT_DIR/lists" -maxdepth 1 -type f -delete
    fi
    # trixie is the default; sid only for ndctl/daxctl; trixie-backports (priority 100) only by version.
    # Files are rewritten only when they change: apt rebuilds its cache when one is newer than it.
    write_if_changed "$APT_DIR/preferences" "$(printf '%s\n' 'Package: *' 'Pin: release a=unstable' \
        'Pin-Priority: 50' '' "Package: ${SID_PKGS[*]}" 'Pin: release a=unstable' 'Pin-Priority: 990')" || true
    [[ -f $APT_DIR/status ]] || : >"$APT_DIR/status"
}

# write_if_changed FILE TEXT: returns 1 when FILE already held TEXT.
write_if_changed() {
    [[ -f $1 && $(cat "$1") == "$2" ]] && return 1
    printf '%s\n' "$2" >"$1"
}

APT_UPDATED=0
# Refresh the private lists at most once per invocation. Returns 1 when it already ran.
apt_update_once() {
    ((APT_UPDATED == 0)) || return 1
    APT_UPDATED=1
    log "apt-get update of the private lists ($MIRROR: trixie-backports, trixie, sid)"
    papt_get update -qq || die "apt-get update of the private lists failed (mirror $MIRROR)"
}

# Print "spec file" for each spec (PKG or PKG=VERSION): the file `apt-get download` makes of it.
# One apt-cache call for all of them (each call parses the whole package lists).
deb_names() {
    papt_cache show --no-all-versions "$@" 2>/dev/null | awk -v specs="$*" '
        BEGIN { n = split(specs, s, " ") }
        function out() {
            f = v; gsub(":", "%3a", f)
            for (i = 1; i <= n; i++) if (s[i] == p || s[i] == p "=" v) print s[i], p "_" f "_" a ".deb"
            p = ""
        }
        $1 == "Package:" { p = $2 } $1 == "Version:" { v = $2 } $1 == "Architecture:" { a = $2 }
        /^$/ && p != "" { out() }
        END { if (p != "") out() }'
}

# Make sure $DEBS holds every spec (PKG = its candidate, PKG=VERSION = that version); print "spec file".
fetch_debs() {
    local attempt spec name resolved missing unknown
    for attempt in 1 2; do
        missing=() unknown=()
        resolved=$(deb_names "$@")
        for spec in "$@"; do
            name=$(awk -v p="$spec" '$1 == p { print $2; exit }' <<<"$resolved")
            if [[ -z $name ]]; then unknown+=("$spec"); continue; fi
            [[ -s $DEBS/$name ]] || missing+=("$spec")
        done
        if ((${#unknown[@]} == 0 && ${#missing[@]} == 0)); then
            printf '%s\n' "$resolved"
            return 0
        fi
        if ((${#unknown[@]} == 0)); then
            log "apt-get download ${missing[*]}"
            if (cd "$DEBS" && papt_get download -qq "${missing[@]}" >/dev/null); then
                continue
            fi
        fi
        ((attempt == 1)) && apt_update_once && continue
        die "cannot download ${unknown[*]} ${missing[*]} (unknown to the private apt lists, or the fetch failed)"
    done
    die "downloads did not complete"
}

# The packages holding the kernel (nothing when apt does not know it): in 7.x linux-image-REL only
# depends on linux-{base,binary,modules}-REL, which hold the files.
kernel_specs() {
    local image=linux-image-$KERNEL_RELEASE info
    info=$(papt_cache show "$image=$KERNEL_VERSION" 2>/dev/null) || return 0
    [[ -n $info ]] || return 0
    printf '%s\n' "$image=$KERNEL_VERSION"
    awk -v rel="$KERNEL_RELEASE" -v ver="$KERNEL_VERSION" '
        $1 == "Depends:" { sub(/^Depends: */, ""); n = split($0, d, /, */)
            for (i = 1; i <= n; i++) {
                split(d[i], w, " ")
                if (w[1] ~ /^linux-[a-z]+-/ && substr(w[1], length(w[1]) - length(rel) + 1) == rel) print w[1] "=" ver
            }
            exit }' <<<"$info"
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

# The unpacked user space runs on its own loader and libraries, never the host's.
ULIBS=$UROOT/usr/lib/x86_64-linux-gnu:$UROOT/lib/x86_64-linux-gnu
uloader() { find "$UROOT" -path '*/lib64/ld-linux-x86-64.so.2' -print -quit; }
urun() { "$(uloader)" --library-path "$ULIBS" "$@"; }

# The libraries BINARY loads, each from $UROOT (dies naming one that only the host has).
ulibs_of() {
    local line path
    urun --list "$1" | while read -r line; do
        case $line in
        linux-vdso* | */ld-linux-x86-64.so.2*) continue ;;
        *'=> not found'*) die "${1##*/} needs ${line%% *}, which no package in LIB_PKGS ships" ;;
        esac
        path=$(awk '$2 == "=>" { print $3 }' <<<"$line")
        [[ $path == "$UROOT"/* ]] || die "${1##*/} loads $path from the host: add its package to LIB_PKGS"
        echo "$path"
    done
}

# --- 5. base initramfs ---------------------------------------------------------------------------------
# Copy one module (decompressed: busybox modprobe need not read .ko.xz) into the stage's module tree.
stage_module() {
    local stage=$1 src=$2 rel
    rel=${src#*/modules/"$KVER"/}
    mkdir -p "$stage/lib/modules/$KVER/$(dirname "$rel")"
    case $src in
    *.ko.xz) xz -dc "$src" >"$stage/lib/modules/$KVER/${rel%.xz}" ;;
    *.ko.gz) gzip -dc "$src" >"$stage/lib/modules/$KVER/${rel%.gz}" ;;
    *.ko.zst) zstd -qdc "$src" >"$stage/lib/modules/$KVER/${rel%.zst}" ;;
    *) cp "$src" "$stage/lib/modules/$KVER/$rel" ;;
    esac
}

stage_modules() {
    local stage=$1 m deps loaded=()
    for m in "${GUEST_MODULES[@]}"; do
        if ! deps=$(modprobe -d "$KROOT" -S "$KVER" --show-depends "$m" 2>/dev/null); then
            [[ " ${OPTIONAL_MODULES[*]} " == *" $m "* ]] || die "kernel $KVER has no module $m"
            log "kernel $KVER has no module $m (optional)"
            continue
        fi
        awk '$1 == "insmod" { print $2 }' <<<"$deps" | while read -r path; do stage_module "$stage" "$path"; done
        grep -q '^insmod' <<<"$deps" && loaded+=("$m")
    done
    for m in modules.order modules.builtin modules.builtin.modinfo; do
        [[ -f $KROOT/lib/modules/$KVER/$m ]] && cp "$KROOT/lib/modules/$KVER/$m" "$stage/lib/modules/$KVER/"
    done
    depmod -b "$stage" "$KVER"
    mkdir -p "$stage/etc/famfs-test"
    printf '%s\n' "${loaded[@]}" >"$stage/etc/famfs-test/modules"
}

build_base_initramfs() {
    local stage=$CACHE_DIR/base-stage applet bin lib libs busybox
    rm -rf "$stage"
    mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,etc,dev,proc,sys,tmp,run,mnt,opt,root}
    mkdir -p "$stage"/{lib/x86_64-linux-gnu,lib64,lib/modules/"$KVER"}

    busybox=$(find "$UROOT" -path '*bin/busybox' -type f -print -quit)
    [[ -n $busybox ]] || die "busybox-static has no busybox binary"
    install -m 0755 "$busybox" "$stage/bin/busybox"
    for applet in $("$stage/bin/busybox" --list-full); do
        [[ -e $stage/$applet || -L $stage/$applet ]] || ln -s /bin/busybox "$stage/$applet"
    done

    stage_modules "$stage"

    for bin in ndctl daxctl; do
        install -m 0755 "$UROOT/usr/bin/$bin" "$stage/usr/bin/$bin"
        libs=$(ulibs_of "$UROOT/usr/bin/$bin") || die "cannot resolve the libraries of $bin"
        for lib in $libs; do
            cp -L "$lib" "$stage/lib/x86_64-linux-gnu/${lib##*/}"
        done
    done
    cp -L "$(uloader)" "$stage/lib64/ld-linux-x86-64.so.2"
    printf '/lib/x86_64-linux-gnu\n/usr/lib/x86_64-linux-gnu\n' >"$stage/etc/ld.so.conf"
    ldconfig -r "$stage" 2>/dev/null || log "warning: ldconfig -r failed; the guest relies on ld.so defaults"

    printf 'root:x:0:0:root:/root:/bin/sh\n' >"$stage/etc/passwd"
    printf 'root:x:0:\n' >"$stage/etc/group"
    ln -s /proc/mounts "$stage/etc/mtab"

    make_cpio "$stage" "$CACHE_DIR/base.cpio.gz"
    rm -rf "$stage"
}

# --- main ----------------------------------------------------------------------------------------------
if [[ -n ${FAMFS_QEMU_KERNEL_RELEASE:-} && -z ${FAMFS_QEMU_KERNEL_VERSION:-} ]] ||
    [[ -z ${FAMFS_QEMU_KERNEL_RELEASE:-} && -n ${FAMFS_QEMU_KERNEL_VERSION:-} ]]; then
    die "set both FAMFS_QEMU_KERNEL_RELEASE and FAMFS_QEMU_KERNEL_VERSION, or neither"
fi
install_host_packages
command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 not found after installing qemu-system-x86"

write_apt_config
[[ -n $(find "$APT_DIR/lists" -maxdepth 1 -name '*_Packages*' -print -quit) ]] || apt_update_once
mapfile -t kspecs < <(kernel_specs)
if ((${#kspecs[@]} == 0)) && apt_update_once; then
    mapfile -t kspecs < <(kernel_specs)
fi
((${#kspecs[@]} > 0)) || die "linux-image-$KERNEL_RELEASE $KERNEL_VERSION is not in trixie-backports or sid ($MIRROR)"
resolved=$(fetch_debs "${kspecs[@]}" "${GUEST_PKGS[@]}")
deb_of() { awk -v p="$1" '$1 == p { print $2 }' <<<"$resolved"; }

kernel_debs=() guest_debs=()
for s in "${kspecs[@]}"; do kernel_debs+=("$DEBS/$(deb_of "$s")"); done
for p in "${GUEST_PKGS[@]}"; do guest_debs+=("$DEBS/$(deb_of "$p")"); done

# Drop cached debs that are no longer wanted (keeps the cache from growing).
for f in "$DEBS"/*.deb; do
    grep -qF " ${f##*/}" <<<"$resolved" || rm -f "$f"
done

if unpack_into "$KROOT" "${kernel_debs[@]}"; then
    log "unpacked ${kernel_debs[*]##*/}"
    # Merged /usr (7.x packages): kmod's -b/-d want ROOT/lib/modules.
    [[ -d $KROOT/usr/lib/modules && ! -e $KROOT/lib ]] && ln -s usr/lib "$KROOT/lib"
    kver=$(ls "$KROOT/lib/modules")
    depmod -b "$KROOT" "$kver"
fi
KVER=$(ls "$KROOT/lib/modules")
[[ $(wc -w <<<"$KVER") == 1 ]] || die "expected one kernel in $KROOT/lib/modules, found: $KVER"
KERNEL=
for k in "$KROOT/boot/vmlinuz-$KVER" "$KROOT/lib/modules/$KVER/vmlinuz"; do
    [[ -f $k ]] && KERNEL=$k && break
done
[[ -n $KERNEL ]] || die "no vmlinuz for $KVER in ${kernel_debs[*]##*/}"
KPKG=linux-image-$KERNEL_RELEASE

if unpack_into "$UROOT" "${guest_debs[@]}"; then
    log "unpacked ${#guest_debs[@]} userland packages"
fi
DAXCTL_VERSION=$(urun "$UROOT/usr/bin/daxctl" version) || die "the unpacked daxctl does not run"
NDCTL_VERSION=$(urun "$UROOT/usr/bin/ndctl" version) || die "the unpacked ndctl does not run"
dpkg --compare-versions "$DAXCTL_VERSION" ge "$DAXCTL_MIN" || die "daxctl $DAXCTL_VERSION is older than $DAXCTL_MIN"

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
    echo "$KVER"
    cat "$KROOT/.stamp" "$UROOT/.stamp"
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
    printf "KERNEL_PKG_VERSION='%s'\n" "$KERNEL_VERSION"
    printf "DAXCTL_VERSION='%s'\n" "$DAXCTL_VERSION"
    printf "NDCTL_VERSION='%s'\n" "$NDCTL_VERSION"
    printf "BASE_INITRD='%s'\n" "$CACHE_DIR/base.cpio.gz"
    printf "DAXMM='%s'\n" "$TOOLS/daxmm"
    printf "QEMU_VERSION='%s'\n" "${qemu_version//\'/}"
} >"$CACHE_DIR/env.sh.tmp"
mv "$CACHE_DIR/env.sh.tmp" "$CACHE_DIR/env.sh"

elapsed_ms=$(($(date +%s%N) / 1000000 - started_ms))
log "ready: kernel $KVER ($KPKG $KERNEL_VERSION), daxctl $DAXCTL_VERSION, $qemu_version," \
    "in $((elapsed_ms / 1000)).$((elapsed_ms % 1000 / 100))s"
