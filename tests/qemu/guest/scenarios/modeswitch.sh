# shellcheck shell=sh
# Scenario A (one VM, private backing file): a real devdax namespace and the real daxctl mode switches
# devdax -> system-ram -> devdax against the kernel's device_dax and kmem drivers. Every daxctl list output
# goes back to the host as JSON. With our daxctl-famfs in the guest (/opt/famfs/bin), the same round trip
# is then made by our binary and listed by both tools.
# shellcheck source-path=SCRIPTDIR/.. source=lib.sh
. /famfs-test/lib.sh
MARK="famfs-qemu-marker-${RUNID:-0}"

# Whatever binaries the host shipped must start in the guest (static linking, no missing libraries).
for b in /opt/famfs/bin/*; do
    [ -x "$b" ] && capture "help-${b##*/}" "$b" --help
done
# FUSE for the famfs daemon (it mounts with mount(2) as root; no fusermount needed).
step fuse-available sh -c '[ -c /dev/fuse ] && grep -qw fuse /proc/filesystems'
capture ndctl-list-before ndctl list -RN
capture create-namespace create_devdax || exit 1
step dax-dev-appears wait_for "$DEV" 10 || exit 1
capture daxctl-list-devdax daxctl list
capture daxctl-list-devdax-human daxctl list -u
capture sysfs-dax0.0 dump_sysfs_dax dax0.0
capture sysfs-memory-block-size cat /sys/devices/system/memory/block_size_bytes
step marker-write daxmm write "$DEV" 0 "$MARK"
kv memtotal_kb_devdax "$(meminfo_total_kb)"

capture real-reconf-system-ram daxctl reconfigure-device -m system-ram dax0.0
capture daxctl-list-system-ram daxctl list
kv memtotal_kb_system_ram "$(meminfo_total_kb)"
# Leaving system-ram without -f must be refused with EBUSY (exit 240): the memory is online.
capture real-reconf-devdax-noforce daxctl reconfigure-device -m devdax dax0.0
capture real-reconf-devdax-force daxctl reconfigure-device -m devdax -f dax0.0
capture daxctl-list-devdax-after daxctl list
kv memtotal_kb_devdax_after "$(meminfo_total_kb)"
capture marker-read daxmm read "$DEV" 0 4K

if ! have daxctl-famfs; then
    kv ours_daxctl absent
    exit 0
fi
# Phase 2: our daxctl-famfs, compared with the real daxctl in the same VM (host compares the JSON).
kv ours_daxctl present
capture ours-list-devdax daxctl-famfs list
capture ours-list-devdax-dev daxctl-famfs list -d dax0.0
capture ours-list-devdax-human daxctl-famfs list -u
# A filter that matches nothing: the real tools print nothing and exit 0.
capture real-list-nomatch daxctl list -d dax9.9
capture ours-list-nomatch daxctl-famfs list -d dax9.9
capture real-reconf-nomatch daxctl reconfigure-device -m devdax dax9.9
capture ours-reconf-nomatch daxctl-famfs reconfigure-device -m devdax dax9.9
capture ours-reconf-system-ram daxctl-famfs reconfigure-device -m system-ram dax0.0
capture real-list-after-ours-system-ram daxctl list
capture ours-list-system-ram daxctl-famfs list
kv memtotal_kb_ours_system_ram "$(meminfo_total_kb)"
# Refusals, which must leave the device as it was: online memory without -f (EBUSY, 240), and
# system-ram -> famfs, which v85 daxctl rejects before any sysfs write (EINVAL, 234).
capture ours-reconf-devdax-noforce daxctl-famfs reconfigure-device -m devdax dax0.0
capture ours-reconf-famfs-from-ram daxctl-famfs reconfigure-device -m famfs dax0.0
capture real-list-after-ours-refusals daxctl list
capture ours-reconf-devdax-force daxctl-famfs reconfigure-device -m devdax -f dax0.0
capture real-list-after-ours-devdax daxctl list
capture ours-list-devdax-after daxctl-famfs list
capture ours-marker-read daxmm read "$DEV" 0 4K
exit 0
