# shellcheck shell=sh
# Phase 2 scenario, host 2 of 2 (FAMFS_SYSTEM_UUID=B): boots on the same blank backing file as
# famfs-master, waits for its namespace (re-probe) and its READY signal, then mounts the same device
# while the master still has it mounted, and reads every file back: cmp against the regenerated
# source bytes plus a sha256 list the host compares with the master's. A client must not be able to
# add files (only the master appends to the log).
#
# shellcheck source-path=SCRIPTDIR/.. source=lib.sh
. /famfs-test/lib.sh
TOKEN=${RUNID:-0}
MPT=/mnt/famfs

capture system-uuid cat /opt/famfs/system_uuid
step dax-dev-appears wait_dax_reprobe 120 || exit 1
step ready-seen daxmm wait "$DEV" "$SIGNAL_READY" "FAMFS-READY $TOKEN" 150 || exit 1

capture fsck-offline-client famfs fsck "$DEV"
mkdir -p "$MPT"
capture mount famfs mount "$DEV" "$MPT" || exit 1
capture tree ls -lR "$MPT"
echo "$FAMFS_TEST_FILES" | while read -r path size seed; do
    capture "cmp-$path" sh -c "daxmm gen $size $seed | cmp - $MPT/$path"
done
capture client-sums sh -c "cd $MPT && find . -path ./.meta -prune -o -type f -print | sort | xargs sha256sum"
capture client-creat-refused famfs creat -s 4096 "$MPT/not-allowed"
capture umount umount "$MPT"
step ack-write daxmm write "$DEV" "$SIGNAL_ACK" "FAMFS-ACK $TOKEN"
