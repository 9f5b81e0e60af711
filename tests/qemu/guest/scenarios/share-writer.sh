# shellcheck shell=sh
# Scenario B, host 1 of 2 (runs at the same time as share-reader on the same share=on backing file).
# Creates the devdax namespace on the blank file, writes a data pattern and then a READY token, and waits
# for the reader's ACK token. Offsets are dax offsets; dax offset X is backing-file offset 2 MiB + X.
# shellcheck source-path=SCRIPTDIR/.. source=lib.sh
. /famfs-test/lib.sh
TOKEN=${RUNID:-0}
SEED=${SEED:-1}

capture create-namespace create_devdax || exit 1
step dax-dev-appears wait_for "$DEV" 10 || exit 1
capture daxctl-list daxctl list
capture namespace ndctl list -N
step pattern-fill daxmm fill "$DEV" 4M 8M "$SEED"
step ready-write daxmm write "$DEV" 0 "READY $TOKEN"
step ack-seen daxmm wait "$DEV" 1M "ACK $TOKEN" 90
