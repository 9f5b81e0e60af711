# shellcheck shell=sh
# Scenario B, host 2 of 2. Booted on the same blank backing file as share-writer, it has only a raw
# namespace (/dev/pmem0) until the writer's create-namespace lands an info block at offset 4 KiB. It polls
# for that block, re-probes the namespace so /dev/dax0.0 appears, waits for READY, checks the pattern,
# and answers with an ACK token the writer waits for.
# shellcheck source-path=SCRIPTDIR/.. source=lib.sh
. /famfs-test/lib.sh
TOKEN=${RUNID:-0}
SEED=${SEED:-1}

step dax-dev-appears wait_dax_reprobe 90 || exit 1
capture daxctl-list daxctl list
capture namespace ndctl list -N
step ready-seen daxmm wait "$DEV" 0 "READY $TOKEN" 90 || exit 1
capture pattern-check daxmm check "$DEV" 4M 8M "$SEED"
step ack-write daxmm write "$DEV" 1M "ACK $TOKEN"
