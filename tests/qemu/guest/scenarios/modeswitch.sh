# shellcheck shell=sh
# Scenario A (one VM, private backing file): a real devdax namespace and the three dax modes against the
# kernel's own drivers (device_dax, fsdev_dax, kmem). First the real daxctl (85: the reference, it knows
# famfs mode) makes its round trips; then our daxctl-famfs makes devdax -> famfs -> devdax -> system-ram
# -> devdax, with the real daxctl listing the device after each step and each refusal compared with the
# real one in the same state. In famfs mode the device cannot be mmapped: our famfs tools must refuse
# it clearly, and `famfs mount` must fail leaving nothing mounted and no daemon behind.
# Every listing goes back to the host as JSON.
# shellcheck source-path=SCRIPTDIR/.. source=lib.sh
. /famfs-test/lib.sh
MARK="famfs-qemu-marker-${RUNID:-0}"
# Away from what mkfs.famfs writes (superblock at 0, log from 2 MiB).
MARK_AT=end-2M
MPT=/mnt/famfs

# Whatever binaries the host shipped must start in the guest (static linking, no missing libraries).
for b in /opt/famfs/bin/*; do
    [ -x "$b" ] && capture "help-${b##*/}" "$b" --help
done
capture daxctl-version daxctl version
capture dax-drivers ls /sys/bus/dax/drivers
# FUSE for the famfs daemon (it mounts with mount(2) as root; no fusermount needed).
step fuse-available sh -c '[ -c /dev/fuse ] && grep -qw fuse /proc/filesystems'
capture ndctl-list-before ndctl list -RN
capture create-namespace create_devdax || exit 1
step dax-dev-appears wait_for "$DEV" 10 || exit 1
capture daxctl-list-devdax daxctl list
capture daxctl-list-devdax-human daxctl list -u
capture sysfs-dax0.0 dump_sysfs_dax dax0.0
capture sysfs-memory-block-size cat /sys/devices/system/memory/block_size_bytes
step marker-write daxmm write "$DEV" "$MARK_AT" "$MARK"
kv memtotal_kb_devdax "$(meminfo_total_kb)"

# --- the real daxctl: devdax -> system-ram -> devdax, devdax -> famfs -> devdax ---
capture real-reconf-system-ram daxctl reconfigure-device -m system-ram dax0.0
capture daxctl-list-system-ram daxctl list
kv memtotal_kb_system_ram "$(meminfo_total_kb)"
# Leaving system-ram without -f must be refused with EBUSY (exit 240): the memory is online.
capture real-reconf-devdax-noforce daxctl reconfigure-device -m devdax dax0.0
# famfs from system-ram is refused before any sysfs write (EINVAL, exit 234).
capture real-reconf-famfs-from-ram daxctl reconfigure-device -m famfs dax0.0
capture real-reconf-devdax-force daxctl reconfigure-device -m devdax -f dax0.0
capture daxctl-list-devdax-after daxctl list
kv memtotal_kb_devdax_after "$(meminfo_total_kb)"
capture marker-read daxmm read "$DEV" "$MARK_AT" 4K
capture real-reconf-famfs daxctl reconfigure-device -m famfs dax0.0
capture real-list-famfs daxctl list
capture real-list-famfs-human daxctl list -u
capture real-sysfs-famfs dump_sysfs_dax dax0.0
capture real-reconf-famfs-again daxctl reconfigure-device -m famfs dax0.0
capture real-reconf-famfs-no-online daxctl reconfigure-device -m famfs --no-online dax0.0
capture real-reconf-devdax-from-famfs daxctl reconfigure-device -m devdax dax0.0
capture real-list-devdax-from-famfs daxctl list

if ! have daxctl-famfs; then
    kv ours_daxctl absent
    capture dmesg dmesg
    exit 0
