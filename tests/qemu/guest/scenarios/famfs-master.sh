# shellcheck shell=sh
# Phase 2 scenario, host 1 of 2 (FAMFS_SYSTEM_UUID=A): runs at the same time as famfs-client on one
# share=on backing file. Creates the devdax namespace, runs our mkfs.famfs on the real /dev/dax0.0, the
# offline famfs commands, mounts (FUSE, stock-kernel path: our famfs_fused serves the data), creates and
# copies files, then signals READY at the end of the device and stays mounted until the client's ACK.
# The host compares the sha256 lists both VMs report (payloads master-sums and client-sums).
#
# The commands are famfs-cli's (famfs-cli/README.md), which follow the reference CLI.
# shellcheck source-path=SCRIPTDIR/.. source=lib.sh
. /famfs-test/lib.sh
TOKEN=${RUNID:-0}
MPT=/mnt/famfs

capture system-uuid cat /opt/famfs/system_uuid
capture create-namespace create_devdax || exit 1
step dax-dev-appears wait_for "$DEV" 10 || exit 1

# Offline: format, check and list the empty log straight from the device.
capture mkfs mkfs.famfs "$DEV" || exit 1
capture mkfs-again-refused mkfs.famfs "$DEV"          # a valid superblock without -f: must fail
capture fsck-offline famfs fsck "$DEV"
capture logplay-ls-empty famfs logplay --ls "$DEV"

# Mounted (FUSE): the daemon is started by `famfs mount` from the same directory.
mkdir -p "$MPT"
capture mount famfs mount "$DEV" "$MPT" || exit 1
capture meta-files ls -l "$MPT/.meta"
mkdir -p /tmp/src
echo "$FAMFS_TEST_FILES" | while read -r path size seed; do
    mkdir -p "/tmp/src/$(dirname "$path")"
    daxmm gen "$size" "$seed" >"/tmp/src/$path"
done
capture mkdir-sub famfs mkdir -p "$MPT/sub/deeper"
echo "$FAMFS_TEST_FILES" | while read -r path size seed; do
    capture "cp-$path" famfs cp "/tmp/src/$path" "$MPT/$path"
    capture "cmp-$path" cmp "/tmp/src/$path" "$MPT/$path"
done
capture creat-random famfs creat -r -S 21 -s 3M "$MPT/r1"
capture verify-random famfs verify -S 21 -f "$MPT/r1"
capture tree ls -lR "$MPT"
capture master-sums sh -c "cd $MPT && find . -path ./.meta -prune -o -type f -print | sort | xargs sha256sum"
capture fsck-mounted famfs fsck "$MPT"
capture logplay-ls famfs logplay --ls "$DEV"

step ready-write daxmm write "$DEV" "$SIGNAL_READY" "FAMFS-READY $TOKEN"
step ack-seen daxmm wait "$DEV" "$SIGNAL_ACK" "FAMFS-ACK $TOKEN" 150
capture umount umount "$MPT"
capture fsck-after famfs fsck "$DEV"