fi
# --- ours in devdax mode, compared with the real daxctl in the same VM ---
kv ours_daxctl present
capture ours-list-devdax daxctl-famfs list
capture ours-list-devdax-dev daxctl-famfs list -d dax0.0
capture ours-list-devdax-human daxctl-famfs list -u
# A filter that matches nothing: both print nothing and exit 0.
capture real-list-nomatch daxctl list -d dax9.9
capture ours-list-nomatch daxctl-famfs list -d dax9.9
capture real-reconf-nomatch daxctl reconfigure-device -m devdax dax9.9
capture ours-reconf-nomatch daxctl-famfs reconfigure-device -m devdax dax9.9
# A famfs file system on the device, so that the famfs-mode refusals below are about the mode alone.
have mkfs.famfs && capture ours-mkfs-devdax mkfs.famfs "$DEV"

# --- ours: devdax -> famfs ---
capture ours-reconf-famfs daxctl-famfs reconfigure-device -m famfs dax0.0
capture real-list-after-ours-famfs daxctl list
capture ours-list-famfs daxctl-famfs list
capture ours-list-famfs-human daxctl-famfs list -u
capture ours-sysfs-famfs dump_sysfs_dax dax0.0
capture ours-reconf-famfs-again daxctl-famfs reconfigure-device -m famfs dax0.0
capture ours-reconf-famfs-no-online daxctl-famfs reconfigure-device -m famfs --no-online dax0.0

# In famfs mode (fsdev_dax) /dev/dax0.0 stays but cannot be mapped (ENODEV).
step famfs-mode-chardev-present test -c "$DEV"
capture famfs-mode-mmap daxmm read "$DEV" "$MARK_AT" 4K
if have mkfs.famfs && have famfs && have famfs_fused; then
    kv ours_famfs present
    capture famfs-mode-mkfs mkfs.famfs "$DEV"
    capture famfs-mode-mkfs-force mkfs.famfs -f "$DEV"
    capture famfs-mode-fsck famfs fsck "$DEV"
    capture famfs-mode-logplay famfs logplay --ls "$DEV"
    mkdir -p "$MPT"
    capture famfs-mode-mount famfs mount "$DEV" "$MPT"
    capture famfs-mode-mounts-after-mount cat /proc/mounts
    capture famfs-mode-daemons-after-mount pidof famfs_fused
    # The daemon started by hand (what `famfs mount` runs), bounded in case it would hang.
    capture famfs-mode-daemon timeout 30 famfs_fused "$DEV" "$MPT"
    capture famfs-mode-mounts-after-daemon cat /proc/mounts
    capture famfs-mode-daemons-after-daemon pidof famfs_fused
else
    kv ours_famfs absent
fi

# --- ours: famfs -> devdax; the file system and the marker survived ---
capture ours-reconf-devdax-from-famfs daxctl-famfs reconfigure-device -m devdax dax0.0
capture real-list-after-ours-devdax-from-famfs daxctl list
capture ours-marker-read-after-famfs daxmm read "$DEV" "$MARK_AT" 4K
have famfs && capture ours-fsck-after-famfs famfs fsck "$DEV"

# --- ours: devdax -> system-ram -> devdax ---
capture ours-reconf-system-ram daxctl-famfs reconfigure-device -m system-ram dax0.0
capture real-list-after-ours-system-ram daxctl list
capture ours-list-system-ram daxctl-famfs list
kv memtotal_kb_ours_system_ram "$(meminfo_total_kb)"
# Refusals, which must leave the device as it was, with the real daxctl's exit codes in this state
# (above): online memory without -f (EBUSY, 240), and system-ram -> famfs (EINVAL, 234).
capture ours-reconf-devdax-noforce daxctl-famfs reconfigure-device -m devdax dax0.0
capture ours-reconf-famfs-from-ram daxctl-famfs reconfigure-device -m famfs dax0.0
capture real-list-after-ours-refusals daxctl list
capture ours-reconf-devdax-force daxctl-famfs reconfigure-device -m devdax -f dax0.0
capture real-list-after-ours-devdax daxctl list
capture ours-list-devdax-after daxctl-famfs list
kv memtotal_kb_ours_devdax "$(meminfo_total_kb)"
capture ours-marker-read daxmm read "$DEV" "$MARK_AT" 4K
# Kernel warnings (a refcount underflow, a BUG) would show a call trace.
capture dmesg dmesg
exit 0
